/* DNSBL checks (RFC 5782) and the monitor's metrics, with the memory
 * resolver. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "metrics.h"
#include "services/dnsauth/dnsbl.h"
#include "services/dnsauth/resolver.h"

static struct dns_resolver *zone(void)
{
	struct dns_resolver *r = dns_resolver_create_memory();
	const char *err;

	/* RFC 5782 5: 127.0.0.2 is listed, 127.0.0.1 is not. */
	assert_int_equal(dns_memory_add(r, "2.0.0.127.bl.example", DNS_TYPE_A, "127.0.0.2", &err), 0);
	assert_int_equal(dns_memory_add(r, "2.0.0.127.bl.example", DNS_TYPE_A, "127.0.0.4", &err), 0);
	assert_int_equal(dns_memory_add(r, "2.0.0.127.bl.example", DNS_TYPE_TXT, "see https://bl.example/", &err), 0);
	/* IPv6 (RFC 5782 2.4): ::FFFF:7F00:2 style test entry. */
	assert_int_equal(dns_memory_add(r,
		"1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.bl.example",
		DNS_TYPE_A, "127.0.0.2", &err), 0);
	/* A zone answering outside 127/8 is broken (e.g. NXDOMAIN rewriting). */
	assert_int_equal(dns_memory_add(r, "2.0.0.127.wild.example", DNS_TYPE_A, "198.51.100.7", &err), 0);
	dns_memory_add_timeout(r, "2.0.0.127.slow.example", DNS_TYPE_A);
	return r;
}

static enum dnsbl_status check(struct dns_resolver *r, const char *addr, const char *zone_name,
			       struct dnsbl_outcome *o)
{
	struct dns_ip ip;

	assert_int_equal(dns_ip_parse(addr, &ip), 0);
	dnsbl_check(r, &ip, zone_name, o);
	return o->status;
}

static void test_check(void **state)
{
	struct dns_resolver *r = zone();
	struct dnsbl_outcome o;

	assert_int_equal(check(r, "127.0.0.2", "bl.example", &o), DNSBL_LISTED);
	assert_int_equal(o.address_count, 2);
	assert_string_equal(o.text, "see https://bl.example/");
	dnsbl_outcome_clear(&o);
	assert_int_equal(check(r, "127.0.0.1", "bl.example", &o), DNSBL_NOT_LISTED);
	assert_null(o.text);
	dnsbl_outcome_clear(&o);
	assert_int_equal(check(r, "2001:db8::1", "bl.example", &o), DNSBL_LISTED);
	assert_null(o.text);
	dnsbl_outcome_clear(&o);
	assert_int_equal(check(r, "127.0.0.2", "wild.example", &o), DNSBL_TEMPERROR);
	assert_non_null(strstr(o.problem, "outside 127.0.0.0/8"));
	dnsbl_outcome_clear(&o);
	assert_int_equal(check(r, "127.0.0.2", "slow.example", &o), DNSBL_TEMPERROR);
	dnsbl_outcome_clear(&o);
	dns_resolver_free(&r);
}

static void test_monitor(void **state)
{
	struct dns_resolver *r = zone();
	struct mf_metrics *m = mf_metrics_create();
	char *zones[] = { "bl.example", "slow.example" };
	char *ips[] = { "127.0.0.2", "127.0.0.1" };
	char *bad[] = { "not-an-ip" };
	struct dnsbl_monitor *mon;
	struct mf_buf out;
	const char *err;

	/* One hour: the thread's first round runs at once, then we run one
	 * ourselves; both set the same values. */
	mon = dnsbl_monitor_start(r, m, zones, 2, ips, 2, 3600 * 1000, &err);
	assert_non_null(mon);
	dnsbl_monitor_run_once(mon);
	mf_buf_init(&out, 0);
	assert_int_equal(mf_metrics_format(m, &out, &err), 0);
	const char *text = mf_buf_cstr(&out);
	assert_non_null(strstr(text, "mailfleet_dnsauth_dnsbl_listed{zone=\"bl.example\",ip=\"127.0.0.2\"} 1"));
	assert_non_null(strstr(text, "mailfleet_dnsauth_dnsbl_listed{zone=\"bl.example\",ip=\"127.0.0.1\"} 0"));
	assert_null(strstr(text, "mailfleet_dnsauth_dnsbl_monitor_errors_total{zone=\"slow.example\"} 0"));
	assert_non_null(strstr(text, "mailfleet_dnsauth_dnsbl_monitor_errors_total{zone=\"bl.example\"} 0"));
	mf_buf_free(&out);
	dnsbl_monitor_stop(&mon);
	assert_null(mon);
	mf_metrics_free(&m);

	m = mf_metrics_create();
	assert_null(dnsbl_monitor_start(r, m, zones, 1, bad, 1, 1000, &err));
	assert_non_null(strstr(err, "not-an-ip"));
	/* Nothing to watch: a monitor that does nothing. */
	mon = dnsbl_monitor_start(r, m, zones, 0, ips, 0, 1000, &err);
	assert_non_null(mon);
	dnsbl_monitor_run_once(mon);
	dnsbl_monitor_stop(&mon);
	mf_metrics_free(&m);
	dns_resolver_free(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_check),
		cmocka_unit_test(test_monitor),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
