/* snowflake.c: the Snowflake connector over the SQL API v2 (libcurl, jansson, OpenSSL JWTs). */
#include <ctype.h>
#include <inttypes.h>
#include <math.h>
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

#define SF_TRIES 6                /* per request: 429 / 5xx / transport */
#define SF_BACKOFF_MS 250
#define SF_BACKOFF_MAX_MS 8000
#define SF_POLL_FIRST_MS 100
#define SF_POLL_MAX_MS 5000
#define SF_JWT_LIFETIME_S 3540    /* 59 minutes: Snowflake honours at most one hour */
#define SF_JWT_RENEW_S 3000

enum sf_type {
	SF_FIXED, SF_REAL, SF_TEXT, SF_BOOLEAN, SF_DATE, SF_TIME, SF_TS_NTZ, SF_TS_LTZ, SF_TS_TZ,
	SF_BINARY, SF_VARIANT, SF_ARRAY, SF_OBJECT, SF_OTHER,
};

struct sf_col {
	enum sf_type type;
	int scale;
	const char *name; /* borrowed from the metadata */
};

struct sf_conn {
	const struct cfg_app *app;
	char *base;                  /* https://<account>.snowflakecomputing.com or options.endpoint */
	char *database, *schema, *warehouse, *role; /* resolved (upper-cased unless quoted) */
	char *user;                  /* as configured, for messages */
	char *jwt_subject;           /* ACCOUNT.USER */
	bool keypair;
	EVP_PKEY *key;
	struct strbuf fingerprint;
	struct strbuf bearer;        /* the JWT or token (secret) */
	int64_t jwt_at;              /* when the JWT was minted (s), 0: none */
	const char *token_type;      /* KEYPAIR_JWT, PROGRAMMATIC_ACCESS_TOKEN, OAUTH */
	int64_t timeout_s;           /* statementTimeout */
	struct whttp http;
	struct source_watch watch;
};

/* A statement's result: metadata plus the current partition. */
struct sf_result {
	json_t *meta;                /* resultSetMetaData (owned) */
	char handle[128];
	struct sf_col *cols;
	size_t n_cols;
	size_t n_parts, part;        /* partitions; part: the one in data */
	json_t *data;                /* rows of partition `part` (owned) */
	size_t next;                 /* next row of data */
};

struct sf_cursor {
	struct source_cursor base; /* first */
	struct sf_conn *conn;
	const struct cfg_source *src;
	struct sf_result res;
	struct arena arena;
	struct source_row row;
	bool grouped, int_key;
	int count_col, since_col;
	uint64_t null_keys;
	const char *key_column;
};

static const char *const sf_source_types[] = {
	"snowflake-import-table", "snowflake-import-query", "snowflake-table-import", "snowflake-query-import", NULL,
};
static const char *const sf_app_options[] = {
	"account", "username", "password", "private_key", "private_key_passphrase", "warehouse", "database",
	"schema", "role", "authenticator", "statementTimeout", "endpoint", NULL,
};
static const char *const sf_required_options[] = { "account", "username", "warehouse", "database", NULL };

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
};

/* ---- options ---- */

static const char *opt(const struct cfg_app *app, const char *key)
{
	const struct cfg_option *o = cfg_options_get(&app->options, key);
	return o && o->str && *o->str ? o->str : NULL;
}

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

/* Loopback for a plain http endpoint (tests and local proxies only). */
static bool loopback_url(const char *u)
{
	if (strncmp(u, "http://", 7))
		return false;
	const char *h = u + 7;
	size_t hl = strcspn(h, ":/");
	return (hl == 9 && (!strncmp(h, "127.0.0.1", 9) || !strncmp(h, "localhost", 9))) ||
	       (hl == 5 && !strncmp(h, "[::1]", 5));
}

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
			    opt(c->app, "account"), c->fingerprint.buf, c->user);
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

static long backoff_ms(int attempt, long retry_after_s)
{
	if (retry_after_s >= 0)
		return retry_after_s > SF_BACKOFF_MAX_MS * 4 / 1000 ? SF_BACKOFF_MAX_MS * 4 : retry_after_s * 1000;
	long ms = SF_BACKOFF_MS << (attempt < 6 ? attempt : 6);
	if (ms > SF_BACKOFF_MAX_MS)
		ms = SF_BACKOFF_MAX_MS;
	return ms / 2 + rand() % (ms / 2 + 1); /* jitter */
}

/* The watcher's cancel (source.h): stops the HTTP call in progress. */
static void sf_cancel(struct source_watch *w)
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
		bool transient = rc || resp->status == 429 || resp->status == 500 || resp->status == 502 ||
				 resp->status == 503 || resp->status == 504;
		if (!rc && resp->status == 401 && c->keypair && !reauthed) {
			reauthed = true; /* an expired or refused JWT: one more try with a fresh one */
			if ((rc = sf_auth(c, true, err)))
				break;
			attempt--;
			continue;
		}
		if (transient && attempt + 1 < SF_TRIES && !(rc && resp->no_connection && attempt >= 2)) {
			long ms = backoff_ms(attempt, resp->retry_after_s);
			if (rc)
				log_warn("app \"%s\": %s: %s (%s); retrying in %ld ms", c->app->id, what, terr.msg.buf,
					 terr.detail.buf, ms);
			else
				log_warn("app \"%s\": %s: Snowflake answered HTTP %ld; retrying in %ld ms", c->app->id, what,
					 resp->status, ms);
			jerror_release(&terr);
			whttp_sleep_ms(ms, c->watch.stop);
			if (c->watch.stop && *c->watch.stop) {
				rc = jerror_set(err, JERR_INTERRUPTED, "%s: stopped", what);
				break;
			}
			continue;
		}
		if (rc) {
			jerror_set(err, JERR_SOURCE, "%s: cannot reach Snowflake", what);
			jerror_detail(err, "%s: %s", terr.msg.buf, terr.detail.buf);
			if (resp->no_connection)
				jerror_hint(err, "check options.account (\"%s\"): it is the part of the account URL before "
						 ".snowflakecomputing.com, e.g. \"xy12345.us-east-1\" or \"myorg-myaccount\"",
					    opt(c->app, "account"));
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

static void result_release(struct sf_result *r)
{
	json_decref(r->meta);
	json_decref(r->data);
	free(r->cols);
	memset(r, 0, sizeof(*r));
}

/* Take the metadata and partition 0 of a finished statement's ResultSet (body). */
static enum jerr result_take(struct sf_result *r, const struct strbuf *body, const char *what, struct jerror *err)
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
static enum jerr sf_exec(struct sf_conn *c, const char *sql, const struct sql_bind *binds, size_t n,
			 struct sf_result *r, const char *what, struct jerror *err)
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
		rc = result_take(r, &resp.body, what, err);
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
		result_release(r);
	OPENSSL_cleanse(body.buf, body.len);
	strbuf_release(&body);
	strbuf_release(&url);
	strbuf_release(&url_retry);
	strbuf_release(&poll);
	whttp_resp_release(&resp);
	return rc;
}

/* The next row of r (NULL at the end), fetching the next partition when needed. */
static enum jerr result_next(struct sf_conn *c, struct sf_result *r, json_t **row, const char *what,
			     struct jerror *err)
{
	*row = NULL;
	while (r->next >= json_array_size(r->data)) {
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
	if (!json_is_array(*row) || json_array_size(*row) != r->n_cols)
		return jerror_set(err, JERR_SOURCE, "%s: malformed row %zu in result partition %zu (%zu columns "
						    "expected)",
				  what, r->next, r->part + 1, r->n_cols);
	return JERR_OK;
}

/* ---- values ---- */

/* Dates and timestamps beyond year 9999 (either way) are not values: the millisecond
 * arithmetic would overflow (the fuzzer found "15899999990559194" seconds). */
#define SF_MAX_SECONDS INT64_C(253402300799) /* 9999-12-31T23:59:59Z */
#define SF_MAX_DAYS INT64_C(2932896)         /* 9999-12-31 */

/* "seconds[.fraction]" (possibly negative) as epoch milliseconds, truncated. */
static bool sf_seconds_ms(const char *s, int64_t *ms)
{
	const char *dot = strchr(s, '.');
	size_t n = dot ? (size_t)(dot - s) : strcspn(s, " ");
	int64_t sec;
	if (!decimal_to_int64(s, n, &sec) || sec > SF_MAX_SECONDS || sec < -SF_MAX_SECONDS)
		return false;
	int64_t frac = 0;
	int digits = 0;
	if (dot)
		for (const char *p = dot + 1; *p >= '0' && *p <= '9'; p++)
			if (digits < 3)
				frac = frac * 10 + (*p - '0'), digits++;
	while (digits < 3)
		frac *= 10, digits++;
	bool neg = s[0] == '-';
	*ms = sec * 1000 + (neg ? -frac : frac);
	return true;
}

/* "YYYY-MM-DD" of a day number. */
static void fmt_day(struct strbuf *sb, int64_t days)
{
	struct strbuf iso = STRBUF_INIT;
	time_format_iso(&iso, days * 86400000);
	strbuf_add(sb, iso.buf, 10 < iso.len ? 10 : iso.len);
	strbuf_release(&iso);
}

/*
 * A cell as text a person (or a string property) reads: dates YYYY-MM-DD, timestamps
 * ISO 8601 in UTC, booleans true/false, numbers and text as sent. Appends to sb.
 */
static void sf_cell_text(const struct sf_col *col, const char *s, struct strbuf *sb)
{
	int64_t v, ms;
	switch (col->type) {
	case SF_DATE:
		if (decimal_to_int64(s, strlen(s), &v) && v <= SF_MAX_DAYS && v >= -SF_MAX_DAYS) {
			fmt_day(sb, v);
			return;
		}
		break;
	case SF_TS_NTZ:
	case SF_TS_LTZ:
	case SF_TS_TZ:
		if (sf_seconds_ms(s, &ms)) {
			time_format_iso(sb, ms);
			return;
		}
		break;
	case SF_TIME:
		if (sf_seconds_ms(s, &ms)) {
			int64_t t = ms / 1000;
			strbuf_addf(sb, "%02" PRId64 ":%02" PRId64 ":%02" PRId64, t / 3600, t / 60 % 60, t % 60);
			return;
		}
		break;
	default:
		break;
	}
	strbuf_addstr(sb, s);
}

/*
 * The high-water mark text of a since cell: comparable as text or number
 * (source_since_compare) and accepted back as a TEXT bind against the column:
 * dates YYYY-MM-DD, timestamps YYYY-MM-DD HH:MM:SS.fffffffff (UTC), else as sent.
 */
static void sf_since_text(const struct sf_col *col, const char *s, struct strbuf *sb)
{
	if (col->type == SF_TS_NTZ || col->type == SF_TS_LTZ || col->type == SF_TS_TZ) {
		const char *dot = strchr(s, '.');
		int64_t sec;
		if (decimal_to_int64(s, dot ? (size_t)(dot - s) : strcspn(s, " "), &sec) && s[0] != '-' &&
		    sec <= SF_MAX_SECONDS) {
			struct strbuf iso = STRBUF_INIT;
			time_format_iso(&iso, sec * 1000);
			strbuf_add(sb, iso.buf, 10);
			strbuf_addch(sb, ' ');
			strbuf_add(sb, iso.buf + 11, 8);
			strbuf_addch(sb, '.');
			size_t k = 0;
			for (const char *p = dot ? dot + 1 : ""; *p >= '0' && *p <= '9' && k < 9; p++, k++)
				strbuf_addch(sb, *p);
			for (; k < 9; k++)
				strbuf_addch(sb, '0');
			strbuf_release(&iso);
			return;
		}
	}
	sf_cell_text(col, s, sb);
}

/* A cell as a value of prop's type; false if it does not fit. */
static bool sf_value(struct sf_cursor *cur, const struct sf_col *col, json_t *cell, const struct cfg_property *prop,
		     struct value *v)
{
	char num[64];
	const char *s;
	*v = VALUE_NULL;
	if (json_is_null(cell) || !cell)
		return true;
	if (json_is_string(cell)) {
		s = json_string_value(cell);
	} else if (json_is_integer(cell)) {
		snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT, json_integer_value(cell));
		s = num;
	} else if (json_is_real(cell)) {
		snprintf(num, sizeof(num), "%.17g", json_real_value(cell));
		s = num;
	} else if (json_is_boolean(cell)) {
		s = json_is_true(cell) ? "true" : "false";
	} else {
		return false;
	}
	size_t n = strlen(s);
	if (prop->is_array && !(cur->src->is_query && prop->query)) {
		if (col->type == SF_ARRAY || col->type == SF_VARIANT)
			return sql_decode_array(prop, s, n, &cur->arena, v, &cur->row.n_invalid);
		return false;
	}
	if (!sql_is_text_type(prop->type)) {
		int64_t i, ms;
		switch (col->type) {
		case SF_FIXED:
		case SF_REAL:
			if (decimal_to_int64(s, n, &i))
				return sql_value_from_int(prop->type, i, v);
			char *end;
			double d = strtod(s, &end);
			if (end == s || *end)
				return false;
			return sql_value_from_real(prop->type, d, v);
		case SF_BOOLEAN:
			return sql_value_from_int(prop->type, !strcmp(s, "true") || !strcmp(s, "1"), v);
		case SF_DATE:
			if (prop->type == PROP_DATE && decimal_to_int64(s, n, &i) && i <= SF_MAX_DAYS && i >= -SF_MAX_DAYS) {
				v->kind = VAL_DATE;
				v->u.i = i * 86400000;
				return true;
			}
			break;
		case SF_TS_NTZ:
		case SF_TS_LTZ:
		case SF_TS_TZ:
			if (prop->type == PROP_DATE && sf_seconds_ms(s, &ms)) {
				v->kind = VAL_DATE;
				v->u.i = ms;
				return true;
			}
			break;
		default:
			break;
		}
	}
	if (prop->type == PROP_STRING && (col->type == SF_TEXT || col->type == SF_FIXED || col->type == SF_REAL ||
					  col->type == SF_BOOLEAN || col->type == SF_VARIANT || col->type == SF_OTHER)) {
		if (n) {
			v->kind = VAL_STRING;
			v->u.s = (struct slice){ s, n }; /* lives as long as the partition: past next() */
		}
		return true;
	}
	struct strbuf t = STRBUF_INIT;
	sf_cell_text(col, s, &t);
	char *copy = arena_strndup(&cur->arena, t.buf, t.len);
	size_t len = t.len;
	strbuf_release(&t);
	return value_coerce_text(prop->type, copy, len, &cur->arena, v);
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

static const char *cell_str(json_t *row, size_t i)
{
	return json_string_value(json_array_get(row, i));
}

static enum jerr sf_connect(const struct cfg_app *app, const char *config_dir, void **out, struct jerror *err)
{
	struct sf_conn *c = xcalloc(1, sizeof(*c));
	struct strbuf sb = STRBUF_INIT, what = STRBUF_INIT;
	struct sf_result r;
	int64_t timeout_ms = 0;
	enum jerr rc = JERR_OK;
	const char *account = opt(app, "account"), *user = opt(app, "username");
	(void)config_dir;

	*out = NULL;
	memset(&r, 0, sizeof(r));
	c->app = app;
	strbuf_init(&c->bearer, 0);
	strbuf_init(&c->fingerprint, 0);
	whttp_init(&c->http);
	for (const char *const *k = sf_required_options; *k; k++) {
		if (!opt(app, *k)) {
			rc = jerror_set(err, JERR_CONFIG, "app \"%s\": option \"%s\" is required", app->id, *k);
			goto out;
		}
	}
	if ((rc = source_timeout_option(app, &timeout_ms, err)))
		goto out;
	c->timeout_s = (timeout_ms + 999) / 1000;
	c->user = xstrdup(user);
	c->database = context_name(opt(app, "database"));
	c->schema = context_name(opt(app, "schema") ? opt(app, "schema") : "PUBLIC");
	c->warehouse = context_name(opt(app, "warehouse"));
	c->role = opt(app, "role") ? context_name(opt(app, "role")) : NULL;

	/* where: the account's host, or options.endpoint (tests, proxies) */
	const char *ep = opt(app, "endpoint");
	if (ep) {
		if (strncmp(ep, "https://", 8) && !loopback_url(ep)) {
			rc = jerror_set(err, JERR_CONFIG, "app \"%s\": options.endpoint \"%s\" must be an https:// URL "
							  "(plain http only on 127.0.0.1 or localhost)",
					app->id, ep);
			jerror_hint(err, "endpoint is meant for tests and proxies; leave it out to use the account's "
					 "host");
			goto out;
		}
		size_t n = strlen(ep);
		while (n && ep[n - 1] == '/')
			n--;
		c->base = xstrndup(ep, n);
	} else {
		size_t n = strlen(account);
		const char *suffix = ".snowflakecomputing.com";
		if (n > strlen(suffix) && !strcasecmp(account + n - strlen(suffix), suffix))
			n -= strlen(suffix);
		strbuf_addstr(&sb, "https://");
		for (size_t i = 0; i < n; i++) {
			char ch = account[i];
			if (!(isalnum((unsigned char)ch) || ch == '-' || ch == '_' || ch == '.')) {
				rc = jerror_set(err, JERR_CONFIG, "app \"%s\": options.account \"%s\" is not an account "
								  "identifier",
						app->id, account);
				jerror_hint(err, "use the part of the account URL before .snowflakecomputing.com, e.g. "
						 "\"xy12345.us-east-1\" or \"myorg-myaccount\"");
				goto out;
			}
			strbuf_addch(&sb, ch == '_' ? '-' : ch); /* Snowflake: '-' in host names */
		}
		strbuf_addstr(&sb, ".snowflakecomputing.com");
		c->base = strbuf_detach(&sb, NULL);
	}

	/* who */
	strbuf_reset(&sb);
	jwt_account(&sb, account);
	strbuf_addch(&sb, '.');
	for (const char *s = user; *s; s++)
		strbuf_addch(&sb, toupper((unsigned char)*s));
	c->jwt_subject = strbuf_detach(&sb, NULL);
	if (!strcmp(app->type, "snowflake-keypair")) {
		c->keypair = true;
		c->token_type = "KEYPAIR_JWT";
		strbuf_addf(&what, "app \"%s\": options.private_key", app->id);
		if (!opt(app, "private_key")) {
			rc = jerror_set(err, JERR_CONFIG, "app \"%s\": option \"private_key\" is required", app->id);
			goto out;
		}
		if ((rc = jwt_load_private_key(opt(app, "private_key"), opt(app, "private_key_passphrase"), what.buf,
					       &c->key, err)))
			goto out;
		jwt_fingerprint(c->key, &c->fingerprint);
	} else {
		const char *tt = opt(app, "authenticator");
		if (!opt(app, "password")) {
			rc = jerror_set(err, JERR_CONFIG, "app \"%s\": option \"password\" is required", app->id);
			jerror_hint(err, "put a programmatic access token for user %s in options.password, or use a "
					 "\"snowflake-keypair\" app",
				    user);
			goto out;
		}
		if (tt && strcasecmp(tt, "programmatic_access_token") && strcasecmp(tt, "oauth")) {
			rc = jerror_set(err, JERR_CONFIG, "app \"%s\": options.authenticator must be "
							  "\"programmatic_access_token\" (the default) or \"oauth\"",
					app->id);
			goto out;
		}
		c->token_type = tt && !strcasecmp(tt, "oauth") ? "OAUTH" : "PROGRAMMATIC_ACCESS_TOKEN";
		strbuf_addstr(&c->bearer, opt(app, "password"));
		for (const char *s = c->bearer.buf; *s; s++) {
			if (*s <= ' ' || *s == 0x7f) {
				rc = jerror_set(err, JERR_CONFIG, "app \"%s\": options.password contains spaces or line "
								  "breaks, which a token cannot have",
						app->id);
				jerror_hint(err, "copy the programmatic access token again");
				goto out;
			}
		}
	}
	source_watch_register(&c->watch, sf_cancel, timeout_ms, app->id);

	/* prove it: a harmless statement that names the session's context */
	strbuf_reset(&what);
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
	if ((rc = result_next(c, &r, &row, what.buf, err)))
		goto out;
	if (!row || r.n_cols < 5) {
		rc = jerror_set(err, JERR_SOURCE, "app \"%s\": Snowflake answered the connection check with no row",
				app->id);
		goto out;
	}
	if (!cell_str(row, 2)) {
		rc = jerror_set(err, JERR_CONFIG, "app \"%s\": database \"%s\" does not exist, or role %s cannot use it",
				app->id, c->database, cell_str(row, 1) ? cell_str(row, 1) : "(none)");
		jerror_hint(err, "names are case-sensitive (a plain name is upper-cased: write \"\\\"name\\\"\" to keep "
				 "lower case); GRANT USAGE ON DATABASE %s TO ROLE <role>",
			    c->database);
	} else if (!cell_str(row, 3)) {
		rc = jerror_set(err, JERR_CONFIG, "app \"%s\": schema \"%s\" does not exist in database \"%s\", or role "
						  "%s cannot use it",
				app->id, c->schema, c->database, cell_str(row, 1) ? cell_str(row, 1) : "(none)");
		jerror_hint(err, "options.schema defaults to PUBLIC; GRANT USAGE ON SCHEMA %s.%s TO ROLE <role>",
			    c->database, c->schema);
	} else if (!cell_str(row, 4)) {
		rc = jerror_set(err, JERR_CONFIG, "app \"%s\": warehouse \"%s\" does not exist, or role %s cannot use it",
				app->id, c->warehouse, cell_str(row, 1) ? cell_str(row, 1) : "(none)");
		jerror_hint(err, "GRANT USAGE ON WAREHOUSE %s TO ROLE <role>", c->warehouse);
	}
	if (rc)
		goto out;
	*out = c;
	c = NULL;
out:
	result_release(&r);
	strbuf_release(&sb);
	strbuf_release(&what);
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
	while (!rc && !(rc = result_next(c, &r, &row, what, err)) && row) {
		ALLOC_GROW(*names, *n + 1, alloc);
		(*names)[(*n)++] = xstrdup(cell_str(row, 0) ? cell_str(row, 0) : "");
	}
	result_release(&r);
	return rc;
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
			rc = jerror_set(err, JERR_CONFIG, "source \"%s\": table \"%s\" does not exist", sql_source_id(src),
					src->table);
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
		strbuf_addstr(&sql, "SELECT * FROM (");
		sql_add_query_text(&sql, src->query);
		strbuf_addstr(&sql, ") AS \"joey$q\" LIMIT 0");
		if ((rc = sf_exec(c, sql.buf, NULL, 0, &r, what.buf, err))) {
			jerror_prefix(err, "the source query is invalid: ");
			goto out;
		}
		n = r.n_cols;
		names = xcalloc(n + 1, sizeof(char *));
		for (size_t i = 0; i < n; i++)
			names[i] = xstrdup(r.cols[i].name);
		result_release(&r);
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
	result_release(&r);
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

/* ---- cursor ---- */

static enum jerr sf_next(struct source_cursor *base, struct source_row **row, struct jerror *err)
{
	struct sf_cursor *cur = (struct sf_cursor *)base;
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
		json_t *k = json_array_get(cells, 0);
		if (json_is_null(k)) {
			int64_t nk = 1;
			const char *cs = cell_str(cells, (size_t)cur->count_col);
			if (cur->grouped && cs)
				decimal_to_int64(cs, strlen(cs), &nk);
			cur->null_keys += (uint64_t)nk;
			continue;
		}
		const char *ks = json_string_value(k);
		if (!ks) {
			rc = jerror_set(err, JERR_SOURCE_DATA, "source \"%s\": key column \"%s\" is not text in Snowflake's "
							       "answer",
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
				jerror_detail(err, "the record key (primary key property) is an integer");
				jerror_hint(err, "clean the column, or make the primary key property a string");
				break;
			}
			r->key.i = i;
			r->key.text.ptr = sql_fmt_i64(&cur->arena, i, &r->key.text.len);
		}
		for (size_t i = 0; i < r->n_values; i++) {
			json_t *cell = json_array_get(cells, i + 1);
			if (!sf_value(cur, &cur->res.cols[i + 1], cell, cur->src->properties[i], &r->values[i])) {
				const char *raw = json_string_value(cell) ? json_string_value(cell) : "?";
				r->values[i] = VALUE_NULL;
				r->n_invalid++;
				source_note_invalid(&cur->base, cur->src->properties[i], &r->key, raw, strlen(raw));
			}
		}
		r->since = (struct slice){ "", 0 };
		const char *ss = cur->since_col ? cell_str(cells, (size_t)cur->since_col) : NULL;
		if (ss) {
			struct strbuf t = STRBUF_INIT;
			sf_since_text(&cur->res.cols[cur->since_col], ss, &t);
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

static void sf_close(struct source_cursor *base)
{
	struct sf_cursor *cur = (struct sf_cursor *)base;
	if (cur->null_keys)
		log_warn("source \"%s\": skipped %" PRIu64 " rows with a NULL key column \"%s\"", sql_source_id(cur->src),
			 cur->null_keys, cur->key_column);
	result_release(&cur->res);
	arena_release(&cur->arena);
	free(cur->row.values);
	free(cur);
}

static const struct source_cursor_ops sf_cursor_ops = { sf_next, sf_close };

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
	cur->base.ops = &sf_cursor_ops;
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
	rc = sf_exec(c, p.sql.buf, p.binds, p.n_binds, &cur->res, what.buf, err);
	size_t need = 1 + src->n_properties + (p.grouped ? 1 : 0) + (p.since_col ? 1 : 0);
	if (!rc && cur->res.n_cols != need)
		rc = jerror_set(err, JERR_SOURCE, "source \"%s\": the query has %zu columns, not %zu", sql_source_id(src),
				cur->res.n_cols, need);
	if (rc) {
		strbuf_release(&cur->base.prev_text);
		sf_close(&cur->base);
		goto out;
	}
	*out = &cur->base;
out:
	strbuf_release(&what);
	sql_plan_release(&p);
	return rc;
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
};

/* ---- decoding a body alone (warehouse_decode.h) ---- */

struct cfg_source *warehouse_decode_source(const struct warehouse_decode_spec *spec)
{
	struct cfg_source *src = xcalloc(1, sizeof(*src));
	src->id = "decode";
	src->mapping_column = "key";
	src->n_properties = spec->n;
	src->properties = xcalloc(spec->n ? spec->n : 1, sizeof(*src->properties));
	for (size_t i = 0; i < spec->n; i++) {
		struct cfg_property *p = xcalloc(1, sizeof(*p));
		char id[24];
		snprintf(id, sizeof(id), "p%zu", i);
		p->id = xstrdup(id);
		p->type = spec->types[i];
		p->is_array = spec->arrays && spec->arrays[i];
		p->source = src;
		src->properties[i] = p;
	}
	return src;
}

void warehouse_decode_source_free(struct cfg_source *src)
{
	for (size_t i = 0; src && i < src->n_properties; i++) {
		free((char *)src->properties[i]->id);
		free(src->properties[i]);
	}
	if (src)
		free(src->properties);
	free(src);
}

enum jerr source_snowflake_decode(const char *body, size_t len, const struct warehouse_decode_spec *spec,
				  warehouse_row_fn on_row, void *ctx, struct jerror *err)
{
	struct cfg_source *src = warehouse_decode_source(spec);
	struct sf_cursor *cur = xcalloc(1, sizeof(*cur));
	struct strbuf b = STRBUF_INIT;
	struct source_row *row;
	enum jerr rc;

	strbuf_add(&b, body, len);
	cur->base.ops = &sf_cursor_ops;
	cur->base.source = src;
	strbuf_init(&cur->base.prev_text, 0);
	cur->src = src;
	cur->int_key = spec->int_key;
	cur->key_column = "key";
	cur->count_col = (int)spec->n + 1;
	arena_init(&cur->arena);
	cur->row.n_values = spec->n;
	cur->row.values = xcalloc(spec->n ? spec->n : 1, sizeof(struct value));
	rc = result_take(&cur->res, &b, "source \"decode\"", err);
	if (!rc && cur->res.n_cols != spec->n + 1)
		rc = jerror_set(err, JERR_SOURCE, "source \"decode\": %zu columns, not %zu", cur->res.n_cols, spec->n + 1);
	cur->res.n_parts = 1; /* this body only */
	while (!rc && !(rc = sf_next(&cur->base, &row, err)) && row)
		on_row(ctx, row);
	strbuf_release(&cur->base.prev_text);
	sf_close(&cur->base);
	strbuf_release(&b);
	warehouse_decode_source_free(src);
	return rc;
}
