/* braze.c: braze-sim's Braze endpoints: validation, state changes and response shapes. */
#include "sim.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "base/xalloc.h"

#define MSG_VALID_DATA "Valid data must be provided in the 'attributes', 'events', or 'purchases' fields."
#define MSG_REQUIRED "'external_id' or 'braze_id' or 'user_alias' is required"
#define MSG_TOO_MANY_DELETE "The max number of external_ids and aliases per request was exceeded"
#define MSG_TOO_MANY_IDS "The max number of ids per request was exceeded"

static double fabs_num(double x)
{
	return x < 0 ? -x : x;
}

static void reply(struct call *c, int status, const char *message)
{
	c->status = status;
	c->resp = json_pack("{s:s}", "message", message);
}

/* ---- field classification ---- */

enum fkind {
	F_CUSTOM, F_IDENT, F_FLAG, F_STRING, F_EMAIL, F_COUNTRY, F_LANGUAGE, F_TZ, F_DOB,
	F_GENDER, F_EMAIL_SUB, F_PUSH_SUB, F_GROUPS, F_LOCATION, F_ANY
};

static const struct {
	const char *name;
	enum fkind kind;
} std_fields[] = {
	{ "external_id", F_IDENT }, { "user_alias", F_IDENT }, { "braze_id", F_IDENT },
	{ "alias_name", F_IDENT }, { "alias_label", F_IDENT },
	{ "_update_existing_only", F_FLAG }, { "_merge_objects", F_FLAG }, { "push_token_import", F_FLAG },
	{ "first_name", F_STRING }, { "last_name", F_STRING }, { "home_city", F_STRING },
	{ "phone", F_STRING }, { "bio", F_STRING }, { "image_url", F_STRING },
	{ "email", F_EMAIL }, { "country", F_COUNTRY }, { "language", F_LANGUAGE },
	{ "time_zone", F_TZ }, { "dob", F_DOB }, { "gender", F_GENDER },
	{ "email_subscribe", F_EMAIL_SUB }, { "push_subscribe", F_PUSH_SUB },
	{ "subscription_groups", F_GROUPS }, { "current_location", F_LOCATION },
	{ "date_of_first_session", F_ANY }, { "date_of_last_session", F_ANY },
	{ "marked_email_as_spam_at", F_ANY }, { "email_open_tracking_disabled", F_ANY },
	{ "email_click_tracking_disabled", F_ANY }, { "push_tokens", F_ANY },
	{ "facebook", F_ANY }, { "twitter", F_ANY },
};

static struct smap kinds; /* name -> enum fkind + 1 */
static pthread_once_t kinds_once = PTHREAD_ONCE_INIT;

static void kinds_init(void)
{
	for (size_t i = 0; i < sizeof(std_fields) / sizeof(std_fields[0]); i++)
		smap_put(&kinds, std_fields[i].name, (void *)(uintptr_t)(std_fields[i].kind + 1));
}

static enum fkind field_kind(const char *key)
{
	pthread_once(&kinds_once, kinds_init);
	uintptr_t k = (uintptr_t)smap_get(&kinds, key);
	return k ? (enum fkind)(k - 1) : F_CUSTOM;
}

static bool valid_email(const char *s)
{
	const char *at = strchr(s, '@');
	if (!at || at == s || strchr(at + 1, '@'))
		return false;
	const char *dot = strrchr(at + 1, '.');
	if (!dot || dot == at + 1 || !dot[1])
		return false;
	for (const char *p = s; *p; p++)
		if ((unsigned char)*p <= ' ' || *p == ',' || *p == ';' || *p == '<' || *p == '>')
			return false;
	return true;
}

static bool valid_uuid(const char *s)
{
	if (strlen(s) != 36)
		return false;
	for (int i = 0; i < 36; i++) {
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (s[i] != '-')
				return false;
		} else if (!isxdigit((unsigned char)s[i])) {
			return false;
		}
	}
	return true;
}

static bool known_group(const char *id)
{
	if (!valid_uuid(id))
		return false;
	return !sim.groups || json_object_get(sim.groups, id);
}

static bool valid_tz(const char *s)
{
	struct stat sb;
	char path[512];
	if (!*s || strstr(s, "..") || s[0] == '/' || strlen(s) > 64)
		return false;
	for (const char *p = s; *p; p++)
		if (!isalnum((unsigned char)*p) && !strchr("/_-+", *p))
			return false;
	if (stat("/usr/share/zoneinfo", &sb) != 0) /* no tzdata: accept the shape */
		return strchr(s, '/') || strcmp(s, "UTC") == 0;
	snprintf(path, sizeof(path), "/usr/share/zoneinfo/%s", s);
	return stat(path, &sb) == 0 && S_ISREG(sb.st_mode);
}

static bool valid_dob(const char *s)
{
	int y, m, d;
	char tail;
	if (strlen(s) < 10 || sscanf(s, "%4d-%2d-%2d%c", &y, &m, &d, &tail) < 3)
		return false;
	if (s[4] != '-' || s[7] != '-' || (s[10] && s[10] != 'T' && s[10] != ' '))
		return false;
	return y >= 1 && m >= 1 && m <= 12 && d >= 1 && d <= 31;
}

/* Bytes of s that hold at most max UTF-8 characters. */
static size_t utf8_prefix(const char *s, size_t len, size_t max)
{
	size_t chars = 0;
	for (size_t i = 0; i < len; i++) {
		if (((unsigned char)s[i] & 0xC0) != 0x80) {
			if (chars == max)
				return i;
			chars++;
		}
	}
	return len;
}

static bool string_too_long(json_t *v)
{
	const char *s = json_string_value(v);
	size_t len = json_string_length(v);
	if (len <= SIM_MAX_STRING) /* never more characters than bytes */
		return false;
	return utf8_prefix(s, len, SIM_MAX_STRING) < len;
}

/* A new reference to v with every string cut to 255 characters. */
static json_t *truncated(json_t *v)
{
	if (json_is_string(v) && string_too_long(v)) {
		sim.stats.strings_truncated++;
		const char *s = json_string_value(v);
		return json_stringn(s, utf8_prefix(s, json_string_length(v), SIM_MAX_STRING));
	}
	return json_incref(v);
}

static bool is_blocklisted(const char *id)
{
	for (size_t i = 0; i < sim.n_blocklist; i++)
		if (strcmp(sim.blocklist[i], id) == 0)
			return true;
	return false;
}

static const char *row_error_for(const char *ext)
{
	for (size_t i = 0; i < sim.n_row_errors; i++)
		if (strcmp(sim.row_errors[i].external_id, ext) == 0)
			return sim.row_errors[i].type;
	return NULL;
}

/* ---- custom attribute operators ---- */

enum op { OP_NONE, OP_ADD_REMOVE, OP_INC, OP_OBJ_ARRAY };

static enum op object_op(json_t *v)
{
	const char *k;
	json_t *x;
	int ar = 0, inc = 0, obj = 0, other = 0;
	if (!json_is_object(v) || !json_object_size(v))
		return OP_NONE;
	json_object_foreach(v, k, x) {
		if (!strcmp(k, "add") || !strcmp(k, "remove"))
			ar += json_is_array(x);
		else if (!strcmp(k, "inc"))
			inc += json_is_number(x);
		else if (!strcmp(k, "$add") || !strcmp(k, "$remove") || !strcmp(k, "$update"))
			obj += json_is_array(x);
		else
			other++;
	}
	size_t n = json_object_size(v);
	if (!other && (size_t)ar == n)
		return OP_ADD_REMOVE;
	if (!other && inc == 1 && n == 1)
		return OP_INC;
	if (!other && (size_t)obj == n)
		return OP_OBJ_ARRAY;
	return OP_NONE;
}

/* Nested custom attribute rules: keys without spaces, '.', leading '$' (except a
 * {"$time": "..."} date), no nulls, strings <= 255. */
static bool nested_valid(json_t *v, int depth)
{
	const char *k;
	json_t *x;
	size_t i;
	if (depth > 50)
		return false;
	if (json_is_null(v))
		return false;
	if (json_is_string(v))
		return !string_too_long(v);
	if (json_is_array(v)) {
		json_array_foreach(v, i, x)
			if (!nested_valid(x, depth + 1))
				return false;
		return true;
	}
	if (!json_is_object(v))
		return true;
	if (json_object_size(v) == 1 && json_is_string(json_object_get(v, "$time")))
		return true;
	json_object_foreach(v, k, x) {
		if (!*k || strlen(k) > SIM_MAX_STRING || strchr(k, ' ') || strchr(k, '.') || k[0] == '$')
			return false;
		if (!nested_valid(x, depth + 1))
			return false;
	}
	return true;
}

static size_t leaf_keys(json_t *v)
{
	const char *k;
	json_t *x;
	size_t n = 0;
	if (!json_is_object(v) || (json_object_size(v) == 1 && json_object_get(v, "$time")))
		return 1;
	json_object_foreach(v, k, x)
		n += leaf_keys(x);
	return n ? n : 1;
}

static json_t *current_json(struct user *u, const char *key)
{
	struct attr *a = user_attr(u, key);
	return a ? attr_json(a) : NULL;
}

static void cap_array(json_t *arr)
{
	while (sim.array_cap > 0 && json_array_size(arr) > (size_t)sim.array_cap)
		json_array_remove(arr, 0);
}

static long str_index(json_t *arr, json_t *s)
{
	size_t i;
	json_t *x;
	json_array_foreach(arr, i, x)
		if (json_equal(x, s))
			return (long)i;
	return -1;
}

static json_t *dedup_strings(json_t *v)
{
	json_t *out = json_array(), *x;
	size_t i;
	json_array_foreach(v, i, x) {
		json_t *t = truncated(x);
		if (str_index(out, t) < 0)
			json_array_append(out, t);
		json_decref(t);
	}
	cap_array(out);
	return out;
}

static bool all_strings(json_t *arr)
{
	size_t i;
	json_t *x;
	json_array_foreach(arr, i, x)
		if (!json_is_string(x))
			return false;
	return true;
}

/* Apply {"add": [...], "remove": [...]} to a string array; returns data points. */
static long apply_add_remove(struct user *u, const char *key, json_t *op)
{
	json_t *cur = current_json(u, key), *x;
	size_t i;
	long dp = 0;
	if (!cur || !json_is_array(cur)) {
		json_decref(cur);
		cur = json_array();
	}
	json_array_foreach(json_object_get(op, "add"), i, x) {
		json_t *t = truncated(x);
		long at = str_index(cur, t);
		if (at >= 0)
			json_array_remove(cur, (size_t)at); /* an existing value moves to the end */
		json_array_append(cur, t);
		json_decref(t);
		dp++;
	}
	json_array_foreach(json_object_get(op, "remove"), i, x) {
		long at = str_index(cur, x);
		if (at >= 0)
			json_array_remove(cur, (size_t)at);
		dp++;
	}
	cap_array(cur);
	user_set(&sim.store, u, key, true, cur);
	json_decref(cur);
	return dp;
}

static long obj_find(json_t *arr, json_t *idkey, json_t *idval)
{
	size_t i;
	json_t *x;
	if (!json_is_string(idkey))
		return -1;
	json_array_foreach(arr, i, x)
		if (json_is_object(x) && json_equal(json_object_get(x, json_string_value(idkey)), idval))
			return (long)i;
	return -1;
}

/* $add, $remove, $update in that order; an array over 100 KB is dropped silently. */
static long apply_obj_array(struct user *u, const char *key, json_t *op, bool merge)
{
	json_t *cur = current_json(u, key), *x;
	size_t i;
	long dp = 0;
	if (!cur || !json_is_array(cur)) {
		json_decref(cur);
		cur = json_array();
	}
	json_array_foreach(json_object_get(op, "$add"), i, x) {
		json_array_append(cur, x);
		dp += (long)leaf_keys(x);
	}
	json_array_foreach(json_object_get(op, "$remove"), i, x) {
		long at = obj_find(cur, json_object_get(x, "$identifier_key"), json_object_get(x, "$identifier_value"));
		if (at >= 0)
			json_array_remove(cur, (size_t)at);
		dp++;
	}
	json_array_foreach(json_object_get(op, "$update"), i, x) {
		long at = obj_find(cur, json_object_get(x, "$identifier_key"), json_object_get(x, "$identifier_value"));
		json_t *nobj = json_object_get(x, "$new_object");
		if (at < 0 || !json_is_object(nobj) || !merge)
			continue;
		json_object_update_recursive(json_array_get(cur, (size_t)at), nobj);
		dp += (long)leaf_keys(nobj);
	}
	char *s = json_dumps(cur, JSON_COMPACT);
	if (s && strlen(s) <= 100 * 1024)
		user_set(&sim.store, u, key, true, cur);
	else
		dp = 0;
	free(s);
	json_decref(cur);
	return dp;
}

/* ---- /users/track ---- */

struct track_ctx {
	bool drop_nested;
	json_t *errors;
	unsigned long long data_points;
};

static void add_error(json_t *errors, const char *type, const char *array, size_t index)
{
	json_array_append_new(errors, json_pack("{s:s,s:s,s:I}", "type", type, "input_array", array,
						"index", (json_int_t)index));
}

/* Per-field validation; NULL when the value is acceptable. */
static const char *check_field(const char *key, enum fkind kind, json_t *v)
{
	size_t i;
	json_t *x;
	switch (kind) {
	case F_EMAIL:
		if (!json_is_null(v) && !(json_is_string(v) && valid_email(json_string_value(v))))
			return "EMAIL_BAD_FORMAT";
		return NULL;
	case F_EMAIL_SUB:
		if (!json_is_null(v) && !(json_is_string(v) && sub_state_parse(json_string_value(v)) >= 0))
			return "BAD_EMAIL_SUBSCRIPTION_STATE";
		return NULL;
	case F_PUSH_SUB:
		if (!json_is_null(v) && !(json_is_string(v) && sub_state_parse(json_string_value(v)) >= 0))
			return "BAD_PUSH_SUBSCRIPTION_STATE";
		return NULL;
	case F_GROUPS:
		if (!json_is_array(v))
			return "BAD_SUBSCRIPTION_GROUP_ARRAY";
		json_array_foreach(v, i, x) {
			json_t *id = json_object_get(x, "subscription_group_id");
			json_t *state = json_object_get(x, "subscription_state");
			if (!json_is_object(x))
				return "BAD_SUBSCRIPTION_GROUP_HASH";
			if (!json_is_string(id) || !known_group(json_string_value(id)))
				return "BAD_SUBSCRIPTION_GROUP_ID";
			if (!json_is_string(state) || (strcmp(json_string_value(state), "subscribed") &&
						       strcmp(json_string_value(state), "unsubscribed")))
				return "BAD_SUBSCRIPTION_GROUP_STATE";
		}
		return NULL;
	case F_LOCATION: {
		if (json_is_null(v))
			return NULL;
		json_t *lon = json_object_get(v, "longitude"), *lat = json_object_get(v, "latitude");
		if (!json_is_number(lon) || !json_is_number(lat) || fabs_num(json_number_value(lon)) > 180 ||
		    fabs_num(json_number_value(lat)) > 90)
			return "BAD_LOCATION_UPDATE";
		return NULL;
	}
	case F_CUSTOM:
		if (!*key || strlen(key) > SIM_MAX_STRING || (key[0] == '$' && !sim.dollar_ignore))
			return "INVALID_CUSTOM_ATTRIBUTE_KEY";
		if (sim.string_error && json_is_string(v) && string_too_long(v))
			return "STRING_TOO_LONG";
		return NULL;
	case F_STRING:
		if (sim.string_error && json_is_string(v) && string_too_long(v))
			return "STRING_TOO_LONG";
		return NULL;
	default:
		return NULL;
	}
}

/* *ikey: key interned (store_intern), or NULL: then it is interned here and set. */
static void apply_field(struct user *u, const char *key, enum fkind kind, const char **ikey, json_t *v,
			bool merge, struct track_ctx *tc)
{
	size_t i;
	json_t *x;
	char buf[16];

	switch (kind) {
	case F_IDENT:
	case F_FLAG:
		return;
	default:
		break;
	}
	if (!*ikey)
		*ikey = store_intern(&sim.store, key);
	key = *ikey; /* user_set_k and user_attr_k compare pointers */
	switch (kind) {
	case F_EMAIL_SUB:
		u->email_sub = json_is_null(v) ? SUB_SUBSCRIBED : (uint8_t)sub_state_parse(json_string_value(v));
		return;
	case F_PUSH_SUB:
		u->push_sub = json_is_null(v) ? SUB_SUBSCRIBED : (uint8_t)sub_state_parse(json_string_value(v));
		return;
	case F_GROUPS:
		json_array_foreach(v, i, x)
			user_set_group(u, json_string_value(json_object_get(x, "subscription_group_id")),
				       !strcmp(json_string_value(json_object_get(x, "subscription_state")), "subscribed"));
		return;
	case F_COUNTRY: { /* ISO alpha-2; anything else is stored as NULL */
		const char *s = json_string_value(v);
		if (s && strlen(s) == 2 && isalpha((unsigned char)s[0]) && isalpha((unsigned char)s[1])) {
			snprintf(buf, sizeof(buf), "%c%c", toupper((unsigned char)s[0]), toupper((unsigned char)s[1]));
			json_t *c = json_string(buf);
			user_set_k(u, key, false, c);
			json_decref(c);
		} else {
			user_unset(u, key);
		}
		return;
	}
	case F_LANGUAGE: {
		const char *s = json_string_value(v);
		tc->data_points += 0;
		if (json_is_null(v))
			user_unset(u, key);
		else if (s && strlen(s) == 2 && isalpha((unsigned char)s[0]) && isalpha((unsigned char)s[1])) {
			snprintf(buf, sizeof(buf), "%c%c", tolower((unsigned char)s[0]), tolower((unsigned char)s[1]));
			json_t *c = json_string(buf);
			user_set_k(u, key, false, c);
			json_decref(c);
		}
		return;
	}
	default:
		break;
	}

	/* every remaining key is a data point, even when unchanged or null */
	tc->data_points++;
	if (json_is_null(v)) {
		user_unset(u, key);
		return;
	}
	switch (kind) {
	case F_TZ:
		if (json_is_string(v) && valid_tz(json_string_value(v)))
			user_set_k(u, key, false, v);
		return;
	case F_DOB:
		if (json_is_string(v) && valid_dob(json_string_value(v))) {
			json_t *d = json_stringn(json_string_value(v), 10);
			user_set_k(u, key, false, d);
			json_decref(d);
		}
		return;
	case F_GENDER: {
		const char *s = json_string_value(v);
		if (s && strlen(s) == 1 && strchr("MFONPmfonp", s[0])) {
			snprintf(buf, sizeof(buf), "%c", toupper((unsigned char)s[0]));
			json_t *g = json_string(buf);
			user_set_k(u, key, false, g);
			json_decref(g);
		}
		return;
	}
	case F_CUSTOM:
		break;
	default: { /* standard strings and free-form standard fields */
		json_t *t = truncated(v);
		user_set_k(u, key, false, t);
		json_decref(t);
		return;
	}
	}

	/* custom attributes */
	if (key[0] == '$') /* --dollar-keys ignore */
		return;
	switch (object_op(v)) {
	case OP_ADD_REMOVE:
		tc->data_points += (unsigned long long)apply_add_remove(u, key, v) - 1;
		return;
	case OP_INC: {
		struct attr *a = user_attr_k(u, key);
		json_t *n = json_object_get(v, "inc"), *r;
		if (a && a->type == V_INT && json_is_integer(n))
			r = json_integer(a->u.i + json_integer_value(n));
		else if (a && (a->type == V_INT || a->type == V_REAL))
			r = json_real((a->type == V_INT ? (double)a->u.i : a->u.d) + json_number_value(n));
		else
			r = json_copy(n);
		user_set_k(u, key, true, r);
		json_decref(r);
		return;
	}
	case OP_OBJ_ARRAY:
		tc->data_points += (unsigned long long)apply_obj_array(u, key, v, merge) - 1;
		return;
	case OP_NONE:
		break;
	}
	if (json_is_object(v)) {
		if (tc->drop_nested) {
			tc->data_points--;
			sim.stats.nested_dropped++;
			return;
		}
		tc->data_points += leaf_keys(v) - 1;
		struct attr *a = user_attr_k(u, key);
		if (merge && a && a->type == V_JSON && json_is_object(a->u.j)) {
			/* the store keeps copies: v lives in the request's parse arena */
			json_t *copy = json_deep_copy(v);
			json_object_update_recursive(a->u.j, copy);
			json_decref(copy);
		} else {
			user_set_k(u, key, true, v);
		}
		return;
	}
	if (json_is_array(v)) {
		json_t *arr = all_strings(v) ? dedup_strings(v) : json_incref(v);
		user_set_k(u, key, true, arr);
		json_decref(arr);
		return;
	}
	json_t *t = truncated(v);
	user_set_k(u, key, true, t);
	json_decref(t);
}

#define FIELD_KINDS 64

/*
 * What the keys of the previous attribute object of the request were (by position):
 * their kind and interned key. The objects of one request mostly have the same keys
 * in the same order, so a string compare replaces two hash lookups per key.
 */
struct keyslot {
	const char *key; /* the previous object's key (the parsed body outlives the request) */
	enum fkind kind;
	const char *ikey; /* store_intern(key), NULL until needed */
};

/* Validate and apply one attribute object. Returns the error type, or NULL. */
static const char *track_attribute(json_t *obj, struct track_ctx *tc, struct keyslot *slots)
{
	struct store *st = &sim.store;
	const char *key, *err;
	json_t *v;

	if (!json_is_object(obj))
		return "BAD_ATTRIBUTE_OBJECT";
	json_t *ext = json_object_get(obj, "external_id");
	json_t *alias = json_object_get(obj, "user_alias");
	json_t *bid = json_object_get(obj, "braze_id");
	if (json_is_null(ext))
		ext = NULL;
	if (json_is_null(alias))
		alias = NULL;
	if (json_is_null(bid))
		bid = NULL;
	int nprimary = !!ext + !!alias + !!bid;
	if (nprimary > 1)
		return "only one of 'external_id', 'braze_id' or 'user_alias' may be provided";
	if (ext) {
		if (!json_is_string(ext) || !json_string_length(ext))
			return MSG_REQUIRED;
		if (json_string_length(ext) > SIM_MAX_EXTERNAL_ID)
			return "EXTERNAL_USER_ID_TOO_LARGE";
		if (is_blocklisted(json_string_value(ext)))
			return "BLACKLISTED_EXTERNAL_USER_ID";
		if ((err = row_error_for(json_string_value(ext))))
			return err;
	}
	if (alias && (!json_is_string(json_object_get(alias, "alias_name")) ||
		      !json_is_string(json_object_get(alias, "alias_label"))))
		return "BAD_USER_ALIAS";
	if (bid && !json_is_string(bid))
		return MSG_REQUIRED;
	json_t *email = json_object_get(obj, "email"), *phone = json_object_get(obj, "phone");
	if (!nprimary && !json_is_string(email) && !json_is_string(phone))
		return MSG_REQUIRED;
	/* the kind of each key, looked up once (keys beyond FIELD_KINDS are looked up again) */
	size_t nk = 0;
	json_object_foreach(obj, key, v) {
		struct keyslot *ks = nk < FIELD_KINDS ? &slots[nk] : NULL;
		enum fkind k;
		if (ks && ks->key && !strcmp(ks->key, key)) {
			k = ks->kind;
			ks->key = key;
		} else {
			k = field_kind(key);
			if (ks)
				*ks = (struct keyslot){ key, k, NULL };
		}
		nk++;
		if ((err = check_field(key, k, v)))
			return err;
	}

	json_t *flag = json_object_get(obj, "_update_existing_only");
	bool update_only = flag ? json_is_true(flag) : alias != NULL;
	bool merge = json_is_true(json_object_get(obj, "_merge_objects"));
	struct user *u = NULL;
	if (ext)
		u = store_find_ext(st, json_string_value(ext));
	else if (alias)
		u = store_find_alias(st, json_string_value(json_object_get(alias, "alias_name")),
				     json_string_value(json_object_get(alias, "alias_label")));
	else if (bid)
		u = store_find_braze(st, json_string_value(bid));
	else if (json_is_string(email))
		u = store_find_by(st, "email", json_string_value(email));
	else
		u = store_find_by(st, "phone", json_string_value(phone));
	if (!u) {
		if (update_only || bid)
			return NULL; /* skipped silently, still "processed" */
		u = store_create(st, ext ? json_string_value(ext) : NULL);
		if (alias)
			store_add_alias(st, u, json_string_value(json_object_get(alias, "alias_name")),
					json_string_value(json_object_get(alias, "alias_label")));
		user_reserve(u, (uint32_t)json_object_size(obj)); /* a known user mostly has its keys */
	}
	nk = 0;
	json_object_foreach(obj, key, v) {
		const char *ik = NULL;
		if (nk < FIELD_KINDS)
			apply_field(u, key, slots[nk].kind, &slots[nk].ikey, v, merge, tc);
		else
			apply_field(u, key, field_kind(key), &ik, v, merge, tc);
		nk++;
	}
	store_touch(st, u);
	return NULL;
}

static bool has_identifier(json_t *o)
{
	return json_is_string(json_object_get(o, "external_id")) || json_is_object(json_object_get(o, "user_alias")) ||
	       json_is_string(json_object_get(o, "braze_id")) || json_is_string(json_object_get(o, "email")) ||
	       json_is_string(json_object_get(o, "phone"));
}

static bool request_nested_invalid(json_t *attrs)
{
	size_t i;
	json_t *obj, *v;
	const char *key;
	json_array_foreach(attrs, i, obj) {
		if (!json_is_object(obj))
			continue;
		json_object_foreach(obj, key, v)
			if (json_is_object(v) && field_kind(key) == F_CUSTOM && object_op(v) == OP_NONE &&
			    !nested_valid(v, 0))
				return true;
	}
	return false;
}

void ep_track(struct call *c)
{
	json_t *b = c->body;
	if (!json_is_object(b)) {
		reply(c, 400, MSG_VALID_DATA);
		return;
	}
	json_t *arrs[3] = { json_object_get(b, "attributes"), json_object_get(b, "events"),
			    json_object_get(b, "purchases") };
	static const char *const names[3] = { "attributes", "events", "purchases" };
	size_t n[3], total = 0, maxn = 0;
	for (int k = 0; k < 3; k++) {
		if (arrs[k] && !json_is_array(arrs[k])) {
			reply(c, 400, MSG_VALID_DATA);
			return;
		}
		n[k] = json_array_size(arrs[k]);
		total += n[k];
		maxn = n[k] > maxn ? n[k] : maxn;
	}
	sim.stats.track_requests++;
	sim.stats.track_objects_sum += total;
	if (total > sim.stats.track_objects_max)
		sim.stats.track_objects_max = total;
	if ((sim.track_cap == CAP_PER_ARRAY_75 && maxn > 75) || (sim.track_cap == CAP_TOTAL_75 && total > 75) ||
	    (sim.track_cap == CAP_TOTAL_50 && total > 50)) {
		reply(c, 400, "Max Input Length Exceeded");
		return;
	}

	struct track_ctx tc = { .errors = json_array() };
	struct keyslot slots[FIELD_KINDS] = { { 0 } };
	size_t ok[3] = { 0, 0, 0 };
	size_t i;
	json_t *o;
	json_array_foreach(arrs[0], i, o) {
		json_t *id = json_object_get(o, "external_id");
		if (json_is_string(id))
			store_prefetch_ext(&sim.store, json_string_value(id));
	}
	tc.drop_nested = arrs[0] && request_nested_invalid(arrs[0]);
	json_array_foreach(arrs[0], i, o) {
		const char *err = track_attribute(o, &tc, slots);
		if (err)
			add_error(tc.errors, err, "attributes", i);
		else
			ok[0]++;
	}
	for (int k = 1; k < 3; k++) {
		json_array_foreach(arrs[k], i, o) {
			bool valid = json_is_object(o) && has_identifier(o) && json_is_string(json_object_get(o, "time"));
			if (k == 1)
				valid = valid && json_is_string(json_object_get(o, "name"));
			else
				valid = valid && json_is_string(json_object_get(o, "product_id")) &&
					json_is_string(json_object_get(o, "currency")) &&
					json_is_number(json_object_get(o, "price"));
			if (valid)
				ok[k]++;
			else
				add_error(tc.errors, k == 1 ? "BAD_EVENT" : "BAD_PURCHASE", names[k], i);
		}
	}
	sim.stats.attributes += ok[0];
	sim.stats.events += ok[1];
	sim.stats.purchases += ok[2];
	sim.stats.data_points += tc.data_points + ok[1] + ok[2];

	if (ok[0] + ok[1] + ok[2] == 0) {
		c->status = 400;
		c->resp = json_pack("{s:s}", "message", MSG_VALID_DATA);
	} else {
		c->status = 201;
		c->resp = json_pack("{s:s}", "message", "success");
		for (int k = 0; k < 3; k++) {
			char field[32];
			snprintf(field, sizeof(field), "%s_processed", names[k]);
			if (arrs[k])
				json_object_set_new(c->resp, field, json_integer((json_int_t)ok[k]));
		}
	}
	if (json_array_size(tc.errors))
		json_object_set_new(c->resp, "errors", tc.errors);
	else
		json_decref(tc.errors);
}

/* ---- /users/delete ---- */

/* Apply Braze's prioritization to the users sharing an email/phone; NULL if ambiguous. */
static struct user *prioritized(const char *field, const char *value, json_t *prio)
{
	size_t n, i, keep = 0;
	json_t *p;
	struct user **all = store_find_all_by(&sim.store, field, value, &n), *res = NULL;
	json_array_foreach(prio, i, p) {
		const char *s = json_string_value(p);
		if (!s)
			continue;
		keep = 0;
		for (size_t k = 0; k < n; k++) {
			bool identified = all[k]->external_id != NULL;
			if (!strcmp(s, "identified") ? identified : !strcmp(s, "unidentified") ? !identified : true)
				all[keep++] = all[k];
		}
		n = keep;
		if (!strcmp(s, "most_recently_updated") && n > 1) {
			size_t best = 0;
			for (size_t k = 1; k < n; k++)
				if (all[k]->updated_seq > all[best]->updated_seq)
					best = k;
			all[0] = all[best];
			n = 1;
		}
	}
	if (n == 1)
		res = all[0];
	free(all);
	return res;
}

static bool str_array(json_t *v)
{
	return !v || (json_is_array(v) && all_strings(v));
}

void ep_delete(struct call *c)
{
	json_t *b = c->body, *x;
	size_t i;
	if (!json_is_object(b)) {
		reply(c, 400, "Bad syntax");
		return;
	}
	json_t *ext = json_object_get(b, "external_ids"), *bids = json_object_get(b, "braze_ids");
	json_t *aliases = json_object_get(b, "user_aliases"), *emails = json_object_get(b, "email_addresses");
	json_t *phones = json_object_get(b, "phone_numbers");
	if (!str_array(ext) || !str_array(bids) || (aliases && !json_is_array(aliases)) ||
	    (emails && !json_is_array(emails)) || (phones && !json_is_array(phones))) {
		reply(c, 400, "external_ids and braze_ids must be arrays of strings");
		return;
	}
	size_t total = json_array_size(ext) + json_array_size(bids) + json_array_size(aliases) +
		       json_array_size(emails) + json_array_size(phones);
	if (total > SIM_MAX_IDS) {
		reply(c, 400, MSG_TOO_MANY_DELETE);
		return;
	}
	if (!total) {
		reply(c, 400, "No external_ids, user_aliases, braze_ids, email_addresses or phone_numbers provided");
		return;
	}
	struct user *u;
	json_array_foreach(ext, i, x)
		if ((u = store_find_ext(&sim.store, json_string_value(x))))
			store_delete(&sim.store, u);
	json_array_foreach(bids, i, x)
		if ((u = store_find_braze(&sim.store, json_string_value(x))))
			store_delete(&sim.store, u);
	json_array_foreach(aliases, i, x) {
		json_t *nm = json_object_get(x, "alias_name"), *lb = json_object_get(x, "alias_label");
		if (json_is_string(nm) && json_is_string(lb) &&
		    (u = store_find_alias(&sim.store, json_string_value(nm), json_string_value(lb))))
			store_delete(&sim.store, u);
	}
	json_array_foreach(emails, i, x)
		if (json_is_string(json_object_get(x, "email")) &&
		    (u = prioritized("email", json_string_value(json_object_get(x, "email")),
				     json_object_get(x, "prioritization"))))
			store_delete(&sim.store, u);
	json_array_foreach(phones, i, x)
		if (json_is_string(json_object_get(x, "phone")) &&
		    (u = prioritized("phone", json_string_value(json_object_get(x, "phone")),
				     json_object_get(x, "prioritization"))))
			store_delete(&sim.store, u);
	c->status = 201;
	c->resp = json_pack("{s:I,s:s}", "deleted", (json_int_t)total, "message", "success");
}

/* ---- /users/export/ids ---- */

static const char *const export_fields[] = {
	"apps", "attributed_campaign", "attributed_source", "attributed_adgroup", "attributed_ad",
	"braze_id", "country", "created_at", "custom_attributes", "custom_events", "devices", "dob",
	"email", "email_subscribe", "external_id", "first_name", "gender", "home_city", "language",
	"last_coordinates", "last_name", "phone", "purchases", "push_subscribe", "push_tokens",
	"random_bucket", "time_zone", "total_revenue", "uninstalled_at", "user_aliases",
	"cards_clicked", "campaigns_received", "canvases_received", "push_opted_in_at",
	"email_opted_in_at", "email_unsubscribed_at", "push_unsubscribed_at",
	"date_of_first_session", "date_of_last_session", "marked_email_as_spam_at",
	"email_open_tracking_disabled", "email_click_tracking_disabled", "image_url", "bio",
};

static bool valid_export_field(const char *s)
{
	for (size_t i = 0; i < sizeof(export_fields) / sizeof(export_fields[0]); i++)
		if (!strcmp(export_fields[i], s))
			return true;
	return false;
}

static void export_add(json_t *users, json_t *seen, struct user *u, json_t *fields)
{
	if (json_object_get(seen, u->braze_id))
		return;
	json_object_set_new(seen, u->braze_id, json_true());
	json_array_append_new(users, user_to_json(u, fields, false, !sim.dob_date_only));
}

void ep_export_ids(struct call *c)
{
	json_t *b = c->body, *x;
	size_t i;
	if (!json_is_object(b)) {
		reply(c, 400, "Bad syntax");
		return;
	}
	json_t *ext = json_object_get(b, "external_ids"), *aliases = json_object_get(b, "user_aliases");
	json_t *fields = json_object_get(b, "fields_to_export");
	json_t *bid = json_object_get(b, "braze_id"), *email = json_object_get(b, "email_address");
	json_t *phone = json_object_get(b, "phone"), *device = json_object_get(b, "device_id");
	if (!str_array(ext) || (aliases && !json_is_array(aliases))) {
		reply(c, 400, "external_ids must be an array of strings");
		return;
	}
	if (json_array_size(ext) + json_array_size(aliases) > SIM_MAX_IDS) {
		reply(c, 400, MSG_TOO_MANY_IDS);
		return;
	}
	if (!ext && !aliases && !bid && !email && !phone && !device) {
		reply(c, 400, "one of external_ids, user_aliases, braze_id, email_address, phone or device_id is required");
		return;
	}
	if (!fields && sim.require_fields) {
		reply(c, 400, "fields_to_export is required");
		return;
	}
	if (fields) {
		if (!json_is_array(fields) || !all_strings(fields)) {
			reply(c, 400, "fields_to_export must be an array of strings");
			return;
		}
		json_array_foreach(fields, i, x) {
			if (!valid_export_field(json_string_value(x))) {
				c->status = 400;
				c->resp = json_pack("{s:s+}", "message", "Invalid field in fields_to_export: ",
						    json_string_value(x));
				return;
			}
		}
	}
	json_t *users = json_array(), *invalid = json_array(), *seen = json_object();
	struct user *u;
	json_array_foreach(ext, i, x) {
		if ((u = store_find_ext(&sim.store, json_string_value(x))))
			export_add(users, seen, u, fields);
		else
			json_array_append(invalid, x);
	}
	json_array_foreach(aliases, i, x) {
		json_t *nm = json_object_get(x, "alias_name"), *lb = json_object_get(x, "alias_label");
		if (json_is_string(nm) && json_is_string(lb) &&
		    (u = store_find_alias(&sim.store, json_string_value(nm), json_string_value(lb))))
			export_add(users, seen, u, fields);
	}
	if (json_is_string(bid)) {
		if ((u = store_find_braze(&sim.store, json_string_value(bid))))
			export_add(users, seen, u, fields);
		else
			json_array_append(invalid, bid);
	}
	for (int k = 0; k < 2; k++) {
		json_t *v = k ? phone : email;
		size_t n;
		if (!json_is_string(v))
			continue;
		struct user **all = store_find_all_by(&sim.store, k ? "phone" : "email", json_string_value(v), &n);
		for (size_t j = 0; j < n; j++)
			export_add(users, seen, all[j], fields);
		free(all);
	}
	json_decref(seen);
	c->status = 201;
	c->resp = json_pack("{s:o}", "users", users);
	if (json_array_size(invalid))
		json_object_set_new(c->resp, "invalid_user_ids", invalid);
	else
		json_decref(invalid);
	json_object_set_new(c->resp, "message", json_string("success"));
}

/* ---- subscription groups ---- */

/* A string or an array of strings (<= 50) as an array; NULL with *bad when invalid. */
static json_t *id_list(json_t *v, bool *bad)
{
	if (!v)
		return NULL;
	if (json_is_string(v))
		return json_pack("[O]", v);
	if (json_is_array(v) && all_strings(v) && json_array_size(v) <= SIM_MAX_IDS)
		return json_incref(v);
	*bad = true;
	return NULL;
}

struct sub_entry {
	const char *group;
	bool subscribed;
	json_t *ext, *emails, *phones; /* owned */
};

static const char *sub_entry_parse(json_t *o, bool v2, struct sub_entry *e)
{
	bool bad = false;
	memset(e, 0, sizeof(*e));
	json_t *id = json_object_get(o, "subscription_group_id"), *st = json_object_get(o, "subscription_state");
	if (!json_is_string(id) || !known_group(json_string_value(id)))
		return "Invalid subscription group id";
	if (!json_is_string(st) || (strcmp(json_string_value(st), "subscribed") &&
				    strcmp(json_string_value(st), "unsubscribed")))
		return "subscription_state must be 'subscribed' or 'unsubscribed'";
	e->group = json_string_value(id);
	e->subscribed = !strcmp(json_string_value(st), "subscribed");
	e->ext = id_list(json_object_get(o, v2 ? "external_ids" : "external_id"), &bad);
	e->emails = id_list(json_object_get(o, v2 ? "emails" : "email"), &bad);
	e->phones = id_list(json_object_get(o, v2 ? "phones" : "phone"), &bad);
	if (bad)
		return MSG_TOO_MANY_IDS;
	if (e->emails && e->phones)
		return "Either an email address or a phone number should be provided, but not both.";
	if (!e->ext && !e->emails && !e->phones)
		return "external_id, email or phone must be provided";
	return NULL;
}

static void sub_entry_release(struct sub_entry *e)
{
	json_decref(e->ext);
	json_decref(e->emails);
	json_decref(e->phones);
}

static void sub_entry_apply(struct sub_entry *e)
{
	size_t i, n;
	json_t *x;
	struct user *u;
	json_array_foreach(e->ext, i, x)
		if ((u = store_find_ext(&sim.store, json_string_value(x))))
			user_set_group(u, e->group, e->subscribed);
	for (int k = 0; k < 2; k++) {
		json_array_foreach(k ? e->phones : e->emails, i, x) {
			struct user **all = store_find_all_by(&sim.store, k ? "phone" : "email", json_string_value(x), &n);
			for (size_t j = 0; j < n; j++)
				user_set_group(all[j], e->group, e->subscribed);
			free(all);
		}
	}
}

void ep_sub_set(struct call *c)
{
	struct sub_entry e;
	if (!json_is_object(c->body)) {
		reply(c, 400, "Bad syntax");
		return;
	}
	const char *err = sub_entry_parse(c->body, false, &e);
	if (err)
		reply(c, 400, err);
	else {
		sub_entry_apply(&e);
		reply(c, 201, "success");
	}
	sub_entry_release(&e);
}

void ep_sub_set_v2(struct call *c)
{
	json_t *groups = json_object_get(c->body, "subscription_groups"), *x;
	size_t i, n = json_array_size(groups);
	if (!json_is_array(groups) || !n) {
		reply(c, 400, "subscription_groups must be a non-empty array");
		return;
	}
	if ((long)n > sim.v2_max_entries) {
		reply(c, 400, "Too many subscription_groups entries");
		return;
	}
	struct sub_entry *es = xcalloc(n, sizeof(*es));
	const char *err = NULL;
	json_array_foreach(groups, i, x) {
		if (!err && !json_is_object(x))
			err = "Bad syntax";
		else if (!err)
			err = sub_entry_parse(x, true, &es[i]);
	}
	if (!err)
		for (i = 0; i < n; i++)
			sub_entry_apply(&es[i]);
	for (i = 0; i < n; i++)
		sub_entry_release(&es[i]);
	free(es);
	reply(c, err ? 400 : 201, err ? err : "success");
}

static json_t *query_list(json_t *q, const char *name)
{
	json_t *v = json_object_get(q, name);
	return v ? v : json_array();
}

static const char *group_status_word(int s)
{
	return s < 0 ? "Unknown" : s ? "Subscribed" : "Unsubscribed";
}

void ep_sub_get(struct call *c)
{
	json_t *gid = json_array_get(json_object_get(c->query, "subscription_group_id"), 0), *x;
	size_t i;
	if (!json_is_string(gid) || !known_group(json_string_value(gid))) {
		reply(c, 400, "Invalid subscription group id");
		return;
	}
	const char *g = json_string_value(gid);
	json_t *ext = json_object_get(c->query, "external_id"), *email = json_object_get(c->query, "email");
	json_t *phone = json_object_get(c->query, "phone");
	if (!ext && !email && !phone) {
		reply(c, 400, "external_id, email or phone must be provided");
		return;
	}
	if (json_array_size(ext) > SIM_MAX_IDS || json_array_size(email) > SIM_MAX_IDS ||
	    json_array_size(phone) > SIM_MAX_IDS) {
		reply(c, 400, MSG_TOO_MANY_IDS);
		return;
	}
	json_t *status = json_object();
	json_array_foreach(ext, i, x) {
		struct user *u = store_find_ext(&sim.store, json_string_value(x));
		json_object_set_new(status, json_string_value(x),
				    json_string(group_status_word(u ? user_group_state(u, g) : -1)));
	}
	for (int k = 0; k < 2; k++) {
		json_array_foreach(k ? phone : email, i, x) {
			struct user *u = store_find_by(&sim.store, k ? "phone" : "email", json_string_value(x));
			json_object_set_new(status, json_string_value(x),
					    json_string(group_status_word(u ? user_group_state(u, g) : -1)));
		}
	}
	c->status = 200;
	c->resp = json_pack("{s:o,s:s}", "status", status, "message", "success");
}

static json_t *user_status_json(struct user *u)
{
	json_t *o = json_object(), *groups = json_array();
	struct attr *a;
	if ((a = user_attr(u, "email")) && a->type == V_STR)
		json_object_set_new(o, "email", json_string(a->u.s));
	if ((a = user_attr(u, "phone")) && a->type == V_STR)
		json_object_set_new(o, "phone", json_string(a->u.s));
	if (u->external_id)
		json_object_set_new(o, "external_id", json_string(u->external_id));
	for (uint32_t i = 0; i < u->n_groups; i++) {
		json_t *reg = sim.groups ? json_object_get(sim.groups, u->groups[i].id) : NULL;
		json_t *ch = json_object_get(reg, "channel"), *nm = json_object_get(reg, "name");
		json_array_append_new(groups, json_pack("{s:s,s:s,s:s,s:s}", "id", u->groups[i].id, "name",
							nm ? json_string_value(nm) : "", "channel",
							ch ? json_string_value(ch) : "email", "status",
							group_status_word(u->groups[i].subscribed)));
	}
	json_object_set_new(o, "subscription_groups", groups);
	return o;
}

void ep_sub_user_status(struct call *c)
{
	json_t *ext = query_list(c->query, "external_id"), *email = query_list(c->query, "email");
	json_t *phone = query_list(c->query, "phone"), *x;
	json_t *lim = json_array_get(json_object_get(c->query, "limit"), 0);
	json_t *off = json_array_get(json_object_get(c->query, "offset"), 0);
	long limit = lim ? strtol(json_string_value(lim), NULL, 10) : 100;
	long offset = off ? strtol(json_string_value(off), NULL, 10) : 0;
	size_t i;
	if (limit <= 0 || limit > 100)
		limit = 100;
	if (offset < 0)
		offset = 0;
	if (!json_array_size(ext) && !json_array_size(email) && !json_array_size(phone)) {
		reply(c, 400, "external_id, email or phone must be provided");
		goto out;
	}
	if (json_array_size(ext) > SIM_MAX_IDS || json_array_size(email) > SIM_MAX_IDS ||
	    json_array_size(phone) > SIM_MAX_IDS) {
		reply(c, 400, MSG_TOO_MANY_IDS);
		goto out;
	}
	json_t *users = json_array();
	long found = 0;
	for (int k = 0; k < 3; k++) {
		json_array_foreach(k == 0 ? ext : k == 1 ? email : phone, i, x) {
			const char *s = json_string_value(x);
			struct user *u = k == 0 ? store_find_ext(&sim.store, s)
					: store_find_by(&sim.store, k == 1 ? "email" : "phone", s);
			if (!u)
				continue;
			if (found >= offset && found < offset + limit)
				json_array_append_new(users, user_status_json(u));
			found++;
		}
	}
	c->status = 200;
	c->resp = json_pack("{s:o,s:I,s:s}", "users", users, "total_count", (json_int_t)found, "message", "success");
out:
	if (!json_object_get(c->query, "external_id"))
		json_decref(ext);
	if (!json_object_get(c->query, "email"))
		json_decref(email);
	if (!json_object_get(c->query, "phone"))
		json_decref(phone);
}

/* ---- external id rename / remove ---- */

void ep_rename(struct call *c)
{
	json_t *list = json_object_get(c->body, "external_id_renames"), *x;
	size_t i;
	if (!json_is_array(list) || !json_array_size(list)) {
		reply(c, 400, "external_id_renames must be a non-empty array");
		return;
	}
	if (json_array_size(list) > SIM_MAX_IDS) {
		reply(c, 400, "The max number of external_id_renames per request was exceeded");
		return;
	}
	json_t *done = json_array(), *errors = json_array();
	json_array_foreach(list, i, x) {
		json_t *cur = json_object_get(x, "current_external_id"), *nw = json_object_get(x, "new_external_id");
		const char *err = NULL;
		struct user *u = NULL;
		if (!json_is_string(cur) || !json_is_string(nw) || !json_string_length(nw))
			err = "current_external_id and new_external_id must be strings";
		else if (!strcmp(json_string_value(cur), json_string_value(nw)))
			err = "current_external_id and new_external_id must be different";
		else if (!(u = store_find_ext(&sim.store, json_string_value(cur))) ||
			 strcmp(u->external_id ? u->external_id : "", json_string_value(cur)))
			err = "current_external_id does not exist or is not a primary external_id";
		else if (store_find_ext(&sim.store, json_string_value(nw)))
			err = "new_external_id is already in use";
		else if (json_string_length(nw) > SIM_MAX_EXTERNAL_ID)
			err = "new_external_id is too large";
		if (err) {
			json_array_append_new(errors, json_pack("[Is]", (json_int_t)i, err));
			continue;
		}
		store_rename(&sim.store, u, json_string_value(nw));
		json_array_append(done, cur);
	}
	c->status = 201;
	c->resp = json_pack("{s:s,s:o,s:o}", "message", "success", "external_ids", done, "rename_errors", errors);
}

void ep_remove(struct call *c)
{
	json_t *list = json_object_get(c->body, "external_ids"), *x;
	size_t i;
	if (!json_is_array(list) || !json_array_size(list) || !all_strings(list)) {
		reply(c, 400, "external_ids must be a non-empty array of strings");
		return;
	}
	if (json_array_size(list) > SIM_MAX_IDS) {
		reply(c, 400, MSG_TOO_MANY_IDS);
		return;
	}
	json_t *done = json_array(), *errors = json_array();
	json_array_foreach(list, i, x) {
		if (store_remove_deprecated(&sim.store, json_string_value(x)))
			json_array_append(done, x);
		else
			json_array_append_new(errors, json_pack("[Is]", (json_int_t)i,
								"external_id is not a deprecated external_id"));
	}
	c->status = 201;
	c->resp = json_pack("{s:s,s:o,s:o}", "message", "success", "removed_ids", done, "removal_errors", errors);
}

/* ---- identify, alias, merge ---- */

/* Fold an anonymous profile into the one with external id ext (or stamp ext on it). */
static void identify_into(struct user *anon, const char *ext)
{
	if (!anon || anon->external_id)
		return;
	struct user *target = store_find_ext(&sim.store, ext);
	if (!target) {
		store_rename(&sim.store, anon, ext);
		return;
	}
	for (uint32_t i = 0; i < anon->n_aliases; i++)
		for (uint32_t k = 0; k < target->n_aliases; k++)
			if (!strcmp(anon->aliases[i].label, target->aliases[k].label))
				return; /* the identified profile already has an alias with that label */
	store_merge(&sim.store, target, anon);
}

static struct user *anonymous_by(const char *field, const char *value, json_t *prio)
{
	size_t n;
	struct user **all = store_find_all_by(&sim.store, field, value, &n), *best = NULL;
	(void)prio;
	for (size_t i = 0; i < n; i++)
		if (!all[i]->external_id && (!best || all[i]->updated_seq > best->updated_seq))
			best = all[i];
	free(all);
	return best;
}

void ep_identify(struct call *c)
{
	json_t *al = json_object_get(c->body, "aliases_to_identify");
	json_t *em = json_object_get(c->body, "emails_to_identify");
	json_t *ph = json_object_get(c->body, "phone_numbers_to_identify"), *x;
	size_t i, total = json_array_size(al) + json_array_size(em) + json_array_size(ph);
	if (!total) {
		reply(c, 400, "aliases_to_identify, emails_to_identify or phone_numbers_to_identify must be provided");
		return;
	}
	if (total > SIM_MAX_IDS) {
		reply(c, 400, "The max number of aliases per request was exceeded");
		return;
	}
	json_array_foreach(al, i, x) {
		json_t *ext = json_object_get(x, "external_id"), *ua = json_object_get(x, "user_alias");
		json_t *nm = json_object_get(ua, "alias_name"), *lb = json_object_get(ua, "alias_label");
		if (json_is_string(ext) && json_is_string(nm) && json_is_string(lb))
			identify_into(store_find_alias(&sim.store, json_string_value(nm), json_string_value(lb)),
				      json_string_value(ext));
	}
	for (int k = 0; k < 2; k++) {
		json_array_foreach(k ? ph : em, i, x) {
			json_t *ext = json_object_get(x, "external_id"), *v = json_object_get(x, k ? "phone" : "email");
			if (json_is_string(ext) && json_is_string(v))
				identify_into(anonymous_by(k ? "phone" : "email", json_string_value(v),
							   json_object_get(x, "prioritization")),
					      json_string_value(ext));
		}
	}
	c->status = 201;
	c->resp = json_pack("{s:I,s:s}", "aliases_processed", (json_int_t)total, "message", "success");
}

void ep_alias_new(struct call *c)
{
	json_t *list = json_object_get(c->body, "user_aliases"), *x;
	size_t i;
	if (!json_is_array(list) || !json_array_size(list)) {
		reply(c, 400, "user_aliases must be a non-empty array");
		return;
	}
	if (json_array_size(list) > SIM_MAX_IDS) {
		reply(c, 400, "The max number of aliases per request was exceeded");
		return;
	}
	json_array_foreach(list, i, x) {
		json_t *nm = json_object_get(x, "alias_name"), *lb = json_object_get(x, "alias_label");
		json_t *ext = json_object_get(x, "external_id");
		if (!json_is_string(nm) || !json_is_string(lb))
			continue;
		struct user *owner = store_find_alias(&sim.store, json_string_value(nm), json_string_value(lb));
		if (json_is_string(ext)) {
			struct user *u = store_find_ext(&sim.store, json_string_value(ext));
			if (u && (!owner || owner == u))
				store_add_alias(&sim.store, u, json_string_value(nm), json_string_value(lb));
		} else if (!owner) {
			struct user *u = store_create(&sim.store, NULL);
			store_add_alias(&sim.store, u, json_string_value(nm), json_string_value(lb));
		}
	}
	c->status = 201;
	c->resp = json_pack("{s:I,s:s}", "aliases_processed", (json_int_t)json_array_size(list), "message", "success");
}

static struct user *resolve_identifier(json_t *id)
{
	json_t *ext = json_object_get(id, "external_id"), *ua = json_object_get(id, "user_alias");
	json_t *bid = json_object_get(id, "braze_id");
	if (json_is_string(ext))
		return store_find_ext(&sim.store, json_string_value(ext));
	if (json_is_string(bid))
		return store_find_braze(&sim.store, json_string_value(bid));
	if (json_is_string(json_object_get(ua, "alias_name")) && json_is_string(json_object_get(ua, "alias_label")))
		return store_find_alias(&sim.store, json_string_value(json_object_get(ua, "alias_name")),
					json_string_value(json_object_get(ua, "alias_label")));
	if (json_is_string(json_object_get(id, "email")))
		return store_find_by(&sim.store, "email", json_string_value(json_object_get(id, "email")));
	return NULL;
}

void ep_merge(struct call *c)
{
	json_t *list = json_object_get(c->body, "merge_updates"), *x;
	size_t i;
	if (!json_is_array(list) || !json_array_size(list)) {
		reply(c, 400, "merge_updates must be a non-empty array");
		return;
	}
	if (json_array_size(list) > SIM_MAX_IDS) {
		reply(c, 400, "The max number of merge_updates per request was exceeded");
		return;
	}
	json_array_foreach(list, i, x) {
		struct user *from = resolve_identifier(json_object_get(x, "identifier_to_merge"));
		struct user *keep = resolve_identifier(json_object_get(x, "identifier_to_keep"));
		if (from && keep && from != keep)
			store_merge(&sim.store, keep, from);
	}
	reply(c, 202, "success");
}

void ep_campaigns(struct call *c)
{
	c->status = 200;
	c->resp = json_pack("{s:[],s:s}", "campaigns", "message", "success");
}

/* ---- seeding and dumping (control API, state file) ---- */

static int64_t parse_iso_ms(const char *s)
{
	struct tm tm;
	int ms = 0;
	memset(&tm, 0, sizeof(tm));
	if (!s || sscanf(s, "%d-%d-%dT%d:%d:%d.%dZ", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
			 &tm.tm_min, &tm.tm_sec, &ms) < 3)
		return -1;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	return (int64_t)timegm(&tm) * 1000 + ms;
}

long sim_load_users(const json_t *users, const char **err)
{
	struct store *st = &sim.store;
	struct track_ctx tc = { 0 };
	size_t i, j;
	json_t *o, *v, *x;
	const char *key;
	long n = 0;

	if (!json_is_array(users)) {
		*err = "\"users\" must be an array";
		return -1;
	}
	json_array_foreach(users, i, o) {
		json_t *ext = json_object_get(o, "external_id"), *bid = json_object_get(o, "braze_id");
		if (!json_is_object(o) || (ext && !json_is_string(ext))) {
			*err = "each user must be an object with a string external_id";
			return -1;
		}
		struct user *u = ext ? store_find_ext(st, json_string_value(ext)) : NULL;
		if (!u && json_is_string(bid))
			u = store_find_braze(st, json_string_value(bid));
		if (!u) {
			u = store_create(st, ext ? json_string_value(ext) : NULL);
			if (json_is_string(bid) && json_string_length(bid) < sizeof(u->braze_id)) {
				smap_del(&st->by_braze, u->braze_id);
				snprintf(u->braze_id, sizeof(u->braze_id), "%s", json_string_value(bid));
				smap_put(&st->by_braze, u->braze_id, u);
			}
		}
		int64_t created = parse_iso_ms(json_string_value(json_object_get(o, "created_at")));
		if (created >= 0)
			u->created_ms = created;
		if (json_is_integer(json_object_get(o, "random_bucket")))
			u->random_bucket = (uint16_t)json_integer_value(json_object_get(o, "random_bucket"));
		json_array_foreach(json_object_get(o, "user_aliases"), j, x) {
			json_t *nm = json_object_get(x, "alias_name"), *lb = json_object_get(x, "alias_label");
			if (json_is_string(nm) && json_is_string(lb))
				store_add_alias(st, u, json_string_value(nm), json_string_value(lb));
		}
		json_array_foreach(json_object_get(o, "deprecated_external_ids"), j, x) {
			if (!json_is_string(x) || store_find_ext(st, json_string_value(x)))
				continue;
			u->old_ids = xrealloc(u->old_ids, (u->n_old + 1) * sizeof(char *));
			u->old_ids[u->n_old] = xstrdup(json_string_value(x));
			smap_put(&st->by_ext, u->old_ids[u->n_old], u);
			u->n_old++;
		}
		json_object_foreach(json_object_get(o, "custom_attributes"), key, v) {
			const char *ik = NULL;
			if (key[0] != '$')
				apply_field(u, key, field_kind(key), &ik, v, false, &tc);
		}
		json_object_foreach(o, key, v) {
			if (!strcmp(key, "custom_attributes") || !strcmp(key, "created_at") ||
			    !strcmp(key, "random_bucket") || !strcmp(key, "user_aliases") ||
			    !strcmp(key, "deprecated_external_ids") || key[0] == '$' || check_field(key, field_kind(key), v))
				continue;
			const char *ik = NULL;
			apply_field(u, key, field_kind(key), &ik, v, false, &tc);
		}
		n++;
	}
	return n;
}

json_t *sim_dump_users(void)
{
	size_t n;
	struct user **all = store_sorted(&sim.store, &n);
	json_t *arr = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(arr, user_to_json(all[i], NULL, true, false));
	free(all);
	return json_pack("{s:o,s:I}", "users", arr, "count", (json_int_t)n);
}
