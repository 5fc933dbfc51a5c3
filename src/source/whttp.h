/*
 * whttp.h: the small synchronous HTTPS client of the warehouse connectors (Snowflake SQL
 * API, BigQuery REST): one libcurl easy handle per connection, so connections are
 * reused (keep-alive) between a statement, its polls and its result partitions.
 *
 *   struct whttp h;
 *   whttp_init(&h);
 *   rc = whttp_call(&h, &req, &resp, &err);   -- any number of times
 *   whttp_resp_release(&resp);
 *   whttp_release(&h);
 *
 * Bodies are decompressed (gzip, deflate) and capped at WHTTP_MAX_BODY. whttp_abort
 * (safe from another thread: the source watcher) makes the call in progress fail with
 * JERR_INTERRUPTED. No header value (tokens) is ever put into a message.
 */
#ifndef JOEY_SOURCE_WHTTP_H
#define JOEY_SOURCE_WHTTP_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include "base/compat.h"
#include "base/error.h"
#include "base/strbuf.h"

#define WHTTP_MAX_BODY ((size_t)1 << 30)

struct whttp {
	void *curl;         /* CURL * */
	_Atomic int abort;  /* set by whttp_abort: the current call stops */
	long timeout_ms;    /* one call, default 15 minutes */
};

struct whttp_req {
	const char *method;      /* "GET", "POST" */
	const char *url;         /* borrowed */
	const char *const *headers; /* NULL-terminated "Name: value" lines, borrowed */
	const char *body;        /* NULL: none */
	size_t body_len;
};

struct whttp_resp {
	long status;              /* 0: no response */
	struct strbuf body;
	long retry_after_s;       /* Retry-After, -1 when absent */
	bool no_connection;       /* never reached the server (DNS, refused, TLS) */
};

void whttp_init(struct whttp *h);
void whttp_release(struct whttp *h);
/* Stop the call in progress (any thread). Cleared by the next whttp_call. */
static inline void whttp_abort(struct whttp *h)
{
	atomic_store(&h->abort, 1);
}

void whttp_resp_init(struct whttp_resp *r);
void whttp_resp_release(struct whttp_resp *r);

/*
 * Make one request; resp (initialised) is reset and filled. Returns JERR_OK when an HTTP
 * response arrived (whatever its status), JERR_SOURCE for a transport failure (err says
 * which host and why; resp->no_connection when nothing was sent), JERR_INTERRUPTED when
 * whttp_abort stopped it.
 */
enum jerr whttp_call(struct whttp *h, const struct whttp_req *req, struct whttp_resp *resp,
		     struct jerror *err) JOEY_WUR;

/* Append s percent-encoded for a URL query or form value. */
void whttp_add_escaped(struct strbuf *sb, const char *s);
/* A random version-4 UUID (36 characters + NUL) into out. */
void whttp_uuid(char out[37]);
/* Sleep ms milliseconds, or less when *stop becomes set (NULL: never). */
void whttp_sleep_ms(long ms, volatile int *stop);

/* The connectors' retry pause: backoff from WHTTP_BACKOFF_MS doubling up to WHTTP_BACKOFF_MAX_MS. */
#define WHTTP_BACKOFF_MS 250
#define WHTTP_BACKOFF_MAX_MS 8000

/*
 * How long to wait before retry number attempt + 1 (0-based attempt): the server's
 * Retry-After (seconds, -1: none; capped at 4 * WHTTP_BACKOFF_MAX_MS), else exponential
 * backoff with jitter (rand()).
 */
long whttp_backoff_ms(int attempt, long retry_after_s);
/* An HTTP status worth another try of a connector's request: 429, 500, 502, 503, 504. */
bool whttp_transient_status(long status);

/*
 * An app's options.endpoint (borrowed) checked: https://, or plain http on loopback
 * (tests, local proxies). On success *len is its length without trailing slashes; else
 * JERR_CONFIG naming app_id and the endpoint in err.
 */
enum jerr whttp_endpoint(const char *app_id, const char *ep, size_t *len, struct jerror *err) JOEY_WUR;

/*
 * The retry loop of a connector's requests (snowflake_statement.c, bigquery_statement.c):
 *   for (attempt...) {
 *       rc = whttp_watched_call(&r, &req, resp, &terr, err, &stop);  if (stop) break;
 *       ... the connector's 401 handling ...
 *       if (transient && retries left) { if ((rc = whttp_retry_pause(...))) break; continue; }
 *       if (rc) { whttp_unreachable(&r, &terr, err); ... }
 *   }
 */
struct source_watch;

struct whttp_retry {
	struct whttp *http;
	struct source_watch *watch; /* the connection's (source.h) */
	const char *app_id;         /* borrowed, for messages */
	const char *service;        /* "Snowflake", "BigQuery": for messages */
	const char *what;           /* borrowed: names the request in messages */
};

/*
 * One call, its wait watched. Returns like whttp_call, a transport failure's message in
 * terr (JERROR_INIT from the caller, who releases it). *stop is set when the loop ends
 * here with the returned code in err: the watcher cancelled the call (its error, terr
 * released), or whttp_abort interrupted it (terr moved into err).
 */
enum jerr whttp_watched_call(const struct whttp_retry *r, const struct whttp_req *req, struct whttp_resp *resp,
			     struct jerror *terr, struct jerror *err, bool *stop) JOEY_WUR;

/*
 * Wait before retry attempt + 1 of a transient failure and say so in the log: rc is a
 * transport failure (terr says which), else resp's status failed (reason: the service's
 * error reason, "" if none). terr is released. JERR_INTERRUPTED in err when the run's
 * stop came during the wait, else JERR_OK.
 */
enum jerr whttp_retry_pause(const struct whttp_retry *r, int attempt, enum jerr rc, const struct whttp_resp *resp,
			    const char *reason, struct jerror *terr, struct jerror *err) JOEY_WUR;

/* A transport failure once retries are spent: "<what>: cannot reach <service>", terr as detail. */
void whttp_unreachable(const struct whttp_retry *r, const struct jerror *terr, struct jerror *err);

#endif
