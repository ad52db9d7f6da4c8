/* sasl: server and client side of PLAIN, LOGIN, CRAM-MD5, SCRAM-SHA-1,
 * SCRAM-SHA-256 (and -PLUS) and EXTERNAL; see sasl.h. */

/* CRAM-MD5 answers from stored MD5 midstates (RFC 2195 with the HMAC pads
 * precomputed), which needs MD5_CTX; OpenSSL 3 marks it deprecated. */
#define OPENSSL_SUPPRESS_DEPRECATED 1

#include "sasl.h"

#include <ctype.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/md5.h>
#include <openssl/rand.h>

#include "buf.h"
#include "error.h"
#include "precis.h"
#include "tls.h"

static const char *const mech_names[MF_SASL_MECH_COUNT] = {
	[MF_SASL_EXTERNAL] = "EXTERNAL",
	[MF_SASL_SCRAM_SHA_256_PLUS] = "SCRAM-SHA-256-PLUS",
	[MF_SASL_SCRAM_SHA_1_PLUS] = "SCRAM-SHA-1-PLUS",
	[MF_SASL_SCRAM_SHA_256] = "SCRAM-SHA-256",
	[MF_SASL_SCRAM_SHA_1] = "SCRAM-SHA-1",
	[MF_SASL_CRAM_MD5] = "CRAM-MD5",
	[MF_SASL_PLAIN] = "PLAIN",
	[MF_SASL_LOGIN] = "LOGIN",
};

const char *mf_sasl_mech_name(enum mf_sasl_mech mech)
{
	if ((unsigned)mech >= MF_SASL_MECH_COUNT)
		return "?";
	return mech_names[mech];
}

int mf_sasl_mech_parse(const char *name, size_t len, enum mf_sasl_mech *mech_r)
{
	for (int i = 0; i < MF_SASL_MECH_COUNT; i++) {
		if (strlen(mech_names[i]) == len && strncasecmp(mech_names[i], name, len) == 0) {
			*mech_r = (enum mf_sasl_mech)i;
			return 0;
		}
	}
	return -1;
}

static bool mech_is_scram(enum mf_sasl_mech m)
{
	return m == MF_SASL_SCRAM_SHA_1 || m == MF_SASL_SCRAM_SHA_256 ||
	       m == MF_SASL_SCRAM_SHA_1_PLUS || m == MF_SASL_SCRAM_SHA_256_PLUS;
}

static bool mech_is_plus(enum mf_sasl_mech m)
{
	return m == MF_SASL_SCRAM_SHA_1_PLUS || m == MF_SASL_SCRAM_SHA_256_PLUS;
}

static enum mf_sasl_hash mech_hash(enum mf_sasl_mech m)
{
	return (m == MF_SASL_SCRAM_SHA_1 || m == MF_SASL_SCRAM_SHA_1_PLUS) ? MF_SASL_SHA1
									    : MF_SASL_SHA256;
}

static const EVP_MD *hash_md(enum mf_sasl_hash h)
{
	return h == MF_SASL_SHA1 ? EVP_sha1() : EVP_sha256();
}

static size_t hash_len(enum mf_sasl_hash h)
{
	return h == MF_SASL_SHA1 ? 20 : 32;
}

/* --- base64 -------------------------------------------------------------- */

char *mf_sasl_base64_encode(const void *data, size_t len)
{
	char *out = mf_xmalloc(4 * ((len + 2) / 3) + 1);

	EVP_EncodeBlock((unsigned char *)out, data, (int)len);
	return out;
}

static bool b64_char(unsigned char c)
{
	return isalnum(c) || c == '+' || c == '/';
}

int mf_sasl_base64_decode(const char *s, size_t len, unsigned char **out_r, size_t *out_len_r)
{
	size_t pad = 0;
	unsigned char *out;
	int n;

	*out_r = NULL;
	*out_len_r = 0;
	if (len % 4 != 0 || len > (size_t)1 << 30)
		return -1;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '=') {
			/* Padding only at the end, at most two. */
			if (i < len - 2)
				return -1;
			pad++;
		} else if (!b64_char(c) || pad > 0) {
			return -1;
		}
	}
	out = mf_xmalloc(len / 4 * 3 + 1);
	n = len == 0 ? 0 : EVP_DecodeBlock(out, (const unsigned char *)s, (int)len);
	if (n < 0 || (size_t)n < pad) {
		free(out);
		return -1;
	}
	n -= (int)pad;
	out[n] = '\0';
	*out_r = out;
	*out_len_r = (size_t)n;
	return 0;
}

/* --- SCRAM material ------------------------------------------------------ */

static void hmac(enum mf_sasl_hash h, const void *key, size_t keylen, const void *data,
		 size_t len, unsigned char *out)
{
	unsigned int outlen = 0;

	HMAC(hash_md(h), key, (int)keylen, data, len, out, &outlen);
}

static void digest(enum mf_sasl_hash h, const void *data, size_t len, unsigned char *out)
{
	EVP_Digest(data, len, out, NULL, hash_md(h), NULL);
}

int mf_sasl_scram_derive_salt(enum mf_sasl_hash hash, const char *password, size_t len,
			      const unsigned char *salt, size_t salt_len, uint32_t iterations,
			      struct mf_sasl_scram *scram_r, const char **error_r)
{
	unsigned char salted[MF_SASL_KEY_MAX], client_key[MF_SASL_KEY_MAX];
	size_t hl = hash_len(hash);

	memset(scram_r, 0, sizeof(*scram_r));
	if (salt_len == 0 || salt_len > MF_SASL_SALT_MAX || iterations == 0 ||
	    iterations > MF_SASL_SCRAM_ITERATIONS_MAX) {
		*error_r = "bad SCRAM salt or iteration count";
		return -1;
	}
	/* RFC 5802 3: SaltedPassword := Hi(Normalize(password), salt, i),
	 * Hi being PBKDF2 with HMAC of the hash. */
	if (PKCS5_PBKDF2_HMAC(password, (int)len, salt, (int)salt_len, (int)iterations,
			      hash_md(hash), (int)hl, salted) != 1) {
		*error_r = "PBKDF2 failed";
		return -1;
	}
	hmac(hash, salted, hl, "Client Key", 10, client_key);
	digest(hash, client_key, hl, scram_r->stored_key);
	hmac(hash, salted, hl, "Server Key", 10, scram_r->server_key);
	scram_r->hash = hash;
	memcpy(scram_r->salt, salt, salt_len);
	scram_r->salt_len = salt_len;
	scram_r->iterations = iterations;
	OPENSSL_cleanse(salted, sizeof(salted));
	OPENSSL_cleanse(client_key, sizeof(client_key));
	return 0;
}

int mf_sasl_scram_derive(enum mf_sasl_hash hash, const char *password, size_t len,
			 struct mf_sasl_scram *scram_r, const char **error_r)
{
	unsigned char salt[MF_SASL_SALT_LEN];

	if (RAND_bytes(salt, sizeof(salt)) != 1) {
		*error_r = "no random bytes";
		return -1;
	}
	return mf_sasl_scram_derive_salt(hash, password, len, salt, sizeof(salt),
					 MF_SASL_SCRAM_ITERATIONS, scram_r, error_r);
}

char *mf_sasl_scram_format(const struct mf_sasl_scram *scram)
{
	size_t hl = hash_len(scram->hash);
	char *salt = mf_sasl_base64_encode(scram->salt, scram->salt_len);
	char *sk = mf_sasl_base64_encode(scram->stored_key, hl);
	char *vk = mf_sasl_base64_encode(scram->server_key, hl);
	char *res = mf_xasprintf("%s %u %s %s", salt, (unsigned)scram->iterations, sk, vk);

	free(salt);
	free(sk);
	free(vk);
	return res;
}

/* Decodes the base64 word of len bytes into exactly want bytes (or at most
 * want when exact is false). */
static int decode_word(const char *s, size_t len, unsigned char *out, size_t want, bool exact,
		       size_t *got_r)
{
	unsigned char *d;
	size_t dlen;
	int ret = -1;

	if (mf_sasl_base64_decode(s, len, &d, &dlen) < 0)
		return -1;
	if ((exact && dlen != want) || dlen > want || dlen == 0)
		goto out;
	memcpy(out, d, dlen);
	if (got_r != NULL)
		*got_r = dlen;
	ret = 0;
out:
	free(d);
	return ret;
}

int mf_sasl_scram_parse(enum mf_sasl_hash hash, const char *text,
			struct mf_sasl_scram *scram_r, const char **error_r)
{
	const char *w[4];
	size_t wl[4];
	const char *p = text;
	char num[16];
	char *end;
	unsigned long iter;

	memset(scram_r, 0, sizeof(*scram_r));
	for (int i = 0; i < 4; i++) {
		const char *sp = strchr(p, ' ');

		w[i] = p;
		wl[i] = sp != NULL ? (size_t)(sp - p) : strlen(p);
		if ((i < 3) != (sp != NULL))
			goto bad;
		p = sp != NULL ? sp + 1 : p + wl[i];
	}
	if (wl[1] == 0 || wl[1] >= sizeof(num))
		goto bad;
	memcpy(num, w[1], wl[1]);
	num[wl[1]] = '\0';
	iter = strtoul(num, &end, 10);
	if (*end != '\0' || iter == 0 || iter > MF_SASL_SCRAM_ITERATIONS_MAX)
		goto bad;
	if (decode_word(w[0], wl[0], scram_r->salt, MF_SASL_SALT_MAX, false,
			&scram_r->salt_len) < 0 ||
	    decode_word(w[2], wl[2], scram_r->stored_key, hash_len(hash), true, NULL) < 0 ||
	    decode_word(w[3], wl[3], scram_r->server_key, hash_len(hash), true, NULL) < 0)
		goto bad;
	scram_r->hash = hash;
	scram_r->iterations = (uint32_t)iter;
	return 0;
bad:
	*error_r = "malformed SCRAM material";
	return -1;
}

/* --- CRAM-MD5 material ------------------------------------------------------ */

static void md5_state(const MD5_CTX *ctx, uint32_t st[4])
{
	st[0] = ctx->A;
	st[1] = ctx->B;
	st[2] = ctx->C;
	st[3] = ctx->D;
}

void mf_sasl_cram_derive(const char *password, size_t len, struct mf_sasl_cram *cram_r)
{
	unsigned char key[64], pad[64];
	MD5_CTX ctx;

	memset(key, 0, sizeof(key));
	/* RFC 2104 2: keys longer than the block are hashed first. */
	if (len > sizeof(key))
		MD5((const unsigned char *)password, len, key);
	else
		memcpy(key, password, len);
	for (size_t i = 0; i < 64; i++)
		pad[i] = key[i] ^ 0x36;
	MD5_Init(&ctx);
	MD5_Update(&ctx, pad, 64);
	md5_state(&ctx, cram_r->inner);
	for (size_t i = 0; i < 64; i++)
		pad[i] = key[i] ^ 0x5c;
	MD5_Init(&ctx);
	MD5_Update(&ctx, pad, 64);
	md5_state(&ctx, cram_r->outer);
	OPENSSL_cleanse(key, sizeof(key));
	OPENSSL_cleanse(pad, sizeof(pad));
	OPENSSL_cleanse(&ctx, sizeof(ctx));
}

static void put32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)(v >> 24);
	p[1] = (unsigned char)(v >> 16);
	p[2] = (unsigned char)(v >> 8);
	p[3] = (unsigned char)v;
}

static uint32_t get32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

void mf_sasl_cram_pack(const struct mf_sasl_cram *cram, unsigned char out[MF_SASL_CRAM_BYTES])
{
	for (int i = 0; i < 4; i++) {
		put32(out + i * 4, cram->inner[i]);
		put32(out + 16 + i * 4, cram->outer[i]);
	}
}

int mf_sasl_cram_unpack(const unsigned char *in, size_t len, struct mf_sasl_cram *cram_r)
{
	if (len != MF_SASL_CRAM_BYTES)
		return -1;
	for (int i = 0; i < 4; i++) {
		cram_r->inner[i] = get32(in + i * 4);
		cram_r->outer[i] = get32(in + 16 + i * 4);
	}
	return 0;
}

/* HMAC-MD5 of data from the midstates: continue each MD5 after its first
 * 64-byte block. */
static void cram_hmac(const struct mf_sasl_cram *cram, const void *data, size_t len,
		      unsigned char out[16])
{
	unsigned char inner[16];
	MD5_CTX ctx;

	memset(&ctx, 0, sizeof(ctx));
	ctx.A = cram->inner[0];
	ctx.B = cram->inner[1];
	ctx.C = cram->inner[2];
	ctx.D = cram->inner[3];
	ctx.Nl = 512;   /* bits hashed so far: one block */
	MD5_Update(&ctx, data, len);
	MD5_Final(inner, &ctx);
	memset(&ctx, 0, sizeof(ctx));
	ctx.A = cram->outer[0];
	ctx.B = cram->outer[1];
	ctx.C = cram->outer[2];
	ctx.D = cram->outer[3];
	ctx.Nl = 512;
	MD5_Update(&ctx, inner, sizeof(inner));
	MD5_Final(out, &ctx);
}

/* --- TLS ---------------------------------------------------------------- */

void mf_sasl_tls_from_ssl(SSL *ssl, struct mf_sasl_tls *tls_r)
{
	const char *err;

	memset(tls_r, 0, sizeof(*tls_r));
	if (ssl == NULL)
		return;
	tls_r->active = true;
	if (mf_tls_channel_binding(ssl, MF_TLS_CB_UNIQUE, tls_r->unique, sizeof(tls_r->unique),
				   &tls_r->unique_len, &err) < 0)
		tls_r->unique_len = 0;
	if (mf_tls_channel_binding(ssl, MF_TLS_CB_EXPORTER, tls_r->exporter,
				   sizeof(tls_r->exporter), &tls_r->exporter_len, &err) < 0)
		tls_r->exporter_len = 0;
}

char *mf_sasl_pubkey_fingerprint(const unsigned char *der, size_t len)
{
	unsigned char md[32];
	char *hex = mf_xmalloc(65);

	EVP_Digest(der, len, md, NULL, EVP_sha256(), NULL);
	for (int i = 0; i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
	return hex;
}

static bool tls_has_cb(const struct mf_sasl_tls *tls)
{
	return tls != NULL && tls->active && (tls->unique_len > 0 || tls->exporter_len > 0);
}

/* --- server ------------------------------------------------------------- */

void mf_sasl_account_clear(struct mf_sasl_account *a)
{
	free(a->account);
	free(a->disabled);
	OPENSSL_cleanse(a, sizeof(*a));
	memset(a, 0, sizeof(*a));
}

bool mf_sasl_server_mech_available(enum mf_sasl_mech mech,
				   const struct mf_sasl_server_settings *settings,
				   const struct mf_sasl_tls *tls, bool cert_account)
{
	bool tls_on = tls != NULL && tls->active;

	switch (mech) {
	case MF_SASL_EXTERNAL:
		return tls_on && cert_account;
	case MF_SASL_SCRAM_SHA_256_PLUS:
	case MF_SASL_SCRAM_SHA_1_PLUS:
		return tls_has_cb(tls);
	case MF_SASL_SCRAM_SHA_256:
	case MF_SASL_SCRAM_SHA_1:
		return true;
	case MF_SASL_CRAM_MD5:
		return settings != NULL && settings->cram_md5;
	case MF_SASL_PLAIN:
	case MF_SASL_LOGIN:
		/* RFC 4616 6 / RFC 8314: cleartext passwords only inside TLS. */
		return tls_on || (settings != NULL && settings->allow_plaintext_password);
	case MF_SASL_MECH_COUNT:
		break;
	}
	return false;
}

size_t mf_sasl_server_mechs(const struct mf_sasl_server_settings *settings,
			    const struct mf_sasl_tls *tls, bool cert_account,
			    char buf[MF_SASL_MECHS_MAX])
{
	size_t n = 0, off = 0;

	buf[0] = '\0';
	/* The enum is ordered strongest first. */
	for (int i = 0; i < MF_SASL_MECH_COUNT; i++) {
		if (!mf_sasl_server_mech_available((enum mf_sasl_mech)i, settings, tls,
						   cert_account))
			continue;
		off += (size_t)snprintf(buf + off, MF_SASL_MECHS_MAX - off, "%s%s",
					n > 0 ? " " : "", mech_names[i]);
		n++;
	}
	return n;
}

enum srv_state {
	SRV_START,
	SRV_LOGIN_USER,
	SRV_LOGIN_PASS,
	SRV_CRAM_RESPONSE,
	SRV_SCRAM_FIRST,
	SRV_SCRAM_FINAL,
	SRV_SCRAM_DONE,
	SRV_EXTERNAL,
	SRV_PLAIN,
	SRV_FINISHED,
};

struct mf_sasl_server {
	enum mf_sasl_mech mech;
	struct mf_sasl_server_settings settings;
	struct mf_sasl_backend backend;
	struct mf_sasl_tls tls;
	char *cert_account;
	enum srv_state state;
	unsigned steps;
	char *login;
	char *account;
	enum mf_sasl_failure failure;
	char *failure_text;
	unsigned char *out;
	size_t out_len;
	/* LOGIN */
	char *pending_user;
	/* CRAM-MD5 */
	char *challenge;
	/* SCRAM */
	char *test_nonce;
	char *gs2_header;           /* up to and including the second ',' */
	const unsigned char *cb;    /* expected channel binding data (points into tls) */
	size_t cb_len;
	char *client_first_bare;
	char *server_first;
	char *nonce;                /* client + server nonce */
	struct mf_sasl_account acct;
	bool known;                 /* real material (else a made-up salt) */
};

static pthread_once_t secret_once = PTHREAD_ONCE_INIT;
static unsigned char fake_secret[32];

static void secret_init(void)
{
	if (RAND_bytes(fake_secret, sizeof(fake_secret)) != 1) {
		/* Without randomness the made-up salt is merely predictable,
		 * which only reveals that a login is unknown. */
		memset(fake_secret, 0x5a, sizeof(fake_secret));
	}
}

int mf_sasl_server_create(enum mf_sasl_mech mech, const struct mf_sasl_server_settings *settings,
			  const struct mf_sasl_backend *backend, const struct mf_sasl_tls *tls,
			  const char *cert_account, struct mf_sasl_server **srv_r,
			  const char **error_r)
{
	struct mf_sasl_server_settings defaults = { 0 };
	struct mf_sasl_tls notls = { 0 };
	struct mf_sasl_server *srv;

	*srv_r = NULL;
	if (settings == NULL)
		settings = &defaults;
	if (tls == NULL)
		tls = &notls;
	if ((unsigned)mech >= MF_SASL_MECH_COUNT ||
	    !mf_sasl_server_mech_available(mech, settings, tls, cert_account != NULL)) {
		*error_r = mf_errorf("mechanism %s not available", mf_sasl_mech_name(mech));
		return -1;
	}
	srv = mf_xcalloc(1, sizeof(*srv));
	srv->mech = mech;
	srv->settings = *settings;
	srv->settings.hostname = NULL;
	srv->backend = *backend;
	srv->tls = *tls;
	srv->cert_account = cert_account != NULL ? mf_xstrdup(cert_account) : NULL;
	srv->login = mf_xstrdup("");
	srv->challenge = NULL;
	if (mech == MF_SASL_CRAM_MD5) {
		unsigned char r[8];
		uint64_t v = 0;

		if (RAND_bytes(r, sizeof(r)) != 1) {
			mf_sasl_server_free(&srv);
			*error_r = "no random bytes";
			return -1;
		}
		for (size_t i = 0; i < sizeof(r); i++)
			v = v << 8 | r[i];
		/* RFC 2195 2: a msg-id-like challenge, unique per exchange. */
		srv->challenge = mf_xasprintf("<%" PRIu64 ".%lld@%s>", v, (long long)time(NULL),
					      settings->hostname != NULL ? settings->hostname
									 : "localhost");
	}
	*srv_r = srv;
	return 0;
}

void mf_sasl_server_free(struct mf_sasl_server **srvp)
{
	struct mf_sasl_server *srv = *srvp;

	if (srv == NULL)
		return;
	free(srv->cert_account);
	free(srv->login);
	free(srv->account);
	free(srv->failure_text);
	free(srv->out);
	if (srv->pending_user != NULL)
		free(srv->pending_user);
	free(srv->challenge);
	free(srv->test_nonce);
	free(srv->gs2_header);
	free(srv->client_first_bare);
	free(srv->server_first);
	free(srv->nonce);
	mf_sasl_account_clear(&srv->acct);
	OPENSSL_cleanse(&srv->tls, sizeof(srv->tls));
	free(srv);
	*srvp = NULL;
}

void mf_sasl_server_set_nonce(struct mf_sasl_server *srv, const char *nonce)
{
	free(srv->test_nonce);
	srv->test_nonce = mf_xstrdup(nonce);
}

const char *mf_sasl_server_account(const struct mf_sasl_server *srv)
{
	return srv->account;
}

const char *mf_sasl_server_login(const struct mf_sasl_server *srv)
{
	return srv->login;
}

enum mf_sasl_failure mf_sasl_server_failure(const struct mf_sasl_server *srv)
{
	return srv->failure;
}

const char *mf_sasl_server_failure_text(const struct mf_sasl_server *srv)
{
	return srv->failure_text != NULL ? srv->failure_text : "";
}

static enum mf_sasl_status fail(struct mf_sasl_server *srv, enum mf_sasl_failure f,
				const char *text)
{
	srv->state = SRV_FINISHED;
	srv->failure = f;
	free(srv->failure_text);
	srv->failure_text = mf_xstrdup(text);
	return MF_SASL_FAILED;
}

static enum mf_sasl_status tempfail(struct mf_sasl_server *srv, const char *text)
{
	srv->state = SRV_FINISHED;
	free(srv->failure_text);
	srv->failure_text = mf_xasprintf("credential lookup failed: %s", text);
	return MF_SASL_TEMPFAIL;
}

void mf_sasl_server_abort(struct mf_sasl_server *srv)
{
	fail(srv, MF_SASL_FAIL_ABORTED, "aborted by client");
}

static enum mf_sasl_status challenge(struct mf_sasl_server *srv, const void *data, size_t len,
				     enum srv_state next)
{
	free(srv->out);
	srv->out = mf_xmalloc(len + 1);
	memcpy(srv->out, data, len);
	srv->out[len] = '\0';
	srv->out_len = len;
	srv->state = next;
	return MF_SASL_CONTINUE;
}

static void set_login(struct mf_sasl_server *srv, const char *login)
{
	free(srv->login);
	srv->login = mf_xstrdup(login);
}

/* Final checks shared by every mechanism once credentials matched. */
static enum mf_sasl_status succeed(struct mf_sasl_server *srv, const char *account,
				   const char *disabled)
{
	if (disabled != NULL)
		return fail(srv, MF_SASL_FAIL_DISABLED, disabled);
	/* A client that presented a registered public key may use another
	 * mechanism, but only for the same account. */
	if (srv->cert_account != NULL && strcmp(srv->cert_account, account) != 0)
		return fail(srv, MF_SASL_FAIL_WRONG_ACCOUNT,
			    "credentials are for another account than the TLS client certificate");
	free(srv->account);
	srv->account = mf_xstrdup(account);
	srv->state = SRV_FINISHED;
	srv->failure = MF_SASL_FAIL_NONE;
	return MF_SASL_SUCCESS;
}

/* Checks that s (len bytes) holds no NUL and fits max; returns a copy. */
static char *field_dup(const char *s, size_t len, size_t max)
{
	char *r;

	if (len > max || memchr(s, '\0', len) != NULL)
		return NULL;
	r = mf_xmalloc(len + 1);
	memcpy(r, s, len);
	r[len] = '\0';
	return r;
}

static enum mf_sasl_status verify_password(struct mf_sasl_server *srv, const char *authzid,
					   const char *login, size_t login_len,
					   const char *password, size_t password_len)
{
	struct mf_sasl_account a = { 0 };
	char *nlogin = NULL, *npass = NULL;
	size_t npass_len = 0;
	const char *err;
	enum mf_sasl_status st;
	int r;

	if (mf_precis_username(login, login_len, &nlogin, &err) < 0) {
		st = fail(srv, MF_SASL_FAIL_MALFORMED, err);
		goto out;
	}
	set_login(srv, nlogin);
	if (mf_precis_password(password, password_len, &npass, &npass_len, &err) < 0) {
		/* No stored password can be a string OpaqueString refuses. */
		st = fail(srv, MF_SASL_FAIL_CREDENTIALS, "invalid credentials");
		goto out;
	}
	r = srv->backend.verify_password(srv->backend.ctx, nlogin, npass, npass_len, &a, &err);
	if (r < 0) {
		st = tempfail(srv, err);
		goto out;
	}
	if (r == 0 || a.account == NULL) {
		st = fail(srv, MF_SASL_FAIL_CREDENTIALS, "invalid credentials");
		goto out;
	}
	if (authzid != NULL && *authzid != '\0') {
		/* RFC 4616 2: acting as another identity; we allow only
		 * another address of the same account. */
		struct mf_sasl_account z = { 0 };
		char *nz = NULL;

		if (mf_precis_username(authzid, strlen(authzid), &nz, &err) < 0) {
			st = fail(srv, MF_SASL_FAIL_MALFORMED, err);
			goto out;
		}
		r = srv->backend.lookup(srv->backend.ctx, MF_SASL_LOOKUP_ACCOUNT, nz, &z, &err);
		free(nz);
		if (r < 0) {
			mf_sasl_account_clear(&z);
			st = tempfail(srv, err);
			goto out;
		}
		if (r == 0 || z.account == NULL || strcmp(z.account, a.account) != 0) {
			mf_sasl_account_clear(&z);
			st = fail(srv, MF_SASL_FAIL_CREDENTIALS,
				  "authorization identity is not an address of the account");
			goto out;
		}
		mf_sasl_account_clear(&z);
	}
	st = succeed(srv, a.account, a.disabled);
out:
	mf_sasl_account_clear(&a);
	free(nlogin);
	if (npass != NULL) {
		OPENSSL_cleanse(npass, npass_len);
		free(npass);
	}
	return st;
}

/* PLAIN message: [authzid] NUL authcid NUL passwd (RFC 4616 2). */
static enum mf_sasl_status step_plain(struct mf_sasl_server *srv, const char *in, size_t len)
{
	const char *nul1 = memchr(in, '\0', len), *nul2;
	char *authzid, *authcid;
	enum mf_sasl_status st;

	if (nul1 == NULL)
		return fail(srv, MF_SASL_FAIL_MALFORMED, "PLAIN message without NUL");
	nul2 = memchr(nul1 + 1, '\0', len - (size_t)(nul1 + 1 - in));
	if (nul2 == NULL)
		return fail(srv, MF_SASL_FAIL_MALFORMED, "PLAIN message with one NUL");
	authzid = field_dup(in, (size_t)(nul1 - in), MF_SASL_LOGIN_MAX);
	authcid = field_dup(nul1 + 1, (size_t)(nul2 - nul1 - 1), MF_SASL_LOGIN_MAX);
	if (authzid == NULL || authcid == NULL || *authcid == '\0' ||
	    len - (size_t)(nul2 + 1 - in) > MF_SASL_PASSWORD_MAX ||
	    memchr(nul2 + 1, '\0', len - (size_t)(nul2 + 1 - in)) != NULL) {
		free(authzid);
		free(authcid);
		return fail(srv, MF_SASL_FAIL_MALFORMED, "malformed PLAIN message");
	}
	st = verify_password(srv, authzid, authcid, strlen(authcid), nul2 + 1,
			     len - (size_t)(nul2 + 1 - in));
	free(authzid);
	free(authcid);
	return st;
}

static enum mf_sasl_status step_cram(struct mf_sasl_server *srv, const char *in, size_t len)
{
	struct mf_sasl_account a = { 0 };
	unsigned char mac[16];
	char hex[33];
	const char *sp = NULL, *err;
	char *user = NULL, *nuser = NULL;
	enum mf_sasl_status st;
	int r;

	/* "user SP digest" (RFC 2195 2); the user name may hold spaces. */
	for (size_t i = len; i > 0; i--) {
		if (in[i - 1] == ' ') {
			sp = in + i - 1;
			break;
		}
	}
	if (sp == NULL || (size_t)(in + len - sp - 1) != 32 ||
	    (user = field_dup(in, (size_t)(sp - in), MF_SASL_LOGIN_MAX)) == NULL || *user == '\0') {
		st = fail(srv, MF_SASL_FAIL_MALFORMED, "malformed CRAM-MD5 response");
		goto out;
	}
	if (mf_precis_username(user, strlen(user), &nuser, &err) < 0) {
		st = fail(srv, MF_SASL_FAIL_MALFORMED, err);
		goto out;
	}
	set_login(srv, nuser);
	r = srv->backend.lookup(srv->backend.ctx, MF_SASL_LOOKUP_CRAM_MD5, nuser, &a, &err);
	if (r < 0) {
		st = tempfail(srv, err);
		goto out;
	}
	if (r == 0 || a.account == NULL || !a.cram_allowed) {
		st = fail(srv, MF_SASL_FAIL_CREDENTIALS, "invalid credentials");
		goto out;
	}
	cram_hmac(&a.cram, srv->challenge, strlen(srv->challenge), mac);
	for (int i = 0; i < 16; i++)
		snprintf(hex + 2 * i, 3, "%02x", mac[i]);
	{
		char lower[32];

		/* Hex digits compared case-insensitively (RFC 2195 says
		 * lower case; some clients send upper). */
		for (int i = 0; i < 32; i++)
			lower[i] = (char)tolower((unsigned char)sp[1 + i]);
		if (CRYPTO_memcmp(lower, hex, 32) != 0) {
			st = fail(srv, MF_SASL_FAIL_CREDENTIALS, "invalid credentials");
			goto out;
		}
	}
	st = succeed(srv, a.account, a.disabled);
out:
	mf_sasl_account_clear(&a);
	free(user);
	free(nuser);
	return st;
}

/* Decodes a SCRAM saslname ("=2C" is ',', "=3D" is '='; RFC 5802 5.1). */
static char *saslname_decode(const char *s, size_t len)
{
	char *out = mf_xmalloc(len + 1);
	size_t o = 0;

	for (size_t i = 0; i < len; i++) {
		if (s[i] == '=') {
			if (i + 2 < len + 0 && s[i + 1] == '2' && s[i + 2] == 'C')
				out[o++] = ',';
			else if (i + 2 < len + 0 && s[i + 1] == '3' && s[i + 2] == 'D')
				out[o++] = '=';
			else
				goto bad;
			i += 2;
		} else if (s[i] == ',' || s[i] == '\0') {
			goto bad;
		} else {
			out[o++] = s[i];
		}
	}
	out[o] = '\0';
	return out;
bad:
	free(out);
	return NULL;
}

static bool nonce_valid(const char *s, size_t len)
{
	if (len == 0 || len > MF_SASL_NONCE_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		/* printable ASCII except ',' (RFC 5802 7) */
		if (s[i] < 0x21 || s[i] > 0x7e || s[i] == ',')
			return false;
	}
	return true;
}

/* Made-up material for a login without any, so the exchange continues
 * the same way and fails at the proof (sasl.h). */
static void fake_material(struct mf_sasl_server *srv, const char *login)
{
	enum mf_sasl_hash h = mech_hash(srv->mech);
	unsigned char mac[32];
	char *msg = mf_xasprintf("%d:%s", (int)h, login);

	pthread_once(&secret_once, secret_init);
	hmac(MF_SASL_SHA256, fake_secret, sizeof(fake_secret), msg, strlen(msg), mac);
	free(msg);
	mf_sasl_account_clear(&srv->acct);
	srv->acct.scram.hash = h;
	memcpy(srv->acct.scram.salt, mac, MF_SASL_SALT_LEN);
	srv->acct.scram.salt_len = MF_SASL_SALT_LEN;
	srv->acct.scram.iterations = MF_SASL_SCRAM_ITERATIONS;
	RAND_bytes(srv->acct.scram.stored_key, sizeof(srv->acct.scram.stored_key));
	srv->known = false;
}

static enum mf_sasl_status step_scram_first(struct mf_sasl_server *srv, const char *in,
					    size_t len)
{
	const char *p = in, *end = in + len, *comma, *bare, *nstart, *nend;
	char *user = NULL, *nuser = NULL, *snonce = NULL, *salt_b64 = NULL, *msg = NULL;
	const char *err;
	enum mf_sasl_status st;
	bool plus = mech_is_plus(srv->mech);
	int r;

	if (memchr(in, '\0', len) != NULL)
		return fail(srv, MF_SASL_FAIL_MALFORMED, "NUL in SCRAM message");
	/* gs2-header: cbind flag "," [authzid] "," (RFC 5802 7). */
	comma = memchr(p, ',', len);
	if (comma == NULL)
		return fail(srv, MF_SASL_FAIL_MALFORMED, "malformed SCRAM client-first");
	if (comma - p == 1 && *p == 'n') {
		if (plus)
			return fail(srv, MF_SASL_FAIL_CHANNEL_BINDING,
				    "-PLUS mechanism without channel binding");
	} else if (comma - p == 1 && *p == 'y') {
		/* The client could bind but thinks we cannot: if we can, an
		 * attacker removed -PLUS from the list (RFC 5802 6). */
		if (plus || tls_has_cb(&srv->tls))
			return fail(srv, MF_SASL_FAIL_CHANNEL_BINDING,
				    "channel binding downgrade detected");
	} else if (comma - p > 2 && p[0] == 'p' && p[1] == '=') {
		size_t nl = (size_t)(comma - p - 2);

		if (!plus)
			return fail(srv, MF_SASL_FAIL_MALFORMED,
				    "channel binding requested with a non-PLUS mechanism");
		if (nl == 10 && memcmp(p + 2, "tls-unique", 10) == 0 && srv->tls.unique_len > 0) {
			srv->cb = srv->tls.unique;
			srv->cb_len = srv->tls.unique_len;
		} else if (nl == 12 && memcmp(p + 2, "tls-exporter", 12) == 0 &&
			   srv->tls.exporter_len > 0) {
			srv->cb = srv->tls.exporter;
			srv->cb_len = srv->tls.exporter_len;
		} else {
			return fail(srv, MF_SASL_FAIL_CHANNEL_BINDING,
				    "unsupported channel binding type");
		}
	} else {
		return fail(srv, MF_SASL_FAIL_MALFORMED, "malformed SCRAM gs2 header");
	}
	p = comma + 1;
	comma = memchr(p, ',', (size_t)(end - p));
	if (comma == NULL || (comma != p && (comma - p < 2 || p[0] != 'a' || p[1] != '=')))
		return fail(srv, MF_SASL_FAIL_MALFORMED, "malformed SCRAM authzid");
	/* An authzid must name the same user; checked below once known. */
	bare = comma + 1;
	srv->gs2_header = field_dup(in, (size_t)(bare - in), MF_SASL_MESSAGE_MAX);
	/* client-first-message-bare: "n=" user ",r=" nonce ["," ext] */
	if (end - bare < 2 || bare[0] != 'n' || bare[1] != '=') {
		/* "m=" (reserved-mext) included: unsupported, RFC 5802 5.1. */
		return fail(srv, MF_SASL_FAIL_MALFORMED, "malformed SCRAM client-first-bare");
	}
	comma = memchr(bare, ',', (size_t)(end - bare));
	if (comma == NULL || end - comma < 4 || comma[1] != 'r' || comma[2] != '=')
		return fail(srv, MF_SASL_FAIL_MALFORMED, "SCRAM client-first without nonce");
	user = saslname_decode(bare + 2, (size_t)(comma - bare - 2));
	if (user == NULL || *user == '\0' || strlen(user) > MF_SASL_LOGIN_MAX) {
		st = fail(srv, MF_SASL_FAIL_MALFORMED, "bad SCRAM user name");
		goto out;
	}
	nstart = comma + 3;
	nend = memchr(nstart, ',', (size_t)(end - nstart));
	if (nend == NULL)
		nend = end;
	if (!nonce_valid(nstart, (size_t)(nend - nstart))) {
		st = fail(srv, MF_SASL_FAIL_MALFORMED, "bad SCRAM client nonce");
		goto out;
	}
	if (comma - bare > 2 && srv->gs2_header != NULL) {
		const char *a = strchr(srv->gs2_header, ',') + 1;

		if (a[0] == 'a') {
			size_t al = strlen(a) - 1 - 2;
			char *authzid = saslname_decode(a + 2, al);

			/* Only the user itself as authzid. */
			if (authzid == NULL || strcmp(authzid, user) != 0) {
				free(authzid);
				st = fail(srv, MF_SASL_FAIL_CREDENTIALS,
					  "authorization identity differs from user");
				goto out;
			}
			free(authzid);
		}
	}
	if (mf_precis_username(user, strlen(user), &nuser, &err) < 0) {
		st = fail(srv, MF_SASL_FAIL_MALFORMED, err);
		goto out;
	}
	set_login(srv, nuser);
	srv->client_first_bare = field_dup(bare, (size_t)(end - bare), MF_SASL_MESSAGE_MAX);
	mf_sasl_account_clear(&srv->acct);
	r = srv->backend.lookup(srv->backend.ctx,
				mech_hash(srv->mech) == MF_SASL_SHA1 ? MF_SASL_LOOKUP_SCRAM_SHA1
								     : MF_SASL_LOOKUP_SCRAM_SHA256,
				nuser, &srv->acct, &err);
	if (r < 0) {
		st = tempfail(srv, err);
		goto out;
	}
	if (r == 0 || srv->acct.account == NULL || !srv->acct.scram_set ||
	    srv->acct.scram.hash != mech_hash(srv->mech) || srv->acct.scram.salt_len == 0)
		fake_material(srv, nuser);
	else
		srv->known = true;
	if (srv->test_nonce != NULL) {
		snonce = mf_xstrdup(srv->test_nonce);
	} else {
		unsigned char rnd[18];

		if (RAND_bytes(rnd, sizeof(rnd)) != 1) {
			st = tempfail(srv, "no random bytes");
			goto out;
		}
		snonce = mf_sasl_base64_encode(rnd, sizeof(rnd));
	}
	srv->nonce = mf_xasprintf("%.*s%s", (int)(nend - nstart), nstart, snonce);
	salt_b64 = mf_sasl_base64_encode(srv->acct.scram.salt, srv->acct.scram.salt_len);
	srv->server_first = mf_xasprintf("r=%s,s=%s,i=%u", srv->nonce, salt_b64,
					 (unsigned)srv->acct.scram.iterations);
	st = challenge(srv, srv->server_first, strlen(srv->server_first), SRV_SCRAM_FINAL);
out:
	free(user);
	free(nuser);
	free(snonce);
	free(salt_b64);
	free(msg);
	return st;
}

static enum mf_sasl_status step_scram_final(struct mf_sasl_server *srv, const char *in,
					    size_t len)
{
	enum mf_sasl_hash h = mech_hash(srv->mech);
	size_t hl = hash_len(h);
	const char *end = in + len, *pp, *comma;
	unsigned char *cbin = NULL, *proof = NULL;
	size_t cbin_len = 0, proof_len = 0, gl, nl;
	unsigned char sig[MF_SASL_KEY_MAX], key[MF_SASL_KEY_MAX], stored[MF_SASL_KEY_MAX];
	unsigned char ssig[MF_SASL_KEY_MAX];
	char *authmsg = NULL, *v = NULL, *final = NULL;
	enum mf_sasl_status st;

	if (memchr(in, '\0', len) != NULL || len < 3 || in[0] != 'c' || in[1] != '=') {
		st = fail(srv, MF_SASL_FAIL_MALFORMED, "malformed SCRAM client-final");
		goto out;
	}
	/* The proof is the last attribute (RFC 5802 7). */
	pp = NULL;
	for (const char *q = in; q + 3 <= end; q++) {
		if (q[0] == ',' && q[1] == 'p' && q[2] == '=')
			pp = q;
	}
	comma = memchr(in, ',', len);
	if (pp == NULL || comma == NULL || comma == pp) {
		st = fail(srv, MF_SASL_FAIL_MALFORMED, "SCRAM client-final without nonce or proof");
		goto out;
	}
	if (mf_sasl_base64_decode(in + 2, (size_t)(comma - in - 2), &cbin, &cbin_len) < 0 ||
	    mf_sasl_base64_decode(pp + 3, (size_t)(end - pp - 3), &proof, &proof_len) < 0 ||
	    proof_len != hl) {
		st = fail(srv, MF_SASL_FAIL_MALFORMED, "bad base64 in SCRAM client-final");
		goto out;
	}
	/* c= is the gs2 header followed by the channel binding data. */
	gl = strlen(srv->gs2_header);
	if (cbin_len != gl + srv->cb_len || memcmp(cbin, srv->gs2_header, gl) != 0 ||
	    CRYPTO_memcmp(cbin + gl, srv->cb, srv->cb_len) != 0) {
		st = fail(srv, MF_SASL_FAIL_CHANNEL_BINDING, "channel binding mismatch");
		goto out;
	}
	nl = strlen(srv->nonce);
	if (end - comma < 4 || comma[1] != 'r' || comma[2] != '=' ||
	    (size_t)(pp - comma - 3) < nl || memcmp(comma + 3, srv->nonce, nl) != 0 ||
	    (comma + 3 + nl != pp && comma[3 + nl] != ',')) {
		st = fail(srv, MF_SASL_FAIL_MALFORMED, "SCRAM nonce mismatch");
		goto out;
	}
	authmsg = mf_xasprintf("%s,%s,%.*s", srv->client_first_bare, srv->server_first,
			       (int)(pp - in), in);
	/* ClientKey = ClientProof XOR HMAC(StoredKey, AuthMessage); the
	 * client knew the password when H(ClientKey) is StoredKey. */
	hmac(h, srv->acct.scram.stored_key, hl, authmsg, strlen(authmsg), sig);
	for (size_t i = 0; i < hl; i++)
		key[i] = proof[i] ^ sig[i];
	digest(h, key, hl, stored);
	if (CRYPTO_memcmp(stored, srv->acct.scram.stored_key, hl) != 0 || !srv->known) {
		st = fail(srv, MF_SASL_FAIL_CREDENTIALS, "invalid credentials");
		goto out;
	}
	if (srv->acct.disabled != NULL) {
		st = fail(srv, MF_SASL_FAIL_DISABLED, srv->acct.disabled);
		goto out;
	}
	if (srv->cert_account != NULL && strcmp(srv->cert_account, srv->acct.account) != 0) {
		st = fail(srv, MF_SASL_FAIL_WRONG_ACCOUNT,
			  "credentials are for another account than the TLS client certificate");
		goto out;
	}
	hmac(h, srv->acct.scram.server_key, hl, authmsg, strlen(authmsg), ssig);
	v = mf_sasl_base64_encode(ssig, hl);
	final = mf_xasprintf("v=%s", v);
	st = challenge(srv, final, strlen(final), SRV_SCRAM_DONE);
out:
	free(cbin);
	free(proof);
	free(authmsg);
	free(v);
	free(final);
	OPENSSL_cleanse(key, sizeof(key));
	return st;
}

static enum mf_sasl_status step_external(struct mf_sasl_server *srv, const char *in, size_t len)
{
	struct mf_sasl_account a = { 0 };
	char *authzid = NULL, *nz = NULL;
	const char *err;
	enum mf_sasl_status st;
	int r;

	if (len == 0) {
		set_login(srv, srv->cert_account);
		return succeed(srv, srv->cert_account, NULL);
	}
	authzid = field_dup(in, len, MF_SASL_LOGIN_MAX);
	if (authzid == NULL || mf_precis_username(authzid, len, &nz, &err) < 0) {
		st = fail(srv, MF_SASL_FAIL_MALFORMED, "bad EXTERNAL authorization identity");
		goto out;
	}
	set_login(srv, nz);
	r = srv->backend.lookup(srv->backend.ctx, MF_SASL_LOOKUP_ACCOUNT, nz, &a, &err);
	if (r < 0) {
		st = tempfail(srv, err);
		goto out;
	}
	if (r == 0 || a.account == NULL) {
		st = fail(srv, MF_SASL_FAIL_CREDENTIALS, "unknown authorization identity");
		goto out;
	}
	st = succeed(srv, a.account, a.disabled);
out:
	mf_sasl_account_clear(&a);
	free(authzid);
	free(nz);
	return st;
}

enum mf_sasl_status mf_sasl_server_step(struct mf_sasl_server *srv, const void *in_v, size_t len,
					bool has_data, const unsigned char **out_r,
					size_t *out_len_r)
{
	const char *in = in_v;
	enum mf_sasl_status st;

	*out_r = NULL;
	*out_len_r = 0;
	if (srv->state == SRV_FINISHED)
		return srv->account != NULL ? MF_SASL_SUCCESS : MF_SASL_FAILED;
	if (len > MF_SASL_MESSAGE_MAX)
		return fail(srv, MF_SASL_FAIL_MALFORMED, "SASL message too long");
	if (++srv->steps > MF_SASL_STEPS_MAX)
		return fail(srv, MF_SASL_FAIL_MALFORMED, "too many SASL steps");
	switch (srv->state) {
	case SRV_START:
		switch (srv->mech) {
		case MF_SASL_PLAIN:
			if (!has_data)
				st = challenge(srv, "", 0, SRV_PLAIN);
			else
				st = step_plain(srv, in, len);
			break;
		case MF_SASL_LOGIN:
			/* Some clients send the user name as initial response. */
			if (has_data && len > 0) {
				srv->pending_user = field_dup(in, len, MF_SASL_LOGIN_MAX);
				if (srv->pending_user == NULL)
					return fail(srv, MF_SASL_FAIL_MALFORMED, "bad LOGIN user name");
				st = challenge(srv, "Password:", 9, SRV_LOGIN_PASS);
			} else {
				st = challenge(srv, "Username:", 9, SRV_LOGIN_USER);
			}
			break;
		case MF_SASL_CRAM_MD5:
			if (has_data && len > 0)
				return fail(srv, MF_SASL_FAIL_MALFORMED,
					    "CRAM-MD5 takes no initial response");
			st = challenge(srv, srv->challenge, strlen(srv->challenge),
				       SRV_CRAM_RESPONSE);
			break;
		case MF_SASL_EXTERNAL:
			if (!has_data)
				st = challenge(srv, "", 0, SRV_EXTERNAL);
			else
				st = step_external(srv, in, len);
			break;
		default:
			if (!has_data)
				st = challenge(srv, "", 0, SRV_SCRAM_FIRST);
			else
				st = step_scram_first(srv, in, len);
			break;
		}
		break;
	case SRV_PLAIN:
		st = step_plain(srv, in, len);
		break;
	case SRV_EXTERNAL:
		st = step_external(srv, in, len);
		break;
	case SRV_LOGIN_USER:
		srv->pending_user = field_dup(in, len, MF_SASL_LOGIN_MAX);
		if (srv->pending_user == NULL || len == 0)
			return fail(srv, MF_SASL_FAIL_MALFORMED, "bad LOGIN user name");
		st = challenge(srv, "Password:", 9, SRV_LOGIN_PASS);
		break;
	case SRV_LOGIN_PASS:
		if (len > MF_SASL_PASSWORD_MAX)
			return fail(srv, MF_SASL_FAIL_MALFORMED, "password too long");
		st = verify_password(srv, NULL, srv->pending_user, strlen(srv->pending_user), in,
				     len);
		break;
	case SRV_CRAM_RESPONSE:
		st = step_cram(srv, in, len);
		break;
	case SRV_SCRAM_FIRST:
		st = step_scram_first(srv, in, len);
		break;
	case SRV_SCRAM_FINAL:
		st = step_scram_final(srv, in, len);
		break;
	case SRV_SCRAM_DONE:
		/* The client acknowledges server-final with an empty message. */
		if (len != 0)
			return fail(srv, MF_SASL_FAIL_MALFORMED, "unexpected data after server-final");
		st = succeed(srv, srv->acct.account, NULL);
		break;
	default:
		st = fail(srv, MF_SASL_FAIL_MALFORMED, "bad state");
		break;
	}
	if (st == MF_SASL_CONTINUE) {
		*out_r = srv->out;
		*out_len_r = srv->out_len;
	}
	return st;
}

/* --- client ------------------------------------------------------------- */

enum cl_state {
	CL_START,
	CL_LOGIN_USER,
	CL_LOGIN_PASS,
	CL_CRAM,
	CL_SCRAM_FIRST,
	CL_SCRAM_FINAL,
	CL_DONE,
};

struct mf_sasl_client {
	enum mf_sasl_mech mech;
	enum cl_state state;
	char *user;
	char *password;
	size_t password_len;
	struct mf_sasl_tls tls;
	unsigned char *out;
	size_t out_len;
	char *nonce;
	char *gs2_header;
	const unsigned char *cb;
	size_t cb_len;
	char *client_first_bare;
	unsigned char server_sig[MF_SASL_KEY_MAX];
	bool verified;
};

int mf_sasl_client_create(enum mf_sasl_mech mech, const char *username, const char *password,
			  const struct mf_sasl_tls *tls, struct mf_sasl_client **cl_r,
			  const char **error_r)
{
	struct mf_sasl_client *cl;

	*cl_r = NULL;
	if (mech == MF_SASL_EXTERNAL || (unsigned)mech >= MF_SASL_MECH_COUNT) {
		*error_r = "mechanism not supported by the client";
		return -1;
	}
	if (strlen(username) > MF_SASL_LOGIN_MAX || strlen(password) > MF_SASL_PASSWORD_MAX) {
		*error_r = "user name or password too long";
		return -1;
	}
	if (mech_is_plus(mech) && !tls_has_cb(tls)) {
		*error_r = "channel binding needs TLS with tls-exporter or tls-unique";
		return -1;
	}
	cl = mf_xcalloc(1, sizeof(*cl));
	cl->mech = mech;
	cl->user = mf_xstrdup(username);
	if (mech_is_scram(mech)) {
		const char *err;

		if (mf_precis_password(password, strlen(password), &cl->password,
				       &cl->password_len, &err) < 0) {
			/* Send it as given; the server decides. */
			cl->password = mf_xstrdup(password);
			cl->password_len = strlen(password);
		}
	} else {
		cl->password = mf_xstrdup(password);
		cl->password_len = strlen(password);
	}
	if (tls != NULL)
		cl->tls = *tls;
	*cl_r = cl;
	return 0;
}

void mf_sasl_client_free(struct mf_sasl_client **clp)
{
	struct mf_sasl_client *cl = *clp;

	if (cl == NULL)
		return;
	free(cl->user);
	if (cl->password != NULL) {
		OPENSSL_cleanse(cl->password, cl->password_len);
		free(cl->password);
	}
	free(cl->out);
	free(cl->nonce);
	free(cl->gs2_header);
	free(cl->client_first_bare);
	OPENSSL_cleanse(cl, sizeof(*cl));
	free(cl);
	*clp = NULL;
}

void mf_sasl_client_set_nonce(struct mf_sasl_client *cl, const char *nonce)
{
	free(cl->nonce);
	cl->nonce = mf_xstrdup(nonce);
}

int mf_sasl_client_verified(const struct mf_sasl_client *cl)
{
	return cl->verified ? 1 : 0;
}

static void cl_out(struct mf_sasl_client *cl, const void *data, size_t len)
{
	free(cl->out);
	cl->out = mf_xmalloc(len + 1);
	memcpy(cl->out, data, len);
	cl->out[len] = '\0';
	cl->out_len = len;
}

/* Encodes a user name as SCRAM saslname. */
static char *saslname_encode(const char *s)
{
	struct mf_buf b;
	char *r;

	mf_buf_init(&b, 3 * strlen(s) + 1);
	for (const char *p = s; *p != '\0'; p++) {
		if (*p == ',')
			mf_buf_append(&b, "=2C", 3);
		else if (*p == '=')
			mf_buf_append(&b, "=3D", 3);
		else
			mf_buf_append(&b, p, 1);
	}
	r = mf_xmalloc(b.len + 1);
	memcpy(r, b.data, b.len);
	r[b.len] = '\0';
	mf_buf_free(&b);
	return r;
}

int mf_sasl_client_initial(struct mf_sasl_client *cl, const unsigned char **out_r,
			   size_t *out_len_r, bool *has_r, const char **error_r)
{
	*out_r = NULL;
	*out_len_r = 0;
	*has_r = false;
	if (cl->state != CL_START) {
		*error_r = "exchange already started";
		return -1;
	}
	switch (cl->mech) {
	case MF_SASL_PLAIN: {
		size_t ul = strlen(cl->user);
		unsigned char *m = mf_xmalloc(ul + cl->password_len + 2);

		m[0] = '\0';
		memcpy(m + 1, cl->user, ul);
		m[1 + ul] = '\0';
		memcpy(m + 2 + ul, cl->password, cl->password_len);
		cl_out(cl, m, ul + cl->password_len + 2);
		OPENSSL_cleanse(m, ul + cl->password_len + 2);
		free(m);
		cl->state = CL_DONE;
		*has_r = true;
		break;
	}
	case MF_SASL_LOGIN:
		cl->state = CL_LOGIN_USER;
		return 0;
	case MF_SASL_CRAM_MD5:
		cl->state = CL_CRAM;
		return 0;
	default: {
		char *name = saslname_encode(cl->user), *msg;

		if (cl->nonce == NULL) {
			unsigned char rnd[18];

			if (RAND_bytes(rnd, sizeof(rnd)) != 1) {
				free(name);
				*error_r = "no random bytes";
				return -1;
			}
			cl->nonce = mf_sasl_base64_encode(rnd, sizeof(rnd));
		}
		if (mech_is_plus(cl->mech)) {
			/* Prefer tls-exporter (RFC 9266: the one TLS 1.3 has). */
			if (cl->tls.exporter_len > 0) {
				cl->gs2_header = mf_xstrdup("p=tls-exporter,,");
				cl->cb = cl->tls.exporter;
				cl->cb_len = cl->tls.exporter_len;
			} else {
				cl->gs2_header = mf_xstrdup("p=tls-unique,,");
				cl->cb = cl->tls.unique;
				cl->cb_len = cl->tls.unique_len;
			}
		} else {
			cl->gs2_header = mf_xstrdup("n,,");
		}
		cl->client_first_bare = mf_xasprintf("n=%s,r=%s", name, cl->nonce);
		msg = mf_xasprintf("%s%s", cl->gs2_header, cl->client_first_bare);
		cl_out(cl, msg, strlen(msg));
		free(msg);
		free(name);
		cl->state = CL_SCRAM_FIRST;
		*has_r = true;
		break;
	}
	}
	*out_r = cl->out;
	*out_len_r = cl->out_len;
	return 0;
}

/* Finds "k=" attribute value in a SCRAM message (a ','-separated list). */
static bool scram_attr(const char *msg, char k, const char **v_r, size_t *vl_r)
{
	const char *p = msg;

	while (*p != '\0') {
		const char *c = strchr(p, ',');
		size_t l = c != NULL ? (size_t)(c - p) : strlen(p);

		if (l >= 2 && p[0] == k && p[1] == '=') {
			*v_r = p + 2;
			*vl_r = l - 2;
			return true;
		}
		if (c == NULL)
			break;
		p = c + 1;
	}
	return false;
}

static int client_scram_first(struct mf_sasl_client *cl, const char *in, const char **error_r)
{
	enum mf_sasl_hash h = mech_hash(cl->mech);
	size_t hl = hash_len(h);
	const char *r, *s, *i;
	size_t rl, sl, il;
	unsigned char *salt = NULL;
	size_t salt_len;
	char num[16], *end, *cbin_raw = NULL, *cbin = NULL, *without = NULL, *authmsg = NULL;
	char *proof_b64 = NULL, *msg = NULL;
	unsigned char salted[MF_SASL_KEY_MAX], ckey[MF_SASL_KEY_MAX], skey[MF_SASL_KEY_MAX];
	unsigned char stored[MF_SASL_KEY_MAX], sig[MF_SASL_KEY_MAX], proof[MF_SASL_KEY_MAX];
	unsigned long iter;
	size_t gl;
	int ret = -1;

	if (!scram_attr(in, 'r', &r, &rl) || !scram_attr(in, 's', &s, &sl) ||
	    !scram_attr(in, 'i', &i, &il) || in[0] == 'm') {
		*error_r = "malformed SCRAM server-first";
		goto out;
	}
	if (rl <= strlen(cl->nonce) || memcmp(r, cl->nonce, strlen(cl->nonce)) != 0 ||
	    !nonce_valid(r, rl)) {
		*error_r = "SCRAM server nonce does not extend ours";
		goto out;
	}
	if (il == 0 || il >= sizeof(num)) {
		*error_r = "bad SCRAM iteration count";
		goto out;
	}
	memcpy(num, i, il);
	num[il] = '\0';
	iter = strtoul(num, &end, 10);
	if (*end != '\0' || iter == 0 || iter > MF_SASL_SCRAM_ITERATIONS_MAX) {
		*error_r = "bad SCRAM iteration count";
		goto out;
	}
	if (mf_sasl_base64_decode(s, sl, &salt, &salt_len) < 0 || salt_len == 0) {
		*error_r = "bad SCRAM salt";
		goto out;
	}
	if (PKCS5_PBKDF2_HMAC(cl->password, (int)cl->password_len, salt, (int)salt_len, (int)iter,
			      hash_md(h), (int)hl, salted) != 1) {
		*error_r = "PBKDF2 failed";
		goto out;
	}
	hmac(h, salted, hl, "Client Key", 10, ckey);
	digest(h, ckey, hl, stored);
	hmac(h, salted, hl, "Server Key", 10, skey);
	gl = strlen(cl->gs2_header);
	cbin_raw = mf_xmalloc(gl + cl->cb_len + 1);
	memcpy(cbin_raw, cl->gs2_header, gl);
	if (cl->cb_len > 0)
		memcpy(cbin_raw + gl, cl->cb, cl->cb_len);
	cbin = mf_sasl_base64_encode(cbin_raw, gl + cl->cb_len);
	without = mf_xasprintf("c=%s,r=%.*s", cbin, (int)rl, r);
	authmsg = mf_xasprintf("%s,%s,%s", cl->client_first_bare, in, without);
	hmac(h, stored, hl, authmsg, strlen(authmsg), sig);
	for (size_t k = 0; k < hl; k++)
		proof[k] = ckey[k] ^ sig[k];
	hmac(h, skey, hl, authmsg, strlen(authmsg), cl->server_sig);
	proof_b64 = mf_sasl_base64_encode(proof, hl);
	msg = mf_xasprintf("%s,p=%s", without, proof_b64);
	cl_out(cl, msg, strlen(msg));
	ret = 0;
out:
	free(salt);
	free(cbin_raw);
	free(cbin);
	free(without);
	free(authmsg);
	free(proof_b64);
	free(msg);
	OPENSSL_cleanse(salted, sizeof(salted));
	OPENSSL_cleanse(ckey, sizeof(ckey));
	OPENSSL_cleanse(skey, sizeof(skey));
	return ret;
}

int mf_sasl_client_step(struct mf_sasl_client *cl, const unsigned char *in, size_t len,
			const unsigned char **out_r, size_t *out_len_r, const char **error_r)
{
	char *msg = NULL;
	int ret = -1;

	*out_r = NULL;
	*out_len_r = 0;
	if (len > MF_SASL_MESSAGE_MAX || memchr(in, '\0', len) != NULL) {
		*error_r = "bad server challenge";
		return -1;
	}
	msg = mf_xmalloc(len + 1);
	memcpy(msg, in, len);
	msg[len] = '\0';
	switch (cl->state) {
	case CL_LOGIN_USER:
		cl_out(cl, cl->user, strlen(cl->user));
		cl->state = CL_LOGIN_PASS;
		break;
	case CL_LOGIN_PASS:
		cl_out(cl, cl->password, cl->password_len);
		cl->state = CL_DONE;
		break;
	case CL_CRAM: {
		struct mf_sasl_cram cram;
		unsigned char mac[16];
		char *resp;
		size_t ul = strlen(cl->user);

		mf_sasl_cram_derive(cl->password, cl->password_len, &cram);
		cram_hmac(&cram, msg, len, mac);
		resp = mf_xmalloc(ul + 1 + 32 + 1);
		memcpy(resp, cl->user, ul);
		resp[ul] = ' ';
		for (int k = 0; k < 16; k++)
			snprintf(resp + ul + 1 + 2 * k, 3, "%02x", mac[k]);
		cl_out(cl, resp, ul + 33);
		free(resp);
		OPENSSL_cleanse(&cram, sizeof(cram));
		cl->state = CL_DONE;
		break;
	}
	case CL_SCRAM_FIRST:
		if (client_scram_first(cl, msg, error_r) < 0)
			goto out;
		cl->state = CL_SCRAM_FINAL;
		break;
	case CL_SCRAM_FINAL: {
		const char *v;
		size_t vl;
		unsigned char *sig = NULL;
		size_t sig_len = 0;
		size_t hl = hash_len(mech_hash(cl->mech));

		if (scram_attr(msg, 'e', &v, &vl)) {
			*error_r = mf_errorf("SCRAM server error: %.*s", (int)vl, v);
			goto out;
		}
		if (!scram_attr(msg, 'v', &v, &vl) ||
		    mf_sasl_base64_decode(v, vl, &sig, &sig_len) < 0 || sig_len != hl ||
		    CRYPTO_memcmp(sig, cl->server_sig, hl) != 0) {
			free(sig);
			*error_r = "SCRAM server signature is wrong: server does not know "
				   "the password or the connection is intercepted";
			goto out;
		}
		free(sig);
		cl->verified = true;
		cl_out(cl, "", 0);
		cl->state = CL_DONE;
		break;
	}
	case CL_DONE:
		/* Some servers send an empty challenge where the protocol has no
		 * room for final data (RFC 4422 5 item 2): acknowledge it. */
		if (len == 0) {
			cl_out(cl, "", 0);
			break;
		}
		*error_r = "unexpected server challenge";
		goto out;
	default:
		*error_r = "unexpected server challenge";
		goto out;
	}
	*out_r = cl->out;
	*out_len_r = cl->out_len;
	ret = 0;
out:
	free(msg);
	return ret;
}
