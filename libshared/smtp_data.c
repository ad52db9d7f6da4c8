/* smtp_data: dot-unstuffing, end detection and content checks. */
#include "smtp_data.h"

#include <string.h>

void smtp_data_init(struct smtp_data_reader *r, uint64_t max_size, size_t header_max)
{
	memset(r, 0, sizeof(*r));
	r->max_size = max_size;
	r->header_max = header_max;
	r->in_header = true;
	r->prev_crlf = true;   /* the DATA command line ended with CRLF */
}

static void count(struct smtp_data_reader *r, size_t n, bool header_end)
{
	r->size += n;
	if (r->max_size != 0 && r->size > r->max_size)
		r->flags |= SMTP_DATA_TOO_BIG;
	if (r->in_header) {
		r->header_size += n;
		if (r->header_size > r->header_max)
			r->flags |= SMTP_DATA_HEADER_BIG;
		if (header_end)
			r->in_header = false;
	}
}

int smtp_data_line(struct smtp_data_reader *r, const char *line, size_t len, bool crlf,
		   struct mf_buf *out)
{
	bool at_start = r->prev_crlf;

	r->prev_crlf = crlf;
	if (at_start && crlf && len == 1 && line[0] == '.')
		return 1;
	if (!crlf)
		r->flags |= SMTP_DATA_BARE_LF;
	if (memchr(line, '\r', len) != NULL)
		r->flags |= SMTP_DATA_BARE_CR;
	if (memchr(line, '\0', len) != NULL)
		r->flags |= SMTP_DATA_NUL;
	/* RFC 5321 4.5.2: a leading period of a line is removed.  Only at the
	 * start of a real line; after a bare LF the message is refused anyway. */
	if (at_start && len > 0 && line[0] == '.') {
		line++;
		len--;
	}
	count(r, len + (crlf ? 2 : 1), len == 0);
	if (r->flags == 0) {
		if (mf_buf_append(out, line, len) < 0 ||
		    mf_buf_append(out, crlf ? "\r\n" : "\n", crlf ? 2 : 1) < 0)
			r->flags |= SMTP_DATA_TOO_BIG;
	}
	return 0;
}

void smtp_data_chunk(struct smtp_data_reader *r, const char *data, size_t len)
{
	static const char hdr_end[] = "\r\n\r\n";
	size_t header_part = 0;

	if (len == 0)
		return;
	if (!r->binary) {
		for (size_t i = 0; i < len; i++) {
			char c = data[i];
			if (r->cr_pending && c != '\n')
				r->flags |= SMTP_DATA_BARE_CR;
			if (c == '\n' && !r->cr_pending)
				r->flags |= SMTP_DATA_BARE_LF;
			if (c == '\0')
				r->flags |= SMTP_DATA_NUL;
			r->cr_pending = c == '\r';
		}
	}
	if (r->in_header) {
		/* The header section ends at the first CRLF CRLF, or at once
		 * when the message starts with CRLF (no header fields). */
		if (r->size == 0)
			r->hdr_match = 2;
		for (size_t i = 0; i < len && r->in_header; i++) {
			header_part++;
			if (data[i] == hdr_end[r->hdr_match]) {
				if (++r->hdr_match == 4)
					r->in_header = false;
			} else {
				r->hdr_match = data[i] == '\r' ? 1 : 0;
			}
		}
		r->header_size += header_part;
		if (r->header_size > r->header_max)
			r->flags |= SMTP_DATA_HEADER_BIG;
	}
	r->size += len;
	if (r->max_size != 0 && r->size > r->max_size)
		r->flags |= SMTP_DATA_TOO_BIG;
}

void smtp_data_chunk_end(struct smtp_data_reader *r)
{
	if (r->cr_pending && !r->binary)
		r->flags |= SMTP_DATA_BARE_CR;
	r->cr_pending = false;
}

const char *smtp_data_problem(unsigned flags)
{
	if ((flags & SMTP_DATA_TOO_BIG) != 0)
		return "552 5.3.4 message too big";
	if ((flags & SMTP_DATA_HEADER_BIG) != 0)
		return "552 5.3.4 message header section too big";
	if ((flags & SMTP_DATA_BARE_LF) != 0)
		return "550 5.6.0 bare LF in message (line ends must be CRLF, RFC 5321 2.3.8)";
	if ((flags & SMTP_DATA_BARE_CR) != 0)
		return "550 5.6.0 bare CR in message (line ends must be CRLF, RFC 5321 2.3.8)";
	if ((flags & SMTP_DATA_NUL) != 0)
		return "550 5.6.0 NUL byte in message";
	return NULL;
}
