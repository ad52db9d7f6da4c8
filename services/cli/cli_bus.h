/* cli_bus: the CLI's connection to the running services over NATS. */
#ifndef CLI_BUS_H
#define CLI_BUS_H

#include "bus.h"
#include "config.h"

/* How long the CLI waits for NATS before giving up. */
#define CLI_BUS_CONNECT_TIMEOUT_MS 5000

/* Loads the configuration at path (NULL: $MAILFLEET_CONFIG, else
 * ./mailfleet.conf) and connects to its NATS server, waiting until
 * connected.  Returns 0 with both (free with cli_bus_close), or -1 after
 * printing the error to stderr. */
int cli_bus_open(const char *path, struct mf_config **config_r, struct mf_bus **bus_r);
void cli_bus_close(struct mf_config **config, struct mf_bus **bus);

#endif
