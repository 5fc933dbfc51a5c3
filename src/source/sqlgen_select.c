/*
 * sqlgen_select.c: the column of one property in a source's statement
 * (sqlgen_internal.h, sqlgen_add_property): a row's value (one row per key), a Grouparoo
 * property query as a correlated subquery, a pick of one row (exact, most/least recent)
 * or an array in the dialect's style (enum sql_pick_style), or a plain aggregate. Picks
 * of SQL_PICK_WINDOW dialects add a column to the window layer (g->win). Called by the
 * driver in sqlgen.c, once per property in order.
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "source/sqlgen.h"
#include "source/sqlgen_internal.h"

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

/*
 * One ORDER BY key of a pick: col in direction desc with NULL smallest, as SQLite
 * sorts, after sep. Spelled out as a first key (CASE WHEN col IS NULL ...) for
 * d->null_rank (no NULLS FIRST/LAST inside OVER ()), else with asc_nulls/desc_nulls.
 */
static void add_pick_key(struct gen *g, struct strbuf *sb, const char *sep, const char *col, bool desc)
{
	const struct sql_dialect *d = g->d;
	if (d->null_rank) {
		strbuf_addf(sb, "%sCASE WHEN ", sep);
		sql_add_ident(d, sb, col);
		strbuf_addf(sb, " IS NULL THEN 0 ELSE 1 END%s, ", desc ? " DESC" : " ASC");
		sql_add_ident(d, sb, col);
		strbuf_addstr(sb, desc ? " DESC" : " ASC");
		return;
	}
	strbuf_addstr(sb, sep);
	sqlgen_add_num_col(g, sb, col); /* numbers written as text order as numbers (CSV) */
	strbuf_addstr(sb, desc ? " DESC" : " ASC");
	strbuf_addstr(sb, desc ? d->desc_nulls : d->asc_nulls);
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
		sqlgen_add_filters(g, sb, prop);
		strbuf_addstr(sb, " THEN 0 ELSE 1 END");
		sep = ", ";
	}
	if (prop->sort_column) {
		add_pick_key(g, sb, sep, prop->sort_column, desc);
		sep = ", ";
	}
	if (rowid) {
		strbuf_addstr(sb, sep);
		strbuf_addstr(sb, rowid);
		sep = ", ";
	} else if (d->value_tiebreak && prop->column) {
		/* no row order: the value itself (NULL smallest) */
		add_pick_key(g, sb, sep, prop->column, desc);
		sep = ", ";
	}
	return *sep != '\0';
}

/* " ORDER BY <pick order>" when the pick has one. */
static void add_order_by(struct gen *g, struct strbuf *sb, const struct cfg_property *prop)
{
	struct strbuf ord = STRBUF_INIT;
	if (add_pick_order(g, &ord, prop, false, g->rowid)) {
		strbuf_addstr(sb, " ORDER BY ");
		strbuf_addslice(sb, (struct slice){ ord.buf, ord.len });
	}
	strbuf_release(&ord);
}

/* The column, or with filters (cond) CASE WHEN <filters> THEN <column> END. */
static void add_filtered_column(struct gen *g, struct strbuf *sb, const struct cfg_property *prop, bool cond)
{
	/* MIN/MAX of a number: numbers written as text compare as numbers (num_fn) */
	bool num = (prop->agg == AGG_MIN || prop->agg == AGG_MAX) && !sql_is_text_type(prop->type);
	if (cond) {
		strbuf_addstr(sb, "CASE WHEN ");
		sqlgen_add_filters(g, sb, prop);
		strbuf_addstr(sb, " THEN ");
	}
	if (num)
		sqlgen_add_num_col(g, sb, prop->column);
	else
		sql_add_ident(g->d, sb, prop->column);
	if (cond)
		strbuf_addstr(sb, " END");
}

/* FILTER (WHERE <filters> AND <column> IS NOT NULL): an array's items. */
static void add_item_filter(struct gen *g, struct strbuf *sb, const struct cfg_property *prop)
{
	strbuf_addstr(sb, "FILTER (WHERE ");
	sqlgen_add_filters(g, sb, prop);
	strbuf_addstr(sb, " AND ");
	sql_add_ident(g->d, sb, prop->column);
	strbuf_addstr(sb, " IS NOT NULL)");
}

/* json_group_array(<column>) FILTER (WHERE ...) (SQLite) */
static void add_json_group_array(struct gen *g, struct strbuf *sb, const struct cfg_property *prop)
{
	strbuf_addstr(sb, "json_group_array(");
	sql_add_ident(g->d, sb, prop->column);
	strbuf_addstr(sb, ") ");
	add_item_filter(g, sb, prop);
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
			sqlgen_add_filters(g, cols, prop);
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
		sqlgen_add_filters(g, cols, prop);
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
		sqlgen_add_filters(g, cols, prop);
		strbuf_addstr(cols, ") > 0, ");
	}
	strbuf_addf(cols, "tupleElement(%s%s(tuple(", desc ? "argMax" : "argMin", cond ? "If" : "");
	sql_add_ident(d, cols, prop->column);
	strbuf_addstr(cols, "), tuple(");
	strbuf_addslice(cols, (struct slice){ keys.buf, keys.len });
	strbuf_addch(cols, ')');
	if (cond) {
		strbuf_addstr(cols, ", ");
		sqlgen_add_filters(g, cols, prop);
	}
	strbuf_addstr(cols, "), 1)");
	if (cond)
		strbuf_addstr(cols, ", NULL)");
	strbuf_release(&keys);
}


/* SQL_PICK_ORDERED_AGG (PostgreSQL): (ARRAY_AGG(...))[1] picks, json_agg arrays. */
static void add_ordered_agg_pick(struct gen *g, struct strbuf *cols, const struct cfg_property *prop, bool cond)
{
	const struct sql_dialect *d = g->d;
	if (prop->is_array) {
		/* COALESCE(json_agg(col ORDER BY ...) FILTER (WHERE f AND col IS NOT NULL), '[]') */
		strbuf_addstr(cols, "COALESCE(json_agg(");
		sql_add_ident(d, cols, prop->column);
		add_order_by(g, cols, prop);
		strbuf_addstr(cols, ") ");
		add_item_filter(g, cols, prop);
		strbuf_addstr(cols, ", '[]')");
		return;
	}
	/* (ARRAY_AGG(col ORDER BY sort, rowid) [FILTER (WHERE f)])[1] */
	strbuf_addstr(cols, "(ARRAY_AGG(");
	sql_add_ident(d, cols, prop->column);
	add_order_by(g, cols, prop);
	strbuf_addch(cols, ')');
	if (cond) {
		strbuf_addstr(cols, " FILTER (WHERE ");
		sqlgen_add_filters(g, cols, prop);
		strbuf_addch(cols, ')');
	}
	strbuf_addstr(cols, ")[1]");
}

/*
 * An array as ARRAY_AGG(CASE WHEN f THEN col END) WITHIN GROUP (ORDER BY ...)
 * (SQL_PICK_WINDOW_WITHIN_GROUP, Snowflake) or ARRAY_AGG(... IGNORE NULLS ORDER BY ...)
 * (SQL_PICK_WINDOW_IGNORE_NULLS, BigQuery): NULLs left out.
 */
static void add_array_agg(struct gen *g, struct strbuf *cols, const struct cfg_property *prop, bool cond)
{
	strbuf_addstr(cols, "ARRAY_AGG(");
	add_filtered_column(g, cols, prop, cond);
	struct strbuf ord = STRBUF_INIT;
	bool ordered = add_pick_order(g, &ord, prop, false, g->rowid);
	if (g->d->pick == SQL_PICK_WINDOW_IGNORE_NULLS) {
		strbuf_addstr(cols, " IGNORE NULLS");
		if (ordered)
			strbuf_addstr(cols, " ORDER BY ");
		strbuf_addslice(cols, (struct slice){ ord.buf, ord.len });
		strbuf_addch(cols, ')');
	} else {
		strbuf_addch(cols, ')');
		if (ordered)
			strbuf_addstr(cols, " WITHIN GROUP (ORDER BY ");
		strbuf_addslice(cols, (struct slice){ ord.buf, ord.len });
		if (ordered)
			strbuf_addch(cols, ')');
	}
	strbuf_release(&ord);
}

/* An array as JSON_ARRAYAGG(CASE WHEN f THEN col END ORDER BY ...) (SQL_PICK_WINDOW_ARRAYAGG,
 * MariaDB): NULLs are dropped when decoding. */
static void add_json_arrayagg(struct gen *g, struct strbuf *cols, const struct cfg_property *prop, bool cond)
{
	strbuf_addstr(cols, "JSON_ARRAYAGG(");
	add_filtered_column(g, cols, prop, cond);
	add_order_by(g, cols, prop);
	strbuf_addch(cols, ')');
}

/*
 * A pick (or a SQLite array) through the window layer: ROW_NUMBER() (or the array's
 * window aggregate) OVER (PARTITION BY <key> ORDER BY ...) AS "joey$wN" in g->win, read
 * in cols as MAX(CASE WHEN "joey$wN" = 1 [AND f] THEN col END) (MAX("joey$wN") for an
 * array). An array with no order to keep is a plain json_group_array aggregate.
 */
static void add_window_pick(struct gen *g, struct strbuf *cols, const struct cfg_property *prop, bool cond)
{
	const struct sql_dialect *d = g->d;
	struct strbuf *win = &g->win;
	bool ordered = prop->sort_column || g->rowid || (d->value_tiebreak && prop->column);
	if (prop->is_array && !ordered) {
		/* no order to keep: a plain aggregate */
		add_json_group_array(g, cols, prop);
		return;
	}
	g->n_win++;
	strbuf_addstr(win, ", ");
	if (prop->is_array) {
		add_json_group_array(g, win, prop);
		strbuf_addstr(win, " OVER (PARTITION BY ");
	} else {
		strbuf_addstr(win, "ROW_NUMBER() OVER (PARTITION BY ");
	}
	sqlgen_add_key_expr(g, win, g->K, g->natural, g->p->int_key);
	if (ordered || cond)
		strbuf_addstr(win, " ORDER BY ");
	if (!add_pick_order(g, win, prop, cond && !prop->is_array, g->rowid) && prop->is_array)
		strbuf_addstr(win, "1");
	if (prop->is_array)
		strbuf_addstr(win, " ROWS BETWEEN UNBOUNDED PRECEDING AND "
				   "UNBOUNDED FOLLOWING");
	strbuf_addf(win, ") AS ");
	char wname[32];
	snprintf(wname, sizeof(wname), "joey$w%zu", g->n_win);
	sql_add_ident(d, win, wname);
	if (prop->is_array) {
		strbuf_addstr(cols, "MAX(");
		sql_add_ident(d, cols, wname);
		strbuf_addch(cols, ')');
		return;
	}
	strbuf_addstr(cols, "MAX(CASE WHEN ");
	sql_add_ident(d, cols, wname);
	strbuf_addstr(cols, " = 1");
	if (cond) {
		strbuf_addstr(cols, " AND ");
		sqlgen_add_filters(g, cols, prop);
	}
	strbuf_addstr(cols, " THEN ");
	if (d->pick_cast)
		strbuf_addstr(cols, "CAST(");
	sql_add_ident(d, cols, prop->column);
	if (d->pick_cast)
		strbuf_addf(cols, " AS %s)", d->pick_cast);
	strbuf_addstr(cols, " END)");
}

/* count, sum, average, min, max over the (filtered) column. */
static void add_aggregate(struct gen *g, struct strbuf *cols, const struct cfg_property *prop, bool cond)
{
	const struct sql_dialect *d = g->d;
	struct strbuf x = STRBUF_INIT;
	add_filtered_column(g, &x, prop, cond);
	struct strbuf avg = STRBUF_INIT;
	if (d->avg_cast)
		strbuf_addf(&avg, "AVG(CAST(%s AS %s))", x.buf, d->avg_cast);
	else
		strbuf_addf(&avg, "AVG(%s)", x.buf);
	switch (prop->agg) {
	case AGG_COUNT:
		strbuf_addf(cols, "COUNT(%s)", x.buf);
		break;
	case AGG_SUM:
		strbuf_addf(cols, "COALESCE(SUM(%s), 0)", x.buf);
		break;
	case AGG_AVERAGE:
		if (!cond) {
			strbuf_addf(cols, "COALESCE(%s, 0)", avg.buf);
			break;
		}
		/* Grouparoo filtered in WHERE: no matching row means no value */
		strbuf_addstr(cols, "CASE WHEN COUNT(CASE WHEN ");
		sqlgen_add_filters(g, cols, prop);
		strbuf_addf(cols, " THEN 1 END) > 0 THEN COALESCE(%s, 0) END", avg.buf);
		break;
	case AGG_MIN:
		strbuf_addf(cols, "MIN(%s)", x.buf);
		break;
	case AGG_MAX:
		strbuf_addf(cols, "MAX(%s)", x.buf);
		break;
	default:
		strbuf_addstr(cols, "NULL");
		break;
	}
	strbuf_release(&x);
	strbuf_release(&avg);
}

/* What a grouped statement cannot read for prop: JERR_CONFIG with err set, or JERR_OK. */
static enum jerr check_grouped(const struct sql_dialect *d, const struct cfg_property *prop, bool pick,
			       struct jerror *err)
{
	if ((prop->agg == AGG_MOST_RECENT || prop->agg == AGG_LEAST_RECENT) && !prop->sort_column)
		return jerror_set(err, JERR_CONFIG, "property \"%s\": aggregation \"%s\" needs a sortColumn",
				  prop->id, agg_method_name(prop->agg));
	if (pick && prop->is_array && d->no_arrays) {
		jerror_set(err, JERR_CONFIG, "property \"%s\": array properties are not supported on %s",
			   prop->id, d->name);
		jerror_detail(err, "%s has no array or JSON aggregate joey could read", d->name);
		jerror_hint(err, "aggregate the values in a view or in the source's "
				 "options.query (e.g. LISTAGG) and read it as a string property");
		return JERR_CONFIG;
	}
	return JERR_OK;
}

enum jerr sqlgen_add_property(struct gen *g, struct strbuf *cols, const struct cfg_property *prop,
			      struct jerror *err)
{
	const struct sql_dialect *d = g->d;
	const struct cfg_source *src = g->src;
	enum jerr rc;

	strbuf_addstr(cols, ", ");
	if (src->is_query && prop->query) {
		if (prop->is_array) {
			rc = jerror_set(err, JERR_CONFIG,
					"property \"%s\": array properties with a query are not "
					"supported",
					prop->id);
			jerror_hint(err, "aggregate in the source query and use options.column");
			return rc;
		}
		return add_property_query(g, cols, src, prop, g->K, err);
	}
	if (!prop->column || !*prop->column)
		return jerror_set(err, JERR_CONFIG, "property \"%s\": option \"column\" is required",
				  prop->id);
	bool cond = prop->n_filters > 0;
	if (!g->p->grouped) {
		/* one row per key: the row's value */
		add_filtered_column(g, cols, prop, cond);
		return JERR_OK;
	}
	bool pick = prop->is_array || prop->agg == AGG_EXACT ||
		    prop->agg == AGG_MOST_RECENT || prop->agg == AGG_LEAST_RECENT;
	if ((rc = check_grouped(d, prop, pick, err)))
		return rc;
	if (!pick)
		add_aggregate(g, cols, prop, cond);
	else if (d->pick == SQL_PICK_ARGMAX)
		add_argmax_pick(g, cols, prop, cond);
	else if (d->pick == SQL_PICK_ORDERED_AGG)
		add_ordered_agg_pick(g, cols, prop, cond);
	else if (prop->is_array &&
		 (d->pick == SQL_PICK_WINDOW_WITHIN_GROUP || d->pick == SQL_PICK_WINDOW_IGNORE_NULLS))
		add_array_agg(g, cols, prop, cond);
	else if (prop->is_array && d->pick == SQL_PICK_WINDOW_ARRAYAGG)
		add_json_arrayagg(g, cols, prop, cond);
	else
		add_window_pick(g, cols, prop, cond);
	return JERR_OK;
}
