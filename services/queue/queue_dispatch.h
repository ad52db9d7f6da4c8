/* queue_dispatch: the queue's engine.
 *
 * - A dispatcher thread publishes due messages as delivery.v1.job on the
 *   JetStream work-queue stream DELIVERY, one job per base id, recipient
 *   domain and transport, after leasing the rows in the database: a row
 *   whose lease runs out without a result is dispatched again, so a lost
 *   job or a dead worker delays mail but never loses it.  The same thread
 *   hands pending DSNs to the store and prunes the retired history.
 * - delivery.v1.result: results are committed (retry time, retirement,
 *   suppression, DSNs) before the reply, and only then does the worker ack
 *   its job.
 * - queue_apply_outcomes is the one place where rows are retried, retired
 *   and DSNs composed; the add and admin paths use it too. */
#ifndef QUEUE_DISPATCH_H
#define QUEUE_DISPATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bus.h"
#include "queue_ctx.h"
#include "queue_db.h"

#define QUEUE_STREAM "DELIVERY"
#define QUEUE_JOB_SUBJECT "delivery.v1.job"
/* Recipients per job (one SMTP transaction; more go in other jobs). */
#define QUEUE_JOB_RCPTS_MAX 100
/* Rows looked at per dispatch round. */
#define QUEUE_DISPATCH_BATCH 500
/* Handler threads for delivery results.  Results that arrive while one
 * group is being committed wait for the next group, so this bounds how
 * many results share one fsync (one per delivery thread in flight). */
#define QUEUE_RESULT_WORKERS 16
#define QUEUE_LEASE_MS_DEFAULT (15 * 60 * 1000LL)
/* Lengths accepted in a result from a worker. */
#define QUEUE_RESULT_TEXT_MAX 8192
#define QUEUE_RESULT_FIELD_MAX 512
/* DSNs handed to the store per round, and how often one is retried. */
#define QUEUE_DSN_BATCH 50
#define QUEUE_DSN_TRIES_MAX 30

struct queue_outcome_item {
	struct queue_row *row;    /* updated in place */
	bool count_attempt;       /* a real delivery attempt (not an admin action) */
	bool delivered;
	bool permanent;
	unsigned code;
	const char *enhanced;
	const char *text;
	const char *host;
	const char *tls;
	uint64_t duration_ms;
};

/* Blob keys to delete after the transaction commits (queue blobs no longer
 * referenced) or after it rolls back (DSN blobs written for it). */
struct queue_cleanup {
	char **after_commit;
	size_t ncommit;
	char **after_rollback;
	size_t nrollback;
};

/* Applies outcomes; the caller holds the lock and a transaction, then
 * calls queue_cleanup_finish with whether the commit succeeded.  Returns 0,
 * or -1 with error_r (the caller rolls back). */
int queue_apply_outcomes(struct queue_ctx *ctx, struct queue_outcome_item *items, size_t n,
			 int64_t now_ms, struct queue_cleanup *cl, const char **error_r);
void queue_cleanup_finish(struct queue_ctx *ctx, struct queue_cleanup *cl, bool committed);

/* Starts and stops the dispatcher thread. */
int queue_dispatch_start(struct queue_ctx *ctx, const char **error_r);
void queue_dispatch_stop(struct queue_ctx *ctx);

/* The delivery.v1.result handler (ctx is the queue_ctx). */
void queue_dispatch_result_handler(void *ctx, const struct mf_bus_request *req,
				   struct mf_bus_response *resp);

#endif
