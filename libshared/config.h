/* config: the static configuration, mailfleet.conf, read once at start-up,
 * with environment overrides for containers (MAILFLEET_*).
 *
 * The schema is a table (config.c); unknown keys are errors, and every
 * error names file, line and field: "mailfleet.conf:12: smtp-in.listen: ...".
 * Environment errors name the variable: "MAILFLEET_NATS_URL: ...".
 * See deploy/local/mailfleet.conf.example for every key. */
#ifndef MF_CONFIG_H
#define MF_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "conf.h"

#define MF_CONFIG_LISTEN_MAX 16  /* listen lines per service */

enum mf_service_id {
	MF_SERVICE_SMTP_IN,
	MF_SERVICE_SUBMISSION,
	MF_SERVICE_IMAP,
	MF_SERVICE_QUEUE,
	MF_SERVICE_DELIVERY,
	MF_SERVICE_DNSAUTH,
	MF_SERVICE_REPORTS,
	MF_SERVICE_WEB,
	MF_SERVICE_COUNT
};

/* Returns the name ("smtp-in"), or NULL for an id out of range. */
const char *mf_service_name(enum mf_service_id id);
/* Returns the id for a name, or -1. */
int mf_service_by_name(const char *name);

enum mf_listen_security {
	MF_LISTEN_PLAIN,     /* no TLS (the default) */
	MF_LISTEN_TLS,       /* implicit TLS */
	MF_LISTEN_STARTTLS,  /* plain, upgraded by STARTTLS */
};

struct mf_config_listen {
	struct mf_conf_hostport addr;
	enum mf_listen_security security;
	bool proxy;  /* connections start with a PROXY protocol header (v1/v2) */
};

struct mf_config_service {
	bool enabled;   /* its block is present, or it was configured from the environment */
	unsigned line;  /* line of its block; 0 when configured only from the environment */
	struct mf_conf_hostport admin;  /* /metrics, /healthz, /readyz */
	bool admin_set;
	struct mf_config_listen listen[MF_CONFIG_LISTEN_MAX];
	size_t listen_count;
	bool local_delivery;  /* delivery: hand outgoing mail to local accounts */
	/* delivery: worker threads (0: 4), JetStream ack wait (0: 30s), per
	 * SMTP reply (0: RFC 5321 4.5.3.2 timeouts); test-smtp-port is for
	 * tests only: the port of MX hosts instead of 25. */
	uint64_t threads;
	uint64_t ack_wait_ms;
	uint64_t smtp_timeout_ms;
	uint64_t test_smtp_port;
	/* queue: lease of a dispatched job (0: the queue's default), how long
	 * retired history is kept for accounts without keep-retired-messages
	 * (0: 14 days); test-first-backoff is for tests only (0: 7.5 minutes). */
	uint64_t lease_ms;
	uint64_t retired_keep_ms;
	uint64_t test_first_backoff_ms;
	bool allow_plaintext_auth;  /* imap: LOGIN/AUTHENTICATE before TLS (loopback setups) */
	/* imap, submission: offer SASL CRAM-MD5 (auth-cram-md5; default no:
	 * clients that prefer it over PLAIN would fail for accounts without
	 * CRAM-MD5 material, see mailfleet account options). */
	bool auth_cram_md5;
	uint64_t max_connections_per_account;  /* imap: 0 means the service's default */
	/* smtp-in: check every message with dnsauth (auth.v1.verify) before
	 * accepting it; default yes.  "verify no" accepts without checking and
	 * writes no Authentication-Results (setups without dnsauth). */
	bool verify;
};

/* dnsauth: how it resolves, and what it checks against (RFC 5782 DNSBLs). */
#define MF_CONFIG_DNS_FORWARD_MAX 8
#define MF_CONFIG_DNSBL_MAX 16
#define MF_CONFIG_MONITOR_IP_MAX 16

enum mf_dns_resolver {
	MF_DNS_RECURSIVE,   /* "resolver recursive": from the root (the default) */
	MF_DNS_FORWARD,     /* "resolver forward ADDR[@PORT]...": to these servers */
	MF_DNS_RESOLVCONF,  /* "resolver resolvconf PATH": the servers in that file */
	MF_DNS_NONE,        /* "resolver none": no DNS; every lookup fails at once with
			     * a temporary error (setups without network) */
};

struct mf_config_dnsauth {
	enum mf_dns_resolver resolver;
	char *forward[MF_CONFIG_DNS_FORWARD_MAX];  /* "127.0.0.1@5353" */
	size_t forward_count;
	char *resolvconf;
	char *trust_anchor;           /* DNSSEC trust anchor file; NULL: no validation */
	uint64_t timeout_ms;          /* per DNS lookup */
	char *dnsbl[MF_CONFIG_DNSBL_MAX];          /* zones, e.g. "zen.example.org" */
	size_t dnsbl_count;
	char *monitor_ip[MF_CONFIG_MONITOR_IP_MAX];  /* our own IPs to watch on the DNSBLs */
	size_t monitor_ip_count;
	uint64_t monitor_interval_ms;
	/* DKIM verification policy (services/dnsauth/dkim.h). */
	bool dkim_allow_sha1;         /* rsa-sha1 signatures may pass (RFC 8301: no) */
	bool dkim_allow_length;       /* l= signatures verified (partial) rather than refused */
	uint64_t dkim_rsa_min_bits;   /* smaller RSA keys give "policy"; default 1024 */
};

/* A rate "count per period" (ratelimit.h mf_ratelimit_rate_parse syntax,
 * "60/1m"). */
#define MF_CONFIG_RATES_MAX 2
struct mf_config_rate {
	uint32_t count;
	uint64_t period_ms;
};

enum mf_redis_down {
	MF_REDIS_DOWN_ALLOW,  /* rate limits are not enforced while Redis is down */
	MF_REDIS_DOWN_DENY,   /* connections get temporary errors while Redis is down */
};

struct mf_config {
	char *path;          /* the file as given */
	char *dir;           /* its directory; relative paths are relative to it */
	char *hostname;      /* lower-case ASCII */
	char *data_dir;
	char *blob_dir;      /* default <data-dir>/blobs */
	char *domains_file;  /* default domains.conf beside mailfleet.conf */
	char *nats_url;
	char *redis_url;
	char *log_level;     /* a spec for mf_log_apply_spec; default "info" */
	char *tls_cert;      /* NULL when there is no tls block */
	char *tls_key;
	struct {
		uint64_t max_connections;
		uint64_t max_connections_per_ip;
		uint64_t max_message_size;    /* bytes */
		uint64_t command_timeout_ms;
		uint64_t drain_timeout_ms;
	} limits;
	enum mf_redis_down redis_down;
	/* smtp-in rate limits (ratelimit { smtp-in-connections / smtp-in-messages }):
	 * rates per IP address (IPv4 /32, IPv6 /64); smtp-in gives the wider
	 * networks (/26 and /48, /21 and /32) 5 and 20 times as much.  Not set:
	 * smtp-in's defaults; "none": count 0, no limit. */
	struct mf_config_rate smtpin_conn_rates[MF_CONFIG_RATES_MAX];
	size_t smtpin_conn_rates_count;
	bool smtpin_conn_rates_set;
	struct mf_config_rate smtpin_msg_rates[MF_CONFIG_RATES_MAX];
	size_t smtpin_msg_rates_count;
	bool smtpin_msg_rates_set;
	/* Login failures (ratelimit { auth-failures-slow / -block / -account };
	 * libshared/authlimit.h): one rate each, whose count is also the
	 * burst.  Not set: authlimit's defaults; "none": count 0, no limit. */
	struct mf_config_rate auth_slow, auth_block, auth_account;
	bool auth_slow_set, auth_block_set, auth_account_set;
	struct mf_config_service services[MF_SERVICE_COUNT];
	struct mf_config_dnsauth dnsauth;
};

/* Loads path, then applies the environment overrides.  Returns 0 and a
 * config (free with mf_config_free), or -1 with error_r holding every error
 * found, one per line; that text lives in a per-thread slot that stays valid
 * until this thread calls mf_config_load or an mf_domains function again. */
int mf_config_load(const char *path, struct mf_config **config_r, const char **error_r);
/* The same from memory; name is used in errors and its directory as the
 * base of relative paths.  env is "NAME=value" strings ending with NULL
 * (pass environ for the process environment, NULL for none). */
int mf_config_load_buf(const char *name, const char *data, size_t len, char *const *env,
		       struct mf_config **config_r, const char **error_r);
void mf_config_free(struct mf_config **config);

#endif
