/* sasl: SASL mechanisms (RFC 4422) shared by submission, imap and the web
 * pages (server side), and by the delivery service's submission transport
 * (client side).  Bytes in and out are the decoded SASL messages: the
 * protocol does the base64 (mf_sasl_base64_*), the "+ "/"334 " framing, the
 * "*" abort and SASL-IR.
 *
 * Server mechanisms, strongest first (the order of mf_sasl_server_mechs):
 *   EXTERNAL             TLS client certificate (only its public key counts;
 *                        offered when the caller found an account for it)
 *   SCRAM-SHA-256-PLUS   RFC 7677 + channel binding (RFC 5802 6, 5929, 9266)
 *   SCRAM-SHA-1-PLUS
 *   SCRAM-SHA-256        RFC 7677
 *   SCRAM-SHA-1          RFC 5802
 *   CRAM-MD5             RFC 2195 (only when enabled)
 *   PLAIN                RFC 4616 \ only over TLS unless
 *   LOGIN                          / allow_plaintext_password
 *
 * Credentials never pass through this module's memory longer than one step:
 * the caller's backend (struct mf_sasl_backend) verifies plain passwords
 * and hands out SCRAM / CRAM-MD5 material for a login name; imap calls its
 * store directly, other services the store API (storeclient.h).  Login
 * names are brought to NFC and passwords through PRECIS OpaqueString
 * (precis.h) before they reach the backend.
 *
 * An unknown login gets a SCRAM exchange with a made-up salt derived from
 * the name and a per-process secret, so the answer to an unknown name looks
 * like the answer to a wrong password (RFC 5802 5.1 "e=unknown-user" is
 * never sent). */
#ifndef MF_SASL_H
#define MF_SASL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

/* Limits on client messages; an exchange is refused past them. */
#define MF_SASL_MESSAGE_MAX 4096    /* one decoded client message */
#define MF_SASL_LOGIN_MAX 512       /* login name / authzid bytes */
#define MF_SASL_PASSWORD_MAX 1024   /* password bytes (as password.h) */
#define MF_SASL_STEPS_MAX 4         /* client messages in one exchange */
#define MF_SASL_NONCE_MAX 256       /* client nonce bytes */
/* SCRAM material. */
#define MF_SASL_SALT_MAX 64
#define MF_SASL_KEY_MAX 32          /* SHA-256 output */
#define MF_SASL_SCRAM_ITERATIONS 4096   /* RFC 7677 4: at least 4096 */
#define MF_SASL_SCRAM_ITERATIONS_MAX 1000000   /* from servers, client side */
#define MF_SASL_SALT_LEN 16
#define MF_SASL_CB_MAX 64           /* channel binding data (tls.h MF_TLS_CB_MAX) */
#define MF_SASL_MECHS_MAX 160       /* space-separated list of every mechanism */

enum mf_sasl_mech {
	MF_SASL_EXTERNAL,
	MF_SASL_SCRAM_SHA_256_PLUS,
	MF_SASL_SCRAM_SHA_1_PLUS,
	MF_SASL_SCRAM_SHA_256,
	MF_SASL_SCRAM_SHA_1,
	MF_SASL_CRAM_MD5,
	MF_SASL_PLAIN,
	MF_SASL_LOGIN,
	MF_SASL_MECH_COUNT,
};

enum mf_sasl_hash {
	MF_SASL_SHA1,
	MF_SASL_SHA256,
};

/* Returns the IANA name ("SCRAM-SHA-256-PLUS"); static. */
const char *mf_sasl_mech_name(enum mf_sasl_mech mech);
/* Looks a mechanism up by name (case-insensitive, len bytes).  Returns 0
 * with *mech_r, or -1 when unknown. */
int mf_sasl_mech_parse(const char *name, size_t len, enum mf_sasl_mech *mech_r);

/* --- SCRAM and CRAM-MD5 material (what the store keeps) --- */

struct mf_sasl_scram {
	enum mf_sasl_hash hash;
	unsigned char salt[MF_SASL_SALT_MAX];
	size_t salt_len;
	uint32_t iterations;
	unsigned char stored_key[MF_SASL_KEY_MAX];
	unsigned char server_key[MF_SASL_KEY_MAX];
};

/* The HMAC-MD5 inner and outer MD5 states after one block of the key
 * XOR ipad / opad (RFC 2104): enough to answer CRAM-MD5 without the
 * password, and password-equivalent, so only kept for accounts that
 * allow CRAM-MD5. */
struct mf_sasl_cram {
	uint32_t inner[4];
	uint32_t outer[4];
};

/* Derives SCRAM material from a password already normalised with
 * mf_precis_password, with a new random salt (MF_SASL_SALT_LEN bytes) and
 * MF_SASL_SCRAM_ITERATIONS.  Returns 0 or -1 with error_r. */
int mf_sasl_scram_derive(enum mf_sasl_hash hash, const char *password, size_t len,
			 struct mf_sasl_scram *scram_r, const char **error_r);
/* The same with a given salt and iteration count (tests, interop). */
int mf_sasl_scram_derive_salt(enum mf_sasl_hash hash, const char *password, size_t len,
			      const unsigned char *salt, size_t salt_len, uint32_t iterations,
			      struct mf_sasl_scram *scram_r, const char **error_r);
/* Text form for storage: "<salt b64> <iterations> <stored-key b64>
 * <server-key b64>".  Returns a new string (caller frees). */
char *mf_sasl_scram_format(const struct mf_sasl_scram *scram);
/* Parses the text form for hash.  Returns 0 or -1 with error_r. */
int mf_sasl_scram_parse(enum mf_sasl_hash hash, const char *text,
			struct mf_sasl_scram *scram_r, const char **error_r);
/* Derives CRAM-MD5 material from a normalised password. */
void mf_sasl_cram_derive(const char *password, size_t len, struct mf_sasl_cram *cram_r);
/* 32 bytes, big-endian words inner then outer, for a BLOB column. */
#define MF_SASL_CRAM_BYTES 32
void mf_sasl_cram_pack(const struct mf_sasl_cram *cram, unsigned char out[MF_SASL_CRAM_BYTES]);
int mf_sasl_cram_unpack(const unsigned char *in, size_t len, struct mf_sasl_cram *cram_r);

/* --- base64 (RFC 4648 4, as SASL profiles use it) --- */

/* Returns a new NUL-terminated encoding (caller frees). */
char *mf_sasl_base64_encode(const void *data, size_t len);
/* Decodes len bytes of strict base64 (padding required, no whitespace)
 * into a new buffer (caller frees; NUL-terminated for convenience).
 * Returns 0 with *out_r / *out_len_r, or -1 when malformed. */
int mf_sasl_base64_decode(const char *s, size_t len, unsigned char **out_r, size_t *out_len_r);

/* --- the TLS facts an exchange needs --- */

struct mf_sasl_tls {
	bool active;                       /* TLS on this connection */
	unsigned char unique[MF_SASL_CB_MAX];   /* tls-unique, RFC 5929 3 */
	size_t unique_len;                 /* 0: not defined (TLS 1.3) */
	unsigned char exporter[MF_SASL_CB_MAX]; /* tls-exporter, RFC 9266 */
	size_t exporter_len;               /* 0: not defined */
};

/* The fingerprint that names a TLS client public key in the store:
 * lower-case hex SHA-256 of the DER SubjectPublicKeyInfo (from
 * mf_tls_peer_public_key), 64 characters.  Returns a new string. */
char *mf_sasl_pubkey_fingerprint(const unsigned char *der, size_t len);

/* Fills tls_r from a connection after its handshake (ssl NULL: no TLS).
 * Channel binding types the connection does not define are left empty. */
void mf_sasl_tls_from_ssl(SSL *ssl, struct mf_sasl_tls *tls_r);

/* --- server side --- */

/* What the backend answers for a login. */
struct mf_sasl_account {
	char *account;         /* account name (malloc'd); NULL: unknown login */
	char *disabled;        /* malloc'd login-disabled message; NULL: allowed */
	bool cram_allowed;     /* the account has CRAM-MD5 material */
	struct mf_sasl_scram scram;   /* for SCRAM lookups */
	bool scram_set;        /* false: no material of that hash yet */
	struct mf_sasl_cram cram;     /* for CRAM-MD5 lookups, when cram_allowed */
};
void mf_sasl_account_clear(struct mf_sasl_account *a);

enum mf_sasl_lookup {
	MF_SASL_LOOKUP_SCRAM_SHA1,
	MF_SASL_LOOKUP_SCRAM_SHA256,
	MF_SASL_LOOKUP_CRAM_MD5,
	MF_SASL_LOOKUP_ACCOUNT,   /* just map the login to an account (EXTERNAL authzid) */
};

struct mf_sasl_backend {
	void *ctx;
	/* PLAIN and LOGIN: checks login (NFC) and password (OpaqueString).
	 * Returns 1 when they match (a_r->account set, a_r->disabled set when
	 * login is disabled), 0 when not (same answer for an unknown login),
	 * -1 with error_r when the check could not be made (temporary). */
	int (*verify_password)(void *ctx, const char *login, const char *password,
			       size_t password_len, struct mf_sasl_account *a_r,
			       const char **error_r);
	/* SCRAM, CRAM-MD5, EXTERNAL authzid: fills a_r for login.  Returns 1
	 * when the login names an account (a_r->account set), 0 when not,
	 * -1 with error_r (temporary). */
	int (*lookup)(void *ctx, enum mf_sasl_lookup what, const char *login,
		      struct mf_sasl_account *a_r, const char **error_r);
};

struct mf_sasl_server_settings {
	bool allow_plaintext_password;  /* PLAIN/LOGIN without TLS */
	bool cram_md5;                  /* offer CRAM-MD5 */
	const char *hostname;           /* in the CRAM-MD5 challenge */
};

enum mf_sasl_status {
	MF_SASL_CONTINUE,   /* send *out_r as a challenge, feed the response */
	MF_SASL_SUCCESS,    /* authenticated: mf_sasl_server_account */
	MF_SASL_FAILED,     /* refused: mf_sasl_server_failure says why */
	MF_SASL_TEMPFAIL,   /* the backend failed: temporary error, try later */
};

enum mf_sasl_failure {
	MF_SASL_FAIL_NONE,
	MF_SASL_FAIL_CREDENTIALS,   /* wrong login/password/proof: same for all */
	MF_SASL_FAIL_DISABLED,      /* right credentials, login disabled (message) */
	MF_SASL_FAIL_MALFORMED,     /* protocol violation by the client */
	MF_SASL_FAIL_CHANNEL_BINDING, /* -PLUS data mismatch or downgrade */
	MF_SASL_FAIL_ABORTED,       /* mf_sasl_server_abort */
	MF_SASL_FAIL_MECHANISM,     /* mechanism not available here */
	MF_SASL_FAIL_WRONG_ACCOUNT, /* credentials for another account than the
				     * TLS client certificate's */
};

struct mf_sasl_server;

/* Starts one exchange for mech.  backend and tls are copied.  settings may
 * be NULL (defaults: no plaintext passwords, no CRAM-MD5).
 * cert_account: the account the TLS client certificate's public key
 * belongs to (the caller looked it up), or NULL; with it EXTERNAL is
 * possible, and any other mechanism must authenticate the same account.
 * Returns 0 with *srv_r (free with mf_sasl_server_free), or -1 with
 * error_r when mech is not available in this state (e.g. PLAIN without
 * TLS, a -PLUS variant without channel binding data). */
int mf_sasl_server_create(enum mf_sasl_mech mech, const struct mf_sasl_server_settings *settings,
			  const struct mf_sasl_backend *backend, const struct mf_sasl_tls *tls,
			  const char *cert_account, struct mf_sasl_server **srv_r,
			  const char **error_r);
void mf_sasl_server_free(struct mf_sasl_server **srv);

/* Feeds one client message (the initial response, which may be empty
 * when the client sent none: then has_data is false).  On CONTINUE, *out_r
 * and *out_len_r are the challenge (owned by srv until the next call); on
 * SUCCESS they may hold final data, which the protocols here never need
 * (SCRAM's server-final is sent as a CONTINUE and the client's empty
 * answer completes it). */
enum mf_sasl_status mf_sasl_server_step(struct mf_sasl_server *srv, const void *in, size_t len,
					bool has_data, const unsigned char **out_r,
					size_t *out_len_r);
/* The client sent "*" (RFC 4422 3.5): ends the exchange as FAILED. */
void mf_sasl_server_abort(struct mf_sasl_server *srv);

/* After SUCCESS: the account name (owned by srv). */
const char *mf_sasl_server_account(const struct mf_sasl_server *srv);
/* The login name the client gave (NFC; "" before it was seen; owned by
 * srv), for login attempts and logs. */
const char *mf_sasl_server_login(const struct mf_sasl_server *srv);
enum mf_sasl_failure mf_sasl_server_failure(const struct mf_sasl_server *srv);
/* Text for logs and, for DISABLED, the account's message to show. */
const char *mf_sasl_server_failure_text(const struct mf_sasl_server *srv);

/* Writes the mechanisms available in this state, strongest first,
 * space-separated, into buf (MF_SASL_MECHS_MAX bytes; IMAP prefixes each
 * with "AUTH=", SMTP lists them after "AUTH").  cert_account: as for
 * mf_sasl_server_create.  Returns the number listed. */
size_t mf_sasl_server_mechs(const struct mf_sasl_server_settings *settings,
			    const struct mf_sasl_tls *tls, bool cert_account,
			    char buf[MF_SASL_MECHS_MAX]);
/* True when mech is offered in that state. */
bool mf_sasl_server_mech_available(enum mf_sasl_mech mech,
				   const struct mf_sasl_server_settings *settings,
				   const struct mf_sasl_tls *tls, bool cert_account);

/* Tests only: use nonce (printable, no ',') as the server's SCRAM nonce
 * part instead of a random one.  Call before the first step. */
void mf_sasl_server_set_nonce(struct mf_sasl_server *srv, const char *nonce);

/* --- client side (delivery's submission transport) --- */

struct mf_sasl_client;

/* Starts a client exchange for PLAIN, LOGIN, CRAM-MD5, SCRAM-SHA-1(-PLUS)
 * or SCRAM-SHA-256(-PLUS) as username with password (both used as given,
 * apart from SCRAM's OpaqueString).  tls: needed for -PLUS (may be NULL
 * otherwise).  Returns 0 with *cl_r, or -1 with error_r. */
int mf_sasl_client_create(enum mf_sasl_mech mech, const char *username, const char *password,
			  const struct mf_sasl_tls *tls, struct mf_sasl_client **cl_r,
			  const char **error_r);
void mf_sasl_client_free(struct mf_sasl_client **cl);
/* The initial response to send with the AUTH command (SMTP "AUTH mech
 * ir", RFC 4954 4); *has_r false for mechanisms that start with a server
 * challenge (LOGIN, CRAM-MD5).  Owned by cl until the next call. */
int mf_sasl_client_initial(struct mf_sasl_client *cl, const unsigned char **out_r,
			   size_t *out_len_r, bool *has_r, const char **error_r);
/* Answers a server challenge.  Returns 0 with the response (owned by cl
 * until the next call), or -1 with error_r (e.g. the SCRAM server's
 * signature is wrong: the server does not know the password, or a
 * man in the middle). */
int mf_sasl_client_step(struct mf_sasl_client *cl, const unsigned char *in, size_t len,
			const unsigned char **out_r, size_t *out_len_r, const char **error_r);
/* After the server's success: 1 when the exchange was mutually
 * authenticated (SCRAM server signature verified), else 0. */
int mf_sasl_client_verified(const struct mf_sasl_client *cl);
/* Tests only: the SCRAM client nonce to use. */
void mf_sasl_client_set_nonce(struct mf_sasl_client *cl, const char *nonce);

#endif
