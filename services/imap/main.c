/* imap: owns the account stores and serves IMAP4rev2/IMAP4rev1 on 143
 * (STARTTLS) and 993 (implicit TLS).
 *
 * Start-up: the account store (store.h: databases, blobs, the store.v1.*
 * API over NATS), then the listeners; each connection runs an
 * imap_session on its own thread. */
#include <stdatomic.h>
#include <stdlib.h>

#include "authlimit.h"
#include "imap_session.h"
#include "log.h"
#include "service.h"
#include "tls.h"
#include "store.h"

static struct imap_server server;
/* Sessions running now: the store is freed only when none is left. */
static atomic_uint active_sessions;

static void handle_connection(struct mf_conn *conn, void *ctx)
{
	atomic_fetch_add(&active_sessions, 1);
	imap_session_run(conn, ctx);
	atomic_fetch_sub(&active_sessions, 1);
}

static int start(struct mf_service *svc, const char **error_r)
{
	const struct mf_config *cfg = mf_service_config(svc);
	const struct mf_config_service *sc = &cfg->services[MF_SERVICE_IMAP];

	if (store_start(svc, &server.store, error_r) < 0)
		return -1;
	server.hostname = cfg->hostname;
	server.allow_plaintext_auth = sc->allow_plaintext_auth;
	server.cram_md5 = sc->auth_cram_md5;
	server.tls_available = cfg->tls_cert != NULL;
	server.append_max = cfg->limits.max_message_size > 0 ? cfg->limits.max_message_size :
							       IMAP_APPEND_MAX_DEFAULT;
	server.conns_per_ip = cfg->limits.max_connections_per_ip > 0 ?
			      (unsigned)cfg->limits.max_connections_per_ip : IMAP_CONNS_PER_IP_MAX;
	server.conns_per_account = sc->max_connections_per_account > 0 ?
				   (unsigned)sc->max_connections_per_account :
				   IMAP_CONNS_PER_ACCOUNT_MAX;
	server.counts = imap_conn_counts_create();
	server.metrics = imap_metrics_create(mf_service_metrics(svc));
	server.ratelimit = mf_ratelimit_create(mf_service_redis(svc),
					       cfg->redis_down == MF_REDIS_DOWN_DENY ?
					       MF_RATELIMIT_REDIS_DOWN_DENY :
					       MF_RATELIMIT_REDIS_DOWN_ALLOW);
	if (server.ratelimit != NULL) {
		struct mf_authlimit_settings als;
		mf_authlimit_settings_from_config(cfg, &als);
		if (mf_authlimit_create(server.ratelimit, &als, &server.authlimit, error_r) < 0)
			return -1;
		mf_authlimit_register_metrics(server.authlimit, mf_service_metrics(svc), "imap");
	}
	return mf_service_listen(svc, "* BYE [UNAVAILABLE] too many connections, try again later\r\n",
				 handle_connection, &server, error_r);
}

static void stop(struct mf_service *svc)
{
	unsigned left = atomic_load(&active_sessions);

	if (left > 0) {
		/* The drain timed out: sessions still use the store, so it
		 * stays (the process is exiting; SQLite's WAL keeps every
		 * commit). */
		mf_log_warn(NULL, NULL, "sessions still running at stop; store left open",
			    "sessions=%u", left);
		return;
	}
	store_stop(&server.store);
	imap_conn_counts_free(&server.counts);
	imap_metrics_free(&server.metrics);
	mf_authlimit_free(&server.authlimit);
	mf_ratelimit_free(&server.ratelimit);
}

int main(int argc, char **argv)
{
	static const struct mf_service_def def = {
		.id = MF_SERVICE_IMAP,
		.tls_flags = MF_TLS_REQUEST_CLIENT_CERT,  /* TLS client-certificate logins */
		.needs_redis = true,  /* login throttling shared across replicas */
		.start = start,
		.stop = stop,
	};
	return mf_service_main(&def, argc, argv);
}
