/* mime: RFC 5322 / MIME (RFC 2045, 2046, 6532) message structure.
 *
 * mf_mime_parse reads a whole message from one contiguous buffer and builds a
 * tree of parts holding byte offsets into that buffer; nothing of the message
 * is copied.  A message stored as a per-recipient header prefix plus a blob is
 * parsed from one buffer: mf_mime_map_open places the prefix and an mmap of
 * the blob file next to each other in memory (no copy of the blob), so that
 * offsets count from the first byte of the prefix.
 *
 * Parsing never fails: malformed input always gives a tree (a part whose
 * structure cannot be used is read as text/plain), bounded by the named
 * limits below, in time linear in size times nesting depth.
 *
 * Offsets of a part (all within [0, len] of the message):
 *   header_start <= header_end <= body_start <= body_end
 * header_end is where the blank line ending the header begins (or body_start
 * when there is none); [header_start, body_start) is the header with its blank
 * line, as IMAP BODY[HEADER] and BODY[n.MIME] return it.  In a multipart body
 * the line end before a boundary line belongs to the boundary (RFC 2046
 * 5.1.1), so it is not part of the preceding part.  Bare LF line ends are
 * accepted everywhere; sizes count the stored bytes. */
#ifndef MF_MIME_H
#define MF_MIME_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"
#include "mime_header.h"

#define MF_MIME_DEPTH_MAX 32      /* nesting of multiparts and messages */
#define MF_MIME_PARTS_MAX 2000    /* parts in one message */
#define MF_MIME_BOUNDARY_MAX 200  /* RFC 2046 says 70; some senders exceed it */
/* MF_MIME_HEADER_MAX and MF_MIME_HEADER_FIELDS_MAX: see mime_header.h */

enum mf_mime_cte {
	MF_MIME_CTE_7BIT,
	MF_MIME_CTE_8BIT,
	MF_MIME_CTE_BINARY,
	MF_MIME_CTE_BASE64,
	MF_MIME_CTE_QP,
	MF_MIME_CTE_UNKNOWN,
};

struct mf_mime_part {
	struct mf_mime_part *parent;
	/* multipart: its parts; message/rfc822 and message/global: exactly
	 * one child, the encapsulated message */
	struct mf_mime_part *children;
	struct mf_mime_part *next;
	size_t child_count;
	unsigned depth;            /* 0 for the message itself */

	size_t header_start, header_end, body_start, body_end;
	size_t body_lines;         /* LFs in the body (IMAP "size in text lines") */

	char *type, *subtype;      /* lower-case; "text"/"plain" by default */
	struct mf_mime_params params;
	bool content_type_valid;   /* a usable Content-Type field was present */
	char *encoding;            /* Content-Transfer-Encoding as written (trimmed), or NULL */
	enum mf_mime_cte cte;
	char *id, *description, *md5, *location;  /* unfolded, trimmed; or NULL */
	char *disposition;         /* lower-case disposition type, or NULL */
	struct mf_mime_params disposition_params;
	char **languages;
	size_t language_count;

	bool multipart;            /* has children as a multipart */
	bool message;              /* message/rfc822 or message/global with a child */
	bool malformed;            /* read as text/plain: structure unusable or a limit hit */
};

struct mf_mime_message {
	const char *data;          /* the caller's buffer; not owned */
	size_t len;
	struct mf_mime_part *root;
	size_t part_count;
	bool limit_reached;        /* some structure was not parsed because of a limit */
};

/* Parses data[0..len) (which must stay valid while msg_r is used).  Never
 * fails.  Free with mf_mime_message_free. */
void mf_mime_parse(const char *data, size_t len, struct mf_mime_message *msg_r);
void mf_mime_message_free(struct mf_mime_message *msg);

/* Returns the first field called name in the part's header, unfolded and
 * trimmed (raw bytes, encoded words kept), or NULL when absent; caller frees. */
char *mf_mime_part_header(const struct mf_mime_message *msg, const struct mf_mime_part *part,
			  const char *name);

/* Returns the part's file name as UTF-8 (Content-Disposition filename, else
 * Content-Type name; RFC 2231 values as decoded, RFC 2047 words inside
 * quotes, a common non-standard form, decoded too), or NULL; caller frees. */
char *mf_mime_part_filename(const struct mf_mime_part *part);

/* Content-Transfer-Encoding name (case-insensitive; NULL means 7bit). */
enum mf_mime_cte mf_mime_cte_parse(const char *name);

/* Appends in[0..len) decoded from cte to out.  Base64 skips characters
 * outside its alphabet; quoted-printable keeps malformed escapes as they are
 * and drops trailing white space before line ends (RFC 2045 6.7).  7bit,
 * 8bit and binary are copied.  Returns 0, or -1 with error_r for
 * MF_MIME_CTE_UNKNOWN or when out's cap is reached. */
int mf_mime_decode(enum mf_mime_cte cte, const char *in, size_t len, struct mf_buf *out,
		   const char **error_r);

/* Appends the body of part as UTF-8 text to out (for search, previews,
 * webmail): the transfer encoding is removed, then the text is converted
 * from the charset parameter (none: US-ASCII; an unknown one: UTF-8 when
 * valid, else ISO-8859-1).  Returns 0, or -1 with error_r for an unknown
 * transfer encoding or when out's cap is reached. */
int mf_mime_part_text(const struct mf_mime_message *msg, const struct mf_mime_part *part,
		      struct mf_buf *out, const char **error_r);

/* A message in memory made of a header prefix and a blob file. */
struct mf_mime_map {
	const char *data;          /* prefix followed by the file's bytes */
	size_t len;
	void *base;                /* the whole mapping, for munmap */
	size_t base_len;
};

/* Maps prefix[0..prefix_len) (may be 0) followed by the contents of fd (read
 * only, not modified afterwards) as one read-only buffer.  Returns 0, or -1
 * with error_r.  Close with mf_mime_map_close; fd may be closed at once. */
int mf_mime_map_open(const char *prefix, size_t prefix_len, int fd, struct mf_mime_map *map_r,
		     const char **error_r);
void mf_mime_map_close(struct mf_mime_map *map);

#endif
