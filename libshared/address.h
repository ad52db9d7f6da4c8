/* address: email addresses (RFC 5321 Mailbox, RFC 6531 SMTPUTF8) and domains.
 *
 * Parsing accepts dot-string and quoted-string localparts, UTF-8 localparts
 * (NFC-normalised), domains in U-labels or A-labels (IDNA2008 via libidn2),
 * and address literals ([1.2.3.4], [IPv6:...]).  The canonical form has the
 * localpart unquoted when possible and the domain in lower-case A-labels. */
#ifndef MF_ADDRESS_H
#define MF_ADDRESS_H

#include <stdbool.h>
#include <stddef.h>

#define MF_ADDRESS_LOCALPART_MAX 64   /* RFC 5321 4.5.3.1.1 (octets) */
#define MF_ADDRESS_DOMAIN_MAX 255     /* RFC 5321 4.5.3.1.2 */
#define MF_ADDRESS_MAX 254            /* RFC 5321 4.5.3.1.3 path minus <> */

struct mf_address {
	char *localpart;       /* unquoted, NFC UTF-8; owned */
	char *domain;          /* lower-case A-labels, or the literal; owned */
	char *domain_unicode;  /* lower-case U-labels for display; owned */
	bool utf8;             /* localpart or domain needs SMTPUTF8 */
	bool literal;          /* domain is an address literal */
};

/* Parses "local@domain" of length len (not NUL-terminated).
 * Returns 0 and fills addr_r (free with mf_address_free), or -1 with error_r. */
int mf_address_parse(const char *s, size_t len, struct mf_address *addr_r,
		     const char **error_r);
void mf_address_free(struct mf_address *addr);

/* Parses a domain name (no literal).  Returns 0 with newly allocated
 * lower-case A-label (ascii_r) and U-label (unicode_r) forms, or -1. */
int mf_domain_parse(const char *s, size_t len, char **ascii_r, char **unicode_r,
		    const char **error_r);

/* Returns "localpart@domain" with the localpart quoted only if needed;
 * caller frees. */
char *mf_address_format(const struct mf_address *addr);

/* Removes a catch-all/subaddress suffix: with separator "+", "a+tag" becomes
 * "a".  Returns a newly allocated localpart; caller frees. */
char *mf_address_strip_separator(const char *localpart, const char *separator);

/* Compares localparts as configured: case-insensitively (Unicode simple case
 * folding on NFC) unless case_sensitive.  Returns true when equal. */
bool mf_localpart_equal(const char *a, const char *b, bool case_sensitive);

#endif
