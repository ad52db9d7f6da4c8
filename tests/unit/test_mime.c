/* test_mime: message structure parsing, limits, transfer encodings and the
 * prefix+blob mapping, on the messages in tests/data/mime/ and built ones. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mime.h"

/* Reads tests/data/mime/<name> (run from the top of the tree, or with
 * MF_TEST_DATA naming the directory). */
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

/* Describes a tree as "type/subtype(child,child)". */
static void describe(const struct mf_mime_part *p, struct mf_buf *b)
{
	mf_buf_appendf(b, "%s/%s", p->type, p->subtype);
	if (p->children == NULL)
		return;
	mf_buf_append_str(b, "(");
	for (const struct mf_mime_part *c = p->children; c != NULL; c = c->next) {
		describe(c, b);
		if (c->next != NULL)
			mf_buf_append_str(b, ",");
	}
	mf_buf_append_str(b, ")");
}

/* Offsets are ordered, inside the message, and children inside their
 * parent's body. */
static void check_offsets(const struct mf_mime_message *m, const struct mf_mime_part *p)
{
	assert_true(p->header_start <= p->header_end);
	assert_true(p->header_end <= p->body_start);
	assert_true(p->body_start <= p->body_end);
	assert_true(p->body_end <= m->len);
	assert_true(p->depth <= MF_MIME_DEPTH_MAX);
	size_t n = 0, prev_end = p->body_start;
	for (const struct mf_mime_part *c = p->children; c != NULL; c = c->next) {
		assert_ptr_equal(c->parent, p);
		assert_true(c->header_start >= prev_end);
		assert_true(c->body_end <= p->body_end);
		assert_int_equal(c->depth, p->depth + 1);
		prev_end = c->body_end;
		check_offsets(m, c);
		n++;
	}
	assert_int_equal(n, p->child_count);
	if (p->message)
		assert_int_equal(n, 1);
	if (p->multipart)
		assert_true(n >= 1);
}

static void test_files(void **state)
{
	static const struct {
		const char *file;
		const char *tree;
	} cases[] = {
		{ "simple.eml", "text/plain" },
		{ "alternative.eml", "multipart/alternative(text/plain,text/html)" },
		{ "nested.eml", "multipart/mixed(multipart/alternative(text/plain,text/html),"
				"application/pdf,image/png)" },
		{ "rfc822.eml", "multipart/mixed(text/plain,message/rfc822("
				"multipart/alternative(text/plain,text/html)))" },
		{ "missing_boundary.eml", "multipart/mixed(text/plain,text/plain)" },
		{ "bare_lf.eml", "multipart/mixed(text/plain)" },
		{ "eightbit.eml", "text/plain" },
		{ "encoded_words.eml", "text/plain" },
		{ "rfc2231.eml", "multipart/mixed(application/octet-stream)" },
		{ "group.eml", "text/plain" },
		{ "global.eml", "message/global(text/plain)" },
		{ "noheader.eml", "text/plain" },
		{ "oddities.eml", "multipart/mixed(text/html,application/octet-stream,"
				  "multipart/digest(message/rfc822(text/plain)))" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t len;
		char *data = load(cases[i].file, &len);
		struct mf_mime_message m;
		struct mf_buf b;
		mf_mime_parse(data, len, &m);
		mf_buf_init(&b, 0);
		describe(m.root, &b);
		if (strcmp(mf_buf_cstr(&b), cases[i].tree) != 0)
			fail_msg("%s: got %s", cases[i].file, mf_buf_cstr(&b));
		check_offsets(&m, m.root);
		assert_false(m.limit_reached);
		mf_buf_free(&b);
		mf_mime_message_free(&m);
		free(data);
	}
}

static const char *part_body(const struct mf_mime_message *m, const struct mf_mime_part *p,
			     size_t *len_r)
{
	*len_r = p->body_end - p->body_start;
	return m->data + p->body_start;
}

static void assert_body(const struct mf_mime_message *m, const struct mf_mime_part *p,
			const char *want)
{
	size_t len;
	const char *s = part_body(m, p, &len);
	if (len != strlen(want) || memcmp(s, want, len) != 0)
		fail_msg("body '%.*s' want '%s'", (int)len, s, want);
}

static void test_boundaries(void **state)
{
	size_t len;
	char *data = load("missing_boundary.eml", &len);
	struct mf_mime_message m;

	mf_mime_parse(data, len, &m);
	/* the boundary line with trailing white space counts; the preamble is
	 * no part; the last part runs to the end without a closing boundary */
	const struct mf_mime_part *a = m.root->children, *b = a->next;
	assert_body(&m, a, "first");
	assert_body(&m, b, "second, never closed\r\n");
	assert_int_equal(b->body_end, len);
	assert_int_equal(a->body_lines, 0);
	assert_int_equal(b->body_lines, 1);
	mf_mime_message_free(&m);
	free(data);

	/* epilogue: after the closing boundary, in no part */
	data = load("nested.eml", &len);
	mf_mime_parse(data, len, &m);
	const struct mf_mime_part *last = m.root->children->next->next;
	assert_body(&m, last, "begin 644 x.png\r\nend");
	assert_int_equal(m.root->body_end, len);
	assert_true(last->body_end + strlen("\r\n--outer--\r\nepilogue text\r\n") == len);
	const struct mf_mime_part *pdf = m.root->children->next;
	assert_string_equal(pdf->id, "<part2@example.org>");
	assert_string_equal(pdf->description, "The report");
	assert_string_equal(pdf->md5, "Q2hlY2sgSW50ZWdyaXR5IQ==");
	assert_string_equal(pdf->location, "http://example.org/report.pdf");
	assert_string_equal(pdf->disposition, "attachment");
	assert_string_equal(mf_mime_params_get(&pdf->disposition_params, "filename"),
			    "report.pdf");
	assert_int_equal(pdf->language_count, 2);
	assert_int_equal(pdf->cte, MF_MIME_CTE_BASE64);
	assert_int_equal(last->cte, MF_MIME_CTE_UNKNOWN);
	assert_string_equal(last->encoding, "x-uuencode");
	mf_mime_message_free(&m);
	free(data);

	/* bare LF line ends */
	data = load("bare_lf.eml", &len);
	mf_mime_parse(data, len, &m);
	assert_body(&m, m.root->children, "one\ntwo");
	assert_int_equal(m.root->children->body_lines, 1);
	mf_mime_message_free(&m);
	free(data);
}

/* IMAP body lines are LFs in the part's body, as Dovecot 2.3.19 reports
 * them (checked with doveadm fetch imap.bodystructure on these messages):
 * the line end before a boundary belongs to the boundary, so a last line
 * that ends just before it does not count, nor does an unterminated last
 * line at the end of the message.  (IMAP shows no count for a multipart;
 * the roots' counts here are the plain LF counts.) */
static void test_body_lines(void **state)
{
	static const struct {
		const char *msg;
		size_t lines[3]; /* root, then its first two children */
	} cases[] = {
		{ "From: a@b\r\nContent-Type: multipart/mixed; boundary=b1\r\n\r\n"
		  "--b1\r\nContent-Type: text/plain\r\n\r\nhello\r\n"
		  "--b1\r\nContent-Type: text/plain\r\n\r\nline1\r\nline2\r\n\r\n--b1--\r\n",
		  { 11, 0, 2 } },
		{ "From: a@b\r\nSubject: t\r\n\r\nno final newline", { 0, 0, 0 } },
		{ "From: a@b\r\nContent-Type: multipart/mixed; boundary=b1\r\n\r\n"
		  "--b1\r\nContent-Type: text/plain\r\n\r\n\r\n"
		  "--b1\r\nContent-Type: text/plain\r\n\r\n--b1--\r\n",
		  { 8, 0, 0 } },
		{ "From: a@b\r\nContent-Type: multipart/mixed; boundary=b1\r\n\r\n"
		  "--b1\r\nContent-Type: text/plain; charset=utf-8\r\n"
		  "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
		  "Die Zahlen sind gr=C3=B6=C3=9Fer.\r\n--b1\r\n"
		  "Content-Type: application/octet-stream\r\n\r\nAAECAw==\r\n--b1--\r\n",
		  { 10, 0, 0 } },
	};
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct mf_mime_message m;
		mf_mime_parse(cases[i].msg, strlen(cases[i].msg), &m);
		const struct mf_mime_part *a = m.root->children;
		size_t got[3] = { m.root->body_lines, a ? a->body_lines : 0,
				  a && a->next ? a->next->body_lines : 0 };
		for (size_t j = 0; j < 3; j++)
			if (got[j] != cases[i].lines[j])
				fail_msg("case %zu part %zu: %zu lines, want %zu", i, j, got[j],
					 cases[i].lines[j]);
		mf_mime_message_free(&m);
	}
}

static void parse_str(const char *s, struct mf_mime_message *m, struct mf_buf *tree)
{
	mf_mime_parse(s, strlen(s), m);
	mf_buf_init(tree, 0);
	describe(m->root, tree);
	check_offsets(m, m->root);
}

static void test_malformed(void **state)
{
	static const struct {
		const char *msg;
		const char *tree;
		bool malformed;
	} cases[] = {
		/* multipart without boundary, with one never used, or empty */
		{ "Content-Type: multipart/mixed\r\n\r\n--x\r\n\r\nA\r\n", "text/plain", true },
		{ "Content-Type: multipart/mixed; boundary=x\r\n\r\nno parts\r\n", "text/plain",
		  true },
		{ "Content-Type: multipart/mixed; boundary=x\r\n\r\n--x--\r\n", "text/plain", true },
		{ "Content-Type: multipart/mixed; boundary=\"\"\r\n\r\n--\r\n", "text/plain", true },
		/* invalid Content-Type: text/plain (RFC 2045 5.2) */
		{ "Content-Type: garbage\r\n\r\nbody", "text/plain", false },
		/* a boundary must be followed by white space only */
		{ "Content-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\n\r\na\r\n--xy\r\nb\r\n",
		  "multipart/mixed(text/plain)", false },
		/* empty parts, parts without header */
		{ "Content-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\n--x\r\n\r\nb\r\n--x--",
		  "multipart/mixed(text/plain,text/plain)", false },
		/* duplicate Content-Type: the first counts; folded value */
		{ "Content-Type: text/html\r\nContent-Type: image/png\r\n\r\n", "text/html", false },
		{ "Content-Type:\r\n multipart/mixed;\r\n\tboundary=\"f\"\r\n\r\n--f\r\n\r\nx\r\n--f--",
		  "multipart/mixed(text/plain)", false },
		/* digest parts default to message/rfc822 */
		{ "Content-Type: multipart/digest; boundary=d\r\n\r\n--d\r\n\r\nSubject: a\r\n\r\n"
		  "x\r\n--d\r\nContent-Type: text/plain\r\n\r\ny\r\n--d--\r\n",
		  "multipart/digest(message/rfc822(text/plain),text/plain)", false },
		/* an outer boundary ends an inner multipart that was not closed */
		{ "Content-Type: multipart/mixed; boundary=o\r\n\r\n--o\r\n"
		  "Content-Type: multipart/mixed; boundary=i\r\n\r\n--i\r\n\r\nin\r\n--o\r\n\r\nout\r\n--o--",
		  "multipart/mixed(multipart/mixed(text/plain),text/plain)", false },
		{ "", "text/plain", false },
		{ "\r\n", "text/plain", false },
		{ "Subject: no body", "text/plain", false },
		{ "Content-Type: message/rfc822\r\n\r\n", "message/rfc822(text/plain)", false },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct mf_mime_message m;
		struct mf_buf tree;
		parse_str(cases[i].msg, &m, &tree);
		if (strcmp(mf_buf_cstr(&tree), cases[i].tree) != 0)
			fail_msg("case %zu: got %s", i, mf_buf_cstr(&tree));
		assert_int_equal(m.root->malformed, cases[i].malformed);
		mf_buf_free(&tree);
		mf_mime_message_free(&m);
	}
}

static void test_depth_limit(void **state)
{
	struct mf_buf b;
	struct mf_mime_message m;
	unsigned max = 0;

	mf_buf_init(&b, 0);
	for (int i = 0; i < MF_MIME_DEPTH_MAX + 20; i++)
		mf_buf_append_str(&b, "Content-Type: message/rfc822\r\n\r\n");
	mf_buf_append_str(&b, "Subject: deep\r\n\r\nbody\r\n");
	mf_mime_parse(b.data, b.len, &m);
	assert_true(m.limit_reached);
	check_offsets(&m, m.root);
	for (const struct mf_mime_part *p = m.root; p != NULL; p = p->children)
		max = p->depth;
	assert_int_equal(max, MF_MIME_DEPTH_MAX);
	mf_mime_message_free(&m);

	/* nested multiparts with distinct boundaries */
	mf_buf_reset(&b);
	for (int i = 0; i < MF_MIME_DEPTH_MAX + 20; i++)
		mf_buf_appendf(&b, "Content-Type: multipart/mixed; boundary=b%d\r\n\r\n--b%d\r\n", i, i);
	mf_mime_parse(b.data, b.len, &m);
	assert_true(m.limit_reached);
	check_offsets(&m, m.root);
	mf_mime_message_free(&m);
	mf_buf_free(&b);
}

static void test_parts_limit(void **state)
{
	struct mf_buf b;
	struct mf_mime_message m;

	mf_buf_init(&b, 0);
	mf_buf_append_str(&b, "Content-Type: multipart/mixed; boundary=p\r\n\r\n");
	for (int i = 0; i < MF_MIME_PARTS_MAX + 500; i++)
		mf_buf_append_str(&b, "--p\r\n\r\nx\r\n");
	mf_buf_append_str(&b, "--p--\r\n");
	mf_mime_parse(b.data, b.len, &m);
	assert_true(m.limit_reached);
	assert_int_equal(m.part_count, MF_MIME_PARTS_MAX);
	assert_int_equal(m.root->child_count, MF_MIME_PARTS_MAX - 1);
	check_offsets(&m, m.root);
	mf_mime_message_free(&m);
	mf_buf_free(&b);
}

static void test_header_limit(void **state)
{
	struct mf_buf b;
	struct mf_mime_message m;

	/* a Content-Type after MF_MIME_HEADER_MAX bytes of header is not read,
	 * but the header still ends at the blank line */
	mf_buf_init(&b, 0);
	for (int i = 0; i * 100 < MF_MIME_HEADER_MAX + 100; i++)
		mf_buf_appendf(&b, "X-Filler: %088d\r\n", i);
	mf_buf_append_str(&b, "Content-Type: text/html\r\n\r\nbody");
	mf_mime_parse(b.data, b.len, &m);
	assert_string_equal(m.root->subtype, "plain");
	assert_int_equal(m.root->body_start, b.len - 4);
	mf_mime_message_free(&m);
	mf_buf_free(&b);
}

static void test_part_header(void **state)
{
	const char *s = "Subject: =?utf-8?q?x?=\r\n  folded\r\nsubject: second\r\nEmpty:\r\n\r\nbody";
	struct mf_mime_message m;

	mf_mime_parse(s, strlen(s), &m);
	char *v = mf_mime_part_header(&m, m.root, "SUBJECT");
	assert_string_equal(v, "=?utf-8?q?x?=  folded");
	free(v);
	v = mf_mime_part_header(&m, m.root, "empty");
	assert_string_equal(v, "");
	free(v);
	assert_null(mf_mime_part_header(&m, m.root, "from"));
	mf_mime_message_free(&m);
}

static void test_decode(void **state)
{
	static const struct {
		enum mf_mime_cte cte;
		const char *in;
		const char *out;
	} cases[] = {
		{ MF_MIME_CTE_BASE64, "aGVsbG8gd29ybGQ=", "hello world" },
		{ MF_MIME_CTE_BASE64, "aGVs\r\nbG8g\r\nd29y bGQ", "hello world" },
		{ MF_MIME_CTE_BASE64, "aGVsbG8gd29ybA", "hello worl" },
		{ MF_MIME_CTE_BASE64, "a!G@V#s$b%G^8&", "hello" },
		{ MF_MIME_CTE_BASE64, "", "" },
		{ MF_MIME_CTE_QP, "Caf=C3=A9 at 5? Soft=\r\n break.", "Caf\xc3\xa9 at 5? Soft break." },
		{ MF_MIME_CTE_QP, "a=3db=3D\r\nc  \r\nd=\nx", "a=b=\r\nc\r\ndx" },
		{ MF_MIME_CTE_QP, "bad =ZZ and =4 end=", "bad =ZZ and =4 end" },
		{ MF_MIME_CTE_QP, "soft with space= \t\r\nnext", "soft with spacenext" },
		{ MF_MIME_CTE_7BIT, "as is\r\n", "as is\r\n" },
		{ MF_MIME_CTE_BINARY, "\x01\x02", "\x01\x02" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct mf_buf b;
		const char *error;
		mf_buf_init(&b, 0);
		assert_int_equal(mf_mime_decode(cases[i].cte, cases[i].in, strlen(cases[i].in), &b,
						&error), 0);
		if (b.len != strlen(cases[i].out) || memcmp(mf_buf_cstr(&b), cases[i].out, b.len) != 0)
			fail_msg("case %zu: got '%s'", i, mf_buf_cstr(&b));
		mf_buf_free(&b);
	}
	struct mf_buf b;
	const char *error = NULL;
	mf_buf_init(&b, 3);
	assert_int_equal(mf_mime_decode(MF_MIME_CTE_UNKNOWN, "x", 1, &b, &error), -1);
	assert_non_null(error);
	assert_int_equal(mf_mime_decode(MF_MIME_CTE_BASE64, "aGVsbG8=", 8, &b, &error), -1);
	mf_buf_free(&b);

	assert_int_equal(mf_mime_cte_parse(NULL), MF_MIME_CTE_7BIT);
	assert_int_equal(mf_mime_cte_parse("BASE64"), MF_MIME_CTE_BASE64);
	assert_int_equal(mf_mime_cte_parse("Quoted-Printable"), MF_MIME_CTE_QP);
	assert_int_equal(mf_mime_cte_parse("8bit"), MF_MIME_CTE_8BIT);
	assert_int_equal(mf_mime_cte_parse("x-uuencode"), MF_MIME_CTE_UNKNOWN);
}

static void test_filename(void **state)
{
	static const struct {
		const char *file;
		const char *name; /* of the first child */
	} cases[] = {
		{ "rfc2231.eml", "very long file name.txt" },
		{ "oddities.eml", NULL },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t len;
		char *data = load(cases[i].file, &len);
		struct mf_mime_message m;
		mf_mime_parse(data, len, &m);
		char *n = mf_mime_part_filename(m.root->children);
		if (cases[i].name == NULL)
			assert_null(n);
		else
			assert_string_equal(n, cases[i].name);
		free(n);
		/* second child of oddities: RFC 2047 inside quotes */
		if (strcmp(cases[i].file, "oddities.eml") == 0) {
			n = mf_mime_part_filename(m.root->children->next);
			assert_string_equal(n, "\xc3\x9c" "ber.pdf");
			free(n);
		}
		mf_mime_message_free(&m);
		free(data);
	}
	const char *s = "Content-Type: a/b; name*=utf-8''%C3%9Cber%20x.txt\r\n\r\n";
	struct mf_mime_message m;
	mf_mime_parse(s, strlen(s), &m);
	char *n = mf_mime_part_filename(m.root);
	assert_string_equal(n, "\xc3\x9c" "ber x.txt");
	free(n);
	mf_mime_message_free(&m);
}

static void test_part_text(void **state)
{
	static const struct {
		const char *msg;
		const char *text;
	} cases[] = {
		{ "Content-Type: text/plain; charset=iso-8859-1\r\n"
		  "Content-Transfer-Encoding: quoted-printable\r\n\r\ncaf=E9=\r\n!",
		  "caf\xc3\xa9!" },
		{ "Content-Type: text/plain; charset=utf-8\r\n"
		  "Content-Transfer-Encoding: base64\r\n\r\nR3LDvMOfZQ==", "Gr\xc3\xbc\xc3\x9f" "e" },
		{ "Content-Type: text/plain; charset=x-unknown\r\n\r\nRen\xe9", "Ren\xc3\xa9" },
		{ "Content-Type: text/plain; charset=x-unknown\r\n\r\nJ\xc3\xb6rg", "J\xc3\xb6rg" },
		{ "Subject: none\r\n\r\nplain", "plain" },
	};
	/* Quoted-Printable (with a trailing space) and windows-1252 */
	size_t len;
	char *data = load("oddities.eml", &len);
	struct mf_mime_message om;
	struct mf_buf ob;
	const char *oerror;
	mf_mime_parse(data, len, &om);
	mf_buf_init(&ob, 0);
	assert_int_equal(mf_mime_part_text(&om, om.root->children, &ob, &oerror), 0);
	assert_string_equal(mf_buf_cstr(&ob), "<p>caf\xc3\xa9</p>");
	mf_buf_free(&ob);
	mf_mime_message_free(&om);
	free(data);

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct mf_mime_message m;
		struct mf_buf b;
		const char *error;
		mf_mime_parse(cases[i].msg, strlen(cases[i].msg), &m);
		mf_buf_init(&b, 0);
		assert_int_equal(mf_mime_part_text(&m, m.root, &b, &error), 0);
		if (strcmp(mf_buf_cstr(&b), cases[i].text) != 0)
			fail_msg("case %zu: got '%s'", i, mf_buf_cstr(&b));
		mf_buf_free(&b);
		mf_mime_message_free(&m);
	}
	const char *s = "Content-Transfer-Encoding: x-uue\r\n\r\nbody";
	struct mf_mime_message m;
	struct mf_buf b;
	const char *error = NULL;
	mf_mime_parse(s, strlen(s), &m);
	mf_buf_init(&b, 0);
	assert_int_equal(mf_mime_part_text(&m, m.root, &b, &error), -1);
	assert_non_null(error);
	mf_buf_free(&b);
	mf_mime_message_free(&m);
}

static void map_case(const char *prefix, size_t prefix_len, const char *file, size_t file_len)
{
	char path[] = "/tmp/test_mime_XXXXXX";
	int fd = mkstemp(path);
	struct mf_mime_map map;
	const char *error;

	assert_true(fd >= 0);
	unlink(path);
	assert_int_equal(write(fd, file, file_len), (ssize_t)file_len);
	assert_int_equal(mf_mime_map_open(prefix, prefix_len, fd, &map, &error), 0);
	close(fd);
	assert_int_equal(map.len, prefix_len + file_len);
	assert_memory_equal(map.data, prefix, prefix_len);
	if (file_len > 0)
		assert_memory_equal(map.data + prefix_len, file, file_len);
	struct mf_mime_message m;
	mf_mime_parse(map.data, map.len, &m);
	check_offsets(&m, m.root);
	mf_mime_message_free(&m);
	mf_mime_map_close(&map);
	assert_null(map.data);
}

static void test_map(void **state)
{
	const char *prefix = "Delivered-To: bob@example.com\r\n";
	const char *file = "Content-Type: multipart/mixed; boundary=q\r\n\r\n--q\r\n\r\nhi\r\n--q--\r\n";
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	char *big = mf_xmalloc(page * 2 + 10);

	map_case(prefix, strlen(prefix), file, strlen(file));
	map_case(NULL, 0, file, strlen(file));
	map_case(prefix, strlen(prefix), "", 0);
	map_case(NULL, 0, "", 0);
	memset(big, 'x', page * 2 + 10);
	map_case(big, page, file, strlen(file));
	map_case(big, page + 1, big, page * 2 + 10);

	/* parsing the mapping: the prefix is part of the root header */
	char path[] = "/tmp/test_mime_XXXXXX";
	int fd = mkstemp(path);
	struct mf_mime_map map;
	const char *error;
	struct mf_mime_message m;
	unlink(path);
	assert_int_equal(write(fd, file, strlen(file)), (ssize_t)strlen(file));
	assert_int_equal(mf_mime_map_open(prefix, strlen(prefix), fd, &map, &error), 0);
	mf_mime_parse(map.data, map.len, &m);
	assert_string_equal(m.root->subtype, "mixed");
	assert_int_equal(m.root->child_count, 1);
	char *v = mf_mime_part_header(&m, m.root, "delivered-to");
	assert_string_equal(v, "bob@example.com");
	free(v);
	mf_mime_message_free(&m);
	mf_mime_map_close(&map);
	close(fd);
	assert_int_equal(mf_mime_map_open(NULL, 0, -1, &map, &error), -1);
	free(big);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_files),
		cmocka_unit_test(test_boundaries),
		cmocka_unit_test(test_body_lines),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_depth_limit),
		cmocka_unit_test(test_parts_limit),
		cmocka_unit_test(test_header_limit),
		cmocka_unit_test(test_part_header),
		cmocka_unit_test(test_decode),
		cmocka_unit_test(test_filename),
		cmocka_unit_test(test_part_text),
		cmocka_unit_test(test_map),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
