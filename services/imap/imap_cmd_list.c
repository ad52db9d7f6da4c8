/* imap_cmd_list: LIST with LIST-EXTENDED (RFC 5258), SPECIAL-USE
 * (RFC 6154) and LIST-STATUS (RFC 5819), and LSUB for IMAP4rev1. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "imap_cmd.h"
#include "imap_format.h"
#include "imap_mutf7.h"
#include "imap_session.h"

/* Patterns in one LIST command. */
#define IMAP_LIST_PATTERNS_MAX 100

/* '*' matches anything, '%' anything but the separator (RFC 9051 6.3.9).
 * Iterative with one backtrack point per star kind is not enough for
 * mixed wildcards, so this recurses, bounded by the name length limit. */
static bool match(const char *p, const char *n, unsigned depth)
{
	if (depth > 64)
		return false;
	while (*p != '\0') {
		if (*p == '*' || *p == '%') {
			bool any = *p == '*';
			while (*p == '*' || *p == '%') {
				if (*p == '*')
					any = true;
				p++;
			}
			for (const char *t = n;; t++) {
				if (match(p, t, depth + 1))
					return true;
				if (*t == '\0' || (!any && *t == '/'))
					return false;
			}
		}
		if (*n == '\0' || *p != *n)
			return false;
		p++;
		n++;
	}
	return *n == '\0';
}

static bool name_matches(const char *pattern, const char *name)
{
	/* INBOX is case-insensitive, also as a prefix of a pattern. */
	if (strncasecmp(pattern, "INBOX", 5) == 0 &&
	    (pattern[5] == '\0' || pattern[5] == '/' || pattern[5] == '*' || pattern[5] == '%')) {
		char tmp[STORE_MAILBOX_NAME_MAX * 2 + 8];
		snprintf(tmp, sizeof(tmp), "INBOX%s", pattern + 5);
		return match(tmp, name, 0);
	}
	return match(pattern, name, 0);
}

struct list_opts {
	bool lsub;
	bool sel_subscribed, sel_special, recursive;
	bool ret_subscribed, ret_children, ret_special;
	const struct imap_arg *status_items;
};

static void out_list(struct imap_session *s, const struct list_opts *o,
		     const struct store_mailbox *mb, bool childinfo_only)
{
	bool first = true;

	imap_out(s, "* %s (", o->lsub ? "LSUB" : "LIST");
	if (!o->lsub) {
		imap_out(s, "%s", mb->has_children ? "\\HasChildren" : "\\HasNoChildren");
		first = false;
		if ((o->ret_subscribed || o->sel_subscribed) && mb->subscribed)
			imap_out(s, " \\Subscribed");
		imap_out_special_use(s, mb->special_use, &first);
	}
	imap_out(s, ") \"/\" ");
	imap_out_mailbox(s, mb->name);
	if (childinfo_only)
		imap_out(s, " (\"CHILDINFO\" (\"SUBSCRIBED\"))");
	imap_out(s, "\r\n");
	if (o->status_items != NULL && !childinfo_only)
		imap_out_status(s, mb, o->status_items);
}

static int parse_opts(struct imap_session *s, const struct imap_arg *l, bool selection,
		      struct list_opts *o, const char **error_r)
{
	for (size_t i = 0; i < l->count; i++) {
		const struct imap_arg *a = &l->list[i];
		if (a->type != IMAP_ARG_ATOM)
			goto bad;
		if (selection) {
			if (strcasecmp(a->str, "SUBSCRIBED") == 0)
				o->sel_subscribed = true;
			else if (strcasecmp(a->str, "SPECIAL-USE") == 0)
				o->sel_special = true;
			else if (strcasecmp(a->str, "RECURSIVEMATCH") == 0)
				o->recursive = true;
			else if (strcasecmp(a->str, "REMOTE") == 0)
				;  /* no remote mailboxes */
			else
				goto bad;
		} else {
			if (strcasecmp(a->str, "SUBSCRIBED") == 0)
				o->ret_subscribed = true;
			else if (strcasecmp(a->str, "CHILDREN") == 0)
				o->ret_children = true;
			else if (strcasecmp(a->str, "SPECIAL-USE") == 0)
				o->ret_special = true;
			else if (strcasecmp(a->str, "STATUS") == 0 && i + 1 < l->count) {
				if (imap_status_items(s, &l->list[i + 1], error_r) < 0)
					return -1;
				o->status_items = &l->list[++i];
			} else {
				goto bad;
			}
		}
	}
	/* RFC 5258 3: RECURSIVEMATCH alone is an error. */
	if (o->recursive && !o->sel_subscribed && !o->sel_special) {
		*error_r = "RECURSIVEMATCH needs another selection option";
		return -1;
	}
	return 0;
bad:
	*error_r = "unknown LIST option";
	return -1;
}

static int do_list(struct imap_session *s, const struct imap_command *cmd, bool lsub)
{
	struct list_opts o = { .lsub = lsub };
	const struct imap_arg *args = cmd->args, *ref, *pats;
	size_t nargs = cmd->count, npats;
	const char *patterns[IMAP_LIST_PATTERNS_MAX];
	struct store_mailbox *mbs = NULL;
	size_t count = 0;
	const char *err;
	char *refname = "";

	if (!lsub && nargs > 0 && args[0].type == IMAP_ARG_LIST) {
		if (parse_opts(s, &args[0], true, &o, &err) < 0)
			return imap_bad(s, "%s", err);
		args++;
		nargs--;
	}
	if (nargs < 2)
		return imap_bad(s, "%s takes a reference and a pattern", lsub ? "LSUB" : "LIST");
	ref = &args[0];
	pats = &args[1];
	if (nargs > 2) {
		if (lsub || nargs != 4 || !imap_arg_atom_eq(&args[2], "RETURN") ||
		    args[3].type != IMAP_ARG_LIST)
			return imap_bad(s, "invalid LIST arguments");
		if (parse_opts(s, &args[3], false, &o, &err) < 0)
			return imap_bad(s, "%s", err);
	}
	if (!imap_arg_is_string(ref))
		return imap_bad(s, "invalid reference");
	if (pats->type == IMAP_ARG_LIST) {
		if (lsub || pats->count == 0 || pats->count > IMAP_LIST_PATTERNS_MAX)
			return imap_bad(s, "invalid pattern list");
		npats = pats->count;
		pats = pats->list;
	} else {
		npats = 1;
	}
	if (ref->len > 0) {
		if (!s->utf8 && imap_mutf7_decode(s->pool, ref->str, ref->len, &refname, &err) < 0)
			return imap_no(s, "%s", err);
		if (s->utf8)
			refname = imap_pool_strdup(s->pool, ref->str);
	}
	for (size_t i = 0; i < npats; i++) {
		char *p;
		if (!imap_arg_is_string(&pats[i]))
			return imap_bad(s, "invalid pattern");
		if (!s->utf8) {
			if (imap_mutf7_decode(s->pool, pats[i].str, pats[i].len, &p, &err) < 0)
				return imap_no(s, "%s", err);
		} else {
			p = imap_pool_strdup(s->pool, pats[i].str);
		}
		/* RFC 9051 6.3.9: the reference is prepended (with a
		 * separator when it has none). */
		if (refname[0] != '\0')
			p = imap_pool_printf(s->pool, "%s%s%s", refname,
					     refname[strlen(refname) - 1] == '/' ? "" : "/", p);
		patterns[i] = p;
	}
	/* LIST "" "": the hierarchy separator (RFC 9051 6.3.9). */
	if (!lsub && npats == 1 && patterns[0][0] == '\0') {
		imap_out(s, "* LIST (\\Noselect) \"/\" \"\"\r\n");
		return imap_ok(s, "LIST completed");
	}
	if (store_mailboxes_list(s->acc, &mbs, &count, &err) < 0)
		return imap_no_store(s, "list", err);
	for (size_t i = 0; i < count; i++) {
		struct store_mailbox *mb = &mbs[i];
		bool matched = false;

		for (size_t k = 0; k < npats && !matched; k++)
			matched = name_matches(patterns[k], mb->name);
		if (!matched)
			continue;
		if (o.sel_special && mb->special_use == 0)
			continue;
		if ((o.sel_subscribed || lsub) && !mb->subscribed) {
			/* RECURSIVEMATCH: a parent with a subscribed child
			 * is listed with CHILDINFO (RFC 5258 3.5). */
			bool child = false;
			size_t n = strlen(mb->name);
			if (!o.recursive)
				continue;
			for (size_t k = 0; k < count && !child; k++)
				child = mbs[k].subscribed && strncmp(mbs[k].name, mb->name, n) == 0 &&
					mbs[k].name[n] == '/';
			if (child)
				out_list(s, &o, mb, true);
			continue;
		}
		out_list(s, &o, mb, false);
	}
	store_mailboxes_free(&mbs, count);
	return imap_ok(s, "%s completed", lsub ? "LSUB" : "LIST");
}

int imap_cmd_list(struct imap_session *s, const struct imap_command *cmd)
{
	return do_list(s, cmd, false);
}

int imap_cmd_lsub(struct imap_session *s, const struct imap_command *cmd)
{
	if (s->rev2)
		return imap_bad(s, "LSUB is not part of IMAP4rev2");
	return do_list(s, cmd, true);
}
