/* storeclient: calls of the account store API (proto/store.proto, served by
 * the imap service) for other services and the CLI: deliver, authenticate,
 * set a password, create and remove an account's store.
 *
 * Every call sends one request on store.v1.<op>.<account> and waits up to
 * timeout_ms.  Each returns 0 when the store answered OK, or -1 with the
 * status in *status_r (TEMPORARY: no answer, store busy or failing, try
 * later; PERMANENT: the store refused, e.g. "no such account") and the
 * store's or the bus's message in error_r (mf_errorf text).  A caller maps
 * TEMPORARY to a temporary protocol error: never report mail as stored
 * unless the call returned 0 and the recipient's status is OK. */
#ifndef MF_STORECLIENT_H
#define MF_STORECLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bus.h"

/* Recipients in one deliver request (the store's limit). */
#define MF_STORECLIENT_RECIPIENTS_MAX 1000

/* One recipient of a delivery: inputs, then the store's answer. */
struct mf_storeclient_rcpt {
	const char *address;             /* canonical recipient address */
	const char *mailbox;             /* NULL or "": INBOX */
	const char *const *keywords;     /* may be NULL */
	size_t keywords_count;
	const void *header_prefix;       /* e.g. "Delivered-To: ...\r\n"; may be NULL */
	size_t header_prefix_len;
	/* filled by mf_storeclient_deliver */
	enum mf_bus_status status;       /* OK: stored, durably */
	unsigned smtp_code;              /* 250, 452, 552, 451, ... */
	char enhanced_code[16];          /* "2.0.0", "4.2.2", ... */
	char *message;                   /* owned; free with mf_storeclient_rcpts_clear */
	char *stored_mailbox;            /* owned; "" unless stored */
	uint32_t uid;
};

/* Asks the store to deliver blob_key (the caller's key, e.g.
 * "incoming/...") to recipients of account.  On 0 every rcpt has its own
 * status (the caller then deletes its key once no recipient needs a retry);
 * on -1 every rcpt carries the request's status and message. */
int mf_storeclient_deliver(struct mf_bus *bus, const char *cid, const char *account,
			   const char *blob_key, const char *message_id, const char *mail_from,
			   int64_t received_unix_ms, struct mf_storeclient_rcpt *rcpts,
			   size_t count, int64_t timeout_ms, enum mf_bus_status *status_r,
			   const char **error_r);
/* Frees the result strings of rcpts. */
void mf_storeclient_rcpts_clear(struct mf_storeclient_rcpt *rcpts, size_t count);

struct mf_storeclient_auth {
	const char *login;         /* as the client gave it */
	const void *password;
	size_t password_len;
	const char *protocol;      /* "imap", "submission", "web" */
	const char *mechanism;     /* "PLAIN", ... */
	const char *remote_ip;
	const char *tls;           /* "" for none */
};

/* Verifies credentials against account's store.  Returns 0 with *ok_r
 * (false: wrong credentials or login disabled) and, when the store gave
 * one, the text to show in *message_r (caller frees; NULL when none). */
int mf_storeclient_authenticate(struct mf_bus *bus, const char *cid, const char *account,
				const struct mf_storeclient_auth *auth, int64_t timeout_ms,
				bool *ok_r, char **message_r, enum mf_bus_status *status_r,
				const char **error_r);
/* Sets the account's password (the store hashes it). */
int mf_storeclient_set_password(struct mf_bus *bus, const char *cid, const char *account,
				const void *password, size_t len, int64_t timeout_ms,
				enum mf_bus_status *status_r, const char **error_r);
/* Creates the account's store (it must be in domains.conf); *created_r is
 * false when it existed already. */
int mf_storeclient_create_account(struct mf_bus *bus, const char *cid, const char *account,
				  int64_t timeout_ms, bool *created_r,
				  enum mf_bus_status *status_r, const char **error_r);
/* Removes the account's store (it must no longer be in domains.conf);
 * *removed_r is false when there was none. */
int mf_storeclient_remove_account(struct mf_bus *bus, const char *cid, const char *account,
				  int64_t timeout_ms, bool *removed_r,
				  enum mf_bus_status *status_r, const char **error_r);

/* Asks the store to check the account's kept counts and blobs.  Returns 0
 * with *consistent_r and, when not, the first problem in *problem_r
 * (caller frees; NULL when consistent). */
int mf_storeclient_check_account(struct mf_bus *bus, const char *cid, const char *account,
				 int64_t timeout_ms, bool *consistent_r, char **problem_r,
				 enum mf_bus_status *status_r, const char **error_r);

/* --- login credentials, attempts, TLS public keys (issue 7) --- */

struct mf_sasl_account;
struct mf_sasl_backend;

/* Fetches SASL material for login (which must map to account) from the
 * store: kind "scram-sha-1", "scram-sha-256", "cram-md5", or "account"
 * (just the mapping).  Returns 0 with *found_r (false: unknown login or no
 * material of that kind) and, when found, a_r filled as sasl.h's backend
 * lookup wants it (account, disabled, scram/cram; clear with
 * mf_sasl_account_clear); or -1 with status and error. */
int mf_storeclient_credentials(struct mf_bus *bus, const char *cid, const char *account,
			       const char *login, const char *kind, int64_t timeout_ms,
			       bool *found_r, struct mf_sasl_account *a_r,
			       enum mf_bus_status *status_r, const char **error_r);

/* One login attempt (store.h struct store_login_attempt over the bus).
 * For recording, the times and count are ignored (the store's clock);
 * lists fill them and own the strings. */
struct mf_storeclient_login_attempt {
	int64_t first_ms, last_ms;
	uint64_t count;
	const char *protocol, *mechanism, *login, *remote_ip, *local_ip;
	const char *tls, *tls_pubkey, *client_id, *result;
};
int mf_storeclient_login_attempt(struct mf_bus *bus, const char *cid, const char *account,
				 const struct mf_storeclient_login_attempt *a, int64_t timeout_ms,
				 enum mf_bus_status *status_r, const char **error_r);
/* Most recent first, at most limit (0: all kept). */
int mf_storeclient_login_attempts(struct mf_bus *bus, const char *cid, const char *account,
				  uint32_t limit, int64_t timeout_ms,
				  struct mf_storeclient_login_attempt **list_r, size_t *count_r,
				  enum mf_bus_status *status_r, const char **error_r);
void mf_storeclient_login_attempts_free(struct mf_storeclient_login_attempt **list,
					size_t count);

struct mf_storeclient_tls_pubkey {
	char *fingerprint;       /* hex SHA-256 of the DER SubjectPublicKeyInfo */
	char *name;
	unsigned char *der;
	size_t der_len;
	char *login_address;
	bool no_imap_preauth;
	int64_t created_ms;
	char *account;           /* lookup only */
};
void mf_storeclient_tls_pubkey_clear(struct mf_storeclient_tls_pubkey *k);
void mf_storeclient_tls_pubkeys_free(struct mf_storeclient_tls_pubkey **keys, size_t count);
/* Registers a DER SubjectPublicKeyInfo for account; login_address must be
 * one of the account's addresses.  Returns 0 with *fingerprint_r (caller
 * frees; may be NULL) or -1 (PERMANENT: already registered, bad key). */
int mf_storeclient_tls_pubkey_add(struct mf_bus *bus, const char *cid, const char *account,
				  const char *name, const void *der, size_t der_len,
				  const char *login_address, bool no_imap_preauth,
				  int64_t timeout_ms, char **fingerprint_r,
				  enum mf_bus_status *status_r, const char **error_r);
int mf_storeclient_tls_pubkey_list(struct mf_bus *bus, const char *cid, const char *account,
				   int64_t timeout_ms, struct mf_storeclient_tls_pubkey **keys_r,
				   size_t *count_r, enum mf_bus_status *status_r,
				   const char **error_r);
int mf_storeclient_tls_pubkey_remove(struct mf_bus *bus, const char *cid, const char *account,
				     const char *fingerprint, int64_t timeout_ms, bool *removed_r,
				     enum mf_bus_status *status_r, const char **error_r);
/* Finds the account of a key by fingerprint (store.v1.tlspubkey.lookup).
 * Returns 0 with *found_r and, when found, key_r (clear it), or -1. */
int mf_storeclient_tls_pubkey_lookup(struct mf_bus *bus, const char *cid,
				     const char *fingerprint, int64_t timeout_ms, bool *found_r,
				     struct mf_storeclient_tls_pubkey *key_r,
				     enum mf_bus_status *status_r, const char **error_r);

/* Reads (set false) or sets and reads (set true) the account's credential
 * options: CRAM-MD5 material kept, generated passwords only.  Returns 0
 * with the options now in effect, or -1. */
int mf_storeclient_credential_options(struct mf_bus *bus, const char *cid, const char *account,
				      bool set, bool cram_md5_allowed, bool generated_only,
				      int64_t timeout_ms, bool *cram_md5_allowed_r,
				      bool *generated_only_r, enum mf_bus_status *status_r,
				      const char **error_r);

/* A sasl.h backend answering through the store API, for services that do
 * not own the store (submission, web).  Login names map to accounts
 * through the current domains.conf (mf_domains_current) as for
 * authenticate: a configured address (not a catch-all) or an account
 * name.  ctx must outlive the exchange. */
struct mf_storeclient_sasl {
	struct mf_bus *bus;
	const char *cid;
	int64_t timeout_ms;
	const char *protocol;    /* for the store's authenticate log line */
	const char *mechanism;
	const char *remote_ip;
	const char *tls;
};
void mf_storeclient_sasl_backend(struct mf_storeclient_sasl *ctx, struct mf_sasl_backend *be_r);
/* The account login names (newly allocated), or NULL. */
char *mf_storeclient_login_account(const char *login);

#endif
