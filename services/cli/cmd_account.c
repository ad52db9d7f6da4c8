/* mailfleet account add/password/remove, mailfleet address add/remove. */
#include "cmd_account.h"

#include <errno.h>
#include <getopt.h>
#include <openssl/evp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "cli_bus.h"
#include "cmd_tlspubkey.h"
#include "config.h"
#include "config.pb-c.h"
#include "domains.h"
#include "fsutil.h"
#include "log.h"
#include "password.h"
#include "storeclient.h"

/* How long the CLI waits for the store to answer. */
#define CLI_ACCOUNT_TIMEOUT_MS 15000
#define CLI_DOMAINS_MAX (16 * 1024 * 1024)

static const char account_usage[] =
	"usage: mailfleet account add NAME ADDRESS [-c mailfleet.conf]\n"
	"       mailfleet account password NAME [--generate] [-c mailfleet.conf]\n"
	"       mailfleet account remove NAME [-c mailfleet.conf]\n"
	"       mailfleet account check NAME [-c mailfleet.conf]\n"
	"       mailfleet account loginattempts NAME [--limit N] [-c mailfleet.conf]\n"
	"       mailfleet account options NAME [--cram-md5 yes|no] [--generated-only yes|no]\n"
	"  password: prompts twice on a terminal, else reads one line from stdin;\n"
	"  --generate makes one up and prints it.\n";
static const char address_usage[] =
	"usage: mailfleet address add ADDRESS ACCOUNT [-c mailfleet.conf]\n"
	"       mailfleet address remove ADDRESS [-c mailfleet.conf]\n";

struct opts {
	const char *config_path;
	bool generate;
	char **args;
	int nargs;
};

/* Parses options after the subcommand; args are the positional rest. */
static int parse_opts(int argc, char **argv, bool allow_generate, struct opts *o)
{
	static const struct option longopts[] = {
		{ "generate", no_argument, NULL, 'g' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	memset(o, 0, sizeof(*o));
	optind = 1;
	while ((c = getopt_long(argc, argv, "c:", longopts, NULL)) != -1) {
		switch (c) {
		case 'c': o->config_path = optarg; break;
		case 'g':
			if (!allow_generate)
				return -1;
			o->generate = true;
			break;
		default: return -1;
		}
	}
	o->args = argv + optind;
	o->nargs = argc - optind;
	return 0;
}

static const char *config_path(const char *path)
{
	if (path == NULL)
		path = getenv("MAILFLEET_CONFIG");
	return path == NULL || path[0] == '\0' ? "mailfleet.conf" : path;
}

static int load_config(const char *path, struct mf_config **config_r)
{
	const char *err;

	if (mf_config_load(config_path(path), config_r, &err) < 0) {
		fprintf(stderr, "%s\n", err);
		return -1;
	}
	return 0;
}

/* Hex SHA-256 of the file, "" when it cannot be read. */
static char *file_sha256(const char *path)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	const char *err;
	size_t len;
	char *data = mf_fs_read_file(path, CLI_DOMAINS_MAX, &len, &err), *hex;

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

/* Tells every service to reload domains.conf.  A failure is reported
 * but not fatal: the file is written, a restart or `mailfleet reload`
 * picks it up. */
static void publish_changed(struct mf_bus *bus, const struct mf_config *config)
{
	Mailfleet__V1__ConfigChanged msg = MAILFLEET__V1__CONFIG_CHANGED__INIT;
	char *sha = file_sha256(config->domains_file);
	uint8_t *data;
	size_t len;
	const char *err;

	msg.file = "domains.conf";
	msg.sha256 = sha;
	msg.changed_by = "cli";
	msg.changed_unix_ms = (int64_t)time(NULL) * 1000;
	len = mailfleet__v1__config_changed__get_packed_size(&msg);
	data = mf_xmalloc(len + 1);
	mailfleet__v1__config_changed__pack(&msg, data);
	if (mf_bus_publish(bus, "config.v1.changed", data, len, &err) < 0)
		fprintf(stderr, "mailfleet: warning: config.v1.changed not sent (%s); "
			"run `mailfleet reload` when the services are up\n", err);
	free(data);
	free(sha);
}

/* Connects to NATS for the store calls; prints why not. */
static int open_bus(const char *path, struct mf_config **config_r, struct mf_bus **bus_r)
{
	return cli_bus_open(config_path(path), config_r, bus_r);
}

static void open_bus_after_edit_failed(void)
{
	fprintf(stderr, "mailfleet: domains.conf was changed, but the services could not be told; "
		"run `mailfleet reload` when they are up\n");
}

/* --- account add / remove ---------------------------------------------------- */

static int account_add(struct opts *o)
{
	struct mf_config *config = NULL, *bconfig = NULL;
	struct mf_bus *bus = NULL;
	enum mf_bus_status status;
	const char *name, *address, *err;
	bool created;
	int ret = 1;

	if (o->nargs != 2) {
		fputs(account_usage, stderr);
		return 2;
	}
	name = o->args[0];
	address = o->args[1];
	if (load_config(o->config_path, &config) < 0)
		return 1;
	if (mf_domains_add_account(config->domains_file, name, address, &err) < 0) {
		fprintf(stderr, "mailfleet account add: %s\n", err);
		goto out;
	}
	printf("account %s with address %s added to %s\n", name, address, config->domains_file);
	if (open_bus(o->config_path, &bconfig, &bus) < 0) {
		open_bus_after_edit_failed();
		goto out;
	}
	/* The store first (the imap service reads domains.conf for it), then
	 * the event, so the answer says who created it. */
	if (mf_storeclient_create_account(bus, NULL, name, CLI_ACCOUNT_TIMEOUT_MS, &created,
					  &status, &err) < 0) {
		publish_changed(bus, bconfig);
		fprintf(stderr, "mailfleet account add: creating the account's store: %s%s\n", err,
			status == MF_BUS_TEMPORARY ? " (the imap service creates it when it "
			"starts or reloads)" : "");
		goto out;
	}
	publish_changed(bus, bconfig);
	printf("account store %s\n", created ? "created" : "already existed");
	printf("set a password with: mailfleet account password %s\n", name);
	ret = 0;
out:
	cli_bus_close(&bconfig, &bus);
	mf_config_free(&config);
	return ret;
}

static int account_remove(struct opts *o)
{
	struct mf_config *config = NULL, *bconfig = NULL;
	struct mf_domains *domains = NULL;
	struct mf_bus *bus = NULL;
	enum mf_bus_status status;
	const char *name, *err;
	bool removed, configured;
	int ret = 1;

	if (o->nargs != 1) {
		fputs(account_usage, stderr);
		return 2;
	}
	name = o->args[0];
	if (load_config(o->config_path, &config) < 0)
		return 1;
	/* Connect first: removing from domains.conf without being able to
	 * remove the store would leave the store behind silently. */
	if (open_bus(o->config_path, &bconfig, &bus) < 0)
		goto out;
	if (mf_domains_load(config->domains_file, &domains, &err) < 0) {
		fprintf(stderr, "%s\n", err);
		goto out;
	}
	configured = mf_domains_find_account(domains, name) != NULL;
	/* Not configured: a retry after the store could not be reached; go
	 * on to remove the store. */
	if (configured) {
		if (mf_domains_remove_account(config->domains_file, name, &err) < 0) {
			fprintf(stderr, "mailfleet account remove: %s\n", err);
			goto out;
		}
		printf("account %s removed from %s\n", name, config->domains_file);
	}
	if (mf_storeclient_remove_account(bus, NULL, name, CLI_ACCOUNT_TIMEOUT_MS, &removed,
					  &status, &err) < 0) {
		publish_changed(bus, bconfig);
		fprintf(stderr, "mailfleet account remove: removing the account's store: %s\n"
			"  run `mailfleet account remove %s` again to retry\n", err, name);
		goto out;
	}
	publish_changed(bus, bconfig);
	if (!configured && !removed) {
		fprintf(stderr, "mailfleet account remove: no account %s\n", name);
		goto out;
	}
	printf("account store %s\n", removed ? "removed (messages deleted)" : "did not exist");
	ret = 0;
out:
	mf_domains_unref(&domains);
	cli_bus_close(&bconfig, &bus);
	mf_config_free(&config);
	return ret;
}

/* --- account password ---------------------------------------------------------- */

/* Reads one line (without its line end) from f into buf.  Returns its
 * length, or -1 at EOF/error or when too long. */
static ssize_t read_line(FILE *f, char *buf, size_t size)
{
	size_t n;

	if (fgets(buf, (int)size, f) == NULL)
		return -1;
	n = strlen(buf);
	if (n > 0 && buf[n - 1] != '\n' && !feof(f))
		return -1;  /* longer than the buffer */
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
		buf[--n] = '\0';
	return (ssize_t)n;
}

static ssize_t prompt_hidden(const char *prompt, char *buf, size_t size)
{
	struct termios old, quiet;
	bool echo_off;
	ssize_t n;

	fputs(prompt, stderr);
	fflush(stderr);
	echo_off = tcgetattr(STDIN_FILENO, &old) == 0;
	if (echo_off) {
		quiet = old;
		quiet.c_lflag &= ~(tcflag_t)ECHO;
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
	}
	n = read_line(stdin, buf, size);
	if (echo_off)
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
	fputc('\n', stderr);
	return n;
}

static int account_password(struct opts *o)
{
	struct mf_config *config = NULL, *bconfig = NULL;
	struct mf_domains *domains = NULL;
	struct mf_bus *bus = NULL;
	enum mf_bus_status status;
	char pw[MF_PASSWORD_MAX + 2], again[MF_PASSWORD_MAX + 2];
	char *generated = NULL;
	const char *name, *err, *password;
	ssize_t n;
	int ret = 1;

	if (o->nargs != 1) {
		fputs(account_usage, stderr);
		return 2;
	}
	name = o->args[0];
	if (load_config(o->config_path, &config) < 0)
		return 1;
	if (mf_domains_load(config->domains_file, &domains, &err) < 0) {
		fprintf(stderr, "%s\n", err);
		goto out;
	}
	if (mf_domains_find_account(domains, name) == NULL) {
		fprintf(stderr, "mailfleet account password: no account %s in %s\n", name,
			config->domains_file);
		goto out;
	}
	if (o->generate) {
		generated = mf_password_generate();
		password = generated;
	} else if (isatty(STDIN_FILENO)) {
		n = prompt_hidden("new password: ", pw, sizeof(pw));
		if (n <= 0 || (size_t)n > MF_PASSWORD_MAX) {
			fprintf(stderr, "mailfleet account password: no password given (or longer "
				"than %d bytes)\n", MF_PASSWORD_MAX);
			goto out;
		}
		if (prompt_hidden("again: ", again, sizeof(again)) != n || strcmp(pw, again) != 0) {
			fprintf(stderr, "mailfleet account password: the passwords differ\n");
			goto out;
		}
		password = pw;
	} else {
		n = read_line(stdin, pw, sizeof(pw));
		if (n <= 0 || (size_t)n > MF_PASSWORD_MAX) {
			fprintf(stderr, "mailfleet account password: no password on stdin (one line, "
				"at most %d bytes)\n", MF_PASSWORD_MAX);
			goto out;
		}
		password = pw;
	}
	if (open_bus(o->config_path, &bconfig, &bus) < 0)
		goto out;
	if (mf_storeclient_set_password(bus, NULL, name, password, strlen(password),
					CLI_ACCOUNT_TIMEOUT_MS, &status, &err) < 0) {
		fprintf(stderr, "mailfleet account password: %s\n", err);
		goto out;
	}
	if (generated != NULL)
		printf("password for %s: %s\n", name, generated);
	else
		printf("password for %s set\n", name);
	ret = 0;
out:
	explicit_bzero(pw, sizeof(pw));
	explicit_bzero(again, sizeof(again));
	if (generated != NULL) {
		explicit_bzero(generated, strlen(generated));
		free(generated);
	}
	mf_domains_unref(&domains);
	cli_bus_close(&bconfig, &bus);
	mf_config_free(&config);
	return ret;
}

static int account_check(struct opts *o)
{
	struct mf_config *bconfig = NULL;
	struct mf_bus *bus = NULL;
	enum mf_bus_status status;
	char *problem = NULL;
	const char *err;
	bool consistent;
	int ret = 1;

	if (o->nargs != 1) {
		fputs(account_usage, stderr);
		return 2;
	}
	if (open_bus(o->config_path, &bconfig, &bus) < 0)
		return 1;
	if (mf_storeclient_check_account(bus, NULL, o->args[0], CLI_ACCOUNT_TIMEOUT_MS,
					 &consistent, &problem, &status, &err) < 0) {
		fprintf(stderr, "mailfleet account check: %s\n", err);
		goto out;
	}
	if (!consistent) {
		printf("account %s: inconsistent: %s\n", o->args[0], problem);
		goto out;
	}
	printf("account %s: consistent\n", o->args[0]);
	ret = 0;
out:
	free(problem);
	cli_bus_close(&bconfig, &bus);
	return ret;
}

int cli_cmd_account(int argc, char **argv)
{
	struct opts o;
	const char *sub = argc >= 2 ? argv[1] : "";
	bool is_password = strcmp(sub, "password") == 0;
	const char *err;

	if (strcmp(sub, "loginattempts") == 0)   /* cmd_tlspubkey.c, own options */
		return cli_account_loginattempts(argc - 1, argv + 1);
	if (strcmp(sub, "options") == 0)
		return cli_account_options(argc - 1, argv + 1);
	mf_log_set_level("bus", "error", &err);
	if (argc < 2 || parse_opts(argc - 1, argv + 1, is_password, &o) < 0) {
		fputs(account_usage, stderr);
		return 2;
	}
	if (strcmp(sub, "add") == 0)
		return account_add(&o);
	if (is_password)
		return account_password(&o);
	if (strcmp(sub, "remove") == 0)
		return account_remove(&o);
	if (strcmp(sub, "check") == 0)
		return account_check(&o);
	fputs(account_usage, stderr);
	return 2;
}

/* --- address add / remove ------------------------------------------------------ */

/* Edits domains.conf, then tells the services.  */
static int address_edit(struct opts *o, bool add)
{
	struct mf_config *config = NULL, *bconfig = NULL;
	struct mf_domains *domains = NULL;
	struct mf_bus *bus = NULL;
	const char *address, *account, *err;
	int ret = 1;

	if (o->nargs != (add ? 2 : 1)) {
		fputs(address_usage, stderr);
		return 2;
	}
	address = o->args[0];
	if (load_config(o->config_path, &config) < 0)
		return 1;
	if (add) {
		account = o->args[1];
		if (mf_domains_add_address(config->domains_file, account, address, &err) < 0) {
			fprintf(stderr, "mailfleet address add: %s\n", err);
			goto out;
		}
		printf("address %s added to account %s\n", address, account);
	} else {
		struct mf_domains_dest dest;

		if (mf_domains_load(config->domains_file, &domains, &err) < 0) {
			fprintf(stderr, "%s\n", err);
			goto out;
		}
		if (mf_domains_resolve_address(domains, address, &dest, &err) < 0) {
			fprintf(stderr, "mailfleet address remove: %s\n", err);
			goto out;
		}
		if (dest.kind != MF_DOMAINS_DEST_ACCOUNT) {
			fprintf(stderr, "mailfleet address remove: %s is not an address of an "
				"account\n", address);
			goto out;
		}
		account = dest.account->name;
		/* Fails unless the address itself is configured (not only matched
		 * through a catch-all). */
		if (mf_domains_remove_address(config->domains_file, account, address, &err) < 0) {
			fprintf(stderr, "mailfleet address remove: %s\n", err);
			goto out;
		}
		printf("address %s removed from account %s\n", address, account);
	}
	if (open_bus(o->config_path, &bconfig, &bus) < 0) {
		open_bus_after_edit_failed();
		goto out;
	}
	publish_changed(bus, bconfig);
	ret = 0;
out:
	mf_domains_unref(&domains);
	cli_bus_close(&bconfig, &bus);
	mf_config_free(&config);
	return ret;
}

int cli_cmd_address(int argc, char **argv)
{
	struct opts o;
	const char *sub = argc >= 2 ? argv[1] : "";
	const char *err;

	mf_log_set_level("bus", "error", &err);
	if (argc < 2 || parse_opts(argc - 1, argv + 1, false, &o) < 0) {
		fputs(address_usage, stderr);
		return 2;
	}
	if (strcmp(sub, "add") == 0)
		return address_edit(&o, true);
	if (strcmp(sub, "remove") == 0)
		return address_edit(&o, false);
	fputs(address_usage, stderr);
	return 2;
}
