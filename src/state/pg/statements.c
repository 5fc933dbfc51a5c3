/*
 * statements.c: the fixed SQL statements of the PostgreSQL state store, one per
 * enum stmt_id (pg_internal.h), with their parameter counts. Data only; pg_run
 * (query.c) prepares each once per connection, on first use. ROW_COLUMNS, the
 * columns of a record row, is in pg_internal.h because pg_decode_row reads them.
 */
#include "state/pg/pg_internal.h"

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

const struct pg_stmt pg_stmts[S__COUNT] = {
	[S_GET] = { "SELECT " ROW_COLUMNS " FROM records WHERE dest_id = $1 AND " KEY_MATCH, 4 },
	[S_COUNT] = { "SELECT count(*) FROM records WHERE dest_id = $1 AND in_scope", 1 },
	[S_PUT] = { "INSERT INTO records (dest_id, key_kind, key_int, key_text, payload, hash,"
		    " in_scope, pending, attempts, last_error, confirmed_at, updated_at)"
		    " VALUES ($1, $2, $3, $4, $5, $6, $7, false, 0, NULL,"
		    " CASE WHEN $6::bytea = " PG_ZERO_HASH " THEN NULL ELSE $8::bigint END, $8::bigint)"
		    " ON CONFLICT (dest_id, key_kind, key_int, key_text) DO UPDATE SET"
		    " payload = excluded.payload, hash = excluded.hash, in_scope = excluded.in_scope,"
		    " pending = false, attempts = 0, last_error = NULL,"
		    " confirmed_at = excluded.confirmed_at, updated_at = excluded.updated_at", 8 },
	[S_DELETE] = { "DELETE FROM records WHERE dest_id = $1 AND " KEY_MATCH, 4 },
	[S_FAIL] = { "INSERT INTO records (dest_id, key_kind, key_int, key_text, payload, hash,"
		     " in_scope, pending, attempts, last_error, updated_at)"
		     " VALUES ($1, $2, $3, $4, $7::text, " PG_ZERO_HASH ", false, true, 1,"
		     " $5, $6)"
		     " ON CONFLICT (dest_id, key_kind, key_int, key_text) DO UPDATE SET pending = true,"
		     " attempts = records.attempts + 1, last_error = excluded.last_error,"
		     " payload = CASE WHEN $7::text = '' THEN records.payload ELSE $7::text END,"
		     " updated_at = excluded.updated_at", 7 },
	[S_EXISTS] = { "INSERT INTO records (dest_id, key_kind, key_int, key_text, payload, hash,"
		       " in_scope, braze_exists, checked_at, updated_at)"
		       " VALUES ($1, $2, $3, $4, '', " PG_ZERO_HASH ", false, $5, $6, $7)"
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
	/* before S_RUNS_ABANDON, while the runs still say running (state_runs_abandon) */
	[S_RECORDS_ABANDON] = { "UPDATE records SET pending = true, last_error = '" STATE_ABANDONED_SEND_ERROR "',"
				" updated_at = $2 WHERE dest_id = $1 AND NOT pending AND confirmed_at <"
				" (SELECT min(started_at) FROM runs WHERE dest_id = $1 AND status = 'running'"
				" AND kind = 'run')", 2 },
	[S_RUN_PROGRESS] = { "UPDATE runs SET created = $2, updated = $3, deleted = $4, unsubscribed = $5,"
			     " unchanged = $6, failed = $7, skipped = $8, requests = $9, retries = $10,"
			     " throttled = $11, data_points = $12 WHERE id = $1 AND status = 'running'", 12 },
	[S_RUNS_RUNNING] = { "SELECT DISTINCT dest_id FROM runs WHERE status = 'running'", 0 },
	/* S_RECORDS_ABANDON for one key of a journal: confirmed before $6 (the first run's start) */
	[S_RECORD_ABANDON_KEY] = { "UPDATE records SET pending = true, last_error = '" STATE_ABANDONED_SEND_ERROR "',"
				   " updated_at = $2 WHERE dest_id = $1 AND key_kind = $3 AND key_int = $4"
				   " AND key_text = $5 AND NOT pending AND confirmed_at < $6", 6 },
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
	[S_MARK_GET] = { "SELECT value, (SELECT value FROM meta WHERE key = 'mark basis ' || $1)"
			 " FROM marks WHERE schedule_id = $1", 1 },
	[S_MARK_BASIS_SET] = { "INSERT INTO meta (key, value) VALUES ('mark basis ' || $1, $2)"
			       " ON CONFLICT (key) DO UPDATE SET value = excluded.value", 2 },
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
				" max_delete_percent, lock_token, status, created_at, config_gen, marks)"
				" VALUES ($1, $2, $3, $4, $5, $6, 0, 'running', $7, $8, $9)"
				" ON CONFLICT (dedup) DO NOTHING RETURNING id", 9 },
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
			   " j.model_id, j.schedule_id, j.since, j.force, j.max_delete_percent,"
			   " j.config_gen, j.marks", 3 },
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
	/* given back (SIGTERM): that claim did not end badly, so it does not count (WORK_MAX_CLAIMS) */
	[S_WORK_REQUEUE] = { "UPDATE work_items SET status = 'queued', worker = NULL, expires_at = NULL,"
			     " claims = greatest(claims - 1, 0)"
			     " WHERE id = $1 AND worker = $2 AND status = 'running'", 2 },
	/* a running item's counts so far, for the live view of its job */
	[S_WORK_PROGRESS] = { "UPDATE work_items SET created = $3, updated = $4, deleted = $5, unsubscribed = $6,"
			      " unchanged = $7, failed = $8, skipped = $9, requests = $10, retries = $11,"
			      " throttled = $12, data_points = $13"
			      " WHERE id = $1 AND worker = $2 AND status = 'running'", 13 },
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
