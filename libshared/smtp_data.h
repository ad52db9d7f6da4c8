/* smtp_data: the message content of SMTP DATA and BDAT (RFC 5321 4.5.2,
 * RFC 3030), with the end-of-data rules that prevent SMTP smuggling.
 *
 * DATA arrives as lines (net.h mf_conn_read_line, which ends a line at LF
 * and says whether a CR came before it).  The reader removes dot-stuffing
 * and finds the end: a line that is exactly "." and ended with CRLF, where
 * the line before it also ended with CRLF (or there was none).  Nothing
 * else ends a message: <LF>.<LF>, <LF>.<CRLF>, <CR>.<CR>, <CRLF>.<LF> are
 * all content.
 *
 * Policy for bare line ends: a bare LF (LF without CR) or a bare CR (CR not
 * followed by LF) anywhere in the message makes the message unacceptable;
 * the session keeps reading to the real end and then refuses the message
 * with 550 5.6.0 (RFC 5321 2.3.8 says CR and LF only occur together as the
 * line end; mail with other forms is what smuggling attacks use).  The same
 * applies to BDAT content, so the store only ever gets CRLF messages.
 *
 * The reader also counts the size and the header section, and sets flags
 * when a limit is passed; after the first problem it stops producing output
 * but keeps finding the end. */
#ifndef SMTP_DATA_H
#define SMTP_DATA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"

/* Header section (up to the first empty line). */
#define SMTP_DATA_HEADER_MAX (512 * 1024)

#define SMTP_DATA_BARE_LF     0x01u
#define SMTP_DATA_BARE_CR     0x02u
#define SMTP_DATA_TOO_BIG     0x04u  /* more than max_size bytes */
#define SMTP_DATA_HEADER_BIG  0x08u  /* header section over header_max */
#define SMTP_DATA_NUL         0x10u  /* NUL byte (never valid in mail text) */

struct smtp_data_reader {
	uint64_t max_size;
	size_t header_max;
	uint64_t size;         /* message bytes seen (after unstuffing) */
	size_t header_size;
	bool in_header;
	bool prev_crlf;        /* DATA: the last line ended with CRLF */
	bool cr_pending;       /* BDAT: the last chunk ended with CR */
	unsigned hdr_match;    /* BDAT: bytes of CRLF CRLF matched (header end) */
	bool binary;           /* BDAT with BODY=BINARYMIME: no line checks */
	unsigned flags;        /* SMTP_DATA_* problems */
};

void smtp_data_init(struct smtp_data_reader *r, uint64_t max_size, size_t header_max);

/* DATA: feeds one line (without its end; crlf says whether it ended with
 * CRLF rather than a bare LF).  Returns 1 when the line is the end of the
 * data (nothing appended), 0 otherwise; message bytes (unstuffed, with the
 * line end as received) are appended to out while flags is 0. */
int smtp_data_line(struct smtp_data_reader *r, const char *line, size_t len, bool crlf,
		   struct mf_buf *out);

/* BDAT: checks one piece of chunk data (the caller stores it as it is,
 * while flags is 0).  Pieces of one message may be cut anywhere. */
void smtp_data_chunk(struct smtp_data_reader *r, const char *data, size_t len);
/* BDAT LAST: checks the end (a CR as the last byte is a bare CR). */
void smtp_data_chunk_end(struct smtp_data_reader *r);

/* The reply for the first problem in flags, e.g. "550 5.6.0 ...", or NULL
 * when flags is 0.  Static strings. */
const char *smtp_data_problem(unsigned flags);

#endif
