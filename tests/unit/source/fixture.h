/*
 * fixture.h: the config builders and row dump shared by the source connector tests
 * (sqlite.c, postgres.c, mysql.c, csv.c). Include it after defining
 *   static struct fx F;       -- with at least: struct arena a; struct cfg_app app;
 *                               struct cfg_model model; void *conn;
 *   #define FIXTURE_OPS  source_<connector>
 *   #define FIXTURE_TYPE "<connector>-import-table"
 * Everything is allocated in F.a and lives until the test's teardown releases it.
 */
#ifndef JOEY_TEST_SOURCE_FIXTURE_H
#define JOEY_TEST_SOURCE_FIXTURE_H

#include <stdarg.h>
#include <stdio.h>

#include "base/arena.h"
#include "base/strbuf.h"
#include "base/value.h"
#include "config/config.h"
#include "source/source.h"

#define FIXTURE_UNUSED __attribute__((unused))

FIXTURE_UNUSED static struct cfg_property *prop(const char *id, enum prop_type t, const char *column,
				 enum agg_method agg, const char *sort)
{
	struct cfg_property *p = arena_zalloc(&F.a, sizeof(*p));
	p->id = id;
	p->key = id;
	p->type = t;
	p->column = column;
	p->agg = agg;
	p->sort_column = sort;
	return p;
}

FIXTURE_UNUSED static struct cfg_filter *filter(struct cfg_property *p, const char *key, enum filter_op op,
				 const char *match)
{
	struct cfg_filter *nf = arena_zalloc(&F.a, (p->n_filters + 1) * sizeof(*nf));
	for (size_t i = 0; i < p->n_filters; i++)
		nf[i] = p->filters[i];
	p->filters = nf;
	struct cfg_filter *f = &nf[p->n_filters++];
	f->key = key;
	f->op = op;
	f->match = match;
	return f;
}

/* A source with the given properties; the first is the mapping property for primaries. */
FIXTURE_UNUSED static struct cfg_source *source(const char *id, const char *table, const char *mapping,
				 bool primary, enum prop_type key_type, size_t n, ...)
{
	struct cfg_source *src = arena_zalloc(&F.a, sizeof(*src));
	va_list ap;

	src->id = id;
	src->name = id;
	src->type = FIXTURE_TYPE;
	src->app = &F.app;
	src->model = &F.model;
	src->table = table;
	src->mapping_column = mapping;
	src->is_primary = primary;
	src->properties = arena_zalloc(&F.a, (n ? n : 1) * sizeof(*src->properties));
	src->n_properties = n;
	va_start(ap, n);
	for (size_t i = 0; i < n; i++) {
		src->properties[i] = va_arg(ap, struct cfg_property *);
		src->properties[i]->source = src;
	}
	va_end(ap);
	struct cfg_property *pk = prop("user_id", key_type, mapping, AGG_EXACT, NULL);
	pk->is_primary_key = true;
	pk->unique = true;
	F.model.primary_key = pk;
	src->mapping_property = pk;
	return src;
}

/* Read the whole cursor of read (NULL: everything) as "key:[v,...]\n" lines; returns the error code. */
FIXTURE_UNUSED static enum jerr dump_with(const struct cfg_source *src, const struct source_read *read,
					  struct strbuf *out, struct jerror *err)
{
	struct source_cursor *cur;
	struct source_row *row;
	enum jerr rc = FIXTURE_OPS.open_cursor(F.conn, src, read, &cur, err);
	if (rc)
		return rc;
	while ((rc = source_cursor_next(cur, &row, err)) == JERR_OK && row) {
		strbuf_addf(out, "%s%.*s:[", row->key.is_int ? "#" : "", (int)row->key.text.len,
			    row->key.text.ptr);
		for (size_t i = 0; i < row->n_values; i++) {
			if (i)
				strbuf_addch(out, ',');
			value_to_json(out, &row->values[i]);
		}
		strbuf_addch(out, ']');
		if (row->n_invalid)
			strbuf_addf(out, "!%zu", row->n_invalid);
		strbuf_addch(out, '\n');
	}
	source_cursor_close(cur);
	return rc;
}

FIXTURE_UNUSED static enum jerr dump(const struct cfg_source *src, struct strbuf *out, struct jerror *err)
{
	return dump_with(src, NULL, out, err);
}

/* The rows of a read, as dump_read writes them. */
#define EXPECT_READ_ROWS(src, read, text)                                       \
	do {                                                                    \
		struct strbuf out_ = STRBUF_INIT;                               \
		struct jerror err_ = JERROR_INIT;                               \
		enum jerr rc_ = dump_with((src), (read), &out_, &err_);         \
		if (rc_)                                                        \
			jerror_print(stderr, &err_);                            \
		assert_int_equal(rc_, JERR_OK);                                 \
		assert_string_equal(out_.buf, (text));                          \
		strbuf_release(&out_);                                          \
		jerror_release(&err_);                                          \
	} while (0)

#define EXPECT_ROWS(src, text)                                                  \
	do {                                                                    \
		struct strbuf out_ = STRBUF_INIT;                               \
		struct jerror err_ = JERROR_INIT;                               \
		enum jerr rc_ = dump((src), &out_, &err_);                      \
		if (rc_)                                                        \
			jerror_print(stderr, &err_);                            \
		assert_int_equal(rc_, JERR_OK);                                 \
		assert_string_equal(out_.buf, (text));                          \
		strbuf_release(&out_);                                          \
		jerror_release(&err_);                                          \
	} while (0)

#endif
