/*
 * pgmsg.h: what libpq and a PostgreSQL server say, read the same way by the PostgreSQL
 * source (postgres.c) and the PostgreSQL state store (state/pg/). Plain text work: no
 * connection, no libpq call.
 */
#ifndef JOEY_PGMSG_H
#define JOEY_PGMSG_H

#include <stdbool.h>

#include "base/strbuf.h"

/* Append msg (NULL: nothing) on one line: newlines become "; ", tabs spaces, and
 * trailing spaces and semicolons go. sb owned by the caller. */
void pgmsg_add(struct strbuf *sb, const char *msg);
/* Whether a connection failure's message says another try cannot help: wrong
 * credentials, no such database or role, no pg_hba.conf entry, an SSL problem. */
bool pgmsg_permanent(const char *msg);

#endif
