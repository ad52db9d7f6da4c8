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
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "authlimit.h"
#include "config.h"
#include "log.h"
#include "metrics.h"
#include "buf.h"
#include "ratelimit.h"
#include "redis.h"
#include "lib/testserver.h"

/* Tests for libshared/authlimit.c against a real redis-server on a random
 * loopback port; two limiters on one Redis stand for two replicas. */


/* redis-server: tests/unit/lib/testserver. */

static const struct mf_redis_settings rset = {
	.connect_timeout_msecs = 300,
	.command_timeout_msecs = 500,
	.ping_interval_msecs = 200,
	.reconnect_max_msecs = 1000,
};

/* One replica: its own Redis client, limiter and authlimit. */
struct replica {
	struct mf_redis *r;
	struct mf_ratelimit *rl;
	struct mf_authlimit *al;
};

struct fixture {
	int port;
	pid_t pid;
	struct replica a, b;
	struct mf_metrics *metrics;
};

static void replica_open(struct replica *rep, int port, enum mf_ratelimit_redis_down policy)
{
	const char *error = NULL;
	char url[64];

	snprintf(url, sizeof(url), "redis://127.0.0.1:%d", port);
	assert_int_equal(mf_redis_create(url, &rset, &rep->r, &error), 0);
	rep->rl = mf_ratelimit_create(rep->r, policy);
	assert_int_equal(mf_authlimit_create(rep->rl, NULL, &rep->al, &error), 0);
}

static void replica_close(struct replica *rep)
{
	mf_authlimit_free(&rep->al);
	mf_ratelimit_free(&rep->rl);
	mf_redis_free(&rep->r);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	mf_log_set_fd(open("/dev/null", O_WRONLY));
	f->port = mf_test_free_port();
	f->pid = mf_test_redis_start(f->port, NULL);
	replica_open(&f->a, f->port, MF_RATELIMIT_REDIS_DOWN_ALLOW);
	replica_open(&f->b, f->port, MF_RATELIMIT_REDIS_DOWN_DENY);
	f->metrics = mf_metrics_create();
	mf_authlimit_register_metrics(f->a.al, f->metrics, "test");
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	replica_close(&f->a);
	replica_close(&f->b);
	mf_metrics_free(&f->metrics);
	mf_test_server_stop(&f->pid);
	free(f);
	return 0;
}

static enum mf_authlimit_verdict check(struct replica *rep, const char *ip, const char *login,
				       struct mf_authlimit_result *res)
{
	const char *error = NULL;

	assert_int_equal(mf_authlimit_check(rep->al, ip, login, res, &error), 0);
	return res->verdict;
}

static void fail_once(struct replica *rep, const char *ip, const char *login)
{
	const char *error = NULL;

	assert_int_equal(mf_authlimit_record(rep->al, ip, login, false, &error), 0);
}

/* 100 wrong passwords from one address: slowed, then refused, on both
 * replicas; a correct login from another address still goes through. */
static void test_bruteforce(void **state)
{
	struct fixture *f = *state;
	struct mf_authlimit_result res;
	struct mf_authlimit_stats st;
	int first_slow = -1, first_refused = -1;
	const char *error = NULL;
	struct mf_buf text;

	for (int i = 0; i < 100; i++) {
		struct replica *rep = i % 2 == 0 ? &f->a : &f->b;
		enum mf_authlimit_verdict v = check(rep, "192.0.2.10", "mail@localhost", &res);

		if (v == MF_AUTHLIMIT_SLOW && first_slow < 0)
			first_slow = i;
		if (v == MF_AUTHLIMIT_REFUSE) {
			if (first_refused < 0)
				first_refused = i;
			assert_string_equal(res.what, "ip");
			assert_string_equal(res.key, "192.0.2.10/32");
			assert_true(res.retry_after_secs >= 1);
			continue;   /* refused attempts never reach a password check */
		}
		fail_once(rep, "192.0.2.10", "mail@localhost");
	}
	assert_int_equal(first_slow, 5);
	assert_int_equal(first_refused, 20);
	/* still refused on both replicas */
	assert_int_equal(check(&f->a, "192.0.2.10", NULL, &res), MF_AUTHLIMIT_REFUSE);
	assert_int_equal(check(&f->b, "192.0.2.10", NULL, &res), MF_AUTHLIMIT_REFUSE);
	/* the same network's neighbour is only slowed (the /26 has 25 before
	 * slowing, 100 before refusing) */
	assert_int_not_equal(check(&f->a, "192.0.2.11", NULL, &res), MF_AUTHLIMIT_REFUSE);
	/* another address logging in to the same account: not refused, at
	 * most slowed (per-account failures only slow) */
	assert_int_equal(check(&f->b, "198.51.100.7", "mail@localhost", &res), MF_AUTHLIMIT_SLOW);
	assert_string_equal(res.what, "account");
	assert_int_equal(res.delay_msecs, 2000);
	assert_int_equal(mf_authlimit_record(f->b.al, "198.51.100.7", "mail@localhost", true,
					     &error), 0);
	/* and another account from there is not touched at all */
	assert_int_equal(check(&f->b, "198.51.100.7", "other@localhost", &res), MF_AUTHLIMIT_OK);
	assert_int_equal(check(&f->b, "2001:db8::1", NULL, &res), MF_AUTHLIMIT_OK);
	/* counted in the metrics */
	mf_authlimit_get_stats(f->a.al, &st);
	assert_true(st.refused >= 40);
	assert_true(st.slowed >= 7);
	assert_int_equal(st.failures, 10);
	mf_buf_init(&text, 0);
	assert_int_equal(mf_metrics_format(f->metrics, &text, &error), 0);
	assert_non_null(strstr(mf_buf_cstr(&text), "mailfleet_test_auth_throttled_total{action=\"refused\"}"));
	mf_buf_free(&text);
}

/* Successes never count. */
static void test_successes_free(void **state)
{
	struct fixture *f = *state;
	struct mf_authlimit_result res;
	const char *error = NULL;

	for (int i = 0; i < 50; i++) {
		assert_int_equal(check(&f->a, "203.0.113.5", "mail", &res), MF_AUTHLIMIT_OK);
		assert_int_equal(mf_authlimit_record(f->a.al, "203.0.113.5", "mail", true, &error),
				 0);
	}
}

static void test_bad_input(void **state)
{
	struct fixture *f = *state;
	struct mf_authlimit_result res;
	const char *error = NULL;

	assert_int_equal(mf_authlimit_check(f->a.al, "not-an-ip", NULL, &res, &error), -1);
	assert_int_equal(mf_authlimit_check(f->a.al, "192.0.2.1", "a b", &res, &error), -1);
	assert_int_equal(mf_authlimit_record(f->a.al, "", NULL, false, &error), -1);
}

/* Redis gone: replica a (allow) lets attempts through, b (deny) answers
 * with a temporary failure. */
static void test_redis_down(void **state)
{
	struct fixture *f = *state;
	struct mf_authlimit_result res;
	const char *error = NULL;

	mf_test_server_stop(&f->pid);
	assert_int_equal(check(&f->a, "192.0.2.99", NULL, &res), MF_AUTHLIMIT_OK);
	assert_int_equal(check(&f->b, "192.0.2.99", NULL, &res), MF_AUTHLIMIT_TEMPFAIL);
	assert_int_equal(mf_authlimit_record(f->a.al, "192.0.2.99", "mail", false, &error), 0);
}

static void test_from_config(void **state)
{
	static const char text[] =
		"hostname mx.example.org\n"
		"data-dir /tmp/x\n"
		"ratelimit {\n"
		"    auth-failures-slow 3/10s\n"
		"    auth-failures-block none\n"
		"}\n";
	struct mf_authlimit_settings set;
	struct mf_config *c = NULL;
	const char *err = NULL;

	if (mf_config_load_buf("/etc/mf/mailfleet.conf", text, strlen(text), NULL, &c, &err) < 0)
		fail_msg("config: %s", err);
	mf_authlimit_settings_from_config(c, &set);
	assert_int_equal(set.ip_slow.v4[0].count, 3);
	assert_int_equal(set.ip_slow.v4[0].burst, 3);
	assert_int_equal(set.ip_slow.v4[0].period_msecs, 10000);
	assert_int_equal(set.ip_slow.v6[2].count, 60);
	assert_int_equal(set.ip_block.v4[0].count, 0);   /* none */
	assert_int_equal(set.account_slow.count, 20);     /* default */
	mf_config_free(&c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_bruteforce, setup, teardown),
		cmocka_unit_test_setup_teardown(test_successes_free, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_input, setup, teardown),
		cmocka_unit_test_setup_teardown(test_redis_down, setup, teardown),
		cmocka_unit_test(test_from_config),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
