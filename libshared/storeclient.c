/* storeclient: store API calls over the bus; see storeclient.h. */
#include "storeclient.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "error.h"
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
