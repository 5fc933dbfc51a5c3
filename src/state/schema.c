/* schema.c: the state store's schema on every back end: migration steps and the table list. */
#include "state/schema.h"

#include "base/compat.h"
#include "state/backend.h"
#include "state/state.h"

/* ---- SQLite ---- */

/*
 * Times are epoch milliseconds. `key` has no declared type (no affinity), so an
 * integer record key is stored as INTEGER and a text key as TEXT, and ORDER BY key
 * (BINARY collation) is exactly key_compare(): integers numerically, before text,
 * text bytewise. Never give `key` a type: TEXT affinity would turn 10 into '10'.
 */
const char *const state_migrations[] = {
	/* 0 -> 1: initial schema */
	"CREATE TABLE meta (\n"
	"  key TEXT PRIMARY KEY NOT NULL,\n"
	"  value\n"
	");\n"
	"CREATE TABLE records (\n"
	"  dest_id TEXT NOT NULL,\n"
	"  key NOT NULL,\n"
	"  payload TEXT NOT NULL,\n"
	"  hash BLOB NOT NULL CHECK (length(hash) = 16),\n"
	"  in_scope INTEGER NOT NULL CHECK (in_scope IN (0, 1)),\n"
	"  pending INTEGER NOT NULL DEFAULT 0 CHECK (pending IN (0, 1)),\n"
	"  attempts INTEGER NOT NULL DEFAULT 0,\n"
	"  last_error TEXT,\n"
	"  braze_exists INTEGER CHECK (braze_exists IN (0, 1)),\n"
	"  checked_at INTEGER,\n"
	"  confirmed_at INTEGER,\n"
	"  updated_at INTEGER NOT NULL,\n"
	"  PRIMARY KEY (dest_id, key)\n"
	") WITHOUT ROWID;\n"
	"CREATE TABLE runs (\n"
	"  id INTEGER PRIMARY KEY,\n"
	"  dest_id TEXT NOT NULL,\n"
	"  kind TEXT NOT NULL CHECK (kind IN ('run', 'plan')),\n"
	"  status TEXT NOT NULL CHECK (status IN ('running', 'success', 'failed', 'interrupted')),\n"
	"  started_at INTEGER NOT NULL,\n"
	"  finished_at INTEGER,\n"
	"  created INTEGER NOT NULL DEFAULT 0,\n"
	"  updated INTEGER NOT NULL DEFAULT 0,\n"
	"  deleted INTEGER NOT NULL DEFAULT 0,\n"
	"  unsubscribed INTEGER NOT NULL DEFAULT 0,\n"
	"  unchanged INTEGER NOT NULL DEFAULT 0,\n"
	"  failed INTEGER NOT NULL DEFAULT 0,\n"
	"  skipped INTEGER NOT NULL DEFAULT 0,\n"
	"  requests INTEGER NOT NULL DEFAULT 0,\n"
	"  retries INTEGER NOT NULL DEFAULT 0,\n"
	"  throttled INTEGER NOT NULL DEFAULT 0,\n"
	"  data_points INTEGER NOT NULL DEFAULT 0,\n"
	"  error TEXT\n"
	");\n"
	"CREATE INDEX runs_dest ON runs (dest_id, id);\n"
	"CREATE TABLE ledger (\n"
	"  id INTEGER PRIMARY KEY,\n"
	"  run_id INTEGER REFERENCES runs (id) ON DELETE CASCADE,\n"
	"  dest_id TEXT NOT NULL,\n"
	"  key NOT NULL,\n"
	"  error TEXT NOT NULL,\n"
	"  attempts INTEGER NOT NULL,\n"
	"  at INTEGER NOT NULL\n"
	");\n"
	"CREATE INDEX ledger_key ON ledger (dest_id, key);\n"
	"CREATE INDEX ledger_run ON ledger (run_id);\n"
	"CREATE TABLE locks (\n"
	"  dest_id TEXT PRIMARY KEY NOT NULL,\n"
	"  holder TEXT NOT NULL,\n"
	"  host TEXT NOT NULL,\n"
	"  pid INTEGER NOT NULL,\n"
	"  token INTEGER NOT NULL,\n"
	"  acquired_at INTEGER NOT NULL,\n"
	"  heartbeat_at INTEGER NOT NULL\n"
	");\n",
	/* 1 -> 2: high-water marks of incremental schedules */
	"CREATE TABLE marks (\n"
	"  schedule_id TEXT PRIMARY KEY NOT NULL,\n"
	"  value TEXT NOT NULL,\n"
	"  updated_at INTEGER NOT NULL\n"
	");\n",
	/*
	 * 2 -> 3: nothing on SQLite. Version 3 added the work queue and the shared rate
	 * buckets of `joey worker`, which live only in PostgreSQL stores.
	 */
	"",
	/*
	 * 3 -> 4: nothing on SQLite. Version 4 added the digests of the warehouse diff
	 * (engine/warehouse.h), which only a PostgreSQL store holds: the database that
	 * computes them must hold the store.
	 */
	"",
	/* 4 -> 5: alerts (src/alert, state/alerts.h); IF NOT EXISTS: a store whose version was
	 * set back by hand keeps its alert tables */
	"CREATE TABLE IF NOT EXISTS alert_incidents (\n"
	"  id INTEGER PRIMARY KEY,\n"
	"  alert_id TEXT NOT NULL,\n"
	"  dest_id TEXT NOT NULL,\n"
	"  trigger_name TEXT NOT NULL,\n"
	"  opened_at INTEGER NOT NULL,\n"
	"  resolved_at INTEGER,\n"
	"  run_id INTEGER,\n"
	"  last_run_id INTEGER,\n"
	"  last_seen_at INTEGER NOT NULL,\n"
	"  hits INTEGER NOT NULL DEFAULT 1,\n"
	"  summary TEXT NOT NULL\n"
	");\n"
	"CREATE UNIQUE INDEX IF NOT EXISTS alert_incidents_open ON alert_incidents (alert_id, dest_id, trigger_name)"
	" WHERE resolved_at IS NULL;\n"
	"CREATE INDEX IF NOT EXISTS alert_incidents_alert ON alert_incidents (alert_id, id);\n"
	"CREATE TABLE IF NOT EXISTS alert_deliveries (\n"
	"  id INTEGER PRIMARY KEY,\n"
	"  incident_id INTEGER,\n"
	"  alert_id TEXT NOT NULL,\n"
	"  dest_id TEXT,\n"
	"  event TEXT NOT NULL CHECK (event IN ('opened', 'resolved', 'test')),\n"
	"  body TEXT NOT NULL,\n"
	"  status TEXT NOT NULL CHECK (status IN ('pending', 'sending', 'sent', 'failed')),\n"
	"  attempts INTEGER NOT NULL DEFAULT 0,\n"
	"  next_at INTEGER NOT NULL,\n"
	"  lease_until INTEGER,\n"
	"  last_error TEXT,\n"
	"  created_at INTEGER NOT NULL,\n"
	"  sent_at INTEGER\n"
	");\n"
	"CREATE INDEX IF NOT EXISTS alert_deliveries_due ON alert_deliveries (status, next_at);\n"
	"CREATE INDEX IF NOT EXISTS alert_deliveries_alert ON alert_deliveries (alert_id, id);\n"
	"CREATE TABLE IF NOT EXISTS alert_observations (\n"
	"  dest_id TEXT PRIMARY KEY NOT NULL,\n"
	"  run_id INTEGER NOT NULL,\n"
	"  records INTEGER NOT NULL,\n"
	"  at INTEGER NOT NULL\n"
	");\n",
	/*
	 * 5 -> 6: the sync log (engine/synclog.h). synclog_outbox holds the record outcomes
	 * of a destination with a sync log, written in the transaction that commits them
	 * here, until they are in the log database; synclog_runs says, per run, whether its
	 * log was written. Neither is exported: the outbox is a queue, not state.
	 * IF NOT EXISTS: a store made by hand to look older (tests) may have them already.
	 */
	"CREATE TABLE IF NOT EXISTS synclog_outbox (\n"
	"  id INTEGER PRIMARY KEY,\n"
	"  dest_id TEXT NOT NULL,\n"
	"  run_id INTEGER NOT NULL,\n"
	"  body BLOB NOT NULL,\n"
	"  created_at INTEGER NOT NULL\n"
	");\n"
	"CREATE INDEX IF NOT EXISTS synclog_outbox_dest ON synclog_outbox (dest_id, id);\n"
	"CREATE TABLE IF NOT EXISTS synclog_runs (\n"
	"  run_id INTEGER PRIMARY KEY,\n"
	"  dest_id TEXT NOT NULL,\n"
	"  status TEXT NOT NULL,\n"
	"  written INTEGER NOT NULL,\n"
	"  pending INTEGER NOT NULL,\n"
	"  error TEXT,\n"
	"  updated_at INTEGER NOT NULL\n"
	");\n"
	"CREATE INDEX IF NOT EXISTS synclog_runs_dest ON synclog_runs (dest_id, status);\n",
	/* 6 -> 7: what started each run and the records it read (state/runnotes.h); not
	 * exported: a note about the history, not what Braze has */
	"CREATE TABLE IF NOT EXISTS run_notes (\n"
	"  run_id INTEGER PRIMARY KEY,\n"
	"  run_trigger TEXT,\n"
	"  records_read INTEGER\n"
	");\n",
	/* 7 -> 8: config generations (state/confgen.h); not exported: they describe the
	 * processes' configs, not what Braze has */
	"CREATE TABLE IF NOT EXISTS config_generations (\n"
	"  generation TEXT PRIMARY KEY NOT NULL,\n"
	"  snapshot TEXT,\n"
	"  withheld TEXT,\n"
	"  origin TEXT NOT NULL,\n"
	"  published_at INTEGER NOT NULL\n"
	");\n",
	/* 8 -> 9: the field names of packed payloads (state/sqlite/names.c): a records row
	 * may store its payload as \x1e <id> \x1e <values...> \x1e <groups>, the names in
	 * row id; rows are only ever added. Not exported: an export holds payloads unpacked.
	 * A payload stored before that starts with 0x1e (never canonical, but kept) gets the
	 * escape the new form gives it, so that it is not read as a packed one. */
	"CREATE TABLE IF NOT EXISTS payload_names (\n"
	"  id INTEGER PRIMARY KEY,\n"
	"  names TEXT NOT NULL UNIQUE\n"
	");\n"
	"UPDATE records SET payload = char(30) || payload WHERE substr(CAST(payload AS BLOB), 1, 1) = x'1e';\n",
};

const size_t state_n_migrations = ARRAY_SIZE(state_migrations);

_Static_assert(ARRAY_SIZE(state_migrations) == STATE_SCHEMA_VERSION,
	       "one migration step per schema version");

/* ---- PostgreSQL ---- */

/*
 * The same tables and columns as SQLite, in the store's own schema (search_path is set
 * to it, so the names are unqualified). Differences, each for a reason:
 * - A record key is three columns: key_kind (0 integer, 1 text), key_int and key_text
 *   (the bytes, BYTEA). ORDER BY key_kind, key_int, key_text is key_compare(): integers
 *   numerically and first, text bytewise with the shorter first, whatever the
 *   database's collation and encoding. The primary key has this order, so the cursor
 *   needs no sort.
 * - Flags are BOOLEAN; times and counts BIGINT; ids are identity columns.
 * - Text identifiers that are exported in their order (dest_id, schedule_id) are
 *   COLLATE "C", bytewise like SQLite's BINARY.
 * - meta also holds application_id, the equivalent of SQLite's PRAGMA.
 */
#define PG_KEY_COLUMNS                                                                   \
	"  key_kind SMALLINT NOT NULL CHECK (key_kind IN (0, 1)),\n"                       \
	"  key_int BIGINT NOT NULL DEFAULT 0,\n"                                            \
	"  key_text BYTEA NOT NULL DEFAULT ''::bytea,\n"                                    \
	"  CHECK (key_kind = 1 OR key_text = ''::bytea),\n"                                 \
	"  CHECK (key_kind = 0 OR key_int = 0),\n"

/* The counts of a run (struct run_counts), in runs and in a work item that ran part of one. */
#define PG_COUNT_COLUMNS                                                                 \
	"  created BIGINT NOT NULL DEFAULT 0,\n"                                            \
	"  updated BIGINT NOT NULL DEFAULT 0,\n"                                            \
	"  deleted BIGINT NOT NULL DEFAULT 0,\n"                                            \
	"  unsubscribed BIGINT NOT NULL DEFAULT 0,\n"                                       \
	"  unchanged BIGINT NOT NULL DEFAULT 0,\n"                                          \
	"  failed BIGINT NOT NULL DEFAULT 0,\n"                                             \
	"  skipped BIGINT NOT NULL DEFAULT 0,\n"                                            \
	"  requests BIGINT NOT NULL DEFAULT 0,\n"                                           \
	"  retries BIGINT NOT NULL DEFAULT 0,\n"                                            \
	"  throttled BIGINT NOT NULL DEFAULT 0,\n"                                          \
	"  data_points BIGINT NOT NULL DEFAULT 0,\n"

static const char pg_schema_v2[] =
	"CREATE TABLE meta (\n"
	"  key TEXT PRIMARY KEY,\n"
	"  value TEXT NOT NULL\n"
	");\n"
	"CREATE TABLE records (\n"
	"  dest_id TEXT COLLATE \"C\" NOT NULL,\n"
	PG_KEY_COLUMNS
	"  payload TEXT NOT NULL,\n"
	"  hash BYTEA NOT NULL CHECK (length(hash) = 16),\n"
	"  in_scope BOOLEAN NOT NULL,\n"
	"  pending BOOLEAN NOT NULL DEFAULT false,\n"
	"  attempts INTEGER NOT NULL DEFAULT 0,\n"
	"  last_error TEXT,\n"
	"  braze_exists BOOLEAN,\n"
	"  checked_at BIGINT,\n"
	"  confirmed_at BIGINT,\n"
	"  updated_at BIGINT NOT NULL,\n"
	"  PRIMARY KEY (dest_id, key_kind, key_int, key_text)\n"
	");\n"
	"CREATE TABLE runs (\n"
	"  id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,\n"
	"  dest_id TEXT NOT NULL,\n"
	"  kind TEXT NOT NULL CHECK (kind IN ('run', 'plan')),\n"
	"  status TEXT NOT NULL CHECK (status IN ('running', 'success', 'failed', 'interrupted')),\n"
	"  started_at BIGINT NOT NULL,\n"
	"  finished_at BIGINT,\n"
	PG_COUNT_COLUMNS
	"  error TEXT\n"
	");\n"
	"CREATE INDEX runs_dest ON runs (dest_id, id);\n"
	"CREATE TABLE ledger (\n"
	"  id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,\n"
	"  run_id BIGINT REFERENCES runs (id) ON DELETE CASCADE,\n"
	"  dest_id TEXT NOT NULL,\n"
	PG_KEY_COLUMNS
	"  error TEXT NOT NULL,\n"
	"  attempts INTEGER NOT NULL,\n"
	"  at BIGINT NOT NULL\n"
	");\n"
	"CREATE INDEX ledger_key ON ledger (dest_id, key_kind, key_int, key_text);\n"
	"CREATE INDEX ledger_run ON ledger (run_id);\n"
	"CREATE TABLE locks (\n"
	"  dest_id TEXT COLLATE \"C\" PRIMARY KEY,\n"
	"  holder TEXT NOT NULL,\n"
	"  host TEXT NOT NULL,\n"
	"  pid BIGINT NOT NULL,\n"
	"  token BIGINT NOT NULL,\n"
	"  acquired_at BIGINT NOT NULL,\n"
	"  heartbeat_at BIGINT NOT NULL\n"
	");\n"
	"CREATE TABLE marks (\n"
	"  schedule_id TEXT COLLATE \"C\" PRIMARY KEY,\n"
	"  value TEXT NOT NULL,\n"
	"  updated_at BIGINT NOT NULL\n"
	");\n";

/*
 * Version 3: the work queue of `joey worker` (docs/scaling.md) and the rate buckets
 * the workers share. Not exported (state_tables): they describe work in flight, not
 * what Braze has. Times are epoch ms; expires_at and rate_buckets.updated_at are on
 * the database's clock (clock_timestamp()), so the machines' clocks do not matter.
 * - work_jobs: one run of some destinations of a model. lock_token is the token of
 *   the destination locks (locks table) it holds until it is closed; dedup is unique
 *   (a schedule's fire time), so a fire is enqueued once however many processes try.
 * - work_items: one destination and key range [lo, hi) of a job (NULL kind: open
 *   bound; the key columns as in records). queued -> running (worker, lease until
 *   expires_at, claims + 1) -> finished (run_status, counts, seen: the largest since
 *   value read, read_ok). A running item whose lease expired is claimed again.
 * - rate_buckets: a token bucket per Braze workspace and endpoint (state_rate_take).
 */
static const char pg_schema_v3[] =
	"CREATE TABLE work_jobs (\n"
	"  id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,\n"
	"  dedup TEXT COLLATE \"C\" UNIQUE,\n"
	"  model_id TEXT NOT NULL,\n"
	"  schedule_id TEXT,\n"
	"  since TEXT,\n"
	"  force BOOLEAN NOT NULL DEFAULT false,\n"
	"  max_delete_percent DOUBLE PRECISION,\n"
	"  lock_token BIGINT NOT NULL,\n"
	"  status TEXT NOT NULL CHECK (status IN ('running', 'success', 'failed', 'interrupted')),\n"
	"  mark TEXT,\n"
	"  created_at BIGINT NOT NULL,\n"
	"  finished_at BIGINT\n"
	");\n"
	"CREATE INDEX work_jobs_status ON work_jobs (status, id);\n"
	"CREATE TABLE work_items (\n"
	"  id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,\n"
	"  job_id BIGINT NOT NULL REFERENCES work_jobs (id) ON DELETE CASCADE,\n"
	"  dest_id TEXT COLLATE \"C\" NOT NULL,\n"
	"  run_id BIGINT NOT NULL,\n"
	"  part INTEGER NOT NULL,\n"
	"  n_parts INTEGER NOT NULL,\n"
	"  lo_kind SMALLINT CHECK (lo_kind IN (0, 1)),\n"
	"  lo_int BIGINT,\n"
	"  lo_text BYTEA,\n"
	"  hi_kind SMALLINT CHECK (hi_kind IN (0, 1)),\n"
	"  hi_int BIGINT,\n"
	"  hi_text BYTEA,\n"
	"  status TEXT NOT NULL CHECK (status IN ('queued', 'running', 'finished')),\n"
	"  worker TEXT,\n"
	"  claims INTEGER NOT NULL DEFAULT 0,\n"
	"  claimed_at BIGINT,\n"
	"  expires_at BIGINT,\n"
	"  finished_at BIGINT,\n"
	"  run_status TEXT CHECK (run_status IN ('success', 'failed', 'interrupted')),\n"
	PG_COUNT_COLUMNS
	"  deletes_held BIGINT NOT NULL DEFAULT 0,\n"
	"  seen TEXT,\n"
	"  read_ok BOOLEAN NOT NULL DEFAULT false,\n"
	"  error TEXT,\n"
	"  UNIQUE (job_id, dest_id, part)\n"
	");\n"
	"CREATE INDEX work_items_claim ON work_items (status, job_id, id);\n"
	"CREATE TABLE rate_buckets (\n"
	"  key TEXT COLLATE \"C\" PRIMARY KEY,\n"
	"  tokens DOUBLE PRECISION NOT NULL,\n"
	"  capacity DOUBLE PRECISION NOT NULL,\n"
	"  rate_per_ms DOUBLE PRECISION NOT NULL,\n"
	"  granted DOUBLE PRECISION NOT NULL DEFAULT 0,\n"
	"  updated_at DOUBLE PRECISION NOT NULL\n"
	");\n";

/*
 * Version 4: the warehouse diff's digests (engine/warehouse.h, docs/internals/warehouse.md).
 * One row per destination and record key whose source rows the warehouse diff read:
 * digest is the destination's configuration fingerprint followed by the MD5 of each
 * source's row (zeros for a source without one), as the database computed them; hash
 * is the hash of the payload those values make, NULL when they put the record out of
 * the destination's scope. A row is a fact about the configuration and the data, not
 * about Braze: it may be written before Braze confirms anything, and it is a cache
 * (losing it costs one full read), so it is not exported.
 */
static const char pg_schema_v4[] =
	"CREATE TABLE digests (\n"
	"  dest_id TEXT COLLATE \"C\" NOT NULL,\n"
	PG_KEY_COLUMNS
	"  digest BYTEA NOT NULL,\n"
	"  hash BYTEA CHECK (length(hash) = 16),\n"
	"  updated_at BIGINT NOT NULL,\n"
	"  PRIMARY KEY (dest_id, key_kind, key_int, key_text)\n"
	");\n";

/* Version 6: the sync log's outbox and per-run status (see the SQLite step 5 -> 6). */
static const char pg_schema_v6[] =
	"CREATE TABLE IF NOT EXISTS synclog_outbox (\n"
	"  id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,\n"
	"  dest_id TEXT COLLATE \"C\" NOT NULL,\n"
	"  run_id BIGINT NOT NULL,\n"
	"  body BYTEA NOT NULL,\n"
	"  created_at BIGINT NOT NULL\n"
	");\n"
	"CREATE INDEX IF NOT EXISTS synclog_outbox_dest ON synclog_outbox (dest_id, id);\n"
	"CREATE TABLE IF NOT EXISTS synclog_runs (\n"
	"  run_id BIGINT PRIMARY KEY,\n"
	"  dest_id TEXT COLLATE \"C\" NOT NULL,\n"
	"  status TEXT NOT NULL,\n"
	"  written BIGINT NOT NULL,\n"
	"  pending BIGINT NOT NULL,\n"
	"  error TEXT,\n"
	"  updated_at BIGINT NOT NULL\n"
	");\n"
	"CREATE INDEX IF NOT EXISTS synclog_runs_dest ON synclog_runs (dest_id, status);\n";

/*
 * A fresh PostgreSQL store is created at version 2 in one step, then brought up by
 * the later steps; each later version appends a step from the previous one (from ==
 * the last step's to).
 */
/*
 * Version 5: alerts (src/alert, state/alerts.h), the same tables as on SQLite.
 * - alert_incidents: one row per alert, destination and trigger while its condition
 *   holds (resolved_at NULL; at most one such row, the partial unique index) and after.
 * - alert_deliveries: the messages to send (opened, resolved, test), retried with
 *   backoff (next_at) until sent or failed; status sending with lease_until while a
 *   process sends it (a process that died leaves it to be taken again).
 * - alert_observations: the records a destination's last full read had (the
 *   recordsDropPercent trigger compares with it).
 * Not exported (state_tables): they say what joey told people, not what Braze has.
 */
static const char pg_schema_v5[] =
	"CREATE TABLE IF NOT EXISTS alert_incidents (\n"
	"  id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,\n"
	"  alert_id TEXT NOT NULL,\n"
	"  dest_id TEXT NOT NULL,\n"
	"  trigger_name TEXT NOT NULL,\n"
	"  opened_at BIGINT NOT NULL,\n"
	"  resolved_at BIGINT,\n"
	"  run_id BIGINT,\n"
	"  last_run_id BIGINT,\n"
	"  last_seen_at BIGINT NOT NULL,\n"
	"  hits BIGINT NOT NULL DEFAULT 1,\n"
	"  summary TEXT NOT NULL\n"
	");\n"
	"CREATE UNIQUE INDEX IF NOT EXISTS alert_incidents_open ON alert_incidents (alert_id, dest_id, trigger_name)"
	" WHERE resolved_at IS NULL;\n"
	"CREATE INDEX IF NOT EXISTS alert_incidents_alert ON alert_incidents (alert_id, id);\n"
	"CREATE TABLE IF NOT EXISTS alert_deliveries (\n"
	"  id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,\n"
	"  incident_id BIGINT,\n"
	"  alert_id TEXT NOT NULL,\n"
	"  dest_id TEXT,\n"
	"  event TEXT NOT NULL CHECK (event IN ('opened', 'resolved', 'test')),\n"
	"  body TEXT NOT NULL,\n"
	"  status TEXT NOT NULL CHECK (status IN ('pending', 'sending', 'sent', 'failed')),\n"
	"  attempts INTEGER NOT NULL DEFAULT 0,\n"
	"  next_at BIGINT NOT NULL,\n"
	"  lease_until BIGINT,\n"
	"  last_error TEXT,\n"
	"  created_at BIGINT NOT NULL,\n"
	"  sent_at BIGINT\n"
	");\n"
	"CREATE INDEX IF NOT EXISTS alert_deliveries_due ON alert_deliveries (status, next_at);\n"
	"CREATE INDEX IF NOT EXISTS alert_deliveries_alert ON alert_deliveries (alert_id, id);\n"
	"CREATE TABLE IF NOT EXISTS alert_observations (\n"
	"  dest_id TEXT COLLATE \"C\" PRIMARY KEY,\n"
	"  run_id BIGINT NOT NULL,\n"
	"  records BIGINT NOT NULL,\n"
	"  at BIGINT NOT NULL\n"
	");\n";

/* Version 7: run_notes, as on SQLite (step 6 -> 7). */
static const char pg_schema_v7[] =
	"CREATE TABLE IF NOT EXISTS run_notes (\n"
	"  run_id BIGINT PRIMARY KEY,\n"
	"  run_trigger TEXT,\n"
	"  records_read BIGINT\n"
	");\n";

/*
 * Version 8: config generations (see the SQLite step 7 -> 8); each job records the
 * generation it was queued with, and every schedule's mark at queue time (a JSON
 * object schedule id -> mark; NULL: only the primary's, in since).
 */
static const char pg_schema_v8[] =
	"CREATE TABLE IF NOT EXISTS config_generations (\n"
	"  generation TEXT PRIMARY KEY,\n"
	"  snapshot TEXT,\n"
	"  withheld TEXT,\n"
	"  origin TEXT NOT NULL,\n"
	"  published_at BIGINT NOT NULL\n"
	");\n"
	"ALTER TABLE work_jobs ADD COLUMN IF NOT EXISTS config_gen TEXT;\n"
	"ALTER TABLE work_jobs ADD COLUMN IF NOT EXISTS marks TEXT;\n";

/*
 * Version 9: payload_names, as on SQLite (step 8 -> 9), so that both back ends have the
 * same tables. PostgreSQL stores its payloads as JSON text still: packing them saves
 * the server's work, not joey's, and no PostgreSQL row refers to payload_names yet.
 */
static const char pg_schema_v9[] =
	"CREATE TABLE IF NOT EXISTS payload_names (\n"
	"  id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,\n"
	"  names TEXT NOT NULL UNIQUE\n"
	");\n";

const struct state_pg_step state_pg_steps[] = {
	{ 0, 2, pg_schema_v2 },
	{ 2, 3, pg_schema_v3 },
	{ 3, 4, pg_schema_v4 },
	{ 4, 5, pg_schema_v5 },
	{ 5, 6, pg_schema_v6 },
	{ 6, 7, pg_schema_v7 },
	{ 7, 8, pg_schema_v8 },
	{ 8, 9, pg_schema_v9 },
};

const size_t state_pg_n_steps = ARRAY_SIZE(state_pg_steps);

_Static_assert(ARRAY_SIZE(state_pg_steps) >= 1, "a PostgreSQL schema");

/* ---- the tables as export and import see them (state.h) ---- */

static const struct state_column records_cols[] = {
	{ "dest_id", STATE_COL_TEXT, false },
	{ "key", STATE_COL_KEY, false },
	{ "payload", STATE_COL_TEXT, false },
	{ "hash", STATE_COL_HASH, false },
	{ "in_scope", STATE_COL_BOOL, false },
	{ "pending", STATE_COL_BOOL, false },
	{ "attempts", STATE_COL_INT, false },
	{ "last_error", STATE_COL_TEXT, true },
	{ "braze_exists", STATE_COL_BOOL, true },
	{ "checked_at", STATE_COL_INT, true },
	{ "confirmed_at", STATE_COL_INT, true },
	{ "updated_at", STATE_COL_INT, false },
};

static const struct state_column runs_cols[] = {
	{ "id", STATE_COL_INT, false },
	{ "dest_id", STATE_COL_TEXT, false },
	{ "kind", STATE_COL_TEXT, false },
	{ "status", STATE_COL_TEXT, false },
	{ "started_at", STATE_COL_INT, false },
	{ "finished_at", STATE_COL_INT, true },
	{ "created", STATE_COL_INT, false },
	{ "updated", STATE_COL_INT, false },
	{ "deleted", STATE_COL_INT, false },
	{ "unsubscribed", STATE_COL_INT, false },
	{ "unchanged", STATE_COL_INT, false },
	{ "failed", STATE_COL_INT, false },
	{ "skipped", STATE_COL_INT, false },
	{ "requests", STATE_COL_INT, false },
	{ "retries", STATE_COL_INT, false },
	{ "throttled", STATE_COL_INT, false },
	{ "data_points", STATE_COL_INT, false },
	{ "error", STATE_COL_TEXT, true },
};

static const struct state_column ledger_cols[] = {
	{ "id", STATE_COL_INT, false },
	{ "run_id", STATE_COL_INT, true },
	{ "dest_id", STATE_COL_TEXT, false },
	{ "key", STATE_COL_KEY, false },
	{ "error", STATE_COL_TEXT, false },
	{ "attempts", STATE_COL_INT, false },
	{ "at", STATE_COL_INT, false },
};

static const struct state_column locks_cols[] = {
	{ "dest_id", STATE_COL_TEXT, false },
	{ "holder", STATE_COL_TEXT, false },
	{ "host", STATE_COL_TEXT, false },
	{ "pid", STATE_COL_INT, false },
	{ "token", STATE_COL_INT, false },
	{ "acquired_at", STATE_COL_INT, false },
	{ "heartbeat_at", STATE_COL_INT, false },
};

static const struct state_column marks_cols[] = {
	{ "schedule_id", STATE_COL_TEXT, false },
	{ "value", STATE_COL_TEXT, false },
	{ "updated_at", STATE_COL_INT, false },
};

#define TABLE(name, since, n_pk, cols) { name, since, n_pk, ARRAY_SIZE(cols), cols }

const struct state_table state_tables[] = {
	TABLE("records", 1, 2, records_cols),
	TABLE("runs", 1, 1, runs_cols),
	TABLE("ledger", 1, 1, ledger_cols),
	TABLE("locks", 1, 1, locks_cols),
	TABLE("marks", 2, 1, marks_cols),
};

const size_t state_n_tables = ARRAY_SIZE(state_tables);

_Static_assert(ARRAY_SIZE(state_tables) <= STATE_MAX_TABLES, "STATE_MAX_TABLES");
_Static_assert(ARRAY_SIZE(runs_cols) <= STATE_MAX_COLUMNS, "STATE_MAX_COLUMNS");
_Static_assert(ARRAY_SIZE(records_cols) <= STATE_MAX_COLUMNS, "STATE_MAX_COLUMNS");
