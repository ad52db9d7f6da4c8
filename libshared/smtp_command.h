/* smtp_command: the SMTP command parser shared by smtp-in, submission and
 * (for replies) delivery.
 *
 * It splits a command line into its verb and arguments, and parses the
 * arguments of MAIL and RCPT: the path (RFC 5321 4.1.2, with RFC 6531 UTF-8
 * addresses) and the ESMTP parameters SIZE (RFC 1870), BODY (RFC 6152,
 * RFC 3030 BINARYMIME), SMTPUTF8 (RFC 6531), REQUIRETLS (RFC 8689), RET,
 * ENVID, NOTIFY and ORCPT (RFC 3461, with xtext and RFC 6533
 * utf-8-addr-xtext/unitext decoding).
 *
 * The parser only knows the syntax; the session decides what is allowed
 * where (e.g. REQUIRETLS only under TLS).  Errors come back as a complete
 * reply line without CRLF, e.g. "501 5.5.4 bad MAIL syntax: ...", so the
 * session can send them as they are and tests can compare them exactly.
 * Every error text is a static string or from mf_errorf. */
#ifndef SMTP_COMMAND_H
#define SMTP_COMMAND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "address.h"

/* RFC 5321 4.5.3.1.4: 512 octets for a command line including CRLF; the
 * service extensions may add to it (RFC 1870 SIZE 26, RFC 3461 ORCPT up to
 * 500 and ENVID up to 100, RFC 8689, RFC 6531), so we allow this much
 * content (without CRLF) before answering "line too long". */
#define SMTP_COMMAND_LINE_MAX 2048
/* RFC 3461 4.4: ENVID at most 100 characters (decoded). */
#define SMTP_ENVID_MAX 100
/* RFC 3461 4.2: ORCPT's xtext at most 500 characters. */
#define SMTP_ORCPT_MAX 500
/* ESMTP parameters on one MAIL or RCPT command. */
#define SMTP_PARAMS_MAX 16
/* The EHLO/HELO argument kept for the Received header (RFC 1035 names and
 * address literals are shorter). */
#define SMTP_HELO_MAX 255

enum smtp_verb {
	SMTP_VERB_UNKNOWN = 0,
	SMTP_VERB_HELO,
	SMTP_VERB_EHLO,
	SMTP_VERB_MAIL,
	SMTP_VERB_RCPT,
	SMTP_VERB_DATA,
	SMTP_VERB_BDAT,
	SMTP_VERB_RSET,
	SMTP_VERB_NOOP,
	SMTP_VERB_QUIT,
	SMTP_VERB_HELP,
	SMTP_VERB_VRFY,
	SMTP_VERB_EXPN,
	SMTP_VERB_STARTTLS,
	SMTP_VERB_AUTH,
};

/* A command line split into verb and arguments; args points into the line
 * (after the single space that follows the verb), args_len may be 0. */
struct smtp_command {
	enum smtp_verb verb;
	const char *args;
	size_t args_len;
};

enum smtp_body {
	SMTP_BODY_NONE = 0,   /* not given: 7BIT, but 8-bit data is taken as is */
	SMTP_BODY_7BIT,
	SMTP_BODY_8BITMIME,
	SMTP_BODY_BINARYMIME,
};

enum smtp_ret {
	SMTP_RET_NONE = 0,
	SMTP_RET_FULL,
	SMTP_RET_HDRS,
};

/* RFC 3461 4.1 NOTIFY values (bits); NEVER excludes the others. */
#define SMTP_NOTIFY_NEVER   0x1u
#define SMTP_NOTIFY_SUCCESS 0x2u
#define SMTP_NOTIFY_FAILURE 0x4u
#define SMTP_NOTIFY_DELAY   0x8u

struct smtp_mail {
	bool null_sender;          /* MAIL FROM:<> */
	struct mf_address from;    /* valid unless null_sender */
	bool has_size;
	uint64_t size;             /* SIZE=, declared message size */
	enum smtp_body body;
	bool smtputf8;
	bool requiretls;
	enum smtp_ret ret;
	char *envid;               /* decoded xtext; NULL when not given */
};

struct smtp_rcpt {
	struct mf_address to;      /* for "RCPT TO:<postmaster>" the domain is "" */
	bool postmaster;           /* RFC 5321 4.5.1: bare <postmaster> */
	unsigned notify;           /* SMTP_NOTIFY_* bits; 0 when not given */
	char *orcpt_type;          /* "rfc822", "utf-8", ...; NULL when not given */
	char *orcpt;               /* decoded address; NULL when not given */
};

/* Returns the verb for a name (case-insensitive), SMTP_VERB_UNKNOWN if none. */
enum smtp_verb smtp_verb_parse(const char *name, size_t len);
/* Returns the upper-case name ("MAIL"), "?" for UNKNOWN. */
const char *smtp_verb_name(enum smtp_verb verb);

/* Splits line (len bytes, no CRLF) into verb and arguments.  Returns 0, or
 * -1 with error_r a reply line (500 for an empty or NUL-containing line). An
 * unknown verb is not an error: cmd_r->verb is SMTP_VERB_UNKNOWN. */
int smtp_command_split(const char *line, size_t len, struct smtp_command *cmd_r,
		       const char **error_r);

/* Parses MAIL arguments ("FROM:<a@b> SIZE=10 BODY=8BITMIME ...").  Returns 0
 * with mail_r filled (free with smtp_mail_free), or -1 with error_r a reply
 * line: 501 5.5.4 for syntax, 555 5.5.4 for an unknown or bad parameter,
 * 553 5.1.7 for a bad address, 553 5.6.7 for a UTF-8 address without
 * SMTPUTF8 (RFC 6531 3.2). */
int smtp_parse_mail(const char *args, size_t len, struct smtp_mail *mail_r,
		    const char **error_r);
void smtp_mail_free(struct smtp_mail *mail);

/* Parses RCPT arguments ("TO:<a@b> NOTIFY=SUCCESS ORCPT=rfc822;a@b");
 * smtputf8 says whether the transaction's MAIL had SMTPUTF8.  Returns 0 with
 * rcpt_r filled (free with smtp_rcpt_free), or -1 with error_r as
 * smtp_parse_mail (553 5.1.3 for a bad address). */
int smtp_parse_rcpt(const char *args, size_t len, bool smtputf8, struct smtp_rcpt *rcpt_r,
		    const char **error_r);
void smtp_rcpt_free(struct smtp_rcpt *rcpt);

/* Decodes RFC 3461 4 xtext ("a+2Bb" -> "a+b").  Returns 0 with a newly
 * allocated string in *out_r (caller frees), or -1 with error_r (a short
 * reason, not a reply) for a bad hexchar, a raw '+' or '=', a control
 * character, or a decoded NUL. */
int smtp_xtext_decode(const char *s, size_t len, char **out_r, const char **error_r);
/* Decodes RFC 6533 3 utf-8-addr-xtext / utf-8-addr-unitext: "\x{HEX}"
 * escapes of a Unicode scalar value, raw UTF-8 only when allow_utf8.
 * Returns as smtp_xtext_decode. */
int smtp_utf8_xtext_decode(const char *s, size_t len, bool allow_utf8, char **out_r,
			   const char **error_r);

/* Parses "BDAT <size> [LAST]".  Returns 0 with the chunk size and LAST flag,
 * or -1 with error_r a reply line (501 5.5.4). */
int smtp_parse_bdat(const char *args, size_t len, uint64_t *size_r, bool *last_r,
		    const char **error_r);

#endif
