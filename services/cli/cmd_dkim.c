/* mailfleet dkim add / list. */
#include "cmd_dkim.h"

#include <errno.h>
#include <getopt.h>
#include <openssl/evp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "address.h"
#include "buf.h"
#include "cli_bus.h"
#include "conf.h"
#include "config.h"
#include "config.pb-c.h"
#include "domains.h"
#include "error.h"
#include "fsutil.h"
#include "keygen.h"

#define CLI_DKIM_DOMAINS_MAX (16 * 1024 * 1024)
/* A DNS TXT character-string holds at most 255 octets (RFC 1035 3.3). */
#define CLI_DKIM_TXT_CHUNK 255

static const char dkim_usage[] =
	"usage: mailfleet dkim add DOMAIN [-c mailfleet.conf]\n"
	"       mailfleet dkim list DOMAIN [-c mailfleet.conf]\n"
	"  add: two ed25519 and two rsa-2048 keys as new selectors; the domain signs with\n"
	"  the first of each when it signed with nothing yet.  Publish the printed\n"
	"  records before signing with a new selector.\n";

struct add_edit {
	const char *domain;  /* A-labels */
	struct cli_dkim_key *keys;
	size_t count;
	bool set_sign;       /* out: the sign list was set */
};

static const char *config_path(const char *path)
{
	if (path == NULL)
		path = getenv("MAILFLEET_CONFIG");
	return path == NULL || path[0] == '\0' ? "mailfleet.conf" : path;
}

static struct mf_conf_node *find_domain(struct mf_conf *conf, const char *ascii)
{
	for (size_t i = 0; i < conf->root->children_count; i++) {
		struct mf_conf_node *n = conf->root->children[i];
		char *a = NULL, *u = NULL;
		const char *err;
		bool match;

		if (n->key == NULL || strcmp(n->key, "domain") != 0 || n->values_count == 0 ||
		    n->type != MF_CONF_BLOCK)
			continue;
		if (mf_domain_parse(n->values[0], strlen(n->values[0]), &a, &u, &err) < 0)
			continue;
		match = strcmp(a, ascii) == 0;
		free(a);
		free(u);
		if (match)
			return n;
	}
	return NULL;
}

static int add_edit_fn(struct mf_conf *conf, void *ctx, const char **error_r)
{
	struct add_edit *e = ctx;
	struct mf_conf_node *dom = find_domain(conf, e->domain), *dkim, *sign;

	if (dom == NULL) {
		*error_r = mf_errorf("domain %s is not configured", e->domain);
		return -1;
	}
	dkim = mf_conf_find(dom, "dkim");
	if (dkim == NULL) {
		dkim = mf_conf_node_new(MF_CONF_BLOCK, "dkim", NULL, 0);
		mf_conf_insert(dom, NULL, dkim);
	}
	sign = mf_conf_find(dkim, "sign");
	for (size_t i = 0; i < e->count; i++) {
		const char *v[] = { e->keys[i].selector };
		struct mf_conf_node *sel = mf_conf_node_new(MF_CONF_BLOCK, "selector", v, 1), *after;
		const char *alg[] = { e->keys[i].alg == MF_KEYGEN_ED25519 ? "ed25519" : "rsa" };
		const char *file[] = { e->keys[i].rel_path };

		mf_conf_insert(sel, NULL, mf_conf_node_new(MF_CONF_STATEMENT, "algorithm", alg, 1));
		mf_conf_insert(sel, NULL, mf_conf_node_new(MF_CONF_STATEMENT, "key-file", file, 1));
		/* New selectors go before the sign line, where readers look
		 * (at the end when sign comes first or is missing). */
		after = NULL;
		for (size_t k = 0; k < dkim->children_count; k++) {
			if (dkim->children[k] == sign)
				break;
			after = dkim->children[k];
		}
		mf_conf_insert(dkim, sign != NULL ? after : NULL, sel);
	}
	if (sign == NULL || sign->values_count == 0) {
		const char *v[2];
		size_t n = 0;
		for (size_t i = 0; i < e->count && n < 2; i++) {
			if ((n == 0 && e->keys[i].alg == MF_KEYGEN_ED25519) ||
			    (n == 1 && e->keys[i].alg == MF_KEYGEN_RSA2048))
				v[n++] = e->keys[i].selector;
		}
		if (sign == NULL)
			mf_conf_insert(dkim, NULL, mf_conf_node_new(MF_CONF_STATEMENT, "sign", v, n));
		else
			mf_conf_set_values(sign, v, n);
		e->set_sign = true;
	}
	return 0;
}

static void print_record(const char *selector, const char *domain, const char *record)
{
	size_t len = strlen(record);

	printf("%s._domainkey.%s. TXT", selector, domain);
	for (size_t i = 0; i < len; i += CLI_DKIM_TXT_CHUNK) {
		size_t n = len - i < CLI_DKIM_TXT_CHUNK ? len - i : CLI_DKIM_TXT_CHUNK;
		printf(" \"%.*s\"", (int)n, record + i);
	}
	printf("\n");
}

static char *file_sha256(const char *path)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	const char *err;
	size_t len;
	char *data = mf_fs_read_file(path, CLI_DKIM_DOMAINS_MAX, &len, &err), *hex;

	if (data == NULL || !EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL)) {
		free(data);
		return mf_xstrdup("");
	}
	free(data);
	hex = mf_xmalloc(mdlen * 2 + 1);
	for (unsigned i = 0; i < mdlen; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
	return hex;
}

/* Tells the services to reload domains.conf; not fatal when they are down. */
static void publish_changed(const char *conf_path)
{
	Mailfleet__V1__ConfigChanged msg = MAILFLEET__V1__CONFIG_CHANGED__INIT;
	struct mf_config *config = NULL;
	struct mf_bus *bus = NULL;
	const char *err;
	uint8_t *data;
	size_t len;

	if (cli_bus_open(conf_path, &config, &bus) < 0) {
		fprintf(stderr, "mailfleet: domains.conf was changed, but the services could not be "
			"told; run `mailfleet reload` when they are up\n");
		return;
	}
	msg.file = "domains.conf";
	msg.sha256 = file_sha256(config->domains_file);
	msg.changed_by = "cli";
	msg.changed_unix_ms = (int64_t)time(NULL) * 1000;
	len = mailfleet__v1__config_changed__get_packed_size(&msg);
	data = mf_xmalloc(len + 1);
	mailfleet__v1__config_changed__pack(&msg, data);
	if (mf_bus_publish(bus, "config.v1.changed", data, len, &err) < 0)
		fprintf(stderr, "mailfleet: warning: config.v1.changed not sent (%s); "
			"run `mailfleet reload` when the services are up\n", err);
	free(data);
	free(msg.sha256);
	cli_bus_close(&config, &bus);
}

int cli_dkim_generate(const char *dir, const char *domain, time_t now,
		      bool (*taken)(const char *selector, void *ctx), void *ctx,
		      struct cli_dkim_key keys[CLI_DKIM_NEW_KEYS], const char **error_r)
{
	char *keydir = mf_xasprintf("%s/dkim", dir);
	struct tm tm;
	char date[40], letter = 'a';
	size_t written = 0;
	int ret = -1;

	memset(keys, 0, sizeof(*keys) * CLI_DKIM_NEW_KEYS);
	if (mf_fs_mkdirs(keydir, 0700, error_r) < 0)
		goto out;
	/* Selectors named by date and a letter: rotation gets fresh names and
	 * DNS caches never mix an old key with a new one. */
	gmtime_r(&now, &tm);
	snprintf(date, sizeof(date), "%04d%02d%02d", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday);
	for (size_t i = 0; i < CLI_DKIM_NEW_KEYS; i++) {
		struct cli_dkim_key *k = &keys[i];
		/* Letters go up, so the new keys never collide with each other. */
		do {
			if (letter > 'z') {
				*error_r = "no free selector names left for today";
				goto out;
			}
			snprintf(k->selector, sizeof(k->selector), "%s%c", date, letter++);
		} while (taken != NULL && taken(k->selector, ctx));
		k->alg = i < CLI_DKIM_NEW_KEYS / 2 ? MF_KEYGEN_ED25519 : MF_KEYGEN_RSA2048;
		k->rel_path = mf_xasprintf("dkim/%s-%s.pem", domain, k->selector);
		k->path = mf_xasprintf("%s/%s", dir, k->rel_path);
		if (mf_keygen_write(k->path, k->alg, error_r) < 0 ||
		    (k->record = mf_keygen_dkim_record(k->path, error_r)) == NULL) {
			if (access(k->path, F_OK) == 0)
				written++;
			goto out;
		}
		written++;
	}
	ret = 0;
out:
	if (ret < 0) {
		for (size_t i = 0; i < written; i++)
			unlink(keys[i].path);
		cli_dkim_keys_free(keys);
	}
	free(keydir);
	return ret;
}

void cli_dkim_keys_unlink(struct cli_dkim_key keys[CLI_DKIM_NEW_KEYS])
{
	for (size_t i = 0; i < CLI_DKIM_NEW_KEYS; i++)
		if (keys[i].path != NULL)
			unlink(keys[i].path);
}

void cli_dkim_keys_free(struct cli_dkim_key keys[CLI_DKIM_NEW_KEYS])
{
	for (size_t i = 0; i < CLI_DKIM_NEW_KEYS; i++) {
		free(keys[i].rel_path);
		free(keys[i].path);
		free(keys[i].record);
		keys[i].rel_path = keys[i].path = keys[i].record = NULL;
	}
}

static bool selector_taken(const char *name, void *ctx)
{
	const struct mf_domain *dom = ctx;

	for (size_t i = 0; i < dom->selectors_count; i++)
		if (strcmp(dom->selectors[i].name, name) == 0)
			return true;
	return false;
}

static int dkim_add(const char *conf_path, const char *domain_arg)
{
	struct mf_config *config = NULL;
	struct mf_domains *domains = NULL;
	const struct mf_domain *dom;
	struct cli_dkim_key keys[CLI_DKIM_NEW_KEYS];
	struct add_edit edit = { 0 };
	char *ascii = NULL, *unicode = NULL, *dir = NULL;
	const char *err;
	bool have_keys = false;
	int ret = 1;

	memset(keys, 0, sizeof(keys));
	if (mf_config_load(config_path(conf_path), &config, &err) < 0) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	if (mf_domain_parse(domain_arg, strlen(domain_arg), &ascii, &unicode, &err) < 0) {
		fprintf(stderr, "mailfleet dkim add: bad domain %s: %s\n", domain_arg, err);
		goto out;
	}
	if (mf_domains_load(config->domains_file, &domains, &err) < 0) {
		fprintf(stderr, "%s\n", err);
		goto out;
	}
	if ((dom = mf_domains_find_domain(domains, ascii)) == NULL) {
		fprintf(stderr, "mailfleet dkim add: domain %s is not configured\n", ascii);
		goto out;
	}
	dir = mf_conf_dirname(config->domains_file);
	if (cli_dkim_generate(dir, ascii, time(NULL), selector_taken, (void *)dom, keys, &err) < 0) {
		fprintf(stderr, "mailfleet dkim add: %s\n", err);
		goto out;
	}
	have_keys = true;
	edit.domain = ascii;
	edit.keys = keys;
	edit.count = CLI_DKIM_NEW_KEYS;
	if (mf_domains_edit(config->domains_file, add_edit_fn, &edit, &err) < 0) {
		fprintf(stderr, "mailfleet dkim add: %s\n", err);
		goto out;
	}
	have_keys = false;  /* the keys stay: domains.conf names them */
	printf("added selectors %s %s (ed25519) and %s %s (rsa-2048) to %s in %s\n",
	       keys[0].selector, keys[1].selector, keys[2].selector, keys[3].selector, ascii,
	       config->domains_file);
	if (edit.set_sign)
		printf("signing with %s and %s; publish their records first:\n", keys[0].selector,
		       keys[2].selector);
	else
		printf("the sign list is unchanged; publish the records, wait for the DNS TTLs, then\n"
		       "put the new selectors in the domain's \"sign\" line:\n");
	for (size_t i = 0; i < CLI_DKIM_NEW_KEYS; i++)
		print_record(keys[i].selector, ascii, keys[i].record);
	publish_changed(conf_path);
	ret = 0;
out:
	/* Keys nobody references are removed again. */
	if (have_keys)
		cli_dkim_keys_unlink(keys);
	cli_dkim_keys_free(keys);
	free(dir);
	free(ascii);
	free(unicode);
	mf_domains_unref(&domains);
	mf_config_free(&config);
	return ret;
}

static int dkim_list(const char *conf_path, const char *domain_arg)
{
	struct mf_config *config = NULL;
	struct mf_domains *domains = NULL;
	const struct mf_domain *dom;
	char *ascii = NULL, *unicode = NULL;
	const char *err;
	int ret = 1;

	if (mf_config_load(config_path(conf_path), &config, &err) < 0) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	if (mf_domain_parse(domain_arg, strlen(domain_arg), &ascii, &unicode, &err) < 0) {
		fprintf(stderr, "mailfleet dkim list: bad domain %s: %s\n", domain_arg, err);
		goto out;
	}
	if (mf_domains_load(config->domains_file, &domains, &err) < 0) {
		fprintf(stderr, "%s\n", err);
		goto out;
	}
	if ((dom = mf_domains_find_domain(domains, ascii)) == NULL) {
		fprintf(stderr, "mailfleet dkim list: domain %s is not configured\n", ascii);
		goto out;
	}
	ret = 0;
	for (size_t i = 0; i < dom->selectors_count; i++) {
		const struct mf_dkim_selector *s = &dom->selectors[i];
		bool signing = false;
		char *rec;

		for (size_t k = 0; k < dom->sign_count; k++)
			signing = signing || strcmp(dom->sign[k], s->name) == 0;
		printf("selector %s algorithm=%s signing=%s key-file=%s\n", s->name,
		       s->algorithm == MF_DKIM_ED25519 ? "ed25519" : "rsa", signing ? "yes" : "no",
		       s->key_file);
		rec = mf_keygen_dkim_record(s->key_file, &err);
		if (rec == NULL) {
			printf("  key unreadable: %s\n", err);
			ret = 1;
			continue;
		}
		printf("  ");
		print_record(s->name, ascii, rec);
		free(rec);
	}
	if (dom->selectors_count == 0)
		printf("no DKIM selectors for %s; add some with: mailfleet dkim add %s\n", ascii, ascii);
out:
	free(ascii);
	free(unicode);
	mf_domains_unref(&domains);
	mf_config_free(&config);
	return ret;
}

int cli_cmd_dkim(int argc, char **argv)
{
	const char *conf_path = NULL;
	int c;

	optind = 1;
	while ((c = getopt(argc, argv, "c:")) != -1) {
		switch (c) {
		case 'c': conf_path = optarg; break;
		default: fputs(dkim_usage, stderr); return 2;
		}
	}
	argc -= optind;
	argv += optind;
	if (argc == 2 && strcmp(argv[0], "add") == 0)
		return dkim_add(conf_path, argv[1]);
	if (argc == 2 && strcmp(argv[0], "list") == 0)
		return dkim_list(conf_path, argv[1]);
	fputs(dkim_usage, stderr);
	return 2;
}
