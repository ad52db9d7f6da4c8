/* store_message: messages: select snapshots, change polling, metadata,
 * content, append, flags, copy, move and expunge. */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "blob.h"
#include "buf.h"
#include "error.h"
#include "log.h"
#include "store_private.h"

#define MESSAGE_COLUMNS "id, mailbox, uid, modseq, createseq, flags, keywords, internal_date, " \
	"save_date, size, length(prefix), blob_key, message_id, subject, envelope, bodystructure"

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static char *col_strdup(sqlite3_stmt *stmt, int i)
{
	const unsigned char *s = sqlite3_column_text(stmt, i);

	return s != NULL && sqlite3_column_type(stmt, i) != SQLITE_NULL ?
		mf_xstrdup((const char *)s) : NULL;
}

/* --- keywords -------------------------------------------------------------- */

/* RFC 9051 9 flag-keyword = atom: no atom-specials, and not starting with
 * '\' (system flags are bits). */
static bool keyword_ok(const char *k, size_t n)
{
	if (n == 0 || n > STORE_KEYWORD_MAX || k[0] == '\\')
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)k[i];

		if (c <= 0x20 || c >= 0x7f || strchr("(){%*\"\\]", c) != NULL)
			return false;
	}
	return true;
}

static int cmp_ci(const void *a, const void *b)
{
	return strcasecmp(*(char *const *)a, *(char *const *)b);
}

/* Splits a space-separated list into words (copies). */
static char **split_words(const char *s, size_t *count_r)
{
	char **words = NULL;
	size_t count = 0, cap = 0;

	while (s != NULL && *s != '\0') {
		size_t n;

		while (*s == ' ')
			s++;
		n = strcspn(s, " ");
		if (n == 0)
			break;
		if (count == cap) {
			cap = cap == 0 ? 8 : cap * 2;
			words = mf_xrealloc(words, cap * sizeof(*words));
		}
		words[count++] = mf_xstrndup(s, n);
		s += n;
	}
	*count_r = count;
	return words;
}

static void words_free(char **words, size_t count)
{
	for (size_t i = 0; i < count; i++)
		free(words[i]);
	free(words);
}

/* Joins sorted unique words. */
static char *join_words(char **words, size_t count)
{
	struct mf_buf b;

	mf_buf_init(&b, 0);
	if (count > 1)
		qsort(words, count, sizeof(*words), cmp_ci);
	for (size_t i = 0; i < count; i++) {
		if (i > 0 && strcasecmp(words[i], words[i - 1]) == 0)
			continue;
		if (b.len > 0)
			mf_buf_append_str(&b, " ");
		mf_buf_append_str(&b, words[i]);
	}
	return b.data != NULL ? mf_buf_steal(&b) : mf_xstrdup("");
}

char *store_keywords_normalise(const char *keywords, const char **error_r)
{
	size_t count;
	char **words = split_words(keywords, &count);
	char *ret = NULL;

	if (count > STORE_KEYWORDS_MAX) {
		store_fail(STORE_ERR_INVALID, error_r, "more than %d keywords", STORE_KEYWORDS_MAX);
		goto out;
	}
	for (size_t i = 0; i < count; i++)
		if (!keyword_ok(words[i], strlen(words[i]))) {
			store_fail(STORE_ERR_INVALID, error_r, "invalid keyword \"%.*s\"",
				   (int)strnlen(words[i], 100), words[i]);
			goto out;
		}
	ret = join_words(words, count);
out:
	words_free(words, count);
	return ret;
}

/* Applies mode to current keywords. Returns a new normalised string. */
static char *keywords_apply(const char *current, const char *given, enum store_flags_mode mode)
{
	size_t nc, ng, n = 0;
	char **cur = split_words(current, &nc), **giv = split_words(given, &ng);
	char **out = mf_xcalloc(nc + ng + 1, sizeof(*out));
	char *ret;

	if (mode != STORE_FLAGS_SET)
		for (size_t i = 0; i < nc; i++) {
			bool drop = false;

			for (size_t j = 0; mode == STORE_FLAGS_REMOVE && j < ng; j++)
				if (strcasecmp(cur[i], giv[j]) == 0)
					drop = true;
			if (!drop)
				out[n++] = cur[i];
		}
	if (mode != STORE_FLAGS_REMOVE)
		for (size_t j = 0; j < ng; j++)
			out[n++] = giv[j];
	/* Current spellings first, so a keyword keeps the case of first use. */
	ret = join_words(out, n);
	free(out);
	words_free(cur, nc);
	words_free(giv, ng);
	return ret;
}

/* --- header scan ------------------------------------------------------------ */

/* Returns the unfolded, trimmed value of the first header field name in
 * the header of data, or NULL. */
static char *header_value(const char *data, size_t len, const char *name)
{
	size_t nl = strlen(name), i = 0;

	while (i < len) {
		size_t eol = i;

		while (eol < len && data[eol] != '\n')
			eol++;
		/* Empty line: end of header. */
		if (eol == i || (eol == i + 1 && data[i] == '\r'))
			return NULL;
		if (eol - i > nl && strncasecmp(data + i, name, nl) == 0 && data[i + nl] == ':') {
			struct mf_buf b;
			size_t p = i + nl + 1;

			mf_buf_init(&b, 998 * 4);
			for (;;) {
				for (; p < eol; p++)
					if (data[p] != '\r' && mf_buf_append(&b, &data[p], 1) < 0)
						break;
				/* Continuation lines start with white space. */
				if (eol + 1 < len && (data[eol + 1] == ' ' || data[eol + 1] == '\t')) {
					p = eol + 1;
					eol = p;
					while (eol < len && data[eol] != '\n')
						eol++;
					continue;
				}
				break;
			}
			{
				char *v = mf_buf_steal(&b), *s = v, *e;

				while (*s == ' ' || *s == '\t')
					s++;
				e = s + strlen(s);
				while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
					e--;
				*e = '\0';
				if (*s == '\0') {
					free(v);
					return NULL;
				}
				memmove(v, s, (size_t)(e - s) + 1);
				return v;
			}
		}
		i = eol + 1;
	}
	return NULL;
}

void store_scan_headers(const char *data, size_t len, char **message_id_r, char **subject_r)
{
	if (len > STORE_HEADER_SCAN_MAX)
		len = STORE_HEADER_SCAN_MAX;
	*message_id_r = header_value(data, len, "Message-ID");
	*subject_r = header_value(data, len, "Subject");
}

/* --- reading --------------------------------------------------------------- */

static void message_from_row(sqlite3_stmt *stmt, struct store_message *m)
{
	memset(m, 0, sizeof(*m));
	m->id = sqlite3_column_int64(stmt, 0);
	m->mailbox_id = sqlite3_column_int64(stmt, 1);
	m->uid = (uint32_t)sqlite3_column_int64(stmt, 2);
	m->modseq = (uint64_t)sqlite3_column_int64(stmt, 3);
	m->createseq = (uint64_t)sqlite3_column_int64(stmt, 4);
	m->flags = (uint32_t)sqlite3_column_int64(stmt, 5);
	m->keywords = col_strdup(stmt, 6);
	if (m->keywords != NULL && m->keywords[0] == '\0') {
		free(m->keywords);
		m->keywords = NULL;
	}
	m->internal_date = sqlite3_column_int64(stmt, 7);
	m->save_date = sqlite3_column_int64(stmt, 8);
	m->size = (uint64_t)sqlite3_column_int64(stmt, 9);
	m->prefix_len = (size_t)sqlite3_column_int64(stmt, 10);
	m->blob_key = col_strdup(stmt, 11);
	m->message_id = col_strdup(stmt, 12);
	m->subject = col_strdup(stmt, 13);
	m->envelope = col_strdup(stmt, 14);
	m->bodystructure = col_strdup(stmt, 15);
}

void store_message_clear(struct store_message *m)
{
	free(m->keywords);
	free(m->blob_key);
	free(m->message_id);
	free(m->subject);
	free(m->envelope);
	free(m->bodystructure);
	memset(m, 0, sizeof(*m));
}

void store_messages_free(struct store_message **msgsp, size_t count)
{
	if (*msgsp == NULL)
		return;
	for (size_t i = 0; i < count; i++)
		store_message_clear(&(*msgsp)[i]);
	free(*msgsp);
	*msgsp = NULL;
}

static void states_free(struct store_msg_state *s, size_t count)
{
	for (size_t i = 0; s != NULL && i < count; i++)
		free(s[i].keywords);
	free(s);
}

void store_snapshot_free(struct store_snapshot *snap)
{
	store_mailbox_clear(&snap->mailbox);
	states_free(snap->msgs, snap->count);
	memset(snap, 0, sizeof(*snap));
}

void store_changes_free(struct store_changes *ch)
{
	states_free(ch->changed, ch->changed_count);
	free(ch->expunged);
	memset(ch, 0, sizeof(*ch));
}

/* Reads (uid, flags, keywords, modseq) rows into an array. */
static int read_states(struct store_account *acc, sqlite3_stmt *stmt,
		       struct store_msg_state **states_r, size_t *count_r, const char **error_r)
{
	struct store_msg_state *s = NULL;
	size_t count = 0, cap = 0;
	int rc;

	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		if (count == cap) {
			cap = cap == 0 ? 64 : cap * 2;
			s = mf_xrealloc(s, cap * sizeof(*s));
		}
		s[count].uid = (uint32_t)sqlite3_column_int64(stmt, 0);
		s[count].flags = (uint32_t)sqlite3_column_int64(stmt, 1);
		s[count].keywords = col_strdup(stmt, 2);
		if (s[count].keywords != NULL && s[count].keywords[0] == '\0') {
			free(s[count].keywords);
			s[count].keywords = NULL;
		}
		s[count].modseq = (uint64_t)sqlite3_column_int64(stmt, 3);
		count++;
	}
	if (rc != SQLITE_DONE) {
		states_free(s, count);
		return store_db_fail(acc, "read messages", error_r);
	}
	*states_r = s;
	*count_r = count;
	return 0;
}

int store_mailbox_select(struct store_account *acc, int64_t mailbox_id,
			 struct store_snapshot *snap_r, const char **error_r)
{
	sqlite3_stmt *stmt = NULL;
	int ret = -1, r;

	memset(snap_r, 0, sizeof(*snap_r));
	if (store_lock(acc, error_r) < 0)
		return -1;
	/* The lock serialises writers, so the two reads are consistent. */
	r = store_mailbox_get_locked(acc, mailbox_id, &snap_r->mailbox, error_r);
	if (r <= 0) {
		ret = r;
		goto out;
	}
	if (store_prepare(acc, "SELECT uid, flags, keywords, modseq FROM messages "
			  "WHERE mailbox = ? ORDER BY uid", &stmt, error_r) < 0)
		goto out;
	sqlite3_bind_int64(stmt, 1, mailbox_id);
	if (read_states(acc, stmt, &snap_r->msgs, &snap_r->count, error_r) < 0)
		goto out;
	ret = 1;
out:
	if (ret <= 0)
		store_snapshot_free(snap_r);
	sqlite3_finalize(stmt);
	store_unlock(acc);
	return ret;
}

int store_mailbox_changes(struct store_account *acc, int64_t mailbox_id, uint64_t since_modseq,
			  struct store_changes *ch_r, const char **error_r)
{
	struct store_mailbox mb = { 0 };
	sqlite3_stmt *stmt = NULL;
	size_t cap = 0;
	int ret = -1, r, rc;

	memset(ch_r, 0, sizeof(*ch_r));
	if (store_lock(acc, error_r) < 0)
		return -1;
	r = store_mailbox_get_locked(acc, mailbox_id, &mb, error_r);
	if (r <= 0) {
		ret = r;
		goto out;
	}
	ch_r->highestmodseq = mb.highestmodseq;
	if (store_prepare(acc, "SELECT uid, flags, keywords, modseq FROM messages "
			  "WHERE mailbox = ? AND modseq > ? ORDER BY uid", &stmt, error_r) < 0)
		goto out;
	sqlite3_bind_int64(stmt, 1, mailbox_id);
	sqlite3_bind_int64(stmt, 2, (int64_t)since_modseq);
	if (read_states(acc, stmt, &ch_r->changed, &ch_r->changed_count, error_r) < 0)
		goto out;
	sqlite3_finalize(stmt);
	if (store_prepare(acc, "SELECT uid FROM expunged WHERE mailbox = ? AND modseq > ? "
			  "ORDER BY uid", &stmt, error_r) < 0)
		goto out;
	sqlite3_bind_int64(stmt, 1, mailbox_id);
	sqlite3_bind_int64(stmt, 2, (int64_t)since_modseq);
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		if (ch_r->expunged_count == cap) {
			cap = cap == 0 ? 64 : cap * 2;
			ch_r->expunged = mf_xrealloc(ch_r->expunged, cap * sizeof(uint32_t));
		}
		ch_r->expunged[ch_r->expunged_count++] = (uint32_t)sqlite3_column_int64(stmt, 0);
	}
	if (rc != SQLITE_DONE) {
		store_db_fail(acc, "read expunged", error_r);
		goto out;
	}
	ret = 1;
out:
	if (ret <= 0)
		store_changes_free(ch_r);
	store_mailbox_clear(&mb);
	sqlite3_finalize(stmt);
	store_unlock(acc);
	return ret;
}

static int get_locked(struct store_account *acc, int64_t mailbox_id, uint32_t uid,
		      struct store_message *msg_r, const char **error_r)
{
	sqlite3_stmt *stmt = NULL;
	int ret = -1, rc;

	if (store_prepare(acc, "SELECT " MESSAGE_COLUMNS " FROM messages "
			  "WHERE mailbox = ? AND uid = ?", &stmt, error_r) < 0)
		return -1;
	sqlite3_bind_int64(stmt, 1, mailbox_id);
	sqlite3_bind_int64(stmt, 2, uid);
	rc = sqlite3_step(stmt);
	if (rc == SQLITE_ROW) {
		message_from_row(stmt, msg_r);
		ret = 1;
		goto out;
	}
	if (rc != SQLITE_DONE) {
		store_db_fail(acc, "message lookup", error_r);
		goto out;
	}
	sqlite3_finalize(stmt);
	/* Expunged but still readable by sessions not yet told. */
	if (store_prepare(acc, "SELECT 0, mailbox, uid, modseq, modseq, 0, NULL, internal_date, "
			  "internal_date, size, length(prefix), blob_key, NULL, NULL, NULL, NULL "
			  "FROM expunged WHERE mailbox = ? AND uid = ? AND blob_key IS NOT NULL",
			  &stmt, error_r) < 0)
		return -1;
	sqlite3_bind_int64(stmt, 1, mailbox_id);
	sqlite3_bind_int64(stmt, 2, uid);
	rc = sqlite3_step(stmt);
	if (rc == SQLITE_ROW) {
		message_from_row(stmt, msg_r);
		msg_r->expunged = true;
		ret = 1;
	} else if (rc == SQLITE_DONE) {
		store_fail(STORE_ERR_NOTFOUND, error_r, "no such message");
		ret = 0;
	} else {
		store_db_fail(acc, "message lookup", error_r);
	}
out:
	sqlite3_finalize(stmt);
	return ret;
}

int store_message_get(struct store_account *acc, int64_t mailbox_id, uint32_t uid,
		      struct store_message *msg_r, const char **error_r)
{
	int ret;

	memset(msg_r, 0, sizeof(*msg_r));
	if (store_lock(acc, error_r) < 0)
		return -1;
	ret = get_locked(acc, mailbox_id, uid, msg_r, error_r);
	store_unlock(acc);
	return ret;
}

int store_messages_list(struct store_account *acc, int64_t mailbox_id, uint32_t first_uid,
			size_t limit, struct store_message **msgs_r, size_t *count_r,
			const char **error_r)
{
	sqlite3_stmt *stmt = NULL;
	struct store_message *msgs = NULL;
	size_t count = 0, cap = 0;
	int ret = -1, rc;

	*msgs_r = NULL;
	*count_r = 0;
	if (store_lock(acc, error_r) < 0)
		return -1;
	if (store_prepare(acc, "SELECT " MESSAGE_COLUMNS " FROM messages WHERE mailbox = ? "
			  "AND uid >= ? ORDER BY uid LIMIT ?", &stmt, error_r) < 0)
		goto out;
	sqlite3_bind_int64(stmt, 1, mailbox_id);
	sqlite3_bind_int64(stmt, 2, first_uid);
	sqlite3_bind_int64(stmt, 3, (int64_t)(limit > INT64_MAX ? INT64_MAX : limit));
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		if (count == cap) {
			cap = cap == 0 ? 32 : cap * 2;
			msgs = mf_xrealloc(msgs, cap * sizeof(*msgs));
		}
		message_from_row(stmt, &msgs[count++]);
	}
	if (rc != SQLITE_DONE) {
		store_db_fail(acc, "list messages", error_r);
		store_messages_free(&msgs, count);
		goto out;
	}
	*msgs_r = msgs;
	*count_r = count;
	ret = 0;
out:
	sqlite3_finalize(stmt);
	store_unlock(acc);
	return ret;
}

static int read_prefix(struct store_account *acc, const struct store_message *msg,
		       char **prefix_r, size_t *len_r, const char **error_r)
{
	sqlite3_stmt *stmt = NULL;
	int ret = -1, rc;

	*prefix_r = NULL;
	*len_r = 0;
	if (msg->prefix_len == 0)
		return 1;
	if (store_lock(acc, error_r) < 0)
		return -1;
	if (store_prepare(acc, "SELECT prefix FROM messages WHERE blob_key = ?1 UNION ALL "
			  "SELECT prefix FROM expunged WHERE blob_key = ?1", &stmt, error_r) < 0)
		goto out;
	sqlite3_bind_text(stmt, 1, msg->blob_key, -1, SQLITE_STATIC);
	rc = sqlite3_step(stmt);
	if (rc == SQLITE_ROW) {
		size_t n = (size_t)sqlite3_column_bytes(stmt, 0);
		const void *p = sqlite3_column_blob(stmt, 0);

		if (n > 0) {
			*prefix_r = mf_xmalloc(n + 1);
			memcpy(*prefix_r, p, n);
			(*prefix_r)[n] = '\0';
		}
		*len_r = n;
		ret = 1;
	} else if (rc == SQLITE_DONE) {
		ret = 0;
	} else {
		store_db_fail(acc, "read prefix", error_r);
	}
out:
	sqlite3_finalize(stmt);
	store_unlock(acc);
	return ret;
}

int store_message_open(struct store_account *acc, const struct store_message *msg,
		       char **prefix_r, size_t *prefix_len_r, int *fd_r, const char **error_r)
{
	int r;

	*fd_r = -1;
	store_error_clear();
	if (msg->blob_key == NULL)
		return store_fail(STORE_ERR_INVALID, error_r, "message without blob key");
	r = read_prefix(acc, msg, prefix_r, prefix_len_r, error_r);
	if (r <= 0)
		return r;
	r = mf_blob_open(acc->store->blobs, msg->blob_key, fd_r, error_r);
	if (r <= 0) {
		free(*prefix_r);
		*prefix_r = NULL;
		*prefix_len_r = 0;
		if (r < 0)
			store_fail_kind(STORE_ERR_TEMPORARY);
		else
			store_fail(STORE_ERR_NOTFOUND, error_r, "message content is gone");
	}
	return r;
}

int store_message_read(struct store_account *acc, const struct store_message *msg, size_t max,
		       char **data_r, size_t *len_r, const char **error_r)
{
	char *prefix = NULL, *blob = NULL;
	size_t plen = 0, blen = 0;
	int r;

	*data_r = NULL;
	*len_r = 0;
	store_error_clear();
	if (msg->size > max)
		return store_fail(STORE_ERR_INVALID, error_r, "message of %" PRIu64
				  " bytes is larger than %zu", msg->size, max);
	r = read_prefix(acc, msg, &prefix, &plen, error_r);
	if (r <= 0)
		return r;
	r = mf_blob_read_all(acc->store->blobs, msg->blob_key, max - plen, &blob, &blen, error_r);
	if (r <= 0) {
		free(prefix);
		if (r < 0)
			return store_fail_kind(STORE_ERR_TEMPORARY);
		store_fail(STORE_ERR_NOTFOUND, error_r, "message content is gone");
		return 0;
	}
	*data_r = mf_xmalloc(plen + blen + 1);
	if (plen > 0)
		memcpy(*data_r, prefix, plen);
	memcpy(*data_r + plen, blob, blen);
	(*data_r)[plen + blen] = '\0';
	*len_r = plen + blen;
	free(prefix);
	free(blob);
	return 1;
}

int store_message_set_cache(struct store_account *acc, int64_t mailbox_id, uint32_t uid,
			    const char *envelope, const char *bodystructure,
			    const char **error_r)
{
	sqlite3_stmt *stmt = NULL;
	bool relaxed = false;
	int ret = -1;

	if (store_lock(acc, error_r) < 0)
		return -1;
	/* The cache is derived data: losing it in a crash costs one parse.
	 * So this commit skips the WAL fsync (synchronous=NORMAL: still
	 * atomic and consistent; the next FULL commit makes it durable along
	 * with its own frames).  A FETCH of twenty new messages' envelopes
	 * otherwise waited for twenty fsyncs under the account's lock. */
	if (store_exec(acc, "PRAGMA synchronous=NORMAL", error_r) < 0)
		goto out;
	relaxed = true;
	if (store_prepare(acc, "UPDATE messages SET envelope = COALESCE(?1, envelope), "
			  "bodystructure = COALESCE(?2, bodystructure) WHERE mailbox = ?3 AND uid = ?4",
			  &stmt, error_r) < 0)
		goto out;
	if (envelope != NULL)
		sqlite3_bind_text(stmt, 1, envelope, -1, SQLITE_STATIC);
	if (bodystructure != NULL)
		sqlite3_bind_text(stmt, 2, bodystructure, -1, SQLITE_STATIC);
	sqlite3_bind_int64(stmt, 3, mailbox_id);
	sqlite3_bind_int64(stmt, 4, uid);
	if (sqlite3_step(stmt) != SQLITE_DONE) {
		store_db_fail(acc, "set cache", error_r);
		goto out;
	}
	ret = 0;
out:
	sqlite3_finalize(stmt);
	if (relaxed) {
		const char *err;

		/* Every other commit must stay durable: when FULL cannot be
		 * restored the connection is not fit for them. */
		if (store_exec(acc, "PRAGMA synchronous=FULL", &err) < 0)
			mf_fatal("store %s: cannot restore synchronous=FULL: %s", acc->name, err);
	}
	store_unlock(acc);
	return ret;
}

/* --- adding ----------------------------------------------------------------- */

int store_message_insert(struct store_account *acc, const struct store_new_message *m,
			 uint64_t modseq, uint32_t *uid_r, const char **error_r)
{
	struct store_mailbox mb = { 0 };
	sqlite3_stmt *stmt = NULL;
	int ret = -1, r;

	r = store_mailbox_get_locked(acc, m->mailbox_id, &mb, error_r);
	if (r <= 0)
		goto out;
	if (mb.uidnext == UINT32_MAX) {
		/* RFC 9051 2.3.1.1: UIDs are 32-bit; the mailbox needs a new UIDVALIDITY. */
		store_fail(STORE_ERR_INVALID, error_r, "mailbox %s has run out of UIDs", mb.name);
		goto out;
	}
	if (store_prepare(acc, "INSERT INTO messages (mailbox, uid, modseq, createseq, flags, "
			  "keywords, internal_date, save_date, size, blob_key, prefix, message_id, "
			  "subject, envelope, bodystructure) VALUES (?1, ?2, ?3, ?3, ?4, ?5, ?6, ?7, "
			  "?8, ?9, ?10, ?11, ?12, ?13, ?14)", &stmt, error_r) < 0)
		goto out;
	sqlite3_bind_int64(stmt, 1, m->mailbox_id);
	sqlite3_bind_int64(stmt, 2, mb.uidnext);
	sqlite3_bind_int64(stmt, 3, (int64_t)modseq);
	sqlite3_bind_int64(stmt, 4, m->flags & STORE_FLAGS_ALL);
	if (m->keywords != NULL && m->keywords[0] != '\0')
		sqlite3_bind_text(stmt, 5, m->keywords, -1, SQLITE_STATIC);
	sqlite3_bind_int64(stmt, 6, m->internal_date);
	sqlite3_bind_int64(stmt, 7, now_ms());
	sqlite3_bind_int64(stmt, 8, (int64_t)m->size);
	sqlite3_bind_text(stmt, 9, m->blob_key, -1, SQLITE_STATIC);
	if (m->prefix_len > 0)
		sqlite3_bind_blob(stmt, 10, m->prefix, (int)m->prefix_len, SQLITE_STATIC);
	if (m->message_id != NULL)
		sqlite3_bind_text(stmt, 11, m->message_id, -1, SQLITE_STATIC);
	if (m->subject != NULL)
		sqlite3_bind_text(stmt, 12, m->subject, -1, SQLITE_STATIC);
	if (m->envelope != NULL)
		sqlite3_bind_text(stmt, 13, m->envelope, -1, SQLITE_STATIC);
	if (m->bodystructure != NULL)
		sqlite3_bind_text(stmt, 14, m->bodystructure, -1, SQLITE_STATIC);
	if (sqlite3_step(stmt) != SQLITE_DONE) {
		store_db_fail(acc, "insert message", error_r);
		goto out;
	}
	sqlite3_finalize(stmt);
	stmt = NULL;
	if (store_prepare(acc, "UPDATE mailboxes SET uidnext = uidnext + 1 WHERE id = ?",
			  &stmt, error_r) < 0)
		goto out;
	sqlite3_bind_int64(stmt, 1, m->mailbox_id);
	if (sqlite3_step(stmt) != SQLITE_DONE) {
		store_db_fail(acc, "uidnext", error_r);
		goto out;
	}
	if (store_mailbox_count(acc, m->mailbox_id, 1, m->flags, m->size, error_r) < 0 ||
	    store_mailbox_touch(acc, m->mailbox_id, modseq, error_r) < 0)
		goto out;
	*uid_r = mb.uidnext;
	ret = 0;
out:
	sqlite3_finalize(stmt);
	store_mailbox_clear(&mb);
	return ret;
}

struct store_append {
	struct store_account *acc;
	struct mf_blob_writer *w;
	char *key;
	uint64_t size;
	struct mf_buf head;   /* the first bytes, for Message-ID and Subject */
};

int store_append_begin(struct store_account *acc, struct store_append **app_r,
		       const char **error_r)
{
	struct store_append *app = mf_xcalloc(1, sizeof(*app));

	store_error_clear();
	app->acc = store_account_ref(acc);
	app->key = store_blob_key_new(acc);
	mf_buf_init(&app->head, STORE_HEADER_SCAN_MAX);
	if (mf_blob_put_begin(acc->store->blobs, app->key, &app->w, error_r) < 0) {
		store_fail_kind(STORE_ERR_TEMPORARY);
		store_append_abort(&app);
		return -1;
	}
	*app_r = app;
	return 0;
}

int store_append_write(struct store_append *app, const void *data, size_t len,
		       const char **error_r)
{
	size_t room = STORE_HEADER_SCAN_MAX - app->head.len;

	store_error_clear();
	if (room > 0)
		mf_buf_append(&app->head, data, len < room ? len : room);
	app->size += len;
	if (mf_blob_write(app->w, data, len, error_r) < 0)
		return store_fail_kind(STORE_ERR_TEMPORARY);
	return 0;
}

void store_append_abort(struct store_append **appp)
{
	struct store_append *app = *appp;

	if (app == NULL)
		return;
	*appp = NULL;
	mf_blob_put_abort(&app->w);
	mf_buf_free(&app->head);
	store_account_unref(&app->acc);
	free(app->key);
	free(app);
}

int store_append_commit(struct store_append **appp, int64_t mailbox_id, uint32_t flags,
			const char *keywords, int64_t internal_date,
			struct store_append_result *result_r, const char **error_r)
{
	struct store_append *app = *appp;
	struct store_account *acc = app->acc;
	struct store_new_message m = { 0 };
	struct store_mailbox mb = { 0 };
	struct store_msg_state state = { 0 };
	struct store_change ch = { .kind = STORE_CHANGE_ADD };
	char *kw = NULL, *msgid = NULL, *subject = NULL;
	uint64_t modseq = 0;
	uint32_t uid = 0;
	bool committed_blob = false;
	int ret = -1;

	store_error_clear();
	if ((kw = store_keywords_normalise(keywords, error_r)) == NULL)
		goto out;
	if ((flags & ~STORE_FLAGS_ALL) != 0) {
		store_fail(STORE_ERR_INVALID, error_r, "unknown flag bits");
		goto out;
	}
	/* Quota before the blob becomes durable: cheap refusal first; checked
	 * again in the transaction. */
	if (store_lock(acc, error_r) < 0)
		goto out;
	ret = store_quota_check(acc, app->size, error_r);
	store_unlock(acc);
	if (ret < 0)
		goto out;
	ret = -1;
	if (mf_blob_put_commit(&app->w, error_r) < 0) {
		store_fail_kind(STORE_ERR_TEMPORARY);
		goto out;
	}
	committed_blob = true;
	store_scan_headers(app->head.data != NULL ? app->head.data : "", app->head.len, &msgid,
			   &subject);
	m.mailbox_id = mailbox_id;
	m.flags = flags;
	m.keywords = kw;
	m.internal_date = internal_date != 0 ? internal_date : now_ms();
	m.size = app->size;
	m.blob_key = app->key;
	m.message_id = msgid;
	m.subject = subject;
	if (store_lock(acc, error_r) < 0)
		goto out;
	if (store_tx_begin(acc, error_r) < 0 ||
	    store_quota_check(acc, app->size, error_r) < 0 ||
	    store_next_modseq(acc, &modseq, error_r) < 0 ||
	    store_message_insert(acc, &m, modseq, &uid, error_r) < 0 ||
	    store_mailbox_get_locked(acc, mailbox_id, &mb, error_r) <= 0 ||
	    store_tx_commit(acc, error_r) < 0) {
		store_tx_rollback(acc);
		store_unlock(acc);
		goto out;
	}
	store_unlock(acc);
	result_r->uidvalidity = mb.uidvalidity;
	result_r->uid = uid;
	result_r->modseq = modseq;
	state.uid = uid;
	state.flags = flags;
	state.keywords = kw[0] != '\0' ? kw : NULL;
	state.modseq = modseq;
	ch.mailbox_id = mailbox_id;
	ch.mailbox = mb.name;
	ch.modseq = modseq;
	ch.msgs = &state;
	ch.count = 1;
	store_notify(acc, &ch);
	ret = 0;
out:
	if (ret < 0 && committed_blob) {
		const char *err;

		/* Not committed: the blob must not stay (an open would remove it). */
		if (mf_blob_delete(acc->store->blobs, app->key, &err) < 0)
			mf_log_warn("store", NULL, "cannot delete blob of failed append",
				    "account=%s key=%s error=%s", acc->name, app->key, err);
	}
	store_mailbox_clear(&mb);
	free(kw);
	free(msgid);
	free(subject);
	store_append_abort(appp);
	return ret;
}

int store_append(struct store_account *acc, int64_t mailbox_id, const void *data, size_t len,
		 uint32_t flags, const char *keywords, int64_t internal_date,
		 struct store_append_result *result_r, const char **error_r)
{
	struct store_append *app;

	if (store_append_begin(acc, &app, error_r) < 0)
		return -1;
	if (store_append_write(app, data, len, error_r) < 0) {
		store_append_abort(&app);
		return -1;
	}
	return store_append_commit(&app, mailbox_id, flags, keywords, internal_date, result_r,
				   error_r);
}

/* --- flags -------------------------------------------------------------------- */

static int uids_check(const uint32_t *uids, size_t count, const char **error_r)
{
	if (count > STORE_UIDS_MAX)
		return store_fail(STORE_ERR_INVALID, error_r, "more than %d UIDs", STORE_UIDS_MAX);
	for (size_t i = 1; i < count; i++)
		if (uids[i] <= uids[i - 1])
			return store_fail(STORE_ERR_INVALID, error_r,
					  "UIDs must be ascending and unique");
	return 0;
}

static void append_u32(uint32_t **arr, size_t *count, size_t *cap, uint32_t v)
{
	if (*count == *cap) {
		*cap = *cap == 0 ? 32 : *cap * 2;
		*arr = mf_xrealloc(*arr, *cap * sizeof(**arr));
	}
	(*arr)[(*count)++] = v;
}

int store_flags(struct store_account *acc, int64_t mailbox_id, const uint32_t *uids, size_t count,
		enum store_flags_mode mode, uint32_t flags, const char *keywords,
		uint64_t unchangedsince, uint64_t *modseq_r, uint32_t **failed_r,
		size_t *failed_count_r, const char **error_r)
{
	struct store_mailbox mb = { 0 };
	struct store_msg_state *changed = NULL;
	size_t nchanged = 0, nfailed = 0, failed_cap = 0;
	uint32_t *failed = NULL;
	sqlite3_stmt *sel = NULL, *upd = NULL;
	char *kw = NULL;
	uint64_t modseq = 0;
	int ret = -1, r;

	*modseq_r = 0;
	if (failed_r != NULL)
		*failed_r = NULL;
	if (failed_count_r != NULL)
		*failed_count_r = 0;
	if (store_lock(acc, error_r) < 0)
		return -1;
	if (uids_check(uids, count, error_r) < 0 ||
	    (kw = store_keywords_normalise(keywords, error_r)) == NULL)
		goto out;
	if ((flags & ~STORE_FLAGS_ALL) != 0) {
		store_fail(STORE_ERR_INVALID, error_r, "unknown flag bits");
		goto out;
	}
	if (store_tx_begin(acc, error_r) < 0)
		goto out;
	r = store_mailbox_get_locked(acc, mailbox_id, &mb, error_r);
	if (r <= 0)
		goto fail;
	if (store_prepare(acc, "SELECT flags, keywords, modseq, size FROM messages "
			  "WHERE mailbox = ? AND uid = ?", &sel, error_r) < 0 ||
	    store_prepare(acc, "UPDATE messages SET flags = ?, keywords = NULLIF(?, ''), "
			  "modseq = ? WHERE mailbox = ? AND uid = ?", &upd, error_r) < 0)
		goto fail;
	changed = mf_xcalloc(count + 1, sizeof(*changed));
	for (size_t i = 0; i < count; i++) {
		uint32_t old, newf;
		const char *oldkw;
		char *newkw;
		uint64_t msize, mmodseq;
		int rc;

		sqlite3_reset(sel);
		sqlite3_bind_int64(sel, 1, mailbox_id);
		sqlite3_bind_int64(sel, 2, uids[i]);
		rc = sqlite3_step(sel);
		if (rc == SQLITE_DONE)
			continue;
		if (rc != SQLITE_ROW) {
			store_db_fail(acc, "read flags", error_r);
			goto fail;
		}
		old = (uint32_t)sqlite3_column_int64(sel, 0);
		oldkw = (const char *)sqlite3_column_text(sel, 1);
		mmodseq = (uint64_t)sqlite3_column_int64(sel, 2);
		msize = (uint64_t)sqlite3_column_int64(sel, 3);
		if (unchangedsince != 0 && mmodseq > unchangedsince) {
			/* RFC 7162 3.1.3: reported in MODIFIED. */
			append_u32(&failed, &nfailed, &failed_cap, uids[i]);
			continue;
		}
		newf = mode == STORE_FLAGS_SET ? flags :
		       mode == STORE_FLAGS_ADD ? (old | flags) : (old & ~flags);
		newkw = keywords_apply(oldkw, kw, mode);
		if (newf == old && strcmp(newkw, oldkw != NULL ? oldkw : "") == 0) {
			free(newkw);
			continue;
		}
		if (modseq == 0 && store_next_modseq(acc, &modseq, error_r) < 0) {
			free(newkw);
			goto fail;
		}
		sqlite3_reset(upd);
		sqlite3_bind_int64(upd, 1, newf);
		sqlite3_bind_text(upd, 2, newkw, -1, SQLITE_TRANSIENT);
		sqlite3_bind_int64(upd, 3, (int64_t)modseq);
		sqlite3_bind_int64(upd, 4, mailbox_id);
		sqlite3_bind_int64(upd, 5, uids[i]);
		if (sqlite3_step(upd) != SQLITE_DONE) {
			free(newkw);
			store_db_fail(acc, "update flags", error_r);
			goto fail;
		}
		if (store_mailbox_count(acc, mailbox_id, -1, old, msize, error_r) < 0 ||
		    store_mailbox_count(acc, mailbox_id, 1, newf, msize, error_r) < 0) {
			free(newkw);
			goto fail;
		}
		changed[nchanged].uid = uids[i];
		changed[nchanged].flags = newf;
		changed[nchanged].keywords = newkw[0] != '\0' ? newkw : NULL;
		if (newkw[0] == '\0')
			free(newkw);
		changed[nchanged].modseq = modseq;
		nchanged++;
	}
	if (modseq != 0 && store_mailbox_touch(acc, mailbox_id, modseq, error_r) < 0)
		goto fail;
	if (store_tx_commit(acc, error_r) < 0)
		goto fail;
	ret = 0;
	goto out;
fail:
	store_tx_rollback(acc);
out:
	sqlite3_finalize(sel);
	sqlite3_finalize(upd);
	store_unlock(acc);
	if (ret == 0) {
		*modseq_r = modseq;
		if (nchanged > 0) {
			struct store_change ch = {
				.kind = STORE_CHANGE_FLAGS, .mailbox_id = mailbox_id,
				.mailbox = mb.name, .modseq = modseq, .msgs = changed,
				.count = nchanged,
			};

			store_notify(acc, &ch);
		}
		if (failed_r != NULL) {
			*failed_r = failed;
			*failed_count_r = nfailed;
			failed = NULL;
		}
	}
	states_free(changed, nchanged);
	free(failed);
	free(kw);
	store_mailbox_clear(&mb);
	return ret;
}

/* --- copy, move, expunge --------------------------------------------------------- */

void store_copy_result_free(struct store_copy_result *res)
{
	free(res->src_uids);
	free(res->dst_uids);
	memset(res, 0, sizeof(*res));
}

/* Removes one message row into the expunged history and updates counts. */
static int expunge_row(struct store_account *acc, int64_t mailbox_id, uint32_t uid,
		       uint32_t flags, uint64_t size, uint64_t modseq, const char **error_r)
{
	sqlite3_stmt *stmt = NULL;
	int ret = -1;

	if (store_prepare(acc, "INSERT OR REPLACE INTO expunged (mailbox, uid, modseq, blob_key, "
			  "prefix, size, internal_date) SELECT mailbox, uid, ?3, blob_key, prefix, "
			  "size, internal_date FROM messages WHERE mailbox = ?1 AND uid = ?2",
			  &stmt, error_r) < 0)
		return -1;
	sqlite3_bind_int64(stmt, 1, mailbox_id);
	sqlite3_bind_int64(stmt, 2, uid);
	sqlite3_bind_int64(stmt, 3, (int64_t)modseq);
	if (sqlite3_step(stmt) != SQLITE_DONE) {
		store_db_fail(acc, "expunge", error_r);
		goto out;
	}
	sqlite3_finalize(stmt);
	stmt = NULL;
	if (store_prepare(acc, "DELETE FROM messages WHERE mailbox = ?1 AND uid = ?2", &stmt,
			  error_r) < 0)
		goto out;
	sqlite3_bind_int64(stmt, 1, mailbox_id);
	sqlite3_bind_int64(stmt, 2, uid);
	if (sqlite3_step(stmt) != SQLITE_DONE) {
		store_db_fail(acc, "expunge", error_r);
		goto out;
	}
	if (store_mailbox_count(acc, mailbox_id, -1, flags, size, error_r) < 0)
		goto out;
	ret = 0;
out:
	sqlite3_finalize(stmt);
	return ret;
}

struct copy_src {
	struct store_message msg;
	char *new_key;
	char *prefix;
	size_t prefix_len;
	bool skipped;   /* expunged while the lock was not held */
};

static void copy_srcs_free(struct copy_src *srcs, size_t count)
{
	for (size_t i = 0; srcs != NULL && i < count; i++) {
		store_message_clear(&srcs[i].msg);
		free(srcs[i].new_key);
		free(srcs[i].prefix);
	}
	free(srcs);
}

static int copy_or_move(struct store_account *acc, int64_t src_id, const uint32_t *uids,
			size_t count, int64_t dst_id, bool move, struct store_copy_result *res_r,
			const char **error_r)
{
	struct store_mailbox src = { 0 }, dst = { 0 };
	struct copy_src *srcs = NULL;
	struct store_msg_state *added = NULL, *removed = NULL;
	size_t n = 0, linked = 0;
	uint64_t total = 0, modseq = 0;
	int ret = -1, r;

	memset(res_r, 0, sizeof(*res_r));
	if (store_lock(acc, error_r) < 0)
		return -1;
	if (uids_check(uids, count, error_r) < 0)
		goto unlock;
	if (move && src_id == dst_id) {
		store_fail(STORE_ERR_INVALID, error_r, "cannot move to the same mailbox");
		goto unlock;
	}
	if ((r = store_mailbox_get_locked(acc, src_id, &src, error_r)) <= 0 ||
	    (r = store_mailbox_get_locked(acc, dst_id, &dst, error_r)) <= 0)
		goto unlock;
	/* The sources, read under the lock; blobs are linked outside it. */
	srcs = mf_xcalloc(count + 1, sizeof(*srcs));
	for (size_t i = 0; i < count; i++) {
		struct store_message m;

		r = get_locked(acc, src_id, uids[i], &m, error_r);
		if (r < 0)
			goto unlock;
		if (r == 0 || m.expunged) {
			store_message_clear(&m);
			continue;
		}
		srcs[n].msg = m;
		total += m.size;
		n++;
	}
	if (!move && store_quota_check(acc, total, error_r) < 0)
		goto unlock;
	store_unlock(acc);
	store_error_clear();
	for (size_t i = 0; i < n; i++) {
		if (read_prefix(acc, &srcs[i].msg, &srcs[i].prefix, &srcs[i].prefix_len,
				error_r) < 0)
			goto cleanup;
		srcs[i].new_key = store_blob_key_new(acc);
		if (mf_blob_link(acc->store->blobs, srcs[i].msg.blob_key, srcs[i].new_key,
				 error_r) < 0) {
			store_fail_kind(STORE_ERR_TEMPORARY);
			free(srcs[i].new_key);
			srcs[i].new_key = NULL;
			goto cleanup;
		}
		linked++;
	}
	if (store_lock(acc, error_r) < 0)
		goto cleanup;
	res_r->src_uids = mf_xcalloc(n + 1, sizeof(uint32_t));
	res_r->dst_uids = mf_xcalloc(n + 1, sizeof(uint32_t));
	added = mf_xcalloc(n + 1, sizeof(*added));
	removed = mf_xcalloc(n + 1, sizeof(*removed));
	if (store_tx_begin(acc, error_r) < 0)
		goto unlock;
	if (n > 0 && store_next_modseq(acc, &modseq, error_r) < 0)
		goto fail;
	for (size_t i = 0; i < n; i++) {
		struct store_message *m = &srcs[i].msg, cur;
		struct store_new_message nm;
		uint32_t uid;

		/* Flags may have changed, or the message been expunged, while the
		 * lock was not held: the transaction works on the current row. */
		r = get_locked(acc, src_id, m->uid, &cur, error_r);
		if (r < 0)
			goto fail;
		if (r == 0 || cur.expunged || strcmp(cur.blob_key, m->blob_key) != 0) {
			store_message_clear(&cur);
			srcs[i].skipped = true;
			continue;
		}
		m->flags = cur.flags;
		free(m->keywords);
		m->keywords = cur.keywords;
		cur.keywords = NULL;
		store_message_clear(&cur);
		nm = (struct store_new_message){
			.mailbox_id = dst_id, .flags = m->flags, .keywords = m->keywords,
			.internal_date = m->internal_date, .size = m->size,
			.blob_key = srcs[i].new_key, .prefix = srcs[i].prefix,
			.prefix_len = srcs[i].prefix_len, .message_id = m->message_id,
			.subject = m->subject, .envelope = m->envelope,
			.bodystructure = m->bodystructure,
		};

		if (store_message_insert(acc, &nm, modseq, &uid, error_r) < 0)
			goto fail;
		if (move) {
			if (expunge_row(acc, src_id, m->uid, m->flags, m->size, modseq, error_r) < 0)
				goto fail;
			removed[res_r->count].uid = m->uid;
			removed[res_r->count].modseq = modseq;
		}
		added[res_r->count].uid = uid;
		added[res_r->count].flags = m->flags;
		added[res_r->count].keywords = m->keywords;
		added[res_r->count].modseq = modseq;
		res_r->src_uids[res_r->count] = m->uid;
		res_r->dst_uids[res_r->count] = uid;
		res_r->count++;
	}
	if (modseq != 0 && (store_mailbox_touch(acc, dst_id, modseq, error_r) < 0 ||
			    (move && store_mailbox_touch(acc, src_id, modseq, error_r) < 0)))
		goto fail;
	if (store_tx_commit(acc, error_r) < 0)
		goto fail;
	res_r->uidvalidity = dst.uidvalidity;
	ret = 0;
	goto unlock;
fail:
	store_tx_rollback(acc);
unlock:
	store_unlock(acc);
cleanup:
	if (ret < 0) {
		/* Links of an uncommitted copy; an open would remove them too. */
		for (size_t i = 0; i < linked; i++) {
			const char *err;

			if (srcs[i].new_key != NULL &&
			    mf_blob_delete(acc->store->blobs, srcs[i].new_key, &err) < 0)
				mf_log_warn("store", NULL, "cannot delete blob of failed copy",
					    "account=%s error=%s", acc->name, err);
		}
		store_copy_result_free(res_r);
	} else if (res_r->count > 0 || n > 0) {
		for (size_t i = 0; i < n; i++) {
			const char *err;

			if (srcs[i].skipped &&
			    mf_blob_delete(acc->store->blobs, srcs[i].new_key, &err) < 0)
				mf_log_warn("store", NULL, "cannot delete unused copy blob",
					    "account=%s error=%s", acc->name, err);
		}
	}
	if (ret == 0 && res_r->count > 0) {
		struct store_change ch = {
			.kind = STORE_CHANGE_ADD, .mailbox_id = dst_id, .mailbox = dst.name,
			.modseq = modseq, .msgs = added, .count = res_r->count,
		};

		store_notify(acc, &ch);
		if (move) {
			ch.kind = STORE_CHANGE_EXPUNGE;
			ch.mailbox_id = src_id;
			ch.mailbox = src.name;
			ch.msgs = removed;
			store_notify(acc, &ch);
		}
	}
	free(added);
	free(removed);
	copy_srcs_free(srcs, n);
	store_mailbox_clear(&src);
	store_mailbox_clear(&dst);
	return ret;
}

int store_copy(struct store_account *acc, int64_t src_mailbox_id, const uint32_t *uids,
	       size_t count, int64_t dst_mailbox_id, struct store_copy_result *res_r,
	       const char **error_r)
{
	return copy_or_move(acc, src_mailbox_id, uids, count, dst_mailbox_id, false, res_r,
			    error_r);
}

int store_move(struct store_account *acc, int64_t src_mailbox_id, const uint32_t *uids,
	       size_t count, int64_t dst_mailbox_id, struct store_copy_result *res_r,
	       const char **error_r)
{
	return copy_or_move(acc, src_mailbox_id, uids, count, dst_mailbox_id, true, res_r,
			    error_r);
}

int store_expunge(struct store_account *acc, int64_t mailbox_id, const uint32_t *uids,
		  size_t count, uint32_t **expunged_r, size_t *expunged_count_r,
		  const char **error_r)
{
	struct store_mailbox mb = { 0 };
	sqlite3_stmt *stmt = NULL;
	struct store_msg_state *states = NULL;
	uint32_t *found = NULL, *fflags = NULL;
	uint64_t *fsizes = NULL;
	size_t nfound = 0, cap = 0;
	uint64_t modseq = 0;
	int ret = -1, rc, r;

	if (expunged_r != NULL)
		*expunged_r = NULL;
	if (expunged_count_r != NULL)
		*expunged_count_r = 0;
	if (store_lock(acc, error_r) < 0)
		return -1;
	if (uids != NULL && uids_check(uids, count, error_r) < 0)
		goto out;
	if (store_tx_begin(acc, error_r) < 0)
		goto out;
	r = store_mailbox_get_locked(acc, mailbox_id, &mb, error_r);
	if (r <= 0)
		goto fail;
	if (store_prepare(acc, "SELECT uid, flags, size FROM messages WHERE mailbox = ? "
			  "AND (flags & 8) != 0 ORDER BY uid", &stmt, error_r) < 0)
		goto fail;
	sqlite3_bind_int64(stmt, 1, mailbox_id);
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		uint32_t uid = (uint32_t)sqlite3_column_int64(stmt, 0);

		if (uids != NULL) {
			/* UID EXPUNGE: only the given ones (binary search). */
			size_t lo = 0, hi = count;

			while (lo < hi) {
				size_t mid = lo + (hi - lo) / 2;

				if (uids[mid] < uid)
					lo = mid + 1;
				else
					hi = mid;
			}
			if (lo == count || uids[lo] != uid)
				continue;
		}
		if (nfound == cap) {
			cap = cap == 0 ? 32 : cap * 2;
			found = mf_xrealloc(found, cap * sizeof(*found));
			fflags = mf_xrealloc(fflags, cap * sizeof(*fflags));
			fsizes = mf_xrealloc(fsizes, cap * sizeof(*fsizes));
		}
		found[nfound] = uid;
		fflags[nfound] = (uint32_t)sqlite3_column_int64(stmt, 1);
		fsizes[nfound] = (uint64_t)sqlite3_column_int64(stmt, 2);
		nfound++;
	}
	if (rc != SQLITE_DONE) {
		store_db_fail(acc, "expunge", error_r);
		goto fail;
	}
	if (nfound > 0 && store_next_modseq(acc, &modseq, error_r) < 0)
		goto fail;
	for (size_t i = 0; i < nfound; i++)
		if (expunge_row(acc, mailbox_id, found[i], fflags[i], fsizes[i], modseq, error_r) < 0)
			goto fail;
	if (modseq != 0 && store_mailbox_touch(acc, mailbox_id, modseq, error_r) < 0)
		goto fail;
	if (store_tx_commit(acc, error_r) < 0)
		goto fail;
	ret = 0;
	goto out;
fail:
	store_tx_rollback(acc);
out:
	sqlite3_finalize(stmt);
	store_unlock(acc);
	if (ret == 0 && nfound > 0) {
		struct store_change ch = {
			.kind = STORE_CHANGE_EXPUNGE, .mailbox_id = mailbox_id, .mailbox = mb.name,
			.modseq = modseq, .count = nfound,
		};

		states = mf_xcalloc(nfound, sizeof(*states));
		for (size_t i = 0; i < nfound; i++) {
			states[i].uid = found[i];
			states[i].modseq = modseq;
		}
		ch.msgs = states;
		store_notify(acc, &ch);
		free(states);
	}
	if (ret == 0 && expunged_r != NULL) {
		*expunged_r = found;
		*expunged_count_r = nfound;
		found = NULL;
	}
	free(found);
	free(fflags);
	free(fsizes);
	store_mailbox_clear(&mb);
	return ret;
}
