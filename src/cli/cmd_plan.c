/* cmd_plan.c: `joey plan`: show what a run would send, without sending anything. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "cli/cli.h"
#include "engine/plan.h"
#include "state/state.h"

static void usage(FILE *out)
{
	fputs("usage: joey plan [--config DIR] [--state PATH] [--destination ID] [--details] [--json]\n"
	      "                 [--max-delete-percent N] [--full] [--diff warehouse|stream|auto]\n\n"
	      "Reads every source once, compares what each Braze destination should hold with what\n"
	      "the state store says Braze confirmed, and prints the creates, updates, deletes and\n"
	      "unsubscribes a run would send. Nothing is sent and nothing is written. A model whose\n"
	      "primary source has an incremental schedule is read since the schedule's mark.\n\n"
	      "  --destination ID        only this destination\n"
	      "  --details               list every changed record with its field changes (old -> new)\n"
	      "  --diff MODE             who compares: stream (joey reads every record), warehouse (the\n"
	      "                          database returns only the records that may have changed; needs\n"
	      "                          the state store in the sources' PostgreSQL database) or auto\n"
	      "                          (default: the destinations' options.diff, else stream)\n"
	      "  --full                  plan a full run ('joey run --full'): ignore incremental marks\n"
	      "  --json                  machine-readable output\n"
	      "  --max-delete-percent N  mass-delete guard threshold for this plan (default: the\n"
	      "                          destination's maxDeletePercent option, else 10)\n",
	      out);
}

/* plan's own options (cli_opt_loop): the target options of opts (struct plan_opts) */
static int plan_opt(void *opts, int argc, char **argv, int *i)
{
	struct plan_opts *o = opts;
	return cli_target_opt(argc, argv, i, &o->only_dest, &o->diff, &o->diff_set, &o->max_delete_percent);
}

int cmd_plan(int argc, char **argv)
{
	struct cli_common c = { 0 };
	struct plan_opts opts = { .max_delete_percent = -1 };
	struct jerror err = JERROR_INIT;
	struct config *cfg = NULL;
	struct state *st = NULL;
	struct plan p;
	bool plan_ready = false;
	int ret = 1, r;
	const struct cli_flag flags[] = { { "--full", &opts.full }, { "--details", &opts.details }, { NULL, NULL } };

	if ((r = cli_opt_loop(&c, argc, argv, usage, flags, "'joey plan'", plan_opt, &opts)) != CLI_OPT_DONE)
		return r;
	cli_common_finish(&c);
	opts.json = c.json;
	cli_stop_on_signal(); /* Ctrl-C cancels the warehouse's statement, not just joey */

	cfg = cli_load_config(&c);
	if (!cfg) {
		cli_common_release(&c);
		return 1;
	}
	if (state_open(c.state_path, STATE_OPEN_READONLY_OR_EMPTY, &st, &err))
		goto fail;
	if (plan_init(&p, cfg, &opts, &err)) {
		ret = err.code == JERR_USAGE ? EXIT_USAGE : 1;
		goto fail;
	}
	plan_ready = true;
	if (plan_compute(&p, st, &err))
		goto fail;
	if (c.json)
		plan_print_json(&p, stdout);
	else
		plan_print_text(&p, stdout);
	ret = 0;
	goto out;
fail:
	jerror_print(stderr, &err);
out:
	if (plan_ready)
		plan_release(&p);
	state_close(st);
	config_free(cfg);
	jerror_release(&err);
	cli_common_release(&c);
	return ret;
}
