/* fsutil: small durable-file helpers for configuration and state files
 * (blobs have their own module, blob.h). */
#ifndef MF_FSUTIL_H
#define MF_FSUTIL_H

#include <stddef.h>
#include <sys/types.h>

/* Writes data to path durably: temporary file in the same directory, fsync,
 * rename over path, fsync of the directory.  Returns 0, or -1 with error_r. */
int mf_fs_write_atomic(const char *path, const void *data, size_t len, mode_t mode,
		       const char **error_r);
/* Creates path and its missing parents (like mkdir -p). Returns 0 or -1. */
int mf_fs_mkdirs(const char *path, mode_t mode, const char **error_r);
/* fsyncs the directory that contains path. Returns 0 or -1 with error_r. */
int mf_fs_fsync_parent(const char *path, const char **error_r);
/* Reads a whole file of at most max bytes; returns a NUL-terminated copy
 * (caller frees) with its length in len_r, or NULL with error_r. */
char *mf_fs_read_file(const char *path, size_t max, size_t *len_r, const char **error_r);

#endif
