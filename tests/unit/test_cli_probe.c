/* mailfleet probe (services/cli/cmd_probe.c): URL and status-line parsing,
 * and GET against real loopback servers that answer 200, 503, garbage,
 * nothing, or close at once. */
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
#include <time.h>
#include <unistd.h>

#include "services/cli/cmd_probe.h"

static void test_parse_url(void **state)
{
	static const struct {
		const char *url;
		int ret;
		const char *host;
		unsigned port;
		const char *path;
	} cases[] = {
		{ "http://127.0.0.1:1081/healthz", 0, "127.0.0.1", 1081, "/healthz" },
		{ "http://127.0.0.1:1081", 0, "127.0.0.1", 1081, "/healthz" },
		{ "http://localhost:8080/readyz", 0, "127.0.0.1", 8080, "/readyz" },
		{ "http://[::1]:9090/metrics", 0, "::1", 9090, "/metrics" },
		{ "http://127.1.2.3:1/x?y=z", 0, "127.1.2.3", 1, "/x?y=z" },
		{ "https://127.0.0.1:1081/", -1, NULL, 0, NULL },
		{ "http://10.0.0.1:1081/", -1, NULL, 0, NULL },          /* not loopback */
		{ "http://example.org:80/", -1, NULL, 0, NULL },         /* no resolver */
		{ "http://[2001:db8::1]:80/", -1, NULL, 0, NULL },
		{ "http://127.0.0.1/", -1, NULL, 0, NULL },              /* no port */
		{ "http://127.0.0.1:0/", -1, NULL, 0, NULL },
		{ "http://127.0.0.1:65536/", -1, NULL, 0, NULL },
		{ "http://127.0.0.1:12x/", -1, NULL, 0, NULL },
		{ "http://[::1/", -1, NULL, 0, NULL },
		{ "http://127.0.0.1:80/a b", -1, NULL, 0, NULL },        /* space in path */
		{ "http://127.0.0.1:80/a\r\nX: y", -1, NULL, 0, NULL },  /* header injection */
		{ "http://:80/", -1, NULL, 0, NULL },
		{ "", -1, NULL, 0, NULL },
	};
	struct cli_probe_target t;
	const char *err;
	char longurl[CLI_PROBE_PATH_MAX + 64];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int r = cli_probe_parse_url(cases[i].url, &t, &err);
		if (r != cases[i].ret)
			fail_msg("%s: got %d, want %d", cases[i].url, r, cases[i].ret);
		if (r == 0) {
			assert_string_equal(t.host, cases[i].host);
			assert_int_equal(t.port, cases[i].port);
			assert_string_equal(t.path, cases[i].path);
		} else {
			assert_non_null(err);
		}
	}
	memcpy(longurl, "http://127.0.0.1:1/", 19);
	memset(longurl + 19, 'a', CLI_PROBE_PATH_MAX);
	longurl[19 + CLI_PROBE_PATH_MAX] = '\0';
	assert_int_equal(cli_probe_parse_url(longurl, &t, &err), -1);
}

static void test_parse_status(void **state)
{
	static const struct {
		const char *in;
		int ret;
		int status;
	} cases[] = {
		{ "HTTP/1.1 200 OK\r\n", 1, 200 },
		{ "HTTP/1.0 503 Service Unavailable\r\n", 1, 503 },
		{ "HTTP/1.1 204\r\n", 1, 204 },
		{ "HTTP/1.1 200\n", 1, 200 },
		{ "HTTP/1.1 200 OK", 0, 0 },        /* line not ended yet */
		{ "HTT", 0, 0 },
		{ "", 0, 0 },
		{ "SSH-2.0-OpenSSH\r\n", -1, 0 },
		{ "HTTQ", -1, 0 },
		{ "HTTP/1.1 20 OK\r\n", -1, 0 },
		{ "HTTP/1.1 2000 OK\r\n", -1, 0 },
		{ "HTTP/1.1 099 x\r\n", -1, 0 },
		{ "HTTP/1.1 600 x\r\n", -1, 0 },
		{ "HTTP/x.1 200 OK\r\n", -1, 0 },
		{ "HTTP/1.1  200 OK\r\n", -1, 0 },
		{ "\r\n", -1, 0 },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int status = 0;
		int r = cli_probe_parse_status(cases[i].in, strlen(cases[i].in), &status);
		if (r != cases[i].ret)
			fail_msg("case %zu (%s): got %d, want %d", i, cases[i].in, r, cases[i].ret);
		if (r == 1)
			assert_int_equal(status, cases[i].status);
	}
}

/* A one-connection loopback server that answers with a fixed reply. */
struct server {
	int fd;
	unsigned port;
	const char *reply;   /* NULL: say nothing, keep the connection open */
	int close_at_once;
	pthread_t thread;
	char request[1024];
};

static void *serve(void *arg)
{
	struct server *s = arg;
	int c = accept(s->fd, NULL, NULL);
	ssize_t n;

	if (c < 0)
		return NULL;
	if (s->close_at_once) {
		close(c);
		return NULL;
	}
	n = recv(c, s->request, sizeof(s->request) - 1, 0);
	if (n > 0)
		s->request[n] = '\0';
	if (s->reply != NULL) {
		if (send(c, s->reply, strlen(s->reply), MSG_NOSIGNAL) < 0) {
			/* the test sees the failure */
		}
	} else {
		sleep(3);  /* longer than the probe's timeout in the test */
	}
	close(c);
	return NULL;
}

static void server_start(struct server *s, const char *reply, int close_at_once)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	socklen_t len = sizeof(sin);

	memset(s, 0, sizeof(*s));
	s->reply = reply;
	s->close_at_once = close_at_once;
	s->fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(s->fd >= 0);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(s->fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(listen(s->fd, 1), 0);
	assert_int_equal(getsockname(s->fd, (struct sockaddr *)&sin, &len), 0);
	s->port = ntohs(sin.sin_port);
	assert_int_equal(pthread_create(&s->thread, NULL, serve, s), 0);
}

static void server_stop(struct server *s)
{
	pthread_join(s->thread, NULL);
	close(s->fd);
}

static int get(struct server *s, const char *path, int timeout_ms, const char **err)
{
	struct cli_probe_target t;
	char url[128];

	snprintf(url, sizeof(url), "http://127.0.0.1:%u%s", s->port, path);
	assert_int_equal(cli_probe_parse_url(url, &t, err), 0);
	return cli_probe_get(&t, timeout_ms, err);
}

static void test_get_statuses(void **state)
{
	struct server s;
	const char *err;

	server_start(&s, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", 0);
	assert_int_equal(get(&s, "/healthz", 2000, &err), 200);
	server_stop(&s);
	assert_non_null(strstr(s.request, "GET /healthz HTTP/1.0\r\n"));
	assert_non_null(strstr(s.request, "Host: 127.0.0.1:"));

	server_start(&s, "HTTP/1.1 503 Service Unavailable\r\n\r\ndraining", 0);
	assert_int_equal(get(&s, "/readyz", 2000, &err), 503);
	server_stop(&s);

	server_start(&s, "SSH-2.0-x\r\n", 0);
	assert_int_equal(get(&s, "/", 2000, &err), -1);
	assert_string_equal(err, "the answer is not HTTP");
	server_stop(&s);

	server_start(&s, "HTTP/1.1 200 OK", 0);   /* closes before the line ends */
	assert_int_equal(get(&s, "/", 2000, &err), -1);
	server_stop(&s);

	server_start(&s, NULL, 1);
	assert_int_equal(get(&s, "/", 2000, &err), -1);
	server_stop(&s);
}

static void test_get_timeout_and_refused(void **state)
{
	struct server s;
	struct cli_probe_target t;
	const char *err;
	struct timespec a, b;
	long ms;
	unsigned port;

	server_start(&s, NULL, 0);
	clock_gettime(CLOCK_MONOTONIC, &a);
	assert_int_equal(get(&s, "/", 300, &err), -1);
	clock_gettime(CLOCK_MONOTONIC, &b);
	ms = (b.tv_sec - a.tv_sec) * 1000 + (b.tv_nsec - a.tv_nsec) / 1000000;
	assert_non_null(strstr(err, "timed out"));
	assert_true(ms >= 250 && ms < 2000);
	port = s.port;
	server_stop(&s);

	/* The listener is closed now: nothing answers on its port. */
	{
		char url[64];
		snprintf(url, sizeof(url), "http://127.0.0.1:%u/", port);
		assert_int_equal(cli_probe_parse_url(url, &t, &err), 0);
	}
	assert_int_equal(cli_probe_get(&t, 1000, &err), -1);
	assert_non_null(strstr(err, "connect"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_url),
		cmocka_unit_test(test_parse_status),
		cmocka_unit_test(test_get_statuses),
		cmocka_unit_test(test_get_timeout_and_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
