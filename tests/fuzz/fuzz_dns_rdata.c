/* Fuzzes the decoding of DNS rdata (what libunbound hands over from the
 * network): the first byte picks the record type, the rest is the rdata.
 * Invariants: decoded names are NUL-terminated and at most 4 * 254 bytes
 * (every octet escaped), TXT and TLSA data never exceed the input. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "services/dnsauth/resolver.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint16_t types[] = { DNS_TYPE_A, DNS_TYPE_AAAA, DNS_TYPE_MX, DNS_TYPE_PTR,
					  DNS_TYPE_CNAME, DNS_TYPE_NS, DNS_TYPE_TXT, DNS_TYPE_TLSA,
					  99 };
	struct dns_record rec;

	if (size == 0)
		return 0;
	uint16_t type = types[data[0] % (sizeof(types) / sizeof(types[0]))];
	int ret = dns_record_decode(type, data + 1, size - 1, &rec);
	if (ret == 0 && rec.name != NULL && strlen(rec.name) > 4 * 254)
		abort();
	if (ret == 0 && rec.data != NULL && (rec.data_len > size - 1 || rec.data[rec.data_len] != '\0'))
		abort();
	dns_record_clear(&rec);
	return 0;
}
