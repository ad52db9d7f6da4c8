/* store_deliver: hand-off of a received blob to recipients of one account
 * (DESIGN.md "Message blobs": link under our prefix, commit, reply; the
 * caller deletes its own key afterwards). */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "blob.h"
#include "buf.h"
#include "error.h"
#include "log.h"
#include "store_private.h"

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void rcpt_fail(struct store_deliver_rcpt *r, enum store_error_kind kind, const char *err)
{
	r->status = -1;
	r->error_kind = kind;
	free(r->error);
	r->error = mf_xstrdup(err);
}

void store_deliver_rcpts_clear(struct store_deliver_rcpt *rcpts, size_t count)
{
	for (size_t i = 0; i < count; i++) {
		free(rcpts[i].error);
		free(rcpts[i].stored_mailbox);
		rcpts[i].error = NULL;
		rcpts[i].stored_mailbox = NULL;
	}
}

/* Reads the start of the blob for Message-ID and Subject. */
static void scan_blob(struct store_account *acc, const char *key, char **msgid_r,
		      char **subject_r)
{
	char *buf = mf_xmalloc(STORE_HEADER_SCAN_MAX + 1);
	size_t len = 0;
	const char *err;
	int fd;

	*msgid_r = *subject_r = NULL;
	if (mf_blob_open(acc->store->blobs, key, &fd, &err) == 1) {
		while (len < STORE_HEADER_SCAN_MAX) {
			ssize_t n = read(fd, buf + len, STORE_HEADER_SCAN_MAX - len);

			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				break;
			len += (size_t)n;
		}
		close(fd);
		store_scan_headers(buf, len, msgid_r, subject_r);
	}
	free(buf);
}

int store_deliver(struct store_account *acc, const char *blob_key, int64_t received_ms,
		  struct store_deliver_rcpt *rcpts, size_t count, const char **error_r)
{
	struct mf_blob_stat st;
	char **keys = mf_xcalloc(count + 1, sizeof(char *));
	char **kws = mf_xcalloc(count + 1, sizeof(char *));
	int64_t *mbox_ids = mf_xcalloc(count + 1, sizeof(int64_t));
	char *msgid = NULL, *subject = NULL;
	uint64_t modseq = 0;
	size_t stored = 0;
	int ret = -1, r;

	store_error_clear();
	*error_r = NULL;
	for (size_t i = 0; i < count; i++) {
		rcpts[i].status = -1;
		rcpts[i].error_kind = STORE_ERR_TEMPORARY;
		rcpts[i].error = NULL;
		rcpts[i].stored_mailbox = NULL;
		rcpts[i].uid = rcpts[i].uidvalidity = 0;
	}
	if (mf_blob_key_validate(blob_key, error_r) < 0 || strncmp(blob_key, "accounts/", 9) == 0) {
		store_fail(STORE_ERR_INVALID, error_r, "bad blob key for delivery");
		goto out;
	}
	r = mf_blob_stat(acc->store->blobs, blob_key, &st, error_r);
	if (r <= 0) {
		if (r == 0)
			store_fail(STORE_ERR_INVALID, error_r, "blob %s does not exist", blob_key);
		else
			store_fail_kind(STORE_ERR_TEMPORARY);
		goto out;
	}
	/* Validation per recipient before any blob work. */
	for (size_t i = 0; i < count; i++) {
		const char *err;

		if (rcpts[i].prefix_len > STORE_PREFIX_MAX) {
			rcpt_fail(&rcpts[i], STORE_ERR_INVALID, "header prefix too long");
			continue;
		}
		if ((rcpts[i].special_use & ~STORE_SPECIAL_MASK) != 0) {
			rcpt_fail(&rcpts[i], STORE_ERR_INVALID, "unknown special-use attribute");
			continue;
		}
		kws[i] = store_keywords_normalise(rcpts[i].keywords, &err);
		if (kws[i] == NULL)
			rcpt_fail(&rcpts[i], STORE_ERR_INVALID, err);
	}
	scan_blob(acc, blob_key, &msgid, &subject);
	/* Blobs first, made durable by the link; rows after. */
	for (size_t i = 0; i < count; i++) {
		if (rcpts[i].error != NULL)
			continue;
		keys[i] = store_blob_key_new(acc);
		if (mf_blob_link(acc->store->blobs, blob_key, keys[i], error_r) < 0) {
			free(keys[i]);
			keys[i] = NULL;
			store_fail_kind(STORE_ERR_TEMPORARY);
			goto out;
		}
	}
	if (store_lock(acc, error_r) < 0)
		goto out;
	if (store_tx_begin(acc, error_r) < 0) {
		store_unlock(acc);
		goto out;
	}
	for (size_t i = 0; i < count; i++) {
		struct store_deliver_rcpt *rc = &rcpts[i];
		uint64_t size = rc->prefix_len + st.size;
		struct store_mailbox mb;
		struct store_new_message m = { 0 };
		const char *err;
		uint32_t uid;

		if (keys[i] == NULL)
			continue;
		if (rc->special_use != 0) {
			/* RFC 6154: the user may have renamed the mailbox or
			 * moved the attribute, so it is found by attribute;
			 * without one the message is not lost but in INBOX. */
			r = store_mailbox_find_special_locked(acc, rc->special_use, &mb, &err);
			if (r == 0)
				r = store_mailbox_lookup_locked(acc, "INBOX", true, &mb, &err);
		} else {
			r = store_mailbox_lookup_locked(acc, rc->mailbox != NULL &&
							rc->mailbox[0] != '\0' ? rc->mailbox :
							"INBOX", true, &mb, &err);
		}
		if (r <= 0) {
			if (store_last_error_kind() == STORE_ERR_TEMPORARY)
				goto fail_tx;
			rcpt_fail(rc, store_last_error_kind(), err);
			continue;
		}
		if (store_quota_check(acc, size, &err) < 0) {
			enum store_error_kind kind = store_last_error_kind();

			store_mailbox_clear(&mb);
			if (kind == STORE_ERR_TEMPORARY)
				goto fail_tx;
			rcpt_fail(rc, kind, err);
			continue;
		}
		if (modseq == 0 && store_next_modseq(acc, &modseq, error_r) < 0) {
			store_mailbox_clear(&mb);
			goto fail_tx;
		}
		m.mailbox_id = mb.id;
		m.flags = 0;
		m.keywords = kws[i];
		m.internal_date = received_ms > 0 ? received_ms : now_ms();
		m.size = size;
		m.blob_key = keys[i];
		m.prefix = rc->prefix;
		m.prefix_len = rc->prefix_len;
		m.message_id = msgid;
		m.subject = subject;
		if (store_message_insert(acc, &m, modseq, &uid, &err) < 0) {
			enum store_error_kind kind = store_last_error_kind();

			store_mailbox_clear(&mb);
			if (kind == STORE_ERR_TEMPORARY || kind == STORE_ERR_NONE) {
				*error_r = err;
				goto fail_tx;
			}
			rcpt_fail(rc, kind, err);
			continue;
		}
		rc->status = 0;
		rc->error_kind = STORE_ERR_NONE;
		rc->uid = uid;
		rc->uidvalidity = mb.uidvalidity;
		rc->stored_mailbox = mb.name;
		mbox_ids[i] = mb.id;
		mb.name = NULL;
		stored++;
	}
	if (store_tx_commit(acc, error_r) < 0)
		goto fail_tx;
	store_unlock(acc);
	ret = 0;
	goto out;
fail_tx:
	store_tx_rollback(acc);
	store_unlock(acc);
	store_fail_kind(STORE_ERR_TEMPORARY);
	for (size_t i = 0; i < count; i++)
		if (rcpts[i].status == 0) {
			/* Rolled back: nothing was stored for anyone. */
			rcpts[i].status = -1;
			free(rcpts[i].stored_mailbox);
			rcpts[i].stored_mailbox = NULL;
		}
	stored = 0;
out:
	for (size_t i = 0; i < count; i++) {
		const char *err;

		if (rcpts[i].status == 0)
			continue;
		if (rcpts[i].error == NULL) {
			rcpts[i].error_kind = store_last_error_kind() != STORE_ERR_NONE ?
				store_last_error_kind() : STORE_ERR_TEMPORARY;
			rcpts[i].error = mf_xstrdup(*error_r != NULL ? *error_r : "not stored");
		}
		if (keys[i] != NULL && mf_blob_delete(acc->store->blobs, keys[i], &err) < 0)
			mf_log_warn("store", NULL, "cannot delete blob of failed delivery",
				    "account=%s error=%s", acc->name, err);
	}
	if (ret == 0) {
		/* One change per recipient message; sessions coalesce. */
		for (size_t i = 0; i < count; i++) {
			struct store_msg_state state = {
				.uid = rcpts[i].uid, .keywords = kws[i] != NULL && kws[i][0] != '\0' ?
				kws[i] : NULL, .modseq = modseq,
			};
			struct store_change ch = {
				.kind = STORE_CHANGE_ADD, .mailbox_id = mbox_ids[i],
				.mailbox = rcpts[i].stored_mailbox, .modseq = modseq,
				.msgs = &state, .count = 1,
			};

			if (rcpts[i].status == 0)
				store_notify(acc, &ch);
		}
		mf_log_info("store", NULL, "delivered", "account=%s blob=%s recipients=%zu stored=%zu",
			    acc->name, blob_key, count, stored);
	}
	for (size_t i = 0; i < count; i++) {
		free(keys[i]);
		free(kws[i]);
	}
	free(keys);
	free(kws);
	free(mbox_ids);
	free(msgid);
	free(subject);
	return ret;
}
