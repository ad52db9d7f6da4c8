/* fuzz_submission_sasl: strict base64 and PLAIN decoding on arbitrary
 * bytes.  Checks: decoded lengths match 3/4 of the input minus padding,
 * and a PLAIN result's login and password lie within the limits. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "services/submission/sub_sasl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *out, *login;
	const char *pw, *err;
	size_t len, pwlen;

	if (sub_base64_decode((const char *)data, size, &out, &len) == 0) {
		if (len > size / 4 * 3 || len + 2 < size / 4 * 3)
			abort();
		free(out);
	}
	if (sub_sasl_plain((const char *)data, size, &login, &pw, &pwlen, &err) == 0) {
		if (strlen(login) == 0 || strlen(login) > SUB_LOGIN_MAX || pwlen > SUB_PASSWORD_MAX ||
		    pw < (const char *)data || pw + pwlen != (const char *)data + size)
			abort();
		free(login);
	} else if (err == NULL) {
		abort();
	}
	return 0;
}
