/* imap_cmd_mailbox: SELECT, EXAMINE, CREATE (with CREATE-SPECIAL-USE,
 * RFC 6154 3), DELETE, RENAME, SUBSCRIBE, UNSUBSCRIBE, STATUS, CLOSE,
 * UNSELECT, EXPUNGE and UID EXPUNGE (RFC 4315 2.1). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "error.h"
#include "imap_cmd.h"
#include "imap_format.h"
#include "imap_session.h"

static const struct {
	const char *name;
	uint32_t bit;
} special_uses[] = {
	{ "\\All", STORE_SPECIAL_ALL },
	{ "\\Archive", STORE_SPECIAL_ARCHIVE },
	{ "\\Drafts", STORE_SPECIAL_DRAFTS },
	{ "\\Flagged", STORE_SPECIAL_FLAGGED },
	{ "\\Junk", STORE_SPECIAL_JUNK },
	{ "\\Sent", STORE_SPECIAL_SENT },
	{ "\\Trash", STORE_SPECIAL_TRASH },
};

uint32_t imap_special_use_parse(const char *name)
{
	for (size_t i = 0; i < sizeof(special_uses) / sizeof(special_uses[0]); i++)
		if (strcasecmp(name, special_uses[i].name) == 0)
			return special_uses[i].bit;
	return 0;
}

void imap_out_special_use(struct imap_session *s, uint32_t bits, bool *first)
{
	for (size_t i = 0; i < sizeof(special_uses) / sizeof(special_uses[0]); i++) {
		if ((bits & special_uses[i].bit) == 0)
			continue;
		imap_out(s, "%s%s", *first ? "" : " ", special_uses[i].name);
		*first = false;
	}
}

static int do_select(struct imap_session *s, const struct imap_command *cmd, bool readonly)
{
	struct store_mailbox mb;
	struct store_snapshot snap;
	const char *err;
	char *name;
	size_t first_unseen = 0;
	int r;

	if (cmd->count != 1) {
		/* Parameters (CONDSTORE, QRESYNC) are not supported yet. */
		return imap_bad(s, "%s takes one mailbox name", readonly ? "EXAMINE" : "SELECT");
	}
	if (s->selected) {
		imap_session_unselect(s);
		/* RFC 9051 7.1 CLOSED: the old mailbox's updates end here. */
		imap_out(s, "* OK [CLOSED] previous mailbox closed\r\n");
	}
	if (imap_mailbox_arg(s, &cmd->args[0], &name, &err) < 0)
		return imap_no(s, "%s", err);
	r = store_mailbox_get(s->acc, name, &mb, &err);
	if (r < 0)
		return imap_no_store(s, "select", err);
	if (r == 0)
		return imap_no(s, "[NONEXISTENT] no such mailbox");
	/* Clear the flag first: changes committed after the snapshot set it
	 * again. */
	atomic_store(&s->changed, false);
	r = store_mailbox_select(s->acc, mb.id, &snap, &err);
	store_mailbox_clear(&mb);
	if (r < 0)
		return imap_no_store(s, "select", err);
	if (r == 0)
		return imap_no(s, "[NONEXISTENT] no such mailbox");
	if (snap.count > IMAP_SELECT_MESSAGES_MAX) {
		store_snapshot_free(&snap);
		return imap_no(s, "[LIMIT] mailbox has too many messages");
	}
	imap_session_load_snapshot(s, &snap, readonly);
	store_snapshot_free(&snap);

	imap_out(s, "* %zu EXISTS\r\n", s->sel.count);
	if (!s->rev2) {
		imap_out(s, "* 0 RECENT\r\n");
		for (size_t i = 0; i < s->sel.count; i++) {
			if ((s->sel.msgs[i].flags & STORE_FLAG_SEEN) == 0) {
				first_unseen = i + 1;
				break;
			}
		}
		if (first_unseen > 0)
			imap_out(s, "* OK [UNSEEN %zu] first unseen message\r\n", first_unseen);
	}
	imap_out(s, "* FLAGS (\\Seen \\Answered \\Flagged \\Deleted \\Draft)\r\n");
	if (readonly)
		imap_out(s, "* OK [PERMANENTFLAGS ()] read-only mailbox\r\n");
	else
		imap_out(s, "* OK [PERMANENTFLAGS (\\Seen \\Answered \\Flagged \\Deleted "
			 "\\Draft \\*)] flags and keywords can be changed\r\n");
	imap_out(s, "* OK [UIDVALIDITY %u] UIDs valid\r\n", s->sel.uidvalidity);
	imap_out(s, "* OK [UIDNEXT %u] predicted next UID\r\n", s->sel.uidnext);
	if (s->rev2) {
		/* RFC 9051 6.3.2: a LIST response with the mailbox name. */
		imap_out(s, "* LIST () \"/\" ");
		imap_out_mailbox(s, s->sel.name);
		imap_out(s, "\r\n");
	}
	return imap_ok(s, "[%s] %s completed", readonly ? "READ-ONLY" : "READ-WRITE",
		       readonly ? "EXAMINE" : "SELECT");
}

int imap_cmd_select(struct imap_session *s, const struct imap_command *cmd)
{
	return do_select(s, cmd, false);
}

int imap_cmd_examine(struct imap_session *s, const struct imap_command *cmd)
{
	return do_select(s, cmd, true);
}

int imap_cmd_create(struct imap_session *s, const struct imap_command *cmd)
{
	const char *err;
	char *name;
	uint32_t special = 0;

	if (cmd->count < 1 || cmd->count > 2)
		return imap_bad(s, "CREATE takes a mailbox name and optional parameters");
	if (cmd->count == 2) {
		/* RFC 6154 3: CREATE name (USE (\Sent ...)) */
		const struct imap_arg *p = &cmd->args[1];
		if (p->type != IMAP_ARG_LIST || p->count != 2 ||
		    !imap_arg_atom_eq(&p->list[0], "USE") || p->list[1].type != IMAP_ARG_LIST)
			return imap_bad(s, "invalid CREATE parameters");
		for (size_t i = 0; i < p->list[1].count; i++) {
			const struct imap_arg *u = &p->list[1].list[i];
			uint32_t bit = u->type == IMAP_ARG_ATOM ? imap_special_use_parse(u->str) : 0;
			if (bit == 0)
				return imap_no(s, "[USEATTR] unknown special-use attribute");
			special |= bit;
		}
	}
	if (imap_mailbox_arg(s, &cmd->args[0], &name, &err) < 0)
		return imap_no(s, "%s", err);
	if (strcmp(name, "INBOX") == 0)
		return imap_no(s, "[ALREADYEXISTS] INBOX always exists");
	if (store_mailbox_create(s->acc, name, special, NULL, &err) < 0)
		return imap_no_store(s, "create", err);
	return imap_ok(s, "CREATE completed");
}

int imap_cmd_delete(struct imap_session *s, const struct imap_command *cmd)
{
	const char *err;
	char *name;

	if (cmd->count != 1)
		return imap_bad(s, "DELETE takes a mailbox name");
	if (imap_mailbox_arg(s, &cmd->args[0], &name, &err) < 0)
		return imap_no(s, "%s", err);
	if (strcmp(name, "INBOX") == 0)
		return imap_no(s, "[CANNOT] INBOX cannot be deleted");
	if (store_mailbox_delete(s->acc, name, &err) < 0)
		return imap_no_store(s, "delete", err);
	return imap_ok(s, "DELETE completed");
}

int imap_cmd_rename(struct imap_session *s, const struct imap_command *cmd)
{
	const char *err;
	char *from, *to;

	if (cmd->count != 2)
		return imap_bad(s, "RENAME takes two mailbox names");
	if (imap_mailbox_arg(s, &cmd->args[0], &from, &err) < 0 ||
	    imap_mailbox_arg(s, &cmd->args[1], &to, &err) < 0)
		return imap_no(s, "%s", err);
	if (store_mailbox_rename(s->acc, from, to, &err) < 0)
		return imap_no_store(s, "rename", err);
	return imap_ok(s, "RENAME completed");
}

static int do_subscribe(struct imap_session *s, const struct imap_command *cmd, bool on)
{
	const char *err;
	char *name;

	if (cmd->count != 1)
		return imap_bad(s, "%s takes a mailbox name", on ? "SUBSCRIBE" : "UNSUBSCRIBE");
	if (imap_mailbox_arg(s, &cmd->args[0], &name, &err) < 0)
		return imap_no(s, "%s", err);
	if (store_mailbox_subscribe(s->acc, name, on, &err) < 0) {
		/* Unsubscribing from a name that is gone is what the client wants. */
		if (!on && store_last_error_kind() == STORE_ERR_NOTFOUND)
			return imap_ok(s, "UNSUBSCRIBE completed");
		return imap_no_store(s, on ? "subscribe" : "unsubscribe", err);
	}
	return imap_ok(s, "%s completed", on ? "SUBSCRIBE" : "UNSUBSCRIBE");
}

int imap_cmd_subscribe(struct imap_session *s, const struct imap_command *cmd)
{
	return do_subscribe(s, cmd, true);
}

int imap_cmd_unsubscribe(struct imap_session *s, const struct imap_command *cmd)
{
	return do_subscribe(s, cmd, false);
}

int imap_status_items(struct imap_session *s, const struct imap_arg *items, const char **error_r)
{
	if (items->type != IMAP_ARG_LIST || items->count == 0) {
		*error_r = "STATUS items must be a non-empty list";
		return -1;
	}
	for (size_t i = 0; i < items->count; i++) {
		const struct imap_arg *a = &items->list[i];
		if (a->type != IMAP_ARG_ATOM)
			goto bad;
		if (strcasecmp(a->str, "MESSAGES") == 0 || strcasecmp(a->str, "UIDNEXT") == 0 ||
		    strcasecmp(a->str, "UIDVALIDITY") == 0 || strcasecmp(a->str, "UNSEEN") == 0 ||
		    strcasecmp(a->str, "DELETED") == 0 || strcasecmp(a->str, "SIZE") == 0 ||
		    strcasecmp(a->str, "APPENDLIMIT") == 0 ||
		    (!s->rev2 && strcasecmp(a->str, "RECENT") == 0))
			continue;
bad:
		*error_r = mf_errorf("unknown STATUS item %s", a->type == IMAP_ARG_ATOM ? a->str : "");
		return -1;
	}
	return 0;
}

void imap_out_status(struct imap_session *s, const struct store_mailbox *mb,
		     const struct imap_arg *items)
{
	imap_out(s, "* STATUS ");
	imap_out_mailbox(s, mb->name);
	imap_out(s, " (");
	for (size_t i = 0; i < items->count; i++) {
		const char *it = items->list[i].str;
		const char *sp = i > 0 ? " " : "";
		if (strcasecmp(it, "MESSAGES") == 0)
			imap_out(s, "%sMESSAGES %u", sp, mb->messages);
		else if (strcasecmp(it, "UIDNEXT") == 0)
			imap_out(s, "%sUIDNEXT %u", sp, mb->uidnext);
		else if (strcasecmp(it, "UIDVALIDITY") == 0)
			imap_out(s, "%sUIDVALIDITY %u", sp, mb->uidvalidity);
		else if (strcasecmp(it, "UNSEEN") == 0)
			imap_out(s, "%sUNSEEN %u", sp, mb->unseen);
		else if (strcasecmp(it, "DELETED") == 0)
			imap_out(s, "%sDELETED %u", sp, mb->deleted);
		else if (strcasecmp(it, "SIZE") == 0)
			imap_out(s, "%sSIZE %llu", sp, (unsigned long long)mb->size);
		else if (strcasecmp(it, "RECENT") == 0)
			imap_out(s, "%sRECENT 0", sp);
		else if (strcasecmp(it, "APPENDLIMIT") == 0)
			imap_out(s, "%sAPPENDLIMIT %llu", sp,
				 (unsigned long long)s->server->append_max);
	}
	imap_out(s, ")\r\n");
}

int imap_cmd_status(struct imap_session *s, const struct imap_command *cmd)
{
	struct store_mailbox mb;
	const char *err;
	char *name;
	int r;

	if (cmd->count != 2)
		return imap_bad(s, "STATUS takes a mailbox name and a list of items");
	if (imap_status_items(s, &cmd->args[1], &err) < 0)
		return imap_bad(s, "%s", err);
	if (imap_mailbox_arg(s, &cmd->args[0], &name, &err) < 0)
		return imap_no(s, "%s", err);
	r = store_mailbox_get(s->acc, name, &mb, &err);
	if (r < 0)
		return imap_no_store(s, "status", err);
	if (r == 0)
		return imap_no(s, "[NONEXISTENT] no such mailbox");
	imap_out_status(s, &mb, &cmd->args[1]);
	store_mailbox_clear(&mb);
	return imap_ok(s, "STATUS completed");
}

int imap_cmd_close(struct imap_session *s, const struct imap_command *cmd)
{
	const char *err;

	if (cmd->count != 0)
		return imap_bad(s, "CLOSE takes no arguments");
	/* RFC 9051 6.4.1: expunge silently unless read-only. */
	if (!s->sel.readonly && store_expunge(s->acc, s->sel.id, NULL, 0, NULL, NULL, &err) < 0) {
		imap_session_unselect(s);
		return imap_no_store(s, "close", err);
	}
	imap_session_unselect(s);
	return imap_ok(s, "CLOSE completed");
}

int imap_cmd_unselect(struct imap_session *s, const struct imap_command *cmd)
{
	if (cmd->count != 0)
		return imap_bad(s, "UNSELECT takes no arguments");
	imap_session_unselect(s);
	return imap_ok(s, "UNSELECT completed");
}

/* Sends "* n EXPUNGE" for each of the UIDs this session knows. */
void imap_report_expunged(struct imap_session *s, const uint32_t *uids, size_t count)
{
	for (size_t i = 0; i < count; i++) {
		ssize_t idx = imap_selected_find(&s->sel, uids[i]);
		if (idx < 0)
			continue;
		imap_out(s, "* %zu EXPUNGE\r\n", (size_t)idx + 1);
		imap_selected_remove(&s->sel, (size_t)idx);
	}
}

int imap_cmd_expunge(struct imap_session *s, const struct imap_command *cmd)
{
	uint32_t *uids = NULL, *expunged = NULL;
	size_t count = 0, nexp = 0, *idx;
	const char *err;

	if (s->uid) {
		if (cmd->count != 1)
			return imap_bad(s, "UID EXPUNGE takes a UID set");
		if (imap_resolve_set(s, &cmd->args[0], true, &idx, &count, &err) < 0)
			return imap_bad(s, "%s", err);
		if (count == 0)
			return imap_ok(s, "EXPUNGE completed");
		uids = imap_pool_alloc(s->pool, count * sizeof(*uids));
		for (size_t i = 0; i < count; i++)
			uids[i] = s->sel.msgs[idx[i]].uid;
	} else if (cmd->count != 0) {
		return imap_bad(s, "EXPUNGE takes no arguments");
	}
	if (s->sel.readonly)
		return imap_no(s, "[READ-ONLY] mailbox is read-only");
	if (store_expunge(s->acc, s->sel.id, uids, count, &expunged, &nexp, &err) < 0)
		return imap_no_store(s, "expunge", err);
	imap_report_expunged(s, expunged, nexp);
	free(expunged);
	return imap_ok(s, "EXPUNGE completed");
}

/* --- message metadata pages --- */

void imap_meta_cursor_free(struct imap_meta_cursor *c)
{
	store_messages_free(&c->page, c->count);
	c->count = 0;
	if (c->have_fallback)
		store_message_clear(&c->fallback);
	c->have_fallback = false;
}

static const struct store_message *page_find(const struct imap_meta_cursor *c, uint32_t uid)
{
	size_t lo = 0, hi = c->count;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (c->page[mid].uid == uid)
			return &c->page[mid];
		if (c->page[mid].uid < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

int imap_meta_get(struct imap_session *s, struct imap_meta_cursor *c, uint32_t uid,
		  const struct store_message **msg_r, const char **error_r)
{
	const struct store_message *m;
	int r;

	if (c->have_fallback) {
		store_message_clear(&c->fallback);
		c->have_fallback = false;
	}
	if (c->count == 0 || uid < c->page[0].uid || uid > c->page[c->count - 1].uid) {
		size_t limit = c->want > 0 && c->want < IMAP_META_PAGE ? c->want : IMAP_META_PAGE;

		store_messages_free(&c->page, c->count);
		c->count = 0;
		if (store_messages_list(s->acc, s->sel.id, uid, limit, &c->page, &c->count,
					error_r) < 0)
			return -1;
	}
	if (c->want > 0)
		c->want--;
	m = page_find(c, uid);
	if (m != NULL) {
		*msg_r = m;
		return 1;
	}
	r = store_message_get(s->acc, s->sel.id, uid, &c->fallback, error_r);
	if (r <= 0)
		return r;
	c->have_fallback = true;
	*msg_r = &c->fallback;
	return 1;
}
