/* eval.c: trigger verdicts (eval.h). */
#include "alert/eval.h"

#include <string.h>

static const char *const trigger_names[AT__COUNT] = {
	[AT_RUN_FAILED] = "runFailed",         [AT_FAILED_ROWS] = "failedRows",
	[AT_FAILED_ROWS_PERCENT] = "failedRowsPercent", [AT_NO_SUCCESS] = "noSuccessFor",
	[AT_DELETE_GUARD] = "deleteGuard",     [AT_RECORDS_DROP] = "recordsDropPercent",
	[AT_RUN_LONGER] = "runLongerThan",
};

const char *alert_trigger_name(enum alert_trigger t)
{
	return (unsigned)t < AT__COUNT ? trigger_names[t] : NULL;
}

bool alert_trigger_on(const struct cfg_alert *a, enum alert_trigger t)
{
	switch (t) {
	case AT_RUN_FAILED: return a->run_failed;
	case AT_FAILED_ROWS: return a->failed_rows >= 0;
	case AT_FAILED_ROWS_PERCENT: return a->failed_rows_percent >= 0;
	case AT_NO_SUCCESS: return a->no_success_ms > 0;
	case AT_DELETE_GUARD: return a->delete_guard;
	case AT_RECORDS_DROP: return a->records_drop_percent >= 0;
	case AT_RUN_LONGER: return a->run_longer_ms > 0;
	case AT__COUNT: break;
	}
	return false;
}

/* The value trigger t (on in a) is written with: true, or its number. */
static json_t *trigger_json(const struct cfg_alert *a, enum alert_trigger t)
{
	switch (t) {
	case AT_FAILED_ROWS: return json_real(a->failed_rows);
	case AT_FAILED_ROWS_PERCENT: return json_real(a->failed_rows_percent);
	case AT_NO_SUCCESS: return json_integer(a->no_success_ms);
	case AT_RECORDS_DROP: return json_real(a->records_drop_percent);
	case AT_RUN_LONGER: return json_integer(a->run_longer_ms);
	case AT_RUN_FAILED:
	case AT_DELETE_GUARD:
	case AT__COUNT: break;
	}
	return json_true();
}

json_t *alert_triggers_json(const struct cfg_alert *a)
{
	json_t *j = json_object();
	for (int t = 0; t < AT__COUNT; t++)
		if (alert_trigger_on(a, (enum alert_trigger)t))
			json_object_set_new(j, trigger_names[t], trigger_json(a, (enum alert_trigger)t));
	return j;
}

bool alert_covers(const struct cfg_alert *a, const struct cfg_destination *d)
{
	if (a->n_destinations) {
		for (size_t i = 0; i < a->n_destinations; i++)
			if (a->destinations[i] == d || !strcmp(a->destinations[i]->id, d->id))
				return true;
		return false;
	}
	if (a->model)
		return d->model && !strcmp(a->model->id, d->model->id);
	return true;
}

void alert_duration_text(int64_t ms, struct strbuf *sb)
{
	int64_t s = ms / 1000;
	if (ms < 10000)
		strbuf_addf(sb, "%.1f s", (double)ms / 1000);
	else if (s < 120)
		strbuf_addf(sb, "%lld s", (long long)s);
	else if (s < 7200)
		strbuf_addf(sb, "%lld min", (long long)(s / 60));
	else if (s < 172800)
		strbuf_addf(sb, "%lld h %lld min", (long long)(s / 3600), (long long)(s / 60 % 60));
	else
		strbuf_addf(sb, "%lld days %lld h", (long long)(s / 86400), (long long)(s / 3600 % 24));
}

/* Rows the run tried to change: the denominator of failedRowsPercent. */
static uint64_t rows_attempted(const struct run_counts *c)
{
	return c->created + c->updated + c->deleted + c->unsubscribed + c->failed;
}

static void fmt_num(struct strbuf *sb, double v)
{
	strbuf_addf(sb, "%.15g", v);
}

enum alert_verdict alert_eval_run(const struct cfg_alert *a, enum alert_trigger t, const struct alert_run_facts *f,
				  struct strbuf *summary)
{
	bool interrupted = f->status == RUN_INTERRUPTED || f->status == RUN_RUNNING;
	strbuf_reset(summary);
	if (!alert_trigger_on(a, t))
		return AV_UNKNOWN;
	switch (t) {
	case AT_RUN_FAILED:
		if (interrupted)
			return AV_UNKNOWN;
		if (f->status == RUN_FAILED && f->run_error) {
			strbuf_addf(summary, "run %lld failed", (long long)f->run_id);
			if (f->error && *f->error)
				strbuf_addf(summary, ": %s", f->error);
			return AV_FIRING;
		}
		strbuf_addf(summary, "run %lld completed", (long long)f->run_id);
		return AV_CLEAR;
	case AT_FAILED_ROWS:
		if (interrupted || f->run_error)
			return AV_UNKNOWN; /* an unfinished run's counts say nothing */
		if ((double)f->counts.failed > a->failed_rows) {
			strbuf_addf(summary, "run %lld: %llu rows failed (more than ", (long long)f->run_id,
				    (unsigned long long)f->counts.failed);
			fmt_num(summary, a->failed_rows);
			strbuf_addstr(summary, ")");
			return AV_FIRING;
		}
		strbuf_addf(summary, "run %lld: %llu rows failed", (long long)f->run_id, (unsigned long long)f->counts.failed);
		return AV_CLEAR;
	case AT_FAILED_ROWS_PERCENT: {
		if (interrupted || f->run_error)
			return AV_UNKNOWN;
		uint64_t n = rows_attempted(&f->counts);
		double pct = n ? 100.0 * (double)f->counts.failed / (double)n : 0;
		if (n && pct > a->failed_rows_percent) {
			strbuf_addf(summary, "run %lld: %llu of %llu rows failed (%.1f%%, more than ", (long long)f->run_id,
				    (unsigned long long)f->counts.failed, (unsigned long long)n, pct);
			fmt_num(summary, a->failed_rows_percent);
			strbuf_addstr(summary, "%)");
			return AV_FIRING;
		}
		strbuf_addf(summary, "run %lld: %llu of %llu rows failed", (long long)f->run_id,
			    (unsigned long long)f->counts.failed, (unsigned long long)n);
		return AV_CLEAR;
	}
	case AT_DELETE_GUARD:
		if (interrupted)
			return AV_UNKNOWN;
		if (f->deletes_held) {
			strbuf_addf(summary, "run %lld: the mass-delete guard held back %llu deletes", (long long)f->run_id,
				    (unsigned long long)f->deletes_held);
			if (f->error && *f->error)
				strbuf_addf(summary, ": %s", f->error);
			return AV_FIRING;
		}
		if (f->status == RUN_SUCCESS || !f->run_error) {
			strbuf_addf(summary, "run %lld sent its deletes", (long long)f->run_id);
			return AV_CLEAR;
		}
		return AV_UNKNOWN; /* failed before the guard could weigh anything */
	case AT_RECORDS_DROP: {
		if (interrupted || !f->full_read || !f->have_prev || !f->prev_records)
			return AV_UNKNOWN;
		double drop = f->records >= f->prev_records
				      ? 0
				      : 100.0 * (double)(f->prev_records - f->records) / (double)f->prev_records;
		if (drop > a->records_drop_percent) {
			strbuf_addf(summary, "run %lld read %llu records, %.1f%% fewer than the %llu of the previous run (more than ",
				    (long long)f->run_id, (unsigned long long)f->records, drop,
				    (unsigned long long)f->prev_records);
			fmt_num(summary, a->records_drop_percent);
			strbuf_addstr(summary, "%)");
			return AV_FIRING;
		}
		strbuf_addf(summary, "run %lld read %llu records (previous run: %llu)", (long long)f->run_id,
			    (unsigned long long)f->records, (unsigned long long)f->prev_records);
		return AV_CLEAR;
	}
	case AT_RUN_LONGER:
		if (f->elapsed_ms > a->run_longer_ms) {
			strbuf_addf(summary, "run %lld took ", (long long)f->run_id);
			alert_duration_text(f->elapsed_ms, summary);
			strbuf_addstr(summary, " (more than ");
			alert_duration_text(a->run_longer_ms, summary);
			strbuf_addstr(summary, ")");
			return AV_FIRING;
		}
		if (interrupted)
			return AV_UNKNOWN;
		strbuf_addf(summary, "run %lld took ", (long long)f->run_id);
		alert_duration_text(f->elapsed_ms, summary);
		return AV_CLEAR;
	case AT_NO_SUCCESS:
	case AT__COUNT:
		break;
	}
	return AV_UNKNOWN;
}

enum alert_verdict alert_eval_stale(const struct cfg_alert *a, int64_t now, int64_t last_success_at,
				    int64_t first_run_at, struct strbuf *summary)
{
	strbuf_reset(summary);
	if (!alert_trigger_on(a, AT_NO_SUCCESS) || (!last_success_at && !first_run_at))
		return AV_UNKNOWN;
	int64_t since = last_success_at ? last_success_at : first_run_at;
	int64_t age = now - since;
	if (age > a->no_success_ms) {
		if (last_success_at) {
			strbuf_addstr(summary, "no successful run for ");
			alert_duration_text(age, summary);
		} else {
			strbuf_addstr(summary, "no successful run since the first run, ");
			alert_duration_text(age, summary);
			strbuf_addstr(summary, " ago");
		}
		strbuf_addstr(summary, " (more than ");
		alert_duration_text(a->no_success_ms, summary);
		strbuf_addstr(summary, ")");
		return AV_FIRING;
	}
	if (last_success_at) {
		strbuf_addstr(summary, "last successful run ");
		alert_duration_text(age, summary);
		strbuf_addstr(summary, " ago");
		return AV_CLEAR;
	}
	return AV_UNKNOWN; /* never succeeded, but not for long yet */
}
