/* fuzz_smtp_verify: what smtp-in does with bytes from outside during
 * verification: the header scan that obscures Authentication-Results
 * fields claiming our authserv-id (message header from the client), the
 * check of dnsauth's Authentication-Results field, and the decision on a
 * VerifyReply (bytes from another service).  Invariants: an obscured
 * header differs only by inserted "X-Forged-" prefixes; nothing crashes. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "services/smtp-in/smtp_verify.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *s = (const char *)data;
	struct smtp_verify_input in = { .cid = "fuzz", .message_id = "fuzz" };
	struct smtp_verify_result r;
	size_t len = 0;
	char *out = smtp_verify_obscure_header(s, size, "mx.example.org", &len);

	if (out != NULL) {
		/* removing every "X-Forged-" we added gives the input back */
		size_t i = 0, k = 0;
		if (len <= size)
			abort();
		while (i < len) {
			if (k < size && out[i] == s[k]) {
				i++;
				k++;
			} else if (len - i >= 9 && memcmp(out + i, "X-Forged-", 9) == 0) {
				i += 9;
			} else {
				abort();
			}
		}
		if (k != size || (len - size) % 9 != 0)
			abort();
		free(out);
	}
	(void)smtp_verify_field_ok(s, size);
	smtp_verify_decide(&in, MF_BUS_OK, "", data, size, &r);
	if ((r.verdict == SMTP_VERIFY_ACCEPT || r.verdict == SMTP_VERIFY_JUNK) &&
	    (r.authentication_results == NULL ||
	     !smtp_verify_field_ok(r.authentication_results, strlen(r.authentication_results))))
		abort();
	smtp_verify_result_clear(&r);
	return 0;
}
