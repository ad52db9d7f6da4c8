#include "dns_api.h"

#include "buf.h"
#include "log.h"
#include "metrics.h"

#include "dns.pb-c.h"

#include <stdlib.h>
#include <string.h>

struct dns_api {
	struct dns_resolver *r;
	struct mf_metric *lookups;
};

static const char *const rcode_labels[] = { "ok", "nodata", "nxdomain", "tempfail", "invalid",
					    NULL };

static bool type_allowed(uint16_t t)
{
	return t == DNS_TYPE_A || t == DNS_TYPE_AAAA || t == DNS_TYPE_MX || t == DNS_TYPE_TXT ||
	       t == DNS_TYPE_PTR || t == DNS_TYPE_TLSA || t == DNS_TYPE_CNAME;
}

static Mailfleet__V1__DnsRcode rcode_of(enum dns_status s)
{
	switch (s) {
	case DNS_STATUS_OK: return MAILFLEET__V1__DNS_RCODE__DNS_RCODE_OK;
	case DNS_STATUS_NODATA: return MAILFLEET__V1__DNS_RCODE__DNS_RCODE_NODATA;
	case DNS_STATUS_NXDOMAIN: return MAILFLEET__V1__DNS_RCODE__DNS_RCODE_NXDOMAIN;
	case DNS_STATUS_TEMPFAIL: break;
	}
	return MAILFLEET__V1__DNS_RCODE__DNS_RCODE_TEMPFAIL;
}

void dns_api_lookup(struct dns_resolver *r, const uint8_t *body, size_t len,
		    struct mf_bus_response *resp)
{
	Mailfleet__V1__LookupRequest *req;
	Mailfleet__V1__LookupReply reply = MAILFLEET__V1__LOOKUP_REPLY__INIT;
	Mailfleet__V1__DnsRecord *recs = NULL, **ptrs = NULL;
	char (*addrs)[64] = NULL;
	struct dns_answer *a = NULL;
	const char *err;
	uint16_t type;

	req = mailfleet__v1__lookup_request__unpack(NULL, len, body);
	if (req == NULL) {
		mf_bus_response_set(resp, MF_BUS_PERMANENT, "malformed LookupRequest");
		return;
	}
	type = (uint16_t)req->type;
	if ((unsigned)req->type > 0xffff || !type_allowed(type)) {
		mf_bus_response_set(resp, MF_BUS_PERMANENT, "unsupported record type %d",
				    (int)req->type);
		goto out;
	}
	if (dns_name_check(req->name, &err) < 0) {
		mf_bus_response_set(resp, MF_BUS_PERMANENT, "bad name: %s", err);
		goto out;
	}
	a = dns_lookup(r, req->name, type);
	reply.rcode = rcode_of(a->status);
	reply.authentic = a->authentic;
	reply.canonical_name = a->canonname != NULL ? a->canonname : (char *)"";
	reply.error = a->error != NULL ? a->error : (char *)"";
	recs = mf_xcalloc(a->count + 1, sizeof(*recs));
	ptrs = mf_xcalloc(a->count + 1, sizeof(*ptrs));
	addrs = mf_xcalloc(a->count + 1, sizeof(*addrs));
	for (size_t i = 0; i < a->count; i++) {
		const struct dns_record *rec = &a->records[i];
		Mailfleet__V1__DnsRecord *p = &recs[i];

		mailfleet__v1__dns_record__init(p);
		p->type = (Mailfleet__V1__DnsType)rec->type;
		p->ttl = rec->ttl;
		if (rec->type == DNS_TYPE_A || rec->type == DNS_TYPE_AAAA)
			p->address = (char *)dns_ip_format(&rec->ip, addrs[i], sizeof(addrs[i]));
		if (rec->name != NULL)
			p->name = rec->name;
		p->preference = rec->preference;
		if (rec->type == DNS_TYPE_TXT) {
			p->text.data = rec->data;
			p->text.len = rec->data_len;
		}
		if (rec->type == DNS_TYPE_TLSA) {
			p->tlsa_usage = rec->tlsa_usage;
			p->tlsa_selector = rec->tlsa_selector;
			p->tlsa_matching_type = rec->tlsa_mtype;
			p->tlsa_data.data = rec->data;
			p->tlsa_data.len = rec->data_len;
		}
		ptrs[i] = p;
	}
	reply.records = ptrs;
	reply.n_records = a->count;
	size_t n = mailfleet__v1__lookup_reply__get_packed_size(&reply);
	uint8_t *out = mf_xmalloc(n + 1);
	mailfleet__v1__lookup_reply__pack(&reply, out);
	mf_bus_response_take_body(resp, out, n);
out:
	free(recs);
	free(ptrs);
	free(addrs);
	dns_answer_free(&a);
	mailfleet__v1__lookup_request__free_unpacked(req, NULL);
}

static void handle(void *ctx, const struct mf_bus_request *req, struct mf_bus_response *resp)
{
	struct dns_api *api = ctx;
	const char *label = "invalid";

	dns_api_lookup(api->r, req->body, req->body_len, resp);
	if (resp->status == MF_BUS_OK && resp->body_len > 0) {
		Mailfleet__V1__LookupReply *rep =
			mailfleet__v1__lookup_reply__unpack(NULL, resp->body_len, resp->body);
		if (rep != NULL) {
			label = rcode_labels[rep->rcode <= 3 ? rep->rcode : 3];
			mailfleet__v1__lookup_reply__free_unpacked(rep, NULL);
		}
	}
	mf_metric_inc(api->lookups, label);
	if (resp->status != MF_BUS_OK)
		mf_log(MF_LOG_DEBUG, "dns", req->cid, "lookup refused", "error=%s", resp->message);
}

int dns_api_serve(struct mf_bus *bus, struct dns_resolver *r, struct mf_metrics *metrics,
		  const char **error_r)
{
	/* One endpoint per process; the bus may call it until it closes. */
	static struct dns_api the_api;
	struct dns_api *api = &the_api;
	const struct mf_metric_label labels[] = {
		{ "rcode", rcode_labels },
		{ NULL, NULL },
	};

	api->r = r;
	api->lookups = mf_metrics_counter(metrics, "mailfleet_dnsauth_dns_lookups_total",
					  "dns.v1.lookup requests by outcome.", labels);
	return mf_bus_serve(bus, DNS_API_SUBJECT, "dnsauth", 4, handle, api, error_r);
}
