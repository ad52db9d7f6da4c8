/* fuzz_smtp_data: the DATA reader on arbitrary bytes, split into lines as
 * net.c does.  Checks the smuggling invariant: the reader ends the message
 * exactly at the first <CRLF>.<CRLF> (or a leading .<CRLF>), never at any
 * other sequence; an accepted message has only CRLF line ends; and the BDAT
 * checker agrees with a direct scan for bare CR/LF. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smtp_data.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The first offset after "\r\n.\r\n" (or ".\r\n" at the start), or -1. */
static long real_end(const char *s, size_t len)
{
	if (len >= 3 && memcmp(s, ".\r\n", 3) == 0)
		return 3;
	for (size_t i = 0; i + 5 <= len; i++) {
		if (memcmp(s + i, "\r\n.\r\n", 5) == 0)
			return (long)(i + 5);
	}
	return -1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *s = (const char *)data;
	struct smtp_data_reader r;
	struct mf_buf out;
	size_t pos = 0;
	long end = -1, want = real_end(s, size);
	bool bare = false;

	mf_buf_init(&out, 0);
	smtp_data_init(&r, 0, SMTP_DATA_HEADER_MAX);
	while (pos < size) {
		const char *lf = memchr(s + pos, '\n', size - pos);
		size_t n;
		bool crlf;
		if (lf == NULL)
			break;
		n = (size_t)(lf - (s + pos));
		crlf = n > 0 && s[pos + n - 1] == '\r';
		if (smtp_data_line(&r, s + pos, crlf ? n - 1 : n, crlf, &out) == 1) {
			end = (long)(pos + n + 1);
			break;
		}
		pos += n + 1;
	}
	if (end != want)
		abort();
	if (r.flags == 0) {
		for (size_t i = 0; i < out.len; i++) {
			if ((out.data[i] == '\r') != (i + 1 < out.len && out.data[i + 1] == '\n' &&
						     out.data[i] == '\r'))
				abort();
			if (out.data[i] == '\n' && (i == 0 || out.data[i - 1] != '\r'))
				abort();
		}
	}
	mf_buf_free(&out);

	/* BDAT: the same bytes as one message, in two chunks. */
	smtp_data_init(&r, 0, SMTP_DATA_HEADER_MAX);
	smtp_data_chunk(&r, s, size / 2);
	smtp_data_chunk(&r, s + size / 2, size - size / 2);
	smtp_data_chunk_end(&r);
	for (size_t i = 0; i < size; i++) {
		if ((s[i] == '\r' && (i + 1 >= size || s[i + 1] != '\n')) ||
		    (s[i] == '\n' && (i == 0 || s[i - 1] != '\r')))
			bare = true;
	}
	if (bare != ((r.flags & (SMTP_DATA_BARE_CR | SMTP_DATA_BARE_LF)) != 0))
		abort();
	return 0;
}
