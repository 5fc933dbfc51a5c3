/*
 * clickhouse_http.c: the ClickHouse connector's HTTP requests (clickhouse.c's design
 * note): a POST of the SQL with the settings in the URL, driven on the connection's curl
 * multi handle with back-pressure, short statements read whole, KILL QUERY of an
 * abandoned one, and the error of a failed request with a hint. A request owns its curl
 * handle and body; the connection is borrowed. Called by clickhouse.c and
 * clickhouse_rows.c.
 */
#include <ctype.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "base/xalloc.h"
#include "source/chwire.h"
#include "source/clickhouse_internal.h"
#include "source/source.h"

/* libcurl could not allocate a handle: out of memory, as xalloc handles it. */
JOEY_NORETURN void ch_curl_nomem(void)
{
	fprintf(stderr, "joey: out of memory (libcurl handle)\n");
	_exit(1);
}

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static void curl_init_once(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* credentials as headers, never in the URL (logs, proxies) */
void ch_http_setup(struct ch_conn *c)
{
	struct strbuf h = STRBUF_INIT;
	pthread_once(&curl_once, curl_init_once);
	if (c->user || c->password) {
		strbuf_addf(&h, "X-ClickHouse-User: %s", c->user ? c->user : "default");
		c->headers = curl_slist_append(c->headers, h.buf);
		strbuf_reset(&h);
		if (c->password) {
			strbuf_addf(&h, "X-ClickHouse-Key: %s", c->password);
			c->headers = curl_slist_append(c->headers, h.buf);
		}
	}
	c->headers = curl_slist_append(c->headers, "Content-Type: text/plain; charset=UTF-8");
	c->multi = curl_multi_init();
	if (!c->multi || !c->headers)
		ch_curl_nomem();
	strbuf_release(&h);
}

/* ---- HTTP ---- */

static size_t on_body(char *data, size_t size, size_t nmemb, void *ud)
{
	struct ch_req *r = ud;
	size_t n = size * nmemb;
	size_t unread = r->body.len - r->pos;
	if (!r->bounded && unread >= CH_BUF_HIGH && n) {
		r->paused = true;
		return CURL_WRITEFUNC_PAUSE;
	}
	if (r->bounded && r->body.len > CH_LINE_MAX)
		return 0; /* a short statement's answer is never this big: abort */
	if (r->pos && r->pos >= r->body.len / 2) { /* drop what was read */
		memmove(r->body.buf, r->body.buf + r->pos, unread);
		strbuf_setlen(&r->body, unread);
		r->pos = 0;
	}
	strbuf_add(&r->body, data, n);
	return n;
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *ud)
{
	struct ch_req *r = ud;
	size_t n = size * nmemb;
	static const char tag[] = "X-ClickHouse-Exception-Tag:", code[] = "X-ClickHouse-Exception-Code:";
	const char *v = NULL;
	char *dst = NULL;
	size_t cap = 0, pre = 0;
	if (n > sizeof(tag) - 1 && !strncasecmp(data, tag, sizeof(tag) - 1)) {
		v = data + sizeof(tag) - 1, dst = r->exc_tag, cap = sizeof(r->exc_tag);
		pre = 13; /* "__exception__" */
	} else if (n > sizeof(code) - 1 && !strncasecmp(data, code, sizeof(code) - 1)) {
		v = data + sizeof(code) - 1, dst = r->exc_code, cap = sizeof(r->exc_code);
	}
	if (v) {
		const char *e = data + n;
		while (v < e && (*v == ' ' || *v == '\t'))
			v++;
		while (e > v && (e[-1] == '\r' || e[-1] == '\n' || e[-1] == ' '))
			e--;
		if ((size_t)(e - v) + pre < cap && e > v)
			snprintf(dst, cap, "%s%.*s", pre ? "__exception__" : "", (int)(e - v), v);
	}
	return n;
}

/* Append the URL-encoded s. */
static void add_urlenc(struct strbuf *sb, const char *s)
{
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;
		if (isalnum(ch) || ch == '-' || ch == '_' || ch == '.' || ch == '~')
			strbuf_addch(sb, (char)ch);
		else
			strbuf_addf(sb, "%%%02X", ch);
	}
}

/* Start a POST of sql (borrowed for the call: copied by curl). */
struct ch_req *ch_req_start(struct ch_conn *c, const char *sql, bool bounded)
{
	struct ch_req *r = xcalloc(1, sizeof(*r));
	struct strbuf url = STRBUF_INIT;
	static atomic_uint seq;
	r->c = c;
	r->bounded = bounded;
	strbuf_init(&r->body, 0);
	snprintf(r->query_id, sizeof(r->query_id), "joey-%ld-%u-%zu", (long)time(NULL),
		 atomic_fetch_add(&seq, 1), ++c->n_requests);
	strbuf_addf(&url, "%s?database=", c->base_url);
	add_urlenc(&url, c->database);
	strbuf_addf(&url, "&query_id=%s", r->query_id);
	if (!c->no_settings) {
		if (bounded) {
			strbuf_addstr(&url, "&wait_end_of_query=1");
			if (c->timeout_ms > 0)
				strbuf_addf(&url, "&max_execution_time=%" PRId64, (c->timeout_ms + 999) / 1000);
		} else {
			/* joey may take its time between rows (Braze's rate limit) */
			strbuf_addstr(&url, "&send_timeout=3600");
		}
		strbuf_addstr(&url, CH_THROW_SETTINGS);
		strbuf_addstr(&url, "&readonly=1"); /* last: it freezes the settings after it */
	}
	r->easy = curl_easy_init();
	if (!r->easy)
		ch_curl_nomem();
	curl_easy_setopt(r->easy, CURLOPT_URL, url.buf);
	curl_easy_setopt(r->easy, CURLOPT_POST, 1L);
	curl_easy_setopt(r->easy, CURLOPT_COPYPOSTFIELDS, sql);
	curl_easy_setopt(r->easy, CURLOPT_HTTPHEADER, c->headers);
	curl_easy_setopt(r->easy, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(r->easy, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(r->easy, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(r->easy, CURLOPT_HEADERDATA, r);
	curl_easy_setopt(r->easy, CURLOPT_ERRORBUFFER, r->errbuf);
	curl_easy_setopt(r->easy, CURLOPT_PRIVATE, r);
	curl_easy_setopt(r->easy, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
	curl_easy_setopt(r->easy, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(r->easy, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(r->easy, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(r->easy, CURLOPT_USERAGENT, "joey");
	curl_multi_add_handle(c->multi, r->easy);
	strbuf_release(&url);
	return r;
}

void ch_req_free(struct ch_req *r)
{
	if (!r)
		return;
	curl_multi_remove_handle(r->c->multi, r->easy);
	curl_easy_cleanup(r->easy);
	strbuf_release(&r->body);
	free(r);
}

/* Drive the transfers of c until r has news (data, its end) or the watcher aborts. */
void ch_req_step(struct ch_req *r)
{
	struct ch_conn *c = r->c;
	int running = 0, q;
	CURLMsg *m;
	size_t before = r->body.len - r->pos;

	if (r->paused) {
		r->paused = false;
		curl_easy_pause(r->easy, CURLPAUSE_CONT); /* may deliver data right away */
	}
	source_wait_begin(&c->watch);
	for (;;) {
		curl_multi_perform(c->multi, &running);
		while ((m = curl_multi_info_read(c->multi, &q))) {
			if (m->msg != CURLMSG_DONE)
				continue;
			struct ch_req *o = NULL;
			curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&o);
			if (o) {
				o->done = true;
				o->result = m->data.result;
				curl_easy_getinfo(m->easy_handle, CURLINFO_RESPONSE_CODE, &o->status);
			}
		}
		if (r->done || r->paused || r->body.len - r->pos != before)
			break;
		if (atomic_load(&c->abort_all)) {
			r->done = true;
			r->result = CURLE_ABORTED_BY_CALLBACK;
			break;
		}
		curl_multi_poll(c->multi, NULL, 0, 100, NULL);
	}
	source_wait_end(&c->watch);
	if (!r->status)
		curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &r->status);
}

/* The whole answer of a short statement. */
void ch_req_wait(struct ch_req *r)
{
	while (!r->done)
		ch_req_step(r);
}

/* Ask the server to stop a statement joey gave up on (best effort, short). */
void ch_req_kill(struct ch_conn *c, const char *query_id)
{
	struct strbuf sql = STRBUF_INIT;
	strbuf_addf(&sql, "KILL QUERY WHERE query_id = '%s' ASYNC", query_id);
	CURL *e = curl_easy_init();
	struct strbuf url = STRBUF_INIT;
	struct strbuf sink = STRBUF_INIT;
	if (e) {
		strbuf_addf(&url, "%s?database=", c->base_url);
		add_urlenc(&url, c->database);
		curl_easy_setopt(e, CURLOPT_URL, url.buf);
		curl_easy_setopt(e, CURLOPT_POSTFIELDS, sql.buf);
		curl_easy_setopt(e, CURLOPT_HTTPHEADER, c->headers);
		curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 2000L);
		curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
		curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
		struct ch_req tmp = { .c = c, .bounded = true };
		tmp.body = sink;
		curl_easy_setopt(e, CURLOPT_WRITEDATA, &tmp);
		(void)curl_easy_perform(e);
		strbuf_release(&tmp.body);
		curl_easy_cleanup(e);
	}
	strbuf_release(&url);
	strbuf_release(&sql);
}

/* ---- errors ---- */

/*
 * The error of a finished or failed request r as a message of what (a sentence head,
 * e.g. "app \"ch\": cannot connect to ClickHouse"), with the server's message as detail
 * and a hint naming the option to fix. *code gets the server's error code (0: none).
 */
enum jerr ch_req_error(struct ch_req *r, const char *what, int *code, struct jerror *err)
{
	struct ch_conn *c = r->c;
	struct strbuf msg = STRBUF_INIT;
	int cc = 0;
	*code = 0;

	c->last_curl = r->result;
	if (r->result == CURLE_ABORTED_BY_CALLBACK && atomic_load(&c->abort_all))
		return source_watch_error(&c->watch, what, err);
	if (r->result != CURLE_OK && !(r->result == CURLE_WRITE_ERROR && r->status >= 400)) {
		jerror_set(err, JERR_SOURCE, "%s at %s", what, c->base_url);
		jerror_detail(err, "%s", r->errbuf[0] ? r->errbuf : curl_easy_strerror(r->result));
		switch (r->result) {
		case CURLE_COULDNT_CONNECT:
			jerror_hint(err, "nothing answers there: check the app's \"host\" and \"port\" options "
					 "(a host without http:// means https:// on port 443 unless it starts "
					 "with \"localhost\"; ClickHouse's HTTP port is usually 8123)");
			break;
		case CURLE_COULDNT_RESOLVE_HOST:
			jerror_hint(err, "no such host: check the app's \"host\" option");
			break;
		case CURLE_SSL_CONNECT_ERROR:
		case CURLE_PEER_FAILED_VERIFICATION:
			jerror_hint(err, "the TLS handshake failed: a host without http:// means https://; "
					 "write \"http://<host>\" in the app's \"host\" option for a plain "
					 "HTTP port (8123), or check the server's certificate");
			break;
		case CURLE_OPERATION_TIMEDOUT:
		case CURLE_RECV_ERROR:
		case CURLE_GOT_NOTHING:
			if (!strncmp(c->base_url, "https:", 6))
				jerror_hint(err, "no TLS answer: a host without http:// means https://; write "
						 "\"http://<host>\" in the app's \"host\" option for a plain HTTP "
						 "port (8123)");
			else
				jerror_hint(err, "the server did not answer in time: check the app's \"host\" "
						 "and \"port\" options and the network");
			break;
		default:
			break;
		}
		return JERR_SOURCE;
	}
	const char *body = r->body.buf + r->pos;
	size_t blen = r->body.len - r->pos;
	if (!chw_exception(body, blen, &cc, &msg)) {
		strbuf_reset(&msg);
		strbuf_addf(&msg, "HTTP %ld: ", r->status);
		for (size_t i = 0; i < blen && i < 300; i++)
			strbuf_addch(&msg, body[i] == '\n' ? ' ' : body[i]);
		if (r->exc_code[0])
			cc = atoi(r->exc_code);
	}
	*code = cc;
	jerror_set(err, JERR_SOURCE, "%s", what);
	jerror_detail(err, "ClickHouse at %s: %s", c->base_url, msg.buf);
	if (r->status == 401 || r->status == 403 || cc == 516 || cc == 192 || cc == 193 || cc == 194)
		jerror_hint(err, "the server refused the user/password pair: check the app's \"user\" "
				 "(default \"default\") and \"password\" options");
	else if (cc == 81)
		jerror_hint(err, "no database \"%s\" on that server (or the user may not see it): check "
				 "the app's \"database\" option", c->database);
	else if (cc == 497 || cc == 291)
		jerror_hint(err, "the user lacks a grant: GRANT SELECT ON %s.* TO <user> (or allow the "
				 "database in the user's settings)", c->database);
	else if (cc == 164)
		jerror_hint(err, "the user's profile does not allow this setting or statement");
	else if (cc == 159)
		jerror_hint(err, "the statement ran longer than the app's statementTimeout");
	strbuf_release(&msg);
	return JERR_SOURCE;
}

/* Run a short statement; its answer (TabSeparated without header) in r->body. */
enum jerr ch_run_short(struct ch_conn *c, const char *sql, const char *what, struct ch_req **out, int *code,
			   struct jerror *err)
{
	struct ch_req *r = ch_req_start(c, sql, true);
	ch_req_wait(r);
	*out = NULL;
	*code = 0;
	if (r->result != CURLE_OK || r->status != 200) {
		enum jerr rc = ch_req_error(r, what, code, err);
		ch_req_free(r);
		return rc;
	}
	*out = r;
	return JERR_OK;
}

/* The next line of a finished short answer (NUL-terminated in place), or NULL. */
char *ch_short_line(struct ch_req *r, size_t *len)
{
	if (r->pos >= r->body.len)
		return NULL;
	char *s = r->body.buf + r->pos;
	char *nl = memchr(s, '\n', r->body.len - r->pos);
	size_t n = nl ? (size_t)(nl - s) : r->body.len - r->pos;
	s[n] = '\0';
	r->pos += n + (nl ? 1 : 0);
	*len = n;
	return s;
}

