/*
 * store_floor.c: bench helper: what SQLite alone costs for the rows a first sync writes,
 * the floor under bench_state_put (joey's state write path) and issue #15's target.
 * Usage: bench_store_floor DB_PATH N PAYLOAD_BYTES [int-dest] [insert] [checkpoint=PAGES]
 * Writes N rows into a fresh records table of joey's SQLite schema (schema.c, version
 * 1 columns), 4096 rows a transaction through the 64-row upsert joey prepares
 * (sqlite/records.c put_batch_stmt), WAL, synchronous=NORMAL, 16 KiB pages, each row a
 * PAYLOAD_BYTES payload; then prints the process CPU (user + system) and wall time.
 * Variants, to weigh a change before making it: int-dest (dest_id an INTEGER, not the
 * destination's id as text), insert (a plain INSERT, no ON CONFLICT), checkpoint=PAGES
 * (wal_autocheckpoint). Measured 2026-12-08 on the 2-core machine, N 1000000,
 * PAYLOAD_BYTES 113 (the packed payload of bench/export.sh's users): 0.78-0.82 s; int-dest
 * 5% less; insert and checkpoint=10000 no change; 60-byte payloads 0.66 s.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "bench_time.h"

#define ROWS_PER_STMT 64
#define ROWS_PER_COMMIT 4096

static int fail(sqlite3 *db, const char *what)
{
	fprintf(stderr, "bench_store_floor: could not %s: %s\n", what, db ? sqlite3_errmsg(db) : "out of memory");
	return 1;
}

/* sql exec'd on db: 0, or 1 after the message. */
static int exec(sqlite3 *db, const char *sql, const char *what)
{
	return sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK ? 0 : fail(db, what);
}

int main(int argc, char **argv)
{
	if (argc < 4) {
		fprintf(stderr, "usage: bench_store_floor DB_PATH N PAYLOAD_BYTES [int-dest] [insert] [checkpoint=PAGES]\n");
		return 2;
	}
	const char *path = argv[1];
	long n = atol(argv[2]), plen = atol(argv[3]), ckpt = 1000;
	int int_dest = 0, upsert = 1;
	for (int i = 4; i < argc; i++) {
		if (!strcmp(argv[i], "int-dest"))
			int_dest = 1;
		else if (!strcmp(argv[i], "insert"))
			upsert = 0;
		else if (!strncmp(argv[i], "checkpoint=", 11))
			ckpt = atol(argv[i] + 11);
		else {
			fprintf(stderr, "bench_store_floor: unknown variant \"%s\"\n", argv[i]);
			return 2;
		}
	}
	if (n <= 0 || plen <= 0 || plen > 100000 || ckpt <= 0) {
		fprintf(stderr, "bench_store_floor: N, PAYLOAD_BYTES and PAGES must be positive\n");
		return 2;
	}
	char wal[4096];
	snprintf(wal, sizeof(wal), "%s-wal", path);
	unlink(path);
	unlink(wal);

	sqlite3 *db = NULL;
	sqlite3_stmt *s = NULL;
	char *payload = malloc((size_t)plen), *sql = malloc(65536);
	int rc = 1;
	if (!payload || !sql || sqlite3_open(path, &db) != SQLITE_OK) {
		rc = fail(db, "open the database");
		goto out;
	}
	memset(payload, 'x', (size_t)plen);
	snprintf(sql, 65536, "PRAGMA page_size = 16384; PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;"
			     " PRAGMA wal_autocheckpoint = %ld;", ckpt);
	if (exec(db, sql, "configure the database"))
		goto out;
	snprintf(sql, 65536,
		 "CREATE TABLE records (dest_id %s NOT NULL, key NOT NULL, payload TEXT NOT NULL,"
		 " hash BLOB NOT NULL CHECK (length(hash) = 16), in_scope INTEGER NOT NULL CHECK (in_scope IN (0, 1)),"
		 " pending INTEGER NOT NULL DEFAULT 0 CHECK (pending IN (0, 1)), attempts INTEGER NOT NULL DEFAULT 0,"
		 " last_error TEXT, braze_exists INTEGER CHECK (braze_exists IN (0, 1)), checked_at INTEGER,"
		 " confirmed_at INTEGER, updated_at INTEGER NOT NULL, PRIMARY KEY (dest_id, key)) WITHOUT ROWID",
		 int_dest ? "INTEGER" : "TEXT");
	if (exec(db, sql, "create the records table"))
		goto out;
	size_t at = (size_t)snprintf(sql, 65536, "INSERT INTO records (dest_id, key, payload, hash, in_scope, pending,"
						 " attempts, last_error, confirmed_at, updated_at) VALUES ");
	for (int i = 0; i < ROWS_PER_STMT; i++) {
		int k = i * 6;
		at += (size_t)snprintf(sql + at, 65536 - at,
				       "%s(?%d, ?%d, ?%d, ?%d, ?%d, 0, 0, NULL, CASE WHEN ?%d = zeroblob(16) THEN NULL"
				       " ELSE ?%d END, ?%d)",
				       i ? ", " : "", k + 1, k + 2, k + 3, k + 4, k + 5, k + 4, k + 6, k + 6);
	}
	if (upsert)
		snprintf(sql + at, 65536 - at,
			 " ON CONFLICT (dest_id, key) DO UPDATE SET payload = excluded.payload, hash = excluded.hash,"
			 " in_scope = excluded.in_scope, pending = 0, attempts = 0, last_error = NULL,"
			 " confirmed_at = excluded.confirmed_at, updated_at = excluded.updated_at");
	if (sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, &s, NULL) != SQLITE_OK) {
		rc = fail(db, "prepare the upsert");
		goto out;
	}

	static const unsigned char hash[16] = { 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7 };
	double c0 = cpu_s(), w0 = wall_s();
	long row = 0;
	while (row < n) {
		if (exec(db, "BEGIN", "begin a transaction"))
			goto out;
		for (int b = 0; b < ROWS_PER_COMMIT / ROWS_PER_STMT && row < n; b++) {
			/* a short last statement repeats its last row: the upsert keeps one */
			for (int i = 0; i < ROWS_PER_STMT; i++) {
				int k = i * 6;
				long key = row + 1 < n ? row + 1 : n;
				if (int_dest)
					sqlite3_bind_int(s, k + 1, 1);
				else
					sqlite3_bind_text(s, k + 1, "braze_users", 11, SQLITE_STATIC);
				sqlite3_bind_int64(s, k + 2, key);
				sqlite3_bind_text(s, k + 3, payload, (int)plen, SQLITE_STATIC);
				sqlite3_bind_blob(s, k + 4, hash, sizeof(hash), SQLITE_STATIC);
				sqlite3_bind_int(s, k + 5, 1);
				sqlite3_bind_int64(s, k + 6, 1700000000000LL);
				if (row < n)
					row++;
			}
			if (sqlite3_step(s) != SQLITE_DONE) {
				rc = fail(db, upsert ? "upsert rows" : "insert rows (a short last statement repeats a key: use the upsert)");
				goto out;
			}
			sqlite3_reset(s);
		}
		if (exec(db, "COMMIT", "commit"))
			goto out;
	}
	printf("%ld rows, %ld-byte payloads, dest_id %s, %s, wal_autocheckpoint %ld: %.2f s CPU, %.2f s wall\n", n,
	       plen, int_dest ? "INTEGER" : "TEXT", upsert ? "upsert" : "insert", ckpt, cpu_s() - c0, wall_s() - w0);
	rc = 0;
out:
	sqlite3_finalize(s);
	sqlite3_close(db);
	free(payload);
	free(sql);
	return rc;
}
