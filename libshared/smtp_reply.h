/* smtp_reply: SMTP replies with enhanced status codes (RFC 5321 4.2,
 * RFC 2034, RFC 3463), single- and multi-line, for the SMTP services.
 *
 * Texts come from our own code and sometimes carry parts of client input
 * (an address); control characters are replaced so that a reply can never
 * contain a line break the caller did not ask for. */
#ifndef SMTP_REPLY_H
#define SMTP_REPLY_H

#include <stdarg.h>

#include "buf.h"

/* RFC 5321 4.5.3.1.5: a reply line is at most 512 octets including CRLF;
 * longer texts are cut. */
#define SMTP_REPLY_LINE_MAX 512
/* Lines in one multi-line reply (EHLO has about a dozen). */
#define SMTP_REPLY_LINES_MAX 32

/* Appends a reply to out: code (200..599), enhanced code ("2.1.0"; NULL or
 * "" for none, e.g. the greeting and EHLO, RFC 2034 says they carry none),
 * and text.  Each '\n' in text starts another line: all but the last are
 * "<code>-...", the last "<code> ...", each ended by CRLF and each with the
 * enhanced code.  Returns 0, or -1 when out's cap is reached. */
int smtp_reply_append(struct mf_buf *out, unsigned code, const char *enhanced,
		      const char *text);
int smtp_reply_appendf(struct mf_buf *out, unsigned code, const char *enhanced,
		       const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* Splits a reply line such as the parser's errors ("501 5.5.4 text") into
 * code, enhanced code and text.  Returns 0, or -1 when it does not start
 * with a 3-digit code.  *enhanced_r and *text_r point into a thread-local
 * copy valid until the next call on this thread. */
int smtp_reply_split(const char *line, unsigned *code_r, const char **enhanced_r,
		     const char **text_r);

#endif
