#include "queue_suppress.h"
#include "queue_db_private.h"
#include "buf.h"
#include "error.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

/* Case folding for the key: local parts are case-sensitive in theory
 * (RFC 5321 2.4) but no real system treats them so, and a list that misses
 * "Bob@" after "bob@" bounced protects nothing. */
static char *fold(const char *address)
{
	char *a = mf_xstrdup(address);

	for (char *p = a; *p != '\0'; p++)
		*p = (char)tolower((unsigned char)*p);
	return a;
}

int queue_suppress_add(struct queue_db *db, const char *account, const char *address,
		       const char *reason, bool manual, int64_t now_ms, const char **error_r)
{
	sqlite3_stmt *st = NULL;
	char *a = fold(address);
	int ret = -1;

	if (sqlite3_prepare_v2(queue_db_sqlite(db), "INSERT OR REPLACE INTO suppression"
			       " (account, address, reason, manual, created_ms) VALUES (?,?,?,?,?)",
			       -1, &st, NULL) != SQLITE_OK) {
		*error_r = queue_db_error(db, "suppression");
		goto out;
	}
	sqlite3_bind_text(st, 1, account, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 2, a, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 3, reason != NULL ? reason : "", -1, SQLITE_TRANSIENT);
	sqlite3_bind_int(st, 4, manual);
	sqlite3_bind_int64(st, 5, now_ms);
	if (sqlite3_step(st) != SQLITE_DONE)
		*error_r = queue_db_error(db, "suppression");
	else
		ret = 0;
out:
	sqlite3_finalize(st);
	free(a);
	return ret;
}

int queue_suppress_remove(struct queue_db *db, const char *account, const char *address,
			  const char **error_r)
{
	sqlite3_stmt *st = NULL;
	char *a = fold(address);
	int ret = -1;

	if (sqlite3_prepare_v2(queue_db_sqlite(db), "DELETE FROM suppression WHERE account = ?"
			       " AND address = ?", -1, &st, NULL) != SQLITE_OK) {
		*error_r = queue_db_error(db, "suppression");
		goto out;
	}
	sqlite3_bind_text(st, 1, account, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 2, a, -1, SQLITE_TRANSIENT);
	if (sqlite3_step(st) != SQLITE_DONE)
		*error_r = queue_db_error(db, "suppression");
	else
		ret = sqlite3_changes(queue_db_sqlite(db)) > 0 ? 1 : 0;
out:
	sqlite3_finalize(st);
	free(a);
	return ret;
}

int queue_suppress_check(struct queue_db *db, const char *account, const char *address,
			 char **reason_r, const char **error_r)
{
	sqlite3_stmt *st = NULL;
	char *a = fold(address);
	int rc, ret = -1;

	if (sqlite3_prepare_v2(queue_db_sqlite(db), "SELECT reason FROM suppression WHERE"
			       " account = ? AND address = ?", -1, &st, NULL) != SQLITE_OK) {
		*error_r = queue_db_error(db, "suppression");
		goto out;
	}
	sqlite3_bind_text(st, 1, account, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 2, a, -1, SQLITE_TRANSIENT);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		if (reason_r != NULL)
			*reason_r = queue_db_column_str(st, 0);
		ret = 1;
	} else if (rc == SQLITE_DONE) {
		ret = 0;
	} else {
		*error_r = queue_db_error(db, "suppression");
	}
out:
	sqlite3_finalize(st);
	free(a);
	return ret;
}

int queue_suppress_list(struct queue_db *db, const char *account,
			struct queue_suppression **list_r, size_t *count_r, const char **error_r)
{
	sqlite3_stmt *st = NULL;
	struct queue_suppression *l = NULL;
	size_t n = 0, cap = 0;
	int rc;

	*list_r = NULL;
	*count_r = 0;
	if (sqlite3_prepare_v2(queue_db_sqlite(db), "SELECT account, address, reason, manual,"
			       " created_ms FROM suppression WHERE ?1 = '' OR account = ?1"
			       " ORDER BY account, address LIMIT ?2", -1, &st, NULL) != SQLITE_OK) {
		*error_r = queue_db_error(db, "suppression");
		return -1;
	}
	sqlite3_bind_text(st, 1, account != NULL ? account : "", -1, SQLITE_TRANSIENT);
	sqlite3_bind_int(st, 2, QUEUE_SUPPRESS_LIST_MAX);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (n == cap) {
			cap = cap == 0 ? 16 : cap * 2;
			l = mf_xrealloc(l, cap * sizeof(*l));
		}
		l[n].account = queue_db_column_str(st, 0);
		l[n].address = queue_db_column_str(st, 1);
		l[n].reason = queue_db_column_str(st, 2);
		l[n].manual = sqlite3_column_int(st, 3) != 0;
		l[n].created_ms = sqlite3_column_int64(st, 4);
		n++;
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		*error_r = queue_db_error(db, "suppression");
		queue_suppress_list_free(&l, n);
		return -1;
	}
	*list_r = l;
	*count_r = n;
	return 0;
}

void queue_suppress_list_free(struct queue_suppression **list, size_t count)
{
	if (*list == NULL)
		return;
	for (size_t i = 0; i < count; i++) {
		free((*list)[i].account);
		free((*list)[i].address);
		free((*list)[i].reason);
	}
	free(*list);
	*list = NULL;
}
