/*
 * history.c: one record's history for GET /api/v1/records/{model}/{key} (docs/api.md
 * "Audiences and records"), called by api_record (audiences.c).
 *
 * Nothing is written per row on the export path for this page: the history is put
 * together when it is asked for, from what already exists.
 *
 *   sync log      a destination with options.syncLogAppId: its rows of the record in the
 *                 log database (synclog/db.h read_key: its own short, read-only
 *                 connection, the key bound, a few seconds at most), and the rows still
 *                 waiting in the state store's outbox (not yet copied to the log)
 *   state store   always: the last confirmed send (confirmed_at, in the run whose window
 *                 holds it), the failed attempts of the error ledger, the pending retry
 *
 * An event both sides know (the log's confirmed row of a run and the store's confirmed
 * send in that run; the log's failed row of a run and the ledger's entry of that run)
 * is shown once, from the log, which says more. A log that cannot be read is a note in
 * the destination's view (sync_log.error), never a failed request. At most
 * HISTORY_PER_DEST items per destination, newest first.
 */
#include <stdlib.h>
#include <string.h>

#include "base/strbuf.h"
#include "base/xalloc.h"
#include "engine/synclog.h"
#include "server/serverp.h"
#include "state/runnotes.h"
#include "synclog/db.h"

#define HISTORY_PER_DEST 20
/* Outbox rows (each a batch of log rows) looked through per destination. */
#define OUTBOX_SCAN_MAX 256
/* Runs looked through to find the one a confirmed send belongs to. */
#define RUNS_SCAN_MAX 1000

struct hist {
	json_t **items; /* owned */
	size_t n, alloc;
	const char *dest;
	const struct rkey *key;
	size_t from_log; /* items[from_log..n) came from the sync log for dest */
	int64_t body_run; /* the run of the outbox row being decoded */
};

static void hist_add(struct hist *h, json_t *o)
{
	if (h->n == h->alloc) {
		h->alloc = h->alloc ? 2 * h->alloc : 32;
		h->items = xrealloc(h->items, h->alloc * sizeof(*h->items));
	}
	h->items[h->n++] = o;
}

/* A new item; detail (borrowed, copied) may be NULL. */
static json_t *item(int64_t at, const char *dest, int64_t run_id, const char *what, const char *detail,
		    const char *source)
{
	return json_pack("{s:I,s:s,s:o,s:s,s:s?,s:s,s:o,s:s,s:i,s:n,s:o}", "at", (json_int_t)at, "destination", dest,
			 "run_id", run_id ? json_integer(run_id) : json_null(), "what", what, "detail", detail,
			 "source", source, "id", json_null(), "error", "", "attempts", 0, "trigger", "changed",
			 json_null());
}

/*
 * Words for a log row's changed_fields (a JSON array: Braze fields, then "+group" for
 * memberships added and "-group" for those removed): "email, ltv; joined VIP; left
 * Churned". Appends to sb; the array itself goes into o's "changed".
 */
static void changed_words(json_t *o, const char *changed, struct strbuf *sb)
{
	json_t *a = changed ? json_loads(changed, 0, NULL) : NULL;
	if (!json_is_array(a)) {
		json_decref(a);
		return;
	}
	struct strbuf joined = STRBUF_INIT, left = STRBUF_INIT;
	size_t i;
	json_t *v;
	json_array_foreach(a, i, v) {
		const char *s = json_string_value(v);
		if (!s)
			continue;
		struct strbuf *to = *s == '+' ? &joined : *s == '-' ? &left : sb;
		strbuf_addstr(to, to->len ? ", " : "");
		strbuf_addstr(to, *s == '+' || *s == '-' ? s + 1 : s);
	}
	if (joined.len)
		strbuf_addf(sb, "%sjoined %s", sb->len ? "; " : "", joined.buf);
	if (left.len)
		strbuf_addf(sb, "%sleft %s", sb->len ? "; " : "", left.buf);
	strbuf_release(&joined);
	strbuf_release(&left);
	json_object_set_new(o, "changed", a);
}

/* A row of the log (or of the outbox, on its way there) as an item. */
static json_t *log_item(const char *dest, int64_t run_id, int64_t at, const char *op, const char *status,
			const char *changed, const char *error, int attempt, const char *trigger)
{
	const char *what = !strcmp(status, "failed")		 ? "failed"
			   : !strcmp(status, "not_in_braze")	 ? "not_in_braze"
			   : !strcmp(op, "create")		 ? "created"
			   : !strcmp(op, "delete")		 ? "deleted"
			   : !strcmp(op, "unsubscribe")		 ? "unsubscribed"
								 : "updated";
	struct strbuf d = STRBUF_INIT;
	json_t *o = item(at, dest, run_id, what, NULL, "sync_log");
	if (!strcmp(what, "failed"))
		strbuf_addstr(&d, error ? error : "failed");
	else if (!strcmp(what, "not_in_braze"))
		strbuf_addstr(&d, "Braze has no such user: nothing was sent");
	else
		changed_words(o, changed, &d);
	if (!strcmp(what, "failed")) {
		json_object_set_new(o, "error", json_string(error ? error : ""));
		json_object_set_new(o, "attempts", json_integer(attempt));
	}
	json_object_set_new(o, "operation", json_string(op));
	json_object_set_new(o, "attempt", json_integer(attempt));
	if (d.len)
		json_object_set_new(o, "detail", json_string(d.buf));
	if (trigger)
		json_object_set_new(o, "trigger", json_string(trigger));
	strbuf_release(&d);
	return o;
}

static enum jerr hit_fn(void *ctx, const struct synclog_hit *x, struct jerror *err)
{
	(void)err;
	struct hist *h = ctx;
	hist_add(h, log_item(h->dest, x->run_id, x->at_ms, x->operation, x->status, x->changed, x->error, x->attempt,
			     x->trigger));
	return JERR_OK;
}

/* Whether an item of dest from the sync log has this run, attempt and what (what NULL: any). */
static bool logged(const struct hist *h, int64_t run_id, int attempt, const char *what)
{
	for (size_t i = h->from_log; i < h->n; i++) {
		json_t *o = h->items[i];
		if (json_integer_value(json_object_get(o, "run_id")) != run_id)
			continue;
		if (attempt && json_integer_value(json_object_get(o, "attempt")) != attempt)
			continue;
		const char *w = json_string_value(json_object_get(o, "what"));
		if (!what || !strcmp(w, what) || (!strcmp(what, "sent") && strcmp(w, "failed")))
			return true;
	}
	return false;
}

static enum jerr outbox_fn(void *ctx, const struct synclog_entry *e, struct jerror *err)
{
	(void)err;
	struct hist *h = ctx;
	int64_t run_id = h->body_run;
	if (e->key.text.len != h->key->text.len || memcmp(e->key.text.ptr, h->key->text.ptr, e->key.text.len))
		return JERR_OK;
	if (logged(h, run_id, e->attempt, NULL))
		return JERR_OK; /* written to the log, not yet deleted from the outbox */
	struct strbuf msg = STRBUF_INIT;
	strbuf_add(&msg, e->error.ptr, e->error.len);
	struct strbuf ch = STRBUF_INIT;
	strbuf_add(&ch, e->changed.ptr, e->changed.len);
	json_t *o = log_item(h->dest, run_id, e->at_ms, synclog_op_name(e->op), synclog_status_name(e->status),
			     ch.len ? ch.buf : NULL, e->error.len ? msg.buf : NULL, e->attempt, NULL);
	json_object_set_new(o, "waiting", json_true()); /* still in the outbox, not yet in the log database */
	strbuf_release(&msg);
	strbuf_release(&ch);
	hist_add(h, o);
	return JERR_OK;
}

/*
 * The destination's rows still in the outbox (oldest first, at most OUTBOX_SCAN_MAX of
 * them); *complete: all of them were looked through.
 */
static enum jerr read_outbox(struct state *st, struct hist *h, bool *complete, struct jerror *err)
{
	struct strbuf body = STRBUF_INIT;
	int64_t after = 0, id, run_id;
	bool found = true;
	enum jerr rc = JERR_OK;
	*complete = false;
	for (int i = 0; i < OUTBOX_SCAN_MAX && found && !rc; i++) {
		if ((rc = state_outbox_next(st, h->dest, after, &id, &run_id, &body, &found, err)) || !found)
			break;
		after = id;
		int64_t brun;
		struct slice bdest;
		uint32_t rows;
		h->body_run = run_id;
		rc = synclog_body_decode((struct slice){ body.buf, body.len }, &brun, &bdest, outbox_fn, h, &rows, err);
	}
	if (!rc && !found)
		*complete = true;
	strbuf_release(&body);
	return rc;
}

/* Words for an error (message: detail) into a fresh string. */
static json_t *error_text(const struct jerror *err)
{
	struct strbuf sb = STRBUF_INIT;
	strbuf_addstr(&sb, err->msg.len ? err->msg.buf : "failed");
	if (err->detail.len)
		strbuf_addf(&sb, ": %s", err->detail.buf);
	json_t *s = json_string(sb.buf);
	strbuf_release(&sb);
	return s;
}

/* The sync log of d: its rows of the record, then those waiting in the outbox; the note into view. */
static void read_sync_log(const struct config *cfg, const struct cfg_destination *d, struct state *st,
			  struct hist *h, json_t *view)
{
	const struct synclog_db_ops *ops = synclog_db_for_app(d->sync_log_app->type);
	struct jerror err = JERROR_INIT;
	json_t *note = json_pack("{s:s,s:s+,s:b,s:n,s:n,s:b}", "app", d->sync_log_app->id, "table",
				 d->sync_log_prefix, "sync_records", "read", 0, "error", "hint", "outbox_complete", 1);
	json_object_set_new(view, "sync_log", note);
	if (!ops || !ops->read_key) {
		json_object_set_new(note, "error", json_string("this app type cannot hold a sync log"));
		return;
	}
	if (ops->read_key(d->sync_log_app, cfg->root, d->sync_log_prefix, d->id, h->key->text, HISTORY_PER_DEST,
			  hit_fn, h, &err)) {
		json_object_set_new(note, "error", error_text(&err));
		if (err.hint.len)
			json_object_set_new(note, "hint", json_string(err.hint.buf));
	} else {
		json_object_set_new(note, "read", json_true());
	}
	jerror_release(&err);
	bool complete;
	if (read_outbox(st, h, &complete, &err)) {
		json_object_set_new(note, "outbox_error", error_text(&err));
		complete = false;
	}
	json_object_set_new(note, "outbox_complete", json_boolean(complete));
	jerror_release(&err);
}

/* ---- the state store's side ---- */

struct run_find {
	int64_t at, id;
};

static enum jerr run_find_fn(void *ctx, const struct state_run_info *run, struct jerror *err)
{
	(void)err;
	struct run_find *f = ctx;
	if (strcmp(run->kind, "run") || run->started_at > f->at || (run->finished_at && run->finished_at < f->at))
		return JERR_OK;
	f->id = run->id;
	return JERR_INTERRUPTED; /* newest first: the first that holds it */
}

static enum jerr ledger_fn(void *ctx, const struct state_ledger_entry *e, struct jerror *err)
{
	(void)err;
	struct hist *h = ctx;
	if (logged(h, e->run_id, 0, "failed"))
		return JERR_OK; /* the log's row of that run says it, with its operation */
	json_t *o = item(e->at, e->dest_id, e->run_id, "failed", e->error ? e->error : "failed", "state");
	json_object_set_new(o, "id", json_integer(e->id));
	json_object_set_new(o, "error", json_string(e->error ? e->error : ""));
	json_object_set_new(o, "attempts", json_integer(e->attempts));
	hist_add(h, o);
	return JERR_OK;
}

/* What the state store knows of the record at d: last confirmed send, failures, a pending retry. */
static enum jerr read_state(const struct cfg_destination *d, struct state *st, struct hist *h, struct jerror *err)
{
	struct state_row *row;
	bool found;
	enum jerr rc;
	if ((rc = state_get(st, d->id, h->key, &row, &found, err)))
		return rc;
	if (found && row->confirmed && row->confirmed_at) {
		struct run_find f = { row->confirmed_at, 0 };
		rc = state_runs_list(st, d->id, RUNS_SCAN_MAX, run_find_fn, &f, err);
		if (rc && rc != JERR_INTERRUPTED)
			return rc;
		if (!f.id || !logged(h, f.id, 0, "sent"))
			hist_add(h, item(row->confirmed_at, d->id, f.id, "sent",
					 row->in_scope ? "Braze confirmed what joey sent; it holds that now"
						       : "Braze confirmed it; joey no longer updates it there",
					 "state"));
	}
	bool pending = found && row->pending;
	int attempts = found ? row->attempts : 0;
	int64_t updated_at = found ? row->updated_at : 0;
	struct strbuf last = STRBUF_INIT;
	if (pending)
		strbuf_add(&last, row->last_error.ptr, row->last_error.len);
	size_t before = h->n;
	rc = state_ledger_list(st, d->id, 0, h->key, HISTORY_PER_DEST, ledger_fn, h, err);
	if (!rc && pending) {
		/* now's state: after the failure that made it, which the ledger stamps a moment later */
		for (size_t i = before; i < h->n; i++) {
			int64_t at = json_integer_value(json_object_get(h->items[i], "at"));
			updated_at = at > updated_at ? at : updated_at;
		}
		json_t *o = item(updated_at, d->id, 0, "pending", "the last attempt failed; the next run sends it again",
				 "state");
		json_object_set_new(o, "error", json_string(last.buf));
		json_object_set_new(o, "attempts", json_integer(attempts));
		hist_add(h, o);
	}
	strbuf_release(&last);
	return rc;
}

/* Newest first; a tie: a pending retry first, then by run, then the log before the store. */
static int item_cmp(const void *a, const void *b)
{
	json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;
	json_int_t ax = json_integer_value(json_object_get(x, "at")), ay = json_integer_value(json_object_get(y, "at"));
	if (ax != ay)
		return ax < ay ? 1 : -1;
	bool px = !strcmp(json_string_value(json_object_get(x, "what")), "pending"),
	     py = !strcmp(json_string_value(json_object_get(y, "what")), "pending");
	if (px != py)
		return px ? -1 : 1; /* the state now before the failure that made it */
	json_int_t rx = json_integer_value(json_object_get(x, "run_id")),
		   ry = json_integer_value(json_object_get(y, "run_id"));
	if (rx != ry)
		return rx < ry ? 1 : -1;
	return strcmp(json_string_value(json_object_get(y, "source")), json_string_value(json_object_get(x, "source")));
}

/* The run's trigger from the state store's notes, for items that have a run and none yet. */
static enum jerr add_triggers(struct state *st, json_t **items, size_t n, struct jerror *err)
{
	struct strbuf trig = STRBUF_INIT;
	enum jerr rc = JERR_OK;
	for (size_t i = 0; i < n && !rc; i++) {
		json_int_t run = json_integer_value(json_object_get(items[i], "run_id"));
		if (!run || !json_is_null(json_object_get(items[i], "trigger")))
			continue;
		int64_t read;
		bool found;
		if ((rc = state_run_note_get(st, run, &trig, &read, &found, err)))
			break;
		if (found && trig.len)
			json_object_set_new(items[i], "trigger", json_string(trig.buf));
	}
	strbuf_release(&trig);
	return rc;
}

enum jerr record_history(const struct config *cfg, const struct cfg_model *m, struct state *st,
			 const struct rkey *key, json_t *views, json_t **items, struct jerror *err)
{
	struct hist h = { .key = key };
	enum jerr rc = JERR_OK;
	json_t *all = json_array();
	*items = NULL;
	for (size_t i = 0; i < m->n_destinations && !rc; i++) {
		const struct cfg_destination *d = m->destinations[i];
		json_t *view = json_array_get(views, i);
		h.dest = d->id;
		h.n = h.from_log = 0;
		if (d->sync_log_app)
			read_sync_log(cfg, d, st, &h, view);
		else
			json_object_set_new(view, "sync_log", json_null());
		rc = read_state(d, st, &h, err);
		if (h.n)
			qsort(h.items, h.n, sizeof(*h.items), item_cmp);
		for (size_t k = 0; k < h.n; k++) {
			if (!rc && k < HISTORY_PER_DEST)
				json_array_append(all, h.items[k]);
			json_decref(h.items[k]);
		}
	}
	free(h.items);
	size_t n = json_array_size(all);
	json_t **sorted = xmalloc((n ? n : 1) * sizeof(*sorted));
	for (size_t k = 0; k < n; k++)
		sorted[k] = json_array_get(all, k);
	qsort(sorted, n, sizeof(*sorted), item_cmp);
	if (!rc)
		rc = add_triggers(st, sorted, n, err);
	if (!rc) {
		*items = json_array();
		for (size_t k = 0; k < n; k++)
			json_array_append(*items, sorted[k]);
	}
	free(sorted);
	json_decref(all);
	return rc;
}
