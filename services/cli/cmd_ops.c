/* mailfleet loglevel / reload: events to the running services over NATS. */
#include "cmd_ops.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "buf.h"
#include "cli_bus.h"
#include "config.pb-c.h"
#include "fsutil.h"
#include "log.h"

/* Publishes one event and closes the bus (which flushes). */
static int publish(const char *config_path, const char *subject, const void *data, size_t len)
{
	struct mf_config *config = NULL;
	struct mf_bus *bus = NULL;
	const char *err;
	int ret = 1;

	if (cli_bus_open(config_path, &config, &bus) < 0)
		return 1;
	if (mf_bus_publish(bus, subject, data, len, &err) < 0)
		fprintf(stderr, "mailfleet: publish %s: %s\n", subject, err);
	else
		ret = 0;
	cli_bus_close(&config, &bus);
	return ret;
}

int cli_cmd_loglevel(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "service", required_argument, NULL, 's' },
		{ NULL, 0, NULL, 0 },
	};
	const char *config_path = NULL, *service = NULL, *err;
	Mailfleet__V1__LogLevel msg = MAILFLEET__V1__LOG_LEVEL__INIT;
	uint8_t *data;
	char *subject;
	size_t len;
	int c, ret;

	optind = 1;
	while ((c = getopt_long(argc, argv, "c:", opts, NULL)) != -1) {
		switch (c) {
		case 'c': config_path = optarg; break;
		case 's': service = optarg; break;
		default: goto usage;
		}
	}
	if (optind + 1 != argc)
		goto usage;
	/* Check the spec here so a typo is reported to the admin, not only
	 * logged by every service. */
	if (mf_log_apply_spec(argv[optind], &err) < 0) {
		fprintf(stderr, "mailfleet loglevel: %s: %s\n", argv[optind], err);
		return 2;
	}
	if (service != NULL && mf_service_by_name(service) < 0) {
		fprintf(stderr, "mailfleet loglevel: unknown service %s\n", service);
		return 2;
	}
	msg.spec = argv[optind];
	len = mailfleet__v1__log_level__get_packed_size(&msg);
	data = mf_xmalloc(len);
	mailfleet__v1__log_level__pack(&msg, data);
	subject = service != NULL ? mf_xasprintf("config.v1.loglevel.%s", service) :
				    mf_xstrdup("config.v1.loglevel");
	ret = publish(config_path, subject, data, len);
	if (ret == 0)
		printf("log level %s sent to %s\n", argv[optind], service != NULL ? service : "all services");
	free(subject);
	free(data);
	return ret;
usage:
	fprintf(stderr, "usage: mailfleet loglevel SPEC [--service NAME] [-c mailfleet.conf]\n"
			"  SPEC: a level (tracedata traceauth trace debug info warn error),\n"
			"        or e.g. info,smtp-in=debug\n");
	return 2;
}

int cli_cmd_reload(int argc, char **argv)
{
	Mailfleet__V1__ConfigChanged msg = MAILFLEET__V1__CONFIG_CHANGED__INIT;
	const char *config_path = NULL;
	uint8_t *data;
	size_t len;
	int c, ret;

	optind = 1;
	while ((c = getopt(argc, argv, "c:")) != -1) {
		if (c != 'c') {
			fprintf(stderr, "usage: mailfleet reload [-c mailfleet.conf]\n");
			return 2;
		}
		config_path = optarg;
	}
	msg.file = "domains.conf";
	msg.changed_by = "cli";
	msg.changed_unix_ms = (int64_t)time(NULL) * 1000;
	len = mailfleet__v1__config_changed__get_packed_size(&msg);
	data = mf_xmalloc(len);
	mailfleet__v1__config_changed__pack(&msg, data);
	ret = publish(config_path, "config.v1.changed", data, len);
	if (ret == 0)
		printf("reload sent\n");
	free(data);
	return ret;
}
