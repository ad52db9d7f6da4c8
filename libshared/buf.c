#include "buf.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void oom(size_t size)
{
	/* No allocation here: we are out of memory. */
	char msg[96];
	int n = snprintf(msg, sizeof(msg), "l=fatal m=\"out of memory\" size=%zu\n", size);
	if (n > 0)
		fwrite(msg, 1, (size_t)n, stderr);
	abort();
}

void *mf_xmalloc(size_t size)
{
	void *p = malloc(size ? size : 1);
	if (p == NULL)
		oom(size);
	return p;
}

void *mf_xcalloc(size_t nmemb, size_t size)
{
	void *p = calloc(nmemb ? nmemb : 1, size ? size : 1);
	if (p == NULL)
		oom(nmemb * size);
	return p;
}

void *mf_xrealloc(void *ptr, size_t size)
{
	void *p = realloc(ptr, size ? size : 1);
	if (p == NULL)
		oom(size);
	return p;
}

char *mf_xstrdup(const char *s)
{
	return mf_xstrndup(s, strlen(s));
}

char *mf_xstrndup(const char *s, size_t n)
{
	size_t len = strnlen(s, n);
	char *p = mf_xmalloc(len + 1);
	memcpy(p, s, len);
	p[len] = '\0';
	return p;
}

char *mf_xasprintf(const char *fmt, ...)
{
	struct mf_buf b;
	va_list ap;

	mf_buf_init(&b, 0);
	va_start(ap, fmt);
	mf_buf_vappendf(&b, fmt, ap);
	va_end(ap);
	return mf_buf_steal(&b);
}

void mf_buf_init(struct mf_buf *b, size_t max)
{
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
	b->max = max;
}

static int reserve(struct mf_buf *b, size_t extra)
{
	size_t need;

	if (extra > SIZE_MAX - b->len - 1)
		return -1;
	need = b->len + extra;
	if (b->max != 0 && need > b->max)
		return -1;
	if (need + 1 <= b->cap)
		return 0;
	size_t cap = b->cap ? b->cap : 64;
	while (cap < need + 1)
		cap = cap > SIZE_MAX / 2 ? need + 1 : cap * 2;
	b->data = mf_xrealloc(b->data, cap);
	b->cap = cap;
	return 0;
}

int mf_buf_append(struct mf_buf *b, const void *data, size_t len)
{
	if (reserve(b, len) < 0)
		return -1;
	if (len > 0)
		memcpy(b->data + b->len, data, len);
	b->len += len;
	b->data[b->len] = '\0';
	return 0;
}

int mf_buf_append_str(struct mf_buf *b, const char *s)
{
	return mf_buf_append(b, s, strlen(s));
}

int mf_buf_vappendf(struct mf_buf *b, const char *fmt, va_list ap)
{
	va_list ap2;
	char small[256];
	int n;

	va_copy(ap2, ap);
	n = vsnprintf(small, sizeof(small), fmt, ap2);
	va_end(ap2);
	if (n < 0)
		return -1;
	if ((size_t)n < sizeof(small))
		return mf_buf_append(b, small, (size_t)n);
	if (reserve(b, (size_t)n) < 0)
		return -1;
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	b->len += (size_t)n;
	return 0;
}

int mf_buf_appendf(struct mf_buf *b, const char *fmt, ...)
{
	va_list ap;
	int ret;

	va_start(ap, fmt);
	ret = mf_buf_vappendf(b, fmt, ap);
	va_end(ap);
	return ret;
}

void mf_buf_consume(struct mf_buf *b, size_t n)
{
	if (n >= b->len) {
		mf_buf_reset(b);
		return;
	}
	memmove(b->data, b->data + n, b->len - n);
	b->len -= n;
	b->data[b->len] = '\0';
}

void mf_buf_reset(struct mf_buf *b)
{
	b->len = 0;
	if (b->data != NULL)
		b->data[0] = '\0';
}

const char *mf_buf_cstr(const struct mf_buf *b)
{
	return b->data != NULL ? b->data : "";
}

char *mf_buf_steal(struct mf_buf *b)
{
	char *p = b->data != NULL ? b->data : mf_xstrdup("");
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
	return p;
}

void mf_buf_free(struct mf_buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
}
