/* metrics: see metrics.h.  Values live in atomics holding the bits of a
 * double, so that updates from any thread need no lock; the registry lock
 * only guards registration and scraping. */
#include "metrics.h"
#include "error.h"
#include "log.h"

#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistr.h>

#define LOG_PKG "metrics"

enum metric_type {
	METRIC_COUNTER,
	METRIC_GAUGE,
	METRIC_HISTOGRAM,
	METRIC_GAUGE_FUNC,
	METRIC_COUNTER_FUNC,
};

struct mf_series {
	struct mf_metric *metric;
	/* counter/gauge: the value; histogram: the sum of observations */
	_Atomic uint64_t value;
	/* histogram: n_buckets + 1 per-bucket (not cumulative) counts; the
	 * last one is +Inf.  _count is their total, so it always agrees. */
	_Atomic uint64_t *buckets;
};

struct mf_metric {
	char *name;
	char *help;
	enum metric_type type;
	size_t n_labels;
	char *label_names[MF_METRICS_LABELS_MAX];
	char **label_values[MF_METRICS_LABELS_MAX];
	size_t n_values[MF_METRICS_LABELS_MAX];
	size_t n_series;
	struct mf_series *series;
	double *bounds;
	size_t n_bounds;
	mf_metric_read_fn *fn;
	void *ctx;
};

struct mf_metrics {
	pthread_mutex_t lock;
	struct mf_metric *metrics[MF_METRICS_MAX];
	size_t count;
};

static const char *const type_names[] = {
	[METRIC_COUNTER] = "counter",
	[METRIC_GAUGE] = "gauge",
	[METRIC_HISTOGRAM] = "histogram",
	[METRIC_GAUGE_FUNC] = "gauge",
	[METRIC_COUNTER_FUNC] = "counter",
};

static double bits_to_double(uint64_t u)
{
	double d;
	memcpy(&d, &u, sizeof(d));
	return d;
}

static uint64_t double_to_bits(double d)
{
	uint64_t u;
	memcpy(&u, &d, sizeof(u));
	return u;
}

static void atomic_add_double(_Atomic uint64_t *p, double v)
{
	uint64_t old = atomic_load_explicit(p, memory_order_relaxed);
	uint64_t new;

	do {
		new = double_to_bits(bits_to_double(old) + v);
	} while (!atomic_compare_exchange_weak_explicit(p, &old, new, memory_order_relaxed,
							memory_order_relaxed));
}

struct mf_metrics *mf_metrics_create(void)
{
	struct mf_metrics *reg = mf_xcalloc(1, sizeof(*reg));

	pthread_mutex_init(&reg->lock, NULL);
	return reg;
}

static void metric_free(struct mf_metric *m)
{
	free(m->name);
	free(m->help);
	for (size_t i = 0; i < m->n_labels; i++) {
		free(m->label_names[i]);
		for (size_t j = 0; j < m->n_values[i]; j++)
			free(m->label_values[i][j]);
		free(m->label_values[i]);
	}
	for (size_t i = 0; i < m->n_series; i++)
		free(m->series[i].buckets);
	free(m->series);
	free(m->bounds);
	free(m);
}

void mf_metrics_free(struct mf_metrics **regp)
{
	struct mf_metrics *reg = *regp;

	if (reg == NULL)
		return;
	for (size_t i = 0; i < reg->count; i++)
		metric_free(reg->metrics[i]);
	pthread_mutex_destroy(&reg->lock);
	free(reg);
	*regp = NULL;
}

/* Units that Prometheus naming practice replaces by base units (seconds,
 * bytes), and type names that do not belong in a name (promtool lints). */
static const char *const banned_parts[] = {
	"s", "ms", "msec", "millis", "milliseconds", "us", "usec", "microseconds", "ns",
	"nsec", "nanoseconds", "sec", "secs", "m", "min", "mins", "minutes", "h", "hr", "hrs",
	"hours", "d", "days", "b", "kb", "kib", "kilobytes", "mb", "mib", "megabytes", "gb",
	"gib", "gigabytes", "tb", "pb", "counter", "gauge", "histogram", "summary", NULL,
};

static bool has_suffix(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);
	return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* mailfleet_<service>_<thing>_<unit>: lower-case [a-z0-9] parts joined by
 * single underscores, at least four of them. */
static void check_name(const struct mf_metrics *reg, const char *name, enum metric_type type)
{
	size_t parts = 0, len;
	const char *p;

	if (name == NULL)
		mf_fatal("metrics: metric without a name");
	len = strlen(name);
	if (len > MF_METRICS_NAME_MAX)
		mf_fatal("metrics: name %s is too long", name);
	if (strncmp(name, "mailfleet_", 10) != 0)
		mf_fatal("metrics: name %s does not start with mailfleet_", name);
	p = name;
	while (*p != '\0') {
		const char *start = p;
		while ((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9'))
			p++;
		if (p == start || (*p != '_' && *p != '\0'))
			mf_fatal("metrics: name %s must be lower-case words joined by single underscores", name);
		for (size_t i = 0; banned_parts[i] != NULL; i++)
			if (strlen(banned_parts[i]) == (size_t)(p - start) &&
			    strncmp(start, banned_parts[i], (size_t)(p - start)) == 0)
				mf_fatal("metrics: name %s: use base units (seconds, bytes) and no type names",
					 name);
		parts++;
		if (*p == '_') {
			p++;
			if (*p == '\0')
				mf_fatal("metrics: name %s ends with an underscore", name);
		}
	}
	if (parts < 4)
		mf_fatal("metrics: name %s is not mailfleet_<service>_<thing>_<unit>", name);
	bool counter = type == METRIC_COUNTER || type == METRIC_COUNTER_FUNC;
	if (counter != has_suffix(name, "_total"))
		mf_fatal("metrics: name %s: counters, and only counters, end in _total", name);
	if (has_suffix(name, "_bucket") || has_suffix(name, "_count") || has_suffix(name, "_sum"))
		mf_fatal("metrics: name %s ends in a suffix reserved for histograms", name);
	for (size_t i = 0; i < reg->count; i++)
		if (strcmp(reg->metrics[i]->name, name) == 0)
			mf_fatal("metrics: name %s registered twice", name);
}

static void check_label_name(const char *metric, const char *name, enum metric_type type)
{
	size_t len = strlen(name);

	if (len == 0 || len > MF_METRICS_NAME_MAX)
		mf_fatal("metrics: %s: bad label name length", metric);
	if (name[0] == '_' && name[1] == '_')
		mf_fatal("metrics: %s: label names starting with __ are reserved", metric);
	for (size_t i = 0; i < len; i++) {
		char c = name[i];
		if (!((c >= 'a' && c <= 'z') || c == '_' || (i > 0 && c >= '0' && c <= '9')))
			mf_fatal("metrics: %s: bad label name %s", metric, name);
	}
	if (type == METRIC_HISTOGRAM && strcmp(name, "le") == 0)
		mf_fatal("metrics: %s: label le is reserved for histograms", metric);
	if (strcmp(name, "quantile") == 0)
		mf_fatal("metrics: %s: label quantile is reserved", metric);
}

/* Checks a label list; returns the number of labels and the series count.
 * Everything is checked before anything is allocated. */
static size_t check_labels(const char *name, enum metric_type type,
			   const struct mf_metric_label *labels, size_t *n_series_r)
{
	size_t i, n_series = 1;

	for (i = 0; labels != NULL && labels[i].name != NULL; i++) {
		if (i == MF_METRICS_LABELS_MAX)
			mf_fatal("metrics: %s has more than %d labels", name, MF_METRICS_LABELS_MAX);
		check_label_name(name, labels[i].name, type);
		for (size_t j = 0; j < i; j++)
			if (strcmp(labels[j].name, labels[i].name) == 0)
				mf_fatal("metrics: %s: label %s twice", name, labels[i].name);
		size_t n = 0;
		while (labels[i].values != NULL && labels[i].values[n] != NULL) {
			const char *v = labels[i].values[n];
			if (n == MF_METRICS_VALUES_MAX)
				break;
			if (u8_check((const uint8_t *)v, strlen(v)) != NULL)
				mf_fatal("metrics: %s: label value is not UTF-8", name);
			for (size_t k = 0; k < n; k++)
				if (strcmp(labels[i].values[k], v) == 0)
					mf_fatal("metrics: %s: label %s value %s twice", name,
						 labels[i].name, v);
			n++;
		}
		if (n == 0 || labels[i].values[n] != NULL)
			mf_fatal("metrics: %s: label %s needs 1 to %d known values", name,
				 labels[i].name, MF_METRICS_VALUES_MAX);
		n_series *= n;
		if (n_series > MF_METRICS_SERIES_MAX)
			mf_fatal("metrics: %s has more than %d series", name, MF_METRICS_SERIES_MAX);
	}
	*n_series_r = n_series;
	return i;
}

static struct mf_metric *metric_new(struct mf_metrics *reg, const char *name, const char *help,
				    enum metric_type type, const struct mf_metric_label *labels)
{
	struct mf_metric *m;
	size_t n_labels, n_series;

	check_name(reg, name, type);
	if (help == NULL || help[0] == '\0')
		mf_fatal("metrics: %s has no help text", name);
	if (reg->count == MF_METRICS_MAX)
		mf_fatal("metrics: more than %d metrics", MF_METRICS_MAX);
	n_labels = check_labels(name, type, labels, &n_series);

	m = mf_xcalloc(1, sizeof(*m));
	m->name = mf_xstrdup(name);
	m->help = mf_xstrdup(help);
	m->type = type;
	m->n_labels = n_labels;
	for (size_t i = 0; i < n_labels; i++) {
		size_t n = 0;
		while (labels[i].values[n] != NULL)
			n++;
		m->label_names[i] = mf_xstrdup(labels[i].name);
		m->label_values[i] = mf_xcalloc(n, sizeof(char *));
		for (size_t j = 0; j < n; j++)
			m->label_values[i][j] = mf_xstrdup(labels[i].values[j]);
		m->n_values[i] = n;
	}
	m->n_series = n_series;
	m->series = mf_xcalloc(n_series, sizeof(*m->series));
	for (size_t i = 0; i < n_series; i++) {
		m->series[i].metric = m;
		atomic_init(&m->series[i].value, double_to_bits(0.0));
	}
	return m;
}

static void metric_add(struct mf_metrics *reg, struct mf_metric *m)
{
	reg->metrics[reg->count++] = m;
}

static struct mf_metric *register_metric(struct mf_metrics *reg, const char *name,
					 const char *help, enum metric_type type,
					 const struct mf_metric_label *labels)
{
	struct mf_metric *m;

	pthread_mutex_lock(&reg->lock);
	m = metric_new(reg, name, help, type, labels);
	metric_add(reg, m);
	pthread_mutex_unlock(&reg->lock);
	return m;
}

struct mf_metric *mf_metrics_counter(struct mf_metrics *reg, const char *name,
				     const char *help, const struct mf_metric_label *labels)
{
	return register_metric(reg, name, help, METRIC_COUNTER, labels);
}

struct mf_metric *mf_metrics_gauge(struct mf_metrics *reg, const char *name,
				   const char *help, const struct mf_metric_label *labels)
{
	return register_metric(reg, name, help, METRIC_GAUGE, labels);
}

struct mf_metric *mf_metrics_histogram(struct mf_metrics *reg, const char *name,
				       const char *help, const struct mf_metric_label *labels,
				       const double *buckets, size_t n_buckets)
{
	struct mf_metric *m;

	pthread_mutex_lock(&reg->lock);
	if (n_buckets == 0 || n_buckets > MF_METRICS_BUCKETS_MAX)
		mf_fatal("metrics: %s needs 1 to %d buckets", name, MF_METRICS_BUCKETS_MAX);
	for (size_t i = 0; i < n_buckets; i++) {
		if (!isfinite(buckets[i]) || (i > 0 && buckets[i] <= buckets[i - 1]))
			mf_fatal("metrics: %s: buckets must be finite and increasing", name);
	}
	m = metric_new(reg, name, help, METRIC_HISTOGRAM, labels);
	m->bounds = mf_xmalloc(n_buckets * sizeof(double));
	memcpy(m->bounds, buckets, n_buckets * sizeof(double));
	m->n_bounds = n_buckets;
	for (size_t i = 0; i < m->n_series; i++) {
		m->series[i].buckets = mf_xcalloc(n_buckets + 1, sizeof(_Atomic uint64_t));
		for (size_t j = 0; j <= n_buckets; j++)
			atomic_init(&m->series[i].buckets[j], 0);
	}
	metric_add(reg, m);
	pthread_mutex_unlock(&reg->lock);
	return m;
}

static void register_func(struct mf_metrics *reg, const char *name, const char *help,
			  enum metric_type type, mf_metric_read_fn *fn, void *ctx)
{
	struct mf_metric *m;

	if (fn == NULL)
		mf_fatal("metrics: %s has no read function", name);
	pthread_mutex_lock(&reg->lock);
	m = metric_new(reg, name, help, type, NULL);
	/* the value comes from fn: no stored series to update */
	free(m->series);
	m->series = NULL;
	m->n_series = 0;
	m->fn = fn;
	m->ctx = ctx;
	metric_add(reg, m);
	pthread_mutex_unlock(&reg->lock);
}

void mf_metrics_gauge_func(struct mf_metrics *reg, const char *name, const char *help,
			   mf_metric_read_fn *fn, void *ctx)
{
	register_func(reg, name, help, METRIC_GAUGE_FUNC, fn, ctx);
}

void mf_metrics_counter_func(struct mf_metrics *reg, const char *name, const char *help,
			     mf_metric_read_fn *fn, void *ctx)
{
	register_func(reg, name, help, METRIC_COUNTER_FUNC, fn, ctx);
}

static struct mf_series *series_va(struct mf_metric *m, va_list ap)
{
	size_t index = 0;

	if (m == NULL)
		return NULL;
	if (m->series == NULL) {
		mf_log_error(LOG_PKG, NULL, "metric has no series", "metric=%s", m->name);
		return NULL;
	}
	for (size_t i = 0; i < m->n_labels; i++) {
		const char *v = va_arg(ap, const char *);
		size_t j;
		for (j = 0; v != NULL && j < m->n_values[i]; j++)
			if (strcmp(m->label_values[i][j], v) == 0)
				break;
		if (v == NULL || j == m->n_values[i]) {
			mf_log_error(LOG_PKG, NULL, "unknown label value", "metric=%s label=%s value=%s",
				     m->name, m->label_names[i], v != NULL ? v : "(null)");
			return NULL;
		}
		/* label 0 is the most significant digit: it varies slowest */
		index = index * m->n_values[i] + j;
	}
	return &m->series[index];
}

struct mf_series *mf_metric_series(struct mf_metric *m, ...)
{
	struct mf_series *s;
	va_list ap;

	va_start(ap, m);
	s = series_va(m, ap);
	va_end(ap);
	return s;
}

void mf_metric_inc(struct mf_metric *m, ...)
{
	struct mf_series *s;
	va_list ap;

	va_start(ap, m);
	s = series_va(m, ap);
	va_end(ap);
	mf_series_inc(s);
}

static bool check_type(const struct mf_series *s, bool counter_ok, bool gauge_ok,
		       bool histogram_ok, const char *op)
{
	enum metric_type t = s->metric->type;

	if ((t == METRIC_COUNTER && counter_ok) || (t == METRIC_GAUGE && gauge_ok) ||
	    (t == METRIC_HISTOGRAM && histogram_ok))
		return true;
	mf_log_error(LOG_PKG, NULL, "operation does not apply to metric type", "metric=%s op=%s",
		     s->metric->name, op);
	return false;
}

void mf_series_add(struct mf_series *s, double v)
{
	if (s == NULL || !check_type(s, true, true, false, "add"))
		return;
	if (s->metric->type == METRIC_COUNTER && !(v >= 0)) {
		mf_log_error(LOG_PKG, NULL, "counter decrement refused", "metric=%s value=%g",
			     s->metric->name, v);
		return;
	}
	atomic_add_double(&s->value, v);
}

void mf_series_inc(struct mf_series *s)
{
	mf_series_add(s, 1.0);
}

void mf_series_dec(struct mf_series *s)
{
	if (s == NULL || !check_type(s, false, true, false, "dec"))
		return;
	atomic_add_double(&s->value, -1.0);
}

void mf_series_set(struct mf_series *s, double v)
{
	if (s == NULL || !check_type(s, false, true, false, "set"))
		return;
	atomic_store_explicit(&s->value, double_to_bits(v), memory_order_relaxed);
}

void mf_series_observe(struct mf_series *s, double v)
{
	const struct mf_metric *m;
	size_t i = 0;

	if (s == NULL || !check_type(s, false, false, true, "observe"))
		return;
	m = s->metric;
	/* a bucket counts observations <= its bound ("le") */
	while (i < m->n_bounds && !(v <= m->bounds[i]))
		i++;
	atomic_fetch_add_explicit(&s->buckets[i], 1, memory_order_relaxed);
	atomic_add_double(&s->value, v);
}

static uint64_t histogram_count(const struct mf_series *s)
{
	uint64_t n = 0;

	for (size_t i = 0; i <= s->metric->n_bounds; i++)
		n += atomic_load_explicit(&s->buckets[i], memory_order_relaxed);
	return n;
}

double mf_series_value(const struct mf_series *s)
{
	if (s == NULL)
		return 0;
	if (s->metric->type == METRIC_HISTOGRAM)
		return (double)histogram_count(s);
	return bits_to_double(atomic_load_explicit(&s->value, memory_order_relaxed));
}

/* --- exposition, text format 0.0.4 --------------------------------------- */

/* Shortest text that reads back as the same double, as Go's ParseFloat
 * (which Prometheus uses) expects: "0.1" rather than "0.10000000000000001". */
static void append_double(struct mf_buf *b, double v)
{
	char tmp[40];

	if (isnan(v)) {
		mf_buf_append_str(b, "NaN");
		return;
	}
	if (isinf(v)) {
		mf_buf_append_str(b, v > 0 ? "+Inf" : "-Inf");
		return;
	}
	for (int prec = 1; prec <= 17; prec++) {
		snprintf(tmp, sizeof(tmp), "%.*g", prec, v);
		if (strtod(tmp, NULL) == v)
			break;
	}
	mf_buf_append_str(b, tmp);
}

/* HELP escapes backslash and newline; label values also double quotes. */
static void append_escaped(struct mf_buf *b, const char *s, bool quotes)
{
	for (; *s != '\0'; s++) {
		if (*s == '\\')
			mf_buf_append(b, "\\\\", 2);
		else if (*s == '\n')
			mf_buf_append(b, "\\n", 2);
		else if (*s == '"' && quotes)
			mf_buf_append(b, "\\\"", 2);
		else
			mf_buf_append(b, s, 1);
	}
}

/* Appends {l1="v1",...[,le="x"]} for series index idx; nothing when empty. */
static void append_labels(struct mf_buf *b, const struct mf_metric *m, size_t idx,
			  const char *le)
{
	size_t digits[MF_METRICS_LABELS_MAX];

	if (m->n_labels == 0 && le == NULL)
		return;
	for (size_t i = m->n_labels; i-- > 0;) {
		digits[i] = idx % m->n_values[i];
		idx /= m->n_values[i];
	}
	mf_buf_append(b, "{", 1);
	for (size_t i = 0; i < m->n_labels; i++) {
		if (i > 0)
			mf_buf_append(b, ",", 1);
		mf_buf_append_str(b, m->label_names[i]);
		mf_buf_append(b, "=\"", 2);
		append_escaped(b, m->label_values[i][digits[i]], true);
		mf_buf_append(b, "\"", 1);
	}
	if (le != NULL) {
		if (m->n_labels > 0)
			mf_buf_append(b, ",", 1);
		mf_buf_append(b, "le=\"", 4);
		mf_buf_append_str(b, le);
		mf_buf_append(b, "\"", 1);
	}
	mf_buf_append(b, "}", 1);
}

static void format_histogram_series(struct mf_buf *b, const struct mf_metric *m, size_t idx)
{
	const struct mf_series *s = &m->series[idx];
	uint64_t counts[MF_METRICS_BUCKETS_MAX + 1];
	uint64_t cumulative = 0;
	struct mf_buf le;

	/* read each bucket once so _bucket and _count agree in this scrape */
	for (size_t i = 0; i <= m->n_bounds; i++)
		counts[i] = atomic_load_explicit(&s->buckets[i], memory_order_relaxed);
	mf_buf_init(&le, 64);
	for (size_t i = 0; i <= m->n_bounds; i++) {
		cumulative += counts[i];
		mf_buf_reset(&le);
		if (i < m->n_bounds)
			append_double(&le, m->bounds[i]);
		else
			mf_buf_append_str(&le, "+Inf");
		mf_buf_append_str(b, m->name);
		mf_buf_append_str(b, "_bucket");
		append_labels(b, m, idx, mf_buf_cstr(&le));
		mf_buf_appendf(b, " %llu\n", (unsigned long long)cumulative);
	}
	mf_buf_free(&le);
	mf_buf_append_str(b, m->name);
	mf_buf_append_str(b, "_sum");
	append_labels(b, m, idx, NULL);
	mf_buf_append(b, " ", 1);
	append_double(b, bits_to_double(atomic_load_explicit(&s->value, memory_order_relaxed)));
	mf_buf_append(b, "\n", 1);
	mf_buf_append_str(b, m->name);
	mf_buf_append_str(b, "_count");
	append_labels(b, m, idx, NULL);
	mf_buf_appendf(b, " %llu\n", (unsigned long long)cumulative);
}

static void format_metric(struct mf_buf *b, const struct mf_metric *m)
{
	mf_buf_append_str(b, "# HELP ");
	mf_buf_append_str(b, m->name);
	mf_buf_append(b, " ", 1);
	append_escaped(b, m->help, false);
	mf_buf_appendf(b, "\n# TYPE %s %s\n", m->name, type_names[m->type]);

	if (m->fn != NULL) {
		mf_buf_append_str(b, m->name);
		mf_buf_append(b, " ", 1);
		append_double(b, m->fn(m->ctx));
		mf_buf_append(b, "\n", 1);
		return;
	}
	for (size_t i = 0; i < m->n_series; i++) {
		if (m->type == METRIC_HISTOGRAM) {
			format_histogram_series(b, m, i);
			continue;
		}
		mf_buf_append_str(b, m->name);
		append_labels(b, m, i, NULL);
		mf_buf_append(b, " ", 1);
		append_double(b, mf_series_value(&m->series[i]));
		mf_buf_append(b, "\n", 1);
	}
}

int mf_metrics_format(struct mf_metrics *reg, struct mf_buf *out, const char **error_r)
{
	struct mf_buf text;
	int ret = -1;

	/* No cap on the work buffer: its size is bounded by what the program
	 * registered (not by network input), and checked after each metric. */
	mf_buf_init(&text, 0);
	pthread_mutex_lock(&reg->lock);
	for (size_t i = 0; i < reg->count; i++) {
		format_metric(&text, reg->metrics[i]);
		if (text.len > MF_METRICS_TEXT_MAX)
			break;
	}
	pthread_mutex_unlock(&reg->lock);
	if (text.len > MF_METRICS_TEXT_MAX) {
		*error_r = mf_errorf("metrics text exceeds %d bytes", MF_METRICS_TEXT_MAX);
		goto out;
	}
	if (mf_buf_append(out, text.data != NULL ? text.data : "", text.len) < 0) {
		*error_r = "metrics text exceeds the output buffer";
		goto out;
	}
	ret = 0;
out:
	mf_buf_free(&text);
	return ret;
}
