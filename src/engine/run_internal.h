/*
 * run_internal.h: what the pieces of `joey run` (run.c and its run_*.c files) share;
 * not for callers outside src/engine/run*.c, who use run.h.
 *
 * Who holds what: run_execute (run.c) owns the run's struct pass, the array of
 * struct dest_ctx (one per destination) and the struct batch of answers not yet
 * written; every other piece borrows them for the length of the call.
 *
 *   run.c          the driver: picks the destinations, one pass per model, the marks
 *   run_dest.c     a destination's life: run_start_dest .. run_fail_dest .. run_end_dest
 *   run_items.c    diff items to connector changes (run_visit), held-back deletes
 *   run_answers.c  Braze's answers to the state store in batches (run_on_outcomes)
 *   run_print.c    the run's report, as text and as JSON
 *
 * Every function here runs on the run's thread (one struct state stays on one thread).
 */
#ifndef JOEY_RUN_INTERNAL_H
#define JOEY_RUN_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "base/arena.h"
#include "base/compat.h"
#include "base/error.h"
#include "base/strbuf.h"
#include "engine/diff.h"
#include "engine/run.h"
#include "engine/synclog.h"

struct batch;

struct dest_ctx {
	struct run_dest *rd;
	struct state *st;
	struct batch *batch; /* Braze's answers not yet written (shared: one store) */
	size_t batched;      /* of them, this destination's */
	const struct run_opts *opts;
	const struct dest_ops *ops;
	void *h;
	FILE *spool;          /* held-back deletes */
	uint64_t n_spooled;
	uint64_t n_unguarded; /* of them, releases of placeholders: not weighed by the guard */
	bool counted;         /* rd->state_records is known (the mass-delete guard's weight) */
	bool failed, locked, started;
	double last_heartbeat;
	struct arena arena;
	struct pass *pass; /* for progress reports while the connector waits */
	struct synclog *log; /* the destination's sync log, or NULL */
	/* the run's sent-keys journal (state_journal_start; NULL: none, or a work item) */
	struct state_journal *journal;
	int64_t started_ms;
};

struct pass {
	struct dest_ctx **ctx; /* by destination of the current model */
	size_t n;
	struct run *r;
	const struct run_opts *opts;
	uint64_t items;
	double t0, last_progress;
};

/* Braze's answers kept, not yet written (run_answers.c); bytes holds their strings. */
/* batch_keep (run_answers.c) sets every member, with no zeroing first: a new member must be set there too. */
struct held {
	struct dest_ctx *dc;
	enum dest_result result;
	enum dest_op op;
	bool in_scope, is_int;
	int attempts;
	int64_t key_int, at;             /* at: epoch ms of the answer */
	/* offsets into batch.bytes; payload: the new one, or a failed row's fail_payload */
	size_t key, key_len, payload, payload_len, error;
	unsigned char hash[STATE_HASH_LEN];
};

struct batch {
	struct state *st;
	struct dest_ctx *all; /* the run's destinations */
	size_t n_all;
	struct held *v;
	size_t n, alloc;
	struct strbuf bytes;
	double t0; /* when the oldest kept answer came */
};

/* run.c */
double run_now_s(void); /* monotonic seconds */
/* Report progress (at most every 0.25 s unless final) to opts->progress / on_progress. */
void run_progress(struct pass *p, bool final);

/* run_answers.c: outcomes → state */
/* Refresh dc's lock (every minute at most), writing the kept answers first. */
enum jerr run_heartbeat(struct dest_ctx *dc, struct jerror *err) JOEY_WUR;
/*
 * Write what b keeps in one transaction, with the run rows' counts. On failure nothing
 * of it is stored: every destination with answers in it fails, and err says what failed.
 */
enum jerr run_batch_flush(struct batch *b, struct jerror *err);
/* Flush when the oldest kept answer is BATCH_SECONDS old (failures fail destinations). */
void run_batch_flush_old(struct batch *b);
/* The connector's sink (dest.h): vctx is the struct dest_ctx. */
enum jerr run_on_tick(void *vctx, struct jerror *err);
enum jerr run_on_outcomes(void *vctx, const struct dest_outcome *o, size_t n, struct jerror *err);
enum jerr run_on_sending(void *vctx, const struct rkey *const *keys, size_t n, struct jerror *err);

/* run_dest.c: a destination's life */
/* Fail dc with a copy of e (the first failure wins). */
void run_fail_dest(struct dest_ctx *dc, const struct jerror *e);
/* The connector stopped dc: fail it, and note Braze's error once in the ledger. */
void run_fail_dest_connector(struct dest_ctx *dc, const struct jerror *e);
/* Lock, start the run row and open the connector; a destination-only failure fails dc and returns JERR_OK. */
enum jerr run_start_dest(struct dest_ctx *dc, const struct config *cfg, struct jerror *err) JOEY_WUR;
/* Send what was held back, finish the connector, write the last answers and the run row. */
void run_end_dest(struct dest_ctx *dc, double elapsed);
/*
 * The guard's count when the pass could not take it: the in-scope rows now, less every
 * record this run confirmed (each may have added one), so never more than before the
 * run: the guard is then stricter, never looser. Sets dc->counted; a state error is
 * returned in err.
 */
enum jerr run_count_late(struct dest_ctx *dc, struct jerror *err) JOEY_WUR;

/* run_items.c: diff items → changes */
/* The diff visitor (diff.h): vctx is the struct pass. */
enum jerr run_visit(void *vctx, const struct diff_item *it, struct jerror *err);
enum jerr run_visit_unchanged(void *vctx, const struct cfg_destination *dest, uint64_t n, struct jerror *err);
/* Send the held-back deletes and unsubscribes if the guard allows them. */
void run_send_held(struct dest_ctx *dc);

#endif
