/* imap_search: search program parsing and matching (see imap_search.h). */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <unicase.h>

#include "buf.h"
#include "error.h"
#include "imap_format.h"
#include "imap_search.h"
#include "mime_header.h"
#include "store.h"

struct parse {
	struct imap_pool *pool;
	const struct imap_arg *args;
	size_t count, pos;
	unsigned keys;
	struct imap_search_program *prog;
	const char *error;
};

static const char *next_string(struct parse *p)
{
	const struct imap_arg *a;

	if (p->pos >= p->count || !imap_arg_is_string(&p->args[p->pos])) {
		p->error = "search key needs a string argument";
		return NULL;
	}
	a = &p->args[p->pos++];
	if (strlen(a->str) != a->len) {
		p->error = "NUL in search string";
		return NULL;
	}
	return a->str;
}

static int next_date(struct parse *p, int64_t *date_r)
{
	const char *s = next_string(p);
	time_t t;

	if (s == NULL)
		return -1;
	if (imap_parse_date(s, &t) < 0) {
		p->error = "invalid date in search key";
		return -1;
	}
	*date_r = (int64_t)t;
	return 0;
}

static int parse_key(struct parse *p, struct imap_search_key *k, unsigned depth);

static int parse_list(struct parse *p, const struct imap_arg *args, size_t count,
		      struct imap_search_key *k, unsigned depth)
{
	struct parse sub = *p;
	size_t n = 0;

	sub.args = args;
	sub.count = count;
	sub.pos = 0;
	k->op = IMAP_SK_AND;
	k->keys = imap_pool_alloc(p->pool, (count + 1) * sizeof(*k->keys));
	while (sub.pos < sub.count) {
		if (parse_key(&sub, &k->keys[n], depth) < 0) {
			p->error = sub.error;
			return -1;
		}
		n++;
	}
	k->count = n;
	p->keys = sub.keys;
	return 0;
}

static const struct {
	const char *name;
	enum imap_search_op op;
	uint32_t flag;
} simple_keys[] = {
	{ "ALL", IMAP_SK_ALL, 0 },
	{ "ANSWERED", IMAP_SK_FLAG, STORE_FLAG_ANSWERED },
	{ "DELETED", IMAP_SK_FLAG, STORE_FLAG_DELETED },
	{ "DRAFT", IMAP_SK_FLAG, STORE_FLAG_DRAFT },
	{ "FLAGGED", IMAP_SK_FLAG, STORE_FLAG_FLAGGED },
	{ "SEEN", IMAP_SK_FLAG, STORE_FLAG_SEEN },
	{ "UNANSWERED", IMAP_SK_UNFLAG, STORE_FLAG_ANSWERED },
	{ "UNDELETED", IMAP_SK_UNFLAG, STORE_FLAG_DELETED },
	{ "UNDRAFT", IMAP_SK_UNFLAG, STORE_FLAG_DRAFT },
	{ "UNFLAGGED", IMAP_SK_UNFLAG, STORE_FLAG_FLAGGED },
	{ "UNSEEN", IMAP_SK_UNFLAG, STORE_FLAG_SEEN },
	/* RFC 3501 keys around \Recent, which this server never sets:
	 * NEW = RECENT UNSEEN matches nothing, OLD = NOT RECENT everything. */
	{ "RECENT", IMAP_SK_NONE, 0 },
	{ "NEW", IMAP_SK_NONE, 0 },
	{ "OLD", IMAP_SK_ALL, 0 },
};

static const struct {
	const char *name;
	enum imap_search_op op;
} date_keys[] = {
	{ "BEFORE", IMAP_SK_BEFORE }, { "ON", IMAP_SK_ON }, { "SINCE", IMAP_SK_SINCE },
	{ "SENTBEFORE", IMAP_SK_SENTBEFORE }, { "SENTON", IMAP_SK_SENTON },
	{ "SENTSINCE", IMAP_SK_SENTSINCE },
};

static const struct {
	const char *name;
	const char *field;   /* NULL: BODY/TEXT */
	enum imap_search_op op;
} text_keys[] = {
	{ "BCC", "Bcc", IMAP_SK_HEADER }, { "CC", "Cc", IMAP_SK_HEADER },
	{ "FROM", "From", IMAP_SK_HEADER }, { "SUBJECT", "Subject", IMAP_SK_HEADER },
	{ "TO", "To", IMAP_SK_HEADER }, { "BODY", NULL, IMAP_SK_BODY },
	{ "TEXT", NULL, IMAP_SK_TEXT },
};

static int parse_key(struct parse *p, struct imap_search_key *k, unsigned depth)
{
	const struct imap_arg *a;
	const char *w;

	if (depth > IMAP_SEARCH_DEPTH_MAX) {
		p->error = "search program nested too deeply";
		return -1;
	}
	if (++p->keys > IMAP_SEARCH_KEYS_MAX) {
		p->error = "too many search keys";
		return -1;
	}
	if (p->pos >= p->count) {
		p->error = "missing search key";
		return -1;
	}
	a = &p->args[p->pos++];
	memset(k, 0, sizeof(*k));
	if (a->type == IMAP_ARG_LIST) {
		if (a->count == 0) {
			p->error = "empty search key list";
			return -1;
		}
		return parse_list(p, a->list, a->count, k, depth + 1);
	}
	if (a->type != IMAP_ARG_ATOM) {
		p->error = "invalid search key";
		return -1;
	}
	w = a->str;
	for (size_t i = 0; i < sizeof(simple_keys) / sizeof(simple_keys[0]); i++) {
		if (strcasecmp(w, simple_keys[i].name) == 0) {
			k->op = simple_keys[i].op;
			k->flag = simple_keys[i].flag;
			if (strcasecmp(w, "NEW") == 0 || strcasecmp(w, "OLD") == 0 ||
			    strcasecmp(w, "RECENT") == 0)
				k->op = simple_keys[i].op;
			return 0;
		}
	}
	for (size_t i = 0; i < sizeof(date_keys) / sizeof(date_keys[0]); i++) {
		if (strcasecmp(w, date_keys[i].name) == 0) {
			k->op = date_keys[i].op;
			if (k->op <= IMAP_SK_SINCE)
				p->prog->need_meta = true;
			else
				p->prog->need_content = true;
			return next_date(p, &k->date);
		}
	}
	for (size_t i = 0; i < sizeof(text_keys) / sizeof(text_keys[0]); i++) {
		if (strcasecmp(w, text_keys[i].name) == 0) {
			k->op = text_keys[i].op;
			k->field = text_keys[i].field;
			if (k->field != NULL && strcmp(k->field, "Subject") == 0)
				p->prog->need_subject = true;
			else
				p->prog->need_content = true;
			k->str = next_string(p);
			return k->str == NULL ? -1 : 0;
		}
	}
	if (strcasecmp(w, "HEADER") == 0) {
		k->op = IMAP_SK_HEADER;
		if ((k->field = next_string(p)) == NULL || (k->str = next_string(p)) == NULL)
			return -1;
		if (strcasecmp(k->field, "Subject") == 0)
			p->prog->need_subject = true;
		else
			p->prog->need_content = true;
		return 0;
	}
	if (strcasecmp(w, "KEYWORD") == 0 || strcasecmp(w, "UNKEYWORD") == 0) {
		k->op = w[0] == 'K' || w[0] == 'k' ? IMAP_SK_KEYWORD : IMAP_SK_UNKEYWORD;
		if (p->pos >= p->count || p->args[p->pos].type != IMAP_ARG_ATOM) {
			p->error = "KEYWORD needs a flag";
			return -1;
		}
		k->str = p->args[p->pos++].str;
		/* System flags given as keywords (KEYWORD \Seen) work too. */
		if (k->str[0] == '\\') {
			static const struct { const char *n; uint32_t f; } sys[] = {
				{ "\\Seen", STORE_FLAG_SEEN }, { "\\Answered", STORE_FLAG_ANSWERED },
				{ "\\Flagged", STORE_FLAG_FLAGGED }, { "\\Deleted", STORE_FLAG_DELETED },
				{ "\\Draft", STORE_FLAG_DRAFT },
			};
			for (size_t i = 0; i < sizeof(sys) / sizeof(sys[0]); i++) {
				if (strcasecmp(k->str, sys[i].n) == 0) {
					k->flag = sys[i].f;
					k->op = k->op == IMAP_SK_KEYWORD ? IMAP_SK_FLAG : IMAP_SK_UNFLAG;
					return 0;
				}
			}
			k->op = k->op == IMAP_SK_KEYWORD ? IMAP_SK_NONE : IMAP_SK_ALL;
		}
		return 0;
	}
	if (strcasecmp(w, "LARGER") == 0 || strcasecmp(w, "SMALLER") == 0) {
		char *end;
		k->op = w[0] == 'L' || w[0] == 'l' ? IMAP_SK_LARGER : IMAP_SK_SMALLER;
		p->prog->need_meta = true;
		if (p->pos >= p->count || p->args[p->pos].type != IMAP_ARG_ATOM ||
		    p->args[p->pos].str[0] < '0' || p->args[p->pos].str[0] > '9') {
			p->error = "LARGER/SMALLER need a number";
			return -1;
		}
		k->number = strtoull(p->args[p->pos].str, &end, 10);
		if (*end != '\0') {
			p->error = "LARGER/SMALLER need a number";
			return -1;
		}
		p->pos++;
		return 0;
	}
	if (strcasecmp(w, "NOT") == 0 || strcasecmp(w, "OR") == 0) {
		bool or = w[0] == 'O' || w[0] == 'o';
		k->op = or ? IMAP_SK_OR : IMAP_SK_NOT;
		k->count = or ? 2 : 1;
		k->keys = imap_pool_alloc(p->pool, k->count * sizeof(*k->keys));
		for (size_t i = 0; i < k->count; i++)
			if (parse_key(p, &k->keys[i], depth + 1) < 0)
				return -1;
		return 0;
	}
	if (strcasecmp(w, "UID") == 0) {
		k->op = IMAP_SK_UID;
		if (p->pos >= p->count || p->args[p->pos].type != IMAP_ARG_ATOM) {
			p->error = "UID needs a set";
			return -1;
		}
		a = &p->args[p->pos++];
		if (strcmp(a->str, "$") == 0) {
			k->op = IMAP_SK_SAVED;
			return 0;
		}
		return imap_seqset_parse(p->pool, a->str, &k->set, &p->error);
	}
	if (strcmp(w, "$") == 0) {
		k->op = IMAP_SK_SAVED;
		return 0;
	}
	if ((w[0] >= '0' && w[0] <= '9') || w[0] == '*') {
		k->op = IMAP_SK_SEQ;
		return imap_seqset_parse(p->pool, w, &k->set, &p->error);
	}
	p->error = mf_errorf("unknown search key %s", w);
	return -1;
}

int imap_search_parse(struct imap_pool *pool, const struct imap_arg *args, size_t count,
		      struct imap_search_program *prog_r, const char **error_r)
{
	struct parse p = { .pool = pool, .args = args, .count = count, .prog = prog_r };

	memset(prog_r, 0, sizeof(*prog_r));
	if (count == 0) {
		*error_r = "missing search key";
		return -1;
	}
	if (parse_list(&p, args, count, &prog_r->root, 0) < 0) {
		*error_r = p.error;
		return -1;
	}
	return 0;
}

/* --- matching --- */

static bool ascii_contains(const char *hay, size_t hay_len, const char *needle, size_t n)
{
	if (n == 0)
		return true;
	for (size_t i = 0; i + n <= hay_len; i++)
		if (strncasecmp(hay + i, needle, n) == 0)
			return true;
	return false;
}

bool imap_search_contains(const char *hay, size_t hay_len, const char *needle, size_t needle_len)
{
	uint8_t *fh, *fn;
	size_t fhl = 0, fnl = 0;
	bool found;

	if (needle_len == 0)
		return true;
	if (imap_format_valid_utf8(hay, hay_len) && imap_format_valid_utf8(needle, needle_len)) {
		fh = u8_casefold((const uint8_t *)hay, hay_len, NULL, NULL, NULL, &fhl);
		fn = u8_casefold((const uint8_t *)needle, needle_len, NULL, NULL, NULL, &fnl);
		if (fh != NULL && fn != NULL) {
			found = fnl == 0 || memmem(fh, fhl, fn, fnl) != NULL;
			free(fh);
			free(fn);
			return found;
		}
		free(fh);
		free(fn);
	}
	return ascii_contains(hay, hay_len, needle, needle_len);
}

static bool header_matches(const struct mf_mime_message *msg, const char *field, const char *str)
{
	const struct mf_mime_part *root = msg->root;
	struct mf_mime_header_iter it;
	struct mf_mime_field f;
	bool found = false;

	mf_mime_header_iter_init(&it, msg->data, root->header_start, root->header_end);
	while (!found && mf_mime_header_next(&it, &f)) {
		char *v;
		if (!mf_mime_field_is(&f, field))
			continue;
		/* HEADER field "" matches any message with the field (RFC 9051). */
		if (str[0] == '\0')
			return true;
		v = mf_mime_header_decode(f.value, f.value_len);
		found = imap_search_contains(v, strlen(v), str, strlen(str));
		free(v);
	}
	return found;
}

static bool subject_matches(const char *subject, const char *str)
{
	char *v;
	bool found;

	if (subject == NULL)
		return false;
	if (str[0] == '\0')
		return true;
	v = mf_mime_header_decode(subject, strlen(subject));
	found = imap_search_contains(v, strlen(v), str, strlen(str));
	free(v);
	return found;
}

static bool is_text_part(const struct mf_mime_part *p)
{
	return !p->multipart && !p->message && strcmp(p->type, "text") == 0;
}

/* Searches decoded text of the message's text parts, and headers of
 * nested messages' parts. */
static bool body_matches(const struct mf_mime_message *msg, const struct mf_mime_part *p,
			 const char *str, size_t *budget)
{
	for (; p != NULL; p = p->next) {
		if (p->children != NULL) {
			if (p->message) {
				const struct mf_mime_part *c = p->children;
				if (imap_search_contains(msg->data + c->header_start,
							 c->header_end - c->header_start, str,
							 strlen(str)))
					return true;
			}
			if (body_matches(msg, p->children, str, budget))
				return true;
			continue;
		}
		if (!is_text_part(p) || p->body_end <= p->body_start)
			continue;
		{
			struct mf_buf b;
			const char *err;
			size_t len = p->body_end - p->body_start;
			bool found;
			if (len > *budget)
				len = *budget;
			*budget -= len;
			mf_buf_init(&b, IMAP_SEARCH_TEXT_MAX);
			if (mf_mime_decode(p->cte, msg->data + p->body_start, len, &b, &err) < 0) {
				mf_buf_reset(&b);
				mf_buf_append(&b, msg->data + p->body_start, len);
			}
			found = imap_search_contains(b.data != NULL ? b.data : "", b.len, str,
						     strlen(str));
			mf_buf_free(&b);
			if (found)
				return true;
		}
		if (*budget == 0)
			break;
	}
	return false;
}

static int64_t day_of(int64_t unix_s)
{
	return unix_s - ((unix_s % 86400) + 86400) % 86400;
}

static bool sent_date(const struct mf_mime_message *msg, int64_t *day_r)
{
	char *v = mf_mime_part_header(msg, msg->root, "Date");
	time_t t;
	bool ok;

	if (v == NULL)
		return false;
	ok = imap_parse_rfc5322_date(v, strlen(v), &t) == 0;
	free(v);
	/* RFC 9051 6.4.4: the date, disregarding time and timezone. */
	if (ok)
		*day_r = day_of((int64_t)t);
	return ok;
}

static bool keyword_set(const char *keywords, const char *kw)
{
	size_t n = strlen(kw);

	for (const char *p = keywords; p != NULL && *p != '\0';) {
		const char *e = strchr(p, ' ');
		size_t len = e != NULL ? (size_t)(e - p) : strlen(p);
		if (len == n && strncasecmp(p, kw, n) == 0)
			return true;
		p = e != NULL ? e + 1 : p + len;
	}
	return false;
}

static bool in_saved(const struct imap_search_msg *m)
{
	size_t lo = 0, hi = m->saved_count;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (m->saved[mid] == m->uid)
			return true;
		if (m->saved[mid] < m->uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return false;
}

static bool match_key(const struct imap_search_key *k, const struct imap_search_msg *m)
{
	int64_t day;
	size_t budget;

	switch (k->op) {
	case IMAP_SK_ALL:
		return true;
	case IMAP_SK_NONE:
		return false;
	case IMAP_SK_AND:
		for (size_t i = 0; i < k->count; i++)
			if (!match_key(&k->keys[i], m))
				return false;
		return true;
	case IMAP_SK_OR:
		return match_key(&k->keys[0], m) || match_key(&k->keys[1], m);
	case IMAP_SK_NOT:
		return !match_key(&k->keys[0], m);
	case IMAP_SK_FLAG:
		return (m->flags & k->flag) != 0;
	case IMAP_SK_UNFLAG:
		return (m->flags & k->flag) == 0;
	case IMAP_SK_KEYWORD:
		return keyword_set(m->keywords, k->str);
	case IMAP_SK_UNKEYWORD:
		return !keyword_set(m->keywords, k->str);
	case IMAP_SK_SEQ:
		return imap_seqset_contains(&k->set, m->seq, m->max_seq);
	case IMAP_SK_UID:
		return imap_seqset_contains(&k->set, m->uid, m->max_uid);
	case IMAP_SK_SAVED:
		return m->saved != NULL && in_saved(m);
	case IMAP_SK_LARGER:
		return m->size > k->number;
	case IMAP_SK_SMALLER:
		return m->size < k->number;
	case IMAP_SK_BEFORE:
		return day_of(m->internal_date / 1000) < k->date;
	case IMAP_SK_ON:
		return day_of(m->internal_date / 1000) == k->date;
	case IMAP_SK_SINCE:
		return day_of(m->internal_date / 1000) >= k->date;
	case IMAP_SK_SENTBEFORE:
	case IMAP_SK_SENTON:
	case IMAP_SK_SENTSINCE:
		if (m->mime == NULL || !sent_date(m->mime, &day))
			return false;
		if (k->op == IMAP_SK_SENTBEFORE)
			return day < k->date;
		if (k->op == IMAP_SK_SENTON)
			return day == k->date;
		return day >= k->date;
	case IMAP_SK_HEADER:
		if (m->mime == NULL && m->subject_known && strcasecmp(k->field, "Subject") == 0)
			return subject_matches(m->subject, k->str);
		return m->mime != NULL && header_matches(m->mime, k->field, k->str);
	case IMAP_SK_BODY:
	case IMAP_SK_TEXT:
		if (m->mime == NULL)
			return false;
		if (k->op == IMAP_SK_TEXT &&
		    imap_search_contains(m->mime->data + m->mime->root->header_start,
					 m->mime->root->header_end - m->mime->root->header_start,
					 k->str, strlen(k->str)))
			return true;
		budget = IMAP_SEARCH_TEXT_MAX;
		return body_matches(m->mime, m->mime->root, k->str, &budget);
	}
	return false;
}

bool imap_search_match(const struct imap_search_program *prog, const struct imap_search_msg *m)
{
	return match_key(&prog->root, m);
}
