/* test_mime_imap: IMAP strings, ENVELOPE, BODY/BODYSTRUCTURE, sections and
 * BINARY.  Expected structures were checked against Dovecot 2.3 on the same
 * messages; the differences are deliberate: upper-case type names, sizes of
 * the stored bytes (Dovecot counts bare LF as CRLF), message/global as an
 * encapsulated message for IMAP4rev2 (RFC 9051), and RFC 2231 "name*" values
 * re-encoded as utf-8''... for clients without UTF-8. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mime_imap.h"

static char *load(const char *name, size_t *len_r)
{
	const char *dir = getenv("MF_TEST_DATA") ? getenv("MF_TEST_DATA") : "tests/data/mime";
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "rb");
	if (f == NULL)
		fail_msg("cannot open %s", path);
	char *buf = mf_xmalloc(1 << 20);
	*len_r = fread(buf, 1, 1 << 20, f);
	fclose(f);
	return buf;
}

static void test_strings(void **state)
{
	static const struct {
		const char *in;
		size_t len;
		unsigned flags;
		const char *out;
	} cases[] = {
		{ "plain", 5, 0, "\"plain\"" },
		{ "", 0, 0, "\"\"" },
		{ "say \"hi\" \\o/", 13, 0, "\"say \\\"hi\\\" \\\\o/\"" },
		{ "two\r\nlines", 10, 0, "{10}\r\ntwo\r\nlines" },
		{ "caf\xc3\xa9", 5, 0, "{5}\r\ncaf\xc3\xa9" },
		{ "caf\xc3\xa9", 5, MF_IMAP_UTF8, "\"caf\xc3\xa9\"" },
		{ "caf\xe9", 4, MF_IMAP_UTF8, "{4}\r\ncaf\xe9" },
		{ "a\0b", 3, 0, "\"ab\"" },
		{ "a\0\r", 3, 0, "{2}\r\na\r" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct mf_buf b;
		mf_buf_init(&b, 0);
		assert_int_equal(mf_imap_append_string(&b, cases[i].in, cases[i].len, cases[i].flags), 0);
		if (strcmp(mf_buf_cstr(&b), cases[i].out) != 0)
			fail_msg("case %zu: got %s", i, mf_buf_cstr(&b));
		mf_buf_free(&b);
	}
	/* long strings are literals */
	struct mf_buf b;
	char *big = mf_xmalloc(MF_IMAP_QUOTED_MAX + 1);
	memset(big, 'a', MF_IMAP_QUOTED_MAX + 1);
	mf_buf_init(&b, 0);
	assert_int_equal(mf_imap_append_string(&b, big, MF_IMAP_QUOTED_MAX, 0), 0);
	assert_int_equal(b.data[0], '"');
	mf_buf_reset(&b);
	assert_int_equal(mf_imap_append_string(&b, big, MF_IMAP_QUOTED_MAX + 1, 0), 0);
	assert_int_equal(strncmp(b.data, "{1025}\r\n", 8), 0);
	mf_buf_reset(&b);
	assert_int_equal(mf_imap_append_nstring(&b, NULL, 0), 0);
	assert_string_equal(mf_buf_cstr(&b), "NIL");
	mf_buf_free(&b);
	/* a capped buffer reports the overflow */
	mf_buf_init(&b, 4);
	assert_int_equal(mf_imap_append_string(&b, "toolong", 7, 0), -1);
	mf_buf_free(&b);
	free(big);
}

static const struct {
	const char *file;
	const char *envelope;
	const char *body;           /* NULL: not checked */
	const char *bodystructure;
} expected[] = {
	{ "simple.eml",
	  "(\"Mon, 7 Feb 1994 21:52:25 -0800 (PST)\" \"Lunch\" ((\"Alice Example\" NIL \"alice\" "
	  "\"example.org\")) ((\"Alice Example\" NIL \"alice\" \"example.org\")) ((\"Alice Example\" "
	  "NIL \"alice\" \"example.org\")) ((NIL NIL \"bob\" \"example.com\")) NIL NIL NIL "
	  "\"<B27397-0100000@example.org>\")",
	  "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"us-ascii\") NIL NIL \"7BIT\" 30 3)",
	  "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"us-ascii\") NIL NIL \"7BIT\" 30 3 NIL NIL NIL NIL)" },
	{ "alternative.eml",
	  "(\"Tue, 1 Mar 2022 10:00:00 +0100\" \"Plans\" ((\"Doe, Jane\" NIL \"jane\" \"example.net\")) "
	  "((\"Doe, Jane\" NIL \"jane\" \"example.net\")) ((\"Doe, Jane\" NIL \"jane\" "
	  "\"example.net\")) ((\"Bob\" NIL \"bob\" \"example.com\")(NIL NIL \"carol\" "
	  "\"example.com\")) ((NIL NIL \"dave\" \"example.com\")) NIL NIL \"<alt-1@example.net>\")",
	  "((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"utf-8\") NIL NIL \"QUOTED-PRINTABLE\" 30 1)(\"TEXT\" "
	  "\"HTML\" (\"CHARSET\" \"utf-8\") NIL NIL \"7BIT\" 17 0) \"ALTERNATIVE\")",
	  "((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"utf-8\") NIL NIL \"QUOTED-PRINTABLE\" 30 1 NIL NIL NIL "
	  "NIL)(\"TEXT\" \"HTML\" (\"CHARSET\" \"utf-8\") NIL NIL \"7BIT\" 17 0 NIL NIL NIL NIL) "
	  "\"ALTERNATIVE\" (\"BOUNDARY\" \"b1\") NIL NIL NIL)" },
	{ "nested.eml",
	  "(\"Wed, 2 Mar 2022 11:00:00 +0000\" \"Report\" ((NIL NIL \"sender\" \"example.org\")) "
	  "((NIL NIL \"sender\" \"example.org\")) ((NIL NIL \"sender\" \"example.org\")) ((NIL NIL "
	  "\"rcpt\" \"example.com\")) NIL NIL NIL \"<nested@example.org>\")",
	  NULL,
	  "(((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 10 0 NIL NIL NIL NIL)"
	  "(\"TEXT\" \"HTML\" (\"CHARSET\" \"utf-8\") NIL NIL \"7BIT\" 16 0 NIL NIL NIL NIL) "
	  "\"ALTERNATIVE\" (\"BOUNDARY\" \"inner\") NIL NIL NIL)(\"APPLICATION\" \"PDF\" (\"NAME\" "
	  "\"report.pdf\") \"<part2@example.org>\" \"The report\" \"BASE64\" 146 "
	  "\"Q2hlY2sgSW50ZWdyaXR5IQ==\" (\"ATTACHMENT\" (\"FILENAME\" \"report.pdf\")) (\"en\" "
	  "\"de\") \"http://example.org/report.pdf\")(\"IMAGE\" \"PNG\" NIL NIL NIL \"x-uuencode\" "
	  "20 NIL (\"INLINE\" NIL) NIL NIL) \"MIXED\" (\"BOUNDARY\" \"outer\") NIL NIL NIL)" },
	{ "rfc822.eml",
	  "(\"Thu, 3 Mar 2022 12:00:00 +0000\" \"Fwd: original\" ((NIL NIL \"fwd\" \"example.org\")) "
	  "((NIL NIL \"fwd\" \"example.org\")) ((NIL NIL \"fwd\" \"example.org\")) ((NIL NIL "
	  "\"rcpt\" \"example.com\")) NIL NIL NIL NIL)",
	  "((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 12 0)(\"MESSAGE\" "
	  "\"RFC822\" NIL NIL NIL \"7BIT\" 302 (\"Wed, 2 Mar 2022 09:00:00 +0000\" \"original\" "
	  "((NIL NIL \"orig\" \"example.net\")) ((NIL NIL \"orig\" \"example.net\")) ((NIL NIL "
	  "\"orig\" \"example.net\")) ((NIL NIL \"fwd\" \"example.org\")) NIL NIL NIL "
	  "\"<orig@example.net>\") ((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" "
	  "9 0)(\"TEXT\" \"HTML\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 11 0) "
	  "\"ALTERNATIVE\") 17) \"MIXED\")",
	  "((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 12 0 NIL NIL NIL NIL)"
	  "(\"MESSAGE\" \"RFC822\" NIL NIL NIL \"7BIT\" 302 (\"Wed, 2 Mar 2022 09:00:00 +0000\" "
	  "\"original\" ((NIL NIL \"orig\" \"example.net\")) ((NIL NIL \"orig\" \"example.net\")) "
	  "((NIL NIL \"orig\" \"example.net\")) ((NIL NIL \"fwd\" \"example.org\")) NIL NIL NIL "
	  "\"<orig@example.net>\") ((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" "
	  "9 0 NIL NIL NIL NIL)(\"TEXT\" \"HTML\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 11 0 "
	  "NIL NIL NIL NIL) \"ALTERNATIVE\" (\"BOUNDARY\" \"x\") NIL NIL NIL) 17 NIL NIL NIL NIL) "
	  "\"MIXED\" (\"BOUNDARY\" \"m\") NIL NIL NIL)" },
	{ "missing_boundary.eml",
	  "(NIL \"broken\" ((NIL NIL \"a\" \"example.org\")) ((NIL NIL \"a\" \"example.org\")) "
	  "((NIL NIL \"a\" \"example.org\")) NIL NIL NIL NIL NIL)",
	  NULL,
	  "((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 5 0 NIL NIL NIL NIL)"
	  "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 22 1 NIL NIL NIL NIL) "
	  "\"MIXED\" (\"BOUNDARY\" \"zzz\") NIL NIL NIL)" },
	{ "bare_lf.eml",
	  "(NIL \"bare LF\" ((NIL NIL \"lf\" \"example.org\")) ((NIL NIL \"lf\" \"example.org\")) "
	  "((NIL NIL \"lf\" \"example.org\")) ((NIL NIL \"x\" \"example.com\")) NIL NIL NIL NIL)",
	  NULL,
	  "((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 7 1 NIL NIL NIL NIL) "
	  "\"MIXED\" (\"BOUNDARY\" \"lf\") NIL NIL NIL)" },
	{ "eightbit.eml",
	  "(\"Fri, 4 Mar 2022 08:00:00 +0100\" {17}\r\nGr\xc3\xbc\xc3\x9f" "e aus K\xc3\xb6ln "
	  "(({13}\r\nJ\xc3\xb6rg M\xc3\xbcller NIL \"joerg\" \"example.de\")) (({13}\r\n"
	  "J\xc3\xb6rg M\xc3\xbcller NIL \"joerg\" \"example.de\")) (({13}\r\nJ\xc3\xb6rg "
	  "M\xc3\xbcller NIL \"joerg\" \"example.de\")) (({4}\r\nRen\xe9 NIL \"rene\" "
	  "\"example.fr\")) NIL NIL NIL NIL)",
	  NULL,
	  "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"utf-8\") NIL NIL \"8BIT\" 9 1 NIL NIL NIL NIL)" },
	{ "encoded_words.eml",
	  "(\"Sat, 5 Mar 2022 10:00:00 +0000\" \"=?UTF-8?B?8J+Y?= =?UTF-8?B?gA==?= split and "
	  "=?utf-8?q?adjacent?=   =?utf-8?q?_words?= end\" ((\"=?ISO-8859-1?Q?Keld_J=F8rn_Simonsen?=\" "
	  "NIL \"keld\" \"example.dk\")) ((\"=?ISO-8859-1?Q?Keld_J=F8rn_Simonsen?=\" NIL \"keld\" "
	  "\"example.dk\")) ((\"=?ISO-8859-1?Q?Keld_J=F8rn_Simonsen?=\" NIL \"keld\" \"example.dk\")) "
	  "((\"=?UTF-8?B?5pel5pys6Kqe?=\" NIL \"nihongo\" \"example.jp\")(\"=?utf-8?q?Andr=C3=A9?= "
	  "Pirard\" NIL \"andre\" \"example.be\")) ((\"=?x-unknown?q?caf=E9?=\" NIL \"unk\" "
	  "\"example.org\")) NIL NIL NIL)",
	  NULL,
	  "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 6 1 NIL NIL NIL NIL)" },
	{ "rfc2231.eml",
	  "(NIL \"continuation\" ((NIL NIL \"a\" \"example.org\")) ((NIL NIL \"a\" \"example.org\")) "
	  "((NIL NIL \"a\" \"example.org\")) NIL NIL NIL NIL NIL)",
	  NULL,
	  "((\"APPLICATION\" \"OCTET-STREAM\" (\"NAME*\" \"utf-8''%C3%9Cber%20lange%20Datei.txt\") "
	  "NIL NIL \"BASE64\" 16 NIL (\"ATTACHMENT\" (\"FILENAME\" \"very long file name.txt\")) "
	  "NIL NIL) \"MIXED\" (\"BOUNDARY\" \"c\") NIL NIL NIL)" },
	{ "group.eml",
	  "(NIL \"\" ((\"Mary Smith\" NIL \"mary\" \"x.test\")) ((\"Mary Smith\" NIL \"mary\" "
	  "\"x.test\")) ((\"Mary Smith\" NIL \"mary\" \"x.test\")) ((NIL NIL \"A Group\" NIL)"
	  "(\"Ed Jones\" NIL \"c\" \"a.test\")(NIL NIL \"joe\" \"where.test\")(\"John\" NIL \"jdoe\" "
	  "\"one.test\")(NIL NIL NIL NIL)) ((NIL NIL \"Undisclosed recipients\" NIL)(NIL NIL NIL "
	  "NIL)) ((\"Joe Q. Public\" NIL \"john.q.public\" \"example.com\")(\"pete\" NIL \"pete\" "
	  "\"silly.test\")) NIL NIL)",
	  NULL,
	  "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 12 1 NIL NIL NIL NIL)" },
	{ "global.eml",
	  "(NIL \"global\" ((NIL NIL \"g\" \"example.org\")) ((NIL NIL \"g\" \"example.org\")) "
	  "((NIL NIL \"g\" \"example.org\")) NIL NIL NIL NIL NIL)",
	  /* IMAP4rev1 knows only message/rfc822 as encapsulated */
	  "(\"MESSAGE\" \"GLOBAL\" NIL NIL NIL \"7BIT\" 74)",
	  "(\"MESSAGE\" \"GLOBAL\" NIL NIL NIL \"7BIT\" 74 NIL NIL NIL NIL)" },
	{ "oddities.eml",
	  "(\"Mon, 7 Mar 2022 10:00:00 +0000\" \"folded\tsubject line\" ((\"Outlook User\" NIL "
	  "\"user\" \"example.org\")) ((\"Outlook User\" NIL \"user\" \"example.org\")) "
	  "((\"Outlook User\" NIL \"user\" \"example.org\")) ((NIL NIL \"recipient\" "
	  "\"example.com\")) NIL NIL NIL NIL)",
	  NULL,
	  "((\"TEXT\" \"HTML\" (\"CHARSET\" \"windows-1252\") NIL NIL \"QUOTED-PRINTABLE\" 13 0 "
	  "NIL NIL NIL NIL)(\"APPLICATION\" \"OCTET-STREAM\" (\"NAME\" \"=?utf-8?B?w5xiZXIucGRm?=\") "
	  "NIL NIL \"BASE64\" 8 NIL (\"ATTACHMENT\" (\"FILENAME\" \"=?utf-8?B?w5xiZXIucGRm?=\")) NIL "
	  "NIL)((\"MESSAGE\" \"RFC822\" NIL NIL NIL \"7BIT\" 43 (NIL \"digest one\" NIL NIL NIL NIL "
	  "NIL NIL NIL NIL) (\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 20 0 NIL "
	  "NIL NIL NIL) 2 NIL NIL NIL NIL) \"DIGEST\" (\"BOUNDARY\" \"dg\") NIL NIL NIL) \"MIXED\" "
	  "(\"BOUNDARY\" \"----=_NextPart_000_0012_01D8 ABC\") NIL NIL NIL)" },
	{ "noheader.eml", "(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)",
	  "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 0 0)", NULL },
};

static void test_structures(void **state)
{
	for (size_t i = 0; i < sizeof(expected) / sizeof(expected[0]); i++) {
		size_t len;
		char *data = load(expected[i].file, &len);
		struct mf_mime_message m;
		struct mf_buf b;
		mf_mime_parse(data, len, &m);
		mf_buf_init(&b, 0);
		assert_int_equal(mf_imap_envelope(&m, m.root, 0, &b), 0);
		if (strcmp(mf_buf_cstr(&b), expected[i].envelope) != 0)
			fail_msg("%s ENVELOPE:\n%s", expected[i].file, mf_buf_cstr(&b));
		if (expected[i].body != NULL) {
			mf_buf_reset(&b);
			assert_int_equal(mf_imap_bodystructure(&m, m.root, false, 0, &b), 0);
			if (strcmp(mf_buf_cstr(&b), expected[i].body) != 0)
				fail_msg("%s BODY:\n%s", expected[i].file, mf_buf_cstr(&b));
		}
		if (expected[i].bodystructure != NULL) {
			mf_buf_reset(&b);
			assert_int_equal(mf_imap_bodystructure(&m, m.root, true, 0, &b), 0);
			if (strcmp(mf_buf_cstr(&b), expected[i].bodystructure) != 0)
				fail_msg("%s BODYSTRUCTURE:\n%s", expected[i].file, mf_buf_cstr(&b));
		}
		mf_buf_free(&b);
		mf_mime_message_free(&m);
		free(data);
	}
}

static void test_utf8_session(void **state)
{
	size_t len;
	char *data = load("eightbit.eml", &len);
	struct mf_mime_message m;
	struct mf_buf b;

	mf_mime_parse(data, len, &m);
	mf_buf_init(&b, 0);
	assert_int_equal(mf_imap_envelope(&m, m.root, MF_IMAP_UTF8, &b), 0);
	/* valid UTF-8 goes quoted; the Latin-1 name still needs a literal */
	assert_string_equal(mf_buf_cstr(&b),
			    "(\"Fri, 4 Mar 2022 08:00:00 +0100\" \"Gr\xc3\xbc\xc3\x9f" "e aus "
			    "K\xc3\xb6ln\" ((\"J\xc3\xb6rg M\xc3\xbcller\" NIL \"joerg\" "
			    "\"example.de\")) ((\"J\xc3\xb6rg M\xc3\xbcller\" NIL \"joerg\" "
			    "\"example.de\")) ((\"J\xc3\xb6rg M\xc3\xbcller\" NIL \"joerg\" "
			    "\"example.de\")) (({4}\r\nRen\xe9 NIL \"rene\" \"example.fr\")) NIL NIL "
			    "NIL NIL)");
	mf_buf_free(&b);
	mf_mime_message_free(&m);
	free(data);

	data = load("rfc2231.eml", &len);
	mf_mime_parse(data, len, &m);
	mf_buf_init(&b, 0);
	assert_int_equal(mf_imap_bodystructure(&m, m.root, false, MF_IMAP_UTF8, &b), 0);
	assert_string_equal(mf_buf_cstr(&b),
			    "((\"APPLICATION\" \"OCTET-STREAM\" (\"NAME*\" \"\xc3\x9c" "ber lange "
			    "Datei.txt\") NIL NIL \"BASE64\" 16) \"MIXED\")");
	mf_buf_free(&b);
	mf_mime_message_free(&m);
	free(data);
}

static void test_global_rev2(void **state)
{
	size_t len;
	char *data = load("global.eml", &len);
	struct mf_mime_message m;
	struct mf_buf b;

	mf_mime_parse(data, len, &m);
	mf_buf_init(&b, 0);
	assert_int_equal(mf_imap_bodystructure(&m, m.root, false, MF_IMAP_REV2, &b), 0);
	assert_string_equal(mf_buf_cstr(&b),
			    "(\"MESSAGE\" \"GLOBAL\" NIL NIL NIL \"7BIT\" 74 (NIL \"inner global\" "
			    "((\"=?utf-8?q?x?=\" NIL \"x\" \"example.org\")) ((\"=?utf-8?q?x?=\" NIL "
			    "\"x\" \"example.org\")) ((\"=?utf-8?q?x?=\" NIL \"x\" \"example.org\")) "
			    "NIL NIL NIL NIL NIL) (\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL "
			    "\"7BIT\" 12 1) 4)");
	mf_buf_free(&b);
	mf_mime_message_free(&m);
	free(data);
}

static void test_envelope_defaults(void **state)
{
	/* Sender and Reply-To present but empty default to From; To present
	 * but empty is NIL; Subject present but empty is ""; first of two */
	const char *s = "From: a@b.test\r\nSender:\r\nReply-To: r@b.test\r\nTo:\r\n"
			"Subject:\r\nSubject: second\r\nMessage-ID:  <x@y>  \r\n"
			"In-Reply-To: <p@q>\r\nBcc: No Domain\r\n\r\n";
	struct mf_mime_message m;
	struct mf_buf b;

	mf_mime_parse(s, strlen(s), &m);
	mf_buf_init(&b, 0);
	assert_int_equal(mf_imap_envelope(&m, m.root, 0, &b), 0);
	assert_string_equal(mf_buf_cstr(&b),
			    "(NIL \"\" ((NIL NIL \"a\" \"b.test\")) ((NIL NIL \"a\" \"b.test\")) "
			    "((NIL NIL \"r\" \"b.test\")) NIL NIL ((NIL NIL \"NoDomain\" "
			    "\"MISSING_DOMAIN\")) \"<p@q>\" \"<x@y>\")");
	mf_buf_free(&b);
	mf_mime_message_free(&m);
}

static void test_section_parse(void **state)
{
	static const struct {
		const char *in;
		bool binary;
		const char *canonical; /* NULL: must fail */
	} cases[] = {
		{ "", false, "" },
		{ "HEADER", false, "HEADER" },
		{ "text", false, "TEXT" },
		{ "1", false, "1" },
		{ "1.2.3", false, "1.2.3" },
		{ "2.HEADER", false, "2.HEADER" },
		{ "1.2.mime", false, "1.2.MIME" },
		{ "HEADER.FIELDS (From To)", false, "HEADER.FIELDS (From To)" },
		{ "header.fields.not (\"X-Odd Name\" cc)", false, "HEADER.FIELDS.NOT (\"X-Odd Name\" cc)" },
		{ "3.HEADER.FIELDS (SUBJECT)", false, "3.HEADER.FIELDS (SUBJECT)" },
		{ "1.2", true, "1.2" },
		{ "", true, "" },
		{ "MIME", false, NULL },
		{ "0", false, NULL },
		{ "01", false, NULL },
		{ "1.", false, NULL },
		{ ".1", false, NULL },
		{ "1..2", false, NULL },
		{ "1HEADER", false, NULL },
		{ "HEADER.FIELDS", false, NULL },
		{ "HEADER.FIELDS ()", false, NULL },
		{ "HEADER.FIELDS (From", false, NULL },
		{ "HEADER.FIELDS (From) x", false, NULL },
		{ "HEADER.FIELDS (\"unterminated)", false, NULL },
		{ "HEADERX", false, NULL },
		{ "TEXT ", false, NULL },
		{ "1.TEXT", true, NULL },
		{ "HEADER", true, NULL },
		{ "99999999999", false, NULL },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct mf_imap_section sec;
		const char *error;
		int r = mf_imap_section_parse(cases[i].in, strlen(cases[i].in), cases[i].binary, &sec,
					      &error);
		if (cases[i].canonical == NULL) {
			if (r != -1)
				fail_msg("case %zu (%s) parsed", i, cases[i].in);
			continue;
		}
		if (r != 0)
			fail_msg("case %zu (%s): %s", i, cases[i].in, error);
		struct mf_buf b;
		mf_buf_init(&b, 0);
		assert_int_equal(mf_imap_section_format(&sec, &b), 0);
		assert_string_equal(mf_buf_cstr(&b), cases[i].canonical);
		mf_buf_free(&b);
		mf_imap_section_free(&sec);
	}
	/* limits on field names */
	struct mf_buf b;
	struct mf_imap_section sec;
	const char *error;
	mf_buf_init(&b, 0);
	mf_buf_append_str(&b, "HEADER.FIELDS (");
	for (int i = 0; i <= MF_IMAP_SECTION_FIELDS_MAX; i++)
		mf_buf_appendf(&b, "%sX%d", i ? " " : "", i);
	mf_buf_append_str(&b, ")");
	assert_int_equal(mf_imap_section_parse(b.data, b.len, false, &sec, &error), -1);
	mf_buf_free(&b);
}

static void test_section_fetch(void **state)
{
	static const struct {
		const char *file;
		const char *section;
		const char *data; /* NULL: no such part */
	} cases[] = {
		{ "rfc822.eml", "2.HEADER",
		  "From: orig@example.net\r\nTo: fwd@example.org\r\nSubject: original\r\n"
		  "Date: Wed, 2 Mar 2022 09:00:00 +0000\r\nMessage-ID: <orig@example.net>\r\n"
		  "MIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=\"x\"\r\n\r\n" },
		{ "rfc822.eml", "2.1", "orig text" },
		{ "rfc822.eml", "2.1.MIME", "Content-Type: text/plain\r\n\r\n" },
		{ "rfc822.eml", "2.2.MIME", "Content-Type: text/html\r\n\r\n" },
		{ "rfc822.eml", "HEADER.FIELDS (From Subject)",
		  "From: fwd@example.org\r\nSubject: Fwd: original\r\n\r\n" },
		{ "rfc822.eml", "HEADER.FIELDS (X-None)", "\r\n" },
		{ "rfc822.eml", "1.MIME", "Content-Type: text/plain\r\n\r\n" },
		{ "rfc822.eml", "1", "see attached" },
		{ "rfc822.eml", "2.TEXT",
		  "--x\r\nContent-Type: text/plain\r\n\r\norig text\r\n--x\r\n"
		  "Content-Type: text/html\r\n\r\n<p>orig</p>\r\n--x--\r\n" },
		{ "rfc822.eml", "2.MIME", "Content-Type: message/rfc822\r\n\r\n" },
		{ "rfc822.eml", "2.HEADER.FIELDS.NOT (from to date message-id mime-version "
				"content-type)", "Subject: original\r\n\r\n" },
		{ "rfc822.eml", "1.1", NULL },
		{ "rfc822.eml", "2.1.1", NULL },
		{ "rfc822.eml", "3", NULL },
		{ "rfc822.eml", "1.HEADER", NULL },
		{ "rfc822.eml", "1.TEXT", NULL },
		{ "simple.eml", "1", "Hello Bob,\r\n\r\nlunch at noon?\r\n" },
		{ "simple.eml", "TEXT", "Hello Bob,\r\n\r\nlunch at noon?\r\n" },
		{ "simple.eml", "HEADER.FIELDS.NOT (FROM RETURN-PATH DATE MESSAGE-ID)",
		  "Subject: Lunch\r\nTo: bob@example.com\r\nMIME-Version: 1.0\r\n"
		  "Content-Type: text/plain; charset=us-ascii\r\n\r\n" },
		{ "simple.eml", "2", NULL },
		{ "global.eml", "1.HEADER", "From: =?utf-8?q?x?= <x@example.org>\r\n"
					    "Subject: inner global\r\n\r\n" },
		{ "global.eml", "1.1", "inner body\r\n" },
		{ "nested.eml", "1.2", "<b>html body</b>" },
		{ "nested.eml", "3", "begin 644 x.png\r\nend" },
		{ "nested.eml", "1.3", NULL },
		{ "bare_lf.eml", "HEADER.FIELDS (Subject)", "Subject: bare LF\n\r\n" },
		{ "oddities.eml", "3.1.HEADER", "Subject: digest one\r\n\r\n" },
		{ "oddities.eml", "3.1.1", "first digest message" },
		{ "oddities.eml", "HEADER.FIELDS (subject)",
		  "Subject:\tfolded\r\n\tsubject line\r\n\r\n" },
		{ "bare_lf.eml", "1.MIME", "Content-Type: text/plain\n\n" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t len;
		char *msg = load(cases[i].file, &len);
		struct mf_mime_message m;
		struct mf_imap_section sec;
		struct mf_imap_section_data d;
		const char *error;
		mf_mime_parse(msg, len, &m);
		assert_int_equal(mf_imap_section_parse(cases[i].section, strlen(cases[i].section),
						       false, &sec, &error), 0);
		int r = mf_imap_section_fetch(&m, &sec, &d, &error);
		if (cases[i].data == NULL) {
			if (r != -1)
				fail_msg("case %zu: %s[%s] found", i, cases[i].file, cases[i].section);
		} else {
			if (r != 0)
				fail_msg("case %zu: %s", i, error);
			if (d.len != strlen(cases[i].data) || memcmp(d.data, cases[i].data, d.len) != 0)
				fail_msg("case %zu: %s[%s]: got '%.*s'", i, cases[i].file,
					 cases[i].section, (int)d.len, d.data);
			if (d.owned == NULL)
				assert_ptr_equal(d.data, msg + d.offset);
			mf_imap_section_data_free(&d);
		}
		mf_imap_section_free(&sec);
		mf_mime_message_free(&m);
		free(msg);
	}
}

static void test_whole_message(void **state)
{
	size_t len;
	char *msg = load("simple.eml", &len);
	struct mf_mime_message m;
	struct mf_imap_section sec;
	struct mf_imap_section_data d;
	const char *error;
	bool unknown;

	mf_mime_parse(msg, len, &m);
	assert_int_equal(mf_imap_section_parse("", 0, false, &sec, &error), 0);
	assert_int_equal(mf_imap_section_fetch(&m, &sec, &d, &error), 0);
	assert_int_equal(d.offset, 0);
	assert_int_equal(d.len, len);
	assert_null(d.owned);
	assert_int_equal(mf_imap_section_binary(&m, &sec, &d, &unknown, &error), 0);
	assert_int_equal(d.len, len);
	mf_imap_section_free(&sec);
	assert_int_equal(mf_imap_section_parse("HEADER", 6, false, &sec, &error), 0);
	assert_int_equal(mf_imap_section_fetch(&m, &sec, &d, &error), 0);
	assert_int_equal(d.len, m.root->body_start);
	assert_memory_equal(d.data + d.len - 4, "\r\n\r\n", 4);
	mf_imap_section_free(&sec);
	mf_mime_message_free(&m);
	free(msg);
}

static void test_binary(void **state)
{
	static const struct {
		const char *file;
		const char *section;
		const char *data; /* NULL: error */
		bool unknown_cte;
	} cases[] = {
		{ "alternative.eml", "1", "Caf\xc3\xa9 at 5? Soft break.", false },
		{ "alternative.eml", "2", "<p>Cafe at 5?</p>", false },
		{ "rfc2231.eml", "1", "hello world", false },
		{ "nested.eml", "3", NULL, true },
		{ "nested.eml", "4", NULL, false },
		{ "eightbit.eml", "1", "Gr\xc3\xbc\xc3\x9f" "e\r\n", false },
		{ "oddities.eml", "1", "<p>caf\xe9</p>", false },
		{ "oddities.eml", "2", "%PDF-", false },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t len;
		char *msg = load(cases[i].file, &len);
		struct mf_mime_message m;
		struct mf_imap_section sec;
		struct mf_imap_section_data d;
		const char *error;
		bool unknown;
		mf_mime_parse(msg, len, &m);
		assert_int_equal(mf_imap_section_parse(cases[i].section, strlen(cases[i].section),
						       true, &sec, &error), 0);
		int r = mf_imap_section_binary(&m, &sec, &d, &unknown, &error);
		assert_int_equal(unknown, cases[i].unknown_cte);
		if (cases[i].data == NULL) {
			assert_int_equal(r, -1);
		} else {
			assert_int_equal(r, 0);
			if (d.len != strlen(cases[i].data) || memcmp(d.data, cases[i].data, d.len) != 0)
				fail_msg("case %zu: got '%.*s'", i, (int)d.len, d.data);
			mf_imap_section_data_free(&d);
		}
		mf_imap_section_free(&sec);
		mf_mime_message_free(&m);
		free(msg);
	}
}

static void test_part_find(void **state)
{
	size_t len;
	char *msg = load("rfc822.eml", &len);
	struct mf_mime_message m;
	unsigned p[3];

	mf_mime_parse(msg, len, &m);
	assert_ptr_equal(mf_imap_part_find(&m, p, 0), m.root);
	p[0] = 2;
	const struct mf_mime_part *two = mf_imap_part_find(&m, p, 1);
	assert_true(two != NULL && two->message);
	p[1] = 2;
	const struct mf_mime_part *html = mf_imap_part_find(&m, p, 2);
	assert_string_equal(html->subtype, "html");
	assert_ptr_equal(html->parent->parent, two);
	p[0] = 0;
	assert_null(mf_imap_part_find(&m, p, 1));
	mf_mime_message_free(&m);
	free(msg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_strings),
		cmocka_unit_test(test_structures),
		cmocka_unit_test(test_utf8_session),
		cmocka_unit_test(test_global_rev2),
		cmocka_unit_test(test_envelope_defaults),
		cmocka_unit_test(test_section_parse),
		cmocka_unit_test(test_section_fetch),
		cmocka_unit_test(test_whole_message),
		cmocka_unit_test(test_binary),
		cmocka_unit_test(test_part_find),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
