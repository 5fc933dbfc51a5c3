/*
 * suggest.h: "did you mean" for misspelt ids, fields and options.
 */
#ifndef JOEY_SUGGEST_H
#define JOEY_SUGGEST_H

#include <stddef.h>

/* Levenshtein distance, case-insensitive. */
size_t suggest_distance(const char *a, const char *b);
/*
 * The candidate closest to word (borrowed), or NULL when none is close enough
 * (distance at most 1 for words of up to 3 characters, else max(2, len/3)). Returns a pointer into candidates (borrowed).
 */
const char *suggest_closest(const char *word, const char *const *candidates, size_t n);

#endif
