/* queue_ctx: what the queue service's modules share: the database, the
 * blob store, the bus, and the dispatcher's wake-up. */
#ifndef QUEUE_CTX_H
#define QUEUE_CTX_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "blob.h"
#include "bus.h"
#include "metrics.h"
#include "queue_db.h"

struct queue_result_batch_item;

struct queue_ctx {
	struct queue_db *db;
	struct mf_blob_store *blobs;
	struct mf_bus *bus;
	char *hostname;
	int64_t lease_ms;          /* a job without a result by then is dispatched again */
	int64_t retired_keep_ms;   /* history kept for accounts without their own setting */

	pthread_mutex_t wake_lock;
	pthread_cond_t wake_cond;
	bool wake_flag;
	bool stopping;
	pthread_t thread;
	bool thread_started;
	bool stream_ready;

	/* Results waiting for the next group commit (queue_dispatch.c). */
	pthread_mutex_t result_lock;
	pthread_cond_t result_cond;
	struct queue_result_batch_item *result_head, *result_tail;
	bool result_leader;        /* a handler thread is committing a group */

	pthread_mutex_t seq_lock;
	uint64_t seq;              /* unique suffixes for blob keys */

	/* Counters for /metrics (updated from several threads). */
	_Atomic uint64_t added_total;
	_Atomic uint64_t delivered_total;
	_Atomic uint64_t failed_total;
	_Atomic uint64_t dispatched_total;
	_Atomic uint64_t dsn_total;
};

int64_t queue_now_ms(void);
/* A process-unique number, for blob keys and DSN message ids. */
uint64_t queue_next_seq(struct queue_ctx *ctx);
/* Wakes the dispatcher (new or changed messages, results). */
void queue_wake(struct queue_ctx *ctx);

#endif
