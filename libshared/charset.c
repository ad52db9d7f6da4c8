/* charset: iconv wrappers producing UTF-8.  See charset.h. */
#include "charset.h"
#include "error.h"

#include <errno.h>
#include <iconv.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>
#include <unistr.h>

static const char utf8_replacement[] = "\xef\xbf\xbd";

bool mf_charset_is_utf8(const char *s, size_t len)
{
	return u8_check((const uint8_t *)s, len) == NULL;
}

bool mf_charset_has_8bit(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)s[i] >= 0x80)
			return true;
	return false;
}

/* Copies the charset name without an RFC 2231 section 5 "*language" suffix
 * into name (size MF_CHARSET_NAME_MAX + 1).  Returns -1 when too long. */
static int charset_name(const char *charset, char *name)
{
	size_t len = 0;

	if (charset == NULL)
		charset = "";
	while (len <= MF_CHARSET_NAME_MAX && charset[len] != '\0' && charset[len] != '*')
		len++;
	if (len > MF_CHARSET_NAME_MAX)
		return -1;
	memcpy(name, charset, len);
	name[len] = '\0';
	return 0;
}

static bool is_utf8_name(const char *name)
{
	static const char *const names[] = {
		"", "utf-8", "utf8", "us-ascii", "ascii", "ansi_x3.4-1968",
		"iso-646-us", "us", "cp367", "ibm367", "csascii",
	};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strcasecmp(name, names[i]) == 0)
			return true;
	return false;
}

bool mf_charset_is_utf8_name(const char *charset)
{
	char name[MF_CHARSET_NAME_MAX + 1];

	return charset_name(charset, name) == 0 && is_utf8_name(name);
}

/* Appends valid UTF-8 unchanged and each invalid byte as U+FFFD. */
static int append_utf8_replacing(const char *in, size_t len, struct mf_buf *out)
{
	const uint8_t *p = (const uint8_t *)in, *end = p + len;

	while (p < end) {
		const uint8_t *bad = u8_check(p, (size_t)(end - p));
		if (bad == NULL)
			return mf_buf_append(out, p, (size_t)(end - p));
		if (mf_buf_append(out, p, (size_t)(bad - p)) < 0 ||
		    mf_buf_append(out, utf8_replacement, 3) < 0)
			return -1;
		/* skip the lead byte and any continuation bytes that follow it */
		p = bad + 1;
		while (p < end && (*p & 0xc0) == 0x80)
			p++;
	}
	return 0;
}

int mf_charset_8bit_to_utf8(const char *in, size_t len, struct mf_buf *out)
{
	if (mf_charset_is_utf8(in, len))
		return mf_buf_append(out, in, len);
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)in[i];
		char u[2];
		if (c < 0x80) {
			if (mf_buf_append(out, &in[i], 1) < 0)
				return -1;
			continue;
		}
		u[0] = (char)(0xc0 | (c >> 6));
		u[1] = (char)(0x80 | (c & 0x3f));
		if (mf_buf_append(out, u, 2) < 0)
			return -1;
	}
	return 0;
}

int mf_charset_to_utf8(const char *charset, const char *in, size_t len,
		       struct mf_buf *out, const char **error_r)
{
	char name[MF_CHARSET_NAME_MAX + 1];
	char chunk[4096];
	iconv_t cd;
	int ret = -1;

	if (charset_name(charset, name) < 0) {
		*error_r = "charset name too long";
		return -1;
	}
	if (is_utf8_name(name)) {
		if (append_utf8_replacing(in, len, out) < 0) {
			*error_r = "conversion result too large";
			return -1;
		}
		return 0;
	}
	cd = iconv_open("UTF-8", name);
	if (cd == (iconv_t)-1) {
		*error_r = mf_errorf("unknown charset %s", name);
		return -1;
	}
	char *ip = (char *)in;
	size_t ileft = len;
	while (ileft > 0) {
		char *op = chunk;
		size_t oleft = sizeof(chunk);
		size_t r = iconv(cd, &ip, &ileft, &op, &oleft);
		int err = r == (size_t)-1 ? errno : 0;
		if (mf_buf_append(out, chunk, sizeof(chunk) - oleft) < 0)
			goto toobig;
		if (err == 0 || err == E2BIG)
			continue;
		/* EILSEQ or EINVAL (truncated sequence at the end): replace one
		 * byte and go on; the state is reset so a stateful charset
		 * (ISO-2022-JP) resynchronises. */
		if (mf_buf_append(out, utf8_replacement, 3) < 0)
			goto toobig;
		ip++;
		ileft--;
		iconv(cd, NULL, NULL, NULL, NULL);
	}
	/* flush a stateful encoder's shift sequence */
	{
		char *op = chunk;
		size_t oleft = sizeof(chunk);
		iconv(cd, NULL, NULL, &op, &oleft);
		if (mf_buf_append(out, chunk, sizeof(chunk) - oleft) < 0)
			goto toobig;
	}
	ret = 0;
	goto out;
toobig:
	*error_r = "conversion result too large";
out:
	iconv_close(cd);
	return ret;
}
