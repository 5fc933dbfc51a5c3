/*
 * time_fallback.c: a weak stand-in for time_parse() while src/base/timeutil.c is being
 * written. The strong definition in joey_base replaces it at link time whenever
 * timeutil.o is linked; delete this file once timeutil.c has landed.
 */
#include <ctype.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "base/timeutil.h"

static int64_t days_civil(int64_t y, unsigned m, unsigned d)
{
	y -= m <= 2;
	const int64_t era = (y >= 0 ? y : y - 399) / 400;
	const unsigned yoe = (unsigned)(y - era * 400);
	const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

static bool num(const char *s, size_t len, size_t *i, int digits, int *out)
{
	int v = 0;
	for (int k = 0; k < digits; k++) {
		if (*i >= len || !isdigit((unsigned char)s[*i]))
			return false;
		v = v * 10 + (s[(*i)++] - '0');
	}
	*out = v;
	return true;
}

__attribute__((weak)) bool time_parse(const char *s, size_t len, int64_t *ms_out)
{
	size_t i = 0;
	int y, mo, d, h = 0, mi = 0, sec = 0, ms = 0, tz = 0;

	if (len && len < 20) {
		bool all = true;
		for (size_t k = (s[0] == '-'); k < len; k++)
			all = all && isdigit((unsigned char)s[k]);
		if (all && len > (size_t)(s[0] == '-')) {
			long long v = strtoll(s, NULL, 10);
			*ms_out = (v <= 100000000000LL && v >= -100000000000LL) ? v * 1000 : v;
			return true;
		}
	}
	if (!num(s, len, &i, 4, &y) || i >= len || s[i++] != '-' || !num(s, len, &i, 2, &mo) ||
	    i >= len || s[i++] != '-' || !num(s, len, &i, 2, &d))
		return false;
	if (mo < 1 || mo > 12 || d < 1 || d > 31)
		return false;
	if (i < len && (s[i] == 'T' || s[i] == ' ')) {
		i++;
		if (!num(s, len, &i, 2, &h) || i >= len || s[i++] != ':' || !num(s, len, &i, 2, &mi))
			return false;
		if (i < len && s[i] == ':') {
			i++;
			if (!num(s, len, &i, 2, &sec))
				return false;
			if (i < len && s[i] == '.') {
				int scale = 100;
				i++;
				if (i >= len || !isdigit((unsigned char)s[i]))
					return false;
				while (i < len && isdigit((unsigned char)s[i])) {
					ms += (s[i++] - '0') * scale;
					scale /= 10;
				}
			}
		}
		if (h > 23 || mi > 59 || sec > 60)
			return false;
		if (i < len && s[i] == 'Z') {
			i++;
		} else if (i < len && (s[i] == '+' || s[i] == '-')) {
			int sign = s[i++] == '-' ? -1 : 1, th, tm = 0;
			if (!num(s, len, &i, 2, &th))
				return false;
			if (i < len && s[i] == ':')
				i++;
			if (i < len && !num(s, len, &i, 2, &tm))
				return false;
			tz = sign * (th * 60 + tm);
		}
	}
	if (i != len)
		return false;
	*ms_out = ((days_civil(y, (unsigned)mo, (unsigned)d) * 86400 + h * 3600 + mi * 60 + sec - tz * 60) * 1000) + ms;
	return true;
}
