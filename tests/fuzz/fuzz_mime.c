/* fuzz_mime: the MIME parser and its IMAP representations on arbitrary
 * bytes.  Besides "no crash, no leak, no hang" it checks that every part's
 * offsets are ordered and inside the message, that every section of every
 * part resolves to bytes inside the message, and exercises the header
 * decoders on the input.  The first line of the input is also tried as a
 * section specifier against the rest. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mime_imap.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_range(const struct mf_mime_message *m, const struct mf_imap_section_data *d)
{
	if (d->owned != NULL)
		return;
	if (d->offset > m->len || d->len > m->len - d->offset || d->data != m->data + d->offset)
		abort();
}

static void try_section(const struct mf_mime_message *m, const char *spec, size_t len, bool binary)
{
	struct mf_imap_section sec;
	struct mf_imap_section_data d;
	const char *error;
	bool unknown;
	struct mf_buf b;

	if (mf_imap_section_parse(spec, len, binary, &sec, &error) < 0)
		return;
	mf_buf_init(&b, 0);
	if (mf_imap_section_format(&sec, &b) < 0)
		abort();
	mf_buf_free(&b);
	if (binary) {
		if (mf_imap_section_binary(m, &sec, &d, &unknown, &error) == 0) {
			check_range(m, &d);
			mf_imap_section_data_free(&d);
		}
	} else if (mf_imap_section_fetch(m, &sec, &d, &error) == 0) {
		check_range(m, &d);
		mf_imap_section_data_free(&d);
	}
	mf_imap_section_free(&sec);
}

/* Visits every part with its IMAP part number path. */
static void walk(const struct mf_mime_message *m, const struct mf_mime_part *p, char *path,
		 size_t plen, unsigned depth)
{
	static const char *const texts[] = { "", ".MIME", ".HEADER", ".TEXT",
					     ".HEADER.FIELDS (From Subject)",
					     ".HEADER.FIELDS.NOT (Content-Type)" };
	char spec[512];

	if (p->header_start > p->header_end || p->header_end > p->body_start ||
	    p->body_start > p->body_end || p->body_end > m->len || depth > MF_MIME_DEPTH_MAX + 1)
		abort();
	if (p->children == NULL) {
		struct mf_buf t;
		const char *error;
		mf_buf_init(&t, 1 << 20);
		(void)mf_mime_part_text(m, p, &t, &error);
		mf_buf_free(&t);
		free(mf_mime_part_filename(p));
	}
	if (plen > 0) {
		for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
			int n = snprintf(spec, sizeof(spec), "%.*s%s", (int)plen, path, texts[i]);
			if (n > 0 && (size_t)n < sizeof(spec))
				try_section(m, spec, (size_t)n, false);
		}
		try_section(m, path, plen, true);
	}
	const struct mf_mime_part *list = p->multipart ? p->children : NULL;
	if (p->message && p->children != NULL) {
		/* the parts of a message/rfc822 part are those of its message */
		struct mf_buf b;
		mf_buf_init(&b, 0);
		if (mf_imap_envelope(m, p->children, 0, &b) < 0)
			abort();
		mf_buf_free(&b);
		list = p->children->multipart ? p->children->children : NULL;
		if (list == NULL)
			walk(m, p->children, path, plen, depth + 1);
	}
	unsigned n = 1;
	for (const struct mf_mime_part *c = list; c != NULL && plen + 12 < 400; c = c->next, n++) {
		int w = snprintf(path + plen, 400 - plen, "%s%u", plen ? "." : "", n);
		if (w > 0)
			walk(m, c, path, plen + (size_t)w, depth + 1);
		path[plen] = '\0';
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *s = (const char *)data;
	struct mf_mime_message m;
	struct mf_buf b;
	char path[400] = "";

	mf_mime_parse(s, size, &m);
	mf_buf_init(&b, 0);
	if (mf_imap_envelope(&m, m.root, 0, &b) < 0 ||
	    mf_imap_envelope(&m, m.root, MF_IMAP_UTF8, &b) < 0 ||
	    mf_imap_bodystructure(&m, m.root, true, 0, &b) < 0 ||
	    mf_imap_bodystructure(&m, m.root, false, MF_IMAP_UTF8 | MF_IMAP_REV2, &b) < 0)
		abort();
	mf_buf_free(&b);
	if (m.part_count > MF_MIME_PARTS_MAX)
		abort();
	walk(&m, m.root, path, 0, 0);
	if (!m.root->multipart)
		try_section(&m, "1", 1, false);
	try_section(&m, "", 0, false);
	try_section(&m, "HEADER", 6, false);
	try_section(&m, "TEXT", 4, false);

	const char *nl = memchr(s, '\n', size < 256 ? size : 256);
	if (nl != NULL) {
		try_section(&m, s, (size_t)(nl - s), false);
		try_section(&m, s, (size_t)(nl - s), true);
	}
	mf_mime_message_free(&m);

	/* header value decoders on (a bounded prefix of) the raw input */
	size_t hlen = size < 8192 ? size : 8192;
	char *v = mf_mime_header_decode(s, hlen);
	free(v);
	struct mf_mime_address_list l;
	mf_mime_address_list_parse(s, hlen, &l);
	for (size_t i = 0; i < l.count; i++)
		if (l.list[i].kind == MF_MIME_ADDRESS_GROUP_END &&
		    (l.list[i].mailbox != NULL || l.list[i].domain != NULL))
			abort();
	if (l.count > MF_MIME_ADDRESSES_MAX)
		abort();
	mf_mime_address_list_free(&l);
	char *type, *subtype;
	struct mf_mime_params params;
	if (mf_mime_content_type_parse(s, hlen, &type, &subtype, &params) == 0) {
		free(type);
		free(subtype);
	}
	if (params.count > MF_MIME_PARAMS_MAX)
		abort();
	mf_mime_params_free(&params);
	return 0;
}
