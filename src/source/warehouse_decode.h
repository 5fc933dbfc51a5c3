/*
 * warehouse_decode.h: the answer decoders of the Snowflake and BigQuery connectors,
 * callable on a body alone, for unit tests and fuzzing (no connection, no network).
 *
 *   rc = source_snowflake_decode(body, len, &spec, on_row, ctx, &err);
 *
 * body (borrowed) is one Snowflake ResultSet (resultSetMetaData + data) or one BigQuery
 * QueryResponse/getQueryResults page (schema + rows). Its column 0 is read as the record
 * key (an integer when spec->int_key), columns 1..n as spec->types[i] values (arrays
 * where spec->arrays[i]), exactly as a cursor reads them; each row goes to on_row
 * (borrowed for the call). Only this one body is read (no further partitions or pages).
 * Returns JERR_OK, or the cursor's error (malformed answer, a non-integer key) in err.
 */
#ifndef JOEY_SOURCE_WAREHOUSE_DECODE_H
#define JOEY_SOURCE_WAREHOUSE_DECODE_H

#include <stdbool.h>
#include <stddef.h>

#include "base/compat.h"
#include "base/error.h"
#include "config/config.h"
#include "source/source.h"

struct warehouse_decode_spec {
	bool int_key;
	const enum prop_type *types; /* n of them */
	const bool *arrays;          /* n of them, or NULL */
	size_t n;
};

typedef void (*warehouse_row_fn)(void *ctx, const struct source_row *row);

enum jerr source_snowflake_decode(const char *body, size_t len, const struct warehouse_decode_spec *spec,
				  warehouse_row_fn on_row, void *ctx, struct jerror *err) JOEY_WUR;
enum jerr source_bigquery_decode(const char *body, size_t len, const struct warehouse_decode_spec *spec,
				 warehouse_row_fn on_row, void *ctx, struct jerror *err) JOEY_WUR;

/*
 * A synthetic source of spec's shape (ids "decode", "p0".."pN"), for the decoders:
 * src->properties[i] typed as spec says. Free with warehouse_decode_source_free.
 */
struct cfg_source *warehouse_decode_source(const struct warehouse_decode_spec *spec);
void warehouse_decode_source_free(struct cfg_source *src);

#endif
