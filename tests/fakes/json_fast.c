/* json_fast.c: braze-sim's fast JSON reader: jansson values, without jansson's lexer. */
#include "json_fast.h"

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>

/*
 * jansson's json_loadb reads a character at a time through a stream and converts every
 * real number through the locale; for a 75-user /users/track body that was most of
 * the simulator's CPU. This reader scans the buffer directly and builds the same
 * values with jansson's API. It accepts a subset of what json_loadb accepts and gives
 * exactly the same value for it (same types, same key order, a repeated key keeps its
 * first place and its last value); for anything else (any syntax error, a \u0000, a
 * key with a NUL, an integer out of range, a real that overflows, invalid UTF-8, very
 * deep nesting, a number too long to copy) it gives up and the caller asks json_loadb,
 * whose answer (and error message) then stands. json_fast_test.c compares the two.
 */

#define MAX_DEPTH 512  /* jansson's limit is 2048: deeper input goes to jansson */
#define MAX_NUMBER 64  /* longer number text goes to jansson */

struct rd {
	const char *p, *end;
	bool newline; /* a '\n' or '\r' was skipped (the only place valid JSON has them) */
	char *scratch; /* unescaped string (NUL-terminated) */
	size_t cap;
};

static void skip_ws(struct rd *r)
{
	while (r->p < r->end && (*r->p == ' ' || *r->p == '\n' || *r->p == '\r' || *r->p == '\t')) {
		r->newline |= *r->p == '\n' || *r->p == '\r';
		r->p++;
	}
}

/* Length of the valid UTF-8 sequence at s (jansson's rules), or 0. */
static size_t utf8_seq(const unsigned char *s, const unsigned char *end)
{
	unsigned c = s[0];
	size_t n;
	uint32_t v;
	if (c >= 0xC2 && c <= 0xDF)
		n = 2, v = c & 0x1F;
	else if (c >= 0xE0 && c <= 0xEF)
		n = 3, v = c & 0x0F;
	else if (c >= 0xF0 && c <= 0xF4)
		n = 4, v = c & 0x07;
	else
		return 0;
	if ((size_t)(end - s) < n)
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xC0) != 0x80)
			return 0;
		v = (v << 6) | (s[i] & 0x3F);
	}
	if (v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF) || (n == 3 && v < 0x800) || (n == 4 && v < 0x10000))
		return 0;
	return n;
}

static int hex4(const char *p)
{
	int v = 0;
	for (int i = 0; i < 4; i++) {
		char c = p[i];
		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= c - '0';
		else if (c >= 'a' && c <= 'f')
			v |= c - 'a' + 10;
		else if (c >= 'A' && c <= 'F')
			v |= c - 'A' + 10;
		else
			return -1;
	}
	return v;
}

static bool scratch_room(struct rd *r, size_t need)
{
	if (need <= r->cap)
		return true;
	size_t cap = r->cap ? r->cap : 256;
	while (cap < need)
		cap *= 2;
	char *s = realloc(r->scratch, cap);
	if (!s)
		return false;
	r->scratch = s;
	r->cap = cap;
	return true;
}

/* The string at r->p (after its opening quote) into r->scratch; *len its length. */
static bool read_string(struct rd *r, size_t *len)
{
	const char *p = r->p;
	size_t n = 0;
	/* the plain run first: most strings have no escape and no non-ASCII byte */
	const char *q = p;
	while (q < r->end && *q != '"' && *q != '\\' && (unsigned char)*q >= 0x20 && (unsigned char)*q < 0x80)
		q++;
	if (!scratch_room(r, (size_t)(q - p) + 1))
		return false;
	memcpy(r->scratch, p, (size_t)(q - p));
	n = (size_t)(q - p);
	p = q;
	for (;;) {
		if (p >= r->end)
			return false;
		unsigned char c = (unsigned char)*p;
		if (c == '"')
			break;
		if (!scratch_room(r, n + 5))
			return false;
		if (c < 0x20)
			return false;
		if (c >= 0x80) {
			size_t k = utf8_seq((const unsigned char *)p, (const unsigned char *)r->end);
			if (!k)
				return false;
			memcpy(r->scratch + n, p, k);
			n += k;
			p += k;
			continue;
		}
		if (c != '\\') {
			r->scratch[n++] = (char)c;
			p++;
			continue;
		}
		if (r->end - p < 2)
			return false;
		char e = p[1];
		p += 2;
		switch (e) {
		case '"': r->scratch[n++] = '"'; continue;
		case '\\': r->scratch[n++] = '\\'; continue;
		case '/': r->scratch[n++] = '/'; continue;
		case 'b': r->scratch[n++] = '\b'; continue;
		case 'f': r->scratch[n++] = '\f'; continue;
		case 'n': r->scratch[n++] = '\n'; continue;
		case 'r': r->scratch[n++] = '\r'; continue;
		case 't': r->scratch[n++] = '\t'; continue;
		case 'u': break;
		default: return false;
		}
		if (r->end - p < 4)
			return false;
		int32_t v = hex4(p);
		p += 4;
		if (v <= 0) /* invalid, or \u0000 (jansson refuses it without JSON_ALLOW_NUL) */
			return false;
		if (v >= 0xDC00 && v <= 0xDFFF)
			return false;
		if (v >= 0xD800 && v <= 0xDBFF) {
			if (r->end - p < 6 || p[0] != '\\' || p[1] != 'u')
				return false;
			int32_t lo = hex4(p + 2);
			if (lo < 0xDC00 || lo > 0xDFFF)
				return false;
			p += 6;
			v = ((v - 0xD800) << 10) + (lo - 0xDC00) + 0x10000;
		}
		char *o = r->scratch + n;
		if (v < 0x80) {
			o[0] = (char)v;
			n += 1;
		} else if (v < 0x800) {
			o[0] = (char)(0xC0 | (v >> 6));
			o[1] = (char)(0x80 | (v & 0x3F));
			n += 2;
		} else if (v < 0x10000) {
			o[0] = (char)(0xE0 | (v >> 12));
			o[1] = (char)(0x80 | ((v >> 6) & 0x3F));
			o[2] = (char)(0x80 | (v & 0x3F));
			n += 3;
		} else {
			o[0] = (char)(0xF0 | (v >> 18));
			o[1] = (char)(0x80 | ((v >> 12) & 0x3F));
			o[2] = (char)(0x80 | ((v >> 6) & 0x3F));
			o[3] = (char)(0x80 | (v & 0x3F));
			n += 4;
		}
	}
	r->scratch[n] = 0;
	r->p = p + 1;
	*len = n;
	return true;
}

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static json_t *read_number(struct rd *r)
{
	const char *s = r->p, *p = s;
	bool real = false;
	char buf[MAX_NUMBER + 1];
	if (p < r->end && *p == '-')
		p++;
	if (p >= r->end || !is_digit(*p))
		return NULL;
	if (*p == '0') {
		p++;
		if (p < r->end && is_digit(*p))
			return NULL;
	} else {
		while (p < r->end && is_digit(*p))
			p++;
	}
	if (p < r->end && *p == '.') {
		real = true;
		p++;
		if (p >= r->end || !is_digit(*p))
			return NULL;
		while (p < r->end && is_digit(*p))
			p++;
	}
	if (p < r->end && (*p == 'e' || *p == 'E')) {
		real = true;
		p++;
		if (p < r->end && (*p == '+' || *p == '-'))
			p++;
		if (p >= r->end || !is_digit(*p))
			return NULL;
		while (p < r->end && is_digit(*p))
			p++;
	}
	size_t n = (size_t)(p - s);
	if (n > MAX_NUMBER)
		return NULL;
	memcpy(buf, s, n);
	buf[n] = 0;
	r->p = p;
	errno = 0;
	if (!real) {
		long long v = strtoll(buf, NULL, 10);
		return errno == ERANGE ? NULL : json_integer((json_int_t)v);
	}
	double d = strtod(buf, NULL);
	if (errno == ERANGE && (d == HUGE_VAL || d == -HUGE_VAL))
		return NULL; /* jansson: "real number overflow" */
	return json_real(d);
}

static bool literal(struct rd *r, const char *word, size_t n)
{
	if ((size_t)(r->end - r->p) < n || memcmp(r->p, word, n))
		return false;
	r->p += n;
	return true;
}

static json_t *read_value(struct rd *r, int depth)
{
	json_t *v = NULL;
	size_t len;
	if (depth > MAX_DEPTH)
		return NULL;
	skip_ws(r);
	if (r->p >= r->end)
		return NULL;
	switch (*r->p) {
	case '{':
		r->p++;
		v = json_object();
		skip_ws(r);
		if (r->p < r->end && *r->p == '}') {
			r->p++;
			return v;
		}
		for (;;) {
			skip_ws(r);
			if (r->p >= r->end || *r->p != '"')
				goto fail;
			r->p++;
			if (!read_string(r, &len) || memchr(r->scratch, 0, len))
				goto fail;
			/* the value's strings reuse the scratch buffer: keep the key apart */
			char kbuf[128], *key = len < sizeof(kbuf) ? kbuf : malloc(len + 1);
			if (!key)
				goto fail;
			memcpy(key, r->scratch, len + 1);
			skip_ws(r);
			json_t *x = NULL;
			if (r->p < r->end && *r->p == ':') {
				r->p++;
				x = read_value(r, depth + 1);
			}
			bool set = x && !json_object_setn_new_nocheck(v, key, len, x);
			if (key != kbuf)
				free(key);
			if (!set)
				goto fail;
			skip_ws(r);
			if (r->p < r->end && *r->p == ',') {
				r->p++;
				continue;
			}
			if (r->p < r->end && *r->p == '}') {
				r->p++;
				return v;
			}
			goto fail;
		}
	case '[':
		r->p++;
		v = json_array();
		skip_ws(r);
		if (r->p < r->end && *r->p == ']') {
			r->p++;
			return v;
		}
		for (;;) {
			json_t *x = read_value(r, depth + 1);
			if (!x || json_array_append_new(v, x))
				goto fail;
			skip_ws(r);
			if (r->p < r->end && *r->p == ',') {
				r->p++;
				continue;
			}
			if (r->p < r->end && *r->p == ']') {
				r->p++;
				return v;
			}
			goto fail;
		}
	case '"':
		r->p++;
		if (!read_string(r, &len) || memchr(r->scratch, 0, len))
			return NULL;
		return json_stringn_nocheck(r->scratch, len);
	case 't':
		return literal(r, "true", 4) ? json_true() : NULL;
	case 'f':
		return literal(r, "false", 5) ? json_false() : NULL;
	case 'n':
		return literal(r, "null", 4) ? json_null() : NULL;
	default:
		return read_number(r);
	}
fail:
	json_decref(v);
	return NULL;
}

json_t *json_fast_loadb(const char *buf, size_t len, bool *one_line)
{
	struct rd r = { buf, buf + len, false, NULL, 0 };
	json_t *v = NULL;
	skip_ws(&r);
	/* like json_loadb without JSON_DECODE_ANY: an object or an array, then the end */
	if (r.p < r.end && (*r.p == '{' || *r.p == '[')) {
		v = read_value(&r, 1);
		skip_ws(&r);
		if (v && r.p != r.end) {
			json_decref(v);
			v = NULL;
		}
	}
	free(r.scratch);
	if (one_line)
		*one_line = v && !r.newline;
	return v;
}
