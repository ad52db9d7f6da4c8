/* account, address: `mailfleet account add/password/remove/check` and
 * `mailfleet address add/remove`.  domains.conf is edited through
 * mf_domains_edit (the one validated write path), config.v1.changed is
 * published so every service reloads it, and the account's store is
 * created, removed or given a password through the store API over NATS. */
#ifndef CLI_CMD_ACCOUNT_H
#define CLI_CMD_ACCOUNT_H

/* argv[0] is "account" / "address".  Return the process exit code: 0 done,
 * 1 failed (the message names what was and was not done), 2 usage. */
int cli_cmd_account(int argc, char **argv);
int cli_cmd_address(int argc, char **argv);

#endif
