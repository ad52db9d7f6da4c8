/* dkim_record: the tag-list syntax (RFC 6376 3.2) and the two records
 * built on it, the DKIM-Signature value (3.5) and the key record (3.6.1);
 * base64. */
#include "dkim.h"
#include "dkim_private.h"

#include "buf.h"
#include "error.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

static bool is_wsp(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

int dkim_taglist_parse(const char *s, size_t len, struct dkim_tag *tags, size_t *count_r,
		       const char **error_r)
{
	size_t i = 0, n = 0;

	while (i < len) {
		size_t name_start, name_end, vstart, vend;

		while (i < len && is_wsp(s[i]))
			i++;
		if (i == len)
			break;  /* trailing ";" and whitespace */
		name_start = i;
		if (!isalpha((unsigned char)s[i])) {
			*error_r = "tag name does not start with a letter";
			return -1;
		}
		while (i < len && (isalnum((unsigned char)s[i]) || s[i] == '_'))
			i++;
		name_end = i;
		while (i < len && is_wsp(s[i]))
			i++;
		if (i == len || s[i] != '=') {
			*error_r = mf_errorf("tag %.*s: missing '='", (int)(name_end - name_start),
					     s + name_start);
			return -1;
		}
		i++;
		while (i < len && is_wsp(s[i]))
			i++;
		vstart = i;
		while (i < len && s[i] != ';') {
			unsigned char c = (unsigned char)s[i];
			/* VALCHAR is %x21-3A / %x3C-7E; whitespace may separate
			 * tvals; RFC 6376 3.2 (UTF-8 is allowed in some tags by
			 * RFC 6532-era practice, so 8-bit bytes pass). */
			if (c < 0x20 && !is_wsp((char)c)) {
				*error_r = "control character in tag value";
				return -1;
			}
			i++;
		}
		vend = i;
		while (vend > vstart && is_wsp(s[vend - 1]))
			vend--;
		if (n == DKIM_TAGS_MAX) {
			*error_r = "too many tags";
			return -1;
		}
		for (size_t k = 0; k < n; k++) {
			if (tags[k].name_len == name_end - name_start &&
			    memcmp(tags[k].name, s + name_start, tags[k].name_len) == 0) {
				*error_r = mf_errorf("tag %.*s given twice", (int)tags[k].name_len,
						     tags[k].name);
				return -1;
			}
		}
		tags[n].name = s + name_start;
		tags[n].name_len = name_end - name_start;
		tags[n].value = s + vstart;
		tags[n].value_len = vend - vstart;
		tags[n].value_start = vstart;
		tags[n].value_end = vend;
		n++;
		if (i < len)
			i++;  /* the ';' */
	}
	*count_r = n;
	return 0;
}

const struct dkim_tag *dkim_tag_find(const struct dkim_tag *tags, size_t count, const char *name)
{
	size_t nl = strlen(name);

	for (size_t i = 0; i < count; i++) {
		if (tags[i].name_len == nl && memcmp(tags[i].name, name, nl) == 0)
			return &tags[i];
	}
	return NULL;
}

/* A copy of the value with all whitespace removed (b=, bh=, p= and h=
 * may be folded anywhere). */
static char *strip_wsp(const char *s, size_t len)
{
	char *out = mf_xmalloc(len + 1);
	size_t o = 0;

	for (size_t i = 0; i < len; i++) {
		if (!is_wsp(s[i]))
			out[o++] = s[i];
	}
	out[o] = '\0';
	return out;
}

static bool value_is(const struct dkim_tag *t, const char *v)
{
	return t->value_len == strlen(v) && strncasecmp(t->value, v, t->value_len) == 0;
}

static char *lower_dup(const char *s, size_t len)
{
	char *out = mf_xstrndup(s, len);

	for (char *p = out; *p != '\0'; p++)
		*p = (char)tolower((unsigned char)*p);
	return out;
}

/* Parses a decimal number of at most digits digits (RFC 6376: 1*12DIGIT
 * for t= and x=, 1*76DIGIT for l=, which we cap to what fits). */
static int parse_number(const struct dkim_tag *t, size_t digits, int64_t *value_r)
{
	int64_t v = 0;

	if (t->value_len == 0 || t->value_len > digits)
		return -1;
	for (size_t i = 0; i < t->value_len; i++) {
		if (!isdigit((unsigned char)t->value[i]))
			return -1;
		v = v * 10 + (t->value[i] - '0');
	}
	*value_r = v;
	return 0;
}

/* Whether sub is domain or a subdomain of it (both lower-case). */
bool dkim_domain_within(const char *sub, const char *domain)
{
	size_t sl = strlen(sub), dl = strlen(domain);

	if (sl == dl)
		return strcmp(sub, domain) == 0;
	return sl > dl && sub[sl - dl - 1] == '.' && strcmp(sub + sl - dl, domain) == 0;
}

void dkim_signature_free(struct dkim_signature **sigp)
{
	struct dkim_signature *sig = *sigp;

	if (sig == NULL)
		return;
	free(sig->b);
	free(sig->bh);
	free(sig->domain);
	free(sig->selector);
	for (size_t i = 0; i < sig->headers_count; i++)
		free(sig->headers[i]);
	free(sig->headers);
	free(sig->identity);
	free(sig);
	*sigp = NULL;
}

static int parse_headers_tag(struct dkim_signature *sig, const struct dkim_tag *t,
			     const char **error_r)
{
	char *list = strip_wsp(t->value, t->value_len);
	char *p = list;
	bool from = false;
	int ret = -1;

	sig->headers = mf_xcalloc(DKIM_SIGNED_HEADERS_MAX, sizeof(*sig->headers));
	while (*p != '\0') {
		char *colon = strchr(p, ':');
		size_t n = colon != NULL ? (size_t)(colon - p) : strlen(p);

		if (n == 0) {
			*error_r = "h=: empty header name";
			goto out;
		}
		for (size_t i = 0; i < n; i++) {
			unsigned char c = (unsigned char)p[i];
			if (c <= 0x20 || c >= 0x7f) {
				*error_r = "h=: bad header name";
				goto out;
			}
		}
		if (sig->headers_count == DKIM_SIGNED_HEADERS_MAX) {
			*error_r = "h=: too many header names";
			goto out;
		}
		sig->headers[sig->headers_count++] = mf_xstrndup(p, n);
		if (n == 4 && strncasecmp(p, "from", 4) == 0)
			from = true;
		p += n;
		if (*p == ':')
			p++;
	}
	if (!from) {
		/* RFC 6376 5.4: From must be signed. */
		*error_r = "h= does not include From";
		goto out;
	}
	ret = 0;
out:
	free(list);
	return ret;
}

int dkim_signature_parse(const char *value, size_t len, struct dkim_signature **sig_r,
			 const char **error_r)
{
	struct dkim_tag tags[DKIM_TAGS_MAX];
	size_t count = 0;
	struct dkim_signature *sig = NULL;
	const struct dkim_tag *t;
	static const char *const required[] = { "v", "a", "b", "bh", "d", "h", "s" };
	char *tmp = NULL;

	if (len > DKIM_SIGNATURE_MAX) {
		*error_r = "signature too long";
		return -1;
	}
	if (dkim_taglist_parse(value, len, tags, &count, error_r) < 0)
		return -1;
	for (size_t i = 0; i < sizeof(required) / sizeof(required[0]); i++) {
		if (dkim_tag_find(tags, count, required[i]) == NULL) {
			*error_r = mf_errorf("missing required tag %s=", required[i]);
			return -1;
		}
	}
	sig = mf_xcalloc(1, sizeof(*sig));
	sig->length = sig->timestamp = sig->expiration = -1;

	if (!value_is(dkim_tag_find(tags, count, "v"), "1")) {
		*error_r = "v= is not 1";
		goto fail;
	}
	t = dkim_tag_find(tags, count, "a");
	if (value_is(t, "rsa-sha256"))
		sig->algorithm = DKIM_ALG_RSA_SHA256;
	else if (value_is(t, "ed25519-sha256"))
		sig->algorithm = DKIM_ALG_ED25519_SHA256;
	else if (value_is(t, "rsa-sha1"))
		sig->algorithm = DKIM_ALG_RSA_SHA1;
	else {
		*error_r = mf_errorf("unknown algorithm a=%.*s", (int)(t->value_len > 40 ? 40 : t->value_len),
				     t->value);
		goto fail;
	}

	t = dkim_tag_find(tags, count, "b");
	sig->b_value_start = t->value_start;
	sig->b_value_end = t->value_end;
	sig->b = dkim_base64_decode(t->value, t->value_len, &sig->b_len);
	if (sig->b == NULL || sig->b_len == 0) {
		*error_r = "b= is not valid base64";
		goto fail;
	}
	t = dkim_tag_find(tags, count, "bh");
	sig->bh = dkim_base64_decode(t->value, t->value_len, &sig->bh_len);
	if (sig->bh == NULL || sig->bh_len == 0) {
		*error_r = "bh= is not valid base64";
		goto fail;
	}

	sig->header_canon = sig->body_canon = DKIM_CANON_SIMPLE;
	if ((t = dkim_tag_find(tags, count, "c")) != NULL) {
		const char *slash = memchr(t->value, '/', t->value_len);
		size_t hl = slash != NULL ? (size_t)(slash - t->value) : t->value_len;
		struct dkim_tag h = *t, b = *t;

		h.value_len = hl;
		if (value_is(&h, "relaxed"))
			sig->header_canon = DKIM_CANON_RELAXED;
		else if (!value_is(&h, "simple")) {
			*error_r = "unknown header canonicalization in c=";
			goto fail;
		}
		if (slash != NULL) {
			b.value = slash + 1;
			b.value_len = t->value_len - hl - 1;
			if (value_is(&b, "relaxed"))
				sig->body_canon = DKIM_CANON_RELAXED;
			else if (!value_is(&b, "simple")) {
				*error_r = "unknown body canonicalization in c=";
				goto fail;
			}
		}
	}

	t = dkim_tag_find(tags, count, "d");
	if (t->value_len == 0 || t->value_len > DNS_NAME_MAX) {
		*error_r = "bad d=";
		goto fail;
	}
	sig->domain = lower_dup(t->value, t->value_len);
	if (sig->domain[strlen(sig->domain) - 1] == '.' || dns_name_check(sig->domain, error_r) < 0) {
		*error_r = "bad d=";
		goto fail;
	}
	t = dkim_tag_find(tags, count, "s");
	if (t->value_len == 0 || t->value_len > DNS_NAME_MAX) {
		*error_r = "bad s=";
		goto fail;
	}
	sig->selector = lower_dup(t->value, t->value_len);
	tmp = mf_xasprintf("%s._domainkey.%s", sig->selector, sig->domain);
	if (dns_name_check(tmp, error_r) < 0) {
		*error_r = "s= and d= do not form a valid DNS name";
		goto fail;
	}

	if (parse_headers_tag(sig, dkim_tag_find(tags, count, "h"), error_r) < 0)
		goto fail;

	if ((t = dkim_tag_find(tags, count, "i")) != NULL) {
		const char *at = memrchr(t->value, '@', t->value_len);  /* a quoted local part may hold '@' */
		char *idom;

		if (at == NULL) {
			*error_r = "i= has no @";
			goto fail;
		}
		sig->identity = mf_xstrndup(t->value, t->value_len);
		idom = lower_dup(at + 1, t->value_len - (size_t)(at + 1 - t->value));
		/* RFC 6376 3.5: the i= domain is d= or a subdomain of it. */
		if (!dkim_domain_within(idom, sig->domain)) {
			free(idom);
			*error_r = "i= domain is not within d=";
			goto fail;
		}
		free(idom);
	} else {
		sig->identity = mf_xasprintf("@%s", sig->domain);
	}

	if ((t = dkim_tag_find(tags, count, "l")) != NULL &&
	    parse_number(t, 18, &sig->length) < 0) {
		*error_r = "bad l=";
		goto fail;
	}
	if ((t = dkim_tag_find(tags, count, "q")) != NULL) {
		/* Only dns/txt is defined; a list may name others too. */
		char *q = strip_wsp(t->value, t->value_len);
		bool ok = false;
		for (char *p = q; p != NULL && *p != '\0';) {
			char *c = strchr(p, ':');
			size_t n = c != NULL ? (size_t)(c - p) : strlen(p);
			if (n == 7 && strncasecmp(p, "dns/txt", 7) == 0)
				ok = true;
			p = c != NULL ? c + 1 : NULL;
		}
		free(q);
		if (!ok) {
			*error_r = "q= does not allow dns/txt";
			goto fail;
		}
	}
	if ((t = dkim_tag_find(tags, count, "t")) != NULL &&
	    parse_number(t, 12, &sig->timestamp) < 0) {
		*error_r = "bad t=";
		goto fail;
	}
	if ((t = dkim_tag_find(tags, count, "x")) != NULL) {
		if (parse_number(t, 12, &sig->expiration) < 0) {
			*error_r = "bad x=";
			goto fail;
		}
		/* RFC 6376 3.5: x= must be greater than t=. */
		if (sig->timestamp >= 0 && sig->expiration <= sig->timestamp) {
			*error_r = "x= is not after t=";
			goto fail;
		}
	}
	free(tmp);
	*sig_r = sig;
	return 0;
fail:
	free(tmp);
	dkim_signature_free(&sig);
	return -1;
}

void dkim_key_free(struct dkim_key **keyp)
{
	if (*keyp == NULL)
		return;
	free((*keyp)->p);
	free(*keyp);
	*keyp = NULL;
}

/* Walks a colon-separated list in a tag value, calling fn per element. */
static void each_list_item(const struct dkim_tag *t, void (*fn)(const char *, size_t, void *),
			   void *ctx)
{
	char *list = strip_wsp(t->value, t->value_len);
	char *p = list;

	for (;;) {
		char *c = strchr(p, ':');
		size_t n = c != NULL ? (size_t)(c - p) : strlen(p);
		fn(p, n, ctx);
		if (c == NULL)
			break;
		p = c + 1;
	}
	free(list);
}

static void key_hash_item(const char *s, size_t n, void *ctx)
{
	struct dkim_key *key = ctx;

	if (n == 4 && strncasecmp(s, "sha1", 4) == 0)
		key->hash_sha1 = true;
	else if (n == 6 && strncasecmp(s, "sha256", 6) == 0)
		key->hash_sha256 = true;
}

static void key_flag_item(const char *s, size_t n, void *ctx)
{
	struct dkim_key *key = ctx;

	if (n == 1 && s[0] == 'y')
		key->testing = true;
	else if (n == 1 && s[0] == 's')
		key->strict = true;
}

static void key_service_item(const char *s, size_t n, void *ctx)
{
	struct dkim_key *key = ctx;

	if ((n == 1 && s[0] == '*') || (n == 5 && strncasecmp(s, "email", 5) == 0))
		key->email = true;
}

int dkim_key_parse(const char *text, size_t len, struct dkim_key **key_r, const char **error_r)
{
	struct dkim_tag tags[DKIM_TAGS_MAX];
	size_t count = 0;
	struct dkim_key *key;
	const struct dkim_tag *t;

	if (len > DKIM_KEY_RECORD_MAX) {
		*error_r = "key record too long";
		return -1;
	}
	if (dkim_taglist_parse(text, len, tags, &count, error_r) < 0)
		return -1;
	key = mf_xcalloc(1, sizeof(*key));
	key->type = DKIM_KEY_RSA;
	key->email = true;

	/* RFC 6376 3.6.1: v= is optional, but when present it must be the
	 * first tag and be DKIM1. */
	if ((t = dkim_tag_find(tags, count, "v")) != NULL &&
	    (t != &tags[0] || !value_is(t, "DKIM1"))) {
		*error_r = "v= is not DKIM1 as the first tag";
		goto fail;
	}
	if ((t = dkim_tag_find(tags, count, "h")) != NULL)
		each_list_item(t, key_hash_item, key);
	else
		key->hash_sha1 = key->hash_sha256 = true;
	if ((t = dkim_tag_find(tags, count, "k")) != NULL) {
		if (value_is(t, "rsa"))
			key->type = DKIM_KEY_RSA;
		else if (value_is(t, "ed25519"))
			key->type = DKIM_KEY_ED25519;
		else {
			*error_r = "unknown key type k=";
			goto fail;
		}
	}
	if ((t = dkim_tag_find(tags, count, "s")) != NULL) {
		key->email = false;
		each_list_item(t, key_service_item, key);
	}
	if ((t = dkim_tag_find(tags, count, "t")) != NULL)
		each_list_item(t, key_flag_item, key);
	if ((t = dkim_tag_find(tags, count, "p")) == NULL) {
		*error_r = "missing p=";
		goto fail;
	}
	if (t->value_len > 0) {
		key->p = dkim_base64_decode(t->value, t->value_len, &key->p_len);
		if (key->p == NULL) {
			*error_r = "p= is not valid base64";
			goto fail;
		}
		if (key->p_len == 0) {
			free(key->p);
			key->p = NULL;
		}
	}
	*key_r = key;
	return 0;
fail:
	dkim_key_free(&key);
	return -1;
}

static int b64_value(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

uint8_t *dkim_base64_decode(const char *s, size_t len, size_t *out_len_r)
{
	uint8_t *out = mf_xmalloc(len / 4 * 3 + 4);
	uint32_t acc = 0;
	size_t o = 0, bits = 0, pad = 0, chars = 0;

	for (size_t i = 0; i < len; i++) {
		int v;

		if (is_wsp(s[i]))
			continue;
		if (s[i] == '=') {
			pad++;
			chars++;
			continue;
		}
		if (pad > 0 || (v = b64_value(s[i])) < 0)
			goto fail;
		chars++;
		acc = (acc << 6) | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[o++] = (uint8_t)(acc >> bits);
		}
	}
	if (pad > 2 || chars % 4 != 0)
		goto fail;
	*out_len_r = o;
	return out;
fail:
	free(out);
	return NULL;
}

char *dkim_base64_encode(const uint8_t *data, size_t len)
{
	static const char alphabet[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	char *out = mf_xmalloc((len + 2) / 3 * 4 + 1);
	size_t o = 0, i;

	for (i = 0; i + 2 < len; i += 3) {
		uint32_t v = (uint32_t)data[i] << 16 | (uint32_t)data[i + 1] << 8 | data[i + 2];
		out[o++] = alphabet[v >> 18 & 63];
		out[o++] = alphabet[v >> 12 & 63];
		out[o++] = alphabet[v >> 6 & 63];
		out[o++] = alphabet[v & 63];
	}
	if (i < len) {
		uint32_t v = (uint32_t)data[i] << 16 | (i + 1 < len ? (uint32_t)data[i + 1] << 8 : 0);
		out[o++] = alphabet[v >> 18 & 63];
		out[o++] = alphabet[v >> 12 & 63];
		out[o++] = i + 1 < len ? alphabet[v >> 6 & 63] : '=';
		out[o++] = '=';
	}
	out[o] = '\0';
	return out;
}
