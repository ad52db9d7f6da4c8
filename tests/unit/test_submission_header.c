/* Unit tests for submission's header handling: the From check (accounts,
 * catch-all separators, aliases with and without allow-msg-from), the
 * removal of X-Mailfleet-Extra- fields, and the Message-ID and Date added
 * when missing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "domains.h"
#include "services/submission/sub_header.h"

static const char domains_conf[] =
	"domain example.org {\n"
	"    catchall-separator +\n"
	"}\n"
	"domain other.example {\n}\n"
	"account mjl {\n"
	"    domain example.org\n"
	"    address mjl@example.org\n"
	"    address Møller@other.example\n"
	"}\n"
	"account bob {\n"
	"    domain example.org\n"
	"    address bob@example.org\n"
	"}\n"
	"alias team@example.org {\n"
	"    member mjl@example.org\n"
	"    allow-msg-from yes\n"
	"}\n"
	"alias list@example.org {\n"
	"    member mjl@example.org\n"
	"    member bob@example.org\n"
	"}\n";

static struct mf_domains *load_domains(void)
{
	struct mf_domains *d = NULL;
	const char *err = NULL;

	if (mf_domains_load_buf("/tmp/domains.conf", domains_conf, strlen(domains_conf), &d,
				&err) < 0)
		fail_msg("domains.conf: %s", err);
	return d;
}

static bool allowed(const struct mf_domains *d, const char *account, const char *addr)
{
	struct mf_address a;
	const char *err;
	bool ok;

	assert_int_equal(mf_address_parse(addr, strlen(addr), &a, &err), 0);
	ok = sub_from_allowed(d, account, &a);
	mf_address_free(&a);
	return ok;
}

static void test_from_allowed(void **state)
{
	struct mf_domains *d = load_domains();

	assert_true(allowed(d, "mjl", "mjl@example.org"));
	assert_true(allowed(d, "mjl", "MJL@Example.ORG"));
	assert_true(allowed(d, "mjl", "mjl+news@example.org"));   /* catch-all separator */
	assert_true(allowed(d, "mjl", "møller@other.example"));   /* case folding, UTF-8 */
	assert_false(allowed(d, "bob", "mjl@example.org"));
	assert_false(allowed(d, "mjl", "bob@example.org"));
	assert_false(allowed(d, "mjl", "nobody@example.org"));
	assert_false(allowed(d, "mjl", "mjl@elsewhere.example"));
	/* alias with allow-msg-from: members only */
	assert_true(allowed(d, "mjl", "team@example.org"));
	assert_false(allowed(d, "bob", "team@example.org"));
	/* alias without allow-msg-from: nobody */
	assert_false(allowed(d, "mjl", "list@example.org"));
	assert_false(allowed(d, "bob", "list@example.org"));
	mf_domains_unref(&d);
}

static const struct sub_header_input input = {
	.hostname = "mail.example.org", .id = "abc123", .now = 1795363200,  /* 2026-11-22 16:00 */
};

static void test_rewrite_adds(void **state)
{
	const char hdr[] = "From: Mechiel <mjl@example.org>\r\nSubject: hi\r\n";
	struct sub_header_result r;
	const char *err;

	assert_int_equal(sub_header_rewrite(hdr, strlen(hdr), &input, &r, &err), 0);
	assert_string_equal(mf_buf_cstr(&r.header),
			    "From: Mechiel <mjl@example.org>\r\nSubject: hi\r\n"
			    "Message-ID: <abc123@mail.example.org>\r\n"
			    "Date: Sun, 22 Nov 2026 16:00:00 +0000\r\n");
	assert_true(r.added_message_id);
	assert_true(r.added_date);
	assert_string_equal(r.message_id, "abc123@mail.example.org");
	assert_string_equal(r.from.localpart, "mjl");
	assert_string_equal(r.from.domain, "example.org");
	assert_int_equal(r.extras_count, 0);
	sub_header_result_free(&r);
}

static void test_rewrite_keeps(void **state)
{
	/* Present Message-ID and Date stay; the header without a final CRLF
	 * gets one; folded fields and odd spacing are kept byte for byte. */
	const char hdr[] = "Date: Mon, 1 Jan 2024 00:00:00 +0100\r\n"
			   "message-id:\r\n <x@y>\r\n"
			   "From:\"Jan, de\" <\"jan de\"@example.org>\r\n"
			   "Subject: a\r\n b";
	struct sub_header_result r;
	const char *err;

	assert_int_equal(sub_header_rewrite(hdr, strlen(hdr), &input, &r, &err), 0);
	assert_false(r.added_message_id);
	assert_false(r.added_date);
	assert_string_equal(r.message_id, "x@y");
	assert_string_equal(r.from.localpart, "jan de");
	assert_int_equal(r.header.len, strlen(hdr) + 2);
	assert_memory_equal(r.header.data, hdr, strlen(hdr));
	assert_memory_equal(r.header.data + strlen(hdr), "\r\n", 2);
	sub_header_result_free(&r);
}

static void test_rewrite_extras(void **state)
{
	const char hdr[] = "X-Mailfleet-Extra-Customer: 42\r\n"
			   "From: mjl@example.org\r\n"
			   "x-mailfleet-extra-order-id:  =?utf-8?q?caf=C3=A9?=\r\n"
			   "\tfolded\r\n"
			   "Subject: s\r\n"
			   "X-Mailfleet-Extraneous: kept\r\n";
	struct sub_header_result r;
	const char *err;

	assert_int_equal(sub_header_rewrite(hdr, strlen(hdr), &input, &r, &err), 0);
	assert_int_equal(r.extras_count, 2);
	assert_string_equal(r.extras[0].key, "Customer");
	assert_string_equal(r.extras[0].value, "42");
	assert_string_equal(r.extras[1].key, "order-id");
	assert_string_equal(r.extras[1].value, "café\tfolded");
	assert_string_equal(mf_buf_cstr(&r.header),
			    "From: mjl@example.org\r\nSubject: s\r\n"
			    "X-Mailfleet-Extraneous: kept\r\n"
			    "Message-ID: <abc123@mail.example.org>\r\n"
			    "Date: Sun, 22 Nov 2026 16:00:00 +0000\r\n");
	sub_header_result_free(&r);
}

static void test_rewrite_refused(void **state)
{
	static const struct {
		const char *hdr;
		const char *error_prefix;
	} cases[] = {
		{ "Subject: no from\r\n", "550 5.7.1 the message has no From" },
		{ "", "550 5.7.1 the message has no From" },
		{ "From: a@example.org\r\nFrom: b@example.org\r\n", "550 5.7.1 the message has more" },
		{ "From: a@example.org, b@example.org\r\n", "550 5.7.1 the From header must hold" },
		{ "From: undisclosed:;\r\n", "550 5.7.1 the From header has no usable" },
		{ "From: nodomain\r\n", "550 5.7.1 the From header has no usable" },
		{ "From: a@example.org\r\nX-Mailfleet-Extra-: x\r\n", "554 5.6.0 X-Mailfleet-Extra-" },
		{ "From: a@example.org\r\nX-Mailfleet-Extra-A: 1\r\nX-Mailfleet-Extra-a: 2\r\n",
		  "554 5.6.0 X-Mailfleet-Extra-a given twice" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct sub_header_result r;
		const char *err = NULL;
		assert_int_equal(sub_header_rewrite(cases[i].hdr, strlen(cases[i].hdr), &input, &r,
						    &err), -1);
		assert_non_null(err);
		if (strncmp(err, cases[i].error_prefix, strlen(cases[i].error_prefix)) != 0)
			fail_msg("case %zu: got \"%s\"", i, err);
	}
}

static void test_rewrite_limits(void **state)
{
	struct mf_buf b;
	struct sub_header_result r;
	const char *err;

	/* Too many extra fields. */
	mf_buf_init(&b, 0);
	mf_buf_append_str(&b, "From: a@example.org\r\n");
	for (int i = 0; i <= SUB_EXTRA_MAX; i++)
		mf_buf_appendf(&b, "X-Mailfleet-Extra-k%d: v\r\n", i);
	assert_int_equal(sub_header_rewrite(b.data, b.len, &input, &r, &err), -1);
	assert_memory_equal(err, "554 5.6.0 too many X-Mailfleet-Extra-", 37);
	/* More fields than the iterator looks at: a From behind them would
	 * go unchecked, so the message is refused. */
	mf_buf_reset(&b);
	mf_buf_append_str(&b, "From: a@example.org\r\n");
	for (int i = 0; i < MF_MIME_HEADER_FIELDS_MAX; i++)
		mf_buf_append_str(&b, "X-A: b\r\n");
	mf_buf_append_str(&b, "From: evil@example.net\r\n");
	assert_int_equal(sub_header_rewrite(b.data, b.len, &input, &r, &err), -1);
	assert_memory_equal(err, "554 5.6.0 too many header fields", 32);
	/* A header section over SUB_HEADER_MAX. */
	mf_buf_reset(&b);
	mf_buf_append_str(&b, "From: a@example.org\r\nX-Big: ");
	while (b.len <= SUB_HEADER_MAX)
		mf_buf_append_str(&b, "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\r\n ");
	mf_buf_append_str(&b, "\r\n");
	assert_int_equal(sub_header_rewrite(b.data, b.len, &input, &r, &err), -1);
	assert_memory_equal(err, "554 5.6.0 header section too large", 34);
	mf_buf_free(&b);
}

static void test_date(void **state)
{
	char buf[64];

	sub_header_date(0, buf, sizeof(buf));
	assert_string_equal(buf, "Thu, 1 Jan 1970 00:00:00 +0000");
	sub_header_date(1709164800 + 3723, buf, sizeof(buf));
	assert_string_equal(buf, "Thu, 29 Feb 2024 01:02:03 +0000");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_from_allowed),
		cmocka_unit_test(test_rewrite_adds),
		cmocka_unit_test(test_rewrite_keeps),
		cmocka_unit_test(test_rewrite_extras),
		cmocka_unit_test(test_rewrite_refused),
		cmocka_unit_test(test_rewrite_limits),
		cmocka_unit_test(test_date),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
