/*
 * error.h: the one error enum and the error object that carries its message.
 *
 * Codes come from a single X-macro table (code, name, default message). Fallible
 * functions return enum jerr (JERR_OK == 0) and fill a struct jerror that the caller
 * passes down. Messages follow PostgreSQL's style: lower case, no final period, what
 * failed first with user-supplied names quoted; then a detail (file:line, record key,
 * HTTP status, server message) and a hint (what to do).
 *
 *   struct jerror err = JERROR_INIT;
 *   if (state_open(path, &st, &err)) { jerror_print(stderr, &err); jerror_release(&err); }
 */
#ifndef JOEY_ERROR_H
#define JOEY_ERROR_H

#include <stdio.h>

#include "base/compat.h"
#include "base/strbuf.h"

#define JOEY_ERRORS(X)                                                                 \
	X(OK, "ok", "no error")                                                        \
	X(USAGE, "usage", "invalid command line")                                      \
	X(CONFIG, "config", "invalid configuration")                                   \
	X(IO, "io", "input/output error")                                              \
	X(SOURCE, "source", "source query failed")                                     \
	X(SOURCE_DATA, "source_data", "invalid data in source")                        \
	X(STATE, "state", "state store error")                                         \
	X(STATE_VERSION, "state_version", "state store written by a newer joey")       \
	X(STATE_BUSY, "state_busy", "state store is locked by another run")            \
	X(GUARD, "guard", "refused by the mass-delete guard")                          \
	X(HTTP, "http", "HTTP request failed")                                         \
	X(AUTH, "auth", "authentication failed")                                       \
	X(REMOTE, "remote", "remote service error")                                    \
	X(INTERRUPTED, "interrupted", "interrupted")                                   \
	X(INTERNAL, "internal", "internal error")

enum jerr {
#define JERR_ENUM_(code, name, msg) JERR_##code,
	JOEY_ERRORS(JERR_ENUM_)
#undef JERR_ENUM_
	JERR__COUNT
};

struct jerror {
	enum jerr code;
	struct strbuf msg;    /* primary message */
	struct strbuf detail; /* optional */
	struct strbuf hint;   /* optional */
};

#define JERROR_INIT { JERR_OK, STRBUF_INIT, STRBUF_INIT, STRBUF_INIT }

/* Stable short name ("config") and default message of a code. */
const char *jerr_name(enum jerr code);
const char *jerr_default_message(enum jerr code);

/* Set code and message (replacing any previous error); returns code. err may be NULL. */
enum jerr jerror_set(struct jerror *err, enum jerr code, const char *fmt, ...) JOEY_PRINTF(3, 4);
/* Set/replace the detail or hint of the current error. err may be NULL. */
void jerror_detail(struct jerror *err, const char *fmt, ...) JOEY_PRINTF(2, 3);
void jerror_hint(struct jerror *err, const char *fmt, ...) JOEY_PRINTF(2, 3);
/* Prefix the message with context ("state.db: " + msg). */
void jerror_prefix(struct jerror *err, const char *fmt, ...) JOEY_PRINTF(2, 3);
/* Print "joey: error: msg\ndetail: ...\nhint: ...\n". */
void jerror_print(FILE *out, const struct jerror *err);
/* Free the strings; err is reset to JERROR_INIT. */
void jerror_release(struct jerror *err);

#endif
