/* pg.c: tests of what only the PostgreSQL state store has (src/state/pg/); needs $JOEY_PG_URL. */
#include "state/backends.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/*
 * The behaviour every back end shares is tested in state.c (which runs against
 * PostgreSQL too). Here: the URL (passwords are never shown), the server (unreachable,
 * wrong password), the schema (a foreign one is refused), what PostgreSQL does
 * differently (an error inside a transaction ends it, writers race for a lock or a
 * fresh schema), and a round trip between the back ends. Skipped without JOEY_PG_URL.
 */

#define NEED_PG()                                                                          \
	do {                                                                               \
		if (!tb_pg_url())                                                          \
			skip();                                                            \
	} while (0)

/* JOEY_PG_URL with its password replaced by pw (NULL: none) and more appended. */
static char *url_with(const char *pw, const char *port, const char *more)
{
	char user[128], pass[128], host[128], p[16], db[128];
	struct strbuf sb = STRBUF_INIT;
	const char *u = strstr(tb_pg_url(), "://") + 3;
	if (sscanf(u, "%127[^:]:%127[^@]@%127[^:]:%15[^/]/%127[^?]", user, pass, host, p, db) != 5)
		fail_msg("JOEY_PG_URL is not postgresql://user:password@host:port/db");
	strbuf_addf(&sb, "postgresql://%s%s%s@%s:%s/%s%s", user, pw ? ":" : "", pw ? pw : "", host,
		    port ? port : p, db, more ? more : "");
	return strbuf_detach(&sb, NULL);
}

static char *password_of_url(void)
{
	char user[128], pass[128];
	const char *u = strstr(tb_pg_url(), "://") + 3;
	if (sscanf(u, "%127[^:]:%127[^@]@", user, pass) != 2)
		fail_msg("JOEY_PG_URL has no password");
	return xstrdup(pass);
}

static void assert_no_secret(const struct jerror *err, const char *secret)
{
	assert_null(strstr(err->msg.buf, secret));
	assert_null(strstr(err->detail.buf, secret));
	assert_null(strstr(err->hint.buf, secret));
}

static void test_url_and_password(void **s)
{
	NEED_PG();
	struct state *st = NULL;
	struct jerror err = JERROR_INIT;
	char *good_pw = password_of_url();
	char *wrong = url_with("wrong-secret-pw", NULL, "?schema=joey_ut_never");
	char *closed = url_with("closed-secret-pw", "1", NULL);
	char *bad_schema = url_with("x", NULL, "?schema=a%20b");
	char *bad_param = url_with("bad-secret-pw", NULL, "?bogus=1");
	char *no_pw = url_with(NULL, NULL, NULL);
	char *fresh = tb_fresh();
	struct strbuf shown = STRBUF_INIT;

	/* a wrong password: refused at once, naming host, port and database, not the password */
	assert_int_equal(state_open(wrong, STATE_OPEN_CREATE, &st, &err), JERR_STATE);
	assert_null(st);
	assert_non_null(strstr(err.msg.buf, "could not connect to the PostgreSQL state store at "));
	assert_non_null(strstr(err.msg.buf, ", database \""));
	assert_non_null(strstr(err.detail.buf, "password authentication failed"));
	assert_non_null(strstr(err.hint.buf, "PGPASSWORD"));
	assert_no_secret(&err, "wrong-secret-pw");

	/* nobody listening: retried, then given up */
	assert_int_equal(state_open(closed, STATE_OPEN_READONLY, &st, &err), JERR_STATE);
	assert_non_null(strstr(err.msg.buf, ":1, database \""));
	assert_non_null(strstr(err.hint.buf, "gave up after 3 tries"));
	assert_no_secret(&err, "closed-secret-pw");

	/* our own parameter, checked before connecting */
	assert_int_equal(state_open(bad_schema, STATE_OPEN_CREATE, &st, &err), JERR_STATE);
	assert_non_null(strstr(err.msg.buf, "schema \"a b\" is not a valid name"));

	/* a parameter libpq does not know */
	assert_int_equal(state_open(bad_param, STATE_OPEN_CREATE, &st, &err), JERR_STATE);
	assert_non_null(strstr(err.msg.buf, "is not valid"));
	assert_non_null(strstr(err.detail.buf, "bogus"));
	assert_no_secret(&err, "bad-secret-pw");

	/* what may be shown of a URL */
	state_path_display(wrong, &shown);
	assert_null(strstr(shown.buf, "wrong-secret-pw"));
	assert_non_null(strstr(shown.buf, "?schema=joey_ut_never"));
	assert_true(state_path_is_url(wrong));
	assert_true(state_path_is_url("postgres://h/d"));
	assert_false(state_path_is_url("postgres.db"));
	assert_false(state_path_is_url("./postgresql://x"));

	/* the password from PGPASSWORD */
	{
		struct strbuf u = STRBUF_INIT;
		strbuf_addf(&u, "%s%s", no_pw, strstr(fresh, "?schema="));
		assert_int_equal(state_open(u.buf, STATE_OPEN_CREATE, &st, &err), JERR_STATE);
		setenv("PGPASSWORD", good_pw, 1);
		st = tb_open(u.buf, STATE_OPEN_CREATE);
		unsetenv("PGPASSWORD");
		assert_null(strstr(state_path(st), good_pw));
		assert_non_null(strstr(state_path(st), "postgresql://"));
		assert_non_null(strstr(state_path(st), "?schema=joey_ut_"));
		state_close(st);
		strbuf_release(&u);
	}
	/* and the one in the URL is not shown either */
	st = tb_open(fresh, STATE_OPEN_READONLY);
	assert_null(strstr(state_path(st), good_pw));
	state_close(st);

	strbuf_release(&shown);
	jerror_release(&err);
	free(good_pw);
	free(wrong);
	free(closed);
	free(bad_schema);
	free(bad_param);
	free(no_pw);
	free(fresh);
}

static void test_foreign_and_empty_schema(void **s)
{
	NEED_PG();
	char *path = tb_fresh();
	const char *schema = tb_schema_of(path);
	struct strbuf sql = STRBUF_INIT;
	struct state *st = NULL;
	struct jerror err = JERROR_INIT;

	/* an empty schema is a fresh store: read-only says so, CREATE fills it */
	strbuf_addf(&sql, "CREATE SCHEMA %s", schema);
	tb_exec(NULL, sql.buf);
	assert_int_equal(state_open(path, STATE_OPEN_READONLY, &st, &err), JERR_STATE);
	assert_non_null(strstr(err.msg.buf, "is empty"));
	st = tb_open(path, STATE_OPEN_READONLY_OR_EMPTY);
	state_close(st);
	assert_int_equal(tb_objects(path), 0);

	/* a schema with someone else's tables is refused and left alone */
	strbuf_reset(&sql);
	strbuf_addf(&sql, "CREATE TABLE %s.users (id int, name text)", schema);
	tb_exec(NULL, sql.buf);
	for (int mode = 0; mode < 3; mode++) {
		assert_int_equal(state_open(path, (enum state_open_mode)mode, &st, &err), JERR_STATE);
		assert_null(st);
		assert_non_null(strstr(err.msg.buf, "is not a joey state store"));
		assert_non_null(strstr(err.detail.buf, "holds 1 tables but no joey meta table"));
		assert_non_null(strstr(err.hint.buf, "?schema=NAME"));
	}
	assert_int_equal(tb_objects(path), 1);

	/* a meta table that is not joey's */
	strbuf_reset(&sql);
	strbuf_addf(&sql, "CREATE TABLE %s.meta (key text, value text)", schema);
	tb_exec(NULL, sql.buf);
	assert_int_equal(state_open(path, STATE_OPEN_CREATE, &st, &err), JERR_STATE);
	assert_non_null(strstr(err.detail.buf, "without joey's application_id"));

	strbuf_release(&sql);
	jerror_release(&err);
	free(path);
}

static void test_limit_size_unsupported(void **s)
{
	NEED_PG();
	char *path = tb_fresh();
	struct state *st = tb_open(path, STATE_OPEN_CREATE);
	struct jerror err = JERROR_INIT;
	assert_int_equal(state_limit_size(st, 1 << 20, &err), JERR_STATE);
	assert_non_null(strstr(err.msg.buf, "is not supported on PostgreSQL"));
	state_close(st);
	jerror_release(&err);
	free(path);
}

static void test_cursor_uses_primary_key(void **s)
{
	NEED_PG();
	char *path = tb_fresh();
	PGconn *pg;
	PGresult *r;
	struct strbuf plan = STRBUF_INIT;

	state_close(tb_open(path, STATE_OPEN_CREATE));
	pg = tb_pg_connect(path);
	PQclear(PQexec(pg, "SET enable_seqscan = off"));
	r = PQexec(pg, "EXPLAIN SELECT payload FROM records WHERE dest_id = 'd' AND"
		       " (key_kind, key_int, key_text) > (0, 5, ''::bytea)"
		       " ORDER BY key_kind, key_int, key_text LIMIT 256");
	assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
	for (int i = 0; i < PQntuples(r); i++)
		strbuf_addf(&plan, "%s\n", PQgetvalue(r, i, 0));
	PQclear(r);
	PQfinish(pg);
	assert_non_null(strstr(plan.buf, "records_pkey"));
	assert_null(strstr(plan.buf, "Sort"));
	strbuf_release(&plan);
	free(path);
}

static void test_error_ends_the_transaction(void **s)
{
	NEED_PG();
	char *path = tb_fresh();
	struct state *st = tb_open(path, STATE_OPEN_CREATE);
	struct jerror err = JERROR_INIT;
	struct rkey k1 = IK(1);
	struct state_row *row = NULL;
	bool found = true;

	assert_int_equal(state_begin(st, &err), JERR_OK);
	tb_put(st, "d", k1, "{}", true);
	/* no run 999: the foreign key refuses it, and PostgreSQL aborts the transaction */
	assert_int_equal(state_ledger_add(st, 999, "d", &k1, "x", 1, &err), JERR_STATE);
	assert_non_null(strstr(err.detail.buf, "SQLSTATE 23503"));
	assert_int_equal(state_commit(st, &err), JERR_STATE);
	assert_non_null(strstr(err.msg.buf, "no transaction to commit"));
	state_rollback(st); /* harmless */
	assert_int_equal(state_get(st, "d", &k1, &row, &found, &err), JERR_OK);
	assert_false(found);
	/* and the next transaction works */
	assert_int_equal(state_begin(st, &err), JERR_OK);
	tb_put(st, "d", k1, "{}", true);
	assert_int_equal(state_commit(st, &err), JERR_OK);
	assert_int_equal(state_get(st, "d", &k1, &row, &found, &err), JERR_OK);
	assert_true(found);
	/* text that PostgreSQL cannot hold is cleaned in messages, never refused */
	assert_int_equal(state_mark_failed(st, "d", &k1, "bad \xff\xfe byte", (struct slice){ NULL, 0 }, &err), JERR_OK);
	assert_int_equal(state_get(st, "d", &k1, &row, &found, &err), JERR_OK);
	assert_true(slice_eq_str(row->last_error, "bad ?? byte"));
	state_close(st);
	jerror_release(&err);
	free(path);
}

/*
 * Fork n children that wait for go, run fn(store) and report whether it gave JERR_OK.
 * They stay alive until every one has reported, so a lock holder's process is not
 * gone (and its lock stale) while others still try. Returns how many succeeded.
 */
static int race_child; /* in a child of race(): which one (0..n-1) */

static int race(const char *store, int n, enum jerr (*fn)(const char *store))
{
	int go[2], res[2], done[2], ok = 0;
	pid_t kids[16];
	char c;
	assert_int_equal(pipe(go), 0);
	assert_int_equal(pipe(res), 0);
	assert_int_equal(pipe(done), 0);
	for (int i = 0; i < n; i++) {
		kids[i] = fork();
		assert_true(kids[i] >= 0);
		if (kids[i] == 0) {
			close(go[1]);
			close(res[0]);
			close(done[1]);
			race_child = i;
			if (read(go[0], &c, 1) < 0)
				_exit(3);
			c = fn(store) == JERR_OK ? 'y' : 'n';
			if (write(res[1], &c, 1) != 1)
				_exit(3);
			if (read(done[0], &c, 1) < 0)
				_exit(3);
			_exit(0);
		}
	}
	close(go[0]);
	close(res[1]);
	close(done[0]);
	close(go[1]); /* all start at once */
	for (int i = 0; i < n; i++) {
		assert_int_equal(read(res[0], &c, 1), 1);
		ok += c == 'y';
	}
	close(done[1]);
	close(res[0]);
	for (int i = 0; i < n; i++) {
		int status = 0;
		assert_int_equal(waitpid(kids[i], &status, 0), kids[i]);
		assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	}
	return ok;
}

static enum jerr take_lock(const char *store)
{
	struct state *st = NULL;
	struct jerror err = JERROR_INIT;
	enum jerr rc = state_open(store, STATE_OPEN_CREATE, &st, &err);
	if (!rc)
		rc = state_lock_acquire(st, "race", "racer", &err);
	if (rc && rc != JERR_STATE_BUSY)
		fprintf(stderr, "take_lock: %s / %s\n", err.msg.buf, err.detail.buf);
	/* leave the lock taken: the winner's process is then gone, nothing else */
	state_close(st);
	jerror_release(&err);
	return rc;
}

static enum jerr create_store(const char *store)
{
	struct state *st = NULL;
	struct jerror err = JERROR_INIT;
	enum jerr rc = state_open(store, STATE_OPEN_CREATE, &st, &err);
	if (rc)
		fprintf(stderr, "create_store: %s / %s\n", err.msg.buf, err.detail.buf);
	state_close(st);
	jerror_release(&err);
	return rc;
}

/*
 * Upsert the same keys as the other racer, child 0 in ascending order and child 1 in
 * descending: two workers writing Braze's answers for one key range (one resumed after
 * a pause, one that took its item over) come in any order. Several rounds, each one
 * transaction (one joey_put_rows).
 */
#define PUT_RACE_KEYS 3000
static enum jerr put_keys_racing(const char *store)
{
	struct state *st = NULL;
	struct jerror err = JERROR_INIT;
	unsigned char hash[STATE_HASH_LEN] = { 1 };
	enum jerr rc = state_open(store, STATE_OPEN_CREATE, &st, &err);
	for (int round = 0; round < 4 && !rc; round++) {
		rc = state_begin(st, &err);
		for (int k = 0; k < PUT_RACE_KEYS && !rc; k++) {
			struct rkey key = { .is_int = true, .i = race_child ? PUT_RACE_KEYS - 1 - k : k };
			rc = state_put(st, "d", &key, slice_of("{\"n\":1}"), hash, true, &err);
		}
		rc = rc ? (state_rollback(st), rc) : state_commit(st, &err);
	}
	if (rc)
		fprintf(stderr, "put_keys_racing: %s / %s\n", err.msg.buf, err.detail.buf);
	state_close(st);
	jerror_release(&err);
	return rc;
}

static void test_races(void **s)
{
	NEED_PG();
	char *path = tb_fresh();
	int64_t objects;

	/* several processes create the same fresh store at once: each step is applied once */
	assert_int_equal(race(path, 6, create_store), 6);
	objects = tb_objects(path);
	state_close(tb_open(path, STATE_OPEN_CREATE));
	assert_int_equal(tb_objects(path), objects);
	assert_int_equal(tb_int(path, "SELECT count(*) FROM meta"), 2);
	/* several processes take the same free lock at once: exactly one gets it */
	assert_int_equal(race(path, 6, take_lock), 1);
	assert_int_equal(tb_int(path, "SELECT count(*) FROM locks"), 1);
	/* two writers of one key range in opposite orders: one waits for the other, neither
	 * is a deadlock's victim (40P01 failed a job in e2e/workers_chaos once) */
	assert_int_equal(race(path, 2, put_keys_racing), 2);
	assert_int_equal(tb_int(path, "SELECT count(*) FROM records"), PUT_RACE_KEYS);
	free(path);
}

/* ---- workers: the work queue, leadership, shared rate buckets ---- */

static struct state *open_pg(const char *path)
{
	struct state *st = NULL;
	struct jerror err = JERROR_INIT;
	if (state_open(path, STATE_OPEN_CREATE, &st, &err))
		fail_msg("open %s: %s", path, err.msg.buf);
	jerror_release(&err);
	return st;
}

static void collect_held(void *ctx, int64_t id)
{
	int64_t *held = ctx;
	held[held[0] + 1] = id;
	held[0]++;
}

static void claim_ok(struct state *st, const char *worker, int64_t only_job, struct state_work_item *it,
		     bool want_found)
{
	struct jerror err = JERROR_INIT;
	bool found = false;
	if (state_work_claim(st, worker, 60000, only_job, it, &found, &err))
		fail_msg("claim: %s / %s", err.msg.buf, err.detail.buf);
	assert_int_equal(found, want_found);
	jerror_release(&err);
}

static void finish(struct state *st, int64_t item, const char *worker, bool want_held, bool want_done)
{
	struct jerror err = JERROR_INIT;
	struct state_work_result res = { .status = RUN_SUCCESS, .read_ok = true, .seen = "7" };
	bool held, done;
	res.counts.created = 10;
	assert_int_equal(state_begin(st, &err), JERR_OK);
	if (state_work_finish(st, item, worker, &res, &held, &done, &err))
		fail_msg("finish: %s / %s", err.msg.buf, err.detail.buf);
	assert_int_equal(held, want_held);
	assert_int_equal(done, want_done);
	assert_int_equal(state_commit(st, &err), JERR_OK);
	jerror_release(&err);
}

static enum jerr sum_created(void *ctx, const struct state_work_item_info *it, struct jerror *err)
{
	(void)err;
	*(uint64_t *)ctx += it->counts.created;
	return JERR_OK;
}

static void test_work_queue(void **s)
{
	NEED_PG();
	char *path = tb_fresh();
	struct state *st = open_pg(path), *w1 = open_pg(path), *w2 = open_pg(path), *sq = NULL;
	struct jerror err = JERROR_INIT;
	struct state_work_item it;
	struct rkey b100 = IK(100), b200 = IK(200);
	int64_t run1, run2, job = 0, held[8] = { 0 };
	bool dup = true;

	/* SQLite has no work queue, and says so */
	assert_int_equal(state_open(":memory:", STATE_OPEN_CREATE, &sq, &err), JERR_OK);
	state_work_item_init(&it);
	bool found;
	assert_int_equal(state_work_claim(sq, "w", 1000, 0, &it, &found, &err), JERR_STATE);
	assert_string_equal(err.msg.buf, "workers need a PostgreSQL state store");
	jerror_release(&err);
	state_close(sq);

	/* queue: the locks and run rows of both destinations, 3 + 1 items */
	assert_int_equal(state_begin(st, &err), JERR_OK);
	assert_int_equal(state_lock_acquire(st, "d1", "test", &err), JERR_OK);
	assert_int_equal(state_lock_acquire(st, "d2", "test", &err), JERR_OK);
	assert_int_equal(state_run_start(st, "d1", "run", &run1, &err), JERR_OK);
	assert_int_equal(state_run_start(st, "d2", "run", &run2, &err), JERR_OK);
	struct state_work_part parts[] = {
		{ "d1", run1, 0, 3, { NULL, &b100 } },
		{ "d1", run1, 1, 3, { &b100, &b200 } },
		{ "d1", run1, 2, 3, { &b200, NULL } },
		{ "d2", run2, 0, 1, { NULL, NULL } },
	};
	static const char gen[] = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
	struct state_work_spec spec = { "users", "sched", "5", "fire 1", false, -1, gen, "{\"sched\":\"5\"}" };
	assert_int_equal(state_work_enqueue(st, &spec, parts, ARRAY_SIZE(parts), &job, &dup, &err), JERR_OK);
	assert_false(dup);
	assert_true(job > 0);
	assert_int_equal(state_commit(st, &err), JERR_OK);
	/* the job holds the locks now: no process, its own token */
	assert_int_equal(tb_int(path, "SELECT count(*) FROM locks WHERE pid = 0 AND holder LIKE 'joey job %'"), 2);
	assert_int_equal(state_lock_acquire(w1, "d1", "another run", &err), JERR_STATE_BUSY);
	assert_non_null(strstr(err.detail.buf, "joey job"));
	jerror_release(&err);
	/* the same dedup again: refused, nothing stored */
	int64_t job2;
	assert_int_equal(state_begin(st, &err), JERR_OK);
	assert_int_equal(state_work_enqueue(st, &spec, parts, 0, &job2, &dup, &err), JERR_OK);
	assert_true(dup);
	state_rollback(st);

	/* claims: the oldest first; a row another transaction holds is skipped */
	claim_ok(w1, "w1", 0, &it, true);
	assert_string_equal(it.dest_id.buf, "d1");
	assert_int_equal(it.part, 0);
	assert_null(it.range.lo);
	assert_non_null(it.range.hi);
	assert_int_equal(it.range.hi->i, 100);
	assert_string_equal(it.model_id.buf, "users");
	assert_string_equal(it.schedule_id.buf, "sched");
	assert_true(it.has_since);
	assert_string_equal(it.since.buf, "5");
	assert_string_equal(it.config_gen.buf, gen); /* the job's config generation and marks */
	assert_string_equal(it.marks.buf, "{\"sched\":\"5\"}");
	assert_int_equal(it.claims, 1);
	int64_t item1 = it.id;
	PGconn *pg = tb_pg_connect(path);
	PGresult *r = PQexec(pg, "BEGIN; SELECT id FROM work_items WHERE part = 1 FOR UPDATE");
	PQclear(r);
	claim_ok(w2, "w2", 0, &it, true);
	assert_int_equal(it.part, 2); /* part 1 is locked by the other transaction: skipped */
	assert_int_equal(it.range.lo->i, 200);
	assert_null(it.range.hi);
	int64_t item3 = it.id;
	r = PQexec(pg, "COMMIT");
	PQclear(r);
	PQfinish(pg);

	/* heartbeats: each worker holds its own */
	assert_int_equal(state_work_heartbeat(w1, "w1", 60000, collect_held, held, &err), JERR_OK);
	assert_int_equal(held[0], 1);
	assert_int_equal(held[1], item1);

	/* a worker that stops gives its item back */
	claim_ok(w2, "w2", job, &it, true);
	assert_int_equal(it.part, 1);
	int64_t item2 = it.id;
	assert_int_equal(state_work_requeue(w2, item2, "w2", &err), JERR_OK);
	claim_ok(w2, "w2", job, &it, true);
	assert_int_equal(it.id, item2);
	assert_int_equal(it.claims, 1); /* a claim given back does not count against WORK_MAX_CLAIMS */
	claim_ok(w1, "w1", job + 1, &it, false); /* only_job: none of another job */
	claim_ok(w1, "w1", 0, &it, true);
	assert_string_equal(it.dest_id.buf, "d2");
	int64_t item4 = it.id;
	claim_ok(w1, "w1", 0, &it, false);      /* nothing left */

	/* w2 dies on item3: its lease runs out, another worker takes it over and resumes it */
	char sql[128];
	snprintf(sql, sizeof(sql), "UPDATE work_items SET expires_at = 0 WHERE id = %lld", (long long)item3);
	tb_exec(path, sql);
	claim_ok(w1, "w1b", 0, &it, true);
	assert_int_equal(it.id, item3);
	assert_int_equal(it.claims, 2);
	held[0] = 0;
	assert_int_equal(state_work_heartbeat(w2, "w2", 60000, collect_held, held, &err), JERR_OK);
	assert_int_equal(held[0], 1); /* w2 still has item2, and learns it lost item3 */
	assert_int_equal(held[1], item2);
	finish(w2, item3, "w2", false, false);  /* too late: nothing recorded */
	finish(w1, item3, "w1b", true, false);
	finish(w2, item2, "w2", true, false);
	finish(w1, item1, "w1", true, false);
	finish(w1, item4, "w1", true, true);    /* the last one: the job is done */

	uint64_t created = 0;
	assert_int_equal(state_work_items(w1, job, sum_created, &created, &err), JERR_OK);
	assert_int_equal(created, 40);
	enum run_status status;
	assert_int_equal(state_work_job_status(w1, job, &status, NULL, &found, &err), JERR_OK);
	assert_true(found);
	assert_int_equal(status, RUN_RUNNING);
	assert_int_equal(state_work_close(w1, job, RUN_SUCCESS, "7", &err), JERR_OK);
	assert_int_equal(state_work_job_status(w1, job, &status, NULL, &found, &err), JERR_OK);
	assert_int_equal(status, RUN_SUCCESS);
	assert_int_equal(tb_int(path, "SELECT count(*) FROM locks"), 0); /* released */
	assert_int_equal(state_lock_acquire(w1, "d1", "another run", &err), JERR_OK);
	state_lock_release(w1, "d1");

	/* a job whose lock was taken over can never finish: the sweep closes it; old jobs go */
	assert_int_equal(state_begin(st, &err), JERR_OK);
	assert_int_equal(state_lock_acquire(st, "d2", "test", &err), JERR_OK);
	spec.dedup = "fire 2";
	assert_int_equal(state_work_enqueue(st, &spec, parts + 3, 1, &job2, &dup, &err), JERR_OK);
	assert_int_equal(state_commit(st, &err), JERR_OK);
	tb_exec(path, "DELETE FROM locks; UPDATE work_jobs SET created_at = created_at - 120000");
	claim_ok(w1, "w1", 0, &it, false); /* not claimable without its lock */
	uint64_t closed = 0;
	assert_int_equal(state_work_sweep(w1, 3600000, &closed, &err), JERR_OK);
	assert_int_equal(closed, 1);
	assert_int_equal(state_work_job_status(w1, job2, &status, NULL, &found, &err), JERR_OK);
	assert_int_equal(status, RUN_INTERRUPTED);
	tb_exec(path, "UPDATE work_jobs SET finished_at = finished_at - 7200000");
	assert_int_equal(state_work_sweep(w1, 3600000, &closed, &err), JERR_OK);
	assert_int_equal(tb_int(path, "SELECT count(*) FROM work_jobs"), 0);
	assert_int_equal(tb_int(path, "SELECT count(*) FROM work_items"), 0);

	state_work_item_release(&it);
	jerror_release(&err);
	state_close(st);
	state_close(w1);
	state_close(w2);
	free(path);
}

static void test_leader(void **s)
{
	NEED_PG();
	char *path = tb_fresh();
	struct state *a = open_pg(path), *b = open_pg(path), *c = open_pg(path);
	struct jerror err = JERROR_INIT;
	bool la = false, lb = true, lc = true;

	assert_int_equal(state_leader_try(a, "scheduler", &la, &err), JERR_OK);
	assert_int_equal(state_leader_try(b, "scheduler", &lb, &err), JERR_OK);
	assert_true(la);
	assert_false(lb);
	assert_int_equal(state_leader_try(a, "scheduler", &la, &err), JERR_OK); /* still */
	assert_true(la);
	assert_int_equal(state_leader_try(c, "other", &lc, &err), JERR_OK); /* another name */
	assert_true(lc);
	state_close(a); /* the leader dies: its lock goes with its connection */
	/* the server frees it when that backend has exited: soon, not at once */
	for (int i = 0; i < 100; i++) {
		assert_int_equal(state_leader_try(b, "scheduler", &lb, &err), JERR_OK);
		if (lb)
			break;
		usleep(50 * 1000);
	}
	assert_true(lb);
	jerror_release(&err);
	state_close(b);
	state_close(c);
	free(path);
}

static void test_rate_take(void **s)
{
	NEED_PG();
	char *path = tb_fresh();
	struct state *a = open_pg(path), *b = open_pg(path);
	struct jerror err = JERROR_INIT;
	int got = -1;
	int64_t wait = -1;

	/* 5 tokens, 1 per second: a full bucket, shared by both */
	assert_int_equal(state_rate_take(a, "k", 5, 0.001, 3, &got, &wait, &err), JERR_OK);
	assert_int_equal(got, 3);
	assert_int_equal(state_rate_take(b, "k", 5, 0.001, 3, &got, &wait, &err), JERR_OK);
	assert_int_equal(got, 2);
	assert_int_equal(state_rate_take(a, "k", 5, 0.001, 1, &got, &wait, &err), JERR_OK);
	assert_int_equal(got, 0);
	assert_true(wait > 900 && wait <= 1001);
	/* two seconds later: two tokens */
	tb_exec(path, "UPDATE rate_buckets SET updated_at = updated_at - 2000");
	assert_int_equal(state_rate_take(b, "k", 5, 0.001, 4, &got, &wait, &err), JERR_OK);
	assert_int_equal(got, 2);
	/* long idle: no more than the capacity */
	tb_exec(path, "UPDATE rate_buckets SET updated_at = updated_at - 1000000");
	assert_int_equal(state_rate_take(a, "k", 5, 0.001, 16, &got, &wait, &err), JERR_OK);
	assert_int_equal(got, 5);
	/* another key: its own bucket */
	assert_int_equal(state_rate_take(a, "k2", 2, 0.001, 16, &got, &wait, &err), JERR_OK);
	assert_int_equal(got, 2);
	jerror_release(&err);
	state_close(a);
	state_close(b);
	free(path);
}

/* SQLite -> PostgreSQL -> SQLite gives the same rows. */
static void test_round_trip_between_back_ends(void **s)
{
	NEED_PG();
	char *pg_path = tb_fresh();
	char *dir = tu_mkdtemp();
	struct strbuf sq1 = STRBUF_INIT, sq2 = STRBUF_INIT, d1 = STRBUF_INIT, d2 = STRBUF_INIT,
		      d3 = STRBUF_INIT;
	struct state *a, *b, *c;
	struct jerror err = JERROR_INIT;
	struct loader l = { NULL, 0 };

	strbuf_addf(&sq1, "%s/a.db", dir);
	strbuf_addf(&sq2, "%s/c.db", dir);
	a = tb_open(sq1.buf, STATE_OPEN_CREATE);
	b = tb_open(pg_path, STATE_OPEN_CREATE);
	c = tb_open(sq2.buf, STATE_OPEN_CREATE);
	fill(a);
	assert_int_equal(state_dump(a, dump_line, &d1, &err), JERR_OK);

	l.st = b;
	assert_int_equal(state_begin(b, &err), JERR_OK);
	assert_int_equal(state_dump(a, load_line, &l, &err), JERR_OK);
	assert_int_equal(state_load_finish(b, &err), JERR_OK);
	assert_int_equal(state_commit(b, &err), JERR_OK);
	assert_int_equal(state_dump(b, dump_line, &d2, &err), JERR_OK);
	assert_string_equal(d1.buf, d2.buf);

	l.st = c;
	assert_int_equal(state_begin(c, &err), JERR_OK);
	assert_int_equal(state_dump(b, load_line, &l, &err), JERR_OK);
	assert_int_equal(state_load_finish(c, &err), JERR_OK);
	assert_int_equal(state_commit(c, &err), JERR_OK);
	assert_int_equal(state_dump(c, dump_line, &d3, &err), JERR_OK);
	assert_string_equal(d1.buf, d3.buf);

	state_close(a);
	state_close(b);
	state_close(c);
	strbuf_release(&sq1);
	strbuf_release(&sq2);
	strbuf_release(&d1);
	strbuf_release(&d2);
	strbuf_release(&d3);
	jerror_release(&err);
	tu_rmtree(dir);
	free(dir);
	free(pg_path);
}

static int teardown(void **s)
{
	tb_cleanup();
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_url_and_password),
		cmocka_unit_test(test_foreign_and_empty_schema),
		cmocka_unit_test(test_limit_size_unsupported),
		cmocka_unit_test(test_cursor_uses_primary_key),
		cmocka_unit_test(test_error_ends_the_transaction),
		cmocka_unit_test(test_races),
		cmocka_unit_test(test_round_trip_between_back_ends),
		cmocka_unit_test(test_work_queue),
		cmocka_unit_test(test_leader),
		cmocka_unit_test(test_rate_take),
	};
	B = &tb_pg;
	if (!tb_pg_url())
		printf("[  SKIPPED ] state (postgres): JOEY_PG_URL is not set\n");
	return cmocka_run_group_tests_name("state (postgres)", tests, NULL, teardown);
}
