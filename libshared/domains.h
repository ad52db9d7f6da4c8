/* domains: the dynamic configuration, domains.conf: domains (with DKIM
 * selectors), accounts with their addresses, and aliases.
 *
 * Loading validates everything: names, addresses (libshared/address.h),
 * that every address's domain is configured, that an address belongs to one
 * account or alias only, that references (account domain, alias members,
 * DKIM sign) exist.  Errors are "file:line: field: what", the field a path
 * such as account[mjl].address.
 *
 * The file is written only through mf_domains_edit (and the wrappers below):
 * under an exclusive lock on <path>.lock, re-read, edited as a conf tree so
 * that the admin's comments survive, validated fully, written atomically.
 *
 * A process keeps a current snapshot (mf_domains_current) that
 * mf_domains_reload swaps when the file changed; snapshots are immutable and
 * reference counted, so readers on any thread keep a consistent view.
 * See deploy/local/domains.conf.example for every key. */
#ifndef MF_DOMAINS_H
#define MF_DOMAINS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "conf.h"

#define MF_DOMAINS_ACCOUNT_NAME_MAX 64  /* bytes in an account name */
#define MF_DOMAINS_SEPARATOR_MAX 8      /* bytes in a catch-all separator */
#define MF_DOMAINS_TEXT_MAX 1024        /* description, full-name, login-disabled */
#define MF_DOMAINS_DKIM_HEADERS_MAX 64  /* header names in a selector's headers */

enum mf_dkim_algorithm {
	MF_DKIM_ED25519,  /* RFC 8463 */
	MF_DKIM_RSA,      /* rsa-sha256, RFC 6376 3.3.1 */
};

struct mf_dkim_selector {
	char *name;
	enum mf_dkim_algorithm algorithm;
	char *key_file;          /* resolved against the directory of domains.conf */
	char **headers;          /* header fields to sign; NULL: the signer's default */
	size_t headers_count;
	uint64_t expiration_ms;  /* signature lifetime (x= tag); 0: none */
	unsigned line;
};

struct mf_domain {
	char *name;               /* lower-case A-labels */
	char *name_unicode;       /* lower-case U-labels */
	char *description;        /* NULL: none */
	bool disabled;            /* recipients get temporary errors */
	char *catchall_separator; /* e.g. "+"; NULL: none */
	bool localpart_case_sensitive;
	struct mf_dkim_selector *selectors;
	size_t selectors_count;
	char **sign;              /* selector names to sign with, in order */
	size_t sign_count;
	unsigned sign_line;
	struct mf_route *routes;  /* for mail from this domain */
	size_t routes_count;
	unsigned line;
};

/* An address as configured, in canonical form. */
struct mf_domains_address {
	char *address;    /* "localpart@domain" (mf_address_format), "@domain" for a catch-all */
	char *localpart;  /* unquoted NFC; "" for a catch-all */
	char *domain;     /* lower-case A-labels */
	unsigned line;
};

/* --- outgoing routes and transports ---
 *
 *   transport NAME {
 *       smtp HOST:PORT          a smarthost (relay), opportunistic STARTTLS
 *     | submission HOST:PORT    a third party, STARTTLS required, AUTH
 *     | submissions HOST:PORT   a third party, implicit TLS, AUTH
 *     | socks5 HOST:PORT        direct delivery through a SOCKS5 proxy
 *       auth-user USER              smtp (optional), submission(s) (required)
 *       auth-password-file PATH     its password (first line), read per delivery
 *       auth-mechanism plain|login  default plain
 *       tls-verify yes|no           check the relay's certificate and name;
 *                                   default yes when authenticating
 *       tls-ca-file PATH            CAs for tls-verify; default the system's
 *       socks5-user USER            RFC 1929, optional
 *       socks5-password-file PATH
 *   }
 *   route [from-domain D] [to-domain D] [min-attempt N] transport NAME
 *
 * Routes are allowed at the top level and inside account and domain
 * blocks; for each attempt, the account's routes, then those of the
 * sender's domain, then the top-level ones are tried, the first match
 * wins; without a match the delivery is direct.  NAME "direct" is direct
 * delivery; "local" is the embedded default's loop-back. */
#define MF_DOMAINS_TRANSPORTS_MAX 64
#define MF_DOMAINS_ROUTES_MAX 256        /* in one block */
#define MF_DOMAINS_ROUTE_ATTEMPT_MAX 1000

enum mf_transport_kind {
	MF_TRANSPORT_SMTP,
	MF_TRANSPORT_SUBMISSION,
	MF_TRANSPORT_SUBMISSIONS,
	MF_TRANSPORT_SOCKS5,
};

enum mf_transport_auth {
	MF_TRANSPORT_AUTH_PLAIN,
	MF_TRANSPORT_AUTH_LOGIN,
};

struct mf_transport {
	char *name;
	enum mf_transport_kind kind;
	bool kind_set;
	struct mf_conf_hostport addr;   /* host name or IP literal */
	char *auth_user;                /* NULL: no AUTH */
	char *auth_password_file;       /* resolved path */
	enum mf_transport_auth auth_mechanism;
	bool tls_verify;                /* see tls_verify_set */
	bool tls_verify_set;            /* false: verify when authenticating */
	char *tls_ca_file;              /* NULL: the system's store */
	char *socks5_user;              /* NULL: no RFC 1929 authentication */
	char *socks5_password_file;
	unsigned line;
};

struct mf_route {
	char *from_domain;    /* lower-case A-labels; NULL: any */
	char *to_domain;
	unsigned min_attempt; /* 0: any attempt */
	char *transport;      /* a transport name, "direct" or "local" */
	unsigned line;
};

struct mf_account {
	char *name;
	char *domain;     /* the default domain, A-labels */
	unsigned domain_line;
	struct mf_domains_address *addresses;
	size_t addresses_count;
	char *full_name;  /* NULL: none */
	uint64_t quota;   /* bytes; 0: unlimited */
	uint64_t max_outgoing_messages_per_day;      /* 0: unlimited; default 1000 */
	uint64_t max_first_time_recipients_per_day;  /* 0: unlimited; default 200 */
	char *login_disabled;  /* NULL: logins allowed; else the message shown */
	uint64_t keep_retired_messages_ms;  /* queue history; 0: the queue's default */
	struct mf_route *routes;
	size_t routes_count;
	unsigned line;
};

struct mf_alias {
	struct mf_domains_address address;
	struct mf_domains_address *members;  /* addresses of accounts */
	size_t members_count;
	bool post_public;     /* anyone may send to the alias, not only members */
	bool list_members;    /* members may see the other members */
	bool allow_msg_from;  /* members may use the alias as From address */
	unsigned line;
};

struct mf_domains_index_entry;

struct mf_domains {
	char *path;
	struct mf_domain *domains;
	size_t domains_count;
	struct mf_account *accounts;
	size_t accounts_count;
	struct mf_alias *aliases;
	size_t aliases_count;
	struct mf_transport *transports;
	size_t transports_count;
	struct mf_route *routes;  /* top-level */
	size_t routes_count;
	/* private */
	struct mf_domains_index_entry *index;  /* addresses, sorted by key */
	size_t index_count;
	unsigned refs;
};

/* Loads and validates path.  Returns 0 and a snapshot with one reference
 * (release with mf_domains_unref), or -1 with error_r: every error found,
 * one per line, in a per-thread slot valid until this thread calls an
 * mf_domains function or mf_config_load again. */
int mf_domains_load(const char *path, struct mf_domains **domains_r, const char **error_r);
/* The same from memory; name is used in errors and its directory as the base
 * of relative paths. */
int mf_domains_load_buf(const char *name, const char *data, size_t len,
			struct mf_domains **domains_r, const char **error_r);
/* The same from a parsed tree (not modified, not kept). */
int mf_domains_load_conf(const struct mf_conf *conf, const char *path,
			 struct mf_domains **domains_r, const char **error_r);
/* Adds a reference; returns d. */
struct mf_domains *mf_domains_ref(struct mf_domains *d);
/* Drops a reference (freeing on the last) and sets *d to NULL. */
void mf_domains_unref(struct mf_domains **d);

/* --- lookups (the results point into d) --- */

/* name in lower-case A-labels (mf_domain_parse gives that). NULL: not ours. */
const struct mf_domain *mf_domains_find_domain(const struct mf_domains *d, const char *name);
const struct mf_account *mf_domains_find_account(const struct mf_domains *d, const char *name);

enum mf_domains_dest_kind {
	MF_DOMAINS_DEST_NONE,     /* no such address */
	MF_DOMAINS_DEST_ACCOUNT,
	MF_DOMAINS_DEST_ALIAS,
};

struct mf_domains_dest {
	enum mf_domains_dest_kind kind;
	const struct mf_domain *domain;    /* NULL: the domain is not configured */
	const struct mf_account *account;  /* kind ACCOUNT */
	const struct mf_alias *alias;      /* kind ALIAS */
	const struct mf_domains_address *matched;  /* the configured address that matched */
};

/* Resolves localpart (unquoted NFC) @ domain (lower-case A-labels): the
 * exact address, then with the domain's catch-all separator and what
 * follows stripped ("mjl+tag" -> "mjl"), then the domain's catch-all
 * ("@domain").  Localparts compare case-insensitively unless the domain is
 * localpart-case-sensitive.  Returns dest_r->kind. */
enum mf_domains_dest_kind mf_domains_resolve(const struct mf_domains *d, const char *localpart,
					     const char *domain, struct mf_domains_dest *dest_r);
/* Parses address (mf_address_parse) and resolves it.  Returns 0, or -1 with
 * error_r (from mf_errorf) when the address does not parse. */
int mf_domains_resolve_address(const struct mf_domains *d, const char *address,
			       struct mf_domains_dest *dest_r, const char **error_r);

const struct mf_transport *mf_domains_find_transport(const struct mf_domains *d,
						     const char *name);
/* The route for one delivery attempt (1 for the first): the account's
 * routes (account may be NULL or unknown), then from_domain's, then the
 * top-level ones; domains lower-case A-labels.  Returns the first match or
 * NULL (direct delivery). */
const struct mf_route *mf_domains_route(const struct mf_domains *d, const char *account,
					const char *from_domain, const char *to_domain,
					unsigned attempt);

/* --- the process-wide current snapshot --- */

/* Returns the current snapshot with a reference the caller drops with
 * mf_domains_unref, or NULL before the first successful reload.  Thread-safe. */
struct mf_domains *mf_domains_current(void);
/* Loads path and, when valid, makes it current (the previous snapshot lives
 * on while references to it are held).  Returns 0, or -1 with error_r as
 * mf_domains_load, leaving the current snapshot in place. */
int mf_domains_reload(const char *path, const char **error_r);
/* Drops the process's reference to the current snapshot (at exit). */
void mf_domains_clear_current(void);

/* --- editing --- */

/* Changes the tree; returns 0, or -1 with error_r (any lifetime until
 * mf_domains_edit returns). */
typedef int mf_domains_edit_fn(struct mf_conf *conf, void *ctx, const char **error_r);

/* Locks <path>.lock (flock, exclusive, waits), reads path (a missing file
 * is an empty one), calls fn, validates the result as mf_domains_load
 * would, and replaces path atomically.  Returns 0, or -1 with error_r (as
 * mf_domains_load) and path unchanged; line numbers in validation errors
 * are those of the edited text, which was not written. */
int mf_domains_edit(const char *path, mf_domains_edit_fn *fn, void *ctx, const char **error_r);

/* Edits of a tree, for use inside an edit_fn; several may be combined in one
 * edit.  Each returns 0, or -1 with error_r (from mf_errorf) when its target
 * is missing or already there; the full validation happens afterwards. */
int mf_domains_tree_add_domain(struct mf_conf *conf, const char *domain, const char **error_r);
/* Removing a domain that accounts or aliases still use fails validation. */
int mf_domains_tree_remove_domain(struct mf_conf *conf, const char *domain, const char **error_r);
/* Adds "account name { domain D  address A }", D the domain of address. */
int mf_domains_tree_add_account(struct mf_conf *conf, const char *name, const char *address,
				const char **error_r);
int mf_domains_tree_remove_account(struct mf_conf *conf, const char *name, const char **error_r);
int mf_domains_tree_add_address(struct mf_conf *conf, const char *account, const char *address,
				const char **error_r);
/* Removing an account's last address fails validation: accounts without an
 * address cannot log in or receive mail. */
int mf_domains_tree_remove_address(struct mf_conf *conf, const char *account,
				   const char *address, const char **error_r);

/* One edit each through mf_domains_edit; return as mf_domains_edit. */
int mf_domains_add_domain(const char *path, const char *domain, const char **error_r);
int mf_domains_remove_domain(const char *path, const char *domain, const char **error_r);
int mf_domains_add_account(const char *path, const char *name, const char *address,
			   const char **error_r);
int mf_domains_remove_account(const char *path, const char *name, const char **error_r);
int mf_domains_add_address(const char *path, const char *account, const char *address,
			   const char **error_r);
int mf_domains_remove_address(const char *path, const char *account, const char *address,
			      const char **error_r);

#endif
