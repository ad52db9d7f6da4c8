/* dnsauth: the one service that talks to DNS and holds the DKIM private keys:
 * lookups, SPF, DKIM, DMARC, iprev, DNSBL, DKIM signing.
 *
 * This version has the service frame only: dns.v1 and auth.v1 answer with a
 * clear "not available yet" error. */
#include "service.h"

static int start(struct mf_service *svc, const char **error_r)
{
	if (mf_service_serve_unavailable(svc, "dns.v1.>", "DNS lookup", error_r) < 0)
		return -1;
	return mf_service_serve_unavailable(svc, "auth.v1.>", "message authentication", error_r);
}

int main(int argc, char **argv)
{
	static const struct mf_service_def def = { .id = MF_SERVICE_DNSAUTH, .start = start };
	return mf_service_main(&def, argc, argv);
}
