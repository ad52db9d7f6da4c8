#include "queue_dispatch.h"
#include "queue_dsn.h"
#include "queue_retired.h"
#include "queue_schedule.h"
#include "queue_suppress.h"
#include "buf.h"
#include "domains.h"
#include "error.h"
#include "log.h"

#include "delivery.pb-c.h"
#include "store.pb-c.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#define PKG "queue"
/* Timeouts towards NATS from the dispatcher. */
#define QUEUE_PUBLISH_TIMEOUT_MS 5000
#define QUEUE_STORE_TIMEOUT_MS 10000
/* A job that could not be published is tried again this much later. */
#define QUEUE_PUBLISH_RETRY_MS 5000
/* Longest sleep of the dispatcher when nothing is due. */
#define QUEUE_IDLE_MS 1000
/* Retired history is pruned this often. */
#define QUEUE_CLEANUP_EVERY_MS (3600 * 1000LL)

int64_t queue_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

uint64_t queue_next_seq(struct queue_ctx *ctx)
{
	uint64_t v;

	pthread_mutex_lock(&ctx->seq_lock);
	v = ++ctx->seq;
	pthread_mutex_unlock(&ctx->seq_lock);
	return v;
}

void queue_wake(struct queue_ctx *ctx)
{
	pthread_mutex_lock(&ctx->wake_lock);
	ctx->wake_flag = true;
	pthread_cond_signal(&ctx->wake_cond);
	pthread_mutex_unlock(&ctx->wake_lock);
}

static void list_add(char ***list, size_t *n, const char *s)
{
	for (size_t i = 0; i < *n; i++)
		if (strcmp((*list)[i], s) == 0)
			return;
	*list = mf_xrealloc(*list, (*n + 1) * sizeof(**list));
	(*list)[(*n)++] = mf_xstrdup(s);
}

void queue_cleanup_finish(struct queue_ctx *ctx, struct queue_cleanup *cl, bool committed)
{
	char **keys = committed ? cl->after_commit : cl->after_rollback;
	size_t n = committed ? cl->ncommit : cl->nrollback;
	const char *error;

	for (size_t i = 0; i < n; i++)
		if (mf_blob_delete(ctx->blobs, keys[i], &error) < 0)
			mf_log_warn(PKG, NULL, "removing blob failed", "key=%s err=%s", keys[i], error);
	for (size_t i = 0; i < cl->ncommit; i++)
		free(cl->after_commit[i]);
	for (size_t i = 0; i < cl->nrollback; i++)
		free(cl->after_rollback[i]);
	free(cl->after_commit);
	free(cl->after_rollback);
	memset(cl, 0, sizeof(*cl));
	/* No wake here: removing blobs makes nothing due.  Callers wake the
	 * dispatcher when their commit did (queue_add, queue_admin, results
	 * that scheduled a retry or a DSN). */
}

/* Reads the original message for a DSN: the whole of it up to the DSN's
 * limit (more is cut; queue_dsn then sends the header only). */
static char *read_original(struct queue_ctx *ctx, const char *key, size_t *len_r,
			   bool *truncated_r)
{
	int fd = -1;
	const char *error;
	size_t cap = QUEUE_DSN_ORIGINAL_MAX + 1, len = 0;
	char *data;

	*len_r = 0;
	*truncated_r = false;
	if (mf_blob_open(ctx->blobs, key, &fd, &error) != 1) {
		mf_log_warn(PKG, NULL, "original message for dsn not readable", "key=%s", key);
		return NULL;
	}
	data = mf_xmalloc(cap);
	while (len < cap) {
		ssize_t r = read(fd, data + len, cap - len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		len += (size_t)r;
	}
	close(fd);
	if (len == cap) {
		*truncated_r = true;
		len--;
	}
	*len_r = len;
	return data;
}

static int64_t retry_until(const struct queue_row *row)
{
	int64_t t = row->next_attempt_ms;
	unsigned max = row->max_attempts > 0 ? row->max_attempts : QUEUE_MAX_ATTEMPTS_DEFAULT;

	for (unsigned a = row->attempts + 1; a < max; a++)
		t += queue_backoff_ms(a);
	return t;
}

/* Composes one DSN for the items of one base id that want one, writes it
 * under queue/dsn/ and records it as pending, in the caller's transaction. */
static int dsn_for_base(struct queue_ctx *ctx, struct queue_outcome_item *items,
			const enum queue_dsn_action *actions, size_t n, int64_t base_id,
			int64_t now_ms, struct queue_cleanup *cl, const char **error_r)
{
	struct queue_dsn_rcpt *rcpts = mf_xcalloc(n, sizeof(*rcpts));
	const struct queue_row *first = NULL;
	struct queue_dsn dsn;
	struct mf_buf out;
	char *original = NULL, *key = NULL, *boundary = NULL, *msgid = NULL;
	size_t nr = 0, olen = 0;
	bool truncated = false;
	int ret = -1;
	uint64_t seq = queue_next_seq(ctx);

	mf_buf_init(&out, QUEUE_DSN_MAX);
	for (size_t i = 0; i < n; i++) {
		const struct queue_row *row = items[i].row;
		if (row->base_id != base_id || (int)actions[i] < 0)
			continue;
		if (first == NULL)
			first = row;
		rcpts[nr].address = row->rcpt;
		rcpts[nr].orcpt = row->dsn_orcpt;
		rcpts[nr].action = actions[i];
		rcpts[nr].code = items[i].code;
		rcpts[nr].enhanced = items[i].enhanced;
		rcpts[nr].text = items[i].text;
		rcpts[nr].remote_mta = items[i].host;
		rcpts[nr].last_attempt_ms = items[i].count_attempt ? now_ms : 0;
		rcpts[nr].will_retry_until_ms =
			actions[i] == QUEUE_DSN_DELAYED ? retry_until(row) : 0;
		nr++;
	}
	if (nr == 0) {
		ret = 0;
		goto out;
	}
	if (*first->account == '\0') {
		/* Mail queued without an account (none of ours yet): nobody's
		 * mailbox to put the DSN in. */
		mf_log_warn(PKG, first->cid, "no account for dsn", "base=%lld",
			    (long long)base_id);
		ret = 0;
		goto out;
	}
	original = read_original(ctx, first->blob_key, &olen, &truncated);
	boundary = mf_xasprintf("mf-dsn-%lld-%llu.%lld", (long long)base_id,
				(unsigned long long)seq, (long long)now_ms);
	msgid = mf_xasprintf("dsn-%lld-%llu-%lld@%s", (long long)base_id,
			     (unsigned long long)seq, (long long)now_ms, ctx->hostname);
	memset(&dsn, 0, sizeof(dsn));
	dsn.hostname = ctx->hostname;
	dsn.to = first->mail_from;
	dsn.envid = first->dsn_envid;
	dsn.message_id = first->message_id;
	dsn.boundary = boundary;
	dsn.new_message_id = msgid;
	dsn.ret_full = strcmp(first->dsn_ret, "FULL") == 0 && !truncated;
	dsn.original = original;
	dsn.original_len = olen;
	dsn.arrival_ms = first->queued_ms;
	dsn.now_ms = now_ms;
	dsn.rcpts = rcpts;
	dsn.nrcpts = nr;
	if (queue_dsn_compose(&dsn, &out, error_r) < 0)
		goto out;
	key = mf_xasprintf("queue/dsn/%lld-%llu-%lld", (long long)base_id,
			   (unsigned long long)seq, (long long)now_ms);
	if (mf_blob_put(ctx->blobs, key, out.data, out.len, error_r) < 0)
		goto out;
	list_add(&cl->after_rollback, &cl->nrollback, key);
	if (queue_db_dsn_add(ctx->db, first->account, first->mail_from, key, now_ms, error_r) < 0)
		goto out;
	ctx->dsn_total++;
	ret = 0;
out:
	mf_buf_free(&out);
	free(rcpts);
	free(original);
	free(key);
	free(boundary);
	free(msgid);
	return ret;
}

int queue_apply_outcomes(struct queue_ctx *ctx, struct queue_outcome_item *items, size_t n,
			 int64_t now_ms, struct queue_cleanup *cl, const char **error_r)
{
	enum queue_dsn_action *actions = mf_xcalloc(n > 0 ? n : 1, sizeof(*actions));
	char **blobs = NULL;
	size_t nblobs = 0;
	int ret = -1;

	for (size_t i = 0; i < n; i++) {
		struct queue_outcome_item *it = &items[i];
		struct queue_row *row = it->row;
		struct queue_decision d;

		actions[i] = (enum queue_dsn_action)-1;
		if (it->count_attempt) {
			struct queue_attempt a = {
				.at_ms = now_ms, .code = it->code, .enhanced = (char *)it->enhanced,
				.text = (char *)it->text, .host = (char *)it->host,
				.tls = (char *)it->tls, .duration_ms = it->duration_ms,
			};
			row->attempts++;
			if (queue_db_attempt_add(ctx->db, row->id, &a, error_r) < 0)
				goto out;
		}
		row->last_code = it->code;
		free(row->last_enhanced);
		row->last_enhanced = mf_xstrdup(it->enhanced != NULL ? it->enhanced : "");
		free(row->last_text);
		row->last_text = mf_xstrdup(it->text != NULL ? it->text : "");
		free(row->last_host);
		row->last_host = mf_xstrdup(it->host != NULL ? it->host : "");
		row->last_attempt_ms = now_ms;
		row->lease = 0;
		row->lease_until_ms = 0;

		queue_schedule_decide(it->delivered, it->permanent,
				      it->count_attempt ? row->attempts : row->max_attempts,
				      row->max_attempts, row->dsn_notify, *row->mail_from == '\0',
				      now_ms, &d);
		if (!it->count_attempt && !it->delivered && !it->permanent) {
			/* Not an attempt and not final: nothing to decide. */
			d.outcome = QUEUE_OUTCOME_RETRY;
			d.next_attempt_ms = row->next_attempt_ms;
			d.dsn_delayed = false;
		}
		switch (d.outcome) {
		case QUEUE_OUTCOME_RETRY:
			row->next_attempt_ms = d.next_attempt_ms;
			if (queue_db_update(ctx->db, row, error_r) < 0)
				goto out;
			if (d.dsn_delayed)
				actions[i] = QUEUE_DSN_DELAYED;
			mf_log_info(PKG, row->cid, "delivery attempt failed, will retry",
				    "id=%lld rcpt=%s attempt=%u code=%u next_ms=%lld",
				    (long long)row->id, row->rcpt, row->attempts, it->code,
				    (long long)row->next_attempt_ms);
			break;
		case QUEUE_OUTCOME_DELIVERED:
		case QUEUE_OUTCOME_FAILED:
			if (d.outcome == QUEUE_OUTCOME_FAILED && it->count_attempt &&
			    queue_schedule_suppresses(it->code, it->enhanced) &&
			    *row->account != '\0') {
				char *reason = mf_xasprintf("%u %s %.*s", it->code, it->enhanced,
							    QUEUE_SUPPRESS_REASON_MAX,
							    it->text != NULL ? it->text : "");
				int r = queue_suppress_add(ctx->db, row->account, row->rcpt, reason,
							   false, now_ms, error_r);
				free(reason);
				if (r < 0)
					goto out;
			}
			if (queue_retired_add(ctx->db, row, d.outcome == QUEUE_OUTCOME_DELIVERED,
					      now_ms, error_r) < 0)
				goto out;
			list_add(&blobs, &nblobs, row->blob_key);
			if (d.dsn_failure)
				actions[i] = QUEUE_DSN_FAILED;
			else if (d.dsn_success)
				actions[i] = QUEUE_DSN_RELAYED;
			if (d.outcome == QUEUE_OUTCOME_DELIVERED)
				ctx->delivered_total++;
			else
				ctx->failed_total++;
			mf_log_info(PKG, row->cid, d.outcome == QUEUE_OUTCOME_DELIVERED ?
				    "delivered" : "delivery failed",
				    "id=%lld rcpt=%s attempts=%u code=%u enhanced=%s",
				    (long long)row->id, row->rcpt, row->attempts, it->code,
				    it->enhanced != NULL ? it->enhanced : "");
			break;
		}
	}

	/* One DSN per base id. */
	for (size_t i = 0; i < n; i++) {
		bool seen = false;
		if ((int)actions[i] < 0)
			continue;
		for (size_t j = 0; j < i && !seen; j++)
			seen = (int)actions[j] >= 0 && items[j].row->base_id == items[i].row->base_id;
		if (!seen && dsn_for_base(ctx, items, actions, n, items[i].row->base_id, now_ms, cl,
					  error_r) < 0)
			goto out;
	}

	/* Queue blobs nobody refers to any more go after the commit. */
	for (size_t i = 0; i < nblobs; i++) {
		int64_t refs = queue_db_blob_refs(ctx->db, blobs[i], error_r);
		if (refs < 0)
			goto out;
		if (refs == 0)
			list_add(&cl->after_commit, &cl->ncommit, blobs[i]);
	}
	ret = 0;
out:
	for (size_t i = 0; i < nblobs; i++)
		free(blobs[i]);
	free(blobs);
	free(actions);
	return ret;
}

/* --- results from workers ------------------------------------------------ */

static bool str_ok(const char *s, size_t max)
{
	return s != NULL && strnlen(s, max + 1) <= max;
}

/* One delivery result on its way into a group commit.  Lives on the stack
 * of the handler thread that received it, which waits until finished. */
struct queue_result_batch_item {
	Mailfleet__V1__DeliveryResult *res;
	const char *cid;
	bool finished;             /* under ctx->result_lock */
	bool ok;                   /* committed */
	char *error;               /* why not, when !ok (owned) */
	uint32_t accepted;
	bool wake;                 /* the commit made work for the dispatcher */
	struct queue_cleanup cl;
	struct queue_result_batch_item *next;
};

/* Applies one validated result in the open transaction.  Returns 0 or -1
 * with error_r (the caller rolls the part back). */
static int result_apply(struct queue_ctx *ctx, struct queue_result_batch_item *it,
			int64_t now, const char **error_r)
{
	const Mailfleet__V1__DeliveryResult *res = it->res;
	struct queue_row *rows = mf_xcalloc(res->n_results + 1, sizeof(*rows));
	struct queue_outcome_item *items = mf_xcalloc(res->n_results + 1, sizeof(*items));
	char **tls = mf_xcalloc(res->n_results + 1, sizeof(*tls));
	uint64_t finished_before, dsn_before;
	size_t n = 0;
	int ret = -1;

	for (size_t i = 0; i < res->n_results; i++) {
		Mailfleet__V1__RecipientResult *r = res->results[i];
		int got = queue_db_get(ctx->db, r->id, &rows[n], error_r);
		if (got < 0)
			goto out;
		if (got == 0)
			continue;  /* already retired or dropped: a duplicate result */
		if (rows[n].base_id != res->base_id ||
		    (rows[n].lease != res->lease && !r->delivered)) {
			/* A stale job: the row was dispatched again since.  A
			 * delivery still counts (the mail is out); a failure is
			 * for the newer job to report. */
			queue_row_clear(&rows[n]);
			continue;
		}
		items[n].row = &rows[n];
		items[n].count_attempt = true;
		items[n].delivered = r->delivered;
		items[n].permanent = r->permanent;
		items[n].code = r->code;
		items[n].enhanced = r->enhanced_code;
		items[n].text = r->text;
		items[n].host = r->host;
		tls[n] = *r->tls_version != '\0' ?
			 mf_xasprintf("%s %s", r->tls_version, r->tls_cipher) : mf_xstrdup("");
		items[n].tls = tls[n];
		items[n].duration_ms = r->duration_ms;
		n++;
	}
	/* The counters move only under the database lock, which we hold. */
	finished_before = ctx->delivered_total + ctx->failed_total;
	dsn_before = ctx->dsn_total;
	if (queue_apply_outcomes(ctx, items, n, now, &it->cl, error_r) < 0)
		goto out;
	/* The dispatcher needs to run only when this made work for it: a row
	 * to retry (possibly sooner than its planned wakeup) or a DSN to hand
	 * over.  Waking it for every delivered message made it select and
	 * re-plan once per result throughout a drain. */
	it->wake = ctx->delivered_total + ctx->failed_total - finished_before != n ||
		   ctx->dsn_total != dsn_before;
	it->accepted = (uint32_t)n;
	ret = 0;
out:
	for (size_t i = 0; i < res->n_results; i++)
		queue_row_clear(&rows[i]);
	for (size_t i = 0; i < n; i++)
		free(tls[i]);
	free(rows);
	free(items);
	free(tls);
	return ret;
}

static void result_fail(struct queue_result_batch_item *it, const char *error)
{
	it->ok = false;
	free(it->error);
	it->error = mf_xstrdup(error != NULL ? error : "error");
}

/* Commits the results of list in one transaction, each in a savepoint of
 * its own so that one that fails does not take the others with it.  One
 * fsync for the group instead of one per result; nobody is answered before
 * the commit. */
static void result_commit_group(struct queue_ctx *ctx, struct queue_result_batch_item *list)
{
	int64_t now = queue_now_ms();
	const char *error = NULL;
	bool wake = false;

	queue_db_lock(ctx->db);
	if (queue_db_begin(ctx->db, &error) < 0) {
		for (struct queue_result_batch_item *it = list; it != NULL; it = it->next)
			result_fail(it, error);
		queue_db_unlock(ctx->db);
		return;
	}
	for (struct queue_result_batch_item *it = list; it != NULL; it = it->next) {
		if (queue_db_savepoint(ctx->db, &error) < 0) {
			result_fail(it, error);
			continue;
		}
		if (result_apply(ctx, it, now, &error) < 0) {
			queue_db_savepoint_rollback(ctx->db);
			queue_cleanup_finish(ctx, &it->cl, false);
			result_fail(it, error);
			continue;
		}
		if (queue_db_savepoint_release(ctx->db, &error) < 0) {
			/* Unclear what the transaction holds now: none of it. */
			queue_db_rollback(ctx->db);
			goto fail_all;
		}
		it->ok = true;
	}
	if (queue_db_commit(ctx->db, &error) < 0)
		goto fail_all;
	queue_db_unlock(ctx->db);
	for (struct queue_result_batch_item *it = list; it != NULL; it = it->next) {
		if (!it->ok)
			continue;
		queue_cleanup_finish(ctx, &it->cl, true);
		wake = wake || it->wake;
	}
	if (wake)
		queue_wake(ctx);
	return;
fail_all:
	queue_db_unlock(ctx->db);
	{
		/* Copied before the cleanup can reuse the error buffer. */
		char *why = mf_xstrdup(error != NULL ? error : "commit failed");
		for (struct queue_result_batch_item *it = list; it != NULL; it = it->next) {
			if (it->ok || it->error == NULL) {
				/* Applied, now rolled back with the rest. */
				result_fail(it, why);
				queue_cleanup_finish(ctx, &it->cl, false);
			}
		}
		free(why);
	}
}

void queue_dispatch_result_handler(void *arg, const struct mf_bus_request *req,
				   struct mf_bus_response *resp)
{
	struct queue_ctx *ctx = arg;
	Mailfleet__V1__DeliveryResult *res;
	struct queue_result_batch_item item;
	Mailfleet__V1__DeliveryResultReply reply = MAILFLEET__V1__DELIVERY_RESULT_REPLY__INIT;

	res = mailfleet__v1__delivery_result__unpack(NULL, req->body_len, req->body);
	if (res == NULL) {
		mf_bus_response_set(resp, MF_BUS_PERMANENT, "malformed DeliveryResult");
		return;
	}
	if (res->n_results > QUEUE_JOB_RCPTS_MAX) {
		mf_bus_response_set(resp, MF_BUS_PERMANENT, "too many results (max %d)",
				    QUEUE_JOB_RCPTS_MAX);
		goto out;
	}
	for (size_t i = 0; i < res->n_results; i++) {
		Mailfleet__V1__RecipientResult *r = res->results[i];
		if (!str_ok(r->text, QUEUE_RESULT_TEXT_MAX) ||
		    !str_ok(r->enhanced_code, QUEUE_RESULT_FIELD_MAX) ||
		    !str_ok(r->host, QUEUE_RESULT_FIELD_MAX) ||
		    !str_ok(r->tls_version, QUEUE_RESULT_FIELD_MAX) ||
		    !str_ok(r->tls_cipher, QUEUE_RESULT_FIELD_MAX) || r->code > 599) {
			mf_bus_response_set(resp, MF_BUS_PERMANENT, "result field out of bounds");
			goto out;
		}
	}

	/* Group commit: results that arrive while another handler thread is
	 * committing wait and go into the next group together; the first of
	 * them to find no committer commits that group. */
	memset(&item, 0, sizeof(item));
	item.res = res;
	item.cid = req->cid;
	pthread_mutex_lock(&ctx->result_lock);
	if (ctx->result_tail != NULL)
		ctx->result_tail->next = &item;
	else
		ctx->result_head = &item;
	ctx->result_tail = &item;
	while (!item.finished) {
		if (!ctx->result_leader) {
			struct queue_result_batch_item *list = ctx->result_head, *it, *next;
			ctx->result_head = ctx->result_tail = NULL;
			ctx->result_leader = true;
			pthread_mutex_unlock(&ctx->result_lock);
			result_commit_group(ctx, list);
			pthread_mutex_lock(&ctx->result_lock);
			/* Once finished, an item's owner may return: never touch
			 * it after that. */
			for (it = list; it != NULL; it = next) {
				next = it->next;
				it->finished = true;
			}
			ctx->result_leader = false;
			pthread_cond_broadcast(&ctx->result_cond);
		} else {
			pthread_cond_wait(&ctx->result_cond, &ctx->result_lock);
		}
	}
	pthread_mutex_unlock(&ctx->result_lock);

	if (!item.ok) {
		mf_log_error(PKG, req->cid, "recording delivery results failed", "err=%s",
			     item.error);
		mf_bus_response_set(resp, MF_BUS_TEMPORARY, "queue: %s", item.error);
		free(item.error);
		goto out;
	}
	reply.accepted = item.accepted;
	{
		size_t len = mailfleet__v1__delivery_result_reply__get_packed_size(&reply);
		uint8_t *buf = mf_xmalloc(len > 0 ? len : 1);
		mailfleet__v1__delivery_result_reply__pack(&reply, buf);
		mf_bus_response_take_body(resp, buf, len);
	}
out:
	mailfleet__v1__delivery_result__free_unpacked(res, NULL);
}

/* --- the dispatcher thread ---------------------------------------------- */

static uint64_t random_lease(void)
{
	uint64_t v = 0;

	while (v == 0)
		if (getrandom(&v, sizeof(v), 0) != sizeof(v))
			v = (uint64_t)queue_now_ms() ^ (uint64_t)rand();
	return v & INT64_MAX;  /* stored in an SQLite integer */
}

static bool same_job(const struct queue_row *a, const struct queue_row *b)
{
	return a->base_id == b->base_id && strcmp(a->rcpt_domain, b->rcpt_domain) == 0 &&
	       strcmp(a->transport, b->transport) == 0;
}

/* Packs the job for rows[idx] (count of them). */
static uint8_t *pack_job(struct queue_row **rows, size_t count, size_t *len_r)
{
	Mailfleet__V1__DeliveryJob job = MAILFLEET__V1__DELIVERY_JOB__INIT;
	Mailfleet__V1__JobRecipient *jr = mf_xcalloc(count, sizeof(*jr));
	Mailfleet__V1__JobRecipient **jrp = mf_xcalloc(count, sizeof(*jrp));
	const struct queue_row *r = rows[0];
	uint8_t *buf;

	job.base_id = r->base_id;
	job.lease = r->lease;
	job.lease_until_unix_ms = r->lease_until_ms;
	job.account = r->account;
	job.mail_from = r->mail_from;
	job.blob_key = r->blob_key;
	job.size = r->size;
	job.message_id = r->message_id;
	job.attempt = r->attempts + 1;
	job.requiretls = r->requiretls;
	job.smtputf8 = r->smtputf8;
	job.has_8bit = r->has_8bit;
	job.dsn_envid = r->dsn_envid;
	job.dsn_ret = r->dsn_ret;
	job.transport = r->transport;
	job.recipient_domain = r->rcpt_domain;
	job.cid = r->cid;
	for (size_t i = 0; i < count; i++) {
		mailfleet__v1__job_recipient__init(&jr[i]);
		jr[i].id = rows[i]->id;
		jr[i].address = rows[i]->rcpt;
		jr[i].dsn_notify = rows[i]->dsn_notify;
		jr[i].dsn_orcpt = rows[i]->dsn_orcpt;
		jrp[i] = &jr[i];
	}
	job.recipients = jrp;
	job.n_recipients = count;
	*len_r = mailfleet__v1__delivery_job__get_packed_size(&job);
	buf = mf_xmalloc(*len_r > 0 ? *len_r : 1);
	mailfleet__v1__delivery_job__pack(&job, buf);
	free(jr);
	free(jrp);
	return buf;
}

/* Leases the due rows and publishes their jobs.  Returns the number of
 * jobs published. */
static size_t dispatch_round(struct queue_ctx *ctx)
{
	struct queue_filter f = { .held = -1 };
	struct queue_row *rows = NULL;
	size_t n = 0, jobs = 0;
	bool *done = NULL;
	const char *error;
	int64_t now = queue_now_ms();

	if (!ctx->stream_ready) {
		const char *subjects[] = { QUEUE_JOB_SUBJECT };
		struct mf_bus_stream_config sc = {
			.name = QUEUE_STREAM, .subjects = subjects, .nsubjects = 1,
			.retention = MF_BUS_RETENTION_WORKQUEUE,
		};
		if (mf_bus_js_ensure_stream(ctx->bus, &sc, 2000, &error) < 0) {
			mf_log_warn(PKG, NULL, "jetstream stream not ready", "err=%s", error);
			return 0;
		}
		ctx->stream_ready = true;
	}

	f.due_at_ms = now;
	queue_db_lock(ctx->db);
	if (queue_db_begin(ctx->db, &error) < 0 ||
	    queue_db_select(ctx->db, &f, 0, QUEUE_DISPATCH_BATCH, &rows, &n, &error) < 0) {
		queue_db_rollback(ctx->db);
		queue_db_unlock(ctx->db);
		mf_log_error(PKG, NULL, "selecting due messages failed", "err=%s", error);
		return 0;
	}
	/* Lease every selected row, then commit before publishing: a crash
	 * after the commit only delays the rows until the lease runs out. */
	done = mf_xcalloc(n + 1, sizeof(*done));
	for (size_t i = 0; i < n; i++) {
		if (done[i])
			continue;
		uint64_t lease = random_lease();
		size_t cnt = 0;
		for (size_t j = i; j < n && cnt < QUEUE_JOB_RCPTS_MAX; j++) {
			if (done[j] || !same_job(&rows[i], &rows[j]))
				continue;
			rows[j].lease = lease;
			rows[j].lease_until_ms = now + ctx->lease_ms;
			if (queue_db_update(ctx->db, &rows[j], &error) < 0)
				goto dberr;
			done[j] = true;
			cnt++;
		}
	}
	if (queue_db_commit(ctx->db, &error) < 0)
		goto dberr;
	queue_db_unlock(ctx->db);

	memset(done, 0, (n + 1) * sizeof(*done));
	for (size_t i = 0; i < n; i++) {
		struct queue_row **group;
		size_t cnt = 0, len;
		uint8_t *buf;
		char msgid[64];

		if (done[i])
			continue;
		group = mf_xcalloc(QUEUE_JOB_RCPTS_MAX, sizeof(*group));
		for (size_t j = i; j < n && cnt < QUEUE_JOB_RCPTS_MAX; j++) {
			if (!done[j] && rows[j].lease == rows[i].lease) {
				group[cnt++] = &rows[j];
				done[j] = true;
			}
		}
		buf = pack_job(group, cnt, &len);
		/* The lease makes the id unique per dispatch, so JetStream's
		 * duplicate window drops only a true re-publish. */
		snprintf(msgid, sizeof(msgid), "%lld-%llu", (long long)rows[i].base_id,
			 (unsigned long long)rows[i].lease);
		if (mf_bus_js_publish(ctx->bus, QUEUE_JOB_SUBJECT, buf, len, msgid,
				      QUEUE_PUBLISH_TIMEOUT_MS, NULL, &error) < 0) {
			mf_log_warn(PKG, rows[i].cid, "publishing job failed, will retry",
				    "base=%lld err=%s", (long long)rows[i].base_id, error);
			/* Shorten the lease so that the rows come back soon. */
			queue_db_lock(ctx->db);
			for (size_t k = 0; k < cnt; k++) {
				group[k]->lease_until_ms = queue_now_ms() + QUEUE_PUBLISH_RETRY_MS;
				if (queue_db_update(ctx->db, group[k], &error) < 0)
					mf_log_error(PKG, NULL, "updating lease failed", "err=%s", error);
			}
			queue_db_unlock(ctx->db);
		} else {
			jobs++;
			ctx->dispatched_total++;
			mf_log_debug(PKG, rows[i].cid, "dispatched", "base=%lld rcpts=%zu attempt=%u",
				     (long long)rows[i].base_id, cnt, rows[i].attempts + 1);
		}
		free(buf);
		free(group);
	}
	free(done);
	queue_rows_free(&rows, n);
	return jobs;
dberr:
	queue_db_rollback(ctx->db);
	queue_db_unlock(ctx->db);
	mf_log_error(PKG, NULL, "leasing due messages failed", "err=%s", error);
	free(done);
	queue_rows_free(&rows, n);
	return 0;
}

/* Hands pending DSNs to the sender's account in the store. */
static void dsn_round(struct queue_ctx *ctx)
{
	struct queue_dsn_pending *p = NULL;
	size_t n = 0;
	const char *error;
	int64_t now = queue_now_ms();

	queue_db_lock(ctx->db);
	if (queue_db_dsn_due(ctx->db, now, QUEUE_DSN_BATCH, &p, &n, &error) < 0) {
		queue_db_unlock(ctx->db);
		mf_log_error(PKG, NULL, "reading pending dsns failed", "err=%s", error);
		return;
	}
	queue_db_unlock(ctx->db);
	for (size_t i = 0; i < n; i++) {
		Mailfleet__V1__DeliverRequest dr = MAILFLEET__V1__DELIVER_REQUEST__INIT;
		Mailfleet__V1__DeliverRecipient rc = MAILFLEET__V1__DELIVER_RECIPIENT__INIT;
		Mailfleet__V1__DeliverRecipient *rcp = &rc;
		struct mf_bus_reply reply;
		char *subject = mf_xasprintf("store.v1.deliver.%s", p[i].account);
		char *mid = mf_xasprintf("dsn-%lld", (long long)p[i].id);
		size_t len;
		uint8_t *buf;
		int r;

		dr.account = p[i].account;
		dr.blob_key = p[i].blob_key;
		dr.message_id = mid;
		dr.mail_from = "";
		dr.received_unix_ms = now;
		rc.address = p[i].rcpt;
		dr.recipients = &rcp;
		dr.n_recipients = 1;
		len = mailfleet__v1__deliver_request__get_packed_size(&dr);
		buf = mf_xmalloc(len > 0 ? len : 1);
		mailfleet__v1__deliver_request__pack(&dr, buf);
		r = mf_bus_request(ctx->bus, subject, mid, buf, len, QUEUE_STORE_TIMEOUT_MS, &reply);
		if (r == 0 && reply.body != NULL) {
			/* Per-recipient status counts too. */
			Mailfleet__V1__DeliverReply *rep =
				mailfleet__v1__deliver_reply__unpack(NULL, reply.body_len, reply.body);
			if (rep == NULL || rep->n_results < 1 || rep->results[0]->status == NULL ||
			    rep->results[0]->status->code != MAILFLEET__V1__STATUS__CODE__OK) {
				r = -1;
				free(reply.message);
				reply.message = mf_xstrdup(rep != NULL && rep->n_results > 0 &&
							   rep->results[0]->status != NULL ?
							   rep->results[0]->status->message :
							   "bad reply from store");
			}
			if (rep != NULL)
				mailfleet__v1__deliver_reply__free_unpacked(rep, NULL);
		}
		queue_db_lock(ctx->db);
		if (r == 0) {
			mf_log_info(PKG, mid, "dsn delivered", "account=%s rcpt=%s", p[i].account,
				    p[i].rcpt);
			if (queue_db_dsn_done(ctx->db, p[i].id, &error) < 0)
				mf_log_error(PKG, mid, "dsn bookkeeping failed", "err=%s", error);
			else if (mf_blob_delete(ctx->blobs, p[i].blob_key, &error) < 0)
				mf_log_warn(PKG, mid, "removing dsn blob failed", "err=%s", error);
		} else if (p[i].tries + 1 >= QUEUE_DSN_TRIES_MAX) {
			mf_log_error(PKG, mid, "dsn undeliverable, giving up", "account=%s err=%s",
				     p[i].account, reply.message);
			if (queue_db_dsn_done(ctx->db, p[i].id, &error) == 0)
				(void)mf_blob_delete(ctx->blobs, p[i].blob_key, &error);
		} else {
			int64_t wait = 5000LL << (p[i].tries < 10 ? p[i].tries : 10);
			if (wait > 3600 * 1000LL)
				wait = 3600 * 1000LL;
			mf_log_warn(PKG, mid, "dsn delivery failed, will retry", "account=%s err=%s",
				    p[i].account, reply.message);
			if (queue_db_dsn_retry(ctx->db, p[i].id, now + wait, &error) < 0)
				mf_log_error(PKG, mid, "dsn bookkeeping failed", "err=%s", error);
		}
		queue_db_unlock(ctx->db);
		mf_bus_reply_free(&reply);
		free(buf);
		free(subject);
		free(mid);
	}
	queue_dsn_pending_free(&p, n);
}

struct sweep {
	struct queue_ctx *ctx;
	time_t before;
	unsigned removed;
};

static int sweep_one(const char *key, void *arg)
{
	struct sweep *sw = arg;
	struct mf_blob_stat st;
	const char *error;
	int used;

	if (mf_blob_stat(sw->ctx->blobs, key, &st, &error) != 1 || st.mtime >= sw->before)
		return 0;
	queue_db_lock(sw->ctx->db);
	used = queue_db_blob_used(sw->ctx->db, key, &error);
	/* Deleted under the lock: an add links its blob before it commits,
	 * but never with an old mtime, so an old unused key is an orphan. */
	if (used == 0 && mf_blob_delete(sw->ctx->blobs, key, &error) == 1)
		sw->removed++;
	queue_db_unlock(sw->ctx->db);
	return 0;
}

/* Removes blobs under queue/ that no row refers to any more (left by a
 * crash between the link and the commit, or between the commit and the
 * delete), once they are older than an hour. */
static void sweep_orphans(struct queue_ctx *ctx)
{
	struct sweep sw = { .ctx = ctx, .before = time(NULL) - 3600 };
	const char *error;

	if (mf_blob_list(ctx->blobs, "queue", sweep_one, &sw, &error) < 0)
		mf_log_warn(PKG, NULL, "sweeping queue blobs failed", "err=%s", error);
	else if (sw.removed > 0)
		mf_log_info(PKG, NULL, "orphaned queue blobs removed", "count=%u", sw.removed);
	if (mf_blob_sweep_temp(ctx->blobs, "queue", 3600, NULL, &error) < 0)
		mf_log_warn(PKG, NULL, "sweeping temporary files failed", "err=%s", error);
}

struct retired_keep {
	struct queue_ctx *ctx;
	struct mf_domains *domains;  /* NULL before domains.conf was loaded */
};

/* The account's keep-retired-messages, else the queue's retired-keep. */
static int64_t retired_keep_ms(const char *account, void *arg)
{
	struct retired_keep *k = arg;
	const struct mf_account *a = k->domains != NULL ?
				     mf_domains_find_account(k->domains, account) : NULL;

	if (a != NULL && a->keep_retired_messages_ms > 0)
		return (int64_t)a->keep_retired_messages_ms;
	return k->ctx->retired_keep_ms > 0 ? k->ctx->retired_keep_ms : QUEUE_RETIRED_KEEP_MS;
}

static void *dispatch_thread(void *arg)
{
	struct queue_ctx *ctx = arg;
	int64_t last_cleanup = 0;

	for (;;) {
		int64_t now, next, wait;
		struct timespec ts;

		pthread_mutex_lock(&ctx->wake_lock);
		if (ctx->stopping) {
			pthread_mutex_unlock(&ctx->wake_lock);
			break;
		}
		ctx->wake_flag = false;
		pthread_mutex_unlock(&ctx->wake_lock);

		if (mf_bus_connected(ctx->bus)) {
			dispatch_round(ctx);
			dsn_round(ctx);
		}
		now = queue_now_ms();
		if (now - last_cleanup > QUEUE_CLEANUP_EVERY_MS) {
			unsigned removed = 0;
			const char *error;
			queue_db_lock(ctx->db);
			struct retired_keep keep = { .ctx = ctx, .domains = mf_domains_current() };
			if (queue_retired_cleanup_accounts(ctx->db, now, retired_keep_ms, &keep,
							   &removed, &error) < 0)
				mf_log_error(PKG, NULL, "pruning history failed", "err=%s", error);
			queue_db_unlock(ctx->db);
			mf_domains_unref(&keep.domains);
			sweep_orphans(ctx);
			last_cleanup = now;
		}

		queue_db_lock(ctx->db);
		next = queue_db_next_due(ctx->db);
		queue_db_unlock(ctx->db);
		wait = next - queue_now_ms();
		if (wait > QUEUE_IDLE_MS)
			wait = QUEUE_IDLE_MS;
		if (wait < 10)
			wait = 10;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += wait / 1000;
		ts.tv_nsec += (wait % 1000) * 1000000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		pthread_mutex_lock(&ctx->wake_lock);
		while (!ctx->wake_flag && !ctx->stopping)
			if (pthread_cond_timedwait(&ctx->wake_cond, &ctx->wake_lock, &ts) != 0)
				break;
		pthread_mutex_unlock(&ctx->wake_lock);
	}
	return NULL;
}

int queue_dispatch_start(struct queue_ctx *ctx, const char **error_r)
{
	int r = pthread_create(&ctx->thread, NULL, dispatch_thread, ctx);

	if (r != 0) {
		*error_r = mf_errorf("queue: starting dispatcher: %s", strerror(r));
		return -1;
	}
	ctx->thread_started = true;
	return 0;
}

void queue_dispatch_stop(struct queue_ctx *ctx)
{
	if (!ctx->thread_started)
		return;
	pthread_mutex_lock(&ctx->wake_lock);
	ctx->stopping = true;
	pthread_cond_signal(&ctx->wake_cond);
	pthread_mutex_unlock(&ctx->wake_lock);
	pthread_join(ctx->thread, NULL);
	ctx->thread_started = false;
}
