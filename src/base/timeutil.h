/*
 * timeutil.h: dates as epoch milliseconds (UTC), parsing and formatting.
 */
#ifndef JOEY_TIMEUTIL_H
#define JOEY_TIMEUTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/strbuf.h"

/*
 * Parse s (borrowed, len bytes) as a date: ISO-8601 date or date-time with optional
 * fraction and zone ("2021-03-04", "2021-03-04T05:06:07.123Z", "2021-03-04 05:06:07+02:00"),
 * or a plain integer of epoch seconds (<= 10^11) / milliseconds. No zone means UTC.
 * Returns false if s is not a date, or lies outside the years 0000 to 9999.
 */
bool time_parse(const char *s, size_t len, int64_t *ms_out);
/*
 * Is ms a date joey can hold: years 0000 to 9999, what ISO-8601 writes with four
 * digits and time_format_iso prints back. time_parse refuses the others; a number read
 * natively as a date (sql_value_from_int) must too.
 */
bool time_in_range(int64_t ms);
/* Append "YYYY-MM-DDTHH:MM:SS.mmmZ". */
void time_format_iso(struct strbuf *out, int64_t ms);
/* Days since 1970-01-01 of a civil date (proleptic Gregorian). */
int64_t time_days_from_civil(int64_t y, unsigned m, unsigned d);
/* Current wall-clock time in ms; tests may pin it with JOEY_NOW (ISO or epoch ms). */
int64_t time_now_ms(void);
/* Add n units (days, weeks, months, quarters, years) to ms, calendar-aware. */
int64_t time_add_units(int64_t ms, int64_t n, const char *unit);

#endif
