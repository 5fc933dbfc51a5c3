/*
 * window.h: how many requests the Braze connector keeps in flight.
 *
 * Braze limits each endpoint's rate (ratelimit.h), not its concurrency, and answers
 * /users/track in roughly 100-300 ms. A fixed window of W requests caps throughput at
 * W / latency (Little's law): 32 in flight at 250 ms is 128 requests/s, an eighth of
 * the 1,000/s the track limit allows. So the window follows the need:
 *
 *   need = rate budget x (smoothed latency + its variation) x headroom + 2
 *
 * from the latency measured on every answer (RFC 6298 smoothing) and the rate budget
 * of the endpoints in use (the token buckets keep the rate itself; the window only
 * has to be large enough not to be what limits it). On top of that, TCP-style
 * congestion control:
 *
 *   - fast start: before the first answer the window is the need at a latency of
 *     WINDOW_PRIME_LATENCY_MS (window_prime; `initial` when the rate is not known), so
 *     the first round trip is not spent at a small window; the first answer
 *     gives a latency and the window jumps (or falls) to the need at once, instead of doubling
 *     per round trip as TCP's slow start does (the token bucket, not the window,
 *     keeps Braze's limit, so there is nothing to probe for);
 *   - multiplicative decrease: a 429, a 5xx, a timeout or a reset halves the window
 *     (at most once per round trip, so one bad flight counts once) and ends the start;
 *   - until the first decrease the window follows the need up at once as well (the
 *     need grows when a fresh Braze window opens its budget, ratelimit_rate);
 *   - additive increase after a decrease: every good answer adds max(1, need / 16) /
 *     window, about need / 16 per round trip, back up to the need within some 8 round
 *     trips;
 *   - the window never exceeds the need (latency fell: it shrinks at once), nor max
 *     (--concurrency, the memory bound, file descriptors), nor falls below min.
 *
 * Pure arithmetic on times the caller gives (milliseconds on any monotonic clock), so
 * tests drive it with a fake clock:
 *
 *   struct window w; window_init(&w, &opts);
 *   while (inflight < window_size(&w)) send;
 *   window_on_answer(&w, latency_ms, rate_per_ms, now_ms);   -- 2xx or a 4xx verdict
 *   window_on_congestion(&w, now_ms);                        -- 429, 5xx, timeout, reset
 *   window_set_max(&w, n);                                   -- the bound changed
 */
#ifndef JOEY_WINDOW_H
#define JOEY_WINDOW_H

#include <stdbool.h>
#include <stdint.h>

/* Hard maximum of requests in flight per destination, whatever --concurrency says. */
#define WINDOW_HARD_MAX 1024

struct window_opts {
	int initial;     /* before the first answer (default 32) */
	int min;         /* never below (default 4), unless max is lower */
	int max;         /* never above (default WINDOW_HARD_MAX) */
	double headroom; /* need = rate x latency x headroom + 2 (default 1.25) */
};

struct window {
	struct window_opts o;
	double cwnd;         /* the window, fractional for additive increase */
	bool slow_start;     /* no answer yet: the first one jumps to the need */
	double srtt_ms;      /* smoothed latency; 0 before the first answer */
	double rttvar_ms;    /* its mean deviation */
	double need;         /* at the last answer (0 before the first) */
	int64_t hold_until_ms; /* no second decrease before this (one round trip) */
	/* for reports */
	int peak;            /* largest window_size since init */
	uint64_t decreases;  /* multiplicative decreases */
};

/* o borrowed (copied); NULL or zero fields take the defaults. */
void window_init(struct window *w, const struct window_opts *o);
/* Requests that may be in flight now: between min and max. */
int window_size(const struct window *w);
/*
 * An answer that says nothing about congestion (2xx, or a 4xx verdict on the
 * request) came after latency_ms; rate_per_ms is the rate budget (requests per ms)
 * of the endpoints in use. Grows the window (the start jump or additive increase) up to
 * the need, or shrinks it to the need when that fell.
 */
void window_on_answer(struct window *w, double latency_ms, double rate_per_ms, int64_t now_ms);
/*
 * Before the first answer: the rate budget is known, the latency is not. Size the
 * window for a slow Braze (WINDOW_PRIME_LATENCY_MS) so the first round trip rides the
 * rate budget too; the token bucket still paces the requests, and the first answer
 * brings the window down to the measured need. No effect after the first answer.
 */
#define WINDOW_PRIME_LATENCY_MS 500.0
void window_prime(struct window *w, double rate_per_ms);
/* A 429, 5xx, timeout or reset: halve the window (once per round trip). */
void window_on_congestion(struct window *w, int64_t now_ms);
/* A new maximum (>= 1): the window is clamped to it at once. */
void window_set_max(struct window *w, int max);

/*
 * Memory held per request in flight, in bytes, for a request body of body_bytes:
 * the rows of the batch (their track object, the payload to store and the key: about
 * twice the body), the body itself, the batches queued behind it (half a batch per
 * window slot, see braze.c's backpressure) and libcurl's transfer and connection
 * buffers (WINDOW_TRANSFER_BYTES).
 */
#define WINDOW_TRANSFER_BYTES (64u << 10)
uint64_t window_request_bytes(uint64_t body_bytes);
/* The largest window whose requests fit in budget_bytes at body_bytes each (>= 1). */
int window_max_for_memory(uint64_t budget_bytes, uint64_t body_bytes);

#endif
