/* The delivery SMTP client's AUTH against a server thread on 127.0.0.1
 * speaking implicit TLS and running the shared sasl.h server: the
 * strongest common mechanism is chosen (-PLUS with channel binding), a
 * wrong password fails, "auth-mechanism login" keeps LOGIN, and a server
 * answering 235 without proving it knows the password (SCRAM server
 * signature, RFC 5802 5) is not trusted with the message. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/ssl.h>

#include "buf.h"
#include "sasl.h"
#include "services/delivery/smtp_client.h"
#include "tls.h"

#define USER "user@example.org"
#define PASSWORD "s3cret pässword"

static char dir[] = "/tmp/mf-delivery-auth-XXXXXX";
static char cert[256], key[256];
static SSL_CTX *server_ctx, *client_ctx;

struct script {
	const char *auth;          /* the EHLO AUTH line */
	bool fake_success;         /* answer 235 right after the client's first message */
	bool nul_prompts;          /* LOGIN prompts ending in NUL, as aiosmtpd's */
	/* Filled by the server. */
	char mech[32];
	bool authenticated;
	bool got_mail;
	int listen_fd;
};

/* Backend: one account, USER, with PASSWORD. */
static int be_verify(void *ctx, const char *login, const char *password, size_t len,
		     struct mf_sasl_account *a_r, const char **error_r)
{
	if (strcmp(login, USER) != 0 || len != strlen(PASSWORD) ||
	    memcmp(password, PASSWORD, len) != 0)
		return 0;
	a_r->account = strdup("user");
	return 1;
}

static int be_lookup(void *ctx, enum mf_sasl_lookup what, const char *login,
		     struct mf_sasl_account *a_r, const char **error_r)
{
	if (strcmp(login, USER) != 0)
		return 0;
	a_r->account = strdup("user");
	if (what == MF_SASL_LOOKUP_SCRAM_SHA1 || what == MF_SASL_LOOKUP_SCRAM_SHA256) {
		if (mf_sasl_scram_derive(what == MF_SASL_LOOKUP_SCRAM_SHA1 ? MF_SASL_SHA1 :
					 MF_SASL_SHA256, PASSWORD, strlen(PASSWORD), &a_r->scram,
					 error_r) < 0)
			return -1;
		a_r->scram_set = true;
	} else if (what == MF_SASL_LOOKUP_CRAM_MD5) {
		mf_sasl_cram_derive(PASSWORD, strlen(PASSWORD), &a_r->cram);
		a_r->cram_allowed = true;
	}
	return 1;
}

static bool ssl_line(SSL *ssl, char *buf, size_t size)
{
	size_t n = 0;

	while (n + 1 < size) {
		char ch;
		if (SSL_read(ssl, &ch, 1) != 1)
			return false;
		if (ch == '\n')
			break;
		buf[n++] = ch;
	}
	if (n > 0 && buf[n - 1] == '\r')
		n--;
	buf[n] = '\0';
	return true;
}

static void ssl_puts(SSL *ssl, const char *s)
{
	SSL_write(ssl, s, (int)strlen(s));
}

/* One SASL exchange; line is the AUTH command. */
static void server_auth(struct script *s, SSL *ssl, const char *line)
{
	struct mf_sasl_backend be = { s, be_verify, be_lookup };
	struct mf_sasl_server_settings set = { .cram_md5 = true, .hostname = "test" };
	struct mf_sasl_server *srv = NULL;
	struct mf_sasl_tls tls;
	enum mf_sasl_mech mech;
	const char *sp = strchr(line + 5, ' '), *err;
	size_t mlen = sp != NULL ? (size_t)(sp - (line + 5)) : strlen(line + 5);
	unsigned char *in = NULL;
	size_t in_len = 0;
	bool has = false;
	enum mf_sasl_status st;
	char buf[8192];

	snprintf(s->mech, sizeof(s->mech), "%.*s", (int)mlen, line + 5);
	if (s->nul_prompts && strcmp(s->mech, "LOGIN") == 0) {
		char user[512], pass[512];
		unsigned char *u = NULL, *p = NULL;
		size_t ul = 0, pl = 0;
		bool ok;
		ssl_puts(ssl, "334 VXNlciBOYW1lAA==\r\n");   /* "User Name\0" */
		if (!ssl_line(ssl, user, sizeof(user)))
			return;
		ssl_puts(ssl, "334 UGFzc3dvcmQA\r\n");       /* "Password\0" */
		if (!ssl_line(ssl, pass, sizeof(pass)))
			return;
		ok = mf_sasl_base64_decode(user, strlen(user), &u, &ul) == 0 &&
		     mf_sasl_base64_decode(pass, strlen(pass), &p, &pl) == 0 &&
		     ul == strlen(USER) && memcmp(u, USER, ul) == 0 &&
		     pl == strlen(PASSWORD) && memcmp(p, PASSWORD, pl) == 0;
		free(u);
		free(p);
		s->authenticated = ok;
		ssl_puts(ssl, ok ? "235 2.7.0 ok\r\n" : "535 5.7.8 no\r\n");
		return;
	}
	mf_sasl_tls_from_ssl(ssl, &tls);
	if (mf_sasl_mech_parse(line + 5, mlen, &mech) < 0 ||
	    mf_sasl_server_create(mech, &set, &be, &tls, NULL, &srv, &err) < 0) {
		ssl_puts(ssl, "504 5.5.4 no\r\n");
		return;
	}
	if (sp != NULL) {
		has = true;
		if (strcmp(sp + 1, "=") != 0 &&
		    mf_sasl_base64_decode(sp + 1, strlen(sp + 1), &in, &in_len) < 0) {
			ssl_puts(ssl, "501 5.5.2 bad\r\n");
			goto out;
		}
	}
	for (;;) {
		const unsigned char *out;
		size_t out_len;
		if (s->fake_success && has) {
			/* A server that does not know the password. */
			ssl_puts(ssl, "235 2.7.0 ok\r\n");
			s->authenticated = true;
			goto out;
		}
		st = mf_sasl_server_step(srv, in, in_len, has, &out, &out_len);
		free(in);
		in = NULL;
		if (st != MF_SASL_CONTINUE)
			break;
		char *b64 = mf_sasl_base64_encode(out, out_len);
		snprintf(buf, sizeof(buf), "334 %s\r\n", b64);
		free(b64);
		ssl_puts(ssl, buf);
		if (!ssl_line(ssl, buf, sizeof(buf)))
			goto out;
		if (strcmp(buf, "*") == 0) {
			ssl_puts(ssl, "501 5.7.0 cancelled\r\n");
			goto out;
		}
		if (mf_sasl_base64_decode(buf, strlen(buf), &in, &in_len) < 0) {
			ssl_puts(ssl, "501 5.5.2 bad\r\n");
			goto out;
		}
		has = true;
	}
	if (st == MF_SASL_SUCCESS) {
		s->authenticated = true;
		ssl_puts(ssl, "235 2.7.0 ok\r\n");
	} else {
		ssl_puts(ssl, "535 5.7.8 no\r\n");
	}
out:
	free(in);
	mf_sasl_server_free(&srv);
}

static void *server(void *arg)
{
	struct script *s = arg;
	int fd = accept(s->listen_fd, NULL, NULL);
	SSL *ssl;
	char line[8192];

	if (fd < 0)
		return NULL;
	ssl = SSL_new(server_ctx);
	SSL_set_fd(ssl, fd);
	if (SSL_accept(ssl) != 1)
		goto out;
	ssl_puts(ssl, "220 test ESMTP\r\n");
	while (ssl_line(ssl, line, sizeof(line))) {
		if (strncmp(line, "EHLO", 4) == 0) {
			snprintf(line, sizeof(line), "250-test\r\n250-%s\r\n250 8BITMIME\r\n", s->auth);
			ssl_puts(ssl, line);
		} else if (strncmp(line, "AUTH ", 5) == 0) {
			server_auth(s, ssl, line);
		} else if (strncmp(line, "MAIL", 4) == 0) {
			s->got_mail = true;
			ssl_puts(ssl, s->authenticated ? "250 2.1.0 ok\r\n" : "530 5.7.0 auth\r\n");
		} else if (strncmp(line, "RCPT", 4) == 0) {
			ssl_puts(ssl, "250 2.1.5 ok\r\n");
		} else if (strcmp(line, "DATA") == 0) {
			ssl_puts(ssl, "354 go\r\n");
			while (ssl_line(ssl, line, sizeof(line)) && strcmp(line, ".") != 0)
				;
			ssl_puts(ssl, "250 2.0.0 queued\r\n");
		} else if (strcmp(line, "QUIT") == 0) {
			ssl_puts(ssl, "221 2.0.0 bye\r\n");
			break;
		} else {
			ssl_puts(ssl, "500 5.5.1 what\r\n");
		}
	}
out:
	SSL_shutdown(ssl);
	SSL_free(ssl);
	close(fd);
	return NULL;
}

static int run(struct script *s, const char *password, bool login, const char **error_r)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	socklen_t sl = sizeof(sin);
	struct smtp_client_params p;
	struct smtp_client_info info;
	struct smtp_client_rcpt r;
	const char *msg = "Subject: t\n\nbody\n";
	char path[] = "/tmp/mf-delivery-auth-msg-XXXXXX";
	pthread_t th;
	int mfd, ret;

	s->listen_fd = socket(AF_INET, SOCK_STREAM, 0);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(s->listen_fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(listen(s->listen_fd, 4), 0);
	getsockname(s->listen_fd, (struct sockaddr *)&sin, &sl);
	pthread_create(&th, NULL, server, s);

	mfd = mkstemp(path);
	assert_true(mfd >= 0);
	unlink(path);
	assert_int_equal(write(mfd, msg, strlen(msg)), (ssize_t)strlen(msg));
	memset(&r, 0, sizeof(r));
	r.address = "rcpt@example.net";
	memset(&p, 0, sizeof(p));
	p.host = "test";
	p.ip = "127.0.0.1";
	p.port = ntohs(sin.sin_port);
	p.ehlo_name = "client.test";
	p.mail_from = USER;
	p.size = strlen(msg);
	p.msg_fd = mfd;
	p.timeout_ms = 5000;
	p.tls = client_ctx;
	p.implicit_tls = true;
	p.require_tls = true;
	p.auth_user = USER;
	p.auth_password = password;
	p.auth_login = login;
	ret = smtp_client_deliver(&p, &r, 1, &info, error_r);
	if (ret == 0 && !r.delivered)
		ret = -1;
	close(mfd);
	shutdown(s->listen_fd, SHUT_RDWR);
	close(s->listen_fd);
	pthread_join(th, NULL);
	smtp_client_rcpts_clear(&r, 1);
	return ret;
}

static void test_strongest_plus(void **state)
{
	struct script s = { .auth = "AUTH PLAIN LOGIN SCRAM-SHA-1 SCRAM-SHA-256 SCRAM-SHA-256-PLUS" };
	const char *err = NULL;

	assert_int_equal(run(&s, PASSWORD, false, &err), 0);
	assert_string_equal(s.mech, "SCRAM-SHA-256-PLUS");
	assert_true(s.authenticated);
}

static void test_strongest_without_plus(void **state)
{
	struct script s = { .auth = "AUTH=LOGIN CRAM-MD5 SCRAM-SHA-1 PLAIN" };
	const char *err = NULL;

	assert_int_equal(run(&s, PASSWORD, false, &err), 0);
	assert_string_equal(s.mech, "SCRAM-SHA-1");
}

static void test_cram_md5_and_plain(void **state)
{
	struct script s = { .auth = "AUTH LOGIN CRAM-MD5 PLAIN" };
	struct script s2 = { .auth = "AUTH LOGIN PLAIN" };
	const char *err = NULL;

	assert_int_equal(run(&s, PASSWORD, false, &err), 0);
	assert_string_equal(s.mech, "CRAM-MD5");
	assert_int_equal(run(&s2, PASSWORD, false, &err), 0);
	assert_string_equal(s2.mech, "PLAIN");
}

static void test_login_configured(void **state)
{
	struct script s = { .auth = "AUTH SCRAM-SHA-256 PLAIN LOGIN" };
	struct script s2 = { .auth = "AUTH SCRAM-SHA-256 PLAIN" };
	const char *err = NULL;

	assert_int_equal(run(&s, PASSWORD, true, &err), 0);
	assert_string_equal(s.mech, "LOGIN");
	assert_int_equal(run(&s2, PASSWORD, true, &err), -1);
	assert_non_null(strstr(err, "LOGIN"));
}

static void test_login_nul_prompts(void **state)
{
	struct script s = { .auth = "AUTH PLAIN LOGIN", .nul_prompts = true };
	const char *err = NULL;

	assert_int_equal(run(&s, PASSWORD, true, &err), 0);
	assert_string_equal(s.mech, "LOGIN");
	assert_true(s.authenticated);
}

static void test_wrong_password(void **state)
{
	struct script s = { .auth = "AUTH SCRAM-SHA-256-PLUS" };
	const char *err = NULL;

	assert_int_equal(run(&s, "wrong", false, &err), -1);
	assert_false(s.authenticated);
	assert_false(s.got_mail);
	assert_non_null(strstr(err, "authentication failed"));
}

static void test_no_common_mechanism(void **state)
{
	struct script s = { .auth = "AUTH GSSAPI XOAUTH2" };
	const char *err = NULL;

	assert_int_equal(run(&s, PASSWORD, false, &err), -1);
	assert_non_null(strstr(err, "no AUTH mechanism"));
	assert_false(s.got_mail);
}

static void test_server_without_proof(void **state)
{
	struct script s = { .auth = "AUTH SCRAM-SHA-256", .fake_success = true };
	const char *err = NULL;

	/* 235 came, but without the server signature: no message goes. */
	assert_int_equal(run(&s, PASSWORD, false, &err), -1);
	assert_false(s.got_mail);
	assert_non_null(strstr(err, "did not prove"));
}

static int setup(void **state)
{
	const char *err;

	if (mkdtemp(dir) == NULL)
		return -1;
	snprintf(cert, sizeof(cert), "%s/cert.pem", dir);
	snprintf(key, sizeof(key), "%s/key.pem", dir);
	if (mf_tls_generate_self_signed(cert, key, "test", &err) < 0 ||
	    mf_tls_server_ctx_new(cert, key, 0, &server_ctx, &err) < 0 ||
	    mf_tls_client_ctx_new(false, NULL, &client_ctx, &err) < 0) {
		fprintf(stderr, "setup: %s\n", err);
		return -1;
	}
	return 0;
}

static int teardown(void **state)
{
	mf_tls_ctx_free(&server_ctx);
	mf_tls_ctx_free(&client_ctx);
	unlink(cert);
	unlink(key);
	rmdir(dir);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_strongest_plus),
		cmocka_unit_test(test_strongest_without_plus),
		cmocka_unit_test(test_cram_md5_and_plain),
		cmocka_unit_test(test_login_configured),
		cmocka_unit_test(test_login_nul_prompts),
		cmocka_unit_test(test_wrong_password),
		cmocka_unit_test(test_no_common_mechanism),
		cmocka_unit_test(test_server_without_proof),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
