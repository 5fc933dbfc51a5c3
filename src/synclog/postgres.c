/* postgres.c: the sync log writer for PostgreSQL (an app of type postgres, its own writable session). */
#include <ctype.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "base/xalloc.h"
#include "config/paths.h"
#include "synclog/db.h"

struct synclog_db {
	PGconn *pg;
	char *app_id, *prefix, *where; /* where: "host:port, database \"db\"" for messages */
	struct strbuf ins_record;      /* INSERT ... VALUES head, ON CONFLICT tail kept apart */
	bool prepared_full;            /* the insert of SYNCLOG_INSERT_ROWS rows is prepared */
};

static enum jerr pg_err(struct synclog_db *c, PGresult *res, struct jerror *err, const char *what)
{
	const char *msg = res ? PQresultErrorMessage(res) : "";
	const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	if (!msg || !*msg)
		msg = PQerrorMessage(c->pg);
	jerror_set(err, JERR_IO, "sync log app \"%s\": could not %s at %s", c->app_id, what, c->where);
	struct strbuf d = STRBUF_INIT;
	synclog_clean_text(&d, msg, strlen(msg));
	while (d.len && (d.buf[d.len - 1] == '\n' || d.buf[d.len - 1] == ' '))
		strbuf_setlen(&d, d.len - 1);
	jerror_detail(err, "PostgreSQL: %s%s%s%s", d.buf, state ? " (SQLSTATE " : "", state ? state : "",
		      state ? ")" : "");
	strbuf_release(&d);
	if (state && !strcmp(state, "53100"))
		jerror_hint(err, "the database's disk is full: free space, or lower syncLogRetentionDays");
	else if (state && !strcmp(state, "42501"))
		jerror_hint(err, "the app's user needs CREATE on the schema and INSERT, UPDATE, DELETE on the tables");
	else if (state && !strcmp(state, "25006"))
		jerror_hint(err, "the server is read-only (a standby?): point the sync log app at the primary");
	return JERR_IO;
}

static enum jerr exec(struct synclog_db *c, const char *sql, int n, const char *const *vals, const char *what,
		      struct jerror *err)
{
	PGresult *res = PQexecParams(c->pg, sql, n, NULL, vals, NULL, NULL, 0);
	ExecStatusType s = PQresultStatus(res);
	enum jerr rc = s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK ? JERR_OK : pg_err(c, res, err, what);
	PQclear(res);
	return rc;
}

static void pg_close(struct synclog_db *c)
{
	if (!c)
		return;
	PQfinish(c->pg);
	free(c->app_id);
	free(c->prefix);
	free(c->where);
	strbuf_release(&c->ins_record);
	free(c);
}

/*
 * A session on app's database with the schema selected: options and connect_timeout
 * (seconds) are libpq's. On failure *out is NULL.
 */
static enum jerr pg_session(const struct cfg_app *app, const char *root, const char *prefix, const char *options,
			    const char *connect_timeout, struct synclog_db **out, struct jerror *err)
{
	struct synclog_db *c = xcalloc(1, sizeof(*c));
	struct strbuf where = STRBUF_INIT, cert = STRBUF_INIT, key = STRBUF_INIT, ca = STRBUF_INIT;
	const char *keys[20], *vals[20];
	const char *host = synclog_app_opt(app, "host") ? synclog_app_opt(app, "host") : "localhost";
	const char *port = synclog_app_opt(app, "port") ? synclog_app_opt(app, "port") : "5432";
	const char *db = synclog_app_opt(app, "database") ? synclog_app_opt(app, "database") : "";
	const char *schema = synclog_app_opt(app, "schema") ? synclog_app_opt(app, "schema") : "public";
	enum jerr rc = JERR_OK;
	int n = 0;

	*out = NULL;
	c->app_id = xstrdup(app->id);
	c->prefix = xstrdup(prefix);
	strbuf_init(&c->ins_record, 0);
	strbuf_addf(&where, "%s:%s, database \"%s\"", host, port, db);
	c->where = strbuf_detach(&where, NULL);
	/* certificate files (PEM text in the option is the source connector's business: files only here) */
	static const char *const certs[][2] = { { "ssl_cert", "sslcert" }, { "ssl_key", "sslkey" },
						{ "ssl_ca", "sslrootcert" } };
	struct strbuf *cert_bufs[] = { &cert, &key, &ca };
	keys[n] = "host", vals[n++] = host;
	keys[n] = "port", vals[n++] = port;
	keys[n] = "dbname", vals[n++] = db;
	if (synclog_app_opt(app, "user"))
		keys[n] = "user", vals[n++] = synclog_app_opt(app, "user");
	if (synclog_app_opt(app, "password"))
		keys[n] = "password", vals[n++] = synclog_app_opt(app, "password");
	if (synclog_app_opt(app, "sslmode"))
		keys[n] = "sslmode", vals[n++] = synclog_app_opt(app, "sslmode");
	else if (synclog_app_opt(app, "ssl") &&
		 (!strcasecmp(synclog_app_opt(app, "ssl"), "true") || !strcmp(synclog_app_opt(app, "ssl"), "1")))
		keys[n] = "sslmode", vals[n++] = "require";
	for (int i = 0; i < 3; i++) {
		const char *v = synclog_app_opt(app, certs[i][0]);
		if (!v)
			continue;
		if (!strncmp(v, "-----BEGIN", 10)) {
			rc = jerror_set(err, JERR_CONFIG, "sync log app \"%s\": options.%s must be a file path", app->id,
					certs[i][0]);
			jerror_hint(err, "write the certificate to a file and give its path");
			goto out;
		}
		config_add_path(cert_bufs[i], root, v);
		keys[n] = certs[i][1], vals[n++] = cert_bufs[i]->buf;
	}
	keys[n] = "client_encoding", vals[n++] = "UTF8";
	/* bounded waits: a log database that hangs must not hold the run for long */
	keys[n] = "options", vals[n++] = options;
	keys[n] = "application_name", vals[n++] = "joey sync log";
	keys[n] = "connect_timeout", vals[n++] = connect_timeout;
	keys[n] = NULL, vals[n] = NULL;
	c->pg = PQconnectdbParams(keys, vals, 0);
	if (!c->pg || PQstatus(c->pg) != CONNECTION_OK) {
		const char *msg = c->pg ? PQerrorMessage(c->pg) : "out of memory";
		struct strbuf d = STRBUF_INIT;
		synclog_clean_text(&d, msg, strlen(msg));
		while (d.len && (d.buf[d.len - 1] == '\n' || d.buf[d.len - 1] == ' '))
			strbuf_setlen(&d, d.len - 1);
		rc = jerror_set(err, JERR_IO, "sync log app \"%s\": cannot connect to PostgreSQL at %s", app->id,
				c->where);
		jerror_detail(err, "%s", d.buf);
		jerror_hint(err, SYNCLOG_WRITE_CONNECT_HINT);
		strbuf_release(&d);
		goto out;
	}
	const char *sp[1] = { schema };
	if ((rc = exec(c, "SELECT pg_catalog.set_config('search_path', pg_catalog.quote_ident($1), false)", 1, sp,
		       "select the schema", err)))
		goto out;
	*out = c;
	c = NULL;
out:
	strbuf_release(&cert);
	strbuf_release(&key);
	strbuf_release(&ca);
	pg_close(c);
	return rc;
}

static enum jerr pg_connect(const struct cfg_app *app, const char *root, const char *prefix, struct synclog_db **out,
			    struct jerror *err)
{
	struct synclog_db *c = NULL;
	struct strbuf sql = STRBUF_INIT;
	const char *P = prefix;
	enum jerr rc;

	/* bounded waits: a log database that hangs must not hold the run for long */
	rc = pg_session(app, root, prefix, "-c TimeZone=UTC -c statement_timeout=60000 -c lock_timeout=10000", "10",
			&c, err);
	*out = NULL;
	if (rc)
		goto out;
	/* one creator at a time (two runs of different destinations may start together) */
	strbuf_addf(&sql,
		    "BEGIN;\n"
		    "SELECT pg_advisory_xact_lock(1246709081, hashtext(current_schema() || '.%s'));\n"
		    "CREATE TABLE IF NOT EXISTS %ssync_meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);\n"
		    "INSERT INTO %ssync_meta VALUES ('schema_version', '%d') ON CONFLICT DO NOTHING;\n"
		    "CREATE TABLE IF NOT EXISTS %ssync_runs (\n"
		    "  destination TEXT NOT NULL, run_id BIGINT NOT NULL, model TEXT, run_trigger TEXT,\n"
		    "  status TEXT NOT NULL, started_at TIMESTAMPTZ NOT NULL, finished_at TIMESTAMPTZ, records_read BIGINT,\n"
		    "  created BIGINT NOT NULL, updated BIGINT NOT NULL, deleted BIGINT NOT NULL,\n"
		    "  unsubscribed BIGINT NOT NULL, unchanged BIGINT NOT NULL, failed BIGINT NOT NULL,\n"
		    "  not_in_braze BIGINT NOT NULL, requests BIGINT NOT NULL, retries BIGINT NOT NULL,\n"
		    "  error TEXT, log_status TEXT NOT NULL, log_rows BIGINT NOT NULL, logged_at TIMESTAMPTZ NOT NULL,\n"
		    "  PRIMARY KEY (destination, run_id));\n"
		    "CREATE TABLE IF NOT EXISTS %ssync_records (\n"
		    "  destination TEXT NOT NULL, run_id BIGINT NOT NULL, record_key TEXT NOT NULL,\n"
		    "  attempt INTEGER NOT NULL, operation TEXT NOT NULL, changed_fields TEXT, status TEXT NOT NULL,\n"
		    "  error_code TEXT, error_message TEXT, logged_at TIMESTAMPTZ NOT NULL,\n"
		    "  PRIMARY KEY (destination, run_id, record_key, attempt));\n"
		    "COMMIT;\n",
		    P, P, P, SYNCLOG_SCHEMA_VERSION, P, P);
	PGresult *res = PQexec(c->pg, sql.buf);
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		rc = pg_err(c, res, err, "create the sync log tables");
		PQclear(res);
		PQclear(PQexec(c->pg, "ROLLBACK"));
		goto out;
	}
	PQclear(res);
	strbuf_reset(&sql);
	strbuf_addf(&sql, "SELECT value FROM %ssync_meta WHERE name = 'schema_version'", P);
	res = PQexec(c->pg, sql.buf);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		rc = pg_err(c, res, err, "read the sync log schema version");
		PQclear(res);
		goto out;
	}
	int version = PQntuples(res) ? atoi(PQgetvalue(res, 0, 0)) : 0;
	PQclear(res);
	if ((rc = synclog_check_version(app->id, P, c->where, version, err)))
		goto out;
	synclog_add_insert_head(&c->ins_record, P, "sync_records", synclog_record_cols, SYNCLOG_RECORD_COLS);
	strbuf_addstr(&c->ins_record, ") VALUES ");
	*out = c;
	c = NULL;
out:
	strbuf_release(&sql);
	pg_close(c);
	return rc;
}

/* Columns that are not text: the casts their parameters need. */
static const char *record_cast(int i)
{
	return i == 1 ? "::bigint" : i == 3 ? "::integer" : i == 9 ? "::timestamptz" : "";
}

/* The insert of k rows: head, k groups of placeholders, the conflict clause. */
static void insert_sql(struct synclog_db *c, size_t k, struct strbuf *sql)
{
	int p = 0;
	strbuf_reset(sql);
	strbuf_addstr(sql, c->ins_record.buf);
	for (size_t i = 0; i < k; i++) {
		strbuf_addstr(sql, i ? ",(" : "(");
		for (int col = 0; col < SYNCLOG_RECORD_COLS; col++)
			strbuf_addf(sql, "%s$%d%s", col ? "," : "", ++p, record_cast(col));
		strbuf_addch(sql, ')');
	}
	strbuf_addstr(sql, " ON CONFLICT (destination, run_id, record_key, attempt) DO NOTHING");
}

static enum jerr pg_write_records(struct synclog_db *c, const struct synclog_row *rows, size_t n, struct jerror *err)
{
	static const char full_name[] = "joey_synclog_insert";
	struct strbuf sql = STRBUF_INIT;
	struct synclog_vals *x = xcalloc(SYNCLOG_INSERT_ROWS, sizeof(*x));
	const char **vals = xcalloc((size_t)SYNCLOG_INSERT_ROWS * SYNCLOG_RECORD_COLS, sizeof(*vals));
	enum jerr rc;
	char what[64], tz[SYNCLOG_INSERT_ROWS][40];
	snprintf(what, sizeof(what), "write to table %ssync_records", c->prefix);
	for (size_t i = 0; i < SYNCLOG_INSERT_ROWS; i++)
		synclog_vals_init(&x[i]);
	if (!c->prepared_full) { /* full statements are prepared once per connection */
		insert_sql(c, SYNCLOG_INSERT_ROWS, &sql);
		PGresult *res = PQprepare(c->pg, full_name, sql.buf, 0, NULL);
		c->prepared_full = PQresultStatus(res) == PGRES_COMMAND_OK;
		PQclear(res);
	}
	if ((rc = exec(c, "BEGIN", 0, NULL, what, err)))
		goto out;
	for (size_t at = 0; at < n && !rc; at += SYNCLOG_INSERT_ROWS) {
		size_t k = n - at < SYNCLOG_INSERT_ROWS ? n - at : SYNCLOG_INSERT_ROWS;
		int p = 0;
		for (size_t i = 0; i < k; i++) {
			synclog_record_values(&rows[at + i], true, &x[i]);
			snprintf(tz[i], sizeof(tz[i]), "%s+00", x[i].v[9]);
			x[i].v[9] = tz[i];
			for (int col = 0; col < SYNCLOG_RECORD_COLS; col++)
				vals[p++] = x[i].v[col];
		}
		if (k == SYNCLOG_INSERT_ROWS && c->prepared_full) {
			PGresult *res = PQexecPrepared(c->pg, full_name, p, vals, NULL, NULL, 0);
			if (PQresultStatus(res) != PGRES_COMMAND_OK)
				rc = pg_err(c, res, err, what);
			PQclear(res);
		} else {
			insert_sql(c, k, &sql);
			rc = exec(c, sql.buf, p, vals, what, err);
		}
	}
	if (rc)
		PQclear(PQexec(c->pg, "ROLLBACK"));
	else if ((rc = exec(c, "COMMIT", 0, NULL, what, err)))
		PQclear(PQexec(c->pg, "ROLLBACK"));
out:
	for (size_t i = 0; i < SYNCLOG_INSERT_ROWS; i++)
		synclog_vals_release(&x[i]);
	free(x);
	free(vals);
	strbuf_release(&sql);
	return rc;
}

static enum jerr pg_write_run(struct synclog_db *c, const struct synclog_run *run, struct jerror *err)
{
	struct strbuf sql = STRBUF_INIT;
	struct synclog_vals x;
	char what[64], t[3][40];
	enum jerr rc;
	snprintf(what, sizeof(what), "write to table %ssync_runs", c->prefix);
	synclog_vals_init(&x);
	synclog_run_values(run, synclog_now_ms(), true, &x);
	static const int times[3] = { 5, 6, 20 };
	for (int i = 0; i < 3; i++)
		if (x.v[times[i]]) {
			snprintf(t[i], sizeof(t[i]), "%s+00", x.v[times[i]]);
			x.v[times[i]] = t[i];
		}
	synclog_add_insert_head(&sql, c->prefix, "sync_runs", synclog_run_cols, SYNCLOG_RUN_COLS);
	strbuf_addstr(&sql, ") VALUES (");
	for (int i = 0; i < SYNCLOG_RUN_COLS; i++) {
		bool ts = i == 5 || i == 6 || i == 20, txt = i == 0 || (i >= 2 && i <= 4) || i == 17 || i == 18;
		strbuf_addf(&sql, "%s$%d%s", i ? ", " : "", i + 1, ts ? "::timestamptz" : txt ? "" : "::bigint");
	}
	strbuf_addstr(&sql, ") ON CONFLICT (destination, run_id) DO UPDATE SET ");
	synclog_add_run_excluded(&sql);
	rc = exec(c, sql.buf, SYNCLOG_RUN_COLS, x.v, what, err);
	synclog_vals_release(&x);
	strbuf_release(&sql);
	return rc;
}

static enum jerr pg_purge(struct synclog_db *c, const char *destination, int64_t before_ms, size_t limit,
			  uint64_t *deleted, struct jerror *err)
{
	struct strbuf q_old = STRBUF_INIT, q_recs = STRBUF_INIT, q_run = STRBUF_INIT, dest = STRBUF_INIT;
	char before[40], lim[24];
	enum jerr rc = JERR_OK;
	const char *P = c->prefix;
	*deleted = 0;
	synclog_time_text(before_ms, before, sizeof(before) - 4);
	strcat(before, "+00");
	synclog_clean_text(&dest, destination, strlen(destination));
	strbuf_addf(&q_old, "SELECT run_id FROM %ssync_runs WHERE destination = $1 AND started_at < $2::timestamptz "
			    "ORDER BY run_id LIMIT 1", P);
	strbuf_addf(&q_recs, "DELETE FROM %ssync_records WHERE ctid IN (SELECT ctid FROM %ssync_records WHERE "
			     "destination = $1 AND run_id = $2::bigint LIMIT $3::bigint)", P, P);
	strbuf_addf(&q_run, "DELETE FROM %ssync_runs WHERE destination = $1 AND run_id = $2::bigint", P);
	while (*deleted < limit && !rc) {
		const char *v[3] = { dest.buf, before, NULL };
		PGresult *res = PQexecParams(c->pg, q_old.buf, 2, NULL, v, NULL, NULL, 0);
		if (PQresultStatus(res) != PGRES_TUPLES_OK) {
			rc = pg_err(c, res, err, "delete old rows (syncLogRetentionDays)");
			PQclear(res);
			break;
		}
		if (!PQntuples(res)) {
			PQclear(res);
			break;
		}
		char run_id[24];
		snprintf(run_id, sizeof(run_id), "%s", PQgetvalue(res, 0, 0));
		PQclear(res);
		size_t want = limit - (size_t)*deleted;
		snprintf(lim, sizeof(lim), "%zu", want);
		const char *r[3] = { dest.buf, run_id, lim };
		res = PQexecParams(c->pg, q_recs.buf, 3, NULL, r, NULL, NULL, 0);
		if (PQresultStatus(res) != PGRES_COMMAND_OK) {
			rc = pg_err(c, res, err, "delete old rows (syncLogRetentionDays)");
			PQclear(res);
			break;
		}
		size_t n = (size_t)strtoull(PQcmdTuples(res), NULL, 10);
		PQclear(res);
		*deleted += n;
		if (n == want)
			break; /* the run may have more: the next call goes on */
		res = PQexecParams(c->pg, q_run.buf, 2, NULL, r, NULL, NULL, 0);
		if (PQresultStatus(res) != PGRES_COMMAND_OK)
			rc = pg_err(c, res, err, "delete old rows (syncLogRetentionDays)");
		else
			*deleted += 1;
		PQclear(res);
	}
	strbuf_release(&q_old);
	strbuf_release(&q_recs);
	strbuf_release(&q_run);
	strbuf_release(&dest);
	return rc;
}

static enum jerr pg_read_key(const struct cfg_app *app, const char *root, const char *prefix, const char *destination,
			     struct slice key, size_t limit, synclog_hit_fn fn, void *ctx, struct jerror *err)
{
	static const char *const ph[3] = { "$1", "$2", "$3::bigint" };
	struct synclog_db *c = NULL;
	struct strbuf sql = STRBUF_INIT, dest = STRBUF_INIT, k = STRBUF_INIT;
	char lim[32], what[64], opts[96];
	PGresult *res = NULL;
	enum jerr rc;

	/* a read-only session, and a slow log database costs the page a few seconds at most */
	snprintf(opts, sizeof(opts), "-c TimeZone=UTC -c statement_timeout=%d -c default_transaction_read_only=on",
		 SYNCLOG_READ_TIMEOUT_MS);
	if ((rc = pg_session(app, root, prefix, opts, "3", &c, err))) {
		jerror_hint(err, SYNCLOG_CONNECT_HINT);
		goto out;
	}
	/* the writer stores text cleaned to UTF-8: compare with the same */
	synclog_clean_text(&dest, destination, strlen(destination));
	synclog_clean_text(&k, key.ptr ? key.ptr : "", key.len);
	snprintf(lim, sizeof(lim), "%zu", limit);
	const char *vals[3] = { dest.buf, k.buf, lim };
	synclog_add_read_sql(&sql, prefix,
			     "to_char(r.logged_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.MS')", ph);
	res = PQexecParams(c->pg, sql.buf, 3, NULL, vals, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
		if (state && !strcmp(state, "42P01"))
			goto out; /* the tables are made by a run's first write */
		snprintf(what, sizeof(what), "read table %ssync_records", prefix);
		rc = pg_err(c, res, err, what);
		if (state && !strcmp(state, "57014"))
			jerror_hint(err, "the read took more than %d ms: an index on (destination, record_key) of the "
					 "table makes it fast", SYNCLOG_READ_TIMEOUT_MS);
		goto out;
	}
	for (int i = 0; i < PQntuples(res); i++) {
		const char *v[SYNCLOG_HIT_COLS];
		struct synclog_hit h;
		for (int col = 0; col < SYNCLOG_HIT_COLS; col++)
			v[col] = PQgetisnull(res, i, col) ? NULL : PQgetvalue(res, i, col);
		if (!synclog_hit_from_text(v, &h))
			continue; /* a row a person wrote by hand: not ours to show */
		if ((rc = fn(ctx, &h, err)))
			goto out;
	}
out:
	PQclear(res);
	pg_close(c);
	strbuf_release(&sql);
	strbuf_release(&dest);
	strbuf_release(&k);
	return rc;
}

const struct synclog_db_ops synclog_db_postgres = {
	.app_type = "postgres",
	.connect = pg_connect,
	.write_records = pg_write_records,
	.write_run = pg_write_run,
	.purge = pg_purge,
	.close = pg_close,
	.read_key = pg_read_key,
};
