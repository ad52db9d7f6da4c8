/* imap_mutf7: modified UTF-7 (RFC 3501 5.1.3).
 *
 * Printable US-ASCII except "&" stands for itself; "&" is "&-"; anything
 * else is UTF-16 in modified base64 ("," instead of "/", no padding)
 * between "&" and "-". */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "imap_mutf7.h"

static const char b64chars[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";

static int b64val(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == ',')
		return 63;
	return -1;
}

static void put_utf8(struct mf_buf *b, uint32_t cp)
{
	unsigned char s[4];
	size_t n;

	if (cp < 0x80) {
		s[0] = (unsigned char)cp;
		n = 1;
	} else if (cp < 0x800) {
		s[0] = (unsigned char)(0xc0 | (cp >> 6));
		s[1] = (unsigned char)(0x80 | (cp & 0x3f));
		n = 2;
	} else if (cp < 0x10000) {
		s[0] = (unsigned char)(0xe0 | (cp >> 12));
		s[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
		s[2] = (unsigned char)(0x80 | (cp & 0x3f));
		n = 3;
	} else {
		s[0] = (unsigned char)(0xf0 | (cp >> 18));
		s[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3f));
		s[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
		s[3] = (unsigned char)(0x80 | (cp & 0x3f));
		n = 4;
	}
	mf_buf_append(b, s, n);
}

int imap_mutf7_decode(struct imap_pool *pool, const char *in, size_t len,
		      char **out_r, const char **error_r)
{
	struct mf_buf b;
	size_t i = 0;
	bool prev_encoded = false;
	int ret = -1;

	mf_buf_init(&b, 0);
	while (i < len) {
		unsigned char c = (unsigned char)in[i];
		uint32_t bits = 0, high = 0;
		unsigned nbits = 0;
		size_t start;

		if (c < 0x20 || c > 0x7e) {
			*error_r = "invalid character in modified UTF-7 mailbox name";
			goto out;
		}
		if (c != '&') {
			mf_buf_append(&b, &in[i++], 1);
			prev_encoded = false;
			continue;
		}
		i++;
		if (i < len && in[i] == '-') {
			mf_buf_append(&b, "&", 1);
			i++;
			prev_encoded = false;
			continue;
		}
		if (prev_encoded) {
			/* RFC 3501 5.1.3: "&Jjo-&ZeU-" must be "&JjoZeU-". */
			*error_r = "adjacent encoded runs in modified UTF-7 mailbox name";
			goto out;
		}
		start = i;
		while (i < len && in[i] != '-') {
			int v = b64val((unsigned char)in[i]);
			if (v < 0) {
				*error_r = "invalid base64 in modified UTF-7 mailbox name";
				goto out;
			}
			bits = (bits << 6) | (uint32_t)v;
			nbits += 6;
			i++;
			if (nbits >= 16) {
				uint32_t u = (bits >> (nbits - 16)) & 0xffff;
				nbits -= 16;
				bits &= (1u << nbits) - 1;
				if (high != 0) {
					if (u < 0xdc00 || u > 0xdfff) {
						*error_r = "invalid surrogate pair in modified UTF-7 mailbox name";
						goto out;
					}
					put_utf8(&b, 0x10000 + ((high - 0xd800) << 10) + (u - 0xdc00));
					high = 0;
				} else if (u >= 0xd800 && u <= 0xdbff) {
					high = u;
				} else if (u >= 0xdc00 && u <= 0xdfff) {
					*error_r = "invalid surrogate pair in modified UTF-7 mailbox name";
					goto out;
				} else if (u >= 0x20 && u <= 0x7e) {
					*error_r = "printable ASCII encoded in modified UTF-7 mailbox name";
					goto out;
				} else {
					put_utf8(&b, u);
				}
			}
		}
		if (i >= len) {
			*error_r = "unterminated \"&\" in modified UTF-7 mailbox name";
			goto out;
		}
		if (i == start || high != 0 || nbits >= 6 || bits != 0) {
			*error_r = "invalid base64 in modified UTF-7 mailbox name";
			goto out;
		}
		i++;
		prev_encoded = true;
	}
	*out_r = imap_pool_strndup(pool, b.data != NULL ? b.data : "", b.len);
	ret = 0;
out:
	mf_buf_free(&b);
	return ret;
}

/* Decodes one UTF-8 sequence; returns its length or 0 when invalid. */
static size_t get_utf8(const unsigned char *s, size_t len, uint32_t *cp_r)
{
	uint32_t cp;
	size_t n, i;

	if (s[0] < 0x80) {
		*cp_r = s[0];
		return 1;
	}
	if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		n = 2;
		cp = s[0] & 0x1f;
	} else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		n = 3;
		cp = s[0] & 0x0f;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		n = 4;
		cp = s[0] & 0x07;
	} else {
		return 0;
	}
	if (len < n)
		return 0;
	for (i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	*cp_r = cp;
	return n;
}

static void flush_b64(struct mf_buf *b, const uint16_t *units, size_t n)
{
	uint32_t bits = 0;
	unsigned nbits = 0;

	mf_buf_append(b, "&", 1);
	for (size_t i = 0; i < n; i++) {
		bits = (bits << 16) | units[i];
		nbits += 16;
		while (nbits >= 6) {
			nbits -= 6;
			mf_buf_append(b, &b64chars[(bits >> nbits) & 0x3f], 1);
		}
		bits &= (1u << nbits) - 1;
	}
	if (nbits > 0)
		mf_buf_append(b, &b64chars[(bits << (6 - nbits)) & 0x3f], 1);
	mf_buf_append(b, "-", 1);
}

int imap_mutf7_encode(struct imap_pool *pool, const char *in, size_t len,
		      char **out_r, const char **error_r)
{
	const unsigned char *s = (const unsigned char *)in;
	struct mf_buf b;
	uint16_t *units = mf_xmalloc((len + 1) * 2 * sizeof(*units));
	size_t nunits = 0, i = 0;
	int ret = -1;

	mf_buf_init(&b, 0);
	while (i < len) {
		uint32_t cp;
		size_t n = get_utf8(s + i, len - i, &cp);

		if (n == 0) {
			*error_r = "invalid UTF-8 in mailbox name";
			goto out;
		}
		i += n;
		if (cp >= 0x20 && cp <= 0x7e) {
			if (nunits > 0) {
				flush_b64(&b, units, nunits);
				nunits = 0;
			}
			if (cp == '&')
				mf_buf_append(&b, "&-", 2);
			else
				mf_buf_append(&b, &in[i - 1], 1);
			continue;
		}
		if (cp >= 0x10000) {
			cp -= 0x10000;
			units[nunits++] = (uint16_t)(0xd800 + (cp >> 10));
			units[nunits++] = (uint16_t)(0xdc00 + (cp & 0x3ff));
		} else {
			units[nunits++] = (uint16_t)cp;
		}
	}
	if (nunits > 0)
		flush_b64(&b, units, nunits);
	*out_r = imap_pool_strndup(pool, b.data != NULL ? b.data : "", b.len);
	ret = 0;
out:
	free(units);
	mf_buf_free(&b);
	return ret;
}
