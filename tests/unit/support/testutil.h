/*
 * testutil.h: helpers shared by unit tests (temporary directories, files, env).
 * Include after <cmocka.h>'s prerequisites.
 */
#ifndef JOEY_TESTUTIL_H
#define JOEY_TESTUTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

/* Make a fresh temporary directory; returns its path (malloc'd). */
char *tu_mkdtemp(void);
/* Write text to dir/rel (creating parent directories). */
void tu_write(const char *dir, const char *rel, const char *text);
/* Remove a directory tree. */
void tu_rmtree(const char *dir);
/* Read a whole file (malloc'd, NUL-terminated), NULL if missing. */
char *tu_read(const char *path);
/* Run a shell command, return its exit status; stdout+stderr captured in *output (malloc'd) if non-NULL. */
int tu_run(const char *cmd, char **output);
/* The next number of a xorshift64 sequence kept in *state (nonzero): the same numbers on every run. */
uint64_t tu_xorshift(uint64_t *state);

#endif
