/* SPF: record syntax (table-driven), macro syntax, and evaluation details
 * the RFC 7208 suite does not pin down: lookup and void-lookup limits
 * exactly at the edge, the authentic flag, HELO and MAIL FROM identities,
 * the default explanation, temperror vs none. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "services/dnsauth/resolver.h"
#include "services/dnsauth/spf.h"

static const struct {
	const char *record;
	bool ok;
} parse_cases[] = {
	{ "v=spf1", true },
	{ "v=spf1 -all", true },
	{ "V=SPF1 +ALL", true },
	{ "v=spf1   a  mx  ", true },
	{ "v=spf1 a/24 mx/24//64 a//0 mx:example.com/0", true },
	{ "v=spf1 ip4:192.0.2.0/24 ip6:2001:db8::/32 ~all", true },
	{ "v=spf1 include:_spf.example.com ?all", true },
	{ "v=spf1 exists:%{ir}.%{l1r+-}._spf.%{d} -all", true },
	{ "v=spf1 redirect=_spf.example.com", true },
	{ "v=spf1 -all exp=explain._spf.%{d}", true },
	{ "v=spf1 unknown-mod=anything ~all", true },
	{ "v=spf1 a:foo:bar/baz.example.com", true },
	{ "v=spf1 ptr ptr:example.com", true },
	{ "v=spf1 mx:%{d}", true },
	{ "v=spf1 a:example.com.", true },
	{ "v=spf10", false },
	{ "spf1 -all", false },
	{ "v=spf1 foo", false },
	{ "v=spf1 -all/8", false },
	{ "v=spf1 a/33", false },
	{ "v=spf1 a//129", false },
	{ "v=spf1 a/024", false },
	{ "v=spf1 ip4:192.0.2.0/33", false },
	{ "v=spf1 ip4:192.0.2", false },
	{ "v=spf1 ip4:2001:db8::1", false },
	{ "v=spf1 ip6:192.0.2.1", false },
	{ "v=spf1 ip6:2001:db8::/129", false },
	{ "v=spf1 include", false },
	{ "v=spf1 include:", false },
	{ "v=spf1 exists", false },
	{ "v=spf1 a:111.222.33.44", false },
	{ "v=spf1 a:localhost", false },
	{ "v=spf1 a:abc.123", false },
	{ "v=spf1 a:foo.-com", false },
	{ "v=spf1 redirect=a.example.com redirect=b.example.com", false },
	{ "v=spf1 exp=a.example.com exp=b.example.com", false },
	{ "v=spf1 exists:%(ir).example.com", false },
	{ "v=spf1 exists:%{x}.example.com", false },
	{ "v=spf1 exists:%{c}.example.com", false },   /* c only in explanations */
	{ "v=spf1 exists:%{i0}.example.com", false },  /* DIGIT must be nonzero */
	{ "v=spf1 exists:%{i", false },
	{ "v=spf1 exists:foo%.example.com", false },
	{ "v=spf1 all:foo", false },
	{ "v=spf1 ptr/24", false },
	{ "v=spf1 =foo", false },
	{ "v=spf1 mod=%", false },
	{ "v=spf1 a:ex\xc3\xa4mple.com", false },
};

static void test_parse_table(void **state)
{
	for (size_t i = 0; i < sizeof(parse_cases) / sizeof(parse_cases[0]); i++) {
		struct spf_record *rec = NULL;
		const char *err = NULL;
		int ret = spf_record_parse(parse_cases[i].record, strlen(parse_cases[i].record),
					   &rec, &err);
		if ((ret == 0) != parse_cases[i].ok)
			fail_msg("%s: parse %s (%s)", parse_cases[i].record,
				 ret == 0 ? "succeeded" : "failed", err != NULL ? err : "");
		spf_record_free(&rec);
	}
}

static void test_parse_fields(void **state)
{
	const char *text = "v=spf1 ~a:mail.%{d}/24//64 -ip4:192.0.2.0/25 redirect=x.example.com";
	struct spf_record *rec;
	const char *err;

	assert_int_equal(spf_record_parse(text, strlen(text), &rec, &err), 0);
	assert_int_equal(rec->count, 2);
	assert_int_equal(rec->terms[0].mech, SPF_MECH_A);
	assert_int_equal(rec->terms[0].qualifier, '~');
	assert_string_equal(rec->terms[0].domain_spec, "mail.%{d}");
	assert_int_equal(rec->terms[0].cidr4, 24);
	assert_int_equal(rec->terms[0].cidr6, 64);
	assert_int_equal(rec->terms[1].mech, SPF_MECH_IP4);
	assert_int_equal(rec->terms[1].cidr4, 25);
	assert_string_equal(rec->redirect, "x.example.com");
	assert_null(rec->exp);
	spf_record_free(&rec);
	assert_null(rec);
	/* A NUL inside the record is outside 7-bit printable ASCII. */
	assert_int_equal(spf_record_parse("v=spf1 a\0b", 10, &rec, &err), -1);
	assert_true(spf_record_is_spf("v=spf1", 6));
	assert_false(spf_record_is_spf("v=spf1x", 7));
}

static void test_macro_check(void **state)
{
	const char *err;

	assert_int_equal(spf_macro_check("%{s}%{L}%{o}%{d2r}%{i.-}%{p}%{h}%{v}", 36, false, &err), 0);
	assert_int_equal(spf_macro_check("%{c}", 4, false, &err), -1);
	assert_int_equal(spf_macro_check("%{c} %{r} %{t}", 14, true, &err), 0);
	assert_int_equal(spf_macro_check("a b", 3, false, &err), -1);
	assert_int_equal(spf_macro_check("%%%_%-", 6, false, &err), 0);
	assert_int_equal(spf_macro_check("%", 1, false, &err), -1);
	assert_int_equal(spf_macro_check("%{d00}", 6, false, &err), -1);
}

/* A zone for evaluation tests; every test adds what it needs. */
static struct dns_resolver *zone(void)
{
	struct dns_resolver *r = dns_resolver_create_memory();
	const char *err;

	assert_int_equal(dns_memory_add(r, "mx.example.com", DNS_TYPE_A, "192.0.2.10", &err), 0);
	return r;
}

static struct spf_request request(const char *ip)
{
	struct spf_request req = { .helo = "mx.example.com", .receiver = "mx.example.org", .now = 1 };

	assert_int_equal(dns_ip_parse(ip, &req.ip), 0);
	return req;
}

static enum spf_result check(struct dns_resolver *r, const char *ip, const char *domain,
			     struct spf_outcome *o)
{
	struct spf_request req = request(ip);
	char *sender = mf_xasprintf("user@%s", domain);

	spf_check_host(r, &req, domain, sender, o);
	free(sender);
	return o->result;
}

static void txt(struct dns_resolver *r, const char *name, const char *text)
{
	const char *err;

	assert_int_equal(dns_memory_add(r, name, DNS_TYPE_TXT, text, &err), 0);
}

static void test_lookup_limit(void **state)
{
	struct dns_resolver *r = zone();
	struct spf_outcome o;

	/* Ten terms with lookups are allowed, the eleventh is a permerror
	 * (RFC 7208 4.6.4). */
	txt(r, "ten.example.com", "v=spf1 a a a a a a a a a ip4:192.0.2.1 a -all");
	dns_memory_add_name(r, "ten.example.com");
	const char *err;
	assert_int_equal(dns_memory_add(r, "ten.example.com", DNS_TYPE_A, "192.0.2.99", &err), 0);
	assert_int_equal(check(r, "192.0.2.1", "ten.example.com", &o), SPF_PASS);
	assert_int_equal(o.lookups, 9);
	spf_outcome_clear(&o);
	assert_int_equal(check(r, "192.0.2.2", "ten.example.com", &o), SPF_FAIL);
	assert_int_equal(o.lookups, 10);
	spf_outcome_clear(&o);
	txt(r, "eleven.example.com", "v=spf1 a a a a a a a a a a a -all");
	assert_int_equal(dns_memory_add(r, "eleven.example.com", DNS_TYPE_A, "192.0.2.99", &err), 0);
	assert_int_equal(check(r, "192.0.2.2", "eleven.example.com", &o), SPF_PERMERROR);
	assert_non_null(strstr(o.problem, "more than 10 DNS lookups"));
	spf_outcome_clear(&o);
	dns_resolver_free(&r);
}

static void test_void_limit(void **state)
{
	struct dns_resolver *r = zone();
	struct spf_outcome o;

	/* Two void lookups are fine, the third is a permerror. */
	txt(r, "two.example.com", "v=spf1 a:none1.example.com a:none2.example.com -all");
	assert_int_equal(check(r, "192.0.2.1", "two.example.com", &o), SPF_FAIL);
	assert_int_equal(o.void_lookups, 2);
	spf_outcome_clear(&o);
	txt(r, "three.example.com",
	    "v=spf1 a:none1.example.com exists:none2.example.com mx:none3.example.com -all");
	assert_int_equal(check(r, "192.0.2.1", "three.example.com", &o), SPF_PERMERROR);
	spf_outcome_clear(&o);
	dns_resolver_free(&r);
}

static void test_temperror_not_none(void **state)
{
	struct dns_resolver *r = zone();
	struct spf_outcome o;

	dns_memory_add_timeout(r, "slow.example.com", DNS_TYPE_TXT);
	assert_int_equal(check(r, "192.0.2.1", "slow.example.com", &o), SPF_TEMPERROR);
	assert_non_null(strstr(o.problem, "timeout"));
	assert_false(o.authentic);
	spf_outcome_clear(&o);
	/* A name without a record is none; a malformed one too (RFC 7208 4.3). */
	assert_int_equal(check(r, "192.0.2.1", "nothing.example.com", &o), SPF_NONE);
	spf_outcome_clear(&o);
	assert_int_equal(check(r, "192.0.2.1", "localhost", &o), SPF_NONE);
	spf_outcome_clear(&o);
	/* A timeout while evaluating a mechanism is temperror too. */
	txt(r, "mech.example.com", "v=spf1 a:slow2.example.com -all");
	dns_memory_add_timeout(r, "slow2.example.com", DNS_TYPE_A);
	assert_int_equal(check(r, "192.0.2.1", "mech.example.com", &o), SPF_TEMPERROR);
	spf_outcome_clear(&o);
	/* Two SPF records: permerror. */
	txt(r, "two.example.com", "v=spf1 -all");
	txt(r, "two.example.com", "v=spf1 +all");
	assert_int_equal(check(r, "192.0.2.1", "two.example.com", &o), SPF_PERMERROR);
	spf_outcome_clear(&o);
	dns_resolver_free(&r);
}

static void test_authentic_and_explanation(void **state)
{
	struct dns_resolver *r = zone();
	struct spf_outcome o;

	txt(r, "example.com", "v=spf1 a:mx.example.com -all");
	assert_int_equal(check(r, "192.0.2.10", "example.com", &o), SPF_PASS);
	assert_false(o.authentic);
	assert_string_equal(o.mechanism, "a:mx.example.com");
	assert_null(o.explanation);
	spf_outcome_clear(&o);
	dns_memory_set_authentic(r, true);
	assert_int_equal(check(r, "192.0.2.11", "example.com", &o), SPF_FAIL);
	assert_true(o.authentic);
	/* Our default explanation, macro-expanded. */
	assert_string_equal(o.explanation,
			    "example.com does not allow 192.0.2.11 to send mail for user@example.com");
	spf_outcome_clear(&o);
	txt(r, "exp.example.com", "v=spf1 -all exp=why.example.com");
	txt(r, "why.example.com", "%{c} (%{i}) is not one of %{d}'s servers (asked by %{r})");
	assert_int_equal(check(r, "2001:db8::1", "exp.example.com", &o), SPF_FAIL);
	assert_string_equal(o.explanation,
			    "2001:db8::1 (2.0.0.1.0.D.B.8.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.1) is not one of exp.example.com's servers (asked by mx.example.org)");
	spf_outcome_clear(&o);
	dns_resolver_free(&r);
}

static void test_verify_identities(void **state)
{
	struct dns_resolver *r = zone();
	struct spf_request req = request("192.0.2.10");
	struct spf_verdict v;

	txt(r, "mx.example.com", "v=spf1 a -all");
	txt(r, "example.com", "v=spf1 ~all");
	req.mail_from = "someone@example.com";
	spf_verify(r, &req, &v);
	assert_int_equal(v.helo.result, SPF_PASS);
	assert_string_equal(v.helo.sender, "postmaster@mx.example.com");
	assert_int_equal(v.mail_from.result, SPF_SOFTFAIL);
	assert_string_equal(v.mail_from.domain, "example.com");
	spf_verdict_clear(&v);
	/* Null reverse-path: MAIL FROM is checked as postmaster@HELO. */
	req.mail_from = "";
	spf_verify(r, &req, &v);
	assert_int_equal(v.mail_from.result, SPF_PASS);
	assert_string_equal(v.mail_from.domain, "mx.example.com");
	spf_verdict_clear(&v);
	/* A HELO that is an address literal is not checked. */
	req.helo = "[192.0.2.10]";
	req.mail_from = NULL;
	spf_verify(r, &req, &v);
	assert_int_equal(v.helo.result, SPF_NONE);
	assert_int_equal(v.mail_from.result, SPF_NONE);
	spf_verdict_clear(&v);
	dns_resolver_free(&r);
}

static void test_include_loop_bounded(void **state)
{
	struct dns_resolver *r = zone();
	struct spf_outcome o;

	txt(r, "loop.example.com", "v=spf1 include:loop.example.com -all");
	assert_int_equal(check(r, "192.0.2.1", "loop.example.com", &o), SPF_PERMERROR);
	spf_outcome_clear(&o);
	txt(r, "red.example.com", "v=spf1 redirect=red.example.com");
	assert_int_equal(check(r, "192.0.2.1", "red.example.com", &o), SPF_PERMERROR);
	spf_outcome_clear(&o);
	dns_resolver_free(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_table),
		cmocka_unit_test(test_parse_fields),
		cmocka_unit_test(test_macro_check),
		cmocka_unit_test(test_lookup_limit),
		cmocka_unit_test(test_void_limit),
		cmocka_unit_test(test_temperror_not_none),
		cmocka_unit_test(test_authentic_and_explanation),
		cmocka_unit_test(test_verify_identities),
		cmocka_unit_test(test_include_loop_bounded),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
