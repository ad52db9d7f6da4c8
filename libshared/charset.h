/* charset: conversion of text in a named character set to UTF-8 (glibc iconv),
 * for RFC 2047 encoded words, RFC 2231 parameters and message bodies.
 *
 * Conversion is tolerant: a byte sequence that is invalid in the source
 * charset becomes U+FFFD and conversion goes on.  Only an unknown charset is an
 * error, so that callers can leave such text as it was (RFC 2047 section 6.1
 * lets a reader show an encoded word it cannot decode unchanged). */
#ifndef MF_CHARSET_H
#define MF_CHARSET_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"

/* Longest charset name accepted (IANA names are at most 40 characters). */
#define MF_CHARSET_NAME_MAX 64

/* Returns true when s[0..len) is well-formed UTF-8 (no overlongs, no
 * surrogates).  NUL bytes count as valid. */
bool mf_charset_is_utf8(const char *s, size_t len);

/* Returns true when s[0..len) contains a byte >= 0x80. */
bool mf_charset_has_8bit(const char *s, size_t len);

/* Returns true when charset names UTF-8 or US-ASCII (and their aliases), so
 * that no conversion is needed for valid input. */
bool mf_charset_is_utf8_name(const char *charset);

/* Appends in[0..len), in charset, converted to UTF-8 to out.  A NULL or empty
 * charset means US-ASCII.  RFC 2231 language suffixes ("utf-8*en") are
 * ignored.  Invalid sequences become U+FFFD.  Returns 0, or -1 with error_r
 * when the charset is unknown (out is unchanged) or out's cap is reached
 * (out holds a prefix of the conversion). */
int mf_charset_to_utf8(const char *charset, const char *in, size_t len,
		       struct mf_buf *out, const char **error_r);

/* Appends in[0..len) to out as UTF-8: unchanged when it is valid UTF-8, else
 * decoded as ISO-8859-1 (every byte is a character there), the usual reading
 * of unlabelled 8-bit header text.  Returns 0, or -1 when out's cap is
 * reached. */
int mf_charset_8bit_to_utf8(const char *in, size_t len, struct mf_buf *out);

#endif
