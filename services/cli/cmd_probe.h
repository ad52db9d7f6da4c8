/* mailfleet probe: the container health check.  A tiny HTTP/1.0 GET client
 * for a service's admin endpoints on loopback, so images need no curl:
 *
 *   mailfleet probe [--timeout SECS] http://127.0.0.1:1081/healthz
 *   mailfleet probe [--timeout SECS] [-c mailfleet.conf] --service smtp-in [/readyz]
 *
 * The second form finds the service's admin address in the configuration
 * (with its MAILFLEET_* environment overrides), so a HEALTHCHECK keeps
 * working when the admin port moves.  Exit status: 0 when the answer is
 * 200, 1 for any other answer or failure (with the reason on stderr),
 * 2 for bad usage. */
#ifndef CLI_CMD_PROBE_H
#define CLI_CMD_PROBE_H

#include <stddef.h>
#include <stdint.h>

/* Limits: the whole exchange is bounded in time and in bytes read. */
#define CLI_PROBE_TIMEOUT_DEFAULT_MS 5000
#define CLI_PROBE_TIMEOUT_MAX_MS 60000
#define CLI_PROBE_STATUS_LINE_MAX 512  /* bytes read before the status line must end */
#define CLI_PROBE_PATH_MAX 256

struct cli_probe_target {
	char host[64];   /* numeric loopback address, IPv6 without brackets */
	uint16_t port;
	char path[CLI_PROBE_PATH_MAX + 1];
};

/* Parses "http://HOST:PORT[/PATH]" where HOST is 127.0.0.0/8, [::1] or
 * localhost (taken as 127.0.0.1: the probe never asks a resolver).  The path
 * defaults to "/healthz".  Returns 0, or -1 with error_r (static text). */
int cli_probe_parse_url(const char *url, struct cli_probe_target *target_r,
			const char **error_r);

/* Parses an HTTP status line ("HTTP/1.1 200 OK") from the first len bytes
 * of buf.  Returns 1 with the code in status_r, 0 when the line has not
 * ended yet, -1 when it is not an HTTP status line. */
int cli_probe_parse_status(const char *buf, size_t len, int *status_r);

/* Performs GET and returns the HTTP status (100..599), or -1 with error_r
 * (valid until the next call from this thread). */
int cli_probe_get(const struct cli_probe_target *target, int timeout_ms,
		  const char **error_r);

int cli_cmd_probe(int argc, char **argv);

#endif
