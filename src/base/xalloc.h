/*
 * xalloc.h: the one allocation wrapper.
 *
 * Every heap allocation in joey goes through these functions. On failure they print
 * the size asked for to stderr and end the process at once with exit status 1
 * (_exit: no atexit handlers, no buffered output, no half-done work committed; an open
 * state-store transaction is rolled back by SQLite when the store is next opened), so
 * callers never check for NULL.
 *
 * Fault injection, in builds configured with -DJOEY_FAULTS=ON only (test builds; the
 * release build has none of it): the environment variable JOEY_FAIL_ALLOC_AT=N, read
 * at start-up, makes the Nth allocation of the process (1-based, counted across
 * threads) fail exactly as a real one would. JOEY_FAIL_ALLOC_AT=0 fails none and
 * prints "joey: faults: N allocations" to stderr at exit, so a test can find how many
 * there are and try each. Unit tests can use xalloc_fail_at in any build.
 */
#ifndef JOEY_XALLOC_H
#define JOEY_XALLOC_H

#include <stdbool.h>
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

#ifdef JOEY_FAULTS
/*
 * A fault-injection knob read at start-up (JOEY_FAIL_ALLOC_AT, state/faultvfs.c's
 * JOEY_FAIL_IO_AT): *n is environment variable name as a decimal number; false, *n
 * untouched, when it is unset or empty. Not a number: says so on stderr and _exit(2).
 */
bool faults_env_count(const char *name, unsigned long *n);
#endif

#endif
