#include "delivery_mx.h"
#include "buf.h"
#include "error.h"

#include "dns.pb-c.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Sends one lookup.  Returns the reply (free with _free_unpacked) or NULL
 * with error_r. */
static Mailfleet__V1__LookupReply *lookup(struct mf_bus *bus, const char *name,
					  Mailfleet__V1__DnsType type, const char *cid,
					  const char **error_r)
{
	Mailfleet__V1__LookupRequest req = MAILFLEET__V1__LOOKUP_REQUEST__INIT;
	Mailfleet__V1__LookupReply *rep = NULL;
	struct mf_bus_reply reply;
	size_t len;
	uint8_t *buf;

	req.name = (char *)name;
	req.type = type;
	len = mailfleet__v1__lookup_request__get_packed_size(&req);
	buf = mf_xmalloc(len > 0 ? len : 1);
	mailfleet__v1__lookup_request__pack(&req, buf);
	if (mf_bus_request(bus, "dns.v1.lookup", cid, buf, len, DELIVERY_DNS_TIMEOUT_MS, &reply) < 0) {
		*error_r = mf_errorf("dns lookup %s: %s", name, reply.message);
	} else {
		rep = mailfleet__v1__lookup_reply__unpack(NULL, reply.body_len, reply.body);
		if (rep == NULL)
			*error_r = mf_errorf("dns lookup %s: malformed reply", name);
	}
	mf_bus_reply_free(&reply);
	free(buf);
	return rep;
}

static int by_preference(const void *a, const void *b)
{
	const Mailfleet__V1__DnsRecord *ra = *(Mailfleet__V1__DnsRecord *const *)a;
	const Mailfleet__V1__DnsRecord *rb = *(Mailfleet__V1__DnsRecord *const *)b;
	return ra->preference < rb->preference ? -1 : ra->preference > rb->preference;
}

static void set_fail(struct delivery_mx *mx, unsigned code, const char *enh, const char *text)
{
	mx->code = code;
	snprintf(mx->enhanced, sizeof(mx->enhanced), "%s", enh);
	snprintf(mx->text, sizeof(mx->text), "%s", text);
}

enum delivery_mx_result delivery_mx_lookup(struct mf_bus *bus, const char *domain,
					   const char *cid, struct delivery_mx *mx)
{
	Mailfleet__V1__LookupReply *rep;
	Mailfleet__V1__DnsRecord **recs = NULL;
	enum delivery_mx_result ret = DELIVERY_MX_TEMPORARY;
	const char *error;
	size_t n = 0;

	memset(mx, 0, sizeof(*mx));
	rep = lookup(bus, domain, MAILFLEET__V1__DNS_TYPE__DNS_TYPE_MX, cid, &error);
	if (rep == NULL) {
		set_fail(mx, 0, "4.4.3", error);
		return DELIVERY_MX_TEMPORARY;
	}
	switch (rep->rcode) {
	case MAILFLEET__V1__DNS_RCODE__DNS_RCODE_NXDOMAIN: {
		char *t = mf_xasprintf("the domain %s does not exist (DNS NXDOMAIN)", domain);
		set_fail(mx, 550, "5.1.2", t);
		free(t);
		ret = DELIVERY_MX_PERMANENT;
		goto out;
	}
	case MAILFLEET__V1__DNS_RCODE__DNS_RCODE_NODATA:
		/* RFC 5321 5.1: no MX, the domain itself is the host. */
		snprintf(mx->hosts[0], sizeof(mx->hosts[0]), "%s", domain);
		mx->nhosts = 1;
		ret = DELIVERY_MX_OK;
		goto out;
	case MAILFLEET__V1__DNS_RCODE__DNS_RCODE_OK:
		break;
	default: {
		char *t = mf_xasprintf("MX lookup for %s failed: %s", domain,
				       *rep->error != '\0' ? rep->error : "temporary DNS error");
		set_fail(mx, 0, "4.4.3", t);
		free(t);
		goto out;
	}
	}
	recs = mf_xcalloc(rep->n_records + 1, sizeof(*recs));
	for (size_t i = 0; i < rep->n_records; i++)
		if (rep->records[i]->type == MAILFLEET__V1__DNS_TYPE__DNS_TYPE_MX)
			recs[n++] = rep->records[i];
	if (n == 0) {
		snprintf(mx->hosts[0], sizeof(mx->hosts[0]), "%s", domain);
		mx->nhosts = 1;
		ret = DELIVERY_MX_OK;
		goto out;
	}
	/* RFC 7505 3: a single MX with the root as exchange. */
	if (n == 1 && (*recs[0]->name == '\0' || strcmp(recs[0]->name, ".") == 0)) {
		char *t = mf_xasprintf("the domain %s does not accept mail (null MX)", domain);
		set_fail(mx, 556, "5.1.10", t);
		free(t);
		ret = DELIVERY_MX_PERMANENT;
		goto out;
	}
	qsort(recs, n, sizeof(*recs), by_preference);
	for (size_t i = 0; i < n && mx->nhosts < DELIVERY_MX_HOSTS_MAX; i++) {
		if (*recs[i]->name == '\0' || strcmp(recs[i]->name, ".") == 0 ||
		    strlen(recs[i]->name) > DELIVERY_MX_NAME_MAX)
			continue;
		snprintf(mx->hosts[mx->nhosts++], DELIVERY_MX_NAME_MAX + 1, "%s", recs[i]->name);
	}
	if (mx->nhosts == 0) {
		set_fail(mx, 0, "4.4.3", "no usable MX hosts");
		goto out;
	}
	ret = DELIVERY_MX_OK;
out:
	free(recs);
	mailfleet__v1__lookup_reply__free_unpacked(rep, NULL);
	return ret;
}

size_t delivery_mx_addresses(struct mf_bus *bus, const char *host, const char *cid,
			     char addrs_r[][64], size_t max, const char **error_r)
{
	static const Mailfleet__V1__DnsType types[] = {
		MAILFLEET__V1__DNS_TYPE__DNS_TYPE_AAAA, MAILFLEET__V1__DNS_TYPE__DNS_TYPE_A,
	};
	unsigned char bin[16];
	size_t n = 0;

	*error_r = NULL;
	/* An address literal as host (implicit MX of "[192.0.2.1]" is not
	 * valid, but a relay host may be one). */
	if (inet_pton(AF_INET, host, bin) == 1 || inet_pton(AF_INET6, host, bin) == 1) {
		snprintf(addrs_r[0], 64, "%s", host);
		return 1;
	}
	for (size_t t = 0; t < 2; t++) {
		Mailfleet__V1__LookupReply *rep = lookup(bus, host, types[t], cid, error_r);
		if (rep == NULL)
			continue;
		if (rep->rcode == MAILFLEET__V1__DNS_RCODE__DNS_RCODE_TEMPFAIL)
			*error_r = mf_errorf("address lookup for %s: %s", host, rep->error);
		for (size_t i = 0; i < rep->n_records && n < max; i++) {
			const char *a = rep->records[i]->address;
			if (rep->records[i]->type != types[t] || strlen(a) >= 64)
				continue;
			if (inet_pton(types[t] == MAILFLEET__V1__DNS_TYPE__DNS_TYPE_A ? AF_INET : AF_INET6,
				      a, bin) != 1)
				continue;
			snprintf(addrs_r[n++], 64, "%s", a);
		}
		mailfleet__v1__lookup_reply__free_unpacked(rep, NULL);
	}
	if (n == 0 && *error_r == NULL)
		*error_r = mf_errorf("%s has no IPv6 or IPv4 address", host);
	return n;
}
