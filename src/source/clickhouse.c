/* clickhouse.c: the ClickHouse connector: one ordered, aggregated query per source over the HTTP interface (libcurl), streamed. */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "base/arena.h"
#include "base/log.h"
#include "base/xalloc.h"
#include "source/chwire.h"
#include "source/source.h"
#include "source/sqlgen.h"

/*
 * Design note (warehouses.md 5). Every statement is a POST of the SQL to the app's base
 * URL (chw_base_url: Grouparoo's host/port rule) with the settings in the query string:
 * database=<app database>, query_id (to KILL a statement joey gives up on), readonly=1
 * last (reads only: a query source cannot write), and for short statements
 * max_execution_time (the app's statementTimeout) and wait_end_of_query=1 (the server
 * buffers the answer, so an error is an HTTP error, not a trailer). Credentials go in
 * the X-ClickHouse-User / X-ClickHouse-Key headers, never in a URL or a message. A user
 * whose profile is readonly=1 may not change settings at all (code 164): connect then
 * drops every setting but the database for that connection.
 *
 * The SQL is sqlgen's with the ClickHouse dialect, which works on 18.16 (Debian) and on
 * current servers: backtick identifiers ("db.table" as two), literals inlined and typed
 * by the column they are compared with (system.columns; DESCRIBE TABLE for a source
 * query), picks as argMax/argMin over tuples (no window functions in 18.16), arrays as
 * groupArrayIf, substring filters as positionCaseInsensitiveUTF8.
 *
 * Rows stream as TabSeparatedWithNamesAndTypes (names, types, then one row per line).
 * The transfer runs on a curl multi handle driven by next(): the write callback appends
 * to the request's buffer and pauses the transfer when more than CH_BUF_HIGH bytes wait
 * unread (back-pressure: memory stays bounded however slowly the run consumes rows).
 * A server that fails after it sent the first rows cannot change the 200 status: it
 * appends its exception text ("Code: 395, e.displayText() = ...") to the body, or on
 * 25.11+ a line with __exception__<tag> (header X-ClickHouse-Exception-Tag). Every line
 * is therefore checked: a line with the wrong number of fields, one carrying the tag, a
 * body that ends without a newline or a transfer cut short is an error of the cursor,
 * never the end of the rows, so unreadable rows are never taken for deleted ones.
 */

#define CH_BUF_HIGH (1u << 20)        /* pause the transfer above this much unread */
#define CH_LINE_MAX (256u << 20)      /* one row */
#define CH_ERROR_BODY_MAX (64u << 10) /* an error answer kept for the message */
#define CH_CONNECT_TRIES 3
#define CH_RETRY_BASE_MS 250
#define CH_FORMAT " FORMAT TabSeparatedWithNamesAndTypes"

struct ch_col {
	char *name, *type;
};

struct ch_conn {
	const struct cfg_app *app;
	char *base_url;   /* scheme://host:port/ */
	char *database;
	const char *user, *password; /* borrowed from the app; the password is never printed */
	char *config_dir;
	int64_t timeout_ms;
	bool no_settings; /* a readonly profile: no settings in the URL but database */
	char *version, *timezone;
	CURLM *multi;     /* every request of the connection: its connection pool */
	struct curl_slist *headers;
	/* column types of the relation being built for (ch_load_types), for typed literals */
	char *types_of;
	struct ch_col *cols;
	size_t n_cols;
	struct source_watch watch;
	atomic_int abort_all; /* the watcher's cancel: abort the running transfer */
	CURLcode last_curl;   /* of the last failed request (connect retries) */
	size_t n_requests;    /* for query ids */
};

/* One HTTP request and its response body, read incrementally. */
struct ch_req {
	struct ch_conn *c;
	CURL *easy;
	struct strbuf body; /* received, unread from pos */
	size_t pos;
	bool paused, done, bounded;
	CURLcode result;
	long status;
	char query_id[48];
	char exc_tag[80]; /* X-ClickHouse-Exception-Tag: "__exception__<tag>" or "" */
	char exc_code[16]; /* X-ClickHouse-Exception-Code */
	char errbuf[CURL_ERROR_SIZE];
};

struct ch_cursor {
	struct source_cursor base; /* first */
	struct ch_conn *conn;
	const struct cfg_source *src;
	struct ch_req *req;
	bool pending, done;
	size_t n_fields;
	enum chw_type *types;
	struct chw_field *fields;
	struct arena arena;
	struct source_row row;
	bool grouped, int_key;
	size_t count_col;
	int since_col;
	uint64_t null_keys;
	const char *key_column;
	int last_code; /* the server's error code of a failed statement, or 0 */
	/* the current line, copied out of the request's buffer: driving the transfers (of
	 * this cursor or another on the same connection) may move that buffer while the
	 * row is still lent out */
	struct strbuf line;
};

static const char *const ch_source_types[] = {
	"clickhouse-import-table", "clickhouse-import-query", "clickhouse-table-import",
	"clickhouse-query-import", NULL,
};
static const char *const ch_app_options[] = {
	"host", "port", "database", "user", "password", "statementTimeout", NULL,
};
static const char *const ch_required_options[] = { "database", NULL };

static void ch_literal(void *conn, struct strbuf *sb, const struct sql_bind *b);
static void ch_table_info(void *conn, const char *table, const char *K, bool int_key, bool *natural,
			  const char **rowid_col);

static const struct sql_dialect ch_dialect = {
	.name = "ClickHouse",
	.quote = '`',
	.params = SQL_PARAM_LITERAL,
	.pick = SQL_PICK_ARGMAX,
	.text_type = "Nullable(String)",
	.int_type = "Nullable(Int64)",
	.key_collate = "",
	.text_order = "",
	.natural_text_order = "",
	.like_escape = "",
	.true_sql = "1",
	.false_sql = "0",
	.concat_fn = false,
	.cast_text_params = false,
	.avg_cast = NULL,
	.asc_nulls = "",
	.desc_nulls = "",
	.literal = ch_literal,
	.table_info = ch_table_info,
	.dotted_table = true,
	.substring_fn = "positionCaseInsensitiveUTF8",
	.no_correlated = true,
	.value_tiebreak = true,
};

/* ---- helpers ---- */

static const char *opt_text(const struct cfg_app *app, const char *key)
{
	const struct cfg_option *o = cfg_options_get(&app->options, key);
	return o && o->str && *o->str ? o->str : NULL;
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

/* libcurl could not allocate a handle: out of memory, as xalloc handles it. */
JOEY_NORETURN static void curl_nomem(void)
{
	fprintf(stderr, "joey: out of memory (libcurl handle)\n");
	_exit(1);
}

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static void curl_init_once(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
}

static void free_cols(struct ch_conn *c)
{
	for (size_t i = 0; i < c->n_cols; i++) {
		free(c->cols[i].name);
		free(c->cols[i].type);
	}
	free(c->cols);
	free(c->types_of);
	c->cols = NULL;
	c->types_of = NULL;
	c->n_cols = 0;
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

/* The watcher's cancel (source.h): the waiting loop aborts its transfer. */
static void ch_cancel_statement(struct source_watch *w)
{
	struct ch_conn *c = (struct ch_conn *)(void *)((char *)w - offsetof(struct ch_conn, watch));
	atomic_store(&c->abort_all, 1);
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
static struct ch_req *req_start(struct ch_conn *c, const char *sql, bool bounded)
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
		strbuf_addstr(&url, "&readonly=1"); /* last: it freezes the settings after it */
	}
	r->easy = curl_easy_init();
	if (!r->easy)
		curl_nomem();
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

static void req_free(struct ch_req *r)
{
	if (!r)
		return;
	curl_multi_remove_handle(r->c->multi, r->easy);
	curl_easy_cleanup(r->easy);
	strbuf_release(&r->body);
	free(r);
}

/* Drive the transfers of c until r has news (data, its end) or the watcher aborts. */
static void req_step(struct ch_req *r)
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
static void req_wait(struct ch_req *r)
{
	while (!r->done)
		req_step(r);
}

/* Ask the server to stop a statement joey gave up on (best effort, short). */
static void req_kill(struct ch_conn *c, const char *query_id)
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
static enum jerr req_error(struct ch_req *r, const char *what, int *code, struct jerror *err)
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
static enum jerr run_short(struct ch_conn *c, const char *sql, const char *what, struct ch_req **out, int *code,
			   struct jerror *err)
{
	struct ch_req *r = req_start(c, sql, true);
	req_wait(r);
	*out = NULL;
	*code = 0;
	if (r->result != CURLE_OK || r->status != 200) {
		enum jerr rc = req_error(r, what, code, err);
		req_free(r);
		return rc;
	}
	*out = r;
	return JERR_OK;
}

/* The next line of a finished short answer (NUL-terminated in place), or NULL. */
static char *short_line(struct ch_req *r, size_t *len)
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

/* ---- connection ---- */

static void conn_free(struct ch_conn *c)
{
	if (!c)
		return;
	source_watch_unregister(&c->watch);
	if (c->multi)
		curl_multi_cleanup(c->multi);
	curl_slist_free_all(c->headers);
	free_cols(c);
	free(c->base_url);
	free(c->database);
	free(c->config_dir);
	free(c->version);
	free(c->timezone);
	free(c);
}

static enum jerr ch_connect(const struct cfg_app *app, const char *config_dir, void **out, struct jerror *err)
{
	struct ch_conn *c = xcalloc(1, sizeof(*c));
	struct strbuf url = STRBUF_INIT, why = STRBUF_INIT, what = STRBUF_INIT, h = STRBUF_INIT;
	enum jerr rc = JERR_OK;
	struct ch_req *r = NULL;
	int code = 0;

	*out = NULL;
	pthread_once(&curl_once, curl_init_once);
	c->app = app;
	c->config_dir = xstrdup(config_dir ? config_dir : "");
	c->database = xstrdup(opt_text(app, "database") ? opt_text(app, "database") : "");
	c->user = opt_text(app, "user");
	c->password = opt_text(app, "password");
	if (!*c->database) {
		rc = jerror_set(err, JERR_CONFIG, "app \"%s\": option \"database\" is required", app->id);
		goto out;
	}
	if ((rc = source_timeout_option(app, &c->timeout_ms, err)))
		goto out;
	if (!chw_base_url(opt_text(app, "host"), opt_text(app, "port"), &url, &why)) {
		rc = jerror_set(err, JERR_CONFIG, "app \"%s\": %s", app->id, why.buf);
		jerror_hint(err, "write the host as a name or address (\"ch.example.com\", which means "
				 "https:// on port 443), \"localhost\" (http:// on 8123) or a URL "
				 "(\"http://10.0.0.5\"), and the port in \"port\"");
		goto out;
	}
	c->base_url = strbuf_detach(&url, NULL);
	/* credentials as headers, never in the URL (logs, proxies) */
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
		curl_nomem();
	source_watch_register(&c->watch, ch_cancel_statement, c->timeout_ms, app->id);

	strbuf_addf(&what, "app \"%s\": cannot connect to ClickHouse, database \"%s\"", app->id, c->database);
	long delay = CH_RETRY_BASE_MS;
	for (int tries = 1;; tries++) {
		struct jerror e2 = JERROR_INIT;
		rc = run_short(c, "SELECT version(), timezone(), currentDatabase()", what.buf, &r, &code, &e2);
		if (rc && code == 164 && !c->no_settings) {
			/* a readonly=1 profile refuses every setting: go without */
			jerror_release(&e2);
			c->no_settings = true;
			tries--;
			continue;
		}
		/* nothing listening (yet), or a connection dropped before an answer: try again */
		bool transient = rc && !code &&
				 (c->last_curl == CURLE_COULDNT_CONNECT || c->last_curl == CURLE_GOT_NOTHING);
		if (rc == JERR_INTERRUPTED || !rc || !transient || tries >= CH_CONNECT_TRIES) {
			if (rc) {
				jerror_release(err);
				*err = e2; /* its hint names the option to check; the tries were logged */
			} else {
				jerror_release(&e2);
			}
			break;
		}
		log_warn("app \"%s\": cannot connect to ClickHouse at %s (try %d of %d), retrying in %ld ms",
			 app->id, c->base_url, tries, CH_CONNECT_TRIES, delay);
		jerror_release(&e2);
		sleep_ms(delay);
		delay *= 2;
	}
	if (rc)
		goto out;
	size_t n;
	char *line = short_line(r, &n);
	struct chw_field f[3];
	if (!line || !chw_split_tsv(line, n, f, 3)) {
		rc = jerror_set(err, JERR_SOURCE, "%s", what.buf);
		jerror_detail(err, "%s did not answer like a ClickHouse server", c->base_url);
		goto out;
	}
	c->version = xstrdup(f[0].s);
	c->timezone = xstrdup(f[1].s);
	if (strcmp(c->timezone, "UTC") && strcmp(c->timezone, "Etc/UTC") && strcmp(c->timezone, "UCT"))
		log_warn("app \"%s\": the ClickHouse server's time zone is %s: joey reads DateTime values "
			 "as UTC, so they are off by its offset; set <timezone>UTC</timezone> on the "
			 "server or use DateTime('UTC') columns",
			 app->id, c->timezone);
	*out = c;
	c = NULL;
out:
	req_free(r);
	conn_free(c);
	strbuf_release(&url);
	strbuf_release(&why);
	strbuf_release(&what);
	strbuf_release(&h);
	return rc;
}

static void ch_disconnect(void *conn)
{
	conn_free(conn);
}

/* ---- column types and literals ---- */

/*
 * The column names and types of src's relation into c->cols: system.columns for a
 * table ("db.table" qualified), DESCRIBE TABLE (<query>) for a source query. Nothing
 * for a Grouparoo-style query source. JERR_CONFIG when the table has no columns there.
 */
static enum jerr ch_load_types(struct ch_conn *c, const struct cfg_source *src, struct jerror *err)
{
	struct strbuf sql = STRBUF_INIT, what = STRBUF_INIT, key = STRBUF_INIT;
	struct ch_req *r = NULL;
	enum jerr rc = JERR_OK;
	int code;

	if (!src->is_query && src->table) {
		const char *dot = strchr(src->table, '.');
		bool qualified = dot && dot != src->table && dot[1];
		strbuf_addstr(&sql, "SELECT name, type FROM system.columns WHERE database = ");
		if (qualified)
			chw_add_string_literal(&sql, src->table, (size_t)(dot - src->table));
		else
			chw_add_string_literal(&sql, c->database, strlen(c->database));
		strbuf_addstr(&sql, " AND table = ");
		const char *t = qualified ? dot + 1 : src->table;
		chw_add_string_literal(&sql, t, strlen(t));
		strbuf_addstr(&sql, " FORMAT TabSeparated");
		strbuf_addf(&key, "t:%s", src->table);
	} else if (src->is_query && src->query && *src->query) {
		strbuf_addstr(&sql, "DESCRIBE TABLE (");
		sql_add_query_text(&sql, src->query);
		strbuf_addstr(&sql, ") FORMAT TabSeparated");
		strbuf_addf(&key, "q:%s", src->query);
	} else {
		goto out;
	}
	if (c->types_of && !strcmp(c->types_of, key.buf))
		goto out;
	free_cols(c);
	strbuf_addf(&what, "source \"%s\": cannot read the column types", sql_source_id(src));
	if ((rc = run_short(c, sql.buf, what.buf, &r, &code, err))) {
		if (src->is_query) {
			jerror_set(err, JERR_SOURCE, "source \"%s\": the source query is invalid", sql_source_id(src));
		}
		goto out;
	}
	size_t n, alloc = 0;
	char *line;
	while ((line = short_line(r, &n))) {
		struct chw_field f[5];
		/* system.columns: 2 fields; DESCRIBE: 3 (18.16) to 7 (current) */
		char *tab = memchr(line, '\t', n);
		if (!tab)
			continue;
		size_t nf = 1;
		for (size_t i = 0; i < n; i++)
			nf += line[i] == '\t';
		if (nf > 5)
			nf = 5;
		if (!chw_split_tsv(line, n, f, nf) && !chw_split_tsv(line, n, f, 2)) {
			/* more fields than we keep: take the first two by hand */
			*tab = '\0';
			f[0] = (struct chw_field){ line, (size_t)(tab - line), false };
			char *t2 = memchr(tab + 1, '\t', n - (size_t)(tab + 1 - line));
			if (t2)
				*t2 = '\0';
			f[1] = (struct chw_field){ tab + 1, strlen(tab + 1), false };
		}
		ALLOC_GROW(c->cols, c->n_cols + 1, alloc);
		c->cols[c->n_cols].name = xstrdup(f[0].s);
		c->cols[c->n_cols].type = xstrdup(f[1].s);
		c->n_cols++;
	}
	c->types_of = strbuf_detach(&key, NULL);
	if (!c->n_cols && !src->is_query) {
		rc = jerror_set(err, JERR_CONFIG, "source \"%s\": table \"%s\" does not exist", sql_source_id(src),
				src->table);
		jerror_detail(err, "app \"%s\", database \"%s\" at %s (or the user may not read it)", c->app->id,
			      c->database, c->base_url);
		/* the database's tables, for did-you-mean */
		struct ch_req *t = NULL;
		struct strbuf q = STRBUF_INIT;
		struct jerror e2 = JERROR_INIT;
		strbuf_addstr(&q, "SELECT name FROM system.tables WHERE database = ");
		chw_add_string_literal(&q, c->database, strlen(c->database));
		strbuf_addstr(&q, " ORDER BY name FORMAT TabSeparated");
		char **names = NULL;
		size_t nn = 0, na = 0;
		if (!run_short(c, q.buf, "tables", &t, &code, &e2)) {
			size_t ln;
			char *l;
			while ((l = short_line(t, &ln)) && nn < 1000) {
				ALLOC_GROW(names, nn + 1, na);
				names[nn++] = xstrdup(l);
			}
		}
		sql_hint_names(err, src->table, (const char *const *)names, nn, "the database's tables are");
		sql_free_names(names, nn);
		jerror_release(&e2);
		req_free(t);
		strbuf_release(&q);
		free_cols(c);
	}
out:
	req_free(r);
	strbuf_release(&sql);
	strbuf_release(&what);
	strbuf_release(&key);
	return rc;
}

static const struct ch_col *find_col(const struct ch_conn *c, const char *name)
{
	for (size_t i = 0; name && i < c->n_cols; i++)
		if (!strcmp(c->cols[i].name, name))
			return &c->cols[i];
	for (size_t i = 0; name && i < c->n_cols; i++)
		if (!strcasecmp(c->cols[i].name, name))
			return &c->cols[i];
	return NULL;
}

/* A type name safe to paste after CAST(... AS : letters, digits, _ ( ) , and spaces. */
static bool plain_type(const char *t, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)t[i]) && !strchr("_(), ", t[i]))
			return false;
	return n > 0;
}

static bool is_number_text(const char *s)
{
	char *end;
	if (!*s || isspace((unsigned char)*s))
		return false;
	errno = 0;
	(void)strtod(s, &end);
	if (*end || end == s)
		return false;
	for (const char *p = s; *p; p++) /* no inf/nan/hex: digits, sign, point, exponent */
		if (!isdigit((unsigned char)*p) && !strchr("+-.eE", *p))
			return false;
	return true;
}

/*
 * A value as a ClickHouse literal of the type of the column it is compared with
 * (ClickHouse compares neither Int with String nor DateTime with a number): numbers bare
 * for number columns (other text as CAST('..' AS T), which the server rejects with its
 * own message), dates parsed with parseDateTimeBestEffort, strings quoted.
 */
static void ch_literal(void *conn, struct strbuf *sb, const struct sql_bind *b)
{
	const struct ch_conn *c = conn;
	const struct ch_col *col = c ? find_col(c, b->column) : NULL;
	bool nullable;
	const char *inner;
	size_t ilen;
	enum chw_type t = col ? chw_type_parse(col->type, strlen(col->type), &nullable, &inner, &ilen) : CHW_OTHER;

	switch (t) {
	case CHW_INT:
	case CHW_FLOAT:
	case CHW_DECIMAL:
		if (b->kind != SQL_BIND_TEXT || is_number_text(b->s)) {
			strbuf_addstr(sb, b->s);
			return;
		}
		if (plain_type(inner, ilen)) {
			strbuf_addstr(sb, "CAST(");
			chw_add_string_literal(sb, b->s, strlen(b->s));
			strbuf_addf(sb, " AS %.*s)", (int)ilen, inner);
			return;
		}
		break;
	case CHW_DATE:
	case CHW_DATETIME:
		if (b->kind == SQL_BIND_INT) {
			strbuf_addf(sb, t == CHW_DATE ? "toDate(toDateTime(%s))" : "toDateTime(%s)", b->s);
			return;
		}
		strbuf_addstr(sb, t == CHW_DATE ? "toDate(parseDateTimeBestEffort(" : "parseDateTimeBestEffort(");
		chw_add_string_literal(sb, b->s, strlen(b->s));
		strbuf_addstr(sb, t == CHW_DATE ? "))" : ")");
		return;
	case CHW_STRING:
	case CHW_ENUM:
		chw_add_string_literal(sb, b->s, strlen(b->s));
		return;
	case CHW_BOOL:
	case CHW_UUID:
		strbuf_addstr(sb, "CAST(");
		chw_add_string_literal(sb, b->s, strlen(b->s));
		strbuf_addstr(sb, t == CHW_BOOL ? " AS Bool)" : " AS UUID)");
		return;
	default:
		break;
	}
	if (b->kind != SQL_BIND_TEXT)
		strbuf_addstr(sb, b->s);
	else
		chw_add_string_literal(sb, b->s, strlen(b->s));
}

static void ch_table_info(void *conn, const char *table, const char *K, bool int_key, bool *natural,
			  const char **rowid_col)
{
	const struct ch_conn *c = conn;
	const struct ch_col *col = find_col(c, K);
	bool nullable;
	const char *inner;
	size_t ilen;
	(void)table;
	*rowid_col = NULL; /* no physical row order */
	*natural = false;
	if (!col)
		return;
	enum chw_type t = chw_type_parse(col->type, strlen(col->type), &nullable, &inner, &ilen);
	*natural = int_key ? t == CHW_INT && strncmp(inner, "UInt64", 6) && strncmp(inner, "Int128", 6) &&
				     strncmp(inner, "Int256", 6) && strncmp(inner, "UInt128", 7) &&
				     strncmp(inner, "UInt256", 7)
			   : (ilen == 6 && !memcmp(inner, "String", 6));
}

/* ---- check ---- */

static enum jerr ch_build(struct ch_conn *c, const struct cfg_source *src, const struct source_read *read,
			  struct sql_plan *p, struct jerror *err)
{
	enum jerr rc = ch_load_types(c, src, err);
	if (rc)
		return rc;
	return sql_plan_build(&ch_dialect, c, src, read, p, err);
}

static enum jerr ch_check(void *conn, const struct cfg_source *src, struct jerror *err)
{
	struct ch_conn *c = conn;
	struct sql_plan p;
	struct strbuf sql = STRBUF_INIT, what = STRBUF_INIT;
	struct ch_req *r = NULL;
	enum jerr rc;
	int code;

	sql_plan_init(&p);
	if ((rc = ch_load_types(c, src, err)))
		goto out;
	if (c->n_cols) {
		const char **names = xcalloc(c->n_cols + 1, sizeof(*names));
		for (size_t i = 0; i < c->n_cols; i++)
			names[i] = c->cols[i].name;
		rc = sql_check_columns(src, src->is_query ? NULL : src->table, names, c->n_cols, err);
		free(names);
		if (rc)
			goto out;
	}
	if ((rc = sql_plan_build(&ch_dialect, c, src, NULL, &p, err)))
		goto out;
	/* the statement itself, without reading a row */
	strbuf_addstr(&sql, "SELECT * FROM (");
	strbuf_addslice(&sql, (struct slice){ p.sql.buf, p.sql.len });
	strbuf_addstr(&sql, ") LIMIT 0 FORMAT TabSeparated");
	strbuf_addf(&what, "source \"%s\": query failed", sql_source_id(src));
	rc = run_short(c, sql.buf, what.buf, &r, &code, err);
out:
	req_free(r);
	sql_plan_release(&p);
	strbuf_release(&sql);
	strbuf_release(&what);
	return rc;
}

static enum jerr ch_describe(void *conn, const struct cfg_source *src, struct strbuf *out, struct jerror *err)
{
	struct sql_plan p;
	sql_plan_init(&p);
	enum jerr rc = ch_build(conn, src, NULL, &p, err);
	if (!rc)
		sql_plan_describe(&ch_dialect, &p, out);
	sql_plan_release(&p);
	return rc;
}

/* ---- reading rows ---- */

/*
 * A plain decimal ("-12.375": at most 15 digits, no exponent) as the double strtod gives,
 * without strtod: digits and power of ten are exact doubles, one division rounds
 * correctly. False for anything else.
 */
static bool simple_decimal(const char *s, size_t n, double *out)
{
	static const double pow10[] = { 1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7,
					1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15 };
	size_t i = 0, digits = 0, frac = 0;
	bool neg = false, point = false;
	uint64_t m = 0;
	if (n && s[0] == '-')
		neg = true, i++;
	for (; i < n; i++) {
		if (s[i] == '.' && !point) {
			point = true;
			continue;
		}
		if (s[i] < '0' || s[i] > '9' || ++digits > 15)
			return false;
		m = m * 10 + (uint64_t)(s[i] - '0');
		frac += point;
	}
	if (!digits)
		return false;
	double d = (double)m / pow10[frac];
	*out = neg ? -d : d;
	return true;
}

/* A whole number or decimal text as a value of prop's type (like PostgreSQL numerics). */
static bool number_value(const char *s, size_t n, const struct cfg_property *prop, struct value *v)
{
	int64_t i;
	double d;
	if (decimal_to_int64(s, n, &i))
		return sql_value_from_int(prop->type, i, v);
	if (simple_decimal(s, n, &d))
		return sql_value_from_real(prop->type, d, v);
	char *end;
	d = strtod(s, &end);
	if (end == s || *end)
		return false;
	return sql_value_from_real(prop->type, d, v);
}

static bool field_value(struct ch_cursor *cur, size_t idx, const struct cfg_property *prop, struct value *v)
{
	const struct chw_field *f = &cur->fields[idx];
	enum chw_type t = cur->types[idx];

	*v = VALUE_NULL;
	if (f->null)
		return true;
	if (t == CHW_ARRAY) {
		struct chw_item *items;
		size_t n;
		if (!chw_array_items(f->s, f->len, &cur->arena, &items, &n))
			return false;
		struct value *vals = arena_alloc(&cur->arena, (n ? n : 1) * sizeof(*vals));
		size_t k = 0;
		for (size_t i = 0; i < n; i++) {
			struct value iv = VALUE_NULL;
			if (items[i].null)
				continue;
			if (!value_coerce_text(prop->type, items[i].s, items[i].len, &cur->arena, &iv))
				cur->row.n_invalid++;
			else if (iv.kind != VAL_NULL)
				vals[k++] = iv;
		}
		if (!prop->is_array) /* an array column read into a scalar property: its text */
			return value_coerce_text(prop->type, f->s, f->len, &cur->arena, v);
		v->kind = VAL_ARRAY;
		v->u.arr.items = vals;
		v->u.arr.n = k;
		return true;
	}
	if (prop->is_array) {
		/* a scalar column into an array property: one item */
		struct value *one = arena_alloc(&cur->arena, sizeof(*one));
		*one = VALUE_NULL;
		if (!value_coerce_text(prop->type, f->s, f->len, &cur->arena, one))
			return false;
		v->kind = VAL_ARRAY;
		v->u.arr.items = one;
		v->u.arr.n = one->kind != VAL_NULL;
		return true;
	}
	if (!sql_is_text_type(prop->type) && (t == CHW_INT || t == CHW_FLOAT || t == CHW_DECIMAL))
		return number_value(f->s, f->len, prop, v);
	if (prop->type == PROP_STRING) {
		if (f->len) {
			v->kind = VAL_STRING;
			v->u.s = (struct slice){ f->s, f->len };
		}
		return true;
	}
	return value_coerce_text(prop->type, f->s, f->len, &cur->arena, v);
}

/* The next line of the streamed answer (in place, without '\n', NUL-terminated), or NULL at its end. */
static enum jerr next_line(struct ch_cursor *cur, char **line, size_t *len, struct jerror *err)
{
	struct ch_req *r = cur->req;
	size_t scanned = 0;
	*line = NULL;
	for (;;) {
		char *s = r->body.buf + r->pos;
		size_t avail = r->body.len - r->pos;
		char *nl = avail > scanned ? memchr(s + scanned, '\n', avail - scanned) : NULL;
		if (nl) {
			*len = (size_t)(nl - s);
			strbuf_reset(&cur->line);
			strbuf_add(&cur->line, s, *len + 1); /* with the '\n': room for a NUL */
			cur->line.buf[*len] = '\0';
			*line = cur->line.buf;
			r->pos += *len + 1;
			return JERR_OK;
		}
		scanned = avail;
		if (r->done)
			break;
		if (avail > CH_LINE_MAX) {
			jerror_set(err, JERR_SOURCE, "source \"%s\": a row of the result is larger than %u MiB",
				   sql_source_id(cur->src), CH_LINE_MAX >> 20);
			return JERR_SOURCE;
		}
		req_step(r);
		if (r->pos == 0 && s != r->body.buf)
			scanned = 0; /* the buffer moved: search again */
		if (r->body.buf + r->pos != s)
			scanned = 0;
	}
	/* the transfer ended: a failure, an error answer, or a last line without '\n' */
	int code = 0;
	struct strbuf what = STRBUF_INIT;
	strbuf_addf(&what, "source \"%s\": query failed", sql_source_id(cur->src));
	if (r->result != CURLE_OK || r->status != 200) {
		enum jerr rc = req_error(r, what.buf, &code, err);
		cur->last_code = code;
		if (r->result != CURLE_OK && r->status == 200 && rc == JERR_SOURCE)
			jerror_hint(err, "the connection ended in the middle of the result: the run stops "
					 "here, and no record it did not read is taken for deleted");
		strbuf_release(&what);
		return rc;
	}
	size_t avail = r->body.len - r->pos;
	if (avail) {
		const char *s = r->body.buf + r->pos;
		struct strbuf msg = STRBUF_INIT;
		if (chw_exception(s, avail, &code, &msg)) {
			jerror_set(err, JERR_SOURCE, "%s after %" PRIu64 " rows", what.buf, cur->base.rows);
			jerror_detail(err, "ClickHouse at %s: %s", cur->conn->base_url, msg.buf);
		} else {
			jerror_set(err, JERR_SOURCE, "%s: the result ends in an incomplete row", what.buf);
			jerror_detail(err, "%.200s", s);
		}
		jerror_hint(err, "the server failed after it had sent the first rows: the run stops "
				 "here, and no record it did not read is taken for deleted");
		cur->last_code = code;
		strbuf_release(&msg);
		strbuf_release(&what);
		return JERR_SOURCE;
	}
	strbuf_release(&what);
	return JERR_OK; /* the end */
}

/* A line that is not a row of n fields: a mid-stream exception, or garbage. */
static enum jerr bad_line(struct ch_cursor *cur, const char *line, size_t len, struct jerror *err)
{
	int code = 0;
	struct strbuf msg = STRBUF_INIT;
	const char *tag = cur->req->exc_tag;
	const char *at = tag[0] && len >= strlen(tag) ? strstr(line, tag) : NULL;
	const char *text = at ? at + strlen(tag) : line;
	while (at && (*text == '\n' || *text == ' ' || *text == '\r'))
		text++;
	/* the exception glued to a partial row: "...\tCode: 395, e.displayText() = ..." */
	const char *glued = at ? NULL : strstr(line, "Code: ");
	if (glued && glued != line && chw_exception(glued, len - (size_t)(glued - line), &code, NULL))
		text = glued;
	if (chw_exception(text, len - (size_t)(text - line), &code, &msg) || at) {
		jerror_set(err, JERR_SOURCE, "source \"%s\": query failed after %" PRIu64 " rows",
			   sql_source_id(cur->src), cur->base.rows);
		jerror_detail(err, "ClickHouse at %s: %s", cur->conn->base_url, msg.len ? msg.buf : text);
		jerror_hint(err, "the server failed after it had sent the first rows: the run stops "
				 "here, and no record it did not read is taken for deleted");
	} else {
		jerror_set(err, JERR_SOURCE, "source \"%s\": malformed row from the server", sql_source_id(cur->src));
		jerror_detail(err, "expected %zu tab-separated fields: \"%.100s\"", cur->n_fields, line);
	}
	cur->last_code = code;
	strbuf_release(&msg);
	return JERR_SOURCE;
}

/* The next row into cur->fields (*got), or the end. */
static enum jerr fetch(struct ch_cursor *cur, bool *got, struct jerror *err)
{
	char *line;
	size_t len;
	*got = false;
	enum jerr rc = next_line(cur, &line, &len, err);
	if (rc)
		return rc;
	if (!line) {
		cur->done = true;
		return JERR_OK;
	}
	const char *tag = cur->req->exc_tag;
	if ((tag[0] && strstr(line, tag)) || !chw_split_tsv(line, len, cur->fields, cur->n_fields))
		return bad_line(cur, line, len, err);
	*got = true;
	return JERR_OK;
}

/* The two header lines: names, then types (one per column, checked against need). */
static enum jerr read_header(struct ch_cursor *cur, size_t need, struct jerror *err)
{
	char *line;
	size_t len;
	enum jerr rc;
	for (int k = 0; k < 2; k++) {
		if ((rc = next_line(cur, &line, &len, err)))
			return rc;
		if (!line)
			return jerror_set(err, JERR_SOURCE, "source \"%s\": the server sent no result header",
					  sql_source_id(cur->src));
		size_t n = 1;
		for (size_t i = 0; i < len; i++)
			n += line[i] == '\t';
		if (n != need) {
			int code;
			if (chw_exception(line, len, &code, NULL))
				return bad_line(cur, line, len, err);
			return jerror_set(err, JERR_SOURCE, "source \"%s\": the query has %zu columns, not %zu",
					  sql_source_id(cur->src), n, need);
		}
		if (k == 0)
			continue;
		struct chw_field *f = xcalloc(need, sizeof(*f));
		if (!chw_split_tsv(line, len, f, need)) {
			free(f);
			return bad_line(cur, line, len, err);
		}
		for (size_t i = 0; i < need; i++) {
			bool nullable;
			const char *inner;
			size_t il;
			cur->types[i] = chw_type_parse(f[i].s, f[i].len, &nullable, &inner, &il);
		}
		free(f);
	}
	return JERR_OK;
}

static enum jerr ch_next(struct source_cursor *base, struct source_row **row, struct jerror *err)
{
	struct ch_cursor *cur = (struct ch_cursor *)base;
	struct source_row *r = &cur->row;
	enum jerr rc;

	*row = NULL;
	for (;;) {
		if (cur->pending) {
			cur->pending = false;
		} else {
			bool got;
			if (cur->done)
				return JERR_OK;
			if ((rc = fetch(cur, &got, err)))
				return rc;
			if (!got)
				return JERR_OK;
		}
		const struct chw_field *f = cur->fields;
		arena_reset(&cur->arena);
		if (f[0].null) {
			int64_t k = 1;
			if (cur->grouped)
				decimal_to_int64(f[cur->count_col].s, f[cur->count_col].len, &k);
			cur->null_keys += (uint64_t)k;
			continue;
		}
		r->n_invalid = 0;
		r->key.is_int = cur->int_key;
		if (cur->int_key) {
			int64_t i;
			if (!decimal_to_int64(f[0].s, f[0].len, &i)) {
				jerror_set(err, JERR_SOURCE_DATA,
					   "source \"%s\": key column \"%s\" holds a non-integer value \"%.100s\"",
					   sql_source_id(cur->src), cur->key_column, f[0].s);
				jerror_detail(err, "the record key (primary key property) is an integer");
				jerror_hint(err, "clean the column, or make the primary key property a string");
				return JERR_SOURCE_DATA;
			}
			r->key.i = i;
			if (cur->types[0] == CHW_INT && (f[0].s[0] != '0' || f[0].len == 1) &&
			    (f[0].s[0] != '-' || f[0].s[1] != '0'))
				r->key.text = (struct slice){ f[0].s, f[0].len }; /* canonical already */
			else
				r->key.text.ptr = sql_fmt_i64(&cur->arena, i, &r->key.text.len);
		} else {
			r->key.i = 0;
			r->key.text = (struct slice){ f[0].s, f[0].len };
		}
		for (size_t i = 0; i < r->n_values; i++) {
			if (!field_value(cur, i + 1, cur->src->properties[i], &r->values[i])) {
				r->values[i] = VALUE_NULL;
				r->n_invalid++;
				source_note_invalid(&cur->base, cur->src->properties[i], &r->key, f[i + 1].s,
						    f[i + 1].len);
			}
		}
		r->since = (struct slice){ "", 0 };
		if (cur->since_col && !f[cur->since_col].null)
			r->since = (struct slice){ f[cur->since_col].s, f[cur->since_col].len };
		*row = r;
		return JERR_OK;
	}
}

static void ch_close(struct source_cursor *base)
{
	struct ch_cursor *cur = (struct ch_cursor *)base;
	if (cur->null_keys)
		log_warn("source \"%s\": skipped %" PRIu64 " rows with a NULL key column \"%s\"",
			 sql_source_id(cur->src), cur->null_keys, cur->key_column);
	if (cur->req) {
		bool unfinished = !cur->req->done;
		char qid[sizeof(cur->req->query_id)];
		memcpy(qid, cur->req->query_id, sizeof(qid));
		req_free(cur->req); /* closes the connection of an unfinished transfer */
		cur->req = NULL;
		if (unfinished)
			req_kill(cur->conn, qid);
	}
	atomic_store(&cur->conn->abort_all, 0);
	arena_release(&cur->arena);
	strbuf_release(&cur->line);
	free(cur->row.values);
	free(cur->fields);
	free(cur->types);
	free(cur);
}

static const struct source_cursor_ops ch_cursor_ops = { ch_next, ch_close };

static enum jerr ch_open_cursor(void *conn, const struct cfg_source *src, const struct source_read *read,
				struct source_cursor **out, struct jerror *err)
{
	struct ch_conn *c = conn;
	struct sql_plan p;
	struct ch_cursor *cur = NULL;
	struct strbuf sql = STRBUF_INIT;
	enum jerr rc;
	bool got = false;

	*out = NULL;
	sql_plan_init(&p);
	atomic_store(&c->abort_all, 0);
	if ((rc = ch_build(c, src, read, &p, err)))
		goto out;

	cur = xcalloc(1, sizeof(*cur));
	cur->base.ops = &ch_cursor_ops;
	cur->base.source = src;
	strbuf_init(&cur->base.prev_text, 0);
	cur->conn = c;
	cur->src = src;
	cur->grouped = p.grouped;
	cur->int_key = p.int_key;
	cur->key_column = p.key_column;
	cur->count_col = src->n_properties + 1;
	cur->since_col = p.since_col;
	cur->n_fields = 1 + src->n_properties + (p.grouped ? 1 : 0) + (p.since_col ? 1 : 0);
	cur->types = xcalloc(cur->n_fields, sizeof(*cur->types));
	cur->fields = xcalloc(cur->n_fields, sizeof(*cur->fields));
	arena_init(&cur->arena);
	strbuf_init(&cur->line, 256);
	cur->row.n_values = src->n_properties;
	cur->row.values = xcalloc(src->n_properties ? src->n_properties : 1, sizeof(struct value));

	strbuf_addslice(&sql, (struct slice){ p.sql.buf, p.sql.len });
	strbuf_addstr(&sql, CH_FORMAT);
	cur->req = req_start(c, sql.buf, false);
	/* the header and the first row (or the error) now, so open_cursor reports a broken query */
	rc = read_header(cur, cur->n_fields, err);
	if (!rc)
		rc = fetch(cur, &got, err);
	if (rc) {
		/* unknown table / column: the check's message, with did-you-mean */
		if (err && (cur->last_code == 60 || cur->last_code == 47 || cur->last_code == 16)) {
			struct jerror cerr = JERROR_INIT;
			if (ch_check(c, src, &cerr) == JERR_CONFIG) {
				jerror_release(err);
				*err = cerr;
				rc = JERR_CONFIG;
			} else {
				jerror_release(&cerr);
			}
		}
		goto out;
	}
	cur->pending = got;
	*out = &cur->base;
	cur = NULL;
out:
	if (cur) {
		strbuf_release(&cur->base.prev_text);
		ch_close(&cur->base);
	}
	sql_plan_release(&p);
	strbuf_release(&sql);
	return rc;
}

const struct source_ops source_clickhouse = {
	.app_type = "clickhouse",
	.source_types = ch_source_types,
	.app_options = ch_app_options,
	.required_app_options = ch_required_options,
	.connect = ch_connect,
	.check = ch_check,
	.open_cursor = ch_open_cursor,
	.describe = ch_describe,
	.disconnect = ch_disconnect,
};
