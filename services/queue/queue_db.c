#include "queue_db.h"
#include "queue_db_private.h"
#include "buf.h"
#include "error.h"

#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Filters with more ids than this are refused by the admin API first. */
#define QUEUE_DB_FILTER_IDS_MAX 10000
#define QUEUE_DB_BUSY_TIMEOUT_MS 5000

struct queue_db {
	sqlite3 *sql;
	pthread_mutex_t lock;
};

/* Migrations: each entry moves the schema from version i to i + 1.  Never
 * change an entry that has shipped; add a new one. */
static const char *const migrations[] = {
	"CREATE TABLE msg ("
	" id INTEGER PRIMARY KEY AUTOINCREMENT,"
	" base_id INTEGER NOT NULL,"
	" account TEXT NOT NULL,"
	" mail_from TEXT NOT NULL,"
	" from_domain TEXT NOT NULL,"
	" rcpt TEXT NOT NULL,"
	" rcpt_domain TEXT NOT NULL,"
	" dsn_notify INTEGER NOT NULL DEFAULT 0,"
	" dsn_orcpt TEXT NOT NULL DEFAULT '',"
	" dsn_envid TEXT NOT NULL DEFAULT '',"
	" dsn_ret TEXT NOT NULL DEFAULT '',"
	" blob_key TEXT NOT NULL,"
	" size INTEGER NOT NULL DEFAULT 0,"
	" message_id TEXT NOT NULL DEFAULT '',"
	" cid TEXT NOT NULL DEFAULT '',"
	" transport TEXT NOT NULL DEFAULT '',"
	" queued_ms INTEGER NOT NULL,"
	" next_attempt_ms INTEGER NOT NULL,"
	" attempts INTEGER NOT NULL DEFAULT 0,"
	" max_attempts INTEGER NOT NULL,"
	" held INTEGER NOT NULL DEFAULT 0,"
	" requiretls INTEGER NOT NULL DEFAULT 0,"
	" smtputf8 INTEGER NOT NULL DEFAULT 0,"
	" has_8bit INTEGER NOT NULL DEFAULT 0,"
	" lease INTEGER NOT NULL DEFAULT 0,"
	" lease_until_ms INTEGER NOT NULL DEFAULT 0,"
	" last_code INTEGER NOT NULL DEFAULT 0,"
	" last_enhanced TEXT NOT NULL DEFAULT '',"
	" last_text TEXT NOT NULL DEFAULT '',"
	" last_host TEXT NOT NULL DEFAULT '',"
	" last_attempt_ms INTEGER NOT NULL DEFAULT 0);"
	"CREATE INDEX msg_due ON msg(held, next_attempt_ms);"
	"CREATE INDEX msg_base ON msg(base_id);"
	"CREATE INDEX msg_blob ON msg(blob_key);"
	"CREATE TABLE extra (msg_base INTEGER NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,"
	" PRIMARY KEY (msg_base, key));"
	"CREATE TABLE attempt ("
	" id INTEGER PRIMARY KEY,"
	" msg_id INTEGER NOT NULL,"
	" at_ms INTEGER NOT NULL,"
	" code INTEGER NOT NULL,"
	" enhanced TEXT NOT NULL,"
	" text TEXT NOT NULL,"
	" host TEXT NOT NULL,"
	" tls TEXT NOT NULL,"
	" duration_ms INTEGER NOT NULL);"
	"CREATE INDEX attempt_msg ON attempt(msg_id);"
	"CREATE TABLE retired ("
	" id INTEGER PRIMARY KEY,"
	" base_id INTEGER NOT NULL,"
	" account TEXT NOT NULL,"
	" mail_from TEXT NOT NULL,"
	" rcpt TEXT NOT NULL,"
	" message_id TEXT NOT NULL,"
	" transport TEXT NOT NULL,"
	" queued_ms INTEGER NOT NULL,"
	" retired_ms INTEGER NOT NULL,"
	" success INTEGER NOT NULL,"
	" attempts INTEGER NOT NULL,"
	" last_code INTEGER NOT NULL,"
	" last_enhanced TEXT NOT NULL,"
	" last_text TEXT NOT NULL);"
	"CREATE INDEX retired_time ON retired(retired_ms);"
	"CREATE TABLE holdrule ("
	" id INTEGER PRIMARY KEY AUTOINCREMENT,"
	" account TEXT NOT NULL,"
	" from_domain TEXT NOT NULL,"
	" to_domain TEXT NOT NULL);"
	"CREATE TABLE suppression ("
	" account TEXT NOT NULL,"
	" address TEXT NOT NULL,"
	" reason TEXT NOT NULL,"
	" manual INTEGER NOT NULL,"
	" created_ms INTEGER NOT NULL,"
	" PRIMARY KEY (account, address));"
	"CREATE TABLE dsn_pending ("
	" id INTEGER PRIMARY KEY AUTOINCREMENT,"
	" account TEXT NOT NULL,"
	" rcpt TEXT NOT NULL,"
	" blob_key TEXT NOT NULL,"
	" created_ms INTEGER NOT NULL,"
	" tries INTEGER NOT NULL DEFAULT 0,"
	" next_try_ms INTEGER NOT NULL DEFAULT 0);",
	/* A row is due when both its retry time and its lease have passed.
	 * Indexing that expression keeps the dispatcher's due select and its
	 * next-wakeup query from scanning every leased row of a backlog on
	 * each round (a round runs after every result). */
	"CREATE INDEX msg_ready ON msg(held, max(next_attempt_ms, lease_until_ms));",
};

sqlite3 *queue_db_sqlite(struct queue_db *db)
{
	return db->sql;
}

const char *queue_db_error(struct queue_db *db, const char *what)
{
	return mf_errorf("%s: %s", what, sqlite3_errmsg(db->sql));
}

char *queue_db_column_str(sqlite3_stmt *st, int col)
{
	const unsigned char *t = sqlite3_column_text(st, col);
	return mf_xstrdup(t != NULL ? (const char *)t : "");
}

char *queue_address_domain(const char *address)
{
	const char *at = strrchr(address, '@');
	char *d = mf_xstrdup(at != NULL ? at + 1 : "");

	for (char *p = d; *p != '\0'; p++)
		*p = (char)tolower((unsigned char)*p);
	return d;
}

static int exec(struct queue_db *db, const char *sql, const char **error_r)
{
	char *msg = NULL;

	if (sqlite3_exec(db->sql, sql, NULL, NULL, &msg) != SQLITE_OK) {
		*error_r = mf_errorf("queue db: %s", msg != NULL ? msg : "error");
		sqlite3_free(msg);
		return -1;
	}
	return 0;
}

static int migrate(struct queue_db *db, const char **error_r)
{
	sqlite3_stmt *st = NULL;
	int version = 0;
	size_t n = sizeof(migrations) / sizeof(migrations[0]);

	if (sqlite3_prepare_v2(db->sql, "PRAGMA user_version", -1, &st, NULL) != SQLITE_OK) {
		*error_r = queue_db_error(db, "queue db: user_version");
		return -1;
	}
	if (sqlite3_step(st) == SQLITE_ROW)
		version = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	if (version < 0 || (size_t)version > n) {
		*error_r = mf_errorf("queue db: schema version %d is newer than this program (%zu)",
				     version, n);
		return -1;
	}
	for (size_t v = (size_t)version; v < n; v++) {
		char pragma[64];
		if (exec(db, "BEGIN IMMEDIATE", error_r) < 0)
			return -1;
		snprintf(pragma, sizeof(pragma), "PRAGMA user_version = %zu", v + 1);
		if (exec(db, migrations[v], error_r) < 0 || exec(db, pragma, error_r) < 0) {
			exec(db, "ROLLBACK", error_r);
			return -1;
		}
		if (exec(db, "COMMIT", error_r) < 0)
			return -1;
	}
	return 0;
}

int queue_db_open(const char *path, struct queue_db **db_r, const char **error_r)
{
	struct queue_db *db = mf_xcalloc(1, sizeof(*db));

	if (sqlite3_open_v2(path, &db->sql, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
			    SQLITE_OPEN_FULLMUTEX, NULL) != SQLITE_OK) {
		*error_r = mf_errorf("queue db %s: %s", path,
				     db->sql != NULL ? sqlite3_errmsg(db->sql) : "out of memory");
		goto fail;
	}
	sqlite3_busy_timeout(db->sql, QUEUE_DB_BUSY_TIMEOUT_MS);
	/* WAL with synchronous=FULL: a committed add survives power loss, which
	 * is what lets submission answer 250. */
	if (exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON",
		 error_r) < 0 || migrate(db, error_r) < 0)
		goto fail;
	pthread_mutex_init(&db->lock, NULL);
	*db_r = db;
	return 0;
fail:
	sqlite3_close(db->sql);
	free(db);
	return -1;
}

void queue_db_close(struct queue_db **dbp)
{
	struct queue_db *db = *dbp;

	if (db == NULL)
		return;
	sqlite3_close(db->sql);
	pthread_mutex_destroy(&db->lock);
	free(db);
	*dbp = NULL;
}

void queue_db_lock(struct queue_db *db)
{
	pthread_mutex_lock(&db->lock);
}

void queue_db_unlock(struct queue_db *db)
{
	pthread_mutex_unlock(&db->lock);
}

int queue_db_begin(struct queue_db *db, const char **error_r)
{
	return exec(db, "BEGIN IMMEDIATE", error_r);
}

int queue_db_savepoint(struct queue_db *db, const char **error_r)
{
	return exec(db, "SAVEPOINT part", error_r);
}

int queue_db_savepoint_release(struct queue_db *db, const char **error_r)
{
	return exec(db, "RELEASE part", error_r);
}

void queue_db_savepoint_rollback(struct queue_db *db)
{
	const char *error;

	(void)exec(db, "ROLLBACK TO part; RELEASE part", &error);
}

int queue_db_commit(struct queue_db *db, const char **error_r)
{
	if (exec(db, "COMMIT", error_r) < 0) {
		queue_db_rollback(db);
		return -1;
	}
	return 0;
}

void queue_db_rollback(struct queue_db *db)
{
	const char *error;

	if (sqlite3_get_autocommit(db->sql) == 0)
		(void)exec(db, "ROLLBACK", &error);
}

static int prepare(struct queue_db *db, const char *sql, sqlite3_stmt **st_r,
		   const char **error_r)
{
	if (sqlite3_prepare_v2(db->sql, sql, -1, st_r, NULL) != SQLITE_OK) {
		*error_r = queue_db_error(db, "queue db: prepare");
		return -1;
	}
	return 0;
}

static void bind_str(sqlite3_stmt *st, int i, const char *s)
{
	sqlite3_bind_text(st, i, s != NULL ? s : "", -1, SQLITE_TRANSIENT);
}

#define ROW_COLUMNS \
	"id, base_id, account, mail_from, from_domain, rcpt, rcpt_domain, dsn_notify," \
	" dsn_orcpt, dsn_envid, dsn_ret, blob_key, size, message_id, cid, transport," \
	" queued_ms, next_attempt_ms, attempts, max_attempts, held, requiretls, smtputf8," \
	" has_8bit, lease, lease_until_ms, last_code, last_enhanced, last_text, last_host," \
	" last_attempt_ms"

static void row_read(sqlite3_stmt *st, struct queue_row *r)
{
	int c = 0;

	memset(r, 0, sizeof(*r));
	r->id = sqlite3_column_int64(st, c++);
	r->base_id = sqlite3_column_int64(st, c++);
	r->account = queue_db_column_str(st, c++);
	r->mail_from = queue_db_column_str(st, c++);
	r->from_domain = queue_db_column_str(st, c++);
	r->rcpt = queue_db_column_str(st, c++);
	r->rcpt_domain = queue_db_column_str(st, c++);
	r->dsn_notify = (uint32_t)sqlite3_column_int64(st, c++);
	r->dsn_orcpt = queue_db_column_str(st, c++);
	r->dsn_envid = queue_db_column_str(st, c++);
	r->dsn_ret = queue_db_column_str(st, c++);
	r->blob_key = queue_db_column_str(st, c++);
	r->size = (uint64_t)sqlite3_column_int64(st, c++);
	r->message_id = queue_db_column_str(st, c++);
	r->cid = queue_db_column_str(st, c++);
	r->transport = queue_db_column_str(st, c++);
	r->queued_ms = sqlite3_column_int64(st, c++);
	r->next_attempt_ms = sqlite3_column_int64(st, c++);
	r->attempts = (unsigned)sqlite3_column_int64(st, c++);
	r->max_attempts = (unsigned)sqlite3_column_int64(st, c++);
	r->held = sqlite3_column_int(st, c++) != 0;
	r->requiretls = sqlite3_column_int(st, c++) != 0;
	r->smtputf8 = sqlite3_column_int(st, c++) != 0;
	r->has_8bit = sqlite3_column_int(st, c++) != 0;
	r->lease = (uint64_t)sqlite3_column_int64(st, c++);
	r->lease_until_ms = sqlite3_column_int64(st, c++);
	r->last_code = (unsigned)sqlite3_column_int64(st, c++);
	r->last_enhanced = queue_db_column_str(st, c++);
	r->last_text = queue_db_column_str(st, c++);
	r->last_host = queue_db_column_str(st, c++);
	r->last_attempt_ms = sqlite3_column_int64(st, c++);
}

void queue_row_clear(struct queue_row *r)
{
	free(r->account);
	free(r->mail_from);
	free(r->from_domain);
	free(r->rcpt);
	free(r->rcpt_domain);
	free(r->dsn_orcpt);
	free(r->dsn_envid);
	free(r->dsn_ret);
	free(r->blob_key);
	free(r->message_id);
	free(r->cid);
	free(r->transport);
	free(r->last_enhanced);
	free(r->last_text);
	free(r->last_host);
	memset(r, 0, sizeof(*r));
}

void queue_rows_free(struct queue_row **rows, size_t count)
{
	if (*rows == NULL)
		return;
	for (size_t i = 0; i < count; i++)
		queue_row_clear(&(*rows)[i]);
	free(*rows);
	*rows = NULL;
}

int queue_db_insert(struct queue_db *db, struct queue_row *r, const char **error_r)
{
	sqlite3_stmt *st = NULL;
	int i = 1, ret = -1;

	if (prepare(db, "INSERT INTO msg (base_id, account, mail_from, from_domain, rcpt,"
		    " rcpt_domain, dsn_notify, dsn_orcpt, dsn_envid, dsn_ret, blob_key, size,"
		    " message_id, cid, transport, queued_ms, next_attempt_ms, attempts,"
		    " max_attempts, held, requiretls, smtputf8, has_8bit)"
		    " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", &st, error_r) < 0)
		return -1;
	sqlite3_bind_int64(st, i++, r->base_id);
	bind_str(st, i++, r->account);
	bind_str(st, i++, r->mail_from);
	bind_str(st, i++, r->from_domain);
	bind_str(st, i++, r->rcpt);
	bind_str(st, i++, r->rcpt_domain);
	sqlite3_bind_int64(st, i++, r->dsn_notify);
	bind_str(st, i++, r->dsn_orcpt);
	bind_str(st, i++, r->dsn_envid);
	bind_str(st, i++, r->dsn_ret);
	bind_str(st, i++, r->blob_key);
	sqlite3_bind_int64(st, i++, (int64_t)r->size);
	bind_str(st, i++, r->message_id);
	bind_str(st, i++, r->cid);
	bind_str(st, i++, r->transport);
	sqlite3_bind_int64(st, i++, r->queued_ms);
	sqlite3_bind_int64(st, i++, r->next_attempt_ms);
	sqlite3_bind_int64(st, i++, r->attempts);
	sqlite3_bind_int64(st, i++, r->max_attempts);
	sqlite3_bind_int(st, i++, r->held);
	sqlite3_bind_int(st, i++, r->requiretls);
	sqlite3_bind_int(st, i++, r->smtputf8);
	sqlite3_bind_int(st, i++, r->has_8bit);
	if (sqlite3_step(st) != SQLITE_DONE) {
		*error_r = queue_db_error(db, "queue db: insert");
		goto out;
	}
	r->id = sqlite3_last_insert_rowid(db->sql);
	if (r->base_id == 0) {
		r->base_id = r->id;
		sqlite3_finalize(st);
		st = NULL;
		if (prepare(db, "UPDATE msg SET base_id = id WHERE id = ?", &st, error_r) < 0)
			goto out;
		sqlite3_bind_int64(st, 1, r->id);
		if (sqlite3_step(st) != SQLITE_DONE) {
			*error_r = queue_db_error(db, "queue db: insert");
			goto out;
		}
	}
	ret = 0;
out:
	sqlite3_finalize(st);
	return ret;
}

/* Builds the WHERE clause for filter; binds follow in the same order in
 * bind_filter. */
static void filter_sql(const struct queue_filter *f, struct mf_buf *sql)
{
	mf_buf_append_str(sql, " WHERE id > ?");
	if (f == NULL)
		return;
	if (f->nids > 0) {
		mf_buf_append_str(sql, " AND (id IN (SELECT value FROM json_each(?))"
				  " OR base_id IN (SELECT value FROM json_each(?)))");
	}
	if (f->account != NULL && *f->account != '\0')
		mf_buf_append_str(sql, " AND account = ?");
	if (f->from_domain != NULL && *f->from_domain != '\0')
		mf_buf_append_str(sql, " AND from_domain = ?");
	if (f->to_domain != NULL && *f->to_domain != '\0')
		mf_buf_append_str(sql, " AND rcpt_domain = ?");
	if (f->held >= 0)
		mf_buf_append_str(sql, " AND held = ?");
	if (f->next_before_ms > 0)
		mf_buf_append_str(sql, " AND next_attempt_ms < ?");
	if (f->next_after_ms > 0)
		mf_buf_append_str(sql, " AND next_attempt_ms > ?");
	if (f->transport != NULL)
		mf_buf_append_str(sql, " AND transport = ?");
	if (f->due_at_ms > 0)
		mf_buf_append_str(sql, " AND held = 0 AND max(next_attempt_ms, lease_until_ms) <= ?");
}

static void bind_filter(sqlite3_stmt *st, const struct queue_filter *f, int64_t after_id)
{
	int i = 1;

	sqlite3_bind_int64(st, i++, after_id);
	if (f == NULL)
		return;
	if (f->nids > 0) {
		struct mf_buf ids;
		mf_buf_init(&ids, 0);
		mf_buf_append_str(&ids, "[");
		for (size_t k = 0; k < f->nids; k++)
			mf_buf_appendf(&ids, "%s%lld", k > 0 ? "," : "", (long long)f->ids[k]);
		mf_buf_append_str(&ids, "]");
		bind_str(st, i++, mf_buf_cstr(&ids));
		bind_str(st, i++, mf_buf_cstr(&ids));
		mf_buf_free(&ids);
	}
	if (f->account != NULL && *f->account != '\0')
		bind_str(st, i++, f->account);
	if (f->from_domain != NULL && *f->from_domain != '\0')
		bind_str(st, i++, f->from_domain);
	if (f->to_domain != NULL && *f->to_domain != '\0')
		bind_str(st, i++, f->to_domain);
	if (f->held >= 0)
		sqlite3_bind_int(st, i++, f->held);
	if (f->next_before_ms > 0)
		sqlite3_bind_int64(st, i++, f->next_before_ms);
	if (f->next_after_ms > 0)
		sqlite3_bind_int64(st, i++, f->next_after_ms);
	if (f->transport != NULL)
		bind_str(st, i++, f->transport);
	if (f->due_at_ms > 0) {
		sqlite3_bind_int64(st, i++, f->due_at_ms);
	}
}

int queue_db_select(struct queue_db *db, const struct queue_filter *filter, int64_t after_id,
		    size_t limit, struct queue_row **rows_r, size_t *count_r,
		    const char **error_r)
{
	struct mf_buf sql;
	sqlite3_stmt *st = NULL;
	struct queue_row *rows = NULL;
	size_t n = 0, cap = 0;
	int rc, ret = -1;

	*rows_r = NULL;
	*count_r = 0;
	if (filter != NULL && filter->nids > QUEUE_DB_FILTER_IDS_MAX) {
		*error_r = mf_errorf("too many ids in the filter (max %d)", QUEUE_DB_FILTER_IDS_MAX);
		return -1;
	}
	mf_buf_init(&sql, 0);
	mf_buf_append_str(&sql, "SELECT " ROW_COLUMNS " FROM msg");
	filter_sql(filter, &sql);
	mf_buf_append_str(&sql, filter != NULL && filter->due_at_ms > 0 ?
			  " ORDER BY next_attempt_ms, id" : " ORDER BY id");
	if (limit > 0)
		mf_buf_appendf(&sql, " LIMIT %zu", limit);
	if (prepare(db, mf_buf_cstr(&sql), &st, error_r) < 0)
		goto out;
	bind_filter(st, filter, after_id);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (n == cap) {
			cap = cap == 0 ? 16 : cap * 2;
			rows = mf_xrealloc(rows, cap * sizeof(*rows));
		}
		row_read(st, &rows[n++]);
	}
	if (rc != SQLITE_DONE) {
		*error_r = queue_db_error(db, "queue db: select");
		queue_rows_free(&rows, n);
		goto out;
	}
	*rows_r = rows;
	*count_r = n;
	ret = 0;
out:
	sqlite3_finalize(st);
	mf_buf_free(&sql);
	return ret;
}

int queue_db_get(struct queue_db *db, int64_t id, struct queue_row *row_r,
		 const char **error_r)
{
	sqlite3_stmt *st = NULL;
	int rc, ret = -1;

	if (prepare(db, "SELECT " ROW_COLUMNS " FROM msg WHERE id = ?", &st, error_r) < 0)
		return -1;
	sqlite3_bind_int64(st, 1, id);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		row_read(st, row_r);
		ret = 1;
	} else if (rc == SQLITE_DONE) {
		ret = 0;
	} else {
		*error_r = queue_db_error(db, "queue db: get");
	}
	sqlite3_finalize(st);
	return ret;
}

int queue_db_update(struct queue_db *db, const struct queue_row *r, const char **error_r)
{
	sqlite3_stmt *st = NULL;
	int i = 1, ret = -1;

	if (prepare(db, "UPDATE msg SET next_attempt_ms = ?, attempts = ?, held = ?,"
		    " transport = ?, requiretls = ?, lease = ?, lease_until_ms = ?,"
		    " last_code = ?, last_enhanced = ?, last_text = ?, last_host = ?,"
		    " last_attempt_ms = ? WHERE id = ?", &st, error_r) < 0)
		return -1;
	sqlite3_bind_int64(st, i++, r->next_attempt_ms);
	sqlite3_bind_int64(st, i++, r->attempts);
	sqlite3_bind_int(st, i++, r->held);
	bind_str(st, i++, r->transport);
	sqlite3_bind_int(st, i++, r->requiretls);
	sqlite3_bind_int64(st, i++, (int64_t)r->lease);
	sqlite3_bind_int64(st, i++, r->lease_until_ms);
	sqlite3_bind_int64(st, i++, r->last_code);
	bind_str(st, i++, r->last_enhanced);
	bind_str(st, i++, r->last_text);
	bind_str(st, i++, r->last_host);
	sqlite3_bind_int64(st, i++, r->last_attempt_ms);
	sqlite3_bind_int64(st, i++, r->id);
	if (sqlite3_step(st) != SQLITE_DONE)
		*error_r = queue_db_error(db, "queue db: update");
	else
		ret = 0;
	sqlite3_finalize(st);
	return ret;
}

static int exec_id(struct queue_db *db, const char *sql, int64_t id, const char **error_r)
{
	sqlite3_stmt *st = NULL;
	int ret = -1;

	if (prepare(db, sql, &st, error_r) < 0)
		return -1;
	sqlite3_bind_int64(st, 1, id);
	if (sqlite3_step(st) != SQLITE_DONE)
		*error_r = queue_db_error(db, "queue db");
	else
		ret = 0;
	sqlite3_finalize(st);
	return ret;
}

int queue_db_delete(struct queue_db *db, int64_t id, const char **error_r)
{
	return exec_id(db, "DELETE FROM msg WHERE id = ?", id, error_r);
}

int64_t queue_db_blob_refs(struct queue_db *db, const char *blob_key, const char **error_r)
{
	sqlite3_stmt *st = NULL;
	int64_t n = -1;

	if (prepare(db, "SELECT count(*) FROM msg WHERE blob_key = ?", &st, error_r) < 0)
		return -1;
	bind_str(st, 1, blob_key);
	if (sqlite3_step(st) == SQLITE_ROW)
		n = sqlite3_column_int64(st, 0);
	else
		*error_r = queue_db_error(db, "queue db: blob refs");
	sqlite3_finalize(st);
	return n;
}

int queue_db_extra_add(struct queue_db *db, int64_t base_id, const char *key, const char *value,
		       const char **error_r)
{
	sqlite3_stmt *st = NULL;
	int ret = -1;

	if (prepare(db, "INSERT OR REPLACE INTO extra (msg_base, key, value) VALUES (?,?,?)", &st,
		    error_r) < 0)
		return -1;
	sqlite3_bind_int64(st, 1, base_id);
	bind_str(st, 2, key);
	bind_str(st, 3, value);
	if (sqlite3_step(st) != SQLITE_DONE)
		*error_r = queue_db_error(db, "queue db: extra");
	else
		ret = 0;
	sqlite3_finalize(st);
	return ret;
}

int queue_db_blob_used(struct queue_db *db, const char *blob_key, const char **error_r)
{
	sqlite3_stmt *st = NULL;
	int ret = -1;

	if (prepare(db, "SELECT EXISTS (SELECT 1 FROM msg WHERE blob_key = ?1) OR"
		    " EXISTS (SELECT 1 FROM dsn_pending WHERE blob_key = ?1)", &st, error_r) < 0)
		return -1;
	bind_str(st, 1, blob_key);
	if (sqlite3_step(st) == SQLITE_ROW)
		ret = sqlite3_column_int(st, 0) != 0;
	else
		*error_r = queue_db_error(db, "queue db: blob used");
	sqlite3_finalize(st);
	return ret;
}

int64_t queue_db_count(struct queue_db *db)
{
	sqlite3_stmt *st = NULL;
	int64_t n = -1;
	const char *error;

	pthread_mutex_lock(&db->lock);
	if (prepare(db, "SELECT count(*) FROM msg", &st, &error) == 0 &&
	    sqlite3_step(st) == SQLITE_ROW)
		n = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	pthread_mutex_unlock(&db->lock);
	return n;
}

int64_t queue_db_next_due(struct queue_db *db)
{
	sqlite3_stmt *st = NULL;
	int64_t t = INT64_MAX;
	const char *error;

	if (prepare(db, "SELECT max(next_attempt_ms, lease_until_ms) FROM msg WHERE held = 0"
		    " ORDER BY max(next_attempt_ms, lease_until_ms) LIMIT 1",
		    &st, &error) < 0)
		return t;
	if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL)
		t = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return t;
}

int queue_db_attempt_add(struct queue_db *db, int64_t msg_id, const struct queue_attempt *a,
			 const char **error_r)
{
	sqlite3_stmt *st = NULL;
	int i = 1, ret = -1;

	if (prepare(db, "INSERT INTO attempt (msg_id, at_ms, code, enhanced, text, host, tls,"
		    " duration_ms) VALUES (?,?,?,?,?,?,?,?)", &st, error_r) < 0)
		return -1;
	sqlite3_bind_int64(st, i++, msg_id);
	sqlite3_bind_int64(st, i++, a->at_ms);
	sqlite3_bind_int64(st, i++, a->code);
	bind_str(st, i++, a->enhanced);
	bind_str(st, i++, a->text);
	bind_str(st, i++, a->host);
	bind_str(st, i++, a->tls);
	sqlite3_bind_int64(st, i++, (int64_t)a->duration_ms);
	if (sqlite3_step(st) != SQLITE_DONE)
		*error_r = queue_db_error(db, "queue db: attempt");
	else
		ret = 0;
	sqlite3_finalize(st);
	return ret;
}

int queue_db_attempts(struct queue_db *db, int64_t msg_id, struct queue_attempt **a_r,
		      size_t *count_r, const char **error_r)
{
	sqlite3_stmt *st = NULL;
	struct queue_attempt *a = NULL;
	size_t n = 0, cap = 0;
	int rc;

	*a_r = NULL;
	*count_r = 0;
	if (prepare(db, "SELECT at_ms, code, enhanced, text, host, tls, duration_ms FROM attempt"
		    " WHERE msg_id = ? ORDER BY id", &st, error_r) < 0)
		return -1;
	sqlite3_bind_int64(st, 1, msg_id);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (n == cap) {
			cap = cap == 0 ? 8 : cap * 2;
			a = mf_xrealloc(a, cap * sizeof(*a));
		}
		a[n].at_ms = sqlite3_column_int64(st, 0);
		a[n].code = (unsigned)sqlite3_column_int64(st, 1);
		a[n].enhanced = queue_db_column_str(st, 2);
		a[n].text = queue_db_column_str(st, 3);
		a[n].host = queue_db_column_str(st, 4);
		a[n].tls = queue_db_column_str(st, 5);
		a[n].duration_ms = (uint64_t)sqlite3_column_int64(st, 6);
		n++;
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		*error_r = queue_db_error(db, "queue db: attempts");
		queue_attempts_free(&a, n);
		return -1;
	}
	*a_r = a;
	*count_r = n;
	return 0;
}

void queue_attempts_free(struct queue_attempt **a, size_t count)
{
	if (*a == NULL)
		return;
	for (size_t i = 0; i < count; i++) {
		free((*a)[i].enhanced);
		free((*a)[i].text);
		free((*a)[i].host);
		free((*a)[i].tls);
	}
	free(*a);
	*a = NULL;
}

int queue_db_dsn_add(struct queue_db *db, const char *account, const char *rcpt,
		     const char *blob_key, int64_t now_ms, const char **error_r)
{
	sqlite3_stmt *st = NULL;
	int ret = -1;

	if (prepare(db, "INSERT INTO dsn_pending (account, rcpt, blob_key, created_ms,"
		    " next_try_ms) VALUES (?,?,?,?,?)", &st, error_r) < 0)
		return -1;
	bind_str(st, 1, account);
	bind_str(st, 2, rcpt);
	bind_str(st, 3, blob_key);
	sqlite3_bind_int64(st, 4, now_ms);
	sqlite3_bind_int64(st, 5, now_ms);
	if (sqlite3_step(st) != SQLITE_DONE)
		*error_r = queue_db_error(db, "queue db: dsn");
	else
		ret = 0;
	sqlite3_finalize(st);
	return ret;
}

int queue_db_dsn_due(struct queue_db *db, int64_t now_ms, size_t limit,
		     struct queue_dsn_pending **p_r, size_t *count_r, const char **error_r)
{
	sqlite3_stmt *st = NULL;
	struct queue_dsn_pending *p = NULL;
	size_t n = 0;
	int rc;

	*p_r = NULL;
	*count_r = 0;
	if (prepare(db, "SELECT id, account, blob_key, tries, rcpt FROM dsn_pending"
		    " WHERE next_try_ms <= ? ORDER BY id LIMIT ?", &st, error_r) < 0)
		return -1;
	sqlite3_bind_int64(st, 1, now_ms);
	sqlite3_bind_int64(st, 2, (int64_t)limit);
	p = mf_xcalloc(limit > 0 ? limit : 1, sizeof(*p));
	while ((rc = sqlite3_step(st)) == SQLITE_ROW && n < limit) {
		p[n].id = sqlite3_column_int64(st, 0);
		p[n].account = queue_db_column_str(st, 1);
		p[n].blob_key = queue_db_column_str(st, 2);
		p[n].tries = (unsigned)sqlite3_column_int64(st, 3);
		p[n].rcpt = queue_db_column_str(st, 4);
		n++;
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
		*error_r = queue_db_error(db, "queue db: dsn");
		queue_dsn_pending_free(&p, n);
		return -1;
	}
	*p_r = p;
	*count_r = n;
	return 0;
}

int queue_db_dsn_done(struct queue_db *db, int64_t id, const char **error_r)
{
	return exec_id(db, "DELETE FROM dsn_pending WHERE id = ?", id, error_r);
}

int queue_db_dsn_retry(struct queue_db *db, int64_t id, int64_t next_ms, const char **error_r)
{
	sqlite3_stmt *st = NULL;
	int ret = -1;

	if (prepare(db, "UPDATE dsn_pending SET tries = tries + 1, next_try_ms = ? WHERE id = ?",
		    &st, error_r) < 0)
		return -1;
	sqlite3_bind_int64(st, 1, next_ms);
	sqlite3_bind_int64(st, 2, id);
	if (sqlite3_step(st) != SQLITE_DONE)
		*error_r = queue_db_error(db, "queue db: dsn retry");
	else
		ret = 0;
	sqlite3_finalize(st);
	return ret;
}

void queue_dsn_pending_free(struct queue_dsn_pending **p, size_t count)
{
	if (*p == NULL)
		return;
	for (size_t i = 0; i < count; i++) {
		free((*p)[i].account);
		free((*p)[i].blob_key);
		free((*p)[i].rcpt);
	}
	free(*p);
	*p = NULL;
}
