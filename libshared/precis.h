/* precis: normalisation of what users type to log in.
 *
 * Passwords follow the PRECIS OpaqueString profile (RFC 8265 4.2): non-ASCII
 * spaces become U+0020, the result is NFC, and code points outside the
 * FreeformClass (RFC 8264 4.3: controls, unassigned, default ignorables,
 * private use, old Hangul jamo, line/paragraph separators, format
 * characters) are refused, as is an empty result.  OpaqueString maps
 * neither width nor case: fullwidth letters stay as they are.
 *
 * Login names (addresses, account names) are only brought to NFC, so that
 * "é" typed composed or as e + U+0301 finds the same account.
 *
 * Both are applied before hashing a password and before comparing one, so
 * the stored material (scrypt hash, SCRAM keys, CRAM-MD5 pads) is of the
 * normalised form. */
#ifndef MF_PRECIS_H
#define MF_PRECIS_H

#include <stddef.h>

/* Longest input accepted, in bytes (a password or a login name). */
#define MF_PRECIS_INPUT_MAX 1024

/* Applies OpaqueString to the UTF-8 password s of len bytes.  Returns 0
 * with a newly allocated NUL-terminated result (caller frees) in *out_r
 * and its length in *out_len_r, or -1 with error_r (not UTF-8, too long,
 * empty, or a disallowed code point, named as U+XXXX). */
int mf_precis_password(const char *s, size_t len, char **out_r, size_t *out_len_r,
		       const char **error_r);

/* Brings the UTF-8 login name s to NFC.  Refuses control characters and
 * invalid UTF-8.  Returns 0 with a newly allocated string in *out_r, or -1
 * with error_r. */
int mf_precis_username(const char *s, size_t len, char **out_r, const char **error_r);

#endif
