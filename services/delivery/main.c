/* delivery: workers that take due jobs from the queue's JetStream work queue
 * and deliver them (SMTP to the internet, or local accounts through the store).
 *
 * This version has the service frame only: its admin API over NATS answers
 * with a clear "not available yet" error and it takes no jobs. */
#include "service.h"

static int start(struct mf_service *svc, const char **error_r)
{
	return mf_service_serve_unavailable(svc, "delivery.v1.admin.>", "delivery", error_r);
}

int main(int argc, char **argv)
{
	static const struct mf_service_def def = {
		.id = MF_SERVICE_DELIVERY,
		.needs_redis = true,  /* per-destination concurrency shared by all workers */
		.start = start,
	};
	return mf_service_main(&def, argc, argv);
}
