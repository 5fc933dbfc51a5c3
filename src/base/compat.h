/* compat.h: compiler attributes used across joey. */
#ifndef JOEY_COMPAT_H
#define JOEY_COMPAT_H

#define JOEY_WUR __attribute__((warn_unused_result))
#define JOEY_PRINTF(f, a) __attribute__((format(printf, f, a)))
#define JOEY_NORETURN __attribute__((noreturn))
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#endif
