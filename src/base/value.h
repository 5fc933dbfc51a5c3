/*
 * value.h: typed property values as they flow from a source to a destination.
 *
 * A value is NULL, a string (email/url/phone/string), an integer, a float, a boolean,
 * a date (epoch milliseconds, UTC) or an array of those. Strings and array elements
 * are borrowed: they live in the arena of the record window that produced them.
 * The canonical text of a value (value_canon) is what change detection compares.
 */
#ifndef JOEY_VALUE_H
#define JOEY_VALUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/strbuf.h"

enum value_kind {
	VAL_NULL = 0,
	VAL_STRING,
	VAL_INT,
	VAL_FLOAT,
	VAL_BOOL,
	VAL_DATE, /* epoch ms */
	VAL_ARRAY,
};

struct value {
	enum value_kind kind;
	union {
		struct slice s;
		int64_t i;   /* VAL_INT, VAL_DATE (ms) */
		double f;
		bool b;
		struct {
			struct value *items;
			size_t n;
		} arr;
	} u;
};

#define VALUE_NULL ((struct value){ .kind = VAL_NULL })

/*
 * Append the JSON form of v (dates as ISO-8601 "YYYY-MM-DDTHH:MM:SS.mmmZ"; floats in
 * the shortest form of at most 15 significant digits).
 */
void value_to_json(struct strbuf *out, const struct value *v);
/* Three-way compare for rules: numbers numerically, strings bytewise; NULL first. */
int value_compare(const struct value *a, const struct value *b);

#endif
