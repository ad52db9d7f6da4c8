/* address: RFC 5321 Mailbox parsing with the RFC 6531 UTF-8 extensions.
 * See address.h.  Everything here handles network input: every path returns
 * an error, nothing aborts, and every length is bounded before it is used. */
#include "address.h"
#include "buf.h"
#include "error.h"

#include <arpa/inet.h>
#include <idn2.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unicase.h>
#include <uninorm.h>
#include <unistr.h>

/* RFC 1035 2.3.4 / RFC 5890: a DNS label is at most 63 octets. */
#define MF_ADDRESS_LABEL_MAX 63

static bool is_ascii_alnum(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* RFC 5322 3.2.3 atext (ASCII part); RFC 6531 3.3 adds UTF8-non-ascii. */
static bool is_atext(unsigned char c)
{
	return is_ascii_alnum(c) || (c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL);
}

/* RFC 5321 4.1.2 qtextSMTP: %d32-33 / %d35-91 / %d93-126. */
static bool is_qtext(unsigned char c)
{
	return c >= 32 && c <= 126 && c != '"' && c != '\\';
}

static bool has_non_ascii(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)s[i] >= 0x80)
			return true;
	return false;
}

/* Valid UTF-8 (no overlongs, no surrogates) without NUL or C1 controls:
 * C1 controls are "UTF8-non-ascii" by the ABNF but never part of a name. */
static bool is_clean_utf8(const char *s, size_t len)
{
	const uint8_t *p = (const uint8_t *)s, *end = p + len;

	if (u8_check(p, len) != NULL)
		return false;
	while (p < end) {
		ucs4_t uc;
		int n = u8_mbtouc(&uc, p, (size_t)(end - p));
		if (n <= 0 || uc == 0 || (uc >= 0x80 && uc <= 0x9f))
			return false;
		p += n;
	}
	return true;
}

/* Returns the NFC form of s as a NUL-terminated string (caller frees),
 * or NULL when libunistring fails (only on invalid input or ENOMEM). */
static char *nfc_dup(const char *s, size_t len)
{
	size_t outlen = 0;
	uint8_t *out;
	char *ret;

	if (len == 0)
		return mf_xstrdup("");
	out = u8_normalize(UNINORM_NFC, (const uint8_t *)s, len, NULL, &outlen);
	if (out == NULL)
		return NULL;
	ret = mf_xstrndup((const char *)out, outlen);
	/* NFC of clean UTF-8 has no NUL; refuse anything else rather than cut */
	if (strlen(ret) != outlen) {
		free(ret);
		ret = NULL;
	}
	free(out);
	return ret;
}

/* True when s is a Dot-string: Atom *("." Atom), RFC 5321 4.1.2 with the
 * RFC 6531 3.3 UTF-8 atext. */
static bool is_dot_string(const char *s, size_t len)
{
	bool prev_dot = true;   /* a leading dot is as bad as a doubled one */

	if (len == 0)
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '.') {
			if (prev_dot)
				return false;
			prev_dot = true;
		} else if (c >= 0x80 || is_atext(c)) {
			prev_dot = false;
		} else {
			return false;
		}
	}
	return !prev_dot;
}

/* Checks the LDH syntax of an ASCII domain, RFC 5321 4.1.2 sub-domain:
 * Let-dig [Ldh-str], i.e. no leading or trailing hyphen, no empty label. */
static int check_ldh(const char *s, size_t len, const char **error_r)
{
	size_t start = 0;

	if (len == 0) {
		*error_r = "empty domain";
		return -1;
	}
	for (size_t i = 0; i <= len; i++) {
		if (i < len && s[i] != '.') {
			unsigned char c = (unsigned char)s[i];
			if (!is_ascii_alnum(c) && c != '-') {
				*error_r = mf_errorf("invalid character 0x%02x in domain", c);
				return -1;
			}
			continue;
		}
		size_t label_len = i - start;
		if (label_len == 0) {
			*error_r = "empty label in domain";
			return -1;
		}
		if (label_len > MF_ADDRESS_LABEL_MAX) {
			*error_r = "domain label too long";
			return -1;
		}
		if (s[start] == '-' || s[i - 1] == '-') {
			*error_r = "domain label starts or ends with a hyphen";
			return -1;
		}
		start = i + 1;
	}
	return 0;
}

static void ascii_lower(char *s)
{
	for (; *s != '\0'; s++)
		if (*s >= 'A' && *s <= 'Z')
			*s = (char)(*s - 'A' + 'a');
}

/* Does any label start with the ACE prefix "xn--" (s is lower case)? */
static bool has_alabel(const char *s)
{
	const char *p = s;

	for (;;) {
		if (strncmp(p, "xn--", 4) == 0)
			return true;
		p = strchr(p, '.');
		if (p == NULL)
			return false;
		p++;
	}
}

/* Validates a lower-case ASCII domain and returns its U-label form (caller
 * frees).  A-labels must decode to valid U-labels and encode back to
 * themselves (RFC 5891 5.4); anything else is a fake "xn--". */
static int ascii_domain_unicode(const char *ascii, char **unicode_r, const char **error_r)
{
	char *unicode = NULL, *check = NULL;
	int rc, ret = -1;

	if (check_ldh(ascii, strlen(ascii), error_r) < 0)
		goto out;
	if (!has_alabel(ascii)) {
		*unicode_r = mf_xstrdup(ascii);
		ret = 0;
		goto out;
	}
	rc = idn2_to_unicode_8z8z(ascii, &unicode, 0);
	if (rc != IDN2_OK) {
		*error_r = mf_errorf("invalid A-label in domain: %s", idn2_strerror(rc));
		goto out;
	}
	rc = idn2_to_ascii_8z(unicode, &check, IDN2_NFC_INPUT | IDN2_NONTRANSITIONAL);
	if (rc != IDN2_OK) {
		*error_r = mf_errorf("invalid A-label in domain: %s", idn2_strerror(rc));
		goto out;
	}
	if (strcmp(check, ascii) != 0) {
		*error_r = "invalid A-label in domain: not in canonical form";
		goto out;
	}
	*unicode_r = mf_xstrdup(unicode);
	ret = 0;
out:
	idn2_free(unicode);
	idn2_free(check);
	return ret;
}

int mf_domain_parse(const char *s, size_t len, char **ascii_r, char **unicode_r,
		    const char **error_r)
{
	char *input = NULL, *ascii = NULL, *unicode = NULL;
	int rc, ret = -1;

	*ascii_r = NULL;
	*unicode_r = NULL;
	if (len == 0) {
		*error_r = "empty domain";
		goto out;
	}
	/* A U-label domain longer than this in UTF-8 has no shorter A-label
	 * form worth trying; the bound keeps idn2 work small. */
	if (len > MF_ADDRESS_DOMAIN_MAX) {
		*error_r = "domain too long";
		goto out;
	}
	if (!is_clean_utf8(s, len)) {
		*error_r = "domain is not valid UTF-8";
		goto out;
	}
	if (s[len - 1] == '.') {
		/* RFC 5321 4.1.2: no trailing dot in a Domain */
		*error_r = "domain ends with a dot";
		goto out;
	}

	if (!has_non_ascii(s, len)) {
		input = mf_xstrndup(s, len);
		ascii_lower(input);
		if (ascii_domain_unicode(input, unicode_r, error_r) < 0)
			goto out;
		*ascii_r = input;
		input = NULL;
		ret = 0;
		goto out;
	}

	input = nfc_dup(s, len);
	if (input == NULL) {
		*error_r = "domain is not valid UTF-8";
		goto out;
	}
	/* UTS #46 mapping (nontransitional) lower-cases and validates the
	 * U-labels per IDNA2008, RFC 5891 5. */
	rc = idn2_to_ascii_8z(input, &ascii, IDN2_NFC_INPUT | IDN2_NONTRANSITIONAL);
	if (rc != IDN2_OK) {
		*error_r = mf_errorf("invalid international domain: %s", idn2_strerror(rc));
		goto out;
	}
	ascii_lower(ascii);
	if (strlen(ascii) > MF_ADDRESS_DOMAIN_MAX) {
		*error_r = "domain too long";
		goto out;
	}
	/* idn2 passes labels that were already "xn--" through unchecked when
	 * others are U-labels: validate the result as a whole again. */
	if (ascii_domain_unicode(ascii, &unicode, error_r) < 0)
		goto out;
	*ascii_r = mf_xstrdup(ascii);
	*unicode_r = unicode;
	unicode = NULL;
	ret = 0;
out:
	free(input);
	idn2_free(ascii);
	free(unicode);
	return ret;
}

/* Parses an address literal "[...]" (RFC 5321 4.1.3) into its canonical
 * text: "[1.2.3.4]" or "[IPv6:<RFC 5952 form>]".  Returns 0 or -1. */
static int parse_literal(const char *s, size_t len, char **literal_r, const char **error_r)
{
	char inner[MF_ADDRESS_DOMAIN_MAX + 1];
	char text[INET6_ADDRSTRLEN];
	unsigned char bin[16];

	if (len < 2 || s[0] != '[' || s[len - 1] != ']') {
		*error_r = "invalid address literal";
		return -1;
	}
	if (len - 2 > MF_ADDRESS_DOMAIN_MAX) {
		*error_r = "address literal too long";
		return -1;
	}
	memcpy(inner, s + 1, len - 2);
	inner[len - 2] = '\0';
	if (strlen(inner) != len - 2) {
		*error_r = "invalid address literal";
		return -1;
	}
	if (strncasecmp(inner, "IPv6:", 5) == 0) {
		if (inet_pton(AF_INET6, inner + 5, bin) != 1) {
			*error_r = "invalid IPv6 address literal";
			return -1;
		}
		inet_ntop(AF_INET6, bin, text, sizeof(text));
		*literal_r = mf_xasprintf("[IPv6:%s]", text);
		return 0;
	}
	if (strchr(inner, ':') != NULL) {
		/* General-address-literal: no standardized tag but IPv6 exists */
		*error_r = "unsupported address literal";
		return -1;
	}
	if (inet_pton(AF_INET, inner, bin) != 1) {
		*error_r = "invalid IPv4 address literal";
		return -1;
	}
	inet_ntop(AF_INET, bin, text, sizeof(text));
	*literal_r = mf_xasprintf("[%s]", text);
	return 0;
}

/* Length of the localpart once formatted (quoted when needed). */
static size_t formatted_localpart_len(const char *lp)
{
	size_t n = strlen(lp);

	if (is_dot_string(lp, n))
		return n;
	size_t q = n + 2;
	for (const char *p = lp; *p != '\0'; p++)
		if (*p == '"' || *p == '\\')
			q++;
	return q;
}

int mf_address_parse(const char *s, size_t len, struct mf_address *addr_r,
		     const char **error_r)
{
	struct mf_buf lp;
	const char *domain;
	size_t i = 0, domain_len;
	char *localpart = NULL;
	int ret = -1;

	memset(addr_r, 0, sizeof(*addr_r));
	mf_buf_init(&lp, MF_ADDRESS_MAX);
	if (len == 0) {
		*error_r = "empty address";
		goto out;
	}
	if (len > MF_ADDRESS_MAX) {
		*error_r = "address too long";
		goto out;
	}
	if (!is_clean_utf8(s, len)) {
		*error_r = "address is not valid UTF-8";
		goto out;
	}

	if (s[0] == '"') {
		/* Quoted-string, RFC 5321 4.1.2; RFC 6531 3.3 allows UTF-8 */
		bool closed = false;
		for (i = 1; i < len; i++) {
			unsigned char c = (unsigned char)s[i];
			if (c == '"') {
				closed = true;
				i++;
				break;
			}
			if (c == '\\') {
				/* quoted-pairSMTP = %d92 %d32-126 */
				if (i + 1 >= len || (unsigned char)s[i + 1] < 32 ||
				    (unsigned char)s[i + 1] > 126) {
					*error_r = "invalid quoted pair in localpart";
					goto out;
				}
				i++;
				c = (unsigned char)s[i];
			} else if (c < 0x80 && !is_qtext(c)) {
				*error_r = mf_errorf("invalid character 0x%02x in quoted localpart", c);
				goto out;
			}
			mf_buf_append(&lp, &c, 1);
		}
		if (!closed) {
			*error_r = "unterminated quoted localpart";
			goto out;
		}
	} else {
		while (i < len && s[i] != '@')
			i++;
		if (i == 0) {
			*error_r = "empty localpart";
			goto out;
		}
		if (s[0] == '.' || s[i - 1] == '.') {
			*error_r = "localpart starts or ends with a dot";
			goto out;
		}
		for (size_t j = 0; j + 1 < i; j++) {
			if (s[j] == '.' && s[j + 1] == '.') {
				*error_r = "localpart has consecutive dots";
				goto out;
			}
		}
		if (!is_dot_string(s, i)) {
			for (size_t j = 0; j < i; j++) {
				unsigned char c = (unsigned char)s[j];
				if (c < 0x80 && c != '.' && !is_atext(c)) {
					*error_r = mf_errorf("invalid character 0x%02x in localpart", c);
					goto out;
				}
			}
			*error_r = "invalid localpart";
			goto out;
		}
		mf_buf_append(&lp, s, i);
	}
	if (i >= len || s[i] != '@') {
		*error_r = "missing @ after localpart";
		goto out;
	}
	domain = s + i + 1;
	domain_len = len - i - 1;
	if (domain_len == 0) {
		*error_r = "empty domain";
		goto out;
	}

	/* RFC 6532 3.1: UTF-8 is compared in NFC; store it that way. */
	localpart = nfc_dup(mf_buf_cstr(&lp), lp.len);
	if (localpart == NULL) {
		*error_r = "localpart is not valid UTF-8";
		goto out;
	}
	if (formatted_localpart_len(localpart) > MF_ADDRESS_LOCALPART_MAX) {
		*error_r = "localpart too long";
		goto out;
	}

	if (domain[0] == '[') {
		if (parse_literal(domain, domain_len, &addr_r->domain, error_r) < 0)
			goto out;
		addr_r->domain_unicode = mf_xstrdup(addr_r->domain);
		addr_r->literal = true;
	} else {
		if (mf_domain_parse(domain, domain_len, &addr_r->domain,
				    &addr_r->domain_unicode, error_r) < 0)
			goto out;
	}
	/* The address as given is only legal with SMTPUTF8 (RFC 6531 3.4) when
	 * it has non-ASCII; an A-label domain alone does not need it. */
	addr_r->utf8 = has_non_ascii(s, len);
	addr_r->localpart = localpart;
	localpart = NULL;
	ret = 0;
out:
	if (ret < 0)
		mf_address_free(addr_r);
	free(localpart);
	mf_buf_free(&lp);
	return ret;
}

void mf_address_free(struct mf_address *addr)
{
	free(addr->localpart);
	free(addr->domain);
	free(addr->domain_unicode);
	addr->localpart = NULL;
	addr->domain = NULL;
	addr->domain_unicode = NULL;
	addr->utf8 = false;
	addr->literal = false;
}

char *mf_address_format(const struct mf_address *addr)
{
	struct mf_buf b;
	const char *lp = addr->localpart != NULL ? addr->localpart : "";

	mf_buf_init(&b, 0);
	if (is_dot_string(lp, strlen(lp))) {
		mf_buf_append_str(&b, lp);
	} else {
		mf_buf_append(&b, "\"", 1);
		for (const char *p = lp; *p != '\0'; p++) {
			if (*p == '"' || *p == '\\')
				mf_buf_append(&b, "\\", 1);
			mf_buf_append(&b, p, 1);
		}
		mf_buf_append(&b, "\"", 1);
	}
	mf_buf_append(&b, "@", 1);
	mf_buf_append_str(&b, addr->domain != NULL ? addr->domain : "");
	return mf_buf_steal(&b);
}

char *mf_address_strip_separator(const char *localpart, const char *separator)
{
	const char *p;

	if (separator == NULL || separator[0] == '\0')
		return mf_xstrdup(localpart);
	p = strstr(localpart, separator);
	/* "+tag" alone is a whole localpart, not an empty one with a tag */
	if (p == NULL || p == localpart)
		return mf_xstrdup(localpart);
	return mf_xstrndup(localpart, (size_t)(p - localpart));
}

/* Simple case folding approximated as tolower(toupper(c)): it maps final
 * sigma, long s, Kelvin sign and the like onto one form, as CaseFolding.txt
 * status C+S does, without the full foldings (no "ß" = "ss"). */
static ucs4_t simple_fold(ucs4_t uc)
{
	return uc_tolower(uc_toupper(uc));
}

bool mf_localpart_equal(const char *a, const char *b, bool case_sensitive)
{
	size_t alen = strlen(a), blen = strlen(b);
	uint8_t *na = NULL, *nb = NULL;
	size_t nalen = 0, nblen = 0;
	bool equal = false;

	if (alen == blen && memcmp(a, b, alen) == 0)
		return true;
	/* u8_normalize would turn invalid bytes into U+FFFD and make
	 * different strings equal: invalid UTF-8 only matches itself */
	if (u8_check((const uint8_t *)a, alen) != NULL ||
	    u8_check((const uint8_t *)b, blen) != NULL)
		return false;
	na = u8_normalize(UNINORM_NFC, (const uint8_t *)a, alen, NULL, &nalen);
	nb = u8_normalize(UNINORM_NFC, (const uint8_t *)b, blen, NULL, &nblen);
	if (na == NULL || nb == NULL)
		goto out;
	if (case_sensitive) {
		equal = nalen == nblen && memcmp(na, nb, nalen) == 0;
		goto out;
	}
	{
		const uint8_t *pa = na, *pb = nb, *ea = na + nalen, *eb = nb + nblen;
		while (pa < ea && pb < eb) {
			ucs4_t ca, cb;
			pa += u8_mbtouc(&ca, pa, (size_t)(ea - pa));
			pb += u8_mbtouc(&cb, pb, (size_t)(eb - pb));
			if (simple_fold(ca) != simple_fold(cb))
				goto out;
		}
		equal = pa == ea && pb == eb;
	}
out:
	free(na);
	free(nb);
	return equal;
}
