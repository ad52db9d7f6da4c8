/* smtp_verify: the policy applied to dnsauth's VerifyReply, and the check
 * of the Authentication-Results field that comes back. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "buf.h"
#include "config.h"
#include "services/dnsauth/dnsauth_config.h"
#include "services/dnsauth/resolver.h"
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

/* RFC 8601 5: fields claiming our authserv-id are obscured, others kept. */
static void test_obscure_header(void **state)
{
	static const struct {
		const char *in, *out;  /* out NULL: nothing to do */
	} cases[] = {
		{ "Received: x\r\nSubject: a\r\n", NULL },
		{ "Authentication-Results: other.example; spf=pass\r\n", NULL },
		/* a longer name that starts with ours is someone else */
		{ "Authentication-Results: mx.example.org.evil; spf=pass\r\n", NULL },
		{ "Authentication-Results: mx.example.org; spf=pass\r\n",
		  "X-Forged-Authentication-Results: mx.example.org; spf=pass\r\n" },
		{ "Received: x\r\nauthentication-results :  MX.Example.ORG;\r\n\tdkim=pass\r\nSubject: a\r\n",
		  "Received: x\r\nX-Forged-authentication-results :  MX.Example.ORG;\r\n\tdkim=pass\r\nSubject: a\r\n" },
		/* CFWS before the id: folding and a comment with a ')' escaped */
		{ "Authentication-Results:\r\n (a \\) (nested) b)\tmx.example.org 1; none\r\n",
		  "X-Forged-Authentication-Results:\r\n (a \\) (nested) b)\tmx.example.org 1; none\r\n" },
		/* two, one of them ours */
		{ "Authentication-Results: a.example; none\r\nAuthentication-Results: mx.example.org; none\r\n",
		  "Authentication-Results: a.example; none\r\nX-Forged-Authentication-Results: mx.example.org; none\r\n" },
		/* our id only inside a continuation line: not a field */
		{ "Subject: a\r\n Authentication-Results: mx.example.org; none\r\n", NULL },
		{ "Authentication-Results: mx.example.org", "X-Forged-Authentication-Results: mx.example.org" },
		{ "Authentication-Results", NULL },
		{ "", NULL },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t len = 0;
		char *out = smtp_verify_obscure_header(cases[i].in, strlen(cases[i].in),
						       "mx.example.org", &len);
		if (cases[i].out == NULL) {
			assert_null(out);
			continue;
		}
		assert_non_null(out);
		assert_int_equal(len, strlen(cases[i].out));
		assert_memory_equal(out, cases[i].out, len);
		free(out);
	}
}

static struct mf_config *load(const char *blocks)
{
	char *text = mf_xasprintf("hostname mx.example.org\ndata-dir /tmp/mf-data\n%s", blocks);
	struct mf_config *c = NULL;
	const char *err;

	if (mf_config_load_buf("/etc/mailfleet/mailfleet.conf", text, strlen(text), NULL, &c,
			       &err) < 0)
		c = NULL;
	free(text);
	return c;
}

/* smtp-in { verify }: on unless switched off. */
static void test_config_verify(void **state)
{
	struct mf_config *c = load("smtp-in {\n    admin 127.0.0.1:1081\n}\n");

	assert_non_null(c);
	assert_true(c->services[MF_SERVICE_SMTP_IN].verify);
	mf_config_free(&c);
	c = load("smtp-in {\n    admin 127.0.0.1:1081\n    verify no\n}\n");
	assert_non_null(c);
	assert_false(c->services[MF_SERVICE_SMTP_IN].verify);
	mf_config_free(&c);
	assert_null(load("smtp-in {\n    admin 127.0.0.1:1081\n    verify maybe\n}\n"));
	assert_null(load("imap {\n    admin 127.0.0.1:1083\n    verify no\n}\n"));
}

/* The embedded default's "resolver none": every lookup is a temporary
 * error at once, so verification there takes milliseconds, not timeouts. */
static void test_resolver_none(void **state)
{
	struct mf_config *c = load("dnsauth {\n    admin 127.0.0.1:1086\n    resolver none\n}\n");
	struct dns_resolver *r = NULL;
	struct dns_answer *a;
	const char *err;
	struct timespec t0, t1;

	assert_non_null(c);
	assert_int_equal(c->dnsauth.resolver, MF_DNS_NONE);
	assert_string_equal(dnsauth_resolver_mode_name(&c->dnsauth), "none");
	assert_int_equal(dnsauth_resolver_create(&c->dnsauth, &r, &err), 0);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (int i = 0; i < 100; i++) {
		a = dns_lookup(r, "example.com", DNS_TYPE_TXT);
		assert_int_equal(a->status, DNS_STATUS_TEMPFAIL);
		assert_non_null(strstr(a->error, "resolver none"));
		dns_answer_free(&a);
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	assert_true(t1.tv_sec - t0.tv_sec < 2);
	dns_resolver_free(&r);
	mf_config_free(&c);
	assert_null(load("dnsauth {\n    admin 127.0.0.1:1086\n    resolver none 1.2.3.4\n}\n"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_policy),
		cmocka_unit_test(test_tempfail),
		cmocka_unit_test(test_field_ok),
		cmocka_unit_test(test_switched_off),
		cmocka_unit_test(test_config_verify),
		cmocka_unit_test(test_obscure_header),
		cmocka_unit_test(test_resolver_none),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
