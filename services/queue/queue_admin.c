#include "queue_admin.h"
#include "queue_dispatch.h"
#include "queue_holdrules.h"
#include "queue_retired.h"
#include "queue_suppress.h"
#include "buf.h"
#include "domains.h"
#include "error.h"
#include "log.h"
#include "service.h"

#include "queue.pb-c.h"

#include <stdlib.h>
#include <string.h>

#define PKG "queue"
#define QUEUE_ADMIN_FIELD_MAX 1024

enum queue_op {
	OP_HOLD, OP_RELEASE, OP_FAIL, OP_DROP, OP_RESCHEDULE, OP_TRANSPORT, OP_REQUIRETLS,
};

struct op_ctx {
	struct queue_ctx *q;
	enum queue_op op;
};

static bool field_ok(const char *s)
{
	return s != NULL && strnlen(s, QUEUE_ADMIN_FIELD_MAX + 1) <= QUEUE_ADMIN_FIELD_MAX;
}

static const char *filter_from_proto(const Mailfleet__V1__QueueFilter *pf, struct queue_filter *f)
{
	memset(f, 0, sizeof(*f));
	f->held = -1;
	if (pf == NULL)
		return NULL;
	if (!field_ok(pf->account) || !field_ok(pf->from_domain) || !field_ok(pf->to_domain) ||
	    !field_ok(pf->transport))
		return "filter field too long";
	f->ids = pf->ids;
	f->nids = pf->n_ids;
	f->account = pf->account;
	f->from_domain = pf->from_domain;
	f->to_domain = pf->to_domain;
	f->held = pf->held == MAILFLEET__V1__QUEUE_FILTER__HELD__HELD ? 1 :
		  pf->held == MAILFLEET__V1__QUEUE_FILTER__HELD__NOT_HELD ? 0 : -1;
	f->next_before_ms = pf->next_attempt_before_unix_ms;
	f->next_after_ms = pf->next_attempt_after_unix_ms;
	f->transport = pf->match_transport ? pf->transport : NULL;
	return NULL;
}

static void reply_packed(struct mf_bus_response *resp, const ProtobufCMessage *m)
{
	size_t len = protobuf_c_message_get_packed_size(m);
	uint8_t *buf = mf_xmalloc(len > 0 ? len : 1);

	protobuf_c_message_pack(m, buf);
	mf_bus_response_take_body(resp, buf, len);
}

static void handle_list(void *arg, const struct mf_bus_request *req, struct mf_bus_response *resp)
{
	struct queue_ctx *ctx = arg;
	Mailfleet__V1__QueueListRequest *r;
	Mailfleet__V1__QueueListReply reply = MAILFLEET__V1__QUEUE_LIST_REPLY__INIT;
	Mailfleet__V1__QueueMessage *msgs = NULL, **msgp = NULL;
	struct queue_attempt **atts = NULL;
	size_t *natts = NULL;
	Mailfleet__V1__QueueAttempt **attp_all = NULL;
	struct queue_filter f;
	struct queue_row *rows = NULL;
	size_t n = 0, nrows = 0, limit = 0, total_atts = 0, k = 0;
	const char *error, *bad;

	r = mailfleet__v1__queue_list_request__unpack(NULL, req->body_len, req->body);
	if (r == NULL) {
		mf_bus_response_set(resp, MF_BUS_PERMANENT, "malformed QueueListRequest");
		return;
	}
	if ((bad = filter_from_proto(r->filter, &f)) != NULL) {
		mf_bus_response_set(resp, MF_BUS_PERMANENT, "%s", bad);
		goto out;
	}
	limit = r->limit == 0 ? QUEUE_ADMIN_LIST_DEFAULT : r->limit;
	if (limit > QUEUE_ADMIN_LIST_MAX)
		limit = QUEUE_ADMIN_LIST_MAX;
	queue_db_lock(ctx->db);
	if (queue_db_select(ctx->db, &f, r->after_id, limit + 1, &rows, &n, &error) < 0) {
		queue_db_unlock(ctx->db);
		mf_bus_response_set(resp, MF_BUS_TEMPORARY, "queue: %s", error);
		goto out;
	}
	nrows = n;
	if (n > limit) {
		reply.next_after_id = rows[limit - 1].id;
		n = limit;
	}
	atts = mf_xcalloc(n + 1, sizeof(*atts));
	natts = mf_xcalloc(n + 1, sizeof(*natts));
	for (size_t i = 0; i < n; i++) {
		if (queue_db_attempts(ctx->db, rows[i].id, &atts[i], &natts[i], &error) < 0)
			natts[i] = 0;
		total_atts += natts[i];
	}
	queue_db_unlock(ctx->db);

	msgs = mf_xcalloc(n + 1, sizeof(*msgs));
	msgp = mf_xcalloc(n + 1, sizeof(*msgp));
	attp_all = mf_xcalloc(total_atts + 1, sizeof(*attp_all));
	for (size_t i = 0; i < n; i++) {
		Mailfleet__V1__QueueMessage *m = &msgs[i];
		mailfleet__v1__queue_message__init(m);
		m->id = rows[i].id;
		m->base_id = rows[i].base_id;
		m->account = rows[i].account;
		m->mail_from = rows[i].mail_from;
		m->recipient = rows[i].rcpt;
		m->queued_unix_ms = rows[i].queued_ms;
		m->next_attempt_unix_ms = rows[i].next_attempt_ms;
		m->attempts = rows[i].attempts;
		m->max_attempts = rows[i].max_attempts;
		m->held = rows[i].held;
		m->transport = rows[i].transport;
		m->requiretls = rows[i].requiretls;
		m->size = rows[i].size;
		m->message_id = rows[i].message_id;
		m->leased = rows[i].lease_until_ms > queue_now_ms();
		m->results = &attp_all[k];
		m->n_results = natts[i];
		for (size_t j = 0; j < natts[i]; j++) {
			Mailfleet__V1__QueueAttempt *a = mf_xmalloc(sizeof(*a));
			mailfleet__v1__queue_attempt__init(a);
			a->at_unix_ms = atts[i][j].at_ms;
			a->code = atts[i][j].code;
			a->enhanced_code = atts[i][j].enhanced;
			a->text = atts[i][j].text;
			a->host = atts[i][j].host;
			a->tls = atts[i][j].tls;
			a->duration_ms = atts[i][j].duration_ms;
			attp_all[k++] = a;
		}
		msgp[i] = m;
	}
	reply.messages = msgp;
	reply.n_messages = n;
	reply_packed(resp, &reply.base);
out:
	for (size_t i = 0; i < k; i++)
		free(attp_all[i]);
	free(attp_all);
	if (atts != NULL)
		for (size_t i = 0; i < n; i++)
			queue_attempts_free(&atts[i], natts[i]);
	free(atts);
	free(natts);
	free(msgs);
	free(msgp);
	queue_rows_free(&rows, nrows);
	mailfleet__v1__queue_list_request__free_unpacked(r, NULL);
}

/* A message's own transport: "" (the routes decide), a built-in one, or
 * one configured now; a worker that later finds it removed keeps the
 * message queued with a temporary error. */
static bool transport_known(const char *name)
{
	struct mf_domains *d;
	bool ok;

	if (*name == '\0' || strcmp(name, "direct") == 0 || strcmp(name, "local") == 0)
		return true;
	d = mf_domains_current();
	ok = d != NULL && mf_domains_find_transport(d, name) != NULL;
	mf_domains_unref(&d);
	return ok;
}

static void handle_op(void *arg, const struct mf_bus_request *req, struct mf_bus_response *resp)
{
	struct op_ctx *oc = arg;
	struct queue_ctx *ctx = oc->q;
	Mailfleet__V1__QueueOpRequest *r;
	Mailfleet__V1__QueueOpReply reply = MAILFLEET__V1__QUEUE_OP_REPLY__INIT;
	struct queue_outcome_item *items = NULL;
	struct queue_cleanup cl = { 0 };
	struct queue_filter f;
	struct queue_row *rows = NULL;
	size_t n = 0, count = 0;
	const char *error = NULL, *bad;
	int64_t now = queue_now_ms();

	r = mailfleet__v1__queue_op_request__unpack(NULL, req->body_len, req->body);
	if (r == NULL) {
		mf_bus_response_set(resp, MF_BUS_PERMANENT, "malformed QueueOpRequest");
		return;
	}
	if ((bad = filter_from_proto(r->filter, &f)) != NULL || !field_ok(r->transport)) {
		mf_bus_response_set(resp, MF_BUS_PERMANENT, "%s", bad != NULL ? bad : "transport too long");
		goto out;
	}
	if (oc->op == OP_TRANSPORT && !transport_known(r->transport)) {
		mf_bus_response_set(resp, MF_BUS_PERMANENT, "no transport named %s in domains.conf "
				    "(or direct, local, \"\" for the routes)", r->transport);
		goto out;
	}
	queue_db_lock(ctx->db);
	if (queue_db_begin(ctx->db, &error) < 0 ||
	    queue_db_select(ctx->db, &f, 0, QUEUE_ADMIN_OP_MAX, &rows, &n, &error) < 0)
		goto dberr;
	items = mf_xcalloc(n + 1, sizeof(*items));
	for (size_t i = 0; i < n; i++) {
		struct queue_row *row = &rows[i];
		bool changed = true;

		switch (oc->op) {
		case OP_HOLD:
			changed = !row->held;
			row->held = true;
			break;
		case OP_RELEASE:
			changed = row->held;
			row->held = false;
			break;
		case OP_RESCHEDULE:
			row->next_attempt_ms = r->next_attempt_unix_ms > 0 ? r->next_attempt_unix_ms :
					       now + r->add_ms;
			break;
		case OP_TRANSPORT:
			free(row->transport);
			row->transport = mf_xstrdup(r->transport);
			break;
		case OP_REQUIRETLS:
			row->requiretls = r->requiretls;
			break;
		case OP_FAIL:
			items[count].row = row;
			items[count].permanent = true;
			items[count].enhanced = "5.0.0";
			items[count].text = "delivery failed by the mail server's administrator";
			count++;
			continue;
		case OP_DROP:
			if (queue_retired_add(ctx->db, row, false, now, &error) < 0)
				goto dberr;
			if (queue_db_blob_refs(ctx->db, row->blob_key, &error) == 0) {
				cl.after_commit = mf_xrealloc(cl.after_commit,
							      (cl.ncommit + 1) * sizeof(char *));
				cl.after_commit[cl.ncommit++] = mf_xstrdup(row->blob_key);
			}
			count++;
			continue;
		}
		if (changed) {
			if (queue_db_update(ctx->db, row, &error) < 0)
				goto dberr;
			count++;
		}
	}
	if (oc->op == OP_FAIL && queue_apply_outcomes(ctx, items, count, now, &cl, &error) < 0)
		goto dberr;
	if (queue_db_commit(ctx->db, &error) < 0)
		goto dberr;
	queue_db_unlock(ctx->db);
	queue_cleanup_finish(ctx, &cl, true);
	queue_wake(ctx);
	mf_log_info(PKG, req->cid, "admin operation", "subject=%s count=%zu", req->subject, count);
	reply.count = (uint32_t)count;
	reply_packed(resp, &reply.base);
	goto out;
dberr:
	queue_db_rollback(ctx->db);
	queue_db_unlock(ctx->db);
	queue_cleanup_finish(ctx, &cl, false);
	mf_bus_response_set(resp, MF_BUS_TEMPORARY, "queue: %s", error);
out:
	free(items);
	queue_rows_free(&rows, n);
	mailfleet__v1__queue_op_request__free_unpacked(r, NULL);
}

static void handle_holdrule_list(void *arg, const struct mf_bus_request *req,
				 struct mf_bus_response *resp)
{
	struct queue_ctx *ctx = arg;
	Mailfleet__V1__HoldRuleListReply reply = MAILFLEET__V1__HOLD_RULE_LIST_REPLY__INIT;
	struct queue_holdrule *rules = NULL;
	Mailfleet__V1__HoldRule *pr = NULL, **prp = NULL;
	size_t n = 0;
	const char *error;

	queue_db_lock(ctx->db);
	if (queue_holdrules_list(ctx->db, &rules, &n, &error) < 0) {
		queue_db_unlock(ctx->db);
		mf_bus_response_set(resp, MF_BUS_TEMPORARY, "queue: %s", error);
		return;
	}
	queue_db_unlock(ctx->db);
	pr = mf_xcalloc(n + 1, sizeof(*pr));
	prp = mf_xcalloc(n + 1, sizeof(*prp));
	for (size_t i = 0; i < n; i++) {
		mailfleet__v1__hold_rule__init(&pr[i]);
		pr[i].id = rules[i].id;
		pr[i].account = rules[i].account;
		pr[i].from_domain = rules[i].from_domain;
		pr[i].to_domain = rules[i].to_domain;
		prp[i] = &pr[i];
	}
	reply.rules = prp;
	reply.n_rules = n;
	reply_packed(resp, &reply.base);
	free(pr);
	free(prp);
	queue_holdrules_free(&rules, n);
}

static void handle_holdrule_add(void *arg, const struct mf_bus_request *req,
				struct mf_bus_response *resp)
{
	struct queue_ctx *ctx = arg;
	Mailfleet__V1__HoldRuleAddRequest *r;
	Mailfleet__V1__HoldRuleAddReply reply = MAILFLEET__V1__HOLD_RULE_ADD_REPLY__INIT;
	Mailfleet__V1__HoldRule out = MAILFLEET__V1__HOLD_RULE__INIT;
	struct queue_holdrule rule;
	unsigned held = 0;
	const char *error;

	r = mailfleet__v1__hold_rule_add_request__unpack(NULL, req->body_len, req->body);
	if (r == NULL || r->rule == NULL || !field_ok(r->rule->account) ||
	    !field_ok(r->rule->from_domain) || !field_ok(r->rule->to_domain)) {
		mf_bus_response_set(resp, MF_BUS_PERMANENT, "malformed HoldRuleAddRequest");
		goto out;
	}
	rule.id = 0;
	rule.account = r->rule->account;
	rule.from_domain = r->rule->from_domain;
	rule.to_domain = r->rule->to_domain;
	queue_db_lock(ctx->db);
	if (queue_db_begin(ctx->db, &error) < 0 ||
	    queue_holdrules_add(ctx->db, &rule, &held, &error) < 0 ||
	    queue_db_commit(ctx->db, &error) < 0) {
		queue_db_rollback(ctx->db);
		queue_db_unlock(ctx->db);
		mf_bus_response_set(resp, MF_BUS_TEMPORARY, "queue: %s", error);
		goto out;
	}
	queue_db_unlock(ctx->db);
	out.id = rule.id;
	out.account = rule.account;
	out.from_domain = rule.from_domain;
	out.to_domain = rule.to_domain;
	reply.rule = &out;
	reply.held = held;
	reply_packed(resp, &reply.base);
out:
	if (r != NULL)
		mailfleet__v1__hold_rule_add_request__free_unpacked(r, NULL);
}

static void handle_holdrule_remove(void *arg, const struct mf_bus_request *req,
				   struct mf_bus_response *resp)
{
	struct queue_ctx *ctx = arg;
	Mailfleet__V1__HoldRuleRemoveRequest *r;
	Mailfleet__V1__HoldRuleRemoveReply reply = MAILFLEET__V1__HOLD_RULE_REMOVE_REPLY__INIT;
	const char *error;
	int got;

	r = mailfleet__v1__hold_rule_remove_request__unpack(NULL, req->body_len, req->body);
	if (r == NULL) {
		mf_bus_response_set(resp, MF_BUS_PERMANENT, "malformed HoldRuleRemoveRequest");
		return;
	}
	queue_db_lock(ctx->db);
	got = queue_holdrules_remove(ctx->db, r->id, &error);
	queue_db_unlock(ctx->db);
	if (got < 0)
		mf_bus_response_set(resp, MF_BUS_TEMPORARY, "queue: %s", error);
	else if (got == 0)
		mf_bus_response_set(resp, MF_BUS_PERMANENT, "no hold rule %lld", (long long)r->id);
	else
		reply_packed(resp, &reply.base);
	mailfleet__v1__hold_rule_remove_request__free_unpacked(r, NULL);
}

static void handle_suppression_list(void *arg, const struct mf_bus_request *req,
				    struct mf_bus_response *resp)
{
	struct queue_ctx *ctx = arg;
	Mailfleet__V1__SuppressionListRequest *r;
	Mailfleet__V1__SuppressionListReply reply = MAILFLEET__V1__SUPPRESSION_LIST_REPLY__INIT;
	struct queue_suppression *l = NULL;
	Mailfleet__V1__Suppression *ps = NULL, **psp = NULL;
	size_t n = 0;
	const char *error;

	r = mailfleet__v1__suppression_list_request__unpack(NULL, req->body_len, req->body);
	if (r == NULL || !field_ok(r->account)) {
		mf_bus_response_set(resp, MF_BUS_PERMANENT, "malformed SuppressionListRequest");
		goto out;
	}
	queue_db_lock(ctx->db);
	if (queue_suppress_list(ctx->db, r->account, &l, &n, &error) < 0) {
		queue_db_unlock(ctx->db);
		mf_bus_response_set(resp, MF_BUS_TEMPORARY, "queue: %s", error);
		goto out;
	}
	queue_db_unlock(ctx->db);
	ps = mf_xcalloc(n + 1, sizeof(*ps));
	psp = mf_xcalloc(n + 1, sizeof(*psp));
	for (size_t i = 0; i < n; i++) {
		mailfleet__v1__suppression__init(&ps[i]);
		ps[i].account = l[i].account;
		ps[i].address = l[i].address;
		ps[i].reason = l[i].reason;
		ps[i].manual = l[i].manual;
		ps[i].created_unix_ms = l[i].created_ms;
		psp[i] = &ps[i];
	}
	reply.suppressions = psp;
	reply.n_suppressions = n;
	reply_packed(resp, &reply.base);
out:
	free(ps);
	free(psp);
	queue_suppress_list_free(&l, n);
	if (r != NULL)
		mailfleet__v1__suppression_list_request__free_unpacked(r, NULL);
}

static void handle_suppression_add(void *arg, const struct mf_bus_request *req,
				   struct mf_bus_response *resp)
{
	struct queue_ctx *ctx = arg;
	Mailfleet__V1__SuppressionAddRequest *r;
	Mailfleet__V1__SuppressionAddReply reply = MAILFLEET__V1__SUPPRESSION_ADD_REPLY__INIT;
	const char *error;
	int got;

	r = mailfleet__v1__suppression_add_request__unpack(NULL, req->body_len, req->body);
	if (r == NULL || r->suppression == NULL || !field_ok(r->suppression->account) ||
	    *r->suppression->account == '\0' || !field_ok(r->suppression->address) ||
	    strchr(r->suppression->address, '@') == NULL || !field_ok(r->suppression->reason)) {
		mf_bus_response_set(resp, MF_BUS_PERMANENT,
				    "suppression: need an account and an address");
		goto out;
	}
	queue_db_lock(ctx->db);
	got = queue_suppress_add(ctx->db, r->suppression->account, r->suppression->address,
				 *r->suppression->reason != '\0' ? r->suppression->reason :
				 "added by the administrator", true, queue_now_ms(), &error);
	queue_db_unlock(ctx->db);
	if (got < 0)
		mf_bus_response_set(resp, MF_BUS_TEMPORARY, "queue: %s", error);
	else
		reply_packed(resp, &reply.base);
out:
	if (r != NULL)
		mailfleet__v1__suppression_add_request__free_unpacked(r, NULL);
}

static void handle_suppression_remove(void *arg, const struct mf_bus_request *req,
				      struct mf_bus_response *resp)
{
	struct queue_ctx *ctx = arg;
	Mailfleet__V1__SuppressionRemoveRequest *r;
	Mailfleet__V1__SuppressionRemoveReply reply = MAILFLEET__V1__SUPPRESSION_REMOVE_REPLY__INIT;
	const char *error;
	int got;

	r = mailfleet__v1__suppression_remove_request__unpack(NULL, req->body_len, req->body);
	if (r == NULL || !field_ok(r->account) || !field_ok(r->address)) {
		mf_bus_response_set(resp, MF_BUS_PERMANENT, "malformed SuppressionRemoveRequest");
		goto out;
	}
	queue_db_lock(ctx->db);
	got = queue_suppress_remove(ctx->db, r->account, r->address, &error);
	queue_db_unlock(ctx->db);
	if (got < 0) {
		mf_bus_response_set(resp, MF_BUS_TEMPORARY, "queue: %s", error);
	} else {
		reply.removed = got == 1;
		reply_packed(resp, &reply.base);
	}
out:
	if (r != NULL)
		mailfleet__v1__suppression_remove_request__free_unpacked(r, NULL);
}

int queue_admin_serve(struct queue_ctx *ctx, const char **error_r)
{
	static struct op_ctx ops[] = {
		{ NULL, OP_HOLD }, { NULL, OP_RELEASE }, { NULL, OP_FAIL }, { NULL, OP_DROP },
		{ NULL, OP_RESCHEDULE }, { NULL, OP_TRANSPORT }, { NULL, OP_REQUIRETLS },
	};
	static const char *const op_subjects[] = {
		"queue.v1.admin.hold", "queue.v1.admin.release", "queue.v1.admin.fail",
		"queue.v1.admin.drop", "queue.v1.admin.reschedule", "queue.v1.admin.transport",
		"queue.v1.admin.requiretls",
	};
	static const struct {
		const char *subject;
		mf_bus_request_handler *handler;
	} plain[] = {
		{ "queue.v1.admin.list", handle_list },
		{ "queue.v1.admin.holdrule.list", handle_holdrule_list },
		{ "queue.v1.admin.holdrule.add", handle_holdrule_add },
		{ "queue.v1.admin.holdrule.remove", handle_holdrule_remove },
		{ "queue.v1.admin.suppression.list", handle_suppression_list },
		{ "queue.v1.admin.suppression.add", handle_suppression_add },
		{ "queue.v1.admin.suppression.remove", handle_suppression_remove },
	};
	struct mf_bus *bus = ctx->bus;

	for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
		ops[i].q = ctx;
		if (mf_bus_serve(bus, op_subjects[i], "queue", 1, handle_op, &ops[i], error_r) < 0)
			return -1;
	}
	for (size_t i = 0; i < sizeof(plain) / sizeof(plain[0]); i++)
		if (mf_bus_serve(bus, plain[i].subject, "queue", 1, plain[i].handler, ctx,
				 error_r) < 0)
			return -1;
	return 0;
}
