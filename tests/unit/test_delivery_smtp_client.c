/* The SMTP client against a scripted server on 127.0.0.1 (a thread of
 * this test), for the cases that decide what senders are told. */
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
#include "services/delivery/smtp_client.h"

#define RCPTS_MAX 8

struct script {
	const char *ext;               /* EHLO keywords, '\n'-separated */
	const char *mail_reply;        /* NULL: "250 2.1.0 ok" */
	bool close_after_mail;
	const char *rcpt_replies[RCPTS_MAX];  /* in order over all transactions; NULL: 250 */
	bool close_at_data;            /* hang up instead of answering DATA */
	const char *data_reply;        /* NULL: "250 2.0.0 queued" */
	/* Filled by the server. */
	int transactions;
	int rcpts_seen;
	struct mf_buf data;
	int listen_fd;
	unsigned port;
};

static bool read_line(FILE *in, char *buf, size_t size)
{
	if (fgets(buf, (int)size, in) == NULL)
		return false;
	buf[strcspn(buf, "\r\n")] = '\0';
	return true;
}

static void *server(void *arg)
{
	struct script *s = arg;
	int fd = accept(s->listen_fd, NULL, NULL);
	FILE *in, *out;
	char line[4096];

	if (fd < 0)
		return NULL;
	in = fdopen(fd, "r");
	out = fdopen(dup(fd), "w");
	fputs("220 test ESMTP\r\n", out);
	fflush(out);
	while (read_line(in, line, sizeof(line))) {
		if (strncmp(line, "EHLO", 4) == 0) {
			const char *p = s->ext != NULL ? s->ext : "";
			fputs("250-test", out);
			while (*p != '\0') {
				const char *nl = strchr(p, '\n');
				size_t len = nl != NULL ? (size_t)(nl - p) : strlen(p);
				fprintf(out, "\r\n250-%.*s", (int)len, p);
				p += len + (nl != NULL);
			}
			fputs("\r\n250 HELP\r\n", out);
		} else if (strncmp(line, "MAIL", 4) == 0) {
			s->transactions++;
			fprintf(out, "%s\r\n", s->mail_reply != NULL ? s->mail_reply : "250 2.1.0 ok");
			if (s->close_after_mail) {
				fflush(out);
				break;
			}
		} else if (strncmp(line, "RCPT", 4) == 0) {
			const char *r = s->rcpts_seen < RCPTS_MAX ? s->rcpt_replies[s->rcpts_seen] : NULL;
			s->rcpts_seen++;
			fprintf(out, "%s\r\n", r != NULL ? r : "250 2.1.5 ok");
		} else if (strcmp(line, "DATA") == 0) {
			if (s->close_at_data)
				break;
			fputs("354 go ahead\r\n", out);
			fflush(out);
			while (read_line(in, line, sizeof(line)) && strcmp(line, ".") != 0) {
				mf_buf_append_str(&s->data, line);
				mf_buf_append_str(&s->data, "\n");
			}
			fprintf(out, "%s\r\n", s->data_reply != NULL ? s->data_reply : "250 2.0.0 queued");
		} else if (strcmp(line, "RSET") == 0) {
			fputs("250 2.0.0 reset\r\n", out);
		} else if (strcmp(line, "QUIT") == 0) {
			fputs("221 2.0.0 bye\r\n", out);
			fflush(out);
			break;
		} else {
			fputs("500 5.5.1 what\r\n", out);
		}
		fflush(out);
	}
	fclose(in);
	fclose(out);
	return NULL;
}

static const char message[] = "Subject: t\n\nline\n.dot\n";

/* Runs the client against script s for the addresses; fills rcpts. */
static int run(struct script *s, struct smtp_client_rcpt *rcpts, const char *const *addrs,
	       size_t n, bool smtputf8, uint64_t size, const char **error_r)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	socklen_t sl = sizeof(sin);
	struct smtp_client_params p;
	struct smtp_client_info info;
	pthread_t th;
	char path[] = "/tmp/mf-smtp-client-XXXXXX";
	int mfd, ret;

	mf_buf_init(&s->data, 0);
	s->listen_fd = socket(AF_INET, SOCK_STREAM, 0);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(s->listen_fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(listen(s->listen_fd, 4), 0);
	getsockname(s->listen_fd, (struct sockaddr *)&sin, &sl);
	s->port = ntohs(sin.sin_port);
	pthread_create(&th, NULL, server, s);

	mfd = mkstemp(path);
	assert_true(mfd >= 0);
	unlink(path);
	assert_int_equal(write(mfd, message, strlen(message)), (ssize_t)strlen(message));
	memset(rcpts, 0, n * sizeof(*rcpts));
	for (size_t i = 0; i < n; i++)
		rcpts[i].address = addrs[i];
	memset(&p, 0, sizeof(p));
	p.host = "test";
	p.ip = "127.0.0.1";
	p.port = s->port;
	p.ehlo_name = "client.test";
	p.mail_from = "a@example.com";
	p.smtputf8 = smtputf8;
	p.size = size;
	p.msg_fd = mfd;
	p.timeout_ms = 5000;
	ret = smtp_client_deliver(&p, rcpts, n, &info, error_r);
	close(mfd);
	shutdown(s->listen_fd, SHUT_RDWR);
	close(s->listen_fd);
	pthread_join(th, NULL);
	return ret;
}

static const char *const three[] = { "r1@example.org", "r2@example.org", "r3@example.org" };

static void test_pipelined_mixed(void **state)
{
	struct script s = { .ext = "PIPELINING\n8BITMIME",
			    .rcpt_replies = { NULL, "550-5.1.1 no such user\r\n550 5.1.1 really" } };
	struct smtp_client_rcpt r[3];
	const char *error;

	assert_int_equal(run(&s, r, three, 3, false, 10, &error), 0);
	assert_int_equal(s.transactions, 1);
	assert_true(r[0].done && r[0].delivered && r[0].code == 250);
	assert_true(r[1].done && !r[1].delivered && r[1].permanent);
	assert_int_equal(r[1].code, 550);
	assert_string_equal(r[1].enhanced, "5.1.1");
	assert_string_equal(r[1].text, "no such user\nreally");
	assert_true(r[2].delivered);
	/* Dot-stuffed on the wire, so the server got "..dot". */
	assert_non_null(strstr(mf_buf_cstr(&s.data), "\n..dot\n"));
	smtp_client_rcpts_clear(r, 3);
	mf_buf_free(&s.data);
}

static void test_rcptmax(void **state)
{
	struct script s = { .ext = "PIPELINING\nLIMITS RCPTMAX=2" };
	struct smtp_client_rcpt r[3];
	const char *error;

	assert_int_equal(run(&s, r, three, 3, false, 10, &error), 0);
	assert_int_equal(s.transactions, 2);
	for (int i = 0; i < 3; i++)
		assert_true(r[i].delivered);
	smtp_client_rcpts_clear(r, 3);
	mf_buf_free(&s.data);
}

static void test_too_many_rcpts(void **state)
{
	/* No RCPTMAX, but a 452 after the first: the rest go in a new
	 * transaction at once, on the same connection. */
	struct script s = { .ext = "PIPELINING",
			    .rcpt_replies = { NULL, "452 4.5.3 too many recipients",
					      "452 4.5.3 too many recipients", NULL, NULL } };
	struct smtp_client_rcpt r[3];
	const char *error;

	assert_int_equal(run(&s, r, three, 3, false, 10, &error), 0);
	assert_int_equal(s.transactions, 2);
	for (int i = 0; i < 3; i++)
		assert_true(r[i].delivered);
	smtp_client_rcpts_clear(r, 3);
	mf_buf_free(&s.data);
}

static void test_mail_refused_then_close(void **state)
{
	struct script s = { .ext = "PIPELINING", .mail_reply = "550 5.7.1 you are blocked",
			    .close_after_mail = true };
	struct smtp_client_rcpt r[3];
	const char *error;

	assert_int_equal(run(&s, r, three, 3, false, 10, &error), 0);
	for (int i = 0; i < 3; i++) {
		assert_true(r[i].done && r[i].permanent);
		assert_int_equal(r[i].code, 550);
		assert_string_equal(r[i].text, "you are blocked");
	}
	smtp_client_rcpts_clear(r, 3);
	mf_buf_free(&s.data);
}

static void test_close_after_rcpts(void **state)
{
	struct script s = { .ext = "PIPELINING", .close_at_data = true,
			    .rcpt_replies = { "550 5.1.1 unknown", NULL, "451 4.3.0 later" } };
	struct smtp_client_rcpt r[3];
	const char *error;

	assert_int_equal(run(&s, r, three, 3, false, 10, &error), 0);
	/* The RCPT replies are the results... */
	assert_true(r[0].done && r[0].permanent && r[0].code == 550);
	assert_true(r[2].done && !r[2].permanent && r[2].code == 451);
	assert_string_equal(r[2].text, "later");
	/* ... and the accepted one was not delivered: temporary. */
	assert_true(r[1].done && !r[1].delivered && !r[1].permanent);
	assert_int_equal(r[1].code, 0);
	smtp_client_rcpts_clear(r, 3);
	mf_buf_free(&s.data);
}

static void test_no_pipelining(void **state)
{
	struct script s = { .ext = "", .rcpt_replies = { "550 5.1.1 unknown" } };
	struct smtp_client_rcpt r[3];
	const char *error;

	assert_int_equal(run(&s, r, three, 3, false, 10, &error), 0);
	assert_true(r[0].permanent);
	assert_true(r[1].delivered && r[2].delivered);
	smtp_client_rcpts_clear(r, 3);
	mf_buf_free(&s.data);
}

static void test_smtputf8_and_size(void **state)
{
	struct script s = { .ext = "PIPELINING" };
	struct script s2 = { .ext = "SIZE 5" };
	struct smtp_client_rcpt r[1];
	const char *error;

	assert_int_equal(run(&s, r, three, 1, true, 10, &error), 0);
	assert_true(r[0].permanent);
	assert_string_equal(r[0].enhanced, "5.6.7");
	assert_int_equal(s.transactions, 0);
	smtp_client_rcpts_clear(r, 1);
	mf_buf_free(&s.data);

	assert_int_equal(run(&s2, r, three, 1, false, 10, &error), 0);
	assert_true(r[0].permanent);
	assert_string_equal(r[0].enhanced, "5.3.4");
	assert_int_equal(s2.transactions, 0);
	smtp_client_rcpts_clear(r, 1);
	mf_buf_free(&s2.data);
}

static void test_data_refused(void **state)
{
	struct script s = { .ext = "PIPELINING", .data_reply = "554-5.7.1 spam\r\n554 5.7.1 go away" };
	struct smtp_client_rcpt r[2];
	const char *error;

	assert_int_equal(run(&s, r, three, 2, false, 10, &error), 0);
	for (int i = 0; i < 2; i++) {
		assert_true(r[i].permanent);
		assert_string_equal(r[i].text, "spam\ngo away");
	}
	smtp_client_rcpts_clear(r, 2);
	mf_buf_free(&s.data);
}

static void test_refused(void **state)
{
	struct smtp_client_params p;
	struct smtp_client_info info;
	struct smtp_client_rcpt r[1] = { { .address = "a@b" } };
	struct sockaddr_in sin = { .sin_family = AF_INET };
	socklen_t sl = sizeof(sin);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	const char *error = NULL;

	/* A port that was just free. */
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	bind(fd, (struct sockaddr *)&sin, sizeof(sin));
	getsockname(fd, (struct sockaddr *)&sin, &sl);
	close(fd);
	memset(&p, 0, sizeof(p));
	p.host = p.ip = "127.0.0.1";
	p.port = ntohs(sin.sin_port);
	p.ehlo_name = "x";
	p.mail_from = "";
	p.msg_fd = -1;
	assert_int_equal(smtp_client_deliver(&p, r, 1, &info, &error), -1);
	assert_non_null(error);
	assert_false(r[0].done);
}

/* --- connection reuse ---------------------------------------------------- */

struct reuse_server {
	int listen_fd;
	int close_after;   /* hang up silently after this many messages */
	_Atomic int connections, rsets, messages, quits;
};

/* Serves connections one after the other until the listener is shut. */
static void *reuse_server(void *arg)
{
	struct reuse_server *s = arg;
	char line[4096];
	int fd;

	while ((fd = accept(s->listen_fd, NULL, NULL)) >= 0) {
		FILE *in = fdopen(fd, "r"), *out = fdopen(dup(fd), "w");
		bool hangup = false;

		s->connections++;
		fputs("220 test ESMTP\r\n", out);
		fflush(out);
		while (!hangup && read_line(in, line, sizeof(line))) {
			if (strncmp(line, "EHLO", 4) == 0) {
				fputs("250-test\r\n250 PIPELINING\r\n", out);
			} else if (strncmp(line, "MAIL", 4) == 0 || strncmp(line, "RCPT", 4) == 0) {
				fputs("250 2.1.0 ok\r\n", out);
			} else if (strcmp(line, "DATA") == 0) {
				fputs("354 go ahead\r\n", out);
				fflush(out);
				while (read_line(in, line, sizeof(line)) && strcmp(line, ".") != 0)
					;
				s->messages++;
				fputs("250 2.0.0 queued\r\n", out);
				hangup = s->messages == s->close_after;
			} else if (strcmp(line, "RSET") == 0) {
				s->rsets++;
				fputs("250 2.0.0 reset\r\n", out);
			} else if (strcmp(line, "QUIT") == 0) {
				s->quits++;
				fputs("221 2.0.0 bye\r\n", out);
				hangup = true;
			} else {
				fputs("500 5.5.1 what\r\n", out);
			}
			fflush(out);
		}
		fclose(in);
		fclose(out);
	}
	return NULL;
}

/* Three messages with a kept session: the second goes over the first
 * connection after RSET; the server then hangs up while the session is
 * idle, and the third goes over a new connection as if nothing happened
 * (no error, no recipient left undecided). */
static void test_reuse(void **state)
{
	struct reuse_server s = { .close_after = 2 };
	struct sockaddr_in sin = { .sin_family = AF_INET };
	socklen_t sl = sizeof(sin);
	struct smtp_client_session *session = NULL;
	struct smtp_client_params p;
	struct smtp_client_info info;
	char path[] = "/tmp/mf-smtp-client-XXXXXX";
	const char *error = NULL;
	pthread_t th;
	int mfd;

	s.listen_fd = socket(AF_INET, SOCK_STREAM, 0);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(s.listen_fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(listen(s.listen_fd, 4), 0);
	getsockname(s.listen_fd, (struct sockaddr *)&sin, &sl);
	pthread_create(&th, NULL, reuse_server, &s);
	mfd = mkstemp(path);
	assert_true(mfd >= 0);
	unlink(path);
	assert_int_equal(write(mfd, message, strlen(message)), (ssize_t)strlen(message));
	memset(&p, 0, sizeof(p));
	p.host = "test";
	p.ip = "127.0.0.1";
	p.port = ntohs(sin.sin_port);
	p.ehlo_name = "client.test";
	p.mail_from = "a@example.com";
	p.msg_fd = mfd;
	p.timeout_ms = 5000;

	for (int m = 1; m <= 3; m++) {
		struct smtp_client_rcpt r[1] = { { .address = "r@example.org" } };
		assert_int_equal(smtp_client_deliver_reuse(&p, &session, r, 1, &info, &error), 0);
		assert_true(r[0].done);
		assert_true(r[0].delivered);
		assert_non_null(session);
		if (m == 2) {
			assert_int_equal(s.connections, 1);
			assert_int_equal(s.rsets, 1);
		}
		smtp_client_rcpts_clear(r, 1);
		if (m == 2)
			usleep(100 * 1000);  /* let the server hang up */
	}
	assert_int_equal(s.connections, 2);
	assert_int_equal(s.messages, 3);
	smtp_client_session_close(&session, true);
	assert_null(session);
	shutdown(s.listen_fd, SHUT_RDWR);
	close(s.listen_fd);
	pthread_join(th, NULL);
	assert_int_equal(s.quits, 1);
	close(mfd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pipelined_mixed),
		cmocka_unit_test(test_reuse),
		cmocka_unit_test(test_rcptmax),
		cmocka_unit_test(test_too_many_rcpts),
		cmocka_unit_test(test_mail_refused_then_close),
		cmocka_unit_test(test_close_after_rcpts),
		cmocka_unit_test(test_no_pipelining),
		cmocka_unit_test(test_smtputf8_and_size),
		cmocka_unit_test(test_data_refused),
		cmocka_unit_test(test_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
