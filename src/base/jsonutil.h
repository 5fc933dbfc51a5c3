/* jsonutil.h: JSON helpers shared by the subsystems. */
#ifndef JOEY_BASE_JSONUTIL_H
#define JOEY_BASE_JSONUTIL_H

#include <jansson.h>

/*
 * A JSON string of s (NUL-terminated) with every byte that is not valid UTF-8 as U+FFFD:
 * jansson refuses invalid UTF-8, and a member built from such text would vanish.
 * New reference.
 */
json_t *json_string_lossy(const char *s);

/*
 * The end of the JSON value at p, as joey's canonical payloads write values
 * (engine/payload.h): a string, a scalar (up to the ',', ']' or '}' after it, or end),
 * or an array of those and of arrays. NULL for an object, a stray ']' or '}', or a
 * string or array that does not end before end. Every value of a payload diffed
 * (engine/payload.c) or stored packed (state/sqlite/names.c) goes through it, so a
 * string is skipped by memchr: a byte loop cost twice as much on a first sync.
 */
const char *json_skip_value(const char *p, const char *end);

#endif
