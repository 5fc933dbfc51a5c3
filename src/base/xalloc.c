/* xalloc.c: allocation wrapper that aborts with the size asked for. */
#include "base/xalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static unsigned long fail_countdown;

void xalloc_fail_at(unsigned long nth)
{
	fail_countdown = nth;
}

JOEY_NORETURN static void die_nomem(size_t size)
{
	fprintf(stderr, "joey: out of memory (allocating %zu bytes)\n", size);
	abort();
}

static int should_fail(void)
{
	if (fail_countdown == 0)
		return 0;
	return --fail_countdown == 0;
}

void *xmalloc(size_t size)
{
	void *p = should_fail() ? NULL : malloc(size ? size : 1);
	if (!p)
		die_nomem(size);
	return p;
}

void *xcalloc(size_t nmemb, size_t size)
{
	void *p = should_fail() ? NULL : calloc(nmemb ? nmemb : 1, size ? size : 1);
	if (!p)
		die_nomem(nmemb * size);
	return p;
}

void *xrealloc(void *ptr, size_t size)
{
	void *p = should_fail() ? NULL : realloc(ptr, size ? size : 1);
	if (!p)
		die_nomem(size);
	return p;
}

char *xstrndup(const char *s, size_t n)
{
	char *p = xmalloc(n + 1);
	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

char *xstrdup(const char *s)
{
	return xstrndup(s, strlen(s));
}
