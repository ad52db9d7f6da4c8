/* sub_sasl: decoding of PLAIN and LOGIN responses (see header). */
#include "sub_sasl.h"

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include <stdlib.h>

#include "buf.h"

static int b64_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

int sub_base64_decode(const char *in, size_t len, char **out_r, size_t *out_len_r)
{
	char *out;
	size_t o = 0;

	*out_r = NULL;
	if (len % 4 != 0 || len > SUB_SASL_LINE_MAX)
		return -1;
	out = mf_xmalloc(len / 4 * 3 + 1);
	for (size_t i = 0; i < len; i += 4) {
		int v[4];
		unsigned pad = 0;
		for (unsigned k = 0; k < 4; k++) {
			unsigned char c = (unsigned char)in[i + k];
			if (c == '=' && i + 4 == len && k >= 2) {
				v[k] = 0;
				pad++;
				continue;
			}
			if (pad > 0 || (v[k] = b64_value(c)) < 0)
				goto bad;
		}
		uint32_t n = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 |
			     (uint32_t)v[3];
		/* RFC 4648 3.5: the bits cut off by padding must be zero. */
		if ((pad == 1 && (n & 0xff) != 0) || (pad == 2 && (n & 0xffff) != 0))
			goto bad;
		out[o++] = (char)(n >> 16);
		if (pad < 2)
			out[o++] = (char)(n >> 8 & 0xff);
		if (pad < 1)
			out[o++] = (char)(n & 0xff);
	}
	out[o] = '\0';
	*out_r = out;
	*out_len_r = o;
	return 0;
bad:
	explicit_bzero(out, len / 4 * 3 + 1);
	free(out);
	return -1;
}

int sub_sasl_plain(const char *msg, size_t len, char **login_r, const char **password_r,
		   size_t *password_len_r, const char **error_r)
{
	const char *nul1 = memchr(msg, '\0', len), *nul2, *authcid;
	size_t authz_len, authc_len;

	*login_r = NULL;
	if (nul1 == NULL ||
	    (nul2 = memchr(nul1 + 1, '\0', len - (size_t)(nul1 + 1 - msg))) == NULL) {
		*error_r = "501 5.5.2 bad PLAIN message";
		return -1;
	}
	authz_len = (size_t)(nul1 - msg);
	authcid = nul1 + 1;
	authc_len = (size_t)(nul2 - authcid);
	if (authc_len == 0 || memchr(nul2 + 1, '\0', len - (size_t)(nul2 + 1 - msg)) != NULL) {
		*error_r = "501 5.5.2 bad PLAIN message";
		return -1;
	}
	if (authc_len > SUB_LOGIN_MAX || len - (size_t)(nul2 + 1 - msg) > SUB_PASSWORD_MAX) {
		*error_r = "535 5.7.8 authentication credentials invalid";
		return -1;
	}
	if (authz_len != 0 && (authz_len != authc_len || memcmp(msg, authcid, authc_len) != 0)) {
		*error_r = "535 5.7.8 authorization identity must be empty or the login name";
		return -1;
	}
	*login_r = mf_xstrndup(authcid, authc_len);
	*password_r = nul2 + 1;
	*password_len_r = len - (size_t)(nul2 + 1 - msg);
	return 0;
}
