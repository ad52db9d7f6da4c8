/* queue_retired: history of messages that left the queue (delivered,
 * failed or dropped), with their attempts kept in the attempt table, for
 * matching later DSNs and for the admin.  Callers hold the database lock. */
#ifndef QUEUE_RETIRED_H
#define QUEUE_RETIRED_H

#include <stdbool.h>
#include <stdint.h>

#include "queue_db.h"

/* How long retired messages are kept (a per-account setting is not done
 * yet: this applies to every account). */
#define QUEUE_RETIRED_KEEP_MS (14LL * 24 * 3600 * 1000)

/* Copies row into the history and removes it from the queue.  Returns 0
 * or -1. */
int queue_retired_add(struct queue_db *db, const struct queue_row *row, bool success,
		      int64_t now_ms, const char **error_r);
/* Removes history (and its attempts) retired before before_ms; *removed_r
 * how many.  Returns 0 or -1. */
int queue_retired_cleanup(struct queue_db *db, int64_t before_ms, unsigned *removed_r,
			  const char **error_r);
/* Returns 1 with success in *success_r when id is in the history, 0 when
 * not, -1 on error. */
int queue_retired_get(struct queue_db *db, int64_t id, bool *success_r, const char **error_r);

#endif
