/*
 * runs.c: the run history and the error ledger of a PostgreSQL state store: a run's
 * start, progress and end, abandoned runs, which destinations are running, ledger
 * entries, and the two listings (newest first, in batches of PG_LIST_BATCH). Owns
 * nothing past a call; rows handed to a listing's callback borrow the result until
 * it returns. Called through state_pg (ops.c).
 */
#include "state/pg/pg_internal.h"

/* A run's counts as parameters, each at most INT64_MAX (S_RUN_FINISH, S_RUN_PROGRESS). */
static void p_counts(struct params *p, const struct run_counts *c)
{
	const uint64_t counts[] = { c->created, c->updated, c->deleted, c->unsubscribed,
				    c->unchanged, c->failed, c->skipped, c->requests,
				    c->retries, c->throttled, c->data_points };
	for (size_t i = 0; i < ARRAY_SIZE(counts); i++)
		p_int(p, counts[i] > INT64_MAX ? INT64_MAX : (int64_t)counts[i]);
}

enum jerr pg_run_start(struct state *st, const char *dest_id, const char *kind,
		       int64_t now, int64_t *run_id, struct jerror *err)
{
	struct params p = { 0 };
	p_text(&p, dest_id);
	p_text(&p, kind);
	p_int(&p, now);
	return pg_run_int(ps_of(st), S_RUN_START, &p, run_id, err,
			  "could not record the start of a %s of destination \"%s\" in state store \"%s\"",
			  kind, dest_id, st->path);
}

enum jerr pg_run_finish(struct state *st, int64_t run_id, enum run_status status,
			const struct run_counts *c, const char *error, int64_t now,
			bool *found, struct jerror *err)
{
	struct strbuf clean = STRBUF_INIT;
	struct params p = { 0 };
	enum jerr ret;

	p_int(&p, run_id);
	p_text(&p, run_status_name(status));
	p_int(&p, now);
	p_counts(&p, c);
	p_text(&p, error ? pg_clean_text(error, &clean) : NULL);
	ret = pg_run_changed(ps_of(st), S_RUN_FINISH, &p, found, err,
			     "could not record the end of run %" PRId64 " in state store \"%s\"", run_id,
			     st->path);
	strbuf_release(&clean);
	return ret;
}

/* pg_abandon_keys' marking of one journal key (state_journal_key_fn). */
struct abandon_keys {
	struct pg_state *ps;
	const char *dest_id;
	int64_t now, first_start;
	size_t n;
	enum jerr rc;
	struct jerror *err;
};

/* More keys than this: every record, in one statement, rather than a round trip per key. */
#define ABANDON_MAX_KEYS 200000

static int mark_key(void *vctx, const struct rkey *key)
{
	struct abandon_keys *a = vctx;
	struct params p = { 0 };
	if (++a->n > ABANDON_MAX_KEYS)
		return 1;
	p_text(&p, a->dest_id);
	p_int(&p, a->now);
	p_key(&p, key);
	p_int(&p, a->first_start);
	a->rc = pg_run_write(a->ps, S_RECORD_ABANDON_KEY, &p, NULL, a->err,
			     "could not mark the records of an unfinished run pending in state store \"%s\"",
			     a->ps->base.path);
	return a->rc != JERR_OK;
}

enum jerr pg_abandon_keys(struct state *st, const char *dest_id, int64_t now, int64_t first_start,
			  const int64_t (*runs)[2], size_t n, bool *narrowed, struct jerror *err)
{
	struct abandon_keys a = { ps_of(st), dest_id, now, first_start, 0, JERR_OK, err };
	bool own = !pg_in_transaction(st);
	enum jerr rc = own ? pg_begin(st, err) : JERR_OK;
	*narrowed = !rc;
	for (size_t i = 0; i < n && *narrowed; i++)
		*narrowed = state_journal_read(st, runs[i][0], runs[i][1], mark_key, &a) == JOURNAL_OK;
	if (!rc)
		rc = a.rc;
	if (own && !rc)
		rc = pg_commit(st, err);
	else if (own)
		pg_rollback(st);
	return rc;
}

enum jerr pg_runs_abandon(struct state *st, const char *dest_id, int64_t now, bool all_records, uint64_t *n,
			  struct jerror *err)
{
	struct params p = { 0 };
	enum jerr ret;
	p_text(&p, dest_id);
	p_int(&p, now);
	/* first the records, while the runs still say running: a crash between the two
	 * statements leaves both to do again */
	if (all_records &&
	    (ret = pg_run_write(ps_of(st), S_RECORDS_ABANDON, &p, NULL, err,
				"could not mark the records of an unfinished run pending in state store \"%s\"",
				st->path)))
		return ret;
	return pg_run_write(ps_of(st), S_RUNS_ABANDON, &p, n, err,
			    "could not update the run history of state store \"%s\"", st->path);
}

enum jerr pg_run_progress(struct state *st, int64_t run_id, const struct run_counts *c,
			  struct jerror *err)
{
	struct params p = { 0 };
	p_int(&p, run_id);
	p_counts(&p, c);
	return pg_run_write(ps_of(st), S_RUN_PROGRESS, &p, NULL, err,
			    "could not record the progress of run %" PRId64 " in state store \"%s\"", run_id,
			    st->path);
}

enum jerr pg_runs_running(struct state *st, struct strbuf *ids, size_t *n, struct jerror *err)
{
	struct params p = { 0 };
	PGresult *res;
	enum jerr ret = pg_run(ps_of(st), S_RUNS_RUNNING, &p, &res, err,
			       "could not read the run history of state store \"%s\"", st->path);
	*n = 0;
	if (ret)
		return ret;
	for (int i = 0; i < PQntuples(res); i++) {
		const char *id = PQgetvalue(res, i, 0);
		strbuf_add(ids, id, strlen(id) + 1);
		(*n)++;
	}
	PQclear(res);
	return JERR_OK;
}

enum jerr pg_ledger_add(struct state *st, int64_t run_id, const char *dest_id,
			const struct rkey *key, const char *error, int attempts, int64_t now,
			struct jerror *err)
{
	struct strbuf clean = STRBUF_INIT;
	struct params p = { 0 };
	enum jerr ret;
	if (run_id > 0)
		p_int(&p, run_id);
	else
		p_text(&p, NULL);
	p_text(&p, dest_id);
	p_key(&p, key);
	p_text(&p, pg_clean_text(error, &clean));
	p_int(&p, attempts);
	p_int(&p, now);
	ret = pg_write_record(ps_of(st), S_LEDGER_ADD, &p, "add to the error ledger the", dest_id, key,
			      err);
	strbuf_release(&clean);
	return ret;
}

/* A listing's filters: the parameters after $1 (id below) and $2 (batch size), in order. */
struct list_args {
	const char *dest_id;    /* NULL: any */
	const struct rkey *key; /* NULL: any */
	int64_t run_id;         /* <= 0: any */
};

/* Row i of res handed to the listing's callback; *id is the row's id. */
typedef enum jerr (*list_row_fn)(void *ctx, const PGresult *res, int i, int64_t *id,
				 struct jerror *err);

/*
 * The listings read newest first in batches of PG_LIST_BATCH (id below the last one
 * read), so memory is bounded and the callback may use the connection between rows.
 * sql selects id first, with $1 the id bound and $2 the batch size, then a's filters;
 * at most limit rows (0: all) go to row. what names the listing in messages.
 */
static enum jerr list_newest(struct pg_state *ps, const char *sql, const struct list_args *a,
			     size_t limit, list_row_fn row, void *ctx, const char *what,
			     struct jerror *err)
{
	int64_t last = INT64_MAX;
	size_t seen = 0;
	enum jerr ret = JERR_OK;

	for (;;) {
		struct params p = { 0 };
		size_t want = PG_LIST_BATCH;
		PGresult *res;
		int n;
		if (limit && limit - seen < want)
			want = limit - seen;
		if (!want)
			break;
		p_int(&p, last);
		p_int(&p, (int64_t)want);
		if (a->dest_id)
			p_text(&p, a->dest_id);
		if (a->key)
			p_key(&p, a->key);
		if (a->run_id > 0)
			p_int(&p, a->run_id);
		if ((ret = pg_sql_run(ps, sql, &p, &res, err, "could not list %s in state store \"%s\"",
				      what, ps->base.path)))
			break;
		n = PQntuples(res);
		for (int i = 0; i < n && !ret; i++) {
			ret = row(ctx, res, i, &last, err);
			seen++;
		}
		PQclear(res);
		if (ret || n < (int)want)
			break;
	}
	return ret;
}

struct runs_ctx {
	state_run_fn fn;
	void *ctx;
};

static enum jerr runs_row(void *ctx, const PGresult *res, int i, int64_t *id, struct jerror *err)
{
	struct runs_ctx *c = ctx;
	struct state_run_info r = { 0 };
	uint64_t *counts[] = { &r.counts.created, &r.counts.updated, &r.counts.deleted,
			       &r.counts.unsubscribed, &r.counts.unchanged,
			       &r.counts.failed, &r.counts.skipped, &r.counts.requests,
			       &r.counts.retries, &r.counts.throttled,
			       &r.counts.data_points };
	r.id = *id = get_int(res, i, 0);
	r.dest_id = PQgetvalue(res, i, 1);
	r.kind = PQgetvalue(res, i, 2);
	r.status = state_run_status_parse(PQgetvalue(res, i, 3));
	r.started_at = get_int(res, i, 4);
	r.finished_at = get_int(res, i, 5);
	for (size_t k = 0; k < ARRAY_SIZE(counts); k++) {
		int64_t v = get_int(res, i, 6 + (int)k);
		*counts[k] = v > 0 ? (uint64_t)v : 0;
	}
	r.error = PQgetisnull(res, i, 17) ? NULL : PQgetvalue(res, i, 17);
	return c->fn(c->ctx, &r, err);
}

enum jerr pg_runs_list(struct state *st, const char *dest_id, size_t limit,
		       state_run_fn fn, void *ctx, struct jerror *err)
{
	enum jerr fr = pg_flush_puts(ps_of(st), err);
	if (fr)
		return fr;
	struct strbuf sql = STRBUF_INIT;
	struct list_args a = { dest_id, NULL, 0 };
	struct runs_ctx c = { fn, ctx };
	enum jerr ret;

	strbuf_addstr(&sql, "SELECT " STATE_RUN_COLUMNS " FROM runs WHERE id < $1");
	if (dest_id)
		strbuf_addstr(&sql, " AND dest_id = $3");
	strbuf_addstr(&sql, " ORDER BY id DESC LIMIT $2");
	ret = list_newest(ps_of(st), sql.buf, &a, limit, runs_row, &c, "runs", err);
	strbuf_release(&sql);
	return ret;
}

struct ledger_ctx {
	state_ledger_fn fn;
	void *ctx;
	struct strbuf keytext; /* the key of the row being handed on */
};

static enum jerr ledger_row(void *ctx, const PGresult *res, int i, int64_t *id,
			    struct jerror *err)
{
	struct ledger_ctx *c = ctx;
	struct state_ledger_entry e = { 0 };
	char keybuf[STATE_KEYBUF_SIZE];
	e.id = *id = get_int(res, i, 0);
	e.run_id = get_int(res, i, 1);
	e.dest_id = PQgetvalue(res, i, 2);
	e.key.is_int = get_int(res, i, 3) == 0;
	strbuf_reset(&c->keytext);
	if (e.key.is_int) {
		int kn;
		e.key.i = get_int(res, i, 4);
		kn = snprintf(keybuf, sizeof(keybuf), "%" PRId64, e.key.i);
		e.key.text = (struct slice){ keybuf, (size_t)kn };
	} else {
		get_bytes(res, i, 5, &c->keytext);
		e.key.text = (struct slice){ c->keytext.buf, c->keytext.len };
	}
	e.error = PQgetvalue(res, i, 6);
	e.attempts = (int)get_int(res, i, 7);
	e.at = get_int(res, i, 8);
	return c->fn(c->ctx, &e, err);
}

enum jerr pg_ledger_list(struct state *st, const char *dest_id, int64_t run_id,
			 const struct rkey *key, size_t limit, state_ledger_fn fn, void *ctx,
			 struct jerror *err)
{
	enum jerr fr = pg_flush_puts(ps_of(st), err);
	if (fr)
		return fr;
	struct strbuf sql = STRBUF_INIT;
	struct list_args a = { dest_id, key, run_id };
	struct ledger_ctx c = { fn, ctx, STRBUF_INIT };
	int argn = 3;
	enum jerr ret;

	strbuf_addstr(&sql, "SELECT id, run_id, dest_id, key_kind, key_int, key_text, error,"
			    " attempts, at FROM ledger WHERE id < $1");
	if (dest_id)
		strbuf_addf(&sql, " AND dest_id = $%d", argn++);
	if (key) {
		strbuf_addf(&sql, " AND key_kind = $%d AND key_int = $%d AND key_text = $%d", argn,
			    argn + 1, argn + 2);
		argn += 3;
	}
	if (run_id > 0)
		strbuf_addf(&sql, " AND run_id = $%d", argn++);
	strbuf_addstr(&sql, " ORDER BY id DESC LIMIT $2");
	ret = list_newest(ps_of(st), sql.buf, &a, limit, ledger_row, &c, "the error ledger", err);
	strbuf_release(&sql);
	strbuf_release(&c.keytext);
	return ret;
}
