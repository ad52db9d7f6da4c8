/* imap_metrics: the imap service's Prometheus metrics (logins, commands by
 * name and result, sessions in IDLE).  All functions accept a NULL
 * registry pointer (unit tests run sessions without metrics). */
#ifndef IMAP_METRICS_H
#define IMAP_METRICS_H

#include "metrics.h"

struct imap_metrics;

/* Registers the metrics in reg (every series at 0).  Returns the handles
 * (free with imap_metrics_free). */
struct imap_metrics *imap_metrics_create(struct mf_metrics *reg);
void imap_metrics_free(struct imap_metrics **m);
/* result: "ok", "failed", "disabled", "unavailable", "limited". */
void imap_metrics_login(struct imap_metrics *m, const char *result);
/* name: the command (upper-case; unknown ones count as "other"); result:
 * "ok", "no", "bad". */
void imap_metrics_command(struct imap_metrics *m, const char *name, const char *result);
void imap_metrics_idle(struct imap_metrics *m, int delta);

#endif
