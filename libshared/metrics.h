/* metrics: a registry of Prometheus counters, gauges and histograms, and
 * its exposition in the text format 0.0.4 (served on /metrics by adminhttp).
 *
 * Label sets are fixed at registration: each label lists its known values
 * and every combination (series) exists, at 0, from the start, so that a
 * counter shows before its first event.  Names follow
 * mailfleet_<service>_<thing>_<unit>, counters end in _total; a bad name or
 * label set is a programming error and mf_fatal()s at registration.
 *
 * Updates are lock-free (atomics) and may come from any thread; a service
 * looks its series up once (mf_metric_series) and updates the handle.
 *
 *   static const char *const results[] = {"accepted", "refused", NULL};
 *   static const struct mf_metric_label labels[] = {{"result", results}, {NULL, NULL}};
 *   struct mf_metric *conns = mf_metrics_counter(reg,
 *       "mailfleet_smtp_in_connections_total", "SMTP connections.", labels);
 *   struct mf_series *accepted = mf_metric_series(conns, "accepted");
 *   mf_series_inc(accepted);
 */
#ifndef MF_METRICS_H
#define MF_METRICS_H

#include <stddef.h>

#include "buf.h"

#define MF_METRICS_MAX 256            /* metrics in one registry */
#define MF_METRICS_NAME_MAX 128       /* metric and label name length */
#define MF_METRICS_LABELS_MAX 4       /* labels per metric */
#define MF_METRICS_VALUES_MAX 64      /* known values per label */
#define MF_METRICS_SERIES_MAX 1024    /* label value combinations per metric */
#define MF_METRICS_BUCKETS_MAX 32     /* histogram buckets, +Inf not counted */
#define MF_METRICS_TEXT_MAX (4 * 1024 * 1024)  /* exposition size */

struct mf_metrics;   /* registry */
struct mf_metric;    /* one metric family, owned by its registry */
struct mf_series;    /* one label value combination, owned by its metric */

/* One label of a metric: its name and its known values (NULL-terminated).
 * A label list ends with {NULL, NULL}.  The strings are copied. */
struct mf_metric_label {
	const char *name;
	const char *const *values;
};

/* Value of a callback gauge or counter, read at scrape time.  It runs on the
 * scraping thread with the registry locked: it must be thread-safe, quick,
 * and must not call into the registry. */
typedef double mf_metric_read_fn(void *ctx);

/* Returns a new empty registry; free with mf_metrics_free. */
struct mf_metrics *mf_metrics_create(void);
/* Frees the registry and every metric and series in it; sets *reg to NULL.
 * No other thread may use its handles any more. */
void mf_metrics_free(struct mf_metrics **reg);

/* Registers a metric and all its series at 0.  labels may be NULL (no
 * labels).  help is required.  Returns a handle owned by the registry;
 * mf_fatal()s on a bad or duplicate name, bad labels or too many series. */
struct mf_metric *mf_metrics_counter(struct mf_metrics *reg, const char *name,
				     const char *help, const struct mf_metric_label *labels);
struct mf_metric *mf_metrics_gauge(struct mf_metrics *reg, const char *name,
				   const char *help, const struct mf_metric_label *labels);
/* buckets: n_buckets strictly increasing finite upper bounds (e.g. seconds);
 * +Inf is added.  The label "le" is reserved. */
struct mf_metric *mf_metrics_histogram(struct mf_metrics *reg, const char *name,
				       const char *help, const struct mf_metric_label *labels,
				       const double *buckets, size_t n_buckets);
/* Registers an unlabelled gauge (or counter) whose value fn(ctx) returns
 * at scrape time, e.g. current connections or "NATS connected" 0/1. */
void mf_metrics_gauge_func(struct mf_metrics *reg, const char *name, const char *help,
			   mf_metric_read_fn *fn, void *ctx);
void mf_metrics_counter_func(struct mf_metrics *reg, const char *name, const char *help,
			     mf_metric_read_fn *fn, void *ctx);

/* Returns the series for one value per label, in label order, e.g.
 * mf_metric_series(m, "accepted") or mf_metric_series(m) without labels.
 * The handle lives as long as the registry.  An unknown value returns NULL
 * and logs an error; every mf_series_* function ignores a NULL series. */
struct mf_series *mf_metric_series(struct mf_metric *m, ...);

/* Counter or gauge: adds v (counters refuse a negative v, logging it). */
void mf_series_add(struct mf_series *s, double v);
void mf_series_inc(struct mf_series *s);
/* Gauge only. */
void mf_series_dec(struct mf_series *s);
void mf_series_set(struct mf_series *s, double v);
/* Histogram only: records one observation. */
void mf_series_observe(struct mf_series *s, double v);
/* Returns the current value (counter, gauge) or the count of observations
 * (histogram); 0 for NULL.  For tests and self-checks. */
double mf_series_value(const struct mf_series *s);

/* Shortcut: mf_series_inc(mf_metric_series(m, values...)). */
void mf_metric_inc(struct mf_metric *m, ...);

/* Appends the exposition of every metric, in registration order, to out.
 * Returns 0, or -1 with error_r when out's cap (or MF_METRICS_TEXT_MAX) is
 * exceeded; out then holds a truncated text the caller must not serve. */
int mf_metrics_format(struct mf_metrics *reg, struct mf_buf *out, const char **error_r);

#endif
