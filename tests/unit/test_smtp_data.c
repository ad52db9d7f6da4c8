/* Unit tests for libshared/smtp_data: dot-unstuffing, end detection and the
 * smuggling cases, BDAT content checks.  Input is split into lines the way
 * net.c's mf_conn_read_line does (at LF; crlf when a CR came before it). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdbool.h>
#include <string.h>

#include "smtp_data.h"

/* Feeds input; returns the offset just after the end line, or -1 when no
 * end was found.  out gets the message. */
static long feed(struct smtp_data_reader *r, const char *in, size_t len, struct mf_buf *out)
{
	size_t pos = 0;

	while (pos < len) {
		const char *lf = memchr(in + pos, '\n', len - pos);
		size_t n;
		bool crlf;
		if (lf == NULL)
			return -1;   /* incomplete line: net.c waits for more */
		n = (size_t)(lf - (in + pos));
		crlf = n > 0 && in[pos + n - 1] == '\r';
		if (smtp_data_line(r, in + pos, crlf ? n - 1 : n, crlf, out) == 1)
			return (long)(pos + n + 1);
		pos += n + 1;
	}
	return -1;
}

struct data_case {
	const char *in;
	long end;            /* offset after the end, -1: no end */
	const char *message; /* when flags is 0 */
	unsigned flags;
};

static const struct data_case cases[] = {
	{ "a\r\nb\r\n.\r\n", 9, "a\r\nb\r\n", 0 },
	{ ".\r\n", 3, "", 0 },
	{ "..\r\n.\r\n", 7, ".\r\n", 0 },
	{ "..x\r\n.y\r\n.\r\nMAIL", 12, ".x\r\ny\r\n", 0 },
	{ "a\r\n.\r\nQUIT\r\n", 6, "a\r\n", 0 },
	/* smuggling: none of these end the message */
	{ "a\n.\nMAIL FROM:<x@y>\r\n", -1, NULL, SMTP_DATA_BARE_LF },
	{ "a\n.\r\nMAIL FROM:<x@y>\r\n", -1, NULL, SMTP_DATA_BARE_LF },
	{ "a\r.\rMAIL FROM:<x@y>\r\n", -1, NULL, SMTP_DATA_BARE_CR },
	{ "a\r\n.\nMAIL FROM:<x@y>\r\n", -1, NULL, SMTP_DATA_BARE_LF },
	{ "a\r.\r\nMAIL\r\n", -1, NULL, SMTP_DATA_BARE_CR },
	/* ... and the real end afterwards is found, with the message refused */
	{ "a\n.\nb\r\n.\r\n", 10, NULL, SMTP_DATA_BARE_LF },
	{ "a\n.\r\n.\r\n", 8, NULL, SMTP_DATA_BARE_LF },
	{ "x\ry\r\n.\r\n", 8, NULL, SMTP_DATA_BARE_CR },
	{ "x\r\r\n.\r\n", 7, NULL, SMTP_DATA_BARE_CR },
	{ "a\0b\r\n.\r\n", 8, NULL, SMTP_DATA_NUL },
};

static void test_data_cases(void **state)
{
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct data_case *c = &cases[i];
		struct smtp_data_reader r;
		struct mf_buf out;
		size_t len = strlen(c->in);
		long end;

		if (i == sizeof(cases) / sizeof(cases[0]) - 1)
			len = 8;   /* the NUL case */
		mf_buf_init(&out, 0);
		smtp_data_init(&r, 0, SMTP_DATA_HEADER_MAX);
		end = feed(&r, c->in, len, &out);
		if (end != c->end)
			fail_msg("case %zu: end %ld, want %ld", i, end, c->end);
		if (r.flags != c->flags)
			fail_msg("case %zu: flags %x, want %x", i, r.flags, c->flags);
		if (c->message != NULL && strcmp(mf_buf_cstr(&out), c->message) != 0)
			fail_msg("case %zu: message %s", i, mf_buf_cstr(&out));
		if (c->flags != 0)
			assert_non_null(smtp_data_problem(r.flags));
		mf_buf_free(&out);
	}
	assert_null(smtp_data_problem(0));
	assert_string_equal(smtp_data_problem(SMTP_DATA_BARE_LF),
			    "550 5.6.0 bare LF in message (line ends must be CRLF, RFC 5321 2.3.8)");
}

static void test_data_limits(void **state)
{
	struct smtp_data_reader r;
	struct mf_buf out;
	const char *msg = "Subject: x\r\n\r\n0123456789\r\n.\r\n";

	mf_buf_init(&out, 0);
	smtp_data_init(&r, 26, SMTP_DATA_HEADER_MAX);
	assert_int_equal(feed(&r, msg, strlen(msg), &out), (long)strlen(msg));
	assert_int_equal(r.flags, 0);       /* exactly 26 bytes */
	assert_int_equal(r.size, 26);
	assert_int_equal(r.header_size, 14);
	mf_buf_reset(&out);
	smtp_data_init(&r, 25, SMTP_DATA_HEADER_MAX);
	assert_int_equal(feed(&r, msg, strlen(msg), &out), (long)strlen(msg));
	assert_int_equal(r.flags, SMTP_DATA_TOO_BIG);
	assert_string_equal(smtp_data_problem(r.flags), "552 5.3.4 message too big");
	mf_buf_reset(&out);
	smtp_data_init(&r, 0, 13);
	assert_int_equal(feed(&r, msg, strlen(msg), &out), (long)strlen(msg));
	assert_int_equal(r.flags, SMTP_DATA_HEADER_BIG);
	mf_buf_free(&out);
}

static void test_bdat(void **state)
{
	struct smtp_data_reader r;

	/* CRLF split over two chunks is fine */
	smtp_data_init(&r, 0, SMTP_DATA_HEADER_MAX);
	smtp_data_chunk(&r, "Subject: a\r", 11);
	smtp_data_chunk(&r, "\n\r\nbody\r\n", 9);
	smtp_data_chunk_end(&r);
	assert_int_equal(r.flags, 0);
	assert_int_equal(r.size, 20);
	assert_false(r.in_header);
	assert_int_equal(r.header_size, 14);

	/* a dot line is content in BDAT: no unstuffing, no end */
	smtp_data_init(&r, 0, SMTP_DATA_HEADER_MAX);
	smtp_data_chunk(&r, "\r\n.\r\n", 5);
	smtp_data_chunk_end(&r);
	assert_int_equal(r.flags, 0);
	assert_int_equal(r.size, 5);

	smtp_data_init(&r, 0, SMTP_DATA_HEADER_MAX);
	smtp_data_chunk(&r, "a\nb", 3);
	assert_int_equal(r.flags, SMTP_DATA_BARE_LF);

	smtp_data_init(&r, 0, SMTP_DATA_HEADER_MAX);
	smtp_data_chunk(&r, "a\r", 2);
	smtp_data_chunk(&r, "b", 1);
	assert_int_equal(r.flags, SMTP_DATA_BARE_CR);

	smtp_data_init(&r, 0, SMTP_DATA_HEADER_MAX);
	smtp_data_chunk(&r, "a\r", 2);
	smtp_data_chunk_end(&r);
	assert_int_equal(r.flags, SMTP_DATA_BARE_CR);

	/* BINARYMIME: any bytes */
	smtp_data_init(&r, 0, SMTP_DATA_HEADER_MAX);
	r.binary = true;
	smtp_data_chunk(&r, "a\rb\nc\0", 6);
	smtp_data_chunk_end(&r);
	assert_int_equal(r.flags, 0);

	/* size limit over chunks */
	smtp_data_init(&r, 10, SMTP_DATA_HEADER_MAX);
	smtp_data_chunk(&r, "\r\n12345678", 10);
	assert_int_equal(r.flags, 0);
	smtp_data_chunk(&r, "9", 1);
	assert_int_equal(r.flags, SMTP_DATA_TOO_BIG);

	/* header limit */
	smtp_data_init(&r, 0, 8);
	smtp_data_chunk(&r, "X: 12345", 8);
	assert_int_equal(r.flags, 0);
	smtp_data_chunk(&r, "6", 1);
	assert_int_equal(r.flags, SMTP_DATA_HEADER_BIG);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_data_cases),
		cmocka_unit_test(test_data_limits),
		cmocka_unit_test(test_bdat),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
