/*
 * diff.h: the streaming diff of desired payloads against the state store.
 *
 * One pass over the model's records (record.h, in key order) is merge-joined with
 * one state cursor per destination (also in key order). For every destination and
 * every key on either side the visitor receives one item:
 *
 *   desired  state row              Sync        Additive     Enrich
 *   yes      none / never confirmed create      create       create (existing users only)
 *   yes      same hash              unchanged   unchanged    unchanged
 *   yes      other hash             update      update       update
 *   yes      pending (last failed)  update, every field sent again (Braze state unknown)
 *   no       in scope               delete      unsubscribe  unsubscribe
 *   no       failed create          delete      (nothing)    (nothing)
 *   no       out of scope           (nothing: the user was already released)
 *
 * "Desired" means the record exists in the primary source and is in the
 * destination's scope (collection model, or member of the tracked group).
 * Memory is constant in the number of records: only the current record and one
 * state row per destination are held.
 */
#ifndef JOEY_DIFF_H
#define JOEY_DIFF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/compat.h"
#include "base/error.h"
#include "config/config.h"
#include "engine/payload.h"
#include "engine/record.h"
#include "state/state.h"

enum diff_action { DIFF_CREATE, DIFF_UPDATE, DIFF_DELETE, DIFF_UNSUBSCRIBE, DIFF_UNCHANGED, DIFF__COUNT };
const char *diff_action_name(enum diff_action a);

/* emit_desired (diff.c) names every member in its initializer: a new member must be named there too. */
struct diff_item {
	const struct cfg_destination *dest;
	enum diff_action action;
	const struct rkey *key;
	const struct record *rec;   /* the source record; NULL for delete/unsubscribe */
	struct slice old_payload;   /* last confirmed payload; empty if none */
	struct slice new_payload;   /* what Braze should hold after; empty for delete */
	const unsigned char *new_hash; /* hash of new_payload; NULL for delete */
	/* where new_payload's values are (payload_build_spans) and the spec it was built
	 * with, for payload_diff_first; both NULL when not noted */
	const size_t *new_spans;
	const struct payload_spec *spec;
	bool in_scope;              /* in_scope to store once Braze confirms */
	bool state_only;            /* nothing to send, only the state row changes (back in scope) */
	bool full;                  /* send every field, not only changes: the last attempt
	                               failed and what Braze holds is unknown */
	bool pending;               /* the previous attempt for this key failed */
	bool absent;                /* enrich, DIFF_UNCHANGED: Braze did not have the user at
	                               the last look-up, which is not enrichRecheckHours old */
	bool update_only;           /* DIFF_UNSUBSCRIBE of a placeholder: Braze may not have the
	                               user, so the release must not create it (dest_change) */
	int attempts;               /* failed attempts so far */
};

struct diff_visitor {
	/* Called for every item; everything in it is borrowed for the call only. */
	enum jerr (*item)(void *ctx, const struct diff_item *it, struct jerror *err);
	void *ctx;
};

/*
 * Diff the records of model against st for dests (borrowed; all of model). Any
 * error stops the pass (visitor errors are returned as they are).
 * *stats receives the record reader's statistics.
 */
enum jerr diff_model(const struct config *cfg, const struct cfg_model *model,
		     struct cfg_destination *const *dests, size_t n_dests, struct state *st,
		     const struct diff_visitor *v, struct record_stats *stats,
		     struct jerror *err) JOEY_WUR;

/*
 * diff_model with read (borrowed; NULL: full read) for the model's primary source
 * (record.h). With read->since_value set the pass is partial: only records changed
 * since the mark are read, so a state row whose key was not read is NOT gone (no
 * delete or unsubscribe for it); a record that was read and left the destination's
 * scope still is. since (may be NULL) receives the largest since value read, empty
 * if none; it is set also when the pass fails part way. With read->range set, both the
 * records and the state rows are those of the key range only: a state row in the range
 * with no record in it is gone (deleted) as usual, and nothing outside it is touched.
 * Only records in the range are read.
 */
enum jerr diff_model_read(const struct config *cfg, const struct cfg_model *model,
			  struct cfg_destination *const *dests, size_t n_dests, struct state *st,
			  const struct source_read *read, const struct diff_visitor *v,
			  struct record_stats *stats, struct strbuf *since,
			  struct jerror *err) JOEY_WUR;

/*
 * Who compares (docs/internals/warehouse.md): joey, streaming every record (stream,
 * the default), or the database, which returns only the records that may have changed
 * (warehouse; auto is the same but quieter when it cannot be used). The results are
 * the same either way.
 */
enum diff_mode { DIFF_MODE_STREAM, DIFF_MODE_AUTO, DIFF_MODE_WAREHOUSE, DIFF_MODE__COUNT };
/* "stream", "auto", "warehouse". */
const char *diff_mode_name(enum diff_mode m);
/* The mode named s; false if none is. */
bool diff_mode_parse(const char *s, enum diff_mode *out);
/*
 * The mode of a pass over dests (borrowed): *forced when not NULL (--diff), else from
 * the destinations' options.diff: stream if any says stream, else the strongest
 * asked for (warehouse, then auto), else stream.
 */
enum diff_mode diff_mode_choose(struct cfg_destination *const *dests, size_t n_dests,
				const enum diff_mode *forced);

struct diff_opts {
	const struct source_read *read; /* as diff_model_read; NULL: full read */
	enum diff_mode mode;
	/*
	 * The warehouse diff skips the records it finds unchanged instead of visiting them:
	 * it reports them per destination through this callback instead, n at a time,
	 * with v->ctx (what n DIFF_UNCHANGED items without state_only would say). NULL:
	 * the warehouse diff is not used.
	 */
	enum jerr (*unchanged)(void *ctx, const struct cfg_destination *dest, uint64_t n,
			       struct jerror *err);
	/* store the digests of the records compared (joey run; plan writes nothing) */
	bool write_digests;
	/*
	 * Per-source schedules (record.h; borrowed, NULL: none). With a changed-records
	 * read the pass is partial, as with read->since_value. Streaming only: the
	 * warehouse diff is not used when scope->since_column is set.
	 */
	const struct record_scope *scope;
	/* NULL or model->n_sources buffers: the largest since value read per source */
	struct strbuf *since_at;
	/* NULL or a buffer for where the unreadable rows are (record_reader_unreadable) */
	struct strbuf *unreadable_at;
	/* NULL or n_dests counters: per destination, the changes held back in doubt */
	uint64_t *held;
	/*
	 * NULL or n_dests counters: per destination, the state rows in scope that the pass
	 * read, which is state_count (state_count_range with read->range) counted on the
	 * way instead of by a scan of its own; DIFF_NOT_COUNTED when the pass did not read
	 * every state row (a partial pass, the warehouse diff, a failure).
	 */
	uint64_t *in_scope;
};
#define DIFF_NOT_COUNTED UINT64_MAX

/*
 * The streaming diff with options o (o->mode is ignored). Unreadable source rows
 * (stats->unreadable) put the pass in doubt: a state row with no record is kept, a
 * record read but out of scope is kept, and an update that would take a record out of
 * a group is held (stats->held counts the records held back); the caller ends the run
 * as partial.
 */
enum jerr diff_stream(const struct config *cfg, const struct cfg_model *model,
		      struct cfg_destination *const *dests, size_t n_dests, struct state *st,
		      const struct diff_opts *o, const struct diff_visitor *v,
		      struct record_stats *stats, struct strbuf *since, struct jerror *err) JOEY_WUR;

/* What a pass did. */
struct diff_report {
	bool warehouse;     /* the database compared: only `read` records were read */
	char why[320];      /* a mode other than stream that fell back: why; else empty */
	uint64_t read;      /* records read from the sources */
	uint64_t candidates; /* warehouse: records the database returned */
	uint64_t digests;   /* warehouse: digest rows written */
};

/*
 * diff_model_read with options (o may be NULL: a streaming full read). When o->mode
 * asks for the warehouse diff and it cannot serve the model (warehouse_check,
 * warehouse_open), the pass streams and the reason is logged (a warning for
 * DIFF_MODE_WAREHOUSE, information for auto) and put in rep->why. rep may be NULL.
 */
enum jerr diff_model_opts(const struct config *cfg, const struct cfg_model *model,
			  struct cfg_destination *const *dests, size_t n_dests, struct state *st,
			  const struct diff_opts *o, const struct diff_visitor *v,
			  struct record_stats *stats, struct strbuf *since, struct diff_report *rep,
			  struct jerror *err) JOEY_WUR;

#endif
