/*
 * worker.h: what makes a process a worker (docs/scaling.md): it claims work items from
 * the PostgreSQL state store and runs them, keeps their leases alive, takes part in the
 * election of the one process that fires the schedules, and draws Braze's rate budget
 * from the store so that all workers together keep to the workspace's limit. Used by
 * `joey worker`, `joey serve --worker` and `joey run --partitions`.
 *
 *   struct worker *w;
 *   worker_start(&opts, &w, &err);      -- connections, the keeper thread, the shared
 *                                          rate budget (installed for the process)
 *   loop: worker_run_items(w, cfg, 0, &n, &err);   -- claim and run until none is left
 *         worker_is_leader(w)                       -- opts.elect: fire the schedules?
 *   worker_stop(w);                     -- joins the thread, closes, uninstalls
 *
 * Leases. A claimed item is the worker's until expires_at (database clock), which the
 * keeper thread pushes lease_ms ahead every lease_ms / 3. If the keeper finds that the
 * item was taken over (its lease had run out), or cannot renew it for most of a lease
 * (so it may run out), the item's run is stopped: it sends nothing more, and what Braze
 * confirmed is committed. A worker that dies just stops renewing: after at most
 * lease_ms another worker claims the item and resumes it from what was committed.
 *
 * Leadership. With opts.elect the keeper also holds (or keeps trying to take) a
 * session advisory lock on a connection of its own; the process holding it is the
 * leader. The lock goes with the connection, so a leader that dies or loses the
 * database gives way at once (on a machine that vanishes, when the server notices:
 * TCP keepalives, about 2 minutes with joey's settings).
 *
 * One config. Each item runs with the config generation its job was queued with
 * (work_item_config): this worker's when it is the same, else its directory's files
 * if they are that generation now, else the state store's copy; an item for which
 * none of these works fails with a message saying why, it never runs with another
 * config. The last config loaded that way is kept for the next items.
 * One worker runs one item at a time; run more processes to run more at once.
 */
#ifndef JOEY_WORKER_H
#define JOEY_WORKER_H

#include <stdbool.h>
#include <stdint.h>

#include "base/compat.h"
#include "base/error.h"
#include "config/config.h"
#include "dest/dest.h"

/* Default lease of a work item. */
#define WORKER_LEASE_MS 30000

struct worker_opts {
	const char *state_path; /* borrowed; must be a PostgreSQL store */
	int64_t lease_ms;       /* 0: WORKER_LEASE_MS */
	bool elect;             /* take part in the scheduler election */
	struct dest_opts dest;  /* connector options for the items' runs */
	volatile int *stop;     /* non-zero: the process is stopping */
	/* how the config was loaded (secrets file, ...), to load a job's own generation
	 * (work_item_config); borrowed, NULL: no secrets file */
	const struct config_opts *cfg_opts;
};

struct worker;

/*
 * JERR_OK when state_path (borrowed) names a PostgreSQL store, else JERR_STATE with err
 * saying that workers need one (a hint how to get there). Touches nothing: a front end
 * checks it before it opens (and would create) the store.
 */
enum jerr worker_check_state_path(const char *state_path, struct jerror *err) JOEY_WUR;

/*
 * Open the worker's connections (a store that is not PostgreSQL is JERR_STATE: workers
 * need a PostgreSQL state store), start the keeper thread and install the shared rate
 * budget. o is copied (its pointers borrowed).
 */
enum jerr worker_start(const struct worker_opts *o, struct worker **out, struct jerror *err) JOEY_WUR;
/* This process's worker id: "host:pid:random". */
const char *worker_id(const struct worker *w);
/* The keeper holds the scheduler's leadership (always false without opts.elect). */
bool worker_is_leader(struct worker *w);
/*
 * Claim items (only of job only_job when > 0) and run them one after the other with cfg
 * (borrowed) until none can be claimed or the process stops; *n_run says how many were
 * run. An item stopped by the shutdown goes back to the queue. Fails only when the
 * state store does (the connection is then reopened by the next call).
 */
enum jerr worker_run_items(struct worker *w, const struct config *cfg, int64_t only_job, size_t *n_run,
			   struct jerror *err) JOEY_WUR;
/* Stop the keeper, close everything, uninstall the rate budget. w may be NULL. */
void worker_stop(struct worker *w);

#endif
