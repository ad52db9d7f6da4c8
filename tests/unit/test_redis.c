#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "lib/testserver.h"
#include "log.h"
#include "redis.h"

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static bool wait_ready(struct mf_redis *r, bool want, unsigned msecs)
{
	uint64_t end = mono_ms() + msecs;

	while (mono_ms() < end) {
		if (mf_redis_ready(r) == want)
			return true;
		usleep(20000);
	}
	return mf_redis_ready(r) == want;
}

struct fixture {
	int port;
	pid_t pid;
	struct mf_redis *r;
	char url[64];
};

static const struct mf_redis_settings fast = {
	.connect_timeout_msecs = 300,
	.command_timeout_msecs = 300,
	.ping_interval_msecs = 200,
	.ready_window_msecs = 1000,
	.reconnect_max_msecs = 1000,
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	const char *error;

	mf_log_set_fd(open("/dev/null", O_WRONLY));
	f->port = mf_test_free_port();
	f->pid = mf_test_redis_start(f->port, NULL);
	snprintf(f->url, sizeof(f->url), "redis://127.0.0.1:%d", f->port);
	if (mf_redis_create(f->url, &fast, &f->r, &error) < 0)
		return -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	mf_redis_free(&f->r);
	mf_test_server_stop(&f->pid);
	free(f);
	return 0;
}

/* --- tests ------------------------------------------------------------- */

static void test_url_parse(void **state)
{
	static const struct {
		const char *url;
		const char *host, *user, *password;
		int port, db;
	} good[] = {
		{ "redis://127.0.0.1:6380", "127.0.0.1", NULL, NULL, 6380, 0 },
		{ "redis://redis", "redis", NULL, NULL, 6379, 0 },
		{ "redis://redis/", "redis", NULL, NULL, 6379, 0 },
		{ "redis://:s3cret@redis:7000/2", "redis", NULL, "s3cret", 7000, 2 },
		{ "redis://app:p@ss@[::1]:7001/15", "::1", "app", "p@ss", 7001, 15 },
		{ "redis://[::1]/3", "::1", NULL, NULL, 6379, 3 },
	};
	static const char *bad[] = {
		"http://redis:6379", "redis://", "redis://:6379", "redis://h:0",
		"redis://h:70000", "redis://h:12/x", "redis://h:12/99999999",
		"redis://user@h", "redis://[::1", "redis://[::1]x", "redis://h:port",
	};
	char *host, *user, *password;
	int port, db;
	const char *error;

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		if (mf_redis_url_parse(good[i].url, &host, &port, &user, &password, &db,
				       &error) < 0)
			fail_msg("%s: %s", good[i].url, error);
		assert_string_equal(host, good[i].host);
		assert_int_equal(port, good[i].port);
		assert_int_equal(db, good[i].db);
		if (good[i].user == NULL)
			assert_null(user);
		else
			assert_string_equal(user, good[i].user);
		if (good[i].password == NULL)
			assert_null(password);
		else
			assert_string_equal(password, good[i].password);
		free(host);
		free(user);
		free(password);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		error = NULL;
		if (mf_redis_url_parse(bad[i], &host, &port, &user, &password, &db, &error) == 0)
			fail_msg("accepted %s", bad[i]);
		assert_non_null(error);
	}

	struct mf_redis *r;
	assert_int_equal(mf_redis_create("redis://app:hunter2@127.0.0.1:1/0", &fast, &r, &error), 0);
	assert_string_equal(mf_redis_url_redacted(r), "redis://app:***@127.0.0.1:1/0");
	mf_redis_free(&r);
	assert_null(r);
	assert_int_equal(mf_redis_create("redis://h:0", NULL, &r, &error), -1);
}

static void test_commands(void **state)
{
	struct fixture *f = *state;
	redisReply *reply;
	struct mf_redis_stats st;
	const char *error;
	const char *argv[] = { "SET", "bin", "a\0b" };
	size_t argvlen[] = { 3, 3, 3 };

	assert_true(wait_ready(f->r, true, 2000));
	assert_int_equal(mf_redis_command(f->r, &reply, &error, "SET %s %s", "k", "v 1"), 0);
	assert_int_equal(reply->type, REDIS_REPLY_STATUS);
	freeReplyObject(reply);
	assert_int_equal(mf_redis_command(f->r, &reply, &error, "GET %s", "k"), 0);
	assert_int_equal(reply->type, REDIS_REPLY_STRING);
	assert_string_equal(reply->str, "v 1");
	freeReplyObject(reply);

	assert_int_equal(mf_redis_command_argv(f->r, 3, argv, argvlen, &reply, &error), 0);
	freeReplyObject(reply);
	assert_int_equal(mf_redis_command(f->r, &reply, &error, "GET bin"), 0);
	assert_int_equal(reply->len, 3);
	assert_memory_equal(reply->str, "a\0b", 3);
	freeReplyObject(reply);

	/* error replies: -1, no reply, Redis's error kind in error_r */
	assert_int_equal(mf_redis_command(f->r, &reply, &error, "NOSUCHCOMMAND"), -1);
	assert_null(reply);
	assert_true(mf_redis_error_is(error, "ERR"));
	assert_false(mf_redis_error_is_unavailable(error));
	assert_int_equal(mf_redis_command(f->r, &reply, &error, "LPUSH k x"), -1);
	assert_true(mf_redis_error_is(error, "WRONGTYPE"));
	assert_false(mf_redis_error_is(error, "WRONG"));
	assert_int_equal(mf_redis_command(f->r, &reply, &error, "EVALSHA %s 0",
					  "0000000000000000000000000000000000000000"), -1);
	assert_true(mf_redis_error_is(error, "NOSCRIPT"));

	mf_redis_get_stats(f->r, &st);
	assert_int_equal(st.commands, 7);
	assert_int_equal(st.errors, 3);
	assert_int_equal(st.unavailable, 0);
	assert_true(st.connects >= 1);
	assert_true(mf_redis_ready(f->r));
}

static void test_down_fails_fast_and_recovers(void **state)
{
	struct fixture *f = *state;
	redisReply *reply;
	struct mf_redis_stats st;
	const char *error;
	uint64_t t0;

	assert_true(wait_ready(f->r, true, 2000));
	mf_test_server_stop(&f->pid);

	/* the first command finds the connection closed, reconnects once,
	 * is refused: an error at once, not a hang */
	t0 = mono_ms();
	assert_int_equal(mf_redis_command(f->r, &reply, &error, "PING"), -1);
	assert_null(reply);
	assert_true(mf_redis_error_is_unavailable(error));
	assert_false(mf_redis_ready(f->r));
	/* within the backoff no connect is tried: many calls, no time */
	for (int i = 0; i < 100; i++) {
		assert_int_equal(mf_redis_command(f->r, &reply, &error, "PING"), -1);
		assert_true(mf_redis_error_is_unavailable(error));
	}
	assert_true(mono_ms() - t0 < 500);
	mf_redis_get_stats(f->r, &st);
	assert_int_equal(st.unavailable, 101);
	assert_true(st.connect_failures >= 1);
	assert_false(mf_redis_ready(f->r));

	/* back on the same port: readiness returns without any traffic */
	f->pid = mf_test_redis_start(f->port, NULL);
	assert_true(wait_ready(f->r, true, 3000));
	assert_int_equal(mf_redis_command(f->r, &reply, &error, "PING"), 0);
	assert_string_equal(reply->str, "PONG");
	freeReplyObject(reply);

	/* readiness also goes without traffic once Redis is gone */
	mf_test_server_stop(&f->pid);
	assert_true(wait_ready(f->r, false, 2000));
}

static void test_timeout(void **state)
{
	struct fixture *f = *state;
	redisReply *reply;
	const char *error;
	uint64_t t0;

	assert_true(wait_ready(f->r, true, 2000));
	/* a hung Redis: the command gives up after the command timeout */
	kill(f->pid, SIGSTOP);
	t0 = mono_ms();
	assert_int_equal(mf_redis_command(f->r, &reply, &error, "PING"), -1);
	assert_true(mf_redis_error_is_unavailable(error));
	assert_true(mono_ms() - t0 < 1000);
	/* then fails fast during the backoff */
	t0 = mono_ms();
	assert_int_equal(mf_redis_command(f->r, &reply, &error, "PING"), -1);
	assert_true(mono_ms() - t0 < 100);
	kill(f->pid, SIGCONT);
	assert_true(wait_ready(f->r, true, 3000));
	assert_int_equal(mf_redis_command(f->r, &reply, &error, "PING"), 0);
	freeReplyObject(reply);
}

static void test_auth_and_db(void **state)
{
	struct fixture *f = *state;
	struct mf_redis *r;
	redisReply *reply;
	redisContext *direct;
	const char *error;
	char url[128];
	int port = mf_test_free_port();
	pid_t pid = mf_test_redis_start(port, "pw:with@chars");

	snprintf(url, sizeof(url), "redis://:pw:with@chars@127.0.0.1:%d/2", port);
	assert_int_equal(mf_redis_create(url, &fast, &r, &error), 0);
	assert_int_equal(mf_redis_command(r, &reply, &error, "SET dbkey here"), 0);
	freeReplyObject(reply);
	mf_redis_free(&r);

	/* it went to database 2 */
	direct = redisConnect("127.0.0.1", port);
	assert_non_null(direct);
	reply = redisCommand(direct, "AUTH %s", "pw:with@chars");
	freeReplyObject(reply);
	reply = redisCommand(direct, "GET dbkey");
	assert_int_equal(reply->type, REDIS_REPLY_NIL);
	freeReplyObject(reply);
	reply = redisCommand(direct, "SELECT 2");
	freeReplyObject(reply);
	reply = redisCommand(direct, "GET dbkey");
	assert_string_equal(reply->str, "here");
	freeReplyObject(reply);
	redisFree(direct);

	/* a wrong password is a failure to connect, and says so */
	snprintf(url, sizeof(url), "redis://:wrong@127.0.0.1:%d", port);
	assert_int_equal(mf_redis_create(url, &fast, &r, &error), 0);
	assert_int_equal(mf_redis_command(r, &reply, &error, "PING"), -1);
	assert_true(mf_redis_error_is_unavailable(error));
	assert_false(mf_redis_ready(r));
	mf_redis_free(&r);
	mf_test_server_stop(&pid);
	(void)f;
}

#define THREADS 8
#define INCRS 200

static void *incr_thread(void *arg)
{
	struct mf_redis *r = arg;
	redisReply *reply;
	const char *error;
	long failures = 0;

	for (int i = 0; i < INCRS; i++) {
		if (mf_redis_command(r, &reply, &error, "INCR counter") == 0)
			freeReplyObject(reply);
		else
			failures++;
	}
	return (void *)failures;
}

static void test_threads(void **state)
{
	struct fixture *f = *state;
	pthread_t th[THREADS];
	redisReply *reply;
	const char *error;
	void *failures;

	for (int i = 0; i < THREADS; i++)
		assert_int_equal(pthread_create(&th[i], NULL, incr_thread, f->r), 0);
	for (int i = 0; i < THREADS; i++) {
		pthread_join(th[i], &failures);
		assert_int_equal((long)failures, 0);
	}
	assert_int_equal(mf_redis_command(f->r, &reply, &error, "GET counter"), 0);
	assert_string_equal(reply->str, "1600");
	freeReplyObject(reply);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_url_parse),
		cmocka_unit_test_setup_teardown(test_commands, setup, teardown),
		cmocka_unit_test_setup_teardown(test_down_fails_fast_and_recovers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_timeout, setup, teardown),
		cmocka_unit_test_setup_teardown(test_auth_and_db, setup, teardown),
		cmocka_unit_test_setup_teardown(test_threads, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
