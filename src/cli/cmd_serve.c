/* cmd_serve.c: `joey serve`: scheduler, JSON API and web UI (src/server, docs/api.md). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/strbuf.h"
#include "cli/cli.h"
#include "server/server.h"
#include "server/worker.h"

static void usage(FILE *out)
{
	fputs("usage: joey serve [--config DIR] [--state PATH] [--listen HOST:PORT] [--stop-timeout SECONDS]\n"
	      "                  [--concurrency N] [--timeout SECONDS] [--worker [--lease SECONDS]]\n"
	      "                  [--tls-cert FILE --tls-key FILE] [--data-dir DIR] [--allow-endpoint URL]\n\n"
	      "Runs every Schedule of the config by itself and serves the web UI, the JSON API\n"
	      "(/api/v1/, docs/api.md), /healthz and Prometheus /metrics.\n\n"
	      "  --listen HOST:PORT     address to listen on (default 127.0.0.1:8020; port 0: any free one).\n"
	      "  --tls-cert FILE        serve HTTPS with this PEM certificate (chain) ...\n"
	      "  --tls-key FILE         ... and this PEM private key (session cookies become Secure)\n"
	      "  --public-url URL       the address browsers use behind a TLS proxy (https://joey.example.com):\n"
	      "                         its Origin is accepted and an https one makes cookies Secure\n"
	      "                         (default: JOEY_PUBLIC_URL)\n"
	      "  --stop-timeout SECONDS on SIGTERM, how long to wait for the batches in flight (default 60)\n"
	      "  --concurrency N        at most N Braze requests in flight per destination (default:\n"
	      "                         sized from latency and the rate limit, at most 1024)\n"
	      "  --timeout SECONDS      per Braze request (default 30)\n"
	      "  --worker               be one of several workers sharing a PostgreSQL state store (as\n"
	      "                         'joey worker'): runs are queued there as work items that any worker\n"
	      "                         runs, and only the elected leader fires the schedules (docs/scaling.md)\n"
	      "  --lease SECONDS        with --worker: lease of a claimed work item (default 30)\n"
	      "  --data-dir DIR         the only place a file of an app created or changed through the API\n"
	      "                         may be (default $JOEY_DATA_DIR, else data/ in the project root)\n"
	      "  --allow-endpoint URL   a Braze endpoint besides Braze's own https://rest.*.braze.com|eu\n"
	      "                         that the API may set (repeatable; also $JOEY_ALLOW_ENDPOINTS,\n"
	      "                         comma-separated; port * for any port), e.g. a proxy or a simulator\n\n"
	      "Nothing but /healthz is readable without signing in, also from this machine. People\n"
	      "sign in with an account (joey user add NAME --role admin|editor|viewer; with no account\n"
	      "yet, the first start prints a one-time setup link). Programs send a personal API token\n"
	      "(joey user token, or the UI) or JOEY_API_TOKEN (an admin; at least 32 characters beyond\n"
	      "loopback) in an 'Authorization: Bearer TOKEN' header.\n"
	      "Signals: SIGTERM/SIGINT stop after the batches in flight are committed; SIGHUP reloads\n"
	      "the config (an invalid one is reported and the old one kept).\n",
	      out);
}

/* "HOST:PORT", "[V6]:PORT", ":PORT" or "PORT". host is written into buf. */
static bool parse_listen(const char *v, char *buf, size_t n, const char **host, unsigned *port)
{
	const char *colon = v[0] == '[' ? strstr(v, "]:") : strrchr(v, ':');
	const char *p = v;
	if (colon) {
		size_t hl = (size_t)(colon - v) + (v[0] == '[');
		if (hl >= n)
			return false;
		memcpy(buf, v, hl);
		buf[hl] = 0;
		if (hl)
			*host = buf;
		p = colon + 1 + (v[0] == '[');
	}
	char *end;
	long pn = strtol(p, &end, 10);
	if (*end || end == p || pn < 0 || pn > 65535)
		return false;
	*port = (unsigned)pn;
	return true;
}

int cmd_serve(int argc, char **argv)
{
	struct cli_common c = { 0 };
	struct server_opts o;
	struct strbuf allow = STRBUF_INIT; /* --allow-endpoint values, comma-separated */
	char hostbuf[256];
	int r;
	const struct cli_flag flags[] = { { "--worker", &o.worker }, { NULL, NULL } };

	server_opts_defaults(&o);
	for (int i = 0; (r = cli_opt_next(&c, argc, argv, &i, usage, flags)) == CLI_OPT_NOT;) {
		bool missing;
		const char *v;
		if ((v = cli_opt_value("--listen", argc, argv, &i, &missing))) {
			if (!parse_listen(v, hostbuf, sizeof(hostbuf), &o.listen_host, &o.listen_port)) {
				fprintf(stderr, "joey: error: --listen takes HOST:PORT (e.g. 127.0.0.1:8020), not \"%s\"\n", v);
				return EXIT_USAGE;
			}
			continue;
		}
		if (missing)
			return EXIT_USAGE;
		if ((v = cli_opt_value("--tls-cert", argc, argv, &i, &missing))) {
			o.tls_cert = v;
			continue;
		}
		if ((v = cli_opt_value("--tls-key", argc, argv, &i, &missing))) {
			o.tls_key = v;
			continue;
		}
		if (!missing && (v = cli_opt_value("--public-url", argc, argv, &i, &missing))) {
			if (strncmp(v, "https://", 8) && strncmp(v, "http://", 7)) {
				fprintf(stderr, "joey: error: --public-url takes http(s)://HOST[:PORT], not \"%s\"\n", v);
				return EXIT_USAGE;
			}
			o.public_url = v;
			continue;
		}
		if ((v = cli_opt_value("--data-dir", argc, argv, &i, &missing))) {
			o.cfg.data_dir = v;
			continue;
		}
		if ((v = cli_opt_value("--allow-endpoint", argc, argv, &i, &missing))) {
			strbuf_addf(&allow, "%s%s", allow.len ? "," : "", v);
			continue;
		}
		if (missing) {
			fprintf(stderr, "joey: error: %s needs a value\n", argv[i]);
			return EXIT_USAGE;
		}
		if ((r = cli_server_opt(&o, argc, argv, &i))) {
			if (r < 0)
				return EXIT_USAGE;
			continue;
		}
		strbuf_release(&allow);
		return cli_opt_unknown(argv[i], "serve", usage);
	}
	if (r != CLI_OPT_DONE)
		return r;
	/* the operator's limits on what the API may change (config/guard.h) */
	if (!o.cfg.data_dir) {
		const char *e = getenv("JOEY_DATA_DIR");
		o.cfg.data_dir = e && *e ? e : "data";
	}
	if (!allow.len && getenv("JOEY_ALLOW_ENDPOINTS"))
		strbuf_addstr(&allow, getenv("JOEY_ALLOW_ENDPOINTS"));
	o.cfg.allow_endpoints = allow.len ? allow.buf : NULL;
	r = cli_server_run(&c, &o);
	strbuf_release(&allow);
	return r;
}

int cli_server_opt(struct server_opts *o, int argc, char **argv, int *i)
{
	double d;
	int r;
	if ((r = cli_opt_number("--lease", 1, 3600, argc, argv, i, &d))) {
		if (r > 0)
			o->lease_ms = (int64_t)(d * 1000);
		return r;
	}
	if ((r = cli_opt_number("--stop-timeout", 0, 3600, argc, argv, i, &d))) {
		if (r > 0)
			o->stop_timeout_s = d;
		return r;
	}
	if ((r = cli_opt_number("--concurrency", 1, 1024, argc, argv, i, &d))) {
		if (r > 0)
			o->dest.max_inflight = (int)d;
		return r;
	}
	if ((r = cli_opt_number("--timeout", 1, 600, argc, argv, i, &d))) {
		if (r > 0)
			o->dest.timeout_ms = (long)(d * 1000);
		return r;
	}
	return 0;
}

int cli_server_run(struct cli_common *c, struct server_opts *o)
{
	struct jerror err = JERROR_INIT;
	char *secrets;
	int ret = 0;

	cli_common_finish(c);
	cli_protect_memory(); /* serve and worker hold every app's key for as long as they run */
	if (log_get_level() < LOG_INFO)
		log_set_level(LOG_INFO);
	secrets = cli_secrets_path(c);
	o->config_dir = c->config_dir;
	o->state_path = c->state_path;
	o->secrets_path = secrets;
	o->cfg.secrets_path = secrets;
	if (!o->token)
		o->token = getenv("JOEY_API_TOKEN");
	if (!o->public_url && getenv("JOEY_PUBLIC_URL") && *getenv("JOEY_PUBLIC_URL"))
		o->public_url = getenv("JOEY_PUBLIC_URL");
	/* before the store is opened: a worker pointed at a path would create an SQLite file there */
	if ((o->worker && worker_check_state_path(o->state_path, &err)) || server_main(o, &err)) {
		jerror_print(stderr, &err);
		ret = err.code == JERR_USAGE ? EXIT_USAGE : 1;
	}
	jerror_release(&err);
	free(secrets);
	cli_common_release(c);
	return ret;
}
