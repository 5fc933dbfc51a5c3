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
 * (ascending, as ops->lookup), one destination, lean or full columns. The rows go into
 * a buffer of fixed size that never moves, so the main thread copies the rows of the
 * keys answered so far (published under the mutex) without holding it. A job that
 * cannot finish (a row too big for the buffer, an SQLite error) stops; the main thread
 * then looks the remaining keys up itself on its own connection, which reports any
 * error as before. One job at a time: a second destination's look-ups, while the
 * first's job runs, are done on the main thread.
 *
 * Snapshots: the worker reads in one read transaction from its first job until the
 * connection's last cursor is closed (as the main connection does, records.c), begun
 * at most a moment after the main connection's; a writer that commits in between is
 * seen by the worker's rows only. The plan of a read-only connection is a preview;
 * each row is read whole from one committed state.
 *
 * Only for read-only connections opened on a file (a `joey plan`, the API's reads),
 * never for a writable one (its own uncommitted writes would not be seen), and not with
 * JOEY_STATE_LOOKAHEAD=0 in the environment (to compare, or to rule the thread out).
 * Owns the worker, its connection and the job's buffers (struct sq_ahead), from the
 * first look-up until sq_ahead_free (sq_close). Called by records.c.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "base/xalloc.h"
#include "state/sqlite/sqlite_internal.h"

/* Bytes of row text a job holds at most (the cursor's batch holds no more either). */
#define AHEAD_BYTES STATE_BATCH_BYTES
/*
 * The worker publishes its progress every AHEAD_PUBLISH keys. The main thread takes
 * the rows answered so far; when it has caught up with the worker it waits for
 * AHEAD_TAKE more keys (or the end of the job), woken once (wait_for), not per key.
 */
#define AHEAD_PUBLISH 8
#define AHEAD_TAKE 32

enum ahead_phase { AHEAD_IDLE, AHEAD_RUN };

struct sq_ahead {
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv; /* the worker waits for a job, the main thread for progress */
	sqlite3 *db;       /* the worker's connection */
	sqlite3_stmt *stmt[2]; /* S_CUR_FROM, S_CUR_LEAN_FROM on db (worker's) */
	bool reading;      /* db's read transaction is open */
	bool quit, cancel;
	enum ahead_phase phase; /* RUN: the worker owns the job's answers past done */
	/* the job, set by the main thread while IDLE */
	bool have_job;
	struct strbuf dest_id;
	bool lean;
	size_t m;                          /* keys */
	struct rkey keys[STATE_BATCH_ROWS]; /* texts at key_at in key_text */
	size_t key_at[STATE_BATCH_ROWS];
	struct strbuf key_text;
	/* answers: keys [0, done) are answered (published under mu) */
	size_t done;
	size_t wait_for; /* the main thread waits until done reaches it (0: not waiting) */
	bool stopped; /* the worker gave up at done (error, full buffer): the rest is not answered */
	long row_of[STATE_BATCH_ROWS]; /* the row answering key i, -1: no row at or after it */
	struct state_row rows[STATE_BATCH_ROWS]; /* texts at text[i] in buf */
	struct state_cursor_text text[STATE_BATCH_ROWS];
	size_t n_rows;
	char *buf; /* AHEAD_BYTES, never moved */
	size_t len;
};

/* Row i's key with its text where it is now. */
static struct rkey row_key(const struct sq_ahead *a, size_t i)
{
	struct rkey k = a->rows[i].key;
	k.text.ptr = a->buf + a->text[i].key;
	return k;
}

/* Copy the statement's row into the job; false when it does not fit. */
static bool keep_row(struct sq_ahead *a, sqlite3_stmt *s)
{
	char keybuf[STATE_KEYBUF_SIZE];
	struct state_row r;
	if (a->lean)
		sq_decode_lean_row(s, &r, keybuf);
	else
		sq_decode_row(s, &r, keybuf);
	size_t need = r.key.text.len + r.payload.len + r.last_error.len;
	if (a->n_rows == STATE_BATCH_ROWS || need > AHEAD_BYTES - a->len)
		return false;
	struct state_cursor_text *t = &a->text[a->n_rows];
	t->key = a->len;
	memcpy(a->buf + a->len, r.key.text.ptr, r.key.text.len);
	a->len += r.key.text.len;
	t->payload = a->len;
	memcpy(a->buf + a->len, r.payload.ptr, r.payload.len);
	a->len += r.payload.len;
	t->last_error = a->len;
	memcpy(a->buf + a->len, r.last_error.ptr, r.last_error.len);
	a->len += r.last_error.len;
	a->rows[a->n_rows++] = r; /* the texts are found through text[] */
	return true;
}

/* Answer key i of the job (worker, unlocked). false: stop the job here. */
static bool answer(struct sq_ahead *a, size_t i, bool *end)
{
	if (a->n_rows) {
		struct rkey last = row_key(a, a->n_rows - 1);
		if (key_compare(&last, &a->keys[i]) >= 0) {
			a->row_of[i] = (long)a->n_rows - 1; /* the first row at or after it too */
			return true;
		}
	}
	sqlite3_stmt *s = a->stmt[a->lean];
	if (!a->reading)
		a->reading = sqlite3_exec(a->db, "BEGIN", NULL, NULL, NULL) == SQLITE_OK;
	sqlite3_bind_text(s, 1, a->dest_id.buf, (int)a->dest_id.len, SQLITE_STATIC);
	sqlite3_bind_int(s, 2, 1);
	sq_bind_key(s, 3, &a->keys[i]);
	int rc = sqlite3_step(s);
	bool ok = rc == SQLITE_DONE;
	if (rc == SQLITE_ROW && (ok = keep_row(a, s)))
		a->row_of[i] = (long)a->n_rows - 1;
	if (rc == SQLITE_DONE) {
		a->row_of[i] = -1;
		*end = true; /* no row at or after it: none after the keys that follow */
	}
	sqlite3_reset(s);
	return ok;
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
		size_t i = a->done;
		bool end = false, ok = true;
		pthread_mutex_unlock(&a->mu);
		while (ok && !end && i < a->m) {
			size_t stop = i + AHEAD_PUBLISH < a->m ? i + AHEAD_PUBLISH : a->m;
			for (; i < stop && ok && !end; i++)
				if (!(ok = answer(a, i, &end)))
					break;
			if (end)
				for (; i < a->m; i++)
					a->row_of[i] = -1;
			pthread_mutex_lock(&a->mu);
			a->done = i;
			if (a->wait_for && (i >= a->wait_for || end || i == a->m))
				pthread_cond_broadcast(&a->cv);
			if (a->cancel || a->quit)
				ok = false;
			pthread_mutex_unlock(&a->mu);
		}
		pthread_mutex_lock(&a->mu);
		a->stopped = a->done < a->m;
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
	strbuf_init(&a->dest_id, 0);
	strbuf_init(&a->key_text, 0);
	a->buf = xmalloc(AHEAD_BYTES);
	if (sqlite3_open_v2(sq->reopen, &a->db, sq->reopen_flags | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK)
		goto fail;
	sqlite3_busy_timeout(a->db, STATE_BUSY_TIMEOUT_MS);
	if (sqlite3_prepare_v3(a->db, sq_stmt_sql(S_CUR_FROM), -1, SQLITE_PREPARE_PERSISTENT, &a->stmt[0], NULL) ||
	    sqlite3_prepare_v3(a->db, sq_stmt_sql(S_CUR_LEAN_FROM), -1, SQLITE_PREPARE_PERSISTENT, &a->stmt[1], NULL))
		goto fail;
	pthread_mutex_init(&a->mu, NULL);
	pthread_cond_init(&a->cv, NULL);
	if (pthread_create(&a->thread, NULL, worker_main, a) != 0) {
		pthread_cond_destroy(&a->cv);
		pthread_mutex_destroy(&a->mu);
		goto fail;
	}
	sq->ahead = a;
	sq->ahead_off = false;
	return a;
fail:
	sqlite3_finalize(a->stmt[0]);
	sqlite3_finalize(a->stmt[1]);
	sqlite3_close(a->db);
	strbuf_release(&a->dest_id);
	strbuf_release(&a->key_text);
	free(a->buf);
	free(a);
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
	return key_compare(&a->keys[j], &keys[0]) == 0 && key_compare(&a->keys[a->m - 1], &keys[n - 1]) == 0;
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
	a->m = n;
	a->done = a->n_rows = a->len = 0;
	a->stopped = false;
	a->have_job = true;
	a->phase = AHEAD_RUN;
	pthread_cond_broadcast(&a->cv);
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
	if (a->done <= j) {
		a->wait_for = j + AHEAD_TAKE < a->m ? j + AHEAD_TAKE : a->m;
		while (a->phase == AHEAD_RUN && a->done < a->wait_for)
			pthread_cond_wait(&a->cv, &a->mu);
		a->wait_for = 0;
	}
	size_t done = a->done;
	pthread_mutex_unlock(&a->mu);
	if (done <= j)
		return false; /* the worker stopped before keys[0]: looked up here */
	/* rows of keys [j, done): fixed now, and the buffer does not move */
	for (size_t i = j; i < done && !state_cursor_full(cur); i++) {
		if (a->row_of[i] < 0)
			break; /* no row at or after it */
		size_t r = (size_t)a->row_of[i];
		struct rkey k = row_key(a, r);
		if (cur->n) {
			struct rkey last = cur->rows[cur->n - 1].key;
			last.text.ptr = cur->buf.buf + cur->text[cur->n - 1].key;
			if (key_compare(&last, &k) >= 0)
				continue; /* pushed for an earlier key */
		}
		struct state_row row = a->rows[r];
		row.key.text.ptr = k.text.ptr;
		row.payload.ptr = a->buf + a->text[r].payload;
		row.last_error.ptr = a->buf + a->text[r].last_error;
		state_cursor_push(cur, &row);
	}
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
	sqlite3_finalize(a->stmt[0]);
	sqlite3_finalize(a->stmt[1]);
	sqlite3_close(a->db);
	strbuf_release(&a->dest_id);
	strbuf_release(&a->key_text);
	free(a->buf);
	free(a);
}
