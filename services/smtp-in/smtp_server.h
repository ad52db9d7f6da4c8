/* smtp_server: what every smtp-in connection shares: the service, the blob
 * store, the rate limiter, metric handles and the named limits.
 *
 * Limits (all on input from the internet, before any authentication since
 * smtp-in has none):
 *   command line    SMTP_COMMAND_LINE_MAX (smtp_command.h)
 *   text line       MF_NET_LINE_MAX in DATA; longer closes the connection
 *   recipients      SMTP_IN_RCPT_MAX per transaction (LIMITS RCPTMAX)
 *   message size    limits.max-message-size (SIZE)
 *   header section  SMTP_DATA_HEADER_MAX
 *   transactions    SMTP_IN_TRANSACTIONS_MAX per connection
 *   errors          SMTP_IN_ERRORS_MAX per connection, tarpit after
 *                   SMTP_IN_TARPIT_AFTER
 *   idle            limits.command-timeout per read; SMTP_IN_SESSION_MAX_MS
 *                   for the whole connection
 *   connections     limits.max-connections, limits.max-connections-per-ip */
#ifndef SMTP_SERVER_H
#define SMTP_SERVER_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "blob.h"
#include "metrics.h"
#include "ratelimit.h"
#include "service.h"

#define SMTP_IN_RCPT_MAX 100             /* RFC 5321 4.5.3.1.8: at least 100 */
#define SMTP_IN_TRANSACTIONS_MAX 1000
#define SMTP_IN_ERRORS_MAX 20
#define SMTP_IN_TARPIT_AFTER 3
#define SMTP_IN_TARPIT_STEP_MS 500
#define SMTP_IN_TARPIT_MAX_MS 5000
#define SMTP_IN_SESSION_MAX_MS (60ull * 60 * 1000)
#define SMTP_IN_DELIVER_TIMEOUT_MS 30000
/* Blob writes are batched to this many bytes. */
#define SMTP_IN_WRITE_CHUNK (64 * 1024)
/* BDAT chunk bytes read at once. */
#define SMTP_IN_BDAT_PIECE (64 * 1024)

/* Default rate limits per IP address (IPv4 /32, IPv6 /64) when the config
 * has no ratelimit { smtp-in-connections / smtp-in-messages }; the wider
 * networks (/26 and /48, /21 and /32) get SMTP_IN_NET_FACTOR_1 and _2 times
 * as much, so a spammer rotating through one network is still caught. */
#define SMTP_IN_CONN_RATES { { 60, 60 * 1000 }, { 5000, 24 * 3600 * 1000 } }
#define SMTP_IN_MSG_RATES { { 120, 60 * 1000 }, { 10000, 24 * 3600 * 1000 } }
#define SMTP_IN_NET_FACTOR_1 5
#define SMTP_IN_NET_FACTOR_2 20

enum smtp_in_deliveries {
	SMTP_IN_DELIVERED,
	SMTP_IN_REJECTED,      /* refused before the store (content, limits) */
	SMTP_IN_TEMPORARY,     /* the store or a dependency failed for now */
	SMTP_IN_PERMANENT,     /* the store refused (quota, account) */
	SMTP_IN_DELIVERIES_COUNT,
};

struct smtp_ip_count;

struct smtp_server {
	struct mf_service *svc;
	const struct mf_config *config;
	struct mf_blob_store *blobs;
	struct mf_ratelimit *rl;     /* NULL without Redis (tests) */
	/* limits for connections and messages, one per configured rate */
	struct mf_ratelimit_ip_limits conn_limits[MF_CONFIG_RATES_MAX];
	size_t conn_limits_count;
	struct mf_ratelimit_ip_limits msg_limits[MF_CONFIG_RATES_MAX];
	size_t msg_limits_count;
	char limit_names[4 * MF_CONFIG_RATES_MAX * MF_RATELIMIT_IP_LEVELS][MF_RATELIMIT_NAME_MAX];
	size_t limit_names_used;
	uint64_t max_message_size;

	/* metrics (NULL-safe when not registered) */
	struct mf_metric *m_connections;   /* {result} */
	struct mf_metric *m_deliveries;    /* {result} */
	struct mf_metric *m_commands;      /* histogram {command} */
	struct mf_metric *m_ratelimited;   /* {what} */
	struct mf_metric *m_tls;           /* {result} STARTTLS handshakes */
	struct mf_metric *m_tarpit;

	/* concurrent connections per IP */
	pthread_mutex_t ip_lock;
	struct smtp_ip_count *ips;
	size_t ips_count, ips_alloc;
};

/* Fills the default limits and registers metrics (svc may be NULL in
 * tests: then nothing is registered). */
void smtp_server_init(struct smtp_server *srv, struct mf_service *svc,
		      const struct mf_config *config);
void smtp_server_deinit(struct smtp_server *srv);

/* Connection handler for mf_service_listen (ctx: struct smtp_server). */
void smtp_session_handle(struct mf_conn *conn, void *ctx);

#endif
