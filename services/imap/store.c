/* store: accounts (create, open, cache, remove), schema and migrations,
 * crash recovery, credentials, quota, consistency check and change
 * notification.  See store.h for the model. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "address.h"
#include "blob.h"
#include "buf.h"
#include "bus.h"
#include "domains.h"
#include "error.h"
#include "fsutil.h"
#include "log.h"
#include "password.h"
#include "precis.h"
#include "sasl.h"
#include "store.pb-c.h"
#include "store_private.h"

#define STORE_PASSWORDS_INIT "passwords.init"
#define STORE_PASSWORDS_INIT_MAX (1024 * 1024)
#define STORE_REMOVING_MARKER "REMOVING"

static __thread enum store_error_kind last_kind;

enum store_error_kind store_last_error_kind(void)
{
	return last_kind;
}

void store_error_clear(void)
{
	last_kind = STORE_ERR_NONE;
}

int store_fail_kind(enum store_error_kind kind)
{
	last_kind = kind;
	return -1;
}

int store_fail(enum store_error_kind kind, const char **error_r, const char *fmt, ...)
{
	char buf[MF_ERROR_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	*error_r = mf_errorf("%s", buf);
	last_kind = kind;
	return -1;
}

int store_db_fail(struct store_account *acc, const char *what, const char **error_r)
{
	return store_fail(STORE_ERR_TEMPORARY, error_r, "account %s: %s: %s", acc->name, what,
			  acc->db != NULL ? sqlite3_errmsg(acc->db) : "database closed");
}

int store_exec(struct store_account *acc, const char *sql, const char **error_r)
{
	char *msg = NULL;

	if (sqlite3_exec(acc->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		store_fail(STORE_ERR_TEMPORARY, error_r, "account %s: %s", acc->name,
			   msg != NULL ? msg : "sqlite error");
		sqlite3_free(msg);
		return -1;
	}
	return 0;
}

int store_prepare(struct store_account *acc, const char *sql, sqlite3_stmt **stmt_r,
		  const char **error_r)
{
	if (sqlite3_prepare_v2(acc->db, sql, -1, stmt_r, NULL) != SQLITE_OK) {
		*stmt_r = NULL;
		return store_db_fail(acc, "prepare", error_r);
	}
	return 0;
}

int store_tx_begin(struct store_account *acc, const char **error_r)
{
	/* IMMEDIATE: take the write lock now, so that a reader in another
	 * connection (none in normal operation) cannot make the commit fail. */
	return store_exec(acc, "BEGIN IMMEDIATE", error_r);
}

int store_tx_commit(struct store_account *acc, const char **error_r)
{
	if (store_exec(acc, "COMMIT", error_r) < 0) {
		store_tx_rollback(acc);
		return -1;
	}
	return 0;
}

void store_tx_rollback(struct store_account *acc)
{
	if (acc->db != NULL && !sqlite3_get_autocommit(acc->db))
		sqlite3_exec(acc->db, "ROLLBACK", NULL, NULL, NULL);
}

int store_lock(struct store_account *acc, const char **error_r)
{
	store_error_clear();
	pthread_mutex_lock(&acc->lock);
	if (acc->removed || acc->db == NULL) {
		pthread_mutex_unlock(&acc->lock);
		return store_fail(STORE_ERR_REMOVED, error_r, "account %s has been removed",
				  acc->name);
	}
	return 0;
}

void store_unlock(struct store_account *acc)
{
	pthread_mutex_unlock(&acc->lock);
}

int store_next_modseq(struct store_account *acc, uint64_t *modseq_r, const char **error_r)
{
	sqlite3_stmt *stmt = NULL;
	int ret = -1;

	if (store_exec(acc, "UPDATE counters SET modseq = modseq + 1", error_r) < 0 ||
	    store_prepare(acc, "SELECT modseq FROM counters", &stmt, error_r) < 0)
		goto out;
	if (sqlite3_step(stmt) != SQLITE_ROW) {
		store_db_fail(acc, "modseq", error_r);
		goto out;
	}
	*modseq_r = (uint64_t)sqlite3_column_int64(stmt, 0);
	ret = 0;
out:
	sqlite3_finalize(stmt);
	return ret;
}

char *store_blob_key_new(struct store_account *acc)
{
	uint8_t rnd[12];
	char hex[sizeof(rnd) * 2 + 1];

	if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
		mf_fatal("getrandom failed: %s", strerror(errno));
	for (size_t i = 0; i < sizeof(rnd); i++)
		snprintf(hex + 2 * i, 3, "%02x", rnd[i]);
	/* The first byte spreads messages over 256 directories. */
	return mf_xasprintf("accounts/%s/m/%.2s/%s", acc->name, hex, hex + 2);
}

/* --- schema ----------------------------------------------------------- */

/* Migrations: entry i brings the schema from version i to i + 1.  Never
 * edit a released entry; append a new one. */
static const char *const migrations[] = {
	/* 0 -> 1 */
	"CREATE TABLE schema_version (version INTEGER NOT NULL);"
	"INSERT INTO schema_version VALUES (0);"
	/* Per-account counters: modseq (RFC 7162) and the next UIDVALIDITY, so a
	 * mailbox re-created under an old name never reuses one. */
	"CREATE TABLE counters (modseq INTEGER NOT NULL, uidvalidity_next INTEGER NOT NULL,"
	"  removal_pending INTEGER NOT NULL DEFAULT 0, created_ms INTEGER NOT NULL);"
	"CREATE TABLE mailboxes ("
	"  id INTEGER PRIMARY KEY,"
	"  name TEXT NOT NULL UNIQUE,"
	"  parent INTEGER REFERENCES mailboxes(id),"
	"  special_use INTEGER NOT NULL DEFAULT 0,"
	"  subscribed INTEGER NOT NULL DEFAULT 0,"
	"  uidvalidity INTEGER NOT NULL,"
	"  uidnext INTEGER NOT NULL DEFAULT 1,"
	"  highestmodseq INTEGER NOT NULL DEFAULT 0,"
	"  messages INTEGER NOT NULL DEFAULT 0,"
	"  unseen INTEGER NOT NULL DEFAULT 0,"
	"  deleted INTEGER NOT NULL DEFAULT 0,"
	"  size INTEGER NOT NULL DEFAULT 0);"
	"CREATE TABLE messages ("
	"  id INTEGER PRIMARY KEY,"
	"  mailbox INTEGER NOT NULL REFERENCES mailboxes(id),"
	"  uid INTEGER NOT NULL,"
	"  modseq INTEGER NOT NULL,"
	"  createseq INTEGER NOT NULL,"
	"  flags INTEGER NOT NULL DEFAULT 0,"
	"  keywords TEXT,"
	"  internal_date INTEGER NOT NULL,"
	"  save_date INTEGER NOT NULL,"
	"  size INTEGER NOT NULL,"
	"  blob_key TEXT NOT NULL UNIQUE,"
	"  prefix BLOB,"
	"  message_id TEXT,"
	"  subject TEXT,"
	"  envelope TEXT,"
	"  bodystructure TEXT,"
	"  UNIQUE (mailbox, uid));"
	"CREATE INDEX messages_modseq ON messages (mailbox, modseq);"
	"CREATE INDEX messages_message_id ON messages (message_id);"
	/* Expunge history for QRESYNC; blob_key/prefix/size stay until the blob
	 * is deleted so sessions not yet told can still fetch. */
	"CREATE TABLE expunged ("
	"  mailbox INTEGER NOT NULL,"
	"  uid INTEGER NOT NULL,"
	"  modseq INTEGER NOT NULL,"
	"  blob_key TEXT,"
	"  prefix BLOB,"
	"  size INTEGER,"
	"  internal_date INTEGER,"
	"  PRIMARY KEY (mailbox, uid));"
	"CREATE INDEX expunged_modseq ON expunged (mailbox, modseq);"
	"CREATE INDEX expunged_blob ON expunged (blob_key) WHERE blob_key IS NOT NULL;"
	/* One row.  SCRAM columns hold "salt iterations stored-key server-key"
	 * (RFC 5802), cram_md5 the HMAC-MD5 pads; filled by the auth work. */
	"CREATE TABLE credentials ("
	"  id INTEGER PRIMARY KEY CHECK (id = 1),"
	"  password_hash TEXT,"
	"  scram_sha1 TEXT,"
	"  scram_sha256 TEXT,"
	"  cram_md5 BLOB,"
	"  updated_ms INTEGER NOT NULL);"
	"CREATE TABLE tls_public_keys ("
	"  fingerprint TEXT PRIMARY KEY,"
	"  name TEXT NOT NULL,"
	"  public_key BLOB NOT NULL,"
	"  login_address TEXT NOT NULL,"
	"  no_imap_preauth INTEGER NOT NULL DEFAULT 0,"
	"  created_ms INTEGER NOT NULL);"
	/* RFC 5464 METADATA; mailbox 0 is the server/account entry. */
	"CREATE TABLE annotations ("
	"  mailbox INTEGER NOT NULL,"
	"  entry TEXT NOT NULL,"
	"  shared INTEGER NOT NULL,"
	"  value BLOB,"
	"  modseq INTEGER NOT NULL DEFAULT 0,"
	"  PRIMARY KEY (mailbox, entry, shared));",
	/* 1 -> 2: login attempts and credential options (store_credentials.c).
	 * A login attempt row groups repeats: same details, count + 1. */
	"CREATE TABLE login_attempts ("
	"  id INTEGER PRIMARY KEY,"
	"  grouping TEXT NOT NULL UNIQUE,"
	"  first_ms INTEGER NOT NULL,"
	"  last_ms INTEGER NOT NULL,"
	"  count INTEGER NOT NULL,"
	"  protocol TEXT NOT NULL, mechanism TEXT NOT NULL, login TEXT NOT NULL,"
	"  remote_ip TEXT NOT NULL, local_ip TEXT NOT NULL, tls TEXT NOT NULL,"
	"  tls_pubkey TEXT NOT NULL, client_id TEXT NOT NULL, result TEXT NOT NULL);"
	"CREATE INDEX login_attempts_last ON login_attempts (last_ms);"
	"ALTER TABLE credentials ADD COLUMN cram_md5_allowed INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE credentials ADD COLUMN generated_only INTEGER NOT NULL DEFAULT 0;",
};

struct std_mailbox {
	const char *name;
	uint32_t special_use;
};

/* New accounts (RFC 6154 special-use; Rejects is for the junk filter). */
static const struct std_mailbox std_mailboxes[] = {
	{ "INBOX", 0 },
	{ "Sent", STORE_SPECIAL_SENT },
	{ "Drafts", STORE_SPECIAL_DRAFTS },
	{ "Archive", STORE_SPECIAL_ARCHIVE },
	{ "Trash", STORE_SPECIAL_TRASH },
	{ "Junk", STORE_SPECIAL_JUNK },
	{ "Rejects", 0 },
};

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int schema_version(struct store_account *acc, int *version_r, const char **error_r)
{
	sqlite3_stmt *stmt = NULL;
	int ret = -1;

	if (sqlite3_prepare_v2(acc->db, "SELECT version FROM schema_version", -1, &stmt,
			       NULL) != SQLITE_OK) {
		/* No table yet: a new database. */
		*version_r = 0;
		return 0;
	}
	if (sqlite3_step(stmt) != SQLITE_ROW) {
		store_db_fail(acc, "schema version", error_r);
		goto out;
	}
	*version_r = sqlite3_column_int(stmt, 0);
	ret = 0;
out:
	sqlite3_finalize(stmt);
	return ret;
}

/* Brings the schema up to date, each step in its own transaction; a new
 * database also gets its counters and standard mailboxes in the first. */
static int migrate(struct store_account *acc, const char **error_r)
{
	const int latest = (int)(sizeof(migrations) / sizeof(migrations[0]));
	int version;

	for (;;) {
		if (store_tx_begin(acc, error_r) < 0)
			return -1;
		if (schema_version(acc, &version, error_r) < 0)
			goto fail;
		if (version > latest) {
			store_fail(STORE_ERR_TEMPORARY, error_r,
				   "account %s: database schema version %d is newer than "
				   "this program's %d", acc->name, version, latest);
			goto fail;
		}
		if (version == latest) {
			store_tx_rollback(acc);
			return 0;
		}
		if (store_exec(acc, migrations[version], error_r) < 0)
			goto fail;
		if (version == 0) {
			/* UIDVALIDITY starts at the creation time (RFC 9051 2.3.1.1
			 * suggests it): an account removed and created again under
			 * the same name never repeats a (name, UIDVALIDITY) pair a
			 * client may have cached. */
			uint32_t first = (uint32_t)(now_ms() / 1000);
			char *sql;
			int r;

			if (first > UINT32_MAX - 100000000u)
				first = 1;
			sql = mf_xasprintf("INSERT INTO counters (modseq, uidvalidity_next, "
					   "created_ms) VALUES (0, %" PRIu64 ", %" PRId64 ")",
					   (uint64_t)first + sizeof(std_mailboxes) /
					   sizeof(std_mailboxes[0]), now_ms());
			r = store_exec(acc, sql, error_r);
			free(sql);
			if (r < 0)
				goto fail;
			for (size_t i = 0; i < sizeof(std_mailboxes) / sizeof(std_mailboxes[0]); i++) {
				sql = mf_xasprintf("INSERT INTO mailboxes (name, special_use, subscribed, "
						   "uidvalidity) VALUES ('%s', %u, 1, %" PRIu64 ")",
						   std_mailboxes[i].name, std_mailboxes[i].special_use,
						   (uint64_t)first + i);
				r = store_exec(acc, sql, error_r);
				free(sql);
				if (r < 0)
					goto fail;
			}
		}
		{
			char *sql = mf_xasprintf("UPDATE schema_version SET version = %d", version + 1);
			int r = store_exec(acc, sql, error_r);

			free(sql);
			if (r < 0 || store_tx_commit(acc, error_r) < 0)
				goto fail;
		}
	}
fail:
	store_tx_rollback(acc);
	return -1;
}

/* --- paths ------------------------------------------------------------- */

static int check_name(const char *name, const char **error_r)
{
	size_t n = strlen(name);

	/* As domains.conf allows (domains.c check_account_name): the name is a
	 * directory, a blob key segment and a NATS subject token. */
	if (n == 0 || n > MF_DOMAINS_ACCOUNT_NAME_MAX || name[0] == '-')
		goto bad;
	for (size_t i = 0; i < n; i++) {
		char c = name[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '-' || c == '_'))
			goto bad;
	}
	return 0;
bad:
	return store_fail(STORE_ERR_INVALID, error_r, "bad account name \"%.*s\"",
			  (int)(n > 80 ? 80 : n), name);
}

static char *account_dir(struct store *store, const char *name)
{
	return mf_xasprintf("%s/%s", store->accounts_dir, name);
}

static bool file_exists(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0;
}

static bool removal_marked(struct store *store, const char *name)
{
	char *path = mf_xasprintf("%s/%s/%s", store->accounts_dir, name, STORE_REMOVING_MARKER);
	bool r = file_exists(path);

	free(path);
	return r;
}

static bool db_exists(struct store *store, const char *name)
{
	char *path = mf_xasprintf("%s/%s/index.db", store->accounts_dir, name);
	bool r = file_exists(path);

	free(path);
	return r;
}

/* --- removal ------------------------------------------------------------ */

struct key_list {
	char **keys;
	size_t count, cap;
};

static int collect_key(const char *key, void *context)
{
	struct key_list *l = context;

	if (l->count == l->cap) {
		l->cap = l->cap == 0 ? 64 : l->cap * 2;
		l->keys = mf_xrealloc(l->keys, l->cap * sizeof(*l->keys));
	}
	l->keys[l->count++] = mf_xstrdup(key);
	return 0;
}

static void key_list_free(struct key_list *l)
{
	for (size_t i = 0; i < l->count; i++)
		free(l->keys[i]);
	free(l->keys);
	l->keys = NULL;
	l->count = l->cap = 0;
}

/* Deletes the blobs and files of an account whose removal is marked.  The
 * marker goes last so an interrupted removal is resumed by store_create. */
static int removal_complete(struct store *store, const char *name, const char **error_r)
{
	static const char *const files[] = { "index.db-wal", "index.db-shm", "index.db" };
	struct key_list keys = { 0 };
	char *prefix = mf_xasprintf("accounts/%s", name);
	char *dir = account_dir(store, name);
	char *path = NULL;
	int ret = -1;

	if (mf_blob_list(store->blobs, prefix, collect_key, &keys, error_r) < 0)
		goto out;
	for (size_t i = 0; i < keys.count; i++)
		if (mf_blob_delete(store->blobs, keys.keys[i], error_r) < 0)
			goto out;
	/* Empty directories (and temporary files) left under the prefix. */
	if (mf_blob_sweep_temp(store->blobs, prefix, 0, NULL, error_r) < 0)
		goto out;
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		free(path);
		path = mf_xasprintf("%s/%s", dir, files[i]);
		if (unlink(path) < 0 && errno != ENOENT) {
			*error_r = mf_errorf("remove %s: %s", path, strerror(errno));
			goto out;
		}
	}
	free(path);
	path = mf_xasprintf("%s/%s", dir, STORE_REMOVING_MARKER);
	if (unlink(path) < 0 && errno != ENOENT) {
		*error_r = mf_errorf("remove %s: %s", path, strerror(errno));
		goto out;
	}
	if (rmdir(dir) < 0 && errno != ENOENT) {
		*error_r = mf_errorf("remove %s: %s", dir, strerror(errno));
		goto out;
	}
	if (mf_fs_fsync_parent(dir, error_r) < 0)
		goto out;
	mf_log_info("store", NULL, "account store removed", "account=%s", name);
	ret = 0;
out:
	if (ret < 0)
		store_fail_kind(STORE_ERR_TEMPORARY);
	key_list_free(&keys);
	free(prefix);
	free(dir);
	free(path);
	return ret;
}

static int complete_pending_removals(struct store *store, const char **error_r)
{
	DIR *d = opendir(store->accounts_dir);
	struct dirent *de;
	int ret = 0;

	if (d == NULL)
		return store_fail(STORE_ERR_TEMPORARY, error_r, "open %s: %s", store->accounts_dir,
				  strerror(errno));
	while ((de = readdir(d)) != NULL) {
		const char *err;

		if (de->d_name[0] == '.' || check_name(de->d_name, &err) < 0)
			continue;
		if (!removal_marked(store, de->d_name))
			continue;
		mf_log_info("store", NULL, "completing interrupted account removal",
			    "account=%s", de->d_name);
		if (removal_complete(store, de->d_name, &err) < 0) {
			*error_r = mf_errorf("account %s: completing removal: %s", de->d_name, err);
			ret = -1;
		}
	}
	closedir(d);
	store_error_clear();
	if (ret < 0)
		store_fail_kind(STORE_ERR_TEMPORARY);
	return ret;
}

/* --- the store ----------------------------------------------------------- */

int store_create(const struct store_settings *set, struct store **store_r,
		 const char **error_r)
{
	struct store *store = mf_xcalloc(1, sizeof(*store));

	store_error_clear();
	store->data_dir = mf_xstrdup(set->data_dir);
	store->accounts_dir = mf_xasprintf("%s/accounts", set->data_dir);
	store->config_dir = set->config_dir != NULL ? mf_xstrdup(set->config_dir) : NULL;
	store->domains_file = set->domains_file != NULL ? mf_xstrdup(set->domains_file) : NULL;
	store->bus = set->bus;
	pthread_mutex_init(&store->lock, NULL);
	if (mf_fs_mkdirs(store->accounts_dir, 0750, error_r) < 0 ||
	    mf_blob_store_open(set->blob_dir, &store->blobs, error_r) < 0 ||
	    complete_pending_removals(store, error_r) < 0) {
		store_fail_kind(STORE_ERR_TEMPORARY);
		store_free(&store);
		return -1;
	}
	*store_r = store;
	return 0;
}

static void account_free(struct store_account *acc)
{
	if (acc->db != NULL)
		sqlite3_close(acc->db);
	pthread_mutex_destroy(&acc->lock);
	pthread_mutex_destroy(&acc->sub_lock);
	free(acc->name);
	free(acc->dir);
	free(acc);
}

void store_free(struct store **storep)
{
	struct store *store = *storep;

	if (store == NULL)
		return;
	*storep = NULL;
	while (store->accounts != NULL) {
		struct store_account *acc = store->accounts;

		store->accounts = acc->next;
		if (acc->refs > 0)
			mf_log_error("store", NULL, "account still referenced at store_free",
				     "account=%s refs=%u", acc->name, acc->refs);
		if (acc->db != NULL) {
			pthread_mutex_lock(&acc->lock);
			store_purge_expunged_blobs(acc);
			pthread_mutex_unlock(&acc->lock);
		}
		account_free(acc);
	}
	mf_blob_store_free(&store->blobs);
	pthread_mutex_destroy(&store->lock);
	free(store->data_dir);
	free(store->accounts_dir);
	free(store->config_dir);
	free(store->domains_file);
	free(store);
}

bool store_accounts_referenced(struct store *store)
{
	bool used = false;

	pthread_mutex_lock(&store->lock);
	for (struct store_account *acc = store->accounts; acc != NULL; acc = acc->next)
		if (acc->refs > 0)
			used = true;
	pthread_mutex_unlock(&store->lock);
	return used;
}

struct mf_blob_store *store_blobs(struct store *store)
{
	return store->blobs;
}

/* Returns the domains snapshot to use (reference to drop), or NULL. */
static struct mf_domains *domains_get(struct store *store)
{
	struct mf_domains *d = mf_domains_current();
	const char *err;

	if (d == NULL && store->domains_file != NULL &&
	    mf_domains_load(store->domains_file, &d, &err) < 0) {
		mf_log_error("store", NULL, "cannot load domains.conf", "error=%s", err);
		d = NULL;
	}
	return d;
}

/* --- opening ---------------------------------------------------------------- */

static int db_open(struct store_account *acc, const char **error_r)
{
	char *path = mf_xasprintf("%s/index.db", acc->dir);
	int ret = -1;

	if (sqlite3_open_v2(path, &acc->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
			    SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
		store_fail(STORE_ERR_TEMPORARY, error_r, "open %s: %s", path,
			   acc->db != NULL ? sqlite3_errmsg(acc->db) : "out of memory");
		goto out;
	}
	sqlite3_busy_timeout(acc->db, STORE_BUSY_TIMEOUT_MS);
	/* WAL with synchronous=FULL: a commit is durable when COMMIT returns
	 * (NORMAL could lose the last transactions on power loss, after the
	 * deliverer was told "stored"). */
	if (store_exec(acc, "PRAGMA journal_mode=WAL", error_r) < 0 ||
	    store_exec(acc, "PRAGMA synchronous=FULL", error_r) < 0 ||
	    store_exec(acc, "PRAGMA foreign_keys=ON", error_r) < 0 ||
	    migrate(acc, error_r) < 0)
		goto out;
	ret = 0;
out:
	if (ret < 0 && acc->db != NULL) {
		sqlite3_close(acc->db);
		acc->db = NULL;
	}
	free(path);
	return ret;
}

static struct store_account *account_new(struct store *store, const char *name)
{
	struct store_account *acc = mf_xcalloc(1, sizeof(*acc));

	acc->store = store;
	acc->name = mf_xstrdup(name);
	acc->dir = account_dir(store, name);
	pthread_mutex_init(&acc->lock, NULL);
	pthread_mutex_init(&acc->sub_lock, NULL);
	return acc;
}

/* Removes blobs under the account that no message references: left by a
 * crash between blob and commit (append, deliver, copy) or between commit
 * and delete (expunge).  They are never adopted: their message was not
 * acknowledged, so the sender still has it. */
static int remove_orphans(struct store_account *acc, const char **error_r)
{
	struct key_list keys = { 0 };
	char *prefix = mf_xasprintf("accounts/%s", acc->name);
	sqlite3_stmt *stmt = NULL;
	unsigned removed = 0;
	int ret = -1;

	if (mf_blob_list(acc->store->blobs, prefix, collect_key, &keys, error_r) < 0 ||
	    store_prepare(acc, "SELECT 1 FROM messages WHERE blob_key = ?", &stmt, error_r) < 0)
		goto out;
	for (size_t i = 0; i < keys.count; i++) {
		int rc;

		sqlite3_reset(stmt);
		sqlite3_bind_text(stmt, 1, keys.keys[i], -1, SQLITE_STATIC);
		rc = sqlite3_step(stmt);
		if (rc == SQLITE_ROW)
			continue;
		if (rc != SQLITE_DONE) {
			store_db_fail(acc, "orphan check", error_r);
			goto out;
		}
		if (mf_blob_delete(acc->store->blobs, keys.keys[i], error_r) < 0)
			goto out;
		removed++;
	}
	if (store_exec(acc, "UPDATE expunged SET blob_key = NULL, prefix = NULL "
		       "WHERE blob_key IS NOT NULL", error_r) < 0)
		goto out;
	/* Temporary files of puts interrupted by a crash. */
	if (mf_blob_sweep_temp(acc->store->blobs, prefix, 0, NULL, error_r) < 0)
		goto out;
	if (removed > 0)
		mf_log_info("store", NULL, "removed blobs without a message (crash recovery)",
			    "account=%s count=%u", acc->name, removed);
	ret = 0;
out:
	if (ret < 0)
		store_fail_kind(STORE_ERR_TEMPORARY);
	sqlite3_finalize(stmt);
	key_list_free(&keys);
	free(prefix);
	return ret;
}

/* Finds or opens the account; caller holds store->lock.  Returns 1/0/-1. */
static int open_locked(struct store *store, const char *name, bool create,
		       struct store_account **acc_r, const char **error_r)
{
	struct store_account *acc;

	for (acc = store->accounts; acc != NULL; acc = acc->next)
		if (strcmp(acc->name, name) == 0) {
			acc->refs++;
			*acc_r = acc;
			return 1;
		}
	if (removal_marked(store, name))
		return store_fail(STORE_ERR_REMOVED, error_r, "account %s is being removed", name);
	if (!create && !db_exists(store, name)) {
		store_fail(STORE_ERR_NOTFOUND, error_r, "account %s has no store", name);
		return 0;
	}
	acc = account_new(store, name);
	if (db_open(acc, error_r) < 0 || remove_orphans(acc, error_r) < 0) {
		account_free(acc);
		return -1;
	}
	acc->refs = 1;
	acc->next = store->accounts;
	store->accounts = acc;
	*acc_r = acc;
	return 1;
}

int store_account_open(struct store *store, const char *name, struct store_account **acc_r,
		       const char **error_r)
{
	int ret;

	store_error_clear();
	*acc_r = NULL;
	if (check_name(name, error_r) < 0)
		return -1;
	pthread_mutex_lock(&store->lock);
	ret = open_locked(store, name, false, acc_r, error_r);
	pthread_mutex_unlock(&store->lock);
	return ret;
}

struct store_account *store_account_ref(struct store_account *acc)
{
	pthread_mutex_lock(&acc->store->lock);
	acc->refs++;
	pthread_mutex_unlock(&acc->store->lock);
	return acc;
}

void store_account_unref(struct store_account **accp)
{
	struct store_account *acc = *accp;
	struct store *store;
	bool last, detached;

	if (acc == NULL)
		return;
	*accp = NULL;
	store = acc->store;
	pthread_mutex_lock(&store->lock);
	last = --acc->refs == 0;
	detached = acc->removed;
	pthread_mutex_unlock(&store->lock);
	if (!last)
		return;
	if (detached) {
		/* Removed while referenced: no longer in the cache. */
		account_free(acc);
		return;
	}
	/* The account stays open in the cache; nobody can still be reading an
	 * expunged message, so its blob can go. */
	pthread_mutex_lock(&acc->lock);
	if (acc->db != NULL)
		store_purge_expunged_blobs(acc);
	pthread_mutex_unlock(&acc->lock);
}

const char *store_account_name(const struct store_account *acc)
{
	return acc->name;
}

void store_purge_expunged_blobs(struct store_account *acc)
{
	struct key_list keys = { 0 };
	sqlite3_stmt *stmt = NULL;
	const char *err = NULL;

	if (store_prepare(acc, "SELECT blob_key FROM expunged WHERE blob_key IS NOT NULL",
			  &stmt, &err) < 0)
		goto out;
	while (sqlite3_step(stmt) == SQLITE_ROW)
		collect_key((const char *)sqlite3_column_text(stmt, 0), &keys);
	sqlite3_finalize(stmt);
	stmt = NULL;
	if (keys.count == 0)
		goto out;
	/* Rows first: a crash after this leaves orphans, which the next open
	 * removes; the other order could leave rows naming deleted blobs. */
	if (store_exec(acc, "UPDATE expunged SET blob_key = NULL, prefix = NULL "
		       "WHERE blob_key IS NOT NULL", &err) < 0)
		goto out;
	for (size_t i = 0; i < keys.count; i++)
		if (mf_blob_delete(acc->store->blobs, keys.keys[i], &err) < 0)
			mf_log_warn("store", NULL, "cannot delete expunged blob", "account=%s key=%s "
				    "error=%s", acc->name, keys.keys[i], err);
	err = NULL;
out:
	if (err != NULL)
		mf_log_warn("store", NULL, "purging expunged blobs failed", "account=%s error=%s",
			    acc->name, err);
	sqlite3_finalize(stmt);
	key_list_free(&keys);
}

/* --- creating and removing ------------------------------------------------- */

/* What passwords.init holds for an account: the scrypt hash and, when the
 * quickstart wrote them, SCRAM keys ("scram-sha-1=" / "scram-sha-256="
 * with the stored text form's spaces written as ':'), so that SCRAM works
 * for the first account before anyone sets a password again. */
struct passwords_init_entry {
	char *hash;
	char *scram_sha1;
	char *scram_sha256;
};

static void passwords_init_entry_free(struct passwords_init_entry *e)
{
	free(e->hash);
	free(e->scram_sha1);
	free(e->scram_sha256);
	memset(e, 0, sizeof(*e));
}

/* Returns a newly allocated copy of the value after prefix in field (':'
 * turned back into spaces), or NULL when field does not start with it. */
static char *scram_field(const char *field, size_t len, const char *prefix)
{
	size_t pl = strlen(prefix);
	char *v;

	if (len <= pl || strncmp(field, prefix, pl) != 0)
		return NULL;
	v = mf_xstrndup(field + pl, len - pl);
	for (char *p = v; *p != '\0'; p++)
		if (*p == ':')
			*p = ' ';
	return v;
}

/* Looks name up in <config_dir>/passwords.init.  Returns 0 with entry_r
 * filled (free with passwords_init_entry_free), or -1 when there is none. */
static int passwords_init_lookup(struct store *store, const char *name,
				 struct passwords_init_entry *entry_r)
{
	char *path, *data, *line, *save = NULL;
	const char *err;
	size_t len;
	int ret = -1;

	memset(entry_r, 0, sizeof(*entry_r));
	if (store->config_dir == NULL)
		return -1;
	path = mf_xasprintf("%s/%s", store->config_dir, STORE_PASSWORDS_INIT);
	data = mf_fs_read_file(path, STORE_PASSWORDS_INIT_MAX, &len, &err);
	if (data == NULL) {
		if (errno != ENOENT && file_exists(path))
			mf_log_warn("store", NULL, "cannot read passwords.init", "error=%s", err);
		free(path);
		return -1;
	}
	for (line = strtok_r(data, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save)) {
		size_t n = strlen(name);
		const char *p;

		if (line[0] == '#' || strncmp(line, name, n) != 0 || line[n] != ' ')
			continue;
		p = line + n + 1;
		for (int field = 0; *p != '\0'; field++) {
			size_t fl = strcspn(p, " \r\t");

			if (field == 0 && fl > 0 && fl < MF_PASSWORD_HASH_MAX)
				entry_r->hash = mf_xstrndup(p, fl);
			else if (field > 0 && entry_r->scram_sha1 == NULL &&
				 (entry_r->scram_sha1 = scram_field(p, fl, "scram-sha-1=")) != NULL)
				;
			else if (field > 0 && entry_r->scram_sha256 == NULL)
				entry_r->scram_sha256 = scram_field(p, fl, "scram-sha-256=");
			p += fl;
			p += strspn(p, " \r\t");
		}
		break;
	}
	free(data);
	free(path);
	if (entry_r->hash != NULL)
		ret = 0;
	else
		passwords_init_entry_free(entry_r);
	return ret;
}

int store_account_create(struct store *store, const char *name, const char **error_r)
{
	struct store_account *acc = NULL;
	char *dir = NULL, *db_path = NULL;
	struct passwords_init_entry init = { NULL, NULL, NULL };
	int ret = -1, r;

	store_error_clear();
	if (check_name(name, error_r) < 0)
		return -1;
	pthread_mutex_lock(&store->lock);
	if (removal_marked(store, name) && removal_complete(store, name, error_r) < 0)
		goto out;
	if (db_exists(store, name)) {
		ret = 0;
		goto out;
	}
	dir = account_dir(store, name);
	if (mf_fs_mkdirs(dir, 0750, error_r) < 0) {
		store_fail_kind(STORE_ERR_TEMPORARY);
		goto out;
	}
	r = open_locked(store, name, true, &acc, error_r);
	if (r <= 0)
		goto out;
	/* The new directory in accounts/, and index.db (and its WAL) in the
	 * new directory: both entries durable before the first delivery. */
	db_path = mf_xasprintf("%s/index.db", dir);
	if (mf_fs_fsync_parent(dir, error_r) < 0 || mf_fs_fsync_parent(db_path, error_r) < 0) {
		store_fail_kind(STORE_ERR_TEMPORARY);
		goto out;
	}
	if (passwords_init_lookup(store, name, &init) == 0) {
		pthread_mutex_unlock(&store->lock);
		r = store_set_password_hash(acc, init.hash, init.scram_sha1, init.scram_sha256,
					    error_r);
		pthread_mutex_lock(&store->lock);
		if (r < 0)
			goto out;
		mf_log_info("store", NULL, "password imported from passwords.init",
			    "account=%s scram=%s", name, init.scram_sha256 != NULL ? "yes" : "no");
	}
	mf_log_info("store", NULL, "account store created", "account=%s", name);
	ret = 1;
out:
	pthread_mutex_unlock(&store->lock);
	store_account_unref(&acc);
	free(dir);
	free(db_path);
	passwords_init_entry_free(&init);
	return ret;
}

int store_account_exists(struct store *store, const char *name, const char **error_r)
{
	int r;

	store_error_clear();
	if (check_name(name, error_r) < 0)
		return -1;
	pthread_mutex_lock(&store->lock);
	r = db_exists(store, name) && !removal_marked(store, name) ? 1 : 0;
	pthread_mutex_unlock(&store->lock);
	return r;
}

int store_accounts_ensure(struct store *store, unsigned *created_r, const char **error_r)
{
	struct mf_domains *d = domains_get(store);
	unsigned created = 0;
	int ret = 0;

	store_error_clear();
	if (d == NULL)
		return store_fail(STORE_ERR_TEMPORARY, error_r, "no domains.conf loaded");
	for (size_t i = 0; i < d->accounts_count; i++) {
		const char *err;
		int r = store_account_create(store, d->accounts[i].name, &err);

		if (r < 0) {
			mf_log_error("store", NULL, "cannot create account store",
				     "account=%s error=%s", d->accounts[i].name, err);
			*error_r = mf_errorf("account %s: %s", d->accounts[i].name, err);
			ret = -1;
		} else if (r > 0) {
			created++;
		}
	}
	mf_domains_unref(&d);
	if (created_r != NULL)
		*created_r = created;
	if (ret < 0)
		store_fail_kind(STORE_ERR_TEMPORARY);
	return ret;
}

int store_account_remove(struct store *store, const char *name, const char **error_r)
{
	struct store_account **pp, *acc = NULL;
	char *marker = NULL;
	int ret = -1;

	store_error_clear();
	if (check_name(name, error_r) < 0)
		return -1;
	pthread_mutex_lock(&store->lock);
	if (!db_exists(store, name) && !removal_marked(store, name)) {
		ret = 0;
		goto out;
	}
	/* The intent first, durably: from here on the removal completes, if
	 * need be after a crash (store_create). */
	marker = mf_xasprintf("%s/%s/%s", store->accounts_dir, name, STORE_REMOVING_MARKER);
	if (mf_fs_write_atomic(marker, "removing\n", 9, 0640, error_r) < 0) {
		store_fail_kind(STORE_ERR_TEMPORARY);
		goto out;
	}
	for (pp = &store->accounts; *pp != NULL; pp = &(*pp)->next)
		if (strcmp((*pp)->name, name) == 0) {
			acc = *pp;
			*pp = acc->next;
			break;
		}
	if (acc != NULL) {
		pthread_mutex_lock(&acc->lock);
		if (acc->db != NULL) {
			sqlite3_exec(acc->db, "UPDATE counters SET removal_pending = 1", NULL, NULL, NULL);
			sqlite3_close(acc->db);
			acc->db = NULL;
		}
		acc->removed = true;
		pthread_mutex_unlock(&acc->lock);
		if (acc->refs == 0)
			account_free(acc);
		/* else freed by the last store_account_unref */
	}
	if (removal_complete(store, name, error_r) < 0)
		goto out;
	ret = 1;
out:
	pthread_mutex_unlock(&store->lock);
	free(marker);
	return ret;
}

/* --- credentials ---------------------------------------------------------- */

int store_set_password_hash(struct store_account *acc, const char *hash,
			    const char *scram_sha1, const char *scram_sha256, const char **error_r)
{
	struct mf_sasl_scram check;
	sqlite3_stmt *stmt = NULL;
	int ret = -1;

	if ((scram_sha1 != NULL && mf_sasl_scram_parse(MF_SASL_SHA1, scram_sha1, &check, error_r) < 0) ||
	    (scram_sha256 != NULL &&
	     mf_sasl_scram_parse(MF_SASL_SHA256, scram_sha256, &check, error_r) < 0))
		return store_fail(STORE_ERR_INVALID, error_r, "bad SCRAM material: %s", *error_r);
	if (store_lock(acc, error_r) < 0)
		return -1;
	if (store_prepare(acc, "INSERT INTO credentials (id, password_hash, scram_sha1, "
			  "scram_sha256, updated_ms) VALUES (1, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET "
			  "password_hash = excluded.password_hash, scram_sha1 = excluded.scram_sha1, "
			  "scram_sha256 = excluded.scram_sha256, cram_md5 = NULL, "
			  "updated_ms = excluded.updated_ms",
			  &stmt, error_r) < 0)
		goto out;
	sqlite3_bind_text(stmt, 1, hash, -1, SQLITE_STATIC);
	if (scram_sha1 != NULL)
		sqlite3_bind_text(stmt, 2, scram_sha1, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(stmt, 2);
	if (scram_sha256 != NULL)
		sqlite3_bind_text(stmt, 3, scram_sha256, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(stmt, 3);
	sqlite3_bind_int64(stmt, 4, now_ms());
	if (sqlite3_step(stmt) != SQLITE_DONE) {
		store_db_fail(acc, "set password", error_r);
		goto out;
	}
	ret = 0;
out:
	sqlite3_finalize(stmt);
	store_unlock(acc);
	return ret;
}

int store_set_password(struct store_account *acc, const char *password, size_t len,
		       const char **error_r)
{
	/* The admin's path: every credential form at once (store_credentials.c). */
	return store_credentials_set_password(acc, password, len, STORE_PASSWORD_ADMIN, error_r);
}

int store_get_password_hash(struct store_account *acc, char **hash_r, const char **error_r)
{
	sqlite3_stmt *stmt = NULL;
	int ret = -1, rc;

	*hash_r = NULL;
	if (store_lock(acc, error_r) < 0)
		return -1;
	if (store_prepare(acc, "SELECT password_hash FROM credentials WHERE id = 1", &stmt,
			  error_r) < 0)
		goto out;
	rc = sqlite3_step(stmt);
	if (rc == SQLITE_ROW && sqlite3_column_type(stmt, 0) == SQLITE_TEXT) {
		*hash_r = mf_xstrdup((const char *)sqlite3_column_text(stmt, 0));
		ret = 1;
	} else if (rc == SQLITE_ROW || rc == SQLITE_DONE) {
		ret = 0;
	} else {
		store_db_fail(acc, "get password", error_r);
	}
out:
	sqlite3_finalize(stmt);
	store_unlock(acc);
	return ret;
}

int store_login_resolve(struct store *store, const char *login, char **account_r,
			char **disabled_r, const char **error_r)
{
	struct mf_domains *d = NULL;
	const struct mf_account *account = NULL;
	char *login_nfc = NULL;
	const char *err_nfc;
	int ret = -1;

	store_error_clear();
	*account_r = NULL;
	if (disabled_r != NULL)
		*disabled_r = NULL;
	d = domains_get(store);
	if (d == NULL) {
		store_fail(STORE_ERR_TEMPORARY, error_r, "no domains.conf loaded");
		goto out;
	}
	/* é composed or decomposed: both find the account (NFC). */
	if (mf_precis_username(login, strlen(login), &login_nfc, &err_nfc) < 0) {
		ret = 0;
		goto out;
	}
	login = login_nfc;
	if (strchr(login, '@') != NULL) {
		struct mf_domains_dest dest;
		const char *err;

		struct mf_address addr;

		if (mf_address_parse(login, strlen(login), &addr, &err) == 0) {
			/* Only a configured address itself logs in: catch-all and
			 * separator matches are for receiving. */
			if (mf_domains_resolve(d, addr.localpart, addr.domain, &dest) ==
			    MF_DOMAINS_DEST_ACCOUNT && dest.matched != NULL &&
			    strcmp(dest.matched->domain, addr.domain) == 0 &&
			    mf_localpart_equal(dest.matched->localpart, addr.localpart,
					       dest.domain != NULL &&
					       dest.domain->localpart_case_sensitive))
				account = dest.account;
			mf_address_free(&addr);
		}
	} else {
		account = mf_domains_find_account(d, login);
	}
	if (account == NULL) {
		ret = 0;
		goto out;
	}
	*account_r = mf_xstrdup(account->name);
	if (disabled_r != NULL && account->login_disabled != NULL)
		*disabled_r = mf_xstrdup(account->login_disabled);
	ret = 1;
out:
	mf_domains_unref(&d);
	free(login_nfc);
	return ret;
}

int store_authenticate(struct store *store, const char *login, const char *password,
		       size_t password_len, enum store_auth_result *result_r,
		       char **account_r, char **message_r, const char **error_r)
{
	struct store_account *acc = NULL;
	char *hash = NULL, *name = NULL, *disabled = NULL;
	int ret = -1, r;

	store_error_clear();
	*result_r = STORE_AUTH_FAILED;
	*account_r = NULL;
	*message_r = NULL;
	r = store_login_resolve(store, login, &name, &disabled, error_r);
	if (r <= 0) {
		ret = r;
		goto out;
	}
	r = store_account_open(store, name, &acc, error_r);
	if (r < 0)
		goto out;
	if (r == 0) {
		/* Configured but no store yet (created at the next ensure). */
		ret = 0;
		goto out;
	}
	r = store_get_password_hash(acc, &hash, error_r);
	if (r < 0)
		goto out;
	if (r > 0) {
		const char *err;
		char *norm = NULL;
		size_t norm_len = 0;

		/* Hashes are of the OpaqueString form (store_credentials.c); a
		 * password that is none is compared as given (imported hashes). */
		if (mf_precis_password(password, password_len, &norm, &norm_len, &err) == 0) {
			r = mf_password_verify(hash, norm, norm_len, &err);
			free(norm);
		} else {
			r = mf_password_verify(hash, password, password_len, &err);
		}
		if (r < 0)
			mf_log_error("store", NULL, "bad stored password hash", "account=%s error=%s",
				     name, err);
		if (r > 0) {
			*account_r = mf_xstrdup(name);
			if (disabled != NULL) {
				*result_r = STORE_AUTH_DISABLED;
				*message_r = mf_xstrdup(disabled);
			} else {
				*result_r = STORE_AUTH_OK;
			}
		}
	}
	ret = 0;
out:
	store_account_unref(&acc);
	free(hash);
	free(name);
	free(disabled);
	return ret;
}

/* --- quota ------------------------------------------------------------------- */

uint64_t store_quota_limit(struct store_account *acc)
{
	struct mf_domains *d = domains_get(acc->store);
	const struct mf_account *a;
	uint64_t limit = 0;

	if (d == NULL)
		return 0;
	a = mf_domains_find_account(d, acc->name);
	if (a != NULL)
		limit = a->quota;
	mf_domains_unref(&d);
	return limit;
}

static int usage_locked(struct store_account *acc, uint64_t *used_r, const char **error_r)
{
	sqlite3_stmt *stmt = NULL;
	int ret = -1;

	if (store_prepare(acc, "SELECT COALESCE(SUM(size), 0) FROM mailboxes", &stmt, error_r) < 0)
		return -1;
	if (sqlite3_step(stmt) != SQLITE_ROW) {
		store_db_fail(acc, "quota usage", error_r);
		goto out;
	}
	*used_r = (uint64_t)sqlite3_column_int64(stmt, 0);
	ret = 0;
out:
	sqlite3_finalize(stmt);
	return ret;
}

int store_quota_check(struct store_account *acc, uint64_t adding, const char **error_r)
{
	uint64_t limit = store_quota_limit(acc), used;

	if (limit == 0)
		return 0;
	if (adding > limit)
		return store_fail(STORE_ERR_TOOBIG, error_r,
				  "message of %" PRIu64 " bytes is larger than the quota of %" PRIu64
				  " bytes", adding, limit);
	if (usage_locked(acc, &used, error_r) < 0)
		return -1;
	if (used + adding > limit)
		return store_fail(STORE_ERR_OVERQUOTA, error_r, "over quota: %" PRIu64 " of %" PRIu64
				  " bytes used", used, limit);
	return 0;
}

int store_quota(struct store_account *acc, uint64_t *used_r, uint64_t *limit_r,
		const char **error_r)
{
	int ret;

	if (store_lock(acc, error_r) < 0)
		return -1;
	ret = usage_locked(acc, used_r, error_r);
	store_unlock(acc);
	*limit_r = store_quota_limit(acc);
	return ret;
}

/* --- consistency check -------------------------------------------------------- */

int store_account_check(struct store_account *acc, const char **error_r)
{
	/* Everything the kept counts should be, computed from the messages. */
	static const char sql[] =
		"SELECT b.name, b.messages, b.unseen, b.deleted, b.size, b.uidnext, b.highestmodseq,"
		" COUNT(m.id),"
		" COALESCE(SUM((m.flags & 1) = 0), 0),"
		" COALESCE(SUM((m.flags & 8) != 0), 0),"
		" COALESCE(SUM(m.size), 0),"
		" COALESCE(MAX(m.uid), 0),"
		" COALESCE(MAX(m.modseq), 0),"
		" (SELECT modseq FROM counters)"
		" FROM mailboxes b LEFT JOIN messages m ON m.mailbox = b.id"
		" GROUP BY b.id ORDER BY b.name";
	sqlite3_stmt *stmt = NULL;
	int ret = -1, rc;

	if (store_lock(acc, error_r) < 0)
		return -1;
	if (store_prepare(acc, sql, &stmt, error_r) < 0)
		goto out;
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		const char *name = (const char *)sqlite3_column_text(stmt, 0);
		int64_t v[13];

		for (int i = 1; i < 14; i++)
			v[i - 1] = sqlite3_column_int64(stmt, i);
		if (v[0] != v[6] || v[1] != v[7] || v[2] != v[8] || v[3] != v[9]) {
			store_fail(STORE_ERR_TEMPORARY, error_r,
				   "mailbox %s: kept counts messages=%" PRId64 " unseen=%" PRId64
				   " deleted=%" PRId64 " size=%" PRId64 ", computed %" PRId64 " %" PRId64
				   " %" PRId64 " %" PRId64, name, v[0], v[1], v[2], v[3], v[6], v[7],
				   v[8], v[9]);
			goto out;
		}
		if (v[10] >= v[4]) {
			store_fail(STORE_ERR_TEMPORARY, error_r, "mailbox %s: uid %" PRId64
				   " not below uidnext %" PRId64, name, v[10], v[4]);
			goto out;
		}
		if (v[11] > v[5] || v[5] > v[12]) {
			store_fail(STORE_ERR_TEMPORARY, error_r, "mailbox %s: message modseq %" PRId64
				   ", highestmodseq %" PRId64 ", account modseq %" PRId64, name,
				   v[11], v[5], v[12]);
			goto out;
		}
	}
	if (rc != SQLITE_DONE) {
		store_db_fail(acc, "check", error_r);
		goto out;
	}
	sqlite3_finalize(stmt);
	stmt = NULL;
	if (store_prepare(acc, "SELECT blob_key, size, length(prefix) FROM messages", &stmt,
			  error_r) < 0)
		goto out;
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		const char *key = (const char *)sqlite3_column_text(stmt, 0);
		uint64_t size = (uint64_t)sqlite3_column_int64(stmt, 1);
		uint64_t plen = (uint64_t)sqlite3_column_int64(stmt, 2);
		struct mf_blob_stat st;
		int r = mf_blob_stat(acc->store->blobs, key, &st, error_r);

		if (r < 0)
			goto out;
		if (r == 0 || st.size + plen != size) {
			store_fail(STORE_ERR_TEMPORARY, error_r, "message blob %s: %s", key,
				   r == 0 ? "missing" : "size differs from the row");
			goto out;
		}
	}
	if (rc != SQLITE_DONE) {
		store_db_fail(acc, "check", error_r);
		goto out;
	}
	ret = 0;
out:
	sqlite3_finalize(stmt);
	store_unlock(acc);
	return ret;
}

/* --- change notification ------------------------------------------------------ */

struct store_subscription *store_subscribe(struct store_account *acc, store_change_fn *fn,
					   void *ctx)
{
	struct store_subscription *sub = mf_xcalloc(1, sizeof(*sub));

	sub->acc = store_account_ref(acc);
	sub->fn = fn;
	sub->ctx = ctx;
	pthread_mutex_lock(&acc->sub_lock);
	sub->next = acc->subs;
	acc->subs = sub;
	pthread_mutex_unlock(&acc->sub_lock);
	return sub;
}

void store_unsubscribe(struct store_subscription **subp)
{
	struct store_subscription *sub = *subp, **pp;
	struct store_account *acc;

	if (sub == NULL)
		return;
	*subp = NULL;
	acc = sub->acc;
	pthread_mutex_lock(&acc->sub_lock);
	for (pp = &acc->subs; *pp != NULL; pp = &(*pp)->next)
		if (*pp == sub) {
			*pp = sub->next;
			break;
		}
	pthread_mutex_unlock(&acc->sub_lock);
	store_account_unref(&acc);
	free(sub);
}

static const char *const flag_names[] = {
	"\\Seen", "\\Answered", "\\Flagged", "\\Deleted", "\\Draft",
};

static void publish_change(struct store_account *acc, const struct store_change *change)
{
	Mailfleet__V1__ChangeEvent ev = MAILFLEET__V1__CHANGE_EVENT__INIT;
	Mailfleet__V1__MessageState *states = NULL, **ptrs = NULL;
	char ***flag_lists = NULL;
	uint8_t *buf = NULL;
	char *subject = NULL;
	const char *err;
	size_t len;

	ev.kind = (Mailfleet__V1__ChangeEvent__Kind)change->kind;
	ev.account = acc->name;
	ev.mailbox_id = change->mailbox_id;
	ev.mailbox = (char *)(change->mailbox != NULL ? change->mailbox : "");
	ev.old_name = (char *)(change->old_name != NULL ? change->old_name : "");
	ev.modseq = change->modseq;
	if (change->count > 0) {
		states = mf_xcalloc(change->count, sizeof(*states));
		ptrs = mf_xcalloc(change->count, sizeof(*ptrs));
		flag_lists = mf_xcalloc(change->count, sizeof(*flag_lists));
	}
	for (size_t i = 0; i < change->count; i++) {
		const struct store_msg_state *m = &change->msgs[i];
		size_t n = 0, cap = 5 + 1;

		mailfleet__v1__message_state__init(&states[i]);
		states[i].uid = m->uid;
		states[i].modseq = m->modseq;
		if (m->keywords != NULL)
			for (const char *p = m->keywords; *p != '\0'; p++)
				if (*p == ' ')
					cap++;
		flag_lists[i] = mf_xcalloc(cap + 1, sizeof(char *));
		for (int b = 0; b < 5; b++)
			if (m->flags & (1u << b))
				flag_lists[i][n++] = mf_xstrdup(flag_names[b]);
		if (m->keywords != NULL && m->keywords[0] != '\0') {
			char *copy = mf_xstrdup(m->keywords), *save = NULL, *tok;

			for (tok = strtok_r(copy, " ", &save); tok != NULL && n < cap;
			     tok = strtok_r(NULL, " ", &save))
				flag_lists[i][n++] = mf_xstrdup(tok);
			free(copy);
		}
		states[i].flags = flag_lists[i];
		states[i].n_flags = n;
		ptrs[i] = &states[i];
	}
	ev.messages = ptrs;
	ev.n_messages = change->count;
	len = mailfleet__v1__change_event__get_packed_size(&ev);
	buf = mf_xmalloc(len + 1);
	mailfleet__v1__change_event__pack(&ev, buf);
	subject = mf_xasprintf("store.v1.changes.%s", acc->name);
	if (mf_bus_publish(acc->store->bus, subject, buf, len, &err) < 0)
		mf_log_warn("store", NULL, "cannot publish change", "account=%s error=%s",
			    acc->name, err);
	for (size_t i = 0; i < change->count; i++) {
		for (size_t j = 0; j < states[i].n_flags; j++)
			free(flag_lists[i][j]);
		free(flag_lists[i]);
	}
	free(flag_lists);
	free(states);
	free(ptrs);
	free(buf);
	free(subject);
}

void store_notify(struct store_account *acc, const struct store_change *change)
{
	struct store_change c = *change;

	c.account = acc->name;
	pthread_mutex_lock(&acc->sub_lock);
	for (struct store_subscription *s = acc->subs; s != NULL; s = s->next)
		s->fn(s->ctx, &c);
	pthread_mutex_unlock(&acc->sub_lock);
	if (acc->store->bus != NULL)
		publish_change(acc, &c);
}
