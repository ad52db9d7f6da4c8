/* imap_cmd_search: SEARCH and UID SEARCH with CHARSET (US-ASCII, UTF-8;
 * others get [BADCHARSET]), ESEARCH result options (RFC 4731, and always
 * ESEARCH responses under IMAP4rev2) and SEARCHRES (RFC 5182). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "buf.h"
#include "imap_cmd.h"
#include "imap_content.h"
#include "imap_search.h"
#include "imap_seqset.h"
#include "imap_session.h"
#include "mime.h"

enum {
	RET_MIN = 1 << 0,
	RET_MAX = 1 << 1,
	RET_ALL = 1 << 2,
	RET_COUNT = 1 << 3,
	RET_SAVE = 1 << 4,
};

static int parse_return(const struct imap_arg *l, unsigned *ret_r, const char **error_r)
{
	*ret_r = 0;
	for (size_t i = 0; i < l->count; i++) {
		const struct imap_arg *a = &l->list[i];
		if (a->type != IMAP_ARG_ATOM)
			goto bad;
		if (strcasecmp(a->str, "MIN") == 0)
			*ret_r |= RET_MIN;
		else if (strcasecmp(a->str, "MAX") == 0)
			*ret_r |= RET_MAX;
		else if (strcasecmp(a->str, "ALL") == 0)
			*ret_r |= RET_ALL;
		else if (strcasecmp(a->str, "COUNT") == 0)
			*ret_r |= RET_COUNT;
		else if (strcasecmp(a->str, "SAVE") == 0)
			*ret_r |= RET_SAVE;
		else
			goto bad;
	}
	/* RFC 4731 3.1: RETURN () means ALL. */
	if ((*ret_r & ~(unsigned)RET_SAVE) == 0 && (*ret_r & RET_SAVE) == 0)
		*ret_r = RET_ALL;
	return 0;
bad:
	*error_r = "unknown SEARCH return option";
	return -1;
}

int imap_cmd_search(struct imap_session *s, const struct imap_command *cmd)
{
	const struct imap_arg *args = cmd->args;
	size_t nargs = cmd->count, count = s->sel.count, nres = 0;
	struct imap_search_program prog;
	struct imap_meta_cursor cursor = { 0 };
	unsigned ret = 0;
	bool esearch = s->rev2;
	uint32_t *res, *res_uids;
	const char *err;

	if (nargs >= 2 && imap_arg_atom_eq(&args[0], "RETURN")) {
		if (args[1].type != IMAP_ARG_LIST)
			return imap_bad(s, "RETURN needs a list");
		if (parse_return(&args[1], &ret, &err) < 0)
			return imap_bad(s, "%s", err);
		esearch = true;
		args += 2;
		nargs -= 2;
	} else if (esearch) {
		ret = RET_ALL;
	}
	if (nargs >= 2 && imap_arg_atom_eq(&args[0], "CHARSET")) {
		if (!imap_arg_is_string(&args[1]))
			return imap_bad(s, "CHARSET needs a name");
		if (strcasecmp(args[1].str, "UTF-8") != 0 && strcasecmp(args[1].str, "US-ASCII") != 0)
			return imap_no(s, "[BADCHARSET (US-ASCII UTF-8)] unsupported charset");
		args += 2;
		nargs -= 2;
	}
	if (imap_search_parse(s->pool, args, nargs, &prog, &err) < 0)
		return imap_bad(s, "%s", err);

	cursor.want = count;
	res = imap_pool_alloc(s->pool, (count + 1) * sizeof(*res));
	res_uids = imap_pool_alloc(s->pool, (count + 1) * sizeof(*res_uids));
	for (size_t i = 0; i < count; i++) {
		const struct imap_msg *msg = &s->sel.msgs[i];
		struct imap_search_msg m = {
			.seq = (uint32_t)(i + 1), .uid = msg->uid,
			.max_seq = (uint32_t)count, .max_uid = s->sel.msgs[count - 1].uid,
			.flags = msg->flags, .keywords = msg->keywords,
			.saved = s->sel.saved_valid ? s->sel.saved : NULL,
			.saved_count = s->sel.saved_count,
		};
		const struct store_message *meta = NULL;
		struct imap_content content;
		struct mf_mime_message mime;
		bool have_content = false;
		int r;

		if (prog.need_meta || prog.need_content || prog.need_subject) {
			r = imap_meta_get(s, &cursor, msg->uid, &meta, &err);
			if (r < 0) {
				imap_meta_cursor_free(&cursor);
				return imap_no_store(s, "search", err);
			}
			if (r == 0)
				continue;
			m.size = meta->size;
			m.internal_date = meta->internal_date;
			/* The store keeps the raw Subject header: SUBJECT
			 * alone needs no message file. */
			m.subject = meta->subject;
			m.subject_known = true;
		}
		if (prog.need_content) {
			if (imap_content_open(s->acc, meta, &content, &err) == 1) {
				mf_mime_parse(content.data, content.len, &mime);
				m.mime = &mime;
				have_content = true;
			}
		}
		if (imap_search_match(&prog, &m)) {
			res[nres] = s->uid ? msg->uid : (uint32_t)(i + 1);
			res_uids[nres] = msg->uid;
			nres++;
		}
		if (have_content) {
			mf_mime_message_free(&mime);
			imap_content_close(&content);
		}
	}
	imap_meta_cursor_free(&cursor);

	if (ret & RET_SAVE) {
		/* RFC 5182 2.4: with MIN/MAX alone, only those are saved. */
		size_t n = 0;
		free(s->sel.saved);
		s->sel.saved = mf_xmalloc((nres + 1) * sizeof(*s->sel.saved));
		if ((ret & (RET_ALL | RET_COUNT)) == 0 && (ret & (RET_MIN | RET_MAX)) != 0) {
			if (nres > 0 && (ret & RET_MIN))
				s->sel.saved[n++] = res_uids[0];
			if (nres > 0 && (ret & RET_MAX) && (n == 0 || res_uids[nres - 1] != s->sel.saved[0]))
				s->sel.saved[n++] = res_uids[nres - 1];
		} else {
			memcpy(s->sel.saved, res_uids, nres * sizeof(*res_uids));
			n = nres;
		}
		s->sel.saved_count = n;
		s->sel.saved_valid = true;
		if ((ret & ~(unsigned)RET_SAVE) == 0)
			return imap_ok(s, "SEARCH completed, result saved");
	}
	if (!esearch) {
		imap_out(s, "* SEARCH");
		for (size_t i = 0; i < nres; i++)
			imap_out(s, " %u", res[i]);
		imap_out(s, "\r\n");
		return imap_ok(s, "SEARCH completed");
	}
	imap_out(s, "* ESEARCH (TAG ");
	imap_out_string(s, s->tag, strlen(s->tag));
	imap_out(s, ")%s", s->uid ? " UID" : "");
	if (nres > 0) {
		if (ret & RET_MIN)
			imap_out(s, " MIN %u", res[0]);
		if (ret & RET_MAX)
			imap_out(s, " MAX %u", res[nres - 1]);
		if (ret & RET_ALL)
			imap_out(s, " ALL %s", imap_seqset_format(s->pool, res, nres));
	}
	if (ret & RET_COUNT)
		imap_out(s, " COUNT %zu", nres);
	imap_out(s, "\r\n");
	return imap_ok(s, "SEARCH completed");
}
