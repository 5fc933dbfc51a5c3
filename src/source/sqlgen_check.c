/*
 * sqlgen_check.c: the dialect-independent pieces of `check` and `sample` (sqlgen.h
 * "check"): column checks with did-you-mean hints, sample values. Messages go to the
 * jerror handed in; sample values are malloc'd for the caller. Called by the SQL
 * connectors.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/suggest.h"
#include "base/xalloc.h"
#include "source/sqlgen.h"

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

enum jerr sql_check_no_table(const struct cfg_source *src, struct jerror *err)
{
	return jerror_set(err, JERR_CONFIG, "source \"%s\": table \"%s\" does not exist", sql_source_id(src),
			  src->table);
}

enum jerr sql_check_bad_query(const struct cfg_source *src, struct jerror *err)
{
	return jerror_set(err, JERR_SOURCE, "source \"%s\": the source query is invalid", sql_source_id(src));
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

void sql_sample_table_sql(struct strbuf *sb, const struct sql_dialect *d, const char *table, size_t limit)
{
	strbuf_addstr(sb, "SELECT * FROM ");
	sql_add_ident(d, sb, table);
	strbuf_addf(sb, " LIMIT %zu", limit > SOURCE_SAMPLE_MAX_ROWS ? (size_t)SOURCE_SAMPLE_MAX_ROWS : limit);
}

void sql_sample_columns(struct source_sample *out, size_t all)
{
	out->n_columns = all > SOURCE_SAMPLE_MAX_COLUMNS ? SOURCE_SAMPLE_MAX_COLUMNS : all;
	out->columns_cut = all > out->n_columns;
	out->columns = xcalloc(out->n_columns + 1, sizeof(char *));
}

char **sql_sample_add_row(struct source_sample *out, size_t *alloc)
{
	ALLOC_GROW(out->cells, (out->n_rows + 1) * out->n_columns + 1, *alloc);
	return out->cells + out->n_rows++ * out->n_columns;
}

void sql_sample_end_rows(struct source_sample *out)
{
	if (!out->cells)
		out->cells = xcalloc(1, sizeof(char *));
	out->cells[out->n_rows * out->n_columns] = NULL;
}

enum jerr sql_sample_busy(const char *app_id, struct jerror *err)
{
	return jerror_set(err, JERR_SOURCE, "app \"%s\": the connection is reading a source", app_id);
}

enum jerr sql_sample_unreadable(const char *app_id, const char *table, struct jerror *err)
{
	return jerror_set(err, JERR_SOURCE, "app \"%s\": cannot read %s%s%s", app_id, table ? "table \"" : "its tables",
			  table ? table : "", table ? "\"" : "");
}

enum jerr sql_sample_query_unreadable(const char *app_id, struct jerror *err)
{
	enum jerr rc = jerror_set(err, JERR_SOURCE, "app \"%s\": the query cannot be read", app_id);
	jerror_hint(err, SQL_SAMPLE_QUERY_HINT);
	return rc;
}

void sql_sample_query_sql(struct strbuf *sb, const char *query, size_t limit)
{
	strbuf_addstr(sb, "SELECT * FROM (");
	sql_add_query_text(sb, query);
	strbuf_addf(sb, "\n) AS joey_preview LIMIT %zu", limit > SOURCE_SAMPLE_MAX_ROWS ? (size_t)SOURCE_SAMPLE_MAX_ROWS : limit);
}

void sql_check_query_sql(struct strbuf *sb, const struct sql_dialect *d, const char *query)
{
	strbuf_addstr(sb, "SELECT * FROM (");
	sql_add_query_text(sb, query);
	strbuf_addstr(sb, ") AS ");
	sql_add_ident(d, sb, "joey$q");
	strbuf_addstr(sb, " LIMIT 0");
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
