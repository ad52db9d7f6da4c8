/* fuzz_address: mf_address_parse and friends on arbitrary bytes.
 * Besides "no crash, no leak", it checks that a parsed address formats to
 * text that parses back to the same address (canonical form is a fixpoint). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "address.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *s = (const char *)data;
	struct mf_address a, b;
	const char *error;
	char *ascii, *unicode;

	if (mf_domain_parse(s, size, &ascii, &unicode, &error) == 0) {
		/* the A-label form is itself a valid domain with the same forms */
		char *ascii2, *unicode2;
		if (mf_domain_parse(ascii, strlen(ascii), &ascii2, &unicode2, &error) != 0 ||
		    strcmp(ascii, ascii2) != 0 || strcmp(unicode, unicode2) != 0)
			abort();
		free(ascii2);
		free(unicode2);
		free(ascii);
		free(unicode);
	}

	if (mf_address_parse(s, size, &a, &error) != 0)
		return 0;
	char *f = mf_address_format(&a);
	/* An A-label domain or NFC may make the canonical text longer than the
	 * input; only a form within the limit has to parse again. */
	if (strlen(f) <= MF_ADDRESS_MAX) {
		if (mf_address_parse(f, strlen(f), &b, &error) != 0)
			abort();
		if (strcmp(a.localpart, b.localpart) != 0 || strcmp(a.domain, b.domain) != 0 ||
		    strcmp(a.domain_unicode, b.domain_unicode) != 0 || a.literal != b.literal)
			abort();
		mf_address_free(&b);
	}
	if (!mf_localpart_equal(a.localpart, a.localpart, false) ||
	    !mf_localpart_equal(a.localpart, a.localpart, true))
		abort();
	char *stripped = mf_address_strip_separator(a.localpart, "+");
	if (strlen(stripped) > strlen(a.localpart))
		abort();
	free(stripped);
	free(f);
	mf_address_free(&a);
	return 0;
}
