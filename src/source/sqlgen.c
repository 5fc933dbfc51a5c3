/* sqlgen.c: one ordered, aggregated SQL statement per source, for every SQL dialect. */
#include "source/sqlgen.h"

#include <ctype.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "base/suggest.h"
#include "base/xalloc.h"
#include "source/source.h"

/*
 * Design note: the statement for a source (see docs/internals/sources.md).
 *
 *   SELECT <key>, <value 1> ... <value n> [, COUNT(*)]
 *   FROM <base> AS "joey$src"            -- base: "table", (query), or a window layer
 *   [GROUP BY <key>] ORDER BY <key order>
 *
 * The primary source with only `exact` scalar properties reads one row per record
 * (no GROUP BY, filters as CASE WHEN). Everything else groups by the key and turns
 * every property into one aggregate. "Pick one row" aggregations (most/least recent,
 * exact) either number the rows of each key in a window layer
 *   (SELECT *, ROW_NUMBER() OVER (PARTITION BY <key> ORDER BY ...) AS "joey$wN" FROM <base>)
 * and keep the value of row 1 (SQLite, MariaDB), or take the first element of an
 * ordered ARRAY_AGG (PostgreSQL, which has no MAX() for every type).
 *
 * Parameters are written as \001<n>\002 while building, since pieces are assembled
 * out of order; sql_plan_build rewrites them to the dialect's placeholders at the end
 * (reordering the binds for positional `?`).
 */

#define SRC_ALIAS "joey$src"
#define BASE_ALIAS "joey$base"
#define MARK_OPEN '\001'
#define MARK_CLOSE '\002'

void sql_plan_init(struct sql_plan *p)
{
	memset(p, 0, sizeof(*p));
	strbuf_init(&p->sql, 512);
	arena_init(&p->arena);
}

void sql_plan_release(struct sql_plan *p)
{
	strbuf_release(&p->sql);
	free(p->binds);
	p->binds = NULL;
	arena_release(&p->arena);
}

const char *sql_source_id(const struct cfg_source *src)
{
	return src && src->id ? src->id : "?";
}

void sql_add_ident(const struct sql_dialect *d, struct strbuf *sb, const char *name)
{
	if (d->quote == '"') {
		strbuf_add_sql_ident(sb, name);
		return;
	}
	if (d->ident_backslash) {
		strbuf_addch(sb, d->quote);
		for (const char *s = name; *s; s++) {
			if (*s == d->quote || *s == '\\')
				strbuf_addch(sb, '\\');
			strbuf_addch(sb, *s);
		}
		strbuf_addch(sb, d->quote);
		return;
	}
	strbuf_addch(sb, d->quote);
	for (const char *s = name; *s; s++) {
		if (*s == d->quote)
			strbuf_addch(sb, d->quote);
		strbuf_addch(sb, *s);
	}
	strbuf_addch(sb, d->quote);
}

void sql_add_query_text(struct strbuf *sb, const char *q)
{
	size_t n = strlen(q);
	while (n && (isspace((unsigned char)q[n - 1]) || q[n - 1] == ';'))
		n--;
	strbuf_add(sb, q, n);
}

/* Builder state for one statement. */
struct gen {
	const struct sql_dialect *d;
	struct sql_plan *p;
	void *conn;
};

/* Append a parameter marker for a new bind value, compared with column (or NULL). */
static void add_param_col(struct gen *g, struct strbuf *sb, const char *text, bool numeric,
			  const char *column)
{
	struct sql_plan *p = g->p;
	struct sql_bind b = { SQL_BIND_TEXT, text, column, 0, 0 };
	char *end;

	if (numeric && text) {
		if (decimal_to_int64(text, strlen(text), &b.i)) {
			b.kind = SQL_BIND_INT;
		} else {
			b.f = strtod(text, &end);
			if (end != text && !*end)
				b.kind = SQL_BIND_REAL;
		}
	}
	ALLOC_GROW(p->binds, p->n_binds + 1, p->alloc_binds);
	p->binds[p->n_binds++] = b;
	strbuf_addf(sb, "%c%zu%c", MARK_OPEN, p->n_binds, MARK_CLOSE);
}

static void add_param(struct gen *g, struct strbuf *sb, const char *text, bool numeric)
{
	add_param_col(g, sb, text, numeric, NULL);
}

/* The table option: one identifier, or (d->dotted_table) "db.table" as two. */
static void add_table(struct gen *g, struct strbuf *sb, const char *table)
{
	const char *dot = g->d->dotted_table ? strchr(table, '.') : NULL;
	if (!dot || dot == table || !dot[1]) {
		sql_add_ident(g->d, sb, table);
		return;
	}
	char *db = xstrndup(table, (size_t)(dot - table));
	sql_add_ident(g->d, sb, db);
	strbuf_addch(sb, '.');
	sql_add_ident(g->d, sb, dot + 1);
	free(db);
}

/* LIKE pattern text with \ % _ escaped (used with ESCAPE '\'). */
static const char *like_escape(struct sql_plan *p, const char *s)
{
	size_t n = strlen(s);
	char *out = arena_alloc(&p->arena, 2 * n + 1), *o = out;
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '\\' || s[i] == '%' || s[i] == '_')
			*o++ = '\\';
		*o++ = s[i];
	}
	*o = '\0';
	return out;
}

static void add_text_cast(struct gen *g, struct strbuf *sb, const char *col)
{
	strbuf_addstr(sb, "CAST(");
	sql_add_ident(g->d, sb, col);
	strbuf_addf(sb, " AS %s)", g->d->text_type);
}

/* Append the AND of the property's filters (true when there are none). */
static void add_filters(struct gen *g, struct strbuf *sb, const struct cfg_property *prop)
{
	static const char *const cmp[FOP__COUNT] = {
		[FOP_EQ] = " = ", [FOP_NE] = " != ", [FOP_GT] = " > ",
		[FOP_GTE] = " >= ", [FOP_LT] = " < ", [FOP_LTE] = " <= ",
	};
	const struct sql_dialect *d = g->d;

	strbuf_addch(sb, '(');
	for (size_t i = 0; i < prop->n_filters; i++) {
		const struct cfg_filter *f = &prop->filters[i];
		if (i)
			strbuf_addstr(sb, " AND ");
		switch (f->op) {
		case FOP_EQ:
		case FOP_NE:
		case FOP_GT:
		case FOP_GTE:
		case FOP_LT:
		case FOP_LTE:
			sql_add_ident(d, sb, f->key);
			if (!f->match && (f->op == FOP_EQ || f->op == FOP_NE)) {
				strbuf_addstr(sb, f->op == FOP_EQ ? " IS NULL" : " IS NOT NULL");
				break;
			}
			strbuf_addstr(sb, cmp[f->op]);
			add_param_col(g, sb, f->match ? f->match : "", f->match_is_number, f->key);
			if (!f->match_is_number)
				strbuf_addstr(sb, d->key_collate); /* MariaDB: compare text bytewise too */
			break;
		case FOP_SUBSTRING:
		case FOP_NOT_SUBSTRING:
			if (d->substring_fn) {
				/* <fn>(CAST(col AS text), 'm') > 0: an exact, case-insensitive substring */
				strbuf_addf(sb, "%s%s(", f->op == FOP_SUBSTRING ? "" : "NOT ",
					    d->substring_fn);
				add_text_cast(g, sb, f->key);
				strbuf_addstr(sb, ", ");
				add_param(g, sb, f->match ? f->match : "", false);
				strbuf_addstr(sb, ") > 0");
				break;
			}
			strbuf_addstr(sb, f->op == FOP_SUBSTRING ? "LOWER(" : "NOT LOWER(");
			add_text_cast(g, sb, f->key);
			strbuf_addstr(sb, d->concat_fn ? ") LIKE CONCAT('%', LOWER("
						       : ") LIKE '%' || LOWER(");
			if (d->cast_text_params)
				strbuf_addstr(sb, "CAST(");
			add_param(g, sb, like_escape(g->p, f->match ? f->match : ""), false);
			if (d->cast_text_params)
				strbuf_addf(sb, " AS %s)", d->text_type);
			strbuf_addstr(sb, d->concat_fn ? "), '%')" : ") || '%'");
			strbuf_addstr(sb, d->like_escape);
			break;
		case FOP_IN:
			sql_add_ident(d, sb, f->key);
			strbuf_addstr(sb, " IN (");
			for (size_t k = 0; k < f->n_match_list; k++) {
				if (k)
					strbuf_addstr(sb, ", ");
				add_param_col(g, sb, f->match_list[k], f->match_is_number, f->key);
				if (!f->match_is_number)
					strbuf_addstr(sb, d->key_collate);
			}
			if (!f->n_match_list)
				strbuf_addstr(sb, "NULL");
			strbuf_addch(sb, ')');
			break;
		case FOP_EXISTS:
		case FOP_NOT_EXISTS:
			sql_add_ident(d, sb, f->key);
			strbuf_addstr(sb, f->op == FOP_EXISTS ? " IS NOT NULL" : " IS NULL");
			break;
		default:
			strbuf_addstr(sb, d->false_sql);
			break;
		}
	}
	if (!prop->n_filters)
		strbuf_addstr(sb, d->true_sql);
	strbuf_addch(sb, ')');
}

static bool names_property(const struct cfg_property *p, const char *name, size_t len)
{
	return p && ((p->id && strlen(p->id) == len && !memcmp(p->id, name, len)) ||
		     (p->key && strlen(p->key) == len && !memcmp(p->key, name, len)));
}

/*
 * A Grouparoo property query ("SELECT ... WHERE id = {{{ userId }}}") as a correlated
 * scalar subquery: the placeholder naming the record key becomes a reference to the
 * outer key column ('{{{ x }}}' in quotes: its text form).
 */
static enum jerr add_property_query(struct gen *g, struct strbuf *sb,
				    const struct cfg_source *src, const struct cfg_property *prop,
				    const char *key_column, struct jerror *err)
{
	const char *q = prop->query, *s = q;
	const struct cfg_property *pk = src->model ? src->model->primary_key : NULL;
	const struct cfg_property *mp = src->mapping_property;

	strbuf_addch(sb, '(');
	size_t start = sb->len;
	while (*s) {
		const char *open = strstr(s, "{{");
		if (!open) {
			strbuf_addstr(sb, s);
			break;
		}
		bool triple = open[2] == '{';
		const char *name = open + (triple ? 3 : 2);
		const char *close = strstr(name, triple ? "}}}" : "}}");
		if (!close)
			return jerror_set(err, JERR_CONFIG,
					  "property \"%s\": unterminated placeholder in query",
					  prop->id);
		const char *ne = close;
		while (name < ne && isspace((unsigned char)*name))
			name++;
		while (ne > name && isspace((unsigned char)ne[-1]))
			ne--;
		if (g->d->no_correlated) {
			jerror_set(err, JERR_CONFIG,
				   "property \"%s\": query placeholder \"%.*s\" is not supported on %s",
				   prop->id, (int)(close + (triple ? 3 : 2) - open), open, g->d->name);
			jerror_detail(err, "joey turns a property query into a subquery correlated with "
					   "the record key, and %s has no correlated subqueries",
				      g->d->name);
			jerror_hint(err, "select the value in the source's options.query and use "
					 "options.column on the property");
			return JERR_CONFIG;
		}
		if (!names_property(mp, name, (size_t)(ne - name)) &&
		    !names_property(pk, name, (size_t)(ne - name))) {
			const struct cfg_property *kp = pk ? pk : mp;
			jerror_set(err, JERR_CONFIG,
				   "property \"%s\": query placeholder \"%.*s\" does not name the "
				   "record key",
				   prop->id, (int)(close + (triple ? 3 : 2) - open), open);
			jerror_detail(err,
				      "joey runs one query per source, so a property query becomes a "
				      "subquery correlated with the record key and may only refer to "
				      "the primary key property \"%s\"",
				      kp && kp->id ? kp->id : "?");
			jerror_hint(err, "use {{{ %s }}} in the query, or join the other data "
					 "inside the source query",
				    kp && kp->id ? kp->id : "?");
			return JERR_CONFIG;
		}
		const char *after = close + (triple ? 3 : 2);
		bool quoted = open > q && open[-1] == '\'' && *after == '\'';
		strbuf_add(sb, s, (size_t)(open - s) - (quoted ? 1 : 0));
		if (quoted)
			strbuf_addstr(sb, "CAST(");
		sql_add_ident(g->d, sb, SRC_ALIAS);
		strbuf_addch(sb, '.');
		sql_add_ident(g->d, sb, key_column);
		if (quoted)
			strbuf_addf(sb, " AS %s)", g->d->text_type);
		s = after + (quoted ? 1 : 0);
	}
	/* drop a trailing semicolon inside the parentheses */
	while (sb->len > start && (isspace((unsigned char)sb->buf[sb->len - 1]) ||
				   sb->buf[sb->len - 1] == ';'))
		strbuf_setlen(sb, sb->len - 1);
	strbuf_addch(sb, ')');
	return JERR_OK;
}

static bool needs_general_path(const struct cfg_source *src)
{
	if (!src->is_primary)
		return true;
	for (size_t i = 0; i < src->n_properties; i++) {
		const struct cfg_property *p = src->properties[i];
		if (p->is_array || (!(src->is_query && p->query) && p->agg != AGG_EXACT))
			return true;
	}
	return false;
}

/* Append the key expression over the raw columns of the source. */
static void add_key_expr(struct gen *g, struct strbuf *sb, const char *col, bool natural,
			 bool int_key)
{
	if (natural || int_key) {
		sql_add_ident(g->d, sb, col);
		return;
	}
	add_text_cast(g, sb, col);
	strbuf_addstr(sb, g->d->key_collate);
}

/* ORDER BY items for a pick/array: [filters first,] sort DIR, rowid. Returns whether any. */
static bool add_pick_order(struct gen *g, struct strbuf *sb, const struct cfg_property *prop,
			   bool cond_first, const char *rowid)
{
	const struct sql_dialect *d = g->d;
	bool desc = prop->agg == AGG_MOST_RECENT;
	const char *sep = "";

	if (cond_first) {
		/* rows passing the filters first */
		strbuf_addstr(sb, "CASE WHEN ");
		add_filters(g, sb, prop);
		strbuf_addstr(sb, " THEN 0 ELSE 1 END");
		sep = ", ";
	}
	if (prop->sort_column && d->null_rank) {
		/* NULL smallest, spelled out: no NULLS FIRST/LAST inside OVER () */
		strbuf_addf(sb, "%sCASE WHEN ", sep);
		sql_add_ident(d, sb, prop->sort_column);
		strbuf_addf(sb, " IS NULL THEN 0 ELSE 1 END%s, ", desc ? " DESC" : " ASC");
		sql_add_ident(d, sb, prop->sort_column);
		strbuf_addstr(sb, desc ? " DESC" : " ASC");
		sep = ", ";
	} else if (prop->sort_column) {
		strbuf_addstr(sb, sep);
		sql_add_ident(d, sb, prop->sort_column);
		strbuf_addstr(sb, desc ? " DESC" : " ASC");
		strbuf_addstr(sb, desc ? d->desc_nulls : d->asc_nulls);
		sep = ", ";
	}
	if (!rowid && d->tiebreak_value && prop->column) {
		/* no row order: the value itself (NULL smallest) */
		strbuf_addf(sb, "%sCASE WHEN ", sep);
		sql_add_ident(d, sb, prop->column);
		strbuf_addf(sb, " IS NULL THEN 0 ELSE 1 END%s, ", desc ? " DESC" : " ASC");
		sql_add_ident(d, sb, prop->column);
		strbuf_addstr(sb, desc ? " DESC" : " ASC");
		sep = ", ";
	}
	if (rowid) {
		strbuf_addstr(sb, sep);
		strbuf_addstr(sb, rowid);
		sep = ", ";
	} else if (d->value_tiebreak && prop->column) {
		strbuf_addstr(sb, sep);
		sql_add_ident(d, sb, prop->column);
		strbuf_addstr(sb, desc ? " DESC" : " ASC");
		strbuf_addstr(sb, desc ? d->desc_nulls : d->asc_nulls);
		sep = ", ";
	}
	return *sep != '\0';
}

/* Rewrite parameter markers to the dialect's placeholders (reordering binds for ?). */
static void finish_params(struct gen *g)
{
	struct sql_plan *p = g->p;
	struct strbuf out = STRBUF_INIT;
	struct sql_bind *ordered = NULL;
	size_t n_ordered = 0, alloc = 0;

	strbuf_grow(&out, p->sql.len);
	for (size_t i = 0; i < p->sql.len; i++) {
		char c = p->sql.buf[i];
		if (c != MARK_OPEN) {
			strbuf_addch(&out, c);
			continue;
		}
		size_t n = 0;
		for (i++; i < p->sql.len && p->sql.buf[i] != MARK_CLOSE; i++)
			n = n * 10 + (size_t)(p->sql.buf[i] - '0');
		switch (g->d->params) {
		case SQL_PARAM_QNUM:
			strbuf_addf(&out, "?%zu", n + p->param_base);
			break;
		case SQL_PARAM_DOLLAR:
			strbuf_addf(&out, "$%zu", n + p->param_base);
			break;
		case SQL_PARAM_QMARK:
		case SQL_PARAM_LITERAL:
			if (g->d->params == SQL_PARAM_QMARK)
				strbuf_addch(&out, '?');
			else
				g->d->literal(g->conn, &out, &p->binds[n - 1]);
			ALLOC_GROW(ordered, n_ordered + 1, alloc);
			ordered[n_ordered++] = p->binds[n - 1];
			break;
		}
	}
	strbuf_release(&p->sql);
	p->sql = out;
	if (g->d->params == SQL_PARAM_QMARK || g->d->params == SQL_PARAM_LITERAL) {
		free(p->binds);
		p->binds = ordered;
		p->n_binds = n_ordered;
		p->alloc_binds = alloc;
	}
}

/* A number-looking mark is bound as a number (a column with no type affinity compares
 * integers and text differently); anything else as text. */
static bool since_is_number(const char *v)
{
	int64_t i;
	char *end;
	if (decimal_to_int64(v, strlen(v), &i))
		return true;
	if (!*v || isspace((unsigned char)*v))
		return false;
	(void)strtod(v, &end);
	return end != v && !*end;
}

/* The condition of an incremental read, after lead (" WHERE " or " AND "). */
static void add_since_where(struct gen *g, struct strbuf *sb, const struct cfg_source *src,
			    const char *K, const struct source_read *read, const char *lead)
{
	const struct sql_dialect *d = g->d;
	strbuf_addstr(sb, lead);
	if (g->p->grouped) {
		/* every row of a key that changed, so aggregates are complete */
		sql_add_ident(d, sb, K);
		strbuf_addstr(sb, " IN (SELECT ");
		sql_add_ident(d, sb, K);
		strbuf_addstr(sb, " FROM ");
		add_table(g, sb, src->table);
		strbuf_addstr(sb, " WHERE ");
	}
	sql_add_ident(d, sb, read->since_column);
	strbuf_addstr(sb, " >= ");
	add_param_col(g, sb, read->since_value, since_is_number(read->since_value), read->since_column);
	if (g->p->grouped)
		strbuf_addch(sb, ')');
}

/* The key as ORDER BY sorts it (key_compare order), over the raw columns. */
static void add_order_key(struct gen *g, struct strbuf *sb, const char *K, bool natural, bool int_key)
{
	const struct sql_dialect *d = g->d;
	if (natural) {
		sql_add_ident(d, sb, K);
		if (!int_key)
			strbuf_addstr(sb, d->natural_text_order);
	} else if (int_key) {
		strbuf_addstr(sb, "CAST(");
		sql_add_ident(d, sb, K);
		strbuf_addf(sb, " AS %s)", d->int_type);
	} else {
		add_text_cast(g, sb, K);
		strbuf_addstr(sb, d->key_collate);
		strbuf_addstr(sb, d->text_order);
	}
}

/* A record key as a bound parameter, compared as ORDER BY sorts (key_collate). */
static void add_key_param(struct gen *g, struct strbuf *sb, const struct rkey *k)
{
	struct sql_plan *p = g->p;
	size_t n;
	if (k->is_int) {
		add_param(g, sb, sql_fmt_i64(&p->arena, k->i, &n), true);
		return;
	}
	char *t = arena_alloc(&p->arena, k->text.len + 1);
	memcpy(t, k->text.ptr, k->text.len);
	t[k->text.len] = 0;
	add_param(g, sb, t, false);
	strbuf_addstr(sb, g->d->key_collate); /* MariaDB: bytewise, as for filters */
}

/* One bound of a key range: <order key> op <bound>, compared as ORDER BY sorts. */
static void add_range_bound(struct gen *g, struct strbuf *sb, const char *K, bool natural, bool int_key,
			    const char *op, const struct rkey *b)
{
	add_order_key(g, sb, K, natural, int_key);
	strbuf_addstr(sb, op);
	add_key_param(g, sb, b);
}

/* <order key> IN (<keys>): the rows of some record keys only (read->in_keys). */
static void add_keys_in(struct gen *g, struct strbuf *sb, const char *K, bool natural,
			const struct rkey *keys, size_t n)
{
	add_order_key(g, sb, K, natural, g->p->int_key);
	strbuf_addstr(sb, " IN (");
	for (size_t i = 0; i < n; i++) {
		if (i)
			strbuf_addstr(sb, ", ");
		add_key_param(g, sb, &keys[i]);
	}
	strbuf_addch(sb, ')');
}

/* WHERE of a read limited to a key range, to some keys and/or to rows since a mark. */
static void add_read_where(struct gen *g, struct strbuf *sb, const struct cfg_source *src, const char *K,
			   bool natural, const struct source_read *since, const struct key_range *range,
			   const struct source_read *keys, const struct source_read *match)
{
	bool first = true;
	if (keys && keys->in_keys) {
		strbuf_addstr(sb, " WHERE ");
		add_keys_in(g, sb, K, natural, keys->in_keys, keys->n_in_keys);
		first = false;
	}
	if (match) {
		/* the column an identifier, the value a parameter: never SQL text */
		strbuf_addstr(sb, first ? " WHERE " : " AND ");
		sql_add_ident(g->d, sb, match->match_column);
		strbuf_addstr(sb, " = ");
		add_param(g, sb, match->match_value, match->match_is_number);
		if (!match->match_is_number)
			strbuf_addstr(sb, g->d->key_collate); /* MariaDB: bytewise, as filters */
		first = false;
	}
	if (range && range->lo) {
		strbuf_addstr(sb, first ? " WHERE " : " AND ");
		add_range_bound(g, sb, K, natural, g->p->int_key, " >= ", range->lo);
		first = false;
	}
	if (range && range->hi) {
		strbuf_addstr(sb, first ? " WHERE " : " AND ");
		add_range_bound(g, sb, K, natural, g->p->int_key, " < ", range->hi);
		first = false;
	}
	if (since && since->since_value)
		add_since_where(g, sb, src, K, since, first ? " WHERE " : " AND ");
}

/* A PostgreSQL array literal of keys ({1,2} or {"a","b\"c"}), in the plan's arena. */
static const char *keys_array_literal(struct sql_plan *p, const struct rkey *keys, size_t n)
{
	struct strbuf sb = STRBUF_INIT;
	strbuf_addch(&sb, '{');
	for (size_t i = 0; i < n; i++) {
		if (i)
			strbuf_addch(&sb, ',');
		if (keys[i].is_int) {
			strbuf_addf(&sb, "%" PRId64, keys[i].i);
			continue;
		}
		strbuf_addch(&sb, '"');
		for (size_t k = 0; k < keys[i].text.len; k++) {
			char c = keys[i].text.ptr[k];
			if (c == '"' || c == '\\')
				strbuf_addch(&sb, '\\');
			strbuf_addch(&sb, c);
		}
		strbuf_addch(&sb, '"');
	}
	strbuf_addch(&sb, '}');
	char *out = arena_alloc(&p->arena, sb.len + 1);
	memcpy(out, sb.buf, sb.len + 1);
	strbuf_release(&sb);
	return out;
}

/*
 * The warehouse diff's reads (source.h: read->keys, read->digest): the statement in
 * p->sql, which has n_cols columns, becomes
 *   SELECT "joey$r".*[, md5(CAST("joey$r" AS TEXT))] FROM (<statement>) AS "joey$r"(c0, ...)
 *   [WHERE "joey$r".c0 = ANY(<keys>)] ORDER BY "joey$r".c0
 * The digest is of the row exactly as the statement returns it (key, values, COUNT(*)),
 * so the same data gives the same digest whether the statement reads every key or a
 * few. Filtering on the key keeps or drops whole keys, so aggregates and picks are
 * those of a full read; PostgreSQL pushes the condition down to the table scans.
 */
static void wrap_warehouse(struct gen *g, const struct rkey *keys, size_t n_keys, bool digest, int n_cols)
{
	struct sql_plan *p = g->p;
	struct strbuf sb = STRBUF_INIT;
	strbuf_addstr(&sb, "SELECT \"joey$r\".*");
	if (digest)
		strbuf_addstr(&sb, ", md5(CAST(\"joey$r\" AS TEXT))");
	strbuf_addstr(&sb, " FROM (");
	strbuf_addslice(&sb, (struct slice){ p->sql.buf, p->sql.len });
	strbuf_addstr(&sb, ") AS \"joey$r\"(");
	for (int i = 0; i < n_cols; i++)
		strbuf_addf(&sb, "%s\"c%d\"", i ? ", " : "", i);
	strbuf_addch(&sb, ')');
	if (keys) {
		strbuf_addstr(&sb, " WHERE \"joey$r\".\"c0\" = ANY(");
		add_param(g, &sb, keys_array_literal(p, keys, n_keys), false);
		strbuf_addch(&sb, ')');
	}
	if (!p->unordered) {
		strbuf_addstr(&sb, " ORDER BY \"joey$r\".\"c0\"");
		if (!p->int_key)
			strbuf_addstr(&sb, g->d->text_order);
	}
	strbuf_release(&p->sql);
	p->sql = sb;
	if (digest)
		p->since_col = n_cols;
}

/* tuple(isNotNull(x), assumeNotNull(x)): x's order with NULL smallest (ClickHouse). */
static void add_null_rank_pair(struct gen *g, struct strbuf *sb, const char *col)
{
	strbuf_addstr(sb, "isNotNull(");
	sql_add_ident(g->d, sb, col);
	strbuf_addstr(sb, "), assumeNotNull(");
	sql_add_ident(g->d, sb, col);
	strbuf_addch(sb, ')');
}

/*
 * A pick or array without window functions (SQL_PICK_ARGMAX, ClickHouse; works on 18.16):
 *   pick:  [if(countIf(f) > 0, ]tupleElement(argMax[If](tuple(col), tuple(<keys>)[, f]), 1)[, NULL)]
 *   array: arrayMap(x -> tupleElement(x, n), arraySort|arrayReverseSort(
 *              groupArrayIf(tuple(<keys>, col), f AND isNotNull(col))))
 * <keys> are the sortColumn as (isNotNull(s), assumeNotNull(s)) (NULL smallest, as
 * SQLite) and the value itself (the tie-break), so most recent takes the row with the
 * largest sort key (argMax), least recent and exact the smallest (argMin). tuple(col)
 * keeps a NULL value of the winning row (plain argMax skips NULL values).
 */
static void add_argmax_pick(struct gen *g, struct strbuf *cols, const struct cfg_property *prop, bool cond)
{
	const struct sql_dialect *d = g->d;
	bool desc = prop->agg == AGG_MOST_RECENT;
	struct strbuf keys = STRBUF_INIT;
	size_t n_keys = 0;

	if (prop->sort_column) {
		add_null_rank_pair(g, &keys, prop->sort_column);
		n_keys += 2;
	}
	if (prop->is_array) {
		if (!n_keys) {
			/* no order asked for: by value, so two reads agree */
			strbuf_addstr(cols, "arraySort(groupArrayIf(");
			sql_add_ident(d, cols, prop->column);
			strbuf_addstr(cols, ", ");
			add_filters(g, cols, prop);
			strbuf_addstr(cols, " AND isNotNull(");
			sql_add_ident(d, cols, prop->column);
			strbuf_addstr(cols, ")))");
			strbuf_release(&keys);
			return;
		}
		strbuf_addf(cols, "arrayMap(joey_x -> tupleElement(joey_x, %zu), %s(groupArrayIf(tuple(",
			    n_keys + 1, desc ? "arrayReverseSort" : "arraySort");
		strbuf_addslice(cols, (struct slice){ keys.buf, keys.len });
		strbuf_addstr(cols, ", ");
		sql_add_ident(d, cols, prop->column);
		strbuf_addstr(cols, "), ");
		add_filters(g, cols, prop);
		strbuf_addstr(cols, " AND isNotNull(");
		sql_add_ident(d, cols, prop->column);
		strbuf_addstr(cols, "))))");
		strbuf_release(&keys);
		return;
	}
	if (n_keys)
		strbuf_addstr(&keys, ", ");
	add_null_rank_pair(g, &keys, prop->column);
	if (cond) {
		strbuf_addstr(cols, "if(countIf(");
		add_filters(g, cols, prop);
		strbuf_addstr(cols, ") > 0, ");
	}
	strbuf_addf(cols, "tupleElement(%s%s(tuple(", desc ? "argMax" : "argMin", cond ? "If" : "");
	sql_add_ident(d, cols, prop->column);
	strbuf_addstr(cols, "), tuple(");
	strbuf_addslice(cols, (struct slice){ keys.buf, keys.len });
	strbuf_addch(cols, ')');
	if (cond) {
		strbuf_addstr(cols, ", ");
		add_filters(g, cols, prop);
	}
	strbuf_addstr(cols, "), 1)");
	if (cond)
		strbuf_addstr(cols, ", NULL)");
	strbuf_release(&keys);
}

enum jerr sql_plan_build(const struct sql_dialect *d, void *conn, const struct cfg_source *src,
			 const struct source_read *read, struct sql_plan *p, struct jerror *err)
{
	const struct cfg_model *model = src->model;
	const struct cfg_property *kp =
		model && model->primary_key ? model->primary_key : src->mapping_property;
	struct strbuf base = STRBUF_INIT, cols = STRBUF_INIT, win = STRBUF_INIT;
	struct gen gen = { d, p, conn }, *g = &gen;
	bool natural = false, base_is_subquery = false;
	const char *rowid = NULL;
	const char *K = src->mapping_column;
	enum jerr rc = JERR_OK;
	size_t n_win = 0;

	p->int_key = kp && kp->type == PROP_INTEGER;
	/* a key range (workers' partitions) applies to every source; `read` is the since part */
	const struct key_range *range = read && read->range && (read->range->lo || read->range->hi) ? read->range : NULL;
	/* the warehouse diff's parts (wrap_warehouse) */
	const struct rkey *wh_keys = read ? read->keys : NULL;
	size_t wh_n_keys = read ? read->n_keys : 0;
	bool wh_digest = read && read->digest;
	if ((wh_keys || wh_digest) &&
	    (d->params != SQL_PARAM_DOLLAR || d->pick != SQL_PICK_ORDERED_AGG || (wh_digest && read->since_column))) {
		rc = jerror_set(err, JERR_CONFIG, "source \"%s\": the warehouse diff cannot read it",
				sql_source_id(src));
		jerror_detail(err, d->params != SQL_PARAM_DOLLAR || d->pick != SQL_PICK_ORDERED_AGG
					   ? "the warehouse diff needs a PostgreSQL source"
					   : "row digests and incremental reads cannot be combined");
		goto out;
	}
	/* some keys only: applies to every source, like the range */
	const struct source_read *in_keys = read && read->in_keys && read->n_in_keys ? read : NULL;
	/* rows whose column equals a value (a lookup by a unique property) */
	const struct source_read *match = read && read->match_column && read->match_value ? read : NULL;
	if (match && src->is_query) {
		rc = jerror_set(err, JERR_CONFIG, "source \"%s\": a lookup by value needs a table source",
				sql_source_id(src));
		jerror_detail(err, "joey cannot add a condition on \"%s\" to a source query",
			      match->match_column);
		jerror_hint(err, "look the record up by a property of a table source, or by its primary key");
		goto out;
	}
	if (read && !read->since_column)
		read = NULL;
	if (read && (src->is_query || !*read->since_column)) {
		rc = jerror_set(err, JERR_CONFIG,
				"source \"%s\": incremental reads need a table source",
				sql_source_id(src));
		jerror_detail(err, "joey cannot add a lower bound on \"%s\" to a source query",
			      read->since_column);
		jerror_hint(err, "set \"incremental\": false on the source's schedule, or filter "
				 "the rows in the source query");
		goto out;
	}

	/* user SQL may not contain our parameter markers */
	if ((src->query && strpbrk(src->query, "\001\002"))) {
		rc = jerror_set(err, JERR_CONFIG, "source \"%s\": query contains control characters",
				sql_source_id(src));
		goto out;
	}
	for (size_t i = 0; i < src->n_properties; i++) {
		const struct cfg_property *prop = src->properties[i];
		if (prop->query && strpbrk(prop->query, "\001\002")) {
			rc = jerror_set(err, JERR_CONFIG,
					"property \"%s\": query contains control characters", prop->id);
			goto out;
		}
	}

	/* the base relation */
	if (!src->is_query) {
		if (!src->table || !*src->table) {
			rc = jerror_set(err, JERR_CONFIG, "source \"%s\": option \"table\" is required",
					sql_source_id(src));
			goto out;
		}
		add_table(g, &base, src->table);
		if (K && d->table_info)
			d->table_info(conn, src->table, K, p->int_key, &natural, &rowid);
	} else if (src->query && *src->query) {
		strbuf_addch(&base, '(');
		sql_add_query_text(&base, src->query);
		strbuf_addch(&base, ')');
		base_is_subquery = true;
	} else {
		/* Grouparoo-style query source: the keys come from the primary source's table */
		const struct cfg_source *ps = model ? model->primary_source : NULL;
		if (src->is_primary || !ps || ps->is_query || !ps->table || !ps->mapping_column ||
		    ps->app != src->app) {
			rc = jerror_set(err, JERR_CONFIG,
					"source \"%s\": a query source needs options.query",
					sql_source_id(src));
			jerror_detail(err, "joey reads each source with one query, so it needs the "
					   "set of record keys the property queries run for");
			jerror_hint(err, "add options.query with a SELECT that returns the key "
					 "column, or make the primary source a table source of the same app");
			goto out;
		}
		if (!K)
			K = ps->mapping_column;
		strbuf_addstr(&base, "(SELECT ");
		sql_add_ident(d, &base, ps->mapping_column);
		strbuf_addstr(&base, " AS ");
		sql_add_ident(d, &base, K);
		strbuf_addstr(&base, " FROM ");
		add_table(g, &base, ps->table);
		strbuf_addch(&base, ')');
		base_is_subquery = true;
	}
	if (!K || !*K) {
		rc = jerror_set(err, JERR_CONFIG, "source \"%s\": no mapping column",
				sql_source_id(src));
		jerror_hint(err, "set the source's mapping to { \"<column>\": \"<property id>\" }");
		goto out;
	}
	p->key_column = K;
	p->grouped = needs_general_path(src);

	/* one expression per property */
	for (size_t i = 0; i < src->n_properties; i++) {
		const struct cfg_property *prop = src->properties[i];
		strbuf_addstr(&cols, ", ");
		if (src->is_query && prop->query) {
			if (prop->is_array) {
				rc = jerror_set(err, JERR_CONFIG,
						"property \"%s\": array properties with a query are not "
						"supported",
						prop->id);
				jerror_hint(err, "aggregate in the source query and use options.column");
				goto out;
			}
			rc = add_property_query(g, &cols, src, prop, K, err);
			if (rc)
				goto out;
			continue;
		}
		if (!prop->column || !*prop->column) {
			rc = jerror_set(err, JERR_CONFIG, "property \"%s\": option \"column\" is required",
					prop->id);
			goto out;
		}
		bool cond = prop->n_filters > 0;
		if (!p->grouped) {
			if (!cond) {
				sql_add_ident(d, &cols, prop->column);
				continue;
			}
			strbuf_addstr(&cols, "CASE WHEN ");
			add_filters(g, &cols, prop);
			strbuf_addstr(&cols, " THEN ");
			sql_add_ident(d, &cols, prop->column);
			strbuf_addstr(&cols, " END");
			continue;
		}

		bool pick = prop->is_array || prop->agg == AGG_EXACT ||
			    prop->agg == AGG_MOST_RECENT || prop->agg == AGG_LEAST_RECENT;
		if ((prop->agg == AGG_MOST_RECENT || prop->agg == AGG_LEAST_RECENT) &&
		    !prop->sort_column) {
			rc = jerror_set(err, JERR_CONFIG,
					"property \"%s\": aggregation \"%s\" needs a sortColumn",
					prop->id, agg_method_name(prop->agg));
			goto out;
		}
		if (pick && prop->is_array && d->no_arrays) {
			rc = jerror_set(err, JERR_CONFIG,
					"property \"%s\": array properties are not supported on %s",
					prop->id, d->name);
			jerror_detail(err, "%s has no array or JSON aggregate joey could read",
				      d->name);
			jerror_hint(err, "aggregate the values in a view or in the source's "
					 "options.query (e.g. LISTAGG) and read it as a string property");
			goto out;
		}
		if (pick && d->pick == SQL_PICK_ARGMAX) {
			add_argmax_pick(g, &cols, prop, cond);
			continue;
		}
		if (pick && d->pick == SQL_PICK_ORDERED_AGG) {
			if (prop->is_array) {
				/* COALESCE(json_agg(col ORDER BY ...) FILTER (WHERE f AND col IS NOT NULL), '[]') */
				strbuf_addstr(&cols, "COALESCE(json_agg(");
				sql_add_ident(d, &cols, prop->column);
				struct strbuf ord = STRBUF_INIT;
				if (add_pick_order(g, &ord, prop, false, rowid)) {
					strbuf_addstr(&cols, " ORDER BY ");
					strbuf_addslice(&cols, (struct slice){ ord.buf, ord.len });
				}
				strbuf_release(&ord);
				strbuf_addstr(&cols, ") FILTER (WHERE ");
				add_filters(g, &cols, prop);
				strbuf_addstr(&cols, " AND ");
				sql_add_ident(d, &cols, prop->column);
				strbuf_addstr(&cols, " IS NOT NULL), '[]')");
				continue;
			}
			/* (ARRAY_AGG(col ORDER BY sort, rowid) [FILTER (WHERE f)])[1] */
			strbuf_addstr(&cols, "(ARRAY_AGG(");
			sql_add_ident(d, &cols, prop->column);
			struct strbuf ord = STRBUF_INIT;
			if (add_pick_order(g, &ord, prop, false, rowid)) {
				strbuf_addstr(&cols, " ORDER BY ");
				strbuf_addslice(&cols, (struct slice){ ord.buf, ord.len });
			}
			strbuf_release(&ord);
			strbuf_addch(&cols, ')');
			if (cond) {
				strbuf_addstr(&cols, " FILTER (WHERE ");
				add_filters(g, &cols, prop);
				strbuf_addch(&cols, ')');
			}
			strbuf_addstr(&cols, ")[1]");
			continue;
		}
		if (pick && prop->is_array &&
		    (d->pick == SQL_PICK_WINDOW_WITHIN_GROUP || d->pick == SQL_PICK_WINDOW_IGNORE_NULLS)) {
			/* ARRAY_AGG(CASE WHEN f THEN col END) WITHIN GROUP (ORDER BY ...) (Snowflake)
			 * or ARRAY_AGG(... IGNORE NULLS ORDER BY ...) (BigQuery): NULLs left out */
			strbuf_addstr(&cols, "ARRAY_AGG(");
			if (cond) {
				strbuf_addstr(&cols, "CASE WHEN ");
				add_filters(g, &cols, prop);
				strbuf_addstr(&cols, " THEN ");
				sql_add_ident(d, &cols, prop->column);
				strbuf_addstr(&cols, " END");
			} else {
				sql_add_ident(d, &cols, prop->column);
			}
			struct strbuf ord = STRBUF_INIT;
			bool ordered = add_pick_order(g, &ord, prop, false, rowid);
			if (d->pick == SQL_PICK_WINDOW_IGNORE_NULLS) {
				strbuf_addstr(&cols, " IGNORE NULLS");
				if (ordered)
					strbuf_addstr(&cols, " ORDER BY ");
				strbuf_addslice(&cols, (struct slice){ ord.buf, ord.len });
				strbuf_addch(&cols, ')');
			} else {
				strbuf_addch(&cols, ')');
				if (ordered)
					strbuf_addstr(&cols, " WITHIN GROUP (ORDER BY ");
				strbuf_addslice(&cols, (struct slice){ ord.buf, ord.len });
				if (ordered)
					strbuf_addch(&cols, ')');
			}
			strbuf_release(&ord);
			continue;
		}
		if (pick && prop->is_array && d->pick == SQL_PICK_WINDOW_ARRAYAGG) {
			/* JSON_ARRAYAGG(CASE WHEN f THEN col END ORDER BY ...): NULLs are dropped
			 * when decoding */
			strbuf_addstr(&cols, "JSON_ARRAYAGG(");
			if (cond) {
				strbuf_addstr(&cols, "CASE WHEN ");
				add_filters(g, &cols, prop);
				strbuf_addstr(&cols, " THEN ");
				sql_add_ident(d, &cols, prop->column);
				strbuf_addstr(&cols, " END");
			} else {
				sql_add_ident(d, &cols, prop->column);
			}
			struct strbuf ord = STRBUF_INIT;
			if (add_pick_order(g, &ord, prop, false, rowid)) {
				strbuf_addstr(&cols, " ORDER BY ");
				strbuf_addslice(&cols, (struct slice){ ord.buf, ord.len });
			}
			strbuf_release(&ord);
			strbuf_addch(&cols, ')');
			continue;
		}
		if (pick) {
			bool ordered = prop->sort_column || rowid || d->tiebreak_value || (d->value_tiebreak && prop->column);
			if (prop->is_array && !ordered) {
				/* no order to keep: a plain aggregate */
				strbuf_addstr(&cols, "json_group_array(");
				sql_add_ident(d, &cols, prop->column);
				strbuf_addstr(&cols, ") FILTER (WHERE ");
				add_filters(g, &cols, prop);
				strbuf_addstr(&cols, " AND ");
				sql_add_ident(d, &cols, prop->column);
				strbuf_addstr(&cols, " IS NOT NULL)");
				continue;
			}
			n_win++;
			strbuf_addstr(&win, ", ");
			if (prop->is_array) {
				strbuf_addstr(&win, "json_group_array(");
				sql_add_ident(d, &win, prop->column);
				strbuf_addstr(&win, ") FILTER (WHERE ");
				add_filters(g, &win, prop);
				strbuf_addstr(&win, " AND ");
				sql_add_ident(d, &win, prop->column);
				strbuf_addstr(&win, " IS NOT NULL) OVER (PARTITION BY ");
			} else {
				strbuf_addstr(&win, "ROW_NUMBER() OVER (PARTITION BY ");
			}
			add_key_expr(g, &win, K, natural, p->int_key);
			if (ordered || cond)
				strbuf_addstr(&win, " ORDER BY ");
			if (!add_pick_order(g, &win, prop, cond && !prop->is_array, rowid) &&
			    prop->is_array)
				strbuf_addstr(&win, "1");
			if (prop->is_array)
				strbuf_addstr(&win, " ROWS BETWEEN UNBOUNDED PRECEDING AND "
						    "UNBOUNDED FOLLOWING");
			strbuf_addf(&win, ") AS ");
			char wname[32];
			snprintf(wname, sizeof(wname), "joey$w%zu", n_win);
			sql_add_ident(d, &win, wname);
			if (prop->is_array) {
				strbuf_addstr(&cols, "MAX(");
				sql_add_ident(d, &cols, wname);
				strbuf_addch(&cols, ')');
			} else {
				strbuf_addstr(&cols, "MAX(CASE WHEN ");
				sql_add_ident(d, &cols, wname);
				strbuf_addstr(&cols, " = 1");
				if (cond) {
					strbuf_addstr(&cols, " AND ");
					add_filters(g, &cols, prop);
				}
				strbuf_addstr(&cols, " THEN ");
				if (d->pick_cast)
					strbuf_addstr(&cols, "CAST(");
				sql_add_ident(d, &cols, prop->column);
				if (d->pick_cast)
					strbuf_addf(&cols, " AS %s)", d->pick_cast);
				strbuf_addstr(&cols, " END)");
			}
			continue;
		}

		/* plain aggregates over the (filtered) column */
		struct strbuf x = STRBUF_INIT;
		if (cond) {
			strbuf_addstr(&x, "CASE WHEN ");
			add_filters(g, &x, prop);
			strbuf_addstr(&x, " THEN ");
			sql_add_ident(d, &x, prop->column);
			strbuf_addstr(&x, " END");
		} else {
			sql_add_ident(d, &x, prop->column);
		}
		struct strbuf avg = STRBUF_INIT;
		if (d->avg_cast)
			strbuf_addf(&avg, "AVG(CAST(%s AS %s))", x.buf, d->avg_cast);
		else
			strbuf_addf(&avg, "AVG(%s)", x.buf);
		switch (prop->agg) {
		case AGG_COUNT:
			strbuf_addf(&cols, "COUNT(%s)", x.buf);
			break;
		case AGG_SUM:
			strbuf_addf(&cols, "COALESCE(SUM(%s), 0)", x.buf);
			break;
		case AGG_AVERAGE:
			if (!cond) {
				strbuf_addf(&cols, "COALESCE(%s, 0)", avg.buf);
				break;
			}
			/* Grouparoo filtered in WHERE: no matching row means no value */
			strbuf_addstr(&cols, "CASE WHEN COUNT(CASE WHEN ");
			add_filters(g, &cols, prop);
			strbuf_addf(&cols, " THEN 1 END) > 0 THEN COALESCE(%s, 0) END", avg.buf);
			break;
		case AGG_MIN:
			strbuf_addf(&cols, "MIN(%s)", x.buf);
			break;
		case AGG_MAX:
			strbuf_addf(&cols, "MAX(%s)", x.buf);
			break;
		default:
			strbuf_addstr(&cols, "NULL");
			break;
		}
		strbuf_release(&x);
		strbuf_release(&avg);
	}

	/* assemble */
	strbuf_addstr(&p->sql, "SELECT ");
	add_key_expr(g, &p->sql, K, natural, p->int_key);
	strbuf_addslice(&p->sql, (struct slice){ cols.buf, cols.len });
	if (p->grouped)
		strbuf_addstr(&p->sql, ", COUNT(*)");
	if (read) {
		/* the largest since value of the key: the engine's next mark */
		strbuf_addstr(&p->sql, p->grouped ? ", MAX(" : ", ");
		sql_add_ident(d, &p->sql, read->since_column);
		if (p->grouped)
			strbuf_addch(&p->sql, ')');
		p->since_col = (int)src->n_properties + 1 + (p->grouped ? 1 : 0);
	}
	strbuf_addstr(&p->sql, " FROM ");
	if (n_win) {
		strbuf_addstr(&p->sql, "(SELECT *");
		strbuf_addslice(&p->sql, (struct slice){ win.buf, win.len });
		strbuf_addstr(&p->sql, " FROM ");
		strbuf_addslice(&p->sql, (struct slice){ base.buf, base.len });
		if (base_is_subquery) {
			strbuf_addstr(&p->sql, " AS ");
			sql_add_ident(d, &p->sql, BASE_ALIAS);
		}
		if ((read && read->since_value) || range || in_keys || match)
			add_read_where(g, &p->sql, src, K, natural, read, range, in_keys, match);
		strbuf_addch(&p->sql, ')');
	} else {
		strbuf_addslice(&p->sql, (struct slice){ base.buf, base.len });
	}
	strbuf_addstr(&p->sql, " AS ");
	sql_add_ident(d, &p->sql, SRC_ALIAS);
	if (!n_win && ((read && read->since_value) || range || in_keys || match))
		add_read_where(g, &p->sql, src, K, natural, read, range, in_keys, match);
	if (p->grouped) {
		strbuf_addstr(&p->sql, " GROUP BY ");
		add_key_expr(g, &p->sql, K, natural, p->int_key);
	}
	if (!p->unordered) {
		strbuf_addstr(&p->sql, " ORDER BY ");
		add_order_key(g, &p->sql, K, natural, p->int_key);
	}
	if (wh_keys || wh_digest)
		wrap_warehouse(g, wh_keys, wh_n_keys, wh_digest,
			       1 + (int)src->n_properties + (p->grouped ? 1 : 0) + (read ? 1 : 0));
	finish_params(g);
out:
	strbuf_release(&base);
	strbuf_release(&cols);
	strbuf_release(&win);
	return rc;
}

enum jerr sql_describe_source(const struct sql_dialect *d, void *conn, const struct cfg_source *src,
			      struct strbuf *out, struct jerror *err)
{
	struct sql_plan p;
	sql_plan_init(&p);
	enum jerr rc = sql_plan_build(d, conn, src, NULL, &p, err);
	if (!rc)
		sql_plan_describe(d, &p, out);
	sql_plan_release(&p);
	return rc;
}

void sql_free_names(char **names, size_t n)
{
	for (size_t i = 0; names && i < n; i++)
		free(names[i]);
	free(names);
}

void sql_plan_describe(const struct sql_dialect *d, const struct sql_plan *p, struct strbuf *out)
{
	strbuf_addslice(out, (struct slice){ p->sql.buf, p->sql.len });
	strbuf_addch(out, '\n');
	for (size_t i = 0; i < p->n_binds; i++) {
		const struct sql_bind *b = &p->binds[i];
		strbuf_addf(out, "-- %c%zu = ", d->params == SQL_PARAM_DOLLAR ? '$' : '?', i + 1);
		if (b->kind == SQL_BIND_INT)
			strbuf_addf(out, "%" PRId64, b->i);
		else if (b->kind == SQL_BIND_REAL)
			strbuf_addf(out, "%.17g", b->f);
		else
			strbuf_add_json_string(out, b->s, strlen(b->s));
		strbuf_addch(out, '\n');
	}
}

/* ---- Redshift lint ---- */

static bool lint_word(char c)
{
	return isalnum((unsigned char)c) || c == '_' || c == '$';
}

/* The text of sql with literals, quoted identifiers and comments blanked, upper-cased. */
static char *lint_text(const char *sql)
{
	size_t n = strlen(sql);
	char *t = xmalloc(n + 1);
	for (size_t i = 0; i < n;) {
		char c = sql[i];
		if (c == '\'' || c == '"') {
			t[i++] = ' ';
			while (i < n) {
				if (sql[i] == c && i + 1 < n && sql[i + 1] == c) {
					t[i++] = ' ';
					t[i++] = ' ';
					continue;
				}
				if (sql[i] == c)
					break;
				t[i++] = ' ';
			}
			if (i < n)
				t[i++] = ' ';
			continue;
		}
		if (c == '-' && i + 1 < n && sql[i + 1] == '-') {
			while (i < n && sql[i] != '\n')
				t[i++] = ' ';
			continue;
		}
		if (c == '/' && i + 1 < n && sql[i + 1] == '*') {
			const char *e = strstr(sql + i + 2, "*/");
			size_t end = e ? (size_t)(e - sql) + 2 : n;
			while (i < end)
				t[i++] = ' ';
			continue;
		}
		t[i++] = (char)toupper((unsigned char)c);
	}
	t[n] = '\0';
	return t;
}

/* pat (upper case, single spaces meaning any run of blanks) as whole words in t. */
static bool lint_find(const char *t, const char *pat)
{
	for (const char *s = t; *s; s++) {
		if (s > t && lint_word(s[-1]) && lint_word(pat[0]))
			continue;
		const char *a = s, *b = pat;
		while (*b) {
			if (*b == ' ') {
				if (!isspace((unsigned char)*a) && lint_word(b[-1]) && lint_word(b[1]))
					break;
				while (isspace((unsigned char)*a))
					a++;
				b++;
				continue;
			}
			if (*a != *b)
				break;
			a++, b++;
		}
		if (!*b && !(lint_word(pat[strlen(pat) - 1]) && lint_word(*a)))
			return true;
	}
	return false;
}

const char *sql_redshift_lint(const char *sql)
{
	static const struct {
		const char *pat, *name;
	} bad[] = {
		{ "COPY", "COPY" },
		{ "DISTINCT ON", "DISTINCT ON" },
		{ "STRING_AGG", "STRING_AGG" },
		{ "ARRAY_AGG", "ARRAY_AGG" },
		{ "JSON_AGG", "json_agg" },
		{ "JSONB_AGG", "jsonb_agg" },
		{ "ARRAY[", "an array constructor" },
		{ "ARRAY (", "an array constructor" },
		{ "ANY (", "= ANY(array)" },
		{ ")[", "an array subscript" },
		{ "FILTER (", "an aggregate FILTER clause" },
		{ "NULLS FIRST", "NULLS FIRST" },
		{ "NULLS LAST", "NULLS LAST" },
		{ "ON CONFLICT", "ON CONFLICT" },
		{ "::TEXT", "::text (VARCHAR(256) in Redshift)" },
		{ "AS TEXT)", "CAST(... AS TEXT) (VARCHAR(256) in Redshift)" },
		{ "COLLATE", "COLLATE" },
		{ "DECLARE", "a cursor" },
		{ "FETCH", "a cursor" },
		{ "GENERATE_SERIES", "GENERATE_SERIES" },
		{ "IS DISTINCT FROM", "IS DISTINCT FROM" },
		{ "IS NOT DISTINCT FROM", "IS NOT DISTINCT FROM" },
		{ "CTID", "ctid" },
		{ "MD5 (CAST (", "a row digest" },
		{ "LATERAL", "LATERAL" },
		{ "CLIENT_CONNECTION_CHECK_INTERVAL", "client_connection_check_interval" },
		{ "INTERVALSTYLE", "IntervalStyle" },
		{ "DEFAULT_TRANSACTION_READ_ONLY", "default_transaction_read_only" },
	};
	char *t = lint_text(sql);
	const char *found = NULL;
	for (size_t i = 0; !found && i < ARRAY_SIZE(bad); i++)
		if (lint_find(t, bad[i].pat))
			found = bad[i].name;
	/* more than 32767 parameters: $32768 or beyond */
	for (const char *s = t; !found && (s = strchr(s, '$')); s++) {
		char *end;
		long v = strtol(s + 1, &end, 10);
		if (end != s + 1 && v > 32767)
			found = "more than 32767 parameters";
	}
	free(t);
	return found;
}

/* ---- values ---- */

static const int64_t i64_abs_limit = INT64_C(100000000000); /* epoch seconds vs ms */

bool sql_is_text_type(enum prop_type t)
{
	return t == PROP_STRING || t == PROP_EMAIL || t == PROP_URL || t == PROP_PHONE;
}

bool sql_value_from_int(enum prop_type t, int64_t i, struct value *v)
{
	switch (t) {
	case PROP_INTEGER:
		v->kind = VAL_INT;
		v->u.i = i;
		return true;
	case PROP_FLOAT:
		v->kind = VAL_FLOAT;
		v->u.f = (double)i;
		return true;
	case PROP_BOOLEAN:
		if (i != 0 && i != 1)
			return false;
		v->kind = VAL_BOOL;
		v->u.b = i == 1;
		return true;
	case PROP_DATE:
		v->kind = VAL_DATE;
		v->u.i = (i <= i64_abs_limit && i >= -i64_abs_limit) ? i * 1000 : i;
		return true;
	default:
		return false; /* strings: the caller uses the text form */
	}
}

bool sql_value_from_real(enum prop_type t, double f, struct value *v)
{
	switch (t) {
	case PROP_INTEGER:
		if (!(f >= -9.2e18 && f <= 9.2e18) || f != floor(f))
			return false;
		v->kind = VAL_INT;
		v->u.i = (int64_t)f;
		return true;
	case PROP_FLOAT:
		if (!isfinite(f))
			return false;
		v->kind = VAL_FLOAT;
		v->u.f = f;
		return true;
	case PROP_BOOLEAN:
		if (f != 0 && f != 1)
			return false;
		v->kind = VAL_BOOL;
		v->u.b = f == 1;
		return true;
	case PROP_DATE:
		if (!(f >= -9e15 && f <= 9e15))
			return false;
		v->kind = VAL_DATE;
		v->u.i = (f <= 1e11 && f >= -1e11) ? (int64_t)llround(f * 1000) : (int64_t)f;
		return true;
	default:
		return false;
	}
}

bool sql_decode_array(const struct cfg_property *prop, const char *text, size_t len,
		      struct arena *a, struct value *out, size_t *n_invalid)
{
	json_error_t jerrbuf;
	json_t *j = json_loadb(text, len, JSON_DECODE_ANY, &jerrbuf);
	if (!j || !json_is_array(j)) {
		json_decref(j);
		return false;
	}
	size_t n = json_array_size(j), k = 0;
	struct value *items = arena_alloc(a, (n ? n : 1) * sizeof(*items));
	for (size_t i = 0; i < n; i++) {
		json_t *e = json_array_get(j, i);
		struct value v = VALUE_NULL;
		bool ok;
		char buf[32];
		if (json_is_string(e)) {
			ok = value_coerce_text(prop->type, json_string_value(e), json_string_length(e),
					       a, &v);
		} else if (json_is_integer(e)) {
			ok = sql_value_from_int(prop->type, json_integer_value(e), &v);
			if (!ok && sql_is_text_type(prop->type)) {
				int m = snprintf(buf, sizeof(buf), "%" PRId64,
						 (int64_t)json_integer_value(e));
				ok = value_coerce_text(prop->type, buf, (size_t)m, a, &v);
			}
		} else if (json_is_real(e)) {
			ok = sql_value_from_real(prop->type, json_real_value(e), &v);
			if (!ok && sql_is_text_type(prop->type)) {
				int m = snprintf(buf, sizeof(buf), "%.17g", json_real_value(e));
				ok = value_coerce_text(prop->type, buf, (size_t)m, a, &v);
			}
		} else if (json_is_boolean(e)) {
			ok = sql_value_from_int(prop->type, json_is_true(e), &v);
			if (!ok && sql_is_text_type(prop->type))
				ok = value_coerce_text(prop->type, json_is_true(e) ? "true" : "false",
						       json_is_true(e) ? 4 : 5, a, &v);
		} else {
			continue; /* null */
		}
		if (!ok)
			(*n_invalid)++;
		if (v.kind != VAL_NULL)
			items[k++] = v;
	}
	json_decref(j);
	out->kind = VAL_ARRAY;
	out->u.arr.items = items;
	out->u.arr.n = k;
	return true;
}

char *sql_fmt_i64(struct arena *a, int64_t i, size_t *len)
{
	char tmp[24], *e = tmp + sizeof(tmp), *p = e;
	uint64_t u = i < 0 ? 0 - (uint64_t)i : (uint64_t)i;
	do {
		*--p = (char)('0' + u % 10);
		u /= 10;
	} while (u);
	if (i < 0)
		*--p = '-';
	*len = (size_t)(e - p);
	char *out = arena_alloc(a, *len + 1);
	memcpy(out, p, *len);
	out[*len] = '\0';
	return out;
}

/* ---- check ---- */

static bool has_name(const char *const *names, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (!strcasecmp(names[i], name))
			return true;
	return false;
}

void sql_hint_names(struct jerror *err, const char *word, const char *const *names, size_t n,
		    const char *what)
{
	const char *s = suggest_closest(word, names, n);
	if (s) {
		jerror_hint(err, "did you mean \"%s\"?", s);
		return;
	}
	struct strbuf sb = STRBUF_INIT;
	for (size_t i = 0; i < n && i < 20; i++)
		strbuf_addf(&sb, "%s\"%s\"", i ? ", " : "", names[i]);
	if (n > 20)
		strbuf_addstr(&sb, ", ...");
	jerror_hint(err, "%s: %s", what, n ? sb.buf : "(none)");
	strbuf_release(&sb);
}

static enum jerr check_column(const struct cfg_source *src, const char *relname,
			      const char *const *names, size_t n, const char *col,
			      const char *used_by, struct jerror *err)
{
	if (!col || has_name(names, n, col))
		return JERR_OK;
	if (relname)
		jerror_set(err, JERR_CONFIG,
			   "source \"%s\": column \"%s\" does not exist in table \"%s\"",
			   sql_source_id(src), col, relname);
	else
		jerror_set(err, JERR_CONFIG,
			   "source \"%s\": column \"%s\" does not exist in the source query",
			   sql_source_id(src), col);
	jerror_detail(err, "used by %s", used_by);
	sql_hint_names(err, col, names, n,
		       relname ? "the table's columns are" : "the query's columns are");
	return JERR_CONFIG;
}

enum jerr sql_check_columns(const struct cfg_source *src, const char *relname,
			    const char *const *names, size_t n, struct jerror *err)
{
	struct strbuf used = STRBUF_INIT;
	enum jerr rc = check_column(src, relname, names, n, src->mapping_column,
				    "the source mapping", err);
	for (size_t i = 0; !rc && i < src->n_properties; i++) {
		const struct cfg_property *prop = src->properties[i];
		if (src->is_query && prop->query)
			continue;
		strbuf_reset(&used);
		strbuf_addf(&used, "property \"%s\" (options.column)", prop->id);
		rc = check_column(src, relname, names, n, prop->column, used.buf, err);
		if (rc)
			break;
		strbuf_reset(&used);
		strbuf_addf(&used, "property \"%s\" (options.sortColumn)", prop->id);
		rc = check_column(src, relname, names, n, prop->sort_column, used.buf, err);
		for (size_t k = 0; !rc && k < prop->n_filters; k++) {
			strbuf_reset(&used);
			strbuf_addf(&used, "property \"%s\" (filter %zu)", prop->id, k + 1);
			rc = check_column(src, relname, names, n, prop->filters[k].key, used.buf,
					  err);
		}
	}
	/* the high-water mark of an incremental schedule */
	if (!rc && src->schedule && !src->is_query) {
		strbuf_reset(&used);
		strbuf_addf(&used, "schedule \"%s\" (options.column)", src->schedule->id);
		rc = check_column(src, relname, names, n, cfg_options_str(&src->schedule->options, "column"),
				  used.buf, err);
	}
	strbuf_release(&used);
	return rc;
}

char *sql_sample_value(const char *s, size_t n)
{
	if (!s)
		return NULL;
	if (n <= SOURCE_SAMPLE_MAX_VALUE)
		return xstrndup(s, n);
	size_t k = SOURCE_SAMPLE_MAX_VALUE;
	while (k > 0 && ((unsigned char)s[k] & 0xC0) == 0x80)
		k--; /* not inside a UTF-8 sequence */
	char *out = xmalloc(k + sizeof("\xe2\x80\xa6"));
	memcpy(out, s, k);
	memcpy(out + k, "\xe2\x80\xa6", sizeof("\xe2\x80\xa6"));
	return out;
}

void sql_sample_query_sql(struct strbuf *sb, const char *query, size_t limit)
{
	strbuf_addstr(sb, "SELECT * FROM (");
	sql_add_query_text(sb, query);
	strbuf_addf(sb, "\n) AS joey_preview LIMIT %zu", limit > SOURCE_SAMPLE_MAX_ROWS ? (size_t)SOURCE_SAMPLE_MAX_ROWS : limit);
}

enum jerr sql_sample_table_known(const char *app_id, const char *table, char *const *names, size_t n,
				 struct jerror *err)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(names[i], table))
			return JERR_OK;
	jerror_set(err, JERR_CONFIG, "app \"%s\" has no table \"%s\"", app_id, table);
	sql_hint_names(err, table, (const char *const *)names, n, "its tables are");
	return JERR_CONFIG;
}
