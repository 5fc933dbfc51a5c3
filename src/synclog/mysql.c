/* mysql.c: the sync log writer for MySQL and MariaDB (an app of type mysql, its own writable session). */
#include <mysql.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/xalloc.h"
#include "synclog/db.h"

#define STR_(x) #x
#define STR(x) STR_(x)

struct synclog_db {
	MYSQL *my;
	char *app_id, *prefix, *where;
};

static enum jerr my_err(struct synclog_db *c, struct jerror *err, const char *what)
{
	unsigned e = mysql_errno(c->my);
	jerror_set(err, JERR_IO, "sync log app \"%s\": could not %s at %s", c->app_id, what, c->where);
	jerror_detail(err, "MySQL: %s (error %u)", mysql_error(c->my), e);
	if (e == 1114 || e == 1021)
		jerror_hint(err, "the database's disk or table is full: free space, or lower syncLogRetentionDays");
	else if (e == 1142 || e == 1044)
		jerror_hint(err, "the app's user needs CREATE, INSERT, UPDATE and DELETE on the database");
	return JERR_IO;
}

static enum jerr query(struct synclog_db *c, const char *sql, size_t len, const char *what, struct jerror *err)
{
	if (mysql_real_query(c->my, sql, (unsigned long)len))
		return my_err(c, err, what);
	MYSQL_RES *res = mysql_store_result(c->my);
	if (res)
		mysql_free_result(res);
	return JERR_OK;
}

static void my_close(struct synclog_db *c)
{
	if (!c)
		return;
	if (c->my)
		mysql_close(c->my);
	free(c->app_id);
	free(c->prefix);
	free(c->where);
	free(c);
}

/* A session on app's database, UTC, with these timeouts (seconds). On failure *out is NULL. */
static enum jerr my_session(const struct cfg_app *app, const char *prefix, unsigned timeout, unsigned rw_timeout,
			    struct synclog_db **out, struct jerror *err)
{
	struct synclog_db *c = xcalloc(1, sizeof(*c));
	struct strbuf where = STRBUF_INIT;
	const char *host = synclog_app_opt(app, "host") ? synclog_app_opt(app, "host") : "localhost";
	const char *db = synclog_app_opt(app, "database") ? synclog_app_opt(app, "database") : "";
	const char *port_s = synclog_app_opt(app, "port");
	unsigned port = port_s ? (unsigned)strtoul(port_s, NULL, 10) : 3306;
	enum jerr rc = JERR_OK;

	*out = NULL;
	c->app_id = xstrdup(app->id);
	c->prefix = xstrdup(prefix);
	strbuf_addf(&where, "%s:%u, database \"%s\"", host, port, db);
	c->where = strbuf_detach(&where, NULL);
	c->my = mysql_init(NULL);
	mysql_options(c->my, MYSQL_SET_CHARSET_NAME, "utf8mb4");
	mysql_options(c->my, MYSQL_OPT_CONNECT_TIMEOUT, &timeout);
	mysql_options(c->my, MYSQL_OPT_READ_TIMEOUT, &rw_timeout);
	mysql_options(c->my, MYSQL_OPT_WRITE_TIMEOUT, &rw_timeout);
	mysql_options(c->my, MYSQL_INIT_COMMAND, "SET time_zone = '+00:00'");
	if (!mysql_real_connect(c->my, strcmp(host, "localhost") ? host : "127.0.0.1", synclog_app_opt(app, "user"),
				synclog_app_opt(app, "password"), db, port, NULL, 0)) {
		rc = jerror_set(err, JERR_IO, "sync log app \"%s\": cannot connect to MySQL at %s", app->id, c->where);
		jerror_detail(err, "%s", mysql_error(c->my));
		jerror_hint(err, SYNCLOG_WRITE_CONNECT_HINT);
		goto out;
	}
	*out = c;
	c = NULL;
out:
	my_close(c);
	return rc;
}

static enum jerr my_connect(const struct cfg_app *app, const char *root, const char *prefix, struct synclog_db **out,
			    struct jerror *err)
{
	struct synclog_db *c = NULL;
	struct strbuf sql = STRBUF_INIT;
	const char *P = prefix;
	enum jerr rc;
	(void)root;

	/* bounded waits: a log database that hangs must not hold the run for long */
	rc = my_session(app, prefix, 10, 60, &c, err);
	*out = NULL;
	if (rc)
		goto out;
	static const char *const steps[] = {
		"CREATE TABLE IF NOT EXISTS %ssync_meta (name VARCHAR(64) PRIMARY KEY, value TEXT NOT NULL)"
		" ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin",
		"INSERT IGNORE INTO %ssync_meta VALUES ('schema_version', '" STR(SYNCLOG_SCHEMA_VERSION) "')",
		"CREATE TABLE IF NOT EXISTS %ssync_runs (\n"
		"  destination VARCHAR(191) NOT NULL, run_id BIGINT NOT NULL, model VARCHAR(191), run_trigger VARCHAR(32),\n"
		"  status VARCHAR(16) NOT NULL, started_at DATETIME(3) NOT NULL, finished_at DATETIME(3) NULL,\n"
		"  records_read BIGINT, created BIGINT NOT NULL, updated BIGINT NOT NULL, deleted BIGINT NOT NULL,\n"
		"  unsubscribed BIGINT NOT NULL, unchanged BIGINT NOT NULL, failed BIGINT NOT NULL,\n"
		"  not_in_braze BIGINT NOT NULL, requests BIGINT NOT NULL, retries BIGINT NOT NULL,\n"
		"  error TEXT, log_status VARCHAR(16) NOT NULL, log_rows BIGINT NOT NULL, logged_at DATETIME(3) NOT NULL,\n"
		"  PRIMARY KEY (destination, run_id), KEY (destination, started_at))"
		" ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin",
		"CREATE TABLE IF NOT EXISTS %ssync_records (\n"
		"  id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,\n"
		"  destination VARCHAR(191) NOT NULL, run_id BIGINT NOT NULL, record_key VARCHAR(512) NOT NULL,\n"
		"  attempt INT NOT NULL, operation VARCHAR(16) NOT NULL, changed_fields TEXT, status VARCHAR(16) NOT NULL,\n"
		"  error_code VARCHAR(32), error_message TEXT, logged_at DATETIME(3) NOT NULL,\n"
		"  UNIQUE KEY (destination, run_id, record_key, attempt))"
		" ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin",
	};
	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		const char *at = strstr(steps[i], "%s"); /* where the prefix goes */
		strbuf_reset(&sql);
		strbuf_add(&sql, steps[i], (size_t)(at - steps[i]));
		strbuf_addstr(&sql, P);
		strbuf_addstr(&sql, at + 2);
		if ((rc = query(c, sql.buf, sql.len, "create the sync log tables", err)))
			goto out;
	}
	strbuf_reset(&sql);
	strbuf_addf(&sql, "SELECT value FROM %ssync_meta WHERE name = 'schema_version'", P);
	if (mysql_real_query(c->my, sql.buf, (unsigned long)sql.len)) {
		rc = my_err(c, err, "read the sync log schema version");
		goto out;
	}
	MYSQL_RES *res = mysql_store_result(c->my);
	MYSQL_ROW row = res ? mysql_fetch_row(res) : NULL;
	int version = row && row[0] ? atoi(row[0]) : 0;
	if (res)
		mysql_free_result(res);
	if ((rc = synclog_check_version(app->id, P, c->where, version, err)))
		goto out;
	*out = c;
	c = NULL;
out:
	strbuf_release(&sql);
	my_close(c);
	return rc;
}

static void add_value(struct synclog_db *c, struct strbuf *sb, const char *v)
{
	if (!v) {
		strbuf_addstr(sb, "NULL");
		return;
	}
	size_t n = strlen(v);
	strbuf_grow(sb, 2 * n + 3);
	sb->buf[sb->len++] = '\'';
	sb->len += mysql_real_escape_string(c->my, sb->buf + sb->len, v, (unsigned long)n);
	sb->buf[sb->len++] = '\'';
	sb->buf[sb->len] = 0;
}

static enum jerr my_write_records(struct synclog_db *c, const struct synclog_row *rows, size_t n, struct jerror *err)
{
	struct strbuf sql = STRBUF_INIT;
	struct synclog_vals x;
	enum jerr rc;
	char what[64];
	snprintf(what, sizeof(what), "write to table %ssync_records", c->prefix);
	synclog_vals_init(&x);
	if ((rc = query(c, "START TRANSACTION", 17, what, err)))
		goto out;
	for (size_t at = 0; at < n && !rc; at += SYNCLOG_INSERT_ROWS) {
		size_t k = n - at < SYNCLOG_INSERT_ROWS ? n - at : SYNCLOG_INSERT_ROWS;
		strbuf_reset(&sql);
		synclog_add_insert_head(&sql, c->prefix, "sync_records", synclog_record_cols, SYNCLOG_RECORD_COLS);
		strbuf_addstr(&sql, ") VALUES ");
		for (size_t i = 0; i < k; i++) {
			synclog_record_values(&rows[at + i], true, &x);
			/* record_key is VARCHAR(512) (an index holds at most 3072 bytes): longer keys are cut */
			if (strlen(x.v[2]) > 512) {
				size_t cut = 512;
				while (cut && ((unsigned char)x.clean[1].buf[cut] & 0xc0) == 0x80)
					cut--;
				strbuf_setlen(&x.clean[1], cut);
			}
			strbuf_addstr(&sql, i ? ",(" : "(");
			for (int col = 0; col < SYNCLOG_RECORD_COLS; col++) {
				if (col)
					strbuf_addch(&sql, ',');
				add_value(c, &sql, x.v[col]);
			}
			strbuf_addch(&sql, ')');
		}
		strbuf_addstr(&sql, " ON DUPLICATE KEY UPDATE attempt = attempt");
		rc = query(c, sql.buf, sql.len, what, err);
	}
	if (rc)
		mysql_query(c->my, "ROLLBACK");
	else if ((rc = query(c, "COMMIT", 6, what, err)))
		mysql_query(c->my, "ROLLBACK");
out:
	synclog_vals_release(&x);
	strbuf_release(&sql);
	return rc;
}

static enum jerr my_write_run(struct synclog_db *c, const struct synclog_run *run, struct jerror *err)
{
	struct strbuf sql = STRBUF_INIT;
	struct synclog_vals x;
	char what[64];
	enum jerr rc;
	snprintf(what, sizeof(what), "write to table %ssync_runs", c->prefix);
	synclog_vals_init(&x);
	synclog_run_values(run, synclog_now_ms(), true, &x);
	synclog_add_insert_head(&sql, c->prefix, "sync_runs", synclog_run_cols, SYNCLOG_RUN_COLS);
	strbuf_addstr(&sql, ") VALUES (");
	for (int i = 0; i < SYNCLOG_RUN_COLS; i++) {
		if (i)
			strbuf_addch(&sql, ',');
		add_value(c, &sql, x.v[i]);
	}
	strbuf_addstr(&sql, ") ON DUPLICATE KEY UPDATE ");
	for (int i = 2; i < SYNCLOG_RUN_COLS; i++)
		strbuf_addf(&sql, "%s%s = VALUES(%s)", i > 2 ? ", " : "", synclog_run_cols[i], synclog_run_cols[i]);
	rc = query(c, sql.buf, sql.len, what, err);
	synclog_vals_release(&x);
	strbuf_release(&sql);
	return rc;
}

static enum jerr my_purge(struct synclog_db *c, const char *destination, int64_t before_ms, size_t limit,
			  uint64_t *deleted, struct jerror *err)
{
	struct strbuf sql = STRBUF_INIT, dest = STRBUF_INIT;
	char before[32];
	enum jerr rc = JERR_OK;
	*deleted = 0;
	synclog_time_text(before_ms, before, sizeof(before));
	synclog_clean_text(&dest, destination, strlen(destination));
	while (*deleted < limit && !rc) {
		strbuf_reset(&sql);
		strbuf_addf(&sql, "SELECT run_id FROM %ssync_runs WHERE destination = ", c->prefix);
		add_value(c, &sql, dest.buf);
		strbuf_addstr(&sql, " AND started_at < ");
		add_value(c, &sql, before);
		strbuf_addstr(&sql, " ORDER BY run_id LIMIT 1");
		if (mysql_real_query(c->my, sql.buf, (unsigned long)sql.len)) {
			rc = my_err(c, err, "delete old rows (syncLogRetentionDays)");
			break;
		}
		MYSQL_RES *res = mysql_store_result(c->my);
		MYSQL_ROW row = res ? mysql_fetch_row(res) : NULL;
		char run_id[24] = "";
		if (row && row[0])
			snprintf(run_id, sizeof(run_id), "%s", row[0]);
		if (res)
			mysql_free_result(res);
		if (!*run_id)
			break;
		size_t want = limit - (size_t)*deleted;
		strbuf_reset(&sql);
		strbuf_addf(&sql, "DELETE FROM %ssync_records WHERE destination = ", c->prefix);
		add_value(c, &sql, dest.buf);
		strbuf_addf(&sql, " AND run_id = %s LIMIT %zu", run_id, want);
		if (mysql_real_query(c->my, sql.buf, (unsigned long)sql.len)) {
			rc = my_err(c, err, "delete old rows (syncLogRetentionDays)");
			break;
		}
		size_t n = (size_t)mysql_affected_rows(c->my);
		*deleted += n;
		if (n == want)
			break; /* the run may have more: the next call goes on */
		strbuf_reset(&sql);
		strbuf_addf(&sql, "DELETE FROM %ssync_runs WHERE destination = ", c->prefix);
		add_value(c, &sql, dest.buf);
		strbuf_addf(&sql, " AND run_id = %s", run_id);
		if (mysql_real_query(c->my, sql.buf, (unsigned long)sql.len))
			rc = my_err(c, err, "delete old rows (syncLogRetentionDays)");
		else
			*deleted += 1;
	}
	strbuf_release(&sql);
	strbuf_release(&dest);
	return rc;
}

/*
 * The read's statement: prepared, the values bound, run, its rows kept client-side with
 * their max lengths. *missing: the tables do not exist (JERR_OK, nothing to read).
 */
static enum jerr my_read_run(struct synclog_db *c, MYSQL_STMT *st, const char *sql, const char *const vals[3],
			     const char *what, bool *missing, struct jerror *err)
{
	*missing = false;
	MYSQL_BIND in[3];
	unsigned long len[3];
	my_bool one = 1;
	memset(in, 0, sizeof(in));
	for (int i = 0; i < 3; i++) {
		len[i] = (unsigned long)strlen(vals[i]);
		in[i].buffer_type = i == 2 ? MYSQL_TYPE_LONGLONG : MYSQL_TYPE_STRING;
		in[i].buffer = (void *)vals[i];
		in[i].buffer_length = len[i];
		in[i].length = &len[i];
	}
	long long limit = strtoll(vals[2], NULL, 10);
	in[2].buffer = &limit;
	in[2].length = NULL;
	if (mysql_stmt_prepare(st, sql, (unsigned long)strlen(sql)) || mysql_stmt_bind_param(st, in) ||
	    mysql_stmt_attr_set(st, STMT_ATTR_UPDATE_MAX_LENGTH, &one) || mysql_stmt_execute(st) ||
	    mysql_stmt_store_result(st)) {
		unsigned e = mysql_stmt_errno(st);
		if (e == 1146) {
			*missing = true;
			return JERR_OK;
		}
		jerror_set(err, JERR_IO, "sync log app \"%s\": could not %s at %s", c->app_id, what, c->where);
		jerror_detail(err, "MySQL: %s (error %u)", mysql_stmt_error(st), e);
		if (e == 1969 || e == 3024 || e == 2013)
			jerror_hint(err, "the read took more than %d ms: an index on (destination, record_key) of the "
					 "table makes it fast", SYNCLOG_READ_TIMEOUT_MS);
		return JERR_IO;
	}
	return JERR_OK;
}

static enum jerr my_read_key(const struct cfg_app *app, const char *root, const char *prefix, const char *destination,
			     struct slice key, size_t limit, synclog_hit_fn fn, void *ctx, struct jerror *err)
{
	static const char *const ph[3] = { "?", "?", "?" };
	struct synclog_db *c = NULL;
	struct strbuf sql = STRBUF_INIT, dest = STRBUF_INIT, k = STRBUF_INIT;
	MYSQL_STMT *st = NULL;
	MYSQL_RES *meta = NULL;
	MYSQL_BIND out[SYNCLOG_HIT_COLS];
	unsigned long len[SYNCLOG_HIT_COLS];
	my_bool null[SYNCLOG_HIT_COLS];
	char *buf[SYNCLOG_HIT_COLS] = { 0 }, lim[32], what[64];
	enum jerr rc;
	(void)root;

	if ((rc = my_session(app, prefix, SYNCLOG_READ_TIMEOUT_MS / 1000, SYNCLOG_READ_TIMEOUT_MS / 1000, &c, err))) {
		jerror_hint(err, SYNCLOG_CONNECT_HINT);
		goto out;
	}
	/* the server stops a slow read (MariaDB, then MySQL; each refuses the other's name) */
	mysql_query(c->my, "SET SESSION max_statement_time = " STR(SYNCLOG_READ_TIMEOUT_MS) " / 1000");
	mysql_query(c->my, "SET SESSION max_execution_time = " STR(SYNCLOG_READ_TIMEOUT_MS));
	/* compare with what the writer stores: UTF-8 text, record_key cut at 512 bytes */
	synclog_clean_text(&dest, destination, strlen(destination));
	synclog_clean_text(&k, key.ptr ? key.ptr : "", key.len);
	if (k.len > 512) {
		size_t cut = 512;
		while (cut && ((unsigned char)k.buf[cut] & 0xc0) == 0x80)
			cut--;
		strbuf_setlen(&k, cut);
	}
	snprintf(lim, sizeof(lim), "%zu", limit);
	snprintf(what, sizeof(what), "read table %ssync_records", prefix);
	synclog_add_read_sql(&sql, prefix, "DATE_FORMAT(r.logged_at, '%Y-%m-%d %H:%i:%s.%f')", ph);
	const char *vals[3] = { dest.buf, k.buf, lim };
	st = mysql_stmt_init(c->my);
	bool missing;
	if ((rc = my_read_run(c, st, sql.buf, vals, what, &missing, err)) || missing)
		goto out; /* missing: the tables are made by a run's first write */
	/* buffers as long as the longest value of each column */
	meta = mysql_stmt_result_metadata(st);
	MYSQL_FIELD *fields = meta ? mysql_fetch_fields(meta) : NULL;
	memset(out, 0, sizeof(out));
	for (int i = 0; i < SYNCLOG_HIT_COLS; i++) {
		size_t n = fields ? fields[i].max_length + 1 : 64;
		buf[i] = xmalloc(n < 64 ? 64 : n);
		out[i].buffer_type = MYSQL_TYPE_STRING;
		out[i].buffer = buf[i];
		out[i].buffer_length = (unsigned long)(n < 64 ? 64 : n) - 1;
		out[i].length = &len[i];
		out[i].is_null = &null[i];
	}
	if (mysql_stmt_bind_result(st, out)) {
		rc = jerror_set(err, JERR_IO, "sync log app \"%s\": could not %s at %s", app->id, what, c->where);
		jerror_detail(err, "MySQL: %s", mysql_stmt_error(st));
		goto out;
	}
	int f;
	while ((f = mysql_stmt_fetch(st)) == 0 || f == MYSQL_DATA_TRUNCATED) {
		const char *v[SYNCLOG_HIT_COLS];
		struct synclog_hit h;
		for (int i = 0; i < SYNCLOG_HIT_COLS; i++) {
			size_t n = len[i] < out[i].buffer_length ? len[i] : out[i].buffer_length;
			buf[i][n] = 0;
			v[i] = null[i] ? NULL : buf[i];
		}
		if (!synclog_hit_from_text(v, &h))
			continue; /* a row a person wrote by hand: not ours to show */
		if ((rc = fn(ctx, &h, err)))
			goto out;
	}
	if (f != MYSQL_NO_DATA) {
		rc = jerror_set(err, JERR_IO, "sync log app \"%s\": could not %s at %s", app->id, what, c->where);
		jerror_detail(err, "MySQL: %s (error %u)", mysql_stmt_error(st), mysql_stmt_errno(st));
	}
out:
	if (meta)
		mysql_free_result(meta);
	if (st)
		mysql_stmt_close(st);
	my_close(c);
	for (int i = 0; i < SYNCLOG_HIT_COLS; i++)
		free(buf[i]);
	strbuf_release(&sql);
	strbuf_release(&dest);
	strbuf_release(&k);
	return rc;
}

const struct synclog_db_ops synclog_db_mysql = {
	.app_type = "mysql",
	.connect = my_connect,
	.write_records = my_write_records,
	.write_run = my_write_run,
	.purge = my_purge,
	.close = my_close,
	.read_key = my_read_key,
};
