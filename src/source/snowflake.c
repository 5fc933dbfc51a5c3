/*
 * snowflake.c: the Snowflake connector over the SQL API v2 (libcurl, jansson, OpenSSL
 * JWTs): its options and dialect, connecting (in named steps), check, describe and
 * opening a cursor; the two ops tables (source_snowflake, source_snowflake_keypair).
 * Owns each struct sf_conn from connect to disconnect. Requests and statements are in
 * snowflake_statement.c, answer decoding and the cursor in snowflake_rows.c.
 */
#include <ctype.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>
#include <openssl/crypto.h>

#include "base/xalloc.h"
#include "source/jwt.h"
#include "source/snowflake_internal.h"

/*
 * Design note (docs/internals/sources.md, "Snowflake").
 *
 * One statement per source, built by sqlgen.c with the Snowflake dialect: "x" identifiers
 * exactly as configured (Snowflake stores unquoted names upper-case, so configs spell
 * them as stored), positional ? binds typed FIXED/REAL/TEXT, picks through a
 * ROW_NUMBER() window layer, arrays as ARRAY_AGG(...) WITHIN GROUP (ORDER BY ...), NULL
 * sort keys made smallest (NULLS FIRST/LAST), ties broken by the value itself (no rowid).
 *
 * A statement is POST /api/v2/statements?requestId=<uuid>; 200 carries the result's
 * metadata and partition 0, 202 a statementHandle polled with GET until it is done.
 * 429 and 5xx are retried with backoff and jitter (a resubmitted POST keeps its
 * requestId and adds retry=true, so Snowflake does not run it twice), a 401 once after
 * minting a new JWT. Partitions 1..n are fetched one at a time as the cursor reaches
 * them: memory holds one partition, whatever the result's size. A failure on a later
 * partition fails the cursor (and the run): rows never read are never taken for gone.
 *
 * Authentication: snowflake-keypair signs an RS256 JWT (iss ACCOUNT.USER.SHA256:<fp>,
 * sub ACCOUNT.USER, 59 minutes, renewed after 50); snowflake sends options.password as a
 * programmatic access token (or an OAuth token with authenticator "oauth"): the SQL API has
 * no password login. Secrets never appear in a message.
 */

static const char *const sf_source_types[] = {
	"snowflake-import-table", "snowflake-import-query", "snowflake-table-import", "snowflake-query-import", NULL,
};
static const char *const sf_app_options[] = {
	"account", "username", "password", "private_key", "private_key_passphrase", "warehouse", "database",
	"schema", "role", "authenticator", "statementTimeout", "endpoint", NULL,
};
static const char *const sf_required_options[] = { "account", "username", "warehouse", "database", NULL };

static bool sf_text_column(void *conn, const char *table, const char *column);
static void sf_since_number(struct strbuf *sb, const char *col);

static const struct sql_dialect sf_dialect = {
	.name = "snowflake",
	.quote = '"',
	.params = SQL_PARAM_QMARK,
	.pick = SQL_PICK_WINDOW_WITHIN_GROUP,
	.text_type = "VARCHAR",
	.int_type = "INTEGER",
	.key_collate = "",
	.text_order = "",
	.natural_text_order = "",
	.like_escape = " ESCAPE '\\\\'", /* a Snowflake literal: backslash escapes, '\\' is one */
	.true_sql = "TRUE",
	.false_sql = "FALSE",
	.concat_fn = false,
	.cast_text_params = false,
	.avg_cast = NULL,
	.asc_nulls = " NULLS FIRST",
	.desc_nulls = " NULLS LAST",
	.value_tiebreak = true,
	.table_info = NULL,
	.text_column = sf_text_column,
	.since_number = sf_since_number,
};

/* ---- options ---- */

/*
 * A context name as Snowflake's login treated it: a plain identifier is upper-cased, a
 * double-quoted one keeps its case without the quotes.
 */
static char *context_name(const char *v)
{
	size_t n = strlen(v);
	if (n >= 2 && v[0] == '"' && v[n - 1] == '"')
		return xstrndup(v + 1, n - 2);
	bool plain = isalpha((unsigned char)v[0]) || v[0] == '_';
	for (const char *s = v; *s; s++)
		plain &= isalnum((unsigned char)*s) || *s == '_' || *s == '$';
	char *out = xstrdup(v);
	if (plain)
		for (char *s = out; *s; s++)
			*s = (char)toupper((unsigned char)*s);
	return out;
}

/* The account part of a JWT's iss/sub (docs: drop region and cloud, upper-case). */
static void jwt_account(struct strbuf *sb, const char *account)
{
	size_t n = strcspn(account, strstr(account, ".global") ? "-" : ".");
	for (size_t i = 0; i < n; i++)
		strbuf_addch(sb, toupper((unsigned char)account[i]));
}

/* ---- connection ---- */

static void sf_free(struct sf_conn *c)
{
	if (!c)
		return;
	source_watch_unregister(&c->watch);
	whttp_release(&c->http);
	EVP_PKEY_free(c->key);
	OPENSSL_cleanse(c->bearer.buf, c->bearer.len);
	strbuf_release(&c->bearer);
	strbuf_release(&c->fingerprint);
	free(c->base);
	free(c->database);
	free(c->schema);
	free(c->warehouse);
	free(c->role);
	free(c->user);
	free(c->jwt_subject);
	free(c);
}

static void sf_disconnect(void *conn)
{
	sf_free(conn);
}

/* Connect step 1: the required options, statementTimeout, the session's context names. */
static enum jerr sf_read_options(struct sf_conn *c, const struct cfg_app *app, int64_t *timeout_ms,
				 struct jerror *err)
{
	enum jerr rc;
	for (const char *const *k = sf_required_options; *k; k++)
		if (!source_option_text(app, *k))
			return jerror_set(err, JERR_CONFIG, "app \"%s\": option \"%s\" is required", app->id, *k);
	if ((rc = source_timeout_option(app, timeout_ms, err)))
		return rc;
	c->timeout_s = (*timeout_ms + 999) / 1000;
	c->user = xstrdup(source_option_text(app, "username"));
	c->database = context_name(source_option_text(app, "database"));
	c->schema = context_name(source_option_text(app, "schema") ? source_option_text(app, "schema") : "PUBLIC");
	c->warehouse = context_name(source_option_text(app, "warehouse"));
	c->role = source_option_text(app, "role") ? context_name(source_option_text(app, "role")) : NULL;
	return JERR_OK;
}

/* Connect step 2, where: the account's host, or options.endpoint (tests, proxies). */
static enum jerr sf_resolve_host(struct sf_conn *c, const struct cfg_app *app, const char *account,
				 struct jerror *err)
{
	const char *ep = source_option_text(app, "endpoint");
	if (ep) {
		size_t n;
		if (whttp_endpoint(app->id, ep, &n, err)) {
			jerror_hint(err, "endpoint is meant for tests and proxies; leave it out to use the account's "
					 "host");
			return JERR_CONFIG;
		}
		c->base = xstrndup(ep, n);
		return JERR_OK;
	}
	struct strbuf sb = STRBUF_INIT;
	size_t n = strlen(account);
	const char *suffix = ".snowflakecomputing.com";
	if (n > strlen(suffix) && !strcasecmp(account + n - strlen(suffix), suffix))
		n -= strlen(suffix);
	strbuf_addstr(&sb, "https://");
	for (size_t i = 0; i < n; i++) {
		char ch = account[i];
		if (!(isalnum((unsigned char)ch) || ch == '-' || ch == '_' || ch == '.')) {
			jerror_set(err, JERR_CONFIG, "app \"%s\": options.account \"%s\" is not an account "
						     "identifier",
				   app->id, account);
			jerror_hint(err, "use the part of the account URL before .snowflakecomputing.com, e.g. "
					 "\"xy12345.us-east-1\" or \"myorg-myaccount\"");
			strbuf_release(&sb);
			return JERR_CONFIG;
		}
		strbuf_addch(&sb, ch == '_' ? '-' : ch); /* Snowflake: '-' in host names */
	}
	strbuf_addstr(&sb, ".snowflakecomputing.com");
	c->base = strbuf_detach(&sb, NULL);
	return JERR_OK;
}

/* Connect step 3, who: the JWT's subject and the key pair, or the token in options.password. */
static enum jerr sf_read_credentials(struct sf_conn *c, const struct cfg_app *app, const char *account,
				     const char *user, struct jerror *err)
{
	struct strbuf sb = STRBUF_INIT;
	enum jerr rc = JERR_OK;
	jwt_account(&sb, account);
	strbuf_addch(&sb, '.');
	for (const char *s = user; *s; s++)
		strbuf_addch(&sb, toupper((unsigned char)*s));
	c->jwt_subject = strbuf_detach(&sb, NULL);
	if (!strcmp(app->type, "snowflake-keypair")) {
		c->keypair = true;
		c->token_type = "KEYPAIR_JWT";
		if (!source_option_text(app, "private_key"))
			return jerror_set(err, JERR_CONFIG, "app \"%s\": option \"private_key\" is required", app->id);
		strbuf_addf(&sb, "app \"%s\": options.private_key", app->id);
		rc = jwt_load_private_key(source_option_text(app, "private_key"),
					  source_option_text(app, "private_key_passphrase"), sb.buf, &c->key, err);
		strbuf_release(&sb);
		if (!rc)
			jwt_fingerprint(c->key, &c->fingerprint);
		return rc;
	}
	const char *tt = source_option_text(app, "authenticator");
	if (!source_option_text(app, "password")) {
		rc = jerror_set(err, JERR_CONFIG, "app \"%s\": option \"password\" is required", app->id);
		jerror_hint(err, "put a programmatic access token for user %s in options.password, or use a "
				 "\"snowflake-keypair\" app",
			    user);
		return rc;
	}
	if (tt && strcasecmp(tt, "programmatic_access_token") && strcasecmp(tt, "oauth"))
		return jerror_set(err, JERR_CONFIG, "app \"%s\": options.authenticator must be "
						    "\"programmatic_access_token\" (the default) or \"oauth\"",
				  app->id);
	c->token_type = tt && !strcasecmp(tt, "oauth") ? "OAUTH" : "PROGRAMMATIC_ACCESS_TOKEN";
	strbuf_addstr(&c->bearer, source_option_text(app, "password"));
	for (const char *s = c->bearer.buf; *s; s++) {
		if (*s <= ' ' || *s == 0x7f) {
			rc = jerror_set(err, JERR_CONFIG, "app \"%s\": options.password contains spaces or line "
							  "breaks, which a token cannot have",
					app->id);
			jerror_hint(err, "copy the programmatic access token again");
			return rc;
		}
	}
	return JERR_OK;
}

/* Connect step 4, prove it: a harmless statement that names the session's context. */
static enum jerr sf_check_session(struct sf_conn *c, const struct cfg_app *app, const char *user,
				  struct jerror *err)
{
	struct strbuf what = STRBUF_INIT;
	struct sf_result r;
	enum jerr rc;
	strbuf_addf(&what, "app \"%s\"", app->id);
	rc = sf_exec(c,
		     "SELECT CURRENT_USER() AS \"USER\", CURRENT_ROLE() AS \"ROLE\", CURRENT_DATABASE() AS \"DATABASE\", "
		     "CURRENT_SCHEMA() AS \"SCHEMA\", CURRENT_WAREHOUSE() AS \"WAREHOUSE\"",
		     NULL, 0, &r, what.buf, err);
	if (rc) {
		if (rc != JERR_INTERRUPTED)
			jerror_prefix(err, "cannot connect to Snowflake at %s as %s: ", c->base, user);
		goto out;
	}
	json_t *row;
	if ((rc = sf_result_next(c, &r, &row, what.buf, err)))
		goto out;
	if (!row || r.n_cols < 5) {
		rc = jerror_set(err, JERR_SOURCE, "app \"%s\": Snowflake answered the connection check with no row",
				app->id);
		goto out;
	}
	const char *role = sf_cell_str(row, 1) ? sf_cell_str(row, 1) : "(none)";
	if (!sf_cell_str(row, 2)) {
		rc = jerror_set(err, JERR_CONFIG, "app \"%s\": database \"%s\" does not exist, or role %s cannot use it",
				app->id, c->database, role);
		jerror_hint(err, "names are case-sensitive (a plain name is upper-cased: write \"\\\"name\\\"\" to keep "
				 "lower case); GRANT USAGE ON DATABASE %s TO ROLE <role>",
			    c->database);
	} else if (!sf_cell_str(row, 3)) {
		rc = jerror_set(err, JERR_CONFIG, "app \"%s\": schema \"%s\" does not exist in database \"%s\", or role "
						  "%s cannot use it",
				app->id, c->schema, c->database, role);
		jerror_hint(err, "options.schema defaults to PUBLIC; GRANT USAGE ON SCHEMA %s.%s TO ROLE <role>",
			    c->database, c->schema);
	} else if (!sf_cell_str(row, 4)) {
		rc = jerror_set(err, JERR_CONFIG, "app \"%s\": warehouse \"%s\" does not exist, or role %s cannot use it",
				app->id, c->warehouse, role);
		jerror_hint(err, "GRANT USAGE ON WAREHOUSE %s TO ROLE <role>", c->warehouse);
	}
out:
	sf_result_release(&r);
	strbuf_release(&what);
	return rc;
}

static enum jerr sf_connect(const struct cfg_app *app, const char *config_dir, void **out, struct jerror *err)
{
	struct sf_conn *c = xcalloc(1, sizeof(*c));
	int64_t timeout_ms = 0;
	enum jerr rc;
	const char *account = source_option_text(app, "account"), *user = source_option_text(app, "username");
	(void)config_dir;

	*out = NULL;
	c->app = app;
	strbuf_init(&c->bearer, 0);
	strbuf_init(&c->fingerprint, 0);
	whttp_init(&c->http);
	if ((rc = sf_read_options(c, app, &timeout_ms, err)) || (rc = sf_resolve_host(c, app, account, err)) ||
	    (rc = sf_read_credentials(c, app, account, user, err)))
		goto out;
	source_watch_register(&c->watch, sf_cancel, timeout_ms, app->id);
	if ((rc = sf_check_session(c, app, user, err)))
		goto out;
	*out = c;
	c = NULL;
out:
	sf_free(c);
	return rc;
}

/* ---- check ---- */

/* The first column of every row of sql's result (copied). */
static enum jerr sf_names(struct sf_conn *c, const char *sql, const struct sql_bind *binds, size_t nb, char ***names,
			  size_t *n, const char *what, struct jerror *err)
{
	struct sf_result r;
	json_t *row;
	enum jerr rc = sf_exec(c, sql, binds, nb, &r, what, err);
	size_t alloc = 0;
	*names = NULL;
	*n = 0;
	while (!rc && !(rc = sf_result_next(c, &r, &row, what, err)) && row) {
		ALLOC_GROW(*names, *n + 1, alloc);
		(*names)[(*n)++] = xstrdup(sf_cell_str(row, 0) ? sf_cell_str(row, 0) : "");
	}
	sf_result_release(&r);
	return rc;
}

/* A TEXT (VARCHAR, CHAR, STRING) column, from INFORMATION_SCHEMA.COLUMNS; when that
 * cannot be read, taken as one (sf_since_number reads any column, never skipping). */
static bool sf_text_column(void *conn, const char *table, const char *column)
{
	struct sf_conn *c = conn;
	struct sql_bind b[3] = { { .kind = SQL_BIND_TEXT, .s = NULL }, { .kind = SQL_BIND_TEXT, .s = table },
				 { .kind = SQL_BIND_TEXT, .s = column } };
	struct jerror err = JERROR_INIT;
	char **types = NULL;
	size_t n = 0;
	bool text = true;
	if (!c)
		return false;
	b[0].s = c->schema;
	if (!sf_names(c, "SELECT \"DATA_TYPE\" FROM \"INFORMATION_SCHEMA\".\"COLUMNS\" WHERE \"TABLE_SCHEMA\" = ? "
			 "AND \"TABLE_NAME\" = ? AND \"COLUMN_NAME\" = ?",
		      b, 3, &types, &n, "the since column's type", &err) && n == 1)
		text = !strcmp(types[0], "TEXT");
	sql_free_names(types, n);
	jerror_release(&err);
	return text;
}

/* Any value as a number, NULL when its text is not one (FLOAT rounds monotonically, so a
 * value past the mark is never below it). */
static void sf_since_number(struct strbuf *sb, const char *col)
{
	strbuf_addf(sb, "TRY_TO_DOUBLE(TO_VARCHAR(%s))", col);
}

static enum jerr sf_check(void *conn, const struct cfg_source *src, struct jerror *err)
{
	struct sf_conn *c = conn;
	struct strbuf what = STRBUF_INIT, sql = STRBUF_INIT;
	struct sql_plan p;
	struct sf_result r;
	char **names = NULL;
	size_t n = 0;
	enum jerr rc = JERR_OK;

	memset(&r, 0, sizeof(r));
	sql_plan_init(&p);
	strbuf_addf(&what, "source \"%s\"", sql_source_id(src));
	if (!src->is_query && src->table) {
		struct sql_bind b[2] = { { .kind = SQL_BIND_TEXT, .s = c->schema }, { .kind = SQL_BIND_TEXT, .s = src->table } };
		rc = sf_names(c, "SELECT \"COLUMN_NAME\" FROM \"INFORMATION_SCHEMA\".\"COLUMNS\" WHERE \"TABLE_SCHEMA\" = ? "
				 "AND \"TABLE_NAME\" = ? ORDER BY \"ORDINAL_POSITION\"",
			      b, 2, &names, &n, what.buf, err);
		if (rc)
			goto out;
		if (!n) {
			char **tables = NULL;
			size_t nt = 0;
			struct jerror terr = JERROR_INIT;
			rc = sql_check_no_table(src, err);
			jerror_detail(err, "app \"%s\": database \"%s\", schema \"%s\" (or role %s may not read it)",
				      c->app->id, c->database, c->schema, c->role ? c->role : "(default)");
			if (!sf_names(c, "SELECT \"TABLE_NAME\" FROM \"INFORMATION_SCHEMA\".\"TABLES\" WHERE "
					 "\"TABLE_SCHEMA\" = ? ORDER BY 1",
				      b, 1, &tables, &nt, what.buf, &terr))
				sql_hint_names(err, src->table, (const char *const *)tables, nt,
					       "the schema's tables are (names are case-sensitive)");
			jerror_release(&terr);
			sql_free_names(tables, nt);
			goto out;
		}
	} else if (src->is_query && src->query) {
		sql_check_query_sql(&sql, &sf_dialect, src->query);
		if ((rc = sf_exec(c, sql.buf, NULL, 0, &r, what.buf, err))) {
			jerror_prefix(err, "the source query is invalid: ");
			goto out;
		}
		n = r.n_cols;
		names = xcalloc(n + 1, sizeof(char *));
		for (size_t i = 0; i < n; i++)
			names[i] = xstrdup(r.cols[i].name);
		sf_result_release(&r);
	}
	if (names && (rc = sql_check_columns(src, src->is_query ? NULL : src->table, (const char *const *)names, n,
					     err)))
		goto out;
	/* the statement itself, compiled and run for no rows */
	if ((rc = sql_plan_build(&sf_dialect, c, src, NULL, &p, err)))
		goto out;
	strbuf_reset(&sql);
	strbuf_addf(&sql, "SELECT * FROM (%s) AS \"joey$check\" LIMIT 0", p.sql.buf);
	rc = sf_exec(c, sql.buf, p.binds, p.n_binds, &r, what.buf, err);
out:
	sf_result_release(&r);
	sql_free_names(names, n);
	sql_plan_release(&p);
	strbuf_release(&what);
	strbuf_release(&sql);
	return rc;
}

static enum jerr sf_describe(void *conn, const struct cfg_source *src, struct strbuf *out, struct jerror *err)
{
	return sql_describe_source(&sf_dialect, conn, src, out, err);
}

static enum jerr sf_open_cursor(void *conn, const struct cfg_source *src, const struct source_read *read,
				struct source_cursor **out, struct jerror *err)
{
	struct sf_conn *c = conn;
	struct sql_plan p;
	struct strbuf what = STRBUF_INIT;
	enum jerr rc;

	*out = NULL;
	sql_plan_init(&p);
	if ((rc = sql_plan_build(&sf_dialect, c, src, read, &p, err)))
		goto out;
	struct sf_cursor *cur = xcalloc(1, sizeof(*cur));
	wrows_init(&cur->w, &sf_cursor_ops, src, p.grouped, p.int_key, p.key_column, p.since_col);
	cur->conn = c;
	strbuf_addf(&what, "source \"%s\"", sql_source_id(src));
	rc = sf_exec(c, p.sql.buf, p.binds, p.n_binds, &cur->res, what.buf, err);
	rc = wrows_opened(&cur->w, rc, cur->res.n_cols, out, err);
out:
	strbuf_release(&what);
	sql_plan_release(&p);
	return rc;
}

/* ---- sample (the UI's editors) ---- */

/*
 * A sample's columns (at most SOURCE_SAMPLE_MAX_COLUMNS) and at most limit rows of r
 * into out, each cell as text through sql_sample_value (the SQL API sends every value
 * as a string or null).
 */
static enum jerr sf_sample_rows(struct sf_conn *c, struct sf_result *r, size_t limit, struct source_sample *out,
				const char *what, struct jerror *err)
{
	size_t alloc = 0;
	json_t *row;
	enum jerr rc = JERR_OK;

	sql_sample_columns(out, r->n_cols);
	for (size_t i = 0; i < out->n_columns; i++)
		out->columns[i] = xstrdup(r->cols[i].name ? r->cols[i].name : "");
	while (out->n_columns && out->n_rows < limit && !(rc = sf_result_next(c, r, &row, what, err)) && row) {
		char **cells = sql_sample_add_row(out, &alloc);
		for (size_t i = 0; i < out->n_columns; i++) {
			const char *v = sf_cell_str(row, i);
			cells[i] = v ? sql_sample_value(v, strlen(v)) : NULL;
		}
	}
	if (rc)
		return rc;
	sql_sample_end_rows(out);
	return JERR_OK;
}

/* A preview's statement, one read-only statement, and its rows (wrows_sample_run_fn). */
static enum jerr sf_sample_run(void *conn, const char *sql, bool query, size_t limit, struct source_sample *out,
			       const char *what, struct jerror *err)
{
	struct sf_conn *c = conn;
	struct sf_result r;
	enum jerr rc;

	memset(&r, 0, sizeof(r));
	rc = sf_exec(c, sql, NULL, 0, &r, what, err);
	if (query)
		rc = wrows_sample_refused(rc, c->app->id, err);
	if (!rc)
		rc = sf_sample_rows(c, &r, limit, out, what, err);
	sf_result_release(&r);
	return rc;
}

/* The tables and views of the app's schema (INFORMATION_SCHEMA.TABLES, by name) into out (wrows_sample_list_fn). */
static enum jerr sf_list_tables(void *conn, struct source_sample *out, const char *what, struct jerror *err)
{
	struct sf_conn *c = conn;
	struct sql_bind b[1] = { { .kind = SQL_BIND_TEXT, .s = c->schema } };
	enum jerr rc;

	rc = sf_names(c, "SELECT \"TABLE_NAME\" FROM \"INFORMATION_SCHEMA\".\"TABLES\" WHERE \"TABLE_SCHEMA\" = ? "
			 "ORDER BY 1",
		      b, 1, &out->tables, &out->n_tables, what, err);
	if (rc)
		jerror_prefix(err, "cannot list its tables: ");
	return rc;
}

/*
 * The app's tables, and with table set its first rows: SELECT * FROM "table" LIMIT n in
 * the session's database and schema, one read-only statement.
 */
static enum jerr sf_sample(void *conn, const char *table, size_t limit, struct source_sample *out,
			   struct jerror *err)
{
	return wrows_sample_table(conn, sf_list_tables, sf_sample_run, ((struct sf_conn *)conn)->app->id, &sf_dialect,
				  table, limit, out, err);
}

/*
 * A query's columns and first rows (source_ops.sample_query): the query a derived table
 * (sql_sample_query_sql), so only a query can run there; the SQL API runs one statement
 * per request (MULTI_STATEMENT_COUNT is never sent, so "a; b" fails), under the app's
 * statementTimeout.
 */
static enum jerr sf_sample_query(void *conn, const char *query, size_t limit, struct source_sample *out,
				 struct jerror *err)
{
	return wrows_sample_query(conn, sf_sample_run, ((struct sf_conn *)conn)->app->id, query, limit, out, err);
}

const struct source_ops source_snowflake = {
	.app_type = "snowflake",
	.source_types = sf_source_types,
	.app_options = sf_app_options,
	.required_app_options = sf_required_options,
	.connect = sf_connect,
	.check = sf_check,
	.open_cursor = sf_open_cursor,
	.describe = sf_describe,
	.disconnect = sf_disconnect,
	.sample = sf_sample,
	.sample_query = sf_sample_query,
};

/* The key-pair app type: the same connector; connect reads app->type. */
const struct source_ops source_snowflake_keypair = {
	.app_type = "snowflake-keypair",
	.source_types = NULL,
	.app_options = sf_app_options,
	.required_app_options = sf_required_options,
	.connect = sf_connect,
	.check = sf_check,
	.open_cursor = sf_open_cursor,
	.describe = sf_describe,
	.disconnect = sf_disconnect,
	.sample = sf_sample,
	.sample_query = sf_sample_query,
};
