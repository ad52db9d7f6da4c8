/* fuzz_smtp_command: the SMTP command parser on arbitrary lines: split,
 * MAIL and RCPT arguments (with and without SMTPUTF8), BDAT, xtext, and
 * the reply formatter on whatever error text comes back. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smtp_command.h"
#include "smtp_reply.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *s = (const char *)data, *err;
	struct smtp_command cmd;
	struct smtp_mail m;
	struct smtp_rcpt r;
	struct mf_buf out;
	uint64_t n;
	bool last;
	char *x;

	if (size > SMTP_COMMAND_LINE_MAX)
		return 0;
	mf_buf_init(&out, 0);
	if (smtp_command_split(s, size, &cmd, &err) == 0) {
		if (cmd.args + cmd.args_len != s + size)
			abort();
	}
	if (smtp_parse_mail(s, size, &m, &err) == 0) {
		if (!m.null_sender && (m.from.localpart == NULL || m.from.domain == NULL))
			abort();
		smtp_mail_free(&m);
	} else {
		unsigned code;
		const char *enh, *text;
		if (smtp_reply_split(err, &code, &enh, &text) < 0 || code < 500)
			abort();
		smtp_reply_append(&out, code, enh, text);
	}
	for (int utf8 = 0; utf8 < 2; utf8++) {
		if (smtp_parse_rcpt(s, size, utf8, &r, &err) == 0)
			smtp_rcpt_free(&r);
		else
			smtp_reply_append(&out, 501, "5.5.4", err);
	}
	(void)smtp_parse_bdat(s, size, &n, &last, &err);
	if (smtp_xtext_decode(s, size, &x, &err) == 0)
		free(x);
	if (smtp_utf8_xtext_decode(s, size, true, &x, &err) == 0)
		free(x);
	/* Replies never contain a bare CR or LF. */
	for (size_t i = 0; i < out.len; i++) {
		if (out.data[i] == '\r' && (i + 1 >= out.len || out.data[i + 1] != '\n'))
			abort();
		if (out.data[i] == '\n' && (i == 0 || out.data[i - 1] != '\r'))
			abort();
	}
	mf_buf_free(&out);
	return 0;
}
