/* whttp.c: synchronous libcurl calls for the warehouse connectors. */
#include "source/whttp.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>
#include <openssl/rand.h>

#include "base/log.h"
#include "source/source.h"

struct call {
	struct whttp *h;
	struct whttp_resp *resp;
	bool too_big;
};

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
	struct call *c = ud;
	size_t len = size * n;
	if (c->resp->body.len + len > WHTTP_MAX_BODY) {
		c->too_big = true;
		return 0;
	}
	strbuf_add(&c->resp->body, p, len);
	return len;
}

static size_t on_header(char *p, size_t size, size_t n, void *ud)
{
	struct call *c = ud;
	size_t len = size * n;
	if (len > 12 && !strncasecmp(p, "Retry-After:", 12)) {
		char *end;
		long v = strtol(p + 12, &end, 10);
		if (end != p + 12 && v >= 0)
			c->resp->retry_after_s = v;
	}
	return len;
}

static int on_progress(void *ud, curl_off_t a, curl_off_t b, curl_off_t c2, curl_off_t d)
{
	struct call *c = ud;
	(void)a, (void)b, (void)c2, (void)d;
	return atomic_load(&c->h->abort) ? 1 : 0;
}

void whttp_init(struct whttp *h)
{
	static bool global;
	if (!global) {
		curl_global_init(CURL_GLOBAL_DEFAULT);
		global = true;
	}
	memset(h, 0, sizeof(*h));
	h->curl = curl_easy_init();
	h->timeout_ms = 15 * 60 * 1000L;
}

void whttp_release(struct whttp *h)
{
	if (h->curl)
		curl_easy_cleanup(h->curl);
	h->curl = NULL;
}

void whttp_resp_init(struct whttp_resp *r)
{
	memset(r, 0, sizeof(*r));
	strbuf_init(&r->body, 0);
	r->retry_after_s = -1;
}

void whttp_resp_release(struct whttp_resp *r)
{
	strbuf_release(&r->body);
}

/* scheme://host[:port] of url, for messages (never the query: it may hold tokens) */
static void url_host(struct strbuf *sb, const char *url)
{
	const char *s = strstr(url, "://");
	s = s ? s + 3 : url;
	strbuf_add(sb, url, (size_t)(s - url) + strcspn(s, "/?#"));
}

enum jerr whttp_call(struct whttp *h, const struct whttp_req *req, struct whttp_resp *resp, struct jerror *err)
{
	CURL *curl = h->curl;
	struct curl_slist *hdrs = NULL;
	struct call c = { h, resp, false };
	char errbuf[CURL_ERROR_SIZE] = "";
	CURLcode cc;

	strbuf_reset(&resp->body);
	resp->status = 0;
	resp->retry_after_s = -1;
	resp->no_connection = false;
	atomic_store(&h->abort, 0);
	if (!curl)
		return jerror_set(err, JERR_SOURCE, "cannot start an HTTP client");
	curl_easy_reset(curl);
	for (const char *const *p = req->headers; p && *p; p++)
		hdrs = curl_slist_append(hdrs, *p);
	hdrs = curl_slist_append(hdrs, "Expect:");
	curl_easy_setopt(curl, CURLOPT_URL, req->url);
	curl_easy_setopt(curl, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(curl, CURLOPT_USERAGENT, "joey/" JOEY_VERSION);
	curl_easy_setopt(curl, CURLOPT_ACCEPT_ENCODING, "");
	curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
	curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, h->timeout_ms);
	curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, &c);
	curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(curl, CURLOPT_HEADERDATA, &c);
	curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, on_progress);
	curl_easy_setopt(curl, CURLOPT_XFERINFODATA, &c);
	curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
	if (!strcmp(req->method, "POST")) {
		curl_easy_setopt(curl, CURLOPT_POST, 1L);
		curl_easy_setopt(curl, CURLOPT_POSTFIELDS, req->body ? req->body : "");
		curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(req->body ? req->body_len : 0));
	} else if (strcmp(req->method, "GET")) {
		curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, req->method);
	}
	cc = curl_easy_perform(curl);
	curl_slist_free_all(hdrs);
	if (cc == CURLE_OK) {
		curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &resp->status);
		return JERR_OK;
	}
	if (cc == CURLE_ABORTED_BY_CALLBACK && atomic_load(&h->abort))
		return jerror_set(err, JERR_INTERRUPTED, "request stopped");
	struct strbuf host = STRBUF_INIT;
	url_host(&host, req->url);
	resp->no_connection = cc == CURLE_COULDNT_RESOLVE_HOST || cc == CURLE_COULDNT_CONNECT ||
			      cc == CURLE_SSL_CONNECT_ERROR || cc == CURLE_PEER_FAILED_VERIFICATION;
	if (c.too_big)
		jerror_set(err, JERR_SOURCE, "the answer from %s is larger than %zu MiB", host.buf,
			   WHTTP_MAX_BODY >> 20);
	else
		jerror_set(err, JERR_SOURCE, "cannot reach %s", host.buf);
	jerror_detail(err, "%s", *errbuf ? errbuf : curl_easy_strerror(cc));
	strbuf_release(&host);
	return JERR_SOURCE;
}

void whttp_add_escaped(struct strbuf *sb, const char *s)
{
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~')
			strbuf_addch(sb, c);
		else
			strbuf_addf(sb, "%%%02X", c);
	}
}

void whttp_uuid(char out[37])
{
	unsigned char b[16];
	if (RAND_bytes(b, sizeof(b)) != 1) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		for (size_t i = 0; i < sizeof(b); i++)
			b[i] = (unsigned char)(rand() ^ (ts.tv_nsec >> (i % 8)));
	}
	b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
	b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
	snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1], b[2],
		 b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
}

void whttp_sleep_ms(long ms, volatile int *stop)
{
	while (ms > 0 && !(stop && *stop)) {
		long step = ms > 50 ? 50 : ms;
		struct timespec ts = { 0, step * 1000000L };
		while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
			;
		ms -= step;
	}
}

bool whttp_transient_status(long status)
{
	return status == 429 || status == 500 || status == 502 || status == 503 || status == 504;
}

long whttp_backoff_ms(int attempt, long retry_after_s)
{
	if (retry_after_s >= 0)
		return retry_after_s > WHTTP_BACKOFF_MAX_MS * 4 / 1000 ? WHTTP_BACKOFF_MAX_MS * 4 : retry_after_s * 1000;
	long ms = WHTTP_BACKOFF_MS << (attempt < 6 ? attempt : 6);
	if (ms > WHTTP_BACKOFF_MAX_MS)
		ms = WHTTP_BACKOFF_MAX_MS;
	return ms / 2 + rand() % (ms / 2 + 1); /* jitter */
}

/* Loopback for a plain http endpoint (tests and local proxies only). */
static bool loopback_url(const char *u)
{
	if (strncmp(u, "http://", 7))
		return false;
	const char *h = u + 7;
	size_t hl = strcspn(h, ":/");
	return (hl == 9 && (!strncmp(h, "127.0.0.1", 9) || !strncmp(h, "localhost", 9))) ||
	       (hl == 5 && !strncmp(h, "[::1]", 5));
}

enum jerr whttp_endpoint(const char *app_id, const char *ep, size_t *len, struct jerror *err)
{
	if (strncmp(ep, "https://", 8) && !loopback_url(ep))
		return jerror_set(err, JERR_CONFIG, "app \"%s\": options.endpoint \"%s\" must be an https:// URL "
						    "(plain http only on 127.0.0.1 or localhost)",
				  app_id, ep);
	size_t n = strlen(ep);
	while (n && ep[n - 1] == '/')
		n--;
	*len = n;
	return JERR_OK;
}

enum jerr whttp_watched_call(const struct whttp_retry *r, const struct whttp_req *req, struct whttp_resp *resp,
			     struct jerror *terr, struct jerror *err, bool *stop)
{
	enum jerr rc;
	source_wait_begin(r->watch);
	rc = whttp_call(r->http, req, resp, terr);
	source_wait_end(r->watch);
	*stop = true;
	if (source_watch_cancelled(r->watch)) {
		jerror_release(terr);
		return source_watch_error(r->watch, r->what, err);
	}
	if (rc == JERR_INTERRUPTED) {
		*err = *terr;
		*terr = (struct jerror)JERROR_INIT;
		return rc;
	}
	*stop = false;
	return rc;
}

enum jerr whttp_retry_pause(const struct whttp_retry *r, int attempt, enum jerr rc, const struct whttp_resp *resp,
			    const char *reason, struct jerror *terr, struct jerror *err)
{
	long ms = whttp_backoff_ms(attempt, resp->retry_after_s);
	if (rc)
		log_warn("app \"%s\": %s: %s (%s); retrying in %ld ms", r->app_id, r->what, terr->msg.buf, terr->detail.buf,
			 ms);
	else
		log_warn("app \"%s\": %s: %s answered HTTP %ld%s%s; retrying in %ld ms", r->app_id, r->what, r->service,
			 resp->status, *reason ? " " : "", reason, ms);
	jerror_release(terr);
	whttp_sleep_ms(ms, r->watch->stop);
	if (r->watch->stop && *r->watch->stop)
		return jerror_set(err, JERR_INTERRUPTED, "%s: stopped", r->what);
	return JERR_OK;
}

void whttp_unreachable(const struct whttp_retry *r, const struct jerror *terr, struct jerror *err)
{
	jerror_set(err, JERR_SOURCE, "%s: cannot reach %s", r->what, r->service);
	jerror_detail(err, "%s: %s", terr->msg.buf, terr->detail.buf);
}
