#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "blob.h"
#include "buf.h"

/* --- recording wrappers (tests/unit/test_blob.ldflags) -------------------- */

int __real_fsync(int fd);
int __real_renameat2(int olddirfd, const char *oldpath, int newdirfd, const char *newpath,
		     unsigned int flags);
int __real_linkat(int olddirfd, const char *oldpath, int newdirfd, const char *newpath,
		  int flags);
int __real_mkdirat(int dirfd, const char *path, mode_t mode);
int __wrap_fsync(int fd);
int __wrap_renameat2(int olddirfd, const char *oldpath, int newdirfd, const char *newpath,
		     unsigned int flags);
int __wrap_linkat(int olddirfd, const char *oldpath, int newdirfd, const char *newpath,
		  int flags);
int __wrap_mkdirat(int dirfd, const char *path, mode_t mode);

#define EVENTS_MAX 256

struct event {
	char kind;       /* F fsync file, D fsync dir, R rename, L link, M mkdir */
	char path[512];  /* fsync: the fd's path relative to the store root;
			    R/L/M: dir of the new name + "/" + new name */
};

static struct event events[EVENTS_MAX];
static size_t nevents;
static char root[256];
static bool fail_file_fsync, fail_dir_fsync, fail_link_exdev, fail_rename_einval;

/* Path of fd relative to root ("" for root itself). */
static void fd_relpath(int fd, char *buf, size_t size)
{
	char proc[64], full[512];
	ssize_t n;
	size_t rl = strlen(root);

	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	n = readlink(proc, full, sizeof(full) - 1);
	full[n < 0 ? 0 : n] = '\0';
	if (strncmp(full, root, rl) == 0)
		snprintf(buf, size, "%s", full[rl] == '/' ? full + rl + 1 : full + rl);
	else
		snprintf(buf, size, "%s", full);
}

static void record(char kind, int dirfd, const char *name)
{
	struct event *e;
	char dir[512];

	if (nevents == EVENTS_MAX)
		return;
	e = &events[nevents++];
	e->kind = kind;
	fd_relpath(dirfd, dir, sizeof(dir));
	if (name == NULL)
		snprintf(e->path, sizeof(e->path), "%s", dir);
	else
		if (snprintf(e->path, sizeof(e->path), "%s%s%s", dir, dir[0] != '\0' ? "/" : "",
			     name) >= (int)sizeof(e->path))
			e->path[0] = '\0';
}

int __wrap_fsync(int fd)
{
	struct stat st;
	bool dir = fstat(fd, &st) == 0 && S_ISDIR(st.st_mode);

	record(dir ? 'D' : 'F', fd, NULL);
	if ((dir && fail_dir_fsync) || (!dir && fail_file_fsync)) {
		errno = EIO;
		return -1;
	}
	return __real_fsync(fd);
}

int __wrap_renameat2(int olddirfd, const char *oldpath, int newdirfd, const char *newpath,
		     unsigned int flags)
{
	record('R', newdirfd, newpath);
	if (fail_rename_einval) {
		errno = EINVAL;
		return -1;
	}
	return __real_renameat2(olddirfd, oldpath, newdirfd, newpath, flags);
}

int __wrap_linkat(int olddirfd, const char *oldpath, int newdirfd, const char *newpath,
		  int flags)
{
	record('L', newdirfd, newpath);
	if (fail_link_exdev && strncmp(oldpath, ".tmp.", 5) != 0) {
		errno = EXDEV;
		return -1;
	}
	return __real_linkat(olddirfd, oldpath, newdirfd, newpath, flags);
}

int __wrap_mkdirat(int dirfd, const char *path, mode_t mode)
{
	record('M', dirfd, path);
	return __real_mkdirat(dirfd, path, mode);
}

/* Index of the first event of kind with path, from start; -1 if none. */
static int find_event(size_t start, char kind, const char *path)
{
	for (size_t i = start; i < nevents; i++)
		if (events[i].kind == kind && strcmp(events[i].path, path) == 0)
			return (int)i;
	return -1;
}

static int count_kind(char kind)
{
	int n = 0;

	for (size_t i = 0; i < nevents; i++)
		n += events[i].kind == kind;
	return n;
}

/* --- fixture ----------------------------------------------------------- */

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

static int setup(void **state)
{
	struct mf_blob_store *store;
	const char *error;

	snprintf(root, sizeof(root), "/tmp/mf-test-blob-XXXXXX");
	if (mkdtemp(root) == NULL)
		return -1;
	if (mf_blob_store_open(root, &store, &error) < 0)
		return -1;
	nevents = 0;
	fail_file_fsync = fail_dir_fsync = fail_link_exdev = fail_rename_einval = false;
	*state = store;
	return 0;
}

static int teardown(void **state)
{
	struct mf_blob_store *store = *state;

	mf_blob_store_free(&store);
	nftw(root, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	return 0;
}

/* Number of directory entries (besides . and ..) in root/rel. */
static int dir_entries(const char *rel)
{
	char path[600];
	DIR *d;
	struct dirent *de;
	int n = 0;

	snprintf(path, sizeof(path), "%s/%s", root, rel);
	d = opendir(path);
	if (d == NULL)
		return -1;
	while ((de = readdir(d)) != NULL)
		if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
			n++;
	closedir(d);
	return n;
}

/* Name of the first temporary file in root/rel, or "" */
static void find_tmp(const char *rel, char *buf, size_t size)
{
	char path[600];
	DIR *d;
	struct dirent *de;

	buf[0] = '\0';
	snprintf(path, sizeof(path), "%s/%s", root, rel);
	d = opendir(path);
	if (d == NULL)
		return;
	while ((de = readdir(d)) != NULL)
		if (strncmp(de->d_name, ".tmp.", 5) == 0)
			if (snprintf(buf, size, "%s/%s", path, de->d_name) >= (int)size)
				fail_msg("path too long");
	closedir(d);
}

static void make_old(const char *abs_path, unsigned secs)
{
	struct timespec ts[2];

	clock_gettime(CLOCK_REALTIME, &ts[0]);
	ts[0].tv_sec -= secs;
	ts[1] = ts[0];
	assert_int_equal(utimensat(AT_FDCWD, abs_path, ts, AT_SYMLINK_NOFOLLOW), 0);
}

static void assert_content(struct mf_blob_store *store, const char *key, const char *want)
{
	char *data = NULL;
	size_t size = 0;
	const char *error = NULL;

	assert_int_equal(mf_blob_read_all(store, key, 1 << 20, &data, &size, &error), 1);
	assert_int_equal(size, strlen(want));
	assert_memory_equal(data, want, size);
	free(data);
}

/* --- tests ------------------------------------------------------------- */

static void test_key_validation(void **state)
{
	static const struct { const char *key; bool ok; } cases[] = {
		{ "incoming/2026/11/22/abc123", true },
		{ "queue/0001/msg-42.eml", true },
		{ "accounts/mjl/m/1/2", true },
		{ "accounts/user@example.org/x", true },
		{ "a", true },
		{ "a.b=c+d_e-f", true },
		{ "", false },
		{ "/abs", false },
		{ "trailing/", false },
		{ "double//slash", false },
		{ "..", false },
		{ "a/../b", false },
		{ "a/./b", false },
		{ ".hidden", false },
		{ "a/.tmp.x", false },
		{ "sp ace", false },
		{ "back\\slash", false },
		{ "ctl\n", false },
		{ "uml\xc3\xa4ut", false },
		{ "colon:x", false },
	};
	const char *error;
	char big[MF_BLOB_KEY_MAX + 2];
	char seg[MF_BLOB_SEGMENT_MAX + 2];
	struct mf_buf deep;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		error = NULL;
		int r = mf_blob_key_validate(cases[i].key, &error);
		if ((r == 0) != cases[i].ok)
			fail_msg("key \"%s\": got %d (%s)", cases[i].key, r, error ? error : "");
		if (!cases[i].ok)
			assert_non_null(error);
	}
	/* limits: total length, segment length, depth */
	for (size_t i = 0; i < sizeof(big) - 1; i++)
		big[i] = (i % 100 == 99) ? '/' : 'a';
	big[MF_BLOB_KEY_MAX] = '\0';
	assert_int_equal(mf_blob_key_validate(big, &error), 0);
	big[MF_BLOB_KEY_MAX] = 'a';
	big[MF_BLOB_KEY_MAX + 1] = '\0';
	assert_int_equal(mf_blob_key_validate(big, &error), -1);
	memset(seg, 'x', sizeof(seg));
	seg[MF_BLOB_SEGMENT_MAX] = '\0';
	assert_int_equal(mf_blob_key_validate(seg, &error), 0);
	seg[MF_BLOB_SEGMENT_MAX] = 'x';
	seg[MF_BLOB_SEGMENT_MAX + 1] = '\0';
	assert_int_equal(mf_blob_key_validate(seg, &error), -1);
	mf_buf_init(&deep, 0);
	for (int i = 0; i < MF_BLOB_DEPTH_MAX; i++)
		mf_buf_append_str(&deep, i == 0 ? "d" : "/d");
	assert_int_equal(mf_blob_key_validate(mf_buf_cstr(&deep), &error), 0);
	mf_buf_append_str(&deep, "/d");
	assert_int_equal(mf_blob_key_validate(mf_buf_cstr(&deep), &error), -1);
	mf_buf_free(&deep);

	/* every entry point refuses a bad key before touching the disk */
	struct mf_blob_store *store = *state;
	struct mf_blob_writer *w = NULL;
	int fd;
	nevents = 0;
	assert_int_equal(mf_blob_put_begin(store, "../escape", &w, &error), -1);
	assert_null(w);
	assert_int_equal(mf_blob_put(store, "/etc/passwd", "x", 1, &error), -1);
	assert_int_equal(mf_blob_open(store, "a/../../etc/passwd", &fd, &error), -1);
	assert_int_equal(mf_blob_list(store, "../", NULL, NULL, &error), -1);
	assert_int_equal(nevents, 0);
	assert_int_equal(dir_entries(""), 0);
}

static void test_put_fsync_order(void **state)
{
	struct mf_blob_store *store = *state;
	struct mf_blob_writer *w;
	struct mf_blob_stat st;
	const char *error = NULL;
	const char *key = "incoming/2026/11/22/abc123";
	int file_sync, rename, dir_sync;
	char tmp[700];

	nevents = 0;
	assert_int_equal(mf_blob_put_begin(store, key, &w, &error), 0);
	/* every new directory is made durable in its parent before use */
	static const char *dirs[][2] = {
		{ "incoming", "" }, { "incoming/2026", "incoming" },
		{ "incoming/2026/11", "incoming/2026" },
		{ "incoming/2026/11/22", "incoming/2026/11" },
	};
	for (size_t i = 0; i < 4; i++) {
		int m = find_event(0, 'M', dirs[i][0]);
		assert_true(m >= 0);
		assert_true(find_event((size_t)m, 'D', dirs[i][1]) > m);
	}
	assert_int_equal(mf_blob_write(w, "Subject: hi\r\n", 13, &error), 0);
	assert_int_equal(mf_blob_write(w, "\r\nbody\r\n", 8, &error), 0);

	/* not a key before commit: invisible to stat and open, only a temp file */
	assert_int_equal(mf_blob_stat(store, key, &st, &error), 0);
	find_tmp("incoming/2026/11/22", tmp, sizeof(tmp));
	assert_true(tmp[0] != '\0');

	size_t before = nevents;
	assert_int_equal(mf_blob_put_commit(&w, &error), 0);
	assert_null(w);
	/* the file synced is the temporary file in the key's directory */
	file_sync = -1;
	for (size_t i = before; i < nevents; i++)
		if (events[i].kind == 'F' &&
		    strncmp(events[i].path, "incoming/2026/11/22/.tmp.abc123.", 32) == 0) {
			file_sync = (int)i;
			break;
		}
	rename = find_event(before, 'R', key);
	dir_sync = find_event(before, 'D', "incoming/2026/11/22");
	assert_true(file_sync >= 0);
	assert_true(rename > file_sync);
	assert_true(dir_sync > rename);

	assert_int_equal(mf_blob_stat(store, key, &st, &error), 1);
	assert_int_equal(st.size, 21);
	assert_true(st.mtime > 0);
	assert_content(store, key, "Subject: hi\r\n\r\nbody\r\n");
	find_tmp("incoming/2026/11/22", tmp, sizeof(tmp));
	assert_string_equal(tmp, "");

	/* a second key in an existing directory creates no directory */
	nevents = 0;
	assert_int_equal(mf_blob_put(store, "incoming/2026/11/22/def", "x", 1, &error), 0);
	assert_int_equal(count_kind('M'), 0);
	assert_int_equal(count_kind('F'), 1);
	assert_int_equal(count_kind('R'), 1);
	assert_true(find_event(0, 'D', "incoming/2026/11/22") > find_event(0, 'R', "incoming/2026/11/22/def"));
}

static void test_rename_fallback_link(void **state)
{
	struct mf_blob_store *store = *state;
	const char *error = NULL;

	/* a filesystem without RENAME_NOREPLACE: link + unlink, still no
	 * overwrite and still fsync file -> name -> directory */
	fail_rename_einval = true;
	nevents = 0;
	assert_int_equal(mf_blob_put(store, "queue/a", "one", 3, &error), 0);
	int f = -1;
	for (size_t i = 0; i < nevents; i++)
		if (events[i].kind == 'F' && f < 0)
			f = (int)i;
	int l = find_event(0, 'L', "queue/a");
	assert_true(f >= 0 && l > f);
	assert_true(find_event((size_t)l, 'D', "queue") > l);
	assert_int_equal(mf_blob_put(store, "queue/a", "two", 3, &error), -1);
	assert_non_null(strstr(error, "already exists"));
	assert_content(store, "queue/a", "one");
	assert_int_equal(dir_entries("queue"), 1);
}

static void test_immutable(void **state)
{
	struct mf_blob_store *store = *state;
	struct mf_blob_writer *w1, *w2, *w3 = NULL;
	const char *error = NULL;

	assert_int_equal(mf_blob_put(store, "queue/m1", "first", 5, &error), 0);
	assert_int_equal(mf_blob_put(store, "queue/m1", "second", 6, &error), -1);
	assert_non_null(strstr(error, "already exists"));
	assert_int_equal(mf_blob_put_begin(store, "queue/m1", &w3, &error), -1);
	assert_null(w3);
	assert_content(store, "queue/m1", "first");

	/* two writers racing for one key: the second commit loses cleanly */
	assert_int_equal(mf_blob_put_begin(store, "queue/m2", &w1, &error), 0);
	assert_int_equal(mf_blob_put_begin(store, "queue/m2", &w2, &error), 0);
	assert_int_equal(mf_blob_write(w1, "A", 1, &error), 0);
	assert_int_equal(mf_blob_write(w2, "B", 1, &error), 0);
	assert_int_equal(mf_blob_put_commit(&w1, &error), 0);
	assert_int_equal(mf_blob_put_commit(&w2, &error), -1);
	assert_null(w2);
	assert_non_null(strstr(error, "already exists"));
	assert_content(store, "queue/m2", "A");
	assert_int_equal(dir_entries("queue"), 2);  /* m1, m2, no temp left */
}

static void test_abort_and_failures_leave_nothing(void **state)
{
	struct mf_blob_store *store = *state;
	struct mf_blob_writer *w;
	struct mf_blob_stat st;
	const char *error = NULL;

	assert_int_equal(mf_blob_put_begin(store, "incoming/x/k", &w, &error), 0);
	assert_int_equal(mf_blob_write(w, "data", 4, &error), 0);
	assert_int_equal(dir_entries("incoming/x"), 1);
	mf_blob_put_abort(&w);
	assert_null(w);
	mf_blob_put_abort(&w);  /* NULL is fine */
	assert_int_equal(dir_entries("incoming/x"), 0);
	assert_int_equal(mf_blob_stat(store, "incoming/x/k", &st, &error), 0);

	/* fsync of the data fails: no key, no temp file */
	fail_file_fsync = true;
	assert_int_equal(mf_blob_put(store, "incoming/x/k", "data", 4, &error), -1);
	assert_non_null(strstr(error, "fsync"));
	fail_file_fsync = false;
	assert_int_equal(dir_entries("incoming/x"), 0);

	/* fsync of the directory fails: the rename is taken back */
	fail_dir_fsync = true;
	nevents = 0;
	assert_int_equal(mf_blob_put(store, "incoming/x/k", "data", 4, &error), -1);
	assert_non_null(strstr(error, "fsync of directory"));
	fail_dir_fsync = false;
	assert_int_equal(find_event(0, 'R', "incoming/x/k") >= 0, 1);
	assert_int_equal(dir_entries("incoming/x"), 0);
	assert_int_equal(mf_blob_stat(store, "incoming/x/k", &st, &error), 0);

	/* and it works afterwards */
	assert_int_equal(mf_blob_put(store, "incoming/x/k", "data", 4, &error), 0);
	assert_content(store, "incoming/x/k", "data");
}

static void test_read_open_delete(void **state)
{
	struct mf_blob_store *store = *state;
	const char *error = NULL;
	char *data = NULL, buf[16];
	size_t size;
	int fd = -1;

	assert_int_equal(mf_blob_put(store, "accounts/mjl/1", "hello world", 11, &error), 0);
	assert_int_equal(mf_blob_open(store, "accounts/mjl/1", &fd, &error), 1);
	assert_int_equal(read(fd, buf, sizeof(buf)), 11);
	assert_memory_equal(buf, "hello world", 11);
	close(fd);
	assert_int_equal(mf_blob_open(store, "accounts/mjl/2", &fd, &error), 0);
	assert_int_equal(mf_blob_open(store, "accounts/nobody/2", &fd, &error), 0);
	assert_int_equal(mf_blob_read_all(store, "accounts/mjl/1", 10, &data, &size, &error), -1);
	assert_non_null(strstr(error, "more than"));
	assert_null(data);
	assert_int_equal(mf_blob_read_all(store, "accounts/mjl/1", 11, &data, &size, &error), 1);
	assert_string_equal(data, "hello world");
	free(data);
	assert_int_equal(mf_blob_read_all(store, "accounts/mjl/9", 11, &data, &size, &error), 0);
	/* a directory is not a key */
	assert_int_equal(mf_blob_open(store, "accounts/mjl", &fd, &error), -1);
	assert_non_null(strstr(error, "not a regular file"));

	nevents = 0;
	assert_int_equal(mf_blob_delete(store, "accounts/mjl/1", &error), 1);
	assert_true(find_event(0, 'D', "accounts/mjl") >= 0);
	assert_int_equal(mf_blob_delete(store, "accounts/mjl/1", &error), 0);
	assert_int_equal(mf_blob_delete(store, "nothing/here", &error), 0);
	assert_int_equal(mf_blob_open(store, "accounts/mjl/1", &fd, &error), 0);
}

struct collected {
	char keys[32][128];
	int n;
	int stop_after;
};

static int collect(const char *key, void *context)
{
	struct collected *c = context;

	if (c->n < 32)
		snprintf(c->keys[c->n++], sizeof(c->keys[0]), "%s", key);
	return c->stop_after != 0 && c->n >= c->stop_after;
}

static void test_list(void **state)
{
	struct mf_blob_store *store = *state;
	struct mf_blob_writer *w;
	struct collected c;
	const char *error = NULL;
	static const char *keys[] = {
		"queue/b/2", "queue/a", "queue/b/1", "incoming/2026/01/01/z",
		"accounts/mjl/1",
	};

	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		assert_int_equal(mf_blob_put(store, keys[i], "x", 1, &error), 0);
	/* an uncommitted put is not listed */
	assert_int_equal(mf_blob_put_begin(store, "queue/b/3", &w, &error), 0);

	memset(&c, 0, sizeof(c));
	assert_int_equal(mf_blob_list(store, "queue", collect, &c, &error), 0);
	assert_int_equal(c.n, 3);
	assert_string_equal(c.keys[0], "queue/a");
	assert_string_equal(c.keys[1], "queue/b/1");
	assert_string_equal(c.keys[2], "queue/b/2");

	memset(&c, 0, sizeof(c));
	assert_int_equal(mf_blob_list(store, "queue/b", collect, &c, &error), 0);
	assert_int_equal(c.n, 2);

	memset(&c, 0, sizeof(c));
	assert_int_equal(mf_blob_list(store, "", collect, &c, &error), 0);
	assert_int_equal(c.n, 5);
	assert_string_equal(c.keys[0], "accounts/mjl/1");
	assert_string_equal(c.keys[1], "incoming/2026/01/01/z");

	memset(&c, 0, sizeof(c));
	c.stop_after = 2;
	assert_int_equal(mf_blob_list(store, "", collect, &c, &error), 0);
	assert_int_equal(c.n, 2);

	memset(&c, 0, sizeof(c));
	assert_int_equal(mf_blob_list(store, "nothing", collect, &c, &error), 0);
	assert_int_equal(mf_blob_list(store, "queue/a", collect, &c, &error), 0);
	assert_int_equal(c.n, 0);

	mf_blob_put_abort(&w);
}

static void test_sweep(void **state)
{
	struct mf_blob_store *store = *state;
	struct mf_blob_writer *wi, *wq, *wnew;
	struct mf_blob_stat st;
	char path[700], tmp[700];
	const char *error = NULL;
	unsigned removed = 99;

	assert_int_equal(mf_blob_put(store, "incoming/d/old", "x", 1, &error), 0);
	assert_int_equal(mf_blob_put(store, "incoming/d/new", "x", 1, &error), 0);
	assert_int_equal(mf_blob_put(store, "incoming/gone/old", "x", 1, &error), 0);
	assert_int_equal(mf_blob_put(store, "queue/q/old", "x", 1, &error), 0);
	snprintf(path, sizeof(path), "%s/incoming/d/old", root);
	make_old(path, 7200);
	snprintf(path, sizeof(path), "%s/incoming/gone/old", root);
	make_old(path, 7200);
	snprintf(path, sizeof(path), "%s/incoming/gone", root);
	make_old(path, 7200);
	snprintf(path, sizeof(path), "%s/queue/q/old", root);
	make_old(path, 7200);
	/* temporary files of crashed writers (old) and a live writer (new) */
	assert_int_equal(mf_blob_put_begin(store, "incoming/d/crashed", &wi, &error), 0);
	find_tmp("incoming/d", tmp, sizeof(tmp));
	make_old(tmp, 7200);
	assert_int_equal(mf_blob_put_begin(store, "queue/q/crashed", &wq, &error), 0);
	find_tmp("queue/q", tmp, sizeof(tmp));
	make_old(tmp, 7200);
	assert_int_equal(mf_blob_put_begin(store, "queue/q/live", &wnew, &error), 0);

	/* queue/: old temp files go, keys stay (only incoming/ has orphans) */
	assert_int_equal(mf_blob_sweep_temp(store, "queue", 3600, &removed, &error), 0);
	assert_int_equal(removed, 1);
	assert_int_equal(mf_blob_stat(store, "queue/q/old", &st, &error), 1);
	assert_int_equal(dir_entries("queue/q"), 2);  /* old + live temp */

	/* incoming/: old temp and old keys go, new ones stay, empty old dir too */
	assert_int_equal(mf_blob_sweep_temp(store, "incoming", 3600, &removed, &error), 0);
	assert_int_equal(removed, 3);
	assert_int_equal(mf_blob_stat(store, "incoming/d/old", &st, &error), 0);
	assert_int_equal(mf_blob_stat(store, "incoming/d/new", &st, &error), 1);
	assert_int_equal(dir_entries("incoming/d"), 1);
	assert_int_equal(dir_entries("incoming/gone"), -1);
	assert_int_equal(dir_entries("incoming"), 1);

	/* the live writer still commits */
	assert_int_equal(mf_blob_put_commit(&wnew, &error), 0);
	assert_int_equal(mf_blob_stat(store, "queue/q/live", &st, &error), 1);
	/* writers whose temp files were swept fail at commit, leaving nothing */
	assert_int_equal(mf_blob_put_commit(&wi, &error), -1);
	mf_blob_put_abort(&wq);
	assert_int_equal(mf_blob_stat(store, "incoming/d/crashed", &st, &error), 0);
	assert_int_equal(mf_blob_sweep_temp(store, "incoming/d/../x", 1, &removed, &error), -1);
}

static void test_link(void **state)
{
	struct mf_blob_store *store = *state;
	const char *error = NULL;
	struct stat st1, st2;
	char p1[700], p2[700];

	assert_int_equal(mf_blob_put(store, "incoming/a/msg", "message", 7, &error), 0);
	nevents = 0;
	assert_int_equal(mf_blob_link(store, "incoming/a/msg", "queue/1/msg", &error), 0);
	int l = find_event(0, 'L', "queue/1/msg");
	assert_true(l >= 0);
	assert_true(find_event((size_t)l, 'D', "queue/1") > l);
	/* a hard link: same inode */
	snprintf(p1, sizeof(p1), "%s/incoming/a/msg", root);
	snprintf(p2, sizeof(p2), "%s/queue/1/msg", root);
	assert_int_equal(stat(p1, &st1), 0);
	assert_int_equal(stat(p2, &st2), 0);
	assert_int_equal(st1.st_ino, st2.st_ino);

	assert_int_equal(mf_blob_link(store, "incoming/a/msg", "queue/1/msg", &error), -1);
	assert_non_null(strstr(error, "already exists"));
	assert_int_equal(mf_blob_link(store, "incoming/a/none", "queue/1/x", &error), -1);
	assert_non_null(strstr(error, "does not exist"));
	assert_int_equal(mf_blob_link(store, "nodir/a/none", "queue/1/x", &error), -1);

	/* hand-off: the old owner deletes its key, the new one keeps the data */
	assert_int_equal(mf_blob_delete(store, "incoming/a/msg", &error), 1);
	assert_content(store, "queue/1/msg", "message");

	/* a filesystem that cannot link: copied, with the full put discipline */
	fail_link_exdev = true;
	nevents = 0;
	assert_int_equal(mf_blob_link(store, "queue/1/msg", "accounts/mjl/9", &error), 0);
	int f = -1;
	for (size_t i = 0; i < nevents; i++)
		if (events[i].kind == 'F' && f < 0)
			f = (int)i;
	int r = find_event(0, 'R', "accounts/mjl/9");
	assert_true(f >= 0 && r > f);
	assert_true(find_event((size_t)r, 'D', "accounts/mjl") > r);
	assert_content(store, "accounts/mjl/9", "message");
	snprintf(p1, sizeof(p1), "%s/accounts/mjl/9", root);
	assert_int_equal(stat(p1, &st1), 0);
	assert_true(st1.st_ino != st2.st_ino);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_key_validation, setup, teardown),
		cmocka_unit_test_setup_teardown(test_put_fsync_order, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rename_fallback_link, setup, teardown),
		cmocka_unit_test_setup_teardown(test_immutable, setup, teardown),
		cmocka_unit_test_setup_teardown(test_abort_and_failures_leave_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_read_open_delete, setup, teardown),
		cmocka_unit_test_setup_teardown(test_list, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sweep, setup, teardown),
		cmocka_unit_test_setup_teardown(test_link, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
