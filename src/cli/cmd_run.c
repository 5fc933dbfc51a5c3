/* cmd_run.c: `joey run`: make every Braze destination match the warehouse. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/error.h"
#include "cli/cli.h"
#include "engine/run.h"
#include "state/state.h"

static volatile int stop_requested;

static void on_signal(int sig)
{
	(void)sig;
	stop_requested = 1;
}

static void usage(FILE *out)
{
	fputs("usage: joey run [--config DIR] [--state PATH] [--destination ID] [--force] [--full] [--json]\n"
	      "                [--max-delete-percent N] [--concurrency N] [--timeout SECONDS] [--bulk]\n\n"
	      "Sends the creates, updates, deletes and unsubscribes that 'joey plan' shows to Braze,\n"
	      "and records in the state store what Braze confirmed. Failed records stay pending and\n"
	      "are retried by the next run. Exit status: 0 when every record was confirmed, 1 otherwise.\n\n"
	      "  --destination ID        only this destination\n"
	      "  --force                 send deletes even past the mass-delete guard\n"
	      "  --full                  read every row, ignoring incremental schedules' marks: the\n"
	      "                          only way rows deleted from such a source are noticed\n"
	      "  --max-delete-percent N  guard threshold for this run (default: maxDeletePercent, else 10)\n"
	      "  --concurrency N         requests in flight per destination (default 32)\n"
	      "  --timeout SECONDS       per request (default 30)\n"
	      "  --bulk                  mark /users/track requests as bulk (X-Braze-Bulk) for backfills\n"
	      "  --json                  machine-readable summary\n",
	      out);
}

int cmd_run(int argc, char **argv)
{
	struct cli_common c = { 0 };
	struct run_opts opts = { .max_delete_percent = -1 };
	struct jerror err = JERROR_INIT;
	struct config *cfg = NULL;
	struct state *st = NULL;
	struct run r = { 0 };
	int ret = 1;
	double concurrency = 0, timeout_s = 0;

	dest_opts_defaults(&opts.dest);
	for (int i = 1; i < argc; i++) {
		bool missing;
		const char *v;
		int rr = cli_common_opt(&c, argc, argv, &i);
		if (rr < 0)
			return EXIT_USAGE;
		if (rr)
			continue;
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			usage(stdout);
			return 0;
		}
		if (!strcmp(argv[i], "--force")) {
			opts.force = true;
			continue;
		}
		if (!strcmp(argv[i], "--full")) {
			opts.full = true;
			continue;
		}
		if (!strcmp(argv[i], "--bulk")) {
			opts.dest.bulk = true;
			continue;
		}
		if ((v = cli_opt_value("--destination", argc, argv, &i, &missing))) {
			opts.only_dest = v;
			continue;
		}
		if (missing)
			return EXIT_USAGE;
		if ((rr = cli_opt_number("--max-delete-percent", 0, 100, argc, argv, &i, &opts.max_delete_percent)) ||
		    (rr = cli_opt_number("--concurrency", 1, 256, argc, argv, &i, &concurrency)) ||
		    (rr = cli_opt_number("--timeout", 0.1, 3600, argc, argv, &i, &timeout_s))) {
			if (rr < 0)
				return EXIT_USAGE;
			continue;
		}
		fprintf(stderr, "joey: error: unknown option \"%s\" for 'joey run'\n", argv[i]);
		usage(stderr);
		return EXIT_USAGE;
	}
	cli_common_finish(&c);
	if (concurrency > 0)
		opts.dest.max_inflight = (int)concurrency;
	if (timeout_s > 0)
		opts.dest.timeout_ms = (long)(timeout_s * 1000);

	cfg = cli_load_config(&c);
	if (!cfg) {
		cli_common_release(&c);
		return 1;
	}
	if (state_open(c.state_path, STATE_OPEN_CREATE, &st, &err))
		goto fail;

	struct sigaction sa = { 0 };
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	opts.stop = &stop_requested;
	opts.dest.stop = &stop_requested;
	if (!c.json && isatty(STDERR_FILENO))
		opts.progress = stderr;

	if (run_execute(&r, cfg, st, &opts, &err)) {
		ret = err.code == JERR_USAGE ? EXIT_USAGE : 1;
		goto fail;
	}
	if (c.json)
		run_print_json(&r, stdout);
	else
		run_print_text(&r, stdout);
	ret = run_ok(&r) ? 0 : 1;
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
