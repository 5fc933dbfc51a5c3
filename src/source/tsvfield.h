/*
 * tsvfield.h: the steps of splitting one escaped tab-separated row in place that the
 * ClickHouse TabSeparated reader (chwire.c chw_split_tsv) and the PostgreSQL COPY text
 * reader (postgres_copy.c copy_split) share: spotting a field that is \N (NULL), and
 * decoding one field's backslash escapes. The escape rules differ (ClickHouse's and
 * COPY's), so each caller passes its own escape decoder. Inline: they run per field of
 * every row that holds a backslash (any row with a NULL), and the decoder is a constant
 * at each call, so no call is added per field.
 */
#ifndef JOEY_SOURCE_TSVFIELD_H
#define JOEY_SOURCE_TSVFIELD_H

#include <stdbool.h>

/* Whether the field at r (the row ends at end) is \N on its own: NULL. */
static inline bool tsv_field_is_null(const char *r, const char *end)
{
	return end - r >= 2 && r[0] == '\\' && r[1] == 'N' && (end - r == 2 || r[2] == '\t');
}

/*
 * Decode the field at *rp in place, up to the next tab or end: each backslash and what
 * follows become what esc decodes (esc reads after the backslash at *r and moves *r past
 * the escape). Returns the end of the decoded text (never past the field: decoding only
 * shrinks) with *rp at the tab or end, or NULL for a backslash at the end of the row.
 */
static inline char *tsv_field_decode(char **rp, char *end, char (*esc)(char **r, const char *end))
{
	char *r = *rp, *w;

	while (r < end && *r != '\t' && *r != '\\')
		r++; /* no escapes so far: nothing to move */
	w = r;
	while (r < end && *r != '\t') {
		if (*r != '\\')
			*w++ = *r++;
		else if (++r == end)
			return NULL;
		else
			*w++ = esc(&r, end);
	}
	*rp = r;
	return w;
}

#endif
