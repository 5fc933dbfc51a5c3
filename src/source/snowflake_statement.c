/*
 * snowflake_statement.c: the Snowflake connector's side of the SQL API v2 conversation:
 * the bearer token (key-pair JWT, minted and renewed here), one request with retries
 * (429, 5xx, transport; a 401 once with a new JWT), a statement's submit and poll
 * (202 -> statementHandle), its result metadata and partitions, and what a failed
 * statement means in plain words. Owns each struct sf_result it fills (freed by
 * sf_result_release). Called by snowflake.c (connect, check, open) and snowflake_rows.c.
 * Design note: snowflake.c.
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
#include "source/jwt.h"
#include "source/snowflake_internal.h"

/* ---- authentication ---- */

/* The bearer token for the next request: the JWT, minted again when old or forced. */
static enum jerr sf_auth(struct sf_conn *c, bool force, struct jerror *err)
{
	if (!c->keypair)
		return JERR_OK;
	int64_t now = time(NULL);
	if (!force && c->jwt_at && now - c->jwt_at < SF_JWT_RENEW_S)
		return JERR_OK;
	struct strbuf claims = STRBUF_INIT;
	strbuf_addstr(&claims, "{\"iss\":");
	struct strbuf iss = STRBUF_INIT;
	strbuf_addf(&iss, "%s.%s", c->jwt_subject, c->fingerprint.buf);
	strbuf_add_json_string(&claims, iss.buf, iss.len);
	strbuf_addstr(&claims, ",\"sub\":");
	strbuf_add_json_string(&claims, c->jwt_subject, strlen(c->jwt_subject));
	strbuf_addf(&claims, ",\"iat\":%" PRId64 ",\"exp\":%" PRId64 "}", now, now + SF_JWT_LIFETIME_S);
	strbuf_release(&iss);
	OPENSSL_cleanse(c->bearer.buf, c->bearer.len);
	strbuf_reset(&c->bearer);
	enum jerr rc = jwt_sign_rs256(c->key, claims.buf, &c->bearer, err);
	strbuf_release(&claims);
	if (!rc)
		c->jwt_at = now;
	return rc;
}

/* What to do about a 401, in plain words. */
static void hint_401(struct sf_conn *c, struct jerror *err)
{
	if (c->keypair)
		jerror_hint(err, "Snowflake did not accept the key: check that options.account (\"%s\") and "
				 "options.username are right and that the user has this public key, whose fingerprint "
				 "is %s: ALTER USER %s SET RSA_PUBLIC_KEY='<the public key>' (DESCRIBE USER shows "
				 "RSA_PUBLIC_KEY_FP)",
			    source_option_text(c->app, "account"), c->fingerprint.buf, c->user);
	else
		jerror_hint(err, "the SQL API takes no passwords: create a programmatic access token for user %s "
				 "(ALTER USER %s ADD PROGRAMMATIC ACCESS TOKEN joey) and put it in options.password, or "
				 "change the app's type to \"snowflake-keypair\"; an expired token must be replaced",
			    c->user, c->user);
}

/* ---- requests ---- */

/* Snowflake's error object: "<message> (code <code>, SQL state <s>)" as detail. */
static void detail_sf(struct jerror *err, long status, const struct strbuf *body)
{
	json_t *j = json_loadb(body->buf, body->len, 0, NULL);
	const char *msg = json_string_value(json_object_get(j, "message"));
	const char *code = json_string_value(json_object_get(j, "code"));
	const char *state = json_string_value(json_object_get(j, "sqlState"));
	struct strbuf sb = STRBUF_INIT;
	if (msg) {
		for (const char *s = msg; *s; s++)
			strbuf_addch(&sb, *s == '\n' ? ' ' : *s);
	} else {
		strbuf_addf(&sb, "%.200s", body->len ? body->buf : "(empty answer)");
	}
	jerror_detail(err, "HTTP %ld: %s%s%s%s%s%s", status, sb.buf, code ? " (code " : "", code ? code : "",
		      state ? ", SQL state " : "", state ? state : "", code ? ")" : "");
	strbuf_release(&sb);
	json_decref(j);
}

static const char *sf_code(const struct strbuf *body, char *buf, size_t n)
{
	json_t *j = json_loadb(body->buf, body->len, 0, NULL);
	const char *code = json_string_value(json_object_get(j, "code"));
	snprintf(buf, n, "%s", code ? code : "");
	json_decref(j);
	return buf;
}

/* The watcher's cancel (source.h): stops the HTTP call in progress. */
void sf_cancel(struct source_watch *w)
{
	struct sf_conn *c = (struct sf_conn *)(void *)((char *)w - offsetof(struct sf_conn, watch));
	whttp_abort(&c->http);
}

/*
 * One request with the connector's headers and retries: 429, 5xx and transport errors
 * again (bounded, with backoff), 401 once with a new JWT. url_retry (may be NULL) is
 * used instead of url for a repeated POST. Returns JERR_OK with any other final status in
 * resp (the caller decides), or an error naming what.
 */
static enum jerr sf_request(struct sf_conn *c, const char *method, const char *url, const char *url_retry,
			    const char *body, struct whttp_resp *resp, const char *what, struct jerror *err)
{
	struct strbuf auth = STRBUF_INIT, tt = STRBUF_INIT;
	struct whttp_retry retry = { &c->http, &c->watch, c->app->id, "Snowflake", what };
	bool reauthed = false;
	enum jerr rc = JERR_OK;

	for (int attempt = 0;; attempt++) {
		if ((rc = sf_auth(c, false, err)))
			break;
		strbuf_reset(&auth);
		strbuf_addf(&auth, "Authorization: Bearer %s", c->bearer.buf);
		strbuf_reset(&tt);
		strbuf_addf(&tt, "X-Snowflake-Authorization-Token-Type: %s", c->token_type);
		const char *headers[] = { auth.buf, tt.buf, "Content-Type: application/json", "Accept: application/json",
					  NULL };
		struct whttp_req req = { method, attempt && url_retry ? url_retry : url, headers, body,
					 body ? strlen(body) : 0 };
		struct jerror terr = JERROR_INIT;
		bool stop;
		rc = whttp_watched_call(&retry, &req, resp, &terr, err, &stop);
		if (stop)
			break;
		bool transient = rc || whttp_transient_status(resp->status);
		if (!rc && resp->status == 401 && c->keypair && !reauthed) {
			reauthed = true; /* an expired or refused JWT: one more try with a fresh one */
			if ((rc = sf_auth(c, true, err)))
				break;
			attempt--;
			continue;
		}
		if (transient && attempt + 1 < SF_TRIES && !(rc && resp->no_connection && attempt >= 2)) {
			if ((rc = whttp_retry_pause(&retry, attempt, rc, resp, "", &terr, err)))
				break;
			continue;
		}
		if (rc) {
			whttp_unreachable(&retry, &terr, err);
			if (resp->no_connection)
				jerror_hint(err, "check options.account (\"%s\"): it is the part of the account URL before "
						 ".snowflakecomputing.com, e.g. \"xy12345.us-east-1\" or \"myorg-myaccount\"",
					    source_option_text(c->app, "account"));
			jerror_release(&terr);
			break;
		}
		jerror_release(&terr);
		if (transient) {
			rc = jerror_set(err, JERR_SOURCE, "%s: Snowflake kept failing (%d tries)", what, SF_TRIES);
			detail_sf(err, resp->status, &resp->body);
			jerror_hint(err, "HTTP %ld is temporary; run again later", resp->status);
		}
		break;
	}
	OPENSSL_cleanse(auth.buf, auth.len);
	strbuf_release(&auth);
	strbuf_release(&tt);
	return rc;
}

static enum sf_type sf_type_of(const char *t)
{
	static const struct {
		const char *name;
		enum sf_type type;
	} names[] = {
		{ "fixed", SF_FIXED },     { "real", SF_REAL },		{ "text", SF_TEXT },
		{ "boolean", SF_BOOLEAN }, { "date", SF_DATE },		{ "time", SF_TIME },
		{ "timestamp_ntz", SF_TS_NTZ }, { "timestamp_ltz", SF_TS_LTZ }, { "timestamp_tz", SF_TS_TZ },
		{ "binary", SF_BINARY },   { "variant", SF_VARIANT },	{ "array", SF_ARRAY },
		{ "object", SF_OBJECT },
	};
	for (size_t i = 0; t && i < ARRAY_SIZE(names); i++)
		if (!strcasecmp(t, names[i].name))
			return names[i].type;
	return SF_OTHER;
}

void sf_result_release(struct sf_result *r)
{
	json_decref(r->meta);
	json_decref(r->data);
	free(r->cols);
	memset(r, 0, sizeof(*r));
}

/* Take the metadata and partition 0 of a finished statement's ResultSet (body). */
enum jerr sf_result_take(struct sf_result *r, const struct strbuf *body, const char *what, struct jerror *err)
{
	json_error_t je;
	json_t *j = json_loadb(body->buf, body->len, 0, &je);
	json_t *meta = json_object_get(j, "resultSetMetaData");
	json_t *rowtype = json_object_get(meta, "rowType");
	json_t *data = json_object_get(j, "data");
	const char *handle = json_string_value(json_object_get(j, "statementHandle"));
	if (!j || !json_is_array(rowtype) || (data && !json_is_array(data))) {
		jerror_set(err, JERR_SOURCE, "%s: Snowflake's answer is not a result set", what);
		jerror_detail(err, j ? "no resultSetMetaData.rowType" : "%s", j ? "" : je.text);
		json_decref(j);
		return JERR_SOURCE;
	}
	r->meta = json_incref(meta);
	r->data = data ? json_incref(data) : json_array();
	snprintf(r->handle, sizeof(r->handle), "%s", handle ? handle : "");
	r->n_cols = json_array_size(rowtype);
	r->cols = xcalloc(r->n_cols ? r->n_cols : 1, sizeof(*r->cols));
	for (size_t i = 0; i < r->n_cols; i++) {
		json_t *t = json_array_get(rowtype, i);
		r->cols[i].type = sf_type_of(json_string_value(json_object_get(t, "type")));
		r->cols[i].scale = (int)json_integer_value(json_object_get(t, "scale"));
		r->cols[i].name = json_string_value(json_object_get(t, "name"));
		if (!r->cols[i].name)
			r->cols[i].name = "";
	}
	json_t *total = json_object_get(meta, "numRows");
	r->has_total = json_is_integer(total) && json_integer_value(total) >= 0;
	r->total = r->has_total ? (uint64_t)json_integer_value(total) : 0;
	r->seen = 0;
	json_t *parts = json_object_get(meta, "partitionInfo");
	r->n_parts = json_is_array(parts) && json_array_size(parts) ? json_array_size(parts) : 1;
	r->part = 0;
	r->next = 0;
	json_decref(j);
	return JERR_OK;
}

/* A failed statement (422, 408, other 4xx): err says what, in plain words where known. */
static enum jerr statement_error(struct sf_conn *c, long status, const struct strbuf *body, const char *what,
				 struct jerror *err)
{
	char code[32];
	sf_code(body, code, sizeof(code));
	if (status == 401) {
		jerror_set(err, JERR_SOURCE, "app \"%s\": Snowflake refused the %s", c->app->id,
			   c->keypair ? "key pair (JWT)" : !strcmp(c->token_type, "OAUTH") ? "OAuth token"
											 : "programmatic access token");
		detail_sf(err, status, body);
		hint_401(c, err);
		return JERR_SOURCE;
	}
	if (status == 408) {
		jerror_set(err, JERR_SOURCE, "%s: the statement ran longer than statementTimeout (%" PRId64
					     " s) and Snowflake cancelled it",
			   what, c->timeout_s);
		detail_sf(err, status, body);
		jerror_hint(err, "raise the app's statementTimeout (seconds), or use a larger warehouse");
		return JERR_SOURCE;
	}
	jerror_set(err, JERR_SOURCE, "%s: query failed", what);
	detail_sf(err, status, body);
	if (!strcmp(code, "002003") || !strcmp(code, "390201") || !strcmp(code, "002043"))
		jerror_hint(err, "the object does not exist, or role %s has no privilege on it: check database \"%s\" "
				 "and schema \"%s\" (names are case-sensitive; plain names are upper-cased) and GRANT "
				 "USAGE on them and SELECT on the table to the role",
			    c->role ? c->role : "(the user's default role)", c->database, c->schema);
	else if (!strcmp(code, "000606") || !strcmp(code, "390200"))
		jerror_hint(err, "warehouse \"%s\" does not exist, is suspended without auto-resume, or role %s has "
				 "no USAGE on it: GRANT USAGE ON WAREHOUSE %s TO ROLE <role>",
			    c->warehouse, c->role ? c->role : "(the user's default role)", c->warehouse);
	else if (status == 403)
		jerror_hint(err, "the user or role lacks a privilege, or a network policy blocks this address");
	return JERR_SOURCE;
}

/* Append the statement request body. */
static void add_statement_body(struct sf_conn *c, struct strbuf *sb, const char *sql, const struct sql_bind *binds,
			       size_t n)
{
	strbuf_addstr(sb, "{\"statement\":");
	strbuf_add_json_string(sb, sql, strlen(sql));
	strbuf_addf(sb, ",\"timeout\":%" PRId64, c->timeout_s);
	strbuf_addstr(sb, ",\"database\":");
	strbuf_add_json_string(sb, c->database, strlen(c->database));
	strbuf_addstr(sb, ",\"schema\":");
	strbuf_add_json_string(sb, c->schema, strlen(c->schema));
	strbuf_addstr(sb, ",\"warehouse\":");
	strbuf_add_json_string(sb, c->warehouse, strlen(c->warehouse));
	if (c->role) {
		strbuf_addstr(sb, ",\"role\":");
		strbuf_add_json_string(sb, c->role, strlen(c->role));
	}
	if (n) {
		strbuf_addstr(sb, ",\"bindings\":{");
		for (size_t i = 0; i < n; i++) {
			const char *t = binds[i].kind == SQL_BIND_INT ? "FIXED" : binds[i].kind == SQL_BIND_REAL ? "REAL" : "TEXT";
			strbuf_addf(sb, "%s\"%zu\":{\"type\":\"%s\",\"value\":", i ? "," : "", i + 1, t);
			strbuf_add_json_string(sb, binds[i].s, strlen(binds[i].s));
			strbuf_addch(sb, '}');
		}
		strbuf_addch(sb, '}');
	}
	/* lossless, account-independent text for timestamps (the high-water mark) */
	strbuf_addstr(sb, ",\"parameters\":{\"timezone\":\"UTC\","
			  "\"timestamp_ntz_output_format\":\"YYYY-MM-DD HH24:MI:SS.FF9\","
			  "\"timestamp_ltz_output_format\":\"YYYY-MM-DD HH24:MI:SS.FF9 TZH:TZM\","
			  "\"timestamp_tz_output_format\":\"YYYY-MM-DD HH24:MI:SS.FF9 TZH:TZM\","
			  "\"date_output_format\":\"YYYY-MM-DD\",\"query_tag\":\"joey\"}}");
}

/*
 * Run sql with binds; on success *r holds its metadata and first partition. what
 * (borrowed) names the statement in messages ("source \"users\"").
 */
enum jerr sf_exec(struct sf_conn *c, const char *sql, const struct sql_bind *binds, size_t n, struct sf_result *r,
		  const char *what, struct jerror *err)
{
	struct strbuf body = STRBUF_INIT, url = STRBUF_INIT, url_retry = STRBUF_INIT, poll = STRBUF_INIT;
	struct whttp_resp resp;
	char rid[37];
	enum jerr rc;

	memset(r, 0, sizeof(*r));
	whttp_resp_init(&resp);
	whttp_uuid(rid);
	add_statement_body(c, &body, sql, binds, n);
	strbuf_addf(&url, "%s/api/v2/statements?requestId=%s", c->base, rid);
	strbuf_addf(&url_retry, "%s&retry=true", url.buf);
	rc = sf_request(c, "POST", url.buf, url_retry.buf, body.buf, &resp, what, err);
	long wait = SF_POLL_FIRST_MS;
	while (!rc && resp.status == 202) {
		json_t *j = json_loadb(resp.body.buf, resp.body.len, 0, NULL);
		const char *h = json_string_value(json_object_get(j, "statementHandle"));
		if (!h || strpbrk(h, "/?#&% ")) {
			json_decref(j);
			rc = jerror_set(err, JERR_SOURCE, "%s: Snowflake's answer names no statementHandle", what);
			break;
		}
		strbuf_reset(&poll);
		strbuf_addf(&poll, "%s/api/v2/statements/%s", c->base, h);
		json_decref(j);
		whttp_sleep_ms(wait, c->watch.stop);
		if (c->watch.stop && *c->watch.stop) {
			rc = jerror_set(err, JERR_INTERRUPTED, "%s: stopped", what);
			break;
		}
		wait = wait * 2 > SF_POLL_MAX_MS ? SF_POLL_MAX_MS : wait * 2;
		rc = sf_request(c, "GET", poll.buf, NULL, NULL, &resp, what, err);
	}
	if (!rc && resp.status == 200)
		rc = sf_result_take(r, &resp.body, what, err);
	else if (!rc)
		rc = statement_error(c, resp.status, &resp.body, what, err);
	if (rc == JERR_INTERRUPTED && poll.len) {
		/* best effort: the statement should not run on without us */
		struct whttp_resp cr;
		struct jerror cerr = JERROR_INIT;
		strbuf_addstr(&poll, "/cancel");
		whttp_resp_init(&cr);
		(void)sf_request(c, "POST", poll.buf, NULL, "{}", &cr, what, &cerr);
		jerror_release(&cerr);
		whttp_resp_release(&cr);
	}
	if (rc)
		sf_result_release(r);
	OPENSSL_cleanse(body.buf, body.len);
	strbuf_release(&body);
	strbuf_release(&url);
	strbuf_release(&url_retry);
	strbuf_release(&poll);
	whttp_resp_release(&resp);
	return rc;
}

/* The next row of r (NULL at the end), fetching the next partition when needed. */
enum jerr sf_result_next(struct sf_conn *c, struct sf_result *r, json_t **row, const char *what, struct jerror *err)
{
	*row = NULL;
	while (r->next >= json_array_size(r->data)) {
		if (r->part + 1 >= r->n_parts && r->has_total && r->seen != r->total) {
			/* a partition came without some of its rows: they are not deleted ones */
			jerror_set(err, JERR_SOURCE, "%s: Snowflake's result has %" PRIu64 " rows, not numRows %" PRIu64,
				   what, r->seen, r->total);
			jerror_detail(err, "%zu result partitions read", r->n_parts);
			jerror_hint(err, "nothing was changed in Braze for the rows not read; run again");
			return JERR_SOURCE;
		}
		if (r->part + 1 >= r->n_parts)
			return JERR_OK;
		struct strbuf url = STRBUF_INIT;
		struct whttp_resp resp;
		whttp_resp_init(&resp);
		r->part++;
		strbuf_addf(&url, "%s/api/v2/statements/%s?partition=%zu", c->base, r->handle, r->part);
		enum jerr rc = sf_request(c, "GET", url.buf, NULL, NULL, &resp, what, err);
		if (!rc && resp.status != 200) {
			rc = jerror_set(err, JERR_SOURCE, "%s: cannot read result partition %zu of %zu", what, r->part + 1,
					r->n_parts);
			detail_sf(err, resp.status, &resp.body);
			jerror_hint(err, "nothing was changed in Braze for the rows not read; run again");
		} else if (!rc) {
			json_t *j = json_loadb(resp.body.buf, resp.body.len, 0, NULL);
			json_t *data = json_object_get(j, "data");
			if (!json_is_array(data)) {
				rc = jerror_set(err, JERR_SOURCE, "%s: result partition %zu of %zu has no data", what,
						r->part + 1, r->n_parts);
				jerror_detail(err, "%.200s", resp.body.buf);
			} else {
				json_decref(r->data);
				r->data = json_incref(data);
				r->next = 0;
			}
			json_decref(j);
		} else {
			jerror_prefix(err, "result partition %zu of %zu: ", r->part + 1, r->n_parts);
		}
		strbuf_release(&url);
		whttp_resp_release(&resp);
		if (rc)
			return rc;
	}
	*row = json_array_get(r->data, r->next++);
	r->seen++;
	if (!json_is_array(*row) || json_array_size(*row) != r->n_cols)
		return jerror_set(err, JERR_SOURCE, "%s: malformed row %zu in result partition %zu (%zu columns "
						    "expected)",
				  what, r->next, r->part + 1, r->n_cols);
	return JERR_OK;
}

