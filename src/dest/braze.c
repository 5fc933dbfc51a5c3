/* braze.c: the Braze connector: batching, requests, retries, rate governor, outcomes. */
#include "dest/dest.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#include "base/log.h"
#include "base/xalloc.h"
#include "config/catalog.h"
#include "dest/braze_internal.h"
#include "dest/http.h"
#include "dest/ratelimit.h"
#include "dest/window.h"

enum endpoint { EP_TRACK, EP_DELETE, EP_EXPORT_IDS, EP_SUBSCRIPTION, EP__COUNT };

static const struct {
	const char *path;
	const char *name;
	int64_t limit, window_ms;
	size_t max_rows;
	const char *permission;
} endpoints[EP__COUNT] = {
	[EP_TRACK] = { "/users/track", "track", 3000, 3000, 75, "users.track" },
	[EP_DELETE] = { "/users/delete", "delete", 20000, 60000, 50, "users.delete" },
	[EP_EXPORT_IDS] = { "/users/export/ids", "export_ids", 250, 60000, 50, "users.export.ids" },
	[EP_SUBSCRIPTION] = { "/v2/subscription/status/set", "subscription", 5000, 60000, 50,
			      "subscription.status.set" },
};

#define MAX_SUB_ENTRIES 25 /* subscription_groups entries per v2 request */

struct sub_change {
	char *group_id;
	bool subscribed;
};

struct row {
	enum dest_op op;
	struct rkey key;
	char *keybuf;
	bool create;
	char *object; /* track attribute object (JSON), without _update_existing_only */
	struct sub_change *subs; /* subscription-only changes (EP_SUBSCRIPTION) */
	size_t n_subs;
	char *payload;
	size_t payload_len;
	unsigned char hash[STATE_HASH_LEN];
	bool in_scope;
	int attempts;
	size_t data_points;
	char *changed; /* dest_change.changed (NULL: none), passed back */
	size_t changed_len;
};

struct batch {
	enum endpoint ep;
	struct row **rows;
	size_t n, alloc;
	int attempts;      /* failed attempts (5xx, timeouts, resets) */
	int64_t first_failure; /* mono ms of the first of them (0: none yet) */
	int throttles;     /* 429s in a row: they use no attempt but grow the wait */
	int64_t throttled_ms; /* total time waited on 429s */
	int64_t not_before;
	struct strbuf body;
	struct http_request req;
	char *url;
	struct batch *next;
};

struct braze {
	const struct cfg_app *app;
	const struct cfg_destination *dest;
	char *base_url;
	const char *api_key;
	struct dest_opts opts;
	struct dest_sink sink;
	struct http_client *http;
	struct ratelimit *rl; /* EP__COUNT buckets shared by every destination of the app */
	struct batch *open[EP__COUNT];
	struct batch *ready_head, *ready_tail;
	size_t n_ready, inflight;
	struct dest_stats stats;
	enum jerr fatal;
	bool sink_failed; /* the fatal error came from the sink: stop delivering */
	struct jerror fatal_err;
	uint64_t rng;
	bool enrich;
	int64_t last_answer; /* mono ms of the last HTTP answer of any status (0: none yet) */
	/* the window of requests in flight (dest/window.h) */
	struct window win;
	int cap;                      /* its bound but for memory: --concurrency, fds, hard max */
	long conn_limit;              /* the HTTP client's connection pool now */
	int64_t ep_used[EP__COUNT];   /* mono ms an endpoint last sent or was answered (0: never) */
	uint64_t body_bytes, bodies;  /* request bodies sent, for the memory bound */
};

/* ---- clocks and jitter ---- */

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t epoch_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static double rand01(struct braze *b)
{
	b->rng ^= b->rng << 13;
	b->rng ^= b->rng >> 7;
	b->rng ^= b->rng << 17;
	return (double)(b->rng >> 11) / (double)(1ULL << 53);
}

static int64_t backoff_ms(struct braze *b, int attempt)
{
	double d = (double)b->opts.backoff_base_ms;
	for (int i = 1; i < attempt && d < (double)b->opts.backoff_max_ms; i++)
		d *= 2;
	if (d > (double)b->opts.backoff_max_ms)
		d = (double)b->opts.backoff_max_ms;
	return (int64_t)(d * (0.8 + 0.4 * rand01(b)));
}

/* ---- rate budgets: Braze limits a workspace, so destinations of one app share them ---- */

struct shared_budget {
	char *key; /* restEndpoint + NUL + apiKey identify the workspace */
	size_t key_len;
	struct ratelimit rl[EP__COUNT];
	int refs;
};

static struct shared_budget **budgets; /* pointers: the buckets must not move */
static size_t n_budgets, alloc_budgets;

/*
 * The shared budget's name for one endpoint of a workspace: the endpoint and a hash
 * of the REST URL and API key (the key itself never leaves the process).
 */
static void shared_key(char *out, size_t n, int ep, const char *endpoint, const char *key)
{
	struct strbuf k = STRBUF_INIT;
	strbuf_addstr(&k, endpoint);
	strbuf_addch(&k, 0);
	strbuf_addstr(&k, key);
	XXH128_hash_t h = XXH3_128bits(k.buf, k.len);
	memset(k.buf, 0, k.len);
	strbuf_release(&k);
	snprintf(out, n, "braze:%s:%016llx%016llx", endpoints[ep].name, (unsigned long long)h.high64,
		 (unsigned long long)h.low64);
}

static struct ratelimit *budget_get(const struct cfg_app *app, const char *endpoint, const char *key,
				    double target)
{
	struct strbuf k = STRBUF_INIT;
	strbuf_addstr(&k, endpoint);
	strbuf_addch(&k, 0);
	strbuf_addstr(&k, key);
	for (size_t i = 0; i < n_budgets; i++)
		if (budgets[i]->key_len == k.len && !memcmp(budgets[i]->key, k.buf, k.len)) {
			budgets[i]->refs++;
			strbuf_release(&k);
			return budgets[i]->rl;
		}
	ALLOC_GROW(budgets, n_budgets + 1, alloc_budgets);
	struct shared_budget *b = xcalloc(1, sizeof(*b));
	budgets[n_budgets++] = b;
	b->key_len = k.len;
	b->key = strbuf_detach(&k, NULL);
	b->refs = 1;
	const char *spec = app ? cfg_options_str(&app->options, "rateLimits") : NULL;
	for (int i = 0; i < EP__COUNT; i++) {
		/* the workspace's limits: Braze's defaults, or the app's rateLimits option */
		int64_t limit = endpoints[i].limit, window_ms = endpoints[i].window_ms;
		const char *bad;
		(void)catalog_rate_limit(spec, endpoints[i].name, &limit, &window_ms, &bad);
		ratelimit_init(&b->rl[i], limit, window_ms, target);
		if (ratelimit_shared_active()) {
			char sk[64];
			shared_key(sk, sizeof(sk), i, endpoint, key);
			ratelimit_share(&b->rl[i], sk);
		}
	}
	return b->rl;
}

static void budget_put(struct ratelimit *rl)
{
	for (size_t i = 0; i < n_budgets; i++) {
		if (budgets[i]->rl != rl || --budgets[i]->refs > 0)
			continue;
		memset(budgets[i]->key, 0, budgets[i]->key_len); /* it holds the API key */
		free(budgets[i]->key);
		free(budgets[i]);
		budgets[i] = budgets[--n_budgets];
		if (!n_budgets) {
			free(budgets);
			budgets = NULL;
			alloc_budgets = 0;
		}
		return;
	}
}

/* ---- helpers ---- */

void dest_opts_defaults(struct dest_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->max_inflight = 0; /* no bound but WINDOW_HARD_MAX: the window sizes itself */
	o->window_memory = (uint64_t)256 << 20;
	o->max_attempts = 5;
	o->timeout_ms = 30000;
	o->connect_timeout_ms = 10000;
	o->rate_target = 0.95;
	o->backoff_base_ms = 500;
	o->backoff_max_ms = 30000;
	o->max_throttle_ms = 15 * 60 * 1000;
}

bool dest_is_subscription_group(const char *s)
{
	static const int dash_at[] = { 8, 13, 18, 23 };
	if (strlen(s) != 36)
		return false;
	for (int i = 0, d = 0; i < 36; i++) {
		if (d < 4 && i == dash_at[d]) {
			if (s[i] != '-')
				return false;
			d++;
			continue;
		}
		char c = s[i];
		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')))
			return false;
	}
	return true;
}

static void row_free(struct row *r)
{
	if (!r)
		return;
	free(r->keybuf);
	free(r->object);
	for (size_t i = 0; i < r->n_subs; i++)
		free(r->subs[i].group_id);
	free(r->subs);
	free(r->payload);
	free(r->changed);
	free(r);
}

static struct batch *batch_new(enum endpoint ep)
{
	struct batch *bt = xcalloc(1, sizeof(*bt));
	bt->ep = ep;
	strbuf_init(&bt->body, 0);
	return bt;
}

static void batch_free(struct batch *bt, bool rows_too)
{
	if (!bt)
		return;
	if (rows_too)
		for (size_t i = 0; i < bt->n; i++)
			row_free(bt->rows[i]);
	free(bt->rows);
	free(bt->url);
	strbuf_release(&bt->body);
	free(bt);
}

static void batch_add(struct batch *bt, struct row *r)
{
	ALLOC_GROW(bt->rows, bt->n + 1, bt->alloc);
	bt->rows[bt->n++] = r;
}

static void ready_push(struct braze *b, struct batch *bt, bool front)
{
	bt->next = NULL;
	if (front) {
		bt->next = b->ready_head;
		b->ready_head = bt;
		if (!b->ready_tail)
			b->ready_tail = bt;
	} else {
		if (b->ready_tail)
			b->ready_tail->next = bt;
		else
			b->ready_head = bt;
		b->ready_tail = bt;
	}
	b->n_ready++;
}

static void ready_remove(struct braze *b, struct batch *prev, struct batch *bt)
{
	if (prev)
		prev->next = bt->next;
	else
		b->ready_head = bt->next;
	if (b->ready_tail == bt)
		b->ready_tail = prev;
	bt->next = NULL;
	b->n_ready--;
}

static size_t sub_entries(const struct batch *bt, const struct row *extra)
{
	/* distinct (group, state) pairs in the batch plus the extra row */
	size_t n = 0;
	struct sub_change *seen = NULL;
	size_t alloc = 0;
	for (size_t i = 0; i <= bt->n; i++) {
		const struct row *r = i < bt->n ? bt->rows[i] : extra;
		if (!r)
			continue;
		for (size_t j = 0; j < r->n_subs; j++) {
			bool dup = false;
			for (size_t k = 0; k < n && !dup; k++)
				dup = seen[k].subscribed == r->subs[j].subscribed &&
				      !strcmp(seen[k].group_id, r->subs[j].group_id);
			if (!dup) {
				ALLOC_GROW(seen, n + 1, alloc);
				seen[n++] = r->subs[j];
			}
		}
	}
	free(seen);
	return n;
}

/* Queue a row on its endpoint's open batch; a full batch moves to the ready queue. */
static void enqueue(struct braze *b, enum endpoint ep, struct row *r)
{
	struct batch *bt = b->open[ep];
	if (bt && ep == EP_SUBSCRIPTION && sub_entries(bt, r) > MAX_SUB_ENTRIES) {
		ready_push(b, bt, false);
		bt = b->open[ep] = NULL;
	}
	if (!bt)
		bt = b->open[ep] = batch_new(ep);
	batch_add(bt, r);
	if (bt->n >= endpoints[ep].max_rows) {
		ready_push(b, bt, false);
		b->open[ep] = NULL;
	}
}

/* ---- request bodies ---- */

static void build_body(struct braze *b, struct batch *bt)
{
	struct strbuf *sb = &bt->body;
	strbuf_reset(sb);
	switch (bt->ep) {
	case EP_TRACK:
		strbuf_addstr(sb, "{\"attributes\":[");
		for (size_t i = 0; i < bt->n; i++) {
			const char *obj = bt->rows[i]->object;
			size_t len = strlen(obj);
			if (i)
				strbuf_addch(sb, ',');
			if (b->enrich) {
				/* every enrich object carries the guard */
				strbuf_add(sb, obj, len - 1);
				strbuf_addstr(sb, ",\"_update_existing_only\":true}");
			} else {
				strbuf_add(sb, obj, len);
			}
		}
		strbuf_addstr(sb, "]}");
		break;
	case EP_DELETE:
	case EP_EXPORT_IDS:
		strbuf_addstr(sb, "{\"external_ids\":[");
		for (size_t i = 0; i < bt->n; i++) {
			if (i)
				strbuf_addch(sb, ',');
			strbuf_add_json_string(sb, bt->rows[i]->key.text.ptr, bt->rows[i]->key.text.len);
		}
		strbuf_addstr(sb, "]");
		if (bt->ep == EP_EXPORT_IDS)
			strbuf_addstr(sb, ",\"fields_to_export\":[\"external_id\"]");
		strbuf_addstr(sb, "}");
		break;
	case EP_SUBSCRIPTION: {
		/* one entry per (group, state) with the ids that change to it */
		struct sub_change *seen = NULL;
		size_t n = 0, alloc = 0;
		for (size_t i = 0; i < bt->n; i++)
			for (size_t j = 0; j < bt->rows[i]->n_subs; j++) {
				const struct sub_change *s = &bt->rows[i]->subs[j];
				bool dup = false;
				for (size_t k = 0; k < n && !dup; k++)
					dup = seen[k].subscribed == s->subscribed && !strcmp(seen[k].group_id, s->group_id);
				if (!dup) {
					ALLOC_GROW(seen, n + 1, alloc);
					seen[n++] = *s;
				}
			}
		strbuf_addstr(sb, "{\"subscription_groups\":[");
		for (size_t k = 0; k < n; k++) {
			if (k)
				strbuf_addch(sb, ',');
			strbuf_addstr(sb, "{\"subscription_group_id\":");
			strbuf_add_json_string(sb, seen[k].group_id, strlen(seen[k].group_id));
			strbuf_addf(sb, ",\"subscription_state\":\"%s\",\"external_ids\":[",
				    seen[k].subscribed ? "subscribed" : "unsubscribed");
			bool first = true;
			for (size_t i = 0; i < bt->n; i++)
				for (size_t j = 0; j < bt->rows[i]->n_subs; j++) {
					const struct sub_change *s = &bt->rows[i]->subs[j];
					if (s->subscribed != seen[k].subscribed || strcmp(s->group_id, seen[k].group_id))
						continue;
					if (!first)
						strbuf_addch(sb, ',');
					first = false;
					strbuf_add_json_string(sb, bt->rows[i]->key.text.ptr, bt->rows[i]->key.text.len);
				}
			strbuf_addstr(sb, "]}");
		}
		strbuf_addstr(sb, "]}");
		free(seen);
		break;
	}
	default:
		break;
	}
}

/* ---- outcomes ---- */

static void set_fatal(struct braze *b, enum jerr code, const char *msg, const char *detail, const char *hint)
{
	if (b->fatal)
		return;
	b->fatal = jerror_set(&b->fatal_err, code, "%s", msg);
	if (detail)
		jerror_detail(&b->fatal_err, "%s", detail);
	if (hint)
		jerror_hint(&b->fatal_err, "%s", hint);
}

/* A sink call's result: its error (taken over from *err) stops the connector. */
static void sink_result(struct braze *b, enum jerr rc, struct jerror *err)
{
	if (!rc) {
		jerror_release(err);
		return;
	}
	b->sink_failed = true;
	b->fatal = rc;
	jerror_release(&b->fatal_err);
	b->fatal_err = *err;
}

/* Deliver one outcome per row of bt (results[i] / errors[i]) and free the rows. */
static void deliver(struct braze *b, struct batch *bt, const enum dest_result *results, const char *const *errors)
{
	struct dest_outcome *o = xcalloc(bt->n ? bt->n : 1, sizeof(*o));
	for (size_t i = 0; i < bt->n; i++) {
		struct row *r = bt->rows[i];
		o[i] = (struct dest_outcome){
			.result = results[i], .op = r->op, .key = r->key,
			.new_payload = { r->payload, r->payload_len }, .new_hash = r->hash,
			.in_scope = r->in_scope, .create = r->create, .attempts = r->attempts,
			.error = errors ? errors[i] : NULL,
			.data_points = results[i] == DEST_OK ? r->data_points : 0,
			.changed = { r->changed ? r->changed : "", r->changed_len },
		};
		if (results[i] == DEST_OK && bt->ep != EP_EXPORT_IDS)
			b->stats.data_points += r->data_points;
	}
	/* answers Braze gave before a fatal error elsewhere are still committed */
	if (bt->n && !b->sink_failed) {
		struct jerror err = JERROR_INIT;
		sink_result(b, b->sink.outcomes(b->sink.ctx, o, bt->n, &err), &err);
	}
	free(o);
	batch_free(bt, true);
}

static void fail_all(struct braze *b, struct batch *bt, const char *error)
{
	enum dest_result *res = xcalloc(bt->n ? bt->n : 1, sizeof(*res));
	const char **errs = xcalloc(bt->n ? bt->n : 1, sizeof(*errs));
	for (size_t i = 0; i < bt->n; i++) {
		res[i] = DEST_FAILED;
		errs[i] = error;
	}
	deliver(b, bt, res, errs);
	free(res);
	free(errs);
}

/* Split a batch in two and queue both halves first. */
static void bisect(struct braze *b, struct batch *bt)
{
	struct batch *lo = batch_new(bt->ep), *hi = batch_new(bt->ep);
	size_t half = bt->n / 2;
	for (size_t i = 0; i < bt->n; i++)
		batch_add(i < half ? lo : hi, bt->rows[i]);
	batch_free(bt, false);
	ready_push(b, hi, true);
	ready_push(b, lo, true);
}

/* ---- the window of requests in flight ---- */

/*
 * The rate budget (requests per ms) of the endpoints that sent or had an answer in the
 * last 2 s (answers too: at a latency over 2 s a full window sends nothing for a while).
 */
static double rate_in_use(const struct braze *b, int64_t now)
{
	double r = 0;
	for (int i = 0; i < EP__COUNT; i++)
		if (b->ep_used[i] && now - b->ep_used[i] <= 2000)
			r += b->rl[i].rate_per_ms;
	return r;
}

/*
 * The window's bound: the cap (--concurrency, file descriptors, the hard maximum) and
 * what window_memory holds at the mean body size so far; the connection pool follows
 * the window up (HTTP/1.1 needs one connection per request in flight).
 */
static void window_bound(struct braze *b)
{
	uint64_t body = b->bodies ? b->body_bytes / b->bodies : 16384;
	int mem = window_max_for_memory(b->opts.window_memory, body);
	window_set_max(&b->win, mem < b->cap ? mem : b->cap);
	long want = window_size(&b->win);
	if (want > b->conn_limit) {
		/* a quarter more, so it is not raised on every step */
		want += want / 4;
		if (want > b->cap)
			want = b->cap;
		b->conn_limit = want;
		http_set_max_connections(b->http, want);
	}
}

/* ---- reading Braze's answers (braze_internal.h) ---- */

json_t *braze_response_parse(struct slice body)
{
	return body.len ? json_loadb(body.ptr, body.len, 0, NULL) : NULL;
}

const char *braze_response_message(json_t *body)
{
	json_t *m = body ? json_object_get(body, "message") : NULL;
	return json_is_string(m) ? json_string_value(m) : NULL;
}

size_t braze_response_row_errors(json_t *body, size_t n, const char **errs)
{
	json_t *arr = body ? json_object_get(body, "errors") : NULL;
	size_t found = 0, i;
	json_t *e;
	if (!json_is_array(arr))
		return 0;
	json_array_foreach(arr, i, e) {
		json_t *idx = json_object_get(e, "index");
		json_t *type = json_object_get(e, "type");
		json_t *input = json_object_get(e, "input_array");
		if (!json_is_integer(idx) || (input && json_is_string(input) && strcmp(json_string_value(input), "attributes")))
			continue;
		json_int_t k = json_integer_value(idx);
		if (k < 0 || (size_t)k >= n || errs[k])
			continue;
		errs[k] = json_is_string(type) ? json_string_value(type) : "rejected by Braze";
		found++;
	}
	return found;
}

bool braze_response_has_user(json_t *body, struct slice external_id)
{
	json_t *users = body ? json_object_get(body, "users") : NULL;
	size_t k;
	json_t *u;
	json_array_foreach(users, k, u) {
		json_t *id = json_object_get(u, "external_id");
		if (json_is_string(id) && strlen(json_string_value(id)) == external_id.len &&
		    !memcmp(json_string_value(id), external_id.ptr, external_id.len))
			return true;
	}
	return false;
}

/*
 * text with every occurrence of key (in any case) replaced by "****", appended to out.
 * A key shorter than 4 characters is not looked for (it would mask ordinary words).
 */
static void mask_key(struct strbuf *out, const char *text, const char *key)
{
	size_t kl = key ? strlen(key) : 0;
	const char *p = text;
	if (kl < 4) {
		strbuf_addstr(out, text);
		return;
	}
	while (*p) {
		if (!strncasecmp(p, key, kl)) {
			strbuf_addstr(out, "****");
			p += kl;
		} else {
			strbuf_addch(out, *p++);
		}
	}
}

void braze_response_mask(json_t *body, const char *key)
{
	size_t i;
	const char *k;
	json_t *v;
	if (json_is_string(body)) {
		const char *s = json_string_value(body);
		if (!s || strlen(key ? key : "") < 4)
			return;
		struct strbuf sb = STRBUF_INIT;
		mask_key(&sb, s, key);
		if (strcmp(sb.buf, s))
			json_string_set(body, sb.buf);
		strbuf_release(&sb);
	} else if (json_is_array(body)) {
		json_array_foreach(body, i, v)
			braze_response_mask(v, key);
	} else if (json_is_object(body)) {
		json_object_foreach(body, k, v)
			braze_response_mask(v, key);
	}
}

static void handle_success(struct braze *b, struct batch *bt, json_t *body)
{
	enum dest_result *res = xcalloc(bt->n ? bt->n : 1, sizeof(*res));
	const char **errs = xcalloc(bt->n ? bt->n : 1, sizeof(*errs));

	if (bt->ep == EP_TRACK) {
		braze_response_row_errors(body, bt->n, errs);
		for (size_t i = 0; i < bt->n; i++)
			res[i] = errs[i] ? DEST_FAILED : DEST_OK;
		b->stats.objects += bt->n;
		deliver(b, bt, res, errs);
	} else if (bt->ep == EP_EXPORT_IDS) {
		/* found users go on to /users/track (update only), the others are not in Braze */
		struct batch *keep = batch_new(EP_EXPORT_IDS);
		for (size_t i = 0; i < bt->n; i++) {
			struct row *r = bt->rows[i];
			if (braze_response_has_user(body, r->key.text)) {
				r->op = DEST_UPSERT;
				enqueue(b, EP_TRACK, r);
			} else {
				batch_add(keep, r);
			}
		}
		for (size_t i = 0; i < keep->n; i++)
			res[i] = DEST_NOT_FOUND;
		batch_free(bt, false);
		deliver(b, keep, res, NULL);
	} else {
		for (size_t i = 0; i < bt->n; i++)
			res[i] = DEST_OK;
		b->stats.objects += bt->n;
		deliver(b, bt, res, NULL);
	}
	free(res);
	free(errs);
}

/*
 * The circuit breaker. Braze is unreachable when a batch has used all its attempts,
 * its last attempt could not even connect (http_response.no_connection: unresolvable
 * host, connection refused or timed out, TLS handshake failed) and no request of this
 * destination has had an HTTP answer of any kind since that batch's first failure.
 * Then the destination stops with one error instead of every remaining batch going
 * through its own retries and failing row by row: this batch and everything still
 * queued get no outcome, so they stay as the state store has them (pending, or not
 * sent yet) without a ledger row each, and the next run sends them. Batches in flight
 * are still answered (an answer is committed as always).
 */
static void unreachable(struct braze *b, struct batch *bt, const char *detail, int64_t now)
{
	char msg[512], d[768];
	b->stats.failed_requests++;
	snprintf(msg, sizeof(msg), "Braze unreachable: no connection to %s", b->base_url);
	snprintf(d, sizeof(d), "%s; %d attempts over %.1f s, and no request had an answer from Braze since",
		 detail, bt->attempts, (double)(now - bt->first_failure) / 1000.0);
	set_fatal(b, JERR_HTTP, msg, d,
		  "check restEndpoint, DNS and the network (firewall, proxy); the records not sent stay "
		  "pending and the next run sends them");
	batch_free(bt, true);
}

static void on_done(void *ctx, struct http_request *req, const struct http_response *res)
{
	struct braze *b = ctx;
	struct batch *bt = req->user;
	int64_t now = mono_ms();
	json_t *body = NULL;
	char detail[512];

	b->inflight--;
	b->stats.requests++;
	b->stats.by_endpoint[bt->ep]++;
	if (res->status > 0)
		b->last_answer = now;
	if (res->status > 0) {
		b->stats.latency_count++;
		b->stats.latency_sum_s += res->total_time_s;
		for (int i = 0; i < DEST_LATENCY_BUCKETS; i++)
			if (res->total_time_s <= dest_latency_bounds[i]) {
				b->stats.latency[i]++;
				break;
			}
	}
	ratelimit_observe(&b->rl[bt->ep], res->rl_limit, res->rl_remaining, res->rl_reset, now, epoch_ms());
	/* the window: a 429, 5xx, timeout or reset halves it; any other answer sizes it */
	b->ep_used[bt->ep] = now;
	if (res->status == 429 || res->status == 0 || res->status >= 500)
		window_on_congestion(&b->win, now);
	else
		window_on_answer(&b->win, res->total_time_s * 1000.0, rate_in_use(b, now), now);
	if (window_size(&b->win) > b->conn_limit)
		window_bound(b);
	/* every text taken from the answer goes to messages, logs and the ledger: a server
	 * that echoes the key must not put it there */
	body = braze_response_parse(res->body);
	braze_response_mask(body, b->api_key);
	const char *msg = braze_response_message(body);
	struct strbuf transport = STRBUF_INIT;
	if (res->error)
		mask_key(&transport, res->error, b->api_key);

	if (res->status == 429) {
		int64_t wait;
		b->stats.throttled++;
		b->rl[bt->ep].throttled++;
		bt->throttles++;
		if (res->retry_after_s >= 0)
			wait = res->retry_after_s * 1000;
		else if (res->rl_reset > 0)
			wait = res->rl_reset > 1000000000 ? res->rl_reset * 1000 - epoch_ms() : res->rl_reset * 1000;
		else
			wait = backoff_ms(b, bt->throttles); /* no header: grow the wait, 60 s at most */
		if (wait < 50)
			wait = 50;
		if (wait > 3600 * 1000)
			wait = 3600 * 1000;
		bt->throttled_ms += wait;
		if (bt->throttled_ms > b->opts.max_throttle_ms) {
			snprintf(detail, sizeof(detail), "POST %s: rate limited (HTTP 429) for %lld s in total; gave up",
				 endpoints[bt->ep].path, (long long)(bt->throttled_ms / 1000));
			b->stats.failed_requests++;
			fail_all(b, bt, detail);
			goto out;
		}
		ratelimit_pause(&b->rl[bt->ep], now + wait);
		bt->not_before = now + wait;
		ready_push(b, bt, true); /* a 429 is not a failure: same batch, no attempt used */
		goto out;
	}
	if (res->status == 0 || res->status >= 500 || (res->status >= 200 && res->status < 300 && !body && bt->ep != EP_DELETE)) {
		/* transport error, timeout, reset, 5xx, or a 2xx we cannot read: retry */
		if (!bt->attempts++)
			bt->first_failure = now;
		if (res->status == 0)
			snprintf(detail, sizeof(detail), "%s %s: %s", "POST", endpoints[bt->ep].path,
				 res->error ? transport.buf : "no response");
		else if (res->status >= 500)
			snprintf(detail, sizeof(detail), "POST %s: HTTP %ld%s%s", endpoints[bt->ep].path, res->status,
				 msg ? ": " : "", msg ? msg : "");
		else
			snprintf(detail, sizeof(detail), "POST %s: HTTP %ld with an unreadable body", endpoints[bt->ep].path,
				 res->status);
		if (bt->attempts >= b->opts.max_attempts && res->no_connection && b->last_answer < bt->first_failure) {
			unreachable(b, bt, detail, now);
		} else if (bt->attempts >= b->opts.max_attempts) {
			char e[640];
			snprintf(e, sizeof(e), "%s (gave up after %d attempts)", detail, bt->attempts);
			b->stats.failed_requests++;
			fail_all(b, bt, e);
		} else {
			b->stats.retries++;
			log_info("braze: %s; retrying (attempt %d of %d)", detail, bt->attempts + 1, b->opts.max_attempts);
			bt->not_before = now + backoff_ms(b, bt->attempts);
			ready_push(b, bt, true);
		}
		goto out;
	}
	if (res->status == 401 || res->status == 403) {
		char hint[256];
		snprintf(detail, sizeof(detail), "POST %s%s: HTTP %ld%s%s", b->base_url, endpoints[bt->ep].path,
			 res->status, msg ? ": " : "", msg ? msg : "");
		if (res->status == 401)
			snprintf(hint, sizeof(hint),
				 "check the apiKey of app \"%s\" and that restEndpoint is your workspace's instance",
				 b->app->id);
		else
			snprintf(hint, sizeof(hint), "the key needs the %s permission (Braze dashboard, API keys)",
				 endpoints[bt->ep].permission);
		set_fatal(b, JERR_AUTH,
			  res->status == 401 ? "Braze rejected the API key" : "Braze refused the request (access denied)",
			  detail, hint);
		batch_free(bt, true);
		goto out;
	}
	if (res->status == 404 || res->status == 415 || (res->status >= 300 && res->status < 400)) {
		snprintf(detail, sizeof(detail), "POST %s%s: HTTP %ld%s%s", b->base_url, endpoints[bt->ep].path,
			 res->status, msg ? ": " : "", msg ? msg : "");
		set_fatal(b, JERR_REMOTE, "Braze does not know this endpoint", detail,
			  "check restEndpoint: it should look like https://rest.iad-01.braze.com (joey does not follow redirects)");
		batch_free(bt, true);
		goto out;
	}
	if (res->status < 200 || res->status >= 300) {
		/* 1xx or anything else unexpected: not a confirmation; retry like a 5xx */
		bt->attempts++;
		snprintf(detail, sizeof(detail), "POST %s: unexpected HTTP %ld", endpoints[bt->ep].path, res->status);
		if (bt->attempts >= b->opts.max_attempts) {
			b->stats.failed_requests++;
			fail_all(b, bt, detail);
		} else {
			b->stats.retries++;
			bt->not_before = now + backoff_ms(b, bt->attempts);
			ready_push(b, bt, true);
		}
		goto out;
	}
	if (res->status >= 400 && res->status < 500) {
		/* a whole-request rejection: name the bad rows if Braze did, else bisect */
		b->stats.failed_requests++;
		if (bt->ep == EP_TRACK && body && res->status == 400) {
			const char **errs = xcalloc(bt->n, sizeof(*errs));
			size_t found = braze_response_row_errors(body, bt->n, errs);
			if (found) {
				struct batch *retry = batch_new(bt->ep), *bad = batch_new(bt->ep);
				const char **bad_errs = xcalloc(bt->n, sizeof(*bad_errs));
				enum dest_result *res_bad = xcalloc(bt->n, sizeof(*res_bad));
				for (size_t i = 0; i < bt->n; i++) {
					if (errs[i]) {
						bad_errs[bad->n] = errs[i];
						res_bad[bad->n] = DEST_FAILED;
						batch_add(bad, bt->rows[i]);
					} else {
						batch_add(retry, bt->rows[i]);
					}
				}
				batch_free(bt, false);
				if (retry->n)
					ready_push(b, retry, true);
				else
					batch_free(retry, false);
				deliver(b, bad, res_bad, bad_errs);
				free(bad_errs);
				free(res_bad);
				free(errs);
				goto out;
			}
			free(errs);
		}
		if (bt->n > 1) {
			log_info("braze: POST %s: HTTP %ld for %zu rows; splitting the batch", endpoints[bt->ep].path,
				 res->status, bt->n);
			bisect(b, bt);
		} else {
			snprintf(detail, sizeof(detail), "HTTP %ld%s%s", res->status, msg ? ": " : "", msg ? msg : "");
			fail_all(b, bt, detail);
		}
		goto out;
	}
	handle_success(b, bt, body);
out:
	strbuf_release(&transport);
	json_decref(body);
}

/* ---- the pump ---- */

static void submit(struct braze *b, struct batch *bt)
{
	build_body(b, bt);
	b->body_bytes += bt->body.len;
	if ((++b->bodies & 63) == 1)
		window_bound(b);
	if (!bt->url) {
		struct strbuf u = STRBUF_INIT;
		strbuf_addf(&u, "%s%s", b->base_url, endpoints[bt->ep].path);
		bt->url = strbuf_detach(&u, NULL);
	}
	bt->req = (struct http_request){
		.method = "POST", .url = bt->url, .auth_bearer = b->api_key,
		.body = { bt->body.buf, bt->body.len }, .bulk = b->opts.bulk && bt->ep == EP_TRACK, .user = bt,
	};
	b->inflight++;
	if (b->inflight > b->stats.inflight_peak)
		b->stats.inflight_peak = (uint32_t)b->inflight;
	b->ep_used[bt->ep] = mono_ms();
	http_submit(b->http, &bt->req);
}

/*
 * Send what may be sent, then wait up to max_wait_ms for responses; 0: take the
 * answers that are there and return at once.
 */
static void pump(struct braze *b, int max_wait_ms)
{
	int64_t now = mono_ms(), next = now + max_wait_ms;
	bool blocked[EP__COUNT] = { false }; /* the endpoint's bucket is empty this pass */

	if (b->sink.tick && !b->fatal) {
		struct jerror err = JERROR_INIT;
		sink_result(b, b->sink.tick(b->sink.ctx, &err), &err);
	}
	struct batch *prev = NULL, *bt = b->ready_head;
	bool stopping = b->opts.stop && *b->opts.stop;

	while (bt && !b->fatal && !stopping && b->inflight < (size_t)window_size(&b->win)) {
		struct batch *nx = bt->next;
		if (bt->not_before > now) {
			if (bt->not_before < next)
				next = bt->not_before;
			prev = bt;
			bt = nx;
			continue;
		}
		int64_t wait = blocked[bt->ep] ? 1 : ratelimit_acquire(&b->rl[bt->ep], now);
		if (wait > 0) {
			blocked[bt->ep] = true;
			if (now + wait < next)
				next = now + wait;
			prev = bt;
			bt = nx;
			continue;
		}
		ready_remove(b, prev, bt);
		submit(b, bt);
		bt = nx;
	}
	int timeout = (int)(next - now);
	if (max_wait_ms <= 0) {
		if (b->inflight)
			http_run(b->http, 0, on_done, b);
		return;
	}
	if (timeout < 1)
		timeout = 1;
	if (b->inflight) {
		http_run(b->http, timeout, on_done, b);
	} else if (b->n_ready && !b->fatal && !stopping) {
		usleep((useconds_t)timeout * 1000);
	}
}

/* ---- ops ---- */

const double dest_latency_bounds[DEST_LATENCY_BUCKETS] = { 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
							   0.5,	  1,	2.5,   5,    10,  30 };

bool dest_field_billable(const char *field)
{
	static const char *const free_fields[] = { "country", "email_subscribe", "external_id", "language",
						   "push_subscribe", "subscription_groups" };
	for (size_t i = 0; i < ARRAY_SIZE(free_fields); i++)
		if (!strcmp(field, free_fields[i]))
			return false;
	return true;
}

static char *normalise_url(const char *s)
{
	struct strbuf sb = STRBUF_INIT;
	if (!strstr(s, "://"))
		strbuf_addstr(&sb, "https://");
	strbuf_addstr(&sb, s);
	while (sb.len && sb.buf[sb.len - 1] == '/')
		strbuf_setlen(&sb, sb.len - 1);
	return strbuf_detach(&sb, NULL);
}

static enum jerr braze_open(const struct cfg_app *app, const struct cfg_destination *dest,
			    const struct dest_opts *opts, const struct dest_sink *sink, void **h,
			    struct jerror *err)
{
	const char *key = cfg_options_str(&app->options, "apiKey");
	const char *endpoint = cfg_options_str(&app->options, "restEndpoint");
	struct braze *b;

	*h = NULL;
	if (!key || !*key || !endpoint || !*endpoint)
		return jerror_set(err, JERR_CONFIG, "app \"%s\" needs the options apiKey and restEndpoint", app->id);
	b = xcalloc(1, sizeof(*b));
	b->app = app;
	b->dest = dest;
	b->api_key = key;
	b->base_url = normalise_url(endpoint);
	if (opts)
		b->opts = *opts;
	else
		dest_opts_defaults(&b->opts);
	if (sink)
		b->sink = *sink;
	b->enrich = dest && dest->sync_mode == SYNC_ENRICH;
	b->rng = (uint64_t)epoch_ms() ^ ((uint64_t)getpid() << 32) ^ 0x9e3779b97f4a7c15ULL;
	if (!b->opts.window_memory)
		b->opts.window_memory = (uint64_t)256 << 20;
	/* the window's cap: --concurrency, the hard maximum, and a socket per request */
	b->cap = b->opts.max_inflight > 0 && b->opts.max_inflight < WINDOW_HARD_MAX ? b->opts.max_inflight
										 : WINDOW_HARD_MAX;
	long fds = http_max_sockets(b->cap);
	if (fds < b->cap)
		b->cap = fds < 1 ? 1 : (int)fds;
	struct window_opts wo = { .max = b->cap };
	window_init(&b->win, &wo);
	b->conn_limit = window_size(&b->win);
	struct http_client_opts ho = { .connect_timeout_ms = b->opts.connect_timeout_ms,
				       .timeout_ms = b->opts.timeout_ms,
				       .max_connections = b->conn_limit };
	b->http = http_client_new(&ho);
	b->rl = budget_get(app, b->base_url, key, b->opts.rate_target);
	*h = b;
	return JERR_OK;
}

/*
 * Append `"op":["a","b"]` with the names of list that are `groups` attribute values
 * (not subscription groups), preceded by a comma if *first is false; one data point
 * each. Nothing is written when there are none.
 */
static void add_group_op(struct strbuf *sb, const char *op, const char *const *list, size_t n, bool *first,
			 size_t *dp)
{
	size_t written = 0;
	for (size_t i = 0; i < n; i++) {
		if (dest_is_subscription_group(list[i]))
			continue;
		if (!written++)
			strbuf_addf(sb, "%s\"%s\":[", *first ? "" : ",", op);
		else
			strbuf_addch(sb, ',');
		strbuf_add_json_string(sb, list[i], strlen(list[i]));
		(*dp)++;
	}
	if (written) {
		strbuf_addch(sb, ']');
		*first = false;
	}
}

/* The `groups` custom attribute changes, as Braze's array add/remove operations. */
static void add_groups_attr(struct strbuf *sb, const struct dest_change *c, size_t *dp)
{
	size_t mark = sb->len;
	bool first = true;
	strbuf_addstr(sb, ",\"groups\":{");
	add_group_op(sb, "add", c->groups_added, c->n_added, &first, dp);
	add_group_op(sb, "remove", c->groups_removed, c->n_removed, &first, dp);
	if (first)
		strbuf_setlen(sb, mark); /* no attribute values among the changes */
	else
		strbuf_addch(sb, '}');
}

static size_t add_subscriptions(struct strbuf *sb, const struct dest_change *c)
{
	size_t n = 0;
	for (int pass = 0; pass < 2; pass++) {
		const char *const *list = pass ? c->groups_removed : c->groups_added;
		size_t cnt = pass ? c->n_removed : c->n_added;
		for (size_t i = 0; i < cnt; i++) {
			if (!dest_is_subscription_group(list[i]))
				continue;
			strbuf_addstr(sb, n ? ",{\"subscription_group_id\":" : ",\"subscription_groups\":[{\"subscription_group_id\":");
			strbuf_add_json_string(sb, list[i], strlen(list[i]));
			strbuf_addf(sb, ",\"subscription_state\":\"%s\"}", pass ? "unsubscribed" : "subscribed");
			n++;
		}
	}
	if (n)
		strbuf_addch(sb, ']');
	return n;
}

/* Batches that may be queued or in flight before push blocks. */
static size_t backlog(const struct braze *b)
{
	size_t w = (size_t)window_size(&b->win);
	return w + w / 2 + 4;
}

static enum jerr braze_push(void *h, const struct dest_change *c, struct jerror *err)
{
	struct braze *b = h;
	struct row *r;
	size_t ready_before = b->n_ready;

	if (b->fatal)
		goto fatal;
	r = xcalloc(1, sizeof(*r));
	r->op = c->op;
	r->keybuf = xstrndup(c->key->text.ptr, c->key->text.len);
	r->key = *c->key;
	r->key.text = (struct slice){ r->keybuf, c->key->text.len };
	r->create = c->create;
	r->payload = c->new_payload.len ? xstrndup(c->new_payload.ptr, c->new_payload.len) : NULL;
	r->payload_len = c->new_payload.len;
	if (c->new_hash)
		memcpy(r->hash, c->new_hash, STATE_HASH_LEN);
	r->in_scope = c->in_scope;
	r->attempts = c->attempts;
	if (c->changed.len) {
		r->changed = xstrndup(c->changed.ptr, c->changed.len);
		r->changed_len = c->changed.len;
	}

	if (c->op == DEST_DELETE) {
		enqueue(b, EP_DELETE, r);
	} else {
		struct strbuf sb = STRBUF_INIT;
		size_t dp = 0;
		strbuf_addstr(&sb, "{\"external_id\":");
		strbuf_add_json_string(&sb, c->key->text.ptr, c->key->text.len);
		for (size_t i = 0; i < c->n_fields; i++) {
			strbuf_addch(&sb, ',');
			strbuf_add_json_string(&sb, c->fields[i].name, strlen(c->fields[i].name));
			strbuf_addch(&sb, ':');
			strbuf_addstr(&sb, c->fields[i].json);
			dp += dest_field_billable(c->fields[i].name);
		}
		size_t attr_len = sb.len;
		add_groups_attr(&sb, c, &dp);
		bool groups_attr = sb.len != attr_len;
		size_t n_subs = add_subscriptions(&sb, c);
		strbuf_addch(&sb, '}');
		r->data_points = dp;

		if (c->op == DEST_ENRICH_NEW) {
			r->object = strbuf_detach(&sb, NULL);
			enqueue(b, EP_EXPORT_IDS, r);
		} else if (!c->create && !c->n_fields && !groups_attr && n_subs && !b->enrich) {
			/* only subscription changes: the subscription endpoint, no data points */
			r->subs = xcalloc(n_subs, sizeof(*r->subs));
			for (int pass = 0; pass < 2; pass++) {
				const char *const *list = pass ? c->groups_removed : c->groups_added;
				size_t cnt = pass ? c->n_removed : c->n_added;
				for (size_t i = 0; i < cnt; i++)
					if (dest_is_subscription_group(list[i]))
						r->subs[r->n_subs++] = (struct sub_change){ xstrdup(list[i]), !pass };
			}
			strbuf_release(&sb);
			enqueue(b, EP_SUBSCRIPTION, r);
		} else if (!c->create && !c->n_fields && !groups_attr && !n_subs) {
			/* nothing for Braze (e.g. released with no mapped groups): confirm at once */
			struct batch *bt = batch_new(EP_TRACK);
			enum dest_result ok = DEST_OK;
			strbuf_release(&sb);
			batch_add(bt, r);
			deliver(b, bt, &ok, NULL);
		} else {
			r->object = strbuf_detach(&sb, NULL);
			enqueue(b, EP_TRACK, r);
		}
	}
	/* a batch is ready: send it now if the window and the rate allow, and take answers */
	if (b->n_ready > ready_before && !b->fatal && !(b->opts.stop && *b->opts.stop))
		pump(b, 0);
	/* backpressure: keep the queue short, half a window behind the requests in flight */
	while (!b->fatal && b->n_ready + b->inflight >= backlog(b)) {
		if (b->opts.stop && *b->opts.stop)
			break;
		pump(b, 100);
	}
	if (!b->fatal)
		return JERR_OK;
fatal:
	jerror_set(err, b->fatal, "%s", b->fatal_err.msg.buf);
	if (b->fatal_err.detail.len)
		jerror_detail(err, "%s", b->fatal_err.detail.buf);
	if (b->fatal_err.hint.len)
		jerror_hint(err, "%s", b->fatal_err.hint.buf);
	return b->fatal;
}

static enum jerr braze_finish(void *h, struct jerror *err)
{
	struct braze *b = h;
	for (;;) {
		/* close the open batches (export/ids answers may open new track batches) */
		for (int i = 0; i < EP__COUNT; i++)
			if (b->open[i]) {
				ready_push(b, b->open[i], false);
				b->open[i] = NULL;
			}
		bool stopping = b->opts.stop && *b->opts.stop;
		if (b->fatal || stopping) {
			while (b->inflight)
				http_run(b->http, 100, on_done, b);
			break;
		}
		if (!b->n_ready && !b->inflight)
			break;
		pump(b, 100);
	}
	/* whatever is still queued gets no outcome: the next run sends it again */
	while (b->ready_head) {
		struct batch *bt = b->ready_head;
		ready_remove(b, NULL, bt);
		batch_free(bt, true);
	}
	for (int i = 0; i < EP__COUNT; i++) {
		batch_free(b->open[i], true);
		b->open[i] = NULL;
	}
	if (b->fatal) {
		jerror_set(err, b->fatal, "%s", b->fatal_err.msg.buf);
		if (b->fatal_err.detail.len)
			jerror_detail(err, "%s", b->fatal_err.detail.buf);
		if (b->fatal_err.hint.len)
			jerror_hint(err, "%s", b->fatal_err.hint.buf);
		return b->fatal;
	}
	if (b->opts.stop && *b->opts.stop)
		return jerror_set(err, JERR_INTERRUPTED, "run interrupted; batches in flight were committed");
	return JERR_OK;
}

static void braze_stats(void *h, struct dest_stats *out)
{
	struct braze *b = h;
	*out = b->stats;
	out->window_peak = (uint32_t)b->win.peak;
	out->window_last = (uint32_t)window_size(&b->win);
	out->window_max = (uint32_t)b->win.o.max;
	out->window_decreases = b->win.decreases;
	out->latency_srtt_ms = b->win.srtt_ms;
}

static void braze_close(void *h)
{
	struct braze *b = h;
	if (!b)
		return;
	while (b->inflight)
		http_run(b->http, 100, on_done, b); /* outcomes of a closed run are dropped */
	while (b->ready_head) {
		struct batch *bt = b->ready_head;
		ready_remove(b, NULL, bt);
		batch_free(bt, true);
	}
	for (int i = 0; i < EP__COUNT; i++)
		batch_free(b->open[i], true);
	http_client_free(b->http);
	budget_put(b->rl);
	jerror_release(&b->fatal_err);
	free(b->base_url);
	free(b);
}

/* ---- connection check ---- */

struct check_ctx {
	const char *key; /* masked in what is kept */
	long status;
	char msg[256];
	char error[256];
};

static void check_done(void *ctx, struct http_request *req, const struct http_response *res)
{
	struct check_ctx *c = ctx;
	json_t *body = braze_response_parse(res->body);
	struct strbuf e = STRBUF_INIT;
	braze_response_mask(body, c->key);
	const char *m = braze_response_message(body);
	c->status = res->status;
	snprintf(c->msg, sizeof(c->msg), "%s", m ? m : "");
	mask_key(&e, res->error ? res->error : "", c->key);
	snprintf(c->error, sizeof(c->error), "%s", e.buf);
	strbuf_release(&e);
	json_decref(body);
	(void)req;
}

static enum jerr braze_check(const struct cfg_app *app, const struct dest_opts *opts, struct jerror *err)
{
	static const struct {
		enum endpoint ep;
		const char *body;
	} probes[] = {
		/* an empty track request changes nothing; Braze answers 400 when the key is good */
		{ EP_TRACK, "{\"attributes\":[]}" },
		{ EP_EXPORT_IDS, "{\"external_ids\":[\"joey-connection-check\"],\"fields_to_export\":[\"external_id\"]}" },
		{ EP_DELETE, "{\"external_ids\":[]}" },
	};
	const char *key = cfg_options_str(&app->options, "apiKey");
	const char *endpoint = cfg_options_str(&app->options, "restEndpoint");
	struct http_client_opts ho = { .connect_timeout_ms = opts ? opts->connect_timeout_ms : 10000,
				       .timeout_ms = opts ? opts->timeout_ms : 30000 };
	enum jerr rc = JERR_OK;

	if (!key || !endpoint)
		return jerror_set(err, JERR_CONFIG, "app \"%s\" needs the options apiKey and restEndpoint", app->id);
	char *base = normalise_url(endpoint);
	struct http_client *hc = http_client_new(&ho);
	for (size_t i = 0; i < ARRAY_SIZE(probes) && !rc; i++) {
		struct check_ctx c = { .key = key };
		struct strbuf url = STRBUF_INIT;
		strbuf_addf(&url, "%s%s", base, endpoints[probes[i].ep].path);
		struct http_request req = { .method = "POST", .url = url.buf, .auth_bearer = key,
					    .body = slice_of(probes[i].body) };
		http_submit(hc, &req);
		while (http_pending(hc))
			http_run(hc, 100, check_done, &c);
		if (c.status == 0) {
			rc = jerror_set(err, JERR_HTTP, "could not reach Braze for app \"%s\"", app->id);
			jerror_detail(err, "POST %s: %s", url.buf, c.error);
			jerror_hint(err, "check restEndpoint and the network");
		} else if (c.status == 401) {
			rc = jerror_set(err, JERR_AUTH, "Braze rejected the API key of app \"%s\"", app->id);
			jerror_detail(err, "POST %s: HTTP 401%s%s", url.buf, c.msg[0] ? ": " : "", c.msg);
			jerror_hint(err, "check apiKey, and that restEndpoint is the instance of the key's workspace");
		} else if (c.status == 403) {
			rc = jerror_set(err, JERR_AUTH, "the API key of app \"%s\" lacks a permission joey needs", app->id);
			jerror_detail(err, "POST %s: HTTP 403%s%s", url.buf, c.msg[0] ? ": " : "", c.msg);
			jerror_hint(err, "the key needs the %s permission (and users.track, users.delete, users.export.ids, subscription.status.set)",
				    endpoints[probes[i].ep].permission);
		} else if (c.status == 404) {
			rc = jerror_set(err, JERR_REMOTE, "restEndpoint of app \"%s\" does not serve the Braze API", app->id);
			jerror_detail(err, "POST %s: HTTP 404", url.buf);
			jerror_hint(err, "it should look like https://rest.iad-01.braze.com");
		} else if (c.status >= 500) {
			rc = jerror_set(err, JERR_REMOTE, "Braze answered HTTP %ld for app \"%s\"", c.status, app->id);
			jerror_detail(err, "POST %s%s%s", url.buf, c.msg[0] ? ": " : "", c.msg);
			jerror_hint(err, "try again later");
		}
		strbuf_release(&url);
	}
	http_client_free(hc);
	free(base);
	return rc;
}

static const char *const braze_dest_types[] = { "braze-export-users", "braze-export", NULL };

const struct dest_ops dest_braze = {
	.app_type = "braze",
	.destination_types = braze_dest_types,
	.open = braze_open,
	.check = braze_check,
	.push = braze_push,
	.finish = braze_finish,
	.stats = braze_stats,
	.close = braze_close,
};

const struct dest_ops *dest_ops_for_app(const char *app_type)
{
	static const struct dest_ops *const all[] = { &dest_braze };
	for (size_t i = 0; i < ARRAY_SIZE(all); i++)
		if (app_type && !strcmp(all[i]->app_type, app_type))
			return all[i];
	return NULL;
}
