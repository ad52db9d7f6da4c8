/* Fuzzes the delivery SMTP client's reply parser and EHLO extension parser
 * with what a hostile receiving server might send: lines split at '\n'. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "services/delivery/smtp_client_reply.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct smtp_client_reply r;
	struct smtp_client_ext ext;
	const char *p = (const char *)data, *end = p + size, *error;

	smtp_client_reply_init(&r);
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t len = nl != NULL ? (size_t)(nl - p) : (size_t)(end - p);
		int ret;
		if (len > 0 && p[len - 1] == '\r')
			len--;
		ret = smtp_client_reply_feed(&r, p, len, &error);
		if (ret < 0) {
			smtp_client_reply_reset(&r);
		} else if (ret == 1) {
			smtp_client_ext_parse(&r, &ext);
			(void)smtp_client_reply_too_many_rcpts(r.code);
		}
		p = nl != NULL ? nl + 1 : end;
	}
	smtp_client_reply_free(&r);
	return 0;
}
