/*
 * record.h: records of one model, streamed in key order from all its sources.
 *
 * A record is the merge, on the primary key, of one row of the model's primary
 * source and at most one (already aggregated) row of each secondary source. A key
 * exists only if the primary source has it; secondary rows without a primary row
 * are counted (orphans) and ignored. Properties a secondary source did not provide
 * get their defaults: 0 for count and sum, NULL otherwise.
 *
 *   record_reader_open(cfg, model, read, &rr, &err); -- connects, opens one cursor per source
 *   while ((rc = record_reader_next(rr, &rec, &err)) == JERR_OK && rec) ...;
 *   record_reader_since(rr);                          -- incremental: the largest mark seen
 *   record_reader_close(rr);                          -- prints nothing; stats in rr->stats
 *
 * An incremental read (read->since_value set) applies to the primary source only:
 * the records are those whose primary row changed since the mark, and their
 * secondary rows are still read in full (secondary rows of keys not read are
 * skipped, not counted as orphans). A key range (read->range) limits every source:
 * the reader yields the records whose key lies in it. So do read->in_keys (a look-up of
 * a few records: pushed into every source's statement, the read is partial), the warehouse diff's keys
 * (read->keys; orphans are then not counted either) and digests (read->digest: in
 * rec->digests; record_reader_since is then empty).
 *
 * The record and everything it points to are borrowed until the next call.
 * Memory is constant in the number of records.
 */
#ifndef JOEY_RECORD_H
#define JOEY_RECORD_H

#include <stdbool.h>
#include <stdint.h>

#include "base/compat.h"
#include "base/error.h"
#include "base/value.h"
#include "config/config.h"
#include "source/source.h"

struct record {
	const struct cfg_model *model;
	struct rkey key;
	struct value *values; /* model->n_properties, by slot */
	bool *groups;         /* model->n_groups, by group index: member? */
	size_t n_invalid;     /* values that failed coercion (now NULL) */
	/*
	 * Source rows found unreadable so far, this record's read included (a SQL row
	 * whose key Braze cannot receive is found as it is read, source.h): the diff
	 * holds back deletes from the first record that says so.
	 */
	uint64_t unreadable;
	/*
	 * With read->digest (the warehouse diff): per source, in model->sources order, the
	 * digest the database computed of the source's row (source.h); empty when the
	 * source has no row for the key. NULL otherwise.
	 */
	struct slice *digests;
};

struct record_stats {
	uint64_t records;
	uint64_t orphans; /* secondary rows whose key is not in the primary source */
	uint64_t invalid_values;
	uint64_t unreadable; /* source rows that could not be read (record_reader_unreadable) */
	uint64_t held;       /* diff.h: deletes, unsubscribes and group exits held back for them */
};

/*
 * What a read tracks and limits per source, beyond `read` (all borrowed, NULL arrays
 * and NULL or empty entries meaning none; indexes are those of model->sources):
 *
 * since_column[i]: the high-water column of source i's schedule. The reader reports
 *   the largest value it saw (record_reader_since_at); for i = 0 read->since_column
 *   is used instead. In a changed-records read that is the largest value the listing
 *   of changed rows found (rows at or past the mark), not that of rows read later for
 *   their keys, so a mark never moves back; empty when the listing found none.
 * since_value[i]: the schedule's mark. With any set (and its column), the read is a
 *   *changed-records read*: for every source with a mark, the keys of its rows whose
 *   column is >= the mark are collected first (so a purchase changed in a secondary
 *   source names its user), then every source is read for those keys only, in chunks
 *   (source_read.in_keys), and the records come out complete and in key order as
 *   usual. The read is partial (state rows not read are not gone). Memory holds the
 *   changed keys; past RECORD_KEYS_MAX of them every record is read instead (still
 *   partial).
 */
struct record_scope {
	const char *const *since_column;
	const char *const *since_value;
};

struct record_reader;

/*
 * cfg and model are borrowed and must outlive the reader; read (NULL: full read) is
 * for the primary source and borrowed for the call. On failure *out is NULL.
 */
enum jerr record_reader_open(const struct config *cfg, const struct cfg_model *model,
			     const struct source_read *read, struct record_reader **out,
			     struct jerror *err) JOEY_WUR;
/* record_reader_open with scope (borrowed, must outlive the reader; NULL: none). */
enum jerr record_reader_open_scope(const struct config *cfg, const struct cfg_model *model,
				   const struct source_read *read, const struct record_scope *scope,
				   struct record_reader **out, struct jerror *err) JOEY_WUR;
enum jerr record_reader_next(struct record_reader *rr, const struct record **rec,
			     struct jerror *err) JOEY_WUR;
const struct record_stats *record_reader_stats(const struct record_reader *rr);
/*
 * The largest since value of the primary rows read so far (source_since_compare
 * order), borrowed until close; empty when none was read or read asked for none.
 */
struct slice record_reader_since(const struct record_reader *rr);
/* The largest since value of source i's rows (model->sources index); i = 0 as above. */
struct slice record_reader_since_at(const struct record_reader *rr, size_t i);
/*
 * Were only some records read (since a mark, for some keys, a changed-records read)?
 * Then a state row the read did not meet is not gone.
 */
bool record_reader_partial(const struct record_reader *rr);
/*
 * Rows of the model's sources that could not be read (a CSV row skipped as bad, a SQL
 * row whose key Braze cannot receive exactly): the records they belong to are unknown,
 * not gone. Bad keys are found as rows are read, so the total is known once the last
 * record has been read (record.unreadable: so far). where (may be NULL) receives one line
 * per known location ("source \"id\": file:line:col: reason\n"), the first few only.
 */
uint64_t record_reader_unreadable(const struct record_reader *rr, struct strbuf *where);

void record_reader_close(struct record_reader *rr);

/*
 * The key of model as the sources and the state store hold it, from text (borrowed;
 * k->text points into it): integer primary keys parse as integers. false when text is
 * not a valid key of model (an integer key given as "abc").
 */
bool record_key_parse(const struct cfg_model *model, const char *text, struct rkey *k);

#endif
