/*
 * httpd.c: the HTTP side of `joey serve`, on libmicrohttpd: request bodies and their
 * limit, authentication (docs/api.md), routing to api.c/actions.c, the embedded UI,
 * /healthz and /metrics, and JSON replies.
 *
 * One thread per connection (a plan preview may take seconds and must not hold up
 * other clients). Slow clients (httpconn.c): a whole request must arrive within 30 s of
 * accept, connections idle for 15 s are closed, a new connection beyond 256 waiting ones
 * closes the one that has waited longest, and one beyond 64 of one address closes that
 * address's connection that has waited longest for a request (httpconn.c, not
 * libmicrohttpd's per-address limit, which refused the new one: every local client is
 * 127.0.0.1, so one local process could lock the UI).
 *
 * The path is taken as sent (MHD_OPTION_URI_LOG_CALLBACK, before libmicrohttpd decodes
 * it) and its {id} segments are percent-decoded once, here; "%00" is refused.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <microhttpd.h>
#include <sodium.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <xxhash.h>

#include "base/jsonutil.h"
#include "base/log.h"
#include "base/strbuf.h"
#include "base/xalloc.h"
#include "server/httpconn.h"
#include "server/serverp.h"

static struct MHD_Daemon *daemon_handle;

/* ---- requests ---- */

struct conn_ctx {
	char *path;      /* the request's path as sent, not decoded (owned) */
	bool bad_query;  /* "%00" in the query string */
	bool seen;       /* the handler has been called for this request */
	struct strbuf body;
	bool too_big;
	bool started;
};

const char *req_query(const struct req *r, const char *name)
{
	for (size_t i = 0; i < r->n_query; i++)
		if (!strcmp(r->query[i].key, name))
			return r->query[i].value ? r->query[i].value : "";
	return NULL;
}

bool req_check_query(const struct req *r, struct reply *out, const char *const *allowed)
{
	const char *bad = NULL;
	for (size_t i = 0; i < r->n_query && !bad; i++) {
		bool ok = false;
		for (const char *const *a = allowed; a && *a && !ok; a++)
			ok = !strcmp(*a, r->query[i].key);
		if (!ok)
			bad = r->query[i].key;
	}
	if (!bad)
		return true;
	struct strbuf msg = STRBUF_INIT, hint = STRBUF_INIT;
	strbuf_addf(&msg, "unknown query parameter \"%s\"", bad);
	if (allowed && *allowed) {
		strbuf_addstr(&hint, "this route takes:");
		for (const char *const *a = allowed; *a; a++)
			strbuf_addf(&hint, " %s", *a);
	} else {
		strbuf_addstr(&hint, "this route takes no query parameters");
	}
	reply_error(out, 400, msg.buf, NULL, hint.buf);
	strbuf_release(&msg);
	strbuf_release(&hint);
	return false;
}

bool req_query_uint(const struct req *r, struct reply *out, const char *name, uint64_t def, uint64_t max,
		    uint64_t *v)
{
	const char *s = req_query(r, name);
	*v = def;
	if (!s)
		return true;
	char *end;
	unsigned long long n = strtoull(s, &end, 10);
	if (!*s || *end || *s == '-' || n > max) {
		struct strbuf msg = STRBUF_INIT, hint = STRBUF_INIT;
		strbuf_addf(&msg, "invalid value for query parameter \"%s\"", name);
		strbuf_addf(&hint, "give a whole number from 0 to %llu", (unsigned long long)max);
		reply_error(out, 400, msg.buf, NULL, hint.buf);
		strbuf_release(&msg);
		strbuf_release(&hint);
		return false;
	}
	*v = n;
	return true;
}

bool req_query_page(const struct req *r, struct reply *out, const char *const *allowed, uint64_t *limit,
		    uint64_t *before)
{
	if (!req_check_query(r, out, allowed) || !req_query_uint(r, out, "limit", 50, 1000, limit) ||
	    !req_query_uint(r, out, "before", 0, INT64_MAX, before))
		return false;
	if (!*limit)
		*limit = 50;
	return true;
}

bool reply_read_failed(struct reply *out, enum jerr rc, json_t *items, const struct jerror *err)
{
	if (!rc || rc == JERR_INTERRUPTED)
		return false;
	json_decref(items);
	reply_jerror(out, 500, err);
	return true;
}

void reply_items(struct reply *out, json_t *items, int64_t next)
{
	reply_json(out, 200, json_pack("{s:o,s:o}", "items", items, "next", next ? json_integer(next) : json_null()));
}

bool req_no_body(const struct req *r, struct reply *out)
{
	if (!r->body_len)
		return true;
	reply_error(out, 400, "this route takes no body", NULL, NULL);
	return false;
}

bool req_param_id(const struct req *r, struct reply *out, const char *error, const char *hint, long long *id)
{
	char *end;
	*id = strtoll(r->params[0], &end, 10);
	if (!*end && *id > 0)
		return true;
	reply_error(out, 400, error, r->params[0], hint);
	return false;
}

const struct cfg_model *req_param_model(const struct req *r, struct reply *out, const struct config *cfg)
{
	const struct cfg_model *m = config_model(cfg, r->params[0]);
	if (!m)
		reply_error(out, 404, "no such model", r->params[0], "GET /api/v1/models lists them");
	return m;
}

json_t *req_json_body(const struct req *r, struct reply *out)
{
	json_error_t je;
	if (!r->body || !r->body_len) {
		reply_error(out, 400, "request body is empty", NULL, "send a JSON object");
		return NULL;
	}
	json_t *j = json_loadb(r->body, r->body_len, JSON_REJECT_DUPLICATES, &je);
	if (!j) {
		struct strbuf d = STRBUF_INIT;
		strbuf_addf(&d, "line %d, column %d: %s", je.line, je.column, je.text);
		reply_error(out, 400, "request body is not valid JSON", d.buf, NULL);
		strbuf_release(&d);
		return NULL;
	}
	if (!json_is_object(j)) {
		json_decref(j);
		reply_error(out, 400, "request body must be a JSON object", NULL, NULL);
		return NULL;
	}
	return j;
}

bool req_check_fields(json_t *body, const char *const *allowed, struct reply *out)
{
	const char *k;
	json_t *v;
	json_object_foreach(body, k, v) {
		bool ok = false;
		for (const char *const *a = allowed; *a && !ok; a++)
			ok = !strcmp(*a, k);
		if (!ok) {
			struct strbuf m = STRBUF_INIT, h = STRBUF_INIT;
			strbuf_addf(&m, "unknown field \"%s\" in the request body", k);
			strbuf_addstr(&h, "this route takes:");
			for (const char *const *a = allowed; *a; a++)
				strbuf_addf(&h, " %s", *a);
			reply_error(out, 400, m.buf, NULL, h.buf);
			strbuf_release(&m);
			strbuf_release(&h);
			return false;
		}
	}
	return true;
}

/* ---- replies ---- */

void reply_json(struct reply *out, unsigned status, json_t *j)
{
	free(out->body);
	out->status = status;
	out->body = json_dumps(j, JSON_COMPACT | JSON_ENSURE_ASCII);
	out->len = out->body ? strlen(out->body) : 0;
	out->content_type = "application/json";
	json_decref(j);
}

void server_etag(const char *text, char out[SERVER_ETAG_SIZE])
{
	snprintf(out, SERVER_ETAG_SIZE, "\"%016llx\"", (unsigned long long)XXH3_64bits(text, strlen(text)));
}

static unsigned char etag_key[crypto_generichash_KEYBYTES];
static pthread_once_t etag_key_once = PTHREAD_ONCE_INIT;

static void etag_key_make(void)
{
	randombytes_buf(etag_key, sizeof(etag_key));
}

void server_object_etag(const struct server *s, enum cfg_class cls, const char *text, char out[SERVER_ETAG_SIZE])
{
	if (cls != CLASS_APP && cls != CLASS_ALERT) {
		server_etag(text, out);
		return;
	}
	unsigned char h[8], buf[4096];
	crypto_generichash_state st;
	pthread_once(&etag_key_once, etag_key_make);
	crypto_generichash_init(&st, etag_key, sizeof(etag_key), sizeof(h));
	crypto_generichash_update(&st, (const unsigned char *)text, strlen(text) + 1);
	/* no secrets file (yet): the object's text alone */
	FILE *f = s->opts.cfg.secrets_path ? fopen(s->opts.cfg.secrets_path, "rbe") : NULL;
	for (size_t n; f && (n = fread(buf, 1, sizeof(buf), f)) > 0;)
		crypto_generichash_update(&st, buf, n);
	if (f)
		fclose(f);
	sodium_memzero(buf, sizeof(buf));
	crypto_generichash_final(&st, h, sizeof(h));
	snprintf(out, SERVER_ETAG_SIZE, "\"%02x%02x%02x%02x%02x%02x%02x%02x\"", h[0], h[1], h[2], h[3], h[4], h[5],
		 h[6], h[7]);
}

bool server_if_match_fails(const struct req *r, const char *current, const char *what, struct reply *out)
{
	const char *m = r->if_match;
	if (!m)
		return false;
	while (*m == ' ')
		m++;
	if (current && !strcmp(m, "*"))
		return false;
	/* one version or a list of them; a weak one (W/"...") compares the same */
	if (current && strstr(m, current))
		return false;
	struct strbuf e = STRBUF_INIT;
	strbuf_addf(&e, "%s was %s after you loaded it", what, current ? "changed" : "deleted");
	reply_error(out, 412, e.buf, "your change was not saved", "open it again to see the other change, then make yours again");
	strbuf_release(&e);
	return true;
}

void reply_error(struct reply *out, unsigned status, const char *error, const char *detail, const char *hint)
{
	json_t *j = json_object();
	json_object_set_new(j, "error", json_string_lossy(error));
	json_object_set_new(j, "detail", detail ? json_string_lossy(detail) : json_null());
	json_object_set_new(j, "hint", hint ? json_string_lossy(hint) : json_null());
	reply_json(out, status, j);
}

void reply_jerror(struct reply *out, unsigned status, const struct jerror *err)
{
	reply_error(out, status, err->msg.len ? err->msg.buf : jerr_default_message(err->code),
		    err->detail.len ? err->detail.buf : NULL, err->hint.len ? err->hint.buf : NULL);
}

static enum MHD_Result send_reply(struct server *s, struct MHD_Connection *con, struct reply *rep, bool no_store)
{
	struct MHD_Response *resp =
		MHD_create_response_from_buffer(rep->len, rep->body ? rep->body : (void *)"",
						rep->body ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
	rep->body = NULL;
	if (!resp) {
		free(rep->set_cookie);
		rep->set_cookie = NULL;
		return MHD_NO;
	}
	if (rep->content_type)
		MHD_add_response_header(resp, "Content-Type", rep->content_type);
	if (rep->allow)
		MHD_add_response_header(resp, "Allow", rep->allow);
	MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
	MHD_add_response_header(resp, "Referrer-Policy", "no-referrer");
	MHD_add_response_header(resp, "X-Frame-Options", "DENY");
	MHD_add_response_header(resp, "Content-Security-Policy",
				"default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
				"connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'");
	if (no_store)
		MHD_add_response_header(resp, "Cache-Control", "no-store");
	/* under TLS (ours or the proxy's --public-url): browsers never try plain HTTP first */
	if (s->tls || (s->opts.public_url && !strncasecmp(s->opts.public_url, "https://", 8)))
		MHD_add_response_header(resp, "Strict-Transport-Security", "max-age=31536000");
	if (rep->status == 401)
		MHD_add_response_header(resp, "WWW-Authenticate", "Bearer realm=\"joey\"");
	if (rep->set_cookie)
		MHD_add_response_header(resp, "Set-Cookie", rep->set_cookie);
	if (rep->etag[0])
		MHD_add_response_header(resp, "ETag", rep->etag);
	if (rep->retry_after) {
		char ra[24];
		snprintf(ra, sizeof(ra), "%u", rep->retry_after);
		MHD_add_response_header(resp, "Retry-After", ra);
	}
	free(rep->set_cookie);
	rep->set_cookie = NULL;
	enum MHD_Result ret = MHD_queue_response(con, rep->status, resp);
	MHD_destroy_response(resp);
	metrics_http(&s->metrics, rep->status);
	return ret;
}

/* ---- auth ---- */

/*
 * The host of a Host header, strictly: host [":" port], the host a name or an address,
 * or "[" IPv6 "]"; the port 1 to 5 digits. Copied to name (cap bytes); false if the
 * header is anything else ("127.0.0.1:x@evil.example").
 */
static bool host_header_name(const char *h, char *name, size_t cap)
{
	const char *host = h, *rest;
	size_t n;
	if (h[0] == '[') {
		rest = strchr(h, ']');
		if (!rest)
			return false;
		host = h + 1;
		n = (size_t)(rest - host);
		rest++;
	} else {
		n = strcspn(h, ":");
		rest = h + n;
		for (size_t i = 0; i < n; i++)
			if (!isalnum((unsigned char)h[i]) && h[i] != '.' && h[i] != '-')
				return false;
	}
	if (*rest == ':') {
		size_t digits = strspn(rest + 1, "0123456789");
		if (digits < 1 || digits > 5 || rest[1 + digits])
			return false;
	} else if (*rest) {
		return false;
	}
	if (n == 0 || n >= cap)
		return false;
	memcpy(name, host, n);
	name[n] = 0;
	return true;
}

/* On loopback, only our own host names: a DNS-rebinding page cannot read the API. */
static bool host_allowed(struct server *s, const struct req *r)
{
	if (!s->loopback)
		return true;
	char name[64];
	if (!r->host || !host_header_name(r->host, name, sizeof(name)))
		return false;
	struct in_addr a4;
	struct in6_addr a6;
	if (!strcasecmp(name, "localhost"))
		return true;
	if (inet_pton(AF_INET, name, &a4) == 1)
		return (ntohl(a4.s_addr) >> 24) == 127;
	if (inet_pton(AF_INET6, name, &a6) == 1)
		return IN6_IS_ADDR_LOOPBACK(&a6);
	return false;
}

/* ---- routing ---- */

/* Does path match pattern ("{}" matches one non-empty segment)? Fills params. */
static bool match(const char *pattern, const char *path, struct req *r, char params[][256])
{
	size_t n = 0;
	while (*pattern && *path) {
		if (pattern[0] == '{' && pattern[1] == '}') {
			const char *end = strchr(path, '/');
			size_t len = end ? (size_t)(end - path) : strlen(path);
			if (!len || len >= 256 || n >= 4)
				return false;
			memcpy(params[n], path, len);
			params[n][len] = 0;
			n++;
			path += len;
			pattern += 2;
			continue;
		}
		if (*pattern != *path)
			return false;
		pattern++;
		path++;
	}
	if (*pattern || *path)
		return false;
	r->n_params = n;
	for (size_t i = 0; i < n; i++)
		r->params[i] = params[i];
	return true;
}

/*
 * Percent-decode a path segment in place, once: the path is as sent (on_uri), so "%2541"
 * is "%41", not "A". false for a malformed escape or "%00" (it would cut the id short).
 */
static bool url_decode_segment(char *p)
{
	char *w = p;
	for (; *p; p++) {
		if (*p == '%') {
			int hi = hex_digit_value(p[1]), lo = hi < 0 ? -1 : hex_digit_value(p[2]);
			if (hi < 0 || lo < 0)
				return false;
			char c = (char)(hi * 16 + lo);
			if (!c)
				return false;
			*w++ = c;
			p += 2;
		} else {
			*w++ = *p;
		}
	}
	*w = 0;
	return true;
}

static void dispatch_api(struct req *r, struct reply *out)
{
	char params[4][256];
	char allow[128] = "";
	for (const struct route *rt = api_routes; rt->method; rt++) {
		if (!match(rt->pattern, r->path, r, params))
			continue;
		if (strcmp(rt->method, r->method)) {
			if (!strstr(allow, rt->method)) {
				if (*allow)
					strncat(allow, ", ", sizeof(allow) - strlen(allow) - 1);
				strncat(allow, rt->method, sizeof(allow) - strlen(allow) - 1);
			}
			continue;
		}
		for (size_t i = 0; i < r->n_params; i++)
			if (!url_decode_segment(params[i])) {
				reply_error(out, 400, "invalid percent-encoding in the path", NULL, NULL);
				return;
			}
		if (!auth_allows(r, out, rt->role))
			return;
		rt->fn(r, out);
		return;
	}
	if (*allow) {
		static __thread char allow_hdr[128];
		memcpy(allow_hdr, allow, sizeof(allow));
		out->allow = allow_hdr;
		reply_error(out, 405, "method not allowed", NULL, NULL);
		return;
	}
	reply_error(out, 404, "no such API route", r->path, "see docs/api.md for the routes");
}

/* An embedded file, as it is: no page carries a credential. */
static void reply_asset(const struct ui_asset *a, struct reply *out)
{
	out->status = 200;
	out->content_type = a->content_type;
	out->body = xmalloc(a->len + 1);
	memcpy(out->body, a->data, a->len + 1);
	out->len = a->len;
}

void server_handle(struct server *s, struct req *r, struct reply *rep, bool *no_store)
{
	const char *url = r->path, *method = r->method;
	*no_store = true;
	if (r->too_big) {
		char d[64];
		snprintf(d, sizeof(d), "the limit is %zu bytes", s->opts.max_body);
		reply_error(rep, 413, "request body too large", d, NULL);
		return;
	}
	if (r->query_overflow) {
		reply_error(rep, 400, "too many query parameters", NULL, NULL);
		return;
	}
	if (!strcmp(url, "/healthz")) {
		if (strcmp(method, "GET") && strcmp(method, "HEAD")) {
			rep->allow = "GET";
			reply_error(rep, 405, "method not allowed", NULL, NULL);
			return;
		}
		pthread_mutex_lock(&s->lock);
		size_t active = 0;
		for (struct active_job *aj = s->jobs; aj; aj = aj->next)
			active += !aj->finished;
		json_t *j = json_pack("{s:s,s:s,s:I}", "status", s->stopping ? "stopping" : "ok", "config",
				      s->config_error ? "error" : "ok", "runs_active", (json_int_t)active);
		pthread_mutex_unlock(&s->lock);
		reply_json(rep, s->stopping ? 503 : 200, j);
		return;
	}
	if (!host_allowed(s, r)) {
		reply_error(rep, 403, "forbidden host", "this server answers only to 127.0.0.1, localhost or [::1]",
			    "open the UI at http://127.0.0.1:PORT/, or listen on another address with --listen");
		return;
	}
	bool is_api = !strncmp(url, "/api/", 5);
	if (!auth_identify(s, r, rep))
		return;
	if (is_api) {
		if (strncmp(url, "/api/v1/", 8))
			reply_error(rep, 404, "unknown API version", url, "this server speaks /api/v1/");
		else
			dispatch_api(r, rep);
	} else if (!strcmp(url, "/metrics")) {
		if (strcmp(method, "GET")) {
			rep->allow = "GET";
			reply_error(rep, 405, "method not allowed", NULL, NULL);
		} else if (auth_allows(r, rep, ROLE_VIEWER)) {
			rep->status = 200;
			rep->body = metrics_render(s);
			rep->len = strlen(rep->body);
			rep->content_type = "text/plain; version=0.0.4; charset=utf-8";
		}
	} else {
		const struct ui_asset *a = server_asset(url);
		if (a && (!strcmp(method, "GET") || !strcmp(method, "HEAD"))) {
			reply_asset(a, rep);
			*no_store = !strcmp(a->path, "/index.html");
		} else if (a) {
			rep->allow = "GET";
			reply_error(rep, 405, "method not allowed", NULL, NULL);
		} else {
			reply_error(rep, 404, "not found", url, NULL);
		}
	}
	if (!rep->status)
		reply_error(rep, 500, "internal error: no reply", url, NULL);
}

static enum MHD_Result collect_query(void *cls, enum MHD_ValueKind kind, const char *k, const char *v)
{
	(void)kind;
	struct req *r = cls;
	if (r->n_query >= REQ_MAX_QUERY) {
		r->query_overflow = true;
		return MHD_NO;
	}
	r->query[r->n_query++] = (struct req_kv){ k, v };
	return MHD_YES;
}

/*
 * MHD_OPTION_URI_LOG_CALLBACK: called with the request target as sent, before
 * libmicrohttpd decodes it; what it returns is the request's *con_cls.
 */
static void *on_uri(void *cls, const char *uri, struct MHD_Connection *con)
{
	(void)cls;
	(void)con;
	struct conn_ctx *cc = xcalloc(1, sizeof(*cc));
	size_t n = uri ? strcspn(uri, "?") : 0;
	cc->path = xstrndup(uri ? uri : "", n);
	cc->bad_query = uri && uri[n] && strstr(uri + n, "%00");
	strbuf_init(&cc->body, 0);
	return cc;
}

/*
 * A body (chunked: no Content-Length to refuse it by) went past the limit mid-upload.
 * libmicrohttpd can queue an answer only once the whole request is in, so the 413 goes
 * out on the socket directly and the connection is closed: nothing more is read.
 */
static enum MHD_Result refuse_upload(struct server *s, struct MHD_Connection *con)
{
	struct reply rep = { 0 };
	struct strbuf msg = STRBUF_INIT;
	char d[64];
	snprintf(d, sizeof(d), "the limit is %zu bytes", s->opts.max_body);
	reply_error(&rep, 413, "request body too large", d, NULL);
	strbuf_addf(&msg,
		    "HTTP/1.1 413 Payload Too Large\r\nConnection: close\r\nContent-Type: application/json\r\n"
		    "Content-Length: %zu\r\nCache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\n\r\n",
		    rep.len);
	strbuf_add(&msg, rep.body, rep.len);
	httpconn_send_and_close(con, msg.buf, msg.len);
	metrics_http(&s->metrics, 413);
	strbuf_release(&msg);
	free(rep.body);
	return MHD_NO;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *con, const char *url, const char *method,
				  const char *version, const char *upload_data, size_t *upload_size, void **con_cls)
{
	(void)version;
	(void)url; /* decoded by libmicrohttpd, and cut at a "%00": cc->path is the path as sent */
	struct server *s = cls;
	struct conn_ctx *cc = *con_cls;
	struct reply rep = { 0 };
	bool no_store = true;

	if (!cc) /* no URI callback (cannot happen): refuse rather than guess the path */
		return MHD_NO;
	if (!cc->seen) {
		cc->seen = true;
		const char *cl = MHD_lookup_connection_value(con, MHD_HEADER_KIND, "Content-Length");
		if (cl && strtoull(cl, NULL, 10) > s->opts.max_body)
			cc->too_big = true;
		if (!cc->too_big)
			return MHD_YES;
	}
	if (*upload_size) {
		if (cc->body.len + *upload_size > s->opts.max_body)
			return refuse_upload(s, con);
		strbuf_add(&cc->body, upload_data, *upload_size);
		*upload_size = 0;
		return MHD_YES;
	}
	if (cc->started)
		return MHD_NO;
	cc->started = true;
	httpconn_busy(con);
	if (cc->bad_query) {
		reply_error(&rep, 400, "invalid percent-encoding in the query", "\"%00\" is not allowed", NULL);
		enum MHD_Result qret = send_reply(s, con, &rep, no_store);
		httpconn_sending(con);
		return qret;
	}

	struct req r = { .s = s, .method = method, .path = cc->path, .too_big = cc->too_big };
	if (cc->body.len) {
		r.body = cc->body.buf;
		r.body_len = cc->body.len;
	}
	MHD_get_connection_values(con, MHD_GET_ARGUMENT_KIND, collect_query, &r);
	r.host = MHD_lookup_connection_value(con, MHD_HEADER_KIND, "Host");
	r.authorization = MHD_lookup_connection_value(con, MHD_HEADER_KIND, "Authorization");
	r.x_token = MHD_lookup_connection_value(con, MHD_HEADER_KIND, "X-Joey-Token");
	r.cookie = MHD_lookup_connection_value(con, MHD_HEADER_KIND, "Cookie");
	r.csrf = MHD_lookup_connection_value(con, MHD_HEADER_KIND, "X-CSRF-Token");
	r.origin = MHD_lookup_connection_value(con, MHD_HEADER_KIND, "Origin");
	r.if_match = MHD_lookup_connection_value(con, MHD_HEADER_KIND, "If-Match");
	char peer[INET6_ADDRSTRLEN] = "";
	const union MHD_ConnectionInfo *ci = MHD_get_connection_info(con, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	if (ci && ci->client_addr) {
		const struct sockaddr *sa = ci->client_addr;
		if (sa->sa_family == AF_INET)
			inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, peer, sizeof(peer));
		else if (sa->sa_family == AF_INET6)
			inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, peer, sizeof(peer));
	}
	r.remote_addr = *peer ? peer : NULL;
	server_handle(s, &r, &rep, &no_store);
	enum MHD_Result ret = send_reply(s, con, &rep, no_store);
	httpconn_sending(con);
	return ret;
}

static void on_completed(void *cls, struct MHD_Connection *con, void **con_cls, enum MHD_RequestTerminationCode toe)
{
	(void)cls;
	(void)toe;
	struct conn_ctx *cc = *con_cls;
	httpconn_waiting(con); /* the next request on this connection has its own deadline */
	if (!cc)
		return;
	strbuf_release(&cc->body);
	free(cc->path);
	free(cc);
	*con_cls = NULL;
}

JOEY_PRINTF(2, 0)
static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	(void)cls;
	char buf[512];
	vsnprintf(buf, sizeof(buf), fmt, ap);
	size_t n = strlen(buf);
	while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
		buf[--n] = 0;
	log_debug("http: %s", buf);
}

/* The PEM texts of --tls-cert and --tls-key, alive while the daemon is. */
static char *tls_cert_pem, *tls_key_pem;

/* Read a PEM file whole (at most 1 MiB); NULL and err set on failure. */
static char *read_pem(const char *path, const char *what, struct jerror *err)
{
	FILE *f = fopen(path, "rb");
	struct strbuf b = STRBUF_INIT;
	char buf[4096];
	size_t n;
	if (!f) {
		jerror_set(err, JERR_USAGE, "cannot read the TLS %s \"%s\": %s", what, path, strerror(errno));
		return NULL;
	}
	while ((n = fread(buf, 1, sizeof(buf), f)) > 0 && b.len < (1 << 20))
		strbuf_add(&b, buf, n);
	fclose(f);
	if (!strstr(b.buf ? b.buf : "", "-----BEGIN ")) {
		jerror_set(err, JERR_USAGE, "the TLS %s \"%s\" is not a PEM file", what, path);
		jerror_hint(err, "give PEM text (-----BEGIN ...), e.g. from: openssl req -x509 -newkey rsa:2048 -nodes "
				 "-keyout key.pem -out cert.pem");
		strbuf_release(&b);
		return NULL;
	}
	return strbuf_detach(&b, NULL);
}

static enum jerr load_tls(struct server *s, struct jerror *err)
{
	if (!s->opts.tls_cert || !s->opts.tls_key) {
		jerror_set(err, JERR_USAGE, "--tls-cert and --tls-key go together");
		jerror_hint(err, "give both, or neither for plain HTTP");
		return JERR_USAGE;
	}
	if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
		jerror_set(err, JERR_USAGE, "this libmicrohttpd was built without TLS");
		jerror_hint(err, "install Debian's libmicrohttpd12 (built with GnuTLS), or put a TLS proxy in front");
		return JERR_USAGE;
	}
	if (!(tls_cert_pem = read_pem(s->opts.tls_cert, "certificate", err)))
		return JERR_USAGE;
	if (!(tls_key_pem = read_pem(s->opts.tls_key, "key", err))) {
		free(tls_cert_pem);
		tls_cert_pem = NULL;
		return JERR_USAGE;
	}
	return JERR_OK;
}

enum jerr httpd_start(struct server *s, struct jerror *err)
{
	struct httpconn_listener l;
	enum jerr lrc = httpconn_listen(s->opts.listen_host, s->opts.listen_port, &l, err);
	if (lrc)
		return lrc;
	/* the loopback rules follow the address bound, never the --listen text */
	s->loopback = l.loopback;
	/* a short JOEY_API_TOKEN is refused before anything is served beyond loopback */
	enum jerr trc = auth_check_token(s, err);
	if (trc) {
		close(l.fd);
		return trc;
	}
	unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL |
			 MHD_USE_ERROR_LOG;
	if (l.family == AF_INET6)
		flags |= MHD_USE_IPv6;
	struct MHD_OptionItem tls_opts[3] = { { MHD_OPTION_END, 0, NULL } };
	if (s->opts.tls_cert || s->opts.tls_key) {
		enum jerr rc = load_tls(s, err);
		if (rc) {
			close(l.fd);
			return rc;
		}
		flags |= MHD_USE_TLS;
		tls_opts[0] = (struct MHD_OptionItem){ MHD_OPTION_HTTPS_MEM_CERT, 0, tls_cert_pem };
		tls_opts[1] = (struct MHD_OptionItem){ MHD_OPTION_HTTPS_MEM_KEY, 0, tls_key_pem };
		tls_opts[2] = (struct MHD_OptionItem){ MHD_OPTION_END, 0, NULL };
		s->tls = true;
	}
	httpconn_start();
	daemon_handle = MHD_start_daemon(
		flags, 0, NULL, NULL, on_request, s, MHD_OPTION_LISTEN_SOCKET, (MHD_socket)l.fd,
		MHD_OPTION_URI_LOG_CALLBACK, on_uri, NULL, MHD_OPTION_NOTIFY_CONNECTION, httpconn_notify, NULL,
		MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)15,
		MHD_OPTION_CONNECTION_LIMIT, (unsigned)HTTPCONN_MAX_CONNECTIONS, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
		(size_t)(64 * 1024), MHD_OPTION_THREAD_STACK_SIZE,
		(size_t)(1 << 20), MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL, MHD_OPTION_ARRAY, tls_opts,
		MHD_OPTION_END);
	if (!daemon_handle) {
		httpconn_stop();
		close(l.fd);
		jerror_set(err, JERR_IO, "cannot serve on %s", l.desc);
		jerror_detail(err, s->tls ? "the address may be in use, not an address of this machine, or the TLS key "
					     "and certificate are unusable or do not match"
					   : "the address may be in use by another process, or not an address of this machine");
		jerror_hint(err, "pick another port with --listen HOST:PORT");
		s->tls = false;
		return JERR_IO;
	}
	snprintf(s->listen_desc, sizeof(s->listen_desc), "%s", l.desc);
	if (!s->loopback && !s->tls && !(s->opts.public_url && !strncasecmp(s->opts.public_url, "https://", 8)))
		log_warn("serving plain HTTP on %s, beyond loopback: passwords, session cookies and API tokens "
			 "cross the network unencrypted (hint: give --tls-cert and --tls-key, or put a TLS proxy in "
			 "front and give --public-url https://...)",
			 l.desc);
	return JERR_OK;
}

void httpd_stop(struct server *s)
{
	(void)s;
	if (daemon_handle)
		MHD_stop_daemon(daemon_handle);
	daemon_handle = NULL;
	httpconn_stop();
	if (tls_key_pem)
		sodium_memzero(tls_key_pem, strlen(tls_key_pem));
	free(tls_key_pem);
	free(tls_cert_pem);
	tls_key_pem = tls_cert_pem = NULL;
}
