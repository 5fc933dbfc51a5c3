/*
 * ratelimit.h: the rate governor: one token bucket per Braze endpoint bucket.
 *
 * Seeded from Braze's documented limits (e.g. /users/track 3,000 requests per 3 s),
 * aiming at `target` (default 0.95) of the limit so joey rides just under it, with a
 * burst no larger than the remaining headroom so no fixed window is overrun; then
 * corrected by X-RateLimit-Limit/Remaining/Reset from each response, and paused until
 * the reset time by a 429 (which is not a failure).
 *
 *   struct ratelimit rl; ratelimit_init(&rl, 3000, 3000, 0.95);
 *   wait = ratelimit_acquire(&rl, now_ms);  -- 0: send now (a token was taken),
 *                                              else: try again in `wait` ms
 *   ratelimit_observe(&rl, limit, remaining, reset_epoch_s, now_ms);
 *   ratelimit_pause(&rl, until_ms);
 * All times are milliseconds on one monotonic-or-wall clock chosen by the caller.
 *
 * Window budget (ratelimit_window_budget): Braze counts fixed windows (3,000 requests
 * in each 3 s), so a window that is not spent yet can take its whole budget at once;
 * a steady bucket leaves that unused at the start of a run (a run of 1,334 requests fits
 * in one window). With the window budget on, the bucket only sends its capacity until
 * the first answer (a probe: a window another run filled still has room for it); then
 * each answer's X-RateLimit-Remaining and -Reset say which window it was counted in and
 * how full that window is, and the bucket gives way to a ledger of the windows:
 *
 *   sent in window w <= target x limit, counting
 *     - ours answered in w (the server said w),
 *     - ours in flight (they may land in any window from now on),
 *     - others' that the server counted in w (its count less ours that could be in it);
 *   a send within RATELIMIT_EDGE_MS of a window's edge must fit in both windows (it may
 *   reach Braze on either side: the network, the clock, Reset's whole seconds).
 *
 * The ledger rolls to the next window when the clock passes the end, or at once when an
 * answer says a later window. A 429 while it governs turns it off for good: the bucket,
 * empty after the pause, takes over; so does a Reset further off than one of our
 * windows (the workspace has a longer window than the one configured, e.g. per minute). Not with a shared budget (workers): their buckets
 * keep the workspace's budget together.
 *
 * Workers (docs/scaling.md): Braze's limit is per workspace, so processes on several
 * machines must share it. A process that installs a shared budget
 * (ratelimit_shared_install, e.g. a bucket row in the PostgreSQL state store) and
 * calls ratelimit_share on a bucket draws that bucket's tokens from it, a few at a
 * time, instead of from its own clock; the shared bucket has the same capacity and
 * rate, so all the processes together stay under the limit. Without one installed
 * nothing changes.
 */
#ifndef JOEY_RATELIMIT_H
#define JOEY_RATELIMIT_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

struct ratelimit {
	double capacity;     /* tokens the bucket holds (burst) */
	double tokens;       /* current tokens */
	double rate_per_ms;  /* refill rate */
	double target;       /* fraction of the server limit to use */
	int64_t last_ms;     /* last refill */
	int64_t paused_until_ms;
	/* what the server told us last (0 if nothing) */
	int64_t server_limit, server_remaining, server_reset_ms;
	/* shared budget (ratelimit_share): its key, the chunk last drawn and when */
	char shared_key[64];
	int64_t drawn_ms, next_draw_ms;
	int64_t shared_down_until_ms; /* the shared budget failed: local bucket until then */
	int chunk;
	/* the window budget (ratelimit_window_budget); times on the caller's clock */
	bool win_on;          /* asked for, and not turned off by a 429 */
	bool win_known;       /* an answer said where the window ends: the ledger governs */
	bool probing;         /* no answer yet: the bucket's capacity, no refill */
	int64_t limit, window_ms;
	int64_t win_end_ms;   /* end of the current window */
	int64_t inflight;     /* ours sent, not answered */
	int64_t probe_until_ms; /* probing ends by then even without an answer */
	int64_t cur_ours, cur_others, prev_ours, prev_others;
	pthread_mutex_t *lock; /* ratelimit_set_lock; NULL: one thread only */
};

/*
 * A budget shared with other processes. take: refill key's bucket (capacity tokens at
 * most, rate_per_ms) and take up to want tokens; *got how many, and when 0, *wait_ms
 * until one is there. Returns 0, or -1 when the budget cannot be reached (the bucket
 * then falls back to its own clock until the next draw). Called from any thread.
 */
struct ratelimit_shared {
	int (*take)(void *ctx, const char *key, double capacity, double rate_per_ms, int want, int *got,
		    int64_t *wait_ms);
	void *ctx;
};
/* How long drawn tokens may be held before they are dropped (they count as spent). */
#define RATELIMIT_SHARED_HOLD_MS 50

/* limit requests per window_ms; target in (0, 1]. The bucket starts full, with no lock. */
void ratelimit_init(struct ratelimit *rl, int64_t limit, int64_t window_ms, double target);
/*
 * Bucket shared by threads (the runs of `joey serve` to one workspace): every call
 * below takes m (borrowed; it must outlive the bucket's use). Call after init.
 */
void ratelimit_set_lock(struct ratelimit *rl, pthread_mutex_t *m);
/* Take a token at now_ms: 0 if granted, else milliseconds to wait before asking again. */
int64_t ratelimit_acquire(struct ratelimit *rl, int64_t now_ms);
/* Return a token taken for a request that was never sent. */
void ratelimit_refund(struct ratelimit *rl);
/*
 * Correct the bucket from response headers (any value < 0 means absent). reset is
 * interpreted as epoch seconds when > 1e9, else as seconds from now.
 */
void ratelimit_observe(struct ratelimit *rl, int64_t limit, int64_t remaining, int64_t reset,
		       int64_t now_ms, int64_t now_epoch_ms);
/* A 429: nothing is sent on this bucket before until_ms. */
void ratelimit_pause(struct ratelimit *rl, int64_t until_ms);

/*
 * Govern by Braze's fixed windows once answers say where they are (above); call after
 * ratelimit_init and not with a shared budget (ratelimit_share wins). Every token taken
 * must then be answered by one ratelimit_observe (absent headers: -1s) or refunded.
 */
#define RATELIMIT_EDGE_MS 150
void ratelimit_window_budget(struct ratelimit *rl);
/*
 * The rate to size the requests in flight for, per ms: the steady rate, or with the
 * window budget governing, enough to spend what is left of the window in half the time
 * to its end (a fresh window is spent at the start).
 */
double ratelimit_rate(const struct ratelimit *rl, int64_t now_ms);

/* Install (sh copied) or remove (NULL) the process's shared budget, before any bucket uses it. */
void ratelimit_shared_install(const struct ratelimit_shared *sh);
/* A shared budget is installed. */
bool ratelimit_shared_active(void);
/*
 * Draw rl's tokens from the shared budget under key (copied; at most 63 bytes), if one
 * is installed; call after ratelimit_init. The shared bucket holds less than the local
 * one by what the processes may hold undrawn (RATELIMIT_SHARED_HOLD_MS of refill), so
 * held tokens never push a window over the limit.
 */
void ratelimit_share(struct ratelimit *rl, const char *key);

#endif
