/*
 * postgres_internal.h: what the pieces of the PostgreSQL/Redshift connector share. Not
 * part of the connector interface: the engine uses source_postgres / source_redshift
 * (source.h) alone.
 *
 *   postgres.c        dialects, connection, check, describe, sample, ops tables
 *   postgres_rows.c   the cursor: open (plan, read-only transaction, first row), next,
 *                     close; bound statements in single-row mode
 *   postgres_copy.c   statements without values as COPY (...) TO STDOUT text
 *
 * Order of calls for a read: pgsrc_open_cursor -> pgsrc_begin -> pgsrc_start_copy or
 * the bound statement -> rows (pgsrc_fetch_copy or single-row results) -> close
 * (pgsrc_drain, pgsrc_rollback).
 */
#ifndef JOEY_SOURCE_POSTGRES_INTERNAL_H
#define JOEY_SOURCE_POSTGRES_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "base/arena.h"
#include "base/error.h"
#include "source/source.h"
#include "source/sqlcursor.h"
#include "source/sqlgen.h"

struct pg_conn {
	PGconn *pg;
	const struct cfg_app *app;
	const struct sql_dialect *d; /* source_postgres_dialect or rs_dialect */
	bool redshift; /* a redshift app: no COPY, no session options Redshift lacks */
	bool strict;   /* JOEY_REDSHIFT_STRICT=1 (tests): every statement is linted first */
	char *host, *port, *database, *schema;
	char *config_dir; /* to open another connection like this one */
	bool streaming;   /* a cursor's query runs on pg: other cursors need their own */
	/* statementTimeout and stopping (source.h): every wait on pg is watched */
	struct source_watch watch;
	PGcancel *cancel; /* for the watcher's PQcancel */
};

/* One field of the current row: text (NUL-terminated) or NULL. */
struct pg_field {
	const char *s;
	size_t len;
	bool null;
};

struct pg_cursor {
	struct source_cursor base; /* first */
	struct pg_conn *conn;
	struct sql_cursor_state rs; /* src, the plan's shape, the current row and its arena */
	bool copy;         /* rows from COPY ... TO STDOUT, else single-row mode */
	PGresult *res;     /* single-row mode: the current row */
	char *copy_row;    /* COPY: the current row (PQfreemem), fields point into it */
	bool pending;      /* the current row is the first, fetched by open_cursor */
	struct pg_conn *own; /* the cursor's own connection (conn), or NULL */
	bool done;
	bool in_tx;        /* pgsrc_begin's transaction is open on conn: rolled back at close */
	int n_fields;
	Oid *types;        /* per column, from the statement's description */
	struct pg_field *fields; /* the current row */
	char sqlstate[6]; /* of the last error */
};

/* ---- postgres.c ---- */

/* jerror_detail of "<what>: " (what NULL: none) and the server's msg (borrowed) on one line. */
void pgsrc_detail(struct jerror *err, const char *what, const char *msg);
/* Redshift strict mode: abort naming what sql (borrowed) uses that Redshift lacks. */
void pgsrc_guard(const struct pg_conn *c, const char *sql);
/* Run a short parameterised statement synchronously (values borrowed); the caller
 * PQclears the result; NULL means no connection. */
PGresult *pgsrc_exec(struct pg_conn *c, const char *sql, int n, const char *const *values);
/* Open the read-only transaction a statement with the user's query text runs in
 * (what: the source or app id, for messages); end it with pgsrc_rollback. */
enum jerr pgsrc_begin(struct pg_conn *c, const char *what, struct jerror *err) JOEY_WUR;
void pgsrc_rollback(struct pg_conn *c);
/* source_ops.connect / .disconnect / .check (source.h). */
enum jerr pgsrc_connect(const struct cfg_app *app, const char *config_dir, void **out,
			struct jerror *err) JOEY_WUR;
void pgsrc_disconnect(void *conn);
enum jerr pgsrc_check(void *conn, const struct cfg_source *src, struct jerror *err) JOEY_WUR;

/* ---- postgres_rows.c ---- */

/* source_ops.open_cursor (source.h). */
enum jerr pgsrc_open_cursor(void *conn, const struct cfg_source *src, const struct source_read *read,
			    struct source_cursor **out, struct jerror *err) JOEY_WUR;
/* The cursor's error for a failed result res (borrowed; NULL: the connection's), with
 * its SQLSTATE kept in cur->sqlstate. Returns JERR_SOURCE. */
enum jerr pgsrc_result_error(struct pg_cursor *cur, PGresult *res, struct jerror *err);
/* Read what is left of the running statement's results, leaving the connection idle;
 * the first error becomes the cursor's unless rc already is one. Returns rc or it. */
enum jerr pgsrc_drain(struct pg_cursor *cur, enum jerr rc, struct jerror *err);
/* The row layout, from the statement's description or its first row (borrowed). */
enum jerr pgsrc_set_columns(struct pg_cursor *cur, const PGresult *res, struct jerror *err);
/* A statement could not be sent: JERR_SOURCE with libpq's message. */
enum jerr pgsrc_send_failed(struct pg_cursor *cur, struct jerror *err);

/* ---- postgres_copy.c ---- */

/* Prepare and describe p's statement (no bound values), then start it as COPY TO STDOUT. */
enum jerr pgsrc_start_copy(struct pg_cursor *cur, const struct sql_plan *p, struct jerror *err);
/* The next COPY row into cur->fields (*got), or the end of the data (the result drained). */
enum jerr pgsrc_fetch_copy(struct pg_cursor *cur, bool *got, struct jerror *err);

#endif
