/* quickstart: writes a first configuration (mailfleet.conf, domains.conf,
 * TLS certificate, DKIM keys, account and admin passwords). */
#ifndef CLI_CMD_QUICKSTART_H
#define CLI_CMD_QUICKSTART_H

/* argv[0] is "quickstart". Returns the process exit code. */
int cli_cmd_quickstart(int argc, char **argv);

#endif
