#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>

#include "log.h"
#include "net.h"
#include "tls.h"

#define LINE_MAX_TEST 100
#define CLIENT_TIMEOUT_S 5

struct fixture {
	char dir[64];
	char cert[128], key[128];
	SSL_CTX *sctx;    /* server */
	SSL_CTX *cctx;    /* client, verifying against cert */
	bool have_v6;
};

/* What the echo handler saw last; written by connection threads. */
static atomic_int last_result;
static atomic_int handlers_done;

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A small line protocol: greeting, then one reply per line. */
static void echo_handler(struct mf_conn *conn, void *ctx)
{
	const char *error = NULL, *line;
	ssize_t n;

	if (mf_conn_printf(conn, &error, "220 ready cid=%s\r\n", mf_conn_id(conn)) < 0)
		goto out;
	for (;;) {
		n = mf_conn_read_line(conn, LINE_MAX_TEST, &line, &error);
		if (n == MF_CONN_TOO_LONG) {
			if (mf_conn_printf(conn, &error, "500 too long\r\n") < 0)
				break;
			continue;
		}
		if (n == MF_CONN_TIMEOUT) {
			last_result = MF_CONN_TIMEOUT;
			mf_conn_printf(conn, &error, "421 timeout\r\n");
			break;
		}
		if (n < 0) {
			last_result = (int)n;
			break;
		}
		if (strcmp(line, "QUIT") == 0) {
			mf_conn_printf(conn, &error, "221 bye\r\n");
			mf_conn_close(conn);
			last_result = 0;
			break;
		} else if (strcmp(line, "STARTTLS") == 0) {
			if (mf_conn_printf(conn, &error, "220 go\r\n") < 0)
				break;
			if (mf_conn_starttls(conn, &error) < 0) {
				if (strstr(error, "not offered") != NULL ||
				    strstr(error, "already") != NULL) {
					mf_conn_printf(conn, &error, "454 %s\r\n", error);
					continue;
				}
				break;
			}
		} else if (strcmp(line, "INFO") == 0) {
			const char *v = mf_conn_tls_version(conn);
			mf_conn_printf(conn, &error, "250 remote=%s:%u local=%s:%u tls=%s crlf=%d\r\n",
				       mf_conn_remote_ip(conn), mf_conn_remote_port(conn),
				       mf_conn_local_ip(conn), mf_conn_local_port(conn),
				       v != NULL ? v : "none", mf_conn_last_line_crlf(conn));
		} else if (strcmp(line, "READ5") == 0) {
			char b[6] = { 0 };
			if (mf_conn_read_exact(conn, b, 5, &error) < 0)
				break;
			mf_conn_printf(conn, &error, "250 got %s\r\n", b);
		} else if (strcmp(line, "DRAINWAIT") == 0) {
			/* a handler that finishes its own work once asked to */
			mf_conn_set_timeout(conn, 20);
			mf_conn_printf(conn, &error, "250 waiting\r\n");
			while (!mf_conn_draining(conn)) {
				n = mf_conn_read_line(conn, LINE_MAX_TEST, &line, &error);
				if (n != MF_CONN_TIMEOUT)
					goto out;
			}
			mf_conn_printf(conn, &error, "421 shutting down\r\n");
			last_result = 1;
			break;
		} else {
			mf_conn_printf(conn, &error, "250 echo: %.*s\r\n", (int)n, line);
		}
	}
out:
	atomic_fetch_add(&handlers_done, 1);
}

/* --- client side -------------------------------------------------------- */

struct client {
	int fd;
	SSL *ssl;
	char buf[8192];
	size_t len;
};

static bool v6_available(void)
{
	struct sockaddr_in6 sin6;
	int fd = socket(AF_INET6, SOCK_STREAM, 0);
	bool ok;

	if (fd < 0)
		return false;
	memset(&sin6, 0, sizeof(sin6));
	sin6.sin6_family = AF_INET6;
	sin6.sin6_addr = in6addr_loopback;
	ok = bind(fd, (struct sockaddr *)&sin6, sizeof(sin6)) == 0;
	close(fd);
	return ok;
}

/* Connects; returns the fd or -1 with errno. */
static int try_connect(const char *ip, unsigned port)
{
	struct sockaddr_storage ss;
	socklen_t len;
	struct timeval tv = { .tv_sec = CLIENT_TIMEOUT_S };
	int fd;

	memset(&ss, 0, sizeof(ss));
	if (strchr(ip, ':') != NULL) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)port);
		inet_pton(AF_INET6, ip, &s6->sin6_addr);
		len = sizeof(*s6);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)port);
		inet_pton(AF_INET, ip, &s4->sin_addr);
		len = sizeof(*s4);
	}
	fd = socket(ss.ss_family, SOCK_STREAM, 0);
	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&ss, len) < 0) {
		int err = errno;
		close(fd);
		errno = err;
		return -1;
	}
	return fd;
}

static void client_open(struct client *c, const char *ip, unsigned port)
{
	memset(c, 0, sizeof(*c));
	c->fd = try_connect(ip, port);
	assert_true(c->fd >= 0);
}

static void client_close(struct client *c)
{
	if (c->ssl != NULL)
		SSL_free(c->ssl);
	c->ssl = NULL;
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	ERR_clear_error();
}

static void client_send(struct client *c, const void *data, size_t len)
{
	if (c->ssl != NULL) {
		size_t n = 0;
		assert_int_equal(SSL_write_ex(c->ssl, data, len, &n), 1);
		assert_int_equal(n, len);
	} else {
		assert_int_equal(send(c->fd, data, len, MSG_NOSIGNAL), (ssize_t)len);
	}
}

static void client_sends(struct client *c, const char *s)
{
	client_send(c, s, strlen(s));
}

/* Reads one line (without CRLF) into out.  Returns its length, or -1 at EOF
 * or error (including the client's own timeout). */
static ssize_t client_line(struct client *c, char *out, size_t size)
{
	for (;;) {
		char *lf = memchr(c->buf, '\n', c->len);
		ssize_t n;
		if (lf != NULL) {
			size_t len = (size_t)(lf - c->buf);
			size_t copy = len;
			if (copy > 0 && c->buf[copy - 1] == '\r')
				copy--;
			if (copy >= size)
				copy = size - 1;
			memcpy(out, c->buf, copy);
			out[copy] = '\0';
			memmove(c->buf, lf + 1, c->len - len - 1);
			c->len -= len + 1;
			return (ssize_t)copy;
		}
		if (c->len == sizeof(c->buf))
			return -1;
		if (c->ssl != NULL) {
			size_t got = 0;
			n = SSL_read_ex(c->ssl, c->buf + c->len, sizeof(c->buf) - c->len, &got) == 1 ?
			    (ssize_t)got : -1;
		} else {
			n = recv(c->fd, c->buf + c->len, sizeof(c->buf) - c->len, 0);
		}
		if (n <= 0)
			return -1;
		c->len += (size_t)n;
	}
}

static void expect_line(struct client *c, const char *prefix)
{
	char line[1024];

	assert_true(client_line(c, line, sizeof(line)) >= 0);
	if (strncmp(line, prefix, strlen(prefix)) != 0)
		fail_msg("expected \"%s...\", got \"%s\"", prefix, line);
}

static void client_tls(struct client *c, SSL_CTX *cctx)
{
	const char *error = NULL;

	assert_int_equal(c->len, 0);
	assert_int_equal(mf_tls_client_ssl_new(cctx, c->fd, "localhost", &c->ssl, &error), 0);
	assert_int_equal(SSL_connect(c->ssl), 1);
}

/* True when the peer closes the connection without sending a line. */
static bool client_sees_eof(struct client *c)
{
	char line[256];
	return client_line(c, line, sizeof(line)) < 0;
}

/* --- server helpers --------------------------------------------------------- */

static struct mf_net_server *start(struct fixture *f, const char *addr, enum mf_net_mode mode,
				   bool proxy, unsigned max_conns, unsigned timeout_ms,
				   unsigned *port_r)
{
	struct mf_net_settings set = {
		.service = "test",
		.max_conns = max_conns,
		.busy_reply = "421 4.3.2 too many connections, try later\r\n",
		.handler = echo_handler,
		.timeout_ms = timeout_ms,
		.tls_ctx = f->sctx,
	};
	struct mf_net_server *server = NULL;
	const char *error = NULL;

	assert_int_equal(mf_net_server_create(&set, &server, &error), 0);
	if (mf_net_server_listen(server, addr, mode, proxy, &error) < 0)
		fail_msg("listen: %s", error);
	*port_r = mf_net_server_port(server, 0);
	assert_true(*port_r > 0);
	return server;
}

static struct mf_net_stats wait_stats(struct mf_net_server *server, uint64_t current)
{
	struct mf_net_stats st;
	int64_t end = now_ms() + 3000;

	do {
		mf_net_server_stats(server, &st);
		if (st.current == current)
			break;
		usleep(5000);
	} while (now_ms() < end);
	return st;
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	const char *error = NULL;

	snprintf(f->dir, sizeof(f->dir), "/tmp/mf-test-net-XXXXXX");
	if (mkdtemp(f->dir) == NULL)
		return -1;
	snprintf(f->cert, sizeof(f->cert), "%s/cert.pem", f->dir);
	snprintf(f->key, sizeof(f->key), "%s/key.pem", f->dir);
	if (mf_tls_generate_self_signed(f->cert, f->key, "mail.example.org", &error) < 0 ||
	    mf_tls_server_ctx_new(f->cert, f->key, 0, &f->sctx, &error) < 0 ||
	    mf_tls_client_ctx_new(true, f->cert, &f->cctx, &error) < 0) {
		fprintf(stderr, "setup: %s\n", error);
		return -1;
	}
	f->have_v6 = v6_available();
	mf_log_init("test-net");
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	mf_tls_ctx_free(&f->sctx);
	mf_tls_ctx_free(&f->cctx);
	unlink(f->cert);
	unlink(f->key);
	rmdir(f->dir);
	free(f);
	return 0;
}

/* --- tests ------------------------------------------------------------------- */

static void plain_echo(struct fixture *f, const char *listen_addr, const char *ip)
{
	struct mf_net_server *server;
	struct mf_net_stats st;
	struct client c;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char line[512], want[512], cip[64];
	unsigned port, cport;

	server = start(f, listen_addr, MF_NET_PLAIN, false, 10, 5000, &port);
	client_open(&c, ip, port);
	getsockname(c.fd, (struct sockaddr *)&ss, &sl);
	if (ss.ss_family == AF_INET) {
		inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, cip, sizeof(cip));
		cport = ntohs(((struct sockaddr_in *)&ss)->sin_port);
	} else {
		inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, cip, sizeof(cip));
		cport = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	}

	assert_true(client_line(&c, line, sizeof(line)) > 0);
	/* "220 ready cid=" and 16 hex digits */
	assert_int_equal(strlen(line), 14 + 2 * MF_NET_CID_BYTES);
	assert_int_equal(strspn(line + 14, "0123456789abcdef"), 2 * MF_NET_CID_BYTES);

	client_sends(&c, "hello world\r\n");
	expect_line(&c, "250 echo: hello world");
	/* bare LF ends a line too, and is reported as such */
	client_sends(&c, "bare\nINFO\n");
	expect_line(&c, "250 echo: bare");
	assert_true(client_line(&c, line, sizeof(line)) > 0);
	snprintf(want, sizeof(want), "250 remote=%s:%u local=%s:%u tls=none crlf=0", cip, cport,
		 ip, port);
	assert_string_equal(line, want);
	client_sends(&c, "INFO\r\n");
	assert_true(client_line(&c, line, sizeof(line)) > 0);
	assert_non_null(strstr(line, "crlf=1"));
	/* pipelined commands and read_exact from the buffer */
	client_sends(&c, "READ5\r\nabcdeone\r\ntwo\r\n");
	expect_line(&c, "250 got abcde");
	expect_line(&c, "250 echo: one");
	expect_line(&c, "250 echo: two");
	client_sends(&c, "QUIT\r\n");
	expect_line(&c, "221 bye");
	assert_true(client_sees_eof(&c));
	client_close(&c);

	st = wait_stats(server, 0);
	assert_int_equal(st.current, 0);
	assert_int_equal(st.accepted_total, 1);
	assert_int_equal(st.refused_busy_total, 0);
	mf_net_server_free(&server);
	assert_null(server);
}

static void test_plain_echo_v4(void **state)
{
	plain_echo(*state, "127.0.0.1:0", "127.0.0.1");
}

static void test_plain_echo_v6(void **state)
{
	struct fixture *f = *state;

	if (!f->have_v6)
		skip();
	plain_echo(f, "[::1]:0", "::1");
}

static void test_implicit_tls(void **state)
{
	struct fixture *f = *state;
	struct mf_net_server *server;
	struct mf_net_stats st;
	struct client c;
	char line[512];
	unsigned port;

	server = start(f, "127.0.0.1:0", MF_NET_TLS, false, 10, 5000, &port);
	client_open(&c, "127.0.0.1", port);
	client_tls(&c, f->cctx);
	expect_line(&c, "220 ready");
	client_sends(&c, "INFO\r\n");
	assert_true(client_line(&c, line, sizeof(line)) > 0);
	assert_non_null(strstr(line, "tls=TLSv1.3"));
	client_sends(&c, "STARTTLS\r\n");
	expect_line(&c, "220 go");
	expect_line(&c, "454 starttls: TLS is already active");
	client_sends(&c, "QUIT\r\n");
	expect_line(&c, "221 bye");
	client_close(&c);

	/* a client speaking plain text to the TLS port: handshake failure */
	client_open(&c, "127.0.0.1", port);
	client_sends(&c, "EHLO plain.example\r\n\r\n");
	assert_true(client_sees_eof(&c));
	client_close(&c);
	st = wait_stats(server, 0);
	assert_int_equal(st.tls_failures_total, 1);
	mf_net_server_free(&server);
}

static void test_starttls_injection(void **state)
{
	struct fixture *f = *state;
	struct mf_net_server *server;
	struct client c;
	char line[512], logpath[160], logbuf[4096];
	unsigned port;
	int logfd;
	ssize_t n;

	snprintf(logpath, sizeof(logpath), "%s/log", f->dir);
	logfd = open(logpath, O_RDWR | O_CREAT | O_TRUNC, 0600);
	assert_true(logfd >= 0);
	mf_log_set_fd(logfd);

	server = start(f, "127.0.0.1:0", MF_NET_STARTTLS, false, 10, 5000, &port);
	client_open(&c, "127.0.0.1", port);
	expect_line(&c, "220 ready");
	client_sends(&c, "INFO\r\n");
	expect_line(&c, "250 remote=127.0.0.1");
	/* RFC 3207 6: the injected command arrives with STARTTLS, in clear */
	client_sends(&c, "STARTTLS\r\nINJECTED\r\n");
	expect_line(&c, "220 go");
	client_tls(&c, f->cctx);
	client_sends(&c, "INFO\r\n");
	/* the first reply over TLS answers INFO; INJECTED was never run */
	assert_true(client_line(&c, line, sizeof(line)) > 0);
	assert_true(strncmp(line, "250 remote=127.0.0.1", 20) == 0);
	assert_non_null(strstr(line, "tls=TLSv1.3"));
	client_sends(&c, "QUIT\r\n");
	expect_line(&c, "221 bye");
	client_close(&c);
	mf_net_server_free(&server);

	mf_log_set_fd(2);
	n = pread(logfd, logbuf, sizeof(logbuf) - 1, 0);
	close(logfd);
	unlink(logpath);
	assert_true(n > 0);
	logbuf[n] = '\0';
	/* "INJECTED\r\n" was buffered and thrown away */
	assert_non_null(strstr(logbuf, "discarding bytes sent before TLS"));
	assert_non_null(strstr(logbuf, "bytes=10"));
}

static void test_starttls_not_offered(void **state)
{
	struct fixture *f = *state;
	struct mf_net_server *server;
	struct client c;
	unsigned port;

	server = start(f, "127.0.0.1:0", MF_NET_PLAIN, false, 10, 5000, &port);
	client_open(&c, "127.0.0.1", port);
	expect_line(&c, "220 ready");
	client_sends(&c, "STARTTLS\r\n");
	expect_line(&c, "220 go");
	expect_line(&c, "454 starttls: TLS is not offered");
	client_close(&c);
	mf_net_server_free(&server);
}

static void test_line_too_long(void **state)
{
	struct fixture *f = *state;
	struct mf_net_server *server;
	struct client c;
	char big[6000];
	unsigned port;

	server = start(f, "127.0.0.1:0", MF_NET_PLAIN, false, 10, 5000, &port);
	client_open(&c, "127.0.0.1", port);
	expect_line(&c, "220 ready");

	/* exactly the limit passes, one more byte does not */
	memset(big, 'a', LINE_MAX_TEST);
	memcpy(big + LINE_MAX_TEST, "\r\n", 2);
	client_send(&c, big, LINE_MAX_TEST + 2);
	expect_line(&c, "250 echo: aaaa");
	memset(big, 'a', LINE_MAX_TEST + 1);
	memcpy(big + LINE_MAX_TEST + 1, "\r\n", 2);
	client_send(&c, big, LINE_MAX_TEST + 3);
	expect_line(&c, "500 too long");

	/* far too long, in one go: the rest is skipped, the next line works */
	memset(big, 'b', 2000);
	memcpy(big + 2000, "\r\nPING\r\n", 8);
	client_send(&c, big, 2008);
	expect_line(&c, "500 too long");
	expect_line(&c, "250 echo: PING");

	/* far too long, arriving in pieces */
	memset(big, 'c', sizeof(big));
	client_send(&c, big, 150);
	usleep(50000);
	client_send(&c, big, sizeof(big));
	usleep(50000);
	client_sends(&c, "ccc\r\nPONG\r\n");
	expect_line(&c, "500 too long");
	expect_line(&c, "250 echo: PONG");
	client_close(&c);
	mf_net_server_free(&server);
}

static void test_read_timeout(void **state)
{
	struct fixture *f = *state;
	struct mf_net_server *server;
	struct client c;
	int64_t t0, elapsed;
	unsigned port;

	last_result = 0;
	server = start(f, "127.0.0.1:0", MF_NET_PLAIN, false, 10, 300, &port);
	client_open(&c, "127.0.0.1", port);
	expect_line(&c, "220 ready");
	t0 = now_ms();
	/* a partial line does not reset the deadline */
	client_sends(&c, "HEL");
	expect_line(&c, "421 timeout");
	elapsed = now_ms() - t0;
	assert_true(elapsed >= 250);
	assert_true(elapsed < 2000);
	assert_true(client_sees_eof(&c));
	assert_int_equal(last_result, MF_CONN_TIMEOUT);
	client_close(&c);
	mf_net_server_free(&server);
}

static void test_busy(void **state)
{
	struct fixture *f = *state;
	struct mf_net_server *server;
	struct mf_net_stats st;
	struct client a, b;
	unsigned port;

	server = start(f, "127.0.0.1:0", MF_NET_PLAIN, false, 1, 5000, &port);
	client_open(&a, "127.0.0.1", port);
	expect_line(&a, "220 ready");
	client_open(&b, "127.0.0.1", port);
	expect_line(&b, "421 4.3.2 too many connections, try later");
	assert_true(client_sees_eof(&b));
	client_close(&b);
	mf_net_server_stats(server, &st);
	assert_int_equal(st.current, 1);
	assert_int_equal(st.accepted_total, 2);
	assert_int_equal(st.refused_busy_total, 1);

	/* the first one still works, and once it is gone there is room */
	client_sends(&a, "ping\r\n");
	expect_line(&a, "250 echo: ping");
	client_close(&a);
	wait_stats(server, 0);
	client_open(&b, "127.0.0.1", port);
	expect_line(&b, "220 ready");
	client_close(&b);
	mf_net_server_free(&server);
}

static size_t v2_header(unsigned char *b, unsigned ver_cmd, unsigned fam, const void *block,
			size_t len)
{
	memcpy(b, "\x0D\x0A\x0D\x0A\x00\x0D\x0A\x51\x55\x49\x54\x0A", 12);
	b[12] = (unsigned char)ver_cmd;
	b[13] = (unsigned char)fam;
	b[14] = (unsigned char)(len >> 8);
	b[15] = (unsigned char)len;
	memcpy(b + 16, block, len);
	return 16 + len;
}

static void test_proxy_v1(void **state)
{
	struct fixture *f = *state;
	struct mf_net_server *server;
	struct mf_net_stats st;
	struct client c;
	char line[512];
	unsigned port;

	server = start(f, "127.0.0.1:0", MF_NET_PLAIN, true, 10, 5000, &port);
	client_open(&c, "127.0.0.1", port);
	/* header and first command in one segment: the command survives */
	client_sends(&c, "PROXY TCP4 192.0.2.1 198.51.100.2 56324 25\r\nINFO\r\n");
	expect_line(&c, "220 ready");
	assert_true(client_line(&c, line, sizeof(line)) > 0);
	assert_string_equal(line, "250 remote=192.0.2.1:56324 local=198.51.100.2:25 tls=none crlf=1");
	client_close(&c);

	/* IPv4-mapped IPv6 is shown as IPv4 */
	client_open(&c, "127.0.0.1", port);
	client_sends(&c, "PROXY TCP6 ::ffff:192.0.2.7 2001:db8::25 1000 587\r\n");
	expect_line(&c, "220 ready");
	client_sends(&c, "INFO\r\n");
	assert_true(client_line(&c, line, sizeof(line)) > 0);
	assert_string_equal(line, "250 remote=192.0.2.7:1000 local=2001:db8::25:587 tls=none crlf=1");
	client_close(&c);

	/* UNKNOWN keeps the socket's addresses */
	client_open(&c, "127.0.0.1", port);
	client_sends(&c, "PROXY UNKNOWN\r\nINFO\r\n");
	expect_line(&c, "220 ready");
	expect_line(&c, "250 remote=127.0.0.1:");
	client_close(&c);

	/* no header at all: dropped before the handler runs */
	client_open(&c, "127.0.0.1", port);
	client_sends(&c, "EHLO client.example\r\n");
	assert_true(client_sees_eof(&c));
	client_close(&c);
	st = wait_stats(server, 0);
	assert_int_equal(st.proxy_errors_total, 1);
	mf_net_server_free(&server);
}

static void test_proxy_v2_tls(void **state)
{
	struct fixture *f = *state;
	struct mf_net_server *server;
	struct client c;
	unsigned char hdr[128], block[36];
	char line[512];
	size_t len;
	unsigned port;

	server = start(f, "127.0.0.1:0", MF_NET_TLS, true, 10, 5000, &port);

	/* PROXY v2 TCP6, then the TLS handshake on the same stream */
	memset(block, 0, sizeof(block));
	memcpy(block, "\x20\x01\x0d\xb8", 4);
	block[15] = 1;
	memcpy(block + 16, "\x20\x01\x0d\xb8", 4);
	block[31] = 2;
	memcpy(block + 32, "\x04\xd2\x03\xa1", 4);   /* 1234 -> 929 */
	len = v2_header(hdr, 0x21, 0x21, block, 36);
	client_open(&c, "127.0.0.1", port);
	client_send(&c, hdr, len);
	client_tls(&c, f->cctx);
	expect_line(&c, "220 ready");
	client_sends(&c, "INFO\r\n");
	assert_true(client_line(&c, line, sizeof(line)) > 0);
	assert_string_equal(line, "250 remote=2001:db8::1:1234 local=2001:db8::2:929 tls=TLSv1.3 crlf=1");
	client_close(&c);

	/* LOCAL (a balancer's health check) keeps the real addresses */
	len = v2_header(hdr, 0x20, 0x00, "", 0);
	client_open(&c, "127.0.0.1", port);
	client_send(&c, hdr, len);
	client_tls(&c, f->cctx);
	expect_line(&c, "220 ready");
	client_sends(&c, "INFO\r\n");
	expect_line(&c, "250 remote=127.0.0.1:");
	client_close(&c);
	mf_net_server_free(&server);
}

static void test_port_in_use(void **state)
{
	struct fixture *f = *state;
	struct mf_net_server *a, *b = NULL;
	struct mf_net_settings set = {
		.service = "smtp-in", .max_conns = 1, .handler = echo_handler,
		.timeout_ms = 1000,
	};
	const char *error = NULL;
	char addr[64], want[128];
	unsigned port;

	a = start(f, "127.0.0.1:0", MF_NET_PLAIN, false, 10, 5000, &port);
	assert_int_equal(mf_net_server_create(&set, &b, &error), 0);
	snprintf(addr, sizeof(addr), "127.0.0.1:%u", port);
	assert_int_equal(mf_net_server_listen(b, addr, MF_NET_PLAIN, false, &error), -1);
	snprintf(want, sizeof(want), "smtp-in: listen %s: address already in use", addr);
	assert_string_equal(error, want);

	assert_int_equal(mf_net_server_listen(b, "localhost:25", MF_NET_PLAIN, false, &error), -1);
	assert_non_null(strstr(error, "smtp-in: listen localhost:25: invalid IPv4"));
	assert_int_equal(mf_net_server_listen(b, "127.0.0.1:65536", MF_NET_PLAIN, false, &error), -1);
	assert_non_null(strstr(error, "invalid port"));
	assert_int_equal(mf_net_server_listen(b, "[::1:25", MF_NET_PLAIN, false, &error), -1);
	/* TLS without a certificate */
	assert_int_equal(mf_net_server_listen(b, "127.0.0.1:0", MF_NET_TLS, false, &error), -1);
	assert_non_null(strstr(error, "needs a TLS certificate"));
	assert_int_equal(mf_net_server_port(b, 0), 0);
	mf_net_server_free(&b);
	mf_net_server_free(&a);
}

static void test_drain_idle(void **state)
{
	struct fixture *f = *state;
	struct mf_net_server *server;
	struct mf_net_stats st;
	struct client c;
	const char *error = NULL;
	int64_t t0, elapsed;
	unsigned port;

	last_result = 0;
	/* reads would block for 10 s; drain must not wait for that */
	server = start(f, "127.0.0.1:0", MF_NET_PLAIN, false, 10, 10000, &port);
	client_open(&c, "127.0.0.1", port);
	expect_line(&c, "220 ready");
	t0 = now_ms();
	assert_int_equal(mf_net_server_drain(server, 300, &error), 0);
	elapsed = now_ms() - t0;
	assert_true(elapsed >= 250);
	assert_true(elapsed < 1500);
	mf_net_server_stats(server, &st);
	assert_int_equal(st.current, 0);
	assert_int_equal(last_result, MF_CONN_EOF);
	assert_true(client_sees_eof(&c));
	client_close(&c);
	/* the listener is closed */
	assert_int_equal(try_connect("127.0.0.1", port), -1);
	assert_int_equal(errno, ECONNREFUSED);
	mf_net_server_free(&server);
}

static void test_drain_handler_finishes(void **state)
{
	struct fixture *f = *state;
	struct mf_net_server *server;
	struct client c;
	const char *error = NULL;
	int64_t t0;
	unsigned port;

	last_result = 0;
	server = start(f, "127.0.0.1:0", MF_NET_PLAIN, false, 10, 10000, &port);
	client_open(&c, "127.0.0.1", port);
	expect_line(&c, "220 ready");
	client_sends(&c, "DRAINWAIT\r\n");
	expect_line(&c, "250 waiting");
	t0 = now_ms();
	assert_int_equal(mf_net_server_drain(server, 5000, &error), 0);
	assert_true(now_ms() - t0 < 1000);
	/* it said goodbye itself: no shutdown(2) was needed */
	expect_line(&c, "421 shutting down");
	assert_int_equal(last_result, 1);
	client_close(&c);
	mf_net_server_free(&server);
}

static void test_many_connections(void **state)
{
	struct fixture *f = *state;
	struct mf_net_server *server;
	struct mf_net_stats st;
	struct client cs[20];
	char want[64];
	unsigned port;

	server = start(f, "127.0.0.1:0", MF_NET_PLAIN, false, 20, 5000, &port);
	for (int i = 0; i < 20; i++) {
		client_open(&cs[i], "127.0.0.1", port);
		expect_line(&cs[i], "220 ready");
	}
	for (int i = 0; i < 20; i++) {
		snprintf(want, sizeof(want), "n%d\r\n", i);
		client_sends(&cs[i], want);
	}
	for (int i = 0; i < 20; i++) {
		snprintf(want, sizeof(want), "250 echo: n%d", i);
		expect_line(&cs[i], want);
	}
	mf_net_server_stats(server, &st);
	assert_int_equal(st.current, 20);
	/* free with connections still open: they are shut down */
	mf_net_server_free(&server);
	for (int i = 0; i < 20; i++) {
		assert_true(client_sees_eof(&cs[i]));
		client_close(&cs[i]);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_plain_echo_v4),
		cmocka_unit_test(test_plain_echo_v6),
		cmocka_unit_test(test_implicit_tls),
		cmocka_unit_test(test_starttls_injection),
		cmocka_unit_test(test_starttls_not_offered),
		cmocka_unit_test(test_line_too_long),
		cmocka_unit_test(test_read_timeout),
		cmocka_unit_test(test_busy),
		cmocka_unit_test(test_proxy_v1),
		cmocka_unit_test(test_proxy_v2_tls),
		cmocka_unit_test(test_port_in_use),
		cmocka_unit_test(test_drain_idle),
		cmocka_unit_test(test_drain_handler_finishes),
		cmocka_unit_test(test_many_connections),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
