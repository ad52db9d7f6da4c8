/* store_api_credentials: the store API endpoints of issue 7 (SASL
 * material, login attempts, TLS public keys; proto/store.proto), called
 * from store_api.c's dispatch.  Like the rest of the API, every request
 * from the network is checked and answered; nothing aborts. */
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "bus.h"
#include "error.h"
#include "log.h"
#include "sasl.h"
#include "store.h"
#include "store.pb-c.h"

/* Limits on requests (tighter than what the store keeps would be pointless). */
#define CRED_API_LOGIN_MAX 1024
#define CRED_API_ATTEMPTS_LIST_MAX STORE_LOGIN_ATTEMPTS_MAX

#define PACK(resp, type, msg) do { \
	size_t len_ = mailfleet__v1__##type##__get_packed_size(msg); \
	uint8_t *buf_ = mf_xmalloc(len_ + 1); \
	mailfleet__v1__##type##__pack(msg, buf_); \
	mf_bus_response_take_body(resp, buf_, len_); \
} while (0)

static enum mf_bus_status status_of(enum store_error_kind kind)
{
	return kind == STORE_ERR_TEMPORARY || kind == STORE_ERR_NONE ? MF_BUS_TEMPORARY :
		MF_BUS_PERMANENT;
}

static void fail_store(struct mf_bus_response *resp, const char *err)
{
	mf_bus_response_set(resp, status_of(store_last_error_kind()), "%s", err);
}

/* The subject's token after prefix; NULL when absent or not one token. */
static const char *subject_tail(const char *subject, const char *prefix)
{
	size_t n = strlen(prefix);

	if (strncmp(subject, prefix, n) != 0 || subject[n] == '\0' ||
	    strchr(subject + n, '.') != NULL)
		return NULL;
	return subject + n;
}

static bool body_account_ok(struct mf_bus_response *resp, const char *subj, const char *body)
{
	if (body != NULL && body[0] != '\0' && strcmp(subj, body) != 0) {
		mf_bus_response_set(resp, MF_BUS_PERMANENT,
				    "account in the body (%.64s) differs from the subject's", body);
		return false;
	}
	return true;
}

static struct store_account *open_or_answer(struct store *store, const char *name,
					    struct mf_bus_response *resp)
{
	struct store_account *acc = NULL;
	const char *err = NULL;
	int r = store_account_open(store, name, &acc, &err);

	if (r > 0)
		return acc;
	if (r == 0)
		mf_bus_response_set(resp, MF_BUS_PERMANENT, "no such account");
	else
		fail_store(resp, err);
	return NULL;
}

static void handle_credentials(struct store *store, const char *name,
			       const struct mf_bus_request *req, struct mf_bus_response *resp)
{
	Mailfleet__V1__CredentialsRequest *in;
	Mailfleet__V1__CredentialsReply out = MAILFLEET__V1__CREDENTIALS_REPLY__INIT;
	struct store_account *acc = NULL;
	struct mf_sasl_scram scram;
	struct mf_sasl_cram cram;
	unsigned char cram_bytes[MF_SASL_CRAM_BYTES];
	char *account = NULL, *disabled = NULL;
	const char *err = NULL;
	int r;

	in = mailfleet__v1__credentials_request__unpack(NULL, req->body_len, req->body);
	if (in == NULL) {
		mf_bus_response_set(resp, MF_BUS_PERMANENT, "malformed credentials request");
		goto out;
	}
	if (!body_account_ok(resp, name, in->account))
		goto out;
	if (strlen(in->login) == 0 || strlen(in->login) > CRED_API_LOGIN_MAX) {
		PACK(resp, credentials_reply, &out);   /* found = false */
		goto out;
	}
	r = store_login_resolve(store, in->login, &account, &disabled, &err);
	if (r < 0) {
		fail_store(resp, err);
		goto out;
	}
	/* The login must name the subject's account. */
	if (r == 0 || strcmp(account, name) != 0) {
		PACK(resp, credentials_reply, &out);
		goto out;
	}
	acc = open_or_answer(store, name, resp);
	if (acc == NULL)
		goto out;
	out.account = account;
	out.disabled = disabled != NULL ? disabled : (char *)"";
	if (strcmp(in->kind, "scram-sha-1") == 0 || strcmp(in->kind, "scram-sha-256") == 0) {
		r = store_credentials_get_scram(acc, strcmp(in->kind, "scram-sha-1") == 0 ?
						MF_SASL_SHA1 : MF_SASL_SHA256, &scram, &err);
		if (r < 0) {
			fail_store(resp, err);
			goto out;
		}
		if (r > 0) {
			size_t hl = scram.hash == MF_SASL_SHA1 ? 20 : 32;

			out.found = true;
			out.salt.data = scram.salt;
			out.salt.len = scram.salt_len;
			out.iterations = scram.iterations;
			out.stored_key.data = scram.stored_key;
			out.stored_key.len = hl;
			out.server_key.data = scram.server_key;
			out.server_key.len = hl;
		}
	} else if (strcmp(in->kind, "cram-md5") == 0) {
		r = store_credentials_get_cram(acc, &cram, &err);
		if (r < 0) {
			fail_store(resp, err);
			goto out;
		}
		if (r > 0) {
			mf_sasl_cram_pack(&cram, cram_bytes);
			out.found = true;
			out.cram_md5.data = cram_bytes;
			out.cram_md5.len = sizeof(cram_bytes);
		}
	} else if (strcmp(in->kind, "account") == 0) {
		out.found = true;
	} else {
		mf_bus_response_set(resp, MF_BUS_PERMANENT, "unknown credentials kind");
		goto out;
	}
	PACK(resp, credentials_reply, &out);
out:
	store_account_unref(&acc);
	free(account);
	free(disabled);
	if (in != NULL)
		mailfleet__v1__credentials_request__free_unpacked(in, NULL);
}

static void attempt_to_pb(const struct store_login_attempt *a, Mailfleet__V1__LoginAttempt *p)
{
	mailfleet__v1__login_attempt__init(p);
	p->first_ms = a->first_ms;
	p->last_ms = a->last_ms;
	p->count = a->count;
	p->protocol = (char *)a->protocol;
	p->mechanism = (char *)a->mechanism;
	p->login = (char *)a->login;
	p->remote_ip = (char *)a->remote_ip;
	p->local_ip = (char *)a->local_ip;
	p->tls = (char *)a->tls;
	p->tls_pubkey = (char *)a->tls_pubkey;
	p->client_id = (char *)a->client_id;
	p->result = (char *)a->result;
}

static void handle_attempt(struct store *store, const char *name,
			   const struct mf_bus_request *req, struct mf_bus_response *resp)
{
	Mailfleet__V1__LoginAttemptRequest *in;
	Mailfleet__V1__LoginAttemptReply out = MAILFLEET__V1__LOGIN_ATTEMPT_REPLY__INIT;
	struct store_account *acc = NULL;
	const char *err = NULL;

	in = mailfleet__v1__login_attempt_request__unpack(NULL, req->body_len, req->body);
	if (in == NULL || in->attempt == NULL) {
		mf_bus_response_set(resp, MF_BUS_PERMANENT, "malformed login attempt");
		goto out;
	}
	if (!body_account_ok(resp, name, in->account))
		goto out;
	acc = open_or_answer(store, name, resp);
	if (acc == NULL)
		goto out;
	{
		/* Times come from the store's clock, not the caller's. */
		const Mailfleet__V1__LoginAttempt *p = in->attempt;
		struct store_login_attempt a = {
			.protocol = p->protocol, .mechanism = p->mechanism, .login = p->login,
			.remote_ip = p->remote_ip, .local_ip = p->local_ip, .tls = p->tls,
			.tls_pubkey = p->tls_pubkey, .client_id = p->client_id, .result = p->result,
		};

		if (store_login_attempt_record(acc, &a, 0, &err) < 0) {
			fail_store(resp, err);
			goto out;
		}
	}
	PACK(resp, login_attempt_reply, &out);
out:
	store_account_unref(&acc);
	if (in != NULL)
		mailfleet__v1__login_attempt_request__free_unpacked(in, NULL);
}

static void handle_attempts(struct store *store, const char *name,
			    const struct mf_bus_request *req, struct mf_bus_response *resp)
{
	Mailfleet__V1__LoginAttemptsRequest *in;
	Mailfleet__V1__LoginAttemptsReply out = MAILFLEET__V1__LOGIN_ATTEMPTS_REPLY__INIT;
	Mailfleet__V1__LoginAttempt *pbs = NULL, **ptrs = NULL;
	struct store_account *acc = NULL;
	struct store_login_attempt *list = NULL;
	size_t n = 0, limit;
	const char *err = NULL;

	in = mailfleet__v1__login_attempts_request__unpack(NULL, req->body_len, req->body);
	if (in == NULL) {
		mf_bus_response_set(resp, MF_BUS_PERMANENT, "malformed login attempts request");
		goto out;
	}
	if (!body_account_ok(resp, name, in->account))
		goto out;
	acc = open_or_answer(store, name, resp);
	if (acc == NULL)
		goto out;
	limit = in->limit == 0 || in->limit > CRED_API_ATTEMPTS_LIST_MAX ?
		CRED_API_ATTEMPTS_LIST_MAX : in->limit;
	if (store_login_attempts_list(acc, limit, &list, &n, &err) < 0) {
		fail_store(resp, err);
		goto out;
	}
	pbs = mf_xcalloc(n + 1, sizeof(*pbs));
	ptrs = mf_xcalloc(n + 1, sizeof(*ptrs));
	for (size_t i = 0; i < n; i++) {
		attempt_to_pb(&list[i], &pbs[i]);
		ptrs[i] = &pbs[i];
	}
	out.n_attempts = n;
	out.attempts = ptrs;
	PACK(resp, login_attempts_reply, &out);
out:
	free(pbs);
	free(ptrs);
	store_login_attempts_free(&list, n);
	store_account_unref(&acc);
	if (in != NULL)
		mailfleet__v1__login_attempts_request__free_unpacked(in, NULL);
}

static void key_to_pb(const struct store_tls_pubkey *k, Mailfleet__V1__TlsPubkey *p)
{
	mailfleet__v1__tls_pubkey__init(p);
	p->fingerprint = k->fingerprint;
	p->name = k->name;
	p->public_key.data = k->der;
	p->public_key.len = k->der_len;
	p->login_address = k->login_address;
	p->no_imap_preauth = k->no_imap_preauth;
	p->created_ms = k->created_ms;
	p->account = k->account != NULL ? k->account : (char *)"";
}

static void handle_key_add(struct store *store, const char *name,
			   const struct mf_bus_request *req, struct mf_bus_response *resp)
{
	Mailfleet__V1__TlsPubkeyAddRequest *in;
	Mailfleet__V1__TlsPubkeyAddReply out = MAILFLEET__V1__TLS_PUBKEY_ADD_REPLY__INIT;
	struct store_account *acc = NULL;
	char *fp = NULL, *owner = NULL;
	const char *err = NULL;
	int r;

	in = mailfleet__v1__tls_pubkey_add_request__unpack(NULL, req->body_len, req->body);
	if (in == NULL) {
		mf_bus_response_set(resp, MF_BUS_PERMANENT, "malformed key add request");
		goto out;
	}
	if (!body_account_ok(resp, name, in->account))
		goto out;
	/* The login address must be one of the account's. */
	r = store_login_resolve(store, in->login_address, &owner, NULL, &err);
	if (r < 0) {
		fail_store(resp, err);
		goto out;
	}
	if (r == 0 || strcmp(owner, name) != 0) {
		mf_bus_response_set(resp, MF_BUS_PERMANENT,
				    "login address %.256s is not an address of account %s",
				    in->login_address, name);
		goto out;
	}
	acc = open_or_answer(store, name, resp);
	if (acc == NULL)
		goto out;
	if (store_tls_pubkey_add(store, acc, in->name, in->public_key.data, in->public_key.len,
				 in->login_address, in->no_imap_preauth, &fp, &err) < 0) {
		fail_store(resp, err);
		goto out;
	}
	mf_log_info("store", req->cid, "TLS public key added", "account=%s fingerprint=%s name=%s",
		    name, fp, in->name);
	out.fingerprint = fp;
	PACK(resp, tls_pubkey_add_reply, &out);
out:
	free(fp);
	free(owner);
	store_account_unref(&acc);
	if (in != NULL)
		mailfleet__v1__tls_pubkey_add_request__free_unpacked(in, NULL);
}

static void handle_key_list(struct store *store, const char *name,
			    const struct mf_bus_request *req, struct mf_bus_response *resp)
{
	Mailfleet__V1__TlsPubkeyListRequest *in;
	Mailfleet__V1__TlsPubkeyListReply out = MAILFLEET__V1__TLS_PUBKEY_LIST_REPLY__INIT;
	Mailfleet__V1__TlsPubkey *pbs = NULL, **ptrs = NULL;
	struct store_account *acc = NULL;
	struct store_tls_pubkey *keys = NULL;
	size_t n = 0;
	const char *err = NULL;

	in = mailfleet__v1__tls_pubkey_list_request__unpack(NULL, req->body_len, req->body);
	if (in == NULL) {
		mf_bus_response_set(resp, MF_BUS_PERMANENT, "malformed key list request");
		goto out;
	}
	if (!body_account_ok(resp, name, in->account))
		goto out;
	acc = open_or_answer(store, name, resp);
	if (acc == NULL)
		goto out;
	if (store_tls_pubkeys_list(acc, &keys, &n, &err) < 0) {
		fail_store(resp, err);
		goto out;
	}
	pbs = mf_xcalloc(n + 1, sizeof(*pbs));
	ptrs = mf_xcalloc(n + 1, sizeof(*ptrs));
	for (size_t i = 0; i < n; i++) {
		key_to_pb(&keys[i], &pbs[i]);
		ptrs[i] = &pbs[i];
	}
	out.n_keys = n;
	out.keys = ptrs;
	PACK(resp, tls_pubkey_list_reply, &out);
out:
	free(pbs);
	free(ptrs);
	store_tls_pubkeys_free(&keys, n);
	store_account_unref(&acc);
	if (in != NULL)
		mailfleet__v1__tls_pubkey_list_request__free_unpacked(in, NULL);
}

static void handle_key_remove(struct store *store, const char *name,
			      const struct mf_bus_request *req, struct mf_bus_response *resp)
{
	Mailfleet__V1__TlsPubkeyRemoveRequest *in;
	Mailfleet__V1__TlsPubkeyRemoveReply out = MAILFLEET__V1__TLS_PUBKEY_REMOVE_REPLY__INIT;
	struct store_account *acc = NULL;
	const char *err = NULL;
	int r;

	in = mailfleet__v1__tls_pubkey_remove_request__unpack(NULL, req->body_len, req->body);
	if (in == NULL) {
		mf_bus_response_set(resp, MF_BUS_PERMANENT, "malformed key remove request");
		goto out;
	}
	if (!body_account_ok(resp, name, in->account))
		goto out;
	acc = open_or_answer(store, name, resp);
	if (acc == NULL)
		goto out;
	r = store_tls_pubkey_remove(acc, in->fingerprint, &err);
	if (r < 0) {
		fail_store(resp, err);
		goto out;
	}
	out.removed = r > 0;
	PACK(resp, tls_pubkey_remove_reply, &out);
out:
	store_account_unref(&acc);
	if (in != NULL)
		mailfleet__v1__tls_pubkey_remove_request__free_unpacked(in, NULL);
}

static void handle_key_lookup(struct store *store, const struct mf_bus_request *req,
			      struct mf_bus_response *resp)
{
	Mailfleet__V1__TlsPubkeyLookupRequest *in;
	Mailfleet__V1__TlsPubkeyLookupReply out = MAILFLEET__V1__TLS_PUBKEY_LOOKUP_REPLY__INIT;
	Mailfleet__V1__TlsPubkey pb;
	struct store_tls_pubkey key;
	const char *err = NULL;
	int r;

	memset(&key, 0, sizeof(key));
	in = mailfleet__v1__tls_pubkey_lookup_request__unpack(NULL, req->body_len, req->body);
	if (in == NULL) {
		mf_bus_response_set(resp, MF_BUS_PERMANENT, "malformed key lookup request");
		goto out;
	}
	r = store_tls_pubkey_lookup(store, in->fingerprint, &key, &err);
	if (r < 0) {
		fail_store(resp, err);
		goto out;
	}
	if (r > 0) {
		key_to_pb(&key, &pb);
		out.found = true;
		out.key = &pb;
	}
	PACK(resp, tls_pubkey_lookup_reply, &out);
out:
	store_tls_pubkey_clear(&key);
	if (in != NULL)
		mailfleet__v1__tls_pubkey_lookup_request__free_unpacked(in, NULL);
}

static void handle_options(struct store *store, const char *name,
			   const struct mf_bus_request *req, struct mf_bus_response *resp)
{
	Mailfleet__V1__CredentialOptionsRequest *in;
	Mailfleet__V1__CredentialOptionsReply out = MAILFLEET__V1__CREDENTIAL_OPTIONS_REPLY__INIT;
	struct store_credential_options o;
	struct store_account *acc = NULL;
	const char *err = NULL;

	in = mailfleet__v1__credential_options_request__unpack(NULL, req->body_len, req->body);
	if (in == NULL) {
		mf_bus_response_set(resp, MF_BUS_PERMANENT, "malformed options request");
		goto out;
	}
	if (!body_account_ok(resp, name, in->account))
		goto out;
	acc = open_or_answer(store, name, resp);
	if (acc == NULL)
		goto out;
	if (in->set) {
		o.cram_md5_allowed = in->cram_md5_allowed;
		o.generated_only = in->generated_only;
		if (store_credentials_set_options(acc, &o, &err) < 0) {
			fail_store(resp, err);
			goto out;
		}
		mf_log_info("store", req->cid, "credential options set",
			    "account=%s cram-md5=%s generated-only=%s", name,
			    o.cram_md5_allowed ? "yes" : "no", o.generated_only ? "yes" : "no");
	}
	if (store_credentials_get_options(acc, &o, &err) < 0) {
		fail_store(resp, err);
		goto out;
	}
	out.cram_md5_allowed = o.cram_md5_allowed;
	out.generated_only = o.generated_only;
	PACK(resp, credential_options_reply, &out);
out:
	store_account_unref(&acc);
	if (in != NULL)
		mailfleet__v1__credential_options_request__free_unpacked(in, NULL);
}

const char *store_api_credentials(struct store *store, const struct mf_bus_request *req,
				  struct mf_bus_response *resp)
{
	const char *s = req->subject, *name;

	if ((name = subject_tail(s, "store.v1.credentials.")) != NULL) {
		handle_credentials(store, name, req, resp);
		return "credentials";
	}
	if ((name = subject_tail(s, "store.v1.credoptions.")) != NULL) {
		handle_options(store, name, req, resp);
		return "credentials";
	}
	if ((name = subject_tail(s, "store.v1.loginattempt.")) != NULL) {
		handle_attempt(store, name, req, resp);
		return "loginattempt";
	}
	if ((name = subject_tail(s, "store.v1.loginattempts.")) != NULL) {
		handle_attempts(store, name, req, resp);
		return "loginattempts";
	}
	if ((name = subject_tail(s, "store.v1.tlspubkey.add.")) != NULL)
		handle_key_add(store, name, req, resp);
	else if ((name = subject_tail(s, "store.v1.tlspubkey.list.")) != NULL)
		handle_key_list(store, name, req, resp);
	else if ((name = subject_tail(s, "store.v1.tlspubkey.remove.")) != NULL)
		handle_key_remove(store, name, req, resp);
	else if (strcmp(s, "store.v1.tlspubkey.lookup") == 0)
		handle_key_lookup(store, req, resp);
	else
		mf_bus_response_set(resp, MF_BUS_PERMANENT, "unknown store subject");
	return "tlspubkey";
}
