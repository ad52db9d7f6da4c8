/* DMARC (RFC 9989): record parsing, the DNS Tree Walk and its examples
 * (Appendix B.4), alignment, policies, t=, sp/np, errors; author domain
 * extraction.  Against the memory resolver. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "services/dnsauth/dmarc.h"
#include "services/dnsauth/resolver.h"

static void add(struct dns_resolver *r, const char *name, const char *txt)
{
	const char *err = NULL;

	if (dns_memory_add(r, name, DNS_TYPE_TXT, txt, &err) < 0)
		fail_msg("%s: %s", name, err);
}

static void test_record_parse(void **state)
{
	static const struct {
		const char *text;
		int ok;
		enum dmarc_policy p;
		bool p_valid;
		char psd;
		bool testing, adkim_strict, aspf_strict;
		size_t rua;
		const char *fo;
	} cases[] = {
		{ "v=DMARC1; p=reject", 1, DMARC_POLICY_REJECT, true, 'u', false, false, false, 0, "0" },
		{ "v=DMARC1;p=quarantine;t=y;adkim=s;aspf=s", 1, DMARC_POLICY_QUARANTINE, true, 'u', true, true, true, 0, "0" },
		{ "v = DMARC1 ; p = none ; psd = y ;", 1, DMARC_POLICY_NONE, true, 'y', false, false, false, 0, "0" },
		{ "v=DMARC1; p=none; psd=n; fo=1:d:s", 1, DMARC_POLICY_NONE, true, 'n', false, false, false, 0, "1:d:s" },
		{ "v=DMARC1; p=none; fo=0:1", 1, DMARC_POLICY_NONE, true, 'u', false, false, false, 0, "0" },
		{ "v=DMARC1; p=bogus; rua=mailto:a@example.com", 1, DMARC_POLICY_NONE, false, 'u', false, false, false, 1, "0" },
		{ "v=DMARC1; rua=mailto:a@example.com!10m, mailto:b@example.com , nonsense", 1, DMARC_POLICY_NONE, false, 'u', false, false, false, 2, "0" },
		/* pct is historic and tolerated; unknown tags ignored */
		{ "v=DMARC1; p=reject; pct=50; future=x; garbage", 1, DMARC_POLICY_REJECT, true, 'u', false, false, false, 0, "0" },
		/* a repeated tag does not override the first */
		{ "v=DMARC1; p=reject; p=none", 1, DMARC_POLICY_REJECT, true, 'u', false, false, false, 0, "0" },
		{ .text = "v=dmarc1; p=reject", .ok = 0 },
		{ .text = "p=reject; v=DMARC1", .ok = 0 },
		{ .text = "v=DMARC2; p=reject", .ok = 0 },
		{ .text = "v=spf1 -all", .ok = 0 },
		{ .text = "", .ok = 0 },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct dmarc_record *rec = NULL;
		const char *err = NULL;
		int ret = dmarc_record_parse(cases[i].text, strlen(cases[i].text), &rec, &err);

		if ((ret == 0) != cases[i].ok)
			fail_msg("case %zu: ret %d %s", i, ret, err ? err : "");
		assert_int_equal(dmarc_record_is_dmarc(cases[i].text, strlen(cases[i].text)), cases[i].ok);
		if (ret < 0)
			continue;
		assert_int_equal(rec->p_valid, cases[i].p_valid);
		if (rec->p_valid)
			assert_int_equal(rec->p, cases[i].p);
		assert_int_equal(rec->psd, cases[i].psd);
		assert_int_equal(rec->testing, cases[i].testing);
		assert_int_equal(rec->adkim_strict, cases[i].adkim_strict);
		assert_int_equal(rec->aspf_strict, cases[i].aspf_strict);
		assert_int_equal(rec->rua_count, cases[i].rua);
		assert_string_equal(rec->fo, cases[i].fo);
		dmarc_record_free(&rec);
	}
	struct dmarc_record *rec = NULL;
	const char *err;
	const char *t = "v=DMARC1; p=reject; sp=quarantine; np=none; rua=mailto:r@example.com!5k; pct=0";
	assert_int_equal(dmarc_record_parse(t, strlen(t), &rec, &err), 0);
	assert_true(rec->sp_set);
	assert_int_equal(rec->sp, DMARC_POLICY_QUARANTINE);
	assert_true(rec->np_set);
	assert_int_equal(rec->np, DMARC_POLICY_NONE);
	assert_string_equal(rec->rua[0], "mailto:r@example.com");
	assert_true(rec->pct_seen);
	dmarc_record_free(&rec);
}

static void test_org_domain(void **state)
{
	struct dns_resolver *r = dns_resolver_create_memory();
	char *org = NULL;

	/* B.4.1 */
	add(r, "_dmarc.example.com", "v=DMARC1; p=reject");
	add(r, "_dmarc.signing.example.com", "v=DMARC1; p=none");
	assert_int_equal(dmarc_org_domain(r, "example.com", &org), 0);
	assert_string_equal(org, "example.com");
	free(org);
	assert_int_equal(dmarc_org_domain(r, "signing.example.com", &org), 0);
	assert_string_equal(org, "example.com");
	free(org);
	/* B.4.2: eight queries at most, skipping intermediate names */
	uint64_t before = dns_resolver_lookups(r);
	assert_int_equal(dmarc_org_domain(r, "a.b.c.d.e.f.g.h.i.j.k.example.com", &org), 0);
	assert_string_equal(org, "example.com");
	assert_int_equal(dns_resolver_lookups(r) - before, 8);
	free(org);
	/* no record anywhere: the domain itself */
	assert_int_equal(dmarc_org_domain(r, "other.example.net", &org), 0);
	assert_string_equal(org, "other.example.net");
	free(org);
	/* B.4.3: psd=y */
	add(r, "_dmarc.bank.example", "v=DMARC1; p=reject; psd=y");
	add(r, "_dmarc.giant.bank.example", "v=DMARC1; p=quarantine");
	assert_int_equal(dmarc_org_domain(r, "giant.bank.example", &org), 0);
	assert_string_equal(org, "giant.bank.example");
	free(org);
	assert_int_equal(dmarc_org_domain(r, "mail.giant.bank.example", &org), 0);
	assert_string_equal(org, "giant.bank.example");
	free(org);
	assert_int_equal(dmarc_org_domain(r, "mail.mega.bank.example", &org), 0);
	assert_string_equal(org, "mega.bank.example");
	free(org);
	/* psd=n stops the walk and names the org domain */
	add(r, "_dmarc.mail.example.org", "v=DMARC1; p=none; psd=n");
	add(r, "_dmarc.example.org", "v=DMARC1; p=reject");
	assert_int_equal(dmarc_org_domain(r, "a.mail.example.org", &org), 0);
	assert_string_equal(org, "mail.example.org");
	free(org);
	/* two DMARC records at one name count as none */
	add(r, "_dmarc.dup.example.org", "v=DMARC1; p=none");
	add(r, "_dmarc.dup.example.org", "v=DMARC1; p=reject");
	assert_int_equal(dmarc_org_domain(r, "x.dup.example.org", &org), 0);
	assert_string_equal(org, "example.org");
	free(org);
	/* policy discovery for a deep author domain: eight queries in all */
	struct dns_resolver *r2 = dns_resolver_create_memory();
	add(r2, "_dmarc.example.com", "v=DMARC1; p=reject");
	struct dmarc_input in = { .from_domain = "a.b.c.d.e.f.g.h.i.j.k.example.com", .from_domains = 1 };
	struct dmarc_evaluation ev;
	dmarc_evaluate(r2, &in, &ev);
	assert_int_equal(ev.result, DMARC_RESULT_FAIL);
	assert_string_equal(ev.policy_domain, "example.com");
	assert_string_equal(ev.org_domain, "example.com");
	assert_int_equal(dns_resolver_lookups(r2), 8);
	dmarc_evaluation_clear(&ev);
	dns_resolver_free(&r2);
	/* a temporary failure on the way */
	dns_memory_add_timeout(r, "_dmarc.slow.example.org", 0);
	assert_int_equal(dmarc_org_domain(r, "a.slow.example.org", &org), -1);
	dns_resolver_free(&r);
}

struct eval_case {
	const char *name;
	const char *from;
	enum spf_result spf;
	const char *spf_domain;
	const char *dkim_domain;  /* one passing signature; NULL: none */
	enum dmarc_result result;
	enum dmarc_policy disposition;
	const char *policy_domain;
	bool spf_aligned, dkim_aligned;
};

static void run_eval(struct dns_resolver *r, const struct eval_case *c)
{
	struct dkim_result d = { .status = DKIM_PASS, .domain = (char *)c->dkim_domain };
	struct dmarc_input in = {
		.from_domain = c->from, .from_domains = c->from ? 1 : 0,
		.spf = c->spf, .spf_domain = c->spf_domain,
		.dkim = c->dkim_domain ? &d : NULL, .dkim_count = c->dkim_domain ? 1 : 0,
	};
	struct dmarc_evaluation ev;

	dmarc_evaluate(r, &in, &ev);
	if (ev.result != c->result)
		fail_msg("%s: result %s (%s)", c->name, dmarc_result_name(ev.result),
			 ev.reason ? ev.reason : "");
	if (ev.disposition != c->disposition)
		fail_msg("%s: disposition %s", c->name, dmarc_policy_name(ev.disposition));
	if (c->policy_domain != NULL &&
	    (ev.policy_domain == NULL || strcmp(ev.policy_domain, c->policy_domain) != 0))
		fail_msg("%s: policy domain %s", c->name, ev.policy_domain ? ev.policy_domain : "-");
	if (ev.spf_aligned != c->spf_aligned || ev.dkim_aligned != c->dkim_aligned)
		fail_msg("%s: aligned spf %d dkim %d", c->name, ev.spf_aligned, ev.dkim_aligned);
	dmarc_evaluation_clear(&ev);
}

static void test_evaluate(void **state)
{
	struct dns_resolver *r = dns_resolver_create_memory();
	const char *err;

	add(r, "_dmarc.example.com", "v=DMARC1; p=reject; sp=quarantine; np=reject");
	add(r, "_dmarc.signing.example.com", "v=DMARC1; p=none");
	add(r, "_dmarc.strict.example", "v=DMARC1; p=reject; adkim=s; aspf=s");
	add(r, "_dmarc.testing.example", "v=DMARC1; p=reject; t=y");
	add(r, "_dmarc.q.testing2.example", "v=DMARC1; p=quarantine; t=y");
	add(r, "_dmarc.nopolicy.example", "v=DMARC1; rua=mailto:agg@nopolicy.example");
	add(r, "_dmarc.useless.example", "v=DMARC1; p=bogus");
	add(r, "_dmarc.bank.example", "v=DMARC1; p=reject; psd=y");
	add(r, "_dmarc.giant.bank.example", "v=DMARC1; p=quarantine");
	assert_int_equal(dns_memory_add(r, "www.example.com", DNS_TYPE_A, "192.0.2.1", &err), 0);
	dns_memory_add_timeout(r, "_dmarc.slow.example", 0);
	add(r, "_dmarc.own.slow2.example", "v=DMARC1; p=reject");
	dns_memory_add_timeout(r, "_dmarc.slow2.example", 0);

	const struct eval_case cases[] = {
		{ "spf aligned relaxed", "example.com", SPF_PASS, "bounce.example.com", NULL,
		  DMARC_RESULT_PASS, DMARC_POLICY_NONE, "example.com", true, false },
		{ "dkim aligned B.4.1", "example.com", SPF_FAIL, "example.com", "signing.example.com",
		  DMARC_RESULT_PASS, DMARC_POLICY_NONE, "example.com", false, true },
		{ "nothing aligned: reject", "example.com", SPF_PASS, "example.net", "example.net",
		  DMARC_RESULT_FAIL, DMARC_POLICY_REJECT, "example.com", false, false },
		{ "spf fail does not count", "example.com", SPF_FAIL, "example.com", NULL,
		  DMARC_RESULT_FAIL, DMARC_POLICY_REJECT, "example.com", false, false },
		{ "existing subdomain: sp", "www.example.com", SPF_NONE, NULL, NULL,
		  DMARC_RESULT_FAIL, DMARC_POLICY_QUARANTINE, "example.com", false, false },
		{ "non-existent subdomain: np", "nx.example.com", SPF_NONE, NULL, NULL,
		  DMARC_RESULT_FAIL, DMARC_POLICY_REJECT, "example.com", false, false },
		{ "subdomain with own record: p", "signing.example.com", SPF_NONE, NULL, NULL,
		  DMARC_RESULT_FAIL, DMARC_POLICY_NONE, "signing.example.com", false, false },
		{ "strict: subdomain not aligned", "strict.example", SPF_PASS, "mail.strict.example",
		  "mail.strict.example", DMARC_RESULT_FAIL, DMARC_POLICY_REJECT, NULL, false, false },
		{ "strict: exact aligned", "strict.example", SPF_PASS, "strict.example", NULL,
		  DMARC_RESULT_PASS, DMARC_POLICY_NONE, NULL, true, false },
		{ "t=y: reject becomes quarantine", "testing.example", SPF_NONE, NULL, NULL,
		  DMARC_RESULT_FAIL, DMARC_POLICY_QUARANTINE, NULL, false, false },
		{ "t=y: quarantine becomes none", "q.testing2.example", SPF_NONE, NULL, NULL,
		  DMARC_RESULT_FAIL, DMARC_POLICY_NONE, NULL, false, false },
		{ "no p but rua: as p=none", "nopolicy.example", SPF_NONE, NULL, NULL,
		  DMARC_RESULT_FAIL, DMARC_POLICY_NONE, NULL, false, false },
		{ "no valid p, no rua: no DMARC", "useless.example", SPF_NONE, NULL, NULL,
		  DMARC_RESULT_NONE, DMARC_POLICY_NONE, NULL, false, false },
		{ "no record", "example.net", SPF_PASS, "example.net", NULL,
		  DMARC_RESULT_NONE, DMARC_POLICY_NONE, NULL, false, false },
		{ "no author", NULL, SPF_PASS, "example.net", NULL,
		  DMARC_RESULT_NONE, DMARC_POLICY_NONE, NULL, false, false },
		{ "temperror", "a.slow.example", SPF_PASS, "a.slow.example", NULL,
		  DMARC_RESULT_TEMPERROR, DMARC_POLICY_NONE, NULL, false, false },
		/* the author's own record applies without walking further: a
		 * failing lookup above it does not matter for identical ids... */
		{ "own record, identical id", "own.slow2.example", SPF_PASS, "own.slow2.example", NULL,
		  DMARC_RESULT_PASS, DMARC_POLICY_NONE, "own.slow2.example", true, false },
		/* ...but does when relaxed alignment needs the org domain */
		{ "own record, relaxed needs walk", "own.slow2.example", SPF_PASS,
		  "sub.own.slow2.example", NULL,
		  DMARC_RESULT_TEMPERROR, DMARC_POLICY_NONE, "own.slow2.example", false, false },
		{ "B.4.3: spf aligned, dkim not", "giant.bank.example", SPF_PASS,
		  "mail.giant.bank.example", "mail.mega.bank.example",
		  DMARC_RESULT_PASS, DMARC_POLICY_NONE, "giant.bank.example", true, false },
		{ "B.4.3: other org under psd", "giant.bank.example", SPF_PASS, "mega.bank.example", NULL,
		  DMARC_RESULT_FAIL, DMARC_POLICY_QUARANTINE, "giant.bank.example", false, false },
		{ "PSD policy for an org without record", "x.small.bank.example", SPF_NONE, NULL, NULL,
		  DMARC_RESULT_FAIL, DMARC_POLICY_REJECT, "bank.example", false, false },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		run_eval(r, &cases[i]);

	/* Several author domains: an error, not a silent "none". */
	struct dmarc_input in = { .from_domain = "example.com", .from_domains = 2 };
	struct dmarc_evaluation ev;
	dmarc_evaluate(r, &in, &ev);
	assert_int_equal(ev.result, DMARC_RESULT_PERMERROR);
	dmarc_evaluation_clear(&ev);

	/* DKIM with t=y in the key counts as unsigned; a failing one not at all. */
	struct dkim_result d[2] = {
		{ .status = DKIM_PASS, .domain = "example.com", .testing = true },
		{ .status = DKIM_FAIL, .domain = "example.com" },
	};
	struct dmarc_input in2 = { .from_domain = "example.com", .from_domains = 1, .dkim = d,
				   .dkim_count = 2 };
	dmarc_evaluate(r, &in2, &ev);
	assert_int_equal(ev.result, DMARC_RESULT_FAIL);
	dmarc_evaluation_clear(&ev);
	d[0].testing = false;
	dns_memory_set_authentic(r, true);
	dmarc_evaluate(r, &in2, &ev);
	assert_int_equal(ev.result, DMARC_RESULT_PASS);
	assert_string_equal(ev.dkim_domain, "example.com");
	assert_true(ev.authentic);
	assert_string_equal(ev.org_domain, "example.com");
	dmarc_evaluation_clear(&ev);
	dns_resolver_free(&r);
}

static void test_message_info(void **state)
{
	static const struct {
		const char *msg;
		const char *domain;
		size_t count;
		bool list;
	} cases[] = {
		{ "From: Joe <joe@Example.COM>\r\n\r\nbody", "example.com", 1, false },
		{ "From: joe@example.com\r\nList-Id: <x.lists.example.org>\r\n\r\n", "example.com", 1, true },
		{ "From: \"a@evil.example, b\" <joe@example.com> (c@other.example)\r\n\r\n", "example.com", 1, false },
		{ "From: a@example.com, b@example.net\r\n\r\n", "example.com", 2, false },
		{ "From: a@example.com, b@EXAMPLE.com\r\n\r\n", "example.com", 1, false },
		{ "From: group: a@example.com, b@example.com;\r\n\r\n", "example.com", 1, false },
		{ "From: =?utf-8?q?J=C3=B6?= <j@b\xc3\xbc" "cher.example>\r\n\r\n", "xn--bcher-kva.example", 1, false },
		{ "From: undisclosed\r\n\r\n", NULL, 0, false },
		{ "Subject: none\r\n\r\n", NULL, 0, false },
		{ "From: a@example.com\r\nList-Unsubscribe: <mailto:u@x>\r\n\r\n", "example.com", 1, true },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct dmarc_message_info info;
		dmarc_message_info(cases[i].msg, strlen(cases[i].msg), &info);
		if (cases[i].domain == NULL)
			assert_null(info.from_domain);
		else if (info.from_domain == NULL || strcmp(info.from_domain, cases[i].domain) != 0)
			fail_msg("case %zu: %s", i, info.from_domain ? info.from_domain : "NULL");
		assert_int_equal(info.from_domains, cases[i].count);
		assert_int_equal(info.list, cases[i].list);
		dmarc_message_info_clear(&info);
	}
	struct dmarc_message_info info;
	const char *m = "From: a@example.com\r\nFrom: b@example.com\r\nList-Id: Lists\r\n <l.example.org>\r\n\r\n";
	dmarc_message_info(m, strlen(m), &info);
	assert_true(info.from_fields_multiple);
	assert_string_equal(info.list_id, "Lists <l.example.org>");
	dmarc_message_info_clear(&info);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_record_parse),
		cmocka_unit_test(test_org_domain),
		cmocka_unit_test(test_evaluate),
		cmocka_unit_test(test_message_info),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
