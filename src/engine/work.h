/*
 * work.h: jobs split into work items, for workers that share a PostgreSQL state store
 * (docs/scaling.md). The queue itself is in the state store (state.h, "the work
 * queue"); this module decides what goes into it and what a finished item means.
 *
 *   work_enqueue(cfg, st, &req, &job_id, &dup, &err);  -- any process: split each
 *                          destination into key ranges, take the destinations' locks
 *                          and run rows for the job, queue one item per range
 *   state_work_claim(st, worker, lease, 0, &it, &found, &err);   -- a worker
 *   work_run_item(cfg, st, &it, &ro, &out, &err);      -- run it (run.h, struct run_part)
 *   work_finish_item(cfg, st, &it, worker, &out, &closed, &err);  -- record it; the
 *                          last item of a job closes the job: run rows, mark, locks
 *   work_outcome_release(&out);
 *   work_job_result(cfg, st, job_id, &r, &err);        -- a closed job as a struct run
 *
 * Partitions. A destination with N partitions (its option "partitions", or
 * work_request.partitions) is split into N ranges of its model's keys [lo, hi): the
 * first starts open and the last ends open, so a state row outside the keys the source
 * has now (a deleted record) still belongs to exactly one item. The bounds are
 * quantiles of the primary source's keys (those read since the mark, for an
 * incremental job), sampled in one key-only pass with bounded memory; the same rule
 * serves integer and text keys, since ranges are in key_compare order.
 *
 * The mass-delete guard is enforced by each item on its own range (its deletes
 * against the in-scope state rows of the range). That is never looser than the
 * guard on the whole destination: if every range deletes at most p% of its rows, the
 * run deletes at most p% of all of them. It can refuse a run the whole-destination
 * guard would allow (deletes bunched in one key range); --force overrides both.
 * Marks. A job follows every incremental schedule of its model as a single run does
 * (marks.h): it stores every schedule's mark when queued (work_jobs.marks), each item
 * loads them from there (run_part.marks) and reports the largest value each schedule's
 * source showed (its seen: {"<schedule id>": "<value>"}). The marks advance only when
 * every item of every destination of the job succeeded (no failed row), every item
 * read its sources to the end, and the job covers every destination of the model,
 * each to the largest value any item showed; otherwise they stay and the next job
 * reads the same rows again. (Jobs queued by an older joey, without marks, still read
 * and advance their primary schedule's mark alone.)
 *
 * Config. A job records the config generation it is queued with (work_publish_config,
 * state/confgen.h); a worker runs its items only with that config (work_item_config).
 */
#ifndef JOEY_WORK_H
#define JOEY_WORK_H

#include <stdbool.h>
#include <stdint.h>

#include "base/compat.h"
#include "base/error.h"
#include "config/config.h"
#include "engine/run.h"
#include "state/state.h"

/* Partitions per destination at most (options.partitions, --partitions). */
#define WORK_MAX_PARTITIONS 1024
/* An item claimed this many times (its workers kept dying on it) fails instead. */
#define WORK_MAX_CLAIMS 5

/* What to queue: one job, for destinations of one model. */
struct work_request {
	const struct cfg_model *model;
	/* destination ids (borrowed, all of model), or NULL: every destination of model */
	const char *const *dest_ids;
	size_t n_dests;
	int partitions;            /* > 0: this many per destination; 0: each one's option */
	bool full, force;          /* full: ignore the mark (a full read) */
	double max_delete_percent; /* < 0: each destination's own */
	const char *dedup;         /* see state_work_spec (NULL: none) */
};

/*
 * Queue a job (st must be a PostgreSQL store). On success *job_id > 0; *duplicate: a
 * job with req->dedup exists (nothing queued, *job_id 0). A destination that is locked
 * (running, or in another job) is JERR_STATE_BUSY naming the holder; nothing is queued.
 */
enum jerr work_enqueue(const struct config *cfg, struct state *st, const struct work_request *req,
		       int64_t *job_id, bool *duplicate, struct jerror *err) JOEY_WUR;

/*
 * work_enqueue failed with why (borrowed) before its job had run rows: the source could
 * not be read for the partitions' bounds, or the marks not loaded. Is that a failure of
 * the destinations' run (a source, config or connection error), not of the store or
 * the request? Then work_enqueue_failed records it as a failed run of each destination
 * of req (as a single run whose source fails is recorded), so the run history and the
 * alerts see it, and fills r (initialised here; run_release) with those runs. A
 * destination locked by someone else is left out. Problems are logged.
 */
bool work_enqueue_failure_is_run(const struct jerror *why);
void work_enqueue_failed(const struct config *cfg, struct state *st, const struct work_request *req,
			 const struct jerror *why, struct run *r);

/* What running an item gave (owned strings: work_outcome_release). */
struct work_outcome {
	struct state_work_result res; /* res.seen and res.error point into seen/error */
	struct strbuf seen, error;
	bool interrupted;             /* stopped (shutdown, or the lease was lost) */
	double elapsed_s;
	struct dest_stats stats;
};
void work_outcome_release(struct work_outcome *out);

/*
 * Run claimed item it (borrowed) against st: ro supplies the connector options and the
 * stop flag (only_dest, part, force and the guard are set from the item). Problems of
 * the item (destination gone from the config, claimed too often) become a failed
 * outcome; JERR_OK unless the state store failed before anything ran.
 */
enum jerr work_run_item(const struct config *cfg, struct state *st, const struct state_work_item *it,
			const struct run_opts *ro, struct work_outcome *out, struct jerror *err) JOEY_WUR;

/*
 * Record out for it in one transaction; if it was the job's last item, close the job in
 * the same transaction (*closed). Nothing is recorded when worker lost the item to
 * another worker (*held false).
 */
enum jerr work_finish_item(const struct config *cfg, struct state *st, const struct state_work_item *it,
			   const char *worker, const struct work_outcome *out, bool *held, bool *closed,
			   struct jerror *err) JOEY_WUR;

/*
 * Job job_id as a struct run (initialised here; run_release): one run_dest per
 * destination of cfg the job has, with the counts summed over its items; status
 * RUN_RUNNING while the job runs. *status is the job's.
 */
enum jerr work_job_result(const struct config *cfg, struct state *st, int64_t job_id, struct run *r,
			  enum run_status *status, struct jerror *err) JOEY_WUR;

/* ---- one config for a job (docs/scaling.md, "One config") ---- */

/*
 * Record cfg's generation (and its snapshot, unless a file holds a secret literally)
 * in st as published by origin (borrowed, e.g. "host:pid reload"). work_enqueue does
 * it for every job it queues; processes do it when they load or reload a config.
 */
enum jerr work_publish_config(const struct config *cfg, struct state *st, const char *origin,
			      struct jerror *err) JOEY_WUR;

/*
 * The config to run item it with, which must be the generation its job was queued
 * with: cfg (borrowed) when the job has none (queued by an older joey) or cfg's; else
 * *cache when it is that generation; else the config directory cfg->dir loaded again
 * if its files are now that generation; else the job's generation loaded from the
 * store's snapshot (co, borrowed, says how: the secrets file, the environment; the
 * files options name resolve from cfg->dir's root). A config loaded here replaces
 * *cache (owned by the caller; config_free). *use is cfg or *cache. When no config of
 * that generation can be had, *use is NULL and why says so (message, detail and hint
 * for a failed item). Fails (JERR_STATE) only when the store cannot be read.
 */
enum jerr work_item_config(const struct config *cfg, const struct config_opts *co, struct state *st,
			   const struct state_work_item *it, struct config **cache, const struct config **use,
			   struct jerror *why, struct jerror *err) JOEY_WUR;

/* ---- partitions (exposed for tests) ---- */

/* A bounded sample of a model's keys in key order (work_sample_*). */
struct work_sample;
/*
 * Read the keys of model's primary source (read: since a mark, or NULL) into a sample
 * of at most a few thousand keys, evenly spaced over all of them.
 */
enum jerr work_sample_keys(const struct config *cfg, const struct cfg_model *model,
			   const struct source_read *read, struct work_sample **out,
			   struct jerror *err) JOEY_WUR;
/* An empty sample; keys go in with work_sample_add, in increasing key order. */
struct work_sample *work_sample_new(void);
/* Add the next key (borrowed, copied if kept); a key equal to the last one is not counted again. */
void work_sample_add(struct work_sample *s, const struct rkey *k);
/* Keys seen (distinct). */
uint64_t work_sample_count(const struct work_sample *s);
/*
 * Up to n - 1 increasing bounds splitting the sampled keys into n ranges of about equal
 * size (fewer when there are fewer keys): bounds[i] (borrowed from s) starts range
 * i + 1. Returns how many bounds there are; ranges = that + 1.
 */
size_t work_sample_bounds(const struct work_sample *s, size_t n, const struct rkey **bounds);
void work_sample_free(struct work_sample *s);

#endif
