/* pg.c: the state store in a PostgreSQL schema, through libpq. */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "base/log.h"
#include "base/xalloc.h"
#include "state/backend.h"
#include "state/schema.h"

/*
 * Design notes.
 *
 * The store is one schema ("joey", or ?schema=NAME in the URL, which is taken out
 * before the URL goes to libpq) in any database the user may create a schema in.
 * search_path is set to it, so every statement names its tables unqualified, and
 * meta, records, runs, ledger, locks and marks are the same tables as on SQLite
 * (schema.c says how the columns differ, and why).
 *
 * One connection per struct state, in autocommit unless a transaction is open. Fixed
 * statements are prepared once per connection, on first use. Every statement is run
 * to completion before the call returns (PQexecPrepared/PQexecParams: the whole
 * result, which is bounded), so no statement stays open between calls: cursors and
 * listings read in bounded batches with keyset pagination, the export through a
 * server-side cursor inside its own read-only snapshot.
 *
 * Concurrency. Writers do not exclude each other as SQLite's BEGIN IMMEDIATE does:
 * rows are locked as they are written, and lock_timeout (STATE_BUSY_TIMEOUT_MS)
 * turns a long wait into JERR_STATE_BUSY. Runs of different destinations therefore
 * write at once. A destination lock is taken by reading its row FOR UPDATE and then
 * writing it only if it is still as read (INSERT ... ON CONFLICT DO NOTHING for an
 * absent row, UPDATE ... WHERE token = the old token for a stale one), so two
 * processes never both believe they hold it. Migrations take a transaction-level
 * advisory lock on the schema's name, so two processes creating a fresh store at
 * once apply each step once.
 *
 * Errors name the store as postgresql://user@host:port/database (never the
 * password), and carry the server's message and SQLSTATE as detail. After any failed
 * statement inside a transaction PostgreSQL refuses the rest of it; the caller rolls
 * back, as state.h asks for every back end.
 *
 * Text: the database must use UTF8 (or SQL_ASCII): payloads are UTF-8 JSON. Error
 * messages (which may quote a server's response) are cleaned of invalid UTF-8 and
 * NUL before they are stored; record keys are stored as bytes (BYTEA), unchanged.
 */

#define PG_DEFAULT_SCHEMA "joey"
#define PG_CONNECT_TRIES 3
#define PG_RETRY_BASE_MS 250
/* Rows per round trip of the listings and the export. */
#define PG_LIST_BATCH 500
/* Migrations take the advisory lock (PG_LOCK_KEY, hashtext(schema)): joey's, per schema. */
#define PG_LOCK_KEY "1246709081"
_Static_assert(STATE_APPLICATION_ID == 1246709081, "PG_LOCK_KEY is STATE_APPLICATION_ID");

enum stmt_id {
	S_GET,
	S_COUNT,
	S_PUT,
	S_DELETE,
	S_FAIL,
	S_EXISTS,
	S_RUN_START,
	S_RUN_FINISH,
	S_RUNS_ABANDON,
	S_RUN_PROGRESS,
	S_RUNS_RUNNING,
	S_LEDGER_ADD,
	S_LOCK_GET,
	S_LOCK_INSERT,
	S_LOCK_TAKE,
	S_LOCK_BEAT,
	S_LOCK_DEL,
	S_CUR_FIRST,
	S_CUR_NEXT,
	S_MARK_GET,
	S_MARK_SET,
	S_CUR_FROM,
	S_COUNT_RANGE,
	S_WORK_JOB_INSERT,
	S_WORK_JOB_TOKEN,
	S_WORK_ADOPT,
	S_WORK_ITEM_INSERT,
	S_WORK_CLAIM,
	S_WORK_BEAT,
	S_WORK_BEAT_LOCKS,
	S_WORK_JOB_LOCK,
	S_WORK_FINISH,
	S_WORK_OPEN,
	S_WORK_REQUEUE,
	S_WORK_ITEMS,
	S_WORK_JOB_STATUS,
	S_WORK_CLOSE,
	S_WORK_UNLOCK,
	S_WORK_SWEEP,
	S_WORK_PRUNE,
	S_LEADER_TRY,
	S_PING,
	S_RATE_TAKE,
	S_OUTBOX_PUT,
	S_OUTBOX_NEXT,
	S_OUTBOX_DEL,
	S_OUTBOX_COUNT,
	S_SYNCLOG_SET,
	S_SYNCLOG_GET,
	S_SYNCLOG_UNFINISHED,
	S_CUR_LOOKUP,
	S__COUNT
};

#define ROW_COLUMNS                                                                        \
	"key_kind, key_int, key_text, payload, hash, in_scope, pending, attempts, last_error," \
	" braze_exists, checked_at, confirmed_at, updated_at"
#define KEY_ORDER "key_kind, key_int, key_text"
#define KEY_MATCH "key_kind = $2 AND key_int = $3 AND key_text = $4"
/* What a row costs the cursor's byte budget (as state_cursor_full counts, near enough). */
#define ROW_BYTES "(octet_length(key_text) + octet_length(payload) + coalesce(octet_length(last_error), 0))"
/*
 * A cursor batch: at most $2 rows in key order, and only those that start within the
 * byte budget $n (a running sum over the batch), so a batch of large payloads stops
 * after about STATE_BATCH_BYTES, as SQLite's stepping does.
 */
#define CURSOR_SQL(after, budget)                                                          \
	"SELECT " ROW_COLUMNS " FROM (SELECT " ROW_COLUMNS ", sum(" ROW_BYTES ") OVER"       \
	" (ORDER BY " KEY_ORDER " ROWS UNBOUNDED PRECEDING) - " ROW_BYTES " AS before"       \
	" FROM records WHERE dest_id = $1" after " ORDER BY " KEY_ORDER " LIMIT $2) b"       \
	" WHERE before < " budget " ORDER BY " KEY_ORDER
/* The database's clock in epoch ms: leases are on it, so the workers' clocks do not matter. */
#define NOW_MS "(extract(epoch FROM clock_timestamp()) * 1000)::bigint"
#define NOW_MS_F "(extract(epoch FROM clock_timestamp()) * 1000)::float8"
/* A bucket refilled to now (rate_buckets, state_rate_take): $2 capacity, $3 rate per ms. */
#define RATE_AVAIL "least($2::float8, b.tokens + $3::float8 * greatest(0, excluded.updated_at - b.updated_at))"

static const struct {
	const char *sql;
	int n_params;
} stmts[S__COUNT] = {
	[S_GET] = { "SELECT " ROW_COLUMNS " FROM records WHERE dest_id = $1 AND " KEY_MATCH, 4 },
	[S_COUNT] = { "SELECT count(*) FROM records WHERE dest_id = $1 AND in_scope", 1 },
	[S_PUT] = { "INSERT INTO records (dest_id, key_kind, key_int, key_text, payload, hash,"
		    " in_scope, pending, attempts, last_error, confirmed_at, updated_at)"
		    " VALUES ($1, $2, $3, $4, $5, $6, $7, false, 0, NULL, $8, $8)"
		    " ON CONFLICT (dest_id, key_kind, key_int, key_text) DO UPDATE SET"
		    " payload = excluded.payload, hash = excluded.hash, in_scope = excluded.in_scope,"
		    " pending = false, attempts = 0, last_error = NULL,"
		    " confirmed_at = excluded.confirmed_at, updated_at = excluded.updated_at", 8 },
	[S_DELETE] = { "DELETE FROM records WHERE dest_id = $1 AND " KEY_MATCH, 4 },
	[S_FAIL] = { "INSERT INTO records (dest_id, key_kind, key_int, key_text, payload, hash,"
		     " in_scope, pending, attempts, last_error, updated_at)"
		     " VALUES ($1, $2, $3, $4, '', decode(repeat('00', 16), 'hex'), false, true, 1,"
		     " $5, $6)"
		     " ON CONFLICT (dest_id, key_kind, key_int, key_text) DO UPDATE SET pending = true,"
		     " attempts = records.attempts + 1, last_error = excluded.last_error,"
		     " updated_at = excluded.updated_at", 6 },
	[S_EXISTS] = { "INSERT INTO records (dest_id, key_kind, key_int, key_text, payload, hash,"
		       " in_scope, braze_exists, checked_at, updated_at)"
		       " VALUES ($1, $2, $3, $4, '', decode(repeat('00', 16), 'hex'), false, $5, $6, $7)"
		       " ON CONFLICT (dest_id, key_kind, key_int, key_text) DO UPDATE SET"
		       " braze_exists = excluded.braze_exists, checked_at = excluded.checked_at,"
		       " pending = false, attempts = 0, last_error = NULL,"
		       " updated_at = excluded.updated_at", 7 },
	[S_RUN_START] = { "INSERT INTO runs (dest_id, kind, status, started_at)"
			  " VALUES ($1, $2, 'running', $3) RETURNING id", 3 },
	[S_RUN_FINISH] = { "UPDATE runs SET status = $2, finished_at = $3, created = $4,"
			   " updated = $5, deleted = $6, unsubscribed = $7, unchanged = $8,"
			   " failed = $9, skipped = $10, requests = $11, retries = $12,"
			   " throttled = $13, data_points = $14, error = $15 WHERE id = $1", 15 },
	[S_RUNS_ABANDON] = { "UPDATE runs SET status = 'interrupted', finished_at = $2,"
			     " error = '" STATE_ABANDONED_ERROR "'"
			     " WHERE dest_id = $1 AND status = 'running'", 2 },
	[S_RUN_PROGRESS] = { "UPDATE runs SET created = $2, updated = $3, deleted = $4, unsubscribed = $5,"
			     " unchanged = $6, failed = $7, skipped = $8, requests = $9, retries = $10,"
			     " throttled = $11, data_points = $12 WHERE id = $1 AND status = 'running'", 12 },
	[S_RUNS_RUNNING] = { "SELECT DISTINCT dest_id FROM runs WHERE status = 'running'", 0 },
	[S_LEDGER_ADD] = { "INSERT INTO ledger (run_id, dest_id, key_kind, key_int, key_text, error,"
			   " attempts, at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)", 8 },
	[S_LOCK_GET] = { "SELECT holder, host, pid, token, acquired_at, heartbeat_at"
			 " FROM locks WHERE dest_id = $1 FOR UPDATE", 1 },
	[S_LOCK_INSERT] = { "INSERT INTO locks (dest_id, holder, host, pid, token, acquired_at,"
			    " heartbeat_at) VALUES ($1, $2, $3, $4, $5, $6, $6)"
			    " ON CONFLICT (dest_id) DO NOTHING", 6 },
	[S_LOCK_TAKE] = { "UPDATE locks SET holder = $2, host = $3, pid = $4, token = $5,"
			  " acquired_at = $6, heartbeat_at = $6 WHERE dest_id = $1 AND token = $7", 7 },
	[S_LOCK_BEAT] = { "UPDATE locks SET heartbeat_at = $3 WHERE dest_id = $1 AND token = $2", 3 },
	[S_LOCK_DEL] = { "DELETE FROM locks WHERE dest_id = $1 AND token = $2", 2 },
	[S_CUR_FIRST] = { CURSOR_SQL("", "$3"), 3 },
	[S_CUR_NEXT] = { CURSOR_SQL(" AND (" KEY_ORDER ") > ($4, $5, $6)", "$3"), 6 },
	[S_MARK_GET] = { "SELECT value FROM marks WHERE schedule_id = $1", 1 },
	[S_MARK_SET] = { "INSERT INTO marks (schedule_id, value, updated_at) VALUES ($1, $2, $3)"
			 " ON CONFLICT (schedule_id) DO UPDATE SET value = excluded.value,"
			 " updated_at = excluded.updated_at", 3 },
	[S_CUR_FROM] = { CURSOR_SQL(" AND (" KEY_ORDER ") >= ($4, $5, $6)", "$3"), 6 },
	/*
	 * state_cursor_expect's look-up: for each key of the arrays (kinds, ints, texts),
	 * the first row at or after it (an index descent each), each row once, in key order.
	 */
	[S_CUR_LOOKUP] = { "SELECT DISTINCT ON (r.key_kind, r.key_int, r.key_text) r.*"
			   " FROM unnest($2::smallint[], $3::bigint[], $4::bytea[]) AS k(kind, i, t)"
			   " CROSS JOIN LATERAL (SELECT " ROW_COLUMNS " FROM records WHERE dest_id = $1"
			   " AND (" KEY_ORDER ") >= (k.kind, k.i, k.t) ORDER BY " KEY_ORDER " LIMIT 1) r"
			   " ORDER BY r.key_kind, r.key_int, r.key_text", 4 },
	/* a NULL kind is an open bound */
	[S_COUNT_RANGE] = { "SELECT count(*) FROM records WHERE dest_id = $1 AND in_scope"
			    " AND ($2::smallint IS NULL OR (" KEY_ORDER ") >= ($2::smallint, $3::bigint, $4::bytea))"
			    " AND ($5::smallint IS NULL OR (" KEY_ORDER ") < ($5::smallint, $6::bigint, $7::bytea))", 7 },
	/* ---- the work queue (schema.c, version 3) ---- */
	[S_WORK_JOB_INSERT] = { "INSERT INTO work_jobs (dedup, model_id, schedule_id, since, force,"
				" max_delete_percent, lock_token, status, created_at)"
				" VALUES ($1, $2, $3, $4, $5, $6, 0, 'running', $7)"
				" ON CONFLICT (dedup) DO NOTHING RETURNING id", 7 },
	[S_WORK_JOB_TOKEN] = { "UPDATE work_jobs SET lock_token = $2 WHERE id = $1", 2 },
	/* the lock passes from this struct state to the job: its own token, no process */
	[S_WORK_ADOPT] = { "UPDATE locks SET token = $3, holder = $4, pid = 0"
			   " WHERE dest_id = $1 AND token = $2", 4 },
	[S_WORK_ITEM_INSERT] = { "INSERT INTO work_items (job_id, dest_id, run_id, part, n_parts, lo_kind,"
				 " lo_int, lo_text, hi_kind, hi_int, hi_text, status)"
				 " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 'queued')", 11 },
	/*
	 * The oldest claimable item, skipping rows another worker is claiming right now;
	 * only items of running jobs that still hold their destination's lock.
	 */
	[S_WORK_CLAIM] = { "UPDATE work_items i SET status = 'running', worker = $1, claimed_at = " NOW_MS ","
			   " expires_at = " NOW_MS " + $2::bigint, claims = i.claims + 1"
			   " FROM work_jobs j WHERE j.id = i.job_id AND i.id = ("
			   "SELECT w.id FROM work_items w JOIN work_jobs jj ON jj.id = w.job_id"
			   " WHERE jj.status = 'running' AND ($3::bigint = 0 OR w.job_id = $3::bigint)"
			   " AND (w.status = 'queued' OR (w.status = 'running' AND w.expires_at < " NOW_MS "))"
			   " AND EXISTS (SELECT 1 FROM locks l WHERE l.dest_id = w.dest_id AND l.token = jj.lock_token)"
			   " ORDER BY w.job_id, w.id LIMIT 1 FOR UPDATE OF w SKIP LOCKED)"
			   " RETURNING i.id, i.job_id, i.run_id, i.dest_id, i.part, i.n_parts, i.claims,"
			   " i.lo_kind, i.lo_int, i.lo_text, i.hi_kind, i.hi_int, i.hi_text,"
			   " j.model_id, j.schedule_id, j.since, j.force, j.max_delete_percent", 3 },
	[S_WORK_BEAT] = { "UPDATE work_items SET expires_at = " NOW_MS " + $2::bigint"
			  " WHERE worker = $1 AND status = 'running' RETURNING id", 2 },
	/* in dest_id order, so two workers refreshing at once cannot deadlock */
	[S_WORK_BEAT_LOCKS] = { "UPDATE locks SET heartbeat_at = $1 WHERE dest_id IN ("
				"SELECT l.dest_id FROM locks l JOIN work_jobs j ON j.lock_token = l.token"
				" WHERE j.status = 'running' ORDER BY l.dest_id FOR UPDATE OF l)", 1 },
	/* finishers of one job take turns */
	[S_WORK_JOB_LOCK] = { "SELECT id, status FROM work_jobs WHERE id ="
			      " (SELECT job_id FROM work_items WHERE id = $1) FOR UPDATE", 1 },
	[S_WORK_FINISH] = { "UPDATE work_items SET status = 'finished', finished_at = " NOW_MS ","
			    " run_status = $3, created = $4, updated = $5, deleted = $6, unsubscribed = $7,"
			    " unchanged = $8, failed = $9, skipped = $10, requests = $11, retries = $12,"
			    " throttled = $13, data_points = $14, deletes_held = $15, seen = $16,"
			    " read_ok = $17, error = $18"
			    " WHERE id = $1 AND worker = $2 AND status = 'running'", 18 },
	[S_WORK_OPEN] = { "SELECT count(*) FROM work_items WHERE job_id = $1 AND status <> 'finished'", 1 },
	[S_WORK_REQUEUE] = { "UPDATE work_items SET status = 'queued', worker = NULL, expires_at = NULL"
			     " WHERE id = $1 AND worker = $2 AND status = 'running'", 2 },
	[S_WORK_ITEMS] = { "SELECT id, dest_id, run_id, part, n_parts, claims, status, run_status, created,"
			   " updated, deleted, unsubscribed, unchanged, failed, skipped, requests, retries,"
			   " throttled, data_points, deletes_held, seen, read_ok, error, worker"
			   " FROM work_items WHERE job_id = $1 ORDER BY dest_id, part", 1 },
	[S_WORK_JOB_STATUS] = { "SELECT status, model_id FROM work_jobs WHERE id = $1", 1 },
	[S_WORK_CLOSE] = { "UPDATE work_jobs SET status = $2, finished_at = " NOW_MS ", mark = $3"
			   " WHERE id = $1 AND status = 'running' RETURNING lock_token", 3 },
	[S_WORK_UNLOCK] = { "DELETE FROM locks WHERE token = $1", 1 },
	/* a running job's locks are only ever gone after a takeover (see state_work_sweep) */
	[S_WORK_SWEEP] = { "UPDATE work_jobs j SET status = 'interrupted', finished_at = " NOW_MS
			   " WHERE status = 'running' AND created_at < $1"
			   " AND NOT EXISTS (SELECT 1 FROM locks l WHERE l.token = j.lock_token)", 1 },
	[S_WORK_PRUNE] = { "DELETE FROM work_jobs WHERE status <> 'running' AND finished_at < " NOW_MS " - $1::bigint", 1 },
	[S_LEADER_TRY] = { "SELECT pg_catalog.pg_try_advisory_lock(" PG_LOCK_KEY ", pg_catalog.hashtext($1))", 1 },
	[S_PING] = { "SELECT 1", 0 },
	/*
	 * Refill to now, then take min(want, whole tokens) in one statement: the row lock
	 * orders the workers. granted is how many this call took.
	 */
	[S_RATE_TAKE] = { "INSERT INTO rate_buckets AS b (key, tokens, capacity, rate_per_ms, granted, updated_at)"
			  " VALUES ($1, $2::float8 - least($4::float8, floor($2::float8)), $2::float8, $3::float8,"
			  " least($4::float8, floor($2::float8)), " NOW_MS_F ")"
			  " ON CONFLICT (key) DO UPDATE SET"
			  " granted = least($4::float8, floor(" RATE_AVAIL ")),"
			  " tokens = " RATE_AVAIL " - least($4::float8, floor(" RATE_AVAIL ")),"
			  " capacity = excluded.capacity, rate_per_ms = excluded.rate_per_ms,"
			  " updated_at = greatest(b.updated_at, excluded.updated_at)"
			  " RETURNING granted, tokens", 4 },
	[S_OUTBOX_PUT] = { "INSERT INTO synclog_outbox (dest_id, run_id, body, created_at) VALUES ($1, $2, $3, $4)"
			   " RETURNING id", 4 },
	[S_OUTBOX_NEXT] = { "SELECT id, run_id, body FROM synclog_outbox WHERE dest_id = $1 AND id > $2"
			    " ORDER BY id LIMIT 1", 2 },
	[S_OUTBOX_DEL] = { "DELETE FROM synclog_outbox WHERE dest_id = $1 AND id = $2", 2 },
	[S_OUTBOX_COUNT] = { "SELECT count(*), coalesce(sum(length(body)), 0) FROM synclog_outbox WHERE dest_id = $1", 1 },
	[S_SYNCLOG_SET] = { "INSERT INTO synclog_runs (run_id, dest_id, status, written, pending, error, updated_at)"
			    " VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (run_id) DO UPDATE SET"
			    " dest_id = excluded.dest_id, status = excluded.status, written = excluded.written,"
			    " pending = excluded.pending, error = excluded.error, updated_at = excluded.updated_at", 7 },
	[S_SYNCLOG_GET] = { "SELECT dest_id, status, written, pending, error, updated_at FROM synclog_runs"
			    " WHERE run_id = $1", 1 },
	[S_SYNCLOG_UNFINISHED] = { "SELECT run_id FROM synclog_runs WHERE dest_id = $1 AND status <> 'complete'"
				   " ORDER BY run_id LIMIT $2", 2 },
};

/* Columns of ROW_COLUMNS. */
enum { C_KIND, C_INT, C_TEXT, C_PAYLOAD, C_HASH, C_IN_SCOPE, C_PENDING, C_ATTEMPTS,
       C_LAST_ERROR, C_EXISTS, C_CHECKED_AT, C_CONFIRMED_AT, C_UPDATED_AT };

struct pg_state {
	struct state base; /* first: a struct state * is a struct pg_state * */
	PGconn *pg;
	char *schema;
	char *host, *port, *database; /* for messages */
	bool prepared[S__COUNT];
	bool load_prepared[STATE_MAX_TABLES];
	bool leader; /* holds the leader's advisory lock (state_leader_try) */
	/* state_put inside a transaction, not sent yet (flush_puts) */
	struct pending_put *pend;
	size_t n_pend, alloc_pend;
	struct strbuf pend_bytes; /* their dest ids, key texts, payloads and hashes */
	bool put_batch_prepared;  /* the INSERT of PUT_BATCH_MAX rows is prepared */
	struct strbuf tmp; /* decoded bytes of the row being read */
};

static struct pg_state *ps_of(struct state *st)
{
	return (struct pg_state *)st;
}

/* ---- parameters: text, or binary for bytes that need not end in NUL ---- */

#define MAX_PARAMS 20

struct params {
	int n;
	const char *v[MAX_PARAMS];
	int len[MAX_PARAMS];
	int fmt[MAX_PARAMS];
	char num[MAX_PARAMS][STATE_KEYBUF_SIZE];
};

static void p_text(struct params *p, const char *s) /* NULL: SQL NULL */
{
	p->v[p->n] = s;
	p->len[p->n] = 0;
	p->fmt[p->n] = 0;
	p->n++;
}

static void p_int(struct params *p, int64_t i)
{
	snprintf(p->num[p->n], sizeof(p->num[0]), "%" PRId64, i);
	p_text(p, p->num[p->n]);
}

static void p_bool(struct params *p, bool b)
{
	p_text(p, b ? "t" : "f");
}

/* Bytes as they are: binary format (BYTEA, or TEXT whose binary form is its bytes). */
static void p_bytes(struct params *p, const void *b, size_t n)
{
	p->v[p->n] = b ? b : "";
	p->len[p->n] = (int)n;
	p->fmt[p->n] = 1;
	p->n++;
}

/* A record key: key_kind, key_int, key_text. */
static void p_key(struct params *p, const struct rkey *k)
{
	p_int(p, k->is_int ? 0 : 1);
	p_int(p, k->is_int ? k->i : 0);
	if (k->is_int)
		p_bytes(p, "", 0);
	else
		p_bytes(p, k->text.ptr, k->text.len);
}

/* ---- messages ---- */

/* The server's (or libpq's) message on one line, without trailing newlines. */
static void add_pg_message(struct strbuf *sb, const char *msg)
{
	size_t start = sb->len;
	for (const char *s = msg ? msg : ""; *s; s++) {
		if (*s == '\n') {
			strbuf_addstr(sb, "; ");
			continue;
		}
		strbuf_addch(sb, *s == '\t' ? ' ' : *s);
	}
	while (sb->len > start && (sb->buf[sb->len - 1] == ' ' || sb->buf[sb->len - 1] == ';'))
		strbuf_setlen(sb, sb->len - 1);
}

/* Append s percent-encoded where a URL needs it. */
static void add_url_part(struct strbuf *sb, const char *s)
{
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (isalnum(c) || strchr("-._~", c))
			strbuf_addch(sb, (char)c);
		else
			strbuf_addf(sb, "%%%02X", c);
	}
}

/* postgresql://user@host:port/database[?schema=s] (parts that are NULL left out). */
static void display_name(struct strbuf *out, const char *user, const char *host, const char *port,
			 const char *db, const char *schema)
{
	strbuf_addstr(out, "postgresql://");
	if (user && *user) {
		add_url_part(out, user);
		strbuf_addch(out, '@');
	}
	if (host && *host) {
		if (strchr(host, ':') && !strchr(host, '/')) {
			strbuf_addf(out, "[%s]", host); /* IPv6 */
		} else {
			add_url_part(out, host);
		}
	}
	if (port && *port)
		strbuf_addf(out, ":%s", port);
	strbuf_addch(out, '/');
	if (db && *db)
		add_url_part(out, db);
	if (schema && strcmp(schema, PG_DEFAULT_SCHEMA) != 0) {
		strbuf_addstr(out, "?schema=");
		add_url_part(out, schema);
	}
}

static bool is_hex(int c)
{
	return isxdigit((unsigned char)c) != 0;
}

static int hex_val(int c)
{
	return c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10;
}

static void url_decode(const char *s, size_t n, struct strbuf *out)
{
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '%' && i + 2 < n && is_hex(s[i + 1]) && is_hex(s[i + 2])) {
			strbuf_addch(out, (char)(hex_val(s[i + 1]) * 16 + hex_val(s[i + 2])));
			i += 2;
		} else {
			strbuf_addch(out, s[i]);
		}
	}
}

/*
 * Split url into what libpq gets (conninfo: the URL without our own parameter) and the
 * schema (?schema=NAME, default "joey"). false if the schema is not a usable name.
 */
static bool split_url(const char *url, struct strbuf *conninfo, struct strbuf *schema)
{
	const char *q = strchr(url, '?');
	bool first = true;

	strbuf_reset(conninfo);
	strbuf_reset(schema);
	if (!q) {
		strbuf_addstr(conninfo, url);
	} else {
		strbuf_add(conninfo, url, (size_t)(q - url));
		for (const char *p = q + 1; *p;) {
			const char *end = strchr(p, '&');
			size_t n = end ? (size_t)(end - p) : strlen(p);
			if (n > 7 && !strncmp(p, "schema=", 7)) {
				strbuf_reset(schema);
				url_decode(p + 7, n - 7, schema);
			} else if (n) {
				strbuf_addch(conninfo, first ? '?' : '&');
				strbuf_add(conninfo, p, n);
				first = false;
			}
			p += n;
			if (*p == '&')
				p++;
		}
	}
	if (!schema->len)
		strbuf_addstr(schema, PG_DEFAULT_SCHEMA);
	if (schema->len > 63 || strlen(schema->buf) != schema->len)
		return false;
	for (size_t i = 0; i < schema->len; i++) {
		unsigned char c = (unsigned char)schema->buf[i];
		if (!isalnum(c) && c != '_' && c != '-' && c != '$')
			return false;
	}
	return true;
}

static void pg_display(const char *path, struct strbuf *out)
{
	struct strbuf conninfo = STRBUF_INIT, schema = STRBUF_INIT;
	PQconninfoOption *opts;
	const char *user = NULL, *host = NULL, *port = NULL, *db = NULL;

	split_url(path, &conninfo, &schema);
	opts = PQconninfoParse(conninfo.buf, NULL);
	for (PQconninfoOption *o = opts; o && o->keyword; o++) {
		if (!o->val)
			continue;
		if (!strcmp(o->keyword, "user"))
			user = o->val;
		else if (!strcmp(o->keyword, "host"))
			host = o->val;
		else if (!strcmp(o->keyword, "port"))
			port = o->val;
		else if (!strcmp(o->keyword, "dbname"))
			db = o->val;
	}
	if (opts)
		display_name(out, user, host, port, db, schema.buf);
	else
		strbuf_addstr(out, "postgresql://(an invalid URL)");
	PQconninfoFree(opts);
	strbuf_release(&conninfo);
	strbuf_release(&schema);
}

/*
 * Fill err for a failed statement (res may be NULL: no result at all): the caller's
 * message (naming the store), turned into words the user can act on; the server's
 * message and SQLSTATE are the detail. Returns JERR_STATE or JERR_STATE_BUSY.
 */
static enum jerr pg_error(struct pg_state *ps, const PGresult *res, struct jerror *err,
			  const char *fmt, ...) JOEY_PRINTF(4, 5);
static enum jerr pg_error(struct pg_state *ps, const PGresult *res, struct jerror *err,
			  const char *fmt, ...)
{
	struct strbuf msg = STRBUF_INIT, detail = STRBUF_INIT;
	const char *sqlstate = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	const char *primary = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
	const char *more = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL) : NULL;
	enum jerr code = JERR_STATE;
	va_list ap;

	va_start(ap, fmt);
	strbuf_vaddf(&msg, fmt, ap);
	va_end(ap);
	strbuf_addstr(&detail, "PostgreSQL: ");
	if (primary) {
		add_pg_message(&detail, primary);
		if (more) {
			strbuf_addstr(&detail, " (");
			add_pg_message(&detail, more);
			strbuf_addstr(&detail, ")");
		}
	} else {
		add_pg_message(&detail, PQerrorMessage(ps->pg));
	}
	if (sqlstate)
		strbuf_addf(&detail, " (SQLSTATE %s)", sqlstate);

	if (!sqlstate && PQstatus(ps->pg) != CONNECTION_OK) {
		jerror_set(err, code, "%s: lost the connection to the server", msg.buf);
		jerror_detail(err, "%s", detail.buf);
		jerror_hint(err, "check that the PostgreSQL server at %s:%s is running and "
				 "reachable; what was committed before stays intact",
			    ps->host, ps->port);
	} else if (sqlstate && !strcmp(sqlstate, "53100")) {
		jerror_set(err, code, "%s: the disk is full", msg.buf);
		jerror_detail(err, "%s", detail.buf);
		jerror_hint(err, "free space on the PostgreSQL server; what was committed before "
				 "stays intact, and the next run re-sends the rest");
	} else if (sqlstate && (!strcmp(sqlstate, "55P03") || !strcmp(sqlstate, "40001") ||
				!strcmp(sqlstate, "40P01"))) {
		code = JERR_STATE_BUSY;
		jerror_set(err, code, "%s: it is locked by another process", msg.buf);
		jerror_detail(err, "%s (waited up to %d ms)", detail.buf, STATE_BUSY_TIMEOUT_MS);
		jerror_hint(err, "another joey process is writing the same rows; try again when "
				 "it is done");
	} else if (sqlstate && !strcmp(sqlstate, "25006")) {
		jerror_set(err, code, "%s: the state store is read-only", msg.buf);
		jerror_detail(err, "%s", detail.buf);
		jerror_hint(err, "connect to the primary server, not a standby");
	} else if (sqlstate && !strcmp(sqlstate, "42501")) {
		jerror_set(err, code, "%s: permission denied", msg.buf);
		jerror_detail(err, "%s", detail.buf);
		jerror_hint(err, "the user needs to own schema \"%s\" in database \"%s\" (or be "
				 "allowed to create it)", ps->schema, ps->database);
	} else {
		jerror_set(err, code, "%s", msg.buf);
		jerror_detail(err, "%s", detail.buf);
	}
	strbuf_release(&msg);
	strbuf_release(&detail);
	return code;
}

/* Copy s, replacing NUL and invalid UTF-8 by '?' (messages only; PostgreSQL refuses both). */
static const char *clean_text(const char *s, struct strbuf *out)
{
	const unsigned char *p = (const unsigned char *)s;
	strbuf_reset(out);
	while (*p) {
		int n = *p < 0x80 ? 1 : (*p >> 5) == 6 ? 2 : (*p >> 4) == 14 ? 3 : (*p >> 3) == 30 ? 4 : 0;
		bool ok = n > 0;
		for (int i = 1; ok && i < n; i++)
			ok = (p[i] & 0xc0) == 0x80;
		if (ok && n == 2 && *p < 0xc2)
			ok = false; /* overlong */
		if (ok && n == 3 && ((*p == 0xe0 && p[1] < 0xa0) || (*p == 0xed && p[1] >= 0xa0)))
			ok = false; /* overlong, surrogate */
		if (ok && n == 4 && ((*p == 0xf0 && p[1] < 0x90) || *p > 0xf4 || (*p == 0xf4 && p[1] >= 0x90)))
			ok = false;
		if (!ok) {
			strbuf_addch(out, '?');
			p++;
			continue;
		}
		strbuf_add(out, (const char *)p, (size_t)n);
		p += n;
	}
	return out->buf;
}

/* ---- running statements ---- */

/* Whether res is the success it should be; res may be NULL. */
static bool res_ok(const PGresult *res)
{
	ExecStatusType s = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
	return s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK;
}

/*
 * Write-behind of state_put. Inside a transaction, the puts of a batch of Braze's
 * answers (up to 75 rows) are kept and sent as one multi-row INSERT ... ON CONFLICT
 * DO UPDATE before the next other statement or the commit, instead of one round trip
 * each: with the store on another machine, a round trip per row would bound a worker
 * to a few thousand rows a second. Order is kept (anything else flushes first), and a
 * key put twice flushes between (one INSERT may not touch a row twice). A failure
 * surfaces at the next statement or at the commit, which then fails and rolls back:
 * as with any failed write, nothing of the transaction is stored.
 */
#define PUT_BATCH_MAX 256

struct pending_put {
	size_t dest, dest_len, key, key_len, payload, payload_len, hash; /* into pend_bytes */
	bool is_int, in_scope;
	int64_t key_int, now;
};

static enum jerr flush_puts(struct pg_state *ps, struct jerror *err);

/*
 * Run fixed statement id with p; on success *res holds the result (PQclear it). On
 * failure *res is NULL and err says what (what, with the store's name, is the start
 * of the message).
 */
static enum jerr run(struct pg_state *ps, enum stmt_id id, const struct params *p, PGresult **res,
		     struct jerror *err, const char *fmt, ...) JOEY_PRINTF(6, 7);
static enum jerr run(struct pg_state *ps, enum stmt_id id, const struct params *p, PGresult **res,
		     struct jerror *err, const char *fmt, ...)
{
	char name[16];
	PGresult *r = NULL;
	struct strbuf what = STRBUF_INIT;
	va_list ap;
	enum jerr ret;

	*res = NULL;
	if ((ret = flush_puts(ps, err)))
		return ret;
	snprintf(name, sizeof(name), "joey_s%d", (int)id);
	if (!ps->prepared[id]) {
		r = PQprepare(ps->pg, name, stmts[id].sql, stmts[id].n_params, NULL);
		if (res_ok(r)) {
			ps->prepared[id] = true;
			PQclear(r);
			r = NULL;
		}
	}
	if (ps->prepared[id]) {
		r = PQexecPrepared(ps->pg, name, p->n, p->v, p->len, p->fmt, 0);
		if (res_ok(r)) {
			*res = r;
			return JERR_OK;
		}
	}
	va_start(ap, fmt);
	strbuf_vaddf(&what, fmt, ap);
	va_end(ap);
	ret = pg_error(ps, r, err, "%s", what.buf);
	strbuf_release(&what);
	PQclear(r);
	return ret;
}

/* Run sql (no parameters, maybe several statements); JERR_OK or err filled. */
static enum jerr exec_sql(struct pg_state *ps, const char *sql, struct jerror *err,
			  const char *what)
{
	enum jerr ret = flush_puts(ps, err);
	if (ret)
		return ret;
	PGresult *r = PQexec(ps->pg, sql);
	if (!res_ok(r))
		ret = pg_error(ps, r, err, "could not %s state store \"%s\"", what, ps->base.path);
	PQclear(r);
	return ret;
}

/* A result's affected rows (UPDATE/DELETE/INSERT). */
static uint64_t changes(PGresult *res)
{
	const char *n = PQcmdTuples(res);
	return n && *n ? strtoull(n, NULL, 10) : 0;
}

static int64_t get_int(const PGresult *res, int row, int col)
{
	return PQgetisnull(res, row, col) ? 0 : strtoll(PQgetvalue(res, row, col), NULL, 10);
}

static bool get_bool(const PGresult *res, int row, int col)
{
	return !PQgetisnull(res, row, col) && PQgetvalue(res, row, col)[0] == 't';
}

/* BYTEA in hex output ("\x0a1b...") appended to out as bytes. */
static void get_bytes(const PGresult *res, int row, int col, struct strbuf *out)
{
	const char *v = PQgetvalue(res, row, col);
	size_t n = (size_t)PQgetlength(res, row, col);
	if (n >= 2 && v[0] == '\\' && v[1] == 'x') {
		for (size_t i = 2; i + 1 < n; i += 2)
			strbuf_addch(out, (char)(hex_val(v[i]) * 16 + hex_val(v[i + 1])));
	}
}

/*
 * Row r of res (ROW_COLUMNS) into row. The row borrows res and ps->tmp (text of a
 * text key) and keybuf (digits of an integer key).
 */
static void decode_row(struct pg_state *ps, const PGresult *res, int r, struct state_row *row,
		       char *keybuf)
{
	struct strbuf *tmp = &ps->tmp;
	size_t key_at, hash_at;

	strbuf_reset(tmp);
	memset(row, 0, sizeof(*row));
	row->key.is_int = get_int(res, r, C_KIND) == 0;
	if (row->key.is_int) {
		row->key.i = get_int(res, r, C_INT);
		row->key.text = (struct slice){ keybuf, state_key_digits(row->key.i, keybuf) };
	}
	key_at = tmp->len;
	if (!row->key.is_int)
		get_bytes(res, r, C_TEXT, tmp);
	hash_at = tmp->len;
	get_bytes(res, r, C_HASH, tmp);
	if (!row->key.is_int)
		row->key.text = (struct slice){ tmp->buf + key_at, hash_at - key_at };
	if (tmp->len - hash_at == STATE_HASH_LEN)
		memcpy(row->hash, tmp->buf + hash_at, STATE_HASH_LEN);
	row->payload = (struct slice){ PQgetvalue(res, r, C_PAYLOAD),
				       (size_t)PQgetlength(res, r, C_PAYLOAD) };
	row->in_scope = get_bool(res, r, C_IN_SCOPE);
	row->pending = get_bool(res, r, C_PENDING);
	row->attempts = (int)get_int(res, r, C_ATTEMPTS);
	row->last_error = (struct slice){ PQgetvalue(res, r, C_LAST_ERROR),
					  (size_t)PQgetlength(res, r, C_LAST_ERROR) };
	row->braze_exists = PQgetisnull(res, r, C_EXISTS) ? -1 : get_bool(res, r, C_EXISTS);
	row->checked_at = get_int(res, r, C_CHECKED_AT);
	row->confirmed = !PQgetisnull(res, r, C_CONFIRMED_AT);
	row->confirmed_at = get_int(res, r, C_CONFIRMED_AT);
	row->updated_at = get_int(res, r, C_UPDATED_AT);
}

/* ---- connect, identify, migrate ---- */

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

/* Messages where another try cannot help: wrong credentials, no such database/role. */
static bool permanent_failure(const char *msg)
{
	static const char *const words[] = { "authentication failed", "does not exist",
					     "no pg_hba.conf entry", "password is required",
					     "permission denied", "invalid", "SSL" };
	for (size_t i = 0; msg && i < ARRAY_SIZE(words); i++)
		if (strstr(msg, words[i]))
			return true;
	return false;
}

static const char *or_default(const char *s, const char *dflt)
{
	return s && *s ? s : dflt;
}

/* Connect (retrying a server that is not up yet) and name the store for messages. */
static enum jerr connect_server(struct pg_state *ps, const char *conninfo, struct jerror *err)
{
	/* defaults before the URL (it may override them), client_encoding after (it may not) */
	const char *keys[] = { "connect_timeout", "application_name", "keepalives_idle",
			       "keepalives_interval", "keepalives_count", "dbname", "client_encoding",
			       NULL };
	const char *vals[] = { "10", "joey", "60", "10", "6", conninfo, "UTF8", NULL };
	long delay = PG_RETRY_BASE_MS;
	struct strbuf name = STRBUF_INIT;

	for (int tries = 1;; tries++) {
		const char *msg;
		ps->pg = PQconnectdbParams(keys, vals, 1);
		if (!ps->pg) {
			jerror_set(err, JERR_STATE, "could not connect to the PostgreSQL state store: "
						    "out of memory");
			return JERR_STATE;
		}
		free(ps->host);
		free(ps->port);
		free(ps->database);
		ps->host = xstrdup(or_default(PQhost(ps->pg), "localhost"));
		ps->port = xstrdup(or_default(PQport(ps->pg), "5432"));
		ps->database = xstrdup(or_default(PQdb(ps->pg), "?"));
		strbuf_reset(&name);
		display_name(&name, PQuser(ps->pg), PQhost(ps->pg), PQport(ps->pg), PQdb(ps->pg),
			     ps->schema);
		free(ps->base.path);
		ps->base.path = strbuf_detach(&name, NULL);
		if (PQstatus(ps->pg) == CONNECTION_OK)
			break;
		msg = PQerrorMessage(ps->pg);
		if (tries >= PG_CONNECT_TRIES || permanent_failure(msg)) {
			struct strbuf d = STRBUF_INIT;
			jerror_set(err, JERR_STATE,
				   "could not connect to the PostgreSQL state store at %s:%s, "
				   "database \"%s\"",
				   ps->host, ps->port, ps->database);
			strbuf_addstr(&d, "PostgreSQL: ");
			add_pg_message(&d, msg);
			jerror_detail(err, "%s", d.buf);
			strbuf_release(&d);
			if (permanent_failure(msg))
				jerror_hint(err, "check the user, database and password of the state "
						 "store URL (the password comes from the URL or "
						 "PGPASSWORD)");
			else
				jerror_hint(err, "gave up after %d tries; check that the server is "
						 "running and reachable at that host and port",
					    tries);
			return JERR_STATE;
		}
		log_warn("state store: cannot connect to PostgreSQL at %s:%s (try %d of %d), "
			 "retrying in %ld ms",
			 ps->host, ps->port, tries, PG_CONNECT_TRIES, delay);
		PQfinish(ps->pg);
		ps->pg = NULL;
		sleep_ms(delay);
		delay *= 2;
	}
	strbuf_release(&name);
	return JERR_OK;
}

/* Session settings: our schema, waits bounded like SQLite's busy timeout, hex BYTEA. */
static enum jerr configure(struct pg_state *ps, bool readonly, struct jerror *err)
{
	char timeout[32];
	const char *vals[3];
	PGresult *r;
	enum jerr ret = JERR_OK;
	const char *enc = PQparameterStatus(ps->pg, "server_encoding");

	if (enc && strcmp(enc, "UTF8") != 0 && strcmp(enc, "SQL_ASCII") != 0) {
		jerror_set(err, JERR_STATE, "PostgreSQL database \"%s\" at %s:%s cannot hold a "
					    "joey state store: its encoding is %s",
			   ps->database, ps->host, ps->port, enc);
		jerror_hint(err, "use a database created with ENCODING 'UTF8'");
		return JERR_STATE;
	}
	snprintf(timeout, sizeof(timeout), "%dms", STATE_BUSY_TIMEOUT_MS);
	vals[0] = ps->schema;
	vals[1] = timeout;
	vals[2] = readonly ? "on" : "off";
	r = PQexecParams(ps->pg,
			 "SELECT pg_catalog.set_config('search_path', pg_catalog.quote_ident($1), false),"
			 " pg_catalog.set_config('lock_timeout', $2, false),"
			 " pg_catalog.set_config('default_transaction_read_only', $3, false),"
			 " pg_catalog.set_config('bytea_output', 'hex', false),"
			 " pg_catalog.set_config('client_min_messages', 'warning', false)",
			 3, NULL, vals, NULL, NULL, 0);
	if (!res_ok(r))
		ret = pg_error(ps, r, err, "could not configure the connection to state store \"%s\"",
			       ps->base.path);
	PQclear(r);
	return ret;
}

/*
 * Is the schema a joey state store, and of which version? *fresh: the schema is
 * missing (*missing) or holds nothing.
 */
static enum jerr identify(struct pg_state *ps, int64_t *version, bool *fresh, bool *missing,
			  struct jerror *err)
{
	const char *vals[1] = { ps->schema };
	int64_t n_schema, n_rel, app_id = 0;
	bool has_meta, has_version = false;
	PGresult *r;

	*version = 0;
	*fresh = *missing = false;
	r = PQexecParams(ps->pg,
			 "SELECT (SELECT count(*) FROM pg_catalog.pg_namespace WHERE nspname = $1),"
			 " (SELECT count(*) FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n"
			 "   ON n.oid = c.relnamespace WHERE n.nspname = $1"
			 "   AND c.relkind IN ('r', 'p', 'v', 'm', 'f')),"
			 " pg_catalog.to_regclass(pg_catalog.quote_ident($1) || '.meta') IS NOT NULL",
			 1, NULL, vals, NULL, NULL, 0);
	if (!res_ok(r) || PQntuples(r) != 1) {
		enum jerr ret = pg_error(ps, r, err, "could not open state store \"%s\"", ps->base.path);
		PQclear(r);
		return ret;
	}
	n_schema = get_int(r, 0, 0);
	n_rel = get_int(r, 0, 1);
	has_meta = get_bool(r, 0, 2);
	PQclear(r);
	if (!n_schema || !n_rel) {
		*fresh = true;
		*missing = !n_schema;
		return JERR_OK;
	}
	if (has_meta) {
		r = PQexec(ps->pg, "SELECT key, value FROM meta"
				   " WHERE key IN ('application_id', 'schema_version')");
		if (!res_ok(r)) {
			enum jerr ret = pg_error(ps, r, err,
						 "could not read the schema version of state store \"%s\"",
						 ps->base.path);
			PQclear(r);
			return ret;
		}
		for (int i = 0; i < PQntuples(r); i++) {
			const char *k = PQgetvalue(r, i, 0), *v = PQgetvalue(r, i, 1);
			char *end;
			int64_t x = strtoll(v, &end, 10);
			if (*end || end == v)
				x = -1;
			if (!strcmp(k, "application_id")) {
				app_id = x;
			} else {
				has_version = true;
				*version = x;
			}
		}
		PQclear(r);
	}
	if (app_id != STATE_APPLICATION_ID) {
		jerror_set(err, JERR_STATE, "\"%s\" is not a joey state store", ps->base.path);
		if (has_meta)
			jerror_detail(err, "schema \"%s\" of database \"%s\" has a table meta without "
					   "joey's application_id %d",
				      ps->schema, ps->database, STATE_APPLICATION_ID);
		else
			jerror_detail(err, "schema \"%s\" of database \"%s\" holds %" PRId64
					   " tables but no joey meta table",
				      ps->schema, ps->database, n_rel);
		jerror_hint(err, "pick another schema with ?schema=NAME in the state store URL, or "
				 "drop this one to start afresh");
		return JERR_STATE;
	}
	if (!has_version || *version < 1) {
		jerror_set(err, JERR_STATE, "state store \"%s\" has no valid schema version",
			   ps->base.path);
		jerror_detail(err, "table meta has no positive integer \"schema_version\"");
		jerror_hint(err, "restore it from a backup (joey state import), or drop the schema "
				 "to start afresh (the next run then re-sends every record)");
		return JERR_STATE;
	}
	if (*version > STATE_SCHEMA_VERSION) {
		jerror_set(err, JERR_STATE_VERSION,
			   "state store \"%s\" was written by a newer joey (schema version %" PRId64
			   ", this joey knows up to %d)",
			   ps->base.path, *version, STATE_SCHEMA_VERSION);
		jerror_hint(err, "upgrade joey, or pass --state with another schema");
		return JERR_STATE_VERSION;
	}
	return JERR_OK;
}

static const struct state_pg_step *step_from(int64_t v)
{
	for (size_t i = 0; i < state_pg_n_steps; i++)
		if (state_pg_steps[i].from == v)
			return &state_pg_steps[i];
	return NULL;
}

/*
 * Bring the schema to STATE_SCHEMA_VERSION, one step per transaction. Each holds an
 * advisory lock on the schema's name and reads the version again, so a step another
 * process applied meanwhile is not applied twice.
 */
static enum jerr migrate(struct pg_state *ps, int64_t from, struct jerror *err)
{
	enum jerr ret = JERR_OK;
	int64_t v = from;
	struct strbuf sql = STRBUF_INIT;

	while (v < STATE_SCHEMA_VERSION) {
		const struct state_pg_step *step;
		const char *vals[3];
		char app[16], ver[16];
		bool fresh, missing;
		int64_t cur;
		PGresult *r;
		char *quoted;

		if ((ret = exec_sql(ps, "BEGIN", err, "upgrade")))
			break;
		vals[0] = ps->schema;
		r = PQexecParams(ps->pg, "SELECT pg_catalog.pg_advisory_xact_lock(" PG_LOCK_KEY
					 ", pg_catalog.hashtext($1))", 1, NULL, vals, NULL, NULL, 0);
		if (!res_ok(r)) {
			ret = pg_error(ps, r, err, "could not lock state store \"%s\" to upgrade it",
				       ps->base.path);
			PQclear(r);
			goto fail;
		}
		PQclear(r);
		if ((ret = identify(ps, &cur, &fresh, &missing, err)))
			goto fail;
		if (cur > v) { /* another process did it */
			if ((ret = exec_sql(ps, "COMMIT", err, "upgrade")))
				break;
			v = cur;
			continue;
		}
		step = step_from(cur);
		if (!step) {
			ret = jerror_set(err, JERR_INTERNAL, "state store \"%s\": no PostgreSQL migration "
							     "from schema version %" PRId64,
					 ps->base.path, cur);
			goto fail;
		}
		if (missing) { /* only then: CREATE SCHEMA needs CREATE on the database */
			quoted = PQescapeIdentifier(ps->pg, ps->schema, strlen(ps->schema));
			strbuf_reset(&sql);
			strbuf_addf(&sql, "CREATE SCHEMA %s", quoted ? quoted : "joey");
			PQfreemem(quoted);
			if ((ret = exec_sql(ps, sql.buf, err, "create the schema of")))
				goto fail;
		}
		r = PQexec(ps->pg, step->sql);
		if (!res_ok(r)) {
			ret = pg_error(ps, r, err,
				       "could not upgrade state store \"%s\" to schema version %d",
				       ps->base.path, step->to);
			PQclear(r);
			goto fail;
		}
		PQclear(r);
		snprintf(app, sizeof(app), "%d", STATE_APPLICATION_ID);
		snprintf(ver, sizeof(ver), "%d", step->to);
		vals[0] = app;
		vals[1] = ver;
		r = PQexecParams(ps->pg,
				 "INSERT INTO meta (key, value) VALUES ('application_id', $1),"
				 " ('schema_version', $2)"
				 " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
				 2, NULL, vals, NULL, NULL, 0);
		if (!res_ok(r)) {
			ret = pg_error(ps, r, err,
				       "could not upgrade state store \"%s\" to schema version %d",
				       ps->base.path, step->to);
			PQclear(r);
			goto fail;
		}
		PQclear(r);
		if ((ret = exec_sql(ps, "COMMIT", err, "upgrade")))
			break;
		v = step->to;
		continue;
fail:
		{
			PGresult *rb = PQexec(ps->pg, "ROLLBACK");
			PQclear(rb);
		}
		break;
	}
	strbuf_release(&sql);
	return ret;
}

static void pg_close(struct state *st)
{
	struct pg_state *ps = ps_of(st);
	if (ps->pg) {
		if (PQtransactionStatus(ps->pg) == PQTRANS_INTRANS ||
		    PQtransactionStatus(ps->pg) == PQTRANS_INERROR) {
			PGresult *r = PQexec(ps->pg, "ROLLBACK");
			PQclear(r);
		}
		PQfinish(ps->pg);
	}
	free(ps->schema);
	free(ps->host);
	free(ps->port);
	free(ps->database);
	strbuf_release(&ps->tmp);
	free(ps->pend);
	strbuf_release(&ps->pend_bytes);
	state_base_release(&ps->base);
	free(ps);
}

/*
 * A URL libpq cannot parse is refused before connecting. libpq's message may quote
 * part of the URL, so the password (as written, and decoded) is masked in it.
 */
static enum jerr check_url(struct pg_state *ps, const char *url, const char *conninfo,
			   struct jerror *err)
{
	char *msg = NULL;
	PQconninfoOption *opts = PQconninfoParse(conninfo, &msg);
	struct strbuf d = STRBUF_INIT, pw = STRBUF_INIT, pwdec = STRBUF_INIT;
	const char *start, *at, *colon;

	if (opts) {
		PQconninfoFree(opts);
		return JERR_OK;
	}
	start = strstr(url, "://");
	start = start ? start + 3 : url;
	at = strchr(start, '@');
	colon = at ? memchr(start, ':', (size_t)(at - start)) : NULL;
	if (colon) {
		strbuf_add(&pw, colon + 1, (size_t)(at - colon - 1));
		url_decode(pw.buf, pw.len, &pwdec);
	}
	strbuf_addstr(&d, "libpq: ");
	for (const char *p = msg ? msg : "invalid connection string"; *p;) {
		if (pw.len && !strncmp(p, pw.buf, pw.len)) {
			strbuf_addstr(&d, "****");
			p += pw.len;
		} else if (pwdec.len && !strncmp(p, pwdec.buf, pwdec.len)) {
			strbuf_addstr(&d, "****");
			p += pwdec.len;
		} else {
			strbuf_addch(&d, *p == '\n' ? ' ' : *p);
			p++;
		}
	}
	while (d.len && d.buf[d.len - 1] == ' ')
		strbuf_setlen(&d, d.len - 1);
	jerror_set(err, JERR_STATE, "state store URL \"%s\" is not valid", ps->base.path);
	jerror_detail(err, "%s", d.buf);
	jerror_hint(err, "write it as postgresql://USER@HOST:PORT/DATABASE?schema=NAME (the "
			 "password in PGPASSWORD)");
	PQfreemem(msg);
	strbuf_release(&d);
	strbuf_release(&pw);
	strbuf_release(&pwdec);
	return JERR_STATE;
}

static enum jerr pg_open(const char *path, enum state_open_mode mode, struct state **out,
			 struct jerror *err)
{
	struct pg_state *ps = xcalloc(1, sizeof(*ps));
	struct strbuf conninfo = STRBUF_INIT, schema = STRBUF_INIT, name = STRBUF_INIT;
	bool create = mode == STATE_OPEN_CREATE, fresh = false, missing = false;
	int64_t version = 0;
	enum jerr ret;

	*out = NULL;
	pg_display(path, &name);
	state_base_init(&ps->base, &state_pg, name.buf);
	strbuf_release(&name);
	strbuf_init(&ps->tmp, 0);
	strbuf_init(&ps->pend_bytes, 0);
	if (!split_url(path, &conninfo, &schema)) {
		ret = jerror_set(err, JERR_STATE, "state store \"%s\": schema \"%s\" is not a valid "
						  "name",
				 ps->base.path, schema.buf);
		jerror_hint(err, "use ?schema=NAME with letters, digits and underscores (at most "
				 "63 characters)");
		goto done;
	}
	ps->schema = strbuf_detach(&schema, NULL);
	if ((ret = check_url(ps, path, conninfo.buf, err)))
		goto done;
	if ((ret = connect_server(ps, conninfo.buf, err)) || (ret = configure(ps, !create, err)) ||
	    (ret = identify(ps, &version, &fresh, &missing, err)))
		goto done;
	if (!create) {
		ps->base.readonly = true;
		if (fresh) {
			if (mode == STATE_OPEN_READONLY_OR_EMPTY) {
				struct state *empty = NULL;
				ret = state_sqlite.open_empty(ps->base.path, &empty, err);
				if (!ret) {
					pg_close(&ps->base);
					ps = NULL;
					*out = empty;
				}
				goto done;
			}
			ret = jerror_set(err, JERR_STATE, missing ? "state store \"%s\" does not exist"
								  : "state store \"%s\" is empty",
					 ps->base.path);
			jerror_hint(err, "run 'joey run' (or 'joey state migrate') once, or pass --state");
			goto done;
		}
		/* an older schema is read as it is (state_mark_get copes with no marks) */
		ps->base.version = (int)version;
		goto done;
	}
	if ((ret = migrate(ps, version, err)))
		goto done;
	ps->base.version = STATE_SCHEMA_VERSION;
done:
	strbuf_release(&conninfo);
	strbuf_release(&schema);
	if (ret) {
		if (ps)
			pg_close(&ps->base);
		*out = NULL;
		return ret;
	}
	if (ps)
		*out = &ps->base;
	return JERR_OK;
}

static enum jerr pg_open_empty(const char *name, struct state **out, struct jerror *err)
{
	return state_sqlite.open_empty(name, out, err);
}

static enum jerr pg_limit_size(struct state *st, uint64_t max_bytes, struct jerror *err)
{
	(void)max_bytes;
	jerror_set(err, JERR_STATE, "limiting the size of state store \"%s\" is not supported on "
				    "PostgreSQL",
		   st->path);
	jerror_hint(err, "limit the space of the database on the server, or use an SQLite state "
			 "store");
	return JERR_STATE;
}

/* ---- reading ---- */

static enum jerr pg_cursor_fill(struct state_cursor *cur, bool *end, struct jerror *err)
{
	struct pg_state *ps = ps_of(cur->st);
	struct params p = { 0 };
	char keybuf[STATE_KEYBUF_SIZE];
	PGresult *res;
	enum jerr ret;

	/* a seek and a range's first batch start at a key (inclusive), a walk after the last */
	const struct rkey *at = cur->has_seek ? &cur->seek : cur->have_last ? NULL : cur->has_from ? &cur->from : NULL;

	p_text(&p, cur->dest_id);
	p_int(&p, (int64_t)cur->want);
	p_int(&p, STATE_BATCH_BYTES);
	if (at)
		p_key(&p, at);
	else if (cur->have_last)
		p_key(&p, &cur->last);
	ret = run(ps, at ? S_CUR_FROM : cur->have_last ? S_CUR_NEXT : S_CUR_FIRST, &p, &res, err,
		  "could not read records of destination \"%s\" from state store \"%s\"",
		  cur->dest_id, cur->st->path);
	if (ret)
		return ret;
	for (int i = 0; i < PQntuples(res) && cur->n < cur->want; i++) {
		struct state_row r;
		decode_row(ps, res, i, &r, keybuf);
		state_cursor_push(cur, &r);
	}
	/* the query stops at either bound; below both, it ran out of rows */
	*end = cur->n < cur->want && !state_cursor_full(cur);
	PQclear(res);
	return JERR_OK;
}

static enum jerr pg_cursor_lookup(struct state_cursor *cur, const struct rkey *keys, size_t n,
				  struct jerror *err)
{
	struct pg_state *ps = ps_of(cur->st);
	struct params p = { 0 };
	struct strbuf kinds = STRBUF_INIT, ints = STRBUF_INIT, texts = STRBUF_INIT;
	char keybuf[STATE_KEYBUF_SIZE];
	PGresult *res;
	enum jerr ret;

	/* array literals: {0,1}, {7,0}, {"\\x","\\x6162"} (bytea as hex text) */
	for (size_t i = 0; i < n; i++) {
		const struct rkey *k = &keys[i];
		strbuf_addstr(&kinds, i ? "," : "{");
		strbuf_addstr(&kinds, k->is_int ? "0" : "1");
		strbuf_addstr(&ints, i ? "," : "{");
		strbuf_addf(&ints, "%" PRId64, k->is_int ? k->i : 0);
		strbuf_addstr(&texts, i ? ",\"\\\\x" : "{\"\\\\x");
		for (size_t j = 0; !k->is_int && j < k->text.len; j++)
			strbuf_addf(&texts, "%02x", (unsigned char)k->text.ptr[j]);
		strbuf_addch(&texts, '"');
	}
	strbuf_addch(&kinds, '}');
	strbuf_addch(&ints, '}');
	strbuf_addch(&texts, '}');
	p_text(&p, cur->dest_id);
	p_text(&p, kinds.buf);
	p_text(&p, ints.buf);
	p_text(&p, texts.buf);
	ret = run(ps, S_CUR_LOOKUP, &p, &res, err,
		  "could not read records of destination \"%s\" from state store \"%s\"",
		  cur->dest_id, cur->st->path);
	strbuf_release(&kinds);
	strbuf_release(&ints);
	strbuf_release(&texts);
	if (ret)
		return ret;
	for (int i = 0; i < PQntuples(res) && cur->n < STATE_BATCH_ROWS && !state_cursor_full(cur); i++) {
		struct state_row r;
		decode_row(ps, res, i, &r, keybuf);
		state_cursor_push(cur, &r);
	}
	PQclear(res);
	return JERR_OK;
}

static enum jerr pg_count(struct state *st, const char *dest_id, uint64_t *in_scope,
			  struct jerror *err)
{
	struct pg_state *ps = ps_of(st);
	struct params p = { 0 };
	PGresult *res;
	enum jerr ret;

	p_text(&p, dest_id);
	ret = run(ps, S_COUNT, &p, &res, err,
		  "could not count records of destination \"%s\" in state store \"%s\"", dest_id,
		  st->path);
	if (ret)
		return ret;
	*in_scope = PQntuples(res) == 1 ? (uint64_t)get_int(res, 0, 0) : 0;
	PQclear(res);
	return JERR_OK;
}

/* A bound of a key range: key_kind, key_int, key_text, or three NULLs when open. */
static void p_bound(struct params *p, const struct rkey *k)
{
	if (k) {
		p_key(p, k);
		return;
	}
	p_text(p, NULL);
	p_text(p, NULL);
	p_text(p, NULL);
}

static enum jerr pg_count_range(struct state *st, const char *dest_id, const struct rkey *lo,
				const struct rkey *hi, uint64_t *in_scope, struct jerror *err)
{
	struct pg_state *ps = ps_of(st);
	struct params p = { 0 };
	PGresult *res;
	enum jerr ret;

	p_text(&p, dest_id);
	p_bound(&p, lo);
	p_bound(&p, hi);
	ret = run(ps, S_COUNT_RANGE, &p, &res, err,
		  "could not count records of destination \"%s\" in state store \"%s\"", dest_id,
		  st->path);
	if (ret)
		return ret;
	*in_scope = PQntuples(res) == 1 ? (uint64_t)get_int(res, 0, 0) : 0;
	PQclear(res);
	return JERR_OK;
}

static enum jerr pg_get(struct state *st, const char *dest_id, const struct rkey *key,
			bool *found, struct jerror *err)
{
	struct pg_state *ps = ps_of(st);
	struct params p = { 0 };
	struct strbuf k = STRBUF_INIT;
	PGresult *res;
	enum jerr ret;

	p_text(&p, dest_id);
	p_key(&p, key);
	ret = run(ps, S_GET, &p, &res, err,
		  "could not read record \"%s\" of destination \"%s\" from state store \"%s\"",
		  state_key_str(key, &k), dest_id, st->path);
	strbuf_release(&k);
	if (ret)
		return ret;
	if (PQntuples(res) > 0) {
		char keybuf[STATE_KEYBUF_SIZE];
		struct state_row r;
		decode_row(ps, res, 0, &r, keybuf);
		state_keep_row(st, &r); /* res is cleared below */
		*found = true;
	}
	PQclear(res);
	return JERR_OK;
}

/* ---- transactions ---- */

static bool pg_in_transaction(struct state *st)
{
	struct pg_state *ps = ps_of(st);
	PGTransactionStatusType t = ps->pg ? PQtransactionStatus(ps->pg) : PQTRANS_UNKNOWN;
	return t == PQTRANS_INTRANS || t == PQTRANS_INERROR;
}

static enum jerr pg_begin(struct state *st, struct jerror *err)
{
	struct pg_state *ps = ps_of(st);
	PGresult *r = PQexec(ps->pg, "BEGIN");
	enum jerr ret = JERR_OK;
	if (!res_ok(r))
		ret = pg_error(ps, r, err, "could not start a transaction in state store \"%s\"",
			       st->path);
	PQclear(r);
	return ret;
}

static void pg_rollback(struct state *st)
{
	struct pg_state *ps = ps_of(st);
	PGresult *r;
	ps->n_pend = 0; /* never sent */
	strbuf_reset(&ps->pend_bytes);
	if (!pg_in_transaction(st))
		return;
	r = PQexec(ps->pg, "ROLLBACK");
	if (!res_ok(r)) {
		struct jerror e = JERROR_INIT;
		pg_error(ps, r, &e, "could not roll back a transaction in state store \"%s\"",
			 st->path);
		log_error("%s (%s)", e.msg.buf, e.detail.buf);
		jerror_release(&e);
	}
	PQclear(r);
}

static enum jerr pg_commit(struct state *st, struct jerror *err)
{
	struct pg_state *ps = ps_of(st);
	PGresult *r;
	enum jerr ret = JERR_OK;

	if (PQtransactionStatus(ps->pg) == PQTRANS_INERROR) {
		pg_rollback(st);
		return jerror_set(err, JERR_STATE,
				  "state store \"%s\": no transaction to commit (it was rolled back "
				  "after an earlier error)", st->path);
	}
	if ((ret = flush_puts(ps, err))) {
		pg_rollback(st);
		return ret;
	}
	r = PQexec(ps->pg, "COMMIT");
	if (!res_ok(r))
		ret = pg_error(ps, r, err, "could not commit a transaction in state store \"%s\"",
			       st->path);
	else if (!strcmp(PQcmdStatus(r), "ROLLBACK"))
		ret = jerror_set(err, JERR_STATE, "could not commit a transaction in state store "
						  "\"%s\": the server rolled it back", st->path);
	PQclear(r);
	if (ret)
		pg_rollback(st);
	return ret;
}

/* ---- writes ---- */

/* Run a record write; err names what, the key and the destination. */
static enum jerr write_record(struct pg_state *ps, enum stmt_id id, const struct params *p,
			      const char *what, const char *dest_id, const struct rkey *key,
			      struct jerror *err)
{
	struct strbuf k = STRBUF_INIT;
	PGresult *res;
	enum jerr ret = run(ps, id, p, &res, err,
			    "could not %s record \"%s\" of destination \"%s\" in state store \"%s\"",
			    what, state_key_str(key, &k), dest_id, ps->base.path);
	strbuf_release(&k);
	PQclear(res);
	return ret;
}

/* Send the puts kept by pg_put as one statement. */
static enum jerr flush_puts(struct pg_state *ps, struct jerror *err)
{
	static const Oid types[8] = { 25, 21, 20, 17, 25, 17, 16, 20 }; /* text int2 int8 bytea text bytea bool int8 */
	size_t n = ps->n_pend;
	enum jerr ret = JERR_OK;
	if (!n)
		return JERR_OK;
	ps->n_pend = 0; /* sent once, whatever happens */
	struct strbuf sql = STRBUF_INIT;
	const char **v = xcalloc(n * 8, sizeof(*v));
	int *len = xcalloc(n * 8, sizeof(*len)), *fmt = xcalloc(n * 8, sizeof(*fmt));
	Oid *ty = xcalloc(n * 8, sizeof(*ty));
	char (*num)[STATE_KEYBUF_SIZE] = xcalloc(n * 3, sizeof(*num));
	const char *b = ps->pend_bytes.buf;

	/* a full batch (the usual case) runs a statement prepared once per connection */
	bool full = n == PUT_BATCH_MAX;
	if (!full || !ps->put_batch_prepared) {
		strbuf_addstr(&sql, "INSERT INTO records (dest_id, key_kind, key_int, key_text, payload, hash,"
				    " in_scope, pending, attempts, last_error, confirmed_at, updated_at) VALUES ");
		for (size_t i = 0; i < n; i++) {
			size_t k = i * 8;
			strbuf_addf(&sql, "%s($%zu, $%zu, $%zu, $%zu, $%zu, $%zu, $%zu, false, 0, NULL, $%zu, $%zu)",
				    i ? ", " : "", k + 1, k + 2, k + 3, k + 4, k + 5, k + 6, k + 7, k + 8, k + 8);
		}
		strbuf_addstr(&sql, " ON CONFLICT (dest_id, key_kind, key_int, key_text) DO UPDATE SET"
				    " payload = excluded.payload, hash = excluded.hash, in_scope = excluded.in_scope,"
				    " pending = false, attempts = 0, last_error = NULL,"
				    " confirmed_at = excluded.confirmed_at, updated_at = excluded.updated_at");
	}
	for (size_t i = 0; i < n; i++) {
		const struct pending_put *x = &ps->pend[i];
		size_t k = i * 8;
		snprintf(num[i * 3], sizeof(num[0]), "%d", x->is_int ? 0 : 1);
		snprintf(num[i * 3 + 1], sizeof(num[0]), "%" PRId64, x->is_int ? x->key_int : 0);
		snprintf(num[i * 3 + 2], sizeof(num[0]), "%" PRId64, x->now);
		const char *vals[8] = { b + x->dest, num[i * 3], num[i * 3 + 1], b + x->key, b + x->payload,
					b + x->hash, x->in_scope ? "t" : "f", num[i * 3 + 2] };
		const int lens[8] = { (int)x->dest_len, 0, 0, (int)x->key_len, (int)x->payload_len, STATE_HASH_LEN, 0, 0 };
		const int fmts[8] = { 1, 0, 0, 1, 1, 1, 0, 0 };
		for (int c = 0; c < 8; c++) {
			v[k + c] = vals[c];
			len[k + c] = lens[c];
			fmt[k + c] = fmts[c];
			ty[k + c] = types[c];
		}
	}
	PGresult *r = NULL;
	if (full && !ps->put_batch_prepared) {
		r = PQprepare(ps->pg, "joey_put_batch", sql.buf, (int)(n * 8), ty);
		ps->put_batch_prepared = res_ok(r);
		PQclear(r);
		r = NULL;
	}
	if (full && ps->put_batch_prepared)
		r = PQexecPrepared(ps->pg, "joey_put_batch", (int)(n * 8), v, len, fmt, 0);
	else
		r = PQexecParams(ps->pg, sql.buf, (int)(n * 8), ty, v, len, fmt, 0);
	if (!res_ok(r))
		ret = pg_error(ps, r, err, "could not store %zu records in state store \"%s\"", n, ps->base.path);
	PQclear(r);
	strbuf_reset(&ps->pend_bytes);
	strbuf_release(&sql);
	free(v);
	free(len);
	free(fmt);
	free(ty);
	free(num);
	return ret;
}

static size_t pend_add(struct pg_state *ps, const void *p, size_t n)
{
	size_t at = ps->pend_bytes.len;
	strbuf_add(&ps->pend_bytes, p, n);
	strbuf_addch(&ps->pend_bytes, 0); /* a text parameter may be read as a C string */
	return at;
}

static enum jerr pg_put(struct state *st, const char *dest_id, const struct rkey *key,
			struct slice payload, const unsigned char hash[STATE_HASH_LEN],
			bool in_scope, int64_t now, struct jerror *err)
{
	struct pg_state *ps = ps_of(st);
	if (PQtransactionStatus(ps->pg) == PQTRANS_INTRANS) {
		/* keep it for one statement with the rest of the batch (flush_puts) */
		const char *b = ps->pend_bytes.buf;
		size_t dl = strlen(dest_id);
		enum jerr ret = JERR_OK;
		for (size_t i = 0; i < ps->n_pend && !ret; i++) {
			const struct pending_put *x = &ps->pend[i];
			if (x->is_int == key->is_int && x->dest_len == dl && !memcmp(b + x->dest, dest_id, dl) &&
			    (key->is_int ? x->key_int == key->i
					 : x->key_len == key->text.len && !memcmp(b + x->key, key->text.ptr, x->key_len)))
				ret = flush_puts(ps, err); /* the same key again: the first goes first */
		}
		if (!ret && ps->n_pend >= PUT_BATCH_MAX)
			ret = flush_puts(ps, err);
		if (ret)
			return ret;
		ALLOC_GROW(ps->pend, ps->n_pend + 1, ps->alloc_pend);
		struct pending_put *x = &ps->pend[ps->n_pend++];
		x->dest = pend_add(ps, dest_id, dl);
		x->dest_len = dl;
		x->is_int = key->is_int;
		x->key_int = key->i;
		x->key = pend_add(ps, key->is_int ? "" : key->text.ptr, key->is_int ? 0 : key->text.len);
		x->key_len = key->is_int ? 0 : key->text.len;
		x->payload = pend_add(ps, payload.ptr, payload.len);
		x->payload_len = payload.len;
		x->hash = pend_add(ps, hash, STATE_HASH_LEN);
		x->in_scope = in_scope;
		x->now = now;
		return JERR_OK;
	}
	struct params p = { 0 };
	p_text(&p, dest_id);
	p_key(&p, key);
	p_bytes(&p, payload.ptr, payload.len);
	p_bytes(&p, hash, STATE_HASH_LEN);
	p_bool(&p, in_scope);
	p_int(&p, now);
	return write_record(ps, S_PUT, &p, "store", dest_id, key, err);
}

static enum jerr pg_del(struct state *st, const char *dest_id, const struct rkey *key,
			struct jerror *err)
{
	struct params p = { 0 };
	p_text(&p, dest_id);
	p_key(&p, key);
	return write_record(ps_of(st), S_DELETE, &p, "delete", dest_id, key, err);
}

static enum jerr pg_mark_failed(struct state *st, const char *dest_id, const struct rkey *key,
				const char *error, int64_t now, struct jerror *err)
{
	struct params p = { 0 };
	struct strbuf clean = STRBUF_INIT;
	enum jerr ret;
	p_text(&p, dest_id);
	p_key(&p, key);
	p_text(&p, clean_text(error, &clean));
	p_int(&p, now);
	ret = write_record(ps_of(st), S_FAIL, &p, "mark as failed", dest_id, key, err);
	strbuf_release(&clean);
	return ret;
}

static enum jerr pg_set_exists(struct state *st, const char *dest_id, const struct rkey *key,
			       bool exists, int64_t checked_at, int64_t now, struct jerror *err)
{
	struct params p = { 0 };
	p_text(&p, dest_id);
	p_key(&p, key);
	p_bool(&p, exists);
	p_int(&p, checked_at);
	p_int(&p, now);
	return write_record(ps_of(st), S_EXISTS, &p, "record whether Braze has", dest_id, key, err);
}

/* ---- runs and ledger ---- */

static enum jerr pg_run_start(struct state *st, const char *dest_id, const char *kind,
			      int64_t now, int64_t *run_id, struct jerror *err)
{
	struct params p = { 0 };
	PGresult *res;
	enum jerr ret;
	p_text(&p, dest_id);
	p_text(&p, kind);
	p_int(&p, now);
	ret = run(ps_of(st), S_RUN_START, &p, &res, err,
		  "could not record the start of a %s of destination \"%s\" in state store \"%s\"",
		  kind, dest_id, st->path);
	if (ret)
		return ret;
	*run_id = PQntuples(res) == 1 ? get_int(res, 0, 0) : 0;
	PQclear(res);
	return JERR_OK;
}

static enum jerr pg_run_finish(struct state *st, int64_t run_id, enum run_status status,
			       const struct run_counts *c, const char *error, int64_t now,
			       bool *found, struct jerror *err)
{
	const uint64_t counts[] = { c->created, c->updated, c->deleted, c->unsubscribed,
				    c->unchanged, c->failed, c->skipped, c->requests,
				    c->retries, c->throttled, c->data_points };
	struct strbuf clean = STRBUF_INIT;
	struct params p = { 0 };
	PGresult *res;
	enum jerr ret;

	p_int(&p, run_id);
	p_text(&p, run_status_name(status));
	p_int(&p, now);
	for (size_t i = 0; i < ARRAY_SIZE(counts); i++)
		p_int(&p, counts[i] > INT64_MAX ? INT64_MAX : (int64_t)counts[i]);
	p_text(&p, error ? clean_text(error, &clean) : NULL);
	ret = run(ps_of(st), S_RUN_FINISH, &p, &res, err,
		  "could not record the end of run %" PRId64 " in state store \"%s\"", run_id,
		  st->path);
	strbuf_release(&clean);
	if (ret)
		return ret;
	*found = changes(res) > 0;
	PQclear(res);
	return JERR_OK;
}

static enum jerr pg_runs_abandon(struct state *st, const char *dest_id, int64_t now, uint64_t *n,
				 struct jerror *err)
{
	struct params p = { 0 };
	PGresult *res;
	enum jerr ret;
	p_text(&p, dest_id);
	p_int(&p, now);
	ret = run(ps_of(st), S_RUNS_ABANDON, &p, &res, err,
		  "could not update the run history of state store \"%s\"", st->path);
	if (ret)
		return ret;
	*n = changes(res);
	PQclear(res);
	return JERR_OK;
}

static enum jerr pg_run_progress(struct state *st, int64_t run_id, const struct run_counts *c,
				 struct jerror *err)
{
	const uint64_t counts[] = { c->created, c->updated, c->deleted, c->unsubscribed,
				    c->unchanged, c->failed, c->skipped, c->requests,
				    c->retries, c->throttled, c->data_points };
	struct params p = { 0 };
	PGresult *res;
	enum jerr ret;
	p_int(&p, run_id);
	for (size_t i = 0; i < ARRAY_SIZE(counts); i++)
		p_int(&p, counts[i] > INT64_MAX ? INT64_MAX : (int64_t)counts[i]);
	ret = run(ps_of(st), S_RUN_PROGRESS, &p, &res, err,
		  "could not record the progress of run %" PRId64 " in state store \"%s\"", run_id, st->path);
	PQclear(res);
	return ret;
}

static enum jerr pg_runs_running(struct state *st, struct strbuf *ids, size_t *n, struct jerror *err)
{
	struct params p = { 0 };
	PGresult *res;
	enum jerr ret = run(ps_of(st), S_RUNS_RUNNING, &p, &res, err,
			    "could not read the run history of state store \"%s\"", st->path);
	*n = 0;
	if (ret)
		return ret;
	for (int i = 0; i < PQntuples(res); i++) {
		const char *id = PQgetvalue(res, i, 0);
		strbuf_add(ids, id, strlen(id) + 1);
		(*n)++;
	}
	PQclear(res);
	return JERR_OK;
}

static enum jerr pg_ledger_add(struct state *st, int64_t run_id, const char *dest_id,
			       const struct rkey *key, const char *error, int attempts, int64_t now,
			       struct jerror *err)
{
	struct strbuf clean = STRBUF_INIT;
	struct params p = { 0 };
	enum jerr ret;
	if (run_id > 0)
		p_int(&p, run_id);
	else
		p_text(&p, NULL);
	p_text(&p, dest_id);
	p_key(&p, key);
	p_text(&p, clean_text(error, &clean));
	p_int(&p, attempts);
	p_int(&p, now);
	ret = write_record(ps_of(st), S_LEDGER_ADD, &p, "add to the error ledger the", dest_id, key,
			   err);
	strbuf_release(&clean);
	return ret;
}

/*
 * The listings read newest first in batches of PG_LIST_BATCH (id below the last one
 * read), so memory is bounded and the callback may use the connection between rows.
 */
static enum jerr pg_runs_list(struct state *st, const char *dest_id, size_t limit,
			      state_run_fn fn, void *ctx, struct jerror *err)
{
	enum jerr fr = flush_puts(ps_of(st), err);
	if (fr)
		return fr;
	struct pg_state *ps = ps_of(st);
	struct strbuf sql = STRBUF_INIT;
	int64_t last = INT64_MAX;
	size_t seen = 0;
	enum jerr ret = JERR_OK;

	strbuf_addstr(&sql, "SELECT id, dest_id, kind, status, started_at, finished_at, created,"
			    " updated, deleted, unsubscribed, unchanged, failed, skipped, requests,"
			    " retries, throttled, data_points, error FROM runs WHERE id < $1");
	if (dest_id)
		strbuf_addstr(&sql, " AND dest_id = $3");
	strbuf_addstr(&sql, " ORDER BY id DESC LIMIT $2");
	for (;;) {
		struct params p = { 0 };
		size_t want = PG_LIST_BATCH;
		PGresult *res;
		int n;
		if (limit && limit - seen < want)
			want = limit - seen;
		if (!want)
			break;
		p_int(&p, last);
		p_int(&p, (int64_t)want);
		if (dest_id)
			p_text(&p, dest_id);
		res = PQexecParams(ps->pg, sql.buf, p.n, NULL, p.v, p.len, p.fmt, 0);
		if (!res_ok(res)) {
			ret = pg_error(ps, res, err, "could not list runs in state store \"%s\"",
				       st->path);
			PQclear(res);
			break;
		}
		n = PQntuples(res);
		for (int i = 0; i < n && !ret; i++) {
			struct state_run_info r = { 0 };
			uint64_t *counts[] = { &r.counts.created, &r.counts.updated, &r.counts.deleted,
					       &r.counts.unsubscribed, &r.counts.unchanged,
					       &r.counts.failed, &r.counts.skipped, &r.counts.requests,
					       &r.counts.retries, &r.counts.throttled,
					       &r.counts.data_points };
			r.id = last = get_int(res, i, 0);
			r.dest_id = PQgetvalue(res, i, 1);
			r.kind = PQgetvalue(res, i, 2);
			r.status = state_run_status_parse(PQgetvalue(res, i, 3));
			r.started_at = get_int(res, i, 4);
			r.finished_at = get_int(res, i, 5);
			for (size_t c = 0; c < ARRAY_SIZE(counts); c++) {
				int64_t v = get_int(res, i, 6 + (int)c);
				*counts[c] = v > 0 ? (uint64_t)v : 0;
			}
			r.error = PQgetisnull(res, i, 17) ? NULL : PQgetvalue(res, i, 17);
			ret = fn(ctx, &r, err);
			seen++;
		}
		PQclear(res);
		if (ret || n < (int)want)
			break;
	}
	strbuf_release(&sql);
	return ret;
}

static enum jerr pg_ledger_list(struct state *st, const char *dest_id, int64_t run_id,
				const struct rkey *key, size_t limit, state_ledger_fn fn, void *ctx,
				struct jerror *err)
{
	enum jerr fr = flush_puts(ps_of(st), err);
	if (fr)
		return fr;
	struct pg_state *ps = ps_of(st);
	struct strbuf sql = STRBUF_INIT, keytext = STRBUF_INIT;
	int64_t last = INT64_MAX;
	size_t seen = 0;
	int argn = 3;
	enum jerr ret = JERR_OK;

	strbuf_addstr(&sql, "SELECT id, run_id, dest_id, key_kind, key_int, key_text, error,"
			    " attempts, at FROM ledger WHERE id < $1");
	if (dest_id)
		strbuf_addf(&sql, " AND dest_id = $%d", argn++);
	if (key) {
		strbuf_addf(&sql, " AND key_kind = $%d AND key_int = $%d AND key_text = $%d", argn,
			    argn + 1, argn + 2);
		argn += 3;
	}
	if (run_id > 0)
		strbuf_addf(&sql, " AND run_id = $%d", argn++);
	strbuf_addstr(&sql, " ORDER BY id DESC LIMIT $2");
	for (;;) {
		struct params p = { 0 };
		size_t want = PG_LIST_BATCH;
		PGresult *res;
		int n;
		if (limit && limit - seen < want)
			want = limit - seen;
		if (!want)
			break;
		p_int(&p, last);
		p_int(&p, (int64_t)want);
		if (dest_id)
			p_text(&p, dest_id);
		if (key)
			p_key(&p, key);
		if (run_id > 0)
			p_int(&p, run_id);
		res = PQexecParams(ps->pg, sql.buf, p.n, NULL, p.v, p.len, p.fmt, 0);
		if (!res_ok(res)) {
			ret = pg_error(ps, res, err,
				       "could not list the error ledger in state store \"%s\"", st->path);
			PQclear(res);
			break;
		}
		n = PQntuples(res);
		for (int i = 0; i < n && !ret; i++) {
			struct state_ledger_entry e = { 0 };
			char keybuf[STATE_KEYBUF_SIZE];
			e.id = last = get_int(res, i, 0);
			e.run_id = get_int(res, i, 1);
			e.dest_id = PQgetvalue(res, i, 2);
			e.key.is_int = get_int(res, i, 3) == 0;
			strbuf_reset(&keytext);
			if (e.key.is_int) {
				int kn;
				e.key.i = get_int(res, i, 4);
				kn = snprintf(keybuf, sizeof(keybuf), "%" PRId64, e.key.i);
				e.key.text = (struct slice){ keybuf, (size_t)kn };
			} else {
				get_bytes(res, i, 5, &keytext);
				e.key.text = (struct slice){ keytext.buf, keytext.len };
			}
			e.error = PQgetvalue(res, i, 6);
			e.attempts = (int)get_int(res, i, 7);
			e.at = get_int(res, i, 8);
			ret = fn(ctx, &e, err);
			seen++;
		}
		PQclear(res);
		if (ret || n < (int)want)
			break;
	}
	strbuf_release(&sql);
	strbuf_release(&keytext);
	return ret;
}

/* ---- locks ---- */

static enum jerr pg_lock_get(struct state *st, const char *dest_id, struct state_lock_row *li,
			     struct jerror *err)
{
	struct params p = { 0 };
	PGresult *res;
	enum jerr ret;
	p_text(&p, dest_id);
	ret = run(ps_of(st), S_LOCK_GET, &p, &res, err,
		  "could not read the lock of destination \"%s\" in state store \"%s\"", dest_id,
		  st->path);
	if (ret)
		return ret;
	li->found = PQntuples(res) > 0;
	if (li->found) {
		strbuf_reset(&li->holder);
		strbuf_reset(&li->host);
		strbuf_addstr(&li->holder, PQgetvalue(res, 0, 0));
		strbuf_addstr(&li->host, PQgetvalue(res, 0, 1));
		li->pid = get_int(res, 0, 2);
		li->token = get_int(res, 0, 3);
		li->acquired_at = get_int(res, 0, 4);
		li->heartbeat_at = get_int(res, 0, 5);
	}
	PQclear(res);
	return JERR_OK;
}

static enum jerr pg_lock_put(struct state *st, const char *dest_id, const char *holder,
			     int64_t now, const struct state_lock_row *prev, bool *taken,
			     struct jerror *err)
{
	struct params p = { 0 };
	PGresult *res;
	enum jerr ret;

	*taken = false;
	p_text(&p, dest_id);
	p_text(&p, holder);
	p_text(&p, st->host);
	p_int(&p, (int64_t)getpid());
	p_int(&p, st->token);
	p_int(&p, now);
	if (prev->found)
		p_int(&p, prev->token);
	ret = run(ps_of(st), prev->found ? S_LOCK_TAKE : S_LOCK_INSERT, &p, &res, err,
		  "could not lock destination \"%s\" in state store \"%s\"", dest_id, st->path);
	if (ret)
		return ret;
	*taken = changes(res) == 1;
	PQclear(res);
	return JERR_OK;
}

static enum jerr pg_lock_beat(struct state *st, const char *dest_id, int64_t now, bool *held,
			      struct jerror *err)
{
	struct params p = { 0 };
	PGresult *res;
	enum jerr ret;
	p_text(&p, dest_id);
	p_int(&p, st->token);
	p_int(&p, now);
	ret = run(ps_of(st), S_LOCK_BEAT, &p, &res, err,
		  "could not refresh the lock of destination \"%s\" in state store \"%s\"", dest_id,
		  st->path);
	if (ret)
		return ret;
	*held = changes(res) > 0;
	PQclear(res);
	return JERR_OK;
}

static enum jerr pg_lock_del(struct state *st, const char *dest_id, struct jerror *err)
{
	struct params p = { 0 };
	PGresult *res;
	enum jerr ret;
	p_text(&p, dest_id);
	p_int(&p, st->token);
	ret = run(ps_of(st), S_LOCK_DEL, &p, &res, err,
		  "could not release the lock of destination \"%s\" in state store \"%s\"",
		  dest_id, st->path);
	PQclear(res);
	return ret;
}

/* ---- the sync log's outbox and per-run status ---- */

static enum jerr pg_outbox_put(struct state *st, const char *dest_id, int64_t run_id, struct slice body, int64_t now,
			       int64_t *id, struct jerror *err)
{
	struct params p = { 0 };
	PGresult *res;
	enum jerr ret;
	p_text(&p, dest_id);
	p_int(&p, run_id);
	p_bytes(&p, body.ptr, body.len);
	p_int(&p, now);
	ret = run(ps_of(st), S_OUTBOX_PUT, &p, &res, err,
		  "could not add sync log rows of destination \"%s\" to the outbox in state store \"%s\"", dest_id,
		  st->path);
	if (ret)
		return ret;
	*id = PQntuples(res) ? strtoll(PQgetvalue(res, 0, 0), NULL, 10) : 0;
	PQclear(res);
	return JERR_OK;
}

static enum jerr pg_outbox_next(struct state *st, const char *dest_id, int64_t after, int64_t *id, int64_t *run_id,
				struct strbuf *body, bool *found, struct jerror *err)
{
	struct params p = { 0 };
	PGresult *res;
	enum jerr ret;
	p_text(&p, dest_id);
	p_int(&p, after);
	ret = run(ps_of(st), S_OUTBOX_NEXT, &p, &res, err,
		  "could not read the sync log outbox of destination \"%s\" in state store \"%s\"", dest_id,
		  st->path);
	if (ret)
		return ret;
	if (PQntuples(res) > 0) {
		size_t n = 0;
		unsigned char *b = PQunescapeBytea((const unsigned char *)PQgetvalue(res, 0, 2), &n);
		if (!b) {
			PQclear(res);
			return jerror_set(err, JERR_STATE, "could not decode the sync log outbox of destination \"%s\" "
					  "in state store \"%s\"", dest_id, st->path);
		}
		*found = true;
		*id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
		*run_id = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
		strbuf_add(body, b, n);
		PQfreemem(b);
	}
	PQclear(res);
	return JERR_OK;
}

static enum jerr pg_outbox_delete(struct state *st, const char *dest_id, int64_t id, bool *deleted,
				  struct jerror *err)
{
	struct params p = { 0 };
	PGresult *res;
	enum jerr ret;
	p_text(&p, dest_id);
	p_int(&p, id);
	ret = run(ps_of(st), S_OUTBOX_DEL, &p, &res, err,
		  "could not delete written rows from the sync log outbox of destination \"%s\" in state store \"%s\"",
		  dest_id, st->path);
	*deleted = !ret && changes(res) > 0;
	PQclear(res);
	return ret;
}

static enum jerr pg_outbox_count(struct state *st, const char *dest_id, uint64_t *rows, uint64_t *bytes,
				 struct jerror *err)
{
	struct params p = { 0 };
	PGresult *res;
	enum jerr ret;
	p_text(&p, dest_id);
	ret = run(ps_of(st), S_OUTBOX_COUNT, &p, &res, err,
		  "could not count the sync log outbox of destination \"%s\" in state store \"%s\"", dest_id,
		  st->path);
	if (ret)
		return ret;
	*rows = strtoull(PQgetvalue(res, 0, 0), NULL, 10);
	*bytes = strtoull(PQgetvalue(res, 0, 1), NULL, 10);
	PQclear(res);
	return JERR_OK;
}

static enum jerr pg_synclog_set(struct state *st, const struct state_synclog_info *info, int64_t now,
				struct jerror *err)
{
	struct params p = { 0 };
	struct strbuf e = STRBUF_INIT;
	PGresult *res;
	enum jerr ret;
	p_int(&p, info->run_id);
	p_text(&p, info->dest_id);
	p_text(&p, info->status);
	p_int(&p, (int64_t)info->rows);
	p_int(&p, (int64_t)info->pending);
	p_text(&p, info->error ? clean_text(info->error, &e) : NULL);
	p_int(&p, now);
	ret = run(ps_of(st), S_SYNCLOG_SET, &p, &res, err,
		  "could not record the sync log status of run %lld in state store \"%s\"", (long long)info->run_id,
		  st->path);
	PQclear(res);
	strbuf_release(&e);
	return ret;
}

static enum jerr pg_synclog_get(struct state *st, int64_t run_id, struct state_synclog_info *info,
				struct strbuf *status, struct strbuf *error, bool *found, struct jerror *err)
{
	struct params p = { 0 };
	PGresult *res;
	enum jerr ret;
	p_int(&p, run_id);
	ret = run(ps_of(st), S_SYNCLOG_GET, &p, &res, err,
		  "could not read the sync log status of run %lld in state store \"%s\"", (long long)run_id, st->path);
	if (ret)
		return ret;
	if (PQntuples(res) > 0) {
		*found = true;
		info->run_id = run_id;
		strbuf_addstr(status, PQgetvalue(res, 0, 1));
		info->status = status->buf;
		info->rows = strtoull(PQgetvalue(res, 0, 2), NULL, 10);
		info->pending = strtoull(PQgetvalue(res, 0, 3), NULL, 10);
		if (!PQgetisnull(res, 0, 4)) {
			strbuf_addstr(error, PQgetvalue(res, 0, 4));
			info->error = error->buf;
		}
		info->updated_at = strtoll(PQgetvalue(res, 0, 5), NULL, 10);
	}
	PQclear(res);
	return JERR_OK;
}

static enum jerr pg_synclog_unfinished(struct state *st, const char *dest_id, int64_t *ids, size_t max, size_t *n,
				       struct jerror *err)
{
	struct params p = { 0 };
	PGresult *res;
	enum jerr ret;
	p_text(&p, dest_id);
	p_int(&p, (int64_t)max);
	ret = run(ps_of(st), S_SYNCLOG_UNFINISHED, &p, &res, err,
		  "could not list the sync log status of destination \"%s\" in state store \"%s\"", dest_id,
		  st->path);
	if (ret)
		return ret;
	for (int i = 0; i < PQntuples(res) && *n < max; i++)
		ids[(*n)++] = strtoll(PQgetvalue(res, i, 0), NULL, 10);
	PQclear(res);
	return JERR_OK;
}

/* ---- marks ---- */

static enum jerr pg_mark_get(struct state *st, const char *schedule_id, struct strbuf *value,
			     bool *found, struct jerror *err)
{
	struct params p = { 0 };
	PGresult *res;
	enum jerr ret;
	p_text(&p, schedule_id);
	ret = run(ps_of(st), S_MARK_GET, &p, &res, err,
		  "could not read the mark of schedule \"%s\" in state store \"%s\"", schedule_id,
		  st->path);
	if (ret)
		return ret;
	if (PQntuples(res) > 0) {
		*found = true;
		strbuf_add(value, PQgetvalue(res, 0, 0), (size_t)PQgetlength(res, 0, 0));
	}
	PQclear(res);
	return JERR_OK;
}

static enum jerr pg_mark_set(struct state *st, const char *schedule_id, const char *value,
			     int64_t now, struct jerror *err)
{
	struct params p = { 0 };
	PGresult *res;
	enum jerr ret;
	p_text(&p, schedule_id);
	p_text(&p, value);
	p_int(&p, now);
	ret = run(ps_of(st), S_MARK_SET, &p, &res, err,
		  "could not store the mark of schedule \"%s\" in state store \"%s\"", schedule_id,
		  st->path);
	PQclear(res);
	return ret;
}

/* ---- export and import ---- */

/* The PostgreSQL columns of column c (a record key is three). */
static void add_columns(struct strbuf *sql, const struct state_column *c, bool order)
{
	if (c->type == STATE_COL_KEY)
		strbuf_addstr(sql, "key_kind, key_int, key_text");
	else if (order && c->type == STATE_COL_TEXT)
		strbuf_addf(sql, "%s COLLATE \"C\"", c->name);
	else
		strbuf_addstr(sql, c->name);
}

/* One fetched row of t into vals; text and hashes borrow res, keys and hashes ps->tmp. */
static void dump_values(struct pg_state *ps, const struct state_table *t, const PGresult *res,
			int r, struct state_value *vals)
{
	size_t at[STATE_MAX_COLUMNS];
	int col = 0;

	strbuf_reset(&ps->tmp);
	for (size_t i = 0; i < t->n_cols; i++) {
		const struct state_column *c = &t->cols[i];
		struct state_value *v = &vals[i];
		*v = (struct state_value){ STATE_VAL_NULL, 0, { "", 0 } };
		at[i] = SIZE_MAX;
		if (c->type == STATE_COL_KEY) {
			if (get_int(res, r, col) == 0) {
				v->kind = STATE_VAL_INT;
				v->i = get_int(res, r, col + 1);
			} else {
				v->kind = STATE_VAL_TEXT;
				at[i] = ps->tmp.len;
				get_bytes(res, r, col + 2, &ps->tmp);
				v->s.len = ps->tmp.len - at[i];
			}
			col += 3;
			continue;
		}
		if (!PQgetisnull(res, r, col)) {
			switch (c->type) {
			case STATE_COL_INT:
				v->kind = STATE_VAL_INT;
				v->i = get_int(res, r, col);
				break;
			case STATE_COL_BOOL:
				v->kind = STATE_VAL_INT;
				v->i = get_bool(res, r, col);
				break;
			case STATE_COL_HASH:
				v->kind = STATE_VAL_TEXT;
				at[i] = ps->tmp.len;
				get_bytes(res, r, col, &ps->tmp);
				v->s.len = ps->tmp.len - at[i];
				break;
			case STATE_COL_TEXT:
			case STATE_COL_KEY:
				v->kind = STATE_VAL_TEXT;
				v->s = (struct slice){ PQgetvalue(res, r, col),
						       (size_t)PQgetlength(res, r, col) };
				break;
			}
		}
		col++;
	}
	/* ps->tmp is complete: point the decoded values into it */
	for (size_t i = 0; i < t->n_cols; i++)
		if (at[i] != SIZE_MAX)
			vals[i].s.ptr = ps->tmp.buf + at[i];
}

static enum jerr dump_table(struct pg_state *ps, const struct state_table *t, state_dump_fn fn,
			    void *ctx, struct jerror *err)
{
	struct strbuf sql = STRBUF_INIT, fetch = STRBUF_INIT;
	struct state_value vals[STATE_MAX_COLUMNS];
	enum jerr ret;

	strbuf_addstr(&sql, "DECLARE joey_dump NO SCROLL CURSOR FOR SELECT ");
	for (size_t i = 0; i < t->n_cols; i++) {
		if (i)
			strbuf_addstr(&sql, ", ");
		add_columns(&sql, &t->cols[i], false);
	}
	strbuf_addf(&sql, " FROM %s ORDER BY ", t->name);
	for (size_t i = 0; i < t->n_pk; i++) {
		if (i)
			strbuf_addstr(&sql, ", ");
		add_columns(&sql, &t->cols[i], true);
	}
	strbuf_addf(&fetch, "FETCH %d FROM joey_dump", PG_LIST_BATCH);
	ret = exec_sql(ps, sql.buf, err, "read");
	while (!ret) {
		PGresult *res = PQexec(ps->pg, fetch.buf);
		int n;
		if (!res_ok(res)) {
			ret = pg_error(ps, res, err, "could not read table \"%s\" of state store \"%s\"",
				       t->name, ps->base.path);
			PQclear(res);
			break;
		}
		n = PQntuples(res);
		for (int i = 0; i < n && !ret; i++) {
			dump_values(ps, t, res, i, vals);
			ret = fn(ctx, t, vals, err);
		}
		PQclear(res);
		if (n < PG_LIST_BATCH)
			break;
	}
	if (!ret)
		ret = exec_sql(ps, "CLOSE joey_dump", err, "read");
	strbuf_release(&sql);
	strbuf_release(&fetch);
	return ret;
}

static enum jerr pg_dump(struct state *st, state_dump_fn fn, void *ctx, struct jerror *err)
{
	struct pg_state *ps = ps_of(st);
	enum jerr fr = flush_puts(ps, err);
	if (fr)
		return fr;
	bool own_tx = !pg_in_transaction(st);
	enum jerr ret = JERR_OK;

	/* one snapshot for every table */
	if (own_tx && (ret = exec_sql(ps, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", err,
				      "read")))
		return ret;
	for (size_t i = 0; i < state_n_tables && !ret; i++)
		if (state_tables[i].since <= st->version)
			ret = dump_table(ps, &state_tables[i], fn, ctx, err);
	if (own_tx) {
		PGresult *r = PQexec(ps->pg, ret ? "ROLLBACK" : "COMMIT");
		PQclear(r);
	}
	return ret;
}

static enum jerr pg_is_empty(struct state *st, bool *empty, struct jerror *err)
{
	struct pg_state *ps = ps_of(st);
	enum jerr fr = flush_puts(ps, err);
	if (fr)
		return fr;
	struct strbuf sql = STRBUF_INIT;
	enum jerr ret = JERR_OK;
	const char *sep = "";
	PGresult *r;

	strbuf_addstr(&sql, "SELECT NOT (");
	for (size_t i = 0; i < state_n_tables; i++) {
		if (state_tables[i].since > st->version)
			continue;
		strbuf_addf(&sql, "%sEXISTS (SELECT 1 FROM %s)", sep, state_tables[i].name);
		sep = " OR ";
	}
	strbuf_addstr(&sql, ")");
	r = PQexec(ps->pg, sql.buf);
	if (!res_ok(r) || PQntuples(r) != 1)
		ret = pg_error(ps, r, err, "could not read state store \"%s\"", st->path);
	else
		*empty = get_bool(r, 0, 0);
	PQclear(r);
	strbuf_release(&sql);
	return ret;
}

static enum jerr pg_clear(struct state *st, struct jerror *err)
{
	struct pg_state *ps = ps_of(st);
	enum jerr ret = JERR_OK;
	/* the work queue refers to runs and locks that are about to go */
	if (st->version >= 3)
		ret = exec_sql(ps, "DELETE FROM work_items; DELETE FROM work_jobs; DELETE FROM rate_buckets",
			       err, "empty");
	for (size_t i = state_n_tables; i-- > 0 && !ret;) {
		struct strbuf sql = STRBUF_INIT;
		if (state_tables[i].since > st->version)
			continue;
		strbuf_addf(&sql, "DELETE FROM %s", state_tables[i].name);
		ret = exec_sql(ps, sql.buf, err, "empty");
		strbuf_release(&sql);
	}
	return ret;
}

static enum jerr pg_load_row(struct state *st, const struct state_table *t,
			     const struct state_value *row, struct jerror *err)
{
	struct pg_state *ps = ps_of(st);
	enum jerr fr = flush_puts(ps, err);
	if (fr)
		return fr;
	size_t ti = (size_t)(t - state_tables);
	struct params p = { 0 };
	char name[32];
	PGresult *res;
	enum jerr ret = JERR_OK;

	if (ti >= state_n_tables)
		return jerror_set(err, JERR_INTERNAL, "state_load_row: not one of state_tables");
	snprintf(name, sizeof(name), "joey_l%zu", ti);
	if (!ps->load_prepared[ti]) {
		struct strbuf sql = STRBUF_INIT;
		int n = 0;
		strbuf_addf(&sql, "INSERT INTO %s (", t->name);
		for (size_t i = 0; i < t->n_cols; i++) {
			if (i)
				strbuf_addstr(&sql, ", ");
			add_columns(&sql, &t->cols[i], false);
			n += t->cols[i].type == STATE_COL_KEY ? 3 : 1;
		}
		strbuf_addstr(&sql, ") VALUES (");
		for (int i = 0; i < n; i++)
			strbuf_addf(&sql, "%s$%d", i ? ", " : "", i + 1);
		strbuf_addstr(&sql, ")");
		res = PQprepare(ps->pg, name, sql.buf, 0, NULL);
		strbuf_release(&sql);
		if (!res_ok(res)) {
			ret = pg_error(ps, res, err, "could not load table \"%s\" into state store \"%s\"",
				       t->name, st->path);
			PQclear(res);
			return ret;
		}
		PQclear(res);
		ps->load_prepared[ti] = true;
	}
	for (size_t i = 0; i < t->n_cols; i++) {
		const struct state_value *v = &row[i];
		switch (t->cols[i].type) {
		case STATE_COL_KEY: {
			struct rkey k = { v->kind == STATE_VAL_INT, v->i, v->s };
			p_key(&p, &k);
			break;
		}
		case STATE_COL_BOOL:
			if (v->kind == STATE_VAL_NULL)
				p_text(&p, NULL);
			else
				p_bool(&p, v->i != 0);
			break;
		case STATE_COL_INT:
			if (v->kind == STATE_VAL_NULL)
				p_text(&p, NULL);
			else
				p_int(&p, v->i);
			break;
		case STATE_COL_TEXT:
		case STATE_COL_HASH:
			if (v->kind == STATE_VAL_NULL)
				p_text(&p, NULL);
			else
				p_bytes(&p, v->s.ptr, v->s.len);
			break;
		}
	}
	res = PQexecPrepared(ps->pg, name, p.n, p.v, p.len, p.fmt, 0);
	if (!res_ok(res))
		ret = pg_error(ps, res, err, "could not load a row of table \"%s\" into state store "
					     "\"%s\"",
			       t->name, st->path);
	PQclear(res);
	return ret;
}

/* New ids follow the largest loaded one (identity columns do not notice explicit ids). */
static enum jerr pg_load_finish(struct state *st, struct jerror *err)
{
	struct pg_state *ps = ps_of(st);
	enum jerr ret = JERR_OK;
	for (size_t i = 0; i < state_n_tables && !ret; i++) {
		const struct state_table *t = &state_tables[i];
		struct strbuf sql = STRBUF_INIT;
		if (t->since > st->version || t->n_pk != 1 || strcmp(t->cols[0].name, "id") != 0)
			continue;
		strbuf_addf(&sql, "SELECT pg_catalog.setval(pg_catalog.pg_get_serial_sequence("
				  "pg_catalog.quote_ident(pg_catalog.current_schema()) || '.%s', 'id'),"
				  " coalesce(max(id), 0) + 1, false) FROM %s",
			    t->name, t->name);
		ret = exec_sql(ps, sql.buf, err, "load");
		strbuf_release(&sql);
	}
	return ret;
}

/* ---- the work queue, leadership and shared rate buckets (workers) ---- */

/* A job's own lock token, derived from this struct state's (never 0, never ours). */
static int64_t job_token(const struct state *st, int64_t job_id)
{
	uint64_t t = (uint64_t)st->token ^ ((uint64_t)job_id * 0x9e3779b97f4a7c15u);
	t ^= t >> 29;
	t &= INT64_MAX;
	return t && (int64_t)t != st->token ? (int64_t)t : (int64_t)(t + 1);
}

static enum jerr pg_work_enqueue(struct state *st, const struct state_work_spec *spec,
				 const struct state_work_part *parts, size_t n, int64_t now,
				 int64_t *job_id, bool *duplicate, struct jerror *err)
{
	struct pg_state *ps = ps_of(st);
	struct params p = { 0 };
	char mdp[32], holder[64];
	PGresult *res;
	enum jerr ret;

	p_text(&p, spec->dedup);
	p_text(&p, spec->model_id);
	p_text(&p, spec->schedule_id);
	p_text(&p, spec->since);
	p_bool(&p, spec->force);
	snprintf(mdp, sizeof(mdp), "%.17g", spec->max_delete_percent);
	p_text(&p, spec->max_delete_percent >= 0 ? mdp : NULL);
	p_int(&p, now);
	ret = run(ps, S_WORK_JOB_INSERT, &p, &res, err, "could not queue a job in state store \"%s\"",
		  st->path);
	if (ret)
		return ret;
	if (PQntuples(res) != 1) {
		PQclear(res);
		*duplicate = true;
		return JERR_OK;
	}
	*job_id = get_int(res, 0, 0);
	PQclear(res);
	int64_t token = job_token(st, *job_id);
	p = (struct params){ 0 };
	p_int(&p, *job_id);
	p_int(&p, token);
	if ((ret = run(ps, S_WORK_JOB_TOKEN, &p, &res, err, "could not queue a job in state store \"%s\"",
		       st->path)))
		return ret;
	PQclear(res);
	snprintf(holder, sizeof(holder), "joey job %" PRId64, *job_id);
	for (size_t i = 0; i < n; i++) {
		const struct state_work_part *w = &parts[i];
		bool first = true;
		for (size_t k = 0; k < i && first; k++)
			first = strcmp(parts[k].dest_id, w->dest_id) != 0;
		if (first) {
			p = (struct params){ 0 };
			p_text(&p, w->dest_id);
			p_int(&p, st->token);
			p_int(&p, token);
			p_text(&p, holder);
			if ((ret = run(ps, S_WORK_ADOPT, &p, &res, err,
				       "could not hand the lock of destination \"%s\" to job %" PRId64
				       " in state store \"%s\"",
				       w->dest_id, *job_id, st->path)))
				return ret;
			bool adopted = changes(res) == 1;
			PQclear(res);
			if (!adopted)
				return jerror_set(err, JERR_INTERNAL,
						  "state_work_enqueue: destination \"%s\" is not locked by the caller",
						  w->dest_id);
		}
		p = (struct params){ 0 };
		p_int(&p, *job_id);
		p_text(&p, w->dest_id);
		p_int(&p, w->run_id);
		p_int(&p, w->part);
		p_int(&p, w->n_parts);
		p_bound(&p, w->range.lo);
		p_bound(&p, w->range.hi);
		if ((ret = run(ps, S_WORK_ITEM_INSERT, &p, &res, err,
			       "could not queue a work item in state store \"%s\"", st->path)))
			return ret;
		PQclear(res);
	}
	return JERR_OK;
}

/* A bound from columns col (kind), col + 1 (int), col + 2 (bytes); false when open. */
static bool get_bound(const PGresult *res, int col, struct rkey *k, struct strbuf *text)
{
	strbuf_reset(text);
	memset(k, 0, sizeof(*k));
	if (PQgetisnull(res, 0, col))
		return false;
	k->is_int = get_int(res, 0, col) == 0;
	if (k->is_int) {
		k->i = get_int(res, 0, col + 1);
		strbuf_addf(text, "%" PRId64, k->i);
	} else {
		get_bytes(res, 0, col + 2, text);
	}
	k->text = (struct slice){ text->buf, text->len };
	return true;
}

static enum jerr pg_work_claim(struct state *st, const char *worker, int64_t lease_ms, int64_t only_job,
			       struct state_work_item *it, bool *found, struct jerror *err)
{
	struct pg_state *ps = ps_of(st);
	struct params p = { 0 };
	PGresult *res;
	enum jerr ret;

	p_text(&p, worker);
	p_int(&p, lease_ms);
	p_int(&p, only_job > 0 ? only_job : 0);
	ret = run(ps, S_WORK_CLAIM, &p, &res, err, "could not claim a work item in state store \"%s\"",
		  st->path);
	if (ret)
		return ret;
	if (PQntuples(res) != 1) {
		PQclear(res);
		return JERR_OK;
	}
	*found = true;
	it->id = get_int(res, 0, 0);
	it->job_id = get_int(res, 0, 1);
	it->run_id = get_int(res, 0, 2);
	strbuf_reset(&it->dest_id);
	strbuf_addstr(&it->dest_id, PQgetvalue(res, 0, 3));
	it->part = (int)get_int(res, 0, 4);
	it->n_parts = (int)get_int(res, 0, 5);
	it->claims = (int)get_int(res, 0, 6);
	it->range.lo = get_bound(res, 7, &it->lo, &it->lo_text) ? &it->lo : NULL;
	it->range.hi = get_bound(res, 10, &it->hi, &it->hi_text) ? &it->hi : NULL;
	strbuf_reset(&it->model_id);
	strbuf_addstr(&it->model_id, PQgetvalue(res, 0, 13));
	strbuf_reset(&it->schedule_id);
	strbuf_addstr(&it->schedule_id, PQgetvalue(res, 0, 14));
	strbuf_reset(&it->since);
	strbuf_addstr(&it->since, PQgetvalue(res, 0, 15));
	it->has_since = !PQgetisnull(res, 0, 15);
	it->force = get_bool(res, 0, 16);
	it->max_delete_percent = PQgetisnull(res, 0, 17) ? -1 : strtod(PQgetvalue(res, 0, 17), NULL);
	PQclear(res);
	return JERR_OK;
}

static enum jerr pg_work_heartbeat(struct state *st, const char *worker, int64_t lease_ms, int64_t now,
				   void (*held)(void *ctx, int64_t item_id), void *ctx, struct jerror *err)
{
	struct pg_state *ps = ps_of(st);
	struct params p = { 0 };
	PGresult *res;
	enum jerr ret;

	p_text(&p, worker);
	p_int(&p, lease_ms);
	ret = run(ps, S_WORK_BEAT, &p, &res, err, "could not renew the leases of worker \"%s\" in state store \"%s\"",
		  worker, st->path);
	if (ret)
		return ret;
	for (int i = 0; held && i < PQntuples(res); i++)
		held(ctx, get_int(res, i, 0));
	PQclear(res);
	p = (struct params){ 0 };
	p_int(&p, now);
	ret = run(ps, S_WORK_BEAT_LOCKS, &p, &res, err,
		  "could not refresh the destination locks of running jobs in state store \"%s\"", st->path);
	PQclear(res);
	return ret;
}

static enum jerr pg_work_finish(struct state *st, int64_t item_id, const char *worker,
				const struct state_work_result *r, bool *held, bool *job_done,
				struct jerror *err)
{
	struct pg_state *ps = ps_of(st);
	struct strbuf clean = STRBUF_INIT;
	struct params p = { 0 };
	PGresult *res;
	int64_t job_id;
	bool running;
	enum jerr ret;

	p_int(&p, item_id);
	if ((ret = run(ps, S_WORK_JOB_LOCK, &p, &res, err,
		       "could not lock the job of work item %" PRId64 " in state store \"%s\"", item_id, st->path)))
		return ret;
	if (PQntuples(res) != 1) {
		PQclear(res);
		return JERR_OK; /* no such item: not held */
	}
	job_id = get_int(res, 0, 0);
	running = !strcmp(PQgetvalue(res, 0, 1), "running");
	PQclear(res);

	const uint64_t *c[] = { &r->counts.created, &r->counts.updated, &r->counts.deleted,
				&r->counts.unsubscribed, &r->counts.unchanged, &r->counts.failed,
				&r->counts.skipped, &r->counts.requests, &r->counts.retries,
				&r->counts.throttled, &r->counts.data_points, &r->deletes_held };
	p = (struct params){ 0 };
	p_int(&p, item_id);
	p_text(&p, worker);
	p_text(&p, run_status_name(r->status));
	for (size_t i = 0; i < ARRAY_SIZE(c); i++)
		p_int(&p, (int64_t)*c[i]);
	p_text(&p, r->seen);
	p_bool(&p, r->read_ok);
	p_text(&p, r->error ? clean_text(r->error, &clean) : NULL);
	ret = run(ps, S_WORK_FINISH, &p, &res, err,
		  "could not record the end of work item %" PRId64 " in state store \"%s\"", item_id, st->path);
	strbuf_release(&clean);
	if (ret)
		return ret;
	*held = changes(res) == 1;
	PQclear(res);
	if (!*held || !running)
		return JERR_OK;
	p = (struct params){ 0 };
	p_int(&p, job_id);
	if ((ret = run(ps, S_WORK_OPEN, &p, &res, err,
		       "could not read the work items of job %" PRId64 " in state store \"%s\"", job_id, st->path)))
		return ret;
	*job_done = PQntuples(res) == 1 && get_int(res, 0, 0) == 0;
	PQclear(res);
	return JERR_OK;
}

static enum jerr pg_work_requeue(struct state *st, int64_t item_id, const char *worker, struct jerror *err)
{
	struct params p = { 0 };
	PGresult *res;
	enum jerr ret;
	p_int(&p, item_id);
	p_text(&p, worker);
	ret = run(ps_of(st), S_WORK_REQUEUE, &p, &res, err,
		  "could not give work item %" PRId64 " back to the queue of state store \"%s\"", item_id,
		  st->path);
	PQclear(res);
	return ret;
}

static enum jerr pg_work_items(struct state *st, int64_t job_id, state_work_item_fn fn, void *ctx,
			       struct jerror *err)
{
	struct params p = { 0 };
	PGresult *res;
	enum jerr ret;
	p_int(&p, job_id);
	ret = run(ps_of(st), S_WORK_ITEMS, &p, &res, err,
		  "could not read the work items of job %" PRId64 " in state store \"%s\"", job_id, st->path);
	if (ret)
		return ret;
	for (int i = 0; i < PQntuples(res) && !ret; i++) {
		struct state_work_item_info it = { 0 };
		uint64_t *c[] = { &it.counts.created, &it.counts.updated, &it.counts.deleted,
				  &it.counts.unsubscribed, &it.counts.unchanged, &it.counts.failed,
				  &it.counts.skipped, &it.counts.requests, &it.counts.retries,
				  &it.counts.throttled, &it.counts.data_points, &it.deletes_held };
		it.id = get_int(res, i, 0);
		it.dest_id = PQgetvalue(res, i, 1);
		it.run_id = get_int(res, i, 2);
		it.part = (int)get_int(res, i, 3);
		it.n_parts = (int)get_int(res, i, 4);
		it.claims = (int)get_int(res, i, 5);
		it.status = PQgetvalue(res, i, 6);
		it.run_status = PQgetisnull(res, i, 7) ? RUN_RUNNING : state_run_status_parse(PQgetvalue(res, i, 7));
		for (size_t k = 0; k < ARRAY_SIZE(c); k++) {
			int64_t v = get_int(res, i, 8 + (int)k);
			*c[k] = v > 0 ? (uint64_t)v : 0;
		}
		it.seen = PQgetisnull(res, i, 20) ? NULL : PQgetvalue(res, i, 20);
		it.read_ok = get_bool(res, i, 21);
		it.error = PQgetisnull(res, i, 22) ? NULL : PQgetvalue(res, i, 22);
		it.worker = PQgetisnull(res, i, 23) ? NULL : PQgetvalue(res, i, 23);
		ret = fn(ctx, &it, err);
	}
	PQclear(res);
	return ret;
}

static enum jerr pg_work_job_status(struct state *st, int64_t job_id, enum run_status *status,
				    struct strbuf *model_id, bool *found, struct jerror *err)
{
	struct params p = { 0 };
	PGresult *res;
	enum jerr ret;
	p_int(&p, job_id);
	ret = run(ps_of(st), S_WORK_JOB_STATUS, &p, &res, err,
		  "could not read job %" PRId64 " in state store \"%s\"", job_id, st->path);
	if (ret)
		return ret;
	if (PQntuples(res) == 1) {
		*found = true;
		*status = state_run_status_parse(PQgetvalue(res, 0, 0));
		if (model_id) {
			strbuf_reset(model_id);
			strbuf_addstr(model_id, PQgetvalue(res, 0, 1));
		}
	}
	PQclear(res);
	return JERR_OK;
}

static enum jerr pg_work_close(struct state *st, int64_t job_id, enum run_status status, const char *mark,
			       struct jerror *err)
{
	struct pg_state *ps = ps_of(st);
	struct params p = { 0 };
	PGresult *res;
	enum jerr ret;
	p_int(&p, job_id);
	p_text(&p, run_status_name(status));
	p_text(&p, mark);
	ret = run(ps, S_WORK_CLOSE, &p, &res, err, "could not close job %" PRId64 " in state store \"%s\"",
		  job_id, st->path);
	if (ret)
		return ret;
	if (PQntuples(res) != 1) {
		PQclear(res);
		return JERR_OK; /* closed already */
	}
	int64_t token = get_int(res, 0, 0);
	PQclear(res);
	p = (struct params){ 0 };
	p_int(&p, token);
	ret = run(ps, S_WORK_UNLOCK, &p, &res, err,
		  "could not release the destination locks of job %" PRId64 " in state store \"%s\"", job_id,
		  st->path);
	PQclear(res);
	return ret;
}

static enum jerr pg_work_sweep(struct state *st, int64_t keep_ms, int64_t now, uint64_t *closed,
			       struct jerror *err)
{
	struct pg_state *ps = ps_of(st);
	struct params p = { 0 };
	PGresult *res;
	enum jerr ret;
	p_int(&p, now - 60000); /* a minute's grace for a job being queued right now */
	ret = run(ps, S_WORK_SWEEP, &p, &res, err, "could not tidy the work queue of state store \"%s\"", st->path);
	if (ret)
		return ret;
	*closed = changes(res);
	PQclear(res);
	p = (struct params){ 0 };
	p_int(&p, keep_ms);
	ret = run(ps, S_WORK_PRUNE, &p, &res, err, "could not tidy the work queue of state store \"%s\"", st->path);
	PQclear(res);
	return ret;
}

static enum jerr pg_leader_try(struct state *st, const char *name, bool *leader, struct jerror *err)
{
	struct pg_state *ps = ps_of(st);
	struct params p = { 0 };
	struct strbuf key = STRBUF_INIT;
	PGresult *res;
	enum jerr ret;

	if (ps->leader) {
		/* a session lock lasts as long as the session: is it still there? */
		ret = run(ps, S_PING, &p, &res, err, "lost the connection to state store \"%s\"", st->path);
		PQclear(res);
		if (ret)
			ps->leader = false;
		*leader = ps->leader;
		return ret;
	}
	strbuf_addf(&key, "%s/%s", ps->schema, name);
	p_text(&p, key.buf);
	ret = run(ps, S_LEADER_TRY, &p, &res, err, "could not try to become the %s of state store \"%s\"", name,
		  st->path);
	strbuf_release(&key);
	if (ret)
		return ret;
	ps->leader = PQntuples(res) == 1 && get_bool(res, 0, 0);
	*leader = ps->leader;
	PQclear(res);
	return JERR_OK;
}

static enum jerr pg_rate_take(struct state *st, const char *key, double capacity, double rate_per_ms, int want,
			      int *got, int64_t *wait_ms, struct jerror *err)
{
	struct params p = { 0 };
	char cap[32], rate[32];
	PGresult *res;
	enum jerr ret;

	snprintf(cap, sizeof(cap), "%.17g", capacity);
	snprintf(rate, sizeof(rate), "%.17g", rate_per_ms);
	p_text(&p, key);
	p_text(&p, cap);
	p_text(&p, rate);
	p_int(&p, want);
	ret = run(ps_of(st), S_RATE_TAKE, &p, &res, err,
		  "could not take from the rate budget \"%s\" in state store \"%s\"", key, st->path);
	if (ret)
		return ret;
	if (PQntuples(res) == 1) {
		double g = strtod(PQgetvalue(res, 0, 0), NULL), tokens = strtod(PQgetvalue(res, 0, 1), NULL);
		*got = g > 0 ? (int)g : 0;
		if (!*got) {
			double ms = (1.0 - tokens) / rate_per_ms;
			*wait_ms = ms < 1 ? 1 : (int64_t)ms + 1;
		}
	}
	PQclear(res);
	return JERR_OK;
}

/* ---- one statement of a module's own tables (backend.h exec) ---- */

static enum jerr pg_exec(struct state *st, const char *what, const char *sql, const struct state_value *params,
			 size_t n, enum jerr (*fn)(void *ctx, const struct state_value *row, size_t n_cols,
						   struct jerror *err),
			 void *ctx, uint64_t *changed, struct jerror *err)
{
	struct pg_state *ps = ps_of(st);
	struct params p = { 0 };
	struct state_value vals[32];
	struct strbuf text = STRBUF_INIT;
	enum jerr ret;
	PGresult *r;

	if (changed)
		*changed = 0;
	if (n > MAX_PARAMS)
		return jerror_set(err, JERR_INTERNAL, "could not %s: too many parameters", what);
	if ((ret = flush_puts(ps, err)))
		return ret;
	for (size_t i = 0; i < n; i++) {
		if (params[i].kind == STATE_VAL_INT)
			p_int(&p, params[i].i);
		else if (params[i].kind == STATE_VAL_TEXT)
			p_bytes(&p, params[i].s.ptr, params[i].s.len); /* TEXT's binary form is its bytes */
		else
			p_text(&p, NULL);
	}
	r = PQexecParams(ps->pg, sql, p.n, NULL, p.v, p.len, p.fmt, 0);
	if (!res_ok(r)) {
		ret = pg_error(ps, r, err, "could not %s in state store \"%s\"", what, st->path);
		PQclear(r);
		return ret;
	}
	int nc = PQnfields(r);
	if (nc > (int)ARRAY_SIZE(vals))
		nc = (int)ARRAY_SIZE(vals);
	for (int row = 0; fn && row < PQntuples(r) && !ret; row++) {
		for (int c = 0; c < nc; c++) {
			Oid t = PQftype(r, c);
			memset(&vals[c], 0, sizeof(vals[c]));
			if (PQgetisnull(r, row, c)) {
				vals[c].kind = STATE_VAL_NULL;
			} else if (t == 20 || t == 21 || t == 23) { /* int8, int2, int4 */
				vals[c].kind = STATE_VAL_INT;
				vals[c].i = get_int(r, row, c);
			} else if (t == 16) { /* bool */
				vals[c].kind = STATE_VAL_INT;
				vals[c].i = get_bool(r, row, c);
			} else {
				vals[c].kind = STATE_VAL_TEXT;
				vals[c].s = (struct slice){ PQgetvalue(r, row, c), (size_t)PQgetlength(r, row, c) };
			}
		}
		ret = fn(ctx, vals, (size_t)nc, err);
	}
	if (!ret && changed)
		*changed = changes(r);
	PQclear(r);
	strbuf_release(&text);
	return ret;
}

const struct state_ops state_pg = {
	.name = "PostgreSQL",
	.seek_rows = 32,
	.open = pg_open,
	.open_empty = pg_open_empty,
	.close = pg_close,
	.display = pg_display,
	.limit_size = pg_limit_size,
	.count = pg_count,
	.count_range = pg_count_range,
	.get = pg_get,
	.cursor_fill = pg_cursor_fill,
	.lookup = pg_cursor_lookup,
	.in_transaction = pg_in_transaction,
	.begin = pg_begin,
	.commit = pg_commit,
	.rollback = pg_rollback,
	.put = pg_put,
	.del = pg_del,
	.mark_failed = pg_mark_failed,
	.set_exists = pg_set_exists,
	.run_start = pg_run_start,
	.run_finish = pg_run_finish,
	.runs_abandon = pg_runs_abandon,
	.run_progress = pg_run_progress,
	.runs_running = pg_runs_running,
	.ledger_add = pg_ledger_add,
	.runs_list = pg_runs_list,
	.ledger_list = pg_ledger_list,
	.lock_get = pg_lock_get,
	.lock_put = pg_lock_put,
	.lock_beat = pg_lock_beat,
	.lock_del = pg_lock_del,
	.mark_get = pg_mark_get,
	.mark_set = pg_mark_set,
	.dump = pg_dump,
	.is_empty = pg_is_empty,
	.clear = pg_clear,
	.load_row = pg_load_row,
	.load_finish = pg_load_finish,
	.work_enqueue = pg_work_enqueue,
	.work_claim = pg_work_claim,
	.work_heartbeat = pg_work_heartbeat,
	.work_finish = pg_work_finish,
	.work_requeue = pg_work_requeue,
	.work_items = pg_work_items,
	.work_job_status = pg_work_job_status,
	.work_close = pg_work_close,
	.work_sweep = pg_work_sweep,
	.leader_try = pg_leader_try,
	.rate_take = pg_rate_take,
	.exec = pg_exec,
	.outbox_put = pg_outbox_put,
	.outbox_next = pg_outbox_next,
	.outbox_delete = pg_outbox_delete,
	.outbox_count = pg_outbox_count,
	.synclog_set = pg_synclog_set,
	.synclog_get = pg_synclog_get,
	.synclog_unfinished = pg_synclog_unfinished,
};
