/* store_mailbox: mailboxes: names, list, create, delete, rename,
 * subscriptions, special-use, and the kept counts. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "blob.h"
#include "buf.h"
#include "error.h"
#include "log.h"
#include "store_private.h"

/* Valid UTF-8 without control characters (RFC 9051 5.1: names are
 * UTF-8 with IMAP4rev2; controls would break LIST output). */
static bool name_chars_ok(const unsigned char *s, size_t n)
{
	for (size_t i = 0; i < n;) {
		unsigned char c = s[i];
		size_t k;
		uint32_t cp;

		if (c < 0x80) {
			if (c < 0x20 || c == 0x7f)
				return false;
			i++;
			continue;
		}
		if ((c & 0xe0) == 0xc0) {
			k = 1;
			cp = c & 0x1f;
		} else if ((c & 0xf0) == 0xe0) {
			k = 2;
			cp = c & 0x0f;
		} else if ((c & 0xf8) == 0xf0) {
			k = 3;
			cp = c & 0x07;
		} else {
			return false;
		}
		for (size_t j = 1; j <= k; j++) {
			if (i + j >= n || (s[i + j] & 0xc0) != 0x80)
				return false;
			cp = (cp << 6) | (s[i + j] & 0x3f);
		}
		/* Overlong forms, surrogates, beyond Unicode, C1 controls. */
		if ((k == 1 && cp < 0x80) || (k == 2 && cp < 0x800) || (k == 3 && cp < 0x10000) ||
		    (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff || (cp >= 0x80 && cp < 0xa0))
			return false;
		i += k + 1;
	}
	return true;
}

char *store_mailbox_name_canon(const char *name, const char **error_r)
{
	size_t n = strlen(name);
	unsigned depth = 1;
	char *canon;

	if (n > 0 && name[n - 1] == '/')
		n--;  /* RFC 9051 6.3.4: a trailing separator names the mailbox itself */
	if (n > 0 && name[n - 1] == '/') {
		store_fail(STORE_ERR_INVALID, error_r, "empty level in mailbox name");
		return NULL;
	}
	if (n == 0 || n > STORE_MAILBOX_NAME_MAX) {
		store_fail(STORE_ERR_INVALID, error_r, "mailbox name must be 1 to %d bytes",
			   STORE_MAILBOX_NAME_MAX);
		return NULL;
	}
	if (!name_chars_ok((const unsigned char *)name, n)) {
		store_fail(STORE_ERR_INVALID, error_r,
			   "mailbox name has control characters or is not valid UTF-8");
		return NULL;
	}
	/* '#' first is kept free for namespaces (RFC 9051 5.1.2). */
	if (name[0] == '/' || name[0] == '#') {
		store_fail(STORE_ERR_INVALID, error_r, "mailbox name must not start with '%c'",
			   name[0]);
		return NULL;
	}
	for (size_t i = 0; i < n; i++)
		if (name[i] == '/') {
			if (i + 1 < n && name[i + 1] == '/') {
				store_fail(STORE_ERR_INVALID, error_r, "empty level in mailbox name");
				return NULL;
			}
			depth++;
		}
	if (depth > STORE_MAILBOX_DEPTH_MAX) {
		store_fail(STORE_ERR_INVALID, error_r, "mailbox name has more than %d levels",
			   STORE_MAILBOX_DEPTH_MAX);
		return NULL;
	}
	canon = mf_xstrndup(name, n);
	/* INBOX is case-insensitive, also as the top level of a hierarchy
	 * (RFC 9051 5.1). */
	if (strncasecmp(canon, "INBOX", 5) == 0 && (canon[5] == '\0' || canon[5] == '/'))
		memcpy(canon, "INBOX", 5);
	return canon;
}

void store_mailbox_from_row(sqlite3_stmt *stmt, struct store_mailbox *mb)
{
	memset(mb, 0, sizeof(*mb));
	mb->id = sqlite3_column_int64(stmt, 0);
	mb->name = mf_xstrdup((const char *)sqlite3_column_text(stmt, 1));
	mb->parent_id = sqlite3_column_int64(stmt, 2);
	mb->special_use = (uint32_t)sqlite3_column_int64(stmt, 3);
	mb->subscribed = sqlite3_column_int(stmt, 4) != 0;
	mb->uidvalidity = (uint32_t)sqlite3_column_int64(stmt, 5);
	mb->uidnext = (uint32_t)sqlite3_column_int64(stmt, 6);
	mb->highestmodseq = (uint64_t)sqlite3_column_int64(stmt, 7);
	mb->messages = (uint32_t)sqlite3_column_int64(stmt, 8);
	mb->unseen = (uint32_t)sqlite3_column_int64(stmt, 9);
	mb->deleted = (uint32_t)sqlite3_column_int64(stmt, 10);
	mb->size = (uint64_t)sqlite3_column_int64(stmt, 11);
}

void store_mailbox_clear(struct store_mailbox *mb)
{
	free(mb->name);
	mb->name = NULL;
}

void store_mailboxes_free(struct store_mailbox **mbsp, size_t count)
{
	struct store_mailbox *mbs = *mbsp;

	if (mbs == NULL)
		return;
	for (size_t i = 0; i < count; i++)
		store_mailbox_clear(&mbs[i]);
	free(mbs);
	*mbsp = NULL;
}

/* Returns 1/0/-1; by id when name is NULL. */
static int get_locked(struct store_account *acc, const char *name, int64_t id,
		      struct store_mailbox *mb_r, const char **error_r)
{
	sqlite3_stmt *stmt = NULL;
	int ret = -1, rc;

	if (store_prepare(acc, name != NULL ?
			  "SELECT " STORE_MAILBOX_COLUMNS " FROM mailboxes WHERE name = ?" :
			  "SELECT " STORE_MAILBOX_COLUMNS " FROM mailboxes WHERE id = ?",
			  &stmt, error_r) < 0)
		return -1;
	if (name != NULL)
		sqlite3_bind_text(stmt, 1, name, -1, SQLITE_STATIC);
	else
		sqlite3_bind_int64(stmt, 1, id);
	rc = sqlite3_step(stmt);
	if (rc == SQLITE_ROW) {
		store_mailbox_from_row(stmt, mb_r);
		ret = 1;
	} else if (rc == SQLITE_DONE) {
		store_fail(STORE_ERR_NOTFOUND, error_r, "no such mailbox");
		ret = 0;
	} else {
		store_db_fail(acc, "mailbox lookup", error_r);
	}
	sqlite3_finalize(stmt);
	return ret;
}

int store_mailbox_get_locked(struct store_account *acc, int64_t id, struct store_mailbox *mb_r,
			     const char **error_r)
{
	return get_locked(acc, NULL, id, mb_r, error_r);
}

int store_mailbox_get(struct store_account *acc, const char *name, struct store_mailbox *mb_r,
		      const char **error_r)
{
	char *canon;
	int ret;

	memset(mb_r, 0, sizeof(*mb_r));
	if (store_lock(acc, error_r) < 0)
		return -1;
	canon = store_mailbox_name_canon(name, error_r);
	if (canon == NULL) {
		/* A name that cannot exist does not exist. */
		store_unlock(acc);
		store_fail(STORE_ERR_NOTFOUND, error_r, "no such mailbox");
		return 0;
	}
	ret = get_locked(acc, canon, 0, mb_r, error_r);
	store_unlock(acc);
	free(canon);
	return ret;
}

int store_mailbox_get_by_id(struct store_account *acc, int64_t id, struct store_mailbox *mb_r,
			    const char **error_r)
{
	int ret;

	memset(mb_r, 0, sizeof(*mb_r));
	if (store_lock(acc, error_r) < 0)
		return -1;
	ret = get_locked(acc, NULL, id, mb_r, error_r);
	store_unlock(acc);
	return ret;
}

int store_mailboxes_list(struct store_account *acc, struct store_mailbox **mbs_r,
			 size_t *count_r, const char **error_r)
{
	sqlite3_stmt *stmt = NULL;
	struct store_mailbox *mbs = NULL;
	size_t count = 0, cap = 0;
	int ret = -1, rc;

	*mbs_r = NULL;
	*count_r = 0;
	if (store_lock(acc, error_r) < 0)
		return -1;
	if (store_prepare(acc, "SELECT " STORE_MAILBOX_COLUMNS ", EXISTS (SELECT 1 FROM mailboxes c "
			  "WHERE c.parent = mailboxes.id) FROM mailboxes "
			  "ORDER BY name != 'INBOX', name", &stmt, error_r) < 0)
		goto out;
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		if (count == cap) {
			cap = cap == 0 ? 16 : cap * 2;
			mbs = mf_xrealloc(mbs, cap * sizeof(*mbs));
		}
		store_mailbox_from_row(stmt, &mbs[count]);
		mbs[count].has_children = sqlite3_column_int(stmt, 12) != 0;
		count++;
	}
	if (rc != SQLITE_DONE) {
		store_db_fail(acc, "list mailboxes", error_r);
		store_mailboxes_free(&mbs, count);
		goto out;
	}
	*mbs_r = mbs;
	*count_r = count;
	ret = 0;
out:
	sqlite3_finalize(stmt);
	store_unlock(acc);
	return ret;
}

/* Runs an UPDATE/INSERT/DELETE with int64 arguments (?1.. in order). */
static int exec_args(struct store_account *acc, const char *sql, const char *text,
		     const int64_t *args, size_t nargs, const char **error_r)
{
	sqlite3_stmt *stmt = NULL;
	int ret = -1, i = 1;

	if (store_prepare(acc, sql, &stmt, error_r) < 0)
		return -1;
	if (text != NULL)
		sqlite3_bind_text(stmt, i++, text, -1, SQLITE_STATIC);
	for (size_t k = 0; k < nargs; k++)
		sqlite3_bind_int64(stmt, i++, args[k]);
	if (sqlite3_step(stmt) != SQLITE_DONE) {
		store_db_fail(acc, "update", error_r);
		goto out;
	}
	ret = 0;
out:
	sqlite3_finalize(stmt);
	return ret;
}

int store_mailbox_count(struct store_account *acc, int64_t mailbox_id, int sign, uint32_t flags,
			uint64_t size, const char **error_r)
{
	int64_t args[5] = {
		sign,
		(flags & STORE_FLAG_SEEN) ? 0 : sign,
		(flags & STORE_FLAG_DELETED) ? sign : 0,
		sign * (int64_t)size,
		mailbox_id,
	};

	return exec_args(acc, "UPDATE mailboxes SET messages = messages + ?1, unseen = unseen + ?2, "
			 "deleted = deleted + ?3, size = size + ?4 WHERE id = ?5", NULL, args, 5,
			 error_r);
}

int store_mailbox_touch(struct store_account *acc, int64_t mailbox_id, uint64_t modseq,
			const char **error_r)
{
	int64_t args[2] = { (int64_t)modseq, mailbox_id };

	return exec_args(acc, "UPDATE mailboxes SET highestmodseq = MAX(highestmodseq, ?1) "
			 "WHERE id = ?2", NULL, args, 2, error_r);
}

static int next_uidvalidity(struct store_account *acc, uint32_t *uidvalidity_r,
			    const char **error_r)
{
	sqlite3_stmt *stmt = NULL;
	int ret = -1;

	if (store_exec(acc, "UPDATE counters SET uidvalidity_next = uidvalidity_next + 1",
		       error_r) < 0 ||
	    store_prepare(acc, "SELECT uidvalidity_next - 1 FROM counters", &stmt, error_r) < 0)
		goto out;
	if (sqlite3_step(stmt) != SQLITE_ROW) {
		store_db_fail(acc, "uidvalidity", error_r);
		goto out;
	}
	*uidvalidity_r = (uint32_t)sqlite3_column_int64(stmt, 0);
	ret = 0;
out:
	sqlite3_finalize(stmt);
	return ret;
}

static int count_mailboxes(struct store_account *acc, int64_t *count_r, const char **error_r)
{
	sqlite3_stmt *stmt = NULL;
	int ret = -1;

	if (store_prepare(acc, "SELECT COUNT(*) FROM mailboxes", &stmt, error_r) < 0)
		return -1;
	if (sqlite3_step(stmt) == SQLITE_ROW) {
		*count_r = sqlite3_column_int64(stmt, 0);
		ret = 0;
	} else {
		store_db_fail(acc, "count mailboxes", error_r);
	}
	sqlite3_finalize(stmt);
	return ret;
}

/* Inserts canon (which must not exist) with its parent id; parents must
 * exist.  Returns 0 with the id. */
static int insert_one(struct store_account *acc, const char *canon, int64_t parent,
		      uint32_t special_use, int64_t *id_r, const char **error_r)
{
	uint32_t uidvalidity;
	int64_t count;
	sqlite3_stmt *stmt = NULL;
	int ret = -1;

	if (count_mailboxes(acc, &count, error_r) < 0)
		return -1;
	if (count >= STORE_MAILBOXES_MAX)
		return store_fail(STORE_ERR_INVALID, error_r, "too many mailboxes (limit %d)",
				  STORE_MAILBOXES_MAX);
	if (next_uidvalidity(acc, &uidvalidity, error_r) < 0 ||
	    store_prepare(acc, "INSERT INTO mailboxes (name, parent, special_use, subscribed, "
			  "uidvalidity) VALUES (?, ?, ?, 0, ?)", &stmt, error_r) < 0)
		goto out;
	sqlite3_bind_text(stmt, 1, canon, -1, SQLITE_STATIC);
	if (parent != 0)
		sqlite3_bind_int64(stmt, 2, parent);
	else
		sqlite3_bind_null(stmt, 2);
	sqlite3_bind_int64(stmt, 3, special_use);
	sqlite3_bind_int64(stmt, 4, uidvalidity);
	if (sqlite3_step(stmt) != SQLITE_DONE) {
		store_db_fail(acc, "create mailbox", error_r);
		goto out;
	}
	*id_r = sqlite3_last_insert_rowid(acc->db);
	ret = 0;
out:
	sqlite3_finalize(stmt);
	return ret;
}

/* Creates canon and its missing parents; created_r (may be NULL) lists
 * nothing, it just says whether canon itself was new.  Returns 1 created,
 * 0 it existed (id in *id_r), -1. */
static int create_path(struct store_account *acc, const char *canon, uint32_t special_use,
		       int64_t *id_r, const char **error_r)
{
	char *path = mf_xstrdup(canon);
	int64_t parent = 0, id = 0;
	int ret = -1;

	for (char *p = path;; p++) {
		if (*p == '/' || *p == '\0') {
			char save = *p;
			struct store_mailbox mb;
			int r;

			*p = '\0';
			r = get_locked(acc, path, 0, &mb, error_r);
			if (r < 0)
				goto out;
			if (r > 0) {
				id = mb.id;
				store_mailbox_clear(&mb);
				if (save == '\0') {
					ret = 0;
					goto out;
				}
			} else if (insert_one(acc, path, parent, save == '\0' ? special_use : 0,
					      &id, error_r) < 0) {
				goto out;
			}
			parent = id;
			*p = save;
			if (save == '\0')
				break;
		}
	}
	ret = 1;
out:
	*id_r = id;
	free(path);
	return ret;
}

int store_mailbox_lookup_locked(struct store_account *acc, const char *name, bool create,
				struct store_mailbox *mb_r, const char **error_r)
{
	char *canon = store_mailbox_name_canon(name, error_r);
	int64_t id;
	int r;

	memset(mb_r, 0, sizeof(*mb_r));
	if (canon == NULL)
		return -1;
	r = get_locked(acc, canon, 0, mb_r, error_r);
	if (r == 0 && create) {
		r = create_path(acc, canon, 0, &id, error_r);
		if (r >= 0)
			r = get_locked(acc, NULL, id, mb_r, error_r);
	}
	free(canon);
	return r;
}

int store_mailbox_create(struct store_account *acc, const char *name, uint32_t special_use,
			 int64_t *id_r, const char **error_r)
{
	struct store_change ch = { .kind = STORE_CHANGE_MAILBOX_CREATE };
	char *canon = NULL;
	int64_t id = 0;
	int ret = -1, r;

	if (store_lock(acc, error_r) < 0)
		return -1;
	if ((canon = store_mailbox_name_canon(name, error_r)) == NULL)
		goto out;
	if ((special_use & ~0x7fu) != 0) {
		store_fail(STORE_ERR_INVALID, error_r, "unknown special-use attribute");
		goto out;
	}
	if (store_tx_begin(acc, error_r) < 0)
		goto out;
	r = create_path(acc, canon, special_use, &id, error_r);
	if (r == 0)
		store_fail(STORE_ERR_EXISTS, error_r, "mailbox %s already exists", canon);
	if (r <= 0 || store_tx_commit(acc, error_r) < 0) {
		store_tx_rollback(acc);
		goto out;
	}
	ret = 0;
out:
	store_unlock(acc);
	if (ret == 0) {
		ch.mailbox_id = id;
		ch.mailbox = canon;
		store_notify(acc, &ch);
		if (id_r != NULL)
			*id_r = id;
	}
	free(canon);
	return ret;
}

/* Moves every message of mailbox_id into the expunged history (blobs kept
 * until the last account reference drops) without count updates: the
 * mailbox goes away or is reset by the caller. */
static int expunge_all_rows(struct store_account *acc, int64_t mailbox_id, uint64_t modseq,
			    const char **error_r)
{
	int64_t args[2] = { (int64_t)modseq, mailbox_id };

	if (exec_args(acc, "INSERT OR REPLACE INTO expunged (mailbox, uid, modseq, blob_key, prefix, "
		      "size, internal_date) SELECT mailbox, uid, ?1, blob_key, prefix, size, "
		      "internal_date FROM messages WHERE mailbox = ?2", NULL, args, 2, error_r) < 0)
		return -1;
	return exec_args(acc, "DELETE FROM messages WHERE mailbox = ?1", NULL, args + 1, 1,
			 error_r);
}

int store_mailbox_delete(struct store_account *acc, const char *name, const char **error_r)
{
	struct store_change ch = { .kind = STORE_CHANGE_MAILBOX_DELETE };
	struct store_mailbox mb = { 0 };
	sqlite3_stmt *stmt = NULL;
	char *canon = NULL;
	uint64_t modseq;
	int ret = -1, r;

	if (store_lock(acc, error_r) < 0)
		return -1;
	if ((canon = store_mailbox_name_canon(name, error_r)) == NULL)
		goto out;
	if (strcmp(canon, "INBOX") == 0) {
		store_fail(STORE_ERR_INVALID, error_r, "INBOX cannot be deleted");
		goto out;
	}
	if (store_tx_begin(acc, error_r) < 0)
		goto out;
	r = get_locked(acc, canon, 0, &mb, error_r);
	if (r <= 0)
		goto fail;
	if (store_prepare(acc, "SELECT 1 FROM mailboxes WHERE parent = ?", &stmt, error_r) < 0)
		goto fail;
	sqlite3_bind_int64(stmt, 1, mb.id);
	r = sqlite3_step(stmt);
	if (r == SQLITE_ROW) {
		store_fail(STORE_ERR_INVALID, error_r, "mailbox has children");
		goto fail;
	}
	if (r != SQLITE_DONE) {
		store_db_fail(acc, "delete mailbox", error_r);
		goto fail;
	}
	if (store_next_modseq(acc, &modseq, error_r) < 0 ||
	    expunge_all_rows(acc, mb.id, modseq, error_r) < 0 ||
	    exec_args(acc, "DELETE FROM annotations WHERE mailbox = ?1", NULL, &mb.id, 1,
		      error_r) < 0 ||
	    exec_args(acc, "DELETE FROM mailboxes WHERE id = ?1", NULL, &mb.id, 1, error_r) < 0 ||
	    store_tx_commit(acc, error_r) < 0)
		goto fail;
	ret = 0;
	goto out;
fail:
	store_tx_rollback(acc);
out:
	sqlite3_finalize(stmt);
	store_unlock(acc);
	if (ret == 0) {
		ch.mailbox_id = mb.id;
		ch.mailbox = canon;
		store_notify(acc, &ch);
	}
	store_mailbox_clear(&mb);
	free(canon);
	return ret;
}

/* Renames INBOX: a new mailbox to gets INBOX's messages (new UIDs would be
 * needed in a new UIDVALIDITY anyway, so the rows move with their UIDs and
 * the new mailbox takes INBOX's counters), INBOX starts over with a new
 * UIDVALIDITY.  RFC 9051 6.3.6. */
static int rename_inbox(struct store_account *acc, const struct store_mailbox *inbox,
			const char *to, int64_t *new_id_r, const char **error_r)
{
	uint32_t uidvalidity;
	int64_t id;
	uint64_t modseq;
	int r = create_path(acc, to, 0, &id, error_r);
	int64_t args[3];

	if (r < 0)
		return -1;
	if (r == 0)
		return store_fail(STORE_ERR_EXISTS, error_r, "mailbox %s already exists", to);
	args[0] = id;
	args[1] = inbox->id;
	if (exec_args(acc, "UPDATE messages SET mailbox = ?1 WHERE mailbox = ?2", NULL, args, 2,
		      error_r) < 0 ||
	    exec_args(acc, "UPDATE mailboxes SET (uidvalidity, uidnext, highestmodseq, messages, "
		      "unseen, deleted, size) = (SELECT uidvalidity, uidnext, highestmodseq, "
		      "messages, unseen, deleted, size FROM mailboxes WHERE id = ?2) WHERE id = ?1",
		      NULL, args, 2, error_r) < 0 ||
	    next_uidvalidity(acc, &uidvalidity, error_r) < 0 ||
	    store_next_modseq(acc, &modseq, error_r) < 0)
		return -1;
	args[0] = uidvalidity;
	args[1] = (int64_t)modseq;
	args[2] = inbox->id;
	if (exec_args(acc, "UPDATE mailboxes SET uidvalidity = ?1, uidnext = 1, "
		      "highestmodseq = ?2, messages = 0, unseen = 0, deleted = 0, size = 0 "
		      "WHERE id = ?3", NULL, args, 3, error_r) < 0 ||
	    /* The old INBOX history belongs to the old UIDVALIDITY. */
	    exec_args(acc, "UPDATE expunged SET mailbox = ?1 WHERE mailbox = ?2", NULL,
		      (int64_t[]){ id, inbox->id }, 2, error_r) < 0)
		return -1;
	*new_id_r = id;
	return 0;
}

int store_mailbox_rename(struct store_account *acc, const char *from, const char *to,
			 const char **error_r)
{
	struct store_change ch = { .kind = STORE_CHANGE_MAILBOX_RENAME };
	struct store_mailbox mb = { 0 }, other = { 0 };
	sqlite3_stmt *stmt = NULL;
	char *cfrom = NULL, *cto = NULL, *parent_name = NULL;
	int64_t id = 0;
	int ret = -1, r;

	if (store_lock(acc, error_r) < 0)
		return -1;
	if ((cfrom = store_mailbox_name_canon(from, error_r)) == NULL ||
	    (cto = store_mailbox_name_canon(to, error_r)) == NULL)
		goto out;
	if (store_tx_begin(acc, error_r) < 0)
		goto out;
	r = get_locked(acc, cfrom, 0, &mb, error_r);
	if (r <= 0)
		goto fail;
	r = get_locked(acc, cto, 0, &other, error_r);
	store_mailbox_clear(&other);
	if (r < 0)
		goto fail;
	if (r > 0) {
		store_fail(STORE_ERR_EXISTS, error_r, "mailbox %s already exists", cto);
		goto fail;
	}
	if (strcmp(cfrom, "INBOX") == 0) {
		if (rename_inbox(acc, &mb, cto, &id, error_r) < 0)
			goto fail;
	} else {
		size_t fl = strlen(cfrom);
		const char *slash;
		int64_t parent = 0;

		if (strncmp(cto, cfrom, fl) == 0 && cto[fl] == '/') {
			store_fail(STORE_ERR_INVALID, error_r, "cannot rename a mailbox into itself");
			goto fail;
		}
		/* Missing parents of the new name. */
		slash = strrchr(cto, '/');
		if (slash != NULL) {
			parent_name = mf_xstrndup(cto, (size_t)(slash - cto));
			if (create_path(acc, parent_name, 0, &parent, error_r) < 0)
				goto fail;
		}
		/* The mailbox and its children: replace the prefix. */
		/* Children are the names in [from "/", from "0"): '0' follows '/',
		 * and names compare bytewise.  substr and length both count
		 * characters, so the suffix is cut right for UTF-8 names too. */
		if (store_prepare(acc, "UPDATE mailboxes SET name = ?1 || substr(name, length(?2) + 1) "
				  "WHERE name = ?2 OR (name >= ?2 || '/' AND name < ?2 || '0')", &stmt,
				  error_r) < 0)
			goto fail;
		sqlite3_bind_text(stmt, 1, cto, -1, SQLITE_STATIC);
		sqlite3_bind_text(stmt, 2, cfrom, -1, SQLITE_STATIC);
		if (sqlite3_step(stmt) != SQLITE_DONE) {
			store_db_fail(acc, "rename", error_r);
			goto fail;
		}
		sqlite3_finalize(stmt);
		stmt = NULL;
		if (exec_args(acc, "UPDATE mailboxes SET parent = NULLIF(?1, 0) WHERE id = ?2", NULL,
			      (int64_t[]){ parent, mb.id }, 2, error_r) < 0)
			goto fail;
		id = mb.id;
	}
	if (store_tx_commit(acc, error_r) < 0)
		goto fail;
	ret = 0;
	goto out;
fail:
	store_tx_rollback(acc);
out:
	sqlite3_finalize(stmt);
	store_unlock(acc);
	if (ret == 0) {
		ch.mailbox_id = id;
		ch.mailbox = cto;
		ch.old_name = cfrom;
		store_notify(acc, &ch);
	}
	store_mailbox_clear(&mb);
	free(cfrom);
	free(cto);
	free(parent_name);
	return ret;
}

static int set_column(struct store_account *acc, const char *name, const char *sql,
		      int64_t value, const char **error_r)
{
	struct store_change ch = { .kind = STORE_CHANGE_MAILBOX_SUBSCRIBE };
	struct store_mailbox mb = { 0 };
	char *canon;
	int ret = -1, r;

	if (store_lock(acc, error_r) < 0)
		return -1;
	if ((canon = store_mailbox_name_canon(name, error_r)) == NULL)
		goto out;
	r = get_locked(acc, canon, 0, &mb, error_r);
	if (r <= 0)
		goto out;
	if (exec_args(acc, sql, NULL, (int64_t[]){ value, mb.id }, 2, error_r) < 0)
		goto out;
	ret = 0;
out:
	store_unlock(acc);
	if (ret == 0) {
		ch.mailbox_id = mb.id;
		ch.mailbox = canon;
		store_notify(acc, &ch);
	}
	store_mailbox_clear(&mb);
	free(canon);
	return ret;
}

int store_mailbox_subscribe(struct store_account *acc, const char *name, bool subscribed,
			    const char **error_r)
{
	return set_column(acc, name, "UPDATE mailboxes SET subscribed = ?1 WHERE id = ?2",
			  subscribed ? 1 : 0, error_r);
}

int store_mailbox_set_special_use(struct store_account *acc, const char *name,
				  uint32_t special_use, const char **error_r)
{
	if ((special_use & ~0x7fu) != 0)
		return store_fail(STORE_ERR_INVALID, error_r, "unknown special-use attribute");
	return set_column(acc, name, "UPDATE mailboxes SET special_use = ?1 WHERE id = ?2",
			  special_use, error_r);
}

int store_mailbox_find_special(struct store_account *acc, uint32_t special_use,
			       struct store_mailbox *mb_r, const char **error_r)
{
	int ret;

	memset(mb_r, 0, sizeof(*mb_r));
	if (store_lock(acc, error_r) < 0)
		return -1;
	ret = store_mailbox_find_special_locked(acc, special_use, mb_r, error_r);
	store_unlock(acc);
	return ret;
}

uint32_t store_special_use_from_name(const char *name)
{
	static const struct {
		const char *name;
		uint32_t bit;
	} names[] = {
		{ "\\All", STORE_SPECIAL_ALL }, { "\\Archive", STORE_SPECIAL_ARCHIVE },
		{ "\\Drafts", STORE_SPECIAL_DRAFTS }, { "\\Flagged", STORE_SPECIAL_FLAGGED },
		{ "\\Junk", STORE_SPECIAL_JUNK }, { "\\Sent", STORE_SPECIAL_SENT },
		{ "\\Trash", STORE_SPECIAL_TRASH },
	};

	for (size_t i = 0; name != NULL && i < sizeof(names) / sizeof(names[0]); i++)
		if (strcasecmp(name, names[i].name) == 0)
			return names[i].bit;
	return 0;
}

int store_mailbox_find_special_locked(struct store_account *acc, uint32_t special_use,
				      struct store_mailbox *mb_r, const char **error_r)
{
	sqlite3_stmt *stmt = NULL;
	int ret = -1, rc;

	memset(mb_r, 0, sizeof(*mb_r));
	if (store_prepare(acc, "SELECT " STORE_MAILBOX_COLUMNS " FROM mailboxes "
			  "WHERE special_use & ?1 ORDER BY name LIMIT 1", &stmt, error_r) < 0)
		goto out;
	sqlite3_bind_int64(stmt, 1, special_use);
	rc = sqlite3_step(stmt);
	if (rc == SQLITE_ROW) {
		store_mailbox_from_row(stmt, mb_r);
		ret = 1;
	} else if (rc == SQLITE_DONE) {
		ret = 0;
	} else {
		store_db_fail(acc, "find special-use mailbox", error_r);
	}
out:
	sqlite3_finalize(stmt);
	return ret;
}
