/* runnotes.c: run_notes (state/runnotes.h) on every back end, through the back ends' exec. */
#include "state/runnotes.h"

#include <string.h>

#include "state/backend.h"

enum jerr state_run_note_set(struct state *st, int64_t run_id, const char *trigger, int64_t records_read,
			     struct jerror *err)
{
	struct state_value p[3] = {
		state_val_int(run_id),
		state_val_text(trigger),
		records_read >= 0 ? state_val_int(records_read) : (struct state_value){ .kind = STATE_VAL_NULL },
	};
	if (st->readonly || st->version < STATE_RUN_NOTES_SINCE) {
		jerror_set(err, JERR_STATE, "could not note how run %lld started: state store \"%s\" is %s",
			   (long long)run_id, st->path, st->readonly ? "open read-only" : "older than version 7");
		return JERR_STATE;
	}
	return st->ops->exec(st, "note a run",
			     "INSERT INTO run_notes (run_id, run_trigger, records_read) VALUES ($1, $2, $3) "
			     "ON CONFLICT (run_id) DO UPDATE SET run_trigger = excluded.run_trigger, "
			     "records_read = excluded.records_read",
			     p, 3, NULL, NULL, NULL, err);
}

struct note_get {
	struct strbuf *trigger;
	int64_t *records_read;
	bool *found;
};

static enum jerr note_row(void *vctx, const struct state_value *row, size_t n, struct jerror *err)
{
	struct note_get *g = vctx;
	(void)err;
	if (n < 2)
		return JERR_OK;
	*g->found = true;
	if (row[0].kind == STATE_VAL_TEXT)
		strbuf_add(g->trigger, row[0].s.ptr, row[0].s.len);
	*g->records_read = row[1].kind == STATE_VAL_INT ? row[1].i : -1;
	return JERR_OK;
}

enum jerr state_run_note_get(struct state *st, int64_t run_id, struct strbuf *trigger, int64_t *records_read,
			     bool *found, struct jerror *err)
{
	struct state_value p = state_val_int(run_id);
	struct note_get g = { trigger, records_read, found };
	strbuf_reset(trigger);
	*records_read = -1;
	*found = false;
	if (st->version < STATE_RUN_NOTES_SINCE)
		return JERR_OK;
	return st->ops->exec(st, "read a run's note", "SELECT run_trigger, records_read FROM run_notes WHERE run_id = $1",
			     &p, 1, note_row, &g, NULL, err);
}
