/* tlspubkey, account loginattempts: `mailfleet tlspubkey add|list|remove`
 * registers TLS client public keys for certificate login (EXTERNAL, IMAP
 * PREAUTH) in the account store, and `mailfleet account loginattempts NAME`
 * lists the store's login attempts; both over the store API (NATS). */
#ifndef CLI_CMD_TLSPUBKEY_H
#define CLI_CMD_TLSPUBKEY_H

/* argv[0] is "tlspubkey".  Returns the exit code: 0 done, 1 failed, 2 usage. */
int cli_cmd_tlspubkey(int argc, char **argv);
/* `mailfleet account loginattempts NAME [--limit N] [-c CONF]`; argv[0] is
 * "loginattempts". */
int cli_account_loginattempts(int argc, char **argv);
/* `mailfleet account options NAME [--cram-md5 yes|no] [--generated-only
 * yes|no] [-c CONF]`; argv[0] is "options". */
int cli_account_options(int argc, char **argv);

#endif
