/* mysql.c: the MySQL/MariaDB connector (MariaDB Connector/C): one ordered query per source, streamed. */
#include <ctype.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <mysql.h>

#include "base/arena.h"
#include "base/log.h"
#include "base/xalloc.h"
#include "source/source.h"
#include "source/sqlcursor.h"
#include "source/sqlgen.h"

/*
 * Design note. The statement comes from sqlgen.c with the MariaDB dialect: backquoted
 * identifiers, picks through a ROW_NUMBER() window layer, arrays as JSON_ARRAYAGG(...
 * ORDER BY), text keys as CAST(col AS CHAR) COLLATE utf8mb4_nopad_bin (bytewise, no
 * trailing-space padding) in select, GROUP BY and ORDER BY alike. The statement is a
 * prepared statement (binary protocol) with every filter/since value a bound parameter
 * (`?`, binds in text order). It is executed without mysql_stmt_store_result, so rows
 * stream from the server one at a time; each column is fetched as text (the client
 * converts native values; the server converts other column charsets to utf8mb4) into a
 * per-column buffer reused across rows, grown on MYSQL_DATA_TRUNCATED and re-read with
 * mysql_stmt_fetch_column, up to MY_MAX_VALUE; only a FLOAT since column is fetched as a
 * float (my_cursor.since_float). The session is pinned at connect:
 * time_zone UTC, group_concat_max_len raised (it caps JSON_ARRAYAGG), sql_select_limit
 * at its largest (a server's global value, or one set by init_connect, would end every
 * result early without an error, and the rows not read would be deleted), and read-only
 * (SET SESSION TRANSACTION READ ONLY, again before every statement with the user's
 * query text), so a query source calling NEXTVAL() or a function that writes fails.
 * Every wait on the server is watched (source.h): the app's statementTimeout limits
 * each wait, and a stop cancels the statement with KILL QUERY on a second connection
 * (the client library has no other way to stop a statement it waits on). A streaming
 * (unbuffered) connection carries one cursor at a time: a cursor opened while another
 * streams on the app's connection (several sources of one app, read side by side) gets
 * a connection of its own, closed with it.
 */

#define MY_CONNECT_TRIES 3
#define MY_RETRY_BASE_MS 250
#define MY_COL_INITIAL 1024 /* bytes per column buffer before growing */
/* the largest value read (group_concat_max_len, MariaDB's max_allowed_packet limit) */
#define MY_MAX_VALUE 1073741824UL

struct my_conn {
	MYSQL *my;
	const struct cfg_app *app;
	char *host, *database;
	unsigned port;
	bool streaming; /* a cursor's result streams on my: other cursors need their own */
	/* statementTimeout and stopping (source.h): every wait on my is watched */
	struct source_watch watch;
	unsigned long thread_id; /* the server's id of this connection, for KILL QUERY */
};

struct my_cursor {
	struct source_cursor base; /* first */
	struct my_conn *conn;
	struct my_conn *own; /* the cursor's own connection (conn), or NULL */
	struct sql_cursor_state rs; /* src, the plan's shape, the current row and its arena */
	MYSQL_STMT *stmt; /* NULL once the rows are done */
	MYSQL_RES *meta;  /* result metadata: the column types */
	MYSQL_FIELD *fields;
	unsigned n_cols;
	MYSQL_BIND *out;  /* one MYSQL_TYPE_STRING result bind per column */
	char **buf;       /* column buffers: buffer_length + 1 bytes (room for a NUL) */
	unsigned long *len;
	my_bool *is_null, *trunc;
	/*
	 * The since column when it is a FLOAT: fetched as one, never as the client's text,
	 * which has 6 significant digits (1.2345678 as 1.23457, above the stored value: the
	 * mark skipped the row that set it, and every later row with its value, for good).
	 */
	bool since_float;
	float since_f;
};

static const char *const my_source_types[] = {
	"mysql-import-table", "mysql-import-query", "mysql-table-import", "mysql-query-import",
	NULL,
};
static const char *const my_app_options[] = { "host", "port", "database", "user", "password",
					      "statementTimeout", NULL };
static const char *const my_required_options[] = { "database", NULL };

static void my_table_info(void *conn, const char *table, const char *K, bool int_key,
			  bool *natural, const char **rowid_col);

static const struct sql_dialect my_dialect = {
	.name = "mysql",
	.quote = '`',
	.params = SQL_PARAM_QMARK,
	.pick = SQL_PICK_WINDOW_ARRAYAGG,
	.text_type = "CHAR",
	.int_type = "SIGNED",
	.key_collate = " COLLATE utf8mb4_nopad_bin",
	.text_order = "",
	.natural_text_order = "",
	.like_escape = " ESCAPE '\\\\'",
	.true_sql = "TRUE",
	.false_sql = "FALSE",
	.concat_fn = true,
	.cast_text_params = false,
	.avg_cast = "DOUBLE",
	.asc_nulls = "",
	.desc_nulls = "",
	.table_info = my_table_info,
};

/* Escaped string literal '...' for the connection's character set. */
static void add_string_literal(MYSQL *my, struct strbuf *sb, const char *s, size_t n)
{
	strbuf_grow(sb, 2 * n + 3);
	strbuf_addch(sb, '\'');
	unsigned long m = mysql_real_escape_string(my, sb->buf + sb->len, s, (unsigned long)n);
	strbuf_setlen(sb, sb->len + m);
	strbuf_addch(sb, '\'');
}

/* ---- connection ---- */

static bool my_permanent_failure(unsigned e)
{
	return e == 1044 || e == 1045 || e == 1049 || e == 1251 || e == 2026;
}

static void my_free(struct my_conn *c)
{
	if (!c)
		return;
	source_watch_unregister(&c->watch);
	if (c->my)
		mysql_close(c->my);
	free(c->host);
	free(c->database);
	free(c);
}

/* "localhost" would mean the Unix socket to libmariadb: keep it TCP */
static const char *tcp_host(const char *host)
{
	return strcmp(host, "localhost") ? host : "127.0.0.1";
}

/*
 * The watcher's cancel (source.h): KILL QUERY of the connection's statement, from a
 * connection of its own (the one waiting cannot be used meanwhile). The statement
 * fails with "Query execution was interrupted"; the connection stays usable.
 */
static void my_kill_query(struct source_watch *w)
{
	struct my_conn *c = (struct my_conn *)(void *)((char *)w - offsetof(struct my_conn, watch));
	unsigned timeout = 5;
	char sql[64];
	MYSQL *k = mysql_init(NULL);
	if (!k)
		return;
	mysql_options(k, MYSQL_OPT_CONNECT_TIMEOUT, &timeout);
	mysql_options(k, MYSQL_OPT_READ_TIMEOUT, &timeout);
	mysql_options(k, MYSQL_OPT_WRITE_TIMEOUT, &timeout);
	snprintf(sql, sizeof(sql), "KILL QUERY %lu", c->thread_id);
	if (!mysql_real_connect(k, tcp_host(c->host), source_option_text(c->app, "user"), source_option_text(c->app, "password"),
				NULL, c->port, NULL, 0) ||
	    mysql_query(k, sql))
		log_warn("app \"%s\": could not cancel the running statement: %s", c->app->id, mysql_error(k));
	mysql_close(k);
}

/* rc, or the watcher's error when it cancelled the statement (timeout, stop). */
static enum jerr cancelled_error(struct my_conn *c, const char *source_id, enum jerr rc, struct jerror *err)
{
	return source_watch_rc(&c->watch, rc, "source", source_id, err);
}

/* Read-only again: a statement with the user's query text may follow. */
static enum jerr my_pin_readonly(struct my_conn *c, const char *what, struct jerror *err)
{
	static const char q[] = "SET SESSION TRANSACTION READ ONLY";
	source_wait_begin(&c->watch);
	int failed = mysql_real_query(c->my, q, sizeof(q) - 1);
	source_wait_end(&c->watch);
	if (!failed)
		return JERR_OK;
	if (source_watch_cancelled(&c->watch))
		return source_watch_error(&c->watch, what, err);
	jerror_set(err, JERR_SOURCE, "%s: cannot make the session read-only", what);
	jerror_detail(err, "%s", mysql_error(c->my));
	return JERR_SOURCE;
}

static enum jerr my_connect(const struct cfg_app *app, const char *config_dir, void **out,
			    struct jerror *err)
{
	struct my_conn *c = xcalloc(1, sizeof(*c));
	const char *port = source_option_text(app, "port");
	enum jerr rc = JERR_OK;
	char *end = NULL;
	int64_t timeout_ms = 0;

	*out = NULL;
	c->app = app;
	c->host = xstrdup(source_option_text(app, "host") ? source_option_text(app, "host") : "localhost");
	c->database = xstrdup(source_option_text(app, "database") ? source_option_text(app, "database") : "");
	c->port = 3306;
	if (port) {
		unsigned long v = strtoul(port, &end, 10);
		if (!*port || *end || v == 0 || v > 65535) {
			rc = jerror_set(err, JERR_CONFIG,
					"app \"%s\": option \"port\" is not a port number: \"%s\"",
					app->id, port);
			goto out;
		}
		c->port = (unsigned)v;
	}
	if (!*c->database) {
		rc = jerror_set(err, JERR_CONFIG, "app \"%s\": option \"database\" is required",
				app->id);
		goto out;
	}
	if ((rc = source_timeout_option(app, &timeout_ms, err)))
		goto out;

	long delay = MY_RETRY_BASE_MS;
	for (int tries = 1;; tries++) {
		unsigned timeout = 10;
		c->my = mysql_init(NULL);
		mysql_options(c->my, MYSQL_SET_CHARSET_NAME, "utf8mb4");
		mysql_options(c->my, MYSQL_OPT_CONNECT_TIMEOUT, &timeout);
		/* sql_select_limit: its largest value (the design note) */
		mysql_options(c->my, MYSQL_INIT_COMMAND,
			      "SET time_zone = '+00:00', group_concat_max_len = 1073741824, "
			      "sql_select_limit = 18446744073709551615");
		mysql_options(c->my, MYSQL_INIT_COMMAND, "SET SESSION TRANSACTION READ ONLY");
		if (mysql_real_connect(c->my, tcp_host(c->host), source_option_text(app, "user"), source_option_text(app, "password"),
				       c->database, c->port, NULL, 0))
			break;
		unsigned e = mysql_errno(c->my);
		if (tries >= MY_CONNECT_TRIES || my_permanent_failure(e)) {
			rc = jerror_set(err, JERR_SOURCE,
					"app \"%s\": cannot connect to MySQL at %s:%u, database \"%s\"",
					app->id, c->host, c->port, c->database);
			jerror_detail(err, "%s", mysql_error(c->my));
			if (my_permanent_failure(e))
				jerror_hint(err, "check the app's user, password and database options");
			else
				jerror_hint(err, "gave up after %d tries; check that the server is "
						 "running and reachable, and the app's host and port",
					    tries);
			goto out;
		}
		log_warn("app \"%s\": cannot connect to MySQL at %s:%u (try %d of %d), retrying in "
			 "%ld ms",
			 app->id, c->host, c->port, tries, MY_CONNECT_TRIES, delay);
		mysql_close(c->my);
		c->my = NULL;
		source_sleep_ms(delay);
		delay *= 2;
	}
	c->thread_id = mysql_thread_id(c->my);
	source_watch_register(&c->watch, my_kill_query, timeout_ms, app->id);
	*out = c;
	c = NULL;
out:
	my_free(c);
	return rc;
}

static void my_disconnect(void *conn)
{
	my_free(conn);
}

/* Run a query and return its (stored, small) result, or NULL with the error in the conn. */
static MYSQL_RES *my_query(struct my_conn *c, const char *sql, size_t len)
{
	MYSQL_RES *res = NULL;
	source_wait_begin(&c->watch);
	if (!mysql_real_query(c->my, sql, (unsigned long)len))
		res = mysql_store_result(c->my);
	source_wait_end(&c->watch);
	return res;
}

/* ---- dialect ---- */

static void my_table_info(void *conn, const char *table, const char *K, bool int_key,
			  bool *natural, const char **rowid_col)
{
	struct my_conn *c = conn;
	struct strbuf sql = STRBUF_INIT;

	*natural = false;
	*rowid_col = NULL;
	if (!int_key)
		return;
	strbuf_addstr(&sql, "SELECT DATA_TYPE FROM information_schema.COLUMNS WHERE "
			    "TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ");
	add_string_literal(c->my, &sql, table, strlen(table));
	strbuf_addstr(&sql, " AND COLUMN_NAME = ");
	add_string_literal(c->my, &sql, K, strlen(K));
	MYSQL_RES *res = my_query(c, sql.buf, sql.len);
	MYSQL_ROW row = res ? mysql_fetch_row(res) : NULL;
	if (row && row[0]) {
		static const char *const ints[] = { "tinyint", "smallint", "mediumint", "int",
						    "bigint" };
		for (size_t i = 0; i < ARRAY_SIZE(ints); i++)
			if (!strcasecmp(row[0], ints[i]))
				*natural = true;
	}
	if (res)
		mysql_free_result(res);
	strbuf_release(&sql);
}

/* ---- check ---- */

static char **column0(MYSQL_RES *res, size_t *n)
{
	*n = (size_t)mysql_num_rows(res);
	char **names = xcalloc(*n + 1, sizeof(char *));
	MYSQL_ROW row;
	size_t i = 0;
	while (i < *n && (row = mysql_fetch_row(res)))
		names[i++] = xstrdup(row[0] ? row[0] : "");
	*n = i;
	return names;
}

static enum jerr my_check(void *conn, const struct cfg_source *src, struct jerror *err)
{
	struct my_conn *c = conn;
	struct strbuf sql = STRBUF_INIT;
	char **names = NULL;
	size_t n = 0;
	enum jerr rc = JERR_OK;
	MYSQL_RES *res = NULL;

	if ((rc = my_pin_readonly(c, sql_source_id(src), err)))
		goto out;
	if (!src->is_query && src->table) {
		strbuf_addstr(&sql, "SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE "
				    "TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ");
		add_string_literal(c->my, &sql, src->table, strlen(src->table));
		strbuf_addstr(&sql, " ORDER BY ORDINAL_POSITION");
		res = my_query(c, sql.buf, sql.len);
		if (!res) {
			rc = jerror_set(err, JERR_SOURCE, "source \"%s\": cannot read the columns of "
					"table \"%s\"", sql_source_id(src), src->table);
			jerror_detail(err, "%s", mysql_error(c->my));
			goto out;
		}
		names = column0(res, &n);
		mysql_free_result(res);
		res = NULL;
		if (!n) {
			rc = sql_check_no_table(src, err);
			jerror_detail(err, "app \"%s\", database \"%s\" at %s:%u (or the user may not "
					   "read it)",
				      c->app->id, c->database, c->host, c->port);
			static const char q[] = "SELECT TABLE_NAME FROM information_schema.TABLES "
						"WHERE TABLE_SCHEMA = DATABASE() ORDER BY TABLE_NAME";
			res = my_query(c, q, sizeof(q) - 1);
			char **tables = NULL;
			size_t nt = 0;
			if (res)
				tables = column0(res, &nt);
			sql_hint_names(err, src->table, (const char *const *)tables, nt,
				       "the database's tables are");
			sql_free_names(tables, nt);
			goto out;
		}
	} else if (src->is_query && src->query) {
		sql_check_query_sql(&sql, &my_dialect, src->query);
		res = my_query(c, sql.buf, sql.len);
		if (!res) {
			rc = sql_check_bad_query(src, err);
			jerror_detail(err, "%s", mysql_error(c->my));
			goto out;
		}
		n = mysql_num_fields(res);
		MYSQL_FIELD *f = mysql_fetch_fields(res);
		names = xcalloc(n + 1, sizeof(char *));
		for (size_t i = 0; i < n; i++)
			names[i] = xstrdup(f[i].name);
	}
	if (names)
		rc = sql_check_columns(src, src->is_query ? NULL : src->table,
				       (const char *const *)names, n, err);
out:
	rc = cancelled_error(c, sql_source_id(src), rc, err);
	if (res)
		mysql_free_result(res);
	sql_free_names(names, n);
	strbuf_release(&sql);
	return rc;
}

static enum jerr my_describe(void *conn, const struct cfg_source *src, struct strbuf *out,
			     struct jerror *err)
{
	return sql_describe_source(&my_dialect, conn, src, out, err);
}

/* ---- reading rows ---- */

static bool is_numeric_field(enum enum_field_types t)
{
	switch (t) {
	case MYSQL_TYPE_TINY:
	case MYSQL_TYPE_SHORT:
	case MYSQL_TYPE_INT24:
	case MYSQL_TYPE_LONG:
	case MYSQL_TYPE_LONGLONG:
	case MYSQL_TYPE_FLOAT:
	case MYSQL_TYPE_DOUBLE:
	case MYSQL_TYPE_DECIMAL:
	case MYSQL_TYPE_NEWDECIMAL:
		return true;
	default:
		return false;
	}
}

static bool field_value(struct my_cursor *cur, unsigned idx, const struct cfg_property *prop,
			struct value *v)
{
	const char *s = cur->buf[idx];
	size_t n = cur->len[idx];

	*v = VALUE_NULL;
	if (cur->is_null[idx])
		return true;
	if (prop->is_array && !(cur->rs.src->is_query && prop->query))
		return sql_decode_array(prop, s, n, &cur->rs.arena, v, &cur->rs.row.n_invalid);
	if (!sql_is_text_type(prop->type) && is_numeric_field(cur->fields[idx].type)) {
		return sql_value_from_number_text(prop->type, s, n, v);
	}
	return sql_value_from_text(prop->type, s, n, &cur->rs.arena, v);
}

/* Point result bind i at a buffer of cap bytes (plus one for the NUL). */
static void set_col_buffer(struct my_cursor *cur, unsigned i, unsigned long cap)
{
	cur->buf[i] = xrealloc(cur->buf[i], (size_t)cap + 1);
	cur->out[i].buffer = cur->buf[i];
	cur->out[i].buffer_length = cap;
}

/* What column i of the statement holds, for messages. */
static void column_name(const struct my_cursor *cur, unsigned i, struct strbuf *sb)
{
	if (i == 0)
		strbuf_addf(sb, "key column \"%s\"", cur->rs.key_column);
	else if (i <= cur->rs.src->n_properties && cur->rs.src->properties[i - 1]->column)
		strbuf_addf(sb, "column \"%s\" (property \"%s\")",
			    cur->rs.src->properties[i - 1]->column, cur->rs.src->properties[i - 1]->id);
	else if (i <= cur->rs.src->n_properties)
		strbuf_addf(sb, "property \"%s\"", cur->rs.src->properties[i - 1]->id);
	else
		strbuf_addf(sb, "column \"%s\"", cur->fields[i].name);
}

/*
 * The error of a failed statement call and its code: the statement's, else its
 * connection's. An error the server sends while rows stream (a sort aborted by LIMIT
 * ROWS EXAMINED, KILL QUERY, max_statement_time) is left on the connection only, and
 * the statement's text is empty then: the run failed with "query failed" and no why.
 */
static const char *stmt_error(MYSQL_STMT *stmt, MYSQL *my, unsigned *code)
{
	if (mysql_stmt_errno(stmt) || !mysql_errno(my)) {
		*code = mysql_stmt_errno(stmt);
		return mysql_stmt_error(stmt);
	}
	*code = mysql_errno(my);
	return mysql_error(my);
}

/*
 * The columns of the current row cut short by their buffer: grow those buffers and read
 * the columns again. Values over MY_MAX_VALUE are an error.
 */
static enum jerr refetch_truncated(struct my_cursor *cur, struct jerror *err)
{
	for (unsigned i = 0; i < cur->n_cols; i++) {
		if (cur->is_null[i] || cur->len[i] <= cur->out[i].buffer_length ||
		    cur->out[i].buffer_type != MYSQL_TYPE_STRING)
			continue;
		if (cur->len[i] > MY_MAX_VALUE) {
			struct strbuf what = STRBUF_INIT;
			column_name(cur, i, &what);
			jerror_set(err, JERR_SOURCE_DATA,
				   "source \"%s\": %s holds a value of %lu bytes, over the limit of "
				   "%lu bytes",
				   sql_source_id(cur->rs.src), what.buf, cur->len[i], MY_MAX_VALUE);
			strbuf_release(&what);
			return JERR_SOURCE_DATA;
		}
		unsigned long cap = cur->out[i].buffer_length;
		while (cap < cur->len[i])
			cap = cap > MY_MAX_VALUE / 2 ? MY_MAX_VALUE : cap * 2;
		set_col_buffer(cur, i, cap);
		source_wait_begin(&cur->conn->watch);
		int failed = mysql_stmt_fetch_column(cur->stmt, &cur->out[i], i, 0);
		source_wait_end(&cur->conn->watch);
		if (failed) {
			unsigned code;
			jerror_set(err, JERR_SOURCE, "source \"%s\": query failed",
				   sql_source_id(cur->rs.src));
			jerror_detail(err, "%s", stmt_error(cur->stmt, cur->conn->my, &code));
			return JERR_SOURCE;
		}
	}
	/* the statement keeps a copy of the binds: give it the grown buffers */
	if (mysql_stmt_bind_result(cur->stmt, cur->out)) {
		jerror_set(err, JERR_SOURCE, "source \"%s\": query failed", sql_source_id(cur->rs.src));
		jerror_detail(err, "%s", mysql_stmt_error(cur->stmt));
		return JERR_SOURCE;
	}
	return JERR_OK;
}

/* Free the statement (reading and discarding any rows left) and its metadata. */
static void finish_stmt(struct my_cursor *cur)
{
	if (cur->meta)
		mysql_free_result(cur->meta);
	cur->meta = NULL;
	cur->fields = NULL;
	if (cur->stmt) {
		/* the rows left are read and discarded: a wait like any other */
		struct source_watch *w = cur->conn ? &cur->conn->watch : NULL;
		if (w)
			source_wait_begin(w);
		mysql_stmt_free_result(cur->stmt);
		mysql_stmt_close(cur->stmt);
		if (w)
			source_wait_end(w);
	}
	cur->stmt = NULL;
}

static enum jerr my_next(struct source_cursor *base, struct source_row **row, struct jerror *err)
{
	struct my_cursor *cur = (struct my_cursor *)base;
	struct source_row *r = &cur->rs.row;
	enum jerr rc;

	*row = NULL;
	if (!cur->stmt)
		return JERR_OK;
	for (;;) {
		source_wait_begin(&cur->conn->watch);
		int f = mysql_stmt_fetch(cur->stmt);
		source_wait_end(&cur->conn->watch);
		if (f == MYSQL_NO_DATA) {
			finish_stmt(cur);
			return JERR_OK;
		}
		if (f == MYSQL_DATA_TRUNCATED) {
			if ((rc = refetch_truncated(cur, err)))
				return cancelled_error(cur->conn, sql_source_id(cur->rs.src), rc, err);
		} else if (f) {
			unsigned code;
			const char *why = stmt_error(cur->stmt, cur->conn->my, &code);
			jerror_set(err, JERR_SOURCE, "source \"%s\": query failed",
				   sql_source_id(cur->rs.src));
			jerror_detail(err, "%s", why);
			/* ER_FILSORT_ABORT, ER_QUERY_EXCEEDED_ROWS_EXAMINED_LIMIT */
			if ((code == 1028 || code == 1931) && strstr(why, "LIMIT ROWS EXAMINED"))
				jerror_hint(err, "remove LIMIT ROWS EXAMINED from the source's query, or raise it "
						 "above the rows the query examines: joey reads every row");
			return cancelled_error(cur->conn, sql_source_id(cur->rs.src), JERR_SOURCE, err);
		}
		for (unsigned i = 0; i < cur->n_cols; i++)
			if (!cur->is_null[i] && cur->out[i].buffer_type == MYSQL_TYPE_STRING)
				cur->buf[i][cur->len[i]] = '\0';
		arena_reset(&cur->rs.arena);
		if (cur->is_null[0]) {
			int64_t k = 1;
			if (cur->rs.grouped && !cur->is_null[cur->rs.count_col])
				decimal_to_int64(cur->buf[cur->rs.count_col], cur->len[cur->rs.count_col], &k);
			cur->rs.null_keys += (uint64_t)k;
			continue;
		}
		r->n_invalid = 0;
		if ((rc = sql_row_key(cur->rs.src, cur->rs.key_column, cur->rs.int_key, cur->buf[0], cur->len[0], false,
				      &cur->rs.arena, &r->key, err)))
			return rc;
		for (size_t i = 0; i < r->n_values; i++) {
			if (!field_value(cur, (unsigned)i + 1, cur->rs.src->properties[i], &r->values[i]))
				sql_row_invalid(&cur->base, r, i, cur->buf[i + 1], cur->len[i + 1]);
		}
		r->since = (struct slice){ "", 0 };
		if (cur->rs.since_col && !cur->is_null[cur->rs.since_col])
			r->since = cur->since_float ? source_since_double((double)cur->since_f, &cur->rs.arena)
						    : (struct slice){ cur->buf[cur->rs.since_col],
								      cur->len[cur->rs.since_col] };
		*row = r;
		return JERR_OK;
	}
}

static void free_cursor(struct my_cursor *cur)
{
	finish_stmt(cur);
	if (cur->conn)
		cur->conn->streaming = false;
	my_free(cur->own);
	for (unsigned i = 0; cur->buf && i < cur->n_cols; i++)
		free(cur->buf[i]);
	free(cur->buf);
	free(cur->out);
	free(cur->len);
	free(cur->is_null);
	free(cur->trunc);
	sql_cursor_state_release(&cur->rs);
	free(cur);
}

static void my_close(struct source_cursor *base)
{
	struct my_cursor *cur = (struct my_cursor *)base;
	sql_warn_null_keys(cur->rs.src, cur->rs.null_keys, cur->rs.key_column);
	free_cursor(cur); /* the statement's unread rows are read and discarded */
}

static const struct source_cursor_ops my_cursor_ops = { my_next, my_close };

/*
 * Bind p's values to the statement's markers, in text order. The binds point into p and
 * into *in and *lens (malloc'd, to free after mysql_stmt_execute, which reads them).
 */
static bool bind_params(MYSQL_STMT *stmt, const struct sql_plan *p, MYSQL_BIND **inp,
			unsigned long **lensp)
{
	if (mysql_stmt_param_count(stmt) != p->n_binds)
		return false;
	if (!p->n_binds)
		return true;
	MYSQL_BIND *in = *inp = xcalloc(p->n_binds, sizeof(*in));
	unsigned long *lens = *lensp = xcalloc(p->n_binds, sizeof(*lens));
	for (size_t i = 0; i < p->n_binds; i++) {
		const struct sql_bind *b = &p->binds[i];
		if (b->kind == SQL_BIND_INT) {
			in[i].buffer_type = MYSQL_TYPE_LONGLONG;
			in[i].buffer = (void *)&b->i;
		} else if (b->kind == SQL_BIND_REAL) {
			in[i].buffer_type = MYSQL_TYPE_DOUBLE;
			in[i].buffer = (void *)&b->f;
		} else {
			lens[i] = (unsigned long)strlen(b->s);
			in[i].buffer_type = MYSQL_TYPE_STRING;
			in[i].buffer = (void *)b->s;
			in[i].buffer_length = lens[i];
			in[i].length = &lens[i];
		}
	}
	return !mysql_stmt_bind_param(stmt, in);
}

static enum jerr my_open_cursor(void *conn, const struct cfg_source *src,
				const struct source_read *read, struct source_cursor **out,
				struct jerror *err)
{
	struct my_conn *c = conn, *own = NULL;
	struct my_cursor *cur = NULL;
	struct sql_plan p;
	enum jerr rc;

	*out = NULL;
	sql_plan_init(&p);
	if (c->streaming) {
		void *h;
		if ((rc = my_connect(c->app, NULL, &h, err)))
			goto out;
		c = own = h;
	}
	rc = sql_plan_build(&my_dialect, c, src, read, &p, err);
	if (rc || (rc = my_pin_readonly(c, sql_source_id(src), err)))
		goto out;

	cur = xcalloc(1, sizeof(*cur));
	cur->base.ops = &my_cursor_ops;
	cur->base.source = src;
	strbuf_init(&cur->base.prev_text, 0);
	sql_cursor_state_init(&cur->rs, src, &p);

	my_bool off = 0;
	bool bound = false, failed;
	MYSQL_BIND *in = NULL;
	unsigned long *in_lens = NULL;
	cur->stmt = mysql_stmt_init(c->my);
	if (!cur->stmt) {
		rc = jerror_set(err, JERR_SOURCE, "source \"%s\": query failed", sql_source_id(src));
		jerror_detail(err, "%s", mysql_error(c->my));
		goto out;
	}
	mysql_stmt_attr_set(cur->stmt, STMT_ATTR_UPDATE_MAX_LENGTH, &off);
	/* no mysql_stmt_store_result: the rows stream from the server */
	source_wait_begin(&c->watch);
	failed = mysql_stmt_prepare(cur->stmt, p.sql.buf, (unsigned long)p.sql.len) ||
		 !(bound = bind_params(cur->stmt, &p, &in, &in_lens)) ||
		 mysql_stmt_execute(cur->stmt) ||
		 !(cur->meta = mysql_stmt_result_metadata(cur->stmt));
	source_wait_end(&c->watch);
	free(in);
	free(in_lens);
	if (failed) {
		unsigned e;
		const char *why = stmt_error(cur->stmt, c->my, &e);
		struct strbuf msg = STRBUF_INIT;
		if (!bound && !e)
			strbuf_addf(&msg, "the statement has %lu parameters, joey bound %zu",
				    mysql_stmt_param_count(cur->stmt), p.n_binds);
		else
			strbuf_addstr(&msg, why);
		finish_stmt(cur);
		/* a missing table/column: say which, with did-you-mean */
		rc = (e == 1146 || e == 1054) ? my_check(c, src, err) : JERR_OK;
		if (!rc) {
			rc = jerror_set(err, JERR_SOURCE, "source \"%s\": query failed",
					sql_source_id(src));
			jerror_detail(err, "%s", msg.buf);
			if (e == 1142 || e == 1143)
				jerror_hint(err, "grant the app's user SELECT on the table (app \"%s\")",
					    c->app->id);
		}
		rc = cancelled_error(c, sql_source_id(src), rc, err);
		strbuf_release(&msg);
		goto out;
	}
	cur->conn = c;
	cur->own = own;
	own = NULL;
	c->streaming = true;
	cur->fields = mysql_fetch_fields(cur->meta);
	cur->n_cols = mysql_num_fields(cur->meta);
	cur->out = xcalloc(cur->n_cols, sizeof(*cur->out));
	cur->buf = xcalloc(cur->n_cols, sizeof(*cur->buf));
	cur->len = xcalloc(cur->n_cols, sizeof(*cur->len));
	cur->is_null = xcalloc(cur->n_cols, sizeof(*cur->is_null));
	cur->trunc = xcalloc(cur->n_cols, sizeof(*cur->trunc));
	for (unsigned i = 0; i < cur->n_cols; i++) {
		cur->out[i].buffer_type = MYSQL_TYPE_STRING;
		cur->out[i].length = &cur->len[i];
		cur->out[i].is_null = &cur->is_null[i];
		cur->out[i].error = &cur->trunc[i];
		set_col_buffer(cur, i, MY_COL_INITIAL);
	}
	if (cur->rs.since_col > 0 && (unsigned)cur->rs.since_col < cur->n_cols &&
	    cur->fields[cur->rs.since_col].type == MYSQL_TYPE_FLOAT) {
		MYSQL_BIND *b = &cur->out[cur->rs.since_col];
		cur->since_float = true;
		b->buffer_type = MYSQL_TYPE_FLOAT;
		b->buffer = &cur->since_f;
		b->buffer_length = sizeof(cur->since_f);
	}
	if (mysql_stmt_bind_result(cur->stmt, cur->out)) {
		rc = jerror_set(err, JERR_SOURCE, "source \"%s\": query failed", sql_source_id(src));
		jerror_detail(err, "%s", mysql_stmt_error(cur->stmt));
		goto out;
	}
	*out = &cur->base;
	cur = NULL;
out:
	if (cur)
		free_cursor(cur);
	my_free(own);
	sql_plan_release(&p);
	return rc;
}

/* ---- sample (the UI's editors) ---- */

/* A sample's columns (at most SOURCE_SAMPLE_MAX_COLUMNS) and rows from a stored result. */
static void sample_rows(MYSQL_RES *res, struct source_sample *out)
{
	MYSQL_FIELD *f = mysql_fetch_fields(res);
	sql_sample_columns(out, mysql_num_fields(res));
	for (size_t i = 0; i < out->n_columns; i++)
		out->columns[i] = xstrdup(f[i].name);
	out->cells = xcalloc((size_t)mysql_num_rows(res) * out->n_columns + 1, sizeof(char *));
	MYSQL_ROW row;
	while (out->n_columns && (row = mysql_fetch_row(res))) {
		unsigned long *len = mysql_fetch_lengths(res);
		for (size_t i = 0; i < out->n_columns; i++)
			out->cells[out->n_rows * out->n_columns + i] = sql_sample_value(row[i], row[i] ? len[i] : 0);
		out->n_rows++;
	}
}

/*
 * The UI's previews, in the session pinned read-only again just before them, under the
 * app's statementTimeout. With query NULL (source_ops.sample): the database's tables,
 * and with table set its first rows. With query (source_ops.sample_query): its columns
 * and first rows, one statement (the connection has no CLIENT_MULTI_STATEMENTS), the
 * query a derived table.
 */
static enum jerr my_preview(struct my_conn *c, const char *table, const char *query, size_t limit,
			    struct source_sample *out, struct jerror *err)
{
	struct strbuf sql = STRBUF_INIT;
	MYSQL_RES *res = NULL;
	enum jerr rc;

	if (c->streaming)
		return sql_sample_busy(c->app->id, err);
	if ((rc = my_pin_readonly(c, c->app->id, err)))
		goto out;
	if (query) {
		sql_sample_query_sql(&sql, query, limit);
	} else {
		static const char q[] = "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() "
					"ORDER BY CAST(TABLE_NAME AS BINARY)";
		if (!(res = my_query(c, q, sizeof(q) - 1)))
			goto fail;
		out->tables = column0(res, &out->n_tables);
		mysql_free_result(res);
		res = NULL;
		if (!table)
			goto out;
		if ((rc = sql_sample_table_known(c->app->id, table, out->tables, out->n_tables, err)))
			goto out;
		sql_sample_table_sql(&sql, &my_dialect, table, limit);
	}
	if (!(res = my_query(c, sql.buf, sql.len)))
		goto fail;
	sample_rows(res, out);
	goto out;
fail:
	rc = query ? sql_sample_query_unreadable(c->app->id, err) : sql_sample_unreadable(c->app->id, table, err);
	jerror_detail(err, "%s", mysql_error(c->my));
out:
	rc = cancelled_error(c, c->app->id, rc, err);
	if (res)
		mysql_free_result(res);
	strbuf_release(&sql);
	return rc;
}

static enum jerr my_sample(void *conn, const char *table, size_t limit, struct source_sample *out,
			   struct jerror *err)
{
	return my_preview(conn, table, NULL, limit, out, err);
}

static enum jerr my_sample_query(void *conn, const char *query, size_t limit, struct source_sample *out,
				 struct jerror *err)
{
	return my_preview(conn, NULL, query, limit, out, err);
}

const struct source_ops source_mysql = {
	.app_type = "mysql",
	.source_types = my_source_types,
	.app_options = my_app_options,
	.required_app_options = my_required_options,
	.connect = my_connect,
	.check = my_check,
	.open_cursor = my_open_cursor,
	.describe = my_describe,
	.disconnect = my_disconnect,
	.sample = my_sample,
	.sample_query = my_sample_query,
};
