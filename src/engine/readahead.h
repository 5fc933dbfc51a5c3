/*
 * readahead.h: the records of a record reader, read ahead on a thread of their own.
 *
 * The streaming diff reads the sources (record.h) and the state store on one thread
 * each: while the diff compares a batch of records with the state, the next batches
 * are being read. The reader thread copies each record into the arena of a batch
 * (records are borrowed until the reader's next call, so they cannot cross threads
 * as they are); a ring of READAHEAD_SLOTS batches bounds the memory and makes the
 * reader wait when the diff is slower.
 *
 *   record_reader_open(..., &rr, &err);
 *   readahead_start(rr, prep, &ra, &err);     -- rr now belongs to the thread
 *   while ((rc = readahead_next(ra, &rec, &extra, &err)) == JERR_OK && rec) ...;
 *   readahead_stop(ra);                       -- joins the thread; rr is the caller's again
 *   record_reader_stats(rr) ...; record_reader_close(rr);
 *
 * Between start and stop nothing but the thread may call rr. Errors of the reader
 * (a source that fails mid-stream) come out of readahead_next after the records read
 * before them, exactly as record_reader_next would have returned them; after an error
 * or the end, readahead_next keeps returning JERR_OK with *rec NULL. readahead_stop may
 * be called at any time (an error of the diff): it tells the thread to stop after its
 * current record and waits for it.
 */
#ifndef JOEY_READAHEAD_H
#define JOEY_READAHEAD_H

#include <stdbool.h>

#include "base/arena.h"
#include "base/compat.h"
#include "base/error.h"
#include "engine/record.h"

/* Records per batch, at most; a batch also ends after READAHEAD_BATCH_BYTES of copies. */
#define READAHEAD_BATCH 256
#define READAHEAD_BATCH_BYTES (4 * 1024 * 1024)
/* Batches in the ring: one being read, one being compared, the rest waiting. */
#define READAHEAD_SLOTS 4
/* A thread that found the ring full reads again once this many slots are free. */
#define READAHEAD_REFILL 2

struct readahead;

/*
 * Work to do on the reader thread for each record, beside copying it: fn gets the copy
 * (borrowed) and the batch's arena, and leaves in *out what readahead_next hands over
 * with the record (memory from the arena, valid as long as the record). fn must only
 * read what the main thread does not change during the pass.
 *
 * shared: fn is work the consumer can do itself. The thread then calls fn only while
 * the consumer has a batch waiting beside the one it reads (the thread is ahead); when
 * the consumer keeps up, records go out without it (readahead_next's *extra NULL) and
 * the consumer does that work, so the two threads share it and neither idles (the
 * plan on two cores, issue #15). Which records get fn then depends on timing, so the
 * consumer's work must give the same result as fn's. JOEY_READAHEAD=reader calls fn
 * for every record (as without shared), JOEY_READAHEAD=diff for none (tests compare).
 */
struct readahead_prep {
	void (*fn)(void *ctx, const struct record *rec, struct arena *a, void **out);
	void *ctx;
	bool shared;
};

/*
 * Whether to read ahead: yes, unless JOEY_READAHEAD=0 in the environment (to compare,
 * or to rule the thread out when looking for a problem). Other values: see
 * readahead_prep.shared.
 */
bool readahead_enabled(void);

/*
 * Start the thread reading rr (borrowed; the caller closes it after readahead_stop).
 * Cannot fail but for a thread that cannot be made; then *out is NULL and the caller
 * reads rr itself.
 */
enum jerr readahead_start(struct record_reader *rr, const struct readahead_prep *prep, struct readahead **out,
			 struct jerror *err) JOEY_WUR;
/*
 * The next record (borrowed until the next call), NULL at the end; or the reader's
 * error. *extra (may be NULL) receives what prep->fn left for it (NULL without prep,
 * and for the records a shared prep left to the consumer).
 */
enum jerr readahead_next(struct readahead *ra, const struct record **rec, void **extra,
			 struct jerror *err) JOEY_WUR;
/*
 * The batch the record readahead_next returned last belongs to: its records in order
 * (*recs, borrowed like that record) and the record's index among them (*index).
 * Returns how many there are; 0 before the first record or after the end.
 */
size_t readahead_batch(const struct readahead *ra, const struct record **recs, size_t *index);
/* Stop and join the thread, free ra. ra may be NULL. */
void readahead_stop(struct readahead *ra);

#endif
