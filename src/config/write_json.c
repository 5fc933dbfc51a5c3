/*
 * write_json.c: serialising config objects back to Grouparoo JSON: JSON5 nodes to
 * jansson values, the pretty printer (json_dumps' layout, shortest reals), and splicing
 * an object's new text into its file so every other byte is kept. Returns owned
 * strings and values (write_internal.h); called by write.c and write_secrets.c.
 */
#include "config/write_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/strbuf.h"
#include "base/xalloc.h"

/* ---- JSON: JSON5 nodes to jansson, and the pretty printer ---- */

/* A new jansson value (owned) for n (borrowed). */
json_t *cw_j5_to_json(const struct j5_node *n)
{
	json_t *v;
	switch (n->type) {
	case J5_NULL: return json_null();
	case J5_BOOL: return json_boolean(n->b);
	case J5_NUMBER:
		if (n->is_int && fabs(n->num) < 9007199254740992.0)
			return json_integer((json_int_t)n->num);
		return json_real(n->num); /* finite: the parser rejects the rest */
	case J5_STRING: return json_stringn_nocheck(n->str, n->len);
	case J5_ARRAY:
		v = json_array();
		for (size_t i = 0; i < n->n; i++)
			json_array_append_new(v, cw_j5_to_json(n->items[i]));
		return v;
	case J5_OBJECT:
		v = json_object();
		for (size_t i = 0; i < n->n; i++)
			json_object_set_new_nocheck(v, n->members[i].key, cw_j5_to_json(n->members[i].value));
		return v;
	}
	return json_null();
}

static void add_indent(struct strbuf *sb, int depth)
{
	for (int i = 0; i < depth; i++)
		strbuf_add(sb, "  ", 2);
}

/*
 * The shortest text that reads back as d, kept a real ("2.0"). json_dumps prints 17
 * significant digits ("0.10000000000000001"), which would turn a hand-written 0.1 in
 * an untouched object of an array file into noise.
 */
static void add_real(struct strbuf *sb, double d)
{
	char buf[40];
	for (int prec = 1; prec <= 17; prec++) {
		snprintf(buf, sizeof(buf), "%.*g", prec, d);
		if (strtod(buf, NULL) == d)
			break;
	}
	strbuf_addstr(sb, buf);
	if (!strpbrk(buf, ".eE"))
		strbuf_add(sb, ".0", 2);
}

static void dump_json(struct strbuf *sb, const json_t *v, int depth);

/*
 * An object's members or an array's items, one a line at depth + 1, between its
 * brackets; "{}" or "[]" when it is empty.
 */
static void dump_items(struct strbuf *sb, const json_t *v, int depth)
{
	bool obj = json_is_object(v);
	size_t n = obj ? json_object_size(v) : json_array_size(v);
	void *it = obj ? json_object_iter((json_t *)v) : NULL;

	strbuf_addch(sb, obj ? '{' : '[');
	for (size_t i = 0; i < n; i++) {
		strbuf_addstr(sb, i ? ",\n" : "\n");
		add_indent(sb, depth + 1);
		if (obj) {
			const char *key = json_object_iter_key(it);
			strbuf_add_json_string(sb, key, strlen(key));
			strbuf_add(sb, ": ", 2);
			dump_json(sb, json_object_iter_value(it), depth + 1);
			it = json_object_iter_next((json_t *)v, it);
		} else {
			dump_json(sb, json_array_get(v, i), depth + 1);
		}
	}
	if (n) {
		strbuf_addch(sb, '\n');
		add_indent(sb, depth);
	}
	strbuf_addch(sb, obj ? '}' : ']');
}

/* Pretty JSON like json_dumps(JSON_INDENT(2) | JSON_PRESERVE_ORDER), reals shortest. */
static void dump_json(struct strbuf *sb, const json_t *v, int depth)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT:
	case JSON_ARRAY:
		dump_items(sb, v, depth);
		break;
	case JSON_STRING:
		strbuf_add_json_string(sb, json_string_value(v), json_string_length(v));
		break;
	case JSON_INTEGER:
		strbuf_addf(sb, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
		break;
	case JSON_REAL: add_real(sb, json_real_value(v)); break;
	case JSON_TRUE: strbuf_add(sb, "true", 4); break;
	case JSON_FALSE: strbuf_add(sb, "false", 5); break;
	case JSON_NULL: strbuf_add(sb, "null", 4); break;
	}
}

/* Pretty text of v (owned), with a final newline when nl. */
char *cw_json_text(const json_t *v, bool nl)
{
	struct strbuf sb = STRBUF_INIT;
	dump_json(&sb, v, 0);
	if (nl)
		strbuf_addch(&sb, '\n');
	return strbuf_detach(&sb, NULL);
}

/* obj (borrowed) with key inserted after the key `after` (NULL: first): a new object (owned). */
json_t *cw_insert_key(json_t *obj, const char *after, const char *key, json_t *val)
{
	json_t *out = json_object(), *v;
	const char *k;
	if (!after)
		json_object_set(out, key, val);
	json_object_foreach(obj, k, v) {
		json_object_set(out, k, v);
		if (after && !strcmp(k, after))
			json_object_set(out, key, val);
	}
	if (after && !json_object_get(out, key))
		json_object_set(out, key, val);
	return out;
}

/* ---- splicing: a change keeps every byte of the file outside its object ---- */

/*
 * Users keep the config in git, with comments and JSON5: a write replaces the text of
 * the one object it changes (or removes it and one comma beside it) and leaves every
 * other byte as it was. The result is parsed again and must equal what a rewrite of the
 * whole file would hold; if it does not (some layout this code does not foresee), the
 * file is rewritten as plain JSON, as before, with a warning.
 */

static bool is_blank(char c)
{
	return c == ' ' || c == '\t';
}

/* Past whitespace (the JSON5 set) and comments from pos: what lies between two values. */
static size_t skip_gap(const char *s, size_t len, size_t pos)
{
	while (pos < len) {
		const unsigned char *u = (const unsigned char *)s + pos;
		size_t left = len - pos;
		if (is_blank(s[pos]) || s[pos] == '\n' || s[pos] == '\r' || s[pos] == '\v' || s[pos] == '\f') {
			pos++;
		} else if (left >= 2 && u[0] == 0xC2 && u[1] == 0xA0) {
			pos += 2;
		} else if (left >= 3 && ((u[0] == 0xEF && u[1] == 0xBB && u[2] == 0xBF) ||
					 (u[0] == 0xE2 && u[1] == 0x80 && (u[2] == 0xA8 || u[2] == 0xA9)))) {
			pos += 3;
		} else if (left >= 2 && s[pos] == '/' && s[pos + 1] == '/') {
			while (pos < len && s[pos] != '\n' && s[pos] != '\r')
				pos++;
		} else if (left >= 2 && s[pos] == '/' && s[pos + 1] == '*') {
			pos += 2;
			while (pos < len && !(s[pos] == '*' && pos + 1 < len && s[pos + 1] == '/'))
				pos++;
			pos = pos < len ? pos + 2 : len;
		} else {
			break;
		}
	}
	return pos;
}

static size_t line_start(const char *s, size_t pos)
{
	while (pos && s[pos - 1] != '\n')
		pos--;
	return pos;
}

/* text, each line after the first opened by indent[0..n), line ends written as eol. */
static void add_indented(struct strbuf *sb, const char *text, const char *indent, size_t n, const char *eol)
{
	for (const char *p = text; *p; p++) {
		if (*p == '\n') {
			strbuf_addstr(sb, eol);
			strbuf_add(sb, indent, n);
		} else {
			strbuf_addch(sb, *p);
		}
	}
}

/*
 * The text of f's file with its object replaced by obj's pretty text (indented as the
 * object was), or (obj NULL) removed from the top-level array with one separating comma
 * (and its lines, when it had them to itself). Owned; NULL when the layout is not one
 * this can splice.
 */
static char *splice_text(const struct found *f, const json_t *obj)
{
	const char *src = f->text;
	size_t len = f->len;
	const struct j5_node *v = f->obj;
	const char *eol = strstr(src, "\r\n") ? "\r\n" : "\n";
	struct strbuf sb = STRBUF_INIT;
	size_t a = v->start, b = v->end, comma = SIZE_MAX;

	if (v->end > len || v->start >= v->end)
		return NULL;
	if (obj) {
		size_t ls = line_start(src, a), n = 0;
		char *t = cw_json_text(obj, false);
		while (ls + n < a && is_blank(src[ls + n]))
			n++;
		strbuf_add(&sb, src, a);
		add_indented(&sb, t, src + ls, n, eol);
		strbuf_add(&sb, src + b, len - b);
		free(t);
		return strbuf_detach(&sb, NULL);
	}
	if (f->index < 0)
		return NULL;
	size_t after = skip_gap(src, len, v->end);
	bool tidy = true;
	if (after < len && src[after] == ',') {
		b = after + 1; /* the object and the comma after it */
	} else if (f->index > 0) {
		/* the last element without a trailing comma: the comma before it goes */
		const struct j5_node *prev = f->root->items[f->index - 1];
		size_t pc = skip_gap(src, len, prev->end);
		if (pc >= len || src[pc] != ',' || pc > a)
			return NULL;
		if (!memchr(src + prev->end, '/', a - prev->end)) {
			a = prev->end; /* no comment between: from the end of the one before */
			tidy = false;
		} else {
			comma = pc;
		}
	}
	if (tidy) {
		size_t ls = line_start(src, a), e = b, k = ls;
		while (k < a && is_blank(src[k]))
			k++;
		while (e < len && is_blank(src[e]))
			e++;
		if (k == a && (e == len || src[e] == '\n' || src[e] == '\r')) {
			a = ls; /* alone on its lines: the lines go */
			b = e;
			if (b < len && src[b] == '\r')
				b++;
			if (b < len && src[b] == '\n')
				b++;
		} else {
			b = e;
		}
	}
	if (comma != SIZE_MAX) {
		strbuf_add(&sb, src, comma);
		strbuf_add(&sb, src + comma + 1, a - comma - 1);
	} else {
		strbuf_add(&sb, src, a);
	}
	strbuf_add(&sb, src + b, len - b);
	return strbuf_detach(&sb, NULL);
}

/* Does text parse (JSON5) to exactly want? */
static bool text_holds(const char *text, const json_t *want)
{
	struct arena arena;
	struct j5_node *root;
	struct j5_error je;
	bool same = false;
	arena_init(&arena);
	if (json5_parse(text, strlen(text), &arena, &root, &je)) {
		json_t *got = cw_j5_to_json(root);
		same = json_equal(got, want);
		json_decref(got);
	}
	arena_release(&arena);
	return same;
}

/*
 * The new text of f's file: spliced (obj replaces the object, or NULL: it goes), checked
 * to read back as want (the whole file's new value); else want as plain JSON. Owned.
 */
char *cw_new_file_text(const struct found *f, const json_t *obj, const json_t *want)
{
	char *t = splice_text(f, obj);
	if (t && text_holds(t, want))
		return t;
	free(t);
	log_warn("%s: the change could not keep the file's comments and layout; it is rewritten as JSON", f->file);
	return cw_json_text(want, true);
}

