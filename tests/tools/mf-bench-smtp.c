/* mf-bench-smtp: SMTP load client for `make bench` that measures what
 * Postfix's smtp-source does not: the accept latency.  Like smtp-source it
 * sends one message per connection, no pipelining, no TLS, so both tools
 * load a server the same way.
 *
 *   mf-bench-smtp [-c CONNS] [-n MESSAGES] [-s SIZE] [-f FROM] [-t TO]
 *                 [-H HELO] [-i RUNID] HOST PORT
 *
 * Prints one line of key=value figures:
 *   sent (answered 250 after DATA), failed, seconds, msgs_per_s,
 *   accept_p50_ms/accept_p99_ms/accept_max_ms: end of DATA to the 250,
 *   session_p50_ms/session_p99_ms: connect to the 250 after DATA,
 *   cpu_s: this client's CPU time.
 * Exits 0 when every message was accepted, 1 otherwise (the replies of the
 * first failures go to stderr), 2 on usage errors.  Each message carries
 * Message-ID <bench-RUNID-N@bench.test> so the script can count arrivals. */
#include "buf.h"
#include "tests/tools/mf_bench.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

/* Cap on what the command line may ask for. */
#define BENCH_SMTP_CONNS_MAX 1000
#define BENCH_SMTP_MESSAGES_MAX 10000000
#define BENCH_SMTP_SIZE_MAX (64 * 1024 * 1024)
/* Failures whose replies are printed; the rest are only counted. */
#define BENCH_SMTP_REPORT_MAX 10

struct bench_smtp {
	const char *host;
	int port;
	unsigned messages;
	size_t size;
	const char *from, *to, *helo, *runid;
	const char *filler; /* body lines, built once */
	size_t filler_len;
	atomic_uint next;
	atomic_uint sent, failed, reported;
	double *accept_lat, *session_lat; /* indexed by message number */
};

static void bench_fail(struct bench_smtp *b, unsigned n, const char *what, const char *reply)
{
	atomic_fetch_add(&b->failed, 1);
	if (atomic_fetch_add(&b->reported, 1) < BENCH_SMTP_REPORT_MAX)
		fprintf(stderr, "mf-bench-smtp: message %u: %s: %s\n", n, what,
			reply != NULL ? reply : strerror(errno));
}

/* Reads a possibly multi-line reply; returns its code or -1.  The last line
 * stays in line. */
static int bench_reply(struct mf_bench_reader *r, char *line)
{
	for (;;) {
		long len = mf_bench_read_line(r, line);

		if (len < 4)
			return -1;
		if (line[3] == ' ')
			return atoi(line);
		if (line[3] != '-')
			return -1;
	}
}

static int bench_cmd(int fd, struct mf_bench_reader *r, char *line, const char *cmd)
{
	if (mf_bench_write_all(fd, cmd, strlen(cmd)) < 0)
		return -1;
	return bench_reply(r, line);
}

static void bench_one(struct bench_smtp *b, unsigned n, char *line)
{
	struct mf_bench_reader *r = mf_xmalloc(sizeof(*r));
	char *cmd = NULL, *head = NULL;
	double t0, t1;
	int fd, code;

	t0 = mf_bench_now();
	fd = mf_bench_connect(b->host, b->port);
	if (fd < 0) {
		bench_fail(b, n, "connect", NULL);
		goto out;
	}
	mf_bench_reader_init(r, fd);
	if ((code = bench_reply(r, line)) != 220) {
		bench_fail(b, n, "greeting", code < 0 ? "no reply" : line);
		goto out;
	}
	cmd = mf_xasprintf("EHLO %s\r\n", b->helo);
	if ((code = bench_cmd(fd, r, line, cmd)) != 250) {
		bench_fail(b, n, "EHLO", code < 0 ? "no reply" : line);
		goto out;
	}
	free(cmd);
	cmd = mf_xasprintf("MAIL FROM:<%s>\r\n", b->from);
	if ((code = bench_cmd(fd, r, line, cmd)) != 250) {
		bench_fail(b, n, "MAIL", code < 0 ? "no reply" : line);
		goto out;
	}
	free(cmd);
	cmd = mf_xasprintf("RCPT TO:<%s>\r\n", b->to);
	if ((code = bench_cmd(fd, r, line, cmd)) != 250) {
		bench_fail(b, n, "RCPT", code < 0 ? "no reply" : line);
		goto out;
	}
	if ((code = bench_cmd(fd, r, line, "DATA\r\n")) != 354) {
		bench_fail(b, n, "DATA", code < 0 ? "no reply" : line);
		goto out;
	}
	head = mf_xasprintf("From: <%s>\r\nTo: <%s>\r\nSubject: bench %u\r\n"
			    "Message-ID: <bench-%s-%u@bench.test>\r\n"
			    "Date: Sun, 22 Nov 2026 12:00:00 +0000\r\n\r\n",
			    b->from, b->to, n, b->runid, n);
	if (mf_bench_write_all(fd, head, strlen(head)) < 0 ||
	    mf_bench_write_all(fd, b->filler, b->filler_len) < 0 ||
	    mf_bench_write_all(fd, ".\r\n", 3) < 0) {
		bench_fail(b, n, "sending data", NULL);
		goto out;
	}
	t1 = mf_bench_now();
	if ((code = bench_reply(r, line)) != 250) {
		bench_fail(b, n, "end of data", code < 0 ? "no reply" : line);
		goto out;
	}
	b->accept_lat[n] = mf_bench_now() - t1;
	b->session_lat[n] = mf_bench_now() - t0;
	atomic_fetch_add(&b->sent, 1);
	/* The message is accepted; QUIT's answer does not matter to the figures. */
	(void)bench_cmd(fd, r, line, "QUIT\r\n");
out:
	if (fd >= 0)
		close(fd);
	free(cmd);
	free(head);
	free(r);
}

static void *bench_thread(void *arg)
{
	struct bench_smtp *b = arg;
	char *line = mf_xmalloc(MF_BENCH_LINE_MAX + 1);

	for (;;) {
		unsigned n = atomic_fetch_add(&b->next, 1);

		if (n >= b->messages)
			break;
		bench_one(b, n, line);
	}
	free(line);
	return NULL;
}

/* Body lines of 78 characters plus CRLF up to about size bytes; no line
 * starts with a dot, so no dot-stuffing is needed. */
static void bench_make_filler(struct bench_smtp *b)
{
	struct mf_buf buf;
	unsigned i = 0;

	mf_buf_init(&buf, BENCH_SMTP_SIZE_MAX + 128);
	while (buf.len < b->size) {
		(void)mf_buf_appendf(&buf, "%06u ", i++);
		(void)mf_buf_append_str(&buf, "abcdefghijklmnopqrstuvwxyz0123456789"
					      "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789\r\n");
	}
	b->filler_len = buf.len;
	b->filler = mf_buf_steal(&buf);
}

static unsigned long bench_number(const char *s, unsigned long max)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v == 0 || v > max) {
		fprintf(stderr, "mf-bench-smtp: bad number %s (1..%lu)\n", s, max);
		exit(2);
	}
	return v;
}

int main(int argc, char **argv)
{
	struct bench_smtp b;
	unsigned conns = 20, i, sent, failed;
	pthread_t *threads;
	double start, secs, *acc, *ses;
	int opt;

	memset(&b, 0, sizeof(b));
	b.messages = 5000;
	b.size = 10240;
	b.from = "bench@bench.test";
	b.to = "mail@localhost";
	b.helo = "bench.test";
	b.runid = "0";
	while ((opt = getopt(argc, argv, "c:n:s:f:t:H:i:")) != -1) {
		switch (opt) {
		case 'c': conns = (unsigned)bench_number(optarg, BENCH_SMTP_CONNS_MAX); break;
		case 'n': b.messages = (unsigned)bench_number(optarg, BENCH_SMTP_MESSAGES_MAX); break;
		case 's': b.size = bench_number(optarg, BENCH_SMTP_SIZE_MAX); break;
		case 'f': b.from = optarg; break;
		case 't': b.to = optarg; break;
		case 'H': b.helo = optarg; break;
		case 'i': b.runid = optarg; break;
		default: goto usage;
		}
	}
	if (argc - optind != 2)
		goto usage;
	b.host = argv[optind];
	b.port = (int)bench_number(argv[optind + 1], 65535);
	bench_make_filler(&b);
	b.accept_lat = mf_xcalloc(b.messages, sizeof(double));
	b.session_lat = mf_xcalloc(b.messages, sizeof(double));
	threads = mf_xcalloc(conns, sizeof(*threads));

	start = mf_bench_now();
	for (i = 0; i < conns; i++) {
		if (pthread_create(&threads[i], NULL, bench_thread, &b) != 0) {
			fprintf(stderr, "mf-bench-smtp: pthread_create failed\n");
			return 1;
		}
	}
	for (i = 0; i < conns; i++)
		pthread_join(threads[i], NULL);
	secs = mf_bench_now() - start;

	sent = atomic_load(&b.sent);
	failed = atomic_load(&b.failed);
	/* Latencies of accepted messages only. */
	acc = mf_xcalloc(b.messages, sizeof(double));
	ses = mf_xcalloc(b.messages, sizeof(double));
	for (i = 0, sent = 0; i < b.messages; i++) {
		if (b.session_lat[i] > 0) {
			acc[sent] = b.accept_lat[i];
			ses[sent] = b.session_lat[i];
			sent++;
		}
	}
	printf("sent=%u failed=%u seconds=%.3f msgs_per_s=%.1f "
	       "accept_p50_ms=%.2f accept_p99_ms=%.2f accept_max_ms=%.2f "
	       "session_p50_ms=%.2f session_p99_ms=%.2f cpu_s=%.3f\n",
	       sent, failed, secs, secs > 0 ? sent / secs : 0.0,
	       mf_bench_percentile(acc, sent, 50) * 1e3, mf_bench_percentile(acc, sent, 99) * 1e3,
	       mf_bench_percentile(acc, sent, 100) * 1e3,
	       mf_bench_percentile(ses, sent, 50) * 1e3, mf_bench_percentile(ses, sent, 99) * 1e3,
	       mf_bench_cpu_seconds());
	free(acc);
	free(ses);
	free(b.accept_lat);
	free(b.session_lat);
	free(threads);
	free((char *)b.filler);
	return failed == 0 && sent == b.messages ? 0 : 1;
usage:
	fprintf(stderr, "usage: mf-bench-smtp [-c CONNS] [-n MESSAGES] [-s SIZE] [-f FROM] "
			"[-t TO] [-H HELO] [-i RUNID] HOST PORT\n");
	return 2;
}
