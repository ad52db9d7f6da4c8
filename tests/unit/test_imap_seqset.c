/* Unit tests for sequence sets (services/imap/imap_seqset.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "services/imap/imap_pool.h"
#include "services/imap/imap_seqset.h"

static void test_parse_contains(void **state)
{
	struct imap_pool *pool = imap_pool_create();
	struct imap_seqset set;
	const char *err = NULL;

	assert_int_equal(imap_seqset_parse(pool, "1,3:5,7:*", &set, &err), 0);
	assert_int_equal(set.count, 3);
	assert_true(imap_seqset_contains(&set, 1, 10));
	assert_false(imap_seqset_contains(&set, 2, 10));
	assert_true(imap_seqset_contains(&set, 4, 10));
	assert_false(imap_seqset_contains(&set, 6, 10));
	assert_true(imap_seqset_contains(&set, 10, 10));
	assert_false(imap_seqset_contains(&set, 11, 10));
	/* Reversed ranges and "*" below the start (RFC 9051 9: "4:2" = "2:4"). */
	assert_int_equal(imap_seqset_parse(pool, "5:2", &set, &err), 0);
	assert_true(imap_seqset_contains(&set, 3, 10));
	assert_int_equal(imap_seqset_parse(pool, "20:*", &set, &err), 0);
	assert_true(imap_seqset_contains(&set, 10, 10));
	assert_true(imap_seqset_contains(&set, 15, 10));
	assert_false(imap_seqset_contains(&set, 9, 10));
	/* "*" in an empty mailbox matches nothing. */
	assert_int_equal(imap_seqset_parse(pool, "*", &set, &err), 0);
	assert_false(imap_seqset_contains(&set, 0, 0));
	assert_int_equal(imap_seqset_parse(pool, "4294967294", &set, &err), 0);

	static const struct {
		const char *in, *error;
	} bad[] = {
		{ "", "invalid sequence set" },
		{ "0", "invalid sequence set: zero" },
		{ "1:0", "invalid sequence set: zero" },
		{ "1,", "invalid sequence set" },
		{ ",1", "invalid sequence set" },
		{ "1:2:3", "invalid sequence set" },
		{ "a", "invalid sequence set" },
		{ "4294967295", "invalid sequence set: number too large" },
		{ "99999999999999999999", "invalid sequence set: number too large" },
		{ "1 2", "invalid sequence set" },
		{ "01", "invalid sequence set: zero" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err = NULL;
		if (imap_seqset_parse(pool, bad[i].in, &set, &err) == 0)
			fail_msg("\"%s\" parsed", bad[i].in);
		assert_string_equal(err, bad[i].error);
	}
	imap_pool_free(&pool);
}

static void test_format(void **state)
{
	struct imap_pool *pool = imap_pool_create();
	uint32_t a[] = { 1, 2, 3, 5, 7, 8 };
	uint32_t b[] = { 9 };
	uint32_t c[] = { 4, 5, 6, 2 };

	assert_string_equal(imap_seqset_format(pool, a, 6), "1:3,5,7:8");
	assert_string_equal(imap_seqset_format(pool, b, 1), "9");
	assert_string_equal(imap_seqset_format(pool, a, 0), "");
	/* COPYUID pairs keep their order. */
	assert_string_equal(imap_seqset_format_pairs(pool, c, 4), "4:6,2");
	imap_pool_free(&pool);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_contains),
		cmocka_unit_test(test_format),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
