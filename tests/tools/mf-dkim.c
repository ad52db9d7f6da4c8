/* mf-dkim: signs or verifies a message with dnsauth's DKIM code, without
 * NATS or DNS, for the cross-checks against dkimpy and OpenDKIM.
 *
 *   mf-dkim sign -k KEY.pem -d DOMAIN -s SELECTOR [-c relaxed/simple] [-x SECONDS] [-t NOW]
 *       reads a message on stdin, writes it signed (our header prepended)
 *   mf-dkim verify [-r NAME=RECORD]... [-1] [-l] [-t NOW] [-m BITS]
 *       NAME is selector._domainkey.domain; prints one line per signature:
 *       "<status> d=<domain> s=<selector> a=<alg> [error]"; exits 0 when
 *       there is at least one signature and all pass, 1 otherwise
 *   mf-dkim record KEY.pem
 *       prints the DNS TXT record for the key */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "keygen.h"
#include "services/dnsauth/dkim.h"
#include "services/dnsauth/resolver.h"

#define MSG_MAX (64 * 1024 * 1024)

static char *read_stdin(size_t *len_r)
{
	struct mf_buf b;
	char chunk[65536];
	size_t n;

	mf_buf_init(&b, MSG_MAX);
	while ((n = fread(chunk, 1, sizeof(chunk), stdin)) > 0) {
		if (mf_buf_append(&b, chunk, n) < 0) {
			fprintf(stderr, "mf-dkim: message too large\n");
			exit(2);
		}
	}
	*len_r = b.len;
	if (b.data == NULL)
		return mf_xstrdup("");
	return mf_buf_steal(&b);
}

static int usage(void)
{
	fprintf(stderr, "usage: mf-dkim sign -k key -d domain -s selector [-c h/b] [-x secs] [-t now]\n"
			"       mf-dkim verify [-r name=record]... [-1] [-l] [-t now] [-m bits]\n"
			"       mf-dkim record key\n");
	return 2;
}

static int cmd_sign(int argc, char **argv)
{
	struct dkim_sign_settings set = { 0 };
	const char *keyfile = NULL, *err = NULL;
	struct dkim_privkey *key = NULL;
	char *msg, *hdr = NULL;
	size_t len;
	int c;

	while ((c = getopt(argc, argv, "k:d:s:c:x:t:")) != -1) {
		switch (c) {
		case 'k': keyfile = optarg; break;
		case 'd': set.domain = optarg; break;
		case 's': set.selector = optarg; break;
		case 'x': set.expiration_s = strtoull(optarg, NULL, 10); break;
		case 't': set.now = strtoll(optarg, NULL, 10); break;
		case 'c':
			set.canon_set = true;
			set.header_canon = strncmp(optarg, "simple", 6) == 0 ? DKIM_CANON_SIMPLE
									     : DKIM_CANON_RELAXED;
			set.body_canon = strstr(optarg, "/simple") != NULL ? DKIM_CANON_SIMPLE
									    : DKIM_CANON_RELAXED;
			break;
		default: return usage();
		}
	}
	if (keyfile == NULL || set.domain == NULL || set.selector == NULL)
		return usage();
	if (dkim_privkey_load(keyfile, &key, &err) < 0) {
		fprintf(stderr, "mf-dkim: %s\n", err);
		return 2;
	}
	set.key = key;
	msg = read_stdin(&len);
	if (dkim_sign(&set, msg, len, &hdr, &err) < 0) {
		fprintf(stderr, "mf-dkim: %s\n", err);
		return 2;
	}
	fwrite(hdr, 1, strlen(hdr), stdout);
	fwrite(msg, 1, len, stdout);
	free(hdr);
	free(msg);
	dkim_privkey_free(&key);
	return 0;
}

static int cmd_verify(int argc, char **argv)
{
	struct dkim_verify_settings set = { 0 };
	struct dns_resolver *r = dns_resolver_create_memory();
	struct dkim_result *res = NULL;
	size_t n = 0, len;
	const char *err = NULL;
	char *msg;
	int c, ret = 0;

	while ((c = getopt(argc, argv, "r:1lt:m:")) != -1) {
		switch (c) {
		case 'r': {
			char *eq = strchr(optarg, '=');
			if (eq == NULL)
				return usage();
			*eq = '\0';
			if (dns_memory_add(r, optarg, DNS_TYPE_TXT, eq + 1, &err) < 0) {
				fprintf(stderr, "mf-dkim: %s\n", err);
				return 2;
			}
			break;
		}
		case '1': set.allow_sha1 = true; break;
		case 'l': set.allow_length = true; break;
		case 't': set.now = strtoll(optarg, NULL, 10); break;
		case 'm': set.rsa_min_bits = (unsigned)strtoul(optarg, NULL, 10); break;
		default: return usage();
		}
	}
	msg = read_stdin(&len);
	dkim_verify(r, &set, msg, len, &res, &n);
	if (n == 0) {
		printf("none\n");
		ret = 1;
	}
	for (size_t i = 0; i < n; i++) {
		printf("%s d=%s s=%s a=%s%s%s\n", dkim_status_name(res[i].status),
		       res[i].domain ? res[i].domain : "-", res[i].selector ? res[i].selector : "-",
		       res[i].algorithm ? res[i].algorithm : "-", res[i].error ? " " : "",
		       res[i].error ? res[i].error : "");
		if (res[i].status != DKIM_PASS)
			ret = 1;
	}
	dkim_results_free(&res, n);
	dns_resolver_free(&r);
	free(msg);
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
	if (strcmp(argv[1], "record") == 0 && argc == 3) {
		const char *err = NULL;
		char *rec = mf_keygen_dkim_record(argv[2], &err);
		if (rec == NULL) {
			fprintf(stderr, "mf-dkim: %s\n", err);
			return 2;
		}
		printf("%s\n", rec);
		free(rec);
		return 0;
	}
	return usage();
}
