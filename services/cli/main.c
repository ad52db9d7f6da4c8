/* mailfleet: the command-line tool.  Each command lives in its own file
 * (cmd_<name>.c); this file only dispatches. */
#include <stdio.h>
#include <string.h>

#include "cmd_account.h"
#include "cmd_config.h"
#include "cmd_dkim.h"
#include "cmd_dns.h"
#include "cmd_probe.h"
#include "cmd_ops.h"
#include "cmd_quickstart.h"
#include "cmd_queue.h"
#include "cmd_tlspubkey.h"
#include "log.h"

struct cli_command {
	const char *name;
	const char *usage;
	int (*run)(int argc, char **argv);
};

static const struct cli_command commands[] = {
	{ "account", "account add NAME ADDRESS | password NAME [--generate] | remove NAME | check NAME | loginattempts NAME | options NAME [--cram-md5 yes|no] [--generated-only yes|no] [-c mailfleet.conf]",
	  cli_cmd_account },
	{ "address", "address add ADDRESS ACCOUNT | remove ADDRESS [-c mailfleet.conf]", cli_cmd_address },
	{ "config", "config check [-c mailfleet.conf]", cli_cmd_config },
	{ "tlspubkey", "tlspubkey add ACCOUNT NAME FILE [--login ADDRESS] [--no-preauth] | list ACCOUNT | remove ACCOUNT FINGERPRINT [-c mailfleet.conf]", cli_cmd_tlspubkey },
	{ "dns", "dns lookup NAME [A|AAAA|MX|TXT|PTR|TLSA|CNAME] [-c mailfleet.conf]", cli_cmd_dns },
	{ "dkim", "dkim add DOMAIN | list DOMAIN [-c mailfleet.conf]", cli_cmd_dkim },
	{ "loglevel", "loglevel SPEC [--service NAME] [-c mailfleet.conf]", cli_cmd_loglevel },
	{ "reload", "reload [-c mailfleet.conf]", cli_cmd_reload },
	{ "queue", "queue list|hold|release|fail|drop|reschedule|transport|requiretls|holdrule ... (queue help)", cli_cmd_queue },
	{ "suppression", "suppression list|add|remove ... [-c mailfleet.conf]", cli_cmd_suppression },
	{ "probe", "probe [--timeout SECS] URL | probe [-c CONF] --service NAME [PATH]", cli_cmd_probe },
	{ "quickstart", "quickstart [--local] [--dir DIR] [--hostname HOST] [--domain DOMAIN] [--account NAME] [--port-offset N]",
	  cli_cmd_quickstart },
};

static int usage(FILE *out)
{
	fprintf(out, "usage: mailfleet COMMAND [ARGS]\n\ncommands:\n");
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(out, "  mailfleet %s\n", commands[i].usage);
	return out == stdout ? 0 : 2;
}

int main(int argc, char **argv)
{
	mf_log_init("cli");
	if (argc < 2)
		return usage(stderr);
	if (strcmp(argv[1], "help") == 0 || strcmp(argv[1], "-h") == 0 ||
	    strcmp(argv[1], "--help") == 0)
		return usage(stdout);
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (strcmp(argv[1], commands[i].name) == 0)
			return commands[i].run(argc - 1, argv + 1);
	fprintf(stderr, "mailfleet: unknown command %s\n", argv[1]);
	return usage(stderr);
}
