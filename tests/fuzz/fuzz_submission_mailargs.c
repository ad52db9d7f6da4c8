/* fuzz_submission_mailargs: HOLDFOR/HOLDUNTIL/AUTH extraction and RFC 3339
 * date-times on arbitrary bytes.  Checks: the rest is never longer than the
 * input, a release is within SUB_HOLD_MAX_SECS, and a parsed date-time
 * formats (in UTC, whole seconds) to text that parses to the same second. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "services/submission/sub_mailargs.h"

#define NOW_MS 1795363200000LL

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *s = (const char *)data, *err;
	char *rest;
	size_t rest_len;
	int64_t release, ms, ms2;

	if (sub_mailargs_extract(s, size, NOW_MS, &rest, &rest_len, &release, &err) == 0) {
		if (rest_len > size || strlen(rest) > rest_len)
			abort();
		if (release != 0 && (release <= NOW_MS - 1000 ||
				     release > NOW_MS + SUB_HOLD_MAX_SECS * 1000))
			abort();
		free(rest);
	} else if (err == NULL || strncmp(err, "501 5.5.4 ", 10) != 0) {
		abort();
	}
	if (sub_datetime_parse(s, size, &ms, &err) == 0) {
		char buf[64];
		int64_t secs = ms >= 0 ? ms / 1000 : (ms - 999) / 1000;
		sub_datetime_format(secs, buf, sizeof(buf));
		if (sub_datetime_parse(buf, strlen(buf), &ms2, &err) != 0 || ms2 != secs * 1000)
			abort();
	}
	return 0;
}
