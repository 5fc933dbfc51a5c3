/*
 * http.h: HTTP client on one libcurl multi handle.
 *
 * Connections are reused (keep-alive; HTTP/2 multiplexing where offered), several
 * requests are in flight at once, each with connect and total timeouts. The caller
 * drives it from one thread:
 *
 *   struct http_client *hc = http_client_new(&opts);
 *   http_submit(hc, req);                 -- req owned by the caller until completed
 *   while (http_pending(hc)) http_run(hc, timeout_ms, on_done, ctx);
 *   http_client_free(hc);
 *
 * on_done receives each finished request with its response; the response and its
 * body are valid for the call only. Response bodies are capped (max_body); a longer
 * body fails the request with a transport error.
 */
#ifndef JOEY_HTTP_H
#define JOEY_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/strbuf.h"

struct http_client_opts {
	long connect_timeout_ms; /* default 10 s */
	long timeout_ms;         /* whole request; default 60 s */
	size_t max_body;         /* default 8 MiB */
	const char *user_agent;  /* default "joey/<version>" */
	long max_connections;    /* per host (HTTP/1.1 needs one per request in flight); default 16 */
};

struct http_request {
	const char *method; /* "POST", "GET" */
	const char *url;    /* full URL (borrowed until completion) */
	const char *auth_bearer; /* secret; never logged */
	struct slice body;  /* request body (borrowed until completion) */
	bool bulk;          /* send X-Braze-Bulk: true */
	void *user;         /* caller's context */
	/* filled by the client */
	void *priv;
};

struct http_response {
	long status;              /* 0: no HTTP response (transport error) */
	const char *error;        /* transport error text, or NULL */
	bool timed_out;
	/*
	 * status 0 and the request never reached the server: the host did not resolve,
	 * the connection was refused or timed out, or the TLS handshake failed. Nothing
	 * was sent, so nothing can have been applied.
	 */
	bool no_connection;
	struct slice body;
	/* rate-limit headers, -1 when absent */
	int64_t rl_limit, rl_remaining, rl_reset, retry_after_s;
	double total_time_s;
};

typedef void (*http_done_fn)(void *ctx, struct http_request *req, const struct http_response *res);

struct http_client;

/* opts borrowed (copied); NULL for defaults. Never NULL (aborts on curl init failure). */
struct http_client *http_client_new(const struct http_client_opts *opts);
void http_client_free(struct http_client *hc);
/* Start req (borrowed until on_done is called for it). */
void http_submit(struct http_client *hc, struct http_request *req);
/* Requests submitted and not yet completed. */
size_t http_pending(const struct http_client *hc);
/*
 * Changes made to the set of sockets watched (epoll_ctl calls) so far: a request on a
 * kept-alive connection makes none (tests).
 */
uint64_t http_set_changes(const struct http_client *hc);
/*
 * Drive transfers for up to timeout_ms; calls done for each completed request, at most
 * HTTP_RUN_MAX_DONE per call (the others on the next calls), so that a caller that
 * sends between calls is not held up by a burst of answers to handle; returns as soon
 * as one completed.
 */
#define HTTP_RUN_MAX_DONE 8
void http_run(struct http_client *hc, int timeout_ms, http_done_fn done, void *ctx);
/*
 * Change the connection pool (connections per host and connections kept open) of
 * hc; requests beyond it wait inside libcurl for a connection. The Braze connector
 * raises it as its window grows (HTTP/1.1 needs one connection per request).
 */
void http_set_max_connections(struct http_client *hc, long n);
/*
 * How many sockets the process may open for want requests in flight: raises the soft
 * RLIMIT_NOFILE towards the hard one when it is lower than want plus a reserve of 128
 * descriptors for everything else (state store, sources, logs), and returns the
 * descriptors left beyond that reserve (at least 1), or want if that many fit.
 */
long http_max_sockets(long want);
/* Global init once per process (curl_global_init). */
void http_global_init(void);

#endif
