/*
 * tx.c: transactions of a PostgreSQL state store (begin, commit, rollback) and the
 * write-behind of state_put inside one: the puts kept in ps->pend (pg_put_keep) and
 * sent as one multi-row INSERT (pg_flush_puts) before the next other statement or the
 * commit. Owns ps->pend and ps->pend_bytes (freed by pg_close). Called through
 * state_pg (ops.c), and pg_flush_puts by every statement runner (query.c).
 */
#include <xxhash.h>

#include "base/log.h"
#include "base/xalloc.h"
#include "state/pg/pg_internal.h"

bool pg_in_transaction(struct state *st)
{
	struct pg_state *ps = ps_of(st);
	PGTransactionStatusType t = ps->pg ? PQtransactionStatus(ps->pg) : PQTRANS_UNKNOWN;
	return t == PQTRANS_INTRANS || t == PQTRANS_INERROR;
}

enum jerr pg_begin(struct state *st, struct jerror *err)
{
	return pg_sql_run(ps_of(st), "BEGIN", NULL, NULL, err,
			  "could not start a transaction in state store \"%s\"", st->path);
}

void pg_rollback(struct state *st)
{
	struct pg_state *ps = ps_of(st);
	PGresult *r;
	ps->n_pend = 0; /* never sent */
	strbuf_reset(&ps->pend_bytes);
	memset(ps->pend_slot, 0, sizeof(ps->pend_slot));
	if (!pg_in_transaction(st))
		return;
	r = PQexec(ps->pg, "ROLLBACK");
	if (!res_ok(r)) {
		struct jerror e = JERROR_INIT;
		pg_error(ps, r, &e, "could not roll back a transaction in state store \"%s\"",
			 st->path);
		log_error("%s (%s)", e.msg.buf, e.detail.buf);
		jerror_release(&e);
	}
	PQclear(r);
}

enum jerr pg_commit(struct state *st, struct jerror *err)
{
	struct pg_state *ps = ps_of(st);
	PGresult *r;
	enum jerr ret = JERR_OK;

	if (PQtransactionStatus(ps->pg) == PQTRANS_INERROR) {
		pg_rollback(st);
		return jerror_set(err, JERR_STATE,
				  "state store \"%s\": no transaction to commit (it was rolled back "
				  "after an earlier error)", st->path);
	}
	if ((ret = pg_flush_puts(ps, err))) {
		pg_rollback(st);
		return ret;
	}
	ret = pg_sql_run(ps, "COMMIT", NULL, &r, err,
			 "could not commit a transaction in state store \"%s\"", st->path);
	if (!ret && !strcmp(PQcmdStatus(r), "ROLLBACK"))
		ret = jerror_set(err, JERR_STATE, "could not commit a transaction in state store "
						  "\"%s\": the server rolled it back", st->path);
	PQclear(r);
	if (ret)
		pg_rollback(st);
	return ret;
}

/*
 * Write-behind of state_put. Inside a transaction, the puts of a batch of Braze's
 * answers (up to 75 rows) are kept and sent as one multi-row INSERT ... ON CONFLICT
 * DO UPDATE before the next other statement or the commit, instead of one round trip
 * each: with the store on another machine, a round trip per row would bound a worker
 * to a few thousand rows a second. Order is kept (anything else flushes first), and a
 * key put twice flushes between (one INSERT may not touch a row twice). A failure
 * surfaces at the next statement or at the commit, which then fails and rolls back:
 * as with any failed write, nothing of the transaction is stored.
 */
#define PUT_BATCH_MAX 256
_Static_assert(PG_PEND_SLOTS >= 2 * PUT_BATCH_MAX && !(PG_PEND_SLOTS & (PG_PEND_SLOTS - 1)),
	       "pend_slot: a power of two, at most half full");

struct pending_put {
	size_t dest, dest_len, key, key_len, payload, payload_len, hash; /* into pend_bytes */
	bool is_int, in_scope;
	int64_t key_int, now;
};

enum jerr pg_flush_puts(struct pg_state *ps, struct jerror *err)
{
	static const Oid types[8] = { 25, 21, 20, 17, 25, 17, 16, 20 }; /* text int2 int8 bytea text bytea bool int8 */
	size_t n = ps->n_pend;
	enum jerr ret = JERR_OK;
	if (!n)
		return JERR_OK;
	ps->n_pend = 0; /* sent once, whatever happens */
	struct strbuf sql = STRBUF_INIT;
	const char **v = xcalloc(n * 8, sizeof(*v));
	int *len = xcalloc(n * 8, sizeof(*len)), *fmt = xcalloc(n * 8, sizeof(*fmt));
	Oid *ty = xcalloc(n * 8, sizeof(*ty));
	char (*num)[STATE_KEYBUF_SIZE] = xcalloc(n * 3, sizeof(*num));
	const char *b = ps->pend_bytes.buf;

	/* a full batch (the usual case) runs a statement prepared once per connection */
	bool full = n == PUT_BATCH_MAX;
	if (!full || !ps->put_batch_prepared) {
		strbuf_addstr(&sql, "INSERT INTO records (dest_id, key_kind, key_int, key_text, payload, hash,"
				    " in_scope, pending, attempts, last_error, confirmed_at, updated_at) VALUES ");
		for (size_t i = 0; i < n; i++) {
			size_t k = i * 8;
			strbuf_addf(&sql, "%s($%zu, $%zu, $%zu, $%zu, $%zu, $%zu, $%zu, false, 0, NULL, $%zu, $%zu)",
				    i ? ", " : "", k + 1, k + 2, k + 3, k + 4, k + 5, k + 6, k + 7, k + 8, k + 8);
		}
		strbuf_addstr(&sql, " ON CONFLICT (dest_id, key_kind, key_int, key_text) DO UPDATE SET"
				    " payload = excluded.payload, hash = excluded.hash, in_scope = excluded.in_scope,"
				    " pending = false, attempts = 0, last_error = NULL,"
				    " confirmed_at = excluded.confirmed_at, updated_at = excluded.updated_at");
	}
	for (size_t i = 0; i < n; i++) {
		const struct pending_put *x = &ps->pend[i];
		size_t k = i * 8;
		/* what "%d" and "%" PRId64 write, without snprintf's cost per row */
		num[i * 3][0] = x->is_int ? '0' : '1';
		num[i * 3][1] = '\0';
		state_key_digits(x->is_int ? x->key_int : 0, num[i * 3 + 1]);
		state_key_digits(x->now, num[i * 3 + 2]);
		const char *vals[8] = { b + x->dest, num[i * 3], num[i * 3 + 1], b + x->key, b + x->payload,
					b + x->hash, x->in_scope ? "t" : "f", num[i * 3 + 2] };
		const int lens[8] = { (int)x->dest_len, 0, 0, (int)x->key_len, (int)x->payload_len, STATE_HASH_LEN, 0, 0 };
		const int fmts[8] = { 1, 0, 0, 1, 1, 1, 0, 0 };
		for (int c = 0; c < 8; c++) {
			v[k + c] = vals[c];
			len[k + c] = lens[c];
			fmt[k + c] = fmts[c];
			ty[k + c] = types[c];
		}
	}
	PGresult *r = NULL;
	if (full && !ps->put_batch_prepared) {
		r = PQprepare(ps->pg, "joey_put_batch", sql.buf, (int)(n * 8), ty);
		ps->put_batch_prepared = res_ok(r);
		PQclear(r);
		r = NULL;
	}
	if (full && ps->put_batch_prepared)
		r = PQexecPrepared(ps->pg, "joey_put_batch", (int)(n * 8), v, len, fmt, 0);
	else
		r = PQexecParams(ps->pg, sql.buf, (int)(n * 8), ty, v, len, fmt, 0);
	if (!res_ok(r))
		ret = pg_error(ps, r, err, "could not store %zu records in state store \"%s\"", n, ps->base.path);
	PQclear(r);
	strbuf_reset(&ps->pend_bytes);
	memset(ps->pend_slot, 0, sizeof(ps->pend_slot));
	strbuf_release(&sql);
	free(v);
	free(len);
	free(fmt);
	free(ty);
	free(num);
	return ret;
}

static size_t pend_add(struct pg_state *ps, const void *p, size_t n)
{
	size_t at = ps->pend_bytes.len;
	strbuf_add(&ps->pend_bytes, p, n);
	strbuf_addch(&ps->pend_bytes, 0); /* a text parameter may be read as a C string */
	return at;
}

/* The slot of pend_slot for this destination and key: where it is, or the free one to take. */
static size_t pend_find(const struct pg_state *ps, const char *dest_id, size_t dl, const struct rkey *key,
			bool *found)
{
	const char *b = ps->pend_bytes.buf;
	uint64_t h = key->is_int ? (uint64_t)key->i * UINT64_C(0x9e3779b97f4a7c15)
				 : XXH3_64bits(key->text.ptr ? key->text.ptr : "", key->text.len);
	h ^= XXH3_64bits(dest_id, dl) + (uint64_t)key->is_int;
	size_t at = (size_t)(h ^ (h >> 29)) & (PG_PEND_SLOTS - 1);
	for (;; at = (at + 1) & (PG_PEND_SLOTS - 1)) {
		unsigned slot = ps->pend_slot[at];
		if (!slot)
			break;
		const struct pending_put *x = &ps->pend[slot - 1];
		if (x->is_int == key->is_int && x->dest_len == dl && !memcmp(b + x->dest, dest_id, dl) &&
		    (key->is_int ? x->key_int == key->i
				 : x->key_len == key->text.len && !memcmp(b + x->key, key->text.ptr, x->key_len))) {
			*found = true;
			return at;
		}
	}
	*found = false;
	return at;
}

enum jerr pg_put_keep(struct pg_state *ps, const char *dest_id, const struct rkey *key,
		      struct slice payload, const unsigned char hash[STATE_HASH_LEN], bool in_scope,
		      int64_t now, struct jerror *err)
{
	size_t dl = strlen(dest_id);
	enum jerr ret = JERR_OK;
	bool found;
	size_t at = pend_find(ps, dest_id, dl, key, &found);
	/* the same key again: the first goes first (a hash lookup, not a walk of the batch) */
	if (found || ps->n_pend >= PUT_BATCH_MAX) {
		if ((ret = pg_flush_puts(ps, err)))
			return ret;
		at = pend_find(ps, dest_id, dl, key, &found);
	}
	ALLOC_GROW(ps->pend, ps->n_pend + 1, ps->alloc_pend);
	ps->pend_slot[at] = (uint16_t)(ps->n_pend + 1);
	struct pending_put *x = &ps->pend[ps->n_pend++];
	x->dest = pend_add(ps, dest_id, dl);
	x->dest_len = dl;
	x->is_int = key->is_int;
	x->key_int = key->i;
	x->key = pend_add(ps, key->is_int ? "" : key->text.ptr, key->is_int ? 0 : key->text.len);
	x->key_len = key->is_int ? 0 : key->text.len;
	x->payload = pend_add(ps, payload.ptr, payload.len);
	x->payload_len = payload.len;
	x->hash = pend_add(ps, hash, STATE_HASH_LEN);
	x->in_scope = in_scope;
	x->now = now;
	return JERR_OK;
}
