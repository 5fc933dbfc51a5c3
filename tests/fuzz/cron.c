/*
 * cron.c: libFuzzer target for cron expressions (src/base/cron.c): cron_parse on any
 * text, and for what parses, cron_next checked against an independent matcher.
 * Input: 6 bytes picking the start time (1906..2286, to the millisecond), then the
 * expression.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "check.h"
#include "base/cron.h"
#include "base/strbuf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MIN_MS INT64_C(60000)
/* minutes scanned one by one after the start (a day), to catch a skipped match */
#define SCAN_MINUTES 1500

/* Does minute (since the epoch, UTC) match c? Written from cron.h's contract, not cron.c. */
static bool matches(const struct cron *c, int64_t minute)
{
	time_t t = (time_t)(minute * 60);
	struct tm tm;
	FUZZ_CHECK(gmtime_r(&t, &tm));
	if (!(c->minutes >> tm.tm_min & 1) || !(c->hours >> tm.tm_hour & 1) ||
	    !(c->months >> (tm.tm_mon + 1) & 1))
		return false;
	bool md = c->mdays >> tm.tm_mday & 1, wd = c->wdays >> tm.tm_wday & 1;
	return (c->mday_star || c->wday_star) ? md && wd : md || wd;
}

static int64_t floor_div(int64_t a, int64_t b)
{
	return a >= 0 ? a / b : -((-a + b - 1) / b);
}

/* One field as "*" (when parsed from a star) or as the list of its values. */
static void add_field(struct strbuf *sb, uint64_t bits, int lo, int hi, bool star)
{
	bool first = true;
	if (sb->len)
		strbuf_addch(sb, ' ');
	if (star) {
		strbuf_addch(sb, '*');
		return;
	}
	for (int v = lo; v <= hi; v++)
		if (bits >> v & 1) {
			strbuf_addf(sb, first ? "%d" : ",%d", v);
			first = false;
		}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char expr[320];
	struct cron c, back;
	struct jerror err = JERROR_INIT;
	uint64_t pick = 0;

	if (size < 6)
		return 0;
	for (int i = 0; i < 6; i++)
		pick = pick << 8 | data[i];
	/* -2e12 ms (1906) .. +1e13 ms (2286) */
	int64_t after = (int64_t)(pick % UINT64_C(12000000000000)) - INT64_C(2000000000000);
	size_t n = size - 6 < sizeof(expr) - 1 ? size - 6 : sizeof(expr) - 1;
	memcpy(expr, data + 6, n);
	expr[n] = '\0';

	if (cron_parse(expr, &c, &err)) {
		FUZZ_CHECK(err.msg.len && !memcmp(err.msg.buf, "cron expression", 15));
		jerror_release(&err);
		return 0;
	}
	/* every field has a value, and only values in its range */
	FUZZ_CHECK(c.minutes && !(c.minutes >> 60) && c.hours && !(c.hours >> 24));
	FUZZ_CHECK(c.mdays && !(c.mdays & 1) && c.months && !(c.months & 1) && !(c.months >> 13));
	FUZZ_CHECK(c.wdays && !(c.wdays >> 7));

	/* the parsed sets written back as lists parse to the same sets */
	struct strbuf sb = STRBUF_INIT;
	add_field(&sb, c.minutes, 0, 59, false);
	add_field(&sb, c.hours, 0, 23, false);
	add_field(&sb, c.mdays, 1, 31, c.mday_star);
	add_field(&sb, c.months, 1, 12, false);
	add_field(&sb, c.wdays, 0, 6, c.wday_star);
	if (sb.len < 256) { /* longer is "too long" by design */
		FUZZ_CHECK(cron_parse(sb.buf, &back, &err) == JERR_OK);
		FUZZ_CHECK(back.minutes == c.minutes && back.hours == c.hours && back.mdays == c.mdays &&
			   back.months == c.months && back.wdays == c.wdays &&
			   back.mday_star == c.mday_star && back.wday_star == c.wday_star);
	}
	strbuf_release(&sb);

	/* the next match: a whole minute after the start, matching, with none before it */
	int64_t next = cron_next(&c, after);
	int64_t first = floor_div(after, MIN_MS) + 1;
	if (next != -1) {
		FUZZ_CHECK(next > after && next % MIN_MS == 0 && matches(&c, next / MIN_MS));
		FUZZ_CHECK(next / MIN_MS - first <= (int64_t)5 * 366 * 1440);
		FUZZ_CHECK(cron_next(&c, next - 1) == next); /* no match in (after, next) */
		int64_t again = cron_next(&c, next);
		FUZZ_CHECK(again == -1 || (again > next && matches(&c, again / MIN_MS)));
	}
	int64_t last = next == -1 ? first + SCAN_MINUTES : next / MIN_MS;
	if (last > first + SCAN_MINUTES)
		last = first + SCAN_MINUTES;
	for (int64_t m = first; m < last; m++)
		FUZZ_CHECK(!matches(&c, m));
	jerror_release(&err);
	return 0;
}
