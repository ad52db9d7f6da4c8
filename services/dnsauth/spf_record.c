/* SPF record syntax (RFC 7208 4.5, 4.6, 5, 6, 7.1, 12). */
#include "spf.h"

#include "buf.h"
#include "error.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static bool is_alpha(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static bool is_delimiter(char c)
{
	return strchr(".-+,/_=", c) != NULL && c != '\0';
}

bool spf_record_is_spf(const char *text, size_t len)
{
	return len >= 6 && strncasecmp(text, "v=spf1", 6) == 0 && (len == 6 || text[6] == ' ');
}

/* Checks one macro-expand starting at s[0] == '%'; returns its length, or
 * 0 when malformed. */
static size_t macro_expand_len(const char *s, size_t len, bool exp_text)
{
	size_t i = 2;

	if (len < 2)
		return 0;
	if (s[1] == '%' || s[1] == '_' || s[1] == '-')
		return 2;
	if (s[1] != '{' || len < 4)
		return 0;
	char l = (char)(s[2] | 0x20);
	if (strchr("slodiphv", l) == NULL && !(exp_text && strchr("crt", l) != NULL))
		return 0;
	if (!is_alpha(s[2]))
		return 0;
	for (i = 3; i < len && is_digit(s[i]); i++)
		;
	/* RFC 7208 7.1: a DIGIT transformer must be nonzero. */
	if (i > 3) {
		bool nonzero = false;
		for (size_t j = 3; j < i; j++)
			nonzero |= s[j] != '0';
		if (!nonzero)
			return 0;
	}
	if (i < len && (s[i] == 'r' || s[i] == 'R'))
		i++;
	while (i < len && is_delimiter(s[i]))
		i++;
	if (i >= len || s[i] != '}')
		return 0;
	return i + 1;
}

int spf_macro_check(const char *s, size_t len, bool exp_text, const char **error_r)
{
	for (size_t i = 0; i < len;) {
		unsigned char c = (unsigned char)s[i];
		if (c == '%') {
			size_t n = macro_expand_len(s + i, len - i, exp_text);
			if (n == 0) {
				*error_r = mf_errorf("bad macro at %.*s", (int)(len - i > 16 ? 16 : len - i),
						     s + i);
				return -1;
			}
			i += n;
			continue;
		}
		/* macro-literal = %x21-24 / %x26-7E; explanations also have spaces. */
		if (c < 0x21 || c > 0x7e) {
			if (!(exp_text && c == ' ')) {
				*error_r = "bad character in macro string";
				return -1;
			}
		}
		i++;
	}
	return 0;
}

/* toplabel = ( *alphanum ALPHA *alphanum ) / ( 1*alphanum "-" *( alphanum / "-" ) alphanum ) */
static bool is_toplabel(const char *s, size_t len)
{
	bool alpha = false;

	if (len == 0 || s[0] == '-' || s[len - 1] == '-')
		return false;
	for (size_t i = 0; i < len; i++) {
		if (is_alpha(s[i]))
			alpha = true;
		else if (s[i] == '-')
			alpha = true;  /* the second form: a hyphen makes it non-numeric */
		else if (!is_digit(s[i]))
			return false;
	}
	return alpha;
}

/* domain-spec = macro-string domain-end;
 * domain-end = ( "." toplabel [ "." ] ) / macro-expand */
static int check_domain_spec(const char *s, size_t len, const char **error_r)
{
	size_t end = len, dot;

	if (len == 0) {
		*error_r = "empty domain-spec";
		return -1;
	}
	if (spf_macro_check(s, len, false, error_r) < 0)
		return -1;
	/* Ends with a macro-expand: find whether the last macro ends at len. */
	for (size_t i = 0; i < len;) {
		if (s[i] == '%') {
			size_t n = macro_expand_len(s + i, len - i, false);
			if (i + n == len)
				return 0;
			i += n;
		} else {
			i++;
		}
	}
	if (end > 0 && s[end - 1] == '.')
		end--;
	for (dot = end; dot > 0 && s[dot - 1] != '.'; dot--)
		;
	if (dot == 0 || !is_toplabel(s + dot, end - dot)) {
		*error_r = mf_errorf("domain-spec %.*s does not end in a valid top label",
				     (int)(len > 64 ? 64 : len), s);
		return -1;
	}
	return 0;
}

/* Parses "/N" with the ABNF's no-leading-zero digits, up to max. */
static int parse_cidr(const char *s, size_t len, unsigned max, unsigned *bits_r)
{
	unsigned v = 0;

	if (len == 0 || len > 3 || (s[0] == '0' && len > 1))
		return -1;
	for (size_t i = 0; i < len; i++) {
		if (!is_digit(s[i]))
			return -1;
		v = v * 10 + (unsigned)(s[i] - '0');
	}
	if (v > max)
		return -1;
	*bits_r = v;
	return 0;
}

static int parse_dual_cidr(const char *s, size_t len, struct spf_term *t, const char **error_r);

/* Finds where a dual-cidr-length suffix starts in s: at the first '/'
 * outside macros after which the rest parses as one, so that "/" inside
 * a domain-spec ("a:foo:bar/baz.example.com") stays in it.  Returns len
 * when there is none. */
static size_t find_cidr(const char *s, size_t len)
{
	struct spf_term probe;
	const char *err;

	for (size_t i = 0; i < len;) {
		if (s[i] == '%') {
			size_t n = macro_expand_len(s + i, len - i, false);
			i += n == 0 ? 1 : n;
		} else if (s[i] == '/') {
			if (parse_dual_cidr(s + i, len - i, &probe, &err) == 0)
				return i;
			i++;
		} else {
			i++;
		}
	}
	return len;
}

/* dual-cidr-length = [ ip4-cidr-length ] [ "/" ip6-cidr-length ] */
static int parse_dual_cidr(const char *s, size_t len, struct spf_term *t, const char **error_r)
{
	const char *p = s, *end = s + len;

	if (len == 0)
		return 0;
	if (p[0] != '/')
		goto bad;
	p++;
	if (p < end && *p != '/') {
		const char *q = memchr(p, '/', (size_t)(end - p));
		size_t n = (size_t)((q != NULL ? q : end) - p);
		if (parse_cidr(p, n, 32, &t->cidr4) < 0)
			goto bad;
		p += n;
		if (p == end)
			return 0;
		p++;  /* the first '/' of "//" */
	}
	if (p >= end || *p != '/')
		goto bad;
	p++;
	if (parse_cidr(p, (size_t)(end - p), 128, &t->cidr6) < 0)
		goto bad;
	return 0;
bad:
	*error_r = mf_errorf("bad CIDR length %.*s", (int)(len > 32 ? 32 : len), s);
	return -1;
}

static const struct {
	const char *name;
	enum spf_mech mech;
} mech_names[] = {
	{ "all", SPF_MECH_ALL }, { "include", SPF_MECH_INCLUDE }, { "a", SPF_MECH_A },
	{ "mx", SPF_MECH_MX }, { "ptr", SPF_MECH_PTR }, { "ip4", SPF_MECH_IP4 },
	{ "ip6", SPF_MECH_IP6 }, { "exists", SPF_MECH_EXISTS },
};

static int parse_ip_net(const char *s, size_t len, int family, struct spf_term *t,
			const char **error_r)
{
	const char *slash = memchr(s, '/', len);
	size_t alen = slash != NULL ? (size_t)(slash - s) : len;
	char buf[64];

	if (alen == 0 || alen >= sizeof(buf))
		goto bad;
	memcpy(buf, s, alen);
	buf[alen] = '\0';
	memset(&t->net, 0, sizeof(t->net));
	t->net.family = family;
	if (inet_pton(family, buf, t->net.addr) != 1)
		goto bad;
	if (slash != NULL) {
		size_t clen = len - alen - 1;
		if (parse_cidr(slash + 1, clen, family == AF_INET ? 32 : 128,
			       family == AF_INET ? &t->cidr4 : &t->cidr6) < 0)
			goto bad;
	}
	return 0;
bad:
	*error_r = mf_errorf("bad %s network %.*s", family == AF_INET ? "ip4" : "ip6",
			     (int)(len > 64 ? 64 : len), s);
	return -1;
}

static int parse_mechanism(const char *s, size_t len, struct spf_term *t, const char **error_r)
{
	size_t i = 0, nlen;
	const char *arg;
	size_t alen;

	t->qualifier = '+';
	t->cidr4 = 32;
	t->cidr6 = 128;
	if (len > 0 && strchr("+-~?", s[0]) != NULL) {
		t->qualifier = s[0];
		i = 1;
	}
	for (nlen = 0; i + nlen < len && s[i + nlen] != ':' && s[i + nlen] != '/'; nlen++)
		;
	size_t m;
	for (m = 0; m < sizeof(mech_names) / sizeof(mech_names[0]); m++)
		if (strlen(mech_names[m].name) == nlen &&
		    strncasecmp(mech_names[m].name, s + i, nlen) == 0)
			break;
	if (m == sizeof(mech_names) / sizeof(mech_names[0])) {
		*error_r = mf_errorf("unknown mechanism %.*s", (int)(len > 64 ? 64 : len), s);
		return -1;
	}
	t->mech = mech_names[m].mech;
	arg = s + i + nlen;
	alen = len - i - nlen;
	switch (t->mech) {
	case SPF_MECH_ALL:
		if (alen != 0)
			goto bad;
		return 0;
	case SPF_MECH_INCLUDE:
	case SPF_MECH_EXISTS:
		if (alen < 2 || arg[0] != ':')
			goto bad;
		if (check_domain_spec(arg + 1, alen - 1, error_r) < 0)
			return -1;
		t->domain_spec = mf_xstrndup(arg + 1, alen - 1);
		return 0;
	case SPF_MECH_A:
	case SPF_MECH_MX:
	case SPF_MECH_PTR: {
		size_t cidr = 0;
		if (alen > 0 && arg[0] == ':') {
			size_t dlen = t->mech == SPF_MECH_PTR ? alen - 1 : find_cidr(arg + 1, alen - 1);
			if (check_domain_spec(arg + 1, dlen, error_r) < 0)
				return -1;
			t->domain_spec = mf_xstrndup(arg + 1, dlen);
			cidr = 1 + dlen;
		}
		if (t->mech == SPF_MECH_PTR) {
			if (cidr != alen)
				goto bad;
			return 0;
		}
		return parse_dual_cidr(arg + cidr, alen - cidr, t, error_r);
	}
	case SPF_MECH_IP4:
	case SPF_MECH_IP6:
		if (alen < 2 || arg[0] != ':')
			goto bad;
		return parse_ip_net(arg + 1, alen - 1, t->mech == SPF_MECH_IP4 ? AF_INET : AF_INET6,
				    t, error_r);
	}
bad:
	*error_r = mf_errorf("bad mechanism %.*s", (int)(len > 64 ? 64 : len), s);
	return -1;
}

/* name = ALPHA *( ALPHA / DIGIT / "-" / "_" / "." ); returns the length
 * of the name when s is "name=...", else 0. */
static size_t modifier_name_len(const char *s, size_t len)
{
	size_t i;

	if (len == 0 || !is_alpha(s[0]))
		return 0;
	for (i = 1; i < len; i++) {
		if (s[i] == '=')
			return i;
		if (!is_alpha(s[i]) && !is_digit(s[i]) && strchr("-_.", s[i]) == NULL)
			return 0;
	}
	return 0;
}

void spf_record_free(struct spf_record **record)
{
	struct spf_record *rec = *record;

	if (rec == NULL)
		return;
	for (size_t i = 0; i < rec->count; i++) {
		free(rec->terms[i].domain_spec);
		free(rec->terms[i].text);
	}
	free(rec->terms);
	free(rec->redirect);
	free(rec->exp);
	free(rec);
	*record = NULL;
}

int spf_record_parse(const char *text, size_t len, struct spf_record **record_r,
		     const char **error_r)
{
	struct spf_record *rec = mf_xcalloc(1, sizeof(*rec));
	size_t i;

	if (len > SPF_RECORD_MAX) {
		*error_r = "record too long";
		goto fail;
	}
	if (!spf_record_is_spf(text, len)) {
		*error_r = "not an SPF record";
		goto fail;
	}
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)text[i];
		if (c < 0x20 || c > 0x7e) {
			*error_r = "record has characters outside 7-bit ASCII";
			goto fail;
		}
	}
	i = 6;
	while (i < len) {
		size_t start, tlen, nlen;

		while (i < len && text[i] == ' ')
			i++;
		if (i == len)
			break;
		start = i;
		while (i < len && text[i] != ' ')
			i++;
		tlen = i - start;
		const char *t = text + start;
		if ((nlen = modifier_name_len(t, tlen)) > 0) {
			const char *v = t + nlen + 1;
			size_t vlen = tlen - nlen - 1;
			char **target = NULL;

			if (nlen == 8 && strncasecmp(t, "redirect", 8) == 0)
				target = &rec->redirect;
			else if (nlen == 3 && strncasecmp(t, "exp", 3) == 0)
				target = &rec->exp;
			if (target != NULL) {
				if (*target != NULL) {
					*error_r = mf_errorf("%.*s= given twice", (int)nlen, t);
					goto fail;
				}
				if (check_domain_spec(v, vlen, error_r) < 0)
					goto fail;
				*target = mf_xstrndup(v, vlen);
			} else if (spf_macro_check(v, vlen, false, error_r) < 0) {
				/* Unknown modifiers are ignored, but must be well-formed. */
				goto fail;
			}
			continue;
		}
		if (rec->count == SPF_TERMS_MAX) {
			*error_r = "too many terms";
			goto fail;
		}
		rec->terms = mf_xrealloc(rec->terms, (rec->count + 1) * sizeof(*rec->terms));
		struct spf_term *term = &rec->terms[rec->count++];
		memset(term, 0, sizeof(*term));
		term->text = mf_xstrndup(t, tlen);
		if (parse_mechanism(t, tlen, term, error_r) < 0)
			goto fail;
	}
	*record_r = rec;
	return 0;
fail:
	spf_record_free(&rec);
	return -1;
}
