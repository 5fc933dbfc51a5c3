/* ratelimit.c: tests for src/dest/ratelimit.c (token bucket, headers, 429 pauses). */
#include "support/testutil.h"

#include <stdio.h>

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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bucket_rides_under_the_limit),
		cmocka_unit_test(test_wait_is_positive_when_empty),
		cmocka_unit_test(test_pause_on_429),
		cmocka_unit_test(test_headers_clamp_and_pause),
		cmocka_unit_test(test_shared_budget),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
