/* iprev (RFC 8601 2.7.3) against the memory resolver. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "services/dnsauth/iprev.h"
#include "services/dnsauth/resolver.h"

static struct dns_resolver *zone(void)
{
	struct dns_resolver *r = dns_resolver_create_memory();
	const char *err;

	/* 192.0.2.1: PTR to a name that maps back (the second of two). */
	assert_int_equal(dns_memory_add(r, "1.2.0.192.in-addr.arpa", DNS_TYPE_PTR, "other.example", &err), 0);
	assert_int_equal(dns_memory_add(r, "1.2.0.192.in-addr.arpa", DNS_TYPE_PTR, "mail.example", &err), 0);
	assert_int_equal(dns_memory_add(r, "other.example", DNS_TYPE_A, "192.0.2.99", &err), 0);
	assert_int_equal(dns_memory_add(r, "mail.example", DNS_TYPE_A, "192.0.2.1", &err), 0);
	assert_int_equal(dns_memory_add(r, "mail.example", DNS_TYPE_AAAA, "2001:db8::1", &err), 0);
	/* 192.0.2.2: PTR to a name that does not map back. */
	assert_int_equal(dns_memory_add(r, "2.2.0.192.in-addr.arpa", DNS_TYPE_PTR, "liar.example", &err), 0);
	assert_int_equal(dns_memory_add(r, "liar.example", DNS_TYPE_A, "192.0.2.200", &err), 0);
	/* 192.0.2.3: PTR lookup times out; 192.0.2.4: forward lookup times out. */
	dns_memory_add_timeout(r, "3.2.0.192.in-addr.arpa", DNS_TYPE_PTR);
	assert_int_equal(dns_memory_add(r, "4.2.0.192.in-addr.arpa", DNS_TYPE_PTR, "slow.example", &err), 0);
	dns_memory_add_timeout(r, "slow.example", DNS_TYPE_A);
	/* 2001:db8::1 */
	assert_int_equal(dns_memory_add(r,
		"1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa",
		DNS_TYPE_PTR, "mail.example", &err), 0);
	return r;
}

static enum iprev_result check(struct dns_resolver *r, const char *addr, struct iprev_outcome *o)
{
	struct dns_ip ip;

	assert_int_equal(dns_ip_parse(addr, &ip), 0);
	iprev_check(r, &ip, o);
	return o->result;
}

static void test_iprev(void **state)
{
	struct dns_resolver *r = zone();
	struct iprev_outcome o;

	assert_int_equal(check(r, "192.0.2.1", &o), IPREV_PASS);
	assert_string_equal(o.name, "mail.example");
	assert_int_equal(o.ptr_count, 2);
	assert_null(o.problem);
	assert_false(o.authentic);
	iprev_outcome_clear(&o);
	assert_int_equal(check(r, "2001:db8::1", &o), IPREV_PASS);
	iprev_outcome_clear(&o);
	assert_int_equal(check(r, "192.0.2.2", &o), IPREV_FAIL);
	assert_null(o.name);
	iprev_outcome_clear(&o);
	assert_int_equal(check(r, "192.0.2.3", &o), IPREV_TEMPERROR);
	iprev_outcome_clear(&o);
	assert_int_equal(check(r, "192.0.2.4", &o), IPREV_TEMPERROR);
	iprev_outcome_clear(&o);
	assert_int_equal(check(r, "192.0.2.5", &o), IPREV_PERMERROR);
	assert_non_null(strstr(o.problem, "no PTR"));
	iprev_outcome_clear(&o);
	dns_memory_set_authentic(r, true);
	assert_int_equal(check(r, "192.0.2.1", &o), IPREV_PASS);
	assert_true(o.authentic);
	iprev_outcome_clear(&o);
	assert_string_equal(iprev_result_name(IPREV_PERMERROR), "permerror");
	dns_resolver_free(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_iprev),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
