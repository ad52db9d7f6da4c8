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

/* argv[0] is "dkim".  Returns the exit code: 0 done, 1 failed, 2 usage. */
int cli_cmd_dkim(int argc, char **argv);

#endif
