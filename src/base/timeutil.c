/* timeutil.c: epoch-millisecond dates: ISO-8601 parsing/formatting, calendar arithmetic. */
#include "base/timeutil.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define MS_PER_DAY INT64_C(86400000)

/* Floor division and modulo (C rounds toward zero). */
static int64_t floor_div(int64_t a, int64_t b)
{
	int64_t q = a / b;
	if ((a % b != 0) && ((a < 0) != (b < 0)))
		q--;
	return q;
}

static int64_t floor_mod(int64_t a, int64_t b)
{
	return a - floor_div(a, b) * b;
}

/* Howard Hinnant's days_from_civil / civil_from_days. */
int64_t time_days_from_civil(int64_t y, unsigned m, unsigned d)
{
	y -= m <= 2;
	const int64_t era = (y >= 0 ? y : y - 399) / 400;
	const unsigned yoe = (unsigned)(y - era * 400);
	const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
	z += 719468;
	const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
	const unsigned doe = (unsigned)(z - era * 146097);
	const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	const unsigned mp = (5 * doy + 2) / 153;
	*d = doy - (153 * mp + 2) / 5 + 1;
	*m = mp < 10 ? mp + 3 : mp - 9;
	*y = (int64_t)yoe + era * 400 + (*m <= 2);
}

static bool is_leap(int64_t y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static unsigned days_in_month(int64_t y, unsigned m)
{
	static const unsigned dm[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	return m == 2 && is_leap(y) ? 29 : dm[m - 1];
}

/* Read exactly `digits` decimal digits at s[*i]. */
/* The C locale's isdigit and isspace without a call (time_parse runs for every date read). */
static inline bool ascii_digit(char c)
{
	return (unsigned)((unsigned char)c - '0') < 10;
}

static inline bool ascii_space(char c)
{
	return c == ' ' || (c >= '\t' && c <= '\r');
}

static bool read_num(const char *s, size_t len, size_t *i, int digits, int *out)
{
	int v = 0;
	for (int k = 0; k < digits; k++) {
		if (*i >= len || !ascii_digit(s[*i]))
			return false;
		v = v * 10 + (s[(*i)++] - '0');
	}
	*out = v;
	return true;
}

/* A plain (optionally signed) integer: epoch seconds up to 10^11 in magnitude, else ms. */
static bool parse_epoch(const char *s, size_t len, int64_t *ms_out)
{
	int64_t x;
	if (!decimal_to_int64(s, len, &x))
		return false;
	*ms_out = (x <= INT64_C(100000000000) && x >= -INT64_C(100000000000)) ? x * 1000 : x;
	return true;
}

static bool parse_any(const char *s, size_t len, int64_t *ms_out);

/* Years 0000 to 9999 only: what ISO-8601 writes with four digits and joey can print back. */
#define TIME_MIN_MS INT64_C(-62167219200000)
#define TIME_MAX_MS INT64_C(253402300799999)

bool time_in_range(int64_t ms)
{
	return ms >= TIME_MIN_MS && ms <= TIME_MAX_MS;
}

bool time_parse(const char *s, size_t len, int64_t *ms_out)
{
	int64_t ms;
	if (!parse_any(s, len, &ms) || !time_in_range(ms))
		return false;
	*ms_out = ms;
	return true;
}

static bool parse_any(const char *s, size_t len, int64_t *ms_out)
{
	size_t i = 0;
	int y, mo, d, h = 0, mi = 0, sec = 0, ms = 0;
	int64_t tz_min = 0;

	while (len && ascii_space(s[0]))
		s++, len--;
	while (len && ascii_space(s[len - 1]))
		len--;
	if (!len)
		return false;
	if (len < 20 && parse_epoch(s, len, ms_out))
		return true;

	if (!read_num(s, len, &i, 4, &y) || i >= len || s[i++] != '-' ||
	    !read_num(s, len, &i, 2, &mo) || i >= len || s[i++] != '-' ||
	    !read_num(s, len, &i, 2, &d))
		return false;
	if (mo < 1 || mo > 12 || d < 1 || (unsigned)d > days_in_month(y, (unsigned)mo))
		return false;
	if (i < len && (s[i] == 'T' || s[i] == 't' || s[i] == ' ')) {
		i++;
		if (!read_num(s, len, &i, 2, &h) || i >= len || s[i++] != ':' ||
		    !read_num(s, len, &i, 2, &mi))
			return false;
		if (i < len && s[i] == ':') {
			i++;
			if (!read_num(s, len, &i, 2, &sec))
				return false;
			if (i < len && (s[i] == '.' || s[i] == ',')) {
				int scale = 100, digits = 0;
				i++;
				while (i < len && ascii_digit(s[i])) {
					ms += (s[i] - '0') * scale;
					scale /= 10;
					i++;
					digits++;
				}
				if (!digits)
					return false;
			}
		}
		if (h > 24 || mi > 59 || sec > 60 || (h == 24 && (mi || sec || ms)))
			return false;
		while (i < len && s[i] == ' ')
			i++;
		if (i < len && (s[i] == 'Z' || s[i] == 'z')) {
			i++;
		} else if (i < len && (s[i] == '+' || s[i] == '-')) {
			int sign = s[i++] == '-' ? -1 : 1, th, tm = 0;
			if (!read_num(s, len, &i, 2, &th))
				return false;
			if (i < len && s[i] == ':')
				i++;
			if (i < len && !read_num(s, len, &i, 2, &tm))
				return false;
			if (th > 23 || tm > 59)
				return false;
			tz_min = sign * (th * 60 + tm);
		}
	}
	if (i != len)
		return false;
	int64_t days = time_days_from_civil(y, (unsigned)mo, (unsigned)d);
	*ms_out = days * MS_PER_DAY + ((int64_t)h * 3600 + mi * 60 + sec) * 1000 + ms -
		  tz_min * 60000;
	return true;
}

/* v as exactly n decimal digits, zero-padded, at p (no NUL). */
static inline void put_digits(char *p, unsigned v, int n)
{
	while (n--) {
		p[n] = (char)('0' + v % 10);
		v /= 10;
	}
}

void time_format_iso(struct strbuf *out, int64_t ms)
{
	int64_t days = floor_div(ms, MS_PER_DAY);
	int64_t rem = floor_mod(ms, MS_PER_DAY);
	int64_t y;
	unsigned m, d;

	civil_from_days(days, &y, &m, &d);
	if (y < 0 || y > 9999) {
		strbuf_addf(out, "%04lld-%02u-%02uT%02d:%02d:%02d.%03dZ", (long long)y, m, d,
			    (int)(rem / 3600000), (int)(rem / 60000 % 60), (int)(rem / 1000 % 60),
			    (int)(rem % 1000));
		return;
	}
	/* the common case without printf: this runs for every date of every record */
	static const char tmpl[] = "0000-00-00T00:00:00.000Z";
	char b[sizeof(tmpl) - 1];
	unsigned h = (unsigned)(rem / 3600000), mi = (unsigned)(rem / 60000 % 60);
	unsigned sec = (unsigned)(rem / 1000 % 60), msec = (unsigned)(rem % 1000);
	memcpy(b, tmpl, sizeof(b));
	put_digits(b, (unsigned)y, 4);
	put_digits(b + 5, m, 2);
	put_digits(b + 8, d, 2);
	put_digits(b + 11, h, 2);
	put_digits(b + 14, mi, 2);
	put_digits(b + 17, sec, 2);
	put_digits(b + 20, msec, 3);
	strbuf_add(out, b, sizeof(b));
}

int64_t time_now_ms(void)
{
	const char *pin = getenv("JOEY_NOW");
	if (pin && *pin) {
		/* all digits: epoch ms (unlike time_parse, which reads small numbers as seconds) */
		size_t n = strlen(pin), k = pin[0] == '-';
		while (k < n && isdigit((unsigned char)pin[k]))
			k++;
		if (k == n && n > (size_t)(pin[0] == '-'))
			return strtoll(pin, NULL, 10);
		int64_t ms;
		if (time_parse(pin, n, &ms))
			return ms;
	}
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Add n months, clamping the day to the target month's length (moment.js). */
static int64_t add_months(int64_t ms, int64_t n)
{
	int64_t days = floor_div(ms, MS_PER_DAY);
	int64_t tod = floor_mod(ms, MS_PER_DAY);
	int64_t y;
	unsigned m, d;

	civil_from_days(days, &y, &m, &d);
	int64_t total = y * 12 + (int64_t)(m - 1) + n;
	int64_t ny = floor_div(total, 12);
	unsigned nm = (unsigned)floor_mod(total, 12) + 1;
	unsigned dim = days_in_month(ny, nm);
	if (d > dim)
		d = dim;
	return time_days_from_civil(ny, nm, d) * MS_PER_DAY + tod;
}

int64_t time_add_units(int64_t ms, int64_t n, const char *unit)
{
	size_t len = strlen(unit);
	/* accept singular and plural ("day", "days") */
	if (len > 1 && unit[len - 1] == 's')
		len--;
	if (len == 3 && !strncasecmp(unit, "day", 3))
		return ms + n * MS_PER_DAY;
	if (len == 4 && !strncasecmp(unit, "week", 4))
		return ms + n * 7 * MS_PER_DAY;
	if (len == 5 && !strncasecmp(unit, "month", 5))
		return add_months(ms, n);
	if (len == 7 && !strncasecmp(unit, "quarter", 7))
		return add_months(ms, n * 3);
	if (len == 4 && !strncasecmp(unit, "year", 4))
		return add_months(ms, n * 12);
	if (len == 4 && !strncasecmp(unit, "hour", 4))
		return ms + n * 3600000;
	if (len == 6 && !strncasecmp(unit, "minute", 6))
		return ms + n * 60000;
	if (len == 6 && !strncasecmp(unit, "second", 6))
		return ms + n * 1000;
	return ms; /* unknown unit: unchanged (the config loader validates units) */
}
