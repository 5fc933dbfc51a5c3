/* server.c: braze-sim's HTTP layer: routes, auth, limits, faults, request log, /_sim/ API. */
#include "sim.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <malloc.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "base/xalloc.h"
#include "json_fast.h"

struct sim sim;
volatile int sim_stopping;

int64_t sim_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void sim_sleep_ms(long ms)
{
	int64_t end = sim_now_ms() + ms;
	while (!sim_stopping) {
		int64_t left = end - sim_now_ms();
		if (left <= 0)
			break;
		struct timespec ts = { 0, (long)(left > 50 ? 50 : left) * 1000000L };
		nanosleep(&ts, NULL);
	}
}

/* ---- memory ----
 *
 * A /users/track body of 75 users parses into a few thousand small jansson values that
 * live only for the request. They are allocated from a per-thread arena (reset by the
 * next parse), not from malloc: that was most of the simulator's CPU per request.
 * jansson's allocator is global, so sim_json_malloc takes from the arena only between
 * parse_arena_begin and parse_arena_end (around json_loadb of a Braze body), and
 * sim_json_free ignores pointers into this thread's arena. Nothing parsed may outlive
 * the request: the store copies what it keeps (user_set deep-copies). A parse that
 * does not fit continues in malloc, and the next one gets a larger arena.
 *
 * Request bodies are read into buffers from a small pool, so a 30 KB body does not cost
 * a fresh allocation (and glibc's consolidation of freed chunks) per request.
 */

#define ARENA_MIN ((size_t)256 * 1024)
#define ARENA_MAX ((size_t)64 * 1024 * 1024)

struct parse_arena {
	char *base;
	size_t cap, used;
	bool on, overflowed;
};

static __thread struct parse_arena tl_arena;
static pthread_key_t arena_key;
static pthread_once_t arena_once = PTHREAD_ONCE_INIT;

static void arena_free(void *p)
{
	struct parse_arena *a = p;
	free(a->base);
	memset(a, 0, sizeof(*a));
}

static void arena_key_init(void)
{
	pthread_key_create(&arena_key, arena_free);
}

static void *sim_json_malloc(size_t n)
{
	struct parse_arena *a = &tl_arena;
	if (a->on) {
		size_t need = (n + 15) & ~(size_t)15;
		if (need >= n && a->cap - a->used >= need) {
			void *p = a->base + a->used;
			a->used += need;
			return p;
		}
		a->overflowed = true;
	}
	return malloc(n);
}

static void sim_json_free(void *p)
{
	struct parse_arena *a = &tl_arena;
	if (a->base && (char *)p >= a->base && (char *)p < a->base + a->cap)
		return; /* arena memory: reclaimed by the next parse */
	free(p);
}

/* The arena of this thread, empty and on; body_len sizes a fresh one. */
static void parse_arena_begin(size_t body_len)
{
	struct parse_arena *a = &tl_arena;
	size_t want = a->cap;
	if (!a->base || a->overflowed) {
		if (want < ARENA_MIN)
			want = ARENA_MIN;
		while (want < body_len * 16 && want < ARENA_MAX)
			want *= 2;
		if (a->overflowed && want < ARENA_MAX)
			want *= 2;
	}
	if (want != a->cap) {
		pthread_once(&arena_once, arena_key_init);
		free(a->base);
		a->base = xmalloc(want);
		a->cap = want;
		pthread_setspecific(arena_key, a);
	}
	a->used = 0;
	a->overflowed = false;
	a->on = true;
}

static void parse_arena_end(void)
{
	tl_arena.on = false;
}

#define BODY_POOL 64
#define BODY_POOL_MAX_CAP ((size_t)8 * 1024 * 1024)

static pthread_mutex_t body_pool_lock = PTHREAD_MUTEX_INITIALIZER;
static struct strbuf body_pool[BODY_POOL];
static size_t body_pool_n;

static void body_take(struct strbuf *sb)
{
	pthread_mutex_lock(&body_pool_lock);
	if (body_pool_n) {
		*sb = body_pool[--body_pool_n];
		strbuf_reset(sb);
	} else {
		strbuf_init(sb, 64 * 1024);
	}
	pthread_mutex_unlock(&body_pool_lock);
}

static void body_give(struct strbuf *sb)
{
	pthread_mutex_lock(&body_pool_lock);
	if (body_pool_n < BODY_POOL && sb->alloc && sb->alloc <= BODY_POOL_MAX_CAP) {
		body_pool[body_pool_n++] = *sb;
		strbuf_init(sb, 0);
	}
	pthread_mutex_unlock(&body_pool_lock);
	strbuf_release(sb);
}

void sim_memory_init(void)
{
	json_set_alloc_funcs(sim_json_malloc, sim_json_free);
	/* the store only grows: take memory from the kernel in large steps (each
	 * connection thread's malloc arena otherwise grows its heap a few pages at a time,
	 * one mprotect each) and do not hand it back */
	mallopt(M_TOP_PAD, 16 << 20);
	mallopt(M_TRIM_THRESHOLD, 256 << 20);
}

/* ---- routes ---- */

struct route {
	const char *method, *path, *name, *perm;
	enum sim_bucket bucket;
	endpoint_fn fn;
};

static const struct route routes[] = {
	{ "POST", "/users/track", "track", "users.track", B_TRACK, ep_track },
	{ "POST", "/users/delete", "delete", "users.delete", B_DELETE, ep_delete },
	{ "POST", "/users/export/ids", "export", "users.export.ids", B_EXPORT, ep_export_ids },
	{ "POST", "/subscription/status/set", "subscription_set", "subscription.status.set", B_SUBSCRIPTION, ep_sub_set },
	{ "POST", "/v2/subscription/status/set", "subscription_set_v2", "subscription.status.set", B_SUBSCRIPTION,
	  ep_sub_set_v2 },
	{ "GET", "/subscription/status/get", "subscription_get", "subscription.status.get", B_DEFAULT, ep_sub_get },
	{ "GET", "/subscription/user/status", "subscription_user_status", "subscription.groups.get", B_DEFAULT,
	  ep_sub_user_status },
	{ "POST", "/users/external_ids/rename", "rename", "users.external_ids.rename", B_RENAME, ep_rename },
	{ "POST", "/users/external_ids/remove", "remove", "users.external_ids.remove", B_RENAME, ep_remove },
	{ "POST", "/users/identify", "identify", "users.identify", B_DELETE, ep_identify },
	{ "POST", "/users/alias/new", "alias_new", "users.alias.new", B_DELETE, ep_alias_new },
	{ "POST", "/users/merge", "merge", "users.merge", B_DELETE, ep_merge },
	{ "GET", "/campaigns/list", "campaigns", "campaigns.list", B_DEFAULT, ep_campaigns },
};

static const char *const bucket_names[B__COUNT] = { "track", "export", "delete", "subscription", "rename", "default" };

bool sim_parse_rate(const char *spec, enum sim_bucket *b, long *limit, long *window)
{
	const char *eq = strchr(spec, '=');
	char *end;
	if (!eq)
		return false;
	int found = -1;
	for (int i = 0; i < B__COUNT; i++)
		if (strlen(bucket_names[i]) == (size_t)(eq - spec) && !strncmp(spec, bucket_names[i], (size_t)(eq - spec)))
			found = i;
	if (found < 0 && (size_t)(eq - spec) == 10 && !strncmp(spec, "export_ids", 10))
		found = B_EXPORT;
	if (found < 0)
		return false;
	errno = 0;
	*limit = strtol(eq + 1, &end, 10);
	if (errno || *end != '/' || *limit < 0)
		return false;
	*window = strtol(end + 1, &end, 10);
	if (errno || *end || *window <= 0)
		return false;
	*b = (enum sim_bucket)found;
	return true;
}

bool sim_parse_cap(const char *s, enum track_cap *cap)
{
	if (!strcmp(s, "per_array_75"))
		*cap = CAP_PER_ARRAY_75;
	else if (!strcmp(s, "total_75"))
		*cap = CAP_TOTAL_75;
	else if (!strcmp(s, "total_50"))
		*cap = CAP_TOTAL_50;
	else
		return false;
	return true;
}

static const char *cap_name(enum track_cap c)
{
	return c == CAP_PER_ARRAY_75 ? "per_array_75" : c == CAP_TOTAL_75 ? "total_75" : "total_50";
}

/* ---- per-connection state ---- */

struct conn {
	struct strbuf body;
	size_t body_bytes;
	bool too_large;
	bool one_line; /* the body is JSON on one line (json_fast_loadb): logged as it is */
};

struct out {
	int status;
	char *body; /* owned, NUL-terminated */
	const char *ctype;
	const struct route *route;
	bool has_rate;
	long rl_limit, rl_remaining;
	int64_t rl_reset; /* epoch seconds of window end */
	long retry_after; /* > 0: a 429 */
	const char *fault;
	bool reset_conn, never_ending;
	long delay_ms; /* slept after processing, before the response */
};

static char *dump_free(json_t *j)
{
	char *s = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	return s;
}

static void out_message(struct out *o, int status, const char *msg)
{
	o->status = status;
	free(o->body);
	o->body = dump_free(json_pack("{s:s}", "message", msg));
}

/*
 * --echo-key: a careless server that quotes the key it was sent (as given in the
 * Authorization header) in the "message" of every error answer and in the "type" of
 * every per-object error, so tests can check that joey never shows it.
 */
static void echo_key(struct MHD_Connection *con, struct out *o)
{
	const char *h = MHD_lookup_connection_value(con, MHD_HEADER_KIND, "Authorization");
	json_t *j, *errors, *e;
	size_t i;
	char buf[1024];
	if (!h || !o->body)
		return;
	if (!strncmp(h, "Bearer ", 7))
		h += 7;
	if (!(j = json_loads(o->body, 0, NULL)))
		return;
	json_t *m = json_object_get(j, "message");
	if (o->status >= 400 && json_is_string(m)) {
		snprintf(buf, sizeof(buf), "%s (API key: %s)", json_string_value(m), h);
		json_object_set_new(j, "message", json_string(buf));
	}
	errors = json_object_get(j, "errors");
	json_array_foreach(errors, i, e) {
		json_t *t = json_object_get(e, "type");
		if (json_is_string(t)) {
			snprintf(buf, sizeof(buf), "%s (API key: %s)", json_string_value(t), h);
			json_object_set_new(e, "type", json_string(buf));
		}
	}
	free(o->body);
	o->body = dump_free(j);
}

/* ---- request log ---- */

static void log_header(json_t *h, const char *k, const char *v)
{
	if (!strcasecmp(k, "Authorization"))
		json_object_set_new(h, k, json_string(!strncmp(v, "Bearer ", 7) ? "Bearer ***" : "***"));
	else
		json_object_set_new(h, k, json_string(v));
}

static enum MHD_Result collect_header(void *cls, enum MHD_ValueKind kind, const char *k, const char *v)
{
	(void)kind;
	log_header(cls, k, v ? v : "");
	return MHD_YES;
}

static enum MHD_Result collect_query(void *cls, enum MHD_ValueKind kind, const char *k, const char *v)
{
	json_t *q = cls, *arr;
	char name[256];
	size_t n = strlen(k);
	(void)kind;
	if (n >= 2 && !strcmp(k + n - 2, "[]"))
		n -= 2;
	if (n >= sizeof(name))
		n = sizeof(name) - 1;
	memcpy(name, k, n);
	name[n] = 0;
	if (!(arr = json_object_get(q, name))) {
		arr = json_array();
		json_object_set_new(q, name, arr);
	}
	json_array_append_new(arr, json_string(v ? v : ""));
	return MHD_YES;
}

/* Append raw JSON text when it is one line, else re-encode. */
static void add_json_text(struct strbuf *sb, const char *text, size_t len, json_t *parsed)
{
	if (parsed && !memchr(text, '\n', len) && !memchr(text, '\r', len)) {
		strbuf_add(sb, text, len);
	} else if (parsed) {
		char *s = json_dumps(parsed, JSON_COMPACT | JSON_ENCODE_ANY);
		strbuf_addstr(sb, s ? s : "null");
		free(s);
	} else {
		strbuf_add_json_string(sb, text, len > 65536 ? 65536 : len);
	}
}

static void log_request(struct MHD_Connection *con, const char *method, const char *url, json_t *query,
			struct conn *cs, json_t *parsed, const struct out *o, int64_t start_ms)
{
	struct strbuf sb = STRBUF_INIT;
	char when[96];
	time_t t = (time_t)(start_ms / 1000);
	struct tm tm;
	json_t *h = json_object();

	if (!sim.log_keep && !sim.log_file) {
		json_decref(h);
		return;
	}
	gmtime_r(&t, &tm);
	snprintf(when, sizeof(when), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
		 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(start_ms % 1000));
	MHD_get_connection_values(con, MHD_HEADER_KIND, collect_header, h);
	char *hs = dump_free(h);

	strbuf_grow(&sb, cs->body.len + 512);
	strbuf_addstr(&sb, "{\"seq\":0000000000000000000,\"time\":");
	strbuf_add_json_string(&sb, when, strlen(when));
	strbuf_addstr(&sb, ",\"method\":");
	strbuf_add_json_string(&sb, method, strlen(method));
	strbuf_addstr(&sb, ",\"path\":");
	strbuf_add_json_string(&sb, url, strlen(url));
	strbuf_addstr(&sb, ",\"endpoint\":");
	const char *ep = o->route ? o->route->name : "unknown";
	strbuf_add_json_string(&sb, ep, strlen(ep));
	if (query && json_object_size(query)) {
		char *qs = json_dumps(query, JSON_COMPACT);
		strbuf_addf(&sb, ",\"query\":%s", qs);
		free(qs);
	}
	strbuf_addf(&sb, ",\"headers\":%s,\"body\":", hs);
	free(hs);
	if (cs->too_large)
		strbuf_addstr(&sb, "null");
	else if (cs->one_line)
		strbuf_add(&sb, cs->body.buf, cs->body.len);
	else if (cs->body.len || parsed)
		add_json_text(&sb, cs->body.buf, cs->body.len, parsed);
	else
		strbuf_addstr(&sb, "null");
	strbuf_addf(&sb, ",\"body_bytes\":%zu,\"status\":%d,\"response\":", cs->body_bytes, o->reset_conn ? 0 : o->status);
	if (o->body && !o->reset_conn) {
		size_t blen = strlen(o->body);
		bool one_line = false;
		json_t *rj = json_fast_loadb(o->body, blen, &one_line);
		if (!rj)
			rj = json_loadb(o->body, blen, 0, NULL);
		add_json_text(&sb, o->body, blen, rj);
		json_decref(rj);
	} else {
		strbuf_addstr(&sb, "null");
	}
	if (o->fault)
		strbuf_addf(&sb, ",\"fault\":\"%s\"", o->fault);
	strbuf_addf(&sb, ",\"duration_ms\":%lld}", (long long)(sim_now_ms() - start_ms));

	pthread_mutex_lock(&sim.log_lock);
	uint64_t seq = ++sim.log_next_seq;
	char seqbuf[24];
	snprintf(seqbuf, sizeof(seqbuf), "%019llu", (unsigned long long)seq);
	memcpy(sb.buf + 7, seqbuf, 19);
	/* drop the zero padding: shift the rest left */
	size_t lead = 0;
	while (lead < 18 && sb.buf[7 + lead] == '0')
		lead++;
	memmove(sb.buf + 7, sb.buf + 7 + lead, sb.len - 7 - lead + 1);
	sb.len -= lead;
	if (sim.log_file) {
		fwrite(sb.buf, 1, sb.len, sim.log_file);
		fputc('\n', sim.log_file);
		fflush(sim.log_file);
	}
	if (sim.log_keep) {
		while (sim.log_n && (sim.log_n == sim.log_keep || sim.log_bytes + sb.len > sim.log_max_bytes)) {
			struct logent *old = &sim.log[sim.log_head];
			sim.log_bytes -= old->len;
			free(old->line);
			old->line = NULL;
			sim.log_head = (sim.log_head + 1) % sim.log_keep;
			sim.log_n--;
		}
		struct logent *e = &sim.log[(sim.log_head + sim.log_n) % sim.log_keep];
		e->seq = seq;
		e->endpoint = ep;
		e->len = sb.len;
		e->line = strbuf_detach(&sb, NULL);
		sim.log_bytes += e->len;
		sim.log_n++;
	}
	pthread_mutex_unlock(&sim.log_lock);
	strbuf_release(&sb);
}

static void log_clear(void)
{
	pthread_mutex_lock(&sim.log_lock);
	for (size_t i = 0; i < sim.log_n; i++) {
		struct logent *e = &sim.log[(sim.log_head + i) % sim.log_keep];
		free(e->line);
		e->line = NULL;
	}
	sim.log_head = sim.log_n = sim.log_bytes = 0;
	sim.log_next_seq = 0;
	pthread_mutex_unlock(&sim.log_lock);
}

/* ---- stats ---- */

void sim_stats_reset(void)
{
	json_decref(sim.stats.by_endpoint);
	memset(&sim.stats, 0, sizeof(sim.stats));
	sim.stats.by_endpoint = json_object();
}

static void count_status(const char *ep, int status)
{
	json_t *e = json_object_get(sim.stats.by_endpoint, ep);
	char code[8];
	if (!e) {
		e = json_pack("{s:i,s:{}}", "total", 0, "status");
		json_object_set_new(sim.stats.by_endpoint, ep, e);
	}
	json_object_set_new(e, "total", json_integer(json_integer_value(json_object_get(e, "total")) + 1));
	json_t *st = json_object_get(e, "status");
	snprintf(code, sizeof(code), "%d", status);
	json_object_set_new(st, code, json_integer(json_integer_value(json_object_get(st, code)) + 1));
	sim.stats.requests++;
}

static json_t *stats_json(void)
{
	struct sim_stats *s = &sim.stats;
	json_t *peaks = json_object();
	for (int i = 0; i < B__COUNT; i++)
		json_object_set_new(peaks, bucket_names[i], json_integer(sim.rates[i].peak));
	json_t *j = json_pack("{s:I,s:O,s:{s:I,s:{s:I,s:I,s:I},s:I,s:I,s:I},s:I,s:I,s:I,s:I,s:I,s:I}",
			 "requests_total", (json_int_t)s->requests, "endpoints", s->by_endpoint, "track", "requests",
			 (json_int_t)s->track_requests, "objects", "count", (json_int_t)s->track_requests, "sum",
			 (json_int_t)s->track_objects_sum, "max", (json_int_t)s->track_objects_max,
			 "attributes_processed", (json_int_t)s->attributes, "events", (json_int_t)s->events,
			 "purchases", (json_int_t)s->purchases, "data_points", (json_int_t)s->data_points,
			 "rate_limited", (json_int_t)s->rate_limited, "faults_injected", (json_int_t)s->faults_injected,
			 "strings_truncated", (json_int_t)s->strings_truncated, "nested_dropped",
			 (json_int_t)s->nested_dropped, "users", (json_int_t)store_count(&sim.store));
	json_object_set_new(j, "rate_window_peak", peaks);
	return j;
}

/* ---- faults ---- */

static bool fault_matches(const struct fault *f, const struct route *r)
{
	return !strcmp(f->endpoint, "*") || !strcmp(f->endpoint, r->name) ||
	       !strcmp(f->endpoint, bucket_names[r->bucket]) || !strcmp(f->endpoint, r->path);
}

/* Take one use of the first matching rule (copied to *out); false if none. */
static bool fault_take(const struct route *r, struct fault *out)
{
	for (size_t i = 0; i < sim.n_faults; i++) {
		struct fault *f = &sim.faults[i];
		if (f->count <= 0 || !fault_matches(f, r))
			continue;
		*out = *f;
		if (--f->count == 0) {
			memmove(f, f + 1, (sim.n_faults - i - 1) * sizeof(*f));
			sim.n_faults--;
		}
		sim.stats.faults_injected++;
		return true;
	}
	return false;
}

static void faults_clear(void)
{
	free(sim.faults);
	sim.faults = NULL;
	sim.n_faults = 0;
	for (size_t i = 0; i < sim.n_row_errors; i++) {
		free(sim.row_errors[i].external_id);
		free(sim.row_errors[i].type);
	}
	free(sim.row_errors);
	sim.row_errors = NULL;
	sim.n_row_errors = 0;
}

static const char *fault_add(json_t *r)
{
	const char *action = json_string_value(json_object_get(r, "action"));
	json_t *status = json_object_get(r, "status");
	struct fault f;

	if (!json_is_object(r))
		return "each fault rule must be an object";
	if (action && !strcmp(action, "clear")) {
		faults_clear();
		return NULL;
	}
	if (action && !strcmp(action, "row_error")) {
		json_t *id = json_object_get(r, "external_id"), *type = json_object_get(r, "type");
		if (!json_is_string(id))
			return "row_error needs a string external_id";
		sim.row_errors = xrealloc(sim.row_errors, (sim.n_row_errors + 1) * sizeof(*sim.row_errors));
		sim.row_errors[sim.n_row_errors].external_id = xstrdup(json_string_value(id));
		sim.row_errors[sim.n_row_errors].type = xstrdup(json_is_string(type) ? json_string_value(type)
										: "EMAIL_BAD_FORMAT");
		sim.n_row_errors++;
		return NULL;
	}
	if (action && !strcmp(action, "clear_row_error")) {
		json_t *id = json_object_get(r, "external_id");
		for (size_t i = 0; i < sim.n_row_errors; i++) {
			if (json_is_string(id) && strcmp(sim.row_errors[i].external_id, json_string_value(id)))
				continue;
			free(sim.row_errors[i].external_id);
			free(sim.row_errors[i].type);
			sim.row_errors[i--] = sim.row_errors[--sim.n_row_errors];
		}
		return NULL;
	}
	memset(&f, 0, sizeof(f));
	snprintf(f.endpoint, sizeof(f.endpoint), "%s",
		 json_is_string(json_object_get(r, "endpoint")) ? json_string_value(json_object_get(r, "endpoint")) : "*");
	f.count = json_is_integer(json_object_get(r, "count")) ? (long)json_integer_value(json_object_get(r, "count")) : 1;
	f.delay_ms = (long)json_integer_value(json_object_get(r, "delay_ms"));
	f.retry_after = json_is_integer(json_object_get(r, "retry_after"))
				? (long)json_integer_value(json_object_get(r, "retry_after")) : 1;
	f.status = (int)json_integer_value(status);
	f.bare = json_is_false(json_object_get(r, "headers"));
	if (f.bare && f.status != 429)
		return "\"headers\": false is for a 429";
	if (!action) {
		static const int ok[] = { 500, 502, 503, 504, 429, 202, 400 };
		bool good = false;
		for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
			good |= f.status == ok[i];
		if (!good)
			return "status must be one of 500, 502, 503, 504, 429, 202, 400 (or give an action)";
		snprintf(f.action, sizeof(f.action), "status");
		f.apply = json_object_get(r, "apply") ? json_is_true(json_object_get(r, "apply")) : f.status == 202;
	} else if (!strcmp(action, "reset_connection") || !strcmp(action, "apply_then_timeout") ||
		   !strcmp(action, "slow") || !strcmp(action, "invalid_json") || !strcmp(action, "never_ending")) {
		snprintf(f.action, sizeof(f.action), "%s", action);
		f.apply = json_is_true(json_object_get(r, "apply"));
		if (!f.status)
			f.status = 201;
		if (!strcmp(action, "apply_then_timeout") && !f.delay_ms)
			f.delay_ms = 30000;
	} else {
		return "unknown fault action";
	}
	if (f.count <= 0)
		return "count must be positive";
	sim.faults = xrealloc(sim.faults, (sim.n_faults + 1) * sizeof(*sim.faults));
	sim.faults[sim.n_faults++] = f;
	return NULL;
}

static json_t *faults_json(void)
{
	json_t *arr = json_array(), *rows = json_array();
	for (size_t i = 0; i < sim.n_faults; i++) {
		struct fault *f = &sim.faults[i];
		json_array_append_new(arr, json_pack("{s:s,s:s,s:i,s:I,s:I,s:I,s:b,s:b}", "endpoint", f->endpoint,
						     "action", f->action, "status", f->status, "count",
						     (json_int_t)f->count, "delay_ms", (json_int_t)f->delay_ms,
						     "retry_after", (json_int_t)f->retry_after, "apply", f->apply,
						     "headers", !f->bare));
	}
	for (size_t i = 0; i < sim.n_row_errors; i++)
		json_array_append_new(rows, json_pack("{s:s,s:s}", "external_id", sim.row_errors[i].external_id, "type",
						      sim.row_errors[i].type));
	return json_pack("{s:o,s:o}", "faults", arr, "row_errors", rows);
}

/* ---- config ---- */

static json_t *config_json(void)
{
	json_t *rates = json_object();
	for (int i = 0; i < B__COUNT; i++) {
		char buf[64];
		snprintf(buf, sizeof(buf), "%ld/%ld", sim.rates[i].limit, sim.rates[i].window_s);
		json_object_set_new(rates, bucket_names[i], json_string(buf));
	}
	return json_pack("{s:o,s:I,s:s,s:s,s:s,s:b,s:I,s:s,s:b,s:I,s:b}", "rates", rates, "latency_ms",
			 (json_int_t)sim.latency_ms, "track_cap", cap_name(sim.track_cap), "rate_header_style",
			 sim.mau_headers ? "mau" : "standard", "rate_reset", sim.reset_delta ? "delta" : "epoch",
			 "lowercase_headers", sim.lowercase_headers, "array_cap", (json_int_t)sim.array_cap,
			 "string_too_long", sim.string_error ? "error" : "truncate", "require_fields_to_export",
			 sim.require_fields, "stall_ms", (json_int_t)sim.stall_ms, "echo_key", sim.echo_key);
}

static const char *config_apply(json_t *c)
{
	const char *k;
	json_t *v;
	if (!json_is_object(c))
		return "config must be an object";
	json_object_foreach(c, k, v) {
		if (!strcmp(k, "rates") || !strcmp(k, "rate")) {
			const char *b;
			json_t *spec;
			json_object_foreach(v, b, spec) {
				char buf[128];
				enum sim_bucket bk;
				long lim, win;
				snprintf(buf, sizeof(buf), "%s=%s", b, json_is_string(spec) ? json_string_value(spec) : "");
				if (!sim_parse_rate(buf, &bk, &lim, &win))
					return "rates: expected {\"bucket\": \"N/WINDOW_S\"}";
				sim.rates[bk] = (struct rate){ lim, win, 0, 0, 0 };
			}
		} else if (!strcmp(k, "latency_ms") && json_is_integer(v)) {
			sim.latency_ms = (long)json_integer_value(v);
		} else if (!strcmp(k, "track_cap") && json_is_string(v)) {
			if (!sim_parse_cap(json_string_value(v), &sim.track_cap))
				return "track_cap: expected per_array_75, total_75 or total_50";
		} else if (!strcmp(k, "rate_header_style") && json_is_string(v)) {
			sim.mau_headers = !strcmp(json_string_value(v), "mau");
			sim.reset_delta = sim.mau_headers;
		} else if (!strcmp(k, "rate_reset") && json_is_string(v)) {
			sim.reset_delta = !strcmp(json_string_value(v), "delta");
		} else if (!strcmp(k, "lowercase_headers")) {
			sim.lowercase_headers = json_is_true(v);
		} else if (!strcmp(k, "array_cap") && json_is_integer(v)) {
			sim.array_cap = (long)json_integer_value(v);
		} else if (!strcmp(k, "string_too_long") && json_is_string(v)) {
			sim.string_error = !strcmp(json_string_value(v), "error");
		} else if (!strcmp(k, "require_fields_to_export")) {
			sim.require_fields = json_is_true(v);
		} else if (!strcmp(k, "stall_ms") && json_is_integer(v)) {
			sim.stall_ms = (long)json_integer_value(v);
		} else if (!strcmp(k, "echo_key")) {
			sim.echo_key = json_is_true(v);
		} else {
			return "unknown or mistyped config key";
		}
	}
	return NULL;
}

/* ---- responses ---- */

static void add_hdr(struct MHD_Response *r, const char *name, const char *value)
{
	char lower[64];
	if (sim.lowercase_headers) {
		size_t i;
		for (i = 0; name[i] && i < sizeof(lower) - 1; i++)
			lower[i] = (char)tolower((unsigned char)name[i]);
		lower[i] = 0;
		name = lower;
	}
	MHD_add_response_header(r, name, value);
}

struct stall {
	bool sent;
	int64_t deadline;
};

static ssize_t stall_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
	static const char partial[] = "{\"message\":\"success\",\"attributes_proc";
	struct stall *s = cls;
	(void)pos;
	if (!s->sent) {
		size_t n = sizeof(partial) - 1 < max ? sizeof(partial) - 1 : max;
		memcpy(buf, partial, n);
		s->sent = true;
		return (ssize_t)n;
	}
	if (sim_stopping || sim_now_ms() > s->deadline)
		return MHD_CONTENT_READER_END_WITH_ERROR;
	sim_sleep_ms(100);
	return 0;
}

static enum MHD_Result send_out(struct MHD_Connection *con, struct out *o)
{
	struct MHD_Response *r;
	char buf[32];

	if (o->reset_conn) {
		const union MHD_ConnectionInfo *ci = MHD_get_connection_info(con, MHD_CONNECTION_INFO_CONNECTION_FD);
		if (ci) {
			/* Abort the TCP connection (RST): zero linger, then drop our only
			 * reference by putting a fresh unconnected socket in its place, so
			 * libmicrohttpd later closes that one instead. */
			struct linger lg = { 1, 0 };
			int spare = socket(AF_INET, SOCK_STREAM, 0);
			setsockopt(ci->connect_fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
			if (spare >= 0) {
				dup2(spare, ci->connect_fd);
				close(spare);
			}
		}
		return MHD_NO;
	}
	if (o->never_ending) {
		struct stall *s = xcalloc(1, sizeof(*s));
		s->deadline = sim_now_ms() + sim.stall_ms;
		r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 256, stall_reader, s, free);
	} else {
		size_t len = o->body ? strlen(o->body) : 0;
		r = MHD_create_response_from_buffer(len, o->body ? o->body : (char *)"", o->body ? MHD_RESPMEM_MUST_FREE
												 : MHD_RESPMEM_PERSISTENT);
		o->body = NULL;
	}
	add_hdr(r, "Content-Type", o->ctype ? o->ctype : "application/json");
	if (o->has_rate && o->retry_after > 0 && sim.mau_headers) {
		snprintf(buf, sizeof(buf), "%ld", o->retry_after);
		add_hdr(r, "X-Ratelimit-Retry-After", buf);
	} else if (o->has_rate) {
		int64_t now_s = sim_now_ms() / 1000;
		snprintf(buf, sizeof(buf), "%ld", o->rl_limit);
		add_hdr(r, "X-RateLimit-Limit", buf);
		snprintf(buf, sizeof(buf), "%ld", o->retry_after > 0 ? 0 : o->rl_remaining);
		add_hdr(r, "X-RateLimit-Remaining", buf);
		snprintf(buf, sizeof(buf), "%lld",
			 (long long)(sim.reset_delta ? (o->rl_reset > now_s ? o->rl_reset - now_s : 0) : o->rl_reset));
		add_hdr(r, "X-RateLimit-Reset", buf);
		if (o->retry_after > 0) {
			snprintf(buf, sizeof(buf), "%ld", o->retry_after);
			add_hdr(r, "Retry-After", buf);
		}
	}
	enum MHD_Result ret = MHD_queue_response(con, (unsigned)o->status, r);
	MHD_destroy_response(r);
	return ret;
}

/* ---- Braze endpoints ---- */

static const struct apikey *auth_key(struct MHD_Connection *con, const char **why)
{
	const char *h = MHD_lookup_connection_value(con, MHD_HEADER_KIND, "Authorization");
	if (!h) {
		*why = "Invalid API key: missing Authorization header";
		return NULL;
	}
	if (strncmp(h, "Bearer ", 7) || !h[7] || h[7] == ' ' || h[7] == '"' || strchr(h + 7, ' ')) {
		*why = "Invalid API key: malformed Authorization header (expected \"Bearer KEY\")";
		return NULL;
	}
	for (size_t i = 0; i < sim.n_keys; i++)
		if (!strcmp(sim.keys[i].key, h + 7))
			return &sim.keys[i];
	*why = "Invalid API key: unknown key";
	return NULL;
}

static bool key_allows(const struct apikey *k, const char *perm)
{
	if (!k->perms)
		return true;
	for (size_t i = 0; i < k->n_perms; i++)
		if (!strcmp(k->perms[i], perm) || !strcmp(k->perms[i], "*"))
			return true;
	return false;
}

static bool json_content_type(struct MHD_Connection *con)
{
	const char *ct = MHD_lookup_connection_value(con, MHD_HEADER_KIND, "Content-Type");
	if (!ct)
		return false;
	while (*ct == ' ')
		ct++;
	size_t n = strlen("application/json");
	return !strncasecmp(ct, "application/json", n) && (!ct[n] || ct[n] == ';' || ct[n] == ' ');
}

/* Fixed windows aligned to the epoch; returns false when the request is over the limit. */
static bool rate_take(const struct route *rt, struct out *o)
{
	struct rate *r = &sim.rates[rt->bucket];
	int64_t now = sim_now_ms() / 1000;
	int64_t start = now - now % r->window_s;
	if (r->window_start != start) {
		r->window_start = start;
		r->used = 0;
	}
	o->has_rate = true;
	o->rl_limit = r->limit;
	o->rl_reset = start + r->window_s;
	if (r->used >= r->limit) {
		o->retry_after = (long)(o->rl_reset - now);
		if (o->retry_after < 1)
			o->retry_after = 1;
		return false;
	}
	r->used++;
	if (r->used > r->peak)
		r->peak = r->used;
	o->rl_remaining = r->limit - r->used;
	return true;
}

static enum MHD_Result handle_braze(struct MHD_Connection *con, const char *url, const char *method,
				    struct conn *cs, int64_t start)
{
	struct out o = { 0 };
	const struct route *rt = NULL;
	json_t *parsed = NULL, *query = NULL;
	const char *why;
	struct fault f = { 0 };
	bool have_fault = false;

	for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++)
		if (!strcmp(routes[i].path, url) && !strcmp(routes[i].method, method))
			rt = &routes[i];
	o.route = rt;
	if (!rt) {
		out_message(&o, 404, "Not Found");
		goto respond;
	}
	if (cs->too_large) {
		out_message(&o, 413, "Request Entity Too Large");
		goto respond;
	}
	const struct apikey *key = auth_key(con, &why);
	if (!key) {
		out_message(&o, 401, why);
		goto respond;
	}
	if (!key_allows(key, rt->perm)) {
		out_message(&o, 403, "Access Denied");
		goto respond;
	}
	if (!strcmp(method, "POST")) {
		json_error_t jerr;
		if (!json_content_type(con)) {
			out_message(&o, 415, "Unsupported Media Type: send Content-Type: application/json");
			goto respond;
		}
		parse_arena_begin(cs->body.len);
		/* json_loadb decides what json_fast_loadb leaves (errors included) */
		parsed = json_fast_loadb(cs->body.buf, cs->body.len, &cs->one_line);
		if (!parsed)
			parsed = json_loadb(cs->body.buf, cs->body.len, 0, &jerr);
		parse_arena_end();
		if (!parsed) {
			struct strbuf m = STRBUF_INIT;
			strbuf_addf(&m, "Error while parsing request body. Please check your syntax. (%s at line %d column %d)",
				    jerr.text, jerr.line, jerr.column);
			out_message(&o, 400, m.buf);
			strbuf_release(&m);
			goto respond;
		}
	} else {
		query = json_object();
		MHD_get_connection_values(con, MHD_GET_ARGUMENT_KIND, collect_query, query);
	}

	pthread_mutex_lock(&sim.lock);
	long latency = sim.latency_ms;
	if (!rate_take(rt, &o)) {
		sim.stats.rate_limited++;
		out_message(&o, 429, "API rate limit exceeded");
		pthread_mutex_unlock(&sim.lock);
		goto respond_latency;
	}
	have_fault = fault_take(rt, &f);
	if (!have_fault) { /* the usual case: apply under the same lock */
		struct call c = { .body = parsed, .query = query };
		rt->fn(&c);
		pthread_mutex_unlock(&sim.lock);
		o.status = c.status;
		o.body = dump_free(c.resp);
	} else {
		pthread_mutex_unlock(&sim.lock);
		o.fault = f.action;
		if (!strcmp(f.action, "slow"))
			sim_sleep_ms(f.delay_ms);
	}
	bool apply = !strcmp(f.action, "slow") || !strcmp(f.action, "apply_then_timeout") || f.apply;
	if (have_fault && apply) {
		struct call c = { .body = parsed, .query = query };
		pthread_mutex_lock(&sim.lock);
		rt->fn(&c);
		pthread_mutex_unlock(&sim.lock);
		o.status = c.status;
		o.body = dump_free(c.resp);
	}
	if (have_fault) {
		if (!strcmp(f.action, "status")) {
			if (f.status == 202)
				out_message(&o, 202, "queued");
			else if (f.status == 400)
				out_message(&o, 400, "Bad syntax"); /* a whole-request rejection naming no row */
			else if (f.status == 429) {
				o.retry_after = f.retry_after;
				if (f.bare)
					o.has_rate = false;
				out_message(&o, 429, "API rate limit exceeded");
			} else {
				static const char *const msgs[] = { "Internal Server Error", "Bad Gateway",
								    "Service Unavailable", "Gateway Timeout" };
				out_message(&o, f.status, msgs[f.status == 500 ? 0 : f.status - 501]);
			}
		} else if (!strcmp(f.action, "reset_connection")) {
			o.reset_conn = true;
		} else if (!strcmp(f.action, "apply_then_timeout")) {
			o.delay_ms = f.delay_ms;
		} else if (!strcmp(f.action, "invalid_json")) {
			free(o.body);
			o.body = xstrdup("{\"message\": \"success\", \"attributes_processed\": <html>upstream garbage");
			o.status = f.status;
		} else if (!strcmp(f.action, "never_ending")) {
			o.never_ending = true;
			o.status = f.status;
		}
	}
respond_latency:
	if (latency > 0)
		sim_sleep_ms(latency);
	if (o.delay_ms > 0)
		sim_sleep_ms(o.delay_ms);
respond:
	if (sim.echo_key && !o.never_ending)
		echo_key(con, &o);
	log_request(con, method, url, query, cs, parsed, &o, start);
	pthread_mutex_lock(&sim.lock);
	count_status(rt ? rt->name : "unknown", o.reset_conn ? 0 : o.status);
	pthread_mutex_unlock(&sim.lock);
	json_decref(parsed);
	json_decref(query);
	enum MHD_Result ret = send_out(con, &o);
	free(o.body);
	return ret;
}

/* ---- /_sim/ control API ---- */

static enum MHD_Result reply_json(struct MHD_Connection *con, int status, json_t *j)
{
	struct out o = { .status = status, .body = dump_free(j) };
	enum MHD_Result ret = send_out(con, &o);
	free(o.body);
	return ret;
}

static enum MHD_Result reply_msg(struct MHD_Connection *con, int status, const char *msg)
{
	return reply_json(con, status, json_pack("{s:s}", "message", msg));
}

static bool from_loopback(struct MHD_Connection *con)
{
	const union MHD_ConnectionInfo *ci = MHD_get_connection_info(con, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	if (!ci || !ci->client_addr)
		return false;
	if (ci->client_addr->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)ci->client_addr;
		return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
	}
	if (ci->client_addr->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)ci->client_addr;
		return IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr);
	}
	return false;
}

static enum MHD_Result requests_reply(struct MHD_Connection *con)
{
	const char *s = MHD_lookup_connection_value(con, MHD_GET_ARGUMENT_KIND, "since");
	const char *ep = MHD_lookup_connection_value(con, MHD_GET_ARGUMENT_KIND, "endpoint");
	unsigned long long since = s ? strtoull(s, NULL, 10) : 0;
	struct strbuf sb = STRBUF_INIT;
	bool first = true;

	strbuf_addstr(&sb, "{\"requests\":[");
	pthread_mutex_lock(&sim.log_lock);
	for (size_t i = 0; i < sim.log_n; i++) {
		struct logent *e = &sim.log[(sim.log_head + i) % sim.log_keep];
		if (e->seq <= since || (ep && strcmp(ep, e->endpoint)))
			continue;
		if (!first)
			strbuf_addch(&sb, ',');
		strbuf_add(&sb, e->line, e->len);
		first = false;
	}
	uint64_t oldest = sim.log_n ? sim.log[sim.log_head].seq : sim.log_next_seq + 1;
	strbuf_addf(&sb, "],\"last_seq\":%llu,\"oldest_seq\":%llu}", (unsigned long long)sim.log_next_seq,
		    (unsigned long long)oldest);
	pthread_mutex_unlock(&sim.log_lock);
	struct out o = { .status = 200, .body = strbuf_detach(&sb, NULL) };
	enum MHD_Result ret = send_out(con, &o);
	free(o.body);
	return ret;
}

static enum MHD_Result handle_control(struct MHD_Connection *con, const char *url, const char *method,
				      struct conn *cs)
{
	bool get = !strcmp(method, "GET"), post = !strcmp(method, "POST");
	json_t *body = NULL, *resp = NULL;
	const char *err = NULL;
	int status = 200;

	if (!from_loopback(con))
		return reply_msg(con, 403, "the control API is only served to loopback clients");
	if (post && cs->body.len) {
		json_error_t jerr;
		if (!(body = json_loadb(cs->body.buf, cs->body.len, JSON_DECODE_ANY, &jerr)))
			return reply_msg(con, 400, jerr.text);
	}
	if (get && !strcmp(url, "/_sim/requests"))
		return requests_reply(con);

	pthread_mutex_lock(&sim.lock);
	if (get && !strcmp(url, "/_sim/health")) {
		resp = json_pack("{s:b}", "ok", 1);
	} else if (get && !strcmp(url, "/_sim/users")) {
		resp = sim_dump_users();
	} else if (get && !strcmp(url, "/_sim/user")) {
		const char *id = MHD_lookup_connection_value(con, MHD_GET_ARGUMENT_KIND, "external_id");
		struct user *u = id ? store_find_ext(&sim.store, id) : NULL;
		if (u)
			resp = user_to_json(u, NULL, true, false);
		else
			status = 404, err = "no such user";
	} else if (post && !strcmp(url, "/_sim/users")) {
		json_t *list = json_is_array(body) ? body : json_object_get(body, "users");
		long n = sim_load_users(list, &err);
		if (n >= 0)
			resp = json_pack("{s:I,s:I}", "loaded", (json_int_t)n, "users", (json_int_t)store_count(&sim.store));
		else
			status = 400;
	} else if (get && !strcmp(url, "/_sim/stats")) {
		resp = stats_json();
	} else if (post && !strcmp(url, "/_sim/reset")) {
		bool seeded = sim.store.seeded;
		uint64_t seed = sim.store.seed;
		store_release(&sim.store);
		store_init(&sim.store, seeded, seed);
		sim_stats_reset();
		faults_clear();
		for (int i = 0; i < B__COUNT; i++)
			sim.rates[i].window_start = sim.rates[i].used = sim.rates[i].peak = 0;
		log_clear();
		resp = json_pack("{s:s}", "message", "reset");
	} else if (get && !strcmp(url, "/_sim/faults")) {
		resp = faults_json();
	} else if (post && !strcmp(url, "/_sim/faults")) {
		json_t *list = json_is_array(body) ? json_incref(body)
			      : json_is_array(json_object_get(body, "faults")) ? json_incref(json_object_get(body, "faults"))
									      : json_pack("[O]", body ? body : json_null());
		size_t i;
		json_t *r;
		json_array_foreach(list, i, r)
			if (!err)
				err = fault_add(r);
		json_decref(list);
		if (err)
			status = 400;
		else
			resp = faults_json();
	} else if (!strcmp(method, "DELETE") && !strcmp(url, "/_sim/faults")) {
		faults_clear();
		resp = faults_json();
	} else if (get && !strcmp(url, "/_sim/config")) {
		resp = config_json();
	} else if (post && !strcmp(url, "/_sim/config")) {
		if ((err = config_apply(body)))
			status = 400;
		else
			resp = config_json();
	} else if (post && !strcmp(url, "/_sim/shutdown")) {
		sim_stopping = 1;
		kill(getpid(), SIGTERM);
		resp = json_pack("{s:s}", "message", "stopping");
	} else {
		status = 404, err = "unknown control endpoint";
	}
	pthread_mutex_unlock(&sim.lock);
	json_decref(body);
	if (!resp)
		return reply_msg(con, status, err ? err : "error");
	return reply_json(con, status, resp);
}

/* ---- libmicrohttpd callbacks ---- */

static enum MHD_Result on_request(void *cls, struct MHD_Connection *con, const char *url, const char *method,
				  const char *version, const char *upload, size_t *upload_size, void **ptr)
{
	struct conn *cs = *ptr;
	(void)cls;
	(void)version;
	if (!cs) {
		cs = xcalloc(1, sizeof(*cs));
		body_take(&cs->body);
		*ptr = cs;
		return MHD_YES;
	}
	if (*upload_size) {
		cs->body_bytes += *upload_size;
		if (!cs->too_large && cs->body.len + *upload_size > SIM_MAX_BODY) {
			cs->too_large = true;
			strbuf_release(&cs->body);
		}
		if (!cs->too_large)
			strbuf_add(&cs->body, upload, *upload_size);
		*upload_size = 0;
		return MHD_YES;
	}
	int64_t start = sim_now_ms();
	if (!strncmp(url, "/_sim/", 6))
		return handle_control(con, url, method, cs);
	return handle_braze(con, url, method, cs, start);
}

static void on_completed(void *cls, struct MHD_Connection *con, void **ptr, enum MHD_RequestTerminationCode toe)
{
	struct conn *cs = *ptr;
	(void)cls;
	(void)con;
	(void)toe;
	if (cs) {
		body_give(&cs->body);
		free(cs);
		*ptr = NULL;
	}
}

struct MHD_Daemon *server_start(const char *host, unsigned port, unsigned *bound_port)
{
	struct sockaddr_in sa4;
	struct sockaddr_in6 sa6;
	struct sockaddr *sa;
	unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL;

	memset(&sa4, 0, sizeof(sa4));
	memset(&sa6, 0, sizeof(sa6));
	if (inet_pton(AF_INET, host, &sa4.sin_addr) == 1) {
		sa4.sin_family = AF_INET;
		sa4.sin_port = htons((uint16_t)port);
		sa = (struct sockaddr *)&sa4;
	} else if (inet_pton(AF_INET6, host, &sa6.sin6_addr) == 1) {
		sa6.sin6_family = AF_INET6;
		sa6.sin6_port = htons((uint16_t)port);
		sa = (struct sockaddr *)&sa6;
		flags |= MHD_USE_IPv6;
	} else {
		return NULL;
	}
	if (!sim.quiet)
		flags |= MHD_USE_ERROR_LOG;
	struct MHD_Daemon *d = MHD_start_daemon(
		flags, (uint16_t)port, NULL, NULL, on_request, NULL, MHD_OPTION_SOCK_ADDR, sa,
		MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)300,
		MHD_OPTION_CONNECTION_LIMIT, (unsigned)2000, MHD_OPTION_THREAD_STACK_SIZE, (size_t)(1 << 20),
		MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(128 * 1024), MHD_OPTION_END);
	if (!d)
		return NULL;
	const union MHD_DaemonInfo *di = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
	*bound_port = di ? di->port : port;
	return d;
}

void server_stop(struct MHD_Daemon *d)
{
	MHD_stop_daemon(d);
}
