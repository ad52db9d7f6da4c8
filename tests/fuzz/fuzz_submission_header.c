/* fuzz_submission_header: submission's header rewrite on arbitrary bytes.
 * Checks: on success the new header holds no X-Mailfleet-Extra- field, ends in CRLF unless empty, has a Message-ID, and the From
 * address is set; the From check runs against a small domains.conf. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "domains.h"
#include "services/submission/sub_header.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct mf_domains *domains;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char conf[] = "domain example.org {\n catchall-separator +\n}\n"
				   "account mjl {\n domain example.org\n address mjl@example.org\n}\n"
				   "alias team@example.org {\n member mjl@example.org\n"
				   " allow-msg-from yes\n}\n";
	const struct sub_header_input in = { .hostname = "h.example", .id = "id", .now = 0 };
	struct sub_header_result r;
	const char *err;

	if (domains == NULL &&
	    mf_domains_load_buf("/tmp/domains.conf", conf, strlen(conf), &domains, &err) < 0)
		abort();
	if (sub_header_rewrite((const char *)data, size, &in, &r, &err) < 0) {
		if (err == NULL || (strncmp(err, "550 5.7.1 ", 10) != 0 &&
				    strncmp(err, "554 5.6.0 ", 10) != 0))
			abort();
		return 0;
	}
	if (r.header.len < 2 || memcmp(r.header.data + r.header.len - 2, "\r\n", 2) != 0)
		abort();
	if (r.message_id == NULL || r.from.domain == NULL || r.extras_count > SUB_EXTRA_MAX)
		abort();
	/* No field of that name is left (junk lines without a colon are
	 * not fields and stay as they were). */
	struct mf_mime_header_iter it;
	struct mf_mime_field f;
	mf_mime_header_iter_init(&it, r.header.data, 0, r.header.len);
	while (mf_mime_header_next(&it, &f))
		if (f.name_len >= 18 && strncasecmp(f.name, "X-Mailfleet-Extra-", 18) == 0)
			abort();
	(void)sub_from_allowed(domains, "mjl", &r.from);
	sub_header_result_free(&r);
	return 0;
}
