/* dnsauth: the one service that talks to DNS and holds the DKIM private keys:
 * lookups, SPF, DKIM, DMARC, iprev, DNSBL, DKIM signing.
 *
 * It serves dns.v1.lookup (dns_api.c) and auth.v1 (auth_api.c, which
 * combines SPF, iprev and DNSBL from auth_checks.c with DKIM and DMARC),
 * and runs the DNSBL monitor of our own addresses (dnsbl.c). */
#include "service.h"

#include "auth_api.h"
#include "dns_api.h"
#include "dnsauth_config.h"
#include "dnsbl.h"
#include "log.h"
#include "resolver.h"

#include <stdlib.h>

static struct dns_resolver *resolver;
static struct dnsbl_monitor *monitor;

static double resolver_lookups(void *ctx)
{
	return (double)dns_resolver_lookups(ctx);
}

static int start(struct mf_service *svc, const char **error_r)
{
	const struct mf_config_dnsauth *d = &mf_service_config(svc)->dnsauth;

	if (dnsauth_resolver_create(d, &resolver, error_r) < 0)
		return -1;
	mf_log(MF_LOG_INFO, NULL, NULL, "resolver ready", "mode=%s dnssec=%s timeout_ms=%u",
	       dnsauth_resolver_mode_name(d), d->trust_anchor != NULL ? "validating" : "off",
	       (unsigned)d->timeout_ms);
	mf_metrics_counter_func(mf_service_metrics(svc), "mailfleet_dnsauth_resolver_lookups_total",
				"DNS lookups made by dnsauth.", resolver_lookups, resolver);
	if (dns_api_serve(mf_service_bus(svc), resolver, mf_service_metrics(svc), error_r) < 0)
		return -1;
	monitor = dnsbl_monitor_start(resolver, mf_service_metrics(svc), d->dnsbl, d->dnsbl_count,
				      d->monitor_ip, d->monitor_ip_count, d->monitor_interval_ms,
				      error_r);
	if (monitor == NULL)
		return -1;
	return dnsauth_auth_api_start(svc, resolver, error_r);
}

static void stop(struct mf_service *svc)
{
	/* The resolver stays until mf_service_main returns: bus workers may
	 * still be answering lookups until the bus closes. */
	dnsbl_monitor_stop(&monitor);
}

int main(int argc, char **argv)
{
	static const struct mf_service_def def = {
		.id = MF_SERVICE_DNSAUTH, .start = start, .stop = stop,
	};
	int ret = mf_service_main(&def, argc, argv);

	dnsbl_monitor_stop(&monitor);
	dns_resolver_free(&resolver);
	return ret;
}
