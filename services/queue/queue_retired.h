/* queue_retired: history of messages that left the queue (delivered,
 * failed or dropped), with their attempts kept in the attempt table, for
 * matching later DSNs and for the admin.  Callers hold the database lock. */
#ifndef QUEUE_RETIRED_H
#define QUEUE_RETIRED_H

#include <stdbool.h>
#include <stdint.h>

#include "queue_db.h"

/* How long retired messages are kept by default (queue { retired-keep }
 * changes it, an account's keep-retired-messages in domains.conf overrides
 * it for that account). */
#define QUEUE_RETIRED_KEEP_MS (14LL * 24 * 3600 * 1000)

/* Copies row into the history and removes it from the queue.  Returns 0
 * or -1. */
int queue_retired_add(struct queue_db *db, const struct queue_row *row, bool success,
		      int64_t now_ms, const char **error_r);
/* Removes history (and its attempts) retired before before_ms; *removed_r
 * how many.  Returns 0 or -1. */
int queue_retired_cleanup(struct queue_db *db, int64_t before_ms, unsigned *removed_r,
			  const char **error_r);
/* How long account's history is kept, in milliseconds. */
typedef int64_t queue_retired_keep_fn(const char *account, void *ctx);

/* Removes history older than each account's keep(account) allows,
 * account by account; *removed_r how many.  Returns 0 or -1. */
int queue_retired_cleanup_accounts(struct queue_db *db, int64_t now_ms,
				   queue_retired_keep_fn *keep, void *ctx, unsigned *removed_r,
				   const char **error_r);
/* Returns 1 with success in *success_r when id is in the history, 0 when
 * not, -1 on error. */
int queue_retired_get(struct queue_db *db, int64_t id, bool *success_r, const char **error_r);

#endif
