/* csvread.c: a streaming RFC 4180 reader with bounded memory (see csvread.h). */
#include "source/csvread.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/xalloc.h"

#define CSV_CHUNK ((size_t)64 << 10)
#define CSV_MAX_FIELDS ((size_t)1 << 16)

void csv_reader_init(struct csv_reader *r, char delim)
{
	memset(r, 0, sizeof(*r));
	r->delim = delim;
	r->max_field = CSV_DEFAULT_MAX_FIELD;
	r->max_row = CSV_DEFAULT_MAX_ROW;
	strbuf_init(&r->row, 256);
}

static void reset_input(struct csv_reader *r)
{
	r->fp = NULL;
	r->data = NULL;
	r->at = r->end = 0;
	r->at_start = true;
	r->eof = false;
	r->cur_line = 1;
	r->cur_col = 1;
	r->io_errno = 0;
}

void csv_reader_set_file(struct csv_reader *r, FILE *fp)
{
	reset_input(r);
	if (!r->buf)
		r->buf = xmalloc(CSV_CHUNK);
	r->fp = fp;
	r->data = r->buf;
}

void csv_reader_set_mem(struct csv_reader *r, const char *data, size_t len)
{
	reset_input(r);
	r->data = data;
	r->end = len;
	r->eof = true; /* nothing more to read after data */
}

void csv_reader_release(struct csv_reader *r)
{
	strbuf_release(&r->row);
	free(r->off);
	free(r->len);
	free(r->pos);
	free(r->buf);
	memset(r, 0, sizeof(*r));
}

/* Make at least one byte available; false at the end of input (or on a read error). */
static bool refill(struct csv_reader *r)
{
	if (r->at < r->end)
		return true;
	if (r->eof || !r->fp)
		return false;
	size_t n = fread(r->buf, 1, CSV_CHUNK, r->fp);
	r->at = 0;
	r->end = n;
	if (n == 0) {
		r->eof = true;
		if (ferror(r->fp))
			r->io_errno = errno ? errno : EIO;
		return false;
	}
	return true;
}

static inline int peek(struct csv_reader *r)
{
	if (r->at == r->end && !refill(r))
		return -1;
	return (unsigned char)r->data[r->at];
}

/* Consume one byte, tracking line and column (CRLF counts as one line end). */
static inline int take(struct csv_reader *r)
{
	if (r->at == r->end && !refill(r))
		return -1;
	int c = (unsigned char)r->data[r->at++];
	if (c == '\n') {
		r->cur_line++;
		r->cur_col = 1;
	} else if (c == '\r') {
		if (peek(r) == '\n') {
			r->cur_col++;
		} else {
			r->cur_line++;
			r->cur_col = 1;
		}
	} else {
		r->cur_col++;
	}
	return c;
}

/* Consume a line end (LF, CRLF, CR) if one is next. */
static void take_line_end(struct csv_reader *r)
{
	int c = peek(r);
	if (c == '\r') {
		take(r);
		if (peek(r) == '\n')
			take(r);
	} else if (c == '\n') {
		take(r);
	}
}

/* After a syntax error: drop the rest of the physical line. */
static void skip_line(struct csv_reader *r)
{
	for (;;) {
		int c = peek(r);
		if (c < 0)
			return;
		if (c == '\n' || c == '\r') {
			take_line_end(r);
			return;
		}
		take(r);
	}
}

static void set_bad(struct csv_reader *r, uint64_t line, uint64_t col, size_t field,
		    const char *reason)
{
	if (r->bad_reason)
		return; /* the first problem of the record is the one reported */
	r->bad_line = line;
	r->bad_col = col;
	r->bad_field = field;
	r->bad_reason = reason;
}

bool csv_utf8_valid(const char *str, size_t len, size_t *bad)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t i = 0;
	while (i < len) {
		unsigned char c = s[i];
		size_t n;
		uint32_t cp;
		if (c < 0x80) {
			i++;
			continue;
		} else if (c >= 0xc2 && c <= 0xdf) {
			n = 1;
			cp = c & 0x1f;
		} else if (c >= 0xe0 && c <= 0xef) {
			n = 2;
			cp = c & 0x0f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			n = 3;
			cp = c & 0x07;
		} else {
			goto fail;
		}
		if (len - i <= n)
			goto fail;
		for (size_t k = 1; k <= n; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				goto fail;
			cp = (cp << 6) | (s[i + k] & 0x3f);
		}
		if ((n == 2 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
		    (n == 3 && (cp < 0x10000 || cp > 0x10ffff)))
			goto fail;
		i += n + 1;
	}
	return true;
fail:
	if (bad)
		*bad = i;
	return false;
}

/*
 * Append one byte of field data, enforcing the limits. A NUL is reported where it is
 * (bline:bcol), a field or record over its limit where the field starts.
 */
static inline void add_byte(struct csv_reader *r, int c, size_t fstart, uint64_t fline,
			    uint64_t fcol, uint64_t bline, uint64_t bcol, bool *store)
{
	if (!*store)
		return;
	if (c == 0) {
		set_bad(r, bline, bcol, r->n_fields + 1, "NUL byte in field");
		*store = false;
		return;
	}
	if (r->row.len - fstart >= r->max_field) {
		set_bad(r, fline, fcol, r->n_fields + 1, "field is longer than the limit");
		*store = false;
		return;
	}
	if (r->row.len >= r->max_row) {
		set_bad(r, fline, fcol, r->n_fields + 1, "record is longer than the limit");
		*store = false;
		return;
	}
	strbuf_addch(&r->row, c);
}

static void end_field(struct csv_reader *r, size_t fstart, uint64_t fline, uint64_t fcol,
		      bool stored)
{
	if (r->n_fields >= CSV_MAX_FIELDS) {
		set_bad(r, fline, fcol, r->n_fields + 1, "record has too many fields");
		return;
	}
	size_t bad;
	if (stored && !csv_utf8_valid(r->row.buf + fstart, r->row.len - fstart, &bad))
		set_bad(r, fline, fcol, r->n_fields + 1, "field is not valid UTF-8");
	size_t had = r->alloc_fields;
	ALLOC_GROW(r->off, r->n_fields + 1, r->alloc_fields);
	if (r->alloc_fields != had) {
		r->len = xrealloc(r->len, r->alloc_fields * sizeof(*r->len));
		r->pos = xrealloc(r->pos, r->alloc_fields * sizeof(*r->pos));
	}
	r->pos[r->n_fields] = (struct csv_pos){ fline, fcol };
	r->off[r->n_fields] = fstart;
	r->len[r->n_fields] = stored ? r->row.len - fstart : 0;
	r->n_fields++;
	strbuf_addch(&r->row, '\0');
}

enum csv_status csv_reader_next(struct csv_reader *r)
{
	if (r->at_start) {
		r->at_start = false;
		if (refill(r) && r->end - r->at >= 3 && !memcmp(r->data + r->at, "\xef\xbb\xbf", 3))
			r->at += 3;
	}
	for (;;) {
		strbuf_reset(&r->row);
		r->n_fields = 0;
		r->bad_reason = NULL;
		r->bad_line = r->bad_col = 0;
		r->bad_field = 0;
		r->line = r->cur_line;

		int c = peek(r);
		if (c < 0)
			return r->io_errno ? CSV_IOERR : CSV_EOF;
		if (c == '\n' || c == '\r') {
			take_line_end(r); /* an empty line is not a record */
			continue;
		}
		for (;;) { /* one field per iteration */
			size_t fstart = r->row.len;
			uint64_t fline = r->cur_line, fcol = r->cur_col;
			bool store = true;
			c = peek(r);
			if (c == '"') {
				take(r);
				for (;;) {
					uint64_t bline = r->cur_line, bcol = r->cur_col;
					c = take(r);
					if (c < 0) {
						set_bad(r, fline, fcol, r->n_fields + 1,
							"quoted field is not terminated");
						return r->io_errno ? CSV_IOERR : CSV_BAD;
					}
					if (c == '"') {
						if (peek(r) != '"')
							break;
						take(r);
					}
					add_byte(r, c, fstart, fline, fcol, bline, bcol, &store);
				}
				c = peek(r);
				if (c >= 0 && c != r->delim && c != '\n' && c != '\r') {
					set_bad(r, r->cur_line, r->cur_col, r->n_fields + 1,
						"unexpected character after a closing quote");
					skip_line(r);
					return r->io_errno ? CSV_IOERR : CSV_BAD;
				}
			} else {
				for (;;) {
					c = peek(r);
					if (c < 0 || c == r->delim || c == '\n' || c == '\r')
						break;
					if (c == '"') {
						set_bad(r, r->cur_line, r->cur_col, r->n_fields + 1,
							"quote inside an unquoted field");
						skip_line(r);
						return r->io_errno ? CSV_IOERR : CSV_BAD;
					}
					uint64_t bline = r->cur_line, bcol = r->cur_col;
					take(r);
					add_byte(r, c, fstart, fline, fcol, bline, bcol, &store);
				}
			}
			end_field(r, fstart, fline, fcol, store);
			if (c == r->delim) {
				take(r);
				continue;
			}
			take_line_end(r);
			break;
		}
		if (r->io_errno)
			return CSV_IOERR;
		return r->bad_reason ? CSV_BAD : CSV_RECORD;
	}
}
