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
	"  created BIGINT NOT NULL DEFAULT 0,\n"
	"  updated BIGINT NOT NULL DEFAULT 0,\n"
	"  deleted BIGINT NOT NULL DEFAULT 0,\n"
	"  unsubscribed BIGINT NOT NULL DEFAULT 0,\n"
	"  unchanged BIGINT NOT NULL DEFAULT 0,\n"
	"  failed BIGINT NOT NULL DEFAULT 0,\n"
	"  skipped BIGINT NOT NULL DEFAULT 0,\n"
	"  requests BIGINT NOT NULL DEFAULT 0,\n"
	"  retries BIGINT NOT NULL DEFAULT 0,\n"
	"  throttled BIGINT NOT NULL DEFAULT 0,\n"
	"  data_points BIGINT NOT NULL DEFAULT 0,\n"
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
 * A fresh PostgreSQL store is created at the current version in one step; later
 * versions append steps from the previous one (from == the last step's to).
 */
const struct state_pg_step state_pg_steps[] = {
	{ 0, 2, pg_schema_v2 },
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
