/* Unit tests for submission's per-account limits: the decisions, then the
 * Redis bookkeeping against a redis-server of our own on a random loopback
 * port (messages per day, first-time recipients, Redis down). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lib/testserver.h"
#include "log.h"
#include "redis.h"
#include "services/submission/sub_limits.h"

static void test_decide(void **state)
{
	const char *r;

	assert_null(sub_limits_messages_decide(0, 0));
	assert_null(sub_limits_messages_decide(1000000, 0));
	assert_null(sub_limits_messages_decide(9, 10));
	r = sub_limits_messages_decide(10, 10);
	assert_non_null(r);
	assert_memory_equal(r, "451 4.7.0 ", 10);
	assert_non_null(strstr(r, "max-outgoing-messages-per-day"));

	assert_null(sub_limits_first_decide(0, 5, 0));
	assert_null(sub_limits_first_decide(3, 2, 5));
	r = sub_limits_first_decide(4, 2, 5);
	assert_non_null(r);
	assert_memory_equal(r, "451 4.7.0 ", 10);
	assert_non_null(strstr(r, "max-first-time-recipients-per-day"));
	/* one message alone over the limit can never pass: permanent */
	r = sub_limits_first_decide(0, 6, 5);
	assert_non_null(r);
	assert_memory_equal(r, "550 5.7.0 ", 10);
}

static void test_redis(void **state)
{
	static const struct mf_redis_settings set = {
		.connect_timeout_msecs = 300, .command_timeout_msecs = 500,
		.ping_interval_msecs = 200, .reconnect_max_msecs = 1000,
	};
	const time_t now = 1795363200;
	struct mf_redis *r = NULL;
	const char *reply, *err;
	char url[64];
	int port = mf_test_free_port();
	pid_t pid = mf_test_redis_start(port, NULL);
	bool first;

	mf_log_set_fd(open("/dev/null", O_WRONLY));
	snprintf(url, sizeof(url), "redis://127.0.0.1:%d", port);
	assert_int_equal(mf_redis_create(url, &set, &r, &err), 0);

	/* No Redis configured: no limits. */
	assert_int_equal(sub_limits_check_messages(NULL, "mjl", 1, now, &reply), SUB_LIMITS_OK);

	/* Messages: 2 a day. */
	for (int i = 0; i < 2; i++) {
		assert_int_equal(sub_limits_check_messages(r, "mjl", 2, now, &reply),
				 SUB_LIMITS_OK);
		const char *rc[] = { "a@example.com" };
		bool fc[] = { i == 0 };
		assert_int_equal(sub_limits_commit(r, "mjl", rc, fc, 1, now, &err), 0);
	}
	assert_int_equal(sub_limits_check_messages(r, "mjl", 2, now, &reply), SUB_LIMITS_REFUSED);
	assert_memory_equal(reply, "451 4.7.0", 9);
	/* other accounts and the next day are not affected; 0 is unlimited */
	assert_int_equal(sub_limits_check_messages(r, "bob", 2, now, &reply), SUB_LIMITS_OK);
	assert_int_equal(sub_limits_check_messages(r, "mjl", 2, now + 86400, &reply),
			 SUB_LIMITS_OK);
	assert_int_equal(sub_limits_check_messages(r, "mjl", 0, now, &reply), SUB_LIMITS_OK);

	/* First-time recipients: a@ is known now (1 charged today), max 3. */
	assert_int_equal(sub_limits_check_rcpt(r, "mjl", "a@example.com", 0, 3, now, &first,
					       &reply), SUB_LIMITS_OK);
	assert_false(first);
	assert_int_equal(sub_limits_check_rcpt(r, "mjl", "b@example.com", 0, 3, now, &first,
					       &reply), SUB_LIMITS_OK);
	assert_true(first);
	assert_int_equal(sub_limits_check_rcpt(r, "mjl", "c@example.com", 1, 3, now, &first,
					       &reply), SUB_LIMITS_OK);
	assert_true(first);
	/* a third new one in this transaction: 1 + 3 > 3 */
	assert_int_equal(sub_limits_check_rcpt(r, "mjl", "d@example.com", 2, 3, now, &first,
					       &reply), SUB_LIMITS_REFUSED);
	assert_memory_equal(reply, "451 4.7.0", 9);
	/* more new ones in one message than a day allows */
	assert_int_equal(sub_limits_check_rcpt(r, "mjl", "d@example.com", 3, 3, now, &first,
					       &reply), SUB_LIMITS_REFUSED);
	assert_memory_equal(reply, "550 5.7.0", 9);
	{
		const char *rc[] = { "b@example.com", "c@example.com" };
		bool fc[] = { true, true };
		assert_int_equal(sub_limits_commit(r, "mjl", rc, fc, 2, now, &err), 0);
	}
	assert_int_equal(sub_limits_check_rcpt(r, "mjl", "c@example.com", 0, 3, now, &first,
					       &reply), SUB_LIMITS_OK);
	assert_false(first);
	assert_int_equal(sub_limits_check_rcpt(r, "mjl", "e@example.com", 0, 3, now, &first,
					       &reply), SUB_LIMITS_REFUSED);
	assert_memory_equal(reply, "451 4.7.0", 9);
	/* another account knows nobody */
	assert_int_equal(sub_limits_check_rcpt(r, "bob", "c@example.com", 0, 3, now, &first,
					       &reply), SUB_LIMITS_OK);
	assert_true(first);

	/* Redis down: a temporary answer, never a pass or a 5xx. */
	kill(pid, SIGTERM);
	waitpid(pid, NULL, 0);
	assert_int_equal(sub_limits_check_messages(r, "mjl", 5, now, &reply),
			 SUB_LIMITS_UNAVAILABLE);
	assert_memory_equal(reply, "451 4.3.0", 9);
	assert_int_equal(sub_limits_check_rcpt(r, "mjl", "z@example.com", 0, 5, now, &first,
					       &reply), SUB_LIMITS_UNAVAILABLE);
	assert_memory_equal(reply, "451 4.3.0", 9);
	{
		const char *rc[] = { "z@example.com" };
		bool fc[] = { true };
		assert_int_equal(sub_limits_commit(r, "mjl", rc, fc, 1, now, &err), -1);
	}
	mf_redis_free(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_decide),
		cmocka_unit_test(test_redis),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
