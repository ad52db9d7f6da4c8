/* Per-destination concurrency across workers, against a redis-server of
 * our own on a random loopback port; and fail-open when Redis is down. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log.h"
#include "redis.h"
#include "services/delivery/delivery_limit.h"

static int free_port(void)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	socklen_t len = sizeof(sin);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port;

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
	port = ntohs(sin.sin_port);
	close(fd);
	return port;
}

static bool port_open(int port)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	bool ok;

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ok = connect(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0;
	close(fd);
	return ok;
}

static void test_limit(void **state)
{
	static const struct mf_redis_settings set = {
		.connect_timeout_msecs = 300, .command_timeout_msecs = 500,
		.ping_interval_msecs = 200, .reconnect_max_msecs = 1000,
	};
	struct mf_redis *r = NULL;
	int port = free_port();
	char portstr[16], url[64];
	const char *error;
	bool counted, c2;
	pid_t pid;

	mf_log_set_fd(open("/dev/null", O_WRONLY));
	snprintf(portstr, sizeof(portstr), "%d", port);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int null = open("/dev/null", O_WRONLY);
		dup2(null, 1);
		dup2(null, 2);
		execlp("redis-server", "redis-server", "--port", portstr, "--bind", "127.0.0.1",
		       "--save", "", "--appendonly", "no", (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 200 && !port_open(port); i++)
		usleep(25000);
	assert_true(port_open(port));
	snprintf(url, sizeof(url), "redis://127.0.0.1:%d", port);
	assert_int_equal(mf_redis_create(url, &set, &r, &error), 0);

	/* Two slots for mx.example: the third taker is refused until one is
	 * given back; another host is counted apart. */
	assert_true(delivery_limit_take(r, "mx.example:25", 2, &counted));
	assert_true(counted);
	assert_true(delivery_limit_take(r, "mx.example:25", 2, &counted));
	assert_false(delivery_limit_take(r, "mx.example:25", 2, &c2));
	assert_false(c2);
	assert_true(delivery_limit_take(r, "other.example:25", 2, &c2));
	delivery_limit_release(r, "mx.example:25");
	assert_true(delivery_limit_take(r, "mx.example:25", 2, &counted));

	/* Redis gone: not enforced, nothing to release. */
	kill(pid, SIGTERM);
	waitpid(pid, NULL, 0);
	assert_true(delivery_limit_take(r, "mx.example:25", 2, &counted));
	assert_false(counted);
	/* No Redis configured at all. */
	assert_true(delivery_limit_take(NULL, "mx.example:25", 2, &counted));
	assert_false(counted);
	mf_redis_free(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_limit),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
