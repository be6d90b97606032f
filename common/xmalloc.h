/* xmalloc.h: allocation that never returns NULL (out of memory is fatal, as in tmux). */
#ifndef VMPOOL_XMALLOC_H
#define VMPOOL_XMALLOC_H

#include <stddef.h>

void *xmalloc(size_t);
void *xcalloc(size_t, size_t);
void *xreallocarray(void *, size_t, size_t);
char *xstrdup(const char *);
char *xstrndup(const char *, size_t);
int xasprintf(char **, const char *, ...) __attribute__((format(printf, 2, 3)));

/* growable byte buffer */
struct buf {
	unsigned char *data;
	size_t len;
	size_t cap;
};
void buf_reserve(struct buf *, size_t more);
void buf_add(struct buf *, const void *, size_t);
void buf_consume(struct buf *, size_t n); /* drop n bytes from the front */
void buf_clear(struct buf *);             /* free storage */

#endif
