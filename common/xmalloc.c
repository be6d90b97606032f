/*
 * xmalloc.c: allocation that never returns NULL (out of memory is fatal, as in tmux), and
 * the growable byte buffer used by links and the HTTP layer.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "xmalloc.h"

void *xmalloc(size_t size)
{
	void *ptr;

	if (size == 0)
		fatalx("xmalloc: zero size");
	if ((ptr = malloc(size)) == NULL)
		fatalx("xmalloc: allocating %zu bytes: %s", size, strerror(errno));
	return ptr;
}

void *xcalloc(size_t nmemb, size_t size)
{
	void *ptr;

	if (size == 0 || nmemb == 0)
		fatalx("xcalloc: zero size");
	if ((ptr = calloc(nmemb, size)) == NULL)
		fatalx("xcalloc: allocating %zu * %zu bytes: %s", nmemb, size, strerror(errno));
	return ptr;
}

void *xreallocarray(void *ptr, size_t nmemb, size_t size)
{
	void *new_ptr;

	if (nmemb == 0 || size == 0)
		fatalx("xreallocarray: zero size");
	if (SIZE_MAX / nmemb < size)
		fatalx("xreallocarray: %zu * %zu overflows", nmemb, size);
	if ((new_ptr = realloc(ptr, nmemb * size)) == NULL)
		fatalx(
		    "xreallocarray: allocating %zu * %zu bytes: %s", nmemb, size, strerror(errno));
	return new_ptr;
}

char *xstrdup(const char *str)
{
	char *cp;

	if ((cp = strdup(str)) == NULL)
		fatalx("xstrdup: %s", strerror(errno));
	return cp;
}

char *xstrndup(const char *str, size_t maxlen)
{
	char *cp;

	if ((cp = strndup(str, maxlen)) == NULL)
		fatalx("xstrndup: %s", strerror(errno));
	return cp;
}

int xasprintf(char **ret, const char *fmt, ...)
{
	va_list ap;
	int i;

	va_start(ap, fmt);
	i = vasprintf(ret, fmt, ap);
	va_end(ap);
	if (i < 0 || *ret == NULL)
		fatalx("xasprintf: %s", strerror(errno));
	return i;
}

/* Makes room for `more` bytes after len; grows by doubling so appends are amortised O(1). */
void buf_reserve(struct buf *b, size_t more)
{
	size_t need, cap;

	if (more > SIZE_MAX - b->len)
		fatalx("buf_reserve: %zu + %zu overflows", b->len, more);
	need = b->len + more;
	if (need <= b->cap)
		return;
	cap = b->cap != 0 ? b->cap : 256;
	while (cap < need)
		cap = cap > SIZE_MAX / 2 ? need : cap * 2;
	b->data = xreallocarray(b->data, cap, 1);
	b->cap = cap;
}

void buf_add(struct buf *b, const void *data, size_t len)
{
	if (len == 0)
		return;
	buf_reserve(b, len);
	memcpy(b->data + b->len, data, len);
	b->len += len;
}

void buf_consume(struct buf *b, size_t n)
{
	if (n >= b->len) {
		b->len = 0;
		return;
	}
	memmove(b->data, b->data + n, b->len - n);
	b->len -= n;
}

void buf_clear(struct buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
}
