/*
 * dest.h: the interface every destination connector implements (one const struct
 * dest_ops per connector; Braze is the first).
 *
 * The engine computes, per record, the change to make (struct dest_change) and hands
 * it to the connector; the connector batches, sends, retries, and reports back one
 * outcome per change through the sink. The engine writes the state store from the
 * outcomes only: nothing is recorded as sent before the destination confirms it.
 *
 *   ops = dest_ops_for_app(app->type);
 *   ops->open(app, dest, &opts, &sink, &h, &err);
 *   for each change: ops->push(h, &change, &err);     -- may block to drain (backpressure)
 *   ops->finish(h, &err);                              -- sends what is queued, waits for all
 *   ops->stats(h, &stats); ops->close(h);
 *
 * A change and everything it points to is borrowed for the push() call only; the
 * connector copies what it keeps. Outcomes are delivered from inside push()/finish(),
 * one sink call per answered request, in the order requests complete.
 * A fatal error (bad API key, missing permission, wrong endpoint) stops the connector:
 * push/finish return it, queued changes get no outcome (the next run re-sends them).
 */
#ifndef JOEY_DEST_H
#define JOEY_DEST_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/compat.h"
#include "base/error.h"
#include "base/strbuf.h"
#include "config/config.h"
#include "source/source.h"
#include "state/state.h"

enum dest_op {
	DEST_UPSERT,      /* create or update attributes and/or group memberships */
	DEST_DELETE,      /* delete the remote user */
	DEST_ENRICH_NEW,  /* enrich mode, user never confirmed: update only if it exists */
};

struct dest_field {
	const char *name;     /* Braze field */
	const char *json;     /* new value as JSON text ("null" to unset) */
	size_t json_len;      /* strlen(json); 0: not known, strlen is taken */
	/*
	 * Optional, what the engine worked out once per run instead of once per record:
	 * strlen(name) (0: not known), and the name as the JSON text the track object
	 * writes before the value, a comma, the quoted name and a colon (`,"age":`;
	 * NULL: written from name).
	 */
	size_t name_len;
	const char *key;
	size_t key_len;
};

/* push_item (engine/run_items.c) sets every member, with no zeroing first: a new member must be set there too. */
struct dest_change {
	enum dest_op op;
	const struct rkey *key;
	bool create;                  /* first export of this record */
	const struct dest_field *fields; /* changed attributes (external_id excluded) */
	size_t n_fields;
	const char *const *groups_added;   /* remote group names (subscription group ids or `groups` values) */
	size_t n_added;
	const char *const *groups_removed;
	size_t n_removed;
	/* what to store once confirmed (engine's data, passed back in the outcome) */
	struct slice new_payload;
	const unsigned char *new_hash;
	/*
	 * What to keep instead of the confirmed payload if the attempt fails (empty: keep
	 * it): the confirmed payload with the groups this change adds, which Braze may
	 * have applied (engine's data, passed back in the outcome).
	 */
	struct slice fail_payload;
	bool in_scope;
	/*
	 * Braze may not have the user (a create whose answer was lost, then the record left
	 * the scope): change it only if it is there (`_update_existing_only`), never create it.
	 */
	bool update_only;
	/*
	 * What Braze holds is unknown (the record is pending: its last request failed, or
	 * went out in a run that was killed, and may have been a delete that Braze applied):
	 * send it even when nothing but external_id is left to send, so the user exists.
	 */
	bool resend;
	int attempts; /* failed attempts before this run */
	/* engine's note passed back in the outcome (the sync log's changed fields); may be empty */
	struct slice changed;
};

enum dest_result {
	DEST_OK,        /* confirmed by the destination */
	DEST_FAILED,    /* rejected or gave up after retries: record stays pending */
	DEST_NOT_FOUND, /* enrich: the user does not exist remotely; nothing sent */
};

struct dest_outcome {
	enum dest_result result;
	enum dest_op op;
	struct rkey key;          /* key.text borrowed for the sink call */
	struct slice new_payload; /* as pushed */
	const unsigned char *new_hash;
	struct slice fail_payload; /* as pushed */
	bool in_scope;
	bool create;
	int attempts; /* attempts before this run */
	const char *error; /* DEST_FAILED: why */
	size_t data_points;
	struct slice changed; /* dest_change.changed, as pushed */
};

struct dest_sink {
	/* One call per answered request; an error aborts the run (e.g. state write failed). */
	enum jerr (*outcomes)(void *ctx, const struct dest_outcome *o, size_t n, struct jerror *err);
	/* Optional: called about every 100 ms while the connector waits (e.g. to keep a
	 * lock alive); an error stops the connector like a failed outcome. */
	enum jerr (*tick)(void *ctx, struct jerror *err);
	/*
	 * Optional: called before a request that may change the destination is sent for
	 * the first time, with the keys of its rows (borrowed for the call), so that they
	 * are on record before it can be applied (state_journal_add). An error stops the
	 * connector and that request is not sent; unlike a failed outcome, the answers
	 * to requests already in flight are still given to outcomes.
	 */
	enum jerr (*sending)(void *ctx, const struct rkey *const *keys, size_t n, struct jerror *err);
	void *ctx;
};

struct dest_opts {
	/*
	 * Upper bound on requests in flight (--concurrency); 0 (the default): none but
	 * WINDOW_HARD_MAX. Below it the connector sizes the window itself (dest/window.h):
	 * rate budget x measured latency, adapted to 429s, 5xx and timeouts.
	 */
	int max_inflight;
	uint64_t window_memory;  /* bytes the requests in flight may hold (default 256 MiB) */
	int max_attempts;        /* per request, for 5xx/timeouts/resets (default 5) */
	long timeout_ms;         /* per request (default 30 s) */
	long connect_timeout_ms; /* default 10 s */
	double rate_target;      /* fraction of the rate limit to use (default 0.95) */
	int64_t backoff_base_ms; /* first retry delay (default 500 ms) */
	int64_t backoff_max_ms;  /* cap (default 30 s) */
	int64_t max_throttle_ms; /* give a request up after this long rate limited (default 15 min) */
	bool bulk;               /* send X-Braze-Bulk: true (full resyncs) */
	volatile int *stop;      /* if set and non-zero: stop sending new requests */
	/*
	 * If set and non-zero: no request is started after this time (CLOCK_MONOTONIC ms,
	 * braze_mono_ms) until it moves on: a work item's lease, less a margin, which the
	 * worker's keeper renews (a worker paused past its lease sends nothing on waking)
	 */
	const _Atomic int64_t *send_until;
};

#define DEST_LATENCY_BUCKETS 12
/* Upper bounds (seconds) of the latency histogram buckets of struct dest_stats. */
extern const double dest_latency_bounds[DEST_LATENCY_BUCKETS];

struct dest_stats {
	uint64_t requests, retries, throttled, data_points, objects, failed_requests;
	uint64_t by_endpoint[8];
	/* answered requests by latency: latency[i] counts those <= dest_latency_bounds[i]
	 * and above the bound before (not cumulative); slower ones only in latency_count */
	uint64_t latency[DEST_LATENCY_BUCKETS];
	uint64_t latency_count;
	double latency_sum_s;
	/* the window of requests in flight (dest/window.h) */
	uint32_t window_peak;  /* largest window of the run */
	uint32_t window_last;  /* at the end */
	uint32_t window_max;   /* its bound: --concurrency, memory, file descriptors */
	uint32_t inflight_peak; /* most requests actually in flight at once */
	uint64_t window_decreases; /* halvings on 429s, 5xx, timeouts */
	double latency_srtt_ms; /* smoothed latency at the end (0: no answer) */
};

struct dest_ops {
	const char *app_type;                  /* "braze" */
	const char *const *destination_types;  /* NULL-terminated */
	enum jerr (*open)(const struct cfg_app *app, const struct cfg_destination *dest,
			  const struct dest_opts *opts, const struct dest_sink *sink, void **h,
			  struct jerror *err);
	/* A harmless call that proves the key works (`joey validate --check-apps`). */
	enum jerr (*check)(const struct cfg_app *app, const struct dest_opts *opts, struct jerror *err);
	enum jerr (*push)(void *h, const struct dest_change *c, struct jerror *err);
	enum jerr (*finish)(void *h, struct jerror *err);
	void (*stats)(void *h, struct dest_stats *out);
	void (*close)(void *h);
};

extern const struct dest_ops dest_braze;

/*
 * Does writing this Braze field cost a data point? Identifiers, country, language and
 * subscription states are free (braze-api.md §2.5).
 */
bool dest_field_billable(const char *field);

/*
 * destinationGroupMemberships keys that are Braze subscription group ids (UUIDs) map
 * a group to a subscription group; any other key is a value of the `groups` custom
 * attribute array (Grouparoo's behaviour), changed with add/remove operations.
 */
bool dest_is_subscription_group(const char *remote_name);

/* The connector for an app type, or NULL. */
const struct dest_ops *dest_ops_for_app(const char *app_type);
void dest_opts_defaults(struct dest_opts *o);

#endif
