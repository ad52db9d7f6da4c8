/* service: what every mailfleet service does the same way.
 *
 * mf_service_main loads mailfleet.conf (with environment overrides) and
 * domains.conf, sets log levels, serves /metrics, /healthz and /readyz on
 * the service's admin port, connects to NATS (and Redis when the service
 * needs it) in the background, reloads domains.conf on config.v1.changed and
 * SIGHUP, calls the service's start function, and on SIGTERM/SIGINT drains:
 * /readyz turns 503, listeners stop accepting, connections and bus workers
 * finish, and the process exits 0.
 *
 * Start-up errors (bad config, port in use) are logged with the file, line
 * and field or the address, and the process exits 1. */
#ifndef MF_SERVICE_H
#define MF_SERVICE_H

#include <stdbool.h>

#include "bus.h"
#include "config.h"
#include "metrics.h"
#include "net.h"
#include "redis.h"

/* Requests each service answers at once per served subject. */
#define MF_SERVICE_BUS_WORKERS 4
/* How long a service waits for a reply from another one by default. */
#define MF_SERVICE_REQUEST_TIMEOUT_MS 10000

struct mf_service;

struct mf_service_def {
	enum mf_service_id id;
	bool needs_redis;
	/* Flags for the listeners' TLS context (tls.h), e.g.
	 * MF_TLS_REQUEST_CLIENT_CERT for client-certificate logins. */
	unsigned tls_flags;
	/* Registers the service's endpoints, listeners and metrics.  Runs after
	 * config, metrics, admin HTTP, bus and Redis handles exist (the
	 * connections may still be coming up).  Returns 0, or -1 with error_r:
	 * the service then exits 1. */
	int (*start)(struct mf_service *svc, const char **error_r);
	/* Optional: called while draining, after listeners stopped accepting
	 * and before the bus closes. */
	void (*stop)(struct mf_service *svc);
};

/* Runs the service until SIGTERM/SIGINT.  argv: [-c mailfleet.conf]
 * (default $MAILFLEET_CONFIG, else ./mailfleet.conf).  Returns the process
 * exit code. */
int mf_service_main(const struct mf_service_def *def, int argc, char **argv);

/* Accessors; the objects live until mf_service_main returns. */
const char *mf_service_get_name(const struct mf_service *svc);
const struct mf_config *mf_service_config(const struct mf_service *svc);
struct mf_bus *mf_service_bus(struct mf_service *svc);
struct mf_redis *mf_service_redis(struct mf_service *svc);   /* NULL unless needs_redis */
struct mf_metrics *mf_service_metrics(struct mf_service *svc);

/* Starts the listeners configured for this service (listen lines), served by
 * handler(conn, ctx) on a thread per connection.  busy_reply is written to
 * connections over limits.max-connections.  Connection metrics are
 * registered.  Drained automatically on SIGTERM.  Returns 0, or -1 with
 * error_r naming the port ("smtp-in: listen 127.0.0.1:1025: address already
 * in use"). */
int mf_service_listen(struct mf_service *svc, const char *busy_reply,
		      mf_net_handler_fn *handler, void *ctx, const char **error_r);

/* Serves subject (queue group: the service name) with a PERMANENT error
 * "<what> is not available yet in this version of mailfleet": for endpoints
 * whose implementation has not landed, never a fake success. */
int mf_service_serve_unavailable(struct mf_service *svc, const char *subject,
				 const char *what, const char **error_r);

#endif
