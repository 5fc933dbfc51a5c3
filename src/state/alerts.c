/* alerts.c: the alert tables (state/alerts.h) on every back end, through the back ends' exec. */
#include "state/alerts.h"

#include <string.h>

#include "state/backend.h"

/* ---- values ---- */

static int64_t col_int(const struct state_value *v)
{
	return v->kind == STATE_VAL_INT ? v->i : 0;
}

/* A text column as a NUL-terminated string in sb (reset first); NULL for SQL NULL. */
static const char *col_text(const struct state_value *v, struct strbuf *sb)
{
	strbuf_reset(sb);
	if (v->kind == STATE_VAL_NULL)
		return NULL;
	if (v->kind == STATE_VAL_INT)
		strbuf_addf(sb, "%lld", (long long)v->i);
	else
		strbuf_add(sb, v->s.ptr, v->s.len);
	return sb->buf;
}

/* ---- checks ---- */

static bool has_tables(const struct state *st)
{
	return st->version >= STATE_ALERTS_SINCE;
}

static enum jerr writable(struct state *st, const char *what, struct jerror *err)
{
	if (st->readonly) {
		jerror_set(err, JERR_STATE, "could not %s: state store \"%s\" is open read-only", what, st->path);
		return JERR_STATE;
	}
	if (!has_tables(st)) {
		jerror_set(err, JERR_STATE, "could not %s: state store \"%s\" has no alert tables (schema version %d)",
			   what, st->path, st->version);
		jerror_hint(err, "upgrade it with 'joey state migrate' (any joey run does too)");
		return JERR_STATE;
	}
	return JERR_OK;
}

static enum jerr exec(struct state *st, const char *what, const char *sql, const struct state_value *p, size_t n,
		      enum jerr (*fn)(void *, const struct state_value *, size_t, struct jerror *), void *ctx,
		      uint64_t *changed, struct jerror *err)
{
	return st->ops->exec(st, what, sql, p, n, fn, ctx, changed, err);
}

static enum jerr first_int(void *ctx, const struct state_value *row, size_t n, struct jerror *err)
{
	(void)err;
	if (n >= 1)
		*(int64_t *)ctx = col_int(&row[0]);
	return JERR_OK;
}

/* ---- incidents ---- */

enum jerr state_alert_open(struct state *st, const char *alert_id, const char *dest_id, const char *trigger,
			   int64_t run_id, const char *summary, int64_t now, int64_t *incident_id, bool *opened,
			   struct jerror *err)
{
	const char *what = "open an alert incident";
	struct state_value p[] = { state_val_text(alert_id), state_val_text(dest_id), state_val_text(trigger),
				   state_val_int(now),
				   run_id > 0 ? state_val_int(run_id) : state_val_text(NULL),
				   state_val_text(summary) };
	enum jerr rc;
	int64_t id = 0;

	*opened = false;
	*incident_id = 0;
	if ((rc = writable(st, what, err)))
		return rc;
	rc = exec(st, what,
		  "INSERT INTO alert_incidents (alert_id, dest_id, trigger_name, opened_at, run_id, last_run_id,"
		  " last_seen_at, hits, summary) VALUES ($1, $2, $3, $4, $5, $5, $4, 1, $6)"
		  " ON CONFLICT DO NOTHING RETURNING id",
		  p, ARRAY_SIZE(p), first_int, &id, NULL, err);
	if (rc)
		return rc;
	if (id) {
		*opened = true;
		*incident_id = id;
		return JERR_OK;
	}
	rc = exec(st, what,
		  "UPDATE alert_incidents SET hits = hits + 1, last_seen_at = $4,"
		  " last_run_id = COALESCE(CAST($5 AS BIGINT), last_run_id)"
		  " WHERE alert_id = $1 AND dest_id = $2 AND trigger_name = $3 AND resolved_at IS NULL RETURNING id",
		  p, 5, first_int, &id, NULL, err);
	*incident_id = id;
	return rc;
}

enum jerr state_alert_resolve(struct state *st, const char *alert_id, const char *dest_id, const char *trigger,
			      int64_t now, int64_t *incident_id, bool *resolved, struct jerror *err)
{
	const char *what = "resolve an alert incident";
	struct state_value p[] = { state_val_text(alert_id), state_val_text(dest_id), state_val_text(trigger),
				   state_val_int(now) };
	int64_t id = 0;
	enum jerr rc;

	*resolved = false;
	*incident_id = 0;
	if (!has_tables(st))
		return JERR_OK; /* nothing can be open */
	if ((rc = writable(st, what, err)))
		return rc;
	rc = exec(st, what,
		  "UPDATE alert_incidents SET resolved_at = $4"
		  " WHERE alert_id = $1 AND dest_id = $2 AND trigger_name = $3 AND resolved_at IS NULL RETURNING id",
		  p, ARRAY_SIZE(p), first_int, &id, NULL, err);
	*resolved = id != 0;
	*incident_id = id;
	return rc;
}

enum jerr state_alert_enqueue(struct state *st, int64_t incident_id, const char *alert_id, const char *dest_id,
			      const char *event, const char *body, int64_t now, int64_t *delivery_id,
			      struct jerror *err)
{
	const char *what = "queue an alert message";
	struct state_value p[] = { incident_id > 0 ? state_val_int(incident_id) : state_val_text(NULL),
				   state_val_text(alert_id), state_val_text(dest_id), state_val_text(event),
				   state_val_text(body), state_val_int(now) };
	int64_t id = 0;
	enum jerr rc;

	if (delivery_id)
		*delivery_id = 0;
	if ((rc = writable(st, what, err)))
		return rc;
	rc = exec(st, what,
		  "INSERT INTO alert_deliveries (incident_id, alert_id, dest_id, event, body, status, attempts,"
		  " next_at, created_at) VALUES ($1, $2, $3, $4, $5, 'pending', 0, $6, $6) RETURNING id",
		  p, ARRAY_SIZE(p), first_int, &id, NULL, err);
	if (delivery_id)
		*delivery_id = id;
	return rc;
}

/* ---- delivery ---- */

void state_alert_claimed_init(struct state_alert_claimed *c)
{
	memset(c, 0, sizeof(*c));
	strbuf_init(&c->alert_id, 0);
	strbuf_init(&c->dest_id, 0);
	strbuf_init(&c->event, 0);
	strbuf_init(&c->body, 0);
}

void state_alert_claimed_release(struct state_alert_claimed *c)
{
	strbuf_release(&c->alert_id);
	strbuf_release(&c->dest_id);
	strbuf_release(&c->event);
	strbuf_release(&c->body);
}

static enum jerr claimed_row(void *ctx, const struct state_value *row, size_t n, struct jerror *err)
{
	struct state_alert_claimed *c = ctx;
	struct strbuf *dst[] = { &c->alert_id, &c->dest_id, &c->event, &c->body };
	(void)err;
	if (n < 8)
		return JERR_OK;
	c->id = col_int(&row[0]);
	c->incident_id = col_int(&row[1]);
	for (size_t i = 0; i < ARRAY_SIZE(dst); i++) {
		strbuf_reset(dst[i]);
		if (row[2 + i].kind == STATE_VAL_TEXT)
			strbuf_add(dst[i], row[2 + i].s.ptr, row[2 + i].s.len);
	}
	c->attempts = (int)col_int(&row[6]);
	c->created_at = col_int(&row[7]);
	return JERR_OK;
}

enum jerr state_alert_claim(struct state *st, int64_t now, int64_t lease_ms, int64_t only_id,
			    struct state_alert_claimed *c, bool *found, struct jerror *err)
{
	const char *what = "claim an alert message";
	enum jerr rc;

	*found = false;
	if (!has_tables(st) || st->readonly)
		return JERR_OK;
	/* a few tries: another process may claim the row we picked first */
	for (int tries = 0; tries < 8; tries++) {
		int64_t id = only_id;
		struct state_value q[] = { state_val_int(now) };
		if (!only_id) {
			rc = exec(st, what,
				  "SELECT id FROM alert_deliveries WHERE (status = 'pending' AND next_at <= $1)"
				  " OR (status = 'sending' AND lease_until < $1) ORDER BY next_at, id LIMIT 1",
				  q, 1, first_int, &id, NULL, err);
			if (rc || !id)
				return rc;
		}
		struct state_value p[] = { state_val_int(id), state_val_int(now), state_val_int(now + lease_ms),
					   state_val_int(only_id ? 1 : 0) };
		c->id = 0;
		rc = exec(st, what,
			  "UPDATE alert_deliveries SET status = 'sending', attempts = attempts + 1, lease_until = $3"
			  " WHERE id = $1 AND ((status = 'pending' AND (next_at <= $2 OR $4 = 1))"
			  " OR (status = 'sending' AND lease_until < $2))"
			  " RETURNING id, incident_id, alert_id, dest_id, event, body, attempts, created_at",
			  p, ARRAY_SIZE(p), claimed_row, c, NULL, err);
		if (rc)
			return rc;
		if (c->id) {
			*found = true;
			return JERR_OK;
		}
		if (only_id)
			return JERR_OK;
	}
	return JERR_OK;
}

enum jerr state_alert_done(struct state *st, int64_t id, const char *error, int64_t next_at, int64_t now,
			   struct jerror *err)
{
	const char *what = "record an alert message's delivery";
	enum jerr rc;
	if ((rc = writable(st, what, err)))
		return rc;
	if (!error) {
		struct state_value p[] = { state_val_int(id), state_val_int(now) };
		return exec(st, what,
			    "UPDATE alert_deliveries SET status = 'sent', sent_at = $2, lease_until = NULL,"
			    " last_error = NULL WHERE id = $1",
			    p, ARRAY_SIZE(p), NULL, NULL, NULL, err);
	}
	struct state_value p[] = { state_val_int(id), state_val_text(error), state_val_int(next_at),
				   state_val_text(next_at ? "pending" : "failed") };
	return exec(st, what,
		    "UPDATE alert_deliveries SET status = $4, last_error = $2, next_at = CASE WHEN CAST($3 AS BIGINT) > 0"
		    " THEN CAST($3 AS BIGINT) ELSE next_at END, lease_until = NULL WHERE id = $1",
		    p, ARRAY_SIZE(p), NULL, NULL, NULL, err);
}

enum jerr state_alert_next_due(struct state *st, int64_t *next_at, bool *found, struct jerror *err)
{
	int64_t n = -1;
	enum jerr rc;
	*found = false;
	*next_at = 0;
	if (!has_tables(st))
		return JERR_OK;
	rc = exec(st, "read the alert messages to send",
		  "SELECT coalesce(min(next_at), -1) FROM alert_deliveries WHERE status IN ('pending', 'sending')", NULL, 0,
		  first_int, &n, NULL, err);
	if (!rc && n >= 0) {
		*found = true;
		*next_at = n;
	}
	return rc;
}

/* ---- listings ---- */

struct incident_arg {
	state_alert_incident_fn fn;
	void *ctx;
	struct strbuf t[4];
};

static enum jerr incident_row(void *ctx, const struct state_value *row, size_t n, struct jerror *err)
{
	struct incident_arg *a = ctx;
	struct state_alert_incident in = { 0 };
	if (n < 11)
		return JERR_OK;
	in.id = col_int(&row[0]);
	in.alert_id = col_text(&row[1], &a->t[0]);
	in.dest_id = col_text(&row[2], &a->t[1]);
	in.trigger = col_text(&row[3], &a->t[2]);
	in.opened_at = col_int(&row[4]);
	in.resolved_at = col_int(&row[5]);
	in.run_id = col_int(&row[6]);
	in.last_run_id = col_int(&row[7]);
	in.last_seen_at = col_int(&row[8]);
	in.hits = col_int(&row[9]);
	in.summary = col_text(&row[10], &a->t[3]);
	return a->fn(a->ctx, &in, err);
}

enum jerr state_alert_incidents(struct state *st, const char *alert_id, const char *dest_id, bool open_only,
				size_t limit, int64_t before, state_alert_incident_fn fn, void *ctx,
				struct jerror *err)
{
	struct incident_arg a = { fn, ctx, { STRBUF_INIT, STRBUF_INIT, STRBUF_INIT, STRBUF_INIT } };
	struct state_value p[] = { state_val_text(alert_id), state_val_text(dest_id), state_val_int(open_only),
				   state_val_int(before),
				   state_val_int(limit && limit < INT32_MAX ? (int64_t)limit : INT32_MAX) };
	enum jerr rc;
	if (!has_tables(st))
		return JERR_OK;
	rc = exec(st, "list alert incidents",
		  "SELECT id, alert_id, dest_id, trigger_name, opened_at, resolved_at, run_id, last_run_id,"
		  " last_seen_at, hits, summary FROM alert_incidents"
		  " WHERE (CAST($1 AS TEXT) IS NULL OR alert_id = $1) AND (CAST($2 AS TEXT) IS NULL OR dest_id = $2)"
		  " AND ($3 = 0 OR resolved_at IS NULL) AND ($4 = 0 OR id < $4)"
		  " ORDER BY id DESC LIMIT $5",
		  p, ARRAY_SIZE(p), incident_row, &a, NULL, err);
	for (size_t i = 0; i < ARRAY_SIZE(a.t); i++)
		strbuf_release(&a.t[i]);
	return rc;
}

struct delivery_arg {
	state_alert_delivery_fn fn;
	void *ctx;
	struct strbuf t[6];
};

static enum jerr delivery_row(void *ctx, const struct state_value *row, size_t n, struct jerror *err)
{
	struct delivery_arg *a = ctx;
	struct state_alert_delivery d = { 0 };
	if (n < 12)
		return JERR_OK;
	d.id = col_int(&row[0]);
	d.incident_id = col_int(&row[1]);
	d.alert_id = col_text(&row[2], &a->t[0]);
	d.dest_id = col_text(&row[3], &a->t[1]);
	d.event = col_text(&row[4], &a->t[2]);
	d.body = col_text(&row[5], &a->t[3]);
	d.status = col_text(&row[6], &a->t[4]);
	d.attempts = (int)col_int(&row[7]);
	d.next_at = col_int(&row[8]);
	d.last_error = col_text(&row[9], &a->t[5]);
	d.created_at = col_int(&row[10]);
	d.sent_at = col_int(&row[11]);
	return a->fn(a->ctx, &d, err);
}

enum jerr state_alert_deliveries(struct state *st, const char *alert_id, size_t limit, int64_t before,
				 state_alert_delivery_fn fn, void *ctx, struct jerror *err)
{
	struct delivery_arg a = { fn, ctx, { STRBUF_INIT, STRBUF_INIT, STRBUF_INIT, STRBUF_INIT, STRBUF_INIT, STRBUF_INIT } };
	struct state_value p[] = { state_val_text(alert_id), state_val_int(before),
				   state_val_int(limit && limit < INT32_MAX ? (int64_t)limit : INT32_MAX) };
	enum jerr rc;
	if (!has_tables(st))
		return JERR_OK;
	rc = exec(st, "list alert messages",
		  "SELECT id, incident_id, alert_id, dest_id, event, body, status, attempts, next_at, last_error,"
		  " created_at, sent_at FROM alert_deliveries WHERE (CAST($1 AS TEXT) IS NULL OR alert_id = $1)"
		  " AND ($2 = 0 OR id < $2) ORDER BY id DESC LIMIT $3",
		  p, ARRAY_SIZE(p), delivery_row, &a, NULL, err);
	for (size_t i = 0; i < ARRAY_SIZE(a.t); i++)
		strbuf_release(&a.t[i]);
	return rc;
}

/* ---- what the triggers read ---- */

enum jerr state_alert_observe(struct state *st, const char *dest_id, int64_t run_id, uint64_t records, int64_t now,
			      struct jerror *err)
{
	const char *what = "record a destination's records read";
	struct state_value p[] = { state_val_text(dest_id), state_val_int(run_id),
				   state_val_int((int64_t)records), state_val_int(now) };
	enum jerr rc;
	if ((rc = writable(st, what, err)))
		return rc;
	return exec(st, what,
		    "INSERT INTO alert_observations (dest_id, run_id, records, at) VALUES ($1, $2, $3, $4)"
		    " ON CONFLICT (dest_id) DO UPDATE SET run_id = excluded.run_id, records = excluded.records,"
		    " at = excluded.at",
		    p, ARRAY_SIZE(p), NULL, NULL, NULL, err);
}

struct obs_arg {
	uint64_t *records;
	int64_t *run_id;
	bool *found;
};

static enum jerr obs_row(void *ctx, const struct state_value *row, size_t n, struct jerror *err)
{
	struct obs_arg *a = ctx;
	(void)err;
	if (n < 2)
		return JERR_OK;
	*a->records = col_int(&row[0]) > 0 ? (uint64_t)col_int(&row[0]) : 0;
	*a->run_id = col_int(&row[1]);
	*a->found = true;
	return JERR_OK;
}

enum jerr state_alert_observation(struct state *st, const char *dest_id, uint64_t *records, int64_t *run_id,
				  bool *found, struct jerror *err)
{
	struct obs_arg a = { records, run_id, found };
	struct state_value p[] = { state_val_text(dest_id) };
	*found = false;
	*records = 0;
	*run_id = 0;
	if (!has_tables(st))
		return JERR_OK;
	return exec(st, "read a destination's records read",
		    "SELECT records, run_id FROM alert_observations WHERE dest_id = $1", p, 1, obs_row, &a, NULL, err);
}

enum jerr state_alert_dest_times(struct state *st, const char *dest_id, int64_t *last_success_at,
				 int64_t *first_run_at, struct jerror *err)
{
	struct state_value p[] = { state_val_text(dest_id) };
	enum jerr rc;
	*last_success_at = 0;
	*first_run_at = 0;
	rc = exec(st, "read a destination's run history",
		  "SELECT max(finished_at) FROM runs WHERE dest_id = $1 AND kind = 'run' AND status = 'success'", p, 1,
		  first_int, last_success_at, NULL, err);
	if (!rc)
		rc = exec(st, "read a destination's run history",
			  "SELECT min(started_at) FROM runs WHERE dest_id = $1 AND kind = 'run'", p, 1, first_int,
			  first_run_at, NULL, err);
	return rc;
}
