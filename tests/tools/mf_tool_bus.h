/* mf_tool_bus: config + NATS connection for the test tools (a copy of what
 * services/cli/cli_bus.c does; tools link libshared only). */
#ifndef MF_TOOL_BUS_H
#define MF_TOOL_BUS_H

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "bus.h"
#include "config.h"
#include "log.h"

static inline int mf_tool_bus_open(const char *path, struct mf_config **config_r,
				   struct mf_bus **bus_r)
{
	const char *err;
	struct timespec pause = { 0, 50 * 1000 * 1000 };

	if (path == NULL)
		path = getenv("MAILFLEET_CONFIG");
	if (path == NULL || path[0] == '\0')
		path = "mailfleet.conf";
	mf_log_set_level("bus", "error", &err);
	if (mf_config_load(path, config_r, &err) < 0) {
		fprintf(stderr, "%s\n", err);
		return -1;
	}
	if (mf_bus_connect((*config_r)->nats_url, "test-tool", bus_r, &err) < 0) {
		fprintf(stderr, "nats-url %s: %s\n", (*config_r)->nats_url, err);
		return -1;
	}
	for (int waited = 0; !mf_bus_connected(*bus_r); waited += 50) {
		if (waited >= 5000) {
			fprintf(stderr, "cannot reach NATS at %s\n", (*config_r)->nats_url);
			return -1;
		}
		nanosleep(&pause, NULL);
	}
	return 0;
}

static inline void mf_tool_bus_close(struct mf_config **config, struct mf_bus **bus)
{
	if (*bus != NULL)
		mf_bus_close(bus);
	mf_config_free(config);
}

#endif
