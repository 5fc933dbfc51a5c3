/* bigquery.c: the BigQuery connector over the REST API v2 (libcurl, jansson, service-account JWTs). */
#include <ctype.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <jansson.h>
#include <openssl/crypto.h>

#include "base/arena.h"
#include "base/log.h"
#include "base/timeutil.h"
#include "base/xalloc.h"
#include "source/jwt.h"
#include "source/source.h"
#include "source/sqlgen.h"
#include "source/warehouse_decode.h"
#include "source/whttp.h"

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

#define BQ_TRIES 6
#define BQ_BACKOFF_MS 250
#define BQ_BACKOFF_MAX_MS 8000
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
};

struct bq_cursor {
	struct source_cursor base; /* first */
	struct bq_conn *conn;
	const struct cfg_source *src;
	struct bq_result res;
	struct arena arena;
	struct source_row row;
	bool grouped, int_key;
	int count_col, since_col;
	uint64_t null_keys;
	const char *key_column;
};

static const char *const bq_source_types[] = {
	"bigquery-import-table", "bigquery-import-query", "bigquery-table-import", "bigquery-query-import", NULL,
};
static const char *const bq_app_options[] = {
	"project_id", "dataset", "client_email", "private_key", "location", "statementTimeout", "endpoint", NULL,
};
static const char *const bq_required_options[] = { "project_id", "dataset", "client_email", "private_key", NULL };

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
};

static const char *opt(const struct cfg_app *app, const char *key)
{
	const struct cfg_option *o = cfg_options_get(&app->options, key);
	return o && o->str && *o->str ? o->str : NULL;
}

static bool loopback_url(const char *u)
{
	if (strncmp(u, "http://", 7))
		return false;
	const char *h = u + 7;
	size_t hl = strcspn(h, ":/");
	return (hl == 9 && (!strncmp(h, "127.0.0.1", 9) || !strncmp(h, "localhost", 9))) ||
	       (hl == 5 && !strncmp(h, "[::1]", 5));
}

static long backoff_ms(int attempt, long retry_after_s)
{
	if (retry_after_s >= 0)
		return retry_after_s > BQ_BACKOFF_MAX_MS * 4 / 1000 ? BQ_BACKOFF_MAX_MS * 4 : retry_after_s * 1000;
	long ms = BQ_BACKOFF_MS << (attempt < 6 ? attempt : 6);
	if (ms > BQ_BACKOFF_MAX_MS)
		ms = BQ_BACKOFF_MAX_MS;
	return ms / 2 + rand() % (ms / 2 + 1);
}

static void bq_cancel(struct source_watch *w)
{
	struct bq_conn *c = (struct bq_conn *)(void *)((char *)w - offsetof(struct bq_conn, watch));
	whttp_abort(&c->http);
}

/* Google's error object: reason and message; reason "" when absent. */
static void bq_error_parts(const struct strbuf *body, char *reason, size_t rn, struct strbuf *msg)
{
	json_t *j = json_loadb(body->buf, body->len, 0, NULL);
	json_t *e = json_object_get(j, "error");
	const char *r = NULL, *m = NULL;
	if (json_is_object(e)) {
		json_t *e0 = json_array_get(json_object_get(e, "errors"), 0);
		r = json_string_value(json_object_get(e0, "reason"));
		m = json_string_value(json_object_get(e, "message"));
		if (!m)
			m = json_string_value(json_object_get(e0, "message"));
		if (!r)
			r = json_string_value(json_object_get(e, "status"));
	} else if (json_is_string(e)) { /* the token endpoint: {"error":"invalid_grant","error_description":...} */
		r = json_string_value(e);
		m = json_string_value(json_object_get(j, "error_description"));
	}
	snprintf(reason, rn, "%s", r ? r : "");
	strbuf_addstr(msg, m ? m : body->len ? "" : "(empty answer)");
	if (!m && body->len)
		strbuf_addf(msg, "%.200s", body->buf);
	json_decref(j);
}

static void detail_bq(struct jerror *err, long status, const struct strbuf *body)
{
	char reason[64];
	struct strbuf msg = STRBUF_INIT;
	bq_error_parts(body, reason, sizeof(reason), &msg);
	for (char *p = msg.buf; *p; p++)
		if (*p == '\n')
			*p = ' ';
	jerror_detail(err, "HTTP %ld%s%s: %s", status, *reason ? " " : "", reason, msg.buf);
	strbuf_release(&msg);
}

/* ---- access token ---- */

static enum jerr bq_token(struct bq_conn *c, bool force, struct jerror *err)
{
	int64_t now = time(NULL);
	if (!force && c->token.len && now < c->token_until)
		return JERR_OK;
	struct strbuf claims = STRBUF_INIT, jwt = STRBUF_INIT, body = STRBUF_INIT;
	struct whttp_resp resp;
	enum jerr rc;
	whttp_resp_init(&resp);
	strbuf_addstr(&claims, "{\"iss\":");
	strbuf_add_json_string(&claims, c->email, strlen(c->email));
	strbuf_addstr(&claims, ",\"scope\":\"" BQ_SCOPE "\",\"aud\":");
	strbuf_add_json_string(&claims, c->token_url, strlen(c->token_url));
	strbuf_addf(&claims, ",\"iat\":%" PRId64 ",\"exp\":%" PRId64 "}", now, now + 3600);
	if ((rc = jwt_sign_rs256(c->key, claims.buf, &jwt, err)))
		goto out;
	strbuf_addstr(&body, "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion=");
	strbuf_addslice(&body, (struct slice){ jwt.buf, jwt.len });
	const char *headers[] = { "Content-Type: application/x-www-form-urlencoded", "Accept: application/json", NULL };
	for (int attempt = 0;; attempt++) {
		struct whttp_req req = { "POST", c->token_url, headers, body.buf, body.len };
		struct jerror terr = JERROR_INIT;
		source_wait_begin(&c->watch);
		rc = whttp_call(&c->http, &req, &resp, &terr);
		source_wait_end(&c->watch);
		bool transient = rc || resp.status == 429 || resp.status >= 500;
		if (rc == JERR_INTERRUPTED || source_watch_cancelled(&c->watch)) {
			jerror_release(&terr);
			struct strbuf w = STRBUF_INIT;
			strbuf_addf(&w, "app \"%s\"", c->app->id);
			rc = source_watch_cancelled(&c->watch) ? source_watch_error(&c->watch, w.buf, err)
							       : jerror_set(err, JERR_INTERRUPTED, "stopped");
			strbuf_release(&w);
			goto out;
		}
		if (transient && attempt + 1 < BQ_TRIES && !(rc && resp.no_connection && attempt >= 2)) {
			jerror_release(&terr);
			whttp_sleep_ms(backoff_ms(attempt, resp.retry_after_s), c->watch.stop);
			continue;
		}
		if (rc) {
			jerror_set(err, JERR_SOURCE, "app \"%s\": cannot reach Google's token endpoint", c->app->id);
			jerror_detail(err, "%s: %s", terr.msg.buf, terr.detail.buf);
			jerror_release(&terr);
			goto out;
		}
		jerror_release(&terr);
		break;
	}
	if (resp.status != 200) {
		char reason[64];
		struct strbuf msg = STRBUF_INIT;
		bq_error_parts(&resp.body, reason, sizeof(reason), &msg);
		rc = jerror_set(err, JERR_SOURCE, "app \"%s\": Google refused the service account's key", c->app->id);
		jerror_detail(err, "HTTP %ld %s: %s", resp.status, reason, msg.buf);
		jerror_hint(err, "check that options.client_email (\"%s\") is the client_email of the same key file as "
				 "options.private_key, that the key was not deleted or disabled in IAM, and that this "
				 "machine's clock is right (the token's iat/exp are checked)",
			    c->email);
		strbuf_release(&msg);
		goto out;
	}
	json_t *j = json_loadb(resp.body.buf, resp.body.len, 0, NULL);
	const char *tok = json_string_value(json_object_get(j, "access_token"));
	json_int_t exp = json_integer_value(json_object_get(j, "expires_in"));
	if (!tok || !*tok) {
		rc = jerror_set(err, JERR_SOURCE, "app \"%s\": the token endpoint answered without an access_token",
				c->app->id);
	} else {
		OPENSSL_cleanse(c->token.buf, c->token.len);
		strbuf_reset(&c->token);
		strbuf_addstr(&c->token, tok);
		/* renewed a minute early (or halfway through a short one) */
		c->token_until = now + (exp > 120 ? exp - 60 : exp > 1 ? exp / 2 : 1);
	}
	json_decref(j);
out:
	OPENSSL_cleanse(jwt.buf, jwt.len);
	OPENSSL_cleanse(body.buf, body.len);
	OPENSSL_cleanse(resp.body.buf, resp.body.len);
	strbuf_release(&claims);
	strbuf_release(&jwt);
	strbuf_release(&body);
	whttp_resp_release(&resp);
	return rc;
}

/*
 * One API request with retries: 429, 5xx, rateLimitExceeded/backendError/internalError
 * again (bounded, with backoff), a 401 once with a new access token. Returns JERR_OK
 * with any other final status in resp.
 */
static enum jerr bq_request(struct bq_conn *c, const char *method, const char *url, const char *body,
			    struct whttp_resp *resp, const char *what, struct jerror *err)
{
	struct strbuf auth = STRBUF_INIT;
	bool refreshed = false;
	enum jerr rc = JERR_OK;
	for (int attempt = 0;; attempt++) {
		if ((rc = bq_token(c, false, err)))
			break;
		strbuf_reset(&auth);
		strbuf_addf(&auth, "Authorization: Bearer %s", c->token.buf);
		const char *headers[] = { auth.buf, "Content-Type: application/json", "Accept: application/json", NULL };
		struct whttp_req req = { method, url, headers, body, body ? strlen(body) : 0 };
		struct jerror terr = JERROR_INIT;
		source_wait_begin(&c->watch);
		rc = whttp_call(&c->http, &req, resp, &terr);
		source_wait_end(&c->watch);
		if (source_watch_cancelled(&c->watch)) {
			jerror_release(&terr);
			rc = source_watch_error(&c->watch, what, err);
			break;
		}
		if (rc == JERR_INTERRUPTED) {
			*err = terr;
			break;
		}
		char reason[64] = "";
		if (!rc && resp->status >= 400) {
			struct strbuf m = STRBUF_INIT;
			bq_error_parts(&resp->body, reason, sizeof(reason), &m);
			strbuf_release(&m);
		}
		if (!rc && resp->status == 401 && !refreshed) {
			refreshed = true; /* expired or revoked: one more try with a new token */
			c->token_until = 0;
			attempt--;
			jerror_release(&terr);
			continue;
		}
		bool transient = rc || resp->status == 429 || resp->status == 500 || resp->status == 502 ||
				 resp->status == 503 || resp->status == 504 || !strcmp(reason, "rateLimitExceeded") ||
				 !strcmp(reason, "backendError") || !strcmp(reason, "internalError");
		if (transient && attempt + 1 < BQ_TRIES && !(rc && resp->no_connection && attempt >= 2)) {
			long ms = backoff_ms(attempt, resp->retry_after_s);
			if (rc)
				log_warn("app \"%s\": %s: %s (%s); retrying in %ld ms", c->app->id, what, terr.msg.buf,
					 terr.detail.buf, ms);
			else
				log_warn("app \"%s\": %s: BigQuery answered HTTP %ld%s%s; retrying in %ld ms", c->app->id,
					 what, resp->status, *reason ? " " : "", reason, ms);
			jerror_release(&terr);
			whttp_sleep_ms(ms, c->watch.stop);
			if (c->watch.stop && *c->watch.stop) {
				rc = jerror_set(err, JERR_INTERRUPTED, "%s: stopped", what);
				break;
			}
			continue;
		}
		if (rc) {
			jerror_set(err, JERR_SOURCE, "%s: cannot reach BigQuery", what);
			jerror_detail(err, "%s: %s", terr.msg.buf, terr.detail.buf);
			jerror_release(&terr);
			break;
		}
		jerror_release(&terr);
		if (transient) {
			rc = jerror_set(err, JERR_SOURCE, "%s: BigQuery kept failing (%d tries)", what, BQ_TRIES);
			detail_bq(err, resp->status, &resp->body);
			jerror_hint(err, "this is temporary (or a quota); run again later");
		}
		break;
	}
	OPENSSL_cleanse(auth.buf, auth.len);
	strbuf_release(&auth);
	return rc;
}

/* A failed call: err says what, in plain words where the reason is known. */
static enum jerr bq_fail(struct bq_conn *c, long status, const struct strbuf *body, const char *what, struct jerror *err)
{
	char reason[64];
	struct strbuf m = STRBUF_INIT;
	bq_error_parts(body, reason, sizeof(reason), &m);
	strbuf_release(&m);
	jerror_set(err, JERR_SOURCE, "%s: query failed", what);
	detail_bq(err, status, body);
	if (status == 401)
		jerror_hint(err, "the access token was refused twice; check the service account (options.client_email, "
				 "options.private_key)");
	else if (!strcmp(reason, "accessDenied") || status == 403)
		jerror_hint(err, "the service account %s lacks a permission: grant it roles/bigquery.jobUser on project "
				 "\"%s\" and roles/bigquery.dataViewer on dataset \"%s\"",
			    c->email, c->project, c->dataset);
	else if (!strcmp(reason, "notFound") || status == 404)
		jerror_hint(err, "check options.project_id (\"%s\"), options.dataset (\"%s\") and the table name (names "
				 "are case-sensitive)%s",
			    c->project, c->dataset,
			    c->location ? "" : "; a dataset outside the US needs options.location, e.g. \"EU\"");
	else if (!strcmp(reason, "quotaExceeded"))
		jerror_hint(err, "a BigQuery quota is used up; run again later or raise the quota");
	return JERR_SOURCE;
}

/* ---- types and results ---- */

static enum bq_type bq_type_of(const char *t)
{
	static const struct {
		const char *name;
		enum bq_type type;
	} names[] = {
		{ "INTEGER", BQ_INT },	 { "INT64", BQ_INT },	  { "FLOAT", BQ_FLOAT },     { "FLOAT64", BQ_FLOAT },
		{ "NUMERIC", BQ_NUMERIC }, { "BIGNUMERIC", BQ_NUMERIC }, { "BOOLEAN", BQ_BOOL },  { "BOOL", BQ_BOOL },
		{ "STRING", BQ_STRING }, { "BYTES", BQ_BYTES },   { "DATE", BQ_DATE },	     { "DATETIME", BQ_DATETIME },
		{ "TIME", BQ_TIME },	 { "TIMESTAMP", BQ_TIMESTAMP }, { "RECORD", BQ_RECORD }, { "STRUCT", BQ_RECORD },
	};
	for (size_t i = 0; t && i < ARRAY_SIZE(names); i++)
		if (!strcasecmp(t, names[i].name))
			return names[i].type;
	return BQ_OTHER;
}

/* The parameter type name (GoogleSQL) of a schema type. */
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

static void result_release(struct bq_result *r)
{
	json_decref(r->schema);
	json_decref(r->rows);
	free(r->cols);
	free(r->page_token);
	memset(r, 0, sizeof(*r));
}

static void take_schema(struct bq_result *r, json_t *schema)
{
	json_t *fields = json_object_get(schema, "fields");
	r->schema = json_incref(schema);
	r->n_cols = json_array_size(fields);
	r->cols = xcalloc(r->n_cols ? r->n_cols : 1, sizeof(*r->cols));
	for (size_t i = 0; i < r->n_cols; i++) {
		json_t *f = json_array_get(fields, i);
		const char *mode = json_string_value(json_object_get(f, "mode"));
		r->cols[i].type = bq_type_of(json_string_value(json_object_get(f, "type")));
		r->cols[i].repeated = mode && !strcasecmp(mode, "REPEATED");
		r->cols[i].name = json_string_value(json_object_get(f, "name"));
		if (!r->cols[i].name)
			r->cols[i].name = "";
	}
}

/* Take a complete QueryResponse page: rows, pageToken (and the schema the first time). */
static enum jerr take_page(struct bq_result *r, json_t *j, const char *what, struct jerror *err)
{
	json_t *rows = json_object_get(j, "rows");
	if (!r->schema) {
		json_t *schema = json_object_get(j, "schema");
		if (!json_is_object(schema))
			return jerror_set(err, JERR_SOURCE, "%s: BigQuery's answer has no schema", what);
		take_schema(r, schema);
	}
	if (rows && !json_is_array(rows))
		return jerror_set(err, JERR_SOURCE, "%s: BigQuery's answer has malformed rows", what);
	json_decref(r->rows);
	r->rows = rows ? json_incref(rows) : json_array();
	r->next = 0;
	r->page++;
	free(r->page_token);
	const char *pt = json_string_value(json_object_get(j, "pageToken"));
	r->page_token = pt && *pt ? xstrdup(pt) : NULL;
	return JERR_OK;
}

/* getQueryResults URL for r's job: polls (token NULL) and pages. */
static void results_url(struct bq_conn *c, const struct bq_result *r, const char *token, struct strbuf *url)
{
	strbuf_addf(url, "%s/projects/", c->api);
	whttp_add_escaped(url, c->project);
	strbuf_addstr(url, "/queries/");
	whttp_add_escaped(url, r->job);
	strbuf_addf(url, "?maxResults=%d&timeoutMs=%d&formatOptions.useInt64Timestamp=true", BQ_PAGE_ROWS, BQ_WAIT_MS);
	if (*r->loc) {
		strbuf_addstr(url, "&location=");
		whttp_add_escaped(url, r->loc);
	}
	if (token) {
		strbuf_addstr(url, "&pageToken=");
		whttp_add_escaped(url, token);
	}
}

/*
 * Run sql with typed params (ptypes[i] the GoogleSQL type of binds[i]); dry: validate
 * only (*r gets the schema). On success *r holds the schema and the first page.
 */
static enum jerr bq_exec(struct bq_conn *c, const char *sql, const struct sql_bind *binds, const char *const *ptypes,
			 size_t n, bool dry, struct bq_result *r, const char *what, struct jerror *err)
{
	struct strbuf body = STRBUF_INIT, url = STRBUF_INIT;
	struct whttp_resp resp;
	char rid[37];
	enum jerr rc = JERR_OK;
	json_t *j = NULL;

	memset(r, 0, sizeof(*r));
	whttp_resp_init(&resp);
	whttp_uuid(rid);
	strbuf_addstr(&body, "{\"query\":");
	strbuf_add_json_string(&body, sql, strlen(sql));
	strbuf_addstr(&body, ",\"useLegacySql\":false,\"defaultDataset\":{\"projectId\":");
	strbuf_add_json_string(&body, c->project, strlen(c->project));
	strbuf_addstr(&body, ",\"datasetId\":");
	strbuf_add_json_string(&body, c->dataset, strlen(c->dataset));
	strbuf_addch(&body, '}');
	if (c->location) {
		strbuf_addstr(&body, ",\"location\":");
		strbuf_add_json_string(&body, c->location, strlen(c->location));
	}
	if (n) {
		strbuf_addstr(&body, ",\"parameterMode\":\"POSITIONAL\",\"queryParameters\":[");
		for (size_t i = 0; i < n; i++) {
			strbuf_addf(&body, "%s{\"parameterType\":{\"type\":\"%s\"},\"parameterValue\":{\"value\":", i ? "," : "",
				    ptypes[i]);
			strbuf_add_json_string(&body, binds[i].s, strlen(binds[i].s));
			strbuf_addstr(&body, "}}");
		}
		strbuf_addch(&body, ']');
	}
	if (dry)
		strbuf_addstr(&body, ",\"dryRun\":true");
	strbuf_addf(&body, ",\"maxResults\":%d,\"timeoutMs\":%d,\"formatOptions\":{\"useInt64Timestamp\":true},"
			   "\"requestId\":\"%s\",\"labels\":{\"app\":\"joey\"}",
		    BQ_PAGE_ROWS, BQ_WAIT_MS, rid);
	if (c->timeout_s > 0)
		strbuf_addf(&body, ",\"jobTimeoutMs\":\"%" PRId64 "\"", c->timeout_s * 1000);
	strbuf_addch(&body, '}');
	strbuf_addf(&url, "%s/projects/", c->api);
	whttp_add_escaped(&url, c->project);
	strbuf_addstr(&url, "/queries");
	rc = bq_request(c, "POST", url.buf, body.buf, &resp, what, err);
	for (;;) {
		if (rc)
			break;
		if (resp.status != 200) {
			rc = bq_fail(c, resp.status, &resp.body, what, err);
			break;
		}
		json_decref(j);
		j = json_loadb(resp.body.buf, resp.body.len, 0, NULL);
		if (!json_is_object(j)) {
			rc = jerror_set(err, JERR_SOURCE, "%s: BigQuery's answer is not JSON", what);
			break;
		}
		json_t *errs = json_object_get(j, "errors");
		if (json_array_size(errs)) {
			json_t *e0 = json_array_get(errs, 0);
			rc = jerror_set(err, JERR_SOURCE, "%s: query failed", what);
			const char *er = json_string_value(json_object_get(e0, "reason"));
			const char *em = json_string_value(json_object_get(e0, "message"));
			jerror_detail(err, "%s: %s", er ? er : "error", em ? em : "?");
			break;
		}
		if (dry) {
			json_t *schema = json_object_get(j, "schema");
			if (json_is_object(schema))
				take_schema(r, schema);
			r->rows = json_array();
			break;
		}
		json_t *jr = json_object_get(j, "jobReference");
		if (!*r->job) {
			const char *job = json_string_value(json_object_get(jr, "jobId"));
			const char *loc = json_string_value(json_object_get(jr, "location"));
			if (!job) {
				rc = jerror_set(err, JERR_SOURCE, "%s: BigQuery's answer has no jobReference", what);
				break;
			}
			snprintf(r->job, sizeof(r->job), "%s", job);
			snprintf(r->loc, sizeof(r->loc), "%s", loc ? loc : c->location ? c->location : "");
		}
		if (json_is_true(json_object_get(j, "jobComplete"))) {
			rc = take_page(r, j, what, err);
			break;
		}
		/* still running: getQueryResults waits server-side up to timeoutMs */
		strbuf_reset(&url);
		results_url(c, r, NULL, &url);
		rc = bq_request(c, "GET", url.buf, NULL, &resp, what, err);
	}
	if (rc)
		result_release(r);
	json_decref(j);
	strbuf_release(&body);
	strbuf_release(&url);
	whttp_resp_release(&resp);
	return rc;
}

/* The next row's cells (NULL at the end), reading the next page when needed. */
static enum jerr result_next(struct bq_conn *c, struct bq_result *r, json_t **cells, const char *what,
			     struct jerror *err)
{
	*cells = NULL;
	while (r->next >= json_array_size(r->rows)) {
		if (!r->page_token)
			return JERR_OK;
		struct strbuf url = STRBUF_INIT;
		struct whttp_resp resp;
		enum jerr rc;
		whttp_resp_init(&resp);
		results_url(c, r, r->page_token, &url);
		rc = bq_request(c, "GET", url.buf, NULL, &resp, what, err);
		if (!rc && resp.status != 200) {
			rc = bq_fail(c, resp.status, &resp.body, what, err);
			jerror_prefix(err, "result page %zu: ", r->page + 1);
			jerror_hint(err, "nothing was changed in Braze for the rows not read; run again");
		} else if (!rc) {
			json_t *j = json_loadb(resp.body.buf, resp.body.len, 0, NULL);
			rc = json_is_object(j) ? take_page(r, j, what, err)
					       : jerror_set(err, JERR_SOURCE, "%s: result page %zu is not JSON", what,
							    r->page + 1);
			json_decref(j);
		} else {
			jerror_prefix(err, "result page %zu: ", r->page + 1);
		}
		strbuf_release(&url);
		whttp_resp_release(&resp);
		if (rc)
			return rc;
	}
	json_t *row = json_array_get(r->rows, r->next++);
	*cells = json_object_get(row, "f");
	if (!json_is_array(*cells) || json_array_size(*cells) != r->n_cols)
		return jerror_set(err, JERR_SOURCE, "%s: malformed row %zu on result page %zu", what, r->next, r->page);
	return JERR_OK;
}

/* ---- values ---- */

/* Cell i of a row: its "v" (a string, null, or an array for REPEATED fields). */
static json_t *cell_v(json_t *cells, size_t i)
{
	return json_object_get(json_array_get(cells, i), "v");
}

/* Integer microseconds since the epoch (useInt64Timestamp) as ms; false if malformed. */
static bool micros_ms(const char *s, int64_t *ms, int64_t *us)
{
	int64_t v;
	if (!decimal_to_int64(s, strlen(s), &v))
		return false;
	*us = v;
	*ms = v >= 0 ? v / 1000 : -((-v + 999) / 1000);
	return true;
}

/* A scalar cell as text: timestamps ISO 8601 UTC with milliseconds, the rest as sent. */
static void bq_cell_text(enum bq_type t, const char *s, struct strbuf *sb)
{
	int64_t ms, us;
	if (t == BQ_TIMESTAMP && micros_ms(s, &ms, &us)) {
		time_format_iso(sb, ms);
		return;
	}
	strbuf_addstr(sb, s);
}

/* The high-water mark of a TIMESTAMP: "YYYY-MM-DD HH:MM:SS.ffffff+00", accepted back as a TIMESTAMP. */
static void bq_since_text(enum bq_type t, const char *s, struct strbuf *sb)
{
	int64_t ms, us;
	if (t == BQ_TIMESTAMP && micros_ms(s, &ms, &us) && us >= 0) {
		struct strbuf iso = STRBUF_INIT;
		time_format_iso(&iso, (us / 1000000) * 1000);
		strbuf_add(sb, iso.buf, 10);
		strbuf_addch(sb, ' ');
		strbuf_add(sb, iso.buf + 11, 8);
		strbuf_addf(sb, ".%06" PRId64 "+00", us % 1000000);
		strbuf_release(&iso);
		return;
	}
	strbuf_addstr(sb, s);
}

static bool bq_value(struct bq_cursor *cur, const struct bq_col *col, json_t *v, const struct cfg_property *prop,
		     struct value *out)
{
	*out = VALUE_NULL;
	if (!v || json_is_null(v)) {
		if (prop->is_array && !(cur->src->is_query && prop->query)) {
			out->kind = VAL_ARRAY; /* no value at all: an empty list, as the other connectors */
			out->u.arr.items = NULL;
			out->u.arr.n = 0;
		}
		return true;
	}
	if (prop->is_array && !(cur->src->is_query && prop->query)) {
		if (!json_is_array(v))
			return false;
		/* [{"v": "a"}, ...] -> ["a", ...] (timestamps as ISO text) */
		json_t *arr = json_array();
		size_t i;
		json_t *e;
		json_array_foreach(v, i, e) {
			json_t *ev = json_object_get(e, "v");
			if (json_is_string(ev)) {
				struct strbuf t = STRBUF_INIT;
				bq_cell_text(col->type, json_string_value(ev), &t);
				json_t *num = NULL;
				if ((col->type == BQ_INT || col->type == BQ_FLOAT || col->type == BQ_NUMERIC) &&
				    !sql_is_text_type(prop->type))
					num = json_loads(t.buf, JSON_DECODE_ANY, NULL); /* 64-bit integers stay exact */
				json_array_append_new(arr, num ? num : json_stringn(t.buf, t.len));
				strbuf_release(&t);
			}
		}
		char *text = json_dumps(arr, JSON_COMPACT);
		bool ok = sql_decode_array(prop, text, strlen(text), &cur->arena, out, &cur->row.n_invalid);
		free(text);
		json_decref(arr);
		return ok;
	}
	const char *s = json_string_value(v);
	if (!s)
		return false;
	size_t n = strlen(s);
	if (!sql_is_text_type(prop->type)) {
		int64_t i, ms, us;
		char *end;
		switch (col->type) {
		case BQ_INT:
		case BQ_FLOAT:
		case BQ_NUMERIC:
			if (decimal_to_int64(s, n, &i))
				return sql_value_from_int(prop->type, i, out);
			double d = strtod(s, &end);
			if (end == s || *end)
				return false;
			return sql_value_from_real(prop->type, d, out);
		case BQ_BOOL:
			return sql_value_from_int(prop->type, !strcmp(s, "true"), out);
		case BQ_TIMESTAMP:
			if (prop->type == PROP_DATE && micros_ms(s, &ms, &us)) {
				out->kind = VAL_DATE;
				out->u.i = ms;
				return true;
			}
			break;
		default:
			break;
		}
	}
	if (prop->type == PROP_STRING && col->type != BQ_TIMESTAMP) {
		if (n) {
			out->kind = VAL_STRING;
			out->u.s = (struct slice){ s, n };
		}
		return true;
	}
	struct strbuf t = STRBUF_INIT;
	bq_cell_text(col->type, s, &t);
	char *copy = arena_strndup(&cur->arena, t.buf, t.len);
	size_t len = t.len;
	strbuf_release(&t);
	return value_coerce_text(prop->type, copy, len, &cur->arena, out);
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
		strbuf_addf(&url, "%s/projects/", c->api);
		whttp_add_escaped(&url, p.buf);
		strbuf_addstr(&url, "/datasets/");
		whttp_add_escaped(&url, d.buf);
		strbuf_addstr(&url, "/tables/");
		whttp_add_escaped(&url, tn.buf);
		strbuf_release(&p);
		strbuf_release(&d);
		strbuf_release(&tn);
		rc = bq_request(c, "GET", url.buf, NULL, &resp, what.buf, err);
		if (!rc && resp.status == 404) {
			*missing = true;
			rc = jerror_set(err, JERR_CONFIG, "source \"%s\": table \"%s\" does not exist", sql_source_id(src),
					src->table);
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
	result_release(&r);
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
		if (!opt(app, *k)) {
			rc = jerror_set(err, JERR_CONFIG, "app \"%s\": option \"%s\" is required", app->id, *k);
			goto out;
		}
	}
	if ((rc = source_timeout_option(app, &timeout_ms, err)))
		goto out;
	c->timeout_s = (timeout_ms + 999) / 1000;
	c->project = xstrdup(opt(app, "project_id"));
	c->dataset = xstrdup(opt(app, "dataset"));
	c->email = xstrdup(opt(app, "client_email"));
	c->location = opt(app, "location") ? xstrdup(opt(app, "location")) : NULL;
	const char *ep = opt(app, "endpoint");
	if (ep) {
		if (strncmp(ep, "https://", 8) && !loopback_url(ep)) {
			rc = jerror_set(err, JERR_CONFIG, "app \"%s\": options.endpoint \"%s\" must be an https:// URL "
							  "(plain http only on 127.0.0.1 or localhost)",
					app->id, ep);
			goto out;
		}
		size_t n = strlen(ep);
		while (n && ep[n - 1] == '/')
			n--;
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
	if ((rc = jwt_load_private_key(opt(app, "private_key"), NULL, what.buf, &c->key, err)))
		goto out;
	source_watch_register(&c->watch, bq_cancel, timeout_ms, app->id);
	if ((rc = bq_token(c, true, err)))
		goto out;

	/* the dataset (and the permission to see it) */
	strbuf_reset(&what);
	strbuf_addf(&what, "app \"%s\"", app->id);
	strbuf_addf(&url, "%s/projects/", c->api);
	whttp_add_escaped(&url, c->project);
	strbuf_addstr(&url, "/datasets/");
	whttp_add_escaped(&url, c->dataset);
	if ((rc = bq_request(c, "GET", url.buf, NULL, &resp, what.buf, err)))
		goto out;
	if (resp.status == 404) {
		rc = jerror_set(err, JERR_CONFIG, "app \"%s\": dataset \"%s\" does not exist in project \"%s\"", app->id,
				c->dataset, c->project);
		detail_bq(err, resp.status, &resp.body);
		jerror_hint(err, "check options.project_id and options.dataset (dataset names are case-sensitive)");
		goto out;
	}
	if (resp.status == 403) {
		rc = jerror_set(err, JERR_CONFIG, "app \"%s\": service account %s may not read dataset \"%s\"", app->id,
				c->email, c->dataset);
		detail_bq(err, resp.status, &resp.body);
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
	result_release(&r);
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
		strbuf_addf(&url, "%s/projects/", c->api);
		whttp_add_escaped(&url, c->project);
		strbuf_addstr(&url, "/datasets/");
		whttp_add_escaped(&url, c->dataset);
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
	result_release(&r);
	sql_plan_release(&p);
	strbuf_release(&what);
	return rc;
}

static enum jerr bq_describe(void *conn, const struct cfg_source *src, struct strbuf *out, struct jerror *err)
{
	return sql_describe_source(&bq_dialect, conn, src, out, err);
}

/* ---- cursor ---- */

static enum jerr bq_next(struct source_cursor *base, struct source_row **row, struct jerror *err)
{
	struct bq_cursor *cur = (struct bq_cursor *)base;
	struct source_row *r = &cur->row;
	struct strbuf what = STRBUF_INIT;
	enum jerr rc = JERR_OK;

	*row = NULL;
	strbuf_addf(&what, "source \"%s\"", sql_source_id(cur->src));
	for (;;) {
		json_t *cells;
		if ((rc = result_next(cur->conn, &cur->res, &cells, what.buf, err)) || !cells)
			break;
		arena_reset(&cur->arena);
		json_t *k = cell_v(cells, 0);
		if (!k || json_is_null(k)) {
			int64_t nk = 1;
			const char *cs = json_string_value(cell_v(cells, (size_t)cur->count_col));
			if (cur->grouped && cs)
				decimal_to_int64(cs, strlen(cs), &nk);
			cur->null_keys += (uint64_t)nk;
			continue;
		}
		const char *ks = json_string_value(k);
		if (!ks) {
			rc = jerror_set(err, JERR_SOURCE_DATA, "source \"%s\": key column \"%s\" is not a scalar",
					sql_source_id(cur->src), cur->key_column);
			break;
		}
		r->n_invalid = 0;
		r->key.is_int = cur->int_key;
		r->key.i = 0;
		r->key.text = (struct slice){ ks, strlen(ks) };
		if (cur->int_key) {
			int64_t i;
			if (!decimal_to_int64(ks, strlen(ks), &i)) {
				rc = jerror_set(err, JERR_SOURCE_DATA,
						"source \"%s\": key column \"%s\" holds a non-integer value \"%.100s\"",
						sql_source_id(cur->src), cur->key_column, ks);
				jerror_hint(err, "clean the column, or make the primary key property a string");
				break;
			}
			r->key.i = i;
			r->key.text.ptr = sql_fmt_i64(&cur->arena, i, &r->key.text.len);
		}
		for (size_t i = 0; i < r->n_values; i++) {
			json_t *v = cell_v(cells, i + 1);
			if (!bq_value(cur, &cur->res.cols[i + 1], v, cur->src->properties[i], &r->values[i])) {
				const char *raw = json_string_value(v) ? json_string_value(v) : "?";
				r->values[i] = VALUE_NULL;
				r->n_invalid++;
				source_note_invalid(&cur->base, cur->src->properties[i], &r->key, raw, strlen(raw));
			}
		}
		r->since = (struct slice){ "", 0 };
		const char *ss = cur->since_col ? json_string_value(cell_v(cells, (size_t)cur->since_col)) : NULL;
		if (ss) {
			struct strbuf t = STRBUF_INIT;
			bq_since_text(cur->res.cols[cur->since_col].type, ss, &t);
			r->since.ptr = arena_strndup(&cur->arena, t.buf, t.len);
			r->since.len = t.len;
			strbuf_release(&t);
		}
		*row = r;
		break;
	}
	strbuf_release(&what);
	return rc;
}

static void bq_close(struct source_cursor *base)
{
	struct bq_cursor *cur = (struct bq_cursor *)base;
	if (cur->null_keys)
		log_warn("source \"%s\": skipped %" PRIu64 " rows with a NULL key column \"%s\"", sql_source_id(cur->src),
			 cur->null_keys, cur->key_column);
	result_release(&cur->res);
	arena_release(&cur->arena);
	free(cur->row.values);
	free(cur);
}

static const struct source_cursor_ops bq_cursor_ops = { bq_next, bq_close };

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
	if ((rc = sql_plan_build(&bq_dialect, c, src, read, &p, err)))
		goto out;
	if (p.n_binds && (rc = bq_columns(c, src, &t, &missing, err)))
		goto out;
	pt = param_types(t, &p);
	struct bq_cursor *cur = xcalloc(1, sizeof(*cur));
	cur->base.ops = &bq_cursor_ops;
	cur->base.source = src;
	strbuf_init(&cur->base.prev_text, 0);
	cur->conn = c;
	cur->src = src;
	cur->grouped = p.grouped;
	cur->int_key = p.int_key;
	cur->key_column = p.key_column;
	cur->count_col = (int)src->n_properties + 1;
	cur->since_col = p.since_col;
	arena_init(&cur->arena);
	cur->row.n_values = src->n_properties;
	cur->row.values = xcalloc(src->n_properties ? src->n_properties : 1, sizeof(struct value));
	strbuf_addf(&what, "source \"%s\"", sql_source_id(src));
	rc = bq_exec(c, p.sql.buf, p.binds, pt, p.n_binds, false, &cur->res, what.buf, err);
	size_t need = 1 + src->n_properties + (p.grouped ? 1 : 0) + (p.since_col ? 1 : 0);
	if (!rc && cur->res.n_cols != need)
		rc = jerror_set(err, JERR_SOURCE, "source \"%s\": the query has %zu columns, not %zu", sql_source_id(src),
				cur->res.n_cols, need);
	if (rc) {
		strbuf_release(&cur->base.prev_text);
		bq_close(&cur->base);
		goto out;
	}
	*out = &cur->base;
out:
	free(pt);
	strbuf_release(&what);
	sql_plan_release(&p);
	return rc;
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
};

/* ---- decoding a body alone (warehouse_decode.h) ---- */

enum jerr source_bigquery_decode(const char *body, size_t len, const struct warehouse_decode_spec *spec,
				 warehouse_row_fn on_row, void *ctx, struct jerror *err)
{
	struct cfg_source *src = warehouse_decode_source(spec);
	struct bq_cursor *cur = xcalloc(1, sizeof(*cur));
	struct source_row *row;
	enum jerr rc;

	cur->base.ops = &bq_cursor_ops;
	cur->base.source = src;
	strbuf_init(&cur->base.prev_text, 0);
	cur->src = src;
	cur->int_key = spec->int_key;
	cur->key_column = "key";
	cur->count_col = (int)spec->n + 1;
	arena_init(&cur->arena);
	cur->row.n_values = spec->n;
	cur->row.values = xcalloc(spec->n ? spec->n : 1, sizeof(struct value));
	json_t *j = json_loadb(body, len, 0, NULL);
	rc = json_is_object(j) ? take_page(&cur->res, j, "source \"decode\"", err)
			       : jerror_set(err, JERR_SOURCE, "source \"decode\": not a JSON object");
	json_decref(j);
	if (!rc && cur->res.n_cols != spec->n + 1)
		rc = jerror_set(err, JERR_SOURCE, "source \"decode\": %zu columns, not %zu", cur->res.n_cols, spec->n + 1);
	free(cur->res.page_token); /* this body only */
	cur->res.page_token = NULL;
	while (!rc && !(rc = bq_next(&cur->base, &row, err)) && row)
		on_row(ctx, row);
	strbuf_release(&cur->base.prev_text);
	bq_close(&cur->base);
	warehouse_decode_source_free(src);
	return rc;
}
