/* schema.c: the state store's schema, as an append-only list of migration steps. */
#include "state/schema.h"

#include "base/compat.h"
#include "state/state.h"

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
