#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "services/queue/queue_db.h"
#include "services/queue/queue_db_private.h"
#include "services/queue/queue_holdrules.h"
#include "services/queue/queue_retired.h"
#include "services/queue/queue_suppress.h"

static char dir[64];
static char path[128];

static int setup(void **state)
{
	snprintf(dir, sizeof(dir), "/tmp/mf-queue-db-XXXXXX");
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

static void add(struct queue_db *db, int64_t base, const char *account, const char *from,
		const char *rcpt, int64_t next, struct queue_row *row_r)
{
	const char *error;

	memset(row_r, 0, sizeof(*row_r));
	row_r->base_id = base;
	row_r->account = (char *)account;
	row_r->mail_from = (char *)from;
	row_r->from_domain = queue_address_domain(from);
	row_r->rcpt = (char *)rcpt;
	row_r->rcpt_domain = queue_address_domain(rcpt);
	row_r->blob_key = "queue/x";
	row_r->transport = "";
	row_r->queued_ms = 1;
	row_r->next_attempt_ms = next;
	row_r->max_attempts = 8;
	assert_int_equal(queue_db_insert(db, row_r, &error), 0);
	free(row_r->from_domain);
	free(row_r->rcpt_domain);
}

static void test_rows(void **state)
{
	struct queue_db *db = NULL;
	struct queue_row r1, r2, r3, got, *rows = NULL;
	struct queue_filter f = { .held = -1 };
	size_t n = 0;
	const char *error;
	int64_t ids[1];

	assert_int_equal(queue_db_open(path, &db, &error), 0);
	queue_db_lock(db);
	add(db, 0, "mjl", "mjl@Example.COM", "a@Example.org", 100, &r1);
	assert_int_equal(r1.base_id, r1.id);
	add(db, r1.base_id, "mjl", "mjl@example.com", "b@example.net", 100, &r2);
	add(db, 0, "other", "o@other.example", "c@example.org", 500, &r3);
	assert_int_equal(r2.base_id, r1.id);
	assert_int_equal(queue_db_extra_add(db, r1.base_id, "campaign", "x1", &error), 0);
	assert_int_equal(queue_db_extra_add(db, r1.base_id, "campaign", "x2", &error), 0);

	/* Domains are stored lower-case, and filters match them. */
	f.to_domain = "example.org";
	assert_int_equal(queue_db_select(db, &f, 0, 0, &rows, &n, &error), 0);
	assert_int_equal(n, 2);
	assert_string_equal(rows[0].rcpt_domain, "example.org");
	queue_rows_free(&rows, n);
	f.to_domain = NULL;
	f.account = "mjl";
	f.from_domain = "example.com";
	assert_int_equal(queue_db_select(db, &f, 0, 0, &rows, &n, &error), 0);
	assert_int_equal(n, 2);
	queue_rows_free(&rows, n);
	/* Ids match rows or their base. */
	memset(&f, 0, sizeof(f));
	f.held = -1;
	ids[0] = r1.id;
	f.ids = ids;
	f.nids = 1;
	assert_int_equal(queue_db_select(db, &f, 0, 0, &rows, &n, &error), 0);
	assert_int_equal(n, 2);
	queue_rows_free(&rows, n);
	/* Pagination. */
	memset(&f, 0, sizeof(f));
	f.held = -1;
	assert_int_equal(queue_db_select(db, &f, r1.id, 1, &rows, &n, &error), 0);
	assert_int_equal(n, 1);
	assert_int_equal(rows[0].id, r2.id);
	queue_rows_free(&rows, n);
	/* Due: next attempt reached, not held, not leased. */
	f.due_at_ms = 200;
	assert_int_equal(queue_db_select(db, &f, 0, 0, &rows, &n, &error), 0);
	assert_int_equal(n, 2);
	rows[0].lease = 42;
	rows[0].lease_until_ms = 1000;
	assert_int_equal(queue_db_update(db, &rows[0], &error), 0);
	queue_rows_free(&rows, n);
	assert_int_equal(queue_db_select(db, &f, 0, 0, &rows, &n, &error), 0);
	assert_int_equal(n, 1);
	queue_rows_free(&rows, n);
	assert_int_equal(queue_db_get(db, r1.id, &got, &error), 1);
	assert_int_equal(got.lease, 42);
	assert_int_equal(queue_db_next_due(db), 100);
	queue_row_clear(&got);

	/* Retire: gone from the queue, kept in the history. */
	assert_int_equal(queue_db_blob_refs(db, "queue/x", &error), 3);
	assert_int_equal(queue_db_get(db, r3.id, &got, &error), 1);
	assert_int_equal(queue_retired_add(db, &got, true, 999, &error), 0);
	queue_row_clear(&got);
	assert_int_equal(queue_db_get(db, r3.id, &got, &error), 0);
	{
		bool success = false;
		unsigned removed;
		assert_int_equal(queue_retired_get(db, r3.id, &success, &error), 1);
		assert_true(success);
		assert_int_equal(queue_retired_cleanup(db, 1000, &removed, &error), 0);
		assert_int_equal(removed, 1);
		assert_int_equal(queue_retired_get(db, r3.id, &success, &error), 0);
	}
	assert_int_equal(queue_db_blob_refs(db, "queue/x", &error), 2);
	queue_db_unlock(db);
	queue_db_close(&db);

	/* Reopening keeps everything (and does not migrate twice). */
	assert_int_equal(queue_db_open(path, &db, &error), 0);
	queue_db_lock(db);
	memset(&f, 0, sizeof(f));
	f.held = -1;
	assert_int_equal(queue_db_select(db, &f, 0, 0, &rows, &n, &error), 0);
	assert_int_equal(n, 2);
	queue_rows_free(&rows, n);
	queue_db_unlock(db);
	queue_db_close(&db);
}

/* Virtual machine steps of the statements run while the trace is on. */
static uint64_t vm_steps;
static unsigned fullscans;

static int count_steps(unsigned type, void *ctx, void *p, void *x)
{
	sqlite3_stmt *st = p;

	if (type == SQLITE_TRACE_PROFILE) {
		vm_steps += (uint64_t)sqlite3_stmt_status(st, SQLITE_STMTSTATUS_VM_STEP, 0);
		fullscans += (unsigned)sqlite3_stmt_status(st, SQLITE_STMTSTATUS_FULLSCAN_STEP, 0);
	}
	return 0;
}

/* The dispatcher runs its due select and the next-wakeup query after every
 * delivery result: with a backlog of leased rows, neither may walk the
 * leased rows (that made a drain quadratic), and both must still find
 * exactly the rows whose retry time and lease have passed. */
static void test_due_without_scan(void **state)
{
	struct queue_db *db = NULL;
	struct queue_row r, *rows = NULL;
	struct queue_filter f = { .held = -1 };
	size_t n = 0;
	const char *error;
	enum { LEASED = 3000 };
	int64_t due_id = 0, later_id = 0;

	assert_int_equal(queue_db_open(path, &db, &error), 0);
	queue_db_lock(db);
	assert_int_equal(queue_db_begin(db, &error), 0);
	for (int i = 0; i < LEASED; i++) {
		add(db, 0, "mjl", "mjl@example.com", "a@example.org", 100, &r);
		r.lease = 7;
		r.lease_until_ms = 100000;
		assert_int_equal(queue_db_update(db, &r, &error), 0);
	}
	/* Due at 500: retry time passed, lease (of an earlier job) ran out. */
	add(db, 0, "mjl", "mjl@example.com", "b@example.org", 500, &r);
	due_id = r.id;
	r.lease = 8;
	r.lease_until_ms = 400;
	assert_int_equal(queue_db_update(db, &r, &error), 0);
	/* Not leased, due later. */
	add(db, 0, "mjl", "mjl@example.com", "c@example.org", 5000, &r);
	later_id = r.id;
	assert_int_equal(queue_db_commit(db, &error), 0);

	vm_steps = 0;
	fullscans = 0;
	assert_int_equal(sqlite3_trace_v2(queue_db_sqlite(db), SQLITE_TRACE_PROFILE,
					  count_steps, NULL), SQLITE_OK);
	f.due_at_ms = 1000;
	assert_int_equal(queue_db_select(db, &f, 0, 500, &rows, &n, &error), 0);
	assert_int_equal(n, 1);
	assert_int_equal(rows[0].id, due_id);
	queue_rows_free(&rows, n);
	assert_int_equal(queue_db_next_due(db), 500);
	f.due_at_ms = 6000;
	assert_int_equal(queue_db_select(db, &f, 0, 500, &rows, &n, &error), 0);
	assert_int_equal(n, 2);
	assert_int_equal(rows[0].id, due_id);
	assert_int_equal(rows[1].id, later_id);
	queue_rows_free(&rows, n);
	assert_int_equal(sqlite3_trace_v2(queue_db_sqlite(db), 0, NULL, NULL), SQLITE_OK);
	assert_int_equal(fullscans, 0);
	/* A walk over the leased rows alone would take several steps each. */
	assert_true(vm_steps < LEASED);

	/* Once the leases run out, every row is due again. */
	f.due_at_ms = 200000;
	assert_int_equal(queue_db_select(db, &f, 0, 0, &rows, &n, &error), 0);
	assert_int_equal(n, LEASED + 2);
	queue_rows_free(&rows, n);
	queue_db_unlock(db);
	queue_db_close(&db);
}

static void test_holdrules_suppress(void **state)
{
	struct queue_db *db = NULL;
	struct queue_row r1, r2, *rows = NULL;
	struct queue_holdrule rule = { .account = "", .from_domain = "", .to_domain = "Example.ORG" };
	struct queue_holdrule *rules = NULL;
	struct queue_filter f = { .held = 1 };
	struct queue_suppression *list = NULL;
	unsigned held;
	size_t n;
	char *reason = NULL;
	const char *error;

	assert_int_equal(queue_db_open(path, &db, &error), 0);
	queue_db_lock(db);
	add(db, 0, "mjl", "mjl@example.com", "a@example.org", 100, &r1);
	add(db, 0, "mjl", "mjl@example.com", "b@example.net", 100, &r2);
	assert_int_equal(queue_holdrules_add(db, &rule, &held, &error), 0);
	assert_int_equal(held, 1);
	assert_int_equal(queue_db_select(db, &f, 0, 0, &rows, &n, &error), 0);
	assert_int_equal(n, 1);
	assert_string_equal(rows[0].rcpt, "a@example.org");
	queue_rows_free(&rows, n);
	assert_int_equal(queue_holdrules_check(db, "x", "y.example", "example.org", &error), 1);
	assert_int_equal(queue_holdrules_check(db, "x", "y.example", "example.net", &error), 0);
	assert_int_equal(queue_holdrules_list(db, &rules, &n, &error), 0);
	assert_int_equal(n, 1);
	assert_true(queue_holdrule_matches(&rules[0], "any", "any", "EXAMPLE.org"));
	assert_int_equal(queue_holdrules_remove(db, rules[0].id, &error), 1);
	assert_int_equal(queue_holdrules_remove(db, rules[0].id, &error), 0);
	queue_holdrules_free(&rules, n);
	{
		struct queue_holdrule all = { .account = "", .from_domain = "", .to_domain = "" };
		assert_true(queue_holdrule_matches(&all, "a", "b", "c"));
		struct queue_holdrule acc = { .account = "mjl", .from_domain = "", .to_domain = "" };
		assert_false(queue_holdrule_matches(&acc, "other", "b", "c"));
	}

	assert_int_equal(queue_suppress_add(db, "mjl", "Bob@Example.org", "550 5.1.1 gone", false,
					    5, &error), 0);
	assert_int_equal(queue_suppress_check(db, "mjl", "bob@example.ORG", &reason, &error), 1);
	assert_string_equal(reason, "550 5.1.1 gone");
	free(reason);
	assert_int_equal(queue_suppress_check(db, "other", "bob@example.org", NULL, &error), 0);
	assert_int_equal(queue_suppress_list(db, "", &list, &n, &error), 0);
	assert_int_equal(n, 1);
	assert_string_equal(list[0].address, "bob@example.org");
	assert_false(list[0].manual);
	queue_suppress_list_free(&list, n);
	assert_int_equal(queue_suppress_remove(db, "mjl", "BOB@example.org", &error), 1);
	assert_int_equal(queue_suppress_remove(db, "mjl", "bob@example.org", &error), 0);

	/* Pending DSNs. */
	{
		struct queue_dsn_pending *p = NULL;
		assert_int_equal(queue_db_dsn_add(db, "mjl", "mjl@example.com", "queue/dsn/1", 10,
						  &error), 0);
		assert_int_equal(queue_db_dsn_due(db, 10, 10, &p, &n, &error), 0);
		assert_int_equal(n, 1);
		assert_string_equal(p[0].rcpt, "mjl@example.com");
		assert_int_equal(queue_db_dsn_retry(db, p[0].id, 100, &error), 0);
		queue_dsn_pending_free(&p, n);
		assert_int_equal(queue_db_dsn_due(db, 50, 10, &p, &n, &error), 0);
		assert_int_equal(n, 0);
		queue_dsn_pending_free(&p, n);
		assert_int_equal(queue_db_dsn_due(db, 100, 10, &p, &n, &error), 0);
		assert_int_equal(n, 1);
		assert_int_equal(p[0].tries, 1);
		assert_int_equal(queue_db_dsn_done(db, p[0].id, &error), 0);
		queue_dsn_pending_free(&p, n);
	}
	/* A transaction that rolls back leaves nothing. */
	assert_int_equal(queue_db_begin(db, &error), 0);
	add(db, 0, "mjl", "mjl@example.com", "c@example.org", 100, &r1);
	queue_db_rollback(db);
	assert_int_equal(queue_db_get(db, r1.id, &r2, &error), 0);
	queue_db_unlock(db);
	queue_db_close(&db);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_rows, setup, teardown),
		cmocka_unit_test_setup_teardown(test_holdrules_suppress, setup, teardown),
		cmocka_unit_test_setup_teardown(test_due_without_scan, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
