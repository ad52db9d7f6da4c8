/* imap_metrics: see imap_metrics.h. */
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "imap_metrics.h"

struct imap_metrics {
	struct mf_metric *logins, *commands;
	struct mf_series *idle;
};

static const char *const login_results[] = { "ok", "failed", "disabled", "unavailable", "limited",
						  NULL };
static const char *const command_names[] = {
	"APPEND", "AUTHENTICATE", "CAPABILITY", "CHECK", "CLOSE", "COPY", "CREATE", "DELETE",
	"ENABLE", "EXAMINE", "EXPUNGE", "FETCH", "ID", "IDLE", "LIST", "LOGIN", "LOGOUT", "LSUB",
	"MOVE", "NAMESPACE", "NOOP", "RENAME", "SEARCH", "SELECT", "STARTTLS", "STATUS", "STORE",
	"SUBSCRIBE", "UID", "UNSELECT", "UNSUBSCRIBE", "other", NULL,
};
static const char *const command_results[] = { "ok", "no", "bad", NULL };

struct imap_metrics *imap_metrics_create(struct mf_metrics *reg)
{
	struct imap_metrics *m = mf_xcalloc(1, sizeof(*m));
	const struct mf_metric_label login_labels[] = { { "result", login_results }, { NULL, NULL } };
	const struct mf_metric_label cmd_labels[] = { { "command", command_names },
						      { "result", command_results },
						      { NULL, NULL } };

	m->logins = mf_metrics_counter(reg, "mailfleet_imap_logins_total",
				       "IMAP logins (LOGIN and AUTHENTICATE) by result.", login_labels);
	m->commands = mf_metrics_counter(reg, "mailfleet_imap_commands_total",
					 "IMAP commands by name and tagged result.", cmd_labels);
	m->idle = mf_metric_series(mf_metrics_gauge(reg, "mailfleet_imap_idle_connections",
						    "IMAP connections in IDLE now.", NULL));
	return m;
}

void imap_metrics_free(struct imap_metrics **m)
{
	free(*m);
	*m = NULL;
}

void imap_metrics_login(struct imap_metrics *m, const char *result)
{
	if (m != NULL)
		mf_metric_inc(m->logins, result);
}

void imap_metrics_command(struct imap_metrics *m, const char *name, const char *result)
{
	const char *known = "other";

	if (m == NULL)
		return;
	for (size_t i = 0; command_names[i] != NULL; i++)
		if (strcmp(command_names[i], name) == 0)
			known = command_names[i];
	mf_metric_inc(m->commands, known, result);
}

void imap_metrics_idle(struct imap_metrics *m, int delta)
{
	if (m == NULL)
		return;
	if (delta > 0)
		mf_series_inc(m->idle);
	else
		mf_series_dec(m->idle);
}
