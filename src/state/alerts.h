/*
 * alerts.h: the alert tables of the state store (schema version 5): what src/alert
 * remembers between runs and processes. Both back ends (SQLite, PostgreSQL).
 *
 *   incidents     one row per (alert, destination, trigger) while its condition holds
 *                 (open: resolved_at 0), kept after it clears; at most one open row per
 *                 triple, guaranteed by the database (a partial unique index), so two
 *                 processes evaluating at once open it once.
 *   deliveries    messages to send (event "opened", "resolved", "test") with their body
 *                 (the event as JSON, never a secret: the channel's URL and keys are
 *                 read from the config when it is sent), retried with backoff:
 *                 pending --claim--> sending (attempts + 1, a lease) --> sent | pending
 *                 again (next_at later) | failed. A sending row whose lease ran out
 *                 (its process died) is claimed again: delivery is at least once.
 *   observations  per destination, the records its last full read had.
 *
 * Order of calls after a run (src/alert/alert.c), inside state_begin/state_commit so a
 * crash never opens an incident without its message:
 *   state_alert_open(...)        -- *opened: a new incident; then state_alert_enqueue
 *   state_alert_resolve(...)     -- *resolved: it was open; then state_alert_enqueue
 * Delivery (any process): state_alert_claim -> send -> state_alert_done.
 *
 * Strings given are borrowed. A store older than version 5 (opened read-only) reads as
 * empty; writing to it, or to a read-only store, is JERR_STATE. Failures are JERR_STATE
 * (or JERR_STATE_BUSY) naming the store, the database's message as detail.
 */
#ifndef JOEY_STATE_ALERTS_H
#define JOEY_STATE_ALERTS_H

#include <stdbool.h>
#include <stdint.h>

#include "base/compat.h"
#include "base/error.h"
#include "base/strbuf.h"
#include "state/state.h"

/* The schema version that added the alert tables. */
#define STATE_ALERTS_SINCE 5

/*
 * The condition of (alert_id, dest_id, trigger) holds, seen by run_id (0: a periodic
 * check) at now. A new open incident is made with summary (*opened true), or the open
 * one gets hits + 1 and last_run_id/last_seen_at (*opened false). *incident_id: its id.
 */
enum jerr state_alert_open(struct state *st, const char *alert_id, const char *dest_id, const char *trigger,
			   int64_t run_id, const char *summary, int64_t now, int64_t *incident_id, bool *opened,
			   struct jerror *err) JOEY_WUR;
/* The condition cleared: the open incident (if any) is resolved at now (*resolved, *incident_id). */
enum jerr state_alert_resolve(struct state *st, const char *alert_id, const char *dest_id, const char *trigger,
			      int64_t now, int64_t *incident_id, bool *resolved, struct jerror *err) JOEY_WUR;
/* A message to send at once (next_at = now). incident_id 0, dest_id NULL: none (a test). */
enum jerr state_alert_enqueue(struct state *st, int64_t incident_id, const char *alert_id, const char *dest_id,
			      const char *event, const char *body, int64_t now, int64_t *delivery_id,
			      struct jerror *err) JOEY_WUR;

/* A claimed delivery (owned: state_alert_claimed_release). */
struct state_alert_claimed {
	int64_t id, incident_id, created_at;
	int attempts; /* this one included */
	struct strbuf alert_id, dest_id, event, body;
};
void state_alert_claimed_init(struct state_alert_claimed *c);
void state_alert_claimed_release(struct state_alert_claimed *c);
/*
 * Claim the oldest due delivery (pending with next_at <= now, or sending with its
 * lease run out) for lease_ms: it becomes sending, attempts + 1. *found false: none.
 * only_id > 0: that delivery only, whatever its next_at (a test sent at once).
 */
enum jerr state_alert_claim(struct state *st, int64_t now, int64_t lease_ms, int64_t only_id,
			    struct state_alert_claimed *c, bool *found, struct jerror *err) JOEY_WUR;
/*
 * How the attempt of claimed delivery id ended: sent (error NULL), or error (borrowed)
 * and then pending again at next_at, or failed for good when next_at is 0.
 */
enum jerr state_alert_done(struct state *st, int64_t id, const char *error, int64_t next_at, int64_t now,
			   struct jerror *err) JOEY_WUR;

/* The earliest next_at of a pending message (*found false: none pending). */
enum jerr state_alert_next_due(struct state *st, int64_t *next_at, bool *found, struct jerror *err) JOEY_WUR;

/* ---- listings (newest first; limit 0: no limit; before > 0: ids below it) ---- */

struct state_alert_incident {
	int64_t id;
	const char *alert_id, *dest_id, *trigger, *summary;
	int64_t opened_at, resolved_at; /* resolved_at 0: open */
	int64_t run_id, last_run_id, last_seen_at, hits;
};
typedef enum jerr (*state_alert_incident_fn)(void *ctx, const struct state_alert_incident *in,
					       struct jerror *err);
/* alert_id, dest_id NULL: all. */
enum jerr state_alert_incidents(struct state *st, const char *alert_id, const char *dest_id, bool open_only,
				size_t limit, int64_t before, state_alert_incident_fn fn, void *ctx,
				struct jerror *err) JOEY_WUR;

struct state_alert_delivery {
	int64_t id, incident_id;
	const char *alert_id, *dest_id, *event, *body, *status, *last_error; /* dest_id, last_error may be NULL */
	int attempts;
	int64_t next_at, created_at, sent_at; /* sent_at 0: not sent */
};
typedef enum jerr (*state_alert_delivery_fn)(void *ctx, const struct state_alert_delivery *d,
					       struct jerror *err);
enum jerr state_alert_deliveries(struct state *st, const char *alert_id, size_t limit, int64_t before,
				 state_alert_delivery_fn fn, void *ctx, struct jerror *err) JOEY_WUR;

/* ---- what the triggers read ---- */

/* Remember that dest_id's full read of run_id had records records. */
enum jerr state_alert_observe(struct state *st, const char *dest_id, int64_t run_id, uint64_t records, int64_t now,
			      struct jerror *err) JOEY_WUR;
/* The last observation of dest_id (*found false: none). */
enum jerr state_alert_observation(struct state *st, const char *dest_id, uint64_t *records, int64_t *run_id,
				  bool *found, struct jerror *err) JOEY_WUR;
/*
 * From the run history ("run" runs): when dest_id last finished a run with success
 * (*last_success_at, 0: never) and when its first run started (*first_run_at, 0: none).
 */
enum jerr state_alert_dest_times(struct state *st, const char *dest_id, int64_t *last_success_at,
				 int64_t *first_run_at, struct jerror *err) JOEY_WUR;

#endif
