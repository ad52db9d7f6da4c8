/* Unit tests of services/imap/store_credentials.c: SCRAM and CRAM-MD5
 * material from set password (checked by running libshared/sasl exchanges
 * against it), options, normalised logins, login attempts (grouping, age,
 * cap) and TLS public keys. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "blob.h"
#include "buf.h"
#include "domains.h"
#include "fsutil.h"
#include "password.h"
#include "lib/storeenv.h"
#include "services/imap/store.h"
#include "sasl.h"
#include <openssl/evp.h>
#include <openssl/x509.h>

static char *domains_text(const char *quota)
{
	return mf_xasprintf(
		"domain example.org {\n    catchall-separator +\n}\n"
		"domain catchall.example {\n}\n"
		"account mjl {\n"
		"    domain example.org\n"
		"    address mjl@example.org\n"
		"    address @catchall.example\n"
		"    quota %s\n"
		"}\n"
		"account other {\n"
		"    domain example.org\n"
		"    address other@example.org\n"
		"    login-disabled \"moved away\"\n"
		"}\n"
		"account jose {\n"
		"    domain example.org\n"
		"    address jos\xc3\xa9@example.org\n"
		"}\n", quota);
}

static int setup(void **state)
{
	char *text = domains_text("0");

	*state = store_test_env_create("test_store_cred", text);
	free(text);
	return 0;
}

static int teardown(void **state)
{
	store_test_env_free(*state);
	return 0;
}

static struct store_account *open_acc(struct store_test_env *e, const char *name)
{
	struct store_account *acc = NULL;
	const char *err = NULL;

	if (store_account_create(e->store, name, &err) < 0)
		fail_msg("create %s: %s", name, err);
	assert_int_equal(store_account_open(e->store, name, &acc, &err), 1);
	return acc;
}

/* A sasl backend reading the store, as imap will. */
static int be_verify(void *ctx, const char *login, const char *password, size_t len,
		     struct mf_sasl_account *a_r, const char **error_r)
{
	struct store_test_env *e = ctx;
	enum store_auth_result res;
	char *account = NULL, *message = NULL;

	if (store_authenticate(e->store, login, password, len, &res, &account, &message,
			       error_r) < 0)
		return -1;
	a_r->account = account;
	a_r->disabled = message;
	return res != STORE_AUTH_FAILED;
}

static int be_lookup(void *ctx, enum mf_sasl_lookup what, const char *login,
		     struct mf_sasl_account *a_r, const char **error_r)
{
	struct store_test_env *e = ctx;
	struct store_account *acc = NULL;
	int r;

	/* Test accounts log in by name. */
	r = store_account_open(e->store, login, &acc, error_r);
	if (r <= 0)
		return r;
	a_r->account = strdup(login);
	if (what == MF_SASL_LOOKUP_SCRAM_SHA1 || what == MF_SASL_LOOKUP_SCRAM_SHA256) {
		r = store_credentials_get_scram(acc, what == MF_SASL_LOOKUP_SCRAM_SHA1 ?
						MF_SASL_SHA1 : MF_SASL_SHA256, &a_r->scram, error_r);
		a_r->scram_set = r > 0;
	} else if (what == MF_SASL_LOOKUP_CRAM_MD5) {
		r = store_credentials_get_cram(acc, &a_r->cram, error_r);
		a_r->cram_allowed = r > 0;
	} else {
		r = 1;
	}
	store_account_unref(&acc);
	return r < 0 ? -1 : 1;
}

/* Runs a client exchange against a server on the store; returns the status. */
static enum mf_sasl_status exchange(struct store_test_env *e, enum mf_sasl_mech mech, const char *user,
				    const char *password)
{
	struct mf_sasl_backend be = { e, be_verify, be_lookup };
	struct mf_sasl_server_settings set = { .cram_md5 = true };
	struct mf_sasl_tls tls = { .active = true };
	struct mf_sasl_server *srv = NULL;
	struct mf_sasl_client *cl = NULL;
	const unsigned char *cout = NULL, *sout = NULL;
	size_t clen = 0, slen = 0;
	bool has = false;
	const char *err = NULL;
	enum mf_sasl_status st;

	assert_int_equal(mf_sasl_server_create(mech, &set, &be, &tls, NULL, &srv, &err), 0);
	assert_int_equal(mf_sasl_client_create(mech, user, password, NULL, &cl, &err), 0);
	assert_int_equal(mf_sasl_client_initial(cl, &cout, &clen, &has, &err), 0);
	st = mf_sasl_server_step(srv, cout, clen, has, &sout, &slen);
	for (int i = 0; st == MF_SASL_CONTINUE && i < 5; i++) {
		assert_int_equal(mf_sasl_client_step(cl, sout, slen, &cout, &clen, &err), 0);
		st = mf_sasl_server_step(srv, cout, clen, true, &sout, &slen);
	}
	if (st == MF_SASL_SUCCESS)
		assert_memory_equal(mf_sasl_server_account(srv), user,
				    strlen(mf_sasl_server_account(srv)));
	mf_sasl_server_free(&srv);
	mf_sasl_client_free(&cl);
	return st;
}

static void test_scram_material(void **state)
{
	struct store_test_env *e = *state;
	struct store_account *acc = open_acc(e, "mjl");
	struct mf_sasl_scram s;
	const char *err = NULL;

	/* no password yet: no material, SCRAM fails like a wrong password */
	assert_int_equal(store_credentials_get_scram(acc, MF_SASL_SHA256, &s, &err), 0);
	assert_int_equal(exchange(e, MF_SASL_SCRAM_SHA_256, "mjl", "pencil"), MF_SASL_FAILED);
	assert_int_equal(store_set_password(acc, "pencil", 6, &err), 0);
	assert_int_equal(store_credentials_get_scram(acc, MF_SASL_SHA256, &s, &err), 1);
	assert_int_equal(s.iterations, MF_SASL_SCRAM_ITERATIONS);
	assert_int_equal(s.salt_len, MF_SASL_SALT_LEN);
	assert_int_equal(store_credentials_get_scram(acc, MF_SASL_SHA1, &s, &err), 1);
	assert_int_equal(exchange(e, MF_SASL_SCRAM_SHA_256, "mjl", "pencil"), MF_SASL_SUCCESS);
	assert_int_equal(exchange(e, MF_SASL_SCRAM_SHA_1, "mjl", "pencil"), MF_SASL_SUCCESS);
	assert_int_equal(exchange(e, MF_SASL_SCRAM_SHA_256, "mjl", "pencim"), MF_SASL_FAILED);
	assert_int_equal(exchange(e, MF_SASL_PLAIN, "mjl", "pencil"), MF_SASL_SUCCESS);
	assert_int_equal(exchange(e, MF_SASL_LOGIN, "mjl@example.org", "pencil"), MF_SASL_SUCCESS);
	assert_int_equal(exchange(e, MF_SASL_LOGIN, "mjl@example.org", "pencim"), MF_SASL_FAILED);
	/* an imported hash has no SCRAM material: SCRAM fails, PLAIN works */
	{
		char *hash = mf_password_hash("other", 5, &err);

		assert_int_equal(store_set_password_hash(acc, hash, NULL, NULL, &err), 0);
		free(hash);
	}
	assert_int_equal(store_credentials_get_scram(acc, MF_SASL_SHA256, &s, &err), 0);
	assert_int_equal(exchange(e, MF_SASL_SCRAM_SHA_256, "mjl", "other"), MF_SASL_FAILED);
	assert_int_equal(exchange(e, MF_SASL_PLAIN, "mjl", "other"), MF_SASL_SUCCESS);
	store_account_unref(&acc);
}

static void test_cram_option(void **state)
{
	struct store_test_env *e = *state;
	struct store_account *acc = open_acc(e, "mjl");
	struct store_credential_options o;
	struct mf_sasl_cram c;
	const char *err = NULL;

	assert_int_equal(store_set_password(acc, "pencil", 6, &err), 0);
	assert_int_equal(store_credentials_get_options(acc, &o, &err), 0);
	assert_false(o.cram_md5_allowed);
	assert_false(o.generated_only);
	/* not allowed: no material kept */
	assert_int_equal(store_credentials_get_cram(acc, &c, &err), 0);
	assert_int_equal(exchange(e, MF_SASL_CRAM_MD5, "mjl", "pencil"), MF_SASL_FAILED);
	o.cram_md5_allowed = true;
	assert_int_equal(store_credentials_set_options(acc, &o, &err), 0);
	/* allowed, but only the next password brings material */
	assert_int_equal(store_credentials_get_cram(acc, &c, &err), 0);
	assert_int_equal(store_set_password(acc, "pencil", 6, &err), 0);
	assert_int_equal(store_credentials_get_cram(acc, &c, &err), 1);
	assert_int_equal(exchange(e, MF_SASL_CRAM_MD5, "mjl", "pencil"), MF_SASL_SUCCESS);
	assert_int_equal(exchange(e, MF_SASL_CRAM_MD5, "mjl", "pencim"), MF_SASL_FAILED);
	/* disallowed again: material gone at once */
	o.cram_md5_allowed = false;
	assert_int_equal(store_credentials_set_options(acc, &o, &err), 0);
	assert_int_equal(store_credentials_get_cram(acc, &c, &err), 0);
	assert_int_equal(exchange(e, MF_SASL_CRAM_MD5, "mjl", "pencil"), MF_SASL_FAILED);
	store_account_unref(&acc);
}

static void test_generated_only(void **state)
{
	struct store_test_env *e = *state;
	struct store_account *acc = open_acc(e, "mjl");
	struct store_credential_options o = { .generated_only = true };
	const char *err = NULL;

	assert_int_equal(store_credentials_set_options(acc, &o, &err), 0);
	assert_int_equal(store_credentials_set_password(acc, "chosen", 6, STORE_PASSWORD_USER,
							&err), -1);
	assert_int_equal(store_last_error_kind(), STORE_ERR_INVALID);
	assert_non_null(strstr(err, "generated"));
	assert_int_equal(store_credentials_set_password(acc, "gen-abc-123", 11,
							STORE_PASSWORD_GENERATED, &err), 0);
	assert_int_equal(store_credentials_set_password(acc, "admin set", 9, STORE_PASSWORD_ADMIN,
							&err), 0);
	o.generated_only = false;
	assert_int_equal(store_credentials_set_options(acc, &o, &err), 0);
	assert_int_equal(store_credentials_set_password(acc, "chosen", 6, STORE_PASSWORD_USER,
							&err), 0);
	/* not an OpaqueString */
	assert_int_equal(store_set_password(acc, "tab\there", 8, &err), -1);
	assert_int_equal(store_last_error_kind(), STORE_ERR_INVALID);
	store_account_unref(&acc);
}

/* Password and address typed decomposed (NFD) or composed (NFC). */
static void test_normalised(void **state)
{
	struct store_test_env *e = *state;
	struct store_account *acc = open_acc(e, "jose");
	enum store_auth_result res;
	char *account = NULL, *message = NULL;
	const char *err = NULL;

	assert_int_equal(store_set_password(acc, "caf\xc3\xa9\xe3\x80\x80x", 9, &err), 0);
	/* NFD login, NFD password with an ASCII space for the ideographic one */
	assert_int_equal(store_authenticate(e->store, "jose\xcc\x81@example.org", "cafe\xcc\x81 x",
					    8, &res, &account, &message, &err), 0);
	assert_int_equal(res, STORE_AUTH_OK);
	assert_string_equal(account, "jose");
	free(account);
	free(message);
	assert_int_equal(store_authenticate(e->store, "jos\xc3\xa9@example.org", "caf\xc3\xa9 x", 7,
					    &res, &account, &message, &err), 0);
	assert_int_equal(res, STORE_AUTH_OK);
	free(account);
	free(message);
	assert_int_equal(store_authenticate(e->store, "jos\xc3\xa9@example.org", "cafe x", 6,
					    &res, &account, &message, &err), 0);
	assert_int_equal(res, STORE_AUTH_FAILED);
	assert_int_equal(exchange(e, MF_SASL_SCRAM_SHA_256, "jose", "cafe\xcc\x81 x"),
			 MF_SASL_SUCCESS);
	store_account_unref(&acc);
}

static void test_login_resolve(void **state)
{
	struct store_test_env *e = *state;
	char *account = NULL, *disabled = NULL;
	const char *err = NULL;

	assert_int_equal(store_login_resolve(e->store, "MJL@example.org", &account, &disabled,
					     &err), 1);
	assert_string_equal(account, "mjl");
	assert_null(disabled);
	free(account);
	assert_int_equal(store_login_resolve(e->store, "other@example.org", &account, &disabled,
					     &err), 1);
	assert_string_equal(account, "other");
	assert_string_equal(disabled, "moved away");
	free(account);
	free(disabled);
	assert_int_equal(store_login_resolve(e->store, "jose\xcc\x81@example.org", &account, NULL,
					     &err), 1);
	assert_string_equal(account, "jose");
	free(account);
	/* catch-all and separator matches receive mail, they do not log in */
	assert_int_equal(store_login_resolve(e->store, "x@catchall.example", &account, NULL, &err),
			 0);
	assert_int_equal(store_login_resolve(e->store, "mjl+tag@example.org", &account, NULL,
					     &err), 0);
	assert_int_equal(store_login_resolve(e->store, "nobody", &account, NULL, &err), 0);
	assert_null(account);
}

static void test_login_attempts(void **state)
{
	struct store_test_env *e = *state;
	struct store_account *acc = open_acc(e, "mjl");
	struct store_login_attempt a = {
		.protocol = "imap", .mechanism = "PLAIN", .login = "mjl@example.org",
		.remote_ip = "192.0.2.1", .local_ip = "127.0.0.1",
		.tls = "TLSv1.3 TLS_AES_128_GCM_SHA256", .client_id = "Thunderbird 115",
		.result = "badcreds",
	};
	struct store_login_attempt *list = NULL;
	size_t n = 0;
	const int64_t day = 24LL * 3600 * 1000, t0 = 1700000000000LL;
	const char *err = NULL;
	char longname[600];

	/* repeats are grouped */
	for (int i = 0; i < 3; i++)
		assert_int_equal(store_login_attempt_record(acc, &a, t0 + i, &err), 0);
	a.result = "ok";
	assert_int_equal(store_login_attempt_record(acc, &a, t0 + 10, &err), 0);
	assert_int_equal(store_login_attempts_list(acc, 0, &list, &n, &err), 0);
	assert_int_equal(n, 2);
	assert_string_equal(list[0].result, "ok");
	assert_int_equal(list[0].count, 1);
	assert_string_equal(list[1].result, "badcreds");
	assert_int_equal(list[1].count, 3);
	assert_int_equal(list[1].first_ms, t0);
	assert_int_equal(list[1].last_ms, t0 + 2);
	assert_string_equal(list[1].tls_pubkey, "");
	assert_string_equal(list[1].client_id, "Thunderbird 115");
	store_login_attempts_free(&list, n);
	assert_null(list);
	/* limit */
	assert_int_equal(store_login_attempts_list(acc, 1, &list, &n, &err), 0);
	assert_int_equal(n, 1);
	store_login_attempts_free(&list, n);
	/* 31 days later the old rows are gone */
	a.remote_ip = "192.0.2.2";
	assert_int_equal(store_login_attempt_record(acc, &a, t0 + 31 * day, &err), 0);
	assert_int_equal(store_login_attempts_list(acc, 0, &list, &n, &err), 0);
	assert_int_equal(n, 1);
	assert_string_equal(list[0].remote_ip, "192.0.2.2");
	store_login_attempts_free(&list, n);
	/* the row cap keeps the newest */
	store_login_attempts_set_max(5);
	for (int i = 0; i < 8; i++) {
		char ip[32];

		snprintf(ip, sizeof(ip), "198.51.100.%d", i);
		a.remote_ip = ip;
		assert_int_equal(store_login_attempt_record(acc, &a, t0 + 32 * day + i, &err), 0);
	}
	store_login_attempts_set_max(STORE_LOGIN_ATTEMPTS_MAX);
	assert_int_equal(store_login_attempts_list(acc, 0, &list, &n, &err), 0);
	assert_int_equal(n, 5);
	assert_string_equal(list[0].remote_ip, "198.51.100.7");
	assert_string_equal(list[4].remote_ip, "198.51.100.3");
	store_login_attempts_free(&list, n);
	/* long fields are cut, NULL fields are "" */
	memset(longname, 'x', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	{
		struct store_login_attempt b = { .protocol = "submission", .login = longname,
						 .result = "malformed" };

		assert_int_equal(store_login_attempt_record(acc, &b, t0 + 40 * day, &err), 0);
	}
	assert_int_equal(store_login_attempts_list(acc, 1, &list, &n, &err), 0);
	assert_int_equal(strlen(list[0].login), STORE_LOGIN_ATTEMPT_FIELD_MAX);
	assert_string_equal(list[0].mechanism, "");
	store_login_attempts_free(&list, n);
	store_account_unref(&acc);
}

static unsigned char *new_key_der(size_t *len_r)
{
	EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	unsigned char *der = NULL;
	int n;

	assert_non_null(k);
	n = i2d_PUBKEY(k, &der);
	assert_true(n > 0);
	EVP_PKEY_free(k);
	*len_r = (size_t)n;
	return der;
}

static void test_tls_pubkeys(void **state)
{
	struct store_test_env *e = *state;
	struct store_account *mjl = open_acc(e, "mjl"), *other = open_acc(e, "other");
	struct store_tls_pubkey *keys = NULL, k;
	size_t n = 0, len1, len2;
	unsigned char *k1 = new_key_der(&len1), *k2 = new_key_der(&len2);
	char *fp1 = NULL, *fp2 = NULL;
	const char *err = NULL;

	assert_int_equal(store_tls_pubkey_add(e->store, mjl, "laptop", k1, len1, "mjl@example.org",
					      false, &fp1, &err), 0);
	assert_int_equal(strlen(fp1), STORE_TLS_FINGERPRINT_LEN);
	{
		char *again = store_tls_pubkey_fingerprint(k1, len1);

		assert_string_equal(again, fp1);
		free(again);
	}
	assert_int_equal(store_tls_pubkey_add(e->store, mjl, "phone", k2, len2, "mjl@example.org",
					      true, &fp2, &err), 0);
	/* one key belongs to one account */
	assert_int_equal(store_tls_pubkey_add(e->store, other, "stolen", k1, len1,
					      "other@example.org", false, NULL, &err), -1);
	assert_int_equal(store_last_error_kind(), STORE_ERR_EXISTS);
	/* not a public key */
	assert_int_equal(store_tls_pubkey_add(e->store, other, "junk", (const unsigned char *)"abc",
					      3, "other@example.org", false, NULL, &err), -1);
	assert_int_equal(store_last_error_kind(), STORE_ERR_INVALID);
	assert_int_equal(store_tls_pubkeys_list(mjl, &keys, &n, &err), 0);
	assert_int_equal(n, 2);
	assert_string_equal(keys[0].name, "laptop");
	assert_false(keys[0].no_imap_preauth);
	assert_true(keys[1].no_imap_preauth);
	assert_int_equal(keys[1].der_len, len2);
	assert_memory_equal(keys[1].der, k2, len2);
	store_tls_pubkeys_free(&keys, n);
	assert_int_equal(store_tls_pubkey_lookup(e->store, fp2, &k, &err), 1);
	assert_string_equal(k.account, "mjl");
	assert_string_equal(k.name, "phone");
	assert_string_equal(k.login_address, "mjl@example.org");
	store_tls_pubkey_clear(&k);
	assert_int_equal(store_tls_pubkey_remove(other, fp2, &err), 0);
	assert_int_equal(store_tls_pubkey_remove(mjl, fp2, &err), 1);
	assert_int_equal(store_tls_pubkey_lookup(e->store, fp2, &k, &err), 0);
	assert_int_equal(store_tls_pubkey_lookup(e->store, "nothex", &k, &err), 0);
	/* the removed key can go to another account now */
	assert_int_equal(store_tls_pubkey_add(e->store, other, "tablet", k2, len2,
					      "other@example.org", false, NULL, &err), 0);
	assert_int_equal(store_tls_pubkey_lookup(e->store, fp2, &k, &err), 1);
	assert_string_equal(k.account, "other");
	store_tls_pubkey_clear(&k);
	free(fp1);
	free(fp2);
	OPENSSL_free(k1);
	OPENSSL_free(k2);
	store_account_unref(&mjl);
	store_account_unref(&other);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_scram_material, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cram_option, setup, teardown),
		cmocka_unit_test_setup_teardown(test_generated_only, setup, teardown),
		cmocka_unit_test_setup_teardown(test_normalised, setup, teardown),
		cmocka_unit_test_setup_teardown(test_login_resolve, setup, teardown),
		cmocka_unit_test_setup_teardown(test_login_attempts, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tls_pubkeys, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
