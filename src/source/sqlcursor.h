/*
 * sqlcursor.h: the row state a SQL row cursor keeps whatever its driver (PostgreSQL, MySQL,
 * SQLite): the source, the plan's shape (grouped, integer key, key column, the COUNT(*)
 * and since columns), the current row and the arena its strings live in, and the count of
 * rows skipped for a NULL key. A cursor embeds one and calls:
 *
 *   sql_cursor_state_init(&cur->rs, src, &plan);   -- at open, after sql_plan_build
 *   ... per row: arena_reset(&cur->rs.arena), fill cur->rs.row ...
 *   sql_warn_null_keys(...); sql_cursor_state_release(&cur->rs);   -- at close
 *
 * Not on the per-row path: init and release run once per cursor.
 */
#ifndef JOEY_SOURCE_SQLCURSOR_H
#define JOEY_SOURCE_SQLCURSOR_H

#include <stdbool.h>
#include <stdint.h>

#include "base/arena.h"
#include "source/source.h"
#include "source/sqlgen.h"

struct sql_cursor_state {
	const struct cfg_source *src; /* borrowed: outlives the cursor */
	struct arena arena;           /* the current row's strings, arrays, key text */
	struct source_row row;        /* row.values owned (n_properties of them) */
	bool grouped, int_key;
	int count_col;                /* the COUNT(*) column of a grouped statement */
	int since_col;                /* 0: none */
	uint64_t null_keys;           /* rows skipped for a NULL key */
	const char *key_column;       /* borrowed from the source */
};

/* Set up s for the rows of src read with plan p (its shape is copied; p may go after). */
void sql_cursor_state_init(struct sql_cursor_state *s, const struct cfg_source *src, const struct sql_plan *p);
/* Free what s holds (the arena, the row's values); s is then unusable. */
void sql_cursor_state_release(struct sql_cursor_state *s);

#endif
