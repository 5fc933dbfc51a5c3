/*
 * warehouse.c: the warehouse diff: one query in PostgreSQL finds the records that may have
 * changed. Connecting, running the query (its text: warehouse_query.c; eligibility and
 * fingerprint: warehouse_check.c), its candidates and the digest writes. Owns each
 * struct warehouse from warehouse_open to warehouse_close. Called by the diff (diff.c).
 */
#include "engine/warehouse_internal.h"

#include <ctype.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <libpq-fe.h>

#include "base/arena.h"
#include "base/log.h"
#include "base/xalloc.h"
#include "source/sqlgen.h"

/*
 * Design note (docs/internals/warehouse.md has the whole argument).
 *
 * Digests. Every source statement (sqlgen.c, PostgreSQL dialect) is read with
 * read->digest: a last column holds md5 of the row's text as the statement returns it.
 * A record's digest for a destination is fp || md5(primary row) || md5(secondary row)
 * ... (16 zero bytes for a secondary without a row), fp being the destination's
 * configuration fingerprint (warehouse_fingerprint) with the statements and their
 * column types mixed in. Equal digests mean equal source rows under an equal
 * configuration, hence equal records, hence equal payloads and scopes: digests.hash
 * says which payload (NULL: out of scope).
 *
 * The query (one statement, on a connection of our own to the state store's
 * database, the app's schema first in search_path):
 *   joey$s<i>  the source statements, unlimited and unordered, with their digests
 *   joey$d     their FULL JOIN on the key: one row per primary key (and one per
 *              secondary row no primary row claims: the orphans)
 *   joey$f     (materialized) joey$d FULL JOIN each destination's state rows (so
 *              keys the sources lost are there too) LEFT JOIN its digest rows: per key
 *              and destination, can it be skipped (the stored digest equals the
 *              current one and the state row holds exactly what that digest made: the
 *              same hash, in scope, confirmed, not pending; or the digest made an
 *              out-of-scope record and the state row is absent or released), is that an
 *              unchanged item, and is a lost key's state row in scope or pending
 *   joey$sum   one pass over joey$f: records, duplicates, orphans, candidates, and per
 *              destination the skipped keys that are unchanged items
 * It returns the summary row first, then each candidate (a key some destination
 * cannot skip, or a lost key in scope or pending somewhere) in key_compare order, with
 * every destination's state row and digest row looked up by primary key.
 *
 * Only the digests of records joey itself read are written, computed from the very
 * rows it read (not from the query, which ran at another moment), so a source that
 * changes during the run cannot make a digest lie. They are written on a second
 * connection in batches, in their own transactions.
 */

/* The watcher's cancel (source.h). */
static void wh_cancel_statement(struct source_watch *sw)
{
	struct warehouse *w = (struct warehouse *)(void *)((char *)sw - offsetof(struct warehouse, watch));
	char buf[256];
	if (w->cancel)
		PQcancel(w->cancel, buf, sizeof(buf));
}

/* PQgetResult of the query, watched. */
static PGresult *wh_get_result(struct warehouse *w)
{
	source_wait_begin(&w->watch);
	PGresult *res = PQgetResult(w->pg);
	source_wait_end(&w->watch);
	return res;
}

/* err, or the watcher's error when it cancelled the query (a timeout, a stop). */
static enum jerr wh_cancelled(struct warehouse *w, enum jerr rc, struct jerror *err)
{
	if (!rc || !source_watch_cancelled(&w->watch))
		return rc;
	return source_watch_error(&w->watch, "warehouse diff", err);
}

/* ---- the PostgreSQL dialect, the connector's own (tests check the statements agree) ---- */

struct wh_conn {
	PGconn *pg;
	const char *schema; /* the app's */
};

static void wh_table_info(void *conn, const char *table, const char *K, bool int_key, bool *natural,
			  const char **rowid_col)
{
	struct wh_conn *c = conn;
	const char *v[3] = { c->schema, table, K };
	PGresult *res = PQexecParams(c->pg,
				     "SELECT t.table_type, c.data_type FROM information_schema.tables t "
				     "LEFT JOIN information_schema.columns c ON c.table_schema = "
				     "t.table_schema AND c.table_name = t.table_name AND c.column_name = $3 "
				     "WHERE t.table_schema = $1 AND t.table_name = $2",
				     3, NULL, v, NULL, NULL, 0);
	*natural = false;
	*rowid_col = NULL;
	if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1) {
		const char *tt = PQgetvalue(res, 0, 0), *dt = PQgetvalue(res, 0, 1);
		if (!strcmp(tt, "BASE TABLE"))
			*rowid_col = "ctid";
		if (int_key)
			*natural = !strcmp(dt, "smallint") || !strcmp(dt, "integer") || !strcmp(dt, "bigint");
		else
			*natural = !strcmp(dt, "text") || !strcmp(dt, "character varying");
	}
	PQclear(res);
}

/* A text column: a number mark is compared through the dialect's since_number. */
static bool wh_text_column(void *conn, const char *table, const char *column)
{
	struct wh_conn *c = conn;
	const char *v[3] = { c->schema, table, column };
	bool text = false;
	PGresult *res = PQexecParams(c->pg,
				     "SELECT data_type FROM information_schema.columns WHERE table_schema = $1 "
				     "AND table_name = $2 AND column_name = $3",
				     3, NULL, v, NULL, NULL, 0);
	if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1)
		text = source_pg_text_type(PQgetvalue(res, 0, 0));
	PQclear(res);
	return text;
}

/* The PostgreSQL connector's dialect (source_postgres_dialect) reading a table through a struct wh_conn. */
static struct sql_dialect wh_dialect(void)
{
	struct sql_dialect d = source_postgres_dialect;
	d.table_info = wh_table_info;
	d.text_column = wh_text_column;
	return d;
}

/* ---- small helpers ---- */

static bool local_host(const char *h)
{
	return !strcmp(h, "localhost") || !strcmp(h, "127.0.0.1") || !strcmp(h, "::1");
}

static void add_pg_message(struct strbuf *sb, const char *msg)
{
	size_t start = sb->len;
	for (const char *s = msg ? msg : ""; *s; s++)
		strbuf_addch(sb, *s == '\n' || *s == '\t' ? ' ' : *s);
	while (sb->len > start && sb->buf[sb->len - 1] == ' ')
		strbuf_setlen(sb, sb->len - 1);
}

static enum jerr query_error(PGconn *pg, const PGresult *res, struct jerror *err, enum jerr code,
			     const char *what)
{
	struct strbuf d = STRBUF_INIT;
	const char *msg = res ? PQresultErrorMessage(res) : NULL;
	strbuf_addstr(&d, "PostgreSQL: ");
	add_pg_message(&d, msg && *msg ? msg : PQerrorMessage(pg));
	jerror_set(err, code, "warehouse diff: %s", what);
	jerror_detail(err, "%s", d.buf);
	strbuf_release(&d);
	return code;
}

/* A BYTEA in hex output ("\x0a1b") into arena; false if it is not one. */
static bool bytea_decode(const char *s, struct arena *a, unsigned char **out, size_t *len)
{
	size_t n = strlen(s);
	if (n < 2 || s[0] != '\\' || s[1] != 'x' || (n - 2) % 2)
		return false;
	unsigned char *b = arena_alloc(a, (n - 2) / 2 + 1);
	for (size_t i = 2, k = 0; i < n; i += 2, k++) {
		if (!isxdigit((unsigned char)s[i]) || !isxdigit((unsigned char)s[i + 1]))
			return false;
		b[k] = (unsigned char)(hex_digit_value(s[i]) * 16 + hex_digit_value(s[i + 1]));
	}
	b[(n - 2) / 2] = 0;
	*out = b;
	*len = (n - 2) / 2;
	return true;
}

/* ---- connecting ---- */

/* A connection to the state store's database; readonly: for the query, which writes nothing. */
static PGconn *wh_connect(const char *conninfo, bool readonly, struct strbuf *why)
{
	const char *keys[] = { "connect_timeout", "application_name", "dbname", "client_encoding",
			       "options", NULL };
	/* the source connector's session (postgres.c): values read as text must agree */
	const char *vals[] = { "10", "joey warehouse diff", conninfo, "UTF8",
			       readonly ? "-c TimeZone=UTC -c DateStyle=ISO,YMD -c IntervalStyle=iso_8601 "
					  "-c default_transaction_read_only=on"
					: "-c TimeZone=UTC -c DateStyle=ISO,YMD -c IntervalStyle=iso_8601",
			       NULL };
	PGconn *pg = PQconnectdbParams(keys, vals, 1);
	if (!pg || PQstatus(pg) != CONNECTION_OK) {
		strbuf_addstr(why, "cannot connect to the state store's database: ");
		add_pg_message(why, pg ? PQerrorMessage(pg) : "out of memory");
		PQfinish(pg);
		return NULL;
	}
	return pg;
}

static bool wh_exec_ok(PGconn *pg, const char *sql, int n, const char *const *vals, struct strbuf *why)
{
	PGresult *res = PQexecParams(pg, sql, n, NULL, vals, NULL, NULL, 0);
	ExecStatusType s = PQresultStatus(res);
	bool ok = s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK;
	if (!ok && why)
		add_pg_message(why, PQresultErrorMessage(res));
	PQclear(res);
	return ok;
}

static bool set_search_path(PGconn *pg, const char *schema, struct strbuf *why)
{
	const char *v[1] = { schema };
	return wh_exec_ok(pg, "SELECT pg_catalog.set_config('search_path', pg_catalog.quote_ident($1), false)", 1, v,
			  why);
}

/*
 * Does a unique index on the primary table's key column rule out duplicate keys? Only
 * for a column whose own values are the keys (an integer column for an integer key, a
 * text one for a text key): a cast could make two distinct values one key.
 */
static bool primary_unique(struct warehouse *w, const struct cfg_source *src, const char *key_column, bool int_key)
{
	if (src->is_query || !src->table || !key_column)
		return false;
	const char *v[4] = { w->app_schema, src->table, key_column, int_key ? "t" : "f" };
	PGresult *res = PQexecParams(w->pg,
				     "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_index i JOIN pg_catalog.pg_attribute a "
				     "ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0] "
				     "WHERE i.indrelid = to_regclass(pg_catalog.quote_ident($1) || '.' || "
				     "pg_catalog.quote_ident($2)) AND i.indisunique AND i.indnkeyatts = 1 AND "
				     "i.indpred IS NULL AND i.indexprs IS NULL AND a.attname = $3 AND "
				     "CASE WHEN $4::boolean THEN a.atttypid IN ('int2'::regtype, 'int4'::regtype, "
				     "'int8'::regtype) ELSE a.atttypid IN ('text'::regtype, 'varchar'::regtype) END)",
				     4, NULL, v, NULL, NULL, 0);
	bool unique = PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1 &&
		      !strcmp(PQgetvalue(res, 0, 0), "t");
	PQclear(res);
	return unique;
}

/* ---- open ---- */

static void wh_free(struct warehouse *w)
{
	if (!w)
		return;
	if (w->pg && w->running) {
		PGcancel *cancel = PQgetCancel(w->pg);
		char buf[256];
		if (cancel) {
			PQcancel(cancel, buf, sizeof(buf));
			PQfreeCancel(cancel);
		}
		PGresult *res;
		while ((res = wh_get_result(w)))
			PQclear(res);
	}
	source_watch_unregister(&w->watch);
	if (w->cancel)
		PQfreeCancel(w->cancel);
	PQfinish(w->pg); /* the read-only transaction ends uncommitted: whatever it wrote is undone */
	PQfinish(w->writer);
	free(w->conninfo);
	free(w->schema);
	free(w->app_schema);
	free(w->fp);
	free(w->summary.unchanged);
	free(w->queue);
	arena_release(&w->arena);
	arena_release(&w->queue_arena);
	free(w);
}

/* The first row of the running query: the summary. */
static enum jerr read_summary(struct warehouse *w, struct strbuf *why, bool *usable, struct jerror *err)
{
	PGresult *res = wh_get_result(w);
	enum jerr rc = JERR_OK;
	*usable = false;
	if (PQresultStatus(res) != PGRES_SINGLE_TUPLE) {
		rc = query_error(w->pg, res, err, JERR_SOURCE, "the query failed");
		PQclear(res);
		return wh_cancelled(w, rc, err);
	}
	if (PQnfields(res) != w->n_cols || strcmp(PQgetvalue(res, 0, COL_ORDER), "0")) {
		PQclear(res);
		return jerror_set(err, JERR_SOURCE, "warehouse diff: the query returned no summary row");
	}
	int base = COL_DESTS + WH_DEST_COLS * (int)w->n_dests;
	int64_t v[SUM_UNCHANGED] = { 0 };
	for (int k = 0; k < SUM_UNCHANGED; k++)
		decimal_to_int64(PQgetvalue(res, 0, base + k), strlen(PQgetvalue(res, 0, base + k)), &v[k]);
	w->summary.records = (uint64_t)v[SUM_RECORDS];
	w->summary.orphans = (uint64_t)v[SUM_ORPHANS];
	w->summary.candidates = (uint64_t)v[SUM_CANDIDATES];
	for (size_t j = 0; j < w->n_dests; j++) {
		int64_t u = 0;
		const char *s = PQgetvalue(res, 0, base + SUM_UNCHANGED + (int)j);
		decimal_to_int64(s, strlen(s), &u);
		w->summary.unchanged[j] = (uint64_t)u;
	}
	PQclear(res);
	if (v[SUM_DUPES] > 0) {
		strbuf_addf(why, "the primary source of model \"%s\" has %" PRId64 " duplicate key%s",
			    w->model->id, v[SUM_DUPES], v[SUM_DUPES] == 1 ? "" : "s");
		return JERR_OK;
	}
	w->summary.limited = w->summary.candidates <= WAREHOUSE_CHUNK ||
			     w->summary.candidates * 4 <= w->summary.records;
	*usable = true;
	return JERR_OK;
}

enum jerr warehouse_open(const struct config *cfg, const struct cfg_model *model,
			 struct cfg_destination *const *dests, size_t n_dests, struct state *st,
			 bool write, struct warehouse **out, struct strbuf *why, struct jerror *err)
{
	struct warehouse *w = xcalloc(1, sizeof(*w));
	struct strbuf conninfo = STRBUF_INIT, schema = STRBUF_INIT, extra = STRBUF_INIT;
	struct qbuild q = { STRBUF_INIT, NULL, 0, 0, { 0 } };
	char **stmts = xcalloc(model->n_sources ? model->n_sources : 1, sizeof(char *));
	struct sql_plan plan;
	enum jerr rc = JERR_OK;
	bool usable = false, int_key = false, primary_grouped = false;
	const char *key_column = NULL;
	size_t n_binds = 0;

	(void)cfg;
	*out = NULL;
	strbuf_reset(why);
	arena_init(&w->arena);
	arena_init(&w->queue_arena);
	arena_init(&q.a);
	sql_plan_init(&plan);
	w->model = model;
	w->dests = dests;
	w->n_dests = n_dests;
	w->write = write;
	w->fp = xcalloc(n_dests ? n_dests : 1, sizeof(*w->fp));
	w->summary.unchanged = xcalloc(n_dests ? n_dests : 1, sizeof(uint64_t));

	state_pg_split_url(state_location(st), &conninfo, &schema);
	w->conninfo = strbuf_detach(&conninfo, NULL);
	w->schema = strbuf_detach(&schema, NULL);
	const struct cfg_app *app = model->primary_source->app;
	w->app_schema = xstrdup(wh_opt_or(app, "schema", "public"));

	if (!(w->pg = wh_connect(w->conninfo, true, why)))
		goto out;
	/* the sources' database must be this one */
	const char *host = PQhost(w->pg), *port = PQport(w->pg), *db = PQdb(w->pg);
	const char *ahost = wh_opt_or(app, "host", "localhost"), *aport = wh_opt_or(app, "port", "5432");
	const char *adb = wh_opt_or(app, "database", "");
	host = host && *host ? host : "localhost";
	port = port && *port ? port : "5432";
	if (strcmp(db ? db : "", adb) || strcmp(port, aport) ||
	    (strcmp(host, ahost) && !(local_host(host) && local_host(ahost)))) {
		strbuf_addf(why, "app \"%s\" (%s:%s, database \"%s\") is not the state store's database (%s:%s, "
				 "database \"%s\")",
			    app->id, ahost, aport, adb, host, port, db ? db : "");
		goto out;
	}
	if (!set_search_path(w->pg, w->app_schema, why) ||
	    !wh_exec_ok(w->pg, "BEGIN TRANSACTION READ ONLY", 0, NULL, why))
		goto out;
	{
		int64_t timeout_ms;
		if ((rc = source_timeout_option(app, &timeout_ms, err)))
			goto out;
		w->cancel = PQgetCancel(w->pg);
		source_watch_register(&w->watch, wh_cancel_statement, timeout_ms, app->id);
	}
	{
		struct strbuf t = STRBUF_INIT;
		wh_add_state_table(&t, w->schema, "digests");
		const char *v[1] = { t.buf };
		PGresult *res = PQexecParams(w->pg, "SELECT to_regclass($1) IS NOT NULL", 1, NULL, v, NULL, NULL, 0);
		bool have = PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1 &&
			    !strcmp(PQgetvalue(res, 0, 0), "t");
		PQclear(res);
		strbuf_release(&t);
		if (!have) {
			strbuf_addf(why, "state store schema \"%s\" has no digests table yet (run 'joey state migrate')",
				    w->schema);
			goto out;
		}
	}

	/* the statements: first numbered from $1 to describe them, then for the query */
	struct wh_conn wc = { w->pg, w->app_schema };
	struct sql_dialect d = wh_dialect();
	for (size_t i = 0; i < model->n_sources; i++) {
		const struct cfg_source *src = model->sources[i];
		struct source_read rd = { .digest = true };
		for (int pass = 0; pass < 2; pass++) {
			sql_plan_release(&plan);
			sql_plan_init(&plan);
			plan.param_base = pass ? n_binds : 0;
			plan.unordered = true; /* the query joins them; only reads need the order */
			if ((rc = sql_plan_build(&d, &wc, src, &rd, &plan, err)))
				goto out;
			if (pass) {
				stmts[i] = xstrdup(plan.sql.buf);
				for (size_t b = 0; b < plan.n_binds; b++)
					wh_q_param(&q, arena_strdup(&q.a, plan.binds[b].s));
				n_binds += plan.n_binds;
				continue;
			}
			if (i == 0) {
				int_key = plan.int_key;
				primary_grouped = plan.grouped;
				key_column = plan.key_column;
			}
			strbuf_addf(&extra, "%s\n", plan.sql.buf);
			for (size_t b = 0; b < plan.n_binds; b++)
				strbuf_addf(&extra, "bind %zu %s\n", b, plan.binds[b].s);
			/* the column types: the same text may mean another value in another type */
			source_wait_begin(&w->watch);
			PGresult *res = PQprepare(w->pg, "", plan.sql.buf, 0, NULL);
			if (PQresultStatus(res) == PGRES_COMMAND_OK) {
				PQclear(res);
				res = PQdescribePrepared(w->pg, "");
			}
			source_wait_end(&w->watch);
			if (PQresultStatus(res) != PGRES_COMMAND_OK) {
				strbuf_addf(why, "source \"%s\": ", src->id);
				add_pg_message(why, PQresultErrorMessage(res));
				PQclear(res);
				goto out;
			}
			strbuf_addstr(&extra, "types");
			for (int c = 0; c < PQnfields(res); c++)
				strbuf_addf(&extra, " %u", (unsigned)PQftype(res, c));
			strbuf_addch(&extra, '\n');
			PQclear(res);
		}
	}
	for (size_t j = 0; j < n_dests; j++)
		warehouse_fingerprint(dests[j], (struct slice){ extra.buf, extra.len }, w->fp[j]);

	wh_build_query(w, &q, stmts, int_key, !primary_grouped && !primary_unique(w, model->primary_source, key_column, int_key));
	log_debug("warehouse diff query for model \"%s\": %s", model->id, q.sql.buf);
	if (!PQsendQueryParams(w->pg, q.sql.buf, (int)q.n_vals, NULL, q.vals, NULL, NULL, 0)) {
		rc = query_error(w->pg, NULL, err, JERR_SOURCE, "cannot send the query");
		goto out;
	}
	w->running = true;
	PQsetSingleRowMode(w->pg);
	if ((rc = read_summary(w, why, &usable, err)) || !usable)
		goto out;
	*out = w;
	w = NULL;
out:
	for (size_t i = 0; i < model->n_sources; i++)
		free(stmts[i]);
	free(stmts);
	sql_plan_release(&plan);
	strbuf_release(&q.sql);
	free(q.vals);
	arena_release(&q.a);
	strbuf_release(&extra);
	wh_free(w);
	return rc;
}

const struct wh_summary *warehouse_summary(const struct warehouse *w)
{
	return &w->summary;
}

/* ---- candidates ---- */

static bool col_bool(const PGresult *res, int col)
{
	return !PQgetisnull(res, 0, col) && PQgetvalue(res, 0, col)[0] == 't';
}

static enum jerr parse_candidate(struct warehouse *w, PGresult *res, struct wh_candidate *c,
				 struct wh_dest_row *rows, struct jerror *err)
{
	struct arena *a = &w->arena;
	unsigned char *b;
	size_t n;
	const char *kk = PQgetvalue(res, 0, COL_KIND), *ki = PQgetvalue(res, 0, COL_INT);

	memset(c, 0, sizeof(*c));
	c->key.is_int = kk[0] == '0';
	if (c->key.is_int) {
		if (!decimal_to_int64(ki, strlen(ki), &c->key.i))
			goto bad;
		c->key.text.ptr = sql_fmt_i64(a, c->key.i, &c->key.text.len);
	} else {
		if (!bytea_decode(PQgetvalue(res, 0, COL_TEXT), a, &b, &n))
			goto bad;
		c->key.text = (struct slice){ (const char *)b, n };
	}
	c->in_source = col_bool(res, COL_IN_SOURCE);
	c->dests = rows;
	for (size_t j = 0; j < w->n_dests; j++) {
		struct wh_dest_row *r = &rows[j];
		int base = COL_DESTS + WH_DEST_COLS * (int)j;
		memset(r, 0, sizeof(*r));
		r->present = col_bool(res, base + DC_PRESENT);
		if (r->present) {
			const char *p = PQgetvalue(res, 0, base + DC_PAYLOAD);
			size_t plen = (size_t)PQgetlength(res, 0, base + DC_PAYLOAD);
			int64_t att = 0;
			r->row.key = c->key;
			r->row.payload = (struct slice){ arena_strndup(a, p, plen), plen };
			if (!bytea_decode(PQgetvalue(res, 0, base + DC_HASH), a, &b, &n) || n != STATE_HASH_LEN)
				goto bad;
			memcpy(r->row.hash, b, STATE_HASH_LEN);
			r->row.in_scope = col_bool(res, base + DC_IN_SCOPE);
			r->row.pending = col_bool(res, base + DC_PENDING);
			decimal_to_int64(PQgetvalue(res, 0, base + DC_ATTEMPTS),
					 (size_t)PQgetlength(res, 0, base + DC_ATTEMPTS), &att);
			r->row.attempts = (int)att;
			r->row.confirmed = !state_row_placeholder(&r->row);
			r->row.braze_exists = -1;
		}
		r->has_digest = col_bool(res, base + DC_GPRESENT);
		if (r->has_digest) {
			if (!bytea_decode(PQgetvalue(res, 0, base + DC_GDIGEST), a, &b, &n))
				goto bad;
			r->digest = (struct slice){ (const char *)b, n };
			r->digest_in_scope = !PQgetisnull(res, 0, base + DC_GHASH);
			if (r->digest_in_scope) {
				if (!bytea_decode(PQgetvalue(res, 0, base + DC_GHASH), a, &b, &n) || n != STATE_HASH_LEN)
					goto bad;
				memcpy(r->digest_hash, b, STATE_HASH_LEN);
			}
		}
	}
	return JERR_OK;
bad:
	return jerror_set(err, JERR_SOURCE, "warehouse diff: malformed row from the query");
}

enum jerr warehouse_next_chunk(struct warehouse *w, const struct wh_candidate **cands, size_t *n,
			       struct jerror *err)
{
	size_t bytes = 0;
	enum jerr rc = JERR_OK;

	arena_reset(&w->arena);
	if (!w->cands) {
		w->cands = xcalloc(WAREHOUSE_CHUNK, sizeof(*w->cands));
		w->rows = xcalloc((size_t)WAREHOUSE_CHUNK * (w->n_dests ? w->n_dests : 1), sizeof(*w->rows));
	}
	w->n_cands = 0;
	while (w->running && w->n_cands < WAREHOUSE_CHUNK && bytes < WH_CHUNK_BYTES) {
		PGresult *res = wh_get_result(w);
		if (!res) {
			w->running = false;
			break;
		}
		ExecStatusType s = PQresultStatus(res);
		if (s == PGRES_TUPLES_OK && !PQntuples(res)) { /* the end of the rows */
			PQclear(res);
			continue;
		}
		if (s != PGRES_SINGLE_TUPLE) {
			rc = query_error(w->pg, res, err, JERR_SOURCE, "the query failed");
			PQclear(res);
			return wh_cancelled(w, rc, err);
		}
		rc = parse_candidate(w, res, &w->cands[w->n_cands],
				     &w->rows[w->n_cands * (w->n_dests ? w->n_dests : 1)], err);
		for (size_t j = 0; j < w->n_dests; j++)
			bytes += (size_t)PQgetlength(res, 0, COL_DESTS + WH_DEST_COLS * (int)j + DC_PAYLOAD);
		PQclear(res);
		if (rc)
			return rc;
		w->n_cands++;
	}
	*cands = w->cands;
	*n = w->n_cands;
	return JERR_OK;
}

/* ---- digests ---- */

static enum jerr flush_digests(struct warehouse *w, struct jerror *err)
{
	struct strbuf sql = STRBUF_INIT, why = STRBUF_INIT;
	enum jerr rc = JERR_OK;
	size_t np = 0, n = w->n_queue;
	const char **vals;
	int *lens, *fmts;
	char (*nums)[24];
	char now[24];

	if (!n)
		return JERR_OK;
	if (!w->writer) {
		if (!(w->writer = wh_connect(w->conninfo, false, &why))) {
			rc = jerror_set(err, JERR_STATE, "warehouse diff: %s", why.buf);
			strbuf_release(&why);
			return rc;
		}
	}
	vals = xcalloc(n * 7, sizeof(*vals));
	lens = xcalloc(n * 7, sizeof(*lens));
	fmts = xcalloc(n * 7, sizeof(*fmts));
	nums = xcalloc(n * 3, sizeof(*nums));
	{
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		snprintf(now, sizeof(now), "%" PRId64, (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
	}
	strbuf_addstr(&sql, "INSERT INTO ");
	wh_add_state_table(&sql, w->schema, "digests");
	strbuf_addstr(&sql, " (dest_id, key_kind, key_int, key_text, digest, hash, updated_at) VALUES ");
	for (size_t i = 0; i < n; i++) {
		const struct wh_pending_digest *d = &w->queue[i];
		size_t b = np;
		strbuf_addf(&sql, "%s($%zu, $%zu, $%zu, $%zu, $%zu, $%zu, $%zu)", i ? ", " : "", b + 1, b + 2,
			    b + 3, b + 4, b + 5, b + 6, b + 7);
		vals[np++] = w->dests[d->dest]->id;
		snprintf(nums[i * 3], 24, "%d", d->key.is_int ? 0 : 1);
		vals[np++] = nums[i * 3];
		snprintf(nums[i * 3 + 1], 24, "%" PRId64, d->key.is_int ? d->key.i : 0);
		vals[np++] = nums[i * 3 + 1];
		fmts[np] = 1;
		lens[np] = d->key.is_int ? 0 : (int)d->key.text.len;
		vals[np++] = d->key.is_int ? "" : d->key.text.ptr;
		fmts[np] = 1;
		lens[np] = (int)d->digest_len;
		vals[np++] = (const char *)d->digest;
		fmts[np] = 1;
		lens[np] = STATE_HASH_LEN;
		vals[np++] = d->has_hash ? (const char *)d->hash : NULL;
		vals[np++] = now;
	}
	strbuf_addstr(&sql, " ON CONFLICT (dest_id, key_kind, key_int, key_text) DO UPDATE SET digest = "
			    "excluded.digest, hash = excluded.hash, updated_at = excluded.updated_at");
	PGresult *res = PQexecParams(w->writer, sql.buf, (int)np, NULL, vals, lens, fmts, 0);
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		rc = query_error(w->writer, res, err, JERR_STATE, "cannot store the digests");
	} else {
		w->written += n;
	}
	PQclear(res);
	free(vals);
	free(lens);
	free(fmts);
	free(nums);
	strbuf_release(&sql);
	strbuf_release(&why);
	w->n_queue = 0;
	arena_reset(&w->queue_arena);
	return rc;
}

enum jerr warehouse_digest(struct warehouse *w, const struct wh_candidate *c, size_t dest_index,
			   const struct record *rec, const unsigned char *hash, struct jerror *err)
{
	const struct wh_dest_row *r = &c->dests[dest_index];
	const struct cfg_model *m = w->model;
	size_t len = STATE_HASH_LEN + WH_DIGEST_LEN * m->n_sources;
	unsigned char *dg;

	if (!w->write || rec->n_invalid || !rec->digests)
		return JERR_OK;
	dg = arena_alloc(&w->queue_arena, len);
	memcpy(dg, w->fp[dest_index], STATE_HASH_LEN);
	for (size_t i = 0; i < m->n_sources; i++) {
		unsigned char *o = dg + STATE_HASH_LEN + WH_DIGEST_LEN * i;
		struct slice s = rec->digests[i];
		if (!s.len) {
			memset(o, 0, WH_DIGEST_LEN);
			continue;
		}
		if (s.len != 2 * WH_DIGEST_LEN)
			return JERR_OK; /* not a digest: write nothing, compare again next time */
		for (size_t k = 0; k < WH_DIGEST_LEN; k++) {
			if (!isxdigit((unsigned char)s.ptr[2 * k]) || !isxdigit((unsigned char)s.ptr[2 * k + 1]))
				return JERR_OK;
			o[k] = (unsigned char)(hex_digit_value(s.ptr[2 * k]) * 16 + hex_digit_value(s.ptr[2 * k + 1]));
		}
	}
	/* the same row is stored already: nothing to write */
	if (r->has_digest && r->digest.len == len && !memcmp(r->digest.ptr, dg, len) &&
	    r->digest_in_scope == (hash != NULL) &&
	    (!hash || !memcmp(r->digest_hash, hash, STATE_HASH_LEN)))
		return JERR_OK;
	if (!w->queue)
		w->queue = xcalloc(WH_BATCH, sizeof(*w->queue));
	struct wh_pending_digest *d = &w->queue[w->n_queue++];
	d->dest = dest_index;
	d->key = c->key;
	d->key.text.ptr = arena_strndup(&w->queue_arena, c->key.text.ptr, c->key.text.len);
	d->digest = dg;
	d->digest_len = len;
	d->has_hash = hash != NULL;
	if (hash)
		memcpy(d->hash, hash, STATE_HASH_LEN);
	if (w->n_queue == WH_BATCH)
		return flush_digests(w, err);
	return JERR_OK;
}

enum jerr warehouse_finish(struct warehouse *w, struct jerror *err)
{
	return flush_digests(w, err);
}

uint64_t warehouse_digests_written(const struct warehouse *w)
{
	return w->written;
}

void warehouse_close(struct warehouse *w)
{
	if (!w)
		return;
	free(w->cands);
	free(w->rows);
	wh_free(w);
}

enum jerr warehouse_describe(const struct cfg_source *src, struct state *st, struct strbuf *out,
			     struct jerror *err)
{
	struct strbuf conninfo = STRBUF_INIT, schema = STRBUF_INIT, why = STRBUF_INIT;
	const char *app_schema = wh_opt_or(src->app, "schema", "public");
	enum jerr rc = JERR_OK;
	PGconn *pg;

	state_pg_split_url(state_location(st), &conninfo, &schema);
	pg = wh_connect(conninfo.buf, true, &why);
	if (!pg || !set_search_path(pg, app_schema, &why)) {
		rc = jerror_set(err, JERR_SOURCE, "warehouse diff: %s", why.buf);
	} else {
		struct wh_conn wc = { pg, app_schema };
		struct sql_dialect d = wh_dialect();
		rc = sql_describe_source(&d, &wc, src, out, err);
	}
	PQfinish(pg);
	strbuf_release(&conninfo);
	strbuf_release(&schema);
	strbuf_release(&why);
	return rc;
}

