/* worker.c: a worker process: claiming and running work items, leases, election, shared rate. */
#include "server/worker.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "base/log.h"
#include "base/xalloc.h"
#include "dest/ratelimit.h"
#include "engine/work.h"
#include "state/state.h"

/*
 * Design note. Four connections to the store, each used by one thread at a time:
 *   run_st    the thread calling worker_run_items: claims, runs, finishes items;
 *   keep_st   the keeper thread: lease renewal (state_work_heartbeat);
 *   lead_st   the keeper thread: the leader's session lock and nothing else, since the
 *             connection is the lease;
 *   rate_st   whoever sends to Braze: the shared rate buckets, under rate_lock.
 * The keeper wakes every KEEPER_TICK_MS: it passes a shutdown on to the running item
 * (item_stop), renews leases every lease / 3, writes the running item's counts so far
 * every PROGRESS_MS (the live view of its job), and checks the leadership every
 * LEADER_CHECK_MS. A connection that fails is closed and opened again on next use.
 */

#define KEEPER_TICK_MS 100
#define LEADER_CHECK_MS 2000
#define PROGRESS_MS 1000
#define SWEEP_MS 60000                             /* the leader tidies the queue this often */
#define KEEP_JOBS_MS (7LL * 24 * 3600 * 1000)      /* finished jobs are kept a week */

struct worker {
	struct worker_opts o;
	char id[320];

	pthread_t keeper;
	bool keeper_live;
	volatile int quit; /* the keeper ends */

	pthread_mutex_t lock;   /* guards the fields below */
	int64_t cur_item;       /* the item being run, 0 none */
	int64_t renewed_ms;     /* last time its lease was renewed (monotonic), at claim too */
	/* renewed_ms + lease_margin, 0 without an item (lease_renewed): no request starts
	 * after it (dest_opts.send_until), so a worker paused past its lease sends nothing
	 * on waking before the keeper hears that the item is lost */
	_Atomic int64_t send_until;
	bool cur_held;          /* the last renewal still found it ours */
	bool leader;
	volatile int item_stop; /* stops the running item: shutdown, lost or unrenewed lease */
	volatile int lost;      /* the running item was taken over by another worker */
	struct run_counts cur_counts; /* the running item's counts so far (run_execute's progress) */
	bool counts_new;              /* not yet written to the store */

	struct state *run_st, *keep_st, *lead_st;

	struct config *job_cfg; /* the last job config of another generation (run thread) */

	pthread_mutex_t rate_lock;
	struct state *rate_st;
	int64_t rate_failed_ms; /* last failure, for logging once in a while */
};

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* How long after a renewal the item is still surely ours: five sixths of the lease. */
static int64_t lease_margin(const struct worker *w)
{
	return w->o.lease_ms * 5 / 6;
}

/* The running item's lease was renewed (or taken) at t, monotonic (w->lock held). */
static void lease_renewed(struct worker *w, int64_t t)
{
	w->renewed_ms = t;
	atomic_store(&w->send_until, t + lease_margin(w));
}

static void sleep_ms(int64_t ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

static enum jerr ensure(struct worker *w, struct state **st, struct jerror *err)
{
	if (*st)
		return JERR_OK;
	return state_open(w->o.state_path, STATE_OPEN_CREATE, st, err);
}

static void drop(struct state **st)
{
	state_close(*st);
	*st = NULL;
}

/* ---- the shared rate budget ---- */

static int rate_take(void *ctx, const char *key, double capacity, double rate_per_ms, int want, int *got,
		     int64_t *wait_ms)
{
	struct worker *w = ctx;
	struct jerror err = JERROR_INIT;
	int rc = 0;

	pthread_mutex_lock(&w->rate_lock);
	if (ensure(w, &w->rate_st, &err) ||
	    state_rate_take(w->rate_st, key, capacity, rate_per_ms, want, got, wait_ms, &err)) {
		int64_t now = mono_ms();
		if (!w->rate_failed_ms || now - w->rate_failed_ms > 60000) {
			log_warn("the shared Braze rate budget is out of reach, this worker keeps to the limit on "
				 "its own meanwhile: %s",
				 err.msg.buf);
			w->rate_failed_ms = now;
		}
		drop(&w->rate_st);
		rc = -1;
	}
	pthread_mutex_unlock(&w->rate_lock);
	jerror_release(&err);
	return rc;
}

/* ---- the keeper ---- */

static void on_held(void *ctx, int64_t item_id)
{
	struct worker *w = ctx;
	if (item_id == w->cur_item) /* under w->lock */
		w->cur_held = true;
}

static void renew(struct worker *w)
{
	struct jerror err = JERROR_INIT;
	int64_t t0 = mono_ms();

	pthread_mutex_lock(&w->lock);
	w->cur_held = false;
	int64_t item = w->cur_item;
	/* the callback runs under the lock: cur_item cannot change meanwhile */
	enum jerr rc = ensure(w, &w->keep_st, &err);
	if (!rc)
		rc = state_work_heartbeat(w->keep_st, w->id, w->o.lease_ms, on_held, w, &err);
	if (rc) {
		log_warn("could not renew the leases of worker %s: %s", w->id, err.msg.buf);
		drop(&w->keep_st);
	} else if (item && item == w->cur_item) {
		if (w->cur_held) {
			lease_renewed(w, t0); /* the lease runs from before the statement was sent */
		} else if (!w->lost) {
			log_warn("work item %" PRId64 " was taken over by another worker (its lease ran out); "
				 "stopping it",
				 item);
			w->lost = 1;
			w->item_stop = 1;
		}
	}
	/*
	 * Not renewed for most of a lease: the lease may run out before we hear of it, and
	 * then another worker would send the same rows. Stop sending before that.
	 */
	if (w->cur_item && !w->item_stop && mono_ms() - w->renewed_ms > lease_margin(w)) {
		log_warn("work item %" PRId64 ": its lease could not be renewed for %" PRId64 " ms; stopping it",
			 w->cur_item, mono_ms() - w->renewed_ms);
		w->item_stop = 1;
	}
	pthread_mutex_unlock(&w->lock);
	jerror_release(&err);
}

/* The run of the current item reports its counts (on the thread of worker_run_items). */
static void on_item_progress(void *ctx, const struct run *r)
{
	struct worker *w = ctx;
	if (!r->n_dests)
		return;
	pthread_mutex_lock(&w->lock);
	w->cur_counts = r->dests[0].counts;
	w->counts_new = true;
	pthread_mutex_unlock(&w->lock);
}

/* Write the running item's counts so far (the store keeps them only while it runs). */
static void push_progress(struct worker *w)
{
	struct jerror err = JERROR_INIT;
	pthread_mutex_lock(&w->lock);
	int64_t item = w->counts_new ? w->cur_item : 0;
	struct run_counts c = w->cur_counts;
	w->counts_new = false;
	pthread_mutex_unlock(&w->lock);
	if (!item)
		return;
	if (ensure(w, &w->keep_st, &err) || state_work_progress(w->keep_st, item, w->id, &c, &err)) {
		log_warn("could not record the progress of work item %" PRId64 ": %s", item, err.msg.buf);
		drop(&w->keep_st);
	}
	jerror_release(&err);
}

static void check_leader(struct worker *w)
{
	struct jerror err = JERROR_INIT;
	bool is = false;
	enum jerr rc = ensure(w, &w->lead_st, &err);
	if (!rc)
		rc = state_leader_try(w->lead_st, "scheduler", &is, &err);
	if (rc) {
		log_warn("scheduler election: %s", err.msg.buf);
		drop(&w->lead_st); /* a lost connection lost the lock too */
		is = false;
	}
	pthread_mutex_lock(&w->lock);
	if (is != w->leader)
		log_info(is ? "worker %s is now the scheduler leader: it fires the schedules"
			    : "worker %s is no longer the scheduler leader",
			 w->id);
	w->leader = is;
	pthread_mutex_unlock(&w->lock);
	jerror_release(&err);
}

static void sweep(struct worker *w)
{
	struct jerror err = JERROR_INIT;
	uint64_t closed = 0;
	if (ensure(w, &w->keep_st, &err) || state_work_sweep(w->keep_st, KEEP_JOBS_MS, &closed, &err)) {
		log_warn("could not tidy the work queue: %s", err.msg.buf);
		drop(&w->keep_st);
	} else if (closed) {
		log_warn("%llu job%s lost %s destination locks (taken over as stale while no worker ran): "
			 "marked interrupted",
			 (unsigned long long)closed, closed == 1 ? "" : "s", closed == 1 ? "its" : "their");
	}
	jerror_release(&err);
}

static void *keeper_main(void *arg)
{
	struct worker *w = arg;
	int64_t next_renew = 0, next_leader = 0, next_progress = 0, next_sweep = mono_ms() + SWEEP_MS / 4;
	while (!w->quit) {
		int64_t now = mono_ms();
		if (w->o.stop && *w->o.stop)
			w->item_stop = 1;
		if (now >= next_renew) {
			renew(w);
			next_renew = now + w->o.lease_ms / 3;
		}
		if (now >= next_progress) {
			push_progress(w);
			next_progress = now + PROGRESS_MS;
		}
		if (w->o.elect && now >= next_leader) {
			check_leader(w);
			next_leader = now + LEADER_CHECK_MS;
		}
		if (w->o.elect && now >= next_sweep && worker_is_leader(w)) {
			sweep(w);
			next_sweep = now + SWEEP_MS;
		}
		sleep_ms(KEEPER_TICK_MS);
	}
	return NULL;
}

/* ---- lifecycle ---- */

enum jerr worker_check_state_path(const char *state_path, struct jerror *err)
{
	struct strbuf shown = STRBUF_INIT;
	if (state_path_is_url(state_path))
		return JERR_OK;
	state_path_display(state_path, &shown);
	jerror_set(err, JERR_STATE, "workers need a PostgreSQL state store");
	jerror_detail(err, "state store \"%s\" is an SQLite file; workers on one or several machines "
			   "share their work through a PostgreSQL state store",
		      shown.buf);
	jerror_hint(err, "pass --state postgresql://USER@HOST/DATABASE (or set JOEY_STATE_URL); "
			 "'joey state export' and 'joey state import' move the state there");
	strbuf_release(&shown);
	return JERR_STATE;
}

enum jerr worker_start(const struct worker_opts *o, struct worker **out, struct jerror *err)
{
	struct worker *w = xcalloc(1, sizeof(*w));
	unsigned char r[6] = { 0 };
	char host[256] = "unknown";
	enum jerr rc;

	*out = NULL;
	w->o = *o;
	if (w->o.lease_ms <= 0)
		w->o.lease_ms = WORKER_LEASE_MS;
	if (w->o.lease_ms < 1000)
		w->o.lease_ms = 1000;
	pthread_mutex_init(&w->lock, NULL);
	pthread_mutex_init(&w->rate_lock, NULL);
	gethostname(host, sizeof(host) - 1);
	if (getrandom(r, sizeof(r), 0) != (ssize_t)sizeof(r))
		memset(r, 0, sizeof(r));
	snprintf(w->id, sizeof(w->id), "%s:%ld:%02x%02x%02x%02x%02x%02x", host, (long)getpid(), r[0], r[1], r[2],
		 r[3], r[4], r[5]);
	if ((rc = worker_check_state_path(o->state_path, err))) {
		worker_stop(w);
		return rc;
	}
	if ((rc = ensure(w, &w->run_st, err))) {
		worker_stop(w);
		return rc;
	}
	struct ratelimit_shared sh = { rate_take, w };
	ratelimit_shared_install(&sh);
	if (pthread_create(&w->keeper, NULL, keeper_main, w)) {
		worker_stop(w);
		return jerror_set(err, JERR_INTERNAL, "could not start the worker's keeper thread");
	}
	w->keeper_live = true;
	log_info("worker %s started (lease %" PRId64 " ms%s)", w->id, w->o.lease_ms,
		 w->o.elect ? ", takes part in the scheduler election" : "");
	*out = w;
	return JERR_OK;
}

const char *worker_id(const struct worker *w)
{
	return w->id;
}

bool worker_is_leader(struct worker *w)
{
	pthread_mutex_lock(&w->lock);
	bool l = w->leader;
	pthread_mutex_unlock(&w->lock);
	return l;
}

void worker_stop(struct worker *w)
{
	if (!w)
		return;
	w->quit = 1;
	if (w->keeper_live)
		pthread_join(w->keeper, NULL);
	ratelimit_shared_install(NULL);
	drop(&w->run_st);
	drop(&w->keep_st);
	drop(&w->lead_st);
	drop(&w->rate_st);
	config_free(w->job_cfg);
	pthread_mutex_destroy(&w->lock);
	pthread_mutex_destroy(&w->rate_lock);
	free(w);
}

/* ---- running items ---- */

static void log_outcome(const struct state_work_item *it, const struct work_outcome *out, const char *what)
{
	const struct run_counts *c = &out->res.counts;
	log_info("work item %d/%d of job %" PRId64 " (destination \"%s\"): %s: %llu created, %llu updated, %llu "
		 "deleted, %llu unchanged, %llu failed, %llu requests, %.2f s%s%s",
		 it->part + 1, it->n_parts, it->job_id, it->dest_id.buf, what, (unsigned long long)c->created,
		 (unsigned long long)c->updated, (unsigned long long)c->deleted, (unsigned long long)c->unchanged,
		 (unsigned long long)c->failed, (unsigned long long)c->requests, out->elapsed_s,
		 out->res.error ? "; " : "", out->res.error ? out->res.error : "");
}

/* Run one claimed item and record what became of it. */
static enum jerr run_one(struct worker *w, const struct config *cfg, const struct state_work_item *it,
			 struct jerror *err)
{
	struct work_outcome out;
	struct run_opts ro = { .max_delete_percent = -1, .dest = w->o.dest };
	struct jerror why = JERROR_INIT;
	const struct config *use = NULL;
	bool held = false, closed = false;
	enum jerr rc;

	if ((rc = work_item_config(cfg, w->o.cfg_opts, w->run_st, it, &w->job_cfg, &use, &why, err)))
		return rc;
	if (!use) {
		/* never run with another config than the job's: the item fails, saying why */
		log_error("%s: %s (hint: %s)", why.msg.buf, why.detail.buf, why.hint.buf);
		memset(&out, 0, sizeof(out));
		strbuf_init(&out.seen, 0);
		strbuf_init(&out.error, 0);
		strbuf_addf(&out.error, "%s (%s; hint: %s)", why.msg.buf, why.detail.buf, why.hint.buf);
		out.res.status = RUN_FAILED;
		out.res.error = out.error.buf;
		jerror_release(&why);
		rc = work_finish_item(cfg, w->run_st, it, w->id, &out, &held, &closed, err);
		work_outcome_release(&out);
		return rc;
	}
	jerror_release(&why);
	cfg = use;

	ro.stop = &w->item_stop;
	ro.dest.stop = &w->item_stop;
	ro.dest.send_until = &w->send_until;
	ro.on_progress = on_item_progress;
	ro.progress_ctx = w;
	if (it->claims > 1)
		log_info("work item %d/%d of job %" PRId64 " (destination \"%s\"): resuming it (claim %d; a worker "
			 "before this one ended without finishing it)",
			 it->part + 1, it->n_parts, it->job_id, it->dest_id.buf, it->claims);
	rc = work_run_item(cfg, w->run_st, it, &ro, &out, err);
	if (rc)
		return rc;
	if (w->lost) {
		log_outcome(it, &out, "stopped, another worker has it now");
	} else if (out.interrupted) {
		struct jerror e = JERROR_INIT;
		log_outcome(it, &out, "stopped; back to the queue");
		if (state_work_requeue(w->run_st, it->id, w->id, &e))
			log_warn("%s (its lease runs out instead)", e.msg.buf);
		jerror_release(&e);
	} else {
		rc = work_finish_item(cfg, w->run_st, it, w->id, &out, &held, &closed, err);
		if (!rc)
			log_outcome(it, &out, !held ? "done, but another worker had taken it over"
					      : out.res.status == RUN_SUCCESS ? "done" : "failed");
	}
	work_outcome_release(&out);
	return rc;
}

enum jerr worker_run_items(struct worker *w, const struct config *cfg, int64_t only_job, size_t *n_run,
			   struct jerror *err)
{
	struct state_work_item it;
	enum jerr rc = JERR_OK;

	*n_run = 0;
	state_work_item_init(&it);
	while (!(w->o.stop && *w->o.stop)) {
		bool found = false;
		if ((rc = ensure(w, &w->run_st, err)))
			break;
		pthread_mutex_lock(&w->lock); /* the keeper sees the item from its claim on */
		rc = state_work_claim(w->run_st, w->id, w->o.lease_ms, only_job, &it, &found, err);
		if (!rc && found) {
			w->cur_item = it.id;
			w->counts_new = false;
			lease_renewed(w, mono_ms());
			w->item_stop = w->o.stop && *w->o.stop;
			w->lost = 0;
		}
		pthread_mutex_unlock(&w->lock);
		if (rc || !found)
			break;
		rc = run_one(w, cfg, &it, err);
		pthread_mutex_lock(&w->lock);
		w->cur_item = 0;
		atomic_store(&w->send_until, 0);
		w->item_stop = 0;
		w->lost = 0;
		pthread_mutex_unlock(&w->lock);
		(*n_run)++;
		if (rc)
			break;
	}
	state_work_item_release(&it);
	if (rc)
		drop(&w->run_st);
	return rc;
}
