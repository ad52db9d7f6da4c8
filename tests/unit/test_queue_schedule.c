#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "services/queue/queue_schedule.h"

#define MIN (60 * 1000LL)

static void test_backoff(void **state)
{
	/* 7.5 minutes after the first failure, doubling. */
	assert_int_equal(queue_backoff_ms(1), 450 * 1000LL);
	assert_int_equal(queue_backoff_ms(2), 15 * MIN);
	assert_int_equal(queue_backoff_ms(3), 30 * MIN);
	assert_int_equal(queue_backoff_ms(7), 480 * MIN);
	assert_int_equal(queue_backoff_ms(0), 450 * 1000LL);
	/* Huge attempt numbers do not overflow. */
	assert_true(queue_backoff_ms(1000) > 0);
	assert_int_equal(queue_backoff_ms(1000), queue_backoff_ms(21));
}

static void test_decide(void **state)
{
	struct queue_decision d;
	int64_t now = 1000000;

	/* Delivered: retired, no DSN unless SUCCESS was asked for. */
	queue_schedule_decide(true, false, 1, 8, 0, false, now, &d);
	assert_int_equal(d.outcome, QUEUE_OUTCOME_DELIVERED);
	assert_false(d.dsn_success || d.dsn_failure || d.dsn_delayed);
	queue_schedule_decide(true, false, 1, 8, QUEUE_NOTIFY_SUCCESS, false, now, &d);
	assert_true(d.dsn_success);

	/* Temporary failure: retry with backoff. */
	queue_schedule_decide(false, false, 1, 8, 0, false, now, &d);
	assert_int_equal(d.outcome, QUEUE_OUTCOME_RETRY);
	assert_int_equal(d.next_attempt_ms, now + 450 * 1000LL);
	assert_false(d.dsn_delayed);
	queue_schedule_decide(false, false, 3, 8, 0, false, now, &d);
	assert_int_equal(d.next_attempt_ms, now + 30 * MIN);

	/* The 5th failure sends a delayed DSN, once. */
	queue_schedule_decide(false, false, 5, 8, 0, false, now, &d);
	assert_int_equal(d.outcome, QUEUE_OUTCOME_RETRY);
	assert_true(d.dsn_delayed);
	queue_schedule_decide(false, false, 6, 8, 0, false, now, &d);
	assert_false(d.dsn_delayed);
	/* ... unless NOTIFY left DELAY out. */
	queue_schedule_decide(false, false, 5, 8, QUEUE_NOTIFY_FAILURE, false, now, &d);
	assert_false(d.dsn_delayed);

	/* The last attempt fails with a DSN. */
	queue_schedule_decide(false, false, 8, 8, 0, false, now, &d);
	assert_int_equal(d.outcome, QUEUE_OUTCOME_FAILED);
	assert_true(d.dsn_failure);
	/* Per-message max_attempts; 0 is the default of 8. */
	queue_schedule_decide(false, false, 2, 2, 0, false, now, &d);
	assert_int_equal(d.outcome, QUEUE_OUTCOME_FAILED);
	queue_schedule_decide(false, false, 7, 0, 0, false, now, &d);
	assert_int_equal(d.outcome, QUEUE_OUTCOME_RETRY);

	/* A permanent error fails at once. */
	queue_schedule_decide(false, true, 1, 8, 0, false, now, &d);
	assert_int_equal(d.outcome, QUEUE_OUTCOME_FAILED);
	assert_true(d.dsn_failure);

	/* NOTIFY=NEVER and the null sender get no DSN at all. */
	queue_schedule_decide(false, true, 1, 8, QUEUE_NOTIFY_NEVER, false, now, &d);
	assert_false(d.dsn_failure);
	queue_schedule_decide(false, true, 1, 8, 0, true, now, &d);
	assert_false(d.dsn_failure);
	queue_schedule_decide(false, false, 5, 8, 0, true, now, &d);
	assert_false(d.dsn_delayed);
}

static void test_backoff_override(void **state)
{
	queue_schedule_set_backoff_first(1000);
	assert_int_equal(queue_backoff_ms(1), 1000);
	assert_int_equal(queue_backoff_ms(3), 4000);
	queue_schedule_set_backoff_first(0);
	assert_int_equal(queue_backoff_ms(1), QUEUE_BACKOFF_FIRST_MS);
}

static void test_suppresses(void **state)
{
	assert_true(queue_schedule_suppresses(550, "5.1.1"));
	assert_true(queue_schedule_suppresses(556, "5.1.10"));
	assert_true(queue_schedule_suppresses(550, "5.2.1"));
	assert_false(queue_schedule_suppresses(550, "5.7.1"));   /* policy, not the address */
	assert_false(queue_schedule_suppresses(450, "4.1.1"));
	assert_false(queue_schedule_suppresses(550, ""));
	assert_false(queue_schedule_suppresses(550, NULL));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_backoff),
		cmocka_unit_test(test_decide),
		cmocka_unit_test(test_backoff_override),
		cmocka_unit_test(test_suppresses),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
