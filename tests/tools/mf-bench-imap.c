/* mf-bench-imap: the IMAP load client of `make bench` (tests/bench/bench_imap.sh),
 * the same for mailfleet and Dovecot.
 *
 *   mf-bench-imap -p PORT -u USER -w PASS -m MAILBOX seed -n MESSAGES -s SIZE
 *       creates MAILBOX and appends MESSAGES messages of about SIZE bytes
 *   mf-bench-imap -p PORT -u USER -w PASS -m MAILBOX load -c CONNS -d SECONDS -n MESSAGES
 *       CONNS connections, each LOGIN + SELECT, then for SECONDS a mix of
 *       FETCH (headers 40%, whole message 20%), STORE 15%, SEARCH 15%
 *       (flags 10%, subject 5%) and APPEND 10% on random messages 1..MESSAGES
 *   mf-bench-imap -p PORT -u USER -w PASS -m MAILBOX idle -c CONNS -t SECONDS
 *       CONNS connections in IDLE on MAILBOX, held SECONDS after all are up
 *       (prints "idle_ready" when they are, for the memory probe)
 *
 * Prints one line of key=value figures: ops, ops_per_s, p50_ms, p99_ms,
 * per-operation p50/p99, errors, client_cpu_s.  No TLS (loopback). */
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdbool.h>

#include "mf_bench.h"

#define OPS_MAX 4000000
#define CONNS_MAX 5000

enum op { OP_FETCH_HDR, OP_FETCH_ALL, OP_STORE, OP_SEARCH_FLAGS, OP_SEARCH_SUBJ, OP_APPEND,
	  OP_COUNT };
static const char *op_names[OP_COUNT] = { "fetch_hdr", "fetch_all", "store", "search_flags",
					  "search_subject", "append" };

static const char *host = "127.0.0.1", *user, *pass, *mailbox = "Bench";
static int port;
static unsigned conns = 10, messages = 1000, size = 4096, seconds = 10;

struct worker {
	pthread_t th;
	unsigned id;
	int fd;
	struct mf_bench_reader r;
	unsigned tag;
	double *lat[OP_COUNT];
	size_t nlat[OP_COUNT], cap[OP_COUNT];
	unsigned errors;
	uint64_t rnd;
	double deadline;
	bool ok;
};

static pthread_mutex_t ready_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t ready_cond = PTHREAD_COND_INITIALIZER;
static unsigned ready_count;
static volatile int stop_idle;

static uint32_t rnd(struct worker *w)
{
	w->rnd ^= w->rnd << 13;
	w->rnd ^= w->rnd >> 7;
	w->rnd ^= w->rnd << 17;
	return (uint32_t)w->rnd;
}

/* Reads responses up to the tagged one; skips literals.  Returns 0 for OK. */
static int wait_tagged(struct worker *w, const char *tag)
{
	char line[MF_BENCH_LINE_MAX + 1];
	size_t tl = strlen(tag);

	for (;;) {
		long n = mf_bench_read_line(&w->r, line);
		if (n < 0)
			return -1;
		/* A line ending in {n} announces a literal; its text line goes on after. */
		while (n > 2 && line[n - 1] == '}') {
			char *b = strrchr(line, '{');
			if (b == NULL)
				break;
			if (mf_bench_skip(&w->r, strtoul(b + 1, NULL, 10)) < 0)
				return -1;
			n = mf_bench_read_line(&w->r, line);
			if (n < 0)
				return -1;
		}
		if (strncmp(line, tag, tl) == 0 && line[tl] == ' ')
			return strncmp(line + tl + 1, "OK", 2) == 0 ? 0 : -1;
	}
}

static int command(struct worker *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int command(struct worker *w, const char *fmt, ...)
{
	char buf[1024], tag[16];
	va_list ap;
	int n;

	snprintf(tag, sizeof(tag), "b%u", ++w->tag);
	n = snprintf(buf, sizeof(buf), "%s ", tag);
	va_start(ap, fmt);
	n += vsnprintf(buf + n, sizeof(buf) - (size_t)n - 2, fmt, ap);
	va_end(ap);
	memcpy(buf + n, "\r\n", 2);
	if (mf_bench_write_all(w->fd, buf, (size_t)n + 2) < 0)
		return -1;
	return wait_tagged(w, tag);
}

static char *make_message(unsigned i, size_t *len_r)
{
	char head[512];
	size_t hl = (size_t)snprintf(head, sizeof(head),
		"From: Bench Sender <sender@bench.test>\r\nTo: user@bench.test\r\n"
		"Subject: bench message %u\r\nMessage-ID: <%u.bench@bench.test>\r\n"
		"Date: Mon, 1 Jan 2024 00:00:00 +0000\r\n\r\n", i, i);
	size_t total = hl + (size > hl ? size - hl : 0);
	char *m = malloc(total + 1);

	memcpy(m, head, hl);
	for (size_t p = hl; p < total; p++)
		m[p] = (p - hl) % 72 == 70 ? '\r' : (p - hl) % 72 == 71 ? '\n' : (char)('a' + p % 26);
	*len_r = total;
	return m;
}

static int append(struct worker *w, unsigned i)
{
	char buf[256], tag[16], line[MF_BENCH_LINE_MAX + 1];
	size_t len;
	char *m = make_message(i, &len);
	int n, ret = -1;

	snprintf(tag, sizeof(tag), "b%u", ++w->tag);
	n = snprintf(buf, sizeof(buf), "%s APPEND %s {%zu}\r\n", tag, mailbox, len);
	if (mf_bench_write_all(w->fd, buf, (size_t)n) < 0 ||
	    mf_bench_read_line(&w->r, line) < 0 || line[0] != '+')
		goto out;
	if (mf_bench_write_all(w->fd, m, len) < 0 || mf_bench_write_all(w->fd, "\r\n", 2) < 0)
		goto out;
	ret = wait_tagged(w, tag);
out:
	free(m);
	return ret;
}

static int connect_login(struct worker *w, bool select)
{
	char line[MF_BENCH_LINE_MAX + 1];

	w->fd = mf_bench_connect(host, port);
	if (w->fd < 0)
		return -1;
	mf_bench_reader_init(&w->r, w->fd);
	if (mf_bench_read_line(&w->r, line) < 0 || strncmp(line, "* OK", 4) != 0)
		return -1;
	if (command(w, "LOGIN \"%s\" \"%s\"", user, pass) < 0)
		return -1;
	if (select && command(w, "SELECT %s", mailbox) < 0)
		return -1;
	return 0;
}

static void record(struct worker *w, enum op op, double ms)
{
	if (w->nlat[op] == w->cap[op]) {
		w->cap[op] = w->cap[op] == 0 ? 1024 : w->cap[op] * 2;
		w->lat[op] = realloc(w->lat[op], w->cap[op] * sizeof(double));
	}
	w->lat[op][w->nlat[op]++] = ms;
}

static void *load_worker(void *arg)
{
	struct worker *w = arg;

	if (connect_login(w, true) < 0) {
		w->errors++;
		return NULL;
	}
	while (mf_bench_now() < w->deadline) {
		unsigned r = rnd(w) % 100, msg = rnd(w) % messages + 1;
		enum op op = r < 40 ? OP_FETCH_HDR : r < 60 ? OP_FETCH_ALL : r < 75 ? OP_STORE :
			     r < 85 ? OP_SEARCH_FLAGS : r < 90 ? OP_SEARCH_SUBJ : OP_APPEND;
		double t0 = mf_bench_now();
		int rc;

		switch (op) {
		case OP_FETCH_HDR:
			rc = command(w, "FETCH %u (FLAGS RFC822.SIZE BODY.PEEK[HEADER])", msg);
			break;
		case OP_FETCH_ALL:
			rc = command(w, "FETCH %u BODY.PEEK[]", msg);
			break;
		case OP_STORE:
			rc = command(w, "STORE %u %cFLAGS.SILENT (\\Flagged)", msg, rnd(w) & 1 ? '+' : '-');
			break;
		case OP_SEARCH_FLAGS:
			rc = command(w, "SEARCH FLAGGED");
			break;
		case OP_SEARCH_SUBJ:
			rc = command(w, "SEARCH SUBJECT \"bench message %u\"", msg);
			break;
		default:
			rc = append(w, messages + msg);
			break;
		}
		if (rc < 0) {
			w->errors++;
			break;
		}
		record(w, op, (mf_bench_now() - t0) * 1000);
	}
	(void)command(w, "LOGOUT");
	close(w->fd);
	w->ok = true;
	return NULL;
}

static void *idle_worker(void *arg)
{
	struct worker *w = arg;
	char line[MF_BENCH_LINE_MAX + 1];

	if (connect_login(w, true) < 0 || mf_bench_write_all(w->fd, "i IDLE\r\n", 8) < 0 ||
	    mf_bench_read_line(&w->r, line) < 0 || line[0] != '+') {
		w->errors++;
		pthread_mutex_lock(&ready_lock);
		ready_count++;
		pthread_cond_broadcast(&ready_cond);
		pthread_mutex_unlock(&ready_lock);
		return NULL;
	}
	pthread_mutex_lock(&ready_lock);
	ready_count++;
	pthread_cond_broadcast(&ready_cond);
	while (!stop_idle)
		pthread_cond_wait(&ready_cond, &ready_lock);
	pthread_mutex_unlock(&ready_lock);
	(void)mf_bench_write_all(w->fd, "DONE\r\n", 6);
	(void)wait_tagged(w, "i");
	(void)command(w, "LOGOUT");
	close(w->fd);
	w->ok = true;
	return NULL;
}

static int usage(void)
{
	fprintf(stderr, "usage: mf-bench-imap -p PORT -u USER -w PASS [-m MAILBOX] "
		"seed -n N -s SIZE | load -c CONNS -d SECONDS -n N | idle -c CONNS -t SECONDS\n");
	return 2;
}

int main(int argc, char **argv)
{
	struct worker *ws;
	const char *mode;
	double t0, wall, all_p50, all_p99;
	size_t total = 0;
	unsigned errors = 0;
	int i;

	for (i = 1; i < argc && argv[i][0] == '-'; i += 2) {
		if (i + 1 >= argc)
			return usage();
		switch (argv[i][1]) {
		case 'p': port = atoi(argv[i + 1]); break;
		case 'u': user = argv[i + 1]; break;
		case 'w': pass = argv[i + 1]; break;
		case 'm': mailbox = argv[i + 1]; break;
		case 'h': host = argv[i + 1]; break;
		default: return usage();
		}
	}
	if (i >= argc || port == 0 || user == NULL || pass == NULL)
		return usage();
	mode = argv[i++];
	for (; i + 1 < argc && argv[i][0] == '-'; i += 2) {
		unsigned v = (unsigned)strtoul(argv[i + 1], NULL, 10);
		switch (argv[i][1]) {
		case 'n': messages = v; break;
		case 's': size = v; break;
		case 'c': conns = v; break;
		case 'd': case 't': seconds = v; break;
		default: return usage();
		}
	}
	if (conns == 0 || conns > CONNS_MAX || messages == 0)
		return usage();
	ws = calloc(conns, sizeof(*ws));

	if (strcmp(mode, "seed") == 0) {
		struct worker *w = &ws[0];
		if (connect_login(w, false) < 0)
			return fprintf(stderr, "seed: login failed\n"), 1;
		(void)command(w, "CREATE %s", mailbox);
		t0 = mf_bench_now();
		for (unsigned k = 1; k <= messages; k++)
			if (append(w, k) < 0)
				return fprintf(stderr, "seed: APPEND %u failed\n", k), 1;
		wall = mf_bench_now() - t0;
		(void)command(w, "LOGOUT");
		printf("seeded=%u appends_per_s=%.1f\n", messages, messages / (wall > 0 ? wall : 1));
		return 0;
	}
	if (strcmp(mode, "idle") == 0) {
		t0 = mf_bench_now();
		for (unsigned k = 0; k < conns; k++) {
			ws[k].id = k;
			pthread_attr_t attr;
			pthread_attr_init(&attr);
			pthread_attr_setstacksize(&attr, 256 * 1024);
			pthread_create(&ws[k].th, &attr, idle_worker, &ws[k]);
			pthread_attr_destroy(&attr);
			/* Ramp up: a few logins at a time (pre-login limits per IP). */
			pthread_mutex_lock(&ready_lock);
			while (ready_count + 4 < k + 1)
				pthread_cond_wait(&ready_cond, &ready_lock);
			pthread_mutex_unlock(&ready_lock);
		}
		pthread_mutex_lock(&ready_lock);
		while (ready_count < conns)
			pthread_cond_wait(&ready_cond, &ready_lock);
		pthread_mutex_unlock(&ready_lock);
		for (unsigned k = 0; k < conns; k++)
			errors += ws[k].errors;
		printf("idle_ready conns=%u errors=%u setup_s=%.1f\n", conns, errors,
		       mf_bench_now() - t0);
		fflush(stdout);
		sleep(seconds);
		pthread_mutex_lock(&ready_lock);
		stop_idle = 1;
		pthread_cond_broadcast(&ready_cond);
		pthread_mutex_unlock(&ready_lock);
		for (unsigned k = 0; k < conns; k++)
			pthread_join(ws[k].th, NULL);
		return errors > 0 ? 1 : 0;
	}
	if (strcmp(mode, "load") != 0)
		return usage();
	t0 = mf_bench_now();
	for (unsigned k = 0; k < conns; k++) {
		ws[k].id = k;
		ws[k].rnd = 0x9e3779b97f4a7c15ull * (k + 1);
		ws[k].deadline = t0 + seconds;
		pthread_create(&ws[k].th, NULL, load_worker, &ws[k]);
	}
	for (unsigned k = 0; k < conns; k++)
		pthread_join(ws[k].th, NULL);
	wall = mf_bench_now() - t0;
	{
		double *all = malloc(sizeof(double) * OPS_MAX);
		size_t na = 0;
		char per[1024];
		size_t pn = 0;
		for (int op = 0; op < OP_COUNT; op++) {
			double *v = malloc(sizeof(double) * OPS_MAX);
			size_t n = 0;
			for (unsigned k = 0; k < conns; k++) {
				for (size_t j = 0; j < ws[k].nlat[op] && n < OPS_MAX; j++) {
					v[n++] = ws[k].lat[op][j];
					if (na < OPS_MAX)
						all[na++] = ws[k].lat[op][j];
				}
			}
			pn += (size_t)snprintf(per + pn, sizeof(per) - pn, " %s_p50_ms=%.2f %s_p99_ms=%.2f",
					       op_names[op], mf_bench_percentile(v, n, 50), op_names[op],
					       mf_bench_percentile(v, n, 99));
			free(v);
		}
		for (unsigned k = 0; k < conns; k++)
			errors += ws[k].errors;
		total = na;
		all_p50 = mf_bench_percentile(all, na, 50);
		all_p99 = mf_bench_percentile(all, na, 99);
		printf("ops=%zu ops_per_s=%.1f p50_ms=%.2f p99_ms=%.2f errors=%u client_cpu_s=%.2f%s\n",
		       total, total / (wall > 0 ? wall : 1), all_p50, all_p99, errors,
		       mf_bench_cpu_seconds(), per);
		free(all);
	}
	return errors > 0 ? 1 : 0;
}
