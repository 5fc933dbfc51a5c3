/*
 * lookahead.c: the look-ups of a read-only SQLite store on a thread of their own.
 *
 * A partial pass (an incremental plan) seeks one state row per changed record: one
 * B-tree descent each, most of them into a leaf page no other seek reads (one system
 * call and a 16 KiB copy each on a store much bigger than SQLite's page cache). That
 * was most of the diff thread's time, while the other core had little to do. Here a
 * worker thread with a second read-only connection to the same file answers the keys
 * the cursor announced (state_cursor_expect, ops->lookup) ahead of the diff: while the
 * diff compares the records of the keys answered so far, the worker seeks the next.
 *
 * The worker answers one job at a time: the first row at or after each key of a list
 * (ascending, as ops->lookup), one destination, lean or full columns, from the front.
 * The rows go into a buffer of fixed size that never moves, so the main thread copies
 * the rows of the keys answered so far (published under the mutex) without holding it.
 * When the main thread has caught up with the worker, rather than wait it answers keys
 * from the back of the list itself, AHEAD_STEAL at a time, on its own connection (the
 * two meet where the worker is): both cores seek. A job that cannot finish (a row too
 * big for a buffer, an SQLite error) stops; the main thread then looks the keys not
 * answered up as before (ops->lookup's plain path), which reports any error. One job
 * at a time: a second destination's look-ups, while the first's job runs, are done on
 * the main thread.
 *
 * Snapshots: the worker reads in one read transaction from its first job until the
 * connection's last cursor is closed (as the main connection does, records.c). That
 * begins at its first job, which may come many batches after the main connection's
 * first read (SQLite offers no shared snapshot without SQLITE_ENABLE_SNAPSHOT, which
 * Debian's library lacks); a writer that commits in between is seen by the worker's
 * rows only. The plan of a read-only connection is a preview; each row is read whole
 * from one committed state, and JOEY_STATE_LOOKAHEAD=0 gives a plan one snapshot.
 *
 * Only for read-only connections opened on a file (a `joey plan`, the API's reads),
 * never for a writable one (its own uncommitted writes would not be seen), and not with
 * JOEY_STATE_LOOKAHEAD=0 in the environment (to compare, or to rule the thread out;
 * JOEY_STATE_LOOKAHEAD=main: the main thread takes every key it can from the back, not
 * only when it has caught up, so the tests cover both sides whatever the timing).
 * Owns the worker, its connection and the job's buffers (struct sq_ahead), from the
 * first look-up until sq_ahead_free (sq_close). Called by records.c.
 */
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "base/xalloc.h"
#include "state/sqlite/sqlite_internal.h"

/* Bytes of row text each side of a job holds at most (a cursor's batch holds no more). */
#define AHEAD_BYTES STATE_BATCH_BYTES
/*
 * The worker publishes its progress every AHEAD_PUBLISH keys. The main thread takes
 * the rows answered so far; when it has caught up with the worker it answers
 * AHEAD_STEAL keys from the back of the list, or, with nothing left to take, waits
 * for AHEAD_TAKE more keys (or the end of the job), woken once (wait_for).
 */
#define AHEAD_PUBLISH 8
#define AHEAD_STEAL 8
#define AHEAD_TAKE 32

enum ahead_phase { AHEAD_IDLE, AHEAD_RUN };

/* Rows found for a job's keys, in a buffer that never moves (one per thread). */
struct ahead_rows {
	struct state_row rows[STATE_BATCH_ROWS]; /* texts at text[i] in buf */
	struct state_cursor_text text[STATE_BATCH_ROWS];
	size_t n;
	char *buf; /* AHEAD_BYTES */
	size_t len;
};

struct sq_ahead {
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv; /* the worker waits for a job, the main thread for progress */
	sqlite3 *db;       /* the worker's connection */
	sqlite3_stmt *stmt[2]; /* S_CUR_FROM, S_CUR_LEAN_FROM on db (worker's) */
	bool reading;      /* db's read transaction is open */
	bool steal_all;    /* JOEY_STATE_LOOKAHEAD=main: the main thread takes all it can (tests) */
	bool quit, cancel;
	enum ahead_phase phase; /* RUN: the worker answers keys [done, back) */
	/* the job, set by the main thread while IDLE */
	bool have_job;
	struct strbuf dest_id;
	bool lean;
	size_t m;                          /* keys */
	struct rkey keys[STATE_BATCH_ROWS]; /* texts at key_at in key_text */
	size_t key_at[STATE_BATCH_ROWS];
	struct strbuf key_text;
	/*
	 * The worker answers [0, back) from the front: [0, done) are answered, [done,
	 * claimed) it is working on (under mu). The main thread answers [back, m) (back only
	 * goes down, by the main thread, never below claimed).
	 */
	size_t done, claimed, back;
	size_t wait_for; /* the main thread waits until done reaches it (0: not waiting) */
	/*
	 * The answer to key i: the row of side[i] (0 the worker's, 1 the main thread's) at
	 * index row_of[i]; -1: no row at or after it; -2: not answered (the main thread's
	 * keys of a steal that failed). The worker's entries below done are fixed.
	 */
	long row_of[STATE_BATCH_ROWS];
	unsigned char side[STATE_BATCH_ROWS];
	struct ahead_rows found[2];
	/* each side's compact payload names and connection: the worker's own, the main thread's sq's */
	struct sq_names own_names;
	struct sq_names *names[2];
	sqlite3 *names_db[2];
	const char *path; /* sq's, for messages */
};

/* Row i of r with its texts where they are now. */
static struct state_row row_at(const struct ahead_rows *r, size_t i)
{
	struct state_row row = r->rows[i];
	row.key.text.ptr = r->buf + r->text[i].key;
	row.payload.ptr = r->buf + r->text[i].payload;
	row.last_error.ptr = r->buf + r->text[i].last_error;
	return row;
}

/*
 * Copy the statement's row (side's) into r, its payload unpacked; false when it does
 * not fit or cannot be unpacked (the main thread then reads it again, and says why).
 */
static bool keep_row(struct sq_ahead *a, int side, sqlite3_stmt *s)
{
	struct ahead_rows *r = &a->found[side];
	char keybuf[STATE_KEYBUF_SIZE];
	struct jerror e = JERROR_INIT;
	struct state_row row;
	if (sq_decode_unpacked(a->names[side], a->names_db[side], a->path, s, a->lean, &row, keybuf, &e)) {
		jerror_release(&e);
		return false;
	}
	size_t need = row.key.text.len + row.payload.len + row.last_error.len;
	if (r->n == STATE_BATCH_ROWS || need > AHEAD_BYTES - r->len)
		return false;
	struct state_cursor_text *t = &r->text[r->n];
	t->key = r->len;
	memcpy(r->buf + r->len, row.key.text.ptr, row.key.text.len);
	r->len += row.key.text.len;
	t->payload = r->len;
	memcpy(r->buf + r->len, row.payload.ptr, row.payload.len);
	r->len += row.payload.len;
	t->last_error = r->len;
	memcpy(r->buf + r->len, row.last_error.ptr, row.last_error.len);
	r->len += row.last_error.len;
	r->rows[r->n++] = row; /* the texts are found through text[] */
	return true;
}

/*
 * Answer key i of the job into row_of[i] from side's rows, with statement s (dest_id
 * bound): prev is the row answering the key before i on this side (-1: none), *end set
 * when no row is at or after key i. false: not answered (an error, the buffer full).
 */
static bool answer(struct sq_ahead *a, int side, sqlite3_stmt *s, size_t i, long prev, bool *end)
{
	struct ahead_rows *r = &a->found[side];
	a->side[i] = (unsigned char)side;
	if (prev >= 0) {
		struct state_row last = row_at(r, (size_t)prev);
		if (key_compare(&last.key, &a->keys[i]) >= 0) {
			a->row_of[i] = prev; /* the first row at or after it too */
			return true;
		}
	}
	sq_bind_key(s, 3, &a->keys[i]);
	int rc = sqlite3_step(s);
	bool ok = rc == SQLITE_DONE;
	if (rc == SQLITE_ROW && (ok = keep_row(a, side, s)))
		a->row_of[i] = (long)r->n - 1;
	if (rc == SQLITE_DONE) {
		a->row_of[i] = -1;
		*end = true; /* no row at or after it: none after the keys that follow */
	}
	sqlite3_reset(s);
	if (!ok)
		a->row_of[i] = -2;
	return ok;
}

/* Bind the job's destination and LIMIT 1 to s. */
static void bind_job(const struct sq_ahead *a, sqlite3_stmt *s)
{
	sqlite3_bind_text(s, 1, a->dest_id.buf, (int)a->dest_id.len, SQLITE_STATIC);
	sqlite3_bind_int(s, 2, 1);
}

static void *worker_main(void *arg)
{
	struct sq_ahead *a = arg;
	pthread_mutex_lock(&a->mu);
	for (;;) {
		while (!a->quit && a->phase != AHEAD_RUN)
			pthread_cond_wait(&a->cv, &a->mu);
		if (a->quit)
			break;
		sqlite3_stmt *s = a->stmt[a->lean];
		size_t i = a->done;
		long prev = -1;
		bool end = false, ok = true;
		if (!a->reading)
			a->reading = sqlite3_exec(a->db, "BEGIN", NULL, NULL, NULL) == SQLITE_OK;
		bind_job(a, s);
		while (ok && i < a->back && !a->cancel && !a->quit) {
			size_t stop = i + AHEAD_PUBLISH < a->back ? i + AHEAD_PUBLISH : a->back;
			a->claimed = stop;
			pthread_mutex_unlock(&a->mu);
			for (; i < stop && ok; i++) {
				if (end) {
					a->side[i] = 0;
					a->row_of[i] = -1;
					continue;
				}
				if (!(ok = answer(a, 0, s, i, prev, &end)))
					break;
				prev = a->row_of[i];
			}
			pthread_mutex_lock(&a->mu);
			a->done = i;
			if (a->wait_for && (i >= a->wait_for || i >= a->back))
				pthread_cond_broadcast(&a->cv);
		}
		sqlite3_clear_bindings(s);
		a->claimed = a->done;
		a->phase = AHEAD_IDLE;
		pthread_cond_broadcast(&a->cv);
	}
	pthread_mutex_unlock(&a->mu);
	return NULL;
}

/* Stop the job (main thread, mu held): on return the worker is idle. */
static void stop_job(struct sq_ahead *a)
{
	if (a->phase == AHEAD_RUN)
		a->cancel = true;
	while (a->phase == AHEAD_RUN) {
		a->wait_for = a->m;
		pthread_cond_wait(&a->cv, &a->mu);
	}
	a->wait_for = 0;
	a->cancel = false;
}

/* Free a worker's connection, statements and buffers, and a itself (no thread runs on it). */
static void ahead_release(struct sq_ahead *a)
{
	sqlite3_finalize(a->stmt[0]);
	sqlite3_finalize(a->stmt[1]);
	sq_names_release(&a->own_names);
	sqlite3_close(a->db);
	strbuf_release(&a->dest_id);
	strbuf_release(&a->key_text);
	free(a->found[0].buf);
	free(a->found[1].buf);
	free(a);
}

/* The worker and its connection, or NULL (not for this connection, or it failed). */
static struct sq_ahead *ahead_of(struct sq_state *sq)
{
	if (sq->ahead || sq->ahead_off)
		return sq->ahead;
	sq->ahead_off = true;
	const char *env = getenv("JOEY_STATE_LOOKAHEAD");
	if (!sq->reopen || (env && !strcmp(env, "0")) || sqlite3_db_readonly(sq->db, "main") != 1)
		return NULL;
	struct sq_ahead *a = xcalloc(1, sizeof(*a));
	a->steal_all = env && !strcmp(env, "main");
	strbuf_init(&a->dest_id, 0);
	strbuf_init(&a->key_text, 0);
	a->found[0].buf = xmalloc(AHEAD_BYTES);
	a->found[1].buf = xmalloc(AHEAD_BYTES);
	if (sqlite3_open_v2(sq->reopen, &a->db, sq->reopen_flags | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK)
		goto fail;
	sqlite3_busy_timeout(a->db, STATE_BUSY_TIMEOUT_MS);
	a->names[0] = &a->own_names;
	a->names_db[0] = a->db;
	a->names[1] = &sq->names;
	a->names_db[1] = sq->db;
	a->path = sq->base.path;
	if (sqlite3_prepare_v3(a->db, sq_stmt_sql(S_CUR_FROM), -1, SQLITE_PREPARE_PERSISTENT, &a->stmt[0], NULL) ||
	    sqlite3_prepare_v3(a->db, sq_stmt_sql(S_CUR_LEAN_FROM), -1, SQLITE_PREPARE_PERSISTENT, &a->stmt[1], NULL))
		goto fail;
	pthread_mutex_init(&a->mu, NULL);
	pthread_cond_init(&a->cv, NULL);
	/* signals stay with the other threads (SIGINT and SIGTERM stop a run there) */
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	int rc = pthread_create(&a->thread, NULL, worker_main, a);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0) {
		pthread_cond_destroy(&a->cv);
		pthread_mutex_destroy(&a->mu);
		goto fail;
	}
	sq->ahead = a;
	sq->ahead_off = false;
	return a;
fail:
	ahead_release(a);
	return NULL;
}

/* Where keys[0 .. n) continue the job (the same keys from index *at on). */
static bool job_matches(const struct sq_ahead *a, const struct state_cursor *cur, const struct rkey *keys,
			size_t n, size_t *at)
{
	if (!a->have_job || a->lean != cur->lean || strcmp(a->dest_id.buf, cur->dest_id) != 0 || !n ||
	    n > a->m)
		return false;
	size_t j = a->m - n;
	*at = j;
	for (size_t i = 0; i < n; i++)
		if (key_compare(&a->keys[j + i], &keys[i]) != 0)
			return false;
	return true;
}

/* Make keys[0 .. n) the worker's job (mu held, the worker idle). */
static void start_job(struct sq_ahead *a, const struct state_cursor *cur, const struct rkey *keys, size_t n)
{
	strbuf_reset(&a->dest_id);
	strbuf_addstr(&a->dest_id, cur->dest_id);
	a->lean = cur->lean;
	strbuf_reset(&a->key_text);
	for (size_t i = 0; i < n; i++)
		a->key_at[i] = a->key_text.len, strbuf_addslice(&a->key_text, keys[i].text);
	for (size_t i = 0; i < n; i++) {
		a->keys[i] = keys[i];
		a->keys[i].text.ptr = a->key_text.buf + a->key_at[i];
	}
	a->m = a->back = n;
	a->done = a->claimed = 0;
	a->found[0].n = a->found[0].len = a->found[1].n = a->found[1].len = 0;
	a->have_job = true;
	a->phase = AHEAD_RUN;
	pthread_cond_broadcast(&a->cv);
}

/*
 * The main thread answers keys [from, to) (taken from the worker's back, mu not held)
 * on its own connection. A key it cannot answer stays -2 (not answered).
 */
static void steal(struct sq_state *sq, struct sq_ahead *a, size_t from, size_t to)
{
	sqlite3_stmt *s = NULL;
	struct jerror e = JERROR_INIT;
	long prev = -1;
	bool end = false;
	size_t i = from;
	if (!sq_stmt_get(sq, a->lean ? S_CUR_LEAN_FROM : S_CUR_FROM, &s, &e)) {
		bind_job(a, s);
		for (; i < to; i++) {
			if (end) {
				a->side[i] = 1;
				a->row_of[i] = -1;
			} else if (!answer(a, 1, s, i, prev, &end)) {
				break;
			}
			prev = a->row_of[i];
		}
		sq_stmt_done(s);
	}
	jerror_release(&e); /* a key not answered is looked up again, which reports it */
	for (; i < to; i++)
		a->side[i] = 1, a->row_of[i] = -2;
}

/* Push the rows answering keys [j, to) (answered) to cur, each row once. */
static void push_rows(struct sq_ahead *a, struct state_cursor *cur, size_t j, size_t to)
{
	for (size_t i = j; i < to && !state_cursor_full(cur); i++) {
		if (a->row_of[i] < 0)
			return; /* no row at or after it (nor after the rest), or not answered */
		struct state_row row = row_at(&a->found[a->side[i]], (size_t)a->row_of[i]);
		if (cur->n) {
			struct rkey last = cur->rows[cur->n - 1].key;
			last.text.ptr = cur->buf.buf + cur->text[cur->n - 1].key;
			if (key_compare(&last, &row.key) >= 0)
				continue; /* pushed for an earlier key */
		}
		state_cursor_push(cur, &row);
	}
}

bool sq_ahead_lookup(struct sq_state *sq, struct state_cursor *cur, const struct rkey *keys, size_t n)
{
	struct sq_ahead *a = ahead_of(sq);
	size_t j = 0;
	if (!a || !n || n > STATE_BATCH_ROWS)
		return false;
	/* the keys must ascend (ops->lookup): else the main thread's look-up handles them */
	for (size_t i = 1; i < n; i++)
		if (key_compare(&keys[i], &keys[i - 1]) < 0)
			return false;
	pthread_mutex_lock(&a->mu);
	if (!job_matches(a, cur, keys, n, &j)) {
		/* another destination's keys while a job runs: those are looked up here */
		if (a->phase == AHEAD_RUN && a->have_job &&
		    (a->lean != cur->lean || strcmp(a->dest_id.buf, cur->dest_id) != 0)) {
			pthread_mutex_unlock(&a->mu);
			return false;
		}
		stop_job(a);
		start_job(a, cur, keys, n);
		j = 0;
	}
	/* the worker's keys: wait for key j, answering keys from the back meanwhile (until
	 * those reach key j: then the rest is the main thread's own) */
	while (j < a->back && a->phase == AHEAD_RUN && (a->done <= j || a->steal_all)) {
		if (a->back >= a->claimed + 2 * AHEAD_STEAL) {
			size_t to = a->back;
			a->back -= AHEAD_STEAL;
			size_t from = a->back;
			pthread_mutex_unlock(&a->mu);
			steal(sq, a, from, to);
			pthread_mutex_lock(&a->mu);
			continue;
		}
		if (a->done > j)
			break;
		a->wait_for = j + AHEAD_TAKE < a->back ? j + AHEAD_TAKE : a->back;
		pthread_cond_wait(&a->cv, &a->mu);
		a->wait_for = 0;
	}
	/* keys the main thread answered: [back, m) (it alone moves back) */
	if (j >= a->back) {
		pthread_mutex_unlock(&a->mu);
		if (a->row_of[j] == -2)
			return false;
		push_rows(a, cur, j, a->m);
		return true;
	}
	size_t done = a->done, back = a->back;
	pthread_mutex_unlock(&a->mu);
	if (done <= j)
		return false; /* the worker stopped before keys[0]: looked up here */
	/* the worker's rows of keys [j, done), fixed now; then the main thread's if it met them */
	push_rows(a, cur, j, done);
	if (done == back && a->row_of[done - 1] >= 0)
		push_rows(a, cur, back, a->m);
	return true;
}

void sq_ahead_end(struct sq_state *sq)
{
	struct sq_ahead *a = sq->ahead;
	if (!a)
		return;
	pthread_mutex_lock(&a->mu);
	stop_job(a);
	a->have_job = false;
	/* the worker waits for a job: its connection is free to use here */
	if (a->reading && !sqlite3_get_autocommit(a->db) && sqlite3_exec(a->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
		(void)sqlite3_exec(a->db, "ROLLBACK", NULL, NULL, NULL);
	a->reading = false;
	pthread_mutex_unlock(&a->mu);
}

void sq_ahead_free(struct sq_state *sq)
{
	struct sq_ahead *a = sq->ahead;
	sq->ahead = NULL;
	sq->ahead_off = false;
	if (!a)
		return;
	sq_ahead_end(sq);
	pthread_mutex_lock(&a->mu);
	a->quit = true;
	pthread_cond_broadcast(&a->cv);
	pthread_mutex_unlock(&a->mu);
	pthread_join(a->thread, NULL);
	pthread_cond_destroy(&a->cv);
	pthread_mutex_destroy(&a->mu);
	ahead_release(a);
}
