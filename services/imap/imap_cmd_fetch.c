/* imap_cmd_fetch: FETCH and UID FETCH (RFC 9051 6.4.5) with BINARY
 * (RFC 3516) items, using libshared mime / mime_imap for ENVELOPE,
 * BODYSTRUCTURE and sections.  ENVELOPE and BODYSTRUCTURE are cached in the
 * store after the first computation. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "buf.h"
#include "error.h"
#include "imap_cmd.h"
#include "imap_format.h"
#include "imap_session.h"
#include "log.h"
#include "mime.h"
#include "imap_content.h"
#include "mime_imap.h"

#define PKG "imap"

/* Items in one FETCH. */
#define IMAP_FETCH_ITEMS_MAX 100
/* Cap on one built ENVELOPE / BODYSTRUCTURE text. */
#define IMAP_FETCH_STRUCT_MAX (4 * 1024 * 1024)

enum fetch_kind {
	F_UID, F_FLAGS, F_INTERNALDATE, F_SIZE, F_ENVELOPE, F_BODYSTRUCTURE, F_BODY,
	F_SECTION, F_BINARY, F_BINARY_SIZE,
};

struct fetch_item {
	enum fetch_kind kind;
	bool peek;                /* BODY.PEEK / BINARY.PEEK / RFC822.HEADER */
	const char *name;         /* BODY, RFC822, RFC822.HEADER, RFC822.TEXT, BINARY */
	struct mf_imap_section sec;
	bool has_sec;
	bool partial;
	uint64_t origin, count;
};

struct fetch {
	struct fetch_item items[IMAP_FETCH_ITEMS_MAX + 4];
	size_t count;
	bool need_meta, need_content, sets_seen, has_flags, has_uid;
};

static void fetch_free(struct fetch *f)
{
	for (size_t i = 0; i < f->count; i++)
		if (f->items[i].has_sec)
			mf_imap_section_free(&f->items[i].sec);
}

static int add_item(struct fetch *f, enum fetch_kind kind, const char **error_r)
{
	if (f->count >= IMAP_FETCH_ITEMS_MAX) {
		*error_r = "too many FETCH items";
		return -1;
	}
	memset(&f->items[f->count], 0, sizeof(f->items[0]));
	f->items[f->count].kind = kind;
	f->count++;
	if (kind == F_UID)
		f->has_uid = true;
	if (kind == F_FLAGS)
		f->has_flags = true;
	if (kind != F_UID && kind != F_FLAGS)
		f->need_meta = true;
	if (kind == F_ENVELOPE || kind == F_BODYSTRUCTURE || kind == F_BODY || kind == F_SECTION ||
	    kind == F_BINARY || kind == F_BINARY_SIZE)
		f->need_content = true;
	return 0;
}

/* Parses "<origin.count>" at s. */
static int parse_partial(const char *s, struct fetch_item *it, const char **error_r)
{
	char *end;

	if (*s == '\0')
		return 0;
	if (*s != '<' || s[1] < '0' || s[1] > '9')
		goto bad;
	it->origin = strtoull(s + 1, &end, 10);
	if (*end != '.' || end[1] < '1' || end[1] > '9')
		goto bad;
	it->count = strtoull(end + 1, &end, 10);
	if (*end != '>' || end[1] != '\0')
		goto bad;
	it->partial = true;
	return 0;
bad:
	*error_r = "invalid partial specifier";
	return -1;
}

static int parse_att(struct fetch *f, const struct imap_arg *a, const char **error_r)
{
	const char *s = a->str, *open, *close;
	struct fetch_item *it;
	size_t nlen;

	if (a->type != IMAP_ARG_ATOM) {
		*error_r = "invalid FETCH item";
		return -1;
	}
	open = strchr(s, '[');
	if (open == NULL) {
		static const struct {
			const char *name;
			enum fetch_kind kind;
		} simple[] = {
			{ "UID", F_UID }, { "FLAGS", F_FLAGS }, { "INTERNALDATE", F_INTERNALDATE },
			{ "RFC822.SIZE", F_SIZE }, { "ENVELOPE", F_ENVELOPE },
			{ "BODYSTRUCTURE", F_BODYSTRUCTURE }, { "BODY", F_BODY },
		};
		for (size_t i = 0; i < sizeof(simple) / sizeof(simple[0]); i++)
			if (strcasecmp(s, simple[i].name) == 0)
				return add_item(f, simple[i].kind, error_r);
		if (strcasecmp(s, "RFC822") == 0 || strcasecmp(s, "RFC822.HEADER") == 0 ||
		    strcasecmp(s, "RFC822.TEXT") == 0) {
			const char *sec = s[6] == '\0' ? "" : s[7] == 'H' || s[7] == 'h' ? "HEADER" : "TEXT";
			if (add_item(f, F_SECTION, error_r) < 0)
				return -1;
			it = &f->items[f->count - 1];
			it->name = s[6] == '\0' ? "RFC822" : s[7] == 'H' || s[7] == 'h' ?
				   "RFC822.HEADER" : "RFC822.TEXT";
			it->peek = strcmp(it->name, "RFC822.HEADER") == 0;
			if (mf_imap_section_parse(sec, strlen(sec), false, &it->sec, error_r) < 0)
				return -1;
			it->has_sec = true;
			if (!it->peek)
				f->sets_seen = true;
			return 0;
		}
		*error_r = mf_errorf("unknown FETCH item %s", s);
		return -1;
	}
	close = strrchr(s, ']');
	if (close == NULL || close < open) {
		*error_r = "invalid section";
		return -1;
	}
	nlen = (size_t)(open - s);
	if (nlen == 4 && strncasecmp(s, "BODY", 4) == 0) {
		if (add_item(f, F_SECTION, error_r) < 0)
			return -1;
		f->items[f->count - 1].name = "BODY";
	} else if (nlen == 9 && strncasecmp(s, "BODY.PEEK", 9) == 0) {
		if (add_item(f, F_SECTION, error_r) < 0)
			return -1;
		f->items[f->count - 1].name = "BODY";
		f->items[f->count - 1].peek = true;
	} else if (nlen == 6 && strncasecmp(s, "BINARY", 6) == 0) {
		if (add_item(f, F_BINARY, error_r) < 0)
			return -1;
	} else if (nlen == 11 && strncasecmp(s, "BINARY.PEEK", 11) == 0) {
		if (add_item(f, F_BINARY, error_r) < 0)
			return -1;
		f->items[f->count - 1].peek = true;
	} else if (nlen == 11 && strncasecmp(s, "BINARY.SIZE", 11) == 0) {
		if (add_item(f, F_BINARY_SIZE, error_r) < 0)
			return -1;
		f->items[f->count - 1].peek = true;
	} else {
		*error_r = mf_errorf("unknown FETCH item %.*s", (int)nlen, s);
		return -1;
	}
	it = &f->items[f->count - 1];
	if (mf_imap_section_parse(open + 1, (size_t)(close - open - 1), it->kind != F_SECTION,
				  &it->sec, error_r) < 0)
		return -1;
	it->has_sec = true;
	if (it->kind == F_BINARY_SIZE && close[1] != '\0') {
		*error_r = "BINARY.SIZE takes no partial specifier";
		return -1;
	}
	if (parse_partial(close + 1, it, error_r) < 0)
		return -1;
	if (!it->peek)
		f->sets_seen = true;
	return 0;
}

static int parse_items(struct fetch *f, const struct imap_arg *a, const char **error_r)
{
	if (a->type == IMAP_ARG_ATOM) {
		const char *macro[4] = { NULL };
		if (strcasecmp(a->str, "ALL") == 0) {
			macro[0] = "FLAGS"; macro[1] = "INTERNALDATE"; macro[2] = "RFC822.SIZE";
			macro[3] = "ENVELOPE";
		} else if (strcasecmp(a->str, "FAST") == 0) {
			macro[0] = "FLAGS"; macro[1] = "INTERNALDATE"; macro[2] = "RFC822.SIZE";
		} else if (strcasecmp(a->str, "FULL") == 0) {
			macro[0] = "FLAGS"; macro[1] = "INTERNALDATE"; macro[2] = "RFC822.SIZE";
			macro[3] = "ENVELOPE";
		}
		if (macro[0] != NULL) {
			for (size_t i = 0; i < 4 && macro[i] != NULL; i++) {
				struct imap_arg m = { .type = IMAP_ARG_ATOM, .str = macro[i],
						      .len = strlen(macro[i]) };
				if (parse_att(f, &m, error_r) < 0)
					return -1;
			}
			if (strcasecmp(a->str, "FULL") == 0)
				return add_item(f, F_BODY, error_r);
			return 0;
		}
		return parse_att(f, a, error_r);
	}
	if (a->type != IMAP_ARG_LIST || a->count == 0) {
		*error_r = "invalid FETCH items";
		return -1;
	}
	for (size_t i = 0; i < a->count; i++)
		if (parse_att(f, &a->list[i], error_r) < 0)
			return -1;
	return 0;
}

/* A message's content, loaded on first use. */
struct content {
	bool loaded, failed;
	struct imap_content content;
	struct mf_mime_message mime;
};

static int content_load(struct imap_session *s, const struct store_message *msg,
			struct content *c, const char **error_r)
{
	int r;

	if (c->loaded)
		return 0;
	if (c->failed)
		return -1;
	r = imap_content_open(s->acc, msg, &c->content, error_r);
	if (r <= 0) {
		if (r == 0)
			*error_r = "message content is gone";
		c->failed = true;
		return -1;
	}
	mf_mime_parse(c->content.data, c->content.len, &c->mime);
	c->loaded = true;
	return 0;
}

static void content_free(struct content *c)
{
	if (!c->loaded)
		return;
	mf_mime_message_free(&c->mime);
	imap_content_close(&c->content);
	c->loaded = false;
}

static void out_data(struct imap_session *s, const char *data, size_t len, bool binary)
{
	bool nul = binary && memchr(data, '\0', len) != NULL;

	/* Message text always goes as a literal: it holds CRLFs and 8-bit. */
	imap_out(s, "%s{%zu}\r\n", nul ? "~" : "", len);
	imap_out_raw(s, data, len);
}

static void out_section_name(struct imap_session *s, const struct fetch_item *it)
{
	struct mf_buf b;

	if (it->kind == F_SECTION && strcmp(it->name, "BODY") != 0) {
		imap_out(s, "%s ", it->name);
		return;
	}
	mf_buf_init(&b, 0);
	(void)mf_imap_section_format(&it->sec, &b);
	imap_out(s, "%s[%s]", it->kind == F_SECTION ? "BODY" :
		 it->kind == F_BINARY ? "BINARY" : "BINARY.SIZE", b.data != NULL ? b.data : "");
	mf_buf_free(&b);
	if (it->partial)
		imap_out(s, "<%llu>", (unsigned long long)it->origin);
	imap_out(s, " ");
}

/* Writes one item.  Returns 0, or -1 with error_r (the message cannot be
 * served: the FETCH fails with NO). */
static int out_item(struct imap_session *s, const struct fetch_item *it,
		    const struct imap_msg *m, const struct store_message *meta,
		    struct content *c, bool *unknown_cte_r, const char **error_r)
{
	struct mf_buf b;
	struct mf_imap_section_data d;
	int r;

	switch (it->kind) {
	case F_UID:
		imap_out(s, "UID %u", m->uid);
		return 0;
	case F_FLAGS:
		imap_out(s, "FLAGS ");
		imap_out_flags(s, m->flags, m->keywords);
		return 0;
	case F_INTERNALDATE:
		mf_buf_append_str(&s->out, "INTERNALDATE ");
		imap_format_datetime(&s->out, meta->internal_date);
		return 0;
	case F_SIZE:
		imap_out(s, "RFC822.SIZE %llu", (unsigned long long)meta->size);
		return 0;
	case F_ENVELOPE:
	case F_BODYSTRUCTURE:
	case F_BODY: {
		const char *cached = it->kind == F_ENVELOPE ? meta->envelope :
				     it->kind == F_BODYSTRUCTURE ? meta->bodystructure : NULL;
		const char *label = it->kind == F_ENVELOPE ? "ENVELOPE" :
				    it->kind == F_BODYSTRUCTURE ? "BODYSTRUCTURE" : "BODY";
		if (cached != NULL) {
			imap_out(s, "%s %s", label, cached);
			return 0;
		}
		if (content_load(s, meta, c, error_r) < 0)
			return -1;
		/* Built without MF_IMAP_UTF8: 8-bit text goes as literals, so
		 * the cached text suits every client. */
		mf_buf_init(&b, IMAP_FETCH_STRUCT_MAX);
		if (it->kind == F_ENVELOPE)
			r = mf_imap_envelope(&c->mime, c->mime.root, 0, &b);
		else
			r = mf_imap_bodystructure(&c->mime, c->mime.root, it->kind == F_BODYSTRUCTURE,
						  0, &b);
		if (r < 0) {
			mf_buf_free(&b);
			*error_r = "message structure too large";
			return -1;
		}
		imap_out(s, "%s ", label);
		imap_out_raw(s, b.data, b.len);
		if (it->kind != F_BODY && !meta->expunged) {
			const char *err;
			if (store_message_set_cache(s->acc, s->sel.id, m->uid,
						    it->kind == F_ENVELOPE ? b.data : NULL,
						    it->kind == F_BODYSTRUCTURE ? b.data : NULL,
						    &err) < 0)
				mf_log_debug(PKG, s->cid, "caching structure failed", "error=%s", err);
		}
		mf_buf_free(&b);
		return 0;
	}
	case F_SECTION:
	case F_BINARY:
	case F_BINARY_SIZE:
		if (content_load(s, meta, c, error_r) < 0)
			return -1;
		if (it->kind == F_SECTION)
			r = mf_imap_section_fetch(&c->mime, &it->sec, &d, error_r);
		else
			r = mf_imap_section_binary(&c->mime, &it->sec, &d, unknown_cte_r, error_r);
		if (r < 0) {
			if (*unknown_cte_r)
				return -1;
			/* RFC 9051 6.4.5: a section that does not exist is
			 * an empty string, not an error. */
			d.data = "";
			d.len = 0;
			d.owned = NULL;
		}
		out_section_name(s, it);
		if (it->kind == F_BINARY_SIZE) {
			imap_out(s, "%zu", d.len);
		} else {
			const char *p = d.data;
			size_t n = d.len;
			if (it->partial) {
				if (it->origin >= n) {
					n = 0;
				} else {
					p += it->origin;
					n -= (size_t)it->origin;
					if (it->count < n)
						n = (size_t)it->count;
				}
			}
			out_data(s, p, n, it->kind == F_BINARY);
		}
		if (r == 0)
			mf_imap_section_data_free(&d);
		return 0;
	}
	return 0;
}

int imap_cmd_fetch(struct imap_session *s, const struct imap_command *cmd)
{
	struct fetch f;
	struct imap_meta_cursor cursor = { 0 };
	size_t *idx, count, gone = 0;
	const char *err;
	int ret = 0;

	memset(&f, 0, sizeof(f));
	if (cmd->count != 2)
		return imap_bad(s, "FETCH takes a set and items");
	if (imap_resolve_set(s, &cmd->args[0], s->uid, &idx, &count, &err) < 0)
		return imap_bad(s, "%s", err);
	cursor.want = count;
	if (parse_items(&f, &cmd->args[1], &err) < 0) {
		fetch_free(&f);
		return imap_bad(s, "%s", err);
	}
	if (s->uid && !f.has_uid) {
		/* RFC 9051 6.4.9: UID FETCH always includes UID, first. */
		memmove(&f.items[1], &f.items[0], f.count * sizeof(f.items[0]));
		memset(&f.items[0], 0, sizeof(f.items[0]));
		f.items[0].kind = F_UID;
		f.count++;
	}
	/* Implicit \Seen first, so the FETCH responses show it (RFC 9051
	 * 6.4.5: FLAGS are returned when \Seen changes). */
	if (f.sets_seen && !s->sel.readonly) {
		uint32_t *uids = imap_pool_alloc(s->pool, (count + 1) * sizeof(*uids));
		size_t n = 0;
		uint64_t modseq;
		for (size_t i = 0; i < count; i++)
			if ((s->sel.msgs[idx[i]].flags & STORE_FLAG_SEEN) == 0)
				uids[n++] = s->sel.msgs[idx[i]].uid;
		if (n > 0) {
			if (store_flags(s->acc, s->sel.id, uids, n, STORE_FLAGS_ADD, STORE_FLAG_SEEN,
					NULL, 0, &modseq, NULL, NULL, &err) < 0) {
				fetch_free(&f);
				return imap_no_store(s, "fetch", err);
			}
		}
	}
	for (size_t i = 0; i < count; i++) {
		struct imap_msg *m = &s->sel.msgs[idx[i]];
		static const struct store_message no_meta;
		const struct store_message *meta = &no_meta;
		struct content c;
		bool unknown_cte = false, add_flags = false;
		int r;

		memset(&c, 0, sizeof(c));
		if (f.sets_seen && !s->sel.readonly && (m->flags & STORE_FLAG_SEEN) == 0) {
			m->flags |= STORE_FLAG_SEEN;
			add_flags = !f.has_flags;
		}
		if (f.need_meta) {
			r = imap_meta_get(s, &cursor, m->uid, &meta, &err);
			if (r < 0) {
				ret = imap_no_store(s, "fetch", err);
				goto done;
			}
			if (r == 0) {
				gone++;
				continue;
			}
		}
		imap_out(s, "* %zu FETCH (", idx[i] + 1);
		for (size_t k = 0; k < f.count; k++) {
			if (k > 0)
				imap_out(s, " ");
			if (out_item(s, &f.items[k], m, meta, &c, &unknown_cte, &err) < 0) {
				/* The response line is half written: end it
				 * with what the item would be, then fail. */
				imap_out(s, "UID %u)\r\n", m->uid);
				content_free(&c);
				if (unknown_cte)
					ret = imap_no(s, "[UNKNOWN-CTE] %s", err);
				else
					ret = imap_no(s, "[SERVERBUG] %s", err);
				goto done;
			}
		}
		if (add_flags) {
			imap_out(s, " FLAGS ");
			imap_out_flags(s, m->flags, m->keywords);
		}
		imap_out(s, ")\r\n");
		content_free(&c);
		if (s->write_failed) {
			ret = -1;
			goto done;
		}
	}
	if (gone > 0)
		ret = imap_no(s, "[EXPUNGEISSUED] some messages were expunged");
	else
		ret = imap_ok(s, "FETCH completed");
done:
	imap_meta_cursor_free(&cursor);
	fetch_free(&f);
	return ret;
}
