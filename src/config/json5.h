/*
 * json5.h: a bounded JSON5 parser producing a position-annotated tree.
 *
 * The parser reads a buffer of len bytes (borrowed, not NUL-terminated) and builds a
 * tree whose nodes, strings and keys are all allocated in the caller's arena; nothing
 * is freed alone, the tree lives as long as the arena. Every node and every object key
 * carries the 1-based line and column (in characters) where it starts, and every node
 * the byte offsets of its text in buf (config writes splice one object by them).
 *
 *   struct j5_node *root; struct j5_error e;
 *   if (!json5_parse(buf, len, &arena, &root, &e)) report(e.line, e.col, e.msg);
 *
 * Accepted: JSON plus // and block comments, trailing commas, single-quoted strings,
 * unquoted identifier keys, hexadecimal numbers, leading/trailing decimal points, a
 * leading '+', line continuations (backslash-newline) and JSON5 escapes (\x, \v, \0).
 * Rejected with a message: Infinity and NaN, NUL characters in strings, nesting deeper
 * than J5_MAX_DEPTH, strings longer than J5_MAX_STRING bytes, inputs larger than
 * J5_MAX_INPUT. Duplicate keys are kept in order (the config validator reports them).
 * The parser never reads outside [buf, buf+len) and is safe on arbitrary bytes.
 */
#ifndef JOEY_JSON5_H
#define JOEY_JSON5_H

#include <stdbool.h>
#include <stddef.h>

#include "base/arena.h"

#define J5_MAX_DEPTH 64
#define J5_MAX_STRING ((size_t)1 << 20)
#define J5_MAX_INPUT ((size_t)16 << 20)

enum j5_type { J5_NULL, J5_BOOL, J5_NUMBER, J5_STRING, J5_ARRAY, J5_OBJECT };

struct j5_node;

struct j5_member {
	const char *key; /* NUL-terminated (NUL characters are rejected) */
	size_t key_len;
	int line, col;   /* of the key */
	struct j5_node *value;
};

struct j5_node {
	enum j5_type type;
	int line, col;
	size_t start, end;   /* the value's text is buf[start..end) (comments around it excluded) */
	bool b;              /* J5_BOOL */
	double num;          /* J5_NUMBER */
	bool is_int;         /* J5_NUMBER without fraction or exponent (or hex) */
	const char *str;     /* J5_STRING value; J5_NUMBER canonical text ("12", "1.5") */
	size_t len;          /* length of str */
	struct j5_node **items; /* J5_ARRAY */
	struct j5_member *members; /* J5_OBJECT, in source order */
	size_t n;            /* number of items or members */
};

struct j5_error {
	int line, col;
	char msg[256]; /* "expected ',' or '}' after an object member, found 'x'" */
};

/*
 * Parse buf[0..len) as one JSON5 value. Returns true and sets *out (arena-owned) on
 * success; returns false and fills err on failure (*out is NULL, the arena may hold
 * partial allocations that are released with it).
 */
bool json5_parse(const char *buf, size_t len, struct arena *arena, struct j5_node **out,
		 struct j5_error *err);

/* The value of the last member named key in obj (borrowed), or NULL. */
const struct j5_member *j5_member(const struct j5_node *obj, const char *key);
/* "string", "number", "boolean", "null", "array", "object". */
const char *j5_type_name(enum j5_type t);

#endif
