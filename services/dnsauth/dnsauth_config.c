#include "dnsauth_config.h"

const char *dnsauth_resolver_mode_name(const struct mf_config_dnsauth *d)
{
	switch (d->resolver) {
	case MF_DNS_RECURSIVE: return "recursive";
	case MF_DNS_FORWARD: return "forward";
	case MF_DNS_RESOLVCONF: return "resolvconf";
	case MF_DNS_NONE: return "none";
	}
	return "unknown";
}

int dnsauth_resolver_create(const struct mf_config_dnsauth *d, struct dns_resolver **resolver_r,
			    const char **error_r)
{
	struct dns_resolver_settings s = {
		.mode = DNS_RESOLVER_RECURSIVE,
		.forward = (const char *const *)d->forward,
		.forward_count = d->forward_count,
		.resolvconf = d->resolvconf,
		.trust_anchor = d->trust_anchor,
		.timeout_ms = (unsigned)(d->timeout_ms > DNS_TIMEOUT_MAX_MS ? DNS_TIMEOUT_MAX_MS :
										d->timeout_ms),
	};

	if (d->resolver == MF_DNS_FORWARD)
		s.mode = DNS_RESOLVER_FORWARD;
	else if (d->resolver == MF_DNS_RESOLVCONF)
		s.mode = DNS_RESOLVER_RESOLVCONF;
	else if (d->resolver == MF_DNS_NONE)
		s.mode = DNS_RESOLVER_NONE;
	return dns_resolver_create(&s, resolver_r, error_r);
}
