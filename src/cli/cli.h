/*
 * cli.h: the command table and options shared by every subcommand.
 *
 * main() picks the subcommand by name and hands it argc/argv (argv[0] is the
 * subcommand name). Each cmd_*.c parses its options in a loop over cli_opt_next() (the
 * shared ones, --help and its on/off flags) whose body takes its own options and ends
 * with cli_opt_unknown() (or, when its own options are one call, in cli_opt_loop(), which
 * runs that loop), and returns the process exit code: 0 success, 1 failure
 * (invalid config, failed rows, refused plan), 2 usage error.
 */
#ifndef JOEY_CLI_H
#define JOEY_CLI_H

#include <stdbool.h>
#include <stdio.h>

#include "config/config.h"
#include "engine/diff.h"

#define EXIT_USAGE 2

struct cli_common {
	const char *config_dir; /* --config, JOEY_CONFIG, default "./config" */
	/*
	 * --state, else $JOEY_STATE_URL, else $JOEY_STATE, else <config dir>/../.joey/state.db;
	 * a file or a postgres:// URL (state_open picks the back end)
	 */
	const char *state_path;
	bool json;              /* --json */
	bool verbose;           /* -v */
	char *owned_state_path; /* derived state path, freed by cli_common_release */
};

/*
 * If argv[*i] is a shared option (--config DIR, --config=DIR, --state PATH, --json,
 * -v), consume it (and its value), advance *i past it and return 1; return 0 if it is
 * not one; return -1 (after printing a usage error) if its value is missing.
 */
int cli_common_opt(struct cli_common *c, int argc, char **argv, int *i);
/*
 * A command's on/off options, in a table ended by a NULL name: "--full" sets *set (the
 * command's own bool, borrowed).
 */
struct cli_flag {
	const char *name;
	bool *set;
};
/*
 * Every command's option loop, from argument first on:
 *
 *	int r;
 *	for (int i = first - 1; (r = cli_opt_next(&c, argc, argv, &i, usage, flags)) == CLI_OPT_NOT;) {
 *		the command's own options at argv[i]: continue when taken, else
 *		return cli_opt_unknown(argv[i], ...);
 *	}
 *	if (r != CLI_OPT_DONE)
 *		return r;
 *
 * Advances *i to the next argument, taking every shared option (cli_common_opt), --help
 * / -h (usage(stdout)) and flag (flags may be NULL: none) on the way. Returns
 * CLI_OPT_NOT (argv[*i] is none of these: the command's own), CLI_OPT_DONE (no
 * argument left), or the exit code to return at once: 0 after --help, EXIT_USAGE
 * after a usage error (already printed).
 */
#define CLI_OPT_TAKEN (-1)
#define CLI_OPT_NOT (-2)
#define CLI_OPT_DONE (-3)
int cli_opt_next(struct cli_common *c, int argc, char **argv, int *i, void (*usage)(FILE *out),
		 const struct cli_flag *flags);
/*
 * The whole option loop of a command whose own options are one call: own(ctx, argc, argv,
 * &i) answers for argv[i] as cli_opt_number does (1 taken, 0 not one of them, -1 usage
 * error, printed); own NULL: the command has none. An argument that is none of the
 * options is 'unknown option "ARG" for WHERE' (cli_opt_unknown). Returns CLI_OPT_DONE
 * when every argument is taken, else the exit code to return at once (as cli_opt_next).
 */
int cli_opt_loop(struct cli_common *c, int argc, char **argv, void (*usage)(FILE *out),
		 const struct cli_flag *flags, const char *where,
		 int (*own)(void *ctx, int argc, char **argv, int *i), void *ctx);
/*
 * The tail of every command's option loop: 'unknown option "ARG" for WHERE' and
 * usage(stderr). Returns EXIT_USAGE.
 */
int cli_opt_unknown(const char *arg, const char *where, void (*usage)(FILE *out));
/*
 * plan's and run's target options, in this order: --destination ID, --diff MODE,
 * --max-delete-percent N. 1 taken (*only_dest, *diff and *diff_set, or
 * *max_delete_percent set), 0 not one of them, -1 usage error (printed).
 */
int cli_target_opt(int argc, char **argv, int *i, const char **only_dest, enum diff_mode *diff, bool *diff_set,
		   double *max_delete_percent);
/* Fill defaults (environment: JOEY_CONFIG, JOEY_STATE_URL, JOEY_STATE; derived state path). */
void cli_common_finish(struct cli_common *c);
/* Free what cli_common_finish allocated; state_path is NULL afterwards if it was derived. */
void cli_common_release(struct cli_common *c);
/* Value of "--name VALUE" / "--name=VALUE" at argv[*i]; NULL if argv[*i] is not --name. */
const char *cli_opt_value(const char *name, int argc, char **argv, int *i, bool *missing);

/*
 * "--name N" with N a number in [lo, hi]: 1 and *out set when argv[*i] is that option,
 * 0 when it is not, -1 (usage error printed) when its value is missing or out of range.
 */
int cli_opt_number(const char *name, double lo, double hi, int argc, char **argv, int *i, double *out);

/*
 * The secrets file: JOEY_SECRETS_FILE, else secrets.json beside the state store
 * (<state dir>/secrets.json, where `joey serve` writes literal secrets; for a
 * PostgreSQL state store, which has no directory, <config dir>/../.joey/secrets.json).
 * Owned by the caller; NULL when there is no state path.
 */
char *cli_secrets_path(const struct cli_common *c);

/*
 * SIGINT/SIGTERM stop the source reads of this thread (source_set_stop): a statement
 * waiting on the database is cancelled on the server, the read ends with
 * JERR_INTERRUPTED, and the command reports it. A second signal ends the process at
 * once. Returns the flag the signals set. For commands without a stop of their own
 * (plan); run, serve and worker pass theirs to the engine.
 */
volatile int *cli_stop_on_signal(void);

/*
 * The config's secrets (API keys, passwords) are about to be in this process's memory:
 * no core dump may hold them (RLIMIT_CORE soft limit 0, PR_SET_DUMPABLE 0, which also
 * keeps other processes of the same user from ptrace and /proc/<pid>/mem). Called by
 * cli_load_config and cli_server_run. JOEY_ALLOW_CORE=1 leaves both alone (debugging).
 */
void cli_protect_memory(void);

/*
 * Load the config for a command (cli_protect_memory first): prints diagnostics (warnings always, errors on
 * failure) to stderr. Returns the config or NULL (already reported).
 */
struct config *cli_load_config(const struct cli_common *c);

int cmd_validate(int argc, char **argv);
int cmd_plan(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_status(int argc, char **argv);
int cmd_serve(int argc, char **argv);

/* Shared by serve and worker (cmd_serve.c). */
struct server_opts;
/* --lease, --stop-timeout, --concurrency, --timeout: as cli_opt_number (1 taken, 0 not, -1 error). */
int cli_server_opt(struct server_opts *o, int argc, char **argv, int *i);
/* Finish c and o (secrets path, token), run the server until SIGTERM, release c: the exit code. */
int cli_server_run(struct cli_common *c, struct server_opts *o);
int cmd_state(int argc, char **argv);
int cmd_worker(int argc, char **argv);
int cmd_user(int argc, char **argv);

#endif
