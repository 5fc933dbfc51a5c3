/*
 * synclog.h: a destination's sync log, what each run did, written into tables of a
 * database the user names (options.syncLogAppId; the writers are src/synclog/db.h).
 * Design and guarantees: docs/internals/export.md "Sync logs in the warehouse".
 *
 * One struct synclog per destination and run, used by the run's thread; a writer
 * thread of its own talks to the log database, so the export never waits for it.
 *
 *   l = synclog_start(cfg, dest, st, &info);       -- after the run row exists; NULL: no log
 *   per answered batch, inside the transaction that commits it to the state store:
 *     synclog_stage(l, st, outcomes, n, &err);     -- its log rows go to the outbox
 *     ... state_commit ...; synclog_committed(l);  -- or synclog_rolled_back(l)
 *   a row that failed before it was sent, inside its transaction:
 *     synclog_stage_local(l, st, key, attempts, why, &err)
 *   synclog_finish(l, st, &summary, &result);      -- after state_run_finish: the rest
 *                                                     of the outbox, the summary,
 *                                                     retention; frees l
 *
 * The rows of a batch enter the outbox (state.h) in the transaction that commits the
 * batch: the outbox says exactly what the state store says Braze answered, never more.
 * The writer thread copies them into the log database and only then are they deleted
 * from the outbox, so rows a crash or an unreachable log database kept from the log
 * are written by a later run of the destination. Writes are idempotent (db.h), so a
 * row written twice is one row.
 */
#ifndef JOEY_ENGINE_SYNCLOG_H
#define JOEY_ENGINE_SYNCLOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/compat.h"
#include "base/error.h"
#include "base/strbuf.h"
#include "config/config.h"
#include "dest/dest.h"
#include "state/state.h"

struct synclog;

/* What the summary row says (strings borrowed for the call). */
struct synclog_summary {
	int64_t run_id;
	const char *trigger;   /* "cli", "schedule", "api", "retry", "worker" */
	int64_t started_ms;
	int64_t records_read;  /* < 0: unknown */
	enum run_status status;
	const struct run_counts *counts;
	const char *error;     /* NULL: none */
	bool part;             /* a worker's work item: record rows only, no summary */
	/* set (SIGTERM): synclog_finish only waits for what the writer has; the rest waits */
	volatile int *stop;
};

/* How the log of a run ended (synclog_finish). */
struct synclog_result {
	const char *status;    /* "complete" or "pending" (static) */
	uint64_t rows;         /* record rows of this run written to the log database */
	uint64_t pending;      /* record rows of the destination still in the outbox */
	struct strbuf error;   /* why not complete; empty when complete */
};
void synclog_result_release(struct synclog_result *res);

/*
 * Start the log of dest's run (s->run_id, the other fields as known at the start) if
 * dest has one: start the writer thread (which connects), queue the summary as
 * running, record the run's log status "writing" in st. NULL when dest has no sync log.
 * Never fails: a log that cannot be written is reported by synclog_finish.
 */
struct synclog *synclog_start(const struct config *cfg, const struct cfg_destination *dest, struct state *st,
			      const struct synclog_summary *s);

/*
 * Inside the transaction that commits outcomes o[0..n) (borrowed) to st: put their log
 * rows into the outbox (and drop from it rows the writer has written). A failure is
 * the state store's (JERR_STATE...): roll the transaction back as for any write.
 */
enum jerr synclog_stage(struct synclog *l, struct state *st, const struct dest_outcome *o, size_t n,
			struct jerror *err) JOEY_WUR;
/*
 * For callers that commit answers in batches: synclog_keep encodes the log rows of
 * outcomes o[0..n) (borrowed only for the call) when they arrive, outside any
 * transaction; synclog_stage_kept then puts everything kept into the outbox inside the
 * transaction that commits those outcomes, followed by synclog_committed or
 * synclog_rolled_back as for synclog_stage.
 */
void synclog_keep(struct synclog *l, const struct dest_outcome *o, size_t n);
enum jerr synclog_stage_kept(struct synclog *l, struct state *st, struct jerror *err) JOEY_WUR;
/* The same for one row that failed before it was sent (key, why borrowed). */
enum jerr synclog_stage_local(struct synclog *l, struct state *st, const struct rkey *key, int attempts,
			      const char *why, struct jerror *err) JOEY_WUR;
/* The transaction committed: hand the staged rows to the writer (or leave them in the outbox). */
void synclog_committed(struct synclog *l);
/* The transaction was rolled back: forget what was staged. */
void synclog_rolled_back(struct synclog *l);

/*
 * The run is over (s: its end): write what the outbox still holds for the destination
 * (this run's rows the writer did not take, and earlier runs'), the summary, the
 * summaries of earlier runs whose log was incomplete, then delete rows older than
 * syncLogRetentionDays; stop the writer; record the log status of the run in st. res
 * is initialised here (synclog_result_release). Frees l. l NULL: res says nothing.
 */
void synclog_finish(struct synclog *l, struct state *st, const struct synclog_summary *s,
		    struct synclog_result *res);

/* ---- the outbox's row format (exposed for tests) ---- */

enum synclog_op { SYNCLOG_CREATE, SYNCLOG_UPDATE, SYNCLOG_DELETE, SYNCLOG_UNSUBSCRIBE, SYNCLOG_ENRICH };
enum synclog_status { SYNCLOG_CONFIRMED, SYNCLOG_FAILED, SYNCLOG_NOT_IN_BRAZE };

/* One decoded row (borrowed from the body it was decoded from). */
struct synclog_entry {
	enum synclog_op op;
	enum synclog_status status;
	struct rkey key;
	int attempt;
	int64_t at_ms;
	struct slice changed; /* JSON array; empty: none */
	struct slice error;   /* empty: none */
	bool local;           /* failed before it was sent (error code "local") */
};

/* Encoding: synclog_body_begin, synclog_body_add for each row, synclog_body_end. */
struct synclog_body {
	struct strbuf rows, strings;
	uint32_t n_rows, n_strings;
	struct slice *dict; /* the strings so far, borrowed from the entries added until synclog_body_end */
	size_t dict_alloc;
};
void synclog_body_begin(struct synclog_body *b);
/* Add e (its strings borrowed until synclog_body_end; key, changed and error are copied then). */
void synclog_body_add(struct synclog_body *b, const struct synclog_entry *e);
/* The body of run_id's destination dest_id (borrowed) into out (reset first). */
void synclog_body_end(struct synclog_body *b, int64_t run_id, const char *dest_id, struct strbuf *out);
void synclog_body_release(struct synclog_body *b);

/*
 * Decode body: the run and destination (dest points into body), and fn for each row
 * (strings borrowed from body for the call). JERR_STATE for a body that is not one.
 */
enum jerr synclog_body_decode(struct slice body, int64_t *run_id, struct slice *dest,
			      enum jerr (*fn)(void *ctx, const struct synclog_entry *e, struct jerror *err), void *ctx,
			      uint32_t *n_rows, struct jerror *err) JOEY_WUR;

const char *synclog_op_name(enum synclog_op op);
const char *synclog_status_name(enum synclog_status s);
/*
 * error_code of a failed row from its message: "local", "retries_exhausted",
 * "http_NNN" (written into buf), "rejected". Returns a static string or buf.
 */
const char *synclog_error_code(const char *msg, bool local, char buf[16]);

#endif
