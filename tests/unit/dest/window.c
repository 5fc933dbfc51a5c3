/* window.c: tests for src/dest/window.c (requests in flight: Little's law, fast start, AIMD, bounds). */
#include "support/testutil.h"

#include <stdio.h>

#include "dest/ratelimit.h"
#include "dest/window.h"

/*
 * A fake clock and a fake Braze: every request is answered latency_ms after it is
 * sent; the client sends whenever the window has room and the track bucket
 * (3,000 per 3 s at 0.95) gives a token, as braze.c's pump does. Returns the
 * requests answered between from_ms and to_ms; *peak gets the largest window.
 */
#define MAX_FLIGHT 4096
static uint64_t simulate(struct window *w, int64_t latency_ms, int64_t from_ms, int64_t to_ms, int *peak)
{
	static int64_t due[MAX_FLIGHT];
	struct ratelimit rl;
	size_t inflight = 0;
	uint64_t answered = 0;
	ratelimit_init(&rl, 3000, 3000, 0.95);
	for (int64_t now = 0; now < to_ms; now++) {
		/* answers due now */
		for (size_t i = 0; i < inflight;) {
			if (due[i] <= now) {
				window_on_answer(w, (double)latency_ms, rl.rate_per_ms, now);
				if (now >= from_ms)
					answered++;
				due[i] = due[--inflight];
			} else {
				i++;
			}
		}
		while (inflight < (size_t)window_size(w) && inflight < MAX_FLIGHT && ratelimit_acquire(&rl, now) == 0)
			due[inflight++] = now + latency_ms;
		if (peak && window_size(w) > *peak)
			*peak = window_size(w);
	}
	return answered;
}

static void test_rides_the_limit_at_any_latency(void **s)
{
	static const int64_t lat[] = { 20, 100, 250, 500 };
	for (size_t i = 0; i < sizeof(lat) / sizeof(lat[0]); i++) {
		struct window w;
		int peak = 0;
		window_init(&w, NULL);
		assert_int_equal(window_size(&w), 32); /* before any answer */
		uint64_t n = simulate(&w, lat[i], 5000, 15000, &peak);
		/* the bucket allows 950/s: 10 s at >= 0.93 of the 1,000/s limit */
		if (n < 9300)
			fail_msg("latency %lld ms: %llu answers in 10 s", (long long)lat[i], (unsigned long long)n);
		/* the window carries the rate (rate x latency) without running far above it */
		assert_true(window_size(&w) >= (int)(0.95 * (double)lat[i]));
		assert_true(window_size(&w) <= (int)(0.95 * (double)lat[i] * 1.6) + 8);
		assert_true(peak <= WINDOW_HARD_MAX);
		assert_int_equal(w.decreases, 0);
	}
}

static void test_a_fixed_window_of_32_could_not(void **s)
{
	/* the reason for all this: 32 in flight at 250 ms is 128 requests/s */
	struct window w;
	struct window_opts o = { .max = 32 };
	window_init(&w, &o);
	uint64_t n = simulate(&w, 250, 5000, 15000, NULL);
	assert_true(n <= 1300);
	assert_int_equal(window_size(&w), 32);
}

static void test_fast_start(void **s)
{
	struct window w;
	window_init(&w, NULL);
	assert_true(w.slow_start);
	/* one answer after 250 ms at 1 request/ms: the window jumps to the need at once */
	window_on_answer(&w, 250, 1.0, 250);
	assert_false(w.slow_start);
	assert_true(window_size(&w) >= 250);
	assert_true(window_size(&w) <= 250 * 2 + 8);
	assert_int_equal(w.peak, window_size(&w));
}

static void test_primed_start_rides_the_first_round_trip(void **s)
{
	/* at 500 ms, 32 in flight spend the first round trip at 64/s; primed with the rate
	 * budget the window is the need at WINDOW_PRIME_LATENCY_MS before any answer */
	struct window plain, primed;
	window_init(&plain, NULL);
	window_init(&primed, NULL);
	struct ratelimit rl;
	ratelimit_init(&rl, 3000, 3000, 0.95);
	window_prime(&primed, rl.rate_per_ms);
	assert_true(primed.slow_start);
	assert_true(window_size(&primed) >= (int)(rl.rate_per_ms * WINDOW_PRIME_LATENCY_MS));
	uint64_t a = simulate(&plain, 500, 0, 1500, NULL);
	uint64_t b = simulate(&primed, 500, 0, 1500, NULL);
	if (!(b > a + 300))
		fail_msg("first 1.5 s at 500 ms: primed %llu answers, plain %llu", (unsigned long long)b,
			 (unsigned long long)a);
	/* a fast Braze: the first answer brings the primed window down to the need */
	struct window fast;
	window_init(&fast, NULL);
	window_prime(&fast, 1.0);
	window_on_answer(&fast, 20, 1.0, 20);
	assert_true(window_size(&fast) <= 20 * 2 + 8);
	/* after the first answer priming does nothing; the cap holds */
	window_prime(&fast, 1.0);
	assert_true(window_size(&fast) <= 20 * 2 + 8);
	struct window capped;
	struct window_opts o = { .max = 16 };
	window_init(&capped, &o);
	window_prime(&capped, 1.0);
	assert_int_equal(window_size(&capped), 16);
	/* no rate budget known: the initial window stays */
	struct window none;
	window_init(&none, NULL);
	window_prime(&none, 0);
	assert_int_equal(window_size(&none), 32);
}

static void test_backs_off_on_congestion(void **s)
{
	struct window w;
	window_init(&w, NULL);
	for (int i = 0; i < 50; i++)
		window_on_answer(&w, 200, 1.0, 200 + i);
	int before = window_size(&w);
	assert_true(before >= 200);
	window_on_congestion(&w, 1000); /* a 429 */
	int half = window_size(&w);
	assert_true(half <= before / 2 + 1 && half >= before / 2 - 1);
	/* the rest of the same flight fails too: counted once per round trip */
	window_on_congestion(&w, 1001);
	window_on_congestion(&w, 1100);
	assert_int_equal(window_size(&w), half);
	assert_int_equal(w.decreases, 1);
	/* a round trip later it halves again, and never goes below min */
	window_on_congestion(&w, 1500);
	assert_int_equal(w.decreases, 2);
	for (int64_t t = 2000; t < 20000; t += 1000)
		window_on_congestion(&w, t);
	assert_int_equal(window_size(&w), 4);
}

static void test_additive_increase_after_a_decrease(void **s)
{
	struct window w;
	window_init(&w, NULL);
	window_on_answer(&w, 200, 1.0, 200);
	for (int i = 0; i < 100; i++)
		window_on_answer(&w, 200, 1.0, 300);
	int full = window_size(&w);
	window_on_congestion(&w, 1000);
	int half = window_size(&w);
	/* one round trip of answers (a window's worth) adds about need / 16, not the need */
	for (int i = 0; i < half; i++)
		window_on_answer(&w, 200, 1.0, 1300);
	int one_rtt = window_size(&w);
	assert_true(one_rtt > half);
	assert_true(one_rtt <= half + full / 16 + 2);
	/* and within some 16 round trips it is back at the need, not above */
	for (int r = 0; r < 16; r++)
		for (int i = 0; i < full; i++)
			window_on_answer(&w, 200, 1.0, 1500 + r * 200);
	assert_true(window_size(&w) >= full - 2);
	assert_true(window_size(&w) <= full + 2);
}

static void test_follows_latency_down_and_up(void **s)
{
	struct window w;
	window_init(&w, NULL);
	for (int i = 0; i < 200; i++)
		window_on_answer(&w, 400, 1.0, i);
	int slow = window_size(&w);
	assert_true(slow >= 400);
	/* Braze got faster: the window shrinks (more would only wait for tokens) */
	for (int i = 0; i < 400; i++)
		window_on_answer(&w, 40, 1.0, 1000 + i);
	int fast = window_size(&w);
	assert_true(fast < slow / 4);
	assert_true(fast >= 40);
	/* and slower again: it grows back */
	for (int i = 0; i < 4000; i++)
		window_on_answer(&w, 300, 1.0, 2000 + i);
	assert_true(window_size(&w) >= 300);
	assert_int_equal(w.decreases, 0);
}

static void test_follows_a_grown_need_until_a_decrease(void **s)
{
	struct window w;
	window_init(&w, NULL);
	window_on_answer(&w, 250, 0.95, 0);
	int steady = window_size(&w);
	/* a fresh rate window doubles the rate budget: the window follows at once */
	window_on_answer(&w, 250, 2.0, 10);
	assert_true(window_size(&w) >= 3 * steady / 2);
	/* after a decrease it grows back by need / 16 per round trip only */
	window_on_congestion(&w, 20);
	int half = window_size(&w);
	window_on_answer(&w, 250, 2.0, 400);
	assert_true(window_size(&w) <= half + 2);
}

static void test_respects_the_cap(void **s)
{
	/* --concurrency 64 at 500 ms: the cap wins, and throughput is what 64 allow */
	struct window w;
	struct window_opts o = { .max = 64 };
	int peak = 0;
	window_init(&w, &o);
	assert_int_equal(window_size(&w), 32);
	uint64_t n = simulate(&w, 500, 5000, 15000, &peak);
	assert_int_equal(peak, 64);
	assert_true(n <= 64 * 2 * 10 + 64);
	/* a lower bound later (memory) applies at once, min follows it down */
	window_set_max(&w, 3);
	assert_int_equal(window_size(&w), 3);
	window_on_answer(&w, 500, 1.0, 20000);
	assert_int_equal(window_size(&w), 3);
	/* raised again: the floor of 4 is back */
	window_set_max(&w, 64);
	for (int64_t t = 21000; t < 40000; t += 1000)
		window_on_congestion(&w, t);
	assert_int_equal(window_size(&w), 4);
	/* --concurrency 1 is one request at a time */
	struct window_opts one = { .max = 1 };
	window_init(&w, &one);
	assert_int_equal(window_size(&w), 1);
	window_on_answer(&w, 500, 1.0, 500);
	assert_int_equal(window_size(&w), 1);
}

static void test_memory_bound(void **s)
{
	/* what one request in flight holds, for a 15 KB body (75 users of 10 fields) */
	uint64_t per = window_request_bytes(15000);
	assert_true(per >= 15000 * 4);
	assert_true(per >= WINDOW_TRANSFER_BYTES);
	/* 32 MiB at that size, and the hard maximum for small bodies */
	int n = window_max_for_memory((uint64_t)32 << 20, 15000);
	assert_true(n > 1 && n < WINDOW_HARD_MAX);
	assert_true((uint64_t)n * per <= (uint64_t)32 << 20);
	assert_true((uint64_t)(n + 1) * per > (uint64_t)32 << 20);
	assert_int_equal(window_max_for_memory((uint64_t)64 << 30, 100), WINDOW_HARD_MAX);
	/* at least one, however small the budget */
	assert_int_equal(window_max_for_memory(1, (uint64_t)4 << 20), 1);
	/* and a window bounded by it stays there at any latency */
	struct window w;
	struct window_opts o = { .max = window_max_for_memory((uint64_t)16 << 20, 15000) };
	window_init(&w, &o);
	simulate(&w, 500, 0, 5000, NULL);
	assert_int_equal(window_size(&w), o.max);
	assert_true((uint64_t)window_size(&w) * per <= (uint64_t)16 << 20);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rides_the_limit_at_any_latency),
		cmocka_unit_test(test_a_fixed_window_of_32_could_not),
		cmocka_unit_test(test_fast_start),
		cmocka_unit_test(test_primed_start_rides_the_first_round_trip),
		cmocka_unit_test(test_backs_off_on_congestion),
		cmocka_unit_test(test_additive_increase_after_a_decrease),
		cmocka_unit_test(test_follows_a_grown_need_until_a_decrease),
		cmocka_unit_test(test_follows_latency_down_and_up),
		cmocka_unit_test(test_respects_the_cap),
		cmocka_unit_test(test_memory_bound),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
