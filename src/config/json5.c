/* json5.c: recursive-descent JSON5 parser with positions and hard limits. */
#include "config/json5.h"

#include "base/compat.h"
#include "base/strbuf.h"

#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct j5p {
	const unsigned char *p, *end;
	int line, col;
	int depth;
	struct arena *arena;
	struct j5_error *err;
	bool failed;
	const unsigned char *base; /* buf: node offsets count from here */
};

/* Linked list cell used while an array/object is being read (arena-owned). */
struct j5_cell {
	struct j5_cell *next;
	struct j5_member m;
};

static bool at_end(const struct j5p *ps) { return ps->p >= ps->end; }
static int peek(const struct j5p *ps) { return ps->p < ps->end ? *ps->p : -1; }
static int peek_at(const struct j5p *ps, size_t k)
{
	return (size_t)(ps->end - ps->p) > k ? ps->p[k] : -1;
}

/* Consume one byte, keeping line and column (columns count characters, not bytes). */
static void adv(struct j5p *ps)
{
	unsigned char c;
	if (at_end(ps))
		return;
	c = *ps->p++;
	if (c == '\n' || (c == '\r' && peek(ps) != '\n')) {
		ps->line++;
		ps->col = 1;
	} else if (c == '\r') {
		/* CR of CRLF: the LF moves the line */
	} else if ((c & 0xC0) != 0x80) {
		ps->col++;
	}
}

static void describe_found(const struct j5p *ps, char *buf, size_t len)
{
	int c = peek(ps);
	if (c < 0)
		snprintf(buf, len, "end of input");
	else if (c == '\'')
		snprintf(buf, len, "\"'\"");
	else if (c >= 0x21 && c < 0x7f)
		snprintf(buf, len, "'%c'", c);
	else if (c == ' ' || c == '\t')
		snprintf(buf, len, "whitespace");
	else if (c == '\n' || c == '\r')
		snprintf(buf, len, "end of line");
	else
		snprintf(buf, len, "byte 0x%02X", (unsigned)c);
}

static bool fail_at(struct j5p *ps, int line, int col, const char *fmt, ...) JOEY_PRINTF(4, 5);
static bool fail_at(struct j5p *ps, int line, int col, const char *fmt, ...)
{
	va_list ap;
	if (ps->failed)
		return false;
	ps->failed = true;
	ps->err->line = line;
	ps->err->col = col;
	va_start(ap, fmt);
	vsnprintf(ps->err->msg, sizeof(ps->err->msg), fmt, ap);
	va_end(ap);
	return false;
}

/* "expected X, found Y" at the current position. */
static bool fail_expected(struct j5p *ps, const char *what)
{
	char found[32];
	describe_found(ps, found, sizeof(found));
	return fail_at(ps, ps->line, ps->col, "expected %s, found %s", what, found);
}

/* Skip whitespace (incl. U+00A0, U+FEFF, U+2028, U+2029) and comments. */
static bool skip_ws(struct j5p *ps)
{
	while (!at_end(ps)) {
		int c = peek(ps);
		if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f') {
			adv(ps);
		} else if (c == 0xC2 && peek_at(ps, 1) == 0xA0) {
			adv(ps);
			adv(ps);
		} else if (c == 0xEF && peek_at(ps, 1) == 0xBB && peek_at(ps, 2) == 0xBF) {
			adv(ps);
			adv(ps);
			adv(ps);
		} else if (c == 0xE2 && peek_at(ps, 1) == 0x80 &&
			   (peek_at(ps, 2) == 0xA8 || peek_at(ps, 2) == 0xA9)) {
			adv(ps);
			adv(ps);
			adv(ps);
		} else if (c == '/' && peek_at(ps, 1) == '/') {
			while (!at_end(ps) && peek(ps) != '\n' && peek(ps) != '\r')
				adv(ps);
		} else if (c == '/' && peek_at(ps, 1) == '*') {
			int line = ps->line, col = ps->col;
			adv(ps);
			adv(ps);
			for (;;) {
				if (at_end(ps))
					return fail_at(ps, line, col, "unterminated comment");
				if (peek(ps) == '*' && peek_at(ps, 1) == '/') {
					adv(ps);
					adv(ps);
					break;
				}
				adv(ps);
			}
		} else if (c == '/') {
			return fail_at(ps, ps->line, ps->col,
				       "expected \"//\" or \"/*\" after '/', found %s",
				       peek_at(ps, 1) < 0 ? "end of input" : "another character");
		} else {
			break;
		}
	}
	return true;
}

static struct j5_node *new_node(struct j5p *ps, enum j5_type t, int line, int col)
{
	struct j5_node *n = arena_zalloc(ps->arena, sizeof(*n));
	n->type = t;
	n->line = line;
	n->col = col;
	n->start = (size_t)(ps->p - ps->base);
	return n;
}

static size_t put_utf8(char *out, uint32_t cp)
{
	if (cp < 0x80) {
		out[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		out[0] = (char)(0xC0 | (cp >> 6));
		out[1] = (char)(0x80 | (cp & 0x3F));
		return 2;
	}
	if (cp < 0x10000) {
		out[0] = (char)(0xE0 | (cp >> 12));
		out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
		out[2] = (char)(0x80 | (cp & 0x3F));
		return 3;
	}
	out[0] = (char)(0xF0 | (cp >> 18));
	out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
	out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
	out[3] = (char)(0x80 | (cp & 0x3F));
	return 4;
}

/* Read n hex digits at the cursor (consuming them); -1 if they are not there. */
static long read_hex(struct j5p *ps, int n)
{
	long v = 0;
	for (int i = 0; i < n; i++) {
		int h = hex_digit_value(peek(ps));
		if (h < 0)
			return -1;
		v = v * 16 + h;
		adv(ps);
	}
	return v;
}

/*
 * The code of a \x (2 digits) or \u (4 digits) escape, its letter at the cursor: the
 * digits read, or -1 after reporting (at line:col) bad digits or a NUL character.
 */
static long escape_code(struct j5p *ps, char letter, int digits, int line, int col)
{
	long v;
	adv(ps);
	v = read_hex(ps, digits);
	if (v < 0)
		fail_at(ps, line, col, "invalid \\%c escape: expected %d hexadecimal digits", letter, digits);
	else if (v == 0)
		fail_at(ps, line, col, "NUL character in string");
	return v > 0 ? v : -1;
}

/*
 * Read a quoted string at the cursor. The decoded text is never longer than the
 * source text (every escape shrinks or keeps its length), so the buffer is sized from
 * a first scan for the closing quote.
 */
static bool parse_string(struct j5p *ps, const char **out, size_t *out_len)
{
	int q = peek(ps);
	int line = ps->line, col = ps->col;
	const unsigned char *s;
	size_t raw = 0;
	char *buf;
	size_t n = 0;

	adv(ps);
	s = ps->p;
	/* scan for the end */
	while (s + raw < ps->end && s[raw] != q) {
		if (s[raw] == '\\' && s + raw + 1 < ps->end)
			raw++;
		raw++;
	}
	if (s + raw >= ps->end)
		return fail_at(ps, line, col, "unterminated string");
	if (raw > J5_MAX_STRING)
		return fail_at(ps, line, col, "string longer than %zu bytes", J5_MAX_STRING);
	buf = arena_alloc(ps->arena, raw + 1);

	while (peek(ps) != q) {
		int c = peek(ps);
		if (c < 0)
			return fail_at(ps, line, col, "unterminated string");
		if (c == '\n' || c == '\r')
			return fail_at(ps, ps->line, ps->col,
				       "unescaped line break in string (end the line with a backslash to continue it)");
		if (c == 0)
			return fail_at(ps, ps->line, ps->col, "NUL character in string");
		if (c != '\\') {
			buf[n++] = (char)c;
			adv(ps);
			continue;
		}
		int eline = ps->line, ecol = ps->col;
		adv(ps);
		c = peek(ps);
		switch (c) {
		case 'b': buf[n++] = '\b'; adv(ps); break;
		case 'f': buf[n++] = '\f'; adv(ps); break;
		case 'n': buf[n++] = '\n'; adv(ps); break;
		case 'r': buf[n++] = '\r'; adv(ps); break;
		case 't': buf[n++] = '\t'; adv(ps); break;
		case 'v': buf[n++] = '\v'; adv(ps); break;
		case '0':
			return fail_at(ps, eline, ecol, "NUL character in string");
		case '\n':
			adv(ps);
			break;
		case '\r':
			adv(ps);
			if (peek(ps) == '\n')
				adv(ps);
			break;
		case 'x': {
			long v = escape_code(ps, 'x', 2, eline, ecol);
			if (v < 0)
				return false;
			n += put_utf8(buf + n, (uint32_t)v);
			break;
		}
		case 'u': {
			long v = escape_code(ps, 'u', 4, eline, ecol), lo;
			if (v < 0)
				return false;
			if (v >= 0xD800 && v <= 0xDBFF) {
				if (peek(ps) != '\\' || peek_at(ps, 1) != 'u')
					return fail_at(ps, eline, ecol, "unpaired UTF-16 surrogate in \\u escape");
				adv(ps);
				adv(ps);
				lo = read_hex(ps, 4);
				if (lo < 0xDC00 || lo > 0xDFFF)
					return fail_at(ps, eline, ecol, "unpaired UTF-16 surrogate in \\u escape");
				v = 0x10000 + ((v - 0xD800) << 10) + (lo - 0xDC00);
			} else if (v >= 0xDC00 && v <= 0xDFFF) {
				return fail_at(ps, eline, ecol, "unpaired UTF-16 surrogate in \\u escape");
			}
			n += put_utf8(buf + n, (uint32_t)v);
			break;
		}
		case -1:
			return fail_at(ps, line, col, "unterminated string");
		default:
			if (c >= '1' && c <= '9')
				return fail_at(ps, eline, ecol, "invalid escape \"\\%c\" in string", c);
			if (c == 0xE2 && peek_at(ps, 1) == 0x80 &&
			    (peek_at(ps, 2) == 0xA8 || peek_at(ps, 2) == 0xA9)) {
				adv(ps);
				adv(ps);
				adv(ps);
				break;
			}
			/* any other character stands for itself (\' \" \\ \/ ...) */
			buf[n++] = (char)c;
			adv(ps);
			break;
		}
	}
	adv(ps); /* closing quote */
	buf[n] = '\0';
	*out = buf;
	*out_len = n;
	return true;
}

static bool is_ident_start(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == '$' || c >= 0x80;
}
static bool is_ident_char(int c) { return is_ident_start(c) || (c >= '0' && c <= '9'); }

static bool parse_ident(struct j5p *ps, const char **out, size_t *out_len)
{
	const unsigned char *s = ps->p;
	size_t n = 0;
	while (!at_end(ps) && is_ident_char(peek(ps))) {
		/* stop at whitespace written as UTF-8 (NBSP, LS, PS, BOM) */
		int c = peek(ps);
		if ((c == 0xC2 && peek_at(ps, 1) == 0xA0) ||
		    (c == 0xE2 && peek_at(ps, 1) == 0x80 && (peek_at(ps, 2) == 0xA8 || peek_at(ps, 2) == 0xA9)) ||
		    (c == 0xEF && peek_at(ps, 1) == 0xBB && peek_at(ps, 2) == 0xBF))
			break;
		adv(ps);
		n++;
	}
	if (n > J5_MAX_STRING)
		return fail_at(ps, ps->line, ps->col, "identifier longer than %zu bytes", J5_MAX_STRING);
	*out = arena_strndup(ps->arena, (const char *)s, n);
	*out_len = n;
	return true;
}

static bool parse_number(struct j5p *ps, struct j5_node *node)
{
	const unsigned char *start = ps->p;
	bool neg = false;
	char tmp[128];
	size_t len;

	if (peek(ps) == '+' || peek(ps) == '-') {
		neg = peek(ps) == '-';
		adv(ps);
	}
	if (peek(ps) == 'I' || peek(ps) == 'N')
		return fail_at(ps, node->line, node->col,
			       "Infinity and NaN are not supported in joey config files");
	if (peek(ps) == '0' && (peek_at(ps, 1) == 'x' || peek_at(ps, 1) == 'X')) {
		uint64_t v = 0;
		int digits = 0;
		adv(ps);
		adv(ps);
		while (hex_digit_value(peek(ps)) >= 0) {
			if (v > (UINT64_MAX >> 4))
				return fail_at(ps, node->line, node->col, "hexadecimal number too large");
			v = v * 16 + (uint64_t)hex_digit_value(peek(ps));
			adv(ps);
			digits++;
		}
		if (!digits)
			return fail_expected(ps, "a hexadecimal digit");
		node->num = neg ? -(double)v : (double)v;
		node->is_int = true;
		goto done;
	}
	bool int_digits = false, frac_digits = false;
	if (peek(ps) == '0') {
		adv(ps);
		int_digits = true;
		if (peek(ps) >= '0' && peek(ps) <= '9')
			return fail_at(ps, node->line, node->col, "numbers must not have leading zeros");
	} else {
		while (peek(ps) >= '0' && peek(ps) <= '9') {
			adv(ps);
			int_digits = true;
		}
	}
	node->is_int = true;
	if (peek(ps) == '.') {
		node->is_int = false;
		adv(ps);
		while (peek(ps) >= '0' && peek(ps) <= '9') {
			adv(ps);
			frac_digits = true;
		}
	}
	if (!int_digits && !frac_digits)
		return fail_at(ps, node->line, node->col, "expected a digit in number");
	if (peek(ps) == 'e' || peek(ps) == 'E') {
		node->is_int = false;
		adv(ps);
		if (peek(ps) == '+' || peek(ps) == '-')
			adv(ps);
		if (!(peek(ps) >= '0' && peek(ps) <= '9'))
			return fail_expected(ps, "a digit in the exponent");
		while (peek(ps) >= '0' && peek(ps) <= '9')
			adv(ps);
	}
	len = (size_t)(ps->p - start);
	if (len >= sizeof(tmp))
		return fail_at(ps, node->line, node->col, "number too long");
	memcpy(tmp, start, len);
	tmp[len] = '\0';
	node->num = strtod(tmp[0] == '+' ? tmp + 1 : tmp, NULL);
	if (!isfinite(node->num))
		return fail_at(ps, node->line, node->col, "number out of range");
done:
	if (is_ident_char(peek(ps)))
		return fail_expected(ps, "the end of the number");
	/* canonical text */
	if (node->is_int && fabs(node->num) < 9007199254740992.0)
		node->str = arena_printf(ps->arena, "%lld", (long long)node->num);
	else
		node->str = arena_printf(ps->arena, "%.17g", node->num);
	node->len = strlen(node->str);
	return true;
}

static struct j5_node *parse_value(struct j5p *ps);

/*
 * After an element of an array or object: white space, then ',' (consumed; returns 1:
 * another element may follow), or close (not consumed; returns 0: the list ends); else
 * what was expected is reported and -1 returned.
 */
static int list_next(struct j5p *ps, int close, const char *what)
{
	if (!skip_ws(ps))
		return -1;
	if (peek(ps) == ',') {
		adv(ps);
		return 1;
	}
	if (peek(ps) == close)
		return 0;
	fail_expected(ps, what);
	return -1;
}

/* An array's element: its value in a new cell (arena); NULL on error (reported). */
static struct j5_cell *parse_element(struct j5p *ps)
{
	struct j5_node *v = parse_value(ps);
	if (!v)
		return NULL;
	struct j5_cell *cell = arena_zalloc(ps->arena, sizeof(*cell));
	cell->m.value = v;
	return cell;
}

/* An object's member: its key, ':' and value in a new cell (arena); NULL on error (reported). */
static struct j5_cell *parse_member(struct j5p *ps)
{
	int c = peek(ps);
	struct j5_cell *cell = arena_zalloc(ps->arena, sizeof(*cell));
	cell->m.line = ps->line;
	cell->m.col = ps->col;
	if (c == '"' || c == '\'') {
		if (!parse_string(ps, &cell->m.key, &cell->m.key_len))
			return NULL;
	} else if (c >= 0 && is_ident_start(c)) {
		if (!parse_ident(ps, &cell->m.key, &cell->m.key_len))
			return NULL;
	} else {
		fail_expected(ps, "a key or '}'");
		return NULL;
	}
	if (!skip_ws(ps))
		return NULL;
	if (peek(ps) != ':') {
		fail_expected(ps, "':' after the object key");
		return NULL;
	}
	adv(ps);
	if (!skip_ws(ps))
		return NULL;
	cell->m.value = parse_value(ps);
	if (!cell->m.value)
		return NULL;
	return cell;
}

/*
 * The elements of an array or object (node->type), from its opening bracket (at ps)
 * past its closing one, in order into node->items or node->members. Returns node, or
 * NULL on error (reported).
 */
static struct j5_node *parse_list(struct j5p *ps, struct j5_node *node)
{
	bool obj = node->type == J5_OBJECT;
	int close = obj ? '}' : ']';
	struct j5_cell *head = NULL, **tail = &head;
	size_t n = 0;

	adv(ps); /* [ or { */
	for (;;) {
		if (!skip_ws(ps))
			return NULL;
		if (peek(ps) == close)
			break;
		struct j5_cell *cell = obj ? parse_member(ps) : parse_element(ps);
		if (!cell)
			return NULL;
		*tail = cell;
		tail = &cell->next;
		n++;
		int next = list_next(ps, close, obj ? "',' or '}' after an object member" : "',' or ']' after an array element");
		if (next < 0)
			return NULL;
		if (!next)
			break;
	}
	adv(ps); /* ] or } */
	node->n = n;
	if (obj)
		node->members = arena_alloc(ps->arena, (n ? n : 1) * sizeof(*node->members));
	else
		node->items = arena_alloc(ps->arena, (n ? n : 1) * sizeof(*node->items));
	n = 0;
	for (struct j5_cell *c = head; c; c = c->next, n++)
		if (obj)
			node->members[n] = c->m;
		else
			node->items[n] = c->m.value;
	return node;
}

static bool match_word(const struct j5p *ps, const char *w)
{
	size_t n = strlen(w);
	if ((size_t)(ps->end - ps->p) < n || memcmp(ps->p, w, n))
		return false;
	return (size_t)(ps->end - ps->p) == n || !is_ident_char(ps->p[n]);
}

static struct j5_node *parse_value_at(struct j5p *ps);

/* One value; its node records where its text ends. */
static struct j5_node *parse_value(struct j5p *ps)
{
	struct j5_node *n = parse_value_at(ps);
	if (n)
		n->end = (size_t)(ps->p - ps->base);
	return n;
}

static struct j5_node *parse_value_at(struct j5p *ps)
{
	int c;
	struct j5_node *node;

	if (!skip_ws(ps))
		return NULL;
	c = peek(ps);
	node = new_node(ps, J5_NULL, ps->line, ps->col);
	if (c == '{' || c == '[') {
		struct j5_node *r;
		if (ps->depth >= J5_MAX_DEPTH) {
			fail_at(ps, ps->line, ps->col, "nesting deeper than %d levels", J5_MAX_DEPTH);
			return NULL;
		}
		ps->depth++;
		node->type = c == '{' ? J5_OBJECT : J5_ARRAY;
		r = parse_list(ps, node);
		ps->depth--;
		return r;
	}
	if (c == '"' || c == '\'') {
		node->type = J5_STRING;
		return parse_string(ps, &node->str, &node->len) ? node : NULL;
	}
	if (c == '-' || c == '+' || c == '.' || (c >= '0' && c <= '9') || match_word(ps, "Infinity") ||
	    match_word(ps, "NaN")) {
		node->type = J5_NUMBER;
		return parse_number(ps, node) ? node : NULL;
	}
	if (match_word(ps, "true") || match_word(ps, "false")) {
		node->type = J5_BOOL;
		node->b = c == 't';
		for (int i = node->b ? 4 : 5; i > 0; i--)
			adv(ps);
		return node;
	}
	if (match_word(ps, "null")) {
		for (int i = 0; i < 4; i++)
			adv(ps);
		return node;
	}
	if (c >= 0 && is_ident_start(c)) {
		const char *w;
		size_t wl;
		int line = ps->line, col = ps->col;
		if (parse_ident(ps, &w, &wl))
			fail_at(ps, line, col,
				"expected a value, found \"%.40s\" (strings must be quoted)", w);
		return NULL;
	}
	fail_expected(ps, "a value");
	return NULL;
}

bool json5_parse(const char *buf, size_t len, struct arena *arena, struct j5_node **out,
		 struct j5_error *err)
{
	struct j5p ps = { (const unsigned char *)buf, (const unsigned char *)buf + len, 1, 1, 0,
			  arena, err, false, (const unsigned char *)buf };
	struct j5_node *root;

	*out = NULL;
	err->line = err->col = 0;
	err->msg[0] = '\0';
	if (len > J5_MAX_INPUT) {
		err->line = err->col = 1;
		snprintf(err->msg, sizeof(err->msg), "file larger than %zu MiB", J5_MAX_INPUT >> 20);
		return false;
	}
	root = parse_value(&ps);
	if (!root)
		return false;
	if (!skip_ws(&ps))
		return false;
	if (!at_end(&ps)) {
		fail_expected(&ps, "end of input after the top-level value");
		return false;
	}
	*out = root;
	return true;
}

const struct j5_member *j5_member(const struct j5_node *obj, const char *key)
{
	const struct j5_member *found = NULL;
	if (!obj || obj->type != J5_OBJECT)
		return NULL;
	for (size_t i = 0; i < obj->n; i++)
		if (!strcmp(obj->members[i].key, key))
			found = &obj->members[i];
	return found;
}

const char *j5_type_name(enum j5_type t)
{
	switch (t) {
	case J5_NULL: return "null";
	case J5_BOOL: return "boolean";
	case J5_NUMBER: return "number";
	case J5_STRING: return "string";
	case J5_ARRAY: return "array";
	case J5_OBJECT: return "object";
	}
	return "value";
}
