/* ops: commands that act on the running services. */
#ifndef CLI_CMD_OPS_H
#define CLI_CMD_OPS_H

/* mailfleet loglevel SPEC [--service NAME] [-c PATH] */
int cli_cmd_loglevel(int argc, char **argv);
/* mailfleet reload [-c PATH]: services reload domains.conf. */
int cli_cmd_reload(int argc, char **argv);

#endif
