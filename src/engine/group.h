/*
 * group.h: Grouparoo calculated-group rules, evaluated per record in the streaming pass.
 *
 * Semantics (docs/grouparoo-config.md §2.4): rules combine with AND (matchType all)
 * or OR (any); a group with no rules has no members. On array properties a rule
 * matches when any element matches, except the negations (ne, notLike, notILike,
 * notSubstring) which require that no element matches. like/startsWith/endsWith/
 * substring are case-sensitive (PostgreSQL); iLike/notILike ignore ASCII case.
 * relative_gt: the date lies within the last N units (now-N < v <= now);
 * relative_lt: within the next N units (now <= v < now+N).
 */
#ifndef JOEY_GROUP_H
#define JOEY_GROUP_H

#include <stdbool.h>
#include <stdint.h>

#include "config/config.h"

struct record;
struct value;

/* Is rec (borrowed) a member of g at time now_ms? */
bool group_matches(const struct cfg_group *g, const struct record *rec, int64_t now_ms);
/* Does one scalar value satisfy rule r (negations not applied for arrays here)? */
bool rule_matches_value(const struct cfg_rule *r, const struct value *v, int64_t now_ms);
/* SQL LIKE matching of s against pattern (% and _; backslash escapes). */
bool like_match(const char *s, size_t slen, const char *pat, size_t plen, bool icase);

#endif
