/*
 * wrows.h: what the warehouse connectors (Snowflake, BigQuery) share in turning their
 * JSON answers into joey rows: the cursor core (key, NULL keys, invalid values, the
 * high-water mark), numbers and text into values. Private to src/source/snowflake*.c
 * and bigquery*.c; the engine reads them through source.h alone.
 *
 * Order of calls, per cursor (the connector's cursor struct starts with a struct wrows):
 *   wrows_init(&cur->w, &ops, src, grouped, int_key, key_column, since_col);
 *   rc = wrows_check_width(&cur->w, n_cols, err);     -- after the statement ran
 *   per answer row, in the connector's next():
 *     arena_reset(&w->arena);
 *     NULL key:   wrows_null_key(w, count_text); continue;
 *     rc = wrows_key(w, key_text, detail, err);       -- fills w->row.key
 *     per value:  the connector's decoder, wrows_number / wrows_text, else wrows_invalid
 *     wrows_since(w, text, len);                      -- NULL: no high-water mark
 *   wrows_release(&cur->w);                           -- in the connector's close()
 */
#ifndef JOEY_SOURCE_WROWS_H
#define JOEY_SOURCE_WROWS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/arena.h"
#include "base/compat.h"
#include "base/error.h"
#include "base/strbuf.h"
#include "config/config.h"
#include "source/source.h"

struct wrows {
	struct source_cursor base; /* first */
	const struct cfg_source *src;
	struct arena arena;        /* the current row's copies, reset per row */
	struct source_row row;
	bool grouped, int_key;
	int count_col, since_col;
	uint64_t null_keys;
	const char *key_column;    /* borrowed from the plan (or a literal) */
};

/*
 * Set up w (zeroed) for src (borrowed, outlives w): cursor ops, arena, one value per
 * property. count_col is the column after the properties (grouped reads).
 */
void wrows_init(struct wrows *w, const struct source_cursor_ops *ops, const struct cfg_source *src, bool grouped,
		bool int_key, const char *key_column, int since_col);
/* Warn about the skipped NULL keys, free what wrows_init took (not w itself). */
void wrows_release(struct wrows *w);

/* A statement's answer has n_cols columns: JERR_SOURCE unless the plan expects that many. */
enum jerr wrows_check_width(const struct wrows *w, size_t n_cols, struct jerror *err) JOEY_WUR;

/* A row with a NULL key: counted (count_text: the grouped row's count, or NULL). */
void wrows_null_key(struct wrows *w, const char *count_text);

/*
 * The row's key from ks (borrowed; lives as long as the answer page): resets the row's
 * invalid count, parses an integer key. JERR_SOURCE_DATA for a non-integer one, with
 * detail (may be NULL) as the error's detail.
 */
enum jerr wrows_key(struct wrows *w, const char *ks, const char *detail, struct jerror *err) JOEY_WUR;

/* Value i of the row did not fit its property: NULL, counted and reported with raw. */
void wrows_invalid(struct wrows *w, size_t i, const char *raw);

/* The row's high-water mark: a copy of text (NULL: none) in the row's arena. */
void wrows_since(struct wrows *w, const char *text, size_t len);

/* A number as sent (s, n bytes) as a value of type t: integer if it is one, else real. */
bool wrows_number(enum prop_type t, const char *s, size_t n, struct value *v);

/* Text (t, borrowed) copied into the row's arena and coerced to type t. */
bool wrows_text(struct wrows *w, enum prop_type t, const struct strbuf *text, struct value *v);

#endif
