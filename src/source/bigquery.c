/*
 * bigquery.c: the BigQuery connector over the REST API v2 (libcurl, jansson,
 * service-account JWTs): its options and dialect, connecting, the column types of a
 * source (and the parameter types they give), check, describe and opening a cursor;
 * the ops table source_bigquery. Owns each struct bq_conn from connect to disconnect
 * (with its cached column types). Requests and jobs are in bigquery_statement.c,
 * answer decoding and the cursor in bigquery_rows.c.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>
#include <openssl/crypto.h>

#include "base/xalloc.h"
#include "source/bigquery_internal.h"
#include "source/jwt.h"

/*
 * Design note (docs/internals/sources.md, "BigQuery").
 *
 * Authentication: a service-account JWT (iss client_email, scope .../auth/bigquery, aud
 * the token URL, one hour) is exchanged at the OAuth token endpoint for an access
 * token, cached and renewed a minute before it expires or after a 401.
 *
 * One statement per source, built by sqlgen.c with the BigQuery dialect: `x`
 * identifiers (a dotted table is a path), positional ? parameters typed by the column
 * they are compared with (GoogleSQL does not coerce STRING parameters to INT64 or
 * TIMESTAMP), the column types read once per source and connection (tables.get, or a
 * dry run of a query source), picks through a ROW_NUMBER() window layer, arrays as
 * ARRAY_AGG(... IGNORE NULLS ORDER BY ...). jobs.query runs it (useLegacySql false,
 * defaultDataset, location, int64 timestamps, a requestId reused on retries); while
 * jobComplete is false the job is polled with getQueryResults, then pages are read one
 * at a time with pageToken as the cursor reaches them. 429, 5xx, rateLimitExceeded and
 * backendError are retried with backoff; a failure on a later page fails the cursor.
 */

static const char *const bq_source_types[] = {
	"bigquery-import-table", "bigquery-import-query", "bigquery-table-import", "bigquery-query-import", NULL,
};
static const char *const bq_app_options[] = {
	"project_id", "dataset", "client_email", "private_key", "location", "statementTimeout", "endpoint", NULL,
};
static const char *const bq_required_options[] = { "project_id", "dataset", "client_email", "private_key", NULL };

static bool bq_text_column(void *conn, const char *table, const char *column);
static void bq_since_number(struct strbuf *sb, const char *col);

static const struct sql_dialect bq_dialect = {
	.name = "bigquery",
	.quote = '`',
	.params = SQL_PARAM_QMARK,
	.pick = SQL_PICK_WINDOW_IGNORE_NULLS,
	.text_type = "STRING",
	.int_type = "INT64",
	.key_collate = "",
	.text_order = "",
	.natural_text_order = "",
	.like_escape = "", /* BigQuery's LIKE takes \ as its escape character */
	.true_sql = "TRUE",
	.false_sql = "FALSE",
	.concat_fn = false,
	.cast_text_params = false,
	.avg_cast = NULL,
	.asc_nulls = "", /* BigQuery's own order: NULLs first ascending, last descending */
	.desc_nulls = "",
	.ident_backslash = true,
	.value_tiebreak = true,
	.table_info = NULL,
	.text_column = bq_text_column,
	.since_number = bq_since_number,
};

static const char *param_type(const char *schema_type)
{
	switch (bq_type_of(schema_type)) {
	case BQ_INT: return "INT64";
	case BQ_FLOAT: return "FLOAT64";
	case BQ_NUMERIC: return !strcasecmp(schema_type, "BIGNUMERIC") ? "BIGNUMERIC" : "NUMERIC";
	case BQ_BOOL: return "BOOL";
	case BQ_BYTES: return "BYTES";
	case BQ_DATE: return "DATE";
	case BQ_DATETIME: return "DATETIME";
	case BQ_TIME: return "TIME";
	case BQ_TIMESTAMP: return "TIMESTAMP";
	default: return "STRING";
	}
}

/* The dataset's REST address, <api>/projects/<project>/datasets/<dataset> (names escaped), appended to url. */
static void bq_dataset_url(const struct bq_conn *c, const char *project, const char *dataset, struct strbuf *url)
{
	strbuf_addf(url, "%s/projects/", c->api);
	whttp_add_escaped(url, project);
	strbuf_addstr(url, "/datasets/");
	whttp_add_escaped(url, dataset);
}

/* ---- column types and parameters ---- */

/* The column types of src's relation: tables.get for a table, a dry run for a query. */
static enum jerr bq_columns(struct bq_conn *c, const struct cfg_source *src, const struct bq_types **out, bool *missing,
			    struct jerror *err)
{
	const char *key = src->is_query ? (src->query ? src->query : "") : src->table;
	struct strbuf what = STRBUF_INIT, url = STRBUF_INIT, sql = STRBUF_INIT;
	struct whttp_resp resp;
	struct bq_result r;
	enum jerr rc = JERR_OK;
	json_t *j = NULL, *fields = NULL;

	*out = NULL;
	*missing = false;
	for (struct bq_types *t = c->types; t; t = t->next)
		if (!strcmp(t->key, key)) {
			*out = t;
			return JERR_OK;
		}
	memset(&r, 0, sizeof(r));
	whttp_resp_init(&resp);
	strbuf_addf(&what, "source \"%s\"", sql_source_id(src));
	if (!src->is_query) {
		/* [project.][dataset.]table */
		const char *t = src->table, *d1 = strchr(t, '.'), *d2 = d1 ? strchr(d1 + 1, '.') : NULL;
		struct strbuf p = STRBUF_INIT, d = STRBUF_INIT, tn = STRBUF_INIT;
		if (d2) {
			strbuf_add(&p, t, (size_t)(d1 - t));
			strbuf_add(&d, d1 + 1, (size_t)(d2 - d1 - 1));
			strbuf_addstr(&tn, d2 + 1);
		} else if (d1) {
			strbuf_addstr(&p, c->project);
			strbuf_add(&d, t, (size_t)(d1 - t));
			strbuf_addstr(&tn, d1 + 1);
		} else {
			strbuf_addstr(&p, c->project);
			strbuf_addstr(&d, c->dataset);
			strbuf_addstr(&tn, t);
		}
		bq_dataset_url(c, p.buf, d.buf, &url);
		strbuf_addstr(&url, "/tables/");
		whttp_add_escaped(&url, tn.buf);
		strbuf_release(&p);
		strbuf_release(&d);
		strbuf_release(&tn);
		rc = bq_request(c, "GET", url.buf, NULL, &resp, what.buf, err);
		if (!rc && resp.status == 404) {
			*missing = true;
			rc = sql_check_no_table(src, err);
			jerror_detail(err, "app \"%s\": project \"%s\", dataset \"%s\" (or the service account may not read "
					   "it)",
				      c->app->id, c->project, c->dataset);
		} else if (!rc && resp.status != 200) {
			rc = bq_fail(c, resp.status, &resp.body, what.buf, err);
		} else if (!rc) {
			j = json_loadb(resp.body.buf, resp.body.len, 0, NULL);
			fields = json_object_get(json_object_get(j, "schema"), "fields");
		}
	} else {
		strbuf_addstr(&sql, "SELECT * FROM (");
		sql_add_query_text(&sql, key);
		strbuf_addch(&sql, ')');
		rc = bq_exec(c, sql.buf, NULL, NULL, 0, true, &r, what.buf, err);
		if (rc)
			jerror_prefix(err, "the source query is invalid: ");
		else
			fields = json_object_get(r.schema, "fields");
	}
	if (!rc) {
		struct bq_types *t = xcalloc(1, sizeof(*t));
		t->key = xstrdup(key);
		t->n = json_array_size(fields);
		t->names = xcalloc(t->n + 1, sizeof(char *));
		t->types = xcalloc(t->n + 1, sizeof(char *));
		for (size_t i = 0; i < t->n; i++) {
			json_t *f = json_array_get(fields, i);
			const char *mode = json_string_value(json_object_get(f, "mode"));
			const char *fname = json_string_value(json_object_get(f, "name"));
			t->names[i] = xstrdup(fname ? fname : "");
			t->types[i] = xstrdup(mode && !strcasecmp(mode, "REPEATED")
						      ? "ARRAY"
						      : param_type(json_string_value(json_object_get(f, "type"))));
		}
		t->next = c->types;
		c->types = t;
		*out = t;
	}
	json_decref(j);
	bq_result_release(&r);
	strbuf_release(&what);
	strbuf_release(&url);
	strbuf_release(&sql);
	whttp_resp_release(&resp);
	return rc;
}

/* The GoogleSQL type of each bind of p: its column's, else by its kind. */
static const char **param_types(const struct bq_types *t, const struct sql_plan *p)
{
	const char **out = xcalloc(p->n_binds ? p->n_binds : 1, sizeof(char *));
	for (size_t i = 0; i < p->n_binds; i++) {
		const struct sql_bind *b = &p->binds[i];
		const char *ty = b->kind == SQL_BIND_INT ? "INT64" : b->kind == SQL_BIND_REAL ? "FLOAT64" : "STRING";
		for (size_t k = 0; b->column && t && k < t->n; k++)
			if (!strcasecmp(t->names[k], b->column) && strcmp(t->types[k], "ARRAY"))
				ty = t->types[k];
		/* a number compared with a FLOAT64/NUMERIC column keeps the column's type; an INT64
		 * column compared with a fraction takes it as FLOAT64 (GoogleSQL coerces numbers) */
		if (!strcmp(ty, "INT64") && b->kind == SQL_BIND_REAL)
			ty = "FLOAT64";
		out[i] = ty;
	}
	return out;
}

/* A STRING column of a table whose types bq_columns looked up (bq_open_cursor does
 * before an incremental read): param_types would bind a number mark as STRING. */
static bool bq_text_column(void *conn, const char *table, const char *column)
{
	const struct bq_conn *c = conn;
	for (const struct bq_types *t = c ? c->types : NULL; t; t = t->next) {
		if (strcmp(t->key, table))
			continue;
		for (size_t k = 0; k < t->n; k++)
			if (!strcasecmp(t->names[k], column))
				return !strcmp(t->types[k], "STRING");
		return false;
	}
	return false;
}

/* The text as a FLOAT64, NULL when it is not a number (FLOAT64 rounds monotonically, so
 * a value past the mark is never below it). */
static void bq_since_number(struct strbuf *sb, const char *col)
{
	strbuf_addf(sb, "SAFE_CAST(%s AS FLOAT64)", col);
}

/* ---- connection ---- */

static void bq_free(struct bq_conn *c)
{
	if (!c)
		return;
	source_watch_unregister(&c->watch);
	whttp_release(&c->http);
	EVP_PKEY_free(c->key);
	OPENSSL_cleanse(c->token.buf, c->token.len);
	strbuf_release(&c->token);
	for (struct bq_types *t = c->types, *nx; t; t = nx) {
		nx = t->next;
		sql_free_names(t->names, t->n);
		sql_free_names(t->types, t->n);
		free(t->key);
		free(t);
	}
	free(c->api);
	free(c->token_url);
	free(c->project);
	free(c->dataset);
	free(c->location);
	free(c->email);
	free(c);
}

static void bq_disconnect(void *conn)
{
	bq_free(conn);
}

static enum jerr bq_connect(const struct cfg_app *app, const char *config_dir, void **out, struct jerror *err)
{
	struct bq_conn *c = xcalloc(1, sizeof(*c));
	struct strbuf what = STRBUF_INIT, url = STRBUF_INIT;
	struct whttp_resp resp;
	struct bq_result r;
	int64_t timeout_ms = 0;
	enum jerr rc = JERR_OK;
	(void)config_dir;

	*out = NULL;
	memset(&r, 0, sizeof(r));
	whttp_resp_init(&resp);
	c->app = app;
	strbuf_init(&c->token, 0);
	whttp_init(&c->http);
	for (const char *const *k = bq_required_options; *k; k++) {
		if (!source_option_text(app, *k)) {
			rc = jerror_set(err, JERR_CONFIG, "app \"%s\": option \"%s\" is required", app->id, *k);
			goto out;
		}
	}
	if ((rc = source_timeout_option(app, &timeout_ms, err)))
		goto out;
	c->timeout_s = (timeout_ms + 999) / 1000;
	c->project = xstrdup(source_option_text(app, "project_id"));
	c->dataset = xstrdup(source_option_text(app, "dataset"));
	c->email = xstrdup(source_option_text(app, "client_email"));
	c->location = source_option_text(app, "location") ? xstrdup(source_option_text(app, "location")) : NULL;
	const char *ep = source_option_text(app, "endpoint");
	if (ep) {
		size_t n;
		if ((rc = whttp_endpoint(app->id, ep, &n, err)))
			goto out;
		strbuf_add(&url, ep, n);
		strbuf_addstr(&url, "/bigquery/v2");
		c->api = strbuf_detach(&url, NULL);
		strbuf_add(&url, ep, n);
		strbuf_addstr(&url, "/token");
		c->token_url = strbuf_detach(&url, NULL);
	} else {
		c->api = xstrdup(BQ_API);
		c->token_url = xstrdup(BQ_TOKEN_URL);
	}
	strbuf_addf(&what, "app \"%s\": options.private_key", app->id);
	if ((rc = jwt_load_private_key(source_option_text(app, "private_key"), NULL, what.buf, &c->key, err)))
		goto out;
	source_watch_register(&c->watch, bq_cancel, timeout_ms, app->id);
	if ((rc = bq_token(c, true, err)))
		goto out;

	/* the dataset (and the permission to see it) */
	strbuf_reset(&what);
	strbuf_addf(&what, "app \"%s\"", app->id);
	bq_dataset_url(c, c->project, c->dataset, &url);
	if ((rc = bq_request(c, "GET", url.buf, NULL, &resp, what.buf, err)))
		goto out;
	if (resp.status == 404) {
		rc = jerror_set(err, JERR_CONFIG, "app \"%s\": dataset \"%s\" does not exist in project \"%s\"", app->id,
				c->dataset, c->project);
		bq_detail(err, resp.status, &resp.body);
		jerror_hint(err, "check options.project_id and options.dataset (dataset names are case-sensitive)");
		goto out;
	}
	if (resp.status == 403) {
		rc = jerror_set(err, JERR_CONFIG, "app \"%s\": service account %s may not read dataset \"%s\"", app->id,
				c->email, c->dataset);
		bq_detail(err, resp.status, &resp.body);
		jerror_hint(err, "grant it roles/bigquery.dataViewer on the dataset (and roles/bigquery.jobUser on "
				 "project \"%s\")",
			    c->project);
		goto out;
	}
	if (resp.status != 200) {
		rc = bq_fail(c, resp.status, &resp.body, what.buf, err);
		goto out;
	}
	json_t *dj = json_loadb(resp.body.buf, resp.body.len, 0, NULL);
	const char *dloc = json_string_value(json_object_get(dj, "location"));
	if (dloc && c->location && strcasecmp(dloc, c->location)) {
		rc = jerror_set(err, JERR_CONFIG, "app \"%s\": dataset \"%s\" is in location \"%s\", not \"%s\"", app->id,
				c->dataset, dloc, c->location);
		jerror_hint(err, "set options.location to \"%s\" (or leave it out)", dloc);
	}
	json_decref(dj);
	if (rc)
		goto out;
	/* and the permission to run jobs: a harmless query */
	if ((rc = bq_exec(c, "SELECT 1 AS `ok`", NULL, NULL, 0, false, &r, what.buf, err))) {
		jerror_prefix(err, "cannot run queries in project \"%s\": ", c->project);
		goto out;
	}
	*out = c;
	c = NULL;
out:
	bq_result_release(&r);
	strbuf_release(&what);
	strbuf_release(&url);
	whttp_resp_release(&resp);
	bq_free(c);
	return rc;
}

/* ---- check ---- */

static enum jerr bq_check(void *conn, const struct cfg_source *src, struct jerror *err)
{
	struct bq_conn *c = conn;
	const struct bq_types *t = NULL;
	struct sql_plan p;
	struct bq_result r;
	struct strbuf what = STRBUF_INIT;
	const char **pt = NULL;
	bool missing;
	enum jerr rc;

	memset(&r, 0, sizeof(r));
	sql_plan_init(&p);
	strbuf_addf(&what, "source \"%s\"", sql_source_id(src));
	rc = bq_columns(c, src, &t, &missing, err);
	if (rc && missing) {
		/* did-you-mean from the dataset's tables */
		struct strbuf url = STRBUF_INIT;
		struct whttp_resp resp;
		struct jerror terr = JERROR_INIT;
		whttp_resp_init(&resp);
		bq_dataset_url(c, c->project, c->dataset, &url);
		strbuf_addstr(&url, "/tables?maxResults=1000");
		if (!bq_request(c, "GET", url.buf, NULL, &resp, what.buf, &terr) && resp.status == 200) {
			json_t *j = json_loadb(resp.body.buf, resp.body.len, 0, NULL);
			json_t *tables = json_object_get(j, "tables");
			size_t nt = json_array_size(tables);
			const char **names = xcalloc(nt + 1, sizeof(char *));
			for (size_t i = 0; i < nt; i++)
				names[i] = json_string_value(
					json_object_get(json_object_get(json_array_get(tables, i), "tableReference"), "tableId"));
			sql_hint_names(err, src->table, names, nt, "the dataset's tables are (names are case-sensitive)");
			free(names);
			json_decref(j);
		}
		jerror_release(&terr);
		whttp_resp_release(&resp);
		strbuf_release(&url);
	}
	if (rc)
		goto out;
	if ((rc = sql_check_columns(src, src->is_query ? NULL : src->table, (const char *const *)t->names, t->n, err)))
		goto out;
	/* the statement itself, validated with its parameter types (dry run: nothing is billed) */
	if ((rc = sql_plan_build(&bq_dialect, c, src, NULL, &p, err)))
		goto out;
	pt = param_types(t, &p);
	rc = bq_exec(c, p.sql.buf, p.binds, pt, p.n_binds, true, &r, what.buf, err);
out:
	free(pt);
	bq_result_release(&r);
	sql_plan_release(&p);
	strbuf_release(&what);
	return rc;
}

static enum jerr bq_describe(void *conn, const struct cfg_source *src, struct strbuf *out, struct jerror *err)
{
	return sql_describe_source(&bq_dialect, conn, src, out, err);
}


/* ---- cursor ---- */

static enum jerr bq_open_cursor(void *conn, const struct cfg_source *src, const struct source_read *read,
				struct source_cursor **out, struct jerror *err)
{
	struct bq_conn *c = conn;
	const struct bq_types *t = NULL;
	struct sql_plan p;
	struct strbuf what = STRBUF_INIT;
	const char **pt = NULL;
	bool missing;
	enum jerr rc;

	*out = NULL;
	sql_plan_init(&p);
	/* an incremental read's column type first: a STRING column compares a number mark
	 * through bq_since_number */
	if (read && read->since_column && read->since_value && !src->is_query &&
	    (rc = bq_columns(c, src, &t, &missing, err)))
		goto out;
	if ((rc = sql_plan_build(&bq_dialect, c, src, read, &p, err)))
		goto out;
	if (p.n_binds && !t && (rc = bq_columns(c, src, &t, &missing, err)))
		goto out;
	pt = param_types(t, &p);
	struct bq_cursor *cur = xcalloc(1, sizeof(*cur));
	wrows_init(&cur->w, &bq_cursor_ops, src, p.grouped, p.int_key, p.key_column, p.since_col);
	cur->conn = c;
	strbuf_addf(&what, "source \"%s\"", sql_source_id(src));
	rc = bq_exec(c, p.sql.buf, p.binds, pt, p.n_binds, false, &cur->res, what.buf, err);
	rc = wrows_opened(&cur->w, rc, cur->res.n_cols, out, err);
out:
	free(pt);
	strbuf_release(&what);
	sql_plan_release(&p);
	return rc;
}

/* ---- sample (the UI's editors) ---- */

/* One sample cell: a scalar as text (timestamps ISO), a REPEATED or RECORD value as its JSON; NULL for null. */
static char *sample_cell(const struct bq_col *col, json_t *v)
{
	if (!v || json_is_null(v))
		return NULL;
	struct strbuf t = STRBUF_INIT;
	if (json_is_string(v)) {
		bq_cell_text(col->type, json_string_value(v), &t);
	} else {
		char *d = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
		strbuf_addstr(&t, d ? d : "");
		free(d);
	}
	char *out = sql_sample_value(t.buf, t.len);
	strbuf_release(&t);
	return out;
}

/* A sample's columns (at most SOURCE_SAMPLE_MAX_COLUMNS) and at most limit rows of r into out. */
static enum jerr bq_sample_rows(struct bq_conn *c, struct bq_result *r, size_t limit, struct source_sample *out,
				const char *what, struct jerror *err)
{
	size_t alloc = 0;
	json_t *cells;
	enum jerr rc = JERR_OK;

	sql_sample_columns(out, r->n_cols);
	for (size_t i = 0; i < out->n_columns; i++)
		out->columns[i] = xstrdup(r->cols[i].name ? r->cols[i].name : "");
	while (out->n_columns && out->n_rows < limit && !(rc = bq_result_next(c, r, &cells, what, err)) && cells) {
		char **row = sql_sample_add_row(out, &alloc);
		for (size_t i = 0; i < out->n_columns; i++)
			row[i] = sample_cell(&r->cols[i], json_object_get(json_array_get(cells, i), "v"));
	}
	if (rc)
		return rc;
	sql_sample_end_rows(out);
	return JERR_OK;
}

/* qsort: names in byte order. */
static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The dataset's tables and views (tables.list, every page), sorted by name, into out (wrows_sample_list_fn). */
static enum jerr bq_list_tables(void *conn, struct source_sample *out, const char *what, struct jerror *err)
{
	struct bq_conn *c = conn;
	struct strbuf url = STRBUF_INIT;
	struct whttp_resp resp;
	char *page = NULL;
	size_t alloc = 0;
	enum jerr rc = JERR_OK;

	whttp_resp_init(&resp);
	do {
		strbuf_reset(&url);
		bq_dataset_url(c, c->project, c->dataset, &url);
		strbuf_addstr(&url, "/tables?maxResults=1000");
		if (page) {
			strbuf_addstr(&url, "&pageToken=");
			whttp_add_escaped(&url, page);
		}
		free(page);
		page = NULL;
		if ((rc = bq_request(c, "GET", url.buf, NULL, &resp, what, err)))
			break;
		if (resp.status != 200) {
			rc = bq_fail(c, resp.status, &resp.body, what, err);
			break;
		}
		json_t *j = json_loadb(resp.body.buf, resp.body.len, 0, NULL), *t;
		json_t *tables = json_object_get(j, "tables");
		size_t i;
		if (!j || (tables && !json_is_array(tables))) {
			json_decref(j);
			rc = jerror_set(err, JERR_SOURCE, "%s: the table list is not what BigQuery sends", what);
			break;
		}
		json_array_foreach(tables, i, t) {
			const char *id = json_string_value(json_object_get(json_object_get(t, "tableReference"), "tableId"));
			if (!id)
				continue;
			ALLOC_GROW(out->tables, out->n_tables + 1, alloc);
			out->tables[out->n_tables++] = xstrdup(id);
		}
		const char *next = json_string_value(json_object_get(j, "nextPageToken"));
		page = next && *next ? xstrdup(next) : NULL;
		json_decref(j);
		whttp_resp_release(&resp);
		whttp_resp_init(&resp);
	} while (page);
	free(page);
	whttp_resp_release(&resp);
	strbuf_release(&url);
	if (rc)
		jerror_prefix(err, "cannot list the tables of dataset \"%s\": ", c->dataset);
	else if (out->n_tables)
		qsort(out->tables, out->n_tables, sizeof(char *), cmp_names);
	return rc;
}

/* A preview's statement, one query job, and its rows (wrows_sample_run_fn). */
static enum jerr bq_sample_run(void *conn, const char *sql, bool query, size_t limit, struct source_sample *out,
			       const char *what, struct jerror *err)
{
	struct bq_conn *c = conn;
	struct bq_result r;
	enum jerr rc;

	memset(&r, 0, sizeof(r));
	rc = bq_exec(c, sql, NULL, NULL, 0, false, &r, what, err);
	if (query)
		rc = wrows_sample_refused(rc, c->app->id, err);
	if (!rc)
		rc = bq_sample_rows(c, &r, limit, out, what, err);
	bq_result_release(&r);
	return rc;
}

/*
 * The dataset's tables, and with table set its first rows: SELECT * FROM `table` LIMIT n
 * in the app's dataset (defaultDataset), one query job.
 */
static enum jerr bq_sample(void *conn, const char *table, size_t limit, struct source_sample *out,
			   struct jerror *err)
{
	return wrows_sample_table(conn, bq_list_tables, bq_sample_run, ((struct bq_conn *)conn)->app->id, &bq_dialect,
				  table, limit, out, err);
}

/*
 * A query's columns and first rows (source_ops.sample_query): the query a derived table
 * (sql_sample_query_sql). GoogleSQL allows no DML, DDL or script in a FROM subquery,
 * and jobs.query runs that one statement, under the app's statementTimeout (jobTimeoutMs).
 */
static enum jerr bq_sample_query(void *conn, const char *query, size_t limit, struct source_sample *out,
				 struct jerror *err)
{
	return wrows_sample_query(conn, bq_sample_run, ((struct bq_conn *)conn)->app->id, query, limit, out, err);
}

const struct source_ops source_bigquery = {
	.app_type = "bigquery",
	.source_types = bq_source_types,
	.app_options = bq_app_options,
	.required_app_options = bq_required_options,
	.connect = bq_connect,
	.check = bq_check,
	.open_cursor = bq_open_cursor,
	.describe = bq_describe,
	.disconnect = bq_disconnect,
	.sample = bq_sample,
	.sample_query = bq_sample_query,
};
