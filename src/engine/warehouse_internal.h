/*
 * warehouse_internal.h: what the pieces of the warehouse diff share. Private to
 * warehouse.c (connecting, the query's run, candidates, digests), warehouse_query.c
 * (the query's SQL text) and warehouse_check.c (eligibility and the configuration
 * fingerprint, no I/O). Callers use warehouse.h alone.
 */
#ifndef JOEY_ENGINE_WAREHOUSE_INTERNAL_H
#define JOEY_ENGINE_WAREHOUSE_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "base/arena.h"
#include "base/strbuf.h"
#include "config/config.h"
#include "engine/warehouse.h"
#include "source/source.h"

#define WH_FORMAT "joey warehouse diff 1"
#define WH_DIGEST_LEN 16 /* bytes of one md5 */
#define WH_BATCH 500     /* digest rows per INSERT */
#define WH_CHUNK_BYTES (16u << 20)

/* Columns of a candidate row, then per destination WH_DEST_COLS, then the summary. */
enum { COL_ORDER, COL_KIND, COL_INT, COL_TEXT, COL_IN_SOURCE, COL_DESTS };
enum { DC_PRESENT, DC_PAYLOAD, DC_HASH, DC_IN_SCOPE, DC_PENDING, DC_ATTEMPTS, DC_GPRESENT,
       DC_GDIGEST, DC_GHASH, WH_DEST_COLS };
enum { SUM_RECORDS, SUM_DUPES, SUM_ORPHANS, SUM_CANDIDATES, SUM_UNCHANGED };

struct wh_pending_digest {
	size_t dest;
	struct rkey key; /* text in the batch arena */
	unsigned char *digest;
	size_t digest_len;
	bool has_hash;
	unsigned char hash[STATE_HASH_LEN];
};

struct warehouse {
	const struct cfg_model *model;
	struct cfg_destination *const *dests;
	size_t n_dests;
	bool write;
	char *conninfo, *schema, *app_schema;
	PGconn *pg;      /* the query */
	PGconn *writer;  /* digest writes (write only; opened on first use) */
	bool running;    /* the query's rows are still coming */
	unsigned char (*fp)[STATE_HASH_LEN]; /* per destination */
	struct wh_summary summary;
	int n_cols;
	/* the current chunk */
	struct arena arena;
	struct wh_candidate *cands;
	struct wh_dest_row *rows;
	size_t n_cands;
	/* queued digests */
	struct wh_pending_digest *queue;
	size_t n_queue;
	struct arena queue_arena;
	uint64_t written;
	/*
	 * The query runs the sources' statements (query sources' text as written) on pg:
	 * inside a read-only transaction that is never committed (PQfinish ends it), and
	 * watched like a connector's waits (source.h): the primary app's statementTimeout
	 * per wait, and the run's stop, cancel it on the server.
	 */
	struct source_watch watch;
	PGcancel *cancel;
};

/* An app option's text, dflt when absent or empty (borrowed). */
static inline const char *wh_opt_or(const struct cfg_app *app, const char *key, const char *dflt)
{
	const struct cfg_option *o = cfg_options_get(&app->options, key);
	return o && o->str && *o->str ? o->str : dflt;
}

/* ---- warehouse_query.c ---- */

/* The query's text and its parameter values (borrowed, or in a). */
struct qbuild {
	struct strbuf sql;
	const char **vals; /* parameter values: the statements' binds, then ours */
	size_t n_vals, alloc;
	struct arena a;
};

/* Add parameter value v (borrowed: must outlive q) to q; returns its number ($n). */
size_t wh_q_param(struct qbuild *q, const char *v);

/* Append "schema"."table" (a state store table) to sb. */
void wh_add_state_table(struct strbuf *sb, const char *schema, const char *table);

/*
 * Build the query (the design note in warehouse.c) into q for w's model and
 * destinations, and set w->n_cols. stmts[i] (borrowed) is source i's statement with
 * its placeholders already numbered after those of the statements before it (their
 * values already in q). dupes: also count the primary source's duplicate keys (no
 * unique index says there are none).
 */
void wh_build_query(struct warehouse *w, struct qbuild *q, char **stmts, bool int_key, bool dupes);

#endif
