/* Fuzzes the DKIM key record parser (RFC 6376 3.6.1): a record that parses
 * has a consistent key, and base64 decoding of p= agrees with encoding. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "services/dnsauth/dkim.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dkim_key *key = NULL;
	const char *err = NULL;

	if (dkim_key_parse((const char *)data, size, &key, &err) == 0) {
		if ((key->p == NULL) != (key->p_len == 0))
			abort();
		if (key->p != NULL) {
			char *enc = dkim_base64_encode(key->p, key->p_len);
			size_t n = 0;
			uint8_t *dec = dkim_base64_decode(enc, strlen(enc), &n);
			if (dec == NULL || n != key->p_len || memcmp(dec, key->p, n) != 0)
				abort();
			free(dec);
			free(enc);
		}
		dkim_key_free(&key);
	} else if (err == NULL || key != NULL) {
		abort();
	}
	return 0;
}
