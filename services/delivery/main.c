/* delivery: workers that take due jobs from the queue's JetStream work
 * queue and deliver them (SMTP to a relay or the internet, local accounts
 * through the store, or the embedded default's loop-back), then report
 * per-recipient results to the queue.  Run as many as the load needs.
 *
 * Settings: the delivery block of mailfleet.conf (threads, ack-wait,
 * smtp-timeout, test-smtp-port); routes and transports come from
 * domains.conf (mf_domains_current, so a reload takes effect for the next
 * job). */
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

static int start(struct mf_service *svc, const char **error_r)
{
	const struct mf_config *cfg = mf_service_config(svc);
	const struct mf_config_service *sc = &cfg->services[MF_SERVICE_DELIVERY];
	char host[256];

	delivery.bus = mf_service_bus(svc);
	delivery.redis = mf_service_redis(svc);
	delivery.hostname = mf_xstrdup(cfg->hostname);
	delivery.local_delivery = cfg->services[MF_SERVICE_DELIVERY].local_delivery;
	delivery.nthreads = sc->threads > 0 && sc->threads <= DELIVERY_THREADS_MAX ?
			    (unsigned)sc->threads : DELIVERY_THREADS_DEFAULT;
	/* JetStream needs a positive ack wait; under a second would hand jobs
	 * to a second worker while the first is still connecting. */
	delivery.ack_wait_ms = sc->ack_wait_ms >= 1000 && sc->ack_wait_ms <= DELIVERY_ACK_WAIT_MS_MAX ?
			       (int64_t)sc->ack_wait_ms : DELIVERY_ACK_WAIT_MS_DEFAULT;
	delivery.smtp_timeout_ms = sc->smtp_timeout_ms <= DELIVERY_SMTP_TIMEOUT_MS_MAX ?
				   (unsigned)sc->smtp_timeout_ms : 0;
	delivery.smtp_port = sc->test_smtp_port > 0 ? (unsigned)sc->test_smtp_port : 25;
	if (gethostname(host, sizeof(host)) < 0)
		host[0] = '\0';
	host[sizeof(host) - 1] = '\0';
	delivery.worker_name = mf_xasprintf("%s/%ld", host, (long)getpid());
	if (mf_blob_store_open(cfg->blob_dir, &delivery.blobs, error_r) < 0 ||
	    mf_tls_client_ctx_new(false, NULL, &delivery.tls, error_r) < 0)
		return -1;
	register_metrics(mf_service_metrics(svc));
	if (mf_service_serve_unavailable(svc, "delivery.v1.admin.>", "the delivery admin API",
					 error_r) < 0)
		return -1;
	mf_log_info("delivery", NULL, "workers starting", "threads=%u local_delivery=%d smtp_port=%u",
		    delivery.nthreads, delivery.local_delivery, delivery.smtp_port);
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
	free(delivery.hostname);
	free(delivery.worker_name);
	return rc;
}
