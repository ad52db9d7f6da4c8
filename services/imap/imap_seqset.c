/* imap_seqset: sequence-set parsing, matching and formatting. */
#include <string.h>

#include "buf.h"
#include "imap_seqset.h"

static int parse_num(const char **p, uint32_t *n_r, const char **error_r)
{
	uint64_t n = 0;
	const char *s = *p;

	if (*s == '*') {
		*n_r = IMAP_SEQ_STAR;
		*p = s + 1;
		return 0;
	}
	if (*s < '1' || *s > '9') {
		*error_r = *s == '0' ? "invalid sequence set: zero" : "invalid sequence set";
		return -1;
	}
	while (*s >= '0' && *s <= '9') {
		n = n * 10 + (uint64_t)(*s - '0');
		if (n >= IMAP_SEQ_STAR) {
			*error_r = "invalid sequence set: number too large";
			return -1;
		}
		s++;
	}
	*n_r = (uint32_t)n;
	*p = s;
	return 0;
}

int imap_seqset_parse(struct imap_pool *pool, const char *s, struct imap_seqset *set_r,
		      const char **error_r)
{
	size_t count = 1;
	const char *p;

	for (p = s; *p != '\0'; p++)
		if (*p == ',')
			count++;
	if (count > IMAP_SEQSET_RANGES_MAX) {
		*error_r = "invalid sequence set: too many ranges";
		return -1;
	}
	set_r->ranges = imap_pool_alloc(pool, count * sizeof(*set_r->ranges));
	set_r->count = 0;
	p = s;
	for (;;) {
		struct imap_seq_range *r = &set_r->ranges[set_r->count];
		if (parse_num(&p, &r->lo, error_r) < 0)
			return -1;
		r->hi = r->lo;
		if (*p == ':') {
			p++;
			if (parse_num(&p, &r->hi, error_r) < 0)
				return -1;
		}
		set_r->count++;
		if (*p == '\0')
			break;
		if (*p != ',') {
			*error_r = "invalid sequence set";
			return -1;
		}
		p++;
	}
	return 0;
}

bool imap_seqset_contains(const struct imap_seqset *set, uint32_t n, uint32_t max)
{
	for (size_t i = 0; i < set->count; i++) {
		uint32_t lo = set->ranges[i].lo, hi = set->ranges[i].hi, t;

		if (lo == IMAP_SEQ_STAR)
			lo = max;
		if (hi == IMAP_SEQ_STAR)
			hi = max;
		if (lo > hi) {
			t = lo;
			lo = hi;
			hi = t;
		}
		if (lo == 0 && hi == 0)
			continue;  /* "*" in an empty mailbox */
		if (n >= lo && n <= hi)
			return true;
	}
	return false;
}

char *imap_seqset_format_pairs(struct imap_pool *pool, const uint32_t *nums, size_t count)
{
	return imap_seqset_format(pool, nums, count);
}

char *imap_seqset_format(struct imap_pool *pool, const uint32_t *nums, size_t count)
{
	struct mf_buf b;
	char *out;
	size_t i = 0;

	mf_buf_init(&b, 0);
	while (i < count) {
		size_t j = i;
		while (j + 1 < count && nums[j + 1] == nums[j] + 1)
			j++;
		if (b.len > 0)
			mf_buf_append(&b, ",", 1);
		if (j == i)
			mf_buf_appendf(&b, "%u", nums[i]);
		else
			mf_buf_appendf(&b, "%u:%u", nums[i], nums[j]);
		i = j + 1;
	}
	out = imap_pool_strndup(pool, b.data != NULL ? b.data : "", b.len);
	mf_buf_free(&b);
	return out;
}
