/* main.c: the joey command-line front end: dispatch to one cmd_*.c per subcommand. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

struct command {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *summary;
};

static const struct command commands[] = {
	{ "validate", cmd_validate, "check the config directory and report every problem" },
	{ "plan", cmd_plan, "show what a run would send to each Braze destination" },
	{ "run", cmd_run, "send the changes to Braze and record what it confirmed" },
	{ "status", cmd_status, "show recent runs, failing records, and what was sent for one record" },
	{ "serve", cmd_serve, "run the schedules and serve the web UI and JSON API" },
	{ "state", cmd_state, "create or upgrade the state store, export it, import it" },
	{ "worker", cmd_worker, "run work items of a PostgreSQL state store shared with other workers" },
};

static void usage(FILE *out)
{
	fprintf(out, "usage: joey <command> [--config DIR] [--state PATH|URL] [--json] [options]\n\n"
		     "commands:\n");
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].summary);
	fprintf(out, "\nRun 'joey <command> --help' for the options of one command.\n");
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
		usage(stdout);
		return 0;
	}
	if (!strcmp(argv[1], "--version")) {
		printf("joey %s\n", JOEY_VERSION);
		return 0;
	}
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (!strcmp(argv[1], commands[i].name))
			return commands[i].fn(argc - 1, argv + 1);
	fprintf(stderr, "joey: error: unknown command \"%s\"\n", argv[1]);
	usage(stderr);
	return EXIT_USAGE;
}
