/* queue: owns the outgoing queue (SQLite at <data-dir>/queue/queue.db):
 * queue.v1.add, scheduling and retries, dispatch to delivery workers over
 * JetStream, results, DSNs, hold rules, suppression lists, retired history
 * and the admin API (see queue_dispatch.h, queue_admin.h). */
#include "queue_add.h"
#include "queue_admin.h"
#include "queue_ctx.h"
#include "queue_dispatch.h"
#include "queue_retired.h"
#include "queue_schedule.h"
#include "buf.h"
#include "error.h"
#include "log.h"
#include "service.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static struct queue_ctx queue;

static double read_counter(void *ctx)
{
	return (double)*(_Atomic uint64_t *)ctx;
}

static double read_queued(void *ctx)
{
	return (double)queue_db_count((struct queue_db *)ctx);
}

static void register_metrics(struct mf_metrics *m)
{
	mf_metrics_counter_func(m, "mailfleet_queue_added_total", "Messages queued by queue.v1.add.",
				read_counter, &queue.added_total);
	mf_metrics_counter_func(m, "mailfleet_queue_delivered_total",
				"Recipients delivered and retired.", read_counter,
				&queue.delivered_total);
	mf_metrics_counter_func(m, "mailfleet_queue_failed_total",
				"Recipients that failed for good (DSN, admin fail).", read_counter,
				&queue.failed_total);
	mf_metrics_counter_func(m, "mailfleet_queue_dispatched_total",
				"Jobs published for delivery workers.", read_counter,
				&queue.dispatched_total);
	mf_metrics_counter_func(m, "mailfleet_queue_dsn_total", "DSNs composed.", read_counter,
				&queue.dsn_total);
	mf_metrics_gauge_func(m, "mailfleet_queue_queued_recipients", "Recipients in the queue.",
			      read_queued, queue.db);
}

static int start(struct mf_service *svc, const char **error_r)
{
	const struct mf_config *cfg = mf_service_config(svc);
	char *dir = mf_xasprintf("%s/queue", cfg->data_dir);
	char *path = mf_xasprintf("%s/queue.db", dir);
	const struct mf_config_service *sc = &cfg->services[MF_SERVICE_QUEUE];
	int ret = -1;

	pthread_mutex_init(&queue.wake_lock, NULL);
	pthread_cond_init(&queue.wake_cond, NULL);
	pthread_mutex_init(&queue.seq_lock, NULL);
	pthread_mutex_init(&queue.result_lock, NULL);
	pthread_cond_init(&queue.result_cond, NULL);
	queue.bus = mf_service_bus(svc);
	queue.hostname = mf_xstrdup(cfg->hostname);
	/* A lease shorter than a second would redispatch jobs that are still
	 * being delivered. */
	queue.lease_ms = sc->lease_ms >= 1000 ? (int64_t)sc->lease_ms : QUEUE_LEASE_MS_DEFAULT;
	queue.retired_keep_ms = sc->retired_keep_ms > 0 ? (int64_t)sc->retired_keep_ms :
				QUEUE_RETIRED_KEEP_MS;
	if (sc->test_first_backoff_ms >= 100)
		queue_schedule_set_backoff_first((int64_t)sc->test_first_backoff_ms);
	if (mkdir(cfg->data_dir, 0750) < 0 && errno != EEXIST) {
		*error_r = mf_errorf("queue: mkdir %s: %s", cfg->data_dir, strerror(errno));
		goto out;
	}
	if (mkdir(dir, 0750) < 0 && errno != EEXIST) {
		*error_r = mf_errorf("queue: mkdir %s: %s", dir, strerror(errno));
		goto out;
	}
	if (queue_db_open(path, &queue.db, error_r) < 0 ||
	    mf_blob_store_open(cfg->blob_dir, &queue.blobs, error_r) < 0)
		goto out;
	register_metrics(mf_service_metrics(svc));
	if (mf_bus_serve(queue.bus, "queue.v1.add", "queue", MF_SERVICE_BUS_WORKERS,
			 queue_add_handler, &queue, error_r) < 0 ||
	    mf_bus_serve(queue.bus, "delivery.v1.result", "queue", QUEUE_RESULT_WORKERS,
			 queue_dispatch_result_handler, &queue, error_r) < 0 ||
	    queue_admin_serve(&queue, error_r) < 0 ||
	    queue_dispatch_start(&queue, error_r) < 0)
		goto out;
	mf_log_info("queue", NULL, "queue started", "db=%s lease_ms=%lld", path,
		    (long long)queue.lease_ms);
	ret = 0;
out:
	free(dir);
	free(path);
	return ret;
}

static void stop(struct mf_service *svc)
{
	queue_dispatch_stop(&queue);
}

int main(int argc, char **argv)
{
	static const struct mf_service_def def = {
		.id = MF_SERVICE_QUEUE, .start = start, .stop = stop,
	};
	int rc = mf_service_main(&def, argc, argv);

	queue_db_close(&queue.db);
	mf_blob_store_free(&queue.blobs);
	free(queue.hostname);
	return rc;
}
