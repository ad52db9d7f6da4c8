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

#endif
