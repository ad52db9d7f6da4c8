#include "conf.h"
#include "error.h"
#include "fsutil.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistr.h>

/* --- nodes --- */

static void node_free(struct mf_conf_node *node)
{
	if (node == NULL)
		return;
	for (size_t i = 0; i < node->children_count; i++)
		node_free(node->children[i]);
	for (size_t i = 0; i < node->values_count; i++)
		free(node->values[i]);
	free(node->values);
	free(node->children);
	free(node->key);
	free(node->raw);
	free(node->comment);
	free(node->raw_close);
	free(node);
}

static void node_add_child(struct mf_conf_node *block, size_t pos, struct mf_conf_node *node)
{
	/* Grow in powers of two; children_count alone tells the capacity. */
	size_t n = block->children_count;

	if (n == 0 || (n & (n - 1)) == 0)
		block->children = mf_xrealloc(block->children,
					      (n == 0 ? 1 : n * 2) * sizeof(*block->children));
	memmove(block->children + pos + 1, block->children + pos,
		(n - pos) * sizeof(*block->children));
	block->children[pos] = node;
	block->children_count++;
	node->parent = block;
}

static void node_add_value(struct mf_conf_node *node, char *value)
{
	size_t n = node->values_count;

	if (n == 0 || (n & (n - 1)) == 0)
		node->values = mf_xrealloc(node->values, (n == 0 ? 1 : n * 2) * sizeof(*node->values));
	node->values[n] = value;
	node->values_count++;
}

struct mf_conf_node *mf_conf_node_new(enum mf_conf_node_type type, const char *key,
				      const char *const *values, size_t values_count)
{
	struct mf_conf_node *node = mf_xcalloc(1, sizeof(*node));

	node->type = type;
	node->key = key != NULL ? mf_xstrdup(key) : NULL;
	for (size_t i = 0; i < values_count; i++)
		node_add_value(node, mf_xstrdup(values[i]));
	return node;
}

void mf_conf_insert(struct mf_conf_node *block, struct mf_conf_node *after,
		    struct mf_conf_node *node)
{
	size_t pos = block->children_count;

	if (after != NULL) {
		for (size_t i = 0; i < block->children_count; i++)
			if (block->children[i] == after)
				pos = i + 1;
	}
	node_add_child(block, pos, node);
}

void mf_conf_remove(struct mf_conf_node *node)
{
	struct mf_conf_node *parent = node->parent;

	if (parent != NULL) {
		for (size_t i = 0; i < parent->children_count; i++) {
			if (parent->children[i] != node)
				continue;
			memmove(parent->children + i, parent->children + i + 1,
				(parent->children_count - i - 1) * sizeof(*parent->children));
			parent->children_count--;
			break;
		}
	}
	node_free(node);
}

void mf_conf_set_values(struct mf_conf_node *node, const char *const *values,
			size_t values_count)
{
	char **old = node->values;
	size_t old_count = node->values_count;

	/* Copy first: values may point into the old ones. */
	node->values = NULL;
	node->values_count = 0;
	for (size_t i = 0; i < values_count; i++)
		node_add_value(node, mf_xstrdup(values[i]));
	for (size_t i = 0; i < old_count; i++)
		free(old[i]);
	free(old);
	node->dirty = true;
}

struct mf_conf_node *mf_conf_find(const struct mf_conf_node *block, const char *key)
{
	for (size_t i = 0; i < block->children_count; i++) {
		struct mf_conf_node *c = block->children[i];
		if (c->key != NULL && strcmp(c->key, key) == 0)
			return c;
	}
	return NULL;
}

struct mf_conf_node *mf_conf_find_value(const struct mf_conf_node *block, const char *key,
					const char *value)
{
	for (size_t i = 0; i < block->children_count; i++) {
		struct mf_conf_node *c = block->children[i];
		if (c->key != NULL && strcmp(c->key, key) == 0 && c->values_count > 0 &&
		    strcmp(c->values[0], value) == 0)
			return c;
	}
	return NULL;
}

void mf_conf_free(struct mf_conf **conf)
{
	if (*conf == NULL)
		return;
	node_free((*conf)->root);
	free((*conf)->name);
	free(*conf);
	*conf = NULL;
}

/* --- parser --- */

enum line_state {
	LS_KEY,      /* before the key */
	LS_VALUES,   /* between values */
	LS_OPEN,     /* after "{": only a comment may follow */
};

struct parser {
	const char *name;
	unsigned line;
	size_t nodes;
	struct mf_conf_node *stack[MF_CONF_DEPTH_MAX + 1];  /* [0] is the root */
	size_t depth;
	struct mf_buf value;
};

static bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r';
}

static bool is_bare(unsigned char c)
{
	return c > ' ' && c != 0x7f && c != '{' && c != '}' && c != '#' && c != '"';
}

static bool is_key_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
}

/* Parses a quoted string starting at s[*pos] == '"' into p->value.
 * Returns 0 or -1 with error_r (without location). */
static int parse_quoted(struct parser *p, const char *s, size_t len, size_t *pos,
			const char **error_r)
{
	size_t i = *pos + 1;

	mf_buf_reset(&p->value);
	for (; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		char out;

		if (c == '"') {
			*pos = i + 1;
			return 0;
		}
		if (c == '\\') {
			if (++i == len)
				break;
			switch (s[i]) {
			case '"': out = '"'; break;
			case '\\': out = '\\'; break;
			case 'n': out = '\n'; break;
			case 't': out = '\t'; break;
			default:
				*error_r = mf_errorf("unknown escape \\%c in quoted string (use \\\" \\\\ \\n \\t)",
						     is_bare((unsigned char)s[i]) ? s[i] : '?');
				return -1;
			}
		} else if (c < ' ' && c != '\t') {
			*error_r = "control character in quoted string";
			return -1;
		} else {
			out = (char)c;
		}
		mf_buf_append(&p->value, &out, 1);
	}
	*error_r = "unterminated quoted string";
	return -1;
}

/* Parses one line (without newline) into a node or a block close.
 * Returns 0 or -1 with error_r (without location). */
static int parse_line(struct parser *p, const char *s, size_t len, bool no_eol,
		      const char **error_r)
{
	enum line_state state = LS_KEY;
	struct mf_conf_node *node = NULL, *parent = p->stack[p->depth];
	size_t i = 0, comment_start = len;
	int ret = -1;

	for (size_t j = 0; j < len; j++) {
		unsigned char c = (unsigned char)s[j];
		if ((c < ' ' && c != '\t' && c != '\r') || c == 0x7f) {
			*error_r = "control character";
			goto out;
		}
	}
	while (i < len && is_space(s[i]))
		i++;
	if (i == len || s[i] == '#') {
		node = mf_conf_node_new(MF_CONF_COMMENT, NULL, NULL, 0);
		goto done;
	}
	if (s[i] == '}') {
		size_t j = i + 1;
		while (j < len && is_space(s[j]))
			j++;
		if (j < len && s[j] != '#') {
			*error_r = "'}' must be on a line of its own";
			goto out;
		}
		if (p->depth == 0) {
			*error_r = "'}' without an open block";
			goto out;
		}
		p->stack[p->depth]->raw_close = mf_xstrndup(s, len);
		p->stack[p->depth]->close_no_eol = no_eol;
		p->depth--;
		ret = 0;
		goto out;
	}
	if (!(s[i] >= 'a' && s[i] <= 'z')) {
		*error_r = "expected a key (lower-case letters, digits and dashes)";
		goto out;
	}
	size_t kstart = i;
	while (i < len && is_key_char(s[i]))
		i++;
	if (i < len && !is_space(s[i]) && s[i] != '#' && s[i] != '{') {
		*error_r = "bad character in key (keys are lower-case letters, digits and dashes)";
		goto out;
	}
	if (i - kstart > MF_CONF_KEY_MAX) {
		*error_r = mf_errorf("key too long (max %d bytes)", MF_CONF_KEY_MAX);
		goto out;
	}
	node = mf_xcalloc(1, sizeof(*node));
	node->type = MF_CONF_STATEMENT;
	node->key = mf_xstrndup(s + kstart, i - kstart);
	state = LS_VALUES;
	for (;;) {
		size_t ws = i;
		while (i < len && is_space(s[i]))
			i++;
		if (i == len || s[i] == '#') {
			if (i < len)
				comment_start = ws;
			break;
		}
		if (state == LS_OPEN) {
			*error_r = "'{' must end the line";
			goto out;
		}
		if (i == ws && i > kstart) {
			/* "key{" or a value right after a quoted string */
			if (s[i] != '{') {
				*error_r = "values must be separated by whitespace";
				goto out;
			}
		}
		if (s[i] == '{') {
			node->type = MF_CONF_BLOCK;
			state = LS_OPEN;
			i++;
			continue;
		}
		if (s[i] == '}') {
			*error_r = "'}' must be on a line of its own";
			goto out;
		}
		if (node->values_count == MF_CONF_VALUES_MAX) {
			*error_r = mf_errorf("too many values (max %d)", MF_CONF_VALUES_MAX);
			goto out;
		}
		if (s[i] == '"') {
			if (parse_quoted(p, s, len, &i, error_r) < 0)
				goto out;
			node_add_value(node, mf_xstrndup(p->value.data != NULL ? p->value.data : "",
							 p->value.len));
			if (i < len && !is_space(s[i]) && s[i] != '#') {
				*error_r = "values must be separated by whitespace";
				goto out;
			}
			continue;
		}
		size_t vstart = i;
		while (i < len && is_bare((unsigned char)s[i]))
			i++;
		if (i < len && s[i] == '"') {
			*error_r = "'\"' inside a bare value (quote the whole value)";
			goto out;
		}
		if (i < len && s[i] == '}') {
			*error_r = "'}' must be on a line of its own";
			goto out;
		}
		node_add_value(node, mf_xstrndup(s + vstart, i - vstart));
	}
	if (comment_start < len)
		node->comment = mf_xstrndup(s + comment_start, len - comment_start);
done:
	node->raw = mf_xstrndup(s, len);
	node->no_eol = no_eol;
	node->line = p->line;
	node_add_child(parent, parent->children_count, node);
	if (node->type == MF_CONF_BLOCK) {
		if (p->depth == MF_CONF_DEPTH_MAX) {
			node = NULL;  /* owned by parent now */
			*error_r = mf_errorf("blocks nested too deeply (max %d)", MF_CONF_DEPTH_MAX);
			goto out;
		}
		p->stack[++p->depth] = node;
	}
	node = NULL;
	ret = 0;
out:
	node_free(node);
	return ret;
}

/* Returns the 1-based line of offset off in data. */
static unsigned line_of(const char *data, size_t off)
{
	unsigned line = 1;

	for (size_t i = 0; i < off; i++)
		if (data[i] == '\n')
			line++;
	return line;
}

int mf_conf_parse_buf(const char *name, const char *data, size_t len,
		      struct mf_conf **conf_r, const char **error_r)
{
	struct parser p;
	struct mf_conf *conf = mf_xcalloc(1, sizeof(*conf));
	const uint8_t *bad;
	size_t pos = 0;
	int ret = -1;

	memset(&p, 0, sizeof(p));
	p.name = name;
	mf_buf_init(&p.value, MF_CONF_LINE_MAX);
	conf->name = mf_xstrdup(name);
	conf->root = mf_conf_node_new(MF_CONF_BLOCK, NULL, NULL, 0);
	p.stack[0] = conf->root;

	if (len > MF_CONF_FILE_MAX) {
		*error_r = mf_errorf("%s: file too large (max %d bytes)", name, MF_CONF_FILE_MAX);
		goto out;
	}
	if ((bad = u8_check((const uint8_t *)data, len)) != NULL) {
		*error_r = mf_errorf("%s:%u: invalid UTF-8", name,
				     line_of(data, (size_t)((const char *)bad - data)));
		goto out;
	}
	while (pos < len) {
		const char *nl = memchr(data + pos, '\n', len - pos);
		size_t end = nl != NULL ? (size_t)(nl - data) : len;
		const char *err;

		p.line++;
		if (end - pos > MF_CONF_LINE_MAX) {
			*error_r = mf_errorf("%s:%u: line too long (max %d bytes)", name, p.line,
					     MF_CONF_LINE_MAX);
			goto out;
		}
		if (++p.nodes > MF_CONF_NODES_MAX) {
			*error_r = mf_errorf("%s:%u: too many lines (max %d)", name, p.line,
					     MF_CONF_NODES_MAX);
			goto out;
		}
		if (parse_line(&p, data + pos, end - pos, nl == NULL, &err) < 0) {
			*error_r = mf_errorf("%s:%u: %s", name, p.line, err);
			goto out;
		}
		pos = nl != NULL ? end + 1 : len;
	}
	if (p.depth > 0) {
		struct mf_conf_node *open = p.stack[p.depth];
		*error_r = mf_errorf("%s:%u: block %s is not closed", name, open->line, open->key);
		goto out;
	}
	*conf_r = conf;
	conf = NULL;
	ret = 0;
out:
	mf_buf_free(&p.value);
	mf_conf_free(&conf);
	return ret;
}

int mf_conf_parse_file(const char *path, struct mf_conf **conf_r, const char **error_r)
{
	size_t len;
	char *data = mf_fs_read_file(path, MF_CONF_FILE_MAX, &len, error_r);
	int ret;

	if (data == NULL)
		return -1;
	ret = mf_conf_parse_buf(path, data, len, conf_r, error_r);
	free(data);
	return ret;
}

/* --- serializer --- */

static bool needs_quotes(const char *v)
{
	if (*v == '\0')
		return true;
	for (; *v != '\0'; v++)
		if (!is_bare((unsigned char)*v))
			return true;
	return false;
}

static void append_value(struct mf_buf *b, const char *v)
{
	if (!needs_quotes(v)) {
		mf_buf_append_str(b, v);
		return;
	}
	mf_buf_append(b, "\"", 1);
	for (; *v != '\0'; v++) {
		switch (*v) {
		case '"': mf_buf_append(b, "\\\"", 2); break;
		case '\\': mf_buf_append(b, "\\\\", 2); break;
		case '\n': mf_buf_append(b, "\\n", 2); break;
		case '\t': mf_buf_append(b, "\\t", 2); break;
		default:
			/* Other control characters cannot be written; the
			 * parser would refuse them, so re-parsing catches it. */
			mf_buf_append(b, v, 1);
		}
	}
	mf_buf_append(b, "\"", 1);
}

static void append_indent(struct mf_buf *b, unsigned depth)
{
	for (unsigned i = 0; i < depth; i++)
		mf_buf_append(b, "    ", 4);
}

static void serialize_node(struct mf_buf *b, const struct mf_conf_node *node, unsigned depth,
			   bool *no_eol_r)
{
	if (node->raw != NULL && !node->dirty) {
		mf_buf_append_str(b, node->raw);
		*no_eol_r = node->no_eol;
	} else {
		append_indent(b, depth);
		mf_buf_append_str(b, node->key != NULL ? node->key : "");
		for (size_t i = 0; i < node->values_count; i++) {
			mf_buf_append(b, " ", 1);
			append_value(b, node->values[i]);
		}
		if (node->type == MF_CONF_BLOCK)
			mf_buf_append(b, " {", 2);
		if (node->comment != NULL)
			mf_buf_append_str(b, node->comment);
		*no_eol_r = false;
	}
	mf_buf_append(b, "\n", 1);
	if (node->type != MF_CONF_BLOCK)
		return;
	for (size_t i = 0; i < node->children_count; i++)
		serialize_node(b, node->children[i], depth + 1, no_eol_r);
	if (node->raw_close != NULL) {
		mf_buf_append_str(b, node->raw_close);
		*no_eol_r = node->close_no_eol;
	} else {
		append_indent(b, depth);
		mf_buf_append(b, "}", 1);
		*no_eol_r = false;
	}
	mf_buf_append(b, "\n", 1);
}

char *mf_conf_serialize(const struct mf_conf *conf)
{
	struct mf_buf b;
	bool no_eol = false;

	mf_buf_init(&b, 0);
	for (size_t i = 0; i < conf->root->children_count; i++)
		serialize_node(&b, conf->root->children[i], 0, &no_eol);
	/* Only the file's last line can lack a newline, and only while it is
	 * still the last line. */
	if (no_eol && b.len > 0)
		b.data[--b.len] = '\0';
	return mf_buf_steal(&b);
}

/* --- values --- */

int mf_conf_parse_uint(const char *s, uint64_t max, uint64_t *value_r, const char **error_r)
{
	uint64_t v = 0;

	if (*s == '\0') {
		*error_r = "expected a number";
		return -1;
	}
	for (const char *p = s; *p != '\0'; p++) {
		if (*p < '0' || *p > '9') {
			*error_r = mf_errorf("%s is not a number", s);
			return -1;
		}
		uint64_t d = (uint64_t)(*p - '0');
		if (v > max / 10 || (v == max / 10 && d > max % 10)) {
			*error_r = mf_errorf("%s is too large (max %llu)", s, (unsigned long long)max);
			return -1;
		}
		v = v * 10 + d;
	}
	*value_r = v;
	return 0;
}

int mf_conf_parse_size(const char *s, uint64_t *bytes_r, const char **error_r)
{
	static const char units[] = "KMGT";
	size_t n = strlen(s);
	unsigned shift = 0;
	uint64_t v;
	char *digits;
	const char *unit;
	int ret = -1;

	if (n > 0 && (unit = strchr(units, s[n - 1] & ~0x20)) != NULL && (s[n - 1] & ~0x20) != 0) {
		shift = 10 * (unsigned)(unit - units + 1);
		n--;
	}
	digits = mf_xstrndup(s, n);
	if (n == 0 || mf_conf_parse_uint(digits, UINT64_MAX >> shift, &v, error_r) < 0) {
		*error_r = mf_errorf("bad size %s (want a number with optional K, M, G or T)", s);
		goto out;
	}
	*bytes_r = v << shift;
	ret = 0;
out:
	free(digits);
	return ret;
}

int mf_conf_parse_duration(const char *s, uint64_t *msecs_r, const char **error_r)
{
	uint64_t total = 0;
	const char *p = s;

	if (*p == '\0')
		goto bad;
	while (*p != '\0') {
		uint64_t v = 0, mult;

		if (*p < '0' || *p > '9')
			goto bad;
		while (*p >= '0' && *p <= '9') {
			if (v > (UINT32_MAX - (uint64_t)(*p - '0')) / 10)
				goto bad;
			v = v * 10 + (uint64_t)(*p++ - '0');
		}
		if (p[0] == 'm' && p[1] == 's') {
			mult = 1;
			p += 2;
		} else {
			switch (*p++) {
			case 's': mult = 1000; break;
			case 'm': mult = 60 * 1000; break;
			case 'h': mult = 3600 * 1000; break;
			case 'd': mult = 86400 * 1000; break;
			default: goto bad;
			}
		}
		/* v < 2^32 and mult < 2^27: no overflow per term; cap the sum. */
		total += v * mult;
		if (total > (uint64_t)UINT32_MAX * 86400 * 1000)
			goto bad;
	}
	*msecs_r = total;
	return 0;
bad:
	*error_r = mf_errorf("bad duration %s (want e.g. 30s, 5m, 2h, 7d, 1h30m or 500ms)", s);
	return -1;
}

int mf_conf_parse_bool(const char *s, bool *value_r, const char **error_r)
{
	static const char *const yes[] = { "yes", "true", "on" };
	static const char *const no[] = { "no", "false", "off" };

	for (size_t i = 0; i < 3; i++) {
		if (strcmp(s, yes[i]) == 0) {
			*value_r = true;
			return 0;
		}
		if (strcmp(s, no[i]) == 0) {
			*value_r = false;
			return 0;
		}
	}
	*error_r = mf_errorf("bad boolean %s (want yes or no)", s);
	return -1;
}

static bool host_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '.' || c == '_';
}

int mf_conf_parse_hostport(const char *s, struct mf_conf_hostport *hp_r, const char **error_r)
{
	const char *colon, *host = s;
	size_t hlen;
	uint64_t port;
	bool v6 = false;

	if (s[0] == '[') {
		const char *close = strchr(s, ']');
		if (close == NULL || close[1] != ':') {
			*error_r = mf_errorf("bad address %s (want [IPv6]:PORT)", s);
			return -1;
		}
		host = s + 1;
		hlen = (size_t)(close - host);
		colon = close + 1;
		v6 = true;
	} else {
		colon = strrchr(s, ':');
		if (colon == NULL) {
			*error_r = mf_errorf("bad address %s (want HOST:PORT, [IPv6]:PORT)", s);
			return -1;
		}
		hlen = (size_t)(colon - s);
		if (memchr(s, ':', hlen) != NULL) {
			*error_r = mf_errorf("bad address %s (put IPv6 addresses in brackets: [::1]:25)", s);
			return -1;
		}
	}
	if (hlen == 0 || hlen > MF_CONF_HOST_MAX) {
		*error_r = mf_errorf("bad address %s (empty or too long host)", s);
		return -1;
	}
	for (size_t i = 0; i < hlen; i++) {
		if (!host_char(host[i]) && !(v6 && (host[i] == ':' || host[i] == '%'))) {
			*error_r = mf_errorf("bad address %s (bad character in host)", s);
			return -1;
		}
	}
	if (mf_conf_parse_uint(colon + 1, 65535, &port, error_r) < 0 || port == 0) {
		*error_r = mf_errorf("bad port in %s (want 1-65535)", s);
		return -1;
	}
	memcpy(hp_r->host, host, hlen);
	hp_r->host[hlen] = '\0';
	hp_r->port = (uint16_t)port;
	return 0;
}

char *mf_conf_path(const char *dir, const char *path)
{
	if (path[0] == '/' || dir == NULL || dir[0] == '\0' || strcmp(dir, ".") == 0)
		return mf_xstrdup(path);
	return mf_xasprintf("%s/%s", dir, path);
}

char *mf_conf_dirname(const char *path)
{
	const char *slash = strrchr(path, '/');

	if (slash == NULL)
		return mf_xstrdup(".");
	if (slash == path)
		return mf_xstrdup("/");
	return mf_xstrndup(path, (size_t)(slash - path));
}

/* --- errors --- */

void mf_conf_errors_init(struct mf_conf_errors *errors)
{
	mf_buf_init(&errors->text, 0);
	errors->count = 0;
}

void mf_conf_errors_add(struct mf_conf_errors *errors, const char *file, unsigned line,
			const char *field, const char *fmt, ...)
{
	va_list ap;

	if (errors->count > MF_CONF_ERRORS_MAX)
		return;
	if (errors->count > 0)
		mf_buf_append(&errors->text, "\n", 1);
	if (errors->count++ == MF_CONF_ERRORS_MAX) {
		mf_buf_appendf(&errors->text, "%s: too many errors, stopped", file != NULL ? file : "");
		return;
	}
	if (file != NULL && line > 0)
		mf_buf_appendf(&errors->text, "%s:%u: ", file, line);
	else if (file != NULL)
		mf_buf_appendf(&errors->text, "%s: ", file);
	if (field != NULL)
		mf_buf_appendf(&errors->text, "%s: ", field);
	va_start(ap, fmt);
	mf_buf_vappendf(&errors->text, fmt, ap);
	va_end(ap);
}

static pthread_key_t error_key;
static pthread_once_t error_once = PTHREAD_ONCE_INIT;

static void error_key_init(void)
{
	pthread_key_create(&error_key, free);
}

const char *mf_conf_errors_finish(struct mf_conf_errors *errors)
{
	char *text = NULL;

	pthread_once(&error_once, error_key_init);
	if (errors->count > 0)
		text = mf_buf_steal(&errors->text);
	mf_buf_free(&errors->text);
	errors->count = 0;
	free(pthread_getspecific(error_key));
	pthread_setspecific(error_key, text);
	return text;
}

/* --- schema walker --- */

char *mf_conf_field_path(const char *prefix, const char *key)
{
	if (prefix == NULL || prefix[0] == '\0')
		return mf_xstrdup(key);
	return mf_xasprintf("%s.%s", prefix, key);
}

static int walk_value(struct mf_conf_walk *walk, const struct mf_conf_field *f,
		      const struct mf_conf_node *node, const char *path, void *base,
		      const char **error_r)
{
	void *target = (char *)base + f->offset;
	const char *v = node->values_count > 0 ? node->values[0] : "";
	uint64_t u;

	switch (f->kind) {
	case MF_CONF_KIND_STRING:
	case MF_CONF_KIND_PATH:
		if (v[0] == '\0') {
			*error_r = "must not be empty";
			return -1;
		}
		if (f->max != 0 && strlen(v) > f->max) {
			*error_r = mf_errorf("too long (max %llu bytes)", (unsigned long long)f->max);
			return -1;
		}
		free(*(char **)target);
		*(char **)target = f->kind == MF_CONF_KIND_PATH ? mf_conf_path(walk->dir, v)
								: mf_xstrdup(v);
		return 0;
	case MF_CONF_KIND_UINT:
		if (mf_conf_parse_uint(v, f->max != 0 ? f->max : UINT32_MAX, &u, error_r) < 0)
			return -1;
		*(uint64_t *)target = u;
		return 0;
	case MF_CONF_KIND_SIZE:
		return mf_conf_parse_size(v, (uint64_t *)target, error_r);
	case MF_CONF_KIND_DURATION:
		return mf_conf_parse_duration(v, (uint64_t *)target, error_r);
	case MF_CONF_KIND_BOOL:
		return mf_conf_parse_bool(v, (bool *)target, error_r);
	case MF_CONF_KIND_HOSTPORT:
		return mf_conf_parse_hostport(v, (struct mf_conf_hostport *)target, error_r);
	case MF_CONF_KIND_BLOCK:
		mf_conf_walk_block(walk, node, path, f->children, target);
		return 0;
	case MF_CONF_KIND_CUSTOM:
		return f->custom(walk, node, path, base, error_r);
	}
	*error_r = "unhandled field kind";
	return -1;
}

int mf_conf_walk_block(struct mf_conf_walk *walk, const struct mf_conf_node *block,
		       const char *prefix, const struct mf_conf_field *fields, void *base)
{
	unsigned before = walk->errors->count;
	size_t nfields = 0;
	unsigned *seen;

	while (fields[nfields].key != NULL)
		nfields++;
	seen = mf_xcalloc(nfields + 1, sizeof(*seen));  /* line of first occurrence */
	for (size_t i = 0; i < block->children_count; i++) {
		const struct mf_conf_node *node = block->children[i];
		const struct mf_conf_field *f = NULL;
		unsigned minv = 1, maxv = 1;
		const char *err;
		char *path;
		size_t fi;

		if (node->type == MF_CONF_COMMENT)
			continue;
		for (fi = 0; fi < nfields; fi++) {
			if (strcmp(fields[fi].key, node->key) == 0) {
				f = &fields[fi];
				break;
			}
		}
		path = mf_conf_field_path(prefix, node->key);
		if (f == NULL) {
			mf_conf_errors_add(walk->errors, walk->file, node->line, path, "unknown key");
			goto next;
		}
		if (seen[fi] != 0 && !(f->flags & MF_CONF_F_REPEAT)) {
			mf_conf_errors_add(walk->errors, walk->file, node->line, path,
					   "duplicate (first at line %u)", seen[fi]);
			goto next;
		}
		if (seen[fi] == 0)
			seen[fi] = node->line != 0 ? node->line : UINT_MAX;
		if (f->kind == MF_CONF_KIND_BLOCK || f->kind == MF_CONF_KIND_CUSTOM) {
			minv = f->min_values;
			maxv = f->max_values;
		}
		if (f->kind == MF_CONF_KIND_BLOCK && node->type != MF_CONF_BLOCK) {
			mf_conf_errors_add(walk->errors, walk->file, node->line, path,
					   "must be a block (%s {...})", node->key);
			goto next;
		}
		if (f->kind != MF_CONF_KIND_BLOCK && f->children == NULL &&
		    node->type == MF_CONF_BLOCK) {
			mf_conf_errors_add(walk->errors, walk->file, node->line, path,
					   "is not a block");
			goto next;
		}
		if (f->kind == MF_CONF_KIND_CUSTOM && f->children != NULL &&
		    node->type != MF_CONF_BLOCK) {
			mf_conf_errors_add(walk->errors, walk->file, node->line, path,
					   "must be a block (%s ... {...})", node->key);
			goto next;
		}
		if (node->values_count < minv || node->values_count > maxv) {
			if (minv == maxv && minv == 0)
				err = "takes no value";
			else if (minv == maxv && minv == 1)
				err = "needs exactly one value";
			else if (minv == maxv)
				err = mf_errorf("needs %u values", minv);
			else if (node->values_count < minv)
				err = mf_errorf("needs at least %u value%s", minv, minv == 1 ? "" : "s");
			else
				err = mf_errorf("takes at most %u values", maxv);
			mf_conf_errors_add(walk->errors, walk->file, node->line, path, "%s", err);
			goto next;
		}
		if (walk_value(walk, f, node, path, base, &err) < 0)
			mf_conf_errors_add(walk->errors, walk->file, node->line, path, "%s", err);
next:
		free(path);
	}
	for (size_t fi = 0; fi < nfields; fi++) {
		if ((fields[fi].flags & MF_CONF_F_REQUIRED) && seen[fi] == 0) {
			char *path = mf_conf_field_path(prefix, fields[fi].key);
			mf_conf_errors_add(walk->errors, walk->file, block->line, path,
					   "required but not set");
			free(path);
		}
	}
	free(seen);
	return walk->errors->count == before ? 0 : -1;
}
