/* imap_mutf7: modified UTF-7 mailbox names (RFC 3501 5.1.3), used with
 * clients that enabled neither IMAP4rev2 nor UTF8=ACCEPT (RFC 9051 5.1,
 * RFC 6855 3). */
#ifndef IMAP_MUTF7_H
#define IMAP_MUTF7_H

#include <stddef.h>

#include "imap_pool.h"

/* Decodes len bytes of modified UTF-7 into UTF-8.  Returns 0 with *out_r
 * (NUL-terminated, from pool), or -1 with error_r for input that is not
 * valid modified UTF-7: 8-bit or control bytes, "&" without "-", bad
 * base64, printable ASCII or a lone surrogate encoded in base64, leftover
 * bits, two encoded runs back to back. */
int imap_mutf7_decode(struct imap_pool *pool, const char *in, size_t len,
		      char **out_r, const char **error_r);

/* Encodes UTF-8 into modified UTF-7.  Returns 0 with *out_r (from pool),
 * or -1 with error_r for invalid UTF-8. */
int imap_mutf7_encode(struct imap_pool *pool, const char *in, size_t len,
		      char **out_r, const char **error_r);

#endif
