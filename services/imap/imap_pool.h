/* imap_pool: an allocate-only arena.  A session keeps one for its lifetime
 * and one per command that is cleared after the command's reply, so nothing
 * parsed from a command can leak (STYLE.md "Memory").  Allocation failure
 * aborts, like mf_xmalloc. */
#ifndef IMAP_POOL_H
#define IMAP_POOL_H

#include <stddef.h>

struct imap_pool;

struct imap_pool *imap_pool_create(void);
/* Frees every block; sets *pool to NULL. */
void imap_pool_free(struct imap_pool **pool);
/* Returns zeroed memory (aligned for any type) owned by the pool. */
void *imap_pool_alloc(struct imap_pool *pool, size_t size);
/* Returns a NUL-terminated copy of len bytes of s, owned by the pool. */
char *imap_pool_strndup(struct imap_pool *pool, const char *s, size_t len);
char *imap_pool_strdup(struct imap_pool *pool, const char *s);
char *imap_pool_printf(struct imap_pool *pool, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Releases everything allocated since creation (keeps the first block). */
void imap_pool_clear(struct imap_pool *pool);

#endif
