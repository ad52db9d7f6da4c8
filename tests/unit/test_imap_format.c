/* Unit tests for services/imap/imap_format.c: IMAP strings, flag lists,
 * dates and SASL base64. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>
#include <sys/types.h>

#include "buf.h"
#include "services/imap/imap_format.h"
#include "services/imap/store.h"

static void check_string(const char *in, size_t len, bool utf8, const char *want)
{
	struct mf_buf b;

	mf_buf_init(&b, 0);
	imap_format_string(&b, in, len, utf8);
	assert_string_equal(mf_buf_cstr(&b), want);
	mf_buf_free(&b);
}

static void test_strings(void **state)
{
	check_string("INBOX", 5, false, "\"INBOX\"");
	check_string("a\"b\\c", 5, false, "\"a\\\"b\\\\c\"");
	check_string("", 0, false, "\"\"");
	check_string("a\r\nb", 4, false, "{4}\r\na\r\nb");
	check_string("gr\xc3\xbc\xc3\x9f", 6, false, "{6}\r\ngr\xc3\xbc\xc3\x9f");
	check_string("gr\xc3\xbc\xc3\x9f", 6, true, "\"gr\xc3\xbc\xc3\x9f\"");
	/* Invalid UTF-8 is never quoted. */
	check_string("a\xff", 2, true, "{2}\r\na\xff");
}

static void test_flags(void **state)
{
	struct mf_buf b;

	mf_buf_init(&b, 0);
	imap_format_flags(&b, STORE_FLAG_SEEN | STORE_FLAG_DRAFT, "$Junk work");
	assert_string_equal(mf_buf_cstr(&b), "(\\Seen \\Draft $Junk work)");
	mf_buf_reset(&b);
	imap_format_flags(&b, 0, NULL);
	assert_string_equal(mf_buf_cstr(&b), "()");
	mf_buf_free(&b);
}

static void test_dates(void **state)
{
	int64_t ms;
	time_t t;
	struct mf_buf b;

	assert_int_equal(imap_parse_datetime("14-May-2024 12:00:00 +0200", &ms), 0);
	assert_int_equal(ms, 1715680800000LL);
	assert_int_equal(imap_parse_datetime(" 4-Jan-2024 00:00:00 -0130", &ms), 0);
	assert_int_equal(ms, (1704326400LL + 5400) * 1000);
	assert_int_equal(imap_parse_datetime("14-May-2024 12:00:00", &ms), -1);
	assert_int_equal(imap_parse_datetime("14-Foo-2024 12:00:00 +0000", &ms), -1);
	assert_int_equal(imap_parse_datetime("14-May-2024 25:00:00 +0000", &ms), -1);
	assert_int_equal(imap_parse_date("1-Feb-1994", &t), 0);
	assert_int_equal(t, 760060800);
	assert_int_equal(imap_parse_date("1-Feb-1994x", &t), -1);
	assert_int_equal(imap_parse_date("", &t), -1);
	assert_int_equal(imap_parse_rfc5322_date("Tue, 14 May 2024 23:30:00 -0200", 31, &t), 0);
	assert_int_equal(t, 1715736600);
	assert_int_equal(imap_parse_rfc5322_date("14 May 24 10:00 GMT", 19, &t), 0);
	assert_int_equal(t, 1715680800);
	assert_int_equal(imap_parse_rfc5322_date("yesterday", 9, &t), -1);
	mf_buf_init(&b, 0);
	imap_format_datetime(&b, 1715680800000LL);
	assert_string_equal(mf_buf_cstr(&b), "\"14-May-2024 10:00:00 +0000\"");
	mf_buf_free(&b);
}

static void test_base64(void **state)
{
	unsigned char out[64];
	struct mf_buf b;

	assert_int_equal(imap_base64_decode("AGEAYg==", 8, out), 4);
	assert_memory_equal(out, "\0a\0b", 4);
	assert_int_equal(imap_base64_decode("YWJj", 4, out), 3);
	assert_int_equal(imap_base64_decode("YWJ", 3, out), -1);
	assert_int_equal(imap_base64_decode("YW=j", 4, out), -1);
	assert_int_equal(imap_base64_decode("Y!Jj", 4, out), -1);
	assert_int_equal(imap_base64_decode("", 0, out), 0);
	mf_buf_init(&b, 0);
	imap_base64_encode(&b, "ab", 2);
	assert_string_equal(mf_buf_cstr(&b), "YWI=");
	mf_buf_free(&b);
	assert_true(imap_format_valid_utf8("\xe2\x98\xba", 3));
	assert_false(imap_format_valid_utf8("\xc0\xaf", 2));
	assert_false(imap_format_valid_utf8("\xed\xa0\x80", 3));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_strings),
		cmocka_unit_test(test_flags),
		cmocka_unit_test(test_dates),
		cmocka_unit_test(test_base64),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
