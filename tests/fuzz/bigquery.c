/* bigquery.c: libFuzzer target for the Bigquery answer decoder (src/source/bigquery_rows.c, wrows.c, warehouse_decode.h). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "source/warehouse_decode.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void on_row(void *ctx, const struct source_row *row)
{
	size_t *n = ctx;
	/* every row: a key with text, values of the kinds asked for */
	if (!row->key.text.ptr)
		abort();
	for (size_t i = 0; i < row->n_values; i++)
		if (row->values[i].kind == VAL_STRING && row->values[i].u.s.len && !row->values[i].u.s.ptr)
			abort();
	(*n)++;
}

/*
 * The first byte picks the key kind and each value's property type (and whether it is
 * an array); the rest is the answer body. Decoding must never crash, whatever the body,
 * and must fail with a message when it fails.
 */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const enum prop_type all[] = { PROP_STRING, PROP_INTEGER, PROP_FLOAT, PROP_BOOLEAN, PROP_DATE, PROP_EMAIL };
	if (size < 1)
		return 0;
	log_set_level(LOG_ERROR);
	enum prop_type types[4];
	bool arrays[4];
	for (size_t i = 0; i < 4; i++) {
		types[i] = all[(data[0] + i * 3) % 6];
		arrays[i] = (data[0] >> (4 + i)) & 1;
	}
	size_t n = 0;
	struct warehouse_decode_spec spec = { data[0] & 1, types, arrays, 1 + ((data[0] >> 1) & 3) };
	struct jerror err = JERROR_INIT;
	enum jerr rc = source_bigquery_decode((const char *)data + 1, size - 1, &spec, on_row, &n, &err);
	if (rc && !err.msg.len)
		abort();
	jerror_release(&err);
	return 0;
}
