/* Unit tests of the store API over NATS (services/imap/store_api.c) through
 * the client library (libshared/storeclient.c), against a real nats-server
 * on a free loopback port: delivery results and their SMTP codes (quota
 * 452 4.2.2 / 552 5.2.2), duplicates, authentication, passwords, account
 * create/remove rules, malformed and misaddressed requests. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "blob.h"
#include "buf.h"
#include "bus.h"
#include "domains.h"
#include "fsutil.h"
#include "services/imap/store.h"
#include "store.pb-c.h"
#include "storeclient.h"

#define TIMEOUT 5000

static char dir[256], domains_path[300];
static pid_t nats_pid = -1;
static struct mf_bus *server_bus, *client_bus;
static struct store *store;

static int free_port(void)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port;

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    getsockname(fd, (struct sockaddr *)&sa, &len) < 0)
		port = -1;
	else
		port = ntohs(sa.sin_port);
	close(fd);
	return port;
}

static bool port_open(int port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	bool ok;

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ok = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
	close(fd);
	return ok;
}

static void write_domains(const char *quota)
{
	char *text = mf_xasprintf(
		"domain example.org {\n}\n"
		"account mjl {\n    domain example.org\n    address mjl@example.org\n"
		"    quota %s\n}\n"
		"account other {\n    domain example.org\n    address other@example.org\n}\n",
		quota);
	const char *err;

	if (mf_fs_write_atomic(domains_path, text, strlen(text), 0644, &err) < 0 ||
	    mf_domains_reload(domains_path, &err) < 0)
		fail_msg("domains: %s", err);
	free(text);
}

static int setup(void **state)
{
	struct store_settings set = { 0 };
	char port[16], url[64], data[300], blobs[300], natsdir[300];
	const char *err = NULL;
	int p = free_port();

	snprintf(dir, sizeof(dir), "/tmp/test_store_api.XXXXXX");
	assert_non_null(mkdtemp(dir));
	snprintf(domains_path, sizeof(domains_path), "%s/domains.conf", dir);
	snprintf(data, sizeof(data), "%s/data", dir);
	snprintf(blobs, sizeof(blobs), "%s/data/blobs", dir);
	snprintf(natsdir, sizeof(natsdir), "%s/nats", dir);
	write_domains("0");
	snprintf(port, sizeof(port), "%d", p);
	nats_pid = fork();
	assert_true(nats_pid >= 0);
	if (nats_pid == 0) {
		int fd = open("/dev/null", O_WRONLY);

		dup2(fd, 1);
		dup2(fd, 2);
		execlp("nats-server", "nats-server", "-a", "127.0.0.1", "-p", port, "-sd", natsdir,
		       (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 500 && !port_open(p); i++)
		usleep(20000);
	snprintf(url, sizeof(url), "nats://127.0.0.1:%d", p);
	assert_int_equal(mf_bus_connect(url, "test-server", &server_bus, &err), 0);
	assert_int_equal(mf_bus_connect(url, "test-client", &client_bus, &err), 0);
	for (int i = 0; i < 500 && !(mf_bus_connected(server_bus) && mf_bus_connected(client_bus));
	     i++)
		usleep(20000);
	assert_true(mf_bus_connected(client_bus));
	assert_int_equal(mkdir(data, 0700), 0);
	set.data_dir = data;
	set.blob_dir = blobs;
	set.config_dir = dir;
	set.bus = server_bus;
	if (store_create(&set, &store, &err) < 0 ||
	    store_api_serve(store, domains_path, server_bus, NULL, &err) < 0)
		fail_msg("store: %s", err);
	assert_int_equal(store_account_create(store, "mjl", &err), 1);
	assert_int_equal(mf_blob_put(store_blobs(store), "incoming/m1",
				     "Subject: x\r\n\r\nbody\r\n", 20, &err), 0);
	*state = NULL;
	return 0;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

static int teardown(void **state)
{
	store_stop(&store);
	mf_bus_close(&client_bus);
	mf_bus_close(&server_bus);
	store_api_free_stopped();
	if (nats_pid > 0) {
		kill(nats_pid, SIGTERM);
		waitpid(nats_pid, NULL, 0);
	}
	nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	mf_domains_clear_current();
	return 0;
}

static void test_deliver(void **state)
{
	struct mf_storeclient_rcpt r[4] = {
		{ .address = "mjl@example.org" },
		{ .address = "mjl+x@example.org", .mailbox = "Lists/x",
		  .header_prefix = "X-Test: 1\r\n", .header_prefix_len = 11 },
		{ .address = "mjl@example.org" },
		{ .address = "bad@example.org", .mailbox = "a//b" },
	};
	static const char *const kws[] = { "$Junk" };
	enum mf_bus_status status;
	const char *err = NULL;

	r[1].keywords = kws;
	r[1].keywords_count = 1;
	assert_int_equal(mf_storeclient_deliver(client_bus, "c1", "mjl", "incoming/m1", "id1",
						"a@b", 1700000000000, r, 4, TIMEOUT, &status,
						&err), 0);
	assert_int_equal(r[0].status, MF_BUS_OK);
	assert_int_equal(r[0].smtp_code, 250);
	assert_string_equal(r[0].enhanced_code, "2.0.0");
	assert_string_equal(r[0].stored_mailbox, "INBOX");
	assert_int_equal(r[0].uid, 1);
	assert_int_equal(r[1].status, MF_BUS_OK);
	assert_string_equal(r[1].stored_mailbox, "Lists/x");
	/* The duplicate got the same copy. */
	assert_int_equal(r[2].status, MF_BUS_OK);
	assert_int_equal(r[2].uid, 1);
	assert_int_equal(r[3].status, MF_BUS_PERMANENT);
	assert_int_equal(r[3].smtp_code, 554);
	mf_storeclient_rcpts_clear(r, 4);

	/* No such account: the request fails, every recipient carries it. */
	assert_int_equal(mf_storeclient_deliver(client_bus, "c1", "nobody", "incoming/m1", "id1",
						"", 0, r, 1, TIMEOUT, &status, &err), -1);
	assert_int_equal(status, MF_BUS_PERMANENT);
	assert_int_equal(r[0].status, MF_BUS_PERMANENT);
	assert_non_null(strstr(err, "no such account"));
	mf_storeclient_rcpts_clear(r, 1);
	/* Bad account names never reach the bus. */
	assert_int_equal(mf_storeclient_deliver(client_bus, "c1", "a.b", "incoming/m1", "id1", "",
						0, r, 1, TIMEOUT, &status, &err), -1);
	mf_storeclient_rcpts_clear(r, 1);
	/* A missing blob. */
	assert_int_equal(mf_storeclient_deliver(client_bus, "c1", "mjl", "incoming/none", "id1", "",
						0, r, 1, TIMEOUT, &status, &err), -1);
	assert_int_equal(status, MF_BUS_PERMANENT);
	mf_storeclient_rcpts_clear(r, 1);
}

static void test_deliver_quota(void **state)
{
	struct mf_storeclient_rcpt r[1] = { { .address = "mjl@example.org" } };
	enum mf_bus_status status;
	const char *err = NULL;

	/* 20-byte message: the first fits in 30 bytes, the second does not. */
	write_domains("30");
	assert_int_equal(mf_storeclient_deliver(client_bus, NULL, "mjl", "incoming/m1", "", "", 0,
						r, 1, TIMEOUT, &status, &err), 0);
	assert_int_equal(r[0].status, MF_BUS_OK);
	mf_storeclient_rcpts_clear(r, 1);
	assert_int_equal(mf_storeclient_deliver(client_bus, NULL, "mjl", "incoming/m1", "", "", 0,
						r, 1, TIMEOUT, &status, &err), 0);
	assert_int_equal(r[0].status, MF_BUS_TEMPORARY);
	assert_int_equal(r[0].smtp_code, 452);
	assert_string_equal(r[0].enhanced_code, "4.2.2");
	mf_storeclient_rcpts_clear(r, 1);
	/* Larger than the whole quota: permanent. */
	write_domains("10");
	assert_int_equal(mf_storeclient_deliver(client_bus, NULL, "mjl", "incoming/m1", "", "", 0,
						r, 1, TIMEOUT, &status, &err), 0);
	assert_int_equal(r[0].status, MF_BUS_PERMANENT);
	assert_int_equal(r[0].smtp_code, 552);
	assert_string_equal(r[0].enhanced_code, "5.2.2");
	mf_storeclient_rcpts_clear(r, 1);
}

static void test_auth_and_password(void **state)
{
	struct mf_storeclient_auth a = { .login = "mjl@example.org", .password = "pw-1",
					 .password_len = 4, .protocol = "imap" };
	enum mf_bus_status status;
	char *msg = NULL;
	const char *err = NULL;
	bool ok;

	assert_int_equal(mf_storeclient_authenticate(client_bus, NULL, "mjl", &a, TIMEOUT, &ok,
						     &msg, &status, &err), 0);
	assert_false(ok);  /* no password set yet */
	assert_int_equal(mf_storeclient_set_password(client_bus, NULL, "mjl", "pw-1", 4, TIMEOUT,
						     &status, &err), 0);
	assert_int_equal(mf_storeclient_authenticate(client_bus, NULL, "mjl", &a, TIMEOUT, &ok,
						     &msg, &status, &err), 0);
	assert_true(ok);
	/* The login must belong to the subject's account. */
	assert_int_equal(mf_storeclient_authenticate(client_bus, NULL, "other", &a, TIMEOUT, &ok,
						     &msg, &status, &err), 0);
	assert_false(ok);
	a.password = "pw-2";
	assert_int_equal(mf_storeclient_authenticate(client_bus, NULL, "mjl", &a, TIMEOUT, &ok,
						     &msg, &status, &err), 0);
	assert_false(ok);
	assert_int_equal(mf_storeclient_set_password(client_bus, NULL, "mjl", "", 0, TIMEOUT,
						     &status, &err), -1);
	assert_int_equal(status, MF_BUS_PERMANENT);
}

static void test_accounts(void **state)
{
	enum mf_bus_status status;
	const char *err = NULL;
	bool done;

	/* Configured: created (once). */
	assert_int_equal(mf_storeclient_create_account(client_bus, NULL, "other", TIMEOUT, &done,
						       &status, &err), 0);
	assert_true(done);
	assert_int_equal(mf_storeclient_create_account(client_bus, NULL, "other", TIMEOUT, &done,
						       &status, &err), 0);
	assert_false(done);
	/* Not configured: refused. */
	assert_int_equal(mf_storeclient_create_account(client_bus, NULL, "ghost", TIMEOUT, &done,
						       &status, &err), -1);
	assert_int_equal(status, MF_BUS_PERMANENT);
	/* Still configured: not removed. */
	assert_int_equal(mf_storeclient_remove_account(client_bus, NULL, "other", TIMEOUT, &done,
						       &status, &err), -1);
	assert_int_equal(status, MF_BUS_PERMANENT);
	assert_non_null(strstr(err, "domains.conf"));
	{
		const char *text = "domain example.org {\n}\naccount mjl {\n    domain example.org\n"
				   "    address mjl@example.org\n}\n";

		assert_int_equal(mf_fs_write_atomic(domains_path, text, strlen(text), 0644, &err), 0);
	}
	assert_int_equal(mf_storeclient_remove_account(client_bus, NULL, "other", TIMEOUT, &done,
						       &status, &err), 0);
	assert_true(done);
	assert_int_equal(store_account_exists(store, "other", &err), 0);
	assert_int_equal(mf_storeclient_remove_account(client_bus, NULL, "other", TIMEOUT, &done,
						       &status, &err), 0);
	assert_false(done);
}

static void test_check(void **state)
{
	struct mf_storeclient_rcpt r[1] = { { .address = "mjl@example.org" } };
	enum mf_bus_status status;
	char *problem = NULL, *path;
	const char *err = NULL;
	bool consistent;

	assert_int_equal(mf_storeclient_deliver(client_bus, NULL, "mjl", "incoming/m1", "", "", 0,
						r, 1, TIMEOUT, &status, &err), 0);
	mf_storeclient_rcpts_clear(r, 1);
	assert_int_equal(mf_storeclient_check_account(client_bus, NULL, "mjl", TIMEOUT, &consistent,
						      &problem, &status, &err), 0);
	assert_true(consistent);
	assert_null(problem);
	/* A blob lost behind the store's back is found. */
	path = mf_xasprintf("find %s/data/blobs/accounts/mjl -type f -delete", dir);
	assert_int_equal(system(path), 0);
	free(path);
	assert_int_equal(mf_storeclient_check_account(client_bus, NULL, "mjl", TIMEOUT, &consistent,
						      &problem, &status, &err), 0);
	assert_false(consistent);
	assert_non_null(strstr(problem, "missing"));
	free(problem);
	assert_int_equal(mf_storeclient_check_account(client_bus, NULL, "nobody", TIMEOUT,
						      &consistent, &problem, &status, &err), -1);
	assert_int_equal(status, MF_BUS_PERMANENT);
}

static void test_malformed(void **state)
{
	static const char *const subjects[] = {
		"store.v1.deliver.mjl", "store.v1.authenticate.mjl", "store.v1.setpassword.mjl",
		"store.v1.account.create.mjl", "store.v1.account.remove.mjl",
		"store.v1.account.check.mjl",
		"store.v1.mailboxes.mjl", "store.v1.messages.mjl", "store.v1.fetch.mjl",
		"store.v1.flags.mjl", "store.v1.move.mjl", "store.v1.expunge.mjl",
	};
	static const uint8_t garbage[] = { 0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f };
	Mailfleet__V1__MailboxesRequest mr = MAILFLEET__V1__MAILBOXES_REQUEST__INIT;
	struct mf_bus_reply reply;
	uint8_t buf[64];
	size_t len;

	for (size_t i = 0; i < sizeof(subjects) / sizeof(subjects[0]); i++) {
		assert_int_equal(mf_bus_request(client_bus, subjects[i], NULL, garbage, sizeof(garbage),
						TIMEOUT, &reply), -1);
		assert_int_equal(reply.status, MF_BUS_PERMANENT);
		assert_non_null(strstr(reply.message, "malformed"));
		mf_bus_reply_free(&reply);
	}
	/* The body names another account than the subject. */
	mr.account = "other";
	len = mailfleet__v1__mailboxes_request__pack(&mr, buf);
	assert_int_equal(mf_bus_request(client_bus, "store.v1.mailboxes.mjl", NULL, buf, len, TIMEOUT,
					&reply), -1);
	assert_int_equal(reply.status, MF_BUS_PERMANENT);
	mf_bus_reply_free(&reply);
	/* An empty body is a valid request for the subject's account. */
	assert_int_equal(mf_bus_request(client_bus, "store.v1.mailboxes.mjl", NULL, "", 0, TIMEOUT,
					&reply), 0);
	mf_bus_reply_free(&reply);
}

static void test_stopping(void **state)
{
	struct mf_storeclient_rcpt r[1] = { { .address = "mjl@example.org" } };
	enum mf_bus_status status;
	const char *err = NULL;

	store_stop(&store);
	assert_null(store);
	assert_int_equal(mf_storeclient_deliver(client_bus, NULL, "mjl", "incoming/m1", "", "", 0,
						r, 1, TIMEOUT, &status, &err), -1);
	assert_int_equal(status, MF_BUS_TEMPORARY);
	mf_storeclient_rcpts_clear(r, 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_deliver, setup, teardown),
		cmocka_unit_test_setup_teardown(test_deliver_quota, setup, teardown),
		cmocka_unit_test_setup_teardown(test_auth_and_password, setup, teardown),
		cmocka_unit_test_setup_teardown(test_accounts, setup, teardown),
		cmocka_unit_test_setup_teardown(test_check, setup, teardown),
		cmocka_unit_test_setup_teardown(test_malformed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stopping, setup, teardown),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
