/* smtp_client_reply: parses the replies a receiving SMTP server sends
 * (RFC 5321 4.2), single- or multi-line, with enhanced status codes
 * (RFC 2034, RFC 3463), and the EHLO extension list.
 *
 * The server is untrusted input: every dimension is bounded, and a bad
 * line is an error the client turns into a temporary failure, never a
 * crash.  The full text is kept (all lines) because DSNs quote it. */
#ifndef SMTP_CLIENT_REPLY_H
#define SMTP_CLIENT_REPLY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"

/* RFC 5321 4.5.3.1.5 says 512; real servers send longer lines. */
#define SMTP_CLIENT_REPLY_LINE_MAX 2048
#define SMTP_CLIENT_REPLY_LINES_MAX 100
#define SMTP_CLIENT_REPLY_TEXT_MAX 8192
#define SMTP_CLIENT_ENHANCED_MAX 16

struct smtp_client_reply {
	unsigned code;                           /* 200..599 */
	char enhanced[SMTP_CLIENT_ENHANCED_MAX]; /* "5.1.1" or "" */
	struct mf_buf text;                      /* lines without code and enhanced
						    code, joined with "\n" */
	size_t nlines;
	bool complete;
};

void smtp_client_reply_init(struct smtp_client_reply *r);
/* Empties r for the next reply, keeping its memory. */
void smtp_client_reply_reset(struct smtp_client_reply *r);
void smtp_client_reply_free(struct smtp_client_reply *r);

/* Feeds one line (without CRLF; not NUL-terminated).  Returns 1 when the
 * reply is complete, 0 when more lines follow, -1 with error_r for a line
 * that is not a valid reply line or exceeds a limit. */
int smtp_client_reply_feed(struct smtp_client_reply *r, const char *line, size_t len,
			   const char **error_r);

/* What EHLO said (RFC 5321 4.1.1.1 and the extensions' RFCs). */
struct smtp_client_ext {
	bool starttls;      /* RFC 3207 */
	bool pipelining;    /* RFC 2920 */
	bool eightbitmime;  /* RFC 6152 */
	bool smtputf8;      /* RFC 6531 */
	bool requiretls;    /* RFC 8689 */
	bool dsn;           /* RFC 3461 */
	bool size;          /* RFC 1870 */
	uint64_t size_max;  /* 0: no limit given */
	unsigned rcptmax;   /* RFC 9422 LIMITS RCPTMAX; 0: none given */
	bool auth_plain;    /* RFC 4954 AUTH with PLAIN (RFC 4616) */
	bool auth_login;    /* ... with LOGIN (draft-murchison-sasl-login) */
};

/* Reads the extensions from a complete 250 reply to EHLO (its first line is
 * the server's greeting, the others keywords). */
void smtp_client_ext_parse(const struct smtp_client_reply *r, struct smtp_client_ext *ext_r);

/* True when the reply to a RCPT says "too many recipients" (452, or the
 * historic 552, RFC 5321 4.5.3.1.10): the rest go in a new transaction. */
bool smtp_client_reply_too_many_rcpts(unsigned code);

#endif
