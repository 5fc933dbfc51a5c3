/*
 * clickhouse_internal.h: what the pieces of the ClickHouse connector share. Not part of
 * the connector interface: the engine uses source_clickhouse (source.h) alone.
 *
 *   clickhouse.c       dialect, connection, column types and literals, check, describe
 *   clickhouse_http.c  requests: start, drive, wait, kill; their errors
 *   clickhouse_rows.c  the cursor: header, rows, values, mid-stream failures
 *   clickhouse_sample.c  the UI's look: tables, a table's or a query's first rows
 *
 * A short statement: ch_run_short -> ch_short_line per line -> ch_req_free. A read:
 * ch_req_start (unbounded) -> ch_req_step while lines are wanted -> ch_req_free, and
 * ch_req_kill when the statement did not finish.
 */
#ifndef JOEY_SOURCE_CLICKHOUSE_INTERNAL_H
#define JOEY_SOURCE_CLICKHOUSE_INTERNAL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <curl/curl.h>

#include "base/arena.h"
#include "base/compat.h"
#include "base/error.h"
#include "base/strbuf.h"
#include "source/chwire.h"
#include "source/source.h"
#include "source/sqlgen.h"

#define CH_BUF_HIGH (1u << 20)        /* pause the transfer above this much unread */
#define CH_LINE_MAX (256u << 20)      /* one row */
#define CH_ERROR_BODY_MAX (64u << 10) /* an error answer kept for the message */
#define CH_CONNECT_TRIES 3
#define CH_RETRY_BASE_MS 250
#define CH_FORMAT " FORMAT TabSeparatedWithNamesAndTypes"
/*
 * A limit's overflow mode "break" (or "any" for GROUP BY) makes the server end a result
 * early without an error, and joey would take the rows it did not get for deleted:
 * every request asks for "throw" (ch_req_start), and connect refuses a user whose
 * profile keeps another mode (a readonly=1 profile cannot be asked).
 */
#define CH_THROW_SETTINGS                                                                                    \
	"&read_overflow_mode=throw&result_overflow_mode=throw&timeout_overflow_mode=throw"                     \
	"&group_by_overflow_mode=throw&sort_overflow_mode=throw&set_overflow_mode=throw"                       \
	"&join_overflow_mode=throw&distinct_overflow_mode=throw&transfer_overflow_mode=throw"

struct ch_col {
	char *name, *type;
};

struct ch_conn {
	const struct cfg_app *app;
	char *base_url;   /* scheme://host:port/ */
	char *database;
	const char *user, *password; /* borrowed from the app; the password is never printed */
	char *config_dir;
	int64_t timeout_ms;
	bool no_settings; /* a readonly profile: no settings in the URL but database */
	char *version, *timezone;
	CURLM *multi;     /* every request of the connection: its connection pool */
	struct curl_slist *headers;
	/* column types of the relation being built for (ch_load_types), for typed literals */
	char *types_of;
	struct ch_col *cols;
	size_t n_cols;
	struct source_watch watch;
	atomic_int abort_all; /* the watcher's cancel: abort the running transfer */
	CURLcode last_curl;   /* of the last failed request (connect retries) */
	size_t n_requests;    /* for query ids */
};

/* One HTTP request and its response body, read incrementally. */
struct ch_req {
	struct ch_conn *c;
	CURL *easy;
	struct strbuf body; /* received, unread from pos */
	size_t pos;
	bool paused, done, bounded;
	CURLcode result;
	long status;
	char query_id[48];
	char exc_tag[80]; /* X-ClickHouse-Exception-Tag: "__exception__<tag>" or "" */
	char exc_code[16]; /* X-ClickHouse-Exception-Code */
	char errbuf[CURL_ERROR_SIZE];
};

struct ch_cursor {
	struct source_cursor base; /* first */
	struct ch_conn *conn;
	const struct cfg_source *src;
	struct ch_req *req;
	bool pending, done;
	size_t n_fields;
	enum chw_type *types;
	struct chw_field *fields;
	struct arena arena;
	struct source_row row;
	bool grouped, int_key;
	size_t count_col;
	int since_col;
	/*
	 * The since column is a Float32: its text is the shortest that reads back as the
	 * Float32 (1.2345678), but `col >= 1.2345678` compares the column as a Float64
	 * (1.2345677614...), below it: the mark is the Float32's exact value instead.
	 */
	bool since_f32;
	uint64_t null_keys;
	const char *key_column;
	int last_code; /* the server's error code of a failed statement, or 0 */
	/* the current line, copied out of the request's buffer: driving the transfers (of
	 * this cursor or another on the same connection) may move that buffer while the
	 * row is still lent out */
	struct strbuf line;
};

/* ---- clickhouse.c ---- */

/* Load the column types of src's relation, then build its statement (sql_plan_build). */
enum jerr ch_build(struct ch_conn *c, const struct cfg_source *src, const struct source_read *read,
		   struct sql_plan *p, struct jerror *err) JOEY_WUR;
/* source_ops.check (source.h). */
enum jerr ch_check(void *conn, const struct cfg_source *src, struct jerror *err) JOEY_WUR;

/* ---- clickhouse_http.c ---- */

/* libcurl could not allocate a handle: out of memory, as xalloc handles it. */
JOEY_NORETURN void ch_curl_nomem(void);
/* The connection's HTTP side, once its options are read: libcurl initialised, the
 * credential headers (never in a URL), the multi handle. */
void ch_http_setup(struct ch_conn *c);
/* Start a POST of sql (copied by curl); bounded: a short statement (the server buffers
 * the answer, statementTimeout as max_execution_time). Free with ch_req_free. */
struct ch_req *ch_req_start(struct ch_conn *c, const char *sql, bool bounded);
void ch_req_free(struct ch_req *r);
/* Drive the transfers of r's connection until r has news (data, its end) or the watcher aborts. */
void ch_req_step(struct ch_req *r);
/* The whole answer of a short statement. */
void ch_req_wait(struct ch_req *r);
/* Ask the server to stop the statement query_id (borrowed; best effort, short). */
void ch_req_kill(struct ch_conn *c, const char *query_id);
/* The error of a finished or failed request r as a message of what (a sentence head),
 * with the server's message as detail and a hint; *code the server's error code (0: none). */
enum jerr ch_req_error(struct ch_req *r, const char *what, int *code, struct jerror *err);
/* Run a short statement; on JERR_OK its answer (TabSeparated, no header) in (*out)->body. */
enum jerr ch_run_short(struct ch_conn *c, const char *sql, const char *what, struct ch_req **out, int *code,
		       struct jerror *err) JOEY_WUR;
/* The next line of a finished short answer (NUL-terminated in place), or NULL. */
char *ch_short_line(struct ch_req *r, size_t *len);

/* ---- clickhouse_rows.c ---- */

/* source_ops.open_cursor (source.h). */
enum jerr ch_open_cursor(void *conn, const struct cfg_source *src, const struct source_read *read,
			 struct source_cursor **out, struct jerror *err) JOEY_WUR;

/* ---- clickhouse_sample.c ---- */

/* source_ops.sample and sample_query (source.h). */
enum jerr ch_sample(void *conn, const char *table, size_t limit, struct source_sample *out,
		    struct jerror *err) JOEY_WUR;
enum jerr ch_sample_query(void *conn, const char *query, size_t limit, struct source_sample *out,
			  struct jerror *err) JOEY_WUR;

#endif
