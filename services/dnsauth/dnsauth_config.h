/* dnsauth_config: the resolver as mailfleet.conf's dnsauth block says. */
#ifndef DNSAUTH_CONFIG_H
#define DNSAUTH_CONFIG_H

#include "config.h"
#include "resolver.h"

/* Creates the libunbound resolver for d.  Returns 0 and resolver_r, or -1
 * with error_r. */
int dnsauth_resolver_create(const struct mf_config_dnsauth *d, struct dns_resolver **resolver_r,
			    const char **error_r);
/* "recursive", "forward" or "resolvconf". */
const char *dnsauth_resolver_mode_name(const struct mf_config_dnsauth *d);

#endif
