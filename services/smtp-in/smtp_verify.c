/* smtp_verify: sender verification hook (filled by the dnsauth issue). */
#include "smtp_verify.h"

int smtp_verify_message(const struct smtp_verify_input *in, struct smtp_verify_result *result_r,
			const char **error_r)
{
	(void)in;
	(void)error_r;
	result_r->verdict = SMTP_VERIFY_NOT_CONFIGURED;
	result_r->reply = NULL;
	result_r->why = "no verification configured";
	return 0;
}
