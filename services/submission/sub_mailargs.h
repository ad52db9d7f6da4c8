/* sub_mailargs: the MAIL parameters that only submission knows, taken out
 * of the argument string before the shared parser (smtp_command.h) sees it:
 * RFC 4865 FUTURERELEASE (HOLDFOR=<seconds>, HOLDUNTIL=<RFC 3339
 * date-time>) and RFC 4954 5 AUTH=<mailbox> (accepted and ignored: the
 * authenticated account decides).
 *
 * Pure functions on network input, bounded by SMTP_COMMAND_LINE_MAX; unit
 * tested (tests/unit/test_submission_mailargs.c) and fuzzed
 * (tests/fuzz/fuzz_submission_mailargs.c). */
#ifndef SUB_MAILARGS_H
#define SUB_MAILARGS_H

#include <stddef.h>
#include <stdint.h>

/* RFC 4865 lets the server choose its maximum; 60 days, as the queue
 * accepts (QUEUE_ADD_RELEASE_MAX_MS). */
#define SUB_HOLD_MAX_SECS (60LL * 24 * 3600)
/* HOLDFOR is 1*9DIGIT (RFC 4865 4). */
#define SUB_HOLDFOR_DIGITS_MAX 9
/* A date-time with fraction and offset is far shorter. */
#define SUB_DATETIME_MAX 64

/* Parses an RFC 3339 5.6 date-time ("2026-11-22T16:24:04Z",
 * "2026-11-22t18:24:04.5+02:00"; T and Z in either case; a leap second 60
 * is taken as 59).  Returns 0 with the Unix time in milliseconds, or -1
 * with error_r (a short reason). */
int sub_datetime_parse(const char *s, size_t len, int64_t *unix_ms_r, const char **error_r);

/* Formats unix_secs as an RFC 3339 UTC date-time ("2026-11-22T16:24:04Z")
 * into buf (at least 21 bytes).  For the EHLO FUTURERELEASE keyword. */
void sub_datetime_format(int64_t unix_secs, char *buf, size_t size);

/* Takes HOLDFOR, HOLDUNTIL and AUTH out of MAIL arguments (args, len bytes,
 * "FROM:<a@b> SIZE=10 HOLDFOR=60").  now_ms is the current time.  Returns 0
 * with *rest_r (caller frees; NUL-terminated, *rest_len_r bytes) holding
 * the path and the other parameters for smtp_parse_mail, and
 * *release_unix_ms_r the release time (0: at once; a HOLDUNTIL in the past
 * is at once too), or -1 with error_r a complete reply line (501 5.5.4 for
 * bad syntax, both HOLDFOR and HOLDUNTIL, or a release more than
 * SUB_HOLD_MAX_SECS ahead). */
int sub_mailargs_extract(const char *args, size_t len, int64_t now_ms, char **rest_r,
			 size_t *rest_len_r, int64_t *release_unix_ms_r, const char **error_r);

#endif
