/* store_api: the store API over NATS (proto/store.proto), served by the
 * imap service with queue group "imap", and store_start/store_stop for the
 * service's main.c.
 *
 * Every request comes from another service, so every field is bounded and
 * checked; bad input is answered PERMANENT, storage failures TEMPORARY, and
 * nothing aborts.  The account is the subject's last token; a body naming
 * another account is refused. */
#include <errno.h>
#include <pthread.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "buf.h"
#include "bus.h"
#include "config.h"
#include "domains.h"
#include "error.h"
#include "log.h"
#include "metrics.h"
#include "password.h"
#include "service.h"
#include "store.pb-c.h"
#include "store_private.h"

/* Limits on requests from other services. */
#define STORE_API_RECIPIENTS_MAX 1000
#define STORE_API_LOGIN_MAX 1024
#define STORE_API_MAILBOX_MAX STORE_MAILBOX_NAME_MAX
#define STORE_API_UIDS_MAX 100000
#define STORE_API_FLAGS_MAX (STORE_KEYWORDS_MAX + 5)
#define STORE_API_MESSAGES_DEFAULT 100
#define STORE_API_MESSAGES_MAX 1000
/* Message bytes in one fetch reply: below the NATS payload limit with room
 * for the envelope and metadata. */
#define STORE_API_FETCH_MAX (512 * 1024)

struct store_api;

/* One served subject: the wrapper counts requests in flight. */
struct store_endpoint {
	struct store_api *api;
	mf_bus_request_handler *handler;
};

struct store_api {
	char *domains_file;
	struct mf_bus *bus;
	struct store *store;
	struct mf_metric *requests;
	pthread_mutex_t lock;
	pthread_cond_t idle;
	unsigned inflight;
	bool stopping;
	struct store_endpoint *endpoints;
	struct store_api *next_stopped;
};

static const char *const op_values[] = {
	"deliver", "authenticate", "setpassword", "account_create", "account_remove",
	"account_check",
	"mailboxes", "messages", "fetch", "flags", "move", "expunge",
	"credentials", "loginattempt", "loginattempts", "tlspubkey", NULL,
};
static const char *const status_values[] = { "ok", "temporary", "permanent", NULL };

static const char *const system_flags[] = {
	"\\Seen", "\\Answered", "\\Flagged", "\\Deleted", "\\Draft",
};

/* The account from the subject: the token after prefix. */
static const char *subject_account(const struct mf_bus_request *req, const char *prefix)
{
	size_t n = strlen(prefix);

	if (strncmp(req->subject, prefix, n) != 0 || req->subject[n] == '\0')
		return NULL;
	return req->subject + n;
}

static enum mf_bus_status status_of(enum store_error_kind kind)
{
	return kind == STORE_ERR_TEMPORARY || kind == STORE_ERR_NONE ? MF_BUS_TEMPORARY :
		MF_BUS_PERMANENT;
}

static void count(struct store_api *api, const char *op, struct mf_bus_response *resp)
{
	if (api->requests != NULL)
		mf_metric_inc(api->requests, op, mf_bus_status_name(resp->status));
}

/* Counts a request or event in; false when the store is stopping. */
static bool api_enter(struct store_api *api)
{
	bool ok;

	pthread_mutex_lock(&api->lock);
	ok = !api->stopping;
	if (ok)
		api->inflight++;
	pthread_mutex_unlock(&api->lock);
	return ok;
}

static void api_leave(struct store_api *api)
{
	pthread_mutex_lock(&api->lock);
	if (--api->inflight == 0)
		pthread_cond_broadcast(&api->idle);
	pthread_mutex_unlock(&api->lock);
}

/* Checks the body's account against the subject's. */
static bool same_account(struct mf_bus_response *resp, const char *subj, const char *body)
{
	if (body != NULL && body[0] != '\0' && strcmp(subj, body) != 0) {
		mf_bus_response_set(resp, MF_BUS_PERMANENT,
				    "account in the body (%.64s) differs from the subject's", body);
		return false;
	}
	return true;
}

/* Whether account is in domains.conf; reloads the file once when not, as
 * the CLI may have just added it and our reload may still be coming. */
static bool account_configured(struct store_api *api, const char *name)
{
	for (int attempt = 0; attempt < 2; attempt++) {
		struct mf_domains *d = mf_domains_current();
		bool found = d != NULL && mf_domains_find_account(d, name) != NULL;
		const char *err;

		mf_domains_unref(&d);
		if (found || attempt == 1)
			return found;
		if (mf_domains_reload(api->domains_file, &err) < 0)
			mf_log_warn("store", NULL, "domains.conf reload failed", "error=%s", err);
	}
	return false;
}

/* Opens the account, creating its store when it is configured but has
 * none yet.  Answers resp on failure.  Returns acc or NULL. */
static struct store_account *open_account(struct store_api *api, const char *name,
					  struct mf_bus_response *resp)
{
	struct store_account *acc = NULL;
	const char *err = NULL;
	int r = store_account_open(api->store, name, &acc, &err);

	if (r == 0 && account_configured(api, name)) {
		if (store_account_create(api->store, name, &err) >= 0)
			r = store_account_open(api->store, name, &acc, &err);
		else
			r = -1;
	}
	if (r > 0)
		return acc;
	if (r == 0)
		mf_bus_response_set(resp, MF_BUS_PERMANENT, "no such account");
	else
		mf_bus_response_set(resp, status_of(store_last_error_kind()), "%s", err);
	return NULL;
}

static void fail_store(struct mf_bus_response *resp, const char *err)
{
	mf_bus_response_set(resp, status_of(store_last_error_kind()), "%s", err);
}

/* Packs a reply message into resp. */
#define PACK_REPLY(resp, type, msg) do { \
	size_t len_ = mailfleet__v1__##type##__get_packed_size(msg); \
	uint8_t *buf_ = mf_xmalloc(len_ + 1); \
	mailfleet__v1__##type##__pack(msg, buf_); \
	mf_bus_response_take_body(resp, buf_, len_); \
} while (0)

/* Looks a mailbox up by name; answers resp when missing.  Returns 1/0. */
static int find_mailbox(struct store_account *acc, const char *name, struct store_mailbox *mb,
			struct mf_bus_response *resp)
{
	const char *err = NULL;
	int r;

	if (strlen(name) > STORE_API_MAILBOX_MAX) {
		mf_bus_response_set(resp, MF_BUS_PERMANENT, "mailbox name too long");
		return 0;
	}
	r = store_mailbox_get(acc, name[0] != '\0' ? name : "INBOX", mb, &err);
	if (r > 0)
		return 1;
	if (r == 0)
		mf_bus_response_set(resp, MF_BUS_PERMANENT, "no such mailbox");
	else
		fail_store(resp, err);
	return 0;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/* Sorted unique copy of uids (zeros dropped).  Returns NULL and answers
 * resp when too many. */
static uint32_t *uids_sorted(const uint32_t *uids, size_t n, size_t *count_r,
			     struct mf_bus_response *resp)
{
	uint32_t *u;
	size_t k = 0;

	if (n > STORE_API_UIDS_MAX) {
		mf_bus_response_set(resp, MF_BUS_PERMANENT, "more than %d UIDs", STORE_API_UIDS_MAX);
		return NULL;
	}
	u = mf_xcalloc(n + 1, sizeof(*u));
	if (n > 0) {
		memcpy(u, uids, n * sizeof(*u));
		qsort(u, n, sizeof(*u), cmp_u32);
	}
	for (size_t i = 0; i < n; i++)
		if (u[i] != 0 && (k == 0 || u[k - 1] != u[i]))
			u[k++] = u[i];
	*count_r = k;
	return u;
}

/* System flags to bits and keywords to a space-separated list.  Returns
 * 0, or -1 with an error for resp. */
static int parse_flags(char **flags, size_t n, uint32_t *bits_r, char **keywords_r,
		       const char **error_r)
{
	struct mf_buf kw;

	*bits_r = 0;
	*keywords_r = NULL;
	if (n > STORE_API_FLAGS_MAX) {
		*error_r = "too many flags";
		return -1;
	}
	mf_buf_init(&kw, 0);
	for (size_t i = 0; i < n; i++) {
		bool sys = false;

		if (strlen(flags[i]) > STORE_KEYWORD_MAX) {
			*error_r = "flag too long";
			mf_buf_free(&kw);
			return -1;
		}
		for (int b = 0; b < 5; b++)
			if (strcasecmp(flags[i], system_flags[b]) == 0) {
				*bits_r |= 1u << b;
				sys = true;
			}
		if (sys)
			continue;
		if (flags[i][0] == '\\') {
			*error_r = mf_errorf("unknown system flag %s", flags[i]);
			mf_buf_free(&kw);
			return -1;
		}
		if (kw.len > 0)
			mf_buf_append_str(&kw, " ");
		mf_buf_append_str(&kw, flags[i]);
	}
	*keywords_r = kw.data != NULL ? mf_buf_steal(&kw) : mf_xstrdup("");
	return 0;
}

/* Flag strings for a message (freed with free_flag_list). */
static char **flag_list(uint32_t bits, const char *keywords, size_t *n_r)
{
	size_t cap = 6, n = 0;
	char **list;

	for (const char *p = keywords; p != NULL && *p != '\0'; p++)
		if (*p == ' ')
			cap++;
	cap += keywords != NULL ? 1 : 0;
	list = mf_xcalloc(cap, sizeof(*list));
	for (int b = 0; b < 5; b++)
		if (bits & (1u << b))
			list[n++] = mf_xstrdup(system_flags[b]);
	if (keywords != NULL && keywords[0] != '\0') {
		char *copy = mf_xstrdup(keywords), *save = NULL;

		for (char *t = strtok_r(copy, " ", &save); t != NULL && n < cap;
		     t = strtok_r(NULL, " ", &save))
			list[n++] = mf_xstrdup(t);
		free(copy);
	}
	*n_r = n;
	return list;
}

static void free_flag_list(char **list, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(list[i]);
	free(list);
}

static void message_info(const struct store_message *m, Mailfleet__V1__MessageInfo *info)
{
	mailfleet__v1__message_info__init(info);
	info->uid = m->uid;
	info->modseq = m->modseq;
	info->flags = flag_list(m->flags, m->keywords, &info->n_flags);
	info->internal_date_unix_ms = m->internal_date;
	info->save_date_unix_ms = m->save_date;
	info->size = m->size;
	info->message_id = (char *)(m->message_id != NULL ? m->message_id : "");
	info->subject = (char *)(m->subject != NULL ? m->subject : "");
}

/* --- deliver ------------------------------------------------------------------ */

static void rcpt_result(const struct store_deliver_rcpt *r, Mailfleet__V1__DeliverResult *res,
			Mailfleet__V1__Status *st)
{
	st->message = (char *)(r->error != NULL ? r->error : "stored");
	if (r->status == 0) {
		st->code = MAILFLEET__V1__STATUS__CODE__OK;
		res->smtp_code = 250;
		res->enhanced_code = "2.0.0";
		res->mailbox = r->stored_mailbox;
		res->uid = r->uid;
		return;
	}
	switch (r->error_kind) {
	case STORE_ERR_OVERQUOTA:
		/* RFC 3463 4.2.2 mailbox full: maybe later. */
		st->code = MAILFLEET__V1__STATUS__CODE__TEMPORARY;
		res->smtp_code = 452;
		res->enhanced_code = "4.2.2";
		break;
	case STORE_ERR_TOOBIG:
		/* Larger than the whole quota: never fits (RFC 5321 4.5.3.1.10). */
		st->code = MAILFLEET__V1__STATUS__CODE__PERMANENT;
		res->smtp_code = 552;
		res->enhanced_code = "5.2.2";
		break;
	case STORE_ERR_INVALID:
		st->code = MAILFLEET__V1__STATUS__CODE__PERMANENT;
		res->smtp_code = 554;
		res->enhanced_code = "5.3.0";
		break;
	case STORE_ERR_NOTFOUND:
	case STORE_ERR_REMOVED:
		st->code = MAILFLEET__V1__STATUS__CODE__PERMANENT;
		res->smtp_code = 550;
		res->enhanced_code = "5.1.1";
		break;
	default:
		st->code = MAILFLEET__V1__STATUS__CODE__TEMPORARY;
		res->smtp_code = 451;
		res->enhanced_code = "4.3.0";
		break;
	}
}

static void handle_deliver(void *ctx, const struct mf_bus_request *req,
			   struct mf_bus_response *resp)
{
	struct store_api *api = ctx;
	const char *name = subject_account(req, "store.v1.deliver.");
	Mailfleet__V1__DeliverRequest *in = NULL;
	Mailfleet__V1__DeliverReply out = MAILFLEET__V1__DELIVER_REPLY__INIT;
	Mailfleet__V1__DeliverResult *results = NULL, **rptrs = NULL;
	Mailfleet__V1__Status *statuses = NULL;
	struct store_deliver_rcpt *rcpts = NULL;
	size_t *slot = NULL, nunique = 0;
	struct store_account *acc = NULL;
	const char *err = NULL;
	int r;

	in = mailfleet__v1__deliver_request__unpack(NULL, req->body_len, req->body);
	if (name == NULL || in == NULL) {
		mf_bus_response_set(resp, MF_BUS_PERMANENT, "malformed deliver request");
		goto out;
	}
	if (!same_account(resp, name, in->account))
		goto out;
	if (in->n_recipients == 0 || in->n_recipients > STORE_API_RECIPIENTS_MAX) {
		mf_bus_response_set(resp, MF_BUS_PERMANENT, "1 to %d recipients per request",
				    STORE_API_RECIPIENTS_MAX);
		goto out;
	}
	if ((acc = open_account(api, name, resp)) == NULL)
		goto out;
	/* Duplicate recipients get one copy: slot[i] is the unique entry. */
	rcpts = mf_xcalloc(in->n_recipients, sizeof(*rcpts));
	slot = mf_xcalloc(in->n_recipients, sizeof(*slot));
	for (size_t i = 0; i < in->n_recipients; i++) {
		Mailfleet__V1__DeliverRecipient *dr = in->recipients[i];
		size_t j;
		struct mf_buf kw;

		for (j = 0; j < i; j++)
			if (strcmp(in->recipients[j]->address, dr->address) == 0)
				break;
		if (j < i) {
			slot[i] = slot[j];
			continue;
		}
		slot[i] = nunique;
		mf_buf_init(&kw, 0);
		for (size_t k = 0; k < dr->n_keywords && k < STORE_API_FLAGS_MAX; k++) {
			if (kw.len > 0)
				mf_buf_append_str(&kw, " ");
			mf_buf_append_str(&kw, dr->keywords[k]);
		}
		rcpts[nunique].mailbox = dr->mailbox;
		if (dr->special_use != NULL && dr->special_use[0] != '\0') {
			/* an unknown name keeps a bit outside the mask, which
			 * fails this recipient in store_deliver */
			uint32_t bit = store_special_use_from_name(dr->special_use);
			rcpts[nunique].special_use = bit != 0 ? bit : ~STORE_SPECIAL_MASK;
		}
		rcpts[nunique].keywords = kw.data != NULL ? mf_buf_steal(&kw) : NULL;
		rcpts[nunique].prefix = dr->header_prefix.data;
		rcpts[nunique].prefix_len = dr->header_prefix.len;
		nunique++;
	}
	r = store_deliver(acc, in->blob_key, in->received_unix_ms > 0 ? in->received_unix_ms : 0,
			  rcpts, nunique, &err);
	if (r < 0) {
		mf_bus_response_set(resp, status_of(store_last_error_kind()), "%s", err);
		mf_log_warn("store", req->cid, "delivery failed", "account=%s blob=%s msgid=%s "
			    "error=%s", name, in->blob_key, in->message_id, err);
		goto out;
	}
	results = mf_xcalloc(in->n_recipients, sizeof(*results));
	statuses = mf_xcalloc(in->n_recipients, sizeof(*statuses));
	rptrs = mf_xcalloc(in->n_recipients, sizeof(*rptrs));
	for (size_t i = 0; i < in->n_recipients; i++) {
		mailfleet__v1__deliver_result__init(&results[i]);
		mailfleet__v1__status__init(&statuses[i]);
		results[i].address = in->recipients[i]->address;
		results[i].status = &statuses[i];
		results[i].mailbox = "";
		rcpt_result(&rcpts[slot[i]], &results[i], &statuses[i]);
		rptrs[i] = &results[i];
		mf_log_info("store", req->cid, "deliver", "account=%s msgid=%s rcpt=%s code=%u "
			    "mailbox=%s uid=%u", name, in->message_id, results[i].address,
			    results[i].smtp_code, results[i].mailbox, results[i].uid);
	}
	out.results = rptrs;
	out.n_results = in->n_recipients;
	PACK_REPLY(resp, deliver_reply, &out);
out:
	count(api, "deliver", resp);
	if (rcpts != NULL) {
		for (size_t i = 0; i < nunique; i++)
			free((char *)rcpts[i].keywords);
		store_deliver_rcpts_clear(rcpts, nunique);
	}
	free(rcpts);
	free(slot);
	free(results);
	free(statuses);
	free(rptrs);
	store_account_unref(&acc);
	if (in != NULL)
		mailfleet__v1__deliver_request__free_unpacked(in, NULL);
}

/* --- accounts and credentials --------------------------------------------------- */

static void handle_authenticate(void *ctx, const struct mf_bus_request *req,
				struct mf_bus_response *resp)
{
	struct store_api *api = ctx;
	const char *name = subject_account(req, "store.v1.authenticate.");
	Mailfleet__V1__AuthenticateRequest *in;
	Mailfleet__V1__AuthenticateReply out = MAILFLEET__V1__AUTHENTICATE_REPLY__INIT;
	enum store_auth_result res;
	char *account = NULL, *message = NULL;
	const char *err = NULL;

	in = mailfleet__v1__authenticate_request__unpack(NULL, req->body_len, req->body);
	if (name == NULL || in == NULL) {
		mf_bus_response_set(resp, MF_BUS_PERMANENT, "malformed authenticate request");
		goto out;
	}
	if (!same_account(resp, name, in->account))
		goto out;
	if (strlen(in->login) > STORE_API_LOGIN_MAX || in->password.len > MF_PASSWORD_MAX) {
		/* Too long to be right; same answer as a wrong password. */
		out.ok = false;
		PACK_REPLY(resp, authenticate_reply, &out);
		goto out;
	}
	if (store_authenticate(api->store, in->login, (const char *)in->password.data,
			       in->password.len, &res, &account, &message, &err) < 0) {
		fail_store(resp, err);
		goto out;
	}
	/* The login must name the account of the subject. */
	out.ok = res == STORE_AUTH_OK && strcmp(account, name) == 0;
	out.account = (char *)(out.ok ? account : "");
	out.message = (char *)(res == STORE_AUTH_DISABLED && message != NULL &&
			       strcmp(account, name) == 0 ? message : "");
	mf_log_info("store", req->cid, "authenticate", "account=%s protocol=%s remote=%s ok=%s",
		    name, in->protocol, in->remote_ip, out.ok ? "yes" : "no");
	PACK_REPLY(resp, authenticate_reply, &out);
out:
	count(api, "authenticate", resp);
	free(account);
	free(message);
	if (in != NULL)
		mailfleet__v1__authenticate_request__free_unpacked(in, NULL);
}

static void handle_setpassword(void *ctx, const struct mf_bus_request *req,
			       struct mf_bus_response *resp)
{
	struct store_api *api = ctx;
	const char *name = subject_account(req, "store.v1.setpassword.");
	Mailfleet__V1__SetPasswordRequest *in;
	Mailfleet__V1__SetPasswordReply out = MAILFLEET__V1__SET_PASSWORD_REPLY__INIT;
	struct store_account *acc = NULL;
	const char *err = NULL;

	in = mailfleet__v1__set_password_request__unpack(NULL, req->body_len, req->body);
	if (name == NULL || in == NULL) {
		mf_bus_response_set(resp, MF_BUS_PERMANENT, "malformed setpassword request");
		goto out;
	}
	if (!same_account(resp, name, in->account))
		goto out;
	if (in->password.len == 0 || in->password.len > MF_PASSWORD_MAX) {
		mf_bus_response_set(resp, MF_BUS_PERMANENT, "password must be 1 to %d bytes",
				    MF_PASSWORD_MAX);
		goto out;
	}
	if ((acc = open_account(api, name, resp)) == NULL)
		goto out;
	if (store_set_password(acc, (const char *)in->password.data, in->password.len, &err) < 0) {
		fail_store(resp, err);
		goto out;
	}
	mf_log_info("store", req->cid, "password set", "account=%s", name);
	PACK_REPLY(resp, set_password_reply, &out);
out:
	count(api, "setpassword", resp);
	store_account_unref(&acc);
	if (in != NULL)
		mailfleet__v1__set_password_request__free_unpacked(in, NULL);
}

static void handle_account_create(void *ctx, const struct mf_bus_request *req,
				  struct mf_bus_response *resp)
{
	struct store_api *api = ctx;
	const char *name = subject_account(req, "store.v1.account.create.");
	Mailfleet__V1__CreateAccountRequest *in;
	Mailfleet__V1__CreateAccountReply out = MAILFLEET__V1__CREATE_ACCOUNT_REPLY__INIT;
	const char *err = NULL;
	int r;

	in = mailfleet__v1__create_account_request__unpack(NULL, req->body_len, req->body);
	if (name == NULL || in == NULL) {
		mf_bus_response_set(resp, MF_BUS_PERMANENT, "malformed create request");
		goto out;
	}
	if (!same_account(resp, name, in->account))
		goto out;
	/* Stores exist for configured accounts only (domains.conf first). */
	if (!account_configured(api, name)) {
		mf_bus_response_set(resp, MF_BUS_PERMANENT, "account %s is not in domains.conf", name);
		goto out;
	}
	r = store_account_create(api->store, name, &err);
	if (r < 0) {
		fail_store(resp, err);
		goto out;
	}
	out.created = r > 0;
	PACK_REPLY(resp, create_account_reply, &out);
out:
	count(api, "account_create", resp);
	if (in != NULL)
		mailfleet__v1__create_account_request__free_unpacked(in, NULL);
}

static void handle_account_remove(void *ctx, const struct mf_bus_request *req,
				  struct mf_bus_response *resp)
{
	struct store_api *api = ctx;
	const char *name = subject_account(req, "store.v1.account.remove.");
	Mailfleet__V1__RemoveAccountRequest *in;
	Mailfleet__V1__RemoveAccountReply out = MAILFLEET__V1__REMOVE_ACCOUNT_REPLY__INIT;
	struct mf_domains *d = NULL;
	const char *err = NULL;
	int r;

	in = mailfleet__v1__remove_account_request__unpack(NULL, req->body_len, req->body);
	if (name == NULL || in == NULL) {
		mf_bus_response_set(resp, MF_BUS_PERMANENT, "malformed remove request");
		goto out;
	}
	if (!same_account(resp, name, in->account))
		goto out;
	/* Still configured: it would be re-created empty at the next reload.
	 * Read the file itself, as our reload of it may still be coming. */
	if (mf_domains_load(api->domains_file, &d, &err) < 0) {
		mf_bus_response_set(resp, MF_BUS_TEMPORARY, "cannot read domains.conf");
		goto out;
	}
	if (mf_domains_find_account(d, name) != NULL) {
		mf_bus_response_set(resp, MF_BUS_PERMANENT, "account %s is still in domains.conf; "
				    "remove it there first", name);
		goto out;
	}
	r = store_account_remove(api->store, name, &err);
	if (r < 0) {
		fail_store(resp, err);
		goto out;
	}
	out.removed = r > 0;
	PACK_REPLY(resp, remove_account_reply, &out);
out:
	count(api, "account_remove", resp);
	mf_domains_unref(&d);
	if (in != NULL)
		mailfleet__v1__remove_account_request__free_unpacked(in, NULL);
}

static void handle_account_check(void *ctx, const struct mf_bus_request *req,
				 struct mf_bus_response *resp)
{
	struct store_api *api = ctx;
	const char *name = subject_account(req, "store.v1.account.check.");
	Mailfleet__V1__CheckAccountRequest *in;
	Mailfleet__V1__CheckAccountReply out = MAILFLEET__V1__CHECK_ACCOUNT_REPLY__INIT;
	struct store_account *acc = NULL;
	const char *err = NULL;

	in = mailfleet__v1__check_account_request__unpack(NULL, req->body_len, req->body);
	if (name == NULL || in == NULL) {
		mf_bus_response_set(resp, MF_BUS_PERMANENT, "malformed check request");
		goto out;
	}
	if (!same_account(resp, name, in->account) || (acc = open_account(api, name, resp)) == NULL)
		goto out;
	if (store_account_check(acc, &err) < 0) {
		/* The check's findings are answers; a lock or I/O failure is not. */
		if (store_last_error_kind() == STORE_ERR_REMOVED) {
			fail_store(resp, err);
			goto out;
		}
		out.consistent = false;
		out.problem = (char *)err;
		mf_log_warn("store", req->cid, "account check found a problem", "account=%s problem=%s",
			    name, err);
	} else {
		out.consistent = true;
		out.problem = "";
	}
	PACK_REPLY(resp, check_account_reply, &out);
out:
	count(api, "account_check", resp);
	store_account_unref(&acc);
	if (in != NULL)
		mailfleet__v1__check_account_request__free_unpacked(in, NULL);
}

/* --- mailboxes and messages --------------------------------------------------------- */

static const char *const special_names[] = {
	"\\All", "\\Archive", "\\Drafts", "\\Flagged", "\\Junk", "\\Sent", "\\Trash",
};

static void handle_mailboxes(void *ctx, const struct mf_bus_request *req,
			     struct mf_bus_response *resp)
{
	struct store_api *api = ctx;
	const char *name = subject_account(req, "store.v1.mailboxes.");
	Mailfleet__V1__MailboxesRequest *in;
	Mailfleet__V1__MailboxesReply out = MAILFLEET__V1__MAILBOXES_REPLY__INIT;
	Mailfleet__V1__Mailbox *mbs = NULL, **ptrs = NULL;
	struct store_mailbox *list = NULL;
	struct store_account *acc = NULL;
	size_t n = 0;
	const char *err = NULL;

	in = mailfleet__v1__mailboxes_request__unpack(NULL, req->body_len, req->body);
	if (name == NULL || in == NULL) {
		mf_bus_response_set(resp, MF_BUS_PERMANENT, "malformed mailboxes request");
		goto out;
	}
	if (!same_account(resp, name, in->account) || (acc = open_account(api, name, resp)) == NULL)
		goto out;
	if (store_mailboxes_list(acc, &list, &n, &err) < 0) {
		fail_store(resp, err);
		goto out;
	}
	mbs = mf_xcalloc(n + 1, sizeof(*mbs));
	ptrs = mf_xcalloc(n + 1, sizeof(*ptrs));
	for (size_t i = 0; i < n; i++) {
		Mailfleet__V1__Mailbox *m = &mbs[i];

		mailfleet__v1__mailbox__init(m);
		m->id = list[i].id;
		m->name = list[i].name;
		m->special_use = mf_xcalloc(8, sizeof(char *));
		for (int b = 0; b < 7; b++)
			if (list[i].special_use & (1u << b))
				m->special_use[m->n_special_use++] = (char *)special_names[b];
		m->subscribed = list[i].subscribed;
		m->uidvalidity = list[i].uidvalidity;
		m->uidnext = list[i].uidnext;
		m->highestmodseq = list[i].highestmodseq;
		m->messages = list[i].messages;
		m->unseen = list[i].unseen;
		m->deleted = list[i].deleted;
		m->size = list[i].size;
		ptrs[i] = m;
	}
	out.mailboxes = ptrs;
	out.n_mailboxes = n;
	PACK_REPLY(resp, mailboxes_reply, &out);
out:
	count(api, "mailboxes", resp);
	for (size_t i = 0; mbs != NULL && i < n; i++)
		free(mbs[i].special_use);
	free(mbs);
	free(ptrs);
	store_mailboxes_free(&list, n);
	store_account_unref(&acc);
	if (in != NULL)
		mailfleet__v1__mailboxes_request__free_unpacked(in, NULL);
}

static void handle_messages(void *ctx, const struct mf_bus_request *req,
			    struct mf_bus_response *resp)
{
	struct store_api *api = ctx;
	const char *name = subject_account(req, "store.v1.messages.");
	Mailfleet__V1__MessagesRequest *in;
	Mailfleet__V1__MessagesReply out = MAILFLEET__V1__MESSAGES_REPLY__INIT;
	Mailfleet__V1__MessageInfo *infos = NULL, **ptrs = NULL;
	struct store_message *msgs = NULL;
	struct store_mailbox mb = { 0 };
	struct store_account *acc = NULL;
	size_t n = 0, limit;
	const char *err = NULL;

	in = mailfleet__v1__messages_request__unpack(NULL, req->body_len, req->body);
	if (name == NULL || in == NULL) {
		mf_bus_response_set(resp, MF_BUS_PERMANENT, "malformed messages request");
		goto out;
	}
	if (!same_account(resp, name, in->account) || (acc = open_account(api, name, resp)) == NULL ||
	    !find_mailbox(acc, in->mailbox, &mb, resp))
		goto out;
	limit = in->limit == 0 ? STORE_API_MESSAGES_DEFAULT :
		in->limit > STORE_API_MESSAGES_MAX ? STORE_API_MESSAGES_MAX : in->limit;
	/* One more than asked for tells whether there is a next page. */
	if (store_messages_list(acc, mb.id, in->first_uid, limit + 1, &msgs, &n, &err) < 0) {
		fail_store(resp, err);
		goto out;
	}
	out.uidvalidity = mb.uidvalidity;
	if (n > limit) {
		out.next_uid = msgs[limit].uid;
		n--;
		store_message_clear(&msgs[limit]);
	}
	infos = mf_xcalloc(n + 1, sizeof(*infos));
	ptrs = mf_xcalloc(n + 1, sizeof(*ptrs));
	for (size_t i = 0; i < n; i++) {
		message_info(&msgs[i], &infos[i]);
		ptrs[i] = &infos[i];
	}
	out.messages = ptrs;
	out.n_messages = n;
	PACK_REPLY(resp, messages_reply, &out);
out:
	count(api, "messages", resp);
	for (size_t i = 0; infos != NULL && i < n; i++)
		free_flag_list(infos[i].flags, infos[i].n_flags);
	free(infos);
	free(ptrs);
	store_messages_free(&msgs, n);
	store_mailbox_clear(&mb);
	store_account_unref(&acc);
	if (in != NULL)
		mailfleet__v1__messages_request__free_unpacked(in, NULL);
}

/* Reads [offset, offset + max) of prefix + blob into buf. */
static int read_range(const char *prefix, size_t plen, int fd, uint64_t offset, size_t max,
		      uint8_t *buf, size_t *len_r, const char **error_r)
{
	size_t len = 0;

	if (offset < plen) {
		size_t n = plen - (size_t)offset < max ? plen - (size_t)offset : max;

		memcpy(buf, prefix + offset, n);
		len = n;
		offset += n;
	}
	/* From here offset >= plen: the rest comes from the blob. */
	while (len < max) {
		ssize_t n = pread(fd, buf + len, max - len, (off_t)(offset - plen));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			*error_r = mf_errorf("read message: %s", strerror(errno));
			return -1;
		}
		if (n == 0)
			break;
		len += (size_t)n;
		offset += (uint64_t)n;
	}
	*len_r = len;
	return 0;
}

static void handle_fetch(void *ctx, const struct mf_bus_request *req,
			 struct mf_bus_response *resp)
{
	struct store_api *api = ctx;
	const char *name = subject_account(req, "store.v1.fetch.");
	Mailfleet__V1__FetchRequest *in;
	Mailfleet__V1__FetchReply out = MAILFLEET__V1__FETCH_REPLY__INIT;
	Mailfleet__V1__MessageInfo info;
	struct store_message msg = { 0 };
	struct store_mailbox mb = { 0 };
	struct store_account *acc = NULL;
	char *prefix = NULL;
	size_t plen = 0, max, len = 0;
	uint8_t *data = NULL;
	bool have_info = false;
	const char *err = NULL;
	int fd = -1, r;

	in = mailfleet__v1__fetch_request__unpack(NULL, req->body_len, req->body);
	if (name == NULL || in == NULL) {
		mf_bus_response_set(resp, MF_BUS_PERMANENT, "malformed fetch request");
		goto out;
	}
	if (!same_account(resp, name, in->account) || (acc = open_account(api, name, resp)) == NULL ||
	    !find_mailbox(acc, in->mailbox, &mb, resp))
		goto out;
	r = store_message_get(acc, mb.id, in->uid, &msg, &err);
	if (r <= 0 || msg.expunged) {
		if (r < 0)
			fail_store(resp, err);
		else
			mf_bus_response_set(resp, MF_BUS_PERMANENT, "no such message");
		goto out;
	}
	r = store_message_open(acc, &msg, &prefix, &plen, &fd, &err);
	if (r <= 0) {
		if (r < 0)
			fail_store(resp, err);
		else
			mf_bus_response_set(resp, MF_BUS_PERMANENT, "no such message");
		goto out;
	}
	max = in->max_bytes == 0 || in->max_bytes > STORE_API_FETCH_MAX ? STORE_API_FETCH_MAX :
		(size_t)in->max_bytes;
	if (in->offset >= msg.size)
		max = 0;
	else if (msg.size - in->offset < max)
		max = (size_t)(msg.size - in->offset);
	data = mf_xmalloc(max + 1);
	if (read_range(prefix, plen, fd, in->offset, max, data, &len, &err) < 0) {
		mf_bus_response_set(resp, MF_BUS_TEMPORARY, "%s", err);
		goto out;
	}
	message_info(&msg, &info);
	have_info = true;
	out.message = &info;
	out.data.data = data;
	out.data.len = len;
	out.total_size = msg.size;
	PACK_REPLY(resp, fetch_reply, &out);
out:
	count(api, "fetch", resp);
	if (have_info)
		free_flag_list(info.flags, info.n_flags);
	if (fd >= 0)
		close(fd);
	free(prefix);
	free(data);
	store_message_clear(&msg);
	store_mailbox_clear(&mb);
	store_account_unref(&acc);
	if (in != NULL)
		mailfleet__v1__fetch_request__free_unpacked(in, NULL);
}

static void handle_flags(void *ctx, const struct mf_bus_request *req,
			 struct mf_bus_response *resp)
{
	struct store_api *api = ctx;
	const char *name = subject_account(req, "store.v1.flags.");
	Mailfleet__V1__FlagsRequest *in;
	Mailfleet__V1__FlagsReply out = MAILFLEET__V1__FLAGS_REPLY__INIT;
	struct store_mailbox mb = { 0 };
	struct store_account *acc = NULL;
	uint32_t *uids = NULL, *failed = NULL, bits;
	size_t nuids = 0, nfailed = 0;
	char *keywords = NULL;
	uint64_t modseq = 0;
	const char *err = NULL;
	enum store_flags_mode mode;

	in = mailfleet__v1__flags_request__unpack(NULL, req->body_len, req->body);
	if (name == NULL || in == NULL) {
		mf_bus_response_set(resp, MF_BUS_PERMANENT, "malformed flags request");
		goto out;
	}
	switch (in->mode) {
	case MAILFLEET__V1__FLAGS_REQUEST__MODE__SET: mode = STORE_FLAGS_SET; break;
	case MAILFLEET__V1__FLAGS_REQUEST__MODE__ADD: mode = STORE_FLAGS_ADD; break;
	case MAILFLEET__V1__FLAGS_REQUEST__MODE__REMOVE: mode = STORE_FLAGS_REMOVE; break;
	default:
		mf_bus_response_set(resp, MF_BUS_PERMANENT, "unknown flags mode");
		goto out;
	}
	if (parse_flags(in->flags, in->n_flags, &bits, &keywords, &err) < 0) {
		mf_bus_response_set(resp, MF_BUS_PERMANENT, "%s", err);
		goto out;
	}
	if (!same_account(resp, name, in->account) ||
	    (uids = uids_sorted(in->uids, in->n_uids, &nuids, resp)) == NULL ||
	    (acc = open_account(api, name, resp)) == NULL || !find_mailbox(acc, in->mailbox, &mb, resp))
		goto out;
	if (store_flags(acc, mb.id, uids, nuids, mode, bits, keywords, in->unchanged_since, &modseq,
			&failed, &nfailed, &err) < 0) {
		fail_store(resp, err);
		goto out;
	}
	out.modseq = modseq;
	out.failed_uids = failed;
	out.n_failed_uids = nfailed;
	PACK_REPLY(resp, flags_reply, &out);
out:
	count(api, "flags", resp);
	free(uids);
	free(failed);
	free(keywords);
	store_mailbox_clear(&mb);
	store_account_unref(&acc);
	if (in != NULL)
		mailfleet__v1__flags_request__free_unpacked(in, NULL);
}

static void handle_move(void *ctx, const struct mf_bus_request *req,
			struct mf_bus_response *resp)
{
	struct store_api *api = ctx;
	const char *name = subject_account(req, "store.v1.move.");
	Mailfleet__V1__MoveRequest *in;
	Mailfleet__V1__MoveReply out = MAILFLEET__V1__MOVE_REPLY__INIT;
	struct store_mailbox src = { 0 }, dst = { 0 };
	struct store_copy_result res = { 0 };
	struct store_account *acc = NULL;
	uint32_t *uids = NULL;
	size_t nuids = 0;
	const char *err = NULL;
	int r;

	in = mailfleet__v1__move_request__unpack(NULL, req->body_len, req->body);
	if (name == NULL || in == NULL) {
		mf_bus_response_set(resp, MF_BUS_PERMANENT, "malformed move request");
		goto out;
	}
	if (!same_account(resp, name, in->account) ||
	    (uids = uids_sorted(in->uids, in->n_uids, &nuids, resp)) == NULL ||
	    (acc = open_account(api, name, resp)) == NULL ||
	    !find_mailbox(acc, in->mailbox, &src, resp) ||
	    !find_mailbox(acc, in->destination, &dst, resp))
		goto out;
	r = in->copy ? store_copy(acc, src.id, uids, nuids, dst.id, &res, &err) :
		store_move(acc, src.id, uids, nuids, dst.id, &res, &err);
	if (r < 0) {
		fail_store(resp, err);
		goto out;
	}
	out.uidvalidity = res.uidvalidity;
	out.src_uids = res.src_uids;
	out.n_src_uids = res.count;
	out.dst_uids = res.dst_uids;
	out.n_dst_uids = res.count;
	PACK_REPLY(resp, move_reply, &out);
out:
	count(api, "move", resp);
	store_copy_result_free(&res);
	free(uids);
	store_mailbox_clear(&src);
	store_mailbox_clear(&dst);
	store_account_unref(&acc);
	if (in != NULL)
		mailfleet__v1__move_request__free_unpacked(in, NULL);
}

static void handle_expunge(void *ctx, const struct mf_bus_request *req,
			   struct mf_bus_response *resp)
{
	struct store_api *api = ctx;
	const char *name = subject_account(req, "store.v1.expunge.");
	Mailfleet__V1__ExpungeRequest *in;
	Mailfleet__V1__ExpungeReply out = MAILFLEET__V1__EXPUNGE_REPLY__INIT;
	struct store_mailbox mb = { 0 };
	struct store_account *acc = NULL;
	uint32_t *uids = NULL, *expunged = NULL;
	size_t nuids = 0, nexp = 0;
	const char *err = NULL;

	in = mailfleet__v1__expunge_request__unpack(NULL, req->body_len, req->body);
	if (name == NULL || in == NULL) {
		mf_bus_response_set(resp, MF_BUS_PERMANENT, "malformed expunge request");
		goto out;
	}
	if (!same_account(resp, name, in->account) ||
	    (uids = uids_sorted(in->uids, in->n_uids, &nuids, resp)) == NULL ||
	    (acc = open_account(api, name, resp)) == NULL || !find_mailbox(acc, in->mailbox, &mb, resp))
		goto out;
	if (store_expunge(acc, mb.id, in->n_uids > 0 ? uids : NULL, nuids, &expunged, &nexp,
			  &err) < 0) {
		fail_store(resp, err);
		goto out;
	}
	out.expunged = expunged;
	out.n_expunged = nexp;
	PACK_REPLY(resp, expunge_reply, &out);
out:
	count(api, "expunge", resp);
	free(uids);
	free(expunged);
	store_mailbox_clear(&mb);
	store_account_unref(&acc);
	if (in != NULL)
		mailfleet__v1__expunge_request__free_unpacked(in, NULL);
}

/* --- start and stop ------------------------------------------------------------- */

static void config_changed(struct store_api *api)
{
	unsigned created = 0;
	const char *err;

	/* The frame reloads too; doing it here as well makes sure the
	 * snapshot we read is the new one, whichever handler runs first. */
	if (mf_domains_reload(api->domains_file, &err) < 0) {
		mf_log_warn("store", NULL, "domains.conf reload failed", "error=%s", err);
		return;
	}
	if (store_accounts_ensure(api->store, &created, &err) < 0)
		mf_log_error("store", NULL, "creating account stores failed", "error=%s", err);
	else if (created > 0)
		mf_log_info("store", NULL, "account stores created", "count=%u", created);
}

static void on_config_changed(void *ctx, const char *subject, const uint8_t *data, size_t len)
{
	struct store_api *api = ctx;

	if (!api_enter(api))
		return;
	config_changed(api);
	api_leave(api);
}

/* Runs a handler unless the store is stopping. */
/* Credentials, login attempts, TLS keys (store_api_credentials.c). */
static void handle_credentials(void *ctx, const struct mf_bus_request *req,
			       struct mf_bus_response *resp)
{
	struct store_api *api = ctx;

	count(api, store_api_credentials(api->store, req, resp), resp);
}

static void dispatch(void *ctx, const struct mf_bus_request *req, struct mf_bus_response *resp)
{
	struct store_endpoint *ep = ctx;
	struct store_api *api = ep->api;

	if (!api_enter(api)) {
		mf_bus_response_set(resp, MF_BUS_TEMPORARY, "the account store is shutting down");
		return;
	}
	ep->handler(api, req, resp);
	api_leave(api);
}

static const struct {
	const char *subject;
	mf_bus_request_handler *handler;
} endpoints[] = {
	{ "store.v1.deliver.*", handle_deliver },
	{ "store.v1.authenticate.*", handle_authenticate },
	{ "store.v1.setpassword.*", handle_setpassword },
	{ "store.v1.account.create.*", handle_account_create },
	{ "store.v1.account.remove.*", handle_account_remove },
	{ "store.v1.account.check.*", handle_account_check },
	{ "store.v1.mailboxes.*", handle_mailboxes },
	{ "store.v1.messages.*", handle_messages },
	{ "store.v1.fetch.*", handle_fetch },
	{ "store.v1.flags.*", handle_flags },
	{ "store.v1.move.*", handle_move },
	{ "store.v1.expunge.*", handle_expunge },
	{ "store.v1.credentials.*", handle_credentials },
	{ "store.v1.credoptions.*", handle_credentials },
	{ "store.v1.loginattempt.*", handle_credentials },
	{ "store.v1.loginattempts.*", handle_credentials },
	{ "store.v1.tlspubkey.>", handle_credentials },
};
#define ENDPOINTS_COUNT (sizeof(endpoints) / sizeof(endpoints[0]))

int store_api_serve(struct store *store, const char *domains_file, struct mf_bus *bus,
		    struct mf_metrics *metrics, const char **error_r)
{
	static const struct mf_metric_label labels[] = {
		{ "op", op_values }, { "status", status_values }, { NULL, NULL },
	};
	struct store_api *api = mf_xcalloc(1, sizeof(*api));

	api->domains_file = mf_xstrdup(domains_file);
	api->bus = bus;
	api->store = store;
	pthread_mutex_init(&api->lock, NULL);
	pthread_cond_init(&api->idle, NULL);
	if (metrics != NULL)
		api->requests = mf_metrics_counter(metrics, "mailfleet_imap_store_requests_total",
						   "Store API requests over NATS by operation and "
						   "status.", labels);
	api->endpoints = mf_xcalloc(ENDPOINTS_COUNT, sizeof(*api->endpoints));
	store->api = api;
	if (mf_bus_subscribe(bus, "config.v1.changed", NULL, on_config_changed, api, error_r) < 0)
		return -1;
	for (size_t i = 0; i < ENDPOINTS_COUNT; i++) {
		api->endpoints[i].api = api;
		api->endpoints[i].handler = endpoints[i].handler;
		if (mf_bus_serve(bus, endpoints[i].subject, "imap", MF_SERVICE_BUS_WORKERS, dispatch,
				 &api->endpoints[i], error_r) < 0)
			return -1;
	}
	return 0;
}

int store_start(struct mf_service *svc, struct store **store_r, const char **error_r)
{
	const struct mf_config *cfg = mf_service_config(svc);
	struct store_settings set = {
		.data_dir = cfg->data_dir, .blob_dir = cfg->blob_dir, .config_dir = cfg->dir,
		.domains_file = NULL, .bus = mf_service_bus(svc),
	};
	struct store *store = NULL;
	unsigned created = 0;
	const char *err;

	*store_r = NULL;
	if (cfg->data_dir == NULL || cfg->blob_dir == NULL) {
		*error_r = "imap: data-dir is not set in mailfleet.conf";
		return -1;
	}
	if (store_create(&set, &store, error_r) < 0)
		return -1;
	/* A failure here is logged, not fatal: the stores are created again
	 * on the next config.v1.changed or on first use. */
	if (store_accounts_ensure(store, &created, &err) < 0)
		mf_log_error("store", NULL, "creating account stores failed", "error=%s", err);
	else if (created > 0)
		mf_log_info("store", NULL, "account stores created", "count=%u", created);
	if (store_api_serve(store, cfg->domains_file, mf_service_bus(svc),
			    mf_service_metrics(svc), error_r) < 0) {
		/* The bus may already call handlers with the API state, and the
		 * service exits after a start failure: it stays allocated. */
		mf_log_error("store", NULL, "store API start failed", "error=%s", *error_r);
		return -1;
	}
	*store_r = store;
	return 0;
}

/* API states outlive store_stop: the bus may call dispatch until it
 * closes, after the stop hook.  They are freed at exit (or by tests after
 * closing the bus) with store_api_free_stopped. */
static pthread_mutex_t stopped_lock = PTHREAD_MUTEX_INITIALIZER;
static struct store_api *stopped_apis;
static bool stopped_atexit;

void store_api_free_stopped(void)
{
	struct store_api *list;

	pthread_mutex_lock(&stopped_lock);
	list = stopped_apis;
	stopped_apis = NULL;
	pthread_mutex_unlock(&stopped_lock);
	while (list != NULL) {
		struct store_api *api = list;

		list = api->next_stopped;
		pthread_mutex_destroy(&api->lock);
		pthread_cond_destroy(&api->idle);
		free(api->endpoints);
		free(api->domains_file);
		free(api);
	}
}

void store_stop(struct store **storep)
{
	struct store *store = *storep;
	struct store_api *api;

	if (store == NULL)
		return;
	*storep = NULL;
	api = store->api;
	/* New requests get a temporary error; wait for those in flight. */
	pthread_mutex_lock(&api->lock);
	api->stopping = true;
	while (api->inflight > 0)
		pthread_cond_wait(&api->idle, &api->lock);
	pthread_mutex_unlock(&api->lock);
	pthread_mutex_lock(&stopped_lock);
	api->next_stopped = stopped_apis;
	stopped_apis = api;
	if (!stopped_atexit) {
		stopped_atexit = true;
		atexit(store_api_free_stopped);
	}
	pthread_mutex_unlock(&stopped_lock);
	/* Sessions that outlived the drain timeout may still hold accounts:
	 * then the store stays open (every commit is durable already) and
	 * the process exits with it. */
	if (store_accounts_referenced(store)) {
		mf_log_warn("store", NULL, "accounts still in use at stop; store left open", NULL);
		return;
	}
	api->store = NULL;
	store_free(&store);
	mf_log(MF_LOG_INFO, "store", NULL, "store closed", NULL);
}
