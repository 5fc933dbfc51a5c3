/*
 * sqlgen_internal.h: the pieces of the statement builder (sqlgen.h) shared by its files.
 * Not part of the connector interface: connectors call sql_plan_build and the other
 * sqlgen.h functions only.
 *
 *   sqlgen.c         the driver: sql_plan_build checks the read, writes the base relation,
 *                    asks sqlgen_select.c for one column per property, assembles the
 *                    statement and rewrites the parameter markers; plan init/describe
 *   sqlgen_expr.c    expression pieces: identifiers, parameters, the table, filters, the
 *                    key as selected and as ordered
 *   sqlgen_select.c  one property's column: row value, pick, array or aggregate
 *   sqlgen_where.c   what limits the rows: since mark, key range, some keys, a lookup by
 *                    value; the warehouse diff's wrapping
 *   sqlgen_lint.c    sql_redshift_lint
 *   sqlgen_values.c  values read from rows (sqlgen.h "values")
 *   sqlgen_check.c   `check` and `sample` helpers (sqlgen.h "check")
 *
 * Every function here appends to a strbuf it borrows and records bound values in g->p
 * (the plan, which owns them); none fails except sqlgen_add_property (JERR_CONFIG with
 * err set, the plan left for sql_plan_release).
 */
#ifndef JOEY_SOURCE_SQLGEN_INTERNAL_H
#define JOEY_SOURCE_SQLGEN_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

#include "base/error.h"
#include "base/strbuf.h"
#include "config/config.h"
#include "source/source.h"
#include "source/sqlgen.h"

#define SRC_ALIAS "joey$src"
#define BASE_ALIAS "joey$base"
/* a parameter is written \001<n>\002 while building (pieces are assembled out of order) */
#define MARK_OPEN '\001'
#define MARK_CLOSE '\002'

/* Builder state for one statement (sql_plan_build's, borrowed by every step). */
struct gen {
	const struct sql_dialect *d;
	struct sql_plan *p;
	void *conn;
	/* set by the driver before the property columns are built */
	const struct cfg_source *src;
	const char *K;      /* the key column (borrowed from config) */
	bool natural;       /* the key column's own order is the key order (table_info) */
	const char *rowid;  /* physical row order column, or NULL (table_info) */
	/* the window layer (SQL_PICK_WINDOW*): its columns ", ... AS "joey$wN"", n of them */
	struct strbuf win;
	size_t n_win;
};

/* ---- sqlgen_expr.c ---- */

/* Append a parameter marker for a new bind value (text borrowed), compared with column
 * (or NULL); numeric: bound as an integer or real when text is one. */
void sqlgen_add_param_col(struct gen *g, struct strbuf *sb, const char *text, bool numeric,
			  const char *column);
void sqlgen_add_param(struct gen *g, struct strbuf *sb, const char *text, bool numeric);
/* The table option: one identifier, or (d->dotted_table) "db.table" as two. */
void sqlgen_add_table(struct gen *g, struct strbuf *sb, const char *table);
/* CAST(col AS <text_type>) */
void sqlgen_add_text_cast(struct gen *g, struct strbuf *sb, const char *col);
/* col where it is compared or ordered as a number: <num_fn>(col), or col (sqlgen.h). */
void sqlgen_add_num_col(struct gen *g, struct strbuf *sb, const char *col);
/* The AND of the property's filters in parentheses (true when there are none). */
void sqlgen_add_filters(struct gen *g, struct strbuf *sb, const struct cfg_property *prop);
/* The key expression over the raw columns of the source (select, group, partition). */
void sqlgen_add_key_expr(struct gen *g, struct strbuf *sb, const char *col, bool natural, bool int_key);
/* The key as ORDER BY sorts it (key_compare order), over the raw columns. */
void sqlgen_add_order_key(struct gen *g, struct strbuf *sb, const char *K, bool natural, bool int_key);

/* ---- sqlgen_select.c ---- */

/* ", <the column of prop>" appended to cols (window columns to g->win); JERR_CONFIG for
 * a property joey cannot read in one statement. */
enum jerr sqlgen_add_property(struct gen *g, struct strbuf *cols, const struct cfg_property *prop,
			      struct jerror *err) JOEY_WUR;

/* ---- sqlgen_where.c ---- */

/* WHERE of a read limited to a key range, to some keys (keys->in_keys), to rows whose
 * column equals a value (match) and/or to rows since a mark (since->since_value); each
 * part may be NULL. */
void sqlgen_add_read_where(struct gen *g, struct strbuf *sb, const struct cfg_source *src, const char *K,
			   bool natural, const struct source_read *since, const struct key_range *range,
			   const struct source_read *keys, const struct source_read *match);
/* The warehouse diff's reads: wrap the statement in g->p->sql (n_cols columns) to keep
 * some keys (keys, n_keys; NULL: all) and/or add a row digest column. */
void sqlgen_wrap_warehouse(struct gen *g, const struct rkey *keys, size_t n_keys, bool digest, int n_cols);

#endif
