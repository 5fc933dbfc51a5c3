/*
 * warehouse.c: warehouse-fake, a loopback stand-in for Snowflake's SQL API v2 (and the
 * BigQuery REST API, --mode bigquery) over SQLite, for joey's tests (tests/fakes/README.md,
 * "warehouse-fake"). It checks what the real services check (key-pair JWTs against the
 * configured public key, tokens, headers, context names, bind types), runs the SQL on
 * SQLite after rewriting the few constructs the warehouses spell differently, and
 * answers in the documented wire format: typed rowType, every cell a string, results cut
 * into partitions, statements that stay "running" for a number of polls, and injected
 * faults (429, 5xx, a failing later partition).
 */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <sqlite3.h>
#include <zlib.h>

#include "base/strbuf.h"
#include "base/timeutil.h"
#include "base/xalloc.h"
#include "source/jwt.h"

#include "warehouse.h"

struct fake fk;
static pthread_mutex_t fk_lock = PTHREAD_MUTEX_INITIALIZER;
static volatile sig_atomic_t stopping;

/* ---- small helpers ---- */

int64_t fake_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void fake_log(const char *fmt, ...)
{
	va_list ap;
	if (fk.quiet)
		return;
	va_start(ap, fmt);
	fputs("warehouse-fake: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

void fake_uuid(char out[37])
{
	static uint64_t n;
	pthread_mutex_lock(&fk_lock);
	uint64_t k = ++n;
	pthread_mutex_unlock(&fk_lock);
	snprintf(out, 37, "01b%05x-0000-4000-8000-%012" PRIx64, (unsigned)(getpid() & 0xfffff), k);
}

/* ---- faults ---- */

bool fake_add_fault(const char *spec, struct strbuf *why)
{
	struct fault f = { 0 };
	char *copy = xstrdup(spec), *save = NULL;
	f.count = 1;
	f.partition = -1;
	for (char *kv = strtok_r(copy, ",", &save); kv; kv = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(kv, '=');
		if (!eq) {
			strbuf_addf(why, "fault \"%s\": expected key=value", kv);
			free(copy);
			return false;
		}
		*eq++ = '\0';
		if (!strcmp(kv, "status"))
			f.status = atoi(eq);
		else if (!strcmp(kv, "count"))
			f.count = atoi(eq);
		else if (!strcmp(kv, "on"))
			snprintf(f.on, sizeof(f.on), "%s", eq);
		else if (!strcmp(kv, "partition") || !strcmp(kv, "page"))
			f.partition = atoi(eq);
		else if (!strcmp(kv, "match"))
			snprintf(f.match, sizeof(f.match), "%s", eq);
		else if (!strcmp(kv, "reason"))
			snprintf(f.reason, sizeof(f.reason), "%s", eq);
		else {
			strbuf_addf(why, "fault: unknown key \"%s\" (status, count, on, partition, page, match, reason)", kv);
			free(copy);
			return false;
		}
	}
	free(copy);
	if (!f.status) {
		strbuf_addstr(why, "fault: status=N is required");
		return false;
	}
	pthread_mutex_lock(&fk_lock);
	if (fk.n_faults < FAKE_MAX_FAULTS)
		fk.faults[fk.n_faults++] = f;
	pthread_mutex_unlock(&fk_lock);
	return true;
}

/* The status of a fault for this request (0: none), its reason into reason (may be NULL). */
int fake_take_fault(const char *on, int partition, const char *sql, char *reason, size_t rn)
{
	int status = 0;
	pthread_mutex_lock(&fk_lock);
	for (size_t i = 0; i < fk.n_faults && !status; i++) {
		struct fault *f = &fk.faults[i];
		if (f->count <= 0)
			continue;
		if (*f->on && strcmp(f->on, on))
			continue;
		if (f->partition >= 0 && f->partition != partition)
			continue;
		if (*f->match && (!sql || !strstr(sql, f->match)))
			continue;
		f->count--;
		status = f->status;
		if (reason)
			snprintf(reason, rn, "%s", f->reason);
		fk.faults_injected++;
	}
	pthread_mutex_unlock(&fk_lock);
	return status;
}

/* ---- request log ---- */

void fake_log_request(const char *method, const char *url, const char *query, const char *body, int status)
{
	if (!fk.log_file)
		return;
	json_t *o = json_object();
	json_object_set_new(o, "time", json_integer(fake_now_ms()));
	json_object_set_new(o, "method", json_string(method));
	json_object_set_new(o, "path", json_string(url));
	if (query && *query)
		json_object_set_new(o, "query", json_string(query));
	json_t *b = body && *body ? json_loads(body, 0, NULL) : NULL;
	if (b)
		json_object_set_new(o, "body", b);
	json_object_set_new(o, "status", json_integer(status));
	char *line = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
	pthread_mutex_lock(&fk_lock);
	FILE *f = fopen(fk.log_file, "a");
	if (f) {
		fprintf(f, "%s\n", line);
		fclose(f);
	}
	pthread_mutex_unlock(&fk_lock);
	free(line);
	json_decref(o);
}

/* A TIMESTAMP parameter as the fake stores timestamps: "YYYY-MM-DD HH:MM:SS[.fff]", no zone. */
char *fake_timestamp_text(const char *v)
{
	int64_t ms;
	if (!time_parse(v, strlen(v), &ms))
		return NULL;
	struct strbuf iso = STRBUF_INIT, out = STRBUF_INIT;
	time_format_iso(&iso, ms);
	strbuf_add(&out, iso.buf, 10);
	strbuf_addch(&out, ' ');
	strbuf_add(&out, iso.buf + 11, 8);
	if (ms % 1000) {
		strbuf_addf(&out, ".%03d", (int)(((ms % 1000) + 1000) % 1000));
		while (out.buf[out.len - 1] == '0')
			strbuf_setlen(&out, out.len - 1);
	}
	strbuf_release(&iso);
	return strbuf_detach(&out, NULL);
}

/* ---- SQL rewriting ---- */

/* End of a literal or quoted identifier starting at s (quote q); backslash escapes in literals. */
static const char *skip_quoted(const char *s, char q, bool backslash)
{
	for (s++; *s; s++) {
		if (backslash && *s == '\\' && s[1]) {
			s++;
			continue;
		}
		if (*s == q) {
			if (s[1] == q) {
				s++;
				continue;
			}
			return s + 1;
		}
	}
	return s;
}

/* The position after the parenthesis matching the one at s. */
static const char *match_paren(const char *s, bool backslash)
{
	int depth = 0;
	while (*s) {
		if (*s == '\'' || *s == '"' || *s == '`') {
			s = skip_quoted(s, *s, backslash && *s != '"');
			continue;
		}
		if (*s == '(')
			depth++;
		else if (*s == ')' && --depth == 0)
			return s + 1;
		s++;
	}
	return s;
}

static bool word_at(const char *s, const char *w, const char *start)
{
	size_t n = strlen(w);
	return strncasecmp(s, w, n) == 0 && !(isalnum((unsigned char)s[n]) || s[n] == '_' || s[n] == '$') &&
	       (s == start || !(isalnum((unsigned char)s[-1]) || s[-1] == '_' || s[-1] == '$' || s[-1] == '.'));
}

/* Split text at top-level commas into out (items trimmed). */
static size_t split_commas(const char *s, const char *end, char **out, size_t max, bool backslash)
{
	size_t n = 0;
	const char *start = s;
	int depth = 0;
	while (s <= end && n < max) {
		if (s < end && (*s == '\'' || *s == '"' || *s == '`')) {
			s = skip_quoted(s, *s, backslash && *s != '"');
			continue;
		}
		if (s == end || (*s == ',' && depth == 0)) {
			const char *a = start, *b = s;
			while (a < b && isspace((unsigned char)*a))
				a++;
			while (b > a && isspace((unsigned char)b[-1]))
				b--;
			out[n++] = xstrndup(a, (size_t)(b - a));
			start = s + 1;
		} else if (*s == '(') {
			depth++;
		} else if (*s == ')') {
			depth--;
		}
		s++;
	}
	return n;
}

/* "k1 DESC NULLS LAST" -> expression "k1" and direction text "DESC NULLS LAST". */
static void split_direction(char *item, const char **dir)
{
	static const char *const words[] = { " NULLS FIRST", " NULLS LAST", " DESC", " ASC" };
	size_t n = strlen(item);
	*dir = "";
	static _Thread_local char buf[64];
	buf[0] = '\0';
	for (bool again = true; again;) {
		again = false;
		for (size_t i = 0; i < ARRAY_SIZE(words); i++) {
			size_t w = strlen(words[i]);
			if (n > w && !strncasecmp(item + n - w, words[i], w)) {
				char tmp[64];
				snprintf(tmp, sizeof(tmp), "%s%s", words[i] + 1, buf[0] ? " " : "");
				size_t tl = strlen(tmp);
				memmove(buf + tl, buf, strlen(buf) + 1);
				memcpy(buf, tmp, tl);
				n -= w;
				item[n] = '\0';
				again = true;
			}
		}
	}
	*dir = buf;
}

/* fake_array_agg(value, key1, 'dir1', ...) for an ordered ARRAY_AGG. */
static void emit_array_agg(struct strbuf *out, const char *value, char **keys, size_t nk)
{
	strbuf_addstr(out, "fake_array_agg(");
	strbuf_addstr(out, value);
	for (size_t i = 0; i < nk; i++) {
		const char *dir;
		split_direction(keys[i], &dir);
		strbuf_addf(out, ", %s, '%s'", keys[i], dir);
	}
	strbuf_addch(out, ')');
}

/*
 * Snowflake / BigQuery SQL as SQLite runs it. String literals: backslash escapes decoded
 * (both warehouses) and re-quoted with ''. CAST(... AS STRING) -> TEXT, ILIKE -> LIKE,
 * SAFE_CAST -> CAST, ARRAY_AGG(...) WITHIN GROUP (ORDER BY ...) and ARRAY_AGG(... IGNORE
 * NULLS ORDER BY ...) -> fake_array_agg(...), INFORMATION_SCHEMA.X -> temp views,
 * backticks (BigQuery) -> double quotes; a backticked dataset.table path drops the
 * dataset when it is the default one. Everything else is passed through.
 */
void fake_translate(const char *sql, struct strbuf *out, bool bigquery)
{
	const char *s = sql;
	while (*s) {
		if (*s == '\'' || (bigquery && *s == '"')) {
			/* a literal: decode \x escapes, re-quote for SQLite */
			char q = *s++;
			strbuf_addch(out, '\'');
			while (*s && *s != q) {
				char c = *s++;
				if (c == '\\' && *s) {
					char e = *s++;
					c = e == 'n' ? '\n' : e == 't' ? '\t' : e == 'r' ? '\r' : e == '0' ? '\0' : e;
				} else if (c == q && *s == q) {
					s++;
				}
				if (c == '\'')
					strbuf_addch(out, '\'');
				if (c)
					strbuf_addch(out, c);
			}
			if (*s)
				s++;
			strbuf_addch(out, '\'');
			continue;
		}
		if (word_at(s, "INFORMATION_SCHEMA", sql) || !strncmp(s, "\"INFORMATION_SCHEMA\"", 20)) {
			const char *p = s + (*s == '"' ? 20 : 18);
			if (*p == '.') {
				p++;
				bool q = *p == '"';
				const char *n = p + q;
				size_t len = strspn(n, "ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz");
				strbuf_addstr(out, "temp.\"fake_");
				for (size_t i = 0; i < len; i++)
					strbuf_addch(out, tolower((unsigned char)n[i]));
				strbuf_addch(out, '"');
				s = n + len + (q && n[len] == '"');
				continue;
			}
		}
		if (*s == '"' || *s == '`') {
			const char *e = skip_quoted(s, *s, *s == '`');
			if (*s == '`') {
				/* `a.b` or `p.d.t`: the last part (the fake has one dataset per database) */
				const char *in = s + 1, *ine = e - 1;
				const char *dot = NULL;
				for (const char *p = in; p < ine; p++)
					if (*p == '.')
						dot = p;
				if (dot && fk.bigquery)
					in = dot + 1;
				strbuf_addch(out, '"');
				for (const char *p = in; p < ine; p++) {
					if (*p == '\\' && p + 1 < ine)
						p++;
					if (*p == '"')
						strbuf_addch(out, '"');
					strbuf_addch(out, *p);
				}
				strbuf_addch(out, '"');
			} else {
				strbuf_add(out, s, (size_t)(e - s));
			}
			s = e;
			continue;
		}
		if (word_at(s, "ILIKE", sql)) {
			strbuf_addstr(out, "LIKE");
			s += 5;
			continue;
		}
		if (word_at(s, "SAFE_CAST", sql)) {
			strbuf_addstr(out, "CAST");
			s += 9;
			continue;
		}
		if (word_at(s, "AS", sql)) {
			const char *p = s + 2;
			while (isspace((unsigned char)*p))
				p++;
			if (word_at(p, "STRING", sql)) {
				strbuf_addstr(out, "AS TEXT");
				s = p + 6;
				continue;
			}
			if (word_at(p, "INT64", sql)) {
				strbuf_addstr(out, "AS INTEGER");
				s = p + 5;
				continue;
			}
			if (word_at(p, "FLOAT64", sql)) {
				strbuf_addstr(out, "AS REAL");
				s = p + 7;
				continue;
			}
		}
		if (word_at(s, "ARRAY_AGG", sql)) {
			const char *open = s + 9;
			while (isspace((unsigned char)*open))
				open++;
			if (*open == '(') {
				const char *close = match_paren(open, true); /* after ')' */
				const char *in = open + 1, *ine = close - 1;
				/* BigQuery: ARRAY_AGG(x IGNORE NULLS [ORDER BY ...]) */
				const char *ign = NULL, *ord = NULL;
				int depth = 0;
				for (const char *p = in; p < ine; p++) {
					if (*p == '\'' || *p == '"' || *p == '`') {
						p = skip_quoted(p, *p, *p != '"') - 1;
						continue;
					}
					if (*p == '(')
						depth++;
					else if (*p == ')')
						depth--;
					else if (!depth && !ign && word_at(p, "IGNORE", in))
						ign = p;
					else if (!depth && !ord && word_at(p, "ORDER", in))
						ord = p;
				}
				const char *vend = ign ? ign : ord ? ord : ine;
				struct strbuf val = STRBUF_INIT, inner = STRBUF_INIT;
				strbuf_add(&inner, in, (size_t)(vend - in));
				fake_translate(inner.buf, &val, bigquery);
				char *keys[16];
				size_t nk = 0;
				const char *after = close;
				if (ord) {
					const char *k = ord + 5;
					while (isspace((unsigned char)*k))
						k++;
					if (!strncasecmp(k, "BY", 2))
						k += 2;
					strbuf_reset(&inner);
					strbuf_add(&inner, k, (size_t)(ine - k));
					struct strbuf tk = STRBUF_INIT;
					fake_translate(inner.buf, &tk, bigquery);
					nk = split_commas(tk.buf, tk.buf + tk.len, keys, 16, false);
					strbuf_release(&tk);
				} else {
					/* Snowflake: ARRAY_AGG(x) WITHIN GROUP (ORDER BY ...) */
					const char *p = close;
					while (isspace((unsigned char)*p))
						p++;
					if (word_at(p, "WITHIN", sql)) {
						p += 6;
						while (isspace((unsigned char)*p))
							p++;
						if (word_at(p, "GROUP", sql))
							p += 5;
						while (isspace((unsigned char)*p))
							p++;
						if (*p == '(') {
							const char *gc = match_paren(p, true);
							const char *k = p + 1;
							while (isspace((unsigned char)*k))
								k++;
							if (!strncasecmp(k, "ORDER", 5))
								k += 5;
							while (isspace((unsigned char)*k))
								k++;
							if (!strncasecmp(k, "BY", 2))
								k += 2;
							strbuf_reset(&inner);
							strbuf_add(&inner, k, (size_t)(gc - 1 - k));
							struct strbuf tk = STRBUF_INIT;
							fake_translate(inner.buf, &tk, bigquery);
							nk = split_commas(tk.buf, tk.buf + tk.len, keys, 16, false);
							strbuf_release(&tk);
							after = gc;
						}
					}
				}
				emit_array_agg(out, val.buf, keys, nk);
				for (size_t i = 0; i < nk; i++)
					free(keys[i]);
				strbuf_release(&val);
				strbuf_release(&inner);
				s = after;
				continue;
			}
		}
		strbuf_addch(out, *s++);
	}
}

/* ---- SQLite functions ---- */

/* fake_array_agg(v, k1, 'DESC NULLS LAST', ...): ordered, NULL values left out. */
struct agg_item {
	sqlite3_value **vals; /* [0] value, then keys */
	size_t seq;
};
struct agg_state {
	struct agg_item *items;
	size_t n, alloc;
	int nkeys;
	char dirs[8][40];
};
static _Thread_local struct agg_state *sort_state;

static int cmp_values(sqlite3_value *a, sqlite3_value *b)
{
	int ta = sqlite3_value_type(a), tb = sqlite3_value_type(b);
	if (ta == SQLITE_NULL || tb == SQLITE_NULL)
		return (ta != SQLITE_NULL) - (tb != SQLITE_NULL); /* NULL smallest */
	if ((ta == SQLITE_INTEGER || ta == SQLITE_FLOAT) && (tb == SQLITE_INTEGER || tb == SQLITE_FLOAT)) {
		double x = sqlite3_value_double(a), y = sqlite3_value_double(b);
		return (x > y) - (x < y);
	}
	if (ta != tb)
		return ta < tb ? -1 : 1;
	int c = strcmp((const char *)sqlite3_value_text(a), (const char *)sqlite3_value_text(b));
	return (c > 0) - (c < 0);
}

static int cmp_items(const void *pa, const void *pb)
{
	const struct agg_item *a = pa, *b = pb;
	struct agg_state *st = sort_state;
	for (int k = 0; k < st->nkeys; k++) {
		sqlite3_value *x = a->vals[1 + k], *y = b->vals[1 + k];
		bool desc = strstr(st->dirs[k], "DESC") != NULL;
		bool xn = sqlite3_value_type(x) == SQLITE_NULL, yn = sqlite3_value_type(y) == SQLITE_NULL;
		if (xn != yn) {
			/* explicit NULLS FIRST/LAST, else the warehouse default passed in dirs */
			bool first = strstr(st->dirs[k], "NULLS FIRST") ? true
				     : strstr(st->dirs[k], "NULLS LAST") ? false
				     : fk.bigquery ? !desc /* BigQuery: NULLs smallest */
						   : desc;    /* Snowflake: NULLs largest */
			return xn ? (first ? -1 : 1) : (first ? 1 : -1);
		}
		int c = cmp_values(x, y);
		if (c)
			return desc ? -c : c;
	}
	return (a->seq > b->seq) - (a->seq < b->seq);
}

static void array_agg_step(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
	struct agg_state *st = sqlite3_aggregate_context(ctx, sizeof(*st));
	if (!st)
		return;
	if (sqlite3_value_type(argv[0]) == SQLITE_NULL)
		return;
	st->nkeys = (argc - 1) / 2;
	if (st->nkeys > 8)
		st->nkeys = 8;
	struct agg_item it = { xcalloc((size_t)st->nkeys + 1, sizeof(sqlite3_value *)), st->n };
	it.vals[0] = sqlite3_value_dup(argv[0]);
	for (int k = 0; k < st->nkeys; k++) {
		it.vals[1 + k] = sqlite3_value_dup(argv[1 + 2 * k]);
		snprintf(st->dirs[k], sizeof(st->dirs[k]), "%s", (const char *)sqlite3_value_text(argv[2 + 2 * k]));
		for (char *p = st->dirs[k]; *p; p++)
			*p = (char)toupper((unsigned char)*p);
	}
	ALLOC_GROW(st->items, st->n + 1, st->alloc);
	st->items[st->n++] = it;
}

static void array_agg_final(sqlite3_context *ctx)
{
	struct agg_state *st = sqlite3_aggregate_context(ctx, 0);
	json_t *arr = json_array();
	if (st && st->n) {
		sort_state = st;
		qsort(st->items, st->n, sizeof(*st->items), cmp_items);
		for (size_t i = 0; i < st->n; i++) {
			sqlite3_value *v = st->items[i].vals[0];
			switch (sqlite3_value_type(v)) {
			case SQLITE_INTEGER:
				json_array_append_new(arr, json_integer(sqlite3_value_int64(v)));
				break;
			case SQLITE_FLOAT:
				json_array_append_new(arr, json_real(sqlite3_value_double(v)));
				break;
			default:
				json_array_append_new(arr, json_string((const char *)sqlite3_value_text(v)));
				break;
			}
			for (int k = 0; k <= st->nkeys; k++)
				sqlite3_value_free(st->items[i].vals[k]);
			free(st->items[i].vals);
		}
		free(st->items);
	}
	char *text = json_dumps(arr, JSON_COMPACT);
	/* marked so the encoder types the column as an array */
	struct strbuf sb = STRBUF_INIT;
	strbuf_addch(&sb, FAKE_ARRAY_MARK);
	strbuf_addstr(&sb, text);
	sqlite3_result_text(ctx, sb.buf, (int)sb.len, SQLITE_TRANSIENT);
	strbuf_release(&sb);
	free(text);
	json_decref(arr);
}

static void ctx_fn(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
	(void)argc, (void)argv;
	const char *v = sqlite3_user_data(ctx);
	if (v && *v)
		sqlite3_result_text(ctx, v, -1, SQLITE_TRANSIENT);
	else
		sqlite3_result_null(ctx);
}

/* BigQuery's LIKE: case-sensitive, \\ escapes %, _ and itself (SQLite's has no escape). */
static bool bq_like_match(const unsigned char *p, const unsigned char *s)
{
	for (; *p; p++, s++) {
		if (*p == '%') {
			for (const unsigned char *t = s;; t++) {
				if (bq_like_match(p + 1, t))
					return true;
				if (!*t)
					return false;
			}
		}
		if (!*s)
			return false;
		if (*p == '_') {
			while ((s[1] & 0xc0) == 0x80) /* one character, not one byte */
				s++;
			continue;
		}
		if (*p == '\\' && p[1])
			p++;
		if (*p != *s)
			return false;
	}
	return !*s;
}

static void bq_like_fn(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
	(void)argc;
	const unsigned char *pat = sqlite3_value_text(argv[0]), *str = sqlite3_value_text(argv[1]);
	if (!pat || !str) {
		sqlite3_result_null(ctx);
		return;
	}
	sqlite3_result_int(ctx, bq_like_match(pat, str));
}

/* ---- running a statement ---- */

void fake_result_free(struct fake_result *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->n_rows * r->n_cols; i++)
		free(r->cells[i].text);
	free(r->cells);
	for (size_t i = 0; i < r->n_cols; i++) {
		free(r->cols[i].name);
		free(r->cols[i].decl);
		free(r->cols[i].table);
	}
	free(r->cols);
	free(r);
}

/*
 * Run sql (already translated) on the database file with binds; *out the rows, or NULL
 * with *msg (malloc'd) and *kind (FAKE_ERR_*) on failure.
 */
struct fake_result *fake_run(const char *dbfile, const struct fake_ctx *cx, const char *sql, const struct fake_bind *binds,
			     size_t nb, bool no_rows, char **msg, int *kind)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	struct fake_result *r = NULL;
	struct strbuf uri = STRBUF_INIT;
	*msg = NULL;
	*kind = FAKE_ERR_SQL;

	if (dbfile)
		strbuf_addf(&uri, "file:%s?mode=ro", dbfile);
	else
		strbuf_addstr(&uri, "file::memory:"); /* no such database or schema: nothing in it */
	if (sqlite3_open_v2(uri.buf, &db, (dbfile ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE) | SQLITE_OPEN_URI,
			    NULL) != SQLITE_OK) {
		*msg = xstrdup(sqlite3_errmsg(db));
		goto out;
	}
	sqlite3_busy_timeout(db, 5000);
	sqlite3_create_function(db, "fake_array_agg", -1, SQLITE_UTF8, NULL, NULL, array_agg_step, array_agg_final);
	if (fk.bigquery)
		sqlite3_create_function(db, "like", 2, SQLITE_UTF8 | SQLITE_DETERMINISTIC, NULL, bq_like_fn, NULL, NULL);
	const char *fns[][2] = { { "CURRENT_USER", cx->user },	     { "CURRENT_ROLE", cx->role },
				 { "CURRENT_DATABASE", cx->database }, { "CURRENT_SCHEMA", cx->schema },
				 { "CURRENT_WAREHOUSE", cx->warehouse } };
	for (size_t i = 0; i < ARRAY_SIZE(fns); i++)
		sqlite3_create_function(db, fns[i][0], 0, SQLITE_UTF8, (void *)fns[i][1], ctx_fn, NULL, NULL);
	struct strbuf views = STRBUF_INIT;
	strbuf_addf(&views,
		    "CREATE TEMP VIEW fake_columns AS SELECT '%s' AS \"TABLE_SCHEMA\", '%s' AS \"TABLE_CATALOG\", "
		    "m.name AS \"TABLE_NAME\", p.name AS \"COLUMN_NAME\", p.cid + 1 AS \"ORDINAL_POSITION\", "
		    "upper(p.type) AS \"DATA_TYPE\", m.name AS table_name, p.name AS column_name, "
		    "upper(p.type) AS data_type FROM main.sqlite_master m, pragma_table_info(m.name) p "
		    "WHERE m.type IN ('table', 'view') AND m.name NOT LIKE 'sqlite_%%';"
		    "CREATE TEMP VIEW fake_tables AS SELECT '%s' AS \"TABLE_SCHEMA\", name AS \"TABLE_NAME\", "
		    "upper(type) AS \"TABLE_TYPE\", name AS table_name FROM main.sqlite_master "
		    "WHERE type IN ('table', 'view') AND name NOT LIKE 'sqlite_%%';"
		    "CREATE TEMP VIEW fake_schemata AS SELECT '%s' AS \"SCHEMA_NAME\", '%s' AS schema_name",
		    cx->schema_name, cx->database, cx->schema_name, cx->schema_name, cx->schema_name);
	char *em = NULL;
	if (sqlite3_exec(db, views.buf, NULL, NULL, &em) != SQLITE_OK) {
		*msg = xstrdup(em ? em : "?");
		sqlite3_free(em);
		strbuf_release(&views);
		goto out;
	}
	strbuf_release(&views);
	const char *tail = NULL;
	if (sqlite3_prepare_v2(db, sql, -1, &st, &tail) != SQLITE_OK) {
		const char *m = sqlite3_errmsg(db);
		*msg = xstrdup(m);
		if (strstr(m, "no such table"))
			*kind = FAKE_ERR_NO_TABLE;
		else if (strstr(m, "no such column"))
			*kind = FAKE_ERR_NO_COLUMN;
		goto out;
	}
	while (tail && isspace((unsigned char)*tail))
		tail++;
	if (tail && *tail && !(tail[0] == ';' && !tail[1 + strspn(tail + 1, " \t\r\n;")])) {
		*msg = xstrdup("Actual statement count 2 did not match the desired statement count 1.");
		*kind = FAKE_ERR_MULTI;
		goto out;
	}
	if (!sqlite3_stmt_readonly(st)) {
		*msg = xstrdup("the fake runs read-only statements only");
		goto out;
	}
	int np = sqlite3_bind_parameter_count(st);
	if ((size_t)np != nb) {
		char buf[128];
		snprintf(buf, sizeof(buf), "Bind variable count mismatch: the statement has %d, %zu were sent", np, nb);
		*msg = xstrdup(buf);
		*kind = FAKE_ERR_BIND;
		goto out;
	}
	for (size_t i = 0; i < nb; i++) {
		const struct fake_bind *b = &binds[i];
		int idx = (int)i + 1;
		if (b->null)
			sqlite3_bind_null(st, idx);
		else if (b->kind == 'i')
			sqlite3_bind_int64(st, idx, b->i);
		else if (b->kind == 'f')
			sqlite3_bind_double(st, idx, b->f);
		else
			sqlite3_bind_text(st, idx, b->s, -1, SQLITE_TRANSIENT);
	}
	r = xcalloc(1, sizeof(*r));
	r->n_cols = (size_t)sqlite3_column_count(st);
	r->cols = xcalloc(r->n_cols ? r->n_cols : 1, sizeof(*r->cols));
	for (size_t i = 0; i < r->n_cols; i++) {
		const char *d = sqlite3_column_decltype(st, (int)i), *t = sqlite3_column_table_name(st, (int)i);
		r->cols[i].name = xstrdup(sqlite3_column_name(st, (int)i));
		r->cols[i].decl = d ? xstrdup(d) : NULL;
		r->cols[i].table = t ? xstrdup(t) : NULL;
	}
	size_t alloc = 0;
	int rc;
	while (!no_rows && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		ALLOC_GROW(r->cells, (r->n_rows + 1) * r->n_cols, alloc);
		for (size_t i = 0; i < r->n_cols; i++) {
			struct fake_cell *c = &r->cells[r->n_rows * r->n_cols + i];
			c->type = sqlite3_column_type(st, (int)i);
			c->i = sqlite3_column_int64(st, (int)i);
			c->f = sqlite3_column_double(st, (int)i);
			c->text = c->type == SQLITE_NULL ? NULL : xstrdup((const char *)sqlite3_column_text(st, (int)i));
		}
		r->n_rows++;
	}
	if (!no_rows && rc != SQLITE_DONE) {
		*msg = xstrdup(sqlite3_errmsg(db));
		fake_result_free(r);
		r = NULL;
	}
out:
	sqlite3_finalize(st);
	sqlite3_close(db);
	strbuf_release(&uri);
	return r;
}

/* Names of every table and column of a database (for case-sensitive identifier checks). */
bool fake_check_idents(const char *dbfile, const char *sql, char *bad, size_t bn)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	struct strbuf uri = STRBUF_INIT;
	bool ok = true;
	strbuf_addf(&uri, "file:%s?mode=ro", dbfile);
	if (sqlite3_open_v2(uri.buf, &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db,
			       "SELECT m.name FROM sqlite_master m WHERE m.type IN ('table','view') UNION "
			       "SELECT p.name FROM sqlite_master m, pragma_table_info(m.name) p WHERE m.type IN ('table','view')",
			       -1, &st, NULL) != SQLITE_OK)
		goto out;
	char **names = NULL;
	size_t n = 0, alloc = 0;
	while (sqlite3_step(st) == SQLITE_ROW) {
		ALLOC_GROW(names, n + 1, alloc);
		names[n++] = xstrdup((const char *)sqlite3_column_text(st, 0));
	}
	/* every "quoted" identifier in sql must match a name exactly if it matches one at all */
	for (const char *s = sql; *s && ok;) {
		if (*s == '\'') {
			s = skip_quoted(s, '\'', true);
			continue;
		}
		if (*s != '"') {
			s++;
			continue;
		}
		const char *e = skip_quoted(s, '"', false);
		struct strbuf id = STRBUF_INIT;
		for (const char *p = s + 1; p < e - 1; p++) {
			if (*p == '"')
				p++;
			strbuf_addch(&id, *p);
		}
		bool exact = false, loose = false;
		for (size_t i = 0; i < n; i++) {
			if (!strcmp(names[i], id.buf))
				exact = true;
			else if (!strcasecmp(names[i], id.buf))
				loose = true;
		}
		if (loose && !exact) {
			ok = false;
			snprintf(bad, bn, "%s", id.buf);
		}
		strbuf_release(&id);
		s = e;
	}
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
out:
	sqlite3_finalize(st);
	sqlite3_close(db);
	strbuf_release(&uri);
	return ok;
}

/* ---- HTTP glue ---- */

struct conn_data {
	struct strbuf body;
	bool too_big;
};

int fake_reply(struct MHD_Connection *conn, int status, const char *json, bool gzip_ok)
{
	struct MHD_Response *resp;
	size_t len = strlen(json);
	if (gzip_ok && len > 256) {
		uLongf cap = compressBound(len) + 32;
		unsigned char *z = xmalloc(cap);
		z_stream zs;
		memset(&zs, 0, sizeof(zs));
		if (deflateInit2(&zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY) == Z_OK) {
			zs.next_in = (unsigned char *)json;
			zs.avail_in = (uInt)len;
			zs.next_out = z;
			zs.avail_out = (uInt)cap;
			int zr = deflate(&zs, Z_FINISH);
			size_t zn = zs.total_out;
			deflateEnd(&zs);
			if (zr == Z_STREAM_END) {
				resp = MHD_create_response_from_buffer(zn, z, MHD_RESPMEM_MUST_FREE);
				MHD_add_response_header(resp, "Content-Encoding", "gzip");
				MHD_add_response_header(resp, "Content-Type", "application/json");
				int ret = MHD_queue_response(conn, (unsigned)status, resp);
				MHD_destroy_response(resp);
				return ret;
			}
		}
		free(z);
	}
	resp = MHD_create_response_from_buffer(len, (void *)json, MHD_RESPMEM_MUST_COPY);
	MHD_add_response_header(resp, "Content-Type", "application/json");
	int ret = MHD_queue_response(conn, (unsigned)status, resp);
	MHD_destroy_response(resp);
	return ret;
}

static int collect_query(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
	struct strbuf *sb = cls;
	(void)kind;
	strbuf_addf(sb, "%s%s=%s", sb->len ? "&" : "", key, value ? value : "");
	return MHD_YES;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
				  const char *version, const char *upload, size_t *upload_size, void **ptr)
{
	struct conn_data *cd = *ptr;
	(void)cls, (void)version;
	if (!cd) {
		cd = xcalloc(1, sizeof(*cd));
		strbuf_init(&cd->body, 0);
		*ptr = cd;
		return MHD_YES;
	}
	if (*upload_size) {
		if (cd->body.len + *upload_size > FAKE_MAX_BODY)
			cd->too_big = true;
		else
			strbuf_add(&cd->body, upload, *upload_size);
		*upload_size = 0;
		return MHD_YES;
	}
	struct fake_req req = { conn, method, url, cd->body.buf, cd->body.len, STRBUF_INIT, false };
	MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, (MHD_KeyValueIterator)collect_query, &req.query);
	const char *ae = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Accept-Encoding");
	req.gzip_ok = ae && strstr(ae, "gzip");
	int ret;
	if (cd->too_big)
		ret = fake_reply(conn, 413, "{\"code\":\"000413\",\"message\":\"request body too large\"}", false);
	else if (!strncmp(url, "/_fake/", 7))
		ret = fake_control(&req);
	else
		ret = fk.bigquery ? bq_handle(&req) : sf_handle(&req);
	strbuf_release(&req.query);
	return ret == MHD_YES ? MHD_YES : MHD_NO;
}

static void on_done(void *cls, struct MHD_Connection *conn, void **ptr, enum MHD_RequestTerminationCode toe)
{
	struct conn_data *cd = *ptr;
	(void)cls, (void)conn, (void)toe;
	if (cd) {
		strbuf_release(&cd->body);
		free(cd);
	}
	*ptr = NULL;
}

int fake_control(struct fake_req *r)
{
	struct strbuf why = STRBUF_INIT;
	int ret;
	if (!strcmp(r->url, "/_fake/health")) {
		ret = fake_reply(r->conn, 200, "{\"ok\":true}", false);
	} else if (!strcmp(r->url, "/_fake/stats")) {
		char buf[256];
		pthread_mutex_lock(&fk_lock);
		snprintf(buf, sizeof(buf),
			 "{\"executions\":%" PRIu64 ",\"requests\":%" PRIu64 ",\"faults_injected\":%" PRIu64
			 ",\"tokens_issued\":%" PRIu64 ",\"auth_failures\":%" PRIu64 "}",
			 fk.executions, fk.requests, fk.faults_injected, fk.tokens_issued, fk.auth_failures);
		pthread_mutex_unlock(&fk_lock);
		ret = fake_reply(r->conn, 200, buf, false);
	} else if (!strcmp(r->url, "/_fake/faults") && !strcmp(r->method, "POST")) {
		char *spec = xstrndup(r->body, r->body_len);
		bool ok = fake_add_fault(spec, &why);
		free(spec);
		if (ok) {
			ret = fake_reply(r->conn, 200, "{\"ok\":true}", false);
		} else {
			struct strbuf b = STRBUF_INIT;
			strbuf_addstr(&b, "{\"error\":");
			strbuf_add_json_string(&b, why.buf, why.len);
			strbuf_addch(&b, '}');
			ret = fake_reply(r->conn, 400, b.buf, false);
			strbuf_release(&b);
		}
	} else if (!strcmp(r->url, "/_fake/faults") && !strcmp(r->method, "DELETE")) {
		pthread_mutex_lock(&fk_lock);
		fk.n_faults = 0;
		pthread_mutex_unlock(&fk_lock);
		ret = fake_reply(r->conn, 200, "{\"ok\":true}", false);
	} else if (!strcmp(r->url, "/_fake/config") && !strcmp(r->method, "POST")) {
		json_t *j = json_loadb(r->body, r->body_len, 0, NULL);
		pthread_mutex_lock(&fk_lock);
		json_t *v;
		if ((v = json_object_get(j, "rows_per_partition")) && json_integer_value(v) > 0)
			fk.rows_per_part = (size_t)json_integer_value(v);
		if ((v = json_object_get(j, "async_polls")))
			fk.async_polls = (int)json_integer_value(v);
		if ((v = json_object_get(j, "token_expires_s")) && json_integer_value(v) > 0)
			fk.token_expires_s = (int)json_integer_value(v);
		if ((v = json_object_get(j, "revoke_tokens")) && json_is_true(v))
			fk.token_epoch++;
		pthread_mutex_unlock(&fk_lock);
		json_decref(j);
		ret = fake_reply(r->conn, j ? 200 : 400, j ? "{\"ok\":true}" : "{\"error\":\"not JSON\"}", false);
	} else if (!strcmp(r->url, "/_fake/shutdown")) {
		stopping = 1;
		ret = fake_reply(r->conn, 200, "{\"ok\":true}", false);
	} else {
		ret = fake_reply(r->conn, 404, "{\"error\":\"unknown control route\"}", false);
	}
	strbuf_release(&why);
	return ret;
}

/* ---- main ---- */

static const char usage[] =
	"usage: warehouse-fake --db-dir DIR [options]\n"
	"  --mode M                snowflake (default) | bigquery\n"
	"  --db-dir DIR            DIR/<database or dataset>.db are the SQLite files served (read-only)\n"
	"  --port N                listen port (0 = pick a free one; default 0)\n"
	"  --port-file F           write the bound port to F (atomically)\n"
	"  --max-lifetime S        exit after S seconds (default 600; 0 = never)\n"
	"  --public-key FILE       PEM public key that signs the JWTs (Snowflake key pair, BigQuery service account)\n"
	"  --account A             Snowflake account identifier (the JWT's ACCOUNT part; default TEST)\n"
	"  --user U                Snowflake user (default JOEY)\n"
	"  --token T               accepted programmatic access / OAuth token (Snowflake)\n"
	"  --warehouse W           warehouse that exists, repeatable (default COMPUTE_WH)\n"
	"  --role R                the user's role (default PUBLIC)\n"
	"  --schema S              the one schema of every database (default PUBLIC)\n"
	"  --client-email E        BigQuery service account (default joey@test-project.iam.gserviceaccount.com)\n"
	"  --project P             BigQuery project (default test-project)\n"
	"  --location L            BigQuery dataset location (default: none, any)\n"
	"  --token-expires S       BigQuery access token lifetime (default 3600)\n"
	"  --rows-per-partition N  rows per result partition / page (default 1000)\n"
	"  --async-polls N         statements/jobs answer \"running\" for N polls first (default 0)\n"
	"  --fault SPEC            status=N[,count=N][,on=submit|poll|partition|token|query|page][,partition=N][,match=TEXT]\n"
	"  --log-file F            append every request as a JSON line (no tokens)\n"
	"  --quiet                 no messages on stderr\n";

static void on_signal(int sig)
{
	(void)sig;
	stopping = 1;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "mode", required_argument, NULL, 'm' },	   { "db-dir", required_argument, NULL, 'd' },
		{ "port", required_argument, NULL, 'p' },	   { "port-file", required_argument, NULL, 'P' },
		{ "max-lifetime", required_argument, NULL, 'L' }, { "public-key", required_argument, NULL, 'k' },
		{ "account", required_argument, NULL, 'a' },	   { "user", required_argument, NULL, 'u' },
		{ "token", required_argument, NULL, 't' },	   { "warehouse", required_argument, NULL, 'w' },
		{ "role", required_argument, NULL, 'r' },	   { "schema", required_argument, NULL, 's' },
		{ "client-email", required_argument, NULL, 'e' }, { "project", required_argument, NULL, 'j' },
		{ "location", required_argument, NULL, 'l' },	   { "token-expires", required_argument, NULL, 'x' },
		{ "rows-per-partition", required_argument, NULL, 'R' },
		{ "async-polls", required_argument, NULL, 'A' },   { "fault", required_argument, NULL, 'f' },
		{ "log-file", required_argument, NULL, 'o' },	   { "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },		   { NULL, 0, NULL, 0 },
	};
	long port = 0, lifetime = 600;
	const char *port_file = NULL, *pubfile = NULL;
	int c;
	struct strbuf why = STRBUF_INIT;

	fk.account = "TEST";
	fk.user = "JOEY";
	fk.role = "PUBLIC";
	fk.schema = "PUBLIC";
	fk.client_email = "joey@test-project.iam.gserviceaccount.com";
	fk.project = "test-project";
	fk.rows_per_part = 1000;
	fk.token_expires_s = 3600;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'm':
			if (!strcmp(optarg, "bigquery"))
				fk.bigquery = true;
			else if (strcmp(optarg, "snowflake")) {
				fprintf(stderr, "warehouse-fake: --mode is snowflake or bigquery\n");
				return 2;
			}
			break;
		case 'd': fk.db_dir = optarg; break;
		case 'p': port = strtol(optarg, NULL, 10); break;
		case 'P': port_file = optarg; break;
		case 'L': lifetime = strtol(optarg, NULL, 10); break;
		case 'k': pubfile = optarg; break;
		case 'a': fk.account = optarg; break;
		case 'u': fk.user = optarg; break;
		case 't': fk.token = optarg; break;
		case 'w':
			if (fk.n_warehouses < ARRAY_SIZE(fk.warehouses))
				fk.warehouses[fk.n_warehouses++] = optarg;
			break;
		case 'r': fk.role = optarg; break;
		case 's': fk.schema = optarg; break;
		case 'e': fk.client_email = optarg; break;
		case 'j': fk.project = optarg; break;
		case 'l': fk.location = optarg; break;
		case 'x': fk.token_expires_s = atoi(optarg); break;
		case 'R': fk.rows_per_part = (size_t)strtoul(optarg, NULL, 10); break;
		case 'A': fk.async_polls = atoi(optarg); break;
		case 'f':
			if (!fake_add_fault(optarg, &why)) {
				fprintf(stderr, "warehouse-fake: %s\n", why.buf);
				return 2;
			}
			break;
		case 'o': fk.log_file = optarg; break;
		case 'q': fk.quiet = true; break;
		case 'h': fputs(usage, stdout); return 0;
		default: fputs(usage, stderr); return 2;
		}
	}
	if (!fk.db_dir) {
		fputs(usage, stderr);
		return 2;
	}
	if (!fk.n_warehouses)
		fk.warehouses[fk.n_warehouses++] = "COMPUTE_WH";
	if (!fk.rows_per_part)
		fk.rows_per_part = 1;
	if (pubfile) {
		FILE *f = fopen(pubfile, "r");
		struct strbuf pem = STRBUF_INIT;
		char buf[4096];
		size_t n;
		while (f && (n = fread(buf, 1, sizeof(buf), f)) > 0)
			strbuf_add(&pem, buf, n);
		if (f)
			fclose(f);
		fk.pubkey = jwt_load_public_key(pem.buf);
		strbuf_release(&pem);
		if (!fk.pubkey) {
			fprintf(stderr, "warehouse-fake: %s: not a PEM public key\n", pubfile);
			return 2;
		}
		strbuf_init(&fk.fingerprint, 0);
		jwt_fingerprint(fk.pubkey, &fk.fingerprint);
	}
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	signal(SIGPIPE, SIG_IGN);

	struct sockaddr_in sa;
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK); /* loopback only */
	struct MHD_Daemon *d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION |
							MHD_USE_ERROR_LOG,
						0, NULL, NULL, on_request, NULL, MHD_OPTION_SOCK_ADDR, &sa,
						MHD_OPTION_NOTIFY_COMPLETED, on_done, NULL, MHD_OPTION_CONNECTION_TIMEOUT,
						(unsigned)120, MHD_OPTION_END);
	if (!d) {
		fprintf(stderr, "warehouse-fake: cannot listen on 127.0.0.1:%ld\n", port);
		return 1;
	}
	const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
	unsigned bound = info ? info->port : (unsigned)port;
	if (port_file) {
		struct strbuf tmp = STRBUF_INIT;
		strbuf_addf(&tmp, "%s.tmp", port_file);
		FILE *f = fopen(tmp.buf, "w");
		if (f) {
			fprintf(f, "%u\n", bound);
			fclose(f);
			rename(tmp.buf, port_file);
		}
		strbuf_release(&tmp);
	}
	fake_log("%s fake listening on http://127.0.0.1:%u", fk.bigquery ? "BigQuery" : "Snowflake", bound);
	int64_t end = lifetime > 0 ? fake_now_ms() + lifetime * 1000 : 0;
	while (!stopping && (!end || fake_now_ms() < end))
		usleep(50000);
	if (!stopping)
		fake_log("max lifetime reached; exiting");
	MHD_stop_daemon(d);
	if (port_file)
		unlink(port_file);
	EVP_PKEY_free(fk.pubkey);
	strbuf_release(&why);
	return 0;
}
