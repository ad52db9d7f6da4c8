/* dkim: DomainKeys Identified Mail (RFC 6376, RFC 8301, RFC 8463):
 * parsing of DKIM-Signature header fields and key records, simple and
 * relaxed canonicalization, verification of every signature of a message
 * (rsa-sha256, ed25519-sha256; rsa-sha1 only when the settings allow it),
 * and signing.
 *
 * Key records are looked up through the resolver (resolver.h), so the same
 * code runs against libunbound and the memory zones of the unit tests.
 * Messages may come with CRLF or bare LF line ends; both are canonicalized
 * as CRLF (RFC 6376 3.4 works on CRLF lines). */
#ifndef DKIM_H
#define DKIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "resolver.h"

/* Named limits on what a message and DNS hand us. */
#define DKIM_HEADER_FIELDS_MAX 1000   /* header fields looked at in a message */
#define DKIM_SIGNATURE_MAX 8192       /* bytes in one DKIM-Signature value */
#define DKIM_TAGS_MAX 64              /* tags in a tag-list */
#define DKIM_SIGNED_HEADERS_MAX 128   /* names in h= */
#define DKIM_SIGNATURES_MAX 16        /* signatures verified per message */
#define DKIM_KEY_RECORD_MAX 8192      /* bytes in a key record */
#define DKIM_RSA_MAX_BITS 8192        /* larger keys are refused (CPU) */
/* RFC 8301 3.2: keys under 1024 bits must not be considered valid. */
#define DKIM_RSA_MIN_BITS_DEFAULT 1024
#define DKIM_SIGN_HEADERS_MAX 64      /* header names a signer is given */

enum dkim_algorithm {
	DKIM_ALG_RSA_SHA256,
	DKIM_ALG_ED25519_SHA256,  /* RFC 8463 */
	DKIM_ALG_RSA_SHA1,        /* RFC 8301: historic */
};

enum dkim_canon {
	DKIM_CANON_SIMPLE,
	DKIM_CANON_RELAXED,
};

enum dkim_key_type {
	DKIM_KEY_RSA,
	DKIM_KEY_ED25519,
};

/* A parsed DKIM-Signature value (RFC 6376 3.5). */
struct dkim_signature {
	enum dkim_algorithm algorithm;
	uint8_t *b;              /* the signature */
	size_t b_len;
	uint8_t *bh;             /* the body hash */
	size_t bh_len;
	enum dkim_canon header_canon, body_canon;
	char *domain;            /* d=, lower-case */
	char *selector;          /* s=, lower-case */
	char **headers;          /* h=, as written */
	size_t headers_count;
	char *identity;          /* i=; "@" d= when absent */
	int64_t length;          /* l=; -1 when absent */
	int64_t timestamp;       /* t=; -1 when absent */
	int64_t expiration;      /* x=; -1 when absent */
	/* Where b='s value lies within the parsed text, so that verification
	 * can hash the field with it emptied (RFC 6376 3.7). */
	size_t b_value_start, b_value_end;
};

/* Parses the value of a DKIM-Signature header field (the text after the
 * colon, folded or not).  Checks everything RFC 6376 6.1.1 asks for that
 * needs no DNS: v=1, required tags, known a= and c=, h= with From, i= in
 * d=, x= after t=.  Returns 0 and sig_r (free with dkim_signature_free),
 * or -1 with error_r. */
int dkim_signature_parse(const char *value, size_t len, struct dkim_signature **sig_r,
			 const char **error_r);
void dkim_signature_free(struct dkim_signature **sig);

/* A parsed key record (RFC 6376 3.6.1, RFC 8463 4). */
struct dkim_key {
	enum dkim_key_type type;
	bool hash_sha1, hash_sha256;  /* h=; both when absent */
	bool testing;                 /* t=y */
	bool strict;                  /* t=s: i= must be exactly in d= */
	bool email;                   /* s= allows email ("*" or "email") */
	uint8_t *p;                   /* the public key; NULL/0: revoked */
	size_t p_len;
};

/* Parses a key record.  Unknown tags and flags are ignored (RFC 6376
 * 3.6.1); v= other than DKIM1, unknown k=, missing p= are errors.
 * Returns 0 and key_r (free with dkim_key_free), or -1 with error_r. */
int dkim_key_parse(const char *text, size_t len, struct dkim_key **key_r, const char **error_r);
void dkim_key_free(struct dkim_key **key);

/* Results per signature, with the RFC 8601 2.7.1 names. */
enum dkim_status {
	DKIM_PASS,
	DKIM_FAIL,        /* the signature or body hash does not verify, key revoked */
	DKIM_NEUTRAL,     /* not used by the verifier; for completeness */
	DKIM_POLICY,      /* valid but refused by policy: sha1, l=, weak key */
	DKIM_TEMPERROR,   /* the key could not be retrieved for now */
	DKIM_PERMERROR,   /* syntax, no key, expired, key unusable */
};

struct dkim_verify_settings {
	bool allow_sha1;     /* accept rsa-sha1 (reported as such); default no */
	/* l=: false refuses signatures with l= (DKIM_POLICY), true verifies
	 * only the first l= octets and marks the result partial. */
	bool allow_length;
	unsigned rsa_min_bits;  /* 0: DKIM_RSA_MIN_BITS_DEFAULT */
	int64_t now;            /* seconds since the epoch; 0: the clock */
	size_t max_signatures;  /* 0: DKIM_SIGNATURES_MAX */
};

struct dkim_result {
	enum dkim_status status;
	char *domain;        /* d=; NULL when the signature did not parse */
	char *selector;
	char *identity;      /* i= (or "@" d=) */
	char *algorithm;     /* "rsa-sha256", "ed25519-sha256", "rsa-sha1" */
	char *b_prefix;      /* first 8 characters of b= (RFC 6008 header.b) */
	bool authentic;      /* the key record was DNSSEC-authentic */
	bool testing;        /* the key has t=y */
	bool partial;        /* l= covered less than the whole body */
	char *error;         /* why it did not pass; NULL for pass */
};

/* Verifies every DKIM-Signature of msg (up to max_signatures; later ones
 * are reported as DKIM_POLICY).  results_r (free with dkim_results_free)
 * holds one result per signature in header order, count_r of them (0: the
 * message is unsigned). */
void dkim_verify(struct dns_resolver *r, const struct dkim_verify_settings *settings,
		 const char *msg, size_t len, struct dkim_result **results_r, size_t *count_r);
void dkim_results_free(struct dkim_result **results, size_t count);

/* "pass", "fail", "neutral", "policy", "temperror", "permerror". */
const char *dkim_status_name(enum dkim_status status);
const char *dkim_algorithm_name(enum dkim_algorithm alg);

/* A private key for signing, loaded from a PEM file (PKCS#8, as
 * libshared/keygen.h writes; RSA and Ed25519). */
struct dkim_privkey;

/* Returns 0 and key_r (free with dkim_privkey_free), or -1 with error_r. */
int dkim_privkey_load(const char *path, struct dkim_privkey **key_r, const char **error_r);
int dkim_privkey_load_pem(const char *pem, size_t len, struct dkim_privkey **key_r,
			  const char **error_r);
void dkim_privkey_free(struct dkim_privkey **key);
enum dkim_key_type dkim_privkey_type(const struct dkim_privkey *key);

/* The header fields signed by default (RFC 6376 5.4.1 recommendations),
 * each oversigned: counted once more than it appears, so that no further
 * instance can be added without breaking the signature. */
extern const char *const dkim_default_headers[];
extern const size_t dkim_default_headers_count;

struct dkim_sign_settings {
	const char *domain;     /* d=, A-labels */
	const char *selector;   /* s= */
	const struct dkim_privkey *key;
	const char *const *headers;  /* NULL: dkim_default_headers; must hold From */
	size_t headers_count;
	enum dkim_canon header_canon, body_canon;  /* default relaxed/relaxed (0 is simple!) */
	bool canon_set;         /* false: relaxed/relaxed whatever the fields say */
	int64_t now;            /* t=; 0: the clock */
	uint64_t expiration_s;  /* x= = t= + this; 0: no x= */
};

/* Signs msg.  Returns 0 and header_r, the whole header field
 * "DKIM-Signature: ...\r\n" folded at 78 columns, to prepend (caller
 * frees), or -1 with error_r. */
int dkim_sign(const struct dkim_sign_settings *settings, const char *msg, size_t len,
	      char **header_r, const char **error_r);

/* --- building blocks, exposed for tests --- */

/* Canonicalizes a body (CRLF lines) into out (caller frees); the result
 * is truncated to limit octets when limit >= 0. */
char *dkim_canon_body(enum dkim_canon canon, const char *body, size_t len, size_t *out_len_r);
/* Canonicalizes one header field (name ":" value, with its CRLF) into a
 * newly allocated string ending in CRLF. */
char *dkim_canon_header(enum dkim_canon canon, const char *field, size_t len, size_t *out_len_r);

/* Base64 (RFC 2045 alphabet); decoding skips whitespace.  Return a newly
 * allocated buffer, or NULL (decode) on bad input. */
uint8_t *dkim_base64_decode(const char *s, size_t len, size_t *out_len_r);
char *dkim_base64_encode(const uint8_t *data, size_t len);

#endif
