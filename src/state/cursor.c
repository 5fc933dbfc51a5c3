/*
 * cursor.c: the state store's record cursor (state_cursor_* of state.h), the same on
 * every back end: its batch buffer, walking, seeking with batches that adapt to how
 * the caller reads, and the look-ups of expected keys. A back end only fills a batch
 * (ops->cursor_fill, ops->lookup). Owns each cursor from state_cursor_open to
 * state_cursor_close and the rows of its current batch (a row handed out is valid
 * until the next call on the cursor). Called by the engine's diff and plan.
 */
#include <stdlib.h>

#include "base/xalloc.h"
#include "state/backend.h"
#include "state/state.h"

/* Copy key into *to, its text into text. */
static void copy_key(struct rkey *to, struct strbuf *text, const struct rkey *key)
{
	strbuf_reset(text);
	strbuf_addslice(text, key->text);
	*to = *key;
	to->text = (struct slice){ text->buf, text->len };
}

enum jerr state_cursor_open_range(struct state *st, const char *dest_id, const struct key_range *range,
				  struct state_cursor **out, struct jerror *err)
{
	struct state_cursor *cur = xcalloc(1, sizeof(*cur));
	(void)err;
	cur->st = st;
	cur->dest_id = xstrdup(dest_id);
	strbuf_init(&cur->buf, 0);
	strbuf_init(&cur->last_text, 0);
	strbuf_init(&cur->from_text, 0);
	strbuf_init(&cur->to_text, 0);
	strbuf_init(&cur->seek_text, 0);
	strbuf_init(&cur->expect_text, 0);
	cur->want = STATE_BATCH_ROWS;
	if (range && range->lo) {
		cur->has_from = true;
		copy_key(&cur->from, &cur->from_text, range->lo);
	}
	if (range && range->hi) {
		cur->has_to = true;
		copy_key(&cur->to, &cur->to_text, range->hi);
	}
	st->n_cursors++;
	*out = cur;
	return JERR_OK;
}

enum jerr state_cursor_open(struct state *st, const char *dest_id, struct state_cursor **out,
			    struct jerror *err)
{
	return state_cursor_open_range(st, dest_id, NULL, out, err);
}

void state_cursor_lean(struct state_cursor *cur)
{
	cur->lean = true;
}

void state_cursor_push(struct state_cursor *cur, const struct state_row *row)
{
	struct state_row *r = &cur->rows[cur->n];
	struct state_cursor_text *t = &cur->text[cur->n];
	*r = *row;
	t->key = cur->buf.len;
	strbuf_addslice(&cur->buf, row->key.text);
	t->payload = cur->buf.len;
	strbuf_addslice(&cur->buf, row->payload);
	t->last_error = cur->buf.len;
	strbuf_addslice(&cur->buf, row->last_error);
	cur->n++;
}

bool state_cursor_full(const struct state_cursor *cur)
{
	return cur->n >= STATE_BATCH_ROWS || cur->buf.len >= STATE_BATCH_BYTES;
}

/* Point the expected keys' texts into expect_text (it may have moved). */
static void expect_fix(struct state_cursor *cur)
{
	for (size_t i = cur->next_expect; i < cur->n_expect; i++)
		cur->expect[i].text.ptr = cur->expect_text.buf + cur->expect_at[i];
}

/* key is the next key state_cursor_expect named (those before it are passed). */
static bool expected(struct state_cursor *cur, const struct rkey *key)
{
	while (cur->next_expect < cur->n_expect) {
		struct rkey *e = &cur->expect[cur->next_expect];
		e->text.ptr = cur->expect_text.buf + cur->expect_at[cur->next_expect];
		int c = key_compare(e, key);
		if (c >= 0)
			return c == 0;
		cur->next_expect++;
	}
	return false;
}

/* Make cur->last the key k (copied). */
static void set_last(struct state_cursor *cur, const struct rkey *k)
{
	cur->have_last = true;
	cur->last.is_int = k->is_int;
	cur->last.i = k->i;
	strbuf_reset(&cur->last_text);
	strbuf_addslice(&cur->last_text, k->text);
	cur->last.text = (struct slice){ cur->last_text.buf, cur->last_text.len };
}

/*
 * Stop answering from a look-up batch: its next row need not be the store's next row.
 * The rows stay in memory (the row last returned is still the caller's) until the next
 * batch is read after the last row returned.
 */
static void leave_sparse(struct state_cursor *cur)
{
	cur->pos = cur->n;
	cur->sparse = cur->served = false;
}

/* Read the next batch of rows: after cur->last, or from a seek, or a look-up. */
static enum jerr cursor_fill(struct state_cursor *cur, struct jerror *err)
{
	enum jerr ret;
	bool end = false;
	bool lookup = cur->has_lookup && cur->next_expect < cur->n_expect;

	cur->n = cur->pos = cur->used = 0;
	cur->sparse = cur->served = false;
	strbuf_reset(&cur->buf);
	if (cur->have_last)
		cur->last.text = (struct slice){ cur->last_text.buf, cur->last_text.len };
	if (cur->has_seek)
		cur->seek.text = (struct slice){ cur->seek_text.buf, cur->seek_text.len };
	if (lookup) {
		expect_fix(cur);
		ret = cur->st->ops->lookup(cur, &cur->expect[cur->next_expect], cur->n_expect - cur->next_expect, err);
	} else {
		ret = cur->st->ops->cursor_fill(cur, &end, err);
	}
	if (ret) {
		cur->n = 0;
		return ret;
	}
	cur->has_seek = cur->has_lookup = false;
	cur->sparse = lookup;
	cur->exhausted = end; /* a look-up never knows that nothing follows */
	/* the buffer is complete: point the rows into it */
	for (size_t i = 0; i < cur->n; i++) {
		struct state_row *r = &cur->rows[i];
		const struct state_cursor_text *t = &cur->text[i];
		r->key.text.ptr = cur->buf.buf + t->key;
		r->payload.ptr = cur->buf.buf + t->payload;
		r->last_error.ptr = cur->buf.buf + t->last_error;
		if (cur->has_to && key_compare(&r->key, &cur->to) >= 0) {
			/*
			 * The end of the range: this row and the rest are beyond it (after a
			 * look-up, rows between its rows may still be in the range).
			 */
			cur->n = i;
			cur->exhausted = !lookup;
			break;
		}
	}
	/*
	 * Keys come strictly increasing. In a damaged or hand-edited store (keys of other
	 * SQLite types) they may not, and the next batch would repeat this one forever.
	 */
	for (size_t i = 0; i < cur->n; i++) {
		const struct rkey *prev = i ? &cur->rows[i - 1].key : cur->have_last ? &cur->last : NULL;
		if (prev && key_compare(&cur->rows[i].key, prev) <= 0) {
			cur->n = 0;
			cur->exhausted = true;
			jerror_set(err, JERR_STATE,
				   "state store \"%s\" is damaged: the records of destination \"%s\" are not in key order",
				   cur->st->path, cur->dest_id);
			jerror_hint(err, "restore the store from a backup (joey state import), or remove it: the next "
					 "run then sends every record again");
			return JERR_STATE;
		}
	}
	/* a walk goes on after the batch; after a look-up, after the row last returned */
	if (cur->n && !cur->sparse)
		set_last(cur, &cur->rows[cur->n - 1].key);
	return JERR_OK;
}

enum jerr state_cursor_next(struct state_cursor *cur, struct state_row **row, struct jerror *err)
{
	enum jerr ret;
	*row = NULL;
	/* a look-up batch answers only the seek just served (cur->served) */
	if (cur->sparse && !cur->served)
		leave_sparse(cur);
	cur->served = false;
	if (cur->pos == cur->n) {
		if (cur->exhausted)
			return JERR_OK;
		if ((ret = cursor_fill(cur, err)))
			return ret;
		if (cur->n == 0) {
			cur->exhausted = true;
			return JERR_OK;
		}
		/* a look-up batch's first row is the first at or after the seek that made it */
	}
	cur->used++;
	*row = &cur->rows[cur->pos++];
	if (cur->sparse)
		set_last(cur, &(*row)->key);
	return JERR_OK;
}

/*
 * Seeking. A target among the rows of the batch is found there (binary search), with
 * no query. A target past the batch starts the next batch at it (key >= target), so the
 * rows in between are never read. How many rows that batch asks for adapts to how the
 * caller reads: when most of the last batch was returned (a dense read, e.g. 90% of the
 * keys changed) batches grow back to STATE_BATCH_ROWS and the cursor effectively walks;
 * when most of it was skipped (a sparse read) they shrink to the back end's seek_rows,
 * a point look-up per target. The order of keys is key_compare's, which the back ends'
 * `key >= ?` keeps (backend.h).
 *
 * Look-ups (state_cursor_expect, back ends with ops->lookup): once seeks are sparse, a
 * seek to an expected key past the batch reads, in one query, the first row at or after
 * each expected key from there on. Such a batch holds only some of the store's rows, but
 * for each of those keys k the first row >= k is in it and nothing of the store lies
 * between k and that row, so a seek to one of them is answered from the batch exactly
 * as the store would; anything else (another target, a next() not after such a seek)
 * leaves the batch and reads after the row last returned.
 */
enum jerr state_cursor_seek(struct state_cursor *cur, const struct rkey *key, struct jerror *err)
{
	bool was_sparse = cur->sparse;
	(void)err;
	cur->served = false;
	if (cur->sparse) {
		if (key_compare(key, &cur->last) <= 0)
			return JERR_OK; /* behind the cursor: nothing changes */
		if (!(expected(cur, key) && cur->pos < cur->n && key_compare(&cur->rows[cur->n - 1].key, key) >= 0))
			leave_sparse(cur);
		else
			cur->served = true; /* found below */
	}
	if (cur->pos < cur->n && key_compare(&cur->rows[cur->n - 1].key, key) >= 0) {
		size_t lo = cur->pos, hi = cur->n - 1; /* the first row >= key is in [lo, hi] */
		while (lo < hi) {
			size_t mid = lo + (hi - lo) / 2;
			if (key_compare(&cur->rows[mid].key, key) < 0)
				lo = mid + 1;
			else
				hi = mid;
		}
		cur->pos = lo;
		return JERR_OK;
	}
	if (cur->pos == cur->n && cur->exhausted)
		return JERR_OK;
	/* the batch holds nothing at or past key: the next batch starts at key */
	if (cur->has_to && key_compare(key, &cur->to) >= 0) {
		cur->pos = cur->n;
		cur->exhausted = true;
		return JERR_OK;
	}
	size_t min = cur->st->ops->seek_rows ? cur->st->ops->seek_rows : 1;
	if (cur->n && !was_sparse) {
		if (cur->used * 2 > cur->n)
			cur->want = cur->want * 2 < STATE_BATCH_ROWS ? cur->want * 2 : STATE_BATCH_ROWS;
		else if (cur->used * 4 < cur->n)
			cur->want = cur->want / 2 > min ? cur->want / 2 : min;
	}
	cur->pos = cur->n;
	/* before the range or after the last key read, the next batch starts there anyway */
	if (cur->have_last ? key_compare(key, &cur->last) <= 0
			   : cur->has_from && key_compare(key, &cur->from) <= 0)
		return JERR_OK;
	cur->has_seek = true;
	copy_key(&cur->seek, &cur->seek_text, key);
	/* sparse seeks to keys the caller announced: look them all up at once */
	cur->has_lookup = cur->st->ops->lookup && cur->want <= min && expected(cur, key) &&
			  !(cur->has_from && key_compare(key, &cur->from) < 0);
	return JERR_OK;
}

void state_cursor_expect(struct state_cursor *cur, const struct rkey *keys, size_t n)
{
	if (!cur->st->ops->lookup)
		return; /* the back end seeks one key at a time anyway */
	/* the look-up batch answered the old keys only */
	if (cur->sparse)
		leave_sparse(cur);
	cur->has_lookup = false;
	if (n > STATE_BATCH_ROWS)
		n = STATE_BATCH_ROWS;
	strbuf_reset(&cur->expect_text);
	for (size_t i = 0; i < n; i++) {
		cur->expect[i] = keys[i];
		cur->expect_at[i] = cur->expect_text.len;
		strbuf_addslice(&cur->expect_text, keys[i].text);
	}
	cur->n_expect = n;
	cur->next_expect = 0;
}

void state_cursor_close(struct state_cursor *cur)
{
	if (!cur)
		return;
	if (--cur->st->n_cursors == 0 && cur->st->ops->cursors_closed)
		cur->st->ops->cursors_closed(cur->st);
	strbuf_release(&cur->buf);
	strbuf_release(&cur->last_text);
	strbuf_release(&cur->from_text);
	strbuf_release(&cur->to_text);
	strbuf_release(&cur->seek_text);
	strbuf_release(&cur->expect_text);
	free(cur->dest_id);
	free(cur);
}
