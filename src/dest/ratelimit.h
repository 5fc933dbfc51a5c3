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
 */
#ifndef JOEY_RATELIMIT_H
#define JOEY_RATELIMIT_H

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
	uint64_t throttled; /* 429s seen */
};

/* limit requests per window_ms; target in (0, 1]. The bucket starts full. */
void ratelimit_init(struct ratelimit *rl, int64_t limit, int64_t window_ms, double target);
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

#endif
