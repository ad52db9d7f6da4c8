/* dkim: canonicalization, verification and signing (RFC 6376, 8301, 8463). */
#include "dkim.h"
#include "dkim_private.h"

#include "buf.h"
#include "error.h"

#include <ctype.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* A signature with t= further ahead than this is refused: clocks drift,
 * but a signature from the far future is made up (RFC 6376 3.5 t=). */
#define DKIM_FUTURE_SKEW_S 3600
/* Column at which signature header fields are folded. */
#define DKIM_FOLD_COLUMN 76

struct dkim_privkey {
	EVP_PKEY *pkey;
	enum dkim_key_type type;
};

static bool is_wsp(char c)
{
	return c == ' ' || c == '\t';
}

/* --- message splitting --------------------------------------------------- */

static bool needs_crlf_copy(const char *msg, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		if (msg[i] == '\n' && (i == 0 || msg[i - 1] != '\r'))
			return true;
	}
	return false;
}

static char *crlf_copy(const char *msg, size_t len, size_t *len_r)
{
	struct mf_buf b;

	size_t start = 0;

	mf_buf_init(&b, 0);
	for (size_t i = 0; i < len; i++) {
		if (msg[i] == '\n' && (i == 0 || msg[i - 1] != '\r')) {
			mf_buf_append(&b, msg + start, i - start);
			mf_buf_append(&b, "\r", 1);
			start = i;
		}
	}
	mf_buf_append(&b, msg + start, len - start);
	*len_r = b.len;
	if (b.data == NULL)
		return mf_xstrdup("");
	return mf_buf_steal(&b);
}

/* Returns the offset just past the CRLF ending the line at pos, or len. */
static size_t line_end(const char *s, size_t len, size_t pos)
{
	for (size_t i = pos; i + 1 < len; i++) {
		if (s[i] == '\r' && s[i + 1] == '\n')
			return i + 2;
	}
	return len;
}

int dkim_message_parse(const char *msg, size_t len, struct dkim_message *m, const char **error_r)
{
	size_t pos = 0, cap = 0;

	memset(m, 0, sizeof(*m));
	if (needs_crlf_copy(msg, len)) {
		m->owned = crlf_copy(msg, len, &m->len);
		m->data = m->owned;
	} else {
		m->data = msg;
		m->len = len;
	}
	while (pos < m->len) {
		const char *s = m->data;
		size_t end, colon;

		if (pos + 1 < m->len && s[pos] == '\r' && s[pos + 1] == '\n') {
			pos += 2;  /* the empty line: the body follows */
			break;
		}
		end = line_end(s, m->len, pos);
		while (end < m->len && is_wsp(s[end]))
			end = line_end(s, m->len, end);  /* continuation lines */
		colon = pos;
		while (colon < end && s[colon] != ':')
			colon++;
		if (colon < end && !is_wsp(s[pos])) {
			struct dkim_field *f;
			size_t name_len = colon - pos;

			if (m->count == DKIM_HEADER_FIELDS_MAX) {
				*error_r = "too many header fields";
				dkim_message_clear(m);
				return -1;
			}
			if (m->count == cap) {
				cap = cap == 0 ? 32 : cap * 2;
				m->fields = mf_xrealloc(m->fields, cap * sizeof(*m->fields));
			}
			while (name_len > 0 && is_wsp(s[pos + name_len - 1]))
				name_len--;
			f = &m->fields[m->count++];
			f->start = s + pos;
			f->len = end - pos;
			f->name_len = name_len;
			f->value = s + colon + 1;
			f->value_len = end - colon - 1;
			if (f->value_len >= 2 && s[end - 2] == '\r' && s[end - 1] == '\n')
				f->value_len -= 2;
		}
		/* A line without a colon is not a header field; it is hashed by
		 * nobody, as h= can only name fields. */
		pos = end;
	}
	m->body = m->data + pos;
	m->body_len = m->len - pos;
	return 0;
}

void dkim_message_clear(struct dkim_message *m)
{
	free(m->owned);
	free(m->fields);
	memset(m, 0, sizeof(*m));
}

bool dkim_field_is(const struct dkim_field *f, const char *name)
{
	size_t n = strlen(name);

	return f->name_len == n && strncasecmp(f->start, name, n) == 0;
}

/* --- canonicalization (RFC 6376 3.4) ------------------------------------- */

char *dkim_canon_header(enum dkim_canon canon, const char *field, size_t len, size_t *out_len_r)
{
	struct mf_buf b;
	size_t i = 0, colon, vend;
	bool space = false;

	mf_buf_init(&b, 0);
	if (canon == DKIM_CANON_SIMPLE) {
		mf_buf_append(&b, field, len);
		if (len < 2 || field[len - 2] != '\r' || field[len - 1] != '\n')
			mf_buf_append(&b, "\r\n", 2);
		*out_len_r = b.len;
		return mf_buf_steal(&b);
	}
	colon = 0;
	while (colon < len && field[colon] != ':')
		colon++;
	/* The name lower-cased, without whitespace before the colon. */
	for (i = 0; i < colon; i++) {
		char c = field[i];
		if (is_wsp(c) || c == '\r' || c == '\n')
			continue;
		c = (char)tolower((unsigned char)c);
		mf_buf_append(&b, &c, 1);
	}
	mf_buf_append(&b, ":", 1);
	vend = len;
	if (vend >= 2 && field[vend - 2] == '\r' && field[vend - 1] == '\n')
		vend -= 2;
	i = colon + 1;
	/* Unfold, squeeze whitespace runs to one space, drop it at both ends. */
	while (i < vend && (is_wsp(field[i]) || field[i] == '\r' || field[i] == '\n'))
		i++;
	for (; i < vend; i++) {
		char c = field[i];
		if (c == '\r' || c == '\n')
			continue;
		if (is_wsp(c)) {
			space = true;
			continue;
		}
		if (space)
			mf_buf_append(&b, " ", 1);
		space = false;
		mf_buf_append(&b, &c, 1);
	}
	mf_buf_append(&b, "\r\n", 2);
	*out_len_r = b.len;
	return mf_buf_steal(&b);
}

char *dkim_canon_body(enum dkim_canon canon, const char *body, size_t len, size_t *out_len_r)
{
	struct mf_buf b;
	size_t pos = 0, keep;

	mf_buf_init(&b, 0);
	while (pos < len) {
		size_t end = line_end(body, len, pos);
		size_t content_end = end;
		bool crlf = end - pos >= 2 && body[end - 2] == '\r' && body[end - 1] == '\n';

		if (crlf)
			content_end -= 2;
		if (canon == DKIM_CANON_SIMPLE) {
			mf_buf_append(&b, body + pos, content_end - pos);
		} else {
			bool space = false;
			size_t ce = content_end;
			while (ce > pos && is_wsp(body[ce - 1]))
				ce--;
			for (size_t i = pos; i < ce;) {
				size_t run = i;
				if (is_wsp(body[i])) {
					space = true;
					i++;
					continue;
				}
				if (space)
					mf_buf_append(&b, " ", 1);
				space = false;
				while (run < ce && !is_wsp(body[run]))
					run++;
				mf_buf_append(&b, body + i, run - i);
				i = run;
			}
		}
		/* A last line without CRLF is treated as if it had one. */
		mf_buf_append(&b, "\r\n", 2);
		pos = end;
	}
	/* Drop empty lines at the end. */
	keep = b.len;
	while (keep >= 4 && memcmp(b.data + keep - 4, "\r\n\r\n", 4) == 0)
		keep -= 2;
	if (keep == 2 && b.data != NULL && memcmp(b.data, "\r\n", 2) == 0)
		keep = 0;
	b.len = keep;
	/* An empty body is CRLF for simple and empty for relaxed (RFC 6376
	 * 3.4.3, 3.4.4 with erratum 1384). */
	if (keep == 0 && canon == DKIM_CANON_SIMPLE)
		mf_buf_append(&b, "\r\n", 2);
	*out_len_r = b.len;
	if (b.data == NULL)
		return mf_xstrdup("");
	b.data[b.len] = '\0';
	return mf_buf_steal(&b);
}

/* --- hashing ------------------------------------------------------------- */

static const EVP_MD *alg_md(enum dkim_algorithm alg)
{
	return alg == DKIM_ALG_RSA_SHA1 ? EVP_sha1() : EVP_sha256();
}

static int digest(const EVP_MD *md, const void *data, size_t len, uint8_t *out, unsigned *out_len)
{
	return EVP_Digest(data, len, out, out_len, md, NULL) == 1 ? 0 : -1;
}

/* Hashes the header fields named by names (bottom-up instance selection,
 * RFC 6376 5.4.2), then sig_field (already with b= emptied) without its
 * CRLF. */
static int header_hash(const struct dkim_message *m, enum dkim_canon canon, const EVP_MD *md,
		       char *const *names, size_t count, const char *sig_field, size_t sig_len,
		       uint8_t *out, unsigned *out_len)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	bool *used = mf_xcalloc(m->count + 1, sizeof(*used));
	char *c = NULL;
	size_t cl;
	int ret = -1;

	if (ctx == NULL || EVP_DigestInit_ex(ctx, md, NULL) != 1)
		goto out;
	for (size_t i = 0; i < count; i++) {
		for (size_t k = m->count; k-- > 0;) {
			if (used[k] || !dkim_field_is(&m->fields[k], names[i]))
				continue;
			used[k] = true;
			c = dkim_canon_header(canon, m->fields[k].start, m->fields[k].len, &cl);
			EVP_DigestUpdate(ctx, c, cl);
			free(c);
			c = NULL;
			break;
		}
		/* A name without (another) instance contributes nothing. */
	}
	c = dkim_canon_header(canon, sig_field, sig_len, &cl);
	EVP_DigestUpdate(ctx, c, cl - 2);
	if (EVP_DigestFinal_ex(ctx, out, out_len) != 1)
		goto out;
	ret = 0;
out:
	free(c);
	free(used);
	EVP_MD_CTX_free(ctx);
	return ret;
}

/* --- verification -------------------------------------------------------- */

const char *dkim_status_name(enum dkim_status status)
{
	switch (status) {
	case DKIM_PASS: return "pass";
	case DKIM_FAIL: return "fail";
	case DKIM_NEUTRAL: return "neutral";
	case DKIM_POLICY: return "policy";
	case DKIM_TEMPERROR: return "temperror";
	case DKIM_PERMERROR: return "permerror";
	}
	return "permerror";
}

const char *dkim_algorithm_name(enum dkim_algorithm alg)
{
	switch (alg) {
	case DKIM_ALG_RSA_SHA256: return "rsa-sha256";
	case DKIM_ALG_ED25519_SHA256: return "ed25519-sha256";
	case DKIM_ALG_RSA_SHA1: return "rsa-sha1";
	}
	return "unknown";
}

static EVP_PKEY *public_key(const struct dkim_key *key)
{
	const unsigned char *p = key->p;

	if (key->type == DKIM_KEY_ED25519) {
		if (key->p_len != 32)
			return NULL;
		return EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, key->p, key->p_len);
	}
	EVP_PKEY *pkey = d2i_PUBKEY(NULL, &p, (long)key->p_len);
	if (pkey == NULL) {
		/* Some publish a bare RSAPublicKey (PKCS#1) rather than
		 * SubjectPublicKeyInfo. */
		p = key->p;
		pkey = d2i_PublicKey(EVP_PKEY_RSA, NULL, &p, (long)key->p_len);
	}
	if (pkey != NULL && EVP_PKEY_get_base_id(pkey) != EVP_PKEY_RSA) {
		EVP_PKEY_free(pkey);
		return NULL;
	}
	return pkey;
}

static int verify_sig(EVP_PKEY *pkey, enum dkim_algorithm alg, const uint8_t *hash,
		      unsigned hash_len, const uint8_t *sig, size_t sig_len)
{
	int ret = -1;

	if (alg == DKIM_ALG_ED25519_SHA256) {
		/* RFC 8463 3: PureEdDSA over the SHA-256 hash of the headers. */
		EVP_MD_CTX *ctx = EVP_MD_CTX_new();
		if (ctx != NULL && EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, pkey) == 1 &&
		    EVP_DigestVerify(ctx, sig, sig_len, hash, hash_len) == 1)
			ret = 0;
		EVP_MD_CTX_free(ctx);
		return ret;
	}
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(pkey, NULL);
	if (ctx != NULL && EVP_PKEY_verify_init(ctx) == 1 &&
	    EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) == 1 &&
	    EVP_PKEY_CTX_set_signature_md(ctx, alg_md(alg)) == 1 &&
	    EVP_PKEY_verify(ctx, sig, sig_len, hash, hash_len) == 1)
		ret = 0;
	EVP_PKEY_CTX_free(ctx);
	return ret;
}

static void set_result(struct dkim_result *res, enum dkim_status status, const char *error)
{
	res->status = status;
	free(res->error);
	res->error = error != NULL ? mf_xstrdup(error) : NULL;
}

/* Looks up and parses the key; returns 0 and key_r, or -1 with res set. */
static int fetch_key(struct dns_resolver *r, const struct dkim_signature *sig,
		     struct dkim_result *res, struct dkim_key **key_r)
{
	char *name = mf_xasprintf("%s._domainkey.%s", sig->selector, sig->domain);
	struct dns_answer *a = dns_lookup(r, name, DNS_TYPE_TXT);
	const char *err = NULL;
	int ret = -1;

	res->authentic = a->authentic;
	switch (a->status) {
	case DNS_STATUS_OK:
		break;
	case DNS_STATUS_TEMPFAIL:
		set_result(res, DKIM_TEMPERROR,
			   mf_errorf("key %s: %s", name, a->error != NULL ? a->error : "lookup failed"));
		goto out;
	default:
		set_result(res, DKIM_PERMERROR, mf_errorf("no key record at %s", name));
		goto out;
	}
	/* RFC 6376 3.6.2.2: several records are ambiguous; the first that
	 * parses is used. */
	for (size_t i = 0; i < a->count; i++) {
		if (dkim_key_parse((const char *)a->records[i].data, a->records[i].data_len, key_r,
				   &err) == 0) {
			ret = 0;
			goto out;
		}
	}
	set_result(res, DKIM_PERMERROR, mf_errorf("key record at %s: %s", name,
						  err != NULL ? err : "unusable"));
out:
	dns_answer_free(&a);
	free(name);
	return ret;
}

static void verify_one(struct dns_resolver *r, const struct dkim_verify_settings *settings,
		       const struct dkim_message *m, const struct dkim_field *f,
		       struct dkim_result *res)
{
	struct dkim_signature *sig = NULL;
	struct dkim_key *key = NULL;
	EVP_PKEY *pkey = NULL;
	const char *err = NULL;
	char *body = NULL, *field = NULL;
	size_t body_len, vstart, vend;
	uint8_t hash[EVP_MAX_MD_SIZE];
	unsigned hash_len = 0;
	int64_t now = settings->now != 0 ? settings->now : (int64_t)time(NULL);
	unsigned min_bits = settings->rsa_min_bits != 0 ? settings->rsa_min_bits
							: DKIM_RSA_MIN_BITS_DEFAULT;

	if (dkim_signature_parse(f->value, f->value_len, &sig, &err) < 0) {
		set_result(res, DKIM_PERMERROR, err);
		goto out;
	}
	res->domain = mf_xstrdup(sig->domain);
	res->selector = mf_xstrdup(sig->selector);
	res->identity = mf_xstrdup(sig->identity);
	res->algorithm = mf_xstrdup(dkim_algorithm_name(sig->algorithm));
	{
		char *b64 = dkim_base64_encode(sig->b, sig->b_len);
		res->b_prefix = mf_xstrndup(b64, 8);
		free(b64);
	}
	if (sig->algorithm == DKIM_ALG_RSA_SHA1 && !settings->allow_sha1) {
		/* RFC 8301 3.1: rsa-sha1 must not be accepted any more. */
		set_result(res, DKIM_POLICY, "rsa-sha1 signatures are not accepted");
		goto out;
	}
	if (sig->length >= 0 && !settings->allow_length) {
		/* RFC 6376 8.2: l= lets anyone append to the body. */
		set_result(res, DKIM_POLICY, "signatures with l= are not accepted");
		goto out;
	}
	if (sig->expiration >= 0 && sig->expiration < now) {
		set_result(res, DKIM_PERMERROR, "signature expired");
		goto out;
	}
	if (sig->timestamp > now + DKIM_FUTURE_SKEW_S) {
		set_result(res, DKIM_PERMERROR, "signature timestamp in the future");
		goto out;
	}
	if (fetch_key(r, sig, res, &key) < 0)
		goto out;
	res->testing = key->testing;
	if (key->p == NULL) {
		set_result(res, DKIM_PERMERROR, "key revoked");
		goto out;
	}
	if ((key->type == DKIM_KEY_ED25519) != (sig->algorithm == DKIM_ALG_ED25519_SHA256)) {
		set_result(res, DKIM_PERMERROR, "key type does not match the algorithm");
		goto out;
	}
	if ((sig->algorithm == DKIM_ALG_RSA_SHA1 && !key->hash_sha1) ||
	    (sig->algorithm != DKIM_ALG_RSA_SHA1 && !key->hash_sha256)) {
		set_result(res, DKIM_PERMERROR, "key does not allow the hash algorithm (h=)");
		goto out;
	}
	if (!key->email) {
		set_result(res, DKIM_PERMERROR, "key is not for email (s=)");
		goto out;
	}
	if (key->strict) {
		/* t=s: the i= domain must be d= itself, no subdomain. */
		const char *at = strrchr(sig->identity, '@');
		if (at == NULL || strcasecmp(at + 1, sig->domain) != 0) {
			set_result(res, DKIM_PERMERROR, "key has t=s and i= is a subdomain of d=");
			goto out;
		}
	}
	if ((pkey = public_key(key)) == NULL) {
		set_result(res, DKIM_PERMERROR, "public key does not parse");
		goto out;
	}
	if (key->type == DKIM_KEY_RSA) {
		int bits = EVP_PKEY_get_bits(pkey);
		if (bits < (int)min_bits) {
			set_result(res, DKIM_POLICY,
				   mf_errorf("rsa key of %d bits is under the minimum of %u", bits, min_bits));
			goto out;
		}
		if (bits > DKIM_RSA_MAX_BITS) {
			set_result(res, DKIM_PERMERROR, mf_errorf("rsa key of %d bits is too large", bits));
			goto out;
		}
	}

	body = dkim_canon_body(sig->body_canon, m->body, m->body_len, &body_len);
	if (sig->length >= 0) {
		if ((uint64_t)sig->length > body_len) {
			set_result(res, DKIM_PERMERROR, "l= is longer than the body");
			goto out;
		}
		res->partial = (size_t)sig->length < body_len;
		body_len = (size_t)sig->length;
	}
	if (digest(alg_md(sig->algorithm), body, body_len, hash, &hash_len) < 0) {
		set_result(res, DKIM_TEMPERROR, "hashing failed");
		goto out;
	}
	if (hash_len != sig->bh_len || memcmp(hash, sig->bh, hash_len) != 0) {
		set_result(res, DKIM_FAIL, "body hash does not match");
		goto out;
	}

	/* The signature field with b='s value emptied, including the
	 * whitespace around it (RFC 6376 3.7). */
	vstart = (size_t)(f->value - f->start);
	{
		size_t s = sig->b_value_start, e = sig->b_value_end;
		while (s > 0 && f->value[s - 1] != '=')
			s--;
		while (e < f->value_len && f->value[e] != ';')
			e++;
		struct mf_buf fb;
		mf_buf_init(&fb, 0);
		mf_buf_append(&fb, f->start, vstart + s);
		mf_buf_append(&fb, f->value + e, f->len - vstart - e);
		vend = fb.len;
		field = mf_buf_steal(&fb);
	}
	if (header_hash(m, sig->header_canon, alg_md(sig->algorithm), sig->headers,
			sig->headers_count, field, vend, hash, &hash_len) < 0) {
		set_result(res, DKIM_TEMPERROR, "hashing failed");
		goto out;
	}
	if (verify_sig(pkey, sig->algorithm, hash, hash_len, sig->b, sig->b_len) < 0) {
		set_result(res, DKIM_FAIL, "signature does not verify");
		goto out;
	}
	set_result(res, DKIM_PASS, NULL);
out:
	free(body);
	free(field);
	EVP_PKEY_free(pkey);
	dkim_key_free(&key);
	dkim_signature_free(&sig);
}

void dkim_verify(struct dns_resolver *r, const struct dkim_verify_settings *settings,
		 const char *msg, size_t len, struct dkim_result **results_r, size_t *count_r)
{
	struct dkim_message m;
	struct dkim_result *results = NULL;
	size_t n = 0, max = settings->max_signatures != 0 ? settings->max_signatures
							  : DKIM_SIGNATURES_MAX;
	const char *err;

	*results_r = NULL;
	*count_r = 0;
	if (dkim_message_parse(msg, len, &m, &err) < 0) {
		results = mf_xcalloc(1, sizeof(*results));
		set_result(&results[0], DKIM_PERMERROR, err);
		*results_r = results;
		*count_r = 1;
		return;
	}
	for (size_t i = 0; i < m.count; i++) {
		if (dkim_field_is(&m.fields[i], "DKIM-Signature"))
			n++;
	}
	if (n > 0)
		results = mf_xcalloc(n, sizeof(*results));
	n = 0;
	for (size_t i = 0; i < m.count; i++) {
		if (!dkim_field_is(&m.fields[i], "DKIM-Signature"))
			continue;
		if (n >= max)
			set_result(&results[n], DKIM_POLICY, "too many signatures; not verified");
		else
			verify_one(r, settings, &m, &m.fields[i], &results[n]);
		n++;
	}
	dkim_message_clear(&m);
	*results_r = results;
	*count_r = n;
}

void dkim_results_free(struct dkim_result **results, size_t count)
{
	if (*results == NULL)
		return;
	for (size_t i = 0; i < count; i++) {
		struct dkim_result *r = &(*results)[i];
		free(r->domain);
		free(r->selector);
		free(r->identity);
		free(r->algorithm);
		free(r->b_prefix);
		free(r->error);
	}
	free(*results);
	*results = NULL;
}

/* --- keys and signing ---------------------------------------------------- */

int dkim_privkey_load_pem(const char *pem, size_t len, struct dkim_privkey **key_r,
			  const char **error_r)
{
	BIO *bio = BIO_new_mem_buf(pem, (int)len);
	EVP_PKEY *pkey = bio != NULL ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : NULL;
	struct dkim_privkey *key;
	int id;

	BIO_free(bio);
	if (pkey == NULL) {
		*error_r = "not a PEM private key";
		return -1;
	}
	id = EVP_PKEY_get_base_id(pkey);
	if (id != EVP_PKEY_RSA && id != EVP_PKEY_ED25519) {
		EVP_PKEY_free(pkey);
		*error_r = "key is neither RSA nor Ed25519";
		return -1;
	}
	if (id == EVP_PKEY_RSA && EVP_PKEY_get_bits(pkey) < DKIM_RSA_MIN_BITS_DEFAULT) {
		EVP_PKEY_free(pkey);
		*error_r = "RSA key under 1024 bits";
		return -1;
	}
	key = mf_xcalloc(1, sizeof(*key));
	key->pkey = pkey;
	key->type = id == EVP_PKEY_RSA ? DKIM_KEY_RSA : DKIM_KEY_ED25519;
	*key_r = key;
	return 0;
}

int dkim_privkey_load(const char *path, struct dkim_privkey **key_r, const char **error_r)
{
	FILE *f = fopen(path, "r");
	struct mf_buf b;
	char chunk[4096];
	size_t n;
	int ret;

	if (f == NULL) {
		*error_r = mf_errorf("%s: cannot open", path);
		return -1;
	}
	mf_buf_init(&b, 1024 * 1024);
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
		if (mf_buf_append(&b, chunk, n) < 0)
			break;
	}
	fclose(f);
	ret = dkim_privkey_load_pem(mf_buf_cstr(&b), b.len, key_r, error_r);
	if (ret < 0)
		*error_r = mf_errorf("%s: %s", path, *error_r);
	mf_buf_free(&b);
	return ret;
}

void dkim_privkey_free(struct dkim_privkey **key)
{
	if (*key == NULL)
		return;
	EVP_PKEY_free((*key)->pkey);
	free(*key);
	*key = NULL;
}

enum dkim_key_type dkim_privkey_type(const struct dkim_privkey *key)
{
	return key->type;
}

/* RFC 6376 5.4.1: the fields worth signing; all are oversigned. */
const char *const dkim_default_headers[] = {
	"From", "Reply-To", "Subject", "Date", "To", "Cc", "Resent-Date", "Resent-From",
	"Resent-To", "Resent-Cc", "In-Reply-To", "References", "List-Id", "List-Help",
	"List-Unsubscribe", "List-Subscribe", "List-Post", "List-Owner", "List-Archive",
	"Message-ID", "Content-Type", "Content-Transfer-Encoding", "MIME-Version",
};
const size_t dkim_default_headers_count =
	sizeof(dkim_default_headers) / sizeof(dkim_default_headers[0]);

/* Appends a tag, folding first when it would pass the fold column. */
static void fold_append(struct mf_buf *b, size_t *col, const char *text, bool first)
{
	size_t n = strlen(text);

	if (!first) {
		mf_buf_append(b, ";", 1);
		(*col)++;
		if (*col + 1 + n > DKIM_FOLD_COLUMN) {
			mf_buf_append(b, "\r\n\t", 3);
			*col = 1;
		} else {
			mf_buf_append(b, " ", 1);
			(*col)++;
		}
	}
	mf_buf_append(b, text, n);
	*col += n;
}

static int sign_hash(const struct dkim_privkey *key, const uint8_t *hash, unsigned hash_len,
		     uint8_t **sig_r, size_t *sig_len_r)
{
	size_t len = 0;
	uint8_t *sig = NULL;
	int ret = -1;

	if (key->type == DKIM_KEY_ED25519) {
		EVP_MD_CTX *ctx = EVP_MD_CTX_new();
		if (ctx != NULL && EVP_DigestSignInit(ctx, NULL, NULL, NULL, key->pkey) == 1 &&
		    EVP_DigestSign(ctx, NULL, &len, hash, hash_len) == 1) {
			sig = mf_xmalloc(len);
			if (EVP_DigestSign(ctx, sig, &len, hash, hash_len) == 1)
				ret = 0;
		}
		EVP_MD_CTX_free(ctx);
	} else {
		EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(key->pkey, NULL);
		if (ctx != NULL && EVP_PKEY_sign_init(ctx) == 1 &&
		    EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) == 1 &&
		    EVP_PKEY_CTX_set_signature_md(ctx, EVP_sha256()) == 1 &&
		    EVP_PKEY_sign(ctx, NULL, &len, hash, hash_len) == 1) {
			sig = mf_xmalloc(len);
			if (EVP_PKEY_sign(ctx, sig, &len, hash, hash_len) == 1)
				ret = 0;
		}
		EVP_PKEY_CTX_free(ctx);
	}
	if (ret < 0) {
		free(sig);
		return -1;
	}
	*sig_r = sig;
	*sig_len_r = len;
	return 0;
}

static const char *key_alg_tag(enum dkim_key_type type)
{
	return type == DKIM_KEY_ED25519 ? "a=ed25519-sha256" : "a=rsa-sha256";
}

static bool check_domain_text(const char *s)
{
	if (s == NULL || *s == '\0')
		return false;
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;
		if (!(isalnum(c) || c == '-' || c == '.' || c == '_'))
			return false;
	}
	return true;
}

int dkim_sign(const struct dkim_sign_settings *set, const char *msg, size_t len,
	      char **header_r, const char **error_r)
{
	struct dkim_message m;
	const char *const *names = set->headers != NULL ? set->headers : dkim_default_headers;
	size_t names_count = set->headers != NULL ? set->headers_count : dkim_default_headers_count;
	enum dkim_canon hc = set->canon_set ? set->header_canon : DKIM_CANON_RELAXED;
	enum dkim_canon bc = set->canon_set ? set->body_canon : DKIM_CANON_RELAXED;
	char **signed_names = NULL;
	size_t signed_count = 0;
	struct mf_buf h, tag;
	size_t col, body_len, sig_len = 0;
	char *body = NULL, *b64 = NULL;
	uint8_t hash[EVP_MAX_MD_SIZE], *sig = NULL;
	unsigned hash_len;
	int64_t now = set->now != 0 ? set->now : (int64_t)time(NULL);
	bool from = false;
	int ret = -1;

	mf_buf_init(&h, 0);
	mf_buf_init(&tag, 0);
	memset(&m, 0, sizeof(m));
	if (!check_domain_text(set->domain) || !check_domain_text(set->selector)) {
		*error_r = "bad domain or selector";
		goto out;
	}
	if (names_count > DKIM_SIGN_HEADERS_MAX) {
		*error_r = "too many header names to sign";
		goto out;
	}
	if (dkim_message_parse(msg, len, &m, error_r) < 0)
		goto out;

	/* Each name as often as it appears, plus once more (oversigning). */
	signed_names = mf_xcalloc(names_count * 2 + m.count + 1, sizeof(*signed_names));
	for (size_t i = 0; i < names_count; i++) {
		size_t present = 0;
		bool dup = false;

		for (size_t k = 0; k < i; k++)
			dup = dup || strcasecmp(names[k], names[i]) == 0;
		if (dup || names[i][0] == '\0' || strchr(names[i], ':') != NULL)
			continue;
		for (size_t k = 0; k < m.count; k++) {
			if (dkim_field_is(&m.fields[k], names[i]))
				present++;
		}
		if (strcasecmp(names[i], "From") == 0) {
			from = true;
			if (present == 0) {
				*error_r = "message has no From header field";
				goto out;
			}
		}
		for (size_t k = 0; k <= present; k++)
			signed_names[signed_count++] = (char *)names[i];
	}
	if (!from) {
		*error_r = "headers to sign do not include From";
		goto out;
	}

	body = dkim_canon_body(bc, m.body, m.body_len, &body_len);
	if (digest(EVP_sha256(), body, body_len, hash, &hash_len) < 0) {
		*error_r = "hashing failed";
		goto out;
	}
	b64 = dkim_base64_encode(hash, hash_len);

	mf_buf_append_str(&h, "DKIM-Signature: ");
	col = strlen("DKIM-Signature: ");
	fold_append(&h, &col, "v=1", true);
	fold_append(&h, &col, key_alg_tag(set->key->type), false);
	mf_buf_reset(&tag);
	mf_buf_appendf(&tag, "c=%s/%s", hc == DKIM_CANON_RELAXED ? "relaxed" : "simple",
		       bc == DKIM_CANON_RELAXED ? "relaxed" : "simple");
	fold_append(&h, &col, mf_buf_cstr(&tag), false);
	mf_buf_reset(&tag);
	mf_buf_appendf(&tag, "d=%s", set->domain);
	fold_append(&h, &col, mf_buf_cstr(&tag), false);
	mf_buf_reset(&tag);
	mf_buf_appendf(&tag, "s=%s", set->selector);
	fold_append(&h, &col, mf_buf_cstr(&tag), false);
	mf_buf_reset(&tag);
	mf_buf_appendf(&tag, "t=%lld", (long long)now);
	fold_append(&h, &col, mf_buf_cstr(&tag), false);
	if (set->expiration_s > 0) {
		mf_buf_reset(&tag);
		mf_buf_appendf(&tag, "x=%lld", (long long)now + (long long)set->expiration_s);
		fold_append(&h, &col, mf_buf_cstr(&tag), false);
	}
	/* h= folded between names. */
	mf_buf_append(&h, ";", 1);
	col++;
	if (col + 4 > DKIM_FOLD_COLUMN) {
		mf_buf_append(&h, "\r\n\th=", 5);
		col = 3;
	} else {
		mf_buf_append(&h, " h=", 3);
		col += 3;
	}
	for (size_t i = 0; i < signed_count; i++) {
		size_t n = strlen(signed_names[i]) + (i > 0 ? 1 : 0);
		if (col + n > DKIM_FOLD_COLUMN) {
			mf_buf_append(&h, "\r\n\t", 3);
			col = 1;
		}
		if (i > 0)
			mf_buf_append(&h, ":", 1);
		mf_buf_append_str(&h, signed_names[i]);
		col += n;
	}
	mf_buf_reset(&tag);
	mf_buf_appendf(&tag, "bh=%s", b64);
	fold_append(&h, &col, mf_buf_cstr(&tag), false);
	mf_buf_append(&h, ";", 1);
	col++;
	if (col + 3 > DKIM_FOLD_COLUMN) {
		mf_buf_append(&h, "\r\n\tb=", 5);
		col = 3;
	} else {
		mf_buf_append(&h, " b=", 3);
		col += 3;
	}

	if (header_hash(&m, hc, EVP_sha256(), signed_names, signed_count, h.data, h.len, hash,
			&hash_len) < 0 ||
	    sign_hash(set->key, hash, hash_len, &sig, &sig_len) < 0) {
		*error_r = "signing failed";
		goto out;
	}
	free(b64);
	b64 = dkim_base64_encode(sig, sig_len);
	/* The value is folded inside; whitespace in b= is ignored. */
	for (size_t i = 0, n = strlen(b64); i < n;) {
		size_t room = col < DKIM_FOLD_COLUMN ? DKIM_FOLD_COLUMN - col : 0;
		if (room == 0) {
			mf_buf_append(&h, "\r\n\t", 3);
			col = 1;
			continue;
		}
		if (room > n - i)
			room = n - i;
		mf_buf_append(&h, b64 + i, room);
		col += room;
		i += room;
	}
	mf_buf_append(&h, "\r\n", 2);
	*header_r = mf_buf_steal(&h);
	ret = 0;
out:
	free(signed_names);
	free(body);
	free(b64);
	free(sig);
	mf_buf_free(&h);
	mf_buf_free(&tag);
	dkim_message_clear(&m);
	return ret;
}
