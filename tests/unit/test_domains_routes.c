/* domains.conf routes and transports: parsing, validation errors with
 * file:line: field, and the account -> domain -> global precedence. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "domains.h"

#define BASE \
	"domain example.org {\n" \
	"    route to-domain slow.example transport relay\n" \
	"}\n" \
	"domain other.example {\n" \
	"}\n" \
	"account mjl {\n" \
	"    domain example.org\n" \
	"    address mjl@example.org\n" \
	"    keep-retired-messages 30d\n" \
	"    route to-domain Gmail.COM min-attempt 3 transport thirdparty\n" \
	"}\n" \
	"account bob {\n" \
	"    domain other.example\n" \
	"    address bob@other.example\n" \
	"}\n" \
	"transport relay {\n" \
	"    smtp smarthost.example.net:25\n" \
	"    tls-verify no\n" \
	"}\n" \
	"transport thirdparty {\n" \
	"    submissions [2001:db8::1]:465\n" \
	"    auth-user sender@example.org\n" \
	"    auth-password-file secrets/thirdparty\n" \
	"    auth-mechanism login\n" \
	"    tls-ca-file ca.pem\n" \
	"}\n" \
	"transport proxy {\n" \
	"    socks5 127.0.0.1:1080\n" \
	"    socks5-user u\n" \
	"    socks5-password-file /etc/proxy-pass\n" \
	"}\n" \
	"route from-domain other.example transport proxy\n" \
	"route transport direct\n"

static struct mf_domains *load_ok(const char *text)
{
	struct mf_domains *d = NULL;
	const char *error = NULL;

	if (mf_domains_load_buf("/cfg/domains.conf", text, strlen(text), &d, &error) < 0)
		fail_msg("load failed: %s", error);
	return d;
}

static void test_parse(void **state)
{
	struct mf_domains *d = load_ok(BASE);
	const struct mf_transport *t;
	const struct mf_account *a;

	assert_int_equal(d->transports_count, 3);
	t = mf_domains_find_transport(d, "thirdparty");
	assert_non_null(t);
	assert_int_equal(t->kind, MF_TRANSPORT_SUBMISSIONS);
	assert_string_equal(t->addr.host, "2001:db8::1");
	assert_int_equal(t->addr.port, 465);
	assert_string_equal(t->auth_user, "sender@example.org");
	assert_string_equal(t->auth_password_file, "/cfg/secrets/thirdparty");
	assert_int_equal(t->auth_mechanism, MF_TRANSPORT_AUTH_LOGIN);
	assert_false(t->tls_verify_set);
	assert_string_equal(t->tls_ca_file, "/cfg/ca.pem");
	t = mf_domains_find_transport(d, "proxy");
	assert_int_equal(t->kind, MF_TRANSPORT_SOCKS5);
	assert_string_equal(t->socks5_user, "u");
	t = mf_domains_find_transport(d, "relay");
	assert_int_equal(t->kind, MF_TRANSPORT_SMTP);
	assert_true(t->tls_verify_set);
	assert_false(t->tls_verify);
	assert_null(t->auth_user);
	assert_null(mf_domains_find_transport(d, "nope"));
	a = mf_domains_find_account(d, "mjl");
	assert_int_equal(a->keep_retired_messages_ms, 30ULL * 24 * 3600 * 1000);
	assert_int_equal(a->routes_count, 1);
	assert_string_equal(a->routes[0].to_domain, "gmail.com");  /* lower-cased */
	assert_int_equal(a->routes[0].min_attempt, 3);
	assert_int_equal(a->routes[0].line, 10);
	assert_int_equal(mf_domains_find_account(d, "bob")->keep_retired_messages_ms, 0);
	assert_int_equal(d->routes_count, 2);
	mf_domains_unref(&d);
}

static void test_precedence(void **state)
{
	struct mf_domains *d = load_ok(BASE);
	const struct mf_route *r;

	/* The account's route from the third attempt on. */
	r = mf_domains_route(d, "mjl", "example.org", "gmail.com", 3);
	assert_string_equal(r->transport, "thirdparty");
	r = mf_domains_route(d, "mjl", "example.org", "gmail.com", 5);
	assert_string_equal(r->transport, "thirdparty");
	/* Before: the global catch-all. */
	r = mf_domains_route(d, "mjl", "example.org", "gmail.com", 2);
	assert_string_equal(r->transport, "direct");
	/* The sender domain's route. */
	r = mf_domains_route(d, "mjl", "example.org", "slow.example", 1);
	assert_string_equal(r->transport, "relay");
	/* Another account does not get mjl's route. */
	r = mf_domains_route(d, "bob", "example.org", "gmail.com", 4);
	assert_string_equal(r->transport, "direct");
	/* Global route by sender domain; unknown account is fine. */
	r = mf_domains_route(d, NULL, "other.example", "gmail.com", 1);
	assert_string_equal(r->transport, "proxy");
	r = mf_domains_route(d, "ghost", "unknown.example", "x.example", 1);
	assert_string_equal(r->transport, "direct");
	mf_domains_unref(&d);
}

static void test_no_routes(void **state)
{
	const char *text = "domain example.org {\n}\n";
	struct mf_domains *d = load_ok(text);

	assert_null(mf_domains_route(d, "x", "example.org", "example.com", 1));
	mf_domains_unref(&d);
}

struct bad_case {
	const char *text;
	const char *want;  /* substring of the error */
};

static void test_errors(void **state)
{
	static const struct bad_case cases[] = {
		{ "route to-domain a.example\n", "1: route: transport NAME missing" },
		{ "route transport nosuch\n", "1: route: no transport named nosuch" },
		{ "route to-domain a.example transport relay extra\n", "want [from-domain" },
		{ "route min-attempt 0 transport direct\n", "min-attempt 0" },
		{ "route min-attempt x transport direct\n", "min-attempt x" },
		{ "route color red transport direct\n", "unknown or repeated color" },
		{ "route to-domain a..b transport direct\n", "to-domain a..b" },
		{ "route transport direct transport local\n", "unknown or repeated transport" },
		{ "transport t {\n}\n", "1: transport[t]: want one of smtp" },
		{ "transport t {\n    smtp a.example:25\n    socks5 b.example:1080\n}\n",
		  "3: transport[t].socks5: only one of" },
		{ "transport t {\n    smtp a.example\n}\n", "2: transport[t].smtp" },
		{ "transport t {\n    submission a.example:587\n}\n",
		  "1: transport[t]: submission needs auth-user" },
		{ "transport t {\n    smtp a.example:25\n    auth-user x\n}\n",
		  "auth-user and auth-password-file go together" },
		{ "transport t {\n    socks5 a.example:1080\n    auth-user x\n"
		  "    auth-password-file p\n}\n", "a SOCKS5 proxy takes socks5-user" },
		{ "transport t {\n    smtp a.example:25\n    socks5-user x\n"
		  "    socks5-password-file p\n}\n", "socks5-user is only for socks5" },
		{ "transport t {\n    smtp a.example:25\n    auth-mechanism cram-md5\n}\n",
		  "unknown mechanism cram-md5" },
		{ "transport t {\n    socks5 a.example:1080\n    tls-verify no\n}\n",
		  "tls-verify and tls-ca-file are for smtp" },
		{ "transport t {\n    smtp a.example:25\n    tls-verify maybe\n}\n",
		  "3: transport[t].tls-verify" },
		{ "transport direct {\n    smtp a.example:25\n}\n", "direct is a built-in" },
		{ "transport a.b {\n    smtp a.example:25\n}\n", "bad transport name a.b" },
		{ "transport t {\n    smtp a.example:25\n}\ntransport t {\n    smtp b.example:25\n}\n",
		  "4: transport: duplicate transport t (first at line 1)" },
		{ "transport t {\n    smtp a.example:25\n    color red\n}\n", "3: transport[t].color" },
		{ "domain example.org {\n    route transport nosuch\n}\n",
		  "2: domain[example.org].route: no transport named nosuch" },
		{ "domain example.org {\n}\naccount a {\n    domain example.org\n"
		  "    address a@example.org\n    route transport t2\n}\n",
		  "6: account[a].route: no transport named t2" },
		{ "domain example.org {\n}\naccount a {\n    domain example.org\n"
		  "    address a@example.org\n    keep-retired-messages forever\n}\n",
		  "6: account[a].keep-retired-messages" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct mf_domains *d = NULL;
		const char *error = NULL;
		int r = mf_domains_load_buf("d.conf", cases[i].text, strlen(cases[i].text), &d,
					    &error);
		if (r == 0) {
			mf_domains_unref(&d);
			fail_msg("case %zu loaded: %s", i, cases[i].text);
		}
		if (error == NULL || strstr(error, cases[i].want) == NULL)
			fail_msg("case %zu: want \"%s\" in \"%s\"", i, cases[i].want,
				 error != NULL ? error : "(null)");
		if (strncmp(error, "d.conf:", 7) != 0)
			fail_msg("case %zu: no file name: %s", i, error);
	}
}

static void test_too_many_routes(void **state)
{
	char *text = calloc(1, (MF_DOMAINS_ROUTES_MAX + 2) * 32);
	size_t off = 0;
	struct mf_domains *d = NULL;
	const char *error = NULL;

	for (int i = 0; i < MF_DOMAINS_ROUTES_MAX + 1; i++)
		off += (size_t)snprintf(text + off, 32, "route transport direct\n");
	assert_int_equal(mf_domains_load_buf("d.conf", text, off, &d, &error), -1);
	assert_non_null(strstr(error, "too many routes"));
	free(text);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_precedence),
		cmocka_unit_test(test_no_routes),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_too_many_routes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
