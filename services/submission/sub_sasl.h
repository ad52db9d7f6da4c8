/* sub_sasl: the SASL mechanisms submission offers now (issue 7 brings the
 * shared libshared sasl module with SCRAM, CRAM-MD5 and EXTERNAL):
 *   PLAIN (RFC 4616) and LOGIN (draft-murchison-sasl-login), both only
 *   over TLS; the credentials are checked by the account store.
 * These functions only decode what the client sends; the session runs the
 * exchange.  Unit tested (test_submission_sasl.c), fuzzed
 * (fuzz_submission_sasl.c). */
#ifndef SUB_SASL_H
#define SUB_SASL_H

#include <stddef.h>

/* A SASL response line (base64 of a PLAIN message). */
#define SUB_SASL_LINE_MAX 8192
/* Login names and passwords longer than this are refused unseen. */
#define SUB_LOGIN_MAX 512
#define SUB_PASSWORD_MAX 1024

/* Decodes strict base64 (RFC 4648 4, padding required, no white space).
 * Returns 0 with a newly allocated, NUL-terminated buffer in *out_r (the
 * caller frees it; wipe secrets with explicit_bzero) and its length, or -1
 * on bad input. */
int sub_base64_decode(const char *in, size_t len, char **out_r, size_t *out_len_r);

/* Parses a decoded PLAIN message "authzid NUL authcid NUL passwd".  An
 * authzid other than "" or the authcid is refused (we do not act for
 * someone else).  Returns 0 with *login_r (newly allocated) and the
 * password pointing into msg, or -1 with error_r a reply line (501 5.5.2
 * for bad syntax, 535 5.7.8 for an authzid or an over-long field). */
int sub_sasl_plain(const char *msg, size_t len, char **login_r, const char **password_r,
		   size_t *password_len_r, const char **error_r);

#endif
