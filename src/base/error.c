/* error.c: error table, error object and its printing. */
#include "base/error.h"

#include <stdarg.h>

static const char *const names[] = {
#define JERR_NAME_(code, name, msg) name,
	JOEY_ERRORS(JERR_NAME_)
#undef JERR_NAME_
};

static const char *const messages[] = {
#define JERR_MSG_(code, name, msg) msg,
	JOEY_ERRORS(JERR_MSG_)
#undef JERR_MSG_
};

const char *jerr_name(enum jerr code)
{
	return (unsigned)code < JERR__COUNT ? names[code] : "unknown";
}

const char *jerr_default_message(enum jerr code)
{
	return (unsigned)code < JERR__COUNT ? messages[code] : "unknown error";
}

enum jerr jerror_set(struct jerror *err, enum jerr code, const char *fmt, ...)
{
	va_list ap;
	if (!err)
		return code;
	err->code = code;
	strbuf_reset(&err->msg);
	strbuf_reset(&err->detail);
	strbuf_reset(&err->hint);
	va_start(ap, fmt);
	strbuf_vaddf(&err->msg, fmt, ap);
	va_end(ap);
	return code;
}

void jerror_detail(struct jerror *err, const char *fmt, ...)
{
	va_list ap;
	if (!err)
		return;
	strbuf_reset(&err->detail);
	va_start(ap, fmt);
	strbuf_vaddf(&err->detail, fmt, ap);
	va_end(ap);
}

void jerror_hint(struct jerror *err, const char *fmt, ...)
{
	va_list ap;
	if (!err)
		return;
	strbuf_reset(&err->hint);
	va_start(ap, fmt);
	strbuf_vaddf(&err->hint, fmt, ap);
	va_end(ap);
}

void jerror_prefix(struct jerror *err, const char *fmt, ...)
{
	struct strbuf sb = STRBUF_INIT;
	va_list ap;
	if (!err)
		return;
	va_start(ap, fmt);
	strbuf_vaddf(&sb, fmt, ap);
	va_end(ap);
	strbuf_addslice(&sb, (struct slice){ err->msg.buf, err->msg.len });
	strbuf_release(&err->msg);
	err->msg = sb;
}

void jerror_print(FILE *out, const struct jerror *err)
{
	fprintf(out, "joey: error: %s\n",
		err->msg.len ? err->msg.buf : jerr_default_message(err->code));
	if (err->detail.len)
		fprintf(out, "detail: %s\n", err->detail.buf);
	if (err->hint.len)
		fprintf(out, "hint: %s\n", err->hint.buf);
}

void jerror_release(struct jerror *err)
{
	strbuf_release(&err->msg);
	strbuf_release(&err->detail);
	strbuf_release(&err->hint);
	err->code = JERR_OK;
}
