/* cmd_worker.c: `joey worker`: claim and run work items from a PostgreSQL state store (docs/scaling.md). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "cli/cli.h"
#include "server/server.h"

static void usage(FILE *out)
{
	fputs("usage: joey worker [--config DIR] [--state URL] [--lease SECONDS] [--stop-timeout SECONDS]\n"
	      "                   [--concurrency N] [--timeout SECONDS]\n\n"
	      "Runs as one of several workers, on one or several machines, that share a PostgreSQL\n"
	      "state store: claims work items (a destination's key range) of queued runs and runs\n"
	      "them, and takes part in electing the one worker that fires the schedules. Runs are\n"
	      "queued by the leader's schedules, 'joey run --partitions N', or 'joey serve --worker'.\n"
	      "Braze's rate limit is shared by all workers through the state store.\n"
	      "Same as 'joey serve --worker' without the API and UI. See docs/scaling.md.\n\n"
	      "  --lease SECONDS        a claimed item is this worker's for this long, renewed every third of\n"
	      "                         it; a worker that dies loses its item after it (default 30)\n"
	      "  --stop-timeout SECONDS on SIGTERM, how long to wait for the batches in flight (default 60)\n"
	      "  --concurrency N        at most N Braze requests in flight (default: sized from latency\n"
	      "                         and the rate limit, at most 1024)\n"
	      "  --timeout SECONDS      per Braze request (default 30)\n\n"
	      "Signals: SIGTERM/SIGINT stop after the batches in flight are committed (the item goes back\n"
	      "to the queue); SIGHUP reloads the config.\n",
	      out);
}

/* worker's own options (cli_opt_loop): serve's worker options of o (struct server_opts) */
static int worker_opt(void *o, int argc, char **argv, int *i)
{
	return cli_server_opt(o, argc, argv, i);
}

int cmd_worker(int argc, char **argv)
{
	struct cli_common c = { 0 };
	struct server_opts o;
	int r;

	server_opts_defaults(&o);
	o.worker = true;
	o.no_http = true;
	if ((r = cli_opt_loop(&c, argc, argv, usage, NULL, "'joey worker'", worker_opt, &o)) != CLI_OPT_DONE)
		return r;
	return cli_server_run(&c, &o);
}
