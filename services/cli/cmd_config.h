/* config: `mailfleet config check`, which loads mailfleet.conf (with the
 * environment overrides a service would apply) and its domains.conf, and
 * reports every error with file, line and field. */
#ifndef CLI_CMD_CONFIG_H
#define CLI_CMD_CONFIG_H

/* argv[0] is "config".  Returns the process exit code: 0 when the
 * configuration is valid, 1 when it has errors, 2 for a usage error. */
int cli_cmd_config(int argc, char **argv);

#endif
