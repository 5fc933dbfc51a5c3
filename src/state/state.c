/* state.c: the state store's interface: picks the back end, keeps what is common to all. */
#include "state/state.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <xxhash.h>

#include "base/log.h"
#include "base/xalloc.h"
#include "state/backend.h"
#include "state/runnotes.h"
#include "state/state_internal.h"

/*
 * Design notes.
 *
 * Every public function checks here what does not depend on the database (a store
 * opened read-only refuses writes before the back end sees them; state_begin refuses
 * nesting) and then calls st->ops. The parts that are the same on every back end live
 * here once: the copy behind state_get's borrowed row and the lock protocol (read the
 * row, decide whether it is free or stale, write ours only if the row is still as
 * read, all in one transaction); the cursor's batch buffer and seeking are cursor.c's,
 * the workers' checks work.c's.
 */

/* ---- small helpers ---- */

int64_t state_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void add_time(struct strbuf *sb, int64_t ms)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;
	char buf[32];
	if (gmtime_r(&t, &tm) && strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm))
		strbuf_addstr(sb, buf);
	else
		strbuf_addf(sb, "%" PRId64, ms);
}

size_t state_key_digits(int64_t i, char *buf)
{
	/* what snprintf("%" PRId64) writes, without its cost per cursor row */
	char tmp[STATE_KEYBUF_SIZE];
	uint64_t u = i < 0 ? (uint64_t)0 - (uint64_t)i : (uint64_t)i;
	size_t n = 0, len = 0;
	do {
		tmp[n++] = (char)('0' + u % 10);
		u /= 10;
	} while (u);
	if (i < 0)
		buf[len++] = '-';
	while (n)
		buf[len++] = tmp[--n];
	buf[len] = '\0';
	return len;
}

const char *state_key_str(const struct rkey *key, struct strbuf *sb)
{
	strbuf_reset(sb);
	if (key->text.len || !key->is_int)
		strbuf_addslice(sb, key->text);
	else
		strbuf_addf(sb, "%" PRId64, key->i);
	return sb->buf;
}

static int64_t make_token(void)
{
	uint64_t t = 0;
	FILE *f = fopen("/dev/urandom", "rb");
	if (f) {
		if (fread(&t, sizeof(t), 1, f) != 1)
			t = 0;
		fclose(f);
	}
	t ^= (uint64_t)state_now_ms() * 0x9e3779b97f4a7c15u ^ (uint64_t)getpid() << 32 ^ (uintptr_t)&t;
	t &= INT64_MAX;
	return t ? (int64_t)t : 1;
}

void state_base_init(struct state *st, const struct state_ops *ops, const char *display)
{
	st->ops = ops;
	st->path = xstrdup(display);
	st->token = make_token();
	strbuf_init(&st->get_payload, 0);
	strbuf_init(&st->get_error, 0);
	strbuf_init(&st->get_key, 0);
	if (gethostname(st->host, sizeof(st->host) - 1) != 0)
		snprintf(st->host, sizeof(st->host), "unknown");
}

void state_base_release(struct state *st)
{
	strbuf_release(&st->get_payload);
	strbuf_release(&st->get_error);
	strbuf_release(&st->get_key);
	free(st->path);
	st->path = NULL;
	free(st->location);
	st->location = NULL;
}

enum jerr state_refuse_readonly(struct state *st, struct jerror *err)
{
	if (!st->readonly)
		return JERR_OK;
	jerror_set(err, JERR_STATE, "state store \"%s\" is open read-only", st->path);
	jerror_detail(err, "this command only reads the state store");
	return JERR_STATE;
}

/* ---- open and close ---- */

bool state_path_is_url(const char *path)
{
	return path && (!strncmp(path, "postgres://", 11) || !strncmp(path, "postgresql://", 13));
}

static const struct state_ops *ops_for(const char *path)
{
	return state_path_is_url(path) ? &state_pg : &state_sqlite;
}

void state_path_display(const char *path, struct strbuf *out)
{
	ops_for(path)->display(path, out);
}

enum jerr state_open(const char *path, enum state_open_mode mode, struct state **out,
		     struct jerror *err)
{
	*out = NULL;
	enum jerr rc = ops_for(path)->open(path, mode, out, err);
	if (!rc && *out && !(*out)->location)
		(*out)->location = xstrdup(path);
	return rc;
}

void state_close(struct state *st)
{
	if (st)
		st->ops->close(st);
}

int state_schema_version(const struct state *st)
{
	return st->version;
}

const char *state_path(const struct state *st)
{
	return st->path;
}

const char *state_location(const struct state *st)
{
	return st->location;
}

const char *state_backend_name(const struct state *st)
{
	return st->ops->name;
}

enum jerr state_limit_size(struct state *st, uint64_t max_bytes, struct jerror *err)
{
	return st->ops->limit_size(st, max_bytes, err);
}

/* ---- reading ---- */

void state_keep_row(struct state *st, const struct state_row *row)
{
	struct state_row *r = &st->get_row;
	*r = *row;
	strbuf_reset(&st->get_key);
	strbuf_addslice(&st->get_key, row->key.text);
	r->key.text = (struct slice){ st->get_key.buf, st->get_key.len };
	strbuf_reset(&st->get_payload);
	strbuf_addslice(&st->get_payload, row->payload);
	r->payload = (struct slice){ st->get_payload.buf, st->get_payload.len };
	strbuf_reset(&st->get_error);
	strbuf_addslice(&st->get_error, row->last_error);
	r->last_error = (struct slice){ st->get_error.buf, st->get_error.len };
}

enum jerr state_count(struct state *st, const char *dest_id, uint64_t *in_scope,
		      struct jerror *err)
{
	*in_scope = 0;
	return st->ops->count(st, dest_id, in_scope, err);
}

enum jerr state_get(struct state *st, const char *dest_id, const struct rkey *key,
		    struct state_row **row, bool *found, struct jerror *err)
{
	enum jerr ret;
	*row = NULL;
	*found = false;
	ret = st->ops->get(st, dest_id, key, found, err);
	if (ret)
		*found = false;
	else if (*found)
		*row = &st->get_row;
	return ret;
}

enum jerr state_count_range(struct state *st, const char *dest_id, const struct key_range *range,
			    uint64_t *in_scope, struct jerror *err)
{
	if (!range || (!range->lo && !range->hi))
		return state_count(st, dest_id, in_scope, err);
	*in_scope = 0;
	return st->ops->count_range(st, dest_id, range->lo, range->hi, in_scope, err);
}

/* ---- transactions ---- */

enum jerr state_begin(struct state *st, struct jerror *err)
{
	enum jerr ret;
	if ((ret = state_refuse_readonly(st, err)))
		return ret;
	if (st->ops->in_transaction(st))
		return jerror_set(err, JERR_INTERNAL,
				  "state store \"%s\": a transaction is already open", st->path);
	if ((ret = st->ops->begin(st, err)))
		return ret;
	st->tx_now = state_now_ms(); /* one clock read per transaction, not per record written */
	return JERR_OK;
}

/* The time a record write carries: its transaction's, else now. */
static int64_t write_now(const struct state *st)
{
	return st->tx_now ? st->tx_now : state_now_ms();
}

enum jerr state_commit(struct state *st, struct jerror *err)
{
	st->tx_now = 0;
	if (!st->ops->in_transaction(st))
		return jerror_set(err, JERR_STATE,
				  "state store \"%s\": no transaction to commit (it was rolled back "
				  "after an earlier error)", st->path);
	return st->ops->commit(st, err);
}

void state_rollback(struct state *st)
{
	if (st)
		st->tx_now = 0;
	if (st && st->ops->in_transaction(st))
		st->ops->rollback(st);
}

/* ---- writes ---- */

enum jerr state_put(struct state *st, const char *dest_id, const struct rkey *key,
		    struct slice payload, const unsigned char hash[STATE_HASH_LEN],
		    bool in_scope, struct jerror *err)
{
	enum jerr ret;
	if ((ret = state_refuse_readonly(st, err)))
		return ret;
	return st->ops->put(st, dest_id, key, payload, hash, in_scope, write_now(st), err);
}

enum jerr state_delete(struct state *st, const char *dest_id, const struct rkey *key,
		       struct jerror *err)
{
	enum jerr ret;
	if ((ret = state_refuse_readonly(st, err)))
		return ret;
	return st->ops->del(st, dest_id, key, err);
}

enum jerr state_mark_failed(struct state *st, const char *dest_id, const struct rkey *key,
			    const char *error, struct slice payload, struct jerror *err)
{
	enum jerr ret;
	if ((ret = state_refuse_readonly(st, err)))
		return ret;
	return st->ops->mark_failed(st, dest_id, key, error ? error : "failed", payload, write_now(st), err);
}

enum jerr state_set_exists(struct state *st, const char *dest_id, const struct rkey *key,
			   bool exists, int64_t checked_at, struct jerror *err)
{
	enum jerr ret;
	if ((ret = state_refuse_readonly(st, err)))
		return ret;
	return st->ops->set_exists(st, dest_id, key, exists, checked_at, write_now(st), err);
}

/* ---- runs and ledger ---- */

static const char *const status_names[] = {
	[RUN_RUNNING] = "running",
	[RUN_SUCCESS] = "success",
	[RUN_FAILED] = "failed",
	[RUN_INTERRUPTED] = "interrupted",
};

const char *run_status_name(enum run_status s)
{
	return (unsigned)s < ARRAY_SIZE(status_names) ? status_names[s] : "unknown";
}

enum run_status state_run_status_parse(const char *name)
{
	for (size_t i = 0; i < ARRAY_SIZE(status_names); i++)
		if (name && strcmp(name, status_names[i]) == 0)
			return (enum run_status)i;
	return RUN_FAILED;
}

enum jerr state_check_newer(const char *path, int64_t version, const char *other, struct jerror *err)
{
	if (version <= STATE_SCHEMA_VERSION)
		return JERR_OK;
	jerror_set(err, JERR_STATE_VERSION,
		   "state store \"%s\" was written by a newer joey (schema version %" PRId64 ", this joey knows up to %d)",
		   path, version, STATE_SCHEMA_VERSION);
	jerror_hint(err, "upgrade joey, or pass --state with another %s", other);
	return JERR_STATE_VERSION;
}

enum jerr state_run_start(struct state *st, const char *dest_id, const char *kind,
			  int64_t *run_id, struct jerror *err)
{
	enum jerr ret;
	*run_id = 0;
	if ((ret = state_refuse_readonly(st, err)))
		return ret;
	return st->ops->run_start(st, dest_id, kind, state_now_ms(), run_id, err);
}

enum jerr state_run_finish(struct state *st, int64_t run_id, enum run_status status,
			   const struct run_counts *c, const char *error, struct jerror *err)
{
	enum jerr ret;
	bool found = false;
	if ((ret = state_refuse_readonly(st, err)))
		return ret;
	ret = st->ops->run_finish(st, run_id, status, c, error, state_now_ms(), &found, err);
	if (!ret && !found)
		ret = jerror_set(err, JERR_INTERNAL, "state store \"%s\" has no run %" PRId64,
				 st->path, run_id);
	return ret;
}

/* More runs left running than a destination ever has: every record, as without journals. */
#define ABANDON_MAX_RUNS 64

/* The runs (not plans) of a destination still marked running, as {id, started_at}. */
struct abandoned {
	int64_t runs[ABANDON_MAX_RUNS][2];
	size_t n;          /* rows found, also past ABANDON_MAX_RUNS */
	int64_t first_start;
};

static enum jerr abandoned_row(void *ctx, const struct state_value *row, size_t n, struct jerror *err)
{
	struct abandoned *ab = ctx;
	(void)err;
	if (n == 2 && ab->n < ABANDON_MAX_RUNS) { /* two integer columns, as asked */
		ab->runs[ab->n][0] = row[0].i;
		ab->runs[ab->n][1] = row[1].i;
		if (row[1].i < ab->first_start)
			ab->first_start = row[1].i;
	}
	ab->n++;
	return JERR_OK;
}

enum jerr state_runs_abandon(struct state *st, const char *dest_id, uint64_t *n, struct jerror *err)
{
	struct abandoned ab = { .first_start = INT64_MAX };
	struct state_value d = state_val_text(dest_id);
	struct strbuf path = STRBUF_INIT;
	int64_t now = state_now_ms();
	bool narrowed = false;
	enum jerr ret;
	*n = 0;
	if ((ret = state_refuse_readonly(st, err)) ||
	    (ret = st->ops->exec(st, "read the run history", "SELECT id, started_at FROM runs WHERE dest_id = $1 AND "
				 "status = 'running' AND kind = 'run' ORDER BY id", &d, 1, abandoned_row, &ab, NULL,
				 err)))
		return ret;
	/*
	 * The records first, while the runs still say running (a crash between leaves both
	 * to do again): only the keys in the runs' sent-keys journals when each has one to
	 * trust on this host (journal.c), else every record confirmed before they started.
	 */
	if (ab.n && ab.n <= ABANDON_MAX_RUNS && state_journal_path(st, ab.runs[0][0], &path))
		ret = st->ops->abandon_keys(st, dest_id, now, ab.first_start, (const int64_t (*)[2])ab.runs, ab.n,
					    &narrowed, err);
	strbuf_release(&path);
	if (!ret)
		ret = st->ops->runs_abandon(st, dest_id, now, ab.n && !narrowed, n, err);
	/* inside a caller's transaction that rolls back, the runs stay running without
	 * journals: their next abandon marks every record, as it must */
	for (size_t i = 0; !ret && i < ab.n && i < ABANDON_MAX_RUNS; i++)
		state_journal_remove(st, ab.runs[i][0]);
	return ret;
}

enum jerr state_run_progress(struct state *st, int64_t run_id, const struct run_counts *counts,
			     struct jerror *err)
{
	enum jerr ret;
	if ((ret = state_refuse_readonly(st, err)))
		return ret;
	return st->ops->run_progress(st, run_id, counts, err);
}

uint64_t state_runs_recover(struct state *st, const char *holder)
{
	struct strbuf ids = STRBUF_INIT;
	struct jerror err = JERROR_INIT;
	uint64_t total = 0;
	size_t n = 0;

	if (!st || st->readonly)
		return 0;
	if (st->ops->runs_running(st, &ids, &n, &err)) {
		log_error("%s", err.msg.buf);
		goto out;
	}
	for (size_t i = 0, at = 0; i < n; i++) {
		const char *dest_id = ids.buf + at;
		uint64_t k = 0;
		at += strlen(dest_id) + 1;
		/* a heartbeat never makes the lock stale here: only a gone process (or no lock) */
		enum jerr rc = state_lock_acquire_stale(st, dest_id, holder, INT64_MAX / 2, &err);
		if (rc == JERR_STATE_BUSY) {
			jerror_release(&err);
			continue; /* a live run, a work job, or another host's: not ours to judge */
		}
		if (rc) {
			log_error("%s", err.msg.buf);
			jerror_release(&err);
			continue;
		}
		if (state_runs_abandon(st, dest_id, &k, &err)) {
			log_error("%s", err.msg.buf);
			jerror_release(&err);
		} else if (k) {
			log_warn("destination \"%s\": %llu run%s ended without finishing (the process running it "
				 "is gone); marked interrupted with the counts it had committed",
				 dest_id, (unsigned long long)k, k == 1 ? "" : "s");
			total += k;
		}
		state_lock_release(st, dest_id);
	}
out:
	jerror_release(&err);
	strbuf_release(&ids);
	return total;
}

enum jerr state_ledger_add(struct state *st, int64_t run_id, const char *dest_id,
			   const struct rkey *key, const char *error, int attempts,
			   struct jerror *err)
{
	enum jerr ret;
	if ((ret = state_refuse_readonly(st, err)))
		return ret;
	return st->ops->ledger_add(st, run_id, dest_id, key, error ? error : "failed", attempts,
				   state_now_ms(), err);
}

enum jerr state_runs_list(struct state *st, const char *dest_id, size_t limit, state_run_fn fn,
			  void *ctx, struct jerror *err)
{
	return st->ops->runs_list(st, dest_id, limit, fn, ctx, err);
}

enum jerr state_ledger_list(struct state *st, const char *dest_id, int64_t run_id,
			    const struct rkey *key, size_t limit, state_ledger_fn fn, void *ctx,
			    struct jerror *err)
{
	return st->ops->ledger_list(st, dest_id, run_id, key, limit, fn, ctx, err);
}

/* ---- locks ---- */

static bool process_gone(const struct state *st, const struct state_lock_row *li)
{
	if (strcmp(li->host.buf, st->host) != 0 || li->pid <= 0 || li->pid > INT32_MAX)
		return false;
	return kill((pid_t)li->pid, 0) != 0 && errno == ESRCH;
}

static void lock_busy(struct state *st, const char *dest_id, const struct state_lock_row *li,
		      int64_t now, int64_t stale_ms, struct jerror *err)
{
	struct strbuf d = STRBUF_INIT;
	jerror_set(err, JERR_STATE_BUSY,
		   li->token == st->token ? "destination \"%s\" is already locked by this run"
					  : "destination \"%s\" is locked by another run",
		   dest_id);
	if (li->found) {
		strbuf_addf(&d, "held by \"%s\" (pid %" PRId64 " on %s) since ", li->holder.buf,
			    li->pid, li->host.buf);
		add_time(&d, li->acquired_at);
		strbuf_addf(&d, "; last heartbeat %" PRId64 " s ago; state store \"%s\"",
			    (now - li->heartbeat_at) / 1000, st->path);
	} else {
		strbuf_addf(&d, "another process took it at the same moment; state store \"%s\"",
			    st->path);
	}
	jerror_detail(err, "%s", d.buf);
	jerror_hint(err, "wait for that run to finish; a lock is taken over when its "
			 "process has exited or its heartbeat is %" PRId64 " minutes old",
		    stale_ms / 60000);
	strbuf_release(&d);
}

enum jerr state_lock_acquire_stale(struct state *st, const char *dest_id, const char *holder,
				   int64_t stale_ms, struct jerror *err)
{
	struct state_lock_row li = { false, STRBUF_INIT, STRBUF_INIT, 0, 0, 0, 0 };
	bool own_tx, taken = false;
	int64_t now = state_now_ms();
	enum jerr ret;

	if ((ret = state_refuse_readonly(st, err)))
		return ret;
	own_tx = !st->ops->in_transaction(st);
	if (own_tx && (ret = state_begin(st, err)))
		return ret;
	if ((ret = st->ops->lock_get(st, dest_id, &li, err)))
		goto out;
	if (li.found) {
		bool stale = li.token != st->token &&
			     (li.heartbeat_at < now - stale_ms || process_gone(st, &li));
		if (!stale) {
			lock_busy(st, dest_id, &li, now, stale_ms, err);
			ret = JERR_STATE_BUSY;
			goto out;
		}
		log_warn("destination \"%s\": taking over the stale lock of \"%s\" (pid %" PRId64
			 " on %s, last heartbeat %" PRId64 " s ago)",
			 dest_id, li.holder.buf, li.pid, li.host.buf, (now - li.heartbeat_at) / 1000);
	}
	if ((ret = st->ops->lock_put(st, dest_id, holder ? holder : "joey", now, &li, &taken, err)))
		goto out;
	if (!taken) {
		/* another process wrote the row since we read it: tell who holds it now */
		struct state_lock_row again = { false, STRBUF_INIT, STRBUF_INIT, 0, 0, 0, 0 };
		if (st->ops->lock_get(st, dest_id, &again, err) == JERR_OK)
			lock_busy(st, dest_id, &again, now, stale_ms, err);
		else
			lock_busy(st, dest_id, &li, now, stale_ms, err);
		strbuf_release(&again.holder);
		strbuf_release(&again.host);
		ret = JERR_STATE_BUSY;
		goto out;
	}
	if (own_tx) {
		ret = state_commit(st, err);
		own_tx = false;
	}
out:
	if (own_tx)
		state_rollback(st);
	strbuf_release(&li.holder);
	strbuf_release(&li.host);
	return ret;
}

enum jerr state_lock_acquire(struct state *st, const char *dest_id, const char *holder,
			     struct jerror *err)
{
	return state_lock_acquire_stale(st, dest_id, holder, STATE_LOCK_STALE_MS, err);
}

enum jerr state_lock_heartbeat(struct state *st, const char *dest_id, struct jerror *err)
{
	enum jerr ret;
	bool held = false;
	if ((ret = state_refuse_readonly(st, err)))
		return ret;
	ret = st->ops->lock_beat(st, dest_id, state_now_ms(), &held, err);
	if (!ret && !held) {
		ret = jerror_set(err, JERR_STATE_BUSY, "lost the lock of destination \"%s\"", dest_id);
		jerror_detail(err, "another run took it over in state store \"%s\"", st->path);
		jerror_hint(err, "heartbeats must come more often than the stale time of the lock");
	}
	return ret;
}

void state_lock_release(struct state *st, const char *dest_id)
{
	struct jerror e = JERROR_INIT;
	if (!st || st->readonly)
		return;
	if (st->ops->lock_del(st, dest_id, &e))
		log_error("%s", e.msg.buf);
	jerror_release(&e);
}

/* ---- hash ---- */

void state_hash(const void *data, size_t len, unsigned char out[STATE_HASH_LEN])
{
	XXH128_canonical_t c;
	XXH128_canonicalFromHash(&c, XXH3_128bits(data, len));
	memcpy(out, c.digest, STATE_HASH_LEN);
}

/* ---- marks ---- */

enum jerr state_mark_get(struct state *st, const char *schedule_id, struct strbuf *value,
			 struct strbuf *basis, bool *found, struct jerror *err)
{
	*found = false;
	strbuf_reset(value);
	if (basis)
		strbuf_reset(basis);
	if (st->version < 2)
		return JERR_OK; /* an older store opened read-only: no marks table yet */
	return st->ops->mark_get(st, schedule_id, value, basis, found, err);
}

enum jerr state_mark_set(struct state *st, const char *schedule_id, const char *value,
			 const char *basis, struct jerror *err)
{
	enum jerr ret;
	if ((ret = state_refuse_readonly(st, err)))
		return ret;
	return st->ops->mark_set(st, schedule_id, value, basis, state_now_ms(), err);
}

/* ---- export and import ---- */

enum jerr state_dump(struct state *st, state_dump_fn fn, void *ctx, struct jerror *err)
{
	return st->ops->dump(st, fn, ctx, err);
}

enum jerr state_is_empty(struct state *st, bool *empty, struct jerror *err)
{
	*empty = false;
	return st->ops->is_empty(st, empty, err);
}

/* The sync log's tables (synclog_outbox, synclog_runs) exist from schema version 6 on. */
#define SYNCLOG_SINCE 6

enum jerr state_delete_tables(struct state *st,
			      enum jerr (*del)(struct state *st, const char *sql, struct jerror *err),
			      struct jerror *err)
{
	enum jerr ret = JERR_OK;
	/*
	 * What is kept per run id goes with the runs: left behind, a run_notes or
	 * synclog_runs row would describe the imported run of the same id (its trigger,
	 * records read, log status), and the outbox's rows of the old runs would be written
	 * to the log as if they were the new ones'.
	 */
	if (st->version >= STATE_RUN_NOTES_SINCE)
		ret = del(st, "DELETE FROM run_notes", err);
	if (!ret && st->version >= SYNCLOG_SINCE)
		ret = del(st, "DELETE FROM synclog_outbox", err);
	if (!ret && st->version >= SYNCLOG_SINCE)
		ret = del(st, "DELETE FROM synclog_runs", err);
	for (size_t i = state_n_tables; i-- > 0 && !ret;) {
		struct strbuf sql = STRBUF_INIT;
		if (state_tables[i].since > st->version)
			continue;
		strbuf_addf(&sql, "DELETE FROM %s", state_tables[i].name);
		ret = del(st, sql.buf, err);
		strbuf_release(&sql);
	}
	return ret;
}

enum jerr state_clear(struct state *st, struct jerror *err)
{
	enum jerr ret;
	if ((ret = state_refuse_readonly(st, err)))
		return ret;
	return st->ops->clear(st, err);
}

/* The value's kind fits the column. */
static enum jerr check_value(struct state *st, const struct state_table *t, size_t col,
			     const struct state_value *v, struct jerror *err)
{
	const struct state_column *c = &t->cols[col];
	const char *want = NULL;
	switch (v->kind) {
	case STATE_VAL_NULL:
		if (!c->nullable)
			want = "a value";
		break;
	case STATE_VAL_INT:
		if (c->type == STATE_COL_TEXT || c->type == STATE_COL_HASH)
			want = c->type == STATE_COL_TEXT ? "text" : "a hash";
		else if (c->type == STATE_COL_BOOL && v->i != 0 && v->i != 1)
			want = "a boolean";
		break;
	case STATE_VAL_TEXT:
		if (c->type == STATE_COL_INT || c->type == STATE_COL_BOOL)
			want = c->type == STATE_COL_INT ? "an integer" : "a boolean";
		else if (c->type == STATE_COL_HASH && v->s.len != STATE_HASH_LEN)
			want = "a hash of 16 bytes";
		break;
	}
	if (!want)
		return JERR_OK;
	jerror_set(err, JERR_STATE, "could not load a row of table \"%s\" into state store \"%s\"",
		   t->name, st->path);
	jerror_detail(err, "column \"%s\" needs %s", c->name, want);
	return JERR_STATE;
}

enum jerr state_load_row(struct state *st, const struct state_table *t,
			 const struct state_value *row, struct jerror *err)
{
	enum jerr ret;
	if ((ret = state_refuse_readonly(st, err)))
		return ret;
	for (size_t i = 0; i < t->n_cols; i++)
		if ((ret = check_value(st, t, i, &row[i], err)))
			return ret;
	return st->ops->load_row(st, t, row, err);
}

enum jerr state_load_finish(struct state *st, struct jerror *err)
{
	enum jerr ret;
	if ((ret = state_refuse_readonly(st, err)))
		return ret;
	return st->ops->load_finish(st, err);
}

void run_counts_add(struct run_counts *a, const struct run_counts *b)
{
	a->created += b->created;
	a->updated += b->updated;
	a->deleted += b->deleted;
	a->unsubscribed += b->unsubscribed;
	a->unchanged += b->unchanged;
	a->failed += b->failed;
	a->skipped += b->skipped;
	a->requests += b->requests;
	a->retries += b->retries;
	a->throttled += b->throttled;
	a->data_points += b->data_points;
}

/* ---- the sync log's outbox and per-run status ---- */

enum jerr state_outbox_put(struct state *st, const char *dest_id, int64_t run_id, struct slice body,
			   int64_t *id, struct jerror *err)
{
	enum jerr ret;
	*id = 0;
	if ((ret = state_refuse_readonly(st, err)))
		return ret;
	return st->ops->outbox_put(st, dest_id, run_id, body, state_now_ms(), id, err);
}

enum jerr state_outbox_next(struct state *st, const char *dest_id, int64_t after, int64_t *id, int64_t *run_id,
			    struct strbuf *body, bool *found, struct jerror *err)
{
	*found = false;
	*id = *run_id = 0;
	strbuf_reset(body);
	if (st->version < SYNCLOG_SINCE)
		return JERR_OK;
	return st->ops->outbox_next(st, dest_id, after, id, run_id, body, found, err);
}

enum jerr state_outbox_delete(struct state *st, const char *dest_id, int64_t id, bool *deleted,
			      struct jerror *err)
{
	enum jerr ret;
	*deleted = false;
	if ((ret = state_refuse_readonly(st, err)))
		return ret;
	return st->ops->outbox_delete(st, dest_id, id, deleted, err);
}

enum jerr state_outbox_count(struct state *st, const char *dest_id, uint64_t *rows, uint64_t *bytes,
			     struct jerror *err)
{
	*rows = *bytes = 0;
	if (st->version < SYNCLOG_SINCE)
		return JERR_OK;
	return st->ops->outbox_count(st, dest_id, rows, bytes, err);
}

enum jerr state_synclog_set(struct state *st, const struct state_synclog_info *info, struct jerror *err)
{
	enum jerr ret;
	if ((ret = state_refuse_readonly(st, err)))
		return ret;
	return st->ops->synclog_set(st, info, state_now_ms(), err);
}

enum jerr state_synclog_get(struct state *st, int64_t run_id, struct state_synclog_info *info,
			    struct strbuf *status, struct strbuf *error, bool *found, struct jerror *err)
{
	*found = false;
	memset(info, 0, sizeof(*info));
	strbuf_reset(status);
	strbuf_reset(error);
	if (st->version < SYNCLOG_SINCE)
		return JERR_OK;
	return st->ops->synclog_get(st, run_id, info, status, error, found, err);
}

enum jerr state_synclog_unfinished(struct state *st, const char *dest_id, int64_t *ids, size_t max, size_t *n,
				   struct jerror *err)
{
	*n = 0;
	if (st->version < SYNCLOG_SINCE || !max)
		return JERR_OK;
	return st->ops->synclog_unfinished(st, dest_id, ids, max, n, err);
}
