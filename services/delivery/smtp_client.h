/* smtp_client: delivers one message to one or more recipients over one SMTP
 * connection (RFC 5321), as a delivery worker does towards a receiving
 * server or a smarthost.
 *
 * EHLO (HELO when EHLO is refused), opportunistic STARTTLS (RFC 3207, RFC
 * 7435: any certificate; verified TLS comes with DANE/MTA-STS later),
 * PIPELINING (RFC 2920), 8BITMIME, SMTPUTF8 (a message that needs it fails
 * cleanly with 5.6.7 when the server lacks it, RFC 6531 3.5), SIZE (RFC
 * 1870), LIMITS RCPTMAX (RFC 9422), several recipients per transaction.
 *
 * Edge cases that decide what the sender is told:
 * - 452/552 to a RCPT after others were accepted means "too many
 *   recipients": those go in a new transaction on the same connection.
 * - A server that answers MAIL with 5xx and closes: the 5xx is the result.
 * - A server that closes after the RCPT replies (pipelined DATA never
 *   answered): the RCPT replies are the results of those recipients.
 * Transports other than direct delivery (delivery_transport.h) add:
 * implicit TLS (submissions, RFC 8314 3.3), TLS required before AUTH
 * (RFC 4954 4 forbids nothing, but a password never goes in the clear
 * here), AUTH PLAIN (RFC 4616) or LOGIN as a client, and a SOCKS5 proxy
 * (socks5.h) between us and the server.
 * - REQUIRETLS (RFC 8689): without TLS or without the extension at the
 *   server the message fails with 5.7.30.  The certificate is not verified
 *   yet (MTA-STS/DANE come later), which RFC 8689 4.2.1 also asks for. */
#ifndef SMTP_CLIENT_H
#define SMTP_CLIENT_H

#include <openssl/ssl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "smtp_client_reply.h"

/* Recipients in one transaction when the server gives no RCPTMAX. */
#define SMTP_CLIENT_RCPTS_PER_TX 100
#define SMTP_CLIENT_CONNECT_TIMEOUT_MS 30000
/* RFC 5321 4.5.3.2: 5 minutes for most replies, 10 for the end of data. */
#define SMTP_CLIENT_TIMEOUT_MS (5 * 60 * 1000)
#define SMTP_CLIENT_DATA_TIMEOUT_MS (10 * 60 * 1000)
/* Transactions per connection (guards against a server that answers 452
 * to every first RCPT). */
#define SMTP_CLIENT_TX_MAX 50
/* Bytes in a user name or password sent with AUTH. */
#define SMTP_CLIENT_AUTH_MAX 1024

struct smtp_client_rcpt {
	const char *address;
	/* Results, set by smtp_client_deliver. */
	bool done;           /* a definite answer for this recipient */
	bool delivered;
	bool permanent;
	unsigned code;       /* 0: no reply (connection error) */
	char enhanced[SMTP_CLIENT_ENHANCED_MAX];
	char *text;          /* the full reply or the error; owned, free() it */
};

struct smtp_client_params {
	const char *host;         /* for logs, SNI and DSNs' Remote-MTA */
	const char *ip;           /* IP literal to connect to */
	unsigned port;
	const char *ehlo_name;
	const char *mail_from;    /* "" for the null sender */
	bool smtputf8;            /* the message needs SMTPUTF8 */
	bool has_8bit;            /* BODY=8BITMIME */
	bool requiretls;          /* RFC 8689: only over TLS to a REQUIRETLS server */
	uint64_t size;
	int msg_fd;               /* the message; read with pread from offset 0 */
	SSL_CTX *tls;             /* client context for STARTTLS; NULL: no TLS */
	unsigned timeout_ms;      /* 0: SMTP_CLIENT_TIMEOUT_MS */
	unsigned data_timeout_ms; /* 0: SMTP_CLIENT_DATA_TIMEOUT_MS */
	const char *cid;
	/* Called after each reply; a worker uses it to extend its job lease. */
	void (*progress)(void *ctx);
	void *progress_ctx;

	/* Transports; all zero for plain direct delivery. */
	bool implicit_tls;        /* TLS from the first byte (needs tls) */
	bool require_tls;         /* no TLS after STARTTLS: the server is not usable */
	const char *auth_user;    /* NULL: no AUTH; else TLS is required */
	const char *auth_password;
	bool auth_login;          /* LOGIN instead of PLAIN */
	const char *socks5_ip;    /* NULL: connect directly */
	unsigned socks5_port;
	const char *socks5_user;  /* NULL: no RFC 1929 authentication */
	const char *socks5_password;
};

struct smtp_client_info {
	char tls_version[32];     /* "" without TLS */
	char tls_cipher[64];
};

/* Messages sent over one kept connection before it is closed anyway. */
#define SMTP_CLIENT_REUSE_MAX 200
/* Timeout for the QUIT that ends an idle kept connection. */
#define SMTP_CLIENT_IDLE_QUIT_TIMEOUT_MS 2000

/* An open connection, idle after a delivery, kept for the next message to
 * the same destination (same ip, port, TLS, AUTH and SOCKS5 settings: the
 * caller keys it so). */
struct smtp_client_session;

/* Sets a result on rcpt (copies text). */
void smtp_client_rcpt_set(struct smtp_client_rcpt *rcpt, bool delivered, bool permanent,
			  unsigned code, const char *enhanced, const char *text);
void smtp_client_rcpts_clear(struct smtp_client_rcpt *rcpts, size_t n);

/* Tries to deliver to every recipient that is not done yet.  Returns 0
 * when the server was reached and gave per-recipient answers (recipients
 * without one, e.g. after a dropped connection, stay not done); -1 with
 * error_r when nothing was decided on this server (connection refused,
 * greeting refused, TLS failure): the caller tries the next host. */
int smtp_client_deliver(const struct smtp_client_params *p, struct smtp_client_rcpt *rcpts,
			size_t n, struct smtp_client_info *info_r, const char **error_r);

/* smtp_client_deliver with connection reuse.  *session: NULL, or a kept
 * connection for the same destination from an earlier call; it is taken
 * over and resumed with RSET (RFC 5321 4.1.1.5), and when that fails (the
 * server closed it meanwhile) a fresh connection is opened in its place,
 * which counts as nothing for the recipients.  On return *session is the
 * connection again when it can take another message (else NULL); the
 * caller keeps it briefly or ends it with smtp_client_session_close. */
int smtp_client_deliver_reuse(const struct smtp_client_params *p,
			      struct smtp_client_session **session,
			      struct smtp_client_rcpt *rcpts, size_t n,
			      struct smtp_client_info *info_r, const char **error_r);

/* Ends a kept connection (QUIT first when quit), sets *session to NULL. */
void smtp_client_session_close(struct smtp_client_session **session, bool quit);

#endif
