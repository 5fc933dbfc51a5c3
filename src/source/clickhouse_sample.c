/*
 * clickhouse_sample.c: the ClickHouse connector's look at its data for the UI's source
 * editors (source_ops.sample and sample_query, source.h): the tables of the app's
 * database, the first rows of one table, the first rows of a query. Each is one short
 * statement (ch_run_short: readonly=1, max_execution_time from statementTimeout,
 * wait_end_of_query=1), so a query that writes is refused by the server and changes
 * nothing. The answer is TabSeparatedWithNamesAndTypes, read whole; every value of out
 * is malloc'd (source_sample_release frees it). Called through source_clickhouse.
 */
#include <stdlib.h>
#include <string.h>

#include "base/xalloc.h"
#include "source/chwire.h"
#include "source/clickhouse_internal.h"
#include "source/source.h"
#include "source/sqlgen.h"

/* Split a whole TabSeparated line into its fields (malloc'd array in *f); false when bad. */
static bool split_line(char *line, size_t len, struct chw_field **f, size_t *n)
{
	*n = 1;
	for (size_t i = 0; i < len; i++)
		*n += line[i] == '\t';
	*f = xcalloc(*n, sizeof(**f));
	return chw_split_tsv(line, len, *f, *n);
}

/* The tables of the app's database, sorted by name, into out->tables. */
static enum jerr sample_tables(struct ch_conn *c, struct source_sample *out, struct jerror *err)
{
	struct strbuf sql = STRBUF_INIT, what = STRBUF_INIT;
	struct ch_req *r = NULL;
	size_t alloc = 0, len;
	char *line;
	int code;
	enum jerr rc;

	strbuf_addstr(&sql, "SELECT name FROM system.tables WHERE database = ");
	chw_add_string_literal(&sql, c->database, strlen(c->database));
	/* a materialized view's storage (.inner.<view>, .inner_id.<uuid>) is not the user's */
	strbuf_addstr(&sql, " AND name NOT LIKE '.inner%' ORDER BY name FORMAT TabSeparated");
	strbuf_addf(&what, "app \"%s\": cannot read its tables", c->app->id);
	if ((rc = ch_run_short(c, sql.buf, what.buf, &r, &code, err)))
		goto out;
	while ((line = ch_short_line(r, &len))) {
		struct chw_field f;
		if (!len || !chw_split_tsv(line, len, &f, 1) || f.null)
			continue;
		ALLOC_GROW(out->tables, out->n_tables + 2, alloc);
		out->tables[out->n_tables++] = xstrndup(f.s, f.len);
		out->tables[out->n_tables] = NULL;
	}
	/* ORDER BY name is the server's byte order; keep it (sql_sample_table_known scans) */
out:
	ch_req_free(r);
	strbuf_release(&sql);
	strbuf_release(&what);
	return rc;
}

/* The header (names, types) and rows of a finished TabSeparatedWithNamesAndTypes answer. */
static enum jerr sample_rows(struct ch_conn *c, struct ch_req *r, const char *what, struct source_sample *out,
			     struct jerror *err)
{
	struct chw_field *f = NULL;
	size_t all = 0, len, alloc = 0;
	char *line = ch_short_line(r, &len);
	enum jerr rc = JERR_OK;

	if (!line || !split_line(line, len, &f, &all))
		goto bad;
	sql_sample_columns(out, all);
	for (size_t i = 0; i < out->n_columns; i++)
		out->columns[i] = xstrndup(f[i].s, f[i].len);
	free(f);
	f = NULL;
	if (!ch_short_line(r, &len)) /* the types */
		goto bad;
	while ((line = ch_short_line(r, &len))) {
		size_t n;
		if (!split_line(line, len, &f, &n) || n != all)
			goto bad;
		char **cells = sql_sample_add_row(out, &alloc);
		for (size_t i = 0; i < out->n_columns; i++)
			cells[i] = f[i].null ? NULL : sql_sample_value(f[i].s, f[i].len);
		free(f);
		f = NULL;
	}
	sql_sample_end_rows(out);
	return JERR_OK;
bad:
	free(f);
	rc = jerror_set(err, JERR_SOURCE, "%s", what);
	jerror_detail(err, "app \"%s\": the server's answer is not TabSeparatedWithNamesAndTypes (row %zu)",
		      c->app->id, out->n_rows + 1);
	return rc;
}

/*
 * A preview's statement (sql) and its rows into out; what is the message of any failure.
 * A statement the server refused gets hint (NULL: none) unless the server's words
 * brought one. Releases sql and what.
 */
static enum jerr sample_run(struct ch_conn *c, struct strbuf *sql, struct strbuf *what, const char *hint,
			    struct source_sample *out, struct jerror *err)
{
	struct ch_req *r = NULL;
	int code;
	enum jerr rc;

	if ((rc = ch_run_short(c, sql->buf, what->buf, &r, &code, err))) {
		if (hint && err && !err->hint.len)
			jerror_hint(err, "%s", hint);
	} else
		rc = sample_rows(c, r, what->buf, out, err);
	ch_req_free(r);
	strbuf_release(sql);
	strbuf_release(what);
	return rc;
}

/* source_ops.sample (source.h). */
enum jerr ch_sample(void *conn, const char *table, size_t limit, struct source_sample *out,
			   struct jerror *err)
{
	struct ch_conn *c = conn;
	struct strbuf sql = STRBUF_INIT, what = STRBUF_INIT;
	enum jerr rc;

	if ((rc = sample_tables(c, out, err)) || !table)
		return rc;
	if ((rc = sql_sample_table_known(c->app->id, table, out->tables, out->n_tables, err)))
		return rc;
	strbuf_addstr(&sql, "SELECT * FROM `");
	for (const char *p = table; *p; p++) {
		if (*p == '`' || *p == '\\')
			strbuf_addch(&sql, '\\');
		strbuf_addch(&sql, *p);
	}
	strbuf_addch(&sql, '`');
	strbuf_addf(&sql, " LIMIT %zu" CH_FORMAT, limit > SOURCE_SAMPLE_MAX_ROWS ? (size_t)SOURCE_SAMPLE_MAX_ROWS : limit);
	strbuf_addf(&what, "app \"%s\": cannot read table \"%s\"", c->app->id, table);
	return sample_run(c, &sql, &what, NULL, out, err);
}

/* source_ops.sample_query (source.h): the query as a derived table, one read-only statement. */
enum jerr ch_sample_query(void *conn, const char *query, size_t limit, struct source_sample *out,
				 struct jerror *err)
{
	struct ch_conn *c = conn;
	struct strbuf sql = STRBUF_INIT, what = STRBUF_INIT;

	sql_sample_query_sql(&sql, query, limit);
	strbuf_addstr(&sql, CH_FORMAT);
	strbuf_addf(&what, "app \"%s\": the query cannot be read", c->app->id);
	return sample_run(c, &sql, &what, SQL_SAMPLE_QUERY_HINT, out, err);
}
