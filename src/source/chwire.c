/* chwire.c: ClickHouse wire details: URL rule, literals, TabSeparated rows, arrays, types, exceptions. */
#include "source/chwire.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/strbuf.h"
#include "source/tsvfield.h"

bool chw_base_url(const char *host, const char *port, struct strbuf *url, struct strbuf *why)
{
	const char *scheme = "http";
	const char *h = host && *host ? host : NULL;
	long p = 0;

	if (port && *port) {
		char *end;
		p = strtol(port, &end, 10);
		if (*end || p < 1 || p > 65535) {
			strbuf_addf(why, "option \"port\" is not a port number: \"%s\"", port);
			return false;
		}
	}
	if (!h) {
		strbuf_addf(url, "http://localhost:%ld/", p ? p : 8123);
		return true;
	}
	for (const char *s = h; *s; s++) {
		if ((unsigned char)*s <= ' ' || *s == 0x7f) {
			strbuf_addstr(why, "option \"host\" holds spaces or control characters");
			return false;
		}
	}
	const char *rest = h;
	if (!strncasecmp(h, "https://", 8)) {
		scheme = "https";
		rest = h + 8;
	} else if (!strncasecmp(h, "http://", 7)) {
		rest = h + 7;
	} else if (!strncasecmp(h, "http", 4)) {
		/* Grouparoo's prefix check took it for a URL, which then did not parse */
		strbuf_addf(why, "option \"host\" starts with \"http\" but is not an http:// or "
				 "https:// URL: \"%s\"", h);
		return false;
	} else if (strncasecmp(h, "localhost", 9)) {
		scheme = "https"; /* a name or address without a scheme: https, as Grouparoo */
	}
	/* host[:port] with an optional trailing slash, nothing else */
	size_t n = strlen(rest);
	if (n && rest[n - 1] == '/')
		n--;
	const char *at = n ? memchr(rest, '@', n) : NULL;
	if (at) { /* a URL with its credentials: never quote them */
		strbuf_addf(why, "option \"host\" holds a user and password (\"%.*s***@%.*s\"): put them in the "
				 "\"user\" and \"password\" options",
			    (int)(rest - h), h, (int)(n - (size_t)(at + 1 - rest)), at + 1);
		return false;
	}
	if (!n || memchr(rest, '/', n) || memchr(rest, '?', n) || memchr(rest, '#', n)) {
		strbuf_addf(why, "option \"host\" must be a host name or address, optionally with "
				 "http:// or https:// and a port: \"%s\"", h);
		return false;
	}
	const char *hp_end = rest + n, *colon = NULL;
	if (rest[0] == '[') { /* [v6]:port */
		const char *rb = memchr(rest, ']', n);
		if (!rb) {
			strbuf_addf(why, "option \"host\" has an unterminated IPv6 address: \"%s\"", h);
			return false;
		}
		if (rb + 1 < hp_end)
			colon = rb + 1;
		if (colon && *colon != ':') {
			strbuf_addf(why, "option \"host\" has text after its IPv6 address: \"%s\"", h);
			return false;
		}
	} else {
		colon = memchr(rest, ':', n);
	}
	size_t name_len = colon ? (size_t)(colon - rest) : n;
	long in_port = 0;
	if (colon) {
		char *end;
		in_port = strtol(colon + 1, &end, 10);
		if (end != hp_end || in_port < 1 || in_port > 65535) {
			strbuf_addf(why, "option \"host\" has a bad port: \"%s\"", h);
			return false;
		}
	}
	if (!name_len) {
		strbuf_addf(why, "option \"host\" has no host name: \"%s\"", h);
		return false;
	}
	bool https = !strcmp(scheme, "https");
	long use = p ? p : (https ? 443 : (in_port ? in_port : 8123));
	strbuf_addf(url, "%s://%.*s:%ld/", scheme, (int)name_len, rest, use);
	return true;
}

void chw_add_string_literal(struct strbuf *sb, const char *s, size_t len)
{
	strbuf_addch(sb, '\'');
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		switch (c) {
		case '\\': strbuf_addstr(sb, "\\\\"); break;
		case '\'': strbuf_addstr(sb, "\\'"); break;
		case '\n': strbuf_addstr(sb, "\\n"); break;
		case '\t': strbuf_addstr(sb, "\\t"); break;
		case '\r': strbuf_addstr(sb, "\\r"); break;
		case '\0': strbuf_addstr(sb, "\\0"); break;
		case '\b': strbuf_addstr(sb, "\\b"); break;
		case '\f': strbuf_addstr(sb, "\\f"); break;
		default:
			if (c < 0x20 || c == 0x7f)
				strbuf_addf(sb, "\\x%02X", c);
			else
				strbuf_addch(sb, (char)c);
		}
	}
	strbuf_addch(sb, '\'');
}

/* The escape after a backslash at *r (< end), decoded; *r moves past it. */
static char tsv_escape(char **r, const char *end)
{
	char *p = *r, c = *p++;
	switch (c) {
	case 'b': c = '\b'; break;
	case 'f': c = '\f'; break;
	case 'n': c = '\n'; break;
	case 'r': c = '\r'; break;
	case 't': c = '\t'; break;
	case '0': c = '\0'; break;
	case 'a': c = '\a'; break;
	case 'v': c = '\v'; break;
	case 'e': c = 0x1b; break;
	case 'x':
		if (end - p >= 2 && hex_digit_value(p[0]) >= 0 && hex_digit_value(p[1]) >= 0) {
			c = (char)(hex_digit_value(p[0]) * 16 + hex_digit_value(p[1]));
			p += 2;
		}
		break;
	default: /* \\ \' \" \/ and anything else: the character */
		break;
	}
	*r = p;
	return c;
}

bool chw_split_tsv(char *line, size_t len, struct chw_field *f, size_t n)
{
	char *r = line, *end = line + len;
	size_t i = 0;

	if (!memchr(line, '\\', len)) {
		/* no escape and no NULL (most rows): tabs found with memchr, nothing moves */
		for (;;) {
			char *tab = memchr(r, '\t', (size_t)(end - r));
			char *e = tab ? tab : end;
			if (i == n)
				return false;
			f[i++] = (struct chw_field){ r, (size_t)(e - r), false };
			*e = '\0';
			if (!tab)
				return i == n;
			r = tab + 1;
		}
	}

	for (;;) {
		if (i == n)
			return false;
		if (tsv_field_is_null(r, end)) {
			f[i++] = (struct chw_field){ "", 0, true };
			r += 2;
		} else {
			char *start = r, *w = tsv_field_decode(&r, end, tsv_escape);
			if (!w)
				return false;
			f[i++] = (struct chw_field){ start, (size_t)(w - start), false };
			*w = '\0'; /* over the tab or the end (the caller's line has room: '\n') */
		}
		if (r >= end)
			return i == n;
		r++; /* the tab */
	}
}

bool chw_exception(const char *text, size_t len, int *code, struct strbuf *msg)
{
	size_t i = 6;
	int c = 0;
	if (len < 8 || memcmp(text, "Code: ", 6) || !isdigit((unsigned char)text[6]))
		return false;
	while (i < len && isdigit((unsigned char)text[i]) && c < 100000)
		c = c * 10 + (text[i++] - '0');
	if (i >= len || (text[i] != ',' && text[i] != '.'))
		return false;
	*code = c;
	if (!msg)
		return true;
	/* the message: after "DB::Exception: " (first), up to ", e.what() = " or " (NAME) (version" */
	const char *s = text + i, *e = text + len;
	const char *dbx = NULL;
	for (const char *p = s; p + 15 <= e; p++)
		if (!memcmp(p, "DB::Exception: ", 15)) {
			dbx = p + 15;
			break;
		}
	s = dbx ? dbx : s + 1;
	while (s < e && *s == ' ')
		s++;
	const char *stop = e;
	for (const char *p = s; p + 13 <= e; p++)
		if (!memcmp(p, ", e.what() = ", 13)) {
			stop = p;
			break;
		}
	for (const char *p = s; p + 10 <= stop; p++)
		if (!memcmp(p, " (version ", 10)) {
			stop = p;
			/* and the " (ERROR_NAME)" before it */
			const char *q = p;
			if (q > s && q[-1] == ')') {
				const char *o = q - 1;
				while (o > s && *o != '(')
					o--;
				if (o > s && o[-1] == ' ')
					stop = o - 1;
			}
			break;
		}
	while (stop > s && (stop[-1] == '\n' || stop[-1] == '\r' || stop[-1] == ' '))
		stop--;
	size_t start = msg->len;
	for (const char *p = s; p < stop; p++)
		strbuf_addch(msg, *p == '\n' || *p == '\t' ? ' ' : *p);
	(void)start;
	return true;
}

static bool has_prefix(const char *s, size_t len, const char *pre)
{
	size_t n = strlen(pre);
	return len >= n && !memcmp(s, pre, n);
}

enum chw_type chw_type_parse(const char *type, size_t len, bool *nullable, const char **inner,
			     size_t *inner_len)
{
	*nullable = false;
	for (;;) {
		if (has_prefix(type, len, "Nullable(") && type[len - 1] == ')') {
			*nullable = true;
			type += 9;
			len -= 10;
		} else if (has_prefix(type, len, "LowCardinality(") && type[len - 1] == ')') {
			type += 15;
			len -= 16;
		} else {
			break;
		}
	}
	*inner = type;
	*inner_len = len;
	if (has_prefix(type, len, "Array("))
		return CHW_ARRAY;
	if (has_prefix(type, len, "Int") || has_prefix(type, len, "UInt")) {
		const char *d = type + (type[0] == 'U' ? 4 : 3);
		size_t k = len - (size_t)(d - type);
		if (!k)
			return CHW_OTHER;
		for (size_t i = 0; i < k; i++)
			if (!isdigit((unsigned char)d[i]))
				return CHW_OTHER; /* e.g. "Interval..." */
		return CHW_INT;
	}
	if ((len == 7 && !memcmp(type, "Float32", 7)) || (len == 7 && !memcmp(type, "Float64", 7)))
		return CHW_FLOAT;
	if (has_prefix(type, len, "Decimal"))
		return CHW_DECIMAL;
	if ((len == 6 && !memcmp(type, "String", 6)) || has_prefix(type, len, "FixedString("))
		return CHW_STRING;
	if ((len == 4 && !memcmp(type, "Date", 4)) || (len == 6 && !memcmp(type, "Date32", 6)))
		return CHW_DATE;
	if (has_prefix(type, len, "DateTime"))
		return CHW_DATETIME;
	if (len == 4 && !memcmp(type, "Bool", 4))
		return CHW_BOOL;
	if (len == 4 && !memcmp(type, "UUID", 4))
		return CHW_UUID;
	if (has_prefix(type, len, "Enum"))
		return CHW_ENUM;
	return CHW_OTHER;
}

bool chw_array_items(const char *text, size_t len, struct arena *a, struct chw_item **items, size_t *n)
{
	const char *p = text, *e = text + len;
	size_t cap = 8, k = 0;
	struct chw_item *out;

	if (len < 2 || p[0] != '[' || e[-1] != ']')
		return false;
	out = arena_alloc(a, cap * sizeof(*out));
	p++;
	e--;
	while (p < e) {
		struct chw_item it = { NULL, 0, false };
		if (*p == '\'') {
			char *buf = arena_alloc(a, (size_t)(e - p) + 1), *w = buf;
			p++;
			while (p < e && *p != '\'') {
				if (*p == '\\' && p + 1 < e) {
					char *q = (char *)p + 1;
					*w++ = tsv_escape(&q, e);
					p = q;
				} else {
					*w++ = *p++;
				}
			}
			if (p >= e)
				return false; /* unterminated */
			p++;
			*w = '\0';
			it.s = buf;
			it.len = (size_t)(w - buf);
		} else if (*p == '[' || *p == '(') {
			/* a nested array or tuple: its text, brackets balanced, quotes skipped */
			const char *s = p;
			int depth = 0;
			for (; p < e; p++) {
				if (*p == '\'') {
					for (p++; p < e && *p != '\''; p++)
						if (*p == '\\')
							p++;
					continue;
				}
				if (*p == '[' || *p == '(')
					depth++;
				else if ((*p == ']' || *p == ')') && --depth == 0) {
					p++;
					break;
				}
			}
			if (depth)
				return false;
			char *buf = arena_alloc(a, (size_t)(p - s) + 1);
			memcpy(buf, s, (size_t)(p - s));
			buf[p - s] = '\0';
			it.s = buf;
			it.len = (size_t)(p - s);
		} else {
			const char *s = p;
			while (p < e && *p != ',')
				p++;
			if (p == s)
				return false;
			if (p - s == 4 && !memcmp(s, "NULL", 4)) {
				it.null = true;
				it.s = "";
			} else {
				char *buf = arena_alloc(a, (size_t)(p - s) + 1);
				memcpy(buf, s, (size_t)(p - s));
				buf[p - s] = '\0';
				it.s = buf;
				it.len = (size_t)(p - s);
			}
		}
		if (k == cap) {
			struct chw_item *bigger = arena_alloc(a, 2 * cap * sizeof(*out));
			memcpy(bigger, out, cap * sizeof(*out));
			out = bigger;
			cap *= 2;
		}
		out[k++] = it;
		if (p < e) {
			if (*p != ',')
				return false;
			p++;
			if (p == e)
				return false; /* trailing comma */
		}
	}
	*items = out;
	*n = k;
	return true;
}
