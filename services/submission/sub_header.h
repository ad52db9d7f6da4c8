/* sub_header: what submission does to a message's header section before it
 * is signed and queued:
 *   - the From header must hold exactly one address (RFC 5322 3.6.2 with
 *     no Sender) that belongs to the authenticated account, or to an alias
 *     with allow-msg-from of which the account is a member (sub_from_allowed);
 *   - "X-Mailfleet-Extra-<key>: value" fields are removed and returned as
 *     extra data for the queue and webhooks;
 *   - Message-ID and Date are added when missing (RFC 5322 3.6, RFC 6409
 *     8.2 and 8.3: a submission server may add them).
 * Everything else is kept byte for byte.
 *
 * Input is network data: bounded by SUB_HEADER_MAX and the field limits of
 * mime_header.h; unit tested (test_submission_header.c) and fuzzed
 * (fuzz_submission_header.c). */
#ifndef SUB_HEADER_H
#define SUB_HEADER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "address.h"
#include "buf.h"
#include "domains.h"
#include "mime_header.h"

/* A larger header section is refused: everything in it must be seen for
 * the From check. */
#define SUB_HEADER_MAX MF_MIME_HEADER_MAX
/* Extra fields per message, as the queue takes them (QUEUE_ADD_EXTRA_MAX). */
#define SUB_EXTRA_MAX 64
#define SUB_EXTRA_KEY_MAX 64
#define SUB_EXTRA_VALUE_MAX 1024

struct sub_extra {
	char *key;     /* as written after the prefix, e.g. "Customer-Id" */
	char *value;   /* unfolded, trimmed */
};

struct sub_header_input {
	const char *hostname;   /* right side of an added Message-ID */
	const char *id;         /* left side of an added Message-ID (unique) */
	time_t now;             /* for an added Date */
};

struct sub_header_result {
	struct mf_address from;      /* the From address */
	struct sub_extra *extras;
	size_t extras_count;
	char *message_id;            /* Message-ID without <>, existing or added */
	bool added_message_id, added_date;
	struct mf_buf header;        /* the new header section, ending in CRLF
				      * unless empty; no blank line */
};

/* Rewrites the header section hdr[0..len) (the fields, each ending in CRLF,
 * without the blank line that ends the section).  Returns 0 with result_r
 * filled (free with sub_header_result_free), or -1 with error_r a complete
 * reply line: 550 5.7.1 for a missing or unusable From, 554 5.6.0 for a
 * header section beyond the limits or bad extra fields. */
int sub_header_rewrite(const char *hdr, size_t len, const struct sub_header_input *in,
		       struct sub_header_result *result_r, const char **error_r);
void sub_header_result_free(struct sub_header_result *r);

/* Returns true when account may send as addr: addr resolves (mf_domains_resolve:
 * exact, catch-all separator, catch-all) to the account itself, or to an
 * alias with allow-msg-from that has an address of the account among its
 * members. */
bool sub_from_allowed(const struct mf_domains *d, const char *account,
		      const struct mf_address *addr);

/* Formats t as an RFC 5322 3.3 date-time in UTC into buf ("Sun, 22 Nov 2026
 * 16:24:04 +0000"). */
void sub_header_date(time_t t, char *buf, size_t size);

#endif
