#include "queue_retired.h"
#include "queue_db_private.h"

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

int queue_retired_cleanup(struct queue_db *db, int64_t before_ms, unsigned *removed_r,
			  const char **error_r)
{
	sqlite3 *sql = queue_db_sqlite(db);
	sqlite3_stmt *st = NULL;
	int ret = -1;

	*removed_r = 0;
	if (sqlite3_prepare_v2(sql, "DELETE FROM attempt WHERE msg_id IN (SELECT id FROM retired"
			       " WHERE retired_ms < ?)", -1, &st, NULL) != SQLITE_OK)
		goto sqlerr;
	sqlite3_bind_int64(st, 1, before_ms);
	if (sqlite3_step(st) != SQLITE_DONE)
		goto sqlerr;
	sqlite3_finalize(st);
	if (sqlite3_prepare_v2(sql, "DELETE FROM retired WHERE retired_ms < ?", -1, &st,
			       NULL) != SQLITE_OK)
		goto sqlerr;
	sqlite3_bind_int64(st, 1, before_ms);
	if (sqlite3_step(st) != SQLITE_DONE)
		goto sqlerr;
	*removed_r = (unsigned)sqlite3_changes(sql);
	sqlite3_finalize(st);
	/* Extra data goes with the last row of its message. */
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
