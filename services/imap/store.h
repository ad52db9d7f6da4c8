/* store: the account stores owned by the imap service (DESIGN.md "Who owns
 * what"): mailboxes, messages, flags, keywords, modseqs, credentials.
 *
 * Layout.  Per account an SQLite database in WAL mode at
 * <data-dir>/accounts/<name>/index.db and message blobs in the blob store
 * (libshared/blob.h) under accounts/<name>/m/<random>.  A stored message is
 * the row's header prefix (Return-Path, Delivered-To, given by the
 * deliverer; may be empty) followed by the blob: the prefix is kept in the
 * row so one incoming blob can be linked to several recipients unchanged.
 *
 * Crash safety.  A message becomes visible only after its blob is durable
 * (put or link, fsynced) and the transaction that adds its row committed.
 * Blobs are deleted only after the transaction that removed their rows
 * committed.  When an account is opened (once per process), blobs under
 * accounts/<name>/ that no row references are removed: they are leftovers of
 * a crash between blob and commit (or between commit and delete).  Blob
 * keys are random, never derived from UIDs, so nothing is ever reused.
 * Removing an account first writes <data-dir>/accounts/<name>/REMOVING
 * (fsynced); store_create completes every removal it finds marked.
 *
 * Locking.  One process (imap) owns the databases.  Each open account has
 * one SQLite connection and one mutex: every operation takes the mutex for
 * its transaction, so operations on one account are serialised and see a
 * consistent state.  Blob writes (append data, delivery links) happen
 * outside the mutex.  Accounts are opened through a reference-counted cache
 * on the struct store; all functions are safe from any thread.
 *
 * Counts (messages, unseen, deleted, size, uidnext, highestmodseq) are kept
 * in the mailboxes table and updated in the same transaction as every
 * change; store_account_check recomputes and compares them.
 *
 * Mod-sequences (RFC 7162): one counter per account; every change
 * (transaction) takes the next value, which becomes the modseq of every
 * message it touched, the highestmodseq of the mailboxes it touched, and
 * the modseq of the expunged-history rows it wrote.  Modseqs start at 1 for
 * new messages' createseq/modseq.
 *
 * Mailbox names are UTF-8 (NFC), hierarchy separator '/', "INBOX" matched
 * case-insensitively and stored as "INBOX".  Conversion from/to modified
 * UTF-7 is the IMAP server's job.
 *
 * Return conventions: 0 success, -1 error with error_r (mf_errorf text).
 * Where "not found" is an ordinary answer a function returns 1 found / 0
 * not found / -1 error, as documented.  Errors that a client should see
 * as a permanent NO (no such mailbox, over quota, bad name) are
 * distinguished from temporary ones (database busy, I/O) by
 * store_last_error_kind(). */
#ifndef STORE_H
#define STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct mf_blob_store;
struct mf_bus;
struct mf_metrics;
struct mf_service;

/* Limits. */
#define STORE_MAILBOX_NAME_MAX 1000       /* bytes of a mailbox name */
#define STORE_MAILBOX_DEPTH_MAX 32        /* '/'-separated levels */
#define STORE_MAILBOXES_MAX 10000         /* per account */
#define STORE_KEYWORD_MAX 100             /* bytes of one keyword */
#define STORE_KEYWORDS_MAX 100            /* keywords on one message */
#define STORE_PREFIX_MAX 16384            /* header prefix bytes per message */
#define STORE_UIDS_MAX 1000000            /* UIDs in one copy/move/expunge/flags call */
#define STORE_HEADER_SCAN_MAX (256 * 1024) /* bytes read for message-id/subject */

/* System flags as bits (RFC 9051 2.3.2). \Recent does not exist in rev2. */
#define STORE_FLAG_SEEN     (1u << 0)
#define STORE_FLAG_ANSWERED (1u << 1)
#define STORE_FLAG_FLAGGED  (1u << 2)
#define STORE_FLAG_DELETED  (1u << 3)
#define STORE_FLAG_DRAFT    (1u << 4)
#define STORE_FLAGS_ALL     0x1fu

/* Special-use attributes (RFC 6154) as bits. */
#define STORE_SPECIAL_ALL     (1u << 0)
#define STORE_SPECIAL_ARCHIVE (1u << 1)
#define STORE_SPECIAL_DRAFTS  (1u << 2)
#define STORE_SPECIAL_FLAGGED (1u << 3)
#define STORE_SPECIAL_JUNK    (1u << 4)
#define STORE_SPECIAL_SENT    (1u << 5)
#define STORE_SPECIAL_TRASH   (1u << 6)
#define STORE_SPECIAL_MASK    0x7fu     /* all of the above */

/* What kind of failure the calling thread's last store error was. */
enum store_error_kind {
	STORE_ERR_NONE = 0,
	STORE_ERR_TEMPORARY,    /* I/O, database busy, dependency down: try later */
	STORE_ERR_NOTFOUND,     /* no such account / mailbox / message */
	STORE_ERR_EXISTS,       /* mailbox already exists */
	STORE_ERR_INVALID,      /* bad name, bad argument, not allowed (e.g. delete INBOX) */
	STORE_ERR_OVERQUOTA,    /* would exceed the account's quota (RFC 9208 OVERQUOTA) */
	STORE_ERR_TOOBIG,       /* larger than the whole quota */
	STORE_ERR_REMOVED,      /* the account is being removed */
};
/* Returns the kind of the last error a store function returned on this
 * thread (valid until the next store call on this thread). */
enum store_error_kind store_last_error_kind(void);

struct store;          /* the process's stores: paths, blob store, cache */
struct store_account;  /* an open account (reference counted) */

/* --- the store as a whole --- */

struct store_settings {
	const char *data_dir;      /* accounts live under <data_dir>/accounts/ */
	const char *blob_dir;      /* root of the blob store */
	const char *config_dir;    /* where passwords.init is looked for; NULL: none */
	const char *domains_file;  /* domains.conf, for quota and login lookups when
				    * the process has no mf_domains_current (tests);
				    * NULL: use mf_domains_current() only */
	struct mf_bus *bus;        /* for store.v1.changes events; NULL: none */
};

/* Opens the store: creates <data_dir>/accounts if missing, opens the blob
 * store, and completes account removals marked before a crash.  Returns 0
 * with *store_r (free with store_free), or -1 with error_r. */
int store_create(const struct store_settings *set, struct store **store_r,
		 const char **error_r);
/* Closes every cached account (they must no longer be referenced) and
 * frees the store; *store = NULL. NULL is fine. */
void store_free(struct store **store);
struct mf_blob_store *store_blobs(struct store *store);

/* For the imap service's main.c: creates the store from the service's
 * config (data-dir, blob-dir, config dir, bus), creates stores for accounts
 * of domains.conf that have none (again after every config.v1.changed),
 * and serves the NATS API (store_api.c, subjects store.v1.*.<account>,
 * queue group "imap").  Returns 0 with *store_r, or -1 with error_r.
 * Call store_stop from the service's stop hook. */
int store_start(struct mf_service *svc, struct store **store_r, const char **error_r);
/* The NATS API alone (store_start uses it; tests call it directly):
 * serves store.v1.*.<account> on bus with queue group "imap", answering
 * from store, with domains_file for account lookups, and reloads
 * domains.conf / ensures stores on config.v1.changed.  metrics may be
 * NULL.  Stop with store_stop; after the bus is closed,
 * store_api_free_stopped frees what the API kept (also run at exit). */
int store_api_serve(struct store *store, const char *domains_file, struct mf_bus *bus,
		    struct mf_metrics *metrics, const char **error_r);
void store_api_free_stopped(void);

/* For the service's stop hook: from now on store API requests get a
 * temporary error; waits for those in flight, then frees the store unless
 * an account is still referenced (a session that outlived the drain: the
 * store then stays open until exit; every commit is durable already).
 * Sets *store = NULL. */
void store_stop(struct store **store);

/* --- accounts --- */

/* Creates the account's store (directories, database, schema, standard
 * mailboxes INBOX, Sent, Drafts, Archive, Trash, Junk with their special-use
 * flags, and Rejects) and imports a password hash from
 * <config_dir>/passwords.init ("<account> <hash>" lines) when one is there.
 * Returns 1 when created, 0 when it already existed, -1 with error_r. */
int store_account_create(struct store *store, const char *name, const char **error_r);
/* Returns 1 when the account has a store, 0 when not, -1 with error_r. */
int store_account_exists(struct store *store, const char *name, const char **error_r);
/* Creates stores for every account in the current domains.conf that has
 * none.  Returns 0 with how many were created in created_r (may be NULL),
 * or -1 with error_r (after trying all). */
int store_accounts_ensure(struct store *store, unsigned *created_r, const char **error_r);
/* Removes the account's store: marks the removal (a file, so it completes
 * after a crash), makes open handles fail with STORE_ERR_REMOVED, deletes
 * the blobs and the database.  Returns 1 when removed, 0 when there was
 * none, -1 with error_r (the marker stays; store_create retries). */
int store_account_remove(struct store *store, const char *name, const char **error_r);

/* Opens (or finds in the cache) the account's store.  Returns 1 with a
 * reference in *acc_r (release with store_account_unref), 0 when the
 * account has no store (STORE_ERR_NOTFOUND), -1 with error_r. */
int store_account_open(struct store *store, const char *name,
		       struct store_account **acc_r, const char **error_r);
struct store_account *store_account_ref(struct store_account *acc);
/* Drops a reference and sets *acc to NULL.  Blobs of expunged messages are
 * deleted when the last reference is dropped (sessions may still fetch a
 * message they were not yet told is expunged). */
void store_account_unref(struct store_account **acc);
/* The account's name (owned by acc). */
const char *store_account_name(const struct store_account *acc);

/* --- authentication and credentials --- */

enum store_auth_result {
	STORE_AUTH_OK,
	STORE_AUTH_FAILED,    /* unknown login or wrong password: same answer */
	STORE_AUTH_DISABLED,  /* the account's login-disabled is set */
};

/* Maps login (an address of an account, or an account name) to the account
 * through domains.conf and verifies password against the stored hash.
 * Returns 0 with the result in *result_r, the account name in *account_r
 * (caller frees; NULL unless OK or DISABLED) and for DISABLED the message
 * in *message_r (caller frees; may be NULL); -1 with error_r on a storage
 * failure (a temporary error, never a "wrong password"). */
int store_authenticate(struct store *store, const char *login, const char *password,
		       size_t password_len, enum store_auth_result *result_r,
		       char **account_r, char **message_r, const char **error_r);
/* Maps login (NFC-normalised here) to an account the way
 * store_authenticate does, without checking a password (SCRAM, CRAM-MD5,
 * EXTERNAL authzid).  Returns 1 with *account_r (caller frees) and, when
 * disabled_r is not NULL, the login-disabled message or NULL in
 * *disabled_r (caller frees); 0 when login names no account; -1. */
int store_login_resolve(struct store *store, const char *login, char **account_r,
			char **disabled_r, const char **error_r);
/* Sets the account's password as the admin does (store_credentials_set_
 * password with STORE_PASSWORD_ADMIN): scrypt hash, SCRAM material and,
 * when allowed, CRAM-MD5 material, all of the PRECIS-normalised password. */
int store_set_password(struct store_account *acc, const char *password, size_t len,
		       const char **error_r);
/* Sets an already computed scrypt hash (password import), with SCRAM
 * material in its stored text form when the importer has it (else NULL).
 * CRAM-MD5 material cannot be derived and is cleared: that mechanism (and
 * SCRAM without material) fails for the account until its password is set
 * again.  Returns 0, or -1 with error_r (also for malformed SCRAM text). */
int store_set_password_hash(struct store_account *acc, const char *hash,
			    const char *scram_sha1, const char *scram_sha256, const char **error_r);
/* Returns 1 with the hash in *hash_r (caller frees), 0 when none is set. */
int store_get_password_hash(struct store_account *acc, char **hash_r, const char **error_r);

/* --- credential material, TLS public keys, login attempts
 *     (store_credentials.c) --- */

#define STORE_LOGIN_ATTEMPTS_MAX 10000        /* rows kept per account */
#define STORE_LOGIN_ATTEMPTS_MAX_AGE_MS (30LL * 24 * 3600 * 1000)
#define STORE_LOGIN_ATTEMPT_FIELD_MAX 256     /* bytes per text field */
#define STORE_TLS_PUBKEYS_MAX 100             /* per account */
#define STORE_TLS_PUBKEY_NAME_MAX 128
#define STORE_TLS_PUBKEY_DER_MAX 8192         /* a 4096-bit RSA SPKI is ~550 */
#define STORE_TLS_FINGERPRINT_LEN 64          /* hex SHA-256 of the SPKI */

/* Who sets a password: the admin may always; the user only a generated
 * one when the account is "generated passwords only". */
enum store_password_origin {
	STORE_PASSWORD_ADMIN,
	STORE_PASSWORD_USER,
	STORE_PASSWORD_GENERATED,
};

/* Normalises password (PRECIS OpaqueString; refused with STORE_ERR_INVALID
 * when it is not one), then writes in one statement: the scrypt hash, the
 * SCRAM-SHA-1 and SCRAM-SHA-256 material (new salts) and, only when the
 * account allows CRAM-MD5, the CRAM-MD5 material.  Returns 0 or -1
 * (STORE_ERR_INVALID also for a user-chosen password on a generated-only
 * account). */
int store_credentials_set_password(struct store_account *acc, const char *password,
				   size_t len, enum store_password_origin origin,
				   const char **error_r);

struct store_credential_options {
	bool cram_md5_allowed;  /* keep CRAM-MD5 material (password-equivalent) */
	bool generated_only;    /* users may only set generated passwords */
};
/* Reads the options (all false when never set).  Returns 0 or -1. */
int store_credentials_get_options(struct store_account *acc,
				  struct store_credential_options *opts_r, const char **error_r);
/* Sets the options.  Disallowing CRAM-MD5 deletes its material at once;
 * allowing it takes effect with the next password set (the material cannot
 * be derived from the hash).  Returns 0 or -1. */
int store_credentials_set_options(struct store_account *acc,
				  const struct store_credential_options *opts,
				  const char **error_r);

struct mf_sasl_scram;
struct mf_sasl_cram;
/* SCRAM material for hash (enum mf_sasl_hash from sasl.h).  Returns 1 with
 * *scram_r, 0 when the account has none (no password set since material
 * was introduced), -1. */
int store_credentials_get_scram(struct store_account *acc, int hash,
				struct mf_sasl_scram *scram_r, const char **error_r);
/* CRAM-MD5 material.  Returns 1, 0 when none or not allowed, -1. */
int store_credentials_get_cram(struct store_account *acc, struct mf_sasl_cram *cram_r,
			       const char **error_r);

/* One login attempt; repeats with equal details are one row with a count. */
struct store_login_attempt {
	int64_t first_ms, last_ms;   /* unix ms (filled when listing) */
	uint64_t count;
	const char *protocol;        /* "imap", "submission", "web" */
	const char *mechanism;       /* "PLAIN", "SCRAM-SHA-256-PLUS", "EXTERNAL", ... */
	const char *login;           /* the login name the client gave */
	const char *remote_ip;
	const char *local_ip;
	const char *tls;             /* "TLSv1.3 TLS_AES_128_GCM_SHA256", "" without TLS */
	const char *tls_pubkey;      /* fingerprint of the client's public key, or "" */
	const char *client_id;       /* IMAP ID name/version, user agent, or "" */
	const char *result;          /* "ok", "badcreds", "disabled", "throttled", ... */
};
/* Records a for the account at now_ms (0: now): adds a row or counts a
 * repeat, then drops rows older than STORE_LOGIN_ATTEMPTS_MAX_AGE_MS and
 * the oldest past STORE_LOGIN_ATTEMPTS_MAX.  NULL fields are "", longer
 * ones are cut at STORE_LOGIN_ATTEMPT_FIELD_MAX bytes.  Returns 0 or -1. */
int store_login_attempt_record(struct store_account *acc, const struct store_login_attempt *a,
			       int64_t now_ms, const char **error_r);
/* Lists at most limit attempts (0: all), most recent first.  The strings of
 * each entry are allocated; free the array with store_login_attempts_free.
 * Returns 0 or -1. */
int store_login_attempts_list(struct store_account *acc, size_t limit,
			      struct store_login_attempt **list_r, size_t *count_r,
			      const char **error_r);
void store_login_attempts_free(struct store_login_attempt **list, size_t count);
/* Tests only: the row cap (default STORE_LOGIN_ATTEMPTS_MAX). */
void store_login_attempts_set_max(size_t max);

/* A TLS client public key registered for an account (EXTERNAL, IMAP
 * PREAUTH).  Only the key identifies; certificate names and dates are
 * ignored. */
struct store_tls_pubkey {
	char *fingerprint;       /* hex SHA-256 of the DER SubjectPublicKeyInfo */
	char *name;              /* the admin's label, e.g. "laptop" */
	unsigned char *der;      /* SubjectPublicKeyInfo */
	size_t der_len;
	char *login_address;     /* used as login name (logs, attempts) */
	bool no_imap_preauth;    /* keep IMAP unauthenticated; EXTERNAL still works */
	int64_t created_ms;
	char *account;           /* filled by store_tls_pubkey_lookup */
};
void store_tls_pubkey_clear(struct store_tls_pubkey *k);
void store_tls_pubkeys_free(struct store_tls_pubkey **keys, size_t count);
/* Returns the fingerprint of der (hex, allocated). */
char *store_tls_pubkey_fingerprint(const unsigned char *der, size_t len);
/* Registers der (a DER SubjectPublicKeyInfo; checked) for the account.
 * Refused (STORE_ERR_EXISTS) when any account has the key already.
 * Returns 0 with the fingerprint in *fingerprint_r (may be NULL; caller
 * frees), or -1. */
int store_tls_pubkey_add(struct store *store, struct store_account *acc, const char *name,
			 const unsigned char *der, size_t der_len, const char *login_address,
			 bool no_imap_preauth, char **fingerprint_r, const char **error_r);
/* Returns 0 with the account's keys (store_tls_pubkeys_free) or -1. */
int store_tls_pubkeys_list(struct store_account *acc, struct store_tls_pubkey **keys_r,
			   size_t *count_r, const char **error_r);
/* Returns 1 when removed, 0 when the account has no such key, -1. */
int store_tls_pubkey_remove(struct store_account *acc, const char *fingerprint,
			    const char **error_r);
/* Finds the account holding the key with this fingerprint (scans the
 * accounts' stores).  Returns 1 with *key_r (store_tls_pubkey_clear;
 * key_r->account set), 0 when no account has it, -1. */
int store_tls_pubkey_lookup(struct store *store, const char *fingerprint,
			    struct store_tls_pubkey *key_r, const char **error_r);

struct mf_bus_request;
struct mf_bus_response;
/* Serves one request of the credential endpoints (store.v1.credentials.*,
 * credoptions.*, loginattempt(s).*, tlspubkey.*; store_api_credentials.c)
 * and returns the operation's metric label: "credentials", "loginattempt",
 * "loginattempts" or "tlspubkey". */
const char *store_api_credentials(struct store *store, const struct mf_bus_request *req,
				  struct mf_bus_response *resp);

/* --- mailboxes --- */

struct store_mailbox {
	int64_t id;
	char *name;            /* full name, '/'-separated */
	int64_t parent_id;     /* 0: top level */
	uint32_t special_use;  /* STORE_SPECIAL_* */
	bool subscribed;
	uint32_t uidvalidity;
	uint32_t uidnext;
	uint64_t highestmodseq;
	uint32_t messages;
	uint32_t unseen;
	uint32_t deleted;
	uint64_t size;         /* bytes of all messages (prefix + blob) */
	/* LIST-STATUS/STATUS data: all above; "children" from the list. */
	bool has_children;
};

/* Frees the strings inside mb (not mb itself). */
void store_mailbox_clear(struct store_mailbox *mb);
/* Frees an array from store_mailboxes_list and sets *mbs to NULL. */
void store_mailboxes_free(struct store_mailbox **mbs, size_t count);

/* Lists all mailboxes sorted by name (INBOX first), with counts.
 * Subscribed names of mailboxes that do not exist are not listed (only
 * existing mailboxes carry a subscribed flag).  Returns 0 with an array
 * (store_mailboxes_free) or -1. */
int store_mailboxes_list(struct store_account *acc, struct store_mailbox **mbs_r,
			 size_t *count_r, const char **error_r);
/* Looks a mailbox up by name ("inbox" in any case is INBOX).  Returns 1
 * with *mb_r filled (store_mailbox_clear), 0 when there is none, -1. */
int store_mailbox_get(struct store_account *acc, const char *name,
		      struct store_mailbox *mb_r, const char **error_r);
int store_mailbox_get_by_id(struct store_account *acc, int64_t id,
			    struct store_mailbox *mb_r, const char **error_r);
/* Creates name and any missing parents (RFC 9051 6.3.4), with the given
 * special-use bits (CREATE-SPECIAL-USE, RFC 6154 3; 0 for none).  A name
 * with a trailing '/' creates the name without it.  Returns 0 with the new
 * id in *id_r (may be NULL), -1 with STORE_ERR_EXISTS / _INVALID / _TEMPORARY. */
int store_mailbox_create(struct store_account *acc, const char *name, uint32_t special_use,
			 int64_t *id_r, const char **error_r);
/* Deletes name and its messages (blobs deleted after commit).  INBOX
 * cannot be deleted; a mailbox with children cannot be deleted (error
 * "mailbox has children", STORE_ERR_INVALID) so no \Noselect placeholders
 * exist. */
int store_mailbox_delete(struct store_account *acc, const char *name, const char **error_r);
/* Renames from (and its children) to to, creating missing parents of to.
 * Renaming INBOX moves its messages into a new mailbox to and leaves INBOX
 * empty (RFC 9051 6.3.6); INBOX's children are not moved.  The renamed
 * mailboxes keep their UIDVALIDITY and messages. */
int store_mailbox_rename(struct store_account *acc, const char *from, const char *to,
			 const char **error_r);
/* Sets the subscribed flag (the mailbox must exist: RFC 9051 allows
 * refusing subscriptions to non-existent names). */
int store_mailbox_subscribe(struct store_account *acc, const char *name, bool subscribed,
			    const char **error_r);
/* Sets the special-use bits of an existing mailbox. */
int store_mailbox_set_special_use(struct store_account *acc, const char *name,
				  uint32_t special_use, const char **error_r);
/* Returns 1 with the mailbox that has the special-use bit (the first by
 * name when several do), 0 when none, -1. */
int store_mailbox_find_special(struct store_account *acc, uint32_t special_use,
			       struct store_mailbox *mb_r, const char **error_r);
/* The STORE_SPECIAL_* bit of an RFC 6154 attribute name ("\\Junk", any
 * case), or 0 when name is not one. */
uint32_t store_special_use_from_name(const char *name);

/* --- messages --- */

/* One message of a selected mailbox, as SELECT and change polling see it. */
struct store_msg_state {
	uint32_t uid;
	uint32_t flags;      /* STORE_FLAG_* */
	char *keywords;      /* space-separated, NULL when none */
	uint64_t modseq;
};

/* A selected mailbox's snapshot: every message in UID order. */
struct store_snapshot {
	struct store_mailbox mailbox;
	struct store_msg_state *msgs;
	size_t count;
};
void store_snapshot_free(struct store_snapshot *snap);

/* Reads a consistent snapshot of mailbox_id (one transaction) for SELECT /
 * EXAMINE.  Returns 1 with snap_r (store_snapshot_free), 0 when the mailbox
 * does not exist, -1. */
int store_mailbox_select(struct store_account *acc, int64_t mailbox_id,
			 struct store_snapshot *snap_r, const char **error_r);

/* What changed in a mailbox since a modseq: messages whose modseq is
 * higher (new or with changed flags, in UID order) and UIDs expunged with
 * a higher modseq (ascending).  highestmodseq_r is the mailbox's current
 * HIGHESTMODSEQ: poll again with it.  Used for untagged updates (NOOP,
 * IDLE) and QRESYNC.  Returns 1, 0 when the mailbox is gone, -1. */
struct store_changes {
	struct store_msg_state *changed;
	size_t changed_count;
	uint32_t *expunged;
	size_t expunged_count;
	uint64_t highestmodseq;
};
void store_changes_free(struct store_changes *ch);
int store_mailbox_changes(struct store_account *acc, int64_t mailbox_id, uint64_t since_modseq,
			  struct store_changes *ch_r, const char **error_r);

/* One message's metadata. */
struct store_message {
	int64_t id;
	int64_t mailbox_id;
	uint32_t uid;
	uint64_t modseq;
	uint64_t createseq;
	uint32_t flags;
	char *keywords;          /* space-separated, NULL when none */
	int64_t internal_date;   /* unix milliseconds (RFC 9051 INTERNALDATE) */
	int64_t save_date;       /* unix milliseconds (RFC 8514 SAVEDATE) */
	uint64_t size;           /* prefix_len + blob size (RFC822.SIZE) */
	size_t prefix_len;
	char *blob_key;
	char *message_id;        /* Message-ID header value, NULL when none */
	char *subject;           /* raw (undecoded) Subject header, NULL when none */
	char *envelope;          /* cached IMAP ENVELOPE text, NULL until cached */
	char *bodystructure;     /* cached BODYSTRUCTURE text, NULL until cached */
	bool expunged;           /* found in the expunged history (still readable
				  * until the last account reference drops) */
};
void store_message_clear(struct store_message *msg);
void store_messages_free(struct store_message **msgs, size_t count);

/* Reads one message's metadata by UID; a message expunged since (whose
 * blob is still there) is returned with expunged = true.  Returns 1, 0
 * when not found, -1. */
int store_message_get(struct store_account *acc, int64_t mailbox_id, uint32_t uid,
		      struct store_message *msg_r, const char **error_r);
/* Lists messages with uid >= first_uid in UID order, at most limit (paging:
 * call again with the last UID + 1).  Returns 0 with an array
 * (store_messages_free), or -1. */
int store_messages_list(struct store_account *acc, int64_t mailbox_id, uint32_t first_uid,
			size_t limit, struct store_message **msgs_r, size_t *count_r,
			const char **error_r);

/* Opens a message's content: *prefix_r gets a copy of the header prefix
 * (caller frees; NULL when empty), *fd_r a read-only fd of the blob (caller
 * closes).  The content is the prefix followed by the blob.  Returns 1, 0
 * when the message (or its blob) is gone, -1. */
int store_message_open(struct store_account *acc, const struct store_message *msg,
		       char **prefix_r, size_t *prefix_len_r, int *fd_r, const char **error_r);
/* Reads the whole content (prefix + blob) into memory when it is at most
 * max bytes.  Returns 1 with a NUL-terminated buffer (caller frees), 0 when
 * gone, -1 (also when larger than max). */
int store_message_read(struct store_account *acc, const struct store_message *msg, size_t max,
		       char **data_r, size_t *len_r, const char **error_r);
/* Stores the IMAP server's parsed ENVELOPE / BODYSTRUCTURE texts (either
 * may be NULL: unchanged).  Not a change: no modseq. */
int store_message_set_cache(struct store_account *acc, int64_t mailbox_id, uint32_t uid,
			    const char *envelope, const char *bodystructure,
			    const char **error_r);

/* --- adding messages --- */

struct store_append_result {
	uint32_t uidvalidity;
	uint32_t uid;
	uint64_t modseq;
};

struct store_append;  /* a message being written (streaming APPEND) */

/* Starts writing a new message's blob.  Returns 0 with *app_r (finish with
 * store_append_commit or store_append_abort), -1. */
int store_append_begin(struct store_account *acc, struct store_append **app_r,
		       const char **error_r);
int store_append_write(struct store_append *app, const void *data, size_t len,
		       const char **error_r);
/* Makes the blob durable, checks the quota, and adds the message to
 * mailbox_id with flags and keywords (space-separated, may be NULL;
 * invalid keywords are an error) and internal_date (unix ms; 0: now).
 * Frees the append (*app = NULL), also on failure, when nothing is left.
 * Returns 0 with result_r, -1 (STORE_ERR_OVERQUOTA, _TOOBIG, _NOTFOUND
 * for a mailbox that is gone, _TEMPORARY). */
int store_append_commit(struct store_append **app, int64_t mailbox_id, uint32_t flags,
			const char *keywords, int64_t internal_date,
			struct store_append_result *result_r, const char **error_r);
void store_append_abort(struct store_append **app);
/* The whole message in one call. */
int store_append(struct store_account *acc, int64_t mailbox_id, const void *data, size_t len,
		 uint32_t flags, const char *keywords, int64_t internal_date,
		 struct store_append_result *result_r, const char **error_r);

/* One recipient of a delivery (store_deliver.c; the NATS deliver request
 * maps onto it). */
struct store_deliver_rcpt {
	const char *mailbox;      /* NULL or "": INBOX; created when missing */
	/* STORE_SPECIAL_* (one bit), or 0: when set, the mailbox with that
	 * special-use attribute (the first by name), else INBOX; mailbox is
	 * not used.  Bits outside STORE_SPECIAL_* fail the recipient. */
	uint32_t special_use;
	const char *keywords;     /* space-separated, may be NULL */
	const void *prefix;       /* header prefix, may be NULL */
	size_t prefix_len;        /* <= STORE_PREFIX_MAX */
	/* result */
	int status;               /* 0 stored, -1 failed (kind in error_kind) */
	enum store_error_kind error_kind;
	char *error;              /* owned; NULL when stored */
	uint32_t uid;
	uint32_t uidvalidity;
	char *stored_mailbox;     /* owned; where it went */
};
/* Links blob_key (another owner's key, e.g. incoming/...) under the
 * account and adds one message per recipient in one transaction, each with
 * its own prefix.  Per-recipient failures (over quota) are reported in the
 * rcpts; the function returns -1 only when nothing could be done (account
 * gone, blob missing, I/O), with every rcpt marked failed.  Never returns
 * before the commit.  Frees results with store_deliver_rcpts_clear. */
int store_deliver(struct store_account *acc, const char *blob_key, int64_t received_ms,
		  struct store_deliver_rcpt *rcpts, size_t count, const char **error_r);
void store_deliver_rcpts_clear(struct store_deliver_rcpt *rcpts, size_t count);

/* --- changing messages --- */

enum store_flags_mode {
	STORE_FLAGS_SET,     /* FLAGS */
	STORE_FLAGS_ADD,     /* +FLAGS */
	STORE_FLAGS_REMOVE,  /* -FLAGS */
};

/* Changes flags and keywords of the given UIDs (ascending, unique; UIDs
 * that do not exist are skipped) of mailbox_id.  unchangedsince (RFC 7162
 * 3.1.3; 0: no condition): messages with a higher modseq are not changed
 * and their UIDs returned in *failed_r (caller frees; may be NULL when not
 * wanted).  Messages whose flags do not actually change keep their modseq.
 * Returns 0 with the new modseq in *modseq_r (0 when nothing changed), -1. */
int store_flags(struct store_account *acc, int64_t mailbox_id, const uint32_t *uids, size_t count,
		enum store_flags_mode mode, uint32_t flags, const char *keywords,
		uint64_t unchangedsince, uint64_t *modseq_r, uint32_t **failed_r,
		size_t *failed_count_r, const char **error_r);

/* UIDPLUS data (RFC 4315 COPYUID): source and destination UIDs pairwise. */
struct store_copy_result {
	uint32_t uidvalidity;    /* of the destination */
	uint32_t *src_uids;
	uint32_t *dst_uids;
	size_t count;
};
void store_copy_result_free(struct store_copy_result *res);
/* Copies the given UIDs (ascending; missing ones skipped) of src to dst,
 * keeping flags, keywords and internal date.  Checks the quota. */
int store_copy(struct store_account *acc, int64_t src_mailbox_id, const uint32_t *uids,
	       size_t count, int64_t dst_mailbox_id, struct store_copy_result *res_r,
	       const char **error_r);
/* Moves (RFC 6851): as copy, then expunges the sources, in one transaction. */
int store_move(struct store_account *acc, int64_t src_mailbox_id, const uint32_t *uids,
	       size_t count, int64_t dst_mailbox_id, struct store_copy_result *res_r,
	       const char **error_r);
/* Expunges messages with \Deleted: all of them (uids NULL) or those among
 * the given UIDs (UID EXPUNGE).  Returns 0 with the expunged UIDs
 * ascending in *expunged_r (caller frees; may be NULL) and their count. */
int store_expunge(struct store_account *acc, int64_t mailbox_id, const uint32_t *uids,
		  size_t count, uint32_t **expunged_r, size_t *expunged_count_r,
		  const char **error_r);

/* --- quota and consistency --- */

/* Usage: bytes of all messages; limit from domains.conf (0: unlimited). */
int store_quota(struct store_account *acc, uint64_t *used_r, uint64_t *limit_r,
		const char **error_r);
/* Recomputes every mailbox's counts, uidnext and highestmodseq bounds from
 * the messages and compares them with the kept values, and checks that
 * every message's blob exists.  Returns 0 when consistent, -1 with the
 * first difference in error_r. */
int store_account_check(struct store_account *acc, const char **error_r);

/* --- change notification --- */

enum store_change_kind {
	STORE_CHANGE_ADD,          /* messages added to mailbox */
	STORE_CHANGE_FLAGS,        /* flags/keywords changed */
	STORE_CHANGE_EXPUNGE,      /* messages expunged */
	STORE_CHANGE_MAILBOX_CREATE,
	STORE_CHANGE_MAILBOX_DELETE,
	STORE_CHANGE_MAILBOX_RENAME,
	STORE_CHANGE_MAILBOX_SUBSCRIBE,   /* subscribed flag or special-use changed */
};

struct store_change {
	enum store_change_kind kind;
	const char *account;
	int64_t mailbox_id;
	const char *mailbox;        /* current name (the new one for RENAME) */
	const char *old_name;       /* RENAME only */
	uint64_t modseq;            /* the change's modseq; 0 for mailbox changes */
	const struct store_msg_state *msgs;  /* ADD, FLAGS, EXPUNGE (flags unset) */
	size_t count;
};

/* Called after the change committed, on the thread that made it, without
 * the account's database lock held but under the subscriber-list lock:
 * it must be quick (queue the change, wake a session) and must not call
 * store_subscribe/unsubscribe.  Everything in change is valid only during
 * the call.  A session can always resynchronise with store_mailbox_changes. */
typedef void store_change_fn(void *ctx, const struct store_change *change);
struct store_subscription;
/* Subscribes to the changes of an open account.  Returns a handle
 * (free with store_unsubscribe). */
struct store_subscription *store_subscribe(struct store_account *acc, store_change_fn *fn,
					   void *ctx);
void store_unsubscribe(struct store_subscription **sub);

#endif
