/*
 * sqlgen.c: one ordered, aggregated SQL statement per source, for every SQL dialect: the
 * driver (sql_plan_build: check the read, the base relation, one column per property,
 * assemble, placeholders), plans and their description. The pieces are in the other
 * sqlgen_*.c files (sqlgen_internal.h). The plan owns the statement, its binds and
 * their escaped copies; the source is borrowed. Called by the SQL connectors (sqlgen.h).
 */
#include "source/sqlgen.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "base/xalloc.h"
#include "source/source.h"
#include "source/sqlgen_internal.h"

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

/*
 * Rewrite parameter markers to the dialect's placeholders (reordering binds for ?).
 * Only sqlgen_add_param_col writes markers and check_markers keeps them out of the
 * config's text and names, but a marker is checked before its bind is read: one that
 * is not \001<1..n_binds>\002 is JERR_INTERNAL, p->sql left as it was.
 */
static enum jerr finish_params(struct gen *g, struct jerror *err)
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
		size_t n = 0, at = i, digits = 0;
		for (i++; i < p->sql.len && p->sql.buf[i] >= '0' && p->sql.buf[i] <= '9' && digits < 9; i++, digits++)
			n = n * 10 + (size_t)(p->sql.buf[i] - '0');
		if (i >= p->sql.len || p->sql.buf[i] != MARK_CLOSE || !digits || !n || n > p->n_binds) {
			strbuf_release(&out);
			free(ordered);
			jerror_set(err, JERR_INTERNAL, "source \"%s\": the statement has a malformed parameter marker",
				   sql_source_id(g->src));
			jerror_detail(err, "byte %zu of the statement; %zu values are bound", at, p->n_binds);
			jerror_hint(err, "a table or column name may hold a control character (\\001): remove it");
			return JERR_INTERNAL;
		}
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
	return JERR_OK;
}

/* The parts of a read that limit or extend the statement (check_read). */
struct read_parts {
	const struct source_read *since; /* with a since column, or NULL: a full read */
	const struct key_range *range;   /* workers' partitions: applies to every source */
	const struct source_read *in_keys; /* some keys only: applies to every source */
	const struct source_read *match;   /* rows whose column equals a value */
	/* the warehouse diff's parts (sqlgen_wrap_warehouse) */
	const struct rkey *wh_keys;
	size_t wh_n_keys;
	bool wh_digest;
};

/* Sort read's parts into *rp; JERR_CONFIG for a read this source cannot do. */
static enum jerr check_read(const struct sql_dialect *d, const struct cfg_source *src,
			    const struct source_read *read, struct read_parts *rp, struct jerror *err)
{
	enum jerr rc;

	memset(rp, 0, sizeof(*rp));
	/* a key range (workers' partitions) applies to every source; `read` is the since part */
	rp->range = read && read->range && (read->range->lo || read->range->hi) ? read->range : NULL;
	/* the warehouse diff's parts (wrap_warehouse) */
	rp->wh_keys = read ? read->keys : NULL;
	rp->wh_n_keys = read ? read->n_keys : 0;
	rp->wh_digest = read && read->digest;
	if ((rp->wh_keys || rp->wh_digest) &&
	    (d->params != SQL_PARAM_DOLLAR || d->pick != SQL_PICK_ORDERED_AGG || (rp->wh_digest && read->since_column))) {
		rc = jerror_set(err, JERR_CONFIG, "source \"%s\": the warehouse diff cannot read it",
				sql_source_id(src));
		jerror_detail(err, d->params != SQL_PARAM_DOLLAR || d->pick != SQL_PICK_ORDERED_AGG
					   ? "the warehouse diff needs a PostgreSQL source"
					   : "row digests and incremental reads cannot be combined");
		return rc;
	}
	/* some keys only: applies to every source, like the range */
	rp->in_keys = read && read->in_keys && read->n_in_keys ? read : NULL;
	/* rows whose column equals a value (a lookup by a unique property) */
	rp->match = read && read->match_column && read->match_value ? read : NULL;
	if (rp->match && src->is_query) {
		rc = jerror_set(err, JERR_CONFIG, "source \"%s\": a lookup by value needs a table source",
				sql_source_id(src));
		jerror_detail(err, "joey cannot add a condition on \"%s\" to a source query",
			      rp->match->match_column);
		jerror_hint(err, "look the record up by a property of a table source, or by its primary key");
		return rc;
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
		return rc;
	}
	rp->since = read;
	return JERR_OK;
}

/* A name given to SQL that holds our parameter markers (the loader refuses them), or NULL. */
static const char *marker_in(const char *name)
{
	return name && strpbrk(name, "\001\002") ? name : NULL;
}

/* User SQL and the names the config gives may not contain our parameter markers. */
static enum jerr check_markers(const struct cfg_source *src, struct jerror *err)
{
	enum jerr rc;

	if ((src->query && strpbrk(src->query, "\001\002")))
		return jerror_set(err, JERR_CONFIG, "source \"%s\": query contains control characters",
				  sql_source_id(src));
	for (size_t i = 0; i < src->n_properties; i++) {
		const struct cfg_property *prop = src->properties[i];
		if (prop->query && strpbrk(prop->query, "\001\002"))
			return jerror_set(err, JERR_CONFIG,
					  "property \"%s\": query contains control characters", prop->id);
	}
	const char *what = marker_in(src->table) ? "table" : marker_in(src->mapping_column) ? "mapping" : NULL;
	const char *id = sql_source_id(src), *cls = "source";
	for (size_t i = 0; !what && i < src->n_properties; i++) {
		const struct cfg_property *prop = src->properties[i];
		what = marker_in(prop->column) ? "column" : marker_in(prop->sort_column) ? "sortColumn" : NULL;
		for (size_t k = 0; !what && k < prop->n_filters; k++)
			what = marker_in(prop->filters[k].key) ? "filters.key" : NULL;
		if (what) {
			id = prop->id;
			cls = "property";
		}
	}
	if (!what)
		return JERR_OK;
	rc = jerror_set(err, JERR_CONFIG, "%s \"%s\": %s contains control characters", cls, id, what);
	jerror_hint(err, "table and column names may not contain control characters: remove them");
	return rc;
}

/*
 * The base relation into base: the table, (the source query), or for a Grouparoo-style
 * query source the primary source's keys; g->K, g->natural and g->rowid as it tells.
 */
static enum jerr add_base(struct gen *g, struct strbuf *base, bool *is_subquery, struct jerror *err)
{
	const struct sql_dialect *d = g->d;
	const struct cfg_source *src = g->src;
	const struct cfg_model *model = src->model;

	*is_subquery = false;
	if (!src->is_query) {
		if (!src->table || !*src->table)
			return jerror_set(err, JERR_CONFIG, "source \"%s\": option \"table\" is required",
					  sql_source_id(src));
		sqlgen_add_table(g, base, src->table);
		if (g->K && d->table_info)
			d->table_info(g->conn, src->table, g->K, g->p->int_key, &g->natural, &g->rowid);
		return JERR_OK;
	}
	if (src->query && *src->query) {
		strbuf_addch(base, '(');
		sql_add_query_text(base, src->query);
		strbuf_addch(base, ')');
		*is_subquery = true;
		return JERR_OK;
	}
	/* Grouparoo-style query source: the keys come from the primary source's table */
	const struct cfg_source *ps = model ? model->primary_source : NULL;
	if (src->is_primary || !ps || ps->is_query || !ps->table || !ps->mapping_column ||
	    ps->app != src->app) {
		jerror_set(err, JERR_CONFIG, "source \"%s\": a query source needs options.query",
			   sql_source_id(src));
		jerror_detail(err, "joey reads each source with one query, so it needs the "
				   "set of record keys the property queries run for");
		jerror_hint(err, "add options.query with a SELECT that returns the key "
				 "column, or make the primary source a table source of the same app");
		return JERR_CONFIG;
	}
	if (!g->K)
		g->K = ps->mapping_column;
	strbuf_addstr(base, "(SELECT ");
	sql_add_ident(d, base, ps->mapping_column);
	strbuf_addstr(base, " AS ");
	sql_add_ident(d, base, g->K);
	strbuf_addstr(base, " FROM ");
	sqlgen_add_table(g, base, ps->table);
	strbuf_addch(base, ')');
	*is_subquery = true;
	return JERR_OK;
}

/*
 * The statement into g->p->sql from its parts (design note):
 *   SELECT <key><cols>[, COUNT(*)][, MAX(since)] FROM <base or window layer> AS "joey$src"
 *   [WHERE ...] [GROUP BY <key>] [ORDER BY <key order>]
 */
static void assemble(struct gen *g, const struct read_parts *rp, const struct strbuf *base,
		     bool base_is_subquery, const struct strbuf *cols)
{
	const struct sql_dialect *d = g->d;
	const struct cfg_source *src = g->src;
	const struct source_read *read = rp->since;
	struct sql_plan *p = g->p;
	const char *K = g->K;
	bool limited = (read && read->since_value) || rp->range || rp->in_keys || rp->match;

	strbuf_addstr(&p->sql, "SELECT ");
	sqlgen_add_key_expr(g, &p->sql, K, g->natural, p->int_key);
	strbuf_addslice(&p->sql, (struct slice){ cols->buf, cols->len });
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
	if (g->n_win) {
		strbuf_addstr(&p->sql, "(SELECT *");
		strbuf_addslice(&p->sql, (struct slice){ g->win.buf, g->win.len });
		strbuf_addstr(&p->sql, " FROM ");
		strbuf_addslice(&p->sql, (struct slice){ base->buf, base->len });
		if (base_is_subquery) {
			strbuf_addstr(&p->sql, " AS ");
			sql_add_ident(d, &p->sql, BASE_ALIAS);
		}
		if (limited)
			sqlgen_add_read_where(g, &p->sql, src, K, g->natural, read, rp->range, rp->in_keys,
					      rp->match);
		strbuf_addch(&p->sql, ')');
	} else {
		strbuf_addslice(&p->sql, (struct slice){ base->buf, base->len });
	}
	strbuf_addstr(&p->sql, " AS ");
	sql_add_ident(d, &p->sql, SRC_ALIAS);
	if (!g->n_win && limited)
		sqlgen_add_read_where(g, &p->sql, src, K, g->natural, read, rp->range, rp->in_keys, rp->match);
	if (p->grouped) {
		strbuf_addstr(&p->sql, " GROUP BY ");
		sqlgen_add_key_expr(g, &p->sql, K, g->natural, p->int_key);
	}
	if (!p->unordered) {
		strbuf_addstr(&p->sql, " ORDER BY ");
		sqlgen_add_order_key(g, &p->sql, K, g->natural, p->int_key);
	}
}

enum jerr sql_plan_build(const struct sql_dialect *d, void *conn, const struct cfg_source *src,
			 const struct source_read *read, struct sql_plan *p, struct jerror *err)
{
	const struct cfg_model *model = src->model;
	const struct cfg_property *kp =
		model && model->primary_key ? model->primary_key : src->mapping_property;
	struct strbuf base = STRBUF_INIT, cols = STRBUF_INIT;
	struct gen gen = { .d = d, .p = p, .conn = conn, .src = src, .K = src->mapping_column,
			   .win = STRBUF_INIT },
		   *g = &gen;
	struct read_parts rp;
	bool base_is_subquery = false;
	enum jerr rc;

	p->int_key = kp && kp->type == PROP_INTEGER;
	if ((rc = check_read(d, src, read, &rp, err)) || (rc = check_markers(src, err)) ||
	    (rc = add_base(g, &base, &base_is_subquery, err)))
		goto out;
	if (!g->K || !*g->K) {
		rc = jerror_set(err, JERR_CONFIG, "source \"%s\": no mapping column",
				sql_source_id(src));
		jerror_hint(err, "set the source's mapping to { \"<column>\": \"<property id>\" }");
		goto out;
	}
	p->key_column = g->K;
	p->grouped = needs_general_path(src);
	/* one expression per property */
	for (size_t i = 0; i < src->n_properties; i++)
		if ((rc = sqlgen_add_property(g, &cols, src->properties[i], err)))
			goto out;
	assemble(g, &rp, &base, base_is_subquery, &cols);
	if (rp.wh_keys || rp.wh_digest)
		sqlgen_wrap_warehouse(g, rp.wh_keys, rp.wh_n_keys, rp.wh_digest,
				      1 + (int)src->n_properties + (p->grouped ? 1 : 0) + (rp.since ? 1 : 0));
	rc = finish_params(g, err);
out:
	strbuf_release(&base);
	strbuf_release(&cols);
	strbuf_release(&g->win);
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
