/*
 * sqlgen_where.c: what limits the rows a source's statement reads (sqlgen_internal.h):
 * rows since a mark (incremental reads), a key range (workers' partitions), some keys,
 * a lookup by value; and the warehouse diff's wrapping of the statement (keys, row
 * digests). Values are bound parameters, never SQL text; escaped copies live in the
 * plan's arena. Called by the driver in sqlgen.c.
 */
#include <ctype.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "source/sqlgen.h"
#include "source/sqlgen_internal.h"

/* A number-looking mark is bound as a number (a column with no type affinity compares
 * integers and text differently; a text column's goes through since_fn or since_number,
 * sqlgen.h); anything else as text. */
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
		sqlgen_add_table(g, sb, src->table);
		strbuf_addstr(sb, " WHERE ");
	}
	bool number = since_is_number(read->since_value);
	/* a number mark against a text column: compared as joey orders marks (sqlgen.h) */
	bool as_number = number && (d->since_fn || d->since_number) && d->text_column &&
			 d->text_column(g->conn, src->table, read->since_column);
	if (as_number && d->since_fn) {
		/* the mark goes as text: the function compares it exactly as joey does */
		strbuf_addf(sb, "%s(", d->since_fn);
		sql_add_ident(d, sb, read->since_column);
		strbuf_addstr(sb, ", ");
		sqlgen_add_param_col(g, sb, read->since_value, false, read->since_column);
		strbuf_addch(sb, ')');
	} else if (as_number) {
		/* the column's text as a number, the mark a number; other text is read again */
		struct strbuf col = STRBUF_INIT;
		sql_add_ident(d, &col, read->since_column);
		strbuf_addstr(sb, "COALESCE(");
		d->since_number(sb, col.buf);
		strbuf_addstr(sb, " >= ");
		sqlgen_add_param(g, sb, read->since_value, true);
		strbuf_addf(sb, ", %s IS NOT NULL)", col.buf);
		strbuf_release(&col);
	} else {
		sql_add_ident(d, sb, read->since_column);
		strbuf_addstr(sb, " >= ");
		sqlgen_add_param_col(g, sb, read->since_value, number, read->since_column);
	}
	if (g->p->grouped)
		strbuf_addch(sb, ')');
}


/* A record key as a bound parameter, compared as ORDER BY sorts (key_collate). */
static void add_key_param(struct gen *g, struct strbuf *sb, const struct rkey *k)
{
	struct sql_plan *p = g->p;
	size_t n;
	if (k->is_int) {
		sqlgen_add_param(g, sb, sql_fmt_i64(&p->arena, k->i, &n), true);
		return;
	}
	char *t = arena_alloc(&p->arena, k->text.len + 1);
	memcpy(t, k->text.ptr, k->text.len);
	t[k->text.len] = 0;
	sqlgen_add_param(g, sb, t, false);
	strbuf_addstr(sb, g->d->key_collate); /* MariaDB: bytewise, as for filters */
}

/* One bound of a key range: <order key> op <bound>, compared as ORDER BY sorts. */
static void add_range_bound(struct gen *g, struct strbuf *sb, const char *K, bool natural, bool int_key,
			    const char *op, const struct rkey *b)
{
	sqlgen_add_order_key(g, sb, K, natural, int_key);
	strbuf_addstr(sb, op);
	add_key_param(g, sb, b);
}

/* <order key> IN (<keys>): the rows of some record keys only (read->in_keys). */
static void add_keys_in(struct gen *g, struct strbuf *sb, const char *K, bool natural,
			const struct rkey *keys, size_t n)
{
	sqlgen_add_order_key(g, sb, K, natural, g->p->int_key);
	strbuf_addstr(sb, " IN (");
	for (size_t i = 0; i < n; i++) {
		if (i)
			strbuf_addstr(sb, ", ");
		add_key_param(g, sb, &keys[i]);
	}
	strbuf_addch(sb, ')');
}

/* WHERE of a read limited to a key range, to some keys and/or to rows since a mark. */
void sqlgen_add_read_where(struct gen *g, struct strbuf *sb, const struct cfg_source *src, const char *K,
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
		sqlgen_add_param(g, sb, match->match_value, match->match_is_number);
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
void sqlgen_wrap_warehouse(struct gen *g, const struct rkey *keys, size_t n_keys, bool digest, int n_cols)
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
		sqlgen_add_param(g, &sb, keys_array_literal(p, keys, n_keys), false);
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

