/* dns_api: the dns.v1.lookup endpoint (proto/dns.proto) on the bus. */
#ifndef DNS_API_H
#define DNS_API_H

#include <stddef.h>
#include <stdint.h>

#include "bus.h"
#include "resolver.h"

struct mf_metrics;

#define DNS_API_SUBJECT "dns.v1.lookup"

/* Serves DNS_API_SUBJECT (queue group "dnsauth") with r, counting lookups
 * in mailfleet_dnsauth_dns_lookups_total{rcode}.  r and metrics must
 * outlive the bus.  Once per process.  Returns 0, or -1 with error_r. */
int dns_api_serve(struct mf_bus *bus, struct dns_resolver *r, struct mf_metrics *metrics,
		  const char **error_r);

/* Answers one LookupRequest body into resp (for tests and the handler):
 * PERMANENT for a malformed request, a bad name or an unsupported type;
 * otherwise OK with a LookupReply, whatever DNS said. */
void dns_api_lookup(struct dns_resolver *r, const uint8_t *body, size_t len,
		    struct mf_bus_response *resp);

#endif
