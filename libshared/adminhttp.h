/* adminhttp: the small HTTP server every service runs for operations
 * (libmicrohttpd, one internal thread):
 *
 *   GET /metrics  the metrics registry, Prometheus text format 0.0.4
 *   GET /healthz  200 "ok" while alive and not stopping, else 503 "stopping"
 *   GET /readyz   200 "ready" when every readiness check passes; else 503
 *                 with "draining", "stopping", or one "<name>: <reason>"
 *                 line per failing check (e.g. "nats: not connected")
 *   other paths   404; methods other than GET: 405
 *
 * Requests are counted in mailfleet_<service>_admin_requests_total{path,code}
 * (the service name with "-" as "_"). */
#ifndef MF_ADMINHTTP_H
#define MF_ADMINHTTP_H

#include <stdbool.h>

#include "metrics.h"

#define MF_ADMINHTTP_CHECKS_MAX 16
#define MF_ADMINHTTP_CONNECTIONS_MAX 16   /* concurrent admin connections */
#define MF_ADMINHTTP_TIMEOUT_SECS 10      /* idle connection timeout */
#define MF_ADMINHTTP_MEMORY_MAX (32 * 1024) /* per-connection request memory */

struct mf_adminhttp;

/* Readiness check of one dependency.  Returns 0 when ready, or -1 with a
 * short reason in error_r ("not connected").  It runs on the HTTP thread
 * while a /readyz request waits: it must be thread-safe and quick (report
 * state kept by the service; do not make network calls). */
typedef int mf_adminhttp_check_fn(void *ctx, const char **error_r);

/* Creates a server for service (e.g. "smtp-in": lower-case letters, digits
 * and "-", as it becomes part of a metric name) serving metrics, and
 * registers its request counter in metrics.  Both must outlive the server.
 * Returns the server; free with mf_adminhttp_free. */
struct mf_adminhttp *mf_adminhttp_create(const char *service, struct mf_metrics *metrics);

/* Adds a readiness check named name (e.g. "nats"); before start only.
 * Too many checks is a programming error (mf_fatal). */
void mf_adminhttp_add_check(struct mf_adminhttp *h, const char *name,
			    mf_adminhttp_check_fn *fn, void *ctx);

/* Listens on host:port (numeric IPv4 or IPv6 address, or a name; port 0
 * picks a free port) and serves from an internal thread.  Returns 0, or -1
 * with error_r naming the address, e.g.
 * "smtp-in: admin listen 127.0.0.1:1081: address already in use". */
int mf_adminhttp_start(struct mf_adminhttp *h, const char *host, unsigned port,
		       const char **error_r);

/* Returns the port listened on (useful after port 0), or 0 when stopped. */
unsigned mf_adminhttp_port(const struct mf_adminhttp *h);

/* Draining: /readyz answers 503 "draining" so load balancers stop sending
 * work while the service finishes what it has; /healthz stays 200. */
void mf_adminhttp_set_draining(struct mf_adminhttp *h, bool draining);
/* Stopping: /healthz and /readyz answer 503 "stopping" (not reversible). */
void mf_adminhttp_set_stopping(struct mf_adminhttp *h);

/* Stops the server and waits for its thread; open requests are closed.
 * Safe to call when not started. */
void mf_adminhttp_stop(struct mf_adminhttp *h);
/* Stops and frees the server; sets *h to NULL. */
void mf_adminhttp_free(struct mf_adminhttp **h);

#endif
