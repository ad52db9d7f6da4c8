/* precis: PRECIS OpaqueString for passwords (RFC 8265 4.2), NFC for login
 * names; see precis.h.  Unicode tables from libunistring. */
#include "precis.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <unictype.h>
#include <uninorm.h>
#include <unistr.h>

#include "buf.h"
#include "error.h"

/* Old Hangul jamo (RFC 8264 9.10): conjoining jamo blocks whose syllables
 * are not precomposed. */
static bool old_hangul_jamo(ucs4_t c)
{
	return (c >= 0x1100 && c <= 0x11FF) || (c >= 0xA960 && c <= 0xA97F) ||
	       (c >= 0xD7B0 && c <= 0xD7FF);
}

/* FreeformClass membership (RFC 8264 4.3, 9): letters, digits, marks,
 * symbols, punctuation, spaces and compatibility characters are valid;
 * controls, format characters, separators other than space, private use,
 * surrogates, unassigned and default-ignorable code points are not.  ZWNJ
 * and ZWJ (CONTEXTJ) are refused too: they would need the RFC 5892
 * contextual rules and have no business in a password. */
static bool freeform_valid(ucs4_t c)
{
	if (c >= 0x21 && c <= 0x7E)
		return true;    /* ASCII7 */
	if (c == 0x20)
		return true;
	if (uc_is_property_default_ignorable_code_point(c) || old_hangul_jamo(c))
		return false;
	if (uc_is_general_category(c, UC_CATEGORY_Cc) ||
	    uc_is_general_category(c, UC_CATEGORY_Cf) ||
	    uc_is_general_category(c, UC_CATEGORY_Cs) ||
	    uc_is_general_category(c, UC_CATEGORY_Co) ||
	    uc_is_general_category(c, UC_CATEGORY_Cn) ||
	    uc_is_general_category(c, UC_CATEGORY_Zl) ||
	    uc_is_general_category(c, UC_CATEGORY_Zp))
		return false;
	return true;
}

/* Decodes and checks s; writes every code point to out (capacity len). */
static int decode(const char *s, size_t len, ucs4_t *out, size_t *n_r, const char **error_r)
{
	const uint8_t *p = (const uint8_t *)s, *end = p + len;
	size_t n = 0;

	while (p < end) {
		ucs4_t c;
		int l = u8_mbtouc(&c, p, (size_t)(end - p));

		if (l <= 0 || c == 0xFFFD) {
			/* u8_mbtouc maps invalid bytes to U+FFFD: tell a real one
			 * apart by its encoding. */
			if (!(l == 3 && p[0] == 0xEF && p[1] == 0xBF && p[2] == 0xBD)) {
				*error_r = "not valid UTF-8";
				return -1;
			}
		}
		out[n++] = c;
		p += l;
	}
	*n_r = n;
	return 0;
}

static int nfc_encode(const ucs4_t *cps, size_t n, char **out_r, size_t *out_len_r,
		      const char **error_r)
{
	size_t u8len = 0, outlen = 0;
	uint8_t *u8 = u32_to_u8(cps, n, NULL, &u8len);
	uint8_t *nfc;
	char *res;

	if (u8 == NULL) {
		*error_r = "cannot encode UTF-8";
		return -1;
	}
	nfc = u8_normalize(UNINORM_NFC, u8, u8len, NULL, &outlen);
	free(u8);
	if (nfc == NULL) {
		*error_r = "cannot normalise to NFC";
		return -1;
	}
	res = mf_xmalloc(outlen + 1);
	memcpy(res, nfc, outlen);
	res[outlen] = '\0';
	free(nfc);
	*out_r = res;
	if (out_len_r != NULL)
		*out_len_r = outlen;
	return 0;
}

int mf_precis_password(const char *s, size_t len, char **out_r, size_t *out_len_r,
		       const char **error_r)
{
	ucs4_t *cps = NULL;
	size_t n = 0;
	int ret = -1;

	*out_r = NULL;
	*out_len_r = 0;
	if (len > MF_PRECIS_INPUT_MAX) {
		*error_r = "password too long";
		return -1;
	}
	cps = mf_xmalloc((len + 1) * sizeof(*cps));
	if (decode(s, len, cps, &n, error_r) < 0)
		goto out;
	/* RFC 8265 4.2.2 rule 2: non-ASCII space to ASCII space; no width
	 * (rule 1) or case (rule 3) mapping for OpaqueString. */
	for (size_t i = 0; i < n; i++) {
		if (cps[i] != 0x20 && uc_is_general_category(cps[i], UC_CATEGORY_Zs))
			cps[i] = 0x20;
	}
	for (size_t i = 0; i < n; i++) {
		if (!freeform_valid(cps[i])) {
			*error_r = mf_errorf("disallowed character U+%04X in password",
					     (unsigned)cps[i]);
			goto out;
		}
	}
	if (nfc_encode(cps, n, out_r, out_len_r, error_r) < 0)
		goto out;
	if (*out_len_r == 0) {
		/* RFC 8265 4.2.2: the empty string is not an OpaqueString. */
		free(*out_r);
		*out_r = NULL;
		*error_r = "empty password";
		goto out;
	}
	ret = 0;
out:
	free(cps);
	return ret;
}

int mf_precis_username(const char *s, size_t len, char **out_r, const char **error_r)
{
	ucs4_t *cps = NULL;
	size_t n = 0;
	int ret = -1;

	*out_r = NULL;
	if (len > MF_PRECIS_INPUT_MAX) {
		*error_r = "login name too long";
		return -1;
	}
	if (len == 0) {
		*error_r = "empty login name";
		return -1;
	}
	cps = mf_xmalloc((len + 1) * sizeof(*cps));
	if (decode(s, len, cps, &n, error_r) < 0)
		goto out;
	for (size_t i = 0; i < n; i++) {
		if (uc_is_general_category(cps[i], UC_CATEGORY_Cc)) {
			*error_r = "control character in login name";
			goto out;
		}
	}
	if (nfc_encode(cps, n, out_r, NULL, error_r) < 0)
		goto out;
	ret = 0;
out:
	free(cps);
	return ret;
}
