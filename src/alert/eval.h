/*
 * eval.h: does an alert's trigger fire? Pure functions of a run's facts (or of the
 * destination's run history, for noSuccessFor), no I/O: tests/unit/alert/eval.c.
 *
 * Each trigger of an alert (struct cfg_alert, docs/config.md "Alerts") gets a verdict
 * per destination: FIRING (the condition holds: open an incident, or keep it open),
 * CLEAR (it does not: resolve an open incident) or UNKNOWN (this run says nothing
 * about it, e.g. an interrupted run: leave the incident as it is). alert.c turns
 * verdicts into incidents and messages.
 */
#ifndef JOEY_ALERT_EVAL_H
#define JOEY_ALERT_EVAL_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "base/strbuf.h"
#include "config/config.h"
#include "state/state.h"

enum alert_trigger {
	AT_RUN_FAILED,         /* runFailed */
	AT_FAILED_ROWS,        /* failedRows */
	AT_FAILED_ROWS_PERCENT, /* failedRowsPercent */
	AT_NO_SUCCESS,         /* noSuccessFor */
	AT_DELETE_GUARD,       /* deleteGuard */
	AT_RECORDS_DROP,       /* recordsDropPercent */
	AT_RUN_LONGER,         /* runLongerThan */
	AT__COUNT
};

enum alert_verdict { AV_UNKNOWN, AV_CLEAR, AV_FIRING };

/* The config name of t ("runFailed", ...); NULL for an unknown value. */
const char *alert_trigger_name(enum alert_trigger t);
/* Is trigger t configured (on) in a? */
bool alert_trigger_on(const struct cfg_alert *a, enum alert_trigger t);
/*
 * The triggers a sets, as the Alert class writes them ({"runFailed": true, "failedRows":
 * 10, ...}, in enum order): a new object, owned by the caller. joey validate --json and
 * GET /api/v1/alerts show them.
 */
json_t *alert_triggers_json(const struct cfg_alert *a);
/* Is destination d in a's scope (destinationIds, else modelId, else all)? */
bool alert_covers(const struct cfg_alert *a, const struct cfg_destination *d);

/* What one destination's run did (alert.c fills it from engine/run.h's struct run_dest). */
struct alert_run_facts {
	int64_t run_id;
	enum run_status status;
	struct run_counts counts;
	uint64_t deletes_held; /* deletes the mass-delete guard held back */
	/* the run failed as a whole (a connector, source or state error, the guard,
	 * unreadable rows), not only some of its rows */
	bool run_error;
	const char *error;     /* its message (borrowed), or NULL */
	int64_t elapsed_ms;
	/* the run read every record of the model to the end (not an incremental read, not
	 * a failed read): only then records counts for recordsDropPercent */
	bool full_read;
	uint64_t records;
	bool have_prev;        /* prev_records: the previous full read's count */
	uint64_t prev_records;
};

/*
 * The verdict of trigger t (not AT_NO_SUCCESS) of a for the run f. summary (reset
 * first) gets one line saying what fired ("run 12 failed: ..."), or why it cleared.
 */
enum alert_verdict alert_eval_run(const struct cfg_alert *a, enum alert_trigger t, const struct alert_run_facts *f,
				  struct strbuf *summary);

/*
 * noSuccessFor at now: last_success_at is when the destination last finished a run
 * with success (0: never), first_run_at when its first run started (0: it never ran:
 * UNKNOWN). FIRING when the time since the last success (or, never successful, since
 * the first run) exceeds a->no_success_ms.
 */
enum alert_verdict alert_eval_stale(const struct cfg_alert *a, int64_t now, int64_t last_success_at,
				    int64_t first_run_at, struct strbuf *summary);

/* "6 h 5 min", "45 s": a duration for people (appended to sb). */
void alert_duration_text(int64_t ms, struct strbuf *sb);

#endif
