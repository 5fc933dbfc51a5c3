/* pgmsg.c: libpq's and the server's messages, shared by the PostgreSQL source and state store (pgmsg.h). */
#include "source/pgmsg.h"

#include <string.h>

#include "base/compat.h"

void pgmsg_add(struct strbuf *sb, const char *msg)
{
	size_t start = sb->len;
	for (const char *s = msg ? msg : ""; *s; s++) {
		if (*s == '\n') {
			strbuf_addstr(sb, "; ");
			continue;
		}
		strbuf_addch(sb, *s == '\t' ? ' ' : *s);
	}
	while (sb->len > start && (sb->buf[sb->len - 1] == ' ' || sb->buf[sb->len - 1] == ';'))
		strbuf_setlen(sb, sb->len - 1);
}

bool pgmsg_permanent(const char *msg)
{
	static const char *const words[] = { "authentication failed", "does not exist",
					     "no pg_hba.conf entry", "password is required",
					     "permission denied", "invalid", "SSL" };
	for (size_t i = 0; msg && i < ARRAY_SIZE(words); i++)
		if (strstr(msg, words[i]))
			return true;
	return false;
}
