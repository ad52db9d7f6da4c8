/* mf_bench: small helpers shared by the benchmark load clients
 * (mf-bench-smtp, mf-bench-imap, mf-bench-fsync): a monotonic clock,
 * latency percentiles, a buffered line reader with a cap and a deadline,
 * and the client's own CPU time, so that the bench script can report the
 * load generator's share of the machine (BENCHMARKING.md). */
#ifndef MF_BENCH_H
#define MF_BENCH_H

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

/* A server reply line longer than this is an error, not a reason to grow. */
#define MF_BENCH_LINE_MAX 8192
/* Longest wait for one reply; a stuck server fails the run instead of hanging it. */
#define MF_BENCH_IO_TIMEOUT_S 60

static inline double mf_bench_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static inline int mf_bench_cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y ? 1 : 0;
}

/* Sorts v in place and returns the p-th percentile (0..100), nearest rank. */
static inline double mf_bench_percentile(double *v, size_t n, double p)
{
	size_t rank;

	if (n == 0)
		return 0;
	qsort(v, n, sizeof(*v), mf_bench_cmp_double);
	rank = (size_t)(p / 100.0 * (double)n + 0.999999);
	if (rank < 1)
		rank = 1;
	if (rank > n)
		rank = n;
	return v[rank - 1];
}

/* CPU seconds (user + system) this process used so far. */
static inline double mf_bench_cpu_seconds(void)
{
	struct rusage ru;

	if (getrusage(RUSAGE_SELF, &ru) < 0)
		return 0;
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* A TCP connection to 127.0.0.1-style numeric host:port with read/write
 * deadlines.  Returns the socket or -1 with errno set. */
static inline int mf_bench_connect(const char *host, int port)
{
	struct sockaddr_in sin;
	struct timeval tv = { .tv_sec = MF_BENCH_IO_TIMEOUT_S };
	int fd, one = 1;

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((unsigned short)port);
	if (inet_pton(AF_INET, host, &sin.sin_addr) != 1) {
		errno = EINVAL;
		return -1;
	}
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	(void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	(void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0) {
		int e = errno;

		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

static inline int mf_bench_write_all(int fd, const void *data, size_t len)
{
	const char *p = data;

	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Buffered reader for one connection. */
struct mf_bench_reader {
	int fd;
	size_t start, end;
	char buf[MF_BENCH_LINE_MAX * 2];
};

static inline void mf_bench_reader_init(struct mf_bench_reader *r, int fd)
{
	r->fd = fd;
	r->start = r->end = 0;
}

/* Reads one line (without CRLF, NUL-terminated) into line (size
 * MF_BENCH_LINE_MAX + 1).  Returns its length, or -1 on EOF, timeout,
 * error or a line over MF_BENCH_LINE_MAX. */
static inline long mf_bench_read_line(struct mf_bench_reader *r, char *line)
{
	for (;;) {
		char *nl = memchr(r->buf + r->start, '\n', r->end - r->start);
		ssize_t n;

		if (nl != NULL) {
			size_t len = (size_t)(nl - (r->buf + r->start));

			if (len > MF_BENCH_LINE_MAX)
				return -1;
			memcpy(line, r->buf + r->start, len);
			if (len > 0 && line[len - 1] == '\r')
				len--;
			line[len] = '\0';
			r->start = (size_t)(nl - r->buf) + 1;
			return (long)len;
		}
		if (r->end - r->start > MF_BENCH_LINE_MAX)
			return -1;
		if (r->start > 0) {
			memmove(r->buf, r->buf + r->start, r->end - r->start);
			r->end -= r->start;
			r->start = 0;
		}
		n = read(r->fd, r->buf + r->end, sizeof(r->buf) - r->end);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		r->end += (size_t)n;
	}
}

/* Reads and discards exactly len bytes (an IMAP literal).  0 or -1. */
static inline int mf_bench_skip(struct mf_bench_reader *r, size_t len)
{
	while (len > 0) {
		size_t have = r->end - r->start;
		ssize_t n;

		if (have > 0) {
			size_t take = have < len ? have : len;

			r->start += take;
			len -= take;
			continue;
		}
		r->start = r->end = 0;
		n = read(r->fd, r->buf, sizeof(r->buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		r->end = (size_t)n;
	}
	return 0;
}

#endif
