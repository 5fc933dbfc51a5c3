/* warehouse_sf.c: warehouse-fake's Snowflake SQL API v2 (statements, polling, partitions, JWTs). */
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

#define SF_KEEP 512 /* statements kept for polls and partitions */

struct sf_stmt {
	char handle[37];
	char request_id[80];
	struct fake_result *res;
	char **types;   /* rowType type per column */
	int *scales;
	int polls_left; /* 202 answers still to give */
	char *database, *schema;
};

static pthread_mutex_t sf_lock = PTHREAD_MUTEX_INITIALIZER;
static struct sf_stmt *stmts[SF_KEEP];
static size_t n_stmts_total;

static const char *const allowed_params[] = {
	"timezone", "query_tag", "binary_output_format", "date_output_format", "time_output_format",
	"timestamp_output_format", "timestamp_ltz_output_format", "timestamp_ntz_output_format",
	"timestamp_tz_output_format", "multi_statement_count", "client_result_chunk_size", "rows_per_resultset",
	"use_cached_result",
};
static const char *const bind_types[] = { "FIXED", "REAL", "TEXT", "BOOLEAN", "DATE", "TIME", "TIMESTAMP_LTZ",
					   "TIMESTAMP_NTZ", "TIMESTAMP_TZ", "BINARY" };

static int reply_error(struct fake_req *r, int status, const char *code, const char *state, const char *msg,
		       const char *handle)
{
	json_t *o = json_object();
	json_object_set_new(o, "code", json_string(code));
	json_object_set_new(o, "message", json_string(msg));
	if (state)
		json_object_set_new(o, "sqlState", json_string(state));
	if (handle)
		json_object_set_new(o, "statementHandle", json_string(handle));
	char *text = json_dumps(o, JSON_COMPACT);
	int ret = fake_reply(r->conn, status, text, false);
	fake_log_request(r->method, r->url, r->query.buf, r->body, status);
	free(text);
	json_decref(o);
	return ret;
}

static void stmt_free(struct sf_stmt *s)
{
	if (!s)
		return;
	fake_result_free(s->res);
	for (size_t i = 0; s->types && s->res && i < s->res->n_cols; i++)
		free(s->types[i]);
	free(s->types);
	free(s->scales);
	free(s->database);
	free(s->schema);
	free(s);
}

/* ---- auth ---- */

static const char *header(struct fake_req *r, const char *name)
{
	return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

/* NULL when the request may pass, else why not (for the fake's log; the answer is generic). */
static const char *check_auth(struct fake_req *r, bool *jwt)
{
	const char *a = header(r, "Authorization");
	const char *tt = header(r, "X-Snowflake-Authorization-Token-Type");
	*jwt = true;
	if (!a || strncmp(a, "Bearer ", 7))
		return "no Authorization: Bearer header";
	const char *tok = a + 7;
	bool looks_jwt = strchr(tok, '.') && strchr(strchr(tok, '.') + 1, '.');
	if ((tt && strcmp(tt, "KEYPAIR_JWT")) || (!tt && !looks_jwt)) {
		*jwt = false;
		if (tt && strcmp(tt, "PROGRAMMATIC_ACCESS_TOKEN") && strcmp(tt, "OAUTH"))
			return "unknown X-Snowflake-Authorization-Token-Type";
		if (!fk.token || strcmp(tok, fk.token))
			return "the token is not the configured one";
		return NULL;
	}
	if (!fk.pubkey)
		return "no public key configured (--public-key)";
	const char *why = NULL;
	json_t *claims = jwt_verify_rs256(fk.pubkey, tok, &why);
	if (!claims)
		return why;
	struct strbuf sub = STRBUF_INIT, iss = STRBUF_INIT;
	for (const char *s = fk.account; *s && *s != '.'; s++)
		strbuf_addch(&sub, toupper((unsigned char)*s));
	strbuf_addch(&sub, '.');
	for (const char *s = fk.user; *s; s++)
		strbuf_addch(&sub, toupper((unsigned char)*s));
	strbuf_addf(&iss, "%s.%s", sub.buf, fk.fingerprint.buf);
	const char *ci = json_string_value(json_object_get(claims, "iss"));
	const char *cs = json_string_value(json_object_get(claims, "sub"));
	json_t *jiat = json_object_get(claims, "iat"), *jexp = json_object_get(claims, "exp");
	double iat = json_number_value(jiat), exp = json_number_value(jexp), now = (double)time(NULL);
	if (iat > 1e11)
		iat /= 1000, exp /= 1000; /* milliseconds are accepted too */
	why = NULL;
	if (!ci || strcmp(ci, iss.buf))
		why = "iss is not ACCOUNT.USER.SHA256:<fingerprint of the public key>";
	else if (!cs || strcmp(cs, sub.buf))
		why = "sub is not ACCOUNT.USER";
	else if (!json_is_number(jiat) || !json_is_number(jexp))
		why = "iat or exp missing";
	else if (exp - iat > 3600)
		why = "lifetime (exp - iat) over one hour";
	else if (now < iat - 60)
		why = "iat is in the future";
	else if (now > exp)
		why = "the JWT has expired";
	strbuf_release(&sub);
	strbuf_release(&iss);
	json_decref(claims);
	return why;
}

/* ---- types and cells ---- */

static void col_type(const struct fake_result *res, size_t c, char **type, int *scale)
{
	const char *d = res->cols[c].decl;
	*scale = 0;
	if (d && *d) {
		char u[64];
		size_t i = 0;
		for (; d[i] && i < sizeof(u) - 1; i++)
			u[i] = (char)toupper((unsigned char)d[i]);
		u[i] = '\0';
		const char *t = "text";
		if (strstr(u, "TIMESTAMP_TZ"))
			t = "timestamp_tz";
		else if (strstr(u, "TIMESTAMP_LTZ"))
			t = "timestamp_ltz";
		else if (strstr(u, "TIMESTAMP") || strstr(u, "DATETIME"))
			t = "timestamp_ntz";
		else if (strstr(u, "DATE"))
			t = "date";
		else if (strstr(u, "TIME"))
			t = "time";
		else if (strstr(u, "BOOL"))
			t = "boolean";
		else if (strstr(u, "INT"))
			t = "fixed";
		else if (strstr(u, "NUMBER") || strstr(u, "DECIMAL") || strstr(u, "NUMERIC")) {
			const char *comma = strchr(u, ',');
			t = "fixed";
			if (comma)
				*scale = atoi(comma + 1);
		} else if (strstr(u, "FLOAT") || strstr(u, "REAL") || strstr(u, "DOUBLE"))
			t = "real";
		else if (strstr(u, "VARIANT"))
			t = "variant";
		else if (strstr(u, "ARRAY"))
			t = "array";
		else if (strstr(u, "OBJECT"))
			t = "object";
		else if (strstr(u, "BINARY"))
			t = "binary";
		*type = xstrdup(t);
		return;
	}
	/* an expression: typed by its first value */
	for (size_t i = 0; i < res->n_rows; i++) {
		const struct fake_cell *cell = &res->cells[i * res->n_cols + c];
		if (cell->type == SQLITE_NULL)
			continue;
		if (cell->type == SQLITE_INTEGER)
			*type = xstrdup("fixed");
		else if (cell->type == SQLITE_FLOAT)
			*type = xstrdup("real");
		else if (cell->text && cell->text[0] == FAKE_ARRAY_MARK)
			*type = xstrdup("array");
		else
			*type = xstrdup("text");
		return;
	}
	/* no value: an array aggregate still says so */
	*type = xstrdup(strstr(res->cols[c].name, "fake_array_agg") ? "array" : "text");
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

/* One cell in the SQL API's encoding (Snowflake docs, "Handling responses"), or NULL. */
static json_t *encode_cell(const struct fake_cell *c, const char *type, int scale)
{
	struct strbuf sb = STRBUF_INIT;
	int64_t ms;
	if (c->type == SQLITE_NULL)
		return json_null();
	const char *t = c->text ? c->text : "";
	if (!strcmp(type, "fixed") || !strcmp(type, "real")) {
		if (c->type == SQLITE_INTEGER)
			strbuf_addf(&sb, "%" PRId64, c->i);
		else if (c->type == SQLITE_FLOAT && scale > 0 && !strcmp(type, "fixed"))
			strbuf_addf(&sb, "%.*f", scale, c->f);
		else if (c->type == SQLITE_FLOAT)
			add_double(&sb, c->f);
		else
			strbuf_addstr(&sb, t);
	} else if (!strcmp(type, "boolean")) {
		if (c->type == SQLITE_INTEGER || c->type == SQLITE_FLOAT)
			strbuf_addstr(&sb, c->f != 0 ? "true" : "false");
		else
			strbuf_addstr(&sb, !strcasecmp(t, "true") || !strcmp(t, "1") ? "true" : "false");
	} else if (!strcmp(type, "date") && c->type == SQLITE_TEXT && time_parse(t, strlen(t), &ms)) {
		strbuf_addf(&sb, "%" PRId64, (ms - ((ms % 86400000) + 86400000) % 86400000) / 86400000);
	} else if (!strncmp(type, "timestamp", 9) && c->type == SQLITE_TEXT && time_parse(t, strlen(t), &ms)) {
		/* a signed decimal, as Snowflake sends it: 1960-01-01 00:00:00.5 is -315619199.5 */
		int64_t a = ms < 0 ? -ms : ms;
		strbuf_addf(&sb, "%s%" PRId64 ".%03" PRId64 "000000", ms < 0 ? "-" : "", a / 1000, a % 1000);
		if (!strcmp(type, "timestamp_tz"))
			strbuf_addstr(&sb, " 1440");
	} else if (!strcmp(type, "time") && c->type == SQLITE_TEXT && strlen(t) >= 8) {
		strbuf_addf(&sb, "%d.000000000", atoi(t) * 3600 + atoi(t + 3) * 60 + atoi(t + 6));
	} else if (!strcmp(type, "array") && t[0] == FAKE_ARRAY_MARK) {
		strbuf_addstr(&sb, t + 1);
	} else if (c->type == SQLITE_FLOAT) {
		add_double(&sb, c->f);
	} else if (c->type == SQLITE_INTEGER) {
		strbuf_addf(&sb, "%" PRId64, c->i);
	} else {
		strbuf_addstr(&sb, t[0] == FAKE_ARRAY_MARK ? t + 1 : t);
	}
	json_t *j = json_stringn(sb.buf, sb.len);
	strbuf_release(&sb);
	return j;
}

static json_t *partition_data(const struct sf_stmt *s, size_t part)
{
	json_t *data = json_array();
	const struct fake_result *res = s->res;
	size_t from = part * fk.rows_per_part, to = from + fk.rows_per_part;
	for (size_t i = from; i < res->n_rows && i < to; i++) {
		json_t *row = json_array();
		for (size_t c = 0; c < res->n_cols; c++)
			json_array_append_new(row, encode_cell(&res->cells[i * res->n_cols + c], s->types[c], s->scales[c]));
		json_array_append_new(data, row);
	}
	return data;
}

static size_t n_partitions(const struct sf_stmt *s)
{
	size_t n = (s->res->n_rows + fk.rows_per_part - 1) / fk.rows_per_part;
	return n ? n : 1;
}

static int reply_result(struct fake_req *r, const struct sf_stmt *s)
{
	json_t *o = json_object(), *meta = json_object(), *rt = json_array(), *parts = json_array();
	const struct fake_result *res = s->res;
	for (size_t c = 0; c < res->n_cols; c++) {
		json_t *col = json_pack("{s:s, s:s, s:b, s:i, s:i, s:s, s:s, s:s}", "name", res->cols[c].name, "type",
					s->types[c], "nullable", 1, "scale", s->scales[c], "precision",
					!strcmp(s->types[c], "fixed") ? 38 : 0, "database", s->database, "schema",
					s->schema, "table", res->cols[c].table ? res->cols[c].table : "");
		json_object_set_new(col, "length", json_null());
		json_object_set_new(col, "byteLength", json_null());
		json_object_set_new(col, "collation", json_null());
		json_array_append_new(rt, col);
	}
	size_t np = n_partitions(s);
	for (size_t p = 0; p < np; p++) {
		size_t from = p * fk.rows_per_part;
		size_t cnt = res->n_rows > from ? res->n_rows - from : 0;
		if (cnt > fk.rows_per_part)
			cnt = fk.rows_per_part;
		json_array_append_new(parts, json_pack("{s:I, s:I}", "rowCount", (json_int_t)cnt, "uncompressedSize",
						       (json_int_t)(cnt * 64)));
	}
	json_object_set_new(meta, "numRows", json_integer((json_int_t)res->n_rows));
	json_object_set_new(meta, "format", json_string("jsonv2"));
	json_object_set_new(meta, "partitionInfo", parts);
	json_object_set_new(meta, "rowType", rt);
	json_object_set_new(o, "resultSetMetaData", meta);
	json_object_set_new(o, "data", partition_data(s, 0));
	json_object_set_new(o, "code", json_string("090001"));
	json_object_set_new(o, "sqlState", json_string("00000"));
	json_object_set_new(o, "statementHandle", json_string(s->handle));
	char url[128];
	snprintf(url, sizeof(url), "/api/v2/statements/%s", s->handle);
	json_object_set_new(o, "statementStatusUrl", json_string(url));
	json_object_set_new(o, "message", json_string("Statement executed successfully."));
	json_object_set_new(o, "createdOn", json_integer(fake_now_ms()));
	char *text = json_dumps(o, JSON_COMPACT);
	int ret = fake_reply(r->conn, 200, text, r->gzip_ok);
	fake_log_request(r->method, r->url, r->query.buf, r->body, 200);
	free(text);
	json_decref(o);
	return ret;
}

static int reply_running(struct fake_req *r, const struct sf_stmt *s)
{
	char buf[512];
	snprintf(buf, sizeof(buf),
		 "{\"code\":\"333334\",\"message\":\"Asynchronous execution in progress. Use provided query id to "
		 "perform query monitoring and management.\",\"statementHandle\":\"%s\","
		 "\"statementStatusUrl\":\"/api/v2/statements/%s\"}",
		 s->handle, s->handle);
	fake_log_request(r->method, r->url, r->query.buf, r->body, 202);
	return fake_reply(r->conn, 202, buf, false);
}

/* ---- routes ---- */

static struct sf_stmt *find_stmt(const char *handle, const char *request_id)
{
	for (size_t i = 0; i < SF_KEEP; i++) {
		struct sf_stmt *s = stmts[i];
		if (s && ((handle && !strcmp(s->handle, handle)) || (request_id && !strcmp(s->request_id, request_id))))
			return s;
	}
	return NULL;
}

static bool name_exists(const char *dbfile)
{
	struct stat st;
	return dbfile && stat(dbfile, &st) == 0;
}

static int submit(struct fake_req *r)
{
	json_error_t je;
	json_t *j = json_loadb(r->body, r->body_len, 0, &je);
	const char *rid = MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, "requestId");
	const char *retry = MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, "retry");
	const char *async = MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, "async");
	const char *nullable = MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, "nullable");
	struct strbuf dbfile = STRBUF_INIT, sql = STRBUF_INIT;
	struct fake_bind *binds = NULL;
	char **owned = NULL;
	size_t nb = 0;
	int ret;
	char bad[256];
	(void)nullable;

	if (!json_is_object(j)) {
		ret = reply_error(r, 400, "390142", NULL, "Incoming request does not contain a valid payload.", NULL);
		goto out;
	}
	const char *stmt = json_string_value(json_object_get(j, "statement"));
	if (!stmt || !*stmt) {
		ret = reply_error(r, 400, "390142", NULL, "Incoming request does not contain a valid payload: no statement.",
				  NULL);
		goto out;
	}
	json_t *params = json_object_get(j, "parameters");
	const char *pk;
	json_t *pv;
	json_object_foreach(params, pk, pv) {
		bool ok = false;
		for (size_t i = 0; i < ARRAY_SIZE(allowed_params); i++)
			ok |= !strcasecmp(pk, allowed_params[i]);
		if (!ok) {
			snprintf(bad, sizeof(bad), "Unsupported session parameter '%s'.", pk);
			ret = reply_error(r, 400, "391910", NULL, bad, NULL);
			goto out;
		}
	}
	/* the same requestId again: with retry=true the original statement, never run twice */
	pthread_mutex_lock(&sf_lock);
	struct sf_stmt *dup = rid && *rid ? find_stmt(NULL, rid) : NULL;
	pthread_mutex_unlock(&sf_lock);
	if (dup && retry && !strcmp(retry, "true")) {
		ret = dup->polls_left > 0 ? reply_running(r, dup) : reply_result(r, dup);
		goto out;
	}
	const char *database = json_string_value(json_object_get(j, "database"));
	const char *schema = json_string_value(json_object_get(j, "schema"));
	const char *warehouse = json_string_value(json_object_get(j, "warehouse"));
	const char *role = json_string_value(json_object_get(j, "role"));
	if (role && strcmp(role, fk.role)) {
		snprintf(bad, sizeof(bad), "Role '%s' specified in the connect string does not exist or not authorized. "
					   "Contact your local system administrator, or attempt to login with another "
					   "role, e.g. PUBLIC.",
			 role);
		ret = reply_error(r, 422, "390189", "08004", bad, NULL);
		goto out;
	}
	strbuf_addf(&dbfile, "%s/%s.db", fk.db_dir, database ? database : "");
	bool db_ok = database && *database && !strchr(database, '/') && name_exists(dbfile.buf);
	bool schema_ok = db_ok && schema && !strcmp(schema, fk.schema);
	bool wh_ok = false;
	for (size_t i = 0; warehouse && i < fk.n_warehouses; i++)
		wh_ok |= !strcmp(warehouse, fk.warehouses[i]);

	/* bindings "1".."n" */
	json_t *bj = json_object_get(j, "bindings");
	nb = json_object_size(bj);
	binds = xcalloc(nb ? nb : 1, sizeof(*binds));
	owned = xcalloc(nb ? nb : 1, sizeof(char *));
	for (size_t i = 0; i < nb; i++) {
		char key[24];
		snprintf(key, sizeof(key), "%zu", i + 1);
		json_t *b = json_object_get(bj, key);
		const char *t = json_string_value(json_object_get(b, "type"));
		json_t *v = json_object_get(b, "value");
		bool known = false;
		for (size_t k = 0; t && k < ARRAY_SIZE(bind_types); k++)
			known |= !strcmp(t, bind_types[k]);
		if (!b || !known) {
			snprintf(bad, sizeof(bad), "Unsupported bind type '%s' for binding %zu.", t ? t : "(none)", i + 1);
			ret = reply_error(r, 400, "391908", NULL, bad, NULL);
			goto out;
		}
		if (json_is_null(v) || !v) {
			binds[i].null = true;
			continue;
		}
		const char *s = json_string_value(v);
		if (!s) {
			ret = reply_error(r, 400, "391908", NULL, "Bind values must be strings.", NULL);
			goto out;
		}
		char *end;
		binds[i].kind = 's';
		binds[i].s = s;
		if (!strcmp(t, "FIXED")) {
			long long ll = strtoll(s, &end, 10);
			if (*s && !*end) {
				binds[i].kind = 'i';
				binds[i].i = ll;
			} else {
				binds[i].kind = 'f';
				binds[i].f = strtod(s, &end);
				if (!*s || *end) {
					snprintf(bad, sizeof(bad), "Numeric value '%s' is not recognized", s);
					ret = reply_error(r, 422, "100038", "22018", bad, NULL);
					goto out;
				}
			}
		} else if (!strcmp(t, "REAL")) {
			binds[i].kind = 'f';
			binds[i].f = strtod(s, &end);
		} else if (!strcmp(t, "BOOLEAN")) {
			binds[i].kind = 'i';
			binds[i].i = !strcasecmp(s, "true") || !strcmp(s, "1");
		} else if (strlen(s) >= 19 && s[4] == '-' && (s[10] == ' ' || s[10] == 'T') && s[13] == ':' &&
			   (owned[i] = fake_timestamp_text(s))) {
			/* Snowflake casts text to the timestamp column it is compared with; the fake
			 * stores timestamps as text, so it compares them in that one spelling */
			binds[i].s = owned[i];
		}
	}

	fake_translate(stmt, &sql, false);
	if (!wh_ok && (strstr(sql.buf, " FROM ") || strstr(sql.buf, " from ")) && !strstr(sql.buf, "temp.\"fake_")) {
		ret = reply_error(r, 422, "000606", "57P03",
				  "No active warehouse selected in the current session.  Select an active warehouse with "
				  "the 'use warehouse' command.",
				  NULL);
		goto out;
	}
	if (db_ok && schema_ok && !fake_check_idents(dbfile.buf, sql.buf, bad, sizeof(bad))) {
		char msg[400];
		snprintf(msg, sizeof(msg), "SQL compilation error: error line 1 at position 0\ninvalid identifier '\"%s\"'",
			 bad);
		ret = reply_error(r, 422, "000904", "42000", msg, NULL);
		goto out;
	}
	struct fake_ctx cx = { fk.user, role ? role : fk.role, db_ok ? database : NULL, schema_ok ? schema : NULL,
			       wh_ok ? warehouse : NULL, schema_ok ? schema : "" };
	char *msg = NULL;
	int kind;
	pthread_mutex_lock(&sf_lock);
	fk.executions++;
	pthread_mutex_unlock(&sf_lock);
	struct fake_result *res = fake_run(schema_ok ? dbfile.buf : NULL, &cx, sql.buf, binds, nb, false, &msg, &kind);
	if (!res) {
		char out[600];
		const char *code = "001003", *state = "42000";
		if (kind == FAKE_ERR_NO_TABLE) {
			const char *t = strstr(msg, "no such table: ");
			snprintf(out, sizeof(out), "SQL compilation error:\nObject '%s' does not exist or not authorized.",
				 t ? t + 15 : msg);
			code = "002003", state = "42S02";
		} else if (kind == FAKE_ERR_NO_COLUMN) {
			const char *t = strstr(msg, "no such column: ");
			snprintf(out, sizeof(out), "SQL compilation error: error line 1 at position 0\ninvalid identifier '%s'",
				 t ? t + 16 : msg);
			code = "000904";
		} else if (kind == FAKE_ERR_BIND) {
			snprintf(out, sizeof(out), "%s", msg);
			code = "002049";
		} else if (kind == FAKE_ERR_MULTI) {
			snprintf(out, sizeof(out), "%s", msg);
			code = "000008", state = "0A000";
		} else {
			snprintf(out, sizeof(out), "SQL compilation error:\n%s", msg);
		}
		char h[37];
		fake_uuid(h);
		ret = reply_error(r, 422, code, state, out, h);
		free(msg);
		goto out;
	}
	struct sf_stmt *s = xcalloc(1, sizeof(*s));
	fake_uuid(s->handle);
	snprintf(s->request_id, sizeof(s->request_id), "%s", rid ? rid : "");
	s->res = res;
	s->database = xstrdup(database ? database : "");
	s->schema = xstrdup(schema ? schema : "");
	s->types = xcalloc(res->n_cols ? res->n_cols : 1, sizeof(char *));
	s->scales = xcalloc(res->n_cols ? res->n_cols : 1, sizeof(int));
	for (size_t c = 0; c < res->n_cols; c++)
		col_type(res, c, &s->types[c], &s->scales[c]);
	pthread_mutex_lock(&sf_lock);
	s->polls_left = fk.async_polls > 0 ? fk.async_polls : (async && !strcmp(async, "true")) ? 1 : 0;
	size_t slot = n_stmts_total++ % SF_KEEP;
	stmt_free(stmts[slot]);
	stmts[slot] = s;
	int polls = s->polls_left;
	pthread_mutex_unlock(&sf_lock);
	ret = polls > 0 ? reply_running(r, s) : reply_result(r, s);
out:
	for (size_t i = 0; owned && i < nb; i++)
		free(owned[i]);
	free(owned);
	free(binds);
	strbuf_release(&dbfile);
	strbuf_release(&sql);
	json_decref(j);
	return ret;
}

static int status_or_partition(struct fake_req *r, const char *handle, bool cut)
{
	const char *ps = MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, "partition");
	pthread_mutex_lock(&sf_lock);
	struct sf_stmt *s = find_stmt(handle, NULL);
	bool running = s && s->polls_left > 0;
	if (running)
		s->polls_left--;
	pthread_mutex_unlock(&sf_lock);
	if (!s)
		return reply_error(r, 404, "333333", NULL, "Statement not found.", handle);
	if (running)
		return reply_running(r, s);
	long part = ps ? strtol(ps, NULL, 10) : 0;
	if (!ps || part == 0)
		return reply_result(r, s);
	if (part < 0 || (size_t)part >= n_partitions(s))
		return reply_error(r, 422, "000605", NULL, "Partition number is out of range.", handle);
	json_t *o = json_object();
	json_object_set_new(o, "data", cut ? json_array() : partition_data(s, (size_t)part));
	char *text = json_dumps(o, JSON_COMPACT);
	int ret = fake_reply(r->conn, 200, text, r->gzip_ok);
	fake_log_request(r->method, r->url, r->query.buf, NULL, 200);
	free(text);
	json_decref(o);
	return ret;
}

int sf_handle(struct fake_req *r)
{
	static const char prefix[] = "/api/v2/statements";
	bool post = !strcmp(r->method, "POST"), get = !strcmp(r->method, "GET");
	const char *rest = !strncmp(r->url, prefix, sizeof(prefix) - 1) ? r->url + sizeof(prefix) - 1 : NULL;
	char handle[128] = "";
	bool cancel = false;
	pthread_mutex_lock(&sf_lock);
	fk.requests++;
	pthread_mutex_unlock(&sf_lock);

	if (rest && *rest == '/') {
		snprintf(handle, sizeof(handle), "%.*s", (int)strcspn(rest + 1, "/"), rest + 1);
		const char *tail = rest + 1 + strlen(handle);
		cancel = !strcmp(tail, "/cancel");
		if (!*handle || (*tail && !cancel))
			rest = NULL;
	} else if (rest && *rest) {
		rest = NULL;
	}
	if (!rest || (!*handle && !post) || (*handle && !cancel && !get) || (cancel && !post))
		return reply_error(r, 404, "390404", NULL, "Unknown resource.", NULL);
	if (!header(r, "User-Agent"))
		return reply_error(r, 400, "390101", NULL, "Header 'User-Agent' is required.", NULL);
	if (post && (!header(r, "Content-Type") || strncmp(header(r, "Content-Type"), "application/json", 16)))
		return reply_error(r, 415, "390102", NULL, "Content-Type must be application/json.", NULL);
	bool jwt;
	const char *why = check_auth(r, &jwt);
	if (why) {
		pthread_mutex_lock(&sf_lock);
		fk.auth_failures++;
		pthread_mutex_unlock(&sf_lock);
		fake_log("401: %s", why);
		return reply_error(r, 401, jwt ? "390144" : "390303",
				   NULL, jwt ? "JWT token is invalid." : "Invalid OAuth access token.", NULL);
	}
	const char *ps = MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, "partition");
	const char *on = cancel ? "cancel" : !*handle ? "submit" : ps && atol(ps) > 0 ? "partition" : "poll";
	json_t *j = !*handle ? json_loadb(r->body, r->body_len, 0, NULL) : NULL;
	int fs = fake_take_fault(on, ps ? atoi(ps) : -1, json_string_value(json_object_get(j, "statement")), NULL, 0);
	json_decref(j);
	bool cut = fs == 200 && !strcmp(on, "partition"); /* a partition without its rows */
	if (fs && !cut)
		return reply_error(r, fs, fs == 408 ? "000630" : "000000", NULL,
				   fs == 408 ? "Statement reached its statement or warehouse timeout of 1 second(s) and was "
					       "canceled."
					     : "injected fault",
				   NULL);
	if (cancel) {
		pthread_mutex_lock(&sf_lock);
		struct sf_stmt *s = find_stmt(handle, NULL);
		if (s)
			s->polls_left = 0;
		pthread_mutex_unlock(&sf_lock);
		if (!s)
			return reply_error(r, 404, "333333", NULL, "Statement not found.", handle);
		return reply_error(r, 200, "000604", NULL, "Statement canceled.", handle);
	}
	if (!*handle)
		return submit(r);
	return status_or_partition(r, handle, cut);
}
