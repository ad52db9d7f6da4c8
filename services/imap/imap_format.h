/* imap_format: IMAP data formatting and small codecs shared by the
 * commands: strings as quoted or literal, flag lists, dates (RFC 9051
 * date-time and date), base64 for SASL, UTF-8 validation. */
#ifndef IMAP_FORMAT_H
#define IMAP_FORMAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "buf.h"

/* Longest string sent as a quoted string; longer ones become literals. */
#define IMAP_QUOTED_MAX 1024

/* Appends str as a quoted string when it can be one (no CR, LF, NUL; 8-bit
 * only when utf8), otherwise as a literal {n}. */
void imap_format_string(struct mf_buf *b, const char *str, size_t len, bool utf8);
/* Appends "(\Seen \Flagged kw1 kw2)". */
void imap_format_flags(struct mf_buf *b, uint32_t flags, const char *keywords);
/* Appends a date-time "dd-Mon-yyyy hh:mm:ss +zzzz" (quoted) for unix
 * milliseconds, in UTC. */
void imap_format_datetime(struct mf_buf *b, int64_t unix_ms);
/* Parses an IMAP date-time ("dd-Mon-yyyy hh:mm:ss +zzzz", day may be
 * " d").  Returns 0 with unix milliseconds, -1 when invalid. */
int imap_parse_datetime(const char *s, int64_t *unix_ms_r);
/* Parses an IMAP date ("d-Mon-yyyy").  Returns 0 with the unix time of
 * its midnight UTC, -1 when invalid. */
int imap_parse_date(const char *s, time_t *t_r);
/* Parses an RFC 5322 Date header value; returns 0 with unix seconds or -1. */
int imap_parse_rfc5322_date(const char *s, size_t len, time_t *t_r);
bool imap_format_valid_utf8(const char *s, size_t len);
/* Decodes base64 (RFC 4648, padding required).  Returns the length, or -1
 * for invalid input.  out must hold len / 4 * 3 bytes. */
ssize_t imap_base64_decode(const char *in, size_t len, unsigned char *out);
/* Appends base64 of data. */
void imap_base64_encode(struct mf_buf *b, const void *data, size_t len);

#endif
