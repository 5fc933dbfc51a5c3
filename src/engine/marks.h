/*
 * marks.h: how a pass reads a model, from its schedules and their marks.
 *
 * Grouparoo imports the records whose rows changed in *any* scheduled source: a
 * purchase added to a secondary source re-imports its user. joey does the same:
 *
 *   struct model_marks mk;
 *   model_marks_load(cfg, model, st, full, &mk, &err);
 *   diff with mk.use_read ? &mk.read : NULL, scope &mk.scope, since_at mk.seen
 *   model_marks_save(&mk, st, ...);   -- only when every destination succeeded
 *   model_marks_release(&mk);
 *
 * The rules (docs/config.md, "Schedules"):
 * - A schedule is incremental when `incremental` is true and options.column is set.
 *   Only table sources can have one (JERR_CONFIG names the schedule otherwise).
 * - The read is incremental (only changed records; nothing deleted) when the primary
 *   source has an incremental schedule, no source of the model has a schedule that
 *   is not incremental, every incremental schedule has a stored mark, and !full.
 *   Otherwise every record is read (deletions are found) and every schedule's mark is
 *   taken from what the read saw.
 * - With only the primary source scheduled, the primary is read since its mark
 *   (source_read.since_value) and the secondary sources for those records.
 *   With secondary schedules too, a changed-records read (record.h) collects the keys
 *   of every scheduled source's rows changed since that schedule's own mark.
 * - Each schedule's mark advances to the largest value its source showed, per
 *   schedule, and only when the caller says every destination succeeded. An
 *   incremental read counts only the rows at or past the mark (a row read because
 *   another schedule named its key does not count), so its marks never move back and
 *   a schedule that found no row keeps its mark; a full read takes every mark from all
 *   the rows it saw.
 * Everything is owned by the struct; cfg, model and the schedules are borrowed.
 *
 * Workers' jobs (work.c) follow the same rules: the job stores every schedule's mark
 * when it is queued (model_marks_job_text), each work item loads them from there
 * (model_marks_load_job) instead of from the store, so every item reads as the single
 * run would have, within its key range; the job's last item advances each schedule's
 * mark to the largest value its source showed in any item.
 */
#ifndef JOEY_MARKS_H
#define JOEY_MARKS_H

#include <stdbool.h>
#include <stddef.h>

#include "base/compat.h"
#include "base/error.h"
#include "base/strbuf.h"
#include "config/config.h"
#include "engine/record.h"
#include "state/state.h"

struct model_marks {
	const struct cfg_model *model;
	size_t n;                            /* model->n_sources */
	const struct cfg_schedule **sched;   /* per source: its incremental schedule, or NULL */
	const char **column;                 /* per source: sched's options.column, or NULL */
	const char **value;                  /* per source: its mark when the read is a changed-records read */
	struct strbuf *mark;                 /* per source: the stored mark (empty: none) */
	struct strbuf *seen;                 /* per source: the largest value read (the pass fills it) */
	bool *saved;                         /* per source: seen is now the schedule's mark */
	struct record_scope scope;
	struct source_read read;             /* the primary source's since column (and mark) */
	bool any;                            /* some source has an incremental schedule */
	bool incremental;                    /* only changed records are read; nothing is deleted */
	bool use_read;                       /* pass &read to the pass (read.since_column set) */
	char why[256];                       /* a model with schedules read in full: why */
};

enum jerr model_marks_load(const struct config *cfg, const struct cfg_model *model, struct state *st,
			   bool full, struct model_marks *m, struct jerror *err) JOEY_WUR;
/*
 * The marks of m (loaded) and full as a job stores them (work_jobs.marks): the JSON
 * object {"full": bool, "marks": {"<schedule id>": "<mark>", ...}} into out (reset first).
 */
enum jerr model_marks_job_text(const struct model_marks *m, bool full, struct strbuf *out) JOEY_WUR;
/*
 * model_marks_load with the marks and full taken from job_marks (borrowed; as
 * model_marks_job_text wrote it) instead of the store. Text that is not such an object
 * is JERR_STATE (m is then empty; model_marks_release is safe).
 */
enum jerr model_marks_load_job(const struct config *cfg, const struct cfg_model *model, const char *job_marks,
			       struct model_marks *m, struct jerror *err) JOEY_WUR;
/*
 * Work items of jobs queued by a joey that stored no marks (work_jobs.marks NULL): the
 * incremental schedule of model's primary source, or *out NULL (secondary schedules
 * are not read by such items).
 */
enum jerr marks_primary_schedule(const struct config *cfg, const struct cfg_model *model,
				 const struct cfg_schedule **out, struct jerror *err) JOEY_WUR;
/*
 * A mark's basis (into out, reset first): what its value was read from, sc's source and
 * column. A stored mark of another basis is not used (the column changed: its values
 * say nothing about this one), as Grouparoo reset a schedule's marks when its options
 * changed; the read is then a full one. A mark stored without a basis is used.
 */
void marks_basis(const struct cfg_schedule *sc, struct strbuf *out);
/* Store value (borrowed) as sc's mark, with its basis. */
enum jerr marks_store(struct state *st, const struct cfg_schedule *sc, const char *value,
		      struct jerror *err) JOEY_WUR;
/* marks_store of the schedule of cfg called schedule_id (without a basis if there is none). */
enum jerr marks_store_id(struct state *st, const struct config *cfg, const char *schedule_id, const char *value,
			 struct jerror *err) JOEY_WUR;
/* Store every schedule's seen value as its mark (errors are logged, not returned). */
void model_marks_save(struct model_marks *m, struct state *st);
void model_marks_release(struct model_marks *m);

#endif
