/* ratelimit.c: token bucket per endpoint, corrected by Braze's rate-limit headers. */
#include "dest/ratelimit.h"

void ratelimit_init(struct ratelimit *rl, int64_t limit, int64_t window_ms, double target)
{
	if (limit < 1)
		limit = 1;
	if (window_ms < 1)
		window_ms = 1;
	if (target <= 0 || target > 1)
		target = 0.95;
	rl->target = target;
	/*
	 * Braze counts in fixed windows. A bucket sends at most capacity + rate * window in
	 * any window, so the burst is limited to the headroom the target leaves:
	 * capacity + target * limit <= limit. Steady state then rides at target * limit.
	 */
	rl->capacity = (double)limit * (1.0 - target);
	if (rl->capacity < 1)
		rl->capacity = 1;
	rl->tokens = rl->capacity;
	rl->rate_per_ms = (double)limit * target / (double)window_ms;
	rl->last_ms = -1;
	rl->paused_until_ms = 0;
	rl->server_limit = rl->server_remaining = rl->server_reset_ms = 0;
	rl->throttled = 0;
}

static void refill(struct ratelimit *rl, int64_t now_ms)
{
	if (rl->last_ms < 0) {
		rl->last_ms = now_ms;
		return;
	}
	if (now_ms > rl->last_ms) {
		rl->tokens += (double)(now_ms - rl->last_ms) * rl->rate_per_ms;
		if (rl->tokens > rl->capacity)
			rl->tokens = rl->capacity;
		rl->last_ms = now_ms;
	}
}

int64_t ratelimit_acquire(struct ratelimit *rl, int64_t now_ms)
{
	if (now_ms < rl->paused_until_ms)
		return rl->paused_until_ms - now_ms;
	refill(rl, now_ms);
	if (rl->tokens >= 1.0) {
		rl->tokens -= 1.0;
		return 0;
	}
	double need = (1.0 - rl->tokens) / rl->rate_per_ms;
	int64_t wait = (int64_t)need + 1;
	return wait > 0 ? wait : 1;
}

void ratelimit_refund(struct ratelimit *rl)
{
	rl->tokens += 1.0;
	if (rl->tokens > rl->capacity)
		rl->tokens = rl->capacity;
}

void ratelimit_observe(struct ratelimit *rl, int64_t limit, int64_t remaining, int64_t reset,
		       int64_t now_ms, int64_t now_epoch_ms)
{
	int64_t reset_in_ms = -1;

	if (reset >= 0)
		reset_in_ms = reset > 1000000000 ? reset * 1000 - now_epoch_ms : reset * 1000;
	if (limit > 0)
		rl->server_limit = limit;
	if (remaining >= 0)
		rl->server_remaining = remaining;
	if (reset_in_ms >= 0)
		rl->server_reset_ms = now_ms + reset_in_ms;
	if (remaining < 0 || reset_in_ms < 0)
		return;
	refill(rl, now_ms);
	/*
	 * The server's view wins when it is stricter: never hold more tokens than the
	 * remaining budget scaled by our target, and if it is (nearly) spent, wait for the
	 * window to reset.
	 */
	double allowed = (double)remaining * rl->target;
	if (rl->tokens > allowed)
		rl->tokens = allowed;
	if (remaining == 0 && reset_in_ms > 0)
		ratelimit_pause(rl, now_ms + reset_in_ms);
}

void ratelimit_pause(struct ratelimit *rl, int64_t until_ms)
{
	if (until_ms > rl->paused_until_ms)
		rl->paused_until_ms = until_ms;
	rl->tokens = 0;
	rl->last_ms = until_ms;
}
