/* queue_schedule: when to try again, and which DSNs an attempt's result
 * calls for.  Pure functions: the database code applies the decision. */
#ifndef QUEUE_SCHEDULE_H
#define QUEUE_SCHEDULE_H

#include <stdbool.h>
#include <stdint.h>

/* First retry 7.5 minutes after the first failure, doubling each time. */
#define QUEUE_BACKOFF_FIRST_MS (450 * 1000LL)
#define QUEUE_MAX_ATTEMPTS_DEFAULT 8
/* What a message may ask for (queue.v1.add max_attempts). */
#define QUEUE_MAX_ATTEMPTS_LIMIT 32
/* A "delayed" DSN goes out after this many failed attempts. */
#define QUEUE_DELAYED_DSN_AFTER 5

/* RFC 3461 4.1 NOTIFY bits, as in the protos. */
#define QUEUE_NOTIFY_NEVER 1u
#define QUEUE_NOTIFY_SUCCESS 2u
#define QUEUE_NOTIFY_FAILURE 4u
#define QUEUE_NOTIFY_DELAY 8u

enum queue_outcome {
	QUEUE_OUTCOME_DELIVERED,  /* retire as delivered */
	QUEUE_OUTCOME_RETRY,      /* stays queued until next_attempt_ms */
	QUEUE_OUTCOME_FAILED,     /* retire as failed */
};

struct queue_decision {
	enum queue_outcome outcome;
	int64_t next_attempt_ms;  /* RETRY only */
	bool dsn_failure;         /* send a failure DSN */
	bool dsn_delayed;         /* send a delayed DSN */
	bool dsn_success;         /* send a "relayed"/"delivered" DSN */
};

/* Changes the first backoff (tests; queue { test-first-backoff }).
 * Call before any other thread uses the scheduler. */
void queue_schedule_set_backoff_first(int64_t ms);

/* Time to wait after the attempts-th failed attempt (attempts >= 1). */
int64_t queue_backoff_ms(unsigned attempts);

/* Decides what follows an attempt.  attempts counts this one; notify is the
 * recipient's NOTIFY bits (0 = not given: FAILURE and DELAY, RFC 3461 4.1
 * leaves the default to us); null_sender suppresses every DSN (RFC 5321
 * 4.5.5). */
void queue_schedule_decide(bool delivered, bool permanent, unsigned attempts,
			   unsigned max_attempts, uint32_t notify, bool null_sender,
			   int64_t now_ms, struct queue_decision *d_r);

/* True when an enhanced status code says the address itself does not exist
 * or cannot receive mail, so it goes on the sender's suppression list
 * (RFC 3463: 5.1.1 bad mailbox, 5.1.2 bad system, 5.1.3 bad syntax,
 * 5.1.6 moved, 5.1.10 null MX (RFC 7505), 5.2.1 disabled). */
bool queue_schedule_suppresses(unsigned code, const char *enhanced);

#endif
