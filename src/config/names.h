/* names.h: internal to src/config: name tables for the config enums (static, borrowed). */
#ifndef JOEY_CONFIG_NAMES_H
#define JOEY_CONFIG_NAMES_H

#include <stddef.h>

#include "config/config.h"

extern const char *const prop_type_names[PROP__COUNT];
extern const char *const agg_method_names[AGG__COUNT];
extern const char *const filter_op_names[FOP__COUNT];
extern const char *const rule_op_names[ROP__COUNT];
extern const char *const class_names[CLASS__COUNT];
extern const char *const rel_unit_names[5];
extern const char *const sync_mode_names[3];
extern const char *const collection_names[3];

/* Index of s in names[0..n), or -1. */
int names_find(const char *const *names, size_t n, const char *s);

#endif
