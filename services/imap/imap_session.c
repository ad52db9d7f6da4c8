/* imap_session: the connection loop, command table, output and untagged
 * updates (see imap_session.h). */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "error.h"
#include "imap_format.h"
#include "imap_mutf7.h"
#include "imap_seqset.h"
#include "imap_session.h"
#include "log.h"

#define PKG "imap"

/* Bytes of a literal read per call (the deadline covers one call). */
#define IMAP_LITERAL_CHUNK 65536

enum {
	CMD_F_NO_EXPUNGE = 1 << 0,   /* FETCH/STORE/SEARCH by sequence number */
};

struct cmd_def {
	const char *name;
	unsigned states;
	imap_cmd_fn *run;
	unsigned flags;
};

#define ANY (IMAP_STATE_NOAUTH | IMAP_STATE_AUTH | IMAP_STATE_SELECTED)
#define AUTHED (IMAP_STATE_AUTH | IMAP_STATE_SELECTED)
#define SEL IMAP_STATE_SELECTED

static const struct cmd_def commands[] = {
	{ "CAPABILITY", ANY, imap_cmd_capability, 0 },
	{ "NOOP", ANY, imap_cmd_noop, 0 },
	{ "LOGOUT", ANY, imap_cmd_logout, 0 },
	{ "ID", ANY, imap_cmd_id, 0 },
	{ "STARTTLS", IMAP_STATE_NOAUTH, imap_cmd_starttls, 0 },
	{ "AUTHENTICATE", IMAP_STATE_NOAUTH, imap_cmd_authenticate, 0 },
	{ "LOGIN", IMAP_STATE_NOAUTH, imap_cmd_login, 0 },
	{ "ENABLE", AUTHED, imap_cmd_enable, 0 },
	{ "NAMESPACE", AUTHED, imap_cmd_namespace, 0 },
	{ "SELECT", AUTHED, imap_cmd_select, 0 },
	{ "EXAMINE", AUTHED, imap_cmd_examine, 0 },
	{ "CREATE", AUTHED, imap_cmd_create, 0 },
	{ "DELETE", AUTHED, imap_cmd_delete, 0 },
	{ "RENAME", AUTHED, imap_cmd_rename, 0 },
	{ "SUBSCRIBE", AUTHED, imap_cmd_subscribe, 0 },
	{ "UNSUBSCRIBE", AUTHED, imap_cmd_unsubscribe, 0 },
	{ "LIST", AUTHED, imap_cmd_list, 0 },
	{ "LSUB", AUTHED, imap_cmd_lsub, 0 },
	{ "STATUS", AUTHED, imap_cmd_status, 0 },
	{ "APPEND", AUTHED, imap_cmd_append, 0 },
	{ "IDLE", AUTHED, imap_cmd_idle, 0 },
	{ "CHECK", SEL, imap_cmd_check, 0 },
	{ "CLOSE", SEL, imap_cmd_close, 0 },
	{ "UNSELECT", SEL, imap_cmd_unselect, 0 },
	{ "EXPUNGE", SEL, imap_cmd_expunge, 0 },
	{ "SEARCH", SEL, imap_cmd_search, CMD_F_NO_EXPUNGE },
	{ "FETCH", SEL, imap_cmd_fetch, CMD_F_NO_EXPUNGE },
	{ "STORE", SEL, imap_cmd_store, CMD_F_NO_EXPUNGE },
	{ "COPY", SEL, imap_cmd_copy, 0 },
	{ "MOVE", SEL, imap_cmd_move, 0 },
};

/* Commands that may follow "UID". */
static const struct cmd_def uid_commands[] = {
	{ "FETCH", SEL, imap_cmd_fetch, 0 },
	{ "STORE", SEL, imap_cmd_store, 0 },
	{ "SEARCH", SEL, imap_cmd_search, 0 },
	{ "COPY", SEL, imap_cmd_copy, 0 },
	{ "MOVE", SEL, imap_cmd_move, 0 },
	{ "EXPUNGE", SEL, imap_cmd_expunge, 0 },
};

/* --- output --- */

void imap_set_read_timeout(struct imap_session *s, unsigned ms)
{
	s->read_timeout_ms = ms;
	mf_conn_set_timeout(s->conn, ms);
}

/* Writes with the write deadline (the connection has one timeout for both
 * directions; reads in IDLE use a short one). */
static int conn_write(struct imap_session *s, const void *data, size_t len)
{
	const char *err;
	int r;

	mf_conn_set_timeout(s->conn, IMAP_WRITE_TIMEOUT_MS);
	r = mf_conn_write(s->conn, data, len, &err);
	mf_conn_set_timeout(s->conn, s->read_timeout_ms);
	if (r < 0) {
		mf_log_debug(PKG, s->cid, "write failed", "error=%s", err);
		s->write_failed = true;
		return -1;
	}
	return 0;
}

int imap_flush(struct imap_session *s)
{
	int r;

	if (s->write_failed)
		return -1;
	if (s->out.len == 0)
		return 0;
	if (mf_log_enabled(PKG, MF_LOG_TRACE))
		mf_log_trace(PKG, s->cid, "S", MF_TRACE_PROTO, s->out.data,
			     s->out.len > 2000 ? 2000 : s->out.len);
	r = conn_write(s, s->out.data, s->out.len);
	mf_buf_reset(&s->out);
	return r;
}

static void out_check(struct imap_session *s)
{
	if (s->out.len >= IMAP_OUT_FLUSH)
		(void)imap_flush(s);
}

void imap_out(struct imap_session *s, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	(void)mf_buf_vappendf(&s->out, fmt, ap);
	va_end(ap);
	out_check(s);
}

void imap_out_raw(struct imap_session *s, const void *data, size_t len)
{
	if (len >= IMAP_OUT_FLUSH) {
		(void)imap_flush(s);
		if (!s->write_failed)
			(void)conn_write(s, data, len);
		return;
	}
	(void)mf_buf_append(&s->out, data, len);
	out_check(s);
}

void imap_out_string(struct imap_session *s, const char *str, size_t len)
{
	imap_format_string(&s->out, str, len, s->utf8);
	out_check(s);
}

void imap_out_nstring(struct imap_session *s, const char *str)
{
	if (str == NULL)
		imap_out_raw(s, "NIL", 3);
	else
		imap_out_string(s, str, strlen(str));
}

void imap_out_mailbox(struct imap_session *s, const char *name)
{
	char *enc;
	const char *err;

	if (!s->utf8 && imap_mutf7_encode(s->pool, name, strlen(name), &enc, &err) == 0)
		name = enc;
	imap_out_string(s, name, strlen(name));
}

void imap_out_flags(struct imap_session *s, uint32_t flags, const char *keywords)
{
	imap_format_flags(&s->out, flags, keywords);
	out_check(s);
}

static int set_reply(struct imap_session *s, bool bad, const char *word, const char *fmt,
		     va_list ap)
{
	char text[1024];

	vsnprintf(text, sizeof(text), fmt, ap);
	s->reply = imap_pool_printf(s->pool, "%s %s", word, text);
	s->reply_bad = bad;
	return 0;
}

int imap_ok(struct imap_session *s, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	set_reply(s, false, "OK", fmt, ap);
	va_end(ap);
	return 0;
}

int imap_no(struct imap_session *s, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	set_reply(s, false, "NO", fmt, ap);
	va_end(ap);
	return 0;
}

int imap_bad(struct imap_session *s, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	set_reply(s, true, "BAD", fmt, ap);
	va_end(ap);
	return 0;
}

int imap_no_store(struct imap_session *s, const char *what, const char *error)
{
	const char *code;

	switch (store_last_error_kind()) {
	case STORE_ERR_NOTFOUND: code = "[NONEXISTENT] "; break;
	case STORE_ERR_EXISTS: code = "[ALREADYEXISTS] "; break;
	case STORE_ERR_INVALID: code = "[CANNOT] "; break;
	case STORE_ERR_OVERQUOTA: code = "[OVERQUOTA] "; break;
	case STORE_ERR_TOOBIG: code = "[TOOBIG] "; break;
	case STORE_ERR_REMOVED: code = "[UNAVAILABLE] "; break;
	default:
		code = "[UNAVAILABLE] ";
		mf_log_warn(PKG, s->cid, "store error", "account=%s op=%s error=%s",
			    s->account != NULL ? s->account : "", what, error);
		break;
	}
	return imap_no(s, "%s%s: %s", code, what, error);
}

/* --- arguments --- */

int imap_mailbox_arg(struct imap_session *s, const struct imap_arg *arg, char **name_r,
		     const char **error_r)
{
	char *name;

	if (!imap_arg_is_string(arg)) {
		*error_r = "mailbox name expected";
		return -1;
	}
	if (arg->len != strlen(arg->str) || arg->len > STORE_MAILBOX_NAME_MAX) {
		*error_r = "invalid mailbox name";
		return -1;
	}
	if (!s->utf8) {
		if (imap_mutf7_decode(s->pool, arg->str, arg->len, &name, error_r) < 0)
			return -1;
	} else {
		if (!imap_format_valid_utf8(arg->str, arg->len)) {
			*error_r = "invalid UTF-8 in mailbox name";
			return -1;
		}
		name = imap_pool_strndup(s->pool, arg->str, arg->len);
	}
	if (strcasecmp(name, "INBOX") == 0)
		name = imap_pool_strdup(s->pool, "INBOX");
	else if (strncasecmp(name, "INBOX/", 6) == 0)
		memcpy(name, "INBOX", 5);
	if (name[0] == '\0') {
		*error_r = "empty mailbox name";
		return -1;
	}
	/* "#" starts namespace names (RFC 9051 5.1.2); allowed further on. */
	if (name[0] == '#') {
		*error_r = "mailbox name cannot start with \"#\"";
		return -1;
	}
	for (const char *p = name; *p != '\0'; p++) {
		if ((unsigned char)*p < 0x20 || *p == 0x7f) {
			*error_r = "control character in mailbox name";
			return -1;
		}
	}
	*name_r = name;
	return 0;
}

static const struct {
	const char *name;
	uint32_t bit;
} system_flags[] = {
	{ "\\Seen", STORE_FLAG_SEEN },
	{ "\\Answered", STORE_FLAG_ANSWERED },
	{ "\\Flagged", STORE_FLAG_FLAGGED },
	{ "\\Deleted", STORE_FLAG_DELETED },
	{ "\\Draft", STORE_FLAG_DRAFT },
};

static int add_flag(struct imap_session *s, const struct imap_arg *a, uint32_t *flags,
		    struct mf_buf *kw, const char **error_r)
{
	if (a->type != IMAP_ARG_ATOM) {
		*error_r = "invalid flag";
		return -1;
	}
	if (a->str[0] == '\\') {
		for (size_t i = 0; i < sizeof(system_flags) / sizeof(system_flags[0]); i++) {
			if (strcasecmp(a->str, system_flags[i].name) == 0) {
				*flags |= system_flags[i].bit;
				return 0;
			}
		}
		/* \Recent cannot be set (RFC 3501 2.3.2); other system flags
		 * are unknown. */
		*error_r = mf_errorf("unknown system flag %s", a->str);
		return -1;
	}
	for (const char *p = a->str; *p != '\0'; p++) {
		if (strchr("()]{%*\"\\", *p) != NULL || (unsigned char)*p <= ' ' ||
		    (unsigned char)*p >= 0x7f) {
			*error_r = "invalid keyword";
			return -1;
		}
	}
	if (a->len > STORE_KEYWORD_MAX) {
		*error_r = "keyword too long";
		return -1;
	}
	/* Keywords are case-insensitive; skip repeats. */
	for (const char *p = kw->data; p != NULL && *p != '\0';) {
		const char *e = strchr(p, ' ');
		size_t n = e != NULL ? (size_t)(e - p) : strlen(p);
		if (n == a->len && strncasecmp(p, a->str, n) == 0)
			return 0;
		p = e != NULL ? e + 1 : p + n;
	}
	if ((kw->len > 0 && mf_buf_append(kw, " ", 1) < 0) ||
	    mf_buf_append(kw, a->str, a->len) < 0) {
		*error_r = "too many keywords";
		return -1;
	}
	return 0;
}

int imap_flags_arg(struct imap_session *s, const struct imap_arg *arg, uint32_t *flags_r,
		   char **keywords_r, const char **error_r)
{
	struct mf_buf kw;
	int ret = -1;

	*flags_r = 0;
	mf_buf_init(&kw, (STORE_KEYWORD_MAX + 1) * STORE_KEYWORDS_MAX);
	if (arg->type == IMAP_ARG_LIST) {
		for (size_t i = 0; i < arg->count; i++)
			if (add_flag(s, &arg->list[i], flags_r, &kw, error_r) < 0)
				goto out;
	} else if (add_flag(s, arg, flags_r, &kw, error_r) < 0) {
		goto out;
	}
	*keywords_r = kw.len > 0 ? imap_pool_strndup(s->pool, kw.data, kw.len) : NULL;
	ret = 0;
out:
	mf_buf_free(&kw);
	return ret;
}

/* --- selected mailbox --- */

ssize_t imap_selected_find(const struct imap_selected *sel, uint32_t uid)
{
	size_t lo = 0, hi = sel->count;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (sel->msgs[mid].uid == uid)
			return (ssize_t)mid;
		if (sel->msgs[mid].uid < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

void imap_selected_remove(struct imap_selected *sel, size_t i)
{
	free(sel->msgs[i].keywords);
	memmove(&sel->msgs[i], &sel->msgs[i + 1], (sel->count - i - 1) * sizeof(sel->msgs[0]));
	sel->count--;
}

static void selected_append(struct imap_selected *sel, const struct store_msg_state *m)
{
	if (sel->count == sel->cap) {
		sel->cap = sel->cap == 0 ? 64 : sel->cap * 2;
		sel->msgs = mf_xrealloc(sel->msgs, sel->cap * sizeof(sel->msgs[0]));
	}
	sel->msgs[sel->count].uid = m->uid;
	sel->msgs[sel->count].flags = m->flags;
	sel->msgs[sel->count].keywords = m->keywords != NULL ? mf_xstrdup(m->keywords) : NULL;
	sel->msgs[sel->count].modseq = m->modseq;
	sel->count++;
}

void imap_session_unselect(struct imap_session *s)
{
	for (size_t i = 0; i < s->sel.count; i++)
		free(s->sel.msgs[i].keywords);
	free(s->sel.msgs);
	free(s->sel.name);
	free(s->sel.saved);
	memset(&s->sel, 0, sizeof(s->sel));
	s->selected = false;
	if (s->state == IMAP_STATE_SELECTED)
		s->state = IMAP_STATE_AUTH;
}

int imap_session_load_snapshot(struct imap_session *s, const struct store_snapshot *snap,
			       bool readonly)
{
	imap_session_unselect(s);
	s->sel.id = snap->mailbox.id;
	s->sel.name = mf_xstrdup(snap->mailbox.name);
	s->sel.readonly = readonly;
	s->sel.uidvalidity = snap->mailbox.uidvalidity;
	s->sel.uidnext = snap->mailbox.uidnext;
	s->sel.highestmodseq = snap->mailbox.highestmodseq;
	for (size_t i = 0; i < snap->count; i++)
		selected_append(&s->sel, &snap->msgs[i]);
	s->selected = true;
	s->state = IMAP_STATE_SELECTED;
	return 0;
}

static bool keywords_equal(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return strcmp(a, b) == 0;
}

int imap_session_updates(struct imap_session *s, bool allow_expunge)
{
	struct store_changes ch;
	const char *err;
	size_t old_count;
	int r;

	if (!s->selected || !allow_expunge)
		return 0;
	if (!atomic_exchange(&s->changed, false))
		return 0;
	r = store_mailbox_changes(s->acc, s->sel.id, s->sel.highestmodseq, &ch, &err);
	if (r < 0) {
		/* Try again at the next opportunity. */
		atomic_store(&s->changed, true);
		mf_log_warn(PKG, s->cid, "reading mailbox changes", "error=%s", err);
		return 0;
	}
	if (r == 0) {
		/* The mailbox was deleted (or renamed away) under us. */
		imap_out(s, "* BYE [UNAVAILABLE] selected mailbox was deleted\r\n");
		return -1;
	}
	/* Expunges first: sequence numbers of later FETCH lines are after. */
	for (size_t i = 0; i < ch.expunged_count; i++) {
		ssize_t idx = imap_selected_find(&s->sel, ch.expunged[i]);
		if (idx < 0)
			continue;
		imap_out(s, "* %zu EXPUNGE\r\n", (size_t)idx + 1);
		imap_selected_remove(&s->sel, (size_t)idx);
	}
	old_count = s->sel.count;
	for (size_t i = 0; i < ch.changed_count; i++) {
		const struct store_msg_state *m = &ch.changed[i];
		ssize_t idx = imap_selected_find(&s->sel, m->uid);
		if (idx < 0) {
			if (s->sel.count > 0 && m->uid <= s->sel.msgs[s->sel.count - 1].uid)
				continue;  /* expunged before we saw it */
			if (s->sel.count >= IMAP_SELECT_MESSAGES_MAX)
				continue;
			selected_append(&s->sel, m);
			continue;
		}
		struct imap_msg *have = &s->sel.msgs[idx];
		if (have->flags == m->flags && keywords_equal(have->keywords, m->keywords)) {
			have->modseq = m->modseq;
			continue;
		}
		have->flags = m->flags;
		free(have->keywords);
		have->keywords = m->keywords != NULL ? mf_xstrdup(m->keywords) : NULL;
		have->modseq = m->modseq;
		imap_out(s, "* %zu FETCH (UID %u FLAGS ", (size_t)idx + 1, have->uid);
		imap_out_flags(s, have->flags, have->keywords);
		imap_out(s, ")\r\n");
	}
	if (s->sel.count != old_count) {
		imap_out(s, "* %zu EXISTS\r\n", s->sel.count);
		if (!s->rev2)
			imap_out(s, "* 0 RECENT\r\n");
	}
	if (ch.highestmodseq > s->sel.highestmodseq)
		s->sel.highestmodseq = ch.highestmodseq;
	if (s->sel.count > 0 && s->sel.msgs[s->sel.count - 1].uid >= s->sel.uidnext)
		s->sel.uidnext = s->sel.msgs[s->sel.count - 1].uid + 1;
	store_changes_free(&ch);
	return 0;
}

int imap_resolve_set(struct imap_session *s, const struct imap_arg *arg, bool uid,
		     size_t **idx_r, size_t *count_r, const char **error_r)
{
	struct imap_seqset set;
	size_t *idx, n = 0;
	uint32_t max;

	if (arg->type != IMAP_ARG_ATOM) {
		*error_r = "sequence set expected";
		return -1;
	}
	idx = imap_pool_alloc(s->pool, (s->sel.count + 1) * sizeof(*idx));
	if (strcmp(arg->str, "$") == 0) {
		/* RFC 5182 2.1: "$" is the saved result; an unset result is
		 * empty.  It holds UIDs, good for UID and non-UID commands. */
		for (size_t i = 0; s->sel.saved_valid && i < s->sel.saved_count; i++) {
			ssize_t k = imap_selected_find(&s->sel, s->sel.saved[i]);
			if (k >= 0)
				idx[n++] = (size_t)k;
		}
		*idx_r = idx;
		*count_r = n;
		return 0;
	}
	if (imap_seqset_parse(s->pool, arg->str, &set, error_r) < 0)
		return -1;
	if (uid) {
		max = s->sel.count > 0 ? s->sel.msgs[s->sel.count - 1].uid : 0;
		/* "*" in UID sets is the highest UID; with no messages a
		 * range like "5:*" still means 5 (RFC 9051 6.4.9): use
		 * uidnext - 1 so UID FETCH n:* behaves. */
		if (max == 0 && s->sel.uidnext > 1)
			max = s->sel.uidnext - 1;
		for (size_t i = 0; i < s->sel.count; i++)
			if (imap_seqset_contains(&set, s->sel.msgs[i].uid, max))
				idx[n++] = i;
	} else {
		max = (uint32_t)s->sel.count;
		/* Clients send "1:*" to empty mailboxes; RFC 9051 9 lets "*"
		 * there be an error, but an empty result is kinder. */
		if (max == 0)
			goto done;
		for (size_t r = 0; r < set.count; r++) {
			uint32_t lo = set.ranges[r].lo, hi = set.ranges[r].hi;
			if (lo == IMAP_SEQ_STAR)
				lo = max;
			if (hi == IMAP_SEQ_STAR)
				hi = max;
			if ((lo > max || hi > max) || lo == 0 || hi == 0) {
				*error_r = "invalid message sequence number";
				return -1;
			}
		}
		for (size_t i = 0; i < s->sel.count; i++)
			if (imap_seqset_contains(&set, (uint32_t)(i + 1), max))
				idx[n++] = i;
	}
done:
	*idx_r = idx;
	*count_r = n;
	return 0;
}

/* --- login --- */

static void change_cb(void *ctx, const struct store_change *change)
{
	struct imap_session *s = ctx;

	atomic_store(&s->changed, true);
}

int imap_session_login(struct imap_session *s, const char *account, const char *login,
		       const char **error_r)
{
	int r;

	char akey[STORE_MAILBOX_NAME_MAX];

	snprintf(akey, sizeof(akey), "acct:%s", account);
	if (!imap_conn_counts_take(s->server->counts, akey, s->server->conns_per_account)) {
		*error_r = "[LIMIT] too many connections for this account";
		return -1;
	}
	r = store_account_open(s->server->store, account, &s->acc, error_r);
	if (r <= 0) {
		imap_conn_counts_release(s->server->counts, akey);
		if (r == 0)
			*error_r = "[UNAVAILABLE] account has no mail store";
		else
			*error_r = mf_errorf("[UNAVAILABLE] %s", *error_r);
		return -1;
	}
	s->account = mf_xstrdup(account);
	s->login = mf_xstrdup(login);
	s->sub = store_subscribe(s->acc, change_cb, s);
	s->state = IMAP_STATE_AUTH;
	if (s->counted_ip) {
		/* The preauth slot is handed back; the per-IP total stays. */
		char key[MF_NET_ADDR_STR_MAX + 8];
		snprintf(key, sizeof(key), "pre:%s", mf_conn_remote_ip(s->conn));
		imap_conn_counts_release(s->server->counts, key);
		s->counted_ip = false;
	}
	mf_log_info(PKG, s->cid, "login", "account=%s login=%s remote=%s tls=%s", account, login,
		    mf_conn_remote_ip(s->conn), mf_conn_is_tls(s->conn) ? "yes" : "no");
	return 0;
}

/* --- the loop --- */

static void set_limits(struct imap_session *s)
{
	struct imap_parser_limits lim;
	bool authed = s->state != IMAP_STATE_NOAUTH;

	lim.line_max = authed ? IMAP_LINE_MAX : IMAP_LINE_MAX_PREAUTH;
	lim.literal_max = authed ? s->server->append_max : IMAP_LITERAL_MAX_PREAUTH;
	lim.command_max = authed ? s->server->append_max + IMAP_LINE_MAX * 4 :
				   IMAP_LINE_MAX_PREAUTH * 4;
	lim.literal_minus = false;
	imap_parser_set_limits(s->parser, &lim);
	imap_set_read_timeout(s, authed ? IMAP_AUTOLOGOUT_MS : IMAP_PREAUTH_TIMEOUT_MS);
}

static const struct cmd_def *find_cmd(const struct cmd_def *table, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(table[i].name, name) == 0)
			return &table[i];
	return NULL;
}

/* Runs one parsed command.  Returns -1 to end the connection. */
static int run_command(struct imap_session *s, struct imap_command *cmd)
{
	const struct cmd_def *def;
	struct imap_command sub;
	int ret;

	s->tag = cmd->tag;
	s->uid = false;
	s->reply = NULL;
	def = find_cmd(commands, sizeof(commands) / sizeof(commands[0]), cmd->name);
	if (def == NULL && strcmp(cmd->name, "UID") == 0) {
		if (s->state != IMAP_STATE_SELECTED) {
			imap_bad(s, "no mailbox selected");
			goto reply;
		}
		if (cmd->count == 0 || cmd->args[0].type != IMAP_ARG_ATOM) {
			imap_bad(s, "UID needs a command");
			goto reply;
		}
		sub = *cmd;
		sub.name = imap_pool_strdup(s->pool, cmd->args[0].str);
		for (char *c = (char *)sub.name; *c != '\0'; c++)
			*c = (char)toupper((unsigned char)*c);
		sub.args = cmd->args + 1;
		sub.count = cmd->count - 1;
		def = find_cmd(uid_commands, sizeof(uid_commands) / sizeof(uid_commands[0]),
			       sub.name);
		if (def == NULL) {
			imap_bad(s, "unknown UID command");
			goto reply;
		}
		cmd = &sub;
		s->uid = true;
	}
	if (def == NULL) {
		s->bad_commands++;
		imap_bad(s, "unknown command");
		goto reply;
	}
	if ((def->states & s->state) == 0) {
		if (s->state == IMAP_STATE_NOAUTH)
			imap_bad(s, "log in first");
		else if (def->states == IMAP_STATE_NOAUTH)
			imap_bad(s, "already logged in");
		else
			imap_bad(s, "no mailbox selected");
		goto reply;
	}
	ret = def->run(s, cmd);
	if (ret < 0) {
		(void)imap_flush(s);
		return -1;
	}
	if (s->state == IMAP_STATE_LOGOUT)
		goto reply;
	if (s->state == IMAP_STATE_SELECTED &&
	    imap_session_updates(s, (def->flags & CMD_F_NO_EXPUNGE) == 0) < 0) {
		(void)imap_flush(s);
		return -1;
	}
reply:
	if (s->reply != NULL) {
		imap_metrics_command(s->server->metrics, cmd->name,
				     s->reply_bad ? "bad" : s->reply[0] == 'N' ? "no" : "ok");
		imap_out(s, "%s %s\r\n", cmd->tag, s->reply);
		if (s->reply_bad)
			s->bad_commands++;
		else
			s->bad_commands = 0;
	}
	if (imap_flush(s) < 0)
		return -1;
	if (s->state == IMAP_STATE_LOGOUT)
		return -1;
	if (s->bad_commands >= IMAP_BAD_COMMANDS_MAX) {
		imap_out(s, "* BYE too many bad commands\r\n");
		(void)imap_flush(s);
		return -1;
	}
	return 0;
}

/* Reads a literal of size bytes into the parser. */
static int read_literal(struct imap_session *s, uint64_t size)
{
	char *chunk = mf_xmalloc(IMAP_LITERAL_CHUNK);
	const char *err;
	int ret = -1;

	while (size > 0) {
		size_t n = size > IMAP_LITERAL_CHUNK ? IMAP_LITERAL_CHUNK : (size_t)size;
		int r = mf_conn_read_exact(s->conn, chunk, n, &err);
		if (r < 0) {
			if (r == MF_CONN_ERROR)
				mf_log_debug(PKG, s->cid, "read failed", "error=%s", err);
			goto out;
		}
		imap_parser_literal(s->parser, chunk, n);
		size -= n;
	}
	ret = 0;
out:
	free(chunk);
	return ret;
}

static void session_loop(struct imap_session *s)
{
	for (;;) {
		struct imap_literal_spec spec;
		struct imap_command cmd;
		const char *line, *err, *pending_tag;
		ssize_t n;
		int r;
		enum imap_parser_result pr;

		if (mf_conn_draining(s->conn)) {
			imap_out(s, "* BYE [UNAVAILABLE] server shutting down\r\n");
			(void)imap_flush(s);
			return;
		}
		n = mf_conn_read_line(s->conn, IMAP_LINE_MAX, &line, &err);
		if (n == MF_CONN_TOO_LONG) {
			const char *tag = imap_parser_tag(s->parser, s->pool);
			imap_parser_reset(s->parser);
			imap_out(s, "%s BAD line too long\r\n", tag);
			if (imap_flush(s) < 0)
				return;
			continue;
		}
		if (n == MF_CONN_TIMEOUT) {
			imap_out(s, "* BYE autologout: idle for too long\r\n");
			(void)imap_flush(s);
			return;
		}
		if (n < 0) {
			if (n == MF_CONN_ERROR)
				mf_log_debug(PKG, s->cid, "read failed", "error=%s", err);
			return;
		}
		if (mf_log_enabled(PKG, MF_LOG_TRACE))
			mf_log_trace(PKG, s->cid, "C",
				     s->state == IMAP_STATE_NOAUTH ? MF_TRACE_AUTH : MF_TRACE_PROTO,
				     line, (size_t)n);
		pending_tag = imap_parser_tag(s->parser, s->pool);
		pr = imap_parser_line(s->parser, line, (size_t)n, &spec, &err);
		if (pr == IMAP_PARSE_LITERAL) {
			if (!spec.nonsync) {
				imap_out(s, "+ Ready for literal data\r\n");
				if (imap_flush(s) < 0)
					return;
			}
			if (read_literal(s, spec.size) < 0)
				return;
			continue;
		}
		if (pr == IMAP_PARSE_ERROR || pr == IMAP_PARSE_FATAL) {
			/* The tag is the command's first word, when it has one. */
			const char *tag = pending_tag;
			size_t i;
			for (i = 0; i < (size_t)n && i < IMAP_TAG_MAX && line[i] != ' '; i++)
				;
			if (strcmp(tag, "*") == 0 && i > 0 && i < (size_t)n && line[i] == ' ')
				tag = imap_pool_strndup(s->pool, line, i);
			/* A literal over the limit is NO [TOOBIG] (RFC 9051
			 * 7.1, RFC 7889), other syntax errors BAD. */
			imap_out(s, "%s %s %s\r\n", tag,
				 strncmp(err, "[TOOBIG]", 8) == 0 ? "NO" : "BAD", err);
			if (pr == IMAP_PARSE_FATAL) {
				imap_out(s, "* BYE cannot continue after a refused literal\r\n");
				(void)imap_flush(s);
				return;
			}
			if (imap_flush(s) < 0)
				return;
			if (++s->bad_commands >= IMAP_BAD_COMMANDS_MAX) {
				imap_out(s, "* BYE too many bad commands\r\n");
				(void)imap_flush(s);
				return;
			}
			imap_pool_clear(s->pool);
			continue;
		}
		r = imap_parser_finish(s->parser, s->pool, &cmd, &err);
		if (r < 0) {
			imap_parser_reset(s->parser);
			imap_out(s, "%s BAD %s\r\n", cmd.tag, err);
			if (imap_flush(s) < 0)
				return;
			if (++s->bad_commands >= IMAP_BAD_COMMANDS_MAX) {
				imap_out(s, "* BYE too many bad commands\r\n");
				(void)imap_flush(s);
				return;
			}
			imap_pool_clear(s->pool);
			continue;
		}
		r = run_command(s, &cmd);
		imap_parser_reset(s->parser);
		if (r < 0)
			return;
		imap_pool_clear(s->pool);
		set_limits(s);
	}
}

void imap_session_run(struct mf_conn *conn, struct imap_server *server)
{
	struct imap_session s;
	char key[STORE_MAILBOX_NAME_MAX];
	const char *ip = mf_conn_remote_ip(conn);
	bool ip_counted = false;

	memset(&s, 0, sizeof(s));
	s.conn = conn;
	s.server = server;
	s.state = IMAP_STATE_NOAUTH;
	s.cid = mf_conn_id(conn);
	s.pool = imap_pool_create();
	s.parser = imap_parser_create();
	atomic_init(&s.changed, false);
	mf_buf_init(&s.out, 0);
	set_limits(&s);

	snprintf(key, sizeof(key), "ip:%s", ip);
	if (!imap_conn_counts_take(server->counts, key, server->conns_per_ip)) {
		imap_out(&s, "* BYE [UNAVAILABLE] too many connections from your address\r\n");
		(void)imap_flush(&s);
		goto out;
	}
	ip_counted = true;
	snprintf(key, sizeof(key), "pre:%s", ip);
	/* Before login an address gets half of its connections: a flood of
	 * unauthenticated connections cannot take all of them. */
	if (!imap_conn_counts_take(server->counts, key, server->conns_per_ip > 1 ?
				   server->conns_per_ip / IMAP_CONNS_PREAUTH_SHARE : 1)) {
		imap_out(&s, "* BYE [UNAVAILABLE] too many connections from your address\r\n");
		(void)imap_flush(&s);
		goto out;
	}
	s.counted_ip = true;
	mf_log_debug(PKG, s.cid, "connection", "remote=%s tls=%s", ip,
		     mf_conn_is_tls(conn) ? "yes" : "no");
	if (mf_conn_is_tls(conn))
		imap_auth_tls_setup(&s);
	if (imap_auth_preauth(&s) == 1) {
		set_limits(&s);
		imap_out(&s, "* PREAUTH [CAPABILITY %s] %s mailfleet IMAP4rev2 ready, logged in as %s\r\n",
			 imap_capabilities(&s), server->hostname, s.login);
	} else {
		imap_out(&s, "* OK [CAPABILITY %s] %s mailfleet IMAP4rev2 ready\r\n",
			 imap_capabilities(&s), server->hostname);
	}
	if (imap_flush(&s) == 0)
		session_loop(&s);
out:
	imap_session_unselect(&s);
	if (s.sub != NULL)
		store_unsubscribe(&s.sub);
	if (s.acc != NULL)
		store_account_unref(&s.acc);
	if (s.account != NULL) {
		snprintf(key, sizeof(key), "acct:%s", s.account);
		imap_conn_counts_release(server->counts, key);
	}
	if (s.counted_ip) {
		snprintf(key, sizeof(key), "pre:%s", ip);
		imap_conn_counts_release(server->counts, key);
	}
	if (ip_counted) {
		snprintf(key, sizeof(key), "ip:%s", ip);
		imap_conn_counts_release(server->counts, key);
	}
	free(s.account);
	free(s.login);
	free(s.cert_account);
	free(s.cert_login);
	free(s.cert_fp);
	free(s.client_id);
	mf_buf_free(&s.out);
	imap_parser_free(&s.parser);
	imap_pool_free(&s.pool);
}
