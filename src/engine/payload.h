/*
 * payload.h: what one destination wants Braze to hold for one record.
 *
 * The canonical payload is compact JSON with sorted keys, so equal content gives
 * equal bytes and equal hashes:
 *     {"attributes":{"email":"a@b.co","external_id":"42","ltv":12.5},"groups":["VIP"]}
 * `attributes` maps every Braze field of the destination's mapping to its value
 * converted to the Braze field's type (NULL as null); `groups` lists, sorted, the
 * remote names of destinationGroupMemberships whose group holds the record.
 *
 * Conversion (Grouparoo's Braze plugin, improved to Braze's contract): external_id is
 * the key as text; known string fields (first_name, country, ...) receive text
 * (numbers and booleans stringified, dates as ISO-8601, dob as YYYY-MM-DD, arrays
 * their first element); boolean fields receive booleans; custom attributes keep the
 * JSON type (dates as ISO-8601 strings, array properties as arrays).
 *
 * The warehouse diff (warehouse.h) stores which payload hash a record's source rows
 * make: a change to how payloads are built (what this header promises) must change
 * WH_FORMAT in warehouse.c, so that those stored facts expire.
 */
#ifndef JOEY_PAYLOAD_H
#define JOEY_PAYLOAD_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include "base/compat.h"
#include "base/error.h"
#include "base/strbuf.h"
#include "config/config.h"
#include "engine/record.h"

/* Is rec in dest's scope (collection model, or member of the tracked group)? */
bool payload_in_scope(const struct cfg_destination *dest, const struct record *rec);

/*
 * What payload_build needs to know about a destination, worked out once per run
 * (the Braze type of each mapped field) instead of once per record.
 */
struct payload_spec {
	const struct cfg_destination *dest;
	unsigned char *kinds; /* per mapping entry */
	struct strbuf keys;   /* per mapping entry: ',', its JSON key and ':' */
	size_t *key_end;      /* keys.buf[key_end[i-1] .. key_end[i]) is entry i's (from 0 for the first) */
	size_t *name_len;     /* per mapping entry: strlen of its remote name */
	size_t *order;        /* the mapping entries by remote name (strcmp): payload_diff's order */
	bool plain;           /* no remote name (field or group) needs a JSON escape */
	/* values sent as null to a boolean field for not being one (warned: the first few) */
	_Atomic unsigned long *bad_bools;
};
/* dest borrowed; release with payload_spec_release. */
void payload_spec_init(struct payload_spec *spec, const struct cfg_destination *dest);
void payload_spec_release(struct payload_spec *spec);
/* Append the canonical payload of rec for the spec's destination to out. */
void payload_build(const struct payload_spec *spec, const struct record *rec, struct strbuf *out);
/*
 * payload_build, noting where each mapping entry's value is: spans[2 * i] and
 * spans[2 * i + 1] are the offsets (from where the payload starts in out) of the first
 * byte of entry i's value and of the byte after it. spans has room for 2 * n_mapping.
 */
void payload_build_spans(const struct payload_spec *spec, const struct record *rec, struct strbuf *out,
			 size_t *spans);

/* ---- comparing two payloads ---- */

struct payload_change {
	const char *field;  /* Braze field name */
	const char *old_json; /* JSON text of the old value, "null" when unset */
	const char *new_json;
	size_t new_len; /* strlen(new_json) (payload_diff_first's: its length, no NUL after it) */
	/* payload_diff_first only (else 0 and NULL): strlen(field), and `,"field":` (the spec's, borrowed) */
	size_t field_len;
	const char *key;
	size_t key_len;
};

struct payload_diff {
	struct payload_change *changes; /* attribute changes, sorted by field */
	size_t n_changes;
	const char **groups_added; /* remote names */
	size_t n_added;
	const char **groups_removed;
	size_t n_removed;
	size_t n_new_fields; /* non-null attributes of the new payload (for creates) */
};

/*
 * Does going from canonical payload old to new take the record out of a group (a
 * subscription group or a value of the groups attribute)? Canonical payloads write
 * each group as the same JSON string, so groups compare bytewise.
 */
bool payload_drops_group(struct slice old, struct slice new);
/*
 * The payload to keep when an attempt to send new over old fails: old (the confirmed
 * payload, canonical) with every group of new it lacks added to its groups, into out
 * (reset first). Braze may have applied the attempt (a timeout), so the next attempt,
 * a full re-send, must remove those groups if the record has left them by then. False
 * (out empty) when new adds no group, or old is empty or not canonical.
 */
bool payload_with_added_groups(struct slice old, struct slice new, struct strbuf *out);
/*
 * Compare old_payload (empty: nothing confirmed yet) with new_payload (empty: the
 * record leaves; all groups removed). A first export (old_payload empty) sets every
 * attribute, nulls included, as Grouparoo did: the profile may exist in Braze already
 * (always so in Enrich) with values the warehouse no longer has. Everything in *d is allocated in arena.
 * A payload that is not valid JSON is JERR_STATE (corrupt state row).
 */
enum jerr payload_diff(struct slice old_payload, struct slice new_payload, struct arena *arena,
		       struct payload_diff *d, struct jerror *err) JOEY_WUR;
/*
 * Like payload_diff, but every attribute of the new payload counts as changed, nulls
 * included, and every group of the new payload as added: a full re-send after a failed
 * attempt, which Braze may have applied (a timeout) with values old_payload does not
 * have. Groups of old_payload not in new_payload are removed; after a failed attempt
 * old_payload holds the groups that attempt added (payload_with_added_groups).
 */
enum jerr payload_diff_full(struct slice old_payload, struct slice new_payload, struct arena *arena,
			    struct payload_diff *d, struct jerror *err) JOEY_WUR;
/*
 * payload_diff of an empty old payload (a first export) and payload, which
 * payload_build_spans wrote for rec with spec, noting spans: the same changes (every
 * entry, nulls included, by field) and groups added, from the spans and the spec
 * instead of scanning the text (a first sync's main cost after the state writes).
 * The values point into payload (borrowed: valid as long as it is) and, unlike
 * payload_diff's, are not NUL-terminated: new_len is each one's length. The field and
 * group names are the config's, and each change has its field's length and JSON key
 * (the spec's). false (d untouched) when a name needs a JSON escape: then call
 * payload_diff.
 */
bool payload_diff_first(const struct payload_spec *spec, const struct record *rec, struct slice payload,
			const size_t *spans, struct arena *arena, struct payload_diff *d);

#endif
