/*
 * log.h: leveled logging to stderr.
 *
 * Lines are "joey: LEVEL: message". Data that comes from outside (record values,
 * server messages) must be passed through log_sanitize() style escaping: newlines and
 * control characters in arguments are escaped so one event is one line.
 */
#ifndef JOEY_LOG_H
#define JOEY_LOG_H

#include "base/compat.h"

enum log_level { LOG_ERROR, LOG_WARN, LOG_INFO, LOG_DEBUG };

void log_set_level(enum log_level lvl);
enum log_level log_get_level(void);
void log_msg(enum log_level lvl, const char *fmt, ...) JOEY_PRINTF(2, 3);

#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)

#endif
