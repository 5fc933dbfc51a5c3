/* http.c: libcurl multi client: keep-alive, concurrency, timeouts, rate-limit headers. */
/*
 * The event loop is libcurl's socket interface (curl_multi_socket_action), not
 * curl_multi_perform: perform visits every transfer on every call, which with hundreds
 * of requests in flight (the Braze connector's window at 250-500 ms of latency) costs
 * a system call per transfer per wake-up. Here libcurl tells us its sockets
 * (on_socket) and its next timeout (on_timer); they are watched with epoll, so a
 * wake-up costs what is ready, not every socket in flight (poll() scanned them all on
 * every call: 3% of a first sync's CPU), and http_run hands libcurl only the
 * ones that are ready.
 *
 * The request headers are the same for every request of a client (but for the bulk
 * header): built once per API key and kept (headers_for), not once per request.
 *
 * A kept-alive connection stays in the epoll set between its requests: libcurl stops
 * watching it when an answer is in (CURL_POLL_REMOVE) and watches it again for the next
 * request on it (CURL_POLL_IN), which cost an EPOLL_CTL_DEL and an EPOLL_CTL_ADD per
 * request. The set keeps it (struct watched) and the next watch for the same events costs
 * nothing; an event on a socket libcurl does not watch (the server closed the idle
 * connection) takes it out of the set then. libcurl opens and closes its sockets through
 * on_open and on_close, so a socket number used again is always known as new.
 */
#include "dest/http.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "base/xalloc.h"

#define HTTP_EPOLL_EVENTS 256 /* ready sockets taken per wait; the rest on the next */
#define HTTP_KEPT_HEADERS 4   /* API keys a client keeps headers for (a client has one) */

struct transfer {
	CURL *easy;
	struct http_request *req;
	struct curl_slist *headers;
	bool own_headers; /* not one of the client's kept lists: freed when done */
	struct strbuf body;
	bool overflow;
	size_t max_body;
	int64_t rl_limit, rl_remaining, rl_reset, retry_after;
	char errbuf[CURL_ERROR_SIZE];
};

/* What the epoll set holds for one socket number (struct http_client.watch). */
struct watched {
	uint32_t events; /* EPOLLIN / EPOLLOUT registered in the set */
	bool in_set;     /* the socket is in the epoll set */
	bool wanted;     /* libcurl watches it (between a CURL_POLL_IN/OUT and its REMOVE) */
};

struct http_client {
	CURLM *multi;
	struct http_client_opts opts;
	size_t pending;
	struct transfer **idle; /* reusable easy handles keep their connections warm */
	size_t n_idle, alloc_idle;
	/* the sockets libcurl wants watched (on_socket), and its timer (on_timer) */
	int epfd;
	struct epoll_event ready[HTTP_EPOLL_EVENTS];
	int64_t timer_at_ms; /* monotonic ms when libcurl wants a timeout call; -1: none */
	struct watched *watch; /* by socket number, n_watch of them */
	size_t n_watch;
	uint64_t set_changes; /* epoll_ctl calls (http_set_changes) */
	/* request headers kept per API key and bulk flag (headers_for) */
	struct kept_headers {
		char *auth; /* the bearer (a secret: wiped when freed); NULL: none */
		struct curl_slist *list[2]; /* [bulk] */
	} kept[HTTP_KEPT_HEADERS];
	size_t n_kept;
};

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The entry of socket number s (grown as needed), or NULL for a negative s. */
static struct watched *watched(struct http_client *hc, curl_socket_t s)
{
	if (s < 0)
		return NULL;
	if ((size_t)s >= hc->n_watch) {
		size_t n = hc->n_watch ? hc->n_watch : 64;
		while (n <= (size_t)s)
			n *= 2;
		hc->watch = xrealloc(hc->watch, n * sizeof(*hc->watch));
		memset(hc->watch + hc->n_watch, 0, (n - hc->n_watch) * sizeof(*hc->watch));
		hc->n_watch = n;
	}
	return &hc->watch[s];
}

/*
 * CURLMOPT_SOCKETFUNCTION: watch s for what (CURL_POLL_*), or stop. A socket libcurl
 * stops watching stays in the epoll set (see the top of this file).
 */
static int on_socket(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp)
{
	struct http_client *hc = userp;
	struct watched *w = watched(hc, s);
	(void)easy;
	if (!w)
		return 0;
	if (what == CURL_POLL_REMOVE) {
		w->wanted = false;
		curl_multi_assign(hc->multi, s, NULL);
		return 0;
	}
	struct epoll_event ev = { .events = (what & CURL_POLL_IN ? EPOLLIN : 0u) |
					    (what & CURL_POLL_OUT ? EPOLLOUT : 0u),
				  .data.fd = s };
	if (!w->in_set || w->events != ev.events) {
		int op = w->in_set ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
		hc->set_changes++;
		if (epoll_ctl(hc->epfd, op, s, &ev) &&
		    epoll_ctl(hc->epfd, op == EPOLL_CTL_ADD ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, s, &ev)) {
			w->in_set = false;
			return -1; /* libcurl fails the transfers on this socket */
		}
		w->in_set = true;
		w->events = ev.events;
	}
	w->wanted = true;
	if (!socketp)
		curl_multi_assign(hc->multi, s, hc);
	return 0;
}

/* CURLOPT_OPENSOCKETFUNCTION: a new socket; its number starts with nothing known. */
static curl_socket_t on_open(void *clientp, curlsocktype purpose, struct curl_sockaddr *a)
{
	struct http_client *hc = clientp;
	(void)purpose;
	curl_socket_t s = socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
	struct watched *w = watched(hc, s);
	if (w)
		*w = (struct watched){ 0 };
	return s < 0 ? CURL_SOCKET_BAD : s;
}

/* CURLOPT_CLOSESOCKETFUNCTION: closing the socket takes it out of the epoll set. */
static int on_close(void *clientp, curl_socket_t s)
{
	struct http_client *hc = clientp;
	struct watched *w = watched(hc, s);
	if (w)
		*w = (struct watched){ 0 };
	return close(s);
}

/* CURLMOPT_TIMERFUNCTION: call curl_multi_socket_action(CURL_SOCKET_TIMEOUT) in timeout_ms. */
static int on_timer(CURLM *multi, long timeout_ms, void *userp)
{
	struct http_client *hc = userp;
	(void)multi;
	hc->timer_at_ms = timeout_ms < 0 ? -1 : now_ms() + timeout_ms;
	return 0;
}

void http_global_init(void)
{
	static bool done;
	if (!done) {
		curl_global_init(CURL_GLOBAL_DEFAULT);
		done = true;
	}
}

struct http_client *http_client_new(const struct http_client_opts *opts)
{
	struct http_client *hc = xcalloc(1, sizeof(*hc));
	http_global_init();
	if (opts)
		hc->opts = *opts;
	if (!hc->opts.connect_timeout_ms)
		hc->opts.connect_timeout_ms = 10000;
	if (!hc->opts.timeout_ms)
		hc->opts.timeout_ms = 60000;
	if (!hc->opts.max_body)
		hc->opts.max_body = 8u << 20;
	if (!hc->opts.user_agent)
		hc->opts.user_agent = "joey/0.1";
	if (!hc->opts.max_connections)
		hc->opts.max_connections = 16;
	hc->multi = curl_multi_init();
	if (!hc->multi) {
		fprintf(stderr, "joey: could not initialise libcurl\n");
		abort();
	}
	hc->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (hc->epfd < 0) {
		perror("joey: could not create an epoll instance");
		abort();
	}
	hc->timer_at_ms = -1;
	curl_multi_setopt(hc->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
	curl_multi_setopt(hc->multi, CURLMOPT_SOCKETDATA, hc);
	curl_multi_setopt(hc->multi, CURLMOPT_TIMERFUNCTION, on_timer);
	curl_multi_setopt(hc->multi, CURLMOPT_TIMERDATA, hc);
	curl_multi_setopt(hc->multi, CURLMOPT_PIPELINING, CURLPIPE_MULTIPLEX);
	curl_multi_setopt(hc->multi, CURLMOPT_MAX_HOST_CONNECTIONS, hc->opts.max_connections);
	curl_multi_setopt(hc->multi, CURLMOPT_MAXCONNECTS, hc->opts.max_connections);
	return hc;
}

void http_set_max_connections(struct http_client *hc, long n)
{
	if (n < 1)
		n = 1;
	hc->opts.max_connections = n;
	curl_multi_setopt(hc->multi, CURLMOPT_MAX_HOST_CONNECTIONS, n);
	curl_multi_setopt(hc->multi, CURLMOPT_MAXCONNECTS, n);
}

long http_max_sockets(long want)
{
	enum { RESERVE = 128 };
	struct rlimit rl;
	if (want < 1)
		want = 1;
	if (getrlimit(RLIMIT_NOFILE, &rl))
		return want;
	if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < (rlim_t)(want + RESERVE)) {
		struct rlimit up = rl;
		up.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > (rlim_t)(want + RESERVE)
				      ? (rlim_t)(want + RESERVE)
				      : rl.rlim_max;
		if (!setrlimit(RLIMIT_NOFILE, &up))
			rl.rlim_cur = up.rlim_cur;
	}
	if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur >= (rlim_t)(want + RESERVE))
		return want;
	return rl.rlim_cur > RESERVE ? (long)(rl.rlim_cur - RESERVE) : 1;
}

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *ud)
{
	struct transfer *t = ud;
	size_t n = size * nmemb;
	if (t->body.len + n > t->max_body) {
		t->overflow = true;
		return 0;
	}
	strbuf_add(&t->body, ptr, n);
	return n;
}

static int64_t header_int(const char *v, size_t len)
{
	char buf[32];
	size_t n = len < sizeof(buf) - 1 ? len : sizeof(buf) - 1;
	memcpy(buf, v, n);
	buf[n] = '\0';
	char *end;
	long long x = strtoll(buf, &end, 10);
	return end == buf ? -1 : (int64_t)x;
}

static size_t on_header(char *line, size_t size, size_t nmemb, void *ud)
{
	struct transfer *t = ud;
	size_t n = size * nmemb;
	const char *colon = memchr(line, ':', n);
	if (!colon)
		return n;
	size_t klen = (size_t)(colon - line);
	const char *v = colon + 1;
	while (v < line + n && (*v == ' ' || *v == '\t'))
		v++;
	size_t vlen = (size_t)(line + n - v);
	while (vlen && (v[vlen - 1] == '\r' || v[vlen - 1] == '\n' || v[vlen - 1] == ' '))
		vlen--;
#define HDR(name) (klen == sizeof(name) - 1 && !strncasecmp(line, name, klen))
	if (HDR("x-ratelimit-limit"))
		t->rl_limit = header_int(v, vlen);
	else if (HDR("x-ratelimit-remaining"))
		t->rl_remaining = header_int(v, vlen);
	else if (HDR("x-ratelimit-reset"))
		t->rl_reset = header_int(v, vlen);
	else if (HDR("retry-after") || HDR("x-ratelimit-retry-after"))
		t->retry_after = header_int(v, vlen);
#undef HDR
	return n;
}

/* The request headers of req (owned by the list's nodes; curl copies the strings). */
static struct curl_slist *headers_build(const struct http_request *req)
{
	struct strbuf auth = STRBUF_INIT;
	struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
	h = curl_slist_append(h, "Accept: application/json");
	h = curl_slist_append(h, "Expect:");
	if (req->bulk)
		h = curl_slist_append(h, "X-Braze-Bulk: true");
	if (req->auth_bearer) {
		strbuf_addf(&auth, "Authorization: Bearer %s", req->auth_bearer);
		h = curl_slist_append(h, auth.buf);
		/* curl copies the string; wipe ours */
		memset(auth.buf, 0, auth.len);
		strbuf_release(&auth);
	}
	return h;
}

/* Free a header list, wiping its strings first (one holds the API key). */
static void headers_free(struct curl_slist *h)
{
	for (struct curl_slist *n = h; n; n = n->next)
		memset(n->data, 0, strlen(n->data));
	curl_slist_free_all(h);
}

/*
 * req's headers: the client's kept list for its key and bulk flag (made on first
 * use; *own false), or, past HTTP_KEPT_HEADERS keys, a list of its own (*own true:
 * freed when the request is done).
 */
static struct curl_slist *headers_for(struct http_client *hc, const struct http_request *req, bool *own)
{
	const char *auth = req->auth_bearer;
	struct kept_headers *k = NULL;
	for (size_t i = 0; i < hc->n_kept && !k; i++)
		if (auth ? hc->kept[i].auth && !strcmp(hc->kept[i].auth, auth) : !hc->kept[i].auth)
			k = &hc->kept[i];
	if (!k && hc->n_kept < HTTP_KEPT_HEADERS) {
		k = &hc->kept[hc->n_kept++];
		k->auth = auth ? xstrdup(auth) : NULL;
	}
	*own = !k;
	if (!k)
		return headers_build(req);
	if (!k->list[req->bulk])
		k->list[req->bulk] = headers_build(req);
	return k->list[req->bulk];
}

void http_submit(struct http_client *hc, struct http_request *req)
{
	struct transfer *t;
	bool fresh = !hc->n_idle;
	if (hc->n_idle) {
		/* a reused handle keeps the options that are the same for every request of
		 * the client (set below when it was made); curl_easy_reset and setting them
		 * all again cost more than the rest of a request's set-up */
		t = hc->idle[--hc->n_idle];
	} else {
		t = xcalloc(1, sizeof(*t));
		t->easy = curl_easy_init();
		if (!t->easy) {
			fprintf(stderr, "joey: could not create a libcurl handle\n");
			abort();
		}
		strbuf_init(&t->body, 0);
	}
	t->req = req;
	t->max_body = hc->opts.max_body;
	req->priv = t;
	strbuf_reset(&t->body);
	t->overflow = false;
	t->rl_limit = t->rl_remaining = t->rl_reset = t->retry_after = -1;
	t->errbuf[0] = '\0';

	t->headers = headers_for(hc, req, &t->own_headers);

	CURL *e = t->easy;
	if (fresh) { /* the same for every request of this client and handle */
		curl_easy_setopt(e, CURLOPT_USERAGENT, hc->opts.user_agent);
		curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, hc->opts.connect_timeout_ms);
		curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, hc->opts.timeout_ms);
		curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
		curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
		curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");
		curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
		curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
		curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
		curl_easy_setopt(e, CURLOPT_WRITEDATA, t);
		curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
		curl_easy_setopt(e, CURLOPT_HEADERDATA, t);
		curl_easy_setopt(e, CURLOPT_ERRORBUFFER, t->errbuf);
		curl_easy_setopt(e, CURLOPT_PRIVATE, t);
		curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, on_open);
		curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, hc);
		curl_easy_setopt(e, CURLOPT_CLOSESOCKETFUNCTION, on_close);
		curl_easy_setopt(e, CURLOPT_CLOSESOCKETDATA, hc);
	}
	/* this request's: its URL, headers, method and body */
	curl_easy_setopt(e, CURLOPT_URL, req->url);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, t->headers);
	/*
	 * Wait for a connection that may multiplex (HTTP/2 is offered over TLS only) rather
	 * than open another; over plain http the first answer would be that wait, a whole
	 * round trip in which nothing else is sent.
	 */
	curl_easy_setopt(e, CURLOPT_PIPEWAIT, strncasecmp(req->url, "https:", 6) ? 0L : 1L);
	if (!strcmp(req->method, "POST")) {
		curl_easy_setopt(e, CURLOPT_POST, 1L);
		curl_easy_setopt(e, CURLOPT_POSTFIELDS, req->body.ptr ? req->body.ptr : "");
		curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body.len);
	} else {
		curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
	}
	curl_multi_add_handle(hc->multi, e);
	hc->pending++;
}

size_t http_pending(const struct http_client *hc)
{
	return hc->pending;
}

uint64_t http_set_changes(const struct http_client *hc)
{
	return hc->set_changes;
}

static void complete(struct http_client *hc, CURLMsg *msg, http_done_fn done, void *ctx)
{
	struct transfer *t = NULL;
	struct http_response res = { 0 };
	long status = 0;

	curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&t);
	curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_getinfo(msg->easy_handle, CURLINFO_TOTAL_TIME, &res.total_time_s);
	curl_multi_remove_handle(hc->multi, msg->easy_handle);
	if (t->own_headers)
		headers_free(t->headers);
	t->headers = NULL;

	res.status = status;
	if (msg->data.result != CURLE_OK) {
		res.status = msg->data.result == CURLE_WRITE_ERROR && t->overflow ? status : 0;
		res.timed_out = msg->data.result == CURLE_OPERATION_TIMEDOUT;
		curl_off_t connected = 0;
		curl_easy_getinfo(msg->easy_handle, CURLINFO_CONNECT_TIME_T, &connected);
		switch (msg->data.result) {
		case CURLE_COULDNT_RESOLVE_PROXY:
		case CURLE_COULDNT_RESOLVE_HOST:
		case CURLE_COULDNT_CONNECT:
		case CURLE_SSL_CONNECT_ERROR:
		case CURLE_PEER_FAILED_VERIFICATION:
			res.no_connection = true;
			break;
		case CURLE_OPERATION_TIMEDOUT:
			res.no_connection = connected == 0; /* timed out while connecting */
			break;
		default:
			break;
		}
		res.error = t->overflow ? "response body too large"
				       : (t->errbuf[0] ? t->errbuf : curl_easy_strerror(msg->data.result));
		if (t->overflow)
			res.status = 0;
	}
	res.body = (struct slice){ t->body.buf, t->body.len };
	res.rl_limit = t->rl_limit;
	res.rl_remaining = t->rl_remaining;
	res.rl_reset = t->rl_reset;
	res.retry_after_s = t->retry_after;
	hc->pending--;

	struct http_request *req = t->req;
	t->req = NULL;
	ALLOC_GROW(hc->idle, hc->n_idle + 1, hc->alloc_idle);
	hc->idle[hc->n_idle++] = t;
	done(ctx, req, &res);
}

/* Let libcurl act on its timer if it is due. */
static void run_timer(struct http_client *hc)
{
	int running = 0;
	if (hc->timer_at_ms >= 0 && now_ms() >= hc->timer_at_ms) {
		hc->timer_at_ms = -1;
		curl_multi_socket_action(hc->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	}
}

/* Wait up to wait_ms for a socket or the timer, and let libcurl act on what is ready. */
static void run_sockets(struct http_client *hc, int wait_ms)
{
	int running = 0;
	if (hc->timer_at_ms >= 0) {
		int64_t t = hc->timer_at_ms - now_ms();
		if (t < wait_ms)
			wait_ms = t < 0 ? 0 : (int)t;
	}
	/* the events are ours: libcurl's callbacks change the set, not this array */
	int n = epoll_wait(hc->epfd, hc->ready, HTTP_EPOLL_EVENTS, wait_ms);
	for (int i = 0; i < n; i++) {
		uint32_t e = hc->ready[i].events;
		struct watched *w = watched(hc, hc->ready[i].data.fd);
		if (w && w->in_set && !w->wanted) {
			/* an idle connection libcurl does not watch (closed by the server):
			 * out of the set now; libcurl finds it dead when it takes it again */
			epoll_ctl(hc->epfd, EPOLL_CTL_DEL, hc->ready[i].data.fd, NULL);
			hc->set_changes++;
			w->in_set = false;
			continue;
		}
		int ev = (e & (EPOLLIN | EPOLLHUP) ? CURL_CSELECT_IN : 0) | (e & EPOLLOUT ? CURL_CSELECT_OUT : 0) |
			 (e & EPOLLERR ? CURL_CSELECT_ERR : 0);
		curl_multi_socket_action(hc->multi, hc->ready[i].data.fd, ev, &running);
	}
	run_timer(hc);
}

/*
 * Hand finished transfers to done, at most HTTP_RUN_MAX_DONE (the rest wait in libcurl
 * for the next call); how many there were.
 */
static size_t drain(struct http_client *hc, http_done_fn done, void *ctx)
{
	int left;
	size_t n = 0;
	CURLMsg *msg;
	while (n < HTTP_RUN_MAX_DONE && (msg = curl_multi_info_read(hc->multi, &left)))
		if (msg->msg == CURLMSG_DONE) {
			complete(hc, msg, done, ctx);
			n++;
		}
	return n;
}

void http_run(struct http_client *hc, int timeout_ms, http_done_fn done, void *ctx)
{
	if (drain(hc, done, ctx))
		return; /* answers left from the last call first */
	run_timer(hc); /* new requests start from libcurl's timer */
	run_sockets(hc, 0);
	if (drain(hc, done, ctx) || !hc->pending || timeout_ms <= 0)
		return;
	/* nothing finished yet: wait for the first socket or the timer */
	run_sockets(hc, timeout_ms);
	drain(hc, done, ctx);
}

void http_client_free(struct http_client *hc)
{
	if (!hc)
		return;
	for (size_t i = 0; i < hc->n_idle; i++) {
		curl_easy_cleanup(hc->idle[i]->easy);
		strbuf_release(&hc->idle[i]->body);
		free(hc->idle[i]);
	}
	free(hc->idle);
	curl_multi_cleanup(hc->multi); /* may still call on_socket and on_close: epfd closes after it */
	close(hc->epfd);
	free(hc->watch);
	for (size_t i = 0; i < hc->n_kept; i++) {
		headers_free(hc->kept[i].list[0]);
		headers_free(hc->kept[i].list[1]);
		if (hc->kept[i].auth) {
			memset(hc->kept[i].auth, 0, strlen(hc->kept[i].auth));
			free(hc->kept[i].auth);
		}
	}
	free(hc);
}
