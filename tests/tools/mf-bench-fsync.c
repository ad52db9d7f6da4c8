/* mf-bench-fsync: the disk's rate of durable new files, the physical bound
 * for "one file per accepted message" (BENCHMARKING.md): N times write
 * SIZE bytes to a temporary file, fsync it, rename it into place and fsync
 * the directory, as a mail server does before it answers 250.
 *
 *   mf-bench-fsync [-n COUNT] [-s SIZE] DIR
 *
 * DIR must exist; the files stay there (deleting many files slows the
 * next file-heavy run on this file system, so the caller moves them aside).
 * Prints "files=N seconds=S files_per_s=R"; exits 0, or 1 on an I/O error. */
#include "buf.h"
#include "tests/tools/mf_bench.h"

#include <fcntl.h>
#include <stdio.h>

#define BENCH_FSYNC_COUNT_MAX 1000000
#define BENCH_FSYNC_SIZE_MAX (16 * 1024 * 1024)

static unsigned long bench_number(const char *s, unsigned long max)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v == 0 || v > max) {
		fprintf(stderr, "mf-bench-fsync: bad number %s (1..%lu)\n", s, max);
		exit(2);
	}
	return v;
}

static int bench_file(const char *dir, int dirfd, unsigned i, const char *data, size_t size,
		      const char **error_r)
{
	char *tmp = mf_xasprintf("%s/tmp-%u", dir, i);
	char *final = mf_xasprintf("%s/file-%u", dir, i);
	int fd = -1, ret = -1;

	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		*error_r = "open";
		goto out;
	}
	if (mf_bench_write_all(fd, data, size) < 0) {
		*error_r = "write";
		goto out;
	}
	if (fsync(fd) < 0) {
		*error_r = "fsync";
		goto out;
	}
	if (rename(tmp, final) < 0) {
		*error_r = "rename";
		goto out;
	}
	if (fsync(dirfd) < 0) {
		*error_r = "fsync of the directory";
		goto out;
	}
	ret = 0;
out:
	if (fd >= 0)
		close(fd);
	free(tmp);
	free(final);
	return ret;
}

int main(int argc, char **argv)
{
	unsigned long count = 2000, size = 10240, i;
	const char *dir, *error = NULL;
	char *data;
	double start, secs;
	int opt, dirfd;

	while ((opt = getopt(argc, argv, "n:s:")) != -1) {
		switch (opt) {
		case 'n': count = bench_number(optarg, BENCH_FSYNC_COUNT_MAX); break;
		case 's': size = bench_number(optarg, BENCH_FSYNC_SIZE_MAX); break;
		default: goto usage;
		}
	}
	if (argc - optind != 1)
		goto usage;
	dir = argv[optind];
	dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dirfd < 0) {
		fprintf(stderr, "mf-bench-fsync: %s: %s\n", dir, strerror(errno));
		return 1;
	}
	data = mf_xmalloc(size);
	memset(data, 'x', size);
	start = mf_bench_now();
	for (i = 0; i < count; i++) {
		if (bench_file(dir, dirfd, (unsigned)i, data, size, &error) < 0) {
			fprintf(stderr, "mf-bench-fsync: file %lu: %s: %s\n", i, error,
				strerror(errno));
			free(data);
			close(dirfd);
			return 1;
		}
	}
	secs = mf_bench_now() - start;
	printf("files=%lu seconds=%.3f files_per_s=%.1f\n", count, secs,
	       secs > 0 ? (double)count / secs : 0.0);
	free(data);
	close(dirfd);
	return 0;
usage:
	fprintf(stderr, "usage: mf-bench-fsync [-n COUNT] [-s SIZE] DIR\n");
	return 2;
}
