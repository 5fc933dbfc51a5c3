/*
 * braze.c: the Braze connector's ops and lifecycle: open, push, finish, stats, close and
 * the connection check (dest_braze, dest.h); the endpoints, clocks and backoff, the rate
 * budgets shared by the destinations of one workspace, the batch queues, the window of
 * requests in flight and the pump that sends. Owns struct braze and every batch and row
 * queued on it. Request bodies: braze_request.c; answers: braze_answer.c and
 * braze_enrich.c (braze_internal.h). Called by the engine through dest_braze.
 */
#include "dest/dest.h"

#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

const struct braze_endpoint braze_endpoints[EP__COUNT] = {
	[EP_TRACK] = { "/users/track", "track", 3000, 3000, 75, "users.track" },
	[EP_DELETE] = { "/users/delete", "delete", 20000, 60000, 50, "users.delete" },
	[EP_EXPORT_IDS] = { "/users/export/ids", "export_ids", 250, 60000, 50, "users.export.ids" },
	[EP_SUBSCRIPTION] = { "/v2/subscription/status/set", "subscription", 5000, 60000, 50,
			      "subscription.status.set" },
};

/* ---- clocks and jitter ---- */

int64_t braze_mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t braze_epoch_ms(void)
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

int64_t braze_backoff_ms(struct braze *b, int attempt)
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
	pthread_mutex_t lock; /* the runs of `joey serve` use the buckets from their threads */
	int refs;
};

static struct shared_budget **budgets; /* pointers: the buckets must not move */
static size_t n_budgets, alloc_budgets;
static pthread_mutex_t budgets_lock = PTHREAD_MUTEX_INITIALIZER; /* budgets, n_budgets, refs */

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
	snprintf(out, n, "braze:%s:%016llx%016llx", braze_endpoints[ep].name, (unsigned long long)h.high64,
		 (unsigned long long)h.low64);
}

static struct ratelimit *budget_get(const struct cfg_app *app, const char *endpoint, const char *key,
				    double target)
{
	struct strbuf k = STRBUF_INIT;
	strbuf_addstr(&k, endpoint);
	strbuf_addch(&k, 0);
	strbuf_addstr(&k, key);
	pthread_mutex_lock(&budgets_lock);
	for (size_t i = 0; i < n_budgets; i++)
		if (budgets[i]->key_len == k.len && !memcmp(budgets[i]->key, k.buf, k.len)) {
			budgets[i]->refs++;
			pthread_mutex_unlock(&budgets_lock);
			strbuf_release(&k);
			return budgets[i]->rl;
		}
	ALLOC_GROW(budgets, n_budgets + 1, alloc_budgets);
	struct shared_budget *b = xcalloc(1, sizeof(*b));
	budgets[n_budgets++] = b;
	b->key_len = k.len;
	b->key = strbuf_detach(&k, NULL);
	b->refs = 1;
	pthread_mutex_init(&b->lock, NULL);
	const char *spec = app ? cfg_options_str(&app->options, "rateLimits") : NULL;
	for (int i = 0; i < EP__COUNT; i++) {
		/* the workspace's limits: Braze's defaults, or the app's rateLimits option */
		int64_t limit = braze_endpoints[i].limit, window_ms = braze_endpoints[i].window_ms;
		const char *bad;
		(void)catalog_rate_limit(spec, braze_endpoints[i].name, &limit, &window_ms, &bad);
		ratelimit_init(&b->rl[i], limit, window_ms, target);
		if (ratelimit_shared_active()) {
			char sk[64];
			shared_key(sk, sizeof(sk), i, endpoint, key);
			ratelimit_share(&b->rl[i], sk);
		} else {
			ratelimit_window_budget(&b->rl[i]); /* spend Braze's fixed windows as they come */
		}
		ratelimit_set_lock(&b->rl[i], &b->lock);
	}
	pthread_mutex_unlock(&budgets_lock);
	return b->rl;
}

static void budget_put(struct ratelimit *rl)
{
	pthread_mutex_lock(&budgets_lock);
	for (size_t i = 0; i < n_budgets; i++) {
		if (budgets[i]->rl != rl || --budgets[i]->refs > 0)
			continue;
		memset(budgets[i]->key, 0, budgets[i]->key_len); /* it holds the API key */
		free(budgets[i]->key);
		pthread_mutex_destroy(&budgets[i]->lock);
		free(budgets[i]);
		budgets[i] = budgets[--n_budgets];
		if (!n_budgets) {
			free(budgets);
			budgets = NULL;
			alloc_budgets = 0;
		}
		break;
	}
	pthread_mutex_unlock(&budgets_lock);
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
	for (size_t i = 0; i < r->n_subs; i++)
		free(r->subs[i].group_id);
	free(r->subs);
	free(r); /* its strings are in the same allocation (struct row) */
}

struct batch *braze_batch_new(enum endpoint ep)
{
	struct batch *bt = xcalloc(1, sizeof(*bt));
	bt->ep = ep;
	strbuf_init(&bt->body, 0);
	/* room for a full batch at once: rows are added one by one */
	bt->alloc = braze_endpoints[ep].max_rows;
	bt->rows = xmalloc(bt->alloc * sizeof(*bt->rows));
	return bt;
}

void braze_batch_free(struct batch *bt, bool rows_too)
{
	if (!bt)
		return;
	if (rows_too)
		for (size_t i = 0; i < bt->n; i++)
			row_free(bt->rows[i]);
	free(bt->rows);
	strbuf_release(&bt->body);
	free(bt);
}

struct row *braze_row_alloc(struct braze *b, size_t need)
{
	while (b->n_pool) {
		struct row *r = b->pool[--b->n_pool];
		if (r->cap >= need)
			return r;
		free(r); /* too small for this one: the pool refills with larger ones */
	}
	size_t cap = (need + 255) & ~(size_t)255; /* rounded up: the next row may be a bit longer */
	struct row *r = xmalloc(sizeof(*r) + cap);
	r->cap = cap;
	return r;
}

void braze_batch_recycle(struct braze *b, struct batch *bt)
{
	ALLOC_GROW(b->pool, b->n_pool + bt->n, b->alloc_pool);
	for (size_t i = 0; i < bt->n; i++) {
		struct row *r = bt->rows[i];
		if (r->n_subs)
			row_free(r);
		else
			b->pool[b->n_pool++] = r;
	}
	/* the batch too, with its rows array and its body's buffer */
	bt->n = 0;
	bt->next = b->spare;
	b->spare = bt;
}

/* An empty batch for ep: a spare one (its rows array and body buffer kept) or a new one. */
static struct batch *batch_take(struct braze *b, enum endpoint ep)
{
	struct batch *bt = b->spare;
	if (!bt)
		return braze_batch_new(ep);
	b->spare = bt->next;
	struct row **rows = bt->rows;
	size_t alloc = bt->alloc;
	struct strbuf body = bt->body;
	memset(bt, 0, sizeof(*bt));
	bt->ep = ep;
	bt->rows = rows;
	bt->alloc = alloc;
	bt->body = body;
	strbuf_reset(&bt->body);
	return bt;
}

void braze_spares_free(struct braze *b)
{
	while (b->spare) {
		struct batch *bt = b->spare;
		b->spare = bt->next;
		braze_batch_free(bt, false);
	}
	for (size_t i = 0; i < b->n_pool; i++)
		free(b->pool[i]);
	free(b->pool);
	b->pool = NULL;
	b->n_pool = b->alloc_pool = 0;
}

void braze_batch_add(struct batch *bt, struct row *r)
{
	ALLOC_GROW(bt->rows, bt->n + 1, bt->alloc);
	bt->rows[bt->n++] = r;
}

void braze_ready_push(struct braze *b, struct batch *bt, bool front)
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

/* Queue a row on its endpoint's open batch; a full batch moves to the ready queue. */
void braze_enqueue(struct braze *b, enum endpoint ep, struct row *r)
{
	struct batch *bt = b->open[ep];
	if (bt && ep == EP_SUBSCRIPTION && braze_sub_entries(bt, r) > MAX_SUB_ENTRIES) {
		braze_ready_push(b, bt, false);
		bt = b->open[ep] = NULL;
	}
	if (!bt)
		bt = b->open[ep] = batch_take(b, ep);
	braze_batch_add(bt, r);
	if (bt->n >= braze_endpoints[ep].max_rows) {
		braze_ready_push(b, bt, false);
		b->open[ep] = NULL;
	}
}

/* ---- the window of requests in flight ---- */

/*
 * The rate budget (requests per ms, ratelimit_rate: more while a fresh window is being
 * spent) of the endpoints that sent or had an answer in the last 2 s (answers too: at a latency over 2 s a full window sends nothing for a while).
 */
double braze_rate_in_use(const struct braze *b, int64_t now)
{
	double r = 0;
	for (int i = 0; i < EP__COUNT; i++)
		if (b->ep_used[i] && now - b->ep_used[i] <= 2000)
			r += ratelimit_rate(&b->rl[i], now);
	return r;
}

/*
 * The window's bound: the cap (--concurrency, file descriptors, the hard maximum) and
 * what window_memory holds at the mean body size so far; the connection pool follows
 * the window up (HTTP/1.1 needs one connection per request in flight).
 */
void braze_window_bound(struct braze *b)
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

/* ---- the pump ---- */

static void submit(struct braze *b, struct batch *bt)
{
	braze_build_body(b, bt);
	b->body_bytes += bt->body.len;
	if ((++b->bodies & 63) == 1)
		braze_window_bound(b);
	if (!b->urls[bt->ep]) {
		struct strbuf u = STRBUF_INIT;
		strbuf_addf(&u, "%s%s", b->base_url, braze_endpoints[bt->ep].path);
		b->urls[bt->ep] = strbuf_detach(&u, NULL);
	}
	bt->url = b->urls[bt->ep];
	bt->req = (struct http_request){
		.method = "POST", .url = bt->url, .auth_bearer = b->api_key,
		.body = { bt->body.buf, bt->body.len }, .bulk = b->opts.bulk && bt->ep == EP_TRACK, .user = bt,
	};
	b->inflight++;
	if (b->inflight > b->stats.inflight_peak)
		b->stats.inflight_peak = (uint32_t)b->inflight;
	b->ep_used[bt->ep] = braze_mono_ms();
	http_submit(b->http, &bt->req);
}

/*
 * The keys of bt to the sink before it is first sent (its journal: a request that may
 * change Braze is on record before Braze can apply it). false: the sink failed, and
 * the connector is failed with its error. Only the journal failed, not the store: the
 * answers to requests in flight are still delivered (Braze may have applied them).
 */
static bool announce(struct braze *b, struct batch *bt)
{
	struct jerror err = JERROR_INIT;
	ALLOC_GROW(b->announce, bt->n, b->announce_alloc);
	for (size_t i = 0; i < bt->n; i++)
		b->announce[i] = &bt->rows[i]->key;
	enum jerr rc = b->sink.sending(b->sink.ctx, b->announce, bt->n, &err);
	bt->announced = !rc;
	if (rc && !b->fatal) {
		b->fatal = rc;
		jerror_release(&b->fatal_err);
		b->fatal_err = err;
	} else {
		jerror_release(&err);
	}
	return !rc;
}

int64_t braze_send_ready(struct braze *b, int64_t now, int max_wait_ms)
{
	int64_t next = now + max_wait_ms;
	bool blocked[EP__COUNT] = { false }; /* the endpoint's bucket is empty this pass */
	struct batch *prev = NULL, *bt = b->ready_head;
	bool stopping = b->opts.stop && *b->opts.stop;
	int64_t until = b->opts.send_until ? atomic_load(b->opts.send_until) : 0;

	if (until && now > until) {
		/* the lease may have run out: nothing starts until it is renewed (or the run stops) */
		return bt && now + 50 < next ? now + 50 : next;
	}

	while (bt && !b->fatal && !stopping && b->inflight < (size_t)window_size(&b->win)) {
		struct batch *nx = bt->next;
		if (bt->not_before > now) {
			if (bt->not_before < next)
				next = bt->not_before;
			prev = bt;
			bt = nx;
			continue;
		}
		/*
		 * An endpoint whose bucket said wait: its other batches wait as long (its wait
		 * is in next already). They once counted as a wait of 1 ms, so that a spent
		 * window (seconds to its end) woke the run every millisecond.
		 */
		if (blocked[bt->ep]) {
			prev = bt;
			bt = nx;
			continue;
		}
		int64_t wait = ratelimit_acquire(&b->rl[bt->ep], now);
		if (wait > 0) {
			blocked[bt->ep] = true;
			if (now + wait < next)
				next = now + wait;
			prev = bt;
			bt = nx;
			continue;
		}
		if (!bt->announced && bt->ep != EP_EXPORT_IDS && b->sink.sending && !announce(b, bt))
			break; /* not on record: not sent (the run fails) */
		ready_remove(b, prev, bt);
		submit(b, bt);
		bt = nx;
	}
	return next;
}

/*
 * Send what may be sent, then wait up to max_wait_ms for responses; 0: take the
 * answers that are there and return at once.
 */
static void pump(struct braze *b, int max_wait_ms)
{
	int64_t now = braze_mono_ms();

	if (b->sink.tick && !b->fatal) {
		struct jerror err = JERROR_INIT;
		braze_sink_result(b, b->sink.tick(b->sink.ctx, &err), &err);
	}
	bool stopping = b->opts.stop && *b->opts.stop;
	int64_t next = braze_send_ready(b, now, max_wait_ms);
	int timeout = (int)(next - now);
	if (max_wait_ms <= 0) {
		if (b->inflight)
			http_run(b->http, 0, braze_on_done, b);
		return;
	}
	if (timeout < 1)
		timeout = 1;
	if (b->inflight) {
		http_run(b->http, timeout, braze_on_done, b);
	} else if (b->n_ready && !b->fatal && !stopping) {
		usleep((useconds_t)timeout * 1000);
	}
}

/* ---- ops ---- */

const double dest_latency_bounds[DEST_LATENCY_BUCKETS] = { 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
							   0.5,	  1,	2.5,   5,    10,  30 };

bool dest_field_billable(const char *field)
{
	return braze_field_billable_len(field, strlen(field));
}

bool braze_field_billable_len(const char *field, size_t len)
{
#define FREE_FIELD(s) { s, sizeof(s) - 1 }
	static const struct {
		const char *name;
		size_t len;
	} free_fields[] = { FREE_FIELD("country"), FREE_FIELD("email_subscribe"), FREE_FIELD("external_id"),
			    FREE_FIELD("language"), FREE_FIELD("push_subscribe"), FREE_FIELD("subscription_groups") };
#undef FREE_FIELD
	/* called per field per row: the length first, then the one free field that long */
	for (size_t i = 0; i < ARRAY_SIZE(free_fields); i++)
		if (len == free_fields[i].len && !memcmp(field, free_fields[i].name, len))
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
	strbuf_init(&b->scratch, 1024);
	if (opts)
		b->opts = *opts;
	else
		dest_opts_defaults(&b->opts);
	if (sink)
		b->sink = *sink;
	b->enrich = dest && dest->sync_mode == SYNC_ENRICH;
	b->rng = (uint64_t)braze_epoch_ms() ^ ((uint64_t)getpid() << 32) ^ 0x9e3779b97f4a7c15ULL;
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
	b->rl = budget_get(app, b->base_url, key, b->opts.rate_target);
	/* the rate budget is known, the latency is not: the first round trip is sized for a
	 * slow Braze (window.h); the first body bounds it by memory, the first answer by need */
	window_prime(&b->win, b->rl[b->enrich ? EP_EXPORT_IDS : EP_TRACK].rate_per_ms);
	b->conn_limit = window_size(&b->win);
	struct http_client_opts ho = { .connect_timeout_ms = b->opts.connect_timeout_ms,
				       .timeout_ms = b->opts.timeout_ms,
				       .max_connections = b->conn_limit };
	b->http = http_client_new(&ho);
	*h = b;
	return JERR_OK;
}

/* Batches that may be queued or in flight before push blocks. */
static size_t backlog(const struct braze *b)
{
	size_t w = (size_t)window_size(&b->win);
	return w + w / 2 + 4;
}

/* Copy the connector's fatal error to err; returns its code. */
static enum jerr fatal_to(const struct braze *b, struct jerror *err)
{
	jerror_set(err, b->fatal, "%s", b->fatal_err.msg.buf);
	if (b->fatal_err.detail.len)
		jerror_detail(err, "%s", b->fatal_err.detail.buf);
	if (b->fatal_err.hint.len)
		jerror_hint(err, "%s", b->fatal_err.hint.buf);
	return b->fatal;
}

static enum jerr braze_push(void *h, const struct dest_change *c, struct jerror *err)
{
	struct braze *b = h;
	size_t ready_before = b->n_ready;

	if (b->fatal)
		return fatal_to(b, err);
	braze_route_change(b, c);
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
	return fatal_to(b, err);
}

/* Free every batch still queued or open, rows and all: they get no outcome. */
static void drop_batches(struct braze *b)
{
	while (b->ready_head) {
		struct batch *bt = b->ready_head;
		ready_remove(b, NULL, bt);
		braze_batch_free(bt, true);
	}
	for (int i = 0; i < EP__COUNT; i++) {
		braze_batch_free(b->open[i], true);
		b->open[i] = NULL;
	}
}

static enum jerr braze_finish(void *h, struct jerror *err)
{
	struct braze *b = h;
	for (;;) {
		/* close the open batches (export/ids answers may open new track batches) */
		for (int i = 0; i < EP__COUNT; i++)
			if (b->open[i]) {
				braze_ready_push(b, b->open[i], false);
				b->open[i] = NULL;
			}
		bool stopping = b->opts.stop && *b->opts.stop;
		if (b->fatal || stopping) {
			while (b->inflight)
				http_run(b->http, 100, braze_on_done, b);
			break;
		}
		if (!b->n_ready && !b->inflight)
			break;
		pump(b, 100);
	}
	/* whatever is still queued gets no outcome: the next run sends it again */
	drop_batches(b);
	if (b->fatal)
		return fatal_to(b, err);
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
		http_run(b->http, 100, braze_on_done, b); /* outcomes of a closed run are dropped */
	drop_batches(b);
	http_client_free(b->http);
	budget_put(b->rl);
	jerror_release(&b->fatal_err);
	for (int i = 0; i < EP__COUNT; i++)
		free(b->urls[i]);
	strbuf_release(&b->scratch);
	free(b->announce);
	braze_spares_free(b);
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
	braze_mask_key(&e, res->error ? res->error : "", c->key);
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
		strbuf_addf(&url, "%s%s", base, braze_endpoints[probes[i].ep].path);
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
				    braze_endpoints[probes[i].ep].permission);
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
