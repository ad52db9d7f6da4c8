/* mailfleet config check [-c PATH]: validates the configuration the way the
 * services load it, plus what only a running service would find out later:
 * that the TLS and DKIM key files can be read. */
#include "cmd_config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "config.h"
#include "domains.h"

static int usage(void)
{
	fprintf(stderr, "usage: mailfleet config check [-c mailfleet.conf]\n"
			"  (default: $MAILFLEET_CONFIG, else ./mailfleet.conf)\n");
	return 2;
}

/* Prints an error if path cannot be read; returns the number printed. */
static int check_readable(const char *file, unsigned line, const char *field, const char *path)
{
	if (access(path, R_OK) == 0)
		return 0;
	if (line > 0)
		fprintf(stderr, "%s:%u: %s: %s: %s\n", file, line, field, path, strerror(errno));
	else
		fprintf(stderr, "%s: %s: %s: %s\n", file, field, path, strerror(errno));
	return 1;
}

static int check(const char *path)
{
	struct mf_config *config = NULL;
	struct mf_domains *domains = NULL;
	const char *err;
	int errors = 0;

	if (mf_config_load(path, &config, &err) < 0) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	if (config->tls_cert != NULL) {
		errors += check_readable(config->path, 0, "tls.cert", config->tls_cert);
		errors += check_readable(config->path, 0, "tls.key", config->tls_key);
	}
	if (mf_domains_load(config->domains_file, &domains, &err) < 0) {
		fprintf(stderr, "%s\n", err);
		errors++;
	} else {
		for (size_t i = 0; i < domains->domains_count; i++) {
			const struct mf_domain *d = &domains->domains[i];
			for (size_t j = 0; j < d->selectors_count; j++) {
				char *field = mf_xasprintf("domain[%s].dkim.selector[%s].key-file",
							   d->name, d->selectors[j].name);
				errors += check_readable(domains->path, d->selectors[j].line, field,
							 d->selectors[j].key_file);
				free(field);
			}
		}
	}
	mf_domains_unref(&domains);
	mf_config_free(&config);
	if (errors > 0)
		return 1;
	printf("config ok\n");
	return 0;
}

int cli_cmd_config(int argc, char **argv)
{
	const char *path = getenv("MAILFLEET_CONFIG");

	if (argc < 2 || strcmp(argv[1], "check") != 0)
		return usage();
	for (int i = 2; i < argc; i++) {
		if (strcmp(argv[i], "-c") == 0 && i + 1 < argc)
			path = argv[++i];
		else
			return usage();
	}
	if (path == NULL || path[0] == '\0')
		path = "mailfleet.conf";
	return check(path);
}
