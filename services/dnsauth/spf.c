/* SPF evaluation: check_host() (RFC 7208 4-7). */
#include "spf.h"

#include "buf.h"
#include "error.h"

#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* Macro-expanded strings never grow past this (names are cut to 253
 * afterwards; explanations to SPF_EXPLANATION_MAX). */
#define SPF_EXPAND_MAX 4096

/* State of one check_host() call including its includes and redirects. */
struct spf_eval {
	struct dns_resolver *r;
	const struct spf_request *req;
	const char *sender;   /* local@domain */
	const char *local;
	const char *sender_domain;
	unsigned lookups;
	unsigned voids;
	bool authentic;
	char *validated;      /* %{p}, computed once per domain: see expand_p */
	char *validated_for;
	char *problem;        /* first temperror/permerror reason */
	char *mechanism;
	char *explanation;
};

const char *spf_result_name(enum spf_result result)
{
	switch (result) {
	case SPF_NONE: return "none";
	case SPF_NEUTRAL: return "neutral";
	case SPF_PASS: return "pass";
	case SPF_FAIL: return "fail";
	case SPF_SOFTFAIL: return "softfail";
	case SPF_TEMPERROR: return "temperror";
	case SPF_PERMERROR: return "permerror";
	}
	return "unknown";
}

static void set_problem(struct spf_eval *ev, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void set_problem(struct spf_eval *ev, const char *fmt, ...)
{
	va_list ap;
	struct mf_buf b;

	if (ev->problem != NULL)
		return;
	mf_buf_init(&b, 512);
	va_start(ap, fmt);
	if (mf_buf_vappendf(&b, fmt, ap) < 0)
		mf_buf_append_str(&b, "(error text too long)");
	va_end(ap);
	ev->problem = mf_buf_steal(&b);
}

/* Lookups that take part in the evaluation: records whether every answer
 * used was authentic. */
static struct dns_answer *lookup(struct spf_eval *ev, const char *name, uint16_t type)
{
	struct dns_answer *a = dns_lookup(ev->r, name, type);

	if (a->status != DNS_STATUS_TEMPFAIL && !a->authentic)
		ev->authentic = false;
	return a;
}

/* RFC 7208 4.6.4: counts a term that causes DNS queries. */
static int count_lookup(struct spf_eval *ev)
{
	if (++ev->lookups > SPF_LOOKUP_LIMIT) {
		set_problem(ev, "more than %d DNS lookups", SPF_LOOKUP_LIMIT);
		return -1;
	}
	return 0;
}

static int count_void(struct spf_eval *ev)
{
	if (++ev->voids > SPF_VOID_LOOKUP_LIMIT) {
		set_problem(ev, "more than %d void DNS lookups", SPF_VOID_LOOKUP_LIMIT);
		return -1;
	}
	return 0;
}

/* RFC 7208 4.3: whether domain can be checked at all. */
static bool domain_ok(const char *domain)
{
	const char *err;
	size_t len = strlen(domain);

	if (dns_name_check(domain, &err) < 0)
		return false;
	if (len > 0 && domain[len - 1] == '.')
		len--;
	/* A multi-label name, not a domain literal. */
	return memchr(domain, '.', len) != NULL && domain[0] != '[';
}

static void ip_nibbles(const struct dns_ip *ip, char *buf, size_t size)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t n = 0;

	/* Upper-case nibbles, as the RFC 7208 suite's explanation texts show;
	 * DNS names are case-insensitive either way. */
	for (int i = 0; i < 16 && n + 4 < size; i++) {
		buf[n++] = hex[ip->addr[i] >> 4];
		buf[n++] = '.';
		buf[n++] = hex[ip->addr[i] & 0xf];
		buf[n++] = i == 15 ? '\0' : '.';
	}
}

/* %{p}: a validated name of the client IP, preferring one at or under
 * domain (RFC 7208 7.3).  Its queries do not count toward the limit (the
 * RFC discourages the macro; its cost is bounded by SPF_PTR_NAMES_MAX). */
static char *validated_name(struct spf_eval *ev, const char *domain, bool want_domain_match)
{
	const struct dns_ip *ip = &ev->req->ip;
	char rev[80], name[128];
	struct dns_answer *ptr;
	char *found = NULL, *any = NULL;

	dns_ip_reverse(ip, rev, sizeof(rev));
	snprintf(name, sizeof(name), "%s.%s", rev, ip->family == AF_INET ? "in-addr.arpa" : "ip6.arpa");
	ptr = lookup(ev, name, DNS_TYPE_PTR);
	if (ptr->status != DNS_STATUS_OK) {
		dns_answer_free(&ptr);
		return NULL;
	}
	for (size_t i = 0; i < ptr->count && i < SPF_PTR_NAMES_MAX && found == NULL; i++) {
		const char *host = ptr->records[i].name;
		struct dns_answer *addrs = lookup(ev, host, ip->family == AF_INET ? DNS_TYPE_A :
								      DNS_TYPE_AAAA);
		bool ok = false;

		for (size_t j = 0; addrs->status == DNS_STATUS_OK && j < addrs->count; j++)
			if (dns_ip_equal(&addrs->records[j].ip, ip))
				ok = true;
		dns_answer_free(&addrs);
		if (!ok)
			continue;
		size_t hl = strlen(host), dl = strlen(domain);
		if (dl > 0 && domain[dl - 1] == '.')
			dl--;
		bool match = (hl == dl && strncasecmp(host, domain, dl) == 0) ||
			     (hl > dl && host[hl - dl - 1] == '.' &&
			      strncasecmp(host + hl - dl, domain, dl) == 0);
		if (match)
			found = mf_xstrdup(host);
		else if (any == NULL)
			any = mf_xstrdup(host);
	}
	dns_answer_free(&ptr);
	if (found != NULL) {
		free(any);
		return found;
	}
	if (want_domain_match) {
		free(any);
		return NULL;
	}
	return any;
}

static void url_escape(struct mf_buf *out, const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		    c == '-' || c == '.' || c == '_' || c == '~')
			mf_buf_append(out, &s[i], 1);
		else
			mf_buf_appendf(out, "%%%02X", c);
	}
}

/* Appends the value of one macro letter. */
static void macro_value(struct spf_eval *ev, char letter, const char *domain, struct mf_buf *v)
{
	const struct dns_ip *ip = &ev->req->ip;
	char buf[80];

	switch (letter) {
	case 's':
		mf_buf_append_str(v, ev->sender);
		break;
	case 'l':
		mf_buf_append_str(v, ev->local);
		break;
	case 'o':
		mf_buf_append_str(v, ev->sender_domain);
		break;
	case 'd':
		mf_buf_append_str(v, domain);
		break;
	case 'i':
		if (ip->family == AF_INET)
			mf_buf_append_str(v, dns_ip_format(ip, buf, sizeof(buf)));
		else {
			ip_nibbles(ip, buf, sizeof(buf));
			mf_buf_append_str(v, buf);
		}
		break;
	case 'p':
		if (ev->validated_for == NULL || strcasecmp(ev->validated_for, domain) != 0) {
			free(ev->validated);
			free(ev->validated_for);
			ev->validated = validated_name(ev, domain, false);
			ev->validated_for = mf_xstrdup(domain);
		}
		mf_buf_append_str(v, ev->validated != NULL ? ev->validated : "unknown");
		break;
	case 'v':
		mf_buf_append_str(v, ip->family == AF_INET ? "in-addr" : "ip6");
		break;
	case 'h':
		mf_buf_append_str(v, ev->req->helo != NULL ? ev->req->helo : "");
		break;
	case 'c':
		mf_buf_append_str(v, dns_ip_format(ip, buf, sizeof(buf)));
		break;
	case 'r':
		mf_buf_append_str(v, ev->req->receiver != NULL ? ev->req->receiver : "unknown");
		break;
	case 't':
		mf_buf_appendf(v, "%lld", (long long)(ev->req->now != 0 ? ev->req->now : time(NULL)));
		break;
	}
}

/* Applies the transformers of one macro (RFC 7208 7.3) to value. */
static void macro_transform(const char *value, unsigned parts, bool reverse,
			    const char *delims, size_t ndelims, bool escape, struct mf_buf *out)
{
	const char *p[SPF_EXPAND_MAX / 2 + 1];
	size_t plen[SPF_EXPAND_MAX / 2 + 1];
	size_t n = 0, start = 0, len = strlen(value);
	struct mf_buf joined;

	if (ndelims == 0) {
		delims = ".";
		ndelims = 1;
	}
	for (size_t i = 0; i <= len && n < sizeof(p) / sizeof(p[0]); i++) {
		if (i == len || memchr(delims, value[i], ndelims) != NULL) {
			p[n] = value + start;
			plen[n++] = i - start;
			start = i + 1;
		}
	}
	if (reverse) {
		for (size_t i = 0; i < n / 2; i++) {
			const char *tp = p[i];
			size_t tl = plen[i];
			p[i] = p[n - 1 - i];
			plen[i] = plen[n - 1 - i];
			p[n - 1 - i] = tp;
			plen[n - 1 - i] = tl;
		}
	}
	size_t first = parts != 0 && parts < n ? n - parts : 0;
	mf_buf_init(&joined, SPF_EXPAND_MAX);
	for (size_t i = first; i < n; i++) {
		if (i > first)
			mf_buf_append(&joined, ".", 1);
		mf_buf_append(&joined, p[i], plen[i]);
	}
	if (escape)
		url_escape(out, mf_buf_cstr(&joined), joined.len);
	else
		mf_buf_append(out, mf_buf_cstr(&joined), joined.len);
	mf_buf_free(&joined);
}

/* Expands a macro-string (checked by the parser for domain-specs, not yet
 * for explanation texts).  Returns a new string, or NULL with a problem
 * set when malformed or too long. */
static char *expand(struct spf_eval *ev, const char *s, const char *domain, bool exp_text)
{
	size_t len = strlen(s);
	struct mf_buf out;
	const char *err;

	if (spf_macro_check(s, len, exp_text, &err) < 0) {
		set_problem(ev, "%s", err);
		return NULL;
	}
	mf_buf_init(&out, SPF_EXPAND_MAX);
	for (size_t i = 0; i < len;) {
		if (s[i] != '%') {
			if (mf_buf_append(&out, &s[i], 1) < 0)
				goto toolong;
			i++;
			continue;
		}
		char c = s[i + 1];
		if (c == '%' || c == '_' || c == '-') {
			if (mf_buf_append_str(&out, c == '%' ? "%" : c == '_' ? " " : "%20") < 0)
				goto toolong;
			i += 2;
			continue;
		}
		/* %{letter digits [r] delimiters} */
		char letter = s[i + 2];
		bool escape = letter >= 'A' && letter <= 'Z';
		size_t j = i + 3;
		unsigned parts = 0;
		bool reverse = false;
		struct mf_buf value;

		while (s[j] >= '0' && s[j] <= '9') {
			if (parts <= SPF_MACRO_PARTS_MAX)
				parts = parts * 10 + (unsigned)(s[j] - '0');
			j++;
		}
		if (s[j] == 'r' || s[j] == 'R') {
			reverse = true;
			j++;
		}
		size_t dstart = j;
		while (s[j] != '}')
			j++;
		mf_buf_init(&value, SPF_EXPAND_MAX);
		macro_value(ev, (char)(letter | 0x20), domain, &value);
		macro_transform(mf_buf_cstr(&value), parts, reverse, s + dstart, j - dstart, escape,
				&out);
		mf_buf_free(&value);
		if (out.len + 1 >= SPF_EXPAND_MAX)
			goto toolong;
		i = j + 1;
	}
	return mf_buf_steal(&out);
toolong:
	mf_buf_free(&out);
	set_problem(ev, "macro expansion too long");
	return NULL;
}

/* Expands a domain-spec into a name to look up: trailing dot removed, cut
 * to 253 octets by dropping labels from the left (RFC 7208 7.3). */
static char *expand_domain(struct spf_eval *ev, const char *spec, const char *domain)
{
	char *name = expand(ev, spec, domain, false), *p;
	size_t len;

	if (name == NULL)
		return NULL;
	len = strlen(name);
	if (len > 0 && name[len - 1] == '.')
		name[--len] = '\0';
	p = name;
	while (len > DNS_NAME_MAX) {
		char *dot = strchr(p, '.');
		if (dot == NULL)
			break;
		len -= (size_t)(dot + 1 - p);
		p = dot + 1;
	}
	if (p != name)
		memmove(name, p, len + 1);
	return name;
}

static enum spf_result qualifier_result(char q)
{
	switch (q) {
	case '-': return SPF_FAIL;
	case '~': return SPF_SOFTFAIL;
	case '?': return SPF_NEUTRAL;
	default: return SPF_PASS;
	}
}

static enum spf_result check_host(struct spf_eval *ev, const char *domain, bool want_exp,
				  unsigned depth);

/* Whether an address lookup of name holds the client IP within the
 * CIDR lengths.  Returns 1 (match), 0 (no match), -1 (temperror) or -2
 * (permerror: void limit). */
static int match_addresses(struct spf_eval *ev, const char *name, unsigned cidr4,
			   unsigned cidr6, bool count_voids)
{
	const struct dns_ip *ip = &ev->req->ip;
	struct dns_answer *a;
	int ret = 0;

	a = lookup(ev, name, ip->family == AF_INET ? DNS_TYPE_A : DNS_TYPE_AAAA);
	switch (a->status) {
	case DNS_STATUS_TEMPFAIL:
		set_problem(ev, "DNS lookup of %s: %s", name, a->error);
		ret = -1;
		break;
	case DNS_STATUS_NXDOMAIN:
	case DNS_STATUS_NODATA:
		if (count_voids && count_void(ev) < 0)
			ret = -2;
		break;
	case DNS_STATUS_OK:
		for (size_t i = 0; i < a->count; i++)
			if (dns_ip_prefix_match(&a->records[i].ip, ip,
						ip->family == AF_INET ? cidr4 : cidr6))
				ret = 1;
		break;
	}
	dns_answer_free(&a);
	return ret;
}

/* Evaluates one mechanism.  Returns 1 (match), 0 (no match), or -1 with
 * *error_r set to TEMPERROR or PERMERROR. */
static int mechanism(struct spf_eval *ev, const struct spf_term *t, const char *domain,
		     unsigned depth, enum spf_result *error_r)
{
	const struct dns_ip *ip = &ev->req->ip;
	char *target = NULL;
	int ret = -1;

	*error_r = SPF_PERMERROR;
	switch (t->mech) {
	case SPF_MECH_ALL:
		return 1;
	case SPF_MECH_IP4:
	case SPF_MECH_IP6:
		if (ip->family != t->net.family)
			return 0;
		return dns_ip_prefix_match(ip, &t->net,
					   t->mech == SPF_MECH_IP4 ? t->cidr4 : t->cidr6) ? 1 : 0;
	default:
		break;
	}
	if (count_lookup(ev) < 0)
		return -1;
	if (t->domain_spec != NULL) {
		if ((target = expand_domain(ev, t->domain_spec, domain)) == NULL)
			return -1;
	} else {
		target = mf_xstrdup(domain);
	}
	/* A name that cannot be looked up cannot match (and is no DNS error). */
	const char *err;
	if (dns_name_check(target, &err) < 0) {
		if (t->mech == SPF_MECH_INCLUDE) {
			set_problem(ev, "include of malformed domain %s", target);
			goto out;
		}
		ret = 0;
		goto out;
	}
	switch (t->mech) {
	case SPF_MECH_INCLUDE: {
		enum spf_result res = check_host(ev, target, false, depth + 1);
		switch (res) {
		case SPF_PASS:
			ret = 1;
			break;
		case SPF_FAIL:
		case SPF_SOFTFAIL:
		case SPF_NEUTRAL:
			ret = 0;
			break;
		case SPF_TEMPERROR:
			*error_r = SPF_TEMPERROR;
			break;
		case SPF_NONE:
			set_problem(ev, "included domain %s has no SPF record", target);
			break;
		case SPF_PERMERROR:
			break;
		}
		break;
	}
	case SPF_MECH_A:
		ret = match_addresses(ev, target, t->cidr4, t->cidr6, true);
		if (ret == -1)
			*error_r = SPF_TEMPERROR;
		else if (ret == -2)
			ret = -1;
		break;
	case SPF_MECH_MX: {
		struct dns_answer *mx = lookup(ev, target, DNS_TYPE_MX);
		if (mx->status == DNS_STATUS_TEMPFAIL) {
			set_problem(ev, "DNS lookup of %s MX: %s", target, mx->error);
			*error_r = SPF_TEMPERROR;
		} else if (mx->status != DNS_STATUS_OK) {
			ret = count_void(ev) < 0 ? -1 : 0;
		} else if (mx->count > SPF_MX_NAMES_MAX) {
			set_problem(ev, "%s has more than %d MX records", target, SPF_MX_NAMES_MAX);
		} else {
			ret = 0;
			for (size_t i = 0; i < mx->count && ret == 0; i++) {
				if (strcmp(mx->records[i].name, ".") == 0)
					continue;  /* null MX, RFC 7505 */
				int m = match_addresses(ev, mx->records[i].name, t->cidr4, t->cidr6,
							false);
				if (m == -1) {
					*error_r = SPF_TEMPERROR;
					ret = -1;
				} else if (m == 1) {
					ret = 1;
				}
			}
		}
		dns_answer_free(&mx);
		break;
	}
	case SPF_MECH_PTR: {
		char rev[80], name[128];
		struct dns_answer *ptr;

		dns_ip_reverse(ip, rev, sizeof(rev));
		snprintf(name, sizeof(name), "%s.%s", rev,
			 ip->family == AF_INET ? "in-addr.arpa" : "ip6.arpa");
		ptr = lookup(ev, name, DNS_TYPE_PTR);
		/* RFC 7208 5.5: a DNS error here means no match. */
		if (ptr->status == DNS_STATUS_NXDOMAIN || ptr->status == DNS_STATUS_NODATA) {
			dns_answer_free(&ptr);
			ret = count_void(ev) < 0 ? -1 : 0;
			break;
		}
		dns_answer_free(&ptr);
		char *v = validated_name(ev, target, true);
		ret = v != NULL ? 1 : 0;
		free(v);
		break;
	}
	case SPF_MECH_EXISTS: {
		/* RFC 7208 5.7: always an A query, whatever the client's family. */
		struct dns_answer *a = lookup(ev, target, DNS_TYPE_A);
		if (a->status == DNS_STATUS_TEMPFAIL) {
			set_problem(ev, "DNS lookup of %s: %s", target, a->error);
			*error_r = SPF_TEMPERROR;
		} else if (a->status != DNS_STATUS_OK) {
			ret = count_void(ev) < 0 ? -1 : 0;
		} else {
			ret = 1;
		}
		dns_answer_free(&a);
		break;
	}
	default:
		break;
	}
out:
	free(target);
	return ret;
}

/* RFC 7208 6.2: the explanation for a "fail" from this record. */
static void explain(struct spf_eval *ev, const struct spf_record *rec, const char *domain)
{
	const char *deflt = ev->req->default_explanation != NULL ? ev->req->default_explanation :
								  SPF_DEFAULT_EXPLANATION;
	char *problem = ev->problem;
	char *text = NULL;

	/* Problems met while explaining do not make the result an error. */
	ev->problem = NULL;
	if (rec != NULL && rec->exp != NULL) {
		char *name = expand_domain(ev, rec->exp, domain);
		const char *err;
		if (name != NULL && dns_name_check(name, &err) == 0) {
			struct dns_answer *a = lookup(ev, name, DNS_TYPE_TXT);
			/* Exactly one TXT record, 7-bit ASCII, valid macros. */
			if (a->status == DNS_STATUS_OK && a->count == 1) {
				const struct dns_record *t = &a->records[0];
				bool ascii = strlen((const char *)t->data) == t->data_len;
				for (size_t i = 0; ascii && i < t->data_len; i++)
					if (t->data[i] < 0x20 || t->data[i] > 0x7e)
						ascii = false;
				if (ascii)
					text = expand(ev, (const char *)t->data, domain, true);
			}
			dns_answer_free(&a);
		}
		free(name);
	}
	if (text == NULL)
		text = expand(ev, deflt, domain, true);
	if (text == NULL)
		text = mf_xstrdup(deflt);
	if (strlen(text) > SPF_EXPLANATION_MAX)
		text[SPF_EXPLANATION_MAX] = '\0';
	free(ev->explanation);
	ev->explanation = text;
	free(ev->problem);
	ev->problem = problem;
}

/* check_host() for domain; want_exp is false inside include. */
static enum spf_result check_host(struct spf_eval *ev, const char *domain, bool want_exp,
				  unsigned depth)
{
	struct dns_answer *txt = NULL;
	struct spf_record *rec = NULL;
	const char *text = NULL, *err;
	size_t text_len = 0, found = 0;
	enum spf_result result = SPF_NEUTRAL, merr;

	/* Each level costs a counted lookup, so depth is bounded anyway; this
	 * is a second guard for the stack. */
	if (depth > SPF_LOOKUP_LIMIT + 1) {
		set_problem(ev, "includes nested too deeply");
		return SPF_PERMERROR;
	}
	if (!domain_ok(domain)) {
		set_problem(ev, "%s is not a valid domain name", domain);
		return SPF_NONE;
	}
	txt = lookup(ev, domain, DNS_TYPE_TXT);
	switch (txt->status) {
	case DNS_STATUS_TEMPFAIL:
		set_problem(ev, "DNS lookup of %s TXT: %s", domain, txt->error);
		result = SPF_TEMPERROR;
		goto out;
	case DNS_STATUS_NXDOMAIN:
	case DNS_STATUS_NODATA:
		set_problem(ev, "%s has no SPF record", domain);
		result = SPF_NONE;
		goto out;
	case DNS_STATUS_OK:
		break;
	}
	for (size_t i = 0; i < txt->count; i++) {
		const struct dns_record *t = &txt->records[i];
		if (spf_record_is_spf((const char *)t->data, t->data_len)) {
			text = (const char *)t->data;
			text_len = t->data_len;
			found++;
		}
	}
	if (found == 0) {
		set_problem(ev, "%s has no SPF record", domain);
		result = SPF_NONE;
		goto out;
	}
	if (found > 1) {
		set_problem(ev, "%s has more than one SPF record", domain);
		result = SPF_PERMERROR;
		goto out;
	}
	if (spf_record_parse(text, text_len, &rec, &err) < 0) {
		set_problem(ev, "SPF record of %s: %s", domain, err);
		result = SPF_PERMERROR;
		goto out;
	}
	for (size_t i = 0; i < rec->count; i++) {
		int m = mechanism(ev, &rec->terms[i], domain, depth, &merr);
		if (m < 0) {
			result = merr;
			goto out;
		}
		if (m == 1) {
			result = qualifier_result(rec->terms[i].qualifier);
			free(ev->mechanism);
			ev->mechanism = mf_xstrdup(rec->terms[i].text);
			if (result == SPF_FAIL && want_exp)
				explain(ev, rec, domain);
			goto out;
		}
	}
	if (rec->redirect != NULL) {
		char *target;

		/* RFC 7208 6.1: the target's result, "none" becoming permerror;
		 * this record's exp= no longer applies. */
		if (count_lookup(ev) < 0) {
			result = SPF_PERMERROR;
			goto out;
		}
		if ((target = expand_domain(ev, rec->redirect, domain)) == NULL) {
			result = SPF_PERMERROR;
			goto out;
		}
		if (!domain_ok(target)) {
			set_problem(ev, "redirect to malformed domain %s", target);
			free(target);
			result = SPF_PERMERROR;
			goto out;
		}
		free(ev->mechanism);
		ev->mechanism = mf_xasprintf("redirect=%s", target);
		result = check_host(ev, target, want_exp, depth + 1);
		if (result == SPF_NONE) {
			free(ev->problem);
			ev->problem = NULL;
			set_problem(ev, "redirect target %s has no SPF record", target);
			result = SPF_PERMERROR;
		}
		free(target);
		goto out;
	}
	result = SPF_NEUTRAL;
out:
	spf_record_free(&rec);
	dns_answer_free(&txt);
	return result;
}

static void eval_free(struct spf_eval *ev)
{
	free(ev->validated);
	free(ev->validated_for);
	free(ev->problem);
	free(ev->mechanism);
	free(ev->explanation);
}

void spf_check_host(struct dns_resolver *r, const struct spf_request *req,
		    const char *domain, const char *sender, struct spf_outcome *outcome_r)
{
	struct spf_eval ev;
	const char *at = strrchr(sender, '@');
	char *local, *sdomain;

	memset(&ev, 0, sizeof(ev));
	memset(outcome_r, 0, sizeof(*outcome_r));
	/* RFC 7208 4.3: no local-part means "postmaster". */
	if (at == NULL) {
		local = mf_xstrdup("postmaster");
		sdomain = mf_xstrdup(sender);
	} else {
		local = at == sender ? mf_xstrdup("postmaster") :
				       mf_xstrndup(sender, (size_t)(at - sender));
		sdomain = mf_xstrdup(at + 1);
	}
	outcome_r->sender = mf_xasprintf("%s@%s", local, sdomain);
	ev.r = r;
	ev.req = req;
	ev.sender = outcome_r->sender;
	ev.local = local;
	ev.sender_domain = sdomain;
	ev.authentic = true;
	outcome_r->domain = mf_xstrdup(domain);
	outcome_r->result = check_host(&ev, domain, true, 0);
	if (outcome_r->result == SPF_FAIL && ev.explanation == NULL)
		explain(&ev, NULL, domain);
	outcome_r->lookups = ev.lookups;
	outcome_r->void_lookups = ev.voids;
	outcome_r->authentic = ev.authentic && outcome_r->result != SPF_TEMPERROR;
	if (outcome_r->result == SPF_FAIL) {
		outcome_r->explanation = ev.explanation;
		ev.explanation = NULL;
	}
	if (outcome_r->result == SPF_NONE || outcome_r->result == SPF_TEMPERROR ||
	    outcome_r->result == SPF_PERMERROR) {
		outcome_r->problem = ev.problem != NULL ? ev.problem : mf_xstrdup("error");
		ev.problem = NULL;
	} else {
		outcome_r->mechanism = ev.mechanism;
		ev.mechanism = NULL;
	}
	eval_free(&ev);
	free(local);
	free(sdomain);
}

void spf_outcome_clear(struct spf_outcome *o)
{
	free(o->domain);
	free(o->sender);
	free(o->explanation);
	free(o->problem);
	free(o->mechanism);
	memset(o, 0, sizeof(*o));
}

void spf_verify(struct dns_resolver *r, const struct spf_request *req,
		struct spf_verdict *verdict_r)
{
	const char *helo = req->helo != NULL ? req->helo : "";
	char *sender;

	memset(verdict_r, 0, sizeof(*verdict_r));
	/* RFC 7208 2.3: HELO is checked when it is a domain name, with
	 * postmaster@HELO as sender. */
	sender = mf_xasprintf("postmaster@%s", helo);
	if (domain_ok(helo)) {
		spf_check_host(r, req, helo, sender, &verdict_r->helo);
	} else {
		verdict_r->helo.result = SPF_NONE;
		verdict_r->helo.problem = mf_xstrdup("HELO is not a domain name");
		verdict_r->helo.sender = mf_xstrdup(sender);
	}
	/* RFC 7208 2.4: MAIL FROM, or postmaster@HELO for the null reverse-path. */
	if (req->mail_from != NULL && req->mail_from[0] != '\0') {
		const char *at = strrchr(req->mail_from, '@');
		spf_check_host(r, req, at != NULL ? at + 1 : req->mail_from, req->mail_from,
			       &verdict_r->mail_from);
	} else if (domain_ok(helo)) {
		spf_check_host(r, req, helo, sender, &verdict_r->mail_from);
	} else {
		verdict_r->mail_from.result = SPF_NONE;
		verdict_r->mail_from.problem = mf_xstrdup("null sender and HELO is not a domain name");
		verdict_r->mail_from.sender = mf_xstrdup(sender);
	}
	free(sender);
}

void spf_verdict_clear(struct spf_verdict *verdict)
{
	spf_outcome_clear(&verdict->helo);
	spf_outcome_clear(&verdict->mail_from);
}
