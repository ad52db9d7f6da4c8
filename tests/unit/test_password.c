#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "password.h"

static void test_hash_and_verify(void **state)
{
	const char *err = NULL;
	char *h = mf_password_hash("s3cret é", strlen("s3cret é"), &err);

	assert_non_null(h);
	assert_int_equal(strncmp(h, "$scrypt$ln=15,r=8,p=1$", 22), 0);
	assert_int_equal(mf_password_verify(h, "s3cret é", strlen("s3cret é"), &err), 1);
	assert_int_equal(mf_password_verify(h, "s3cret e", strlen("s3cret e"), &err), 0);
	assert_int_equal(mf_password_verify(h, "", 0, &err), 0);
	/* two hashes of one password differ (random salt) */
	char *h2 = mf_password_hash("s3cret é", strlen("s3cret é"), &err);
	assert_string_not_equal(h, h2);
	free(h);
	free(h2);
}

static void test_malformed_hash(void **state)
{
	const char *err = NULL;
	static const char *bad[] = {
		"", "plain", "$scrypt$ln=15,r=8,p=1$", "$scrypt$ln=15,r=8,p=1$abc$def",
		"$scrypt$ln=99,r=8,p=1$AAAAAAAAAAAAAAAAAAAAAA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
		"$bcrypt$2a$10$abc",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err = NULL;
		assert_int_equal(mf_password_verify(bad[i], "x", 1, &err), -1);
		assert_string_equal(err, "malformed password hash");
	}
}

static void test_generate(void **state)
{
	char *a = mf_password_generate(), *b = mf_password_generate();

	assert_int_equal(strlen(a), 23);
	assert_int_equal(a[5], '-');
	assert_string_not_equal(a, b);
	for (const char *p = a; *p; p++)
		assert_null(strchr("0O1lI", *p));
	free(a);
	free(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hash_and_verify),
		cmocka_unit_test(test_malformed_hash),
		cmocka_unit_test(test_generate),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
