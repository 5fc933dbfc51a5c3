/*
 * xalloc.h: the one allocation wrapper.
 *
 * Every heap allocation in joey goes through these functions. On failure they print
 * the size asked for and abort, so callers never check for NULL. Tests can make the
 * Nth allocation fail (xalloc_fail_at) to prove that the abort path is the only one.
 */
#ifndef JOEY_XALLOC_H
#define JOEY_XALLOC_H

#include <stddef.h>
#include "base/compat.h"

/* Returns fresh memory owned by the caller (free with free()). Never NULL. */
void *xmalloc(size_t size);
void *xcalloc(size_t nmemb, size_t size);
/* Like realloc; ptr is consumed, the result is owned by the caller. */
void *xrealloc(void *ptr, size_t size);
/* Copies s (borrowed); the copy is owned by the caller. */
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);

/* Grow *arr (of *alloc elements of elem_size) to hold at least need elements. */
#define ALLOC_GROW(arr, need, alloc)                                               \
	do {                                                                       \
		if ((need) > (alloc)) {                                            \
			size_t ag_new_ = (alloc) ? (alloc) * 2 : 8;                \
			while (ag_new_ < (need))                                   \
				ag_new_ *= 2;                                      \
			(arr) = xrealloc((arr), ag_new_ * sizeof(*(arr)));         \
			(alloc) = ag_new_;                                         \
		}                                                                  \
	} while (0)

/* Test hook: the nth allocation from now (1-based) fails; 0 disables. */
void xalloc_fail_at(unsigned long nth);

#endif
