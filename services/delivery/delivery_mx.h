/* delivery_mx: where direct delivery goes (RFC 5321 5.1), looked up
 * through dnsauth (dns.v1.lookup, proto/dns.proto):
 * - MX records sorted by preference;
 * - no MX records (NODATA): the domain itself is the host ("implicit MX");
 * - a null MX (RFC 7505: one MX "0 .") or a domain that does not exist:
 *   a permanent failure;
 * - a DNS temporary failure: a temporary failure.
 * Host addresses: AAAA first, then A. */
#ifndef DELIVERY_MX_H
#define DELIVERY_MX_H

#include <stddef.h>

#include "bus.h"

#define DELIVERY_MX_HOSTS_MAX 16
#define DELIVERY_MX_ADDRS_MAX 16
#define DELIVERY_MX_NAME_MAX 255
#define DELIVERY_DNS_TIMEOUT_MS 15000

enum delivery_mx_result {
	DELIVERY_MX_OK,
	DELIVERY_MX_TEMPORARY,
	DELIVERY_MX_PERMANENT,
};

struct delivery_mx {
	char hosts[DELIVERY_MX_HOSTS_MAX][DELIVERY_MX_NAME_MAX + 1];
	size_t nhosts;
	/* For failures: an SMTP-like code, enhanced code and text for the DSN. */
	unsigned code;
	char enhanced[16];
	char text[512];
};

/* Looks up the hosts for domain (lower-case A-labels). */
enum delivery_mx_result delivery_mx_lookup(struct mf_bus *bus, const char *domain,
					   const char *cid, struct delivery_mx *mx_r);

/* Looks up host's addresses (IPv6 first).  Returns the number found (0
 * when none or on failure, with error_r set on failure). */
size_t delivery_mx_addresses(struct mf_bus *bus, const char *host, const char *cid,
			     char addrs_r[][64], size_t max, const char **error_r);

#endif
