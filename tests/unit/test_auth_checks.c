/* auth_checks: SPF, iprev and DNSBL together, and the VerifyReply they
 * fill surviving a pack/unpack round trip. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "services/dnsauth/auth_checks.h"

static void test_checks(void **state)
{
	struct dns_resolver *r = dns_resolver_create_memory();
	char *zones[] = { "bl.example", "slow.example", "clean.example" };
	struct auth_checks_settings s = { .receiver = "mx.example.org", .dnsbl_zones = zones,
					  .dnsbl_count = 3 };
	struct auth_checks *c = NULL;
	Mailfleet__V1__VerifyReply reply = MAILFLEET__V1__VERIFY_REPLY__INIT, *back;
	const char *err;

	assert_int_equal(dns_memory_add(r, "example.com", DNS_TYPE_TXT, "v=spf1 ip4:192.0.2.0/24 -all", &err), 0);
	assert_int_equal(dns_memory_add(r, "mail.example.com", DNS_TYPE_TXT, "v=spf1 a -all", &err), 0);
	assert_int_equal(dns_memory_add(r, "mail.example.com", DNS_TYPE_A, "192.0.2.7", &err), 0);
	assert_int_equal(dns_memory_add(r, "7.2.0.192.in-addr.arpa", DNS_TYPE_PTR, "mail.example.com", &err), 0);
	assert_int_equal(dns_memory_add(r, "7.2.0.192.bl.example", DNS_TYPE_A, "127.0.0.2", &err), 0);
	dns_memory_add_timeout(r, "7.2.0.192.slow.example", 0);
	dns_memory_set_authentic(r, true);

	assert_int_equal(auth_checks_run(r, &s, "not-an-ip", "h", "", &c, &err), -1);
	assert_null(c);
	assert_int_equal(auth_checks_run(r, &s, "192.0.2.7", "mail.example.com", "a@example.com",
					 &c, &err), 0);
	assert_int_equal(c->spf.helo.result, SPF_PASS);
	assert_int_equal(c->spf.mail_from.result, SPF_PASS);
	assert_int_equal(c->iprev.result, IPREV_PASS);
	assert_int_equal(c->dnsbl[0].status, DNSBL_LISTED);
	assert_int_equal(c->dnsbl[1].status, DNSBL_TEMPERROR);
	assert_int_equal(c->dnsbl[2].status, DNSBL_NOT_LISTED);

	auth_checks_fill(c, &reply);
	size_t n = mailfleet__v1__verify_reply__get_packed_size(&reply);
	uint8_t *buf = malloc(n);
	mailfleet__v1__verify_reply__pack(&reply, buf);
	auth_checks_free(&c);
	assert_null(c);
	back = mailfleet__v1__verify_reply__unpack(NULL, n, buf);
	assert_non_null(back);
	assert_int_equal(back->spf_mail_from->result, MAILFLEET__V1__SPF_RESULT__SPF_RESULT_PASS);
	assert_string_equal(back->spf_mail_from->domain, "example.com");
	assert_true(back->spf_mail_from->authentic);
	assert_string_equal(back->spf_helo->mechanism, "a");
	assert_int_equal(back->iprev->result, MAILFLEET__V1__IPREV_RESULT__IPREV_RESULT_PASS);
	assert_string_equal(back->iprev->name, "mail.example.com");
	assert_int_equal(back->dnsbl->n_listed, 1);
	assert_string_equal(back->dnsbl->listed[0]->zone, "bl.example");
	assert_string_equal(back->dnsbl->listed[0]->addresses[0], "127.0.0.2");
	assert_int_equal(back->dnsbl->n_temperror_zones, 1);
	assert_string_equal(back->dnsbl->temperror_zones[0], "slow.example");
	mailfleet__v1__verify_reply__free_unpacked(back, NULL);
	free(buf);
	dns_resolver_free(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_checks),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
