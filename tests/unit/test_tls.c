#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <dirent.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "tls.h"

struct fixture {
	char dir[64];
	char cert[128], key[128];      /* hostname mail.example.org */
	char cert2[128], key2[128];    /* second identity, client cert */
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	const char *error = NULL;

	snprintf(f->dir, sizeof(f->dir), "/tmp/mf-test-tls-XXXXXX");
	if (mkdtemp(f->dir) == NULL)
		return -1;
	snprintf(f->cert, sizeof(f->cert), "%s/cert.pem", f->dir);
	snprintf(f->key, sizeof(f->key), "%s/key.pem", f->dir);
	snprintf(f->cert2, sizeof(f->cert2), "%s/cert2.pem", f->dir);
	snprintf(f->key2, sizeof(f->key2), "%s/key2.pem", f->dir);
	if (mf_tls_generate_self_signed(f->cert, f->key, "mail.example.org", &error) < 0 ||
	    mf_tls_generate_self_signed(f->cert2, f->key2, "client.example", &error) < 0) {
		fprintf(stderr, "generate: %s\n", error);
		return -1;
	}
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	DIR *d = opendir(f->dir);
	struct dirent *e;
	char path[512];

	while (d != NULL && (e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", f->dir, e->d_name);
		unlink(path);
	}
	if (d != NULL)
		closedir(d);
	rmdir(f->dir);
	free(f);
	return 0;
}

static X509 *read_cert(const char *path)
{
	FILE *fp = fopen(path, "r");
	X509 *x;

	assert_non_null(fp);
	x = PEM_read_X509(fp, NULL, NULL, NULL);
	fclose(fp);
	assert_non_null(x);
	return x;
}

static void test_self_signed_contents(void **state)
{
	struct fixture *f = *state;
	struct stat st;
	X509 *x = read_cert(f->cert);
	GENERAL_NAMES *names;
	bool dns_host = false, dns_local = false, ip4 = false, ip6 = false;
	EVP_PKEY *pub;
	char group[64];
	size_t glen = 0;
	int days = 0, secs = 0;
	DIR *d;
	struct dirent *e;
	int files = 0;

	assert_int_equal(stat(f->key, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(stat(f->cert, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0644);

	names = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
	assert_non_null(names);
	for (int i = 0; i < sk_GENERAL_NAME_num(names); i++) {
		GENERAL_NAME *gn = sk_GENERAL_NAME_value(names, i);
		if (gn->type == GEN_DNS) {
			const char *s = (const char *)ASN1_STRING_get0_data(gn->d.dNSName);
			dns_host |= strcmp(s, "mail.example.org") == 0;
			dns_local |= strcmp(s, "localhost") == 0;
		} else if (gn->type == GEN_IPADD) {
			int len = ASN1_STRING_length(gn->d.iPAddress);
			const unsigned char *p = ASN1_STRING_get0_data(gn->d.iPAddress);
			static const unsigned char lo6[16] = { [15] = 1 };
			ip4 |= len == 4 && memcmp(p, "\x7f\x00\x00\x01", 4) == 0;
			ip6 |= len == 16 && memcmp(p, lo6, 16) == 0;
		}
	}
	GENERAL_NAMES_free(names);
	assert_true(dns_host);
	assert_true(dns_local);
	assert_true(ip4);
	assert_true(ip6);

	pub = X509_get0_pubkey(x);
	assert_int_equal(EVP_PKEY_get_base_id(pub), EVP_PKEY_EC);
	assert_int_equal(EVP_PKEY_get_utf8_string_param(pub, "group", group, sizeof(group), &glen), 1);
	assert_string_equal(group, "prime256v1");

	/* about ten years from now */
	assert_int_equal(ASN1_TIME_diff(&days, &secs, NULL, X509_get0_notAfter(x)), 1);
	assert_true(days >= 3649 && days <= 3651);
	assert_true(X509_cmp_current_time(X509_get0_notBefore(x)) < 0);
	/* self-signed, and the signature verifies with its own key */
	assert_int_equal(X509_verify(x, pub), 1);
	X509_free(x);

	/* no temporary files left behind */
	d = opendir(f->dir);
	while ((e = readdir(d)) != NULL)
		if (e->d_name[0] != '.')
			files++;
	closedir(d);
	assert_int_equal(files, 4);
}

static void test_self_signed_bad_hostname(void **state)
{
	struct fixture *f = *state;
	char cert[160], key[160];
	const char *error = NULL;

	snprintf(cert, sizeof(cert), "%s/bad-cert.pem", f->dir);
	snprintf(key, sizeof(key), "%s/bad-key.pem", f->dir);
	assert_int_equal(mf_tls_generate_self_signed(cert, key, "a,DNS:evil.example", &error), -1);
	assert_non_null(strstr(error, "invalid host name"));
	assert_int_equal(mf_tls_generate_self_signed(cert, key, "", &error), -1);
	assert_int_equal(access(key, F_OK), -1);
	assert_int_equal(access(cert, F_OK), -1);
}

static void test_server_ctx_errors(void **state)
{
	struct fixture *f = *state;
	SSL_CTX *ctx = NULL;
	const char *error = NULL;
	char missing[160];

	assert_int_equal(mf_tls_server_ctx_new(f->cert, f->key, 0, &ctx, &error), 0);
	assert_non_null(ctx);
	mf_tls_ctx_free(&ctx);
	assert_null(ctx);

	snprintf(missing, sizeof(missing), "%s/missing.pem", f->dir);
	assert_int_equal(mf_tls_server_ctx_new(missing, f->key, 0, &ctx, &error), -1);
	assert_null(ctx);
	assert_non_null(strstr(error, missing));

	assert_int_equal(mf_tls_server_ctx_new(f->cert, f->key2, 0, &ctx, &error), -1);
	assert_non_null(strstr(error, "does not match"));
	assert_int_equal(ERR_peek_error(), 0);
}

/* --- handshakes over a socketpair ----------------------------------------- */

struct side {
	SSL_CTX *ctx;
	int fd;
	bool ok;
	char version[32], cipher[128];
	unsigned char unique[MF_TLS_CB_MAX], exporter[MF_TLS_CB_MAX];
	size_t unique_len, exporter_len;
	int unique_ret, exporter_ret;
	unsigned char *peer_key;
	size_t peer_key_len;
};

static void collect(SSL *ssl, struct side *s)
{
	const char *error = NULL;

	snprintf(s->version, sizeof(s->version), "%s", mf_tls_version(ssl));
	snprintf(s->cipher, sizeof(s->cipher), "%s", mf_tls_cipher(ssl));
	s->unique_ret = mf_tls_channel_binding(ssl, MF_TLS_CB_UNIQUE, s->unique,
					       sizeof(s->unique), &s->unique_len, &error);
	s->exporter_ret = mf_tls_channel_binding(ssl, MF_TLS_CB_EXPORTER, s->exporter,
						 sizeof(s->exporter), &s->exporter_len, &error);
	assert_int_equal(mf_tls_peer_public_key(ssl, &s->peer_key, &s->peer_key_len, &error), 0);
}

static void *server_main(void *arg)
{
	struct side *s = arg;
	SSL *ssl = SSL_new(s->ctx);
	char c;

	SSL_set_fd(ssl, s->fd);
	if (SSL_accept(ssl) == 1) {
		s->ok = true;
		collect(ssl, s);
		/* wait for the client to finish before closing */
		(void)SSL_read(ssl, &c, 1);
	}
	SSL_free(ssl);
	ERR_clear_error();
	return NULL;
}

/* Runs one handshake; returns whether the client side succeeded. */
static bool handshake(SSL_CTX *sctx, SSL_CTX *cctx, const char *name, struct side *srv,
		      struct side *cli)
{
	int sv[2];
	pthread_t th;
	SSL *ssl = NULL;
	const char *error = NULL;

	memset(srv, 0, sizeof(*srv));
	memset(cli, 0, sizeof(*cli));
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	srv->ctx = sctx;
	srv->fd = sv[0];
	assert_int_equal(pthread_create(&th, NULL, server_main, srv), 0);
	assert_int_equal(mf_tls_client_ssl_new(cctx, sv[1], name, &ssl, &error), 0);
	if (SSL_connect(ssl) == 1) {
		cli->ok = true;
		collect(ssl, cli);
		SSL_write(ssl, "x", 1);
	}
	shutdown(sv[1], SHUT_RDWR);
	pthread_join(th, NULL);
	SSL_free(ssl);
	ERR_clear_error();
	close(sv[0]);
	close(sv[1]);
	return cli->ok;
}

static void free_sides(struct side *a, struct side *b)
{
	free(a->peer_key);
	free(b->peer_key);
}

static void test_handshake_tls13(void **state)
{
	struct fixture *f = *state;
	SSL_CTX *sctx, *cctx;
	struct side srv, cli;
	const char *error = NULL;

	assert_int_equal(mf_tls_server_ctx_new(f->cert, f->key, 0, &sctx, &error), 0);
	/* verify against the self-signed certificate as the only trust anchor */
	assert_int_equal(mf_tls_client_ctx_new(true, f->cert, &cctx, &error), 0);
	assert_true(handshake(sctx, cctx, "localhost", &srv, &cli));
	assert_true(srv.ok);
	assert_string_equal(cli.version, "TLSv1.3");
	assert_string_equal(srv.version, "TLSv1.3");
	assert_string_equal(srv.cipher, cli.cipher);
	assert_true(strncmp(srv.cipher, "TLS_", 4) == 0);
	/* tls-unique undefined on 1.3; tls-exporter equal on both ends */
	assert_int_equal(srv.unique_ret, -1);
	assert_int_equal(srv.exporter_ret, 0);
	assert_int_equal(cli.exporter_ret, 0);
	assert_int_equal(srv.exporter_len, 32);
	assert_memory_equal(srv.exporter, cli.exporter, 32);
	/* no client certificate was asked for */
	assert_null(srv.peer_key);
	assert_int_equal(srv.peer_key_len, 0);
	assert_non_null(cli.peer_key);
	free_sides(&srv, &cli);

	/* by IP literal (SAN IP:127.0.0.1) */
	assert_true(handshake(sctx, cctx, "127.0.0.1", &srv, &cli));
	free_sides(&srv, &cli);
	assert_true(handshake(sctx, cctx, "::1", &srv, &cli));
	free_sides(&srv, &cli);
	assert_true(handshake(sctx, cctx, "mail.example.org", &srv, &cli));
	free_sides(&srv, &cli);
	/* a name not in the certificate fails verification */
	assert_false(handshake(sctx, cctx, "other.example.org", &srv, &cli));
	free_sides(&srv, &cli);
	mf_tls_ctx_free(&cctx);

	/* without verification anything goes */
	assert_int_equal(mf_tls_client_ctx_new(false, NULL, &cctx, &error), 0);
	assert_true(handshake(sctx, cctx, "other.example.org", &srv, &cli));
	free_sides(&srv, &cli);
	mf_tls_ctx_free(&cctx);
	mf_tls_ctx_free(&sctx);
}

static void test_handshake_tls12(void **state)
{
	struct fixture *f = *state;
	SSL_CTX *sctx, *cctx;
	struct side srv, cli;
	const char *error = NULL;

	assert_int_equal(mf_tls_server_ctx_new(f->cert, f->key, 0, &sctx, &error), 0);
	assert_int_equal(mf_tls_client_ctx_new(false, NULL, &cctx, &error), 0);
	SSL_CTX_set_max_proto_version(cctx, TLS1_2_VERSION);
	assert_true(handshake(sctx, cctx, "localhost", &srv, &cli));
	assert_string_equal(srv.version, "TLSv1.2");
	assert_string_equal(srv.cipher, "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384");
	assert_int_equal(srv.unique_ret, 0);
	assert_int_equal(cli.unique_ret, 0);
	assert_int_equal(srv.unique_len, 12);
	assert_memory_equal(srv.unique, cli.unique, 12);
	/* OpenSSL negotiates the extended master secret by default */
	assert_int_equal(srv.exporter_ret, 0);
	assert_memory_equal(srv.exporter, cli.exporter, 32);
	free_sides(&srv, &cli);

	/* TLS 1.1 is refused by the server */
	SSL_CTX_set_min_proto_version(cctx, TLS1_1_VERSION);
	SSL_CTX_set_max_proto_version(cctx, TLS1_1_VERSION);
	SSL_CTX_set_security_level(cctx, 0);
	assert_false(handshake(sctx, cctx, "localhost", &srv, &cli));
	free_sides(&srv, &cli);
	mf_tls_ctx_free(&cctx);
	mf_tls_ctx_free(&sctx);
}

static void test_client_certificate(void **state)
{
	struct fixture *f = *state;
	SSL_CTX *sctx, *cctx;
	struct side srv, cli;
	const char *error = NULL;
	X509 *x = read_cert(f->cert2);
	unsigned char *want = NULL;
	int want_len;

	want_len = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(x), &want);
	assert_true(want_len > 0);

	assert_int_equal(mf_tls_server_ctx_new(f->cert, f->key, MF_TLS_REQUEST_CLIENT_CERT,
					       &sctx, &error), 0);
	assert_int_equal(mf_tls_client_ctx_new(false, NULL, &cctx, &error), 0);
	/* requested, not required: a client without a certificate gets in */
	assert_true(handshake(sctx, cctx, "localhost", &srv, &cli));
	assert_null(srv.peer_key);
	free_sides(&srv, &cli);

	/* a self-signed client certificate is accepted and its key reported */
	assert_int_equal(SSL_CTX_use_certificate_file(cctx, f->cert2, SSL_FILETYPE_PEM), 1);
	assert_int_equal(SSL_CTX_use_PrivateKey_file(cctx, f->key2, SSL_FILETYPE_PEM), 1);
	assert_true(handshake(sctx, cctx, "localhost", &srv, &cli));
	assert_true(srv.ok);
	assert_non_null(srv.peer_key);
	assert_int_equal(srv.peer_key_len, (size_t)want_len);
	assert_memory_equal(srv.peer_key, want, (size_t)want_len);
	free_sides(&srv, &cli);

	OPENSSL_free(want);
	X509_free(x);
	mf_tls_ctx_free(&cctx);
	mf_tls_ctx_free(&sctx);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_self_signed_contents),
		cmocka_unit_test(test_self_signed_bad_hostname),
		cmocka_unit_test(test_server_ctx_errors),
		cmocka_unit_test(test_handshake_tls13),
		cmocka_unit_test(test_handshake_tls12),
		cmocka_unit_test(test_client_certificate),
	};
	/* a peer closing mid-write must not kill the test */
	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, setup, teardown);
}
