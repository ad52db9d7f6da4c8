/* dmarc: Domain-based Message Authentication, Reporting, and Conformance
 * as RFC 9989 (which obsoletes RFC 7489) defines it: policy record
 * parsing, policy discovery and Organizational Domains by the DNS Tree Walk
 * (4.10), SPF and DKIM identifier alignment (4.4), the DMARC result and
 * the policy to apply; and the author domain and mailing-list signs of a
 * message.
 *
 * Every DNS query goes through the resolver (resolver.h). */
#ifndef DMARC_H
#define DMARC_H

#include <stdbool.h>
#include <stddef.h>

#include "dkim.h"
#include "resolver.h"
#include "spf.h"

#define DMARC_RECORD_MAX 4096   /* bytes of a policy record we parse */
#define DMARC_URIS_MAX 16       /* rua= / ruf= URIs kept */
#define DMARC_URI_MAX 512
/* RFC 9989 4.10: a Tree Walk makes at most 8 queries. */
#define DMARC_TREE_WALK_MAX 8
/* Distinct names queried for one evaluation (author and identifiers). */
#define DMARC_QUERIES_MAX 40
/* Author addresses looked at in a From header field. */
#define DMARC_FROM_ADDRESSES_MAX 32
#define DMARC_FROM_FIELD_MAX 16384

enum dmarc_policy {
	DMARC_POLICY_NONE,
	DMARC_POLICY_QUARANTINE,
	DMARC_POLICY_REJECT,
};

struct dmarc_record {
	enum dmarc_policy p, sp, np;
	bool p_valid;          /* p= present and valid */
	bool sp_set, np_set;   /* present and valid */
	bool sp_invalid, np_invalid;  /* present but invalid */
	char psd;              /* 'y', 'n' or 'u' (default) */
	bool testing;          /* t=y */
	bool adkim_strict, aspf_strict;
	char **rua;            /* the URIs as written, obsolete "!size" removed */
	size_t rua_count;
	char **ruf;
	size_t ruf_count;
	char *fo;              /* "0" by default */
	bool pct_seen;         /* the historic pct= tag (ignored, RFC 9989 A.6) */
};

/* Whether a TXT record is a DMARC policy record: its first tag is
 * v=DMARC1 (case-sensitive, RFC 9989 4.7). */
bool dmarc_record_is_dmarc(const char *text, size_t len);
/* Parses a record that dmarc_record_is_dmarc accepts.  Unknown tags (pct
 * among them) are ignored and invalid values fall back to the defaults
 * (RFC 9989 4.8).  Returns 0 and record_r (free with dmarc_record_free),
 * or -1 with error_r when the record is not a DMARC record at all. */
int dmarc_record_parse(const char *text, size_t len, struct dmarc_record **record_r,
		       const char **error_r);
void dmarc_record_free(struct dmarc_record **record);

const char *dmarc_policy_name(enum dmarc_policy policy);

/* What the message gives DMARC. */
struct dmarc_message_info {
	char *from_domain;     /* author domain, lower-case A-labels; NULL: none */
	size_t from_domains;   /* distinct author domains (RFC 9989 5.3.1) */
	bool from_fields_multiple;  /* more than one From header field */
	char *list_id;         /* List-Id value (unfolded), NULL: none */
	bool list;             /* List-Id, List-Post or List-Unsubscribe present */
};

/* Extracts the author domain(s) and the mailing-list header fields.
 * Always fills info_r (free with dmarc_message_info_clear). */
void dmarc_message_info(const char *msg, size_t len, struct dmarc_message_info *info_r);
void dmarc_message_info_clear(struct dmarc_message_info *info);

enum dmarc_result {
	DMARC_RESULT_NONE,       /* no author domain or no policy record */
	DMARC_RESULT_PASS,
	DMARC_RESULT_FAIL,
	DMARC_RESULT_TEMPERROR,  /* a needed DNS query failed for now */
	DMARC_RESULT_PERMERROR,  /* several author domains */
};

struct dmarc_input {
	const char *from_domain;    /* the author domain (A-labels); NULL: none */
	size_t from_domains;        /* > 1: DMARC cannot be evaluated */
	enum spf_result spf;        /* the MAIL FROM (or HELO for <>) result */
	const char *spf_domain;     /* the domain SPF checked */
	const struct dkim_result *dkim;
	size_t dkim_count;
};

struct dmarc_evaluation {
	enum dmarc_result result;
	char *domain;               /* the author domain */
	char *policy_domain;        /* where the record applied was found */
	/* The author's Organizational Domain; the author domain itself when
	 * no Tree Walk was needed (4.10.2). */
	char *org_domain;
	struct dmarc_record *record;  /* the record applied; NULL without */
	enum dmarc_policy published;  /* p, sp or np as it applies */
	/* What to do with a failing message: published, one level lower with
	 * t=y (RFC 9989 4.7 "t"); NONE unless result is FAIL. */
	enum dmarc_policy disposition;
	bool spf_aligned, dkim_aligned;
	char *dkim_domain;          /* the d= that aligned; NULL when none */
	bool authentic;             /* every DMARC DNS answer was DNSSEC-authentic */
	bool author_nxdomain;       /* np= applied */
	char *reason;               /* why none / temperror / fail, for logs */
};

/* Evaluates DMARC (RFC 9989 5.3).  Always fills eval_r (free with
 * dmarc_evaluation_clear). */
void dmarc_evaluate(struct dns_resolver *r, const struct dmarc_input *in,
		    struct dmarc_evaluation *eval_r);
void dmarc_evaluation_clear(struct dmarc_evaluation *eval);

/* The Organizational Domain of domain by the Tree Walk (RFC 9989 4.10.2).
 * Returns 0 and org_r (caller frees), or -1 on a temporary DNS error. */
int dmarc_org_domain(struct dns_resolver *r, const char *domain, char **org_r);

/* "none", "pass", "fail", "temperror", "permerror". */
const char *dmarc_result_name(enum dmarc_result result);

#endif
