/*
 * warehouse.h: the warehouse diff: the database finds the records that changed.
 *
 * When a model's sources and the state store are in the same PostgreSQL database, one
 * query there compares a digest of every record's source rows with the digest stored
 * when the record was last compared (the `digests` table of the state store), and
 * returns only the keys that may have changed, with their state rows. joey then reads
 * those records (the sources' own statements, limited to those keys: source.h
 * read->keys), builds payloads and compares them with the stored ones exactly as the
 * streaming diff does (diff.h). Design, soundness argument and fallbacks:
 * docs/internals/warehouse.md.
 *
 *   warehouse_check(cfg, model, dests, n, st, read, &why)   -- no I/O: can it be used?
 *   warehouse_open(cfg, model, dests, n, st, write, &w, &why, &err)
 *                                -- connects, runs the query, reads its summary; *w NULL
 *                                   (and why set) when it finds it cannot be used after all
 *   s = warehouse_summary(w);
 *   while (warehouse_next_chunk(w, &cands, &n, &err) == JERR_OK && n) {
 *       ... read the records of cands[i].key (in_source ones), diff them ...
 *       warehouse_digest(w, j, rec, hash, &err);         -- what a compared record made
 *   }
 *   warehouse_finish(w, &err);   -- writes the last digests
 *   warehouse_close(w);
 *
 * A digest row says: "records whose source rows have this digest, under this
 * destination's configuration, make the payload with this hash (or are out of scope)".
 * That is a fact about configuration and data, never about Braze, so it is written as
 * soon as a record was compared (joey run), and skipping a record needs the state row
 * to hold that very hash, confirmed and not pending.
 */
#ifndef JOEY_WAREHOUSE_H
#define JOEY_WAREHOUSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/compat.h"
#include "base/error.h"
#include "base/strbuf.h"
#include "config/config.h"
#include "engine/record.h"
#include "state/state.h"

/* Candidates per chunk: the keys of one limited read. */
#define WAREHOUSE_CHUNK 20000

/* One destination's side of a candidate key. */
struct wh_dest_row {
	bool present;          /* the state store has a row (row is set) */
	struct state_row row;  /* borrowed: key, payload, hash, in_scope, pending, attempts */
	bool has_digest;       /* a digests row exists: */
	struct slice digest;   /* its digest (bytes) */
	bool digest_in_scope;  /* its hash is set (the record was in scope) */
	unsigned char digest_hash[STATE_HASH_LEN];
};

struct wh_candidate {
	struct rkey key;
	bool in_source;            /* the primary source had the key when the query ran */
	struct wh_dest_row *dests; /* one per destination, in the order given to open */
};

struct wh_summary {
	uint64_t records;    /* keys of the primary source (NULL keys not counted) */
	uint64_t orphans;    /* secondary rows whose key the primary source lacks */
	uint64_t candidates; /* keys returned */
	uint64_t *unchanged; /* per destination: keys not returned that are unchanged items */
	bool limited;        /* read only the candidates (else every record, skipping the rest) */
};

struct warehouse;

/*
 * Can the warehouse diff serve model for dests (borrowed) against st, with read (the
 * incremental read, NULL: none)? Checks what needs no I/O: a PostgreSQL state store,
 * every source in one PostgreSQL app in the store's database, no incremental read,
 * no group the destinations use with a rule relative to the current time. false with
 * the reason in why (reset first).
 */
bool warehouse_check(const struct config *cfg, const struct cfg_model *model,
		     struct cfg_destination *const *dests, size_t n_dests, struct state *st,
		     const struct source_read *read, struct strbuf *why);

/*
 * Connect (with the state store's URL), check that the sources' database is the
 * store's, build the statements and run the query. write: digests of the records
 * compared are stored (joey run); plan only reads. Everything is borrowed and must
 * outlive w. On JERR_OK with *out NULL the diff cannot be used (why says why: another
 * database, a store without the digests table, duplicate keys, connection failure);
 * an error is a failed query or statement.
 */
enum jerr warehouse_open(const struct config *cfg, const struct cfg_model *model,
			 struct cfg_destination *const *dests, size_t n_dests, struct state *st,
			 bool write, struct warehouse **out, struct strbuf *why,
			 struct jerror *err) JOEY_WUR;
const struct wh_summary *warehouse_summary(const struct warehouse *w);
/*
 * The next candidates in key order (at most WAREHOUSE_CHUNK): *n 0 at the end. They
 * and what they point to are borrowed until the next call.
 */
enum jerr warehouse_next_chunk(struct warehouse *w, const struct wh_candidate **cands, size_t *n,
			       struct jerror *err) JOEY_WUR;
/*
 * rec (read with read->digest, borrowed) was compared for destination dest_index of c:
 * hash is its payload's hash, NULL when the record is out of the destination's scope.
 * Queues the digest row when it differs from the stored one (not for a record with
 * invalid values, which is thus always compared again, nor without write).
 */
enum jerr warehouse_digest(struct warehouse *w, const struct wh_candidate *c, size_t dest_index,
			   const struct record *rec, const unsigned char *hash,
			   struct jerror *err) JOEY_WUR;
/* Write the queued digests. */
enum jerr warehouse_finish(struct warehouse *w, struct jerror *err) JOEY_WUR;
/* Digest rows written so far. */
uint64_t warehouse_digests_written(const struct warehouse *w);
/* w may be NULL. Queued digests not written by warehouse_finish are dropped. */
void warehouse_close(struct warehouse *w);

/*
 * The full-read statement of src (borrowed) as the warehouse diff builds it (its own
 * copy of the PostgreSQL dialect, over a connection to st's database), described as
 * the connector's describe does: for tests, which check that both agree. Appends to out.
 */
enum jerr warehouse_describe(const struct cfg_source *src, struct state *st, struct strbuf *out,
			     struct jerror *err) JOEY_WUR;

/*
 * The fingerprint of a destination's configuration as the digests depend on it (its
 * mapping, groups, sync mode, scope; the model's sources, properties and group rules),
 * with extra (borrowed; the statements and column types) mixed in; 16 bytes.
 * Exposed for tests.
 */
void warehouse_fingerprint(const struct cfg_destination *dest, struct slice extra,
			   unsigned char out[STATE_HASH_LEN]);

#endif
