/* fuzz_store_input: what the account store parses from clients and other
 * services: mailbox names, keyword lists, and the header scan for
 * Message-ID/Subject.  Besides "no crash, no leak": canonical names and
 * normalised keyword lists are fixpoints. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "services/imap/store_private.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = mf_xstrndup((const char *)data, size);
	char *canon, *kw, *msgid = NULL, *subject = NULL;
	const char *err;

	canon = store_mailbox_name_canon(s, &err);
	if (canon != NULL) {
		char *again = store_mailbox_name_canon(canon, &err);

		if (again == NULL || strcmp(again, canon) != 0)
			abort();
		free(again);
		free(canon);
	}
	kw = store_keywords_normalise(s, &err);
	if (kw != NULL) {
		char *again = store_keywords_normalise(kw, &err);

		if (again == NULL || strcmp(again, kw) != 0)
			abort();
		free(again);
		free(kw);
	}
	store_scan_headers((const char *)data, size, &msgid, &subject);
	if ((msgid != NULL && strlen(msgid) > size) || (subject != NULL && strlen(subject) > size))
		abort();
	free(msgid);
	free(subject);
	free(s);
	return 0;
}
