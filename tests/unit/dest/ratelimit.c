/* ratelimit.c: tests for src/dest/ratelimit.c (token bucket, window budget, headers, 429 pauses). */
#include "support/testutil.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dest/ratelimit.h"

static void test_bucket_rides_under_the_limit(void **s)
{
	struct ratelimit rl;
	int64_t now = 0, sent = 0;
	static int64_t per_window[10], at[32000];
	ratelimit_init(&rl, 3000, 3000, 0.95); /* /users/track: 3,000 per 3 s */
	/* simulate 30 s of a client that sends whenever allowed */
	while (now < 30000) {
		int64_t w = ratelimit_acquire(&rl, now);
		if (w == 0) {
			at[sent++] = now;
			per_window[now / 3000]++;
		} else {
			now += w;
		}
	}
	/* a burst of half the 5% headroom, then 95% of the limit */
	assert_true(sent <= 75 + 28500 + 1);
	assert_true(sent >= 75 + 28500 - 50);
	/* no fixed 3 s window ever sees more than the limit less half the headroom, and
	 * each is well used */
	for (int i = 0; i < 10; i++) {
		assert_true(per_window[i] <= 3000 - 75 + 1);
		assert_true(per_window[i] >= 2800);
	}
	/* requests reach Braze up to 60 ms after they leave, in any order (new connections,
	 * the network), and Braze's windows fall anywhere: no window is over the limit */
	for (int64_t offset = 0; offset < 3000; offset += 37) {
		int64_t seen[12] = { 0 };
		for (int64_t i = 0; i < sent; i++) {
			int64_t arrive = at[i] + (int64_t)((uint64_t)(i * 2654435761u) % 61) + offset;
			seen[arrive / 3000]++;
		}
		for (int i = 0; i < 12; i++)
			if (seen[i] > 3000)
				fail_msg("offset %lld: window %d saw %lld requests", (long long)offset, i, (long long)seen[i]);
	}
}

static void test_wait_is_positive_when_empty(void **s)
{
	struct ratelimit rl;
	ratelimit_init(&rl, 10, 1000, 0.5); /* burst of 2.5, then one every 200 ms */
	for (int i = 0; i < 2; i++)
		assert_int_equal(ratelimit_acquire(&rl, 0), 0);
	int64_t w = ratelimit_acquire(&rl, 0);
	assert_true(w > 0 && w <= 201);
	assert_int_equal(ratelimit_acquire(&rl, w), 0);
	ratelimit_refund(&rl);
	assert_int_equal(ratelimit_acquire(&rl, w), 0);
}

static void test_pause_on_429(void **s)
{
	struct ratelimit rl;
	ratelimit_init(&rl, 100, 1000, 0.9);
	ratelimit_pause(&rl, 5000);
	assert_int_equal(ratelimit_acquire(&rl, 1000), 4000);
	assert_int_equal(ratelimit_acquire(&rl, 4999), 1);
	/* at the reset time the bucket refills from empty */
	int64_t w = ratelimit_acquire(&rl, 5000);
	assert_true(w > 0);
	assert_int_equal(ratelimit_acquire(&rl, 5000 + w), 0);
}

static void test_headers_clamp_and_pause(void **s)
{
	struct ratelimit rl;
	int64_t epoch_now = 1700000000000LL;
	ratelimit_init(&rl, 1000, 60000, 0.5);
	/* the server says 5 left: we hold at most 5 * target tokens */
	ratelimit_observe(&rl, 1000, 5, 1700000030, 0, epoch_now);
	int granted = 0;
	while (ratelimit_acquire(&rl, 0) == 0)
		granted++;
	assert_int_equal(granted, 2);
	/* none left: wait for the reset, given as epoch seconds 30 s ahead */
	ratelimit_observe(&rl, 1000, 0, 1700000030, 0, epoch_now);
	assert_int_equal(ratelimit_acquire(&rl, 0), 30000);
	/* reset given as seconds from now */
	ratelimit_init(&rl, 1000, 60000, 0.9);
	ratelimit_observe(&rl, 1000, 0, 7, 100, epoch_now);
	assert_int_equal(ratelimit_acquire(&rl, 100), 7000);
	/* absent headers change nothing */
	ratelimit_init(&rl, 10, 1000, 0.9);
	ratelimit_observe(&rl, -1, -1, -1, 0, epoch_now);
	assert_int_equal(ratelimit_acquire(&rl, 0), 0);
}

/* ---- a budget shared with other processes (workers) ---- */

/* A fake shared bucket: `left` tokens, then none (wait 40 ms); fail: unreachable. */
struct fake_shared {
	int left, calls, last_want;
	double capacity, rate;
	char key[64];
	bool fail;
};

static int fake_take(void *ctx, const char *key, double capacity, double rate_per_ms, int want, int *got,
		     int64_t *wait_ms)
{
	struct fake_shared *f = ctx;
	f->calls++;
	f->last_want = want;
	f->capacity = capacity;
	f->rate = rate_per_ms;
	snprintf(f->key, sizeof(f->key), "%s", key);
	if (f->fail)
		return -1;
	*got = want < f->left ? want : f->left;
	f->left -= *got;
	*wait_ms = *got ? 0 : 40;
	return 0;
}

static void test_shared_budget(void **s)
{
	struct fake_shared f = { .left = 5 };
	struct ratelimit_shared sh = { fake_take, &f };
	struct ratelimit rl, local;

	/* without an installed budget, ratelimit_share changes nothing */
	ratelimit_init(&local, 3000, 3000, 0.95);
	ratelimit_share(&local, "k");
	assert_false(ratelimit_shared_active());
	assert_int_equal(ratelimit_acquire(&local, 0), 0);
	assert_int_equal(f.calls, 0);

	ratelimit_shared_install(&sh);
	assert_true(ratelimit_shared_active());
	ratelimit_init(&rl, 3000, 3000, 0.95);
	ratelimit_share(&rl, "braze:track:x");
	/* tokens come in chunks (about 20 ms of the rate, here 16 at most) from the budget */
	assert_int_equal(ratelimit_acquire(&rl, 0), 0);
	assert_int_equal(f.calls, 1);
	assert_string_equal(f.key, "braze:track:x");
	assert_int_equal(f.last_want, 16);
	assert_true(f.rate > 0.94 && f.rate < 0.96);
	/* the shared capacity leaves room for what may be held undrawn */
	assert_true(f.capacity < 75 - 0.95 * RATELIMIT_SHARED_HOLD_MS + 1 && f.capacity > 20);
	for (int i = 0; i < 4; i++)
		assert_int_equal(ratelimit_acquire(&rl, 1), 0);
	assert_int_equal(f.calls, 1); /* the rest of the chunk */
	/* the budget is spent: wait what it says, without asking again meanwhile */
	assert_int_equal(ratelimit_acquire(&rl, 2), 40);
	assert_int_equal(ratelimit_acquire(&rl, 20), 22);
	assert_int_equal(f.calls, 2);
	/* headers and time do not add tokens of our own */
	ratelimit_observe(&rl, 3000, 2999, 1, 30, 1700000000000LL);
	f.left = 0;
	assert_true(ratelimit_acquire(&rl, 1000) > 0);
	/* tokens held too long are dropped */
	f.left = 2;
	assert_int_equal(ratelimit_acquire(&rl, 2000), 0);
	assert_int_equal(ratelimit_acquire(&rl, 2000 + RATELIMIT_SHARED_HOLD_MS + 1), 40); /* asked again: none */
	/* unreachable: this process keeps to the limit alone for a second */
	f.fail = true;
	int64_t w = ratelimit_acquire(&rl, 5000); /* the local bucket starts empty: safe */
	assert_true(w > 0 && w < 5);
	int calls = f.calls;
	assert_int_equal(ratelimit_acquire(&rl, 5000 + w), 0);
	assert_int_equal(f.calls, calls);
	f.fail = false;
	f.left = 1;
	assert_int_equal(ratelimit_acquire(&rl, 7000), 0); /* a second later: the budget again */
	assert_int_equal(f.calls, calls + 1);
	ratelimit_shared_install(NULL);
	assert_false(ratelimit_shared_active());
}


/* ---- the window budget against a Braze with fixed windows ---- */

/*
 * A client that sends whenever ratelimit_acquire allows, at most `cap` in flight,
 * against a Braze that counts fixed windows of window_ms (aligned to the epoch, like
 * the simulator's), each request reaching it 0..max_delay ms after it leaves (in any
 * order), answered `latency` ms after that with X-RateLimit-Remaining and -Reset
 * (epoch seconds, or seconds left when delta), its clock skew_ms behind ours. One
 * millisecond per step.
 */
struct fake_braze {
	int64_t limit, window_ms, epoch0_ms; /* the epoch at step 0 */
	int64_t latency, max_delay;
	bool delta;
	int64_t skew_ms;                     /* Braze's clock is this much behind ours */
	int64_t prefill;                     /* others' requests in the first window */
	/* results */
	int64_t per_window[64];              /* requests counted in each window (from epoch0) */
	int64_t rejected, sent, sent_by[64]; /* 429s; sends; sends by time (per window_ms) */
};

struct req {
	int64_t arrive, answer, remaining, reset;
	bool counted, done;
};

static void run_fake(struct fake_braze *fb, struct ratelimit *rl, int64_t duration, int cap)
{
	static struct req q[40000];
	size_t n = 0, first_open = 0;
	int inflight = 0;
	uint64_t rng = 88172645463325252ull;
	int64_t used = fb->prefill, cur = -1;
	for (int64_t now = 0; now < duration; now++) {
		int64_t epoch = fb->epoch0_ms + now;
		/* arrivals, in order of arrival: count them in Braze's window */
		for (size_t i = first_open; i < n; i++) {
			struct req *r = &q[i];
			if (r->counted || r->arrive != now)
				continue;
			int64_t w = (fb->epoch0_ms + r->arrive - fb->skew_ms) / fb->window_ms;
			if (w != cur) {
				used = cur < 0 ? fb->prefill : 0;
				cur = w;
			}
			r->counted = true;
			int64_t end_s = (w + 1) * fb->window_ms / 1000;
			r->reset = fb->delta ? end_s - (epoch - fb->skew_ms) / 1000 : end_s;
			if (used >= fb->limit) {
				fb->rejected++;
				r->remaining = 0;
			} else {
				used++;
				fb->per_window[w - fb->epoch0_ms / fb->window_ms]++;
				r->remaining = fb->limit - used;
			}
		}
		/* answers */
		for (size_t i = first_open; i < n; i++) {
			struct req *r = &q[i];
			if (r->done || !r->counted || r->answer != now)
				continue;
			r->done = true;
			inflight--;
			ratelimit_observe(rl, fb->limit, r->remaining, r->reset, now, epoch);
		}
		while (first_open < n && q[first_open].done)
			first_open++;
		/* sends */
		while (inflight < cap && n < sizeof(q) / sizeof(q[0]) && ratelimit_acquire(rl, now) == 0) {
			uint64_t r = tu_xorshift(&rng);
			int64_t d = fb->max_delay ? (int64_t)(r % (uint64_t)(fb->max_delay + 1)) : 0;
			q[n++] = (struct req){ .arrive = now + 1 + d, .answer = now + 1 + d + fb->latency };
			inflight++;
			fb->sent++;
			fb->sent_by[now / fb->window_ms]++;
		}
	}
}

static void check_windows(const struct fake_braze *fb, int64_t budget, const char *what)
{
	if (fb->rejected)
		fail_msg("%s: %lld requests rejected (429)", what, (long long)fb->rejected);
	for (int i = 0; i < 64; i++)
		if (fb->per_window[i] > budget)
			fail_msg("%s: window %d counted %lld, over %lld", what, i, (long long)fb->per_window[i],
				 (long long)budget);
}

static void test_window_budget_fresh_window(void **s)
{
	/* Braze's track limit at 250 ms, the run starting at different points of a window */
	const int64_t starts[] = { 0, 400, 1500, 2700, 2950 };
	for (size_t k = 0; k < sizeof(starts) / sizeof(starts[0]); k++) {
		struct fake_braze fb = { .limit = 3000, .window_ms = 3000, .latency = 250, .max_delay = 40,
					 .epoch0_ms = 1700000001000LL - 1700000001000LL % 3000 + starts[k] };
		struct ratelimit rl;
		ratelimit_init(&rl, 3000, 3000, 0.95);
		ratelimit_window_budget(&rl);
		run_fake(&fb, &rl, 15000, 1024);
		char what[64];
		snprintf(what, sizeof(what), "start %lld ms into a window", (long long)starts[k]);
		/* no window over 95% of the limit, so never a 429 */
		check_windows(&fb, 2850, what);
		/* the first round trip sends the probe only (the bucket's capacity) */
		assert_true(fb.sent_by[0] >= 75);
		/* every window Braze's clock starts after the first answer is spent in full: 4
		 * of them in 15 s, plus the probe (5 when the run starts as one starts) */
		int64_t least = starts[k] == 0 ? 5 * 2850 : 4 * 2850 + 75;
		if (fb.sent < least)
			fail_msg("%s: sent %lld in 15 s", what, (long long)fb.sent);
	}
}

static void test_window_budget_spends_early(void **s)
{
	/* a run of 1,334 requests (100k users) that starts as a window starts: the bucket
	 * needs 1.4 s; the window budget sends them within a few round trips */
	struct fake_braze fb = { .limit = 3000, .window_ms = 3000, .latency = 250, .max_delay = 20,
				 .epoch0_ms = 1700000001000LL - 1700000001000LL % 3000 };
	struct ratelimit rl, bucket;
	ratelimit_init(&rl, 3000, 3000, 0.95);
	ratelimit_window_budget(&rl);
	run_fake(&fb, &rl, 800, 1024);
	assert_true(fb.sent >= 1334);
	check_windows(&fb, 2850, "early");
	/* the steady bucket alone, same Braze */
	struct fake_braze fb2 = fb;
	memset(fb2.per_window, 0, sizeof(fb2.per_window));
	fb2.sent = fb2.rejected = 0;
	ratelimit_init(&bucket, 3000, 3000, 0.95);
	run_fake(&fb2, &bucket, 800, 1024);
	assert_true(fb2.sent < 900);
	/* the rate the window is sized for: high while the window is fresh */
	assert_true(ratelimit_rate(&bucket, 800) < 0.96);
}

static void test_window_budget_after_a_full_window(void **s)
{
	/* another run left the window with 150 requests: the probe fits, the ledger then
	 * waits for the next window (others' 2,850 are seen in the server's count) */
	struct fake_braze fb = { .limit = 3000, .window_ms = 3000, .latency = 250, .max_delay = 40,
				 .prefill = 2850, .epoch0_ms = 1700000001000LL - 1700000001000LL % 3000 + 500 };
	struct ratelimit rl;
	ratelimit_init(&rl, 3000, 3000, 0.95);
	ratelimit_window_budget(&rl);
	run_fake(&fb, &rl, 9000, 1024);
	assert_int_equal(fb.rejected, 0);
	assert_true(fb.per_window[0] <= 75 + 5); /* the probe, and no more until the next window */
	check_windows(&fb, 2850, "after a full window");
	assert_true(fb.sent > 2 * 2850 - 300);
}

static void test_window_budget_delta_reset_and_latency(void **s)
{
	/* Reset as seconds left (whole seconds, as MAU contracts send it), short and long
	 * latencies, late arrivals up to 100 ms: never over the budget */
	const int64_t lat[] = { 20, 100, 500 };
	for (int delta = 0; delta < 2; delta++)
		for (size_t k = 0; k < 3; k++) {
			struct fake_braze fb = { .limit = 3000, .window_ms = 3000, .latency = lat[k], .max_delay = 100,
						 .delta = delta, .epoch0_ms = 1700000001000LL + 1234 * (int64_t)k };
			struct ratelimit rl;
			ratelimit_init(&rl, 3000, 3000, 0.95);
			ratelimit_window_budget(&rl);
			run_fake(&fb, &rl, 12000, 1024);
			char what[64];
			snprintf(what, sizeof(what), "%s reset, %lld ms", delta ? "delta" : "epoch", (long long)lat[k]);
			check_windows(&fb, 2850, what);
			if (fb.sent < 3 * 2850 + 75)
				fail_msg("%s: sent %lld in 12 s", what, (long long)fb.sent);
		}
}

static void test_window_budget_clock_skew(void **s)
{
	/* Braze's clock behind or ahead of ours by up to 120 ms: Reset in epoch seconds puts
	 * the window's end that far off; the edge check keeps every window under budget */
	const int64_t skews[] = { -120, -60, 60, 120 };
	for (size_t k = 0; k < 4; k++) {
		struct fake_braze fb = { .limit = 3000, .window_ms = 3000, .latency = 100, .max_delay = 20,
					 .skew_ms = skews[k], .epoch0_ms = 1700000001000LL + 777 };
		struct ratelimit rl;
		ratelimit_init(&rl, 3000, 3000, 0.95);
		ratelimit_window_budget(&rl);
		run_fake(&fb, &rl, 12000, 1024);
		char what[64];
		snprintf(what, sizeof(what), "skew %lld ms", (long long)skews[k]);
		check_windows(&fb, 2850 + 20, what);
		assert_int_equal(fb.rejected, 0);
	}
}

/* Threads (the runs of `joey serve`) sharing one locked bucket lose no count. */
struct hammer {
	struct ratelimit *rl;
	pthread_barrier_t *go;
	int64_t granted;
};

static void *hammer_main(void *arg)
{
	struct hammer *h = arg;
	int64_t epoch = 1700000001000LL;
	pthread_barrier_wait(h->go);
	for (int i = 0; i < 200000; i++)
		if (ratelimit_acquire(h->rl, 10) == 0) {
			h->granted++;
			ratelimit_observe(h->rl, 100000000, 90000000, epoch / 1000 + 2, 10, epoch + 10);
		}
	return NULL;
}

static void test_window_budget_threads(void **s)
{
	struct ratelimit rl;
	pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
	int64_t epoch = 1700000001000LL;
	ratelimit_init(&rl, 100000000, 3000, 0.95);
	ratelimit_window_budget(&rl);
	ratelimit_set_lock(&rl, &m);
	assert_int_equal(ratelimit_acquire(&rl, 0), 0);
	ratelimit_observe(&rl, 100000000, 99999999, epoch / 1000 + 2, 5, epoch + 5);
	struct hammer h[4];
	pthread_t t[4];
	pthread_barrier_t go;
	pthread_barrier_init(&go, NULL, 4);
	for (int i = 0; i < 4; i++) {
		h[i] = (struct hammer){ &rl, &go, 0 };
		assert_int_equal(pthread_create(&t[i], NULL, hammer_main, &h[i]), 0);
	}
	int64_t total = 1;
	for (int i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		total += h[i].granted;
	}
	pthread_barrier_destroy(&go);
	assert_int_equal(total, 1 + 4 * 200000);
	assert_int_equal(rl.inflight, 0);
	assert_int_equal(rl.cur_ours, total);
}

static void test_window_budget_429_hands_back(void **s)
{
	struct ratelimit rl;
	int64_t epoch = 1700000001000LL;
	ratelimit_init(&rl, 3000, 3000, 0.95);
	ratelimit_window_budget(&rl);
	/* the probe: the bucket's capacity, no refill before an answer */
	int n = 0;
	while (ratelimit_acquire(&rl, 0) == 0)
		n++;
	assert_int_equal(n, 75);
	assert_true(ratelimit_acquire(&rl, 200) > 0);
	/* an answer: the window's end and count are known, the ledger governs */
	ratelimit_observe(&rl, 3000, 2925, epoch / 1000 + 2, 250, epoch + 250);
	assert_true(rl.win_known);
	assert_true(ratelimit_rate(&rl, 250) > 2 * rl.rate_per_ms);
	n = 0;
	while (ratelimit_acquire(&rl, 250) == 0)
		n++;
	assert_int_equal(n, 2850 - 75); /* 74 in flight + 1 answered + the rest of 2,850 */
	/* a 429: the bucket takes over, empty, after the pause */
	ratelimit_pause(&rl, 1000);
	assert_false(rl.win_on);
	assert_int_equal(ratelimit_acquire(&rl, 999), 1);
	assert_true(ratelimit_acquire(&rl, 1000) > 0);
	assert_int_equal(ratelimit_acquire(&rl, 1002), 0);
	assert_true(ratelimit_rate(&rl, 1002) < 0.96);
	/* the probe was counted in a window that is over when its answer comes: that still
	 * says where the windows are, and the next one is all ours but the probe in flight */
	ratelimit_init(&rl, 3000, 3000, 0.95);
	ratelimit_window_budget(&rl);
	for (int i = 0; i < 75; i++)
		assert_int_equal(ratelimit_acquire(&rl, 0), 0);
	int64_t ended = (epoch + 250) / 3000 * 3000; /* Braze's window ended just before */
	ratelimit_observe(&rl, 3000, 2925, ended / 1000, 250, epoch + 250);
	assert_true(rl.win_known);
	assert_true(ratelimit_rate(&rl, 250) > 2 * rl.rate_per_ms);
	n = 0;
	while (ratelimit_acquire(&rl, 400) == 0)
		n++;
	assert_int_equal(n, 2850 - 74);
	/* a workspace whose window is a minute (the legacy 50,000/min) while we think 3 s:
	 * the ledger cannot place requests in it and hands back to the bucket */
	ratelimit_init(&rl, 3000, 3000, 0.95);
	ratelimit_window_budget(&rl);
	assert_int_equal(ratelimit_acquire(&rl, 0), 0);
	ratelimit_observe(&rl, 50000, 49000, epoch / 1000 + 45, 250, epoch + 250);
	assert_false(rl.win_on);
	assert_false(rl.win_known);
	n = 0;
	while (ratelimit_acquire(&rl, 300) == 0)
		n++;
	assert_true(n <= 75);
	/* with a shared budget (workers) the window budget stays off */
	struct fake_shared f = { .left = 100 };
	struct ratelimit_shared sh = { fake_take, &f };
	ratelimit_shared_install(&sh);
	ratelimit_init(&rl, 3000, 3000, 0.95);
	ratelimit_share(&rl, "braze:track:x");
	ratelimit_window_budget(&rl);
	assert_false(rl.win_on);
	ratelimit_shared_install(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bucket_rides_under_the_limit),
		cmocka_unit_test(test_wait_is_positive_when_empty),
		cmocka_unit_test(test_pause_on_429),
		cmocka_unit_test(test_headers_clamp_and_pause),
		cmocka_unit_test(test_shared_budget),
		cmocka_unit_test(test_window_budget_fresh_window),
		cmocka_unit_test(test_window_budget_spends_early),
		cmocka_unit_test(test_window_budget_after_a_full_window),
		cmocka_unit_test(test_window_budget_delta_reset_and_latency),
		cmocka_unit_test(test_window_budget_clock_skew),
		cmocka_unit_test(test_window_budget_threads),
		cmocka_unit_test(test_window_budget_429_hands_back),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
