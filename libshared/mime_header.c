/* mime_header: header fields, RFC 2047 words, RFC 2231 parameters and
 * address lists.  See mime_header.h.  All input is untrusted message text:
 * every loop advances, every length is bounded, nothing fails hard. */
#include "mime_header.h"
#include "charset.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static bool is_wsp(char c)
{
	return c == ' ' || c == '\t';
}

static bool is_fws(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static char *lower_dup(const char *s, size_t len)
{
	char *r = mf_xstrndup(s, len); /* stops at a NUL in the input */
	for (size_t i = 0; r[i] != '\0'; i++)
		if (r[i] >= 'A' && r[i] <= 'Z')
			r[i] = (char)(r[i] - 'A' + 'a');
	return r;
}

/* --- header fields ------------------------------------------------------ */

void mf_mime_header_iter_init(struct mf_mime_header_iter *it, const char *data,
			      size_t start, size_t end)
{
	it->data = data;
	it->pos = start;
	it->end = end;
	it->limit = end - start > MF_MIME_HEADER_MAX ? start + MF_MIME_HEADER_MAX : end;
	it->count = 0;
}

/* Returns the offset just past the line starting at pos (its LF included). */
static size_t line_next(const char *data, size_t pos, size_t end)
{
	const char *nl = memchr(data + pos, '\n', end - pos);
	return nl == NULL ? end : (size_t)(nl - data) + 1;
}

bool mf_mime_header_next(struct mf_mime_header_iter *it, struct mf_mime_field *field_r)
{
	const char *d = it->data;

	while (it->pos < it->limit && it->count < MF_MIME_HEADER_FIELDS_MAX) {
		size_t start = it->pos, next = line_next(d, start, it->end);
		/* a field is its first line plus continuation lines (WSP first) */
		while (next < it->end && is_wsp(d[next]))
			next = line_next(d, next, it->end);
		it->pos = next;
		if (is_wsp(d[start]) || d[start] == '\r' || d[start] == '\n')
			continue; /* continuation without a field, or a stray line */
		size_t colon = start;
		while (colon < next && d[colon] != ':' && d[colon] != '\n')
			colon++;
		if (colon >= next || d[colon] != ':')
			continue; /* no field name: junk line */
		size_t name_end = colon;
		while (name_end > start && is_wsp(d[name_end - 1]))
			name_end--; /* RFC 5322 4.5 obs-optional "Name :" */
		bool ok = name_end > start;
		for (size_t i = start; i < name_end; i++)
			if ((unsigned char)d[i] <= 32 || (unsigned char)d[i] >= 127)
				ok = false;
		if (!ok)
			continue;
		size_t vend = next;
		if (vend > colon + 1 && d[vend - 1] == '\n')
			vend--;
		if (vend > colon + 1 && d[vend - 1] == '\r')
			vend--;
		/* interpret at most MF_MIME_HEADER_MAX bytes of any one field */
		if (vend > it->limit)
			vend = it->limit > colon + 1 ? it->limit : colon + 1;
		field_r->name = d + start;
		field_r->name_len = name_end - start;
		field_r->value = d + colon + 1;
		field_r->value_len = vend - (colon + 1);
		field_r->start = start;
		field_r->end = next;
		it->count++;
		return true;
	}
	return false;
}

bool mf_mime_field_is(const struct mf_mime_field *f, const char *name)
{
	return strlen(name) == f->name_len && strncasecmp(f->name, name, f->name_len) == 0;
}

char *mf_mime_header_unfold(const char *v, size_t len)
{
	char *r = mf_xmalloc(len + 1);
	size_t n = 0;

	for (size_t i = 0; i < len; i++)
		if (v[i] != '\r' && v[i] != '\n')
			r[n++] = v[i];
	size_t s = 0;
	while (s < n && is_wsp(r[s]))
		s++;
	while (n > s && is_wsp(r[n - 1]))
		n--;
	memmove(r, r + s, n - s);
	r[n - s] = '\0';
	return r;
}

/* --- RFC 2047 encoded words --------------------------------------------- */

/* RFC 2047 2: an encoded word is at most 75 characters; real messages exceed
 * that, so accept up to this many before giving up on a candidate. */
#define MIME_ENCODED_WORD_MAX 1024

struct encoded_word {
	const char *charset;
	size_t charset_len;
	char encoding;   /* 'B' or 'Q' */
	const char *text;
	size_t text_len;
	size_t len;      /* of the whole word */
};

/* Recognises "=?charset?X?text?=" at s[0..len). */
static bool encoded_word_parse(const char *s, size_t len, struct encoded_word *w)
{
	size_t i = 2, max = len < MIME_ENCODED_WORD_MAX ? len : MIME_ENCODED_WORD_MAX;

	if (len < 8 || s[0] != '=' || s[1] != '?')
		return false;
	while (i < max && s[i] != '?' && !is_fws(s[i]))
		i++;
	if (i >= max || s[i] != '?' || i == 2 || i - 2 > MF_CHARSET_NAME_MAX)
		return false;
	w->charset = s + 2;
	w->charset_len = i - 2;
	if (i + 2 >= max || s[i + 2] != '?')
		return false;
	w->encoding = s[i + 1] == 'b' ? 'B' : s[i + 1] == 'q' ? 'Q' : s[i + 1];
	if (w->encoding != 'B' && w->encoding != 'Q')
		return false;
	size_t t = i + 3;
	for (size_t j = t; j + 1 < max; j++) {
		if (is_fws(s[j]))
			return false;
		if (s[j] == '?' && s[j + 1] == '=') {
			w->text = s + t;
			w->text_len = j - t;
			w->len = j + 2;
			return true;
		}
	}
	return false;
}

static const signed char b64_table[256] = {
	['A'] = 1, ['B'] = 2, ['C'] = 3, ['D'] = 4, ['E'] = 5, ['F'] = 6, ['G'] = 7,
	['H'] = 8, ['I'] = 9, ['J'] = 10, ['K'] = 11, ['L'] = 12, ['M'] = 13,
	['N'] = 14, ['O'] = 15, ['P'] = 16, ['Q'] = 17, ['R'] = 18, ['S'] = 19,
	['T'] = 20, ['U'] = 21, ['V'] = 22, ['W'] = 23, ['X'] = 24, ['Y'] = 25,
	['Z'] = 26, ['a'] = 27, ['b'] = 28, ['c'] = 29, ['d'] = 30, ['e'] = 31,
	['f'] = 32, ['g'] = 33, ['h'] = 34, ['i'] = 35, ['j'] = 36, ['k'] = 37,
	['l'] = 38, ['m'] = 39, ['n'] = 40, ['o'] = 41, ['p'] = 42, ['q'] = 43,
	['r'] = 44, ['s'] = 45, ['t'] = 46, ['u'] = 47, ['v'] = 48, ['w'] = 49,
	['x'] = 50, ['y'] = 51, ['z'] = 52, ['0'] = 53, ['1'] = 54, ['2'] = 55,
	['3'] = 56, ['4'] = 57, ['5'] = 58, ['6'] = 59, ['7'] = 60, ['8'] = 61,
	['9'] = 62, ['+'] = 63, ['/'] = 64,
};

/* Base64 that skips characters outside the alphabet and stops at '='. */
static int b64_decode(const char *s, size_t len, struct mf_buf *out)
{
	uint32_t acc = 0;
	int bits = 0;

	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '=')
			break;
		if (b64_table[c] == 0)
			continue;
		acc = (acc << 6) | (uint32_t)(b64_table[c] - 1);
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			char byte = (char)((acc >> bits) & 0xff);
			if (mf_buf_append(out, &byte, 1) < 0)
				return -1;
		}
	}
	return 0;
}

static int q_decode(const char *s, size_t len, struct mf_buf *out)
{
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		int hi, lo;
		if (c == '_')
			c = ' ';
		else if (c == '=' && i + 2 < len && (hi = hexval(s[i + 1])) >= 0 &&
			 (lo = hexval(s[i + 2])) >= 0) {
			c = (char)(hi * 16 + lo);
			i += 2;
		}
		if (mf_buf_append(out, &c, 1) < 0)
			return -1;
	}
	return 0;
}

struct word_run {
	char charset[MF_CHARSET_NAME_MAX + 1];
	struct mf_buf bytes;  /* decoded bytes of adjacent words in charset */
	const char *raw;      /* the words as written, for an unknown charset */
	size_t raw_len;
	bool active;
};

static int run_flush(struct word_run *run, struct mf_buf *out)
{
	const char *error;
	int ret = 0;

	if (!run->active)
		return 0;
	size_t mark = out->len;
	if (mf_charset_to_utf8(run->charset, run->bytes.data ? run->bytes.data : "",
			       run->bytes.len, out, &error) < 0) {
		/* unknown charset (or cap): show the words as they were */
		if (out->len > mark) {
			out->len = mark;
			out->data[mark] = '\0';
		}
		ret = mf_charset_8bit_to_utf8(run->raw, run->raw_len, out);
	}
	mf_buf_reset(&run->bytes);
	run->active = false;
	return ret;
}

/* Appends v[s..e) without CR and LF. */
static int append_wsp(const char *v, size_t s, size_t e, struct mf_buf *out)
{
	for (size_t j = s; j < e; j++)
		if (v[j] != '\r' && v[j] != '\n' && mf_buf_append(out, v + j, 1) < 0)
			return -1;
	return 0;
}

int mf_mime_header_decode_buf(const char *v, size_t len, struct mf_buf *out)
{
	struct word_run run;
	size_t i = 0, ws_s = 0, ws_e = 0;
	bool after_word = false;
	int ret = -1;

	memset(&run, 0, sizeof(run));
	mf_buf_init(&run.bytes, MF_MIME_HEADER_MAX);
	while (i < len) {
		struct encoded_word w;
		if (v[i] == '=' && encoded_word_parse(v + i, len - i, &w)) {
			char cs[MF_CHARSET_NAME_MAX + 1];
			memcpy(cs, w.charset, w.charset_len);
			cs[w.charset_len] = '\0';
			/* RFC 2047 6.2: white space between two encoded words
			 * is dropped; words in one charset are converted
			 * together so a character split between them survives */
			if (!(run.active && after_word && strcasecmp(cs, run.charset) == 0)) {
				if (run_flush(&run, out) < 0)
					goto out;
				memcpy(run.charset, cs, w.charset_len + 1);
				run.raw = v + i;
				run.active = true;
			}
			run.raw_len = (size_t)(v + i + w.len - run.raw);
			if ((w.encoding == 'B' ? b64_decode(w.text, w.text_len, &run.bytes)
					       : q_decode(w.text, w.text_len, &run.bytes)) < 0)
				goto out;
			i += w.len;
			ws_s = ws_e = 0;
			after_word = true;
			continue;
		}
		if (is_fws(v[i])) {
			size_t s = i;
			while (i < len && is_fws(v[i]))
				i++;
			if (after_word) {
				ws_s = s; /* held until we know what follows */
				ws_e = i;
			} else if (append_wsp(v, s, i, out) < 0) {
				goto out;
			}
			continue;
		}
		if (run_flush(&run, out) < 0 || append_wsp(v, ws_s, ws_e, out) < 0)
			goto out;
		ws_s = ws_e = 0;
		after_word = false;
		size_t s = i++;
		while (i < len && !is_fws(v[i]) && !(v[i] == '=' && i + 1 < len && v[i + 1] == '?'))
			i++;
		if (mf_charset_8bit_to_utf8(v + s, i - s, out) < 0)
			goto out;
	}
	if (run_flush(&run, out) < 0 || append_wsp(v, ws_s, ws_e, out) < 0)
		goto out;
	ret = 0;
out:
	mf_buf_free(&run.bytes);
	return ret;
}

char *mf_mime_header_decode(const char *v, size_t len)
{
	struct mf_buf b;

	mf_buf_init(&b, 0);
	(void)mf_mime_header_decode_buf(v, len, &b);
	char *r = mf_mime_header_unfold(b.data ? b.data : "", b.len);
	mf_buf_free(&b);
	return r;
}

/* --- RFC 5322 comments and quoted strings ------------------------------- */

/* Skips a comment starting at s[*i] == '(' (nested up to
 * MF_MIME_COMMENT_DEPTH_MAX; an unterminated one runs to the end). */
static void skip_comment(const char *s, size_t len, size_t *i)
{
	unsigned depth = 0;

	while (*i < len) {
		char c = s[(*i)++];
		if (c == '\\' && *i < len)
			(*i)++;
		else if (c == '(') {
			if (depth < MF_MIME_COMMENT_DEPTH_MAX)
				depth++;
		} else if (c == ')' && --depth == 0)
			return;
	}
}

static void skip_cfws(const char *s, size_t len, size_t *i)
{
	while (*i < len) {
		if (is_fws(s[*i]))
			(*i)++;
		else if (s[*i] == '(')
			skip_comment(s, len, i);
		else
			break;
	}
}

/* Appends the content of a quoted string starting at s[*i] == '"' to out,
 * without quotes and with quoted-pairs resolved; moves *i past it. */
static void read_quoted(const char *s, size_t len, size_t *i, struct mf_buf *out)
{
	(*i)++;
	while (*i < len && s[*i] != '"') {
		if (s[*i] == '\\' && *i + 1 < len)
			(*i)++;
		if (s[*i] != '\r' && s[*i] != '\n')
			(void)mf_buf_append(out, s + *i, 1);
		(*i)++;
	}
	if (*i < len)
		(*i)++;
}

/* --- parameters (RFC 2045 5.1, RFC 2231) -------------------------------- */

/* RFC 2045 5.1 tspecials plus SPACE and CTLs end a token. */
static bool is_token_char(unsigned char c)
{
	return c > 32 && c < 127 && strchr("()<>@,;:\\\"/[]?=", c) == NULL;
}

struct raw_param {
	char *name;   /* lower-case, as written */
	char *value;
};

/* Raw name=value pairs before RFC 2231 merging: bounded so that
 * continuations cannot make merging quadratic in the field size. */
#define MIME_RAW_PARAMS_MAX (MF_MIME_PARAMS_MAX * 4)

static size_t params_scan(const char *s, size_t len, struct raw_param *raw)
{
	size_t i = 0, n = 0;
	struct mf_buf v;

	mf_buf_init(&v, 0);
	while (i < len && n < MIME_RAW_PARAMS_MAX) {
		while (i < len && s[i] != ';') {
			if (s[i] == '"') {
				mf_buf_reset(&v);
				read_quoted(s, len, &i, &v);
			} else if (s[i] == '(') {
				skip_comment(s, len, &i);
			} else {
				i++;
			}
		}
		if (i >= len)
			break;
		i++;
		skip_cfws(s, len, &i);
		size_t ns = i;
		while (i < len && !is_fws(s[i]) && s[i] != '=' && s[i] != ';' && s[i] != '(')
			i++;
		size_t ne = i;
		skip_cfws(s, len, &i);
		if (ne == ns || i >= len || s[i] != '=')
			continue;
		i++;
		skip_cfws(s, len, &i);
		mf_buf_reset(&v);
		if (i < len && s[i] == '"') {
			read_quoted(s, len, &i, &v);
		} else {
			/* a token; real messages also have unquoted values with
			 * spaces, so take everything up to ';' */
			size_t vs = i;
			while (i < len && s[i] != ';' && s[i] != '(')
				i++;
			size_t ve = i;
			while (ve > vs && is_fws(s[ve - 1]))
				ve--;
			for (size_t j = vs; j < ve; j++)
				if (s[j] != '\r' && s[j] != '\n')
					(void)mf_buf_append(&v, s + j, 1);
		}
		raw[n].name = lower_dup(s + ns, ne - ns);
		raw[n].value = mf_xstrndup(v.data ? v.data : "", v.len);
		n++;
	}
	mf_buf_free(&v);
	return n;
}

/* Splits an RFC 2231 name: "base*3*" gives base_len, section 3, ext.
 * section is -1 without a section number. */
static void name_2231(const char *name, size_t *base_len, long *section, bool *ext)
{
	size_t len = strlen(name);

	*ext = false;
	*section = -1;
	if (len > 1 && name[len - 1] == '*') {
		*ext = true;
		len--;
	}
	size_t d = len;
	while (d > 0 && name[d - 1] >= '0' && name[d - 1] <= '9')
		d--;
	if (d < len && d > 1 && name[d - 1] == '*' && len - d <= 3) {
		*section = strtol(name + d, NULL, 10);
		len = d - 1;
	} else if (*ext == false) {
		len = strlen(name);
	}
	*base_len = len;
}

/* Appends an RFC 2231 extended value with %XX resolved. */
static void percent_decode(const char *s, struct mf_buf *out)
{
	for (size_t i = 0; s[i] != '\0'; i++) {
		char c = s[i];
		int hi, lo;
		if (c == '%' && (hi = hexval(s[i + 1])) >= 0 && (lo = hexval(s[i + 2])) >= 0) {
			c = (char)(hi * 16 + lo);
			i += 2;
		}
		(void)mf_buf_append(out, &c, 1);
	}
}

/* Builds the value of base from its RFC 2231 pieces in raw. */
static char *merge_2231(struct raw_param *raw, size_t n, const char *base, size_t base_len,
			bool *ext_r)
{
	struct mf_buf bytes, out;
	char charset[MF_CHARSET_NAME_MAX + 1] = "";
	bool have_charset = false;
	const char *error;

	*ext_r = false;
	mf_buf_init(&bytes, 0);
	mf_buf_init(&out, 0);
	/* sections in numeric order; "name*" without a number is section 0 */
	for (long want = 0; want < MF_MIME_PARAM_SECTIONS_MAX; want++) {
		bool found = false;
		for (size_t k = 0; k < n && !found; k++) {
			size_t bl;
			long sec;
			bool ext;
			name_2231(raw[k].name, &bl, &sec, &ext);
			if (bl != base_len || memcmp(raw[k].name, base, bl) != 0 ||
			    (sec < 0 && !ext))
				continue;
			if ((sec < 0 ? 0 : sec) != want)
				continue;
			found = true;
			const char *v = raw[k].value;
			if (ext) {
				*ext_r = true;
				if (want == 0) {
					/* charset'language'value (RFC 2231 4) */
					const char *q1 = strchr(v, '\'');
					const char *q2 = q1 ? strchr(q1 + 1, '\'') : NULL;
					if (q2 != NULL) {
						size_t cl = (size_t)(q1 - v);
						if (cl > 0 && cl <= MF_CHARSET_NAME_MAX) {
							memcpy(charset, v, cl);
							charset[cl] = '\0';
							have_charset = true;
						}
						v = q2 + 1;
					}
				}
				percent_decode(v, &bytes);
			} else {
				(void)mf_buf_append_str(&bytes, v);
			}
		}
		if (!found && want > 0)
			break;
	}
	if (!have_charset || bytes.len == 0 ||
	    mf_charset_to_utf8(charset, bytes.data, bytes.len, &out, &error) < 0) {
		mf_buf_reset(&out);
		(void)mf_charset_8bit_to_utf8(bytes.data ? bytes.data : "", bytes.len, &out);
	}
	mf_buf_free(&bytes);
	char *r = mf_xstrndup(out.data ? out.data : "", out.len);
	mf_buf_free(&out);
	return r;
}

void mf_mime_params_parse(const char *s, size_t len, struct mf_mime_params *params_r)
{
	struct raw_param *raw = mf_xcalloc(MIME_RAW_PARAMS_MAX, sizeof(*raw));
	size_t n = params_scan(s, len, raw);

	params_r->list = NULL;
	params_r->count = 0;
	for (size_t k = 0; k < n && params_r->count < MF_MIME_PARAMS_MAX; k++) {
		size_t bl;
		long sec;
		bool ext, seen = false, is_2231 = false;
		name_2231(raw[k].name, &bl, &sec, &ext);
		for (size_t j = 0; j < params_r->count && !seen; j++)
			seen = strlen(params_r->list[j].name) == bl &&
			       memcmp(params_r->list[j].name, raw[k].name, bl) == 0;
		if (seen || bl == 0)
			continue;
		/* the RFC 2231 form wins over a plain one of the same name */
		for (size_t j = 0; j < n && !is_2231; j++) {
			size_t bl2;
			long sec2;
			bool ext2;
			name_2231(raw[j].name, &bl2, &sec2, &ext2);
			is_2231 = bl2 == bl && memcmp(raw[j].name, raw[k].name, bl) == 0 &&
				  (sec2 >= 0 || ext2);
		}
		struct mf_mime_param p;
		p.name = mf_xstrndup(raw[k].name, bl);
		p.extended = false;
		if (is_2231) {
			p.value = merge_2231(raw, n, raw[k].name, bl, &p.extended);
		} else {
			struct mf_buf b;
			mf_buf_init(&b, 0);
			(void)mf_charset_8bit_to_utf8(raw[k].value, strlen(raw[k].value), &b);
			p.value = mf_xstrndup(b.data ? b.data : "", b.len);
			mf_buf_free(&b);
		}
		params_r->list = mf_xrealloc(params_r->list,
					     (params_r->count + 1) * sizeof(*params_r->list));
		params_r->list[params_r->count++] = p;
	}
	for (size_t k = 0; k < n; k++) {
		free(raw[k].name);
		free(raw[k].value);
	}
	free(raw);
}

const char *mf_mime_params_get(const struct mf_mime_params *params, const char *name)
{
	for (size_t i = 0; i < params->count; i++)
		if (strcmp(params->list[i].name, name) == 0)
			return params->list[i].value;
	return NULL;
}

void mf_mime_params_free(struct mf_mime_params *params)
{
	for (size_t i = 0; i < params->count; i++) {
		free(params->list[i].name);
		free(params->list[i].value);
	}
	free(params->list);
	params->list = NULL;
	params->count = 0;
}

/* Reads a token at s[*i]; returns its length (0 when none). */
static size_t read_token(const char *s, size_t len, size_t *i)
{
	size_t start = *i;

	while (*i < len && is_token_char((unsigned char)s[*i]))
		(*i)++;
	return *i - start;
}

int mf_mime_content_type_parse(const char *v, size_t len, char **type_r,
			       char **subtype_r, struct mf_mime_params *params_r)
{
	size_t i = 0, ts, tl, ss, sl;

	*type_r = NULL;
	*subtype_r = NULL;
	mf_mime_params_parse(v, len, params_r);
	skip_cfws(v, len, &i);
	ts = i;
	tl = read_token(v, len, &i);
	skip_cfws(v, len, &i);
	if (tl == 0 || i >= len || v[i] != '/')
		return -1;
	i++;
	skip_cfws(v, len, &i);
	ss = i;
	sl = read_token(v, len, &i);
	skip_cfws(v, len, &i);
	if (sl == 0 || (i < len && v[i] != ';'))
		return -1;
	*type_r = lower_dup(v + ts, tl);
	*subtype_r = lower_dup(v + ss, sl);
	return 0;
}

void mf_mime_disposition_parse(const char *v, size_t len, char **type_r,
			       struct mf_mime_params *params_r)
{
	size_t i = 0, ts, tl;

	mf_mime_params_parse(v, len, params_r);
	skip_cfws(v, len, &i);
	ts = i;
	tl = read_token(v, len, &i);
	*type_r = tl > 0 ? lower_dup(v + ts, tl) : NULL;
}

void mf_mime_language_parse(const char *v, size_t len, char ***list_r, size_t *count_r)
{
	size_t i = 0;

	*list_r = NULL;
	*count_r = 0;
	while (i < len && *count_r < MF_MIME_LANGUAGES_MAX) {
		skip_cfws(v, len, &i);
		size_t s = i;
		while (i < len && v[i] != ',' && !is_fws(v[i]) && v[i] != '(')
			i++;
		if (i > s) {
			*list_r = mf_xrealloc(*list_r, (*count_r + 1) * sizeof(**list_r));
			(*list_r)[(*count_r)++] = mf_xstrndup(v + s, i - s);
		}
		while (i < len && v[i] != ',')
			i++;
		if (i < len)
			i++;
	}
}

/* --- address lists (RFC 5322 3.4, 4.4) ---------------------------------- */

enum atok_kind { ATOK_ATOM, ATOK_QSTRING, ATOK_COMMENT, ATOK_DOMLIT, ATOK_SPECIAL };

struct atok {
	enum atok_kind kind;
	char special;       /* for ATOK_SPECIAL: one of <>@,;:. */
	const char *s;      /* raw text; quoted string and comment without delimiters */
	size_t len;
	bool space_before;  /* white space or a comment came before it */
};

struct atoks {
	struct atok *list;
	size_t count, cap;
};

static void atok_add(struct atoks *t, struct atok tok)
{
	if (t->count == t->cap) {
		t->cap = t->cap ? t->cap * 2 : 32;
		t->list = mf_xrealloc(t->list, t->cap * sizeof(*t->list));
	}
	t->list[t->count++] = tok;
}

static void address_tokenize(const char *s, size_t len, struct atoks *t)
{
	size_t i = 0;
	bool space = false;

	while (i < len) {
		unsigned char c = (unsigned char)s[i];
		struct atok tok = { .space_before = space };
		if (is_fws((char)c) || c < 32 || c == 127) {
			space = true;
			i++;
			continue;
		}
		space = false;
		if (c == '"' || c == '(' || c == '[') {
			size_t st = i;
			if (c == '"') {
				i++;
				while (i < len && s[i] != '"')
					i += (s[i] == '\\' && i + 1 < len) ? 2 : 1;
				tok.kind = ATOK_QSTRING;
				tok.s = s + st + 1;
				tok.len = (i < len ? i : len) - st - 1;
				if (i < len)
					i++;
			} else if (c == '(') {
				skip_comment(s, len, &i);
				tok.kind = ATOK_COMMENT;
				tok.s = s + st + 1;
				tok.len = i - st - 1 - (s[i - 1] == ')' && i - st > 1 ? 1 : 0);
				space = true;
			} else {
				while (i < len && s[i] != ']')
					i++;
				if (i < len)
					i++;
				tok.kind = ATOK_DOMLIT;
				tok.s = s + st;
				tok.len = i - st;
			}
			atok_add(t, tok);
			continue;
		}
		if (strchr("<>@,;:.", c) != NULL) {
			tok.kind = ATOK_SPECIAL;
			tok.special = (char)c;
			tok.s = s + i;
			tok.len = 1;
			i++;
			atok_add(t, tok);
			continue;
		}
		if (c == ')' || c == ']') {
			i++; /* stray closer */
			continue;
		}
		size_t st = i;
		while (i < len && !is_fws(s[i]) && (unsigned char)s[i] >= 32 && s[i] != 127 &&
		       strchr("<>@,;:.\"()[]", s[i]) == NULL)
			i++;
		tok.kind = ATOK_ATOM;
		tok.s = s + st;
		tok.len = i - st;
		atok_add(t, tok);
	}
}

static bool atok_is(const struct atoks *t, size_t i, char special)
{
	return i < t->count && t->list[i].kind == ATOK_SPECIAL && t->list[i].special == special;
}

static bool atok_is_word(const struct atoks *t, size_t i)
{
	return i < t->count && (t->list[i].kind == ATOK_ATOM || t->list[i].kind == ATOK_QSTRING ||
				atok_is(t, i, '.'));
}

/* Appends a token's text (quoted-pairs of quoted strings resolved). */
static void atok_append(const struct atok *tok, struct mf_buf *out)
{
	if (tok->kind != ATOK_QSTRING && tok->kind != ATOK_COMMENT) {
		(void)mf_buf_append(out, tok->s, tok->len);
		return;
	}
	for (size_t i = 0; i < tok->len; i++) {
		if (tok->s[i] == '\\' && i + 1 < tok->len)
			i++;
		(void)mf_buf_append(out, tok->s + i, 1);
	}
}

/* Joins tokens [a, b) that are words or dots; with spaced, white space in the
 * source becomes one space (phrases), else nothing (local-parts, domains).
 * Comments are skipped.  Returns NULL when empty. */
static char *atok_join(const struct atoks *t, size_t a, size_t b, bool spaced)
{
	struct mf_buf out;

	mf_buf_init(&out, 0);
	for (size_t i = a; i < b; i++) {
		const struct atok *tok = &t->list[i];
		if (tok->kind == ATOK_COMMENT)
			continue;
		if (spaced && tok->space_before && out.len > 0)
			(void)mf_buf_append(&out, " ", 1);
		atok_append(tok, &out);
	}
	if (out.len == 0) {
		mf_buf_free(&out);
		return NULL;
	}
	return mf_buf_steal(&out);
}

static bool address_add(struct mf_mime_address_list *l, enum mf_mime_address_kind kind,
			char *name, char *route, char *mailbox, char *domain)
{
	if (l->count >= MF_MIME_ADDRESSES_MAX) {
		free(name);
		free(route);
		free(mailbox);
		free(domain);
		return false;
	}
	l->list = mf_xrealloc(l->list, (l->count + 1) * sizeof(*l->list));
	struct mf_mime_address *a = &l->list[l->count++];
	a->kind = kind;
	a->name = name;
	a->route = route;
	a->mailbox = mailbox;
	a->domain = domain;
	return true;
}

/* Skips comments; returns the index of the next other token. */
static size_t skip_comments(const struct atoks *t, size_t i, size_t *last_comment)
{
	while (i < t->count && t->list[i].kind == ATOK_COMMENT) {
		if (last_comment != NULL)
			*last_comment = i;
		i++;
	}
	return i;
}

/* Collects a domain from tokens at *i: atoms, dots, literals. */
static char *read_domain(const struct atoks *t, size_t *i)
{
	size_t s = *i;

	while (*i < t->count && (t->list[*i].kind == ATOK_ATOM || t->list[*i].kind == ATOK_DOMLIT ||
				 t->list[*i].kind == ATOK_COMMENT || atok_is(t, *i, '.')))
		(*i)++;
	return atok_join(t, s, *i, false);
}

static char *comment_text(const struct atoks *t, size_t i)
{
	struct mf_buf b;

	mf_buf_init(&b, 0);
	atok_append(&t->list[i], &b);
	char *r = mf_mime_header_unfold(b.data ? b.data : "", b.len);
	mf_buf_free(&b);
	if (*r == '\0') {
		free(r);
		return NULL;
	}
	return r;
}

void mf_mime_address_list_parse(const char *v, size_t len, struct mf_mime_address_list *list_r)
{
	struct atoks t = { NULL, 0, 0 };
	size_t i = 0;
	bool in_group = false, full = false;

	list_r->list = NULL;
	list_r->count = 0;
	address_tokenize(v, len, &t);
	/* keep one slot for the end marker of an open group */
	while (i < t.count && !full) {
		if (list_r->count + 2 > MF_MIME_ADDRESSES_MAX) {
			full = true;
			break;
		}
		if (atok_is(&t, i, ',') || atok_is(&t, i, '>') || t.list[i].kind == ATOK_COMMENT) {
			i++;
			continue;
		}
		if (atok_is(&t, i, ';')) {
			if (in_group)
				address_add(list_r, MF_MIME_ADDRESS_GROUP_END, NULL, NULL, NULL, NULL);
			in_group = false;
			i++;
			continue;
		}
		size_t ps = i, last_comment = SIZE_MAX;
		while (i < t.count && (atok_is_word(&t, i) || t.list[i].kind == ATOK_COMMENT)) {
			if (t.list[i].kind == ATOK_COMMENT)
				last_comment = i;
			i++;
		}
		size_t pe = i;
		if (atok_is(&t, i, ':') && !in_group) {
			char *name = atok_join(&t, ps, pe, true);
			address_add(list_r, MF_MIME_ADDRESS_GROUP_START, NULL, NULL,
				    name != NULL ? name : mf_xstrdup(""), NULL);
			in_group = true;
			i++;
			continue;
		}
		if (atok_is(&t, i, '<')) {
			char *name = atok_join(&t, ps, pe, true), *route = NULL;
			i = skip_comments(&t, i + 1, NULL);
			if (atok_is(&t, i, '@')) {
				/* obs-route: "@a,@b:" (RFC 5322 4.4) */
				size_t rs = i;
				while (i < t.count && !atok_is(&t, i, ':') && !atok_is(&t, i, '>'))
					i++;
				route = atok_join(&t, rs, i, false);
				if (atok_is(&t, i, ':'))
					i++;
			}
			size_t ls = i;
			while (atok_is_word(&t, i) || (i < t.count && t.list[i].kind == ATOK_COMMENT))
				i++;
			char *local = atok_join(&t, ls, i, false), *domain = NULL;
			if (atok_is(&t, i, '@')) {
				i++;
				domain = read_domain(&t, &i);
			}
			while (i < t.count && !atok_is(&t, i, '>') && !atok_is(&t, i, ',') &&
			       !atok_is(&t, i, ';'))
				i++;
			if (atok_is(&t, i, '>'))
				i++;
			if (local == NULL && domain == NULL && route == NULL) {
				free(name); /* "<>" or junk */
				continue;
			}
			address_add(list_r, MF_MIME_ADDRESS_MAILBOX, name, route, local, domain);
			continue;
		}
		if (atok_is(&t, i, '@')) {
			char *local = atok_join(&t, ps, pe, false);
			i++;
			char *domain = read_domain(&t, &i);
			/* obsolete "addr (Name)": a comment names it */
			i = skip_comments(&t, i, NULL);
			for (size_t k = ps; k < i; k++)
				if (t.list[k].kind == ATOK_COMMENT)
					last_comment = k;
			char *name = NULL;
			if (last_comment != SIZE_MAX)
				name = comment_text(&t, last_comment);
			while (i < t.count && !atok_is(&t, i, ',') && !atok_is(&t, i, ';'))
				i++;
			address_add(list_r, MF_MIME_ADDRESS_MAILBOX, name, NULL, local, domain);
			continue;
		}
		/* a phrase without an address, or a stray special */
		char *word = atok_join(&t, ps, pe, false);
		if (word != NULL)
			address_add(list_r, MF_MIME_ADDRESS_MAILBOX, NULL, NULL, word, NULL);
		if (pe == ps)
			i++;
	}
	if (in_group)
		address_add(list_r, MF_MIME_ADDRESS_GROUP_END, NULL, NULL, NULL, NULL);
	free(t.list);
}

void mf_mime_address_list_free(struct mf_mime_address_list *list)
{
	for (size_t i = 0; i < list->count; i++) {
		free(list->list[i].name);
		free(list->list[i].route);
		free(list->list[i].mailbox);
		free(list->list[i].domain);
	}
	free(list->list);
	list->list = NULL;
	list->count = 0;
}
