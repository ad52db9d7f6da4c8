#include "config.h"
#include "buf.h"
#include "error.h"
#include "fsutil.h"
#include "log.h"
#include "ratelimit.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern char **environ;

static const char *const service_names[MF_SERVICE_COUNT] = {
	[MF_SERVICE_SMTP_IN] = "smtp-in",
	[MF_SERVICE_SUBMISSION] = "submission",
	[MF_SERVICE_IMAP] = "imap",
	[MF_SERVICE_QUEUE] = "queue",
	[MF_SERVICE_DELIVERY] = "delivery",
	[MF_SERVICE_DNSAUTH] = "dnsauth",
	[MF_SERVICE_REPORTS] = "reports",
	[MF_SERVICE_WEB] = "web",
};

/* Services that accept connections from clients take listen lines. */
static bool service_listens(enum mf_service_id id)
{
	return id == MF_SERVICE_SMTP_IN || id == MF_SERVICE_SUBMISSION ||
	       id == MF_SERVICE_IMAP || id == MF_SERVICE_WEB;
}

const char *mf_service_name(enum mf_service_id id)
{
	if ((unsigned)id >= MF_SERVICE_COUNT)
		return NULL;
	return service_names[id];
}

int mf_service_by_name(const char *name)
{
	for (int i = 0; i < MF_SERVICE_COUNT; i++)
		if (strcmp(service_names[i], name) == 0)
			return i;
	return -1;
}

/* --- value checks, shared by the file and the environment --- */

static int check_hostname(const char *v, const char **error_r)
{
	size_t label = 0, len = strlen(v);

	/* RFC 1035 2.3.1 / RFC 1123 2.1: letters, digits, hyphens; labels of
	 * 1-63 octets.  The name is used in EHLO and TLS, so ASCII only. */
	if (len == 0 || len > 253) {
		*error_r = "must be 1-253 characters";
		return -1;
	}
	for (size_t i = 0; i <= len; i++) {
		char c = v[i];
		if (c == '.' || c == '\0') {
			if (label == 0 || label > 63 || v[i - 1] == '-' || v[i - label] == '-') {
				*error_r = mf_errorf("bad host name %s (labels of 1-63 letters, digits "
						     "and inner hyphens; use A-labels for IDNs)", v);
				return -1;
			}
			label = 0;
			continue;
		}
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '-')) {
			*error_r = mf_errorf("bad host name %s (labels of 1-63 letters, digits and "
					     "inner hyphens; use A-labels for IDNs)", v);
			return -1;
		}
		label++;
	}
	return 0;
}

static int check_url(const char *v, const char *const *schemes, const char **error_r)
{
	for (size_t i = 0; schemes[i] != NULL; i++) {
		size_t n = strlen(schemes[i]);
		if (strncmp(v, schemes[i], n) != 0)
			continue;
		if (v[n] == '\0') {
			*error_r = mf_errorf("%s has no address after %s", v, schemes[i]);
			return -1;
		}
		for (const char *p = v; *p != '\0'; p++) {
			if ((unsigned char)*p <= ' ') {
				*error_r = "URL contains whitespace or control characters";
				return -1;
			}
		}
		return 0;
	}
	*error_r = mf_errorf("bad URL %s (want %s...)", v, schemes[0]);
	return -1;
}

static int check_nats_url(const char *v, const char **error_r)
{
	static const char *const schemes[] = { "nats://", "tls://", NULL };
	return check_url(v, schemes, error_r);
}

static int check_redis_url(const char *v, const char **error_r)
{
	static const char *const schemes[] = { "redis://", "rediss://", "unix://", NULL };
	return check_url(v, schemes, error_r);
}

/* Checks a spec the way mf_log_apply_spec parses it, without applying it:
 * services apply it themselves once logging is set up. */
static int check_log_spec(const char *v, const char **error_r)
{
	char *copy = mf_xstrdup(v), *save = NULL, *tok;
	size_t n = 0;
	int ret = -1;

	for (tok = strtok_r(copy, ", ", &save); tok != NULL; tok = strtok_r(NULL, ", ", &save)) {
		char *eq = strchr(tok, '=');
		const char *lvl = tok;

		if (eq != NULL) {
			*eq = '\0';
			lvl = eq + 1;
			/* 32 is log.c's package name buffer (MF_LOG_PKG_LEN). */
			if (tok[0] == '\0' || strlen(tok) >= 32) {
				*error_r = mf_errorf("bad package name in log level spec %s", v);
				goto out;
			}
		}
		if (mf_log_level_parse(lvl) < 0) {
			*error_r = mf_errorf("unknown log level %s (want tracedata, traceauth, trace, "
					     "debug, info, warn or error)", lvl);
			goto out;
		}
		n++;
	}
	if (n == 0) {
		*error_r = "empty log level spec";
		goto out;
	}
	ret = 0;
out:
	free(copy);
	return ret;
}

static void lower(char *s)
{
	for (; *s != '\0'; s++)
		if (*s >= 'A' && *s <= 'Z')
			*s = (char)(*s - 'A' + 'a');
}

static void set_string(char **target, const char *v)
{
	free(*target);
	*target = mf_xstrdup(v);
}

/* Parses "HOST:PORT [plain|tls|starttls] [proxy]" given as words. */
static int parse_listen(char *const *words, size_t n, struct mf_config_listen *l,
			const char **error_r)
{
	bool have_security = false;

	memset(l, 0, sizeof(*l));
	if (n == 0 || n > 3) {
		*error_r = "want HOST:PORT [plain|tls|starttls] [proxy]";
		return -1;
	}
	if (mf_conf_parse_hostport(words[0], &l->addr, error_r) < 0)
		return -1;
	for (size_t i = 1; i < n; i++) {
		const char *w = words[i];
		if (!have_security && strcmp(w, "plain") == 0) {
			l->security = MF_LISTEN_PLAIN;
			have_security = true;
		} else if (!have_security && strcmp(w, "tls") == 0) {
			l->security = MF_LISTEN_TLS;
			have_security = true;
		} else if (!have_security && strcmp(w, "starttls") == 0) {
			l->security = MF_LISTEN_STARTTLS;
			have_security = true;
		} else if (!l->proxy && strcmp(w, "proxy") == 0) {
			l->proxy = true;
		} else {
			*error_r = mf_errorf("unexpected %s (want HOST:PORT [plain|tls|starttls] [proxy])", w);
			return -1;
		}
	}
	return 0;
}

/* --- the schema --- */

static int field_hostname(struct mf_conf_walk *walk, const struct mf_conf_node *node,
			  const char *path, void *base, const char **error_r)
{
	struct mf_config *c = base;

	if (check_hostname(node->values[0], error_r) < 0)
		return -1;
	set_string(&c->hostname, node->values[0]);
	lower(c->hostname);
	return 0;
}

static int field_nats_url(struct mf_conf_walk *walk, const struct mf_conf_node *node,
			  const char *path, void *base, const char **error_r)
{
	if (check_nats_url(node->values[0], error_r) < 0)
		return -1;
	set_string(&((struct mf_config *)base)->nats_url, node->values[0]);
	return 0;
}

static int field_redis_url(struct mf_conf_walk *walk, const struct mf_conf_node *node,
			   const char *path, void *base, const char **error_r)
{
	if (check_redis_url(node->values[0], error_r) < 0)
		return -1;
	set_string(&((struct mf_config *)base)->redis_url, node->values[0]);
	return 0;
}

static int field_log_level(struct mf_conf_walk *walk, const struct mf_conf_node *node,
			   const char *path, void *base, const char **error_r)
{
	if (check_log_spec(node->values[0], error_r) < 0)
		return -1;
	set_string(&((struct mf_config *)base)->log_level, node->values[0]);
	return 0;
}

static int field_redis_down(struct mf_conf_walk *walk, const struct mf_conf_node *node,
			    const char *path, void *base, const char **error_r)
{
	struct mf_config *c = base;

	if (strcmp(node->values[0], "allow") == 0)
		c->redis_down = MF_REDIS_DOWN_ALLOW;
	else if (strcmp(node->values[0], "deny") == 0)
		c->redis_down = MF_REDIS_DOWN_DENY;
	else {
		*error_r = mf_errorf("bad value %s (want allow or deny)", node->values[0]);
		return -1;
	}
	return 0;
}

/* smtp-in-connections / smtp-in-messages: "none", or rates like 60/1m 5000/1d. */
static int field_smtpin_rates(struct mf_conf_walk *walk, const struct mf_conf_node *node,
			      const char *path, void *base, const char **error_r)
{
	struct mf_config *c = base;
	bool conn = strcmp(node->key, "smtp-in-connections") == 0;
	struct mf_config_rate *rates = conn ? c->smtpin_conn_rates : c->smtpin_msg_rates;
	size_t *count = conn ? &c->smtpin_conn_rates_count : &c->smtpin_msg_rates_count;
	const char *err;

	*(conn ? &c->smtpin_conn_rates_set : &c->smtpin_msg_rates_set) = true;
	*count = 0;
	if (node->values_count == 1 && strcmp(node->values[0], "none") == 0)
		return 0;
	for (size_t i = 0; i < node->values_count; i++) {
		if (mf_ratelimit_rate_parse(node->values[i], &rates[i].count, &rates[i].period_ms,
					    &err) < 0) {
			*error_r = mf_errorf("bad rate %s: %s (want e.g. 60/1m 5000/1d, or none)",
					     node->values[i], err);
			return -1;
		}
		(*count)++;
	}
	return 0;
}

/* auth-failures-slow / -block / -account: "none" or one rate like 5/1m. */
static int field_auth_rate(struct mf_conf_walk *walk, const struct mf_conf_node *node,
			   const char *path, void *base, const char **error_r)
{
	struct mf_config *c = base;
	struct mf_config_rate *rate = strcmp(node->key, "auth-failures-slow") == 0 ? &c->auth_slow :
		strcmp(node->key, "auth-failures-block") == 0 ? &c->auth_block : &c->auth_account;
	const char *err;

	*(rate == &c->auth_slow ? &c->auth_slow_set : rate == &c->auth_block ?
	  &c->auth_block_set : &c->auth_account_set) = true;
	rate->count = 0;
	rate->period_ms = 0;
	if (strcmp(node->values[0], "none") == 0)
		return 0;
	if (mf_ratelimit_rate_parse(node->values[0], &rate->count, &rate->period_ms, &err) < 0) {
		*error_r = mf_errorf("bad rate %s: %s (want e.g. 5/1m, or none)", node->values[0],
				     err);
		return -1;
	}
	return 0;
}

static int field_listen(struct mf_conf_walk *walk, const struct mf_conf_node *node,
			const char *path, void *base, const char **error_r)
{
	struct mf_config_service *s = base;
	struct mf_config_listen l;

	if (s->listen_count == MF_CONFIG_LISTEN_MAX) {
		*error_r = mf_errorf("too many listen lines (max %d)", MF_CONFIG_LISTEN_MAX);
		return -1;
	}
	if (parse_listen(node->values, node->values_count, &l, error_r) < 0)
		return -1;
	s->listen[s->listen_count++] = l;
	return 0;
}

static int field_admin(struct mf_conf_walk *walk, const struct mf_conf_node *node,
		       const char *path, void *base, const char **error_r)
{
	struct mf_config_service *s = base;

	if (mf_conf_parse_hostport(node->values[0], &s->admin, error_r) < 0)
		return -1;
	s->admin_set = true;
	return 0;
}

#define ADMIN_FIELD { .key = "admin", .kind = MF_CONF_KIND_CUSTOM, .min_values = 1, \
		      .max_values = 1, .custom = field_admin }

static const struct mf_conf_field service_listen_fields[] = {
	ADMIN_FIELD,
	{ .key = "listen", .kind = MF_CONF_KIND_CUSTOM, .flags = MF_CONF_F_REPEAT,
	  .min_values = 1, .max_values = 3, .custom = field_listen },
	{ .key = "auth-cram-md5", .kind = MF_CONF_KIND_BOOL,
	  .offset = offsetof(struct mf_config_service, auth_cram_md5) },
	{ .key = NULL },
};

static const struct mf_conf_field service_imap_fields[] = {
	ADMIN_FIELD,
	{ .key = "listen", .kind = MF_CONF_KIND_CUSTOM, .flags = MF_CONF_F_REPEAT,
	  .min_values = 1, .max_values = 3, .custom = field_listen },
	{ .key = "allow-plaintext-auth", .kind = MF_CONF_KIND_BOOL,
	  .offset = offsetof(struct mf_config_service, allow_plaintext_auth) },
	{ .key = "auth-cram-md5", .kind = MF_CONF_KIND_BOOL,
	  .offset = offsetof(struct mf_config_service, auth_cram_md5) },
	{ .key = "max-connections-per-account", .kind = MF_CONF_KIND_UINT, .max = 1000000,
	  .offset = offsetof(struct mf_config_service, max_connections_per_account) },
	{ .key = NULL },
};

static const struct mf_conf_field service_smtpin_fields[] = {
	ADMIN_FIELD,
	{ .key = "listen", .kind = MF_CONF_KIND_CUSTOM, .flags = MF_CONF_F_REPEAT,
	  .min_values = 1, .max_values = 3, .custom = field_listen },
	{ .key = "verify", .kind = MF_CONF_KIND_BOOL,
	  .offset = offsetof(struct mf_config_service, verify) },
	{ .key = NULL },
};

static const struct mf_conf_field service_plain_fields[] = {
	ADMIN_FIELD,
	{ .key = NULL },
};

static const struct mf_conf_field service_delivery_fields[] = {
	ADMIN_FIELD,
	{ .key = "local-delivery", .kind = MF_CONF_KIND_BOOL,
	  .offset = offsetof(struct mf_config_service, local_delivery) },
	{ .key = "threads", .kind = MF_CONF_KIND_UINT, .max = 64,
	  .offset = offsetof(struct mf_config_service, threads) },
	{ .key = "ack-wait", .kind = MF_CONF_KIND_DURATION,
	  .offset = offsetof(struct mf_config_service, ack_wait_ms) },
	{ .key = "smtp-timeout", .kind = MF_CONF_KIND_DURATION,
	  .offset = offsetof(struct mf_config_service, smtp_timeout_ms) },
	{ .key = "test-smtp-port", .kind = MF_CONF_KIND_UINT, .max = 65535,
	  .offset = offsetof(struct mf_config_service, test_smtp_port) },
	{ .key = NULL },
};

static const struct mf_conf_field service_queue_fields[] = {
	ADMIN_FIELD,
	{ .key = "lease", .kind = MF_CONF_KIND_DURATION,
	  .offset = offsetof(struct mf_config_service, lease_ms) },
	{ .key = "retired-keep", .kind = MF_CONF_KIND_DURATION,
	  .offset = offsetof(struct mf_config_service, retired_keep_ms) },
	{ .key = "test-first-backoff", .kind = MF_CONF_KIND_DURATION,
	  .offset = offsetof(struct mf_config_service, test_first_backoff_ms) },
	{ .key = NULL },
};

/* --- dnsauth: its fields live in struct mf_config (base), not in the
 * service struct; admin goes to the service as for the others. --- */

static int field_dnsauth_admin(struct mf_conf_walk *walk, const struct mf_conf_node *node,
			       const char *path, void *base, const char **error_r)
{
	struct mf_config *c = base;

	return field_admin(walk, node, path, &c->services[MF_SERVICE_DNSAUTH], error_r);
}

/* "resolver recursive" | "resolver forward ADDR[@PORT]..." | "resolver resolvconf PATH" |
 * "resolver none" */
static int field_dnsauth_resolver(struct mf_conf_walk *walk, const struct mf_conf_node *node,
				  const char *path, void *base, const char **error_r)
{
	struct mf_config_dnsauth *d = &((struct mf_config *)base)->dnsauth;
	const char *mode = node->values[0];
	size_t n = node->values_count - 1;

	if (strcmp(mode, "recursive") == 0 && n == 0) {
		d->resolver = MF_DNS_RECURSIVE;
		return 0;
	}
	if (strcmp(mode, "none") == 0 && n == 0) {
		d->resolver = MF_DNS_NONE;
		return 0;
	}
	if (strcmp(mode, "resolvconf") == 0 && n == 1) {
		d->resolver = MF_DNS_RESOLVCONF;
		free(d->resolvconf);
		d->resolvconf = mf_conf_path(walk->dir, node->values[1]);
		return 0;
	}
	if (strcmp(mode, "forward") == 0 && n >= 1 && n <= MF_CONFIG_DNS_FORWARD_MAX) {
		for (size_t i = 0; i < d->forward_count; i++)
			free(d->forward[i]);
		d->forward_count = 0;
		for (size_t i = 0; i < n; i++) {
			const char *v = node->values[1 + i];
			for (const char *p = v; *p != '\0'; p++) {
				if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f') ||
				      (*p >= 'A' && *p <= 'F') || *p == '.' || *p == ':' || *p == '@')) {
					*error_r = mf_errorf("bad server %s (want IP[@PORT])", v);
					return -1;
				}
			}
			d->forward[d->forward_count++] = mf_xstrdup(v);
		}
		d->resolver = MF_DNS_FORWARD;
		return 0;
	}
	*error_r = mf_errorf("want recursive, forward IP[@PORT]... (at most %d), resolvconf PATH "
			     "or none",
			     MF_CONFIG_DNS_FORWARD_MAX);
	return -1;
}

static int add_list(char **list, size_t *count, size_t max, const char *v, const char **error_r)
{
	if (*count == max) {
		*error_r = mf_errorf("too many (max %zu)", max);
		return -1;
	}
	list[(*count)++] = mf_xstrdup(v);
	return 0;
}

static int field_dnsauth_dnsbl(struct mf_conf_walk *walk, const struct mf_conf_node *node,
			       const char *path, void *base, const char **error_r)
{
	struct mf_config_dnsauth *d = &((struct mf_config *)base)->dnsauth;

	if (check_hostname(node->values[0], error_r) < 0)
		return -1;
	return add_list(d->dnsbl, &d->dnsbl_count, MF_CONFIG_DNSBL_MAX, node->values[0], error_r);
}

static int field_dnsauth_monitor_ip(struct mf_conf_walk *walk, const struct mf_conf_node *node,
				    const char *path, void *base, const char **error_r)
{
	struct mf_config_dnsauth *d = &((struct mf_config *)base)->dnsauth;
	unsigned char addr[16];

	if (inet_pton(AF_INET, node->values[0], addr) != 1 &&
	    inet_pton(AF_INET6, node->values[0], addr) != 1) {
		*error_r = mf_errorf("bad IP address %s", node->values[0]);
		return -1;
	}
	return add_list(d->monitor_ip, &d->monitor_ip_count, MF_CONFIG_MONITOR_IP_MAX,
			node->values[0], error_r);
}

static const struct mf_conf_field service_dnsauth_fields[] = {
	{ .key = "admin", .kind = MF_CONF_KIND_CUSTOM, .min_values = 1, .max_values = 1,
	  .custom = field_dnsauth_admin },
	{ .key = "resolver", .kind = MF_CONF_KIND_CUSTOM, .min_values = 1,
	  .max_values = 1 + MF_CONFIG_DNS_FORWARD_MAX, .custom = field_dnsauth_resolver },
	{ .key = "trust-anchor", .kind = MF_CONF_KIND_PATH,
	  .offset = offsetof(struct mf_config, dnsauth.trust_anchor) },
	{ .key = "timeout", .kind = MF_CONF_KIND_DURATION,
	  .offset = offsetof(struct mf_config, dnsauth.timeout_ms) },
	{ .key = "dnsbl", .kind = MF_CONF_KIND_CUSTOM, .flags = MF_CONF_F_REPEAT,
	  .min_values = 1, .max_values = 1, .custom = field_dnsauth_dnsbl },
	{ .key = "monitor-ip", .kind = MF_CONF_KIND_CUSTOM, .flags = MF_CONF_F_REPEAT,
	  .min_values = 1, .max_values = 1, .custom = field_dnsauth_monitor_ip },
	{ .key = "monitor-interval", .kind = MF_CONF_KIND_DURATION,
	  .offset = offsetof(struct mf_config, dnsauth.monitor_interval_ms) },
	{ .key = "dkim-allow-sha1", .kind = MF_CONF_KIND_BOOL,
	  .offset = offsetof(struct mf_config, dnsauth.dkim_allow_sha1) },
	{ .key = "dkim-allow-length", .kind = MF_CONF_KIND_BOOL,
	  .offset = offsetof(struct mf_config, dnsauth.dkim_allow_length) },
	{ .key = "dkim-rsa-min-bits", .kind = MF_CONF_KIND_UINT, .max = 8192,
	  .offset = offsetof(struct mf_config, dnsauth.dkim_rsa_min_bits) },
	{ .key = NULL },
};

/* A non-NULL children pointer makes the walker require a block; the
 * handler picks the table that fits the service. */
static int field_service(struct mf_conf_walk *walk, const struct mf_conf_node *node,
			 const char *path, void *base, const char **error_r)
{
	struct mf_config *c = base;
	int id = mf_service_by_name(node->key);
	struct mf_config_service *s = &c->services[id];
	const struct mf_conf_field *fields = service_plain_fields;

	if (id == MF_SERVICE_IMAP)
		fields = service_imap_fields;
	else if (id == MF_SERVICE_SMTP_IN)
		fields = service_smtpin_fields;
	else if (service_listens((enum mf_service_id)id))
		fields = service_listen_fields;
	else if (id == MF_SERVICE_DELIVERY)
		fields = service_delivery_fields;
	else if (id == MF_SERVICE_QUEUE)
		fields = service_queue_fields;
	s->enabled = true;
	s->line = node->line;
	if (id == MF_SERVICE_DNSAUTH) {
		mf_conf_walk_block(walk, node, path, service_dnsauth_fields, c);
		return 0;
	}
	mf_conf_walk_block(walk, node, path, fields, s);
	return 0;
}

static const struct mf_conf_field tls_fields[] = {
	{ .key = "cert", .kind = MF_CONF_KIND_PATH, .flags = MF_CONF_F_REQUIRED,
	  .offset = offsetof(struct mf_config, tls_cert) },
	{ .key = "key", .kind = MF_CONF_KIND_PATH, .flags = MF_CONF_F_REQUIRED,
	  .offset = offsetof(struct mf_config, tls_key) },
	{ .key = NULL },
};

static const struct mf_conf_field limits_fields[] = {
	{ .key = "max-connections", .kind = MF_CONF_KIND_UINT, .max = 1000000,
	  .offset = offsetof(struct mf_config, limits.max_connections) },
	{ .key = "max-connections-per-ip", .kind = MF_CONF_KIND_UINT, .max = 1000000,
	  .offset = offsetof(struct mf_config, limits.max_connections_per_ip) },
	{ .key = "max-message-size", .kind = MF_CONF_KIND_SIZE,
	  .offset = offsetof(struct mf_config, limits.max_message_size) },
	{ .key = "command-timeout", .kind = MF_CONF_KIND_DURATION,
	  .offset = offsetof(struct mf_config, limits.command_timeout_ms) },
	{ .key = "drain-timeout", .kind = MF_CONF_KIND_DURATION,
	  .offset = offsetof(struct mf_config, limits.drain_timeout_ms) },
	{ .key = NULL },
};

static const struct mf_conf_field ratelimit_fields[] = {
	{ .key = "redis-down", .kind = MF_CONF_KIND_CUSTOM, .min_values = 1, .max_values = 1,
	  .custom = field_redis_down },
	{ .key = "smtp-in-connections", .kind = MF_CONF_KIND_CUSTOM, .min_values = 1,
	  .max_values = MF_CONFIG_RATES_MAX, .custom = field_smtpin_rates },
	{ .key = "smtp-in-messages", .kind = MF_CONF_KIND_CUSTOM, .min_values = 1,
	  .max_values = MF_CONFIG_RATES_MAX, .custom = field_smtpin_rates },
	{ .key = "auth-failures-slow", .kind = MF_CONF_KIND_CUSTOM, .min_values = 1,
	  .max_values = 1, .custom = field_auth_rate },
	{ .key = "auth-failures-block", .kind = MF_CONF_KIND_CUSTOM, .min_values = 1,
	  .max_values = 1, .custom = field_auth_rate },
	{ .key = "auth-failures-account", .kind = MF_CONF_KIND_CUSTOM, .min_values = 1,
	  .max_values = 1, .custom = field_auth_rate },
	{ .key = NULL },
};

/* tls, limits and ratelimit fill fields of struct mf_config itself (offset 0). */
#define SERVICE_FIELD(name) { .key = name, .kind = MF_CONF_KIND_CUSTOM, \
			      .children = service_plain_fields, .custom = field_service }
#define ONE_VALUE(name, fn) { .key = name, .kind = MF_CONF_KIND_CUSTOM, \
			      .min_values = 1, .max_values = 1, .custom = fn }

static const struct mf_conf_field top_fields[] = {
	ONE_VALUE("hostname", field_hostname),
	{ .key = "data-dir", .kind = MF_CONF_KIND_PATH, .offset = offsetof(struct mf_config, data_dir) },
	{ .key = "blob-dir", .kind = MF_CONF_KIND_PATH, .offset = offsetof(struct mf_config, blob_dir) },
	{ .key = "domains-file", .kind = MF_CONF_KIND_PATH,
	  .offset = offsetof(struct mf_config, domains_file) },
	ONE_VALUE("nats-url", field_nats_url),
	ONE_VALUE("redis-url", field_redis_url),
	ONE_VALUE("log-level", field_log_level),
	{ .key = "tls", .kind = MF_CONF_KIND_BLOCK, .children = tls_fields },
	{ .key = "limits", .kind = MF_CONF_KIND_BLOCK, .children = limits_fields },
	{ .key = "ratelimit", .kind = MF_CONF_KIND_BLOCK, .children = ratelimit_fields },
	SERVICE_FIELD("smtp-in"),
	SERVICE_FIELD("submission"),
	SERVICE_FIELD("imap"),
	SERVICE_FIELD("queue"),
	SERVICE_FIELD("delivery"),
	SERVICE_FIELD("dnsauth"),
	SERVICE_FIELD("reports"),
	SERVICE_FIELD("web"),
	{ .key = NULL },
};

/* --- environment --- */

static const char *env_get(char *const *env, const char *name)
{
	size_t n = strlen(name);

	for (size_t i = 0; env != NULL && env[i] != NULL; i++)
		if (strncmp(env[i], name, n) == 0 && env[i][n] == '=')
			return env[i] + n + 1;
	return NULL;
}

/* Returns "MAILFLEET_<SERVICE>_<what>" in buf, the service upper-cased with
 * '-' as '_' (MAILFLEET_SMTP_IN_ADMIN). */
static const char *env_name(int id, const char *what, char *buf, size_t size)
{
	size_t n = (size_t)snprintf(buf, size, "MAILFLEET_");

	for (const char *p = service_names[id]; *p != '\0' && n + 1 < size; p++)
		buf[n++] = *p == '-' ? '_' : (char)(*p - 'a' + 'A');
	snprintf(buf + n, size - n, "_%s", what);
	return buf;
}

/* Replaces the listen lines with a comma-separated list of specs. */
static int env_listen(struct mf_config_service *s, const char *v, const char **error_r)
{
	char *copy = mf_xstrdup(v), *save = NULL, *spec;
	size_t count = 0;
	int ret = -1;

	for (spec = strtok_r(copy, ",", &save); spec != NULL; spec = strtok_r(NULL, ",", &save)) {
		char *words[4], *wsave = NULL, *w;
		size_t n = 0;

		for (w = strtok_r(spec, " \t", &wsave); w != NULL; w = strtok_r(NULL, " \t", &wsave)) {
			if (n == 4)
				break;
			words[n++] = w;
		}
		if (n == 0)
			continue;
		if (count == MF_CONFIG_LISTEN_MAX) {
			*error_r = mf_errorf("too many listen specs (max %d)", MF_CONFIG_LISTEN_MAX);
			goto out;
		}
		if (parse_listen(words, n, &s->listen[count], error_r) < 0)
			goto out;
		count++;
	}
	if (count == 0) {
		*error_r = "no listen spec (want HOST:PORT [plain|tls|starttls] [proxy],...)";
		goto out;
	}
	s->listen_count = count;
	ret = 0;
out:
	free(copy);
	return ret;
}

static void apply_env(struct mf_config *c, char *const *env, struct mf_conf_errors *errors)
{
	struct {
		const char *var;
		char **target;
		int (*check)(const char *v, const char **error_r);
		bool path;
	} strings[] = {
		{ "MAILFLEET_HOSTNAME", &c->hostname, check_hostname, false },
		{ "MAILFLEET_DATA_DIR", &c->data_dir, NULL, true },
		{ "MAILFLEET_BLOB_DIR", &c->blob_dir, NULL, true },
		{ "MAILFLEET_DOMAINS_FILE", &c->domains_file, NULL, true },
		{ "MAILFLEET_NATS_URL", &c->nats_url, check_nats_url, false },
		{ "MAILFLEET_REDIS_URL", &c->redis_url, check_redis_url, false },
		{ "MAILFLEET_LOG_LEVEL", &c->log_level, check_log_spec, false },
		{ "MAILFLEET_TLS_CERT", &c->tls_cert, NULL, true },
		{ "MAILFLEET_TLS_KEY", &c->tls_key, NULL, true },
	};
	const char *v, *err;

	for (size_t i = 0; i < sizeof(strings) / sizeof(strings[0]); i++) {
		if ((v = env_get(env, strings[i].var)) == NULL)
			continue;
		if (v[0] == '\0') {
			mf_conf_errors_add(errors, NULL, 0, strings[i].var, "must not be empty");
			continue;
		}
		if (strings[i].check != NULL && strings[i].check(v, &err) < 0) {
			mf_conf_errors_add(errors, NULL, 0, strings[i].var, "%s", err);
			continue;
		}
		free(*strings[i].target);
		/* Relative paths are relative to the config file, as in the file. */
		*strings[i].target = strings[i].path ? mf_conf_path(c->dir, v) : mf_xstrdup(v);
	}
	if (c->hostname != NULL)
		lower(c->hostname);
	for (int id = 0; id < MF_SERVICE_COUNT; id++) {
		struct mf_config_service *s = &c->services[id];
		char var[64];

		if ((v = env_get(env, env_name(id, "ADMIN", var, sizeof(var)))) != NULL) {
			if (mf_conf_parse_hostport(v, &s->admin, &err) < 0) {
				mf_conf_errors_add(errors, NULL, 0, var, "%s", err);
			} else {
				s->admin_set = true;
				s->enabled = true;
			}
		}
		if ((v = env_get(env, env_name(id, "LISTEN", var, sizeof(var)))) != NULL) {
			if (!service_listens((enum mf_service_id)id)) {
				mf_conf_errors_add(errors, NULL, 0, var, "%s does not take listen addresses",
						   service_names[id]);
			} else if (env_listen(s, v, &err) < 0) {
				mf_conf_errors_add(errors, NULL, 0, var, "%s", err);
			} else {
				s->enabled = true;
			}
		}
	}
}

/* --- loading --- */

static void config_defaults(struct mf_config *c, const char *name)
{
	c->path = mf_xstrdup(name);
	c->dir = mf_conf_dirname(name);
	c->nats_url = mf_xstrdup("nats://127.0.0.1:4222");
	c->redis_url = mf_xstrdup("redis://127.0.0.1:6379");
	c->log_level = mf_xstrdup("info");
	c->limits.max_connections = 1000;
	c->limits.max_connections_per_ip = 20;
	c->limits.max_message_size = 100 * 1024 * 1024;
	c->limits.command_timeout_ms = 5 * 60 * 1000;
	c->limits.drain_timeout_ms = 10 * 1000;
	c->redis_down = MF_REDIS_DOWN_ALLOW;
	c->dnsauth.timeout_ms = 5 * 1000;
	c->dnsauth.monitor_interval_ms = 60 * 60 * 1000;
	c->dnsauth.dkim_rsa_min_bits = 1024;
	c->services[MF_SERVICE_SMTP_IN].verify = true;
}

/* Checks what only makes sense once file and environment are combined. */
static void config_finish(struct mf_config *c, const struct mf_conf *conf, char *const *env,
			  struct mf_conf_errors *errors)
{
	const char *file = c->path;

	/* A key given with a bad value has had its error already. */
	if (c->hostname == NULL && mf_conf_find(conf->root, "hostname") == NULL &&
	    env_get(env, "MAILFLEET_HOSTNAME") == NULL)
		mf_conf_errors_add(errors, file, 0, "hostname",
				   "required but not set (or set MAILFLEET_HOSTNAME)");
	if (c->data_dir == NULL && mf_conf_find(conf->root, "data-dir") == NULL &&
	    env_get(env, "MAILFLEET_DATA_DIR") == NULL)
		mf_conf_errors_add(errors, file, 0, "data-dir",
				   "required but not set (or set MAILFLEET_DATA_DIR)");
	if (c->data_dir != NULL && c->blob_dir == NULL)
		c->blob_dir = mf_xasprintf("%s/blobs", c->data_dir);
	if (c->domains_file == NULL)
		c->domains_file = mf_conf_path(c->dir, "domains.conf");
	/* A tls block in the file has had its own check; this is for a
	 * certificate or key given only in the environment. */
	if ((c->tls_cert == NULL) != (c->tls_key == NULL) && mf_conf_find(conf->root, "tls") == NULL)
		mf_conf_errors_add(errors, file, 0, c->tls_cert == NULL ? "tls.cert" : "tls.key",
				   "required but not set (tls needs both cert and key)");
	for (int id = 0; id < MF_SERVICE_COUNT; id++) {
		struct mf_config_service *s = &c->services[id];
		char *path, var[64];

		if (!s->enabled)
			continue;
		const struct mf_conf_node *block = mf_conf_find(conf->root, service_names[id]);
		if (!s->admin_set && (block == NULL || mf_conf_find(block, "admin") == NULL) &&
		    env_get(env, env_name(id, "ADMIN", var, sizeof(var))) == NULL) {
			path = mf_xasprintf("%s.admin", service_names[id]);
			mf_conf_errors_add(errors, file, s->line, path, "required but not set");
			free(path);
		}
		for (size_t i = 0; i < s->listen_count; i++) {
			if (s->listen[i].security == MF_LISTEN_PLAIN || c->tls_cert != NULL)
				continue;
			path = mf_xasprintf("%s.listen", service_names[id]);
			mf_conf_errors_add(errors, file, s->line, path,
					   "%s:%u uses TLS but there is no tls block with cert and key",
					   s->listen[i].addr.host, s->listen[i].addr.port);
			free(path);
		}
	}
}

int mf_config_load_buf(const char *name, const char *data, size_t len, char *const *env,
		       struct mf_config **config_r, const char **error_r)
{
	struct mf_config *c = mf_xcalloc(1, sizeof(*c));
	struct mf_conf *conf = NULL;
	struct mf_conf_errors errors;
	struct mf_conf_walk walk;
	const char *err;
	int ret = -1;

	mf_conf_errors_init(&errors);
	config_defaults(c, name);
	if (mf_conf_parse_buf(name, data, len, &conf, &err) < 0) {
		mf_conf_errors_add(&errors, NULL, 0, NULL, "%s", err);
		goto out;
	}
	memset(&walk, 0, sizeof(walk));
	walk.file = name;
	walk.dir = c->dir;
	walk.errors = &errors;
	mf_conf_walk_block(&walk, conf->root, NULL, top_fields, c);
	apply_env(c, env, &errors);
	config_finish(c, conf, env, &errors);
	if (errors.count == 0) {
		*config_r = c;
		c = NULL;
		ret = 0;
	}
out:
	err = mf_conf_errors_finish(&errors);
	if (ret < 0)
		*error_r = err;
	mf_conf_free(&conf);
	mf_config_free(&c);
	return ret;
}

int mf_config_load(const char *path, struct mf_config **config_r, const char **error_r)
{
	struct mf_conf_errors errors;
	size_t len;
	const char *err;
	char *data = mf_fs_read_file(path, MF_CONF_FILE_MAX, &len, &err);
	int ret;

	if (data == NULL) {
		/* Through the collector so that error_r lives as documented. */
		mf_conf_errors_init(&errors);
		mf_conf_errors_add(&errors, NULL, 0, NULL, "%s", err);
		*error_r = mf_conf_errors_finish(&errors);
		return -1;
	}
	ret = mf_config_load_buf(path, data, len, environ, config_r, error_r);
	free(data);
	return ret;
}

void mf_config_free(struct mf_config **config)
{
	struct mf_config *c = *config;

	if (c == NULL)
		return;
	free(c->path);
	free(c->dir);
	free(c->hostname);
	free(c->data_dir);
	free(c->blob_dir);
	free(c->domains_file);
	free(c->nats_url);
	free(c->redis_url);
	free(c->log_level);
	free(c->tls_cert);
	free(c->tls_key);
	for (size_t i = 0; i < c->dnsauth.forward_count; i++)
		free(c->dnsauth.forward[i]);
	for (size_t i = 0; i < c->dnsauth.dnsbl_count; i++)
		free(c->dnsauth.dnsbl[i]);
	for (size_t i = 0; i < c->dnsauth.monitor_ip_count; i++)
		free(c->dnsauth.monitor_ip[i]);
	free(c->dnsauth.resolvconf);
	free(c->dnsauth.trust_anchor);
	free(c);
	*config = NULL;
}
