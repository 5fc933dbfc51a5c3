/*
 * sqlgen.h: the SQL statement for one source, shared by the SQL connectors (SQLite,
 * PostgreSQL, MySQL/MariaDB). Each connector describes its SQL dialect once in a const
 * struct sql_dialect and calls, per source:
 *
 *   struct sql_plan p;
 *   sql_plan_init(&p);
 *   rc = sql_plan_build(&dialect, conn, src, read, &p, &err);   -- p.sql, p.binds
 *   ... prepare p.sql, bind p.binds[i] to placeholder i + 1, stream the rows ...
 *   sql_plan_release(&p);
 *
 * The statement (docs/internals/sources.md): one row per record key in ascending key
 * order (integers numerically, text bytewise: the order key_compare in source.h
 * defines), column 0 the key, column i + 1 the value of src->properties[i], and, when
 * p.grouped, a column COUNT(*) (rows per key, for counting NULL keys), and when
 * p.since_col > 0 a last column with the largest read->since_column value of the key
 * (incremental reads, source.h struct source_read). Every
 * identifier is quoted by the dialect, every filter value is a bound parameter.
 *
 * Also here: the dialect-independent pieces of reading rows (native integer/real to a
 * property value, JSON array decoding) and of `check` (column checks, did-you-mean).
 */
#ifndef JOEY_SOURCE_SQLGEN_H
#define JOEY_SOURCE_SQLGEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/arena.h"
#include "base/compat.h"
#include "base/error.h"
#include "base/strbuf.h"
#include "base/value.h"
#include "config/config.h"
#include "source/source.h"

enum sql_param_style {
	SQL_PARAM_QNUM,   /* ?1 ?2 (SQLite) */
	SQL_PARAM_DOLLAR, /* $1 $2 (PostgreSQL) */
	SQL_PARAM_QMARK,  /* ?  ?  : binds are reordered to their position in the text */
	SQL_PARAM_LITERAL, /* values inlined by dialect->literal (MySQL text protocol); binds
			    * are kept, in text order, for describe */
};

/* How "pick one row per key" (exact, most/least recent) and arrays are computed. */
enum sql_pick_style {
	/* ROW_NUMBER() in a window layer, outer MAX(CASE WHEN w = 1 ...); arrays as
	 * json_group_array() window aggregates (SQLite) */
	SQL_PICK_WINDOW,
	/* (ARRAY_AGG(col ORDER BY ...) FILTER (WHERE f))[1]; arrays json_agg(... ORDER BY)
	 * (PostgreSQL) */
	SQL_PICK_ORDERED_AGG,
	/* window layer for picks; arrays JSON_ARRAYAGG(CASE WHEN f THEN col END ORDER BY)
	 * (MariaDB) */
	SQL_PICK_WINDOW_ARRAYAGG,
	/* no window functions (ClickHouse 18.16): picks as
	 * tupleElement(argMax[If](tuple(col), tuple(<order keys>)[, f]), 1), arrays as
	 * groupArrayIf(...) sorted by arraySort on (order keys, value) tuples */
	SQL_PICK_ARGMAX,
	/* window layer for picks; arrays ARRAY_AGG(CASE WHEN f THEN col END) WITHIN GROUP
	 * (ORDER BY ...) (Snowflake: NULLs left out by the function) */
	SQL_PICK_WINDOW_WITHIN_GROUP,
	/* window layer for picks; arrays ARRAY_AGG(CASE WHEN f THEN col END IGNORE NULLS
	 * ORDER BY ...) (BigQuery, whose arrays cannot hold NULL) */
	SQL_PICK_WINDOW_IGNORE_NULLS,
};

struct sql_bind;

struct sql_dialect {
	const char *name;          /* "sqlite" */
	char quote;                /* identifier quote: '"' or '`' (doubled inside) */
	enum sql_param_style params;
	enum sql_pick_style pick;
	const char *text_type;     /* CAST(x AS <text_type>): "TEXT", "CHAR" */
	const char *int_type;      /* CAST(x AS <int_type>): "INTEGER", "BIGINT", "SIGNED" */
	/* appended to a text key expression everywhere (select, group, order), and to text
	 * filter values so comparisons are bytewise and case-sensitive as in SQLite and
	 * PostgreSQL: MariaDB's " COLLATE utf8mb4_nopad_bin"; "" elsewhere */
	const char *key_collate;
	/* appended to a non-natural text key in ORDER BY: bytewise order */
	const char *text_order;
	/* appended to a natural text key column in ORDER BY ("" when already bytewise) */
	const char *natural_text_order;
	const char *like_escape;   /* " ESCAPE '\\'" as SQL text */
	const char *true_sql;      /* "1" or "TRUE": a filter list with no filters */
	const char *false_sql;
	bool concat_fn;            /* CONCAT('%', x, '%') rather than '%' || x || '%' */
	bool cast_text_params;     /* LOWER(CAST(?N AS TEXT)) so the type is known */
	const char *avg_cast;      /* AVG(CAST(x AS <avg_cast>)) or NULL: AVG(x) */
	/* NULL ordering made explicit to match SQLite (NULLs smallest), or "" */
	const char *asc_nulls, *desc_nulls;
	/*
	 * A one-argument SQL function a column goes through wherever it is compared with a
	 * number, ordered in a pick (sortColumn), or taken MIN/MAX of for a number property
	 * (CSV, csv.c: "joey_number", a number written as text that is not stored as one),
	 * or NULL: the column as it is. Values a property reads are never wrapped.
	 */
	const char *num_fn;
	/*
	 * Facts about a table source's key column, from the catalog: *natural when the
	 * column's own order is the key order (integer column for an integer key; for a
	 * text key a text column, ordered with natural_text_order), *rowid_col the
	 * tie-break column naming physical row order ("rowid", "ctid") or NULL.
	 */
	/* identifiers escape the quote and backslash with a backslash (BigQuery) instead of
	 * doubling the quote */
	bool ident_backslash;
	/* no physical row order to break ties (rowid_col NULL; Redshift, ClickHouse,
	 * Snowflake, BigQuery): picks and arrays order by the value itself last (NULL
	 * smallest, spelled out when null_rank), so unchanged data gives the same pick every
	 * run: most recent keeps the largest, least recent and exact the smallest
	 * (SQL_PICK_ARGMAX always does) */
	bool value_tiebreak;
	/* SQL_PARAM_LITERAL: append b as a literal (escaped for conn's character set) */
	void (*literal)(void *conn, struct strbuf *sb, const struct sql_bind *b);
	void (*table_info)(void *conn, const char *table, const char *key_column, bool int_key,
			   bool *natural, const char **rowid_col);
	/*
	 * An incremental read's column that compares as text with a number bound against it
	 * (text_column true; SQLite: TEXT affinity turns the number into text, so '1000' >=
	 * 999 is false), with a mark that is a number, is compared as
	 * <since_fn>(column, <mark as text>): true when the value is at or past the mark as
	 * source_since_compare orders them. No index serves it; text marks and other columns
	 * keep column >= mark. Both NULL: always column >= mark.
	 */
	bool (*text_column)(void *conn, const char *table, const char *column);
	const char *since_fn;
	/*
	 * The other dialects (since_fn NULL) compare a number mark with a text column
	 * (text_column true; bound as a number, PostgreSQL, Redshift, ClickHouse, BigQuery
	 * and Snowflake compare it as text, or take the column's type for the mark) as
	 * COALESCE(<since_number(column)> >= <mark as a number>, column IS NOT NULL):
	 * since_number appends the column's text as a number, NULL when it is not one (never
	 * an error), col the quoted column. Text that is not a number is read on every run
	 * (read again, never skipped); no index serves it. NULL: column >= mark (MySQL
	 * compares a text column with a number as numbers).
	 */
	void (*since_number)(struct strbuf *sb, const char *col);

	/* ---- warehouse dialects (Redshift, ClickHouse); all false/NULL elsewhere ---- */
	/* a table option "db.table" is a qualified name (ClickHouse, as Grouparoo's `??`) */
	bool dotted_table;
	/* substring filters as <fn>(CAST(col AS text), 'm') > 0 instead of LOWER() LIKE
	 * (ClickHouse: positionCaseInsensitiveUTF8; an exact substring, no LIKE escapes) */
	const char *substring_fn;
	/* no correlated subqueries: Grouparoo property queries ({{{ key }}}) are refused */
	bool no_correlated;
	/* no array aggregates at all (Redshift: no ARRAY_AGG, json_agg, STRING_AGG):
	 * isArray properties are refused */
	bool no_arrays;
	/* the NULL order of a pick's sort key as an explicit first key
	 * (CASE WHEN s IS NULL THEN 0 ELSE 1 END) rather than asc_nulls/desc_nulls, which
	 * Redshift refuses inside OVER () */
	bool null_rank;
	/* SQL_PICK_WINDOW: the outer MAX(CASE WHEN w = 1 THEN CAST(col AS <pick_cast>) END),
	 * for servers without MAX(boolean) (Redshift; the value arrives as text) */
	const char *pick_cast;
};

enum sql_bind_kind { SQL_BIND_TEXT, SQL_BIND_INT, SQL_BIND_REAL };

struct sql_bind {
	enum sql_bind_kind kind;
	const char *s; /* always set: the text form; borrowed from config or plan.arena */
	/* the column (borrowed from config) the value is compared with in a filter or since
	 * condition, NULL for others (LIKE patterns, keys): lets a SQL_PARAM_LITERAL dialect
	 * type the literal by the column (ClickHouse), and connectors that type parameters by
	 * column (BigQuery) */
	const char *column;
	int64_t i;
	double f;
};

struct sql_plan {
	struct strbuf sql;
	struct sql_bind *binds; /* binds[i] belongs to placeholder i + 1 (or the i-th ?) */
	size_t n_binds, alloc_binds;
	struct arena arena;     /* escaped LIKE patterns */
	bool grouped;           /* GROUP BY key; the last column is COUNT(*) */
	bool int_key;
	const char *key_column; /* borrowed from the source */
	int since_col;          /* column of MAX(since_column), or 0 when not asked for */
	/* set before sql_plan_build: numbered placeholders start after it ($<base + 1>),
	 * for a statement that becomes part of a larger one (the warehouse diff); 0 */
	size_t param_base;
	/* set before sql_plan_build: no ORDER BY (a part of a larger statement that needs
	 * no order; the rows are the same); false */
	bool unordered;
};

void sql_plan_init(struct sql_plan *p);
void sql_plan_release(struct sql_plan *p);

/*
 * Build the statement for src (borrowed; must outlive p) into p (initialised, empty).
 * conn is handed to d->table_info. read (NULL: a full read) asks for the since column
 * and, with since_value, for keys with a row since then only: a one-row-per-key
 * statement filters its rows (WHERE col >= ?), a grouped one filters its keys
 * (WHERE key IN (SELECT key ... WHERE col >= ?)) so that aggregates still see every row
 * of a key. read->range (any source) adds WHERE <key> >= lo AND <key> < hi, the key
 * compared exactly as ORDER BY sorts it. read->keys / read->digest (the warehouse diff,
 * PostgreSQL only) wrap the statement: only those keys, and/or a last column with the
 * MD5 of each row's text (p.since_col points at it). Its strings must outlive p. Returns JERR_CONFIG for a source joey cannot
 * turn into one statement, or an incremental read of a query source (err says why);
 * p is then left for sql_plan_release only.
 */
enum jerr sql_plan_build(const struct sql_dialect *d, void *conn, const struct cfg_source *src,
			 const struct source_read *read, struct sql_plan *p,
			 struct jerror *err) JOEY_WUR;

/*
 * The first construct in sql (borrowed) that Redshift lacks (warehouses.md 4.2), by
 * name, or NULL: COPY, DISTINCT ON, STRING_AGG, ARRAY_AGG, json_agg, arrays (ARRAY[,
 * = ANY(, [1]), FILTER (WHERE, NULLS FIRST/LAST, ON CONFLICT, ::text, COLLATE, cursors,
 * GENERATE_SERIES, IS DISTINCT FROM, ctid, md5 row digests, more than 32767 parameters.
 * String literals, quoted identifiers and comments are skipped; words match whole and
 * case-insensitively. Used by the Redshift connector's strict mode and its tests.
 */
const char *sql_redshift_lint(const char *sql);

/* `describe` output: the SQL, a newline, then one "-- <placeholder> = value" line per bind. */
void sql_plan_describe(const struct sql_dialect *d, const struct sql_plan *p, struct strbuf *out);
/* A connector's `describe`: build the full-read statement for src and append its description. */
enum jerr sql_describe_source(const struct sql_dialect *d, void *conn, const struct cfg_source *src,
			      struct strbuf *out, struct jerror *err) JOEY_WUR;
/* A sample value (source_sample): s (n bytes; NULL: SQL NULL) as an owned string, cut at
 * SOURCE_SAMPLE_MAX_VALUE bytes on a UTF-8 boundary with "…" added. */
char *sql_sample_value(const char *s, size_t n);
/* Is table one of names (exactly)? Else JERR_CONFIG naming it, with a did-you-mean hint. */
enum jerr sql_sample_table_known(const char *app_id, const char *table, char *const *names, size_t n,
				 struct jerror *err) JOEY_WUR;
/*
 * The statement of source_ops.sample_query: SELECT * FROM (query) AS joey_preview LIMIT n
 * (n at most SOURCE_SAMPLE_MAX_ROWS) appended to sb; query borrowed, its trailing
 * semicolons dropped as a source read drops them.
 */
void sql_sample_query_sql(struct strbuf *sb, const char *query, size_t limit);
/*
 * check's statement for a query source's columns: SELECT * FROM (query) AS joey$q
 * LIMIT 0 (the alias quoted as d quotes it) appended to sb; query borrowed, its trailing
 * semicolons dropped as a source read drops them.
 */
void sql_check_query_sql(struct strbuf *sb, const struct sql_dialect *d, const char *query);
/* The statement of source_ops.sample for one table: SELECT * FROM <table quoted as d
 * quotes it> LIMIT n (n at most SOURCE_SAMPLE_MAX_ROWS), appended to sb. */
void sql_sample_table_sql(struct strbuf *sb, const struct sql_dialect *d, const char *table, size_t limit);
/*
 * A sample's header for an answer of all columns: out->n_columns (at most
 * SOURCE_SAMPLE_MAX_COLUMNS), out->columns_cut, and out->columns allocated for them
 * (NULL after the last); the caller fills out->columns[0 .. n_columns - 1].
 */
void sql_sample_columns(struct source_sample *out, size_t all);
/*
 * One more row of a sample read row by row: out->cells grown (alloc: its allocated
 * count, 0 at first) with room for a NULL after the row, and out->n_rows counted.
 * Returns the row's out->n_columns cells, which the caller fills at once (each an
 * owned string, or NULL for SQL NULL).
 */
char **sql_sample_add_row(struct source_sample *out, size_t *alloc);
/* The end of a sample read row by row: out->cells allocated even for no rows, NULL after the last cell. */
void sql_sample_end_rows(struct source_sample *out);
/* The hint of a query preview the database refused. */
#define SQL_SAMPLE_QUERY_HINT "a query source reads one SELECT statement; it cannot change the database"
/* A preview asked of a connection that is reading a source: JERR_SOURCE, err says so. */
enum jerr sql_sample_busy(const char *app_id, struct jerror *err);
/*
 * A preview's table list (table NULL) or table the database would not read:
 * JERR_SOURCE, "app \"ID\": cannot read ..." in err; the detail is the caller's.
 */
enum jerr sql_sample_unreadable(const char *app_id, const char *table, struct jerror *err);
/*
 * A query preview the database refused: JERR_SOURCE, "app \"ID\": the query cannot
 * be read" and SQL_SAMPLE_QUERY_HINT in err; the detail is the caller's.
 */
enum jerr sql_sample_query_unreadable(const char *app_id, struct jerror *err);
/* Free a malloc'd array of n malloc'd column names (NULL is fine). */
void sql_free_names(char **names, size_t n);

/* Append name quoted for the dialect. */
void sql_add_ident(const struct sql_dialect *d, struct strbuf *sb, const char *name);
/* A query with trailing whitespace and semicolons removed, appended to sb. */
void sql_add_query_text(struct strbuf *sb, const char *q);

/* ---- values ---- */

bool sql_is_text_type(enum prop_type t);
/* A native integer / real as a value of type t; false if it is not one (strings: the
 * caller coerces the text form instead). */
bool sql_value_from_int(enum prop_type t, int64_t i, struct value *v);
bool sql_value_from_real(enum prop_type t, double f, struct value *v);
/* A JSON array (text, borrowed) as a VAL_ARRAY of prop's type in arena; NULL items are
 * dropped, invalid ones counted in *n_invalid. False if text is not a JSON array. */
bool sql_decode_array(const struct cfg_property *prop, const char *text, size_t len,
		      struct arena *a, struct value *out, size_t *n_invalid);
/* Decimal text of i in arena, its length in *len. */
char *sql_fmt_i64(struct arena *a, int64_t i, size_t *len);
/* A number's text (n bytes) as a 64-bit integer when it is one, with no fraction or a
 * fraction of only zeros (a DECIMAL(p,2)'s "9007199254740993.00"), in *i; false
 * otherwise (a fraction, an exponent, out of range). */
bool sql_int_of_number_text(const char *s, size_t n, int64_t *i);
/* A number's text (n bytes, NUL-terminated at n: "12", "-0.5", "1e3") as a value of type
 * t, integers exactly (sql_int_of_number_text); false if it is not a number or not one
 * of type t. */
bool sql_value_from_number_text(enum prop_type t, const char *s, size_t n, struct value *v);

/* A value's text (s, n bytes; borrowed) as a value of type t into v (VALUE_NULL on entry):
 * a string without a copy (v points into s; "" stays NULL), other types coerced into a
 * (value_coerce_text). False if the text is not valid for t. */
bool sql_value_from_text(enum prop_type t, const char *s, size_t n, struct arena *a, struct value *v);

/* ---- reading rows ---- */

/* The rows a NULL key stands for in a grouped statement: its COUNT(*) column's text (n
 * bytes), or 1 when that is not a number. */
uint64_t sql_null_key_rows(const char *count, size_t n);
/* Value i of cur's current row r could not be read (its text s, n bytes; borrowed): NULL,
 * counted in r->n_invalid and noted for the run (source_note_invalid). */
void sql_row_invalid(struct source_cursor *cur, struct source_row *r, size_t i, const char *s, size_t n);

/* JERR_SOURCE_DATA: the integer key column key_column (borrowed) of src holds text
 * (borrowed; NULL: "") that is not an integer. */
enum jerr sql_key_not_integer(const struct cfg_source *src, const char *key_column, const char *text,
			      struct jerror *err);
/*
 * key from the text of a row's key column (s, n bytes, NUL-terminated at n; borrowed,
 * as key->text may point into it): for an int_key the integer, its text s itself when
 * canonical (the database's integer output) or else its decimal form in a; otherwise
 * the text. JERR_SOURCE_DATA (sql_key_not_integer) for an int_key that is not one.
 */
enum jerr sql_row_key(const struct cfg_source *src, const char *key_column, bool int_key, const char *s,
		      size_t n, bool canonical, struct arena *a, struct rkey *key, struct jerror *err);
/* At the close of a cursor of src: warn of n rows (if any) skipped for a NULL key. */
void sql_warn_null_keys(const struct cfg_source *src, uint64_t n, const char *key_column);

/* ---- check ---- */

/* The source id for messages ("?" when unset). */
const char *sql_source_id(const struct cfg_source *src);
/* Hint "did you mean "x"?" or, failing that, "<what>: "a", "b", ..." (names borrowed). */
void sql_hint_names(struct jerror *err, const char *word, const char *const *names, size_t n,
		    const char *what);
/*
 * Check that the mapping column, every column, sortColumn and filter key of src's
 * properties and its schedule's options.column (table sources) is one of names
 * (case-insensitive). relname is the table (NULL: the source
 * query). Returns JERR_CONFIG naming the first missing one, with did-you-mean.
 */
enum jerr sql_check_columns(const struct cfg_source *src, const char *relname,
			    const char *const *names, size_t n, struct jerror *err) JOEY_WUR;
/* check's table source whose table is not there: JERR_CONFIG, "source \"ID\": table \"T\" does not exist"
 * in err; the detail (where it looked) and hint are the caller's. */
enum jerr sql_check_no_table(const struct cfg_source *src, struct jerror *err);
/* check's query source the database refused: JERR_SOURCE, "source \"ID\": the source query is invalid" in
 * err; the detail (the database's words) is the caller's. */
enum jerr sql_check_bad_query(const struct cfg_source *src, struct jerror *err);

#endif
