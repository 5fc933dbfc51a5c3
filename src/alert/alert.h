/*
 * alert.h: tell people when a sync goes wrong (joey's Alert class, docs/config.md
 * "Alerts"). Sits beside engine: below server and cli, above config, state and dest.
 *
 * An incident is one alert, one destination and one trigger while the trigger's
 * condition holds. It opens once (one "opened" message), stays open through any
 * number of runs that still show the condition (no message), and resolves when a run
 * (or the periodic check) shows the condition cleared (one "resolved" message). Its
 * state and its messages live in the state store (state/alerts.h), so a restart
 * neither loses nor repeats them; messages are sent by whichever process pumps them,
 * retried with backoff.
 *
 * Order of calls:
 *   after each run (joey run, serve's jobs), with the store the run wrote:
 *     alert_after_run(cfg, st, r, &opts);           -- incidents + queued messages
 *   periodically (serve), and after a run:
 *     alert_check_stale(cfg, st, now, &opts);       -- noSuccessFor
 *   then, to send what is due:
 *     alert_pump(cfg, st, &opts, &sent);            -- claims, sends, records
 *   an admin's test message (the API):
 *     alert_test(cfg, st, alert, &opts, &delivery_id, &err);
 *
 * Nothing here fails a run: problems (the store, a channel) are logged, and the
 * messages stay queued. Channel secrets (URLs, HMAC keys, SMTP passwords) are read
 * from the config when a message is sent; they are never stored, logged, or put in a
 * message's recorded body or error.
 */
#ifndef JOEY_ALERT_H
#define JOEY_ALERT_H

#include <stdbool.h>
#include <stdint.h>

#include "base/compat.h"
#include "base/error.h"
#include "config/config.h"
#include "engine/run.h"
#include "state/state.h"

struct alert_opts {
	/* the UI's address for links to runs ("https://joey.example.com"), or NULL:
	 * serve's --public-url / JOEY_PUBLIC_URL, else its listen address */
	const char *public_url;
	/* retry backoff: attempt n waits retry_base_ms * 2^(n-1), at most retry_max_ms;
	 * after max_attempts the message is failed. 0: defaults (10 s, 1 h, 10) */
	int64_t retry_base_ms, retry_max_ms;
	int max_attempts;
	/* a channel's whole request (connect, TLS, answer), ms; 0: 30 s */
	long timeout_ms;
	volatile int *stop; /* alert_pump stops between messages when set; may be NULL */
	/* epoch ms, or 0: none. alert_pump cuts a request at it (giving it at least a
	 * second) and, unless try_all, claims no message from then on */
	int64_t deadline;
	bool try_all; /* past the deadline, still try each message due (a second each) */
	/* alert_after_run's r is a worker job's summary (engine/work.h work_job_result):
	 * it has no elapsed time and no records read, so runLongerThan and
	 * recordsDropPercent are not judged from it */
	bool worker_job;
};

/* Fill the defaults, then JOEY_ALERT_RETRY_MS, JOEY_ALERT_ATTEMPTS from the environment. */
void alert_opts_defaults(struct alert_opts *o);

/*
 * Evaluate every alert covering each destination of r (borrowed, as run_execute left
 * it) against its run, and record what opened or resolved. Also remembers full reads'
 * record counts (recordsDropPercent) and runs the noSuccessFor check for those
 * destinations. Never fails (problems are logged).
 */
void alert_after_run(const struct config *cfg, struct state *st, const struct run *r, const struct alert_opts *o);

/* noSuccessFor of every alert and destination in its scope, at now (epoch ms). */
void alert_check_stale(const struct config *cfg, struct state *st, int64_t now, const struct alert_opts *o);

/*
 * Send every message that is due when it is called, one at a time, each once: one that
 * fails is due again after its backoff and left to the next call (or o->stop, or
 * o->deadline). *sent (may be NULL): how many went out. JERR_OK, or the store's error
 * (messages stay).
 */
enum jerr alert_pump(const struct config *cfg, struct state *st, const struct alert_opts *o, size_t *sent,
		     struct jerror *err) JOEY_WUR;

/*
 * joey run's ending: alert_after_run, then send what is due (each message once), and
 * keep trying messages that failed (with their backoff) until wait_ms after the run:
 * no retry starts or lasts beyond that, and no first try lasts past it by more than a
 * second (so channels that hang cost wait_ms plus a second each, not their timeouts).
 * What is still not sent then stays queued for the next run or serve. Never fails
 * (problems are logged).
 */
void alert_finish_run(const struct config *cfg, struct state *st, const struct run *r, const struct alert_opts *o,
		      int64_t wait_ms);

/*
 * Queue a test message of alert a (borrowed) and send it at once (no retry: it is
 * failed or sent when this returns). *delivery_id: its row. JERR_OK when it was sent;
 * JERR_IO with err saying why not (no secret in it); JERR_STATE for the store.
 */
enum jerr alert_test(const struct config *cfg, struct state *st, const struct cfg_alert *a,
		     const struct alert_opts *o, int64_t *delivery_id, struct jerror *err) JOEY_WUR;

#endif
