/* cmd_run.c: `joey run`: make every Braze destination match the warehouse. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "alert/alert.h"
#include "base/error.h"
#include "base/log.h"
#include "base/xalloc.h"
#include "cli/cli.h"
#include "engine/run.h"
#include "engine/work.h"
#include "server/worker.h"
#include "state/state.h"

static volatile int stop_requested;

/* The first SIGINT/SIGTERM stops the run cleanly; a second one ends the process at once
 * (a start that waits on a locked or unreachable state store does not see the first). */
static void on_signal(int sig)
{
	if (stop_requested) {
		signal(sig, SIG_DFL);
		raise(sig);
		return;
	}
	stop_requested = 1;
}

static void usage(FILE *out)
{
	fputs("usage: joey run [--config DIR] [--state PATH] [--destination ID] [--force] [--full] [--json]\n"
	      "                [--max-delete-percent N] [--concurrency N] [--timeout SECONDS] [--bulk]\n"
	      "                [--diff warehouse|stream|auto]\n\n"
	      "Sends the creates, updates, deletes and unsubscribes that 'joey plan' shows to Braze,\n"
	      "and records in the state store what Braze confirmed. Failed records stay pending and\n"
	      "are retried by the next run. Exit status: 0 when every record was confirmed, 1 otherwise.\n\n"
	      "  --destination ID        only this destination\n"
	      "  --force                 send deletes even past the mass-delete guard\n"
	      "  --full                  read every row, ignoring incremental schedules' marks: the\n"
	      "                          only way rows deleted from such a source are noticed\n"
	      "  --max-delete-percent N  guard threshold for this run (default: maxDeletePercent, else 10)\n"
	      "  --diff MODE             who compares: stream, warehouse (the database returns only the\n"
	      "                          records that may have changed) or auto; default: the\n"
	      "                          destinations' options.diff, else stream (docs/config.md)\n"
	      "  --concurrency N         at most N requests in flight per destination (default: sized\n"
	      "                          from latency and the rate limit, at most 1024)\n"
	      "  --timeout SECONDS       per request (default 30)\n"
	      "  --bulk                  mark /users/track requests as bulk (X-Braze-Bulk) for backfills\n"
	      "  --json                  machine-readable summary\n"
	      "  --partitions N          split each destination into N key ranges, queued as work items in\n"
	      "                          the PostgreSQL state store for the workers ('joey worker'); this\n"
	      "                          process works on them too and waits for the end (docs/scaling.md)\n"
	      "  --detach                with --partitions: only queue the work, print the job ids and exit\n"
	      "  --lease SECONDS         with --partitions: lease of a claimed work item (default 30)\n",
	      out);
}

/* Append job's result to all (destinations in the order the jobs come). */
static void merge_run(struct run *all, struct run *one, size_t cap)
{
	for (size_t i = 0; i < one->n_dests && all->n_dests < cap; i++) {
		all->dests[all->n_dests++] = one->dests[i];
		one->dests[i].err = (struct jerror)JERROR_INIT; /* moved */
	}
}

/*
 * --partitions: queue one job per model (work.h), then work on them like a worker
 * until they are closed, and report them as one run.
 */
static int run_partitioned(struct cli_common *c, const struct config *cfg, struct state *st,
			   const struct run_opts *opts, int partitions, bool detach, double lease_s,
			   volatile int *stop)
{
	int64_t *jobs = xcalloc(cfg->n_models + 1, sizeof(*jobs));
	size_t n_jobs = 0;
	struct jerror err = JERROR_INIT;
	struct worker *w = NULL;
	struct run all = { 0 };
	int ret = 1;
	bool found_dest = !opts->only_dest;
	struct timespec t0, t1;
	char *secrets = NULL; /* the worker's config_opts.secrets_path */

	clock_gettime(CLOCK_MONOTONIC, &t0);

	for (size_t m = 0; m < cfg->n_models; m++) {
		const struct cfg_model *model = cfg->models[m];
		bool any = false;
		for (size_t i = 0; i < cfg->n_destinations; i++)
			if (cfg->destinations[i]->model == model &&
			    (!opts->only_dest || !strcmp(opts->only_dest, cfg->destinations[i]->id)))
				any = true;
		if (!any)
			continue;
		found_dest = true;
		struct work_request req = {
			.model = model,
			.dest_ids = opts->only_dest ? &opts->only_dest : NULL,
			.n_dests = opts->only_dest ? 1 : 0,
			.partitions = partitions,
			.full = opts->full,
			.force = opts->force,
			.max_delete_percent = opts->max_delete_percent,
		};
		bool dup;
		if (work_enqueue(cfg, st, &req, &jobs[n_jobs], &dup, &err))
			goto fail;
		n_jobs++;
	}
	if (!found_dest) {
		jerror_set(&err, JERR_USAGE, "destination \"%s\" does not exist", opts->only_dest);
		ret = EXIT_USAGE;
		goto fail;
	}
	if (detach) {
		if (c->json) {
			fputs("{\"jobs\":[", stdout);
			for (size_t j = 0; j < n_jobs; j++)
				printf("%s%lld", j ? "," : "", (long long)jobs[j]);
			fputs("]}\n", stdout);
		} else {
			for (size_t j = 0; j < n_jobs; j++)
				printf("job %lld queued\n", (long long)jobs[j]);
		}
		ret = 0;
		goto out;
	}

	secrets = cli_secrets_path(c);
	struct config_opts co = { .secrets_path = secrets };
	struct worker_opts wo = {
		.state_path = c->state_path,
		.lease_ms = (int64_t)(lease_s * 1000),
		.dest = opts->dest,
		.stop = stop,
		.cfg_opts = &co,
	};
	if (worker_start(&wo, &w, &err))
		goto fail;
	for (size_t j = 0; j < n_jobs; j++) {
		for (;;) {
			enum run_status status;
			struct strbuf model = STRBUF_INIT;
			bool found = false;
			size_t n = 0;
			if (worker_run_items(w, cfg, jobs[j], &n, &err))
				goto fail;
			if (state_work_job_status(st, jobs[j], &status, &model, &found, &err)) {
				strbuf_release(&model);
				goto fail;
			}
			strbuf_release(&model);
			if (!found || status != RUN_RUNNING || *stop)
				break;
			if (!n)
				usleep(300 * 1000); /* the other workers have the rest */
		}
	}
	all.dests = xcalloc(cfg->n_destinations + 1, sizeof(*all.dests));
	for (size_t j = 0; j < n_jobs; j++) {
		struct run one;
		enum run_status status;
		if (work_job_result(cfg, st, jobs[j], &one, &status, &err))
			goto fail;
		merge_run(&all, &one, cfg->n_destinations);
		run_release(&one);
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	for (size_t i = 0; i < all.n_dests; i++) /* from queueing to the end of the jobs */
		all.dests[i].elapsed_s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	for (size_t i = 0; i < all.n_dests; i++)
		if (all.dests[i].status == RUN_RUNNING) {
			all.dests[i].status = RUN_INTERRUPTED;
			jerror_set(&all.dests[i].err, JERR_INTERRUPTED,
				   "stopped waiting; the other workers go on with the job");
		}
	if (c->json)
		run_print_json(&all, stdout);
	else
		run_print_text(&all, stdout);
	ret = run_ok(&all) ? 0 : 1;
	goto out;
fail:
	jerror_print(stderr, &err);
	if (ret == 1 && err.code == JERR_USAGE)
		ret = EXIT_USAGE;
out:
	worker_stop(w);
	free(secrets);
	run_release(&all);
	jerror_release(&err);
	free(jobs);
	return ret;
}

/* run's options beyond its flags, read by run_opt (cli_opt_loop) */
struct run_args {
	struct run_opts *opts;                              /* the target options (borrowed) */
	double concurrency, timeout_s, partitions, lease_s; /* 0: not given */
};

static int run_opt(void *args, int argc, char **argv, int *i)
{
	struct run_args *a = args;
	int r;
	if ((r = cli_target_opt(argc, argv, i, &a->opts->only_dest, &a->opts->diff, &a->opts->diff_set,
				&a->opts->max_delete_percent)) ||
	    (r = cli_opt_number("--concurrency", 1, 1024, argc, argv, i, &a->concurrency)) ||
	    (r = cli_opt_number("--timeout", 0.1, 3600, argc, argv, i, &a->timeout_s)) ||
	    (r = cli_opt_number("--partitions", 1, WORK_MAX_PARTITIONS, argc, argv, i, &a->partitions)))
		return r;
	return cli_opt_number("--lease", 1, 3600, argc, argv, i, &a->lease_s);
}

int cmd_run(int argc, char **argv)
{
	struct cli_common c = { 0 };
	struct run_opts opts = { .max_delete_percent = -1 };
	struct jerror err = JERROR_INIT;
	struct config *cfg = NULL;
	struct state *st = NULL;
	struct run r = { 0 };
	int ret = 1, rr;
	struct run_args a = { .opts = &opts };
	bool detach = false;
	const struct cli_flag flags[] = { { "--force", &opts.force },
					  { "--full", &opts.full },
					  { "--bulk", &opts.dest.bulk },
					  { "--detach", &detach },
					  { NULL, NULL } };

	dest_opts_defaults(&opts.dest);
	if ((rr = cli_opt_loop(&c, argc, argv, usage, flags, "'joey run'", run_opt, &a)) != CLI_OPT_DONE)
		return rr;
	cli_common_finish(&c);
	if ((detach || a.lease_s > 0) && a.partitions <= 0) {
		fprintf(stderr, "joey: error: --detach and --lease go with --partitions\n");
		return EXIT_USAGE;
	}
	if (a.partitions != (double)(int)a.partitions) {
		fprintf(stderr, "joey: error: --partitions takes a whole number\n");
		return EXIT_USAGE;
	}
	if (a.concurrency > 0)
		opts.dest.max_inflight = (int)a.concurrency;
	if (a.timeout_s > 0)
		opts.dest.timeout_ms = (long)(a.timeout_s * 1000);

	/* from here on a SIGINT/SIGTERM stops the run cleanly (also one that comes while
	 * the config loads or the state store opens, which can take a while) */
	struct sigaction sa = { 0 };
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	cfg = cli_load_config(&c);
	if (!cfg) {
		cli_common_release(&c);
		return 1;
	}
	/* before the store is opened, which would create an SQLite file at the path */
	if (a.partitions > 0 && worker_check_state_path(c.state_path, &err))
		goto fail;
	if (state_open(c.state_path, STATE_OPEN_CREATE, &st, &err))
		goto fail;

	opts.stop = &stop_requested;
	opts.dest.stop = &stop_requested;
	if (!c.json && isatty(STDERR_FILENO))
		opts.progress = stderr;
	if (a.partitions > 0) {
		ret = run_partitioned(&c, cfg, st, &opts, (int)a.partitions, detach, a.lease_s, &stop_requested);
		goto out;
	}

	if (run_execute(&r, cfg, st, &opts, &err)) {
		ret = err.code == JERR_USAGE ? EXIT_USAGE : 1;
		goto fail;
	}
	if (c.json)
		run_print_json(&r, stdout);
	else
		run_print_text(&r, stdout);
	fflush(stdout);
	ret = run_ok(&r) ? 0 : 1;
	if (cfg->n_alerts) { /* tell whoever the alerts name (src/alert) */
		struct alert_opts ao;
		const char *w = getenv("JOEY_ALERT_WAIT");
		alert_opts_defaults(&ao);
		ao.public_url = getenv("JOEY_PUBLIC_URL");
		ao.stop = &stop_requested;
		alert_finish_run(cfg, st, &r, &ao, w && atof(w) >= 0 ? (int64_t)(atof(w) * 1000) : 20000);
	}
	goto out;
fail:
	jerror_print(stderr, &err);
out:
	run_release(&r);
	state_close(st);
	config_free(cfg);
	jerror_release(&err);
	cli_common_release(&c);
	return ret;
}
