/* mf-sasl: drives the store API's credential endpoints for integration
 * tests (tests/integration/test_sasl_store.sh).  The SASL server side runs
 * here, on material fetched from the store over NATS
 * (mf_storeclient_sasl_backend), against libshared's SASL client:
 *
 *   mf-sasl -c CONF setpassword ACCOUNT PASSWORD
 *   mf-sasl -c CONF exchange MECH LOGIN PASSWORD [tls|cb]
 *       prints "sasl ok account=A verified=0|1", "sasl failed <reason>: text"
 *       or "sasl tempfail: text"
 *   mf-sasl -c CONF attempt ACCOUNT PROTOCOL MECH LOGIN IP RESULT
 *   mf-sasl -c CONF attempts ACCOUNT [LIMIT]
 *   mf-sasl -c CONF keyadd ACCOUNT NAME DERFILE LOGIN [nopreauth]
 *   mf-sasl -c CONF keylist ACCOUNT
 *   mf-sasl -c CONF keyremove ACCOUNT FINGERPRINT
 *   mf-sasl -c CONF keylookup FINGERPRINT */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "buf.h"
#include "bus.h"
#include "config.h"
#include "domains.h"
#include "log.h"
#include "sasl.h"
#include "storeclient.h"

#define TIMEOUT_MS 10000

static struct mf_bus *bus;
static struct mf_config *config;

static int die(const char *what, const char *err)
{
	fprintf(stderr, "mf-sasl: %s: %s\n", what, err);
	return 1;
}

static int connect_bus(void)
{
	const char *err;
	struct timespec pause = { 0, 50 * 1000 * 1000 };

	if (mf_bus_connect(config->nats_url, "mf-sasl", &bus, &err) < 0)
		return die("connect", err);
	for (int waited = 0; !mf_bus_connected(bus); waited += 50) {
		if (waited > 5000)
			return die("connect", "NATS not reachable");
		nanosleep(&pause, NULL);
	}
	return 0;
}

static int bus_fail(enum mf_bus_status status, const char *err)
{
	printf("error %s %s\n", mf_bus_status_name(status), err);
	return 1;
}

static int cmd_setpassword(char **a, int n)
{
	enum mf_bus_status status;
	const char *err;

	if (n != 2)
		return 2;
	if (mf_storeclient_set_password(bus, "mf-sasl", a[0], a[1], strlen(a[1]), TIMEOUT_MS,
					&status, &err) < 0)
		return bus_fail(status, err);
	printf("password set\n");
	return 0;
}

static const char *failure_name(enum mf_sasl_failure f)
{
	static const char *const names[] = {
		"none", "credentials", "disabled", "malformed", "channel-binding", "aborted",
		"mechanism", "wrong-account",
	};

	return (unsigned)f < sizeof(names) / sizeof(names[0]) ? names[f] : "?";
}

static int cmd_exchange(char **a, int n)
{
	struct mf_storeclient_sasl ctx = {
		.bus = bus, .cid = "mf-sasl", .timeout_ms = TIMEOUT_MS, .protocol = "test",
		.remote_ip = "127.0.0.1", .tls = "",
	};
	struct mf_sasl_server_settings set = { .cram_md5 = true, .hostname = "localhost" };
	struct mf_sasl_tls tls = { 0 }, client_tls;
	struct mf_sasl_backend be;
	struct mf_sasl_server *srv = NULL;
	struct mf_sasl_client *cl = NULL;
	const unsigned char *cout = NULL, *sout = NULL;
	size_t clen = 0, slen = 0;
	enum mf_sasl_mech mech;
	enum mf_sasl_status st;
	bool has = false;
	const char *err = NULL;
	int ret = 1;

	if (n < 3 || n > 4)
		return 2;
	if (mf_sasl_mech_parse(a[0], strlen(a[0]), &mech) < 0)
		return die("exchange", "unknown mechanism");
	/* "tls": a TLS connection without channel binding data; "cb": with
	 * made-up tls-exporter data both sides share; "cbmitm": the client
	 * sees other data than the server (a man in the middle). */
	if (n == 4) {
		tls.active = true;
		if (strncmp(a[3], "cb", 2) == 0) {
			tls.exporter_len = 32;
			memset(tls.exporter, 0x42, 32);
		}
	}
	client_tls = tls;
	if (n == 4 && strcmp(a[3], "cbmitm") == 0)
		memset(client_tls.exporter, 0x43, 32);
	ctx.mechanism = mf_sasl_mech_name(mech);
	mf_storeclient_sasl_backend(&ctx, &be);
	if (mf_sasl_server_create(mech, &set, &be, &tls, NULL, &srv, &err) < 0 ||
	    mf_sasl_client_create(mech, a[1], a[2], &client_tls, &cl, &err) < 0 ||
	    mf_sasl_client_initial(cl, &cout, &clen, &has, &err) < 0) {
		die("exchange", err);
		goto out;
	}
	st = mf_sasl_server_step(srv, cout, clen, has, &sout, &slen);
	for (int i = 0; st == MF_SASL_CONTINUE && i < MF_SASL_STEPS_MAX; i++) {
		if (mf_sasl_client_step(cl, sout, slen, &cout, &clen, &err) < 0) {
			printf("sasl client-error: %s\n", err);
			goto out;
		}
		st = mf_sasl_server_step(srv, cout, clen, true, &sout, &slen);
	}
	switch (st) {
	case MF_SASL_SUCCESS:
		printf("sasl ok account=%s login=%s verified=%d\n", mf_sasl_server_account(srv),
		       mf_sasl_server_login(srv), mf_sasl_client_verified(cl));
		ret = 0;
		break;
	case MF_SASL_FAILED:
		printf("sasl failed %s: %s\n", failure_name(mf_sasl_server_failure(srv)),
		       mf_sasl_server_failure_text(srv));
		ret = 0;
		break;
	case MF_SASL_TEMPFAIL:
		printf("sasl tempfail: %s\n", mf_sasl_server_failure_text(srv));
		ret = 0;
		break;
	case MF_SASL_CONTINUE:
		printf("sasl unfinished\n");
		break;
	}
out:
	mf_sasl_server_free(&srv);
	mf_sasl_client_free(&cl);
	return ret;
}

static int cmd_attempt(char **a, int n)
{
	struct mf_storeclient_login_attempt at = { 0 };
	enum mf_bus_status status;
	const char *err;

	if (n != 6)
		return 2;
	at.protocol = a[1];
	at.mechanism = a[2];
	at.login = a[3];
	at.remote_ip = a[4];
	at.result = a[5];
	at.tls = "TLSv1.3 TLS_AES_128_GCM_SHA256";
	if (mf_storeclient_login_attempt(bus, "mf-sasl", a[0], &at, TIMEOUT_MS, &status, &err) < 0)
		return bus_fail(status, err);
	printf("attempt recorded\n");
	return 0;
}

static int cmd_attempts(char **a, int n)
{
	struct mf_storeclient_login_attempt *list = NULL;
	size_t count = 0;
	enum mf_bus_status status;
	const char *err;

	if (n < 1 || n > 2)
		return 2;
	if (mf_storeclient_login_attempts(bus, "mf-sasl", a[0],
					  n > 1 ? (uint32_t)strtoul(a[1], NULL, 10) : 0, TIMEOUT_MS,
					  &list, &count, &status, &err) < 0)
		return bus_fail(status, err);
	for (size_t i = 0; i < count; i++)
		printf("attempt count=%llu protocol=%s mechanism=%s login=%s ip=%s tls=\"%s\" "
		       "result=%s\n", (unsigned long long)list[i].count, list[i].protocol,
		       list[i].mechanism, list[i].login, list[i].remote_ip, list[i].tls,
		       list[i].result);
	mf_storeclient_login_attempts_free(&list, count);
	return 0;
}

static int cmd_keyadd(char **a, int n)
{
	enum mf_bus_status status;
	const char *err;
	char *fp = NULL;
	unsigned char der[16384];
	size_t len;
	FILE *f;

	if (n < 4 || n > 5)
		return 2;
	f = fopen(a[2], "rb");
	if (f == NULL)
		return die("keyadd", "cannot open DER file");
	len = fread(der, 1, sizeof(der), f);
	fclose(f);
	if (mf_storeclient_tls_pubkey_add(bus, "mf-sasl", a[0], a[1], der, len, a[3],
					  n == 5 && strcmp(a[4], "nopreauth") == 0, TIMEOUT_MS, &fp,
					  &status, &err) < 0)
		return bus_fail(status, err);
	printf("key added %s\n", fp);
	free(fp);
	return 0;
}

static int cmd_keylist(char **a, int n)
{
	struct mf_storeclient_tls_pubkey *keys = NULL;
	size_t count = 0;
	enum mf_bus_status status;
	const char *err;

	if (n != 1)
		return 2;
	if (mf_storeclient_tls_pubkey_list(bus, "mf-sasl", a[0], TIMEOUT_MS, &keys, &count,
					   &status, &err) < 0)
		return bus_fail(status, err);
	for (size_t i = 0; i < count; i++)
		printf("key %s name=%s login=%s preauth=%s\n", keys[i].fingerprint, keys[i].name,
		       keys[i].login_address, keys[i].no_imap_preauth ? "no" : "yes");
	mf_storeclient_tls_pubkeys_free(&keys, count);
	return 0;
}

static int cmd_keyremove(char **a, int n)
{
	enum mf_bus_status status;
	const char *err;
	bool removed;

	if (n != 2)
		return 2;
	if (mf_storeclient_tls_pubkey_remove(bus, "mf-sasl", a[0], a[1], TIMEOUT_MS, &removed,
					     &status, &err) < 0)
		return bus_fail(status, err);
	printf("key %s\n", removed ? "removed" : "not found");
	return 0;
}

static int cmd_keylookup(char **a, int n)
{
	struct mf_storeclient_tls_pubkey key;
	enum mf_bus_status status;
	const char *err;
	bool found;

	if (n != 1)
		return 2;
	if (mf_storeclient_tls_pubkey_lookup(bus, "mf-sasl", a[0], TIMEOUT_MS, &found, &key,
					     &status, &err) < 0)
		return bus_fail(status, err);
	if (found)
		printf("key found account=%s name=%s login=%s\n", key.account, key.name,
		       key.login_address);
	else
		printf("key unknown\n");
	mf_storeclient_tls_pubkey_clear(&key);
	return 0;
}

/* --- stdio modes for interop with independent SASL implementations -------
 * No config, no store: one account "user"-like login with a password, the
 * material derived here.  Lines are base64 ("=" for empty):
 *   stdio-server MECH LOGIN PASSWORD: reads client messages, prints
 *     "C <b64>" (challenge), "OK <account>", "FAIL <reason>"
 *   stdio-client MECH LOGIN PASSWORD: prints "I <b64>" or "I -" (no initial
 *     response), then reads server challenges and prints "R <b64>"; after
 *     a line "END" prints "VERIFIED 0|1". */

static const char *stdio_login, *stdio_password;

static int stdio_verify(void *ctx, const char *login, const char *password, size_t len,
			struct mf_sasl_account *a_r, const char **error_r)
{
	if (strcmp(login, stdio_login) != 0 || len != strlen(stdio_password) ||
	    memcmp(password, stdio_password, len) != 0)
		return 0;
	a_r->account = mf_xstrdup(login);
	return 1;
}

static int stdio_lookup(void *ctx, enum mf_sasl_lookup what, const char *login,
			struct mf_sasl_account *a_r, const char **error_r)
{
	if (strcmp(login, stdio_login) != 0)
		return 0;
	a_r->account = mf_xstrdup(login);
	if (what == MF_SASL_LOOKUP_SCRAM_SHA1 || what == MF_SASL_LOOKUP_SCRAM_SHA256) {
		if (mf_sasl_scram_derive(what == MF_SASL_LOOKUP_SCRAM_SHA1 ? MF_SASL_SHA1 :
					 MF_SASL_SHA256, stdio_password, strlen(stdio_password),
					 &a_r->scram, error_r) < 0)
			return -1;
		a_r->scram_set = true;
	} else if (what == MF_SASL_LOOKUP_CRAM_MD5) {
		mf_sasl_cram_derive(stdio_password, strlen(stdio_password), &a_r->cram);
		a_r->cram_allowed = true;
	}
	return 1;
}

/* Reads one base64 line from stdin.  Returns 0 with the decoded bytes. */
static int read_b64(unsigned char **data_r, size_t *len_r)
{
	char line[MF_SASL_MESSAGE_MAX * 2];
	size_t n;

	if (fgets(line, sizeof(line), stdin) == NULL)
		return -1;
	n = strcspn(line, "\r\n");
	line[n] = '\0';
	if (strcmp(line, "=") == 0 || n == 0)
		n = 0;
	return mf_sasl_base64_decode(line, n, data_r, len_r);
}

static void print_b64(const char *tag, const unsigned char *data, size_t len)
{
	char *b = mf_sasl_base64_encode(data, len);

	printf("%s %s\n", tag, len == 0 ? "=" : b);
	fflush(stdout);
	free(b);
}

static int stdio_server(char **a, int n)
{
	struct mf_sasl_server_settings set = { .cram_md5 = true, .hostname = "localhost",
					       .allow_plaintext_password = true };
	struct mf_sasl_backend be = { NULL, stdio_verify, stdio_lookup };
	struct mf_sasl_server *srv = NULL;
	const unsigned char *out;
	size_t out_len;
	enum mf_sasl_mech mech;
	enum mf_sasl_status st;
	const char *err;
	bool first = true;

	if (n != 3 || mf_sasl_mech_parse(a[0], strlen(a[0]), &mech) < 0)
		return 2;
	stdio_login = a[1];
	stdio_password = a[2];
	if (mf_sasl_server_create(mech, &set, &be, NULL, NULL, &srv, &err) < 0)
		return die("stdio-server", err);
	for (;;) {
		unsigned char *in = NULL;
		size_t in_len = 0;

		if (read_b64(&in, &in_len) < 0) {
			printf("FAIL bad input\n");
			break;
		}
		/* An empty first line: no initial response (RFC 4422 3.3). */
		st = mf_sasl_server_step(srv, in, in_len, !first || in_len > 0, &out, &out_len);
		free(in);
		first = false;
		if (st == MF_SASL_CONTINUE) {
			print_b64("C", out, out_len);
			continue;
		}
		if (st == MF_SASL_SUCCESS)
			printf("OK %s\n", mf_sasl_server_account(srv));
		else
			printf("FAIL %s\n", mf_sasl_server_failure_text(srv));
		break;
	}
	mf_sasl_server_free(&srv);
	return 0;
}

static int stdio_client(char **a, int n)
{
	struct mf_sasl_client *cl = NULL;
	const unsigned char *out;
	size_t out_len;
	enum mf_sasl_mech mech;
	const char *err;
	bool has;

	if (n != 3 || mf_sasl_mech_parse(a[0], strlen(a[0]), &mech) < 0)
		return 2;
	if (mf_sasl_client_create(mech, a[1], a[2], NULL, &cl, &err) < 0 ||
	    mf_sasl_client_initial(cl, &out, &out_len, &has, &err) < 0)
		return die("stdio-client", err);
	if (has)
		print_b64("I", out, out_len);
	else
		printf("I -\n");
	fflush(stdout);
	for (;;) {
		char line[MF_SASL_MESSAGE_MAX * 2];
		unsigned char *in = NULL;
		size_t in_len = 0, l;

		if (fgets(line, sizeof(line), stdin) == NULL)
			break;
		l = strcspn(line, "\r\n");
		line[l] = '\0';
		if (strcmp(line, "END") == 0) {
			printf("VERIFIED %d\n", mf_sasl_client_verified(cl));
			break;
		}
		if (mf_sasl_base64_decode(line, strcmp(line, "=") == 0 ? 0 : l, &in, &in_len) < 0 ||
		    mf_sasl_client_step(cl, in, in_len, &out, &out_len, &err) < 0) {
			printf("ERROR %s\n", in == NULL ? "bad base64" : err);
			free(in);
			break;
		}
		free(in);
		print_b64("R", out, out_len);
	}
	fflush(stdout);
	mf_sasl_client_free(&cl);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct {
		const char *name;
		int (*run)(char **a, int n);
	} cmds[] = {
		{ "setpassword", cmd_setpassword }, { "exchange", cmd_exchange },
		{ "attempt", cmd_attempt }, { "attempts", cmd_attempts },
		{ "keyadd", cmd_keyadd }, { "keylist", cmd_keylist },
		{ "keyremove", cmd_keyremove }, { "keylookup", cmd_keylookup },
	};
	const char *err;
	int ret = 2;

	mf_log_init("mf-sasl");
	mf_log_set_level("bus", "error", &err);
	if (argc >= 2 && strcmp(argv[1], "stdio-server") == 0)
		return stdio_server(argv + 2, argc - 2);
	if (argc >= 2 && strcmp(argv[1], "stdio-client") == 0)
		return stdio_client(argv + 2, argc - 2);
	if (argc < 4 || strcmp(argv[1], "-c") != 0)
		goto usage;
	if (mf_config_load(argv[2], &config, &err) < 0)
		return die("config", err);
	/* The SASL backend maps logins to accounts with domains.conf. */
	if (mf_domains_reload(config->domains_file, &err) < 0)
		return die("domains", err);
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		if (strcmp(argv[3], cmds[i].name) != 0)
			continue;
		if (connect_bus() != 0)
			return 1;
		ret = cmds[i].run(argv + 4, argc - 4);
		break;
	}
	if (bus != NULL)
		mf_bus_close(&bus);
	mf_config_free(&config);
	mf_domains_clear_current();
	if (ret != 2)
		return ret;
usage:
	fprintf(stderr, "usage: mf-sasl -c CONF setpassword|exchange|attempt|attempts|keyadd|"
		"keylist|keyremove|keylookup ...\n");
	return 2;
}
