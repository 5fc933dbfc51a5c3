/* alert.c: incidents from run results and periodic checks, and the delivery pump (alert.h). */
#include "alert/alert.h"

#include <jansson.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "alert/eval.h"
#include "alert/send.h"
#include "base/log.h"
#include "base/xalloc.h"
#include "state/alerts.h"

#define LEASE_MS (5 * 60 * 1000) /* a message being sent; after it, another process may take it */

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void alert_opts_defaults(struct alert_opts *o)
{
	const char *v;
	memset(o, 0, sizeof(*o));
	o->retry_base_ms = 10000;
	o->retry_max_ms = 3600 * 1000;
	o->max_attempts = 10;
	o->timeout_ms = 30000;
	if ((v = getenv("JOEY_ALERT_RETRY_MS")) && atoll(v) > 0)
		o->retry_base_ms = atoll(v);
	if ((v = getenv("JOEY_ALERT_ATTEMPTS")) && atoi(v) > 0)
		o->max_attempts = atoi(v);
}

/* Can this store hold incidents? Says why not once per process. */
static bool usable(struct state *st)
{
	static atomic_int warned; /* serve's job threads and alert thread */
	if (state_schema_version(st) >= STATE_ALERTS_SINCE)
		return true;
	if (!atomic_fetch_add(&warned, 1))
		log_warn("alerts are not evaluated: state store \"%s\" is at schema version %d (alerts need %d; "
			 "'joey state migrate' upgrades it)",
			 state_path(st), state_schema_version(st), STATE_ALERTS_SINCE);
	return false;
}

/* ---- the event, as queued (no secrets: the channel's options are read when sending) ---- */

struct event {
	const struct cfg_alert *a;
	const char *dest_id;
	enum alert_trigger trigger;
	const struct alert_run_facts *run; /* NULL: a periodic check */
	const char *summary;
};

static char *event_json(const char *kind, const struct event *e, int64_t incident_id, int64_t now)
{
	json_t *o = json_object(), *al = json_object();
	char *text;
	json_object_set_new(o, "event", json_string(kind));
	json_object_set_new(al, "id", json_string(e->a->id));
	json_object_set_new(al, "name", json_string(e->a->name ? e->a->name : e->a->id));
	json_object_set_new(al, "type", json_string(e->a->type ? e->a->type : ""));
	json_object_set_new(o, "alert", al);
	json_object_set_new(o, "destination", e->dest_id ? json_string(e->dest_id) : json_null());
	json_object_set_new(o, "trigger", e->dest_id ? json_string(alert_trigger_name(e->trigger)) : json_null());
	json_object_set_new(o, "incident", incident_id ? json_pack("{s:I}", "id", (json_int_t)incident_id) : json_null());
	json_object_set_new(o, "summary", json_string(e->summary ? e->summary : ""));
	if (e->run) {
		const struct run_counts *c = &e->run->counts;
		json_t *r = json_object();
		json_object_set_new(r, "id", json_integer(e->run->run_id));
		json_object_set_new(r, "status", json_string(run_status_name(e->run->status)));
		json_object_set_new(r, "counts",
				    json_pack("{s:I,s:I,s:I,s:I,s:I,s:I}", "created", (json_int_t)c->created, "updated",
					      (json_int_t)c->updated, "deleted", (json_int_t)c->deleted, "unsubscribed",
					      (json_int_t)c->unsubscribed, "unchanged", (json_int_t)c->unchanged, "failed",
					      (json_int_t)c->failed));
		json_object_set_new(r, "records_read", json_integer((json_int_t)e->run->records));
		json_object_set_new(r, "deletes_held", json_integer((json_int_t)e->run->deletes_held));
		json_object_set_new(r, "elapsed_ms", json_integer(e->run->elapsed_ms));
		json_object_set_new(r, "error", e->run->error && *e->run->error ? json_string(e->run->error) : json_null());
		json_object_set_new(o, "run", r);
	} else {
		json_object_set_new(o, "run", json_null());
	}
	json_object_set_new(o, "at", json_integer(now));
	text = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(o);
	return text;
}

/* Turn a verdict into an incident change and its message, in one transaction. */
static void apply(struct state *st, const struct event *e, enum alert_verdict v, int64_t now)
{
	struct jerror err = JERROR_INIT;
	const char *tname = alert_trigger_name(e->trigger);
	int64_t incident = 0;
	bool changed = false;
	char *body = NULL;
	enum jerr rc;

	if (v == AV_UNKNOWN)
		return;
	if ((rc = state_begin(st, &err)))
		goto out;
	if (v == AV_FIRING)
		rc = state_alert_open(st, e->a->id, e->dest_id, tname, e->run ? e->run->run_id : 0, e->summary, now,
				      &incident, &changed, &err);
	else
		rc = state_alert_resolve(st, e->a->id, e->dest_id, tname, now, &incident, &changed, &err);
	if (!rc && changed) {
		body = event_json(v == AV_FIRING ? "alert.opened" : "alert.resolved", e, incident, now);
		rc = state_alert_enqueue(st, incident, e->a->id, e->dest_id, v == AV_FIRING ? "opened" : "resolved", body,
					 now, NULL, &err);
	}
	if (rc) {
		state_rollback(st);
		goto out;
	}
	rc = state_commit(st, &err);
	if (!rc && changed) {
		if (v == AV_FIRING)
			log_warn("alert \"%s\": destination \"%s\": %s (incident %lld opened)", e->a->id, e->dest_id,
				 e->summary, (long long)incident);
		else
			log_info("alert \"%s\": destination \"%s\": %s cleared (incident %lld resolved)", e->a->id,
				 e->dest_id, tname, (long long)incident);
	}
out:
	if (rc)
		log_error("alert \"%s\": destination \"%s\": %s not recorded: %s%s%s", e->a->id, e->dest_id, tname,
			  err.msg.buf, err.detail.len ? ": " : "", err.detail.buf);
	free(body);
	jerror_release(&err);
}

static void check_stale_dest(const struct config *cfg, struct state *st, const struct cfg_destination *d, int64_t now)
{
	int64_t last_ok = 0, first = 0;
	bool read = false;
	struct strbuf summary = STRBUF_INIT;
	for (size_t i = 0; i < cfg->n_alerts; i++) {
		const struct cfg_alert *a = cfg->alerts[i];
		if (!alert_trigger_on(a, AT_NO_SUCCESS) || !alert_covers(a, d))
			continue;
		if (!read) {
			struct jerror err = JERROR_INIT;
			if (state_alert_dest_times(st, d->id, &last_ok, &first, &err)) {
				log_error("alert check of destination \"%s\": %s", d->id, err.msg.buf);
				jerror_release(&err);
				break;
			}
			read = true;
		}
		enum alert_verdict v = alert_eval_stale(a, now, last_ok, first, &summary);
		struct event e = { a, d->id, AT_NO_SUCCESS, NULL, summary.buf };
		apply(st, &e, v, now);
	}
	strbuf_release(&summary);
}

/* An open incident whose alert, trigger or destination left the config (or the scope). */
struct orphans {
	const struct config *cfg;
	char (*keys)[3][200];
	size_t n, alloc;
};

static enum jerr orphan_fn(void *ctx, const struct state_alert_incident *in, struct jerror *err)
{
	struct orphans *o = ctx;
	const struct cfg_alert *a = config_alert(o->cfg, in->alert_id);
	const struct cfg_destination *d = config_destination(o->cfg, in->dest_id);
	bool live = false;
	(void)err;
	for (int t = 0; a && d && t < AT__COUNT; t++)
		if (!strcmp(alert_trigger_name((enum alert_trigger)t), in->trigger))
			live = alert_trigger_on(a, (enum alert_trigger)t) && alert_covers(a, d);
	if (live || strlen(in->alert_id) >= 200 || strlen(in->dest_id) >= 200 || strlen(in->trigger) >= 200)
		return JERR_OK;
	if (o->n == o->alloc) {
		o->alloc = o->alloc ? 2 * o->alloc : 8;
		o->keys = xrealloc(o->keys, o->alloc * sizeof(*o->keys));
	}
	snprintf(o->keys[o->n][0], sizeof(o->keys[0][0]), "%s", in->alert_id);
	snprintf(o->keys[o->n][1], sizeof(o->keys[0][1]), "%s", in->dest_id);
	snprintf(o->keys[o->n][2], sizeof(o->keys[0][2]), "%s", in->trigger);
	o->n++;
	return JERR_OK;
}

/*
 * Close, without a message, the open incidents nothing evaluates any more: their alert
 * or destination was removed, the trigger turned off, the destination left the scope.
 */
static void close_orphans(const struct config *cfg, struct state *st, int64_t now)
{
	struct orphans o = { cfg, NULL, 0, 0 };
	struct jerror err = JERROR_INIT;
	if (state_alert_incidents(st, NULL, NULL, true, 0, 0, orphan_fn, &o, &err))
		log_error("alert incidents not read: %s", err.msg.buf);
	for (size_t i = 0; i < o.n; i++) {
		int64_t id;
		bool closed;
		jerror_release(&err);
		err = (struct jerror)JERROR_INIT;
		if (state_alert_resolve(st, o.keys[i][0], o.keys[i][1], o.keys[i][2], now, &id, &closed, &err))
			log_error("alert incident not closed: %s", err.msg.buf);
		else if (closed)
			log_info("alert \"%s\": destination \"%s\": incident %lld closed: the %s trigger no longer "
				 "covers it in the config", o.keys[i][0], o.keys[i][1], (long long)id, o.keys[i][2]);
	}
	free(o.keys);
	jerror_release(&err);
}

void alert_check_stale(const struct config *cfg, struct state *st, int64_t now, const struct alert_opts *o)
{
	(void)o;
	if (!usable(st))
		return;
	close_orphans(cfg, st, now);
	if (!cfg->n_alerts)
		return;
	for (size_t i = 0; i < cfg->n_destinations; i++)
		check_stale_dest(cfg, st, cfg->destinations[i], now);
}

void alert_after_run(const struct config *cfg, struct state *st, const struct run *r, const struct alert_opts *o)
{
	struct strbuf summary = STRBUF_INIT;
	int64_t now = now_ms();
	if (!usable(st))
		return;
	close_orphans(cfg, st, now);
	for (size_t i = 0; i < r->n_dests; i++) {
		const struct run_dest *rd = &r->dests[i];
		const struct cfg_destination *d = rd->dest;
		struct alert_run_facts f = { 0 };
		struct jerror err = JERROR_INIT;
		bool incremental = false;

		if (rd->run_id <= 0)
			continue; /* it never started (its lock was held): no run to judge */
		for (size_t m = 0; m < r->n_models; m++)
			if (r->models[m].model == d->model && r->models[m].incremental)
				incremental = true;
		f.run_id = rd->run_id;
		f.status = rd->status;
		f.counts = rd->counts;
		f.deletes_held = rd->deletes_held;
		f.run_error = (rd->status == RUN_FAILED && rd->err.code != JERR_OK) || rd->unreadable > 0;
		f.error = rd->err.msg.len ? rd->err.msg.buf : NULL;
		f.elapsed_ms = (int64_t)(rd->elapsed_s * 1000);
		f.records = rd->records_read;
		/* the pass read every record when nothing on the reading side failed: a Braze
		 * error or the guard stops the sending, not the reading */
		enum jerr code = rd->err.code;
		f.full_read = !incremental && rd->status != RUN_INTERRUPTED && rd->status != RUN_RUNNING && !rd->unreadable &&
			      (code == JERR_OK || code == JERR_GUARD || code == JERR_HTTP || code == JERR_AUTH ||
			       code == JERR_REMOTE);
		if (o && o->worker_job)
			f.full_read = false;
		int64_t prev_run = 0;
		if (state_alert_observation(st, d->id, &f.prev_records, &prev_run, &f.have_prev, &err)) {
			log_error("alert check of destination \"%s\": %s", d->id, err.msg.buf);
			jerror_release(&err);
			err = (struct jerror)JERROR_INIT;
		}
		for (size_t k = 0; k < cfg->n_alerts; k++) {
			const struct cfg_alert *a = cfg->alerts[k];
			if (!alert_covers(a, d))
				continue;
			for (int t = 0; t < AT__COUNT; t++) {
				if (t == AT_NO_SUCCESS || !alert_trigger_on(a, (enum alert_trigger)t) ||
				    (o && o->worker_job && t == AT_RUN_LONGER))
					continue;
				enum alert_verdict v = alert_eval_run(a, (enum alert_trigger)t, &f, &summary);
				struct event e = { a, d->id, (enum alert_trigger)t, &f, summary.buf };
				apply(st, &e, v, now);
			}
		}
		if (f.full_read && state_alert_observe(st, d->id, f.run_id, f.records, now, &err))
			log_error("records read by destination \"%s\" not remembered: %s", d->id, err.msg.buf);
		jerror_release(&err);
		check_stale_dest(cfg, st, d, now);
	}
	strbuf_release(&summary);
}

/* ---- delivery ---- */

static int64_t backoff_ms(const struct alert_opts *o, int attempts)
{
	int64_t base = o->retry_base_ms > 0 ? o->retry_base_ms : 10000;
	int64_t max = o->retry_max_ms > 0 ? o->retry_max_ms : 3600 * 1000;
	int64_t d = base;
	for (int i = 1; i < attempts && d < max; i++)
		d *= 2;
	return d < max ? d : max;
}

/* Send claimed c and record how it went; retry: whether a failure is tried again. */
static enum jerr deliver(const struct config *cfg, struct state *st, const struct alert_opts *o,
			 const struct state_alert_claimed *c, bool retry, struct jerror *send_err, struct jerror *err)
{
	const struct cfg_alert *a = config_alert(cfg, c->alert_id.buf);
	int max = o->max_attempts > 0 ? o->max_attempts : 10;
	int64_t next = 0, now;
	enum jerr rc;

	if (!a) {
		jerror_set(send_err, JERR_IO, "alert \"%s\" is no longer in the config", c->alert_id.buf);
	} else if (!alert_send(a, cfg->root, c->id, c->body.buf, o, send_err)) {
		now = now_ms();
		if ((rc = state_alert_done(st, c->id, NULL, 0, now, err)))
			return rc;
		log_info("alert \"%s\": %s message %lld sent%s%s", c->alert_id.buf, c->event.buf, (long long)c->id,
			 c->dest_id.len ? " for destination " : "", c->dest_id.buf);
		return JERR_OK;
	}
	now = now_ms();
	if (a && retry && c->attempts < max)
		next = now + backoff_ms(o, c->attempts);
	if ((rc = state_alert_done(st, c->id, send_err->msg.buf, next, now, err)))
		return rc;
	if (next)
		log_warn("alert \"%s\": %s message %lld not sent (attempt %d of %d): %s; trying again in %lld s",
			 c->alert_id.buf, c->event.buf, (long long)c->id, c->attempts, max, send_err->msg.buf,
			 (long long)((next - now + 999) / 1000));
	else
		log_error("alert \"%s\": %s message %lld not sent after %d attempt%s: %s", c->alert_id.buf, c->event.buf,
			  (long long)c->id, c->attempts, c->attempts == 1 ? "" : "s", send_err->msg.buf);
	return JERR_OK;
}

enum jerr alert_pump(const struct config *cfg, struct state *st, const struct alert_opts *o, size_t *sent,
		     struct jerror *err)
{
	struct state_alert_claimed c;
	enum jerr rc = JERR_OK;
	size_t n = 0;
	int64_t start = now_ms(), now;

	if (sent)
		*sent = 0;
	if (state_schema_version(st) < STATE_ALERTS_SINCE)
		return JERR_OK;
	state_alert_claimed_init(&c);
	while (!(o->stop && *o->stop)) {
		struct jerror serr = JERROR_INIT;
		struct alert_opts so = *o;
		bool found;
		/*
		 * One pass: only what was due when it began. A message that fails in it is due
		 * again later (its backoff), maybe before the pass ends when a channel hangs
		 * until its timeout; taking it again here would keep this call going for as
		 * long as the channel is down. Claimed "at start", the lease still runs from now.
		 */
		now = now_ms();
		if (o->deadline && now >= o->deadline && !o->try_all)
			break;
		if ((rc = state_alert_claim(st, start, LEASE_MS + (now - start), 0, &c, &found, err)) || !found)
			break;
		if (o->deadline) { /* a request is cut at the deadline (but given a second) */
			int64_t left = o->deadline - now < 1000 ? 1000 : o->deadline - now;
			long t = so.timeout_ms > 0 ? so.timeout_ms : 30000;
			so.timeout_ms = left < t ? (long)left : t;
		}
		rc = deliver(cfg, st, &so, &c, true, &serr, err);
		if (!rc && !serr.code)
			n++;
		jerror_release(&serr);
		if (rc)
			break;
	}
	state_alert_claimed_release(&c);
	if (sent)
		*sent = n;
	return rc;
}

enum jerr alert_test(const struct config *cfg, struct state *st, const struct cfg_alert *a,
		     const struct alert_opts *o, int64_t *delivery_id, struct jerror *err)
{
	struct state_alert_claimed c;
	struct jerror serr = JERROR_INIT;
	struct event e = { a, NULL, AT_RUN_FAILED, NULL, "test message: this is how joey tells you a sync went wrong" };
	int64_t now = now_ms(), id = 0;
	char *body = event_json("alert.test", &e, 0, now);
	bool found = false;
	enum jerr rc;

	*delivery_id = 0;
	state_alert_claimed_init(&c);
	/*
	 * Queued and claimed in one transaction: a pump (this process's alert thread, or
	 * another process) never sees the message pending, so it cannot take it first.
	 */
	if ((rc = state_begin(st, err))) {
		free(body);
		return rc;
	}
	rc = state_alert_enqueue(st, 0, a->id, NULL, "test", body, now, &id, err);
	free(body);
	if (!rc)
		rc = state_alert_claim(st, now, LEASE_MS, id, &c, &found, err);
	if (!rc && !found)
		rc = jerror_set(err, JERR_STATE, "the test message %lld was taken by another process", (long long)id);
	if (rc)
		state_rollback(st);
	else
		rc = state_commit(st, err);
	if (!rc)
		*delivery_id = id;
	if (!rc)
		rc = deliver(cfg, st, o, &c, false, &serr, err);
	if (!rc && serr.code) {
		jerror_set(err, JERR_IO, "%s", serr.msg.buf);
		if (serr.detail.len)
			jerror_detail(err, "%s", serr.detail.buf);
		rc = JERR_IO;
	}
	jerror_release(&serr);
	state_alert_claimed_release(&c);
	return rc;
}

void alert_finish_run(const struct config *cfg, struct state *st, const struct run *r, const struct alert_opts *o,
		      int64_t wait_ms)
{
	int64_t deadline = now_ms() + wait_ms;
	struct alert_opts po = *o;
	alert_after_run(cfg, st, r, o);
	if (state_schema_version(st) < STATE_ALERTS_SINCE)
		return;
	/* the first pass: every message due now is tried once, none past the wait by more than a second */
	po.deadline = deadline;
	po.try_all = true;
	for (;;) {
		struct jerror err = JERROR_INIT;
		int64_t next = 0;
		bool found = false;
		if (alert_pump(cfg, st, &po, NULL, &err) || state_alert_next_due(st, &next, &found, &err)) {
			log_error("alert messages: %s%s%s", err.msg.buf, err.detail.len ? ": " : "", err.detail.buf);
			jerror_release(&err);
			return;
		}
		jerror_release(&err);
		int64_t now = now_ms();
		if (!found || next > deadline || now >= deadline || (o->stop && *o->stop)) {
			if (found)
				log_info("alert messages not sent yet stay queued: the next joey run or joey serve sends them");
			return;
		}
		int64_t wait = next > now ? next - now : 0;
		if (wait > 0) {
			struct timespec ts = { (time_t)(wait / 1000), (long)(wait % 1000) * 1000000L };
			nanosleep(&ts, NULL);
		}
		po.try_all = false; /* the retries: none starts after the wait, none lasts beyond it */
	}
}
