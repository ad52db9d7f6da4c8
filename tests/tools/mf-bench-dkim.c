/* mf-bench-dkim: DKIM signings or verifications per second with dnsauth's
 * code, in one process over a list of message files, the way OpenDKIM's
 * test mode (`opendkim -t FILE,FILE,...`) works through its list: each
 * message is read from its file, signed or verified, and the result
 * printed, one after the other on one thread.  The bench script times the
 * whole process for both, so process start-up counts on both sides.
 *
 *   mf-bench-dkim sign -k KEY.pem -d DOMAIN -s SELECTOR [-o OUTDIR] FILE...
 *       prints each DKIM-Signature header field (as opendkim -t does);
 *       with -o, writes each signed message to OUTDIR/<file's basename>
 *       instead (to prepare the verification set)
 *   mf-bench-dkim verify -r NAME=RECORD [-r ...] FILE...
 *       NAME is selector._domainkey.domain; key records come from memory,
 *       as OpenDKIM's TestDNSData does; prints "FILE: STATUS ..." for
 *       every message that does not pass
 *
 * Last line (stderr): "messages=N ok=N failed=N seconds=S cpu_s=C
 * msgs_per_s=R" (seconds and the rate from the first read to the last
 * result).  Exits 0 when every message was signed or passed, 1 otherwise,
 * 2 on bad usage. */
#include "buf.h"
#include "services/dnsauth/dkim.h"
#include "services/dnsauth/resolver.h"
#include "tests/tools/mf_bench.h"

#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>

/* A message over this is refused (the bench's messages are far smaller). */
#define BENCH_DKIM_MSG_MAX (64 * 1024 * 1024)

static int usage(void)
{
	fprintf(stderr, "usage: mf-bench-dkim sign -k key.pem -d domain -s selector [-o outdir] file...\n"
			"       mf-bench-dkim verify -r name=record [-r ...] file...\n");
	return 2;
}

/* Reads a whole file into a NUL-terminated buffer (caller frees).
 * Returns NULL with errno set. */
static char *read_file(const char *path, size_t *len_r)
{
	struct mf_buf b;
	char chunk[65536];
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return NULL;
	mf_buf_init(&b, BENCH_DKIM_MSG_MAX);
	while ((n = read(fd, chunk, sizeof(chunk))) != 0) {
		if (n < 0) {
			if (errno == EINTR)
				continue;
			goto fail;
		}
		if (mf_buf_append(&b, chunk, (size_t)n) < 0) {
			errno = EFBIG;
			goto fail;
		}
	}
	close(fd);
	*len_r = b.len;
	return b.data != NULL ? mf_buf_steal(&b) : mf_xstrdup("");
fail: {
	int e = errno;

	close(fd);
	mf_buf_free(&b);
	errno = e;
	return NULL;
}
}

static int write_file(const char *path, const char *hdr, const char *msg, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	int ret = -1;

	if (fd < 0)
		return -1;
	if (mf_bench_write_all(fd, hdr, strlen(hdr)) == 0 && mf_bench_write_all(fd, msg, len) == 0)
		ret = 0;
	if (close(fd) < 0)
		ret = -1;
	return ret;
}

static void summary(unsigned long n, unsigned long ok, double t0, double c0)
{
	double secs = mf_bench_now() - t0, cpu = mf_bench_cpu_seconds() - c0;

	fprintf(stderr, "messages=%lu ok=%lu failed=%lu seconds=%.3f cpu_s=%.3f msgs_per_s=%.1f\n", n,
		ok, n - ok, secs, cpu, secs > 0 ? (double)n / secs : 0.0);
}

static int cmd_sign(int argc, char **argv)
{
	struct dkim_sign_settings set = { 0 };
	struct dkim_privkey *key = NULL;
	const char *keyfile = NULL, *outdir = NULL, *err = NULL;
	unsigned long n = 0, ok = 0;
	double t0, c0;
	int c;

	while ((c = getopt(argc, argv, "k:d:s:o:")) != -1) {
		switch (c) {
		case 'k': keyfile = optarg; break;
		case 'd': set.domain = optarg; break;
		case 's': set.selector = optarg; break;
		case 'o': outdir = optarg; break;
		default: return usage();
		}
	}
	if (keyfile == NULL || set.domain == NULL || set.selector == NULL || optind >= argc)
		return usage();
	if (dkim_privkey_load(keyfile, &key, &err) < 0) {
		fprintf(stderr, "mf-bench-dkim: %s: %s\n", keyfile, err);
		return 2;
	}
	set.key = key;
	/* relaxed/relaxed and the default header list, as the submission
	 * path signs. */
	t0 = mf_bench_now();
	c0 = mf_bench_cpu_seconds();
	for (int i = optind; i < argc; i++, n++) {
		size_t len;
		char *hdr = NULL, *msg = read_file(argv[i], &len);

		if (msg == NULL) {
			fprintf(stderr, "%s: %s\n", argv[i], strerror(errno));
			continue;
		}
		if (dkim_sign(&set, msg, len, &hdr, &err) < 0) {
			fprintf(stderr, "%s: %s\n", argv[i], err);
		} else if (outdir != NULL) {
			char *copy = mf_xstrdup(argv[i]);
			char *path = mf_xasprintf("%s/%s", outdir, basename(copy));

			if (write_file(path, hdr, msg, len) < 0)
				fprintf(stderr, "%s: %s\n", path, strerror(errno));
			else
				ok++;
			free(path);
			free(copy);
		} else {
			printf("%s:\n%s", argv[i], hdr);
			ok++;
		}
		free(hdr);
		free(msg);
	}
	fflush(stdout);
	summary(n, ok, t0, c0);
	dkim_privkey_free(&key);
	return ok == n ? 0 : 1;
}

static int cmd_verify(int argc, char **argv)
{
	struct dkim_verify_settings set = { 0 };
	struct dns_resolver *r = dns_resolver_create_memory();
	const char *err = NULL;
	unsigned long n = 0, ok = 0;
	double t0, c0;
	int c, ret = 2;

	while ((c = getopt(argc, argv, "r:")) != -1) {
		char *eq;

		switch (c) {
		case 'r':
			eq = strchr(optarg, '=');
			if (eq == NULL) {
				ret = usage();
				goto out;
			}
			*eq = '\0';
			if (dns_memory_add(r, optarg, DNS_TYPE_TXT, eq + 1, &err) < 0) {
				fprintf(stderr, "mf-bench-dkim: %s\n", err);
				goto out;
			}
			break;
		default:
			ret = usage();
			goto out;
		}
	}
	if (optind >= argc) {
		ret = usage();
		goto out;
	}
	t0 = mf_bench_now();
	c0 = mf_bench_cpu_seconds();
	for (int i = optind; i < argc; i++, n++) {
		struct dkim_result *res = NULL;
		size_t len, count = 0;
		char *msg = read_file(argv[i], &len);
		bool pass;

		if (msg == NULL) {
			fprintf(stderr, "%s: %s\n", argv[i], strerror(errno));
			continue;
		}
		dkim_verify(r, &set, msg, len, &res, &count);
		pass = count > 0;
		for (size_t j = 0; j < count; j++)
			if (res[j].status != DKIM_PASS)
				pass = false;
		if (pass)
			ok++;
		else
			printf("%s: %s %s\n", argv[i],
			       count > 0 ? dkim_status_name(res[0].status) : "none",
			       count > 0 && res[0].error != NULL ? res[0].error : "");
		dkim_results_free(&res, count);
		free(msg);
	}
	fflush(stdout);
	summary(n, ok, t0, c0);
	ret = ok == n ? 0 : 1;
out:
	dns_resolver_free(&r);
	return ret;
}

int main(int argc, char **argv)
{
	if (argc < 2)
		return usage();
	if (strcmp(argv[1], "sign") == 0)
		return cmd_sign(argc - 1, argv + 1);
	if (strcmp(argv[1], "verify") == 0)
		return cmd_verify(argc - 1, argv + 1);
	return usage();
}
