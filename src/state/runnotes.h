/*
 * runnotes.h: what started each run and how many records it read (schema version 7,
 * table run_notes), so a finished run keeps them after the process that ran it is gone
 * (the API's runs and the UI's run page). One row per run, written once the run ends;
 * not exported (a note about the history, not what Braze has).
 *
 * Strings given are borrowed. In a store older than version 7 (opened read-only) set
 * is refused and get finds nothing.
 */
#ifndef JOEY_STATE_RUNNOTES_H
#define JOEY_STATE_RUNNOTES_H

#include <stdbool.h>
#include <stdint.h>

#include "base/compat.h"
#include "base/error.h"
#include "base/strbuf.h"
#include "state/state.h"

#define STATE_RUN_NOTES_SINCE 7

/* Note run_id's trigger ("cli", "schedule", "api", "retry", "worker"; NULL: unknown) and
 * records read (< 0: unknown); a second note of the same run replaces the first. */
enum jerr state_run_note_set(struct state *st, int64_t run_id, const char *trigger, int64_t records_read,
			     struct jerror *err) JOEY_WUR;
/* run_id's note: *found, then trigger (reset first; empty when unknown) and
 * *records_read (-1 when unknown). */
enum jerr state_run_note_get(struct state *st, int64_t run_id, struct strbuf *trigger, int64_t *records_read,
			     bool *found, struct jerror *err) JOEY_WUR;

#endif
