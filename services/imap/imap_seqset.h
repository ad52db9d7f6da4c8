/* imap_seqset: sequence sets (RFC 9051 9 "sequence-set"): "1,3:5,7:*".
 * The same syntax addresses sequence numbers and UIDs; "*" is the largest
 * number in use, given when the set is evaluated.  "$" (SEARCHRES,
 * RFC 5182) is recognised by the caller before parsing. */
#ifndef IMAP_SEQSET_H
#define IMAP_SEQSET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "imap_pool.h"

/* Ranges in one set. */
#define IMAP_SEQSET_RANGES_MAX 10000

/* IMAP_SEQ_STAR stands for "*". */
#define IMAP_SEQ_STAR UINT32_MAX

struct imap_seq_range {
	uint32_t lo, hi;   /* as written; lo may be > hi ("5:1"), either may be STAR */
};

struct imap_seqset {
	struct imap_seq_range *ranges;
	size_t count;
};

/* Parses s; returns 0 with set_r (ranges from pool) or -1 with error_r
 * (zero, overflow, empty element, too many ranges). */
int imap_seqset_parse(struct imap_pool *pool, const char *s, struct imap_seqset *set_r,
		      const char **error_r);
/* True when n is in the set, with "*" meaning max.  For an empty mailbox
 * (max 0) "*" matches nothing. */
bool imap_seqset_contains(const struct imap_seqset *set, uint32_t n, uint32_t max);
/* Formats sorted numbers as a compact set ("1:3,7") into pool; "" for
 * none.  nums must be sorted ascending. */
char *imap_seqset_format(struct imap_pool *pool, const uint32_t *nums, size_t count);

/* Formats numbers in their given order (COPYUID pairs must stay aligned
 * with each other, RFC 4315 3), joining ascending runs ("4:6,2"). */
char *imap_seqset_format_pairs(struct imap_pool *pool, const uint32_t *nums, size_t count);

#endif
