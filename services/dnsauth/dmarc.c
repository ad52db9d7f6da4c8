/* dmarc: RFC 9989 policy records, the DNS Tree Walk, alignment, results. */
#include "dmarc.h"
#include "dkim_private.h"

#include "address.h"
#include "buf.h"
#include "error.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* --- records ------------------------------------------------------------- */

static bool is_wsp(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static void trim(const char **s, size_t *len)
{
	while (*len > 0 && is_wsp(**s)) {
		(*s)++;
		(*len)--;
	}
	while (*len > 0 && is_wsp((*s)[*len - 1]))
		(*len)--;
}

/* Splits the next "name=value" off a record; returns false at the end. */
static bool next_tag(const char **p, const char *end, const char **name, size_t *name_len,
		     const char **value, size_t *value_len, bool *ok)
{
	const char *start = *p, *semi, *eq;

	if (start >= end)
		return false;
	semi = memchr(start, ';', (size_t)(end - start));
	if (semi == NULL)
		semi = end;
	*p = semi < end ? semi + 1 : end;
	eq = memchr(start, '=', (size_t)(semi - start));
	*ok = eq != NULL;
	if (eq == NULL) {
		*name = start;
		*name_len = (size_t)(semi - start);
		trim(name, name_len);
		*value = NULL;
		*value_len = 0;
		return true;
	}
	*name = start;
	*name_len = (size_t)(eq - start);
	trim(name, name_len);
	*value = eq + 1;
	*value_len = (size_t)(semi - eq - 1);
	trim(value, value_len);
	return true;
}

bool dmarc_record_is_dmarc(const char *text, size_t len)
{
	const char *p = text, *name, *value;
	size_t nl, vl;
	bool ok;

	if (!next_tag(&p, text + len, &name, &nl, &value, &vl, &ok) || !ok)
		return false;
	/* The tag name is case-insensitive like all tags; the value is
	 * case-sensitive (RFC 9989 4.8: %s"DMARC1"). */
	return nl == 1 && (name[0] == 'v' || name[0] == 'V') && vl == 6 &&
	       memcmp(value, "DMARC1", 6) == 0;
}

static bool value_is(const char *v, size_t len, const char *s)
{
	return len == strlen(s) && strncasecmp(v, s, len) == 0;
}

static int parse_policy(const char *v, size_t len, enum dmarc_policy *p)
{
	if (value_is(v, len, "none"))
		*p = DMARC_POLICY_NONE;
	else if (value_is(v, len, "quarantine"))
		*p = DMARC_POLICY_QUARANTINE;
	else if (value_is(v, len, "reject"))
		*p = DMARC_POLICY_REJECT;
	else
		return -1;
	return 0;
}

/* A DMARC URI list: comma separated, each maybe with an obsolete "!size"
 * suffix that is dropped (RFC 9989 4.8 obs-dmarc-uri).  Only well-formed
 * "scheme:rest" URIs are kept. */
static void parse_uris(const char *v, size_t len, char ***list_r, size_t *count_r)
{
	const char *p = v, *end = v + len;
	char **list = mf_xcalloc(DMARC_URIS_MAX, sizeof(*list));
	size_t n = 0;

	while (p < end) {
		const char *comma = memchr(p, ',', (size_t)(end - p)), *u = p, *bang, *colon;
		size_t ul;

		if (comma == NULL)
			comma = end;
		ul = (size_t)(comma - p);
		p = comma < end ? comma + 1 : end;
		trim(&u, &ul);
		if ((bang = memchr(u, '!', ul)) != NULL)
			ul = (size_t)(bang - u);
		colon = memchr(u, ':', ul);
		if (ul == 0 || ul > DMARC_URI_MAX || colon == NULL || colon == u ||
		    !isalpha((unsigned char)u[0]) || n == DMARC_URIS_MAX)
			continue;
		bool bad = false;
		for (size_t i = 0; i < ul; i++)
			bad = bad || (unsigned char)u[i] <= 0x20 || (unsigned char)u[i] >= 0x7f;
		if (!bad)
			list[n++] = mf_xstrndup(u, ul);
	}
	if (n == 0) {
		free(list);
		list = NULL;
	}
	*list_r = list;
	*count_r = n;
}

static bool fo_valid(const char *v, size_t len)
{
	/* Colon-separated 0, 1, d, s; 0 and 1 exclusive; each at most once. */
	bool seen[4] = { false, false, false, false };
	const char *p = v, *end = v + len;

	if (len == 0)
		return false;
	while (p <= end) {
		const char *c = memchr(p, ':', (size_t)(end - p));
		const char *item = p;
		size_t il;
		int k;

		if (c == NULL)
			c = end;
		il = (size_t)(c - p);
		trim(&item, &il);
		if (il != 1)
			return false;
		k = item[0] == '0' ? 0 : item[0] == '1' ? 1 : item[0] == 'd' ? 2 : item[0] == 's' ? 3 : -1;
		if (k < 0 || seen[k])
			return false;
		seen[k] = true;
		p = c + 1;
	}
	return !(seen[0] && seen[1]);
}

void dmarc_record_free(struct dmarc_record **recp)
{
	struct dmarc_record *rec = *recp;

	if (rec == NULL)
		return;
	for (size_t i = 0; i < rec->rua_count; i++)
		free(rec->rua[i]);
	free(rec->rua);
	for (size_t i = 0; i < rec->ruf_count; i++)
		free(rec->ruf[i]);
	free(rec->ruf);
	free(rec->fo);
	free(rec);
	*recp = NULL;
}

int dmarc_record_parse(const char *text, size_t len, struct dmarc_record **record_r,
		       const char **error_r)
{
	struct dmarc_record *rec;
	const char *p = text, *end, *name, *value;
	size_t nl, vl;
	bool ok, first = true;
	/* Tags seen, so that a repeated tag does not override the first. */
	bool seen_p = false, seen_sp = false, seen_np = false, seen_psd = false, seen_t = false,
	     seen_adkim = false, seen_aspf = false, seen_fo = false;

	if (len > DMARC_RECORD_MAX) {
		*error_r = "record too long";
		return -1;
	}
	if (!dmarc_record_is_dmarc(text, len)) {
		*error_r = "not a DMARC record (v=DMARC1 must come first)";
		return -1;
	}
	end = text + len;
	rec = mf_xcalloc(1, sizeof(*rec));
	rec->psd = 'u';
	while (next_tag(&p, end, &name, &nl, &value, &vl, &ok)) {
		if (first) {
			first = false;
			continue;  /* v=DMARC1 */
		}
		if (!ok)
			continue;  /* syntax errors are discarded (4.8) */
		if (value_is(name, nl, "p") && !seen_p) {
			seen_p = true;
			rec->p_valid = parse_policy(value, vl, &rec->p) == 0;
		} else if (value_is(name, nl, "sp") && !seen_sp) {
			seen_sp = true;
			rec->sp_set = parse_policy(value, vl, &rec->sp) == 0;
			rec->sp_invalid = !rec->sp_set;
		} else if (value_is(name, nl, "np") && !seen_np) {
			seen_np = true;
			rec->np_set = parse_policy(value, vl, &rec->np) == 0;
			rec->np_invalid = !rec->np_set;
		} else if (value_is(name, nl, "psd") && !seen_psd) {
			seen_psd = true;
			if (vl == 1 && (value[0] == 'y' || value[0] == 'n' || value[0] == 'u'))
				rec->psd = value[0];
		} else if (value_is(name, nl, "t") && !seen_t) {
			seen_t = true;
			rec->testing = vl == 1 && value[0] == 'y';
		} else if (value_is(name, nl, "adkim") && !seen_adkim) {
			seen_adkim = true;
			rec->adkim_strict = vl == 1 && value[0] == 's';
		} else if (value_is(name, nl, "aspf") && !seen_aspf) {
			seen_aspf = true;
			rec->aspf_strict = vl == 1 && value[0] == 's';
		} else if (value_is(name, nl, "rua") && rec->rua == NULL) {
			parse_uris(value, vl, &rec->rua, &rec->rua_count);
		} else if (value_is(name, nl, "ruf") && rec->ruf == NULL) {
			parse_uris(value, vl, &rec->ruf, &rec->ruf_count);
		} else if (value_is(name, nl, "fo") && !seen_fo) {
			seen_fo = true;
			if (fo_valid(value, vl))
				rec->fo = mf_xstrndup(value, vl);
		} else if (value_is(name, nl, "pct")) {
			/* Historic (RFC 9989 A.6): tolerated, not applied. */
			rec->pct_seen = true;
		}
		/* Unknown tags are ignored (4.7). */
	}
	if (rec->fo == NULL)
		rec->fo = mf_xstrdup("0");
	*record_r = rec;
	return 0;
}

const char *dmarc_policy_name(enum dmarc_policy policy)
{
	switch (policy) {
	case DMARC_POLICY_NONE: return "none";
	case DMARC_POLICY_QUARANTINE: return "quarantine";
	case DMARC_POLICY_REJECT: return "reject";
	}
	return "none";
}

const char *dmarc_result_name(enum dmarc_result result)
{
	switch (result) {
	case DMARC_RESULT_NONE: return "none";
	case DMARC_RESULT_PASS: return "pass";
	case DMARC_RESULT_FAIL: return "fail";
	case DMARC_RESULT_TEMPERROR: return "temperror";
	case DMARC_RESULT_PERMERROR: return "permerror";
	}
	return "none";
}

/* --- the author domain ---------------------------------------------------- */

/* Collects the domain of every mailbox in a From value (RFC 5322 3.4):
 * skips comments and quoted strings, takes the addr-spec inside <> or the
 * bare one, and handles group syntax. */
static void from_domains(const char *v, size_t len, char **domains, size_t *count)
{
	struct mf_buf cur;
	size_t depth = 0;
	bool quoted = false, angle = false, have_angle = false;
	struct mf_buf angle_addr;

	mf_buf_init(&cur, DMARC_FROM_FIELD_MAX);
	mf_buf_init(&angle_addr, DMARC_FROM_FIELD_MAX);
	for (size_t i = 0; i <= len; i++) {
		char c = i < len ? v[i] : ',';

		if (quoted) {
			if (c == '\\' && i + 1 < len) {
				i++;
				continue;
			}
			if (c == '"')
				quoted = false;
			continue;
		}
		if (depth > 0) {
			if (c == '\\' && i + 1 < len)
				i++;
			else if (c == '(')
				depth++;
			else if (c == ')')
				depth--;
			continue;
		}
		if (c == '(') {
			depth++;
			continue;
		}
		if (c == '"') {
			quoted = true;
			continue;
		}
		if (angle) {
			if (c == '>')
				angle = false;
			else
				mf_buf_append(&angle_addr, &c, 1);
			continue;
		}
		if (c == '<') {
			angle = true;
			have_angle = true;
			mf_buf_reset(&angle_addr);
			continue;
		}
		if (c == ':' && !have_angle) {
			mf_buf_reset(&cur);  /* "group:" display name */
			continue;
		}
		if (c == ',' || c == ';') {
			const char *addr = have_angle ? mf_buf_cstr(&angle_addr) : mf_buf_cstr(&cur);
			const char *at = strrchr(addr, '@');
			if (at != NULL && *count < DMARC_FROM_ADDRESSES_MAX) {
				const char *d = at + 1;
				size_t dl = strlen(d);
				char *ascii = NULL, *uni = NULL;
				const char *err;

				trim(&d, &dl);
				while (dl > 0 && d[dl - 1] == '.')
					dl--;
				if (dl > 0 && mf_domain_parse(d, dl, &ascii, &uni, &err) == 0) {
					bool dup = false;
					for (size_t k = 0; k < *count; k++)
						dup = dup || strcmp(domains[k], ascii) == 0;
					if (!dup)
						domains[(*count)++] = ascii;
					else
						free(ascii);
					free(uni);
				}
			}
			mf_buf_reset(&cur);
			mf_buf_reset(&angle_addr);
			have_angle = false;
			continue;
		}
		if (!is_wsp(c))
			mf_buf_append(&cur, &c, 1);
	}
	mf_buf_free(&cur);
	mf_buf_free(&angle_addr);
}

void dmarc_message_info(const char *msg, size_t len, struct dmarc_message_info *info)
{
	struct dkim_message m;
	char *domains[DMARC_FROM_ADDRESSES_MAX];
	size_t count = 0, from_fields = 0;
	const char *err;

	memset(info, 0, sizeof(*info));
	if (dkim_message_parse(msg, len, &m, &err) < 0)
		return;
	for (size_t i = 0; i < m.count; i++) {
		const struct dkim_field *f = &m.fields[i];

		if (dkim_field_is(f, "From")) {
			from_fields++;
			if (f->value_len <= DMARC_FROM_FIELD_MAX)
				from_domains(f->value, f->value_len, domains, &count);
		} else if (dkim_field_is(f, "List-Id")) {
			info->list = true;
			if (info->list_id == NULL) {
				struct mf_buf b;
				mf_buf_init(&b, 1024);
				for (size_t k = 0; k < f->value_len; k++) {
					if (f->value[k] != '\r' && f->value[k] != '\n')
						mf_buf_append(&b, &f->value[k], 1);
				}
				const char *s = mf_buf_cstr(&b);
				size_t sl = b.len;
				trim(&s, &sl);
				info->list_id = mf_xstrndup(s, sl);
				mf_buf_free(&b);
			}
		} else if (dkim_field_is(f, "List-Post") || dkim_field_is(f, "List-Unsubscribe")) {
			info->list = true;
		}
	}
	info->from_fields_multiple = from_fields > 1;
	info->from_domains = count;
	if (count > 0)
		info->from_domain = domains[0];
	for (size_t i = 1; i < count; i++)
		free(domains[i]);
	dkim_message_clear(&m);
}

void dmarc_message_info_clear(struct dmarc_message_info *info)
{
	free(info->from_domain);
	free(info->list_id);
	memset(info, 0, sizeof(*info));
}

/* --- the DNS Tree Walk (RFC 9989 4.10) ----------------------------------- */

struct dmarc_query {
	char *domain;                 /* the domain (without _dmarc.) */
	bool tempfail;
	struct dmarc_record *record;  /* the one valid record; NULL: none */
};

struct dmarc_ctx {
	struct dns_resolver *r;
	struct dmarc_query queries[DMARC_QUERIES_MAX];
	size_t count;
	bool authentic;
	bool overflow;                /* more names than DMARC_QUERIES_MAX */
};

/* Looks up _dmarc.<domain> once per evaluation.  Several DMARC records
 * count as none (4.10 step 2); a record that does not parse is no record. */
static const struct dmarc_query *query(struct dmarc_ctx *ctx, const char *domain)
{
	struct dmarc_query *q;
	struct dns_answer *a;
	char *name;
	size_t found = 0;

	for (size_t i = 0; i < ctx->count; i++) {
		if (strcmp(ctx->queries[i].domain, domain) == 0)
			return &ctx->queries[i];
	}
	if (ctx->count == DMARC_QUERIES_MAX) {
		ctx->overflow = true;
		return NULL;
	}
	q = &ctx->queries[ctx->count++];
	memset(q, 0, sizeof(*q));
	q->domain = mf_xstrdup(domain);
	if (strlen(domain) + 7 > DNS_NAME_MAX)
		return q;  /* no such name can exist */
	name = mf_xasprintf("_dmarc.%s", domain);
	a = dns_lookup(ctx->r, name, DNS_TYPE_TXT);
	free(name);
	if (!a->authentic)
		ctx->authentic = false;
	if (a->status == DNS_STATUS_TEMPFAIL) {
		q->tempfail = true;
	} else if (a->status == DNS_STATUS_OK) {
		struct dmarc_record *rec = NULL;
		const char *err;
		for (size_t i = 0; i < a->count; i++) {
			const char *t = (const char *)a->records[i].data;
			if (!dmarc_record_is_dmarc(t, a->records[i].data_len))
				continue;
			found++;
			if (rec == NULL && dmarc_record_parse(t, a->records[i].data_len, &rec, &err) < 0)
				rec = NULL;
		}
		if (found == 1)
			q->record = rec;
		else
			dmarc_record_free(&rec);
	}
	dns_answer_free(&a);
	return q;
}

static size_t label_count(const char *d)
{
	size_t n = 1;

	for (; *d != '\0'; d++)
		n += *d == '.';
	return n;
}

/* The domain with its leftmost labels removed so that keep labels remain. */
static const char *keep_labels(const char *d, size_t keep)
{
	size_t n = label_count(d);

	while (n > keep) {
		const char *dot = strchr(d, '.');
		if (dot == NULL)
			break;
		d = dot + 1;
		n--;
	}
	return d;
}

/* A found record during a walk. */
struct walk_hit {
	const char *domain;
	const struct dmarc_record *record;
};

/* Walks from start (queried first when include_start) towards the root,
 * collecting records, stopping at psd=y or psd=n (4.10 steps 1-7).
 * Returns the number of hits (longest name first), or -1 on a temporary
 * error. */
static int tree_walk(struct dmarc_ctx *ctx, const char *start, bool include_start,
		     struct walk_hit *hits)
{
	const char *target = start;
	/* Without include_start the caller has queried start itself; that
	 * query counts towards the limit of eight. */
	int n = 0, queries = include_start ? 0 : 1;
	bool first = true;

	for (;;) {
		if (!first || include_start) {
			const struct dmarc_query *q = query(ctx, target);
			if (q == NULL || q->tempfail)
				return -1;
			queries++;
			if (q->record != NULL) {
				hits[n].domain = q->domain;
				hits[n].record = q->record;
				n++;
				if (q->record->psd == 'y' || q->record->psd == 'n')
					break;
			}
		}
		/* Next target: with 8 or more labels, shorten to 7 at once. */
		size_t x = label_count(target);
		if (x <= 1 || queries >= DMARC_TREE_WALK_MAX)
			break;
		target = x >= 8 ? keep_labels(target, 7) : strchr(target, '.') + 1;
		first = false;
	}
	return n;
}

/* RFC 9989 4.10.2: choose the Organizational Domain from a walk's hits. */
static const char *select_org(const char *start, const struct walk_hit *hits, int n)
{
	for (int i = 0; i < n; i++) {
		if (hits[i].record->psd == 'n')
			return hits[i].domain;
	}
	for (int i = 0; i < n; i++) {
		if (hits[i].record->psd == 'y' && strcmp(hits[i].domain, start) != 0) {
			/* The name one label below the PSD, within start. */
			size_t pl = label_count(hits[i].domain);
			return keep_labels(start, pl + 1);
		}
	}
	if (n > 0)
		return hits[n - 1].domain;
	return start;
}

static int org_domain(struct dmarc_ctx *ctx, const char *domain, char **org_r)
{
	struct walk_hit hits[DMARC_TREE_WALK_MAX + 1];
	int n = tree_walk(ctx, domain, true, hits);

	if (n < 0)
		return -1;
	*org_r = mf_xstrdup(select_org(domain, hits, n));
	return 0;
}

static void ctx_clear(struct dmarc_ctx *ctx)
{
	for (size_t i = 0; i < ctx->count; i++) {
		free(ctx->queries[i].domain);
		dmarc_record_free(&ctx->queries[i].record);
	}
	ctx->count = 0;
}

int dmarc_org_domain(struct dns_resolver *r, const char *domain, char **org_r)
{
	struct dmarc_ctx ctx = { .r = r, .authentic = true };
	int ret = org_domain(&ctx, domain, org_r);

	ctx_clear(&ctx);
	return ret;
}

/* --- evaluation (RFC 9989 5.3) -------------------------------------------- */

static struct dmarc_record *record_copy(const struct dmarc_record *src)
{
	struct dmarc_record *rec = mf_xcalloc(1, sizeof(*rec));

	*rec = *src;
	rec->rua = rec->ruf = NULL;
	if (src->rua_count > 0) {
		rec->rua = mf_xcalloc(src->rua_count, sizeof(*rec->rua));
		for (size_t i = 0; i < src->rua_count; i++)
			rec->rua[i] = mf_xstrdup(src->rua[i]);
	}
	if (src->ruf_count > 0) {
		rec->ruf = mf_xcalloc(src->ruf_count, sizeof(*rec->ruf));
		for (size_t i = 0; i < src->ruf_count; i++)
			rec->ruf[i] = mf_xstrdup(src->ruf[i]);
	}
	rec->fo = mf_xstrdup(src->fo);
	return rec;
}

static void lower(char *s)
{
	for (; *s != '\0'; s++)
		*s = (char)tolower((unsigned char)*s);
}

/* Whether id aligns with the author domain: 1 yes, 0 no, -1 tempfail.
 * Identical domains need no Tree Walk (4.10.2), nor does strict mode; the
 * author's Organizational Domain is found once, when first needed. */
static int aligned(struct dmarc_ctx *ctx, struct dmarc_evaluation *ev, const char *id, bool strict)
{
	char *org = NULL;
	int ret;

	if (strcasecmp(id, ev->domain) == 0)
		return 1;
	if (strict)
		return 0;
	if (ev->org_domain == NULL && org_domain(ctx, ev->domain, &ev->org_domain) < 0)
		return -1;
	if (org_domain(ctx, id, &org) < 0)
		return -1;
	ret = strcasecmp(org, ev->org_domain) == 0 ? 1 : 0;
	free(org);
	return ret;
}

static void set_reason(struct dmarc_evaluation *ev, const char *reason)
{
	free(ev->reason);
	ev->reason = mf_xstrdup(reason);
}

void dmarc_evaluate(struct dns_resolver *r, const struct dmarc_input *in,
		    struct dmarc_evaluation *ev)
{
	struct dmarc_ctx ctx = { .r = r, .authentic = true };
	struct walk_hit hits[DMARC_TREE_WALK_MAX + 1];
	const struct dmarc_query *q;
	const struct dmarc_record *rec = NULL;
	char *author = NULL;
	int n;
	bool temp = false;

	memset(ev, 0, sizeof(*ev));
	if (in->from_domains > 1) {
		/* RFC 9989 5.3.1, 11.5: several author domains make DMARC
		 * impossible; reported as an error so that it cannot be used
		 * to slip past a policy. */
		ev->result = DMARC_RESULT_PERMERROR;
		set_reason(ev, "several author domains in From");
		goto out;
	}
	if (in->from_domain == NULL || in->from_domain[0] == '\0') {
		set_reason(ev, "no author domain");
		goto out;
	}
	author = mf_xstrdup(in->from_domain);
	lower(author);
	ev->domain = mf_xstrdup(author);
	if (dns_name_check(author, &(const char *){ NULL }) < 0) {
		set_reason(ev, "author domain is not a valid DNS name");
		goto out;
	}

	/* Policy discovery (4.10.1): a record at the author domain applies;
	 * only without one does the Tree Walk go further up. */
	q = query(&ctx, author);
	if (q == NULL || q->tempfail) {
		ev->result = DMARC_RESULT_TEMPERROR;
		set_reason(ev, "DNS lookup of DMARC record failed");
		goto out;
	}
	if (q->record != NULL) {
		rec = q->record;
		ev->policy_domain = mf_xstrdup(author);
	} else {
		n = tree_walk(&ctx, author, false, hits);
		if (n < 0) {
			ev->result = DMARC_RESULT_TEMPERROR;
			set_reason(ev, ctx.overflow ? "too many DMARC lookups"
						    : "DNS lookup of DMARC record failed");
			goto out;
		}
		if (n == 0) {
			set_reason(ev, "no DMARC record");
			goto out;
		}
		ev->org_domain = mf_xstrdup(select_org(author, hits, n));
		/* The Organizational Domain's record, else the PSD's. */
		for (int i = 0; i < n; i++) {
			if (strcmp(hits[i].domain, ev->org_domain) == 0)
				rec = hits[i].record;
		}
		if (rec == NULL) {
			rec = hits[n - 1].record;
			ev->policy_domain = mf_xstrdup(hits[n - 1].domain);
		} else {
			ev->policy_domain = mf_xstrdup(ev->org_domain);
		}
	}
	if (!rec->p_valid || rec->sp_invalid || rec->np_invalid) {
		if (rec->rua_count == 0) {
			set_reason(ev, "DMARC record without valid policy or rua");
			goto out;
		}
		/* Act as p=none (4.10.1). */
		ev->record = record_copy(rec);
		ev->record->p = DMARC_POLICY_NONE;
		ev->record->p_valid = true;
		ev->record->sp_set = ev->record->np_set = false;
	} else {
		ev->record = record_copy(rec);
	}
	rec = ev->record;
	ev->published = rec->p;
	if (strcmp(ev->policy_domain, author) != 0) {
		/* A subdomain of the policy domain: sp, or np when the author
		 * domain does not exist (RFC 8020 NXDOMAIN). */
		if (rec->np_set) {
			struct dns_answer *a = dns_lookup(r, author, DNS_TYPE_A);
			if (!a->authentic)
				ctx.authentic = false;
			if (a->status == DNS_STATUS_TEMPFAIL)
				temp = true;
			ev->author_nxdomain = a->status == DNS_STATUS_NXDOMAIN;
			dns_answer_free(&a);
		}
		if (ev->author_nxdomain)
			ev->published = rec->np;
		else if (rec->sp_set)
			ev->published = rec->sp;
	}

	/* Alignment (4.4, 4.10.2). */
	if (in->spf == SPF_PASS && in->spf_domain != NULL && in->spf_domain[0] != '\0') {
		int a = aligned(&ctx, ev, in->spf_domain, rec->aspf_strict);
		if (a < 0)
			temp = true;
		ev->spf_aligned = a == 1;
	}
	for (size_t i = 0; i < in->dkim_count && !ev->dkim_aligned; i++) {
		const struct dkim_result *d = &in->dkim[i];
		/* RFC 6376 3.6.1 t=y: treated like an unsigned message. */
		if (d->status != DKIM_PASS || d->domain == NULL || d->testing)
			continue;
		int a = aligned(&ctx, ev, d->domain, rec->adkim_strict);
		if (a < 0)
			temp = true;
		if (a == 1) {
			ev->dkim_aligned = true;
			ev->dkim_domain = mf_xstrdup(d->domain);
		}
	}
	if (ev->spf_aligned || ev->dkim_aligned) {
		ev->result = DMARC_RESULT_PASS;
	} else if (temp) {
		/* 5.3.6: neither pass nor fail when a query did not complete. */
		ev->result = DMARC_RESULT_TEMPERROR;
		set_reason(ev, "DNS lookup for alignment failed");
	} else {
		ev->result = DMARC_RESULT_FAIL;
		ev->disposition = ev->published;
		if (rec->testing && ev->disposition != DMARC_POLICY_NONE)
			ev->disposition--;  /* t=y: one level below (4.7) */
		set_reason(ev, "no aligned SPF or DKIM pass");
	}
	/* No Tree Walk was needed: the author domain has its own record and
	 * the identifiers were identical (or strict).  RFC 9989 4.10.2 treats
	 * the common domain as the Organizational Domain then; no queries are
	 * spent on finding another one. */
	if (ev->org_domain == NULL)
		ev->org_domain = mf_xstrdup(author);
out:
	ev->authentic = ctx.authentic && ctx.count > 0;
	free(author);
	ctx_clear(&ctx);
}

void dmarc_evaluation_clear(struct dmarc_evaluation *ev)
{
	free(ev->domain);
	free(ev->policy_domain);
	free(ev->org_domain);
	dmarc_record_free(&ev->record);
	free(ev->dkim_domain);
	free(ev->reason);
	memset(ev, 0, sizeof(*ev));
}
