/* test_charset: UTF-8 checks and iconv conversion to UTF-8. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "charset.h"

static void test_is_utf8(void **state)
{
	static const struct {
		const char *s;
		bool valid;
	} cases[] = {
		{ "plain ascii", true },
		{ "Gr\xc3\xbc\xc3\x9f" "e", true },
		{ "\xf0\x9f\x98\x80", true },          /* U+1F600 */
		{ "Ren\xe9", false },                  /* Latin-1 */
		{ "\xc0\xaf", false },                 /* overlong "/" */
		{ "\xed\xa0\x80", false },             /* surrogate */
		{ "\xf0\x9f\x98", false },             /* truncated */
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		assert_int_equal(mf_charset_is_utf8(cases[i].s, strlen(cases[i].s)), cases[i].valid);
	assert_true(mf_charset_has_8bit("a\xe9", 2));
	assert_false(mf_charset_has_8bit("abc", 3));
	assert_true(mf_charset_is_utf8_name("UTF-8"));
	assert_true(mf_charset_is_utf8_name("us-ascii"));
	assert_true(mf_charset_is_utf8_name("utf-8*en"));
	assert_false(mf_charset_is_utf8_name("iso-8859-1"));
}

static void test_convert(void **state)
{
	static const struct {
		const char *charset;
		const char *in;
		const char *out;
	} cases[] = {
		{ "ISO-8859-1", "caf\xe9", "caf\xc3\xa9" },
		{ "windows-1252", "\x80 5", "\xe2\x82\xac 5" },
		{ "iso-8859-15", "\xa4", "\xe2\x82\xac" },
		{ "ISO-2022-JP", "\x1b$B$3$s\x1b(B", "\xe3\x81\x93\xe3\x82\x93" },
		{ "koi8-r", "\xf0\xd2\xc9", "\xd0\x9f\xd1\x80\xd0\xb8" },
		{ "utf-8", "ok \xc3\xa9", "ok \xc3\xa9" },
		/* invalid input becomes U+FFFD and conversion goes on */
		{ "utf-8", "a\xff" "b", "a\xef\xbf\xbd" "b" },
		{ "us-ascii", "x\xe9y", "x\xef\xbf\xbdy" },
		{ "shift_jis", "\x82", "\xef\xbf\xbd" },
		{ "iso-8859-1*en", "\xe9", "\xc3\xa9" },
		{ NULL, "plain", "plain" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct mf_buf b;
		const char *error;
		mf_buf_init(&b, 0);
		assert_int_equal(mf_charset_to_utf8(cases[i].charset, cases[i].in,
						    strlen(cases[i].in), &b, &error), 0);
		assert_string_equal(mf_buf_cstr(&b), cases[i].out);
		mf_buf_free(&b);
	}
}

static void test_unknown_and_cap(void **state)
{
	struct mf_buf b;
	const char *error = NULL;
	char big[200];

	mf_buf_init(&b, 0);
	assert_int_equal(mf_buf_append_str(&b, "kept"), 0);
	assert_int_equal(mf_charset_to_utf8("x-no-such-charset", "abc", 3, &b, &error), -1);
	assert_non_null(strstr(error, "unknown charset"));
	assert_string_equal(mf_buf_cstr(&b), "kept");
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(mf_charset_to_utf8(big, "abc", 3, &b, &error), -1);
	mf_buf_free(&b);

	mf_buf_init(&b, 4);
	assert_int_equal(mf_charset_to_utf8("iso-8859-1", "\xe9\xe9\xe9", 3, &b, &error), -1);
	mf_buf_free(&b);
}

static void test_8bit_fallback(void **state)
{
	struct mf_buf b;

	mf_buf_init(&b, 0);
	assert_int_equal(mf_charset_8bit_to_utf8("J\xc3\xb6rg", 5, &b), 0);
	assert_string_equal(mf_buf_cstr(&b), "J\xc3\xb6rg");
	mf_buf_reset(&b);
	assert_int_equal(mf_charset_8bit_to_utf8("Ren\xe9", 4, &b), 0);
	assert_string_equal(mf_buf_cstr(&b), "Ren\xc3\xa9");
	mf_buf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_is_utf8),
		cmocka_unit_test(test_convert),
		cmocka_unit_test(test_unknown_and_cap),
		cmocka_unit_test(test_8bit_fallback),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
