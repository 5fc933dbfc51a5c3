/* source.c: connector registry, record-key order checks and Grouparoo value coercion. */
#include "base/log.h"
#include "source/source.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "base/arena.h"
#include "base/timeutil.h"
#include "source/csvread.h"

/* Every connector; postgres/mysql/csv each add one line here. */
static const struct source_ops *const connectors[] = {
	&source_sqlite,
	&source_csv,
	&source_postgres,
	&source_mysql,
	&source_redshift,
	&source_clickhouse,
	&source_snowflake,
	&source_snowflake_keypair,
	&source_bigquery,
};

int key_compare(const struct rkey *a, const struct rkey *b)
{
	if (a->is_int && b->is_int)
		return (a->i > b->i) - (a->i < b->i);
	if (a->is_int != b->is_int)
		return a->is_int ? -1 : 1; /* integers before text */
	return slice_cmp(a->text, b->text);
}

bool key_in_range(const struct key_range *r, const struct rkey *k)
{
	return !r || ((!r->lo || key_compare(k, r->lo) >= 0) && (!r->hi || key_compare(k, r->hi) < 0));
}

const struct source_ops *source_ops_for_app(const char *app_type)
{
	if (!app_type)
		return NULL;
	for (size_t i = 0; i < ARRAY_SIZE(connectors); i++)
		if (!strcmp(connectors[i]->app_type, app_type))
			return connectors[i];
	return NULL;
}

const struct source_ops *source_ops_for_source_type(const char *source_type)
{
	if (!source_type)
		return NULL;
	for (size_t i = 0; i < ARRAY_SIZE(connectors); i++)
		for (const char *const *t = connectors[i]->source_types; t && *t; t++)
			if (!strcmp(*t, source_type))
				return connectors[i];
	return NULL;
}

/* ---- watching the database (source.h) ---- */

/*
 * The watcher: one detached thread, started by the first registration, that looks at
 * every registered watch every WATCH_TICK_MS while there are any. watch_lock guards
 * the list and every watcher-owned field, and is held while a cancel function runs.
 */
#define WATCH_TICK_MS 100

static pthread_mutex_t watch_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t watch_cond = PTHREAD_COND_INITIALIZER;
static struct source_watch *watches;
static bool watcher_started;
static _Thread_local volatile int *thread_stop;

static int64_t watch_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void watch_check(struct source_watch *w, int64_t now)
{
	if (!atomic_load_explicit(&w->waiting, memory_order_acquire))
		return;
	uint64_t seq = atomic_load_explicit(&w->seq, memory_order_relaxed);
	if (seq != w->seen_seq) {
		w->seen_seq = seq;
		w->seen_at = now;
	}
	if (w->cancelled_seq == seq)
		return; /* this wait was cancelled already */
	enum source_cancel_reason why = SOURCE_CANCEL_NONE;
	if (w->stop && *w->stop)
		why = SOURCE_CANCEL_STOP;
	else if (w->timeout_ms > 0 && now - w->seen_at >= w->timeout_ms)
		why = SOURCE_CANCEL_TIMEOUT;
	if (why == SOURCE_CANCEL_NONE)
		return;
	w->cancelled_seq = seq;
	atomic_store_explicit(&w->cancelled, (int)why, memory_order_release);
	if (w->cancel)
		w->cancel(w);
}

static void *watcher_main(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&watch_lock);
	for (;;) {
		while (!watches)
			pthread_cond_wait(&watch_cond, &watch_lock);
		int64_t now = watch_now_ms();
		for (struct source_watch *w = watches; w; w = w->next)
			watch_check(w, now);
		struct timespec until;
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_nsec += WATCH_TICK_MS * 1000000L;
		if (until.tv_nsec >= 1000000000L) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&watch_cond, &watch_lock, &until);
	}
	return NULL;
}

void source_watch_register(struct source_watch *w, source_cancel_fn cancel, int64_t timeout_ms,
			   const char *app_id)
{
	pthread_mutex_lock(&watch_lock);
	w->cancel = cancel;
	w->timeout_ms = timeout_ms;
	w->app_id = app_id;
	w->stop = thread_stop;
	atomic_store(&w->seq, 0);
	atomic_store(&w->waiting, 0);
	atomic_store(&w->cancelled, SOURCE_CANCEL_NONE);
	w->seen_seq = w->cancelled_seq = 0;
	w->seen_at = 0;
	w->prev = NULL;
	w->next = watches;
	if (watches)
		watches->prev = w;
	watches = w;
	if (!watcher_started) {
		pthread_t t;
		if (pthread_create(&t, NULL, watcher_main, NULL) == 0) {
			pthread_detach(t);
			watcher_started = true;
		} else {
			log_warn("could not start the thread that watches database statements: "
				 "statementTimeout and stopping cannot cancel them");
		}
	}
	pthread_cond_signal(&watch_cond);
	pthread_mutex_unlock(&watch_lock);
}

void source_watch_unregister(struct source_watch *w)
{
	if (!w || !w->cancel)
		return;
	pthread_mutex_lock(&watch_lock); /* waits for a cancel of w in progress */
	if (w->prev)
		w->prev->next = w->next;
	else if (watches == w)
		watches = w->next;
	if (w->next)
		w->next->prev = w->prev;
	w->prev = w->next = NULL;
	w->cancel = NULL;
	pthread_mutex_unlock(&watch_lock);
}

enum jerr source_watch_error(struct source_watch *w, const char *what, struct jerror *err)
{
	if (source_watch_cancelled(w) == SOURCE_CANCEL_STOP) {
		jerror_set(err, JERR_INTERRUPTED, "%s: query cancelled: joey is stopping", what);
		return JERR_INTERRUPTED;
	}
	jerror_set(err, JERR_SOURCE, "%s: the database sent nothing for %g s: query cancelled", what,
		   (double)w->timeout_ms / 1000.0);
	jerror_detail(err, "app \"%s\" allows %g s of waiting on the database at a time (statementTimeout)",
		      w->app_id ? w->app_id : "?", (double)w->timeout_ms / 1000.0);
	jerror_hint(err, "make the query faster (an index, less work before the first row), or raise "
			 "statementTimeout of app \"%s\" (seconds; 0: no limit)",
		    w->app_id ? w->app_id : "?");
	return JERR_SOURCE;
}

enum jerr source_watch_rc(struct source_watch *w, enum jerr rc, const char *kind, const char *id,
			  struct jerror *err)
{
	if (!rc || rc == JERR_INTERRUPTED || !source_watch_cancelled(w))
		return rc;
	struct strbuf what = STRBUF_INIT;
	strbuf_addf(&what, "%s \"%s\"", kind, id);
	rc = source_watch_error(w, what.buf, err);
	strbuf_release(&what);
	return rc;
}

const char *source_option_text(const struct cfg_app *app, const char *key)
{
	const struct cfg_option *o = cfg_options_get(&app->options, key);
	return o && o->str && *o->str ? o->str : NULL;
}

void source_sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

enum jerr source_timeout_option(const struct cfg_app *app, int64_t *ms, struct jerror *err)
{
	const struct cfg_option *o = cfg_options_get(&app->options, "statementTimeout");
	double s = SOURCE_TIMEOUT_DEFAULT_S;
	if (o && o->kind == OPT_NUMBER) {
		s = o->num;
	} else if (o && o->str && *o->str) {
		char *end;
		s = strtod(o->str, &end);
		if (*end || end == o->str)
			s = -1;
	}
	if (!(s >= 0) || s > 1e9) {
		*ms = 0;
		return jerror_set(err, JERR_CONFIG,
				  "app \"%s\": option \"statementTimeout\" must be a number of seconds (0: no limit)",
				  app->id);
	}
	*ms = (int64_t)(s * 1000.0 + 0.5);
	if (s > 0 && *ms == 0)
		*ms = 1;
	return JERR_OK;
}

volatile int *source_set_stop(volatile int *flag)
{
	volatile int *old = thread_stop;
	thread_stop = flag;
	return old;
}

/* s as a number (a copy is parsed: slices are not NUL-terminated); false if it is not one. */
static bool since_number(struct slice s, bool *is_int, int64_t *i, double *f)
{
	char buf[64];
	char *end;
	if (!s.len || s.len >= sizeof(buf))
		return false;
	if (decimal_to_int64(s.ptr, s.len, i)) {
		*is_int = true;
		*f = (double)*i;
		return true;
	}
	memcpy(buf, s.ptr, s.len);
	buf[s.len] = '\0';
	if (isspace((unsigned char)buf[0]))
		return false;
	errno = 0;
	*f = strtod(buf, &end);
	if (end == buf || *end || errno || !isfinite(*f))
		return false;
	*is_int = false;
	return true;
}

int source_since_compare(struct slice a, struct slice b)
{
	bool ai, bi;
	int64_t ia, ib;
	double fa, fb;
	if (since_number(a, &ai, &ia, &fa) && since_number(b, &bi, &ib, &fb)) {
		if (ai && bi)
			return (ia > ib) - (ia < ib);
		return (fa > fb) - (fa < fb);
	}
	return slice_cmp(a, b);
}

bool source_since_unordered(const char *s, size_t n)
{
	if (n && (*s == '-' || *s == '+')) {
		s++;
		n--;
	}
	return (n == 8 && !strncasecmp(s, "infinity", 8)) || (n == 3 && !strncasecmp(s, "inf", 3)) ||
	       (n == 3 && !strncasecmp(s, "nan", 3));
}

struct slice source_since_double(double d, struct arena *a)
{
	char buf[40];
	if (!isfinite(d))
		return (struct slice){ "", 0 };
	for (int prec = 15; prec <= 17; prec++) {
		snprintf(buf, sizeof(buf), "%.*g", prec, d);
		if (strtod(buf, NULL) == d)
			break;
	}
	char *t = arena_printf(a, "%s%s", buf, strpbrk(buf, ".eE") ? "" : ".0");
	return (struct slice){ t, strlen(t) };
}

/* Append a key for a message: at most 200 bytes of it. */
static void key_text(struct strbuf *sb, const struct rkey *k)
{
	if (k->is_int) {
		strbuf_addf(sb, "%" PRId64, k->i);
		return;
	}
	size_t n = k->text.len > 200 ? 200 : k->text.len;
	strbuf_add(sb, k->text.ptr, n);
	if (n < k->text.len)
		strbuf_addstr(sb, "...");
}

/*
 * Why Braze cannot receive text key k exactly, or NULL when it can: a JSON string
 * carries neither a NUL byte (strbuf_add_json_string drops it) nor invalid UTF-8 (it
 * becomes U+FFFD), so "a\0b" would reach Braze as "ab" and two records would be one
 * user, and deleting one would delete the other's.
 */
static const char *key_unsendable(const struct rkey *k)
{
	size_t bad;
	if (k->is_int)
		return NULL;
	if (k->text.len && memchr(k->text.ptr, 0, k->text.len))
		return "it holds a NUL byte, so Braze cannot receive it as an external_id";
	if (!csv_utf8_valid(k->text.ptr, k->text.len, &bad))
		return "it is not valid UTF-8, so Braze cannot receive it as an external_id";
	return NULL;
}

/* Skip a row whose key Braze cannot receive: its record is unknown this run (source.h). */
static void note_bad_key(struct source_cursor *cur, const struct rkey *k, const char *why)
{
	static const char hex[] = "0123456789abcdef";
	struct strbuf w = STRBUF_INIT;
	size_t n = k->text.len > 200 ? 200 : k->text.len;
	cur->unreadable++;
	if (cur->n_bad_keys >= SOURCE_BAD_KEYS_MAX)
		return;
	strbuf_addstr(&w, "record key \"");
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)k->text.ptr[i];
		if (c >= 0x20 && c < 0x7f && c != '\\' && c != '"') {
			strbuf_addch(&w, (char)c);
		} else {
			char e[4] = { '\\', 'x', hex[c >> 4], hex[c & 15] };
			strbuf_add(&w, e, 4);
		}
	}
	strbuf_addf(&w, "%s\": %s", n < k->text.len ? "..." : "", why);
	log_warn("source \"%s\": row skipped: %s", cur->source && cur->source->id ? cur->source->id : "?",
		 w.buf);
	cur->bad_keys[cur->n_bad_keys++] = strbuf_detach(&w, NULL);
	cur->unreadable_at = (const char *const *)cur->bad_keys;
	cur->n_unreadable_at = cur->n_bad_keys;
}

/*
 * Whether text key k is empty: Grouparoo stored empty text as null, so its row has no
 * record, as a row whose key column is NULL.
 */
static bool key_is_null(const struct rkey *k)
{
	return !k->is_int && !k->text.len;
}

/*
 * Why the primary key's type rules refuse text key k (an email key that is not an
 * email, a url that is not a url, only spaces), or NULL. Grouparoo stored such a value
 * as null and exported no user; but joey exported such keys before, so its row is
 * unreadable rather than gone: nothing is deleted for it (a Braze user joey made for it
 * stays) and the run says so. A key the rules would only change (an email with spaces
 * around, a url in capitals) is kept as it is: normalising it would change the
 * external_id of users already in Braze (docs/config.md, "Primary keys").
 */
static const char *key_invalid(const struct source_cursor *cur, const struct rkey *k)
{
	const struct cfg_source *src = cur->source;
	const struct cfg_property *p = NULL;
	if (k->is_int)
		return NULL;
	if (src)
		p = src->model && src->model->primary_key ? src->model->primary_key : src->mapping_property;
	if (!p || (p->type != PROP_EMAIL && p->type != PROP_URL && p->type != PROP_PHONE))
		return NULL;
	struct arena a;
	struct value v;
	arena_init(&a);
	bool ok = value_coerce_text(p->type, k->text.ptr, k->text.len, &a, &v) && v.kind != VAL_NULL;
	arena_release(&a);
	if (ok)
		return NULL;
	return p->type == PROP_EMAIL ? "it is not a valid email (the primary key's type): fix the value, or make the key "
				       "a string property"
	       : p->type == PROP_URL ? "it is not a valid url (the primary key's type): fix the value, or make the key "
				       "a string property"
				     : "it is not a valid phone number (the primary key's type): fix the value, or make "
				       "the key a string property";
}

#define NULL_KEYS_LOGGED 5

static void note_null_key(struct source_cursor *cur)
{
	if (++cur->null_keys > NULL_KEYS_LOGGED)
		return;
	log_warn("source \"%s\": row skipped: its key is empty, so the row has no record (as a NULL key)",
		 cur->source && cur->source->id ? cur->source->id : "?");
}

enum jerr source_cursor_next(struct source_cursor *cur, struct source_row **row,
			     struct jerror *err)
{
	const char *why;
	if (thread_stop && *thread_stop) {
		*row = NULL;
		return jerror_set(err, JERR_INTERRUPTED, "source \"%s\": read stopped: joey is stopping",
				  cur->source && cur->source->id ? cur->source->id : "?");
	}
	enum jerr rc;
	while (!(rc = cur->ops->next(cur, row, err)) && *row) {
		if (key_is_null(&(*row)->key))
			note_null_key(cur);
		else if ((why = key_unsendable(&(*row)->key)) || (why = key_invalid(cur, &(*row)->key)))
			note_bad_key(cur, &(*row)->key, why);
		else
			break;
	}
	if (rc || !*row)
		return rc;

	const struct rkey *k = &(*row)->key;
	if (cur->have_prev) {
		int c = key_compare(&cur->prev, k);
		if (c >= 0) {
			struct strbuf a = STRBUF_INIT, b = STRBUF_INIT;
			const char *sid = cur->source && cur->source->id ? cur->source->id : "?";
			key_text(&a, &cur->prev);
			key_text(&b, k);
			if (c == 0) {
				jerror_set(err, JERR_SOURCE_DATA,
					   "duplicate primary key \"%s\" in source \"%s\"", b.buf, sid);
				jerror_detail(err, "two rows of the source map to the same record key");
				jerror_hint(err, "make the mapping column unique in the source, or map "
						 "the source through a secondary source that aggregates");
			} else {
				jerror_set(err, JERR_SOURCE_DATA,
					   "source \"%s\" returned keys out of order", sid);
				jerror_detail(err, "key \"%s\" came after key \"%s\"", b.buf, a.buf);
				jerror_hint(err, "the connector must order rows by the record key "
						 "(integers numerically, text bytewise)");
			}
			strbuf_release(&a);
			strbuf_release(&b);
			*row = NULL;
			return JERR_SOURCE_DATA;
		}
	}
	/* remember the key: its text lives in the row, which the next call recycles */
	strbuf_reset(&cur->prev_text);
	strbuf_add(&cur->prev_text, k->text.ptr, k->text.len);
	cur->prev = *k;
	cur->prev.text = (struct slice){ cur->prev_text.buf, cur->prev_text.len };
	cur->have_prev = true;
	cur->rows++;
	return JERR_OK;
}

#define INVALID_LOGGED 5

void source_note_invalid(struct source_cursor *cur, const struct cfg_property *p, const struct rkey *key,
			 const char *raw, size_t len)
{
	if (++cur->invalid > INVALID_LOGGED)
		return;
	log_warn("source \"%s\": record \"%.*s\": property \"%s\": \"%.*s\" is not a valid %s; sent as empty",
		 cur->source->id, (int)(key->text.len > 200 ? 200 : key->text.len), key->text.ptr, p->id,
		 (int)(len > 100 ? 100 : len), raw ? raw : "", prop_type_name(p->type));
}

void source_cursor_close(struct source_cursor *cur)
{
	if (!cur)
		return;
	if (cur->null_keys > NULL_KEYS_LOGGED)
		log_warn("source \"%s\": %llu rows in all skipped for an empty key (first %d shown)",
			 cur->source->id, (unsigned long long)cur->null_keys, NULL_KEYS_LOGGED);
	if (cur->invalid > INVALID_LOGGED)
		log_warn("source \"%s\": %llu values in all did not fit their property's type (first %d shown)",
			 cur->source->id, (unsigned long long)cur->invalid, INVALID_LOGGED);
	struct strbuf prev = cur->prev_text;
	char *bad[SOURCE_BAD_KEYS_MAX];
	size_t n_bad = cur->n_bad_keys;
	memcpy(bad, cur->bad_keys, n_bad * sizeof(*bad));
	cur->ops->close(cur); /* frees cur */
	strbuf_release(&prev);
	for (size_t i = 0; i < n_bad; i++)
		free(bad[i]);
}

/* ---- coercion ---- */

/*
 * The C locale's classes (joey never calls setlocale), without the <ctype.h> table
 * look-up through a call: these run for every value of every row read.
 */
static inline bool ascii_space(unsigned char c)
{
	return c == ' ' || (c >= '\t' && c <= '\r');
}

static inline bool ascii_digit(unsigned char c)
{
	return (unsigned)(c - '0') < 10;
}

static inline bool ascii_alnum(unsigned char c)
{
	return ascii_digit(c) || (unsigned)((c | 0x20) - 'a') < 26;
}

static void trim(const char **s, size_t *len)
{
	while (*len && ascii_space((unsigned char)(*s)[0]))
		(*s)++, (*len)--;
	while (*len && ascii_space((unsigned char)(*s)[*len - 1]))
		(*len)--;
}

/* Whole number, optionally written with a zero fraction ("12", "-3", "12.0"). */
static bool parse_int(const char *s, size_t len, int64_t *out)
{
	size_t i = 0;
	bool neg = false;
	uint64_t v = 0;

	if (i < len && (s[i] == '-' || s[i] == '+'))
		neg = s[i++] == '-';
	size_t start = i;
	for (; i < len && ascii_digit((unsigned char)s[i]); i++) {
		unsigned dgt = (unsigned)(s[i] - '0');
		if (v > (UINT64_C(9223372036854775808) - dgt) / 10)
			return false;
		v = v * 10 + dgt;
	}
	if (i == start)
		return false;
	if (i < len && s[i] == '.') {
		for (i++; i < len && s[i] == '0'; i++)
			;
	}
	if (i != len)
		return false;
	if (!neg && v > INT64_MAX)
		return false;
	*out = neg ? (int64_t)(0 - v) : (int64_t)v;
	return true;
}

bool source_parse_float(const char *s, size_t len, double *out)
{
	char buf[64];
	char *end;

	if (len == 0 || len >= sizeof(buf))
		return false;
	memcpy(buf, s, len);
	buf[len] = '\0';
	/* no hex floats, no inf/nan words */
	for (size_t i = 0; i < len; i++)
		if (!strchr("0123456789+-.eE", buf[i]))
			return false;
	errno = 0;
	double f = strtod(buf, &end);
	if (end != buf + len || !isfinite(f))
		return false;
	*out = f;
	return true;
}

static bool is_label_char(unsigned char c)
{
	return ascii_alnum(c) || c == '-' || c >= 0x80;
}

/* host.tld: dot-separated non-empty labels, a final label of 2+ letters. */
static bool looks_like_domain(const char *s, size_t len)
{
	size_t label = 0, last_start = 0;
	bool dot = false;

	if (!len)
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '.') {
			if (!label)
				return false;
			label = 0;
			last_start = i + 1;
			dot = true;
		} else if (is_label_char(c)) {
			label++;
		} else {
			return false;
		}
	}
	if (!dot || label < 2)
		return false;
	for (size_t i = last_start; i < len; i++)
		if (ascii_digit((unsigned char)s[i]) || s[i] == '-')
			return false;
	return true;
}

static bool looks_like_email(const char *s, size_t len)
{
	const char *at = memchr(s, '@', len);
	if (!at || at == s)
		return false;
	size_t local = (size_t)(at - s);
	if (memchr(at + 1, '@', len - local - 1))
		return false;
	for (size_t i = 0; i < local; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c <= ' ' || c == '(' || c == ')' || c == ',' || c == ':' || c == ';' ||
		    c == '<' || c == '>' || c == '[' || c == ']' || c == '\\' || c == '"')
			return false;
	}
	if (s[0] == '.' || s[local - 1] == '.')
		return false;
	return looks_like_domain(at + 1, len - local - 1);
}

/* scheme://host[...] or host.tld[/...]; no whitespace. s is already lower case. */
static bool looks_like_url(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (isspace((unsigned char)s[i]) || (unsigned char)s[i] < 0x20)
			return false;
	const char *p = s, *end = s + len;
	const char *sep = NULL;
	for (size_t i = 0; i + 3 <= len && !sep; i++)
		if (!memcmp(s + i, "://", 3))
			sep = s + i;
	if (sep) {
		if (sep == s || !isalpha((unsigned char)s[0]))
			return false;
		for (const char *q = s; q < sep; q++)
			if (!isalnum((unsigned char)*q) && *q != '+' && *q != '-' && *q != '.')
				return false;
		p = sep + 3;
	}
	/* authority: up to / ? # ; strip userinfo and port */
	const char *host_end = p;
	while (host_end < end && *host_end != '/' && *host_end != '?' && *host_end != '#')
		host_end++;
	const char *at = NULL;
	for (const char *q = p; q < host_end; q++)
		if (*q == '@')
			at = q;
	if (at)
		p = at + 1;
	const char *colon = memchr(p, ':', (size_t)(host_end - p));
	if (colon) {
		for (const char *q = colon + 1; q < host_end; q++)
			if (!isdigit((unsigned char)*q))
				return false;
		host_end = colon;
	}
	size_t hl = (size_t)(host_end - p);
	if (sep && hl == 9 && !memcmp(p, "localhost", 9))
		return true;
	return looks_like_domain(p, hl);
}

bool value_coerce_text(enum prop_type t, const char *s, size_t len, struct arena *arena,
		       struct value *out)
{
	*out = VALUE_NULL;
	if (!s || !len)
		return true; /* empty is NULL, and valid */
	if (t != PROP_STRING)
		trim(&s, &len);
	if (!len)
		return true;

	switch (t) {
	case PROP_STRING:
	case PROP_PHONE: /* no libphonenumber: joey passes phone numbers through, trimmed */
		out->kind = VAL_STRING;
		out->u.s = (struct slice){ arena_strndup(arena, s, len), len };
		return true;
	case PROP_INTEGER:
		if (!parse_int(s, len, &out->u.i))
			return false;
		out->kind = VAL_INT;
		return true;
	case PROP_FLOAT:
		if (!source_parse_float(s, len, &out->u.f))
			return false;
		out->kind = VAL_FLOAT;
		return true;
	case PROP_BOOLEAN:
		if ((len == 1 && s[0] == '1') || (len == 4 && !strncasecmp(s, "true", 4)))
			out->u.b = true;
		else if ((len == 1 && s[0] == '0') || (len == 5 && !strncasecmp(s, "false", 5)))
			out->u.b = false;
		else
			return false;
		out->kind = VAL_BOOL;
		return true;
	case PROP_DATE:
		if (!time_parse(s, len, &out->u.i))
			return false;
		out->kind = VAL_DATE;
		return true;
	case PROP_EMAIL:
		if (!looks_like_email(s, len))
			return false;
		out->kind = VAL_STRING;
		out->u.s = (struct slice){ arena_strndup(arena, s, len), len };
		return true;
	case PROP_URL: {
		char *p = arena_strndup(arena, s, len);
		for (size_t i = 0; i < len; i++)
			p[i] = (char)tolower((unsigned char)p[i]);
		if (!looks_like_url(p, len))
			return false;
		out->kind = VAL_STRING;
		out->u.s = (struct slice){ p, len };
		return true;
	}
	default:
		return false;
	}
}

void source_sample_release(struct source_sample *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->n_tables; i++)
		free(s->tables[i]);
	free(s->tables);
	for (size_t i = 0; i < s->n_columns; i++)
		free(s->columns[i]);
	free(s->columns);
	for (size_t i = 0; i < s->n_rows * s->n_columns; i++)
		free(s->cells[i]);
	free(s->cells);
	memset(s, 0, sizeof(*s));
}
