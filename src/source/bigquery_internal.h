/*
 * bigquery_internal.h: what the pieces of the BigQuery connector share. Private to
 * bigquery.c (options, connect, column types, check, open), bigquery_statement.c (the
 * access token, requests with retries, jobs.query and its pages) and bigquery_rows.c
 * (answer cells -> values, the cursor, the body-alone decoder). The engine sees only
 * source_bigquery (source.h) and warehouse_decode.h.
 *
 * Order of calls: bq_connect fills a struct bq_conn (bq_token mints its first access
 * token); bq_exec runs a query into a struct bq_result (schema + first page);
 * bq_result_next hands out its rows, reading further pages with pageToken;
 * bq_result_release frees it. bq_cursor_ops read a result as source rows.
 */
#ifndef JOEY_SOURCE_BIGQUERY_INTERNAL_H
#define JOEY_SOURCE_BIGQUERY_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "base/compat.h"
#include "base/error.h"
#include "base/strbuf.h"
#include "config/config.h"
#include "source/source.h"
#include "source/sqlgen.h"
#include "source/whttp.h"
#include "source/wrows.h"

#define BQ_TRIES 6
#define BQ_PAGE_ROWS 10000
#define BQ_WAIT_MS 10000
#define BQ_TOKEN_URL "https://oauth2.googleapis.com/token"
#define BQ_API "https://bigquery.googleapis.com/bigquery/v2"
#define BQ_SCOPE "https://www.googleapis.com/auth/bigquery"

enum bq_type { BQ_INT, BQ_FLOAT, BQ_NUMERIC, BQ_BOOL, BQ_STRING, BQ_BYTES, BQ_DATE, BQ_DATETIME, BQ_TIME,
	       BQ_TIMESTAMP, BQ_RECORD, BQ_OTHER };

struct bq_col {
	enum bq_type type;
	bool repeated;
	const char *name; /* borrowed from the schema */
};

/* The column types of one relation (a table, or a query source's query). */
struct bq_types {
	char *key;        /* the table name or query text */
	char **names, **types; /* GoogleSQL parameter type names: INT64, STRING, ... */
	size_t n;
	struct bq_types *next;
};

struct bq_conn {
	const struct cfg_app *app;
	char *api, *token_url;
	char *project, *dataset, *location, *email;
	EVP_PKEY *key;
	struct strbuf token;  /* the access token (secret) */
	int64_t token_until;  /* s: renew before then */
	int64_t timeout_s;
	struct bq_types *types;
	struct whttp http;
	struct source_watch watch;
};

struct bq_result {
	json_t *schema;       /* owned */
	struct bq_col *cols;
	size_t n_cols;
	char job[256], loc[64];
	char *page_token;     /* the next page, NULL: none */
	size_t page;          /* pages read */
	json_t *rows;         /* the current page's rows (owned) */
	size_t next;
	bool has_total;       /* totalRows was said: the end checks the rows read against it */
	uint64_t total, seen; /* totalRows; rows handed out */
};

struct bq_cursor {
	struct wrows w;       /* first: its base is the source_cursor */
	struct bq_conn *conn;
	struct bq_result res;
};

/* ---- bigquery_statement.c ---- */

/* The watcher's cancel (source.h): stops the HTTP call in progress. */
void bq_cancel(struct source_watch *w);

/* "HTTP <status> <reason>: <message>" of Google's error object in body (borrowed) as err's detail. */
void bq_detail(struct jerror *err, long status, const struct strbuf *body);

/*
 * The access token for the next request: exchanged for a signed JWT at the token
 * endpoint when there is none, it is about to expire, or force. On failure err says
 * why (a refused key, with a hint) and the old token stays.
 */
enum jerr bq_token(struct bq_conn *c, bool force, struct jerror *err) JOEY_WUR;

/*
 * One API request (url, body borrowed; body NULL: none) with retries: 429, 5xx,
 * rateLimitExceeded/backendError/internalError again (bounded, with backoff), a 401 once
 * with a new access token. Returns JERR_OK with any other final status in resp.
 */
enum jerr bq_request(struct bq_conn *c, const char *method, const char *url, const char *body,
		     struct whttp_resp *resp, const char *what, struct jerror *err) JOEY_WUR;

/* A failed call: err says what, in plain words where the reason is known. Returns JERR_SOURCE. */
enum jerr bq_fail(struct bq_conn *c, long status, const struct strbuf *body, const char *what, struct jerror *err);

/* The type of a schema type name (NULL: BQ_OTHER). */
enum bq_type bq_type_of(const char *t);

/*
 * Run sql with typed params (ptypes[i] the GoogleSQL type of binds[i]; all borrowed);
 * dry: validate only (*r gets the schema). On success *r holds the schema and the
 * first page; on failure *r is empty.
 */
enum jerr bq_exec(struct bq_conn *c, const char *sql, const struct sql_bind *binds, const char *const *ptypes, size_t n,
		  bool dry, struct bq_result *r, const char *what, struct jerror *err) JOEY_WUR;

/* Take a complete QueryResponse page j (borrowed): rows, pageToken (and the schema the first time). */
enum jerr bq_take_page(struct bq_result *r, json_t *j, const char *what, struct jerror *err) JOEY_WUR;

/*
 * The next row's cells into *cells (borrowed from r until the next call; NULL at the
 * end), reading the next page when needed. A failed page fails the read.
 */
enum jerr bq_result_next(struct bq_conn *c, struct bq_result *r, json_t **cells, const char *what,
			 struct jerror *err) JOEY_WUR;

/* Free what r holds and zero it (a zeroed r is fine). */
void bq_result_release(struct bq_result *r);

/* ---- bigquery_rows.c ---- */

/* A scalar cell s (borrowed) of type t as text into sb: timestamps ISO 8601 UTC, the rest as sent. */
void bq_cell_text(enum bq_type t, const char *s, struct strbuf *sb);

/* Read a cursor's result as source rows (struct bq_cursor). */
extern const struct source_cursor_ops bq_cursor_ops;

#endif
