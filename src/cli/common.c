/*
 * common.c: what every subcommand shares: the option loop's head and tail, the shared
 * options (--config, --state, --json, -v), option values and numbers, plan's and run's
 * target options, default paths, signals, memory protection and config loading.
 * Called by the cmd_*.c files; owns nothing beyond what cli_common_release frees.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>

#include "base/log.h"
#include "base/strbuf.h"
#include "base/xalloc.h"
#include "cli/cli.h"
#include "source/source.h"
#include "state/state.h"

const char *cli_opt_value(const char *name, int argc, char **argv, int *i, bool *missing)
{
	size_t n = strlen(name);
	const char *a = argv[*i];
	*missing = false;
	if (strncmp(a, name, n))
		return NULL;
	if (a[n] == '=') {
		return a + n + 1;
	}
	if (a[n] != '\0')
		return NULL;
	if (*i + 1 >= argc) {
		*missing = true;
		fprintf(stderr, "joey: error: option %s needs a value\n", name);
		return NULL;
	}
	(*i)++;
	return argv[*i];
}

int cli_opt_number(const char *name, double lo, double hi, int argc, char **argv, int *i, double *out)
{
	bool missing;
	char *end;
	const char *v = cli_opt_value(name, argc, argv, i, &missing);
	if (!v)
		return missing ? -1 : 0;
	*out = strtod(v, &end);
	if (*end || end == v || *out < lo || *out > hi) {
		fprintf(stderr, "joey: error: %s takes a number from %g to %g, not \"%s\"\n", name, lo, hi, v);
		return -1;
	}
	return 1;
}

int cli_common_opt(struct cli_common *c, int argc, char **argv, int *i)
{
	bool missing;
	const char *v;

	if ((v = cli_opt_value("--config", argc, argv, i, &missing))) {
		c->config_dir = v;
		return 1;
	}
	if (missing)
		return -1;
	if ((v = cli_opt_value("--state", argc, argv, i, &missing))) {
		c->state_path = v;
		return 1;
	}
	if (missing)
		return -1;
	if (!strcmp(argv[*i], "--json")) {
		c->json = true;
		return 1;
	}
	if (!strcmp(argv[*i], "-v") || !strcmp(argv[*i], "--verbose")) {
		c->verbose = true;
		log_set_level(LOG_INFO);
		return 1;
	}
	return 0;
}

/* argv[*i] as a shared option, --help or a flag: CLI_OPT_TAKEN, CLI_OPT_NOT or an exit code (cli_opt_next). */
static int opt_head(struct cli_common *c, int argc, char **argv, int *i, void (*usage)(FILE *out),
		    const struct cli_flag *flags)
{
	int r = cli_common_opt(c, argc, argv, i);
	if (r < 0)
		return EXIT_USAGE;
	if (r)
		return CLI_OPT_TAKEN;
	if (!strcmp(argv[*i], "--help") || !strcmp(argv[*i], "-h")) {
		usage(stdout);
		return 0;
	}
	for (; flags && flags->name; flags++)
		if (!strcmp(argv[*i], flags->name)) {
			*flags->set = true;
			return CLI_OPT_TAKEN;
		}
	return CLI_OPT_NOT;
}

int cli_opt_next(struct cli_common *c, int argc, char **argv, int *i, void (*usage)(FILE *out),
		 const struct cli_flag *flags)
{
	while (++*i < argc) {
		int r = opt_head(c, argc, argv, i, usage, flags);
		if (r != CLI_OPT_TAKEN)
			return r;
	}
	return CLI_OPT_DONE;
}

int cli_opt_loop(struct cli_common *c, int argc, char **argv, void (*usage)(FILE *out),
		 const struct cli_flag *flags, const char *where,
		 int (*own)(void *ctx, int argc, char **argv, int *i), void *ctx)
{
	int r;
	for (int i = 0; (r = cli_opt_next(c, argc, argv, &i, usage, flags)) == CLI_OPT_NOT;) {
		int taken = own ? own(ctx, argc, argv, &i) : 0;
		if (taken < 0)
			return EXIT_USAGE;
		if (!taken)
			return cli_opt_unknown(argv[i], where, usage);
	}
	return r;
}

int cli_opt_unknown(const char *arg, const char *where, void (*usage)(FILE *out))
{
	fprintf(stderr, "joey: error: unknown option \"%s\" for %s\n", arg, where);
	usage(stderr);
	return EXIT_USAGE;
}

int cli_target_opt(int argc, char **argv, int *i, const char **only_dest, enum diff_mode *diff, bool *diff_set,
		   double *max_delete_percent)
{
	bool missing;
	const char *v;
	if ((v = cli_opt_value("--destination", argc, argv, i, &missing))) {
		*only_dest = v;
		return 1;
	}
	if (missing) /* reported once: not also as an unknown option */
		return -1;
	if ((v = cli_opt_value("--diff", argc, argv, i, &missing))) {
		if (!diff_mode_parse(v, diff)) {
			fprintf(stderr, "joey: error: --diff must be warehouse, stream or auto, not \"%s\"\n", v);
			return -1;
		}
		*diff_set = true;
		return 1;
	}
	if (missing)
		return -1;
	return cli_opt_number("--max-delete-percent", 0, 100, argc, argv, i, max_delete_percent);
}

/* <config dir>/../.joey/name: the default state directory. */
static char *default_dir_file(const struct cli_common *c, const char *name)
{
	struct strbuf sb = STRBUF_INIT;
	size_t len = strlen(c->config_dir);
	while (len > 1 && c->config_dir[len - 1] == '/')
		len--;
	strbuf_add(&sb, c->config_dir, len);
	strbuf_addf(&sb, "/../.joey/%s", name);
	return strbuf_detach(&sb, NULL);
}

void cli_common_finish(struct cli_common *c)
{
	if (!c->config_dir) {
		const char *env = getenv("JOEY_CONFIG");
		c->config_dir = env && *env ? env : "./config";
	}
	if (!c->state_path) {
		const char *url = getenv("JOEY_STATE_URL");
		const char *env = getenv("JOEY_STATE");
		if (url && *url) {
			c->state_path = url;
		} else if (env && *env) {
			c->state_path = env;
		} else {
			c->owned_state_path = default_dir_file(c, "state.db");
			c->state_path = c->owned_state_path;
		}
	}
}

void cli_common_release(struct cli_common *c)
{
	if (c->owned_state_path && c->state_path == c->owned_state_path)
		c->state_path = NULL;
	free(c->owned_state_path);
	c->owned_state_path = NULL;
}

char *cli_secrets_path(const struct cli_common *c)
{
	const char *env = getenv("JOEY_SECRETS_FILE");
	const char *state = c->state_path;
	const char *slash;
	struct strbuf sb = STRBUF_INIT;

	if (env && *env)
		return xstrdup(env);
	if (!state)
		return NULL;
	if (state_path_is_url(state)) /* a database has no directory: the default one */
		return c->config_dir ? default_dir_file(c, "secrets.json") : NULL;
	slash = strrchr(state, '/');
	if (slash)
		strbuf_add(&sb, state, (size_t)(slash - state + 1));
	strbuf_addstr(&sb, "secrets.json");
	return strbuf_detach(&sb, NULL);
}

static volatile int stop_signalled;

static void on_stop_signal(int sig)
{
	if (stop_signalled) { /* the second one: stop now, as without a handler */
		signal(sig, SIG_DFL);
		raise(sig);
		return;
	}
	stop_signalled = 1;
}

volatile int *cli_stop_on_signal(void)
{
	struct sigaction sa = { 0 }, old;
	sa.sa_handler = on_stop_signal;
	sa.sa_flags = SA_RESTART;
	sigemptyset(&sa.sa_mask);
	/* a SIGINT ignored from the start (a background job of a script) stays ignored */
	if (sigaction(SIGINT, NULL, &old) == 0 && old.sa_handler != SIG_IGN)
		sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	source_set_stop(&stop_signalled);
	return &stop_signalled;
}

void cli_protect_memory(void)
{
	const char *allow = getenv("JOEY_ALLOW_CORE");
	struct rlimit rl;
	if (allow && !strcmp(allow, "1"))
		return;
	if (getrlimit(RLIMIT_CORE, &rl) == 0) {
		rl.rlim_cur = 0;
		(void)setrlimit(RLIMIT_CORE, &rl);
	}
	/* no core file even where a crash handler ignores the limit, and no ptrace by the same user */
	(void)prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
}

struct config *cli_load_config(const struct cli_common *c)
{
	struct config *cfg = NULL;
	struct jerror err = JERROR_INIT;
	char *secrets = cli_secrets_path(c);
	struct config_opts opts = { .secrets_path = secrets };
	enum jerr rc;

	cli_protect_memory(); /* before the secrets are resolved into memory */
	rc = config_load(c->config_dir, &opts, &cfg, &err);

	free(secrets);
	if (!cfg) {
		jerror_print(stderr, &err);
		jerror_release(&err);
		return NULL;
	}
	config_print_diags(cfg, stderr);
	if (rc != JERR_OK) {
		fprintf(stderr, "joey: error: config \"%s\" is invalid: %zu error%s\n", c->config_dir,
			cfg->n_errors, cfg->n_errors == 1 ? "" : "s");
		fprintf(stderr, "hint: run 'joey validate --config %s' for the full report\n",
			c->config_dir);
		config_free(cfg);
		jerror_release(&err);
		return NULL;
	}
	jerror_release(&err);
	return cfg;
}
