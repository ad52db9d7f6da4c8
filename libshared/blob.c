#include "blob.h"
#include "buf.h"
#include "error.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define BLOB_TMP_PREFIX ".tmp."
#define BLOB_FILE_MODE 0640
#define BLOB_DIR_MODE 0750
#define BLOB_COPY_CHUNK 65536
/* put_begin retries when a sweep removes the directory under it */
#define BLOB_OPEN_RETRIES 3
#define BLOB_INCOMING "incoming"

struct mf_blob_store {
	char *root;
	int root_fd;
};

struct mf_blob_writer {
	struct mf_blob_store *store;
	char *key;
	char *tmp;     /* temporary name inside dir_fd */
	int dir_fd;
	int fd;
	uint64_t size;
};

static atomic_uint tmp_counter;

static bool segment_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '_' || c == '.' || c == '=' || c == '+' || c == '@' || c == '-';
}

/* allow_empty: the empty string (the whole store) is accepted, for prefixes. */
static int path_validate(const char *key, bool allow_empty, const char **error_r)
{
	size_t len = strlen(key), seglen = 0;
	unsigned depth = 1;

	if (len == 0) {
		if (allow_empty)
			return 0;
		*error_r = "blob key is empty";
		return -1;
	}
	if (len > MF_BLOB_KEY_MAX) {
		*error_r = "blob key too long";
		return -1;
	}
	for (size_t i = 0; i <= len; i++) {
		char c = key[i];

		if (c == '/' || c == '\0') {
			if (seglen == 0) {
				*error_r = "blob key has an empty segment (leading, trailing or double /)";
				return -1;
			}
			if (c == '/' && ++depth > MF_BLOB_DEPTH_MAX) {
				*error_r = "blob key has too many segments";
				return -1;
			}
			seglen = 0;
			continue;
		}
		/* '.' first excludes ".", "..", hidden and temporary names */
		if (seglen == 0 && c == '.') {
			*error_r = "blob key segment starts with '.'";
			return -1;
		}
		if (!segment_char(c)) {
			*error_r = "blob key has a character outside A-Z a-z 0-9 _ . = + @ -";
			return -1;
		}
		if (++seglen > MF_BLOB_SEGMENT_MAX) {
			*error_r = "blob key segment too long";
			return -1;
		}
	}
	return 0;
}

int mf_blob_key_validate(const char *key, const char **error_r)
{
	return path_validate(key, false, error_r);
}

int mf_blob_store_open(const char *root, struct mf_blob_store **store_r,
		       const char **error_r)
{
	struct mf_blob_store *store;
	int fd;

	if (mkdir(root, BLOB_DIR_MODE) < 0 && errno != EEXIST) {
		*error_r = mf_errorf("blob store %s: mkdir: %s", root, strerror(errno));
		return -1;
	}
	fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		*error_r = mf_errorf("blob store %s: %s", root, strerror(errno));
		return -1;
	}
	store = mf_xcalloc(1, sizeof(*store));
	store->root = mf_xstrdup(root);
	store->root_fd = fd;
	*store_r = store;
	return 0;
}

void mf_blob_store_free(struct mf_blob_store **storep)
{
	struct mf_blob_store *store = *storep;

	if (store == NULL)
		return;
	*storep = NULL;
	close(store->root_fd);
	free(store->root);
	free(store);
}

/* Opens the directory dir (a validated key-like path, "" for the root),
 * creating missing components when create is set; each new directory is
 * made durable by an fsync of its parent.  Symlinks are not followed.
 * Returns 1 with *fd_r, 0 when it does not exist (create unset), or -1. */
static int dir_open(struct mf_blob_store *store, const char *dir, size_t dirlen, bool create,
		    int *fd_r, const char **error_r)
{
	int fd = dup(store->root_fd), nfd, ret = -1;
	char seg[MF_BLOB_SEGMENT_MAX + 1];
	size_t pos = 0;

	if (fd < 0) {
		*error_r = mf_errorf("blob store %s: dup: %s", store->root, strerror(errno));
		return -1;
	}
	while (pos < dirlen) {
		const char *slash = memchr(dir + pos, '/', dirlen - pos);
		size_t n = (slash != NULL ? (size_t)(slash - dir) : dirlen) - pos;

		memcpy(seg, dir + pos, n);
		seg[n] = '\0';
		pos += n + 1;
		nfd = openat(fd, seg, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (nfd < 0 && errno == ENOENT && create) {
			if (mkdirat(fd, seg, BLOB_DIR_MODE) < 0 && errno != EEXIST) {
				*error_r = mf_errorf("blob %.*s: mkdir: %s", (int)dirlen, dir,
						     strerror(errno));
				goto out;
			}
			/* Also after EEXIST: the creator may not have synced yet. */
			if (fsync(fd) < 0) {
				*error_r = mf_errorf("blob %.*s: fsync of parent directory: %s",
						     (int)dirlen, dir, strerror(errno));
				goto out;
			}
			nfd = openat(fd, seg, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		}
		if (nfd < 0) {
			if (errno == ENOENT || errno == ENOTDIR) {
				ret = 0;
				goto out;
			}
			*error_r = mf_errorf("blob %.*s: %s", (int)dirlen, dir, strerror(errno));
			goto out;
		}
		close(fd);
		fd = nfd;
	}
	*fd_r = fd;
	fd = -1;
	ret = 1;
out:
	if (fd >= 0)
		close(fd);
	return ret;
}

/* Opens the directory of key; *base_r points at the last segment. */
static int key_dir_open(struct mf_blob_store *store, const char *key, bool create,
			int *fd_r, const char **base_r, const char **error_r)
{
	const char *slash = strrchr(key, '/');

	if (mf_blob_key_validate(key, error_r) < 0)
		return -1;
	*base_r = slash != NULL ? slash + 1 : key;
	return dir_open(store, key, slash != NULL ? (size_t)(slash - key) : 0, create, fd_r,
			error_r);
}

static int write_full(int fd, const void *data, size_t len)
{
	const char *p = data;

	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int mf_blob_put_begin(struct mf_blob_store *store, const char *key,
		      struct mf_blob_writer **w_r, const char **error_r)
{
	struct mf_blob_writer *w;
	const char *base;
	struct stat st;
	int dir_fd = -1, fd = -1;
	char *tmp = NULL;

	for (int attempt = 0; attempt < BLOB_OPEN_RETRIES; attempt++) {
		if (key_dir_open(store, key, true, &dir_fd, &base, error_r) < 0)
			goto fail;
		if (fstatat(dir_fd, base, &st, AT_SYMLINK_NOFOLLOW) == 0) {
			*error_r = mf_errorf("blob %s: already exists", key);
			goto fail;
		}
		free(tmp);
		tmp = mf_xasprintf(BLOB_TMP_PREFIX "%s.%ld.%u", base, (long)getpid(),
				   atomic_fetch_add(&tmp_counter, 1));
		fd = openat(dir_fd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
			    BLOB_FILE_MODE);
		if (fd >= 0)
			break;
		if (errno != ENOENT) {
			*error_r = mf_errorf("blob %s: create temporary file: %s", key,
					     strerror(errno));
			goto fail;
		}
		/* the directory was swept away between open and create */
		close(dir_fd);
		dir_fd = -1;
	}
	if (fd < 0) {
		*error_r = mf_errorf("blob %s: directory keeps disappearing", key);
		goto fail;
	}
	w = mf_xcalloc(1, sizeof(*w));
	w->store = store;
	w->key = mf_xstrdup(key);
	w->tmp = tmp;
	w->dir_fd = dir_fd;
	w->fd = fd;
	*w_r = w;
	return 0;
fail:
	if (dir_fd >= 0)
		close(dir_fd);
	free(tmp);
	return -1;
}

int mf_blob_write(struct mf_blob_writer *w, const void *data, size_t len,
		  const char **error_r)
{
	if (w->fd < 0) {
		*error_r = mf_errorf("blob %s: writer already failed", w->key);
		return -1;
	}
	if (write_full(w->fd, data, len) < 0) {
		*error_r = mf_errorf("blob %s: write: %s", w->key, strerror(errno));
		return -1;
	}
	w->size += len;
	return 0;
}

static void writer_free(struct mf_blob_writer *w, bool remove_tmp)
{
	if (w->fd >= 0)
		close(w->fd);
	if (remove_tmp)
		(void)unlinkat(w->dir_fd, w->tmp, 0);
	close(w->dir_fd);
	free(w->tmp);
	free(w->key);
	free(w);
}

/* Renames tmp to base in dir_fd unless base exists.  Returns 0, or -1 with
 * errno (EEXIST when base exists). */
static int rename_noreplace(int dir_fd, const char *tmp, const char *base)
{
	if (renameat2(dir_fd, tmp, dir_fd, base, RENAME_NOREPLACE) == 0)
		return 0;
	if (errno != EINVAL && errno != ENOSYS && errno != ENOTSUP)
		return -1;
	/* The filesystem has no RENAME_NOREPLACE: link() also refuses to
	 * replace, and is atomic. */
	if (linkat(dir_fd, tmp, dir_fd, base, 0) < 0)
		return -1;
	(void)unlinkat(dir_fd, tmp, 0);
	return 0;
}

int mf_blob_put_commit(struct mf_blob_writer **wp, const char **error_r)
{
	struct mf_blob_writer *w = *wp;
	const char *base = strrchr(w->key, '/');
	bool remove_tmp = true;
	int ret = -1, fd = w->fd;

	*wp = NULL;
	base = base != NULL ? base + 1 : w->key;
	w->fd = -1;
	/* The data must be on disk before the name points at it, or a crash
	 * could leave a key with missing contents. */
	if (fsync(fd) < 0) {
		*error_r = mf_errorf("blob %s: fsync: %s", w->key, strerror(errno));
		close(fd);
		goto out;
	}
	if (close(fd) < 0) {
		*error_r = mf_errorf("blob %s: close: %s", w->key, strerror(errno));
		goto out;
	}
	if (rename_noreplace(w->dir_fd, w->tmp, base) < 0) {
		*error_r = errno == EEXIST ? mf_errorf("blob %s: already exists", w->key) :
			   mf_errorf("blob %s: rename: %s", w->key, strerror(errno));
		goto out;
	}
	remove_tmp = false;
	if (fsync(w->dir_fd) < 0) {
		/* Not durable, so not committed: take the name back. */
		*error_r = mf_errorf("blob %s: fsync of directory: %s", w->key, strerror(errno));
		(void)unlinkat(w->dir_fd, base, 0);
		goto out;
	}
	ret = 0;
out:
	writer_free(w, remove_tmp);
	return ret;
}

void mf_blob_put_abort(struct mf_blob_writer **wp)
{
	struct mf_blob_writer *w = *wp;

	if (w == NULL)
		return;
	*wp = NULL;
	writer_free(w, true);
}

int mf_blob_put(struct mf_blob_store *store, const char *key, const void *data,
		size_t len, const char **error_r)
{
	struct mf_blob_writer *w;

	if (mf_blob_put_begin(store, key, &w, error_r) < 0)
		return -1;
	if (mf_blob_write(w, data, len, error_r) < 0) {
		mf_blob_put_abort(&w);
		return -1;
	}
	return mf_blob_put_commit(&w, error_r);
}

int mf_blob_open(struct mf_blob_store *store, const char *key, int *fd_r,
		 const char **error_r)
{
	const char *base;
	int dir_fd, fd, ret;

	ret = key_dir_open(store, key, false, &dir_fd, &base, error_r);
	if (ret <= 0)
		return ret;
	fd = openat(dir_fd, base, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd >= 0) {
		struct stat st;

		if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
			*error_r = mf_errorf("blob %s: not a regular file", key);
			close(fd);
			ret = -1;
		} else {
			*fd_r = fd;
			ret = 1;
		}
	} else if (errno == ENOENT) {
		ret = 0;
	} else {
		*error_r = mf_errorf("blob %s: open: %s", key, strerror(errno));
		ret = -1;
	}
	close(dir_fd);
	return ret;
}

int mf_blob_read_all(struct mf_blob_store *store, const char *key, size_t max,
		     char **data_r, size_t *size_r, const char **error_r)
{
	struct stat st;
	char *data = NULL;
	size_t len = 0;
	int fd = -1, ret;

	ret = mf_blob_open(store, key, &fd, error_r);
	if (ret <= 0)
		return ret;
	ret = -1;
	if (fstat(fd, &st) < 0) {
		*error_r = mf_errorf("blob %s: fstat: %s", key, strerror(errno));
		goto out;
	}
	if ((uint64_t)st.st_size > max) {
		*error_r = mf_errorf("blob %s: %lld bytes, more than the %zu allowed", key,
				     (long long)st.st_size, max);
		goto out;
	}
	data = mf_xmalloc((size_t)st.st_size + 1);
	while (len < (size_t)st.st_size) {
		ssize_t n = read(fd, data + len, (size_t)st.st_size - len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			*error_r = mf_errorf("blob %s: read: %s", key, strerror(errno));
			goto out;
		}
		if (n == 0) {
			*error_r = mf_errorf("blob %s: shorter than its size", key);
			goto out;
		}
		len += (size_t)n;
	}
	data[len] = '\0';
	*data_r = data;
	*size_r = len;
	data = NULL;
	ret = 1;
out:
	free(data);
	close(fd);
	return ret;
}

int mf_blob_stat(struct mf_blob_store *store, const char *key,
		 struct mf_blob_stat *stat_r, const char **error_r)
{
	const char *base;
	struct stat st;
	int dir_fd, ret;

	ret = key_dir_open(store, key, false, &dir_fd, &base, error_r);
	if (ret <= 0)
		return ret;
	if (fstatat(dir_fd, base, &st, AT_SYMLINK_NOFOLLOW) < 0) {
		if (errno == ENOENT) {
			ret = 0;
		} else {
			*error_r = mf_errorf("blob %s: stat: %s", key, strerror(errno));
			ret = -1;
		}
	} else if (!S_ISREG(st.st_mode)) {
		*error_r = mf_errorf("blob %s: not a regular file", key);
		ret = -1;
	} else {
		stat_r->size = (uint64_t)st.st_size;
		stat_r->mtime = st.st_mtime;
		ret = 1;
	}
	close(dir_fd);
	return ret;
}

int mf_blob_delete(struct mf_blob_store *store, const char *key, const char **error_r)
{
	const char *base;
	int dir_fd, ret;

	ret = key_dir_open(store, key, false, &dir_fd, &base, error_r);
	if (ret <= 0)
		return ret;
	if (unlinkat(dir_fd, base, 0) < 0) {
		if (errno == ENOENT) {
			ret = 0;
		} else {
			*error_r = mf_errorf("blob %s: unlink: %s", key, strerror(errno));
			ret = -1;
		}
	} else if (fsync(dir_fd) < 0) {
		*error_r = mf_errorf("blob %s: fsync of directory: %s", key, strerror(errno));
		ret = -1;
	} else {
		ret = 1;
	}
	close(dir_fd);
	return ret;
}

static int blob_copy(struct mf_blob_store *store, int src_dir, const char *src_base,
		     const char *from_key, const char *to_key, const char **error_r)
{
	struct mf_blob_writer *w = NULL;
	char *chunk = NULL;
	int fd, ret = -1;

	fd = openat(src_dir, src_base, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		*error_r = mf_errorf("blob %s: open: %s", from_key, strerror(errno));
		return -1;
	}
	if (mf_blob_put_begin(store, to_key, &w, error_r) < 0)
		goto out;
	chunk = mf_xmalloc(BLOB_COPY_CHUNK);
	for (;;) {
		ssize_t n = read(fd, chunk, BLOB_COPY_CHUNK);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			*error_r = mf_errorf("blob %s: read: %s", from_key, strerror(errno));
			goto out;
		}
		if (n == 0)
			break;
		if (mf_blob_write(w, chunk, (size_t)n, error_r) < 0)
			goto out;
	}
	ret = mf_blob_put_commit(&w, error_r);
out:
	mf_blob_put_abort(&w);
	free(chunk);
	close(fd);
	return ret;
}

int mf_blob_link(struct mf_blob_store *store, const char *from_key, const char *to_key,
		 const char **error_r)
{
	const char *from_base, *to_base;
	int from_dir = -1, to_dir = -1, ret = -1, r;

	r = key_dir_open(store, from_key, false, &from_dir, &from_base, error_r);
	if (r < 0)
		goto out;
	if (r == 0) {
		*error_r = mf_errorf("blob %s: does not exist", from_key);
		goto out;
	}
	if (key_dir_open(store, to_key, true, &to_dir, &to_base, error_r) < 0)
		goto out;
	if (linkat(from_dir, from_base, to_dir, to_base, 0) == 0) {
		if (fsync(to_dir) < 0) {
			*error_r = mf_errorf("blob %s: fsync of directory: %s", to_key,
					     strerror(errno));
			(void)unlinkat(to_dir, to_base, 0);
			goto out;
		}
		ret = 0;
		goto out;
	}
	switch (errno) {
	case EEXIST:
		*error_r = mf_errorf("blob %s: already exists", to_key);
		break;
	case ENOENT:
		*error_r = mf_errorf("blob %s: does not exist", from_key);
		break;
	case EXDEV: case EPERM: case EMLINK: case ENOTSUP:
		/* another filesystem, or one without hard links */
		ret = blob_copy(store, from_dir, from_base, from_key, to_key, error_r);
		break;
	default:
		*error_r = mf_errorf("blob %s: link: %s", to_key, strerror(errno));
		break;
	}
out:
	if (from_dir >= 0)
		close(from_dir);
	if (to_dir >= 0)
		close(to_dir);
	return ret;
}

/* --- walking ------------------------------------------------------------ */

struct walk {
	struct mf_blob_store *store;
	/* list */
	mf_blob_list_callback *callback;
	void *context;
	bool stopped;
	/* sweep */
	bool sweep, sweep_keys;
	time_t cutoff;
	unsigned removed;
	const char *error;
};

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Returns the sorted names in dir_fd except "." and ".." (caller frees each
 * and the array), or NULL with w->error set. */
static char **dir_names(int dir_fd, const char *path, size_t *count_r, struct walk *w)
{
	int fd = dup(dir_fd);
	DIR *d;
	struct dirent *de;
	char **names = NULL;
	size_t n = 0, cap = 0;

	if (fd < 0 || (d = fdopendir(fd)) == NULL) {
		w->error = mf_errorf("blob %s: opendir: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return NULL;
	}
	rewinddir(d);
	while ((errno = 0, de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (n == cap) {
			cap = cap == 0 ? 16 : cap * 2;
			names = mf_xrealloc(names, cap * sizeof(*names));
		}
		names[n++] = mf_xstrdup(de->d_name);
	}
	closedir(d);
	if (n > 0)
		qsort(names, n, sizeof(*names), name_cmp);
	*count_r = n;
	if (names == NULL)
		names = mf_xcalloc(1, sizeof(*names));
	return names;
}

/* Walks dir_fd whose key path is path ("" for the root) at depth. */
static int walk_dir(struct walk *w, int dir_fd, const char *path, unsigned depth)
{
	size_t n = 0;
	char **names = dir_names(dir_fd, path, &n, w);
	bool changed = false;
	int ret = 0;

	if (names == NULL)
		return -1;
	for (size_t i = 0; i < n && ret == 0 && !w->stopped; i++) {
		const char *name = names[i], *error;
		char *key;
		struct stat st;

		if (fstatat(dir_fd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue;   /* removed meanwhile */
		if (strncmp(name, BLOB_TMP_PREFIX, strlen(BLOB_TMP_PREFIX)) == 0) {
			if (w->sweep && S_ISREG(st.st_mode) && st.st_mtime < w->cutoff &&
			    unlinkat(dir_fd, name, 0) == 0) {
				w->removed++;
				changed = true;
			}
			continue;
		}
		/* not ours: something else put it there; leave it alone */
		if (name[0] == '.' || path_validate(name, false, &error) < 0)
			continue;
		key = path[0] == '\0' ? mf_xstrdup(name) : mf_xasprintf("%s/%s", path, name);
		if (strlen(key) > MF_BLOB_KEY_MAX) {
			free(key);
			continue;
		}
		if (S_ISDIR(st.st_mode) && depth < MF_BLOB_DEPTH_MAX) {
			int sub = openat(dir_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

			if (sub >= 0) {
				ret = walk_dir(w, sub, key, depth + 1);
				close(sub);
				/* fails harmlessly (ENOTEMPTY) unless it is empty now */
				if (ret == 0 && w->sweep && st.st_mtime < w->cutoff &&
				    unlinkat(dir_fd, name, AT_REMOVEDIR) == 0)
					changed = true;
			}
		} else if (S_ISREG(st.st_mode)) {
			if (w->sweep) {
				if (w->sweep_keys && st.st_mtime < w->cutoff &&
				    unlinkat(dir_fd, name, 0) == 0) {
					w->removed++;
					changed = true;
				}
			} else if (w->callback(key, w->context) != 0) {
				w->stopped = true;
			}
		}
		free(key);
	}
	if (changed && fsync(dir_fd) < 0 && ret == 0) {
		w->error = mf_errorf("blob %s: fsync of directory: %s", path, strerror(errno));
		ret = -1;
	}
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	return ret;
}

static int walk_prefix(struct mf_blob_store *store, const char *prefix, struct walk *w,
		       const char **error_r)
{
	unsigned depth = 0;
	int fd, ret;

	if (path_validate(prefix, true, error_r) < 0)
		return -1;
	ret = dir_open(store, prefix, strlen(prefix), false, &fd, error_r);
	if (ret <= 0)
		return ret;
	for (const char *p = prefix; *p != '\0'; p++)
		depth += *p == '/';
	w->store = store;
	ret = walk_dir(w, fd, prefix, prefix[0] == '\0' ? 0 : depth + 1);
	close(fd);
	if (ret < 0)
		*error_r = w->error;
	return ret;
}

int mf_blob_list(struct mf_blob_store *store, const char *prefix,
		 mf_blob_list_callback *callback, void *context, const char **error_r)
{
	struct walk w = { .callback = callback, .context = context };

	return walk_prefix(store, prefix, &w, error_r);
}

int mf_blob_sweep_temp(struct mf_blob_store *store, const char *prefix,
		       unsigned older_than_secs, unsigned *removed_r, const char **error_r)
{
	size_t n = strlen(BLOB_INCOMING);
	struct walk w = {
		.sweep = true,
		.sweep_keys = strncmp(prefix, BLOB_INCOMING, n) == 0 &&
			      (prefix[n] == '\0' || prefix[n] == '/'),
		.cutoff = time(NULL) - (time_t)older_than_secs,
	};
	int ret = walk_prefix(store, prefix, &w, error_r);

	if (removed_r != NULL)
		*removed_r = w.removed;
	return ret;
}
