/* imap_parser: IMAP command lines, literals and the argument tree (see
 * imap_parser.h).  The collected command keeps literals inline exactly as
 * the client sent them ("{n}\r\n" + n bytes), so one tokenizer serves the
 * session and the tests. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "buf.h"
#include "error.h"
#include "imap_parser.h"

/* Decimal digits of a literal size (RFC 9051 number64 < 2^63). */
#define IMAP_LITERAL_DIGITS_MAX 19

struct imap_parser {
	struct mf_buf cmd;
	struct imap_parser_limits limits;
	uint64_t literal_left;   /* bytes of the announced literal not yet fed */
	bool in_literal;
	unsigned literals;       /* announced in this command */
};

struct imap_parser *imap_parser_create(void)
{
	struct imap_parser *p = mf_xcalloc(1, sizeof(*p));

	p->limits.line_max = IMAP_LINE_MAX_PREAUTH;
	p->limits.literal_max = IMAP_LITERAL_MAX_PREAUTH;
	p->limits.command_max = IMAP_LINE_MAX_PREAUTH * 4;
	mf_buf_init(&p->cmd, 0);
	return p;
}

void imap_parser_free(struct imap_parser **parser)
{
	if (*parser == NULL)
		return;
	mf_buf_free(&(*parser)->cmd);
	free(*parser);
	*parser = NULL;
}

void imap_parser_set_limits(struct imap_parser *parser, const struct imap_parser_limits *limits)
{
	parser->limits = *limits;
}

void imap_parser_reset(struct imap_parser *parser)
{
	mf_buf_reset(&parser->cmd);
	parser->literal_left = 0;
	parser->in_literal = false;
	parser->literals = 0;
	/* Give back memory a big APPEND used. */
	if (parser->cmd.cap > IMAP_LINE_MAX * 2) {
		mf_buf_free(&parser->cmd);
		mf_buf_init(&parser->cmd, 0);
	}
}

/* Finds a literal announcement at the end of the line, outside quoted
 * strings.  Returns 1 with spec_r, 0 when there is none, -1 when it is
 * malformed (error_r). */
static int line_literal(const char *line, size_t len, struct imap_literal_spec *spec_r,
			const char **error_r)
{
	bool quoted = false;
	size_t open = 0, i, digits_end;
	uint64_t n = 0;

	if (len == 0 || line[len - 1] != '}')
		return 0;
	for (i = 0; i < len; i++) {
		if (quoted) {
			if (line[i] == '\\' && i + 1 < len)
				i++;
			else if (line[i] == '"')
				quoted = false;
		} else if (line[i] == '"') {
			quoted = true;
		} else if (line[i] == '{') {
			open = i + 1;
		}
	}
	if (quoted || open == 0)
		return 0;
	open--;
	if (open > 0 && line[open - 1] != ' ' && line[open - 1] != '(' && line[open - 1] != '~')
		return 0;
	memset(spec_r, 0, sizeof(*spec_r));
	spec_r->binary = open > 0 && line[open - 1] == '~';
	digits_end = len - 1;
	if (digits_end > open + 1 && line[digits_end - 1] == '+') {
		spec_r->nonsync = true;
		digits_end--;
	}
	if (digits_end == open + 1 || digits_end - open - 1 > IMAP_LITERAL_DIGITS_MAX) {
		*error_r = "invalid literal size";
		return -1;
	}
	for (i = open + 1; i < digits_end; i++) {
		if (!isdigit((unsigned char)line[i])) {
			*error_r = "invalid literal size";
			return -1;
		}
		n = n * 10 + (uint64_t)(line[i] - '0');
	}
	spec_r->size = n;
	return 1;
}

enum imap_parser_result imap_parser_line(struct imap_parser *parser, const char *line,
					 size_t len, struct imap_literal_spec *spec_r,
					 const char **error_r)
{
	int r;

	if (len > parser->limits.line_max) {
		*error_r = "line too long";
		goto error;
	}
	if (mf_buf_append(&parser->cmd, line, len) < 0 ||
	    parser->cmd.len > parser->limits.command_max) {
		*error_r = "command too long";
		goto error;
	}
	r = line_literal(line, len, spec_r, error_r);
	if (r < 0)
		goto error;
	if (r == 0)
		return IMAP_PARSE_COMPLETE;
	if (++parser->literals > IMAP_LITERALS_MAX) {
		*error_r = "too many literals";
		goto error;
	}
	if (spec_r->size > parser->limits.literal_max ||
	    spec_r->size > parser->limits.command_max - parser->cmd.len) {
		*error_r = "[TOOBIG] literal too large";
		goto too_big;
	}
	if (spec_r->nonsync && parser->limits.literal_minus &&
	    spec_r->size > IMAP_LITERAL_MINUS_MAX) {
		*error_r = "[TOOBIG] non-synchronizing literal larger than 4096 bytes";
		goto too_big;
	}
	if (mf_buf_append(&parser->cmd, "\r\n", 2) < 0) {
		*error_r = "command too long";
		goto error;
	}
	parser->literal_left = spec_r->size;
	parser->in_literal = true;
	return IMAP_PARSE_LITERAL;
too_big:
	imap_parser_reset(parser);
	/* The client sends a non-synchronising literal anyway: what follows
	 * is its data, not a command, so the connection must end. */
	return spec_r->nonsync ? IMAP_PARSE_FATAL : IMAP_PARSE_ERROR;
error:
	imap_parser_reset(parser);
	return IMAP_PARSE_ERROR;
}

void imap_parser_literal(struct imap_parser *parser, const void *data, size_t len)
{
	if (len > parser->literal_left)
		len = (size_t)parser->literal_left;
	/* The size was checked against command_max when it was announced. */
	(void)mf_buf_append(&parser->cmd, data, len);
	parser->literal_left -= len;
	if (parser->literal_left == 0)
		parser->in_literal = false;
}

const char *imap_parser_tag(struct imap_parser *parser, struct imap_pool *pool)
{
	const char *d = parser->cmd.data;
	size_t i;

	if (d == NULL || parser->cmd.len == 0)
		return "*";
	for (i = 0; i < parser->cmd.len && i < IMAP_TAG_MAX; i++) {
		unsigned char c = (unsigned char)d[i];
		if (c <= ' ' || c >= 0x7f || c == '(' || c == ')' || c == '{' || c == '%' ||
		    c == '*' || c == '"' || c == '\\' || c == '+')
			break;
	}
	if (i == 0 || (i < parser->cmd.len && d[i] != ' '))
		return "*";
	return imap_pool_strndup(pool, d, i);
}

/* --- tokenizer -------------------------------------------------------- */

struct tok {
	struct imap_pool *pool;
	const char *p, *end;
	const char *error;
};

static bool is_atom_char(unsigned char c)
{
	/* ATOM-CHAR minus nothing: we accept resp-specials "]" and list
	 * wildcards here because astring, list-mailbox, sequence-set and flag
	 * share this tokenizer; the commands check what they expect. */
	return c > ' ' && c < 0x7f && c != '(' && c != ')' && c != '{' && c != '"';
}

static int parse_list(struct tok *t, struct imap_arg *arg, unsigned depth, char close);

static int parse_quoted(struct tok *t, struct imap_arg *arg)
{
	const char *s = ++t->p;
	char *out;
	size_t n = 0;

	/* First pass finds the end and the unescaped length. */
	while (t->p < t->end && *t->p != '"') {
		unsigned char c = (unsigned char)*t->p;
		if (c == '\\') {
			if (t->p + 1 >= t->end || (t->p[1] != '"' && t->p[1] != '\\')) {
				t->error = "invalid escape in quoted string";
				return -1;
			}
			t->p++;
		} else if (c == '\r' || c == '\n' || c == '\0') {
			t->error = "invalid character in quoted string";
			return -1;
		}
		t->p++;
		n++;
	}
	if (t->p >= t->end) {
		t->error = "unterminated quoted string";
		return -1;
	}
	out = imap_pool_alloc(t->pool, n + 1);
	for (size_t i = 0; s < t->p; s++) {
		if (*s == '\\')
			s++;
		out[i++] = *s;
	}
	out[n] = '\0';
	t->p++;
	arg->type = IMAP_ARG_QUOTED;
	arg->str = out;
	arg->len = n;
	return 0;
}

static int parse_literal(struct tok *t, struct imap_arg *arg)
{
	uint64_t n = 0;
	unsigned digits = 0;

	if (*t->p == '~') {
		arg->binary = true;
		t->p++;
		if (t->p >= t->end || *t->p != '{') {
			t->error = "invalid literal";
			return -1;
		}
	}
	t->p++;
	while (t->p < t->end && isdigit((unsigned char)*t->p) && digits < IMAP_LITERAL_DIGITS_MAX) {
		n = n * 10 + (uint64_t)(*t->p++ - '0');
		digits++;
	}
	if (t->p < t->end && *t->p == '+')
		t->p++;
	if (digits == 0 || t->end - t->p < 3 || t->p[0] != '}' || t->p[1] != '\r' ||
	    t->p[2] != '\n') {
		t->error = "invalid literal";
		return -1;
	}
	t->p += 3;
	if (n > (uint64_t)(t->end - t->p)) {
		t->error = "literal shorter than announced";
		return -1;
	}
	arg->type = IMAP_ARG_LITERAL;
	if (n > IMAP_LITERAL_COPY_MAX) {
		/* A big message is not copied a second time. */
		arg->str = t->p;
		arg->borrowed = true;
	} else {
		arg->str = imap_pool_strndup(t->pool, t->p, (size_t)n);
	}
	arg->len = (size_t)n;
	t->p += n;
	return 0;
}

/* An atom; "[" starts a section that runs to its matching "]" and may
 * hold spaces and lists (BODY[HEADER.FIELDS (From)]<0.10>). */
static int parse_atom(struct tok *t, struct imap_arg *arg)
{
	const char *s = t->p;
	int brackets = 0;

	while (t->p < t->end) {
		unsigned char c = (unsigned char)*t->p;
		if (brackets > 0) {
			if (c == '\r' || c == '\n' || c == '\0') {
				t->error = "invalid character in section";
				return -1;
			}
			if (c == '[' && ++brackets > IMAP_NESTING_MAX) {
				t->error = "section nested too deeply";
				return -1;
			}
			if (c == ']')
				brackets--;
			t->p++;
			continue;
		}
		if (c == '[') {
			brackets = 1;
			t->p++;
			continue;
		}
		if (!is_atom_char(c))
			break;
		t->p++;
	}
	if (brackets > 0) {
		t->error = "unterminated section";
		return -1;
	}
	if (t->p == s) {
		t->error = t->p < t->end && (unsigned char)*t->p >= 0x7f ?
			   "8-bit character in atom" : "invalid character";
		return -1;
	}
	arg->type = IMAP_ARG_ATOM;
	arg->str = imap_pool_strndup(t->pool, s, (size_t)(t->p - s));
	arg->len = (size_t)(t->p - s);
	return 0;
}

static int parse_arg(struct tok *t, struct imap_arg *arg, unsigned depth)
{
	switch (*t->p) {
	case '"':
		return parse_quoted(t, arg);
	case '{':
		return parse_literal(t, arg);
	case '~':
		if (t->p + 1 < t->end && t->p[1] == '{')
			return parse_literal(t, arg);
		return parse_atom(t, arg);
	case '(':
		return parse_list(t, arg, depth + 1, ')');
	case ')':
		t->error = "unexpected \")\"";
		return -1;
	default:
		return parse_atom(t, arg);
	}
}

/* Parses space-separated arguments up to close (')' for a list, '\0' for
 * the end of the command). */
static int parse_args(struct tok *t, struct imap_arg **args_r, size_t *count_r,
		      unsigned depth, char close)
{
	struct imap_arg *args = NULL;
	size_t count = 0, cap = 0;

	for (;;) {
		if (t->p >= t->end) {
			if (close != '\0') {
				t->error = "unbalanced parenthesis";
				return -1;
			}
			break;
		}
		if (close != '\0' && *t->p == close) {
			t->p++;
			break;
		}
		if (count > 0) {
			if (*t->p != ' ') {
				t->error = "missing space between arguments";
				return -1;
			}
			t->p++;
			if (t->p >= t->end) {
				if (close == '\0')
					break;  /* tolerate a trailing space */
				t->error = "unbalanced parenthesis";
				return -1;
			}
		}
		if (count == IMAP_ARGS_MAX) {
			t->error = "too many arguments";
			return -1;
		}
		if (count == cap) {
			struct imap_arg *n;
			cap = cap == 0 ? 8 : cap * 2;
			n = imap_pool_alloc(t->pool, cap * sizeof(*n));
			if (count > 0)
				memcpy(n, args, count * sizeof(*n));
			args = n;
		}
		memset(&args[count], 0, sizeof(args[count]));
		if (parse_arg(t, &args[count], depth) < 0)
			return -1;
		count++;
	}
	*args_r = args;
	*count_r = count;
	return 0;
}

static int parse_list(struct tok *t, struct imap_arg *arg, unsigned depth, char close)
{
	if (depth > IMAP_NESTING_MAX) {
		t->error = "list nested too deeply";
		return -1;
	}
	t->p++;
	arg->type = IMAP_ARG_LIST;
	return parse_args(t, &arg->list, &arg->count, depth, close);
}

int imap_parse_buffer(struct imap_pool *pool, const char *data, size_t len,
		      struct imap_command *cmd_r, const char **error_r)
{
	struct tok t = { .pool = pool, .p = data, .end = data + len };
	const char *s;
	char *name;

	memset(cmd_r, 0, sizeof(*cmd_r));
	cmd_r->tag = "*";
	s = t.p;
	while (t.p < t.end && *t.p != ' ') {
		unsigned char c = (unsigned char)*t.p;
		/* tag = 1*<any ASTRING-CHAR except "+"> */
		if (c <= ' ' || c >= 0x7f || c == '(' || c == ')' || c == '{' || c == '%' ||
		    c == '*' || c == '"' || c == '\\' || c == '+') {
			*error_r = "invalid tag";
			return -1;
		}
		t.p++;
	}
	if (t.p == s) {
		*error_r = "missing tag";
		return -1;
	}
	if (t.p - s > IMAP_TAG_MAX) {
		*error_r = "tag too long";
		return -1;
	}
	cmd_r->tag = imap_pool_strndup(pool, s, (size_t)(t.p - s));
	if (t.p >= t.end || t.p + 1 >= t.end) {
		*error_r = "missing command";
		return -1;
	}
	t.p++;
	s = t.p;
	while (t.p < t.end && isalnum((unsigned char)*t.p))
		t.p++;
	if (t.p == s || (t.p < t.end && *t.p != ' ')) {
		*error_r = "invalid command name";
		return -1;
	}
	name = imap_pool_strndup(pool, s, (size_t)(t.p - s));
	for (char *c = name; *c != '\0'; c++)
		*c = (char)toupper((unsigned char)*c);
	cmd_r->name = name;
	if (t.p < t.end) {
		t.p++;
		if (parse_args(&t, &cmd_r->args, &cmd_r->count, 0, '\0') < 0) {
			*error_r = t.error;
			return -1;
		}
	}
	return 0;
}

int imap_parser_finish(struct imap_parser *parser, struct imap_pool *pool,
		       struct imap_command *cmd_r, const char **error_r)
{
	return imap_parse_buffer(pool, parser->cmd.data != NULL ? parser->cmd.data : "",
				 parser->cmd.len, cmd_r, error_r);
}

bool imap_arg_is_nil(const struct imap_arg *arg)
{
	return arg->type == IMAP_ARG_ATOM && arg->len == 3 && strcasecmp(arg->str, "NIL") == 0;
}

bool imap_arg_is_string(const struct imap_arg *arg)
{
	return arg->type == IMAP_ARG_ATOM || arg->type == IMAP_ARG_QUOTED ||
	       (arg->type == IMAP_ARG_LITERAL && !arg->borrowed);
}

bool imap_arg_atom_eq(const struct imap_arg *arg, const char *word)
{
	return arg->type == IMAP_ARG_ATOM && strcasecmp(arg->str, word) == 0;
}
