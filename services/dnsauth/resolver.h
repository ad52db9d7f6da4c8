/* resolver: the DNS layer of dnsauth.  Every lookup of every dnsauth module
 * (SPF, iprev, DNSBL, DKIM, DMARC, the dns.v1 API) goes through it.
 *
 * Two backends behind one handle:
 * - libunbound: a DNSSEC-validating stub, either a full recursive resolver
 *   (root hints) or forwarding to given address@port servers, optionally
 *   from an explicitly named resolv.conf.  The machine's /etc/resolv.conf is
 *   never read unless it is named.  DNSSEC validation happens when a trust
 *   anchor file is given; without one no answer is ever "authentic".
 *   Answers are cached by libunbound (its message and RRset caches, bounded,
 *   honouring TTLs).  Each lookup has a deadline.
 * - memory: zone data held in memory, for unit tests and the RFC 7208
 *   suite.  It follows CNAMEs, can mark names as timing out and can claim
 *   that every answer is authentic.
 *
 * Every lookup ends in exactly one of four states, kept distinct because
 * the protocols on top treat them differently (RFC 7208 4.4 and 5, RFC 7489
 * / 9989 policy discovery, RFC 7672 DANE): records, no data (the name
 * exists, no records of the type), NXDOMAIN, or a temporary error (server
 * failure, timeout, DNSSEC-bogus answer, network trouble).
 *
 * Handles are safe to use from many threads at once. */
#ifndef DNS_RESOLVER_H
#define DNS_RESOLVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Longest name in presentation form without the trailing dot (RFC 1035). */
#define DNS_NAME_MAX 253
#define DNS_LABEL_MAX 63
/* Records returned per lookup; the rest are dropped. */
#define DNS_RECORDS_MAX 256
/* TXT record: all strings of one record concatenated. */
#define DNS_TXT_MAX 65535
/* CNAME links followed by the memory backend. */
#define DNS_CNAME_DEPTH_MAX 8
/* Default and ceiling for the per-lookup deadline. */
#define DNS_TIMEOUT_DEFAULT_MS 5000
#define DNS_TIMEOUT_MAX_MS 60000
/* Forwarders in the settings. */
#define DNS_FORWARD_MAX 8

/* Record types, by their numbers. */
enum dns_type {
	DNS_TYPE_A = 1,
	DNS_TYPE_NS = 2,
	DNS_TYPE_CNAME = 5,
	DNS_TYPE_PTR = 12,
	DNS_TYPE_MX = 15,
	DNS_TYPE_TXT = 16,
	DNS_TYPE_AAAA = 28,
	DNS_TYPE_TLSA = 52,
};

enum dns_status {
	DNS_STATUS_OK = 0,    /* count >= 1 records */
	DNS_STATUS_NODATA,    /* the name exists but has no records of the type */
	DNS_STATUS_NXDOMAIN,  /* the name does not exist (RCODE 3) */
	DNS_STATUS_TEMPFAIL,  /* SERVFAIL, timeout, bogus, network: try later */
};

/* An IPv4 or IPv6 address.  IPv4-mapped IPv6 addresses are stored as IPv4. */
struct dns_ip {
	int family;        /* AF_INET or AF_INET6 */
	uint8_t addr[16];  /* 4 or 16 bytes used */
};

struct dns_record {
	uint16_t type;
	uint32_t ttl;
	/* A, AAAA */
	struct dns_ip ip;
	/* MX exchange, PTR, CNAME target: presentation form, no trailing dot,
	 * bytes outside letters/digits/-/_ escaped as \DDD; NULL otherwise. */
	char *name;
	uint16_t preference;  /* MX */
	/* TXT: the record's strings concatenated (RFC 7208 3.3, RFC 6376
	 * 3.6.2.2), NUL-terminated; text_len excludes the NUL and the text may
	 * hold NUL bytes.  TLSA: the certificate association data. */
	uint8_t *data;
	size_t data_len;
	uint8_t tlsa_usage, tlsa_selector, tlsa_mtype;
};

struct dns_answer {
	enum dns_status status;
	/* The answer was DNSSEC-validated ("secure"); false when no trust
	 * anchor covers the name or validation is not configured. */
	bool authentic;
	/* The name after CNAMEs; NULL when it is the name asked for. */
	char *canonname;
	struct dns_record *records;
	size_t count;
	/* For TEMPFAIL: why ("timeout", "SERVFAIL", "DNSSEC bogus: ..."). */
	char *error;
};

enum dns_resolver_mode {
	DNS_RESOLVER_RECURSIVE,   /* from the root, with built-in root hints */
	DNS_RESOLVER_FORWARD,     /* to the forward[] servers */
	DNS_RESOLVER_RESOLVCONF,  /* to the servers of the named resolv.conf */
	DNS_RESOLVER_NONE,        /* no DNS: every lookup is TEMPFAIL at once (no network) */
};

struct dns_resolver_settings {
	enum dns_resolver_mode mode;
	const char *const *forward;  /* "127.0.0.1@5353", "::1" (port 53) */
	size_t forward_count;
	const char *resolvconf;      /* RESOLVCONF: the file to read */
	const char *trust_anchor;    /* file of DS/DNSKEY records; NULL: no validation */
	unsigned timeout_ms;         /* per lookup; 0: DNS_TIMEOUT_DEFAULT_MS */
};

struct dns_resolver;

/* Creates a libunbound resolver.  Returns 0 and resolver_r (free with
 * dns_resolver_free), or -1 with error_r (bad forwarder, unreadable trust
 * anchor or resolv.conf). */
int dns_resolver_create(const struct dns_resolver_settings *settings,
			struct dns_resolver **resolver_r, const char **error_r);
/* Creates an empty memory resolver: every name is NXDOMAIN until added. */
struct dns_resolver *dns_resolver_create_memory(void);
void dns_resolver_free(struct dns_resolver **resolver);

/* Memory backend only (setup, before lookups start; not thread-safe).
 * value is in presentation form: A "192.0.2.1", AAAA "2001:db8::1", MX
 * "10 mx.example.com", PTR/CNAME/NS "host.example.com", TXT the text of a
 * single-string record, TLSA "3 1 1 <hex>".  Returns 0, or -1 with error_r. */
int dns_memory_add(struct dns_resolver *r, const char *name, uint16_t type,
		   const char *value, const char **error_r);
/* A TXT record of several strings (lengths given; strings may hold NUL). */
void dns_memory_add_txt(struct dns_resolver *r, const char *name,
			const char *const *strings, const size_t *lens, size_t n);
/* Lookups of name for type (0: for every type that has no records at the
 * name) fail with TEMPFAIL "timeout".  Also makes the name exist. */
void dns_memory_add_timeout(struct dns_resolver *r, const char *name, uint16_t type);
/* Makes the name exist (lookups answer NODATA rather than NXDOMAIN). */
void dns_memory_add_name(struct dns_resolver *r, const char *name);
/* Every answer claims to be DNSSEC-authentic (or not, the default). */
void dns_memory_set_authentic(struct dns_resolver *r, bool authentic);
/* Lookups made so far (both backends), for tests and metrics. */
uint64_t dns_resolver_lookups(struct dns_resolver *r);

/* Looks up name (trailing dot optional) for type.  Always returns an answer
 * (free with dns_answer_free); a malformed name (empty label, label over 63,
 * name over 253 octets) is TEMPFAIL "bad name" without a query.  Records of
 * other types in the answer (e.g. the CNAMEs) are not included. */
struct dns_answer *dns_lookup(struct dns_resolver *r, const char *name, uint16_t type);
void dns_answer_free(struct dns_answer **answer);

/* Decodes one record's rdata as the wire carries it (names uncompressed,
 * as libunbound hands them over) into rec_r.  Returns 0, or -1 when
 * malformed; either way free rec_r's strings with dns_record_clear. */
int dns_record_decode(uint16_t type, const uint8_t *rdata, size_t len, struct dns_record *rec_r);
void dns_record_clear(struct dns_record *rec);

/* Names for logs and the API: "ok", "nodata", "nxdomain", "tempfail". */
const char *dns_status_name(enum dns_status status);
/* "A", "MX", ...; NULL for types this module does not know. */
const char *dns_type_name(uint16_t type);
/* The type for "A", "mx", ...; 0 when unknown. */
uint16_t dns_type_by_name(const char *name);

/* Parses an IPv4 or IPv6 address (no brackets, no zone); IPv4-mapped
 * addresses become IPv4.  Returns 0, or -1. */
int dns_ip_parse(const char *s, struct dns_ip *ip_r);
/* Writes the address ("192.0.2.1", "2001:db8::1") into buf (>= 46 bytes). */
const char *dns_ip_format(const struct dns_ip *ip, char *buf, size_t size);
bool dns_ip_equal(const struct dns_ip *a, const struct dns_ip *b);
/* Whether a and b agree in their first bits bits (same family required). */
bool dns_ip_prefix_match(const struct dns_ip *a, const struct dns_ip *b, unsigned bits);
/* The reversed form: "1.2.0.192" or the 32 nibbles "b.a.9.8...." (without
 * the in-addr.arpa / ip6.arpa suffix), for PTR and DNSBL names; buf must
 * hold at least 64 bytes. */
const char *dns_ip_reverse(const struct dns_ip *ip, char *buf, size_t size);

/* Checks that name is a syntactically valid domain name for a lookup:
 * 1..253 octets (a trailing dot allowed), labels of 1..63 octets.  Returns
 * 0, or -1 with error_r. */
int dns_name_check(const char *name, const char **error_r);

#endif
