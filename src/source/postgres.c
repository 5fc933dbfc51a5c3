/* postgres.c: the PostgreSQL connector (libpq): one ordered, aggregated query per source, streamed. */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "base/arena.h"
#include "base/log.h"
#include "base/xalloc.h"
#include "source/source.h"
#include "source/sqlgen.h"

/*
 * Design note. The statement comes from sqlgen.c with the PostgreSQL dialect: $N
 * parameters sent as untyped text (the server infers each type from the column it is
 * compared with), picks as (ARRAY_AGG(col ORDER BY ...))[1], arrays as json_agg, text
 * keys ordered COLLATE "C" (bytewise on UTF-8), ties broken by ctid. The session is
 * pinned at connect time: client_encoding UTF8 (the server converts other database
 * encodings), TimeZone UTC, DateStyle ISO, search_path = the app's schema, and
 * default_transaction_read_only. A statement with the user's query text (check,
 * cursor) runs in a read-only transaction that is always rolled back (pg_begin), so a
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

/* type OIDs (pg_type.dat; stable across versions) */
#define BOOLOID 16
#define INT8OID 20
#define INT2OID 21
#define INT4OID 23
#define OIDOID 26
#define FLOAT4OID 700
#define FLOAT8OID 701
#define NUMERICOID 1700

struct pg_conn {
	PGconn *pg;
	const struct cfg_app *app;
	const struct sql_dialect *d; /* pg_dialect or rs_dialect */
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
	const struct cfg_source *src;
	bool copy;         /* rows from COPY ... TO STDOUT, else single-row mode */
	PGresult *res;     /* single-row mode: the current row */
	char *copy_row;    /* COPY: the current row (PQfreemem), fields point into it */
	bool pending;      /* the current row is the first, fetched by open_cursor */
	struct pg_conn *own; /* the cursor's own connection (conn), or NULL */
	bool done;
	bool in_tx;        /* pg_begin's transaction is open on conn: rolled back at close */
	int n_fields;
	Oid *types;        /* per column, from the statement's description */
	struct pg_field *fields; /* the current row */
	struct arena arena;
	struct source_row row;
	bool grouped, int_key;
	int count_col;
	int since_col; /* 0: none */
	uint64_t null_keys;
	const char *key_column;
	char sqlstate[6]; /* of the last error */
};

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

static const char *const rs_source_types[] = {
	"redshift-import-table", "redshift-import-query", "redshift-table-import",
	"redshift-query-import", NULL,
};
static const char *const rs_app_options[] = {
	"host", "port", "database", "schema", "user", "password",
	"ssl", "ssl_cert", "ssl_key", "ssl_ca", "sslmode", "statementTimeout", NULL,
};

static const struct sql_dialect pg_dialect = {
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
	.no_arrays = true,
	.null_rank = true,
	.pick_cast = "VARCHAR(65535)",
	.tiebreak_value = true,
};

/* ---- helpers ---- */

/* The server's (or libpq's) message on one line, without trailing newlines. */
static void add_pg_message(struct strbuf *sb, const char *msg)
{
	size_t start = sb->len;
	for (const char *s = msg ? msg : ""; *s; s++) {
		if (*s == '\n') {
			strbuf_addstr(sb, "; ");
			continue;
		}
		strbuf_addch(sb, *s == '\t' ? ' ' : *s);
	}
	while (sb->len > start && (sb->buf[sb->len - 1] == ' ' || sb->buf[sb->len - 1] == ';'))
		strbuf_setlen(sb, sb->len - 1);
}

static void detail_pg(struct jerror *err, const char *what, const char *msg)
{
	struct strbuf sb = STRBUF_INIT;
	if (what)
		strbuf_addf(&sb, "%s: ", what);
	add_pg_message(&sb, msg);
	jerror_detail(err, "%s", sb.buf);
	strbuf_release(&sb);
}

/* An option as text: strings as they are, numbers/booleans as their JSON text. */
static const char *opt_text(const struct cfg_app *app, const char *key)
{
	const struct cfg_option *o = cfg_options_get(&app->options, key);
	if (!o || !o->str || !*o->str)
		return NULL;
	return o->str;
}

static bool opt_true(const struct cfg_app *app, const char *key)
{
	const char *s = opt_text(app, key);
	return s && (!strcasecmp(s, "true") || !strcmp(s, "1"));
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

/*
 * Redshift strict mode (tests, JOEY_REDSHIFT_STRICT=1): a statement that uses something
 * Redshift lacks (sql_redshift_lint) is a bug in joey, so the process stops with the
 * construct and the statement rather than let a PostgreSQL server accept it.
 */
static void rs_guard(const struct pg_conn *c, const char *sql)
{
	const char *bad = c->strict ? sql_redshift_lint(sql) : NULL;
	if (!bad)
		return;
	log_error("app \"%s\": Redshift strict mode: the statement uses %s, which Redshift "
		  "lacks: %s", c->app->id, bad, sql);
	abort();
}

/* Run a short parameterised statement synchronously; NULL result means no connection. */
static PGresult *pg_exec(struct pg_conn *c, const char *sql, int n, const char *const *values)
{
	rs_guard(c, sql);
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
 * always rolled back (pg_rollback): read-only refuses writes (nextval, DML, DDL), the
 * rollback undoes those PostgreSQL lets through in a read-only transaction
 * (lo_create, lo_import), and a query cannot turn either off for the statements after
 * it (set_config of default_transaction_read_only would outlive a plain statement).
 */
static enum jerr pg_begin(struct pg_conn *c, const char *what, struct jerror *err)
{
	PGresult *res = pg_exec(c, "BEGIN TRANSACTION READ ONLY", 0, NULL);
	enum jerr rc = JERR_OK;
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		rc = jerror_set(err, JERR_SOURCE, "source \"%s\": cannot start a read-only transaction", what);
		detail_pg(err, NULL, res ? PQresultErrorMessage(res) : PQerrorMessage(c->pg));
		if (source_watch_cancelled(&c->watch)) {
			struct strbuf w = STRBUF_INIT;
			strbuf_addf(&w, "source \"%s\"", what);
			rc = source_watch_error(&c->watch, w.buf, err);
			strbuf_release(&w);
		}
	}
	PQclear(res);
	return rc;
}

/* End pg_begin's transaction, undoing whatever the statements in it wrote. */
static void pg_rollback(struct pg_conn *c)
{
	PGresult *res = pg_exec(c, "ROLLBACK", 0, NULL);
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
	const char *v = opt_text(app, key);
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
	if (v[0] != '/' && config_dir && *config_dir)
		strbuf_addf(path, "%s/%s", config_dir, v);
	else
		strbuf_addstr(path, v);
	return JERR_OK;
}

/* Messages where another try cannot help: wrong credentials, no such database/role. */
static bool pg_permanent_failure(const char *msg)
{
	static const char *const words[] = { "authentication failed", "does not exist",
					     "no pg_hba.conf entry", "password is required",
					     "permission denied", "invalid", "SSL" };
	for (size_t i = 0; msg && i < ARRAY_SIZE(words); i++)
		if (strstr(msg, words[i]))
			return true;
	return false;
}

/* ---- connection ---- */

static enum jerr pg_connect(const struct cfg_app *app, const char *config_dir, void **out,
			    struct jerror *err)
{
	struct pg_conn *c = xcalloc(1, sizeof(*c));
	struct strbuf cert = STRBUF_INIT, key = STRBUF_INIT, ca = STRBUF_INIT;
	bool cert_tmp = false, key_tmp = false, ca_tmp = false;
	const char *keys[20], *vals[20];
	int n = 0;
	enum jerr rc = JERR_OK;
	PGresult *res = NULL;

	int64_t timeout_ms = 0;
	*out = NULL;
	c->app = app;
	c->redshift = app->type && !strcmp(app->type, "redshift");
	c->d = c->redshift ? &rs_dialect : &pg_dialect;
	c->strict = c->redshift && getenv("JOEY_REDSHIFT_STRICT") && !strcmp(getenv("JOEY_REDSHIFT_STRICT"), "1");
	c->host = xstrdup(opt_text(app, "host") ? opt_text(app, "host") : "localhost");
	/* Redshift listens on 5439; PGPORT still wins as it did for node-postgres */
	const char *def_port = c->redshift ? (getenv("PGPORT") && *getenv("PGPORT") ? getenv("PGPORT") : "5439")
					   : "5432";
	c->port = xstrdup(opt_text(app, "port") ? opt_text(app, "port") : def_port);
	c->database = xstrdup(opt_text(app, "database") ? opt_text(app, "database") : "");
	c->schema = xstrdup(opt_text(app, "schema") ? opt_text(app, "schema") : "public");
	c->config_dir = xstrdup(config_dir ? config_dir : "");
	if (!*c->database) {
		rc = jerror_set(err, JERR_CONFIG, "app \"%s\": option \"database\" is required",
				app->id);
		goto out;
	}
	if ((rc = source_timeout_option(app, &timeout_ms, err)))
		goto out;
	for (const char *p = c->port; *p; p++) {
		if (!isdigit((unsigned char)*p)) {
			rc = jerror_set(err, JERR_CONFIG, "app \"%s\": option \"port\" is not a port "
					"number: \"%s\"", app->id, c->port);
			goto out;
		}
	}
	if ((rc = cert_file(app, "ssl_cert", config_dir, &cert, &cert_tmp, err)) ||
	    (rc = cert_file(app, "ssl_key", config_dir, &key, &key_tmp, err)) ||
	    (rc = cert_file(app, "ssl_ca", config_dir, &ca, &ca_tmp, err)))
		goto out;

	/* keyword/value pairs: user text is never pasted into a conninfo string */
	keys[n] = "host", vals[n++] = c->host;
	keys[n] = "port", vals[n++] = c->port;
	keys[n] = "dbname", vals[n++] = c->database;
	if (opt_text(app, "user"))
		keys[n] = "user", vals[n++] = opt_text(app, "user");
	if (opt_text(app, "password"))
		keys[n] = "password", vals[n++] = opt_text(app, "password");
	/* Grouparoo: ssl=true means encrypted without verifying the server (sslmode=require) */
	if (opt_text(app, "sslmode"))
		keys[n] = "sslmode", vals[n++] = opt_text(app, "sslmode");
	else if (opt_true(app, "ssl"))
		keys[n] = "sslmode", vals[n++] = "require";
	if (cert.len)
		keys[n] = "sslcert", vals[n++] = cert.buf;
	if (key.len)
		keys[n] = "sslkey", vals[n++] = key.buf;
	if (ca.len)
		keys[n] = "sslrootcert", vals[n++] = ca.buf;
	keys[n] = "client_encoding", vals[n++] = "UTF8";
	if (!c->redshift) /* Redshift: SET after connecting (no startup options, no IntervalStyle) */
		keys[n] = "options", vals[n++] = "-c TimeZone=UTC -c DateStyle=ISO,YMD -c IntervalStyle=iso_8601 "
						 "-c default_transaction_read_only=on";
	keys[n] = "application_name", vals[n++] = "joey";
	keys[n] = "connect_timeout", vals[n++] = "10";
	keys[n] = NULL, vals[n] = NULL;

	long delay = PG_RETRY_BASE_MS;
	int tries = 0;
	for (;;) {
		tries++;
		c->pg = PQconnectdbParams(keys, vals, 0);
		if (c->pg && PQstatus(c->pg) == CONNECTION_OK)
			break;
		const char *msg = c->pg ? PQerrorMessage(c->pg) : "out of memory";
		if (tries >= PG_CONNECT_TRIES || pg_permanent_failure(msg)) {
			rc = jerror_set(err, JERR_SOURCE,
					"app \"%s\": cannot connect to %s at %s:%s, database "
					"\"%s\"",
					app->id, c->redshift ? "Redshift" : "PostgreSQL", c->host, c->port,
					c->database);
			detail_pg(err, NULL, msg);
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
			else if (pg_permanent_failure(msg))
				jerror_hint(err, "check the app's user, password and database options");
			else
				jerror_hint(err, "gave up after %d tries; check that the server is "
						 "running and reachable, and the app's host and port",
					    tries);
			goto out;
		}
		log_warn("app \"%s\": cannot connect to %s at %s:%s (try %d of %d), "
			 "retrying in %ld ms",
			 app->id, c->redshift ? "Redshift" : "PostgreSQL", c->host, c->port, tries,
			 PG_CONNECT_TRIES, delay);
		PQfinish(c->pg);
		c->pg = NULL;
		sleep_ms(delay);
		delay *= 2;
	}

	if (c->redshift) {
		/* what the startup options set for PostgreSQL */
		res = pg_exec(c, "SET TimeZone TO 'UTC'", 0, NULL);
		if (PQresultStatus(res) == PGRES_COMMAND_OK) {
			PQclear(res);
			res = pg_exec(c, "SET DateStyle TO 'ISO, YMD'", 0, NULL);
		}
		if (PQresultStatus(res) != PGRES_COMMAND_OK) {
			rc = jerror_set(err, JERR_SOURCE, "app \"%s\": cannot set the session's time zone "
					"and date style", app->id);
			detail_pg(err, NULL, PQerrorMessage(c->pg));
			goto out;
		}
		PQclear(res);
		res = NULL;
	}
	/* the schema tables are looked up in */
	const char *sp[1] = { c->schema };
	res = pg_exec(c, "SELECT pg_catalog.set_config('search_path', "
			 "pg_catalog.quote_ident($1), false)", 1, sp);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		rc = jerror_set(err, JERR_SOURCE, "app \"%s\": cannot select schema \"%s\"", app->id,
				c->schema);
		detail_pg(err, NULL, PQerrorMessage(c->pg));
		goto out;
	}
	if (!c->redshift && PQserverVersion(c->pg) >= 140000) {
		/* the server checks every 10 s that joey is still there while a statement runs */
		PQclear(res);
		res = pg_exec(c, "SET client_connection_check_interval = 10000", 0, NULL);
		if (PQresultStatus(res) != PGRES_COMMAND_OK)
			log_warn("app \"%s\": could not set client_connection_check_interval: %s", app->id,
				 PQresultErrorMessage(res));
	}
	c->cancel = PQgetCancel(c->pg);
	source_watch_register(&c->watch, pg_cancel_statement, timeout_ms, app->id);
	*out = c;
	c = NULL;
out:
	PQclear(res);
	if (cert_tmp)
		unlink(cert.buf);
	if (key_tmp)
		unlink(key.buf);
	if (ca_tmp)
		unlink(ca.buf);
	strbuf_release(&cert);
	strbuf_release(&key);
	strbuf_release(&ca);
	if (c) {
		PQfinish(c->pg);
		free(c->host);
		free(c->port);
		free(c->database);
		free(c->schema);
		free(c->config_dir);
		free(c);
	}
	return rc;
}

static void pg_disconnect(void *conn)
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

static void pg_table_info(void *conn, const char *table, const char *K, bool int_key,
			  bool *natural, const char **rowid_col)
{
	struct pg_conn *c = conn;
	const char *v[3] = { c->schema, table, K };
	/* Redshift folds quoted names to lower case (unless enable_case_sensitive_identifier) */
	PGresult *res = pg_exec(c,
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

static enum jerr pg_check(void *conn, const struct cfg_source *src, struct jerror *err)
{
	struct pg_conn *c = conn;
	struct strbuf sql = STRBUF_INIT;
	struct sql_plan p;
	char **names = NULL;
	size_t n = 0;
	enum jerr rc = JERR_OK;
	PGresult *res = NULL;

	sql_plan_init(&p);
	if ((rc = pg_begin(c, sql_source_id(src), err)))
		goto out_nt;
	if (!src->is_query && src->table) {
		const char *v[2] = { c->schema, src->table };
		res = pg_exec(c, c->redshift ? "SELECT column_name FROM information_schema.columns WHERE "
					       "table_schema = $1 AND table_name IN (CAST($2 AS VARCHAR(128)), lower(CAST($2 AS VARCHAR(128)))) "
					       "ORDER BY ordinal_position"
					     : "SELECT column_name FROM information_schema.columns WHERE "
					       "table_schema = $1 AND table_name = $2 ORDER BY ordinal_position",
			      2, v);
		if (PQresultStatus(res) != PGRES_TUPLES_OK) {
			rc = jerror_set(err, JERR_SOURCE, "source \"%s\": cannot read the columns of "
					"table \"%s\"", sql_source_id(src), src->table);
			detail_pg(err, NULL, PQerrorMessage(c->pg));
			goto out;
		}
		names = result_names(res, &n);
		PQclear(res);
		res = NULL;
		if (!n) {
			rc = jerror_set(err, JERR_CONFIG, "source \"%s\": table \"%s\" does not exist",
					sql_source_id(src), src->table);
			jerror_detail(err, "app \"%s\", database \"%s\" at %s:%s, schema \"%s\" (or "
					   "the user may not read it)",
				      c->app->id, c->database, c->host, c->port, c->schema);
			const char *v1[1] = { c->schema };
			res = pg_exec(c, "SELECT table_name FROM information_schema.tables WHERE "
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
		strbuf_addstr(&sql, "SELECT * FROM (");
		sql_add_query_text(&sql, src->query);
		strbuf_addstr(&sql, ") AS \"joey$q\" LIMIT 0");
		res = pg_exec(c, sql.buf, 0, NULL);
		if (PQresultStatus(res) != PGRES_TUPLES_OK) {
			rc = jerror_set(err, JERR_SOURCE, "source \"%s\": the source query is invalid",
					sql_source_id(src));
			detail_pg(err, NULL, PQresultErrorMessage(res));
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
	rs_guard(c, p.sql.buf);
	source_wait_begin(&c->watch);
	res = PQprepare(c->pg, "", p.sql.buf, 0, NULL);
	source_wait_end(&c->watch);
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		rc = jerror_set(err, JERR_SOURCE, "source \"%s\": query failed to prepare",
				sql_source_id(src));
		detail_pg(err, NULL, PQresultErrorMessage(res));
	}
out:
	if (rc && rc != JERR_INTERRUPTED && source_watch_cancelled(&c->watch)) {
		struct strbuf what = STRBUF_INIT;
		strbuf_addf(&what, "source \"%s\"", sql_source_id(src));
		rc = source_watch_error(&c->watch, what.buf, err);
		strbuf_release(&what);
	}
	PQclear(res);
	res = NULL;
	pg_rollback(c);
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

/* ---- reading rows ---- */

/*
 * A plain decimal ("-12.375": at most 15 digits, no exponent) as the double strtod
 * would give, without strtod: the digits as an integer and the power of ten are both
 * exact doubles (< 2^53, <= 10^15), so one division rounds correctly (Clinger's fast
 * path). False for anything else (the caller falls back to strtod).
 */
static bool simple_decimal(const char *s, size_t n, double *out)
{
	static const double pow10[] = { 1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7,
					1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15 };
	size_t i = 0, digits = 0, frac = 0;
	bool neg = false, point = false;
	uint64_t m = 0;

	if (n && s[0] == '-')
		neg = true, i++;
	for (; i < n; i++) {
		if (s[i] == '.' && !point) {
			point = true;
			continue;
		}
		if (s[i] < '0' || s[i] > '9' || ++digits > 15)
			return false;
		m = m * 10 + (uint64_t)(s[i] - '0');
		frac += point;
	}
	if (!digits)
		return false;
	double d = (double)m / pow10[frac];
	*out = neg ? -d : d;
	return true;
}

/* Field idx of the current row as a value of prop's type; false if invalid. */
static bool field_value(struct pg_cursor *cur, int idx, const struct cfg_property *prop,
			struct value *v)
{
	const struct pg_field *f = &cur->fields[idx];
	const char *s = f->s;
	size_t n = f->len;
	Oid t = cur->types[idx];

	*v = VALUE_NULL;
	if (f->null)
		return true;
	if (prop->is_array && !(cur->src->is_query && prop->query))
		return sql_decode_array(prop, s, n, &cur->arena, v, &cur->row.n_invalid);
	if (t == BOOLOID) {
		bool b = s[0] == 't';
		if (!sql_is_text_type(prop->type))
			return sql_value_from_int(prop->type, b, v);
		s = b ? "true" : "false";
		n = strlen(s);
	} else if (!sql_is_text_type(prop->type) &&
		   (t == INT2OID || t == INT4OID || t == INT8OID || t == OIDOID ||
		    t == FLOAT4OID || t == FLOAT8OID || t == NUMERICOID)) {
		int64_t i;
		double d;
		if (decimal_to_int64(s, n, &i))
			return sql_value_from_int(prop->type, i, v);
		if (!simple_decimal(s, n, &d)) {
			char *end;
			d = strtod(s, &end);
			if (end == s || *end)
				return false;
		}
		return sql_value_from_real(prop->type, d, v);
	}
	if (prop->type == PROP_STRING) {
		/* no copy: the row lives until the next one */
		if (n) {
			v->kind = VAL_STRING;
			v->u.s = (struct slice){ s, n };
		}
		return true;
	}
	return value_coerce_text(prop->type, s, n, &cur->arena, v);
}

static enum jerr result_error(struct pg_cursor *cur, PGresult *res, struct jerror *err)
{
	const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
	const char *msg = res ? PQresultErrorMessage(res) : "";
	snprintf(cur->sqlstate, sizeof(cur->sqlstate), "%s", state ? state : "");
	jerror_set(err, JERR_SOURCE, "source \"%s\": query failed", sql_source_id(cur->src));
	detail_pg(err, NULL, *msg ? msg : PQerrorMessage(cur->conn->pg));
	if (state && !strncmp(state, "42501", 5))
		jerror_hint(err, "grant the app's user SELECT on the table (app \"%s\")",
			    cur->conn->app->id);
	return JERR_SOURCE;
}

/* rc, or the watcher's error when it cancelled the statement (timeout, stop). */
static enum jerr cancelled_error(struct pg_cursor *cur, enum jerr rc, struct jerror *err)
{
	if (!rc || rc == JERR_INTERRUPTED || !source_watch_cancelled(&cur->conn->watch))
		return rc;
	struct strbuf what = STRBUF_INIT;
	strbuf_addf(&what, "source \"%s\"", sql_source_id(cur->src));
	rc = source_watch_error(&cur->conn->watch, what.buf, err);
	strbuf_release(&what);
	return rc;
}

/*
 * Read what is left of the running statement's results, leaving the connection idle.
 * The first error becomes the cursor's unless rc already is one.
 */
static enum jerr drain(struct pg_cursor *cur, enum jerr rc, struct jerror *err)
{
	PGresult *res;
	cur->done = true;
	for (;;) {
		source_wait_begin(&cur->conn->watch);
		res = PQgetResult(cur->conn->pg);
		source_wait_end(&cur->conn->watch);
		if (!res)
			break;
		ExecStatusType st = PQresultStatus(res);
		if (!rc && st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK &&
		    st != PGRES_SINGLE_TUPLE && st != PGRES_COPY_OUT)
			rc = result_error(cur, res, err);
		PQclear(res);
		if (st == PGRES_COPY_OUT || st == PGRES_COPY_IN || st == PGRES_COPY_BOTH)
			break; /* a COPY cut short by a lost connection: nothing more comes */
	}
	return rc;
}

static int hex_digit(char c)
{
	return c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10;
}

/* The character of the COPY escape after a backslash at *r (< end); *r moves past it. */
static char copy_escape(char **r, const char *end)
{
	char *p = *r, c = *p++;
	switch (c) {
	case 'b': c = '\b'; break;
	case 'f': c = '\f'; break;
	case 'n': c = '\n'; break;
	case 'r': c = '\r'; break;
	case 't': c = '\t'; break;
	case 'v': c = '\v'; break;
	case 'x': /* \xh or \xhh; a lone \x is "x" */
		if (p < end && isxdigit((unsigned char)*p)) {
			int x = hex_digit(*p++);
			if (p < end && isxdigit((unsigned char)*p))
				x = x * 16 + hex_digit(*p++);
			c = (char)x;
		}
		break;
	default: /* \o, \oo, \ooo; anything else stands for itself (\\) */
		if (c >= '0' && c <= '7') {
			int o = c - '0';
			for (int k = 0; k < 2 && p < end && *p >= '0' && *p <= '7'; k++)
				o = o * 8 + (*p++ - '0');
			c = (char)o;
		}
		break;
	}
	*r = p;
	return c;
}

/*
 * Split one row of COPY text output in place (PostgreSQL's COPY documentation, "Text
 * Format"): fields separated by tabs, a newline at the end, \N on its own is NULL, and
 * backslash escapes are decoded (copy_escape). The server escapes only the backslash
 * and \b \f \n \r \t \v; the rest of the syntax is decoded for completeness. Each field
 * is NUL-terminated (decoding only shrinks; libpq NUL-terminates the row). False unless
 * there are exactly n fields.
 */
static bool copy_split(char *row, size_t len, struct pg_field *f, int n)
{
	char *r = row, *end = row + len;
	int i = 0;

	if (r < end && end[-1] == '\n')
		end--;
	/* most rows have no backslash at all (no NULL, no escape): split them with memchr */
	bool plain = !memchr(row, '\\', (size_t)(end - row));
	for (;;) {
		if (i == n)
			return false;
		if (end - r >= 2 && r[0] == '\\' && r[1] == 'N' && (end - r == 2 || r[2] == '\t')) {
			f[i++] = (struct pg_field){ "", 0, true };
			r += 2;
		} else {
			char *start = r, *w;
			if (plain) {
				char *tab = memchr(r, '\t', (size_t)(end - r));
				r = tab ? tab : end;
			}
			while (r < end && *r != '\t' && *r != '\\')
				r++; /* no escapes so far: nothing to move */
			w = r;
			while (r < end && *r != '\t') {
				if (*r != '\\')
					*w++ = *r++;
				else if (++r == end)
					return false;
				else
					*w++ = copy_escape(&r, end);
			}
			f[i++] = (struct pg_field){ start, (size_t)(w - start), false };
			*w = '\0'; /* over the tab (r still tells) or at the end */
		}
		if (r >= end)
			return i == n;
		r++; /* the tab */
	}
}

/* The current row's storage (its fields point into it), freed. */
static void row_release(struct pg_cursor *cur)
{
	PQclear(cur->res);
	cur->res = NULL;
	if (cur->copy_row)
		PQfreemem(cur->copy_row);
	cur->copy_row = NULL;
}

/* The row layout, from the statement's description or its first row: types per column. */
static enum jerr set_columns(struct pg_cursor *cur, const PGresult *res, struct jerror *err)
{
	int need = 1 + (int)cur->src->n_properties + (cur->grouped ? 1 : 0) +
		   (cur->since_col ? 1 : 0);
	if (PQnfields(res) != need)
		return jerror_set(err, JERR_SOURCE,
				  "source \"%s\": the query has %d columns, not %d",
				  sql_source_id(cur->src), PQnfields(res), need);
	cur->n_fields = need;
	cur->types = xcalloc((size_t)need, sizeof(Oid));
	cur->fields = xcalloc((size_t)need, sizeof(struct pg_field));
	for (int i = 0; i < need; i++)
		cur->types[i] = PQftype(res, i);
	return JERR_OK;
}

/* The next row of the running statement into cur->fields (*got), or its end. */
static enum jerr fetch(struct pg_cursor *cur, bool *got, struct jerror *err)
{
	PGconn *pg = cur->conn->pg;
	*got = false;
	if (cur->copy) {
		char *buf = NULL;
		source_wait_begin(&cur->conn->watch);
		int n = PQgetCopyData(pg, &buf, 0);
		source_wait_end(&cur->conn->watch);
		if (n == -1) /* end of data: the command's result (or error) follows */
			return drain(cur, JERR_OK, err);
		if (n < 0) {
			jerror_set(err, JERR_SOURCE, "source \"%s\": query failed",
				   sql_source_id(cur->src));
			detail_pg(err, NULL, PQerrorMessage(pg));
			return drain(cur, JERR_SOURCE, err);
		}
		cur->copy_row = buf;
		if (!copy_split(buf, (size_t)n, cur->fields, cur->n_fields)) {
			/* not expected from a server: the cursor stops, close cancels the rest */
			jerror_set(err, JERR_SOURCE, "source \"%s\": malformed COPY row from the "
				   "server", sql_source_id(cur->src));
			jerror_detail(err, "expected %d tab-separated fields: \"%.100s\"",
				      cur->n_fields, buf);
			return JERR_SOURCE;
		}
		*got = true;
		return JERR_OK;
	}
	for (;;) {
		source_wait_begin(&cur->conn->watch);
		PGresult *res = PQgetResult(pg);
		source_wait_end(&cur->conn->watch);
		if (!res) {
			cur->done = true;
			return JERR_OK;
		}
		switch (PQresultStatus(res)) {
		case PGRES_SINGLE_TUPLE:
			if (!cur->types) {
				enum jerr rc = set_columns(cur, res, err);
				if (rc) {
					PQclear(res);
					return drain(cur, rc, err);
				}
			}
			cur->res = res;
			for (int i = 0; i < cur->n_fields; i++)
				cur->fields[i] = (struct pg_field){
					PQgetvalue(res, 0, i), (size_t)PQgetlength(res, 0, i),
					PQgetisnull(res, 0, i) != 0 };
			*got = true;
			return JERR_OK;
		case PGRES_TUPLES_OK:
			PQclear(res); /* end of rows; NULL follows */
			continue;
		default: {
			enum jerr rc = result_error(cur, res, err);
			PQclear(res);
			return drain(cur, rc, err);
		}
		}
	}
}

static enum jerr pg_next(struct source_cursor *base, struct source_row **row, struct jerror *err)
{
	struct pg_cursor *cur = (struct pg_cursor *)base;
	struct source_row *r = &cur->row;
	enum jerr rc;

	*row = NULL;
	for (;;) {
		if (cur->pending) {
			cur->pending = false;
		} else {
			bool got;
			row_release(cur);
			if (cur->done)
				return JERR_OK;
			if ((rc = fetch(cur, &got, err)))
				return cancelled_error(cur, rc, err);
			if (!got)
				return JERR_OK;
		}
		const struct pg_field *f = cur->fields;
		arena_reset(&cur->arena);
		if (f[0].null) {
			int64_t k = 1;
			if (cur->grouped)
				decimal_to_int64(f[cur->count_col].s, f[cur->count_col].len, &k);
			cur->null_keys += (uint64_t)k;
			continue;
		}
		r->n_invalid = 0;
		r->key.is_int = cur->int_key;
		if (cur->int_key) {
			int64_t i;
			if (!decimal_to_int64(f[0].s, f[0].len, &i)) {
				jerror_set(err, JERR_SOURCE_DATA,
					   "source \"%s\": key column \"%s\" holds a non-integer value "
					   "\"%.100s\"",
					   sql_source_id(cur->src), cur->key_column, f[0].s);
				jerror_detail(err, "the record key (primary key property) is an integer");
				jerror_hint(err, "clean the column, or make the primary key property a "
						 "string");
				return JERR_SOURCE_DATA;
			}
			r->key.i = i;
			if (cur->types[0] == INT8OID || cur->types[0] == INT4OID ||
			    cur->types[0] == INT2OID)
				r->key.text = (struct slice){ f[0].s, f[0].len }; /* canonical */
			else
				r->key.text.ptr = sql_fmt_i64(&cur->arena, i, &r->key.text.len);
		} else {
			r->key.i = 0;
			r->key.text = (struct slice){ f[0].s, f[0].len };
		}
		for (size_t i = 0; i < r->n_values; i++) {
			if (!field_value(cur, (int)i + 1, cur->src->properties[i], &r->values[i])) {
				r->values[i] = VALUE_NULL;
				r->n_invalid++;
				source_note_invalid(&cur->base, cur->src->properties[i], &r->key,
						    f[i + 1].s, f[i + 1].len);
			}
		}
		r->since = (struct slice){ "", 0 };
		if (cur->since_col && !f[cur->since_col].null)
			r->since = (struct slice){ f[cur->since_col].s, f[cur->since_col].len };
		*row = r;
		return JERR_OK;
	}
}

static void pg_close(struct source_cursor *base)
{
	struct pg_cursor *cur = (struct pg_cursor *)base;
	if (cur->null_keys)
		log_warn("source \"%s\": skipped %" PRIu64 " rows with a NULL key column \"%s\"",
			 sql_source_id(cur->src), cur->null_keys, cur->key_column);
	row_release(cur);
	if (!cur->done) {
		/* stop the server sending the rest, then drain */
		PGcancel *cancel = PQgetCancel(cur->conn->pg);
		char buf[256], *row;
		if (cancel) {
			PQcancel(cancel, buf, sizeof(buf));
			PQfreeCancel(cancel);
		}
		source_wait_begin(&cur->conn->watch);
		if (cur->copy)
			while (PQgetCopyData(cur->conn->pg, &row, 0) > 0)
				PQfreemem(row);
		source_wait_end(&cur->conn->watch);
		(void)drain(cur, JERR_SOURCE, NULL); /* the cancel's error is expected */
	}
	if (cur->in_tx)
		pg_rollback(cur->conn);
	if (cur->conn)
		cur->conn->streaming = false;
	pg_disconnect(cur->own);
	arena_release(&cur->arena);
	free(cur->row.values);
	free(cur->fields);
	free(cur->types);
	free(cur);
}

static const struct source_cursor_ops pg_cursor_ops = { pg_next, pg_close };

static enum jerr send_failed(struct pg_cursor *cur, struct jerror *err)
{
	jerror_set(err, JERR_SOURCE, "source \"%s\": query failed", sql_source_id(cur->src));
	detail_pg(err, NULL, PQerrorMessage(cur->conn->pg));
	return JERR_SOURCE;
}

/* A statement with bound values: sent with them, rows in single-row mode. */
static enum jerr start_bound(struct pg_cursor *cur, const struct sql_plan *p, struct jerror *err)
{
	PGconn *pg = cur->conn->pg;
	const char **values = xcalloc(p->n_binds, sizeof(*values));
	for (size_t i = 0; i < p->n_binds; i++)
		values[i] = p->binds[i].s; /* the text form; the server infers the type */
	rs_guard(cur->conn, p->sql.buf);
	int sent = PQsendQueryParams(pg, p->sql.buf, (int)p->n_binds, NULL, values, NULL, NULL, 0);
	free(values);
	if (!sent)
		return send_failed(cur, err);
	cur->conn->streaming = true;
	cur->done = false;
	if (!PQsetSingleRowMode(pg))
		log_warn("source \"%s\": single-row mode unavailable", sql_source_id(cur->src));
	return JERR_OK;
}

/*
 * A statement without values: parsed and described first (unnamed prepared statement; a
 * broken query fails here, and COPY does not send the column types), then run as
 * COPY (...) TO STDOUT in text format: one buffer per row, much cheaper than a PGresult
 * per row. (COPY takes no parameters: see the design note.)
 */
static enum jerr start_copy(struct pg_cursor *cur, const struct sql_plan *p, struct jerror *err)
{
	PGconn *pg = cur->conn->pg;
	struct strbuf copy = STRBUF_INIT;
	enum jerr rc;
	rs_guard(cur->conn, p->sql.buf);
	source_wait_begin(&cur->conn->watch);
	PGresult *res = PQprepare(pg, "", p->sql.buf, 0, NULL);
	if (PQresultStatus(res) == PGRES_COMMAND_OK) {
		PQclear(res);
		res = PQdescribePrepared(pg, "");
	}
	source_wait_end(&cur->conn->watch);
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		rc = result_error(cur, res, err);
		PQclear(res);
		return rc;
	}
	rc = set_columns(cur, res, err);
	PQclear(res);
	if (rc)
		return rc;

	strbuf_addf(&copy, "COPY (%s) TO STDOUT", p->sql.buf);
	rs_guard(cur->conn, copy.buf); /* never reached for Redshift: open_cursor reads rows */
	int sent = PQsendQuery(pg, copy.buf);
	strbuf_release(&copy);
	if (!sent)
		return send_failed(cur, err);
	cur->copy = true;
	cur->conn->streaming = true;
	cur->done = false;
	source_wait_begin(&cur->conn->watch);
	res = PQgetResult(pg);
	source_wait_end(&cur->conn->watch);
	if (PQresultStatus(res) != PGRES_COPY_OUT) {
		rc = result_error(cur, res, err);
		PQclear(res);
		return drain(cur, rc, err);
	}
	PQclear(res);
	return JERR_OK;
}

static enum jerr pg_open_cursor(void *conn, const struct cfg_source *src,
				const struct source_read *read, struct source_cursor **out,
				struct jerror *err)
{
	struct pg_conn *c = conn, *own = NULL;
	struct sql_plan p;
	struct pg_cursor *cur = NULL;
	enum jerr rc;
	bool got = false;

	*out = NULL;
	sql_plan_init(&p);
	if (c->streaming) {
		void *h;
		if ((rc = pg_connect(c->app, c->config_dir, &h, err)))
			goto out;
		c = own = h;
	}
	rc = sql_plan_build(c->d, c, src, read, &p, err);
	if (rc)
		goto out;

	cur = xcalloc(1, sizeof(*cur));
	cur->base.ops = &pg_cursor_ops;
	cur->base.source = src;
	strbuf_init(&cur->base.prev_text, 0);
	cur->conn = c;
	cur->own = own;
	own = NULL;
	cur->src = src;
	cur->done = true; /* nothing running yet */
	cur->grouped = p.grouped;
	cur->int_key = p.int_key;
	cur->key_column = p.key_column;
	cur->count_col = (int)src->n_properties + 1;
	cur->since_col = p.since_col;
	arena_init(&cur->arena);
	cur->row.n_values = src->n_properties;
	cur->row.values = xcalloc(src->n_properties ? src->n_properties : 1, sizeof(struct value));

	/* the first row (or the error) now, so open_cursor reports a broken query */
	if ((rc = pg_begin(c, sql_source_id(src), err)))
		goto out;
	cur->in_tx = true;
	/* Redshift has no COPY TO STDOUT: every statement in single-row mode */
	rc = p.n_binds || c->redshift ? start_bound(cur, &p, err) : start_copy(cur, &p, err);
	if (!rc)
		rc = fetch(cur, &got, err);
	rc = cancelled_error(cur, rc, err);
	if (rc) {
		/* a missing table/column: say which, with did-you-mean */
		struct jerror cerr = JERROR_INIT;
		bool missing = !strcmp(cur->sqlstate, "42P01") || !strcmp(cur->sqlstate, "42703");
		if (missing && err && cur->done && cur->in_tx) {
			pg_rollback(c); /* the failed transaction first: pg_check starts its own */
			cur->in_tx = false;
		}
		if (missing && err && cur->done && pg_check(c, src, &cerr) != JERR_OK) {
			jerror_release(err);
			*err = cerr;
			rc = err->code;
		} else {
			jerror_release(&cerr);
		}
		goto out;
	}
	cur->pending = got;
	*out = &cur->base;
	cur = NULL;
out:
	if (cur) {
		strbuf_release(&cur->base.prev_text);
		pg_close(&cur->base);
	}
	pg_disconnect(own);
	sql_plan_release(&p);
	return rc;
}

/* ---- sample (the UI's editors) ---- */

static enum jerr pg_sample(void *conn, const char *table, size_t limit, struct source_sample *out,
			   struct jerror *err)
{
	struct pg_conn *c = conn;
	struct strbuf sql = STRBUF_INIT;
	enum jerr rc;
	PGresult *res = NULL;

	if (c->streaming)
		return jerror_set(err, JERR_SOURCE, "app \"%s\": the connection is reading a source", c->app->id);
	if ((rc = pg_begin(c, c->app->id, err)))
		return rc;
	const char *v[1] = { c->schema };
	res = pg_exec(c, "SELECT table_name FROM information_schema.tables WHERE table_schema = $1 "
			 "ORDER BY table_name COLLATE \"C\"", 1, v);
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
	sql_add_ident(&pg_dialect, &sql, c->schema);
	strbuf_addch(&sql, '.');
	sql_add_ident(&pg_dialect, &sql, table);
	strbuf_addf(&sql, " LIMIT %zu", limit > SOURCE_SAMPLE_MAX_ROWS ? (size_t)SOURCE_SAMPLE_MAX_ROWS : limit);
	res = pg_exec(c, sql.buf, 0, NULL);
	if (PQresultStatus(res) != PGRES_TUPLES_OK)
		goto fail;
	out->n_columns = (size_t)PQnfields(res);
	out->columns = xcalloc(out->n_columns + 1, sizeof(char *));
	for (size_t i = 0; i < out->n_columns; i++)
		out->columns[i] = xstrdup(PQfname(res, (int)i));
	out->n_rows = (size_t)PQntuples(res);
	out->cells = xcalloc(out->n_rows * out->n_columns + 1, sizeof(char *));
	for (size_t r = 0; r < out->n_rows; r++)
		for (size_t i = 0; i < out->n_columns; i++)
			out->cells[r * out->n_columns + i] =
				PQgetisnull(res, (int)r, (int)i)
					? NULL
					: sql_sample_value(PQgetvalue(res, (int)r, (int)i),
							   (size_t)PQgetlength(res, (int)r, (int)i));
	goto out;
fail:
	rc = jerror_set(err, JERR_SOURCE, "app \"%s\": cannot read %s%s%s", c->app->id, table ? "table \"" : "its tables",
			table ? table : "", table ? "\"" : "");
	detail_pg(err, NULL, res ? PQresultErrorMessage(res) : PQerrorMessage(c->pg));
	if (source_watch_cancelled(&c->watch)) {
		struct strbuf w = STRBUF_INIT;
		strbuf_addf(&w, "app \"%s\"", c->app->id);
		rc = source_watch_error(&c->watch, w.buf, err);
		strbuf_release(&w);
	}
out:
	PQclear(res);
	pg_rollback(c);
	strbuf_release(&sql);
	return rc;
}

/*
 * A query's columns and first rows (source_ops.sample_query): one statement
 * (PQexecParams refuses a second), the query a derived table, in pg_begin's read-only
 * transaction that pg_rollback always ends, under the app's statementTimeout.
 */
static enum jerr pg_sample_query(void *conn, const char *query, size_t limit, struct source_sample *out,
				 struct jerror *err)
{
	struct pg_conn *c = conn;
	struct strbuf sql = STRBUF_INIT;
	PGresult *res = NULL;
	enum jerr rc;

	if (c->streaming)
		return jerror_set(err, JERR_SOURCE, "app \"%s\": the connection is reading a source", c->app->id);
	if ((rc = pg_begin(c, c->app->id, err)))
		return rc;
	sql_sample_query_sql(&sql, query, limit);
	res = pg_exec(c, sql.buf, 0, NULL);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		rc = jerror_set(err, JERR_SOURCE, "app \"%s\": the query cannot be read", c->app->id);
		detail_pg(err, NULL, res ? PQresultErrorMessage(res) : PQerrorMessage(c->pg));
		jerror_hint(err, "a query source reads one SELECT statement; it cannot change the database");
		if (source_watch_cancelled(&c->watch)) {
			struct strbuf w = STRBUF_INIT;
			strbuf_addf(&w, "app \"%s\"", c->app->id);
			rc = source_watch_error(&c->watch, w.buf, err);
			strbuf_release(&w);
		}
		goto out;
	}
	size_t all = (size_t)PQnfields(res);
	out->n_columns = all > SOURCE_SAMPLE_MAX_COLUMNS ? SOURCE_SAMPLE_MAX_COLUMNS : all;
	out->columns_cut = all > out->n_columns;
	out->columns = xcalloc(out->n_columns + 1, sizeof(char *));
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
out:
	PQclear(res);
	pg_rollback(c);
	strbuf_release(&sql);
	return rc;
}

const struct source_ops source_postgres = {
	.app_type = "postgres",
	.source_types = pg_source_types,
	.app_options = pg_app_options,
	.required_app_options = pg_required_options,
	.connect = pg_connect,
	.check = pg_check,
	.open_cursor = pg_open_cursor,
	.describe = pg_describe,
	.disconnect = pg_disconnect,
	.sample = pg_sample,
	.sample_query = pg_sample_query,
};

/* Redshift (warehouses.md 4): this connector with rs_dialect, port 5439 by default. */
const struct source_ops source_redshift = {
	.app_type = "redshift",
	.source_types = rs_source_types,
	.app_options = rs_app_options,
	.required_app_options = pg_required_options,
	.connect = pg_connect,
	.check = pg_check,
	.open_cursor = pg_open_cursor,
	.describe = pg_describe,
	.disconnect = pg_disconnect,
};
