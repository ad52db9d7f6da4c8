/* test_mime_header: header fields, RFC 2047 words, RFC 2231 parameters and
 * RFC 5322 address lists. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mime_header.h"

static void test_fields(void **state)
{
	const char *h = "Subject: one\r\n"
			"To: a@example.org,\r\n"
			"\tb@example.org\r\n"
			"junk line without colon\r\n"
			" orphan continuation\r\n"
			"X-Obs : spaced name\r\n"
			"Bad Name: skipped\r\n"
			"Empty:\r\n"
			"Last: no line end";
	struct mf_mime_header_iter it;
	struct mf_mime_field f;
	static const char *const names[] = { "Subject", "To", "X-Obs", "Empty", "Last" };
	static const char *const values[] = { " one", " a@example.org,\r\n\tb@example.org",
					      " spaced name", "", " no line end" };
	size_t n = 0;

	mf_mime_header_iter_init(&it, h, 0, strlen(h));
	while (mf_mime_header_next(&it, &f)) {
		assert_true(n < 5);
		assert_int_equal(f.name_len, strlen(names[n]));
		assert_memory_equal(f.name, names[n], f.name_len);
		assert_int_equal(f.value_len, strlen(values[n]));
		assert_memory_equal(f.value, values[n], f.value_len);
		assert_true(mf_mime_field_is(&f, names[n]));
		assert_true(f.start < f.end && f.end <= strlen(h));
		n++;
	}
	assert_int_equal(n, 5);
	/* the raw range of "To" includes its continuation and line end */
	mf_mime_header_iter_init(&it, h, 0, strlen(h));
	assert_true(mf_mime_header_next(&it, &f));
	assert_true(mf_mime_header_next(&it, &f));
	assert_int_equal(f.start, 14);
	assert_int_equal(f.end, 14 + strlen("To: a@example.org,\r\n\tb@example.org\r\n"));
}

static void test_field_limit(void **state)
{
	size_t count = MF_MIME_HEADER_FIELDS_MAX + 50, n = 0;
	char *h = mf_xmalloc(count * 8 + 1);
	struct mf_mime_header_iter it;
	struct mf_mime_field f;

	for (size_t i = 0; i < count; i++)
		memcpy(h + i * 8, "X: abc\r\n", 8);
	h[count * 8] = '\0';
	mf_mime_header_iter_init(&it, h, 0, count * 8);
	while (mf_mime_header_next(&it, &f))
		n++;
	assert_int_equal(n, MF_MIME_HEADER_FIELDS_MAX);
	free(h);
}

static void test_unfold(void **state)
{
	char *s = mf_mime_header_unfold(" a\r\n b\r\n\tc  ", 12);
	assert_string_equal(s, "a b\tc");
	free(s);
}

static void test_decode_words(void **state)
{
	static const struct {
		const char *in;
		const char *out;
	} cases[] = {
		{ "plain text", "plain text" },
		{ "=?ISO-8859-1?Q?Keld_J=F8rn_Simonsen?=", "Keld J\xc3\xb8rn Simonsen" },
		{ "=?UTF-8?B?5pel5pys6Kqe?=", "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e" },
		/* a 4-byte character split over two words */
		{ "=?UTF-8?B?8J+Y?= =?UTF-8?B?gA==?=", "\xf0\x9f\x98\x80" },
		/* white space between adjacent words is dropped (RFC 2047 6.2) */
		{ "=?utf-8?q?adjacent?=   =?utf-8?q?_words?= end", "adjacent words end" },
		{ "=?utf-8?q?a?=\r\n =?utf-8?q?b?=", "ab" },
		{ "=?ISO-8859-1?Q?a?= =?UTF-8?Q?=C3=A9?=", "a\xc3\xa9" },
		/* but kept between a word and text */
		{ "a =?utf-8?q?b?= c", "a b c" },
		{ "(=?ISO-8859-1?Q?a?= b)", "(a b)" },
		/* unknown charset: shown as written */
		{ "=?x-unknown?q?caf=E9?= x", "=?x-unknown?q?caf=E9?= x" },
		/* RFC 2231 language in an encoded word */
		{ "=?utf-8*en?q?hi?=", "hi" },
		{ "=?iso-2022-jp?B?GyRCJDMkcxsoQg==?=", "\xe3\x81\x93\xe3\x82\x93" },
		/* not encoded words */
		{ "=?utf-8?b?unterminated", "=?utf-8?b?unterminated" },
		{ "=?utf-8?x?bad?=", "=?utf-8?x?bad?=" },
		{ "=??q?nocharset?=", "=??q?nocharset?=" },
		/* tolerated: a word glued to text */
		{ "foo=?utf-8?q?x?=bar", "fooxbar" },
		/* invalid escapes kept, base64 junk skipped */
		{ "=?utf-8?q?a=ZZb?=", "a=ZZb" },
		{ "=?utf-8?b?YW*Jj?=", "abc" },
		/* 8-bit text: UTF-8 when valid, else Latin-1 */
		{ "Gr\xc3\xbc\xc3\x9f" "e", "Gr\xc3\xbc\xc3\x9f" "e" },
		{ "Ren\xe9", "Ren\xc3\xa9" },
		{ "  folded\r\n  value  ", "folded  value" },
		{ "", "" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *s = mf_mime_header_decode(cases[i].in, strlen(cases[i].in));
		if (strcmp(s, cases[i].out) != 0)
			fail_msg("case %zu: %s: got '%s' want '%s'", i, cases[i].in, s, cases[i].out);
		free(s);
	}
}

/* "name=value;..." with "*" after extended names */
static char *params_str(const struct mf_mime_params *p)
{
	struct mf_buf b;

	mf_buf_init(&b, 0);
	for (size_t i = 0; i < p->count; i++)
		mf_buf_appendf(&b, "%s%s%s=%s", i ? ";" : "", p->list[i].name,
			       p->list[i].extended ? "*" : "", p->list[i].value);
	char *r = mf_xstrdup(mf_buf_cstr(&b));
	mf_buf_free(&b);
	return r;
}

static void test_content_type(void **state)
{
	static const struct {
		const char *in;
		int ret;
		const char *type, *subtype, *params;
	} cases[] = {
		{ "text/plain; charset=us-ascii (Plain text)", 0, "text", "plain",
		  "charset=us-ascii" },
		{ "TEXT/HTML ; CHARSET=\"UTF-8\"", 0, "text", "html", "charset=UTF-8" },
		{ " multipart/mixed;\r\n boundary=\"a;b \\\"q\\\"\"", 0, "multipart", "mixed",
		  "boundary=a;b \"q\"" },
		{ "(comment) text (c) / (c) plain", 0, "text", "plain", "" },
		/* RFC 2231 section 4 and 4.1 examples */
		{ "application/x-stuff; title*=us-ascii'en-us'This%20is%20%2A%2A%2Afun%2A%2A%2A",
		  0, "application", "x-stuff", "title*=This is ***fun***" },
		{ "application/x-stuff;\r\n title*0*=us-ascii'en'This%20is%20even%20more%20;\r\n"
		  " title*1*=%2A%2A%2Afun%2A%2A%2A%20;\r\n title*2=\"isn't it!\"",
		  0, "application", "x-stuff", "title*=This is even more ***fun*** isn't it!" },
		/* RFC 2231 section 3: continuations without charset */
		{ "message/external-body; access-type=URL;\r\n URL*0=\"ftp://\";\r\n"
		  " URL*1=\"cs.utk.edu/pub/moore/bulk-mailer/bulk-mailer.tar\"",
		  0, "message", "external-body",
		  "access-type=URL;url=ftp://cs.utk.edu/pub/moore/bulk-mailer/bulk-mailer.tar" },
		/* sections out of order, a charset converted */
		{ "a/b; n*1=\"b\"; n*0=\"a\"", 0, "a", "b", "n=ab" },
		{ "a/b; name*=iso-8859-1''caf%E9", 0, "a", "b", "name*=caf\xc3\xa9" },
		{ "a/b; name*=x-unknown''caf%E9", 0, "a", "b", "name*=caf\xc3\xa9" },
		/* the RFC 2231 form wins over the plain one */
		{ "a/b; name=\"plain\"; name*=utf-8''ext", 0, "a", "b", "name*=ext" },
		/* first of duplicates; unquoted value with spaces; junk */
		{ "a/b; c=1; c=2; name=foo bar.txt; novalue; =x", 0, "a", "b",
		  "c=1;name=foo bar.txt" },
		{ "garbage", -1, NULL, NULL, "" },
		{ "text/; x=1", -1, NULL, NULL, "x=1" },
		{ "text/plain junk", -1, NULL, NULL, "" },
		{ "", -1, NULL, NULL, "" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *type, *subtype;
		struct mf_mime_params params;
		int r = mf_mime_content_type_parse(cases[i].in, strlen(cases[i].in), &type,
						   &subtype, &params);
		char *ps = params_str(&params);
		if (r != cases[i].ret || strcmp(ps, cases[i].params) != 0)
			fail_msg("case %zu: ret %d params '%s'", i, r, ps);
		if (r == 0) {
			assert_string_equal(type, cases[i].type);
			assert_string_equal(subtype, cases[i].subtype);
		} else {
			assert_null(type);
			assert_null(subtype);
		}
		free(ps);
		free(type);
		free(subtype);
		mf_mime_params_free(&params);
	}
}

static void test_disposition_language(void **state)
{
	char *type;
	struct mf_mime_params params;
	const char *v = "Attachment; filename=\"x.pdf\";\r\n size=123";
	char **langs;
	size_t n;

	mf_mime_disposition_parse(v, strlen(v), &type, &params);
	assert_string_equal(type, "attachment");
	assert_string_equal(mf_mime_params_get(&params, "filename"), "x.pdf");
	assert_string_equal(mf_mime_params_get(&params, "size"), "123");
	assert_null(mf_mime_params_get(&params, "other"));
	free(type);
	mf_mime_params_free(&params);
	mf_mime_disposition_parse("", 0, &type, &params);
	assert_null(type);
	assert_int_equal(params.count, 0);

	mf_mime_language_parse(" en, de (German) ,, fr-CA", 25, &langs, &n);
	assert_int_equal(n, 3);
	assert_string_equal(langs[0], "en");
	assert_string_equal(langs[1], "de");
	assert_string_equal(langs[2], "fr-CA");
	for (size_t i = 0; i < n; i++)
		free(langs[i]);
	free(langs);
}

/* Addresses as "name|route|mailbox|domain" joined by ";", with group
 * markers "G:name" and "E"; NULL shows as "-". */
static char *addresses_str(const struct mf_mime_address_list *l)
{
	struct mf_buf b;

	mf_buf_init(&b, 0);
	for (size_t i = 0; i < l->count; i++) {
		const struct mf_mime_address *a = &l->list[i];
		if (i > 0)
			mf_buf_append_str(&b, ";");
		if (a->kind == MF_MIME_ADDRESS_GROUP_START)
			mf_buf_appendf(&b, "G:%s", a->mailbox);
		else if (a->kind == MF_MIME_ADDRESS_GROUP_END)
			mf_buf_append_str(&b, "E");
		else
			mf_buf_appendf(&b, "%s|%s|%s|%s", a->name ? a->name : "-",
				       a->route ? a->route : "-", a->mailbox ? a->mailbox : "-",
				       a->domain ? a->domain : "-");
	}
	char *r = mf_xstrdup(mf_buf_cstr(&b));
	mf_buf_free(&b);
	return r;
}

static void test_address_lists(void **state)
{
	static const struct {
		const char *in;
		const char *out;
	} cases[] = {
		{ "John Doe <jdoe@machine.example>", "John Doe|-|jdoe|machine.example" },
		{ "\"Joe Q. Public\" <john.q.public@example.com>",
		  "Joe Q. Public|-|john.q.public|example.com" },
		{ "Mary Smith <mary@x.test>, jdoe@example.org, Who? <one@y.test>",
		  "Mary Smith|-|mary|x.test;-|-|jdoe|example.org;Who?|-|one|y.test" },
		{ "<boss@nil.test>, \"Giant; \\\"Big\\\" Box\" <sysservices@example.net>",
		  "-|-|boss|nil.test;Giant; \"Big\" Box|-|sysservices|example.net" },
		/* RFC 5322 A.1.3 group syntax */
		{ "A Group:Ed Jones <c@a.test>,joe@where.test,John <jdoe@one.test>;",
		  "G:A Group;Ed Jones|-|c|a.test;-|-|joe|where.test;John|-|jdoe|one.test;E" },
		{ "Undisclosed recipients:;", "G:Undisclosed recipients;E" },
		{ "G: a@b.test", "G:G;-|-|a|b.test;E" },
		/* RFC 5322 A.5 comments */
		{ "Pete(A nice \\) chap) <pete(his account)@silly.test(his host)>",
		  "Pete|-|pete|silly.test" },
		/* obsolete forms (RFC 5322 4.4) */
		{ "John Q. Public <jqp@example.com>", "John Q. Public|-|jqp|example.com" },
		{ "user@example.com (Real Name)", "Real Name|-|user|example.com" },
		{ "<@route1.test,@route2.test:user@example.com>",
		  "-|@route1.test,@route2.test|user|example.com" },
		{ "john . doe @ example . com", "-|-|john.doe|example.com" },
		{ "\"quoted local\"@example.com", "-|-|quoted local|example.com" },
		{ "user@[192.0.2.1]", "-|-|user|[192.0.2.1]" },
		{ "=?utf-8?q?Andr=C3=A9?= Pirard <a@b.test>",
		  "=?utf-8?q?Andr=C3=A9?= Pirard|-|a|b.test" },
		{ "J\xc3\xb6rg <j@x.test>", "J\xc3\xb6rg|-|j|x.test" },
		/* broken input still gives a reading */
		{ "justaname", "-|-|justaname|-" },
		{ "a@b.test, , ,c@d.test", "-|-|a|b.test;-|-|c|d.test" },
		{ "Name <a@b.test", "Name|-|a|b.test" },
		{ "<>", "" },
		{ "", "" },
		{ "   ", "" },
		{ ";;,,>", "" },
		{ "@@@", "-|-|-|-" },
		{ "a:b:c;d;", "G:a;-|-|b|-;-|-|c|-;E;-|-|d|-" },
		{ "\"unterminated <a@b>", "-|-|unterminated <a@b>|-" },
		{ "(unterminated comment a@b", "" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct mf_mime_address_list l;
		mf_mime_address_list_parse(cases[i].in, strlen(cases[i].in), &l);
		char *s = addresses_str(&l);
		if (strcmp(s, cases[i].out) != 0)
			fail_msg("case %zu: %s: got '%s' want '%s'", i, cases[i].in, s, cases[i].out);
		free(s);
		mf_mime_address_list_free(&l);
	}
}

static void test_address_display_name_decoding(void **state)
{
	const char *v = "=?utf-8?q?Andr=C3=A9?= Pirard <a@b.test>";
	struct mf_mime_address_list l;

	mf_mime_address_list_parse(v, strlen(v), &l);
	assert_int_equal(l.count, 1);
	char *name = mf_mime_header_decode(l.list[0].name, strlen(l.list[0].name));
	assert_string_equal(name, "Andr\xc3\xa9 Pirard");
	free(name);
	mf_mime_address_list_free(&l);
}

static void test_address_limit(void **state)
{
	struct mf_buf b;
	struct mf_mime_address_list l;

	mf_buf_init(&b, 0);
	mf_buf_append_str(&b, "g:");
	for (int i = 0; i < MF_MIME_ADDRESSES_MAX + 100; i++)
		mf_buf_appendf(&b, "u%d@example.org,", i);
	mf_mime_address_list_parse(b.data, b.len, &l);
	assert_true(l.count <= MF_MIME_ADDRESSES_MAX);
	assert_true(l.count > MF_MIME_ADDRESSES_MAX - 3);
	/* the open group is still closed */
	assert_int_equal(l.list[l.count - 1].kind, MF_MIME_ADDRESS_GROUP_END);
	mf_mime_address_list_free(&l);
	mf_buf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fields),
		cmocka_unit_test(test_field_limit),
		cmocka_unit_test(test_unfold),
		cmocka_unit_test(test_decode_words),
		cmocka_unit_test(test_content_type),
		cmocka_unit_test(test_disposition_language),
		cmocka_unit_test(test_address_lists),
		cmocka_unit_test(test_address_display_name_decoding),
		cmocka_unit_test(test_address_limit),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
