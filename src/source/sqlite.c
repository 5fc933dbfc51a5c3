/* sqlite.c: the SQLite connector: one ordered, aggregated query per source per run. */
#include <ctype.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include <jansson.h>
#include <sqlite3.h>

#include "base/arena.h"
#include "base/log.h"
#include "base/suggest.h"
#include "base/timeutil.h"
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
 * every property into one aggregate; "pick one row" aggregations (most/least recent,
 * exact) number the rows of each key in a window layer
 *   (SELECT *, ROW_NUMBER() OVER (PARTITION BY <key> ORDER BY ...) AS "joey$wN" FROM <base>)
 * and keep the value of row 1. Every filter value is a numbered parameter (?N); every
 * identifier goes through strbuf_add_sql_ident.
 */

#define SRC_ALIAS "\"joey$src\""

struct sq_conn {
	sqlite3 *db;
	const struct cfg_app *app;
	char *path;
};

enum bind_kind { BIND_TEXT, BIND_INT, BIND_REAL };

struct bind {
	enum bind_kind kind;
	const char *s; /* borrowed from the config, or owned by plan.arena */
	int64_t i;
	double f;
};

/* The statement for one source, built by plan_build. */
struct plan {
	struct strbuf sql;
	struct bind *binds;
	size_t n_binds, alloc_binds;
	struct arena arena; /* escaped LIKE patterns */
	bool grouped;       /* GROUP BY key; the last column is COUNT(*) */
	bool int_key;
	const char *key_column;
};

struct sq_cursor {
	struct source_cursor base; /* first */
	sqlite3_stmt *stmt;
	struct sq_conn *conn;
	const struct cfg_source *src;
	struct arena arena; /* the current row's strings, arrays, key text */
	struct source_row row;
	bool grouped, int_key;
	int count_col;
	uint64_t null_keys;
	const char *key_column;
};

static const char *const sqlite_source_types[] = {
	"sqlite-import-table", "sqlite-import-query", "sqlite-table-import",
	"sqlite-query-import", NULL,
};
static const char *const sqlite_app_options[] = { "file", NULL };

static const char *sid(const struct cfg_source *src)
{
	return src && src->id ? src->id : "?";
}

/* ---- connection ---- */

static enum jerr sq_connect(const struct cfg_app *app, const char *config_dir, void **out,
			    struct jerror *err)
{
	const char *file = cfg_options_str(&app->options, "file");
	struct sq_conn *c;
	struct strbuf path = STRBUF_INIT;
	struct stat st;

	*out = NULL;
	if (!file || !*file) {
		jerror_set(err, JERR_CONFIG, "app \"%s\": option \"file\" is required", app->id);
		jerror_hint(err, "set options.file to the path of the SQLite database");
		return JERR_CONFIG;
	}
	if (file[0] != '/' && config_dir && *config_dir)
		strbuf_addf(&path, "%s/%s", config_dir, file);
	else
		strbuf_addstr(&path, file);
	if (stat(path.buf, &st) != 0) {
		jerror_set(err, JERR_SOURCE, "app \"%s\": database file \"%s\" does not exist",
			   app->id, path.buf);
		jerror_hint(err, "check options.file; relative paths are resolved from the "
				 "config directory");
		strbuf_release(&path);
		return JERR_SOURCE;
	}
	c = xcalloc(1, sizeof(*c));
	c->app = app;
	c->path = strbuf_detach(&path, NULL);
	if (sqlite3_open_v2(c->path, &c->db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
		jerror_set(err, JERR_SOURCE, "app \"%s\": cannot open database \"%s\"", app->id,
			   c->path);
		jerror_detail(err, "%s", c->db ? sqlite3_errmsg(c->db) : "out of memory");
		sqlite3_close(c->db);
		free(c->path);
		free(c);
		return JERR_SOURCE;
	}
	sqlite3_busy_timeout(c->db, 5000);
	/* a misspelt "column" must be an error, not a string literal */
	sqlite3_db_config(c->db, SQLITE_DBCONFIG_DQS_DML, 0, (int *)NULL);
	sqlite3_db_config(c->db, SQLITE_DBCONFIG_DQS_DDL, 0, (int *)NULL);
	*out = c;
	return JERR_OK;
}

static void sq_disconnect(void *conn)
{
	struct sq_conn *c = conn;
	if (!c)
		return;
	sqlite3_close(c->db);
	free(c->path);
	free(c);
}

/* ---- building the statement ---- */

static void plan_init(struct plan *p)
{
	memset(p, 0, sizeof(*p));
	strbuf_init(&p->sql, 512);
	arena_init(&p->arena);
}

static void plan_release(struct plan *p)
{
	strbuf_release(&p->sql);
	free(p->binds);
	arena_release(&p->arena);
}

static const int64_t i64_abs_limit = INT64_C(100000000000); /* epoch seconds vs ms */


/* Append a parameter reference ?N for a new bind value. */
static void add_param(struct plan *p, struct strbuf *sb, const char *text, bool numeric)
{
	struct bind b = { BIND_TEXT, text, 0, 0 };
	char *end;

	if (numeric && text) {
		if (decimal_to_int64(text, strlen(text), &b.i)) {
			b.kind = BIND_INT;
		} else {
			b.f = strtod(text, &end);
			if (end != text && !*end)
				b.kind = BIND_REAL;
		}
	}
	ALLOC_GROW(p->binds, p->n_binds + 1, p->alloc_binds);
	p->binds[p->n_binds++] = b;
	strbuf_addf(sb, "?%zu", p->n_binds);
}

/* LIKE pattern text with \ % _ escaped (used with ESCAPE '\'). */
static const char *like_escape(struct plan *p, const char *s)
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

/* Append the AND of the property's filters ("1" when there are none). */
static void add_filters(struct plan *p, struct strbuf *sb, const struct cfg_property *prop)
{
	static const char *const cmp[FOP__COUNT] = {
		[FOP_EQ] = " = ", [FOP_NE] = " != ", [FOP_GT] = " > ",
		[FOP_GTE] = " >= ", [FOP_LT] = " < ", [FOP_LTE] = " <= ",
	};
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
			strbuf_add_sql_ident(sb, f->key);
			if (!f->match && (f->op == FOP_EQ || f->op == FOP_NE)) {
				strbuf_addstr(sb, f->op == FOP_EQ ? " IS NULL" : " IS NOT NULL");
				break;
			}
			strbuf_addstr(sb, cmp[f->op]);
			add_param(p, sb, f->match ? f->match : "", f->match_is_number);
			break;
		case FOP_SUBSTRING:
		case FOP_NOT_SUBSTRING:
			strbuf_addstr(sb, f->op == FOP_SUBSTRING ? "LOWER(CAST(" : "NOT LOWER(CAST(");
			strbuf_add_sql_ident(sb, f->key);
			strbuf_addstr(sb, " AS TEXT)) LIKE '%' || LOWER(");
			add_param(p, sb, like_escape(p, f->match ? f->match : ""), false);
			strbuf_addstr(sb, ") || '%' ESCAPE '\\'");
			break;
		case FOP_IN:
			strbuf_add_sql_ident(sb, f->key);
			strbuf_addstr(sb, " IN (");
			for (size_t k = 0; k < f->n_match_list; k++) {
				if (k)
					strbuf_addstr(sb, ", ");
				add_param(p, sb, f->match_list[k], f->match_is_number);
			}
			if (!f->n_match_list)
				strbuf_addstr(sb, "NULL");
			strbuf_addch(sb, ')');
			break;
		case FOP_EXISTS:
		case FOP_NOT_EXISTS:
			strbuf_add_sql_ident(sb, f->key);
			strbuf_addstr(sb, f->op == FOP_EXISTS ? " IS NOT NULL" : " IS NULL");
			break;
		default:
			strbuf_addstr(sb, "0");
			break;
		}
	}
	if (!prop->n_filters)
		strbuf_addch(sb, '1');
	strbuf_addch(sb, ')');
}

/* A query with trailing whitespace and semicolons removed, appended to sb. */
static void add_query_text(struct strbuf *sb, const char *q)
{
	size_t n = strlen(q);
	while (n && (isspace((unsigned char)q[n - 1]) || q[n - 1] == ';'))
		n--;
	strbuf_add(sb, q, n);
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
static enum jerr add_property_query(struct strbuf *sb, const struct cfg_source *src,
				    const struct cfg_property *prop, const char *key_column,
				    struct jerror *err)
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
		strbuf_addstr(sb, quoted ? "CAST(" SRC_ALIAS "." : SRC_ALIAS ".");
		strbuf_add_sql_ident(sb, key_column);
		if (quoted)
			strbuf_addstr(sb, " AS TEXT)");
		s = after + (quoted ? 1 : 0);
	}
	/* drop a trailing semicolon inside the parentheses */
	while (sb->len > start && (isspace((unsigned char)sb->buf[sb->len - 1]) ||
				   sb->buf[sb->len - 1] == ';'))
		strbuf_setlen(sb, sb->len - 1);
	strbuf_addch(sb, ')');
	return JERR_OK;
}

static bool decl_has(const char *decl, const char *word)
{
	size_t n = strlen(word);
	for (const char *d = decl; d && *d; d++)
		if (!strncasecmp(d, word, n))
			return true;
	return false;
}

static bool table_has_rowid(sqlite3 *db, const char *table)
{
	return sqlite3_table_column_metadata(db, NULL, table, "rowid", NULL, NULL, NULL, NULL,
					     NULL) == SQLITE_OK;
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
static void add_key_expr(struct strbuf *sb, const char *col, bool natural, bool int_key)
{
	if (natural || int_key) {
		strbuf_add_sql_ident(sb, col);
		return;
	}
	strbuf_addstr(sb, "CAST(");
	strbuf_add_sql_ident(sb, col);
	strbuf_addstr(sb, " AS TEXT)");
}

static enum jerr plan_build(struct sq_conn *c, const struct cfg_source *src, struct plan *p,
			    struct jerror *err)
{
	const struct cfg_model *model = src->model;
	const struct cfg_property *kp =
		model && model->primary_key ? model->primary_key : src->mapping_property;
	struct strbuf base = STRBUF_INIT, cols = STRBUF_INIT, win = STRBUF_INIT;
	bool natural = false, rowid = false;
	const char *K = src->mapping_column;
	enum jerr rc = JERR_OK;
	size_t n_win = 0;

	p->int_key = kp && kp->type == PROP_INTEGER;

	/* the base relation */
	if (!src->is_query) {
		if (!src->table || !*src->table) {
			rc = jerror_set(err, JERR_CONFIG, "source \"%s\": option \"table\" is required",
					sid(src));
			goto out;
		}
		strbuf_add_sql_ident(&base, src->table);
		rowid = table_has_rowid(c->db, src->table);
		const char *decl = NULL, *coll = NULL;
		if (K && sqlite3_table_column_metadata(c->db, NULL, src->table, K, &decl, &coll,
						       NULL, NULL, NULL) == SQLITE_OK) {
			if (p->int_key)
				natural = decl_has(decl, "INT");
			else
				natural = !decl_has(decl, "INT") &&
					  (decl_has(decl, "CHAR") || decl_has(decl, "CLOB") ||
					   decl_has(decl, "TEXT")) &&
					  coll && !strcasecmp(coll, "BINARY");
		}
	} else if (src->query && *src->query) {
		strbuf_addch(&base, '(');
		add_query_text(&base, src->query);
		strbuf_addch(&base, ')');
	} else {
		/* Grouparoo-style query source: the keys come from the primary source's table */
		const struct cfg_source *ps = model ? model->primary_source : NULL;
		if (src->is_primary || !ps || ps->is_query || !ps->table || !ps->mapping_column ||
		    ps->app != src->app) {
			rc = jerror_set(err, JERR_CONFIG,
					"source \"%s\": a query source needs options.query", sid(src));
			jerror_detail(err, "joey reads each source with one query, so it needs the "
					   "set of record keys the property queries run for");
			jerror_hint(err, "add options.query with a SELECT that returns the key "
					 "column, or make the primary source a table source of the same app");
			goto out;
		}
		if (!K)
			K = ps->mapping_column;
		strbuf_addstr(&base, "(SELECT ");
		strbuf_add_sql_ident(&base, ps->mapping_column);
		strbuf_addstr(&base, " AS ");
		strbuf_add_sql_ident(&base, K);
		strbuf_addstr(&base, " FROM ");
		strbuf_add_sql_ident(&base, ps->table);
		strbuf_addch(&base, ')');
	}
	if (!K || !*K) {
		rc = jerror_set(err, JERR_CONFIG, "source \"%s\": no mapping column", sid(src));
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
			rc = add_property_query(&cols, src, prop, K, err);
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
				strbuf_add_sql_ident(&cols, prop->column);
				continue;
			}
			strbuf_addstr(&cols, "CASE WHEN ");
			add_filters(p, &cols, prop);
			strbuf_addstr(&cols, " THEN ");
			strbuf_add_sql_ident(&cols, prop->column);
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
		if (pick) {
			const char *dir = prop->agg == AGG_MOST_RECENT ? " DESC" : " ASC";
			bool ordered = prop->sort_column || rowid;
			if (prop->is_array && !ordered) {
				/* no order to keep: a plain aggregate */
				strbuf_addstr(&cols, "json_group_array(");
				strbuf_add_sql_ident(&cols, prop->column);
				strbuf_addstr(&cols, ") FILTER (WHERE ");
				add_filters(p, &cols, prop);
				strbuf_addstr(&cols, " AND ");
				strbuf_add_sql_ident(&cols, prop->column);
				strbuf_addstr(&cols, " IS NOT NULL)");
				continue;
			}
			n_win++;
			strbuf_addstr(&win, ", ");
			if (prop->is_array) {
				strbuf_addstr(&win, "json_group_array(");
				strbuf_add_sql_ident(&win, prop->column);
				strbuf_addstr(&win, ") FILTER (WHERE ");
				add_filters(p, &win, prop);
				strbuf_addstr(&win, " AND ");
				strbuf_add_sql_ident(&win, prop->column);
				strbuf_addstr(&win, " IS NOT NULL) OVER (PARTITION BY ");
			} else {
				strbuf_addstr(&win, "ROW_NUMBER() OVER (PARTITION BY ");
			}
			add_key_expr(&win, K, natural, p->int_key);
			if (ordered || cond)
				strbuf_addstr(&win, " ORDER BY ");
			const char *sep = "";
			if (cond && !prop->is_array) {
				/* rows passing the filters first */
				strbuf_addstr(&win, "CASE WHEN ");
				add_filters(p, &win, prop);
				strbuf_addstr(&win, " THEN 0 ELSE 1 END");
				sep = ", ";
			}
			if (prop->sort_column) {
				strbuf_addstr(&win, sep);
				strbuf_add_sql_ident(&win, prop->sort_column);
				strbuf_addstr(&win, dir);
				sep = ", ";
			}
			if (rowid) {
				strbuf_addstr(&win, sep);
				strbuf_addstr(&win, "rowid");
			} else if (!*sep && prop->is_array) {
				strbuf_addstr(&win, "1");
			}
			if (prop->is_array)
				strbuf_addstr(&win, " ROWS BETWEEN UNBOUNDED PRECEDING AND "
						    "UNBOUNDED FOLLOWING");
			strbuf_addf(&win, ") AS \"joey$w%zu\"", n_win);
			if (prop->is_array) {
				strbuf_addf(&cols, "MAX(\"joey$w%zu\")", n_win);
			} else {
				strbuf_addf(&cols, "MAX(CASE WHEN \"joey$w%zu\" = 1", n_win);
				if (cond) {
					strbuf_addstr(&cols, " AND ");
					add_filters(p, &cols, prop);
				}
				strbuf_addstr(&cols, " THEN ");
				strbuf_add_sql_ident(&cols, prop->column);
				strbuf_addstr(&cols, " END)");
			}
			continue;
		}

		/* plain aggregates over the (filtered) column */
		struct strbuf x = STRBUF_INIT;
		if (cond) {
			strbuf_addstr(&x, "CASE WHEN ");
			add_filters(p, &x, prop);
			strbuf_addstr(&x, " THEN ");
			strbuf_add_sql_ident(&x, prop->column);
			strbuf_addstr(&x, " END");
		} else {
			strbuf_add_sql_ident(&x, prop->column);
		}
		switch (prop->agg) {
		case AGG_COUNT:
			strbuf_addf(&cols, "COUNT(%s)", x.buf);
			break;
		case AGG_SUM:
			strbuf_addf(&cols, "COALESCE(SUM(%s), 0)", x.buf);
			break;
		case AGG_AVERAGE:
			if (!cond) {
				strbuf_addf(&cols, "COALESCE(AVG(%s), 0)", x.buf);
				break;
			}
			/* Grouparoo filtered in WHERE: no matching row means no value */
			strbuf_addstr(&cols, "CASE WHEN COUNT(CASE WHEN ");
			add_filters(p, &cols, prop);
			strbuf_addf(&cols, " THEN 1 END) > 0 THEN COALESCE(AVG(%s), 0) END", x.buf);
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
	}

	/* assemble */
	strbuf_addstr(&p->sql, "SELECT ");
	add_key_expr(&p->sql, K, natural, p->int_key);
	strbuf_addslice(&p->sql, (struct slice){ cols.buf, cols.len });
	if (p->grouped)
		strbuf_addstr(&p->sql, ", COUNT(*)");
	strbuf_addstr(&p->sql, " FROM ");
	if (n_win) {
		strbuf_addstr(&p->sql, "(SELECT *");
		strbuf_addslice(&p->sql, (struct slice){ win.buf, win.len });
		strbuf_addstr(&p->sql, " FROM ");
		strbuf_addslice(&p->sql, (struct slice){ base.buf, base.len });
		strbuf_addch(&p->sql, ')');
	} else {
		strbuf_addslice(&p->sql, (struct slice){ base.buf, base.len });
	}
	strbuf_addstr(&p->sql, " AS " SRC_ALIAS);
	if (p->grouped) {
		strbuf_addstr(&p->sql, " GROUP BY ");
		add_key_expr(&p->sql, K, natural, p->int_key);
	}
	strbuf_addstr(&p->sql, " ORDER BY ");
	if (natural) {
		strbuf_add_sql_ident(&p->sql, K);
	} else if (p->int_key) {
		strbuf_addstr(&p->sql, "CAST(");
		strbuf_add_sql_ident(&p->sql, K);
		strbuf_addstr(&p->sql, " AS INTEGER)");
	} else {
		strbuf_addstr(&p->sql, "CAST(");
		strbuf_add_sql_ident(&p->sql, K);
		strbuf_addstr(&p->sql, " AS TEXT) COLLATE BINARY");
	}
out:
	strbuf_release(&base);
	strbuf_release(&cols);
	strbuf_release(&win);
	return rc;
}

static void bind_all(sqlite3_stmt *st, const struct plan *p)
{
	for (size_t i = 0; i < p->n_binds; i++) {
		const struct bind *b = &p->binds[i];
		int n = (int)i + 1;
		if (b->kind == BIND_INT)
			sqlite3_bind_int64(st, n, b->i);
		else if (b->kind == BIND_REAL)
			sqlite3_bind_double(st, n, b->f);
		else
			sqlite3_bind_text(st, n, b->s, -1, SQLITE_STATIC);
	}
}

/* ---- check ---- */

/* Column names of a relation (a quoted table or a parenthesised query). */
static int relation_columns(sqlite3 *db, const char *relation, char ***names, size_t *n)
{
	struct strbuf sql = STRBUF_INIT;
	sqlite3_stmt *st = NULL;

	strbuf_addf(&sql, "SELECT * FROM %s LIMIT 0", relation);
	int rc = sqlite3_prepare_v2(db, sql.buf, (int)sql.len, &st, NULL);
	strbuf_release(&sql);
	*names = NULL;
	*n = 0;
	if (rc != SQLITE_OK)
		return rc;
	int nc = sqlite3_column_count(st);
	*names = xcalloc((size_t)nc + 1, sizeof(char *));
	for (int i = 0; i < nc; i++)
		(*names)[i] = xstrdup(sqlite3_column_name(st, i));
	*n = (size_t)nc;
	sqlite3_finalize(st);
	return SQLITE_OK;
}

static void free_names(char **names, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

static bool has_name(char **names, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (!strcasecmp(names[i], name))
			return true;
	return false;
}

static void hint_names(struct jerror *err, const char *word, char **names, size_t n,
		       const char *what)
{
	const char *s = suggest_closest(word, (const char *const *)names, n);
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

static enum jerr check_column(const struct cfg_source *src, const char *relname, char **names,
			      size_t n, const char *col, const char *used_by, struct jerror *err)
{
	if (!col || has_name(names, n, col))
		return JERR_OK;
	if (relname)
		jerror_set(err, JERR_CONFIG,
			   "source \"%s\": column \"%s\" does not exist in table \"%s\"", sid(src),
			   col, relname);
	else
		jerror_set(err, JERR_CONFIG,
			   "source \"%s\": column \"%s\" does not exist in the source query", sid(src),
			   col);
	jerror_detail(err, "used by %s", used_by);
	hint_names(err, col, names, n, relname ? "the table's columns are" : "the query's columns are");
	return JERR_CONFIG;
}

static enum jerr sq_check(void *conn, const struct cfg_source *src, struct jerror *err)
{
	struct sq_conn *c = conn;
	struct strbuf rel = STRBUF_INIT, used = STRBUF_INIT;
	struct plan p;
	char **names = NULL;
	size_t n = 0;
	enum jerr rc = JERR_OK;
	sqlite3_stmt *st = NULL;

	plan_init(&p);
	if (!src->is_query && src->table) {
		strbuf_add_sql_ident(&rel, src->table);
		if (relation_columns(c->db, rel.buf, &names, &n) != SQLITE_OK) {
			char **tables = NULL;
			size_t nt = 0;
			rc = jerror_set(err, JERR_CONFIG, "source \"%s\": table \"%s\" does not exist",
					sid(src), src->table);
			jerror_detail(err, "app \"%s\", database \"%s\": %s", c->app->id, c->path,
				      sqlite3_errmsg(c->db));
			/* did you mean: the tables and views of the database */
			sqlite3_stmt *ts = NULL;
			size_t alloc = 0;
			if (sqlite3_prepare_v2(c->db,
					       "SELECT name FROM sqlite_master WHERE type IN "
					       "('table','view') AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' "
					       "ORDER BY name",
					       -1, &ts, NULL) == SQLITE_OK) {
				while (sqlite3_step(ts) == SQLITE_ROW) {
					ALLOC_GROW(tables, nt + 1, alloc);
					tables[nt++] = xstrdup((const char *)sqlite3_column_text(ts, 0));
				}
			}
			sqlite3_finalize(ts);
			hint_names(err, src->table, tables, nt, "the database's tables are");
			free_names(tables, nt);
			goto out;
		}
	} else if (src->is_query && src->query) {
		strbuf_addch(&rel, '(');
		add_query_text(&rel, src->query);
		strbuf_addch(&rel, ')');
		if (relation_columns(c->db, rel.buf, &names, &n) != SQLITE_OK) {
			rc = jerror_set(err, JERR_SOURCE, "source \"%s\": the source query is invalid",
					sid(src));
			jerror_detail(err, "%s", sqlite3_errmsg(c->db));
			goto out;
		}
	}

	if (names) {
		const char *relname = src->is_query ? NULL : src->table;
		rc = check_column(src, relname, names, n, src->mapping_column, "the source mapping",
				  err);
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
				rc = check_column(src, relname, names, n, prop->filters[k].key,
						  used.buf, err);
			}
		}
		if (rc)
			goto out;
	}

	/* finally the statement itself (property queries, window functions) */
	rc = plan_build(c, src, &p, err);
	if (rc)
		goto out;
	if (sqlite3_prepare_v2(c->db, p.sql.buf, (int)p.sql.len, &st, NULL) != SQLITE_OK) {
		rc = jerror_set(err, JERR_SOURCE, "source \"%s\": query failed to prepare", sid(src));
		jerror_detail(err, "%s", sqlite3_errmsg(c->db));
	}
out:
	sqlite3_finalize(st);
	free_names(names, n);
	strbuf_release(&rel);
	strbuf_release(&used);
	plan_release(&p);
	return rc;
}

/* ---- describe ---- */

static enum jerr sq_describe(void *conn, const struct cfg_source *src, struct strbuf *out,
			     struct jerror *err)
{
	struct plan p;
	plan_init(&p);
	enum jerr rc = plan_build(conn, src, &p, err);
	if (!rc) {
		strbuf_addslice(out, (struct slice){ p.sql.buf, p.sql.len });
		strbuf_addch(out, '\n');
		for (size_t i = 0; i < p.n_binds; i++) {
			const struct bind *b = &p.binds[i];
			strbuf_addf(out, "-- ?%zu = ", i + 1);
			if (b->kind == BIND_INT)
				strbuf_addf(out, "%" PRId64, b->i);
			else if (b->kind == BIND_REAL)
				strbuf_addf(out, "%.17g", b->f);
			else
				strbuf_add_json_string(out, b->s, strlen(b->s));
			strbuf_addch(out, '\n');
		}
	}
	plan_release(&p);
	return rc;
}

/* ---- reading rows ---- */

static bool set_from_int(enum prop_type t, int64_t i, struct value *v)
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

static bool set_from_real(enum prop_type t, double f, struct value *v)
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

static bool is_text_type(enum prop_type t)
{
	return t == PROP_STRING || t == PROP_EMAIL || t == PROP_URL || t == PROP_PHONE;
}

/* A json_group_array() result as a VAL_ARRAY of coerced items. */
static bool decode_array(const struct cfg_property *prop, const char *text, size_t len,
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
			ok = set_from_int(prop->type, json_integer_value(e), &v);
			if (!ok && is_text_type(prop->type)) {
				int m = snprintf(buf, sizeof(buf), "%" PRId64,
						 (int64_t)json_integer_value(e));
				ok = value_coerce_text(prop->type, buf, (size_t)m, a, &v);
			}
		} else if (json_is_real(e)) {
			ok = set_from_real(prop->type, json_real_value(e), &v);
			if (!ok && is_text_type(prop->type)) {
				int m = snprintf(buf, sizeof(buf), "%.17g", json_real_value(e));
				ok = value_coerce_text(prop->type, buf, (size_t)m, a, &v);
			}
		} else if (json_is_boolean(e)) {
			ok = set_from_int(prop->type, json_is_true(e), &v);
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

/* Column idx of the current row as a value of prop's type; false if invalid. */
static bool column_value(struct sq_cursor *cur, int idx, const struct cfg_property *prop,
			 struct value *v)
{
	sqlite3_stmt *st = cur->stmt;
	int t = sqlite3_column_type(st, idx);

	*v = VALUE_NULL;
	if (t == SQLITE_NULL)
		return true;
	if (prop->is_array && !(cur->src->is_query && prop->query)) {
		const char *s = (const char *)sqlite3_column_text(st, idx);
		size_t n = (size_t)sqlite3_column_bytes(st, idx);
		return decode_array(prop, s, n, &cur->arena, v, &cur->row.n_invalid);
	}
	if (t == SQLITE_INTEGER && !is_text_type(prop->type))
		return set_from_int(prop->type, sqlite3_column_int64(st, idx), v);
	if (t == SQLITE_FLOAT && !is_text_type(prop->type))
		return set_from_real(prop->type, sqlite3_column_double(st, idx), v);
	const char *s = (const char *)sqlite3_column_text(st, idx);
	size_t n = (size_t)sqlite3_column_bytes(st, idx);
	if (prop->type == PROP_STRING) {
		/* no copy: sqlite keeps the text until the next step */
		if (n) {
			v->kind = VAL_STRING;
			v->u.s = (struct slice){ s, n };
		}
		return true;
	}
	return value_coerce_text(prop->type, s, n, &cur->arena, v);
}

static char *fmt_i64(struct arena *a, int64_t i, size_t *len)
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

static enum jerr sq_next(struct source_cursor *base, struct source_row **row, struct jerror *err)
{
	struct sq_cursor *cur = (struct sq_cursor *)base;
	sqlite3_stmt *st = cur->stmt;
	struct source_row *r = &cur->row;

	*row = NULL;
	if (!st)
		return JERR_OK;
	for (;;) {
		int rc = sqlite3_step(st);
		if (rc == SQLITE_DONE) {
			sqlite3_finalize(cur->stmt);
			cur->stmt = NULL;
			return JERR_OK;
		}
		if (rc != SQLITE_ROW) {
			jerror_set(err, JERR_SOURCE, "source \"%s\": query failed", sid(cur->src));
			jerror_detail(err, "%s", sqlite3_errmsg(cur->conn->db));
			return JERR_SOURCE;
		}
		arena_reset(&cur->arena);
		int kt = sqlite3_column_type(st, 0);
		if (kt == SQLITE_NULL) {
			cur->null_keys += cur->grouped ? (uint64_t)sqlite3_column_int64(st, cur->count_col)
						       : 1;
			continue;
		}
		r->n_invalid = 0;
		r->key.is_int = cur->int_key;
		if (cur->int_key) {
			bool ok = true;
			int64_t i = 0;
			if (kt == SQLITE_INTEGER) {
				i = sqlite3_column_int64(st, 0);
			} else if (kt == SQLITE_FLOAT) {
				double f = sqlite3_column_double(st, 0);
				ok = f == floor(f) && f >= -9.2e18 && f <= 9.2e18;
				i = (int64_t)f;
			} else {
				const char *s = (const char *)sqlite3_column_text(st, 0);
				ok = decimal_to_int64(s, (size_t)sqlite3_column_bytes(st, 0), &i);
			}
			if (!ok) {
				const char *s = (const char *)sqlite3_column_text(st, 0);
				jerror_set(err, JERR_SOURCE_DATA,
					   "source \"%s\": key column \"%s\" holds a non-integer value "
					   "\"%.100s\"",
					   sid(cur->src), cur->key_column, s ? s : "");
				jerror_detail(err, "the record key (primary key property) is an integer");
				jerror_hint(err, "clean the column, or make the primary key property a "
						 "string");
				return JERR_SOURCE_DATA;
			}
			r->key.i = i;
			r->key.text.ptr = fmt_i64(&cur->arena, i, &r->key.text.len);
		} else {
			r->key.i = 0;
			r->key.text.ptr = (const char *)sqlite3_column_text(st, 0);
			r->key.text.len = (size_t)sqlite3_column_bytes(st, 0);
		}
		for (size_t i = 0; i < r->n_values; i++) {
			if (!column_value(cur, (int)i + 1, cur->src->properties[i], &r->values[i])) {
				r->values[i] = VALUE_NULL;
				r->n_invalid++;
			}
		}
		*row = r;
		return JERR_OK;
	}
}

static void sq_close(struct source_cursor *base)
{
	struct sq_cursor *cur = (struct sq_cursor *)base;
	if (cur->null_keys)
		log_warn("source \"%s\": skipped %" PRIu64 " rows with a NULL key column \"%s\"",
			 sid(cur->src), cur->null_keys, cur->key_column);
	sqlite3_finalize(cur->stmt);
	arena_release(&cur->arena);
	free(cur->row.values);
	free(cur);
}

static const struct source_cursor_ops sq_cursor_ops = { sq_next, sq_close };

static enum jerr sq_open_cursor(void *conn, const struct cfg_source *src,
				struct source_cursor **out, struct jerror *err)
{
	struct sq_conn *c = conn;
	struct plan p;
	sqlite3_stmt *st = NULL;
	enum jerr rc;

	*out = NULL;
	plan_init(&p);
	rc = plan_build(c, src, &p, err);
	if (rc)
		goto out;
	if (sqlite3_prepare_v3(c->db, p.sql.buf, (int)p.sql.len, SQLITE_PREPARE_PERSISTENT, &st,
			       NULL) != SQLITE_OK) {
		/* name the missing table/column if that is the cause */
		struct strbuf msg = STRBUF_INIT;
		strbuf_addstr(&msg, sqlite3_errmsg(c->db));
		rc = sq_check(c, src, err);
		if (!rc) {
			rc = jerror_set(err, JERR_SOURCE, "source \"%s\": query failed to prepare",
					sid(src));
			jerror_detail(err, "%s", msg.buf);
		}
		strbuf_release(&msg);
		goto out;
	}
	bind_all(st, &p);

	struct sq_cursor *cur = xcalloc(1, sizeof(*cur));
	cur->base.ops = &sq_cursor_ops;
	cur->base.source = src;
	strbuf_init(&cur->base.prev_text, 0);
	cur->stmt = st;
	st = NULL;
	cur->conn = c;
	cur->src = src;
	cur->grouped = p.grouped;
	cur->int_key = p.int_key;
	cur->key_column = p.key_column;
	cur->count_col = (int)src->n_properties + 1;
	arena_init(&cur->arena);
	cur->row.n_values = src->n_properties;
	cur->row.values = xcalloc(src->n_properties ? src->n_properties : 1, sizeof(struct value));
	*out = &cur->base;
out:
	sqlite3_finalize(st);
	plan_release(&p);
	return rc;
}

const struct source_ops source_sqlite = {
	.app_type = "sqlite",
	.source_types = sqlite_source_types,
	.app_options = sqlite_app_options,
	.required_app_options = sqlite_app_options,
	.connect = sq_connect,
	.check = sq_check,
	.open_cursor = sq_open_cursor,
	.describe = sq_describe,
	.disconnect = sq_disconnect,
};
