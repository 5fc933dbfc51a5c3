/* window.c: requests in flight sized by Little's law, with a fast start and AIMD. */
#include "dest/window.h"

#include <math.h>
#include <stddef.h>

void window_init(struct window *w, const struct window_opts *o)
{
	struct window_opts d = { 0 };
	if (o)
		d = *o;
	if (d.max < 1)
		d.max = WINDOW_HARD_MAX;
	if (d.min < 1)
		d.min = 4;
	if (d.initial < 1)
		d.initial = 32;
	if (!(d.headroom >= 1.0))
		d.headroom = 1.25;
	*w = (struct window){ .o = d, .slow_start = true };
	w->cwnd = d.initial;
	w->peak = window_size(w);
}

/* The floor: min, or max when that is lower (--concurrency 1 is one at a time). */
static int floor_of(const struct window *w)
{
	return w->o.min < w->o.max ? w->o.min : w->o.max;
}

int window_size(const struct window *w)
{
	double c = ceil(w->cwnd);
	if (c > w->o.max)
		return w->o.max;
	if (c < floor_of(w))
		return floor_of(w);
	return (int)c;
}

static void clamp(struct window *w)
{
	if (w->cwnd > w->o.max)
		w->cwnd = w->o.max;
	if (w->cwnd < floor_of(w))
		w->cwnd = floor_of(w);
	int n = window_size(w);
	if (n > w->peak)
		w->peak = n;
}

void window_on_answer(struct window *w, double latency_ms, double rate_per_ms, int64_t now_ms)
{
	(void)now_ms;
	if (!(latency_ms >= 0))
		latency_ms = 0;
	if (!(rate_per_ms > 0))
		rate_per_ms = 0;
	/* RFC 6298: the first sample sets srtt and half of it as the variation */
	if (w->srtt_ms <= 0) {
		w->srtt_ms = latency_ms > 0 ? latency_ms : 0.001;
		w->rttvar_ms = latency_ms / 2;
	} else {
		w->rttvar_ms = 0.75 * w->rttvar_ms + 0.25 * fabs(w->srtt_ms - latency_ms);
		w->srtt_ms = 0.875 * w->srtt_ms + 0.125 * latency_ms;
	}
	w->need = rate_per_ms * (w->srtt_ms + w->rttvar_ms) * w->o.headroom + 2;
	if (w->slow_start || !w->decreases) {
		/* the latency is known: no need to double our way up; and until Braze has
		 * pushed back, a need that grew (a fresh rate window, ratelimit_rate) is
		 * followed at once too: the rate budget, not the window, keeps the limit */
		if (w->cwnd < w->need)
			w->cwnd = w->need;
		w->slow_start = false;
	} else if (w->cwnd < w->need) {
		double step = w->need / 16 > 1 ? w->need / 16 : 1;
		w->cwnd += step / (w->cwnd > 1 ? w->cwnd : 1);
		if (w->cwnd > w->need)
			w->cwnd = w->need;
	}
	if (w->cwnd > w->need)
		w->cwnd = w->need; /* more in flight would only wait for tokens */
	clamp(w);
}

void window_prime(struct window *w, double rate_per_ms)
{
	if (!w->slow_start || !(rate_per_ms > 0))
		return;
	double need = rate_per_ms * WINDOW_PRIME_LATENCY_MS * w->o.headroom + 2;
	if (w->cwnd < need)
		w->cwnd = need;
	clamp(w);
}

void window_on_congestion(struct window *w, int64_t now_ms)
{
	if (now_ms < w->hold_until_ms)
		return;
	w->cwnd /= 2;
	w->slow_start = false;
	w->decreases++;
	double rtt = w->srtt_ms > 0 ? w->srtt_ms + w->rttvar_ms : 100;
	w->hold_until_ms = now_ms + (int64_t)ceil(rtt);
	clamp(w);
}

void window_set_max(struct window *w, int max)
{
	if (max < 1)
		max = 1;
	w->o.max = max;
	clamp(w);
}

uint64_t window_request_bytes(uint64_t body_bytes)
{
	/* rows (about 2x the body), the body, half a queued batch behind it, libcurl */
	return body_bytes * 3 + body_bytes * 3 / 2 + WINDOW_TRANSFER_BYTES;
}

int window_max_for_memory(uint64_t budget_bytes, uint64_t body_bytes)
{
	uint64_t per = window_request_bytes(body_bytes);
	uint64_t n = budget_bytes / per;
	if (n < 1)
		return 1;
	return n > WINDOW_HARD_MAX ? WINDOW_HARD_MAX : (int)n;
}
