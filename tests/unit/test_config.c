#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "config.h"

#define MINIMAL "hostname mail.example.org\ndata-dir /var/mf\n"

static struct mf_config *load_ok(const char *text, char *const *env)
{
	struct mf_config *c = NULL;
	const char *err = NULL;

	if (mf_config_load_buf("/etc/mf/mailfleet.conf", text, strlen(text), env, &c, &err) < 0)
		fail_msg("unexpected error: %s", err);
	return c;
}

static const char *load_err(const char *text, char *const *env)
{
	struct mf_config *c = NULL;
	const char *err = NULL;

	assert_int_equal(mf_config_load_buf("/etc/mf/mailfleet.conf", text, strlen(text), env,
					    &c, &err), -1);
	assert_null(c);
	assert_non_null(err);
	return err;
}

static void test_services(void **state)
{
	assert_string_equal(mf_service_name(MF_SERVICE_SMTP_IN), "smtp-in");
	assert_string_equal(mf_service_name(MF_SERVICE_WEB), "web");
	assert_null(mf_service_name(MF_SERVICE_COUNT));
	assert_int_equal(mf_service_by_name("delivery"), MF_SERVICE_DELIVERY);
	assert_int_equal(mf_service_by_name("dnsauth"), MF_SERVICE_DNSAUTH);
	assert_int_equal(mf_service_by_name("smtp"), -1);
}

static void test_defaults(void **state)
{
	struct mf_config *c = load_ok(MINIMAL, NULL);

	assert_string_equal(c->hostname, "mail.example.org");
	assert_string_equal(c->data_dir, "/var/mf");
	assert_string_equal(c->blob_dir, "/var/mf/blobs");
	assert_string_equal(c->domains_file, "/etc/mf/domains.conf");
	assert_string_equal(c->nats_url, "nats://127.0.0.1:4222");
	assert_string_equal(c->redis_url, "redis://127.0.0.1:6379");
	assert_string_equal(c->log_level, "info");
	assert_null(c->tls_cert);
	assert_int_equal(c->limits.max_connections, 1000);
	assert_int_equal(c->limits.max_connections_per_ip, 20);
	assert_int_equal(c->limits.max_message_size, 100 * 1024 * 1024);
	assert_int_equal(c->limits.command_timeout_ms, 300000);
	assert_int_equal(c->limits.drain_timeout_ms, 10000);
	assert_int_equal(c->redis_down, MF_REDIS_DOWN_ALLOW);
	for (int i = 0; i < MF_SERVICE_COUNT; i++)
		assert_false(c->services[i].enabled);
	mf_config_free(&c);
	assert_null(c);
}

static void test_full(void **state)
{
	struct mf_config *c = load_ok(
		"# comment\n"
		"hostname Mail.Example.ORG\n"
		"data-dir ../data       # relative to the config file\n"
		"blob-dir /blobs\n"
		"domains-file d.conf\n"
		"nats-url tls://nats:4222\n"
		"redis-url unix:///run/redis.sock\n"
		"log-level \"info,smtp-in=debug\"\n"
		"tls {\n"
		"    cert tls/cert.pem\n"
		"    key /keys/key.pem\n"
		"}\n"
		"limits {\n"
		"    max-connections 50\n"
		"    max-connections-per-ip 5\n"
		"    max-message-size 20M\n"
		"    command-timeout 1m\n"
		"    drain-timeout 2s\n"
		"}\n"
		"ratelimit {\n"
		"    redis-down deny\n"
		"}\n"
		"smtp-in {\n"
		"    admin 127.0.0.1:1081\n"
		"    listen 0.0.0.0:25 starttls proxy\n"
		"    listen [::]:25 starttls\n"
		"}\n"
		"submission {\n"
		"    admin [::1]:1082\n"
		"    listen 127.0.0.1:465 tls\n"
		"    listen 127.0.0.1:587 proxy\n"
		"}\n"
		"delivery {\n"
		"    admin 127.0.0.1:1085\n"
		"    local-delivery yes\n"
		"}\n"
		"queue {\n"
		"    admin 127.0.0.1:1084\n"
		"}\n", NULL);
	const struct mf_config_service *s;

	assert_string_equal(c->hostname, "mail.example.org");
	assert_string_equal(c->data_dir, "/etc/mf/../data");
	assert_string_equal(c->blob_dir, "/blobs");
	assert_string_equal(c->domains_file, "/etc/mf/d.conf");
	assert_string_equal(c->nats_url, "tls://nats:4222");
	assert_string_equal(c->redis_url, "unix:///run/redis.sock");
	assert_string_equal(c->log_level, "info,smtp-in=debug");
	assert_string_equal(c->tls_cert, "/etc/mf/tls/cert.pem");
	assert_string_equal(c->tls_key, "/keys/key.pem");
	assert_int_equal(c->limits.max_connections, 50);
	assert_int_equal(c->limits.max_connections_per_ip, 5);
	assert_int_equal(c->limits.max_message_size, 20 * 1024 * 1024);
	assert_int_equal(c->limits.command_timeout_ms, 60000);
	assert_int_equal(c->limits.drain_timeout_ms, 2000);
	assert_int_equal(c->redis_down, MF_REDIS_DOWN_DENY);
	s = &c->services[MF_SERVICE_SMTP_IN];
	assert_true(s->enabled);
	assert_int_equal(s->line, 23);
	assert_string_equal(s->admin.host, "127.0.0.1");
	assert_int_equal(s->admin.port, 1081);
	assert_int_equal(s->listen_count, 2);
	assert_string_equal(s->listen[0].addr.host, "0.0.0.0");
	assert_int_equal(s->listen[0].addr.port, 25);
	assert_int_equal(s->listen[0].security, MF_LISTEN_STARTTLS);
	assert_true(s->listen[0].proxy);
	assert_string_equal(s->listen[1].addr.host, "::");
	assert_false(s->listen[1].proxy);
	s = &c->services[MF_SERVICE_SUBMISSION];
	assert_string_equal(s->admin.host, "::1");
	assert_int_equal(s->listen[0].security, MF_LISTEN_TLS);
	assert_int_equal(s->listen[1].security, MF_LISTEN_PLAIN);
	assert_true(s->listen[1].proxy);
	assert_true(c->services[MF_SERVICE_DELIVERY].local_delivery);
	assert_true(c->services[MF_SERVICE_QUEUE].enabled);
	assert_false(c->services[MF_SERVICE_IMAP].enabled);
	mf_config_free(&c);
}

static void test_errors(void **state)
{
	static const struct {
		const char *text;
		const char *error;
	} cases[] = {
		/* syntax */
		{ MINIMAL "limits {\n", "/etc/mf/mailfleet.conf:3: block limits is not closed" },
		/* unknown keys, at each level */
		{ MINIMAL "hostnam x\n", "/etc/mf/mailfleet.conf:3: hostnam: unknown key" },
		{ MINIMAL "limits {\n    max-conections 5\n}\n",
		  "/etc/mf/mailfleet.conf:4: limits.max-conections: unknown key" },
		{ MINIMAL "queue {\n    admin 127.0.0.1:1\n    listen 127.0.0.1:2\n}\n",
		  "/etc/mf/mailfleet.conf:5: queue.listen: unknown key" },
		{ MINIMAL "smtp-in {\n    admin 127.0.0.1:1\n    local-delivery yes\n}\n",
		  "/etc/mf/mailfleet.conf:5: smtp-in.local-delivery: unknown key" },
		/* missing required */
		{ "data-dir /x\n",
		  "/etc/mf/mailfleet.conf: hostname: required but not set (or set MAILFLEET_HOSTNAME)" },
		{ "hostname a.b\n",
		  "/etc/mf/mailfleet.conf: data-dir: required but not set (or set MAILFLEET_DATA_DIR)" },
		{ MINIMAL "\nimap {\n    listen 127.0.0.1:143\n}\n",
		  "/etc/mf/mailfleet.conf:4: imap.admin: required but not set" },
		{ MINIMAL "tls {\n    cert c.pem\n}\n",
		  "/etc/mf/mailfleet.conf:3: tls.key: required but not set" },
		/* bad values */
		{ "hostname -bad.example\ndata-dir /x\n",
		  "/etc/mf/mailfleet.conf:1: hostname: bad host name -bad.example (labels of 1-63 "
		  "letters, digits and inner hyphens; use A-labels for IDNs)" },
		{ MINIMAL "nats-url http://x\n",
		  "/etc/mf/mailfleet.conf:3: nats-url: bad URL http://x (want nats://...)" },
		{ MINIMAL "log-level info,smtp-in=loud\n",
		  "/etc/mf/mailfleet.conf:3: log-level: unknown log level loud (want tracedata, "
		  "traceauth, trace, debug, info, warn or error)" },
		{ MINIMAL "limits {\n    max-message-size 10X\n}\n",
		  "/etc/mf/mailfleet.conf:4: limits.max-message-size: bad size 10X (want a number "
		  "with optional K, M, G or T)" },
		{ MINIMAL "limits {\n    command-timeout 10\n}\n",
		  "/etc/mf/mailfleet.conf:4: limits.command-timeout: bad duration 10 (want e.g. "
		  "30s, 5m, 2h, 7d, 1h30m or 500ms)" },
		{ MINIMAL "limits {\n    max-connections 2000000\n}\n",
		  "/etc/mf/mailfleet.conf:4: limits.max-connections: 2000000 is too large (max 1000000)" },
		{ MINIMAL "ratelimit {\n    redis-down maybe\n}\n",
		  "/etc/mf/mailfleet.conf:4: ratelimit.redis-down: bad value maybe (want allow or deny)" },
		{ MINIMAL "web {\n    admin 127.0.0.1:1\n    listen 127.0.0.1:80 ssl\n}\n",
		  "/etc/mf/mailfleet.conf:5: web.listen: unexpected ssl (want HOST:PORT "
		  "[plain|tls|starttls] [proxy])" },
		{ MINIMAL "web {\n    admin 127.0.0.1\n}\n",
		  "/etc/mf/mailfleet.conf:4: web.admin: bad address 127.0.0.1 (want HOST:PORT, "
		  "[IPv6]:PORT)" },
		{ MINIMAL "delivery {\n    admin 127.0.0.1:1\n    local-delivery maybe\n}\n",
		  "/etc/mf/mailfleet.conf:5: delivery.local-delivery: bad boolean maybe (want yes or no)" },
		{ MINIMAL "smtp-in {\n    admin 127.0.0.1:1\n    listen 127.0.0.1:25 starttls\n}\n",
		  "/etc/mf/mailfleet.conf:3: smtp-in.listen: 127.0.0.1:25 uses TLS but there is no "
		  "tls block with cert and key" },
		/* shape */
		{ "hostname\ndata-dir /x\n", "/etc/mf/mailfleet.conf:1: hostname: needs exactly one value" },
		{ "hostname a.b\ndata-dir a b\n",
		  "/etc/mf/mailfleet.conf:2: data-dir: needs exactly one value" },
		{ MINIMAL "limits 5\n", "/etc/mf/mailfleet.conf:3: limits: must be a block (limits {...})" },
		{ MINIMAL "smtp-in x {\n}\n", "/etc/mf/mailfleet.conf:3: smtp-in: takes no value" },
		{ MINIMAL "nats-url x {\n}\n", "/etc/mf/mailfleet.conf:3: nats-url: is not a block" },
		{ MINIMAL "blob-dir \"\"\n", "/etc/mf/mailfleet.conf:3: blob-dir: must not be empty" },
		/* duplicates */
		{ MINIMAL "hostname b.example\n",
		  "/etc/mf/mailfleet.conf:3: hostname: duplicate (first at line 1)" },
		{ MINIMAL "web {\n    admin 127.0.0.1:1\n}\nweb {\n    admin 127.0.0.1:2\n}\n",
		  "/etc/mf/mailfleet.conf:6: web: duplicate (first at line 3)" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *err = load_err(cases[i].text, NULL);
		if (strcmp(err, cases[i].error) != 0)
			fail_msg("case %zu:\n got: %s\nwant: %s", i, err, cases[i].error);
	}
}

static void test_several_errors(void **state)
{
	const char *err = load_err("bogus 1\nlimits {\n    drain-timeout x\n}\n", NULL);

	assert_string_equal(err,
		"/etc/mf/mailfleet.conf:1: bogus: unknown key\n"
		"/etc/mf/mailfleet.conf:3: limits.drain-timeout: bad duration x (want e.g. 30s, 5m, "
		"2h, 7d, 1h30m or 500ms)\n"
		"/etc/mf/mailfleet.conf: hostname: required but not set (or set MAILFLEET_HOSTNAME)\n"
		"/etc/mf/mailfleet.conf: data-dir: required but not set (or set MAILFLEET_DATA_DIR)");
}

static void test_env(void **state)
{
	char *env[] = {
		"PATH=/bin",
		"MAILFLEET_HOSTNAME=mx.example.net",
		"MAILFLEET_DATA_DIR=data",
		"MAILFLEET_NATS_URL=nats://nats:4222",
		"MAILFLEET_REDIS_URL=redis://redis:6379",
		"MAILFLEET_LOG_LEVEL=debug",
		"MAILFLEET_TLS_CERT=/run/secrets/cert.pem",
		"MAILFLEET_TLS_KEY=/run/secrets/key.pem",
		"MAILFLEET_SMTP_IN_ADMIN=0.0.0.0:8080",
		"MAILFLEET_SMTP_IN_LISTEN=0.0.0.0:25 starttls proxy, [::]:25 starttls",
		"MAILFLEET_DNSAUTH_ADMIN=[::]:8081",
		NULL,
	};
	struct mf_config *c = load_ok(
		"hostname mail.example.org\n"
		"smtp-in {\n"
		"    admin 127.0.0.1:1081\n"
		"    listen 127.0.0.1:1025\n"
		"}\n", env);
	const struct mf_config_service *s = &c->services[MF_SERVICE_SMTP_IN];

	assert_string_equal(c->hostname, "mx.example.net");
	assert_string_equal(c->data_dir, "/etc/mf/data");
	assert_string_equal(c->blob_dir, "/etc/mf/data/blobs");
	assert_string_equal(c->nats_url, "nats://nats:4222");
	assert_string_equal(c->redis_url, "redis://redis:6379");
	assert_string_equal(c->log_level, "debug");
	assert_string_equal(c->tls_cert, "/run/secrets/cert.pem");
	assert_string_equal(c->tls_key, "/run/secrets/key.pem");
	assert_string_equal(s->admin.host, "0.0.0.0");
	assert_int_equal(s->admin.port, 8080);
	/* the environment's listen list replaces the file's */
	assert_int_equal(s->listen_count, 2);
	assert_string_equal(s->listen[0].addr.host, "0.0.0.0");
	assert_int_equal(s->listen[0].security, MF_LISTEN_STARTTLS);
	assert_true(s->listen[0].proxy);
	assert_string_equal(s->listen[1].addr.host, "::");
	assert_false(s->listen[1].proxy);
	/* a service configured only from the environment */
	assert_true(c->services[MF_SERVICE_DNSAUTH].enabled);
	assert_int_equal(c->services[MF_SERVICE_DNSAUTH].admin.port, 8081);
	mf_config_free(&c);
}

static void test_env_errors(void **state)
{
	static const struct {
		const char *var;
		const char *error;
	} cases[] = {
		{ "MAILFLEET_HOSTNAME=bad_name",
		  "MAILFLEET_HOSTNAME: bad host name bad_name (labels of 1-63 letters, digits and "
		  "inner hyphens; use A-labels for IDNs)" },
		{ "MAILFLEET_DATA_DIR=", "MAILFLEET_DATA_DIR: must not be empty" },
		{ "MAILFLEET_NATS_URL=nats://", "MAILFLEET_NATS_URL: nats:// has no address after nats://" },
		{ "MAILFLEET_REDIS_URL=http://r", "MAILFLEET_REDIS_URL: bad URL http://r (want redis://...)" },
		{ "MAILFLEET_LOG_LEVEL=info,=debug",
		  "MAILFLEET_LOG_LEVEL: bad package name in log level spec info,=debug" },
		{ "MAILFLEET_IMAP_ADMIN=localhost", "MAILFLEET_IMAP_ADMIN: bad address localhost (want "
		  "HOST:PORT, [IPv6]:PORT)" },
		{ "MAILFLEET_QUEUE_LISTEN=127.0.0.1:1", "MAILFLEET_QUEUE_LISTEN: queue does not take "
		  "listen addresses" },
		{ "MAILFLEET_WEB_LISTEN=127.0.0.1:80 http",
		  "MAILFLEET_WEB_LISTEN: unexpected http (want HOST:PORT [plain|tls|starttls] [proxy])" },
		{ "MAILFLEET_WEB_LISTEN= , ",
		  "MAILFLEET_WEB_LISTEN: no listen spec (want HOST:PORT [plain|tls|starttls] [proxy],...)" },
		{ "MAILFLEET_TLS_CERT=/c.pem",
		  "/etc/mf/mailfleet.conf: tls.key: required but not set (tls needs both cert and key)" },
		{ "MAILFLEET_SUBMISSION_LISTEN=127.0.0.1:587",
		  "/etc/mf/mailfleet.conf: submission.admin: required but not set" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *env[] = { (char *)cases[i].var, NULL };
		const char *err = load_err(MINIMAL, env);
		if (strcmp(err, cases[i].error) != 0)
			fail_msg("case %zu:\n got: %s\nwant: %s", i, err, cases[i].error);
	}
}

static void test_load_file(void **state)
{
	char dir[] = "/tmp/mf-test-config-XXXXXX";
	struct mf_config *c = NULL;
	const char *err;
	char *path;
	FILE *f;

	assert_non_null(mkdtemp(dir));
	path = mf_xasprintf("%s/mailfleet.conf", dir);
	assert_int_equal(mf_config_load(path, &c, &err), -1);
	assert_non_null(strstr(err, "No such file or directory"));
	f = fopen(path, "w");
	assert_non_null(f);
	fputs("hostname localhost\ndata-dir data\n", f);
	fclose(f);
	unsetenv("MAILFLEET_HOSTNAME");
	unsetenv("MAILFLEET_DATA_DIR");
	setenv("MAILFLEET_BLOB_DIR", "/blobs-from-env", 1);
	assert_int_equal(mf_config_load(path, &c, &err), 0);
	unsetenv("MAILFLEET_BLOB_DIR");
	char *want = mf_xasprintf("%s/data", dir);
	assert_string_equal(c->data_dir, want);
	assert_string_equal(c->blob_dir, "/blobs-from-env");
	free(want);
	mf_config_free(&c);
	unlink(path);
	rmdir(dir);
	free(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_services),
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_full),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_several_errors),
		cmocka_unit_test(test_env),
		cmocka_unit_test(test_env_errors),
		cmocka_unit_test(test_load_file),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
