#include "iprev.h"

#include "buf.h"

#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *iprev_result_name(enum iprev_result result)
{
	switch (result) {
	case IPREV_PASS: return "pass";
	case IPREV_FAIL: return "fail";
	case IPREV_TEMPERROR: return "temperror";
	case IPREV_PERMERROR: return "permerror";
	}
	return "unknown";
}

void iprev_check(struct dns_resolver *r, const struct dns_ip *ip,
		 struct iprev_outcome *o)
{
	char rev[80], name[128], addr[64];
	struct dns_answer *ptr;
	bool tempfail = false;

	memset(o, 0, sizeof(*o));
	o->authentic = true;
	dns_ip_reverse(ip, rev, sizeof(rev));
	snprintf(name, sizeof(name), "%s.%s", rev, ip->family == AF_INET ? "in-addr.arpa" : "ip6.arpa");
	dns_ip_format(ip, addr, sizeof(addr));
	ptr = dns_lookup(r, name, DNS_TYPE_PTR);
	switch (ptr->status) {
	case DNS_STATUS_TEMPFAIL:
		o->result = IPREV_TEMPERROR;
		o->problem = mf_xasprintf("PTR lookup for %s: %s", addr, ptr->error);
		o->authentic = false;
		goto out;
	case DNS_STATUS_NXDOMAIN:
	case DNS_STATUS_NODATA:
		o->result = IPREV_PERMERROR;
		o->problem = mf_xasprintf("no PTR records for %s", addr);
		o->authentic = ptr->authentic;
		goto out;
	case DNS_STATUS_OK:
		break;
	}
	o->authentic = ptr->authentic;
	o->ptr_names = mf_xcalloc(IPREV_NAMES_MAX, sizeof(*o->ptr_names));
	for (size_t i = 0; i < ptr->count && i < IPREV_NAMES_MAX && o->name == NULL; i++) {
		const char *host = ptr->records[i].name;
		struct dns_answer *fwd = dns_lookup(r, host, ip->family == AF_INET ? DNS_TYPE_A :
									 DNS_TYPE_AAAA);

		o->ptr_names[o->ptr_count++] = mf_xstrdup(host);
		if (fwd->status == DNS_STATUS_TEMPFAIL)
			tempfail = true;
		for (size_t j = 0; fwd->status == DNS_STATUS_OK && j < fwd->count; j++) {
			if (dns_ip_equal(&fwd->records[j].ip, ip)) {
				o->name = mf_xstrdup(host);
				if (!fwd->authentic)
					o->authentic = false;
			}
		}
		dns_answer_free(&fwd);
	}
	if (o->name != NULL) {
		o->result = IPREV_PASS;
	} else if (tempfail) {
		/* A name we could not look up might have confirmed the address. */
		o->result = IPREV_TEMPERROR;
		o->problem = mf_xasprintf("forward lookup of a PTR name of %s failed", addr);
	} else {
		o->result = IPREV_FAIL;
		o->problem = mf_xasprintf("no PTR name of %s maps back to it", addr);
	}
out:
	if (o->result != IPREV_PASS)
		o->authentic = o->authentic && o->result != IPREV_TEMPERROR;
	dns_answer_free(&ptr);
}

void iprev_outcome_clear(struct iprev_outcome *o)
{
	for (size_t i = 0; i < o->ptr_count; i++)
		free(o->ptr_names[i]);
	free(o->ptr_names);
	free(o->name);
	free(o->problem);
	memset(o, 0, sizeof(*o));
}
