/* reports: DMARC evaluations and TLS results into reports, and parsing of the
 * reports other servers send us.
 *
 * This version has the service frame only: reports.v1 answers with a clear
 * "not available yet" error. */
#include "service.h"

static int start(struct mf_service *svc, const char **error_r)
{
	return mf_service_serve_unavailable(svc, "reports.v1.>", "reporting", error_r);
}

int main(int argc, char **argv)
{
	static const struct mf_service_def def = { .id = MF_SERVICE_REPORTS, .start = start };
	return mf_service_main(&def, argc, argv);
}
