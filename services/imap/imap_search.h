/* imap_search: SEARCH programs (RFC 9051 6.4.4): parsing the search keys
 * into a tree and matching a message against it.  The command itself
 * (CHARSET, RETURN options, ESEARCH/SEARCH responses, SEARCHRES) is in
 * imap_cmd_search.c. */
#ifndef IMAP_SEARCH_H
#define IMAP_SEARCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "imap_parser.h"
#include "imap_pool.h"
#include "imap_seqset.h"
#include "mime.h"

/* Nesting of NOT/OR/lists in a program. */
#define IMAP_SEARCH_DEPTH_MAX 32
/* Keys in one program. */
#define IMAP_SEARCH_KEYS_MAX 1000
/* Decoded text searched per message (BODY/TEXT). */
#define IMAP_SEARCH_TEXT_MAX (16 * 1024 * 1024)

enum imap_search_op {
	IMAP_SK_ALL, IMAP_SK_AND, IMAP_SK_OR, IMAP_SK_NOT,
	IMAP_SK_FLAG, IMAP_SK_UNFLAG,          /* flag bit set / not set */
	IMAP_SK_KEYWORD, IMAP_SK_UNKEYWORD,
	IMAP_SK_SEQ, IMAP_SK_UID, IMAP_SK_SAVED,
	IMAP_SK_LARGER, IMAP_SK_SMALLER,
	IMAP_SK_BEFORE, IMAP_SK_ON, IMAP_SK_SINCE,               /* internal date */
	IMAP_SK_SENTBEFORE, IMAP_SK_SENTON, IMAP_SK_SENTSINCE,   /* Date: header */
	IMAP_SK_HEADER, IMAP_SK_BODY, IMAP_SK_TEXT,
	IMAP_SK_NONE,                          /* RECENT (rev1): nothing is recent */
};

struct imap_search_key {
	enum imap_search_op op;
	struct imap_search_key *keys;  /* AND: count keys; OR: 2; NOT: 1 */
	size_t count;
	uint32_t flag;
	const char *field;             /* HEADER field name */
	const char *str;               /* text to find; keyword */
	uint64_t number;               /* LARGER/SMALLER */
	int64_t date;                  /* unix seconds of the day's midnight UTC */
	struct imap_seqset set;
};

struct imap_search_program {
	struct imap_search_key root;   /* an AND of the top-level keys */
	bool need_meta;                /* size or internal date */
	bool need_content;             /* headers or text */
	/* SUBJECT / HEADER Subject only: the store's copy of the Subject
	 * header (struct imap_search_msg.subject) is enough. */
	bool need_subject;
};

/* Parses keys args[0..count) (after CHARSET/RETURN were taken off).
 * Returns 0 with prog_r (from pool), or -1 with error_r (BAD text). */
int imap_search_parse(struct imap_pool *pool, const struct imap_arg *args, size_t count,
		      struct imap_search_program *prog_r, const char **error_r);

/* What matching needs to know of one message. */
struct imap_search_msg {
	uint32_t seq, uid;
	uint32_t max_seq, max_uid;   /* for "*" */
	uint32_t flags;
	const char *keywords;        /* space-separated or NULL */
	uint64_t size;               /* when need_meta */
	int64_t internal_date;       /* unix ms, when need_meta */
	const uint32_t *saved;       /* SEARCHRES UIDs ascending; NULL: none */
	size_t saved_count;
	/* The parsed message when need_content; NULL when it cannot be read
	 * (content keys then do not match). */
	const struct mf_mime_message *mime;
	/* Without mime: the raw Subject header value (NULL when none), used
	 * when subject_known. */
	const char *subject;
	bool subject_known;
};

bool imap_search_match(const struct imap_search_program *prog, const struct imap_search_msg *m);

/* Case-insensitive substring search (Unicode case folding when both are
 * valid UTF-8, ASCII otherwise). */
bool imap_search_contains(const char *hay, size_t hay_len, const char *needle, size_t needle_len);

#endif
