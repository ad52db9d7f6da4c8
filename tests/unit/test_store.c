/* Unit tests of the account store (services/imap/store*.c) on temporary
 * directories: accounts, mailboxes, messages, modseqs, counts, crash
 * recovery, removal, quota, passwords, concurrency, delivery, changes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "blob.h"
#include "buf.h"
#include "domains.h"
#include "fsutil.h"
#include "password.h"
#include "lib/storeenv.h"
#include "services/imap/store.h"

static char *domains_text(const char *quota)
{
	return mf_xasprintf(
		"domain example.org {\n    catchall-separator +\n}\n"
		"domain catchall.example {\n}\n"
		"account mjl {\n"
		"    domain example.org\n"
		"    address mjl@example.org\n"
		"    address @catchall.example\n"
		"    quota %s\n"
		"}\n"
		"account other {\n"
		"    domain example.org\n"
		"    address other@example.org\n"
		"    login-disabled \"moved away\"\n"
		"}\n", quota);
}

static void write_domains(struct store_test_env *e, const char *quota)
{
	char *text = domains_text(quota);

	store_test_env_write_domains(e, text);
	free(text);
}

static int setup(void **state)
{
	char *text = domains_text("0");

	*state = store_test_env_create("test_store", text);
	free(text);
	return 0;
}

static int teardown(void **state)
{
	store_test_env_free(*state);
	return 0;
}

static struct store_account *open_acc(struct store_test_env *e, const char *name)
{
	struct store_account *acc = NULL;
	const char *err = NULL;
	int r = store_account_create(e->store, name, &err);

	if (r < 0)
		fail_msg("create: %s", err);
	if (store_account_open(e->store, name, &acc, &err) != 1)
		fail_msg("open: %s", err != NULL ? err : "not found");
	return acc;
}

static void check(struct store_account *acc)
{
	const char *err = NULL;

	if (store_account_check(acc, &err) < 0)
		fail_msg("check: %s", err);
}

static int64_t mailbox_id(struct store_account *acc, const char *name)
{
	struct store_mailbox mb;
	const char *err = NULL;
	int64_t id;

	if (store_mailbox_get(acc, name, &mb, &err) != 1)
		fail_msg("no mailbox %s: %s", name, err != NULL ? err : "");
	id = mb.id;
	store_mailbox_clear(&mb);
	return id;
}

static struct store_mailbox get_mb(struct store_account *acc, const char *name)
{
	struct store_mailbox mb;
	const char *err = NULL;

	if (store_mailbox_get(acc, name, &mb, &err) != 1)
		fail_msg("no mailbox %s: %s", name, err != NULL ? err : "");
	return mb;
}

#define MSG "From: a@example.org\r\nSubject: hello\r\n there\r\nMessage-ID: <1@x>\r\n\r\nbody\r\n"

static uint32_t append(struct store_account *acc, int64_t mb, uint32_t flags, const char *kw)
{
	struct store_append_result res;
	const char *err = NULL;

	if (store_append(acc, mb, MSG, strlen(MSG), flags, kw, 0, &res, &err) < 0)
		fail_msg("append: %s", err);
	assert_true(res.uid > 0);
	assert_true(res.modseq > 0);
	return res.uid;
}

static size_t count_blobs(struct store_test_env *e, const char *prefix)
{
	char *cmd = mf_xasprintf("find %s/%s -type f 2>/dev/null | grep -v '/\\.tmp' | wc -l",
				 e->blobs, prefix);
	FILE *p = popen(cmd, "r");
	size_t n = 0;

	assert_non_null(p);
	if (fscanf(p, "%zu", &n) != 1)
		n = 0;
	pclose(p);
	free(cmd);
	return n;
}

/* --- tests ------------------------------------------------------------------ */

static void test_create_standard_mailboxes(void **state)
{
	struct store_test_env *e = *state;
	struct store_account *acc;
	struct store_mailbox *mbs = NULL;
	size_t n = 0;
	const char *err = NULL;
	static const struct { const char *name; uint32_t special; } want[] = {
		{ "INBOX", 0 }, { "Archive", STORE_SPECIAL_ARCHIVE },
		{ "Drafts", STORE_SPECIAL_DRAFTS }, { "Junk", STORE_SPECIAL_JUNK },
		{ "Rejects", 0 }, { "Sent", STORE_SPECIAL_SENT }, { "Trash", STORE_SPECIAL_TRASH },
	};

	assert_int_equal(store_account_exists(e->store, "mjl", &err), 0);
	assert_int_equal(store_account_create(e->store, "mjl", &err), 1);
	assert_int_equal(store_account_create(e->store, "mjl", &err), 0);
	assert_int_equal(store_account_exists(e->store, "mjl", &err), 1);
	assert_int_equal(store_account_create(e->store, "../x", &err), -1);
	assert_int_equal(store_last_error_kind(), STORE_ERR_INVALID);
	assert_int_equal(store_account_open(e->store, "nobody", &acc, &err), 0);
	assert_int_equal(store_last_error_kind(), STORE_ERR_NOTFOUND);
	acc = open_acc(e, "mjl");
	assert_int_equal(store_mailboxes_list(acc, &mbs, &n, &err), 0);
	assert_int_equal(n, 7);
	for (size_t i = 0; i < n; i++) {
		assert_string_equal(mbs[i].name, want[i].name);
		assert_int_equal(mbs[i].special_use, want[i].special);
		assert_true(mbs[i].subscribed);
		assert_int_equal(mbs[i].uidnext, 1);
		for (size_t j = 0; j < i; j++)
			assert_int_not_equal(mbs[i].uidvalidity, mbs[j].uidvalidity);
	}
	store_mailboxes_free(&mbs, n);
	check(acc);
	store_account_unref(&acc);
}

static void test_password_import_and_auth(void **state)
{
	struct store_test_env *e = *state;
	struct store_account *acc;
	enum store_auth_result res;
	char *account = NULL, *msg = NULL, *hash = NULL;
	const char *err = NULL;
	char *line, *path;

	hash = mf_password_hash("secret one", 10, &err);
	assert_non_null(hash);
	line = mf_xasprintf("# imported\nsomeone $scrypt$bogus\nmjl %s\nother %s\n", hash, hash);
	path = mf_xasprintf("%s/passwords.init", e->conf);
	store_test_write_file(path, line);
	free(path);
	free(line);
	free(hash);
	acc = open_acc(e, "mjl");
	store_account_unref(&acc);

	assert_int_equal(store_authenticate(e->store, "mjl@example.org", "secret one", 10, &res,
					    &account, &msg, &err), 0);
	assert_int_equal(res, STORE_AUTH_OK);
	assert_string_equal(account, "mjl");
	free(account);
	assert_int_equal(store_authenticate(e->store, "MJL@Example.org", "secret one", 10, &res,
					    &account, &msg, &err), 0);
	assert_int_equal(res, STORE_AUTH_OK);
	free(account);
	assert_int_equal(store_authenticate(e->store, "mjl", "secret one", 10, &res, &account,
					    &msg, &err), 0);
	assert_int_equal(res, STORE_AUTH_OK);
	free(account);
	assert_int_equal(store_authenticate(e->store, "mjl@example.org", "secret two", 10, &res,
					    &account, &msg, &err), 0);
	assert_int_equal(res, STORE_AUTH_FAILED);
	assert_null(account);
	assert_int_equal(store_authenticate(e->store, "nobody@example.org", "secret one", 10, &res,
					    &account, &msg, &err), 0);
	assert_int_equal(res, STORE_AUTH_FAILED);
	/* Subaddress and catch-all matches receive mail but do not log in. */
	assert_int_equal(store_authenticate(e->store, "mjl+tag@example.org", "secret one", 10, &res,
					    &account, &msg, &err), 0);
	assert_int_equal(res, STORE_AUTH_FAILED);
	assert_int_equal(store_authenticate(e->store, "any@catchall.example", "secret one", 10,
					    &res, &account, &msg, &err), 0);
	assert_int_equal(res, STORE_AUTH_FAILED);

	/* Set a new password. */
	acc = open_acc(e, "mjl");
	assert_int_equal(store_set_password(acc, "new pass", 8, &err), 0);
	store_account_unref(&acc);
	assert_int_equal(store_authenticate(e->store, "mjl@example.org", "secret one", 10, &res,
					    &account, &msg, &err), 0);
	assert_int_equal(res, STORE_AUTH_FAILED);
	assert_int_equal(store_authenticate(e->store, "mjl@example.org", "new pass", 8, &res,
					    &account, &msg, &err), 0);
	assert_int_equal(res, STORE_AUTH_OK);
	free(account);

	/* login-disabled: right password, but disabled with its message. */
	acc = open_acc(e, "other");
	store_account_unref(&acc);
	assert_int_equal(store_authenticate(e->store, "other@example.org", "secret one", 10, &res,
					    &account, &msg, &err), 0);
	assert_int_equal(res, STORE_AUTH_DISABLED);
	assert_string_equal(msg, "moved away");
	free(account);
	free(msg);
}

static void test_mailbox_ops(void **state)
{
	struct store_test_env *e = *state;
	struct store_account *acc = open_acc(e, "mjl");
	struct store_mailbox mb, mb2;
	const char *err = NULL;
	int64_t id;

	assert_int_equal(store_mailbox_create(acc, "a/b/c", 0, &id, &err), 0);
	assert_true(id > 0);
	mb = get_mb(acc, "a");
	mb2 = get_mb(acc, "a/b");
	assert_int_equal(mb2.parent_id, mb.id);
	store_mailbox_clear(&mb);
	store_mailbox_clear(&mb2);
	assert_int_equal(store_mailbox_create(acc, "a/b/c", 0, NULL, &err), -1);
	assert_int_equal(store_last_error_kind(), STORE_ERR_EXISTS);
	assert_int_equal(store_mailbox_create(acc, "inbox", 0, NULL, &err), -1);
	assert_int_equal(store_last_error_kind(), STORE_ERR_EXISTS);
	assert_int_equal(store_mailbox_create(acc, "x//y", 0, NULL, &err), -1);
	assert_int_equal(store_last_error_kind(), STORE_ERR_INVALID);
	assert_int_equal(store_mailbox_create(acc, "#news", 0, NULL, &err), -1);
	assert_int_equal(store_mailbox_create(acc, "bad\001", 0, NULL, &err), -1);
	assert_int_equal(store_mailbox_create(acc, "bad\xff", 0, NULL, &err), -1);
	assert_int_equal(store_mailbox_create(acc, "caf\xc3\xa9/", 0, NULL, &err), 0);
	mb = get_mb(acc, "caf\xc3\xa9");
	store_mailbox_clear(&mb);
	assert_int_equal(store_mailbox_create(acc, "Work*%", STORE_SPECIAL_FLAGGED, NULL, &err), 0);

	/* Delete: not with children, not INBOX. */
	assert_int_equal(store_mailbox_delete(acc, "a/b", &err), -1);
	assert_int_equal(store_last_error_kind(), STORE_ERR_INVALID);
	assert_int_equal(store_mailbox_delete(acc, "INBOX", &err), -1);
	assert_int_equal(store_mailbox_delete(acc, "a/b/c", &err), 0);
	assert_int_equal(store_mailbox_get(acc, "a/b/c", &mb, &err), 0);
	assert_int_equal(store_mailbox_delete(acc, "nonexistent", &err), -1);
	assert_int_equal(store_last_error_kind(), STORE_ERR_NOTFOUND);

	/* Rename with children and new parents. */
	assert_int_equal(store_mailbox_create(acc, "a/b/d", 0, NULL, &err), 0);
	mb = get_mb(acc, "a/b");
	assert_int_equal(store_mailbox_rename(acc, "a", "p/q", &err), 0);
	mb2 = get_mb(acc, "p/q/b");
	assert_int_equal(mb2.id, mb.id);
	assert_int_equal(mb2.uidvalidity, mb.uidvalidity);
	store_mailbox_clear(&mb);
	store_mailbox_clear(&mb2);
	mb = get_mb(acc, "p/q/b/d");
	store_mailbox_clear(&mb);
	assert_int_equal(store_mailbox_get(acc, "a", &mb, &err), 0);
	assert_int_equal(store_mailbox_rename(acc, "p", "p/q/r", &err), -1);
	assert_int_equal(store_mailbox_rename(acc, "p", "Sent", &err), -1);
	assert_int_equal(store_last_error_kind(), STORE_ERR_EXISTS);

	/* Non-ASCII names: the children follow, a sibling with a longer
	 * name sharing the prefix does not. */
	assert_int_equal(store_mailbox_create(acc, "caf\xc3\xa9/sub/x", 0, NULL, &err), 0);
	assert_int_equal(store_mailbox_create(acc, "caf\xc3\xa9s", 0, NULL, &err), 0);
	assert_int_equal(store_mailbox_rename(acc, "caf\xc3\xa9", "th\xc3\xa9" "e", &err), 0);
	mb = get_mb(acc, "th\xc3\xa9" "e/sub/x");
	store_mailbox_clear(&mb);
	mb = get_mb(acc, "caf\xc3\xa9s");
	store_mailbox_clear(&mb);
	assert_int_equal(store_mailbox_get(acc, "caf\xc3\xa9/sub", &mb, &err), 0);

	/* Subscriptions and special-use. */
	assert_int_equal(store_mailbox_subscribe(acc, "p/q", true, &err), 0);
	mb = get_mb(acc, "p/q");
	assert_true(mb.subscribed);
	store_mailbox_clear(&mb);
	assert_int_equal(store_mailbox_subscribe(acc, "p/q", false, &err), 0);
	mb = get_mb(acc, "p/q");
	assert_false(mb.subscribed);
	store_mailbox_clear(&mb);
	assert_int_equal(store_mailbox_find_special(acc, STORE_SPECIAL_TRASH, &mb, &err), 1);
	assert_string_equal(mb.name, "Trash");
	store_mailbox_clear(&mb);
	assert_int_equal(store_mailbox_find_special(acc, STORE_SPECIAL_FLAGGED, &mb, &err), 1);
	assert_string_equal(mb.name, "Work*%");
	store_mailbox_clear(&mb);
	assert_int_equal(store_mailbox_find_special(acc, STORE_SPECIAL_ALL, &mb, &err), 0);
	check(acc);
	store_account_unref(&acc);
}

static void test_inbox_rename(void **state)
{
	struct store_test_env *e = *state;
	struct store_account *acc = open_acc(e, "mjl");
	int64_t inbox = mailbox_id(acc, "INBOX");
	struct store_mailbox before = get_mb(acc, "INBOX"), after, old;
	const char *err = NULL;

	append(acc, inbox, 0, NULL);
	append(acc, inbox, STORE_FLAG_SEEN, NULL);
	assert_int_equal(store_mailbox_create(acc, "INBOX/child", 0, NULL, &err), 0);
	/* RFC 9051 6.3.6: messages move to the new name, INBOX stays, empty. */
	assert_int_equal(store_mailbox_rename(acc, "inbox", "Old", &err), 0);
	after = get_mb(acc, "INBOX");
	old = get_mb(acc, "Old");
	assert_int_equal(after.id, inbox);
	assert_int_equal(after.messages, 0);
	assert_int_not_equal(after.uidvalidity, before.uidvalidity);
	assert_int_equal(old.messages, 2);
	assert_int_equal(old.unseen, 1);
	assert_int_equal(old.uidvalidity, before.uidvalidity);
	store_mailbox_clear(&old);
	old = get_mb(acc, "INBOX/child");  /* children stay */
	store_mailbox_clear(&old);
	store_mailbox_clear(&before);
	store_mailbox_clear(&after);
	check(acc);
	store_account_unref(&acc);
}

static void test_messages_flags_move_expunge(void **state)
{
	struct store_test_env *e = *state;
	struct store_account *acc = open_acc(e, "mjl");
	int64_t inbox = mailbox_id(acc, "INBOX"), trash = mailbox_id(acc, "Trash");
	struct store_snapshot snap;
	struct store_message msg;
	struct store_changes ch;
	struct store_copy_result cr;
	struct store_mailbox mb;
	uint32_t uids[3], *failed = NULL, *expunged = NULL;
	size_t nfailed = 0, nexp = 0, len;
	uint64_t modseq, hms;
	char *data = NULL;
	const char *err = NULL;

	uids[0] = append(acc, inbox, 0, NULL);
	uids[1] = append(acc, inbox, STORE_FLAG_SEEN, "$Forwarded");
	uids[2] = append(acc, inbox, STORE_FLAG_DELETED, "foo Bar FOO");
	assert_int_equal(uids[0], 1);
	assert_int_equal(uids[2], 3);
	check(acc);
	mb = get_mb(acc, "INBOX");
	assert_int_equal(mb.messages, 3);
	assert_int_equal(mb.unseen, 2);
	assert_int_equal(mb.deleted, 1);
	assert_int_equal(mb.size, 3 * strlen(MSG));
	assert_int_equal(mb.uidnext, 4);
	hms = mb.highestmodseq;
	store_mailbox_clear(&mb);

	assert_int_equal(store_message_get(acc, inbox, 3, &msg, &err), 1);
	assert_string_equal(msg.keywords, "Bar foo");
	assert_string_equal(msg.subject, "hello there");
	assert_string_equal(msg.message_id, "<1@x>");
	assert_int_equal(msg.size, strlen(MSG));
	assert_int_equal(store_message_read(acc, &msg, 1 << 20, &data, &len, &err), 1);
	assert_int_equal(len, strlen(MSG));
	assert_memory_equal(data, MSG, len);
	free(data);
	store_message_clear(&msg);
	assert_int_equal(store_message_get(acc, inbox, 99, &msg, &err), 0);

	/* Flags: add \Seen to all; message 2 already had it and keeps its modseq. */
	assert_int_equal(store_flags(acc, inbox, uids, 3, STORE_FLAGS_ADD, STORE_FLAG_SEEN, NULL, 0,
				     &modseq, NULL, NULL, &err), 0);
	assert_true(modseq > hms);
	assert_int_equal(store_mailbox_changes(acc, inbox, hms, &ch, &err), 1);
	assert_int_equal(ch.changed_count, 2);
	assert_int_equal(ch.changed[0].uid, 1);
	assert_int_equal(ch.changed[1].uid, 3);
	assert_int_equal(ch.highestmodseq, modseq);
	store_changes_free(&ch);
	check(acc);

	/* UNCHANGEDSINCE: message 1 changed after hms, so it fails. */
	assert_int_equal(store_flags(acc, inbox, uids, 2, STORE_FLAGS_ADD, STORE_FLAG_FLAGGED,
				     "$Important", hms, &modseq, &failed, &nfailed, &err), 0);
	assert_int_equal(nfailed, 1);
	assert_int_equal(failed[0], 1);
	free(failed);
	assert_int_equal(store_flags(acc, inbox, uids + 1, 1, STORE_FLAGS_REMOVE, 0, "$FORWARDED",
				     0, &modseq, NULL, NULL, &err), 0);
	assert_int_equal(store_message_get(acc, inbox, 2, &msg, &err), 1);
	assert_string_equal(msg.keywords, "$Important");
	assert_int_equal(msg.flags, STORE_FLAG_SEEN | STORE_FLAG_FLAGGED);
	assert_int_equal(msg.modseq, modseq);
	store_message_clear(&msg);
	assert_int_equal(store_flags(acc, inbox, uids, 1, STORE_FLAGS_SET, 0, "bad(kw", 0,
				     &modseq, NULL, NULL, &err), -1);
	assert_int_equal(store_last_error_kind(), STORE_ERR_INVALID);
	check(acc);

	/* Copy 1, 2 to Trash; then move 3. */
	assert_int_equal(store_copy(acc, inbox, uids, 2, trash, &cr, &err), 0);
	assert_int_equal(cr.count, 2);
	assert_int_equal(cr.dst_uids[0], 1);
	assert_int_equal(cr.dst_uids[1], 2);
	store_copy_result_free(&cr);
	check(acc);
	assert_int_equal(store_move(acc, inbox, uids + 2, 1, trash, &cr, &err), 0);
	assert_int_equal(cr.count, 1);
	assert_int_equal(cr.src_uids[0], 3);
	assert_int_equal(cr.dst_uids[0], 3);
	store_copy_result_free(&cr);
	check(acc);
	mb = get_mb(acc, "Trash");
	assert_int_equal(mb.messages, 3);
	assert_int_equal(mb.deleted, 1);
	store_mailbox_clear(&mb);
	assert_int_equal(store_mailbox_select(acc, inbox, &snap, &err), 1);
	assert_int_equal(snap.count, 2);
	assert_int_equal(snap.msgs[0].uid, 1);
	assert_int_equal(snap.msgs[1].uid, 2);
	hms = snap.mailbox.highestmodseq;
	store_snapshot_free(&snap);

	/* A moved message stays readable until the last reference drops. */
	assert_int_equal(store_message_get(acc, inbox, 3, &msg, &err), 1);
	assert_true(msg.expunged);
	assert_int_equal(store_message_read(acc, &msg, 1 << 20, &data, &len, &err), 1);
	free(data);
	store_message_clear(&msg);

	/* Expunge: mark 1 deleted; UID EXPUNGE of 2 does nothing, plain expunge removes 1. */
	assert_int_equal(store_flags(acc, inbox, uids, 1, STORE_FLAGS_ADD, STORE_FLAG_DELETED,
				     NULL, 0, &modseq, NULL, NULL, &err), 0);
	assert_int_equal(store_expunge(acc, inbox, uids + 1, 1, &expunged, &nexp, &err), 0);
	assert_int_equal(nexp, 0);
	free(expunged);
	assert_int_equal(store_expunge(acc, inbox, NULL, 0, &expunged, &nexp, &err), 0);
	assert_int_equal(nexp, 1);
	assert_int_equal(expunged[0], 1);
	free(expunged);
	assert_int_equal(store_mailbox_changes(acc, inbox, hms, &ch, &err), 1);
	assert_int_equal(ch.expunged_count, 1);
	assert_int_equal(ch.expunged[0], 1);
	store_changes_free(&ch);
	check(acc);
	mb = get_mb(acc, "INBOX");
	assert_int_equal(mb.messages, 1);
	assert_int_equal(mb.deleted, 0);
	assert_int_equal(mb.uidnext, 4);
	store_mailbox_clear(&mb);

	/* Blobs: 1 in INBOX + 3 in Trash + 2 expunged still readable. */
	assert_int_equal(count_blobs(e, "accounts/mjl"), 6);
	store_account_unref(&acc);
	assert_int_equal(count_blobs(e, "accounts/mjl"), 4);

	/* Deleting a mailbox removes its messages. */
	acc = open_acc(e, "mjl");
	assert_int_equal(store_mailbox_delete(acc, "Trash", &err), 0);
	check(acc);
	store_account_unref(&acc);
	assert_int_equal(count_blobs(e, "accounts/mjl"), 1);
}

static void test_streaming_append(void **state)
{
	struct store_test_env *e = *state;
	struct store_account *acc = open_acc(e, "mjl");
	struct store_append *app = NULL;
	struct store_append_result res;
	struct store_message msg;
	char *prefix = NULL, buf[64];
	size_t plen;
	int fd;
	ssize_t n;
	const char *err = NULL;

	assert_int_equal(store_append_begin(acc, &app, &err), 0);
	assert_int_equal(store_append_write(app, "Subject: a", 10, &err), 0);
	assert_int_equal(store_append_write(app, "b\r\n\r\nx", 6, &err), 0);
	assert_int_equal(store_append_commit(&app, mailbox_id(acc, "Drafts"), STORE_FLAG_DRAFT,
					     NULL, 1700000000000, &res, &err), 0);
	assert_null(app);
	assert_int_equal(store_message_get(acc, mailbox_id(acc, "Drafts"), res.uid, &msg, &err), 1);
	assert_string_equal(msg.subject, "ab");
	assert_int_equal(msg.internal_date, 1700000000000);
	assert_int_equal(store_message_open(acc, &msg, &prefix, &plen, &fd, &err), 1);
	assert_null(prefix);
	n = read(fd, buf, sizeof(buf));
	assert_int_equal(n, 16);
	close(fd);
	store_message_clear(&msg);

	/* Append to a mailbox that does not exist: nothing left behind. */
	assert_int_equal(store_append(acc, 9999, "x", 1, 0, NULL, 0, &res, &err), -1);
	assert_int_equal(store_last_error_kind(), STORE_ERR_NOTFOUND);
	/* Abort leaves nothing. */
	assert_int_equal(store_append_begin(acc, &app, &err), 0);
	assert_int_equal(store_append_write(app, "zzz", 3, &err), 0);
	store_append_abort(&app);
	assert_int_equal(count_blobs(e, "accounts/mjl"), 1);
	check(acc);
	store_account_unref(&acc);
}

static void test_crash_between_blob_and_commit(void **state)
{
	struct store_test_env *e = *state;
	struct store_account *acc = open_acc(e, "mjl");
	int64_t inbox = mailbox_id(acc, "INBOX");
	struct store_mailbox mb;
	const char *err = NULL;

	append(acc, inbox, 0, NULL);
	store_account_unref(&acc);
	/* A blob whose transaction never committed, a temporary file of an
	 * interrupted put, and a blob with the key a new message could get. */
	assert_int_equal(mf_blob_put(store_blobs(e->store), "accounts/mjl/m/ab/orphan", "x", 1,
				     &err), 0);
	assert_int_equal(count_blobs(e, "accounts/mjl"), 2);
	store_free(&e->store);
	store_test_env_open_store(e);
	acc = open_acc(e, "mjl");
	assert_int_equal(count_blobs(e, "accounts/mjl"), 1);
	check(acc);
	/* Later deliveries work and get the next UID. */
	assert_int_equal(append(acc, inbox, 0, NULL), 2);
	mb = get_mb(acc, "INBOX");
	assert_int_equal(mb.messages, 2);
	store_mailbox_clear(&mb);
	check(acc);
	store_account_unref(&acc);
}

static void test_removal(void **state)
{
	struct store_test_env *e = *state;
	struct store_account *acc = open_acc(e, "mjl"), *held;
	char *dir = mf_xasprintf("%s/accounts/mjl", e->data);
	char *marker = mf_xasprintf("%s/REMOVING", dir);
	struct stat st;
	const char *err = NULL;

	append(acc, mailbox_id(acc, "INBOX"), 0, NULL);
	held = store_account_ref(acc);
	store_account_unref(&acc);
	/* Removal while a session holds the account: the handle fails after. */
	assert_int_equal(store_account_remove(e->store, "mjl", &err), 1);
	assert_int_not_equal(stat(dir, &st), 0);
	assert_int_equal(count_blobs(e, "accounts/mjl"), 0);
	assert_int_equal(store_mailbox_create(held, "x", 0, NULL, &err), -1);
	assert_int_equal(store_last_error_kind(), STORE_ERR_REMOVED);
	store_account_unref(&held);
	assert_int_equal(store_account_remove(e->store, "mjl", &err), 0);

	/* A crash after the intent was recorded: completed at the next start. */
	acc = open_acc(e, "mjl");
	append(acc, mailbox_id(acc, "INBOX"), 0, NULL);
	store_account_unref(&acc);
	store_free(&e->store);
	store_test_write_file(marker, "removing\n");
	store_test_env_open_store(e);
	assert_int_not_equal(stat(dir, &st), 0);
	assert_int_equal(count_blobs(e, "accounts/mjl"), 0);
	assert_int_equal(store_account_exists(e->store, "mjl", &err), 0);
	/* And it can be created anew. */
	assert_int_equal(store_account_create(e->store, "mjl", &err), 1);
	free(dir);
	free(marker);
}

static void test_quota(void **state)
{
	struct store_test_env *e = *state;
	struct store_account *acc;
	struct store_append_result res;
	struct store_copy_result cr;
	uint64_t used, limit;
	uint32_t uid;
	const char *err = NULL;
	char big[300];
	size_t n = strlen(MSG);

	write_domains(e, "200");
	acc = open_acc(e, "mjl");
	memset(big, 'x', sizeof(big));
	assert_int_equal(store_append(acc, mailbox_id(acc, "INBOX"), big, sizeof(big), 0, NULL, 0,
				      &res, &err), -1);
	assert_int_equal(store_last_error_kind(), STORE_ERR_TOOBIG);
	uid = append(acc, mailbox_id(acc, "INBOX"), 0, NULL);
	append(acc, mailbox_id(acc, "INBOX"), 0, NULL);
	assert_int_equal(store_quota(acc, &used, &limit, &err), 0);
	assert_int_equal(used, 2 * n);
	assert_int_equal(limit, 200);
	/* 2 * 71 + 71 > 200 */
	assert_int_equal(store_append(acc, mailbox_id(acc, "INBOX"), MSG, n, 0, NULL, 0, &res,
				      &err), -1);
	assert_int_equal(store_last_error_kind(), STORE_ERR_OVERQUOTA);
	assert_int_equal(store_copy(acc, mailbox_id(acc, "INBOX"), &uid, 1, mailbox_id(acc, "Trash"),
				    &cr, &err), -1);
	assert_int_equal(store_last_error_kind(), STORE_ERR_OVERQUOTA);
	/* Moving does not add usage. */
	assert_int_equal(store_move(acc, mailbox_id(acc, "INBOX"), &uid, 1, mailbox_id(acc, "Trash"),
				    &cr, &err), 0);
	store_copy_result_free(&cr);
	check(acc);
	store_account_unref(&acc);
	assert_int_equal(count_blobs(e, "accounts/mjl"), 2);
}

struct thread_arg {
	struct store_account *acc;
	int64_t mailbox;
	int failures;
};

#define THREADS 4
#define PER_THREAD 25

static void *append_thread(void *p)
{
	struct thread_arg *a = p;

	for (int i = 0; i < PER_THREAD; i++) {
		struct store_append_result res;
		const char *err;
		uint32_t uid;

		if (store_append(a->acc, a->mailbox, MSG, strlen(MSG), 0, NULL, 0, &res, &err) < 0) {
			a->failures++;
			continue;
		}
		uid = res.uid;
		if (store_flags(a->acc, a->mailbox, &uid, 1, STORE_FLAGS_ADD, STORE_FLAG_SEEN, NULL,
				0, &res.modseq, NULL, NULL, &err) < 0)
			a->failures++;
	}
	return NULL;
}

static void test_concurrent_appends(void **state)
{
	struct store_test_env *e = *state;
	struct store_account *acc = open_acc(e, "mjl");
	struct thread_arg args[THREADS];
	pthread_t threads[THREADS];
	struct store_snapshot snap;
	const char *err = NULL;

	for (int i = 0; i < THREADS; i++) {
		args[i] = (struct thread_arg){ .acc = acc, .mailbox = mailbox_id(acc, "INBOX") };
		assert_int_equal(pthread_create(&threads[i], NULL, append_thread, &args[i]), 0);
	}
	for (int i = 0; i < THREADS; i++) {
		pthread_join(threads[i], NULL);
		assert_int_equal(args[i].failures, 0);
	}
	assert_int_equal(store_mailbox_select(acc, mailbox_id(acc, "INBOX"), &snap, &err), 1);
	assert_int_equal(snap.count, THREADS * PER_THREAD);
	assert_int_equal(snap.mailbox.unseen, 0);
	for (size_t i = 0; i < snap.count; i++)
		assert_int_equal(snap.msgs[i].uid, i + 1);
	store_snapshot_free(&snap);
	check(acc);
	store_account_unref(&acc);
}

struct recorder {
	int adds, flags, expunges, creates;
	uint32_t last_uid;
};

static void record_change(void *ctx, const struct store_change *c)
{
	struct recorder *r = ctx;

	switch (c->kind) {
	case STORE_CHANGE_ADD: r->adds++; r->last_uid = c->msgs[c->count - 1].uid; break;
	case STORE_CHANGE_FLAGS: r->flags++; break;
	case STORE_CHANGE_EXPUNGE: r->expunges++; break;
	case STORE_CHANGE_MAILBOX_CREATE: r->creates++; break;
	default: break;
	}
	assert_string_equal(c->account, "mjl");
}

static void test_deliver_and_changes(void **state)
{
	struct store_test_env *e = *state;
	struct store_account *acc = open_acc(e, "mjl");
	struct recorder rec = { 0 };
	struct store_subscription *sub = store_subscribe(acc, record_change, &rec);
	struct store_deliver_rcpt rcpts[3] = {
		{ .mailbox = NULL, .prefix = "Delivered-To: mjl@example.org\r\n", .prefix_len = 31 },
		{ .mailbox = "Lists/ietf", .keywords = "$Junk", .prefix = "X: 1\r\n", .prefix_len = 6 },
		{ .mailbox = "Bad//name" },
	};
	struct store_message msg;
	char *data = NULL;
	size_t len;
	const char *err = NULL;

	assert_int_equal(mf_blob_put(store_blobs(e->store), "incoming/2026/x1", MSG, strlen(MSG),
				     &err), 0);
	assert_int_equal(store_deliver(acc, "incoming/2026/x1", 1700000000000, rcpts, 3, &err), 0);
	assert_int_equal(rcpts[0].status, 0);
	assert_string_equal(rcpts[0].stored_mailbox, "INBOX");
	assert_int_equal(rcpts[0].uid, 1);
	assert_int_equal(rcpts[1].status, 0);
	assert_string_equal(rcpts[1].stored_mailbox, "Lists/ietf");
	assert_int_equal(rcpts[2].status, -1);
	assert_int_equal(rcpts[2].error_kind, STORE_ERR_INVALID);
	assert_int_equal(store_message_get(acc, mailbox_id(acc, "INBOX"), 1, &msg, &err), 1);
	assert_int_equal(msg.size, 31 + strlen(MSG));
	assert_int_equal(msg.internal_date, 1700000000000);
	assert_int_equal(store_message_read(acc, &msg, 1 << 20, &data, &len, &err), 1);
	assert_int_equal(len, 31 + strlen(MSG));
	assert_memory_equal(data, "Delivered-To: mjl@example.org\r\nFrom:", 36);
	free(data);
	store_message_clear(&msg);
	assert_int_equal(store_message_get(acc, mailbox_id(acc, "Lists/ietf"), 1, &msg, &err), 1);
	assert_string_equal(msg.keywords, "$Junk");
	store_message_clear(&msg);
	store_deliver_rcpts_clear(rcpts, 3);
	/* The caller's key is still there (the caller deletes it). */
	assert_int_equal(count_blobs(e, "incoming"), 1);
	assert_int_equal(count_blobs(e, "accounts/mjl"), 2);
	assert_int_equal(rec.adds, 2);

	/* A missing blob fails every recipient. */
	assert_int_equal(store_deliver(acc, "incoming/none", 0, rcpts, 1, &err), -1);
	assert_int_equal(rcpts[0].status, -1);
	store_deliver_rcpts_clear(rcpts, 1);
	assert_int_equal(store_deliver(acc, "accounts/other/m/x", 0, rcpts, 1, &err), -1);
	store_deliver_rcpts_clear(rcpts, 1);

	assert_int_equal(store_mailbox_create(acc, "New", 0, NULL, &err), 0);
	assert_int_equal(rec.creates, 1);
	{
		uint32_t uid = 1;
		uint64_t modseq;

		assert_int_equal(store_flags(acc, mailbox_id(acc, "INBOX"), &uid, 1, STORE_FLAGS_ADD,
					     STORE_FLAG_DELETED, NULL, 0, &modseq, NULL, NULL,
					     &err), 0);
		assert_int_equal(store_expunge(acc, mailbox_id(acc, "INBOX"), NULL, 0, NULL, NULL,
					       &err), 0);
	}
	assert_int_equal(rec.flags, 1);
	assert_int_equal(rec.expunges, 1);
	store_unsubscribe(&sub);
	append(acc, mailbox_id(acc, "INBOX"), 0, NULL);
	assert_int_equal(rec.adds, 2);
	check(acc);
	store_account_unref(&acc);
}

/* A special-use request (DMARC quarantine asks for \\Junk) finds the
 * mailbox by its attribute after the user renamed it, never creates a
 * "Junk", and falls back to INBOX when no mailbox has the attribute. */
static void test_deliver_special_use(void **state)
{
	struct store_test_env *e = *state;
	struct store_account *acc = open_acc(e, "mjl");
	struct store_deliver_rcpt rcpts[3] = {
		{ .special_use = STORE_SPECIAL_JUNK, .mailbox = "Ignored" },
		{ .special_use = STORE_SPECIAL_ALL },
		{ .special_use = ~STORE_SPECIAL_MASK },
	};
	struct store_mailbox mb;
	const char *err = NULL;

	assert_int_equal(store_special_use_from_name("\\Junk"), STORE_SPECIAL_JUNK);
	assert_int_equal(store_special_use_from_name("\\junk"), STORE_SPECIAL_JUNK);
	assert_int_equal(store_special_use_from_name("Junk"), 0);
	assert_int_equal(store_special_use_from_name("\\Spam"), 0);
	assert_int_equal(mf_blob_put(store_blobs(e->store), "incoming/2026/sj", MSG, strlen(MSG),
				     &err), 0);
	assert_int_equal(store_mailbox_rename(acc, "Junk", "Spam/Suspect", &err), 0);
	assert_int_equal(store_deliver(acc, "incoming/2026/sj", 0, rcpts, 3, &err), 0);
	assert_int_equal(rcpts[0].status, 0);
	assert_string_equal(rcpts[0].stored_mailbox, "Spam/Suspect");
	assert_int_equal(rcpts[1].status, 0);
	assert_string_equal(rcpts[1].stored_mailbox, "INBOX");
	assert_int_equal(rcpts[2].status, -1);
	assert_int_equal(rcpts[2].error_kind, STORE_ERR_INVALID);
	store_deliver_rcpts_clear(rcpts, 3);
	assert_int_equal(store_mailbox_get(acc, "Junk", &mb, &err), 0);
	assert_int_equal(store_mailbox_get(acc, "Ignored", &mb, &err), 0);
	assert_int_equal(store_mailbox_get(acc, "Spam/Suspect", &mb, &err), 1);
	assert_int_equal(mb.messages, 1);
	store_mailbox_clear(&mb);

	/* The attribute gone: INBOX, and still no "Junk" is created. */
	assert_int_equal(store_mailbox_set_special_use(acc, "Spam/Suspect", 0, &err), 0);
	assert_int_equal(store_deliver(acc, "incoming/2026/sj", 0, rcpts, 1, &err), 0);
	assert_int_equal(rcpts[0].status, 0);
	assert_string_equal(rcpts[0].stored_mailbox, "INBOX");
	store_deliver_rcpts_clear(rcpts, 1);
	assert_int_equal(store_mailbox_get(acc, "Junk", &mb, &err), 0);
	check(acc);
	store_account_unref(&acc);
}

static void test_accounts_ensure(void **state)
{
	struct store_test_env *e = *state;
	unsigned created = 0;
	const char *err = NULL;

	assert_int_equal(store_accounts_ensure(e->store, &created, &err), 0);
	assert_int_equal(created, 2);
	assert_int_equal(store_accounts_ensure(e->store, &created, &err), 0);
	assert_int_equal(created, 0);
	assert_int_equal(store_account_exists(e->store, "other", &err), 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_create_standard_mailboxes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_password_import_and_auth, setup, teardown),
		cmocka_unit_test_setup_teardown(test_mailbox_ops, setup, teardown),
		cmocka_unit_test_setup_teardown(test_inbox_rename, setup, teardown),
		cmocka_unit_test_setup_teardown(test_messages_flags_move_expunge, setup, teardown),
		cmocka_unit_test_setup_teardown(test_streaming_append, setup, teardown),
		cmocka_unit_test_setup_teardown(test_crash_between_blob_and_commit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_removal, setup, teardown),
		cmocka_unit_test_setup_teardown(test_quota, setup, teardown),
		cmocka_unit_test_setup_teardown(test_concurrent_appends, setup, teardown),
		cmocka_unit_test_setup_teardown(test_deliver_and_changes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_deliver_special_use, setup, teardown),
		cmocka_unit_test_setup_teardown(test_accounts_ensure, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
