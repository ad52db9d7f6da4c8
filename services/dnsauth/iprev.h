/* iprev: the RFC 8601 2.7.3 "iprev" check of an SMTP client: the PTR
 * names of its address, each looked up forward until one maps back to the
 * address. */
#ifndef DNS_IPREV_H
#define DNS_IPREV_H

#include <stdbool.h>
#include <stddef.h>

#include "resolver.h"

/* PTR names tried (RFC 8601 does not fix one; RFC 7208 uses 10 too). */
#define IPREV_NAMES_MAX 10

enum iprev_result {
	IPREV_PASS,       /* a PTR name has the address */
	IPREV_FAIL,       /* PTR names exist, none maps back */
	IPREV_TEMPERROR,  /* a DNS error that may go away */
	IPREV_PERMERROR,  /* no PTR records for the address */
};

struct iprev_outcome {
	enum iprev_result result;
	char *name;          /* PASS: the confirmed name; else NULL */
	char **ptr_names;    /* the PTR names seen (at most IPREV_NAMES_MAX) */
	size_t ptr_count;
	bool authentic;      /* every answer used was DNSSEC-authentic */
	char *problem;       /* not PASS: why */
};

/* Always fills outcome_r; free its strings with iprev_outcome_clear. */
void iprev_check(struct dns_resolver *r, const struct dns_ip *ip,
		 struct iprev_outcome *outcome_r);
void iprev_outcome_clear(struct iprev_outcome *outcome);
/* "pass", "fail", "temperror", "permerror". */
const char *iprev_result_name(enum iprev_result result);

#endif
