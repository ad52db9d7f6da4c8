/* dkim_private: helpers shared by the dkim and dmarc files of dnsauth. */
#ifndef DKIM_PRIVATE_H
#define DKIM_PRIVATE_H

#include <stdbool.h>
#include <stddef.h>

/* One tag of a tag-list (RFC 6376 3.2); pointers into the parsed text,
 * the value without surrounding whitespace. */
struct dkim_tag {
	const char *name;
	size_t name_len;
	const char *value;
	size_t value_len;
	size_t value_start, value_end;  /* offsets of the value in the text */
};

/* Parses a tag-list into tags (room for DKIM_TAGS_MAX).  Duplicate tags
 * are an error (RFC 6376 3.2).  Returns 0, or -1 with error_r. */
int dkim_taglist_parse(const char *s, size_t len, struct dkim_tag *tags, size_t *count_r,
		       const char **error_r);
const struct dkim_tag *dkim_tag_find(const struct dkim_tag *tags, size_t count, const char *name);
/* Whether sub equals domain or is a subdomain of it (lower-case). */
bool dkim_domain_within(const char *sub, const char *domain);

/* A message split into header fields and body.  With bare-LF input, data
 * is a CRLF copy (owned); otherwise it points at the caller's bytes. */
struct dkim_field {
	const char *start;   /* the field's first byte (its name) */
	size_t len;          /* through the CRLF that ends it */
	size_t name_len;     /* the name, without trailing whitespace */
	const char *value;   /* after the colon */
	size_t value_len;    /* up to (not including) the final CRLF */
};

struct dkim_message {
	const char *data;
	size_t len;
	char *owned;
	struct dkim_field *fields;
	size_t count;
	const char *body;
	size_t body_len;
};

/* Splits msg.  Returns 0, or -1 with error_r (too many header fields). */
int dkim_message_parse(const char *msg, size_t len, struct dkim_message *m_r,
		       const char **error_r);
void dkim_message_clear(struct dkim_message *m);
bool dkim_field_is(const struct dkim_field *f, const char *name);

#endif
