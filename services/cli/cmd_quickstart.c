/* mailfleet quickstart: the first configuration for a new installation.
 *
 * Writes DIR/config/{mailfleet.conf,domains.conf}, a self-signed TLS
 * certificate, DKIM keys (two ed25519 and two rsa-2048, made as `mailfleet
 * dkim add` makes them: the first of each signs, the others are ready for
 * a rotation), the account password and the
 * admin password (as scrypt hashes), and prints the passwords once.
 * With --local it writes the embedded default used by `make run`: loopback
 * only, ports +1000, outgoing mail delivered back to local accounts, and the
 * plain-text credentials kept in config/credentials.txt (mode 0600) so that
 * every `make run` can print them again. */
#include "cmd_quickstart.h"

#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "address.h"
#include "buf.h"
#include "cmd_dkim.h"
#include "fsutil.h"
#include "keygen.h"
#include "password.h"
#include "precis.h"
#include "sasl.h"
#include "tls.h"

struct quickstart {
	bool local;
	int port_offset;  /* added to every port; lets tests run beside `make run` */
	const char *dir;
	const char *hostname;
	const char *domain;
	const char *account;
	char *confdir;
	struct cli_dkim_key dkim[CLI_DKIM_NEW_KEYS];  /* ed25519, ed25519, rsa, rsa */
};

/* Ports: the standard ones, plus 1000 for the embedded default. */
static int port(const struct quickstart *q, int standard)
{
	return (q->local ? standard + 1000 : standard) + q->port_offset;
}

static char *mailfleet_conf(const struct quickstart *q)
{
	const char *bind = q->local ? "127.0.0.1" : "0.0.0.0";
	const char *admin_bind = q->local ? "127.0.0.1" : "0.0.0.0";
	char *nats = q->local ? mf_xasprintf("nats://127.0.0.1:%d", 14222 + q->port_offset) :
				mf_xstrdup("nats://nats:4222");
	char *redis = q->local ? mf_xasprintf("redis://127.0.0.1:%d", 16379 + q->port_offset) :
				 mf_xstrdup("redis://redis:6379");
	int off = q->port_offset;
	struct mf_buf b;

	mf_buf_init(&b, 0);
	mf_buf_appendf(&b,
		"# mailfleet.conf: static settings, read when a service starts.\n"
		"# Written by `mailfleet quickstart%s`; edit freely, then check with\n"
		"# `mailfleet config check -c %s/mailfleet.conf`.\n"
		"\n"
		"hostname %s\n"
		"\n"
		"# Account stores, queue database and blobs. Relative to this directory.\n"
		"data-dir ../data\n"
		"\n"
		"nats-url %s\n"
		"redis-url %s\n"
		"log-level info\n"
		"\n"
		"tls {\n"
		"    cert tls/cert.pem\n"
		"    key tls/key.pem\n"
		"}\n"
		"\n",
		q->local ? " --local" : "", q->confdir, q->hostname, nats, redis);
	free(nats);
	free(redis);
	mf_buf_appendf(&b,
		"smtp-in {\n    admin %s:%d\n    listen %s:%d starttls\n}\n\n"
		"submission {\n    admin %s:%d\n    listen %s:%d starttls\n    listen %s:%d tls\n}\n\n"
		"imap {\n    admin %s:%d\n    listen %s:%d starttls\n    listen %s:%d tls\n%s}\n\n"
		"queue {\n    admin %s:%d\n}\n\n"
		"delivery {\n    admin %s:%d\n%s}\n\n"
		"dnsauth {\n    admin %s:%d\n%s}\n\n"
		"reports {\n    admin %s:%d\n}\n\n"
		"web {\n    admin %s:%d\n    listen %s:%d plain\n}\n",
		admin_bind, 1081 + off, bind, port(q, 25),
		admin_bind, 1082 + off, bind, port(q, 587), bind, port(q, 465),
		admin_bind, 1083 + off, bind, port(q, 143), bind, port(q, 993),
		q->local ? "    # Loopback only: clients may log in without TLS.\n"
			   "    allow-plaintext-auth yes\n" : "",
		admin_bind, 1084 + off,
		admin_bind, 1085 + off,
		q->local ? "    # Outgoing mail goes back to local accounts: no internet.\n"
			   "    local-delivery yes\n" : "",
		admin_bind, 1086 + off,
		q->local ?
		"    # No DNS: the embedded default has no network, and waiting for\n"
		"    # lookups to time out would hold every incoming message for\n"
		"    # seconds.  Every lookup fails at once instead, so messages carry\n"
		"    # the truth in Authentication-Results (spf, dmarc, iprev\n"
		"    # temperror), never a made-up pass.  With network, resolve from\n"
		"    # the root (add \"trust-anchor /usr/share/dns/root.key\", package\n"
		"    # dns-root-data, for DNSSEC) or forward to a resolver:\n"
		"    #   resolver recursive\n"
		"    #   resolver forward 127.0.0.1@53\n"
		"    resolver none\n" :
		"    # DNS from the root servers, by dnsauth itself.  Without network\n"
		"    # every lookup ends in a temporary error (SPF temperror), never in\n"
		"    # a made-up answer.  Add \"trust-anchor /usr/share/dns/root.key\"\n"
		"    # (package dns-root-data) for DNSSEC, or forward to a resolver:\n"
		"    #   resolver forward 127.0.0.1@53\n"
		"    resolver recursive\n"
		"    timeout 5s\n",
		admin_bind, 1087 + off,
		admin_bind, 1088 + off, bind, port(q, 80));
	return mf_buf_steal(&b);
}

static char *domains_conf(const struct quickstart *q)
{
	struct mf_buf b;

	mf_buf_init(&b, 0);
	mf_buf_appendf(&b,
		"# domains.conf: domains, accounts, addresses and aliases.\n"
		"# Services reload it when it changes through the CLI or web admin;\n"
		"# check hand edits with `mailfleet config check`.\n"
		"\n"
		"domain %s {\n"
		"    catchall-separator +\n"
		"    dkim {\n", q->domain);
	for (size_t i = 0; i < CLI_DKIM_NEW_KEYS; i++)
		mf_buf_appendf(&b,
			"        selector %s {\n"
			"            algorithm %s\n"
			"            key-file %s\n"
			"        }\n", q->dkim[i].selector,
			q->dkim[i].alg == MF_KEYGEN_ED25519 ? "ed25519" : "rsa", q->dkim[i].rel_path);
	/* The first of each algorithm signs; the second pair is published
	 * too, ready for a rotation. */
	mf_buf_appendf(&b,
		"        sign %s %s\n"
		"    }\n"
		"}\n"
		"\n"
		"account %s {\n"
		"    domain %s\n"
		"    address %s@%s\n"
		"}\n",
		q->dkim[0].selector, q->dkim[CLI_DKIM_NEW_KEYS / 2].selector,
		q->account, q->domain, q->account, q->domain);
	return mf_buf_steal(&b);
}

/* Appends a TXT record, split into strings of at most 255 bytes: a longer
 * character-string is not valid in a zone file (RFC 1035 section 3.3; a
 * 2048-bit RSA DKIM key needs two). */
static void append_txt(struct mf_buf *b, const char *name, const char *value)
{
	size_t len = strlen(value);

	mf_buf_appendf(b, "%s TXT", name);
	for (size_t off = 0; off < len; off += 255)
		mf_buf_appendf(b, " \"%.*s\"", (int)(len - off > 255 ? 255 : len - off), value + off);
	mf_buf_appendf(b, "\n");
}

/* The DNS records a new installation needs, in zone-file syntax.  Report
 * addresses (DMARC rua, TLSRPT rua) point at the first account until the
 * reports service has addresses of its own. */
static char *dns_records(const struct quickstart *q, const struct tm *tm)
{
	const char *d = q->domain, *h = q->hostname;
	char *name;
	struct mf_buf b;

	mf_buf_init(&b, 0);
	mf_buf_appendf(&b,
		"; DNS records for %s, served by %s.\n"
		"; Give %s. an A (and AAAA) record with this server's public address,\n"
		"; and a matching reverse (PTR) record.\n"
		"%s. MX 10 %s.\n", d, h, h, d, h);
	name = mf_xasprintf("%s.", d);
	append_txt(&b, name, "v=spf1 mx ~all");
	free(name);
	name = mf_xasprintf("%s.", h);
	append_txt(&b, name, "v=spf1 a -all");
	free(name);
	for (size_t i = 0; i < CLI_DKIM_NEW_KEYS; i++) {
		name = mf_xasprintf("%s._domainkey.%s.", q->dkim[i].selector, d);
		append_txt(&b, name, q->dkim[i].record);
		free(name);
	}
	mf_buf_appendf(&b,
		"_dmarc.%s. TXT \"v=DMARC1; p=reject; rua=mailto:%s@%s\"\n"
		"; MTA-STS (RFC 8461): raise the id whenever the policy changes.\n"
		"_mta-sts.%s. TXT \"v=STSv1; id=%04d%02d%02d%02d%02d%02d\"\n"
		"mta-sts.%s. CNAME %s.\n"
		"; TLS reporting (RFC 8460), for the domain and for the MX host.\n"
		"_smtp._tls.%s. TXT \"v=TLSRPTv1; rua=mailto:%s@%s\"\n"
		"_smtp._tls.%s. TXT \"v=TLSRPTv1; rua=mailto:%s@%s\"\n"
		"; Client autoconfiguration (Thunderbird autoconfig, RFC 6186 SRV).\n"
		"autoconfig.%s. CNAME %s.\n"
		"_autodiscover._tcp.%s. SRV 0 1 443 %s.\n"
		"_imaps._tcp.%s. SRV 0 1 993 %s.\n"
		"_submissions._tcp.%s. SRV 0 1 465 %s.\n",
		d, q->account, d,
		d, tm->tm_year + 1900, tm->tm_mon + 1, tm->tm_mday, tm->tm_hour, tm->tm_min, tm->tm_sec,
		d, h,
		d, q->account, d,
		h, q->account, d,
		d, h, d, h, d, h, d, h);
	return mf_buf_steal(&b);
}

static int write_conf_file(const struct quickstart *q, const char *name,
			   const char *content, mode_t mode)
{
	char *path = mf_xasprintf("%s/%s", q->confdir, name);
	const char *err;
	int ret = mf_fs_write_atomic(path, content, strlen(content), mode, &err);

	if (ret < 0)
		fprintf(stderr, "mailfleet quickstart: %s\n", err);
	free(path);
	return ret;
}

/* Uses the password from the environment variable, or generates one. */
static char *password_from(const char *env, bool *generated_r)
{
	const char *p = getenv(env);

	*generated_r = p == NULL || p[0] == '\0';
	return *generated_r ? mf_password_generate() : mf_xstrdup(p);
}

/* Returns " scram-sha-1=... scram-sha-256=..." for the account's first
 * password (the stored text form with ':' for spaces, as the store's
 * passwords.init import reads it), or NULL with error_r. */
static char *scram_fields(const char *password, size_t len, const char **error_r)
{
	struct mf_sasl_scram s1, s256;
	char *t1 = NULL, *t256 = NULL, *out = NULL;

	if (mf_sasl_scram_derive(MF_SASL_SHA1, password, len, &s1, error_r) < 0 ||
	    mf_sasl_scram_derive(MF_SASL_SHA256, password, len, &s256, error_r) < 0)
		return NULL;
	t1 = mf_sasl_scram_format(&s1);
	t256 = mf_sasl_scram_format(&s256);
	for (char *p = t1; *p != '\0'; p++)
		if (*p == ' ')
			*p = ':';
	for (char *p = t256; *p != '\0'; p++)
		if (*p == ' ')
			*p = ':';
	out = mf_xasprintf(" scram-sha-1=%s scram-sha-256=%s", t1, t256);
	free(t1);
	free(t256);
	return out;
}

/* Writes prefix + the scrypt hash of password to the file name; with
 * with_scram, of the PRECIS-normalised password plus its SCRAM keys, as
 * the account store stores passwords. */
static int write_password_hash(const struct quickstart *q, const char *name,
			       const char *prefix, const char *password, bool with_scram)
{
	const char *err;
	char *norm = NULL, *hash = NULL, *scram = NULL, *line;
	size_t len = strlen(password);
	int ret = -1;

	if (with_scram) {
		if (mf_precis_password(password, len, &norm, &len, &err) < 0)
			goto fail;
		password = norm;
		if ((scram = scram_fields(password, len, &err)) == NULL)
			goto fail;
	}
	if ((hash = mf_password_hash(password, len, &err)) == NULL)
		goto fail;
	line = mf_xasprintf("%s%s%s\n", prefix, hash, scram != NULL ? scram : "");
	ret = write_conf_file(q, name, line, 0600);
	free(line);
	goto out;
fail:
	fprintf(stderr, "mailfleet quickstart: %s\n", err);
out:
	free(norm);
	free(hash);
	free(scram);
	return ret;
}

static int run(struct quickstart *q)
{
	char *conf = NULL, *domains = NULL, *path = NULL, *password = NULL, *admin = NULL;
	char *creds = NULL, *line = NULL, *records = NULL;
	const char *err;
	bool gen_pw, gen_admin;
	int ret = 1;
	time_t now = time(NULL);
	struct tm tm;

	gmtime_r(&now, &tm);

	path = mf_xasprintf("%s/mailfleet.conf", q->confdir);
	if (access(path, F_OK) == 0) {
		fprintf(stderr, "mailfleet quickstart: %s exists already; not overwriting\n", path);
		goto out;
	}
	free(path);
	path = mf_xasprintf("%s/tls", q->confdir);
	if (mf_fs_mkdirs(path, 0700, &err) < 0)
		goto fail;
	free(path);
	path = mf_xasprintf("%s/../data", q->confdir);
	if (mf_fs_mkdirs(path, 0700, &err) < 0)
		goto fail;

	{
		char *cert = mf_xasprintf("%s/tls/cert.pem", q->confdir);
		char *key = mf_xasprintf("%s/tls/key.pem", q->confdir);
		int r = mf_tls_generate_self_signed(cert, key, q->hostname, &err);
		free(cert);
		free(key);
		if (r < 0)
			goto fail;
	}
	/* Key files next to domains.conf, named as `mailfleet dkim add`
	 * names them. */
	if (cli_dkim_generate(q->confdir, q->domain, now, NULL, NULL, q->dkim, &err) < 0)
		goto fail;

	password = password_from("MAILFLEET_PASSWORD", &gen_pw);
	admin = password_from("MAILFLEET_ADMIN_PASSWORD", &gen_admin);
	/* The account store (imap) imports passwords.init when it creates the
	 * account; adminpasswd is read by web.  Only hashes are kept. */
	line = mf_xasprintf("# account password hashes imported by the account store at creation\n"
			    "%s ", q->account);
	if (write_password_hash(q, "passwords.init", line, password, true) < 0 ||
	    write_password_hash(q, "adminpasswd", "", admin, false) < 0)
		goto out;
	if (q->local) {
		creds = mf_xasprintf("account %s@%s\npassword %s\nadmin-password %s\n",
				     q->account, q->domain, password, admin);
		if (write_conf_file(q, "credentials.txt", creds, 0600) < 0)
			goto out;
	}

	domains = domains_conf(q);
	conf = mailfleet_conf(q);
	/* mailfleet.conf last: its presence means the quickstart completed. */
	if (write_conf_file(q, "domains.conf", domains, 0644) < 0 ||
	    write_conf_file(q, "mailfleet.conf", conf, 0644) < 0)
		goto out;

	printf("mailfleet quickstart: configuration written to %s\n", q->confdir);
	printf("  account:        %s@%s\n", q->account, q->domain);
	printf("  password:       %s%s\n", password, gen_pw ? "" : " (from MAILFLEET_PASSWORD)");
	printf("  admin password: %s%s\n", admin, gen_admin ? "" : " (from MAILFLEET_ADMIN_PASSWORD)");
	if (!q->local) {
		/* Kept in the config directory so they can be printed again. */
		records = dns_records(q, &tm);
		if (write_conf_file(q, "dns-records.txt", records, 0644) < 0)
			goto out;
		printf("\nDNS records to create for %s (also in %s/dns-records.txt):\n%s",
		       q->domain, q->confdir, records);
	}
	ret = 0;
	goto out;
fail:
	fprintf(stderr, "mailfleet quickstart: %s\n", err);
out:
	free(conf);
	free(domains);
	free(path);
	free(password);
	free(admin);
	cli_dkim_keys_free(q->dkim);
	free(creds);
	free(line);
	free(records);
	return ret;
}

int cli_cmd_quickstart(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "local", no_argument, NULL, 'l' },
		{ "dir", required_argument, NULL, 'd' },
		{ "hostname", required_argument, NULL, 'H' },
		{ "domain", required_argument, NULL, 'D' },
		{ "account", required_argument, NULL, 'a' },
		{ "port-offset", required_argument, NULL, 'p' },
		{ NULL, 0, NULL, 0 },
	};
	struct quickstart q = {
		.dir = ".",
		.hostname = getenv("MAILFLEET_HOSTNAME"),
		.domain = getenv("MAILFLEET_DOMAIN"),
		.account = "mail",
	};
	const char *err;
	char *domain_ascii = NULL, *domain_unicode = NULL;
	int c, ret;

	optind = 1;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'l': q.local = true; break;
		case 'd': q.dir = optarg; break;
		case 'H': q.hostname = optarg; break;
		case 'D': q.domain = optarg; break;
		case 'a': q.account = optarg; break;
		case 'p':
			q.port_offset = atoi(optarg);
			if (q.port_offset < 0 || q.port_offset > 40000) {
				fprintf(stderr, "mailfleet quickstart: --port-offset must be 0..40000\n");
				return 2;
			}
			break;
		default:
			fprintf(stderr, "usage: mailfleet quickstart [--local] [--dir DIR] "
				"[--hostname HOST] [--domain DOMAIN] [--account NAME] [--port-offset N]\n");
			return 2;
		}
	}
	if (q.local) {
		q.hostname = q.hostname != NULL && q.hostname[0] ? q.hostname : "localhost";
		q.domain = q.domain != NULL && q.domain[0] ? q.domain : "localhost";
	}
	if (q.hostname == NULL || q.domain == NULL || !q.hostname[0] || !q.domain[0]) {
		fprintf(stderr, "mailfleet quickstart: need --hostname and --domain "
			"(or MAILFLEET_HOSTNAME and MAILFLEET_DOMAIN), or --local\n");
		return 2;
	}
	if (mf_domain_parse(q.domain, strlen(q.domain), &domain_ascii, &domain_unicode, &err) < 0) {
		fprintf(stderr, "mailfleet quickstart: domain %s: %s\n", q.domain, err);
		return 2;
	}
	q.domain = domain_ascii;
	q.confdir = mf_xasprintf("%s/config", q.dir);
	if (mf_fs_mkdirs(q.confdir, 0755, &err) < 0) {
		fprintf(stderr, "mailfleet quickstart: %s\n", err);
		ret = 1;
	} else {
		ret = run(&q);
	}
	free(q.confdir);
	free(domain_ascii);
	free(domain_unicode);
	return ret;
}
