/*
 * chwire.h: what the ClickHouse connector (clickhouse.c) reads and writes on the wire,
 * kept apart so it can be tested without a server: Grouparoo's URL rule for the app's
 * host and port, string literals, TabSeparated rows, array text, type names and the
 * server's exception text (both the 18.16 and the current spelling).
 *
 * None of these allocate except where a strbuf or arena is handed in; none fail other
 * than by returning false.
 */
#ifndef JOEY_SOURCE_CHWIRE_H
#define JOEY_SOURCE_CHWIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/arena.h"
#include "base/strbuf.h"

/*
 * The base URL ("http://localhost:8123/") Grouparoo's clickhouse plugin derived from
 * the app's host and port (both borrowed; NULL or "" when absent), appended to url
 * (warehouses.md 5.1): a host starting with http:// or https:// is used as given, one
 * starting with "localhost" (any case) gets http://, any other host https://, no host is
 * http://localhost; the port is `port` if given, else 8123 for http and 443 for https
 * (a port written inside an https host without `port` is dropped, as the library did).
 * Returns false, with why (a sentence) appended, for a host that is not a URL or host
 * name: one merely starting with "http" ("httpd.internal"), holding user info, a path, a
 * query, spaces or control characters, or a port that is not 1-65535.
 */
bool chw_base_url(const char *host, const char *port, struct strbuf *url, struct strbuf *why);

/* Append s (len bytes) as a ClickHouse string literal: '...' with \ and ' escaped by a
 * backslash, and control characters as \n \t \r \0 \b \f or \xHH. */
void chw_add_string_literal(struct strbuf *sb, const char *s, size_t len);

/* One field of a TabSeparated row: text (NUL-terminated in place) or NULL (\N). */
struct chw_field {
	const char *s;
	size_t len;
	bool null;
};

/*
 * Split one TabSeparated line (without its newline; len bytes, writable) in place into
 * exactly n fields, decoding the escapes \b \f \n \r \t \0 \' \" \\ \/ and \xHH (any
 * other \c is c). Returns false when the line has another number of fields or ends in a
 * lone backslash.
 */
bool chw_split_tsv(char *line, size_t len, struct chw_field *f, size_t n);

/*
 * A ClickHouse exception as the server writes it into a body:
 *   "Code: 60, e.displayText() = DB::Exception: Table x doesn't exist., e.what() = DB::Exception"
 *   "Code: 60. DB::Exception: Table x doesn't exist. (UNKNOWN_TABLE) (version 23.8.1.1)"
 * true when text (len bytes) starts with "Code: <digits>" followed by "," or "."; *code
 * gets the number and msg (may be NULL) the message, on one line, without the
 * "DB::Exception: " prefix and the trailing e.what()/(NAME) (version ...) parts.
 */
bool chw_exception(const char *text, size_t len, int *code, struct strbuf *msg);

/* Column types, with Nullable(...) and LowCardinality(...) stripped. */
enum chw_type {
	CHW_OTHER,
	CHW_INT,      /* Int8..Int256, UInt8..UInt256 */
	CHW_FLOAT,    /* Float32, Float64 */
	CHW_DECIMAL,  /* Decimal(P, S), Decimal32/64/128/256(S) */
	CHW_STRING,   /* String, FixedString(N) */
	CHW_DATE,     /* Date, Date32 */
	CHW_DATETIME, /* DateTime, DateTime('tz'), DateTime64(p[, 'tz']) */
	CHW_BOOL,     /* Bool (22.x): true / false */
	CHW_UUID,
	CHW_ENUM,     /* Enum8/Enum16('a' = 1, ...): text in TabSeparated */
	CHW_ARRAY,    /* Array(T): see chw_array_items */
};

/*
 * The kind of a type name (borrowed, len bytes) as system.columns or the
 * TabSeparatedWithNamesAndTypes header spell it; *nullable when it was Nullable(...),
 * *inner / *inner_len the type without the wrappers (into type).
 */
enum chw_type chw_type_parse(const char *type, size_t len, bool *nullable, const char **inner,
			     size_t *inner_len);

/* One item of an array's text. */
struct chw_item {
	const char *s; /* decoded text, in the arena */
	size_t len;
	bool null;
};

/*
 * The items of an array's text form (['a','b\'c'], [1,2], [NULL]; nested arrays and
 * tuples as their text) into *items (in arena, *n of them). False if text is not an
 * array literal.
 */
bool chw_array_items(const char *text, size_t len, struct arena *a, struct chw_item **items, size_t *n);

#endif
