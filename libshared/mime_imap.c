/* mime_imap: ENVELOPE, BODYSTRUCTURE, sections.  See mime_imap.h. */
#include "mime_imap.h"
#include "charset.h"
#include "error.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* --- strings ------------------------------------------------------------ */

int mf_imap_append_string(struct mf_buf *out, const char *s, size_t len, unsigned flags)
{
	bool literal = len > MF_IMAP_QUOTED_MAX, eight = false;
	size_t n = 0;

	for (size_t i = 0; i < len && !literal; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '\r' || c == '\n')
			literal = true;
		else if (c >= 0x80)
			eight = true;
	}
	if (!literal && eight)
		literal = !(flags & MF_IMAP_UTF8) || !mf_charset_is_utf8(s, len);
	for (size_t i = 0; i < len; i++)
		if (s[i] != '\0')
			n++;
	if (literal) {
		if (mf_buf_appendf(out, "{%zu}\r\n", n) < 0)
			return -1;
		size_t run = 0;
		for (size_t i = 0; i <= len; i++) {
			if (i < len && s[i] != '\0')
				continue;
			if (mf_buf_append(out, s + run, i - run) < 0)
				return -1;
			run = i + 1;
		}
		return 0;
	}
	if (mf_buf_append(out, "\"", 1) < 0)
		return -1;
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '\0')
			continue;
		if ((s[i] == '"' || s[i] == '\\') && mf_buf_append(out, "\\", 1) < 0)
			return -1;
		if (mf_buf_append(out, s + i, 1) < 0)
			return -1;
	}
	return mf_buf_append(out, "\"", 1);
}

int mf_imap_append_nstring(struct mf_buf *out, const char *s, unsigned flags)
{
	if (s == NULL)
		return mf_buf_append(out, "NIL", 3);
	return mf_imap_append_string(out, s, strlen(s), flags);
}

static int append_upper(struct mf_buf *out, const char *s, unsigned flags)
{
	char *u = mf_xstrdup(s);
	for (char *p = u; *p != '\0'; p++)
		if (*p >= 'a' && *p <= 'z')
			*p = (char)(*p - 'a' + 'A');
	int r = mf_imap_append_nstring(out, u, flags);
	free(u);
	return r;
}

/* --- ENVELOPE ----------------------------------------------------------- */

enum env_field { ENV_DATE, ENV_SUBJECT, ENV_FROM, ENV_SENDER, ENV_REPLY_TO, ENV_TO, ENV_CC,
		 ENV_BCC, ENV_IN_REPLY_TO, ENV_MESSAGE_ID, ENV_COUNT };

static const char *const env_names[ENV_COUNT] = {
	"date", "subject", "from", "sender", "reply-to", "to", "cc", "bcc", "in-reply-to",
	"message-id",
};

static int append_address(struct mf_buf *out, const struct mf_mime_address *a, unsigned flags)
{
	int r = mf_buf_append(out, "(", 1);

	switch (a->kind) {
	case MF_MIME_ADDRESS_GROUP_START:
		r |= mf_buf_append_str(out, "NIL NIL ");
		r |= mf_imap_append_nstring(out, a->mailbox, flags);
		r |= mf_buf_append_str(out, " NIL");
		break;
	case MF_MIME_ADDRESS_GROUP_END:
		r |= mf_buf_append_str(out, "NIL NIL NIL NIL");
		break;
	case MF_MIME_ADDRESS_MAILBOX:
		/* a NIL host would mean group syntax: name what is missing */
		r |= mf_imap_append_nstring(out, a->name, flags);
		r |= mf_buf_append(out, " ", 1);
		r |= mf_imap_append_nstring(out, a->route, flags);
		r |= mf_buf_append(out, " ", 1);
		r |= mf_imap_append_nstring(out, a->mailbox ? a->mailbox : "MISSING_MAILBOX", flags);
		r |= mf_buf_append(out, " ", 1);
		r |= mf_imap_append_nstring(out, a->domain ? a->domain : "MISSING_DOMAIN", flags);
		break;
	}
	r |= mf_buf_append(out, ")", 1);
	return r < 0 ? -1 : 0;
}

static int append_address_list(struct mf_buf *out, const struct mf_mime_address_list *l,
			       unsigned flags)
{
	if (l->count == 0)
		return mf_buf_append(out, "NIL", 3);
	if (mf_buf_append(out, "(", 1) < 0)
		return -1;
	for (size_t i = 0; i < l->count; i++)
		if (append_address(out, &l->list[i], flags) < 0)
			return -1;
	return mf_buf_append(out, ")", 1);
}

int mf_imap_envelope(const struct mf_mime_message *msg, const struct mf_mime_part *part,
		     unsigned flags, struct mf_buf *out)
{
	const struct mf_mime_field *found[ENV_COUNT] = { NULL };
	struct mf_mime_field fields[ENV_COUNT];
	struct mf_mime_address_list lists[ENV_COUNT];
	struct mf_mime_header_iter it;
	struct mf_mime_field f;
	int r = 0;

	memset(lists, 0, sizeof(lists));
	mf_mime_header_iter_init(&it, msg->data, part->header_start, part->header_end);
	while (mf_mime_header_next(&it, &f)) {
		for (int i = 0; i < ENV_COUNT; i++) {
			if (found[i] == NULL && mf_mime_field_is(&f, env_names[i])) {
				fields[i] = f;
				found[i] = &fields[i];
			}
		}
	}
	for (int i = ENV_FROM; i <= ENV_BCC; i++)
		if (found[i] != NULL)
			mf_mime_address_list_parse(found[i]->value, found[i]->value_len, &lists[i]);
	r |= mf_buf_append(out, "(", 1);
	for (int i = 0; i < ENV_COUNT; i++) {
		if (i > 0)
			r |= mf_buf_append(out, " ", 1);
		if (i >= ENV_FROM && i <= ENV_BCC) {
			const struct mf_mime_address_list *l = &lists[i];
			/* RFC 9051 7.5.2: absent or empty Sender and Reply-To
			 * default to From */
			if ((i == ENV_SENDER || i == ENV_REPLY_TO) && l->count == 0)
				l = &lists[ENV_FROM];
			r |= append_address_list(out, l, flags);
			continue;
		}
		if (found[i] == NULL) {
			r |= mf_buf_append(out, "NIL", 3);
			continue;
		}
		char *v = mf_mime_header_unfold(found[i]->value, found[i]->value_len);
		r |= mf_imap_append_string(out, v, strlen(v), flags);
		free(v);
	}
	r |= mf_buf_append(out, ")", 1);
	for (int i = 0; i < ENV_COUNT; i++)
		mf_mime_address_list_free(&lists[i]);
	return r < 0 ? -1 : 0;
}

/* --- BODY / BODYSTRUCTURE ----------------------------------------------- */

/* RFC 2231 value for a client that cannot take UTF-8: "utf-8''%XX..". */
static char *rfc2231_encode(const char *v)
{
	struct mf_buf b;

	mf_buf_init(&b, 0);
	(void)mf_buf_append_str(&b, "utf-8''");
	for (const unsigned char *p = (const unsigned char *)v; *p != '\0'; p++) {
		if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		    (*p >= '0' && *p <= '9') || strchr("!#$&+-.^_`|~", *p) != NULL)
			(void)mf_buf_append(&b, p, 1);
		else
			(void)mf_buf_appendf(&b, "%%%02X", *p);
	}
	return mf_buf_steal(&b);
}

static int append_params(struct mf_buf *out, const struct mf_mime_params *params,
			 bool default_charset, unsigned flags)
{
	int r = 0;

	if (params->count == 0 && !default_charset)
		return mf_buf_append(out, "NIL", 3);
	r |= mf_buf_append(out, "(", 1);
	if (default_charset)
		r |= mf_buf_append_str(out, "\"CHARSET\" \"US-ASCII\"");
	for (size_t i = 0; i < params->count; i++) {
		const struct mf_mime_param *p = &params->list[i];
		if (i > 0 || default_charset)
			r |= mf_buf_append(out, " ", 1);
		/* RFC 9051 7.5.2: continuations are joined; a value that
		 * had a charset is returned as "name*" */
		char *name = p->extended ? mf_xasprintf("%s*", p->name) : mf_xstrdup(p->name);
		r |= append_upper(out, name, flags);
		free(name);
		r |= mf_buf_append(out, " ", 1);
		if (p->extended && !(flags & MF_IMAP_UTF8) &&
		    mf_charset_has_8bit(p->value, strlen(p->value))) {
			char *enc = rfc2231_encode(p->value);
			r |= mf_imap_append_nstring(out, enc, flags);
			free(enc);
		} else {
			r |= mf_imap_append_nstring(out, p->value, flags);
		}
	}
	r |= mf_buf_append(out, ")", 1);
	return r < 0 ? -1 : 0;
}

/* body-fld-dsp SP body-fld-lang SP body-fld-loc */
static int append_ext_common(struct mf_buf *out, const struct mf_mime_part *part, unsigned flags)
{
	int r = mf_buf_append(out, " ", 1);

	if (part->disposition == NULL) {
		r |= mf_buf_append(out, "NIL", 3);
	} else {
		r |= mf_buf_append(out, "(", 1);
		r |= append_upper(out, part->disposition, flags);
		r |= mf_buf_append(out, " ", 1);
		r |= append_params(out, &part->disposition_params, false, flags);
		r |= mf_buf_append(out, ")", 1);
	}
	r |= mf_buf_append(out, " ", 1);
	if (part->language_count == 0) {
		r |= mf_buf_append(out, "NIL", 3);
	} else if (part->language_count == 1) {
		r |= mf_imap_append_nstring(out, part->languages[0], flags);
	} else {
		r |= mf_buf_append(out, "(", 1);
		for (size_t i = 0; i < part->language_count; i++) {
			if (i > 0)
				r |= mf_buf_append(out, " ", 1);
			r |= mf_imap_append_nstring(out, part->languages[i], flags);
		}
		r |= mf_buf_append(out, ")", 1);
	}
	r |= mf_buf_append(out, " ", 1);
	r |= mf_imap_append_nstring(out, part->location, flags);
	return r < 0 ? -1 : 0;
}

static const char *encoding_name(const struct mf_mime_part *part)
{
	static const char *const names[] = {
		[MF_MIME_CTE_7BIT] = "7BIT", [MF_MIME_CTE_8BIT] = "8BIT",
		[MF_MIME_CTE_BINARY] = "BINARY", [MF_MIME_CTE_BASE64] = "BASE64",
		[MF_MIME_CTE_QP] = "QUOTED-PRINTABLE",
	};
	if (part->cte == MF_MIME_CTE_UNKNOWN)
		return part->encoding;
	return names[part->cte];
}

int mf_imap_bodystructure(const struct mf_mime_message *msg, const struct mf_mime_part *part,
			  bool extensions, unsigned flags, struct mf_buf *out)
{
	int r = mf_buf_append(out, "(", 1);

	if (part->multipart) {
		for (const struct mf_mime_part *c = part->children; c != NULL; c = c->next)
			r |= mf_imap_bodystructure(msg, c, extensions, flags, out);
		r |= mf_buf_append(out, " ", 1);
		r |= append_upper(out, part->subtype, flags);
		if (extensions) {
			r |= mf_buf_append(out, " ", 1);
			r |= append_params(out, &part->params, false, flags);
			r |= append_ext_common(out, part, flags);
		}
		r |= mf_buf_append(out, ")", 1);
		return r < 0 ? -1 : 0;
	}
	bool text = strcmp(part->type, "text") == 0;
	r |= append_upper(out, part->type, flags);
	r |= mf_buf_append(out, " ", 1);
	r |= append_upper(out, part->subtype, flags);
	r |= mf_buf_append(out, " ", 1);
	/* RFC 2045 5.2: text without a charset is us-ascii */
	r |= append_params(out, &part->params,
			   text && mf_mime_params_get(&part->params, "charset") == NULL, flags);
	r |= mf_buf_append(out, " ", 1);
	r |= mf_imap_append_nstring(out, part->id, flags);
	r |= mf_buf_append(out, " ", 1);
	r |= mf_imap_append_nstring(out, part->description, flags);
	r |= mf_buf_append(out, " ", 1);
	r |= mf_imap_append_nstring(out, encoding_name(part), flags);
	r |= mf_buf_appendf(out, " %zu", part->body_end - part->body_start);
	if (part->message && (strcmp(part->subtype, "rfc822") == 0 || (flags & MF_IMAP_REV2))) {
		r |= mf_buf_append(out, " ", 1);
		r |= mf_imap_envelope(msg, part->children, flags, out);
		r |= mf_buf_append(out, " ", 1);
		r |= mf_imap_bodystructure(msg, part->children, extensions, flags, out);
		r |= mf_buf_appendf(out, " %zu", part->body_lines);
	} else if (text) {
		r |= mf_buf_appendf(out, " %zu", part->body_lines);
	}
	if (extensions) {
		r |= mf_buf_append(out, " ", 1);
		r |= mf_imap_append_nstring(out, part->md5, flags);
		r |= append_ext_common(out, part, flags);
	}
	r |= mf_buf_append(out, ")", 1);
	return r < 0 ? -1 : 0;
}

/* --- section specifiers ------------------------------------------------- */

static bool kw(const char *s, size_t len, size_t *i, const char *word)
{
	size_t wl = strlen(word);

	if (len - *i < wl || strncasecmp(s + *i, word, wl) != 0)
		return false;
	*i += wl;
	return true;
}

/* RFC 9051 ASTRING-CHAR for an atom field name. */
static bool is_astring_char(unsigned char c)
{
	return c > 32 && c < 127 && strchr("(){%*\"\\", c) == NULL;
}

static int parse_header_list(const char *s, size_t len, size_t *i, struct mf_imap_section *sec,
			     const char **error_r)
{
	struct mf_buf name;
	int ret = -1;

	mf_buf_init(&name, MF_IMAP_SECTION_FIELD_NAME_MAX);
	if (*i >= len || s[*i] != ' ' || *i + 1 >= len || s[*i + 1] != '(') {
		*error_r = "expected header field list";
		goto out;
	}
	*i += 2;
	for (;;) {
		mf_buf_reset(&name);
		if (*i < len && s[*i] == '"') {
			(*i)++;
			while (*i < len && s[*i] != '"') {
				if (s[*i] == '\\' && *i + 1 < len)
					(*i)++;
				if (s[*i] == '\r' || s[*i] == '\n' || s[*i] == '\0' ||
				    mf_buf_append(&name, s + *i, 1) < 0) {
					*error_r = "bad header field name";
					goto out;
				}
				(*i)++;
			}
			if (*i >= len) {
				*error_r = "unterminated quoted string";
				goto out;
			}
			(*i)++;
		} else {
			size_t st = *i;
			while (*i < len && is_astring_char((unsigned char)s[*i]))
				(*i)++;
			if (mf_buf_append(&name, s + st, *i - st) < 0) {
				*error_r = "header field name too long";
				goto out;
			}
		}
		if (name.len == 0) {
			*error_r = "empty header field name";
			goto out;
		}
		if (sec->field_count >= MF_IMAP_SECTION_FIELDS_MAX) {
			*error_r = "too many header field names";
			goto out;
		}
		sec->fields = mf_xrealloc(sec->fields, (sec->field_count + 1) * sizeof(char *));
		sec->fields[sec->field_count++] = mf_buf_steal(&name);
		if (*i < len && s[*i] == ')') {
			(*i)++;
			break;
		}
		if (*i >= len || s[*i] != ' ') {
			*error_r = "bad header field list";
			goto out;
		}
		(*i)++;
	}
	ret = 0;
out:
	mf_buf_free(&name);
	return ret;
}

int mf_imap_section_parse(const char *s, size_t len, bool binary, struct mf_imap_section *sec_r,
			  const char **error_r)
{
	size_t i = 0;

	memset(sec_r, 0, sizeof(*sec_r));
	/* section-part = nz-number *("." nz-number) */
	while (i < len && s[i] >= '0' && s[i] <= '9') {
		unsigned long n = 0;
		if (s[i] == '0') {
			*error_r = "part number must not be 0 or start with 0";
			goto fail;
		}
		while (i < len && s[i] >= '0' && s[i] <= '9') {
			n = n * 10 + (unsigned long)(s[i++] - '0');
			if (n > MF_IMAP_SECTION_NUMBER_MAX) {
				*error_r = "part number too large";
				goto fail;
			}
		}
		if (sec_r->part_count >= MF_IMAP_SECTION_PARTS_MAX) {
			*error_r = "too many part numbers";
			goto fail;
		}
		sec_r->parts[sec_r->part_count++] = (unsigned)n;
		if (i < len && s[i] == '.') {
			i++;
			if (i >= len) {
				*error_r = "section ends with a dot";
				goto fail;
			}
		} else {
			break;
		}
	}
	if (i < len && binary) {
		*error_r = "BINARY takes part numbers only";
		goto fail;
	}
	if (i < len && sec_r->part_count > 0 && s[i - 1] != '.') {
		*error_r = "bad section";
		goto fail;
	}
	if (i == len) {
		sec_r->text = MF_IMAP_SECTION_NONE;
	} else if (kw(s, len, &i, "HEADER.FIELDS.NOT")) {
		sec_r->text = MF_IMAP_SECTION_HEADER_FIELDS_NOT;
		if (parse_header_list(s, len, &i, sec_r, error_r) < 0)
			goto fail;
	} else if (kw(s, len, &i, "HEADER.FIELDS")) {
		sec_r->text = MF_IMAP_SECTION_HEADER_FIELDS;
		if (parse_header_list(s, len, &i, sec_r, error_r) < 0)
			goto fail;
	} else if (kw(s, len, &i, "HEADER")) {
		sec_r->text = MF_IMAP_SECTION_HEADER;
	} else if (kw(s, len, &i, "TEXT")) {
		sec_r->text = MF_IMAP_SECTION_TEXT;
	} else if (sec_r->part_count > 0 && kw(s, len, &i, "MIME")) {
		sec_r->text = MF_IMAP_SECTION_MIME;
	} else {
		*error_r = "unknown section";
		goto fail;
	}
	if (i != len) {
		*error_r = "junk after section";
		goto fail;
	}
	return 0;
fail:
	mf_imap_section_free(sec_r);
	return -1;
}

void mf_imap_section_free(struct mf_imap_section *sec)
{
	for (size_t i = 0; i < sec->field_count; i++)
		free(sec->fields[i]);
	free(sec->fields);
	sec->fields = NULL;
	sec->field_count = 0;
}

int mf_imap_section_format(const struct mf_imap_section *sec, struct mf_buf *out)
{
	static const char *const names[] = {
		[MF_IMAP_SECTION_NONE] = "", [MF_IMAP_SECTION_HEADER] = "HEADER",
		[MF_IMAP_SECTION_HEADER_FIELDS] = "HEADER.FIELDS",
		[MF_IMAP_SECTION_HEADER_FIELDS_NOT] = "HEADER.FIELDS.NOT",
		[MF_IMAP_SECTION_TEXT] = "TEXT", [MF_IMAP_SECTION_MIME] = "MIME",
	};
	int r = 0;

	for (size_t i = 0; i < sec->part_count; i++)
		r |= mf_buf_appendf(out, "%s%u", i > 0 ? "." : "", sec->parts[i]);
	if (sec->text != MF_IMAP_SECTION_NONE)
		r |= mf_buf_appendf(out, "%s%s", sec->part_count > 0 ? "." : "", names[sec->text]);
	if (sec->field_count > 0) {
		r |= mf_buf_append(out, " (", 2);
		for (size_t i = 0; i < sec->field_count; i++) {
			const char *f = sec->fields[i];
			bool atom = true;
			for (const char *p = f; *p != '\0'; p++)
				atom = atom && is_astring_char((unsigned char)*p);
			if (i > 0)
				r |= mf_buf_append(out, " ", 1);
			r |= atom ? mf_buf_append_str(out, f) : mf_imap_append_nstring(out, f, 0);
		}
		r |= mf_buf_append(out, ")", 1);
	}
	return r < 0 ? -1 : 0;
}

/* --- section data ------------------------------------------------------- */

const struct mf_mime_part *mf_imap_part_find(const struct mf_mime_message *msg,
					     const unsigned *parts, size_t count)
{
	const struct mf_mime_part *cur = msg->root;
	bool is_message = true; /* cur stands for a whole message */

	for (size_t i = 0; i < count; i++) {
		if (!is_message && cur->message) {
			cur = cur->children;
			is_message = true;
		}
		if (cur->multipart) {
			const struct mf_mime_part *c = cur->children;
			for (unsigned n = 1; c != NULL && n < parts[i]; n++)
				c = c->next;
			if (c == NULL || parts[i] == 0)
				return NULL;
			cur = c;
		} else if (!(is_message && parts[i] == 1)) {
			return NULL;
		}
		is_message = false;
	}
	return cur;
}

static void data_range(struct mf_imap_section_data *d, const struct mf_mime_message *msg,
		       size_t start, size_t end)
{
	d->owned = NULL;
	d->offset = start;
	d->data = msg->data + start;
	d->len = end - start;
}

static bool field_listed(const struct mf_imap_section *sec, const struct mf_mime_field *f)
{
	for (size_t i = 0; i < sec->field_count; i++)
		if (mf_mime_field_is(f, sec->fields[i]))
			return true;
	return false;
}

int mf_imap_section_fetch(const struct mf_mime_message *msg, const struct mf_imap_section *sec,
			  struct mf_imap_section_data *data_r, const char **error_r)
{
	const struct mf_mime_part *part = mf_imap_part_find(msg, sec->parts, sec->part_count);
	const struct mf_mime_part *m;

	memset(data_r, 0, sizeof(*data_r));
	if (part == NULL) {
		*error_r = "no such body part";
		return -1;
	}
	if (sec->text == MF_IMAP_SECTION_NONE) {
		if (sec->part_count == 0)
			data_range(data_r, msg, 0, msg->len);
		else
			data_range(data_r, msg, part->body_start, part->body_end);
		return 0;
	}
	if (sec->text == MF_IMAP_SECTION_MIME) {
		data_range(data_r, msg, part->header_start, part->body_start);
		return 0;
	}
	/* HEADER, HEADER.FIELDS and TEXT name the message itself or the
	 * message inside a message/rfc822 part */
	if (sec->part_count == 0)
		m = msg->root;
	else if (part->message)
		m = part->children;
	else {
		*error_r = "body part is not a message";
		return -1;
	}
	if (sec->text == MF_IMAP_SECTION_HEADER) {
		data_range(data_r, msg, m->header_start, m->body_start);
		return 0;
	}
	if (sec->text == MF_IMAP_SECTION_TEXT) {
		data_range(data_r, msg, m->body_start, m->body_end);
		return 0;
	}
	struct mf_mime_header_iter it;
	struct mf_mime_field f;
	struct mf_buf b;
	bool want = sec->text == MF_IMAP_SECTION_HEADER_FIELDS;

	mf_buf_init(&b, 0);
	mf_mime_header_iter_init(&it, msg->data, m->header_start, m->header_end);
	while (mf_mime_header_next(&it, &f)) {
		if (field_listed(sec, &f) != want)
			continue;
		(void)mf_buf_append(&b, msg->data + f.start, f.end - f.start);
		if (f.end == f.start || msg->data[f.end - 1] != '\n')
			(void)mf_buf_append(&b, "\r\n", 2);
	}
	/* the blank line that ends a header (RFC 9051 6.4.5) */
	(void)mf_buf_append(&b, "\r\n", 2);
	data_r->len = b.len;
	data_r->owned = mf_buf_steal(&b);
	data_r->data = data_r->owned;
	return 0;
}

int mf_imap_section_binary(const struct mf_mime_message *msg, const struct mf_imap_section *sec,
			   struct mf_imap_section_data *data_r, bool *unknown_cte_r,
			   const char **error_r)
{
	const struct mf_mime_part *part = mf_imap_part_find(msg, sec->parts, sec->part_count);
	struct mf_buf b;

	memset(data_r, 0, sizeof(*data_r));
	*unknown_cte_r = false;
	if (part == NULL) {
		*error_r = "no such body part";
		return -1;
	}
	if (sec->part_count == 0) {
		data_range(data_r, msg, 0, msg->len);
		return 0;
	}
	switch (part->cte) {
	case MF_MIME_CTE_7BIT:
	case MF_MIME_CTE_8BIT:
	case MF_MIME_CTE_BINARY:
		data_range(data_r, msg, part->body_start, part->body_end);
		return 0;
	case MF_MIME_CTE_UNKNOWN:
		*unknown_cte_r = true;
		*error_r = mf_errorf("unknown content transfer encoding %s",
				     part->encoding ? part->encoding : "");
		return -1;
	default:
		break;
	}
	mf_buf_init(&b, 0);
	if (mf_mime_decode(part->cte, msg->data + part->body_start,
			   part->body_end - part->body_start, &b, error_r) < 0) {
		mf_buf_free(&b);
		return -1;
	}
	data_r->len = b.len;
	data_r->owned = b.data != NULL ? mf_buf_steal(&b) : mf_xstrdup("");
	data_r->data = data_r->owned;
	return 0;
}

void mf_imap_section_data_free(struct mf_imap_section_data *data)
{
	free(data->owned);
	memset(data, 0, sizeof(*data));
}
