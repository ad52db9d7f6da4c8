/* Fuzzes the SPF record parser, and evaluates every record that parses as
 * the policy of a domain in a small memory zone: macro expansion, includes
 * and redirects back to itself, the lookup limits.  Invariants: parsing is
 * deterministic, evaluation always ends with a known result, FAIL always
 * has an explanation and the limits hold. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "services/dnsauth/resolver.h"
#include "services/dnsauth/spf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct spf_record *rec = NULL, *again = NULL;
	const char *err = NULL;
	const char *text = (const char *)data;
	int ret;

	if (size > SPF_RECORD_MAX + 16)
		return 0;
	ret = spf_record_parse(text, size, &rec, &err);
	if ((spf_record_parse(text, size, &again, &err) < 0) != (ret < 0))
		abort();
	if (ret < 0) {
		if (err == NULL)
			abort();
		return 0;
	}
	if (rec->count > SPF_TERMS_MAX || again->count != rec->count)
		abort();
	spf_record_free(&again);
	spf_record_free(&rec);

	struct dns_resolver *r = dns_resolver_create_memory();
	size_t len = size;
	struct spf_request req = { .helo = "mx.example.com", .receiver = "rx.example.org",
				   .now = 1 };
	struct spf_outcome o;

	dns_memory_add_txt(r, "example.com", &text, &len, 1);
	dns_memory_add_txt(r, "sub.example.com", &text, &len, 1);
	dns_memory_add(r, "example.com", DNS_TYPE_A, "192.0.2.1", &err);
	dns_memory_add(r, "example.com", DNS_TYPE_MX, "10 mx.example.com", &err);
	dns_memory_add(r, "mx.example.com", DNS_TYPE_A, "192.0.2.2", &err);
	dns_memory_add(r, "2.2.0.192.in-addr.arpa", DNS_TYPE_PTR, "mx.example.com", &err);
	dns_memory_add_timeout(r, "slow.example.com", 0);
	dns_ip_parse(size % 2 == 0 ? "192.0.2.2" : "2001:db8::2", &req.ip);
	spf_check_host(r, &req, "example.com", "a-b.c+d@example.com", &o);
	if ((unsigned)o.result > SPF_PERMERROR || o.lookups > SPF_LOOKUP_LIMIT + 1 ||
	    o.void_lookups > SPF_VOID_LOOKUP_LIMIT + 1)
		abort();
	if (o.result == SPF_FAIL && (o.explanation == NULL || strlen(o.explanation) > SPF_EXPLANATION_MAX))
		abort();
	spf_outcome_clear(&o);
	dns_resolver_free(&r);
	return 0;
}
