#include "cli_bus.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "log.h"

int cli_bus_open(const char *path, struct mf_config **config_r, struct mf_bus **bus_r)
{
	const char *err;
	struct timespec pause = { 0, 50 * 1000 * 1000 };

	if (path == NULL)
		path = getenv("MAILFLEET_CONFIG");
	if (path == NULL || path[0] == '\0')
		path = "mailfleet.conf";
	/* Connection chatter of the bus module is for services, not the CLI. */
	mf_log_set_level("bus", "error", &err);
	if (mf_config_load(path, config_r, &err) < 0) {
		fprintf(stderr, "%s\n", err);
		return -1;
	}
	if (mf_bus_connect((*config_r)->nats_url, "cli", bus_r, &err) < 0) {
		fprintf(stderr, "mailfleet: nats-url %s: %s\n", (*config_r)->nats_url, err);
		mf_config_free(config_r);
		return -1;
	}
	for (int waited = 0; !mf_bus_connected(*bus_r); waited += 50) {
		if (waited >= CLI_BUS_CONNECT_TIMEOUT_MS) {
			fprintf(stderr, "mailfleet: cannot reach NATS at %s (are the services running?)\n",
				(*config_r)->nats_url);
			cli_bus_close(config_r, bus_r);
			return -1;
		}
		nanosleep(&pause, NULL);
	}
	return 0;
}

void cli_bus_close(struct mf_config **config, struct mf_bus **bus)
{
	if (*bus != NULL)
		mf_bus_close(bus);
	mf_config_free(config);
}
