/* buf: allocation helpers that abort on failure, and growable byte buffers
 * with a hard cap.  Appending past the cap is an error the caller turns into
 * a protocol reply ("line too long"); it never grows memory without bound. */
#ifndef MF_BUF_H
#define MF_BUF_H

#include <stdarg.h>
#include <stddef.h>

/* Allocation failure is fatal: callers never check for NULL. */
void *mf_xmalloc(size_t size);
void *mf_xcalloc(size_t nmemb, size_t size);
void *mf_xrealloc(void *ptr, size_t size);
char *mf_xstrdup(const char *s);
char *mf_xstrndup(const char *s, size_t n);
/* Returns a newly allocated formatted string; the caller frees it. */
char *mf_xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

struct mf_buf {
	char *data;     /* always NUL-terminated when non-NULL */
	size_t len;
	size_t cap;
	size_t max;     /* hard cap on len; 0 means no cap */
};

/* Initialises an empty buffer that may hold at most max bytes (0: no cap). */
void mf_buf_init(struct mf_buf *b, size_t max);
/* Returns 0, or -1 when the result would exceed max (the buffer is unchanged). */
int mf_buf_append(struct mf_buf *b, const void *data, size_t len);
int mf_buf_append_str(struct mf_buf *b, const char *s);
int mf_buf_appendf(struct mf_buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
int mf_buf_vappendf(struct mf_buf *b, const char *fmt, va_list ap)
	__attribute__((format(printf, 2, 0)));
/* Removes the first n bytes (n <= len). */
void mf_buf_consume(struct mf_buf *b, size_t n);
/* Empties the buffer, keeping its memory. */
void mf_buf_reset(struct mf_buf *b);
/* Returns the contents as a C string ("" when empty); owned by the buffer. */
const char *mf_buf_cstr(const struct mf_buf *b);
/* Hands the contents to the caller (who frees them) and empties the buffer. */
char *mf_buf_steal(struct mf_buf *b);
void mf_buf_free(struct mf_buf *b);

#endif
