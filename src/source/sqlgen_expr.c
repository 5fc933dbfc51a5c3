/*
 * sqlgen_expr.c: the expression pieces of a source's statement (sqlgen_internal.h):
 * identifiers, parameter markers, the table, filter conditions, the key as selected and
 * as ordered. Appends to strbufs it borrows; bound values go to the plan (g->p).
 * Called by the other sqlgen files; sql_add_ident and sql_add_query_text also by the
 * connectors (sqlgen.h).
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "base/xalloc.h"
#include "source/sqlgen.h"
#include "source/sqlgen_internal.h"

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

/* Append a parameter marker for a new bind value, compared with column (or NULL). */
void sqlgen_add_param_col(struct gen *g, struct strbuf *sb, const char *text, bool numeric,
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

void sqlgen_add_param(struct gen *g, struct strbuf *sb, const char *text, bool numeric)
{
	sqlgen_add_param_col(g, sb, text, numeric, NULL);
}

/* The table option: one identifier, or (d->dotted_table) "db.table" as two. */
void sqlgen_add_table(struct gen *g, struct strbuf *sb, const char *table)
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

void sqlgen_add_text_cast(struct gen *g, struct strbuf *sb, const char *col)
{
	strbuf_addstr(sb, "CAST(");
	sql_add_ident(g->d, sb, col);
	strbuf_addf(sb, " AS %s)", g->d->text_type);
}

void sqlgen_add_num_col(struct gen *g, struct strbuf *sb, const char *col)
{
	if (!g->d->num_fn) {
		sql_add_ident(g->d, sb, col);
		return;
	}
	strbuf_addf(sb, "%s(", g->d->num_fn);
	sql_add_ident(g->d, sb, col);
	strbuf_addch(sb, ')');
}

/* Append the AND of the property's filters (true when there are none). */
void sqlgen_add_filters(struct gen *g, struct strbuf *sb, const struct cfg_property *prop)
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
			if (!f->match && (f->op == FOP_EQ || f->op == FOP_NE)) {
				sql_add_ident(d, sb, f->key);
				strbuf_addstr(sb, f->op == FOP_EQ ? " IS NULL" : " IS NOT NULL");
				break;
			}
			if (f->match_is_number)
				sqlgen_add_num_col(g, sb, f->key);
			else
				sql_add_ident(d, sb, f->key);
			strbuf_addstr(sb, cmp[f->op]);
			sqlgen_add_param_col(g, sb, f->match ? f->match : "", f->match_is_number, f->key);
			if (!f->match_is_number)
				strbuf_addstr(sb, d->key_collate); /* MariaDB: compare text bytewise too */
			break;
		case FOP_SUBSTRING:
		case FOP_NOT_SUBSTRING:
			if (d->substring_fn) {
				/* <fn>(CAST(col AS text), 'm') > 0: an exact, case-insensitive substring */
				strbuf_addf(sb, "%s%s(", f->op == FOP_SUBSTRING ? "" : "NOT ",
					    d->substring_fn);
				sqlgen_add_text_cast(g, sb, f->key);
				strbuf_addstr(sb, ", ");
				sqlgen_add_param(g, sb, f->match ? f->match : "", false);
				strbuf_addstr(sb, ") > 0");
				break;
			}
			strbuf_addstr(sb, f->op == FOP_SUBSTRING ? "LOWER(" : "NOT LOWER(");
			sqlgen_add_text_cast(g, sb, f->key);
			strbuf_addstr(sb, d->concat_fn ? ") LIKE CONCAT('%', LOWER("
						       : ") LIKE '%' || LOWER(");
			if (d->cast_text_params)
				strbuf_addstr(sb, "CAST(");
			sqlgen_add_param(g, sb, like_escape(g->p, f->match ? f->match : ""), false);
			if (d->cast_text_params)
				strbuf_addf(sb, " AS %s)", d->text_type);
			strbuf_addstr(sb, d->concat_fn ? "), '%')" : ") || '%'");
			strbuf_addstr(sb, d->like_escape);
			break;
		case FOP_IN:
			if (f->match_is_number)
				sqlgen_add_num_col(g, sb, f->key);
			else
				sql_add_ident(d, sb, f->key);
			strbuf_addstr(sb, " IN (");
			for (size_t k = 0; k < f->n_match_list; k++) {
				if (k)
					strbuf_addstr(sb, ", ");
				sqlgen_add_param_col(g, sb, f->match_list[k], f->match_is_number, f->key);
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

/* Append the key expression over the raw columns of the source. */
void sqlgen_add_key_expr(struct gen *g, struct strbuf *sb, const char *col, bool natural,
			 bool int_key)
{
	if (natural || int_key) {
		sql_add_ident(g->d, sb, col);
		return;
	}
	sqlgen_add_text_cast(g, sb, col);
	strbuf_addstr(sb, g->d->key_collate);
}

/* The key as ORDER BY sorts it (key_compare order), over the raw columns. */
void sqlgen_add_order_key(struct gen *g, struct strbuf *sb, const char *K, bool natural, bool int_key)
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
		sqlgen_add_text_cast(g, sb, K);
		strbuf_addstr(sb, d->key_collate);
		strbuf_addstr(sb, d->text_order);
	}
}
