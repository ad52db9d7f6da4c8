/* smtp_server: shared state of smtp-in: limits and metrics. */
#include "smtp_server.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "smtp_command.h"

static char *limit_name(struct smtp_server *srv, const char *name, unsigned i,
			const char *family, const char *bits)
{
	char *n = srv->limit_names[srv->limit_names_used++];

	snprintf(n, MF_RATELIMIT_NAME_MAX, "%s%u-%s-%s", name, i, family, bits);
	return n;
}

/* Fills limits from rates (count 0 leaves a level unchecked). */
static size_t set_limits(struct smtp_server *srv, struct mf_ratelimit_ip_limits *limits,
			 const char *name, const struct mf_config_rate *rates, size_t n)
{
	static const char *const v4[] = { "32", "26", "21" };
	static const char *const v6[] = { "64", "48", "32" };
	static const uint32_t factor[] = { 1, SMTP_IN_NET_FACTOR_1, SMTP_IN_NET_FACTOR_2 };

	for (size_t r = 0; r < n; r++) {
		for (unsigned l = 0; l < MF_RATELIMIT_IP_LEVELS; l++) {
			uint64_t count = (uint64_t)rates[r].count * factor[l];
			if (count > MF_RATELIMIT_COUNT_MAX)
				count = MF_RATELIMIT_COUNT_MAX;
			/* Names carry the rate's index: two rates of one kind
			 * must not share a Redis key. */
			limits[r].v4[l] = (struct mf_ratelimit_limit){
				.name = limit_name(srv, name, (unsigned)r, "v4", v4[l]),
				.count = (uint32_t)count, .period_msecs = rates[r].period_ms };
			limits[r].v6[l] = (struct mf_ratelimit_limit){
				.name = limit_name(srv, name, (unsigned)r, "v6", v6[l]),
				.count = (uint32_t)count, .period_msecs = rates[r].period_ms };
		}
	}
	return n;
}

void smtp_server_init(struct smtp_server *srv, struct mf_service *svc,
		      const struct mf_config *config)
{
	static const struct mf_config_rate conn_default[] = SMTP_IN_CONN_RATES;
	static const struct mf_config_rate msg_default[] = SMTP_IN_MSG_RATES;

	memset(srv, 0, sizeof(*srv));
	srv->svc = svc;
	srv->config = config;
	srv->max_message_size = config->limits.max_message_size;
	pthread_mutex_init(&srv->ip_lock, NULL);
	srv->conn_limits_count = config->smtpin_conn_rates_set ?
		set_limits(srv, srv->conn_limits, "smtpin-conn", config->smtpin_conn_rates,
			   config->smtpin_conn_rates_count) :
		set_limits(srv, srv->conn_limits, "smtpin-conn", conn_default, 2);
	srv->msg_limits_count = config->smtpin_msg_rates_set ?
		set_limits(srv, srv->msg_limits, "smtpin-msg", config->smtpin_msg_rates,
			   config->smtpin_msg_rates_count) :
		set_limits(srv, srv->msg_limits, "smtpin-msg", msg_default, 2);
	if (svc == NULL)
		return;

	struct mf_metrics *m = mf_service_metrics(svc);
	static const char *const conn_results[] = { "accepted", "ratelimited", "refused", NULL };
	static const struct mf_metric_label conn_l[] = { { "result", conn_results }, { NULL, NULL } };
	static const char *const del_results[] = { "delivered", "rejected", "temporary",
						   "permanent", NULL };
	static const struct mf_metric_label del_l[] = { { "result", del_results }, { NULL, NULL } };
	static const char *const cmds[] = { "helo", "ehlo", "mail", "rcpt", "data", "bdat",
					    "rset", "noop", "quit", "help", "vrfy", "expn",
					    "starttls", "auth", "unknown", NULL };
	static const struct mf_metric_label cmd_l[] = { { "command", cmds }, { NULL, NULL } };
	static const char *const rl_what[] = { "connection", "message", "redis_down", NULL };
	static const struct mf_metric_label rl_l[] = { { "what", rl_what }, { NULL, NULL } };
	static const char *const tls_results[] = { "ok", "error", NULL };
	static const struct mf_metric_label tls_l[] = { { "result", tls_results }, { NULL, NULL } };
	static const double buckets[] = { 0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5,
					  10, 30, 60 };

	srv->m_connections = mf_metrics_counter(m, "mailfleet_smtp_in_connections_total",
		"SMTP connections by admission result.", conn_l);
	srv->m_deliveries = mf_metrics_counter(m, "mailfleet_smtp_in_deliveries_total",
		"Messages by outcome of the SMTP transaction.", del_l);
	srv->m_commands = mf_metrics_histogram(m, "mailfleet_smtp_in_command_duration_seconds",
		"Time from a command to its reply, by command.", cmd_l, buckets,
		sizeof(buckets) / sizeof(buckets[0]));
	srv->m_ratelimited = mf_metrics_counter(m, "mailfleet_smtp_in_ratelimited_total",
		"Connections and messages refused by rate limits, and checks made while "
		"Redis was unreachable.", rl_l);
	srv->m_tls = mf_metrics_counter(m, "mailfleet_smtp_in_starttls_total",
		"STARTTLS handshakes by result.", tls_l);
	srv->m_tarpit = mf_metrics_counter(m, "mailfleet_smtp_in_tarpit_delays_total",
		"Replies delayed because the client kept failing.", NULL);
}

void smtp_server_deinit(struct smtp_server *srv)
{
	free(srv->ips);
	srv->ips = NULL;
	pthread_mutex_destroy(&srv->ip_lock);
}
