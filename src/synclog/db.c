/*
 * db.c: what the sync log writers share: the writer table, times, app options, outcome
 * ids, values as text, the INSERT heads. Called by sqlite.c, postgres.c, mysql.c.
 */
#include "synclog/db.h"

#include <inttypes.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

const char *const synclog_record_cols[SYNCLOG_RECORD_COLS] = {
	"destination", "run_id", "record_key", "attempt", "operation", "changed_fields",
	"status", "error_code", "error_message", "logged_at",
};

const char *const synclog_run_cols[SYNCLOG_RUN_COLS] = {
	"destination", "run_id", "model", "run_trigger", "status", "started_at", "finished_at",
	"records_read", "created", "updated", "deleted", "unsubscribed", "unchanged", "failed",
	"not_in_braze", "requests", "retries", "error", "log_status", "log_rows", "logged_at",
};

const struct synclog_db_ops *synclog_db_for_app(const char *app_type)
{
	static const struct synclog_db_ops *const all[] = { &synclog_db_sqlite, &synclog_db_postgres,
							     &synclog_db_mysql };
	for (size_t i = 0; app_type && i < sizeof(all) / sizeof(all[0]); i++)
		if (!strcmp(all[i]->app_type, app_type))
			return all[i];
	return NULL;
}

void synclog_time_text(int64_t ms, char *buf, size_t size)
{
	/* rows of a batch share their second: its text is kept per thread */
	static _Thread_local int64_t last_s = -1;
	static _Thread_local char last[64];
	time_t t = (time_t)(ms / 1000);
	if (t != last_s) {
		struct tm tm;
		gmtime_r(&t, &tm);
		snprintf(last, sizeof(last), "%04d-%02d-%02d %02d:%02d:%02d", tm.tm_year + 1900, tm.tm_mon + 1,
			 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
		last_s = t;
	}
	int f = (int)(ms % 1000);
	snprintf(buf, size, "%s.%c%c%c", last, '0' + f / 100, '0' + f / 10 % 10, '0' + f % 10);
}

/* Length of the valid UTF-8 sequence at s (1-4), or 0 if it is not one. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
	if (s[0] < 0x80)
		return s[0] ? 1 : 0;
	size_t len = s[0] >= 0xf0 && s[0] <= 0xf4 ? 4 : s[0] >= 0xe0 ? 3 : s[0] >= 0xc2 && s[0] < 0xe0 ? 2 : 0;
	if (!len || len > n)
		return 0;
	for (size_t i = 1; i < len; i++)
		if ((s[i] & 0xc0) != 0x80)
			return 0;
	if (len == 3 && ((s[0] == 0xe0 && s[1] < 0xa0) || (s[0] == 0xed && s[1] >= 0xa0)))
		return 0; /* overlong, or a surrogate */
	if (len == 4 && ((s[0] == 0xf0 && s[1] < 0x90) || (s[0] == 0xf4 && s[1] >= 0x90)))
		return 0;
	return len;
}

void synclog_clean_text(struct strbuf *sb, const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0;
	while (i < len) {
		size_t k = utf8_len(p + i, len - i);
		if (k) {
			strbuf_add(sb, p + i, k);
			i += k;
		} else {
			strbuf_addch(sb, '?');
			i++;
		}
	}
}

bool synclog_prefix_ok(const char *prefix)
{
	size_t n = prefix ? strlen(prefix) : 0;
	if (n > 40)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = prefix[i];
		bool letter = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
		if (!letter && !(i && c >= '0' && c <= '9'))
			return false;
	}
	return true;
}

void synclog_vals_init(struct synclog_vals *x)
{
	memset(x, 0, sizeof(*x));
	for (size_t i = 0; i < sizeof(x->clean) / sizeof(x->clean[0]); i++)
		strbuf_init(&x->clean[i], 0);
}

void synclog_vals_release(struct synclog_vals *x)
{
	for (size_t i = 0; i < sizeof(x->clean) / sizeof(x->clean[0]); i++)
		strbuf_release(&x->clean[i]);
}

static const char *text(struct synclog_vals *x, int slot, const char *s, size_t len, bool clean)
{
	if (!s)
		return NULL;
	strbuf_reset(&x->clean[slot]);
	if (clean)
		synclog_clean_text(&x->clean[slot], s, len);
	else
		strbuf_add(&x->clean[slot], s, len);
	return x->clean[slot].buf;
}

static const char *num(struct synclog_vals *x, int i, int64_t v)
{
	snprintf(x->num[i], sizeof(x->num[i]), "%" PRId64, v);
	return x->num[i];
}

static const char *when(struct synclog_vals *x, int i, int64_t ms)
{
	synclog_time_text(ms, x->num[i], sizeof(x->num[i]));
	return x->num[i];
}

void synclog_record_values(const struct synclog_row *r, bool clean, struct synclog_vals *x)
{
	x->v[0] = text(x, 0, r->destination, strlen(r->destination), clean);
	x->v[1] = num(x, 1, r->run_id);
	x->v[2] = text(x, 1, r->key.ptr ? r->key.ptr : "", r->key.len, clean);
	x->v[3] = num(x, 3, r->attempt);
	x->v[4] = r->operation;
	x->v[5] = r->changed;
	x->v[6] = r->status;
	x->v[7] = r->error_code;
	x->v[8] = r->error ? text(x, 2, r->error, strlen(r->error), clean) : NULL;
	x->v[9] = when(x, 9, r->at_ms);
}

void synclog_run_values(const struct synclog_run *r, int64_t now_ms, bool clean, struct synclog_vals *x)
{
	x->v[0] = text(x, 0, r->destination, strlen(r->destination), clean);
	x->v[1] = num(x, 1, r->run_id);
	x->v[2] = r->model ? text(x, 1, r->model, strlen(r->model), clean) : NULL;
	x->v[3] = r->trigger;
	x->v[4] = r->status;
	x->v[5] = when(x, 5, r->started_ms);
	x->v[6] = r->finished_ms ? when(x, 6, r->finished_ms) : NULL;
	x->v[7] = r->records_read >= 0 ? num(x, 7, r->records_read) : NULL;
	const uint64_t counts[] = { r->created, r->updated, r->deleted, r->unsubscribed, r->unchanged,
				    r->failed, r->not_in_braze, r->requests, r->retries };
	for (int i = 0; i < 9; i++)
		x->v[8 + i] = num(x, 8 + i, (int64_t)counts[i]);
	x->v[17] = r->error ? text(x, 2, r->error, strlen(r->error), clean) : NULL;
	x->v[18] = r->log_status;
	x->v[19] = num(x, 19, (int64_t)r->log_rows);
	x->v[20] = when(x, 20, now_ms);
}

int64_t synclog_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

const char *synclog_app_opt(const struct cfg_app *app, const char *key)
{
	const struct cfg_option *o = cfg_options_get(&app->options, key);
	return o && o->str && *o->str ? o->str : NULL;
}

void synclog_add_insert_head(struct strbuf *sb, const char *prefix, const char *table, const char *const *cols,
			     int n)
{
	strbuf_addf(sb, "INSERT INTO %s%s (", prefix, table);
	for (int i = 0; i < n; i++)
		strbuf_addf(sb, "%s%s", i ? ", " : "", cols[i]);
}

enum jerr synclog_check_version(const char *app_id, const char *prefix, const char *where, int version,
				struct jerror *err)
{
	if (version <= SYNCLOG_SCHEMA_VERSION)
		return JERR_OK;
	jerror_set(err, JERR_IO, "sync log app \"%s\": table %ssync_meta at %s says schema version %d, "
		   "this joey writes version %d", app_id, prefix, where, version, SYNCLOG_SCHEMA_VERSION);
	jerror_hint(err, "upgrade joey, or set syncLogTablePrefix to log into other tables");
	return JERR_IO;
}

void synclog_add_run_excluded(struct strbuf *sb)
{
	for (int i = 2; i < SYNCLOG_RUN_COLS; i++)
		strbuf_addf(sb, "%s%s = excluded.%s", i > 2 ? ", " : "", synclog_run_cols[i], synclog_run_cols[i]);
}

void synclog_add_read_sql(struct strbuf *sb, const char *prefix, const char *at, const char *const ph[3])
{
	strbuf_addf(sb,
		    "SELECT r.run_id, r.attempt, r.operation, r.changed_fields, r.status, r.error_code, "
		    "r.error_message, %s, s.run_trigger FROM %ssync_records r LEFT JOIN %ssync_runs s ON "
		    "s.destination = r.destination AND s.run_id = r.run_id WHERE r.destination = %s AND "
		    "r.record_key = %s ORDER BY r.logged_at DESC, r.run_id DESC, r.attempt DESC LIMIT %s",
		    at, prefix, prefix, ph[0], ph[1], ph[2]);
}

/* digits of s[0..n) as a number; false if any is not a digit */
static bool digits(const char *s, int n, int *out)
{
	int v = 0;
	for (int i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return true;
}

bool synclog_time_parse(const char *s, int64_t *ms)
{
	int y, mo, d, h, mi, sec, frac = 0;
	if (!s || strlen(s) < 19 || s[4] != '-' || s[7] != '-' || (s[10] != ' ' && s[10] != 'T') || s[13] != ':' ||
	    s[16] != ':')
		return false;
	if (!digits(s, 4, &y) || !digits(s + 5, 2, &mo) || !digits(s + 8, 2, &d) || !digits(s + 11, 2, &h) ||
	    !digits(s + 14, 2, &mi) || !digits(s + 17, 2, &sec) || mo < 1 || mo > 12 || d < 1 || d > 31)
		return false;
	const char *p = s + 19;
	if (*p == '.') {
		int scale = 100;
		for (p++; *p >= '0' && *p <= '9'; p++, scale /= 10)
			frac += scale ? (*p - '0') * scale : 0;
	}
	if (*p && strcmp(p, "+00") && strcmp(p, "Z"))
		return false;
	/* days from the civil date (Howard Hinnant's algorithm), no time zone involved */
	int yy = y - (mo <= 2);
	int era = (yy >= 0 ? yy : yy - 399) / 400;
	int yoe = yy - era * 400;
	int doy = (153 * (mo + (mo > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	int doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	int64_t days = (int64_t)era * 146097 + doe - 719468;
	*ms = ((days * 24 + h) * 60 + mi) * 60000 + (int64_t)sec * 1000 + frac;
	return true;
}

bool synclog_hit_from_text(const char *const v[SYNCLOG_HIT_COLS], struct synclog_hit *h)
{
	char *end;
	memset(h, 0, sizeof(*h));
	if (!v[0] || !v[1] || !v[2] || !v[4] || !v[7])
		return false;
	h->run_id = strtoll(v[0], &end, 10);
	if (*end)
		return false;
	h->attempt = (int)strtol(v[1], &end, 10);
	if (*end)
		return false;
	h->operation = v[2];
	h->changed = v[3];
	h->status = v[4];
	h->error_code = v[5];
	h->error = v[6];
	h->trigger = v[8];
	return synclog_time_parse(v[7], &h->at_ms);
}
