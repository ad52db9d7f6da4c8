/* store_private: what the store_*.c files share; not for other modules. */
#ifndef STORE_PRIVATE_H
#define STORE_PRIVATE_H

#include <pthread.h>
#include <sqlite3.h>

#include "store.h"

#define STORE_SCHEMA_VERSION 1
/* How long a statement waits for SQLite's own locks (checkpoints, the CLI
 * reading) before the operation fails with a temporary error. */
#define STORE_BUSY_TIMEOUT_MS 5000

struct store_subscription {
	struct store_account *acc;
	store_change_fn *fn;
	void *ctx;
	struct store_subscription *next;
};

struct store_account {
	struct store *store;
	char *name;
	char *dir;                 /* <data_dir>/accounts/<name> */
	unsigned refs;             /* under store->lock */
	pthread_mutex_t lock;      /* serialises every use of db */
	sqlite3 *db;               /* NULL once removed */
	bool removed;
	pthread_mutex_t sub_lock;  /* the subscriber list */
	struct store_subscription *subs;
	struct store_account *next;  /* the store's cache */
};

struct store {
	char *data_dir;
	char *accounts_dir;
	char *config_dir;
	char *domains_file;
	struct mf_blob_store *blobs;
	struct mf_bus *bus;
	pthread_mutex_t lock;      /* the cache and account creation/removal */
	struct store_account *accounts;
	void *api;                 /* store_api.c state */
};

/* Records the error kind for store_last_error_kind and returns -1. */
int store_fail(enum store_error_kind kind, const char **error_r, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* The same with error_r already set by a callee. */
int store_fail_kind(enum store_error_kind kind);
void store_error_clear(void);
/* An SQLite failure: temporary, naming what was being done. */
int store_db_fail(struct store_account *acc, const char *what, const char **error_r);

/* Transactions on acc->db (the caller holds acc->lock). */
int store_tx_begin(struct store_account *acc, const char **error_r);
int store_tx_commit(struct store_account *acc, const char **error_r);
void store_tx_rollback(struct store_account *acc);
/* Takes acc->lock and checks the account is usable; returns 0, or -1
 * (unlocked) with STORE_ERR_REMOVED. */
int store_lock(struct store_account *acc, const char **error_r);
void store_unlock(struct store_account *acc);
/* Runs sql without results.  Returns 0 or -1. */
int store_exec(struct store_account *acc, const char *sql, const char **error_r);
/* Prepares sql; -1 on failure. */
int store_prepare(struct store_account *acc, const char *sql, sqlite3_stmt **stmt_r,
		  const char **error_r);
/* Takes the account's next modseq (inside a transaction). */
int store_next_modseq(struct store_account *acc, uint64_t *modseq_r, const char **error_r);

/* Mailbox row into mb (columns as STORE_MAILBOX_COLUMNS). */
#define STORE_MAILBOX_COLUMNS "id, name, parent, special_use, subscribed, uidvalidity, " \
	"uidnext, highestmodseq, messages, unseen, deleted, size"
void store_mailbox_from_row(sqlite3_stmt *stmt, struct store_mailbox *mb);
int store_mailbox_get_locked(struct store_account *acc, int64_t id, struct store_mailbox *mb_r,
			     const char **error_r);
/* Applies a message's contribution to its mailbox's counts: sign +1 when
 * added, -1 when removed. */
int store_mailbox_count(struct store_account *acc, int64_t mailbox_id, int sign, uint32_t flags,
			uint64_t size, const char **error_r);
/* Raises the mailbox's highestmodseq to modseq. */
int store_mailbox_touch(struct store_account *acc, int64_t mailbox_id, uint64_t modseq,
			const char **error_r);
/* The INBOX-aware canonical name: checks the name rules, folds "inbox" to
 * "INBOX", drops one trailing '/'.  Returns a new string or NULL with
 * STORE_ERR_INVALID. */
char *store_mailbox_name_canon(const char *name, const char **error_r);
/* Looks up (creating it when create) a mailbox by name inside the caller's
 * transaction. Returns 1/0/-1. */
int store_mailbox_lookup_locked(struct store_account *acc, const char *name, bool create,
				struct store_mailbox *mb_r, const char **error_r);
/* store_mailbox_find_special inside the caller's lock.  Returns 1/0/-1. */
int store_mailbox_find_special_locked(struct store_account *acc, uint32_t special_use,
				      struct store_mailbox *mb_r, const char **error_r);

/* Keywords: validates and normalises a space-separated list (dedup,
 * case-insensitive, sorted).  Returns a new string ("" for none) or NULL
 * with STORE_ERR_INVALID. */
char *store_keywords_normalise(const char *keywords, const char **error_r);

/* Message-ID and Subject from a message's header (bounded scan). */
void store_scan_headers(const char *data, size_t len, char **message_id_r, char **subject_r);

/* A fresh random blob key under the account. Caller frees. */
char *store_blob_key_new(struct store_account *acc);

/* Inserts a message row and updates counts (inside the caller's
 * transaction).  Returns 0 with the uid, or -1. */
struct store_new_message {
	int64_t mailbox_id;
	uint32_t flags;
	const char *keywords;   /* normalised */
	int64_t internal_date;
	uint64_t size;
	const char *blob_key;
	const void *prefix;
	size_t prefix_len;
	const char *message_id;
	const char *subject;
	const char *envelope;
	const char *bodystructure;
};
int store_message_insert(struct store_account *acc, const struct store_new_message *m,
			 uint64_t modseq, uint32_t *uid_r, const char **error_r);
/* Quota check for adding bytes (caller holds the lock). */
int store_quota_check(struct store_account *acc, uint64_t adding, const char **error_r);
uint64_t store_quota_limit(struct store_account *acc);

/* Whether any cached account still has references. */
bool store_accounts_referenced(struct store *store);

/* Calls subscribers and publishes on store.v1.changes.<account>. */
void store_notify(struct store_account *acc, const struct store_change *change);

/* Deletes blobs that expunged-history rows still reference (no reader can
 * need them: called without references).  Caller holds acc->lock. */
void store_purge_expunged_blobs(struct store_account *acc);

#endif
