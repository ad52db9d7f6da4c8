/* store_credentials: what the account store keeps for logging in besides
 * the scrypt hash: SCRAM-SHA-1/256 and CRAM-MD5 material (libshared/sasl.h),
 * credential options, TLS client public keys, and login attempts.  See
 * store.h. */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <sqlite3.h>

#include "buf.h"
#include "error.h"
#include "log.h"
#include "password.h"
#include "precis.h"
#include "sasl.h"
#include "store.h"
#include "store_private.h"

static _Atomic size_t attempts_max = STORE_LOGIN_ATTEMPTS_MAX;

void store_login_attempts_set_max(size_t max)
{
	atomic_store(&attempts_max, max);
}

static int64_t wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* --- password and material ---------------------------------------------- */

static int options_locked(struct store_account *acc, struct store_credential_options *o,
			  const char **error_r)
{
	sqlite3_stmt *stmt = NULL;
	int rc, ret = -1;

	memset(o, 0, sizeof(*o));
	if (store_prepare(acc, "SELECT cram_md5_allowed, generated_only FROM credentials "
			  "WHERE id = 1", &stmt, error_r) < 0)
		return -1;
	rc = sqlite3_step(stmt);
	if (rc == SQLITE_ROW) {
		o->cram_md5_allowed = sqlite3_column_int(stmt, 0) != 0;
		o->generated_only = sqlite3_column_int(stmt, 1) != 0;
	} else if (rc != SQLITE_DONE) {
		store_db_fail(acc, "credential options", error_r);
		goto out;
	}
	ret = 0;
out:
	sqlite3_finalize(stmt);
	return ret;
}

int store_credentials_set_password(struct store_account *acc, const char *password,
				   size_t len, enum store_password_origin origin,
				   const char **error_r)
{
	struct store_credential_options o;
	struct mf_sasl_scram s1, s256;
	struct mf_sasl_cram cram;
	unsigned char cram_bytes[MF_SASL_CRAM_BYTES];
	char *norm = NULL, *hash = NULL, *t1 = NULL, *t256 = NULL;
	size_t norm_len = 0;
	sqlite3_stmt *stmt = NULL;
	bool locked = false;
	int ret = -1;

	store_error_clear();
	if (len == 0)
		return store_fail(STORE_ERR_INVALID, error_r, "empty password");
	if (len > MF_PASSWORD_MAX)
		return store_fail(STORE_ERR_INVALID, error_r, "password too long");
	if (mf_precis_password(password, len, &norm, &norm_len, error_r) < 0)
		return store_fail(STORE_ERR_INVALID, error_r, "password refused: %s", *error_r);
	/* The slow work before taking the account's lock. */
	hash = mf_password_hash(norm, norm_len, error_r);
	if (hash == NULL) {
		store_fail_kind(STORE_ERR_INVALID);
		goto out;
	}
	if (mf_sasl_scram_derive(MF_SASL_SHA1, norm, norm_len, &s1, error_r) < 0 ||
	    mf_sasl_scram_derive(MF_SASL_SHA256, norm, norm_len, &s256, error_r) < 0) {
		store_fail_kind(STORE_ERR_TEMPORARY);
		goto out;
	}
	t1 = mf_sasl_scram_format(&s1);
	t256 = mf_sasl_scram_format(&s256);
	mf_sasl_cram_derive(norm, norm_len, &cram);
	mf_sasl_cram_pack(&cram, cram_bytes);
	if (store_lock(acc, error_r) < 0)
		goto out;
	locked = true;
	if (options_locked(acc, &o, error_r) < 0)
		goto out;
	if (origin == STORE_PASSWORD_USER && o.generated_only) {
		store_fail(STORE_ERR_INVALID, error_r,
			   "this account accepts only generated passwords");
		goto out;
	}
	if (store_prepare(acc, "INSERT INTO credentials (id, password_hash, scram_sha1, "
			  "scram_sha256, cram_md5, updated_ms) VALUES (1, ?, ?, ?, ?, ?) "
			  "ON CONFLICT (id) DO UPDATE SET password_hash = excluded.password_hash, "
			  "scram_sha1 = excluded.scram_sha1, scram_sha256 = excluded.scram_sha256, "
			  "cram_md5 = excluded.cram_md5, updated_ms = excluded.updated_ms",
			  &stmt, error_r) < 0)
		goto out;
	sqlite3_bind_text(stmt, 1, hash, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 2, t1, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 3, t256, -1, SQLITE_STATIC);
	if (o.cram_md5_allowed)
		sqlite3_bind_blob(stmt, 4, cram_bytes, sizeof(cram_bytes), SQLITE_STATIC);
	else
		sqlite3_bind_null(stmt, 4);
	sqlite3_bind_int64(stmt, 5, wall_ms());
	if (sqlite3_step(stmt) != SQLITE_DONE) {
		store_db_fail(acc, "set password", error_r);
		goto out;
	}
	ret = 0;
out:
	sqlite3_finalize(stmt);
	if (locked)
		store_unlock(acc);
	if (norm != NULL) {
		OPENSSL_cleanse(norm, norm_len);
		free(norm);
	}
	OPENSSL_cleanse(&cram, sizeof(cram));
	OPENSSL_cleanse(cram_bytes, sizeof(cram_bytes));
	free(hash);
	free(t1);
	free(t256);
	return ret;
}

int store_credentials_get_options(struct store_account *acc,
				  struct store_credential_options *opts_r, const char **error_r)
{
	int ret;

	store_error_clear();
	if (store_lock(acc, error_r) < 0)
		return -1;
	ret = options_locked(acc, opts_r, error_r);
	store_unlock(acc);
	return ret;
}

int store_credentials_set_options(struct store_account *acc,
				  const struct store_credential_options *opts,
				  const char **error_r)
{
	sqlite3_stmt *stmt = NULL;
	int ret = -1;

	store_error_clear();
	if (store_lock(acc, error_r) < 0)
		return -1;
	if (store_prepare(acc, "INSERT INTO credentials (id, cram_md5_allowed, generated_only, "
			  "updated_ms) VALUES (1, ?1, ?2, ?3) ON CONFLICT (id) DO UPDATE SET "
			  "cram_md5_allowed = ?1, generated_only = ?2, updated_ms = ?3, "
			  "cram_md5 = CASE WHEN ?1 THEN cram_md5 ELSE NULL END",
			  &stmt, error_r) < 0)
		goto out;
	sqlite3_bind_int(stmt, 1, opts->cram_md5_allowed ? 1 : 0);
	sqlite3_bind_int(stmt, 2, opts->generated_only ? 1 : 0);
	sqlite3_bind_int64(stmt, 3, wall_ms());
	if (sqlite3_step(stmt) != SQLITE_DONE) {
		store_db_fail(acc, "set credential options", error_r);
		goto out;
	}
	ret = 0;
out:
	sqlite3_finalize(stmt);
	store_unlock(acc);
	return ret;
}

int store_credentials_get_scram(struct store_account *acc, int hash,
				struct mf_sasl_scram *scram_r, const char **error_r)
{
	sqlite3_stmt *stmt = NULL;
	int rc, ret = -1;

	store_error_clear();
	if (hash != MF_SASL_SHA1 && hash != MF_SASL_SHA256)
		return store_fail(STORE_ERR_INVALID, error_r, "unknown SCRAM hash");
	if (store_lock(acc, error_r) < 0)
		return -1;
	if (store_prepare(acc, hash == MF_SASL_SHA1
			  ? "SELECT scram_sha1 FROM credentials WHERE id = 1"
			  : "SELECT scram_sha256 FROM credentials WHERE id = 1", &stmt, error_r) < 0)
		goto out;
	rc = sqlite3_step(stmt);
	if (rc == SQLITE_ROW && sqlite3_column_type(stmt, 0) == SQLITE_TEXT) {
		const char *err;

		if (mf_sasl_scram_parse((enum mf_sasl_hash)hash,
					(const char *)sqlite3_column_text(stmt, 0), scram_r,
					&err) < 0) {
			/* Damaged material is no credential; the password
			 * mechanisms still work. */
			mf_log_error("store", NULL, "bad stored SCRAM material", "account=%s error=%s",
				     acc->name, err);
			ret = 0;
		} else {
			ret = 1;
		}
	} else if (rc == SQLITE_ROW || rc == SQLITE_DONE) {
		ret = 0;
	} else {
		store_db_fail(acc, "get SCRAM material", error_r);
	}
out:
	sqlite3_finalize(stmt);
	store_unlock(acc);
	return ret;
}

int store_credentials_get_cram(struct store_account *acc, struct mf_sasl_cram *cram_r,
			       const char **error_r)
{
	sqlite3_stmt *stmt = NULL;
	int rc, ret = -1;

	store_error_clear();
	if (store_lock(acc, error_r) < 0)
		return -1;
	if (store_prepare(acc, "SELECT cram_md5 FROM credentials WHERE id = 1 AND "
			  "cram_md5_allowed", &stmt, error_r) < 0)
		goto out;
	rc = sqlite3_step(stmt);
	if (rc == SQLITE_ROW && sqlite3_column_type(stmt, 0) == SQLITE_BLOB) {
		ret = mf_sasl_cram_unpack(sqlite3_column_blob(stmt, 0),
					  (size_t)sqlite3_column_bytes(stmt, 0), cram_r) == 0;
	} else if (rc == SQLITE_ROW || rc == SQLITE_DONE) {
		ret = 0;
	} else {
		store_db_fail(acc, "get CRAM-MD5 material", error_r);
	}
out:
	sqlite3_finalize(stmt);
	store_unlock(acc);
	return ret;
}

/* --- login attempts ------------------------------------------------------ */

/* The field as stored: "" for NULL, cut at the limit on a UTF-8 boundary. */
static char *field(const char *s)
{
	size_t n;

	if (s == NULL)
		return mf_xstrdup("");
	n = strlen(s);
	if (n > STORE_LOGIN_ATTEMPT_FIELD_MAX) {
		n = STORE_LOGIN_ATTEMPT_FIELD_MAX;
		while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
			n--;
	}
	return mf_xstrndup(s, n);
}

#define ATTEMPT_FIELDS 9

int store_login_attempt_record(struct store_account *acc, const struct store_login_attempt *a,
			       int64_t now_ms, const char **error_r)
{
	const char *in[ATTEMPT_FIELDS] = { a->protocol, a->mechanism, a->login, a->remote_ip,
					   a->local_ip, a->tls, a->tls_pubkey, a->client_id,
					   a->result };
	char *f[ATTEMPT_FIELDS];
	struct mf_buf grouping;
	sqlite3_stmt *stmt = NULL;
	int ret = -1;

	store_error_clear();
	if (now_ms <= 0)
		now_ms = wall_ms();
	/* Repeats are grouped by every detail; fields never hold NUL, so
	 * NUL-separated they give a unique key. */
	mf_buf_init(&grouping, 0);
	for (int i = 0; i < ATTEMPT_FIELDS; i++) {
		f[i] = field(in[i]);
		mf_buf_append(&grouping, f[i], strlen(f[i]));
		mf_buf_append(&grouping, "\x1f", 1);
	}
	if (store_tx_begin(acc, error_r) < 0)
		goto out_free;
	if (store_prepare(acc, "INSERT INTO login_attempts (grouping, first_ms, last_ms, count, "
			  "protocol, mechanism, login, remote_ip, local_ip, tls, tls_pubkey, "
			  "client_id, result) VALUES (?1, ?2, ?2, 1, ?3, ?4, ?5, ?6, ?7, ?8, ?9, "
			  "?10, ?11) ON CONFLICT (grouping) DO UPDATE SET count = count + 1, "
			  "last_ms = MAX(last_ms, ?2)", &stmt, error_r) < 0)
		goto fail;
	sqlite3_bind_text(stmt, 1, grouping.data, (int)grouping.len, SQLITE_STATIC);
	sqlite3_bind_int64(stmt, 2, now_ms);
	for (int i = 0; i < ATTEMPT_FIELDS; i++)
		sqlite3_bind_text(stmt, 3 + i, f[i], -1, SQLITE_STATIC);
	if (sqlite3_step(stmt) != SQLITE_DONE) {
		store_db_fail(acc, "record login attempt", error_r);
		goto fail;
	}
	sqlite3_finalize(stmt);
	stmt = NULL;
	/* Keep 30 days and at most attempts_max rows (the newest). */
	if (store_prepare(acc, "DELETE FROM login_attempts WHERE last_ms < ?1 OR id IN "
			  "(SELECT id FROM login_attempts ORDER BY last_ms DESC, id DESC "
			  "LIMIT -1 OFFSET ?2)", &stmt, error_r) < 0)
		goto fail;
	sqlite3_bind_int64(stmt, 1, now_ms - STORE_LOGIN_ATTEMPTS_MAX_AGE_MS);
	sqlite3_bind_int64(stmt, 2, (int64_t)atomic_load(&attempts_max));
	if (sqlite3_step(stmt) != SQLITE_DONE) {
		store_db_fail(acc, "prune login attempts", error_r);
		goto fail;
	}
	sqlite3_finalize(stmt);
	stmt = NULL;
	if (store_tx_commit(acc, error_r) < 0)
		goto fail;
	ret = 0;
	goto out_free;
fail:
	sqlite3_finalize(stmt);
	store_tx_rollback(acc);
out_free:
	for (int i = 0; i < ATTEMPT_FIELDS; i++)
		free(f[i]);
	mf_buf_free(&grouping);
	return ret;
}

void store_login_attempts_free(struct store_login_attempt **listp, size_t count)
{
	struct store_login_attempt *list = *listp;

	if (list == NULL)
		return;
	for (size_t i = 0; i < count; i++) {
		free((char *)list[i].protocol);
		free((char *)list[i].mechanism);
		free((char *)list[i].login);
		free((char *)list[i].remote_ip);
		free((char *)list[i].local_ip);
		free((char *)list[i].tls);
		free((char *)list[i].tls_pubkey);
		free((char *)list[i].client_id);
		free((char *)list[i].result);
	}
	free(list);
	*listp = NULL;
}

static char *col_text(sqlite3_stmt *stmt, int col)
{
	const unsigned char *t = sqlite3_column_text(stmt, col);

	return mf_xstrdup(t != NULL ? (const char *)t : "");
}

int store_login_attempts_list(struct store_account *acc, size_t limit,
			      struct store_login_attempt **list_r, size_t *count_r,
			      const char **error_r)
{
	struct store_login_attempt *list = NULL;
	size_t n = 0, cap = 0;
	sqlite3_stmt *stmt = NULL;
	int rc, ret = -1;

	store_error_clear();
	*list_r = NULL;
	*count_r = 0;
	if (store_lock(acc, error_r) < 0)
		return -1;
	if (store_prepare(acc, "SELECT first_ms, last_ms, count, protocol, mechanism, login, "
			  "remote_ip, local_ip, tls, tls_pubkey, client_id, result "
			  "FROM login_attempts ORDER BY last_ms DESC, id DESC LIMIT ?",
			  &stmt, error_r) < 0)
		goto out;
	sqlite3_bind_int64(stmt, 1, limit == 0 ? -1 : (int64_t)limit);
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		struct store_login_attempt *a;

		if (n == cap) {
			cap = cap == 0 ? 16 : cap * 2;
			list = mf_xrealloc(list, cap * sizeof(*list));
		}
		a = &list[n++];
		a->first_ms = sqlite3_column_int64(stmt, 0);
		a->last_ms = sqlite3_column_int64(stmt, 1);
		a->count = (uint64_t)sqlite3_column_int64(stmt, 2);
		a->protocol = col_text(stmt, 3);
		a->mechanism = col_text(stmt, 4);
		a->login = col_text(stmt, 5);
		a->remote_ip = col_text(stmt, 6);
		a->local_ip = col_text(stmt, 7);
		a->tls = col_text(stmt, 8);
		a->tls_pubkey = col_text(stmt, 9);
		a->client_id = col_text(stmt, 10);
		a->result = col_text(stmt, 11);
	}
	if (rc != SQLITE_DONE) {
		store_db_fail(acc, "list login attempts", error_r);
		store_login_attempts_free(&list, n);
		goto out;
	}
	*list_r = list;
	*count_r = n;
	ret = 0;
out:
	sqlite3_finalize(stmt);
	store_unlock(acc);
	return ret;
}

/* --- TLS public keys ---------------------------------------------------------- */

void store_tls_pubkey_clear(struct store_tls_pubkey *k)
{
	free(k->fingerprint);
	free(k->name);
	free(k->der);
	free(k->login_address);
	free(k->account);
	memset(k, 0, sizeof(*k));
}

void store_tls_pubkeys_free(struct store_tls_pubkey **keys, size_t count)
{
	if (*keys == NULL)
		return;
	for (size_t i = 0; i < count; i++)
		store_tls_pubkey_clear(&(*keys)[i]);
	free(*keys);
	*keys = NULL;
}

char *store_tls_pubkey_fingerprint(const unsigned char *der, size_t len)
{
	return mf_sasl_pubkey_fingerprint(der, len);
}

static void key_from_row(sqlite3_stmt *stmt, struct store_tls_pubkey *k)
{
	const void *blob = sqlite3_column_blob(stmt, 2);

	memset(k, 0, sizeof(*k));
	k->fingerprint = col_text(stmt, 0);
	k->name = col_text(stmt, 1);
	k->der_len = (size_t)sqlite3_column_bytes(stmt, 2);
	k->der = mf_xmalloc(k->der_len + 1);
	if (k->der_len > 0)
		memcpy(k->der, blob, k->der_len);
	k->login_address = col_text(stmt, 3);
	k->no_imap_preauth = sqlite3_column_int(stmt, 4) != 0;
	k->created_ms = sqlite3_column_int64(stmt, 5);
}

#define KEY_COLUMNS "fingerprint, name, public_key, login_address, no_imap_preauth, created_ms"

/* Looks fingerprint up in one account.  Returns 1/0/-1. */
static int key_get(struct store_account *acc, const char *fingerprint,
		   struct store_tls_pubkey *k, const char **error_r)
{
	sqlite3_stmt *stmt = NULL;
	int rc, ret = -1;

	if (store_lock(acc, error_r) < 0)
		return -1;
	if (store_prepare(acc, "SELECT " KEY_COLUMNS " FROM tls_public_keys WHERE fingerprint = ?",
			  &stmt, error_r) < 0)
		goto out;
	sqlite3_bind_text(stmt, 1, fingerprint, -1, SQLITE_STATIC);
	rc = sqlite3_step(stmt);
	if (rc == SQLITE_ROW) {
		key_from_row(stmt, k);
		ret = 1;
	} else if (rc == SQLITE_DONE) {
		ret = 0;
	} else {
		store_db_fail(acc, "look up TLS public key", error_r);
	}
out:
	sqlite3_finalize(stmt);
	store_unlock(acc);
	return ret;
}

static bool fingerprint_valid(const char *fp)
{
	if (strlen(fp) != STORE_TLS_FINGERPRINT_LEN)
		return false;
	for (const char *p = fp; *p != '\0'; p++) {
		if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
			return false;
	}
	return true;
}

int store_tls_pubkey_lookup(struct store *store, const char *fingerprint,
			    struct store_tls_pubkey *key_r, const char **error_r)
{
	DIR *d = NULL;
	struct dirent *de;
	int ret = 0;

	store_error_clear();
	memset(key_r, 0, sizeof(*key_r));
	if (!fingerprint_valid(fingerprint))
		return 0;
	/* Every account's store is asked; keys are rare and few, and the
	 * lookup happens once per connection that presents a certificate. */
	d = opendir(store->accounts_dir);
	if (d == NULL)
		return store_fail(STORE_ERR_TEMPORARY, error_r, "open %s: %s", store->accounts_dir,
				  strerror(errno));
	while (ret == 0 && (de = readdir(d)) != NULL) {
		struct store_account *acc = NULL;
		int r;

		if (de->d_name[0] == '.')
			continue;
		r = store_account_open(store, de->d_name, &acc, error_r);
		if (r < 0) {
			/* One broken account must not hide the others' keys. */
			mf_log_warn("store", NULL, "TLS key lookup skips account",
				    "account=%s error=%s", de->d_name, *error_r);
			continue;
		}
		if (r == 0)
			continue;
		r = key_get(acc, fingerprint, key_r, error_r);
		if (r > 0) {
			key_r->account = mf_xstrdup(acc->name);
			ret = 1;
		} else if (r < 0) {
			ret = -1;
		}
		store_account_unref(&acc);
	}
	closedir(d);
	return ret;
}

int store_tls_pubkey_add(struct store *store, struct store_account *acc, const char *name,
			 const unsigned char *der, size_t der_len, const char *login_address,
			 bool no_imap_preauth, char **fingerprint_r, const char **error_r)
{
	struct store_tls_pubkey other;
	const unsigned char *p = der;
	EVP_PKEY *pkey = NULL;
	sqlite3_stmt *stmt = NULL;
	char *fp = NULL;
	int r, ret = -1;
	bool locked = false;

	store_error_clear();
	if (fingerprint_r != NULL)
		*fingerprint_r = NULL;
	if (name == NULL || *name == '\0' || strlen(name) > STORE_TLS_PUBKEY_NAME_MAX)
		return store_fail(STORE_ERR_INVALID, error_r, "bad key name");
	if (login_address == NULL || *login_address == '\0' ||
	    strlen(login_address) > STORE_LOGIN_ATTEMPT_FIELD_MAX)
		return store_fail(STORE_ERR_INVALID, error_r, "bad login address");
	if (der_len == 0 || der_len > STORE_TLS_PUBKEY_DER_MAX)
		return store_fail(STORE_ERR_INVALID, error_r, "bad public key size");
	pkey = d2i_PUBKEY(NULL, &p, (long)der_len);
	if (pkey == NULL || p != der + der_len) {
		store_fail(STORE_ERR_INVALID, error_r, "not a DER SubjectPublicKeyInfo");
		goto out;
	}
	fp = store_tls_pubkey_fingerprint(der, der_len);
	r = store_tls_pubkey_lookup(store, fp, &other, error_r);
	if (r < 0)
		goto out;
	if (r > 0) {
		store_fail(STORE_ERR_EXISTS, error_r, "key %s is registered already (account %s)",
			   fp, other.account);
		store_tls_pubkey_clear(&other);
		goto out;
	}
	if (store_lock(acc, error_r) < 0)
		goto out;
	locked = true;
	if (store_prepare(acc, "SELECT COUNT(*) FROM tls_public_keys", &stmt, error_r) < 0)
		goto out;
	if (sqlite3_step(stmt) != SQLITE_ROW) {
		store_db_fail(acc, "count TLS public keys", error_r);
		goto out;
	}
	if (sqlite3_column_int64(stmt, 0) >= STORE_TLS_PUBKEYS_MAX) {
		store_fail(STORE_ERR_INVALID, error_r, "account has %d keys already",
			   STORE_TLS_PUBKEYS_MAX);
		goto out;
	}
	sqlite3_finalize(stmt);
	stmt = NULL;
	if (store_prepare(acc, "INSERT INTO tls_public_keys (" KEY_COLUMNS ") VALUES "
			  "(?, ?, ?, ?, ?, ?)", &stmt, error_r) < 0)
		goto out;
	sqlite3_bind_text(stmt, 1, fp, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 2, name, -1, SQLITE_STATIC);
	sqlite3_bind_blob(stmt, 3, der, (int)der_len, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 4, login_address, -1, SQLITE_STATIC);
	sqlite3_bind_int(stmt, 5, no_imap_preauth ? 1 : 0);
	sqlite3_bind_int64(stmt, 6, wall_ms());
	if (sqlite3_step(stmt) != SQLITE_DONE) {
		if (sqlite3_errcode(acc->db) == SQLITE_CONSTRAINT)
			store_fail(STORE_ERR_EXISTS, error_r, "key %s is registered already", fp);
		else
			store_db_fail(acc, "add TLS public key", error_r);
		goto out;
	}
	if (fingerprint_r != NULL) {
		*fingerprint_r = fp;
		fp = NULL;
	}
	ret = 0;
out:
	sqlite3_finalize(stmt);
	if (locked)
		store_unlock(acc);
	EVP_PKEY_free(pkey);
	free(fp);
	return ret;
}

int store_tls_pubkeys_list(struct store_account *acc, struct store_tls_pubkey **keys_r,
			   size_t *count_r, const char **error_r)
{
	struct store_tls_pubkey *keys = NULL;
	size_t n = 0, cap = 0;
	sqlite3_stmt *stmt = NULL;
	int rc, ret = -1;

	store_error_clear();
	*keys_r = NULL;
	*count_r = 0;
	if (store_lock(acc, error_r) < 0)
		return -1;
	if (store_prepare(acc, "SELECT " KEY_COLUMNS " FROM tls_public_keys ORDER BY created_ms, "
			  "rowid", &stmt, error_r) < 0)
		goto out;
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		if (n == cap) {
			cap = cap == 0 ? 4 : cap * 2;
			keys = mf_xrealloc(keys, cap * sizeof(*keys));
		}
		key_from_row(stmt, &keys[n++]);
	}
	if (rc != SQLITE_DONE) {
		store_db_fail(acc, "list TLS public keys", error_r);
		store_tls_pubkeys_free(&keys, n);
		goto out;
	}
	*keys_r = keys;
	*count_r = n;
	ret = 0;
out:
	sqlite3_finalize(stmt);
	store_unlock(acc);
	return ret;
}

int store_tls_pubkey_remove(struct store_account *acc, const char *fingerprint,
			    const char **error_r)
{
	sqlite3_stmt *stmt = NULL;
	int ret = -1;

	store_error_clear();
	if (store_lock(acc, error_r) < 0)
		return -1;
	if (store_prepare(acc, "DELETE FROM tls_public_keys WHERE fingerprint = ?", &stmt,
			  error_r) < 0)
		goto out;
	sqlite3_bind_text(stmt, 1, fingerprint, -1, SQLITE_STATIC);
	if (sqlite3_step(stmt) != SQLITE_DONE) {
		store_db_fail(acc, "remove TLS public key", error_r);
		goto out;
	}
	ret = sqlite3_changes(acc->db) > 0 ? 1 : 0;
out:
	sqlite3_finalize(stmt);
	store_unlock(acc);
	return ret;
}
