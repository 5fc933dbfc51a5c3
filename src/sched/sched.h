/*
 * sched.h: when runs are due, and the queue that keeps one run per destination.
 *
 * A pure state machine: no threads, no clock of its own (every call takes now_ms, so
 * tests drive it with a fake clock), no I/O. The server (src/server) owns one, calls it
 * under its own mutex, and starts the jobs it hands out on worker threads.
 *
 *   struct sched *s = sched_new();
 *   sched_set_config(s, cfg, now);                 -- on load and on every reload
 *   sched_set_last_run(s, dest_id, started_at);    -- from the run history, at start
 *   loop:
 *     wait = sched_tick(s, now);                   -- fires due schedules
 *     while (sched_take(s, now, &job)) start(job); -- one job per model, never a
 *                                                     destination that is running
 *     ... when a job ends: sched_done(s, &job, now); sched_job_release(&job);
 *     sleep up to wait ms (or until woken by a request or a finished job)
 *   sched_free(s);
 *
 * Unit of work: a destination. A request (a due schedule, the API, a retry) marks the
 * destinations it names as wanted. sched_take groups the wanted destinations that are
 * not running by model into one job (one read of the model's sources feeds all of
 * them) and marks them running. A destination asked for while it runs is queued once:
 * however many requests arrive meanwhile, it runs once more after the current run,
 * never stacked. Flags of merged requests are OR-ed (full, force).
 *
 * Schedules (cfg_schedule of a source; a schedule fires runs of every destination of
 * its source's model):
 *   - recurring with recurring_frequency_ms > 0: due a frequency after the later of
 *     its last fire and the oldest of the last run starts of the model's destinations
 *     (each given by sched_set_last_run or seen through sched_take, whatever the
 *     trigger): a run of every destination of the model (the schedule's own, or one
 *     the API asked for the model) postpones it, a run of some of them does not, so
 *     no destination goes a frequency without a run started; never fired and a
 *     destination that never ran: due at once;
 *   - cron (options.cron, UTC): due at each matching minute after the config was
 *     loaded (missed minutes while joey was down are not caught up);
 *   - not recurring and no cron: only on demand.
 * cron, when set, wins over recurringFrequency and applies whether or not `recurring`
 * is set (config validation lets a recurring schedule give cron instead of a
 * frequency). A recurring schedule with a frequency of 0 and no cron is on demand.
 * When a schedule fires, its next due time is computed from the fire time, so a slow
 * run does not make runs pile up: at most one queued run per destination.
 * Times past the now_ms of a tick (the wall clock went back) count as that now_ms: a
 * schedule then waits one frequency, or its next matching minute, at most. The caller
 * leaves out of sched_set_last_run any run history that started past now.
 *
 * Config reload (sched_set_config): schedules are matched by id; a schedule whose
 * timing did not change keeps its next due time. Wanted/running marks of destinations
 * that no longer exist are dropped once they are not running. Pointers into cfg are
 * not kept: ids are copied. A schedule whose timing changed gets a fresh next due time
 * (frequency: last fire or last run + the new frequency; cron: the next matching
 * minute after the reload) and keeps its last fire time.
 *
 * A destination removed by a reload while it runs stays running (sched_dest_running)
 * until sched_done, but its wanted mark is dropped at once and it is never handed out
 * again; requests naming it fail as for any unknown destination.
 */
#ifndef JOEY_SCHED_H
#define JOEY_SCHED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/compat.h"
#include "config/config.h"

enum sched_trigger { SCHED_TRIGGER_SCHEDULE, SCHED_TRIGGER_API, SCHED_TRIGGER_RETRY };
/* "schedule", "api", "retry" ("unknown" for any other value) */
const char *sched_trigger_name(enum sched_trigger t);

struct sched;

/*
 * A job handed out by sched_take: everything owned by the job (sched_job_release).
 * trigger and requested_at come from the oldest request merged in; schedule_id is the
 * schedule of the oldest schedule request merged in (so it may be set even when an
 * earlier API request gives trigger "api"), NULL when no schedule fired for it.
 */
struct sched_job {
	char *model_id;
	char **dest_ids; /* destinations of model_id, in config order */
	size_t n_dests;
	enum sched_trigger trigger; /* of the oldest request merged into the job */
	char *schedule_id;          /* a schedule that fired it (see above), or NULL */
	bool full, force;
	int64_t requested_at;       /* oldest request merged in */
	uint64_t seq;               /* 1, 2, ... in hand-out order; sched_done uses it */
};

/* What a request did to each destination it named (for the API's answer). */
struct sched_request_result {
	size_t n_started; /* not running: will be handed out by the next sched_take (or already wanted) */
	size_t n_queued;  /* running: queued once (or already queued) */
};

/* A scheduler with no config (owned by the caller: sched_free). Never NULL. */
struct sched *sched_new(void);
/* Frees s and everything it holds; s may be NULL. Jobs handed out stay valid. */
void sched_free(struct sched *s);

/*
 * Replace the schedules and destinations by those of cfg (borrowed for the call; NULL
 * means none). Destinations are read from each model's destinations, models from
 * cfg->models, schedules from cfg->schedules; a schedule's model is its source's.
 */
void sched_set_config(struct sched *s, const struct config *cfg, int64_t now_ms);
/*
 * Start the schedules of cfg (borrowed for the call) afresh, as if just loaded (a worker
 * that becomes the scheduler leader); the destinations and the runs asked for stay.
 */
void sched_restart_schedules(struct sched *s, const struct config *cfg, int64_t now_ms);
/*
 * The last start of a run of dest_id (borrowed), e.g. from the state store's history.
 * The later of this and what is known wins, so history can be fed in any order.
 * Ignored if dest_id is not a destination of the current config.
 */
void sched_set_last_run(struct sched *s, const char *dest_id, int64_t started_at_ms);

/*
 * Ask for runs. model_id and dest_id are borrowed; both NULL: every destination;
 * model_id: its destinations; dest_id: that one (if model_id is given too, the
 * destination must belong to it). Returns false (nothing changed) if the model or
 * destination is unknown. res may be NULL; otherwise it is always filled (zero on
 * failure).
 */
bool sched_request(struct sched *s, const char *model_id, const char *dest_id,
		   enum sched_trigger trigger, bool full, bool force, int64_t now_ms,
		   struct sched_request_result *res);

/*
 * Fire the schedules due at now_ms (each fires once, however late the tick). Returns
 * ms until the next one is due (> 0), or -1 when no schedule has a due time.
 */
int64_t sched_tick(struct sched *s, int64_t now_ms);
/*
 * Would sched_tick(s, now_ms) fire a schedule? Nothing changes. The server then reads
 * the run history first (sched_set_last_run), so runs another process started (a
 * `joey run` from cron, a second `joey serve`) count before the schedule fires.
 */
bool sched_any_due(const struct sched *s, int64_t now_ms);

/*
 * Hand out the next job (true): the model holding the oldest request first, with all
 * of its wanted destinations that are not running; they become running and their
 * last run is now_ms. *job (overwritten, not released) is then owned by the caller.
 * False when nothing wanted is startable; *job is then zeroed.
 */
bool sched_take(struct sched *s, int64_t now_ms, struct sched_job *job);
/*
 * The job (borrowed) ended, whatever its outcome: its destinations are no longer
 * running (those wanted meanwhile become takeable; removed ones are dropped). A
 * destination that is not running, or now runs in a later job (a repeated sched_done),
 * is left alone.
 */
void sched_done(struct sched *s, const struct sched_job *job, int64_t now_ms);
/* Free what job holds and zero it; a zeroed job may be released again. */
void sched_job_release(struct sched_job *job);

/* Introspection for the API and metrics (all borrowed until the next call on s). */
bool sched_dest_running(const struct sched *s, const char *dest_id);
bool sched_dest_queued(const struct sched *s, const char *dest_id); /* wanted while running, or wanted and not yet taken */
size_t sched_queue_depth(const struct sched *s);  /* destinations wanted, not running */
/*
 * Next due / last fire of a schedule id (borrowed); -1 if none or unknown. A frequency
 * schedule that never ran is due at the time its config was loaded (at once).
 */
int64_t sched_next_due(const struct sched *s, const char *schedule_id);
int64_t sched_last_fired(const struct sched *s, const char *schedule_id);

#endif
