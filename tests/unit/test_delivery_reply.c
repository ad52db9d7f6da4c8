#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "buf.h"
#include "services/delivery/smtp_client_reply.h"

/* Feeds lines separated by '|'; returns the last feed result. */
static int feed(struct smtp_client_reply *r, const char *lines, const char **error_r)
{
	const char *p = lines;
	int ret = -1;

	for (;;) {
		const char *bar = strchr(p, '|');
		size_t len = bar != NULL ? (size_t)(bar - p) : strlen(p);
		ret = smtp_client_reply_feed(r, p, len, error_r);
		if (ret < 0 || bar == NULL)
			return ret;
		p = bar + 1;
	}
}

static void test_table(void **state)
{
	static const struct {
		const char *lines;
		int result;
		unsigned code;
		const char *enhanced;
		const char *text;
	} cases[] = {
		{ "250 OK", 1, 250, "", "OK" },
		{ "250 2.1.5 Recipient OK", 1, 250, "2.1.5", "Recipient OK" },
		{ "550-5.1.1 first|550 5.1.1 second", 1, 550, "5.1.1", "first\nsecond" },
		{ "550-5.1.1 first|550-second|550 5.1.1 third", 1, 550, "5.1.1", "first\nsecond\nthird" },
		{ "250", 1, 250, "", "" },
		{ "220-mx.example hello|220 ready", 1, 220, "", "mx.example hello\nready" },
		/* An enhanced code of another class is text. */
		{ "550 4.1.1 odd", 1, 550, "", "4.1.1 odd" },
		{ "451 4.7.1", 1, 451, "4.7.1", "" },
		{ "250-first", 0, 250, "", "first" },
		/* Errors. */
		{ "25 OK", -1, 0, NULL, NULL },
		{ "abc OK", -1, 0, NULL, NULL },
		{ "199 low", -1, 0, NULL, NULL },
		{ "600 high", -1, 0, NULL, NULL },
		{ "250xOK", -1, 0, NULL, NULL },
		{ "250-a|550 b", -1, 0, NULL, NULL },
		{ "", -1, 0, NULL, NULL },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct smtp_client_reply r;
		const char *error = NULL;
		int ret;

		smtp_client_reply_init(&r);
		ret = feed(&r, cases[i].lines, &error);
		if (ret != cases[i].result)
			fail_msg("case %zu (%s): got %d want %d (%s)", i, cases[i].lines, ret,
				 cases[i].result, error != NULL ? error : "");
		if (ret >= 0) {
			assert_int_equal(r.code, cases[i].code);
			assert_string_equal(r.enhanced, cases[i].enhanced);
			assert_string_equal(mf_buf_cstr(&r.text), cases[i].text);
		} else {
			assert_non_null(error);
		}
		smtp_client_reply_free(&r);
	}
}

static void test_limits(void **state)
{
	struct smtp_client_reply r;
	char line[SMTP_CLIENT_REPLY_LINE_MAX + 10];
	const char *error;

	smtp_client_reply_init(&r);
	memset(line, 'a', sizeof(line));
	memcpy(line, "250 ", 4);
	assert_int_equal(smtp_client_reply_feed(&r, line, sizeof(line), &error), -1);
	smtp_client_reply_reset(&r);
	for (int i = 0; i < SMTP_CLIENT_REPLY_LINES_MAX; i++)
		assert_int_equal(smtp_client_reply_feed(&r, "250-x", 5, &error), 0);
	assert_int_equal(smtp_client_reply_feed(&r, "250 x", 5, &error), -1);
	/* A NUL in the text does not cut it. */
	smtp_client_reply_reset(&r);
	assert_int_equal(smtp_client_reply_feed(&r, "250 a\0b", 7, &error), 1);
	assert_int_equal(r.text.len, 3);
	assert_string_equal(mf_buf_cstr(&r.text), "a?b");
	/* After a complete reply, feeding starts a new one. */
	assert_int_equal(smtp_client_reply_feed(&r, "354 go", 6, &error), 1);
	assert_int_equal(r.code, 354);
	assert_string_equal(mf_buf_cstr(&r.text), "go");
	smtp_client_reply_free(&r);
}

static void test_ehlo(void **state)
{
	struct smtp_client_reply r;
	struct smtp_client_ext ext;
	const char *error;

	smtp_client_reply_init(&r);
	assert_int_equal(feed(&r, "250-mx.example.org greets you|250-PIPELINING|250-SIZE 10240000|"
			      "250-starttls|250-8BITMIME|250-SMTPUTF8|250-LIMITS MAILMAX=5 RCPTMAX=3|"
			      "250-DSN|250 REQUIRETLS", &error), 1);
	smtp_client_ext_parse(&r, &ext);
	assert_true(ext.pipelining && ext.starttls && ext.eightbitmime && ext.smtputf8 &&
		    ext.dsn && ext.requiretls && ext.size);
	assert_int_equal(ext.size_max, 10240000);
	assert_int_equal(ext.rcptmax, 3);
	/* The greeting line is not a keyword. */
	smtp_client_reply_reset(&r);
	assert_int_equal(feed(&r, "250-PIPELINING|250 SIZE", &error), 1);
	smtp_client_ext_parse(&r, &ext);
	assert_false(ext.pipelining);
	assert_true(ext.size);
	assert_int_equal(ext.size_max, 0);
	/* Keywords must match whole. */
	smtp_client_reply_reset(&r);
	assert_int_equal(feed(&r, "250-x|250-PIPELININGX|250 STARTTLSY", &error), 1);
	smtp_client_ext_parse(&r, &ext);
	assert_false(ext.pipelining || ext.starttls);
	smtp_client_reply_free(&r);
	assert_true(smtp_client_reply_too_many_rcpts(452));
	assert_true(smtp_client_reply_too_many_rcpts(552));
	assert_false(smtp_client_reply_too_many_rcpts(550));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_ehlo),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
