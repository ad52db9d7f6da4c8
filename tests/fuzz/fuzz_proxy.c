/* Fuzzes the PROXY protocol parser.  The first input byte picks a chunk size;
 * the rest is fed once whole and once in chunks, and both runs must agree:
 * incremental parsing may not change the answer or the bytes consumed. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proxy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mf_proxy_parser whole, part;
	struct mf_proxy_header hdr_whole, hdr_part;
	const char *error = NULL;
	size_t consumed_whole = 0, consumed_part = 0, consumed, chunk;
	int ret_whole, ret_part = 1;

	if (size == 0)
		return 0;
	chunk = (size_t)data[0] % 17 + 1;
	data++;
	size--;

	mf_proxy_parser_init(&whole);
	ret_whole = mf_proxy_parser_feed(&whole, data, size, &consumed_whole, &hdr_whole, &error);
	if (ret_whole < -1 || ret_whole > 1 || consumed_whole > size)
		abort();
	if (ret_whole == 1 && consumed_whole != size)
		abort();

	mf_proxy_parser_init(&part);
	for (size_t off = 0; off < size && ret_part == 1; off += chunk) {
		size_t n = size - off < chunk ? size - off : chunk;
		ret_part = mf_proxy_parser_feed(&part, data + off, n, &consumed, &hdr_part, &error);
		if (consumed > n)
			abort();
		consumed_part += consumed;
	}
	if (ret_part != ret_whole)
		abort();
	if (ret_whole == 0) {
		if (consumed_part != consumed_whole)
			abort();
		if (hdr_whole.local != hdr_part.local || hdr_whole.version != hdr_part.version ||
		    hdr_whole.src_len != hdr_part.src_len ||
		    memcmp(&hdr_whole.src, &hdr_part.src, hdr_whole.src_len) != 0 ||
		    memcmp(&hdr_whole.dst, &hdr_part.dst, hdr_whole.dst_len) != 0)
			abort();
	}
	return 0;
}
