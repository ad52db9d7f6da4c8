#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"

static void test_append_and_cap(void **state)
{
	struct mf_buf b;

	mf_buf_init(&b, 8);
	assert_string_equal(mf_buf_cstr(&b), "");
	assert_int_equal(mf_buf_append_str(&b, "hello"), 0);
	assert_int_equal(mf_buf_append_str(&b, "abc"), 0);
	assert_int_equal(b.len, 8);
	/* one more byte is over the cap: refused, contents unchanged */
	assert_int_equal(mf_buf_append(&b, "x", 1), -1);
	assert_string_equal(mf_buf_cstr(&b), "helloabc");
	mf_buf_consume(&b, 5);
	assert_string_equal(mf_buf_cstr(&b), "abc");
	mf_buf_reset(&b);
	assert_int_equal(b.len, 0);
	assert_int_equal(mf_buf_appendf(&b, "%d-%s", 42, "ok"), 0);
	assert_string_equal(mf_buf_cstr(&b), "42-ok");
	assert_int_equal(mf_buf_appendf(&b, "%s", "toolong"), -1);
	mf_buf_free(&b);
}

static void test_large_format_and_steal(void **state)
{
	struct mf_buf b;
	char big[1000];

	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	mf_buf_init(&b, 0);
	assert_int_equal(mf_buf_appendf(&b, "<%s>", big), 0);
	assert_int_equal(b.len, 1001);
	char *s = mf_buf_steal(&b);
	assert_int_equal(strlen(s), 1001);
	assert_null(b.data);
	free(s);
	char *f = mf_xasprintf("%s:%u", "port", 25u);
	assert_string_equal(f, "port:25");
	free(f);
	char *d = mf_xstrndup("abcdef", 3);
	assert_string_equal(d, "abc");
	free(d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_append_and_cap),
		cmocka_unit_test(test_large_format_and_steal),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
