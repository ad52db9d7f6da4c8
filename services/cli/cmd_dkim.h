/* dkim: `mailfleet dkim add DOMAIN` and `mailfleet dkim list DOMAIN`.
 *
 * add generates two Ed25519 and two RSA-2048 keys (PKCS#8 PEM, mode 0600,
 * libshared/keygen.h) in the dkim/ directory beside domains.conf, adds
 * them as selectors of the domain through mf_domains_edit, makes the first
 * Ed25519 and the first RSA selector the ones to sign with when the domain
 * signs with nothing yet (the other two wait for a key rotation), prints
 * the DNS records to publish, and publishes config.v1.changed. */
#ifndef CLI_CMD_DKIM_H
#define CLI_CMD_DKIM_H

#include <stdbool.h>
#include <time.h>

#include "keygen.h"

/* Keys a domain gets at once (dkim add, quickstart): two ed25519, then two
 * rsa-2048; the first of each signs, the others wait for a rotation. */
#define CLI_DKIM_NEW_KEYS 4

struct cli_dkim_key {
	char selector[64];
	enum mf_keygen_algorithm alg;
	char *rel_path;   /* as written in domains.conf: dkim/<domain>-<selector>.pem */
	char *path;       /* dir/rel_path */
	char *record;     /* the DNS TXT value, "v=DKIM1; k=...; p=..." */
};

/* Generates CLI_DKIM_NEW_KEYS keys for domain (A-labels) in dir/dkim
 * (created, mode 0700; keys mode 0600), with selectors named after the
 * date of now and a letter ("20261122a") that taken (may be NULL) does not
 * report as used.  Returns 0 with keys filled (free with
 * cli_dkim_keys_free), or -1 with error_r and no key file left behind. */
int cli_dkim_generate(const char *dir, const char *domain, time_t now,
		      bool (*taken)(const char *selector, void *ctx), void *ctx,
		      struct cli_dkim_key keys[CLI_DKIM_NEW_KEYS], const char **error_r);
/* Removes the key files (a later step failed and nothing names them). */
void cli_dkim_keys_unlink(struct cli_dkim_key keys[CLI_DKIM_NEW_KEYS]);
void cli_dkim_keys_free(struct cli_dkim_key keys[CLI_DKIM_NEW_KEYS]);

/* argv[0] is "dkim".  Returns the exit code: 0 done, 1 failed, 2 usage. */
int cli_cmd_dkim(int argc, char **argv);

#endif
