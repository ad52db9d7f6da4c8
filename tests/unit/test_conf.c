#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"

static struct mf_conf *parse_ok(const char *text)
{
	struct mf_conf *conf = NULL;
	const char *err = NULL;

	if (mf_conf_parse_buf("t.conf", text, strlen(text), &conf, &err) < 0)
		fail_msg("unexpected error: %s", err);
	return conf;
}

static void test_parse_tree(void **state)
{
	struct mf_conf *conf = parse_ok(
		"# top comment\n"
		"hostname mail.example.org   # trailing\n"
		"\n"
		"list a \"b c\" \"q\\\"\\\\\\n\\t\" é\n"
		"outer x {\n"
		"    inner {\n"
		"        k v\n"
		"    }\n"
		"}\n");
	struct mf_conf_node *root = conf->root, *n;

	assert_int_equal(root->children_count, 5);
	assert_int_equal(root->children[0]->type, MF_CONF_COMMENT);
	n = mf_conf_find(root, "hostname");
	assert_non_null(n);
	assert_int_equal(n->type, MF_CONF_STATEMENT);
	assert_int_equal(n->line, 2);
	assert_int_equal(n->values_count, 1);
	assert_string_equal(n->values[0], "mail.example.org");
	n = mf_conf_find(root, "list");
	assert_int_equal(n->values_count, 4);
	assert_string_equal(n->values[0], "a");
	assert_string_equal(n->values[1], "b c");
	assert_string_equal(n->values[2], "q\"\\\n\t");
	assert_string_equal(n->values[3], "é");
	n = mf_conf_find_value(root, "outer", "x");
	assert_non_null(n);
	assert_int_equal(n->type, MF_CONF_BLOCK);
	assert_int_equal(n->line, 5);
	n = mf_conf_find(n, "inner");
	assert_int_equal(n->type, MF_CONF_BLOCK);
	assert_int_equal(n->values_count, 0);
	n = mf_conf_find(n, "k");
	assert_string_equal(n->values[0], "v");
	assert_int_equal(n->line, 7);
	assert_ptr_equal(n->parent->parent->parent, root);
	mf_conf_free(&conf);
	assert_null(conf);
}

static void test_parse_errors(void **state)
{
	static const struct {
		const char *text;
		const char *error;
	} cases[] = {
		{ "a b\nKey x\n", "t.conf:2: expected a key (lower-case letters, digits and dashes)" },
		{ "a_b x\n", "t.conf:1: bad character in key (keys are lower-case letters, digits and dashes)" },
		{ "a \"open\n", "t.conf:1: unterminated quoted string" },
		{ "a \"x\\q\"\n", "t.conf:1: unknown escape \\q in quoted string (use \\\" \\\\ \\n \\t)" },
		{ "a \"x\"y\n", "t.conf:1: values must be separated by whitespace" },
		{ "a x\"y\"\n", "t.conf:1: '\"' inside a bare value (quote the whole value)" },
		{ "a {\n", "t.conf:1: block a is not closed" },
		{ "a {\n b {\n }\n", "t.conf:1: block a is not closed" },
		{ "}\n", "t.conf:1: '}' without an open block" },
		{ "a { }\n", "t.conf:1: '{' must end the line" },
		{ "a {\n} x\n", "t.conf:2: '}' must be on a line of its own" },
		{ "a x}\n", "t.conf:1: '}' must be on a line of its own" },
		{ "a x { y\n}\n", "t.conf:1: '{' must end the line" },
		{ "ok 1\na \x01\n", "t.conf:2: control character" },
		{ "a \"\x01\"\n", "t.conf:1: control character" },
		{ "ok\nok\na \xff\n", "t.conf:3: invalid UTF-8" },
		{ "a\0b\n", "t.conf:1: control character" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct mf_conf *conf = NULL;
		const char *err = NULL;
		size_t len = strlen(cases[i].text);

		if (i == sizeof(cases) / sizeof(cases[0]) - 1)
			len = 4;  /* the NUL case */
		assert_int_equal(mf_conf_parse_buf("t.conf", cases[i].text, len, &conf, &err), -1);
		assert_null(conf);
		assert_non_null(err);
		assert_string_equal(err, cases[i].error);
	}
}

static void test_limits(void **state)
{
	struct mf_buf b;
	struct mf_conf *conf = NULL;
	const char *err;

	/* line length */
	mf_buf_init(&b, 0);
	mf_buf_append_str(&b, "a ");
	for (int i = 0; i < MF_CONF_LINE_MAX; i++)
		mf_buf_append(&b, "x", 1);
	assert_int_equal(mf_conf_parse_buf("t", b.data, b.len, &conf, &err), -1);
	assert_string_equal(err, "t:1: line too long (max 4096 bytes)");
	/* nesting depth: MF_CONF_DEPTH_MAX levels are fine, one more is not */
	mf_buf_reset(&b);
	for (int i = 0; i < MF_CONF_DEPTH_MAX; i++)
		mf_buf_append_str(&b, "b {\n");
	for (int i = 0; i < MF_CONF_DEPTH_MAX; i++)
		mf_buf_append_str(&b, "}\n");
	assert_int_equal(mf_conf_parse_buf("t", b.data, b.len, &conf, &err), 0);
	mf_conf_free(&conf);
	mf_buf_reset(&b);
	for (int i = 0; i <= MF_CONF_DEPTH_MAX; i++)
		mf_buf_append_str(&b, "b {\n");
	assert_int_equal(mf_conf_parse_buf("t", b.data, b.len, &conf, &err), -1);
	assert_string_equal(err, "t:9: blocks nested too deeply (max 8)");
	/* values per line */
	mf_buf_reset(&b);
	mf_buf_append_str(&b, "a");
	for (int i = 0; i <= MF_CONF_VALUES_MAX; i++)
		mf_buf_append_str(&b, " v");
	assert_int_equal(mf_conf_parse_buf("t", b.data, b.len, &conf, &err), -1);
	assert_string_equal(err, "t:1: too many values (max 64)");
	mf_buf_free(&b);
}

static void check_roundtrip(const char *text)
{
	struct mf_conf *conf = parse_ok(text);
	char *out = mf_conf_serialize(conf);

	assert_string_equal(out, text);
	free(out);
	mf_conf_free(&conf);
}

static void test_roundtrip(void **state)
{
	check_roundtrip("");
	check_roundtrip("\n\n");
	check_roundtrip("a");
	check_roundtrip("a b   # no newline at the end");
	check_roundtrip("# only a comment\n");
	check_roundtrip(
		"# mailfleet.conf\n"
		"\n"
		"hostname   mail.example.org      # aligned comment\n"
		"\tlist \"x y\"  z\t# tab\r\n"
		"block \"with value\" {   # opening\n"
		"  # indented comment\n"
		"\tchild  1\n"
		"    nested {\n"
		"    }\n"
		"   }   # closing\n"
		"\n"
		"last \"q\\\"\"\n"
		"\n");
}

static void test_edit_keeps_comments(void **state)
{
	struct mf_conf *conf = parse_ok(
		"# header comment\n"
		"account mjl {   # the boss\n"
		"    domain example.org\n"
		"    address mjl@example.org   # main address\n"
		"    # keep me\n"
		"    quota 1G\n"
		"}\n"
		"account old {\n"
		"    address x@example.org\n"
		"}\n"
		"# footer");
	struct mf_conf_node *acc = mf_conf_find_value(conf->root, "account", "mjl");
	struct mf_conf_node *addr = mf_conf_find(acc, "address");
	struct mf_conf_node *quota = mf_conf_find(acc, "quota");
	const char *v1[] = { "other@example.org" };
	const char *v2[] = { "2G" };
	const char *v3[] = { "new name", "tab\there", "" };
	char *out;

	mf_conf_insert(acc, addr, mf_conf_node_new(MF_CONF_STATEMENT, "address", v1, 1));
	mf_conf_set_values(addr, v1, 1);
	mf_conf_set_values(quota, v2, 1);
	mf_conf_remove(mf_conf_find_value(conf->root, "account", "old"));
	struct mf_conf_node *block = mf_conf_node_new(MF_CONF_BLOCK, "alias", v3, 3);
	mf_conf_insert(block, NULL, mf_conf_node_new(MF_CONF_STATEMENT, "member", v1, 1));
	mf_conf_insert(conf->root, NULL, block);
	out = mf_conf_serialize(conf);
	assert_string_equal(out,
		"# header comment\n"
		"account mjl {   # the boss\n"
		"    domain example.org\n"
		"    address other@example.org   # main address\n"
		"    address other@example.org\n"
		"    # keep me\n"
		"    quota 2G\n"
		"}\n"
		"# footer\n"
		"alias \"new name\" \"tab\\there\" \"\" {\n"
		"    member other@example.org\n"
		"}\n");
	/* what was written parses back to the same values */
	struct mf_conf *again = parse_ok(out);
	struct mf_conf_node *al = mf_conf_find(again->root, "alias");
	assert_int_equal(al->values_count, 3);
	assert_string_equal(al->values[1], "tab\there");
	assert_string_equal(al->values[2], "");
	mf_conf_free(&again);
	free(out);
	mf_conf_free(&conf);
}

static void test_values(void **state)
{
	static const struct {
		const char *s;
		uint64_t v;
	} sizes[] = {
		{ "0", 0 }, { "512", 512 }, { "512K", 512 * 1024ULL }, { "100M", 100 * 1024 * 1024ULL },
		{ "1G", 1024ULL * 1024 * 1024 }, { "2t", 2ULL << 40 }, { "1k", 1024 },
	};
	static const char *const bad_sizes[] = { "", "M", "1.5G", "10X", "-1", "99999999999999999999",
						 "16777216T" };
	static const struct {
		const char *s;
		uint64_t ms;
	} durations[] = {
		{ "30s", 30000 }, { "5m", 300000 }, { "2h", 7200000 }, { "7d", 604800000 },
		{ "500ms", 500 }, { "1h30m", 5400000 }, { "0s", 0 },
	};
	static const char *const bad_durations[] = { "", "30", "s", "5x", "1h30", "m5", "-1s" };
	uint64_t v;
	bool b;
	const char *err;
	struct mf_conf_hostport hp;

	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		assert_int_equal(mf_conf_parse_size(sizes[i].s, &v, &err), 0);
		assert_true(v == sizes[i].v);
	}
	for (size_t i = 0; i < sizeof(bad_sizes) / sizeof(bad_sizes[0]); i++)
		assert_int_equal(mf_conf_parse_size(bad_sizes[i], &v, &err), -1);
	assert_int_equal(mf_conf_parse_size("10X", &v, &err), -1);
	assert_string_equal(err, "bad size 10X (want a number with optional K, M, G or T)");
	for (size_t i = 0; i < sizeof(durations) / sizeof(durations[0]); i++) {
		assert_int_equal(mf_conf_parse_duration(durations[i].s, &v, &err), 0);
		assert_true(v == durations[i].ms);
	}
	for (size_t i = 0; i < sizeof(bad_durations) / sizeof(bad_durations[0]); i++)
		assert_int_equal(mf_conf_parse_duration(bad_durations[i], &v, &err), -1);
	assert_string_equal(err, "bad duration -1s (want e.g. 30s, 5m, 2h, 7d, 1h30m or 500ms)");

	assert_int_equal(mf_conf_parse_bool("yes", &b, &err), 0);
	assert_true(b);
	assert_int_equal(mf_conf_parse_bool("on", &b, &err), 0);
	assert_true(b);
	assert_int_equal(mf_conf_parse_bool("false", &b, &err), 0);
	assert_false(b);
	assert_int_equal(mf_conf_parse_bool("off", &b, &err), 0);
	assert_false(b);
	assert_int_equal(mf_conf_parse_bool("Yes", &b, &err), -1);
	assert_string_equal(err, "bad boolean Yes (want yes or no)");

	assert_int_equal(mf_conf_parse_uint("4294967295", UINT32_MAX, &v, &err), 0);
	assert_int_equal(mf_conf_parse_uint("4294967296", UINT32_MAX, &v, &err), -1);
	assert_string_equal(err, "4294967296 is too large (max 4294967295)");
	assert_int_equal(mf_conf_parse_uint("12a", 100, &v, &err), -1);

	assert_int_equal(mf_conf_parse_hostport("127.0.0.1:1025", &hp, &err), 0);
	assert_string_equal(hp.host, "127.0.0.1");
	assert_int_equal(hp.port, 1025);
	assert_int_equal(mf_conf_parse_hostport("[::1]:25", &hp, &err), 0);
	assert_string_equal(hp.host, "::1");
	assert_int_equal(hp.port, 25);
	assert_int_equal(mf_conf_parse_hostport("mail.example.org:587", &hp, &err), 0);
	assert_string_equal(hp.host, "mail.example.org");
	static const char *const bad_hp[] = { "127.0.0.1", "::1:25", "[::1]25", ":25", "a:0",
					      "a:65536", "a b:25", "[::1]:", "a:x" };
	for (size_t i = 0; i < sizeof(bad_hp) / sizeof(bad_hp[0]); i++)
		assert_int_equal(mf_conf_parse_hostport(bad_hp[i], &hp, &err), -1);
	assert_int_equal(mf_conf_parse_hostport("::1:25", &hp, &err), -1);
	assert_string_equal(err, "bad address ::1:25 (put IPv6 addresses in brackets: [::1]:25)");

	char *p = mf_conf_path("/etc/mf", "dkim/k.pem");
	assert_string_equal(p, "/etc/mf/dkim/k.pem");
	free(p);
	p = mf_conf_path("/etc/mf", "/abs");
	assert_string_equal(p, "/abs");
	free(p);
	p = mf_conf_dirname("x.conf");
	assert_string_equal(p, ".");
	free(p);
	p = mf_conf_dirname("/etc/mf/x.conf");
	assert_string_equal(p, "/etc/mf");
	free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_tree),
		cmocka_unit_test(test_parse_errors),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_roundtrip),
		cmocka_unit_test(test_edit_keeps_comments),
		cmocka_unit_test(test_values),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
