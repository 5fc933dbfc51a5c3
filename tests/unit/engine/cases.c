/*
 * cases.c: runs the declarative plan cases in tests/cases/plan/<name>/, once per source
 * backend, every backend against the same expected.json.
 *
 * A case is data only, adding one needs no C:
 *   config/        a config directory (its SQLite app uses "file": "data.db")
 *   data.sql       SQL that builds data.db
 *   data.<backend>.sql  optional: used instead of data.sql on that backend (postgres,
 *                  mysql), verbatim, for a statement the small translation below cannot
 *                  express
 *   state.json     optional prior state: [{"destination","key","payload",
 *                  "in_scope"?, "pending"?, "attempts"?, "error"?}]
 *   env            optional NAME=VALUE lines (e.g. JOEY_NOW=2026-11-24T00:00:00Z)
 *   options.json   optional {"destination": ID, "max_delete_percent": N}
 *   expected.json  the output of `joey plan --details --json` (compared as JSON)
 *   expected.<backend>.json  optional: a documented difference, used instead of
 *                  expected.json on that backend (redshift, clickhouse, ...)
 *   expected.<backend>.error optional: that backend must refuse the case with an error
 *                  containing this line
 *   DIFFERENCES    required with either: a "<backend>: <why>" line per backend
 *
 * Backends (one cmocka test each):
 *   sqlite    the case as written.
 *   postgres  $JOEY_PG_URL (postgresql://user:password@host:port/database): data.sql is
 *             loaded into a fresh schema "case_<name>" with REAL -> DOUBLE PRECISION and
 *             INTEGER PRIMARY KEY -> SERIAL PRIMARY KEY (SQLite's rowid alias numbers
 *             rows inserted without an id); each sqlite app becomes a postgres app with
 *             that schema, each sqlite-* source type a postgres-* one.
 *   mysql     $JOEY_MYSQL_URL (mysql://user:password@host:port/database): a fresh
 *             database "joey_case_<name>" (the user needs CREATE on `joey\_case\_%`.*;
 *             the backend is skipped with a message when it lacks it), INTEGER PRIMARY
 *             KEY -> ... AUTO_INCREMENT, TEXT PRIMARY KEY -> VARCHAR(255) COLLATE
 *             utf8mb4_bin PRIMARY KEY (a key needs a length; SQLite keys are bytewise);
 *             other columns keep the server's default (case-insensitive) collation.
 *   postgres-warehouse  the postgres backend with the state store in the same database
 *             (schema "case_<name>_st") and the warehouse diff forced (--diff warehouse):
 *             the plan is computed twice, before any digest is stored (every record is
 *             a candidate) and after a pass that stores them as `joey run` does (only
 *             changed records are), and both must equal expected.json (its models'
 *             "diff" member, which only a non-stream mode adds, is checked apart: the
 *             warehouse diff must have been used, unless a group depends on the time).
 *   redshift  $JOEY_PG_URL as postgres, with redshift apps and sources (the Redshift
 *             dialect, no COPY) and JOEY_REDSHIFT_STRICT=1: every statement the connector
 *             sends is linted (sql_redshift_lint) and one Redshift lacks aborts the run.
 *   clickhouse $JOEY_CLICKHOUSE_URL (http://user:password@host:port/database): a fresh
 *             database "joey_case_<name>", data.sql translated (ch_translate: INTEGER ->
 *             Nullable(Int64), REAL -> Nullable(Float64), TEXT -> Nullable(String), the
 *             primary key not Nullable, MergeTree ORDER BY tuple(), rowid numbers for
 *             rows inserted without their INTEGER PRIMARY KEY).
 *   csv       cases whose data.sql is only CREATE TABLE and INSERT and whose sources
 *             are all sqlite-import-table: every table is exported from data.db to
 *             csv/<table>.csv, one csv app per table ("csv_<table>"), each source moved
 *             to the app of its table.
 *   snowflake the warehouse-fake (tests/fakes/warehouse.c, --mode snowflake, next to $JOEY_BIN)
 *             serving data.db as database CASE_<NAME>: each sqlite app becomes a
 *             snowflake-keypair app (a key pair made for the run, the fake holding its
 *             public key; options.endpoint the fake), each sqlite-* source a snowflake-*
 *             one. Results come in partitions of 3 rows and every statement is polled once
 *             (202) first, so paging and polling are in every case. A case that differs
 *             on purpose has expected.snowflake.json (the difference named in its
 *             README or docs/internals/sources.md).
 *   bigquery  the same with warehouse-fake --mode bigquery: a bigquery app (service-account
 *             key made for the run, options.endpoint the fake's token endpoint and API),
 *             dataset CASE_<NAME>; pages of 3 rows, every job polled once;
 *             expected.bigquery.json where a case differs on purpose.
 * A backend without its URL is skipped. Cases that cannot run on a backend (no data.sql,
 * no sqlite app, SQL beyond CREATE/INSERT for csv) are listed as not applicable.
 * JOEY_CASE=name runs one case, JOEY_CASE_BACKEND=postgres one backend;
 * JOEY_KEEP_CASE_DATA=1 keeps each case's directory and schema/database (printed);
 * JOEY_UPDATE_EXPECTED=1 rewrites expected.json from the sqlite run (review the diff
 * before committing it).
 */
#include "support/testutil.h"

#include <ctype.h>
#include <dirent.h>
#include <jansson.h>
#include <curl/curl.h>
#include <libpq-fe.h>
#include <mysql.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/strbuf.h"
#include "config/config.h"
#include "engine/plan.h"
#include "state/state.h"

enum backend_kind { BK_SQLITE, BK_POSTGRES, BK_MYSQL, BK_CSV, BK_CLICKHOUSE, BK_FAKE };

struct backend {
	const char *name;
	const char *type; /* the app type; also the suffix of data.<type>.sql */
	enum backend_kind kind;
	bool warehouse;   /* state store in the same database, --diff warehouse */
	const char *url_var;
	char user[128], password[128], host[128], port[16], database[128];
	PGconn *pg;
	MYSQL *my;
	bool unusable; /* the server refused what the runner needs (message printed) */
	const char *strict_env; /* set to 1 while the backend runs (JOEY_REDSHIFT_STRICT) */
	bool ci_required;       /* with CI=true a missing URL fails instead of skipping */
	/* BK_FAKE: the warehouse-fake process, its directory, URL and the key pair's PEM */
	pid_t fake_pid;
	char *fake_dir, *fake_url, *private_pem;
};

#define CASE_NA (-1) /* run_case: the case cannot run on this backend */

static const char *cases_dir(void)
{
	static char buf[4096];
	const char *d = getenv("JOEY_TEST_DATA");
	snprintf(buf, sizeof(buf), "%s/cases/plan", d ? d : "tests");
	return buf;
}

static bool file_exists(const char *path)
{
	FILE *f = fopen(path, "r");
	if (f)
		fclose(f);
	return f != NULL;
}

static void run_sql(const char *db, const char *sqlfile)
{
	char *sql = tu_read(sqlfile);
	sqlite3 *h;
	char *msg = NULL;
	if (!sql)
		return;
	assert_int_equal(sqlite3_open(db, &h), SQLITE_OK);
	if (sqlite3_exec(h, sql, NULL, NULL, &msg) != SQLITE_OK)
		fail_msg("%s: %s", sqlfile, msg);
	sqlite3_close(h);
	free(sql);
}

static void load_env(const char *path)
{
	char *text = tu_read(path);
	if (!text)
		return;
	for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
		char *eq = strchr(line, '=');
		if (!eq || line[0] == '#')
			continue;
		*eq = '\0';
		setenv(line, eq + 1, 1);
	}
	free(text);
}

static void load_state(struct state *st, const char *path)
{
	json_error_t je;
	json_t *arr = json_load_file(path, 0, &je);
	struct jerror err = JERROR_INIT;
	size_t i;
	json_t *row;

	if (!arr)
		return;
	assert_true(json_is_array(arr));
	assert_int_equal(state_begin(st, &err), JERR_OK);
	json_array_foreach(arr, i, row) {
		const char *dest = json_string_value(json_object_get(row, "destination"));
		json_t *k = json_object_get(row, "key");
		struct rkey key = { 0 };
		char num[32];
		if (json_is_integer(k)) {
			key.is_int = true;
			key.i = json_integer_value(k);
			snprintf(num, sizeof(num), "%lld", (long long)key.i);
			key.text = slice_of(num);
		} else {
			key.text = slice_of(json_string_value(k));
		}
		json_t *payload = json_object_get(row, "payload");
		json_t *in_scope = json_object_get(row, "in_scope");
		if (payload) {
			char *s = json_dumps(payload, JSON_COMPACT | JSON_SORT_KEYS);
			unsigned char hash[STATE_HASH_LEN];
			state_hash(s, strlen(s), hash);
			assert_int_equal(state_put(st, dest, &key, slice_of(s), hash,
						   in_scope ? json_is_true(in_scope) : true, &err),
					 JERR_OK);
			free(s);
		}
		json_t *att = json_object_get(row, "attempts");
		for (json_int_t a = 0; att && a < json_integer_value(att); a++) {
			const char *e = json_string_value(json_object_get(row, "error"));
			assert_int_equal(state_mark_failed(st, dest, &key, e ? e : "failed", (struct slice){ NULL, 0 }, &err), JERR_OK);
		}
	}
	assert_int_equal(state_commit(st, &err), JERR_OK);
	json_decref(arr);
}

/* ---- backends ---- */

/* scheme://user:password@host:port/database (no escapes: the test servers' URLs) */
static bool parse_url(struct backend *be, const char *url)
{
	const char *p = strstr(url, "://");
	return p && sscanf(p + 3, "%127[^:]:%127[^@]@%127[^:]:%15[^/]/%127s", be->user,
			   be->password, be->host, be->port, be->database) == 5;
}

/* The schema (postgres) or database (mysql, clickhouse) of a case: lower-case, [a-z0-9_]. */
static void case_db_name(struct strbuf *sb, const struct backend *be, const char *name)
{
	strbuf_addstr(sb, be->kind == BK_MYSQL || be->kind == BK_CLICKHOUSE ? "joey_case_" : be->kind == BK_FAKE ? "CASE_" : "case_");
	for (const char *s = name; *s; s++)
		strbuf_addch(sb, isalnum((unsigned char)*s) ? (be->kind == BK_FAKE ? toupper((unsigned char)*s)
										   : tolower((unsigned char)*s))
							    : '_');
}

static bool pg_ok(PGresult *r)
{
	ExecStatusType s = PQresultStatus(r);
	return s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK;
}

/* ---- ClickHouse (HTTP) ---- */

static bool word_char(char c);

/* hay contains needle, ignoring ASCII case (NULL when not). */
static const char *ci_find(const char *hay, const char *needle)
{
	size_t n = strlen(needle);
	for (; *hay; hay++)
		if (!strncasecmp(hay, needle, n))
			return hay;
	return NULL;
}

static size_t ch_sink(char *data, size_t size, size_t nmemb, void *ud)
{
	strbuf_add(ud, data, size * nmemb);
	return size * nmemb;
}

/* POST one statement to the ClickHouse backend (database db, or none); false with msg. */
static bool ch_post(struct backend *be, const char *db, const char *sql, struct strbuf *msg)
{
	struct strbuf url = STRBUF_INIT, body = STRBUF_INIT, h1 = STRBUF_INIT, h2 = STRBUF_INIT;
	struct curl_slist *hs = NULL;
	long status = 0;
	CURL *e = curl_easy_init();
	assert_non_null(e);
	strbuf_addf(&url, "http://%s:%s/%s%s", be->host, be->port, db ? "?database=" : "", db ? db : "");
	strbuf_addf(&h1, "X-ClickHouse-User: %s", be->user);
	strbuf_addf(&h2, "X-ClickHouse-Key: %s", be->password);
	hs = curl_slist_append(hs, h1.buf);
	hs = curl_slist_append(hs, h2.buf);
	curl_easy_setopt(e, CURLOPT_URL, url.buf);
	curl_easy_setopt(e, CURLOPT_POSTFIELDS, sql);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, hs);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, ch_sink);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, &body);
	curl_easy_setopt(e, CURLOPT_TIMEOUT, 60L);
	CURLcode rc = curl_easy_perform(e);
	curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
	bool ok = rc == CURLE_OK && status == 200;
	if (!ok)
		strbuf_addf(msg, "%s (HTTP %ld): %s [%s]", rc ? curl_easy_strerror(rc) : "error", status, body.buf, sql);
	curl_slist_free_all(hs);
	curl_easy_cleanup(e);
	strbuf_release(&url);
	strbuf_release(&body);
	strbuf_release(&h1);
	strbuf_release(&h2);
	return ok;
}

/* Each ;-separated statement of sql (literals skipped) in database db. */
static bool ch_exec(struct backend *be, const char *db, const char *sql, struct strbuf *msg)
{
	const char *s = sql;
	while (*s) {
		const char *e = s;
		while (*e && *e != ';') {
			if (*e == '\'') {
				for (e++; *e && *e != '\''; e++)
					if (*e == '\\' && e[1])
						e++;
			}
			if (*e)
				e++;
		}
		char *stmt = strndup(s, (size_t)(e - s));
		bool blank = true;
		for (char *p = stmt; *p; p++)
			blank &= isspace((unsigned char)*p) != 0;
		bool ok = blank || ch_post(be, db, stmt, msg);
		free(stmt);
		if (!ok)
			return false;
		s = *e ? e + 1 : e;
	}
	return true;
}

/* A SQLite literal ('it''s') as a ClickHouse one ('it\'s'); *s moves past it. */
static void ch_copy_literal(struct strbuf *out, const char **s)
{
	const char *p = *s + 1;
	strbuf_addch(out, '\'');
	for (; *p; p++) {
		if (*p == '\'' && p[1] == '\'') {
			strbuf_addstr(out, "\\'");
			p++;
			continue;
		}
		if (*p == '\'')
			break;
		if (*p == '\\')
			strbuf_addch(out, '\\');
		strbuf_addch(out, *p);
	}
	strbuf_addch(out, '\'');
	*s = *p ? p + 1 : p;
}

/* A table of the SQLite data: its INTEGER PRIMARY KEY column (rowid alias) and next id. */
struct ch_table {
	char name[64];
	char ipk[64];  /* "" when none */
	int ipk_index; /* its position in the column list */
	long next_id;
};

static struct ch_table *ch_find_table(struct ch_table *t, size_t n, const char *name, size_t len)
{
	for (size_t i = 0; i < n; i++)
		if (strlen(t[i].name) == len && !strncasecmp(t[i].name, name, len))
			return &t[i];
	return NULL;
}

static const char *skip_ws(const char *s)
{
	while (isspace((unsigned char)*s))
		s++;
	return s;
}

/*
 * data.sql (CREATE TABLE and INSERT only) for ClickHouse: column types INTEGER ->
 * Nullable(Int64), REAL -> Nullable(Float64), TEXT -> Nullable(String), the primary key
 * column not Nullable; tables are MergeTree ORDER BY tuple() (no key, no row order);
 * literals re-escaped; rows inserted without their INTEGER PRIMARY KEY get SQLite's rowid
 * numbers (ClickHouse has no autoincrement). NULL when a statement is something else.
 */
static char *ch_translate(const char *sql)
{
	struct strbuf out = STRBUF_INIT;
	struct ch_table tables[32];
	size_t nt = 0;
	const char *s = sql;
	for (;;) {
		s = skip_ws(s);
		while (*s == ';')
			s = skip_ws(s + 1);
		if (!*s)
			break;
		if (!strncasecmp(s, "CREATE TABLE", 12)) {
			const char *n = skip_ws(s + 12), *ne = n;
			while (word_char(*ne))
				ne++;
			const char *p = skip_ws(ne);
			if (*p != '(' || nt == ARRAY_SIZE(tables) || ne - n >= 64) {
				strbuf_release(&out);
				return NULL;
			}
			struct ch_table *t = &tables[nt++];
			snprintf(t->name, sizeof(t->name), "%.*s", (int)(ne - n), n);
			t->ipk[0] = '\0';
			t->ipk_index = -1;
			t->next_id = 1;
			strbuf_addf(&out, "CREATE TABLE %s (", t->name);
			p++;
			int idx = 0;
			for (;;) {
				p = skip_ws(p);
				const char *c = p, *ce = c;
				while (word_char(*ce))
					ce++;
				const char *d = ce, *de = d;
				while (*de && *de != ',' && *de != ')')
					de++;
				char def[128];
				snprintf(def, sizeof(def), "%.*s", (int)(de - d), d);
				bool pk = ci_find(def, "PRIMARY KEY") != NULL;
				const char *type = ci_find(def, "INT") ? "Int64" : ci_find(def, "REAL") ? "Float64" : "String";
				if (pk && !strcmp(type, "Int64")) {
					snprintf(t->ipk, sizeof(t->ipk), "%.*s", (int)(ce - c), c);
					t->ipk_index = idx;
				}
				strbuf_addf(&out, "%s%.*s %s%s%s", idx ? ", " : "", (int)(ce - c), c, pk ? "" : "Nullable(",
					    type, pk ? "" : ")");
				idx++;
				p = de;
				if (*p == ',') {
					p++;
					continue;
				}
				break;
			}
			if (*p != ')') {
				strbuf_release(&out);
				return NULL;
			}
			strbuf_addstr(&out, ") ENGINE = MergeTree ORDER BY tuple();\n");
			s = p + 1;
			continue;
		}
		if (!strncasecmp(s, "INSERT INTO", 11)) {
			const char *n = skip_ws(s + 11), *ne = n;
			while (word_char(*ne))
				ne++;
			struct ch_table *t = ch_find_table(tables, nt, n, (size_t)(ne - n));
			const char *p = skip_ws(ne);
			bool add_id = false, col_list = *p == '(';
			size_t ins_start = out.len;
			strbuf_addf(&out, "INSERT INTO %.*s ", (int)(ne - n), n);
			if (*p == '(') {
				const char *ce = strchr(p, ')');
				if (!ce) {
					strbuf_release(&out);
					return NULL;
				}
				char cols[512];
				snprintf(cols, sizeof(cols), "%.*s", (int)(ce - p - 1), p + 1);
				add_id = t && t->ipk[0] && !ci_find(cols, t->ipk);
				strbuf_addf(&out, "(%s%s%s) ", add_id ? t->ipk : "", add_id ? ", " : "", cols);
				p = skip_ws(ce + 1);
			}
			if (strncasecmp(p, "VALUES", 6)) {
				strbuf_release(&out);
				return NULL;
			}
			strbuf_addstr(&out, "VALUES ");
			p += 6;
			for (;;) {
				p = skip_ws(p);
				if (*p != '(')
					break;
				p++;
				strbuf_addch(&out, '(');
				if (add_id)
					strbuf_addf(&out, "%ld, ", t->next_id++);
				while (*p && *p != ')') {
					if (*p == '\'') {
						ch_copy_literal(&out, &p);
						continue;
					}
					strbuf_addch(&out, *p++);
				}
				strbuf_addch(&out, ')');
				if (*p == ')')
					p++;
				p = skip_ws(p);
				if (*p == ',') {
					strbuf_addstr(&out, ", ");
					p++;
				}
			}
			strbuf_addstr(&out, ";\n");
			/* explicit ids: continue after the largest (SQLite's max(rowid) + 1) */
			if (t && t->ipk[0] && !col_list) {
				long mx = t->next_id - 1;
				const char *q = strstr(out.buf + ins_start, "VALUES");
				for (; q && (q = strchr(q, '(')); q++) {
					const char *f = skip_ws(q + 1);
					int k = 0;
					while (k < t->ipk_index && *f && *f != ')') {
						if (*f == '\'') {
							for (f++; *f && *f != '\''; f++)
								if (*f == '\\')
									f++;
						}
						if (*f == ',')
							k++;
						f++;
					}
					long id = strtol(skip_ws(f), NULL, 10);
					if (id > mx)
						mx = id;
				}
				t->next_id = mx + 1;
			}
			s = p;
			continue;
		}
		strbuf_release(&out);
		return NULL;
	}
	return strbuf_detach(&out, NULL);
}

/* Run several statements; false (message in *msg) on the first error. */
static bool server_exec(struct backend *be, const char *sql, struct strbuf *msg)
{
	if (be->kind == BK_CLICKHOUSE)
		return ch_exec(be, NULL, sql, msg);
	if (be->kind == BK_POSTGRES) {
		PGresult *r = PQexec(be->pg, sql);
		bool ok = pg_ok(r);
		if (!ok)
			strbuf_addstr(msg, PQresultErrorMessage(r));
		PQclear(r);
		return ok;
	}
	if (mysql_real_query(be->my, sql, strlen(sql))) {
		strbuf_addf(msg, "%u: %s", mysql_errno(be->my), mysql_error(be->my));
		return false;
	}
	for (;;) {
		MYSQL_RES *res = mysql_store_result(be->my);
		if (res)
			mysql_free_result(res);
		int rc = mysql_next_result(be->my);
		if (rc < 0)
			return true;
		if (rc > 0) {
			strbuf_addf(msg, "%u: %s", mysql_errno(be->my), mysql_error(be->my));
			return false;
		}
	}
}

/* Start warehouse-fake for be (BK_FAKE) with a fresh RSA key pair; false: skipped (printed). */
static bool fake_open(struct backend *be)
{
	const char *bin = getenv("JOEY_BIN");
	struct strbuf path = STRBUF_INIT, pub = STRBUF_INIT, portf = STRBUF_INIT;
	if (!bin) {
		printf("%s: skipped (JOEY_BIN is not set: the fake is found next to joey)\n", be->name);
		return false;
	}
	strbuf_addstr(&path, bin);
	char *slash = strrchr(path.buf, '/');
	strbuf_setlen(&path, slash ? (size_t)(slash - path.buf + 1) : 0);
	strbuf_addstr(&path, "warehouse-fake");
	if (access(path.buf, X_OK)) {
		printf("%s: skipped (%s is not built)\n", be->name, path.buf);
		strbuf_release(&path);
		return false;
	}
	be->fake_dir = tu_mkdtemp();
	EVP_PKEY *key = EVP_RSA_gen(2048);
	assert_non_null(key);
	BIO *b = BIO_new(BIO_s_mem());
	PEM_write_bio_PrivateKey(b, key, NULL, NULL, 0, NULL, NULL);
	char *p;
	long n = BIO_get_mem_data(b, &p);
	be->private_pem = strndup(p, (size_t)n);
	BIO_free(b);
	b = BIO_new(BIO_s_mem());
	PEM_write_bio_PUBKEY(b, key);
	n = BIO_get_mem_data(b, &p);
	char *pubtext = strndup(p, (size_t)n);
	BIO_free(b);
	EVP_PKEY_free(key);
	tu_write(be->fake_dir, "pub.pem", pubtext);
	tu_write(be->fake_dir, "db/.keep", "");
	free(pubtext);
	strbuf_addf(&pub, "%s/pub.pem", be->fake_dir);
	strbuf_addf(&portf, "%s/port", be->fake_dir);
	struct strbuf dbdir = STRBUF_INIT;
	strbuf_addf(&dbdir, "%s/db", be->fake_dir);
	be->fake_pid = fork();
	assert_true(be->fake_pid >= 0);
	if (!be->fake_pid) {
		execl(path.buf, path.buf, "--mode", be->type, "--db-dir", dbdir.buf, "--public-key", pub.buf, "--account",
		      "test", "--user", "joey", "--rows-per-partition", "3", "--async-polls", "1", "--port-file", portf.buf,
		      "--max-lifetime", "900", "--quiet", (char *)NULL);
		_exit(127);
	}
	char *port = NULL;
	for (int i = 0; i < 200 && !(port = tu_read(portf.buf)); i++)
		usleep(25000);
	if (!port)
		fail_msg("%s: warehouse-fake did not start", be->name);
	struct strbuf url = STRBUF_INIT;
	strbuf_addf(&url, "http://127.0.0.1:%d", atoi(port));
	be->fake_url = strbuf_detach(&url, NULL);
	free(port);
	strbuf_release(&path);
	strbuf_release(&pub);
	strbuf_release(&portf);
	strbuf_release(&dbdir);
	return true;
}

static void backend_open(struct backend *be)
{
	const char *url = be->url_var ? getenv(be->url_var) : NULL;
	if (be->kind == BK_FAKE) {
		be->unusable = !fake_open(be);
		return;
	}
	if (!be->url_var)
		return;
	if (!url || !*url)
		return; /* skipped */
	if (!parse_url(be, url))
		fail_msg("%s is not scheme://user:password@host:port/database: %s", be->url_var, url);
	if (be->kind == BK_POSTGRES) {
		be->pg = PQconnectdb(url);
		if (PQstatus(be->pg) != CONNECTION_OK)
			fail_msg("%s: cannot connect: %s", be->url_var, PQerrorMessage(be->pg));
		PQclear(PQexec(be->pg, "SET client_min_messages = warning"));
		return;
	}
	if (be->kind == BK_CLICKHOUSE) {
		struct strbuf msg = STRBUF_INIT;
		curl_global_init(CURL_GLOBAL_DEFAULT);
		if (!ch_post(be, NULL, "SELECT 1", &msg))
			fail_msg("%s: cannot reach the ClickHouse server: %s", be->url_var, msg.buf);
		strbuf_release(&msg);
		return;
	}
	be->my = mysql_init(NULL);
	mysql_options(be->my, MYSQL_SET_CHARSET_NAME, "utf8mb4");
	if (!mysql_real_connect(be->my, be->host, be->user, be->password, be->database,
				(unsigned)atoi(be->port), NULL, CLIENT_MULTI_STATEMENTS))
		fail_msg("%s: cannot connect: %s", be->url_var, mysql_error(be->my));
	/* the runner needs CREATE DATABASE joey_case_*: find out once */
	struct strbuf msg = STRBUF_INIT;
	if (!server_exec(be, "DROP DATABASE IF EXISTS joey_case_probe_; "
			     "CREATE DATABASE joey_case_probe_; DROP DATABASE joey_case_probe_",
			 &msg)) {
		printf("mysql: skipped: user \"%s\" cannot create the case databases "
		       "(GRANT ALL ON `joey\\_case\\_%%`.* TO it): %s\n",
		       be->user, msg.buf);
		be->unusable = true;
	}
	strbuf_release(&msg);
}

static void backend_close(struct backend *be)
{
	if (be->fake_pid > 0) {
		kill(be->fake_pid, SIGTERM);
		waitpid(be->fake_pid, NULL, 0);
		be->fake_pid = 0;
	}
	if (be->fake_dir && !getenv("JOEY_KEEP_CASE_DATA"))
		tu_rmtree(be->fake_dir);
	free(be->fake_dir);
	free(be->fake_url);
	free(be->private_pem);
	be->fake_dir = be->fake_url = be->private_pem = NULL;
	if (be->pg)
		PQfinish(be->pg);
	if (be->my)
		mysql_close(be->my);
	be->pg = NULL;
	be->my = NULL;
}

/*
 * The few spellings SQLite accepts and the servers do not mean the same way, replaced
 * as whole words outside string literals (case-insensitively, single spaces).
 */
struct rewrite {
	const char *from, *to;
};
static const struct rewrite pg_rewrites[] = {
	{ "INTEGER PRIMARY KEY", "SERIAL PRIMARY KEY" },
	{ "REAL", "DOUBLE PRECISION" },
	{ NULL, NULL },
};
static const struct rewrite my_rewrites[] = {
	{ "INTEGER PRIMARY KEY", "INTEGER PRIMARY KEY AUTO_INCREMENT" },
	{ "TEXT PRIMARY KEY", "VARCHAR(255) COLLATE utf8mb4_bin PRIMARY KEY" },
	{ NULL, NULL },
};

static bool word_char(char c)
{
	return isalnum((unsigned char)c) || c == '_';
}

static char *translate_sql(const char *sql, const struct rewrite *rw)
{
	struct strbuf out = STRBUF_INIT;
	const char *s = sql;
	while (*s) {
		if (*s == '\'') { /* a literal, '' inside */
			const char *e = s + 1;
			while (*e && !(*e == '\'' && e[1] != '\''))
				e += (*e == '\'') ? 2 : 1;
			if (*e)
				e++;
			strbuf_add(&out, s, (size_t)(e - s));
			s = e;
			continue;
		}
		if (s == sql || !word_char(s[-1])) {
			const struct rewrite *r;
			for (r = rw; r->from; r++) {
				size_t n = strlen(r->from);
				if (!strncasecmp(s, r->from, n) && !word_char(s[n])) {
					strbuf_addstr(&out, r->to);
					s += n;
					break;
				}
			}
			if (r->from)
				continue;
		}
		strbuf_addch(&out, *s++);
	}
	return strbuf_detach(&out, NULL);
}

/* Only CREATE TABLE and INSERT statements (what a set of CSV files can hold)? */
static bool plain_tables_sql(const char *sql)
{
	const char *s = sql;
	for (;;) {
		while (isspace((unsigned char)*s) || *s == ';')
			s++;
		if (!*s)
			return true;
		if (strncasecmp(s, "CREATE TABLE", 12) && strncasecmp(s, "INSERT", 6))
			return false;
		/* to the end of the statement, skipping literals */
		while (*s && *s != ';') {
			if (*s == '\'') {
				for (s++; *s && !(*s == '\'' && s[1] != '\''); s += (*s == '\'') ? 2 : 1)
					;
			}
			if (*s)
				s++;
		}
	}
}

/* Export one table of data.db as CSV (NULL as an empty cell, text quoted when needed). */
static void export_csv(sqlite3 *db, const char *table, const char *path)
{
	struct strbuf q = STRBUF_INIT;
	sqlite3_stmt *st;
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	strbuf_addstr(&q, "SELECT * FROM ");
	strbuf_add_sql_ident(&q, table);
	strbuf_addstr(&q, " ORDER BY rowid");
	if (sqlite3_prepare_v2(db, q.buf, -1, &st, NULL) != SQLITE_OK)
		fail_msg("export %s: %s", table, sqlite3_errmsg(db));
	int n = sqlite3_column_count(st);
	for (int i = 0; i < n; i++)
		fprintf(f, "%s%s", i ? "," : "", sqlite3_column_name(st, i));
	fputc('\n', f);
	while (sqlite3_step(st) == SQLITE_ROW) {
		for (int i = 0; i < n; i++) {
			const char *v = (const char *)sqlite3_column_text(st, i);
			if (i)
				fputc(',', f);
			if (!v)
				continue;
			if (sqlite3_column_type(st, i) == SQLITE_TEXT && strpbrk(v, ",\"\r\n")) {
				fputc('"', f);
				for (; *v; v++) {
					if (*v == '"')
						fputc('"', f);
					fputc(*v, f);
				}
				fputc('"', f);
			} else {
				fputs(v, f);
			}
		}
		fputc('\n', f);
	}
	sqlite3_finalize(st);
	fclose(f);
	strbuf_release(&q);
}

/*
 * Point the case's config at the backend: rewrites every *.json of dir. Returns
 * CASE_NA when the config cannot be expressed there (no sqlite app; for csv, a source
 * that is not a plain table); for csv also writes csv/<table>.csv next to config/.
 */
static int rewrite_config(const char *tmp, const struct backend *be, const char *dbname)
{
	struct strbuf dir = STRBUF_INIT, path = STRBUF_INIT;
	DIR *d;
	struct dirent *e;
	bool have_app = false, na = false;
	sqlite3 *db = NULL;

	strbuf_addf(&dir, "%s/config", tmp);
	d = opendir(dir.buf);
	assert_non_null(d);
	if (be->kind == BK_CSV) {
		strbuf_addf(&path, "%s/data.db", tmp);
		assert_int_equal(sqlite3_open_v2(path.buf, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
		strbuf_reset(&path);
		strbuf_addf(&path, "%s/csv", tmp);
		tu_write(path.buf, ".keep", "");
	}
	while (!na && (e = readdir(d))) {
		size_t n = strlen(e->d_name);
		json_error_t je;
		json_t *arr, *csv_apps;
		if (n < 5 || strcmp(e->d_name + n - 5, ".json"))
			continue;
		strbuf_reset(&path);
		strbuf_addf(&path, "%s/%s", dir.buf, e->d_name);
		arr = json_load_file(path.buf, 0, &je);
		if (!arr)
			fail_msg("%s: %s (the runner reads case configs as plain JSON)", path.buf, je.text);
		csv_apps = json_array();
		for (size_t i = 0; !na && json_is_array(arr) && i < json_array_size(arr); i++) {
			json_t *obj = json_array_get(arr, i);
			const char *cls = json_string_value(json_object_get(obj, "class"));
			const char *type = json_string_value(json_object_get(obj, "type"));
			if (!cls || !type)
				continue;
			if (!strcmp(cls, "App") && !strcmp(type, "sqlite")) {
				have_app = true;
				if (be->kind == BK_CSV) {
					json_array_remove(arr, i--);
					continue;
				}
				json_t *o = json_object();
				if (be->kind == BK_FAKE && !strcmp(be->type, "bigquery")) {
					json_object_set_new(o, "project_id", json_string("test-project"));
					json_object_set_new(o, "dataset", json_string(dbname));
					json_object_set_new(o, "client_email",
							    json_string("joey@test-project.iam.gserviceaccount.com"));
					json_object_set_new(o, "private_key", json_string(be->private_pem));
					json_object_set_new(o, "endpoint", json_string(be->fake_url));
					json_object_set_new(obj, "type", json_string("bigquery"));
					json_object_set_new(obj, "options", o);
					continue;
				}
				if (be->kind == BK_FAKE) {
					json_object_set_new(o, "account", json_string("test"));
					json_object_set_new(o, "username", json_string("joey"));
					json_object_set_new(o, "private_key", json_string(be->private_pem));
					json_object_set_new(o, "warehouse", json_string("compute_wh"));
					json_object_set_new(o, "database", json_string(dbname));
					json_object_set_new(o, "endpoint", json_string(be->fake_url));
					json_object_set_new(obj, "type", json_string("snowflake-keypair"));
					json_object_set_new(obj, "options", o);
					continue;
				}
				json_object_set_new(o, "host", json_string(be->host));
				json_object_set_new(o, "port", json_integer(atoi(be->port)));
				json_object_set_new(o, "user", json_string(be->user));
				json_object_set_new(o, "password", json_string(be->password));
				if (be->kind == BK_POSTGRES) {
					json_object_set_new(o, "database", json_string(be->database));
					json_object_set_new(o, "schema", json_string(dbname));
				} else if (be->kind == BK_CLICKHOUSE) {
					/* a bare address would mean https:// (Grouparoo's rule) */
					struct strbuf h = STRBUF_INIT;
					strbuf_addf(&h, "http://%s", be->host);
					json_object_set_new(o, "host", json_string(h.buf));
					json_object_set_new(o, "database", json_string(dbname));
					strbuf_release(&h);
				} else {
					json_object_set_new(o, "database", json_string(dbname));
				}
				json_object_set_new(obj, "type", json_string(be->type));
				json_object_set_new(obj, "options", o);
			} else if (!strcmp(cls, "Source") && !strncmp(type, "sqlite-", 7)) {
				struct strbuf t = STRBUF_INIT, f = STRBUF_INIT;
				const char *table = json_string_value(
					json_object_get(json_object_get(obj, "options"), "table"));
				if (be->kind != BK_CSV) {
					strbuf_addf(&t, "%s-%s", be->type, type + 7);
					json_object_set_new(obj, "type", json_string(t.buf));
					strbuf_release(&t);
					continue;
				}
				if (strcmp(type, "sqlite-import-table") || !table) {
					na = true;
					continue;
				}
				strbuf_addf(&t, "csv_%s", table);
				strbuf_addf(&f, "%s/csv/%s.csv", tmp, table);
				if (!file_exists(f.buf)) {
					export_csv(db, table, f.buf);
					strbuf_reset(&f);
					strbuf_addf(&f, "csv/%s.csv", table);
					json_array_append_new(csv_apps,
							      json_pack("{s:s, s:s, s:s, s:{s:s}}", "class",
									"App", "id", t.buf, "type", "csv",
									"options", "file", f.buf));
				}
				json_object_set_new(obj, "type", json_string("csv-import-table"));
				json_object_set_new(obj, "appId", json_string(t.buf));
				strbuf_release(&t);
				strbuf_release(&f);
			}
		}
		if (json_is_array(arr)) {
			json_array_extend(arr, csv_apps);
			if (json_dump_file(arr, path.buf, JSON_INDENT(1)))
				fail_msg("cannot write %s", path.buf);
		}
		json_decref(csv_apps);
		json_decref(arr);
	}
	closedir(d);
	if (db)
		sqlite3_close(db);
	strbuf_release(&dir);
	strbuf_release(&path);
	return have_app && !na ? 0 : CASE_NA;
}

/*
 * Load the case's data into the backend: data.<backend>.sql verbatim if the case has
 * one, else data.sql translated. Returns CASE_NA without data, 1 on an SQL error.
 */
static int load_server_data(struct backend *be, const char *src, const char *dbname)
{
	struct strbuf p = STRBUF_INIT, sql = STRBUF_INIT, msg = STRBUF_INIT;
	char *text, *body;
	int rc = 0;

	strbuf_addf(&p, "%s/data.%s.sql", src, be->type);
	body = tu_read(p.buf);
	if (!body) {
		strbuf_reset(&p);
		strbuf_addf(&p, "%s/data.sql", src);
		text = tu_read(p.buf);
		if (!text) {
			strbuf_release(&p);
			return CASE_NA;
		}
		if (be->kind == BK_CLICKHOUSE) {
			body = ch_translate(text);
			if (!body) {
				fprintf(stderr, "%s: %s: only CREATE TABLE and INSERT translate to ClickHouse; "
						"add data.clickhouse.sql\n", be->name, p.buf);
				free(text);
				strbuf_release(&p);
				return 1;
			}
		} else {
			body = translate_sql(text, be->kind == BK_POSTGRES ? pg_rewrites : my_rewrites);
		}
		free(text);
	}
	if (be->kind == BK_CLICKHOUSE) {
		strbuf_addf(&sql, "DROP DATABASE IF EXISTS %s; CREATE DATABASE %s", dbname, dbname);
		if (!ch_exec(be, NULL, sql.buf, &msg) || !ch_exec(be, dbname, body, &msg)) {
			fprintf(stderr, "%s: %s: %s\n", be->name, p.buf, msg.buf);
			rc = 1;
		}
		free(body);
		strbuf_release(&p);
		strbuf_release(&sql);
		strbuf_release(&msg);
		return rc;
	}
	if (be->kind == BK_POSTGRES)
		strbuf_addf(&sql, "DROP SCHEMA IF EXISTS \"%s\" CASCADE; CREATE SCHEMA \"%s\"; "
				  "SET search_path = \"%s\";\n",
			    dbname, dbname, dbname);
	else
		strbuf_addf(&sql, "DROP DATABASE IF EXISTS `%s`; CREATE DATABASE `%s`; USE `%s`;\n",
			    dbname, dbname, dbname);
	strbuf_addstr(&sql, body);
	if (!server_exec(be, sql.buf, &msg)) {
		fprintf(stderr, "%s: %s: %s\n", be->name, p.buf, msg.buf);
		rc = 1;
	}
	if (be->kind == BK_POSTGRES)
		PQclear(PQexec(be->pg, "RESET search_path"));
	free(body);
	strbuf_release(&p);
	strbuf_release(&sql);
	strbuf_release(&msg);
	return rc;
}

static void drop_server_data(struct backend *be, const char *dbname)
{
	struct strbuf sql = STRBUF_INIT, msg = STRBUF_INIT;
	if (be->kind == BK_POSTGRES)
		strbuf_addf(&sql, "DROP SCHEMA IF EXISTS \"%s\" CASCADE", dbname);
	else if (be->kind == BK_CLICKHOUSE)
		strbuf_addf(&sql, "DROP DATABASE IF EXISTS %s", dbname);
	else
		strbuf_addf(&sql, "DROP DATABASE IF EXISTS `%s`", dbname);
	if (!server_exec(be, sql.buf, &msg))
		fprintf(stderr, "%s: %s: %s\n", be->name, sql.buf, msg.buf);
	strbuf_release(&sql);
	strbuf_release(&msg);
}

/* Print a unified diff of two JSON values (expected, got). */
static void print_diff(const char *tmp, json_t *want, json_t *got)
{
	struct strbuf a = STRBUF_INIT, b = STRBUF_INIT, cmd = STRBUF_INIT;
	char *out = NULL;
	strbuf_addf(&a, "%s/expected.json", tmp);
	strbuf_addf(&b, "%s/got.json", tmp);
	json_dump_file(want, a.buf, JSON_INDENT(2) | JSON_SORT_KEYS);
	json_dump_file(got, b.buf, JSON_INDENT(2) | JSON_SORT_KEYS);
	strbuf_addf(&cmd, "diff -u '%s' '%s'", a.buf, b.buf);
	tu_run(cmd.buf, &out);
	fprintf(stderr, "%s\n", out ? out : "");
	free(out);
	strbuf_release(&a);
	strbuf_release(&b);
	strbuf_release(&cmd);
}

/*
 * The warehouse diff's "diff" member of each model in got (only a non-stream mode adds
 * it; expected.json has none): taken out, after checking that the warehouse diff was
 * used, unless a group depends on the current time (then it streams, by design).
 */
static int check_diff_member(const struct backend *be, const char *name, json_t *got, const char *pass)
{
	json_t *models = json_object_get(got, "models"), *m;
	size_t i;
	int failed = 0;
	json_array_foreach(models, i, m) {
		json_t *d = json_object_get(m, "diff");
		const char *used = json_string_value(json_object_get(d, "used"));
		const char *why = json_string_value(json_object_get(d, "why"));
		if (!d || !used) {
			fprintf(stderr, "%s case %s%s: model has no \"diff\" member\n", be->name, name, pass);
			failed = 1;
		} else if (strcmp(used, "warehouse") && !(why && strstr(why, "current time"))) {
			fprintf(stderr, "%s case %s%s: the warehouse diff was not used: %s\n", be->name, name, pass,
				why ? why : "?");
			failed = 1;
		} else if (!strcmp(used, "warehouse") && *pass) {
			/* with the digests stored, an unchanged record is not read (one destination) */
			json_t *dests = json_object_get(got, "destinations"), *dj, *one = NULL;
			size_t k, n = 0;
			json_array_foreach(dests, k, dj)
				if (json_equal(json_object_get(dj, "model"), json_object_get(m, "id")))
					one = dj, n++;
			json_int_t unchanged = json_integer_value(json_object_get(json_object_get(one, "counts"),
										  "unchanged"));
			json_int_t read = json_integer_value(json_object_get(d, "read"));
			json_int_t records = json_integer_value(json_object_get(m, "records"));
			if (strstr(pass, "after a run") && read) {
				fprintf(stderr, "%s case %s%s: %lld records read after a run Braze confirmed\n",
					be->name, name, pass, (long long)read);
				failed = 1;
			}
			if (n == 1 && read + unchanged > records) {
				fprintf(stderr, "%s case %s%s: %lld records read, %lld unchanged, of %lld: unchanged "
						"records were read\n",
					be->name, name, pass, (long long)read, (long long)unchanged, (long long)records);
				failed = 1;
			}
			if (getenv("JOEY_CASE_VERBOSE"))
				fprintf(stderr, "%s case %s%s: %lld of %lld records read, %lld unchanged\n", be->name,
					name, pass, (long long)read, (long long)records, (long long)unchanged);
		}
		json_object_del(m, "diff");
	}
	return failed;
}

/* Plan and compare with expected (the file): 0 equal, 1 not (the difference printed). */
static int plan_check(const struct backend *be, const char *name, const char *tmp, const char *expected,
		      const struct config *cfg, struct state *st, const struct plan_opts *opts, const char *pass)
{
	struct jerror err = JERROR_INIT;
	struct plan plan;
	char *out = NULL;
	size_t outlen = 0;
	json_t *got = NULL, *want = NULL;
	json_error_t je;
	int failed = 0;

	assert_int_equal(plan_init(&plan, cfg, opts, &err), JERR_OK);
	if (plan_compute(&plan, st, &err) != JERR_OK) {
		fprintf(stderr, "%s case %s%s: plan failed: %s (%s)\n", be->name, name, pass, err.msg.buf,
			err.detail.buf);
		failed = 1;
		goto out;
	}
	FILE *mem = open_memstream(&out, &outlen);
	plan_print_json(&plan, mem);
	fclose(mem);
	got = json_loads(out, 0, &je);
	if (!got) {
		fprintf(stderr, "%s case %s%s: plan output is not JSON: %s\n%s\n", be->name, name, pass, je.text, out);
		failed = 1;
		goto out;
	}
	if (be->warehouse)
		failed = check_diff_member(be, name, got, pass);
	if ((be->kind == BK_SQLITE && getenv("JOEY_UPDATE_EXPECTED")) || strstr(pass, "streaming")) {
		json_dump_file(got, expected, JSON_INDENT(2) | JSON_SORT_KEYS);
		FILE *f = fopen(expected, "a");
		fputc('\n', f);
		fclose(f);
	}
	want = json_load_file(expected, 0, &je);
	if (!want) {
		fprintf(stderr, "case %s: missing or invalid expected.json (%s); got:\n%s\n", name, je.text, out);
		failed = 1;
	} else if (!json_equal(got, want)) {
		fprintf(stderr, "%s case %s%s: plan differs from expected.json (- expected, + got):\n",
			be->name, name, pass);
		print_diff(tmp, want, got);
		failed = 1;
	}
out:
	plan_release(&plan);
	json_decref(got);
	json_decref(want);
	free(out);
	jerror_release(&err);
	return failed;
}

/*
 * A backend's documented difference (expected.<type>.json or .error) needs a
 * "<type>: <why>" line in the case's DIFFERENCES: 0 when it has one, else 1 (printed).
 */
static int documented(const struct backend *be, const char *name, const char *src, const char *ext)
{
	struct strbuf dp = STRBUF_INIT, marker = STRBUF_INIT, text = STRBUF_INIT;
	int failed = 0;
	strbuf_addf(&dp, "%s/DIFFERENCES", src);
	strbuf_addf(&marker, "\n%s:", be->type);
	char *why = tu_read(dp.buf);
	strbuf_addf(&text, "\n%s", why ? why : "");
	if (!strstr(text.buf, marker.buf)) {
		fprintf(stderr, "%s case %s: expected.%s.%s without a \"%s: <why>\" line in DIFFERENCES\n",
			be->name, name, be->type, ext, be->type);
		failed = 1;
	}
	free(why);
	strbuf_release(&text);
	strbuf_release(&dp);
	strbuf_release(&marker);
	return failed;
}

/* The plan must fail with a message containing the text of file (one line): 0 if so. */
static int plan_error_check(const struct backend *be, const char *name, const char *file, const struct config *cfg,
			    struct state *st, const struct plan_opts *opts)
{
	struct jerror err = JERROR_INIT;
	struct plan plan;
	char *want = tu_read(file);
	int failed = 0;
	assert_non_null(want);
	want[strcspn(want, "\n")] = '\0';
	assert_int_equal(plan_init(&plan, cfg, opts, &err), JERR_OK);
	if (plan_compute(&plan, st, &err) == JERR_OK) {
		fprintf(stderr, "%s case %s: the plan succeeded; expected the error \"%s\"\n", be->name, name, want);
		failed = 1;
	} else if (!strstr(err.msg.buf, want)) {
		fprintf(stderr, "%s case %s: expected the error \"%s\", got \"%s\"\n", be->name, name, want,
			err.msg.buf);
		failed = 1;
	}
	plan_release(&plan);
	jerror_release(&err);
	free(want);
	return failed;
}

static enum jerr ignore_item(void *ctx, const struct diff_item *it, struct jerror *err)
{
	(void)ctx, (void)it, (void)err;
	return JERR_OK;
}

static enum jerr ignore_unchanged(void *ctx, const struct cfg_destination *d, uint64_t n, struct jerror *err)
{
	(void)ctx, (void)d, (void)n, (void)err;
	return JERR_OK;
}

/* What a run whose every change Braze confirmed writes (run.c on_outcomes). */
static enum jerr apply_item(void *ctx, const struct diff_item *it, struct jerror *err)
{
	struct state *st = ctx;
	if (it->action == DIFF_DELETE)
		return state_delete(st, it->dest->id, it->key, err);
	if (it->action == DIFF_UNCHANGED && !it->state_only)
		return JERR_OK;
	return state_put(st, it->dest->id, it->key, it->new_payload, it->new_hash, it->in_scope, err);
}

/*
 * A pass over every model as `joey run --diff warehouse` makes, storing the digests;
 * with apply, as if Braze confirmed every change.
 */
static void store_digests(const struct backend *be, const char *name, const struct config *cfg, struct state *st,
			  bool apply)
{
	struct jerror err = JERROR_INIT;
	for (size_t m = 0; m < cfg->n_models; m++) {
		const struct cfg_model *model = cfg->models[m];
		struct diff_visitor v = { apply ? apply_item : ignore_item, st };
		struct diff_opts o = { .mode = DIFF_MODE_WAREHOUSE, .unchanged = ignore_unchanged,
				       .write_digests = true };
		struct record_stats stats;
		if (!model->n_destinations)
			continue;
		if (diff_model_opts(cfg, model, model->destinations, model->n_destinations, st, &o, &v, &stats, NULL,
				    NULL, &err))
			fail_msg("%s case %s: storing digests failed: %s (%s)", be->name, name, err.msg.buf,
				 err.detail.buf);
	}
	jerror_release(&err);
}

/* 0 passed, 1 failed, CASE_NA not applicable to this backend. */
static int run_case(struct backend *be, const char *name)
{
	struct strbuf src = STRBUF_INIT, cmd = STRBUF_INIT, p = STRBUF_INIT, dbname = STRBUF_INIT;
	char *tmp = tu_mkdtemp();
	struct config *cfg = NULL;
	struct state *st = NULL;
	struct jerror err = JERROR_INIT;
	struct strbuf state_schema = STRBUF_INIT;
	bool server_data = false;
	struct plan_opts opts = { .details = true, .json = true, .max_delete_percent = -1 };
	int failed = 0;
	json_error_t je;

	strbuf_addf(&src, "%s/%s", cases_dir(), name);
	strbuf_addf(&cmd, "cp -r '%s/config' '%s/config'", src.buf, tmp);
	assert_int_equal(system(cmd.buf), 0);

	strbuf_addf(&p, "%s/env", src.buf);
	unsetenv("JOEY_NOW");
	load_env(p.buf);

	strbuf_reset(&p);
	strbuf_addf(&p, "%s/data.sql", src.buf);
	if (be->kind == BK_CSV) {
		char *sql = tu_read(p.buf);
		bool plain = sql && plain_tables_sql(sql);
		free(sql);
		if (!plain) {
			failed = CASE_NA;
			goto out;
		}
	}
	strbuf_reset(&cmd);
	strbuf_addf(&cmd, "%s/data.db", tmp);
	run_sql(cmd.buf, p.buf);

	if (be->kind != BK_SQLITE) {
		case_db_name(&dbname, be, name);
		failed = rewrite_config(tmp, be, dbname.buf);
		if (failed)
			goto out;
		if (be->kind == BK_FAKE) {
			/* the fake serves DIR/<DATABASE>.db; a plain name is upper-cased by the connector */
			struct strbuf cp = STRBUF_INIT;
			strbuf_addf(&cp, "cp '%s/data.db' '%s/db/%s.db'", tmp, be->fake_dir, dbname.buf);
			assert_int_equal(system(cp.buf), 0);
			strbuf_release(&cp);
		}
		if (be->kind == BK_POSTGRES || be->kind == BK_MYSQL || be->kind == BK_CLICKHOUSE) {
			failed = load_server_data(be, src.buf, dbname.buf);
			server_data = failed != CASE_NA;
			if (failed)
				goto out;
		}
	}

	strbuf_reset(&p);
	strbuf_addf(&p, "%s/options.json", src.buf);
	json_t *o = json_load_file(p.buf, 0, &je);
	if (o) {
		const char *d = json_string_value(json_object_get(o, "destination"));
		if (d)
			opts.only_dest = strdup(d);
		if (json_object_get(o, "max_delete_percent"))
			opts.max_delete_percent = json_number_value(json_object_get(o, "max_delete_percent"));
		json_decref(o);
	}

	strbuf_reset(&cmd);
	strbuf_addf(&cmd, "%s/config", tmp);
	if (config_load(cmd.buf, NULL, &cfg, &err) != JERR_OK) {
		if (cfg)
			config_print_diags(cfg, stderr);
		fprintf(stderr, "%s case %s: config does not load: %s\n", be->name, name, err.msg.buf);
		failed = 1;
		goto out;
	}
	strbuf_reset(&cmd);
	if (be->warehouse) {
		/* the state store in the sources' database, in a schema of its own */
		struct strbuf msg = STRBUF_INIT, sql = STRBUF_INIT;
		strbuf_addf(&state_schema, "%s_st", dbname.buf);
		strbuf_addf(&sql, "DROP SCHEMA IF EXISTS \"%s\" CASCADE", state_schema.buf);
		if (!server_exec(be, sql.buf, &msg))
			fail_msg("%s: %s", sql.buf, msg.buf);
		strbuf_release(&msg);
		strbuf_release(&sql);
		strbuf_addf(&cmd, "%s?schema=%s", getenv(be->url_var), state_schema.buf);
		opts.diff = DIFF_MODE_WAREHOUSE;
		opts.diff_set = true;
	} else {
		strbuf_addf(&cmd, "%s/state.db", tmp);
	}
	assert_int_equal(state_open(cmd.buf, STATE_OPEN_CREATE, &st, &err), JERR_OK);
	strbuf_reset(&p);
	strbuf_addf(&p, "%s/state.json", src.buf);
	load_state(st, p.buf);

	strbuf_reset(&p);
	strbuf_addf(&p, "%s/expected.%s.error", src.buf, be->type);
	if (be->kind != BK_SQLITE && file_exists(p.buf)) {
		/* a documented difference: this backend refuses the case with that message */
		failed = documented(be, name, src.buf, "error") || plan_error_check(be, name, p.buf, cfg, st, &opts);
		goto out;
	}
	strbuf_reset(&p);
	strbuf_addf(&p, "%s/expected.%s.json", src.buf, be->type);
	if (be->kind != BK_SQLITE && file_exists(p.buf)) {
		/* a documented difference of this backend */
		if ((failed = documented(be, name, src.buf, "json")))
			goto out;
	} else {
		strbuf_reset(&p);
		strbuf_addf(&p, "%s/expected.json", src.buf);
	}
	failed = plan_check(be, name, tmp, p.buf, cfg, st, &opts, "");
	if (!failed && be->warehouse) {
		/* again once the digests are stored: now only changed records come back */
		store_digests(be, name, cfg, st, false);
		failed = plan_check(be, name, tmp, p.buf, cfg, st, &opts, " (digests stored)");
	}
	if (!failed && be->warehouse) {
		/*
		 * After a run Braze confirmed in full: the streaming plan is the expected one,
		 * and the warehouse diff reads nothing.
		 */
		struct plan_opts so = opts;
		struct backend stream_be = { .name = "postgres (streaming)", .type = "postgres", .kind = BK_POSTGRES };
		so.diff = DIFF_MODE_STREAM;
		store_digests(be, name, cfg, st, true);
		strbuf_reset(&p);
		strbuf_addf(&p, "%s/after_run.json", tmp);
		failed = plan_check(&stream_be, name, tmp, p.buf, cfg, st, &so, " (after a run, streaming)");
		failed = failed || plan_check(be, name, tmp, p.buf, cfg, st, &opts, " (after a run)");
	}
out:
	if (server_data && !getenv("JOEY_KEEP_CASE_DATA"))
		drop_server_data(be, dbname.buf);
	free((char *)opts.only_dest);
	if (st)
		state_close(st);
	if (state_schema.len && !getenv("JOEY_KEEP_CASE_DATA"))
		drop_server_data(be, state_schema.buf);
	strbuf_release(&state_schema);
	config_free(cfg);
	jerror_release(&err);
	if (getenv("JOEY_KEEP_CASE_DATA"))
		fprintf(stderr, "%s case %s: kept %s%s%s\n", be->name, name, tmp,
			server_data ? " and " : "", server_data ? dbname.buf : "");
	else
		tu_rmtree(tmp);
	free(tmp);
	strbuf_release(&src);
	strbuf_release(&cmd);
	strbuf_release(&p);
	strbuf_release(&dbname);
	return failed;
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void run_backend(void **state)
{
	struct backend *be = *state;
	const char *only = getenv("JOEY_CASE");
	const char *only_be = getenv("JOEY_CASE_BACKEND");
	DIR *d;
	struct dirent *e;
	int n = 0, failed = 0;
	char **names = NULL;
	size_t nn = 0;
	struct strbuf na = STRBUF_INIT, bad = STRBUF_INIT;

	if (only_be && *only_be && strcmp(only_be, be->name)) {
		printf("%s: skipped (JOEY_CASE_BACKEND=%s)\n", be->name, only_be);
		skip();
	}
	if (be->url_var && !(getenv(be->url_var) && *getenv(be->url_var)) && be->ci_required && getenv("CI") &&
	    !strcmp(getenv("CI"), "true"))
		fail_msg("%s: $%s is not set, and CI=true needs this backend (scripts/test-servers.sh start)", be->name,
			 be->url_var);
	if (be->url_var && !(getenv(be->url_var) && *getenv(be->url_var))) {
		printf("%s: skipped ($%s is not set; scripts/test-servers.sh start)\n", be->name,
		       be->url_var);
		skip();
	}
	if (be->strict_env)
		setenv(be->strict_env, "1", 1);
	backend_open(be);
	if (be->unusable) {
		backend_close(be);
		skip();
	}
	d = opendir(cases_dir());
	assert_non_null(d);
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		if (only && strcmp(only, e->d_name))
			continue;
		names = realloc(names, (nn + 1) * sizeof(*names));
		names[nn++] = strdup(e->d_name);
	}
	closedir(d);
	if (nn)
		qsort(names, nn, sizeof(*names), cmp_names);
	for (size_t i = 0; i < nn; i++) {
		int f = run_case(be, names[i]);
		if (f == CASE_NA) {
			strbuf_addf(&na, "%s%s", na.len ? ", " : "", names[i]);
		} else {
			printf("%s %s case %s\n", f ? "FAIL" : "ok  ", be->name, names[i]);
			if (f)
				strbuf_addf(&bad, "%s%s", bad.len ? ", " : "", names[i]);
			failed += f;
			n++;
		}
		free(names[i]);
	}
	free(names);
	backend_close(be);
	if (be->strict_env)
		unsetenv(be->strict_env);
	printf("%s: %d cases, %d failed%s%s%s%s%s\n", be->name, n, failed, bad.len ? " (" : "",
	       bad.buf, bad.len ? ")" : "", na.len ? "; not applicable: " : "", na.buf);
	strbuf_release(&na);
	strbuf_release(&bad);
	assert_true(n > 0);
	assert_int_equal(failed, 0);
}

static struct backend backends[] = {
	{ .name = "sqlite", .type = "sqlite", .kind = BK_SQLITE },
	{ .name = "postgres", .type = "postgres", .kind = BK_POSTGRES, .url_var = "JOEY_PG_URL" },
	{ .name = "mysql", .type = "mysql", .kind = BK_MYSQL, .url_var = "JOEY_MYSQL_URL" },
	{ .name = "csv", .type = "csv", .kind = BK_CSV },
	{ .name = "postgres-warehouse", .type = "postgres", .kind = BK_POSTGRES, .url_var = "JOEY_PG_URL",
	  .warehouse = true },
	/* the Redshift dialect on the PostgreSQL server, every statement linted (strict mode) */
	{ .name = "redshift", .type = "redshift", .kind = BK_POSTGRES, .url_var = "JOEY_PG_URL",
	  .strict_env = "JOEY_REDSHIFT_STRICT" },
	{ .name = "clickhouse", .type = "clickhouse", .kind = BK_CLICKHOUSE, .url_var = "JOEY_CLICKHOUSE_URL",
	  .ci_required = true },
	{ .name = "snowflake", .type = "snowflake", .kind = BK_FAKE },
	{ .name = "bigquery", .type = "bigquery", .kind = BK_FAKE },
};

int main(void)
{
	const struct CMUnitTest tests[] = {
		{ "sqlite", run_backend, NULL, NULL, &backends[0] },
		{ "postgres", run_backend, NULL, NULL, &backends[1] },
		{ "mysql", run_backend, NULL, NULL, &backends[2] },
		{ "csv", run_backend, NULL, NULL, &backends[3] },
		{ "postgres-warehouse", run_backend, NULL, NULL, &backends[4] },
		{ "redshift", run_backend, NULL, NULL, &backends[5] },
		{ "clickhouse", run_backend, NULL, NULL, &backends[6] },
		{ "snowflake", run_backend, NULL, NULL, &backends[7] },
		{ "bigquery", run_backend, NULL, NULL, &backends[8] },
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
