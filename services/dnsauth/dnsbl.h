/* dnsbl: DNS blocklist checks (RFC 5782): is an address listed in a zone,
 * and a monitor that checks our own addresses against the configured zones
 * now and then and shows the result in metrics. */
#ifndef DNS_DNSBL_H
#define DNS_DNSBL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "resolver.h"

struct mf_metrics;

/* A-record values of one listing that we keep. */
#define DNSBL_ADDRESSES_MAX 8
#define DNSBL_TEXT_MAX 512

enum dnsbl_status {
	DNSBL_NOT_LISTED,
	DNSBL_LISTED,
	DNSBL_TEMPERROR,
};

struct dnsbl_outcome {
	enum dnsbl_status status;
	/* LISTED: the 127.0.0.0/8 values (RFC 5782 2.1) and the zone's TXT. */
	struct dns_ip addresses[DNSBL_ADDRESSES_MAX];
	size_t address_count;
	char *text;      /* NULL when the zone gives none */
	char *problem;   /* TEMPERROR: why */
	bool authentic;
};

/* Asks zone about ip (<reversed ip>.<zone> A, then TXT when listed).  An
 * answer outside 127.0.0.0/8 is not a listing (RFC 5782 2.1, 5: it signals
 * a broken or hijacked zone) but a TEMPERROR.  Always fills outcome_r
 * (free with dnsbl_outcome_clear). */
void dnsbl_check(struct dns_resolver *r, const struct dns_ip *ip, const char *zone,
		 struct dnsbl_outcome *outcome_r);
void dnsbl_outcome_clear(struct dnsbl_outcome *outcome);
const char *dnsbl_status_name(enum dnsbl_status status);

struct dnsbl_monitor;

/* Starts a thread that checks every ip against every zone at once and then
 * every interval_ms, setting the gauge
 * mailfleet_dnsauth_dnsbl_listed{zone,ip} to 1 (listed) or 0, and counting
 * mailfleet_dnsauth_dnsbl_monitor_errors_total{zone} (the gauge keeps its
 * value on errors).  Strings are copied.  Returns the monitor (free with
 * dnsbl_monitor_stop), or NULL with error_r for a bad address. */
struct dnsbl_monitor *dnsbl_monitor_start(struct dns_resolver *r, struct mf_metrics *metrics,
					  char *const *zones, size_t nzones,
					  char *const *ips, size_t nips, uint64_t interval_ms,
					  const char **error_r);
void dnsbl_monitor_stop(struct dnsbl_monitor **monitor);
/* Runs one round now and waits for it (tests). */
void dnsbl_monitor_run_once(struct dnsbl_monitor *monitor);

#endif
