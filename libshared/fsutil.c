#include "fsutil.h"
#include "buf.h"
#include "error.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int mf_fs_fsync_parent(const char *path, const char **error_r)
{
	char *copy = mf_xstrdup(path);
	const char *dir = dirname(copy);
	int fd = open(dir, O_RDONLY | O_DIRECTORY), ret = -1;

	if (fd < 0 || fsync(fd) < 0)
		*error_r = mf_errorf("%s: fsync of directory: %s", dir, strerror(errno));
	else
		ret = 0;
	if (fd >= 0)
		close(fd);
	free(copy);
	return ret;
}

int mf_fs_write_atomic(const char *path, const void *data, size_t len, mode_t mode,
		       const char **error_r)
{
	char *tmp = mf_xasprintf("%s.tmp.%ld", path, (long)getpid());
	const char *p = data;
	int fd, ret = -1;

	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, mode);
	if (fd < 0) {
		*error_r = mf_errorf("%s: %s", tmp, strerror(errno));
		goto out;
	}
	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			*error_r = mf_errorf("%s: write: %s", tmp, strerror(errno));
			goto out;
		}
		p += n;
		len -= (size_t)n;
	}
	if (fchmod(fd, mode) < 0 || fsync(fd) < 0) {
		*error_r = mf_errorf("%s: %s", tmp, strerror(errno));
		goto out;
	}
	if (close(fd) < 0) {
		fd = -1;
		*error_r = mf_errorf("%s: close: %s", tmp, strerror(errno));
		goto out;
	}
	fd = -1;
	if (rename(tmp, path) < 0) {
		*error_r = mf_errorf("%s: rename: %s", path, strerror(errno));
		goto out;
	}
	ret = mf_fs_fsync_parent(path, error_r);
out:
	if (fd >= 0)
		close(fd);
	if (ret < 0)
		unlink(tmp);
	free(tmp);
	return ret;
}

int mf_fs_mkdirs(const char *path, mode_t mode, const char **error_r)
{
	char *copy = mf_xstrdup(path);
	int ret = -1;

	for (char *p = copy + 1; ; p++) {
		if (*p != '/' && *p != '\0')
			continue;
		char c = *p;
		*p = '\0';
		if (mkdir(copy, mode) < 0 && errno != EEXIST) {
			*error_r = mf_errorf("%s: mkdir: %s", copy, strerror(errno));
			goto out;
		}
		*p = c;
		if (c == '\0')
			break;
	}
	ret = 0;
out:
	free(copy);
	return ret;
}

char *mf_fs_read_file(const char *path, size_t max, size_t *len_r, const char **error_r)
{
	struct mf_buf b;
	char chunk[8192];
	int fd = open(path, O_RDONLY);

	if (fd < 0) {
		*error_r = mf_errorf("%s: %s", path, strerror(errno));
		return NULL;
	}
	mf_buf_init(&b, max);
	for (;;) {
		ssize_t n = read(fd, chunk, sizeof(chunk));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			*error_r = mf_errorf("%s: read: %s", path, strerror(errno));
			goto fail;
		}
		if (n == 0)
			break;
		if (mf_buf_append(&b, chunk, (size_t)n) < 0) {
			*error_r = mf_errorf("%s: file larger than %zu bytes", path, max);
			goto fail;
		}
	}
	close(fd);
	if (len_r != NULL)
		*len_r = b.len;
	return mf_buf_steal(&b);
fail:
	close(fd);
	mf_buf_free(&b);
	return NULL;
}
