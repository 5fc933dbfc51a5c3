/*
 * braze_answer.c: what the Braze connector does with each answer: reading Braze's JSON
 * (braze_response_*, also the fuzz target's), masking the API key in every text taken
 * from it, and braze_on_done's decision per status: count it, wait on a 429, retry or give
 * up on transport errors and 5xx, stop on a wrong key or endpoint, split or fail a
 * rejected batch, and deliver one outcome per row to the engine's sink. Takes over the
 * answered batch (requeued, split or freed). Called by the HTTP client through braze.c's
 * pump (braze_internal.h).
 */
#include "dest/braze_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/log.h"
#include "base/xalloc.h"

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

/*
 * text with every occurrence of key (in any case) replaced by "****", appended to out.
 * A key shorter than 4 characters is not looked for (it would mask ordinary words).
 */
void braze_mask_key(struct strbuf *out, const char *text, const char *key)
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
		braze_mask_key(&sb, s, key);
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
void braze_sink_result(struct braze *b, enum jerr rc, struct jerror *err)
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
void braze_deliver(struct braze *b, struct batch *bt, const enum dest_result *results, const char *const *errors)
{
	struct dest_outcome *o = xcalloc(bt->n ? bt->n : 1, sizeof(*o));
	for (size_t i = 0; i < bt->n; i++) {
		struct row *r = bt->rows[i];
		o[i] = (struct dest_outcome){
			.result = results[i], .op = r->op, .key = r->key,
			.new_payload = { r->payload, r->payload_len }, .new_hash = r->hash,
			.fail_payload = { r->fail_payload ? r->fail_payload : "", r->fail_len },
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
		braze_sink_result(b, b->sink.outcomes(b->sink.ctx, o, bt->n, &err), &err);
	}
	free(o);
	braze_batch_recycle(b, bt);
}

static void fail_all(struct braze *b, struct batch *bt, const char *error)
{
	enum dest_result *res = xcalloc(bt->n ? bt->n : 1, sizeof(*res));
	const char **errs = xcalloc(bt->n ? bt->n : 1, sizeof(*errs));
	for (size_t i = 0; i < bt->n; i++) {
		res[i] = DEST_FAILED;
		errs[i] = error;
	}
	braze_deliver(b, bt, res, errs);
	free(res);
	free(errs);
}

/* Split a batch in two and queue both halves first. */
static void bisect(struct braze *b, struct batch *bt)
{
	struct batch *lo = braze_batch_new(bt->ep), *hi = braze_batch_new(bt->ep);
	size_t half = bt->n / 2;
	for (size_t i = 0; i < bt->n; i++)
		braze_batch_add(i < half ? lo : hi, bt->rows[i]);
	braze_batch_free(bt, false);
	braze_ready_push(b, hi, true);
	braze_ready_push(b, lo, true);
}

static void handle_success(struct braze *b, struct batch *bt, json_t *body)
{
	if (bt->ep == EP_EXPORT_IDS) {
		braze_enrich_answered(b, bt, body);
		return;
	}
	enum dest_result *res = xcalloc(bt->n ? bt->n : 1, sizeof(*res));
	const char **errs = xcalloc(bt->n ? bt->n : 1, sizeof(*errs));

	if (bt->ep == EP_TRACK) {
		braze_response_row_errors(body, bt->n, errs);
		for (size_t i = 0; i < bt->n; i++)
			res[i] = errs[i] ? DEST_FAILED : DEST_OK;
		b->stats.objects += bt->n;
		braze_deliver(b, bt, res, errs);
	} else {
		for (size_t i = 0; i < bt->n; i++)
			res[i] = DEST_OK;
		b->stats.objects += bt->n;
		braze_deliver(b, bt, res, NULL);
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
	braze_batch_free(bt, true);
}

/* ---- one answer, by status (braze_on_done) ---- */

/* Count the answer (requests, latency) and let the rate budget and the window learn from it. */
static void answer_account(struct braze *b, struct batch *bt, const struct http_response *res, int64_t now)
{
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
	ratelimit_observe(&b->rl[bt->ep], res->rl_limit, res->rl_remaining, res->rl_reset, now, braze_epoch_ms());
	/* the window: a 429, 5xx, timeout or reset halves it; any other answer sizes it */
	b->ep_used[bt->ep] = now;
	if (res->status == 429 || res->status == 0 || res->status >= 500)
		window_on_congestion(&b->win, now);
	else
		window_on_answer(&b->win, res->total_time_s * 1000.0, braze_rate_in_use(b, now), now);
	if (window_size(&b->win) > b->conn_limit)
		braze_window_bound(b);
}

/*
 * 429: the same batch again after the wait Braze asks for (Retry-After, the rate limit's
 * reset, else a growing backoff); no attempt used. Past max_throttle_ms in total the
 * batch fails.
 */
static void answer_throttled(struct braze *b, struct batch *bt, const struct http_response *res, int64_t now)
{
	char detail[512];
	int64_t wait;
	b->stats.throttled++;
	bt->throttles++;
	if (res->retry_after_s >= 0)
		wait = res->retry_after_s * 1000;
	else if (res->rl_reset > 0)
		wait = res->rl_reset > 1000000000 ? res->rl_reset * 1000 - braze_epoch_ms() : res->rl_reset * 1000;
	else
		wait = braze_backoff_ms(b, bt->throttles); /* no header: grow the wait, 60 s at most */
	if (wait < 50)
		wait = 50;
	if (wait > 3600 * 1000)
		wait = 3600 * 1000;
	bt->throttled_ms += wait;
	if (bt->throttled_ms > b->opts.max_throttle_ms) {
		snprintf(detail, sizeof(detail), "POST %s: rate limited (HTTP 429) for %lld s in total; gave up",
			 braze_endpoints[bt->ep].path, (long long)(bt->throttled_ms / 1000));
		b->stats.failed_requests++;
		fail_all(b, bt, detail);
		return;
	}
	ratelimit_pause(&b->rl[bt->ep], now + wait);
	bt->not_before = now + wait;
	braze_ready_push(b, bt, true); /* a 429 is not a failure: same batch, no attempt used */
}

/*
 * Transport error, timeout, reset, 5xx, or a 2xx we cannot read: a failed attempt.
 * Retried after a backoff; after max_attempts the batch fails, or the circuit breaker
 * trips (unreachable). transport: res->error with the key masked.
 */
static void answer_failed_attempt(struct braze *b, struct batch *bt, const struct http_response *res,
				  const char *msg, const char *transport, int64_t now)
{
	char detail[512];
	if (!bt->attempts++)
		bt->first_failure = now;
	if (res->status == 0)
		snprintf(detail, sizeof(detail), "%s %s: %s", "POST", braze_endpoints[bt->ep].path,
			 res->error ? transport : "no response");
	else if (res->status >= 500)
		snprintf(detail, sizeof(detail), "POST %s: HTTP %ld%s%s", braze_endpoints[bt->ep].path, res->status,
			 msg ? ": " : "", msg ? msg : "");
	else
		snprintf(detail, sizeof(detail), "POST %s: HTTP %ld with an unreadable body", braze_endpoints[bt->ep].path,
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
		bt->not_before = now + braze_backoff_ms(b, bt->attempts);
		braze_ready_push(b, bt, true);
	}
}

/* "POST <url>: HTTP <status>[: <msg>]" into detail, for the errors that stop the destination. */
static void stop_detail(char *detail, size_t n, const struct braze *b, const struct batch *bt,
			const struct http_response *res, const char *msg)
{
	snprintf(detail, n, "POST %s%s: HTTP %ld%s%s", b->base_url, braze_endpoints[bt->ep].path, res->status,
		 msg ? ": " : "", msg ? msg : "");
}

/* 401, 403: the key is wrong or lacks the endpoint's permission; the destination stops. */
static void answer_refused(struct braze *b, struct batch *bt, const struct http_response *res, const char *msg)
{
	char detail[512], hint[256];
	stop_detail(detail, sizeof(detail), b, bt, res, msg);
	if (res->status == 401)
		snprintf(hint, sizeof(hint),
			 "check the apiKey of app \"%s\" and that restEndpoint is your workspace's instance",
			 b->app->id);
	else
		snprintf(hint, sizeof(hint), "the key needs the %s permission (Braze dashboard, API keys)",
			 braze_endpoints[bt->ep].permission);
	set_fatal(b, JERR_AUTH,
		  res->status == 401 ? "Braze rejected the API key" : "Braze refused the request (access denied)",
		  detail, hint);
	braze_batch_free(bt, true);
}

/* 404, 415, 3xx: restEndpoint does not serve the Braze API; the destination stops. */
static void answer_wrong_endpoint(struct braze *b, struct batch *bt, const struct http_response *res,
				  const char *msg)
{
	char detail[512];
	stop_detail(detail, sizeof(detail), b, bt, res, msg);
	set_fatal(b, JERR_REMOTE, "Braze does not know this endpoint", detail,
		  "check restEndpoint: it should look like https://rest.iad-01.braze.com (joey does not follow redirects)");
	braze_batch_free(bt, true);
}

/* 1xx, 408 or anything else unexpected: not a confirmation; retry like a 5xx. */
static void answer_unexpected(struct braze *b, struct batch *bt, const struct http_response *res, int64_t now)
{
	char detail[512];
	bt->attempts++;
	snprintf(detail, sizeof(detail), "POST %s: unexpected HTTP %ld", braze_endpoints[bt->ep].path, res->status);
	if (bt->attempts >= b->opts.max_attempts) {
		b->stats.failed_requests++;
		fail_all(b, bt, detail);
	} else {
		b->stats.retries++;
		bt->not_before = now + braze_backoff_ms(b, bt->attempts);
		braze_ready_push(b, bt, true);
	}
}

/*
 * A /users/track 400 whose body names bad rows: those fail with Braze's reason, the
 * others go again first. false (bt untouched) when the body names none.
 */
static bool split_named_rows(struct braze *b, struct batch *bt, json_t *body)
{
	const char **errs = xcalloc(bt->n, sizeof(*errs));
	size_t found = braze_response_row_errors(body, bt->n, errs);
	if (!found) {
		free(errs);
		return false;
	}
	struct batch *retry = braze_batch_new(bt->ep), *bad = braze_batch_new(bt->ep);
	const char **bad_errs = xcalloc(bt->n, sizeof(*bad_errs));
	enum dest_result *res_bad = xcalloc(bt->n, sizeof(*res_bad));
	for (size_t i = 0; i < bt->n; i++) {
		if (errs[i]) {
			bad_errs[bad->n] = errs[i];
			res_bad[bad->n] = DEST_FAILED;
			braze_batch_add(bad, bt->rows[i]);
		} else {
			braze_batch_add(retry, bt->rows[i]);
		}
	}
	braze_batch_free(bt, false);
	if (retry->n)
		braze_ready_push(b, retry, true);
	else
		braze_batch_free(retry, false);
	braze_deliver(b, bad, res_bad, bad_errs);
	free(bad_errs);
	free(res_bad);
	free(errs);
	return true;
}

/* 4xx: a whole-request rejection: name the bad rows if Braze did, else bisect. */
static void answer_rejected(struct braze *b, struct batch *bt, const struct http_response *res, json_t *body,
			    const char *msg)
{
	char detail[512];
	b->stats.failed_requests++;
	if (bt->ep == EP_TRACK && body && res->status == 400 && split_named_rows(b, bt, body))
		return;
	if (bt->n > 1) {
		log_info("braze: POST %s: HTTP %ld for %zu rows; splitting the batch", braze_endpoints[bt->ep].path,
			 res->status, bt->n);
		bisect(b, bt);
	} else {
		snprintf(detail, sizeof(detail), "HTTP %ld%s%s", res->status, msg ? ": " : "", msg ? msg : "");
		fail_all(b, bt, detail);
	}
}

void braze_on_done(void *ctx, struct http_request *req, const struct http_response *res)
{
	struct braze *b = ctx;
	struct batch *bt = req->user;
	int64_t now = braze_mono_ms();
	json_t *body = NULL;

	answer_account(b, bt, res, now);
	/* every text taken from the answer goes to messages, logs and the ledger: a server
	 * that echoes the key must not put it there */
	body = braze_response_parse(res->body);
	braze_response_mask(body, b->api_key);
	const char *msg = braze_response_message(body);
	struct strbuf transport = STRBUF_INIT;
	if (res->error)
		braze_mask_key(&transport, res->error, b->api_key);

	if (res->status == 429)
		answer_throttled(b, bt, res, now);
	else if (res->status == 0 || res->status >= 500 ||
		 (res->status >= 200 && res->status < 300 && !braze_response_readable(bt->ep, body)))
		answer_failed_attempt(b, bt, res, msg, transport.buf, now);
	else if (res->status == 401 || res->status == 403)
		answer_refused(b, bt, res, msg);
	else if (res->status == 404 || res->status == 415 || (res->status >= 300 && res->status < 400))
		answer_wrong_endpoint(b, bt, res, msg);
	else if (res->status >= 400 && res->status < 500 && res->status != 408)
		answer_rejected(b, bt, res, body, msg); /* before the catch-all: a 400 is a verdict */
	else if (res->status < 200 || res->status >= 300)
		answer_unexpected(b, bt, res, now); /* 1xx, 408: not a verdict on the rows; retry */
	else
		handle_success(b, bt, body);
	strbuf_release(&transport);
	json_decref(body);
}
