/* storeclient: store API calls over the bus; see storeclient.h. */
#include "storeclient.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "error.h"
#include "domains.h"
#include "precis.h"
#include "sasl.h"
#include "store.pb-c.h"

/* Account names appear in subjects: refuse anything that could change the
 * subject (wildcards, separators, spaces) before sending. */
static bool account_ok(const char *account)
{
	size_t n = account != NULL ? strlen(account) : 0;

	if (n == 0 || n > 64)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = account[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '_'))
			return false;
	}
	return true;
}

/* Sends body on store.v1.<op>.<account>.  Returns 0 with the reply (free
 * it), or -1 with status and error (the reply freed). */
static int call(struct mf_bus *bus, const char *cid, const char *op, const char *account,
		const void *body, size_t len, int64_t timeout_ms, struct mf_bus_reply *reply,
		enum mf_bus_status *status_r, const char **error_r)
{
	char subject[MF_BUS_SUBJECT_MAX];

	memset(reply, 0, sizeof(*reply));
	if (!account_ok(account)) {
		*status_r = MF_BUS_PERMANENT;
		*error_r = mf_errorf("bad account name");
		return -1;
	}
	snprintf(subject, sizeof(subject), "store.v1.%s.%s", op, account);
	if (mf_bus_request(bus, subject, cid, body, len, timeout_ms, reply) < 0) {
		*status_r = reply->status;
		*error_r = mf_errorf("%s", reply->message);
		mf_bus_reply_free(reply);
		return -1;
	}
	*status_r = MF_BUS_OK;
	return 0;
}

static uint8_t *pack_buf(size_t len)
{
	return mf_xmalloc(len + 1);
}

void mf_storeclient_rcpts_clear(struct mf_storeclient_rcpt *rcpts, size_t count)
{
	for (size_t i = 0; i < count; i++) {
		free(rcpts[i].message);
		free(rcpts[i].stored_mailbox);
		rcpts[i].message = NULL;
		rcpts[i].stored_mailbox = NULL;
	}
}

static void rcpts_fail_all(struct mf_storeclient_rcpt *rcpts, size_t count,
			   enum mf_bus_status status, const char *msg)
{
	for (size_t i = 0; i < count; i++) {
		rcpts[i].status = status;
		rcpts[i].smtp_code = status == MF_BUS_PERMANENT ? 554 : 451;
		snprintf(rcpts[i].enhanced_code, sizeof(rcpts[i].enhanced_code), "%s",
			 status == MF_BUS_PERMANENT ? "5.3.0" : "4.3.0");
		free(rcpts[i].message);
		free(rcpts[i].stored_mailbox);
		rcpts[i].message = mf_xstrdup(msg);
		rcpts[i].stored_mailbox = mf_xstrdup("");
		rcpts[i].uid = 0;
	}
}

int mf_storeclient_deliver(struct mf_bus *bus, const char *cid, const char *account,
			   const char *blob_key, const char *message_id, const char *mail_from,
			   int64_t received_unix_ms, struct mf_storeclient_rcpt *rcpts,
			   size_t count, int64_t timeout_ms, enum mf_bus_status *status_r,
			   const char **error_r)
{
	Mailfleet__V1__DeliverRequest in = MAILFLEET__V1__DELIVER_REQUEST__INIT;
	Mailfleet__V1__DeliverRecipient *drs = NULL, **ptrs = NULL;
	Mailfleet__V1__DeliverReply *out = NULL;
	struct mf_bus_reply reply;
	uint8_t *buf = NULL;
	size_t len;
	int ret = -1;

	for (size_t i = 0; i < count; i++) {
		rcpts[i].message = NULL;
		rcpts[i].stored_mailbox = NULL;
	}
	if (count == 0 || count > MF_STORECLIENT_RECIPIENTS_MAX) {
		*status_r = MF_BUS_PERMANENT;
		*error_r = mf_errorf("1 to %d recipients per delivery", MF_STORECLIENT_RECIPIENTS_MAX);
		rcpts_fail_all(rcpts, count, *status_r, *error_r);
		return -1;
	}
	drs = mf_xcalloc(count, sizeof(*drs));
	ptrs = mf_xcalloc(count, sizeof(*ptrs));
	for (size_t i = 0; i < count; i++) {
		mailfleet__v1__deliver_recipient__init(&drs[i]);
		drs[i].address = (char *)(rcpts[i].address != NULL ? rcpts[i].address : "");
		drs[i].mailbox = (char *)(rcpts[i].mailbox != NULL ? rcpts[i].mailbox : "");
		drs[i].keywords = (char **)rcpts[i].keywords;
		drs[i].n_keywords = rcpts[i].keywords != NULL ? rcpts[i].keywords_count : 0;
		drs[i].header_prefix.data = (uint8_t *)rcpts[i].header_prefix;
		drs[i].header_prefix.len = rcpts[i].header_prefix != NULL ?
			rcpts[i].header_prefix_len : 0;
		ptrs[i] = &drs[i];
	}
	in.account = (char *)account;
	in.blob_key = (char *)blob_key;
	in.message_id = (char *)(message_id != NULL ? message_id : "");
	in.mail_from = (char *)(mail_from != NULL ? mail_from : "");
	in.received_unix_ms = received_unix_ms;
	in.recipients = ptrs;
	in.n_recipients = count;
	len = mailfleet__v1__deliver_request__get_packed_size(&in);
	buf = pack_buf(len);
	mailfleet__v1__deliver_request__pack(&in, buf);
	if (call(bus, cid, "deliver", account, buf, len, timeout_ms, &reply, status_r,
		 error_r) < 0) {
		rcpts_fail_all(rcpts, count, *status_r, *error_r);
		goto out;
	}
	out = mailfleet__v1__deliver_reply__unpack(NULL, reply.body_len, reply.body);
	mf_bus_reply_free(&reply);
	if (out == NULL || out->n_results != count) {
		/* Cannot tell what was stored: the caller must retry (the store
		 * may deliver twice then, which beats losing the message). */
		*status_r = MF_BUS_TEMPORARY;
		*error_r = mf_errorf("malformed deliver reply from the store");
		rcpts_fail_all(rcpts, count, *status_r, *error_r);
		goto out;
	}
	for (size_t i = 0; i < count; i++) {
		const Mailfleet__V1__DeliverResult *r = out->results[i];
		const Mailfleet__V1__Status *st = r->status;

		rcpts[i].status = st == NULL ? MF_BUS_TEMPORARY :
			st->code == MAILFLEET__V1__STATUS__CODE__OK ? MF_BUS_OK :
			st->code == MAILFLEET__V1__STATUS__CODE__PERMANENT ? MF_BUS_PERMANENT :
			MF_BUS_TEMPORARY;
		rcpts[i].smtp_code = r->smtp_code;
		snprintf(rcpts[i].enhanced_code, sizeof(rcpts[i].enhanced_code), "%s",
			 r->enhanced_code);
		rcpts[i].message = mf_xstrndup(st != NULL ? st->message : "",
					       MF_BUS_STATUS_MESSAGE_MAX);
		rcpts[i].stored_mailbox = mf_xstrndup(r->mailbox, 1000);
		rcpts[i].uid = r->uid;
		/* A reply that says OK without a 2xx code is not trusted. */
		if (rcpts[i].status == MF_BUS_OK && (r->smtp_code < 200 || r->smtp_code > 299))
			rcpts[i].status = MF_BUS_TEMPORARY;
	}
	ret = 0;
out:
	if (out != NULL)
		mailfleet__v1__deliver_reply__free_unpacked(out, NULL);
	free(buf);
	free(drs);
	free(ptrs);
	return ret;
}

int mf_storeclient_authenticate(struct mf_bus *bus, const char *cid, const char *account,
				const struct mf_storeclient_auth *auth, int64_t timeout_ms,
				bool *ok_r, char **message_r, enum mf_bus_status *status_r,
				const char **error_r)
{
	Mailfleet__V1__AuthenticateRequest in = MAILFLEET__V1__AUTHENTICATE_REQUEST__INIT;
	Mailfleet__V1__AuthenticateReply *out;
	struct mf_bus_reply reply;
	uint8_t *buf;
	size_t len;
	int ret = -1;

	*ok_r = false;
	*message_r = NULL;
	in.account = (char *)account;
	in.login = (char *)(auth->login != NULL ? auth->login : "");
	in.password.data = (uint8_t *)auth->password;
	in.password.len = auth->password_len;
	in.protocol = (char *)(auth->protocol != NULL ? auth->protocol : "");
	in.mechanism = (char *)(auth->mechanism != NULL ? auth->mechanism : "");
	in.remote_ip = (char *)(auth->remote_ip != NULL ? auth->remote_ip : "");
	in.tls = (char *)(auth->tls != NULL ? auth->tls : "");
	len = mailfleet__v1__authenticate_request__get_packed_size(&in);
	buf = pack_buf(len);
	mailfleet__v1__authenticate_request__pack(&in, buf);
	if (call(bus, cid, "authenticate", account, buf, len, timeout_ms, &reply, status_r,
		 error_r) < 0)
		goto out;
	out = mailfleet__v1__authenticate_reply__unpack(NULL, reply.body_len, reply.body);
	mf_bus_reply_free(&reply);
	if (out == NULL) {
		*status_r = MF_BUS_TEMPORARY;
		*error_r = mf_errorf("malformed authenticate reply from the store");
		goto out;
	}
	*ok_r = out->ok && strcmp(out->account, account) == 0;
	if (out->message[0] != '\0')
		*message_r = mf_xstrndup(out->message, MF_BUS_STATUS_MESSAGE_MAX);
	mailfleet__v1__authenticate_reply__free_unpacked(out, NULL);
	ret = 0;
out:
	/* The password does not linger in our heap. */
	explicit_bzero(buf, len);
	free(buf);
	return ret;
}

int mf_storeclient_set_password(struct mf_bus *bus, const char *cid, const char *account,
				const void *password, size_t len, int64_t timeout_ms,
				enum mf_bus_status *status_r, const char **error_r)
{
	Mailfleet__V1__SetPasswordRequest in = MAILFLEET__V1__SET_PASSWORD_REQUEST__INIT;
	struct mf_bus_reply reply;
	uint8_t *buf;
	size_t blen;
	int ret;

	in.account = (char *)account;
	in.password.data = (uint8_t *)password;
	in.password.len = len;
	blen = mailfleet__v1__set_password_request__get_packed_size(&in);
	buf = pack_buf(blen);
	mailfleet__v1__set_password_request__pack(&in, buf);
	ret = call(bus, cid, "setpassword", account, buf, blen, timeout_ms, &reply, status_r,
		   error_r);
	if (ret == 0)
		mf_bus_reply_free(&reply);
	explicit_bzero(buf, blen);
	free(buf);
	return ret;
}

int mf_storeclient_create_account(struct mf_bus *bus, const char *cid, const char *account,
				  int64_t timeout_ms, bool *created_r,
				  enum mf_bus_status *status_r, const char **error_r)
{
	Mailfleet__V1__CreateAccountRequest in = MAILFLEET__V1__CREATE_ACCOUNT_REQUEST__INIT;
	Mailfleet__V1__CreateAccountReply *out;
	struct mf_bus_reply reply;
	uint8_t *buf;
	size_t len;
	int ret = -1;

	*created_r = false;
	in.account = (char *)account;
	len = mailfleet__v1__create_account_request__get_packed_size(&in);
	buf = pack_buf(len);
	mailfleet__v1__create_account_request__pack(&in, buf);
	if (call(bus, cid, "account.create", account, buf, len, timeout_ms, &reply, status_r,
		 error_r) < 0)
		goto out;
	out = mailfleet__v1__create_account_reply__unpack(NULL, reply.body_len, reply.body);
	mf_bus_reply_free(&reply);
	if (out == NULL) {
		*status_r = MF_BUS_TEMPORARY;
		*error_r = mf_errorf("malformed reply from the store");
		goto out;
	}
	*created_r = out->created;
	mailfleet__v1__create_account_reply__free_unpacked(out, NULL);
	ret = 0;
out:
	free(buf);
	return ret;
}

int mf_storeclient_remove_account(struct mf_bus *bus, const char *cid, const char *account,
				  int64_t timeout_ms, bool *removed_r,
				  enum mf_bus_status *status_r, const char **error_r)
{
	Mailfleet__V1__RemoveAccountRequest in = MAILFLEET__V1__REMOVE_ACCOUNT_REQUEST__INIT;
	Mailfleet__V1__RemoveAccountReply *out;
	struct mf_bus_reply reply;
	uint8_t *buf;
	size_t len;
	int ret = -1;

	*removed_r = false;
	in.account = (char *)account;
	len = mailfleet__v1__remove_account_request__get_packed_size(&in);
	buf = pack_buf(len);
	mailfleet__v1__remove_account_request__pack(&in, buf);
	if (call(bus, cid, "account.remove", account, buf, len, timeout_ms, &reply, status_r,
		 error_r) < 0)
		goto out;
	out = mailfleet__v1__remove_account_reply__unpack(NULL, reply.body_len, reply.body);
	mf_bus_reply_free(&reply);
	if (out == NULL) {
		*status_r = MF_BUS_TEMPORARY;
		*error_r = mf_errorf("malformed reply from the store");
		goto out;
	}
	*removed_r = out->removed;
	mailfleet__v1__remove_account_reply__free_unpacked(out, NULL);
	ret = 0;
out:
	free(buf);
	return ret;
}

int mf_storeclient_check_account(struct mf_bus *bus, const char *cid, const char *account,
				 int64_t timeout_ms, bool *consistent_r, char **problem_r,
				 enum mf_bus_status *status_r, const char **error_r)
{
	Mailfleet__V1__CheckAccountRequest in = MAILFLEET__V1__CHECK_ACCOUNT_REQUEST__INIT;
	Mailfleet__V1__CheckAccountReply *out;
	struct mf_bus_reply reply;
	uint8_t *buf;
	size_t len;
	int ret = -1;

	*consistent_r = false;
	*problem_r = NULL;
	in.account = (char *)account;
	len = mailfleet__v1__check_account_request__get_packed_size(&in);
	buf = pack_buf(len);
	mailfleet__v1__check_account_request__pack(&in, buf);
	if (call(bus, cid, "account.check", account, buf, len, timeout_ms, &reply, status_r,
		 error_r) < 0)
		goto out;
	out = mailfleet__v1__check_account_reply__unpack(NULL, reply.body_len, reply.body);
	mf_bus_reply_free(&reply);
	if (out == NULL) {
		*status_r = MF_BUS_TEMPORARY;
		*error_r = mf_errorf("malformed reply from the store");
		goto out;
	}
	*consistent_r = out->consistent;
	if (!out->consistent)
		*problem_r = mf_xstrndup(out->problem, MF_BUS_STATUS_MESSAGE_MAX);
	mailfleet__v1__check_account_reply__free_unpacked(out, NULL);
	ret = 0;
out:
	free(buf);
	return ret;
}

/* --- login credentials, attempts, TLS public keys ------------------------- */

static int unpack_fail(enum mf_bus_status *status_r, const char **error_r)
{
	*status_r = MF_BUS_TEMPORARY;
	*error_r = mf_errorf("malformed reply from the store");
	return -1;
}

int mf_storeclient_credentials(struct mf_bus *bus, const char *cid, const char *account,
			       const char *login, const char *kind, int64_t timeout_ms,
			       bool *found_r, struct mf_sasl_account *a_r,
			       enum mf_bus_status *status_r, const char **error_r)
{
	Mailfleet__V1__CredentialsRequest in = MAILFLEET__V1__CREDENTIALS_REQUEST__INIT;
	Mailfleet__V1__CredentialsReply *out = NULL;
	struct mf_bus_reply reply;
	uint8_t *buf;
	size_t len;
	int ret = -1;

	*found_r = false;
	memset(a_r, 0, sizeof(*a_r));
	in.account = (char *)account;
	in.login = (char *)login;
	in.kind = (char *)kind;
	len = mailfleet__v1__credentials_request__get_packed_size(&in);
	buf = pack_buf(len);
	mailfleet__v1__credentials_request__pack(&in, buf);
	ret = call(bus, cid, "credentials", account, buf, len, timeout_ms, &reply, status_r,
		   error_r);
	free(buf);
	if (ret < 0)
		return -1;
	ret = -1;
	out = mailfleet__v1__credentials_reply__unpack(NULL, reply.body_len, reply.body);
	mf_bus_reply_free(&reply);
	if (out == NULL)
		return unpack_fail(status_r, error_r);
	if (!out->found) {
		ret = 0;
		goto out;
	}
	a_r->account = mf_xstrdup(out->account);
	a_r->disabled = out->disabled[0] != '\0' ? mf_xstrdup(out->disabled) : NULL;
	if (strncmp(kind, "scram-", 6) == 0) {
		enum mf_sasl_hash h = strcmp(kind, "scram-sha-1") == 0 ? MF_SASL_SHA1 : MF_SASL_SHA256;
		size_t hl = h == MF_SASL_SHA1 ? 20 : 32;

		if (out->salt.len == 0 || out->salt.len > MF_SASL_SALT_MAX ||
		    out->stored_key.len != hl || out->server_key.len != hl ||
		    out->iterations == 0 || out->iterations > MF_SASL_SCRAM_ITERATIONS_MAX) {
			mf_sasl_account_clear(a_r);
			unpack_fail(status_r, error_r);
			goto out;
		}
		a_r->scram.hash = h;
		memcpy(a_r->scram.salt, out->salt.data, out->salt.len);
		a_r->scram.salt_len = out->salt.len;
		a_r->scram.iterations = out->iterations;
		memcpy(a_r->scram.stored_key, out->stored_key.data, hl);
		memcpy(a_r->scram.server_key, out->server_key.data, hl);
		a_r->scram_set = true;
	} else if (strcmp(kind, "cram-md5") == 0) {
		if (mf_sasl_cram_unpack(out->cram_md5.data, out->cram_md5.len, &a_r->cram) < 0) {
			mf_sasl_account_clear(a_r);
			unpack_fail(status_r, error_r);
			goto out;
		}
		a_r->cram_allowed = true;
	}
	*found_r = true;
	ret = 0;
out:
	mailfleet__v1__credentials_reply__free_unpacked(out, NULL);
	return ret;
}

int mf_storeclient_login_attempt(struct mf_bus *bus, const char *cid, const char *account,
				 const struct mf_storeclient_login_attempt *a, int64_t timeout_ms,
				 enum mf_bus_status *status_r, const char **error_r)
{
	Mailfleet__V1__LoginAttemptRequest in = MAILFLEET__V1__LOGIN_ATTEMPT_REQUEST__INIT;
	Mailfleet__V1__LoginAttempt p = MAILFLEET__V1__LOGIN_ATTEMPT__INIT;
	struct mf_bus_reply reply;
	uint8_t *buf;
	size_t len;
	int ret;

#define OR_EMPTY(x) (char *)((x) != NULL ? (x) : "")
	p.protocol = OR_EMPTY(a->protocol);
	p.mechanism = OR_EMPTY(a->mechanism);
	p.login = OR_EMPTY(a->login);
	p.remote_ip = OR_EMPTY(a->remote_ip);
	p.local_ip = OR_EMPTY(a->local_ip);
	p.tls = OR_EMPTY(a->tls);
	p.tls_pubkey = OR_EMPTY(a->tls_pubkey);
	p.client_id = OR_EMPTY(a->client_id);
	p.result = OR_EMPTY(a->result);
#undef OR_EMPTY
	in.account = (char *)account;
	in.attempt = &p;
	len = mailfleet__v1__login_attempt_request__get_packed_size(&in);
	buf = pack_buf(len);
	mailfleet__v1__login_attempt_request__pack(&in, buf);
	ret = call(bus, cid, "loginattempt", account, buf, len, timeout_ms, &reply, status_r,
		   error_r);
	free(buf);
	if (ret == 0)
		mf_bus_reply_free(&reply);
	return ret;
}

void mf_storeclient_login_attempts_free(struct mf_storeclient_login_attempt **listp,
					size_t count)
{
	struct mf_storeclient_login_attempt *list = *listp;

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

int mf_storeclient_login_attempts(struct mf_bus *bus, const char *cid, const char *account,
				  uint32_t limit, int64_t timeout_ms,
				  struct mf_storeclient_login_attempt **list_r, size_t *count_r,
				  enum mf_bus_status *status_r, const char **error_r)
{
	Mailfleet__V1__LoginAttemptsRequest in = MAILFLEET__V1__LOGIN_ATTEMPTS_REQUEST__INIT;
	Mailfleet__V1__LoginAttemptsReply *out;
	struct mf_storeclient_login_attempt *list;
	struct mf_bus_reply reply;
	uint8_t *buf;
	size_t len;

	*list_r = NULL;
	*count_r = 0;
	in.account = (char *)account;
	in.limit = limit;
	len = mailfleet__v1__login_attempts_request__get_packed_size(&in);
	buf = pack_buf(len);
	mailfleet__v1__login_attempts_request__pack(&in, buf);
	if (call(bus, cid, "loginattempts", account, buf, len, timeout_ms, &reply, status_r,
		 error_r) < 0) {
		free(buf);
		return -1;
	}
	free(buf);
	out = mailfleet__v1__login_attempts_reply__unpack(NULL, reply.body_len, reply.body);
	mf_bus_reply_free(&reply);
	if (out == NULL)
		return unpack_fail(status_r, error_r);
	list = mf_xcalloc(out->n_attempts + 1, sizeof(*list));
	for (size_t i = 0; i < out->n_attempts; i++) {
		const Mailfleet__V1__LoginAttempt *p = out->attempts[i];

		list[i].first_ms = p->first_ms;
		list[i].last_ms = p->last_ms;
		list[i].count = p->count;
		list[i].protocol = mf_xstrdup(p->protocol);
		list[i].mechanism = mf_xstrdup(p->mechanism);
		list[i].login = mf_xstrdup(p->login);
		list[i].remote_ip = mf_xstrdup(p->remote_ip);
		list[i].local_ip = mf_xstrdup(p->local_ip);
		list[i].tls = mf_xstrdup(p->tls);
		list[i].tls_pubkey = mf_xstrdup(p->tls_pubkey);
		list[i].client_id = mf_xstrdup(p->client_id);
		list[i].result = mf_xstrdup(p->result);
	}
	*list_r = list;
	*count_r = out->n_attempts;
	mailfleet__v1__login_attempts_reply__free_unpacked(out, NULL);
	return 0;
}

void mf_storeclient_tls_pubkey_clear(struct mf_storeclient_tls_pubkey *k)
{
	free(k->fingerprint);
	free(k->name);
	free(k->der);
	free(k->login_address);
	free(k->account);
	memset(k, 0, sizeof(*k));
}

void mf_storeclient_tls_pubkeys_free(struct mf_storeclient_tls_pubkey **keys, size_t count)
{
	if (*keys == NULL)
		return;
	for (size_t i = 0; i < count; i++)
		mf_storeclient_tls_pubkey_clear(&(*keys)[i]);
	free(*keys);
	*keys = NULL;
}

static void key_from_pb(const Mailfleet__V1__TlsPubkey *p, struct mf_storeclient_tls_pubkey *k)
{
	k->fingerprint = mf_xstrdup(p->fingerprint);
	k->name = mf_xstrdup(p->name);
	k->der = mf_xmalloc(p->public_key.len + 1);
	if (p->public_key.len > 0)
		memcpy(k->der, p->public_key.data, p->public_key.len);
	k->der_len = p->public_key.len;
	k->login_address = mf_xstrdup(p->login_address);
	k->no_imap_preauth = p->no_imap_preauth;
	k->created_ms = p->created_ms;
	k->account = mf_xstrdup(p->account);
}

int mf_storeclient_tls_pubkey_add(struct mf_bus *bus, const char *cid, const char *account,
				  const char *name, const void *der, size_t der_len,
				  const char *login_address, bool no_imap_preauth,
				  int64_t timeout_ms, char **fingerprint_r,
				  enum mf_bus_status *status_r, const char **error_r)
{
	Mailfleet__V1__TlsPubkeyAddRequest in = MAILFLEET__V1__TLS_PUBKEY_ADD_REQUEST__INIT;
	Mailfleet__V1__TlsPubkeyAddReply *out;
	struct mf_bus_reply reply;
	uint8_t *buf;
	size_t len;

	if (fingerprint_r != NULL)
		*fingerprint_r = NULL;
	in.account = (char *)account;
	in.name = (char *)name;
	in.public_key.data = (uint8_t *)der;
	in.public_key.len = der_len;
	in.login_address = (char *)login_address;
	in.no_imap_preauth = no_imap_preauth;
	len = mailfleet__v1__tls_pubkey_add_request__get_packed_size(&in);
	buf = pack_buf(len);
	mailfleet__v1__tls_pubkey_add_request__pack(&in, buf);
	if (call(bus, cid, "tlspubkey.add", account, buf, len, timeout_ms, &reply, status_r,
		 error_r) < 0) {
		free(buf);
		return -1;
	}
	free(buf);
	out = mailfleet__v1__tls_pubkey_add_reply__unpack(NULL, reply.body_len, reply.body);
	mf_bus_reply_free(&reply);
	if (out == NULL)
		return unpack_fail(status_r, error_r);
	if (fingerprint_r != NULL)
		*fingerprint_r = mf_xstrdup(out->fingerprint);
	mailfleet__v1__tls_pubkey_add_reply__free_unpacked(out, NULL);
	return 0;
}

int mf_storeclient_tls_pubkey_list(struct mf_bus *bus, const char *cid, const char *account,
				   int64_t timeout_ms, struct mf_storeclient_tls_pubkey **keys_r,
				   size_t *count_r, enum mf_bus_status *status_r,
				   const char **error_r)
{
	Mailfleet__V1__TlsPubkeyListRequest in = MAILFLEET__V1__TLS_PUBKEY_LIST_REQUEST__INIT;
	Mailfleet__V1__TlsPubkeyListReply *out;
	struct mf_bus_reply reply;
	uint8_t *buf;
	size_t len;

	*keys_r = NULL;
	*count_r = 0;
	in.account = (char *)account;
	len = mailfleet__v1__tls_pubkey_list_request__get_packed_size(&in);
	buf = pack_buf(len);
	mailfleet__v1__tls_pubkey_list_request__pack(&in, buf);
	if (call(bus, cid, "tlspubkey.list", account, buf, len, timeout_ms, &reply, status_r,
		 error_r) < 0) {
		free(buf);
		return -1;
	}
	free(buf);
	out = mailfleet__v1__tls_pubkey_list_reply__unpack(NULL, reply.body_len, reply.body);
	mf_bus_reply_free(&reply);
	if (out == NULL)
		return unpack_fail(status_r, error_r);
	*keys_r = mf_xcalloc(out->n_keys + 1, sizeof(**keys_r));
	for (size_t i = 0; i < out->n_keys; i++)
		key_from_pb(out->keys[i], &(*keys_r)[i]);
	*count_r = out->n_keys;
	mailfleet__v1__tls_pubkey_list_reply__free_unpacked(out, NULL);
	return 0;
}

int mf_storeclient_tls_pubkey_remove(struct mf_bus *bus, const char *cid, const char *account,
				     const char *fingerprint, int64_t timeout_ms, bool *removed_r,
				     enum mf_bus_status *status_r, const char **error_r)
{
	Mailfleet__V1__TlsPubkeyRemoveRequest in = MAILFLEET__V1__TLS_PUBKEY_REMOVE_REQUEST__INIT;
	Mailfleet__V1__TlsPubkeyRemoveReply *out;
	struct mf_bus_reply reply;
	uint8_t *buf;
	size_t len;

	*removed_r = false;
	in.account = (char *)account;
	in.fingerprint = (char *)fingerprint;
	len = mailfleet__v1__tls_pubkey_remove_request__get_packed_size(&in);
	buf = pack_buf(len);
	mailfleet__v1__tls_pubkey_remove_request__pack(&in, buf);
	if (call(bus, cid, "tlspubkey.remove", account, buf, len, timeout_ms, &reply, status_r,
		 error_r) < 0) {
		free(buf);
		return -1;
	}
	free(buf);
	out = mailfleet__v1__tls_pubkey_remove_reply__unpack(NULL, reply.body_len, reply.body);
	mf_bus_reply_free(&reply);
	if (out == NULL)
		return unpack_fail(status_r, error_r);
	*removed_r = out->removed;
	mailfleet__v1__tls_pubkey_remove_reply__free_unpacked(out, NULL);
	return 0;
}

int mf_storeclient_tls_pubkey_lookup(struct mf_bus *bus, const char *cid,
				     const char *fingerprint, int64_t timeout_ms, bool *found_r,
				     struct mf_storeclient_tls_pubkey *key_r,
				     enum mf_bus_status *status_r, const char **error_r)
{
	Mailfleet__V1__TlsPubkeyLookupRequest in = MAILFLEET__V1__TLS_PUBKEY_LOOKUP_REQUEST__INIT;
	Mailfleet__V1__TlsPubkeyLookupReply *out;
	struct mf_bus_reply reply;
	uint8_t *buf;
	size_t len;
	int ret;

	*found_r = false;
	memset(key_r, 0, sizeof(*key_r));
	in.fingerprint = (char *)fingerprint;
	len = mailfleet__v1__tls_pubkey_lookup_request__get_packed_size(&in);
	buf = pack_buf(len);
	mailfleet__v1__tls_pubkey_lookup_request__pack(&in, buf);
	memset(&reply, 0, sizeof(reply));
	ret = mf_bus_request(bus, "store.v1.tlspubkey.lookup", cid, buf, len, timeout_ms, &reply);
	free(buf);
	if (ret < 0) {
		*status_r = reply.status;
		*error_r = mf_errorf("%s", reply.message);
		mf_bus_reply_free(&reply);
		return -1;
	}
	*status_r = MF_BUS_OK;
	out = mailfleet__v1__tls_pubkey_lookup_reply__unpack(NULL, reply.body_len, reply.body);
	mf_bus_reply_free(&reply);
	if (out == NULL)
		return unpack_fail(status_r, error_r);
	if (out->found && out->key != NULL) {
		key_from_pb(out->key, key_r);
		*found_r = true;
	}
	mailfleet__v1__tls_pubkey_lookup_reply__free_unpacked(out, NULL);
	return 0;
}

char *mf_storeclient_login_account(const char *login)
{
	struct mf_domains *d = mf_domains_current();
	struct mf_domains_dest dest;
	const struct mf_account *a = NULL;
	const char *err;
	char *nfc = NULL, *name = NULL;

	if (d == NULL)
		return NULL;
	if (mf_precis_username(login, strlen(login), &nfc, &err) < 0)
		goto out;
	if (strchr(nfc, '@') != NULL) {
		/* A configured address, not a catch-all (which receives only). */
		if (mf_domains_resolve_address(d, nfc, &dest, &err) == 0 &&
		    dest.kind == MF_DOMAINS_DEST_ACCOUNT && dest.matched != NULL &&
		    dest.matched->localpart[0] != '\0')
			a = dest.account;
	} else {
		a = mf_domains_find_account(d, nfc);
	}
	if (a != NULL)
		name = mf_xstrdup(a->name);
out:
	free(nfc);
	mf_domains_unref(&d);
	return name;
}

static int sasl_verify(void *ctx, const char *login, const char *password, size_t len,
		       struct mf_sasl_account *a_r, const char **error_r)
{
	struct mf_storeclient_sasl *c = ctx;
	struct mf_storeclient_auth auth = {
		.login = login, .password = password, .password_len = len,
		.protocol = c->protocol, .mechanism = c->mechanism, .remote_ip = c->remote_ip,
		.tls = c->tls != NULL ? c->tls : "",
	};
	enum mf_bus_status status;
	char *account = mf_storeclient_login_account(login), *message = NULL;
	bool ok = false;

	if (account == NULL)
		return 0;
	if (mf_storeclient_authenticate(c->bus, c->cid, account, &auth, c->timeout_ms, &ok,
					&message, &status, error_r) < 0) {
		free(account);
		return -1;
	}
	if (!ok && message == NULL) {
		free(account);
		return 0;
	}
	/* ok, or right credentials on a disabled account (message). */
	a_r->account = account;
	a_r->disabled = ok ? NULL : message;
	if (ok)
		free(message);
	return 1;
}

static int sasl_lookup(void *ctx, enum mf_sasl_lookup what, const char *login,
		       struct mf_sasl_account *a_r, const char **error_r)
{
	static const char *const kinds[] = {
		[MF_SASL_LOOKUP_SCRAM_SHA1] = "scram-sha-1",
		[MF_SASL_LOOKUP_SCRAM_SHA256] = "scram-sha-256",
		[MF_SASL_LOOKUP_CRAM_MD5] = "cram-md5",
		[MF_SASL_LOOKUP_ACCOUNT] = "account",
	};
	struct mf_storeclient_sasl *c = ctx;
	enum mf_bus_status status;
	char *account = mf_storeclient_login_account(login);
	bool found = false;
	int r;

	if (account == NULL)
		return 0;
	r = mf_storeclient_credentials(c->bus, c->cid, account, login, kinds[what], c->timeout_ms,
				       &found, a_r, &status, error_r);
	free(account);
	if (r < 0)
		return -1;
	return found ? 1 : 0;
}

void mf_storeclient_sasl_backend(struct mf_storeclient_sasl *ctx, struct mf_sasl_backend *be_r)
{
	be_r->ctx = ctx;
	be_r->verify_password = sasl_verify;
	be_r->lookup = sasl_lookup;
}

int mf_storeclient_credential_options(struct mf_bus *bus, const char *cid, const char *account,
				      bool set, bool cram_md5_allowed, bool generated_only,
				      int64_t timeout_ms, bool *cram_md5_allowed_r,
				      bool *generated_only_r, enum mf_bus_status *status_r,
				      const char **error_r)
{
	Mailfleet__V1__CredentialOptionsRequest in = MAILFLEET__V1__CREDENTIAL_OPTIONS_REQUEST__INIT;
	Mailfleet__V1__CredentialOptionsReply *out;
	struct mf_bus_reply reply;
	uint8_t *buf;
	size_t len;

	in.account = (char *)account;
	in.set = set;
	in.cram_md5_allowed = cram_md5_allowed;
	in.generated_only = generated_only;
	len = mailfleet__v1__credential_options_request__get_packed_size(&in);
	buf = pack_buf(len);
	mailfleet__v1__credential_options_request__pack(&in, buf);
	if (call(bus, cid, "credoptions", account, buf, len, timeout_ms, &reply, status_r,
		 error_r) < 0) {
		free(buf);
		return -1;
	}
	free(buf);
	out = mailfleet__v1__credential_options_reply__unpack(NULL, reply.body_len, reply.body);
	mf_bus_reply_free(&reply);
	if (out == NULL)
		return unpack_fail(status_r, error_r);
	*cram_md5_allowed_r = out->cram_md5_allowed;
	*generated_only_r = out->generated_only;
	mailfleet__v1__credential_options_reply__free_unpacked(out, NULL);
	return 0;
}
