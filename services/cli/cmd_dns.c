/* mailfleet dns lookup: asks dnsauth, the one service that talks to DNS. */
#include "cmd_dns.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "buf.h"
#include "cli_bus.h"
#include "dns.pb-c.h"

/* dnsauth's own deadline per lookup is at most 60 s; lookups normally take
 * far less. */
#define CLI_DNS_TIMEOUT_MS 15000

static const struct {
	const char *name;
	Mailfleet__V1__DnsType type;
} dns_types[] = {
	{ "A", MAILFLEET__V1__DNS_TYPE__DNS_TYPE_A },
	{ "AAAA", MAILFLEET__V1__DNS_TYPE__DNS_TYPE_AAAA },
	{ "MX", MAILFLEET__V1__DNS_TYPE__DNS_TYPE_MX },
	{ "TXT", MAILFLEET__V1__DNS_TYPE__DNS_TYPE_TXT },
	{ "PTR", MAILFLEET__V1__DNS_TYPE__DNS_TYPE_PTR },
	{ "TLSA", MAILFLEET__V1__DNS_TYPE__DNS_TYPE_TLSA },
	{ "CNAME", MAILFLEET__V1__DNS_TYPE__DNS_TYPE_CNAME },
};

static const char *type_name(Mailfleet__V1__DnsType t)
{
	for (size_t i = 0; i < sizeof(dns_types) / sizeof(dns_types[0]); i++)
		if (dns_types[i].type == t)
			return dns_types[i].name;
	return "?";
}

/* Prints data as text with anything unprintable escaped. */
static void print_text(const uint8_t *data, size_t len)
{
	putchar('"');
	for (size_t i = 0; i < len; i++) {
		if (data[i] == '"' || data[i] == '\\')
			printf("\\%c", data[i]);
		else if (data[i] < 0x20 || data[i] > 0x7e)
			printf("\\%03u", data[i]);
		else
			putchar(data[i]);
	}
	putchar('"');
}

static void print_record(const Mailfleet__V1__DnsRecord *r)
{
	printf("%s\t%u\t", type_name(r->type), r->ttl);
	switch (r->type) {
	case MAILFLEET__V1__DNS_TYPE__DNS_TYPE_A:
	case MAILFLEET__V1__DNS_TYPE__DNS_TYPE_AAAA:
		printf("%s", r->address);
		break;
	case MAILFLEET__V1__DNS_TYPE__DNS_TYPE_MX:
		printf("%u %s", r->preference, r->name);
		break;
	case MAILFLEET__V1__DNS_TYPE__DNS_TYPE_TXT:
		print_text(r->text.data, r->text.len);
		break;
	case MAILFLEET__V1__DNS_TYPE__DNS_TYPE_TLSA:
		printf("%u %u %u ", r->tlsa_usage, r->tlsa_selector, r->tlsa_matching_type);
		for (size_t i = 0; i < r->tlsa_data.len; i++)
			printf("%02x", r->tlsa_data.data[i]);
		break;
	default:
		printf("%s", r->name);
		break;
	}
	putchar('\n');
}

int cli_cmd_dns(int argc, char **argv)
{
	Mailfleet__V1__LookupRequest req = MAILFLEET__V1__LOOKUP_REQUEST__INIT;
	Mailfleet__V1__LookupReply *rep = NULL;
	struct mf_config *config = NULL;
	struct mf_bus *bus = NULL;
	struct mf_bus_reply reply = { 0 };
	const char *config_path = NULL, *type = "A";
	uint8_t *data = NULL;
	size_t len;
	int c, ret = 1;
	bool have_type = false;

	optind = 1;
	while ((c = getopt(argc, argv, "c:")) != -1) {
		if (c != 'c')
			goto usage;
		config_path = optarg;
	}
	if (argc - optind < 2 || argc - optind > 3 || strcmp(argv[optind], "lookup") != 0)
		goto usage;
	if (argc - optind == 3)
		type = argv[optind + 2];
	for (size_t i = 0; i < sizeof(dns_types) / sizeof(dns_types[0]); i++) {
		if (strcasecmp(dns_types[i].name, type) == 0) {
			req.type = dns_types[i].type;
			have_type = true;
		}
	}
	if (!have_type) {
		fprintf(stderr, "mailfleet dns: unsupported type %s (A, AAAA, MX, TXT, PTR, TLSA, CNAME)\n",
			type);
		return 2;
	}
	req.name = argv[optind + 1];
	len = mailfleet__v1__lookup_request__get_packed_size(&req);
	data = mf_xmalloc(len + 1);
	mailfleet__v1__lookup_request__pack(&req, data);
	if (cli_bus_open(config_path, &config, &bus) < 0)
		goto out;
	if (mf_bus_request(bus, "dns.v1.lookup", NULL, data, len, CLI_DNS_TIMEOUT_MS, &reply) < 0) {
		fprintf(stderr, "mailfleet dns: %s (%s)\n", reply.message,
			mf_bus_status_name(reply.status));
		goto out;
	}
	rep = mailfleet__v1__lookup_reply__unpack(NULL, reply.body_len, reply.body);
	if (rep == NULL) {
		fprintf(stderr, "mailfleet dns: malformed reply from dnsauth\n");
		goto out;
	}
	printf("; %s %s: %s, %s\n", req.name, type_name(req.type),
	       rep->rcode == MAILFLEET__V1__DNS_RCODE__DNS_RCODE_OK ? "records" :
	       rep->rcode == MAILFLEET__V1__DNS_RCODE__DNS_RCODE_NODATA ? "no data" :
	       rep->rcode == MAILFLEET__V1__DNS_RCODE__DNS_RCODE_NXDOMAIN ? "NXDOMAIN" :
	       "temporary error",
	       rep->authentic ? "DNSSEC authentic" : "not DNSSEC-authenticated");
	if (rep->canonical_name[0] != '\0')
		printf("; canonical name %s\n", rep->canonical_name);
	if (rep->error[0] != '\0')
		printf("; %s\n", rep->error);
	for (size_t i = 0; i < rep->n_records; i++)
		print_record(rep->records[i]);
	ret = rep->rcode == MAILFLEET__V1__DNS_RCODE__DNS_RCODE_OK ? 0 : 1;
out:
	if (rep != NULL)
		mailfleet__v1__lookup_reply__free_unpacked(rep, NULL);
	mf_bus_reply_free(&reply);
	cli_bus_close(&config, &bus);
	free(data);
	return ret;
usage:
	fprintf(stderr, "usage: mailfleet dns lookup NAME [TYPE] [-c mailfleet.conf]\n");
	return 2;
}
