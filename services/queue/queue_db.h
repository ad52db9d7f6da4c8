/* queue_db: the outgoing queue's SQLite database, <data-dir>/queue/queue.db.
 *
 * One row per recipient ("message" in the admin API), grouped by a base id
 * so that the recipients of one submission at one domain can go out in one
 * SMTP transaction; the blob is stored once under queue/.  Also: every
 * attempt's result, retired history, hold rules, suppression lists and DSNs
 * waiting to be delivered to their sender.  The schema is versioned
 * (PRAGMA user_version) and migrated forward at open.
 *
 * One connection guarded by one mutex: callers take queue_db_lock around
 * a transaction (queue_db_begin .. queue_db_commit / _rollback) and every
 * queue_db_* call in between; the functions do not lock themselves. */
#ifndef QUEUE_DB_H
#define QUEUE_DB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct queue_db;

/* One queued recipient.  Strings are owned by the row. */
struct queue_row {
	int64_t id;
	int64_t base_id;
	char *account;
	char *mail_from;
	char *from_domain;
	char *rcpt;
	char *rcpt_domain;
	uint32_t dsn_notify;
	char *dsn_orcpt;
	char *dsn_envid;
	char *dsn_ret;
	char *blob_key;
	uint64_t size;
	char *message_id;
	char *cid;
	char *transport;
	int64_t queued_ms;
	int64_t next_attempt_ms;
	unsigned attempts;
	unsigned max_attempts;
	bool held;
	bool requiretls;
	bool smtputf8;
	bool has_8bit;
	uint64_t lease;
	int64_t lease_until_ms;
	/* The last attempt's result. */
	unsigned last_code;
	char *last_enhanced;
	char *last_text;
	char *last_host;
	int64_t last_attempt_ms;
};

/* A selection of rows (the admin filters).  Zero/NULL fields match all. */
struct queue_filter {
	const int64_t *ids;      /* row ids or base ids */
	size_t nids;
	const char *account;
	const char *from_domain;
	const char *to_domain;
	int held;                /* -1 any, 0 not held, 1 held */
	int64_t next_before_ms;  /* 0: no bound */
	int64_t next_after_ms;
	const char *transport;   /* NULL: any; "" default */
	/* Internal use by dispatch: due and not leased at this time. */
	int64_t due_at_ms;
};

struct queue_attempt {
	int64_t at_ms;
	unsigned code;
	char *enhanced;
	char *text;
	char *host;
	char *tls;
	uint64_t duration_ms;
};

int queue_db_open(const char *path, struct queue_db **db_r, const char **error_r);
void queue_db_close(struct queue_db **db);

void queue_db_lock(struct queue_db *db);
void queue_db_unlock(struct queue_db *db);
int queue_db_begin(struct queue_db *db, const char **error_r);
int queue_db_commit(struct queue_db *db, const char **error_r);
/* A savepoint within the transaction: one part of a group commit that can
 * be undone alone (queue_db_savepoint_rollback), or kept (_release). */
int queue_db_savepoint(struct queue_db *db, const char **error_r);
int queue_db_savepoint_release(struct queue_db *db, const char **error_r);
void queue_db_savepoint_rollback(struct queue_db *db);
void queue_db_rollback(struct queue_db *db);

/* Inserts row (id ignored; base_id 0 takes the new row's id as base id) and
 * sets row->id and row->base_id.  Returns 0 or -1. */
int queue_db_insert(struct queue_db *db, struct queue_row *row, const char **error_r);

/* Selects rows matching filter with id > after_id, in id order, at most
 * limit (0: no limit).  Returns 0 with a new array in *rows_r (free with
 * queue_rows_free) and its length, or -1. */
int queue_db_select(struct queue_db *db, const struct queue_filter *filter, int64_t after_id,
		    size_t limit, struct queue_row **rows_r, size_t *count_r,
		    const char **error_r);
/* Loads one row; returns 1, 0 when missing, -1. */
int queue_db_get(struct queue_db *db, int64_t id, struct queue_row *row_r,
		 const char **error_r);
void queue_row_clear(struct queue_row *row);
void queue_rows_free(struct queue_row **rows, size_t count);

/* Writes back the mutable fields of row (next attempt, attempts, held,
 * transport, requiretls, lease, last result).  Returns 0 or -1. */
int queue_db_update(struct queue_db *db, const struct queue_row *row, const char **error_r);
/* Deletes the row.  Returns 0 or -1. */
int queue_db_delete(struct queue_db *db, int64_t id, const char **error_r);
/* Returns the number of rows still referring to blob_key, or -1. */
int64_t queue_db_blob_refs(struct queue_db *db, const char *blob_key, const char **error_r);
/* Stores the "extra" key/value data of a base id (carried to webhooks). */
int queue_db_extra_add(struct queue_db *db, int64_t base_id, const char *key, const char *value,
		       const char **error_r);
/* Returns 1 when a queued row or a pending DSN refers to blob_key, 0 when
 * none does, -1 on error. */
int queue_db_blob_used(struct queue_db *db, const char *blob_key, const char **error_r);
/* Rows in the queue (takes the lock itself; for metrics), or -1. */
int64_t queue_db_count(struct queue_db *db);
/* The earliest next attempt of a row that is not held, or INT64_MAX. */
int64_t queue_db_next_due(struct queue_db *db);

int queue_db_attempt_add(struct queue_db *db, int64_t msg_id, const struct queue_attempt *a,
			 const char **error_r);
/* Attempts of msg_id, oldest first.  Free with queue_attempts_free. */
int queue_db_attempts(struct queue_db *db, int64_t msg_id, struct queue_attempt **a_r,
		      size_t *count_r, const char **error_r);
void queue_attempts_free(struct queue_attempt **a, size_t count);

/* DSNs (their blobs already written under queue/dsn/) waiting for the
 * store to take them. */
struct queue_dsn_pending {
	int64_t id;
	char *account;
	char *rcpt;          /* the sender, who gets the DSN */
	char *blob_key;
	unsigned tries;
};
int queue_db_dsn_add(struct queue_db *db, const char *account, const char *rcpt,
		     const char *blob_key, int64_t now_ms, const char **error_r);
/* Due ones (at most limit).  Free with queue_dsn_pending_free. */
int queue_db_dsn_due(struct queue_db *db, int64_t now_ms, size_t limit,
		     struct queue_dsn_pending **p_r, size_t *count_r, const char **error_r);
int queue_db_dsn_done(struct queue_db *db, int64_t id, const char **error_r);
int queue_db_dsn_retry(struct queue_db *db, int64_t id, int64_t next_ms, const char **error_r);
void queue_dsn_pending_free(struct queue_dsn_pending **p, size_t count);

/* The domain part of an address, lower-cased ("" for none); caller frees. */
char *queue_address_domain(const char *address);

#endif
