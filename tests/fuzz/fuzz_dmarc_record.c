/* Fuzzes the DMARC record parser (RFC 9989 4.7, 4.8) and the From header
 * author-domain extraction: parsing never fails for a record that passes
 * dmarc_record_is_dmarc, values stay within their enums, URI lists within
 * their limits. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "services/dnsauth/dmarc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dmarc_record *rec = NULL;
	struct dmarc_message_info info;
	const char *err = NULL;
	bool is = dmarc_record_is_dmarc((const char *)data, size);
	int ret = dmarc_record_parse((const char *)data, size, &rec, &err);

	if (ret == 0) {
		if (!is || rec->p > DMARC_POLICY_REJECT || rec->sp > DMARC_POLICY_REJECT ||
		    rec->np > DMARC_POLICY_REJECT || rec->rua_count > DMARC_URIS_MAX ||
		    rec->ruf_count > DMARC_URIS_MAX || rec->fo == NULL ||
		    (rec->psd != 'y' && rec->psd != 'n' && rec->psd != 'u'))
			abort();
		dmarc_record_free(&rec);
	} else if (is && size <= DMARC_RECORD_MAX) {
		abort();
	}

	/* The same bytes as a From header field value. */
	char *msg = mf_xasprintf("From:%.*s\r\n\r\n", (int)size, (const char *)data);
	dmarc_message_info(msg, strlen(msg), &info);
	if ((info.from_domain == NULL) != (info.from_domains == 0) ||
	    info.from_domains > DMARC_FROM_ADDRESSES_MAX)
		abort();
	dmarc_message_info_clear(&info);
	free(msg);
	return 0;
}
