/* log.c: leveled one-line-per-event logging to stderr. */
#include "base/log.h"

#include <stdarg.h>
#include <stdio.h>

#include "base/strbuf.h"

static enum log_level current = LOG_WARN;

void log_set_level(enum log_level lvl)
{
	current = lvl;
}

enum log_level log_get_level(void)
{
	return current;
}

void log_msg(enum log_level lvl, const char *fmt, ...)
{
	static const char *const names[] = { "error", "warning", "info", "debug" };
	struct strbuf sb = STRBUF_INIT;
	va_list ap;

	if (lvl > current)
		return;
	va_start(ap, fmt);
	strbuf_vaddf(&sb, fmt, ap);
	va_end(ap);
	/* one event, one line: escape what would break it */
	fprintf(stderr, "joey: %s: ", names[lvl]);
	for (size_t i = 0; i < sb.len; i++) {
		unsigned char c = (unsigned char)sb.buf[i];
		if (c == '\n')
			fputs("\\n", stderr);
		else if (c == '\r')
			fputs("\\r", stderr);
		else if (c < 0x20 && c != '\t')
			fprintf(stderr, "\\x%02x", c);
		else
			fputc(c, stderr);
	}
	fputc('\n', stderr);
	strbuf_release(&sb);
}
