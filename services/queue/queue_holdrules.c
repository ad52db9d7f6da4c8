#include "queue_holdrules.h"
#include "queue_db_private.h"
#include "buf.h"
#include "error.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

static bool field_matches(const char *want, const char *have)
{
	return want == NULL || *want == '\0' || (have != NULL && strcasecmp(want, have) == 0);
}

bool queue_holdrule_matches(const struct queue_holdrule *rule, const char *account,
			    const char *from_domain, const char *to_domain)
{
	return field_matches(rule->account, account) &&
	       field_matches(rule->from_domain, from_domain) &&
	       field_matches(rule->to_domain, to_domain);
}

int queue_holdrules_list(struct queue_db *db, struct queue_holdrule **rules_r,
			 size_t *count_r, const char **error_r)
{
	sqlite3 *sql = queue_db_sqlite(db);
	sqlite3_stmt *st = NULL;
	struct queue_holdrule *rules = NULL;
	size_t n = 0, cap = 0;
	int rc;

	*rules_r = NULL;
	*count_r = 0;
	if (sqlite3_prepare_v2(sql, "SELECT id, account, from_domain, to_domain FROM holdrule"
			       " ORDER BY id", -1, &st, NULL) != SQLITE_OK) {
		*error_r = queue_db_error(db, "holdrules");
		return -1;
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (n == cap) {
			cap = cap == 0 ? 8 : cap * 2;
			rules = mf_xrealloc(rules, cap * sizeof(*rules));
		}
		rules[n].id = sqlite3_column_int64(st, 0);
		rules[n].account = queue_db_column_str(st, 1);
		rules[n].from_domain = queue_db_column_str(st, 2);
		rules[n].to_domain = queue_db_column_str(st, 3);
		n++;
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		*error_r = queue_db_error(db, "holdrules");
		queue_holdrules_free(&rules, n);
		return -1;
	}
	*rules_r = rules;
	*count_r = n;
	return 0;
}

void queue_holdrules_free(struct queue_holdrule **rules, size_t count)
{
	if (*rules == NULL)
		return;
	for (size_t i = 0; i < count; i++) {
		free((*rules)[i].account);
		free((*rules)[i].from_domain);
		free((*rules)[i].to_domain);
	}
	free(*rules);
	*rules = NULL;
}

int queue_holdrules_add(struct queue_db *db, struct queue_holdrule *rule, unsigned *held_r,
			const char **error_r)
{
	sqlite3 *sql = queue_db_sqlite(db);
	sqlite3_stmt *st = NULL;
	struct queue_holdrule *rules = NULL;
	size_t n = 0;
	int ret = -1;

	*held_r = 0;
	if (queue_holdrules_list(db, &rules, &n, error_r) < 0)
		return -1;
	queue_holdrules_free(&rules, n);
	if (n >= QUEUE_HOLDRULES_MAX) {
		*error_r = mf_errorf("too many hold rules (max %d)", QUEUE_HOLDRULES_MAX);
		return -1;
	}
	if (sqlite3_prepare_v2(sql, "INSERT INTO holdrule (account, from_domain, to_domain)"
			       " VALUES (?,?,?)", -1, &st, NULL) != SQLITE_OK)
		goto sqlerr;
	sqlite3_bind_text(st, 1, rule->account, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 2, rule->from_domain, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 3, rule->to_domain, -1, SQLITE_TRANSIENT);
	if (sqlite3_step(st) != SQLITE_DONE)
		goto sqlerr;
	rule->id = sqlite3_last_insert_rowid(sql);
	sqlite3_finalize(st);
	/* Existing messages: domains are stored lower-case. */
	if (sqlite3_prepare_v2(sql, "UPDATE msg SET held = 1 WHERE held = 0"
			       " AND (?1 = '' OR account = ?1) AND (?2 = '' OR from_domain = lower(?2))"
			       " AND (?3 = '' OR rcpt_domain = lower(?3))", -1, &st, NULL) != SQLITE_OK)
		goto sqlerr;
	sqlite3_bind_text(st, 1, rule->account, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 2, rule->from_domain, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 3, rule->to_domain, -1, SQLITE_TRANSIENT);
	if (sqlite3_step(st) != SQLITE_DONE)
		goto sqlerr;
	*held_r = (unsigned)sqlite3_changes(sql);
	ret = 0;
	goto out;
sqlerr:
	*error_r = queue_db_error(db, "holdrules");
out:
	sqlite3_finalize(st);
	return ret;
}

int queue_holdrules_remove(struct queue_db *db, int64_t id, const char **error_r)
{
	sqlite3 *sql = queue_db_sqlite(db);
	sqlite3_stmt *st = NULL;
	int ret = -1;

	if (sqlite3_prepare_v2(sql, "DELETE FROM holdrule WHERE id = ?", -1, &st, NULL) != SQLITE_OK) {
		*error_r = queue_db_error(db, "holdrules");
		return -1;
	}
	sqlite3_bind_int64(st, 1, id);
	if (sqlite3_step(st) != SQLITE_DONE)
		*error_r = queue_db_error(db, "holdrules");
	else
		ret = sqlite3_changes(sql) > 0 ? 1 : 0;
	sqlite3_finalize(st);
	return ret;
}

int queue_holdrules_check(struct queue_db *db, const char *account, const char *from_domain,
			  const char *to_domain, const char **error_r)
{
	struct queue_holdrule *rules = NULL;
	size_t n = 0;
	int match = 0;

	if (queue_holdrules_list(db, &rules, &n, error_r) < 0)
		return -1;
	for (size_t i = 0; i < n && !match; i++)
		match = queue_holdrule_matches(&rules[i], account, from_domain, to_domain);
	queue_holdrules_free(&rules, n);
	return match;
}
