/*
 * sqlgen_lint.c: sql_redshift_lint (sqlgen.h), the check that a statement uses nothing
 * Redshift lacks. Owns nothing beyond one call; called by the Redshift connector's
 * strict mode (postgres.c) and its tests.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "base/xalloc.h"
#include "source/sqlgen.h"

static bool lint_word(char c)
{
	return isalnum((unsigned char)c) || c == '_' || c == '$';
}

/* The text of sql with literals, quoted identifiers and comments blanked, upper-cased. */
static char *lint_text(const char *sql)
{
	size_t n = strlen(sql);
	char *t = xmalloc(n + 1);
	for (size_t i = 0; i < n;) {
		char c = sql[i];
		if (c == '\'' || c == '"') {
			t[i++] = ' ';
			while (i < n) {
				if (sql[i] == c && i + 1 < n && sql[i + 1] == c) {
					t[i++] = ' ';
					t[i++] = ' ';
					continue;
				}
				if (sql[i] == c)
					break;
				t[i++] = ' ';
			}
			if (i < n)
				t[i++] = ' ';
			continue;
		}
		if (c == '-' && i + 1 < n && sql[i + 1] == '-') {
			while (i < n && sql[i] != '\n')
				t[i++] = ' ';
			continue;
		}
		if (c == '/' && i + 1 < n && sql[i + 1] == '*') {
			const char *e = strstr(sql + i + 2, "*/");
			size_t end = e ? (size_t)(e - sql) + 2 : n;
			while (i < end)
				t[i++] = ' ';
			continue;
		}
		t[i++] = (char)toupper((unsigned char)c);
	}
	t[n] = '\0';
	return t;
}

/* pat (upper case, single spaces meaning any run of blanks) as whole words in t. */
static bool lint_find(const char *t, const char *pat)
{
	for (const char *s = t; *s; s++) {
		if (s > t && lint_word(s[-1]) && lint_word(pat[0]))
			continue;
		const char *a = s, *b = pat;
		while (*b) {
			if (*b == ' ') {
				if (!isspace((unsigned char)*a) && lint_word(b[-1]) && lint_word(b[1]))
					break;
				while (isspace((unsigned char)*a))
					a++;
				b++;
				continue;
			}
			if (*a != *b)
				break;
			a++, b++;
		}
		if (!*b && !(lint_word(pat[strlen(pat) - 1]) && lint_word(*a)))
			return true;
	}
	return false;
}

const char *sql_redshift_lint(const char *sql)
{
	static const struct {
		const char *pat, *name;
	} bad[] = {
		{ "COPY", "COPY" },
		{ "DISTINCT ON", "DISTINCT ON" },
		{ "STRING_AGG", "STRING_AGG" },
		{ "ARRAY_AGG", "ARRAY_AGG" },
		{ "JSON_AGG", "json_agg" },
		{ "JSONB_AGG", "jsonb_agg" },
		{ "ARRAY[", "an array constructor" },
		{ "ARRAY (", "an array constructor" },
		{ "ANY (", "= ANY(array)" },
		{ ")[", "an array subscript" },
		{ "FILTER (", "an aggregate FILTER clause" },
		{ "NULLS FIRST", "NULLS FIRST" },
		{ "NULLS LAST", "NULLS LAST" },
		{ "ON CONFLICT", "ON CONFLICT" },
		{ "::TEXT", "::text (VARCHAR(256) in Redshift)" },
		{ "AS TEXT)", "CAST(... AS TEXT) (VARCHAR(256) in Redshift)" },
		{ "COLLATE", "COLLATE" },
		{ "DECLARE", "a cursor" },
		{ "FETCH", "a cursor" },
		{ "GENERATE_SERIES", "GENERATE_SERIES" },
		{ "IS DISTINCT FROM", "IS DISTINCT FROM" },
		{ "IS NOT DISTINCT FROM", "IS NOT DISTINCT FROM" },
		{ "CTID", "ctid" },
		{ "MD5 (CAST (", "a row digest" },
		{ "LATERAL", "LATERAL" },
		{ "CLIENT_CONNECTION_CHECK_INTERVAL", "client_connection_check_interval" },
		{ "INTERVALSTYLE", "IntervalStyle" },
		{ "DEFAULT_TRANSACTION_READ_ONLY", "default_transaction_read_only" },
	};
	char *t = lint_text(sql);
	const char *found = NULL;
	for (size_t i = 0; !found && i < ARRAY_SIZE(bad); i++)
		if (lint_find(t, bad[i].pat))
			found = bad[i].name;
	/* more than 32767 parameters: $32768 or beyond */
	for (const char *s = t; !found && (s = strchr(s, '$')); s++) {
		char *end;
		long v = strtol(s + 1, &end, 10);
		if (end != s + 1 && v > 32767)
			found = "more than 32767 parameters";
	}
	free(t);
	return found;
}
