/*
 * snowflake_internal.h: what the pieces of the Snowflake connector share. Private to
 * snowflake.c (options, connect, check, open), snowflake_statement.c (authentication,
 * requests with retries, statement submit/poll, result partitions) and snowflake_rows.c
 * (answer cells -> values, the cursor, the body-alone decoder). The engine sees only
 * source_snowflake / source_snowflake_keypair (source.h) and warehouse_decode.h.
 *
 * Order of calls: sf_connect fills a struct sf_conn; sf_exec runs a statement into a
 * struct sf_result (metadata + partition 0); sf_result_next hands out its rows,
 * fetching partitions 1..n as needed; sf_result_release frees it. sf_cursor_ops read
 * a result as source rows.
 */
#ifndef JOEY_SOURCE_SNOWFLAKE_INTERNAL_H
#define JOEY_SOURCE_SNOWFLAKE_INTERNAL_H

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

#define SF_TRIES 6                /* per request: 429 / 5xx / transport */
#define SF_POLL_FIRST_MS 100
#define SF_POLL_MAX_MS 5000
#define SF_JWT_LIFETIME_S 3540    /* 59 minutes: Snowflake honours at most one hour */
#define SF_JWT_RENEW_S 3000

enum sf_type {
	SF_FIXED, SF_REAL, SF_TEXT, SF_BOOLEAN, SF_DATE, SF_TIME, SF_TS_NTZ, SF_TS_LTZ, SF_TS_TZ,
	SF_BINARY, SF_VARIANT, SF_ARRAY, SF_OBJECT, SF_OTHER,
};

struct sf_col {
	enum sf_type type;
	int scale;
	const char *name; /* borrowed from the metadata */
};

struct sf_conn {
	const struct cfg_app *app;
	char *base;                  /* https://<account>.snowflakecomputing.com or options.endpoint */
	char *database, *schema, *warehouse, *role; /* resolved (upper-cased unless quoted) */
	char *user;                  /* as configured, for messages */
	char *jwt_subject;           /* ACCOUNT.USER */
	bool keypair;
	EVP_PKEY *key;
	struct strbuf fingerprint;
	struct strbuf bearer;        /* the JWT or token (secret) */
	int64_t jwt_at;              /* when the JWT was minted (s), 0: none */
	const char *token_type;      /* KEYPAIR_JWT, PROGRAMMATIC_ACCESS_TOKEN, OAUTH */
	int64_t timeout_s;           /* statementTimeout */
	struct whttp http;
	struct source_watch watch;
};

/* A statement's result: metadata plus the current partition. */
struct sf_result {
	json_t *meta;                /* resultSetMetaData (owned) */
	char handle[128];
	struct sf_col *cols;
	size_t n_cols;
	size_t n_parts, part;        /* partitions; part: the one in data */
	json_t *data;                /* rows of partition `part` (owned) */
	size_t next;                 /* next row of data */
	bool has_total;              /* numRows was said: the end checks the rows read against it */
	uint64_t total, seen;        /* numRows; rows handed out */
};

struct sf_cursor {
	struct wrows w;              /* first: its base is the source_cursor */
	struct sf_conn *conn;
	struct sf_result res;
};

/* Cell i of an answer row as text, NULL when it is not a string (borrowed from row). */
static inline const char *sf_cell_str(json_t *row, size_t i)
{
	return json_string_value(json_array_get(row, i));
}

/* ---- snowflake_statement.c ---- */

/* The watcher's cancel (source.h): stops the HTTP call in progress. */
void sf_cancel(struct source_watch *w);

/*
 * Run sql with binds (borrowed); on success *r holds its metadata and first partition,
 * on failure *r is empty. what (borrowed) names the statement in messages
 * ("source \"users\""). A stopped statement is cancelled on the server, best effort.
 */
enum jerr sf_exec(struct sf_conn *c, const char *sql, const struct sql_bind *binds, size_t n, struct sf_result *r,
		  const char *what, struct jerror *err) JOEY_WUR;

/* Take the metadata and partition 0 of a finished statement's ResultSet (body, borrowed). */
enum jerr sf_result_take(struct sf_result *r, const struct strbuf *body, const char *what,
			 struct jerror *err) JOEY_WUR;

/*
 * The next row of r into *row (borrowed from r until the next call; NULL at the end),
 * fetching the next partition when needed. A failed partition fails the read.
 */
enum jerr sf_result_next(struct sf_conn *c, struct sf_result *r, json_t **row, const char *what,
			 struct jerror *err) JOEY_WUR;

/* Free what r holds and zero it (a zeroed r is fine). */
void sf_result_release(struct sf_result *r);

/* ---- snowflake_rows.c ---- */

/* Read a cursor's result as source rows (struct sf_cursor). */
extern const struct source_cursor_ops sf_cursor_ops;

#endif
