/*
 * cron.h: five-field cron expressions (minute hour day-of-month month day-of-week),
 * evaluated in UTC.
 *
 *   struct cron c;
 *   if (cron_parse("0-59/15 9-17 * * mon-fri", &c, &err)) ...;
 *   next = cron_next(&c, now_ms);      -- the first matching minute strictly after now
 *
 * Fields accept a star, numbers, ranges a-b, lists a,b, steps (a-b/n, a/n, or a star
 * followed by /n), month and day
 * names (jan..dec, sun..sat; 7 is Sunday too), and the macros @yearly @annually
 * @monthly @weekly @daily @midnight @hourly. As in Vixie cron, when both day fields
 * are restricted a day matches if either does.
 */
#ifndef JOEY_CRON_H
#define JOEY_CRON_H

#include <stdbool.h>
#include <stdint.h>

#include "base/compat.h"
#include "base/error.h"

struct cron {
	uint64_t minutes;  /* bits 0-59 */
	uint32_t hours;    /* bits 0-23 */
	uint32_t mdays;    /* bits 1-31 */
	uint16_t months;   /* bits 1-12 */
	uint8_t wdays;     /* bits 0-6, Sunday = 0 */
	bool mday_star, wday_star;
};

/* Parse expr (borrowed). On failure err names the field and what is wrong. */
enum jerr cron_parse(const char *expr, struct cron *out, struct jerror *err) JOEY_WUR;
/* The first minute strictly after after_ms that matches, in epoch ms; -1 if none within 5 years. */
int64_t cron_next(const struct cron *c, int64_t after_ms);

#endif
