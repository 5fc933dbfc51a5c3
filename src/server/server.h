/*
 * server.h: `joey serve`: the scheduler loop, the run executor, the JSON API, the web
 * UI and Prometheus /metrics in one process. The API contract is docs/api.md.
 *
 *   struct server_opts o = { ... };
 *   server_opts_defaults(&o);
 *   rc = server_main(&o, &err);   -- loads the config (fails at once if invalid),
 *                                    listens, runs the schedules; returns on SIGTERM /
 *                                    SIGINT after the runs in flight have committed
 *
 * Threads: the caller's thread runs the scheduler loop; libmicrohttpd's thread pool
 * answers requests; each job (sched.h) runs on a thread of its own with its own state
 * store handle; one thread waits for signals. All shared state (config, scheduler,
 * active runs, metrics) is behind one mutex in struct server (serverp.h). A config is
 * reference counted: a reload swaps it, while runs and requests keep the snapshot
 * they started with.
 *
 * Signals: SIGTERM/SIGINT stop taking new work, ask running jobs to stop after the
 * batches in flight are committed (run_opts.stop), wait for them up to
 * opts.stop_timeout_s, and return JERR_OK. SIGHUP reloads the config: an invalid one is
 * logged and kept in /api/v1/status (the UI's banner), and the old config stays.
 */
#ifndef JOEY_SERVER_H
#define JOEY_SERVER_H

#include <stdbool.h>

#include "base/compat.h"
#include "base/error.h"
#include "config/config.h"
#include "dest/dest.h"
#include "server/ui_assets.h"

struct server_opts {
	const char *config_dir;    /* borrowed */
	const char *state_path;    /* borrowed */
	const char *secrets_path;  /* borrowed; literal secrets written by the API go here */
	const char *listen_host;   /* "127.0.0.1" */
	unsigned listen_port;      /* 8020; 0: any free port (printed) */
	const char *token;         /* JOEY_API_TOKEN (an admin), or NULL; accounts otherwise (auth.c) */
	const char *tls_cert;      /* PEM files for HTTPS, both or neither (borrowed) */
	const char *tls_key;
	const char *public_url;    /* the UI's address as browsers see it behind a TLS proxy
				    * ("https://joey.example.com"): its Origin is ours too, and an
				    * https one makes the session cookie Secure; NULL: none (borrowed) */
	double stop_timeout_s;     /* SIGTERM: longest wait for runs in flight (default 60) */
	size_t max_body;           /* request body limit (default 1 MiB) */
	struct dest_opts dest;     /* connector options for runs */
	struct config_opts cfg;    /* how configs are loaded (secrets path, getenv) */
	/*
	 * Worker mode (`joey serve --worker`, `joey worker`; server/worker.h): the state
	 * store must be PostgreSQL; runs are queued there as jobs split into work items
	 * (each destination's options.partitions) instead of run here; a thread claims
	 * and runs items of any job; only the elected leader among the workers fires the
	 * schedules.
	 */
	bool worker;
	bool no_http;              /* worker mode without the API, UI and /metrics */
	int64_t lease_ms;          /* work item lease (0: WORKER_LEASE_MS) */
};

void server_opts_defaults(struct server_opts *o);
/* Run until SIGTERM/SIGINT. Fails at start (invalid config, port taken, ...). */
enum jerr server_main(const struct server_opts *o, struct jerror *err) JOEY_WUR;

/* The embedded file for a URL path ("/" is "/index.html"), or NULL. */
const struct ui_asset *server_asset(const char *path);

#endif
