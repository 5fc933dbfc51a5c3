/* names.c: the names config files use for joey's enums, and the rule-operator table. */
#include "config/config.h"
#include "config/names.h"

#include <string.h>

const char *const prop_type_names[PROP__COUNT] = {
	[PROP_STRING] = "string", [PROP_INTEGER] = "integer", [PROP_FLOAT] = "float",
	[PROP_BOOLEAN] = "boolean", [PROP_DATE] = "date", [PROP_EMAIL] = "email",
	[PROP_PHONE] = "phoneNumber", [PROP_URL] = "url",
};
const char *const agg_method_names[AGG__COUNT] = {
	[AGG_EXACT] = "exact", [AGG_COUNT] = "count", [AGG_SUM] = "sum",
	[AGG_AVERAGE] = "average", [AGG_MIN] = "min", [AGG_MAX] = "max",
	[AGG_MOST_RECENT] = "most recent value", [AGG_LEAST_RECENT] = "least recent value",
};
const char *const filter_op_names[FOP__COUNT] = {
	[FOP_EQ] = "eq", [FOP_NE] = "ne", [FOP_GT] = "gt", [FOP_GTE] = "gte",
	[FOP_LT] = "lt", [FOP_LTE] = "lte", [FOP_SUBSTRING] = "substring",
	[FOP_NOT_SUBSTRING] = "notSubstring", [FOP_IN] = "in", [FOP_EXISTS] = "exists",
	[FOP_NOT_EXISTS] = "notExists",
};
const char *const rule_op_names[ROP__COUNT] = {
	[ROP_EXISTS] = "exists", [ROP_NOT_EXISTS] = "notExists", [ROP_EQ] = "eq",
	[ROP_NE] = "ne", [ROP_GT] = "gt", [ROP_GTE] = "gte", [ROP_LT] = "lt",
	[ROP_LTE] = "lte", [ROP_LIKE] = "like", [ROP_NOT_LIKE] = "notLike",
	[ROP_ILIKE] = "iLike", [ROP_NOT_ILIKE] = "notILike", [ROP_STARTS_WITH] = "startsWith",
	[ROP_ENDS_WITH] = "endsWith", [ROP_SUBSTRING] = "substring",
	[ROP_NOT_SUBSTRING] = "notSubstring", [ROP_RELATIVE_GT] = "relative_gt",
	[ROP_RELATIVE_LT] = "relative_lt",
};
const char *const class_names[CLASS__COUNT] = {
	[CLASS_APP] = "App", [CLASS_MODEL] = "Model", [CLASS_SOURCE] = "Source",
	[CLASS_PROPERTY] = "Property", [CLASS_GROUP] = "Group",
	[CLASS_DESTINATION] = "Destination", [CLASS_SCHEDULE] = "Schedule",
	[CLASS_ALERT] = "Alert",
};
const char *const rel_unit_names[5] = { "days", "weeks", "months", "quarters", "years" };
const char *const sync_mode_names[3] = { [SYNC_SYNC] = "sync", [SYNC_ADDITIVE] = "additive", [SYNC_ENRICH] = "enrich" };
const char *const collection_names[3] = { [COLL_NONE] = "none", [COLL_GROUP] = "group", [COLL_MODEL] = "model" };

const char *prop_type_name(enum prop_type t) { return (unsigned)t < PROP__COUNT ? prop_type_names[t] : "?"; }
const char *agg_method_name(enum agg_method m) { return (unsigned)m < AGG__COUNT ? agg_method_names[m] : "?"; }
const char *filter_op_name(enum filter_op op) { return (unsigned)op < FOP__COUNT ? filter_op_names[op] : "?"; }
const char *rule_op_name(enum rule_op op) { return (unsigned)op < ROP__COUNT ? rule_op_names[op] : "?"; }
const char *cfg_class_name(enum cfg_class c) { return (unsigned)c < CLASS__COUNT ? class_names[c] : "?"; }
const char *rel_unit_name(enum rel_unit u) { return (unsigned)u < 5 ? rel_unit_names[u] : "?"; }
const char *sync_mode_name(enum sync_mode m) { return (unsigned)m < 3 ? sync_mode_names[m] : "?"; }
const char *collection_name(enum collection c) { return (unsigned)c < 3 ? collection_names[c] : "?"; }

/* Grouparoo's ruleOpsDictionary (iLike/notILike allowed: joey evaluates them itself). */
bool rule_op_allowed(enum rule_op op, enum prop_type t)
{
	switch (op) {
	case ROP_EXISTS:
	case ROP_NOT_EXISTS:
	case ROP_EQ:
	case ROP_NE:
		return true;
	case ROP_GT:
	case ROP_GTE:
	case ROP_LT:
	case ROP_LTE:
		return t == PROP_INTEGER || t == PROP_FLOAT || t == PROP_DATE;
	case ROP_LIKE:
	case ROP_NOT_LIKE:
	case ROP_ILIKE:
	case ROP_NOT_ILIKE:
	case ROP_STARTS_WITH:
	case ROP_ENDS_WITH:
	case ROP_SUBSTRING:
	case ROP_NOT_SUBSTRING:
		return t == PROP_STRING || t == PROP_EMAIL || t == PROP_PHONE || t == PROP_URL;
	case ROP_RELATIVE_GT:
	case ROP_RELATIVE_LT:
		return t == PROP_DATE;
	case ROP__COUNT:
		break;
	}
	return false;
}

int names_find(const char *const *names, size_t n, const char *s)
{
	for (size_t i = 0; s && i < n; i++)
		if (names[i] && !strcmp(names[i], s))
			return (int)i;
	return -1;
}
