/* arena.c: bump allocator with block chaining, reset and release. */
#include "base/arena.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/xalloc.h"

struct arena_block {
	struct arena_block *next;
	size_t size, used;
	_Alignas(16) unsigned char data[];
};

#define ARENA_ALIGN 16
#define ARENA_DEFAULT_BLOCK (64 * 1024)

void arena_init(struct arena *a)
{
	a->head = NULL;
	a->block_size = ARENA_DEFAULT_BLOCK;
	a->used_total = 0;
}

static struct arena_block *new_block(size_t size)
{
	struct arena_block *b = xmalloc(sizeof(*b) + size);
	b->next = NULL;
	b->size = size;
	b->used = 0;
	return b;
}

void *arena_alloc(struct arena *a, size_t size)
{
	size_t need = (size + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
	struct arena_block *b = a->head;

	if (need == 0)
		need = ARENA_ALIGN;
	if (!b || b->size - b->used < need) {
		size_t bs = need > a->block_size / 4 ? need : a->block_size;
		if (need > a->block_size / 4 && b) {
			/* large allocation: own block behind the current one */
			struct arena_block *big = new_block(bs);
			big->next = b->next;
			b->next = big;
			big->used = need;
			a->used_total += need;
			return big->data;
		}
		b = new_block(bs);
		b->next = a->head;
		a->head = b;
	}
	void *p = b->data + b->used;
	b->used += need;
	a->used_total += need;
	return p;
}

void *arena_zalloc(struct arena *a, size_t size)
{
	void *p = arena_alloc(a, size);
	memset(p, 0, size);
	return p;
}

char *arena_strndup(struct arena *a, const char *s, size_t n)
{
	char *p = arena_alloc(a, n + 1);
	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

char *arena_strdup(struct arena *a, const char *s)
{
	return arena_strndup(a, s, strlen(s));
}

char *arena_printf(struct arena *a, const char *fmt, ...)
{
	va_list ap, ap2;
	va_start(ap, fmt);
	va_copy(ap2, ap);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		n = 0;
	char *p = arena_alloc(a, (size_t)n + 1);
	vsnprintf(p, (size_t)n + 1, fmt, ap2);
	va_end(ap2);
	return p;
}

void arena_reset(struct arena *a)
{
	struct arena_block *b = a->head, *keep = NULL;
	/* keep the largest standard block, free the rest */
	while (b) {
		struct arena_block *next = b->next;
		if (!keep && b->size == a->block_size)
			keep = b;
		else
			free(b);
		b = next;
	}
	if (keep) {
		keep->next = NULL;
		keep->used = 0;
	}
	a->head = keep;
	a->used_total = 0;
}

void arena_release(struct arena *a)
{
	struct arena_block *b = a->head;
	while (b) {
		struct arena_block *next = b->next;
		free(b);
		b = next;
	}
	a->head = NULL;
	a->used_total = 0;
}
