/*
 * bigquery_statement.c: the BigQuery connector's side of the REST API v2 conversation:
 * the access token (a service-account JWT exchanged at the token endpoint), one request
 * with retries, jobs.query with its polls (getQueryResults) and pages, the schema, and
 * what a failed call means in plain words. Owns each struct bq_result it fills (freed
 * by bq_result_release). Called by bigquery.c (connect, column types, check, open) and
 * bigquery_rows.c. Design note: bigquery.c.
 */
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <jansson.h>
#include <openssl/crypto.h>

#include "base/xalloc.h"
#include "source/bigquery_internal.h"
#include "source/jwt.h"

void bq_cancel(struct source_watch *w)
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

void bq_detail(struct jerror *err, long status, const struct strbuf *body)
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

enum jerr bq_token(struct bq_conn *c, bool force, struct jerror *err)
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
			whttp_sleep_ms(whttp_backoff_ms(attempt, resp.retry_after_s), c->watch.stop);
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
	if (resp.status == 429 || resp.status >= 500) {
		/* the endpoint's trouble (an outage, a quota), not the key's */
		char reason[64];
		struct strbuf msg = STRBUF_INIT;
		bq_error_parts(&resp.body, reason, sizeof(reason), &msg);
		rc = jerror_set(err, JERR_SOURCE, "app \"%s\": Google's token endpoint kept failing (%d tries)",
				c->app->id, BQ_TRIES);
		jerror_detail(err, "HTTP %ld %s: %s", resp.status, reason, msg.buf);
		jerror_hint(err, "this is temporary (or a quota); run again later");
		strbuf_release(&msg);
		goto out;
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
enum jerr bq_request(struct bq_conn *c, const char *method, const char *url, const char *body,
		     struct whttp_resp *resp, const char *what, struct jerror *err)
{
	struct strbuf auth = STRBUF_INIT;
	struct whttp_retry retry = { &c->http, &c->watch, c->app->id, "BigQuery", what };
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
		bool stop;
		rc = whttp_watched_call(&retry, &req, resp, &terr, err, &stop);
		if (stop)
			break;
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
		bool transient = rc || whttp_transient_status(resp->status) || !strcmp(reason, "rateLimitExceeded") ||
				 !strcmp(reason, "backendError") || !strcmp(reason, "internalError");
		if (transient && attempt + 1 < BQ_TRIES && !(rc && resp->no_connection && attempt >= 2)) {
			if ((rc = whttp_retry_pause(&retry, attempt, rc, resp, reason, &terr, err)))
				break;
			continue;
		}
		if (rc) {
			whttp_unreachable(&retry, &terr, err);
			jerror_release(&terr);
			break;
		}
		jerror_release(&terr);
		if (transient) {
			rc = jerror_set(err, JERR_SOURCE, "%s: BigQuery kept failing (%d tries)", what, BQ_TRIES);
			bq_detail(err, resp->status, &resp->body);
			jerror_hint(err, "this is temporary (or a quota); run again later");
		}
		break;
	}
	OPENSSL_cleanse(auth.buf, auth.len);
	strbuf_release(&auth);
	return rc;
}

/* A failed call: err says what, in plain words where the reason is known. */
enum jerr bq_fail(struct bq_conn *c, long status, const struct strbuf *body, const char *what, struct jerror *err)
{
	char reason[64];
	struct strbuf m = STRBUF_INIT;
	bq_error_parts(body, reason, sizeof(reason), &m);
	strbuf_release(&m);
	jerror_set(err, JERR_SOURCE, "%s: query failed", what);
	bq_detail(err, status, body);
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

enum bq_type bq_type_of(const char *t)
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

void bq_result_release(struct bq_result *r)
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
enum jerr bq_take_page(struct bq_result *r, json_t *j, const char *what, struct jerror *err)
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
	const char *total = json_string_value(json_object_get(j, "totalRows"));
	int64_t t;
	if (!r->has_total && total && decimal_to_int64(total, strlen(total), &t) && t >= 0) {
		r->has_total = true;
		r->total = (uint64_t)t;
	}
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
enum jerr bq_exec(struct bq_conn *c, const char *sql, const struct sql_bind *binds, const char *const *ptypes, size_t n,
		  bool dry, struct bq_result *r, const char *what, struct jerror *err)
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
			rc = bq_take_page(r, j, what, err);
			break;
		}
		/* still running: getQueryResults waits server-side up to timeoutMs */
		strbuf_reset(&url);
		results_url(c, r, NULL, &url);
		rc = bq_request(c, "GET", url.buf, NULL, &resp, what, err);
	}
	if (rc)
		bq_result_release(r);
	json_decref(j);
	strbuf_release(&body);
	strbuf_release(&url);
	whttp_resp_release(&resp);
	return rc;
}

/* The next row's cells (NULL at the end), reading the next page when needed. */
enum jerr bq_result_next(struct bq_conn *c, struct bq_result *r, json_t **cells, const char *what,
			 struct jerror *err)
{
	*cells = NULL;
	while (r->next >= json_array_size(r->rows)) {
		if (!r->page_token && r->has_total && r->seen != r->total) {
			/* paging ended before the rows did: they are not deleted ones */
			jerror_set(err, JERR_SOURCE, "%s: BigQuery's result has %" PRIu64 " rows, not totalRows %" PRIu64,
				   what, r->seen, r->total);
			jerror_detail(err, "%zu result pages read", r->page);
			jerror_hint(err, "nothing was changed in Braze for the rows not read; run again");
			return JERR_SOURCE;
		}
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
			rc = json_is_object(j) ? bq_take_page(r, j, what, err)
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
	r->seen++;
	*cells = json_object_get(row, "f");
	if (!json_is_array(*cells) || json_array_size(*cells) != r->n_cols)
		return jerror_set(err, JERR_SOURCE, "%s: malformed row %zu on result page %zu", what, r->next, r->page);
	return JERR_OK;
}

