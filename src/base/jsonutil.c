/* jsonutil.c: JSON helpers shared by the subsystems (jsonutil.h). */
#include "base/jsonutil.h"

#include <stddef.h>
#include <string.h>

#include "base/strbuf.h"

/* Length of the valid UTF-8 sequence at s (RFC 3629: no overlongs, no surrogates), or 0. */
static size_t utf8_seq(const unsigned char *s)
{
	unsigned c = s[0];
	size_t n;
	unsigned cp, min;
	if (c < 0x80)
		return 1;
	if (c >= 0xC2 && c <= 0xDF)
		n = 2, cp = c & 0x1F, min = 0x80;
	else if (c >= 0xE0 && c <= 0xEF)
		n = 3, cp = c & 0x0F, min = 0x800;
	else if (c >= 0xF0 && c <= 0xF4)
		n = 4, cp = c & 0x07, min = 0x10000;
	else
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xC0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3F);
	}
	if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
		return 0;
	return n;
}

/* A JSON string of s with every byte that is not valid UTF-8 as U+FFFD (jansson refuses them). */
json_t *json_string_lossy(const char *s)
{
	json_t *j = json_string(s);
	if (j)
		return j;
	struct strbuf sb = STRBUF_INIT;
	for (const unsigned char *p = (const unsigned char *)s; *p;) {
		size_t n = utf8_seq(p);
		if (n) {
			strbuf_add(&sb, p, n);
			p += n;
		} else {
			strbuf_addstr(&sb, "\xEF\xBF\xBD");
			p++;
		}
	}
	j = json_string(sb.buf);
	strbuf_release(&sb);
	return j;
}


const char *json_skip_value(const char *p, const char *end)
{
	const char *s = p;
	int depth = 0;
	do {
		if (s >= end)
			return NULL;
		if (*s == '"') {
			/* to the closing quote: one not escaped by an odd run of backslashes */
			for (s++;;) {
				const char *q = memchr(s, '"', (size_t)(end - s));
				if (!q)
					return NULL;
				size_t bs = 0;
				while (q - bs > s && q[-1 - (ptrdiff_t)bs] == '\\')
					bs++;
				s = q + 1;
				if (!(bs & 1))
					break;
			}
		} else if (*s == '[') {
			depth++;
			s++;
			continue;
		} else if (*s == ']') {
			if (!depth)
				return NULL;
			depth--;
			s++;
		} else if (*s == '{' || *s == '}') {
			return NULL;
		} else {
			while (s < end && *s != ',' && *s != ']' && *s != '}')
				s++;
		}
		if (depth && s < end && *s == ',')
			s++;
	} while (depth);
	return s;
}
