/*
 * json_fast.h: braze-sim's fast JSON reader (json_fast.c).
 *
 * json_fast_loadb(buf, len, one_line) reads an object or an array, as
 * json_loadb(buf, len, 0) does, and returns a new reference to the same value; or NULL
 * when it cannot tell (anything it does not read exactly as jansson would, including
 * every invalid input), and the caller then calls json_loadb for the value or its
 * error. buf is borrowed. *one_line (if one_line is not NULL): a value was read and buf
 * holds no line break (valid JSON has them only as white space).
 */
#ifndef BRAZE_SIM_JSON_FAST_H
#define BRAZE_SIM_JSON_FAST_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

json_t *json_fast_loadb(const char *buf, size_t len, bool *one_line);

#endif
