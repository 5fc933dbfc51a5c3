/*
 * synclog_writer.c: the sync log's writer thread: takes the queued items (outbox
 * bodies, run summaries, retention purges) and writes them to the log database
 * (synclog/db.h) off the run's thread; the queue (synclog_enqueue, synclog_wait_idle)
 * and the first failure. The writer owns the log database connection and the items it
 * took; the struct synclog is the run's (synclog_internal.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "base/log.h"
#include "base/xalloc.h"
#include "engine/synclog_internal.h"

/* Record rows per write to the log database (one transaction). */
#define WRITE_ROWS 5000
/*
 * The writer lets bodies gather for up to this long (unless someone waits for it) so a
 * write carries a few thousand rows, not one batch's 75: far fewer transactions.
 */
#define GATHER_MS 200
/* The writer thread's nice value (the run's thread keeps its own). */
#define WRITER_NICE 10
#define GATHER_BYTES ((size_t)256 << 10)
/* Retention: rows deleted per transaction, and transactions per run at most. */
#define PURGE_CHUNK 10000
#define PURGE_MAX_CHUNKS 100

void synclog_item_free(struct item *it)
{
	if (!it)
		return;
	strbuf_release(&it->body);
	free(it->run.model);
	free(it->run.trigger);
	free(it->run.error);
	free(it);
}

void synclog_items_free(struct item *head)
{
	while (head) {
		struct item *next = head->next;
		synclog_item_free(head);
		head = next;
	}
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
			rid = synclog_body_run_id((struct slice){ it->body.buf, it->body.len });
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

void synclog_fail(struct synclog *l, struct jerror *err)
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
		synclog_fail(l, &err);
	jerror_release(&err);
}

void *synclog_writer_main(void *arg)
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
		synclog_items_free(take);
		pthread_mutex_lock(&l->mu);
		l->busy = false;
		if (!l->head)
			pthread_cond_broadcast(&l->idle);
	}
	pthread_mutex_unlock(&l->mu);
	return NULL;
}

void synclog_enqueue(struct synclog *l, struct item *it)
{
	if (!l->thread_started) { /* no writer: the rows wait in the outbox */
		synclog_item_free(it);
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
void synclog_wait_idle(struct synclog *l)
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

bool synclog_has_failed(struct synclog *l)
{
	pthread_mutex_lock(&l->mu);
	bool f = l->failed;
	pthread_mutex_unlock(&l->mu);
	return f;
}

/* Record rows of run_id written to the log (synclog_runs.written); 0 if unknown. */
