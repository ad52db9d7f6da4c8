/* DKIM: parsers, canonicalization, the RFC 8463 A.3 example, signing
 * round trips and every policy decision, against the memory resolver. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "keygen.h"
#include "services/dnsauth/dkim.h"
#include "services/dnsauth/resolver.h"

static char dir[] = "/tmp/mf-dkim-XXXXXX";

#define A3_ED "v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="
#define A3_RSA "v=DKIM1; k=rsa; p=MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDkHlOQoBTzWR" \
	"iGs5V6NpP3idY6Wk08a5qhdR6wy5bdOKb2jLQiY/J16JYi0Qvx/byYzCNb3W91y3FutAC" \
	"DfzwQ/BC/e/8uBsCR+yz1Lxj+PL6lHvqMKrM3rG4hstT5QjvHO9PzoxZyVYLzBfO2EeC3" \
	"Ip3G+2kryOTIKT+l/K4w3QIDAQAB"

static const char a3_msg[] =
	"DKIM-Signature: v=1; a=ed25519-sha256; c=relaxed/relaxed;\r\n"
	" d=football.example.com; i=@football.example.com;\r\n"
	" q=dns/txt; s=brisbane; t=1528637909; h=from : to :\r\n"
	" subject : date : message-id : from : subject : date;\r\n"
	" bh=2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=;\r\n"
	" b=/gCrinpcQOoIfuHNQIbq4pgh9kyIK3AQUdt9OdqQehSwhEIug4D11Bus\r\n"
	" Fa3bT3FY5OsU7ZbnKELq+eXdp1Q1Dw==\r\n"
	"DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed;\r\n"
	" d=football.example.com; i=@football.example.com;\r\n"
	" q=dns/txt; s=test; t=1528637909; h=from : to : subject :\r\n"
	" date : message-id : from : subject : date;\r\n"
	" bh=2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=;\r\n"
	" b=F45dVWDfMbQDGHJFlXUNB2HKfbCeLRyhDXgFpEL8GwpsRe0IeIixNTe3\r\n"
	" DhCVlUrSjV4BwcVcOF6+FF3Zo9Rpo1tFOeS9mPYQTnGdaSGsgeefOsk2Jz\r\n"
	" dA+L10TeYt9BgDfQNZtKdN1WO//KgIqXP7OdEFE4LjFYNcUxZQ4FADY+8=\r\n"
	"From: Joe SixPack <joe@football.example.com>\r\n"
	"To: Suzie Q <suzie@shopping.example.net>\r\n"
	"Subject: Is dinner ready?\r\n"
	"Date: Fri, 11 Jul 2003 21:00:37 -0700 (PDT)\r\n"
	"Message-ID: <20030712040037.46341.5F8J@football.example.com>\r\n"
	"\r\n"
	"Hi.\r\n"
	"\r\n"
	"We lost the game.  Are you hungry yet?\r\n"
	"\r\n"
	"Joe.\r\n";

static const struct dkim_verify_settings defaults = { .now = 1528637909 + 60 };

static struct dns_resolver *a3_resolver(const char *ed, const char *rsa)
{
	struct dns_resolver *r = dns_resolver_create_memory();
	const char *err = NULL;

	if (ed != NULL)
		assert_int_equal(dns_memory_add(r, "brisbane._domainkey.football.example.com",
						DNS_TYPE_TXT, ed, &err), 0);
	if (rsa != NULL)
		assert_int_equal(dns_memory_add(r, "test._domainkey.football.example.com",
						DNS_TYPE_TXT, rsa, &err), 0);
	return r;
}

/* Replaces the first "from" in msg with "to" (a new string). */
static char *replace(const char *msg, const char *from, const char *to)
{
	const char *p = strstr(msg, from);
	assert_non_null(p);
	return mf_xasprintf("%.*s%s%s", (int)(p - msg), msg, to, p + strlen(from));
}

static void verify2(struct dns_resolver *r, const struct dkim_verify_settings *s, const char *msg,
		    enum dkim_status ed, enum dkim_status rsa, const char *err_sub)
{
	struct dkim_result *res = NULL;
	size_t n = 0;

	dkim_verify(r, s, msg, strlen(msg), &res, &n);
	assert_int_equal(n, 2);
	if (res[0].status != ed || res[1].status != rsa)
		fail_msg("got %s (%s) / %s (%s)", dkim_status_name(res[0].status),
			 res[0].error ? res[0].error : "", dkim_status_name(res[1].status),
			 res[1].error ? res[1].error : "");
	if (err_sub != NULL) {
		assert_non_null(res[0].error);
		assert_non_null(strstr(res[0].error, err_sub));
	}
	dkim_results_free(&res, n);
}

static void test_rfc8463_example(void **state)
{
	struct dns_resolver *r = a3_resolver(A3_ED, A3_RSA);
	struct dkim_result *res = NULL;
	size_t n = 0;

	dns_memory_set_authentic(r, true);
	dkim_verify(r, &defaults, a3_msg, strlen(a3_msg), &res, &n);
	assert_int_equal(n, 2);
	assert_int_equal(res[0].status, DKIM_PASS);
	assert_string_equal(res[0].algorithm, "ed25519-sha256");
	assert_string_equal(res[0].domain, "football.example.com");
	assert_string_equal(res[0].selector, "brisbane");
	assert_string_equal(res[0].b_prefix, "/gCrinpc");
	assert_true(res[0].authentic);
	assert_int_equal(res[1].status, DKIM_PASS);
	assert_string_equal(res[1].algorithm, "rsa-sha256");
	dkim_results_free(&res, n);

	/* The same message with bare LF line ends. */
	char *lf = mf_xmalloc(sizeof(a3_msg));
	size_t o = 0;
	for (const char *p = a3_msg; *p; p++)
		if (*p != '\r')
			lf[o++] = *p;
	lf[o] = '\0';
	verify2(r, &defaults, lf, DKIM_PASS, DKIM_PASS, NULL);
	free(lf);
	dns_resolver_free(&r);
}

static void test_tampered(void **state)
{
	struct dns_resolver *r = a3_resolver(A3_ED, A3_RSA);
	char *m;

	m = replace(a3_msg, "Are you hungry", "Are you thirsty");
	verify2(r, &defaults, m, DKIM_FAIL, DKIM_FAIL, "body hash");
	free(m);
	m = replace(a3_msg, "Is dinner ready?", "Is lunch ready?");
	verify2(r, &defaults, m, DKIM_FAIL, DKIM_FAIL, "does not verify");
	free(m);
	/* Relaxed canonicalization: whitespace changes do not matter. */
	m = replace(a3_msg, "Subject: Is dinner", "Subject:   Is \t dinner");
	verify2(r, &defaults, m, DKIM_PASS, DKIM_PASS, NULL);
	free(m);
	m = replace(a3_msg, "Joe.\r\n", "Joe.   \r\n\r\n\r\n");
	verify2(r, &defaults, m, DKIM_PASS, DKIM_PASS, NULL);
	free(m);
	/* A From added on top is not signed (oversigned: from appears twice). */
	m = mf_xasprintf("From: evil@example.net\r\n%s", a3_msg);
	verify2(r, &defaults, m, DKIM_FAIL, DKIM_FAIL, "does not verify");
	free(m);
	dns_resolver_free(&r);
}

static void test_policy(void **state)
{
	struct dns_resolver *r = a3_resolver(A3_ED, A3_RSA);
	struct dkim_verify_settings s = defaults;
	char *m, *m2;

	/* l= refused by default; verified (and here failing) when allowed. */
	m = replace(a3_msg, "q=dns/txt; s=brisbane;", "q=dns/txt; l=10; s=brisbane;");
	verify2(r, &s, m, DKIM_POLICY, DKIM_PASS, "l=");
	s.allow_length = true;
	verify2(r, &s, m, DKIM_FAIL, DKIM_PASS, NULL);
	s.allow_length = false;
	free(m);
	/* rsa-sha1 refused (RFC 8301) unless allowed. */
	m = replace(a3_msg, "a=rsa-sha256", "a=rsa-sha1");
	m2 = replace(m, "a=ed25519-sha256", "a=rsa-sha1");
	verify2(r, &s, m2, DKIM_POLICY, DKIM_POLICY, "rsa-sha1");
	s.allow_sha1 = true;
	/* allowed: the ed25519 key does not match rsa, the rsa one fails */
	verify2(r, &s, m2, DKIM_PERMERROR, DKIM_FAIL, "key type");
	s.allow_sha1 = false;
	free(m);
	free(m2);
	/* x= in the past: expired. */
	m = replace(a3_msg, "t=1528637909; h=from : to :\r\n", "t=1528637909; x=1528637919; h=from : to :\r\n");
	verify2(r, &s, m, DKIM_PERMERROR, DKIM_PASS, "expired");
	free(m);
	/* t= far in the future. */
	s.now = 1528637909 - 86400;
	verify2(r, &s, a3_msg, DKIM_PERMERROR, DKIM_PERMERROR, "future");
	s.now = defaults.now;
	/* The 1024-bit RSA key is refused when the minimum is raised. */
	s.rsa_min_bits = 2048;
	verify2(r, &s, a3_msg, DKIM_PASS, DKIM_POLICY, NULL);
	s.rsa_min_bits = 0;
	/* Only one signature verified when max_signatures is 1. */
	s.max_signatures = 1;
	verify2(r, &s, a3_msg, DKIM_PASS, DKIM_POLICY, NULL);
	dns_resolver_free(&r);
}

static void test_key_flags(void **state)
{
	struct {
		const char *ed_record;
		enum dkim_status status;
		const char *err;
		bool testing;
	} cases[] = {
		{ "v=DKIM1; k=ed25519; t=y; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=", DKIM_PASS, NULL, true },
		{ "v=DKIM1; k=ed25519; t=s; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=", DKIM_PASS, NULL, false },
		{ "v=DKIM1; k=ed25519; s=email:x; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=", DKIM_PASS, NULL, false },
		{ "v=DKIM1; k=ed25519; s=other; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=", DKIM_PERMERROR, "s=", false },
		{ "v=DKIM1; k=ed25519; h=sha1; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=", DKIM_PERMERROR, "h=", false },
		{ "v=DKIM1; k=ed25519; p=", DKIM_PERMERROR, "revoked", false },
		{ "v=DKIM1; k=rsa; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=", DKIM_PERMERROR, "key type", false },
		{ "v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPc=", DKIM_PERMERROR, "parse", false },
		{ "v=DKIM2; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=", DKIM_PERMERROR, "DKIM1", false },
		{ "k=ed25519; v=DKIM1; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=", DKIM_PERMERROR, "first", false },
		{ "k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=; future=tag", DKIM_PASS, NULL, false },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct dns_resolver *r = a3_resolver(cases[i].ed_record, A3_RSA);
		struct dkim_result *res = NULL;
		size_t n = 0;

		dkim_verify(r, &defaults, a3_msg, strlen(a3_msg), &res, &n);
		assert_int_equal(n, 2);
		if (res[0].status != cases[i].status)
			fail_msg("case %zu: %s (%s)", i, dkim_status_name(res[0].status),
				 res[0].error ? res[0].error : "");
		if (cases[i].err != NULL && strstr(res[0].error, cases[i].err) == NULL)
			fail_msg("case %zu: error %s", i, res[0].error);
		assert_int_equal(res[0].testing, cases[i].testing);
		dkim_results_free(&res, n);
		dns_resolver_free(&r);
	}
	/* t=s with i= a subdomain of d=: refused. */
	struct dns_resolver *r = a3_resolver(
		"v=DKIM1; k=ed25519; t=s; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=", A3_RSA);
	char *m = replace(a3_msg, "i=@football.example.com;\r\n q=dns/txt; s=brisbane",
			  "i=@sub.football.example.com;\r\n q=dns/txt; s=brisbane");
	verify2(r, &defaults, m, DKIM_PERMERROR, DKIM_PASS, "t=s");
	free(m);
	dns_resolver_free(&r);
}

static void test_dns_states(void **state)
{
	struct dns_resolver *r = a3_resolver(NULL, A3_RSA);
	const char *err;

	verify2(r, &defaults, a3_msg, DKIM_PERMERROR, DKIM_PASS, "no key record");
	dns_memory_add_timeout(r, "brisbane._domainkey.football.example.com", 0);
	verify2(r, &defaults, a3_msg, DKIM_TEMPERROR, DKIM_PASS, "timeout");
	dns_resolver_free(&r);
	/* A record that does not parse next to one that does. */
	r = a3_resolver(NULL, A3_RSA);
	assert_int_equal(dns_memory_add(r, "brisbane._domainkey.football.example.com", DNS_TYPE_TXT,
					"v=spf1 -all", &err), 0);
	assert_int_equal(dns_memory_add(r, "brisbane._domainkey.football.example.com", DNS_TYPE_TXT,
					A3_ED, &err), 0);
	verify2(r, &defaults, a3_msg, DKIM_PASS, DKIM_PASS, NULL);
	dns_resolver_free(&r);
}

static void test_weak_rsa(void **state)
{
	EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)512);
	unsigned char *der = NULL;
	int len;
	char *b64, *rec;
	struct dns_resolver *r;

	assert_non_null(k);
	len = i2d_PUBKEY(k, &der);
	assert_true(len > 0);
	b64 = dkim_base64_encode(der, (size_t)len);
	rec = mf_xasprintf("v=DKIM1; k=rsa; p=%s", b64);
	r = a3_resolver(A3_ED, rec);
	struct dkim_result *res = NULL;
	size_t n = 0;
	dkim_verify(r, &defaults, a3_msg, strlen(a3_msg), &res, &n);
	assert_int_equal(res[1].status, DKIM_POLICY);
	assert_non_null(strstr(res[1].error, "512"));
	dkim_results_free(&res, n);
	dns_resolver_free(&r);
	OPENSSL_free(der);
	EVP_PKEY_free(k);
	free(b64);
	free(rec);
}

static void test_signature_parse(void **state)
{
	static const struct {
		const char *value;
		const char *err;  /* NULL: parses */
	} cases[] = {
		{ "v=1; a=rsa-sha256; d=example.com; s=s; h=From; bh=YWJj; b=YWJj", NULL },
		{ "v=1; a=rsa-sha256; d=example.com; s=s; h=From:to; bh=YWJj; b=YWJj;", NULL },
		{ " v = 1 ;\r\n a=rsa-sha256; d=Example.COM; s=S; h=from\r\n :to; bh=YW\r\n Jj; b=YWJj", NULL },
		{ "v=2; a=rsa-sha256; d=example.com; s=s; h=From; bh=YWJj; b=YWJj", "v=" },
		{ "v=1; a=rsa-md5; d=example.com; s=s; h=From; bh=YWJj; b=YWJj", "algorithm" },
		{ "v=1; a=rsa-sha256; d=example.com; s=s; h=To; bh=YWJj; b=YWJj", "From" },
		{ "v=1; a=rsa-sha256; d=example.com; s=s; bh=YWJj; b=YWJj", "h=" },
		{ "v=1; a=rsa-sha256; d=example.com; s=s; h=From; bh=YWJj", "b=" },
		{ "v=1; a=rsa-sha256; d=example.com; s=s; h=From; bh=YWJj; b=YW!j", "base64" },
		{ "v=1; a=rsa-sha256; d=example.com; s=s; h=From; bh=YWJj; b=YWJj; v=1", "twice" },
		{ "v=1; a=rsa-sha256; d=example.com; s=s; h=From; bh=YWJj; b=YWJj; i=a@example.org", "i=" },
		{ "v=1; a=rsa-sha256; d=example.com; s=s; h=From; bh=YWJj; b=YWJj; i=a@sub.example.com", NULL },
		{ "v=1; a=rsa-sha256; d=example.com; s=s; h=From; bh=YWJj; b=YWJj; i=a.example.com", "@" },
		{ "v=1; a=rsa-sha256; d=example.com; s=s; h=From; bh=YWJj; b=YWJj; t=10; x=5", "x=" },
		{ "v=1; a=rsa-sha256; d=example.com; s=s; h=From; bh=YWJj; b=YWJj; l=x", "l=" },
		{ "v=1; a=rsa-sha256; d=example.com; s=s; h=From; bh=YWJj; b=YWJj; c=weird", "canonicalization" },
		{ "v=1; a=rsa-sha256; d=example.com; s=s; h=From; bh=YWJj; b=YWJj; q=http", "q=" },
		{ "v=1; a=rsa-sha256; d=..; s=s; h=From; bh=YWJj; b=YWJj", "d=" },
		{ "v=1; a=rsa-sha256; d=example.com; s=s; h=From; bh=YWJj; b=YWJj; 1x=2", "letter" },
		{ "v=1; a=rsa-sha256; d=example.com; s=s; h=From; bh=YWJj; b=YWJj; x", "=" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct dkim_signature *sig = NULL;
		const char *err = NULL;
		int ret = dkim_signature_parse(cases[i].value, strlen(cases[i].value), &sig, &err);

		if (cases[i].err == NULL) {
			if (ret != 0)
				fail_msg("case %zu: %s", i, err);
			dkim_signature_free(&sig);
		} else {
			if (ret == 0)
				fail_msg("case %zu parsed", i);
			if (strstr(err, cases[i].err) == NULL)
				fail_msg("case %zu: error %s", i, err);
		}
	}
	struct dkim_signature *sig = NULL;
	const char *err;
	const char *v = " v = 1 ;\r\n a=rsa-sha256; d=Example.COM; s=S; c=relaxed; h=from\r\n :to; l=5; bh=YW\r\n Jj; b=YWJj";
	assert_int_equal(dkim_signature_parse(v, strlen(v), &sig, &err), 0);
	assert_string_equal(sig->domain, "example.com");
	assert_string_equal(sig->identity, "@example.com");
	assert_int_equal(sig->headers_count, 2);
	assert_string_equal(sig->headers[1], "to");
	assert_int_equal(sig->header_canon, DKIM_CANON_RELAXED);
	assert_int_equal(sig->body_canon, DKIM_CANON_SIMPLE);
	assert_int_equal(sig->length, 5);
	assert_int_equal(sig->bh_len, 3);
	dkim_signature_free(&sig);
}

static void test_canon(void **state)
{
	/* RFC 6376 3.4.5 */
	const char *h1 = "A: X\r\n", *h2 = "B : Y\t\r\n\tZ  \r\n";
	const char *body = " C \r\nD \t E\r\n\r\n\r\n";
	size_t n;
	char *c;

	c = dkim_canon_header(DKIM_CANON_RELAXED, h1, strlen(h1), &n);
	assert_string_equal(c, "a:X\r\n");
	free(c);
	c = dkim_canon_header(DKIM_CANON_RELAXED, h2, strlen(h2), &n);
	assert_string_equal(c, "b:Y Z\r\n");
	free(c);
	c = dkim_canon_header(DKIM_CANON_SIMPLE, h2, strlen(h2), &n);
	assert_string_equal(c, h2);
	free(c);
	c = dkim_canon_body(DKIM_CANON_RELAXED, body, strlen(body), &n);
	assert_string_equal(c, " C\r\nD E\r\n");
	free(c);
	c = dkim_canon_body(DKIM_CANON_SIMPLE, body, strlen(body), &n);
	assert_string_equal(c, " C \r\nD \t E\r\n");
	free(c);
	c = dkim_canon_body(DKIM_CANON_SIMPLE, "", 0, &n);
	assert_string_equal(c, "\r\n");
	free(c);
	c = dkim_canon_body(DKIM_CANON_RELAXED, "\r\n\r\n", 4, &n);
	assert_int_equal(n, 0);
	free(c);
	c = dkim_canon_body(DKIM_CANON_SIMPLE, "abc", 3, &n);
	assert_string_equal(c, "abc\r\n");
	free(c);
}

static void test_base64(void **state)
{
	size_t n;
	uint8_t *d = dkim_base64_decode("YW Jj\r\n ZA==", 12, &n);
	assert_non_null(d);
	assert_int_equal(n, 4);
	assert_memory_equal(d, "abcd", 4);
	char *e = dkim_base64_encode(d, n);
	assert_string_equal(e, "YWJjZA==");
	free(e);
	free(d);
	assert_null(dkim_base64_decode("YWJ", 3, &n));
	assert_null(dkim_base64_decode("YW=j", 4, &n));
}

static void sign_roundtrip(enum mf_keygen_algorithm alg, const char *name)
{
	char *path = mf_xasprintf("%s/%s.pem", dir, name);
	const char *err = NULL;
	struct dkim_privkey *key = NULL;
	char *rec, *hdr = NULL, *signed_msg, *m;
	struct dns_resolver *r = dns_resolver_create_memory();
	const char *msg = "From: Mjl <mjl@example.org>\nTo: x@example.net\nSubject: hi there\n"
			  "Date: Sun, 22 Nov 2026 16:00:00 +0000\n\nHello  \n\n";
	struct dkim_sign_settings set = {
		.domain = "example.org", .selector = name, .now = 1700000000, .expiration_s = 3600,
	};
	struct dkim_verify_settings vs = { .now = 1700000100 };
	struct dkim_result *res = NULL;
	size_t n = 0;

	assert_int_equal(mf_keygen_write(path, alg, &err), 0);
	rec = mf_keygen_dkim_record(path, &err);
	assert_non_null(rec);
	char *kname = mf_xasprintf("%s._domainkey.example.org", name);
	assert_int_equal(dns_memory_add(r, kname, DNS_TYPE_TXT, rec, &err), 0);
	assert_int_equal(dkim_privkey_load(path, &key, &err), 0);
	set.key = key;
	assert_int_equal(dkim_sign(&set, msg, strlen(msg), &hdr, &err), 0);
	/* folded lines stay short */
	for (char *p = hdr, *nl; (nl = strstr(p, "\r\n")) != NULL; p = nl + 2)
		assert_true(nl - p <= 78);
	assert_non_null(strstr(hdr, "x=1700003600"));
	assert_non_null(strstr(hdr, "h=From:From:"));
	signed_msg = mf_xasprintf("%s%s", hdr, msg);
	dkim_verify(r, &vs, signed_msg, strlen(signed_msg), &res, &n);
	assert_int_equal(n, 1);
	if (res[0].status != DKIM_PASS)
		fail_msg("%s: %s", name, res[0].error);
	dkim_results_free(&res, n);
	/* expired later */
	vs.now = 1700003601;
	dkim_verify(r, &vs, signed_msg, strlen(signed_msg), &res, &n);
	assert_int_equal(res[0].status, DKIM_PERMERROR);
	dkim_results_free(&res, n);
	vs.now = 1700000100;
	/* tampered */
	m = replace(signed_msg, "hi there", "hi there!");
	dkim_verify(r, &vs, m, strlen(m), &res, &n);
	assert_int_equal(res[0].status, DKIM_FAIL);
	dkim_results_free(&res, n);
	free(m);
	/* simple/simple canonicalization */
	free(hdr);
	set.canon_set = true;
	set.header_canon = DKIM_CANON_SIMPLE;
	set.body_canon = DKIM_CANON_SIMPLE;
	assert_int_equal(dkim_sign(&set, msg, strlen(msg), &hdr, &err), 0);
	assert_non_null(strstr(hdr, "c=simple/simple"));
	free(signed_msg);
	signed_msg = mf_xasprintf("%s%s", hdr, msg);
	dkim_verify(r, &vs, signed_msg, strlen(signed_msg), &res, &n);
	if (res[0].status != DKIM_PASS)
		fail_msg("%s simple: %s", name, res[0].error);
	dkim_results_free(&res, n);
	m = replace(signed_msg, "Subject: hi", "Subject:  hi");
	dkim_verify(r, &vs, m, strlen(m), &res, &n);
	assert_int_equal(res[0].status, DKIM_FAIL);
	dkim_results_free(&res, n);
	free(m);

	/* From must be there and be signed. */
	const char *heads[] = { "To", "Subject" };
	set.headers = heads;
	set.headers_count = 2;
	assert_int_equal(dkim_sign(&set, msg, strlen(msg), &m, &err), -1);
	assert_non_null(strstr(err, "From"));
	set.headers = NULL;
	assert_int_equal(dkim_sign(&set, "To: x\r\n\r\nbody\r\n", 16, &m, &err), -1);

	free(hdr);
	free(signed_msg);
	free(kname);
	free(rec);
	dkim_privkey_free(&key);
	dns_resolver_free(&r);
	unlink(path);
	free(path);
}

static void test_sign_ed25519(void **state)
{
	sign_roundtrip(MF_KEYGEN_ED25519, "ed");
}

static void test_sign_rsa(void **state)
{
	sign_roundtrip(MF_KEYGEN_RSA2048, "rsa");
}

static void test_privkey_errors(void **state)
{
	struct dkim_privkey *key = NULL;
	const char *err = NULL;

	assert_int_equal(dkim_privkey_load("/nonexistent/k.pem", &key, &err), -1);
	assert_int_equal(dkim_privkey_load_pem("garbage", 7, &key, &err), -1);
	assert_null(key);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rfc8463_example),
		cmocka_unit_test(test_tampered),
		cmocka_unit_test(test_policy),
		cmocka_unit_test(test_key_flags),
		cmocka_unit_test(test_dns_states),
		cmocka_unit_test(test_weak_rsa),
		cmocka_unit_test(test_signature_parse),
		cmocka_unit_test(test_canon),
		cmocka_unit_test(test_base64),
		cmocka_unit_test(test_sign_ed25519),
		cmocka_unit_test(test_sign_rsa),
		cmocka_unit_test(test_privkey_errors),
	};
	if (mkdtemp(dir) == NULL)
		return 1;
	int rc = cmocka_run_group_tests(tests, NULL, NULL);
	rmdir(dir);
	return rc;
}
