/*
 * run.h: `joey run`: make Braze match the warehouse for every destination.
 *
 *   struct run r;
 *   run_execute(&r, cfg, st, &opts, &err);   -- one streaming pass per model; each
 *                                               destination's changes go to its
 *                                               connector (dest.h); outcomes are
 *                                               committed to the state store per batch
 *   ... r.dests[i] has counts, status, error ...
 *   run_release(&r);
 *
 * Per destination: a lock in the state store keeps two runs apart; a run row records
 * status and counts; failed rows go to the error ledger and stay pending. Deletes are
 * held back (spooled to a temporary file) until the pass is over: if they exceed the
 * mass-delete guard and opts.force is not set they are not sent and the destination
 * fails with JERR_GUARD, while its creates and updates still go out.
 * On a fatal error (bad key, state write failure) the destination stops; what Braze
 * confirmed before stays committed, the rest is sent again by the next run.
 *
 * Incremental schedules (marks.h): a model whose primary source has one reads only
 * the records whose rows changed since the marks of its schedules, on any of its
 * sources (unless opts.full), and nothing is deleted for records that were not read.
 * Each schedule's mark advances to the largest value read only after the pass, when
 * every destination of the model took part and ended RUN_SUCCESS (no failed row):
 * otherwise it stays, and the next run reads the same rows again. A full run stores
 * the marks too.
 * Source rows that could not be read (a CSV row skipped as bad) make their records
 * unknown: nothing is deleted or unsubscribed and no group is left for the model
 * (diff_stream), each such row goes to the error ledger, and the destinations end
 * RUN_FAILED ("completed with N rows unreadable"), so the marks stay.
 */
#ifndef JOEY_RUN_H
#define JOEY_RUN_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "base/compat.h"
#include "base/error.h"
#include "config/config.h"
#include "dest/dest.h"
#include "engine/diff.h"
#include "state/state.h"

struct run;

/* The error of a run row whose only trouble is failed rows (the API calls such a run
 * "completed_with_failures"). */
#define RUN_ERROR_ROWS_FAILED "some records failed; see the error ledger"

/*
 * What a finished run means for a person, the one classification the API, `joey run`
 * and `joey status` share: "completed_with_failures" for a failed run whose only trouble
 * is rows Braze refused while the others went out (a run where every row it had to send
 * failed, as when Braze answered only 5xx, stays "failed"), otherwise run_status_name.
 * error: the run's error (NULL: none); c its counts. Returns a static string.
 */
const char *run_outcome_name(enum run_status status, const char *error, const struct run_counts *c);
/* The same in words for text output: "completed with 3 failed rows", "success", ...;
 * writes into buf (n bytes) and returns it. */
const char *run_outcome_words(char *buf, size_t n, enum run_status status, const char *error,
			      const struct run_counts *c);

/*
 * One work item of a job (workers, docs/scaling.md): the run covers one key range of
 * one destination, inside a job that holds the destination's lock and run row. So no
 * lock is taken and no run row started or finished; the mass-delete guard weighs the
 * deletes of the range against the state rows of the range; the read starts from the
 * job's mark (since; NULL: a full read) and no mark is stored (the job stores it once
 * every item succeeded). r->models still says what was read (read_ok, seen).
 */
struct run_part {
	struct key_range range; /* bounds borrowed */
	int64_t run_id;         /* the destination's run row (the job's) */
	const char *since;      /* borrowed; NULL: full read (jobs without marks) */
	/* the job's marks (marks.h, model_marks_job_text; borrowed): the item reads as a
	 * run would with them, every schedule counting; NULL: an older job, read through
	 * the primary source's schedule from since */
	const char *marks;
};

struct run_opts {
	bool force;                /* send deletes past the mass-delete guard */
	const char *only_dest;     /* one destination id, or NULL */
	/* or a set of destination ids (borrowed), when n_only_dests > 0 */
	const char *const *only_dests;
	size_t n_only_dests;
	double max_delete_percent; /* < 0: each destination's own */
	struct dest_opts dest;     /* connector options */
	FILE *progress;            /* progress line target (a TTY), or NULL */
	volatile int *stop;        /* set non-zero (e.g. by SIGTERM) to stop early */
	bool full;                 /* ignore the marks of incremental schedules */
	/*
	 * Called on the running thread about four times a second and once at the end
	 * (r borrowed for the call: its counts, records and dests[i].run_id), e.g. to
	 * publish live progress. NULL: none.
	 */
	void (*on_progress)(void *ctx, const struct run *r);
	void *progress_ctx;
	/* a work item (borrowed; with exactly one destination in only_dest), or NULL */
	const struct run_part *part;
	/* who compares (diff.h): diff when diff_set (--diff), else each model's
	 * destinations' options.diff */
	enum diff_mode diff;
	bool diff_set;
	/* what started the run, for the sync log ("cli", "schedule", "api", ...; NULL: "cli") */
	const char *trigger;
};

struct run_dest {
	const struct cfg_destination *dest;
	struct run_counts counts;
	struct dest_stats stats;
	uint64_t state_records;
	uint64_t deletes_held; /* deletes not sent because of the guard */
	/* source rows of its model that could not be read: the run ends RUN_FAILED */
	uint64_t unreadable;
	uint64_t doubt_held;   /* deletes, unsubscribes and group exits held back for them */
	struct strbuf unreadable_at; /* where they are, one per line (the first few) */
	double max_delete_percent;
	int64_t run_id;
	enum run_status status;
	struct jerror err; /* why it failed */
	double elapsed_s;
	uint64_t records_read; /* records of its model read this run (alerts: recordsDropPercent) */
	/* the sync log (engine/synclog.h), when the destination has one */
	bool sync_log;
	const char *sync_log_status;  /* "complete" or "pending" */
	uint64_t sync_log_rows;       /* record rows of this run written to the log */
	uint64_t sync_log_pending;    /* record rows still in the outbox */
	struct strbuf sync_log_error; /* why it is pending */
};

/* One incremental schedule of a model (a model may have one per source). */
struct run_model {
	const struct cfg_model *model;
	const struct cfg_schedule *schedule;
	bool incremental;   /* read since the mark in `since`; false: a full read */
	bool read_ok;       /* the pass over the sources completed */
	bool mark_saved;    /* `seen` is now the schedule's mark */
	struct strbuf since; /* the mark the read started from (empty: none) */
	struct strbuf seen;  /* the largest value read (empty: nothing read) */
};

struct run {
	struct run_dest *dests;
	size_t n_dests;
	struct run_model *models; /* only models with an incremental schedule */
	size_t n_models;
	uint64_t records;
	/* the warehouse diff (only when some model asked for it) */
	bool diff_asked;
	uint64_t warehouse_models, records_read, candidates, digests;
};

enum jerr run_execute(struct run *r, const struct config *cfg, struct state *st,
		      const struct run_opts *opts, struct jerror *err) JOEY_WUR;
/* Did every destination succeed with no failed rows? */
bool run_ok(const struct run *r);
void run_print_text(const struct run *r, FILE *out);
void run_print_json(const struct run *r, FILE *out);
void run_release(struct run *r);

#endif
