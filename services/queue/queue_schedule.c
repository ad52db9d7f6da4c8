#include "queue_schedule.h"

#include <string.h>

static int64_t backoff_first_ms = QUEUE_BACKOFF_FIRST_MS;

void queue_schedule_set_backoff_first(int64_t ms)
{
	backoff_first_ms = ms > 0 ? ms : QUEUE_BACKOFF_FIRST_MS;
}

int64_t queue_backoff_ms(unsigned attempts)
{
	int64_t ms = backoff_first_ms;

	if (attempts < 1)
		attempts = 1;
	/* Capped so that a large max_attempts cannot overflow: 2^20 * 7.5 min
	 * is already decades. */
	for (unsigned i = 1; i < attempts && i < 20; i++)
		ms *= 2;
	return ms;
}

void queue_schedule_decide(bool delivered, bool permanent, unsigned attempts,
			   unsigned max_attempts, uint32_t notify, bool null_sender,
			   int64_t now_ms, struct queue_decision *d_r)
{
	bool want_failure, want_delay, want_success;

	memset(d_r, 0, sizeof(*d_r));
	if (max_attempts == 0)
		max_attempts = QUEUE_MAX_ATTEMPTS_DEFAULT;
	if (notify == 0)
		notify = QUEUE_NOTIFY_FAILURE | QUEUE_NOTIFY_DELAY;
	want_failure = !null_sender && (notify & QUEUE_NOTIFY_FAILURE) != 0 &&
		       (notify & QUEUE_NOTIFY_NEVER) == 0;
	want_delay = !null_sender && (notify & QUEUE_NOTIFY_DELAY) != 0 &&
		     (notify & QUEUE_NOTIFY_NEVER) == 0;
	want_success = !null_sender && (notify & QUEUE_NOTIFY_SUCCESS) != 0 &&
		       (notify & QUEUE_NOTIFY_NEVER) == 0;

	if (delivered) {
		d_r->outcome = QUEUE_OUTCOME_DELIVERED;
		d_r->dsn_success = want_success;
		return;
	}
	if (permanent || attempts >= max_attempts) {
		d_r->outcome = QUEUE_OUTCOME_FAILED;
		d_r->dsn_failure = want_failure;
		return;
	}
	d_r->outcome = QUEUE_OUTCOME_RETRY;
	d_r->next_attempt_ms = now_ms + queue_backoff_ms(attempts);
	d_r->dsn_delayed = want_delay && attempts == QUEUE_DELAYED_DSN_AFTER;
}

bool queue_schedule_suppresses(unsigned code, const char *enhanced)
{
	static const char *const codes[] = {
		"5.1.1", "5.1.2", "5.1.3", "5.1.6", "5.1.10", "5.2.1",
	};

	if (code < 500 || code > 599 || enhanced == NULL)
		return false;
	for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++)
		if (strcmp(enhanced, codes[i]) == 0)
			return true;
	return false;
}
