/*
 * source.h: the interface every source connector implements (SQLite, PostgreSQL,
 * MySQL/MariaDB, CSV), one const struct source_ops per connector.
 *
 * Order of calls for one run:
 *   ops = source_ops_for_app(app->type);
 *   ops->connect(app, cfg->root, &conn, &err);
 *   for each source of the model:
 *       ops->open_cursor(conn, source, read, &cur, &err);  -- ONE query per source per run
 *       while ((rc = source_cursor_next(cur, &row, &err)) == JERR_OK && row) ... ;
 *       source_cursor_close(cur);
 *   ops->disconnect(conn);
 *
 * A cursor yields one row per record key, in ascending key order (see key_compare),
 * holding one value per property of the source (row->values[i] belongs to
 * source->properties[i]), already aggregated, filtered and coerced to the property
 * type. Rows and their values are borrowed: valid until the next next()/close().
 * The key order is the contract the streaming diff relies on: connectors push the
 * ordering into the query, and source_cursor_next() checks it (an out-of-order or
 * duplicate key is a JERR_SOURCE_DATA error naming the keys).
 *
 * A secondary source yields rows only for keys it has rows for: a record with no rows
 * there is simply absent from its stream, and the engine applies Grouparoo's defaults
 * (0 for sum/count, NULL otherwise). Rows whose key column is NULL are skipped and
 * counted (one warning per source at close). SQL shapes: docs/internals/sources.md.
 */
#ifndef JOEY_SOURCE_H
#define JOEY_SOURCE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/compat.h"
#include "base/error.h"
#include "base/value.h"
#include "config/config.h"

/*
 * A record key. Integer primary keys (property type integer) compare numerically;
 * all others compare bytewise on their UTF-8 text. `text` is always set (decimal
 * for integers) and is what Braze receives as external_id.
 */
struct rkey {
	bool is_int;
	int64_t i;
	struct slice text;
};

int key_compare(const struct rkey *a, const struct rkey *b);

/*
 * A range of record keys in key_compare order: lo inclusive, hi exclusive; a NULL
 * bound is open (from the first key, to the last). The bounds are borrowed. Used by
 * workers (docs/scaling.md), which split a destination's keys into such ranges.
 */
struct key_range {
	const struct rkey *lo;
	const struct rkey *hi;
};

/* k lies in r; a NULL range holds every key. */
bool key_in_range(const struct key_range *r, const struct rkey *k);

/*
 * How much of a source to read (incremental schedules, docs/config.md). NULL, or
 * since_column NULL, is a full read. With since_column set (table sources only; a
 * query source is JERR_CONFIG) every row also carries the largest since_column value
 * of its key in row->since, and with since_value set too only keys that have a row
 * with since_column >= since_value are read (Grouparoo's `>=`: the boundary row is read
 * again, and change detection makes it a no-op). Both strings are borrowed.
 */
struct source_read {
	const char *since_column;
	const char *since_value; /* NULL: no lower bound */
	/*
	 * NULL: every key. Otherwise only rows whose record key lies in the range are
	 * read (pushed into the statement as WHERE key >= lo AND key < hi, compared in
	 * key order). Applies to every source of a model, not only the primary one.
	 */
	const struct key_range *range;
	/*
	 * The warehouse diff (engine/warehouse.h), PostgreSQL only (other connectors
	 * refuse it with JERR_CONFIG). keys (borrowed, n_keys of them, NULL: every key)
	 * limits the read to those record keys, on every source of a model. digest asks
	 * the database for a digest of each row as the statement returns it (the hex MD5
	 * of the row's text), delivered in row->since instead of a since value (the two
	 * cannot be asked for together).
	 */
	const struct rkey *keys;
	size_t n_keys;
	bool digest;
	/*
	 * NULL: every key. Otherwise (borrowed, n_in_keys of them, in key_compare order)
	 * only the rows of these record keys are read, on every connector: pushed into
	 * the statement as WHERE key IN (...), before any aggregation, so aggregates stay
	 * complete. Combines with since and range. Keep n_in_keys to a few hundred.
	 */
	const struct rkey *in_keys;
	size_t n_in_keys;
	/*
	 * NULL: every row. Otherwise (borrowed, with match_value) only the rows whose
	 * column match_column equals match_value, pushed into the statement as
	 * WHERE <column> = ? (a bound parameter, the column an identifier) before any
	 * aggregation: the records that have such a row, e.g. a record looked up by a unique
	 * property (the API's record search). Table sources only (a query source is
	 * JERR_CONFIG). The SQL connectors let the database use an index on the column;
	 * CSV files are loaded whole first (they have no index) and then filtered the same
	 * way. Combines with the others.
	 */
	const char *match_column;
	const char *match_value;
	bool match_is_number; /* match_value is a number (bound as one); else text, compared bytewise */
};

struct source_row {
	struct rkey key;
	struct value *values; /* n == source->n_properties */
	size_t n_values;
	/* coercion problems in this row (value set to NULL), for warnings; may be 0 */
	size_t n_invalid;
	/* read->since_column's largest value for this key, as text; empty when NULL or
	 * not asked for. With read->digest: the row's digest (32 hex digits). */
	struct slice since;
};

/*
 * Order of two since values (source_row.since): numerically when both are numbers,
 * else bytewise (ISO timestamps order correctly as text). Returns <0, 0, >0.
 */
int source_since_compare(struct slice a, struct slice b);

/*
 * Whether a since value s[0..n) of a number, date or timestamp column is outside the
 * order a mark needs: infinity, inf and NaN, signed or not, in any case (how
 * PostgreSQL, ClickHouse, Snowflake and BigQuery print them). Taken for a mark, one
 * such row made every incremental run compare `column >= 'infinity'` (or NaN, which
 * nothing is >=): every later change skipped until that row went. Connectors read such
 * a value as no value (as NULL), so it is never the mark; a text column's "NaN" is a
 * string like any other, so only number and time columns are asked.
 */
bool source_since_unordered(const char *s, size_t n);

struct arena;
/*
 * A since value read as a binary floating-point number d, as text: the shortest that
 * reads back as d exactly (up to 17 significant digits; ".0" added to a whole number),
 * allocated in a. A mark rounded to fewer digits can land above the row that set it, and
 * `column >= mark` then skips that row and every later one with its value. A value
 * that is not finite comes back empty (no mark).
 */
struct slice source_since_double(double d, struct arena *a);

struct source_cursor;

/* Unreadable keys a cursor describes (source_cursor.bad_keys), at most. */
#define SOURCE_BAD_KEYS_MAX 20

struct source_cursor_ops {
	/* Produce the next row in *row (NULL at the end). Row owned by the cursor. */
	enum jerr (*next)(struct source_cursor *cur, struct source_row **row, struct jerror *err);
	void (*close)(struct source_cursor *cur);
};

/* Base of every connector cursor (connectors embed it first). */
struct source_cursor {
	const struct source_cursor_ops *ops;
	const struct cfg_source *source;
	/* order checking, maintained by source_cursor_next */
	bool have_prev;
	struct rkey prev;
	struct strbuf prev_text;
	uint64_t rows;
	uint64_t invalid; /* values that failed coercion, reported by source_note_invalid */
	/* rows skipped for a text key their type makes NULL: empty, or invalid (source_cursor_next) */
	uint64_t null_keys;
	/*
	 * Rows of the source that could not be read at all, whose records are unknown, not
	 * gone: a CSV row skipped as bad, known when the cursor opens; and a row whose text
	 * key Braze cannot receive exactly (a NUL byte, invalid UTF-8: JSON would drop or
	 * replace those bytes, so two keys would name one user), which source_cursor_next
	 * skips and counts as it reads, so the count can grow until the last row.
	 * unreadable_at (n_unreadable_at <= unreadable; borrowed from the connection, or
	 * from bad_keys) says where the first of them are ("file:line:col: reason").
	 */
	uint64_t unreadable;
	const char *const *unreadable_at;
	size_t n_unreadable_at;
	char *bad_keys[SOURCE_BAD_KEYS_MAX]; /* owned, freed by source_cursor_close */
	size_t n_bad_keys;
};

/*
 * A look at what a connection holds, for the UI's source and property editors
 * (source_ops.sample): the tables and views it can read, sorted by name, and for one
 * of them its columns and first rows, each value as the database prints it (NULL: SQL
 * NULL). Everything owned; source_sample_release frees it.
 */
struct source_sample {
	char **tables;
	size_t n_tables;
	char **columns;
	size_t n_columns;
	char **cells; /* n_rows * n_columns, row by row */
	size_t n_rows;
	bool columns_cut; /* sample_query: the query has more than SOURCE_SAMPLE_MAX_COLUMNS columns */
};
void source_sample_release(struct source_sample *s);
/* Most rows a sample reads, and bytes a value keeps (longer ones end in "…"). */
#define SOURCE_SAMPLE_MAX_ROWS 50
#define SOURCE_SAMPLE_MAX_VALUE 200
/* Most columns a query sample keeps (source_ops.sample_query). */
#define SOURCE_SAMPLE_MAX_COLUMNS 100
#define SOURCE_SAMPLE_MAX_QUERY 65536 /* bytes of query text a sample accepts */

struct source_ops {
	const char *app_type;              /* "sqlite" */
	const char *const *source_types;   /* NULL-terminated: "sqlite-import-table", ... */
	/* app options this connector accepts (NULL-terminated) and requires */
	const char *const *app_options;
	const char *const *required_app_options;
	/*
	 * Open a connection for app (borrowed; must outlive conn). config_dir is the
	 * project root (cfg->root, config/paths.h), which relative file paths are
	 * resolved from. On failure *conn is NULL and err names the app and why.
	 */
	enum jerr (*connect)(const struct cfg_app *app, const char *config_dir, void **conn,
			     struct jerror *err);
	/* Check that every table and column the source's properties use exists. */
	enum jerr (*check)(void *conn, const struct cfg_source *src, struct jerror *err);
	/*
	 * Start the single query for src (borrowed; must outlive the cursor). read
	 * (borrowed for the call; NULL: everything) limits it to rows since a mark.
	 */
	enum jerr (*open_cursor)(void *conn, const struct cfg_source *src,
				 const struct source_read *read, struct source_cursor **cur,
				 struct jerror *err);
	/* The SQL (or description) open_cursor would run, for `plan --explain`. Appends to out. */
	enum jerr (*describe)(void *conn, const struct cfg_source *src, struct strbuf *out,
			      struct jerror *err);
	void (*disconnect)(void *conn);
	/*
	 * The tables of conn into out (zeroed by the caller); with table set (borrowed; an
	 * identifier, quoted by the connector, never SQL text) also its columns and first
	 * limit rows (at most SOURCE_SAMPLE_MAX_ROWS; a value cut at
	 * SOURCE_SAMPLE_MAX_VALUE bytes). A table not among them is JERR_CONFIG naming it.
	 * One read-only statement, in key order of nothing: the table's first rows as the
	 * database returns them.
	 */
	enum jerr (*sample)(void *conn, const char *table, size_t limit, struct source_sample *out,
			    struct jerror *err);
	/*
	 * NULL where the connector has no query sources. The columns and first limit rows
	 * (at most SOURCE_SAMPLE_MAX_ROWS, at most SOURCE_SAMPLE_MAX_COLUMNS columns) of
	 * query (borrowed; untrusted SQL text, as a query source's `query` option) into out
	 * (zeroed by the caller; no tables listed), run the way a source read runs it: as a
	 * derived table (SELECT * FROM (query) LIMIT n), one statement only, in the
	 * connection's read-only session or a read-only transaction that is always rolled
	 * back, under the app's statementTimeout. A query that is not one SELECT fails
	 * (JERR_SOURCE, the database's message in the detail) and changes nothing.
	 */
	enum jerr (*sample_query)(void *conn, const char *query, size_t limit, struct source_sample *out,
				  struct jerror *err);
};

/*
 * Watching the database: statementTimeout and stopping.
 *
 * A source statement stays open while the run consumes its rows, paced by Braze's rate
 * limit, so a whole-statement limit on the server (statement_timeout,
 * max_statement_time) would cut off a large first sync. What is limited instead is how
 * long joey waits on the database at a time: a connector wraps every call that blocks
 * on the server in source_wait_begin/source_wait_end on the struct source_watch of its
 * connection, and one process-wide thread looks at every registered watch ten times a
 * second. It calls the watch's cancel function (PQcancel; KILL QUERY on a second
 * connection; sqlite3_interrupt), once per wait, from that thread, when
 *   - the same wait has lasted timeout_ms (the app's statementTimeout):
 *     SOURCE_CANCEL_TIMEOUT; or
 *   - the stop flag of the thread that registered the watch (source_set_stop) is set,
 *     and it is waiting: SOURCE_CANCEL_STOP (SIGINT/SIGTERM of plan, run, serve; a work
 *     item that lost its lease).
 * The blocking call then fails, and the connector turns its error into
 * source_watch_error's. Order of calls:
 *
 *   source_watch_register(&w, cancel, timeout_ms);    -- once the connection is up
 *   source_wait_begin(&w); ...blocking call...; source_wait_end(&w);
 *   if (failed && source_watch_cancelled(&w)) rc = source_watch_error(&w, what, err);
 *   source_watch_unregister(&w);                      -- before the connection closes
 *
 * cancel runs on the watcher thread with the watcher's lock held: unregister waits for
 * a cancel in progress, so after it the connection may be closed and w freed. cancel
 * must be safe to call while another thread blocks on the connection.
 */
enum source_cancel_reason { SOURCE_CANCEL_NONE, SOURCE_CANCEL_TIMEOUT, SOURCE_CANCEL_STOP };

struct source_watch;
typedef void (*source_cancel_fn)(struct source_watch *w);

struct source_watch {
	source_cancel_fn cancel;
	int64_t timeout_ms;     /* 0: no limit */
	const char *app_id;     /* borrowed: for messages */
	/* the registering thread's stop flag (source_set_stop), or NULL */
	volatile int *stop;
	/* written by the connector's thread */
	_Atomic uint64_t seq;   /* waits begun */
	_Atomic int waiting;    /* 1 between source_wait_begin and source_wait_end */
	/* written by the watcher */
	_Atomic int cancelled;  /* enum source_cancel_reason, sticky */
	uint64_t seen_seq, cancelled_seq;
	int64_t seen_at;        /* monotonic ms the watcher first saw wait seen_seq */
	struct source_watch *prev, *next;
};

/*
 * Register w (zeroed or unregistered; owned by the caller, must stay put until
 * unregistered) with its cancel function and limit; app_id borrowed for messages.
 */
void source_watch_register(struct source_watch *w, source_cancel_fn cancel, int64_t timeout_ms,
			   const char *app_id);
/* Unregister w (NULL-safe, idempotent), waiting for a cancel of it in progress. */
void source_watch_unregister(struct source_watch *w);
static inline void source_wait_begin(struct source_watch *w)
{
	/* seq has one writer (the thread reading the connection): a load and a store, not a
	 * locked add, which cost a hundredth of a first sync's reading (one per row) */
	atomic_store_explicit(&w->seq, atomic_load_explicit(&w->seq, memory_order_relaxed) + 1, memory_order_relaxed);
	atomic_store_explicit(&w->waiting, 1, memory_order_release);
}
static inline void source_wait_end(struct source_watch *w)
{
	atomic_store_explicit(&w->waiting, 0, memory_order_release);
}
/* Why the watcher cancelled a statement on w (SOURCE_CANCEL_NONE: it did not). */
static inline enum source_cancel_reason source_watch_cancelled(struct source_watch *w)
{
	return (enum source_cancel_reason)atomic_load_explicit(&w->cancelled, memory_order_acquire);
}
/*
 * The error of a statement the watcher cancelled, replacing whatever err held: what
 * (borrowed) names it ("source \"users\"", "app \"db\""). A timeout is JERR_SOURCE naming
 * the app's statementTimeout, with a hint; a stop is JERR_INTERRUPTED.
 */
enum jerr source_watch_error(struct source_watch *w, const char *what, struct jerror *err);
/*
 * rc, or, when rc is an error other than JERR_INTERRUPTED and the watcher cancelled the
 * statement on w (timeout, stop), source_watch_error's for `<kind> "<id>"` ("source",
 * "app"; both borrowed).
 */
enum jerr source_watch_rc(struct source_watch *w, enum jerr rc, const char *kind, const char *id,
			  struct jerror *err) JOEY_WUR;
/*
 * The app's statementTimeout option in milliseconds into *ms: SOURCE_TIMEOUT_DEFAULT_S
 * when absent, 0 ("0": no limit). JERR_CONFIG when it is not a number >= 0.
 */
#define SOURCE_TIMEOUT_DEFAULT_S 300
enum jerr source_timeout_option(const struct cfg_app *app, int64_t *ms, struct jerror *err) JOEY_WUR;
/* The app's option key as text (borrowed from app), or NULL when absent or "". */
const char *source_option_text(const struct cfg_app *app, const char *key);
/* Sleep ms milliseconds (connect retries), through signals. */
void source_sleep_ms(long ms);
/*
 * The stop flag (borrowed; NULL: none) of the calling thread's source reads: watches
 * registered by this thread from now on are cancelled when it is set, and
 * source_cursor_next returns JERR_INTERRUPTED once it is. Returns the previous flag, to
 * restore when the caller is done.
 */
volatile int *source_set_stop(volatile int *flag);

extern const struct source_ops source_sqlite;
/*
 * For the CSV connector (csv.c), on a connection of source_sqlite: register fn, a
 * deterministic SQL function of one argument, as name (a string that outlives conn), and
 * put every column this connection's statements compare with a number, order as a
 * sortColumn, or take MIN/MAX of for a number property through it (sqlgen.h num_fn).
 */
struct sqlite3_context;
struct sqlite3_value;
enum jerr source_sqlite_number_fn(void *conn, const char *name,
				  void (*fn)(struct sqlite3_context *, int, struct sqlite3_value **),
				  struct jerror *err) JOEY_WUR;
/* A float as a float property reads it from text (value_coerce_text): false if not one. */
bool source_parse_float(const char *s, size_t len, double *out);
extern const struct source_ops source_csv;
extern const struct source_ops source_postgres;
extern const struct source_ops source_mysql;
extern const struct source_ops source_redshift;   /* postgres.c */
/*
 * The PostgreSQL connector's dialect (postgres.c), its table_info and text_column
 * reading through a struct pg_conn: the warehouse diff (engine/warehouse.c) builds the
 * same statements from a copy whose table_info and text_column read through its own
 * connection.
 */
struct sql_dialect;
extern const struct sql_dialect source_postgres_dialect;
/* Whether an information_schema.columns data_type is text (text, varchar, char): a
 * number mark is compared with such a column through since_number (sqlgen.h). */
bool source_pg_text_type(const char *data_type);

extern const struct source_ops source_clickhouse;
extern const struct source_ops source_snowflake;
extern const struct source_ops source_snowflake_keypair;
extern const struct source_ops source_bigquery;

/* The connector for an app type, or NULL. */
const struct source_ops *source_ops_for_app(const char *app_type);
/* The connector whose source_types contains type, or NULL. */
const struct source_ops *source_ops_for_source_type(const char *source_type);

/*
 * A connector found a value of property p (borrowed) for record key that does not fit
 * the property's type; raw (borrowed, len bytes) is the value as the source holds it.
 * The first few are logged with source, property, key and value, the rest counted and
 * summed up when the cursor closes. The value itself becomes NULL (the connector's job).
 */
void source_note_invalid(struct source_cursor *cur, const struct cfg_property *p, const struct rkey *key,
			 const char *raw, size_t len);

/* Next row with ordering checks; *row NULL at the end. */
enum jerr source_cursor_next(struct source_cursor *cur, struct source_row **row,
			     struct jerror *err) JOEY_WUR;
void source_cursor_close(struct source_cursor *cur);

/*
 * Coerce raw text from a source into a value of type t (Grouparoo's rules):
 * integer (whole numbers; "12.0" ok), float, boolean (1/0/true/false, any case),
 * date (time_parse), email (must look like local@domain.tld), url (lower-cased; a
 * scheme://host or host.tld shape), phone (trimmed and passed through: joey has no
 * libphonenumber, so numbers are not reformatted), string (as is). Empty text is NULL
 * (and valid); other types are trimmed first. Returns false (and *out NULL) for an invalid value.
 * The string, if any, is copied into arena.
 */
bool value_coerce_text(enum prop_type t, const char *s, size_t len, struct arena *arena,
		       struct value *out);

#endif
