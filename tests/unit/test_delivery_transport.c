/* Transports: password files, what each transport kind sets on the SMTP
 * client, AUTH never sent without TLS, and the EHLO AUTH keyword. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "buf.h"
#include "services/delivery/delivery_transport.h"

static char dir[] = "/tmp/mf-transport-XXXXXX";

static char *write_file(const char *name, const char *data, size_t len)
{
	char *path = mf_xasprintf("%s/%s", dir, name);
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, len, f), len);
	fclose(f);
	return path;
}

static int setup(void **state)
{
	return mkdtemp(dir) == NULL ? -1 : 0;
}

static int teardown(void **state)
{
	char *cmd = mf_xasprintf("rm -rf %s", dir);
	int r = system(cmd);
	free(cmd);
	return r == 0 ? 0 : -1;
}

static void test_secret(void **state)
{
	char *secret = NULL, *p, big[DELIVERY_SECRET_MAX + 10];
	const char *error = NULL;

	p = write_file("a", "s3cret pass\nsecond line\n", 24);
	assert_int_equal(delivery_transport_secret(p, &secret, &error), 0);
	assert_string_equal(secret, "s3cret pass");
	free(secret);
	free(p);
	p = write_file("b", "crlf\r\n", 6);
	assert_int_equal(delivery_transport_secret(p, &secret, &error), 0);
	assert_string_equal(secret, "crlf");
	free(secret);
	free(p);
	p = write_file("c", "no newline", 10);
	assert_int_equal(delivery_transport_secret(p, &secret, &error), 0);
	assert_string_equal(secret, "no newline");
	free(secret);
	free(p);

	p = write_file("d", "\nx\n", 3);
	assert_int_equal(delivery_transport_secret(p, &secret, &error), -1);
	assert_non_null(strstr(error, "empty"));
	free(p);
	p = write_file("e", "a\0b\n", 4);
	assert_int_equal(delivery_transport_secret(p, &secret, &error), -1);
	assert_non_null(strstr(error, "NUL"));
	free(p);
	memset(big, 'x', sizeof(big));
	p = write_file("f", big, sizeof(big));
	assert_int_equal(delivery_transport_secret(p, &secret, &error), -1);
	assert_non_null(strstr(error, "longer"));
	free(p);
	/* Exactly the limit is fine. */
	p = write_file("g", big, DELIVERY_SECRET_MAX);
	assert_int_equal(delivery_transport_secret(p, &secret, &error), 0);
	assert_int_equal(strlen(secret), DELIVERY_SECRET_MAX);
	free(secret);
	free(p);
	assert_int_equal(delivery_transport_secret("/nonexistent/pw", &secret, &error), -1);
	assert_non_null(strstr(error, "/nonexistent/pw"));
}

static struct mf_domains *load(const char *pwfile)
{
	char *text = mf_xasprintf(
		"transport relay {\n    smtp 127.0.0.1:2525\n}\n"
		"transport relayauth {\n    smtp 127.0.0.1:2525\n    auth-user u\n"
		"    auth-password-file %s\n    tls-verify no\n}\n"
		"transport sub {\n    submission [::1]:587\n    auth-user u\n"
		"    auth-password-file %s\n    auth-mechanism login\n}\n"
		"transport subs {\n    submissions 127.0.0.1:465\n    auth-user u\n"
		"    auth-password-file %s\n}\n"
		"transport proxy {\n    socks5 127.0.0.1:1080\n    socks5-user pu\n"
		"    socks5-password-file %s\n}\n"
		"transport broken {\n    submission 127.0.0.1:587\n    auth-user u\n"
		"    auth-password-file /nonexistent/pw\n}\n", pwfile, pwfile, pwfile, pwfile);
	struct mf_domains *d = NULL;
	const char *error = NULL;

	if (mf_domains_load_buf("d.conf", text, strlen(text), &d, &error) < 0)
		fail_msg("%s", error);
	free(text);
	return d;
}

static void prepare(const struct mf_domains *d, const char *name,
		    struct delivery_transport_setup *s, struct smtp_client_params *p, int want)
{
	struct delivery_transport t;
	const char *error = NULL;

	assert_int_equal(delivery_transport_select(d, name, "", "a.example", "b.example", 1, false,
						   &t, &error), 0);
	memset(p, 0, sizeof(*p));
	if (delivery_transport_setup(NULL, &t, "cid", s, p, &error) != want)
		fail_msg("%s: %s", name, error != NULL ? error : "succeeded");
}

static void test_setup(void **state)
{
	char *pw = write_file("pw", "hunter2\n", 8);
	struct mf_domains *d = load(pw);
	struct delivery_transport_setup s;
	struct smtp_client_params p;

	prepare(d, "relay", &s, &p, 0);
	assert_false(p.implicit_tls);
	assert_false(p.require_tls);   /* opportunistic, like direct delivery */
	assert_null(p.auth_user);
	assert_null(p.tls);            /* the worker's opportunistic context */
	delivery_transport_setup_clear(&s);

	prepare(d, "relayauth", &s, &p, 0);
	assert_string_equal(p.auth_user, "u");
	assert_string_equal(p.auth_password, "hunter2");
	assert_false(p.auth_login);
	assert_null(p.tls);            /* tls-verify no */
	delivery_transport_setup_clear(&s);
	assert_null(s.auth_password);

	prepare(d, "sub", &s, &p, 0);
	assert_false(p.implicit_tls);
	assert_true(p.require_tls);
	assert_true(p.auth_login);
	assert_non_null(p.tls);        /* verified by default with a password */
	delivery_transport_setup_clear(&s);
	assert_null(s.verify_tls);

	prepare(d, "subs", &s, &p, 0);
	assert_true(p.implicit_tls);
	assert_true(p.require_tls);
	delivery_transport_setup_clear(&s);

	prepare(d, "proxy", &s, &p, 0);
	assert_string_equal(p.socks5_ip, "127.0.0.1");
	assert_int_equal(p.socks5_port, 1080);
	assert_string_equal(p.socks5_user, "pu");
	assert_string_equal(p.socks5_password, "hunter2");
	assert_null(p.auth_user);
	delivery_transport_setup_clear(&s);

	prepare(d, "broken", &s, &p, -1);
	delivery_transport_setup_clear(&s);
	mf_domains_unref(&d);
	free(pw);
}

/* A server without STARTTLS: the client must give up before AUTH. */
struct plain_server {
	int listen_fd;
	struct mf_buf seen;
};

static void *plain_server(void *arg)
{
	struct plain_server *s = arg;
	int fd = accept(s->listen_fd, NULL, NULL);
	FILE *in, *out;
	char line[1024];

	if (fd < 0)
		return NULL;
	in = fdopen(fd, "r");
	out = fdopen(dup(fd), "w");
	fputs("220 plain ESMTP\r\n", out);
	fflush(out);
	while (fgets(line, sizeof(line), in) != NULL) {
		mf_buf_append_str(&s->seen, line);
		if (strncmp(line, "EHLO", 4) == 0)
			fputs("250-plain\r\n250-AUTH PLAIN LOGIN\r\n250 PIPELINING\r\n", out);
		else if (strncmp(line, "QUIT", 4) == 0)
			fputs("221 bye\r\n", out);
		else
			fputs("250 ok\r\n", out);
		fflush(out);
	}
	fclose(in);
	fclose(out);
	return NULL;
}

static void test_no_auth_without_tls(void **state)
{
	struct plain_server s;
	struct sockaddr_in sin = { .sin_family = AF_INET };
	socklen_t sl = sizeof(sin);
	struct smtp_client_params p;
	struct smtp_client_rcpt rcpt;
	struct smtp_client_info info;
	const char *error = NULL;
	pthread_t th;

	mf_buf_init(&s.seen, 0);
	s.listen_fd = socket(AF_INET, SOCK_STREAM, 0);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(s.listen_fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(listen(s.listen_fd, 1), 0);
	getsockname(s.listen_fd, (struct sockaddr *)&sin, &sl);
	pthread_create(&th, NULL, plain_server, &s);

	memset(&p, 0, sizeof(p));
	memset(&rcpt, 0, sizeof(rcpt));
	rcpt.address = "r@example.org";
	p.host = "relay";
	p.ip = "127.0.0.1";
	p.port = ntohs(sin.sin_port);
	p.ehlo_name = "client.test";
	p.mail_from = "a@example.com";
	p.msg_fd = -1;
	p.timeout_ms = 5000;
	p.auth_user = "u";
	p.auth_password = "hunter2";
	assert_int_equal(smtp_client_deliver(&p, &rcpt, 1, &info, &error), -1);
	assert_non_null(strstr(error, "requires TLS"));
	assert_false(rcpt.done);
	shutdown(s.listen_fd, SHUT_RDWR);
	close(s.listen_fd);
	pthread_join(th, NULL);
	assert_null(strstr(mf_buf_cstr(&s.seen), "AUTH"));
	assert_null(strstr(mf_buf_cstr(&s.seen), "MAIL"));
	smtp_client_rcpts_clear(&rcpt, 1);
	mf_buf_free(&s.seen);
}

static void test_ext_auth(void **state)
{
	static const struct {
		const char *line;
		bool plain, login;
	} cases[] = {
		{ "AUTH PLAIN LOGIN", true, true },
		{ "AUTH LOGIN", false, true },
		{ "auth cram-md5 plain", true, false },
		{ "AUTH SCRAM-SHA-256 PLAINX LOGINS", false, false },
		{ "AUTH", false, false },
		{ "AUTHX PLAIN", false, false },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct smtp_client_reply r;
		struct smtp_client_ext ext;
		const char *error;
		char *l2 = mf_xasprintf("250 %s", cases[i].line);
		smtp_client_reply_init(&r);
		assert_int_equal(smtp_client_reply_feed(&r, "250-hello", 9, &error), 0);
		assert_int_equal(smtp_client_reply_feed(&r, l2, strlen(l2), &error), 1);
		smtp_client_ext_parse(&r, &ext);
		if (ext.auth_plain != cases[i].plain || ext.auth_login != cases[i].login)
			fail_msg("case %zu (%s): plain=%d login=%d", i, cases[i].line,
				 ext.auth_plain, ext.auth_login);
		smtp_client_reply_free(&r);
		free(l2);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_secret),
		cmocka_unit_test(test_setup),
		cmocka_unit_test(test_no_auth_without_tls),
		cmocka_unit_test(test_ext_auth),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
