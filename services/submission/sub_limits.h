/* sub_limits: per-account sending limits of submission, shared by all
 * replicas through Redis (domains.conf account settings
 * max-outgoing-messages-per-day and max-first-time-recipients-per-day;
 * 0 = unlimited).
 *
 * A day is a UTC calendar day.  Keys (all ephemeral: losing Redis forgets
 * the counts, never mail):
 *   mf:sub:msgs:<account>:<day>    messages queued that day
 *   mf:sub:first:<account>:<day>   first-time recipients that day
 *   mf:sub:known:<account>         recipients the account has sent to,
 *                                  kept SUB_LIMITS_KNOWN_DAYS after the last
 *                                  message
 * Counts are checked at MAIL/RCPT and charged after the queue committed, so
 * two replicas may together pass a limit by a message or two; the limits
 * are there against abuse of a stolen password, not for exact accounting. */
#ifndef SUB_LIMITS_H
#define SUB_LIMITS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "redis.h"

#define SUB_LIMITS_KNOWN_DAYS 365
#define SUB_LIMITS_KEY_MAX 1400

enum sub_limits_result {
	SUB_LIMITS_OK,
	SUB_LIMITS_REFUSED,       /* *reply_r says why */
	SUB_LIMITS_UNAVAILABLE,   /* Redis did not answer; *reply_r is a 451 */
};

/* The decisions, without Redis (unit tested).  Each returns NULL when
 * allowed, else a reply line. */
/* sent: messages already queued today. */
const char *sub_limits_messages_decide(uint64_t sent, uint64_t max);
/* first_today: first-time recipients already charged today; new_in_tx:
 * those in this transaction so far, including the one being added. */
const char *sub_limits_first_decide(uint64_t first_today, uint64_t new_in_tx, uint64_t max);

/* MAIL: may the account queue another message today?  r may be NULL (no
 * Redis configured: limits are off). */
enum sub_limits_result sub_limits_check_messages(struct mf_redis *r, const char *account,
						 uint64_t max, time_t now, const char **reply_r);
/* RCPT: is rcpt a first-time recipient (*first_r), and may the account add
 * it when new_before of this transaction's recipients were first-time? */
enum sub_limits_result sub_limits_check_rcpt(struct mf_redis *r, const char *account,
					     const char *rcpt, uint64_t new_before, uint64_t max,
					     time_t now, bool *first_r, const char **reply_r);
/* After the queue committed: charges the message and the first-time
 * recipients (first[i] from sub_limits_check_rcpt) and remembers every
 * recipient.  Returns 0, or -1 with error_r (logged by the caller; the
 * message is queued anyway). */
int sub_limits_commit(struct mf_redis *r, const char *account, const char *const *rcpts,
		      const bool *first, size_t count, time_t now, const char **error_r);

#endif
