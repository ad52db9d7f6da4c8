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

#include "lib/testserver.h"
#include "log.h"
#include "ratelimit.h"
#include "redis.h"

/* --- a redis-server of our own on a random loopback port ----------------- */

struct fixture {
	int port;
	pid_t pid;
	struct mf_redis *r;
	struct mf_ratelimit *rl;
};

static int setup(void **state)
{
	static const struct mf_redis_settings set = {
		.connect_timeout_msecs = 300,
		.command_timeout_msecs = 500,
		.ping_interval_msecs = 200,
		.reconnect_max_msecs = 1000,
	};
	struct fixture *f = calloc(1, sizeof(*f));
	const char *error;
	char url[64];

	mf_log_set_fd(open("/dev/null", O_WRONLY));
	f->port = mf_test_free_port();
	f->pid = mf_test_redis_start(f->port, NULL);
	snprintf(url, sizeof(url), "redis://127.0.0.1:%d", f->port);
	if (mf_redis_create(url, &set, &f->r, &error) < 0)
		return -1;
	f->rl = mf_ratelimit_create(f->r, MF_RATELIMIT_REDIS_DOWN_ALLOW);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	mf_ratelimit_free(&f->rl);
	mf_redis_free(&f->r);
	mf_test_server_stop(&f->pid);
	free(f);
	return 0;
}

static enum mf_ratelimit_verdict check(struct fixture *f, enum mf_ratelimit_op op,
				       const struct mf_ratelimit_limit *l, const char *key,
				       struct mf_ratelimit_result *res)
{
	const char *error = NULL;

	if (mf_ratelimit_check(f->rl, op, l, key, res, &error) < 0)
		fail_msg("check: %s", error);
	return res->verdict;
}

static enum mf_ratelimit_verdict check_ip(struct fixture *f, const struct mf_ratelimit_ip_limits *l,
					  const char *ip, struct mf_ratelimit_result *res)
{
	const char *error = NULL;

	if (mf_ratelimit_check_ip(f->rl, MF_RATELIMIT_CONSUME, l, ip, res, &error) < 0)
		fail_msg("check_ip %s: %s", ip, error);
	return res->verdict;
}

/* --- pure helpers ------------------------------------------------------ */

static void test_keys_and_parsing(void **state)
{
	static const struct { const char *ip; unsigned len; const char *want; } nets[] = {
		{ "192.0.2.77", 32, "192.0.2.77/32" },
		{ "192.0.2.77", 26, "192.0.2.64/26" },
		{ "192.0.2.77", 21, "192.0.0.0/21" },
		{ "198.51.100.255", 21, "198.51.96.0/21" },
		{ "10.1.2.3", 0, "0.0.0.0/0" },
		{ "::ffff:192.0.2.77", 26, "192.0.2.64/26" },
		{ "2001:db8:1:2:3:4:5:6", 64, "2001:db8:1:2::/64" },
		{ "2001:DB8:1:2:3:4:5:6", 48, "2001:db8:1::/48" },
		{ "2001:db8:1:2:3:4:5:6", 32, "2001:db8::/32" },
		{ "2001:db8:ffff:ffff::1", 63, "2001:db8:ffff:fffe::/63" },
	};
	static const char *bad_ips[] = { "", "192.0.2", "192.0.2.1.5", "fe80::1%eth0", "example.org",
					 "192.0.2.1/24" };
	struct mf_ratelimit_ip_keys keys;
	char buf[MF_RATELIMIT_NETKEY_SIZE], acct[300];
	const char *error;
	uint32_t count;
	uint64_t period;
	enum mf_ratelimit_redis_down policy;

	for (size_t i = 0; i < sizeof(nets) / sizeof(nets[0]); i++) {
		if (mf_ratelimit_network_key(nets[i].ip, nets[i].len, buf, &error) < 0)
			fail_msg("%s/%u: %s", nets[i].ip, nets[i].len, error);
		assert_string_equal(buf, nets[i].want);
	}
	for (size_t i = 0; i < sizeof(bad_ips) / sizeof(bad_ips[0]); i++)
		assert_int_equal(mf_ratelimit_network_key(bad_ips[i], 24, buf, &error), -1);
	assert_int_equal(mf_ratelimit_network_key("192.0.2.1", 33, buf, &error), -1);
	assert_int_equal(mf_ratelimit_network_key("::1", 129, buf, &error), -1);

	assert_int_equal(mf_ratelimit_ip_keys("192.0.2.1", &keys, &error), 0);
	assert_false(keys.ipv6);
	assert_string_equal(keys.key[0], "192.0.2.1/32");
	assert_string_equal(keys.key[1], "192.0.2.0/26");
	assert_string_equal(keys.key[2], "192.0.0.0/21");
	assert_int_equal(mf_ratelimit_ip_keys("2001:db8:aa:bb::1", &keys, &error), 0);
	assert_true(keys.ipv6);
	assert_string_equal(keys.key[0], "2001:db8:aa:bb::/64");
	assert_string_equal(keys.key[1], "2001:db8:aa::/48");
	assert_string_equal(keys.key[2], "2001:db8::/32");
	assert_int_equal(mf_ratelimit_ip_keys("::ffff:10.0.0.1", &keys, &error), 0);
	assert_false(keys.ipv6);
	assert_string_equal(keys.key[0], "10.0.0.1/32");

	assert_int_equal(mf_ratelimit_account_key("mjl", acct, sizeof(acct), &error), 0);
	assert_string_equal(acct, "account:mjl");
	assert_int_equal(mf_ratelimit_account_key("", acct, sizeof(acct), &error), -1);
	assert_int_equal(mf_ratelimit_account_key("a b", acct, sizeof(acct), &error), -1);
	assert_int_equal(mf_ratelimit_account_key("a\nb", acct, sizeof(acct), &error), -1);
	assert_int_equal(mf_ratelimit_account_key("mjl", acct, 8, &error), -1);

	assert_int_equal(mf_ratelimit_rate_parse("100/h", &count, &period, &error), 0);
	assert_int_equal(count, 100);
	assert_int_equal(period, 3600000);
	assert_int_equal(mf_ratelimit_rate_parse("5/10s", &count, &period, &error), 0);
	assert_int_equal(period, 10000);
	assert_int_equal(mf_ratelimit_rate_parse("1/500ms", &count, &period, &error), 0);
	assert_int_equal(period, 500);
	assert_int_equal(mf_ratelimit_rate_parse("20/1d", &count, &period, &error), 0);
	assert_int_equal(period, 86400000);
	static const char *bad_rates[] = { "", "/h", "0/h", "5", "5/", "5/x", "5/0s", "5/h ",
					   "-1/h", "5/367d", "1000000000/s", "5/10" };
	for (size_t i = 0; i < sizeof(bad_rates) / sizeof(bad_rates[0]); i++)
		if (mf_ratelimit_rate_parse(bad_rates[i], &count, &period, &error) == 0)
			fail_msg("accepted rate \"%s\"", bad_rates[i]);

	assert_int_equal(mf_ratelimit_policy_parse("allow", &policy, &error), 0);
	assert_int_equal(policy, MF_RATELIMIT_REDIS_DOWN_ALLOW);
	assert_int_equal(mf_ratelimit_policy_parse("deny", &policy, &error), 0);
	assert_int_equal(policy, MF_RATELIMIT_REDIS_DOWN_DENY);
	assert_int_equal(mf_ratelimit_policy_parse("maybe", &policy, &error), -1);

	struct mf_ratelimit_limit l = { .name = "Bad Name", .count = 1, .period_msecs = 1 };
	assert_int_equal(mf_ratelimit_limit_validate(&l, &error), -1);
	l.name = "ok-name.1";
	assert_int_equal(mf_ratelimit_limit_validate(&l, &error), 0);
	l.count = 0;
	assert_int_equal(mf_ratelimit_limit_validate(&l, &error), -1);
}

/* --- with Redis ---------------------------------------------------------- */

static void test_limit_after_n(void **state)
{
	struct fixture *f = *state;
	struct mf_ratelimit_limit l = { .name = "msgs", .count = 5, .period_msecs = 60000 };
	struct mf_ratelimit_result res;
	struct mf_ratelimit_stats st;

	for (int i = 0; i < 5; i++) {
		assert_int_equal(check(f, MF_RATELIMIT_CONSUME, &l, "account:a", &res),
				 MF_RATELIMIT_ALLOWED);
		assert_true(res.allowed);
		assert_int_equal(res.item, -1);
	}
	assert_int_equal(check(f, MF_RATELIMIT_CONSUME, &l, "account:a", &res),
			 MF_RATELIMIT_LIMITED);
	assert_false(res.allowed);
	assert_int_equal(res.item, 0);
	assert_string_equal(res.key, "account:a");
	assert_string_equal(res.limit_name, "msgs");
	/* one request per 12 s comes free again */
	assert_true(res.retry_after_msecs > 11000 && res.retry_after_msecs <= 12000);
	assert_int_equal(res.retry_after_secs, 12);
	/* refusals are not charged: still 12 s, not 24 s */
	assert_int_equal(check(f, MF_RATELIMIT_CONSUME, &l, "account:a", &res),
			 MF_RATELIMIT_LIMITED);
	assert_true(res.retry_after_msecs <= 12000);

	/* independent keys and independent limit names */
	assert_int_equal(check(f, MF_RATELIMIT_CONSUME, &l, "account:b", &res),
			 MF_RATELIMIT_ALLOWED);
	struct mf_ratelimit_limit other = { .name = "rcpts", .count = 1, .period_msecs = 60000 };
	assert_int_equal(check(f, MF_RATELIMIT_CONSUME, &other, "account:a", &res),
			 MF_RATELIMIT_ALLOWED);
	assert_int_equal(check(f, MF_RATELIMIT_CONSUME, &other, "account:a", &res),
			 MF_RATELIMIT_LIMITED);

	mf_ratelimit_get_stats(f->rl, &st);
	assert_int_equal(st.checks, 10);
	assert_int_equal(st.limited, 3);
	assert_int_equal(st.unavailable, 0);
}

static void test_burst_and_recovery(void **state)
{
	struct fixture *f = *state;
	/* 2 per 400 ms: one comes back every 200 ms; burst 3 */
	struct mf_ratelimit_limit l = { .name = "conn", .count = 2, .period_msecs = 400, .burst = 3 };
	struct mf_ratelimit_result res;

	for (int i = 0; i < 3; i++)
		assert_int_equal(check(f, MF_RATELIMIT_CONSUME, &l, "k", &res), MF_RATELIMIT_ALLOWED);
	assert_int_equal(check(f, MF_RATELIMIT_CONSUME, &l, "k", &res), MF_RATELIMIT_LIMITED);
	assert_true(res.retry_after_msecs <= 200);
	assert_int_equal(res.retry_after_secs, 1);
	usleep(250000);
	assert_int_equal(check(f, MF_RATELIMIT_CONSUME, &l, "k", &res), MF_RATELIMIT_ALLOWED);
	assert_int_equal(check(f, MF_RATELIMIT_CONSUME, &l, "k", &res), MF_RATELIMIT_LIMITED);
	/* after a full period of quiet the whole burst is back */
	usleep(650000);
	for (int i = 0; i < 3; i++)
		assert_int_equal(check(f, MF_RATELIMIT_CONSUME, &l, "k", &res), MF_RATELIMIT_ALLOWED);
	assert_int_equal(check(f, MF_RATELIMIT_CONSUME, &l, "k", &res), MF_RATELIMIT_LIMITED);

	/* cost: a 2-unit request when only 1 is left is refused */
	struct mf_ratelimit_item item = { .limit = &l, .key = "cost" };
	const char *error;
	assert_int_equal(mf_ratelimit_apply(f->rl, MF_RATELIMIT_CONSUME, &item, 1, 2, &res, &error), 0);
	assert_int_equal(res.verdict, MF_RATELIMIT_ALLOWED);
	assert_int_equal(mf_ratelimit_apply(f->rl, MF_RATELIMIT_CONSUME, &item, 1, 2, &res, &error), 0);
	assert_int_equal(res.verdict, MF_RATELIMIT_LIMITED);
	assert_int_equal(mf_ratelimit_apply(f->rl, MF_RATELIMIT_CONSUME, &item, 1, 1, &res, &error), 0);
	assert_int_equal(res.verdict, MF_RATELIMIT_ALLOWED);
	/* bad arguments are errors, not verdicts */
	assert_int_equal(mf_ratelimit_apply(f->rl, MF_RATELIMIT_CONSUME, &item, 1, 4, &res, &error), -1);
	assert_int_equal(mf_ratelimit_apply(f->rl, MF_RATELIMIT_CONSUME, &item, 0, 1, &res, &error), -1);
	item.key = "has space";
	assert_int_equal(mf_ratelimit_apply(f->rl, MF_RATELIMIT_CONSUME, &item, 1, 1, &res, &error), -1);
}

static const struct mf_ratelimit_ip_limits ip_limits = {
	.v4 = {
		{ .name = "ip-conn-32", .count = 100, .period_msecs = 60000 },
		{ .name = "ip-conn-26", .count = 3, .period_msecs = 60000 },
		{ .name = "ip-conn-21", .count = 5, .period_msecs = 60000 },
	},
	.v6 = {
		{ .name = "ip-conn-64", .count = 2, .period_msecs = 60000 },
		{ .name = "ip-conn-48", .count = 100, .period_msecs = 60000 },
		{ 0 },  /* /32 not limited */
	},
};

static void test_ipv4_networks(void **state)
{
	struct fixture *f = *state;
	struct mf_ratelimit_result res;

	/* three addresses of one /26 share its limit of 3 */
	assert_int_equal(check_ip(f, &ip_limits, "192.0.2.1", &res), MF_RATELIMIT_ALLOWED);
	assert_int_equal(check_ip(f, &ip_limits, "192.0.2.2", &res), MF_RATELIMIT_ALLOWED);
	assert_int_equal(check_ip(f, &ip_limits, "::ffff:192.0.2.3", &res), MF_RATELIMIT_ALLOWED);
	assert_int_equal(check_ip(f, &ip_limits, "192.0.2.60", &res), MF_RATELIMIT_LIMITED);
	assert_int_equal(res.item, 1);
	assert_string_equal(res.key, "192.0.2.0/26");
	assert_string_equal(res.limit_name, "ip-conn-26");
	assert_true(res.retry_after_secs >= 19 && res.retry_after_secs <= 20);

	/* another /26 of the same /21 passes until the /21 limit of 5 */
	assert_int_equal(check_ip(f, &ip_limits, "192.0.2.70", &res), MF_RATELIMIT_ALLOWED);
	assert_int_equal(check_ip(f, &ip_limits, "192.0.3.1", &res), MF_RATELIMIT_ALLOWED);
	assert_int_equal(check_ip(f, &ip_limits, "192.0.4.1", &res), MF_RATELIMIT_LIMITED);
	assert_string_equal(res.key, "192.0.0.0/21");
	assert_int_equal(res.item, 2);

	/* refused checks charged nothing: the /32 of .60 is untouched, and a
	 * different /21 is free */
	struct mf_ratelimit_limit l32 = ip_limits.v4[0];
	assert_int_equal(check(f, MF_RATELIMIT_PEEK, &l32, "192.0.2.60/32", &res),
			 MF_RATELIMIT_ALLOWED);
	assert_int_equal(check_ip(f, &ip_limits, "198.51.100.1", &res), MF_RATELIMIT_ALLOWED);

	const char *error;
	assert_int_equal(mf_ratelimit_check_ip(f->rl, MF_RATELIMIT_CONSUME, &ip_limits, "nope",
					       &res, &error), -1);
}

static void test_ipv6_networks(void **state)
{
	struct fixture *f = *state;
	struct mf_ratelimit_result res;

	assert_int_equal(check_ip(f, &ip_limits, "2001:db8:1:2::1", &res), MF_RATELIMIT_ALLOWED);
	assert_int_equal(check_ip(f, &ip_limits, "2001:db8:1:2:ffff:ffff:ffff:9", &res),
			 MF_RATELIMIT_ALLOWED);
	assert_int_equal(check_ip(f, &ip_limits, "2001:db8:1:2::77", &res), MF_RATELIMIT_LIMITED);
	assert_string_equal(res.key, "2001:db8:1:2::/64");
	assert_int_equal(res.item, 0);
	/* the next /64 is its own */
	assert_int_equal(check_ip(f, &ip_limits, "2001:db8:1:3::1", &res), MF_RATELIMIT_ALLOWED);
}

static void test_record_peek_reset(void **state)
{
	struct fixture *f = *state;
	/* auth failures: 3 per minute */
	struct mf_ratelimit_limit l = { .name = "auth-fail", .count = 3, .period_msecs = 60000 };
	struct mf_ratelimit_result res;
	const char *error;

	/* peeking never charges */
	for (int i = 0; i < 10; i++)
		assert_int_equal(check(f, MF_RATELIMIT_PEEK, &l, "192.0.2.9/32", &res),
				 MF_RATELIMIT_ALLOWED);
	for (int i = 0; i < 3; i++)
		assert_int_equal(check(f, MF_RATELIMIT_RECORD, &l, "192.0.2.9/32", &res),
				 MF_RATELIMIT_ALLOWED);
	assert_int_equal(check(f, MF_RATELIMIT_PEEK, &l, "192.0.2.9/32", &res),
			 MF_RATELIMIT_LIMITED);
	assert_true(res.retry_after_secs >= 19 && res.retry_after_secs <= 20);
	/* recording past the limit charges (capped at one burst) and says so */
	assert_int_equal(check(f, MF_RATELIMIT_RECORD, &l, "192.0.2.9/32", &res),
			 MF_RATELIMIT_LIMITED);
	assert_int_equal(check(f, MF_RATELIMIT_RECORD, &l, "192.0.2.9/32", &res),
			 MF_RATELIMIT_LIMITED);
	assert_int_equal(check(f, MF_RATELIMIT_PEEK, &l, "192.0.2.9/32", &res),
			 MF_RATELIMIT_LIMITED);
	assert_true(res.retry_after_secs <= 20);
	/* a successful login forgets the failures */
	assert_int_equal(mf_ratelimit_reset(f->rl, &l, "192.0.2.9/32", &error), 0);
	assert_int_equal(check(f, MF_RATELIMIT_PEEK, &l, "192.0.2.9/32", &res),
			 MF_RATELIMIT_ALLOWED);
}

static void test_noscript_fallback(void **state)
{
	struct fixture *f = *state;
	struct mf_ratelimit_limit l = { .name = "ns", .count = 2, .period_msecs = 60000 };
	struct mf_ratelimit_result res;
	redisReply *reply;
	const char *error;

	assert_int_equal(check(f, MF_RATELIMIT_CONSUME, &l, "k", &res), MF_RATELIMIT_ALLOWED);
	/* the script cache is gone (as after a Redis restart) */
	assert_int_equal(mf_redis_command(f->r, &reply, &error, "SCRIPT FLUSH"), 0);
	freeReplyObject(reply);
	assert_int_equal(check(f, MF_RATELIMIT_CONSUME, &l, "k", &res), MF_RATELIMIT_ALLOWED);
	assert_int_equal(check(f, MF_RATELIMIT_CONSUME, &l, "k", &res), MF_RATELIMIT_LIMITED);
	struct mf_ratelimit_stats st;
	mf_ratelimit_get_stats(f->rl, &st);
	assert_int_equal(st.unavailable, 0);
}

static void test_redis_down_policy(void **state)
{
	struct fixture *f = *state;
	struct mf_ratelimit_limit l = { .name = "down", .count = 1, .period_msecs = 60000 };
	struct mf_ratelimit_result res;
	struct mf_ratelimit_stats st;

	assert_int_equal(check(f, MF_RATELIMIT_CONSUME, &l, "k", &res), MF_RATELIMIT_ALLOWED);
	assert_int_equal(check(f, MF_RATELIMIT_CONSUME, &l, "k", &res), MF_RATELIMIT_LIMITED);
	char logpath[] = "/tmp/mf-test-ratelimit-log-XXXXXX";
	int logfd = mkstemp(logpath);
	assert_true(logfd >= 0);
	unlink(logpath);
	mf_log_set_fd(logfd);
	mf_test_server_stop(&f->pid);

	/* allow: the request goes through, marked and counted */
	assert_int_equal(check(f, MF_RATELIMIT_CONSUME, &l, "k", &res), MF_RATELIMIT_UNAVAILABLE);
	assert_true(res.allowed);
	assert_int_equal(check_ip(f, &ip_limits, "192.0.2.1", &res), MF_RATELIMIT_UNAVAILABLE);
	assert_true(res.allowed);
	/* deny: a refusal the caller turns into a temporary error */
	mf_ratelimit_set_policy(f->rl, MF_RATELIMIT_REDIS_DOWN_DENY);
	assert_int_equal(check(f, MF_RATELIMIT_CONSUME, &l, "k", &res), MF_RATELIMIT_UNAVAILABLE);
	assert_false(res.allowed);
	assert_int_equal(check(f, MF_RATELIMIT_PEEK, &l, "k", &res), MF_RATELIMIT_UNAVAILABLE);
	assert_false(res.allowed);
	mf_ratelimit_get_stats(f->rl, &st);
	assert_int_equal(st.unavailable, 4);
	assert_int_equal(st.limited, 1);

	/* Redis back (empty: counters are ephemeral): works again, no restart */
	f->pid = mf_test_redis_start(f->port, NULL);
	bool ok = false;
	for (int i = 0; i < 60 && !ok; i++) {
		ok = check(f, MF_RATELIMIT_CONSUME, &l, "k", &res) == MF_RATELIMIT_ALLOWED;
		if (!ok)
			usleep(100000);
	}
	assert_true(ok);
	assert_true(res.allowed);
	/* the script was not in the new server's cache: NOSCRIPT -> EVAL */
	assert_int_equal(check(f, MF_RATELIMIT_CONSUME, &l, "k", &res), MF_RATELIMIT_LIMITED);

	/* the outage was logged once, not once per check, and its end too */
	char logbuf[8192];
	ssize_t n = pread(logfd, logbuf, sizeof(logbuf) - 1, 0);
	assert_true(n > 0);
	logbuf[n] = '\0';
	int down_lines = 0, up_lines = 0;
	for (char *p = logbuf; (p = strstr(p, "rate limits cannot be checked")) != NULL; p++)
		down_lines++;
	for (char *p = logbuf; (p = strstr(p, "rate limits work again")) != NULL; p++)
		up_lines++;
	assert_int_equal(down_lines, 1);
	assert_int_equal(up_lines, 1);
	assert_non_null(strstr(logbuf, "redis_down=allow"));
	mf_log_set_fd(open("/dev/null", O_WRONLY));
	close(logfd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_keys_and_parsing),
		cmocka_unit_test_setup_teardown(test_limit_after_n, setup, teardown),
		cmocka_unit_test_setup_teardown(test_burst_and_recovery, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ipv4_networks, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ipv6_networks, setup, teardown),
		cmocka_unit_test_setup_teardown(test_record_peek_reset, setup, teardown),
		cmocka_unit_test_setup_teardown(test_noscript_fallback, setup, teardown),
		cmocka_unit_test_setup_teardown(test_redis_down_policy, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
