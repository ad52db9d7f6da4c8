/* Unit tests of imap_content (message content read into memory or mapped)
 * and of the store's structure cache commits (store_message_set_cache
 * relaxes synchronous for its own commit only). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "blob.h"
#include "buf.h"
#include "domains.h"
#include "fsutil.h"
#include "services/imap/imap_content.h"
#include "services/imap/store_private.h"

#define MSG "From: a@example.org\r\nSubject: hi\r\n\r\nbody\r\n"

struct env {
	char dir[256];
	char data[300], blobs[300], conf[300], domains[300];
	struct store *store;
	struct store_account *acc;
	int64_t inbox;
};

static int setup(void **state)
{
	struct env *e = mf_xcalloc(1, sizeof(*e));
	static const char domains[] =
		"domain example.org {\n}\n"
		"account mjl {\n    domain example.org\n    address mjl@example.org\n}\n";
	struct store_settings set = { 0 };
	struct store_mailbox mb;
	const char *err = NULL;

	snprintf(e->dir, sizeof(e->dir), "/tmp/test_imap_content.XXXXXX");
	assert_non_null(mkdtemp(e->dir));
	snprintf(e->data, sizeof(e->data), "%s/data", e->dir);
	snprintf(e->blobs, sizeof(e->blobs), "%s/data/blobs", e->dir);
	snprintf(e->conf, sizeof(e->conf), "%s/config", e->dir);
	snprintf(e->domains, sizeof(e->domains), "%s/config/domains.conf", e->dir);
	assert_int_equal(mkdir(e->conf, 0700), 0);
	assert_int_equal(mkdir(e->data, 0700), 0);
	if (mf_fs_write_atomic(e->domains, domains, strlen(domains), 0644, &err) < 0 ||
	    mf_domains_reload(e->domains, &err) < 0)
		fail_msg("domains: %s", err);
	set.data_dir = e->data;
	set.blob_dir = e->blobs;
	set.config_dir = e->conf;
	set.domains_file = e->domains;
	if (store_create(&set, &e->store, &err) < 0)
		fail_msg("store_create: %s", err);
	if (store_account_create(e->store, "mjl", &err) < 0 ||
	    store_account_open(e->store, "mjl", &e->acc, &err) != 1)
		fail_msg("account: %s", err != NULL ? err : "not found");
	if (store_mailbox_get(e->acc, "INBOX", &mb, &err) != 1)
		fail_msg("INBOX: %s", err != NULL ? err : "not found");
	e->inbox = mb.id;
	store_mailbox_clear(&mb);
	*state = e;
	return 0;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

static int teardown(void **state)
{
	struct env *e = *state;

	store_account_unref(&e->acc);
	store_free(&e->store);
	nftw(e->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	mf_domains_clear_current();
	free(e);
	return 0;
}

static void get_msg(struct env *e, uint32_t uid, struct store_message *msg_r)
{
	const char *err = NULL;

	if (store_message_get(e->acc, e->inbox, uid, msg_r, &err) != 1)
		fail_msg("message %u: %s", uid, err != NULL ? err : "not found");
}

/* A small message is read into the heap, not mapped. */
static void test_small_read(void **state)
{
	struct env *e = *state;
	struct store_append_result res;
	struct store_message msg;
	struct imap_content c;
	const char *err = NULL;

	assert_int_equal(store_append(e->acc, e->inbox, MSG, strlen(MSG), 0, NULL, 0, &res, &err), 0);
	get_msg(e, res.uid, &msg);
	assert_int_equal(imap_content_open(e->acc, &msg, &c, &err), 1);
	assert_false(c.mapped);
	assert_non_null(c.heap);
	assert_int_equal(c.len, strlen(MSG));
	assert_memory_equal(c.data, MSG, c.len);
	assert_int_equal(c.data[c.len], '\0');
	imap_content_close(&c);
	imap_content_close(&c);   /* closing twice is harmless */
	store_message_clear(&msg);
}

/* The header prefix of a delivery comes first, then the blob. */
static void test_prefix(void **state)
{
	struct env *e = *state;
	struct store_deliver_rcpt rcpt = {
		.prefix = "Delivered-To: mjl@example.org\r\n", .prefix_len = 31,
	};
	struct store_message msg;
	struct imap_content c;
	const char *err = NULL;

	assert_int_equal(mf_blob_put(store_blobs(e->store), "incoming/x1", MSG, strlen(MSG), &err), 0);
	assert_int_equal(store_deliver(e->acc, "incoming/x1", 0, &rcpt, 1, &err), 0);
	assert_int_equal(rcpt.status, 0);
	get_msg(e, rcpt.uid, &msg);
	assert_int_equal(imap_content_open(e->acc, &msg, &c, &err), 1);
	assert_int_equal(c.len, 31 + strlen(MSG));
	assert_memory_equal(c.data, "Delivered-To: mjl@example.org\r\n", 31);
	assert_memory_equal(c.data + 31, MSG, strlen(MSG));
	imap_content_close(&c);
	store_message_clear(&msg);
	store_deliver_rcpts_clear(&rcpt, 1);
}

/* Above IMAP_CONTENT_READ_MAX the content is mapped, with the same bytes. */
static void test_large_mapped(void **state)
{
	struct env *e = *state;
	size_t len = IMAP_CONTENT_READ_MAX + 4096;
	char *big = mf_xmalloc(len);
	struct store_append_result res;
	struct store_message msg;
	struct imap_content c;
	const char *err = NULL;

	memcpy(big, MSG, strlen(MSG));
	for (size_t i = strlen(MSG); i < len; i++)
		big[i] = (i % 80 == 79) ? '\n' : (char)('a' + i % 26);
	assert_int_equal(store_append(e->acc, e->inbox, big, len, 0, NULL, 0, &res, &err), 0);
	get_msg(e, res.uid, &msg);
	assert_int_equal(imap_content_open(e->acc, &msg, &c, &err), 1);
	assert_true(c.mapped);
	assert_null(c.heap);
	assert_int_equal(c.len, len);
	assert_memory_equal(c.data, big, len);
	imap_content_close(&c);
	store_message_clear(&msg);
	free(big);
}

/* A message whose blob disappeared answers 0. */
static void test_gone(void **state)
{
	struct env *e = *state;
	struct store_append_result res;
	struct store_message msg;
	struct imap_content c;
	const char *err = NULL;

	assert_int_equal(store_append(e->acc, e->inbox, MSG, strlen(MSG), 0, NULL, 0, &res, &err), 0);
	get_msg(e, res.uid, &msg);
	assert_int_equal(mf_blob_delete(store_blobs(e->store), msg.blob_key, &err), 1);
	assert_int_equal(imap_content_open(e->acc, &msg, &c, &err), 0);
	imap_content_close(&c);
	store_message_clear(&msg);
}

static int synchronous(struct env *e)
{
	sqlite3_stmt *stmt = NULL;
	int v = -1;

	assert_int_equal(sqlite3_prepare_v2(e->acc->db, "PRAGMA synchronous", -1, &stmt, NULL),
			 SQLITE_OK);
	if (sqlite3_step(stmt) == SQLITE_ROW)
		v = sqlite3_column_int(stmt, 0);
	sqlite3_finalize(stmt);
	return v;
}

/* The cache is stored, and every later commit is durable again
 * (synchronous back to FULL = 2). */
static void test_set_cache_keeps_full(void **state)
{
	struct env *e = *state;
	struct store_append_result res;
	struct store_message msg;
	const char *err = NULL;

	assert_int_equal(synchronous(e), 2);
	assert_int_equal(store_append(e->acc, e->inbox, MSG, strlen(MSG), 0, NULL, 0, &res, &err), 0);
	assert_int_equal(store_message_set_cache(e->acc, e->inbox, res.uid, "(env)", NULL, &err), 0);
	assert_int_equal(synchronous(e), 2);
	assert_int_equal(store_message_set_cache(e->acc, e->inbox, res.uid, NULL, "(bs)", &err), 0);
	assert_int_equal(synchronous(e), 2);
	get_msg(e, res.uid, &msg);
	assert_string_equal(msg.envelope, "(env)");
	assert_string_equal(msg.bodystructure, "(bs)");
	store_message_clear(&msg);
	/* A message that is not there: no error, nothing cached, still FULL. */
	assert_int_equal(store_message_set_cache(e->acc, e->inbox, 999, "(x)", NULL, &err), 0);
	assert_int_equal(synchronous(e), 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_small_read, setup, teardown),
		cmocka_unit_test_setup_teardown(test_prefix, setup, teardown),
		cmocka_unit_test_setup_teardown(test_large_mapped, setup, teardown),
		cmocka_unit_test_setup_teardown(test_gone, setup, teardown),
		cmocka_unit_test_setup_teardown(test_set_cache_keeps_full, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
