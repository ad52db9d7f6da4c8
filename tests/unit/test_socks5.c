/* SOCKS5 client (RFC 1928, RFC 1929): message builders, reply parsers, and
 * the whole exchange against a scripted proxy on a socketpair. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdbool.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "services/delivery/socks5.h"

static void test_builders(void **state)
{
	uint8_t b[SOCKS5_MSG_MAX + 600];
	size_t n;

	n = socks5_greeting(b, 0);
	assert_int_equal(n, 3);
	assert_memory_equal(b, "\x05\x01\x00", 3);
	n = socks5_greeting(b, 1);
	assert_int_equal(n, 4);
	assert_memory_equal(b, "\x05\x02\x00\x02", 4);

	n = socks5_userpass_request(b, sizeof(b), "ab", "xyz");
	assert_int_equal(n, 8);
	assert_memory_equal(b, "\x01\x02" "ab" "\x03" "xyz", 8);
	assert_int_equal(socks5_userpass_request(b, sizeof(b), "", "x"), 0);
	assert_int_equal(socks5_userpass_request(b, sizeof(b), "x", ""), 0);
	{
		char long_user[300];
		memset(long_user, 'u', sizeof(long_user) - 1);
		long_user[sizeof(long_user) - 1] = '\0';
		assert_int_equal(socks5_userpass_request(b, sizeof(b), long_user, "x"), 0);
		long_user[255] = '\0';
		assert_int_equal(socks5_userpass_request(b, sizeof(b), long_user, "x"), 3 + 255 + 1);
	}

	n = socks5_connect_request(b, "192.0.2.1", 25);
	assert_int_equal(n, 10);
	assert_memory_equal(b, "\x05\x01\x00\x01\xc0\x00\x02\x01\x00\x19", 10);
	n = socks5_connect_request(b, "2001:db8::1", 587);
	assert_int_equal(n, 22);
	assert_int_equal(b[3], 4);
	assert_int_equal(b[4], 0x20);
	assert_int_equal(b[19], 1);
	assert_int_equal(b[20], 0x02);
	assert_int_equal(b[21], 0x4b);
	assert_int_equal(socks5_connect_request(b, "mx.example.org", 25), 0);
}

static void test_method_reply(void **state)
{
	uint8_t m = 0xee;
	const char *error = NULL;

	assert_int_equal(socks5_method_reply((const uint8_t *)"\x05\x00", 2, 0, &m, &error), 0);
	assert_int_equal(m, SOCKS5_METHOD_NONE);
	assert_int_equal(socks5_method_reply((const uint8_t *)"\x05\x02", 2, 1, &m, &error), 0);
	assert_int_equal(m, SOCKS5_METHOD_USERPASS);
	/* A method we did not offer. */
	assert_int_equal(socks5_method_reply((const uint8_t *)"\x05\x02", 2, 0, &m, &error), -1);
	assert_non_null(strstr(error, "did not offer"));
	assert_int_equal(socks5_method_reply((const uint8_t *)"\x05\xff", 2, 0, &m, &error), -1);
	assert_non_null(strstr(error, "wants authentication"));
	assert_int_equal(socks5_method_reply((const uint8_t *)"\x05\xff", 2, 1, &m, &error), -1);
	assert_non_null(strstr(error, "none of our methods"));
	assert_int_equal(socks5_method_reply((const uint8_t *)"\x04\x00", 2, 0, &m, &error), -1);
	assert_int_equal(socks5_method_reply((const uint8_t *)"\x05\x01", 2, 1, &m, &error), -1);
	assert_int_equal(socks5_userpass_reply((const uint8_t *)"\x01\x00", 2, &error), 0);
	assert_int_equal(socks5_userpass_reply((const uint8_t *)"\x01\x01", 2, &error), -1);
	assert_non_null(strstr(error, "refused"));
	assert_int_equal(socks5_userpass_reply((const uint8_t *)"\x05\x00", 2, &error), -1);
}

struct reply_case {
	const char *bytes;
	size_t len;
	int want;        /* 1 more, 0 done, -1 error */
	size_t need;     /* for 1 and 0 */
	const char *err; /* for -1 */
};

static void test_connect_reply(void **state)
{
	static const struct reply_case cases[] = {
		{ "", 0, 1, 5, NULL },
		{ "\x05\x00\x00", 3, 1, 5, NULL },
		{ "\x05\x00\x00\x01\x7f", 5, 1, 10, NULL },
		{ "\x05\x00\x00\x01\x7f\x00\x00\x01\x04\x00", 10, 0, 10, NULL },
		{ "\x05\x00\x00\x04\x00", 5, 1, 22, NULL },
		{ "\x05\x00\x00\x03\x03", 5, 1, 10, NULL },
		{ "\x05\x00\x00\x03\x03" "abc\x00\x19", 10, 0, 10, NULL },
		{ "\x05\x00\x00\x01\x7f\x00\x00\x01\x04\x00X", 11, -1, 0, "extra bytes" },
		{ "\x05\x05\x00\x01\x00", 5, -1, 0, "connection refused (5)" },
		{ "\x05\x04\x00\x01\x00", 5, -1, 0, "host unreachable" },
		{ "\x05\x09\x00\x01\x00", 5, -1, 0, "unknown error" },
		{ "\x05\x00\x00\x02\x00", 5, -1, 0, "bad address type 2" },
		{ "\x04\x00\x00\x01\x00", 5, -1, 0, "malformed" },
		{ "\x05\x00\x01\x01\x00", 5, -1, 0, "malformed" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t need = 0;
		const char *error = NULL;
		int r = socks5_connect_reply((const uint8_t *)cases[i].bytes, cases[i].len, &need,
					     &error);
		if (r != cases[i].want)
			fail_msg("case %zu: got %d want %d", i, r, cases[i].want);
		if (r >= 0 && need != cases[i].need)
			fail_msg("case %zu: need %zu want %zu", i, need, cases[i].need);
		if (r < 0 && (error == NULL || strstr(error, cases[i].err) == NULL))
			fail_msg("case %zu: error %s", i, error != NULL ? error : "(null)");
	}
}

/* --- the whole exchange --- */

struct proxy {
	int fd;
	bool want_auth;
	uint8_t method;        /* chosen method */
	uint8_t auth_status;
	uint8_t rep;           /* CONNECT reply code */
	bool close_early;      /* hang up after the greeting */
	/* seen */
	char user[256], pass[256];
	uint8_t req[32];
	size_t req_len;
};

static bool rd(int fd, uint8_t *b, size_t n)
{
	while (n > 0) {
		ssize_t r = read(fd, b, n);
		if (r <= 0)
			return false;
		b += r;
		n -= (size_t)r;
	}
	return true;
}

static void *proxy_thread(void *arg)
{
	struct proxy *p = arg;
	uint8_t b[600];

	if (!rd(p->fd, b, 2) || !rd(p->fd, b + 2, b[1]))
		goto out;
	if (p->close_early)
		goto out;
	b[0] = 5;
	b[1] = p->method;
	if (write(p->fd, b, 2) != 2 || p->method == 0xff)
		goto out;
	if (p->method == 2) {
		if (!rd(p->fd, b, 2) || !rd(p->fd, (uint8_t *)p->user, b[1]))
			goto out;
		if (!rd(p->fd, b, 1) || !rd(p->fd, (uint8_t *)p->pass, b[0]))
			goto out;
		b[0] = 1;
		b[1] = p->auth_status;
		if (write(p->fd, b, 2) != 2 || p->auth_status != 0)
			goto out;
	}
	if (!rd(p->fd, p->req, 4))
		goto out;
	p->req_len = 4 + (p->req[3] == 1 ? 4 : 16) + 2;
	if (!rd(p->fd, p->req + 4, p->req_len - 4))
		goto out;
	/* A domain-name bound address, then the destination's greeting,
	 * which must stay unread by the SOCKS code. */
	memcpy(b, "\x05\x00\x00\x03\x04" "host" "\x00\x19" "220 hi\r\n", 19);
	b[1] = p->rep;
	(void)!write(p->fd, b, p->rep == 0 ? 19 : 11);
out:
	shutdown(p->fd, SHUT_WR);
	return NULL;
}

static int run(struct proxy *p, const char *ip, const char *user, const char *pass,
	       const char **error_r, char *after, size_t after_size)
{
	int sv[2];
	pthread_t th;
	int r;

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	p->fd = sv[1];
	pthread_create(&th, NULL, proxy_thread, p);
	r = socks5_connect(sv[0], ip, 25, user, pass, 2000, error_r);
	if (r == 0 && after != NULL) {
		ssize_t n = read(sv[0], after, after_size - 1);
		after[n > 0 ? n : 0] = '\0';
	}
	pthread_join(th, NULL);
	close(sv[0]);
	close(sv[1]);
	return r;
}

static void test_exchange(void **state)
{
	struct proxy p;
	const char *error = NULL;
	char after[64];

	memset(&p, 0, sizeof(p));
	p.method = 0;
	assert_int_equal(run(&p, "192.0.2.7", NULL, NULL, &error, after, sizeof(after)), 0);
	assert_int_equal(p.req_len, 10);
	assert_memory_equal(p.req, "\x05\x01\x00\x01\xc0\x00\x02\x07\x00\x19", 10);
	assert_string_equal(after, "220 hi\r\n");

	memset(&p, 0, sizeof(p));
	p.method = 2;
	assert_int_equal(run(&p, "2001:db8::2", "me", "secret", &error, after, sizeof(after)), 0);
	assert_string_equal(p.user, "me");
	assert_string_equal(p.pass, "secret");
	assert_int_equal(p.req[3], 4);
	assert_string_equal(after, "220 hi\r\n");

	memset(&p, 0, sizeof(p));
	p.method = 2;
	p.auth_status = 1;
	assert_int_equal(run(&p, "192.0.2.7", "me", "bad", &error, NULL, 0), -1);
	assert_non_null(strstr(error, "refused our user name"));

	memset(&p, 0, sizeof(p));
	p.method = 0;
	p.rep = 5;
	assert_int_equal(run(&p, "192.0.2.7", NULL, NULL, &error, NULL, 0), -1);
	assert_non_null(strstr(error, "connection refused"));

	memset(&p, 0, sizeof(p));
	p.method = 0xff;
	assert_int_equal(run(&p, "192.0.2.7", NULL, NULL, &error, NULL, 0), -1);
	assert_non_null(strstr(error, "wants authentication"));

	memset(&p, 0, sizeof(p));
	p.close_early = true;
	assert_int_equal(run(&p, "192.0.2.7", NULL, NULL, &error, NULL, 0), -1);
	assert_non_null(strstr(error, "closed"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_builders),
		cmocka_unit_test(test_method_reply),
		cmocka_unit_test(test_connect_reply),
		cmocka_unit_test(test_exchange),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
