/* mime_header: RFC 5322 header fields and the structured values inside them.
 *
 * - iteration over the fields of a header section (folded fields, obsolete
 *   "Name :" spacing, junk lines skipped), bounded by MF_MIME_HEADER_MAX bytes
 *   and MF_MIME_HEADER_FIELDS_MAX fields;
 * - unfolding and RFC 2047 encoded-word decoding to UTF-8 (8-bit text is taken
 *   as UTF-8 when valid, else as ISO-8859-1);
 * - RFC 2045 parameters with RFC 2231 continuations and charsets
 *   (Content-Type, Content-Disposition);
 * - RFC 5322 address lists (mailbox-list, group syntax, comments, obsolete
 *   forms tolerated) as name/route/mailbox/domain tuples for IMAP ENVELOPE.
 *
 * Nothing here fails on malformed input: every function produces a best
 * reading.  Values are raw bytes from the message unless a function says it
 * decodes; all returned memory is owned by the caller or by the structure it
 * was parsed into (freed with the matching _free). */
#ifndef MF_MIME_HEADER_H
#define MF_MIME_HEADER_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"

/* Only the first MF_MIME_HEADER_MAX bytes and MF_MIME_HEADER_FIELDS_MAX fields
 * of a header section are interpreted; the rest is kept in the message but
 * ignored (it still counts towards the header's size and offsets). */
#define MF_MIME_HEADER_MAX (128 * 1024)
#define MF_MIME_HEADER_FIELDS_MAX 1000
#define MF_MIME_PARAMS_MAX 64          /* parameters per field */
#define MF_MIME_PARAM_SECTIONS_MAX 100 /* RFC 2231 continuations per parameter */
#define MF_MIME_ADDRESSES_MAX 1000     /* addresses and group markers per field */
#define MF_MIME_COMMENT_DEPTH_MAX 32   /* nested RFC 5322 comments */
#define MF_MIME_LANGUAGES_MAX 32       /* Content-Language tags */

struct mf_mime_field {
	const char *name;   /* field name, not NUL-terminated */
	size_t name_len;
	const char *value;  /* raw value after ':', folding kept, no final EOL */
	size_t value_len;
	size_t start;       /* offset of the field's first byte */
	size_t end;         /* offset just past its final line end */
};

struct mf_mime_header_iter {
	const char *data;
	size_t pos, end, limit;
	unsigned count;
};

/* Iterates the fields of data[start..end) (a header section without the
 * blank line that ends it). */
void mf_mime_header_iter_init(struct mf_mime_header_iter *it, const char *data,
			      size_t start, size_t end);
/* Returns true with the next field in field_r, false at the end or when a
 * limit is reached.  field_r points into data. */
bool mf_mime_header_next(struct mf_mime_header_iter *it, struct mf_mime_field *field_r);
/* Returns true when the field's name is name (ASCII case-insensitive). */
bool mf_mime_field_is(const struct mf_mime_field *f, const char *name);

/* Returns v[0..len) unfolded (CR and LF removed, RFC 5322 2.2.3) with
 * leading and trailing white space trimmed; caller frees. */
char *mf_mime_header_unfold(const char *v, size_t len);

/* Appends v[0..len) unfolded and decoded to UTF-8 to out: RFC 2047 encoded
 * words (B and Q) are decoded, white space between adjacent encoded words is
 * dropped (RFC 2047 6.2), adjacent words in the same charset are joined
 * before conversion so a character split across words survives, a word in an
 * unknown charset is left as it was.  Returns 0, or -1 when out's cap is
 * reached. */
int mf_mime_header_decode_buf(const char *v, size_t len, struct mf_buf *out);
/* The same, returning a newly allocated string (trimmed); caller frees. */
char *mf_mime_header_decode(const char *v, size_t len);

struct mf_mime_param {
	char *name;     /* lower-case, RFC 2231 "*n" and "*" suffixes removed */
	char *value;    /* unquoted; RFC 2231 values joined, decoded to UTF-8 */
	bool extended;  /* the value came with an RFC 2231 charset ("name*") */
};

struct mf_mime_params {
	struct mf_mime_param *list;
	size_t count;
};

/* Parses "; name=value; ..." from s[0..len) into params_r (RFC 2045 5.1,
 * RFC 2231 3-4).  Free with mf_mime_params_free. */
void mf_mime_params_parse(const char *s, size_t len, struct mf_mime_params *params_r);
/* Returns the value of parameter name (lower-case), or NULL; owned by params. */
const char *mf_mime_params_get(const struct mf_mime_params *params, const char *name);
void mf_mime_params_free(struct mf_mime_params *params);

/* Parses a Content-Type value.  Returns 0 with lower-case type_r and
 * subtype_r (caller frees) and the parameters, or -1 when there is no valid
 * type/subtype (RFC 2045 5.2: the part is then text/plain); params_r is
 * filled in both cases. */
int mf_mime_content_type_parse(const char *v, size_t len, char **type_r,
			       char **subtype_r, struct mf_mime_params *params_r);
/* Parses a Content-Disposition value: lower-case type (NULL when absent;
 * caller frees) and parameters. */
void mf_mime_disposition_parse(const char *v, size_t len, char **type_r,
			       struct mf_mime_params *params_r);
/* Parses a Content-Language value (RFC 3282) into a list of tags; caller
 * frees each and the array.  *count_r may be 0 (list NULL). */
void mf_mime_language_parse(const char *v, size_t len, char ***list_r, size_t *count_r);

enum mf_mime_address_kind {
	MF_MIME_ADDRESS_MAILBOX,
	MF_MIME_ADDRESS_GROUP_START, /* mailbox holds the group name */
	MF_MIME_ADDRESS_GROUP_END,
};

struct mf_mime_address {
	enum mf_mime_address_kind kind;
	char *name;     /* display name, unquoted, encoded words kept; or NULL */
	char *route;    /* obsolete source route "@a,@b"; or NULL */
	char *mailbox;  /* local-part unquoted (group name for GROUP_START); or NULL */
	char *domain;   /* domain; NULL when the address had none */
};

struct mf_mime_address_list {
	struct mf_mime_address *list;
	size_t count;
};

/* Parses an address list (From, To, Cc, ...) from v[0..len).  Never fails:
 * an empty or unparseable value gives an empty list.  Free with
 * mf_mime_address_list_free. */
void mf_mime_address_list_parse(const char *v, size_t len, struct mf_mime_address_list *list_r);
void mf_mime_address_list_free(struct mf_mime_address_list *list);

#endif
