#include "queue_add.h"
#include "queue_ctx.h"
#include "queue_dispatch.h"
#include "queue_holdrules.h"
#include "queue_schedule.h"
#include "queue_suppress.h"
#include "buf.h"
#include "error.h"
#include "log.h"

#include "queue.pb-c.h"

#include <stdlib.h>
#include <string.h>

#define PKG "queue"

static bool field_ok(const char *s, size_t max)
{
	return s != NULL && strnlen(s, max + 1) <= max;
}

/* Bounds every field that arrives from another service. */
static const char *check_request(const Mailfleet__V1__QueueAddRequest *r, int64_t now)
{
	if (r->n_recipients == 0)
		return "no recipients";
	if (r->n_recipients > QUEUE_ADD_RCPTS_MAX)
		return mf_errorf("too many recipients (max %d)", QUEUE_ADD_RCPTS_MAX);
	if (!field_ok(r->blob_key, QUEUE_ADD_FIELD_MAX) || *r->blob_key == '\0')
		return "blob_key missing";
	if (strncmp(r->blob_key, "incoming/", 9) != 0)
		return "blob_key must be under incoming/";
	if (!field_ok(r->account, QUEUE_ADD_FIELD_MAX) || !field_ok(r->mail_from, QUEUE_ADD_ADDRESS_MAX) ||
	    !field_ok(r->message_id, QUEUE_ADD_FIELD_MAX) || !field_ok(r->dsn_envid, QUEUE_ADD_FIELD_MAX) ||
	    !field_ok(r->dsn_ret, 8) || !field_ok(r->transport, QUEUE_ADD_FIELD_MAX) ||
	    !field_ok(r->cid, QUEUE_ADD_FIELD_MAX))
		return "a field is too long";
	if (*r->dsn_ret != '\0' && strcmp(r->dsn_ret, "FULL") != 0 && strcmp(r->dsn_ret, "HDRS") != 0)
		return "dsn_ret must be FULL, HDRS or empty";
	if (r->max_attempts > QUEUE_MAX_ATTEMPTS_LIMIT)
		return mf_errorf("max_attempts above %d", QUEUE_MAX_ATTEMPTS_LIMIT);
	if (r->release_unix_ms > now + QUEUE_ADD_RELEASE_MAX_MS)
		return "release time more than 60 days ahead";
	if (r->n_extra > QUEUE_ADD_EXTRA_MAX)
		return mf_errorf("too many extra fields (max %d)", QUEUE_ADD_EXTRA_MAX);
	for (size_t i = 0; i < r->n_extra; i++)
		if (!field_ok(r->extra[i]->key, QUEUE_ADD_FIELD_MAX) || *r->extra[i]->key == '\0' ||
		    !field_ok(r->extra[i]->value, QUEUE_ADD_FIELD_MAX))
			return "bad extra field";
	for (size_t i = 0; i < r->n_recipients; i++) {
		const Mailfleet__V1__QueueRecipient *q = r->recipients[i];
		if (!field_ok(q->address, QUEUE_ADD_ADDRESS_MAX) || strchr(q->address, '@') == NULL)
			return mf_errorf("recipient %zu: not an address", i + 1);
		if (!field_ok(q->dsn_orcpt, QUEUE_ADD_ADDRESS_MAX + 32) || q->dsn_notify > 15)
			return mf_errorf("recipient %zu: bad DSN parameters", i + 1);
	}
	return NULL;
}

void queue_add_handler(void *arg, const struct mf_bus_request *req, struct mf_bus_response *resp)
{
	struct queue_ctx *ctx = arg;
	Mailfleet__V1__QueueAddRequest *r;
	Mailfleet__V1__QueueAddReply reply = MAILFLEET__V1__QUEUE_ADD_REPLY__INIT;
	struct queue_row *rows = NULL;
	struct queue_outcome_item *items = NULL;
	struct queue_cleanup cl = { 0 };
	size_t nitems = 0;
	char *qkey = NULL, *from_domain = NULL;
	const char *error = NULL, *bad;
	int64_t now = queue_now_ms();
	bool linked = false;

	r = mailfleet__v1__queue_add_request__unpack(NULL, req->body_len, req->body);
	if (r == NULL) {
		mf_bus_response_set(resp, MF_BUS_PERMANENT, "malformed QueueAddRequest");
		return;
	}
	if ((bad = check_request(r, now)) != NULL) {
		mf_bus_response_set(resp, MF_BUS_PERMANENT, "queue.v1.add: %s", bad);
		goto out;
	}
	qkey = mf_xasprintf("queue/%lld-%llu", (long long)now,
			    (unsigned long long)queue_next_seq(ctx));
	from_domain = queue_address_domain(r->mail_from);
	rows = mf_xcalloc(r->n_recipients, sizeof(*rows));
	items = mf_xcalloc(r->n_recipients, sizeof(*items));
	reply.ids = mf_xcalloc(r->n_recipients, sizeof(*reply.ids));

	/* Linked under the lock, so that the orphan sweep never sees the key
	 * between the link and the commit. */
	queue_db_lock(ctx->db);
	if (mf_blob_link(ctx->blobs, r->blob_key, qkey, &error) < 0) {
		queue_db_unlock(ctx->db);
		mf_bus_response_set(resp, MF_BUS_TEMPORARY, "queue: %s", error);
		goto out;
	}
	linked = true;
	if (queue_db_begin(ctx->db, &error) < 0)
		goto dberr;
	for (size_t i = 0; i < r->n_recipients; i++) {
		struct queue_row *row = &rows[i];
		char *reason = NULL;
		int held, sup;

		row->base_id = i == 0 ? 0 : rows[0].base_id;
		row->account = mf_xstrdup(r->account);
		row->mail_from = mf_xstrdup(r->mail_from);
		row->from_domain = mf_xstrdup(from_domain);
		row->rcpt = mf_xstrdup(r->recipients[i]->address);
		row->rcpt_domain = queue_address_domain(row->rcpt);
		row->dsn_notify = r->recipients[i]->dsn_notify;
		row->dsn_orcpt = mf_xstrdup(r->recipients[i]->dsn_orcpt);
		row->dsn_envid = mf_xstrdup(r->dsn_envid);
		row->dsn_ret = mf_xstrdup(r->dsn_ret);
		row->blob_key = mf_xstrdup(qkey);
		row->size = r->size;
		row->message_id = mf_xstrdup(r->message_id);
		row->cid = mf_xstrdup(*r->cid != '\0' ? r->cid : req->cid);
		row->transport = mf_xstrdup(r->transport);
		row->queued_ms = now;
		/* The same time for every recipient, so that those at one domain
		 * are due together and go in one transaction. */
		row->next_attempt_ms = r->release_unix_ms > now ? r->release_unix_ms : now;
		row->max_attempts = r->max_attempts > 0 ? r->max_attempts : QUEUE_MAX_ATTEMPTS_DEFAULT;
		row->requiretls = r->requiretls;
		row->smtputf8 = r->smtputf8;
		row->has_8bit = r->has_8bit;
		held = queue_holdrules_check(ctx->db, r->account, from_domain, row->rcpt_domain,
					     &error);
		if (held < 0)
			goto dberr;
		row->held = held == 1;
		if (queue_db_insert(ctx->db, row, &error) < 0)
			goto dberr;
		reply.ids[i] = row->id;
		sup = *r->account != '\0' ?
		      queue_suppress_check(ctx->db, r->account, row->rcpt, &reason, &error) : 0;
		if (sup < 0)
			goto dberr;
		if (sup == 1) {
			/* Fails at once, with a DSN, without an attempt. */
			items[nitems].row = row;
			items[nitems].permanent = true;
			items[nitems].code = 550;
			items[nitems].enhanced = "5.7.1";
			items[nitems].text = "recipient address is on the suppression list of "
					     "the sending account";
			nitems++;
			mf_log_info(PKG, row->cid, "recipient suppressed", "rcpt=%s reason=%s",
				    row->rcpt, reason);
		}
		free(reason);
	}
	reply.base_id = rows[0].base_id;
	reply.n_ids = r->n_recipients;
	for (size_t i = 0; i < r->n_extra; i++)
		if (queue_db_extra_add(ctx->db, reply.base_id, r->extra[i]->key, r->extra[i]->value,
				       &error) < 0)
			goto dberr;
	if (nitems > 0 && queue_apply_outcomes(ctx, items, nitems, now, &cl, &error) < 0)
		goto dberr;
	if (queue_db_commit(ctx->db, &error) < 0)
		goto dberr;
	queue_db_unlock(ctx->db);
	queue_cleanup_finish(ctx, &cl, true);
	ctx->added_total++;
	mf_log_info(PKG, rows[0].cid, "queued", "base=%lld from=%s rcpts=%zu size=%llu key=%s",
		    (long long)reply.base_id, r->mail_from, r->n_recipients,
		    (unsigned long long)r->size, qkey);
	queue_wake(ctx);
	{
		size_t len = mailfleet__v1__queue_add_reply__get_packed_size(&reply);
		uint8_t *buf = mf_xmalloc(len > 0 ? len : 1);
		mailfleet__v1__queue_add_reply__pack(&reply, buf);
		mf_bus_response_take_body(resp, buf, len);
	}
	goto out;
dberr:
	queue_db_rollback(ctx->db);
	mf_log_error(PKG, req->cid, "queueing failed", "err=%s", error);
	mf_bus_response_set(resp, MF_BUS_TEMPORARY, "queue: %s", error);
	if (linked && mf_blob_delete(ctx->blobs, qkey, &error) < 0)
		mf_log_warn(PKG, req->cid, "removing queue blob failed", "err=%s", error);
	queue_db_unlock(ctx->db);
	queue_cleanup_finish(ctx, &cl, false);
out:
	if (rows != NULL)
		for (size_t i = 0; i < r->n_recipients; i++)
			queue_row_clear(&rows[i]);
	free(rows);
	free(items);
	free(reply.ids);
	free(qkey);
	free(from_domain);
	mailfleet__v1__queue_add_request__free_unpacked(r, NULL);
}
