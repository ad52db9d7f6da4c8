/* delivery_worker: threads that pull delivery.v1.job from the JetStream
 * work queue (durable consumer "workers", shared by every delivery
 * process), deliver, and report per-recipient results to the queue with
 * delivery.v1.result.  A job is acked only after the queue committed its
 * results; a worker that dies leaves its job unacked, and JetStream hands
 * it to another worker after the ack wait.  While a job runs, the worker
 * tells JetStream it is still in progress. */
#ifndef DELIVERY_WORKER_H
#define DELIVERY_WORKER_H

#include <openssl/ssl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "blob.h"
#include "bus.h"
#include "delivery_route.h"
#include "redis.h"

#define DELIVERY_THREADS_DEFAULT 4
#define DELIVERY_THREADS_MAX 64
#define DELIVERY_ACK_WAIT_MS_DEFAULT 30000
#define DELIVERY_ACK_WAIT_MS_MAX (3600 * 1000LL)
#define DELIVERY_SMTP_TIMEOUT_MS_MAX (3600 * 1000U)
#define DELIVERY_CONSUMER "workers"
/* Recipients accepted in one job (the queue sends at most 100). */
#define DELIVERY_JOB_RCPTS_MAX 1000
#define DELIVERY_RESULT_TIMEOUT_MS 10000
#define DELIVERY_RESULT_TRIES 6

struct delivery_ctx {
	struct mf_bus *bus;
	struct mf_redis *redis;
	struct mf_blob_store *blobs;
	SSL_CTX *tls;
	char *hostname;
	char *worker_name;
	bool local_delivery;        /* the embedded default */
	unsigned nthreads;
	int64_t ack_wait_ms;
	unsigned smtp_timeout_ms;   /* 0: the client's default */
	unsigned smtp_port;         /* direct delivery: 25 */

	pthread_t threads[DELIVERY_THREADS_MAX];
	unsigned started;
	_Atomic bool stopping;

	/* Counters for /metrics (updated from several threads). */
	_Atomic uint64_t jobs_total;
	_Atomic uint64_t delivered_total;
	_Atomic uint64_t failed_total;
	_Atomic uint64_t deferred_total;
};

int delivery_workers_start(struct delivery_ctx *ctx, const char **error_r);
void delivery_workers_stop(struct delivery_ctx *ctx);

#endif
