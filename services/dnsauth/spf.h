/* spf: Sender Policy Framework (RFC 7208): record parsing, macro
 * expansion and check_host() evaluation, and the HELO and MAIL FROM checks
 * of an incoming SMTP transaction.
 *
 * Every DNS query goes through the resolver (resolver.h), so the whole
 * evaluation runs the same against libunbound and against the memory zones
 * of the unit tests and the RFC 7208 suite. */
#ifndef DNS_SPF_H
#define DNS_SPF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "resolver.h"

/* RFC 7208 4.6.4: terms causing DNS queries, and "void" answers. */
#define SPF_LOOKUP_LIMIT 10
#define SPF_VOID_LOOKUP_LIMIT 2
/* RFC 7208 4.6.4: MX names per "mx", PTR names per "ptr" / %{p}. */
#define SPF_MX_NAMES_MAX 10
#define SPF_PTR_NAMES_MAX 10
/* Our own limits on what DNS hands us. */
#define SPF_RECORD_MAX 8192
#define SPF_TERMS_MAX 256
#define SPF_EXPLANATION_MAX 1024
/* A macro's DIGIT transformer; larger values mean "all parts". */
#define SPF_MACRO_PARTS_MAX 128

enum spf_result {
	SPF_NONE,
	SPF_NEUTRAL,
	SPF_PASS,
	SPF_FAIL,
	SPF_SOFTFAIL,
	SPF_TEMPERROR,
	SPF_PERMERROR,
};

enum spf_mech {
	SPF_MECH_ALL,
	SPF_MECH_INCLUDE,
	SPF_MECH_A,
	SPF_MECH_MX,
	SPF_MECH_PTR,
	SPF_MECH_IP4,
	SPF_MECH_IP6,
	SPF_MECH_EXISTS,
};

struct spf_term {
	enum spf_mech mech;
	char qualifier;       /* '+', '-', '~' or '?' */
	char *domain_spec;    /* NULL when absent (a, mx, ptr default to <domain>) */
	unsigned cidr4;       /* a, mx, ip4: 32 when absent */
	unsigned cidr6;       /* a, mx, ip6: 128 when absent */
	struct dns_ip net;    /* ip4, ip6 */
	char *text;           /* the term as written */
};

struct spf_record {
	struct spf_term *terms;
	size_t count;
	char *redirect;       /* domain-specs; NULL when absent */
	char *exp;
};

/* Whether text (a TXT record's strings concatenated) is an SPF record:
 * "v=spf1" followed by a space or the end (RFC 7208 4.5). */
bool spf_record_is_spf(const char *text, size_t len);
/* Parses a whole record ("v=spf1 ..."), checking the syntax of every term
 * (RFC 7208 4.6, 12): unknown mechanisms, bad CIDR lengths, bad macros,
 * repeated redirect= or exp=, non-ASCII are errors.  Returns 0 and record_r
 * (free with spf_record_free), or -1 with error_r. */
int spf_record_parse(const char *text, size_t len, struct spf_record **record_r,
		     const char **error_r);
void spf_record_free(struct spf_record **record);

/* Checks macro-string syntax (RFC 7208 7.1); exp_text allows the letters
 * c, r and t that only explanations may use.  Returns 0, or -1. */
int spf_macro_check(const char *s, size_t len, bool exp_text, const char **error_r);

/* What one SMTP transaction gives SPF. */
struct spf_request {
	struct dns_ip ip;
	const char *helo;          /* as given in HELO/EHLO */
	const char *mail_from;     /* "" or NULL for the null reverse-path */
	const char *receiver;      /* our host name, for %{r}; NULL: "unknown" */
	/* Explanation for "fail" when the domain gives none; macro-expanded as
	 * explanation text.  NULL: SPF_DEFAULT_EXPLANATION. */
	const char *default_explanation;
	int64_t now;               /* for %{t}; 0: the current time */
};

#define SPF_DEFAULT_EXPLANATION "%{d} does not allow %{c} to send mail for %{s}"

struct spf_outcome {
	enum spf_result result;
	char *domain;       /* the domain checked; NULL when there was none */
	char *sender;       /* local@domain as used for macros */
	char *explanation;  /* FAIL only: exp= text or the default */
	char *problem;      /* why NONE / TEMPERROR / PERMERROR; NULL otherwise */
	char *mechanism;    /* the matching term, "redirect=..." or NULL */
	bool authentic;     /* every DNS answer used was DNSSEC-authentic */
	unsigned lookups;   /* terms that caused DNS queries */
	unsigned void_lookups;
};

/* check_host(ip, domain, sender) (RFC 7208 4).  Always fills outcome
 * (free its strings with spf_outcome_clear). */
void spf_check_host(struct dns_resolver *r, const struct spf_request *req,
		    const char *domain, const char *sender, struct spf_outcome *outcome_r);
void spf_outcome_clear(struct spf_outcome *outcome);

/* Both identities of a transaction (RFC 7208 2.3, 2.4): helo is checked
 * when HELO is a domain name (NONE otherwise); mail_from is the check of
 * MAIL FROM, or of postmaster@HELO for the null reverse-path. */
struct spf_verdict {
	struct spf_outcome helo;
	struct spf_outcome mail_from;
};

void spf_verify(struct dns_resolver *r, const struct spf_request *req,
		struct spf_verdict *verdict_r);
void spf_verdict_clear(struct spf_verdict *verdict);

/* "none", "neutral", "pass", "fail", "softfail", "temperror", "permerror". */
const char *spf_result_name(enum spf_result result);

#endif
