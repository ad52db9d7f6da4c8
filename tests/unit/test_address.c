#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "address.h"

struct good_case {
	const char *in;
	const char *localpart;
	const char *domain;
	const char *domain_unicode;
	const char *formatted;
	bool utf8;
	bool literal;
};

/* Valid mailboxes: RFC 5321 4.1.2, RFC 5322 3.4.1 and RFC 6531 examples,
 * plus the canonicalisation the module promises. */
static const struct good_case good[] = {
	{"user@example.com", "user", "example.com", "example.com", "user@example.com", false, false},
	{"John.Smith@Example.COM", "John.Smith", "example.com", "example.com",
	 "John.Smith@example.com", false, false},
	{"!#$%&'*+-/=?^_`{|}~@example.org", "!#$%&'*+-/=?^_`{|}~", "example.org",
	 "example.org", "!#$%&'*+-/=?^_`{|}~@example.org", false, false},
	/* quoted localparts: space, escaped quote and backslash, @ inside */
	{"\"john smith\"@example.com", "john smith", "example.com", "example.com",
	 "\"john smith\"@example.com", false, false},
	{"\"a\\\"b\\\\c\"@example.com", "a\"b\\c", "example.com", "example.com",
	 "\"a\\\"b\\\\c\"@example.com", false, false},
	{"\"a@b\"@example.com", "a@b", "example.com", "example.com", "\"a@b\"@example.com", false, false},
	{"\".a..b.\"@example.com", ".a..b.", "example.com", "example.com",
	 "\".a..b.\"@example.com", false, false},
	/* quoting that is not needed is dropped; quoted-pair of a plain char */
	{"\"plain\"@example.com", "plain", "example.com", "example.com", "plain@example.com", false, false},
	{"\"p\\lain\"@example.com", "plain", "example.com", "example.com", "plain@example.com", false, false},
	{"\"\"@example.com", "", "example.com", "example.com", "\"\"@example.com", false, false},
	/* single-label domain and digits */
	{"postmaster@localhost", "postmaster", "localhost", "localhost", "postmaster@localhost", false, false},
	{"a@1.example-2.com", "a", "1.example-2.com", "1.example-2.com", "a@1.example-2.com", false, false},
	/* address literals, RFC 5321 4.1.3 */
	{"user@[192.0.2.1]", "user", "[192.0.2.1]", "[192.0.2.1]", "user@[192.0.2.1]", false, true},
	{"user@[IPv6:2001:DB8::1]", "user", "[IPv6:2001:db8::1]", "[IPv6:2001:db8::1]",
	 "user@[IPv6:2001:db8::1]", false, true},
	{"user@[ipv6:2001:db8:0:0:0:0:0:1]", "user", "[IPv6:2001:db8::1]", "[IPv6:2001:db8::1]",
	 "user@[IPv6:2001:db8::1]", false, true},
	{"user@[IPv6:::ffff:192.0.2.1]", "user", "[IPv6:::ffff:192.0.2.1]",
	 "[IPv6:::ffff:192.0.2.1]", "user@[IPv6:::ffff:192.0.2.1]", false, true},
	/* RFC 6531: UTF-8 localparts and U-label domains */
	{"用户@例子.广告", "用户", "xn--fsqu00a.xn--4rr70v", "例子.广告",
	 "用户@xn--fsqu00a.xn--4rr70v", true, false},
	{"jöe@bücher.example", "jöe", "xn--bcher-kva.example", "bücher.example",
	 "jöe@xn--bcher-kva.example", true, false},
	{"joe@BÜCHER.Example", "joe", "xn--bcher-kva.example", "bücher.example",
	 "joe@xn--bcher-kva.example", true, false},
	/* A-labels in, U-labels for display, no SMTPUTF8 needed */
	{"joe@XN--BCHER-KVA.example", "joe", "xn--bcher-kva.example", "bücher.example",
	 "joe@xn--bcher-kva.example", false, false},
	/* decomposed e + U+0301 becomes composed U+00E9 */
	{"caf\x65\xcc\x81@example.com", "caf\xc3\xa9", "example.com", "example.com",
	 "caf\xc3\xa9@example.com", true, false},
	{"\"j\xc3\xb6 e\"@example.com", "j\xc3\xb6 e", "example.com", "example.com",
	 "\"j\xc3\xb6 e\"@example.com", true, false},
	/* U+037E GREEK QUESTION MARK is ";" after NFC: must be quoted then */
	{"a\xcd\xbe" "b@example.com", "a;b", "example.com", "example.com", "\"a;b\"@example.com",
	 true, false},
};

struct bad_case {
	const char *in;
	size_t len;   /* 0: strlen */
	const char *error;
};

static const struct bad_case bad[] = {
	{"", 0, "empty address"},
	{"user", 0, "missing @ after localpart"},
	{"@example.com", 0, "empty localpart"},
	{"user@", 0, "empty domain"},
	{".user@example.com", 0, "localpart starts or ends with a dot"},
	{"user.@example.com", 0, "localpart starts or ends with a dot"},
	{"us..er@example.com", 0, "localpart has consecutive dots"},
	{"us er@example.com", 0, "invalid character 0x20 in localpart"},
	{"a@b@example.com", 0, "invalid character 0x40 in domain"},
	{"a(b)@example.com", 0, "invalid character 0x28 in localpart"},
	{"\"unterminated@example.com", 0, "unterminated quoted localpart"},
	{"\"a\"b@example.com", 0, "missing @ after localpart"},
	{"\"a\tb\"@example.com", 0, "invalid character 0x09 in quoted localpart"},
	{"\"a\\\x01\"@example.com", 0, "invalid quoted pair in localpart"},
	{"user@example..com", 0, "empty label in domain"},
	{"user@.example.com", 0, "empty label in domain"},
	{"user@example.com.", 0, "domain ends with a dot"},
	{"user@-example.com", 0, "domain label starts or ends with a hyphen"},
	{"user@exa_mple.com", 0, "invalid character 0x5f in domain"},
	{"user@[192.0.2.256]", 0, "invalid IPv4 address literal"},
	{"user@[IPv6:2001:db8::g]", 0, "invalid IPv6 address literal"},
	{"user@[x400:abc]", 0, "unsupported address literal"},
	{"user@[192.0.2.1", 0, "invalid address literal"},
	{"user@xn--bcher-xxx.example", 0, NULL},
	/* invalid UTF-8: lone continuation, overlong "/", surrogate, truncated */
	{"us\x80r@example.com", 0, "address is not valid UTF-8"},
	{"\xc0\xafuser@example.com", 0, "address is not valid UTF-8"},
	{"\xed\xa0\x80@example.com", 0, "address is not valid UTF-8"},
	{"user@b\xc3", 0, "address is not valid UTF-8"},
	{"us\0er@example.com", 17, "address is not valid UTF-8"},
	{"us\xc2\x85r@example.com", 0, "address is not valid UTF-8"},
	/* an A-label for disallowed "⒪r⒮" beside a U-label (found by fuzzing) */
	{"user@xn--r-bepn.b\xc3\xbc" "cher.example", 0, NULL},
	/* IDNA2008 disallows symbols such as U+2665 */
	{"user@\xe2\x99\xa5.example", 0, NULL},
};

static void test_parse_good(void **state)
{
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		const struct good_case *c = &good[i];
		struct mf_address a;
		const char *error = NULL;

		if (mf_address_parse(c->in, strlen(c->in), &a, &error) != 0)
			fail_msg("case %zu %s: %s", i, c->in, error);
		assert_string_equal(a.localpart, c->localpart);
		assert_string_equal(a.domain, c->domain);
		assert_string_equal(a.domain_unicode, c->domain_unicode);
		if (a.utf8 != c->utf8 || a.literal != c->literal)
			fail_msg("case %zu %s: utf8=%d literal=%d", i, c->in, a.utf8, a.literal);
		char *f = mf_address_format(&a);
		assert_string_equal(f, c->formatted);

		/* the formatted form parses to the same address */
		struct mf_address b;
		assert_int_equal(mf_address_parse(f, strlen(f), &b, &error), 0);
		assert_string_equal(b.localpart, a.localpart);
		assert_string_equal(b.domain, a.domain);
		free(f);
		mf_address_free(&b);
		mf_address_free(&a);
		assert_null(a.localpart);
	}
}

static void test_parse_bad(void **state)
{
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const struct bad_case *c = &bad[i];
		size_t len = c->len ? c->len : strlen(c->in);
		struct mf_address a;
		const char *error = NULL;

		if (mf_address_parse(c->in, len, &a, &error) != -1)
			fail_msg("case %zu %s: accepted", i, c->in);
		assert_non_null(error);
		if (c->error != NULL && strcmp(error, c->error) != 0)
			fail_msg("case %zu %s: error \"%s\", want \"%s\"", i, c->in, error, c->error);
		/* nothing is left allocated on failure */
		assert_null(a.localpart);
		assert_null(a.domain);
		assert_null(a.domain_unicode);
	}
}

static void test_not_nul_terminated(void **state)
{
	struct mf_address a;
	const char *error;
	const char *s = "user@example.comGARBAGE";

	assert_int_equal(mf_address_parse(s, 16, &a, &error), 0);
	assert_string_equal(a.domain, "example.com");
	mf_address_free(&a);
}

static void test_limits(void **state)
{
	char buf[600];
	struct mf_address a;
	const char *error;

	/* localpart: 64 octets accepted, 65 refused (RFC 5321 4.5.3.1.1) */
	memset(buf, 'a', 64);
	memcpy(buf + 64, "@example.com", 13);
	assert_int_equal(mf_address_parse(buf, strlen(buf), &a, &error), 0);
	mf_address_free(&a);
	memset(buf, 'a', 65);
	memcpy(buf + 65, "@example.com", 13);
	assert_int_equal(mf_address_parse(buf, strlen(buf), &a, &error), -1);
	assert_string_equal(error, "localpart too long");

	/* the quotes count: 63 quoted octets make 65, 62 make 64 */
	buf[0] = '"';
	memset(buf + 1, 'x', 62);
	memcpy(buf + 63, " \"@example.com", 15);
	assert_int_equal(mf_address_parse(buf, strlen(buf), &a, &error), -1);
	assert_string_equal(error, "localpart too long");
	memcpy(buf + 62, " \"@example.com", 15);
	assert_int_equal(mf_address_parse(buf, strlen(buf), &a, &error), 0);
	mf_address_free(&a);

	/* a 64-octet label is refused, 63 accepted */
	size_t n = 0;
	buf[n++] = 'a';
	buf[n++] = '@';
	memset(buf + n, 'b', 64);
	n += 64;
	memcpy(buf + n, ".com", 5);
	assert_int_equal(mf_address_parse(buf, strlen(buf), &a, &error), -1);
	assert_string_equal(error, "domain label too long");
	memcpy(buf + n - 1, ".com", 5);
	assert_int_equal(mf_address_parse(buf, strlen(buf), &a, &error), 0);
	mf_address_free(&a);

	/* whole address: 254 accepted, 255 refused (RFC 5321 4.5.3.1.3) */
	n = 0;
	buf[n++] = 'a';
	buf[n++] = '@';
	while (n < 254) {
		size_t label = 254 - n > 50 ? 49 : 254 - n;
		memset(buf + n, 'c', label);
		n += label;
		if (n < 254)
			buf[n++] = '.';
	}
	buf[n] = '\0';
	assert_int_equal(strlen(buf), 254);
	if (mf_address_parse(buf, 254, &a, &error) != 0)
		fail_msg("254: %s", error);
	mf_address_free(&a);
	buf[n++] = 'c';
	buf[n] = '\0';
	assert_int_equal(mf_address_parse(buf, n, &a, &error), -1);
	assert_string_equal(error, "address too long");
}

static void test_domain_parse(void **state)
{
	char *ascii, *unicode;
	const char *error;

	assert_int_equal(mf_domain_parse("bücher.example", strlen("bücher.example"),
					 &ascii, &unicode, &error), 0);
	assert_string_equal(ascii, "xn--bcher-kva.example");
	assert_string_equal(unicode, "bücher.example");
	free(ascii);
	free(unicode);

	/* and back from the A-label */
	assert_int_equal(mf_domain_parse("xn--bcher-kva.example", 21, &ascii, &unicode, &error), 0);
	assert_string_equal(ascii, "xn--bcher-kva.example");
	assert_string_equal(unicode, "bücher.example");
	free(ascii);
	free(unicode);

	/* decomposed ü (u + U+0308) gives the same A-label */
	const char *decomposed = "bu\xcc\x88" "cher.example";
	assert_int_equal(mf_domain_parse(decomposed, strlen(decomposed), &ascii, &unicode, &error), 0);
	assert_string_equal(ascii, "xn--bcher-kva.example");
	free(ascii);
	free(unicode);

	/* IDNA2008 nontransitional: ß is kept, not mapped to ss */
	assert_int_equal(mf_domain_parse("faß.de", strlen("faß.de"), &ascii, &unicode, &error), 0);
	assert_string_equal(ascii, "xn--fa-hia.de");
	assert_string_equal(unicode, "faß.de");
	free(ascii);
	free(unicode);

	assert_int_equal(mf_domain_parse("MAIL.Example.ORG", 16, &ascii, &unicode, &error), 0);
	assert_string_equal(ascii, "mail.example.org");
	assert_string_equal(unicode, "mail.example.org");
	free(ascii);
	free(unicode);

	/* A-label that does not round-trip */
	assert_int_equal(mf_domain_parse("xn--a.example", 13, &ascii, &unicode, &error), -1);
	assert_null(ascii);
	assert_null(unicode);
	assert_int_equal(mf_domain_parse("[1.2.3.4]", 9, &ascii, &unicode, &error), -1);
	assert_int_equal(mf_domain_parse("", 0, &ascii, &unicode, &error), -1);
	assert_string_equal(error, "empty domain");
}

static void test_localpart_equal(void **state)
{
	assert_true(mf_localpart_equal("John.Smith", "john.smith", false));
	assert_false(mf_localpart_equal("John.Smith", "john.smith", true));
	assert_true(mf_localpart_equal("john", "john", true));
	/* composed and decomposed é are equal after NFC, either way */
	assert_true(mf_localpart_equal("caf\xc3\xa9", "caf\x65\xcc\x81", true));
	assert_true(mf_localpart_equal("CAF\xc3\x89", "caf\x65\xcc\x81", false));
	/* Unicode case folding beyond ASCII */
	assert_true(mf_localpart_equal("ÄRGER", "ärger", false));
	assert_true(mf_localpart_equal("ΣΊΣΥΦΟΣ", "σίσυφος", false));
	assert_true(mf_localpart_equal("σίσυφος", "σίσυφοσ", false));   /* final sigma */
	/* simple folding only: ß is not ss */
	assert_false(mf_localpart_equal("straße", "strasse", false));
	assert_false(mf_localpart_equal("john", "johnny", false));
	assert_false(mf_localpart_equal("john", "", false));
	assert_true(mf_localpart_equal("", "", false));
	/* invalid UTF-8 only matches itself */
	assert_false(mf_localpart_equal("a\x80", "A\x80", false));
}

static void test_strip_separator(void **state)
{
	struct {
		const char *lp, *sep, *want;
	} cases[] = {
		{"a+tag", "+", "a"},
		{"a+tag+more", "+", "a"},
		{"plain", "+", "plain"},
		{"+tag", "+", "+tag"},
		{"a-b--x", "--", "a-b"},
		{"a+tag", "", "a+tag"},
		{"a+tag", NULL, "a+tag"},
		{"jö+x", "+", "jö"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *s = mf_address_strip_separator(cases[i].lp, cases[i].sep);
		assert_string_equal(s, cases[i].want);
		free(s);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_good),
		cmocka_unit_test(test_parse_bad),
		cmocka_unit_test(test_not_nul_terminated),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_domain_parse),
		cmocka_unit_test(test_localpart_equal),
		cmocka_unit_test(test_strip_separator),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
