/* xalloc.c: allocation wrapper that ends the process with the size asked for. */
#include "base/xalloc.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifdef JOEY_FAULTS
/*
 * Fault injection (see xalloc.h). Allocations are counted atomically, as the daemon
 * allocates from several threads; fail_call is the number of the call that fails.
 */
#include <stdatomic.h>

static atomic_ulong n_calls;
static atomic_ulong fail_call;

void xalloc_fail_at(unsigned long nth)
{
	atomic_store(&fail_call, nth ? atomic_load(&n_calls) + nth : 0);
}

static bool should_fail(void)
{
	unsigned long n = atomic_fetch_add_explicit(&n_calls, 1, memory_order_relaxed) + 1;
	unsigned long f = atomic_load_explicit(&fail_call, memory_order_relaxed);
	return f && n == f;
}

static void print_count(void)
{
	fprintf(stderr, "joey: faults: %lu allocations\n", atomic_load(&n_calls));
}

bool faults_env_count(const char *name, unsigned long *n)
{
	const char *s = getenv(name);
	char *end;
	if (!s || !*s)
		return false;
	*n = strtoul(s, &end, 10);
	if (*end) {
		fprintf(stderr, "joey: %s must be a number, not \"%s\"\n", name, s);
		_exit(2);
	}
	return true;
}

__attribute__((constructor)) static void faults_init(void)
{
	unsigned long n;
	if (!faults_env_count("JOEY_FAIL_ALLOC_AT", &n))
		return;
	if (n == 0)
		atexit(print_count);
	atomic_store(&fail_call, n);
}
#else
static unsigned long fail_countdown;

void xalloc_fail_at(unsigned long nth)
{
	fail_countdown = nth;
}

static bool should_fail(void)
{
	if (fail_countdown == 0)
		return false;
	return --fail_countdown == 0;
}
#endif

/*
 * The whole out-of-memory path: a message, then _exit. Not abort(): running out of
 * memory is an error the user can act on, not a crash, and it must give the same
 * clean exit status as every other error (no core dump, no signal for supervisors to
 * report as a crash). _exit, not exit: atexit handlers and stdio flushing could
 * allocate or write half a result.
 */
JOEY_NORETURN static void die_nomem(size_t size)
{
	fprintf(stderr, "joey: out of memory (allocating %zu bytes)\n", size);
	_exit(1);
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
