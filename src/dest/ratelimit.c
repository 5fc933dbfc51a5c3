/*
 * ratelimit.c: token bucket per endpoint, corrected by Braze's rate-limit headers, and
 * the ledger of Braze's fixed windows that takes over from it once answers say where
 * they are (ratelimit_window_budget).
 */
#include "dest/ratelimit.h"

#include <pthread.h>
#include <string.h>

static struct ratelimit_shared shared; /* set once, before the threads that use it */

static void pause_until(struct ratelimit *rl, int64_t until_ms);

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
	 * Half of that headroom only: requests reach Braze a little later than they leave
	 * (new connections, the network), so a window can also get some sent just before
	 * it; at a full bucket plus a window that never waits (a slow Braze, window.h) the
	 * other half is what keeps such a window under the limit.
	 */
	rl->capacity = (double)limit * (1.0 - target) / 2;
	if (rl->capacity < 1)
		rl->capacity = 1;
	rl->tokens = rl->capacity;
	rl->rate_per_ms = (double)limit * target / (double)window_ms;
	rl->last_ms = -1;
	rl->paused_until_ms = 0;
	rl->server_limit = rl->server_remaining = rl->server_reset_ms = 0;
	rl->shared_key[0] = 0;
	rl->drawn_ms = rl->next_draw_ms = rl->shared_down_until_ms = 0;
	rl->chunk = 1;
	rl->win_on = rl->win_known = rl->probing = false;
	rl->limit = limit;
	rl->window_ms = window_ms;
	rl->win_end_ms = rl->inflight = rl->probe_until_ms = 0;
	rl->cur_ours = rl->cur_others = rl->prev_ours = rl->prev_others = 0;
	rl->lock = NULL;
}

void ratelimit_window_budget(struct ratelimit *rl)
{
	if (rl->shared_key[0])
		return; /* the shared bucket keeps the workspace's budget for every worker */
	rl->win_on = true;
	rl->probing = true;
	rl->probe_until_ms = -1; /* set by the first acquire */
}

/* ---- the window ledger ---- */

static int64_t win_budget(const struct ratelimit *rl)
{
	int64_t b = (int64_t)(rl->target * (double)rl->limit);
	return b < 1 ? 1 : b;
}

/* The clock passed the window's end: the next one starts with nothing counted in it. */
static void win_roll(struct ratelimit *rl, int64_t now_ms)
{
	if (now_ms < rl->win_end_ms)
		return;
	int64_t k = (now_ms - rl->win_end_ms) / rl->window_ms + 1; /* windows passed */
	rl->prev_ours = k == 1 ? rl->cur_ours : 0;
	rl->prev_others = k == 1 ? rl->cur_others : 0;
	rl->cur_ours = rl->cur_others = 0;
	rl->win_end_ms += k * rl->window_ms;
}

/*
 * 0: one more request may be sent now; else ms to wait. Ours in flight may land in any
 * window from now on, so they count in each; near an edge the request must fit in the
 * windows on both sides.
 */
static int64_t win_wait(struct ratelimit *rl, int64_t now_ms)
{
	int64_t b = win_budget(rl), start;
	win_roll(rl, now_ms);
	start = rl->win_end_ms - rl->window_ms;
	if (rl->cur_ours + rl->cur_others + rl->inflight + 1 > b)
		return rl->win_end_ms - now_ms > 1 ? rl->win_end_ms - now_ms : 1;
	if (now_ms + RATELIMIT_EDGE_MS >= rl->win_end_ms && rl->inflight + 1 > b)
		return 1;
	if (now_ms - RATELIMIT_EDGE_MS < start && rl->prev_ours + rl->prev_others + rl->inflight + 1 > b)
		return start + RATELIMIT_EDGE_MS - now_ms > 1 ? start + RATELIMIT_EDGE_MS - now_ms : 1;
	return 0;
}

/*
 * An answer counted in the window ending at end_ms (server_used requests counted in it
 * when it arrived), or with no window said (end_ms < 0): it may have landed in the
 * current one.
 */
static void win_answer(struct ratelimit *rl, int64_t end_ms, int64_t server_used, int64_t now_ms)
{
	int64_t half = rl->window_ms / 2;
	if (end_ms < 0) {
		if (rl->win_known)
			rl->cur_ours++;
		return;
	}
	if (!rl->win_known) {
		rl->win_known = true;
		rl->win_end_ms = end_ms;
		rl->cur_ours = rl->cur_others = rl->prev_ours = rl->prev_others = 0;
	}
	win_roll(rl, now_ms);
	if (end_ms >= rl->win_end_ms + half) {
		/* the server is in a later window than our clock says: it rolled first */
		int64_t k = (end_ms - rl->win_end_ms + half) / rl->window_ms;
		rl->prev_ours = k == 1 ? rl->cur_ours : 0;
		rl->prev_others = k == 1 ? rl->cur_others : 0;
		rl->cur_ours = rl->cur_others = 0;
		rl->win_end_ms = end_ms;
	}
	if (end_ms > rl->win_end_ms - half) {
		rl->cur_ours++;
		if (end_ms > rl->win_end_ms)
			rl->win_end_ms = end_ms; /* of two ends, the later: the clock rolls no early */
		/* the server counted server_used; ours among them are at most those answered
		 * here and those in flight: the rest are others' */
		int64_t others = server_used - rl->cur_ours - rl->inflight;
		if (others > rl->cur_others)
			rl->cur_others = others;
	} else if (end_ms > rl->win_end_ms - rl->window_ms - half) {
		rl->prev_ours++;
	}
}

static double rate_locked(const struct ratelimit *rl, int64_t now_ms)
{
	if (!rl->win_on || !rl->win_known || rl->shared_key[0])
		return rl->rate_per_ms;
	int64_t used = rl->cur_ours + rl->cur_others + rl->inflight, end = rl->win_end_ms;
	if (now_ms >= end) {
		used = rl->inflight;
		end += ((now_ms - end) / rl->window_ms + 1) * rl->window_ms;
	}
	double room = (double)(win_budget(rl) - used);
	double horizon = (double)(end - RATELIMIT_EDGE_MS - now_ms) / 2;
	if (horizon < 100)
		horizon = 100;
	double r = room / horizon;
	return r > rl->rate_per_ms ? r : rl->rate_per_ms;
}

void ratelimit_shared_install(const struct ratelimit_shared *sh)
{
	if (sh)
		shared = *sh;
	else
		memset(&shared, 0, sizeof(shared));
}

bool ratelimit_shared_active(void)
{
	return shared.take != NULL;
}

void ratelimit_share(struct ratelimit *rl, const char *key)
{
	if (!shared.take || !key)
		return;
	size_t n = strlen(key);
	if (n >= sizeof(rl->shared_key))
		n = sizeof(rl->shared_key) - 1;
	memcpy(rl->shared_key, key, n);
	rl->shared_key[n] = 0;
	/* about 20 ms of the rate per round trip to the database, 1 to 16 tokens */
	double c = rl->rate_per_ms * 20;
	rl->chunk = c < 1 ? 1 : c > 16 ? 16 : (int)c;
	rl->tokens = 0;
}

/*
 * The shared bucket: the local one's capacity less what may be held undrawn for up to
 * RATELIMIT_SHARED_HOLD_MS, so that any window still sees at most the limit.
 */
static double shared_capacity(const struct ratelimit *rl)
{
	double c = rl->capacity - rl->rate_per_ms * RATELIMIT_SHARED_HOLD_MS;
	return c < 1 ? 1 : c;
}

/* 0: a token was taken from the shared budget; > 0: wait; < 0: use the local bucket. */
static int64_t shared_acquire(struct ratelimit *rl, int64_t now_ms)
{
	int got = 0;
	int64_t wait = 0;
	if (rl->tokens >= 1.0 && now_ms - rl->drawn_ms <= RATELIMIT_SHARED_HOLD_MS) {
		rl->tokens -= 1.0;
		return 0;
	}
	if (now_ms < rl->shared_down_until_ms)
		return -1;
	rl->tokens = 0; /* what is left of an old draw is dropped: it counted as spent */
	if (now_ms < rl->next_draw_ms)
		return rl->next_draw_ms - now_ms;
	if (shared.take(shared.ctx, rl->shared_key, shared_capacity(rl), rl->rate_per_ms, rl->chunk, &got, &wait)) {
		rl->shared_down_until_ms = now_ms + 1000; /* try the shared budget again in a second */
		rl->last_ms = -1;                        /* the local bucket starts from now */
		rl->tokens = 0;
		return -1;
	}
	if (got > 0) {
		rl->tokens = (double)got - 1.0;
		rl->drawn_ms = now_ms;
		return 0;
	}
	if (wait < 1)
		wait = 1;
	rl->next_draw_ms = now_ms + wait;
	return wait;
}

static void refill(struct ratelimit *rl, int64_t now_ms)
{
	if (rl->shared_key[0] && shared.take && now_ms >= rl->shared_down_until_ms) {
		/* tokens come from the shared budget only (shared_acquire), not from our clock */
		rl->last_ms = now_ms;
		return;
	}
	if (rl->last_ms < 0) {
		rl->last_ms = now_ms;
		return;
	}
	if (rl->probing && now_ms < rl->probe_until_ms) {
		rl->last_ms = now_ms; /* the probe: the capacity only, until an answer */
		return;
	}
	if (now_ms > rl->last_ms) {
		rl->tokens += (double)(now_ms - rl->last_ms) * rl->rate_per_ms;
		if (rl->tokens > rl->capacity)
			rl->tokens = rl->capacity;
		rl->last_ms = now_ms;
	}
}

static int64_t acquire_locked(struct ratelimit *rl, int64_t now_ms)
{
	if (now_ms < rl->paused_until_ms)
		return rl->paused_until_ms - now_ms;
	if (rl->shared_key[0] && shared.take) {
		int64_t w = shared_acquire(rl, now_ms);
		if (w >= 0)
			return w;
		/* the shared budget is out of reach: this process alone keeps to the limit */
	}
	if (rl->win_on && rl->win_known) {
		int64_t w = win_wait(rl, now_ms);
		if (!w)
			rl->inflight++;
		return w;
	}
	if (rl->win_on && rl->probe_until_ms < 0)
		rl->probe_until_ms = now_ms + rl->window_ms;
	refill(rl, now_ms);
	if (rl->tokens >= 1.0) {
		rl->tokens -= 1.0;
		if (rl->win_on)
			rl->inflight++;
		return 0;
	}
	double need = (1.0 - rl->tokens) / rl->rate_per_ms;
	int64_t wait = (int64_t)need + 1;
	return wait > 0 ? wait : 1;
}

static void refund_locked(struct ratelimit *rl)
{
	if (rl->win_on && rl->inflight > 0)
		rl->inflight--;
	rl->tokens += 1.0;
	if (rl->tokens > rl->capacity)
		rl->tokens = rl->capacity;
}

static void observe_locked(struct ratelimit *rl, int64_t limit, int64_t remaining, int64_t reset,
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
	if (rl->win_on) {
		if (rl->inflight > 0)
			rl->inflight--;
		if (rl->probing) {
			rl->probing = false; /* an answer: the bucket refills from now */
			rl->last_ms = now_ms;
		}
		if (limit > 0 && limit < rl->limit)
			rl->limit = limit; /* the server's limit when it is lower than ours */
		/* an answer from a window that is over still says where the windows are */
		int64_t end_in = reset < 0 ? -1 : reset > 1000000000 ? reset * 1000 - now_epoch_ms : reset * 1000;
		bool said = remaining >= 0 && reset >= 0;
		if (said && end_in > rl->window_ms + RATELIMIT_EDGE_MS + 1000) {
			/* the server's window is longer than ours (a per-minute or hourly limit):
			 * the ledger cannot place requests in it; the bucket keeps the rate */
			rl->win_on = rl->win_known = false;
		} else {
			win_answer(rl, said ? now_ms + end_in : -1, said ? (limit > 0 ? limit : rl->limit) - remaining : 0,
				   now_ms);
		}
	}
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
		pause_until(rl, now_ms + reset_in_ms);
}

static void pause_locked(struct ratelimit *rl, int64_t until_ms)
{
	/* a 429 while the ledger governed: something else uses the workspace, or the
	 * windows are not where the answers said; the bucket, empty, takes over */
	rl->win_on = rl->win_known = rl->probing = false;
	pause_until(rl, until_ms);
}

static void pause_until(struct ratelimit *rl, int64_t until_ms)
{
	if (until_ms > rl->paused_until_ms)
		rl->paused_until_ms = until_ms;
	rl->tokens = 0;
	rl->last_ms = until_ms;
}

/* ---- the entry points: under the bucket's lock when it has one (ratelimit_set_lock) ---- */

static void lock(const struct ratelimit *rl)
{
	if (rl->lock)
		pthread_mutex_lock(rl->lock);
}

static void unlock(const struct ratelimit *rl)
{
	if (rl->lock)
		pthread_mutex_unlock(rl->lock);
}

void ratelimit_set_lock(struct ratelimit *rl, pthread_mutex_t *m)
{
	rl->lock = m;
}

double ratelimit_rate(const struct ratelimit *rl, int64_t now_ms)
{
	lock(rl);
	double r = rate_locked(rl, now_ms);
	unlock(rl);
	return r;
}

int64_t ratelimit_acquire(struct ratelimit *rl, int64_t now_ms)
{
	lock(rl);
	int64_t w = acquire_locked(rl, now_ms);
	unlock(rl);
	return w;
}

void ratelimit_refund(struct ratelimit *rl)
{
	lock(rl);
	refund_locked(rl);
	unlock(rl);
}

void ratelimit_observe(struct ratelimit *rl, int64_t limit, int64_t remaining, int64_t reset, int64_t now_ms,
		       int64_t now_epoch_ms)
{
	lock(rl);
	observe_locked(rl, limit, remaining, reset, now_ms, now_epoch_ms);
	unlock(rl);
}

void ratelimit_pause(struct ratelimit *rl, int64_t until_ms)
{
	lock(rl);
	pause_locked(rl, until_ms);
	unlock(rl);
}
