/* Fuzzes the SOCKS5 client's parsers with what a hostile proxy might
 * send: the first byte picks the message (method selection, RFC 1929
 * status, CONNECT reply), the rest is the reply, fed in growing prefixes
 * as the client reads it. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "services/delivery/socks5.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *error;
	uint8_t method;
	size_t need = 0, have;

	if (size < 1)
		return 0;
	switch (data[0] % 3) {
	case 0:
		(void)socks5_method_reply(data + 1, size - 1, data[0] & 4, &method, &error);
		break;
	case 1:
		(void)socks5_userpass_reply(data + 1, size - 1, &error);
		break;
	case 2:
		/* As socks5_connect reads: exactly need bytes at a time. */
		have = 0;
		for (;;) {
			int r = socks5_connect_reply(data + 1, have, &need, &error);
			if (r <= 0 || need <= have || need > size - 1)
				break;
			have = need;
		}
		(void)socks5_connect_reply(data + 1, size - 1, &need, &error);
		break;
	}
	return 0;
}
