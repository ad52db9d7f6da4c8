/* Retired history kept per account: each account's own period, the
 * queue's default for the others. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "services/queue/queue_db.h"
#include "services/queue/queue_retired.h"

static char dir[64];
static char path[128];

static int setup(void **state)
{
	snprintf(dir, sizeof(dir), "/tmp/mf-queue-retired-XXXXXX");
	if (mkdtemp(dir) == NULL)
		return -1;
	snprintf(path, sizeof(path), "%s/queue.db", dir);
	return 0;
}

static int teardown(void **state)
{
	char cmd[256];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd) == 0 ? 0 : -1;
}

/* Queues a row for account and retires it at retired_ms; returns its id. */
static int64_t retire(struct queue_db *db, int64_t base, const char *account, int64_t retired_ms)
{
	struct queue_row row, got;
	const char *error;

	memset(&row, 0, sizeof(row));
	row.base_id = base;
	row.account = (char *)account;
	row.mail_from = "a@example.org";
	row.from_domain = "example.org";
	row.rcpt = "r@example.com";
	row.rcpt_domain = "example.com";
	row.blob_key = "queue/x";
	row.transport = "";
	row.queued_ms = 1;
	row.next_attempt_ms = 1;
	row.max_attempts = 8;
	assert_int_equal(queue_db_insert(db, &row, &error), 0);
	assert_int_equal(queue_db_get(db, row.id, &got, &error), 1);
	assert_int_equal(queue_retired_add(db, &got, true, retired_ms, &error), 0);
	queue_row_clear(&got);
	return row.id;
}

/* "long" keeps 1000 ms, "short" 10 ms, everyone else 100 ms. */
static int64_t keep(const char *account, void *ctx)
{
	(*(int *)ctx)++;
	if (strcmp(account, "long") == 0)
		return 1000;
	if (strcmp(account, "short") == 0)
		return 10;
	return 100;
}

static bool kept(struct queue_db *db, int64_t id)
{
	bool success;
	const char *error;
	return queue_retired_get(db, id, &success, &error) == 1;
}

static void test_per_account(void **state)
{
	struct queue_db *db = NULL;
	const char *error;
	unsigned removed = 99;
	int calls = 0;
	int64_t l, s, o;

	assert_int_equal(queue_db_open(path, &db, &error), 0);
	queue_db_lock(db);
	l = retire(db, 1, "long", 500);
	s = retire(db, 2, "short", 500);
	o = retire(db, 3, "other", 500);
	/* At 505 nothing is old enough. */
	assert_int_equal(queue_retired_cleanup_accounts(db, 505, keep, &calls, &removed, &error), 0);
	assert_int_equal(removed, 0);
	assert_int_equal(calls, 3);
	/* At 550 only short's (10 ms) is gone. */
	assert_int_equal(queue_retired_cleanup_accounts(db, 550, keep, &calls, &removed, &error), 0);
	assert_int_equal(removed, 1);
	assert_true(kept(db, l));
	assert_false(kept(db, s));
	assert_true(kept(db, o));
	/* At 700 the default (100 ms) ran out, long's 1000 ms did not. */
	assert_int_equal(queue_retired_cleanup_accounts(db, 700, keep, &calls, &removed, &error), 0);
	assert_int_equal(removed, 1);
	assert_true(kept(db, l));
	assert_false(kept(db, o));
	assert_int_equal(queue_retired_cleanup_accounts(db, 1501, keep, &calls, &removed, &error), 0);
	assert_int_equal(removed, 1);
	assert_false(kept(db, l));
	queue_db_unlock(db);
	queue_db_close(&db);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_per_account),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
