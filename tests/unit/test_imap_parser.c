/* Unit tests for the IMAP command parser (services/imap/imap_parser.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdlib.h>

#include "buf.h"
#include "services/imap/imap_parser.h"
#include "services/imap/imap_pool.h"

/* Writes args as A:atom Q:quoted L:literal (..) lists. */
static void dump_args(struct mf_buf *b, const struct imap_arg *args, size_t count)
{
	for (size_t i = 0; i < count; i++) {
		const struct imap_arg *a = &args[i];
		if (i > 0)
			mf_buf_append(b, " ", 1);
		switch (a->type) {
		case IMAP_ARG_ATOM: mf_buf_append_str(b, "A:"); break;
		case IMAP_ARG_QUOTED: mf_buf_append_str(b, "Q:"); break;
		case IMAP_ARG_LITERAL: mf_buf_append_str(b, a->binary ? "B:" : "L:"); break;
		case IMAP_ARG_LIST:
			mf_buf_append(b, "(", 1);
			dump_args(b, a->list, a->count);
			mf_buf_append(b, ")", 1);
			continue;
		}
		mf_buf_append(b, a->str, a->len);
	}
}

struct parse_case {
	const char *in;
	const char *want;   /* "tag|NAME|args" or NULL for an error */
	const char *error;  /* exact BAD text */
};

static const struct parse_case cases[] = {
	{ "a1 NOOP", "a1|NOOP|", NULL },
	{ "a1 noop", "a1|NOOP|", NULL },
	{ "a1 NOOP ", "a1|NOOP|", NULL },
	{ "x LOGIN user \"pa ss\"", "x|LOGIN|A:user Q:pa ss", NULL },
	{ "x LOGIN \"a\\\"b\\\\c\" p", "x|LOGIN|Q:a\"b\\c A:p", NULL },
	{ "x LOGIN {4}\r\nuser {2+}\r\npw", "x|LOGIN|L:user L:pw", NULL },
	{ "x APPEND INBOX (\\Seen $Junk) \"01-Jan-2020 10:00:00 +0000\" {5}\r\nhello",
	  "x|APPEND|A:INBOX (A:\\Seen A:$Junk) Q:01-Jan-2020 10:00:00 +0000 L:hello", NULL },
	{ "x APPEND INBOX ~{3}\r\na\0b", "x|APPEND|A:INBOX B:a", NULL },
	{ "x FETCH 1:* (FLAGS BODY.PEEK[HEADER.FIELDS (From To)]<0.100>)",
	  "x|FETCH|A:1:* (A:FLAGS A:BODY.PEEK[HEADER.FIELDS (From To)]<0.100>)", NULL },
	{ "x FETCH 1 BODY[]", "x|FETCH|A:1 A:BODY[]", NULL },
	{ "x SEARCH OR (FROM a) NOT (TO b) UID 1:5", "x|SEARCH|A:OR (A:FROM A:a) A:NOT (A:TO A:b) A:UID A:1:5", NULL },
	{ "x LIST \"\" *", "x|LIST|Q: A:*", NULL },
	{ "x LIST (SUBSCRIBED) \"\" (\"INBOX\" \"%\") RETURN (STATUS (MESSAGES))",
	  "x|LIST|(A:SUBSCRIBED) Q: (Q:INBOX Q:%) A:RETURN (A:STATUS (A:MESSAGES))", NULL },
	{ "x SELECT \"M&AOQ-rz\"", "x|SELECT|Q:M&AOQ-rz", NULL },
	{ "x CREATE \"Gr\xc3\xbc\xc3\x9f""e\"", "x|CREATE|Q:Gr\xc3\xbc\xc3\x9f""e", NULL },
	{ "x STORE 1 +FLAGS.SILENT (\\Deleted)", "x|STORE|A:1 A:+FLAGS.SILENT (A:\\Deleted)", NULL },
	{ "x ID NIL", "x|ID|A:NIL", NULL },
	{ "x UID FETCH 1 ()", "x|UID|A:FETCH A:1 ()", NULL },
	/* errors */
	{ "", NULL, "missing tag" },
	{ "a1", NULL, "missing command" },
	{ "a1 ", NULL, "missing command" },
	{ "a+1 NOOP", NULL, "invalid tag" },
	{ "a*1 NOOP", NULL, "invalid tag" },
	{ "a1 NO-OP", NULL, "invalid command name" },
	{ "a1 LOGIN \"abc", NULL, "unterminated quoted string" },
	{ "a1 LOGIN \"a\\b\"", NULL, "invalid escape in quoted string" },
	{ "a1 LIST (a (b)", NULL, "unbalanced parenthesis" },
	{ "a1 LIST a)", NULL, "missing space between arguments" },
	{ "a1 LIST )", NULL, "unexpected \")\"" },
	{ "a1 LIST a  b", NULL, "invalid character" },
	{ "a1 LOGIN {5}\r\nab", NULL, "literal shorter than announced" },
	{ "a1 LOGIN {x}\r\nab", NULL, "invalid literal" },
	{ "a1 FETCH 1 BODY[HEADER", NULL, "unterminated section" },
	{ "a1 X \x80", NULL, "8-bit character in atom" },
	{ "a1 X a\"b\"", NULL, "missing space between arguments" },
	{ "a1 X ((((((((((((((((((((((((((((((((((x))))))))))))))))))))))))))))))))))", NULL,
	  "list nested too deeply" },
};

static void test_parse_table(void **state)
{
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct imap_pool *pool = imap_pool_create();
		struct imap_command cmd;
		const char *err = NULL;
		const char *in = cases[i].in;
		/* The APPEND ~{3} case holds a NUL: count its bytes. */
		size_t len = strstr(in, "~{3}") != NULL ? strlen(in) + 2 : strlen(in);
		int r = imap_parse_buffer(pool, in, len, &cmd, &err);

		if (cases[i].want == NULL) {
			if (r != -1 || err == NULL || strcmp(err, cases[i].error) != 0)
				fail_msg("case %zu (%s): want error \"%s\", got r=%d \"%s\"", i, in,
					 cases[i].error, r, err != NULL ? err : "");
		} else {
			struct mf_buf b;
			if (r != 0)
				fail_msg("case %zu (%s): unexpected error \"%s\"", i, in, err);
			mf_buf_init(&b, 0);
			mf_buf_appendf(&b, "%s|%s|", cmd.tag, cmd.name);
			dump_args(&b, cmd.args, cmd.count);
			if (strcmp(mf_buf_cstr(&b), cases[i].want) != 0)
				fail_msg("case %zu: want \"%s\", got \"%s\"", i, cases[i].want,
					 mf_buf_cstr(&b));
			mf_buf_free(&b);
		}
		imap_pool_free(&pool);
	}
}

static void test_literal_lines(void **state)
{
	struct imap_parser *p = imap_parser_create();
	struct imap_pool *pool = imap_pool_create();
	struct imap_literal_spec spec;
	struct imap_command cmd;
	const char *err = NULL;
	struct imap_parser_limits lim = { .line_max = 100, .literal_max = 10,
					  .command_max = 1000 };

	imap_parser_set_limits(p, &lim);
	assert_int_equal(imap_parser_line(p, "a LOGIN {4}", 11, &spec, &err), IMAP_PARSE_LITERAL);
	assert_int_equal(spec.size, 4);
	assert_false(spec.nonsync);
	assert_string_equal(imap_parser_tag(p, pool), "a");
	imap_parser_literal(p, "us", 2);
	imap_parser_literal(p, "er", 2);
	assert_int_equal(imap_parser_line(p, " ~{2+}", 6, &spec, &err), IMAP_PARSE_LITERAL);
	assert_true(spec.nonsync);
	assert_true(spec.binary);
	imap_parser_literal(p, "pw", 2);
	assert_int_equal(imap_parser_line(p, "", 0, &spec, &err), IMAP_PARSE_COMPLETE);
	assert_int_equal(imap_parser_finish(p, pool, &cmd, &err), 0);
	imap_parser_reset(p);
	assert_string_equal(cmd.name, "LOGIN");
	assert_int_equal(cmd.count, 2);
	assert_string_equal(cmd.args[0].str, "user");
	assert_true(cmd.args[1].binary);

	/* A "{" inside a quoted string is no literal. */
	assert_int_equal(imap_parser_line(p, "b LOGIN u \"{4}\"", 15, &spec, &err),
			 IMAP_PARSE_COMPLETE);
	assert_int_equal(imap_parser_finish(p, pool, &cmd, &err), 0);
	assert_string_equal(cmd.args[1].str, "{4}");
	imap_parser_reset(p);

	/* Over the literal limit: a synchronising literal is refused... */
	assert_int_equal(imap_parser_line(p, "c APPEND x {11}", 15, &spec, &err), IMAP_PARSE_ERROR);
	assert_string_equal(err, "[TOOBIG] literal too large");
	/* ...a non-synchronising one cannot be: its data follows anyway. */
	assert_int_equal(imap_parser_line(p, "c APPEND x {11+}", 16, &spec, &err), IMAP_PARSE_FATAL);
	assert_int_equal(imap_parser_line(p, "c APPEND x {1a}", 15, &spec, &err), IMAP_PARSE_ERROR);
	assert_string_equal(err, "invalid literal size");
	assert_int_equal(imap_parser_line(p, "c APPEND x {99999999999999999999}", 33, &spec, &err),
			 IMAP_PARSE_ERROR);

	/* LITERAL-: non-synchronising literals up to 4096 bytes. */
	lim.literal_max = 100000;
	lim.command_max = 200000;
	lim.literal_minus = true;
	imap_parser_set_limits(p, &lim);
	assert_int_equal(imap_parser_line(p, "d APPEND x {4097+}", 18, &spec, &err), IMAP_PARSE_FATAL);
	assert_string_equal(err, "[TOOBIG] non-synchronizing literal larger than 4096 bytes");
	assert_int_equal(imap_parser_line(p, "d APPEND x {4097}", 17, &spec, &err), IMAP_PARSE_LITERAL);
	imap_parser_reset(p);

	/* Line and command limits. */
	char line[200];
	memset(line, 'a', sizeof(line));
	memcpy(line, "e X ", 4);
	assert_int_equal(imap_parser_line(p, line, 101, &spec, &err), IMAP_PARSE_ERROR);
	assert_string_equal(err, "line too long");
	lim.command_max = 50;
	imap_parser_set_limits(p, &lim);
	assert_int_equal(imap_parser_line(p, "f X {43}", 8, &spec, &err), IMAP_PARSE_ERROR);
	assert_string_equal(err, "[TOOBIG] literal too large");

	/* A big literal is borrowed from the command's bytes, not copied; it
	 * is no C string. */
	{
		size_t big = IMAP_LITERAL_COPY_MAX + 1;
		char *data = mf_xmalloc(big);
		char hdr[64];
		struct imap_parser_limits biglim = { .line_max = 100, .literal_max = big,
						     .command_max = big + 100 };
		memset(data, 'x', big);
		imap_parser_set_limits(p, &biglim);
		snprintf(hdr, sizeof(hdr), "h APPEND INBOX {%zu}", big);
		assert_int_equal(imap_parser_line(p, hdr, strlen(hdr), &spec, &err), IMAP_PARSE_LITERAL);
		imap_parser_literal(p, data, big);
		assert_int_equal(imap_parser_line(p, "", 0, &spec, &err), IMAP_PARSE_COMPLETE);
		assert_int_equal(imap_parser_finish(p, pool, &cmd, &err), 0);
		assert_true(cmd.args[1].borrowed);
		assert_int_equal(cmd.args[1].len, big);
		assert_memory_equal(cmd.args[1].str, data, big);
		assert_false(imap_arg_is_string(&cmd.args[1]));
		imap_parser_reset(p);
		free(data);
	}
	/* Literals per command. */
	lim.command_max = 100000;
	imap_parser_set_limits(p, &lim);
	assert_int_equal(imap_parser_line(p, "g X {0}", 7, &spec, &err), IMAP_PARSE_LITERAL);
	for (int i = 1; i < IMAP_LITERALS_MAX; i++)
		assert_int_equal(imap_parser_line(p, " {0}", 4, &spec, &err), IMAP_PARSE_LITERAL);
	assert_int_equal(imap_parser_line(p, " {0}", 4, &spec, &err), IMAP_PARSE_ERROR);
	assert_string_equal(err, "too many literals");

	imap_parser_free(&p);
	imap_pool_free(&pool);
}

static void test_pool(void **state)
{
	struct imap_pool *pool = imap_pool_create();

	for (int i = 0; i < 1000; i++) {
		char *s = imap_pool_printf(pool, "item %d", i);
		assert_string_equal(s, imap_pool_printf(pool, "item %d", i));
	}
	void *big = imap_pool_alloc(pool, 100000);
	memset(big, 1, 100000);
	imap_pool_clear(pool);
	assert_string_equal(imap_pool_strndup(pool, "abcdef", 3), "abc");
	imap_pool_free(&pool);
	assert_null(pool);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_table),
		cmocka_unit_test(test_literal_lines),
		cmocka_unit_test(test_pool),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
