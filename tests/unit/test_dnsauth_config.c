/* The dnsauth block of mailfleet.conf: resolver modes, trust anchor,
 * timeout, DNSBL zones and monitored addresses, their errors, and the
 * resolver built from them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "config.h"
#include "services/dnsauth/dnsauth_config.h"

static struct mf_config *load(const char *block, const char **error_r)
{
	char *text = mf_xasprintf("hostname mx.example.org\ndata-dir /tmp/mf-data\n"
				  "dnsauth {\n    admin 127.0.0.1:1086\n%s}\n", block);
	struct mf_config *c = NULL;

	if (mf_config_load_buf("/etc/mailfleet/mailfleet.conf", text, strlen(text), NULL, &c,
			       error_r) < 0)
		c = NULL;
	free(text);
	return c;
}

static void test_defaults(void **state)
{
	const char *err;
	struct mf_config *c = load("", &err);

	assert_non_null(c);
	assert_true(c->services[MF_SERVICE_DNSAUTH].enabled);
	assert_true(c->services[MF_SERVICE_DNSAUTH].admin_set);
	assert_int_equal(c->services[MF_SERVICE_DNSAUTH].admin.port, 1086);
	assert_int_equal(c->dnsauth.resolver, MF_DNS_RECURSIVE);
	assert_null(c->dnsauth.trust_anchor);
	assert_int_equal(c->dnsauth.timeout_ms, 5000);
	assert_int_equal(c->dnsauth.dnsbl_count, 0);
	assert_int_equal(c->dnsauth.monitor_interval_ms, 3600 * 1000);
	assert_string_equal(dnsauth_resolver_mode_name(&c->dnsauth), "recursive");
	mf_config_free(&c);
}

static void test_full(void **state)
{
	const char *err;
	struct mf_config *c = load("    resolver forward 127.0.0.1@5353 ::1\n"
				   "    trust-anchor keys/anchor.key\n"
				   "    timeout 2s\n"
				   "    dnsbl bl.example.org\n"
				   "    dnsbl bl2.example.org\n"
				   "    monitor-ip 192.0.2.25\n"
				   "    monitor-ip 2001:db8::25\n"
				   "    monitor-interval 10m\n", &err);

	if (c == NULL)
		fail_msg("%s", err);
	assert_int_equal(c->dnsauth.resolver, MF_DNS_FORWARD);
	assert_int_equal(c->dnsauth.forward_count, 2);
	assert_string_equal(c->dnsauth.forward[0], "127.0.0.1@5353");
	assert_string_equal(c->dnsauth.forward[1], "::1");
	/* Relative paths are relative to the config file. */
	assert_string_equal(c->dnsauth.trust_anchor, "/etc/mailfleet/keys/anchor.key");
	assert_int_equal(c->dnsauth.timeout_ms, 2000);
	assert_int_equal(c->dnsauth.dnsbl_count, 2);
	assert_string_equal(c->dnsauth.dnsbl[1], "bl2.example.org");
	assert_int_equal(c->dnsauth.monitor_ip_count, 2);
	assert_int_equal(c->dnsauth.monitor_interval_ms, 600 * 1000);
	mf_config_free(&c);

	c = load("    resolver resolvconf /etc/resolv.conf\n", &err);
	assert_non_null(c);
	assert_int_equal(c->dnsauth.resolver, MF_DNS_RESOLVCONF);
	assert_string_equal(c->dnsauth.resolvconf, "/etc/resolv.conf");
	mf_config_free(&c);
}

static void test_errors(void **state)
{
	static const struct {
		const char *block;
		const char *want;
	} cases[] = {
		{ "    resolver\n", "resolver" },
		{ "    resolver forward\n", "want recursive" },
		{ "    resolver recursive 1.2.3.4\n", "want recursive" },
		{ "    resolver forward dns.example\n", "bad server dns.example" },
		{ "    resolver fast\n", "want recursive" },
		{ "    dnsbl bad_zone!\n", "dnsauth.dnsbl" },
		{ "    monitor-ip 192.0.2\n", "bad IP address 192.0.2" },
		{ "    timeout soon\n", "dnsauth.timeout" },
		{ "    listen 127.0.0.1:25\n", "listen" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *err = NULL;
		struct mf_config *c = load(cases[i].block, &err);
		if (c != NULL || err == NULL || strstr(err, cases[i].want) == NULL)
			fail_msg("%s: want error with \"%s\", got %s", cases[i].block, cases[i].want,
				 c != NULL ? "success" : err);
	}
	/* 17 zones is one too many. */
	struct mf_buf b;
	const char *err = NULL;
	mf_buf_init(&b, 0);
	for (int i = 0; i <= MF_CONFIG_DNSBL_MAX; i++)
		mf_buf_appendf(&b, "    dnsbl bl%d.example.org\n", i);
	assert_null(load(mf_buf_cstr(&b), &err));
	assert_non_null(strstr(err, "too many"));
	mf_buf_free(&b);
}

static void test_resolver_from_config(void **state)
{
	const char *err;
	struct mf_config *c = load("    resolver forward 127.0.0.1@5353\n    timeout 1s\n", &err);
	struct dns_resolver *r = NULL;

	assert_non_null(c);
	assert_int_equal(dnsauth_resolver_create(&c->dnsauth, &r, &err), 0);
	dns_resolver_free(&r);
	mf_config_free(&c);
	c = load("    trust-anchor /nonexistent/root.key\n", &err);
	assert_non_null(c);
	assert_int_equal(dnsauth_resolver_create(&c->dnsauth, &r, &err), -1);
	assert_non_null(strstr(err, "/nonexistent/root.key"));
	mf_config_free(&c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_full),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_resolver_from_config),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
