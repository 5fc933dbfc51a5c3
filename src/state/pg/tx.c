/*
 * tx.c: transactions of a PostgreSQL state store (begin, commit, rollback) and the
 * write-behind of state_put inside one: the puts kept in ps->pend and ps->put_col
 * (pg_put_keep) and sent as one INSERT from arrays (pg_flush_puts) before the next
 * other statement or the commit. Owns ps->pend and ps->put_col (freed by pg_close).
 * Called through state_pg (ops.c), and pg_flush_puts by every statement runner
 * (query.c).
 */
#include <xxhash.h>

#include "base/log.h"
#include "base/xalloc.h"
#include "state/pg/pg_internal.h"

static void drop_puts(struct pg_state *ps);

bool pg_in_transaction(struct state *st)
{
	struct pg_state *ps = ps_of(st);
	PGTransactionStatusType t = ps->pg ? PQtransactionStatus(ps->pg) : PQTRANS_UNKNOWN;
	return t == PQTRANS_INTRANS || t == PQTRANS_INERROR;
}

enum jerr pg_begin(struct state *st, struct jerror *err)
{
	ps_of(st)->puts_lost = false;
	return pg_sql_run(ps_of(st), "BEGIN", NULL, NULL, err,
			  "could not start a transaction in state store \"%s\"", st->path);
}

void pg_rollback(struct state *st)
{
	struct pg_state *ps = ps_of(st);
	PGresult *r;
	drop_puts(ps); /* never sent */
	ps->puts_lost = false;
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

	if (PQtransactionStatus(ps->pg) == PQTRANS_INERROR || ps->puts_lost) {
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
 * Write-behind of state_put. Inside a transaction, the puts are kept and sent as one
 * INSERT ... SELECT FROM unnest(...) ON CONFLICT DO UPDATE (joey_put_rows, prepared
 * once per connection) before the next other statement or the commit: one round trip
 * for up to PUT_BATCH_MAX rows (a whole batch of Braze's answers), with a remote store
 * as with a local one. Each column is one parameter, a PostgreSQL array in binary
 * form built as the puts come (ps->put_col; the header is written at the flush), so
 * nothing is formatted as text, parsed or copied again per row: against 16
 * statements of 256 rows with a parameter per value, bench/state_put.c went from
 * 0.43 to 0.38 us a row (its payload formatting included) and joey's CPU for a first
 * sync of 1M users (bench/state_writes.sh) from 2.13 to 1.90 s. Order is kept
 * (anything else flushes first), and a key put twice flushes between (one INSERT may
 * not touch a row twice). A failure surfaces at the next statement or at the commit,
 * which then fails and rolls back: as with any failed write, nothing of the
 * transaction is stored. The rows are written in key order, not in the order they
 * came (the order of Braze's answers): two writers of one key range (a worker resumed
 * past its lease and the one that took its item over) then lock them in one order and
 * one waits for the other, where answer order made one of them a deadlock's victim
 * (40P01, which failed the job; unit/state/pg test_races).
 */
#define PUT_BATCH_MAX 4096
/*
 * And at most this many bytes of payloads (unless one put alone has more): memory
 * stays bounded with large payloads, and an array parameter far below PostgreSQL's
 * 1 GB limit on one value.
 */
#define PUT_BATCH_BYTES ((size_t)16 << 20)
_Static_assert(PG_PEND_SLOTS >= 2 * PUT_BATCH_MAX && !(PG_PEND_SLOTS & (PG_PEND_SLOTS - 1)) &&
		       PUT_BATCH_MAX < UINT16_MAX,
	       "pend_slot: a power of two, at most half full, an index + 1 fits");

/* The columns of joey_put_rows, in the order of its parameters. */
enum { P_DEST, P_KIND, P_INT, P_TEXT, P_PAYLOAD, P_HASH, P_IN_SCOPE, P_NOW };
_Static_assert(P_NOW + 1 == PG_PUT_COLUMNS, "one array per column");

/* Where a kept put's destination id and key text are (into put_col[P_DEST], [P_TEXT]). */
struct pending_put {
	size_t dest, dest_len, key, key_len;
	bool is_int;
	int64_t key_int;
};

/* A binary array's header (array_send): dimensions, flags, element type, length, lower bound. */
#define ARRAY_HEADER 20

static const char put_rows_sql[] =
	"INSERT INTO records (dest_id, key_kind, key_int, key_text, payload, hash, in_scope, pending,"
	" attempts, last_error, confirmed_at, updated_at)"
	" SELECT d, k, i, t, p, h, s, false, 0, NULL, CASE WHEN h = " PG_ZERO_HASH " THEN NULL ELSE n END, n"
	" FROM unnest($1::text[], $2::int2[], $3::int8[], $4::bytea[], $5::text[], $6::bytea[], $7::bool[],"
	" $8::int8[]) AS u (d, k, i, t, p, h, s, n)"
	" ORDER BY d, k, i, t"
	" ON CONFLICT (dest_id, key_kind, key_int, key_text) DO UPDATE SET"
	" payload = excluded.payload, hash = excluded.hash, in_scope = excluded.in_scope,"
	" pending = false, attempts = 0, last_error = NULL,"
	" confirmed_at = excluded.confirmed_at, updated_at = excluded.updated_at";

static void be32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)(v >> 24);
	p[1] = (unsigned char)(v >> 16);
	p[2] = (unsigned char)(v >> 8);
	p[3] = (unsigned char)v;
}

/* Append one element of n bytes (its length, then the bytes) to a column's array. */
static size_t col_add(struct strbuf *col, const void *p, size_t n)
{
	unsigned char len[4];
	be32(len, (uint32_t)n);
	strbuf_add(col, len, 4);
	size_t at = col->len;
	strbuf_add(col, p, n);
	return at;
}

static size_t col_add_int(struct strbuf *col, int64_t v, size_t width)
{
	unsigned char b[8];
	for (size_t k = 0; k < width; k++)
		b[k] = (unsigned char)((uint64_t)v >> (8 * (width - 1 - k)));
	return col_add(col, b, width);
}

static void drop_puts(struct pg_state *ps)
{
	if (ps->n_pend)
		memset(ps->pend_slot, 0, sizeof(ps->pend_slot));
	ps->n_pend = 0;
	for (int c = 0; c < PG_PUT_COLUMNS; c++)
		strbuf_reset(&ps->put_col[c]);
}

enum jerr pg_flush_puts(struct pg_state *ps, struct jerror *err)
{
	/* the element types: text int2 int8 bytea text bytea bool int8, and their array types */
	static const Oid elem[PG_PUT_COLUMNS] = { 25, 21, 20, 17, 25, 17, 16, 20 };
	static const Oid arrays[PG_PUT_COLUMNS] = { 1009, 1005, 1016, 1001, 1009, 1001, 1000, 1016 };
	static const int fmt[PG_PUT_COLUMNS] = { 1, 1, 1, 1, 1, 1, 1, 1 };
	size_t n = ps->n_pend;
	const char *v[PG_PUT_COLUMNS];
	int len[PG_PUT_COLUMNS];
	enum jerr ret = JERR_OK;
	PGresult *r = NULL;

	if (!n)
		return JERR_OK;
	for (int c = 0; c < PG_PUT_COLUMNS; c++) {
		unsigned char *h = (unsigned char *)ps->put_col[c].buf;
		be32(h, 1);	  /* one dimension */
		be32(h + 4, 0);	  /* no NULLs */
		be32(h + 8, elem[c]);
		be32(h + 12, (uint32_t)n);
		be32(h + 16, 1);  /* lower bound */
		v[c] = ps->put_col[c].buf;
		len[c] = (int)ps->put_col[c].len;
	}
	if (!ps->put_rows_prepared) {
		r = PQprepare(ps->pg, "joey_put_rows", put_rows_sql, PG_PUT_COLUMNS, arrays);
		ps->put_rows_prepared = res_ok(r);
		if (!ps->put_rows_prepared)
			goto out;
		PQclear(r);
	}
	r = PQexecPrepared(ps->pg, "joey_put_rows", PG_PUT_COLUMNS, v, len, fmt, 0);
out:
	if (!res_ok(r))
		ret = pg_error(ps, r, err, "could not store %zu records in state store \"%s\"", n, ps->base.path);
	PQclear(r);
	drop_puts(ps); /* sent once, whatever happened */
	/* failed before the server saw it (libpq out of memory): the transaction is still
	 * open and would commit without these rows, so pg_commit refuses it */
	if (ret && PQtransactionStatus(ps->pg) == PQTRANS_INTRANS)
		ps->puts_lost = true;
	return ret;
}

/* The slot of pend_slot for this destination and key: where it is, or the free one to take. */
static size_t pend_find(const struct pg_state *ps, const char *dest_id, size_t dl, const struct rkey *key,
			bool *found)
{
	const char *d = ps->put_col[P_DEST].buf, *t = ps->put_col[P_TEXT].buf;
	uint64_t h = key->is_int ? (uint64_t)key->i * UINT64_C(0x9e3779b97f4a7c15)
				 : XXH3_64bits(key->text.ptr ? key->text.ptr : "", key->text.len);
	h ^= XXH3_64bits(dest_id, dl) + (uint64_t)key->is_int;
	size_t at = (size_t)(h ^ (h >> 29)) & (PG_PEND_SLOTS - 1);
	for (;; at = (at + 1) & (PG_PEND_SLOTS - 1)) {
		unsigned slot = ps->pend_slot[at];
		if (!slot)
			break;
		const struct pending_put *x = &ps->pend[slot - 1];
		if (x->is_int == key->is_int && x->dest_len == dl && !memcmp(d + x->dest, dest_id, dl) &&
		    (key->is_int ? x->key_int == key->i
				 : x->key_len == key->text.len &&
					   (!x->key_len || !memcmp(t + x->key, key->text.ptr, x->key_len)))) {
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
	if (found || ps->n_pend >= PUT_BATCH_MAX ||
	    (ps->n_pend && ps->put_col[P_PAYLOAD].len + payload.len > PUT_BATCH_BYTES)) {
		if ((ret = pg_flush_puts(ps, err)))
			return ret;
		at = pend_find(ps, dest_id, dl, key, &found);
	}
	if (!ps->n_pend) { /* room for the arrays' headers, written by pg_flush_puts */
		static const char room[ARRAY_HEADER];
		for (int c = 0; c < PG_PUT_COLUMNS; c++)
			strbuf_add(&ps->put_col[c], room, ARRAY_HEADER);
	}
	ALLOC_GROW(ps->pend, ps->n_pend + 1, ps->alloc_pend);
	ps->pend_slot[at] = (uint16_t)(ps->n_pend + 1);
	struct pending_put *x = &ps->pend[ps->n_pend++];
	struct slice text = key->is_int ? (struct slice){ "", 0 } : key->text;
	x->dest = col_add(&ps->put_col[P_DEST], dest_id, dl);
	x->dest_len = dl;
	x->is_int = key->is_int;
	x->key_int = key->is_int ? key->i : 0;
	x->key = col_add(&ps->put_col[P_TEXT], text.ptr ? text.ptr : "", text.len);
	x->key_len = text.len;
	col_add_int(&ps->put_col[P_KIND], key->is_int ? 0 : 1, 2);
	col_add_int(&ps->put_col[P_INT], x->key_int, 8);
	col_add(&ps->put_col[P_PAYLOAD], payload.ptr ? payload.ptr : "", payload.len);
	col_add(&ps->put_col[P_HASH], hash, STATE_HASH_LEN);
	col_add_int(&ps->put_col[P_IN_SCOPE], in_scope, 1);
	col_add_int(&ps->put_col[P_NOW], now, 8);
	return JERR_OK;
}
