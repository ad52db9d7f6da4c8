/* Unit tests for submission's SASL decoding: strict base64 and PLAIN. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "services/submission/sub_sasl.h"

static void test_base64(void **state)
{
	static const struct {
		const char *in, *out;   /* out NULL: invalid */
		size_t out_len;
	} cases[] = {
		{ "", "", 0 },
		{ "Zg==", "f", 1 },
		{ "Zm8=", "fo", 2 },
		{ "Zm9v", "foo", 3 },
		{ "Zm9vYmFy", "foobar", 6 },
		{ "AGEAYg==", "\0a\0b", 4 },
		{ "VXNlcm5hbWU6", "Username:", 9 },
		{ "Zg=", NULL, 0 },        /* length */
		{ "Zg", NULL, 0 },
		{ "Zh==", NULL, 0 },       /* non-zero padding bits */
		{ "Zm9=", NULL, 0 },
		{ "Z===", NULL, 0 },
		{ "=Zm9", NULL, 0 },
		{ "Zg==Zg==", NULL, 0 },   /* padding inside */
		{ "Zm9 v", NULL, 0 },
		{ "Zm9v\r\n", NULL, 0 },
		{ "Zm-v", NULL, 0 },       /* base64url is not base64 */
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *out = NULL;
		size_t len = 0;
		int r = sub_base64_decode(cases[i].in, strlen(cases[i].in), &out, &len);
		if (cases[i].out == NULL) {
			assert_int_equal(r, -1);
			assert_null(out);
		} else {
			assert_int_equal(r, 0);
			assert_int_equal(len, cases[i].out_len);
			assert_memory_equal(out, cases[i].out, len);
			assert_int_equal(out[len], '\0');
			free(out);
		}
	}
}

static void test_plain(void **state)
{
	static const struct {
		const char *msg;
		size_t len;
		const char *login, *password;   /* login NULL: refused */
		const char *error_prefix;
	} cases[] = {
		{ "\0mjl@example.org\0secret", 23, "mjl@example.org", "secret", NULL },
		{ "mjl\0mjl\0pw", 10, "mjl", "pw", NULL },
		{ "\0mjl\0", 5, "mjl", "", NULL },
		{ "other\0mjl\0pw", 12, NULL, NULL, "535 5.7.8 authorization" },
		{ "\0\0pw", 4, NULL, NULL, "501 5.5.2" },
		{ "\0mjl", 4, NULL, NULL, "501 5.5.2" },
		{ "mjl", 3, NULL, NULL, "501 5.5.2" },
		{ "\0mjl\0pw\0x", 9, NULL, NULL, "501 5.5.2" },
		{ "", 0, NULL, NULL, "501 5.5.2" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *login = NULL;
		const char *pw = NULL, *err = NULL;
		size_t pwlen = 0;
		int r = sub_sasl_plain(cases[i].msg, cases[i].len, &login, &pw, &pwlen, &err);
		if (cases[i].login == NULL) {
			assert_int_equal(r, -1);
			assert_null(login);
			assert_memory_equal(err, cases[i].error_prefix,
					    strlen(cases[i].error_prefix));
		} else {
			assert_int_equal(r, 0);
			assert_string_equal(login, cases[i].login);
			assert_int_equal(pwlen, strlen(cases[i].password));
			assert_memory_equal(pw, cases[i].password, pwlen);
			free(login);
		}
	}
}

static void test_plain_limits(void **state)
{
	char msg[SUB_LOGIN_MAX + SUB_PASSWORD_MAX + 8];
	char *login = NULL;
	const char *pw, *err;
	size_t pwlen, n;

	/* login one byte too long */
	msg[0] = '\0';
	memset(msg + 1, 'a', SUB_LOGIN_MAX + 1);
	msg[SUB_LOGIN_MAX + 2] = '\0';
	msg[SUB_LOGIN_MAX + 3] = 'p';
	assert_int_equal(sub_sasl_plain(msg, SUB_LOGIN_MAX + 4, &login, &pw, &pwlen, &err), -1);
	assert_memory_equal(err, "535 5.7.8", 9);
	/* password at the limit, then one over */
	n = 0;
	msg[n++] = '\0';
	msg[n++] = 'u';
	msg[n++] = '\0';
	memset(msg + n, 'p', SUB_PASSWORD_MAX);
	assert_int_equal(sub_sasl_plain(msg, n + SUB_PASSWORD_MAX, &login, &pw, &pwlen, &err), 0);
	free(login);
	msg[n + SUB_PASSWORD_MAX] = 'p';
	assert_int_equal(sub_sasl_plain(msg, n + SUB_PASSWORD_MAX + 1, &login, &pw, &pwlen,
					&err), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_base64),
		cmocka_unit_test(test_plain),
		cmocka_unit_test(test_plain_limits),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
