/*
 * plan.h: what a run would send, per destination, without sending anything.
 *
 *   struct plan p;
 *   plan_init(&p, cfg, &opts);
 *   plan_compute(&p, st, &err);      -- one streaming pass per model (diff.h)
 *   plan_print_text(&p, stdout) / plan_print_json(&p, stdout);
 *   plan_release(&p);
 *
 * Per destination it counts creates, updates, deletes, unsubscribes and unchanged
 * records, the data points Braze would bill (attributes sent; identifiers and
 * subscription changes are free), pending retries, and trips the mass-delete guard
 * when deletes exceed max_delete_percent of the records the destination holds.
 * With opts.details every changed record is listed with its field changes (old ->
 * new) and group changes; they are spooled to a temporary file per destination so
 * memory stays constant.
 * A model with an incremental schedule is read as `joey run` would (run.h): since
 * the schedule's mark unless opts.full, and then nothing is deleted.
 */
#ifndef JOEY_PLAN_H
#define JOEY_PLAN_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#include "base/compat.h"
#include "base/error.h"
#include "config/config.h"
#include "engine/diff.h"
#include "engine/payload.h"
#include "state/state.h"

struct plan_opts {
	bool details;
	bool json;                 /* details are spooled as JSON instead of text */
	const char *only_dest;     /* one destination id, or NULL for all */
	double max_delete_percent; /* < 0: each destination's own setting */
	bool full;                 /* ignore the marks of incremental schedules */
	/* who compares (diff.h): diff when diff_set (--diff), else each model's
	 * destinations' options.diff */
	enum diff_mode diff;
	bool diff_set;
};

struct plan_dest {
	const struct cfg_destination *dest;
	uint64_t counts[DIFF__COUNT];
	/* unsubscribes of placeholders (diff_item.update_only): not weighed by the guard */
	uint64_t unguarded;
	uint64_t data_points;
	uint64_t subscribes, unsubscribes; /* group membership changes */
	uint64_t retries;                  /* items whose previous attempt failed */
	uint64_t state_records;            /* in-scope records before the run, when state_counted */
	bool state_counted;                /* false: an incremental pass that takes no one out
					      did not count them (its cost stays the changes') */
	double max_delete_percent;
	bool guard_tripped;
	FILE *details; /* spool, NULL without opts.details */
	uint64_t n_details;
};

struct plan_model {
	const struct cfg_model *model;
	struct record_stats stats;
	const struct cfg_schedule *schedule; /* incremental schedule, or NULL */
	bool incremental;   /* read since the mark in `since` (no deletes); false: full */
	struct strbuf since;
	/* the model's other incremental schedules (marks.h): ; schedule "id" since V ... */
	struct strbuf also;
	char why[256];      /* read in full although scheduled: why (marks.h) */
	json_t *schedules;  /* [{"id", "since"}] of every incremental schedule */
	enum diff_mode diff;       /* the mode asked for */
	struct diff_report report; /* what the pass did (warehouse diff or not) */
};

struct plan {
	const struct config *cfg;
	struct plan_opts opts;
	struct plan_dest *dests;
	size_t n_dests;
	struct plan_model *models;
	size_t n_models;
};

/*
 * cfg and opts are borrowed. Fails (JERR_USAGE) if opts->only_dest names no
 * destination; p then holds nothing (no plan_release needed).
 */
enum jerr plan_init(struct plan *p, const struct config *cfg, const struct plan_opts *opts,
		    struct jerror *err) JOEY_WUR;
enum jerr plan_compute(struct plan *p, struct state *st, struct jerror *err) JOEY_WUR;
/* Any destination tripped the mass-delete guard? */
bool plan_guard_tripped(const struct plan *p);
void plan_print_text(const struct plan *p, FILE *out);
void plan_print_json(const struct plan *p, FILE *out);
void plan_release(struct plan *p);

/* Data points an item costs: attribute fields sent, identifiers excluded. */
size_t plan_data_points(const struct payload_diff *d);

#endif
