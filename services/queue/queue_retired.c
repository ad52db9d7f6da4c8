#include "queue_retired.h"
#include "queue_db_private.h"
#include "buf.h"

#include <stdlib.h>

int queue_retired_add(struct queue_db *db, const struct queue_row *r, bool success,
		      int64_t now_ms, const char **error_r)
{
	sqlite3_stmt *st = NULL;
	int i = 1, ret = -1;

	if (sqlite3_prepare_v2(queue_db_sqlite(db), "INSERT OR REPLACE INTO retired (id, base_id,"
			       " account, mail_from, rcpt, message_id, transport, queued_ms,"
			       " retired_ms, success, attempts, last_code, last_enhanced, last_text)"
			       " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)", -1, &st, NULL) != SQLITE_OK)
		goto sqlerr;
	sqlite3_bind_int64(st, i++, r->id);
	sqlite3_bind_int64(st, i++, r->base_id);
	sqlite3_bind_text(st, i++, r->account, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, i++, r->mail_from, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, i++, r->rcpt, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, i++, r->message_id, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, i++, r->transport, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(st, i++, r->queued_ms);
	sqlite3_bind_int64(st, i++, now_ms);
	sqlite3_bind_int(st, i++, success);
	sqlite3_bind_int64(st, i++, r->attempts);
	sqlite3_bind_int64(st, i++, r->last_code);
	sqlite3_bind_text(st, i++, r->last_enhanced != NULL ? r->last_enhanced : "", -1,
			  SQLITE_TRANSIENT);
	sqlite3_bind_text(st, i++, r->last_text != NULL ? r->last_text : "", -1, SQLITE_TRANSIENT);
	if (sqlite3_step(st) != SQLITE_DONE)
		goto sqlerr;
	if (queue_db_delete(db, r->id, error_r) < 0)
		goto out;
	ret = 0;
	goto out;
sqlerr:
	*error_r = queue_db_error(db, "retired");
out:
	sqlite3_finalize(st);
	return ret;
}

/* Removes history retired before before_ms, of account only when it is
 * not NULL; adds to *removed_r. */
static int cleanup_before(struct queue_db *db, const char *account, int64_t before_ms,
			  unsigned *removed_r, const char **error_r)
{
	sqlite3 *sql = queue_db_sqlite(db);
	sqlite3_stmt *st = NULL;
	const char *where = account != NULL ? " WHERE retired_ms < ? AND account = ?" :
			    " WHERE retired_ms < ?";
	char *q;
	int ret = -1, rc;

	q = mf_xasprintf("DELETE FROM attempt WHERE msg_id IN (SELECT id FROM retired%s)", where);
	rc = sqlite3_prepare_v2(sql, q, -1, &st, NULL);
	free(q);
	if (rc != SQLITE_OK)
		goto sqlerr;
	sqlite3_bind_int64(st, 1, before_ms);
	if (account != NULL)
		sqlite3_bind_text(st, 2, account, -1, SQLITE_TRANSIENT);
	if (sqlite3_step(st) != SQLITE_DONE)
		goto sqlerr;
	sqlite3_finalize(st);
	q = mf_xasprintf("DELETE FROM retired%s", where);
	rc = sqlite3_prepare_v2(sql, q, -1, &st, NULL);
	free(q);
	if (rc != SQLITE_OK)
		goto sqlerr;
	sqlite3_bind_int64(st, 1, before_ms);
	if (account != NULL)
		sqlite3_bind_text(st, 2, account, -1, SQLITE_TRANSIENT);
	if (sqlite3_step(st) != SQLITE_DONE)
		goto sqlerr;
	*removed_r += (unsigned)sqlite3_changes(sql);
	ret = 0;
	goto out;
sqlerr:
	*error_r = queue_db_error(db, "retired cleanup");
out:
	sqlite3_finalize(st);
	return ret;
}

/* Extra data goes with the last row of its message. */
static int cleanup_extra(struct queue_db *db, const char **error_r)
{
	sqlite3 *sql = queue_db_sqlite(db);
	sqlite3_stmt *st = NULL;
	int ret = -1;

	if (sqlite3_prepare_v2(sql, "DELETE FROM extra WHERE msg_base NOT IN (SELECT base_id FROM"
			       " msg) AND msg_base NOT IN (SELECT base_id FROM retired)", -1, &st,
			       NULL) != SQLITE_OK)
		goto sqlerr;
	if (sqlite3_step(st) != SQLITE_DONE)
		goto sqlerr;
	ret = 0;
	goto out;
sqlerr:
	*error_r = queue_db_error(db, "retired cleanup");
out:
	sqlite3_finalize(st);
	return ret;
}

int queue_retired_get(struct queue_db *db, int64_t id, bool *success_r, const char **error_r)
{
	sqlite3_stmt *st = NULL;
	int rc, ret = -1;

	if (sqlite3_prepare_v2(queue_db_sqlite(db), "SELECT success FROM retired WHERE id = ?", -1,
			       &st, NULL) != SQLITE_OK) {
		*error_r = queue_db_error(db, "retired");
		return -1;
	}
	sqlite3_bind_int64(st, 1, id);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*success_r = sqlite3_column_int(st, 0) != 0;
		ret = 1;
	} else if (rc == SQLITE_DONE) {
		ret = 0;
	} else {
		*error_r = queue_db_error(db, "retired");
	}
	sqlite3_finalize(st);
	return ret;
}

int queue_retired_cleanup(struct queue_db *db, int64_t before_ms, unsigned *removed_r,
			  const char **error_r)
{
	*removed_r = 0;
	if (cleanup_before(db, NULL, before_ms, removed_r, error_r) < 0)
		return -1;
	return cleanup_extra(db, error_r);
}

int queue_retired_cleanup_accounts(struct queue_db *db, int64_t now_ms,
				   queue_retired_keep_fn *keep, void *ctx, unsigned *removed_r,
				   const char **error_r)
{
	sqlite3_stmt *st = NULL;
	char **accounts = NULL;
	size_t n = 0;
	int ret = -1, rc;

	*removed_r = 0;
	if (sqlite3_prepare_v2(queue_db_sqlite(db), "SELECT DISTINCT account FROM retired", -1, &st,
			       NULL) != SQLITE_OK) {
		*error_r = queue_db_error(db, "retired accounts");
		goto out;
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const unsigned char *a = sqlite3_column_text(st, 0);
		accounts = mf_xrealloc(accounts, (n + 1) * sizeof(*accounts));
		accounts[n++] = mf_xstrdup(a != NULL ? (const char *)a : "");
	}
	if (rc != SQLITE_DONE) {
		*error_r = queue_db_error(db, "retired accounts");
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		if (cleanup_before(db, accounts[i], now_ms - keep(accounts[i], ctx), removed_r,
				   error_r) < 0)
			goto out;
	}
	ret = cleanup_extra(db, error_r);
out:
	sqlite3_finalize(st);
	for (size_t i = 0; i < n; i++)
		free(accounts[i]);
	free(accounts);
	return ret;
}
