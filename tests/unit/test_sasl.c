/* Unit tests for libshared/sasl.c and precis.c: the RFC example exchanges
 * (RFC 5802 5, RFC 7677 3, RFC 2195 2) with fixed nonces, and what must
 * fail: wrong proof, wrong nonce, replay, channel binding mismatch and
 * downgrade, unknown users, disabled accounts, certificate accounts. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "precis.h"
#include "sasl.h"

/* --- a backend with fixed accounts -------------------------------------- */

struct fake {
	const char *disabled;      /* message for "user" */
	bool fail_lookup;
	bool cram;                 /* "user" allows CRAM-MD5 */
	int lookups;
};

static const char *ACCOUNT = "acct";

static void fill_user(struct fake *f, enum mf_sasl_lookup what, struct mf_sasl_account *a)
{
	const char *err;
	unsigned char *salt;
	size_t salt_len;

	a->account = strdup(ACCOUNT);
	a->disabled = f->disabled != NULL ? strdup(f->disabled) : NULL;
	if (what == MF_SASL_LOOKUP_SCRAM_SHA1) {
		assert_int_equal(mf_sasl_base64_decode("QSXCR+Q6sek8bf92", 16, &salt, &salt_len), 0);
		assert_int_equal(mf_sasl_scram_derive_salt(MF_SASL_SHA1, "pencil", 6, salt, salt_len,
							   4096, &a->scram, &err), 0);
		free(salt);
		a->scram_set = true;
	} else if (what == MF_SASL_LOOKUP_SCRAM_SHA256) {
		assert_int_equal(mf_sasl_base64_decode("W22ZaJ0SNY7soEsUEjb6gQ==", 24, &salt,
						       &salt_len), 0);
		assert_int_equal(mf_sasl_scram_derive_salt(MF_SASL_SHA256, "pencil", 6, salt,
							   salt_len, 4096, &a->scram, &err), 0);
		free(salt);
		a->scram_set = true;
	} else if (what == MF_SASL_LOOKUP_CRAM_MD5) {
		a->cram_allowed = f->cram;
		mf_sasl_cram_derive("pencil", 6, &a->cram);
	}
}

static int fake_verify(void *ctx, const char *login, const char *password, size_t len,
		       struct mf_sasl_account *a_r, const char **error_r)
{
	struct fake *f = ctx;

	if (f->fail_lookup) {
		*error_r = "store down";
		return -1;
	}
	/* "héllo" arrives NFC whatever the client sent. */
	if ((strcmp(login, "user") == 0 || strcmp(login, "user@example.org") == 0) &&
	    len == 6 && memcmp(password, "pencil", 6) == 0) {
		fill_user(f, MF_SASL_LOOKUP_ACCOUNT, a_r);
		return 1;
	}
	if (strcmp(login, "h\xc3\xa9llo") == 0 && strcmp(password, "p\xc3\xa9 w") == 0) {
		a_r->account = strdup("hello");
		return 1;
	}
	return 0;
}

static int fake_lookup(void *ctx, enum mf_sasl_lookup what, const char *login,
		       struct mf_sasl_account *a_r, const char **error_r)
{
	struct fake *f = ctx;

	f->lookups++;
	if (f->fail_lookup) {
		*error_r = "store down";
		return -1;
	}
	if (strcmp(login, "user") == 0 || strcmp(login, "user@example.org") == 0 ||
	    strcmp(login, "tim") == 0) {
		fill_user(f, what, a_r);
		return 1;
	}
	if (strcmp(login, "other") == 0) {
		a_r->account = strdup("other");
		return 1;
	}
	return 0;
}

static struct fake fk;
static const struct mf_sasl_backend backend = { &fk, fake_verify, fake_lookup };
static const struct mf_sasl_tls tls_on = { .active = true };

static int setup(void **state)
{
	memset(&fk, 0, sizeof(fk));
	return 0;
}

static struct mf_sasl_server *server(enum mf_sasl_mech mech, const struct mf_sasl_tls *tls,
				     const char *cert_account)
{
	struct mf_sasl_server_settings set = { .cram_md5 = true, .hostname = "mx.example" };
	struct mf_sasl_server *srv = NULL;
	const char *err = NULL;

	assert_int_equal(mf_sasl_server_create(mech, &set, &backend, tls, cert_account, &srv,
					       &err), 0);
	return srv;
}

static enum mf_sasl_status step_str(struct mf_sasl_server *srv, const char *in,
				    const char **out_r)
{
	const unsigned char *out;
	size_t out_len;
	enum mf_sasl_status st = mf_sasl_server_step(srv, in, strlen(in), true, &out, &out_len);

	if (out_r != NULL)
		*out_r = (const char *)out;
	return st;
}

/* --- SCRAM --------------------------------------------------------------- */

#define S1_CFIRST "n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL"
#define S1_SNONCE "3rfcNHYJY1ZVvWVs7j"
#define S1_SFIRST "r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096"
#define S1_CFINAL "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts="
#define S1_SFINAL "v=rmF9pqV8S7suAoZWja4dJRkFsKQ="

#define S256_CFIRST "n,,n=user,r=rOprNGfwEbeRWgbNEkqO"
#define S256_SNONCE "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
#define S256_SFIRST "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0," \
	"s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
#define S256_CFINAL "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0," \
	"p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
#define S256_SFINAL "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="

static void run_example(enum mf_sasl_mech mech, const char *snonce, const char *cfirst,
			const char *sfirst, const char *cfinal, const char *sfinal)
{
	struct mf_sasl_server *srv = server(mech, NULL, NULL);
	const char *out;

	mf_sasl_server_set_nonce(srv, snonce);
	assert_int_equal(step_str(srv, cfirst, &out), MF_SASL_CONTINUE);
	assert_string_equal(out, sfirst);
	assert_int_equal(step_str(srv, cfinal, &out), MF_SASL_CONTINUE);
	assert_string_equal(out, sfinal);
	assert_int_equal(step_str(srv, "", &out), MF_SASL_SUCCESS);
	assert_string_equal(mf_sasl_server_account(srv), ACCOUNT);
	assert_string_equal(mf_sasl_server_login(srv), "user");
	mf_sasl_server_free(&srv);
	assert_null(srv);
}

static void test_scram_sha1_rfc5802(void **state)
{
	run_example(MF_SASL_SCRAM_SHA_1, S1_SNONCE, S1_CFIRST, S1_SFIRST, S1_CFINAL, S1_SFINAL);
}

static void test_scram_sha256_rfc7677(void **state)
{
	run_example(MF_SASL_SCRAM_SHA_256, S256_SNONCE, S256_CFIRST, S256_SFIRST, S256_CFINAL,
		    S256_SFINAL);
}

/* The client side produces the RFC's messages from the same nonces. */
static void test_scram_client_rfc7677(void **state)
{
	struct mf_sasl_client *cl = NULL;
	const unsigned char *out;
	size_t out_len;
	bool has;
	const char *err = NULL;

	assert_int_equal(mf_sasl_client_create(MF_SASL_SCRAM_SHA_256, "user", "pencil", NULL, &cl,
					       &err), 0);
	mf_sasl_client_set_nonce(cl, "rOprNGfwEbeRWgbNEkqO");
	assert_int_equal(mf_sasl_client_initial(cl, &out, &out_len, &has, &err), 0);
	assert_true(has);
	assert_string_equal((const char *)out, S256_CFIRST);
	assert_int_equal(mf_sasl_client_step(cl, (const unsigned char *)S256_SFIRST,
					     strlen(S256_SFIRST), &out, &out_len, &err), 0);
	assert_string_equal((const char *)out, S256_CFINAL);
	assert_int_equal(mf_sasl_client_verified(cl), 0);
	/* A server that does not know the password cannot sign. */
	assert_int_equal(mf_sasl_client_step(cl, (const unsigned char *)"v=AAAA", 6, &out,
					     &out_len, &err), -1);
	mf_sasl_client_free(&cl);

	assert_int_equal(mf_sasl_client_create(MF_SASL_SCRAM_SHA_256, "user", "pencil", NULL, &cl,
					       &err), 0);
	mf_sasl_client_set_nonce(cl, "rOprNGfwEbeRWgbNEkqO");
	assert_int_equal(mf_sasl_client_initial(cl, &out, &out_len, &has, &err), 0);
	assert_int_equal(mf_sasl_client_step(cl, (const unsigned char *)S256_SFIRST,
					     strlen(S256_SFIRST), &out, &out_len, &err), 0);
	assert_int_equal(mf_sasl_client_step(cl, (const unsigned char *)S256_SFINAL,
					     strlen(S256_SFINAL), &out, &out_len, &err), 0);
	assert_int_equal(out_len, 0);
	assert_int_equal(mf_sasl_client_verified(cl), 1);
	mf_sasl_client_free(&cl);
}

static void test_scram_wrong_proof(void **state)
{
	struct mf_sasl_server *srv = server(MF_SASL_SCRAM_SHA_256, NULL, NULL);
	const char *out;

	mf_sasl_server_set_nonce(srv, S256_SNONCE);
	assert_int_equal(step_str(srv, S256_CFIRST, &out), MF_SASL_CONTINUE);
	assert_int_equal(step_str(srv, "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
				  "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVA=", &out),
			 MF_SASL_FAILED);
	assert_int_equal(mf_sasl_server_failure(srv), MF_SASL_FAIL_CREDENTIALS);
	assert_null(mf_sasl_server_account(srv));
	mf_sasl_server_free(&srv);
}

static void test_scram_wrong_nonce(void **state)
{
	struct mf_sasl_server *srv = server(MF_SASL_SCRAM_SHA_256, NULL, NULL);
	const char *out;

	mf_sasl_server_set_nonce(srv, S256_SNONCE);
	assert_int_equal(step_str(srv, S256_CFIRST, &out), MF_SASL_CONTINUE);
	assert_int_equal(step_str(srv, "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k1,"
				  "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=", &out),
			 MF_SASL_FAILED);
	assert_int_equal(mf_sasl_server_failure(srv), MF_SASL_FAIL_MALFORMED);
	mf_sasl_server_free(&srv);
}

/* A recorded exchange played again against a new server nonce fails. */
static void test_scram_replay(void **state)
{
	struct mf_sasl_server *srv = server(MF_SASL_SCRAM_SHA_256, NULL, NULL);
	const char *out;

	/* random server nonce this time */
	assert_int_equal(step_str(srv, S256_CFIRST, &out), MF_SASL_CONTINUE);
	assert_string_not_equal(out, S256_SFIRST);
	assert_int_equal(step_str(srv, S256_CFINAL, &out), MF_SASL_FAILED);
	mf_sasl_server_free(&srv);
}

static void test_scram_unknown_user(void **state)
{
	struct mf_sasl_server *srv = server(MF_SASL_SCRAM_SHA_256, NULL, NULL);
	const char *out;
	char first[200];

	mf_sasl_server_set_nonce(srv, S256_SNONCE);
	assert_int_equal(step_str(srv, "n,,n=nobody,r=rOprNGfwEbeRWgbNEkqO", &out),
			 MF_SASL_CONTINUE);
	/* a plausible salt and count, stable for the name */
	assert_non_null(strstr(out, ",i=4096"));
	snprintf(first, sizeof(first), "%s", out);
	assert_int_equal(step_str(srv, S256_CFINAL, &out), MF_SASL_FAILED);
	assert_int_equal(mf_sasl_server_failure(srv), MF_SASL_FAIL_CREDENTIALS);
	mf_sasl_server_free(&srv);
	srv = server(MF_SASL_SCRAM_SHA_256, NULL, NULL);
	mf_sasl_server_set_nonce(srv, S256_SNONCE);
	assert_int_equal(step_str(srv, "n,,n=nobody,r=rOprNGfwEbeRWgbNEkqO", &out),
			 MF_SASL_CONTINUE);
	assert_string_equal(out, first);
	mf_sasl_server_free(&srv);
}

static void test_scram_malformed(void **state)
{
	static const char *bad[] = {
		"", "x,,n=user,r=abc", "n,n=user,r=abc", "n,,m=x,n=user,r=abc", "n,,n=user",
		"n,,n=,r=abc", "n,,n=us=er,r=abc", "n,,n=user,r=a b", "p=tls-unique,,n=user,r=abc",
		"n,,n=user,r=abc\0",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct mf_sasl_server *srv = server(MF_SASL_SCRAM_SHA_256, NULL, NULL);
		const unsigned char *out;
		size_t out_len;
		size_t len = i == 9 ? strlen(bad[i]) + 1 : strlen(bad[i]);

		assert_int_equal(mf_sasl_server_step(srv, bad[i], len, true, &out, &out_len),
				 MF_SASL_FAILED);
		mf_sasl_server_free(&srv);
	}
	assert_int_equal(fk.lookups, 0);
}

static void test_scram_tempfail(void **state)
{
	struct mf_sasl_server *srv = server(MF_SASL_SCRAM_SHA_256, NULL, NULL);
	const char *out;

	fk.fail_lookup = true;
	assert_int_equal(step_str(srv, S256_CFIRST, &out), MF_SASL_TEMPFAIL);
	mf_sasl_server_free(&srv);
}

/* Client and server against each other with channel binding. */
static int plus_exchange(const struct mf_sasl_tls *client_tls,
			 const struct mf_sasl_tls *server_tls, enum mf_sasl_mech mech,
			 enum mf_sasl_failure *failure_r)
{
	struct mf_sasl_server *srv = server(mech, server_tls, NULL);
	struct mf_sasl_client *cl = NULL;
	const unsigned char *cout, *sout;
	size_t clen, slen;
	bool has;
	const char *err;
	enum mf_sasl_status st;
	int steps = 0;

	assert_int_equal(mf_sasl_client_create(mech, "user", "pencil", client_tls, &cl, &err), 0);
	assert_int_equal(mf_sasl_client_initial(cl, &cout, &clen, &has, &err), 0);
	for (;;) {
		st = mf_sasl_server_step(srv, cout, clen, true, &sout, &slen);
		if (st != MF_SASL_CONTINUE || ++steps > 5)
			break;
		assert_int_equal(mf_sasl_client_step(cl, sout, slen, &cout, &clen, &err), 0);
	}
	*failure_r = mf_sasl_server_failure(srv);
	if (st == MF_SASL_SUCCESS)
		assert_int_equal(mf_sasl_client_verified(cl), 1);
	mf_sasl_client_free(&cl);
	mf_sasl_server_free(&srv);
	return st == MF_SASL_SUCCESS ? 0 : -1;
}

static void test_scram_plus(void **state)
{
	struct mf_sasl_tls a = { .active = true, .exporter_len = 32 };
	struct mf_sasl_tls b = { .active = true, .exporter_len = 32 };
	struct mf_sasl_tls u = { .active = true, .unique_len = 12 };
	enum mf_sasl_failure f;

	memset(a.exporter, 0x11, 32);
	memset(b.exporter, 0x22, 32);
	memset(u.unique, 0x33, 12);
	assert_int_equal(plus_exchange(&a, &a, MF_SASL_SCRAM_SHA_256_PLUS, &f), 0);
	assert_int_equal(plus_exchange(&a, &a, MF_SASL_SCRAM_SHA_1_PLUS, &f), 0);
	assert_int_equal(plus_exchange(&u, &u, MF_SASL_SCRAM_SHA_256_PLUS, &f), 0);
	/* a man in the middle has a different TLS connection on each side */
	assert_int_equal(plus_exchange(&a, &b, MF_SASL_SCRAM_SHA_256_PLUS, &f), -1);
	assert_int_equal(f, MF_SASL_FAIL_CHANNEL_BINDING);
	/* the type the client binds to must exist on the server's side */
	assert_int_equal(plus_exchange(&a, &u, MF_SASL_SCRAM_SHA_256_PLUS, &f), -1);
	assert_int_equal(f, MF_SASL_FAIL_CHANNEL_BINDING);
	/* non-PLUS over TLS still works */
	assert_int_equal(plus_exchange(NULL, &a, MF_SASL_SCRAM_SHA_256, &f), 0);
}

static void test_scram_downgrade(void **state)
{
	struct mf_sasl_tls a = { .active = true, .exporter_len = 32 };
	struct mf_sasl_server *srv;
	const char *out;

	/* "y": client can bind, believes we cannot: we can, so refuse */
	srv = server(MF_SASL_SCRAM_SHA_256, &a, NULL);
	assert_int_equal(step_str(srv, "y,,n=user,r=abcdef", &out), MF_SASL_FAILED);
	assert_int_equal(mf_sasl_server_failure(srv), MF_SASL_FAIL_CHANNEL_BINDING);
	mf_sasl_server_free(&srv);
	/* without channel binding data "y" is fine */
	srv = server(MF_SASL_SCRAM_SHA_256, &tls_on, NULL);
	assert_int_equal(step_str(srv, "y,,n=user,r=abcdef", &out), MF_SASL_CONTINUE);
	mf_sasl_server_free(&srv);
	/* -PLUS with "n" */
	srv = server(MF_SASL_SCRAM_SHA_256_PLUS, &a, NULL);
	assert_int_equal(step_str(srv, "n,,n=user,r=abcdef", &out), MF_SASL_FAILED);
	assert_int_equal(mf_sasl_server_failure(srv), MF_SASL_FAIL_CHANNEL_BINDING);
	mf_sasl_server_free(&srv);
}

static void test_scram_material_text(void **state)
{
	struct mf_sasl_scram s, p;
	const char *err;
	char *t;

	assert_int_equal(mf_sasl_scram_derive(MF_SASL_SHA256, "pencil", 6, &s, &err), 0);
	assert_int_equal(s.iterations, MF_SASL_SCRAM_ITERATIONS);
	t = mf_sasl_scram_format(&s);
	assert_int_equal(mf_sasl_scram_parse(MF_SASL_SHA256, t, &p, &err), 0);
	assert_memory_equal(&s, &p, sizeof(s));
	assert_int_equal(mf_sasl_scram_parse(MF_SASL_SHA1, t, &p, &err), -1);
	free(t);
	assert_int_equal(mf_sasl_scram_parse(MF_SASL_SHA256, "a b c", &p, &err), -1);
	assert_int_equal(mf_sasl_scram_parse(MF_SASL_SHA256, "", &p, &err), -1);
}

/* --- CRAM-MD5 ------------------------------------------------------------ */

static void test_cram_rfc2195(void **state)
{
	static const char chal[] = "<1896.697170952@postoffice.reston.mci.net>";
	struct mf_sasl_client *cl = NULL;
	struct mf_sasl_cram c, u;
	unsigned char packed[MF_SASL_CRAM_BYTES];
	const unsigned char *out;
	size_t out_len;
	bool has;
	const char *err;

	assert_int_equal(mf_sasl_client_create(MF_SASL_CRAM_MD5, "tim", "tanstaaftanstaaf", NULL,
					       &cl, &err), 0);
	assert_int_equal(mf_sasl_client_initial(cl, &out, &out_len, &has, &err), 0);
	assert_false(has);
	assert_int_equal(mf_sasl_client_step(cl, (const unsigned char *)chal, strlen(chal), &out,
					     &out_len, &err), 0);
	assert_string_equal((const char *)out, "tim b913a602c7eda7a495b4e6e7334d3890");
	mf_sasl_client_free(&cl);
	mf_sasl_cram_derive("tanstaaftanstaaf", 16, &c);
	mf_sasl_cram_pack(&c, packed);
	assert_int_equal(mf_sasl_cram_unpack(packed, sizeof(packed), &u), 0);
	assert_memory_equal(&c, &u, sizeof(c));
	assert_int_equal(mf_sasl_cram_unpack(packed, 31, &u), -1);
}

static void test_cram_server(void **state)
{
	struct mf_sasl_server *srv;
	struct mf_sasl_client *cl = NULL;
	const unsigned char *sout, *cout;
	size_t slen, clen;
	bool has;
	const char *err;

	fk.cram = true;
	srv = server(MF_SASL_CRAM_MD5, NULL, NULL);
	assert_int_equal(mf_sasl_server_step(srv, "", 0, false, &sout, &slen), MF_SASL_CONTINUE);
	assert_non_null(strstr((const char *)sout, "@mx.example>"));
	assert_int_equal(mf_sasl_client_create(MF_SASL_CRAM_MD5, "user", "pencil", NULL, &cl, &err),
			 0);
	assert_int_equal(mf_sasl_client_initial(cl, &cout, &clen, &has, &err), 0);
	assert_int_equal(mf_sasl_client_step(cl, sout, slen, &cout, &clen, &err), 0);
	assert_int_equal(mf_sasl_server_step(srv, cout, clen, true, &sout, &slen), MF_SASL_SUCCESS);
	assert_string_equal(mf_sasl_server_account(srv), ACCOUNT);
	mf_sasl_server_free(&srv);
	mf_sasl_client_free(&cl);

	/* wrong digest */
	srv = server(MF_SASL_CRAM_MD5, NULL, NULL);
	assert_int_equal(mf_sasl_server_step(srv, "", 0, false, &sout, &slen), MF_SASL_CONTINUE);
	assert_int_equal(step_str(srv, "user b913a602c7eda7a495b4e6e7334d3890", NULL),
			 MF_SASL_FAILED);
	assert_int_equal(mf_sasl_server_failure(srv), MF_SASL_FAIL_CREDENTIALS);
	mf_sasl_server_free(&srv);

	/* the account does not allow CRAM-MD5: its material is not used */
	fk.cram = false;
	srv = server(MF_SASL_CRAM_MD5, NULL, NULL);
	assert_int_equal(mf_sasl_server_step(srv, "", 0, false, &sout, &slen), MF_SASL_CONTINUE);
	assert_int_equal(mf_sasl_client_create(MF_SASL_CRAM_MD5, "user", "pencil", NULL, &cl, &err),
			 0);
	assert_int_equal(mf_sasl_client_initial(cl, &cout, &clen, &has, &err), 0);
	assert_int_equal(mf_sasl_client_step(cl, sout, slen, &cout, &clen, &err), 0);
	assert_int_equal(mf_sasl_server_step(srv, cout, clen, true, &sout, &slen), MF_SASL_FAILED);
	mf_sasl_server_free(&srv);
	mf_sasl_client_free(&cl);
}

/* --- PLAIN, LOGIN, EXTERNAL, mechanism lists ------------------------------ */

static void test_plain(void **state)
{
	struct mf_sasl_server *srv;
	const unsigned char *out;
	size_t out_len;

	srv = server(MF_SASL_PLAIN, &tls_on, NULL);
	assert_int_equal(mf_sasl_server_step(srv, "\0user\0pencil", 12, true, &out, &out_len),
			 MF_SASL_SUCCESS);
	assert_string_equal(mf_sasl_server_account(srv), ACCOUNT);
	mf_sasl_server_free(&srv);

	srv = server(MF_SASL_PLAIN, &tls_on, NULL);
	assert_int_equal(mf_sasl_server_step(srv, "\0user\0pencim", 12, true, &out, &out_len),
			 MF_SASL_FAILED);
	assert_int_equal(mf_sasl_server_failure(srv), MF_SASL_FAIL_CREDENTIALS);
	mf_sasl_server_free(&srv);

	/* authzid: an address of the same account is fine, another is not */
	srv = server(MF_SASL_PLAIN, &tls_on, NULL);
	assert_int_equal(mf_sasl_server_step(srv, "user@example.org\0user\0pencil", 28, true, &out,
					     &out_len), MF_SASL_SUCCESS);
	mf_sasl_server_free(&srv);
	srv = server(MF_SASL_PLAIN, &tls_on, NULL);
	assert_int_equal(mf_sasl_server_step(srv, "other\0user\0pencil", 17, true, &out, &out_len),
			 MF_SASL_FAILED);
	mf_sasl_server_free(&srv);

	/* no initial response: empty challenge first */
	srv = server(MF_SASL_PLAIN, &tls_on, NULL);
	assert_int_equal(mf_sasl_server_step(srv, NULL, 0, false, &out, &out_len),
			 MF_SASL_CONTINUE);
	assert_int_equal(out_len, 0);
	assert_int_equal(mf_sasl_server_step(srv, "\0user\0pencil", 12, true, &out, &out_len),
			 MF_SASL_SUCCESS);
	mf_sasl_server_free(&srv);

	/* malformed */
	srv = server(MF_SASL_PLAIN, &tls_on, NULL);
	assert_int_equal(mf_sasl_server_step(srv, "user\0pencil", 11, true, &out, &out_len),
			 MF_SASL_FAILED);
	assert_int_equal(mf_sasl_server_failure(srv), MF_SASL_FAIL_MALFORMED);
	mf_sasl_server_free(&srv);

	/* backend down: temporary */
	fk.fail_lookup = true;
	srv = server(MF_SASL_PLAIN, &tls_on, NULL);
	assert_int_equal(mf_sasl_server_step(srv, "\0user\0pencil", 12, true, &out, &out_len),
			 MF_SASL_TEMPFAIL);
	mf_sasl_server_free(&srv);
}

/* é composed (NFC) or decomposed (NFD) in login and password both work;
 * a no-break space in the password is a space (OpaqueString). */
static void test_plain_normalised(void **state)
{
	static const char nfd[] = "\0he\xcc\x81llo\0pe\xcc\x81\xc2\xa0w";
	struct mf_sasl_server *srv = server(MF_SASL_PLAIN, &tls_on, NULL);
	const unsigned char *out;
	size_t out_len;

	assert_int_equal(mf_sasl_server_step(srv, nfd, sizeof(nfd) - 1, true, &out, &out_len),
			 MF_SASL_SUCCESS);
	assert_string_equal(mf_sasl_server_account(srv), "hello");
	assert_string_equal(mf_sasl_server_login(srv), "h\xc3\xa9llo");
	mf_sasl_server_free(&srv);
}

static void test_login(void **state)
{
	struct mf_sasl_server *srv = server(MF_SASL_LOGIN, &tls_on, NULL);
	struct mf_sasl_client *cl = NULL;
	const unsigned char *out, *cout;
	size_t out_len, clen;
	bool has;
	const char *err;
	enum mf_sasl_status st;

	assert_int_equal(mf_sasl_server_step(srv, NULL, 0, false, &out, &out_len), MF_SASL_CONTINUE);
	assert_string_equal((const char *)out, "Username:");
	assert_int_equal(mf_sasl_client_create(MF_SASL_LOGIN, "user", "pencil", NULL, &cl, &err), 0);
	assert_int_equal(mf_sasl_client_initial(cl, &cout, &clen, &has, &err), 0);
	assert_false(has);
	assert_int_equal(mf_sasl_client_step(cl, out, out_len, &cout, &clen, &err), 0);
	st = mf_sasl_server_step(srv, cout, clen, true, &out, &out_len);
	assert_int_equal(st, MF_SASL_CONTINUE);
	assert_string_equal((const char *)out, "Password:");
	assert_int_equal(mf_sasl_client_step(cl, out, out_len, &cout, &clen, &err), 0);
	assert_int_equal(mf_sasl_server_step(srv, cout, clen, true, &out, &out_len),
			 MF_SASL_SUCCESS);
	mf_sasl_server_free(&srv);
	mf_sasl_client_free(&cl);
}

static void test_disabled(void **state)
{
	struct mf_sasl_server *srv;
	const unsigned char *out;
	size_t out_len;

	fk.disabled = "account suspended, call the office";
	srv = server(MF_SASL_PLAIN, &tls_on, NULL);
	assert_int_equal(mf_sasl_server_step(srv, "\0user\0pencil", 12, true, &out, &out_len),
			 MF_SASL_FAILED);
	assert_int_equal(mf_sasl_server_failure(srv), MF_SASL_FAIL_DISABLED);
	assert_string_equal(mf_sasl_server_failure_text(srv), "account suspended, call the office");
	mf_sasl_server_free(&srv);
	/* SCRAM: only after the proof, so the message is not shown to guessers */
	srv = server(MF_SASL_SCRAM_SHA_256, NULL, NULL);
	mf_sasl_server_set_nonce(srv, S256_SNONCE);
	assert_int_equal(step_str(srv, S256_CFIRST, NULL), MF_SASL_CONTINUE);
	assert_int_equal(step_str(srv, S256_CFINAL, NULL), MF_SASL_FAILED);
	assert_int_equal(mf_sasl_server_failure(srv), MF_SASL_FAIL_DISABLED);
	mf_sasl_server_free(&srv);
}

static void test_external(void **state)
{
	struct mf_sasl_server *srv = NULL;
	struct mf_sasl_server_settings set = { 0 };
	const unsigned char *out;
	size_t out_len;
	const char *err;

	/* no certificate account: not available */
	assert_int_equal(mf_sasl_server_create(MF_SASL_EXTERNAL, &set, &backend, &tls_on, NULL,
					       &srv, &err), -1);
	srv = server(MF_SASL_EXTERNAL, &tls_on, ACCOUNT);
	assert_int_equal(mf_sasl_server_step(srv, "", 0, true, &out, &out_len), MF_SASL_SUCCESS);
	assert_string_equal(mf_sasl_server_account(srv), ACCOUNT);
	mf_sasl_server_free(&srv);
	srv = server(MF_SASL_EXTERNAL, &tls_on, ACCOUNT);
	assert_int_equal(step_str(srv, "user@example.org", NULL), MF_SASL_SUCCESS);
	mf_sasl_server_free(&srv);
	srv = server(MF_SASL_EXTERNAL, &tls_on, ACCOUNT);
	assert_int_equal(step_str(srv, "other", NULL), MF_SASL_FAILED);
	assert_int_equal(mf_sasl_server_failure(srv), MF_SASL_FAIL_WRONG_ACCOUNT);
	mf_sasl_server_free(&srv);
	/* another mechanism after a client certificate: same account only */
	srv = server(MF_SASL_PLAIN, &tls_on, "other");
	assert_int_equal(mf_sasl_server_step(srv, "\0user\0pencil", 12, true, &out, &out_len),
			 MF_SASL_FAILED);
	assert_int_equal(mf_sasl_server_failure(srv), MF_SASL_FAIL_WRONG_ACCOUNT);
	mf_sasl_server_free(&srv);
}

static void test_mechs(void **state)
{
	struct mf_sasl_server_settings set = { .cram_md5 = true };
	struct mf_sasl_server_settings plain = { 0 };
	struct mf_sasl_tls cb = { .active = true, .exporter_len = 32 };
	char buf[MF_SASL_MECHS_MAX];
	struct mf_sasl_server *srv = NULL;
	const char *err;
	enum mf_sasl_mech m;

	assert_int_equal(mf_sasl_server_mechs(&set, &cb, true, buf), 8);
	assert_string_equal(buf, "EXTERNAL SCRAM-SHA-256-PLUS SCRAM-SHA-1-PLUS SCRAM-SHA-256 "
				 "SCRAM-SHA-1 CRAM-MD5 PLAIN LOGIN");
	assert_int_equal(mf_sasl_server_mechs(&plain, NULL, false, buf), 2);
	assert_string_equal(buf, "SCRAM-SHA-256 SCRAM-SHA-1");
	assert_int_equal(mf_sasl_server_mechs(&plain, &tls_on, false, buf), 4);
	assert_string_equal(buf, "SCRAM-SHA-256 SCRAM-SHA-1 PLAIN LOGIN");
	assert_int_equal(mf_sasl_server_create(MF_SASL_PLAIN, &plain, &backend, NULL, NULL, &srv,
					       &err), -1);
	assert_int_equal(mf_sasl_server_create(MF_SASL_SCRAM_SHA_256_PLUS, &plain, &backend,
					       &tls_on, NULL, &srv, &err), -1);
	assert_int_equal(mf_sasl_mech_parse("scram-sha-256-plus", 18, &m), 0);
	assert_int_equal(m, MF_SASL_SCRAM_SHA_256_PLUS);
	assert_int_equal(mf_sasl_mech_parse("SCRAM-SHA-256-PLUSX", 19, &m), -1);
}

static void test_base64(void **state)
{
	unsigned char *d;
	size_t l;
	char *e = mf_sasl_base64_encode("\0user\0pencil", 12);

	assert_string_equal(e, "AHVzZXIAcGVuY2ls");
	assert_int_equal(mf_sasl_base64_decode(e, strlen(e), &d, &l), 0);
	assert_int_equal(l, 12);
	assert_memory_equal(d, "\0user\0pencil", 12);
	free(d);
	free(e);
	assert_int_equal(mf_sasl_base64_decode("YQ==", 4, &d, &l), 0);
	assert_int_equal(l, 1);
	free(d);
	assert_int_equal(mf_sasl_base64_decode("", 0, &d, &l), 0);
	assert_int_equal(l, 0);
	free(d);
	assert_int_equal(mf_sasl_base64_decode("YQ=", 3, &d, &l), -1);
	assert_int_equal(mf_sasl_base64_decode("Y===", 4, &d, &l), -1);
	assert_int_equal(mf_sasl_base64_decode("YQ=a", 4, &d, &l), -1);
	assert_int_equal(mf_sasl_base64_decode("YQ =", 4, &d, &l), -1);
}

static void test_steps_limit(void **state)
{
	struct mf_sasl_server *srv = server(MF_SASL_PLAIN, &tls_on, NULL);
	const unsigned char *out;
	size_t out_len;
	char big[MF_SASL_MESSAGE_MAX + 1];

	memset(big, 'a', sizeof(big));
	assert_int_equal(mf_sasl_server_step(srv, big, sizeof(big), true, &out, &out_len),
			 MF_SASL_FAILED);
	mf_sasl_server_free(&srv);
}

/* --- PRECIS -------------------------------------------------------------- */

static void test_precis_password(void **state)
{
	char *a = NULL, *b = NULL;
	size_t al, bl;
	const char *err;

	/* é composed and decomposed give the same bytes (NFC) */
	assert_int_equal(mf_precis_password("caf\xc3\xa9", 5, &a, &al, &err), 0);
	assert_int_equal(mf_precis_password("cafe\xcc\x81", 6, &b, &bl, &err), 0);
	assert_int_equal(al, bl);
	assert_memory_equal(a, b, al);
	free(a);
	free(b);
	/* non-ASCII spaces become ASCII space (RFC 8265 4.2.2 rule 2) */
	assert_int_equal(mf_precis_password("a\xe3\x80\x80" "b\xc2\xa0" "c", 8, &a, &al, &err), 0);
	assert_string_equal(a, "a b c");
	free(a);
	/* no width mapping: fullwidth A stays fullwidth (RFC 8265 4.2.2 rule 1) */
	assert_int_equal(mf_precis_password("\xef\xbc\xa1", 3, &a, &al, &err), 0);
	assert_string_equal(a, "\xef\xbc\xa1");
	free(a);
	/* no case mapping */
	assert_int_equal(mf_precis_password("PeNcil", 6, &a, &al, &err), 0);
	assert_string_equal(a, "PeNcil");
	free(a);
	/* refused: controls, empty, bad UTF-8, unassigned, zero width joiner, private use */
	assert_int_equal(mf_precis_password("a\tb", 3, &a, &al, &err), -1);
	assert_null(a);
	assert_int_equal(mf_precis_password("", 0, &a, &al, &err), -1);
	assert_int_equal(mf_precis_password("\xc3", 1, &a, &al, &err), -1);
	assert_int_equal(mf_precis_password("\xc0\xaf", 2, &a, &al, &err), -1);
	assert_int_equal(mf_precis_password("a\xe2\x80\x8d" "b", 5, &a, &al, &err), -1);
	assert_int_equal(mf_precis_password("\xee\x80\x80", 3, &a, &al, &err), -1);
	assert_int_equal(mf_precis_password("\xf3\xa0\x80\x81", 4, &a, &al, &err), -1);
	assert_non_null(strstr(err, "U+E0001"));
	/* a real U+FFFD is allowed (it is a symbol) */
	assert_int_equal(mf_precis_password("\xef\xbf\xbd", 3, &a, &al, &err), 0);
	free(a);
}

static void test_precis_username(void **state)
{
	char *a = NULL;
	const char *err;

	assert_int_equal(mf_precis_username("he\xcc\x81@example.org", 16, &a, &err), 0);
	assert_string_equal(a, "h\xc3\xa9@example.org");
	free(a);
	/* case and width are the address parser's business, not changed here */
	assert_int_equal(mf_precis_username("User", 4, &a, &err), 0);
	assert_string_equal(a, "User");
	free(a);
	assert_int_equal(mf_precis_username("a\nb", 3, &a, &err), -1);
	assert_int_equal(mf_precis_username("", 0, &a, &err), -1);
	assert_int_equal(mf_precis_username("\xff", 1, &a, &err), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_scram_sha1_rfc5802, setup),
		cmocka_unit_test_setup(test_scram_sha256_rfc7677, setup),
		cmocka_unit_test_setup(test_scram_client_rfc7677, setup),
		cmocka_unit_test_setup(test_scram_wrong_proof, setup),
		cmocka_unit_test_setup(test_scram_wrong_nonce, setup),
		cmocka_unit_test_setup(test_scram_replay, setup),
		cmocka_unit_test_setup(test_scram_unknown_user, setup),
		cmocka_unit_test_setup(test_scram_malformed, setup),
		cmocka_unit_test_setup(test_scram_tempfail, setup),
		cmocka_unit_test_setup(test_scram_plus, setup),
		cmocka_unit_test_setup(test_scram_downgrade, setup),
		cmocka_unit_test_setup(test_scram_material_text, setup),
		cmocka_unit_test_setup(test_cram_rfc2195, setup),
		cmocka_unit_test_setup(test_cram_server, setup),
		cmocka_unit_test_setup(test_plain, setup),
		cmocka_unit_test_setup(test_plain_normalised, setup),
		cmocka_unit_test_setup(test_login, setup),
		cmocka_unit_test_setup(test_disabled, setup),
		cmocka_unit_test_setup(test_external, setup),
		cmocka_unit_test_setup(test_mechs, setup),
		cmocka_unit_test_setup(test_base64, setup),
		cmocka_unit_test_setup(test_steps_limit, setup),
		cmocka_unit_test(test_precis_password),
		cmocka_unit_test(test_precis_username),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
