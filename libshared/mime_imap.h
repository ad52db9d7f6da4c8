/* mime_imap: IMAP representations of a parsed message (mime.h) per RFC 9051
 * (IMAP4rev2) and RFC 3501 (IMAP4rev1) where they differ:
 *
 * - strings: quoted when possible, else a literal {n} (8-bit text in quoted
 *   strings only with MF_IMAP_UTF8: IMAP4rev2 or UTF8=ACCEPT, RFC 6855);
 * - ENVELOPE, BODY and BODYSTRUCTURE (with extension data);
 * - section specifiers ("1.2.HEADER.FIELDS (From To)") parsed and resolved to
 *   the bytes they name, and BINARY[] sections (RFC 3516) decoded.
 *
 * Header values in ENVELOPE and BODYSTRUCTURE are sent as in the message
 * (unfolded; RFC 2047 encoded words are left for the client to decode, as
 * RFC 9051 expects).  Everything appends to a caller's mf_buf and returns 0,
 * or -1 when the buffer's cap is reached. */
#ifndef MF_MIME_IMAP_H
#define MF_MIME_IMAP_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"
#include "mime.h"

/* Strings longer than this are sent as literals rather than quoted. */
#define MF_IMAP_QUOTED_MAX 1024
/* Part numbers in one section specifier ("1.2.3" has 3). */
#define MF_IMAP_SECTION_PARTS_MAX (2 * MF_MIME_DEPTH_MAX + 2)
/* Header field names in HEADER.FIELDS (...) and the length of each. */
#define MF_IMAP_SECTION_FIELDS_MAX 128
#define MF_IMAP_SECTION_FIELD_NAME_MAX 256
/* Part numbers are at most this (more than MF_MIME_PARTS_MAX anyway). */
#define MF_IMAP_SECTION_NUMBER_MAX 1000000

/* flags */
#define MF_IMAP_UTF8 0x1  /* UTF-8 allowed in quoted strings (IMAP4rev2, UTF8=ACCEPT) */
#define MF_IMAP_REV2 0x2  /* IMAP4rev2 session: message/global is shown as an
			   * encapsulated message (RFC 9051 body-type-msg);
			   * IMAP4rev1 grammar only knows message/rfc822 */

/* Appends s[0..len) as an IMAP string: quoted when it is short, has no CR
 * or LF, and is ASCII (or valid UTF-8 with MF_IMAP_UTF8); else as a literal.
 * NUL bytes, which IMAP strings cannot carry, are dropped. */
int mf_imap_append_string(struct mf_buf *out, const char *s, size_t len, unsigned flags);
/* The same for a C string, with NULL appended as NIL. */
int mf_imap_append_nstring(struct mf_buf *out, const char *s, unsigned flags);

/* Appends the ENVELOPE of part, which is the message root or the child of a
 * message/rfc822 part (the encapsulated message). */
int mf_imap_envelope(const struct mf_mime_message *msg, const struct mf_mime_part *part,
		     unsigned flags, struct mf_buf *out);

/* Appends BODY (extensions false) or BODYSTRUCTURE (true) of part (usually
 * msg->root). */
int mf_imap_bodystructure(const struct mf_mime_message *msg, const struct mf_mime_part *part,
			  bool extensions, unsigned flags, struct mf_buf *out);

enum mf_imap_section_text {
	MF_IMAP_SECTION_NONE,              /* [] or [1.2]: the message or part body */
	MF_IMAP_SECTION_HEADER,
	MF_IMAP_SECTION_HEADER_FIELDS,
	MF_IMAP_SECTION_HEADER_FIELDS_NOT,
	MF_IMAP_SECTION_TEXT,
	MF_IMAP_SECTION_MIME,
};

struct mf_imap_section {
	unsigned parts[MF_IMAP_SECTION_PARTS_MAX];
	size_t part_count;
	enum mf_imap_section_text text;
	char **fields;             /* HEADER.FIELDS names as given; owned */
	size_t field_count;
};

/* Parses the text between "[" and "]" of BODY[...] (binary false) or
 * BINARY[...] / BINARY.SIZE[...] (binary true: part numbers only).  Field
 * names are atoms or quoted strings (not literals).  Returns 0 (free with
 * mf_imap_section_free), or -1 with error_r. */
int mf_imap_section_parse(const char *s, size_t len, bool binary, struct mf_imap_section *sec_r,
			  const char **error_r);
void mf_imap_section_free(struct mf_imap_section *sec);
/* Appends the section in canonical form (upper-case keywords), as the
 * FETCH response names it. */
int mf_imap_section_format(const struct mf_imap_section *sec, struct mf_buf *out);

/* The bytes of a section: either a range of the message (owned NULL,
 * data == msg->data + offset) or a buffer built for it (owned). */
struct mf_imap_section_data {
	const char *data;
	size_t len;
	size_t offset;             /* valid when owned is NULL */
	char *owned;
};

/* Returns in data_r the bytes BODY[section] names (RFC 9051 6.4.5); the
 * caller applies <origin.count>.  Returns -1 with error_r when the section
 * names no part of this message (or HEADER/TEXT of a part that is not
 * message/rfc822). */
int mf_imap_section_fetch(const struct mf_mime_message *msg, const struct mf_imap_section *sec,
			  struct mf_imap_section_data *data_r, const char **error_r);
/* Returns in data_r the decoded bytes BINARY[section] names (RFC 3516).
 * Returns -1 with error_r when there is no such part, and with
 * *unknown_cte_r set when its transfer encoding is unknown (the server then
 * answers NO [UNKNOWN-CTE]). */
int mf_imap_section_binary(const struct mf_mime_message *msg, const struct mf_imap_section *sec,
			   struct mf_imap_section_data *data_r, bool *unknown_cte_r,
			   const char **error_r);
void mf_imap_section_data_free(struct mf_imap_section_data *data);

/* Resolves part numbers as IMAP does (RFC 9051 6.4.5): a non-multipart
 * message has one part, numbered 1; the parts of a message/rfc822 part are
 * those of the message inside it.  Returns the part, or NULL. */
const struct mf_mime_part *mf_imap_part_find(const struct mf_mime_message *msg,
					     const unsigned *parts, size_t count);

#endif
