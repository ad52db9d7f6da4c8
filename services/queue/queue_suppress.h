/* queue_suppress: per-account suppression lists.  An address lands on its
 * account's list after a hard failure (queue_schedule_suppresses) or by
 * hand; queued mail to a suppressed address fails at once with a DSN
 * instead of hurting the server's reputation.  Addresses are compared
 * case-insensitively.  Callers hold the database lock. */
#ifndef QUEUE_SUPPRESS_H
#define QUEUE_SUPPRESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "queue_db.h"

#define QUEUE_SUPPRESS_LIST_MAX 100000
#define QUEUE_SUPPRESS_REASON_MAX 1000

struct queue_suppression {
	char *account;
	char *address;
	char *reason;
	bool manual;
	int64_t created_ms;
};

/* Adds or refreshes address on account's list.  Returns 0 or -1. */
int queue_suppress_add(struct queue_db *db, const char *account, const char *address,
		       const char *reason, bool manual, int64_t now_ms, const char **error_r);
/* Returns 1 removed, 0 not listed, -1 error. */
int queue_suppress_remove(struct queue_db *db, const char *account, const char *address,
			  const char **error_r);
/* Returns 1 when listed (with the reason in *reason_r when not NULL; the
 * caller frees it), 0 not listed, -1 error. */
int queue_suppress_check(struct queue_db *db, const char *account, const char *address,
			 char **reason_r, const char **error_r);
/* account "" lists every account. Free with queue_suppress_list_free. */
int queue_suppress_list(struct queue_db *db, const char *account,
			struct queue_suppression **list_r, size_t *count_r, const char **error_r);
void queue_suppress_list_free(struct queue_suppression **list, size_t count);

#endif
