/*
 * records.c: the records table of a PostgreSQL state store: reading (cursor batches,
 * the look-up of state_cursor_expect, counts, one record) and writing one record
 * (put, delete, mark failed, whether Braze has it); a put inside a transaction is
 * kept back by tx.c and sent with its batch. Rows read borrow the result and
 * ps->tmp until the next read. Called through state_pg (ops.c); pg_write_record also
 * by runs.c.
 */
#include "state/pg/pg_internal.h"

enum jerr pg_cursor_fill(struct state_cursor *cur, bool *end, struct jerror *err)
{
	struct pg_state *ps = ps_of(cur->st);
	struct params p = { 0 };
	char keybuf[STATE_KEYBUF_SIZE];
	PGresult *res;
	enum jerr ret;

	/* a seek and a range's first batch start at a key (inclusive), a walk after the last */
	const struct rkey *at = cur->has_seek ? &cur->seek : cur->have_last ? NULL : cur->has_from ? &cur->from : NULL;

	p_text(&p, cur->dest_id);
	p_int(&p, (int64_t)cur->want);
	p_int(&p, STATE_BATCH_BYTES);
	if (at)
		p_key(&p, at);
	else if (cur->have_last)
		p_key(&p, &cur->last);
	ret = pg_run(ps, at ? S_CUR_FROM : cur->have_last ? S_CUR_NEXT : S_CUR_FIRST, &p, &res, err,
		     "could not read records of destination \"%s\" from state store \"%s\"",
		     cur->dest_id, cur->st->path);
	if (ret)
		return ret;
	for (int i = 0; i < PQntuples(res) && cur->n < cur->want; i++) {
		struct state_row r;
		pg_decode_row(ps, res, i, &r, keybuf);
		state_cursor_push(cur, &r);
	}
	/* the query stops at either bound; below both, it ran out of rows */
	*end = cur->n < cur->want && !state_cursor_full(cur);
	PQclear(res);
	return JERR_OK;
}

enum jerr pg_cursor_lookup(struct state_cursor *cur, const struct rkey *keys, size_t n,
			   struct jerror *err)
{
	struct pg_state *ps = ps_of(cur->st);
	struct params p = { 0 };
	struct strbuf kinds = STRBUF_INIT, ints = STRBUF_INIT, texts = STRBUF_INIT;
	char keybuf[STATE_KEYBUF_SIZE];
	PGresult *res;
	enum jerr ret;

	/* array literals: {0,1}, {7,0}, {"\\x","\\x6162"} (bytea as hex text) */
	for (size_t i = 0; i < n; i++) {
		const struct rkey *k = &keys[i];
		strbuf_addstr(&kinds, i ? "," : "{");
		strbuf_addstr(&kinds, k->is_int ? "0" : "1");
		strbuf_addstr(&ints, i ? "," : "{");
		strbuf_addf(&ints, "%" PRId64, k->is_int ? k->i : 0);
		strbuf_addstr(&texts, i ? ",\"\\\\x" : "{\"\\\\x");
		for (size_t j = 0; !k->is_int && j < k->text.len; j++)
			strbuf_addf(&texts, "%02x", (unsigned char)k->text.ptr[j]);
		strbuf_addch(&texts, '"');
	}
	strbuf_addch(&kinds, '}');
	strbuf_addch(&ints, '}');
	strbuf_addch(&texts, '}');
	p_text(&p, cur->dest_id);
	p_text(&p, kinds.buf);
	p_text(&p, ints.buf);
	p_text(&p, texts.buf);
	ret = pg_run(ps, S_CUR_LOOKUP, &p, &res, err,
		     "could not read records of destination \"%s\" from state store \"%s\"",
		     cur->dest_id, cur->st->path);
	strbuf_release(&kinds);
	strbuf_release(&ints);
	strbuf_release(&texts);
	if (ret)
		return ret;
	for (int i = 0; i < PQntuples(res) && cur->n < STATE_BATCH_ROWS && !state_cursor_full(cur); i++) {
		struct state_row r;
		pg_decode_row(ps, res, i, &r, keybuf);
		state_cursor_push(cur, &r);
	}
	PQclear(res);
	return JERR_OK;
}

/* Run the count statement id (p: its parameters, dest_id first) into *in_scope. */
static enum jerr count_records(struct state *st, enum stmt_id id, const struct params *p, const char *dest_id,
			       uint64_t *in_scope, struct jerror *err)
{
	int64_t n;
	enum jerr ret = pg_run_int(ps_of(st), id, p, &n, err,
				   "could not count records of destination \"%s\" in state store \"%s\"", dest_id,
				   st->path);
	if (ret)
		return ret;
	*in_scope = (uint64_t)n;
	return JERR_OK;
}

enum jerr pg_count(struct state *st, const char *dest_id, uint64_t *in_scope,
		   struct jerror *err)
{
	struct params p = { 0 };

	p_text(&p, dest_id);
	return count_records(st, S_COUNT, &p, dest_id, in_scope, err);
}

enum jerr pg_count_range(struct state *st, const char *dest_id, const struct rkey *lo,
			 const struct rkey *hi, uint64_t *in_scope, struct jerror *err)
{
	struct params p = { 0 };

	p_text(&p, dest_id);
	p_bound(&p, lo);
	p_bound(&p, hi);
	return count_records(st, S_COUNT_RANGE, &p, dest_id, in_scope, err);
}

enum jerr pg_get(struct state *st, const char *dest_id, const struct rkey *key,
		 bool *found, struct jerror *err)
{
	struct pg_state *ps = ps_of(st);
	struct params p = { 0 };
	struct strbuf k = STRBUF_INIT;
	PGresult *res;
	enum jerr ret;

	p_text(&p, dest_id);
	p_key(&p, key);
	ret = pg_run(ps, S_GET, &p, &res, err,
		     "could not read record \"%s\" of destination \"%s\" from state store \"%s\"",
		     state_key_str(key, &k), dest_id, st->path);
	strbuf_release(&k);
	if (ret)
		return ret;
	if (PQntuples(res) > 0) {
		char keybuf[STATE_KEYBUF_SIZE];
		struct state_row r;
		pg_decode_row(ps, res, 0, &r, keybuf);
		state_keep_row(st, &r); /* res is cleared below */
		*found = true;
	}
	PQclear(res);
	return JERR_OK;
}

enum jerr pg_write_record(struct pg_state *ps, enum stmt_id id, const struct params *p,
			  const char *what, const char *dest_id, const struct rkey *key,
			  struct jerror *err)
{
	struct strbuf k = STRBUF_INIT;
	enum jerr ret = pg_run_write(ps, id, p, NULL, err,
				     "could not %s record \"%s\" of destination \"%s\" in state store \"%s\"",
				     what, state_key_str(key, &k), dest_id, ps->base.path);
	strbuf_release(&k);
	return ret;
}

enum jerr pg_put(struct state *st, const char *dest_id, const struct rkey *key,
		 struct slice payload, const unsigned char hash[STATE_HASH_LEN],
		 bool in_scope, int64_t now, struct jerror *err)
{
	struct pg_state *ps = ps_of(st);
	if (PQtransactionStatus(ps->pg) == PQTRANS_INTRANS) /* sent with the rest of the batch */
		return pg_put_keep(ps, dest_id, key, payload, hash, in_scope, now, err);
	struct params p = { 0 };
	p_text(&p, dest_id);
	p_key(&p, key);
	p_bytes(&p, payload.ptr, payload.len);
	p_bytes(&p, hash, STATE_HASH_LEN);
	p_bool(&p, in_scope);
	p_int(&p, now);
	return pg_write_record(ps, S_PUT, &p, "store", dest_id, key, err);
}

enum jerr pg_del(struct state *st, const char *dest_id, const struct rkey *key,
		 struct jerror *err)
{
	struct params p = { 0 };
	p_text(&p, dest_id);
	p_key(&p, key);
	return pg_write_record(ps_of(st), S_DELETE, &p, "delete", dest_id, key, err);
}

enum jerr pg_mark_failed(struct state *st, const char *dest_id, const struct rkey *key,
			 const char *error, struct slice payload, int64_t now, struct jerror *err)
{
	struct params p = { 0 };
	struct strbuf clean = STRBUF_INIT;
	enum jerr ret;
	p_text(&p, dest_id);
	p_key(&p, key);
	p_text(&p, pg_clean_text(error, &clean));
	p_int(&p, now);
	p_bytes(&p, payload.ptr, payload.len);
	ret = pg_write_record(ps_of(st), S_FAIL, &p, "mark as failed", dest_id, key, err);
	strbuf_release(&clean);
	return ret;
}

enum jerr pg_set_exists(struct state *st, const char *dest_id, const struct rkey *key,
			bool exists, int64_t checked_at, int64_t now, struct jerror *err)
{
	struct params p = { 0 };
	p_text(&p, dest_id);
	p_key(&p, key);
	p_bool(&p, exists);
	p_int(&p, checked_at);
	p_int(&p, now);
	return pg_write_record(ps_of(st), S_EXISTS, &p, "record whether Braze has", dest_id, key, err);
}
