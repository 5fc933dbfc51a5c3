/* readahead.c: a record reader on a thread of its own, batches handed over through a ring. */
#include "engine/readahead.h"

#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "base/arena.h"
#include "base/xalloc.h"
#include "source/source.h"

/*
 * Design notes.
 *
 * The ring holds READAHEAD_SLOTS batches. The thread fills the slot after the last
 * full one (head + count) without the lock: the consumer never looks at a slot that
 * is not counted as full, and the thread never touches a full one. Publishing a batch
 * (count + 1) and giving one back (head + 1, count - 1) take the lock and signal the
 * one condition both sides wait on. The consumer holds on to the slot it reads from
 * until it asks for the next record after that batch, so a record stays valid until
 * the next readahead_next, as record_reader_next promises.
 *
 * The end and an error are published after the last batch: the consumer sees every
 * record read before the error, then the error, once. The thread stops between two
 * records when asked (readahead_stop), so a diff that fails early waits at most for
 * the record being read. Signals are blocked on the thread: SIGINT and SIGTERM still
 * reach the main thread, whose handler sets its stop flag (source_set_stop); the thread
 * takes that flag as its own, so the source watcher cancels a statement it waits for
 * (a long query stops at once, as it did when the main thread read it).
 *
 * A shared prep (readahead_prep.shared) is decided per record from the full slots
 * (count, read without the lock: a stale value only moves one record's work to the
 * other thread). count counts the batch the consumer reads, so count >= 2 means a
 * batch waits for it: the thread is ahead and spends the time on prep. Otherwise the
 * consumer is about to wait for records and the thread leaves prep to it. The split
 * settles where both threads are busy: when the consumer does more prep it falls
 * behind, the batches pile up, and the thread takes prep back.
 */

struct batch {
	struct arena arena;
	struct record recs[READAHEAD_BATCH];
	void *extra[READAHEAD_BATCH]; /* what prep left per record */
	size_t n;
};

/* Who runs a shared prep (readahead_prep.shared; JOEY_READAHEAD=reader or diff). */
enum prep_split { SPLIT_SHARE, SPLIT_READER, SPLIT_CONSUMER };

struct readahead {
	struct record_reader *rr;
	struct readahead_prep prep;
	enum prep_split split;
	volatile int *stop_flag; /* the starting thread's source_set_stop flag */
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct batch slot[READAHEAD_SLOTS];
	/* full slots: head .. head + count - 1 (mod READAHEAD_SLOTS); count is written
	 * under mu, and read atomically without it (prep_here) */
	size_t head, count;
	bool done;          /* the thread published its last batch (end or error) */
	bool stop;          /* readahead_stop: stop reading */
	enum jerr rc;       /* the reader's error, after the last batch */
	struct jerror err;
	/* the consumer's side */
	struct batch *cur; /* the batch being read, NULL before the first */
	size_t pos;
	bool reported;      /* the error or the end was returned */
};

bool readahead_enabled(void)
{
	const char *e = getenv("JOEY_READAHEAD");
	return !(e && !strcmp(e, "0"));
}

/* Copy v into a (strings and array items included). */
static void copy_value(struct arena *a, struct value *to, const struct value *v)
{
	*to = *v;
	if (v->kind == VAL_STRING) {
		char *s = arena_alloc(a, v->u.s.len + 1);
		memcpy(s, v->u.s.ptr, v->u.s.len);
		s[v->u.s.len] = '\0';
		to->u.s.ptr = s;
	} else if (v->kind == VAL_ARRAY) {
		struct value *items = arena_alloc(a, (v->u.arr.n ? v->u.arr.n : 1) * sizeof(*items));
		for (size_t i = 0; i < v->u.arr.n; i++)
			copy_value(a, &items[i], &v->u.arr.items[i]);
		to->u.arr.items = items;
	}
}

/* Copy the n bytes at s to *at, NUL-terminated; *at moves past them. */
static const char *put_text(char **at, const char *s, size_t n)
{
	char *p = *at;
	if (n)
		memcpy(p, s, n);
	p[n] = '\0';
	*at = p + n + 1;
	return p;
}

/*
 * A copy of rec (borrowed) in a, into to: one allocation for the values, digests,
 * groups and every string (arrays' items, which are rare, take their own).
 */
static void copy_record(struct arena *a, struct record *to, const struct record *rec)
{
	const struct cfg_model *m = rec->model;
	size_t nv = m->n_properties ? m->n_properties : 1;
	size_t nd = rec->digests ? (m->n_sources ? m->n_sources : 1) : 0;
	size_t ng = m->n_groups ? m->n_groups : 1;
	size_t text = rec->key.text.len + 1;
	for (size_t i = 0; i < m->n_properties; i++)
		if (rec->values[i].kind == VAL_STRING)
			text += rec->values[i].u.s.len + 1;
	for (size_t i = 0; i < nd && i < m->n_sources; i++)
		text += rec->digests[i].len + 1;
	char *mem = arena_alloc(a, nv * sizeof(struct value) + nd * sizeof(struct slice) + ng + text);
	struct value *values = (struct value *)mem;
	struct slice *digests = (struct slice *)(mem + nv * sizeof(struct value));
	bool *groups = (bool *)(digests + nd);
	char *at = (char *)(groups + ng);

	*to = *rec;
	to->key.text.ptr = put_text(&at, rec->key.text.ptr ? rec->key.text.ptr : "", rec->key.text.len);
	to->values = values;
	for (size_t i = 0; i < m->n_properties; i++) {
		const struct value *v = &rec->values[i];
		values[i] = *v;
		if (v->kind == VAL_STRING)
			values[i].u.s.ptr = put_text(&at, v->u.s.ptr, v->u.s.len);
		else if (v->kind == VAL_ARRAY)
			copy_value(a, &values[i], v);
	}
	to->groups = groups;
	if (m->n_groups)
		memcpy(groups, rec->groups, m->n_groups * sizeof(*groups));
	if (rec->digests) {
		to->digests = digests;
		for (size_t i = 0; i < m->n_sources; i++)
			digests[i] = (struct slice){ put_text(&at, rec->digests[i].ptr ? rec->digests[i].ptr : "",
							      rec->digests[i].len),
						     rec->digests[i].len };
	}
}

/* Whether the thread runs prep for the next record (see the design notes). */
static bool prep_here(struct readahead *ra)
{
	if (!ra->prep.fn || ra->split == SPLIT_CONSUMER)
		return false;
	if (ra->split == SPLIT_READER)
		return true;
	return __atomic_load_n(&ra->count, __ATOMIC_RELAXED) >= 2;
}

static void *reader_main(void *arg)
{
	struct readahead *ra = arg;
	struct jerror err = JERROR_INIT;
	enum jerr rc = JERR_OK;
	bool end = false;

	/* SIGINT/SIGTERM cancel the statements this thread waits for, as on the starting thread */
	source_set_stop(ra->stop_flag);

	while (!end) {
		struct batch *b;
		pthread_mutex_lock(&ra->mu);
		/* a full ring: wait until READAHEAD_REFILL slots are free, then fill them in a
		 * row (waking for each freed slot cost a futex wake and a context switch per
		 * batch; readahead_next signals only from that point) */
		if (ra->count == READAHEAD_SLOTS)
			while (ra->count > READAHEAD_SLOTS - READAHEAD_REFILL && !ra->stop)
				pthread_cond_wait(&ra->cv, &ra->mu);
		bool stop = ra->stop;
		b = &ra->slot[(ra->head + ra->count) % READAHEAD_SLOTS];
		pthread_mutex_unlock(&ra->mu);
		if (stop)
			break;
		/* this slot is the thread's until it is published */
		arena_reset(&b->arena);
		b->n = 0;
		while (b->n < READAHEAD_BATCH && b->arena.used_total < READAHEAD_BATCH_BYTES) {
			const struct record *rec = NULL;
			if ((rc = record_reader_next(ra->rr, &rec, &err)) || !rec) {
				end = true;
				break;
			}
			copy_record(&b->arena, &b->recs[b->n], rec);
			b->extra[b->n] = NULL;
			if (prep_here(ra))
				ra->prep.fn(ra->prep.ctx, &b->recs[b->n], &b->arena, &b->extra[b->n]);
			b->n++;
			if (__atomic_load_n(&ra->stop, __ATOMIC_RELAXED))
				break;
		}
		pthread_mutex_lock(&ra->mu);
		if (b->n)
			__atomic_store_n(&ra->count, ra->count + 1, __ATOMIC_RELAXED);
		if (end) {
			ra->rc = rc;
			ra->err = err;
			err = (struct jerror)JERROR_INIT;
		}
		ra->done = end;
		pthread_cond_broadcast(&ra->cv);
		pthread_mutex_unlock(&ra->mu);
	}
	jerror_release(&err);
	return NULL;
}

enum jerr readahead_start(struct record_reader *rr, const struct readahead_prep *prep, struct readahead **out,
			 struct jerror *err)
{
	struct readahead *ra = xcalloc(1, sizeof(*ra));
	sigset_t all, old;
	int e;

	ra->rr = rr;
	if (prep)
		ra->prep = *prep;
	ra->split = SPLIT_READER;
	if (ra->prep.shared) {
		const char *mode = getenv("JOEY_READAHEAD");
		ra->split = mode && !strcmp(mode, "reader") ? SPLIT_READER
			  : mode && !strcmp(mode, "diff")   ? SPLIT_CONSUMER
							    : SPLIT_SHARE;
	}
	ra->stop_flag = source_set_stop(NULL); /* read it, and put it back */
	source_set_stop(ra->stop_flag);
	ra->err = (struct jerror)JERROR_INIT;
	for (size_t i = 0; i < READAHEAD_SLOTS; i++)
		arena_init(&ra->slot[i].arena);
	pthread_mutex_init(&ra->mu, NULL);
	pthread_cond_init(&ra->cv, NULL);
	/* the thread inherits this mask: signals stay with the main thread */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	e = pthread_create(&ra->thread, NULL, reader_main, ra);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (e) {
		pthread_cond_destroy(&ra->cv);
		pthread_mutex_destroy(&ra->mu);
		for (size_t i = 0; i < READAHEAD_SLOTS; i++)
			arena_release(&ra->slot[i].arena);
		free(ra);
		*out = NULL;
		return jerror_set(err, JERR_INTERNAL, "could not start the thread that reads the sources");
	}
	*out = ra;
	return JERR_OK;
}

enum jerr readahead_next(struct readahead *ra, const struct record **rec, void **extra, struct jerror *err)
{
	enum jerr rc = JERR_OK;

	*rec = NULL;
	if (extra)
		*extra = NULL;
	if (ra->cur && ra->pos < ra->cur->n) {
		if (extra)
			*extra = ra->cur->extra[ra->pos];
		*rec = &ra->cur->recs[ra->pos++];
		return JERR_OK;
	}
	pthread_mutex_lock(&ra->mu);
	if (ra->cur) {
		/* give the batch read back to the thread */
		ra->cur = NULL;
		ra->head = (ra->head + 1) % READAHEAD_SLOTS;
		__atomic_store_n(&ra->count, ra->count - 1, __ATOMIC_RELAXED);
		if (ra->count <= READAHEAD_SLOTS - READAHEAD_REFILL) /* the thread waits for no less */
			pthread_cond_broadcast(&ra->cv);
	}
	while (!ra->count && !ra->done)
		pthread_cond_wait(&ra->cv, &ra->mu);
	if (ra->count) {
		ra->cur = &ra->slot[ra->head];
		ra->pos = 0;
		if (extra)
			*extra = ra->cur->extra[ra->pos];
		*rec = &ra->cur->recs[ra->pos++];
	} else if (!ra->reported) {
		ra->reported = true;
		rc = ra->rc;
		if (rc) {
			jerror_release(err);
			*err = ra->err;
			ra->err = (struct jerror)JERROR_INIT;
		}
	}
	pthread_mutex_unlock(&ra->mu);
	return rc;
}

size_t readahead_batch(const struct readahead *ra, const struct record **recs, size_t *index)
{
	*recs = NULL;
	*index = 0;
	if (!ra->cur || !ra->pos)
		return 0;
	*recs = ra->cur->recs;
	*index = ra->pos - 1;
	return ra->cur->n;
}

void readahead_stop(struct readahead *ra)
{
	if (!ra)
		return;
	pthread_mutex_lock(&ra->mu);
	__atomic_store_n(&ra->stop, true, __ATOMIC_RELAXED);
	pthread_cond_broadcast(&ra->cv);
	pthread_mutex_unlock(&ra->mu);
	pthread_join(ra->thread, NULL);
	pthread_cond_destroy(&ra->cv);
	pthread_mutex_destroy(&ra->mu);
	for (size_t i = 0; i < READAHEAD_SLOTS; i++)
		arena_release(&ra->slot[i].arena);
	jerror_release(&ra->err);
	free(ra);
}
