/* tlspubkey, account loginattempts; see cmd_tlspubkey.h. */
#include "cmd_tlspubkey.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "buf.h"
#include "cli_bus.h"
#include "domains.h"
#include "log.h"
#include "storeclient.h"

#define CLI_TLSPUBKEY_TIMEOUT_MS 10000
/* A certificate or key file larger than this is not one. */
#define CLI_TLSPUBKEY_FILE_MAX (256 * 1024)

static const char tlspubkey_usage[] =
	"usage: mailfleet tlspubkey add ACCOUNT NAME FILE [--login ADDRESS] [--no-preauth] "
	"[-c mailfleet.conf]\n"
	"       mailfleet tlspubkey list ACCOUNT [-c mailfleet.conf]\n"
	"       mailfleet tlspubkey remove ACCOUNT FINGERPRINT [-c mailfleet.conf]\n"
	"  FILE: the client's certificate or public key, PEM or DER; only the public\n"
	"  key counts (names, dates and issuer are ignored).  --login: the address it\n"
	"  logs in as (default: the account's first address).  --no-preauth: IMAP\n"
	"  clients must still authenticate (EXTERNAL works) instead of getting PREAUTH.\n";

static const char attempts_usage[] =
	"usage: mailfleet account loginattempts NAME [--limit N] [-c mailfleet.conf]\n";

static const char options_usage[] =
	"usage: mailfleet account options NAME [--cram-md5 yes|no] [--generated-only yes|no] "
	"[-c mailfleet.conf]\n"
	"  --cram-md5 yes: keep CRAM-MD5 material (password-equivalent) from the next\n"
	"  password set on; no: delete it now.  --generated-only yes: users may set only\n"
	"  generated passwords (the admin may set any).\n";

struct opts {
	const char *config_path;
	const char *login;
	bool no_preauth;
	unsigned long limit;
	int cram_md5;          /* -1: unchanged, 0 no, 1 yes */
	int generated_only;
	char **args;
	int nargs;
};

static int parse_opts(int argc, char **argv, struct opts *o)
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "login", required_argument, NULL, 'l' },
		{ "no-preauth", no_argument, NULL, 'n' },
		{ "limit", required_argument, NULL, 'L' },
		{ "cram-md5", required_argument, NULL, 'C' },
		{ "generated-only", required_argument, NULL, 'G' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	memset(o, 0, sizeof(*o));
	o->cram_md5 = -1;
	o->generated_only = -1;
	optind = 1;
	while ((c = getopt_long(argc, argv, "c:", longopts, NULL)) != -1) {
		switch (c) {
		case 'c':
			o->config_path = optarg;
			break;
		case 'l':
			o->login = optarg;
			break;
		case 'n':
			o->no_preauth = true;
			break;
		case 'C':
		case 'G': {
			int v = strcmp(optarg, "yes") == 0 ? 1 : strcmp(optarg, "no") == 0 ? 0 : -1;

			if (v < 0)
				return -1;
			if (c == 'C')
				o->cram_md5 = v;
			else
				o->generated_only = v;
			break;
		}
		case 'L': {
			char *end;

			o->limit = strtoul(optarg, &end, 10);
			if (*end != '\0' || o->limit > 10000)
				return -1;
			break;
		}
		default:
			return -1;
		}
	}
	o->args = argv + optind;
	o->nargs = argc - optind;
	return 0;
}

/* Reads a certificate or public key (PEM or DER) and returns its DER
 * SubjectPublicKeyInfo (OPENSSL_free).  Returns 0 or -1 after printing. */
static int read_spki(const char *path, unsigned char **der_r, int *len_r)
{
	unsigned char *data = NULL;
	size_t n = 0;
	EVP_PKEY *pkey = NULL;
	X509 *cert = NULL;
	BIO *bio = NULL;
	FILE *f = fopen(path, "rb");
	const unsigned char *p;
	int ret = -1;

	*der_r = NULL;
	if (f == NULL) {
		perror(path);
		return -1;
	}
	data = mf_xmalloc(CLI_TLSPUBKEY_FILE_MAX + 1);
	n = fread(data, 1, CLI_TLSPUBKEY_FILE_MAX + 1, f);
	fclose(f);
	if (n == 0 || n > CLI_TLSPUBKEY_FILE_MAX) {
		fprintf(stderr, "mailfleet tlspubkey: %s: empty or too large\n", path);
		goto out;
	}
	bio = BIO_new_mem_buf(data, (int)n);
	cert = PEM_read_bio_X509(bio, NULL, NULL, NULL);
	if (cert == NULL) {
		(void)BIO_reset(bio);
		pkey = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
	}
	if (cert == NULL && pkey == NULL) {
		p = data;
		cert = d2i_X509(NULL, &p, (long)n);
	}
	if (cert == NULL && pkey == NULL) {
		p = data;
		pkey = d2i_PUBKEY(NULL, &p, (long)n);
	}
	if (cert != NULL)
		pkey = X509_get_pubkey(cert);
	if (pkey == NULL) {
		fprintf(stderr, "mailfleet tlspubkey: %s: no certificate or public key (PEM or DER)\n",
			path);
		goto out;
	}
	*len_r = i2d_PUBKEY(pkey, der_r);
	if (*len_r <= 0) {
		fprintf(stderr, "mailfleet tlspubkey: cannot encode the public key\n");
		goto out;
	}
	ret = 0;
out:
	EVP_PKEY_free(pkey);
	X509_free(cert);
	BIO_free(bio);
	free(data);
	return ret;
}

/* The account's first address from domains.conf (allocated), or NULL. */
static char *first_address(const struct mf_config *config, const char *account)
{
	struct mf_domains *d = NULL;
	const struct mf_account *a;
	const char *err;
	char *addr = NULL;

	if (mf_domains_load(config->domains_file, &d, &err) < 0) {
		fprintf(stderr, "%s\n", err);
		return NULL;
	}
	a = mf_domains_find_account(d, account);
	if (a == NULL)
		fprintf(stderr, "mailfleet tlspubkey: no account %s in domains.conf\n", account);
	for (size_t i = 0; a != NULL && i < a->addresses_count && addr == NULL; i++) {
		if (a->addresses[i].localpart[0] != '\0')
			addr = mf_xstrdup(a->addresses[i].address);
	}
	if (a != NULL && addr == NULL)
		fprintf(stderr, "mailfleet tlspubkey: account %s has no address; give --login\n",
			account);
	mf_domains_unref(&d);
	return addr;
}

static int key_add(struct opts *o)
{
	struct mf_config *config = NULL;
	struct mf_bus *bus = NULL;
	unsigned char *der = NULL;
	char *login = NULL, *fp = NULL;
	enum mf_bus_status status;
	const char *err;
	int len = 0, ret = 1;

	if (o->nargs != 3) {
		fputs(tlspubkey_usage, stderr);
		return 2;
	}
	if (read_spki(o->args[2], &der, &len) < 0)
		return 1;
	if (cli_bus_open(o->config_path, &config, &bus) < 0)
		goto out;
	login = o->login != NULL ? mf_xstrdup(o->login) : first_address(config, o->args[0]);
	if (login == NULL)
		goto out;
	if (mf_storeclient_tls_pubkey_add(bus, NULL, o->args[0], o->args[1], der, (size_t)len, login,
					  o->no_preauth, CLI_TLSPUBKEY_TIMEOUT_MS, &fp, &status,
					  &err) < 0) {
		fprintf(stderr, "mailfleet tlspubkey add: %s\n", err);
		goto out;
	}
	printf("key %s added to account %s (login %s%s)\n", fp, o->args[0], login,
	       o->no_preauth ? ", no IMAP PREAUTH" : "");
	ret = 0;
out:
	OPENSSL_free(der);
	free(login);
	free(fp);
	cli_bus_close(&config, &bus);
	return ret;
}

static int key_list(struct opts *o)
{
	struct mf_config *config = NULL;
	struct mf_bus *bus = NULL;
	struct mf_storeclient_tls_pubkey *keys = NULL;
	size_t n = 0;
	enum mf_bus_status status;
	const char *err;
	int ret = 1;

	if (o->nargs != 1) {
		fputs(tlspubkey_usage, stderr);
		return 2;
	}
	if (cli_bus_open(o->config_path, &config, &bus) < 0)
		return 1;
	if (mf_storeclient_tls_pubkey_list(bus, NULL, o->args[0], CLI_TLSPUBKEY_TIMEOUT_MS, &keys,
					   &n, &status, &err) < 0) {
		fprintf(stderr, "mailfleet tlspubkey list: %s\n", err);
		goto out;
	}
	for (size_t i = 0; i < n; i++)
		printf("%s name=%s login=%s preauth=%s\n", keys[i].fingerprint, keys[i].name,
		       keys[i].login_address, keys[i].no_imap_preauth ? "no" : "yes");
	ret = 0;
out:
	mf_storeclient_tls_pubkeys_free(&keys, n);
	cli_bus_close(&config, &bus);
	return ret;
}

static int key_remove(struct opts *o)
{
	struct mf_config *config = NULL;
	struct mf_bus *bus = NULL;
	enum mf_bus_status status;
	const char *err;
	bool removed = false;
	int ret = 1;

	if (o->nargs != 2) {
		fputs(tlspubkey_usage, stderr);
		return 2;
	}
	if (cli_bus_open(o->config_path, &config, &bus) < 0)
		return 1;
	if (mf_storeclient_tls_pubkey_remove(bus, NULL, o->args[0], o->args[1],
					     CLI_TLSPUBKEY_TIMEOUT_MS, &removed, &status,
					     &err) < 0) {
		fprintf(stderr, "mailfleet tlspubkey remove: %s\n", err);
		goto out;
	}
	if (!removed) {
		fprintf(stderr, "mailfleet tlspubkey remove: account %s has no key %s\n",
			o->args[0], o->args[1]);
		goto out;
	}
	printf("key %s removed from account %s\n", o->args[1], o->args[0]);
	ret = 0;
out:
	cli_bus_close(&config, &bus);
	return ret;
}

int cli_cmd_tlspubkey(int argc, char **argv)
{
	const char *sub = argc >= 2 ? argv[1] : "";
	struct opts o;
	const char *err;

	mf_log_set_level("bus", "error", &err);
	if (argc < 2 || parse_opts(argc - 1, argv + 1, &o) < 0) {
		fputs(tlspubkey_usage, stderr);
		return 2;
	}
	if (strcmp(sub, "add") == 0)
		return key_add(&o);
	if (strcmp(sub, "list") == 0)
		return key_list(&o);
	if (strcmp(sub, "remove") == 0)
		return key_remove(&o);
	fputs(tlspubkey_usage, stderr);
	return 2;
}

static void iso_time(int64_t ms, char buf[32])
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(buf, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

int cli_account_loginattempts(int argc, char **argv)
{
	struct mf_config *config = NULL;
	struct mf_bus *bus = NULL;
	struct mf_storeclient_login_attempt *list = NULL;
	size_t n = 0;
	enum mf_bus_status status;
	struct opts o;
	const char *err;
	int ret = 1;

	mf_log_set_level("bus", "error", &err);
	if (parse_opts(argc, argv, &o) < 0 || o.nargs != 1) {
		fputs(attempts_usage, stderr);
		return 2;
	}
	if (cli_bus_open(o.config_path, &config, &bus) < 0)
		return 1;
	if (mf_storeclient_login_attempts(bus, NULL, o.args[0], (uint32_t)o.limit,
					  CLI_TLSPUBKEY_TIMEOUT_MS, &list, &n, &status, &err) < 0) {
		fprintf(stderr, "mailfleet account loginattempts: %s\n", err);
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		char last[32], first[32];

		iso_time(list[i].last_ms, last);
		iso_time(list[i].first_ms, first);
		printf("last=%s first=%s count=%llu result=%s protocol=%s mechanism=%s login=\"%s\" "
		       "ip=%s tls=\"%s\" tlskey=%s client=\"%s\"\n", last, first,
		       (unsigned long long)list[i].count, list[i].result, list[i].protocol,
		       list[i].mechanism, list[i].login, list[i].remote_ip, list[i].tls,
		       list[i].tls_pubkey[0] != '\0' ? list[i].tls_pubkey : "-", list[i].client_id);
	}
	ret = 0;
out:
	mf_storeclient_login_attempts_free(&list, n);
	cli_bus_close(&config, &bus);
	return ret;
}

int cli_account_options(int argc, char **argv)
{
	struct mf_config *config = NULL;
	struct mf_bus *bus = NULL;
	enum mf_bus_status status;
	struct opts o;
	const char *err;
	bool cram = false, gen = false;
	int ret = 1;

	mf_log_set_level("bus", "error", &err);
	if (parse_opts(argc, argv, &o) < 0 || o.nargs != 1) {
		fputs(options_usage, stderr);
		return 2;
	}
	if (cli_bus_open(o.config_path, &config, &bus) < 0)
		return 1;
	/* Read first so that an option not given keeps its value. */
	if (mf_storeclient_credential_options(bus, NULL, o.args[0], false, false, false,
					      CLI_TLSPUBKEY_TIMEOUT_MS, &cram, &gen, &status,
					      &err) < 0)
		goto fail;
	if (o.cram_md5 >= 0 || o.generated_only >= 0) {
		if (o.cram_md5 >= 0)
			cram = o.cram_md5 == 1;
		if (o.generated_only >= 0)
			gen = o.generated_only == 1;
		if (mf_storeclient_credential_options(bus, NULL, o.args[0], true, cram, gen,
						      CLI_TLSPUBKEY_TIMEOUT_MS, &cram, &gen,
						      &status, &err) < 0)
			goto fail;
	}
	printf("account %s: cram-md5 %s, generated-only %s\n", o.args[0], cram ? "yes" : "no",
	       gen ? "yes" : "no");
	if (o.cram_md5 == 1)
		printf("CRAM-MD5 works after the next `mailfleet account password %s`\n", o.args[0]);
	ret = 0;
	goto out;
fail:
	fprintf(stderr, "mailfleet account options: %s\n", err);
out:
	cli_bus_close(&config, &bus);
	return ret;
}
