/* imap_content: message content read into memory (or mapped when large). */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "error.h"
#include "imap_content.h"

/* Reads the blob behind fd after the prefix.  Returns 0 or -1. */
static int read_blob(int fd, const char *prefix, size_t prefix_len, size_t file_len,
		     struct imap_content *c, const char **error_r)
{
	size_t total = prefix_len + file_len, got = 0;
	char *data = mf_xmalloc(total + 1);

	if (prefix_len > 0)
		memcpy(data, prefix, prefix_len);
	while (got < file_len) {
		ssize_t n = read(fd, data + prefix_len + got, file_len - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			*error_r = mf_errorf("read message: %s", strerror(errno));
			free(data);
			return -1;
		}
		if (n == 0) {
			/* Blobs are immutable once stored: shorter means broken. */
			*error_r = "message content shorter than its file";
			free(data);
			return -1;
		}
		got += (size_t)n;
	}
	data[total] = '\0';
	c->heap = data;
	c->data = data;
	c->len = total;
	return 0;
}

int imap_content_open(struct store_account *acc, const struct store_message *msg,
		      struct imap_content *c_r, const char **error_r)
{
	char *prefix = NULL;
	size_t prefix_len = 0;
	struct stat st;
	int fd = -1, r, ret = -1;

	memset(c_r, 0, sizeof(*c_r));
	r = store_message_open(acc, msg, &prefix, &prefix_len, &fd, error_r);
	if (r <= 0)
		return r;
	if (fstat(fd, &st) < 0) {
		*error_r = mf_errorf("fstat message: %s", strerror(errno));
		goto out;
	}
	if (st.st_size >= 0 && (uint64_t)st.st_size <= IMAP_CONTENT_READ_MAX &&
	    prefix_len <= IMAP_CONTENT_READ_MAX - (size_t)st.st_size) {
		if (read_blob(fd, prefix, prefix_len, (size_t)st.st_size, c_r, error_r) < 0)
			goto out;
	} else {
		if (mf_mime_map_open(prefix, prefix_len, fd, &c_r->map, error_r) < 0)
			goto out;
		c_r->mapped = true;
		c_r->data = c_r->map.data;
		c_r->len = c_r->map.len;
	}
	ret = 1;
out:
	if (fd >= 0)
		close(fd);
	free(prefix);
	return ret;
}

void imap_content_close(struct imap_content *c)
{
	if (c->mapped)
		mf_mime_map_close(&c->map);
	free(c->heap);
	memset(c, 0, sizeof(*c));
}
