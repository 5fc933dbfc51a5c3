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

bool braze_response_has_user(json_t *body, struct slice external_id)
{
	json_t *users = body ? json_object_get(body, "users") : NULL;
	size_t k;
	json_t *u;
	json_array_foreach(users, k, u) {
		json_t *id = json_object_get(u, "external_id");
		if (json_is_string(id) && strlen(json_string_value(id)) == external_id.len &&
		    !memcmp(json_string_value(id), external_id.ptr, external_id.len))
			return true;
	}
	return false;
}

void braze_enrich_answered(struct braze *b, struct batch *bt, json_t *body)
{
	enum dest_result *res = xcalloc(bt->n ? bt->n : 1, sizeof(*res));
	/* found users go on to /users/track (update only), the others are not in Braze */
	struct batch *keep = braze_batch_new(EP_EXPORT_IDS);
	for (size_t i = 0; i < bt->n; i++) {
		struct row *r = bt->rows[i];
		if (braze_response_has_user(body, r->key.text)) {
			r->op = DEST_UPSERT;
			braze_enqueue(b, EP_TRACK, r);
		} else {
			braze_batch_add(keep, r);
		}
	}
	for (size_t i = 0; i < keep->n; i++)
		res[i] = DEST_NOT_FOUND;
	braze_batch_free(bt, false);
	braze_deliver(b, keep, res, NULL);
	free(res);
}
