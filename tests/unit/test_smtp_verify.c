/* smtp_verify: the policy applied to dnsauth's VerifyReply, and the check
 * of the Authentication-Results field that comes back. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "buf.h"
#include "services/smtp-in/smtp_verify.h"

#define AR "Authentication-Results: mx.example.org;\r\n\tspf=pass (dnssec) " \
	   "smtp.mailfrom=example.com;\r\n\tdmarc=pass header.from=example.com\r\n"

static uint8_t *pack(int result, int disposition, const char *ar, size_t *len_r)
{
	Mailfleet__V1__VerifyReply r = MAILFLEET__V1__VERIFY_REPLY__INIT;
	Mailfleet__V1__DmarcCheck dm = MAILFLEET__V1__DMARC_CHECK__INIT;
	uint8_t *b;

	dm.result = result;
	dm.disposition = disposition;
	dm.domain = "example.com";
	dm.reason = "several author domains in From";
	r.dmarc = result < 0 ? NULL : &dm;
	if (result < 0)
		dm.result = 0;
	r.authentication_results = (char *)ar;
	*len_r = mailfleet__v1__verify_reply__get_packed_size(&r);
	b = mf_xmalloc(*len_r + 1);
	mailfleet__v1__verify_reply__pack(&r, b);
	return b;
}

static const struct smtp_verify_input input = { .cid = "c1", .message_id = "m1" };

static void decide(int result, int disposition, const char *ar, struct smtp_verify_result *r)
{
	size_t len;
	uint8_t *b = pack(result, disposition, ar, &len);

	smtp_verify_decide(&input, MF_BUS_OK, "", b, len, r);
	free(b);
}

static void test_policy(void **state)
{
	static const struct {
		int result, disposition;
		enum smtp_verify_verdict verdict;
		const char *reply_prefix;
	} cases[] = {
		{ MAILFLEET__V1__DMARC_RESULT__DMARC_RESULT_PASS,
		  MAILFLEET__V1__DMARC_POLICY__DMARC_POLICY_NONE, SMTP_VERIFY_ACCEPT, NULL },
		{ MAILFLEET__V1__DMARC_RESULT__DMARC_RESULT_NONE,
		  MAILFLEET__V1__DMARC_POLICY__DMARC_POLICY_NONE, SMTP_VERIFY_ACCEPT, NULL },
		/* temperror never has a disposition: delivered, A-R says so */
		{ MAILFLEET__V1__DMARC_RESULT__DMARC_RESULT_TEMPERROR,
		  MAILFLEET__V1__DMARC_POLICY__DMARC_POLICY_NONE, SMTP_VERIFY_ACCEPT, NULL },
		{ MAILFLEET__V1__DMARC_RESULT__DMARC_RESULT_FAIL,
		  MAILFLEET__V1__DMARC_POLICY__DMARC_POLICY_NONE, SMTP_VERIFY_ACCEPT, NULL },
		{ MAILFLEET__V1__DMARC_RESULT__DMARC_RESULT_FAIL,
		  MAILFLEET__V1__DMARC_POLICY__DMARC_POLICY_QUARANTINE, SMTP_VERIFY_JUNK, NULL },
		{ MAILFLEET__V1__DMARC_RESULT__DMARC_RESULT_FAIL,
		  MAILFLEET__V1__DMARC_POLICY__DMARC_POLICY_REJECT, SMTP_VERIFY_REJECT, "550 5.7.26 " },
		{ MAILFLEET__V1__DMARC_RESULT__DMARC_RESULT_PERMERROR,
		  MAILFLEET__V1__DMARC_POLICY__DMARC_POLICY_NONE, SMTP_VERIFY_REJECT, "550 5.7.1 " },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct smtp_verify_result r;

		decide(cases[i].result, cases[i].disposition, AR, &r);
		assert_int_equal(r.verdict, cases[i].verdict);
		assert_non_null(r.why);
		if (cases[i].reply_prefix != NULL) {
			assert_non_null(r.reply);
			assert_memory_equal(r.reply, cases[i].reply_prefix,
					    strlen(cases[i].reply_prefix));
			assert_null(r.authentication_results);
		} else {
			assert_null(r.reply);
			assert_string_equal(r.authentication_results, AR);
		}
		smtp_verify_result_clear(&r);
	}
}

/* No answer, an error status, garbage or a reply without the parts the
 * decision needs: 451 4.4.3, never an accept without the check. */
static void test_tempfail(void **state)
{
	struct smtp_verify_result r;
	static const uint8_t garbage[] = { 0xff, 0xff, 0xff, 0x01 };
	const enum mf_bus_status st[] = { MF_BUS_TEMPORARY, MF_BUS_PERMANENT };

	for (size_t i = 0; i < 2; i++) {
		smtp_verify_decide(&input, st[i], "auth.v1.verify: no service answered", NULL, 0, &r);
		assert_int_equal(r.verdict, SMTP_VERIFY_TEMPFAIL);
		assert_memory_equal(r.reply, "451 4.4.3 ", 10);
		assert_null(r.authentication_results);
		smtp_verify_result_clear(&r);
	}
	smtp_verify_decide(&input, MF_BUS_OK, "", garbage, sizeof(garbage), &r);
	assert_int_equal(r.verdict, SMTP_VERIFY_TEMPFAIL);
	smtp_verify_result_clear(&r);
	/* no DMARC result */
	decide(-1, 0, AR, &r);
	assert_int_equal(r.verdict, SMTP_VERIFY_TEMPFAIL);
	smtp_verify_result_clear(&r);
	/* an Authentication-Results that smuggles in a second field */
	decide(MAILFLEET__V1__DMARC_RESULT__DMARC_RESULT_PASS, 0,
	       "Authentication-Results: x; dkim=none\r\nX-Evil: 1\r\n", &r);
	assert_int_equal(r.verdict, SMTP_VERIFY_TEMPFAIL);
	assert_null(r.authentication_results);
	smtp_verify_result_clear(&r);
	/* empty */
	decide(MAILFLEET__V1__DMARC_RESULT__DMARC_RESULT_PASS, 0, "", &r);
	assert_int_equal(r.verdict, SMTP_VERIFY_TEMPFAIL);
	smtp_verify_result_clear(&r);
}

static void test_field_ok(void **state)
{
	static const struct {
		const char *s;
		bool ok;
	} cases[] = {
		{ AR, true },
		{ "Authentication-Results: x; dkim=none\r\n", true },
		{ "authentication-results: x; dkim=none\r\n", true },
		{ "Authentication-Results: x; dkim=none", false },        /* no CRLF */
		{ "Authentication-Results: x; dkim=none\n", false },      /* bare LF */
		{ "Authentication-Results: x;\rdkim=none\r\n", false },   /* bare CR */
		{ "Authentication-Results: x;\r\ndkim=none\r\n", false }, /* not folded */
		{ "Received: x\r\n", false },
		{ "Authentication-Results:\r\n", false },
		{ "", false },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		assert_int_equal(smtp_verify_field_ok(cases[i].s, strlen(cases[i].s)), cases[i].ok);
	/* a NUL inside */
	assert_false(smtp_verify_field_ok("Authentication-Results: x\0y\r\n", 30));
	/* the size limit: SMTP_VERIFY_AR_MAX bytes pass, one more does not */
	for (size_t n = SMTP_VERIFY_AR_MAX; n <= SMTP_VERIFY_AR_MAX + 1; n++) {
		char *big = mf_xmalloc(n + 1);
		memset(big, 'a', n);
		memcpy(big, "Authentication-Results: ", 24);
		memcpy(big + n - 2, "\r\n", 2);
		big[n] = '\0';
		assert_int_equal(smtp_verify_field_ok(big, n), n == SMTP_VERIFY_AR_MAX);
		free(big);
	}
}

static void test_switched_off(void **state)
{
	struct smtp_mail m = { .null_sender = true };
	struct smtp_verify_input in = { .cid = "c", .message_id = "m", .mail = &m, .bus = NULL };
	struct smtp_verify_result r;

	smtp_verify_message(&in, &r);
	assert_int_equal(r.verdict, SMTP_VERIFY_NOT_CONFIGURED);
	assert_null(r.authentication_results);
	smtp_verify_result_clear(&r);
	/* the ruleset hook allows nothing yet */
	assert_false(smtp_verify_ruleset_allows(NULL, NULL));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_policy),
		cmocka_unit_test(test_tempfail),
		cmocka_unit_test(test_field_ok),
		cmocka_unit_test(test_switched_off),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
