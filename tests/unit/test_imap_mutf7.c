/* Unit tests for modified UTF-7 (services/imap/imap_mutf7.c), RFC 3501 5.1.3. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "services/imap/imap_mutf7.h"
#include "services/imap/imap_pool.h"

static const struct {
	const char *mutf7, *utf8;
} good[] = {
	{ "INBOX", "INBOX" },
	{ "", "" },
	{ "&-", "&" },
	{ "a&-b", "a&b" },
	/* RFC 3501 5.1.3 examples */
	{ "~peter/mail/&U,BTFw-/&ZeVnLIqe-", "~peter/mail/\xe5\x8f\xb0\xe5\x8c\x97/\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e" },
	{ "&Jjo-!", "\xe2\x98\xba!" },
	{ "&U,BTF2XlZyyKng-", "\xe5\x8f\xb0\xe5\x8c\x97\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e" },
	{ "M&AOQ-rz", "M\xc3\xa4rz" },
	/* A character outside the BMP: a surrogate pair. */
	{ "&2D3eAA-", "\xf0\x9f\x98\x80" },
	{ "Gr&APwA3w-e", "Gr\xc3\xbc\xc3\x9f""e" },
};

static const struct {
	const char *in, *error;
} bad[] = {
	{ "&U,BTFw-&ZeVnLIqe-", "adjacent encoded runs in modified UTF-7 mailbox name" },
	{ "&Jjo", "unterminated \"&\" in modified UTF-7 mailbox name" },
	{ "&Jj!-", "invalid base64 in modified UTF-7 mailbox name" },
	{ "&AGE-", "printable ASCII encoded in modified UTF-7 mailbox name" },
	{ "&2D0-", "invalid base64 in modified UTF-7 mailbox name" },
	{ "&3gA-", "invalid surrogate pair in modified UTF-7 mailbox name" },
	{ "&Jjp-", "invalid base64 in modified UTF-7 mailbox name" },
	{ "caf\xc3\xa9", "invalid character in modified UTF-7 mailbox name" },
	{ "a\tb", "invalid character in modified UTF-7 mailbox name" },
};

static void test_decode_encode(void **state)
{
	struct imap_pool *pool = imap_pool_create();
	const char *err = NULL;
	char *out;

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		if (imap_mutf7_decode(pool, good[i].mutf7, strlen(good[i].mutf7), &out, &err) < 0)
			fail_msg("decode %s: %s", good[i].mutf7, err);
		assert_string_equal(out, good[i].utf8);
		assert_int_equal(imap_mutf7_encode(pool, good[i].utf8, strlen(good[i].utf8), &out, &err), 0);
		/* Encoding is canonical: runs merged. */
		if (strcmp(good[i].mutf7, "~peter/mail/&U,BTFw-/&ZeVnLIqe-") == 0 ||
		    strcmp(good[i].mutf7, "&U,BTF2XlZyyKng-") == 0 || good[i].mutf7[0] != '&' ||
		    strcmp(good[i].mutf7, "&-") == 0)
			assert_string_equal(out, good[i].mutf7);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err = NULL;
		if (imap_mutf7_decode(pool, bad[i].in, strlen(bad[i].in), &out, &err) == 0)
			fail_msg("decode %s succeeded", bad[i].in);
		assert_string_equal(err, bad[i].error);
	}
	/* Invalid UTF-8 cannot be encoded. */
	assert_int_equal(imap_mutf7_encode(pool, "\xc3", 1, &out, &err), -1);
	assert_int_equal(imap_mutf7_encode(pool, "\xed\xa0\x80", 3, &out, &err), -1);
	imap_pool_free(&pool);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_decode_encode),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
