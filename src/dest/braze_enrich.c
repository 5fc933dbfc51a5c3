/*
 * braze_enrich.c: the enrich look-ups (sync mode "enrich"): reading a /users/export/ids
 * answer, sending the users Braze has on to /users/track (update only) and answering
 * the others "not found". Takes over the batch's rows. Called by braze_answer.c
 * (braze_internal.h); braze_response_has_user is also the fuzz target's.
 */
#include "dest/braze_internal.h"

#include <stdlib.h>
#include <string.h>

#include "base/xalloc.h"

static bool is_id(json_t *v, struct slice external_id)
{
	return json_is_string(v) && json_string_length(v) == external_id.len &&
	       !memcmp(json_string_value(v), external_id.ptr, external_id.len);
}

bool braze_response_has_user(json_t *body, struct slice external_id)
{
	json_t *users = body ? json_object_get(body, "users") : NULL;
	size_t k;
	json_t *u;
	json_array_foreach(users, k, u) {
		if (is_id(json_object_get(u, "external_id"), external_id))
			return true;
	}
	return false;
}

/* Does the answer list external_id in invalid_user_ids (requested, no profile)? */
static bool listed_invalid(json_t *body, struct slice external_id)
{
	json_t *ids = body ? json_object_get(body, "invalid_user_ids") : NULL;
	size_t k;
	json_t *v;
	json_array_foreach(ids, k, v) {
		if (is_id(v, external_id))
			return true;
	}
	return false;
}

void braze_enrich_answered(struct braze *b, struct batch *bt, json_t *body)
{
	enum dest_result *res = xcalloc(bt->n ? bt->n : 1, sizeof(*res));
	const char **errs = xcalloc(bt->n ? bt->n : 1, sizeof(*errs));
	/*
	 * Found users go on to /users/track (update only). Only those Braze lists in
	 * invalid_user_ids are not in Braze (checked again after enrichRecheckHours); one
	 * the answer names neither way is not known to be absent: it fails, so the next
	 * run looks it up again.
	 */
	struct batch *keep = braze_batch_new(EP_EXPORT_IDS);
	for (size_t i = 0; i < bt->n; i++) {
		struct row *r = bt->rows[i];
		if (braze_response_has_user(body, r->key.text)) {
			r->op = DEST_UPSERT;
			braze_enqueue(b, EP_TRACK, r);
			continue;
		}
		bool absent = listed_invalid(body, r->key.text);
		res[keep->n] = absent ? DEST_NOT_FOUND : DEST_FAILED;
		errs[keep->n] = absent ? NULL : "Braze's /users/export/ids answer listed the user neither as found nor as invalid";
		braze_batch_add(keep, r);
	}
	braze_batch_free(bt, false);
	braze_deliver(b, keep, res, errs);
	free(errs);
	free(res);
}

bool braze_response_readable(enum endpoint ep, json_t *body)
{
	/* a look-up's answer without its users (202 "queued") says nothing about them */
	return body && (ep != EP_EXPORT_IDS || json_is_array(json_object_get(body, "users")));
}
