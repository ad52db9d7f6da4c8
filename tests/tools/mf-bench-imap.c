/* mf-bench-imap: IMAP load client for `make bench`, run the same way
 * against mailfleet and Dovecot (issue 3).
 *
 *   mf-bench-imap populate [-c USERS] [-m MESSAGES] -u USERFMT -p PASS HOST PORT
 *       Appends MESSAGES messages to the INBOX of each of USERS users, one
 *       connection per user, in parallel.  The messages depend only on the
 *       user's number and the message's number, so both servers get the
 *       same data.
 *   mf-bench-imap mix [-c CLIENTS] [-d SECONDS] -u USERFMT -p PASS HOST PORT
 *       CLIENTS sessions (client i logs in as user i), each running a
 *       random mix of SELECT, FETCH (one whole message; headers and
 *       envelopes of 20), STORE, SEARCH and APPEND for SECONDS.  Prints
 *       "ops= errors= seconds= ops_per_s= p50_ms= p99_ms= cpu_s=" and a
 *       line per command kind.
 *   mf-bench-imap idle [-c CONNS] -u USERFMT -p PASS HOST PORT
 *       Opens CONNS sessions of user 0 (LOGIN, SELECT INBOX, IDLE: what a
 *       mail client does while it waits), prints "idle=N ready", keeps them
 *       until its standard input ends, then ends IDLE and logs them out.
 *
 * USERFMT is a login name in which "{n}" stands for the user's number,
 * e.g. "bench{n}@localhost".  Any NO, BAD or broken connection counts as an
 * error; the exit status is 0 only without errors (1 otherwise, 2 on usage
 * errors).  Replies of the first errors go to stderr. */
#include "buf.h"
#include "tests/tools/mf_bench.h"

#include <ctype.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>

#define BENCH_IMAP_CLIENTS_MAX 100000
#define BENCH_IMAP_MESSAGES_MAX 1000000
#define BENCH_IMAP_SECONDS_MAX 86400
/* A literal in a reply larger than this is an error (our messages are < 16 KiB). */
#define BENCH_IMAP_LITERAL_MAX (16u * 1024 * 1024)
/* Latency samples per client in mix mode. */
#define BENCH_IMAP_SAMPLES_MAX 10000000
#define BENCH_IMAP_REPORT_MAX 10
/* Sessions opened at once in idle mode (logins may be slow by design). */
#define BENCH_IMAP_IDLE_THREADS 8
/* FETCH window for the header/envelope command. */
#define BENCH_IMAP_FETCH_WINDOW 20
/* Size of messages appended during the mix. */
#define BENCH_IMAP_APPEND_SIZE 4096

enum bench_op {
	OP_SELECT,
	OP_FETCH_BODY,
	OP_FETCH_HEADERS,
	OP_STORE,
	OP_SEARCH,
	OP_APPEND,
	OP_COUNT
};

static const char *const op_names[OP_COUNT] = {
	"select", "fetch_body", "fetch_headers", "store", "search", "append",
};
/* Share of each command in the mix, in percent (sums to 100): mostly
 * reading, as mail clients do. */
static const unsigned op_weights[OP_COUNT] = { 10, 25, 15, 20, 20, 10 };

static const char *const words[] = {
	"invoice", "meeting", "report", "holiday", "budget", "release", "lunch", "review",
	"deadline", "party", "contract", "update", "schedule", "question", "travel", "photos",
};
#define WORDS_COUNT (sizeof(words) / sizeof(words[0]))

struct bench_imap {
	const char *host, *userfmt, *pass;
	int port;
	unsigned clients, messages, seconds;
	atomic_uint errors, reported, ready;
	double deadline;
	/* mix results, merged from the clients */
	pthread_mutex_t lock;
	double *lat[OP_COUNT];
	size_t lat_n[OP_COUNT], lat_cap[OP_COUNT];
};

struct bench_conn {
	int fd;
	unsigned tag;
	unsigned exists;
	bool broken; /* the connection failed: no more commands on it */
	struct mf_bench_reader r;
	char line[MF_BENCH_LINE_MAX + 1];
	char last[256]; /* the tagged reply, for error messages */
};

static void bench_error(struct bench_imap *b, const char *what, const char *detail)
{
	atomic_fetch_add(&b->errors, 1);
	if (atomic_fetch_add(&b->reported, 1) < BENCH_IMAP_REPORT_MAX)
		fprintf(stderr, "mf-bench-imap: %s: %s\n", what, detail);
}

static char *bench_user(const struct bench_imap *b, unsigned n)
{
	const char *p = strstr(b->userfmt, "{n}");

	if (p == NULL)
		return mf_xstrdup(b->userfmt);
	return mf_xasprintf("%.*s%u%s", (int)(p - b->userfmt), b->userfmt, n, p + 3);
}

/* If line ends with a literal announcement {N} or {N+}, returns N, else -1. */
static long bench_literal_size(const char *line, size_t len)
{
	size_t i;

	if (len < 3 || line[len - 1] != '}')
		return -1;
	i = len - 1;
	if (line[i - 1] == '+')
		i--;
	while (i > 0 && isdigit((unsigned char)line[i - 1]))
		i--;
	if (i == 0 || line[i - 1] != '{' || i == len - 1)
		return -1;
	return strtol(line + i, NULL, 10);
}

/* Reads one response line, skipping literals inside it.  Returns 0 or -1. */
static int bench_read_response_line(struct bench_conn *c)
{
	long len = mf_bench_read_line(&c->r, c->line), lit;

	if (len < 0)
		return -1;
	/* Keep the start of the line; what follows literals is read and dropped. */
	while ((lit = bench_literal_size(c->line, (size_t)len)) >= 0) {
		char *rest;

		if ((unsigned long)lit > BENCH_IMAP_LITERAL_MAX || mf_bench_skip(&c->r, (size_t)lit) < 0)
			return -1;
		rest = mf_xmalloc(MF_BENCH_LINE_MAX + 1);
		len = mf_bench_read_line(&c->r, rest);
		if (len < 0) {
			free(rest);
			return -1;
		}
		memcpy(c->line, rest, (size_t)len + 1);
		free(rest);
	}
	return 0;
}

/* Reads until the tagged reply of tag; tracks EXISTS.  Returns 0 for OK,
 * -1 otherwise (c->last says why).  With want_continuation, stops at a
 * "+" line instead and returns 1. */
static int bench_wait(struct bench_conn *c, unsigned tag, bool want_continuation)
{
	char prefix[32];
	int plen = snprintf(prefix, sizeof(prefix), "T%u ", tag);

	for (;;) {
		unsigned long n;
		char *end;

		if (bench_read_response_line(c) < 0) {
			c->broken = true;
			snprintf(c->last, sizeof(c->last), "connection closed or reply too long");
			return -1;
		}
		if (want_continuation && c->line[0] == '+')
			return 1;
		if (c->line[0] == '*' && c->line[1] == ' ') {
			n = strtoul(c->line + 2, &end, 10);
			if (end != c->line + 2 && strncmp(end, " EXISTS", 7) == 0)
				c->exists = (unsigned)n;
			continue;
		}
		if (strncmp(c->line, prefix, (size_t)plen) == 0) {
			snprintf(c->last, sizeof(c->last), "%.200s", c->line);
			return strncmp(c->line + plen, "OK", 2) == 0 ? 0 : -1;
		}
	}
}

/* Sends "T<n> cmd" and waits for its tagged reply.  0 for OK, -1 otherwise. */
static int bench_command(struct bench_conn *c, const char *cmd)
{
	char *line = mf_xasprintf("T%u %s\r\n", ++c->tag, cmd);
	int ret;

	ret = mf_bench_write_all(c->fd, line, strlen(line));
	free(line);
	if (ret < 0) {
		c->broken = true;
		snprintf(c->last, sizeof(c->last), "write: %s", strerror(errno));
		return -1;
	}
	return bench_wait(c, c->tag, false);
}

static int bench_append(struct bench_conn *c, const char *msg, size_t len)
{
	char *line = mf_xasprintf("T%u APPEND INBOX {%zu}\r\n", ++c->tag, len);
	int ret;

	ret = mf_bench_write_all(c->fd, line, strlen(line));
	free(line);
	if (ret < 0)
		goto broken;
	ret = bench_wait(c, c->tag, true);
	if (ret != 1)
		return -1;
	if (mf_bench_write_all(c->fd, msg, len) < 0 || mf_bench_write_all(c->fd, "\r\n", 2) < 0)
		goto broken;
	return bench_wait(c, c->tag, false);
broken:
	c->broken = true;
	snprintf(c->last, sizeof(c->last), "write: %s", strerror(errno));
	return -1;
}

/* Message number k of user u: 2..8 KiB, subject and sender from small
 * lists, so SEARCH has something to find.  The caller frees it. */
static char *bench_message(unsigned u, unsigned k, size_t size, size_t *len_r)
{
	unsigned seed = u * 100003u + k * 7919u + 1;
	struct mf_buf buf;
	unsigned i;

	if (size == 0)
		size = 2048 + (size_t)(rand_r(&seed) % 6144);
	mf_buf_init(&buf, 0);
	(void)mf_buf_appendf(&buf,
			     "From: Sender %u <sender%u@example.org>\r\n"
			     "To: <user%u@example.net>\r\n"
			     "Subject: %s %s %u\r\n"
			     "Date: Sun, 22 Nov 2026 12:%02u:%02u +0000\r\n"
			     "Message-ID: <m%u.%u@example.org>\r\n"
			     "MIME-Version: 1.0\r\n"
			     "Content-Type: text/plain; charset=us-ascii\r\n\r\n",
			     k % 5, k % 5, u, words[rand_r(&seed) % WORDS_COUNT],
			     words[rand_r(&seed) % WORDS_COUNT], k, (k / 60) % 60, k % 60, u, k);
	for (i = 0; buf.len < size; i++)
		(void)mf_buf_appendf(&buf, "Line %u of the message about the %s and the %s.\r\n",
				     i, words[rand_r(&seed) % WORDS_COUNT],
				     words[rand_r(&seed) % WORDS_COUNT]);
	*len_r = buf.len;
	return mf_buf_steal(&buf);
}

/* Connects, logs in as user n and, with select, selects INBOX.  Returns the
 * connection or NULL (error counted). */
static struct bench_conn *bench_open(struct bench_imap *b, unsigned n, bool select)
{
	struct bench_conn *c = mf_xcalloc(1, sizeof(*c));
	char *user = bench_user(b, n), *cmd = NULL;

	c->fd = mf_bench_connect(b->host, b->port);
	if (c->fd < 0) {
		bench_error(b, "connect", strerror(errno));
		goto fail;
	}
	mf_bench_reader_init(&c->r, c->fd);
	if (bench_read_response_line(c) < 0 || strncmp(c->line, "* OK", 4) != 0) {
		bench_error(b, "greeting", c->line);
		goto fail;
	}
	cmd = mf_xasprintf("LOGIN \"%s\" \"%s\"", user, b->pass);
	if (bench_command(c, cmd) < 0) {
		bench_error(b, "LOGIN", c->last);
		goto fail;
	}
	if (select && bench_command(c, "SELECT INBOX") < 0) {
		bench_error(b, "SELECT", c->last);
		goto fail;
	}
	free(user);
	free(cmd);
	return c;
fail:
	if (c->fd >= 0)
		close(c->fd);
	free(c);
	free(user);
	free(cmd);
	return NULL;
}

static void bench_close(struct bench_conn **cp)
{
	struct bench_conn *c = *cp;

	if (c == NULL)
		return;
	if (!c->broken)
		(void)bench_command(c, "LOGOUT");
	close(c->fd);
	free(c);
	*cp = NULL;
}

/* --- populate ---------------------------------------------------------------- */

struct bench_worker {
	struct bench_imap *b;
	unsigned n;
	pthread_t thread;
};

static void *bench_populate_thread(void *arg)
{
	struct bench_worker *w = arg;
	struct bench_conn *c = bench_open(w->b, w->n, false);
	unsigned k;

	if (c == NULL)
		return NULL;
	for (k = 0; k < w->b->messages; k++) {
		size_t len;
		char *msg = bench_message(w->n, k, 0, &len);
		int ret = bench_append(c, msg, len);

		free(msg);
		if (ret < 0) {
			bench_error(w->b, "APPEND", c->last);
			break;
		}
	}
	bench_close(&c);
	return NULL;
}

/* --- mix ---------------------------------------------------------------------- */

static void bench_record(struct bench_imap *b, enum bench_op op, double secs)
{
	pthread_mutex_lock(&b->lock);
	if (b->lat_n[op] == b->lat_cap[op] && b->lat_cap[op] < BENCH_IMAP_SAMPLES_MAX) {
		b->lat_cap[op] = b->lat_cap[op] == 0 ? 4096 : b->lat_cap[op] * 2;
		b->lat[op] = mf_xrealloc(b->lat[op], b->lat_cap[op] * sizeof(double));
	}
	if (b->lat_n[op] < b->lat_cap[op])
		b->lat[op][b->lat_n[op]++] = secs;
	pthread_mutex_unlock(&b->lock);
}

static enum bench_op bench_pick(unsigned *seed)
{
	unsigned r = (unsigned)rand_r(seed) % 100, acc = 0;
	int op;

	for (op = 0; op < OP_COUNT; op++) {
		acc += op_weights[op];
		if (r < acc)
			return (enum bench_op)op;
	}
	return OP_FETCH_BODY;
}

static int bench_mix_op(struct bench_conn *c, enum bench_op op, unsigned *seed, unsigned user,
			unsigned *appended)
{
	unsigned e = c->exists > 0 ? c->exists : 1, s = 1 + (unsigned)rand_r(seed) % e, hi;
	char *cmd = NULL, *msg;
	size_t len;
	int ret;

	switch (op) {
	case OP_SELECT:
		return bench_command(c, "SELECT INBOX");
	case OP_FETCH_BODY:
		cmd = mf_xasprintf("FETCH %u (FLAGS RFC822.SIZE BODY.PEEK[])", s);
		break;
	case OP_FETCH_HEADERS:
		hi = s + BENCH_IMAP_FETCH_WINDOW - 1 > e ? e : s + BENCH_IMAP_FETCH_WINDOW - 1;
		cmd = mf_xasprintf("FETCH %u:%u (UID FLAGS RFC822.SIZE INTERNALDATE ENVELOPE)", s, hi);
		break;
	case OP_STORE:
		cmd = mf_xasprintf("STORE %u %sFLAGS (\\Flagged)", s, rand_r(seed) % 2 ? "+" : "-");
		break;
	case OP_SEARCH:
		switch (rand_r(seed) % 3) {
		case 0: cmd = mf_xstrdup("SEARCH FLAGGED"); break;
		case 1: cmd = mf_xasprintf("SEARCH SUBJECT \"%s\"", words[rand_r(seed) % WORDS_COUNT]); break;
		default: cmd = mf_xasprintf("SEARCH FROM \"sender%u\"", (unsigned)rand_r(seed) % 5); break;
		}
		break;
	case OP_APPEND:
		/* Numbers past the populated ones, distinct per client. */
		msg = bench_message(user, 1000000 + (*appended)++, BENCH_IMAP_APPEND_SIZE, &len);
		ret = bench_append(c, msg, len);
		free(msg);
		return ret;
	default:
		return -1;
	}
	ret = bench_command(c, cmd);
	free(cmd);
	return ret;
}

static void *bench_mix_thread(void *arg)
{
	struct bench_worker *w = arg;
	struct bench_imap *b = w->b;
	struct bench_conn *c = bench_open(b, w->n, true);
	unsigned seed = w->n * 2654435761u + 17, appended = 0;

	atomic_fetch_add(&b->ready, 1);
	if (c == NULL)
		return NULL;
	/* Start together: the clock starts when every session is logged in. */
	while (atomic_load(&b->ready) < b->clients)
		usleep(1000);
	while (mf_bench_now() < b->deadline) {
		enum bench_op op = bench_pick(&seed);
		double t0 = mf_bench_now();

		if (bench_mix_op(c, op, &seed, w->n, &appended) < 0) {
			char *what = mf_xasprintf("%s", op_names[op]);

			bench_error(b, what, c->last);
			free(what);
			if (c->broken)
				break;
			continue;
		}
		bench_record(b, op, mf_bench_now() - t0);
	}
	bench_close(&c);
	return NULL;
}

/* --- idle --------------------------------------------------------------------- */

struct bench_idle {
	struct bench_imap *b;
	struct bench_conn **conns;
	atomic_uint next;
};

/* Opens a session of user 0 in IDLE (RFC 2177), or NULL. */
static struct bench_conn *bench_idle_open(struct bench_imap *b)
{
	struct bench_conn *c = bench_open(b, 0, true);
	char *line;

	if (c == NULL)
		return NULL;
	line = mf_xasprintf("T%u IDLE\r\n", ++c->tag);
	if (mf_bench_write_all(c->fd, line, strlen(line)) < 0 || bench_wait(c, c->tag, true) != 1) {
		bench_error(b, "IDLE", c->last[0] != '\0' ? c->last : "no continuation");
		close(c->fd);
		free(c);
		c = NULL;
	}
	free(line);
	return c;
}

static void bench_idle_close(struct bench_conn **cp)
{
	struct bench_conn *c = *cp;

	if (c == NULL)
		return;
	/* DONE ends the IDLE command; its tagged reply follows. */
	if (mf_bench_write_all(c->fd, "DONE\r\n", 6) == 0)
		(void)bench_wait(c, c->tag, false);
	bench_close(cp);
}

static void *bench_idle_thread(void *arg)
{
	struct bench_idle *idle = arg;

	for (;;) {
		unsigned i = atomic_fetch_add(&idle->next, 1);

		if (i >= idle->b->clients)
			break;
		idle->conns[i] = bench_idle_open(idle->b);
	}
	return NULL;
}

static int bench_run_idle(struct bench_imap *b)
{
	struct bench_idle idle = { .b = b };
	pthread_t threads[BENCH_IMAP_IDLE_THREADS];
	unsigned i, open = 0;
	char buf[256];

	idle.conns = mf_xcalloc(b->clients, sizeof(*idle.conns));
	for (i = 0; i < BENCH_IMAP_IDLE_THREADS; i++)
		pthread_create(&threads[i], NULL, bench_idle_thread, &idle);
	for (i = 0; i < BENCH_IMAP_IDLE_THREADS; i++)
		pthread_join(threads[i], NULL);
	for (i = 0; i < b->clients; i++)
		open += idle.conns[i] != NULL;
	printf("idle=%u ready\n", open);
	fflush(stdout);
	while (fgets(buf, sizeof(buf), stdin) != NULL)
		;
	for (i = 0; i < b->clients; i++)
		bench_idle_close(&idle.conns[i]);
	free(idle.conns);
	return open == b->clients ? 0 : 1;
}

/* --- main ----------------------------------------------------------------------- */

static unsigned long bench_number(const char *s, unsigned long max)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v == 0 || v > max) {
		fprintf(stderr, "mf-bench-imap: bad number %s (1..%lu)\n", s, max);
		exit(2);
	}
	return v;
}

static void bench_print_mix(struct bench_imap *b, double secs)
{
	size_t total = 0, i;
	double *all;
	int op;

	for (op = 0; op < OP_COUNT; op++)
		total += b->lat_n[op];
	all = mf_xcalloc(total > 0 ? total : 1, sizeof(double));
	for (op = 0, i = 0; op < OP_COUNT; op++) {
		memcpy(all + i, b->lat[op], b->lat_n[op] * sizeof(double));
		i += b->lat_n[op];
	}
	printf("ops=%zu errors=%u seconds=%.3f ops_per_s=%.1f p50_ms=%.2f p99_ms=%.2f cpu_s=%.3f\n",
	       total, atomic_load(&b->errors), secs, secs > 0 ? (double)total / secs : 0.0,
	       mf_bench_percentile(all, total, 50) * 1e3, mf_bench_percentile(all, total, 99) * 1e3,
	       mf_bench_cpu_seconds());
	for (op = 0; op < OP_COUNT; op++)
		printf("op=%s count=%zu p50_ms=%.2f p99_ms=%.2f\n", op_names[op], b->lat_n[op],
		       mf_bench_percentile(b->lat[op], b->lat_n[op], 50) * 1e3,
		       mf_bench_percentile(b->lat[op], b->lat_n[op], 99) * 1e3);
	free(all);
}

int main(int argc, char **argv)
{
	struct bench_imap b;
	struct bench_worker *workers = NULL;
	const char *mode;
	double start, secs;
	unsigned i;
	int opt, ret;

	memset(&b, 0, sizeof(b));
	pthread_mutex_init(&b.lock, NULL);
	b.clients = 10;
	b.messages = 200;
	b.seconds = 30;
	if (argc < 2)
		goto usage;
	mode = argv[1];
	optind = 2;
	while ((opt = getopt(argc, argv, "c:m:d:u:p:")) != -1) {
		switch (opt) {
		case 'c': b.clients = (unsigned)bench_number(optarg, BENCH_IMAP_CLIENTS_MAX); break;
		case 'm': b.messages = (unsigned)bench_number(optarg, BENCH_IMAP_MESSAGES_MAX); break;
		case 'd': b.seconds = (unsigned)bench_number(optarg, BENCH_IMAP_SECONDS_MAX); break;
		case 'u': b.userfmt = optarg; break;
		case 'p': b.pass = optarg; break;
		default: goto usage;
		}
	}
	if (argc - optind != 2 || b.userfmt == NULL || b.pass == NULL)
		goto usage;
	b.host = argv[optind];
	b.port = (int)bench_number(argv[optind + 1], 65535);
	/* A server that closes on us must not kill the client with SIGPIPE. */
	signal(SIGPIPE, SIG_IGN);

	if (strcmp(mode, "idle") == 0)
		return bench_run_idle(&b) == 0 && atomic_load(&b.errors) == 0 ? 0 : 1;
	if (strcmp(mode, "populate") != 0 && strcmp(mode, "mix") != 0)
		goto usage;

	workers = mf_xcalloc(b.clients, sizeof(*workers));
	start = mf_bench_now();
	b.deadline = start + b.seconds; /* moved once everyone is logged in */
	for (i = 0; i < b.clients; i++) {
		workers[i].b = &b;
		workers[i].n = i;
	}
	if (strcmp(mode, "mix") == 0) {
		/* Log in first, then measure: the deadline is set when every
		 * client is ready. */
		b.deadline = 1e18;
		for (i = 0; i < b.clients; i++)
			pthread_create(&workers[i].thread, NULL, bench_mix_thread, &workers[i]);
		while (atomic_load(&b.ready) < b.clients)
			usleep(1000);
		start = mf_bench_now();
		b.deadline = start + b.seconds;
	} else {
		for (i = 0; i < b.clients; i++)
			pthread_create(&workers[i].thread, NULL, bench_populate_thread, &workers[i]);
	}
	for (i = 0; i < b.clients; i++)
		pthread_join(workers[i].thread, NULL);
	secs = mf_bench_now() - start;
	if (strcmp(mode, "mix") == 0)
		bench_print_mix(&b, secs);
	else
		printf("appended=%u errors=%u seconds=%.3f\n", b.clients * b.messages,
		       atomic_load(&b.errors), secs);
	ret = atomic_load(&b.errors) == 0 ? 0 : 1;
	for (i = 0; i < OP_COUNT; i++)
		free(b.lat[i]);
	free(workers);
	pthread_mutex_destroy(&b.lock);
	return ret;
usage:
	fprintf(stderr, "usage: mf-bench-imap populate|mix|idle [-c N] [-m MESSAGES] [-d SECONDS] "
			"-u USERFMT -p PASS HOST PORT\n");
	return 2;
}
