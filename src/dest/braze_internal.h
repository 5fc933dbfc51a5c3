/*
 * braze_internal.h: what the pieces of the Braze connector share (braze.c, braze_request.c,
 * braze_answer.c, braze_enrich.c; see src/dest/README.md), and how it reads Braze's
 * answers, exposed for the fuzz target (tests/fuzz/braze.c) and tests too. Not part of
 * the connector interface: the engine talks to Braze through dest_braze (dest.h) alone.
 *
 * Order of calls, as in braze_answer.c for every answered request:
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
#include "dest/dest.h"
#include "dest/http.h"
#include "dest/ratelimit.h"
#include "dest/window.h"

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

/* ---- between the pieces of the connector ---- */

enum endpoint { EP_TRACK, EP_DELETE, EP_EXPORT_IDS, EP_SUBSCRIPTION, EP__COUNT };

/* Braze's endpoints: path, name (rateLimits, metrics), default limit, most rows per request, permission. */
struct braze_endpoint {
	const char *path;
	const char *name;
	int64_t limit, window_ms;
	size_t max_rows;
	const char *permission;
};
extern const struct braze_endpoint braze_endpoints[EP__COUNT]; /* braze.c */

#define MAX_SUB_ENTRIES 25 /* subscription_groups entries per v2 request */

struct sub_change {
	char *group_id;
	bool subscribed;
};

/*
 * A row and the copies it keeps (key text, payload, changed fields, track object) are
 * one allocation: the strings live in data[] after the struct, so a row is one malloc
 * and one free however many parts it has (row_free); subs are allocated apart (rare).
 */
/* row_new (braze_request.c) sets every member, with no zeroing first: a new member must be set there too. */
struct row {
	enum dest_op op;
	struct rkey key; /* key.text points into data */
	bool create;
	char *object; /* track attribute object (JSON), without _update_existing_only; NULL: none */
	size_t object_len;
	struct sub_change *subs; /* subscription-only changes (EP_SUBSCRIPTION) */
	size_t n_subs;
	char *payload; /* NULL when the change had none */
	size_t payload_len;
	char *fail_payload; /* dest_change.fail_payload (NULL: none), passed back */
	size_t fail_len;
	unsigned char hash[STATE_HASH_LEN];
	bool in_scope;
	bool update_only; /* dest_change.update_only: `_update_existing_only` in its track object */
	int attempts;
	size_t data_points;
	char *changed; /* dest_change.changed (NULL: none), passed back */
	size_t changed_len;
	size_t cap; /* bytes of data[] (braze_row_alloc rounds it up for reuse) */
	char data[];
};

/*
 * Rows of a delivered batch are kept (struct braze.pool) and the next rows reuse them,
 * and so is the batch (struct braze.spare, with its rows array and body buffer): a
 * first sync frees a batch's rows at once and makes as many again before the next
 * answer, which cost malloc's slow path on every row, and with a pool capped below the
 * rows in flight, pages that malloc gave back to the kernel and faulted in again. Both
 * hold at most what was in flight at the peak (rows only come back from batches sent).
 */

struct batch {
	enum endpoint ep;
	struct row **rows;
	size_t n, alloc;
	int attempts;      /* failed attempts (5xx, timeouts, resets) */
	int64_t first_failure; /* mono ms of the first of them (0: none yet) */
	int throttles;     /* 429s in a row: they use no attempt but grow the wait */
	int64_t throttled_ms; /* total time waited on 429s */
	int64_t not_before;
	bool announced; /* its keys went to the sink's sending (a retry is not announced again) */
	struct strbuf body;
	struct http_request req;
	const char *url; /* borrowed from struct braze's urls */
	struct batch *next;
};

struct braze {
	const struct cfg_app *app;
	const struct cfg_destination *dest;
	char *base_url;
	const char *api_key;
	struct dest_opts opts;
	struct dest_sink sink;
	struct http_client *http;
	struct ratelimit *rl; /* EP__COUNT buckets shared by every destination of the app */
	struct batch *open[EP__COUNT];
	struct batch *ready_head, *ready_tail;
	size_t n_ready, inflight;
	struct dest_stats stats;
	enum jerr fatal;
	bool sink_failed; /* the fatal error came from the sink: stop delivering */
	struct jerror fatal_err;
	uint64_t rng;
	bool enrich;
	int64_t last_answer; /* mono ms of the last HTTP answer of any status (0: none yet) */
	/* the window of requests in flight (dest/window.h) */	struct window win;
	int cap;                      /* its bound but for memory: --concurrency, fds, hard max */
	long conn_limit;              /* the HTTP client's connection pool now */
	int64_t ep_used[EP__COUNT];   /* mono ms an endpoint last sent or was answered (0: never) */
	uint64_t body_bytes, bodies;  /* request bodies sent, for the memory bound */
	char *urls[EP__COUNT];        /* base_url + endpoint path, made once */
	struct strbuf scratch;        /* braze_route_change builds a track object here */
	const struct rkey **announce; /* the keys of a batch for the sink's sending (announce_alloc) */
	size_t announce_alloc;
	struct row **pool;            /* rows to reuse (braze_row_alloc), owned; n_pool of them */
	size_t n_pool, alloc_pool;
	struct batch *spare;          /* delivered batches to reuse (linked by next), owned */
};

/*
 * braze.c: clocks, backoff, batches and queues. A batch owns its rows array, body and
 * url; batch_free(bt, rows_too) frees the rows too when asked. enqueue takes r over and
 * moves a full batch to the ready queue; ready_push puts bt on it (front: first).
 */
int64_t braze_mono_ms(void);
int64_t braze_epoch_ms(void);
int64_t braze_backoff_ms(struct braze *b, int attempt);
struct batch *braze_batch_new(enum endpoint ep);
void braze_batch_free(struct batch *bt, bool rows_too);
/* A row with at least need bytes of data[] (owned by the caller), from b's pool or new. */
struct row *braze_row_alloc(struct braze *b, size_t need);
/* Keep bt and its rows (unless they have subs) for reuse; bt and the rows are b's now. */
void braze_batch_recycle(struct braze *b, struct batch *bt);
/* Free the rows and batches kept for reuse. */
void braze_spares_free(struct braze *b);
void braze_batch_add(struct batch *bt, struct row *r);
void braze_ready_push(struct braze *b, struct batch *bt, bool front);
void braze_enqueue(struct braze *b, enum endpoint ep, struct row *r);
/* dest_field_billable of field, len bytes long (braze_route_change knows the length). */
bool braze_field_billable_len(const char *field, size_t len);
/* The rate budget (requests per ms) of the endpoints in use in the last 2 s. */
double braze_rate_in_use(const struct braze *b, int64_t now);
/* Bound the window (cap, memory) and raise the connection pool to follow it. */
void braze_window_bound(struct braze *b);
/*
 * Send the ready batches that the window and the rate budgets allow at now (mono ms);
 * returns when to look again: now + max_wait_ms at the latest, sooner when a batch's
 * retry time comes or an endpoint's budget has room again.
 */
int64_t braze_send_ready(struct braze *b, int64_t now, int max_wait_ms);

/*
 * braze_request.c: braze_route_change copies the engine's change c (borrowed) into a
 * row with its track object and queues it on its endpoint, or (nothing for Braze)
 * confirms it at once. braze_build_body fills bt->body from its rows;
 * braze_sub_entries counts the v2 subscription entries of bt plus extra (may be NULL).
 */
void braze_route_change(struct braze *b, const struct dest_change *c);
void braze_build_body(struct braze *b, struct batch *bt);
size_t braze_sub_entries(const struct batch *bt, const struct row *extra);

/*
 * braze_answer.c: braze_on_done is the HTTP client's callback for every request of the
 * connector (ctx: struct braze; req->user: the batch, taken over). braze_deliver hands
 * one outcome per row of bt (results[i], errors[i] or NULL) to the sink and frees bt
 * and its rows; braze_sink_result takes a sink call's error over (*err) as the fatal
 * one. braze_mask_key appends text to out with key masked (see braze_response_mask).
 */
void braze_on_done(void *ctx, struct http_request *req, const struct http_response *res);
void braze_deliver(struct braze *b, struct batch *bt, const enum dest_result *results, const char *const *errors);
void braze_sink_result(struct braze *b, enum jerr rc, struct jerror *err);
void braze_mask_key(struct strbuf *out, const char *text, const char *key);

/*
 * braze_enrich.c: a /users/export/ids answer (body borrowed) for bt (taken over): the
 * users Braze has go on to /users/track, those it lists in invalid_user_ids are
 * delivered DEST_NOT_FOUND, any other DEST_FAILED.
 */
void braze_enrich_answered(struct braze *b, struct batch *bt, json_t *body);
/*
 * Is a 2xx answer (body parsed, NULL if it was not JSON) one the rows can be settled
 * by? Not without a body (a delete too: deleting again is harmless), nor a look-up's
 * without its users array (202 "queued"): retried as a failed attempt.
 */
bool braze_response_readable(enum endpoint ep, json_t *body);

#endif
