#include "domains.h"
#include "address.h"
#include "buf.h"
#include "error.h"
#include "fsutil.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unicase.h>
#include <unictype.h>
#include <uninorm.h>
#include <unistr.h>
#include <unistd.h>

struct mf_domains_index_entry {
	char *key;  /* folded localpart "@" domain */
	enum mf_domains_dest_kind kind;
	size_t owner;  /* index into accounts or aliases */
	const struct mf_domains_address *addr;
};

/* --- addresses --- */

static void address_free(struct mf_domains_address *a)
{
	free(a->address);
	free(a->localpart);
	free(a->domain);
	memset(a, 0, sizeof(*a));
}

/* Parses a configured address; "@domain" is the domain's catch-all.
 * Returns 0 or -1 with error_r. */
static int address_parse(const char *s, bool allow_catchall, struct mf_domains_address *a_r,
			 const char **error_r)
{
	struct mf_address addr;
	char *ascii, *unicode;

	memset(a_r, 0, sizeof(*a_r));
	if (s[0] == '@') {
		if (!allow_catchall) {
			*error_r = mf_errorf("%s: a catch-all address is not allowed here", s);
			return -1;
		}
		if (mf_domain_parse(s + 1, strlen(s + 1), &ascii, &unicode, error_r) < 0) {
			*error_r = mf_errorf("bad address %s: %s", s, *error_r);
			return -1;
		}
		free(unicode);
		a_r->localpart = mf_xstrdup("");
		a_r->domain = ascii;
		a_r->address = mf_xasprintf("@%s", ascii);
		return 0;
	}
	if (mf_address_parse(s, strlen(s), &addr, error_r) < 0) {
		*error_r = mf_errorf("bad address %s: %s", s, *error_r);
		return -1;
	}
	if (addr.literal) {
		mf_address_free(&addr);
		*error_r = mf_errorf("bad address %s: address literals cannot be configured", s);
		return -1;
	}
	a_r->localpart = mf_xstrdup(addr.localpart);
	a_r->domain = mf_xstrdup(addr.domain);
	a_r->address = mf_address_format(&addr);
	mf_address_free(&addr);
	return 0;
}

/* Returns the lookup key (caller frees): the localpart NFC-normalised and,
 * unless case_sensitive, case-folded the way mf_localpart_equal compares
 * (simple folding, tolower(toupper(c))), then "@" and the domain. */
static char *address_key(const char *localpart, const char *domain, bool case_sensitive)
{
	size_t nlen = 0, len = strlen(localpart);
	uint8_t *nfc = NULL;
	struct mf_buf b;

	mf_buf_init(&b, 0);
	if (len > 0 && u8_check((const uint8_t *)localpart, len) == NULL)
		nfc = u8_normalize(UNINORM_NFC, (const uint8_t *)localpart, len, NULL, &nlen);
	if (nfc == NULL) {
		mf_buf_append_str(&b, localpart);
	} else if (case_sensitive) {
		mf_buf_append(&b, nfc, nlen);
	} else {
		for (size_t i = 0; i < nlen;) {
			ucs4_t uc;
			uint8_t out[6];
			int n = u8_mbtouc(&uc, nfc + i, nlen - i);
			int m = u8_uctomb(out, uc_tolower(uc_toupper(uc)), sizeof(out));

			if (m > 0)
				mf_buf_append(&b, out, (size_t)m);
			i += (size_t)n;
		}
	}
	free(nfc);
	mf_buf_appendf(&b, "@%s", domain);
	return mf_buf_steal(&b);
}

/* --- freeing --- */

static void routes_free(struct mf_route *routes, size_t count)
{
	for (size_t i = 0; i < count; i++) {
		free(routes[i].from_domain);
		free(routes[i].to_domain);
		free(routes[i].transport);
	}
	free(routes);
}

static void domains_free(struct mf_domains *d)
{
	for (size_t i = 0; i < d->domains_count; i++) {
		struct mf_domain *dom = &d->domains[i];
		for (size_t j = 0; j < dom->selectors_count; j++) {
			struct mf_dkim_selector *sel = &dom->selectors[j];
			free(sel->name);
			free(sel->key_file);
			for (size_t k = 0; k < sel->headers_count; k++)
				free(sel->headers[k]);
			free(sel->headers);
		}
		free(dom->selectors);
		for (size_t j = 0; j < dom->sign_count; j++)
			free(dom->sign[j]);
		free(dom->sign);
		free(dom->name);
		free(dom->name_unicode);
		free(dom->description);
		free(dom->catchall_separator);
		routes_free(dom->routes, dom->routes_count);
	}
	for (size_t i = 0; i < d->accounts_count; i++) {
		struct mf_account *a = &d->accounts[i];
		for (size_t j = 0; j < a->addresses_count; j++)
			address_free(&a->addresses[j]);
		free(a->addresses);
		free(a->name);
		free(a->domain);
		free(a->full_name);
		free(a->login_disabled);
		routes_free(a->routes, a->routes_count);
	}
	for (size_t i = 0; i < d->aliases_count; i++) {
		struct mf_alias *al = &d->aliases[i];
		address_free(&al->address);
		for (size_t j = 0; j < al->members_count; j++)
			address_free(&al->members[j]);
		free(al->members);
	}
	for (size_t i = 0; i < d->transports_count; i++) {
		struct mf_transport *t = &d->transports[i];
		free(t->name);
		free(t->auth_user);
		free(t->auth_password_file);
		free(t->tls_ca_file);
		free(t->socks5_user);
		free(t->socks5_password_file);
	}
	free(d->transports);
	routes_free(d->routes, d->routes_count);
	for (size_t i = 0; i < d->index_count; i++)
		free(d->index[i].key);
	free(d->index);
	free(d->domains);
	free(d->accounts);
	free(d->aliases);
	free(d->path);
	free(d);
}

struct mf_domains *mf_domains_ref(struct mf_domains *d)
{
	__atomic_add_fetch(&d->refs, 1, __ATOMIC_RELAXED);
	return d;
}

void mf_domains_unref(struct mf_domains **d)
{
	if (*d == NULL)
		return;
	if (__atomic_sub_fetch(&(*d)->refs, 1, __ATOMIC_ACQ_REL) == 0)
		domains_free(*d);
	*d = NULL;
}

/* --- the schema --- */

/* Appends a zeroed element to an array of count elements; returns it. */
static void *grow(void *array_p, size_t *count, size_t size)
{
	void **array = array_p;
	char *p;

	*array = mf_xrealloc(*array, (*count + 1) * size);
	p = (char *)*array + *count * size;
	memset(p, 0, size);
	(*count)++;
	return p;
}

static bool is_ldh(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '-';
}

static int field_algorithm(struct mf_conf_walk *walk, const struct mf_conf_node *node,
			   const char *path, void *base, const char **error_r)
{
	struct mf_dkim_selector *sel = base;

	if (strcmp(node->values[0], "ed25519") == 0)
		sel->algorithm = MF_DKIM_ED25519;
	else if (strcmp(node->values[0], "rsa") == 0)
		sel->algorithm = MF_DKIM_RSA;
	else {
		*error_r = mf_errorf("unknown algorithm %s (want ed25519 or rsa)", node->values[0]);
		return -1;
	}
	return 0;
}

static int field_headers(struct mf_conf_walk *walk, const struct mf_conf_node *node,
			 const char *path, void *base, const char **error_r)
{
	struct mf_dkim_selector *sel = base;
	const char *p = node->values[0];
	bool from = false;

	while (true) {
		const char *end = strchr(p, ',');
		size_t n = end != NULL ? (size_t)(end - p) : strlen(p);

		/* RFC 5322 3.6.8: field-name is printable US-ASCII except ':'. */
		if (n == 0) {
			*error_r = "empty header name (want e.g. From,To,Subject)";
			return -1;
		}
		for (size_t i = 0; i < n; i++) {
			if (p[i] <= ' ' || p[i] >= 0x7f || p[i] == ':') {
				*error_r = mf_errorf("bad header name %.*s", (int)n, p);
				return -1;
			}
		}
		if (sel->headers_count == MF_DOMAINS_DKIM_HEADERS_MAX) {
			*error_r = mf_errorf("too many headers (max %d)", MF_DOMAINS_DKIM_HEADERS_MAX);
			return -1;
		}
		if (n == 4 && strncasecmp(p, "from", 4) == 0)
			from = true;
		sel->headers = mf_xrealloc(sel->headers, (sel->headers_count + 1) * sizeof(char *));
		sel->headers[sel->headers_count++] = mf_xstrndup(p, n);
		if (end == NULL)
			break;
		p = end + 1;
	}
	/* RFC 6376 5.4: the From header field MUST be signed. */
	if (!from) {
		*error_r = "must include From (RFC 6376 5.4)";
		return -1;
	}
	return 0;
}

static const struct mf_conf_field selector_fields[] = {
	{ .key = "algorithm", .kind = MF_CONF_KIND_CUSTOM, .flags = MF_CONF_F_REQUIRED,
	  .min_values = 1, .max_values = 1, .custom = field_algorithm },
	{ .key = "key-file", .kind = MF_CONF_KIND_PATH, .flags = MF_CONF_F_REQUIRED,
	  .offset = offsetof(struct mf_dkim_selector, key_file) },
	{ .key = "headers", .kind = MF_CONF_KIND_CUSTOM, .min_values = 1, .max_values = 1,
	  .custom = field_headers },
	{ .key = "expiration", .kind = MF_CONF_KIND_DURATION,
	  .offset = offsetof(struct mf_dkim_selector, expiration_ms) },
	{ .key = NULL },
};

static int field_selector(struct mf_conf_walk *walk, const struct mf_conf_node *node,
			  const char *path, void *base, const char **error_r)
{
	struct mf_domain *dom = base;
	const char *name = node->values[0];
	struct mf_dkim_selector *sel;
	char *sub;

	/* RFC 6376 3.1: a selector is one or more DNS labels. */
	for (const char *p = name; *p != '\0'; p++) {
		if (!is_ldh(*p) && !(*p == '.' && p != name && p[1] != '\0' && p[1] != '.')) {
			*error_r = mf_errorf("bad selector name %s (letters, digits, '-' and '.')", name);
			return -1;
		}
	}
	if (strlen(name) > 63) {
		*error_r = mf_errorf("selector name %s too long (max 63)", name);
		return -1;
	}
	for (size_t i = 0; i < dom->selectors_count; i++) {
		if (strcasecmp(dom->selectors[i].name, name) == 0) {
			*error_r = mf_errorf("duplicate selector %s (first at line %u)", name,
					     dom->selectors[i].line);
			return -1;
		}
	}
	sel = grow(&dom->selectors, &dom->selectors_count, sizeof(*sel));
	sel->name = mf_xstrdup(name);
	sel->line = node->line;
	sub = mf_xasprintf("%s[%s]", path, name);
	mf_conf_walk_block(walk, node, sub, selector_fields, sel);
	free(sub);
	return 0;
}

static int field_sign(struct mf_conf_walk *walk, const struct mf_conf_node *node,
		      const char *path, void *base, const char **error_r)
{
	struct mf_domain *dom = base;

	for (size_t i = 0; i < node->values_count; i++) {
		for (size_t j = 0; j < i; j++) {
			if (strcasecmp(node->values[i], node->values[j]) == 0) {
				*error_r = mf_errorf("selector %s listed twice", node->values[i]);
				return -1;
			}
		}
	}
	dom->sign = mf_xcalloc(node->values_count, sizeof(char *));
	for (size_t i = 0; i < node->values_count; i++)
		dom->sign[i] = mf_xstrdup(node->values[i]);
	dom->sign_count = node->values_count;
	dom->sign_line = node->line;
	return 0;
}

static const struct mf_conf_field dkim_fields[] = {
	{ .key = "selector", .kind = MF_CONF_KIND_CUSTOM, .flags = MF_CONF_F_REPEAT,
	  .children = dkim_fields, .min_values = 1, .max_values = 1, .custom = field_selector },
	{ .key = "sign", .kind = MF_CONF_KIND_CUSTOM, .min_values = 1,
	  .max_values = MF_CONF_VALUES_MAX, .custom = field_sign },
	{ .key = NULL },
};

static int field_separator(struct mf_conf_walk *walk, const struct mf_conf_node *node,
			   const char *path, void *base, const char **error_r)
{
	struct mf_domain *dom = base;
	const char *v = node->values[0];
	size_t n = strlen(v);

	if (n == 0 || n > MF_DOMAINS_SEPARATOR_MAX) {
		*error_r = mf_errorf("must be 1-%d bytes", MF_DOMAINS_SEPARATOR_MAX);
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		if ((unsigned char)v[i] <= ' ' || v[i] == '@' || v[i] == '"' || v[i] == '\\') {
			*error_r = mf_errorf("bad separator %s (no whitespace, '@', '\"' or '\\')", v);
			return -1;
		}
	}
	free(dom->catchall_separator);
	dom->catchall_separator = mf_xstrdup(v);
	return 0;
}

/* --- routes and transports --- */

/* "route [from-domain D] [to-domain D] [min-attempt N] transport NAME" */
static int parse_route(const struct mf_conf_node *node, struct mf_route **routes,
		       size_t *count, const char **error_r)
{
	struct mf_route r;
	int ret = -1;

	memset(&r, 0, sizeof(r));
	r.line = node->line;
	if (*count >= MF_DOMAINS_ROUTES_MAX) {
		*error_r = mf_errorf("too many routes (max %d)", MF_DOMAINS_ROUTES_MAX);
		return -1;
	}
	if (node->values_count % 2 != 0) {
		*error_r = "want [from-domain D] [to-domain D] [min-attempt N] transport NAME";
		return -1;
	}
	for (size_t i = 0; i < node->values_count; i += 2) {
		const char *k = node->values[i], *v = node->values[i + 1];
		char **dom = NULL;
		if (strcmp(k, "from-domain") == 0)
			dom = &r.from_domain;
		else if (strcmp(k, "to-domain") == 0)
			dom = &r.to_domain;
		if (dom != NULL) {
			char *ascii, *unicode;
			if (*dom != NULL) {
				*error_r = mf_errorf("%s given twice", k);
				goto out;
			}
			if (mf_domain_parse(v, strlen(v), &ascii, &unicode, error_r) < 0) {
				*error_r = mf_errorf("%s %s: %s", k, v, *error_r);
				goto out;
			}
			free(unicode);
			*dom = ascii;
		} else if (strcmp(k, "min-attempt") == 0) {
			uint64_t n;
			if (r.min_attempt != 0 ||
			    mf_conf_parse_uint(v, MF_DOMAINS_ROUTE_ATTEMPT_MAX, &n, error_r) < 0 ||
			    n == 0) {
				*error_r = mf_errorf("min-attempt %s: want one number, 1-%d", v,
						     MF_DOMAINS_ROUTE_ATTEMPT_MAX);
				goto out;
			}
			r.min_attempt = (unsigned)n;
		} else if (strcmp(k, "transport") == 0 && r.transport == NULL) {
			r.transport = mf_xstrdup(v);
		} else {
			*error_r = mf_errorf("unknown or repeated %s (want from-domain, to-domain, "
					     "min-attempt, transport)", k);
			goto out;
		}
	}
	if (r.transport == NULL) {
		*error_r = "transport NAME missing";
		goto out;
	}
	*(struct mf_route *)grow(routes, count, sizeof(r)) = r;
	memset(&r, 0, sizeof(r));
	ret = 0;
out:
	free(r.from_domain);
	free(r.to_domain);
	free(r.transport);
	return ret;
}

static int field_domain_route(struct mf_conf_walk *walk, const struct mf_conf_node *node,
			      const char *path, void *base, const char **error_r)
{
	struct mf_domain *dom = base;
	return parse_route(node, &dom->routes, &dom->routes_count, error_r);
}

static int field_account_route(struct mf_conf_walk *walk, const struct mf_conf_node *node,
			       const char *path, void *base, const char **error_r)
{
	struct mf_account *a = base;
	return parse_route(node, &a->routes, &a->routes_count, error_r);
}

static int field_top_route(struct mf_conf_walk *walk, const struct mf_conf_node *node,
			   const char *path, void *base, const char **error_r)
{
	struct mf_domains *d = base;
	return parse_route(node, &d->routes, &d->routes_count, error_r);
}

#define ROUTE_FIELD(fn) { .key = "route", .kind = MF_CONF_KIND_CUSTOM, .flags = MF_CONF_F_REPEAT, \
			  .min_values = 2, .max_values = 8, .custom = fn }

/* smtp / submission / submissions / socks5 HOST:PORT: exactly one. */
static int field_transport_kind(struct mf_conf_walk *walk, const struct mf_conf_node *node,
				const char *path, void *base, const char **error_r)
{
	struct mf_transport *t = base;

	if (t->kind_set) {
		*error_r = "only one of smtp, submission, submissions and socks5";
		return -1;
	}
	if (mf_conf_parse_hostport(node->values[0], &t->addr, error_r) < 0)
		return -1;
	if (t->addr.port == 0) {
		*error_r = "port 0";
		return -1;
	}
	if (strcmp(node->key, "smtp") == 0)
		t->kind = MF_TRANSPORT_SMTP;
	else if (strcmp(node->key, "submission") == 0)
		t->kind = MF_TRANSPORT_SUBMISSION;
	else if (strcmp(node->key, "submissions") == 0)
		t->kind = MF_TRANSPORT_SUBMISSIONS;
	else
		t->kind = MF_TRANSPORT_SOCKS5;
	t->kind_set = true;
	return 0;
}

static int field_auth_mechanism(struct mf_conf_walk *walk, const struct mf_conf_node *node,
				const char *path, void *base, const char **error_r)
{
	struct mf_transport *t = base;

	if (strcasecmp(node->values[0], "plain") == 0)
		t->auth_mechanism = MF_TRANSPORT_AUTH_PLAIN;
	else if (strcasecmp(node->values[0], "login") == 0)
		t->auth_mechanism = MF_TRANSPORT_AUTH_LOGIN;
	else {
		*error_r = mf_errorf("unknown mechanism %s (want plain or login)", node->values[0]);
		return -1;
	}
	return 0;
}

/* Transport names appear in queue listings and logs: letters, digits, '-'
 * and '_'. */
static int check_name(const char *name, const char *what, const char **error_r)
{
	size_t n = strlen(name);
	bool ok = n > 0 && n <= MF_DOMAINS_ACCOUNT_NAME_MAX && is_ldh(name[0]) && name[0] != '-';

	for (size_t i = 0; ok && i < n; i++)
		ok = is_ldh(name[i]) || name[i] == '_';
	if (!ok) {
		*error_r = mf_errorf("bad %s name %s (1-%d letters, digits, '-' and '_', starting "
				     "with a letter or digit)", what, name,
				     MF_DOMAINS_ACCOUNT_NAME_MAX);
		return -1;
	}
	return 0;
}

static int field_tls_verify(struct mf_conf_walk *walk, const struct mf_conf_node *node,
			    const char *path, void *base, const char **error_r)
{
	struct mf_transport *t = base;

	if (mf_conf_parse_bool(node->values[0], &t->tls_verify, error_r) < 0)
		return -1;
	t->tls_verify_set = true;
	return 0;
}

#define TRANSPORT_KIND_FIELD(k) { .key = k, .kind = MF_CONF_KIND_CUSTOM, .min_values = 1, \
				  .max_values = 1, .custom = field_transport_kind }

/* RFC 4616/RFC 1929 limit user names to 255 bytes. */
static const struct mf_conf_field transport_fields[] = {
	TRANSPORT_KIND_FIELD("smtp"),
	TRANSPORT_KIND_FIELD("submission"),
	TRANSPORT_KIND_FIELD("submissions"),
	TRANSPORT_KIND_FIELD("socks5"),
	{ .key = "auth-user", .kind = MF_CONF_KIND_STRING, .max = 255,
	  .offset = offsetof(struct mf_transport, auth_user) },
	{ .key = "auth-password-file", .kind = MF_CONF_KIND_PATH, .max = 4096,
	  .offset = offsetof(struct mf_transport, auth_password_file) },
	{ .key = "auth-mechanism", .kind = MF_CONF_KIND_CUSTOM, .min_values = 1,
	  .max_values = 1, .custom = field_auth_mechanism },
	{ .key = "tls-verify", .kind = MF_CONF_KIND_CUSTOM, .min_values = 1, .max_values = 1,
	  .custom = field_tls_verify },
	{ .key = "tls-ca-file", .kind = MF_CONF_KIND_PATH, .max = 4096,
	  .offset = offsetof(struct mf_transport, tls_ca_file) },
	{ .key = "socks5-user", .kind = MF_CONF_KIND_STRING, .max = 255,
	  .offset = offsetof(struct mf_transport, socks5_user) },
	{ .key = "socks5-password-file", .kind = MF_CONF_KIND_PATH, .max = 4096,
	  .offset = offsetof(struct mf_transport, socks5_password_file) },
	{ .key = NULL },
};

static int field_transport(struct mf_conf_walk *walk, const struct mf_conf_node *node,
			   const char *path, void *base, const char **error_r)
{
	struct mf_domains *d = base;
	const char *name = node->values[0];
	struct mf_transport *t;
	char *sub;

	if (check_name(name, "transport", error_r) < 0)
		return -1;
	if (strcmp(name, "direct") == 0 || strcmp(name, "local") == 0) {
		*error_r = mf_errorf("%s is a built-in transport", name);
		return -1;
	}
	if (d->transports_count >= MF_DOMAINS_TRANSPORTS_MAX) {
		*error_r = mf_errorf("too many transports (max %d)", MF_DOMAINS_TRANSPORTS_MAX);
		return -1;
	}
	for (size_t i = 0; i < d->transports_count; i++) {
		if (strcmp(d->transports[i].name, name) == 0) {
			*error_r = mf_errorf("duplicate transport %s (first at line %u)", name,
					     d->transports[i].line);
			return -1;
		}
	}
	t = grow(&d->transports, &d->transports_count, sizeof(*t));
	t->name = mf_xstrdup(name);
	t->line = node->line;
	sub = mf_xasprintf("%s[%s]", path, name);
	mf_conf_walk_block(walk, node, sub, transport_fields, t);
	free(sub);
	return 0;
}

static const struct mf_conf_field domain_fields[] = {
	{ .key = "description", .kind = MF_CONF_KIND_STRING, .max = MF_DOMAINS_TEXT_MAX,
	  .offset = offsetof(struct mf_domain, description) },
	{ .key = "disabled", .kind = MF_CONF_KIND_BOOL, .offset = offsetof(struct mf_domain, disabled) },
	{ .key = "catchall-separator", .kind = MF_CONF_KIND_CUSTOM, .min_values = 1,
	  .max_values = 1, .custom = field_separator },
	{ .key = "localpart-case-sensitive", .kind = MF_CONF_KIND_BOOL,
	  .offset = offsetof(struct mf_domain, localpart_case_sensitive) },
	{ .key = "dkim", .kind = MF_CONF_KIND_BLOCK, .children = dkim_fields },
	ROUTE_FIELD(field_domain_route),
	{ .key = NULL },
};

static int field_domain(struct mf_conf_walk *walk, const struct mf_conf_node *node,
			const char *path, void *base, const char **error_r)
{
	struct mf_domains *d = base;
	struct mf_domain *dom;
	char *ascii, *unicode, *sub;

	if (mf_domain_parse(node->values[0], strlen(node->values[0]), &ascii, &unicode,
			    error_r) < 0) {
		*error_r = mf_errorf("bad domain name %s: %s", node->values[0], *error_r);
		return -1;
	}
	for (size_t i = 0; i < d->domains_count; i++) {
		if (strcmp(d->domains[i].name, ascii) == 0) {
			*error_r = mf_errorf("duplicate domain %s (first at line %u)", node->values[0],
					     d->domains[i].line);
			free(ascii);
			free(unicode);
			return -1;
		}
	}
	dom = grow(&d->domains, &d->domains_count, sizeof(*dom));
	dom->name = ascii;
	dom->name_unicode = unicode;
	dom->line = node->line;
	sub = mf_xasprintf("%s[%s]", path, node->values[0]);
	mf_conf_walk_block(walk, node, sub, domain_fields, dom);
	free(sub);
	return 0;
}

static int field_account_domain(struct mf_conf_walk *walk, const struct mf_conf_node *node,
				const char *path, void *base, const char **error_r)
{
	struct mf_account *a = base;
	char *ascii, *unicode;

	if (mf_domain_parse(node->values[0], strlen(node->values[0]), &ascii, &unicode,
			    error_r) < 0) {
		*error_r = mf_errorf("bad domain name %s: %s", node->values[0], *error_r);
		return -1;
	}
	free(unicode);
	a->domain = ascii;
	a->domain_line = node->line;
	return 0;
}

static int field_account_address(struct mf_conf_walk *walk, const struct mf_conf_node *node,
				 const char *path, void *base, const char **error_r)
{
	struct mf_account *a = base;
	struct mf_domains_address addr;

	if (address_parse(node->values[0], true, &addr, error_r) < 0)
		return -1;
	addr.line = node->line;
	*(struct mf_domains_address *)grow(&a->addresses, &a->addresses_count, sizeof(addr)) = addr;
	return 0;
}

static const struct mf_conf_field account_fields[] = {
	{ .key = "domain", .kind = MF_CONF_KIND_CUSTOM, .flags = MF_CONF_F_REQUIRED,
	  .min_values = 1, .max_values = 1, .custom = field_account_domain },
	{ .key = "address", .kind = MF_CONF_KIND_CUSTOM,
	  .flags = MF_CONF_F_REQUIRED | MF_CONF_F_REPEAT, .min_values = 1, .max_values = 1,
	  .custom = field_account_address },
	{ .key = "full-name", .kind = MF_CONF_KIND_STRING, .max = MF_DOMAINS_TEXT_MAX,
	  .offset = offsetof(struct mf_account, full_name) },
	{ .key = "quota", .kind = MF_CONF_KIND_SIZE, .offset = offsetof(struct mf_account, quota) },
	{ .key = "max-outgoing-messages-per-day", .kind = MF_CONF_KIND_UINT,
	  .offset = offsetof(struct mf_account, max_outgoing_messages_per_day) },
	{ .key = "max-first-time-recipients-per-day", .kind = MF_CONF_KIND_UINT,
	  .offset = offsetof(struct mf_account, max_first_time_recipients_per_day) },
	{ .key = "login-disabled", .kind = MF_CONF_KIND_STRING, .max = MF_DOMAINS_TEXT_MAX,
	  .offset = offsetof(struct mf_account, login_disabled) },
	{ .key = "keep-retired-messages", .kind = MF_CONF_KIND_DURATION,
	  .offset = offsetof(struct mf_account, keep_retired_messages_ms) },
	ROUTE_FIELD(field_account_route),
	{ .key = NULL },
};

/* Account names appear in NATS subjects (store.v1.deliver.<account>) and in
 * blob paths (accounts/<name>/): no '.', '*', '>', '/' or whitespace. */
static int check_account_name(const char *name, const char **error_r)
{
	size_t n = strlen(name);

	if (n == 0 || n > MF_DOMAINS_ACCOUNT_NAME_MAX || !is_ldh(name[0]) || name[0] == '-') {
		*error_r = mf_errorf("bad account name %s (1-%d letters, digits, '-' and '_', "
				     "starting with a letter or digit)", name,
				     MF_DOMAINS_ACCOUNT_NAME_MAX);
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		if (!is_ldh(name[i]) && name[i] != '_') {
			*error_r = mf_errorf("bad account name %s (1-%d letters, digits, '-' and '_', "
					     "starting with a letter or digit)", name,
					     MF_DOMAINS_ACCOUNT_NAME_MAX);
			return -1;
		}
	}
	return 0;
}

static int field_account(struct mf_conf_walk *walk, const struct mf_conf_node *node,
			 const char *path, void *base, const char **error_r)
{
	struct mf_domains *d = base;
	const char *name = node->values[0];
	struct mf_account *a;
	char *sub;

	if (check_account_name(name, error_r) < 0)
		return -1;
	for (size_t i = 0; i < d->accounts_count; i++) {
		if (strcmp(d->accounts[i].name, name) == 0) {
			*error_r = mf_errorf("duplicate account %s (first at line %u)", name,
					     d->accounts[i].line);
			return -1;
		}
	}
	a = grow(&d->accounts, &d->accounts_count, sizeof(*a));
	a->name = mf_xstrdup(name);
	a->line = node->line;
	a->max_outgoing_messages_per_day = 1000;
	a->max_first_time_recipients_per_day = 200;
	sub = mf_xasprintf("%s[%s]", path, name);
	mf_conf_walk_block(walk, node, sub, account_fields, a);
	free(sub);
	return 0;
}

static int field_member(struct mf_conf_walk *walk, const struct mf_conf_node *node,
			const char *path, void *base, const char **error_r)
{
	struct mf_alias *al = base;
	struct mf_domains_address addr;

	if (address_parse(node->values[0], false, &addr, error_r) < 0)
		return -1;
	addr.line = node->line;
	*(struct mf_domains_address *)grow(&al->members, &al->members_count, sizeof(addr)) = addr;
	return 0;
}

static const struct mf_conf_field alias_fields[] = {
	{ .key = "member", .kind = MF_CONF_KIND_CUSTOM,
	  .flags = MF_CONF_F_REQUIRED | MF_CONF_F_REPEAT, .min_values = 1, .max_values = 1,
	  .custom = field_member },
	{ .key = "post-public", .kind = MF_CONF_KIND_BOOL,
	  .offset = offsetof(struct mf_alias, post_public) },
	{ .key = "list-members", .kind = MF_CONF_KIND_BOOL,
	  .offset = offsetof(struct mf_alias, list_members) },
	{ .key = "allow-msg-from", .kind = MF_CONF_KIND_BOOL,
	  .offset = offsetof(struct mf_alias, allow_msg_from) },
	{ .key = NULL },
};

static int field_alias(struct mf_conf_walk *walk, const struct mf_conf_node *node,
		       const char *path, void *base, const char **error_r)
{
	struct mf_domains *d = base;
	struct mf_domains_address addr;
	struct mf_alias *al;
	char *sub;

	if (address_parse(node->values[0], false, &addr, error_r) < 0)
		return -1;
	addr.line = node->line;
	al = grow(&d->aliases, &d->aliases_count, sizeof(*al));
	al->address = addr;
	al->line = node->line;
	sub = mf_xasprintf("%s[%s]", path, node->values[0]);
	mf_conf_walk_block(walk, node, sub, alias_fields, al);
	free(sub);
	return 0;
}

static const struct mf_conf_field top_fields[] = {
	{ .key = "domain", .kind = MF_CONF_KIND_CUSTOM, .flags = MF_CONF_F_REPEAT,
	  .children = domain_fields, .min_values = 1, .max_values = 1, .custom = field_domain },
	{ .key = "account", .kind = MF_CONF_KIND_CUSTOM, .flags = MF_CONF_F_REPEAT,
	  .children = account_fields, .min_values = 1, .max_values = 1, .custom = field_account },
	{ .key = "alias", .kind = MF_CONF_KIND_CUSTOM, .flags = MF_CONF_F_REPEAT,
	  .children = alias_fields, .min_values = 1, .max_values = 1, .custom = field_alias },
	{ .key = "transport", .kind = MF_CONF_KIND_CUSTOM, .flags = MF_CONF_F_REPEAT,
	  .children = transport_fields, .min_values = 1, .max_values = 1,
	  .custom = field_transport },
	ROUTE_FIELD(field_top_route),
	{ .key = NULL },
};

/* --- cross-references --- */

static int index_cmp(const void *a, const void *b)
{
	const struct mf_domains_index_entry *x = a, *y = b;
	int c = strcmp(x->key, y->key);

	if (c != 0)
		return c;
	return x->addr->line < y->addr->line ? -1 : x->addr->line > y->addr->line;
}

static const struct mf_domains_index_entry *index_find(const struct mf_domains *d,
						       const char *key)
{
	size_t lo = 0, hi = d->index_count;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(key, d->index[mid].key);
		if (c == 0)
			return &d->index[mid];
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return NULL;
}

static bool domain_case_sensitive(const struct mf_domains *d, const char *domain)
{
	const struct mf_domain *dom = mf_domains_find_domain(d, domain);
	return dom != NULL && dom->localpart_case_sensitive;
}

static void index_add(struct mf_domains *d, enum mf_domains_dest_kind kind, size_t owner,
		      const struct mf_domains_address *addr)
{
	struct mf_domains_index_entry *e = grow(&d->index, &d->index_count, sizeof(*e));

	e->key = address_key(addr->localpart, addr->domain,
			     domain_case_sensitive(d, addr->domain));
	e->kind = kind;
	e->owner = owner;
	e->addr = addr;
}

static char *owner_path(const struct mf_domains *d, const struct mf_domains_index_entry *e)
{
	if (e->kind == MF_DOMAINS_DEST_ACCOUNT)
		return mf_xasprintf("account[%s].address", d->accounts[e->owner].name);
	return mf_xasprintf("alias[%s]", d->aliases[e->owner].address.address);
}

static void check_routes(const struct mf_domains *d, const struct mf_route *routes,
			 size_t count, const char *file, const char *path,
			 struct mf_conf_errors *errors)
{
	for (size_t i = 0; i < count; i++) {
		const char *t = routes[i].transport;
		if (strcmp(t, "direct") != 0 && strcmp(t, "local") != 0 &&
		    mf_domains_find_transport(d, t) == NULL)
			mf_conf_errors_add(errors, file, routes[i].line, path,
					   "no transport named %s", t);
	}
}

static void check_transports(const struct mf_domains *d, const char *file,
			     struct mf_conf_errors *errors)
{
	for (size_t i = 0; i < d->transports_count; i++) {
		const struct mf_transport *t = &d->transports[i];
		char *path = mf_xasprintf("transport[%s]", t->name);
		bool auth = t->auth_user != NULL || t->auth_password_file != NULL;
		if (!t->kind_set)
			mf_conf_errors_add(errors, file, t->line, path,
					   "want one of smtp, submission, submissions or socks5 "
					   "HOST:PORT");
		else if (t->kind == MF_TRANSPORT_SOCKS5 && auth)
			mf_conf_errors_add(errors, file, t->line, path,
					   "auth-user/auth-password-file are for smtp and "
					   "submission(s); a SOCKS5 proxy takes socks5-user");
		else if ((t->kind == MF_TRANSPORT_SUBMISSION || t->kind == MF_TRANSPORT_SUBMISSIONS) &&
			 t->auth_user == NULL)
			mf_conf_errors_add(errors, file, t->line, path,
					   "submission needs auth-user and auth-password-file");
		if ((t->auth_user == NULL) != (t->auth_password_file == NULL))
			mf_conf_errors_add(errors, file, t->line, path,
					   "auth-user and auth-password-file go together");
		if ((t->socks5_user != NULL || t->socks5_password_file != NULL) &&
		    t->kind_set && t->kind != MF_TRANSPORT_SOCKS5)
			mf_conf_errors_add(errors, file, t->line, path,
					   "socks5-user is only for socks5 transports");
		if (t->kind_set && t->kind == MF_TRANSPORT_SOCKS5 &&
		    (t->tls_verify_set || t->tls_ca_file != NULL))
			mf_conf_errors_add(errors, file, t->line, path,
					   "tls-verify and tls-ca-file are for smtp and "
					   "submission(s)");
		if ((t->socks5_user == NULL) != (t->socks5_password_file == NULL))
			mf_conf_errors_add(errors, file, t->line, path,
					   "socks5-user and socks5-password-file go together");
		free(path);
	}
	check_routes(d, d->routes, d->routes_count, file, "route", errors);
	for (size_t i = 0; i < d->domains_count; i++) {
		char *path = mf_xasprintf("domain[%s].route", d->domains[i].name);
		check_routes(d, d->domains[i].routes, d->domains[i].routes_count, file, path, errors);
		free(path);
	}
	for (size_t i = 0; i < d->accounts_count; i++) {
		char *path = mf_xasprintf("account[%s].route", d->accounts[i].name);
		check_routes(d, d->accounts[i].routes, d->accounts[i].routes_count, file, path,
			     errors);
		free(path);
	}
}

static void check_references(struct mf_domains *d, const char *file, struct mf_conf_errors *errors)
{
	check_transports(d, file, errors);
	for (size_t i = 0; i < d->domains_count; i++) {
		struct mf_domain *dom = &d->domains[i];
		for (size_t j = 0; j < dom->sign_count; j++) {
			bool found = false;
			for (size_t k = 0; k < dom->selectors_count; k++)
				if (strcasecmp(dom->selectors[k].name, dom->sign[j]) == 0)
					found = true;
			if (found)
				continue;
			char *path = mf_xasprintf("domain[%s].dkim.sign", dom->name);
			mf_conf_errors_add(errors, file, dom->sign_line, path,
					   "no selector named %s in this domain", dom->sign[j]);
			free(path);
		}
	}
	for (size_t i = 0; i < d->accounts_count; i++) {
		struct mf_account *a = &d->accounts[i];
		char *path = mf_xasprintf("account[%s].domain", a->name);
		if (a->domain != NULL && mf_domains_find_domain(d, a->domain) == NULL)
			mf_conf_errors_add(errors, file, a->domain_line, path,
					   "domain %s is not configured", a->domain);
		free(path);
		path = mf_xasprintf("account[%s].address", a->name);
		for (size_t j = 0; j < a->addresses_count; j++) {
			if (mf_domains_find_domain(d, a->addresses[j].domain) == NULL)
				mf_conf_errors_add(errors, file, a->addresses[j].line, path,
						   "domain of %s is not configured",
						   a->addresses[j].address);
			index_add(d, MF_DOMAINS_DEST_ACCOUNT, i, &a->addresses[j]);
		}
		free(path);
	}
	for (size_t i = 0; i < d->aliases_count; i++) {
		struct mf_alias *al = &d->aliases[i];
		if (mf_domains_find_domain(d, al->address.domain) == NULL) {
			char *path = mf_xasprintf("alias[%s]", al->address.address);
			mf_conf_errors_add(errors, file, al->line, path,
					   "domain of %s is not configured", al->address.address);
			free(path);
		}
		index_add(d, MF_DOMAINS_DEST_ALIAS, i, &al->address);
	}
	if (d->index_count > 0)
		qsort(d->index, d->index_count, sizeof(*d->index), index_cmp);
	/* An address belongs to one account or alias; sorting put the first
	 * occurrence (lowest line) first. */
	for (size_t i = 1; i < d->index_count; i++) {
		const struct mf_domains_index_entry *first = &d->index[i - 1], *e = &d->index[i];
		if (strcmp(first->key, e->key) != 0)
			continue;
		char *path = owner_path(d, e);
		mf_conf_errors_add(errors, file, e->addr->line, path,
				   "%s is already used at line %u (%s %s)", e->addr->address,
				   first->addr->line,
				   first->kind == MF_DOMAINS_DEST_ACCOUNT ? "account" : "alias",
				   first->kind == MF_DOMAINS_DEST_ACCOUNT
					   ? d->accounts[first->owner].name
					   : d->aliases[first->owner].address.address);
		free(path);
	}
	for (size_t i = 0; i < d->aliases_count; i++) {
		struct mf_alias *al = &d->aliases[i];
		char *path = mf_xasprintf("alias[%s].member", al->address.address);
		for (size_t j = 0; j < al->members_count; j++) {
			const struct mf_domains_address *m = &al->members[j];
			char *key = address_key(m->localpart, m->domain,
						domain_case_sensitive(d, m->domain));
			const struct mf_domains_index_entry *e = index_find(d, key);
			/* With duplicates (reported above) look at each entry. */
			while (e != NULL && e > d->index && strcmp(e[-1].key, key) == 0)
				e--;
			while (e != NULL && e->kind != MF_DOMAINS_DEST_ACCOUNT)
				e = e + 1 < d->index + d->index_count && strcmp(e[1].key, key) == 0
					    ? e + 1 : NULL;
			free(key);
			if (e == NULL)
				mf_conf_errors_add(errors, file, m->line, path,
						   "%s is not an address of an account", m->address);
			for (size_t k = 0; k < j; k++) {
				if (strcasecmp(al->members[k].address, m->address) == 0) {
					mf_conf_errors_add(errors, file, m->line, path,
							   "%s is listed twice (first at line %u)",
							   m->address, al->members[k].line);
					break;
				}
			}
		}
		free(path);
	}
}

/* --- loading --- */

static int load_conf(const struct mf_conf *conf, const char *path, struct mf_domains **domains_r,
		     struct mf_conf_errors *errors)
{
	struct mf_domains *d = mf_xcalloc(1, sizeof(*d));
	unsigned before = errors->count;
	struct mf_conf_walk walk;
	char *dir = mf_conf_dirname(path);

	d->path = mf_xstrdup(path);
	d->refs = 1;
	memset(&walk, 0, sizeof(walk));
	walk.file = path;
	walk.dir = dir;
	walk.errors = errors;
	mf_conf_walk_block(&walk, conf->root, NULL, top_fields, d);
	check_references(d, path, errors);
	free(dir);
	if (errors->count != before) {
		domains_free(d);
		return -1;
	}
	*domains_r = d;
	return 0;
}

int mf_domains_load_conf(const struct mf_conf *conf, const char *path,
			 struct mf_domains **domains_r, const char **error_r)
{
	struct mf_conf_errors errors;
	const char *err;
	int ret;

	mf_conf_errors_init(&errors);
	ret = load_conf(conf, path, domains_r, &errors);
	err = mf_conf_errors_finish(&errors);
	if (ret < 0)
		*error_r = err;
	return ret;
}

int mf_domains_load_buf(const char *name, const char *data, size_t len,
			struct mf_domains **domains_r, const char **error_r)
{
	struct mf_conf_errors errors;
	struct mf_conf *conf = NULL;
	const char *err;
	int ret = -1;

	mf_conf_errors_init(&errors);
	if (mf_conf_parse_buf(name, data, len, &conf, &err) < 0)
		mf_conf_errors_add(&errors, NULL, 0, NULL, "%s", err);
	else
		ret = load_conf(conf, name, domains_r, &errors);
	mf_conf_free(&conf);
	err = mf_conf_errors_finish(&errors);
	if (ret < 0)
		*error_r = err;
	return ret;
}

int mf_domains_load(const char *path, struct mf_domains **domains_r, const char **error_r)
{
	struct mf_conf_errors errors;
	struct mf_conf *conf = NULL;
	const char *err;
	int ret = -1;

	mf_conf_errors_init(&errors);
	if (mf_conf_parse_file(path, &conf, &err) < 0)
		mf_conf_errors_add(&errors, NULL, 0, NULL, "%s", err);
	else
		ret = load_conf(conf, path, domains_r, &errors);
	mf_conf_free(&conf);
	err = mf_conf_errors_finish(&errors);
	if (ret < 0)
		*error_r = err;
	return ret;
}

/* --- lookups --- */

const struct mf_domain *mf_domains_find_domain(const struct mf_domains *d, const char *name)
{
	for (size_t i = 0; i < d->domains_count; i++)
		if (strcmp(d->domains[i].name, name) == 0)
			return &d->domains[i];
	return NULL;
}

const struct mf_account *mf_domains_find_account(const struct mf_domains *d, const char *name)
{
	for (size_t i = 0; i < d->accounts_count; i++)
		if (strcmp(d->accounts[i].name, name) == 0)
			return &d->accounts[i];
	return NULL;
}

const struct mf_transport *mf_domains_find_transport(const struct mf_domains *d,
						     const char *name)
{
	for (size_t i = 0; i < d->transports_count; i++)
		if (strcmp(d->transports[i].name, name) == 0)
			return &d->transports[i];
	return NULL;
}

static const struct mf_route *route_match(const struct mf_route *routes, size_t count,
					  const char *from_domain, const char *to_domain,
					  unsigned attempt)
{
	for (size_t i = 0; i < count; i++) {
		const struct mf_route *r = &routes[i];
		if (r->from_domain != NULL && strcasecmp(r->from_domain, from_domain) != 0)
			continue;
		if (r->to_domain != NULL && strcasecmp(r->to_domain, to_domain) != 0)
			continue;
		if (attempt < r->min_attempt)
			continue;
		return r;
	}
	return NULL;
}

const struct mf_route *mf_domains_route(const struct mf_domains *d, const char *account,
					const char *from_domain, const char *to_domain,
					unsigned attempt)
{
	const struct mf_account *a = account != NULL ? mf_domains_find_account(d, account) : NULL;
	const struct mf_domain *dom = mf_domains_find_domain(d, from_domain);
	const struct mf_route *r = NULL;

	if (a != NULL)
		r = route_match(a->routes, a->routes_count, from_domain, to_domain, attempt);
	if (r == NULL && dom != NULL)
		r = route_match(dom->routes, dom->routes_count, from_domain, to_domain, attempt);
	if (r == NULL)
		r = route_match(d->routes, d->routes_count, from_domain, to_domain, attempt);
	return r;
}

static bool resolve_key(const struct mf_domains *d, const char *localpart, const char *domain,
			bool case_sensitive, struct mf_domains_dest *dest)
{
	char *key = address_key(localpart, domain, case_sensitive);
	const struct mf_domains_index_entry *e = index_find(d, key);

	free(key);
	if (e == NULL)
		return false;
	dest->kind = e->kind;
	dest->matched = e->addr;
	if (e->kind == MF_DOMAINS_DEST_ACCOUNT)
		dest->account = &d->accounts[e->owner];
	else
		dest->alias = &d->aliases[e->owner];
	return true;
}

enum mf_domains_dest_kind mf_domains_resolve(const struct mf_domains *d, const char *localpart,
					     const char *domain, struct mf_domains_dest *dest_r)
{
	const struct mf_domain *dom = mf_domains_find_domain(d, domain);
	bool cs;

	memset(dest_r, 0, sizeof(*dest_r));
	dest_r->domain = dom;
	if (dom == NULL)
		return MF_DOMAINS_DEST_NONE;
	cs = dom->localpart_case_sensitive;
	if (localpart[0] != '\0' && resolve_key(d, localpart, domain, cs, dest_r))
		return dest_r->kind;
	/* "mjl+tag" is delivered to "mjl"; "+tag" alone stays whole. */
	if (dom->catchall_separator != NULL && localpart[0] != '\0') {
		char *base = mf_address_strip_separator(localpart, dom->catchall_separator);
		bool found = strcmp(base, localpart) != 0 &&
			     resolve_key(d, base, domain, cs, dest_r);
		free(base);
		if (found)
			return dest_r->kind;
	}
	if (resolve_key(d, "", domain, true, dest_r))
		return dest_r->kind;
	return MF_DOMAINS_DEST_NONE;
}

int mf_domains_resolve_address(const struct mf_domains *d, const char *address,
			       struct mf_domains_dest *dest_r, const char **error_r)
{
	struct mf_address addr;

	if (mf_address_parse(address, strlen(address), &addr, error_r) < 0)
		return -1;
	mf_domains_resolve(d, addr.localpart, addr.domain, dest_r);
	mf_address_free(&addr);
	return 0;
}

/* --- the current snapshot --- */

static pthread_mutex_t current_lock = PTHREAD_MUTEX_INITIALIZER;
static struct mf_domains *current;

struct mf_domains *mf_domains_current(void)
{
	struct mf_domains *d = NULL;

	pthread_mutex_lock(&current_lock);
	if (current != NULL)
		d = mf_domains_ref(current);
	pthread_mutex_unlock(&current_lock);
	return d;
}

int mf_domains_reload(const char *path, const char **error_r)
{
	struct mf_domains *d, *old;

	if (mf_domains_load(path, &d, error_r) < 0)
		return -1;
	pthread_mutex_lock(&current_lock);
	old = current;
	current = d;
	pthread_mutex_unlock(&current_lock);
	mf_domains_unref(&old);
	return 0;
}

void mf_domains_clear_current(void)
{
	struct mf_domains *old;

	pthread_mutex_lock(&current_lock);
	old = current;
	current = NULL;
	pthread_mutex_unlock(&current_lock);
	mf_domains_unref(&old);
}

/* --- editing the tree --- */

static struct mf_conf_node *find_domain_node(struct mf_conf *conf, const char *ascii)
{
	struct mf_conf_node *root = conf->root;

	for (size_t i = 0; i < root->children_count; i++) {
		struct mf_conf_node *n = root->children[i];
		char *a, *u;
		const char *err;
		bool match;

		if (n->key == NULL || strcmp(n->key, "domain") != 0 || n->values_count == 0)
			continue;
		if (mf_domain_parse(n->values[0], strlen(n->values[0]), &a, &u, &err) < 0)
			continue;
		match = strcmp(a, ascii) == 0;
		free(a);
		free(u);
		if (match)
			return n;
	}
	return NULL;
}

/* Returns the last child of block with key, or NULL. */
static struct mf_conf_node *last_with_key(const struct mf_conf_node *block, const char *key)
{
	struct mf_conf_node *last = NULL;

	for (size_t i = 0; i < block->children_count; i++)
		if (block->children[i]->key != NULL && strcmp(block->children[i]->key, key) == 0)
			last = block->children[i];
	return last;
}

static bool is_blank(const struct mf_conf_node *n)
{
	if (n->type != MF_CONF_COMMENT)
		return false;
	for (const char *p = n->raw != NULL ? n->raw : ""; *p != '\0'; p++)
		if (*p != ' ' && *p != '\t' && *p != '\r')
			return false;
	return true;
}

/* Adds a top-level block after the last one with the same key (or at the
 * end), separated by a blank line as an admin would write it. */
static void insert_top_block(struct mf_conf *conf, struct mf_conf_node *block)
{
	struct mf_conf_node *root = conf->root, *after = last_with_key(root, block->key);

	if (after == NULL && root->children_count > 0)
		after = root->children[root->children_count - 1];
	if (after != NULL && !is_blank(after)) {
		struct mf_conf_node *blank = mf_conf_node_new(MF_CONF_COMMENT, NULL, NULL, 0);
		mf_conf_insert(root, after, blank);
		after = blank;
	}
	mf_conf_insert(root, after, block);
}

int mf_domains_tree_add_domain(struct mf_conf *conf, const char *domain, const char **error_r)
{
	char *ascii, *unicode;
	int ret = -1;

	if (mf_domain_parse(domain, strlen(domain), &ascii, &unicode, error_r) < 0) {
		*error_r = mf_errorf("bad domain name %s: %s", domain, *error_r);
		return -1;
	}
	if (find_domain_node(conf, ascii) != NULL) {
		*error_r = mf_errorf("domain %s already exists", domain);
		goto out;
	}
	const char *v[] = { ascii };
	insert_top_block(conf, mf_conf_node_new(MF_CONF_BLOCK, "domain", v, 1));
	ret = 0;
out:
	free(ascii);
	free(unicode);
	return ret;
}

int mf_domains_tree_remove_domain(struct mf_conf *conf, const char *domain, const char **error_r)
{
	char *ascii, *unicode;
	struct mf_conf_node *n;

	if (mf_domain_parse(domain, strlen(domain), &ascii, &unicode, error_r) < 0) {
		*error_r = mf_errorf("bad domain name %s: %s", domain, *error_r);
		return -1;
	}
	n = find_domain_node(conf, ascii);
	free(ascii);
	free(unicode);
	if (n == NULL) {
		*error_r = mf_errorf("no domain %s", domain);
		return -1;
	}
	mf_conf_remove(n);
	return 0;
}

int mf_domains_tree_add_account(struct mf_conf *conf, const char *name, const char *address,
				const char **error_r)
{
	struct mf_domains_address addr;
	struct mf_conf_node *block;

	if (check_account_name(name, error_r) < 0)
		return -1;
	if (mf_conf_find_value(conf->root, "account", name) != NULL) {
		*error_r = mf_errorf("account %s already exists", name);
		return -1;
	}
	if (address_parse(address, false, &addr, error_r) < 0)
		return -1;
	const char *n[] = { name }, *dom[] = { addr.domain }, *ad[] = { addr.address };
	block = mf_conf_node_new(MF_CONF_BLOCK, "account", n, 1);
	mf_conf_insert(block, NULL, mf_conf_node_new(MF_CONF_STATEMENT, "domain", dom, 1));
	mf_conf_insert(block, NULL, mf_conf_node_new(MF_CONF_STATEMENT, "address", ad, 1));
	insert_top_block(conf, block);
	address_free(&addr);
	return 0;
}

int mf_domains_tree_remove_account(struct mf_conf *conf, const char *name, const char **error_r)
{
	struct mf_conf_node *n = mf_conf_find_value(conf->root, "account", name);

	if (n == NULL) {
		*error_r = mf_errorf("no account %s", name);
		return -1;
	}
	mf_conf_remove(n);
	return 0;
}

/* Returns whether the tree configures domain (A-labels) as
 * localpart-case-sensitive. */
static bool tree_case_sensitive(struct mf_conf *conf, const char *domain)
{
	struct mf_conf_node *n = find_domain_node(conf, domain), *cs;
	const char *err;
	bool v = false;

	if (n != NULL && (cs = mf_conf_find(n, "localpart-case-sensitive")) != NULL &&
	    cs->values_count == 1 && mf_conf_parse_bool(cs->values[0], &v, &err) < 0)
		v = false;
	return v;
}

/* Returns the address statement of account block equal to addr, or NULL. */
static struct mf_conf_node *find_address_node(struct mf_conf *conf, struct mf_conf_node *block,
					      const struct mf_domains_address *addr)
{
	bool cs = tree_case_sensitive(conf, addr->domain);
	char *want = address_key(addr->localpart, addr->domain, cs);
	struct mf_conf_node *found = NULL;

	for (size_t i = 0; i < block->children_count && found == NULL; i++) {
		struct mf_conf_node *n = block->children[i];
		struct mf_domains_address a;
		const char *err;
		char *key;

		if (n->key == NULL || strcmp(n->key, "address") != 0 || n->values_count != 1 ||
		    address_parse(n->values[0], true, &a, &err) < 0)
			continue;
		key = address_key(a.localpart, a.domain, cs);
		if (strcmp(key, want) == 0)
			found = n;
		free(key);
		address_free(&a);
	}
	free(want);
	return found;
}

static struct mf_conf_node *account_node(struct mf_conf *conf, const char *account,
					 const char **error_r)
{
	struct mf_conf_node *n = mf_conf_find_value(conf->root, "account", account);

	if (n == NULL || n->type != MF_CONF_BLOCK) {
		*error_r = mf_errorf("no account %s", account);
		return NULL;
	}
	return n;
}

int mf_domains_tree_add_address(struct mf_conf *conf, const char *account, const char *address,
				const char **error_r)
{
	struct mf_domains_address addr;
	struct mf_conf_node *block;
	int ret = -1;

	if ((block = account_node(conf, account, error_r)) == NULL)
		return -1;
	if (address_parse(address, true, &addr, error_r) < 0)
		return -1;
	if (find_address_node(conf, block, &addr) != NULL) {
		*error_r = mf_errorf("account %s already has address %s", account, addr.address);
		goto out;
	}
	const char *v[] = { addr.address };
	mf_conf_insert(block, last_with_key(block, "address"),
		       mf_conf_node_new(MF_CONF_STATEMENT, "address", v, 1));
	ret = 0;
out:
	address_free(&addr);
	return ret;
}

int mf_domains_tree_remove_address(struct mf_conf *conf, const char *account,
				   const char *address, const char **error_r)
{
	struct mf_domains_address addr;
	struct mf_conf_node *block, *n;

	if ((block = account_node(conf, account, error_r)) == NULL)
		return -1;
	if (address_parse(address, true, &addr, error_r) < 0)
		return -1;
	n = find_address_node(conf, block, &addr);
	if (n == NULL)
		*error_r = mf_errorf("account %s has no address %s", account, addr.address);
	else
		mf_conf_remove(n);
	address_free(&addr);
	return n != NULL ? 0 : -1;
}

/* --- writing --- */

int mf_domains_edit(const char *path, mf_domains_edit_fn *fn, void *ctx, const char **error_r)
{
	struct mf_conf_errors errors;
	struct mf_conf *conf = NULL;
	struct mf_conf *check = NULL;
	struct mf_domains *d = NULL;
	char *lock_path = mf_xasprintf("%s.lock", path), *text = NULL;
	mode_t mode = 0640;
	struct stat st;
	const char *err;
	int lock_fd, ret = -1;

	mf_conf_errors_init(&errors);
	/* The lock file, not domains.conf itself, is locked: domains.conf is
	 * replaced by rename, so a lock on it would be on the old inode. */
	lock_fd = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (lock_fd < 0) {
		mf_conf_errors_add(&errors, NULL, 0, NULL, "%s: %s", lock_path, strerror(errno));
		goto out;
	}
	while (flock(lock_fd, LOCK_EX) < 0) {
		if (errno != EINTR) {
			mf_conf_errors_add(&errors, NULL, 0, NULL, "%s: flock: %s", lock_path,
					   strerror(errno));
			goto out;
		}
	}
	if (stat(path, &st) == 0) {
		mode = st.st_mode & 07777;
		if (mf_conf_parse_file(path, &conf, &err) < 0) {
			mf_conf_errors_add(&errors, NULL, 0, NULL, "%s", err);
			goto out;
		}
	} else if (errno == ENOENT) {
		if (mf_conf_parse_buf(path, "", 0, &conf, &err) < 0) {
			mf_conf_errors_add(&errors, NULL, 0, NULL, "%s", err);
			goto out;
		}
	} else {
		mf_conf_errors_add(&errors, NULL, 0, NULL, "%s: %s", path, strerror(errno));
		goto out;
	}
	if (fn(conf, ctx, &err) < 0) {
		mf_conf_errors_add(&errors, NULL, 0, NULL, "%s", err);
		goto out;
	}
	text = mf_conf_serialize(conf);
	/* Validate the bytes that will be written, parsed back, so that what
	 * is on disk always loads. */
	if (mf_conf_parse_buf(path, text, strlen(text), &check, &err) < 0) {
		mf_conf_errors_add(&errors, NULL, 0, NULL, "%s", err);
		goto out;
	}
	if (load_conf(check, path, &d, &errors) < 0)
		goto out;
	if (mf_fs_write_atomic(path, text, strlen(text), mode, &err) < 0) {
		mf_conf_errors_add(&errors, NULL, 0, NULL, "%s", err);
		goto out;
	}
	ret = 0;
out:
	if (lock_fd >= 0)
		close(lock_fd);  /* releases the lock */
	mf_domains_unref(&d);
	mf_conf_free(&check);
	mf_conf_free(&conf);
	free(text);
	free(lock_path);
	err = mf_conf_errors_finish(&errors);
	if (ret < 0)
		*error_r = err;
	return ret;
}

struct edit_args {
	const char *a, *b;
	int (*one)(struct mf_conf *conf, const char *a, const char **error_r);
	int (*two)(struct mf_conf *conf, const char *a, const char *b, const char **error_r);
};

static int edit_apply(struct mf_conf *conf, void *ctx, const char **error_r)
{
	struct edit_args *args = ctx;

	if (args->one != NULL)
		return args->one(conf, args->a, error_r);
	return args->two(conf, args->a, args->b, error_r);
}

int mf_domains_add_domain(const char *path, const char *domain, const char **error_r)
{
	struct edit_args args = { .a = domain, .one = mf_domains_tree_add_domain };
	return mf_domains_edit(path, edit_apply, &args, error_r);
}

int mf_domains_remove_domain(const char *path, const char *domain, const char **error_r)
{
	struct edit_args args = { .a = domain, .one = mf_domains_tree_remove_domain };
	return mf_domains_edit(path, edit_apply, &args, error_r);
}

int mf_domains_add_account(const char *path, const char *name, const char *address,
			   const char **error_r)
{
	struct edit_args args = { .a = name, .b = address, .two = mf_domains_tree_add_account };
	return mf_domains_edit(path, edit_apply, &args, error_r);
}

int mf_domains_remove_account(const char *path, const char *name, const char **error_r)
{
	struct edit_args args = { .a = name, .one = mf_domains_tree_remove_account };
	return mf_domains_edit(path, edit_apply, &args, error_r);
}

int mf_domains_add_address(const char *path, const char *account, const char *address,
			   const char **error_r)
{
	struct edit_args args = { .a = account, .b = address, .two = mf_domains_tree_add_address };
	return mf_domains_edit(path, edit_apply, &args, error_r);
}

int mf_domains_remove_address(const char *path, const char *account, const char *address,
			      const char **error_r)
{
	struct edit_args args = { .a = account, .b = address,
				  .two = mf_domains_tree_remove_address };
	return mf_domains_edit(path, edit_apply, &args, error_r);
}
