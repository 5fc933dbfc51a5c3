/* cron.c: five-field cron expressions, parsed into bit sets and stepped minute by day. */
#include "base/cron.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>


static const char *const field_names[] = { "minute", "hour", "day of month", "month", "day of week" };
static const int lo_of[] = { 0, 0, 1, 1, 0 }, hi_of[] = { 59, 23, 31, 12, 7 };
static const char *const months[] = { "jan", "feb", "mar", "apr", "may", "jun",
				      "jul", "aug", "sep", "oct", "nov", "dec" };
static const char *const wdays[] = { "sun", "mon", "tue", "wed", "thu", "fri", "sat" };

static bool read_value(int field, const char **p, int *out)
{
	const char *s = *p;
	if (isdigit((unsigned char)*s)) {
		long v = 0;
		int digits = 0;
		while (isdigit((unsigned char)*s) && digits < 3) {
			v = v * 10 + (*s++ - '0');
			digits++;
		}
		if (isdigit((unsigned char)*s))
			return false;
		*out = (int)v;
		*p = s;
		return true;
	}
	const char *const *names = field == 3 ? months : field == 4 ? wdays : NULL;
	int n = field == 3 ? 12 : 7;
	if (!names)
		return false;
	for (int i = 0; i < n; i++)
		if (!strncasecmp(s, names[i], 3) && !isalpha((unsigned char)s[3])) {
			*out = field == 3 ? i + 1 : i;
			*p = s + 3;
			return true;
		}
	return false;
}

/* One field into a bit set; *star when it is exactly "*". */
static bool parse_field(int field, const char *text, uint64_t *bits, bool *star, char *why, size_t whylen)
{
	const char *p = text;
	*bits = 0;
	*star = !strcmp(text, "*");
	for (;;) {
		int a, b, step = 1;
		bool ranged = false;
		if (*p == '*') {
			ranged = true;
			a = lo_of[field];
			b = hi_of[field] == 7 ? 6 : hi_of[field];
			p++;
		} else {
			if (!read_value(field, &p, &a)) {
				snprintf(why, whylen, "\"%s\" is not a valid value", text);
				return false;
			}
			b = a;
			if (*p == '-') {
				ranged = true;
				p++;
				if (!read_value(field, &p, &b)) {
					snprintf(why, whylen, "\"%s\" has an incomplete range", text);
					return false;
				}
			}
		}
		if (*p == '/') {
			p++;
			if (!read_value(0, &p, &step) || step < 1) {
				snprintf(why, whylen, "\"%s\" has an invalid step", text);
				return false;
			}
			if (!ranged)
				b = hi_of[field] == 7 ? 6 : hi_of[field]; /* "5/15" means 5-max/15 */
		}
		if (a < lo_of[field] || b > hi_of[field] || a > b) {
			snprintf(why, whylen, "\"%s\" is outside %d-%d", text, lo_of[field], hi_of[field]);
			return false;
		}
		for (int v = a; v <= b; v += step)
			*bits |= (uint64_t)1 << (field == 4 && v == 7 ? 0 : v);
		if (*p == ',') {
			p++;
			continue;
		}
		if (*p) {
			snprintf(why, whylen, "\"%s\" has unexpected text \"%s\"", text, p);
			return false;
		}
		return true;
	}
}

enum jerr cron_parse(const char *expr, struct cron *out, struct jerror *err)
{
	static const struct {
		const char *name, *expansion;
	} macros[] = {
		{ "@yearly", "0 0 1 1 *" }, { "@annually", "0 0 1 1 *" }, { "@monthly", "0 0 1 * *" },
		{ "@weekly", "0 0 * * 0" }, { "@daily", "0 0 * * *" },    { "@midnight", "0 0 * * *" },
		{ "@hourly", "0 * * * *" },
	};
	char buf[256], *fields[6], why[160];
	int n = 0;

	memset(out, 0, sizeof(*out));
	while (isspace((unsigned char)*expr))
		expr++;
	for (size_t i = 0; i < sizeof(macros) / sizeof(macros[0]); i++)
		if (!strcasecmp(expr, macros[i].name))
			expr = macros[i].expansion;
	if (strlen(expr) >= sizeof(buf))
		return jerror_set(err, JERR_CONFIG, "cron expression is too long");
	strcpy(buf, expr);
	for (char *save = NULL, *tok = strtok_r(buf, " \t", &save); tok; tok = strtok_r(NULL, " \t", &save)) {
		if (n == 5) {
			n++;
			break;
		}
		fields[n++] = tok;
	}
	if (n != 5) {
		jerror_set(err, JERR_CONFIG, "cron expression \"%s\" needs 5 fields, found %d", expr, n > 5 ? 6 : n);
		jerror_hint(err, "minute hour day-of-month month day-of-week, e.g. \"*/15 * * * *\"");
		return JERR_CONFIG;
	}
	uint64_t bits[5];
	bool star[5];
	for (int f = 0; f < 5; f++)
		if (!parse_field(f, fields[f], &bits[f], &star[f], why, sizeof(why)))
			return jerror_set(err, JERR_CONFIG, "cron expression \"%s\": %s field: %s", expr,
					  field_names[f], why);
	out->minutes = bits[0];
	out->hours = (uint32_t)bits[1];
	out->mdays = (uint32_t)bits[2];
	out->months = (uint16_t)bits[3];
	out->wdays = (uint8_t)bits[4];
	out->mday_star = star[2];
	out->wday_star = star[4];
	return JERR_OK;
}

static bool day_matches(const struct cron *c, int64_t days)
{
	unsigned m, d;
	int64_t z = days + 719468, era = (z >= 0 ? z : z - 146096) / 146097;
	unsigned doe = (unsigned)(z - era * 146097);
	unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	unsigned mp = (5 * doy + 2) / 153;
	d = doy - (153 * mp + 2) / 5 + 1;
	m = mp < 10 ? mp + 3 : mp - 9;
	if (!(c->months >> m & 1))
		return false;
	int wd = (int)(((days % 7) + 11) % 7); /* 1970-01-01 was a Thursday (4) */
	bool md = c->mdays >> d & 1, wdm = c->wdays >> wd & 1;
	if (c->mday_star || c->wday_star)
		return md && wdm;
	return md || wdm;
}

int64_t cron_next(const struct cron *c, int64_t after_ms)
{
	const int64_t min_ms = 60000;
	int64_t t = (after_ms >= 0 ? after_ms / min_ms : (after_ms - min_ms + 1) / min_ms) + 1; /* minutes */
	int64_t limit = t + (int64_t)5 * 366 * 1440;

	while (t < limit) {
		int64_t days = t >= 0 ? t / 1440 : (t - 1439) / 1440;
		if (!day_matches(c, days)) {
			t = (days + 1) * 1440;
			continue;
		}
		int mod = (int)(t - days * 1440), h = mod / 60, mi = mod % 60;
		if (!(c->hours >> h & 1)) {
			t = days * 1440 + (h + 1) * 60;
			continue;
		}
		if (!(c->minutes >> mi & 1)) {
			t++;
			continue;
		}
		return t * min_ms;
	}
	return -1;
}
