#include "service.h"

#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "adminhttp.h"
#include "buf.h"
#include "config.pb-c.h"
#include "domains.h"
#include "error.h"
#include "log.h"
#include "tls.h"

#define MF_SERVICE_VERSION "0.1.0"
/* Prefix of metric names: "mailfleet_" + the service name with '_'. */
#define METRIC_PREFIX_MAX 48

struct mf_service {
	const struct mf_service_def *def;
	const char *name;
	char metric_prefix[METRIC_PREFIX_MAX];
	struct mf_config *config;
	struct mf_metrics *metrics;
	struct mf_adminhttp *admin;
	struct mf_bus *bus;
	struct mf_redis *redis;
	SSL_CTX *tls_ctx;
	struct mf_net_server *net;
	struct mf_metric *config_reloads;
	pthread_mutex_t reload_lock;
};

const char *mf_service_get_name(const struct mf_service *svc) { return svc->name; }
const struct mf_config *mf_service_config(const struct mf_service *svc) { return svc->config; }
struct mf_bus *mf_service_bus(struct mf_service *svc) { return svc->bus; }
struct mf_redis *mf_service_redis(struct mf_service *svc) { return svc->redis; }
struct mf_metrics *mf_service_metrics(struct mf_service *svc) { return svc->metrics; }

/* Returns a metric name for this service: mailfleet_<service>_<rest>.
 * The string lives in a small static ring: names are copied at registration. */
static const char *metric_name(const struct mf_service *svc, const char *rest)
{
	return mf_errorf("%s_%s", svc->metric_prefix, rest);
}

/* --- readiness and metrics of the connections ------------------------- */

static int check_nats(void *ctx, const char **error_r)
{
	struct mf_service *svc = ctx;

	if (mf_bus_connected(svc->bus))
		return 0;
	*error_r = mf_errorf("not connected (%s)", svc->config->nats_url);
	return -1;
}

static int check_redis(void *ctx, const char **error_r)
{
	struct mf_service *svc = ctx;

	if (mf_redis_ready(svc->redis))
		return 0;
	*error_r = mf_errorf("not reachable (%s)", mf_redis_url_redacted(svc->redis));
	return -1;
}

static double read_nats_connected(void *ctx)
{
	return mf_bus_connected(((struct mf_service *)ctx)->bus) ? 1 : 0;
}

static double read_redis_ready(void *ctx)
{
	return mf_redis_ready(((struct mf_service *)ctx)->redis) ? 1 : 0;
}

#define BUS_STAT_READER(field)                                   \
	static double read_bus_##field(void *ctx)                \
	{                                                        \
		struct mf_bus_stats st;                          \
		mf_bus_get_stats(((struct mf_service *)ctx)->bus, &st); \
		return (double)st.field;                         \
	}
BUS_STAT_READER(reconnects)
BUS_STAT_READER(requests_sent)
BUS_STAT_READER(request_failures)
BUS_STAT_READER(requests_served)
BUS_STAT_READER(request_errors)

#define REDIS_STAT_READER(field)                                       \
	static double read_redis_##field(void *ctx)                    \
	{                                                              \
		struct mf_redis_stats st;                              \
		mf_redis_get_stats(((struct mf_service *)ctx)->redis, &st); \
		return (double)st.field;                               \
	}
REDIS_STAT_READER(commands)
REDIS_STAT_READER(errors)
REDIS_STAT_READER(unavailable)

#define NET_STAT_READER(field)                                          \
	static double read_net_##field(void *ctx)                       \
	{                                                               \
		struct mf_net_stats st;                                 \
		mf_net_server_stats(((struct mf_service *)ctx)->net, &st); \
		return (double)st.field;                                \
	}
NET_STAT_READER(current)
NET_STAT_READER(accepted_total)
NET_STAT_READER(refused_busy_total)
NET_STAT_READER(tls_failures_total)
NET_STAT_READER(proxy_errors_total)

static void register_base_metrics(struct mf_service *svc)
{
	static const char *const versions[] = { MF_SERVICE_VERSION, NULL };
	static const struct mf_metric_label version_label[] = { { "version", versions }, { NULL, NULL } };
	static const char *const results[] = { "ok", "error", NULL };
	static const struct mf_metric_label result_label[] = { { "result", results }, { NULL, NULL } };
	struct mf_metrics *m = svc->metrics;
	struct mf_metric *info;

	info = mf_metrics_gauge(m, metric_name(svc, "build_info"),
				"Always 1; the label carries the mailfleet version.", version_label);
	mf_series_set(mf_metric_series(info, MF_SERVICE_VERSION), 1);
	mf_series_set(mf_metric_series(mf_metrics_gauge(m, metric_name(svc, "start_time_seconds"),
							"Start time of the process, Unix seconds.", NULL)),
		      (double)time(NULL));
	svc->config_reloads = mf_metrics_counter(m, metric_name(svc, "config_reloads_total"),
						 "Reloads of domains.conf by result.", result_label);

	mf_metrics_gauge_func(m, metric_name(svc, "nats_connected"),
			      "1 while connected to NATS.", read_nats_connected, svc);
	mf_metrics_counter_func(m, metric_name(svc, "nats_reconnects_total"),
				"Reconnections to NATS.", read_bus_reconnects, svc);
	mf_metrics_counter_func(m, metric_name(svc, "bus_requests_sent_total"),
				"Requests this service sent to other services.", read_bus_requests_sent, svc);
	mf_metrics_counter_func(m, metric_name(svc, "bus_request_failures_total"),
				"Requests sent that got no valid reply.", read_bus_request_failures, svc);
	mf_metrics_counter_func(m, metric_name(svc, "bus_requests_served_total"),
				"Requests this service answered.", read_bus_requests_served, svc);
	mf_metrics_counter_func(m, metric_name(svc, "bus_request_errors_total"),
				"Requests answered with an error, malformed or busy.",
				read_bus_request_errors, svc);
	if (svc->redis == NULL)
		return;
	mf_metrics_gauge_func(m, metric_name(svc, "redis_ready"),
			      "1 while Redis answers.", read_redis_ready, svc);
	mf_metrics_counter_func(m, metric_name(svc, "redis_commands_total"),
				"Redis commands asked for.", read_redis_commands, svc);
	mf_metrics_counter_func(m, metric_name(svc, "redis_errors_total"),
				"Redis commands answered with an error.", read_redis_errors, svc);
	mf_metrics_counter_func(m, metric_name(svc, "redis_unavailable_total"),
				"Redis commands that failed because Redis was unreachable.",
				read_redis_unavailable, svc);
}

/* --- domains.conf reload ---------------------------------------------- */

static void reload_domains(struct mf_service *svc, const char *why)
{
	const char *err;

	pthread_mutex_lock(&svc->reload_lock);
	if (mf_domains_reload(svc->config->domains_file, &err) < 0) {
		mf_log_error(NULL, NULL, "domains.conf reload failed; keeping the previous one",
			     "why=%s error=%s", why, err);
		mf_metric_inc(svc->config_reloads, "error");
	} else {
		mf_log_info(NULL, NULL, "domains.conf reloaded", "why=%s", why);
		mf_metric_inc(svc->config_reloads, "ok");
	}
	pthread_mutex_unlock(&svc->reload_lock);
}

static void on_config_changed(void *ctx, const char *subject, const uint8_t *data, size_t len)
{
	reload_domains(ctx, subject);
}

/* Log levels changed at run time (mailfleet loglevel): not persisted. */
static void on_loglevel(void *ctx, const char *subject, const uint8_t *data, size_t len)
{
	Mailfleet__V1__LogLevel *msg = mailfleet__v1__log_level__unpack(NULL, len, data);
	const char *err;

	if (msg == NULL) {
		mf_log_warn(NULL, NULL, "malformed log level event", "subject=%s", subject);
		return;
	}
	if (mf_log_apply_spec(msg->spec, &err) < 0)
		mf_log_warn(NULL, NULL, "log level change refused", "spec=%s error=%s", msg->spec, err);
	else
		mf_log(MF_LOG_INFO, NULL, NULL, "log levels changed", "spec=%s", msg->spec);
	mailfleet__v1__log_level__free_unpacked(msg, NULL);
}

/* --- listeners ---------------------------------------------------------- */

int mf_service_listen(struct mf_service *svc, const char *busy_reply,
		      mf_net_handler_fn *handler, void *ctx, const char **error_r)
{
	const struct mf_config_service *sc = &svc->config->services[svc->def->id];
	struct mf_net_settings settings = {
		.service = svc->name,
		.max_conns = (unsigned)svc->config->limits.max_connections,
		.busy_reply = busy_reply,
		.handler = handler,
		.ctx = ctx,
		.timeout_ms = (unsigned)svc->config->limits.command_timeout_ms,
	};
	bool need_tls = false;

	if (svc->net != NULL) {
		*error_r = "listeners started twice";
		return -1;
	}
	if (sc->listen_count == 0) {
		*error_r = mf_errorf("%s: no listen lines in the configuration", svc->name);
		return -1;
	}
	for (size_t i = 0; i < sc->listen_count; i++)
		need_tls |= sc->listen[i].security != MF_LISTEN_PLAIN;
	if (need_tls) {
		if (svc->config->tls_cert == NULL) {
			*error_r = mf_errorf("%s: TLS listeners need a tls block with cert and key",
					     svc->name);
			return -1;
		}
		if (mf_tls_server_ctx_new(svc->config->tls_cert, svc->config->tls_key, svc->def->tls_flags,
					  &svc->tls_ctx, error_r) < 0)
			return -1;
		settings.tls_ctx = svc->tls_ctx;
	}
	if (mf_net_server_create(&settings, &svc->net, error_r) < 0)
		return -1;
	for (size_t i = 0; i < sc->listen_count; i++) {
		const struct mf_config_listen *l = &sc->listen[i];
		enum mf_net_mode mode = l->security == MF_LISTEN_TLS ? MF_NET_TLS :
					l->security == MF_LISTEN_STARTTLS ? MF_NET_STARTTLS : MF_NET_PLAIN;
		const char *addr = strchr(l->addr.host, ':') != NULL ?
			mf_errorf("[%s]:%u", l->addr.host, l->addr.port) :
			mf_errorf("%s:%u", l->addr.host, l->addr.port);

		if (mf_net_server_listen(svc->net, addr, mode, l->proxy, error_r) < 0)
			return -1;
	}
	struct mf_metrics *m = svc->metrics;
	mf_metrics_gauge_func(m, metric_name(svc, "connections_open"),
			      "Client connections open now.", read_net_current, svc);
	mf_metrics_counter_func(m, metric_name(svc, "connections_accepted_total"),
				"Client connections accepted, including those refused as busy.",
				read_net_accepted_total, svc);
	mf_metrics_counter_func(m, metric_name(svc, "connections_refused_busy_total"),
				"Connections refused over the connection limit.",
				read_net_refused_busy_total, svc);
	mf_metrics_counter_func(m, metric_name(svc, "tls_handshake_failures_total"),
				"Failed TLS handshakes.", read_net_tls_failures_total, svc);
	mf_metrics_counter_func(m, metric_name(svc, "proxy_header_errors_total"),
				"Missing or invalid PROXY protocol headers.",
				read_net_proxy_errors_total, svc);
	return 0;
}

/* --- endpoints that are not built yet ----------------------------------- */

static void answer_unavailable(void *ctx, const struct mf_bus_request *req,
			       struct mf_bus_response *resp)
{
	mf_bus_response_set(resp, MF_BUS_PERMANENT,
			    "%s: %s is not available yet in this version of mailfleet",
			    req->subject, (const char *)ctx);
}

int mf_service_serve_unavailable(struct mf_service *svc, const char *subject,
				 const char *what, const char **error_r)
{
	return mf_bus_serve(svc->bus, subject, svc->name, 1, answer_unavailable,
			    (void *)what, error_r);
}

/* --- main ----------------------------------------------------------------- */

static const char *config_path(int argc, char **argv, int *rc_r)
{
	const char *path = getenv("MAILFLEET_CONFIG");
	int c;

	*rc_r = 0;
	optind = 1;
	while ((c = getopt(argc, argv, "c:hV")) != -1) {
		switch (c) {
		case 'c':
			path = optarg;
			break;
		case 'V':
			printf("mailfleet %s\n", MF_SERVICE_VERSION);
			return NULL;
		default:
			fprintf(stderr, "usage: %s [-c mailfleet.conf] [-V]\n", argv[0]);
			*rc_r = 2;
			return NULL;
		}
	}
	return path != NULL && path[0] != '\0' ? path : "mailfleet.conf";
}

/* Logs each line of a (possibly multi-line) error at fatal level. */
static void log_error_lines(const char *what, const char *error)
{
	const char *p = error;

	while (*p != '\0') {
		const char *nl = strchr(p, '\n');
		size_t len = nl != NULL ? (size_t)(nl - p) : strlen(p);
		if (len > 0)
			mf_log(MF_LOG_FATAL, NULL, NULL, what, "error=%.*s", (int)len, p);
		p += len + (nl != NULL);
	}
}

int mf_service_main(const struct mf_service_def *def, int argc, char **argv)
{
	struct mf_service svc_storage = { .def = def };
	struct mf_service *svc = &svc_storage;
	const struct mf_config_service *sc;
	const char *path, *err;
	sigset_t sigs;
	int rc = 1, sig;

	svc->name = mf_service_name(def->id);
	mf_log_init(svc->name);
	pthread_mutex_init(&svc->reload_lock, NULL);
	snprintf(svc->metric_prefix, sizeof(svc->metric_prefix), "mailfleet_%s", svc->name);
	for (char *p = svc->metric_prefix; *p != '\0'; p++)
		if (*p == '-')
			*p = '_';

	if ((path = config_path(argc, argv, &rc)) == NULL)
		return rc;
	rc = 1;

	/* Signals are taken by sigwait below: block them before any thread
	 * exists so that every thread inherits the mask. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);

	if (mf_config_load(path, &svc->config, &err) < 0) {
		log_error_lines("configuration error", err);
		return 1;
	}
	if (mf_log_apply_spec(svc->config->log_level, &err) < 0) {
		mf_log(MF_LOG_FATAL, NULL, NULL, "configuration error", "error=%s", err);
		goto out;
	}
	sc = &svc->config->services[def->id];
	if (!sc->enabled || !sc->admin_set) {
		mf_log(MF_LOG_FATAL, NULL, NULL, "configuration error",
		       "error=%s", mf_errorf("%s: no %s block with an admin address",
					     svc->config->path, svc->name));
		goto out;
	}
	if (mf_domains_reload(svc->config->domains_file, &err) < 0) {
		log_error_lines("configuration error", err);
		goto out;
	}

	svc->metrics = mf_metrics_create();
	svc->admin = mf_adminhttp_create(svc->name, svc->metrics);
	if (mf_bus_connect(svc->config->nats_url, svc->name, &svc->bus, &err) < 0) {
		mf_log(MF_LOG_FATAL, NULL, NULL, "configuration error", "error=%s",
		       mf_errorf("nats-url %s: %s", svc->config->nats_url, err));
		goto out;
	}
	mf_adminhttp_add_check(svc->admin, "nats", check_nats, svc);
	if (def->needs_redis) {
		if (mf_redis_create(svc->config->redis_url, NULL, &svc->redis, &err) < 0) {
			mf_log(MF_LOG_FATAL, NULL, NULL, "configuration error", "error=%s",
			       mf_errorf("redis-url: %s", err));
			goto out;
		}
		mf_adminhttp_add_check(svc->admin, "redis", check_redis, svc);
	}
	register_base_metrics(svc);
	if (mf_adminhttp_start(svc->admin, sc->admin.host, sc->admin.port, &err) < 0) {
		mf_log(MF_LOG_FATAL, NULL, NULL, "cannot start", "error=%s", err);
		goto out;
	}
	if (mf_bus_subscribe(svc->bus, "config.v1.changed", NULL, on_config_changed, svc, &err) < 0 ||
	    mf_bus_subscribe(svc->bus, "config.v1.loglevel", NULL, on_loglevel, svc, &err) < 0 ||
	    mf_bus_subscribe(svc->bus, mf_errorf("config.v1.loglevel.%s", svc->name), NULL,
			     on_loglevel, svc, &err) < 0 ||
	    def->start(svc, &err) < 0) {
		mf_log(MF_LOG_FATAL, NULL, NULL, "cannot start", "error=%s", err);
		goto out;
	}
	mf_log_info(NULL, NULL, "started", "version=%s config=%s admin=%s:%u",
		    MF_SERVICE_VERSION, path, sc->admin.host, (unsigned)sc->admin.port);

	for (;;) {
		if (sigwait(&sigs, &sig) != 0)
			continue;
		if (sig == SIGHUP) {
			reload_domains(svc, "SIGHUP");
			continue;
		}
		break;
	}
	mf_log_info(NULL, NULL, "stopping", "signal=%s", sig == SIGTERM ? "TERM" : "INT");
	mf_adminhttp_set_draining(svc->admin, true);
	if (svc->net != NULL &&
	    mf_net_server_drain(svc->net, (unsigned)svc->config->limits.drain_timeout_ms, &err) < 0)
		mf_log_warn(NULL, NULL, "drain incomplete", "error=%s", err);
	if (def->stop != NULL)
		def->stop(svc);
	rc = 0;
out:
	if (svc->admin != NULL)
		mf_adminhttp_set_stopping(svc->admin);
	mf_net_server_free(&svc->net);
	if (svc->bus != NULL)
		mf_bus_close(&svc->bus);
	if (svc->redis != NULL)
		mf_redis_free(&svc->redis);
	if (svc->admin != NULL)
		mf_adminhttp_free(&svc->admin);
	if (svc->metrics != NULL)
		mf_metrics_free(&svc->metrics);
	mf_tls_ctx_free(&svc->tls_ctx);
	mf_domains_clear_current();
	mf_config_free(&svc->config);
	if (rc == 0)
		mf_log_info(NULL, NULL, "stopped", NULL);
	return rc;
}
