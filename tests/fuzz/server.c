/*
 * server.c: libFuzzer target for the request handling of `joey serve`
 * (server_handle in src/server/httpd.c and every API handler behind it).
 *
 * HTTP parsing itself is libmicrohttpd's; this target takes what it hands over. The
 * input is one request in a simple framing:
 *   line 1:  METHOD SP PATH[?QUERY]
 *   then:    "Name: value" lines (Host, Authorization, X-Joey-Token) up to an empty line
 *   rest:    the body
 * Query pairs are split on '&' and '='. A token header whose value is "T" is replaced
 * by the server's real token, so the fuzzer reaches the authenticated routes.
 * A server is opened once on a small SQLite config in a temporary directory. Routes
 * that write the config directory or call the network (config writes, app tests) are
 * answered but not executed: they are fuzzed through their JSON validation only
 * (the config writer has its own target, config).
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/log.h"
#include "server/serverp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

static struct server *srv;
static char dir[64];

static void write_file(const char *name, const char *text)
{
	char path[256];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *f = fopen(path, "w");
	if (!f || fputs(text, f) < 0 || fclose(f))
		abort();
}

static void cleanup(void)
{
	server_close(srv);
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd))
		fprintf(stderr, "could not remove %s\n", dir);
}

int LLVMFuzzerInitialize(int *argc, char **argv[])
{
	(void)argc;
	(void)argv;
	struct server_opts o;
	struct jerror err = JERROR_INIT;
	static char path[128], state[128];
	char db[512];
	const char *tmp = getenv("TMPDIR");

	snprintf(dir, sizeof(dir), "%s/joeyfuzzsrv.XXXXXX", tmp && strlen(tmp) < 40 ? tmp : "/tmp");
	if (!mkdtemp(dir))
		abort();
	snprintf(path, sizeof(path), "%s/cfg", dir);
	snprintf(db, sizeof(db), "sqlite3 '%s/data.db' \"CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT, n INT);"
				 "INSERT INTO users VALUES (1,'a@example.com',5),(2,'b@example.com',50),(3,NULL,NULL);\"",
		 dir);
	if (system(db))
		abort();
	if (mkdir(path, 0700))
		abort();
	write_file("cfg/config.json",
		   "[{\"class\":\"App\",\"id\":\"db\",\"type\":\"sqlite\",\"options\":{\"file\":\"data.db\"}},\n"
		   "{\"class\":\"App\",\"id\":\"braze\",\"type\":\"braze\",\"options\":{\"apiKey\":\"k\","
		   "\"restEndpoint\":\"http://127.0.0.1:9\"}},\n"
		   "{\"class\":\"Model\",\"id\":\"users\",\"name\":\"Users\",\"type\":\"profile\"},\n"
		   "{\"class\":\"Source\",\"id\":\"src\",\"type\":\"sqlite-import-table\",\"appId\":\"db\",\"modelId\":"
		   "\"users\",\"options\":{\"table\":\"users\"},\"mapping\":{\"id\":\"user_id\"}},\n"
		   "{\"class\":\"Property\",\"id\":\"user_id\",\"type\":\"integer\",\"unique\":true,\"sourceId\":\"src\","
		   "\"options\":{\"column\":\"id\"}},\n"
		   "{\"class\":\"Property\",\"id\":\"email\",\"type\":\"email\",\"sourceId\":\"src\",\"options\":{"
		   "\"column\":\"email\"}},\n"
		   "{\"class\":\"Property\",\"id\":\"n\",\"type\":\"integer\",\"sourceId\":\"src\",\"options\":{"
		   "\"column\":\"n\"}},\n"
		   "{\"class\":\"Group\",\"id\":\"big\",\"name\":\"Big\",\"modelId\":\"users\",\"rules\":[{\"propertyId\":"
		   "\"n\",\"op\":\"gt\",\"match\":10}]},\n"
		   "{\"class\":\"Destination\",\"id\":\"d\",\"type\":\"braze-export-users\",\"appId\":\"braze\","
		   "\"modelId\":\"users\",\"syncMode\":\"sync\",\"collection\":\"model\",\"mapping\":{\"external_id\":"
		   "\"user_id\",\"email\":\"email\"},\"destinationGroupMemberships\":{\"big_members\":\"big\"}},\n"
		   "{\"class\":\"Schedule\",\"id\":\"s\",\"sourceId\":\"src\",\"recurring\":true,"
		   "\"recurringFrequency\":60000,\"incremental\":false,\"options\":{\"column\":\"id\"}}]\n");
	snprintf(state, sizeof(state), "%s/state.db", dir);
	server_opts_defaults(&o);
	o.config_dir = path;
	o.state_path = state;
	o.token = "fuzz-token-fuzz-token";
	log_set_level(LOG_ERROR);
	if (server_open(&o, &srv, &err)) {
		jerror_print(stderr, &err);
		abort();
	}
	atexit(cleanup);
	return 0;
}

/* Is this a route the harness must not execute (writes to disk, network)? */
static bool skipped(const char *method, const char *path)
{
	if (!strcmp(method, "GET") || !strcmp(method, "HEAD"))
		return false;
	/* password hashing (Argon2id, 64 MiB) would make every input take a tenth of a second:
	 * sign-in, setup and user changes are tested end to end (e2e/serve_auth) */
	return !strncmp(path, "/api/v1/config", 14) || strstr(path, "/test") != NULL ||
	       !strncmp(path, "/api/v1/session", 15) || !strncmp(path, "/api/v1/setup", 13) ||
	       !strncmp(path, "/api/v1/users", 13);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *buf = malloc(size + 1);
	memcpy(buf, data, size);
	buf[size] = 0;
	struct req r = { .s = srv };
	struct reply rep = { 0 };
	bool no_store;
	char *p = buf, *end = buf + size;

	/* request line */
	char *nl = memchr(p, '\n', (size_t)(end - p));
	char *line_end = nl ? nl : end;
	*line_end = 0;
	char *sp = strchr(p, ' ');
	if (!sp || strlen(p) != (size_t)(line_end - p))
		goto out;
	*sp = 0;
	r.method = p;
	r.path = sp + 1;
	char *q = strchr(sp + 1, '?');
	if (q) {
		*q++ = 0;
		while (q && *q) {
			char *amp = strchr(q, '&');
			if (amp)
				*amp++ = 0;
			char *eq = strchr(q, '=');
			if (eq)
				*eq++ = 0;
			if (r.n_query < REQ_MAX_QUERY)
				r.query[r.n_query++] = (struct req_kv){ q, eq };
			else
				r.query_overflow = true;
			q = amp;
		}
	}
	p = nl ? nl + 1 : end;
	/* headers */
	while (p < end) {
		nl = memchr(p, '\n', (size_t)(end - p));
		line_end = nl ? nl : end;
		*line_end = 0;
		if (p == line_end) {
			p = nl ? nl + 1 : end;
			break;
		}
		char *colon = strchr(p, ':');
		if (colon) {
			*colon = 0;
			const char *v = colon + 1;
			while (*v == ' ')
				v++;
			if (!strcmp(v, "T"))
				v = "Bearer fuzz-token-fuzz-token";
			if (!strcasecmp(p, "Host"))
				r.host = v;
			else if (!strcasecmp(p, "Authorization"))
				r.authorization = v;
			else if (!strcasecmp(p, "X-Joey-Token"))
				r.x_token = !strcmp(v, "Bearer fuzz-token-fuzz-token") ? "fuzz-token-fuzz-token" : v;
			else if (!strcasecmp(p, "Cookie"))
				r.cookie = v;
			else if (!strcasecmp(p, "X-CSRF-Token"))
				r.csrf = v;
			else if (!strcasecmp(p, "Origin"))
				r.origin = v;
		}
		p = nl ? nl + 1 : end;
	}
	if (p < end) {
		r.body = p;
		r.body_len = (size_t)(end - p);
		r.too_big = r.body_len > srv->opts.max_body;
	}
	if (skipped(r.method, r.path))
		goto out;
	server_handle(srv, &r, &rep, &no_store);
	if (!rep.status || (rep.body && strlen(rep.body) != rep.len && rep.content_type &&
			    !strncmp(rep.content_type, "application/json", 16)))
		abort();
	free(rep.body);
	free(rep.set_cookie);
out:
	free(buf);
	return 0;
}
