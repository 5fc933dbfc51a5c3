/*
 * postgres.c: the PostgreSQL and Redshift connector (libpq): one ordered, aggregated
 * query per source, streamed. This file: the dialects, the connection (options,
 * certificates, connect with retries, session settings), check, describe, sample and
 * the ops tables. Rows are read by postgres_rows.c (single-row mode, cursors) and
 * postgres_copy.c (COPY text); they share postgres_internal.h. The connection owns its
 * libpq handle and option copies; the app and sources are borrowed from the config.
 */
#include <ctype.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "base/log.h"
#include "base/xalloc.h"
#include "config/paths.h"
#include "source/postgres_internal.h"
#include "source/pgmsg.h"
#include "source/source.h"
#include "source/sqlgen.h"

/*
 * Design note. The statement comes from sqlgen.c with the PostgreSQL dialect: $N
 * parameters sent as untyped text (the server infers each type from the column it is
 * compared with), picks as (ARRAY_AGG(col ORDER BY ...))[1], arrays as json_agg, text
 * keys ordered COLLATE "C" (bytewise on UTF-8), ties broken by ctid. The session is
 * pinned at connect time: client_encoding UTF8 (the server converts other database
 * encodings), TimeZone UTC, DateStyle ISO, extra_float_digits 3 (a server, database or
 * role with 0 printed a double with 15 digits and a real with 6, rounded up as often as
 * down: such a mark skipped the row that set it; any value above 0 is the exact
 * shortest text on PostgreSQL 12 and later, 3 the exact 17 or 9 digits before),
 * search_path = the app's schema, and default_transaction_read_only. A statement with the user's query text (check,
 * cursor) runs in a read-only transaction that is always rolled back (pgsrc_begin), so a
 * query source calling nextval() fails and one calling lo_create() or lo_import()
 * leaves nothing behind. On PostgreSQL 14 and later client_connection_check_interval
 * makes the server notice within 10 s that joey is gone (kill -9) and stop the
 * statement. Every wait on the server is watched (source.h): the app's
 * statementTimeout limits each wait, and a stop cancels the statement (PQcancel).
 *
 * Rows stream one of two ways, both filling the same pg_field array with the types'
 * text output (COPY text is each value's output function text, escaped):
 *   - a statement without bound values (full reads of unfiltered sources, the bulk
 *     case) is parsed and described (unnamed prepared statement: a broken query fails
 *     there, and the column types are known), then run as COPY (<statement>) TO STDOUT
 *     in text format. libpq hands over one malloc'd buffer per row, split in place by
 *     copy_split, instead of building a PGresult per row (that was a fifth of a 1M-row
 *     plan's time);
 *   - a statement with values (filters, a since mark) is sent with them and read in
 *     single-row mode, one PGresult per row. COPY takes no parameters and values are
 *     never pasted into SQL; reading them from the session (set_config, then
 *     current_setting in the statement) would be safe, but the server evaluates those
 *     per row where it plans bound values as constants (measured on 1M rows: an IN
 *     list of 20 values 15x slower, one comparison 2x; no hashed IN).
 *
 * A streaming connection carries one cursor at a time: a cursor opened while another
 * streams on the app's connection (several sources of one app, read side by side) gets
 * a connection of its own, closed with it. (Any other statement on a streaming
 * connection would make libpq silently discard its rows.) open_cursor waits for the
 * first row, so a missing table/column or permission error is reported by open_cursor
 * (naming the source); each next() holds one row, released on the following call.
 * Closing early cancels the query and drains the connection.
 */

#define PG_CONNECT_TRIES 3
#define PG_RETRY_BASE_MS 250

static const char *const pg_source_types[] = {
	"postgres-import-table", "postgres-import-query", "postgres-table-import",
	"postgres-query-import", NULL,
};
static const char *const pg_app_options[] = {
	"host", "port", "database", "schema", "user", "password",
	"ssl", "ssl_cert", "ssl_key", "ssl_ca", "sslmode", "statementTimeout", NULL,
};
static const char *const pg_required_options[] = { "database", NULL };

static void pg_table_info(void *conn, const char *table, const char *K, bool int_key,
			  bool *natural, const char **rowid_col);
static bool pg_text_column(void *conn, const char *table, const char *column);
static void pg_since_number(struct strbuf *sb, const char *col);

static const char *const rs_source_types[] = {
	"redshift-import-table", "redshift-import-query", "redshift-table-import",
	"redshift-query-import", NULL,
};
static const char *const rs_app_options[] = {
	"host", "port", "database", "schema", "user", "password",
	"ssl", "ssl_cert", "ssl_key", "ssl_ca", "sslmode", "statementTimeout", NULL,
};

/* The PostgreSQL dialect; public (source.h) for the warehouse diff's statements. */
const struct sql_dialect source_postgres_dialect = {
	.name = "postgres",
	.quote = '"',
	.params = SQL_PARAM_DOLLAR,
	.pick = SQL_PICK_ORDERED_AGG,
	.text_type = "TEXT",
	.int_type = "BIGINT",
	.key_collate = "",
	.text_order = " COLLATE \"C\"",
	.natural_text_order = " COLLATE \"C\"",
	.like_escape = " ESCAPE '\\'",
	.true_sql = "TRUE",
	.false_sql = "FALSE",
	.concat_fn = false,
	.cast_text_params = true,
	.avg_cast = NULL,
	.asc_nulls = " NULLS FIRST",
	.desc_nulls = " NULLS LAST",
	.table_info = pg_table_info,
	.text_column = pg_text_column,
	.since_number = pg_since_number,
};

/*
 * Redshift (warehouses.md 4.2): the PostgreSQL statement minus what Redshift lacks. No
 * ARRAY_AGG/json_agg/FILTER: picks are ROW_NUMBER() windows read through
 * MAX(CASE WHEN w = 1 THEN CAST(col AS VARCHAR(65535)) END) (no MAX(boolean); the text
 * is coerced like any other), with the NULL order spelled out (no NULLS FIRST/LAST
 * inside OVER) and ties broken by the value (no ctid); arrays are refused; text casts
 * are VARCHAR(65535) (TEXT is VARCHAR(256) there); no COLLATE (Redshift compares
 * bytewise). Rows are always read in single-row mode: Redshift has no COPY TO STDOUT.
 */
static const struct sql_dialect rs_dialect = {
	.name = "Redshift",
	.quote = '"',
	.params = SQL_PARAM_DOLLAR,
	.pick = SQL_PICK_WINDOW,
	.text_type = "VARCHAR(65535)",
	.int_type = "BIGINT",
	.key_collate = "",
	.text_order = "",
	.natural_text_order = "",
	.like_escape = "", /* '\\' is LIKE's default; Redshift literals may treat it as an escape */
	.true_sql = "TRUE",
	.false_sql = "FALSE",
	.concat_fn = false,
	.cast_text_params = true,
	.avg_cast = NULL,
	.asc_nulls = "",
	.desc_nulls = "",
	.table_info = pg_table_info,
	.text_column = pg_text_column,
	.since_number = pg_since_number,
	.no_arrays = true,
	.null_rank = true,
	.pick_cast = "VARCHAR(65535)",
	.value_tiebreak = true,
};

/* ---- helpers ---- */

void pgsrc_detail(struct jerror *err, const char *what, const char *msg)
{
	struct strbuf sb = STRBUF_INIT;
	if (what)
		strbuf_addf(&sb, "%s: ", what);
	pgmsg_add(&sb, msg);
	jerror_detail(err, "%s", sb.buf);
	strbuf_release(&sb);
}

/* A boolean option: "true" (any case) or "1". */
static bool opt_true(const struct cfg_app *app, const char *key)
{
	const char *s = source_option_text(app, key);
	return s && (!strcasecmp(s, "true") || !strcmp(s, "1"));
}

/*
 * Redshift strict mode (tests, JOEY_REDSHIFT_STRICT=1): a statement that uses something
 * Redshift lacks (sql_redshift_lint) is a bug in joey, so the process stops with the
 * construct and the statement rather than let a PostgreSQL server accept it.
 */
void pgsrc_guard(const struct pg_conn *c, const char *sql)
{
	const char *bad = c->strict ? sql_redshift_lint(sql) : NULL;
	if (!bad)
		return;
	log_error("app \"%s\": Redshift strict mode: the statement uses %s, which Redshift "
		  "lacks: %s", c->app->id, bad, sql);
	abort();
}

/* Run a short parameterised statement synchronously; NULL result means no connection. */
PGresult *pgsrc_exec(struct pg_conn *c, const char *sql, int n, const char *const *values)
{
	pgsrc_guard(c, sql);
	source_wait_begin(&c->watch);
	PGresult *res = PQexecParams(c->pg, sql, n, NULL, values, NULL, NULL, 0);
	source_wait_end(&c->watch);
	return res;
}

/* The watcher's cancel (source.h): PQcancel is safe while another thread waits on pg. */
static void pg_cancel_statement(struct source_watch *w)
{
	struct pg_conn *c = (struct pg_conn *)(void *)((char *)w - offsetof(struct pg_conn, watch));
	char buf[256];
	if (c->cancel && !PQcancel(c->cancel, buf, sizeof(buf)))
		log_warn("app \"%s\": could not cancel the running statement: %s", c->app->id, buf);
}

/*
 * A statement with the user's query text runs in a read-only transaction that is
 * always rolled back (pgsrc_rollback): read-only refuses writes (nextval, DML, DDL), the
 * rollback undoes those PostgreSQL lets through in a read-only transaction
 * (lo_create, lo_import), and a query cannot turn either off for the statements after
 * it (set_config of default_transaction_read_only would outlive a plain statement).
 */
enum jerr pgsrc_begin(struct pg_conn *c, const char *what, struct jerror *err)
{
	PGresult *res = pgsrc_exec(c, "BEGIN TRANSACTION READ ONLY", 0, NULL);
	enum jerr rc = JERR_OK;
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		rc = jerror_set(err, JERR_SOURCE, "source \"%s\": cannot start a read-only transaction", what);
		pgsrc_detail(err, NULL, res ? PQresultErrorMessage(res) : PQerrorMessage(c->pg));
		rc = source_watch_rc(&c->watch, rc, "source", what, err);
	}
	PQclear(res);
	return rc;
}

/* End pgsrc_begin's transaction, undoing whatever the statements in it wrote. */
void pgsrc_rollback(struct pg_conn *c)
{
	PGresult *res = pgsrc_exec(c, "ROLLBACK", 0, NULL);
	if (PQresultStatus(res) != PGRES_COMMAND_OK && PQstatus(c->pg) == CONNECTION_OK)
		log_warn("app \"%s\": could not end a read-only transaction: %s", c->app->id,
			 res ? PQresultErrorMessage(res) : PQerrorMessage(c->pg));
	PQclear(res);
}

/*
 * A certificate option (Grouparoo passes PEM text to node-postgres; libpq wants a
 * file): PEM text is written to a private temporary file whose path goes to *path
 * (the caller unlinks *tmp); anything else is a path, relative to the project root.
 */
static enum jerr cert_file(const struct cfg_app *app, const char *key, const char *config_dir,
			   struct strbuf *path, bool *tmp, struct jerror *err)
{
	const char *v = source_option_text(app, key);
	*tmp = false;
	if (!v)
		return JERR_OK;
	if (!strncmp(v, "-----BEGIN", 10)) {
		const char *dir = getenv("TMPDIR");
		strbuf_addf(path, "%s/joey-pgcert-XXXXXX", dir && *dir ? dir : "/tmp");
		int fd = mkstemp(path->buf);
		size_t n = strlen(v);
		if (fd < 0 || write(fd, v, n) != (ssize_t)n) {
			if (fd >= 0) {
				close(fd);
				unlink(path->buf);
			}
			return jerror_set(err, JERR_SOURCE,
					  "app \"%s\": cannot write options.%s to a temporary file",
					  app->id, key);
		}
		close(fd);
		*tmp = true;
		return JERR_OK;
	}
	config_add_path(path, config_dir, v);
	return JERR_OK;
}

/* ---- connection ---- */

/* The certificate options as files for libpq (cert_file); the temporary ones unlinked by
 * certs_release. */
struct pg_certs {
	struct strbuf cert, key, ca;
	bool cert_tmp, key_tmp, ca_tmp;
};

static enum jerr certs_write(const struct cfg_app *app, const char *config_dir, struct pg_certs *k,
			     struct jerror *err)
{
	enum jerr rc;
	if ((rc = cert_file(app, "ssl_cert", config_dir, &k->cert, &k->cert_tmp, err)) ||
	    (rc = cert_file(app, "ssl_key", config_dir, &k->key, &k->key_tmp, err)) ||
	    (rc = cert_file(app, "ssl_ca", config_dir, &k->ca, &k->ca_tmp, err)))
		return rc;
	return JERR_OK;
}

static void certs_release(struct pg_certs *k)
{
	if (k->cert_tmp)
		unlink(k->cert.buf);
	if (k->key_tmp)
		unlink(k->key.buf);
	if (k->ca_tmp)
		unlink(k->ca.buf);
	strbuf_release(&k->cert);
	strbuf_release(&k->key);
	strbuf_release(&k->ca);
}

/* The app's options into c (host, port, database, schema; copies), checked. */
static enum jerr read_options(struct pg_conn *c, const struct cfg_app *app, const char *config_dir,
			      int64_t *timeout_ms, struct jerror *err)
{
	enum jerr rc;
	c->app = app;
	c->redshift = app->type && !strcmp(app->type, "redshift");
	c->d = c->redshift ? &rs_dialect : &source_postgres_dialect;
	c->strict = c->redshift && getenv("JOEY_REDSHIFT_STRICT") && !strcmp(getenv("JOEY_REDSHIFT_STRICT"), "1");
	c->host = xstrdup(source_option_text(app, "host") ? source_option_text(app, "host") : "localhost");
	/* Redshift listens on 5439; PGPORT still wins as it did for node-postgres */
	const char *def_port = c->redshift ? (getenv("PGPORT") && *getenv("PGPORT") ? getenv("PGPORT") : "5439")
					   : "5432";
	c->port = xstrdup(source_option_text(app, "port") ? source_option_text(app, "port") : def_port);
	c->database = xstrdup(source_option_text(app, "database") ? source_option_text(app, "database") : "");
	c->schema = xstrdup(source_option_text(app, "schema") ? source_option_text(app, "schema") : "public");
	c->config_dir = xstrdup(config_dir ? config_dir : "");
	if (!*c->database)
		return jerror_set(err, JERR_CONFIG, "app \"%s\": option \"database\" is required",
				  app->id);
	if ((rc = source_timeout_option(app, timeout_ms, err)))
		return rc;
	for (const char *p = c->port; *p; p++) {
		if (!isdigit((unsigned char)*p))
			return jerror_set(err, JERR_CONFIG, "app \"%s\": option \"port\" is not a port "
					  "number: \"%s\"", app->id, c->port);
	}
	return JERR_OK;
}

/*
 * libpq's keyword/value pairs (borrowed from c, app and k) into keys/vals (room for
 * PG_CONNINFO_MAX, NULL-terminated): user text is never pasted into a conninfo string.
 */
#define PG_CONNINFO_MAX 20
static void conninfo(const struct pg_conn *c, const struct cfg_app *app, const struct pg_certs *k,
		     const char **keys, const char **vals)
{
	int n = 0;
	keys[n] = "host", vals[n++] = c->host;
	keys[n] = "port", vals[n++] = c->port;
	keys[n] = "dbname", vals[n++] = c->database;
	if (source_option_text(app, "user"))
		keys[n] = "user", vals[n++] = source_option_text(app, "user");
	if (source_option_text(app, "password"))
		keys[n] = "password", vals[n++] = source_option_text(app, "password");
	/* Grouparoo: ssl=true means encrypted without verifying the server (sslmode=require) */
	if (source_option_text(app, "sslmode"))
		keys[n] = "sslmode", vals[n++] = source_option_text(app, "sslmode");
	else if (opt_true(app, "ssl"))
		keys[n] = "sslmode", vals[n++] = "require";
	if (k->cert.len)
		keys[n] = "sslcert", vals[n++] = k->cert.buf;
	if (k->key.len)
		keys[n] = "sslkey", vals[n++] = k->key.buf;
	if (k->ca.len)
		keys[n] = "sslrootcert", vals[n++] = k->ca.buf;
	keys[n] = "client_encoding", vals[n++] = "UTF8";
	if (!c->redshift) /* Redshift: SET after connecting (no startup options, no IntervalStyle) */
		keys[n] = "options", vals[n++] = "-c TimeZone=UTC -c DateStyle=ISO,YMD -c IntervalStyle=iso_8601 "
						 "-c extra_float_digits=3 -c default_transaction_read_only=on";
	keys[n] = "application_name", vals[n++] = "joey";
	keys[n] = "connect_timeout", vals[n++] = "10";
	keys[n] = NULL, vals[n] = NULL;
}

/* The failure to connect, after tries, with libpq's msg (borrowed) and a hint. */
static enum jerr connect_error(const struct pg_conn *c, const char *msg, int tries, struct jerror *err)
{
	jerror_set(err, JERR_SOURCE,
		   "app \"%s\": cannot connect to %s at %s:%s, database "
		   "\"%s\"",
		   c->app->id, c->redshift ? "Redshift" : "PostgreSQL", c->host, c->port,
		   c->database);
	pgsrc_detail(err, NULL, msg);
	if (c->redshift && strstr(msg, "authentication method 13"))
		jerror_hint(err, "the user's password is stored as a SHA-256 hash, which "
				 "libpq cannot answer: reset it as an MD5 or plain password "
				 "(ALTER USER ... PASSWORD 'md5...')");
	else if (strstr(msg, "password authentication failed"))
		jerror_hint(err, "the server refused the user/password pair: check the app's "
				 "\"user\" and \"password\" options");
	else if (strstr(msg, "database") && strstr(msg, "does not exist"))
		jerror_hint(err, "no database \"%s\" on that server: check the app's "
				 "\"database\" option", c->database);
	else if (pgmsg_permanent(msg))
		jerror_hint(err, "check the app's user, password and database options");
	else
		jerror_hint(err, "gave up after %d tries; check that the server is "
				 "running and reachable, and the app's host and port",
			    tries);
	return JERR_SOURCE;
}

/* c->pg connected with keys/vals, up to PG_CONNECT_TRIES tries with a growing pause. */
static enum jerr connect_retrying(struct pg_conn *c, const char *const *keys, const char *const *vals,
				  struct jerror *err)
{
	long delay = PG_RETRY_BASE_MS;
	int tries = 0;
	for (;;) {
		tries++;
		c->pg = PQconnectdbParams(keys, vals, 0);
		if (c->pg && PQstatus(c->pg) == CONNECTION_OK)
			return JERR_OK;
		const char *msg = c->pg ? PQerrorMessage(c->pg) : "out of memory";
		if (tries >= PG_CONNECT_TRIES || pgmsg_permanent(msg))
			return connect_error(c, msg, tries, err);
		log_warn("app \"%s\": cannot connect to %s at %s:%s (try %d of %d), "
			 "retrying in %ld ms",
			 c->app->id, c->redshift ? "Redshift" : "PostgreSQL", c->host, c->port, tries,
			 PG_CONNECT_TRIES, delay);
		PQfinish(c->pg);
		c->pg = NULL;
		source_sleep_ms(delay);
		delay *= 2;
	}
}

/* The session pinned after connecting: Redshift's time zone and date style, the schema,
 * and on PostgreSQL 14+ client_connection_check_interval. */
static enum jerr set_session(struct pg_conn *c, struct jerror *err)
{
	const struct cfg_app *app = c->app;
	enum jerr rc = JERR_OK;
	PGresult *res = NULL;

	if (c->redshift) {
		/* what the startup options set for PostgreSQL */
		res = pgsrc_exec(c, "SET TimeZone TO 'UTC'", 0, NULL);
		if (PQresultStatus(res) == PGRES_COMMAND_OK) {
			PQclear(res);
			res = pgsrc_exec(c, "SET DateStyle TO 'ISO, YMD'", 0, NULL);
		}
		if (PQresultStatus(res) != PGRES_COMMAND_OK) {
			rc = jerror_set(err, JERR_SOURCE, "app \"%s\": cannot set the session's time zone "
					"and date style", app->id);
			pgsrc_detail(err, NULL, PQerrorMessage(c->pg));
			goto out;
		}
		PQclear(res);
		res = NULL;
	}
	/* the schema tables are looked up in */
	const char *sp[1] = { c->schema };
	res = pgsrc_exec(c, "SELECT pg_catalog.set_config('search_path', "
			    "pg_catalog.quote_ident($1), false)", 1, sp);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		rc = jerror_set(err, JERR_SOURCE, "app \"%s\": cannot select schema \"%s\"", app->id,
				c->schema);
		pgsrc_detail(err, NULL, PQerrorMessage(c->pg));
		goto out;
	}
	if (!c->redshift && PQserverVersion(c->pg) >= 140000) {
		/* the server checks every 10 s that joey is still there while a statement runs */
		PQclear(res);
		res = pgsrc_exec(c, "SET client_connection_check_interval = 10000", 0, NULL);
		if (PQresultStatus(res) != PGRES_COMMAND_OK)
			log_warn("app \"%s\": could not set client_connection_check_interval: %s", app->id,
				 PQresultErrorMessage(res));
	}
out:
	PQclear(res);
	return rc;
}

enum jerr pgsrc_connect(const struct cfg_app *app, const char *config_dir, void **out,
			struct jerror *err)
{
	struct pg_conn *c = xcalloc(1, sizeof(*c));
	struct pg_certs certs = { STRBUF_INIT, STRBUF_INIT, STRBUF_INIT, false, false, false };
	const char *keys[PG_CONNINFO_MAX], *vals[PG_CONNINFO_MAX];
	int64_t timeout_ms = 0;
	enum jerr rc;

	*out = NULL;
	if ((rc = read_options(c, app, config_dir, &timeout_ms, err)) ||
	    (rc = certs_write(app, config_dir, &certs, err)))
		goto out;
	conninfo(c, app, &certs, keys, vals);
	if ((rc = connect_retrying(c, keys, vals, err)) || (rc = set_session(c, err)))
		goto out;
	c->cancel = PQgetCancel(c->pg);
	source_watch_register(&c->watch, pg_cancel_statement, timeout_ms, app->id);
	*out = c;
	c = NULL;
out:
	certs_release(&certs);
	pgsrc_disconnect(c);
	return rc;
}

void pgsrc_disconnect(void *conn)
{
	struct pg_conn *c = conn;
	if (!c)
		return;
	source_watch_unregister(&c->watch);
	if (c->cancel)
		PQfreeCancel(c->cancel);
	PQfinish(c->pg);
	free(c->host);
	free(c->port);
	free(c->database);
	free(c->schema);
	free(c->config_dir);
	free(c);
}

/* ---- dialect ---- */

/* The table's type and column's data_type of table (one row if the table exists). */
static PGresult *pg_column_info(struct pg_conn *c, const char *table, const char *column)
{
	const char *v[3] = { c->schema, table, column };
	/* Redshift folds quoted names to lower case (unless enable_case_sensitive_identifier) */
	return pgsrc_exec(c,
			  c->redshift
				  ? "SELECT t.table_type, c.data_type FROM information_schema.tables t "
				    "LEFT JOIN information_schema.columns c ON c.table_schema = "
				    "t.table_schema AND c.table_name = t.table_name AND c.column_name IN (CAST($3 AS VARCHAR(128)), lower(CAST($3 AS VARCHAR(128)))) "
				    "WHERE t.table_schema = $1 AND t.table_name IN (CAST($2 AS VARCHAR(128)), lower(CAST($2 AS VARCHAR(128))))"
				  : "SELECT t.table_type, c.data_type FROM information_schema.tables t "
				    "LEFT JOIN information_schema.columns c ON c.table_schema = "
				    "t.table_schema AND c.table_name = t.table_name AND c.column_name = $3 "
				    "WHERE t.table_schema = $1 AND t.table_name = $2",
			  3, v);
}

static void pg_table_info(void *conn, const char *table, const char *K, bool int_key,
			  bool *natural, const char **rowid_col)
{
	struct pg_conn *c = conn;
	PGresult *res = pg_column_info(c, table, K);
	*natural = false;
	*rowid_col = NULL;
	if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1) {
		const char *tt = PQgetvalue(res, 0, 0), *dt = PQgetvalue(res, 0, 1);
		if (!strcmp(tt, "BASE TABLE") && !c->redshift) /* Redshift has no ctid */
			*rowid_col = "ctid";
		if (int_key)
			*natural = !strcmp(dt, "smallint") || !strcmp(dt, "integer") ||
				   !strcmp(dt, "bigint");
		else
			*natural = !strcmp(dt, "text") || !strcmp(dt, "character varying");
	}
	PQclear(res);
}

bool source_pg_text_type(const char *data_type)
{
	return !strcmp(data_type, "text") || !strcmp(data_type, "character varying") ||
	       !strcmp(data_type, "character");
}

/* A text column (text, varchar, char): a number mark is compared through since_number. */
static bool pg_text_column(void *conn, const char *table, const char *column)
{
	struct pg_conn *c = conn;
	bool text = false;
	if (!c)
		return false;
	PGresult *res = pg_column_info(c, table, column);
	if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1) {
		text = source_pg_text_type(PQgetvalue(res, 0, 1));
	}
	PQclear(res);
	return text;
}

/*
 * A text column's value as a number when it is one as joey reads marks (under 64 bytes,
 * an exponent of at most 2 digits so the cast cannot overflow; the spaces a CHAR(n)
 * pads with allowed), else NULL: double precision rounds monotonically, so a value
 * past the mark is never below it.
 */
static void pg_since_number(struct strbuf *sb, const char *col)
{
	strbuf_addf(sb, "CASE WHEN length(%s) < 64 AND %s ~ '^[+-]?([0-9]+[.]?[0-9]*|[.][0-9]+)([eE][+-]?[0-9]{1,2})?[ ]*$' "
		    "THEN CAST(%s AS DOUBLE PRECISION) END", col, col, col);
}

/* ---- check ---- */

/* Names from column 0 of res (copied; free with free_names). */
static char **result_names(PGresult *res, size_t *n)
{
	*n = (size_t)PQntuples(res);
	char **names = xcalloc(*n + 1, sizeof(char *));
	for (size_t i = 0; i < *n; i++)
		names[i] = xstrdup(PQgetvalue(res, (int)i, 0));
	return names;
}

enum jerr pgsrc_check(void *conn, const struct cfg_source *src, struct jerror *err)
{
	struct pg_conn *c = conn;
	struct strbuf sql = STRBUF_INIT;
	struct sql_plan p;
	char **names = NULL;
	size_t n = 0;
	enum jerr rc = JERR_OK;
	PGresult *res = NULL;

	sql_plan_init(&p);
	if ((rc = pgsrc_begin(c, sql_source_id(src), err)))
		goto out_nt;
	if (!src->is_query && src->table) {
		const char *v[2] = { c->schema, src->table };
		res = pgsrc_exec(c, c->redshift ? "SELECT column_name FROM information_schema.columns WHERE "
					       "table_schema = $1 AND table_name IN (CAST($2 AS VARCHAR(128)), lower(CAST($2 AS VARCHAR(128)))) "
					       "ORDER BY ordinal_position"
					     : "SELECT column_name FROM information_schema.columns WHERE "
					       "table_schema = $1 AND table_name = $2 ORDER BY ordinal_position",
			      2, v);
		if (PQresultStatus(res) != PGRES_TUPLES_OK) {
			rc = jerror_set(err, JERR_SOURCE, "source \"%s\": cannot read the columns of "
					"table \"%s\"", sql_source_id(src), src->table);
			pgsrc_detail(err, NULL, PQerrorMessage(c->pg));
			goto out;
		}
		names = result_names(res, &n);
		PQclear(res);
		res = NULL;
		if (!n) {
			rc = sql_check_no_table(src, err);
			jerror_detail(err, "app \"%s\", database \"%s\" at %s:%s, schema \"%s\" (or "
					   "the user may not read it)",
				      c->app->id, c->database, c->host, c->port, c->schema);
			const char *v1[1] = { c->schema };
			res = pgsrc_exec(c, "SELECT table_name FROM information_schema.tables WHERE "
					 "table_schema = $1 ORDER BY table_name", 1, v1);
			char **tables = NULL;
			size_t nt = 0;
			if (PQresultStatus(res) == PGRES_TUPLES_OK)
				tables = result_names(res, &nt);
			sql_hint_names(err, src->table, (const char *const *)tables, nt,
				       "the schema's tables are");
			sql_free_names(tables, nt);
			goto out;
		}
	} else if (src->is_query && src->query) {
		sql_check_query_sql(&sql, c->d, src->query);
		res = pgsrc_exec(c, sql.buf, 0, NULL);
		if (PQresultStatus(res) != PGRES_TUPLES_OK) {
			rc = sql_check_bad_query(src, err);
			pgsrc_detail(err, NULL, PQresultErrorMessage(res));
			goto out;
		}
		n = (size_t)PQnfields(res);
		names = xcalloc(n + 1, sizeof(char *));
		for (size_t i = 0; i < n; i++)
			names[i] = xstrdup(PQfname(res, (int)i));
	}
	if (names) {
		rc = sql_check_columns(src, src->is_query ? NULL : src->table,
				       (const char *const *)names, n, err);
		if (rc)
			goto out;
	}

	/* finally the statement itself: prepared (unnamed), not run */
	rc = sql_plan_build(c->d, c, src, NULL, &p, err);
	if (rc)
		goto out;
	PQclear(res);
	pgsrc_guard(c, p.sql.buf);
	source_wait_begin(&c->watch);
	res = PQprepare(c->pg, "", p.sql.buf, 0, NULL);
	source_wait_end(&c->watch);
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		rc = jerror_set(err, JERR_SOURCE, "source \"%s\": query failed to prepare",
				sql_source_id(src));
		pgsrc_detail(err, NULL, PQresultErrorMessage(res));
	}
out:
	rc = source_watch_rc(&c->watch, rc, "source", sql_source_id(src), err);
	PQclear(res);
	res = NULL;
	pgsrc_rollback(c);
out_nt:
	sql_free_names(names, n);
	strbuf_release(&sql);
	sql_plan_release(&p);
	return rc;
}

/* ---- describe ---- */

static enum jerr pg_describe(void *conn, const struct cfg_source *src, struct strbuf *out,
			     struct jerror *err)
{
	return sql_describe_source(((struct pg_conn *)conn)->d, conn, src, out, err);
}

/* ---- sample (the UI's editors) ---- */

/* A sample's columns (at most SOURCE_SAMPLE_MAX_COLUMNS) and rows from a result. */
static void sample_rows(const PGresult *res, struct source_sample *out)
{
	sql_sample_columns(out, (size_t)PQnfields(res));
	for (size_t i = 0; i < out->n_columns; i++)
		out->columns[i] = xstrdup(PQfname(res, (int)i));
	out->n_rows = out->n_columns ? (size_t)PQntuples(res) : 0;
	out->cells = xcalloc(out->n_rows * out->n_columns + 1, sizeof(char *));
	for (size_t r = 0; r < out->n_rows; r++)
		for (size_t i = 0; i < out->n_columns; i++)
			out->cells[r * out->n_columns + i] =
				PQgetisnull(res, (int)r, (int)i)
					? NULL
					: sql_sample_value(PQgetvalue(res, (int)r, (int)i),
							   (size_t)PQgetlength(res, (int)r, (int)i));
}

/*
 * The UI's previews, in pg_begin's read-only transaction that pg_rollback always ends,
 * under the app's statementTimeout. With query NULL (source_ops.sample): the schema's
 * tables, and with table set its first rows. With query (source_ops.sample_query): its
 * columns and first rows, one statement (PQexecParams refuses a second), the query a
 * derived table.
 */
static enum jerr pg_preview(struct pg_conn *c, const char *table, const char *query, size_t limit,
			    struct source_sample *out, struct jerror *err)
{
	struct strbuf sql = STRBUF_INIT;
	enum jerr rc;
	PGresult *res = NULL;

	if (c->streaming)
		return sql_sample_busy(c->app->id, err);
	if ((rc = pgsrc_begin(c, c->app->id, err)))
		return rc;
	if (query) {
		sql_sample_query_sql(&sql, query, limit);
	} else {
		const char *v[1] = { c->schema };
		/* Redshift has no COLLATE; its identifiers sort bytewise (lower case) anyway */
		res = pgsrc_exec(c, c->redshift ? "SELECT table_name FROM information_schema.tables WHERE table_schema = $1 "
						  "ORDER BY table_name"
						: "SELECT table_name FROM information_schema.tables WHERE table_schema = $1 "
						  "ORDER BY table_name COLLATE \"C\"",
				 1, v);
		if (PQresultStatus(res) != PGRES_TUPLES_OK)
			goto fail;
		out->tables = result_names(res, &out->n_tables);
		PQclear(res);
		res = NULL;
		if (!table)
			goto out;
		if ((rc = sql_sample_table_known(c->app->id, table, out->tables, out->n_tables, err)))
			goto out;
		strbuf_addstr(&sql, "SELECT * FROM ");
		sql_add_ident(&source_postgres_dialect, &sql, c->schema);
		strbuf_addch(&sql, '.');
		sql_add_ident(&source_postgres_dialect, &sql, table);
		strbuf_addf(&sql, " LIMIT %zu", limit > SOURCE_SAMPLE_MAX_ROWS ? (size_t)SOURCE_SAMPLE_MAX_ROWS : limit);
	}
	res = pgsrc_exec(c, sql.buf, 0, NULL);
	if (PQresultStatus(res) != PGRES_TUPLES_OK)
		goto fail;
	sample_rows(res, out);
	goto out;
fail:
	rc = query ? sql_sample_query_unreadable(c->app->id, err) : sql_sample_unreadable(c->app->id, table, err);
	pgsrc_detail(err, NULL, res ? PQresultErrorMessage(res) : PQerrorMessage(c->pg));
	rc = source_watch_rc(&c->watch, rc, "app", c->app->id, err);
out:
	PQclear(res);
	pgsrc_rollback(c);
	strbuf_release(&sql);
	return rc;
}

static enum jerr pg_sample(void *conn, const char *table, size_t limit, struct source_sample *out,
			   struct jerror *err)
{
	return pg_preview(conn, table, NULL, limit, out, err);
}

static enum jerr pg_sample_query(void *conn, const char *query, size_t limit, struct source_sample *out,
				 struct jerror *err)
{
	return pg_preview(conn, NULL, query, limit, out, err);
}

const struct source_ops source_postgres = {
	.app_type = "postgres",
	.source_types = pg_source_types,
	.app_options = pg_app_options,
	.required_app_options = pg_required_options,
	.connect = pgsrc_connect,
	.check = pgsrc_check,
	.open_cursor = pgsrc_open_cursor,
	.describe = pg_describe,
	.disconnect = pgsrc_disconnect,
	.sample = pg_sample,
	.sample_query = pg_sample_query,
};

/* Redshift (warehouses.md 4): this connector with rs_dialect, port 5439 by default. */
const struct source_ops source_redshift = {
	.app_type = "redshift",
	.source_types = rs_source_types,
	.app_options = rs_app_options,
	.required_app_options = pg_required_options,
	.connect = pgsrc_connect,
	.check = pgsrc_check,
	.open_cursor = pgsrc_open_cursor,
	.describe = pg_describe,
	.disconnect = pgsrc_disconnect,
	.sample = pg_sample,
	.sample_query = pg_sample_query,
};
