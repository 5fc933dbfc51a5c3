/*
 * braze_internal.h: how the Braze connector (braze.c) reads Braze's answers, exposed
 * for the fuzz target (tests/fuzz/braze.c) and tests only. Not part of the connector
 * interface: the engine talks to Braze through dest_braze (dest.h) alone.
 *
 * Order of calls, as in braze.c for every answered request:
 *   json_t *body = braze_response_parse(res->body);     -- NULL: empty or not JSON
 *   braze_response_mask(body, api_key);                  -- before any text is taken
 *   msg = braze_response_message(body);                  -- for messages
 *   /users/track:       braze_response_row_errors(body, n_rows, errs);
 *   /users/export/ids:  braze_response_has_user(body, key) per row
 *   json_decref(body);
 * Every function accepts any body, also NULL or JSON of an unexpected shape.
 */
#ifndef JOEY_BRAZE_INTERNAL_H
#define JOEY_BRAZE_INTERNAL_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "base/strbuf.h"

/* The response body (borrowed) as JSON, owned by the caller; NULL if empty or unreadable. */
json_t *braze_response_parse(struct slice body);
/*
 * Replace, in every string of body (in place; NULL-safe), each occurrence of key (in
 * any case) by "****": Braze's texts go to messages, logs and the error ledger, and a
 * server that echoes the key must not put it there. A key under 4 characters is not
 * looked for.
 */
void braze_response_mask(json_t *body, const char *key);
/* The body's "message" string (borrowed from body), or NULL. */
const char *braze_response_message(json_t *body);
/*
 * Per-object errors of a /users/track answer for a request of n rows: for each
 * {"index": k, "type": "..."} of the body's "errors" array with 0 <= k < n (and
 * input_array absent, not a string, or "attributes"), the first one for k sets
 * errs[k] (borrowed from body; "rejected by Braze" when type is not a string).
 * errs holds n pointers, all NULL on entry. Returns how many rows were named.
 */
size_t braze_response_row_errors(json_t *body, size_t n, const char **errs);
/* Does a /users/export/ids answer list a user with this external_id (borrowed)? */
bool braze_response_has_user(json_t *body, struct slice external_id);

#endif
