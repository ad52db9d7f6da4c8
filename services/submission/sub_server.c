/* sub_server: shared state of submission: limits and metrics. */
#include "sub_server.h"

#include <string.h>

void sub_server_init(struct sub_server *srv, struct mf_service *svc,
		     const struct mf_config *config)
{
	memset(srv, 0, sizeof(*srv));
	srv->svc = svc;
	srv->config = config;
	srv->max_message_size = config->limits.max_message_size;
	srv->redis_down_allow = config->redis_down != MF_REDIS_DOWN_DENY;
	if (svc == NULL)
		return;

	struct mf_metrics *m = mf_service_metrics(svc);
	static const char *const conn_results[] = { "accepted", NULL };
	static const struct mf_metric_label conn_l[] = { { "result", conn_results }, { NULL, NULL } };
	static const char *const auth_results[] = { "ok", "failed", "disabled", "limited",
						    "unavailable", "needtls", NULL };
	static const struct mf_metric_label auth_l[] = { { "result", auth_results }, { NULL, NULL } };
	static const char *const msg_results[] = { "queued", "rejected", "limited", "temporary",
						   "permanent", NULL };
	static const struct mf_metric_label msg_l[] = { { "result", msg_results }, { NULL, NULL } };
	static const char *const cmds[] = { "helo", "ehlo", "mail", "rcpt", "data", "bdat",
					    "rset", "noop", "quit", "help", "vrfy", "expn",
					    "starttls", "auth", "unknown", NULL };
	static const struct mf_metric_label cmd_l[] = { { "command", cmds }, { NULL, NULL } };
	static const char *const tls_results[] = { "ok", "error", NULL };
	static const struct mf_metric_label tls_l[] = { { "result", tls_results }, { NULL, NULL } };
	static const double buckets[] = { 0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5,
					  10, 30, 60 };

	srv->m_connections = mf_metrics_counter(m, "mailfleet_submission_connections_total",
		"Submission connections served.", conn_l);
	srv->m_auth = mf_metrics_counter(m, "mailfleet_submission_auth_total",
		"AUTH attempts by result (needtls: refused before TLS; limited: refused "
		"unchecked after too many failures from the network).", auth_l);
	srv->m_messages = mf_metrics_counter(m, "mailfleet_submission_messages_total",
		"Messages by outcome: queued, rejected (From, content), limited (per-account "
		"limits), temporary or permanent failures of the queue, signing or storage.",
		msg_l);
	srv->m_commands = mf_metrics_histogram(m, "mailfleet_submission_command_duration_seconds",
		"Time from a command to its reply, by command.", cmd_l, buckets,
		sizeof(buckets) / sizeof(buckets[0]));
	srv->m_tls = mf_metrics_counter(m, "mailfleet_submission_starttls_total",
		"STARTTLS handshakes by result.", tls_l);
	srv->m_tarpit = mf_metrics_counter(m, "mailfleet_submission_tarpit_delays_total",
		"Replies delayed because the client kept failing.", NULL);
}
