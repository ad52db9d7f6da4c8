/* imap_session: one IMAP connection: the state machine (RFC 9051 3: not
 * authenticated, authenticated, selected, logout), the command loop with
 * literals, the command table, buffered output, and untagged updates for
 * the selected mailbox from the store's change notifications.
 *
 * A session runs on its connection's thread.  The only thing another
 * thread touches is the "changed" flag the store's change callback sets. */
#ifndef IMAP_SESSION_H
#define IMAP_SESSION_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "imap_metrics.h"
#include "imap_parser.h"
#include "imap_pool.h"
#include "net.h"
#include "ratelimit.h"
#include "store.h"

struct mf_authlimit;

/* Idle time before the server logs a client out: at least 30 minutes once
 * authenticated (RFC 9051 5.4), short before. */
#define IMAP_AUTOLOGOUT_MS (30u * 60 * 1000)
#define IMAP_PREAUTH_TIMEOUT_MS (60u * 1000)
/* Per write: a client that does not read its responses is dropped. */
#define IMAP_WRITE_TIMEOUT_MS (5u * 60 * 1000)
/* How often IDLE looks for changes (the callback flag makes it cheap). */
#define IMAP_IDLE_POLL_MS 200
/* Failed logins before the connection is dropped.  Failures per address,
 * network and login are throttled across replicas by authlimit.h
 * (ratelimit { auth-failures-* }): slowed, then refused. */
#define IMAP_AUTH_FAILURES_MAX 3
/* Unknown or invalid commands in a row before the connection is dropped. */
#define IMAP_BAD_COMMANDS_MAX 20
/* Buffered output flushed when it grows past this. */
#define IMAP_OUT_FLUSH 65536
/* Connections per account and per IP (all, and before login). */
#define IMAP_CONNS_PER_ACCOUNT_MAX 50      /* when max-connections-per-account is 0 */
#define IMAP_CONNS_PER_IP_MAX 100         /* when limits.max-connections-per-ip is 0 */
/* Before login, an address may hold 1/IMAP_CONNS_PREAUTH_SHARE of its
 * connections (10 of the default 20). */
#define IMAP_CONNS_PREAUTH_SHARE 2
/* Largest APPEND when the config sets no max-message-size. */
#define IMAP_APPEND_MAX_DEFAULT (50u * 1024 * 1024)
/* Messages in a mailbox that a session keeps in memory (SELECT). */
#define IMAP_SELECT_MESSAGES_MAX 10000000
/* ID parameters (RFC 2971 3.3: at most 30 pairs). */
#define IMAP_ID_PAIRS_MAX 30

enum imap_state {
	IMAP_STATE_NOAUTH = 1 << 0,
	IMAP_STATE_AUTH = 1 << 1,
	IMAP_STATE_SELECTED = 1 << 2,
	IMAP_STATE_LOGOUT = 1 << 3,
};

/* Process-wide settings and shared state for sessions. */
struct imap_server {
	struct store *store;
	const char *hostname;
	bool allow_plaintext_auth;   /* LOGIN/AUTHENTICATE without TLS */
	bool cram_md5;               /* offer AUTHENTICATE CRAM-MD5 */
	bool tls_available;          /* STARTTLS can be offered */
	uint64_t append_max;         /* APPENDLIMIT */
	unsigned conns_per_ip;       /* all connections from one address */
	unsigned conns_per_account;
	struct imap_conn_counts *counts;
	struct imap_metrics *metrics;    /* may be NULL */
	struct mf_ratelimit *ratelimit;  /* for authlimit; may be NULL */
	struct mf_authlimit *authlimit;  /* login throttling (authlimit.h); may be NULL */
};

/* A message of the selected mailbox as this session knows it. */
struct imap_msg {
	uint32_t uid;
	uint32_t flags;
	char *keywords;      /* malloc'd, NULL when none */
	uint64_t modseq;
};

struct imap_selected {
	int64_t id;
	char *name;          /* UTF-8 store name, malloc'd */
	bool readonly;
	uint32_t uidvalidity;
	uint32_t uidnext;
	uint64_t highestmodseq;
	struct imap_msg *msgs;
	size_t count, cap;
	/* SEARCHRES (RFC 5182): the saved result, UIDs ascending. */
	uint32_t *saved;
	size_t saved_count;
	bool saved_valid;
};

struct imap_session {
	struct mf_conn *conn;
	struct imap_server *server;
	enum imap_state state;
	struct imap_pool *pool;       /* per command, cleared after each */
	struct imap_parser *parser;
	struct mf_buf out;
	bool write_failed;
	unsigned read_timeout_ms;     /* restored after each write */
	const char *cid;

	bool rev2;                    /* ENABLE IMAP4rev2 */
	bool utf8;                    /* ENABLE UTF8=ACCEPT, or rev2 */
	unsigned auth_failures;
	unsigned bad_commands;
	bool counted_ip;              /* holds a per-IP preauth slot */

	char *account;                /* logged-in account name */
	char *login;                  /* as given, for logs */
	/* TLS client certificate (imap_auth_tls_setup): the account its
	 * registered public key belongs to, or NULL. */
	char *cert_account;
	char *cert_login;             /* the key's login address */
	char *cert_fp;                /* the key's fingerprint, or NULL */
	bool cert_preauth;            /* PREAUTH at greeting (not no_imap_preauth) */
	char *client_id;              /* IMAP ID name/version, for login attempts */
	struct store_account *acc;
	struct store_subscription *sub;
	atomic_bool changed;          /* set by the store's change callback */

	bool selected;
	struct imap_selected sel;

	/* The command being run. */
	const char *tag;
	bool uid;                     /* UID FETCH/STORE/SEARCH/COPY/MOVE/EXPUNGE */
	const char *reply;            /* "OK ..." set by imap_ok/no/bad; NULL once sent */
	bool reply_bad;
};

/* Command handlers return 0 (the tagged reply has been written) or -1 to
 * end the connection (a BYE has been written when one is due). */
typedef int imap_cmd_fn(struct imap_session *s, const struct imap_command *cmd);

/* Serves one connection until it ends (the net handler). */
void imap_session_run(struct mf_conn *conn, struct imap_server *server);

/* --- output (buffered; flushed at the end of each command) --- */

void imap_out(struct imap_session *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void imap_out_raw(struct imap_session *s, const void *data, size_t len);
/* A string as quoted or literal, whichever it needs (RFC 9051 4.3). */
void imap_out_string(struct imap_session *s, const char *str, size_t len);
/* NIL when str is NULL. */
void imap_out_nstring(struct imap_session *s, const char *str);
/* A mailbox name from the store, in modified UTF-7 unless UTF-8 is on. */
void imap_out_mailbox(struct imap_session *s, const char *name);
/* Flags and keywords as a parenthesised list. */
void imap_out_flags(struct imap_session *s, uint32_t flags, const char *keywords);
/* Writes the buffered output; returns -1 when the connection failed. */
int imap_flush(struct imap_session *s);
/* Sets how long reads wait (writes always get IMAP_WRITE_TIMEOUT_MS). */
void imap_set_read_timeout(struct imap_session *s, unsigned ms);

/* Tagged replies for the current command; always return 0. */
int imap_ok(struct imap_session *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int imap_no(struct imap_session *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int imap_bad(struct imap_session *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A NO for a failed store call: the response code follows the error kind
 * ([NONEXISTENT], [ALREADYEXISTS], [OVERQUOTA], [UNAVAILABLE], ...). */
int imap_no_store(struct imap_session *s, const char *what, const char *error);

/* Converts a mailbox argument to the store's UTF-8 name (modified UTF-7
 * decoding when UTF-8 is not enabled, "INBOX" case-folded, checks on
 * "#" and empty names).  Returns 0 with *name_r from the command pool, or
 * -1 with error_r (the NO text). */
int imap_mailbox_arg(struct imap_session *s, const struct imap_arg *arg, char **name_r,
		     const char **error_r);
/* Parses a flag list (or a single flag) into system-flag bits and a
 * space-separated keyword string (pool).  Returns 0 or -1 with error_r. */
int imap_flags_arg(struct imap_session *s, const struct imap_arg *arg, uint32_t *flags_r,
		   char **keywords_r, const char **error_r);

/* --- the selected mailbox --- */

/* Sends pending untagged updates (EXISTS, EXPUNGE, FETCH FLAGS) from the
 * store; allow_expunge false defers everything (RFC 9051 7.5.1: no EXPUNGE
 * during FETCH/STORE/SEARCH by sequence number).  Returns -1 when the
 * connection must end. */
int imap_session_updates(struct imap_session *s, bool allow_expunge);
/* Makes snap the selected mailbox (SELECT/EXAMINE). */
int imap_session_load_snapshot(struct imap_session *s, const struct store_snapshot *snap,
			       bool readonly);
/* Leaves the selected mailbox. */
void imap_session_unselect(struct imap_session *s);
/* Removes message at index i (0-based) after an expunge was told. */
void imap_selected_remove(struct imap_selected *sel, size_t i);
/* Index of uid in the selected mailbox, or -1. */
ssize_t imap_selected_find(const struct imap_selected *sel, uint32_t uid);

/* Resolves a sequence set argument ("$" included) to indexes of selected
 * messages (ascending, pool).  uid chooses UIDs or sequence numbers.
 * Returns 0 or -1 with error_r (the BAD text). */
int imap_resolve_set(struct imap_session *s, const struct imap_arg *arg, bool uid,
		     size_t **idx_r, size_t *count_r, const char **error_r);

/* --- command handlers (imap_cmd_*.c) --- */

imap_cmd_fn imap_cmd_capability, imap_cmd_noop, imap_cmd_logout, imap_cmd_starttls,
	imap_cmd_login, imap_cmd_authenticate, imap_cmd_enable, imap_cmd_id,
	imap_cmd_namespace,
	imap_cmd_select, imap_cmd_examine, imap_cmd_create, imap_cmd_delete, imap_cmd_rename,
	imap_cmd_subscribe, imap_cmd_unsubscribe, imap_cmd_list, imap_cmd_lsub,
	imap_cmd_status, imap_cmd_append, imap_cmd_idle, imap_cmd_close, imap_cmd_unselect,
	imap_cmd_expunge, imap_cmd_search, imap_cmd_fetch, imap_cmd_store, imap_cmd_copy,
	imap_cmd_move, imap_cmd_check;

/* The CAPABILITY list for the session's state (no "CAPABILITY" word). */
const char *imap_capabilities(struct imap_session *s);
/* After the TLS handshake (implicit TLS at connect, or STARTTLS): looks the
 * client certificate's public key up in the store. */
void imap_auth_tls_setup(struct imap_session *s);
/* At the greeting: logs in with a registered client key (RFC 9051 7.1.4
 * PREAUTH).  Returns 1 when logged in, 0 when not. */
int imap_auth_preauth(struct imap_session *s);

/* Logs in as account (after credentials were verified): opens the store,
 * counts the connection, subscribes to changes.  Returns 0, or -1 with the
 * NO text in error_r. */
int imap_session_login(struct imap_session *s, const char *account, const char *login,
		       const char **error_r);

/* Per-IP and per-account connection counting. */
struct imap_conn_counts *imap_conn_counts_create(void);
void imap_conn_counts_free(struct imap_conn_counts **counts);
/* Returns true and counts key when it has fewer than max; false otherwise. */
bool imap_conn_counts_take(struct imap_conn_counts *counts, const char *key, unsigned max);
void imap_conn_counts_release(struct imap_conn_counts *counts, const char *key);

#endif
