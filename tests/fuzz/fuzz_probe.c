/* Fuzzes the probe's parsers (services/cli/cmd_probe.c): the HTTP status
 * line it reads from the network, fed whole and byte by byte (both must
 * agree, as the probe parses what has arrived so far), and the URL. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "services/cli/cmd_probe.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cli_probe_target t;
	const char *err;
	char *s;
	int status_whole = 0, status_part = 0, whole, part = 0;
	size_t len = size < CLI_PROBE_STATUS_LINE_MAX ? size : CLI_PROBE_STATUS_LINE_MAX;

	whole = cli_probe_parse_status((const char *)data, len, &status_whole);
	if (whole < -1 || whole > 1 || (whole == 1 && (status_whole < 100 || status_whole > 599)))
		abort();
	for (size_t n = 0; n <= len; n++) {
		part = cli_probe_parse_status((const char *)data, n, &status_part);
		if (part != 0)
			break;
	}
	/* Once decided on a prefix, the answer must be the one for the whole. */
	if (part != whole)
		abort();
	if (whole == 1 && status_part != status_whole)
		abort();

	s = malloc(size + 1);
	if (s == NULL)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	if (cli_probe_parse_url(s, &t, &err) == 0) {
		if (t.port == 0 || t.path[0] != '/' || strlen(t.path) > CLI_PROBE_PATH_MAX)
			abort();
	} else if (err == NULL) {
		abort();
	}
	free(s);
	return 0;
}
