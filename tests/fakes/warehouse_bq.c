/* warehouse_bq.c: warehouse-fake's BigQuery token endpoint and REST API v2 (jobs.query, getQueryResults, tables). */
#include <ctype.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>

#include <jansson.h>
#include <sqlite3.h>

#include "base/strbuf.h"
#include "base/timeutil.h"
#include "base/xalloc.h"
#include "source/jwt.h"

#include "warehouse.h"

#define BQ_KEEP 512
#define BQ_TOKENS 256
#define BQ_PREFIX "/bigquery/v2/projects/"

struct bq_token {
	char tok[80];
	int64_t until_ms;
	int epoch;
};

struct bq_job {
	char id[64];
	char request_id[80];
	struct fake_result *res;
	char **types;   /* legacy schema type per column */
	bool *repeated;
	int polls_left;
};

static pthread_mutex_t bq_lock = PTHREAD_MUTEX_INITIALIZER;
static struct bq_token tokens[BQ_TOKENS];
static size_t n_tokens_total;
static struct bq_job *jobs[BQ_KEEP];
static size_t n_jobs_total;

static const char *const param_types[] = { "STRING", "INT64", "FLOAT64", "NUMERIC", "BIGNUMERIC", "BOOL", "BYTES",
					    "DATE", "DATETIME", "TIME", "TIMESTAMP", "GEOGRAPHY", "JSON", "INTERVAL" };

static const char *status_name(int code)
{
	switch (code) {
	case 400: return "INVALID_ARGUMENT";
	case 401: return "UNAUTHENTICATED";
	case 403: return "PERMISSION_DENIED";
	case 404: return "NOT_FOUND";
	case 409: return "ALREADY_EXISTS";
	case 429: return "RESOURCE_EXHAUSTED";
	case 503: return "UNAVAILABLE";
	default: return code >= 500 ? "INTERNAL" : "UNKNOWN";
	}
}

static int reply_error(struct fake_req *r, int code, const char *reason, const char *msg)
{
	json_t *o = json_pack("{s:{s:i, s:s, s:s, s:[{s:s, s:s, s:s}]}}", "error", "code", code, "message", msg, "status",
			      status_name(code), "errors", "reason", reason, "message", msg, "domain", "global");
	char *text = json_dumps(o, JSON_COMPACT);
	int ret = fake_reply(r->conn, code, text, false);
	fake_log_request(r->method, r->url, r->query.buf, r->body, code);
	free(text);
	json_decref(o);
	return ret;
}

static int reply_json(struct fake_req *r, json_t *o)
{
	char *text = json_dumps(o, JSON_COMPACT);
	int ret = fake_reply(r->conn, 200, text, r->gzip_ok);
	fake_log_request(r->method, r->url, r->query.buf, r->body, 200);
	free(text);
	json_decref(o);
	return ret;
}

static const char *default_reason(int status)
{
	return status == 429 || status == 403 ? "rateLimitExceeded" : status >= 500 ? "backendError"
							 : status == 401 ? "authError" : status == 404 ? "notFound"
													: "invalid";
}

static const char *arg(struct fake_req *r, const char *name)
{
	return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, name);
}

/* ---- the token endpoint ---- */

static char *form_value(const char *body, size_t len, const char *key)
{
	size_t kl = strlen(key);
	const char *s = body, *end = body + len;
	while (s < end) {
		const char *amp = memchr(s, '&', (size_t)(end - s));
		const char *e = amp ? amp : end;
		if ((size_t)(e - s) > kl && !strncmp(s, key, kl) && s[kl] == '=') {
			struct strbuf v = STRBUF_INIT;
			for (const char *p = s + kl + 1; p < e; p++) {
				if (*p == '%' && p + 2 < e && isxdigit((unsigned char)p[1]) && isxdigit((unsigned char)p[2])) {
					char hex[3] = { p[1], p[2], 0 };
					strbuf_addch(&v, (int)strtol(hex, NULL, 16));
					p += 2;
				} else {
					strbuf_addch(&v, *p == '+' ? ' ' : *p);
				}
			}
			return strbuf_detach(&v, NULL);
		}
		s = e + 1;
	}
	return NULL;
}

static int token_error(struct fake_req *r, const char *desc)
{
	json_t *o = json_pack("{s:s, s:s}", "error", "invalid_grant", "error_description", desc);
	char *text = json_dumps(o, JSON_COMPACT);
	int ret = fake_reply(r->conn, 400, text, false);
	fake_log_request(r->method, r->url, NULL, NULL, 400); /* the assertion is never logged */
	free(text);
	json_decref(o);
	pthread_mutex_lock(&bq_lock);
	fk.auth_failures++;
	pthread_mutex_unlock(&bq_lock);
	fake_log("token: %s", desc);
	return ret;
}

static int token(struct fake_req *r)
{
	const char *ct = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Content-Type");
	char *grant = form_value(r->body, r->body_len, "grant_type");
	char *assertion = form_value(r->body, r->body_len, "assertion");
	int ret, fs;
	char reason[64] = "";
	const char *why = NULL;
	json_t *claims = NULL;

	if ((fs = fake_take_fault("token", -1, NULL, reason, sizeof(reason)))) {
		ret = fs == 400 ? token_error(r, "Invalid JWT Signature.") : reply_error(r, fs, default_reason(fs), "injected fault");
		goto out;
	}
	if (!ct || strncmp(ct, "application/x-www-form-urlencoded", 33)) {
		ret = token_error(r, "Content-Type must be application/x-www-form-urlencoded");
		goto out;
	}
	if (!grant || strcmp(grant, "urn:ietf:params:oauth:grant-type:jwt-bearer")) {
		ret = token_error(r, "Invalid grant_type.");
		goto out;
	}
	if (!assertion || !fk.pubkey || !(claims = jwt_verify_rs256(fk.pubkey, assertion, &why))) {
		ret = token_error(r, "Invalid JWT Signature.");
		goto out;
	}
	char aud[128];
	const union MHD_ConnectionInfo *ci = MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_DAEMON);
	const union MHD_DaemonInfo *di = ci ? MHD_get_daemon_info(ci->daemon, MHD_DAEMON_INFO_BIND_PORT) : NULL;
	snprintf(aud, sizeof(aud), "http://127.0.0.1:%u/token", di ? di->port : 0);
	const char *iss = json_string_value(json_object_get(claims, "iss"));
	const char *ca = json_string_value(json_object_get(claims, "aud"));
	const char *scope = json_string_value(json_object_get(claims, "scope"));
	double iat = json_number_value(json_object_get(claims, "iat")), exp = json_number_value(json_object_get(claims, "exp"));
	double now = (double)time(NULL);
	if (!iss || strcmp(iss, fk.client_email))
		why = "Invalid JWT: iss is not the service account";
	else if (!ca || (strcmp(ca, aud) && strncmp(ca, "http://localhost:", 17)))
		why = "Invalid JWT: aud is not the token endpoint";
	else if (!scope || !(strstr(scope, "https://www.googleapis.com/auth/bigquery") ||
			     strstr(scope, "https://www.googleapis.com/auth/cloud-platform")))
		why = "Invalid JWT: no BigQuery scope";
	else if (exp - iat > 3600)
		why = "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe.";
	else if (now < iat - 60 || now > exp)
		why = "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check "
		      "your iat and exp values in the JWT claim.";
	if (why) {
		ret = token_error(r, why);
		goto out;
	}
	pthread_mutex_lock(&bq_lock);
	struct bq_token *t = &tokens[n_tokens_total++ % BQ_TOKENS];
	snprintf(t->tok, sizeof(t->tok), "ya29.fake-%zu-%" PRId64, n_tokens_total, fake_now_ms());
	t->until_ms = fake_now_ms() + (int64_t)fk.token_expires_s * 1000;
	t->epoch = fk.token_epoch;
	fk.tokens_issued++;
	json_t *o = json_pack("{s:s, s:i, s:s}", "access_token", t->tok, "expires_in", fk.token_expires_s, "token_type",
			      "Bearer");
	pthread_mutex_unlock(&bq_lock);
	char *text = json_dumps(o, JSON_COMPACT);
	ret = fake_reply(r->conn, 200, text, false);
	fake_log_request(r->method, r->url, NULL, NULL, 200);
	free(text);
	json_decref(o);
out:
	json_decref(claims);
	free(grant);
	free(assertion);
	return ret;
}

static bool token_ok(struct fake_req *r)
{
	const char *a = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Authorization");
	bool ok = false;
	if (!a || strncmp(a, "Bearer ", 7))
		return false;
	pthread_mutex_lock(&bq_lock);
	for (size_t i = 0; i < BQ_TOKENS && !ok; i++)
		ok = tokens[i].tok[0] && !strcmp(tokens[i].tok, a + 7) && tokens[i].until_ms > fake_now_ms() &&
		     tokens[i].epoch == fk.token_epoch;
	if (!ok)
		fk.auth_failures++;
	pthread_mutex_unlock(&bq_lock);
	return ok;
}

/* ---- types and cells ---- */

static const char *legacy_type(const char *decl)
{
	char u[64];
	size_t i = 0;
	for (; decl[i] && i < sizeof(u) - 1; i++)
		u[i] = (char)toupper((unsigned char)decl[i]);
	u[i] = '\0';
	if (strstr(u, "TIMESTAMP"))
		return "TIMESTAMP";
	if (strstr(u, "DATETIME"))
		return "DATETIME";
	if (strstr(u, "DATE"))
		return "DATE";
	if (strstr(u, "TIME"))
		return "TIME";
	if (strstr(u, "BOOL"))
		return "BOOLEAN";
	if (strstr(u, "INT"))
		return "INTEGER";
	if (strstr(u, "NUMERIC") || strstr(u, "DECIMAL") || strstr(u, "NUMBER"))
		return "NUMERIC";
	if (strstr(u, "FLOAT") || strstr(u, "REAL") || strstr(u, "DOUBLE"))
		return "FLOAT";
	if (strstr(u, "BYTES") || strstr(u, "BLOB"))
		return "BYTES";
	return "STRING";
}

/* The GoogleSQL type class of a legacy or standard type name, for comparisons. */
static const char *type_class(const char *t)
{
	if (!strcmp(t, "INTEGER") || !strcmp(t, "INT64") || !strcmp(t, "FLOAT") || !strcmp(t, "FLOAT64") ||
	    !strcmp(t, "NUMERIC") || !strcmp(t, "BIGNUMERIC"))
		return "number";
	if (!strcmp(t, "BOOLEAN") || !strcmp(t, "BOOL"))
		return "bool";
	return t; /* STRING, DATE, DATETIME, TIME, TIMESTAMP, BYTES: only themselves */
}

static void col_type(const struct fake_result *res, size_t c, char **type, bool *repeated)
{
	*repeated = false;
	if (res->cols[c].decl && *res->cols[c].decl) {
		*type = xstrdup(legacy_type(res->cols[c].decl));
		return;
	}
	for (size_t i = 0; i < res->n_rows; i++) {
		const struct fake_cell *cell = &res->cells[i * res->n_cols + c];
		if (cell->type == SQLITE_NULL)
			continue;
		if (cell->type == SQLITE_INTEGER)
			*type = xstrdup("INTEGER");
		else if (cell->type == SQLITE_FLOAT)
			*type = xstrdup("FLOAT");
		else if (cell->text && cell->text[0] == FAKE_ARRAY_MARK) {
			*repeated = true;
			json_t *a = json_loads(cell->text + 1, 0, NULL);
			json_t *e0 = json_array_get(a, 0);
			*type = xstrdup(json_is_integer(e0) ? "INTEGER" : json_is_real(e0) ? "FLOAT" : "STRING");
			json_decref(a);
		} else
			*type = xstrdup("STRING");
		return;
	}
	*repeated = strstr(res->cols[c].name, "fake_array_agg") != NULL;
	*type = xstrdup("STRING");
}

static void add_double(struct strbuf *sb, double f)
{
	char buf[64];
	for (int p = 15; p <= 17; p++) {
		snprintf(buf, sizeof(buf), "%.*g", p, f);
		if (strtod(buf, NULL) == f)
			break;
	}
	strbuf_addstr(sb, buf);
}

/* Seconds as BigQuery's default TIMESTAMP text: exponent form, e.g. 1.5808183945678E9. */
static void add_exp_seconds(struct strbuf *sb, double s)
{
	if (s == 0) {
		strbuf_addstr(sb, "0.0");
		return;
	}
	int e = (int)floor(log10(fabs(s)));
	double m = s / pow(10, e);
	char buf[64];
	snprintf(buf, sizeof(buf), "%.15g", m);
	strbuf_addf(sb, "%s%sE%d", buf, strchr(buf, '.') ? "" : ".0", e);
}

static json_t *encode_scalar(int type, int64_t i, double f, const char *text, const char *bqtype, bool int64_ts)
{
	struct strbuf sb = STRBUF_INIT;
	int64_t ms;
	if (type == SQLITE_NULL)
		return json_null();
	const char *t = text ? text : "";
	if (!strcmp(bqtype, "TIMESTAMP") && type == SQLITE_TEXT && time_parse(t, strlen(t), &ms)) {
		if (int64_ts)
			strbuf_addf(&sb, "%" PRId64 "000", ms);
		else
			add_exp_seconds(&sb, (double)ms / 1000.0);
	} else if (!strcmp(bqtype, "DATETIME") && type == SQLITE_TEXT && strlen(t) >= 19) {
		strbuf_addstr(&sb, t);
		sb.buf[10] = 'T';
		if (sb.len && sb.buf[sb.len - 1] == 'Z')
			strbuf_setlen(&sb, sb.len - 1);
	} else if (!strcmp(bqtype, "BOOLEAN")) {
		strbuf_addstr(&sb, type == SQLITE_TEXT ? (!strcasecmp(t, "true") || !strcmp(t, "1") ? "true" : "false")
						       : (f != 0 ? "true" : "false"));
	} else if (type == SQLITE_INTEGER) {
		strbuf_addf(&sb, "%" PRId64, i);
	} else if (type == SQLITE_FLOAT) {
		add_double(&sb, f);
	} else {
		strbuf_addstr(&sb, t);
	}
	json_t *j = json_stringn(sb.buf, sb.len);
	strbuf_release(&sb);
	return j;
}

static json_t *encode_cell(const struct fake_cell *c, const char *bqtype, bool repeated, bool int64_ts)
{
	if (!repeated)
		return encode_scalar(c->type, c->i, c->f, c->text, bqtype, int64_ts);
	json_t *out = json_array();
	json_t *a = c->text && c->text[0] == FAKE_ARRAY_MARK ? json_loads(c->text + 1, 0, NULL) : NULL;
	size_t k;
	json_t *e;
	json_array_foreach(a, k, e) {
		json_t *v;
		if (json_is_integer(e))
			v = encode_scalar(SQLITE_INTEGER, json_integer_value(e), 0, NULL, bqtype, int64_ts);
		else if (json_is_real(e))
			v = encode_scalar(SQLITE_FLOAT, 0, json_real_value(e), NULL, bqtype, int64_ts);
		else
			v = encode_scalar(SQLITE_TEXT, 0, 0, json_string_value(e), bqtype, int64_ts);
		json_array_append_new(out, json_pack("{s:o}", "v", v));
	}
	json_decref(a);
	return out;
}

static json_t *schema_json(const struct bq_job *j)
{
	json_t *fields = json_array();
	for (size_t c = 0; c < j->res->n_cols; c++)
		json_array_append_new(fields, json_pack("{s:s, s:s, s:s}", "name", j->res->cols[c].name, "type", j->types[c],
							"mode", j->repeated[c] ? "REPEATED" : "NULLABLE"));
	return json_pack("{s:o}", "fields", fields);
}

static void job_free(struct bq_job *j)
{
	if (!j)
		return;
	for (size_t c = 0; j->types && c < j->res->n_cols; c++)
		free(j->types[c]);
	free(j->types);
	free(j->repeated);
	fake_result_free(j->res);
	free(j);
}

/* ---- parameter typing (GoogleSQL does not coerce a STRING parameter to a column's type) ---- */

/* Declared type of column name in db (first table that has it), legacy name, or NULL. */
static const char *column_decl(sqlite3 *db, const char *name, char *buf, size_t n)
{
	sqlite3_stmt *st = NULL;
	const char *out = NULL;
	if (sqlite3_prepare_v2(db,
			       "SELECT p.type FROM sqlite_master m, pragma_table_info(m.name) p WHERE m.type IN "
			       "('table','view') AND p.name = ?1 COLLATE NOCASE LIMIT 1",
			       -1, &st, NULL) == SQLITE_OK) {
		sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
		if (sqlite3_step(st) == SQLITE_ROW) {
			snprintf(buf, n, "%s", legacy_type((const char *)sqlite3_column_text(st, 0)));
			out = buf;
		}
	}
	sqlite3_finalize(st);
	return out;
}

/*
 * The type a parameter at pos in sql (translated) is compared with: the quoted column or
 * CAST(... AS T) before its operator or before the IN list it is in. NULL: unknown.
 */
static const char *compared_type(sqlite3 *db, const char *sql, const char *pos, char *buf, size_t n)
{
	const char *p = pos - 1;
	while (p > sql && isspace((unsigned char)*p))
		p--;
	if (*p == '(' || *p == ',') {
		/* inside IN ( ... ): back to the opening parenthesis */
		int depth = 0;
		for (; p > sql; p--) {
			if (*p == ')')
				depth++;
			else if (*p == '(' && depth-- == 0)
				break;
		}
		p--;
		while (p > sql && isspace((unsigned char)*p))
			p--;
		if (p - sql < 2 || strncasecmp(p - 1, "IN", 2))
			return NULL;
		p -= 2;
	} else if (strchr("=<>", *p)) {
		while (p > sql && strchr("=<>!", *p))
			p--;
	} else {
		return NULL;
	}
	while (p > sql && isspace((unsigned char)*p))
		p--;
	if (*p == '"') {
		const char *e = p;
		for (p--; p > sql && *p != '"'; p--)
			;
		char name[256];
		snprintf(name, sizeof(name), "%.*s", (int)(e - p - 1), p + 1);
		return column_decl(db, name, buf, n);
	}
	if (*p == ')') {
		/* CAST(x AS T) */
		const char *close = p;
		for (p--; p > sql && !isspace((unsigned char)*p); p--)
			;
		char t[64];
		snprintf(t, sizeof(t), "%.*s", (int)(close - p - 1), p + 1);
		snprintf(buf, n, "%s", legacy_type(t));
		return buf;
	}
	return NULL;
}

/* NULL when every parameter fits what it is compared with, else the error message. */
static char *check_params(const char *dbfile, const char *sql, json_t *params)
{
	sqlite3 *db = NULL;
	struct strbuf uri = STRBUF_INIT;
	char *msg = NULL;
	size_t k = 0;
	if (!dbfile)
		return NULL;
	strbuf_addf(&uri, "file:%s?mode=ro", dbfile);
	if (sqlite3_open_v2(uri.buf, &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI, NULL) != SQLITE_OK)
		goto out;
	for (const char *s = sql; *s && !msg; s++) {
		if (*s == '\'' || *s == '"') {
			char q = *s;
			for (s++; *s && !(*s == q && s[1] != q); s += (*s == q) ? 2 : 1)
				;
			if (!*s)
				break;
			continue;
		}
		if (*s != '?')
			continue;
		const char *pt = json_string_value(
			json_object_get(json_object_get(json_array_get(params, k), "parameterType"), "type"));
		k++;
		char buf[64];
		const char *ct = compared_type(db, sql, s, buf, sizeof(buf));
		if (!ct || !pt || !strcmp(type_class(ct), type_class(pt)))
			continue;
		struct strbuf m = STRBUF_INIT;
		const char *std = !strcmp(ct, "INTEGER") ? "INT64" : !strcmp(ct, "FLOAT") ? "FLOAT64" : !strcmp(ct, "BOOLEAN") ? "BOOL" : ct;
		strbuf_addf(&m, "No matching signature for operator = for argument types: %s, %s. Supported signature: ANY = ANY "
				"at [1:%zu]",
			    std, pt, (size_t)(s - sql) + 1);
		msg = strbuf_detach(&m, NULL);
	}
out:
	sqlite3_close(db);
	strbuf_release(&uri);
	return msg;
}

/* ---- jobs ---- */

static struct bq_job *find_job(const char *id, const char *request_id)
{
	for (size_t i = 0; i < BQ_KEEP; i++) {
		struct bq_job *j = jobs[i];
		if (j && ((id && !strcmp(j->id, id)) || (request_id && *request_id && !strcmp(j->request_id, request_id))))
			return j;
	}
	return NULL;
}

static json_t *job_ref(const struct bq_job *j)
{
	json_t *o = json_pack("{s:s, s:s}", "projectId", fk.project, "jobId", j->id);
	json_object_set_new(o, "location", json_string(fk.location ? fk.location : "US"));
	return o;
}

/* One page of a finished job from row offset, at most max rows. */
static int reply_page(struct fake_req *r, const struct bq_job *j, size_t offset, size_t max, bool int64_ts)
{
	json_t *o = json_object(), *rows = json_array();
	size_t n = max < fk.rows_per_part ? max : fk.rows_per_part;
	const struct fake_result *res = j->res;
	for (size_t i = offset; i < res->n_rows && i < offset + n; i++) {
		json_t *f = json_array();
		for (size_t c = 0; c < res->n_cols; c++)
			json_array_append_new(f, json_pack("{s:o}", "v", encode_cell(&res->cells[i * res->n_cols + c],
										     j->types[c], j->repeated[c], int64_ts)));
		json_array_append_new(rows, json_pack("{s:o}", "f", f));
	}
	json_object_set_new(o, "kind", json_string("bigquery#getQueryResultsResponse"));
	json_object_set_new(o, "schema", schema_json(j));
	json_object_set_new(o, "jobReference", job_ref(j));
	char total[32];
	snprintf(total, sizeof(total), "%zu", res->n_rows);
	json_object_set_new(o, "totalRows", json_string(total));
	if (json_array_size(rows))
		json_object_set_new(o, "rows", rows);
	else
		json_decref(rows);
	if (offset + n < res->n_rows && max) { /* max 0: a cut page, the end too early (fault status=200) */
		char tok[128];
		snprintf(tok, sizeof(tok), "BQ%s:%zu", j->id, offset + n);
		struct strbuf b = STRBUF_INIT;
		jwt_b64url(&b, tok, strlen(tok));
		json_object_set_new(o, "pageToken", json_string(b.buf));
		strbuf_release(&b);
	}
	json_object_set_new(o, "jobComplete", json_true());
	json_object_set_new(o, "cacheHit", json_false());
	json_object_set_new(o, "totalBytesProcessed", json_string("10485760"));
	return reply_json(r, o);
}

static int reply_running(struct fake_req *r, const struct bq_job *j)
{
	json_t *o = json_object();
	json_object_set_new(o, "kind", json_string("bigquery#queryResponse"));
	json_object_set_new(o, "jobReference", job_ref(j));
	json_object_set_new(o, "jobComplete", json_false());
	return reply_json(r, o);
}

static bool dataset_file(const char *dataset, struct strbuf *path)
{
	struct stat st;
	strbuf_reset(path);
	if (!dataset || !*dataset || strchr(dataset, '/'))
		return false;
	strbuf_addf(path, "%s/%s.db", fk.db_dir, dataset);
	return stat(path->buf, &st) == 0;
}

static int query(struct fake_req *r)
{
	json_t *q = json_loadb(r->body, r->body_len, 0, NULL);
	struct strbuf dbfile = STRBUF_INIT, sql = STRBUF_INIT;
	struct fake_bind *binds = NULL;
	char **owned = NULL;
	size_t nb = 0;
	int ret;
	char *msg = NULL;

	if (!json_is_object(q)) {
		ret = reply_error(r, 400, "parseError", "Invalid JSON payload received.");
		goto out;
	}
	const char *text = json_string_value(json_object_get(q, "query"));
	json_t *legacy = json_object_get(q, "useLegacySql");
	if (!text || !*text) {
		ret = reply_error(r, 400, "invalid", "Required parameter is missing: query");
		goto out;
	}
	if (!json_is_false(legacy)) {
		ret = reply_error(r, 400, "invalidQuery",
				  "Legacy SQL is the API's default and the fake does not speak it: send \"useLegacySql\": false");
		goto out;
	}
	const char *rid = json_string_value(json_object_get(q, "requestId"));
	pthread_mutex_lock(&bq_lock);
	struct bq_job *dup = rid ? find_job(NULL, rid) : NULL;
	pthread_mutex_unlock(&bq_lock);
	if (dup) { /* a retried jobs.query: the same job, not run twice */
		ret = dup->polls_left > 0 ? reply_running(r, dup) : reply_page(r, dup, 0, 10000, true);
		goto out;
	}
	json_t *dd = json_object_get(q, "defaultDataset");
	const char *dataset = json_string_value(json_object_get(dd, "datasetId"));
	const char *loc = json_string_value(json_object_get(q, "location"));
	if (fk.location && loc && strcasecmp(loc, fk.location)) {
		char m[256];
		snprintf(m, sizeof(m), "Not found: Dataset %s:%s was not found in location %s", fk.project,
			 dataset ? dataset : "", loc);
		ret = reply_error(r, 404, "notFound", m);
		goto out;
	}
	if (!dataset_file(dataset, &dbfile)) {
		char m[256];
		snprintf(m, sizeof(m), "Not found: Dataset %s:%s", fk.project, dataset ? dataset : "(none)");
		ret = reply_error(r, 404, "notFound", m);
		goto out;
	}
	/* parameters: positional, typed, every value a string */
	json_t *params = json_object_get(q, "queryParameters");
	const char *mode = json_string_value(json_object_get(q, "parameterMode"));
	nb = json_array_size(params);
	if (nb && (!mode || strcasecmp(mode, "POSITIONAL"))) {
		ret = reply_error(r, 400, "invalid", "The fake supports parameterMode POSITIONAL only");
		goto out;
	}
	binds = xcalloc(nb ? nb : 1, sizeof(*binds));
	owned = xcalloc(nb ? nb : 1, sizeof(char *));
	for (size_t i = 0; i < nb; i++) {
		json_t *p = json_array_get(params, i);
		const char *t = json_string_value(json_object_get(json_object_get(p, "parameterType"), "type"));
		json_t *pv = json_object_get(json_object_get(p, "parameterValue"), "value");
		bool known = false;
		for (size_t k = 0; t && k < ARRAY_SIZE(param_types); k++)
			known |= !strcmp(t, param_types[k]);
		if (!known) {
			char m[128];
			snprintf(m, sizeof(m), "Invalid query parameter type: %s", t ? t : "(none)");
			ret = reply_error(r, 400, "invalid", m);
			goto out;
		}
		if (!pv || json_is_null(pv)) {
			binds[i].null = true;
			continue;
		}
		const char *v = json_string_value(pv);
		char *end;
		if (!v) {
			ret = reply_error(r, 400, "invalid", "Query parameter values must be strings");
			goto out;
		}
		binds[i].kind = 's';
		binds[i].s = v;
		if (!strcmp(t, "INT64")) {
			long long ll = strtoll(v, &end, 10);
			if (!*v || *end) {
				char m[160];
				snprintf(m, sizeof(m), "Invalid INT64 value: %.100s", v);
				ret = reply_error(r, 400, "invalidQuery", m);
				goto out;
			}
			binds[i].kind = 'i';
			binds[i].i = ll;
		} else if (!strcmp(t, "FLOAT64") || !strcmp(t, "NUMERIC") || !strcmp(t, "BIGNUMERIC")) {
			binds[i].kind = 'f';
			binds[i].f = strtod(v, &end);
		} else if (!strcmp(t, "BOOL")) {
			binds[i].kind = 'i';
			binds[i].i = !strcasecmp(v, "true");
		} else if (!strcmp(t, "TIMESTAMP")) {
			owned[i] = fake_timestamp_text(v);
			if (!owned[i]) {
				char m[160];
				snprintf(m, sizeof(m), "Invalid TIMESTAMP value: %.100s", v);
				ret = reply_error(r, 400, "invalidQuery", m);
				goto out;
			}
			binds[i].s = owned[i];
		}
	}
	fake_translate(text, &sql, true);
	if ((msg = check_params(dbfile.buf, sql.buf, params))) {
		ret = reply_error(r, 400, "invalidQuery", msg);
		goto out;
	}
	bool dry = json_is_true(json_object_get(q, "dryRun"));
	struct fake_ctx cx = { fk.client_email, NULL, dataset, dataset, NULL, dataset };
	int kind;
	if (!dry) {
		pthread_mutex_lock(&bq_lock);
		fk.executions++;
		pthread_mutex_unlock(&bq_lock);
	}
	struct fake_result *res = fake_run(dbfile.buf, &cx, sql.buf, binds, nb, dry, &msg, &kind);
	if (!res) {
		struct strbuf m = STRBUF_INIT;
		if (kind == FAKE_ERR_NO_TABLE)
			strbuf_addf(&m, "Not found: Table %s:%s.%s was not found in location %s", fk.project, dataset,
				    strstr(msg, ": ") ? strstr(msg, ": ") + 2 : msg, fk.location ? fk.location : "US");
		else if (kind == FAKE_ERR_NO_COLUMN)
			strbuf_addf(&m, "Unrecognized name: %s at [1:1]", strstr(msg, ": ") ? strstr(msg, ": ") + 2 : msg);
		else
			strbuf_addf(&m, "Syntax error: %s at [1:1]", msg);
		ret = reply_error(r, kind == FAKE_ERR_NO_TABLE ? 404 : 400, kind == FAKE_ERR_NO_TABLE ? "notFound" : "invalidQuery",
				  m.buf);
		strbuf_release(&m);
		goto out;
	}
	struct bq_job *j = xcalloc(1, sizeof(*j));
	snprintf(j->id, sizeof(j->id), "job_fake_");
	fake_uuid(j->id + strlen(j->id));
	snprintf(j->request_id, sizeof(j->request_id), "%s", rid && !dry ? rid : "");
	j->res = res;
	j->types = xcalloc(res->n_cols ? res->n_cols : 1, sizeof(char *));
	j->repeated = xcalloc(res->n_cols ? res->n_cols : 1, sizeof(bool));
	for (size_t c = 0; c < res->n_cols; c++)
		col_type(res, c, &j->types[c], &j->repeated[c]);
	if (dry) {
		json_t *o = json_object();
		json_object_set_new(o, "kind", json_string("bigquery#queryResponse"));
		json_object_set_new(o, "schema", schema_json(j));
		json_object_set_new(o, "jobComplete", json_true());
		json_object_set_new(o, "totalBytesProcessed", json_string("0"));
		job_free(j);
		ret = reply_json(r, o);
		goto out;
	}
	pthread_mutex_lock(&bq_lock);
	j->polls_left = fk.async_polls;
	size_t slot = n_jobs_total++ % BQ_KEEP;
	job_free(jobs[slot]);
	jobs[slot] = j;
	int polls = j->polls_left;
	pthread_mutex_unlock(&bq_lock);
	json_t *mr = json_object_get(q, "maxResults");
	json_t *fo = json_object_get(q, "formatOptions");
	bool int64_ts = json_is_true(json_object_get(fo, "useInt64Timestamp"));
	ret = polls > 0 ? reply_running(r, j)
			: reply_page(r, j, 0, mr && json_integer_value(mr) > 0 ? (size_t)json_integer_value(mr) : 10000, int64_ts);
out:
	for (size_t i = 0; owned && i < nb; i++)
		free(owned[i]);
	free(owned);
	free(binds);
	free(msg);
	strbuf_release(&dbfile);
	strbuf_release(&sql);
	json_decref(q);
	return ret;
}

static int results(struct fake_req *r, const char *id, bool cut)
{
	const char *pt = arg(r, "pageToken"), *mr = arg(r, "maxResults"), *loc = arg(r, "location");
	const char *i64 = arg(r, "formatOptions.useInt64Timestamp");
	pthread_mutex_lock(&bq_lock);
	struct bq_job *j = find_job(id, NULL);
	bool running = j && j->polls_left > 0;
	if (running)
		j->polls_left--;
	pthread_mutex_unlock(&bq_lock);
	char m[256];
	if (!j || (fk.location && strcasecmp(fk.location, "US") && (!loc || strcasecmp(loc, fk.location)))) {
		snprintf(m, sizeof(m), "Not found: Job %s:%s", fk.project, id);
		return reply_error(r, 404, "notFound", m);
	}
	if (running)
		return reply_running(r, j);
	size_t offset = 0;
	if (pt) {
		struct strbuf dec = STRBUF_INIT;
		char prefix[80];
		snprintf(prefix, sizeof(prefix), "BQ%s:", j->id);
		bool ok = jwt_b64url_decode(pt, strlen(pt), &dec) && !strncmp(dec.buf, prefix, strlen(prefix));
		if (ok)
			offset = strtoul(dec.buf + strlen(prefix), NULL, 10);
		strbuf_release(&dec);
		if (!ok)
			return reply_error(r, 400, "invalid", "Invalid page token.");
	}
	return reply_page(r, j, offset, cut ? 0 : mr && atol(mr) > 0 ? (size_t)atol(mr) : 10000,
			  i64 && !strcmp(i64, "true"));
}

static int dataset_routes(struct fake_req *r, const char *dataset, const char *rest)
{
	struct strbuf path = STRBUF_INIT;
	char m[256];
	int ret;
	if (!dataset_file(dataset, &path)) {
		snprintf(m, sizeof(m), "Not found: Dataset %s:%s", fk.project, dataset);
		ret = reply_error(r, 404, "notFound", m);
		goto out;
	}
	if (!*rest) {
		json_t *o = json_pack("{s:s, s:{s:s, s:s}}", "kind", "bigquery#dataset", "datasetReference", "projectId",
				      fk.project, "datasetId", dataset);
		json_object_set_new(o, "location", json_string(fk.location ? fk.location : "US"));
		ret = reply_json(r, o);
		goto out;
	}
	/* tables.list and tables.get from the SQLite catalog */
	char *msg = NULL;
	int kind;
	struct fake_ctx cx = { NULL, NULL, dataset, dataset, NULL, dataset };
	if (!strcmp(rest, "/tables")) {
		struct fake_result *res = fake_run(path.buf, &cx, "SELECT name FROM sqlite_master WHERE type IN ('table','view') "
								  "AND name NOT LIKE 'sqlite_%' ORDER BY name",
						   NULL, 0, false, &msg, &kind);
		json_t *tables = json_array();
		for (size_t i = 0; res && i < res->n_rows; i++)
			json_array_append_new(tables, json_pack("{s:{s:s, s:s, s:s}}", "tableReference", "projectId", fk.project,
								"datasetId", dataset, "tableId", res->cells[i].text));
		fake_result_free(res);
		free(msg);
		ret = reply_json(r, json_pack("{s:s, s:o}", "kind", "bigquery#tableList", "tables", tables));
		goto out;
	}
	if (!strncmp(rest, "/tables/", 8)) {
		const char *table = rest + 8;
		struct strbuf q = STRBUF_INIT;
		strbuf_addstr(&q, "SELECT p.name, p.type FROM sqlite_master m, pragma_table_info(m.name) p WHERE m.type IN "
				  "('table','view') AND m.name = ");
		strbuf_addch(&q, '\'');
		for (const char *s = table; *s; s++) {
			if (*s == '\'')
				strbuf_addch(&q, '\'');
			strbuf_addch(&q, *s);
		}
		strbuf_addstr(&q, "' ORDER BY p.cid");
		struct fake_result *res = fake_run(path.buf, &cx, q.buf, NULL, 0, false, &msg, &kind);
		strbuf_release(&q);
		free(msg);
		if (!res || !res->n_rows) {
			fake_result_free(res);
			snprintf(m, sizeof(m), "Not found: Table %s:%s.%s", fk.project, dataset, table);
			ret = reply_error(r, 404, "notFound", m);
			goto out;
		}
		json_t *fields = json_array();
		for (size_t i = 0; i < res->n_rows; i++)
			json_array_append_new(fields, json_pack("{s:s, s:s, s:s}", "name", res->cells[i * 2].text, "type",
								legacy_type(res->cells[i * 2 + 1].text ? res->cells[i * 2 + 1].text : ""),
								"mode", "NULLABLE"));
		fake_result_free(res);
		ret = reply_json(r, json_pack("{s:s, s:{s:s, s:s, s:s}, s:{s:o}}", "kind", "bigquery#table", "tableReference",
					      "projectId", fk.project, "datasetId", dataset, "tableId", table, "schema",
					      "fields", fields));
		goto out;
	}
	ret = reply_error(r, 404, "notFound", "Unknown resource.");
out:
	strbuf_release(&path);
	return ret;
}

int bq_handle(struct fake_req *r)
{
	bool post = !strcmp(r->method, "POST"), get = !strcmp(r->method, "GET");
	char reason[64] = "";
	int fs;
	pthread_mutex_lock(&bq_lock);
	fk.requests++;
	pthread_mutex_unlock(&bq_lock);

	if (!strcmp(r->url, "/token") && post)
		return token(r);
	if (strncmp(r->url, BQ_PREFIX, sizeof(BQ_PREFIX) - 1))
		return reply_error(r, 404, "notFound", "Unknown resource.");
	const char *p = r->url + sizeof(BQ_PREFIX) - 1;
	size_t pl = strcspn(p, "/");
	char project[128];
	snprintf(project, sizeof(project), "%.*s", (int)pl, p);
	const char *rest = p + pl;
	if (!token_ok(r))
		return reply_error(r, 401, "authError",
				   "Request had invalid authentication credentials. Expected OAuth 2 access token, login "
				   "cookie or other valid authentication credential.");
	if (strcmp(project, fk.project)) {
		char m[512];
		snprintf(m, sizeof(m), "Access Denied: Project %s: User does not have bigquery.jobs.create permission in "
				       "project %s.",
			 project, project);
		return reply_error(r, 403, "accessDenied", m);
	}
	if (!strcmp(rest, "/queries") && post) {
		json_t *q = json_loadb(r->body, r->body_len, 0, NULL);
		fs = fake_take_fault("query", -1, json_string_value(json_object_get(q, "query")), reason, sizeof(reason));
		json_decref(q);
		if (fs)
			return reply_error(r, fs, *reason ? reason : default_reason(fs), "injected fault");
		return query(r);
	}
	if (!strncmp(rest, "/queries/", 9) && get) {
		const char *pt = arg(r, "pageToken");
		int page = 0;
		if (pt) { /* the page number this token starts (1 = the second page) */
			struct strbuf dec = STRBUF_INIT;
			if (jwt_b64url_decode(pt, strlen(pt), &dec) && strchr(dec.buf, ':'))
				page = (int)(strtoul(strchr(dec.buf, ':') + 1, NULL, 10) / (fk.rows_per_part ? fk.rows_per_part : 1));
			strbuf_release(&dec);
		}
		fs = fake_take_fault(pt ? "page" : "poll", pt ? page : -1, NULL, reason, sizeof(reason));
		if (fs && fs != 200)
			return reply_error(r, fs, *reason ? reason : default_reason(fs), "injected fault");
		return results(r, rest + 9, fs == 200);
	}
	if (!strncmp(rest, "/datasets/", 10) && get) {
		const char *d = rest + 10;
		size_t dl = strcspn(d, "/");
		char dataset[128];
		snprintf(dataset, sizeof(dataset), "%.*s", (int)dl, d);
		fs = fake_take_fault("dataset", -1, NULL, reason, sizeof(reason));
		if (fs)
			return reply_error(r, fs, *reason ? reason : default_reason(fs), "injected fault");
		return dataset_routes(r, dataset, d + dl);
	}
	return reply_error(r, 404, "notFound", "Unknown resource.");
}
