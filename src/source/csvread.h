/*
 * csvread.h: a streaming RFC 4180 reader, one record at a time, with bounded memory.
 *
 * Order of calls:
 *   struct csv_reader r;
 *   csv_reader_init(&r, ',');                 -- then one of the inputs:
 *   csv_reader_set_file(&r, fp);  or  csv_reader_set_mem(&r, data, len);
 *   while ((st = csv_reader_next(&r)) != CSV_EOF) {
 *       CSV_RECORD: r.n_fields fields, field(i) = r.row.buf + r.off[i], r.len[i] bytes,
 *                   each NUL-terminated, starting at r.pos[i]; valid until the next call.
 *       CSV_BAD:    a bad record, already consumed: r.bad_line / r.bad_col / r.bad_field
 *                   (1-based) and r.bad_reason say where and why. Reading may go on.
 *       CSV_IOERR:  the file could not be read (errno kept in r.io_errno). Stop.
 *   }
 *   csv_reader_release(&r);
 *
 * Grammar (RFC 4180, plus what real files contain): records end with LF, CRLF or a lone
 * CR; the last record may lack a line end; a UTF-8 byte order mark at the very start is
 * skipped; completely empty lines are skipped; a field is either unquoted (no quote,
 * delimiter, CR or LF in it) or quoted ("" is a quote; delimiters and line ends are
 * data). Bad records: a quote inside an unquoted field, anything but a delimiter or a
 * line end after a closing quote, an unterminated quoted field (runs to end of input),
 * a NUL byte, bytes that are not UTF-8, a field over max_field bytes or a record over
 * max_row bytes. After a syntax error the rest of the physical line is skipped.
 * Columns are byte columns on the physical line, 1-based. The reader never holds more
 * than max_row + 64 KiB of input.
 */
#ifndef JOEY_SOURCE_CSVREAD_H
#define JOEY_SOURCE_CSVREAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "base/strbuf.h"

enum csv_status { CSV_RECORD, CSV_EOF, CSV_BAD, CSV_IOERR };

struct csv_pos {
	uint64_t line, col; /* 1-based */
};

#define CSV_DEFAULT_MAX_FIELD ((size_t)1 << 20) /* 1 MiB */
#define CSV_DEFAULT_MAX_ROW ((size_t)16 << 20)  /* 16 MiB */

struct csv_reader {
	/* settings (set after init, before the first next) */
	char delim;
	size_t max_field, max_row;

	/* the current record */
	struct strbuf row; /* field bytes, each followed by a NUL */
	size_t *off, *len;
	struct csv_pos *pos; /* where each field starts */
	size_t n_fields, alloc_fields;
	uint64_t line; /* physical line the record starts on (1-based) */

	/* the last bad record */
	uint64_t bad_line, bad_col;
	size_t bad_field;
	const char *bad_reason; /* static text */
	int io_errno;

	/* input */
	FILE *fp;           /* borrowed */
	const char *data;   /* mem input (borrowed) or buf */
	size_t at, end;
	char *buf;
	bool at_start, eof;
	uint64_t cur_line, cur_col; /* position of the next byte */
};

void csv_reader_init(struct csv_reader *r, char delim);
/* Read from fp (borrowed, must stay open until release or the next set_*). */
void csv_reader_set_file(struct csv_reader *r, FILE *fp);
/* Read from data[0..len) (borrowed). */
void csv_reader_set_mem(struct csv_reader *r, const char *data, size_t len);
enum csv_status csv_reader_next(struct csv_reader *r);
void csv_reader_release(struct csv_reader *r);

/* Is s[0..len) valid UTF-8 (no overlongs, no surrogates)? *bad: offset of the first bad byte. */
bool csv_utf8_valid(const char *s, size_t len, size_t *bad);

#endif
