/*
 * query.c: running a statement of the PostgreSQL state store and turning a failure
 * into a message: pg_run (a fixed statement, prepared once per connection, whose rows
 * are read), pg_run_write (affected rows only), pg_run_int (one number), pg_sql_run
 * (SQL built at run time), pg_exec_sql; pg_error and pg_clean_text for messages;
 * pg_decode_row for a record row. Owns nothing: results go to the caller, who
 * PQclears them. Called by every other file of src/state/pg/.
 */
#include <stdarg.h>

#include "base/xalloc.h"
#include "state/pg/pg_internal.h"

/* ---- messages ---- */


/*
 * pg_error with the caller's message as a va_list: the server's or libpq's message and
 * SQLSTATE are the detail.
 */
static enum jerr pg_verror(struct pg_state *ps, const PGresult *res, struct jerror *err, const char *fmt,
			   va_list ap) JOEY_PRINTF(4, 0);
static enum jerr pg_verror(struct pg_state *ps, const PGresult *res, struct jerror *err,
			   const char *fmt, va_list ap)
{
	struct strbuf msg = STRBUF_INIT, detail = STRBUF_INIT;
	const char *sqlstate = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	const char *primary = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
	const char *more = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL) : NULL;
	enum jerr code = JERR_STATE;

	strbuf_vaddf(&msg, fmt, ap);
	strbuf_addstr(&detail, "PostgreSQL: ");
	if (primary) {
		pgmsg_add(&detail, primary);
		if (more) {
			strbuf_addstr(&detail, " (");
			pgmsg_add(&detail, more);
			strbuf_addstr(&detail, ")");
		}
	} else {
		pgmsg_add(&detail, PQerrorMessage(ps->pg));
	}
	if (sqlstate)
		strbuf_addf(&detail, " (SQLSTATE %s)", sqlstate);

	if (!sqlstate && PQstatus(ps->pg) != CONNECTION_OK) {
		jerror_set(err, code, "%s: lost the connection to the server", msg.buf);
		jerror_detail(err, "%s", detail.buf);
		jerror_hint(err, "check that the PostgreSQL server at %s:%s is running and "
				 "reachable; what was committed before stays intact",
			    ps->host, ps->port);
	} else if (sqlstate && !strcmp(sqlstate, "53100")) {
		jerror_set(err, code, "%s: the disk is full", msg.buf);
		jerror_detail(err, "%s", detail.buf);
		jerror_hint(err, "free space on the PostgreSQL server; what was committed before "
				 "stays intact, and the next run re-sends the rest");
	} else if (sqlstate && (!strcmp(sqlstate, "55P03") || !strcmp(sqlstate, "40001") ||
				!strcmp(sqlstate, "40P01"))) {
		code = JERR_STATE_BUSY;
		jerror_set(err, code, "%s: it is locked by another process", msg.buf);
		jerror_detail(err, "%s (waited up to %d ms)", detail.buf, STATE_BUSY_TIMEOUT_MS);
		jerror_hint(err, "another joey process is writing the same rows; try again when "
				 "it is done");
	} else if (sqlstate && !strcmp(sqlstate, "25006")) {
		jerror_set(err, code, "%s: the state store is read-only", msg.buf);
		jerror_detail(err, "%s", detail.buf);
		jerror_hint(err, "connect to the primary server, not a standby");
	} else if (sqlstate && !strcmp(sqlstate, "42501")) {
		jerror_set(err, code, "%s: permission denied", msg.buf);
		jerror_detail(err, "%s", detail.buf);
		jerror_hint(err, "the user needs to own schema \"%s\" in database \"%s\" (or be "
				 "allowed to create it)", ps->schema, ps->database);
	} else {
		jerror_set(err, code, "%s", msg.buf);
		jerror_detail(err, "%s", detail.buf);
	}
	strbuf_release(&msg);
	strbuf_release(&detail);
	return code;
}


enum jerr pg_error(struct pg_state *ps, const PGresult *res, struct jerror *err,
		   const char *fmt, ...)
{
	va_list ap;
	enum jerr code;

	va_start(ap, fmt);
	code = pg_verror(ps, res, err, fmt, ap);
	va_end(ap);
	return code;
}

/* Copy s, replacing NUL and invalid UTF-8 by '?' (messages only; PostgreSQL refuses both). */
const char *pg_clean_text(const char *s, struct strbuf *out)
{
	const unsigned char *p = (const unsigned char *)s;
	strbuf_reset(out);
	while (*p) {
		int n = *p < 0x80 ? 1 : (*p >> 5) == 6 ? 2 : (*p >> 4) == 14 ? 3 : (*p >> 3) == 30 ? 4 : 0;
		bool ok = n > 0;
		for (int i = 1; ok && i < n; i++)
			ok = (p[i] & 0xc0) == 0x80;
		if (ok && n == 2 && *p < 0xc2)
			ok = false; /* overlong */
		if (ok && n == 3 && ((*p == 0xe0 && p[1] < 0xa0) || (*p == 0xed && p[1] >= 0xa0)))
			ok = false; /* overlong, surrogate */
		if (ok && n == 4 && ((*p == 0xf0 && p[1] < 0x90) || *p > 0xf4 || (*p == 0xf4 && p[1] >= 0x90)))
			ok = false;
		if (!ok) {
			strbuf_addch(out, '?');
			p++;
			continue;
		}
		strbuf_add(out, (const char *)p, (size_t)n);
		p += n;
	}
	return out->buf;
}


/* ---- running statements ---- */

/* pg_run with the caller's message as a va_list (read only on failure). */
static enum jerr pg_vrun(struct pg_state *ps, enum stmt_id id, const struct params *p, PGresult **res,
			 struct jerror *err, const char *fmt, va_list ap) JOEY_PRINTF(6, 0);
static enum jerr pg_vrun(struct pg_state *ps, enum stmt_id id, const struct params *p,
			 PGresult **res, struct jerror *err, const char *fmt, va_list ap)
{
	char name[16];
	PGresult *r = NULL;
	enum jerr ret;

	*res = NULL;
	if ((ret = pg_flush_puts(ps, err)))
		return ret;
	snprintf(name, sizeof(name), "joey_s%d", (int)id);
	if (!ps->prepared[id]) {
		r = PQprepare(ps->pg, name, pg_stmts[id].sql, pg_stmts[id].n_params, NULL);
		if (res_ok(r)) {
			ps->prepared[id] = true;
			PQclear(r);
			r = NULL;
		}
	}
	if (ps->prepared[id]) {
		r = PQexecPrepared(ps->pg, name, p->n, p->v, p->len, p->fmt, 0);
		if (res_ok(r)) {
			*res = r;
			return JERR_OK;
		}
	}
	ret = pg_verror(ps, r, err, fmt, ap);
	PQclear(r);
	return ret;
}

enum jerr pg_run(struct pg_state *ps, enum stmt_id id, const struct params *p, PGresult **res,
		 struct jerror *err, const char *fmt, ...)
{
	va_list ap;
	enum jerr ret;

	va_start(ap, fmt);
	ret = pg_vrun(ps, id, p, res, err, fmt, ap);
	va_end(ap);
	return ret;
}

/* pg_vrun for a statement whose rows are not read: its affected rows into *changed (NULL: not wanted). */
static enum jerr pg_vrun_write(struct pg_state *ps, enum stmt_id id, const struct params *p, uint64_t *changed,
			       struct jerror *err, const char *fmt, va_list ap) JOEY_PRINTF(6, 0);
static enum jerr pg_vrun_write(struct pg_state *ps, enum stmt_id id, const struct params *p, uint64_t *changed,
			       struct jerror *err, const char *fmt, va_list ap)
{
	PGresult *res;
	enum jerr ret = pg_vrun(ps, id, p, &res, err, fmt, ap);

	if (!ret && changed)
		*changed = changes(res);
	PQclear(res);
	return ret;
}

enum jerr pg_run_write(struct pg_state *ps, enum stmt_id id, const struct params *p,
		       uint64_t *changed, struct jerror *err, const char *fmt, ...)
{
	va_list ap;
	enum jerr ret;

	va_start(ap, fmt);
	ret = pg_vrun_write(ps, id, p, changed, err, fmt, ap);
	va_end(ap);
	return ret;
}

enum jerr pg_run_changed(struct pg_state *ps, enum stmt_id id, const struct params *p, bool *changed,
			 struct jerror *err, const char *fmt, ...)
{
	uint64_t n;
	va_list ap;
	enum jerr ret;

	va_start(ap, fmt);
	ret = pg_vrun_write(ps, id, p, &n, err, fmt, ap);
	va_end(ap);
	if (!ret)
		*changed = n > 0;
	return ret;
}

enum jerr pg_run_int(struct pg_state *ps, enum stmt_id id, const struct params *p, int64_t *v,
		     struct jerror *err, const char *fmt, ...)
{
	PGresult *res;
	va_list ap;
	enum jerr ret;

	va_start(ap, fmt);
	ret = pg_vrun(ps, id, p, &res, err, fmt, ap);
	va_end(ap);
	if (ret)
		return ret;
	*v = PQntuples(res) == 1 ? get_int(res, 0, 0) : 0;
	PQclear(res);
	return JERR_OK;
}

/* pg_vrun for a statement that reads at most one row: a result without rows cleared, *row NULL. */
static enum jerr pg_vrun_row(struct pg_state *ps, enum stmt_id id, const struct params *p, PGresult **row,
			     struct jerror *err, const char *fmt, va_list ap) JOEY_PRINTF(6, 0);
static enum jerr pg_vrun_row(struct pg_state *ps, enum stmt_id id, const struct params *p, PGresult **row,
			     struct jerror *err, const char *fmt, va_list ap)
{
	enum jerr ret = pg_vrun(ps, id, p, row, err, fmt, ap);

	if (!ret && PQntuples(*row) == 0) {
		PQclear(*row);
		*row = NULL;
	}
	return ret;
}

enum jerr pg_run_row(struct pg_state *ps, enum stmt_id id, const struct params *p, PGresult **row,
		     struct jerror *err, const char *fmt, ...)
{
	va_list ap;
	enum jerr ret;

	va_start(ap, fmt);
	ret = pg_vrun_row(ps, id, p, row, err, fmt, ap);
	va_end(ap);
	return ret;
}

enum jerr pg_run_key(struct pg_state *ps, enum stmt_id id, const char *key, PGresult **row,
		     struct jerror *err, const char *fmt, ...)
{
	struct params p = { 0 };
	va_list ap;
	enum jerr ret;

	p_text(&p, key);
	va_start(ap, fmt);
	ret = pg_vrun_row(ps, id, &p, row, err, fmt, ap);
	va_end(ap);
	return ret;
}

enum jerr pg_sql_run(struct pg_state *ps, const char *sql, const struct params *p, PGresult **res,
		     struct jerror *err, const char *fmt, ...)
{
	PGresult *r;
	va_list ap;
	enum jerr ret;

	if (res)
		*res = NULL;
	if (p)
		r = PQexecParams(ps->pg, sql, p->n, NULL, p->v, p->len, p->fmt, 0);
	else
		r = PQexec(ps->pg, sql);
	if (res_ok(r)) {
		if (res)
			*res = r;
		else
			PQclear(r);
		return JERR_OK;
	}
	va_start(ap, fmt);
	ret = pg_verror(ps, r, err, fmt, ap);
	va_end(ap);
	PQclear(r);
	return ret;
}

enum jerr pg_exec_sql(struct pg_state *ps, const char *sql, struct jerror *err, const char *what)
{
	enum jerr ret = pg_flush_puts(ps, err);
	if (ret)
		return ret;
	return pg_sql_run(ps, sql, NULL, NULL, err, "could not %s state store \"%s\"", what,
			  ps->base.path);
}

/*
 * Row r of res (ROW_COLUMNS) into row. The row borrows res and ps->tmp (text of a
 * text key) and keybuf (digits of an integer key).
 */
void pg_decode_row(struct pg_state *ps, const PGresult *res, int r, struct state_row *row,
		   char *keybuf)
{
	struct strbuf *tmp = &ps->tmp;
	size_t key_at, hash_at;

	strbuf_reset(tmp);
	memset(row, 0, sizeof(*row));
	row->key.is_int = get_int(res, r, C_KIND) == 0;
	if (row->key.is_int) {
		row->key.i = get_int(res, r, C_INT);
		row->key.text = (struct slice){ keybuf, state_key_digits(row->key.i, keybuf) };
	}
	key_at = tmp->len;
	if (!row->key.is_int)
		get_bytes(res, r, C_TEXT, tmp);
	hash_at = tmp->len;
	get_bytes(res, r, C_HASH, tmp);
	if (!row->key.is_int)
		row->key.text = (struct slice){ tmp->buf + key_at, hash_at - key_at };
	if (tmp->len - hash_at == STATE_HASH_LEN)
		memcpy(row->hash, tmp->buf + hash_at, STATE_HASH_LEN);
	row->payload = (struct slice){ PQgetvalue(res, r, C_PAYLOAD),
				       (size_t)PQgetlength(res, r, C_PAYLOAD) };
	row->in_scope = get_bool(res, r, C_IN_SCOPE);
	row->pending = get_bool(res, r, C_PENDING);
	row->attempts = (int)get_int(res, r, C_ATTEMPTS);
	row->last_error = (struct slice){ PQgetvalue(res, r, C_LAST_ERROR),
					  (size_t)PQgetlength(res, r, C_LAST_ERROR) };
	row->braze_exists = PQgetisnull(res, r, C_EXISTS) ? -1 : get_bool(res, r, C_EXISTS);
	row->checked_at = get_int(res, r, C_CHECKED_AT);
	row->confirmed = !PQgetisnull(res, r, C_CONFIRMED_AT);
	row->confirmed_at = get_int(res, r, C_CONFIRMED_AT);
	row->updated_at = get_int(res, r, C_UPDATED_AT);
}

