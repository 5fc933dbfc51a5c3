/*
 * clickhouse.c: the ClickHouse connector: one ordered, aggregated query per source over
 * the HTTP interface (libcurl), streamed. This file: the dialect, the connection, the
 * column types that type literals, check, describe and the ops table. HTTP requests are
 * clickhouse_http.c, reading rows clickhouse_rows.c; they share clickhouse_internal.h.
 * The connection owns its curl handles, URL and option copies; the app and sources are
 * borrowed from the config.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

#include "base/log.h"
#include "base/xalloc.h"
#include "source/chwire.h"
#include "source/clickhouse_internal.h"
#include "source/source.h"
#include "source/sqlgen.h"

/*
 * Design note (warehouses.md 5). Every statement is a POST of the SQL to the app's base
 * URL (chw_base_url: Grouparoo's host/port rule) with the settings in the query string:
 * database=<app database>, query_id (to KILL a statement joey gives up on), readonly=1
 * last (reads only: a query source cannot write), and for short statements
 * max_execution_time (the app's statementTimeout) and wait_end_of_query=1 (the server
 * buffers the answer, so an error is an HTTP error, not a trailer). Credentials go in
 * the X-ClickHouse-User / X-ClickHouse-Key headers, never in a URL or a message. A user
 * whose profile is readonly=1 may not change settings at all (code 164): connect then
 * drops every setting but the database for that connection.
 *
 * The SQL is sqlgen's with the ClickHouse dialect, which works on 18.16 (Debian) and on
 * current servers: backtick identifiers ("db.table" as two), literals inlined and typed
 * by the column they are compared with (system.columns; DESCRIBE TABLE for a source
 * query), picks as argMax/argMin over tuples (no window functions in 18.16), arrays as
 * groupArrayIf, substring filters as positionCaseInsensitiveUTF8.
 *
 * Rows stream as TabSeparatedWithNamesAndTypes (names, types, then one row per line).
 * The transfer runs on a curl multi handle driven by next(): the write callback appends
 * to the request's buffer and pauses the transfer when more than CH_BUF_HIGH bytes wait
 * unread (back-pressure: memory stays bounded however slowly the run consumes rows).
 * A server that fails after it sent the first rows cannot change the 200 status: it
 * appends its exception text ("Code: 395, e.displayText() = ...") to the body, or on
 * 25.11+ a line with __exception__<tag> (header X-ClickHouse-Exception-Tag). Every line
 * is therefore checked: a line with the wrong number of fields, one carrying the tag, a
 * body that ends without a newline or a transfer cut short is an error of the cursor,
 * never the end of the rows, so unreadable rows are never taken for deleted ones.
 */


static const char *const ch_source_types[] = {
	"clickhouse-import-table", "clickhouse-import-query", "clickhouse-table-import",
	"clickhouse-query-import", NULL,
};
static const char *const ch_app_options[] = {
	"host", "port", "database", "user", "password", "statementTimeout", NULL,
};
static const char *const ch_required_options[] = { "database", NULL };

static void ch_literal(void *conn, struct strbuf *sb, const struct sql_bind *b);
static void ch_table_info(void *conn, const char *table, const char *K, bool int_key, bool *natural,
			  const char **rowid_col);
static bool ch_text_column(void *conn, const char *table, const char *column);
static void ch_since_number(struct strbuf *sb, const char *col);

static const struct sql_dialect ch_dialect = {
	.name = "ClickHouse",
	.quote = '`',
	.params = SQL_PARAM_LITERAL,
	.pick = SQL_PICK_ARGMAX,
	.text_type = "Nullable(String)",
	.int_type = "Nullable(Int64)",
	.key_collate = "",
	.text_order = "",
	.natural_text_order = "",
	.like_escape = "",
	.true_sql = "1",
	.false_sql = "0",
	.concat_fn = false,
	.cast_text_params = false,
	.avg_cast = NULL,
	.asc_nulls = "",
	.desc_nulls = "",
	.literal = ch_literal,
	.table_info = ch_table_info,
	.text_column = ch_text_column,
	.since_number = ch_since_number,
	.dotted_table = true,
	.substring_fn = "positionCaseInsensitiveUTF8",
	.no_correlated = true,
	.value_tiebreak = true,
};

static void free_cols(struct ch_conn *c)
{
	for (size_t i = 0; i < c->n_cols; i++) {
		free(c->cols[i].name);
		free(c->cols[i].type);
	}
	free(c->cols);
	free(c->types_of);
	c->cols = NULL;
	c->types_of = NULL;
	c->n_cols = 0;
}

/* The watcher's cancel (source.h): the waiting loop aborts its transfer. */
static void ch_cancel_statement(struct source_watch *w)
{
	struct ch_conn *c = (struct ch_conn *)(void *)((char *)w - offsetof(struct ch_conn, watch));
	atomic_store(&c->abort_all, 1);
}

/* ---- connection ---- */

static void conn_free(struct ch_conn *c)
{
	if (!c)
		return;
	source_watch_unregister(&c->watch);
	if (c->multi)
		curl_multi_cleanup(c->multi);
	curl_slist_free_all(c->headers);
	free_cols(c);
	free(c->base_url);
	free(c->database);
	free(c->config_dir);
	free(c->version);
	free(c->timezone);
	free(c);
}

/*
 * Refuse a user whose results the server may end early without an error: an overflow
 * mode other than "throw" that the request could not override (CH_THROW_SETTINGS; a
 * readonly=1 profile, or a mode a newer server has and joey does not set).
 */
static enum jerr ch_check_overflow(struct ch_conn *c, struct jerror *err)
{
	struct ch_req *r = NULL;
	struct strbuf what = STRBUF_INIT, modes = STRBUF_INIT;
	int code;
	enum jerr rc;

	strbuf_addf(&what, "app \"%s\": cannot read the user's settings", c->app->id);
	rc = ch_run_short(c, "SELECT name, value FROM system.settings WHERE name LIKE '%overflow_mode%' AND "
			     "value != 'throw' ORDER BY name FORMAT TabSeparated",
			  what.buf, &r, &code, err);
	if (rc)
		goto out;
	size_t n;
	char *line;
	while ((line = ch_short_line(r, &n))) {
		struct chw_field f[2];
		if (chw_split_tsv(line, n, f, 2))
			strbuf_addf(&modes, "%s%s = %s", modes.len ? ", " : "", f[0].s, f[1].s);
	}
	if (modes.len) {
		rc = jerror_set(err, JERR_SOURCE, "app \"%s\": ClickHouse may end a result early without an error "
						  "for user \"%s\"",
				c->app->id, c->user ? c->user : "default");
		jerror_detail(err, "the user's profile sets %s", modes.buf);
		jerror_hint(err, "set every *_overflow_mode to 'throw' in the user's profile%s: joey would take the "
				 "rows of a result cut short for deleted records",
			    c->no_settings ? " (a readonly=1 profile cannot be changed by the query)" : "");
	}
out:
	ch_req_free(r);
	strbuf_release(&what);
	strbuf_release(&modes);
	return rc;
}

static enum jerr ch_connect(const struct cfg_app *app, const char *config_dir, void **out, struct jerror *err)
{
	struct ch_conn *c = xcalloc(1, sizeof(*c));
	struct strbuf url = STRBUF_INIT, why = STRBUF_INIT, what = STRBUF_INIT;
	enum jerr rc = JERR_OK;
	struct ch_req *r = NULL;
	int code = 0;

	*out = NULL;
	c->app = app;
	c->config_dir = xstrdup(config_dir ? config_dir : "");
	c->database = xstrdup(source_option_text(app, "database") ? source_option_text(app, "database") : "");
	c->user = source_option_text(app, "user");
	c->password = source_option_text(app, "password");
	if (!*c->database) {
		rc = jerror_set(err, JERR_CONFIG, "app \"%s\": option \"database\" is required", app->id);
		goto out;
	}
	if ((rc = source_timeout_option(app, &c->timeout_ms, err)))
		goto out;
	if (!chw_base_url(source_option_text(app, "host"), source_option_text(app, "port"), &url, &why)) {
		rc = jerror_set(err, JERR_CONFIG, "app \"%s\": %s", app->id, why.buf);
		jerror_hint(err, "write the host as a name or address (\"ch.example.com\", which means "
				 "https:// on port 443), \"localhost\" (http:// on 8123) or a URL "
				 "(\"http://10.0.0.5\"), and the port in \"port\"");
		goto out;
	}
	c->base_url = strbuf_detach(&url, NULL);
	ch_http_setup(c);
	source_watch_register(&c->watch, ch_cancel_statement, c->timeout_ms, app->id);

	strbuf_addf(&what, "app \"%s\": cannot connect to ClickHouse, database \"%s\"", app->id, c->database);
	long delay = CH_RETRY_BASE_MS;
	for (int tries = 1;; tries++) {
		struct jerror e2 = JERROR_INIT;
		rc = ch_run_short(c, "SELECT version(), timezone(), currentDatabase()", what.buf, &r, &code, &e2);
		if (rc && code == 164 && !c->no_settings) {
			/* a readonly=1 profile refuses every setting: go without */
			jerror_release(&e2);
			c->no_settings = true;
			tries--;
			continue;
		}
		/* nothing listening (yet), or a connection dropped before an answer: try again */
		bool transient = rc && !code &&
				 (c->last_curl == CURLE_COULDNT_CONNECT || c->last_curl == CURLE_GOT_NOTHING);
		if (rc == JERR_INTERRUPTED || !rc || !transient || tries >= CH_CONNECT_TRIES) {
			if (rc) {
				jerror_release(err);
				*err = e2; /* its hint names the option to check; the tries were logged */
			} else {
				jerror_release(&e2);
			}
			break;
		}
		log_warn("app \"%s\": cannot connect to ClickHouse at %s (try %d of %d), retrying in %ld ms",
			 app->id, c->base_url, tries, CH_CONNECT_TRIES, delay);
		jerror_release(&e2);
		source_sleep_ms(delay);
		delay *= 2;
	}
	if (rc)
		goto out;
	size_t n;
	char *line = ch_short_line(r, &n);
	struct chw_field f[3];
	if (!line || !chw_split_tsv(line, n, f, 3)) {
		rc = jerror_set(err, JERR_SOURCE, "%s", what.buf);
		jerror_detail(err, "%s did not answer like a ClickHouse server", c->base_url);
		goto out;
	}
	c->version = xstrdup(f[0].s);
	c->timezone = xstrdup(f[1].s);
	if (strcmp(c->timezone, "UTC") && strcmp(c->timezone, "Etc/UTC") && strcmp(c->timezone, "UCT"))
		log_warn("app \"%s\": the ClickHouse server's time zone is %s: joey reads DateTime values "
			 "as UTC, so they are off by its offset; set <timezone>UTC</timezone> on the "
			 "server or use DateTime('UTC') columns",
			 app->id, c->timezone);
	if ((rc = ch_check_overflow(c, err)))
		goto out;
	*out = c;
	c = NULL;
out:
	ch_req_free(r);
	conn_free(c);
	strbuf_release(&url);
	strbuf_release(&why);
	strbuf_release(&what);
	return rc;
}

static void ch_disconnect(void *conn)
{
	conn_free(conn);
}

/* ---- column types and literals ---- */

/*
 * The column names and types of src's relation into c->cols: system.columns for a
 * table ("db.table" qualified), DESCRIBE TABLE (<query>) for a source query. Nothing
 * for a Grouparoo-style query source. JERR_CONFIG when the table has no columns there.
 */
static enum jerr ch_load_types(struct ch_conn *c, const struct cfg_source *src, struct jerror *err)
{
	struct strbuf sql = STRBUF_INIT, what = STRBUF_INIT, key = STRBUF_INIT;
	struct ch_req *r = NULL;
	enum jerr rc = JERR_OK;
	int code;

	if (!src->is_query && src->table) {
		const char *dot = strchr(src->table, '.');
		bool qualified = dot && dot != src->table && dot[1];
		strbuf_addstr(&sql, "SELECT name, type FROM system.columns WHERE database = ");
		if (qualified)
			chw_add_string_literal(&sql, src->table, (size_t)(dot - src->table));
		else
			chw_add_string_literal(&sql, c->database, strlen(c->database));
		strbuf_addstr(&sql, " AND table = ");
		const char *t = qualified ? dot + 1 : src->table;
		chw_add_string_literal(&sql, t, strlen(t));
		strbuf_addstr(&sql, " FORMAT TabSeparated");
		strbuf_addf(&key, "t:%s", src->table);
	} else if (src->is_query && src->query && *src->query) {
		strbuf_addstr(&sql, "DESCRIBE TABLE (");
		sql_add_query_text(&sql, src->query);
		strbuf_addstr(&sql, ") FORMAT TabSeparated");
		strbuf_addf(&key, "q:%s", src->query);
	} else {
		goto out;
	}
	if (c->types_of && !strcmp(c->types_of, key.buf))
		goto out;
	free_cols(c);
	strbuf_addf(&what, "source \"%s\": cannot read the column types", sql_source_id(src));
	if ((rc = ch_run_short(c, sql.buf, what.buf, &r, &code, err))) {
		if (src->is_query) {
			sql_check_bad_query(src, err);
		}
		goto out;
	}
	size_t n, alloc = 0;
	char *line;
	while ((line = ch_short_line(r, &n))) {
		struct chw_field f[5];
		/* system.columns: 2 fields; DESCRIBE: 3 (18.16) to 7 (current) */
		char *tab = memchr(line, '\t', n);
		if (!tab)
			continue;
		size_t nf = 1;
		for (size_t i = 0; i < n; i++)
			nf += line[i] == '\t';
		if (nf > 5)
			nf = 5;
		if (!chw_split_tsv(line, n, f, nf) && !chw_split_tsv(line, n, f, 2)) {
			/* more fields than we keep: take the first two by hand */
			*tab = '\0';
			f[0] = (struct chw_field){ line, (size_t)(tab - line), false };
			char *t2 = memchr(tab + 1, '\t', n - (size_t)(tab + 1 - line));
			if (t2)
				*t2 = '\0';
			f[1] = (struct chw_field){ tab + 1, strlen(tab + 1), false };
		}
		ALLOC_GROW(c->cols, c->n_cols + 1, alloc);
		c->cols[c->n_cols].name = xstrdup(f[0].s);
		c->cols[c->n_cols].type = xstrdup(f[1].s);
		c->n_cols++;
	}
	c->types_of = strbuf_detach(&key, NULL);
	if (!c->n_cols && !src->is_query) {
		rc = sql_check_no_table(src, err);
		jerror_detail(err, "app \"%s\", database \"%s\" at %s (or the user may not read it)", c->app->id,
			      c->database, c->base_url);
		/* the database's tables, for did-you-mean */
		struct ch_req *t = NULL;
		struct strbuf q = STRBUF_INIT;
		struct jerror e2 = JERROR_INIT;
		strbuf_addstr(&q, "SELECT name FROM system.tables WHERE database = ");
		chw_add_string_literal(&q, c->database, strlen(c->database));
		strbuf_addstr(&q, " ORDER BY name FORMAT TabSeparated");
		char **names = NULL;
		size_t nn = 0, na = 0;
		if (!ch_run_short(c, q.buf, "tables", &t, &code, &e2)) {
			size_t ln;
			char *l;
			while ((l = ch_short_line(t, &ln)) && nn < 1000) {
				ALLOC_GROW(names, nn + 1, na);
				names[nn++] = xstrdup(l);
			}
		}
		sql_hint_names(err, src->table, (const char *const *)names, nn, "the database's tables are");
		sql_free_names(names, nn);
		jerror_release(&e2);
		ch_req_free(t);
		strbuf_release(&q);
		free_cols(c);
	}
out:
	ch_req_free(r);
	strbuf_release(&sql);
	strbuf_release(&what);
	strbuf_release(&key);
	return rc;
}

static const struct ch_col *find_col(const struct ch_conn *c, const char *name)
{
	for (size_t i = 0; name && i < c->n_cols; i++)
		if (!strcmp(c->cols[i].name, name))
			return &c->cols[i];
	for (size_t i = 0; name && i < c->n_cols; i++)
		if (!strcasecmp(c->cols[i].name, name))
			return &c->cols[i];
	return NULL;
}

/* A type name safe to paste after CAST(... AS : letters, digits, _ ( ) , and spaces. */
static bool plain_type(const char *t, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)t[i]) && !strchr("_(), ", t[i]))
			return false;
	return n > 0;
}

static bool is_number_text(const char *s)
{
	char *end;
	if (!*s || isspace((unsigned char)*s))
		return false;
	errno = 0;
	(void)strtod(s, &end);
	if (*end || end == s)
		return false;
	for (const char *p = s; *p; p++) /* no inf/nan/hex: digits, sign, point, exponent */
		if (!isdigit((unsigned char)*p) && !strchr("+-.eE", *p))
			return false;
	return true;
}

/*
 * A value as a ClickHouse literal of the type of the column it is compared with
 * (ClickHouse compares neither Int with String nor DateTime with a number): numbers bare
 * for number columns (other text as CAST('..' AS T), which the server rejects with its
 * own message), dates parsed with parseDateTimeBestEffort, strings quoted.
 */
static void ch_literal(void *conn, struct strbuf *sb, const struct sql_bind *b)
{
	const struct ch_conn *c = conn;
	const struct ch_col *col = c ? find_col(c, b->column) : NULL;
	bool nullable;
	const char *inner;
	size_t ilen;
	enum chw_type t = col ? chw_type_parse(col->type, strlen(col->type), &nullable, &inner, &ilen) : CHW_OTHER;

	switch (t) {
	case CHW_INT:
	case CHW_FLOAT:
	case CHW_DECIMAL:
		if (b->kind != SQL_BIND_TEXT || is_number_text(b->s)) {
			strbuf_addstr(sb, b->s);
			return;
		}
		if (plain_type(inner, ilen)) {
			strbuf_addstr(sb, "CAST(");
			chw_add_string_literal(sb, b->s, strlen(b->s));
			strbuf_addf(sb, " AS %.*s)", (int)ilen, inner);
			return;
		}
		break;
	case CHW_DATE:
	case CHW_DATETIME:
		if (b->kind == SQL_BIND_INT) {
			strbuf_addf(sb, t == CHW_DATE ? "toDate(toDateTime(%s))" : "toDateTime(%s)", b->s);
			return;
		}
		strbuf_addstr(sb, t == CHW_DATE ? "toDate(parseDateTimeBestEffort(" : "parseDateTimeBestEffort(");
		chw_add_string_literal(sb, b->s, strlen(b->s));
		strbuf_addstr(sb, t == CHW_DATE ? "))" : ")");
		return;
	case CHW_STRING:
	case CHW_ENUM:
		chw_add_string_literal(sb, b->s, strlen(b->s));
		return;
	case CHW_BOOL:
	case CHW_UUID:
		strbuf_addstr(sb, "CAST(");
		chw_add_string_literal(sb, b->s, strlen(b->s));
		strbuf_addstr(sb, t == CHW_BOOL ? " AS Bool)" : " AS UUID)");
		return;
	default:
		break;
	}
	if (b->kind != SQL_BIND_TEXT)
		strbuf_addstr(sb, b->s);
	else
		chw_add_string_literal(sb, b->s, strlen(b->s));
}

static void ch_table_info(void *conn, const char *table, const char *K, bool int_key, bool *natural,
			  const char **rowid_col)
{
	const struct ch_conn *c = conn;
	const struct ch_col *col = find_col(c, K);
	bool nullable;
	const char *inner;
	size_t ilen;
	(void)table;
	*rowid_col = NULL; /* no physical row order */
	*natural = false;
	if (!col)
		return;
	enum chw_type t = chw_type_parse(col->type, strlen(col->type), &nullable, &inner, &ilen);
	*natural = int_key ? t == CHW_INT && strncmp(inner, "UInt64", 6) && strncmp(inner, "Int128", 6) &&
				     strncmp(inner, "Int256", 6) && strncmp(inner, "UInt128", 7) &&
				     strncmp(inner, "UInt256", 7)
			   : (ilen == 6 && !memcmp(inner, "String", 6));
}

/* A String, FixedString or Enum column: ch_literal would quote a number mark as text. */
static bool ch_text_column(void *conn, const char *table, const char *column)
{
	const struct ch_conn *c = conn;
	const struct ch_col *col = c ? find_col(c, column) : NULL;
	bool nullable;
	const char *inner;
	size_t ilen;
	(void)table;
	if (!col)
		return false;
	enum chw_type t = chw_type_parse(col->type, strlen(col->type), &nullable, &inner, &ilen);
	return t == CHW_STRING || t == CHW_ENUM;
}

/* The text (a FixedString's without its padding zero bytes) as a Float64, NULL when it
 * is not a number (Float64 rounds monotonically, so a value past the mark is never
 * below it). */
static void ch_since_number(struct strbuf *sb, const char *col)
{
	strbuf_addf(sb, "toFloat64OrNull(toStringCutToZero(toString(%s)))", col);
}

/* ---- check ---- */

enum jerr ch_build(struct ch_conn *c, const struct cfg_source *src, const struct source_read *read,
			  struct sql_plan *p, struct jerror *err)
{
	enum jerr rc = ch_load_types(c, src, err);
	if (rc)
		return rc;
	return sql_plan_build(&ch_dialect, c, src, read, p, err);
}

enum jerr ch_check(void *conn, const struct cfg_source *src, struct jerror *err)
{
	struct ch_conn *c = conn;
	struct sql_plan p;
	struct strbuf sql = STRBUF_INIT, what = STRBUF_INIT;
	struct ch_req *r = NULL;
	enum jerr rc;
	int code;

	sql_plan_init(&p);
	if ((rc = ch_load_types(c, src, err)))
		goto out;
	if (c->n_cols) {
		const char **names = xcalloc(c->n_cols + 1, sizeof(*names));
		for (size_t i = 0; i < c->n_cols; i++)
			names[i] = c->cols[i].name;
		rc = sql_check_columns(src, src->is_query ? NULL : src->table, names, c->n_cols, err);
		free(names);
		if (rc)
			goto out;
	}
	if ((rc = sql_plan_build(&ch_dialect, c, src, NULL, &p, err)))
		goto out;
	/* the statement itself, without reading a row */
	strbuf_addstr(&sql, "SELECT * FROM (");
	strbuf_addslice(&sql, (struct slice){ p.sql.buf, p.sql.len });
	strbuf_addstr(&sql, ") LIMIT 0 FORMAT TabSeparated");
	strbuf_addf(&what, "source \"%s\": query failed", sql_source_id(src));
	rc = ch_run_short(c, sql.buf, what.buf, &r, &code, err);
out:
	ch_req_free(r);
	sql_plan_release(&p);
	strbuf_release(&sql);
	strbuf_release(&what);
	return rc;
}

static enum jerr ch_describe(void *conn, const struct cfg_source *src, struct strbuf *out, struct jerror *err)
{
	struct sql_plan p;
	sql_plan_init(&p);
	enum jerr rc = ch_build(conn, src, NULL, &p, err);
	if (!rc)
		sql_plan_describe(&ch_dialect, &p, out);
	sql_plan_release(&p);
	return rc;
}

const struct source_ops source_clickhouse = {
	.app_type = "clickhouse",
	.source_types = ch_source_types,
	.app_options = ch_app_options,
	.required_app_options = ch_required_options,
	.connect = ch_connect,
	.check = ch_check,
	.open_cursor = ch_open_cursor,
	.describe = ch_describe,
	.disconnect = ch_disconnect,
	.sample = ch_sample,
	.sample_query = ch_sample_query,
};
