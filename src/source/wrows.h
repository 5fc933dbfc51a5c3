/*
 * wrows.h: what the warehouse connectors (Snowflake, BigQuery) share in turning their
 * JSON answers into joey rows: the cursor core (key, NULL keys, invalid values, the
 * high-water mark), numbers and text into values. Private to src/source/snowflake*.c
 * and bigquery*.c; the engine reads them through source.h alone.
 *
 * Order of calls, per cursor (the connector's cursor struct starts with a struct wrows):
 *   wrows_init(&cur->w, &ops, src, grouped, int_key, key_column, since_col);
 *   rc = wrows_opened(&cur->w, rc, n_cols, out, err); -- after the statement ran
 *   rc = wrows_next(&cur->w, &cells_ops, &row, err);  -- the connector's next()
 *        (its value decoder uses wrows_number / wrows_text)
 *   wrows_release(&cur->w);                           -- in the connector's close()
 * The body-alone decoders (warehouse_decode.h) end with wrows_decode_rows.
 */
#ifndef JOEY_SOURCE_WROWS_H
#define JOEY_SOURCE_WROWS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "base/arena.h"
#include "base/compat.h"
#include "base/error.h"
#include "base/strbuf.h"
#include "config/config.h"
#include "source/source.h"
#include "source/warehouse_decode.h"

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

/*
 * The end of a connector's open_cursor: rc is the statement's error (JERR_OK: it ran,
 * its answer has n_cols columns, JERR_SOURCE unless the plan expects that many). On
 * success *out is the cursor (&w->base); on failure the cursor is closed
 * (w->base.ops->close, which frees it) and *out left alone. Returns the first error.
 */
enum jerr wrows_opened(struct wrows *w, enum jerr rc, size_t n_cols, struct source_cursor **out,
		       struct jerror *err) JOEY_WUR;

/* How a connector's answer rows are read (one const table per connector). */
struct wrows_cells_ops {
	/*
	 * The next answer row's cells into *cells (borrowed until the next call; NULL at the
	 * end), fetching further partitions or pages; what names the source in messages.
	 */
	enum jerr (*fetch)(struct wrows *w, json_t **cells, const char *what, struct jerror *err);
	json_t *(*cell)(json_t *cells, size_t i); /* cell i's value (borrowed), NULL: none */
	/* Column col's cell as a value of prop's type into *v; false if it does not fit. */
	bool (*value)(struct wrows *w, size_t col, json_t *cell, const struct cfg_property *prop, struct value *v);
	/* The high-water mark text of column col's cell s, appended to sb. */
	void (*since_text)(struct wrows *w, size_t col, const char *s, struct strbuf *sb);
	const char *key_not_text; /* the end of "key column \"k\" is ...": the key is not a string */
	const char *key_detail;   /* detail of a non-integer key's error, or NULL */
};

/*
 * The next source row into *row (borrowed until the next call; NULL at the end): rows
 * with a NULL key are counted and skipped, the key read (an integer key must be one),
 * each value decoded (one that does not fit is NULL, counted and reported), the
 * high-water mark copied. JERR_SOURCE_DATA for a key that is not text or not an integer,
 * else the fetch's error.
 */
enum jerr wrows_next(struct wrows *w, const struct wrows_cells_ops *ops, struct source_row **row,
		     struct jerror *err) JOEY_WUR;

/*
 * The end of a body-alone decoder (warehouse_decode.h): rc is the error of taking the
 * body (JERR_OK: taken, n_cols columns); every row goes to on_row, then the cursor is
 * closed (w->base.ops->close). Returns the first error.
 */
enum jerr wrows_decode_rows(struct wrows *w, enum jerr rc, size_t n_cols, warehouse_row_fn on_row, void *ctx,
			    struct jerror *err) JOEY_WUR;

/* A number as sent (s, n bytes) as a value of type t: integer if it is one, else real. */
bool wrows_number(enum prop_type t, const char *s, size_t n, struct value *v);

/* Text (t, borrowed) copied into the row's arena and coerced to type t. */
bool wrows_text(struct wrows *w, enum prop_type t, const struct strbuf *text, struct value *v);

/* ---- the UI's previews (source_ops.sample, sample_query) of both connectors ---- */

/* The rows a preview reads: limit, at most SOURCE_SAMPLE_MAX_ROWS. */
size_t wrows_sample_limit(size_t limit);
/*
 * After a query preview's statement: a query the warehouse refused (rc JERR_SOURCE, a
 * message ending ": query failed") is said as the other connectors say it, "app \"ID\":
 * the query cannot be read", the warehouse's words staying in the detail. Returns rc.
 */
enum jerr wrows_sample_refused(enum jerr rc, const char *app_id, struct jerror *err);

/*
 * A connector's run of a preview's statement: sql (borrowed) as one statement, at most
 * limit rows of its answer into out; what names the app (and table) in messages. query:
 * the statement is a query preview's, so a refusal goes through wrows_sample_refused.
 */
typedef enum jerr (*wrows_sample_run_fn)(void *conn, const char *sql, bool query, size_t limit,
					 struct source_sample *out, const char *what, struct jerror *err);

/*
 * A connector's list of a preview's tables into out->tables, out->n_tables (by name);
 * what names the app in messages, and a failure's message says what it could not list.
 */
typedef enum jerr (*wrows_sample_list_fn)(void *conn, struct source_sample *out, const char *what,
					  struct jerror *err);

struct sql_dialect;
/*
 * source_ops.sample: the tables listed through list; nothing more when table is NULL;
 * else table must be one of them, and its first rows are read through run (SELECT *
 * FROM table, quoted as d quotes it). app_id, d borrowed.
 */
enum jerr wrows_sample_table(void *conn, wrows_sample_list_fn list, wrows_sample_run_fn run, const char *app_id,
			     const struct sql_dialect *d, const char *table, size_t limit, struct source_sample *out,
			     struct jerror *err) JOEY_WUR;
/* source_ops.sample_query: the query (borrowed) a derived table, read through run. */
enum jerr wrows_sample_query(void *conn, wrows_sample_run_fn run, const char *app_id, const char *query,
			     size_t limit, struct source_sample *out, struct jerror *err) JOEY_WUR;

#endif
