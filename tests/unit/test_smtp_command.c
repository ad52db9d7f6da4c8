/* Unit tests for libshared/smtp_command and smtp_reply: table-driven, with
 * the exact reply lines the parser produces. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "smtp_command.h"
#include "smtp_reply.h"

static void test_split(void **state)
{
	struct smtp_command c;
	const char *err;

	assert_int_equal(smtp_command_split("mail FROM:<a@b>", 15, &c, &err), 0);
	assert_int_equal(c.verb, SMTP_VERB_MAIL);
	assert_int_equal(c.args_len, 10);
	assert_memory_equal(c.args, "FROM:<a@b>", 10);
	assert_int_equal(smtp_command_split("QUIT", 4, &c, &err), 0);
	assert_int_equal(c.verb, SMTP_VERB_QUIT);
	assert_int_equal(c.args_len, 0);
	assert_int_equal(smtp_command_split("StartTLS", 8, &c, &err), 0);
	assert_int_equal(c.verb, SMTP_VERB_STARTTLS);
	assert_int_equal(smtp_command_split("XYZZY 1", 7, &c, &err), 0);
	assert_int_equal(c.verb, SMTP_VERB_UNKNOWN);
	assert_int_equal(smtp_command_split("", 0, &c, &err), -1);
	assert_string_equal(err, "500 5.5.2 empty command");
	assert_int_equal(smtp_command_split("NO\0OP", 5, &c, &err), -1);
	assert_string_equal(err, "500 5.5.2 NUL character in command");
	assert_string_equal(smtp_verb_name(SMTP_VERB_BDAT), "BDAT");
}

struct mail_case {
	const char *in;
	const char *error;       /* NULL: parses */
	const char *localpart;   /* NULL: null sender */
	const char *domain;
	uint64_t size;
	enum smtp_body body;
	bool smtputf8, requiretls;
	enum smtp_ret ret;
	const char *envid;
};

static const struct mail_case mail_cases[] = {
	{ "FROM:<a@example.com>", NULL, "a", "example.com", 0, 0, false, false, 0, NULL },
	{ "from:<A@Example.COM>", NULL, "A", "example.com", 0, 0, false, false, 0, NULL },
	{ "FROM: <a@example.com>", NULL, "a", "example.com", 0, 0, false, false, 0, NULL },
	{ "FROM:<>", NULL, NULL, NULL, 0, 0, false, false, 0, NULL },
	{ "FROM:<@relay.example,@r2.example:a@example.com>", NULL, "a", "example.com", 0, 0,
	  false, false, 0, NULL },
	{ "FROM:<\"a b>c\"@example.com> SIZE=1000", NULL, "a b>c", "example.com", 1000, 0,
	  false, false, 0, NULL },
	{ "FROM:<a@example.com> SIZE=12345 BODY=8BITMIME", NULL, "a", "example.com", 12345,
	  SMTP_BODY_8BITMIME, false, false, 0, NULL },
	{ "FROM:<a@example.com> body=binarymime", NULL, "a", "example.com", 0,
	  SMTP_BODY_BINARYMIME, false, false, 0, NULL },
	{ "FROM:<jöe@bücher.example> SMTPUTF8", NULL, "jöe", "xn--bcher-kva.example", 0, 0,
	  true, false, 0, NULL },
	{ "FROM:<a@example.com> REQUIRETLS RET=HDRS ENVID=QQ+2B314", NULL, "a", "example.com",
	  0, 0, false, true, SMTP_RET_HDRS, "QQ+314" },
	{ "FROM:<a@example.com>  RET=FULL", NULL, "a", "example.com", 0, 0, false, false,
	  SMTP_RET_FULL, NULL },
	/* errors */
	{ .in = "FROM:a@example.com", .error = "501 5.5.4 bad MAIL syntax: expected <address>" },
	{ .in = "FROM:<a@example.com", .error = "501 5.5.4 bad MAIL syntax: expected <address>" },
	{ .in = "TO:<a@example.com>", .error = "501 5.5.4 bad MAIL syntax: expected FROM:" },
	{ .in = "FROM:<a@example.com>x", .error = "501 5.5.4 bad MAIL syntax: text after the path" },
	{ .in = "FROM:<@relay.example>", .error = "501 5.5.4 bad MAIL syntax: bad source route" },
	{ .in = "FROM:<a@example.com> SIZE=abc", .error = "501 5.5.4 bad SIZE value" },
	{ .in = "FROM:<a@example.com> SIZE=99999999999999999999999", .error = "501 5.5.4 bad SIZE value" },
	{ .in = "FROM:<a@example.com> SIZE", .error = "501 5.5.4 bad SIZE value" },
	{ .in = "FROM:<a@example.com> BODY=9BIT", .error = "501 5.5.4 bad BODY value" },
	{ .in = "FROM:<a@example.com> SMTPUTF8=yes", .error = "501 5.5.4 SMTPUTF8 takes no value" },
	{ .in = "FROM:<a@example.com> REQUIRETLS=1", .error = "501 5.5.4 REQUIRETLS takes no value" },
	{ .in = "FROM:<a@example.com> RET=ALL", .error = "501 5.5.4 bad RET value" },
	{ .in = "FROM:<a@example.com> ENVID=a+zz", .error = "501 5.5.4 bad ENVID value" },
	{ .in = "FROM:<a@example.com> ENVID=a=b", .error = "501 5.5.4 bad ENVID value" },
	{ .in = "FROM:<a@example.com> ENVID=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", .error = "501 5.5.4 ENVID too long" },
	{ .in = "FROM:<a@example.com> SIZE=1 SIZE=2", .error = "501 5.5.4 parameter given twice" },
	{ .in = "FROM:<a@example.com> -X=1", .error = "501 5.5.4 bad parameter name" },
	{ .in = "FROM:<a@example.com> =1", .error = "501 5.5.4 empty parameter name" },
	{ .in = "FROM:<a@example.com> XFOO=1", .error = "555 5.5.4 unsupported MAIL parameter XFOO" },
	{ .in = "FROM:<a@example.com> AUTH=<>", .error = "555 5.5.4 unsupported MAIL parameter AUTH" },
	{ .in = "FROM:<a@> ", .error = "553 5.1.7 bad sender address: empty domain" },
	{ .in = "FROM:<jöe@bücher.example>", .error = "553 5.6.7 non-ASCII sender address needs SMTPUTF8" },
	{ .in = "FROM:<a@example.com> A B C D E F G H I J K L M N O P Q", .error = "501 5.5.4 too many parameters" },
};

static void test_mail(void **state)
{
	for (size_t i = 0; i < sizeof(mail_cases) / sizeof(mail_cases[0]); i++) {
		const struct mail_case *c = &mail_cases[i];
		struct smtp_mail m;
		const char *err = NULL;
		int r = smtp_parse_mail(c->in, strlen(c->in), &m, &err);
		if (c->error != NULL) {
			if (r != -1 || strcmp(err, c->error) != 0)
				fail_msg("case %zu %s: got %d %s", i, c->in, r, r < 0 ? err : "");
			continue;
		}
		if (r != 0)
			fail_msg("case %zu %s: %s", i, c->in, err);
		if (c->localpart == NULL) {
			assert_true(m.null_sender);
		} else {
			assert_false(m.null_sender);
			assert_string_equal(m.from.localpart, c->localpart);
			assert_string_equal(m.from.domain, c->domain);
		}
		assert_int_equal(m.size, c->size);
		assert_int_equal(m.has_size, c->size != 0);
		assert_int_equal(m.body, c->body);
		assert_int_equal(m.smtputf8, c->smtputf8);
		assert_int_equal(m.requiretls, c->requiretls);
		assert_int_equal(m.ret, c->ret);
		if (c->envid == NULL)
			assert_null(m.envid);
		else
			assert_string_equal(m.envid, c->envid);
		smtp_mail_free(&m);
	}
}

struct rcpt_case {
	const char *in;
	bool smtputf8;
	const char *error;
	const char *localpart, *domain;
	unsigned notify;
	const char *orcpt_type, *orcpt;
};

static const struct rcpt_case rcpt_cases[] = {
	{ "TO:<b@example.org>", false, NULL, "b", "example.org", 0, NULL, NULL },
	{ "to:<Postmaster>", false, NULL, "postmaster", "", 0, NULL, NULL },
	{ "TO:<b@example.org> NOTIFY=SUCCESS,FAILURE,DELAY", false, NULL, "b", "example.org",
	  SMTP_NOTIFY_SUCCESS | SMTP_NOTIFY_FAILURE | SMTP_NOTIFY_DELAY, NULL, NULL },
	{ "TO:<b@example.org> NOTIFY=never", false, NULL, "b", "example.org", SMTP_NOTIFY_NEVER,
	  NULL, NULL },
	{ "TO:<b@example.org> ORCPT=rfc822;b+40example.org", false, NULL, "b", "example.org", 0,
	  "rfc822", "b@example.org" },
	{ "TO:<b@example.org> ORCPT=UTF-8;j\\x{F6}e@example.org", false, NULL, "b",
	  "example.org", 0, "utf-8", "jöe@example.org" },
	{ "TO:<b@example.org> ORCPT=utf-8;jöe@example.org", true, NULL, "b", "example.org", 0,
	  "utf-8", "jöe@example.org" },
	{ "TO:<用户@例子.广告>", true, NULL, "用户", "xn--fsqu00a.xn--4rr70v", 0, NULL, NULL },
	/* errors */
	{ .in = "TO:<>", .smtputf8 = false, .error = "501 5.1.3 empty recipient address" },
	{ .in = "TO:b@example.org", .smtputf8 = false, .error = "501 5.5.4 bad RCPT syntax: expected <address>" },
	{ .in = "FROM:<b@example.org>", .smtputf8 = false, .error = "501 5.5.4 bad RCPT syntax: expected TO:" },
	{ .in = "TO:<b@example.org> NOTIFY=NEVER,SUCCESS", .smtputf8 = false, .error = "501 5.5.4 bad NOTIFY value" },
	{ .in = "TO:<b@example.org> NOTIFY=SUCCESS,SUCCESS", .smtputf8 = false, .error = "501 5.5.4 bad NOTIFY value" },
	{ .in = "TO:<b@example.org> NOTIFY=", .smtputf8 = false, .error = "501 5.5.4 bad NOTIFY value" },
	{ .in = "TO:<b@example.org> NOTIFY=SOMETIMES", .smtputf8 = false, .error = "501 5.5.4 bad NOTIFY value" },
	{ .in = "TO:<b@example.org> ORCPT=b@example.org", .smtputf8 = false, .error = "501 5.5.4 bad ORCPT value" },
	{ .in = "TO:<b@example.org> ORCPT=;b@example.org", .smtputf8 = false, .error = "501 5.5.4 bad ORCPT value" },
	{ .in = "TO:<b@example.org> ORCPT=rfc822;b+4", .smtputf8 = false, .error = "501 5.5.4 bad ORCPT value" },
	{ .in = "TO:<b@example.org> ORCPT=utf-8;jöe@example.org", .smtputf8 = false, .error = "501 5.5.4 bad ORCPT value" },
	{ .in = "TO:<b@example.org> ORCPT=utf-8;\\x{D800}", .smtputf8 = false, .error = "501 5.5.4 bad ORCPT value" },
	{ .in = "TO:<b@example.org> ORCPT=utf-8;\\x{0}", .smtputf8 = false, .error = "501 5.5.4 bad ORCPT value" },
	{ .in = "TO:<b@example.org> FOO", .smtputf8 = false, .error = "555 5.5.4 unsupported RCPT parameter FOO" },
	{ .in = "TO:<b@@example.org>", .smtputf8 = false, .error = "553 5.1.3 bad recipient address: invalid character 0x40 in domain" },
	{ .in = "TO:<用户@例子.广告>", .smtputf8 = false, .error = "553 5.6.7 non-ASCII recipient address needs SMTPUTF8" },
};

static void test_rcpt(void **state)
{
	for (size_t i = 0; i < sizeof(rcpt_cases) / sizeof(rcpt_cases[0]); i++) {
		const struct rcpt_case *c = &rcpt_cases[i];
		struct smtp_rcpt r;
		const char *err = NULL;
		int ret = smtp_parse_rcpt(c->in, strlen(c->in), c->smtputf8, &r, &err);
		if (c->error != NULL) {
			if (ret != -1 || strncmp(err, c->error, strlen(c->error)) != 0)
				fail_msg("case %zu %s: got %d %s", i, c->in, ret, ret < 0 ? err : "");
			continue;
		}
		if (ret != 0)
			fail_msg("case %zu %s: %s", i, c->in, err);
		assert_string_equal(r.to.localpart, c->localpart);
		assert_string_equal(r.to.domain, c->domain);
		assert_int_equal(r.notify, c->notify);
		if (c->orcpt == NULL) {
			assert_null(r.orcpt);
		} else {
			assert_string_equal(r.orcpt_type, c->orcpt_type);
			assert_string_equal(r.orcpt, c->orcpt);
		}
		smtp_rcpt_free(&r);
	}
}

static void test_xtext(void **state)
{
	char *out;
	const char *err;

	assert_int_equal(smtp_xtext_decode("a+2Bb+3Dc", 9, &out, &err), 0);
	assert_string_equal(out, "a+b=c");
	free(out);
	assert_int_equal(smtp_xtext_decode("+2b", 3, &out, &err), 0);  /* lower case too */
	assert_string_equal(out, "+");
	free(out);
	assert_int_equal(smtp_xtext_decode("a+2", 3, &out, &err), -1);
	assert_int_equal(smtp_xtext_decode("a+00", 4, &out, &err), -1);
	assert_int_equal(smtp_xtext_decode("a b", 3, &out, &err), -1);
	assert_int_equal(smtp_utf8_xtext_decode("\\x{1F600}", 9, false, &out, &err), 0);
	assert_string_equal(out, "\xf0\x9f\x98\x80");
	free(out);
	assert_int_equal(smtp_utf8_xtext_decode("\\x{110000}", 10, false, &out, &err), -1);
	assert_int_equal(smtp_utf8_xtext_decode("\\x{4}", 5, false, &out, &err), -1);
	assert_int_equal(smtp_utf8_xtext_decode("\\x{41", 5, false, &out, &err), -1);
	assert_int_equal(smtp_utf8_xtext_decode("a+b", 3, false, &out, &err), -1);
	assert_int_equal(smtp_utf8_xtext_decode("\xc3\x28", 2, true, &out, &err), -1);
	assert_int_equal(smtp_utf8_xtext_decode("\xed\xa0\x80", 3, true, &out, &err), -1);
}

static void test_bdat_parse(void **state)
{
	uint64_t size;
	bool last;
	const char *err;

	assert_int_equal(smtp_parse_bdat("100", 3, &size, &last, &err), 0);
	assert_int_equal(size, 100);
	assert_false(last);
	assert_int_equal(smtp_parse_bdat("0 LAST", 6, &size, &last, &err), 0);
	assert_int_equal(size, 0);
	assert_true(last);
	assert_int_equal(smtp_parse_bdat("10 last", 7, &size, &last, &err), 0);
	assert_true(last);
	assert_int_equal(smtp_parse_bdat("", 0, &size, &last, &err), -1);
	assert_string_equal(err, "501 5.5.4 bad BDAT syntax: expected BDAT <size> [LAST]");
	assert_int_equal(smtp_parse_bdat("-1", 2, &size, &last, &err), -1);
	assert_int_equal(smtp_parse_bdat("10 LATER", 8, &size, &last, &err), -1);
	assert_int_equal(smtp_parse_bdat("10  LAST", 8, &size, &last, &err), -1);
	assert_int_equal(smtp_parse_bdat("18446744073709551616", 20, &size, &last, &err), -1);
}

static void test_reply(void **state)
{
	struct mf_buf b;
	unsigned code;
	const char *enh, *text;

	mf_buf_init(&b, 0);
	assert_int_equal(smtp_reply_append(&b, 250, "2.1.0", "sender ok"), 0);
	assert_string_equal(mf_buf_cstr(&b), "250 2.1.0 sender ok\r\n");
	mf_buf_reset(&b);
	assert_int_equal(smtp_reply_append(&b, 250, NULL, "mx.example\nPIPELINING\nSIZE 10"), 0);
	assert_string_equal(mf_buf_cstr(&b), "250-mx.example\r\n250-PIPELINING\r\n250 SIZE 10\r\n");
	mf_buf_reset(&b);
	assert_int_equal(smtp_reply_append(&b, 550, "5.1.1", "two\nlines"), 0);
	assert_string_equal(mf_buf_cstr(&b), "550-5.1.1 two\r\n550 5.1.1 lines\r\n");
	mf_buf_reset(&b);
	/* control characters from client input never break the reply */
	assert_int_equal(smtp_reply_appendf(&b, 550, "5.1.1", "no %s", "a\rb\x01"), 0);
	assert_string_equal(mf_buf_cstr(&b), "550 5.1.1 no a?b?\r\n");
	mf_buf_reset(&b);
	/* long text is cut at 512 octets per line including CRLF */
	char big[2000];
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(smtp_reply_append(&b, 250, "2.0.0", big), 0);
	assert_int_equal(b.len, SMTP_REPLY_LINE_MAX);
	assert_memory_equal(b.data + b.len - 2, "\r\n", 2);
	mf_buf_free(&b);

	assert_int_equal(smtp_reply_split("550 5.1.1 no such user", &code, &enh, &text), 0);
	assert_int_equal(code, 550);
	assert_string_equal(enh, "5.1.1");
	assert_string_equal(text, "no such user");
	assert_int_equal(smtp_reply_split("220 hello there", &code, &enh, &text), 0);
	assert_string_equal(enh, "");
	assert_string_equal(text, "hello there");
	assert_int_equal(smtp_reply_split("5x0 bad", &code, &enh, &text), -1);
	assert_int_equal(smtp_reply_split("55", &code, &enh, &text), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_split),
		cmocka_unit_test(test_mail),
		cmocka_unit_test(test_rcpt),
		cmocka_unit_test(test_xtext),
		cmocka_unit_test(test_bdat_parse),
		cmocka_unit_test(test_reply),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
