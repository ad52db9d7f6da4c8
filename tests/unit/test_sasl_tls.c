/* SCRAM-*-PLUS over real TLS connections (libshared tls.c contexts on a
 * loopback socket pair): mf_sasl_tls_from_ssl gives both ends the same
 * channel binding data, tls-exporter on TLS 1.3 (RFC 9266) and tls-unique
 * on TLS 1.2 (RFC 5929), and an exchange bound to one connection fails on
 * another (the man-in-the-middle case). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/ssl.h>

#include "buf.h"
#include "sasl.h"
#include "tls.h"

struct tls_pair {
	SSL *client, *server;
	struct mf_sasl_tls ctls, stls;
};

static char dir[64], cert[128], key[128];
static SSL_CTX *sctx, *cctx;

static int group_setup(void **state)
{
	const char *err = NULL;

	snprintf(dir, sizeof(dir), "/tmp/test_sasl_tls.XXXXXX");
	assert_non_null(mkdtemp(dir));
	snprintf(cert, sizeof(cert), "%s/cert.pem", dir);
	snprintf(key, sizeof(key), "%s/key.pem", dir);
	if (mf_tls_generate_self_signed(cert, key, "localhost", &err) < 0 ||
	    mf_tls_server_ctx_new(cert, key, 0, &sctx, &err) < 0 ||
	    mf_tls_client_ctx_new(false, NULL, &cctx, &err) < 0)
		fail_msg("tls: %s", err);
	return 0;
}

static int group_teardown(void **state)
{
	mf_tls_ctx_free(&sctx);
	mf_tls_ctx_free(&cctx);
	unlink(cert);
	unlink(key);
	rmdir(dir);
	return 0;
}

static void *server_handshake(void *arg)
{
	SSL *ssl = arg;

	return SSL_accept(ssl) == 1 ? ssl : NULL;
}

/* Connects a client and a server SSL over a socket pair at version. */
static void pair_open(struct tls_pair *p, int version)
{
	int sv[2];
	pthread_t t;
	void *res;
	const char *err = NULL;

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	p->server = SSL_new(sctx);
	SSL_set_fd(p->server, sv[0]);
	assert_int_equal(SSL_set_max_proto_version(p->server, version), 1);
	assert_int_equal(mf_tls_client_ssl_new(cctx, sv[1], "localhost", &p->client, &err), 0);
	assert_int_equal(SSL_set_max_proto_version(p->client, version), 1);
	assert_int_equal(pthread_create(&t, NULL, server_handshake, p->server), 0);
	assert_int_equal(SSL_connect(p->client), 1);
	assert_int_equal(pthread_join(t, &res), 0);
	assert_non_null(res);
	mf_sasl_tls_from_ssl(p->client, &p->ctls);
	mf_sasl_tls_from_ssl(p->server, &p->stls);
}

static void pair_close(struct tls_pair *p)
{
	int fs = SSL_get_fd(p->server), fc = SSL_get_fd(p->client);

	SSL_free(p->server);
	SSL_free(p->client);
	close(fs);
	close(fc);
}

static int be_lookup(void *ctx, enum mf_sasl_lookup what, const char *login,
		     struct mf_sasl_account *a_r, const char **error_r)
{
	static const unsigned char salt[] = "salt-for-tests";

	if (strcmp(login, "user") != 0)
		return 0;
	a_r->account = mf_xstrdup("acct");
	if (mf_sasl_scram_derive_salt(what == MF_SASL_LOOKUP_SCRAM_SHA1 ? MF_SASL_SHA1 :
				      MF_SASL_SHA256, "pencil", 6, salt, sizeof(salt) - 1, 4096,
				      &a_r->scram, error_r) < 0)
		return -1;
	a_r->scram_set = true;
	return 1;
}

static int be_verify(void *ctx, const char *login, const char *password, size_t len,
		     struct mf_sasl_account *a_r, const char **error_r)
{
	return 0;
}

/* Runs mech with the client's TLS facts c and the server's s. */
static enum mf_sasl_status run(enum mf_sasl_mech mech, const struct mf_sasl_tls *c,
			       const struct mf_sasl_tls *s, enum mf_sasl_failure *f_r)
{
	const struct mf_sasl_backend be = { NULL, be_verify, be_lookup };
	struct mf_sasl_server *srv = NULL;
	struct mf_sasl_client *cl = NULL;
	const unsigned char *cout, *sout;
	size_t clen, slen;
	bool has;
	const char *err = NULL;
	enum mf_sasl_status st;

	assert_int_equal(mf_sasl_server_create(mech, NULL, &be, s, NULL, &srv, &err), 0);
	assert_int_equal(mf_sasl_client_create(mech, "user", "pencil", c, &cl, &err), 0);
	assert_int_equal(mf_sasl_client_initial(cl, &cout, &clen, &has, &err), 0);
	st = mf_sasl_server_step(srv, cout, clen, has, &sout, &slen);
	for (int i = 0; st == MF_SASL_CONTINUE && i < 4; i++) {
		assert_int_equal(mf_sasl_client_step(cl, sout, slen, &cout, &clen, &err), 0);
		st = mf_sasl_server_step(srv, cout, clen, true, &sout, &slen);
	}
	*f_r = mf_sasl_server_failure(srv);
	if (st == MF_SASL_SUCCESS)
		assert_int_equal(mf_sasl_client_verified(cl), 1);
	mf_sasl_server_free(&srv);
	mf_sasl_client_free(&cl);
	return st;
}

static void test_tls13_exporter(void **state)
{
	struct tls_pair a, b;
	enum mf_sasl_failure f;
	char mechs[MF_SASL_MECHS_MAX];

	pair_open(&a, TLS1_3_VERSION);
	pair_open(&b, TLS1_3_VERSION);
	assert_string_equal(SSL_get_version(a.client), "TLSv1.3");
	/* TLS 1.3: tls-exporter only (RFC 9266 3), same on both ends */
	assert_int_equal(a.ctls.exporter_len, 32);
	assert_int_equal(a.ctls.unique_len, 0);
	assert_memory_equal(a.ctls.exporter, a.stls.exporter, 32);
	assert_memory_not_equal(a.stls.exporter, b.stls.exporter, 32);
	assert_int_equal(mf_sasl_server_mechs(NULL, &a.stls, false, mechs), 6);
	assert_non_null(strstr(mechs, "SCRAM-SHA-256-PLUS"));
	assert_int_equal(run(MF_SASL_SCRAM_SHA_256_PLUS, &a.ctls, &a.stls, &f), MF_SASL_SUCCESS);
	assert_int_equal(run(MF_SASL_SCRAM_SHA_1_PLUS, &a.ctls, &a.stls, &f), MF_SASL_SUCCESS);
	/* no client certificate was sent: no key to look up */
	{
		unsigned char *der = (unsigned char *)"x";
		size_t len = 1;
		const char *err = NULL;

		assert_int_equal(mf_tls_peer_public_key(a.server, &der, &len, &err), 0);
		assert_null(der);
		assert_int_equal(len, 0);
	}
	/* relayed by a man in the middle: two connections, two bindings */
	assert_int_equal(run(MF_SASL_SCRAM_SHA_256_PLUS, &a.ctls, &b.stls, &f), MF_SASL_FAILED);
	assert_int_equal(f, MF_SASL_FAIL_CHANNEL_BINDING);
	pair_close(&a);
	pair_close(&b);
}

static void test_tls12_unique(void **state)
{
	struct tls_pair a, b;
	enum mf_sasl_failure f;

	pair_open(&a, TLS1_2_VERSION);
	pair_open(&b, TLS1_2_VERSION);
	assert_string_equal(SSL_get_version(a.client), "TLSv1.2");
	assert_int_equal(a.ctls.unique_len, 12);
	assert_memory_equal(a.ctls.unique, a.stls.unique, 12);
	assert_int_equal(run(MF_SASL_SCRAM_SHA_256_PLUS, &a.ctls, &a.stls, &f), MF_SASL_SUCCESS);
	assert_int_equal(run(MF_SASL_SCRAM_SHA_256_PLUS, &a.ctls, &b.stls, &f), MF_SASL_FAILED);
	assert_int_equal(f, MF_SASL_FAIL_CHANNEL_BINDING);
	pair_close(&a);
	pair_close(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tls13_exporter),
		cmocka_unit_test(test_tls12_unique),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
