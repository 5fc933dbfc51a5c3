/*
 * alerts.c: joey serve's (and joey worker's) side of alerts (src/alert): the thread
 * that checks noSuccessFor and sends queued messages, the hook after each run, and the
 * routes /api/v1/alerts... (docs/api.md "Alerts").
 *
 * The alert thread wakes every second (at once when a run ended: server_alerts_kick):
 * it sends the messages that are due (alert_pump) and, every JOEY_ALERT_CHECK_MS
 * (default 60000), evaluates noSuccessFor for every destination. It keeps one
 * writable handle on the state store, opened again after a failure. It stops with the
 * server; messages not yet sent stay queued for the next start.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "alert/alert.h"
#include "alert/eval.h"
#include "base/log.h"
#include "base/xalloc.h"
#include "dest/http.h"
#include "server/serverp.h"
#include "state/alerts.h"

static int64_t epoch_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * The alert options of this server: links to runs on its public URL, else its address;
 * joey worker (no UI) links only to a JOEY_PUBLIC_URL.
 */
static void server_alert_opts(struct server *s, struct alert_opts *o, char *buf, size_t n)
{
	alert_opts_defaults(o);
	if (s->opts.public_url && *s->opts.public_url) {
		o->public_url = s->opts.public_url;
	} else if (!s->opts.no_http) {
		snprintf(buf, n, "%s://%s", s->tls ? "https" : "http", s->listen_desc);
		o->public_url = buf;
	}
	o->stop = &s->stop_runs;
}

void server_alerts_after_run(struct server *s, const struct config *cfg, struct state *st, const struct run *r,
			     bool worker_job)
{
	struct alert_opts o;
	char url[160];
	if (!cfg->n_alerts)
		return;
	server_alert_opts(s, &o, url, sizeof(url));
	o.worker_job = worker_job;
	alert_after_run(cfg, st, r, &o);
	pthread_mutex_lock(&s->lock);
	s->alert_kick = true;
	pthread_cond_broadcast(&s->wake);
	pthread_mutex_unlock(&s->lock);
}

static void *alert_main(void *arg)
{
	struct server *s = arg;
	struct state *st = NULL;
	int64_t last_check = 0, check_every = 60000;
	const char *v = getenv("JOEY_ALERT_CHECK_MS");
	bool warned = false;

	if (v && atoll(v) >= 100)
		check_every = atoll(v);
	for (;;) {
		pthread_mutex_lock(&s->lock);
		bool stopping = s->stopping;
		s->alert_kick = false;
		pthread_mutex_unlock(&s->lock);
		if (stopping)
			break;
		struct cfg_ref *ref = server_cfg_get(s);
		struct jerror err = JERROR_INIT;
		if (!st && state_open(s->opts.state_path, STATE_OPEN_CREATE, &st, &err)) {
			if (!warned)
				log_error("alerts: %s", err.msg.buf);
			warned = true;
			st = NULL;
		}
		if (st) {
			struct alert_opts o;
			char url[160];
			int64_t now = epoch_ms();
			warned = false;
			server_alert_opts(s, &o, url, sizeof(url));
			if (ref->cfg->n_alerts && now - last_check >= check_every) {
				alert_check_stale(ref->cfg, st, now, &o);
				last_check = now;
			}
			if (alert_pump(ref->cfg, st, &o, NULL, &err)) {
				log_error("alerts: %s%s%s", err.msg.buf, err.detail.len ? ": " : "", err.detail.buf);
				state_close(st); /* opened again next time */
				st = NULL;
			}
		}
		jerror_release(&err);
		server_cfg_put(s, ref);
		pthread_mutex_lock(&s->lock);
		if (!s->stopping && !s->alert_kick) {
			struct timespec ts;
			clock_gettime(CLOCK_MONOTONIC, &ts);
			ts.tv_sec += 1;
			pthread_cond_timedwait(&s->wake, &s->lock, &ts);
		}
		pthread_mutex_unlock(&s->lock);
	}
	state_close(st);
	return NULL;
}

void server_alerts_start(struct server *s)
{
	http_global_init(); /* here, on the main thread, before the alert thread sends anything */
	if (pthread_create(&s->alert_thread, NULL, alert_main, s) == 0)
		s->alert_thread_live = true;
	else
		log_error("alerts: could not start their thread; alerts are not sent by this server");
}

void server_alerts_stop(struct server *s)
{
	if (!s->alert_thread_live)
		return;
	pthread_join(s->alert_thread, NULL);
	s->alert_thread_live = false;
}

/* ---- routes ---- */

static const char *const no_params[] = { NULL };

static json_t *alert_json(const struct cfg_alert *a)
{
	json_t *o = json_object(), *scope = json_object(), *opts = json_object();
	json_t *dests = json_array();
	json_object_set_new(o, "id", json_string(a->id));
	json_object_set_new(o, "name", json_string(a->name ? a->name : a->id));
	json_object_set_new(o, "type", json_string(a->type ? a->type : ""));
	for (size_t i = 0; i < a->n_destinations; i++)
		json_array_append_new(dests, json_string(a->destinations[i]->id));
	json_object_set_new(scope, "destinations", a->n_destinations ? dests : (json_decref(dests), json_null()));
	json_object_set_new(scope, "model", a->model ? json_string(a->model->id) : json_null());
	json_object_set_new(o, "scope", scope);
	json_object_set_new(o, "triggers", alert_triggers_json(a));
	for (size_t i = 0; i < a->options.n; i++) {
		const struct cfg_option *opt = &a->options.items[i];
		const char *shown = config_option_display(opt);
		if (opt->kind == OPT_STRING || opt->secret || opt->sensitive)
			json_object_set_new(opts, opt->key, json_string(shown ? shown : ""));
		else if (opt->kind == OPT_NUMBER)
			json_object_set_new(opts, opt->key, json_real(opt->num));
		else
			json_object_set_new(opts, opt->key, json_boolean(opt->b));
	}
	json_object_set_new(o, "options", opts);
	return o;
}

struct incidents_ctx {
	json_t *items;
	size_t limit, n;
	int64_t next;
};

static json_t *incident_json(const struct state_alert_incident *in)
{
	return json_pack("{s:I,s:s,s:s,s:s,s:s,s:s,s:I,s:o,s:o,s:o,s:I,s:I}", "id", (json_int_t)in->id, "alert",
			 in->alert_id ? in->alert_id : "", "destination", in->dest_id ? in->dest_id : "", "trigger",
			 in->trigger ? in->trigger : "", "summary", in->summary ? in->summary : "", "status",
			 in->resolved_at ? "resolved" : "open", "opened_at", (json_int_t)in->opened_at, "resolved_at",
			 in->resolved_at ? json_integer(in->resolved_at) : json_null(), "run_id",
			 in->run_id ? json_integer(in->run_id) : json_null(), "last_run_id",
			 in->last_run_id ? json_integer(in->last_run_id) : json_null(), "last_seen_at",
			 (json_int_t)in->last_seen_at, "hits", (json_int_t)in->hits);
}

/* The page holds limit items: next is the id of its last one, and the read stops. */
static bool page_full(struct incidents_ctx *c)
{
	if (c->n != c->limit)
		return false;
	c->next = json_integer_value(json_object_get(json_array_get(c->items, c->n - 1), "id"));
	return true;
}

static enum jerr incident_fn(void *ctx, const struct state_alert_incident *in, struct jerror *err)
{
	struct incidents_ctx *c = ctx;
	(void)err;
	if (page_full(c))
		return JERR_INTERRUPTED;
	json_array_append_new(c->items, incident_json(in));
	c->n++;
	return JERR_OK;
}

static enum jerr count_open(void *ctx, const struct state_alert_incident *in, struct jerror *err)
{
	(void)err;
	json_array_append_new(ctx, incident_json(in));
	return JERR_OK;
}

void api_alerts(struct req *r, struct reply *out)
{
	if (!req_check_query(r, out, no_params))
		return;
	struct cfg_ref *ref = server_cfg_get(r->s);
	struct state *st = NULL;
	struct jerror err = JERROR_INIT;
	json_t *a = json_array();
	enum jerr rc = server_state_read(r->s, &st, &err);
	for (size_t i = 0; !rc && i < ref->cfg->n_alerts; i++) {
		json_t *o = alert_json(ref->cfg->alerts[i]);
		json_t *open = json_array();
		rc = state_alert_incidents(st, ref->cfg->alerts[i]->id, NULL, true, 100, 0, count_open, open, &err);
		json_object_set_new(o, "open_incidents", open);
		json_array_append_new(a, o);
	}
	if (rc) {
		json_decref(a);
		reply_jerror(out, 500, &err);
	} else {
		reply_json(out, 200, a);
	}
	state_close(st);
	jerror_release(&err);
	server_cfg_put(r->s, ref);
}

static enum jerr delivery_fn(void *ctx, const struct state_alert_delivery *d, struct jerror *err)
{
	struct incidents_ctx *c = ctx;
	(void)err;
	if (page_full(c))
		return JERR_INTERRUPTED;
	json_t *body = d->body ? json_loads(d->body, 0, NULL) : NULL;
	json_t *run = json_object_get(body, "run");
	json_t *summary = json_object_get(body, "summary");
	json_t *o = json_pack("{s:I,s:o,s:s,s:o,s:s,s:s,s:i,s:o,s:o,s:I,s:o,s:o,s:o}", "id", (json_int_t)d->id,
			      "incident_id", d->incident_id ? json_integer(d->incident_id) : json_null(), "alert",
			      d->alert_id ? d->alert_id : "", "destination",
			      d->dest_id ? json_string(d->dest_id) : json_null(), "event", d->event ? d->event : "",
			      "status", d->status ? d->status : "", "attempts", d->attempts, "next_at",
			      d->status && !strcmp(d->status, "pending") ? json_integer(d->next_at) : json_null(),
			      "last_error", d->last_error ? json_string(d->last_error) : json_null(), "created_at",
			      (json_int_t)d->created_at, "sent_at", d->sent_at ? json_integer(d->sent_at) : json_null(),
			      "summary", json_is_string(summary) ? json_incref(summary) : json_null(), "run_id",
			      json_is_object(run) && json_object_get(run, "id") ? json_incref(json_object_get(run, "id"))
										 : json_null());
	json_decref(body);
	json_array_append_new(c->items, o);
	c->n++;
	return JERR_OK;
}

/* The two paged listings of alerts' history. */
enum alert_page { PAGE_INCIDENTS, PAGE_DELIVERIES };

/*
 * One page of what (limit items with ids below before; ?alert= and, for the incidents,
 * ?destination= and open_only), read from the state store opened read-only, as the reply.
 */
static void reply_alert_page(struct req *r, struct reply *out, enum alert_page what, bool open_only,
			     uint64_t limit, uint64_t before)
{
	struct state *st = NULL;
	struct jerror err = JERROR_INIT;
	struct incidents_ctx c = { json_array(), limit, 0, 0 };
	enum jerr rc = server_state_read(r->s, &st, &err);
	if (!rc && what == PAGE_INCIDENTS)
		rc = state_alert_incidents(st, req_query(r, "alert"), req_query(r, "destination"), open_only, 0,
					   (int64_t)before, incident_fn, &c, &err);
	else if (!rc)
		rc = state_alert_deliveries(st, req_query(r, "alert"), 0, (int64_t)before, delivery_fn, &c, &err);
	if (!reply_read_failed(out, rc, c.items, &err))
		reply_items(out, c.items, c.next);
	state_close(st);
	jerror_release(&err);
}

void api_alert_incidents(struct req *r, struct reply *out)
{
	static const char *const allowed[] = { "alert", "destination", "open", "limit", "before", NULL };
	uint64_t limit, before;
	const char *open = req_query(r, "open");
	if (open && strcmp(open, "true") && strcmp(open, "false")) {
		reply_error(out, 400, "invalid value for query parameter \"open\"", open, "give true or false");
		return;
	}
	if (!req_query_page(r, out, allowed, &limit, &before))
		return;
	reply_alert_page(r, out, PAGE_INCIDENTS, open && !strcmp(open, "true"), limit, before);
}

void api_alert_deliveries(struct req *r, struct reply *out)
{
	static const char *const allowed[] = { "alert", "limit", "before", NULL };
	uint64_t limit, before;
	if (!req_query_page(r, out, allowed, &limit, &before))
		return;
	reply_alert_page(r, out, PAGE_DELIVERIES, false, limit, before);
}

void act_alert_test(struct req *r, struct reply *out)
{
	if (!req_no_body(r, out))
		return;
	struct cfg_ref *ref = server_cfg_get(r->s);
	const struct cfg_alert *a = config_alert(ref->cfg, r->params[0]);
	struct state *st = NULL;
	struct jerror err = JERROR_INIT;
	int64_t id = 0;
	if (!a) {
		reply_error(out, 404, "no such alert", r->params[0], "GET /api/v1/alerts lists them");
		goto done;
	}
	if (state_open(r->s->opts.state_path, STATE_OPEN_CREATE, &st, &err)) {
		reply_jerror(out, 500, &err);
		goto done;
	}
	struct alert_opts o;
	char url[160];
	server_alert_opts(r->s, &o, url, sizeof(url));
	o.timeout_ms = 15000;
	enum jerr rc = alert_test(ref->cfg, st, a, &o, &id, &err);
	json_t *what = json_pack("{s:b,s:I}", "ok", rc == JERR_OK, "delivery", (json_int_t)id);
	auth_audit(r, "alert.test", "alerts", a->id, NULL, what);
	json_decref(what);
	if (rc == JERR_OK)
		reply_json(out, 200, json_pack("{s:b,s:I}", "ok", 1, "delivery", (json_int_t)id));
	else if (rc == JERR_IO)
		reply_json(out, 200,
			   json_pack("{s:b,s:o,s:s,s:o,s:o}", "ok", 0, "delivery", id ? json_integer(id) : json_null(), "error",
				     err.msg.buf, "detail", err.detail.len ? json_string(err.detail.buf) : json_null(), "hint",
				     err.hint.len ? json_string(err.hint.buf) : json_null()));
	else
		reply_jerror(out, 500, &err);
done:
	state_close(st);
	jerror_release(&err);
	server_cfg_put(r->s, ref);
}
