/*
 * synclog_internal.h: what the pieces of the sync log (synclog.c and its synclog_*.c
 * files) share; callers outside them use synclog.h.
 *
 *   synclog.c         the run's side: synclog_start, staging rows in the outbox with the
 *                     run's transactions (synclog_stage*, _committed, _rolled_back)
 *   synclog_writer.c  the writer thread and its queue: bodies decoded and written to the
 *                     log database, summaries, retention purges
 *   synclog_finish.c  the end of a run: drain the outbox, earlier runs' summaries,
 *                     retention, stop the writer, free the struct synclog
 *   synclog_body.c    names and the binary body format of outbox rows
 *
 * The struct synclog is the run's (synclog_start allocates it, synclog_finish frees
 * it); the fields under "the writer's" are read and written under mu only.
 */
#ifndef JOEY_SYNCLOG_INTERNAL_H
#define JOEY_SYNCLOG_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "base/error.h"
#include "base/strbuf.h"
#include "engine/synclog.h"
#include "synclog/db.h"

/* Queued bodies the writer has not taken, at most (beyond: they wait in the outbox). */
#define QUEUE_MAX_BYTES ((size_t)64 << 20)

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


/* synclog.c */
/* it (zeroed, owned by the caller) becomes an IT_RUN item of summary s. */
void synclog_summary_item(struct synclog *l, const struct synclog_summary *s, int64_t finished_ms,
			  const char *log_status, uint64_t log_rows, struct item *it);
/* Delete from the outbox, in the caller's transaction, what the writer has written. */
enum jerr synclog_delete_done(struct synclog *l, struct state *st, struct jerror *err) JOEY_WUR;

/* synclog_body.c */
/* The run id in a body's header (0 if it has none). */
int64_t synclog_body_run_id(struct slice body);

/* synclog_writer.c */
void synclog_item_free(struct item *it); /* it and what it owns; NULL is fine */
void synclog_items_free(struct item *head); /* a list of items, through next */
/* The writer thread's body; arg is the struct synclog. */
void *synclog_writer_main(void *arg);
/* Hand it (owned) to the writer; without a writer thread it is freed (the rows wait in the outbox). */
void synclog_enqueue(struct synclog *l, struct item *it);
/* Wait until the writer has done everything queued. */
void synclog_wait_idle(struct synclog *l);
bool synclog_has_failed(struct synclog *l);
/* The first failure wins: it takes err's contents (err is left empty). */
void synclog_fail(struct synclog *l, struct jerror *err);

#endif
