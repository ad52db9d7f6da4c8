/* sub_server: what every submission connection shares (the service, the
 * blob store, Redis, the rate limiter, metrics) and the named limits.
 *
 * Limits on client input (tighter before authentication):
 *   command line     SMTP_COMMAND_LINE_MAX (smtp_command.h)
 *   SASL line        SUB_SASL_LINE_MAX; decoded messages MF_SASL_MESSAGE_MAX
 *                    and steps MF_SASL_STEPS_MAX (sasl.h)
 *   auth attempts    SUB_AUTH_ATTEMPTS_MAX per connection; failures per
 *                    IP/network and login through Redis (authlimit.h:
 *                    slowed, then refused)
 *   errors           SUB_ERRORS_MAX per connection (SUB_PREAUTH_ERRORS_MAX
 *                    before AUTH), slower replies after SUB_TARPIT_AFTER
 *   text line        MF_NET_LINE_MAX in DATA; longer closes the connection
 *   header section   SUB_HEADER_MAX (sub_header.h)
 *   message size     limits.max-message-size (SIZE)
 *   recipients       SUB_RCPT_MAX per transaction (LIMITS RCPTMAX)
 *   transactions     SUB_TRANSACTIONS_MAX per connection
 *   idle             limits.command-timeout per read; SUB_SESSION_MAX_MS
 *                    for the whole connection */
#ifndef SUB_SERVER_H
#define SUB_SERVER_H

#include <stdbool.h>
#include <stdint.h>

#include "blob.h"
#include "metrics.h"
#include "ratelimit.h"
#include "authlimit.h"
#include "redis.h"
#include "service.h"

#define SUB_RCPT_MAX 1000          /* as the queue takes in one add */
#define SUB_TRANSACTIONS_MAX 1000
#define SUB_ERRORS_MAX 20
#define SUB_PREAUTH_ERRORS_MAX 10
#define SUB_TARPIT_AFTER 3
#define SUB_TARPIT_STEP_MS 500
#define SUB_TARPIT_MAX_MS 5000
#define SUB_SESSION_MAX_MS (60ull * 60 * 1000)
#define SUB_AUTH_ATTEMPTS_MAX 5
/* A SASL response line: base64 of the longest message sasl.h takes. */
#define SUB_SASL_LINE_MAX 8192
#define SUB_AUTH_TIMEOUT_MS 10000
/* Blob writes are batched to this many bytes. */
#define SUB_WRITE_CHUNK (64 * 1024)
#define SUB_BDAT_PIECE (64 * 1024)

struct sub_server {
	struct mf_service *svc;
	const struct mf_config *config;
	struct mf_blob_store *blobs;
	struct mf_redis *redis;      /* NULL without Redis (tests) */
	struct mf_ratelimit *rl;     /* NULL without Redis (tests) */
	struct mf_authlimit *authlimit;  /* login throttling; NULL without Redis */
	bool redis_down_allow;       /* ratelimit { redis-down allow } */
	uint64_t max_message_size;

	/* metrics (NULL-safe when not registered) */
	struct mf_metric *m_connections;   /* {result} */
	struct mf_metric *m_auth;          /* {result} */
	struct mf_metric *m_messages;      /* {result} */
	struct mf_metric *m_commands;      /* histogram {command} */
	struct mf_metric *m_tls;           /* {result} STARTTLS handshakes */
	struct mf_metric *m_tarpit;
};

/* Fills the limits and registers metrics (svc may be NULL in tests). */
void sub_server_init(struct sub_server *srv, struct mf_service *svc,
		     const struct mf_config *config);

/* Connection handler for mf_service_listen (ctx: struct sub_server). */
void sub_session_handle(struct mf_conn *conn, void *ctx);

#endif
