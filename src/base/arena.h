/*
 * arena.h: memory by lifetime.
 *
 * An arena hands out memory that lives until arena_reset() or arena_release().
 * joey keeps one per run (config, plan), one per batch/record window (reset after
 * each), and one per HTTP request. Nothing allocated from an arena is freed alone.
 *
 *   struct arena a; arena_init(&a);
 *   p = arena_alloc(&a, n); ... arena_reset(&a); ... arena_release(&a);
 */
#ifndef JOEY_ARENA_H
#define JOEY_ARENA_H

#include <stddef.h>

struct arena_block;

struct arena {
	struct arena_block *head; /* current block; older blocks follow */
	size_t block_size;        /* default size of a new block */
	size_t used_total;        /* bytes handed out since init/reset (statistics) */
};

void arena_init(struct arena *a);
/* Memory owned by the arena, 16-byte aligned, uninitialised. Never NULL. */
void *arena_alloc(struct arena *a, size_t size);
void *arena_zalloc(struct arena *a, size_t size);
/* Copy of s (borrowed) owned by the arena, NUL-terminated. */
char *arena_strdup(struct arena *a, const char *s);
char *arena_strndup(struct arena *a, const char *s, size_t n);
/* Formatted string owned by the arena. */
char *arena_printf(struct arena *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Forget everything handed out; keeps the first block for reuse. */
void arena_reset(struct arena *a);
/* Free all memory; the arena may be arena_init()ed again. */
void arena_release(struct arena *a);

#endif
