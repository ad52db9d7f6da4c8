/* queue: owns the outgoing queue (SQLite): scheduling, retries, DSNs, hold
 * rules, suppression lists, webhooks.
 *
 * This version has the service frame only: the queue API over NATS answers
 * with a clear "not available yet" error, so submission cannot take mail. */
#include "service.h"

static int start(struct mf_service *svc, const char **error_r)
{
	return mf_service_serve_unavailable(svc, "queue.v1.>", "the outgoing queue", error_r);
}

int main(int argc, char **argv)
{
	static const struct mf_service_def def = { .id = MF_SERVICE_QUEUE, .start = start };
	return mf_service_main(&def, argc, argv);
}
