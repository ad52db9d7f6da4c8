/* Unit tests for SEARCH programs (services/imap/imap_search.c): parsing
 * with exact errors, and matching flags, sets, sizes, dates, headers and
 * body text of a real MIME message. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "mime.h"
#include "services/imap/imap_parser.h"
#include "services/imap/imap_pool.h"
#include "services/imap/imap_search.h"
#include "services/imap/store.h"

static const char message[] =
	"From: =?UTF-8?Q?J=C3=BCrgen?= <juergen@example.org>\r\n"
	"To: Alice <alice@example.com>, bob@example.net\r\n"
	"Cc: carol@example.com\r\n"
	"Subject: Quarterly report\r\n"
	"Date: Tue, 14 May 2024 23:30:00 -0200\r\n"
	"Message-ID: <1@example.org>\r\n"
	"X-Custom: Blue Whale\r\n"
	"MIME-Version: 1.0\r\n"
	"Content-Type: multipart/mixed; boundary=b1\r\n"
	"\r\n"
	"--b1\r\n"
	"Content-Type: text/plain; charset=utf-8\r\n"
	"Content-Transfer-Encoding: quoted-printable\r\n"
	"\r\n"
	"Die Zahlen sind gr=C3=B6=C3=9Fer als erwartet.\r\n"
	"--b1\r\n"
	"Content-Type: application/octet-stream\r\n"
	"Content-Transfer-Encoding: base64\r\n"
	"\r\n"
	"c2VjcmV0IHBheWxvYWQ=\r\n"
	"--b1--\r\n";

/* Parses program text (a command with literals inline) and matches m. */
static int run(const char *program, const struct imap_search_msg *m, const char **error_r)
{
	struct imap_pool *pool = imap_pool_create();
	struct imap_search_program prog;
	struct imap_command cmd;
	char *line = imap_pool_printf(pool, "t SEARCH %s", program);
	int ret = -1;

	if (imap_parse_buffer(pool, line, strlen(line), &cmd, error_r) < 0)
		goto out;
	if (imap_search_parse(pool, cmd.args, cmd.count, &prog, error_r) < 0)
		goto out;
	ret = imap_search_match(&prog, m) ? 1 : 0;
out:
	imap_pool_free(&pool);
	return ret;
}

static void test_match(void **state)
{
	struct mf_mime_message mime;
	uint32_t saved[] = { 3, 40 };
	struct imap_search_msg m = {
		.seq = 2, .uid = 40, .max_seq = 5, .max_uid = 90,
		.flags = STORE_FLAG_SEEN | STORE_FLAG_FLAGGED, .keywords = "$Junk Work",
		.size = 2000, .internal_date = 1715731200000LL,  /* 2024-05-15 00:00 UTC */
		.saved = saved, .saved_count = 2,
	};
	const char *err = NULL;
	static const struct {
		const char *prog;
		int want;
	} cases[] = {
		{ "ALL", 1 }, { "SEEN", 1 }, { "UNSEEN", 0 }, { "FLAGGED DELETED", 0 },
		{ "UNDELETED UNANSWERED UNDRAFT", 1 }, { "ANSWERED", 0 },
		{ "KEYWORD work", 1 }, { "KEYWORD $Phishing", 0 }, { "UNKEYWORD $Junk", 0 },
		{ "KEYWORD \\Seen", 1 },
		{ "2", 1 }, { "3:*", 0 }, { "*", 0 }, { "1,2", 1 }, { "UID 40", 1 },
		{ "UID 41:*", 0 }, { "UID *", 0 }, { "$", 1 }, { "UID $", 1 },
		{ "LARGER 1999", 1 }, { "LARGER 2000", 0 }, { "SMALLER 2001", 1 },
		{ "ON 15-May-2024", 1 }, { "SINCE 15-May-2024", 1 }, { "BEFORE 15-May-2024", 0 },
		{ "BEFORE 16-May-2024", 1 },
		/* Sent 2024-05-14 23:30 -0200 = 2024-05-15 01:30 UTC. */
		{ "SENTON 15-May-2024", 1 }, { "SENTBEFORE 15-May-2024", 0 },
		{ "SENTSINCE 1-Jan-2024", 1 },
		{ "FROM juergen", 1 }, { "FROM \"J\xc3\x9cRGEN\"", 1 }, { "FROM mallory", 0 },
		{ "TO bob@example.net", 1 }, { "CC CAROL", 1 }, { "BCC carol", 0 },
		{ "SUBJECT \"quarterly REPORT\"", 1 }, { "SUBJECT {6}\r\nreport", 1 },
		{ "HEADER X-Custom whale", 1 }, { "HEADER X-Custom \"\"", 1 },
		{ "HEADER X-Other \"\"", 0 },
		{ "BODY \"GR\xc3\x96\xc3\x9f""ER ALS\"", 1 }, { "BODY secret", 0 },
		{ "BODY Quarterly", 0 }, { "TEXT Quarterly", 1 }, { "TEXT zahlen", 1 },
		{ "OR SEEN DELETED", 1 }, { "OR DELETED ANSWERED", 0 }, { "NOT SEEN", 0 },
		{ "NOT NOT SEEN", 1 }, { "(SEEN FLAGGED) (FROM juergen)", 1 },
		{ "OR (DELETED) (NOT (UNSEEN))", 1 }, { "RECENT", 0 }, { "NEW", 0 }, { "OLD", 1 },
	};

	mf_mime_parse(message, sizeof(message) - 1, &mime);
	m.mime = &mime;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int r = run(cases[i].prog, &m, &err);
		if (r != cases[i].want)
			fail_msg("\"%s\": want %d, got %d (%s)", cases[i].prog, cases[i].want, r,
				 r < 0 ? err : "");
	}
	/* SUBJECT from the store's copy of the header, without the message. */
	m.mime = NULL;
	m.subject = "=?UTF-8?Q?Quartalsbericht_f=C3=BCr_Mai?=";
	m.subject_known = true;
	assert_int_equal(run("SUBJECT \"F\xc3\x9cR MAI\"", &m, &err), 1);
	assert_int_equal(run("HEADER subject Quartal", &m, &err), 1);
	assert_int_equal(run("SUBJECT report", &m, &err), 0);
	m.subject = NULL;
	assert_int_equal(run("SUBJECT \"\"", &m, &err), 0);
	m.subject_known = false;
	/* Content keys never match a message that cannot be read. */
	m.mime = NULL;
	assert_int_equal(run("FROM juergen", &m, &err), 0);
	assert_int_equal(run("NOT BODY zahlen", &m, &err), 1);
	mf_mime_message_free(&mime);
}

static void test_parse_errors(void **state)
{
	struct imap_search_msg m = { .seq = 1, .uid = 1, .max_seq = 1, .max_uid = 1 };
	static const struct {
		const char *prog, *error;
	} bad[] = {
		{ "FOO", "unknown search key FOO" },
		{ "FROM", "search key needs a string argument" },
		{ "SINCE 32-Jan-2024", "invalid date in search key" },
		{ "SINCE 1-Foo-2024", "invalid date in search key" },
		{ "LARGER x", "LARGER/SMALLER need a number" },
		{ "LARGER 12x", "LARGER/SMALLER need a number" },
		{ "OR SEEN", "missing search key" },
		{ "NOT", "missing search key" },
		{ "()", "empty search key list" },
		{ "0:3", "invalid sequence set: zero" },
		{ "UID", "UID needs a set" },
		{ "KEYWORD (a)", "KEYWORD needs a flag" },
		{ "HEADER X", "search key needs a string argument" },
		{ "NOT NOT NOT NOT NOT NOT NOT NOT NOT NOT NOT NOT NOT NOT NOT NOT NOT NOT NOT "
		  "NOT NOT NOT NOT NOT NOT NOT NOT NOT NOT NOT NOT NOT NOT NOT SEEN",
		  "search program nested too deeply" },
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const char *err = NULL;
		int r = run(bad[i].prog, &m, &err);
		if (r != -1 || err == NULL || strcmp(err, bad[i].error) != 0)
			fail_msg("\"%s\": want \"%s\", got %d \"%s\"", bad[i].prog, bad[i].error, r,
				 err != NULL ? err : "");
	}
}

static void test_contains(void **state)
{
	assert_true(imap_search_contains("Hello World", 11, "o w", 3));
	assert_true(imap_search_contains("STRASSE", 7, "stra\xc3\x9f""e", 7));
	assert_false(imap_search_contains("abc", 3, "abcd", 4));
	/* 8-bit non-UTF-8 text falls back to ASCII folding. */
	assert_true(imap_search_contains("a\xff" "Bc", 4, "bC", 2));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_match),
		cmocka_unit_test(test_parse_errors),
		cmocka_unit_test(test_contains),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
