/* Fuzzes the DKIM-Signature value parser, and a whole verification of a
 * message whose header is the input: parse results must be internally
 * consistent (i= within d=, b= offsets inside the input), and verification
 * must end in a result for every signature without crashing. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "services/dnsauth/dkim.h"
#include "services/dnsauth/resolver.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct dns_resolver *r;
	struct dkim_signature *sig = NULL;
	const char *err = NULL;

	if (r == NULL) {
		r = dns_resolver_create_memory();
		dns_memory_add(r, "s._domainkey.example.com", DNS_TYPE_TXT,
			       "v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=", &err);
	}
	if (dkim_signature_parse((const char *)data, size, &sig, &err) == 0) {
		if (sig->b_value_start > sig->b_value_end || sig->b_value_end > size ||
		    sig->domain == NULL || sig->selector == NULL || sig->headers_count == 0 ||
		    sig->identity == NULL || strchr(sig->identity, '@') == NULL)
			abort();
		dkim_signature_free(&sig);
	} else if (err == NULL || sig != NULL) {
		abort();
	}

	/* The input as a DKIM-Signature field on a small message. */
	if (size <= DKIM_SIGNATURE_MAX) {
		char *msg = mf_xasprintf("DKIM-Signature:%.*s\r\nFrom: a@example.com\r\n\r\nbody\r\n",
					 (int)size, (const char *)data);
		struct dkim_verify_settings set = { .now = 1700000000 };
		struct dkim_result *res = NULL;
		size_t n = 0;

		dkim_verify(r, &set, msg, strlen(msg), &res, &n);
		for (size_t i = 0; i < n; i++) {
			if (res[i].status == DKIM_PASS)
				abort();  /* nobody has the private key */
			if (res[i].error == NULL)
				abort();
		}
		dkim_results_free(&res, n);
		free(msg);
	}
	return 0;
}
