/* dnsauth_probe: runs dnsauth's checks from the command line for the
 * integration tests.
 *
 *   dnsauth_probe CONF spf IP HELO MAILFROM     SPF with the resolver CONF names
 *   dnsauth_probe CONF iprev IP
 *   dnsauth_probe CONF dnsbl IP ZONE
 *   dnsauth_probe CONF lookup NAME TYPE         dns.v1.lookup over NATS
 *
 * Prints one line of key=value pairs; exits 0 when it got an answer. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bus.h"
#include "config.h"
#include "dns.pb-c.h"
#include "services/dnsauth/dnsauth_config.h"
#include "services/dnsauth/dnsbl.h"
#include "services/dnsauth/iprev.h"
#include "services/dnsauth/resolver.h"
#include "services/dnsauth/spf.h"

static int usage(void)
{
	fprintf(stderr, "usage: dnsauth_probe CONF spf IP HELO MAILFROM | iprev IP | "
			"dnsbl IP ZONE | lookup NAME TYPE\n");
	return 2;
}

static int lookup(const struct mf_config *c, const char *name, const char *type)
{
	Mailfleet__V1__LookupRequest req = MAILFLEET__V1__LOOKUP_REQUEST__INIT;
	Mailfleet__V1__LookupReply *rep;
	struct mf_bus_reply reply;
	struct mf_bus *bus;
	const char *err;
	uint8_t buf[512];
	size_t n;
	int ret = 1;

	req.name = (char *)name;
	req.type = (Mailfleet__V1__DnsType)dns_type_by_name(type);
	n = mailfleet__v1__lookup_request__pack(&req, buf);
	if (mf_bus_connect(c->nats_url, "dnsauth_probe", &bus, &err) < 0) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	for (int i = 0; i < 50 && !mf_bus_connected(bus); i++)
		usleep(100000);
	if (mf_bus_request(bus, "dns.v1.lookup", "probe", buf, n, 10000, &reply) < 0) {
		printf("status=%s message=\"%s\"\n", mf_bus_status_name(reply.status), reply.message);
		goto out;
	}
	rep = mailfleet__v1__lookup_reply__unpack(NULL, reply.body_len, reply.body);
	if (rep == NULL) {
		printf("status=malformed\n");
		goto out;
	}
	static const char *const rcodes[] = { "ok", "nodata", "nxdomain", "tempfail" };
	printf("rcode=%s authentic=%d count=%zu", rep->rcode <= 3 ? rcodes[rep->rcode] : "?",
	       rep->authentic, rep->n_records);
	if (rep->canonical_name[0] != '\0')
		printf(" canonical=%s", rep->canonical_name);
	if (rep->error[0] != '\0')
		printf(" error=\"%s\"", rep->error);
	for (size_t i = 0; i < rep->n_records; i++) {
		Mailfleet__V1__DnsRecord *r = rep->records[i];
		if (r->address[0] != '\0')
			printf(" addr=%s", r->address);
		if (r->name[0] != '\0')
			printf(" name=%s", r->name);
		if (r->text.len > 0)
			printf(" text=\"%.*s\"", (int)r->text.len, (const char *)r->text.data);
		if (r->type == MAILFLEET__V1__DNS_TYPE__DNS_TYPE_TLSA)
			printf(" tlsa=%u/%u/%u/%zu", r->tlsa_usage, r->tlsa_selector,
			       r->tlsa_matching_type, r->tlsa_data.len);
	}
	printf("\n");
	mailfleet__v1__lookup_reply__free_unpacked(rep, NULL);
	ret = 0;
out:
	mf_bus_reply_free(&reply);
	mf_bus_close(&bus);
	return ret;
}

int main(int argc, char **argv)
{
	struct mf_config *c = NULL;
	struct dns_resolver *r = NULL;
	struct dns_ip ip;
	const char *err;
	int ret = 1;

	if (argc < 4)
		return usage();
	if (mf_config_load(argv[1], &c, &err) < 0) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	if (strcmp(argv[2], "lookup") == 0) {
		ret = argc == 5 ? lookup(c, argv[3], argv[4]) : usage();
		goto out;
	}
	if (dns_ip_parse(argv[3], &ip) < 0) {
		fprintf(stderr, "bad IP %s\n", argv[3]);
		goto out;
	}
	if (dnsauth_resolver_create(&c->dnsauth, &r, &err) < 0) {
		fprintf(stderr, "%s\n", err);
		goto out;
	}
	if (strcmp(argv[2], "spf") == 0 && argc == 6) {
		struct spf_request req = { .ip = ip, .helo = argv[4], .mail_from = argv[5],
					   .receiver = c->hostname };
		struct spf_verdict v;

		spf_verify(r, &req, &v);
		printf("spf=%s authentic=%d domain=%s helo=%s problem=\"%s\" explanation=\"%s\"\n",
		       spf_result_name(v.mail_from.result), v.mail_from.authentic,
		       v.mail_from.domain != NULL ? v.mail_from.domain : "",
		       spf_result_name(v.helo.result),
		       v.mail_from.problem != NULL ? v.mail_from.problem : "",
		       v.mail_from.explanation != NULL ? v.mail_from.explanation : "");
		spf_verdict_clear(&v);
		ret = 0;
	} else if (strcmp(argv[2], "iprev") == 0 && argc == 4) {
		struct iprev_outcome o;

		iprev_check(r, &ip, &o);
		printf("iprev=%s name=%s authentic=%d problem=\"%s\"\n", iprev_result_name(o.result),
		       o.name != NULL ? o.name : "", o.authentic, o.problem != NULL ? o.problem : "");
		iprev_outcome_clear(&o);
		ret = 0;
	} else if (strcmp(argv[2], "dnsbl") == 0 && argc == 5) {
		struct dnsbl_outcome o;

		dnsbl_check(r, &ip, argv[4], &o);
		printf("dnsbl=%s text=\"%s\" problem=\"%s\"\n", dnsbl_status_name(o.status),
		       o.text != NULL ? o.text : "", o.problem != NULL ? o.problem : "");
		dnsbl_outcome_clear(&o);
		ret = 0;
	} else {
		ret = usage();
	}
out:
	dns_resolver_free(&r);
	mf_config_free(&c);
	return ret;
}
