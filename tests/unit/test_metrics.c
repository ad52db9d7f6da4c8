#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log.h"
#include "metrics.h"

static const char *const results[] = {"accepted", "refused", NULL};
static const struct mf_metric_label result_labels[] = {{"result", results}, {NULL, NULL}};

static char *format(struct mf_metrics *reg)
{
	struct mf_buf b;
	const char *error;

	mf_buf_init(&b, 0);
	assert_int_equal(mf_metrics_format(reg, &b, &error), 0);
	return mf_buf_steal(&b);
}

static void test_counter_initialised_and_counted(void **state)
{
	struct mf_metrics *reg = mf_metrics_create();
	struct mf_metric *m = mf_metrics_counter(reg, "mailfleet_smtp_in_connections_total",
						 "SMTP connections by result.", result_labels);
	char *text = format(reg);

	assert_string_equal(text,
		"# HELP mailfleet_smtp_in_connections_total SMTP connections by result.\n"
		"# TYPE mailfleet_smtp_in_connections_total counter\n"
		"mailfleet_smtp_in_connections_total{result=\"accepted\"} 0\n"
		"mailfleet_smtp_in_connections_total{result=\"refused\"} 0\n");
	free(text);

	struct mf_series *acc = mf_metric_series(m, "accepted");
	mf_series_inc(acc);
	mf_series_add(acc, 2);
	mf_metric_inc(m, "refused");
	mf_series_add(acc, -1);   /* refused: counters only go up */
	assert_true(mf_series_value(acc) == 3);
	text = format(reg);
	assert_non_null(strstr(text, "{result=\"accepted\"} 3\n"));
	assert_non_null(strstr(text, "{result=\"refused\"} 1\n"));
	free(text);
	mf_metrics_free(&reg);
	assert_null(reg);
}

static void test_unknown_label_value(void **state)
{
	struct mf_metrics *reg = mf_metrics_create();
	struct mf_metric *m = mf_metrics_counter(reg, "mailfleet_smtp_in_connections_total",
						 "SMTP connections.", result_labels);
	int fds[2];
	char line[512];

	assert_int_equal(pipe(fds), 0);
	mf_log_set_fd(fds[1]);
	assert_null(mf_metric_series(m, "bogus"));
	ssize_t n = read(fds[0], line, sizeof(line) - 1);
	assert_true(n > 0);
	line[n] = '\0';
	assert_non_null(strstr(line, "unknown label value"));
	assert_non_null(strstr(line, "value=bogus"));
	mf_log_set_fd(2);
	close(fds[0]);
	close(fds[1]);

	/* a NULL series is ignored, not a crash */
	mf_series_inc(NULL);
	mf_series_observe(NULL, 1);
	assert_true(mf_series_value(NULL) == 0);
	mf_metrics_free(&reg);
}

static void test_multi_label_order_and_escaping(void **state)
{
	static const char *const a_values[] = {"x", "y", NULL};
	static const char *const b_values[] = {"q\"uote", "back\\slash", "new\nline", NULL};
	static const struct mf_metric_label labels[] = {
		{"a", a_values}, {"b", b_values}, {NULL, NULL}};
	struct mf_metrics *reg = mf_metrics_create();
	struct mf_metric *g = mf_metrics_gauge(reg, "mailfleet_test_queue_messages",
					       "Help with \\ and\nnewline.", labels);

	mf_series_set(mf_metric_series(g, "y", "new\nline"), 2.5);
	mf_series_inc(mf_metric_series(g, "x", "q\"uote"));
	mf_series_dec(mf_metric_series(g, "x", "back\\slash"));
	char *text = format(reg);
	assert_string_equal(text,
		"# HELP mailfleet_test_queue_messages Help with \\\\ and\\nnewline.\n"
		"# TYPE mailfleet_test_queue_messages gauge\n"
		"mailfleet_test_queue_messages{a=\"x\",b=\"q\\\"uote\"} 1\n"
		"mailfleet_test_queue_messages{a=\"x\",b=\"back\\\\slash\"} -1\n"
		"mailfleet_test_queue_messages{a=\"x\",b=\"new\\nline\"} 0\n"
		"mailfleet_test_queue_messages{a=\"y\",b=\"q\\\"uote\"} 0\n"
		"mailfleet_test_queue_messages{a=\"y\",b=\"back\\\\slash\"} 0\n"
		"mailfleet_test_queue_messages{a=\"y\",b=\"new\\nline\"} 2.5\n");
	free(text);
	mf_metrics_free(&reg);
}

static void test_histogram(void **state)
{
	static const double buckets[] = {0.1, 0.5, 2.5};
	struct mf_metrics *reg = mf_metrics_create();
	struct mf_metric *h = mf_metrics_histogram(reg, "mailfleet_delivery_attempt_duration_seconds",
						   "Delivery attempt duration.", result_labels,
						   buckets, 3);
	struct mf_series *s = mf_metric_series(h, "refused");

	mf_series_observe(s, 0.05);
	mf_series_observe(s, 0.1);   /* on the bound: le is inclusive */
	mf_series_observe(s, 0.3);
	mf_series_observe(s, 10);
	assert_true(mf_series_value(s) == 4);
	char *text = format(reg);
	assert_string_equal(text,
		"# HELP mailfleet_delivery_attempt_duration_seconds Delivery attempt duration.\n"
		"# TYPE mailfleet_delivery_attempt_duration_seconds histogram\n"
		"mailfleet_delivery_attempt_duration_seconds_bucket{result=\"accepted\",le=\"0.1\"} 0\n"
		"mailfleet_delivery_attempt_duration_seconds_bucket{result=\"accepted\",le=\"0.5\"} 0\n"
		"mailfleet_delivery_attempt_duration_seconds_bucket{result=\"accepted\",le=\"2.5\"} 0\n"
		"mailfleet_delivery_attempt_duration_seconds_bucket{result=\"accepted\",le=\"+Inf\"} 0\n"
		"mailfleet_delivery_attempt_duration_seconds_sum{result=\"accepted\"} 0\n"
		"mailfleet_delivery_attempt_duration_seconds_count{result=\"accepted\"} 0\n"
		"mailfleet_delivery_attempt_duration_seconds_bucket{result=\"refused\",le=\"0.1\"} 2\n"
		"mailfleet_delivery_attempt_duration_seconds_bucket{result=\"refused\",le=\"0.5\"} 3\n"
		"mailfleet_delivery_attempt_duration_seconds_bucket{result=\"refused\",le=\"2.5\"} 3\n"
		"mailfleet_delivery_attempt_duration_seconds_bucket{result=\"refused\",le=\"+Inf\"} 4\n"
		"mailfleet_delivery_attempt_duration_seconds_sum{result=\"refused\"} 10.45\n"
		"mailfleet_delivery_attempt_duration_seconds_count{result=\"refused\"} 4\n");
	free(text);
	mf_metrics_free(&reg);
}

static double read_connections(void *ctx)
{
	return (double)*(int *)ctx;
}

static void test_callback_gauge(void **state)
{
	struct mf_metrics *reg = mf_metrics_create();
	int current = 7;

	mf_metrics_gauge_func(reg, "mailfleet_imap_current_connections", "Open connections.",
			      read_connections, &current);
	mf_metrics_counter_func(reg, "mailfleet_imap_nats_reconnects_total", "NATS reconnects.",
				read_connections, &current);
	char *text = format(reg);
	assert_non_null(strstr(text, "# TYPE mailfleet_imap_current_connections gauge\n"
				     "mailfleet_imap_current_connections 7\n"));
	assert_non_null(strstr(text, "# TYPE mailfleet_imap_nats_reconnects_total counter\n"));
	free(text);
	current = 3;
	text = format(reg);
	assert_non_null(strstr(text, "mailfleet_imap_current_connections 3\n"));
	free(text);
	mf_metrics_free(&reg);
}

#define THREADS 4
#define PER_THREAD 100000

struct thread_arg {
	struct mf_series *counter, *gauge, *hist;
};

static void *hammer(void *p)
{
	struct thread_arg *a = p;

	for (int i = 0; i < PER_THREAD; i++) {
		mf_series_inc(a->counter);
		mf_series_add(a->gauge, 0.5);
		mf_series_observe(a->hist, (i % 2) ? 0.01 : 1.0);
	}
	return NULL;
}

static void test_concurrent_updates(void **state)
{
	static const double buckets[] = {0.1};
	struct mf_metrics *reg = mf_metrics_create();
	struct thread_arg arg;
	pthread_t threads[THREADS];

	arg.counter = mf_metric_series(mf_metrics_counter(reg, "mailfleet_test_events_seen_total",
							  "Events.", NULL));
	arg.gauge = mf_metric_series(mf_metrics_gauge(reg, "mailfleet_test_level_bytes",
						      "Level.", NULL));
	arg.hist = mf_metric_series(mf_metrics_histogram(reg, "mailfleet_test_wait_time_seconds",
							 "Wait.", NULL, buckets, 1));
	for (int i = 0; i < THREADS; i++)
		assert_int_equal(pthread_create(&threads[i], NULL, hammer, &arg), 0);
	for (int i = 0; i < THREADS; i++)
		pthread_join(threads[i], NULL);
	assert_true(mf_series_value(arg.counter) == THREADS * PER_THREAD);
	assert_true(mf_series_value(arg.gauge) == THREADS * PER_THREAD * 0.5);
	assert_true(mf_series_value(arg.hist) == THREADS * PER_THREAD);
	char *text = format(reg);
	assert_non_null(strstr(text, "mailfleet_test_wait_time_seconds_bucket{le=\"0.1\"} 200000\n"));
	assert_non_null(strstr(text, "mailfleet_test_wait_time_seconds_bucket{le=\"+Inf\"} 400000\n"));
	free(text);
	mf_metrics_free(&reg);
}

/* Runs text through promtool; returns its exit status and output. */
static int promtool_check(const char *text, char *out, size_t outlen)
{
	char path[] = "/tmp/mf-test-metrics-XXXXXX";
	char cmd[256];
	int fd = mkstemp(path);
	size_t n = 0;

	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	snprintf(cmd, sizeof(cmd), "/usr/bin/promtool check metrics < %s 2>&1", path);
	FILE *p = popen(cmd, "r");
	assert_non_null(p);
	while (n + 1 < outlen) {
		size_t r = fread(out + n, 1, outlen - 1 - n, p);
		if (r == 0)
			break;
		n += r;
	}
	out[n] = '\0';
	int status = pclose(p);
	unlink(path);
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void test_promtool_accepts_exposition(void **state)
{
	static const double buckets[] = {0.005, 0.05, 0.5, 5, 60};
	static const char *const odd[] = {"a\"b", "c\\d", "e\nf", "ünï", NULL};
	static const struct mf_metric_label odd_labels[] = {{"kind", odd}, {NULL, NULL}};
	struct mf_metrics *reg = mf_metrics_create();
	int one = 1;
	char out[4096];

	if (access("/usr/bin/promtool", X_OK) != 0)
		fail_msg("promtool is not installed at /usr/bin/promtool");
	mf_metric_inc(mf_metrics_counter(reg, "mailfleet_smtp_in_connections_total",
					 "SMTP connections.", result_labels), "accepted");
	mf_metrics_gauge(reg, "mailfleet_smtp_in_odd_values_ratio", "Escaping \\ \"x\"\nok.",
			 odd_labels);
	struct mf_metric *h = mf_metrics_histogram(reg, "mailfleet_smtp_in_session_duration_seconds",
						   "Session duration.", result_labels, buckets, 5);
	mf_series_observe(mf_metric_series(h, "accepted"), 0.2);
	mf_metrics_gauge_func(reg, "mailfleet_smtp_in_nats_connected_status",
			      "NATS connected (1) or not (0).", read_connections, &one);
	char *text = format(reg);
	int rc = promtool_check(text, out, sizeof(out));
	if (rc != 0 || out[0] != '\0')
		fail_msg("promtool: exit %d: %s\n--- text ---\n%s", rc, out, text);
	free(text);
	mf_metrics_free(&reg);

	/* control: promtool does complain about a bad text, so the check above
	 * can fail */
	rc = promtool_check("# HELP x_seconds y\n# TYPE x_seconds counter\nx_seconds 1\n",
			    out, sizeof(out));
	assert_true(rc != 0 || out[0] != '\0');
}

/* Registration errors are programming errors: the process exits (mf_fatal).
 * The child's registry is global so that LeakSanitizer sees it reachable. */
static struct mf_metrics *volatile child_reg;

static int fatal_exit(void (*fn)(void))
{
	pid_t pid = fork();
	int status;

	assert_true(pid >= 0);
	if (pid == 0) {
		int fd = open("/dev/null", O_WRONLY);
		mf_log_set_fd(fd);
		fn();
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void reg_no_prefix(void)
{
	struct mf_metrics *reg = child_reg = mf_metrics_create();
	mf_metrics_counter(reg, "smtp_in_connections_total", "x", NULL);
}

static void reg_counter_no_total(void)
{
	struct mf_metrics *reg = child_reg = mf_metrics_create();
	mf_metrics_counter(reg, "mailfleet_smtp_in_connections", "x", NULL);
}

static void reg_gauge_total(void)
{
	struct mf_metrics *reg = child_reg = mf_metrics_create();
	mf_metrics_gauge(reg, "mailfleet_smtp_in_connections_total", "x", NULL);
}

static void reg_short(void)
{
	struct mf_metrics *reg = child_reg = mf_metrics_create();
	mf_metrics_gauge(reg, "mailfleet_web_up", "x", NULL);
}

static void reg_upper(void)
{
	struct mf_metrics *reg = child_reg = mf_metrics_create();
	mf_metrics_gauge(reg, "mailfleet_Web_sessions_count_now", "x", NULL);
}

static void reg_ms(void)
{
	struct mf_metrics *reg = child_reg = mf_metrics_create();
	mf_metrics_gauge(reg, "mailfleet_web_latency_ms", "x", NULL);
}

static void reg_duplicate(void)
{
	struct mf_metrics *reg = child_reg = mf_metrics_create();
	mf_metrics_counter(reg, "mailfleet_web_requests_seen_total", "x", NULL);
	mf_metrics_counter(reg, "mailfleet_web_requests_seen_total", "x", NULL);
}

static void reg_le_label(void)
{
	static const char *const v[] = {"1", NULL};
	static const struct mf_metric_label l[] = {{"le", v}, {NULL, NULL}};
	static const double b[] = {1};
	struct mf_metrics *reg = child_reg = mf_metrics_create();
	mf_metrics_histogram(reg, "mailfleet_web_request_duration_seconds", "x", l, b, 1);
}

static void reg_bad_buckets(void)
{
	static const double b[] = {1, 1};
	struct mf_metrics *reg = child_reg = mf_metrics_create();
	mf_metrics_histogram(reg, "mailfleet_web_request_duration_seconds", "x", NULL, b, 2);
}

static void reg_no_help(void)
{
	struct mf_metrics *reg = child_reg = mf_metrics_create();
	mf_metrics_counter(reg, "mailfleet_web_requests_seen_total", "", NULL);
}

static void reg_good(void)
{
	struct mf_metrics *reg = child_reg = mf_metrics_create();
	mf_metrics_counter(reg, "mailfleet_web_requests_seen_total", "x", result_labels);
	mf_metrics_free(&reg);
}

static void test_registration_errors_are_fatal(void **state)
{
	assert_int_equal(fatal_exit(reg_good), 0);
	assert_int_equal(fatal_exit(reg_no_prefix), 1);
	assert_int_equal(fatal_exit(reg_counter_no_total), 1);
	assert_int_equal(fatal_exit(reg_gauge_total), 1);
	assert_int_equal(fatal_exit(reg_short), 1);
	assert_int_equal(fatal_exit(reg_upper), 1);
	assert_int_equal(fatal_exit(reg_ms), 1);
	assert_int_equal(fatal_exit(reg_duplicate), 1);
	assert_int_equal(fatal_exit(reg_le_label), 1);
	assert_int_equal(fatal_exit(reg_bad_buckets), 1);
	assert_int_equal(fatal_exit(reg_no_help), 1);
}

static void test_output_cap(void **state)
{
	struct mf_metrics *reg = mf_metrics_create();
	struct mf_buf b;
	const char *error = NULL;

	mf_metrics_counter(reg, "mailfleet_smtp_in_connections_total", "SMTP connections.",
			   result_labels);
	mf_buf_init(&b, 32);
	assert_int_equal(mf_metrics_format(reg, &b, &error), -1);
	assert_non_null(error);
	mf_buf_free(&b);
	mf_metrics_free(&reg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_counter_initialised_and_counted),
		cmocka_unit_test(test_unknown_label_value),
		cmocka_unit_test(test_multi_label_order_and_escaping),
		cmocka_unit_test(test_histogram),
		cmocka_unit_test(test_callback_gauge),
		cmocka_unit_test(test_concurrent_updates),
		cmocka_unit_test(test_promtool_accepts_exposition),
		cmocka_unit_test(test_registration_errors_are_fatal),
		cmocka_unit_test(test_output_cap),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
