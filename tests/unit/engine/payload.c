/* payload.c: tests for src/engine/payload.c (canonical payloads, field diffs). */
#include "support/testutil.h"

#include <stdlib.h>
#include <string.h>

#include "base/arena.h"
#include "config/config.h"
#include "engine/payload.h"
#include "engine/record.h"

static void test_build_sorted_with_conversions(void **s)
{
	struct cfg_property pk = { .id = "id", .type = PROP_INTEGER, .slot = 0 };
	struct cfg_property born = { .id = "born", .type = PROP_DATE, .slot = 1 };
	struct cfg_property age = { .id = "age", .type = PROP_INTEGER, .slot = 2 };
	struct cfg_group vip = { .id = "vip", .index = 0 }, churn = { .id = "churn", .index = 1 };
	struct cfg_mapping map[] = {
		{ .remote = "age_custom", .property = &age }, { .remote = "dob", .property = &born },
		{ .remote = "external_id", .property = &pk }, { .remote = "first_name", .property = &age },
	};
	struct cfg_group_map gm[] = { { .remote = "Churned", .group = &churn }, { .remote = "VIP", .group = &vip } };
	struct cfg_destination d = { .id = "d", .collection = COLL_MODEL, .mapping = map, .n_mapping = 4,
				     .group_maps = gm, .n_group_maps = 2 };
	struct value vals[] = { { .kind = VAL_INT, .u.i = 42 },
				{ .kind = VAL_DATE, .u.i = 344649600000LL /* 1980-12-03 */ },
				{ .kind = VAL_INT, .u.i = 7 } };
	bool groups[] = { true, false };
	struct record rec = { .key = { .is_int = true, .i = 42, .text = SLICE_LIT("42") }, .values = vals, .groups = groups };
	struct strbuf sb = STRBUF_INIT;

	struct payload_spec spec;
	assert_true(payload_in_scope(&d, &rec));
	payload_spec_init(&spec, &d);
	payload_build(&spec, &rec, &sb);
	payload_spec_release(&spec);
	assert_string_equal(sb.buf, "{\"attributes\":{\"age_custom\":7,\"dob\":\"1980-12-03\",\"external_id\":\"42\","
				    "\"first_name\":\"7\"},\"groups\":[\"VIP\"]}");
	d.collection = COLL_GROUP;
	d.group = &churn;
	assert_false(payload_in_scope(&d, &rec));
	d.collection = COLL_NONE;
	assert_false(payload_in_scope(&d, &rec));
	strbuf_release(&sb);
}

/*
 * A string sent to a Braze boolean field is read as a boolean property reads text:
 * "TRUE", " false ", "1", "0" were null before (only exactly "true"/"false" counted).
 */
static void test_bool_field_from_text(void **s)
{
	static const char *const in[] = { "true", "TRUE", "True", " false ", "0", "1", "yes", "", "  ", "2" };
	static const char *const want[] = { "true", "true", "true", "false", "false", "true", "null", "null", "null", "null" };
	struct cfg_property pk = { .id = "id", .type = PROP_STRING, .slot = 0 };
	struct cfg_property flag = { .id = "flag", .type = PROP_STRING, .slot = 1 };
	struct cfg_mapping map[] = { { .remote = "email_open_tracking_disabled", .property = &flag },
				     { .remote = "external_id", .property = &pk } };
	struct cfg_destination d = { .id = "d", .collection = COLL_MODEL, .mapping = map, .n_mapping = 2 };
	struct payload_spec spec;
	struct strbuf sb = STRBUF_INIT, exp = STRBUF_INIT;
	bool groups[] = { false };
	payload_spec_init(&spec, &d);
	for (size_t i = 0; i < sizeof(in) / sizeof(*in); i++) {
		struct value vals[] = { { .kind = VAL_STRING, .u.s = SLICE_LIT("k") },
					{ .kind = VAL_STRING, .u.s = slice_of(in[i]) } };
		struct record rec = { .key = { .text = SLICE_LIT("k") }, .values = vals, .groups = groups };
		strbuf_reset(&sb);
		strbuf_reset(&exp);
		payload_build(&spec, &rec, &sb);
		strbuf_addf(&exp, "{\"attributes\":{\"email_open_tracking_disabled\":%s,\"external_id\":\"k\"},\"groups\":[]}",
			    want[i]);
		assert_string_equal(sb.buf, exp.buf);
	}
	assert_int_equal(*spec.bad_bools, 2); /* "yes" and "2" are warned of; empty text is null */
	payload_spec_release(&spec);
	strbuf_release(&sb);
	strbuf_release(&exp);
}

static void test_diff_fields_and_groups(void **s)
{
	struct arena a;
	struct payload_diff d;
	struct jerror err = JERROR_INIT;
	arena_init(&a);

	const char *old = "{\"attributes\":{\"a\":1,\"b\":\"x\",\"external_id\":\"1\"},\"groups\":[\"G1\",\"G2\"]}";
	const char *new = "{\"attributes\":{\"a\":1,\"b\":null,\"c\":true,\"external_id\":\"1\"},\"groups\":[\"G2\",\"G3\"]}";
	assert_int_equal(payload_diff(slice_of(old), slice_of(new), &a, &d, &err), JERR_OK);
	assert_int_equal(d.n_changes, 2);
	assert_string_equal(d.changes[0].field, "b");
	assert_string_equal(d.changes[0].old_json, "\"x\"");
	assert_string_equal(d.changes[0].new_json, "null");
	assert_string_equal(d.changes[1].field, "c");
	assert_string_equal(d.changes[1].old_json, "null");
	assert_int_equal(d.n_added, 1);
	assert_string_equal(d.groups_added[0], "G3");
	assert_int_equal(d.n_removed, 1);
	assert_string_equal(d.groups_removed[0], "G1");

	/* first export: every field, nulls included (Braze may hold an old value) */
	assert_int_equal(payload_diff((struct slice){ 0 }, slice_of(new), &a, &d, &err), JERR_OK);
	assert_int_equal(d.n_changes, 4);
	assert_int_equal(d.n_new_fields, 3);
	assert_int_equal(d.n_added, 2);

	/* delete: nothing changes field-wise, every group is removed */
	assert_int_equal(payload_diff(slice_of(old), (struct slice){ 0 }, &a, &d, &err), JERR_OK);
	assert_int_equal(d.n_changes, 0);
	assert_int_equal(d.n_removed, 2);

	assert_int_equal(payload_diff(slice_of("{not json"), slice_of(new), &a, &d, &err), JERR_STATE);
	jerror_release(&err);
	arena_release(&a);
}

static void test_diff_escapes_and_full(void **s)
{
	struct arena a;
	struct payload_diff d;
	struct jerror err = JERROR_INIT;
	arena_init(&a);
	/* escaped and raw spellings of the same group name are the same group */
	const char *old = "{\"attributes\":{\"a\\\"q\":[1,\"x\"],\"external_id\":\"1\"},\"groups\":[\"Caf\\u00e9\",\"\\ud83d\\ude00\"]}";
	const char *new = "{\"attributes\":{\"a\\\"q\":[1,\"x\"],\"external_id\":\"1\"},\"groups\":[\"Caf\xc3\xa9\",\"\xf0\x9f\x98\x80\"]}";
	assert_int_equal(payload_diff(slice_of(old), slice_of(new), &a, &d, &err), JERR_OK);
	assert_int_equal(d.n_changes, 0);
	assert_int_equal(d.n_added, 0);
	assert_int_equal(d.n_removed, 0);
	/* full: every field and every group again */
	assert_int_equal(payload_diff_full(slice_of(old), slice_of(new), &a, &d, &err), JERR_OK);
	assert_int_equal(d.n_changes, 2);
	assert_string_equal(d.changes[0].field, "a\"q");
	assert_string_equal(d.changes[0].new_json, "[1,\"x\"]");
	assert_int_equal(d.n_added, 2);
	assert_string_equal(d.groups_added[0], "Caf\xc3\xa9");
	/* a payload not in canonical form (spaces, other key order) still compares by meaning */
	const char *loose = "{ \"groups\": [\"Caf\xc3\xa9\"], \"attributes\": {\"external_id\": \"1\", \"a\\\"q\": [1, \"x\"]} }";
	assert_int_equal(payload_diff(slice_of(loose), slice_of(new), &a, &d, &err), JERR_OK);
	assert_int_equal(d.n_changes, 0);
	assert_int_equal(d.n_added, 1);
	jerror_release(&err);
	arena_release(&a);
}

/*
 * A full re-send after a failed attempt: Braze may have applied the attempt (a timeout,
 * answer lost), so nulls are sent too, and the groups the attempt added (kept with the
 * failed row by payload_with_added_groups) are removed if the record has left them.
 * Both the fast scanner and the general path (the same payloads respelled).
 */
static void test_full_after_failed_attempt(void **s)
{
	struct arena a;
	struct payload_diff d;
	struct jerror err = JERROR_INIT;
	struct strbuf kept = STRBUF_INIT;
	arena_init(&a);
	const char *confirmed = "{\"attributes\":{\"external_id\":\"2\",\"score\":null,\"tier\":null},\"groups\":[\"A\"]}";
	const char *attempt = "{\"attributes\":{\"external_id\":\"2\",\"score\":5,\"tier\":\"gold\"},"
			      "\"groups\":[\"A\",\"Gold\",\"sg\\\"1\"]}";
	const char *now = "{\"attributes\":{\"external_id\":\"2\",\"score\":null,\"tier\":null},\"groups\":[\"A\"]}";

	assert_true(payload_with_added_groups(slice_of(confirmed), slice_of(attempt), &kept));
	assert_string_equal(kept.buf, "{\"attributes\":{\"external_id\":\"2\",\"score\":null,\"tier\":null},"
				      "\"groups\":[\"A\",\"Gold\",\"sg\\\"1\"]}");
	/* nothing added: nothing to keep; a placeholder (empty) or a foreign payload neither */
	assert_false(payload_with_added_groups(slice_of(confirmed), slice_of(now), &kept));
	assert_int_equal(kept.len, 0);
	assert_false(payload_with_added_groups((struct slice){ 0 }, slice_of(attempt), &kept));
	assert_false(payload_with_added_groups(slice_of("{\"v\":1}"), slice_of(attempt), &kept));
	/* into empty groups: no leading comma */
	assert_true(payload_with_added_groups(slice_of("{\"attributes\":{},\"groups\":[]}"), slice_of(attempt), &kept));
	assert_string_equal(kept.buf, "{\"attributes\":{},\"groups\":[\"A\",\"Gold\",\"sg\\\"1\"]}");

	/* the next run: back where it was confirmed, but Braze may hold the attempt */
	assert_true(payload_with_added_groups(slice_of(confirmed), slice_of(attempt), &kept));
	const char *spaced = "{ \"attributes\": {\"external_id\": \"2\", \"score\": null, \"tier\": null}, "
			     "\"groups\": [\"A\", \"Gold\", \"sg\\\"1\"] }";
	for (int pass = 0; pass < 2; pass++) {
		struct slice old = pass ? slice_of(spaced) : (struct slice){ kept.buf, kept.len };
		assert_int_equal(payload_diff_full(old, slice_of(now), &a, &d, &err), JERR_OK);
		assert_int_equal(d.n_changes, 3); /* external_id, and both nulls */
		assert_string_equal(d.changes[1].field, "score");
		assert_string_equal(d.changes[1].new_json, "null");
		assert_string_equal(d.changes[2].field, "tier");
		assert_string_equal(d.changes[2].new_json, "null");
		assert_int_equal(d.n_added, 1);
		assert_string_equal(d.groups_added[0], "A");
		assert_int_equal(d.n_removed, 2);
		assert_string_equal(d.groups_removed[0], "Gold");
		assert_string_equal(d.groups_removed[1], "sg\"1");
		/* an ordinary diff of the same payloads would send neither null */
		assert_int_equal(payload_diff(old, slice_of(now), &a, &d, &err), JERR_OK);
		assert_int_equal(d.n_changes, 0);
	}
	strbuf_release(&kept);
	jerror_release(&err);
	arena_release(&a);
}

/*
 * The fast scanner (canonical payloads) on what it shortcuts: strings copied whole when
 * they hold no escape, values skipped to the first quote not escaped by an odd run of
 * backslashes, and changes sorted only when the payload's keys are out of order. Each
 * case is checked against the same payload respelled with spaces, which only the
 * general (jansson) path reads.
 */
static void test_diff_fast_scanner(void **s)
{
	struct arena a;
	struct payload_diff d, g;
	struct jerror err = JERROR_INIT;
	arena_init(&a);
	/* values ending in an escaped backslash, holding escaped quotes, a quote after \\\" */
	const char *old = "{\"attributes\":{\"a\":\"x\\\\\",\"b\":\"q\\\"\",\"c\":[\"\\\\\\\"]\",1],\"external_id\":\"1\"},\"groups\":[]}";
	const char *new = "{\"attributes\":{\"a\":\"x\\\\\\\\\",\"b\":\"q\\\"\",\"c\":[\"\\\\\\\"]\",2],\"external_id\":\"1\"},\"groups\":[]}";
	const char *loose = "{ \"attributes\": {\"a\": \"x\\\\\\\\\", \"b\": \"q\\\"\", \"c\": [\"\\\\\\\"]\", 2], \"external_id\": \"1\"}, \"groups\": [] }";
	assert_int_equal(payload_diff(slice_of(old), slice_of(new), &a, &d, &err), JERR_OK);
	assert_int_equal(d.n_changes, 2);
	assert_string_equal(d.changes[0].field, "a");
	assert_string_equal(d.changes[0].old_json, "\"x\\\\\"");
	assert_string_equal(d.changes[0].new_json, "\"x\\\\\\\\\"");
	assert_int_equal(d.changes[0].new_len, strlen(d.changes[0].new_json));
	assert_string_equal(d.changes[1].field, "c");
	assert_string_equal(d.changes[1].new_json, "[\"\\\\\\\"]\",2]");
	assert_int_equal(d.changes[1].new_len, strlen(d.changes[1].new_json));
	assert_int_equal(payload_diff(slice_of(old), slice_of(loose), &a, &g, &err), JERR_OK);
	assert_int_equal(g.n_changes, d.n_changes);
	for (size_t i = 0; i < g.n_changes; i++) {
		assert_string_equal(g.changes[i].field, d.changes[i].field);
		assert_int_equal(g.changes[i].new_len, strlen(g.changes[i].new_json));
	}

	/* keys out of order (an older writer): the changes still come sorted by field */
	const char *unsorted = "{\"attributes\":{\"z\":1,\"external_id\":\"1\",\"m\\\"x\":2,\"b\":3},\"groups\":[]}";
	assert_int_equal(payload_diff((struct slice){ 0 }, slice_of(unsorted), &a, &d, &err), JERR_OK);
	assert_int_equal(d.n_changes, 4);
	assert_string_equal(d.changes[0].field, "b");
	assert_string_equal(d.changes[1].field, "external_id");
	assert_string_equal(d.changes[2].field, "m\"x");
	assert_string_equal(d.changes[3].field, "z");
	assert_string_equal(d.changes[3].new_json, "1");
	assert_int_equal(d.changes[3].new_len, 1);
	/* an unterminated string is not canonical: the general path refuses it */
	assert_int_equal(payload_diff((struct slice){ 0 }, slice_of("{\"attributes\":{\"a\":\"x\\\"}},\"groups\":[]}"),
				      &a, &d, &err), JERR_STATE);
	jerror_release(&err);
	arena_release(&a);
}

/*
 * The fast scanner terminates keys, values and group names in place in its own copy of
 * the payload: the caller's bytes stay as they were (a slice of a larger buffer, not
 * NUL-terminated), every value is a C string of exactly new_len bytes, also the one
 * before the attributes' closing brace, and keys and groups with escapes decode in place.
 */
static void test_diff_fast_in_place(void **s)
{
	struct arena a;
	struct payload_diff d;
	struct jerror err = JERROR_INIT;
	arena_init(&a);
	const char *pl = "{\"attributes\":{\"caf\\u00e9\":\"x,y\",\"external_id\":\"7\",\"n\":[1,\"]\"],\"z\":12.5},"
			 "\"groups\":[\"G\\\"1\",\"h\"]}";
	size_t len = strlen(pl);
	char *buf = malloc(len + 8);
	memcpy(buf, pl, len);
	memcpy(buf + len, "TRAILER", 8); /* the slice ends before it */
	char *keep = strdup(buf);
	assert_int_equal(payload_diff((struct slice){ 0 }, (struct slice){ buf, len }, &a, &d, &err), JERR_OK);
	assert_string_equal(buf, keep);
	assert_int_equal(d.n_changes, 4);
	assert_string_equal(d.changes[0].field, "caf\xc3\xa9");
	assert_string_equal(d.changes[0].new_json, "\"x,y\"");
	assert_string_equal(d.changes[1].field, "external_id");
	assert_string_equal(d.changes[1].new_json, "\"7\"");
	assert_string_equal(d.changes[2].new_json, "[1,\"]\"]");
	assert_string_equal(d.changes[3].field, "z");
	assert_string_equal(d.changes[3].new_json, "12.5");
	for (size_t i = 0; i < d.n_changes; i++) {
		assert_int_equal(d.changes[i].new_len, strlen(d.changes[i].new_json));
		assert_string_equal(d.changes[i].old_json, "null");
	}
	assert_int_equal(d.n_added, 2);
	assert_string_equal(d.groups_added[0], "G\"1");
	assert_string_equal(d.groups_added[1], "h");
	/* the same payload as the old one: the old values are C strings too */
	const char *next = "{\"attributes\":{\"caf\\u00e9\":\"x\",\"external_id\":\"7\",\"n\":[1,\"]\"],\"z\":13},"
			   "\"groups\":[\"h\"]}";
	assert_int_equal(payload_diff((struct slice){ buf, len }, slice_of(next), &a, &d, &err), JERR_OK);
	assert_string_equal(buf, keep);
	assert_int_equal(d.n_changes, 2);
	assert_string_equal(d.changes[0].old_json, "\"x,y\"");
	assert_string_equal(d.changes[0].new_json, "\"x\"");
	assert_string_equal(d.changes[1].old_json, "12.5");
	assert_string_equal(d.changes[1].new_json, "13");
	assert_int_equal(d.n_removed, 1);
	assert_string_equal(d.groups_removed[0], "G\"1");
	free(buf);
	free(keep);
	jerror_release(&err);
	arena_release(&a);
}

/*
 * d (payload_diff_first's) and e (payload_diff's) hold the same changes and groups,
 * byte for byte; e's values are NUL-terminated, d's are new_len long in place.
 */
static void assert_same_diff(const struct payload_diff *d, const struct payload_diff *e)
{
	assert_int_equal(d->n_changes, e->n_changes);
	assert_int_equal(d->n_new_fields, e->n_new_fields);
	for (size_t i = 0; i < d->n_changes; i++) {
		assert_string_equal(d->changes[i].field, e->changes[i].field);
		assert_string_equal(d->changes[i].old_json, e->changes[i].old_json);
		assert_int_equal(d->changes[i].new_len, e->changes[i].new_len);
		assert_memory_equal(d->changes[i].new_json, e->changes[i].new_json, e->changes[i].new_len);
		assert_int_equal(e->changes[i].new_len, strlen(e->changes[i].new_json));
	}
	assert_int_equal(d->n_added, e->n_added);
	for (size_t i = 0; i < d->n_added; i++)
		assert_string_equal(d->groups_added[i], e->groups_added[i]);
	assert_int_equal(d->n_removed, 0);
	assert_int_equal(e->n_removed, 0);
}


/*
 * A first export's diff from the value spans payload_build_spans notes is the diff
 * payload_diff finds by scanning the same payload: every entry (nulls, arrays, strings
 * holding quotes, commas and braces, escaped keys' neighbours), sorted by field even
 * when the mapping is not, and the groups in payload order. A name that needs an
 * escape sends the caller to payload_diff.
 */
static void test_diff_first_from_spans(void **s)
{
	struct cfg_property pk = { .id = "id", .type = PROP_STRING, .slot = 0 };
	struct cfg_property p1 = { .id = "p1", .type = PROP_STRING, .slot = 1 };
	struct cfg_property p2 = { .id = "p2", .type = PROP_FLOAT, .slot = 2 };
	struct cfg_property p3 = { .id = "p3", .type = PROP_STRING, .slot = 3 };
	struct cfg_property p4 = { .id = "p4", .type = PROP_BOOLEAN, .slot = 4 };
	struct cfg_group g0 = { .id = "g0", .index = 0 }, g1 = { .id = "g1", .index = 1 }, g2 = { .id = "g2", .index = 2 };
	/* not sorted by remote name: payload_diff sorts the changes */
	struct cfg_mapping map[] = {
		{ .remote = "zeta", .property = &p1 }, { .remote = "external_id", .property = &pk },
		{ .remote = "email", .property = &p3 }, { .remote = "alpha", .property = &p2 },
		{ .remote = "email_click_tracking_disabled", .property = &p4 }, { .remote = "custom", .property = &p3 },
	};
	struct cfg_group_map gm[] = { { .remote = "VIP", .group = &g0 }, { .remote = "Churned", .group = &g1 },
				      { .remote = "Gold", .group = &g2 } };
	struct cfg_destination d = { .id = "d", .collection = COLL_MODEL, .mapping = map, .n_mapping = 6,
				     .group_maps = gm, .n_group_maps = 3 };
	struct value arr_items[] = { { .kind = VAL_STRING, .u.s = SLICE_LIT("a,\"}b") }, { .kind = VAL_INT, .u.i = 3 } };
	struct value v1[] = { { .kind = VAL_STRING, .u.s = SLICE_LIT("k\"1") },
			      { .kind = VAL_STRING, .u.s = SLICE_LIT("x\\\",y}") },
			      { .kind = VAL_FLOAT, .u.f = 2.5 },
			      { .kind = VAL_ARRAY, .u.arr = { arr_items, 2 } },
			      { .kind = VAL_STRING, .u.s = SLICE_LIT("true") } };
	struct value v2[] = { { .kind = VAL_STRING, .u.s = SLICE_LIT("k2") }, VALUE_NULL, VALUE_NULL, VALUE_NULL,
			      VALUE_NULL };
	bool groups1[] = { true, false, true }, groups2[] = { false, false, false };
	struct record recs[] = {
		{ .key = { .text = SLICE_LIT("k\"1") }, .values = v1, .groups = groups1 },
		{ .key = { .text = SLICE_LIT("k2") }, .values = v2, .groups = groups2 },
	};
	struct arena a;
	struct jerror err = JERROR_INIT;
	struct payload_spec spec;
	struct strbuf sb = STRBUF_INIT, plain = STRBUF_INIT;
	size_t spans[12];
	arena_init(&a);
	payload_spec_init(&spec, &d);
	for (size_t r = 0; r < 2; r++) {
		struct payload_diff df, ds;
		strbuf_reset(&sb);
		strbuf_reset(&plain);
		strbuf_addstr(&sb, "prefix"); /* spans count from where the payload starts */
		payload_build_spans(&spec, &recs[r], &sb, spans);
		payload_build(&spec, &recs[r], &plain);
		struct slice pl = { sb.buf + 6, sb.len - 6 };
		assert_int_equal(pl.len, plain.len);
		assert_memory_equal(pl.ptr, plain.buf, plain.len);
		assert_true(payload_diff_first(&spec, &recs[r], pl, spans, &a, &df));
		assert_int_equal(payload_diff((struct slice){ 0 }, pl, &a, &ds, &err), JERR_OK);
		assert_same_diff(&df, &ds);
		assert_memory_equal(pl.ptr, plain.buf, plain.len); /* the payload is not written to */
		/* the values are the payload's own bytes, where payload_build_spans put them */
		for (size_t i = 0; i < df.n_changes; i++)
			assert_true(df.changes[i].new_json >= pl.ptr && df.changes[i].new_json < pl.ptr + pl.len);
		/* each change carries its field's length and `,"field":`, as the track object writes it */
		for (size_t i = 0; i < df.n_changes; i++) {
			struct strbuf key = STRBUF_INIT;
			strbuf_addf(&key, ",\"%s\":", df.changes[i].field);
			assert_int_equal(df.changes[i].field_len, strlen(df.changes[i].field));
			assert_int_equal(df.changes[i].key_len, key.len);
			assert_memory_equal(df.changes[i].key, key.buf, key.len);
			assert_null(ds.changes[i].key); /* the scanning diff leaves them to the caller */
			assert_int_equal(ds.changes[i].field_len, 0);
			strbuf_release(&key);
		}
	}
	payload_spec_release(&spec);
	/* a field name that needs an escape: not taken from the spans */
	map[2].remote = "e\"mail";
	payload_spec_init(&spec, &d);
	struct payload_diff df;
	strbuf_reset(&sb);
	payload_build_spans(&spec, &recs[0], &sb, spans);
	assert_false(payload_diff_first(&spec, &recs[0], (struct slice){ sb.buf, sb.len }, spans, &a, &df));
	payload_spec_release(&spec);
	strbuf_release(&sb);
	strbuf_release(&plain);
	jerror_release(&err);
	arena_release(&a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_build_sorted_with_conversions),
		cmocka_unit_test(test_bool_field_from_text),
		cmocka_unit_test(test_diff_fields_and_groups),
		cmocka_unit_test(test_diff_escapes_and_full),
		cmocka_unit_test(test_full_after_failed_attempt),
		cmocka_unit_test(test_diff_fast_scanner),
		cmocka_unit_test(test_diff_fast_in_place),
		cmocka_unit_test(test_diff_first_from_spans),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
