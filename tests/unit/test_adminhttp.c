#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "adminhttp.h"
#include "log.h"
#include "metrics.h"

struct response {
	int status;
	char headers[32768];
	char body[32768];
};

/* A minimal HTTP/1.1 client over a real loopback socket. */
static int http(int family, unsigned port, const char *method, const char *path,
		struct response *r)
{
	struct sockaddr_storage ss;
	socklen_t sslen;
	struct timeval tv = {5, 0};
	char req[512], buf[32768];
	size_t n = 0;
	int fd;

	memset(&ss, 0, sizeof(ss));
	if (family == AF_INET6) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)port);
		s6->sin6_addr = in6addr_loopback;
		sslen = sizeof(*s6);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)port);
		s4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		sslen = sizeof(*s4);
	}
	fd = socket(family, SOCK_STREAM, 0);
	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&ss, sslen) < 0) {
		close(fd);
		return -1;
	}
	int len = snprintf(req, sizeof(req),
			   "%s %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
			   "Content-Length: 0\r\n\r\n", method, path);
	if (write(fd, req, (size_t)len) != len) {
		close(fd);
		return -1;
	}
	for (;;) {
		ssize_t r2 = read(fd, buf + n, sizeof(buf) - 1 - n);
		if (r2 <= 0)
			break;
		n += (size_t)r2;
		if (n == sizeof(buf) - 1)
			break;
	}
	close(fd);
	buf[n] = '\0';
	memset(r, 0, sizeof(*r));
	if (sscanf(buf, "HTTP/1.1 %d", &r->status) != 1)
		return -1;
	char *end = strstr(buf, "\r\n\r\n");
	if (end == NULL)
		return -1;
	*end = '\0';
	snprintf(r->headers, sizeof(r->headers), "%s", buf);
	snprintf(r->body, sizeof(r->body), "%s", end + 4);
	return r->status;
}

static bool header_has(const struct response *r, const char *line)
{
	return strcasestr(r->headers, line) != NULL;
}

struct dep {
	atomic_bool up;
	const char *reason;
};

static int check_dep(void *ctx, const char **error_r)
{
	struct dep *d = ctx;

	if (atomic_load(&d->up))
		return 0;
	*error_r = d->reason;
	return -1;
}

struct fixture {
	struct mf_metrics *metrics;
	struct mf_adminhttp *http;
	struct dep nats, redis;
	unsigned port;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	const char *error;

	mf_log_apply_spec("error", &error);
	f->metrics = mf_metrics_create();
	f->http = mf_adminhttp_create("smtp-in", f->metrics);
	atomic_init(&f->nats.up, true);
	f->nats.reason = "not connected";
	atomic_init(&f->redis.up, true);
	f->redis.reason = "connection refused";
	mf_adminhttp_add_check(f->http, "nats", check_dep, &f->nats);
	mf_adminhttp_add_check(f->http, "redis", check_dep, &f->redis);
	if (mf_adminhttp_start(f->http, "127.0.0.1", 0, &error) < 0) {
		fprintf(stderr, "start: %s\n", error);
		return -1;
	}
	f->port = mf_adminhttp_port(f->http);
	if (f->port == 0)
		return -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	mf_adminhttp_free(&f->http);
	mf_metrics_free(&f->metrics);
	free(f);
	return 0;
}

static void test_healthz_and_errors(void **state)
{
	struct fixture *f = *state;
	struct response r;

	assert_int_equal(http(AF_INET, f->port, "GET", "/healthz", &r), 200);
	assert_string_equal(r.body, "ok\n");
	assert_true(header_has(&r, "Content-Type: text/plain"));
	/* the query string is not part of the path */
	assert_int_equal(http(AF_INET, f->port, "GET", "/healthz?probe=1", &r), 200);
	assert_int_equal(http(AF_INET, f->port, "GET", "/nope", &r), 404);
	assert_int_equal(http(AF_INET, f->port, "GET", "/healthz/", &r), 404);
	assert_int_equal(http(AF_INET, f->port, "POST", "/healthz", &r), 405);
	assert_true(header_has(&r, "Allow: GET"));
	assert_int_equal(http(AF_INET, f->port, "DELETE", "/metrics", &r), 405);
	assert_int_equal(http(AF_INET, f->port, "HEAD", "/readyz", &r), 405);
}

static void test_readyz_checks(void **state)
{
	struct fixture *f = *state;
	struct response r;

	assert_int_equal(http(AF_INET, f->port, "GET", "/readyz", &r), 200);
	assert_string_equal(r.body, "ready\n");

	atomic_store(&f->nats.up, false);
	assert_int_equal(http(AF_INET, f->port, "GET", "/readyz", &r), 503);
	assert_string_equal(r.body, "nats: not connected\n");

	atomic_store(&f->redis.up, false);
	assert_int_equal(http(AF_INET, f->port, "GET", "/readyz", &r), 503);
	assert_string_equal(r.body, "nats: not connected\nredis: connection refused\n");

	atomic_store(&f->nats.up, true);
	atomic_store(&f->redis.up, true);
	assert_int_equal(http(AF_INET, f->port, "GET", "/readyz", &r), 200);
	/* liveness does not depend on readiness */
	atomic_store(&f->nats.up, false);
	assert_int_equal(http(AF_INET, f->port, "GET", "/healthz", &r), 200);
}

static void test_draining_and_stopping(void **state)
{
	struct fixture *f = *state;
	struct response r;

	mf_adminhttp_set_draining(f->http, true);
	assert_int_equal(http(AF_INET, f->port, "GET", "/readyz", &r), 503);
	assert_string_equal(r.body, "draining\n");
	assert_int_equal(http(AF_INET, f->port, "GET", "/healthz", &r), 200);
	mf_adminhttp_set_draining(f->http, false);
	assert_int_equal(http(AF_INET, f->port, "GET", "/readyz", &r), 200);

	mf_adminhttp_set_stopping(f->http);
	assert_int_equal(http(AF_INET, f->port, "GET", "/healthz", &r), 503);
	assert_string_equal(r.body, "stopping\n");
	assert_int_equal(http(AF_INET, f->port, "GET", "/readyz", &r), 503);
	assert_string_equal(r.body, "stopping\n");
}

static void test_metrics_endpoint(void **state)
{
	struct fixture *f = *state;
	struct response r;
	char path[] = "/tmp/mf-test-adminhttp-XXXXXX";
	char cmd[256];

	mf_metric_inc(mf_metrics_counter(f->metrics, "mailfleet_smtp_in_connections_total",
					 "Connections.", NULL));
	assert_int_equal(http(AF_INET, f->port, "GET", "/healthz", &r), 200);
	assert_int_equal(http(AF_INET, f->port, "GET", "/healthz", &r), 200);
	assert_int_equal(http(AF_INET, f->port, "GET", "/x", &r), 404);
	assert_int_equal(http(AF_INET, f->port, "PUT", "/readyz", &r), 405);
	assert_int_equal(http(AF_INET, f->port, "GET", "/metrics", &r), 200);
	assert_true(header_has(&r, "Content-Type: text/plain; version=0.0.4"));
	assert_non_null(strstr(r.body, "mailfleet_smtp_in_connections_total 1\n"));
	assert_non_null(strstr(r.body, "mailfleet_smtp_in_admin_requests_total"
				      "{path=\"/healthz\",code=\"200\"} 2\n"));
	assert_non_null(strstr(r.body, "mailfleet_smtp_in_admin_requests_total"
				      "{path=\"other\",code=\"404\"} 1\n"));
	assert_non_null(strstr(r.body, "mailfleet_smtp_in_admin_requests_total"
				      "{path=\"/readyz\",code=\"405\"} 1\n"));
	/* initialised series show before they happen */
	assert_non_null(strstr(r.body, "mailfleet_smtp_in_admin_requests_total"
				      "{path=\"/readyz\",code=\"503\"} 0\n"));

	/* what is served passes promtool */
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, r.body, strlen(r.body)), (ssize_t)strlen(r.body));
	close(fd);
	snprintf(cmd, sizeof(cmd), "/usr/bin/promtool check metrics < %s", path);
	int status = system(cmd);
	unlink(path);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

static void test_port_in_use(void **state)
{
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);
	struct mf_metrics *metrics = mf_metrics_create();
	struct mf_adminhttp *h = mf_adminhttp_create("smtp-in", metrics);
	const char *error = NULL;
	char want[128];
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(listen(fd, 1), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
	unsigned port = ntohs(sin.sin_port);

	assert_int_equal(mf_adminhttp_start(h, "127.0.0.1", port, &error), -1);
	snprintf(want, sizeof(want), "smtp-in: admin listen 127.0.0.1:%u: address already in use",
		 port);
	assert_string_equal(error, want);
	assert_int_equal(mf_adminhttp_port(h), 0);

	assert_int_equal(mf_adminhttp_start(h, "not-an-address.invalid", 1, &error), -1);
	assert_non_null(strstr(error, "smtp-in: admin listen not-an-address.invalid:1: "));
	close(fd);
	mf_adminhttp_free(&h);
	assert_null(h);
	mf_metrics_free(&metrics);
}

static void test_ipv6_and_restart(void **state)
{
	struct mf_metrics *metrics = mf_metrics_create();
	struct mf_adminhttp *h = mf_adminhttp_create("web", metrics);
	struct response r;
	const char *error;

	if (mf_adminhttp_start(h, "::1", 0, &error) < 0) {
		/* loopback IPv6 may be disabled in a container */
		assert_non_null(strstr(error, "web: admin listen [::1]:0: "));
		mf_adminhttp_free(&h);
		mf_metrics_free(&metrics);
		skip();
	}
	unsigned port = mf_adminhttp_port(h);
	assert_int_equal(http(AF_INET6, port, "GET", "/healthz", &r), 200);
	mf_adminhttp_stop(h);
	assert_int_equal(mf_adminhttp_port(h), 0);
	/* the socket is closed on stop: connecting fails, and the port can be
	 * listened on again */
	assert_int_equal(http(AF_INET6, port, "GET", "/healthz", &r), -1);
	assert_int_equal(mf_adminhttp_start(h, "::1", port, &error), 0);
	assert_int_equal(http(AF_INET6, port, "GET", "/readyz", &r), 200);
	mf_adminhttp_free(&h);
	mf_metrics_free(&metrics);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_healthz_and_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_readyz_checks, setup, teardown),
		cmocka_unit_test_setup_teardown(test_draining_and_stopping, setup, teardown),
		cmocka_unit_test_setup_teardown(test_metrics_endpoint, setup, teardown),
		cmocka_unit_test(test_port_in_use),
		cmocka_unit_test(test_ipv6_and_restart),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
