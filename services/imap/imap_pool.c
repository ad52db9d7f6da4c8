/* imap_pool: allocate-only arena (see imap_pool.h). */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "imap_pool.h"

#define IMAP_POOL_BLOCK 8192
#define IMAP_POOL_ALIGN 16

struct imap_pool_block {
	struct imap_pool_block *next;
	size_t size, used;
	_Alignas(IMAP_POOL_ALIGN) unsigned char data[];
};

struct imap_pool {
	struct imap_pool_block *head;
};

static struct imap_pool_block *block_new(size_t size)
{
	struct imap_pool_block *b = mf_xmalloc(sizeof(*b) + size);

	b->next = NULL;
	b->size = size;
	b->used = 0;
	return b;
}

struct imap_pool *imap_pool_create(void)
{
	struct imap_pool *p = mf_xcalloc(1, sizeof(*p));

	p->head = block_new(IMAP_POOL_BLOCK);
	return p;
}

void imap_pool_clear(struct imap_pool *pool)
{
	struct imap_pool_block *b = pool->head, *next;

	/* Keep the last block in the chain (the first one allocated) if it
	 * has the standard size, free the rest. */
	while (b->next != NULL) {
		next = b->next;
		free(b);
		b = next;
	}
	if (b->size != IMAP_POOL_BLOCK) {
		free(b);
		b = block_new(IMAP_POOL_BLOCK);
	}
	b->used = 0;
	pool->head = b;
}

void imap_pool_free(struct imap_pool **pool)
{
	struct imap_pool_block *b, *next;

	if (*pool == NULL)
		return;
	for (b = (*pool)->head; b != NULL; b = next) {
		next = b->next;
		free(b);
	}
	free(*pool);
	*pool = NULL;
}

void *imap_pool_alloc(struct imap_pool *pool, size_t size)
{
	struct imap_pool_block *b = pool->head;
	size_t need = (size + IMAP_POOL_ALIGN - 1) & ~(size_t)(IMAP_POOL_ALIGN - 1);
	void *p;

	if (need == 0)
		need = IMAP_POOL_ALIGN;
	if (need < size)
		abort();  /* overflow: a broken invariant, sizes come from limits */
	if (b->size - b->used < need) {
		b = block_new(need > IMAP_POOL_BLOCK ? need : IMAP_POOL_BLOCK);
		b->next = pool->head;
		pool->head = b;
	}
	p = b->data + b->used;
	b->used += need;
	memset(p, 0, size);
	return p;
}

char *imap_pool_strndup(struct imap_pool *pool, const char *s, size_t len)
{
	char *p = imap_pool_alloc(pool, len + 1);

	if (len > 0)
		memcpy(p, s, len);
	p[len] = '\0';
	return p;
}

char *imap_pool_strdup(struct imap_pool *pool, const char *s)
{
	return imap_pool_strndup(pool, s, strlen(s));
}

char *imap_pool_printf(struct imap_pool *pool, const char *fmt, ...)
{
	char small[256];
	va_list ap;
	int n;
	char *p;

	va_start(ap, fmt);
	n = vsnprintf(small, sizeof(small), fmt, ap);
	va_end(ap);
	if (n < 0)
		return imap_pool_strdup(pool, "");
	if ((size_t)n < sizeof(small))
		return imap_pool_strndup(pool, small, (size_t)n);
	p = imap_pool_alloc(pool, (size_t)n + 1);
	va_start(ap, fmt);
	vsnprintf(p, (size_t)n + 1, fmt, ap);
	va_end(ap);
	return p;
}
