/*
 * postgres_copy.c: PostgreSQL rows as COPY (<statement>) TO STDOUT text (postgres.c's
 * design note): the statement is prepared and described first, then each row arrives
 * as one libpq buffer, split in place into the cursor's fields. The cursor owns the
 * current row's buffer (PQfreemem at the next row). Called by postgres_rows.c.
 */
#include <ctype.h>
#include <string.h>

#include <libpq-fe.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "base/strbuf.h"
#include "source/postgres_internal.h"
#include "source/sqlgen.h"
#include "source/tsvfield.h"

static int hex_digit(char c)
{
	return c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10;
}

/* The character of the COPY escape after a backslash at *r (< end); *r moves past it. */
static char copy_escape(char **r, const char *end)
{
	char *p = *r, c = *p++;
	switch (c) {
	case 'b': c = '\b'; break;
	case 'f': c = '\f'; break;
	case 'n': c = '\n'; break;
	case 'r': c = '\r'; break;
	case 't': c = '\t'; break;
	case 'v': c = '\v'; break;
	case 'x': /* \xh or \xhh; a lone \x is "x" */
		if (p < end && isxdigit((unsigned char)*p)) {
			int x = hex_digit(*p++);
			if (p < end && isxdigit((unsigned char)*p))
				x = x * 16 + hex_digit(*p++);
			c = (char)x;
		}
		break;
	default: /* \o, \oo, \ooo; anything else stands for itself (\\) */
		if (c >= '0' && c <= '7') {
			int o = c - '0';
			for (int k = 0; k < 2 && p < end && *p >= '0' && *p <= '7'; k++)
				o = o * 8 + (*p++ - '0');
			c = (char)o;
		}
		break;
	}
	*r = p;
	return c;
}

/*
 * Split a row without a backslash (no NULL, no escape: most rows) in place at its tabs
 * into exactly n fields, each NUL-terminated; false if there are not n. The tabs are
 * found 16 bytes at a time where the CPU has SSE2 (a memchr per field cost more than
 * the rest of the split for short fields).
 */
static bool split_plain(char *row, char *end, struct pg_field *f, int n)
{
	char *start = row, *p = row;
	int i = 0;
#if defined(__SSE2__)
	const __m128i tab = _mm_set1_epi8('\t');
	for (; end - p >= 16; p += 16) {
		unsigned m = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(_mm_loadu_si128((const __m128i *)p), tab));
		for (; m; m &= m - 1) {
			char *t = p + __builtin_ctz(m);
			if (i == n - 1)
				return false;
			f[i++] = (struct pg_field){ start, (size_t)(t - start), false };
			*t = '\0';
			start = t + 1;
		}
	}
#endif
	for (; p < end; p++) {
		if (*p != '\t')
			continue;
		if (i == n - 1)
			return false;
		f[i++] = (struct pg_field){ start, (size_t)(p - start), false };
		*p = '\0';
		start = p + 1;
	}
	if (i != n - 1)
		return false;
	f[i] = (struct pg_field){ start, (size_t)(end - start), false };
	*end = '\0'; /* over the newline, or libpq's NUL */
	return true;
}

/*
 * Split one row of COPY text output in place (PostgreSQL's COPY documentation, "Text
 * Format"): fields separated by tabs, a newline at the end, \N on its own is NULL, and
 * backslash escapes are decoded (copy_escape). The server escapes only the backslash
 * and \b \f \n \r \t \v; the rest of the syntax is decoded for completeness. Each field
 * is NUL-terminated (decoding only shrinks; libpq NUL-terminates the row). False unless
 * there are exactly n fields.
 */
static bool copy_split(char *row, size_t len, struct pg_field *f, int n)
{
	char *r = row, *end = row + len;
	int i = 0;

	if (r < end && end[-1] == '\n')
		end--;
	/* most rows have no backslash at all (no NULL, no escape) */
	if (!memchr(row, '\\', (size_t)(end - row)))
		return split_plain(row, end, f, n);
	for (;;) {
		if (i == n)
			return false;
		if (tsv_field_is_null(r, end)) {
			f[i++] = (struct pg_field){ "", 0, true };
			r += 2;
		} else {
			char *start = r, *w = tsv_field_decode(&r, end, copy_escape);
			if (!w)
				return false;
			f[i++] = (struct pg_field){ start, (size_t)(w - start), false };
			*w = '\0'; /* over the tab (r still tells) or at the end */
		}
		if (r >= end)
			return i == n;
		r++; /* the tab */
	}
}

/* The next COPY row into cur->fields (*got), or the end of the data. */
enum jerr pgsrc_fetch_copy(struct pg_cursor *cur, bool *got, struct jerror *err)
{
	PGconn *pg = cur->conn->pg;
	char *buf = NULL;
	source_wait_begin(&cur->conn->watch);
	int n = PQgetCopyData(pg, &buf, 0);
	source_wait_end(&cur->conn->watch);
	if (n == -1) /* end of data: the command's result (or error) follows */
		return pgsrc_drain(cur, JERR_OK, err);
	if (n < 0) {
		jerror_set(err, JERR_SOURCE, "source \"%s\": query failed",
			   sql_source_id(cur->rs.src));
		pgsrc_detail(err, NULL, PQerrorMessage(pg));
		return pgsrc_drain(cur, JERR_SOURCE, err);
	}
	cur->copy_row = buf;
	if (!copy_split(buf, (size_t)n, cur->fields, cur->n_fields)) {
		/* not expected from a server: the cursor stops, close cancels the rest */
		jerror_set(err, JERR_SOURCE, "source \"%s\": malformed COPY row from the "
			   "server", sql_source_id(cur->rs.src));
		jerror_detail(err, "expected %d tab-separated fields: \"%.100s\"",
			      cur->n_fields, buf);
		return JERR_SOURCE;
	}
	*got = true;
	return JERR_OK;
}

/*
 * A statement without values: parsed and described first (unnamed prepared statement; a
 * broken query fails here, and COPY does not send the column types), then run as
 * COPY (...) TO STDOUT in text format: one buffer per row, much cheaper than a PGresult
 * per row. (COPY takes no parameters: see the design note.)
 */
enum jerr pgsrc_start_copy(struct pg_cursor *cur, const struct sql_plan *p, struct jerror *err)
{
	PGconn *pg = cur->conn->pg;
	struct strbuf copy = STRBUF_INIT;
	enum jerr rc;
	pgsrc_guard(cur->conn, p->sql.buf);
	source_wait_begin(&cur->conn->watch);
	PGresult *res = PQprepare(pg, "", p->sql.buf, 0, NULL);
	if (PQresultStatus(res) == PGRES_COMMAND_OK) {
		PQclear(res);
		res = PQdescribePrepared(pg, "");
	}
	source_wait_end(&cur->conn->watch);
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		rc = pgsrc_result_error(cur, res, err);
		PQclear(res);
		return rc;
	}
	rc = pgsrc_set_columns(cur, res, err);
	PQclear(res);
	if (rc)
		return rc;

	strbuf_addf(&copy, "COPY (%s) TO STDOUT", p->sql.buf);
	pgsrc_guard(cur->conn, copy.buf); /* never reached for Redshift: open_cursor reads rows */
	int sent = PQsendQuery(pg, copy.buf);
	strbuf_release(&copy);
	if (!sent)
		return pgsrc_send_failed(cur, err);
	cur->copy = true;
	cur->conn->streaming = true;
	cur->done = false;
	source_wait_begin(&cur->conn->watch);
	res = PQgetResult(pg);
	source_wait_end(&cur->conn->watch);
	if (PQresultStatus(res) != PGRES_COPY_OUT) {
		rc = pgsrc_result_error(cur, res, err);
		PQclear(res);
		return pgsrc_drain(cur, rc, err);
	}
	PQclear(res);
	return JERR_OK;
}

