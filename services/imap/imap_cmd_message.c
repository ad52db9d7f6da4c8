/* imap_cmd_message: APPEND (with APPENDUID, RFC 4315), STORE, COPY, MOVE
 * (RFC 6851) and IDLE (RFC 2177). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "buf.h"
#include "error.h"
#include "imap_cmd.h"
#include "imap_format.h"
#include "imap_seqset.h"
#include "imap_session.h"
#include "log.h"

#define PKG "imap"

/* Looks up a mailbox by its argument.  Returns 1 with id, 0 with a NO
 * reply set, -1 never (store errors become replies too). */
static int mailbox_id(struct imap_session *s, const struct imap_arg *arg, bool trycreate,
		      int64_t *id_r)
{
	struct store_mailbox mb;
	const char *err;
	char *name;
	int r;

	if (imap_mailbox_arg(s, arg, &name, &err) < 0) {
		imap_no(s, "%s", err);
		return 0;
	}
	r = store_mailbox_get(s->acc, name, &mb, &err);
	if (r < 0) {
		imap_no_store(s, "mailbox", err);
		return 0;
	}
	if (r == 0) {
		/* RFC 9051 6.3.12: TRYCREATE tells the client it may CREATE. */
		imap_no(s, "%s no such mailbox", trycreate ? "[TRYCREATE]" : "[NONEXISTENT]");
		return 0;
	}
	*id_r = mb.id;
	store_mailbox_clear(&mb);
	return 1;
}

int imap_cmd_append(struct imap_session *s, const struct imap_command *cmd)
{
	struct store_append_result res;
	const struct imap_arg *args = cmd->args, *msg;
	size_t n = cmd->count, i = 1;
	uint32_t flags = 0;
	char *keywords = NULL;
	int64_t date_ms = 0, id;
	const char *err;

	if (n < 2)
		return imap_bad(s, "APPEND takes a mailbox, optional flags and date, and a message");
	if (args[i].type == IMAP_ARG_LIST) {
		if (imap_flags_arg(s, &args[i], &flags, &keywords, &err) < 0)
			return imap_bad(s, "%s", err);
		i++;
	}
	if (i < n && args[i].type == IMAP_ARG_QUOTED) {
		if (imap_parse_datetime(args[i].str, &date_ms) < 0)
			return imap_bad(s, "invalid date-time");
		i++;
	}
	if (i + 1 != n || args[i].type != IMAP_ARG_LITERAL)
		return imap_bad(s, "APPEND needs the message as a literal");
	msg = &args[i];
	if (msg->len == 0)
		return imap_no(s, "empty message");
	if (msg->len > s->server->append_max)
		return imap_no(s, "[TOOBIG] message larger than APPENDLIMIT");
	if (mailbox_id(s, &args[0], true, &id) == 0)
		return 0;
	if (store_append(s->acc, id, msg->str, msg->len, flags, keywords, date_ms, &res, &err) < 0)
		return imap_no_store(s, "append", err);
	return imap_ok(s, "[APPENDUID %u %u] APPEND completed", res.uidvalidity, res.uid);
}

/* --- STORE --- */

static bool kw_has(const char *list, const char *kw, size_t len)
{
	for (const char *p = list; p != NULL && *p != '\0';) {
		const char *e = strchr(p, ' ');
		size_t n = e != NULL ? (size_t)(e - p) : strlen(p);
		if (n == len && strncasecmp(p, kw, n) == 0)
			return true;
		p = e != NULL ? e + 1 : p + n;
	}
	return false;
}

/* Returns the keywords after applying change with mode (malloc'd, NULL
 * for none). */
static char *kw_apply(const char *old, const char *change, enum store_flags_mode mode)
{
	struct mf_buf b;
	const char *src[2] = { old, change };

	mf_buf_init(&b, 0);
	if (mode == STORE_FLAGS_SET) {
		if (change != NULL)
			mf_buf_append_str(&b, change);
	} else {
		for (int k = 0; k < (mode == STORE_FLAGS_ADD ? 2 : 1); k++) {
			for (const char *p = src[k]; p != NULL && *p != '\0';) {
				const char *e = strchr(p, ' ');
				size_t n = e != NULL ? (size_t)(e - p) : strlen(p);
				bool drop = mode == STORE_FLAGS_REMOVE && kw_has(change, p, n);
				if (!drop && !(k == 1 && kw_has(old, p, n))) {
					if (b.len > 0)
						mf_buf_append(&b, " ", 1);
					mf_buf_append(&b, p, n);
				}
				p = e != NULL ? e + 1 : p + n;
			}
		}
	}
	if (b.len == 0) {
		mf_buf_free(&b);
		return NULL;
	}
	return mf_buf_steal(&b);
}

int imap_cmd_store(struct imap_session *s, const struct imap_command *cmd)
{
	enum store_flags_mode mode;
	const char *item, *err;
	bool silent;
	uint32_t flags, *uids;
	char *keywords;
	size_t *idx, count;
	uint64_t modseq;

	if (cmd->count != 3 || cmd->args[1].type != IMAP_ARG_ATOM)
		return imap_bad(s, "STORE takes a set, an item and flags");
	if (imap_resolve_set(s, &cmd->args[0], s->uid, &idx, &count, &err) < 0)
		return imap_bad(s, "%s", err);
	item = cmd->args[1].str;
	mode = STORE_FLAGS_SET;
	if (item[0] == '+' || item[0] == '-') {
		mode = item[0] == '+' ? STORE_FLAGS_ADD : STORE_FLAGS_REMOVE;
		item++;
	}
	if (strcasecmp(item, "FLAGS") == 0)
		silent = false;
	else if (strcasecmp(item, "FLAGS.SILENT") == 0)
		silent = true;
	else
		return imap_bad(s, "unknown STORE item");
	if (imap_flags_arg(s, &cmd->args[2], &flags, &keywords, &err) < 0)
		return imap_bad(s, "%s", err);
	if (s->sel.readonly)
		return imap_no(s, "[READ-ONLY] mailbox is read-only");
	if (count == 0)
		return imap_ok(s, "STORE completed");
	uids = imap_pool_alloc(s->pool, count * sizeof(*uids));
	for (size_t i = 0; i < count; i++)
		uids[i] = s->sel.msgs[idx[i]].uid;
	if (store_flags(s->acc, s->sel.id, uids, count, mode, flags, keywords, 0, &modseq, NULL,
			NULL, &err) < 0)
		return imap_no_store(s, "store", err);
	for (size_t i = 0; i < count; i++) {
		struct imap_msg *m = &s->sel.msgs[idx[i]];
		char *kw = kw_apply(m->keywords, keywords, mode);

		if (mode == STORE_FLAGS_SET)
			m->flags = flags;
		else if (mode == STORE_FLAGS_ADD)
			m->flags |= flags;
		else
			m->flags &= ~flags;
		free(m->keywords);
		m->keywords = kw;
		if (silent)
			continue;
		imap_out(s, "* %zu FETCH (", idx[i] + 1);
		if (s->uid)
			imap_out(s, "UID %u ", m->uid);
		imap_out(s, "FLAGS ");
		imap_out_flags(s, m->flags, m->keywords);
		imap_out(s, ")\r\n");
	}
	return imap_ok(s, "STORE completed");
}

/* --- COPY, MOVE --- */

static int copy_move(struct imap_session *s, const struct imap_command *cmd, bool move)
{
	struct store_copy_result res;
	uint32_t *uids;
	size_t *idx, count;
	int64_t dst;
	const char *err;
	char *src_set, *dst_set;
	int r;

	if (cmd->count != 2)
		return imap_bad(s, "%s takes a set and a mailbox", move ? "MOVE" : "COPY");
	if (imap_resolve_set(s, &cmd->args[0], s->uid, &idx, &count, &err) < 0)
		return imap_bad(s, "%s", err);
	if (mailbox_id(s, &cmd->args[1], true, &dst) == 0)
		return 0;
	if (move && s->sel.readonly)
		return imap_no(s, "[READ-ONLY] mailbox is read-only");
	if (count == 0)
		return imap_ok(s, "%s completed", move ? "MOVE" : "COPY");
	uids = imap_pool_alloc(s->pool, count * sizeof(*uids));
	for (size_t i = 0; i < count; i++)
		uids[i] = s->sel.msgs[idx[i]].uid;
	if (move && dst == s->sel.id)
		return imap_no(s, "[CANNOT] source and destination are the same mailbox");
	r = move ? store_move(s->acc, s->sel.id, uids, count, dst, &res, &err) :
		   store_copy(s->acc, s->sel.id, uids, count, dst, &res, &err);
	if (r < 0)
		return imap_no_store(s, move ? "move" : "copy", err);
	src_set = imap_seqset_format_pairs(s->pool, res.src_uids, res.count);
	dst_set = imap_seqset_format_pairs(s->pool, res.dst_uids, res.count);
	if (!move) {
		if (res.count > 0)
			imap_ok(s, "[COPYUID %u %s %s] COPY completed", res.uidvalidity, src_set,
				dst_set);
		else
			imap_ok(s, "COPY completed");
		store_copy_result_free(&res);
		return 0;
	}
	/* RFC 6851 4.3: COPYUID in an untagged OK before the EXPUNGEs. */
	if (res.count > 0)
		imap_out(s, "* OK [COPYUID %u %s %s] moved\r\n", res.uidvalidity, src_set, dst_set);
	imap_report_expunged(s, res.src_uids, res.count);
	store_copy_result_free(&res);
	return imap_ok(s, "MOVE completed");
}

int imap_cmd_copy(struct imap_session *s, const struct imap_command *cmd)
{
	return copy_move(s, cmd, false);
}

int imap_cmd_move(struct imap_session *s, const struct imap_command *cmd)
{
	return copy_move(s, cmd, true);
}

/* --- IDLE --- */

int imap_cmd_idle(struct imap_session *s, const struct imap_command *cmd)
{
	const char *line, *err;
	unsigned waited = 0;
	int ret = -1;

	if (cmd->count != 0)
		return imap_bad(s, "IDLE takes no arguments");
	if (s->state == IMAP_STATE_SELECTED && imap_session_updates(s, true) < 0)
		return -1;
	imap_out(s, "+ idling\r\n");
	if (imap_flush(s) < 0)
		return -1;
	imap_set_read_timeout(s, IMAP_IDLE_POLL_MS);
	imap_metrics_idle(s->server->metrics, 1);
	for (;;) {
		ssize_t n = mf_conn_read_line(s->conn, IMAP_LINE_MAX_PREAUTH, &line, &err);
		if (n == MF_CONN_TIMEOUT) {
			if (mf_conn_draining(s->conn)) {
				imap_out(s, "* BYE [UNAVAILABLE] server shutting down\r\n");
				(void)imap_flush(s);
				goto out;
			}
			waited += IMAP_IDLE_POLL_MS;
			if (waited >= IMAP_AUTOLOGOUT_MS) {
				imap_out(s, "* BYE autologout: idle for too long\r\n");
				(void)imap_flush(s);
				goto out;
			}
			/* Changes from other sessions and deliveries reach
			 * this session here (RFC 2177 3). */
			if (s->state == IMAP_STATE_SELECTED && imap_session_updates(s, true) < 0) {
				(void)imap_flush(s);
				goto out;
			}
			if (imap_flush(s) < 0)
				goto out;
			continue;
		}
		if (n == MF_CONN_TOO_LONG) {
			imap_bad(s, "expected DONE");
			break;
		}
		if (n < 0)
			goto out;
		if (n == 4 && strncasecmp(line, "DONE", 4) == 0)
			imap_ok(s, "IDLE terminated");
		else
			imap_bad(s, "expected DONE");
		break;
	}
	ret = 0;
out:
	imap_metrics_idle(s->server->metrics, -1);
	imap_set_read_timeout(s, IMAP_AUTOLOGOUT_MS);
	return ret;
}
