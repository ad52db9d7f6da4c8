/* delivery: workers that take due jobs from the queue's JetStream work
 * queue and deliver them (SMTP to a relay or the internet, local accounts
 * through the store, or the embedded default's loop-back), then report
 * per-recipient results to the queue.  Run as many as the load needs.
 *
 * Environment (until these have config keys):
 *   MAILFLEET_DELIVERY_THREADS       worker threads in this process (4)
 *   MAILFLEET_DELIVERY_ROUTES        routes, see delivery_route.h
 *   MAILFLEET_DELIVERY_ACK_WAIT_MS   JetStream ack wait (30000)
 *   MAILFLEET_DELIVERY_SMTP_TIMEOUT_MS  per SMTP reply (RFC 5321 default)
 *   MAILFLEET_DELIVERY_SMTP_PORT     port of MX hosts (25; tests) */
#include "delivery_worker.h"
#include "buf.h"
#include "error.h"
#include "log.h"
#include "service.h"
#include "tls.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static struct delivery_ctx delivery;

static double read_counter(void *ctx)
{
	return (double)*(_Atomic uint64_t *)ctx;
}

static void register_metrics(struct mf_metrics *m)
{
	mf_metrics_counter_func(m, "mailfleet_delivery_jobs_total", "Jobs taken from the work queue.",
				read_counter, &delivery.jobs_total);
	mf_metrics_counter_func(m, "mailfleet_delivery_delivered_total", "Recipients delivered.",
				read_counter, &delivery.delivered_total);
	mf_metrics_counter_func(m, "mailfleet_delivery_failed_total",
				"Recipients with a permanent failure.", read_counter,
				&delivery.failed_total);
	mf_metrics_counter_func(m, "mailfleet_delivery_deferred_total",
				"Recipients with a temporary failure.", read_counter,
				&delivery.deferred_total);
}

static long env_long(const char *name, long def, long min, long max)
{
	const char *v = getenv(name);
	char *end;
	long n;

	if (v == NULL || *v == '\0')
		return def;
	n = strtol(v, &end, 10);
	if (*end != '\0' || n < min || n > max) {
		mf_log_warn("delivery", NULL, "ignoring bad environment value", "name=%s value=%s",
			    name, v);
		return def;
	}
	return n;
}

static int start(struct mf_service *svc, const char **error_r)
{
	const struct mf_config *cfg = mf_service_config(svc);
	const char *routes = getenv("MAILFLEET_DELIVERY_ROUTES");
	char host[256];

	delivery.bus = mf_service_bus(svc);
	delivery.redis = mf_service_redis(svc);
	delivery.hostname = mf_xstrdup(cfg->hostname);
	delivery.local_delivery = cfg->services[MF_SERVICE_DELIVERY].local_delivery;
	delivery.nthreads = (unsigned)env_long("MAILFLEET_DELIVERY_THREADS",
					       DELIVERY_THREADS_DEFAULT, 1, DELIVERY_THREADS_MAX);
	delivery.ack_wait_ms = env_long("MAILFLEET_DELIVERY_ACK_WAIT_MS",
					DELIVERY_ACK_WAIT_MS_DEFAULT, 1000, 3600 * 1000L);
	delivery.smtp_timeout_ms = (unsigned)env_long("MAILFLEET_DELIVERY_SMTP_TIMEOUT_MS", 0,
						      0, 3600 * 1000L);
	delivery.smtp_port = (unsigned)env_long("MAILFLEET_DELIVERY_SMTP_PORT", 25, 1, 65535);
	if (gethostname(host, sizeof(host)) < 0)
		host[0] = '\0';
	host[sizeof(host) - 1] = '\0';
	delivery.worker_name = mf_xasprintf("%s/%ld", host, (long)getpid());
	if (routes != NULL && delivery_routes_parse(routes, &delivery.routes, &delivery.nroutes,
						    error_r) < 0) {
		*error_r = mf_errorf("MAILFLEET_DELIVERY_ROUTES: %s", *error_r);
		return -1;
	}
	if (mf_blob_store_open(cfg->blob_dir, &delivery.blobs, error_r) < 0 ||
	    mf_tls_client_ctx_new(false, NULL, &delivery.tls, error_r) < 0)
		return -1;
	register_metrics(mf_service_metrics(svc));
	if (mf_service_serve_unavailable(svc, "delivery.v1.admin.>", "the delivery admin API",
					 error_r) < 0)
		return -1;
	mf_log_info("delivery", NULL, "workers starting", "threads=%u local_delivery=%d routes=%zu",
		    delivery.nthreads, delivery.local_delivery, delivery.nroutes);
	return delivery_workers_start(&delivery, error_r);
}

static void stop(struct mf_service *svc)
{
	delivery_workers_stop(&delivery);
}

int main(int argc, char **argv)
{
	static const struct mf_service_def def = {
		.id = MF_SERVICE_DELIVERY,
		.needs_redis = true,  /* per-destination concurrency shared by all workers */
		.start = start,
		.stop = stop,
	};
	int rc = mf_service_main(&def, argc, argv);

	mf_blob_store_free(&delivery.blobs);
	mf_tls_ctx_free(&delivery.tls);
	delivery_routes_free(&delivery.routes, delivery.nroutes);
	free(delivery.hostname);
	free(delivery.worker_name);
	return rc;
}
