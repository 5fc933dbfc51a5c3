/* synclog.c: a destination's sync log: outbox rows per batch, a writer thread, the run's summary. */
#include "engine/synclog.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "base/log.h"
#include "base/xalloc.h"
#include "synclog/db.h"

/* Queued bodies the writer has not taken, at most (beyond: they wait in the outbox). */
#define QUEUE_MAX_BYTES ((size_t)64 << 20)
/* Record rows per write to the log database (one transaction). */
#define WRITE_ROWS 5000
/*
 * The writer lets bodies gather for up to this long (unless someone waits for it) so a
 * write carries a few thousand rows, not one batch's 75: far fewer transactions.
 */
#define GATHER_MS 200
/* Outbox rows written are deleted once this many have gathered (and at the end). */
#define DELETE_EVERY 32
/* The writer thread's nice value (the run's thread keeps its own). */
#define WRITER_NICE 10
#define GATHER_BYTES ((size_t)256 << 10)
/* Retention: rows deleted per transaction, and transactions per run at most. */
#define PURGE_CHUNK 10000
#define PURGE_MAX_CHUNKS 100
/* Earlier runs whose summary is brought up to date per run, at most. */
#define RECOVER_MAX 16

static double mono_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- names ---- */

const char *synclog_op_name(enum synclog_op op)
{
	static const char *const names[] = { "create", "update", "delete", "unsubscribe", "enrich" };
	return (unsigned)op < sizeof(names) / sizeof(names[0]) ? names[op] : "?";
}

const char *synclog_status_name(enum synclog_status s)
{
	static const char *const names[] = { "confirmed", "failed", "not_in_braze" };
	return (unsigned)s < sizeof(names) / sizeof(names[0]) ? names[s] : "?";
}

const char *synclog_error_code(const char *msg, bool local, char buf[16])
{
	if (local)
		return "local";
	if (!msg)
		return "rejected";
	if (strstr(msg, "gave up"))
		return "retries_exhausted";
	const char *h = strstr(msg, "HTTP ");
	if (h && h[5] >= '1' && h[5] <= '5' && h[6] >= '0' && h[6] <= '9' && h[7] >= '0' && h[7] <= '9') {
		snprintf(buf, 16, "http_%c%c%c", h[5], h[6], h[7]);
		return buf;
	}
	return "rejected";
}

/* ---- the body format ---- */

/*
 * A body is the log rows of one batch: "JL", version 1, flags 0; the run id (8 bytes);
 * the destination (4-byte length, bytes); a dictionary of strings (count, then length
 * and bytes each) that the rows refer to by index (a batch's rows share their changed
 * fields and errors); then the rows (count; each: op, status, key kind, local flag,
 * key integer, key text, attempt, time, changed and error indexes, NONE for none).
 * Integers are little-endian.
 */
#define BODY_VERSION 1
#define NONE 0xffffffffu

static void put_u32(struct strbuf *sb, uint32_t v)
{
	unsigned char b[4] = { (unsigned char)v, (unsigned char)(v >> 8), (unsigned char)(v >> 16),
			       (unsigned char)(v >> 24) };
	strbuf_add(sb, b, 4);
}

static void put_u64(struct strbuf *sb, uint64_t v)
{
	put_u32(sb, (uint32_t)v);
	put_u32(sb, (uint32_t)(v >> 32));
}

void synclog_body_begin(struct synclog_body *b)
{
	memset(b, 0, sizeof(*b));
	strbuf_init(&b->rows, 0);
	strbuf_init(&b->strings, 0);
}

void synclog_body_release(struct synclog_body *b)
{
	strbuf_release(&b->rows);
	strbuf_release(&b->strings);
	free(b->dict);
	memset(b, 0, sizeof(*b));
}

/* Index of s in the dictionary, added if new; NONE for an empty s. */
static uint32_t intern(struct synclog_body *b, struct slice s)
{
	if (!s.len)
		return NONE;
	for (uint32_t i = 0; i < b->n_strings; i++)
		if (slice_eq(b->dict[i], s))
			return i;
	put_u32(&b->strings, (uint32_t)s.len);
	strbuf_add(&b->strings, s.ptr, s.len);
	ALLOC_GROW(b->dict, (size_t)b->n_strings + 1, b->dict_alloc);
	b->dict[b->n_strings] = s; /* borrowed from the caller until the body ends */
	return b->n_strings++;
}

void synclog_body_add(struct synclog_body *b, const struct synclog_entry *e)
{
	unsigned char head[4] = { (unsigned char)e->op, (unsigned char)e->status, e->key.is_int ? 1 : 0,
				  e->local ? 1 : 0 };
	uint32_t changed = intern(b, e->changed), error = intern(b, e->error);
	if (e->status == SYNCLOG_FAILED && !e->error.len)
		error = NONE;
	strbuf_add(&b->rows, head, 4);
	put_u64(&b->rows, (uint64_t)e->key.i);
	put_u32(&b->rows, (uint32_t)e->key.text.len);
	strbuf_add(&b->rows, e->key.text.ptr, e->key.text.len);
	put_u32(&b->rows, (uint32_t)e->attempt);
	put_u64(&b->rows, (uint64_t)e->at_ms);
	put_u32(&b->rows, changed);
	put_u32(&b->rows, error);
	b->n_rows++;
}

void synclog_body_end(struct synclog_body *b, int64_t run_id, const char *dest_id, struct strbuf *out)
{
	static const unsigned char magic[4] = { 'J', 'L', BODY_VERSION, 0 };
	strbuf_reset(out);
	strbuf_add(out, magic, 4);
	put_u64(out, (uint64_t)run_id);
	put_u32(out, (uint32_t)strlen(dest_id));
	strbuf_addstr(out, dest_id);
	put_u32(out, b->n_strings);
	strbuf_add(out, b->strings.buf, b->strings.len);
	put_u32(out, b->n_rows);
	strbuf_add(out, b->rows.buf, b->rows.len);
	strbuf_reset(&b->rows);
	strbuf_reset(&b->strings);
	b->n_rows = b->n_strings = 0;
}

struct reader {
	const unsigned char *p, *end;
	bool bad;
};

/* The run id in a body's header (0 for a body too short to have one). */
static int64_t body_run_id(struct slice body)
{
	const unsigned char *p = (const unsigned char *)body.ptr + 4;
	uint64_t v = 0;
	if (body.len < 12)
		return 0;
	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return (int64_t)v;
}

static uint32_t get_u32(struct reader *r)
{
	if (r->end - r->p < 4) {
		r->bad = true;
		r->p = r->end;
		return 0;
	}
	uint32_t v = (uint32_t)r->p[0] | (uint32_t)r->p[1] << 8 | (uint32_t)r->p[2] << 16 | (uint32_t)r->p[3] << 24;
	r->p += 4;
	return v;
}

static uint64_t get_u64(struct reader *r)
{
	uint64_t lo = get_u32(r);
	return lo | (uint64_t)get_u32(r) << 32;
}

static struct slice get_bytes(struct reader *r, uint32_t n)
{
	if ((size_t)(r->end - r->p) < n) {
		r->bad = true;
		r->p = r->end;
		return (struct slice){ "", 0 };
	}
	struct slice s = { (const char *)r->p, n };
	r->p += n;
	return s;
}

enum jerr synclog_body_decode(struct slice body, int64_t *run_id, struct slice *dest,
			      enum jerr (*fn)(void *ctx, const struct synclog_entry *e, struct jerror *err), void *ctx,
			      uint32_t *n_rows, struct jerror *err)
{
	struct reader r = { (const unsigned char *)body.ptr, (const unsigned char *)body.ptr + body.len, false };
	struct slice *dict = NULL;
	enum jerr rc = JERR_OK;
	char num[24];

	*n_rows = 0;
	if (body.len < 4 || memcmp(body.ptr, "JL", 2) || (unsigned char)body.ptr[2] != BODY_VERSION)
		return jerror_set(err, JERR_STATE, "a sync log outbox row is not in this joey's format (version %d)",
				  body.len >= 3 ? (unsigned char)body.ptr[2] : 0);
	r.p += 4;
	*run_id = (int64_t)get_u64(&r);
	*dest = get_bytes(&r, get_u32(&r));
	uint32_t ns = get_u32(&r);
	if (ns > body.len)
		r.bad = true;
	dict = xcalloc(ns ? ns : 1, sizeof(*dict));
	for (uint32_t i = 0; i < ns && !r.bad; i++)
		dict[i] = get_bytes(&r, get_u32(&r));
	uint32_t n = get_u32(&r);
	for (uint32_t i = 0; i < n && !r.bad && !rc; i++) {
		struct synclog_entry e = { 0 };
		struct slice head = get_bytes(&r, 4);
		if (r.bad)
			break;
		e.op = (enum synclog_op)(unsigned char)head.ptr[0];
		e.status = (enum synclog_status)(unsigned char)head.ptr[1];
		e.key.is_int = head.ptr[2] != 0;
		e.local = head.ptr[3] != 0;
		e.key.i = (int64_t)get_u64(&r);
		e.key.text = get_bytes(&r, get_u32(&r));
		e.attempt = (int)get_u32(&r);
		e.at_ms = (int64_t)get_u64(&r);
		uint32_t c = get_u32(&r), x = get_u32(&r);
		if (r.bad || (c != NONE && c >= ns) || (x != NONE && x >= ns) || e.op > SYNCLOG_ENRICH ||
		    e.status > SYNCLOG_NOT_IN_BRAZE) {
			r.bad = true;
			break;
		}
		if (e.key.is_int && !e.key.text.len) {
			int k = snprintf(num, sizeof(num), "%" PRId64, e.key.i);
			e.key.text = (struct slice){ num, (size_t)k };
		}
		e.changed = c == NONE ? (struct slice){ "", 0 } : dict[c];
		e.error = x == NONE ? (struct slice){ "", 0 } : dict[x];
		(*n_rows)++;
		if (fn)
			rc = fn(ctx, &e, err);
	}
	free(dict);
	if (!rc && r.bad)
		rc = jerror_set(err, JERR_STATE, "a sync log outbox row is damaged (%zu bytes)", body.len);
	return rc;
}

/* ---- the writer thread ---- */

enum item_kind { IT_BODY, IT_RUN, IT_PURGE };

/* A summary with its strings owned. */
struct run_copy {
	struct synclog_run r;
	char *model, *trigger, *error;
};

struct item {
	struct item *next;
	enum item_kind kind;
	int64_t outbox_id;    /* IT_BODY */
	int64_t run_id;       /* IT_BODY: its run (known once decoded) */
	uint32_t n_rows;      /* IT_BODY: its rows (known once decoded) */
	struct strbuf body;   /* IT_BODY */
	struct run_copy run;  /* IT_RUN */
	int64_t before_ms;    /* IT_PURGE */
};

/* An outbox row the writer has written: delete it, and count its rows as written. */
struct done {
	int64_t id, run_id;
	uint32_t rows;
};

struct synclog {
	const struct config *cfg;
	const struct cfg_destination *dest;
	const struct synclog_db_ops *ops;
	int64_t run_id;
	bool part;

	pthread_t thread;
	bool thread_started;
	pthread_mutex_t mu;
	pthread_cond_t wake, idle;
	struct item *head, *tail; /* the queue */
	size_t queued_bytes;
	bool busy, stop;
	int waiting; /* threads in wait_idle: write what is queued at once */
	/* the writer's (under mu) */
	struct synclog_db *db;
	bool failed;
	struct jerror error;
	struct done *done; /* outbox rows written, to delete */
	size_t n_done, done_alloc;
	uint64_t overflow; /* bodies left in the outbox because the queue was full */

	/* the run's thread's */
	struct synclog_body body;
	struct strbuf encoded;
	struct item *staged; /* bodies of the open transaction */
	struct item *kept;   /* bodies encoded by synclog_keep, not yet staged (newest first) */
	struct done *deleting; /* done rows deleted in the open transaction */
	size_t n_deleting, deleting_alloc;
};

static void item_free(struct item *it)
{
	if (!it)
		return;
	strbuf_release(&it->body);
	free(it->run.model);
	free(it->run.trigger);
	free(it->run.error);
	free(it);
}


/* Decoding a body into db rows (owned ids and keys, freed after the write). */
struct row_buf {
	struct synclog_row *rows;
	size_t n, alloc;
	struct strbuf text; /* keys, changed fields, errors (offsets fixed up before writing) */
	size_t *offs;       /* per row: key, changed, error offsets and lengths */
	const char *dest;
	int64_t run_id;
};

struct decode_ctx {
	struct row_buf *rb;
};

#define OFFS 6 /* per row: key offset and length, changed, error and error code offsets (or -1), unused */

static size_t add_text(struct strbuf *sb, struct slice s)
{
	size_t at = sb->len;
	strbuf_add(sb, s.ptr, s.len);
	strbuf_addch(sb, 0);
	return at;
}

static enum jerr decode_row(void *vctx, const struct synclog_entry *e, struct jerror *err)
{
	struct row_buf *rb = ((struct decode_ctx *)vctx)->rb;
	(void)err;
	if (rb->n == rb->alloc) {
		size_t na = rb->alloc ? rb->alloc * 2 : 256;
		rb->rows = xrealloc(rb->rows, na * sizeof(*rb->rows));
		rb->offs = xrealloc(rb->offs, na * OFFS * sizeof(*rb->offs));
		rb->alloc = na;
	}
	size_t *o = &rb->offs[rb->n * OFFS];
	struct synclog_row *r = &rb->rows[rb->n];
	memset(r, 0, sizeof(*r));
	o[0] = add_text(&rb->text, e->key.text);
	o[1] = e->key.text.len;
	o[2] = e->changed.len ? add_text(&rb->text, e->changed) : (size_t)-1;
	o[3] = e->error.len ? add_text(&rb->text, e->error) : (size_t)-1;
	o[4] = (size_t)-1;
	if (e->status == SYNCLOG_FAILED) {
		char buf[16], msg[256];
		size_t n = e->error.len < sizeof(msg) - 1 ? e->error.len : sizeof(msg) - 1;
		memcpy(msg, e->error.ptr, n);
		msg[n] = 0;
		o[4] = add_text(&rb->text, slice_of(synclog_error_code(e->error.len ? msg : NULL, e->local, buf)));
	}
	r->run_id = rb->run_id;
	r->destination = rb->dest;
	r->operation = synclog_op_name(e->op);
	r->status = synclog_status_name(e->status);
	r->attempt = e->attempt;
	r->at_ms = e->at_ms;
	o[5] = 0;
	rb->n++;
	return JERR_OK;
}

static void rows_fixup(struct row_buf *rb)
{
	for (size_t i = 0; i < rb->n; i++) {
		size_t *o = &rb->offs[i * OFFS];
		struct synclog_row *r = &rb->rows[i];
		r->key = (struct slice){ rb->text.buf + o[0], o[1] };
		r->changed = o[2] == (size_t)-1 ? NULL : rb->text.buf + o[2];
		r->error = o[3] == (size_t)-1 ? NULL : rb->text.buf + o[3];
		if (o[4] != (size_t)-1) {
			r->error_code = rb->text.buf + o[4];
			if (!r->error)
				r->error = "failed";
		}
	}
}

/* Write the queued bodies taken (items) to the log database; called without mu. */
static void write_bodies(struct synclog *l, struct item *items)
{
	struct row_buf rb = { 0 };
	struct jerror err = JERROR_INIT;
	enum jerr rc = JERR_OK;
	strbuf_init(&rb.text, 0);
	/* one transaction per run id (a body's rows share one; bodies of earlier runs come first) */
	for (struct item *it = items; it && !rc;) {
		struct item *first = it;
		int64_t run_id = 0;
		uint32_t n;
		rb.n = 0;
		strbuf_reset(&rb.text);
		for (; it; it = it->next) {
			int64_t rid;
			struct slice d;
			/* one transaction holds one run's rows */
			rid = body_run_id((struct slice){ it->body.buf, it->body.len });
			if (it != first && rid != run_id)
				break;
			run_id = rid;
			rb.run_id = rid;
			rb.dest = l->dest->id;
			struct decode_ctx dc = { &rb };
			if ((rc = synclog_body_decode((struct slice){ it->body.buf, it->body.len }, &rid, &d, decode_row, &dc,
						      &n, &err)))
				break;
			it->run_id = rid;
			it->n_rows = n;
			if (rb.n >= WRITE_ROWS) {
				it = it->next;
				break;
			}
		}
		if (!rc) {
			rows_fixup(&rb);
			if (!l->db)
				rc = l->ops->connect(l->dest->sync_log_app, l->cfg->root, l->dest->sync_log_prefix, &l->db, &err);
			if (!rc)
				rc = l->ops->write_records(l->db, rb.rows, rb.n, &err);
		}
		pthread_mutex_lock(&l->mu);
		if (!rc) {
			for (struct item *x = first; x != it; x = x->next) {
				ALLOC_GROW(l->done, l->n_done + 1, l->done_alloc);
				l->done[l->n_done++] = (struct done){ x->outbox_id, x->run_id, x->n_rows };
			}
		} else if (!l->failed) {
			l->failed = true;
			jerror_release(&l->error);
			l->error = err;
			err = (struct jerror)JERROR_INIT;
		}
		pthread_mutex_unlock(&l->mu);
	}
	jerror_release(&err);
	free(rb.rows);
	free(rb.offs);
	strbuf_release(&rb.text);
}

static void fail(struct synclog *l, struct jerror *err)
{
	pthread_mutex_lock(&l->mu);
	if (!l->failed) {
		l->failed = true;
		jerror_release(&l->error);
		l->error = *err;
		*err = (struct jerror)JERROR_INIT;
	}
	pthread_mutex_unlock(&l->mu);
}

static void write_other(struct synclog *l, struct item *it)
{
	struct jerror err = JERROR_INIT;
	enum jerr rc = JERR_OK;
	if (!l->db)
		rc = l->ops->connect(l->dest->sync_log_app, l->cfg->root, l->dest->sync_log_prefix, &l->db, &err);
	if (!rc && it->kind == IT_RUN) {
		rc = l->ops->write_run(l->db, &it->run.r, &err);
	} else if (!rc && it->kind == IT_PURGE) {
		uint64_t n = PURGE_CHUNK, total = 0;
		for (int i = 0; i < PURGE_MAX_CHUNKS && n == PURGE_CHUNK && !rc; i++) {
			rc = l->ops->purge(l->db, l->dest->id, it->before_ms, PURGE_CHUNK, &n, &err);
			total += n;
		}
		if (!rc && total)
			log_info("destination \"%s\": sync log: deleted %llu rows older than %d days", l->dest->id,
				 (unsigned long long)total, l->dest->sync_log_retention_days);
	}
	if (rc)
		fail(l, &err);
	jerror_release(&err);
}

static void *writer_main(void *arg)
{
	struct synclog *l = arg;
	/*
	 * The export comes first: on a busy machine the writer yields the CPU to the run's
	 * thread (Linux: a thread's own nice value) and catches up while the run waits for
	 * Braze, or at its end.
	 */
	if (setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), WRITER_NICE) != 0)
		log_debug("sync log: could not lower the writer thread's priority");
	pthread_mutex_lock(&l->mu);
	for (;;) {
		while (!l->head && !l->stop)
			pthread_cond_wait(&l->wake, &l->mu);
		if (!l->head)
			break;
		if (l->head->kind == IT_BODY && l->queued_bytes < GATHER_BYTES && !l->stop && !l->waiting) {
			struct timespec until;
			clock_gettime(CLOCK_REALTIME, &until);
			until.tv_nsec += (long)GATHER_MS * 1000000;
			until.tv_sec += until.tv_nsec / 1000000000;
			until.tv_nsec %= 1000000000;
			while (l->queued_bytes < GATHER_BYTES && !l->stop && !l->waiting)
				if (pthread_cond_timedwait(&l->wake, &l->mu, &until))
					break;
		}
		/* take every body queued (they go in one write per run id), or one other item */
		struct item *take = l->head, *last = l->head;
		if (take->kind == IT_BODY)
			while (last->next && last->next->kind == IT_BODY)
				last = last->next;
		l->head = last->next;
		if (!l->head)
			l->tail = NULL;
		last->next = NULL;
		for (struct item *x = take; x; x = x->next)
			l->queued_bytes -= x->body.len;
		bool failed = l->failed;
		l->busy = true;
		pthread_mutex_unlock(&l->mu);
		if (!failed) { /* after a failure the rest waits in the outbox */
			if (take->kind == IT_BODY)
				write_bodies(l, take);
			else
				write_other(l, take);
		}
		while (take) {
			struct item *next = take->next;
			item_free(take);
			take = next;
		}
		pthread_mutex_lock(&l->mu);
		l->busy = false;
		if (!l->head)
			pthread_cond_broadcast(&l->idle);
	}
	pthread_mutex_unlock(&l->mu);
	return NULL;
}

static void enqueue(struct synclog *l, struct item *it)
{
	if (!l->thread_started) { /* no writer: the rows wait in the outbox */
		item_free(it);
		return;
	}
	pthread_mutex_lock(&l->mu);
	it->next = NULL;
	if (l->tail)
		l->tail->next = it;
	else
		l->head = it;
	l->tail = it;
	l->queued_bytes += it->body.len;
	if (it->kind != IT_BODY || l->queued_bytes >= GATHER_BYTES || l->head == it)
		pthread_cond_signal(&l->wake);
	pthread_mutex_unlock(&l->mu);
}

/* Wait until the writer has done everything queued. */
static void wait_idle(struct synclog *l)
{
	if (!l->thread_started)
		return;
	pthread_mutex_lock(&l->mu);
	l->waiting++;
	pthread_cond_signal(&l->wake);
	while (l->head || l->busy)
		pthread_cond_wait(&l->idle, &l->mu);
	l->waiting--;
	pthread_mutex_unlock(&l->mu);
}

static bool has_failed(struct synclog *l)
{
	pthread_mutex_lock(&l->mu);
	bool f = l->failed;
	pthread_mutex_unlock(&l->mu);
	return f;
}

/* Record rows of run_id written to the log (synclog_runs.written); 0 if unknown. */
static uint64_t rows_of(struct state *st, int64_t run_id)
{
	struct state_synclog_info info;
	struct strbuf status = STRBUF_INIT, error = STRBUF_INIT;
	struct jerror e = JERROR_INIT;
	bool found = false;
	uint64_t n = 0;
	if (!state_synclog_get(st, run_id, &info, &status, &error, &found, &e) && found)
		n = info.rows;
	strbuf_release(&status);
	strbuf_release(&error);
	jerror_release(&e);
	return n;
}

/* ---- the run's side ---- */

static void summary_item(struct synclog *l, const struct synclog_summary *s, int64_t finished_ms,
			 const char *log_status, uint64_t log_rows, struct item *it)
{
	const struct run_counts *c = s->counts;
	static const struct run_counts zero;
	if (!c)
		c = &zero;
	it->kind = IT_RUN;
	it->run.model = xstrdup(l->dest->model ? l->dest->model->id : "");
	it->run.trigger = s->trigger ? xstrdup(s->trigger) : NULL;
	it->run.error = s->error ? xstrdup(s->error) : NULL;
	it->run.r = (struct synclog_run){
		.run_id = s->run_id, .destination = l->dest->id, .model = it->run.model, .trigger = it->run.trigger,
		.status = run_status_name(s->status), .started_ms = s->started_ms, .finished_ms = finished_ms,
		.records_read = s->records_read, .created = c->created, .updated = c->updated, .deleted = c->deleted,
		.unsubscribed = c->unsubscribed, .unchanged = c->unchanged, .failed = c->failed,
		.not_in_braze = c->skipped, .requests = c->requests, .retries = c->retries, .error = it->run.error,
		.log_status = log_status, .log_rows = log_rows,
	};
}

struct synclog *synclog_start(const struct config *cfg, const struct cfg_destination *dest, struct state *st,
			      const struct synclog_summary *s)
{
	if (!dest->sync_log_app)
		return NULL;
	const struct synclog_db_ops *ops = synclog_db_for_app(dest->sync_log_app->type);
	if (!ops)
		return NULL; /* config validation refuses such an app */
	struct synclog *l = xcalloc(1, sizeof(*l));
	l->cfg = cfg;
	l->dest = dest;
	l->ops = ops;
	l->run_id = s->run_id;
	l->part = s->part;
	l->error = (struct jerror)JERROR_INIT;
	pthread_mutex_init(&l->mu, NULL);
	pthread_cond_init(&l->wake, NULL);
	pthread_cond_init(&l->idle, NULL);
	synclog_body_begin(&l->body);
	strbuf_init(&l->encoded, 0);
	if (pthread_create(&l->thread, NULL, writer_main, l) == 0) {
		l->thread_started = true;
	} else {
		struct jerror e = JERROR_INIT;
		jerror_set(&e, JERR_INTERNAL, "could not start the sync log's writer thread");
		fail(l, &e);
		jerror_release(&e);
	}
	if (!s->part) {
		struct item *it = xcalloc(1, sizeof(*it));
		strbuf_init(&it->body, 0);
		summary_item(l, s, 0, "writing", 0, it);
		enqueue(l, it);
		struct jerror e = JERROR_INIT;
		struct state_synclog_info info = { .run_id = s->run_id, .dest_id = dest->id, .status = "writing" };
		if (state_synclog_set(st, &info, &e))
			log_warn("destination \"%s\": %s", dest->id, e.msg.buf);
		jerror_release(&e);
	}
	return l;
}

/*
 * Delete from the outbox, in the caller's transaction, what the writer has written,
 * and count those rows as written (synclog_runs.written of their runs) in the same
 * transaction: a row is counted once, however often a crash made it written.
 */
static enum jerr delete_done(struct synclog *l, struct state *st, struct jerror *err)
{
	enum jerr rc = JERR_OK;
	pthread_mutex_lock(&l->mu);
	ALLOC_GROW(l->deleting, l->n_deleting + l->n_done, l->deleting_alloc);
	if (l->n_done)
		memcpy(l->deleting + l->n_deleting, l->done, l->n_done * sizeof(*l->done));
	size_t from = l->n_deleting;
	l->n_deleting += l->n_done;
	l->n_done = 0;
	pthread_mutex_unlock(&l->mu);
	/* a row another process deleted first (a worker's drain) is not counted twice */
	for (size_t i = from; i < l->n_deleting && !rc; i++) {
		bool gone = false;
		rc = state_outbox_delete(st, l->dest->id, l->deleting[i].id, &gone, err);
		if (!gone)
			l->deleting[i].rows = 0;
	}
	/* the rows per run: a batch's deletes are of one or two runs, a drain's of a few */
	for (size_t i = from; i < l->n_deleting && !rc; i++) {
		int64_t run_id = l->deleting[i].run_id;
		uint64_t add = 0;
		bool seen = false;
		for (size_t k = from; k < i && !seen; k++)
			seen = l->deleting[k].run_id == run_id;
		if (seen)
			continue;
		for (size_t k = i; k < l->n_deleting; k++)
			if (l->deleting[k].run_id == run_id)
				add += l->deleting[k].rows;
		if (!add)
			continue;
		struct state_synclog_info info;
		struct strbuf status = STRBUF_INIT, error = STRBUF_INIT;
		bool found = false;
		rc = state_synclog_get(st, run_id, &info, &status, &error, &found, err);
		if (!rc) {
			struct state_synclog_info set = { .run_id = run_id, .dest_id = l->dest->id,
							  .status = found ? info.status : "writing",
							  .rows = (found ? info.rows : 0) + add,
							  .pending = found ? info.pending : 0,
							  .error = found ? info.error : NULL };
			rc = state_synclog_set(st, &set, err);
		}
		strbuf_release(&status);
		strbuf_release(&error);
	}
	return rc;
}

/* The staged body (l->body) into the outbox, kept for the writer. */
/* The rows added to l->body so far, encoded (their borrowed strings copied), as an item. */
static struct item *body_item(struct synclog *l)
{
	synclog_body_end(&l->body, l->run_id, l->dest->id, &l->encoded);
	struct item *it = xcalloc(1, sizeof(*it));
	it->kind = IT_BODY;
	strbuf_init(&it->body, l->encoded.len);
	strbuf_add(&it->body, l->encoded.buf, l->encoded.len);
	return it;
}

/* Put it (owned) into the outbox, inside the open transaction, and onto l->staged. */
static enum jerr stage_item(struct synclog *l, struct state *st, struct item *it, struct jerror *err)
{
	enum jerr rc = state_outbox_put(st, l->dest->id, l->run_id, (struct slice){ it->body.buf, it->body.len },
					&it->outbox_id, err);
	if (rc) {
		item_free(it);
		return rc;
	}
	it->next = l->staged;
	l->staged = it;
	return JERR_OK;
}

/* After staging: written rows leave the outbox a few dozen batches at a time. */
static enum jerr stage_done(struct synclog *l, struct state *st, struct jerror *err)
{
	pthread_mutex_lock(&l->mu);
	bool many = l->n_done >= DELETE_EVERY;
	pthread_mutex_unlock(&l->mu);
	return many ? delete_done(l, st, err) : JERR_OK;
}

static enum jerr stage_body(struct synclog *l, struct state *st, struct jerror *err)
{
	enum jerr rc = stage_item(l, st, body_item(l), err);
	return rc ? rc : stage_done(l, st, err);
}

/* The log rows of outcomes o[0..n) into l->body (strings borrowed until body_end). */
static void add_outcomes(struct synclog *l, const struct dest_outcome *o, size_t n)
{
	int64_t now = now_ms();
	for (size_t i = 0; i < n; i++) {
		const struct dest_outcome *x = &o[i];
		struct synclog_entry e = {
			.key = x->key,
			.attempt = x->attempts + 1,
			.at_ms = now,
			.changed = x->changed,
		};
		e.op = x->op == DEST_DELETE ? SYNCLOG_DELETE
		       : !x->in_scope	    ? SYNCLOG_UNSUBSCRIBE
		       : x->op == DEST_ENRICH_NEW ? SYNCLOG_ENRICH
		       : x->create		    ? SYNCLOG_CREATE
						    : SYNCLOG_UPDATE;
		e.status = x->result == DEST_OK ? SYNCLOG_CONFIRMED
			   : x->result == DEST_FAILED ? SYNCLOG_FAILED
						      : SYNCLOG_NOT_IN_BRAZE;
		if (x->result == DEST_FAILED)
			e.error = slice_of(x->error ? x->error : "failed");
		if (x->result == DEST_NOT_FOUND) /* nothing was sent */
			e.changed = (struct slice){ "", 0 };
		synclog_body_add(&l->body, &e);
	}
}

enum jerr synclog_stage(struct synclog *l, struct state *st, const struct dest_outcome *o, size_t n,
			struct jerror *err)
{
	add_outcomes(l, o, n);
	return n ? stage_body(l, st, err) : JERR_OK;
}

void synclog_keep(struct synclog *l, const struct dest_outcome *o, size_t n)
{
	if (!n)
		return;
	add_outcomes(l, o, n);
	struct item *it = body_item(l);
	it->next = l->kept;
	l->kept = it;
}

enum jerr synclog_stage_kept(struct synclog *l, struct state *st, struct jerror *err)
{
	struct item *it = l->kept, *rev = NULL;
	enum jerr rc = JERR_OK;
	if (!it)
		return JERR_OK;
	l->kept = NULL;
	while (it) { /* kept newest first: stage in the order they came */
		struct item *next = it->next;
		it->next = rev;
		rev = it;
		it = next;
	}
	for (it = rev; it;) {
		struct item *next = it->next;
		if (!rc)
			rc = stage_item(l, st, it, err);
		else
			item_free(it); /* the transaction fails: the run fails these rows' destination */
		it = next;
	}
	return rc ? rc : stage_done(l, st, err);
}

enum jerr synclog_stage_local(struct synclog *l, struct state *st, const struct rkey *key, int attempts,
			      const char *why, struct jerror *err)
{
	struct synclog_entry e = { .op = SYNCLOG_UPDATE, .status = SYNCLOG_FAILED, .key = *key, .attempt = attempts + 1,
				   .at_ms = now_ms(), .error = slice_of(why), .local = true };
	synclog_body_add(&l->body, &e);
	return stage_body(l, st, err);
}

void synclog_committed(struct synclog *l)
{
	struct item *it = l->staged, *rev = NULL;
	l->staged = NULL;
	l->n_deleting = 0;
	while (it) { /* staged newest first: restore the order */
		struct item *next = it->next;
		it->next = rev;
		rev = it;
		it = next;
	}
	for (it = rev; it;) {
		struct item *next = it->next;
		pthread_mutex_lock(&l->mu);
		bool room = l->queued_bytes + it->body.len <= QUEUE_MAX_BYTES && !l->failed;
		if (!room)
			l->overflow++;
		pthread_mutex_unlock(&l->mu);
		if (room)
			enqueue(l, it);
		else
			item_free(it); /* it waits in the outbox: synclog_finish writes it */
		it = next;
	}
}

void synclog_rolled_back(struct synclog *l)
{
	while (l->staged) {
		struct item *next = l->staged->next;
		item_free(l->staged);
		l->staged = next;
	}
	/* the deletes were undone: those rows are still in the outbox, and written (idempotent) again */
	l->n_deleting = 0;
}

void synclog_result_release(struct synclog_result *res)
{
	strbuf_release(&res->error);
}

/* Delete the written rows from the outbox in a transaction of their own. */
static void flush_done(struct synclog *l, struct state *st)
{
	struct jerror e = JERROR_INIT;
	enum jerr rc = state_begin(st, &e);
	if (!rc)
		rc = delete_done(l, st, &e);
	if (!rc)
		rc = state_commit(st, &e);
	else
		state_rollback(st);
	l->n_deleting = 0;
	if (rc)
		log_warn("destination \"%s\": sync log: %s (the rows are written again by a later run)", l->dest->id,
			 e.msg.buf);
	jerror_release(&e);
}

/* The record rows the outbox holds for the destination (decoding each row's header). */
static uint64_t outbox_rows(struct synclog *l, struct state *st)
{
	struct strbuf body = STRBUF_INIT;
	struct jerror e = JERROR_INIT;
	int64_t after = 0, id, run_id;
	uint64_t rows = 0;
	bool found = true;
	while (!state_outbox_next(st, l->dest->id, after, &id, &run_id, &body, &found, &e) && found) {
		int64_t rid;
		struct slice d;
		uint32_t n = 0;
		after = id;
		if (!synclog_body_decode((struct slice){ body.buf, body.len }, &rid, &d, NULL, NULL, &n, &e))
			rows += n;
		jerror_release(&e);
		e = (struct jerror)JERROR_INIT;
	}
	jerror_release(&e);
	strbuf_release(&body);
	return rows;
}

/*
 * Every row the outbox holds for the destination to the writer, in id order (this
 * run's the writer did not take, and earlier runs'); *pending: rows left after.
 */
static void drain_outbox(struct synclog *l, struct state *st, uint64_t *pending)
{
	struct strbuf body = STRBUF_INIT;
	struct jerror e = JERROR_INIT;
	int64_t after = 0, id, run_id;
	bool found = true;
	while (found && !has_failed(l)) {
		if (state_outbox_next(st, l->dest->id, after, &id, &run_id, &body, &found, &e)) {
			fail(l, &e);
			break;
		}
		if (!found)
			break;
		after = id;
		struct item *it = xcalloc(1, sizeof(*it));
		it->kind = IT_BODY;
		it->outbox_id = id;
		strbuf_init(&it->body, body.len);
		strbuf_add(&it->body, body.buf, body.len);
		enqueue(l, it);
		pthread_mutex_lock(&l->mu);
		bool full = l->queued_bytes > QUEUE_MAX_BYTES / 4;
		pthread_mutex_unlock(&l->mu);
		if (full) {
			wait_idle(l);
			flush_done(l, st);
		}
	}
	wait_idle(l);
	flush_done(l, st);
	*pending = has_failed(l) ? outbox_rows(l, st) : 0;
	strbuf_release(&body);
	jerror_release(&e);
}

/* Summaries of earlier runs of the destination whose log was not complete, from the state store. */
struct recover_ctx {
	struct synclog *l;
	const int64_t *ids;
	size_t n;
	struct item **items;
	int64_t *done_ids;
	size_t n_items;
};

static enum jerr recover_run(void *vctx, const struct state_run_info *run, struct jerror *err)
{
	struct recover_ctx *c = vctx;
	(void)err;
	for (size_t i = 0; i < c->n; i++) {
		if (c->ids[i] != run->id || run->status == RUN_RUNNING)
			continue;
		struct synclog_summary s = { .run_id = run->id, .trigger = NULL, .started_ms = run->started_at,
					     .records_read = -1, .status = run->status, .counts = &run->counts,
					     .error = run->error };
		struct item *it = xcalloc(1, sizeof(*it));
		strbuf_init(&it->body, 0);
		summary_item(c->l, &s, run->finished_at, "complete", 0, it);
		c->items[c->n_items] = it;
		c->done_ids[c->n_items++] = run->id;
	}
	return JERR_OK;
}

static void recover_summaries(struct synclog *l, struct state *st)
{
	int64_t ids[RECOVER_MAX];
	size_t n = 0;
	struct jerror e = JERROR_INIT;
	if (state_synclog_unfinished(st, l->dest->id, ids, RECOVER_MAX, &n, &e)) {
		log_warn("destination \"%s\": sync log: %s", l->dest->id, e.msg.buf);
		jerror_release(&e);
		return;
	}
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		if (ids[i] != l->run_id)
			ids[k++] = ids[i];
	if (!k)
		return;
	struct item *items[RECOVER_MAX];
	int64_t done_ids[RECOVER_MAX];
	struct recover_ctx c = { l, ids, k, items, done_ids, 0 };
	if (state_runs_list(st, l->dest->id, 0, recover_run, &c, &e)) {
		log_warn("destination \"%s\": sync log: %s", l->dest->id, e.msg.buf);
		jerror_release(&e);
	}
	for (size_t i = 0; i < c.n_items; i++) {
		/* the earlier run's rows: what its own run wrote and what this run wrote for it */
		struct state_synclog_info info;
		struct strbuf status = STRBUF_INIT, error = STRBUF_INIT;
		bool found = false;
		uint64_t before = 0;
		if (!state_synclog_get(st, done_ids[i], &info, &status, &error, &found, &e) && found)
			before = info.rows;
		jerror_release(&e);
		e = (struct jerror)JERROR_INIT;
		items[i]->run.r.log_rows = before;
		uint64_t rows = items[i]->run.r.log_rows;
		enqueue(l, items[i]);
		wait_idle(l);
		if (!has_failed(l)) {
			struct state_synclog_info set = { .run_id = done_ids[i], .dest_id = l->dest->id,
							  .status = "complete", .rows = rows };
			if (state_synclog_set(st, &set, &e))
				log_warn("destination \"%s\": sync log: %s", l->dest->id, e.msg.buf);
			jerror_release(&e);
			e = (struct jerror)JERROR_INIT;
		}
		strbuf_release(&status);
		strbuf_release(&error);
	}
	jerror_release(&e);
}

void synclog_finish(struct synclog *l, struct state *st, const struct synclog_summary *s,
		    struct synclog_result *res)
{
	memset(res, 0, sizeof(*res));
	strbuf_init(&res->error, 0);
	res->status = "complete";
	if (!l)
		return;
	synclog_rolled_back(l); /* nothing should be staged; if it is, its transaction is gone */
	while (l->kept) { /* likewise kept rows that never reached a transaction */
		struct item *next = l->kept->next;
		item_free(l->kept);
		l->kept = next;
	}
	double t0 = mono_s();
	wait_idle(l);
	log_info("destination \"%s\": sync log: waited %.3f s for the writer at the end of the run", l->dest->id,
		  mono_s() - t0);
	flush_done(l, st);
	/* stopping (SIGTERM): no more than what the writer had; the rest waits in the outbox */
	bool stopping = s->stop && *s->stop;
	if (has_failed(l) && l->thread_started && !stopping) {
		/* one more try for what the writer could not write (a database back meanwhile) */
		pthread_mutex_lock(&l->mu);
		log_info("destination \"%s\": sync log: %s; trying again", l->dest->id, l->error.msg.buf);
		l->failed = false;
		jerror_release(&l->error);
		l->error = (struct jerror)JERROR_INIT;
		if (l->db)
			l->ops->close(l->db);
		l->db = NULL;
		pthread_mutex_unlock(&l->mu);
	}
	uint64_t pending = 0;
	if (!l->thread_started) {
		struct jerror e = JERROR_INIT;
		jerror_set(&e, JERR_INTERNAL, "could not start the sync log's writer thread");
		fail(l, &e);
		jerror_release(&e);
	}
	if (stopping)
		pending = outbox_rows(l, st);
	else
		drain_outbox(l, st, &pending);
	res->rows = rows_of(st, l->run_id);
	res->pending = pending;
	if (!l->part) {
		bool ok = !has_failed(l) && !pending;
		struct item *it = xcalloc(1, sizeof(*it));
		strbuf_init(&it->body, 0);
		summary_item(l, s, now_ms(), ok ? "complete" : "pending", res->rows, it);
		enqueue(l, it);
		wait_idle(l);
	}
	/* earlier runs' summaries (a worker job's are written by the next job's items) */
	if (!has_failed(l) && !pending && !stopping)
		recover_summaries(l, st);
	if (!has_failed(l) && !stopping && l->dest->sync_log_retention_days > 0) {
		struct item *it = xcalloc(1, sizeof(*it));
		strbuf_init(&it->body, 0);
		it->kind = IT_PURGE;
		it->before_ms = now_ms() - (int64_t)l->dest->sync_log_retention_days * 86400000;
		enqueue(l, it);
		wait_idle(l);
	}
	pthread_mutex_lock(&l->mu);
	l->stop = true;
	pthread_cond_signal(&l->wake);
	pthread_mutex_unlock(&l->mu);
	if (l->thread_started)
		pthread_join(l->thread, NULL);
	if (l->failed || pending) {
		res->status = "pending";
		if (l->error.msg.len) {
			strbuf_addstr(&res->error, l->error.msg.buf);
			if (l->error.detail.len)
				strbuf_addf(&res->error, " (%s)", l->error.detail.buf);
		} else {
			strbuf_addf(&res->error, "%llu rows wait in the outbox", (unsigned long long)pending);
		}
	}
	if (!l->part) {
		struct jerror e = JERROR_INIT;
		struct state_synclog_info info = { .run_id = l->run_id, .dest_id = l->dest->id, .status = res->status,
						   .rows = res->rows, .pending = res->pending,
						   .error = res->error.len ? res->error.buf : NULL };
		if (state_synclog_set(st, &info, &e))
			log_warn("destination \"%s\": sync log: %s", l->dest->id, e.msg.buf);
		jerror_release(&e);
	}
	if (l->db)
		l->ops->close(l->db);
	while (l->head) {
		struct item *next = l->head->next;
		item_free(l->head);
		l->head = next;
	}
	jerror_release(&l->error);
	free(l->done);
	free(l->deleting);
	synclog_body_release(&l->body);
	strbuf_release(&l->encoded);
	pthread_mutex_destroy(&l->mu);
	pthread_cond_destroy(&l->wake);
	pthread_cond_destroy(&l->idle);
	free(l);
}
