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

#endif
