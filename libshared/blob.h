/* blob: the object-store volume, immutable message blobs on a filesystem
 * directory (DESIGN.md "Message blobs").
 *
 * Keys are relative paths such as "incoming/2026/11/22/abc123", "queue/..."
 * or "accounts/<name>/...": segments of [A-Za-z0-9_.=+@-] that do not start
 * with '.', separated by single '/', at most MF_BLOB_KEY_MAX bytes.  Each key
 * prefix has one owning service; hand-off is mf_blob_link to the new owner's
 * key, then mf_blob_delete of the old one.
 *
 * Durability: a put writes a temporary file (".tmp.*", never a valid key) in
 * the key's directory, fsyncs it, renames it into place without replacing an
 * existing key (blobs are immutable), then fsyncs the directory.  Missing
 * directories are created, each followed by an fsync of its parent.  A key
 * exists only after a successful commit; a crash leaves at most a temporary
 * file, which mf_blob_sweep_temp removes.
 *
 * All functions are safe to call from several threads on one store. */
#ifndef MF_BLOB_H
#define MF_BLOB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define MF_BLOB_KEY_MAX 512
#define MF_BLOB_SEGMENT_MAX 200    /* leaves room for the temporary suffix */
#define MF_BLOB_DEPTH_MAX 16       /* segments in a key */

struct mf_blob_store;
struct mf_blob_writer;

struct mf_blob_stat {
	uint64_t size;
	time_t mtime;
};

/* Opens the store rooted at the directory root, creating root (not its
 * parents) if missing.  Returns 0 with *store_r (free with
 * mf_blob_store_free), or -1 with error_r. */
int mf_blob_store_open(const char *root, struct mf_blob_store **store_r,
		       const char **error_r);
void mf_blob_store_free(struct mf_blob_store **store);

/* Returns 0 when key is a valid key, or -1 with error_r saying why. */
int mf_blob_key_validate(const char *key, const char **error_r);

/* Starts a streaming put of key.  Fails (-1 with error_r) for an invalid
 * key or an I/O error; an existing key is only detected at commit.
 * On 0, *w_r must be finished with mf_blob_put_commit or mf_blob_put_abort. */
int mf_blob_put_begin(struct mf_blob_store *store, const char *key,
		      struct mf_blob_writer **w_r, const char **error_r);
/* Appends len bytes.  Returns 0, or -1 with error_r (the writer must still
 * be aborted). */
int mf_blob_write(struct mf_blob_writer *w, const void *data, size_t len,
		  const char **error_r);
/* Makes the blob durable under its key and frees the writer (*w = NULL),
 * also on failure, in which case nothing is left behind.  Returns 0, or -1
 * with error_r (e.g. "already exists", fsync failure). */
int mf_blob_put_commit(struct mf_blob_writer **w, const char **error_r);
/* Discards the writer and its temporary file; *w = NULL.  NULL is fine. */
void mf_blob_put_abort(struct mf_blob_writer **w);

/* Puts len bytes of data under key in one call.  Returns 0 or -1. */
int mf_blob_put(struct mf_blob_store *store, const char *key, const void *data,
		size_t len, const char **error_r);

/* Opens key for reading.  Returns 1 with a read-only fd in *fd_r (the
 * caller closes it), 0 when the key does not exist, -1 with error_r. */
int mf_blob_open(struct mf_blob_store *store, const char *key, int *fd_r,
		 const char **error_r);
/* Reads the whole blob if it has at most max bytes.  Returns 1 with a
 * NUL-terminated copy in *data_r (caller frees) and its size in *size_r, 0
 * when the key does not exist, -1 with error_r (also when larger than max). */
int mf_blob_read_all(struct mf_blob_store *store, const char *key, size_t max,
		     char **data_r, size_t *size_r, const char **error_r);
/* Returns 1 with size and mtime, 0 when the key does not exist, or -1. */
int mf_blob_stat(struct mf_blob_store *store, const char *key,
		 struct mf_blob_stat *stat_r, const char **error_r);
/* Removes key durably (directory fsynced).  Returns 1 when removed, 0 when
 * it did not exist, -1 with error_r. */
int mf_blob_delete(struct mf_blob_store *store, const char *key, const char **error_r);
/* Makes to_key a durable copy of from_key: a hard link, or a copy where the
 * filesystem cannot link.  Returns 0, or -1 with error_r (from_key missing,
 * to_key already exists, I/O error). */
int mf_blob_link(struct mf_blob_store *store, const char *from_key, const char *to_key,
		 const char **error_r);

/* Called for each key; returns 0 to go on, anything else to stop listing. */
typedef int mf_blob_list_callback(const char *key, void *context);
/* Calls callback for every key under prefix (a key-like directory path, or
 * "" for all), in sorted order per directory, skipping temporary files.  A
 * missing prefix lists nothing.  Returns 0 (also when the callback stopped
 * the walk), or -1 with error_r. */
int mf_blob_list(struct mf_blob_store *store, const char *prefix,
		 mf_blob_list_callback *callback, void *context, const char **error_r);

/* Removes, under prefix ("" for all), temporary files older than
 * older_than_secs (left by crashed writers), and, when prefix is "incoming"
 * or below it, also keys older than that: an incoming blob that was not
 * handed off by then is an orphan.  Directories left empty (and at least
 * that old) are removed too, except prefix itself.  Returns 0 with the
 * number of files removed in *removed_r (may be NULL), or -1 with error_r. */
int mf_blob_sweep_temp(struct mf_blob_store *store, const char *prefix,
		       unsigned older_than_secs, unsigned *removed_r, const char **error_r);

#endif
