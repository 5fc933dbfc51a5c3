/* main.c: braze-sim's command line, signals, max lifetime and state file. */
#include "sim.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/xalloc.h"

static const char usage[] =
	"usage: braze-sim [options]\n"
	"  --port N                 listen port (0 = pick a free one; default 0)\n"
	"  --port-file F            write the bound port to F (atomically)\n"
	"  --host H                 loopback address to bind (default 127.0.0.1)\n"
	"  --api-key KEY            accepted REST key, repeatable (default demo-key)\n"
	"  --permissions LIST       comma-separated permissions of the preceding --api-key\n"
	"  --track-cap CAP          per_array_75 | total_75 (default) | total_50\n"
	"  --rate BUCKET=N/WINDOW_S rate limit; buckets: track export delete subscription rename default\n"
	"  --rate-header-style S    standard (default) | mau\n"
	"  --rate-reset S           epoch (default) | delta\n"
	"  --lowercase-headers      send response header names in lower case\n"
	"  --latency-ms N           added to every Braze response\n"
	"  --max-lifetime S         exit after S seconds (default 3600; 0 = never)\n"
	"  --state-file F           load users from F at start, dump them on exit\n"
	"  --log-file F             append every request as a JSON line\n"
	"  --log-keep N             requests kept in memory for /_sim/requests (default 10000)\n"
	"  --seed N                 deterministic braze_id, random_bucket, created_at\n"
	"  --subscription-group UUID:CHANNEL[:NAME]  registry entry (default: any UUID is valid)\n"
	"  --blocklist-id ID        blocklisted external id, repeatable (replaces the defaults)\n"
	"  --array-cap N            string array length cap (default 500)\n"
	"  --string-too-long S      truncate (default) | error\n"
	"  --dollar-keys S          error (default) | ignore\n"
	"  --require-fields-to-export\n"
	"  --dob-format F           iso (default, 1980-12-21T00:00:00.000Z) | date\n"
	"  --v2-max-entries N       /v2/subscription/status/set entries (default 25)\n"
	"  --stall-ms N             never_ending fault gives up after N ms (default 300000)\n"
	"  --echo-key               error messages and per-object error types quote the key sent\n"
	"  --quiet                  no messages on stderr\n";

static void die(const char *fmt, const char *arg)
{
	struct strbuf sb = STRBUF_INIT;
	const char *p = strstr(fmt, "%s");
	if (p) {
		strbuf_add(&sb, fmt, (size_t)(p - fmt));
		strbuf_addstr(&sb, arg);
		strbuf_addstr(&sb, p + 2);
	} else {
		strbuf_addstr(&sb, fmt);
	}
	fprintf(stderr, "braze-sim: %s\n", sb.buf);
	strbuf_release(&sb);
	exit(2);
}

static long num_arg(const char *opt, const char *s)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || *end || v < 0)
		die("invalid number for %s", opt);
	return v;
}

static bool is_loopback(const char *h)
{
	return !strncmp(h, "127.", 4) || !strcmp(h, "::1");
}

static void write_atomic(const char *path, const char *data, size_t len)
{
	struct strbuf tmp = STRBUF_INIT;
	strbuf_addf(&tmp, "%s.tmp.%ld", path, (long)getpid());
	FILE *f = fopen(tmp.buf, "w");
	if (!f || fwrite(data, 1, len, f) != len || fclose(f) != 0 || rename(tmp.buf, path) != 0) {
		fprintf(stderr, "braze-sim: cannot write \"%s\": %s\n", path, strerror(errno));
		unlink(tmp.buf);
	}
	strbuf_release(&tmp);
}

static void set_defaults(void)
{
	static const struct rate defaults[B__COUNT] = {
		[B_TRACK] = { .limit = 3000, .window_s = 3 },
		[B_EXPORT] = { .limit = 250, .window_s = 60 },
		[B_DELETE] = { .limit = 20000, .window_s = 60 },
		[B_SUBSCRIPTION] = { .limit = 5000, .window_s = 60 },
		[B_RENAME] = { .limit = 1000, .window_s = 60 },
		[B_DEFAULT] = { .limit = 250000, .window_s = 3600 },
	};
	static const char *const blocked[] = { "null", "undefined", "nil", "none", "N/A" };
	memcpy(sim.rates, defaults, sizeof(defaults));
	sim.track_cap = CAP_TOTAL_75;
	sim.array_cap = 500;
	sim.v2_max_entries = 25;
	sim.stall_ms = 300000;
	sim.log_keep = 10000;
	sim.log_max_bytes = (size_t)256 << 20;
	sim.n_blocklist = sizeof(blocked) / sizeof(blocked[0]);
	sim.blocklist = xmalloc(sizeof(blocked));
	for (size_t i = 0; i < sim.n_blocklist; i++)
		sim.blocklist[i] = xstrdup(blocked[i]);
}

static void add_key(const char *k)
{
	sim.keys = xrealloc(sim.keys, (sim.n_keys + 1) * sizeof(*sim.keys));
	sim.keys[sim.n_keys++] = (struct apikey){ xstrdup(k), NULL, 0 };
}

static void set_perms(const char *list)
{
	if (!sim.n_keys)
		die("%s must follow an --api-key", "--permissions");
	struct apikey *k = &sim.keys[sim.n_keys - 1];
	char *copy = xstrdup(list), *save = NULL;
	k->perms = xcalloc(1, sizeof(char *));
	for (char *p = strtok_r(copy, ",", &save); p; p = strtok_r(NULL, ",", &save)) {
		k->perms = xrealloc(k->perms, (k->n_perms + 1) * sizeof(char *));
		k->perms[k->n_perms++] = xstrdup(p);
	}
	free(copy);
}

static void add_group(const char *spec)
{
	char id[37], rest[256] = "";
	const char *colon = strchr(spec, ':');
	if (!colon || colon - spec != 36)
		die("--subscription-group: expected UUID:CHANNEL[:NAME], got \"%s\"", spec);
	memcpy(id, spec, 36);
	id[36] = 0;
	snprintf(rest, sizeof(rest), "%s", colon + 1);
	char *name = strchr(rest, ':');
	if (name)
		*name++ = 0;
	if (!sim.groups)
		sim.groups = json_object();
	json_object_set_new(sim.groups, id, json_pack("{s:s,s:s}", "channel", rest, "name", name ? name : ""));
}

static void load_state(const char *path)
{
	json_error_t jerr;
	const char *err = NULL;
	if (access(path, F_OK) != 0)
		return;
	json_t *j = json_load_file(path, 0, &jerr);
	if (!j)
		die("cannot load the state file: %s", jerr.text);
	if (sim_load_users(json_object_get(j, "users"), &err) < 0)
		die("invalid state file: %s", err);
	json_decref(j);
}

static void dump_state(const char *path)
{
	pthread_mutex_lock(&sim.lock);
	json_t *j = sim_dump_users();
	pthread_mutex_unlock(&sim.lock);
	char *s = json_dumps(j, JSON_INDENT(1));
	json_decref(j);
	if (s)
		write_atomic(path, s, strlen(s));
	free(s);
}

int main(int argc, char **argv)
{
	enum { O_PORT = 256, O_PORT_FILE, O_HOST, O_KEY, O_PERMS, O_CAP, O_RATE, O_STYLE, O_RESET, O_LOWER,
	       O_LATENCY, O_LIFE, O_STATE, O_LOG, O_KEEP, O_SEED, O_GROUP, O_BLOCK, O_ACAP, O_LONG, O_DOLLAR,
	       O_REQFIELDS, O_DOB, O_V2, O_STALL, O_ECHO, O_QUIET, O_HELP };
	static const struct option opts[] = {
		{ "port", 1, NULL, O_PORT }, { "port-file", 1, NULL, O_PORT_FILE }, { "host", 1, NULL, O_HOST },
		{ "api-key", 1, NULL, O_KEY }, { "permissions", 1, NULL, O_PERMS }, { "track-cap", 1, NULL, O_CAP },
		{ "rate", 1, NULL, O_RATE }, { "rate-header-style", 1, NULL, O_STYLE },
		{ "rate-reset", 1, NULL, O_RESET }, { "lowercase-headers", 0, NULL, O_LOWER },
		{ "latency-ms", 1, NULL, O_LATENCY }, { "max-lifetime", 1, NULL, O_LIFE },
		{ "state-file", 1, NULL, O_STATE }, { "log-file", 1, NULL, O_LOG }, { "log-keep", 1, NULL, O_KEEP },
		{ "seed", 1, NULL, O_SEED }, { "subscription-group", 1, NULL, O_GROUP },
		{ "blocklist-id", 1, NULL, O_BLOCK }, { "array-cap", 1, NULL, O_ACAP },
		{ "string-too-long", 1, NULL, O_LONG }, { "dollar-keys", 1, NULL, O_DOLLAR },
		{ "require-fields-to-export", 0, NULL, O_REQFIELDS }, { "dob-format", 1, NULL, O_DOB },
		{ "v2-max-entries", 1, NULL, O_V2 }, { "stall-ms", 1, NULL, O_STALL }, { "quiet", 0, NULL, O_QUIET },
		{ "echo-key", 0, NULL, O_ECHO },
		{ "help", 0, NULL, O_HELP }, { NULL, 0, NULL, 0 },
	};
	const char *host = "127.0.0.1", *port_file = NULL, *state_file = NULL, *log_file = NULL;
	long port = 0, lifetime = 3600, seed = 0;
	bool seeded = false, custom_blocklist = false;
	int c;

	pthread_mutex_init(&sim.lock, NULL);
	pthread_mutex_init(&sim.log_lock, NULL);
	sim_memory_init();
	set_defaults();
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case O_PORT:
			port = num_arg("--port", optarg);
			if (port > 65535)
				die("invalid port %s", optarg);
			break;
		case O_PORT_FILE: port_file = optarg; break;
		case O_HOST:
			host = !strcmp(optarg, "localhost") ? "127.0.0.1" : optarg;
			if (!is_loopback(host))
				die("refusing to listen on \"%s\": braze-sim binds loopback addresses only", optarg);
			break;
		case O_KEY: add_key(optarg); break;
		case O_PERMS: set_perms(optarg); break;
		case O_CAP:
			if (!sim_parse_cap(optarg, &sim.track_cap))
				die("invalid --track-cap \"%s\"", optarg);
			break;
		case O_RATE: {
			enum sim_bucket b;
			long lim, win;
			if (!sim_parse_rate(optarg, &b, &lim, &win))
				die("invalid --rate \"%s\" (expected BUCKET=N/WINDOW_S)", optarg);
			sim.rates[b] = (struct rate){ lim, win, 0, 0, 0 };
			break;
		}
		case O_STYLE:
			if (strcmp(optarg, "standard") && strcmp(optarg, "mau"))
				die("invalid --rate-header-style \"%s\"", optarg);
			sim.mau_headers = sim.reset_delta = !strcmp(optarg, "mau");
			break;
		case O_RESET: sim.reset_delta = !strcmp(optarg, "delta"); break;
		case O_LOWER: sim.lowercase_headers = true; break;
		case O_LATENCY: sim.latency_ms = num_arg("--latency-ms", optarg); break;
		case O_LIFE: lifetime = num_arg("--max-lifetime", optarg); break;
		case O_STATE: state_file = optarg; break;
		case O_LOG: log_file = optarg; break;
		case O_KEEP: sim.log_keep = (size_t)num_arg("--log-keep", optarg); break;
		case O_SEED: seed = num_arg("--seed", optarg); seeded = true; break;
		case O_GROUP: add_group(optarg); break;
		case O_BLOCK:
			if (!custom_blocklist) {
				for (size_t i = 0; i < sim.n_blocklist; i++)
					free(sim.blocklist[i]);
				sim.n_blocklist = 0;
				custom_blocklist = true;
			}
			sim.blocklist = xrealloc(sim.blocklist, (sim.n_blocklist + 1) * sizeof(char *));
			sim.blocklist[sim.n_blocklist++] = xstrdup(optarg);
			break;
		case O_ACAP: sim.array_cap = num_arg("--array-cap", optarg); break;
		case O_LONG: sim.string_error = !strcmp(optarg, "error"); break;
		case O_DOLLAR: sim.dollar_ignore = !strcmp(optarg, "ignore"); break;
		case O_REQFIELDS: sim.require_fields = true; break;
		case O_DOB: sim.dob_date_only = !strcmp(optarg, "date"); break;
		case O_V2: sim.v2_max_entries = num_arg("--v2-max-entries", optarg); break;
		case O_STALL: sim.stall_ms = num_arg("--stall-ms", optarg); break;
		case O_QUIET: sim.quiet = true; break;
		case O_ECHO: sim.echo_key = true; break;
		case O_HELP: fputs(usage, stdout); return 0;
		default: fputs(usage, stderr); return 2;
		}
	}
	if (optind < argc)
		die("unexpected argument \"%s\"", argv[optind]);
	if (!sim.n_keys)
		add_key("demo-key");
	if (sim.log_keep)
		sim.log = xcalloc(sim.log_keep, sizeof(*sim.log));
	store_init(&sim.store, seeded, (uint64_t)seed);
	sim_stats_reset();
	if (state_file)
		load_state(state_file);
	if (log_file && !(sim.log_file = fopen(log_file, "a")))
		die("cannot open the log file \"%s\"", log_file);

	/* signals are taken synchronously by this thread; server threads inherit the mask */
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);

	unsigned bound = 0;
	struct MHD_Daemon *d = server_start(host, (unsigned)port, &bound);
	if (!d)
		die("cannot listen on %s (port in use, or not an address?)", host);
	printf("braze-sim listening on http://%s%s%s:%u\n", strchr(host, ':') ? "[" : "", host,
	       strchr(host, ':') ? "]" : "", bound);
	fflush(stdout);
	if (port_file) {
		char buf[16];
		int n = snprintf(buf, sizeof(buf), "%u\n", bound);
		write_atomic(port_file, buf, (size_t)n);
	}

	int64_t deadline = lifetime ? sim_now_ms() + lifetime * 1000 : 0;
	const char *why = "signal";
	for (;;) {
		struct timespec ts = { 0, 200 * 1000000L };
		int sig = sigtimedwait(&set, NULL, &ts);
		if (sig > 0) {
			why = sig == SIGINT ? "SIGINT" : sig == SIGHUP ? "SIGHUP" : "SIGTERM";
			break;
		}
		if (sim_stopping) {
			why = "/_sim/shutdown";
			break;
		}
		if (deadline && sim_now_ms() >= deadline) {
			why = "max lifetime reached";
			break;
		}
	}
	if (!sim.quiet)
		fprintf(stderr, "braze-sim: stopping (%s)\n", why);
	sim_stopping = 1;
	server_stop(d);
	if (state_file)
		dump_state(state_file);
	if (sim.log_file)
		fclose(sim.log_file);
	if (port_file)
		unlink(port_file);

	/* free everything so sanitizer builds report real leaks only */
	store_release(&sim.store);
	json_decref(sim.stats.by_endpoint);
	json_decref(sim.groups);
	for (size_t i = 0; i < sim.log_n; i++)
		free(sim.log[(sim.log_head + i) % sim.log_keep].line);
	free(sim.log);
	for (size_t i = 0; i < sim.n_keys; i++) {
		for (size_t k = 0; k < sim.keys[i].n_perms; k++)
			free(sim.keys[i].perms[k]);
		free(sim.keys[i].perms);
		free(sim.keys[i].key);
	}
	free(sim.keys);
	for (size_t i = 0; i < sim.n_blocklist; i++)
		free(sim.blocklist[i]);
	free(sim.blocklist);
	free(sim.faults);
	for (size_t i = 0; i < sim.n_row_errors; i++) {
		free(sim.row_errors[i].external_id);
		free(sim.row_errors[i].type);
	}
	free(sim.row_errors);
	return 0;
}
