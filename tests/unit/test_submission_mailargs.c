/* Unit tests for submission's MAIL parameters: RFC 3339 date-times and the
 * FUTURERELEASE (RFC 4865) HOLDFOR/HOLDUNTIL and AUTH= extraction. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "services/submission/sub_mailargs.h"

/* 2026-11-22T16:00:00Z */
#define NOW_MS 1795363200000LL

static void test_datetime(void **state)
{
	static const struct {
		const char *in;
		int64_t ms;   /* -1: invalid */
	} cases[] = {
		{ "1970-01-01T00:00:00Z", 0 },
		{ "2026-11-22T16:00:00Z", NOW_MS },
		{ "2026-11-22t16:00:00z", NOW_MS },
		{ "2026-11-22T18:00:00+02:00", NOW_MS },
		{ "2026-11-22T10:30:00-05:30", NOW_MS },
		{ "2026-11-22T16:00:00.250Z", NOW_MS + 250 },
		{ "2026-11-22T16:00:00.2Z", NOW_MS + 200 },
		{ "2026-11-22T16:00:00.123456Z", NOW_MS + 123 },
		{ "2024-02-29T00:00:00Z", 1709164800000LL },
		{ "2016-12-31T23:59:60Z", 1483228799000LL },  /* leap second */
		{ "2023-02-29T00:00:00Z", -1 },
		{ "2026-13-01T00:00:00Z", -1 },
		{ "2026-11-22T24:00:00Z", -1 },
		{ "2026-11-22T16:00:00", -1 },       /* offset required */
		{ "2026-11-22 16:00:00Z", -1 },
		{ "2026-11-22T16:00:00.Z", -1 },
		{ "2026-11-22T16:00:00+0200", -1 },
		{ "2026-11-22T16:00:00Zx", -1 },
		{ "26-11-22T16:00:00Z", -1 },
		{ "", -1 },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int64_t ms = 0;
		const char *err;
		int r = sub_datetime_parse(cases[i].in, strlen(cases[i].in), &ms, &err);
		if (cases[i].ms < 0) {
			assert_int_equal(r, -1);
		} else {
			assert_int_equal(r, 0);
			assert_int_equal(ms, cases[i].ms);
		}
	}
}

static void test_datetime_format(void **state)
{
	char buf[32];
	int64_t ms;
	const char *err;

	sub_datetime_format(NOW_MS / 1000, buf, sizeof(buf));
	assert_string_equal(buf, "2026-11-22T16:00:00Z");
	sub_datetime_format(0, buf, sizeof(buf));
	assert_string_equal(buf, "1970-01-01T00:00:00Z");
	sub_datetime_format(1709164800 + 86399, buf, sizeof(buf));
	assert_string_equal(buf, "2024-02-29T23:59:59Z");
	/* round trip over a range of days */
	for (int64_t t = 0; t < 4000LL * 86400; t += 86400 * 7 + 3601) {
		sub_datetime_format(t, buf, sizeof(buf));
		assert_int_equal(sub_datetime_parse(buf, strlen(buf), &ms, &err), 0);
		assert_int_equal(ms, t * 1000);
	}
}

static void test_extract(void **state)
{
	static const struct {
		const char *in;
		const char *rest;   /* NULL: error */
		int64_t release;
		const char *error_prefix;
	} cases[] = {
		{ "FROM:<a@b>", "FROM:<a@b>", 0, NULL },
		{ "FROM:<a@b> SIZE=10 BODY=8BITMIME", "FROM:<a@b> SIZE=10 BODY=8BITMIME", 0, NULL },
		{ "FROM:<a@b> HOLDFOR=60", "FROM:<a@b>", NOW_MS + 60000, NULL },
		{ "FROM:<a@b> holdfor=60 SIZE=1", "FROM:<a@b> SIZE=1", NOW_MS + 60000, NULL },
		{ "FROM:<a@b> HOLDFOR=0", "FROM:<a@b>", 0, NULL },
		{ "FROM:<a@b> HOLDFOR=5184000", "FROM:<a@b>", NOW_MS + 5184000000LL, NULL },
		{ "FROM:<a@b> HOLDFOR=5184001", NULL, 0, "501 5.5.4 release time too far" },
		{ "FROM:<a@b> HOLDFOR=1234567890", NULL, 0, "501 5.5.4 bad HOLDFOR" },
		{ "FROM:<a@b> HOLDFOR=", NULL, 0, "501 5.5.4 bad HOLDFOR" },
		{ "FROM:<a@b> HOLDFOR", NULL, 0, "501 5.5.4 bad HOLDFOR" },
		{ "FROM:<a@b> HOLDFOR=-5", NULL, 0, "501 5.5.4 bad HOLDFOR" },
		{ "FROM:<a@b> HOLDUNTIL=2026-11-23T16:00:00Z", "FROM:<a@b>",
		  NOW_MS + 86400000LL, NULL },
		{ "FROM:<a@b> HOLDUNTIL=2020-01-01T00:00:00Z", "FROM:<a@b>", 0, NULL },
		{ "FROM:<a@b> HOLDUNTIL=2027-11-23T16:00:00Z", NULL, 0,
		  "501 5.5.4 release time too far" },
		{ "FROM:<a@b> HOLDUNTIL=tomorrow", NULL, 0, "501 5.5.4 bad HOLDUNTIL" },
		{ "FROM:<a@b> HOLDFOR=1 HOLDUNTIL=2026-11-23T16:00:00Z", NULL, 0,
		  "501 5.5.4 HOLDFOR and HOLDUNTIL" },
		{ "FROM:<a@b> HOLDFOR=1 HOLDFOR=2", NULL, 0, "501 5.5.4 HOLDFOR and HOLDUNTIL" },
		{ "FROM:<a@b> AUTH=<> SIZE=3", "FROM:<a@b> SIZE=3", 0, NULL },
		{ "FROM:<a@b> AUTH=a+2Bb@c", "FROM:<a@b>", 0, NULL },
		/* a '>' inside a quoted local part does not end the path */
		{ "FROM:<\"x> HOLDFOR=9\"@b> HOLDFOR=9", "FROM:<\"x> HOLDFOR=9\"@b>",
		  NOW_MS + 9000, NULL },
		/* no path: left to the shared parser */
		{ "FROM:a@b HOLDFOR=9", "FROM:a@b HOLDFOR=9", 0, NULL },
		{ "FROM:<a@b>HOLDFOR=9", "FROM:<a@b>HOLDFOR=9", 0, NULL },
		{ "", "", 0, NULL },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *rest = NULL;
		size_t rest_len = 99;
		int64_t release = -1;
		const char *err = NULL;
		int r = sub_mailargs_extract(cases[i].in, strlen(cases[i].in), NOW_MS, &rest,
					     &rest_len, &release, &err);
		if (cases[i].rest == NULL) {
			assert_int_equal(r, -1);
			assert_null(rest);
			assert_non_null(err);
			assert_memory_equal(err, cases[i].error_prefix,
					    strlen(cases[i].error_prefix));
		} else {
			assert_int_equal(r, 0);
			assert_string_equal(rest, cases[i].rest);
			assert_int_equal(rest_len, strlen(cases[i].rest));
			assert_int_equal(release, cases[i].release);
			free(rest);
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_datetime),
		cmocka_unit_test(test_datetime_format),
		cmocka_unit_test(test_extract),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
