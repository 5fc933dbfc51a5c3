/* csv.c: libFuzzer target for the streaming CSV reader (src/source/csvread.c). */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "source/csvread.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/*
 * The first byte picks the delimiter and small limits; the rest is the file. The same
 * input is read from memory and through a FILE (the refill path); both must agree, and
 * every record must hold NUL-terminated, valid UTF-8 fields at increasing positions.
 */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char delims[] = { ',', ';', '\t', '|' };
	if (size < 1)
		return 0;
	char delim = delims[data[0] & 3];
	size_t max_field = (data[0] & 4) ? 8 : CSV_DEFAULT_MAX_FIELD;
	size_t max_row = (data[0] & 8) ? 24 : CSV_DEFAULT_MAX_ROW;
	const char *in = (const char *)data + 1;
	size_t n = size - 1;

	struct csv_reader a, b;
	csv_reader_init(&a, delim);
	csv_reader_init(&b, delim);
	a.max_field = b.max_field = max_field;
	a.max_row = b.max_row = max_row;
	csv_reader_set_mem(&a, in, n);
	FILE *fp = fmemopen((void *)in, n ? n : 1, "rb");
	if (!fp)
		abort();
	if (!n)
		fgetc(fp); /* fmemopen needs size >= 1: consume the dummy byte */
	csv_reader_set_file(&b, fp);

	for (size_t guard = 0; guard <= n + 1; guard++) {
		enum csv_status sa = csv_reader_next(&a);
		enum csv_status sb = csv_reader_next(&b);
		if (sa != sb || sa == CSV_IOERR)
			abort();
		if (sa == CSV_EOF)
			break;
		if (sa == CSV_BAD) {
			if (!a.bad_reason || a.bad_line != b.bad_line || a.bad_col != b.bad_col ||
			    a.bad_field != b.bad_field || strcmp(a.bad_reason, b.bad_reason) ||
			    a.bad_line < a.line || a.bad_col < 1)
				abort();
			continue;
		}
		if (a.n_fields == 0 || a.n_fields != b.n_fields || a.line != b.line)
			abort();
		for (size_t i = 0; i < a.n_fields; i++) {
			const char *f = a.row.buf + a.off[i];
			if (f[a.len[i]] != '\0' || memchr(f, '\0', a.len[i]) || a.len[i] > max_field ||
			    !csv_utf8_valid(f, a.len[i], NULL) || a.len[i] != b.len[i] ||
			    memcmp(f, b.row.buf + b.off[i], a.len[i]) ||
			    a.pos[i].line != b.pos[i].line || a.pos[i].col != b.pos[i].col)
				abort();
			if (i && (a.pos[i].line < a.pos[i - 1].line ||
				  (a.pos[i].line == a.pos[i - 1].line && a.pos[i].col <= a.pos[i - 1].col)))
				abort();
		}
	}
	csv_reader_release(&a);
	csv_reader_release(&b);
	fclose(fp);
	return 0;
}
