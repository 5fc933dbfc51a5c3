/*
 * strbuf.h: the two string types.
 *
 * struct strbuf is an owned, growable, always NUL-terminated buffer. It is never
 * NULL-backed after STRBUF_INIT (buf points at a static "" until the first add), so
 * sb.buf can always be printed. strbuf_detach() hands the memory to the caller.
 * A buffer grows to at most STRBUF_MAX bytes; past that joey aborts with a message
 * (inputs are bounded earlier, so this only catches bugs).
 *
 * struct slice is a borrowed {ptr, len} view; it owns nothing.
 */
#ifndef JOEY_STRBUF_H
#define JOEY_STRBUF_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "base/compat.h"

#define STRBUF_MAX ((size_t)1 << 31)

struct strbuf {
	char *buf;
	size_t len;
	size_t alloc; /* 0 while buf points at the shared empty string */
};

extern char strbuf_empty[];
#define STRBUF_INIT { strbuf_empty, 0, 0 }

struct slice {
	const char *ptr;
	size_t len;
};

#define SLICE_LIT(s) ((struct slice){ (s), sizeof(s) - 1 })
static inline struct slice slice_of(const char *s) { return (struct slice){ s, s ? strlen(s) : 0 }; }
static inline bool slice_eq(struct slice a, struct slice b)
{
	return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}
static inline bool slice_eq_str(struct slice a, const char *s) { return slice_eq(a, slice_of(s)); }
/* Bytewise comparison (like memcmp, shorter first on a tie). */
int slice_cmp(struct slice a, struct slice b);

/*
 * Strict decimal integer: an optional sign and 1 to 19 digits within int64_t's range
 * (-2^63 to 2^63-1), nothing else. Returns false, leaving *out alone, for anything else.
 */
bool decimal_to_int64(const char *s, size_t len, int64_t *out);

void strbuf_init(struct strbuf *sb, size_t hint);
/* Free the buffer; sb is left as STRBUF_INIT. */
void strbuf_release(struct strbuf *sb);
/* Hand the buffer to the caller (free with free()); sb is left empty. */
char *strbuf_detach(struct strbuf *sb, size_t *len);
void strbuf_grow(struct strbuf *sb, size_t extra);
void strbuf_setlen(struct strbuf *sb, size_t len);
static inline void strbuf_reset(struct strbuf *sb) { strbuf_setlen(sb, 0); }

/* strbuf_add and strbuf_addch are inline: JSON and payload building call them per byte or field */
static inline void strbuf_add(struct strbuf *sb, const void *data, size_t len)
{
	if (!len)
		return;
	if (sb->len + len + 1 > sb->alloc)
		strbuf_grow(sb, len);
	memcpy(sb->buf + sb->len, data, len);
	sb->len += len;
	sb->buf[sb->len] = '\0';
}
void strbuf_addstr(struct strbuf *sb, const char *s);
static inline void strbuf_addch(struct strbuf *sb, int c)
{
	if (sb->len + 2 > sb->alloc)
		strbuf_grow(sb, 1);
	sb->buf[sb->len++] = (char)c;
	sb->buf[sb->len] = '\0';
}
static inline void strbuf_addslice(struct strbuf *sb, struct slice s) { strbuf_add(sb, s.ptr, s.len); }
void strbuf_addf(struct strbuf *sb, const char *fmt, ...) JOEY_PRINTF(2, 3);
void strbuf_vaddf(struct strbuf *sb, const char *fmt, va_list ap) JOEY_PRINTF(2, 0);

/*
 * Append s as a JSON string literal, quotes included: control characters escaped,
 * NUL bytes dropped and invalid UTF-8 replaced by U+FFFD, so the result is always
 * valid JSON whatever bytes a source holds.
 */
void strbuf_add_json_string(struct strbuf *sb, const char *s, size_t len);
/* Append s quoted as an SQL identifier ("a""b"). */
void strbuf_add_sql_ident(struct strbuf *sb, const char *s);

/* The value of hex digit c (0-9, a-f, A-F), or -1 for any other character (for the
 * decoders of percent escapes, backslash-x escapes and hex text). */
int hex_digit_value(int c);

#endif
