/* mime: message structure parser, transfer-encoding decoders and the
 * prefix+blob mapping.  See mime.h.  The input is untrusted: every scan is
 * bounded by the part's range, recursion by MF_MIME_DEPTH_MAX and the number
 * of parts by MF_MIME_PARTS_MAX. */
#include "mime.h"
#include "charset.h"
#include "error.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

struct parser {
	const char *data;
	size_t len;
	size_t part_count;
	bool limit_reached;
};

static bool is_wsp(char c)
{
	return c == ' ' || c == '\t';
}

/* Returns the offset just past the line at pos (its LF included). */
static size_t line_next(const char *d, size_t pos, size_t end)
{
	const char *nl = memchr(d + pos, '\n', end - pos);
	return nl == NULL ? end : (size_t)(nl - d) + 1;
}

/* IMAP body lines: the number of LFs, as Dovecot counts them (an
 * unterminated last line, e.g. before a boundary, does not count). */
static size_t count_lines(const char *d, size_t start, size_t end)
{
	size_t n = 0, pos = start;
	const char *nl;

	while (pos < end && (nl = memchr(d + pos, '\n', end - pos)) != NULL) {
		n++;
		pos = (size_t)(nl - d) + 1;
	}
	return n;
}

enum mf_mime_cte mf_mime_cte_parse(const char *name)
{
	static const struct {
		const char *name;
		enum mf_mime_cte cte;
	} names[] = {
		{ "7bit", MF_MIME_CTE_7BIT }, { "8bit", MF_MIME_CTE_8BIT },
		{ "binary", MF_MIME_CTE_BINARY }, { "base64", MF_MIME_CTE_BASE64 },
		{ "quoted-printable", MF_MIME_CTE_QP },
	};

	if (name == NULL || *name == '\0')
		return MF_MIME_CTE_7BIT;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strcasecmp(name, names[i].name) == 0)
			return names[i].cte;
	return MF_MIME_CTE_UNKNOWN;
}

static void set_type(struct mf_mime_part *part, const char *type, const char *subtype)
{
	free(part->type);
	free(part->subtype);
	part->type = mf_xstrdup(type);
	part->subtype = mf_xstrdup(subtype);
}

/* Reads the MIME fields of the part's header (the first of each counts). */
static void parse_mime_fields(struct parser *p, struct mf_mime_part *part, bool digest_child)
{
	struct mf_mime_header_iter it;
	struct mf_mime_field f;
	bool have_ct = false, have_cte = false, have_cd = false, have_lang = false;

	mf_mime_header_iter_init(&it, p->data, part->header_start, part->header_end);
	while (mf_mime_header_next(&it, &f)) {
		char **dst = NULL;
		if (f.name_len < 8 || strncasecmp(f.name, "content-", 8) != 0)
			continue;
		if (mf_mime_field_is(&f, "content-type") && !have_ct) {
			char *type, *subtype;
			have_ct = true;
			if (mf_mime_content_type_parse(f.value, f.value_len, &type, &subtype,
						       &part->params) == 0) {
				part->type = type;
				part->subtype = subtype;
				part->content_type_valid = true;
			} else {
				/* RFC 2045 5.2: an invalid Content-Type means
				 * text/plain; charset=us-ascii */
				mf_mime_params_free(&part->params);
			}
		} else if (mf_mime_field_is(&f, "content-transfer-encoding") && !have_cte) {
			have_cte = true;
			part->encoding = mf_mime_header_unfold(f.value, f.value_len);
			part->cte = mf_mime_cte_parse(part->encoding);
		} else if (mf_mime_field_is(&f, "content-disposition") && !have_cd) {
			have_cd = true;
			mf_mime_disposition_parse(f.value, f.value_len, &part->disposition,
						  &part->disposition_params);
		} else if (mf_mime_field_is(&f, "content-language") && !have_lang) {
			have_lang = true;
			mf_mime_language_parse(f.value, f.value_len, &part->languages,
					       &part->language_count);
		} else if (mf_mime_field_is(&f, "content-id")) {
			dst = &part->id;
		} else if (mf_mime_field_is(&f, "content-description")) {
			dst = &part->description;
		} else if (mf_mime_field_is(&f, "content-md5")) {
			dst = &part->md5;
		} else if (mf_mime_field_is(&f, "content-location")) {
			dst = &part->location;
		}
		if (dst != NULL && *dst == NULL)
			*dst = mf_mime_header_unfold(f.value, f.value_len);
	}
	if (part->type == NULL) {
		/* RFC 2046 5.1.5: in a digest the default is message/rfc822 */
		if (digest_child && !have_ct)
			set_type(part, "message", "rfc822");
		else
			set_type(part, "text", "plain");
	}
}

/* Falls back to text/plain for a part whose structure cannot be used. */
static void make_malformed(struct mf_mime_part *part)
{
	set_type(part, "text", "plain");
	mf_mime_params_free(&part->params);
	part->content_type_valid = false;
	part->malformed = true;
	part->multipart = false;
	part->message = false;
}

static struct mf_mime_part *parse_part(struct parser *p, struct mf_mime_part *parent,
				       size_t start, size_t end, unsigned depth,
				       bool digest_child);

static void add_child(struct mf_mime_part *part, struct mf_mime_part *child,
		      struct mf_mime_part **last)
{
	if (*last == NULL)
		part->children = child;
	else
		(*last)->next = child;
	*last = child;
	part->child_count++;
}

/* Returns true when d[pos..line_end) is a boundary line for b: "--b" then
 * optional "--" (sets *close) then only white space (RFC 2046 5.1.1). */
static bool is_boundary(const char *d, size_t pos, size_t line_end, const char *b, size_t blen,
			bool *close)
{
	if (line_end - pos < blen + 2 || d[pos] != '-' || d[pos + 1] != '-' ||
	    memcmp(d + pos + 2, b, blen) != 0)
		return false;
	pos += blen + 2;
	*close = false;
	if (line_end - pos >= 2 && d[pos] == '-' && d[pos + 1] == '-') {
		*close = true;
		pos += 2;
	}
	for (; pos < line_end; pos++)
		if (!is_wsp(d[pos]) && d[pos] != '\r' && d[pos] != '\n')
			return false;
	return true;
}

/* The end of a part that a boundary line at bl follows: the line end before
 * the boundary belongs to the boundary. */
static size_t end_before_boundary(const char *d, size_t start, size_t bl)
{
	size_t end = bl;

	if (end > start && d[end - 1] == '\n') {
		end--;
		if (end > start && d[end - 1] == '\r')
			end--;
	}
	return end;
}

static void parse_multipart(struct parser *p, struct mf_mime_part *part, unsigned depth)
{
	const char *b = mf_mime_params_get(&part->params, "boundary");
	const char *d = p->data;
	size_t blen = b != NULL ? strlen(b) : 0;
	size_t pos = part->body_start, child_start = SIZE_MAX;
	struct mf_mime_part *last = NULL;
	bool digest = strcmp(part->subtype, "digest") == 0;

	if (blen == 0 || blen > MF_MIME_BOUNDARY_MAX) {
		make_malformed(part);
		return;
	}
	part->multipart = true;
	while (pos < part->body_end) {
		size_t next = line_next(d, pos, part->body_end);
		bool close;
		if (d[pos] == '-' && is_boundary(d, pos, next, b, blen, &close)) {
			if (child_start != SIZE_MAX) {
				if (p->part_count >= MF_MIME_PARTS_MAX) {
					p->limit_reached = true;
					child_start = SIZE_MAX;
					break;
				}
				add_child(part, parse_part(p, part, child_start,
							   end_before_boundary(d, child_start, pos),
							   depth + 1, digest),
					  &last);
			}
			child_start = SIZE_MAX;
			if (close)
				break;
			child_start = next;
		}
		pos = next;
	}
	/* a missing closing boundary: the last part runs to the end */
	if (child_start != SIZE_MAX) {
		if (p->part_count >= MF_MIME_PARTS_MAX)
			p->limit_reached = true;
		else
			add_child(part, parse_part(p, part, child_start, part->body_end, depth + 1,
						   digest),
				  &last);
	}
	if (part->children == NULL)
		make_malformed(part); /* no part at all: IMAP needs at least one */
}

static struct mf_mime_part *parse_part(struct parser *p, struct mf_mime_part *parent,
				       size_t start, size_t end, unsigned depth,
				       bool digest_child)
{
	struct mf_mime_part *part = mf_xcalloc(1, sizeof(*part));
	const char *d = p->data;
	size_t pos = start;

	p->part_count++;
	part->parent = parent;
	part->depth = depth;
	part->header_start = start;
	part->header_end = part->body_start = end;
	part->body_end = end;
	while (pos < end) {
		size_t next = line_next(d, pos, end);
		if (d[pos] == '\n' || (d[pos] == '\r' && pos + 1 < end && d[pos + 1] == '\n')) {
			part->header_end = pos;
			part->body_start = next;
			break;
		}
		pos = next;
	}
	parse_mime_fields(p, part, digest_child);
	part->body_lines = count_lines(d, part->body_start, part->body_end);

	bool is_multipart = strcmp(part->type, "multipart") == 0;
	bool is_message = strcmp(part->type, "message") == 0 &&
			  (strcmp(part->subtype, "rfc822") == 0 ||
			   strcmp(part->subtype, "global") == 0);
	if ((is_multipart || is_message) &&
	    (depth + 1 > MF_MIME_DEPTH_MAX || p->part_count >= MF_MIME_PARTS_MAX)) {
		p->limit_reached = true;
		make_malformed(part);
	} else if (is_multipart) {
		parse_multipart(p, part, depth);
	} else if (is_message) {
		/* the encapsulated message is parsed as written, even when a
		 * (forbidden, RFC 2046 5.2.1) transfer encoding was applied */
		part->message = true;
		part->children = parse_part(p, part, part->body_start, part->body_end, depth + 1,
					    false);
		part->child_count = 1;
	}
	return part;
}

void mf_mime_parse(const char *data, size_t len, struct mf_mime_message *msg_r)
{
	struct parser p = { data, len, 0, false };

	msg_r->data = data;
	msg_r->len = len;
	msg_r->root = parse_part(&p, NULL, 0, len, 0, false);
	msg_r->part_count = p.part_count;
	msg_r->limit_reached = p.limit_reached;
}

static void part_free(struct mf_mime_part *part)
{
	while (part != NULL) {
		struct mf_mime_part *next = part->next;
		part_free(part->children);
		free(part->type);
		free(part->subtype);
		mf_mime_params_free(&part->params);
		free(part->encoding);
		free(part->id);
		free(part->description);
		free(part->md5);
		free(part->location);
		free(part->disposition);
		mf_mime_params_free(&part->disposition_params);
		for (size_t i = 0; i < part->language_count; i++)
			free(part->languages[i]);
		free(part->languages);
		free(part);
		part = next;
	}
}

void mf_mime_message_free(struct mf_mime_message *msg)
{
	part_free(msg->root);
	msg->root = NULL;
}

char *mf_mime_part_header(const struct mf_mime_message *msg, const struct mf_mime_part *part,
			  const char *name)
{
	struct mf_mime_header_iter it;
	struct mf_mime_field f;

	mf_mime_header_iter_init(&it, msg->data, part->header_start, part->header_end);
	while (mf_mime_header_next(&it, &f))
		if (mf_mime_field_is(&f, name))
			return mf_mime_header_unfold(f.value, f.value_len);
	return NULL;
}

char *mf_mime_part_filename(const struct mf_mime_part *part)
{
	const char *v = mf_mime_params_get(&part->disposition_params, "filename");

	if (v == NULL || *v == '\0')
		v = mf_mime_params_get(&part->params, "name");
	if (v == NULL || *v == '\0')
		return NULL;
	return mf_mime_header_decode(v, strlen(v));
}

/* --- transfer encodings ------------------------------------------------- */

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

static int b64_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	return c == '+' ? 62 : c == '/' ? 63 : -1;
}

static int decode_base64(const char *in, size_t len, struct mf_buf *out)
{
	char chunk[3 * 1024];
	size_t n = 0;
	uint32_t acc = 0;
	int bits = 0;

	for (size_t i = 0; i < len; i++) {
		int v = b64_value((unsigned char)in[i]);
		if (v < 0)
			continue; /* line ends, padding and junk */
		acc = (acc << 6) | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			chunk[n++] = (char)((acc >> bits) & 0xff);
			if (n == sizeof(chunk)) {
				if (mf_buf_append(out, chunk, n) < 0)
					return -1;
				n = 0;
			}
		}
	}
	return mf_buf_append(out, chunk, n);
}

static int decode_qp(const char *in, size_t len, struct mf_buf *out)
{
	size_t i = 0;

	while (i < len) {
		/* one line at a time, without its trailing white space */
		const char *nl = memchr(in + i, '\n', len - i);
		size_t le = nl ? (size_t)(nl - in) : len, ce = le;
		if (ce > i && in[ce - 1] == '\r')
			ce--;
		while (ce > i && is_wsp(in[ce - 1]))
			ce--;
		bool soft = false;
		size_t j = i, run = i;
		while (j < ce) {
			if (in[j] != '=') {
				j++;
				continue;
			}
			if (mf_buf_append(out, in + run, j - run) < 0)
				return -1;
			if (j + 1 == ce) {
				soft = true; /* "=" at the end: soft line break */
				j++;
			} else if (j + 2 < ce && hexval(in[j + 1]) >= 0 && hexval(in[j + 2]) >= 0) {
				char c = (char)(hexval(in[j + 1]) * 16 + hexval(in[j + 2]));
				if (mf_buf_append(out, &c, 1) < 0)
					return -1;
				j += 3;
			} else {
				if (mf_buf_append(out, "=", 1) < 0)
					return -1;
				j++;
			}
			run = j;
		}
		if (mf_buf_append(out, in + run, ce - run) < 0)
			return -1;
		if (nl == NULL)
			break;
		bool crlf = le > i && in[le - 1] == '\r';
		if (!soft && mf_buf_append(out, crlf ? "\r\n" : "\n", crlf ? 2 : 1) < 0)
			return -1;
		i = le + 1;
	}
	return 0;
}

int mf_mime_decode(enum mf_mime_cte cte, const char *in, size_t len, struct mf_buf *out,
		   const char **error_r)
{
	int r;

	switch (cte) {
	case MF_MIME_CTE_7BIT:
	case MF_MIME_CTE_8BIT:
	case MF_MIME_CTE_BINARY:
		r = mf_buf_append(out, in, len);
		break;
	case MF_MIME_CTE_BASE64:
		r = decode_base64(in, len, out);
		break;
	case MF_MIME_CTE_QP:
		r = decode_qp(in, len, out);
		break;
	default:
		*error_r = "unknown content transfer encoding";
		return -1;
	}
	if (r < 0)
		*error_r = "decoded content too large";
	return r;
}

int mf_mime_part_text(const struct mf_mime_message *msg, const struct mf_mime_part *part,
		      struct mf_buf *out, const char **error_r)
{
	struct mf_buf raw;
	const char *charset = mf_mime_params_get(&part->params, "charset");
	const char *error;
	int ret = -1;

	mf_buf_init(&raw, out->max);
	if (mf_mime_decode(part->cte, msg->data + part->body_start,
			   part->body_end - part->body_start, &raw, error_r) < 0)
		goto out;
	const char *d = raw.data != NULL ? raw.data : "";
	size_t mark = out->len;
	if (mf_charset_to_utf8(charset, d, raw.len, out, &error) < 0) {
		/* unknown charset: the usual reading of unlabelled 8-bit text */
		out->len = mark;
		if (out->data != NULL)
			out->data[mark] = '\0';
		if (mf_charset_8bit_to_utf8(d, raw.len, out) < 0) {
			*error_r = "decoded content too large";
			goto out;
		}
	}
	ret = 0;
out:
	mf_buf_free(&raw);
	return ret;
}

/* --- prefix + blob mapping ---------------------------------------------- */

int mf_mime_map_open(const char *prefix, size_t prefix_len, int fd, struct mf_mime_map *map_r,
		     const char **error_r)
{
	struct stat st;
	size_t page = (size_t)sysconf(_SC_PAGESIZE);

	memset(map_r, 0, sizeof(*map_r));
	if (fstat(fd, &st) < 0) {
		*error_r = mf_errorf("fstat: %s", strerror(errno));
		return -1;
	}
	if (st.st_size < 0 || (uint64_t)st.st_size > SIZE_MAX / 2 || prefix_len > SIZE_MAX / 4) {
		*error_r = "message too large to map";
		return -1;
	}
	size_t file_len = (size_t)st.st_size;
	/* the prefix ends exactly at a page boundary where the file begins */
	size_t pre = (prefix_len + page - 1) / page * page;
	size_t total = pre + (file_len + page - 1) / page * page;
	if (total == 0)
		total = page;
	char *base = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (base == MAP_FAILED) {
		*error_r = mf_errorf("mmap: %s", strerror(errno));
		return -1;
	}
	if (prefix_len > 0)
		memcpy(base + pre - prefix_len, prefix, prefix_len);
	if (pre > 0 && mprotect(base, pre, PROT_READ) < 0) {
		*error_r = mf_errorf("mprotect: %s", strerror(errno));
		munmap(base, total);
		return -1;
	}
	if (file_len > 0 &&
	    mmap(base + pre, file_len, PROT_READ, MAP_PRIVATE | MAP_FIXED, fd, 0) == MAP_FAILED) {
		*error_r = mf_errorf("mmap: %s", strerror(errno));
		munmap(base, total);
		return -1;
	}
	map_r->base = base;
	map_r->base_len = total;
	map_r->data = base + pre - prefix_len;
	map_r->len = prefix_len + file_len;
	return 0;
}

void mf_mime_map_close(struct mf_mime_map *map)
{
	if (map->base != NULL)
		munmap(map->base, map->base_len);
	memset(map, 0, sizeof(*map));
}
