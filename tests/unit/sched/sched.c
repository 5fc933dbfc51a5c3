/* sched.c: tests for src/sched/sched.c (schedules, queue-once, jobs by model, reload). */
#include "support/testutil.h"

#include <stdlib.h>
#include <string.h>

#include "base/timeutil.h"
#include "sched/sched.h"

/* ---- configs built by hand: no files, just linked structs ---- */

#define FX_MAX 8

struct fx {
	struct config cfg;
	struct cfg_model models[FX_MAX];
	struct cfg_model *model_ptrs[FX_MAX];
	struct cfg_destination *model_dests[FX_MAX][FX_MAX];
	struct cfg_destination dests[FX_MAX];
	struct cfg_destination *dest_ptrs[FX_MAX];
	struct cfg_source sources[FX_MAX];
	struct cfg_source *source_ptrs[FX_MAX];
	struct cfg_schedule scheds[FX_MAX];
	struct cfg_schedule *sched_ptrs[FX_MAX];
};

/* A fresh empty config (free with free()). */
static struct fx *fx_new(void)
{
	struct fx *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	f->cfg.models = f->model_ptrs;
	f->cfg.destinations = f->dest_ptrs;
	f->cfg.sources = f->source_ptrs;
	f->cfg.schedules = f->sched_ptrs;
	return f;
}

static struct cfg_model *fx_find_model(struct fx *f, const char *id)
{
	for (size_t i = 0; i < f->cfg.n_models; i++)
		if (!strcmp(f->models[i].id, id))
			return &f->models[i];
	fail_msg("no model %s in the fixture", id);
	return NULL;
}

/* id is borrowed for the life of f (string literals). */
static void fx_model(struct fx *f, const char *id)
{
	assert_true(f->cfg.n_models < FX_MAX);
	size_t i = f->cfg.n_models++;
	struct cfg_model *m = &f->models[i];
	m->id = m->name = id;
	m->type = "profile";
	m->destinations = f->model_dests[i];
	f->model_ptrs[i] = m;
}

static void fx_dest(struct fx *f, const char *id, const char *model_id)
{
	struct cfg_model *m = fx_find_model(f, model_id);
	assert_true(f->cfg.n_destinations < FX_MAX);
	struct cfg_destination *d = &f->dests[f->cfg.n_destinations];
	d->id = d->name = id;
	d->type = "braze-export-users";
	d->model = m;
	f->dest_ptrs[f->cfg.n_destinations++] = d;
	m->destinations[m->n_destinations++] = d;
}

/* A schedule of a (new) source of model_id; cron NULL for none. */
static struct cfg_schedule *fx_schedule(struct fx *f, const char *id, const char *model_id,
					bool recurring, int64_t freq_ms, const char *cron)
{
	assert_true(f->cfg.n_schedules < FX_MAX);
	struct cfg_source *src = &f->sources[f->cfg.n_sources];
	src->id = src->name = model_id;
	src->type = "sqlite-import-table";
	src->model = fx_find_model(f, model_id);
	f->source_ptrs[f->cfg.n_sources++] = src;
	struct cfg_schedule *sc = &f->scheds[f->cfg.n_schedules];
	sc->id = sc->name = id;
	sc->source = src;
	sc->recurring = recurring;
	sc->recurring_frequency_ms = freq_ms;
	sc->cron = cron;
	f->sched_ptrs[f->cfg.n_schedules++] = sc;
	return sc;
}

static int64_t at(const char *iso)
{
	int64_t ms;
	assert_true(time_parse(iso, strlen(iso), &ms));
	return ms;
}

#define T0 INT64_C(1700000000000)
#define MIN INT64_C(60000)

/* Take a job that must exist and check its model and destinations (NULL-terminated). */
static void take_expect(struct sched *s, int64_t now, struct sched_job *job, const char *model,
			const char *const *dests)
{
	size_t n = 0;
	assert_true(sched_take(s, now, job));
	assert_string_equal(job->model_id, model);
	while (dests[n])
		n++;
	assert_int_equal(job->n_dests, n);
	for (size_t i = 0; i < n; i++)
		assert_string_equal(job->dest_ids[i], dests[i]);
}

#define TAKE(s, now, job, model, ...) \
	take_expect((s), (now), (job), (model), (const char *const[]){ __VA_ARGS__, NULL })

static void take_none(struct sched *s, int64_t now)
{
	struct sched_job job;
	assert_false(sched_take(s, now, &job));
	assert_null(job.model_id);
	assert_null(job.dest_ids);
	assert_int_equal(job.n_dests, 0);
	sched_job_release(&job);
}

/* Run whatever is takeable at now to completion; returns the number of jobs. */
static int run_all(struct sched *s, int64_t now)
{
	struct sched_job job;
	int n = 0;
	while (sched_take(s, now, &job)) {
		sched_done(s, &job, now);
		sched_job_release(&job);
		n++;
	}
	return n;
}

/* One model "users" with destination "braze", plus what the caller adds. */
static struct fx *fx_users(void)
{
	struct fx *f = fx_new();
	fx_model(f, "users");
	fx_dest(f, "braze", "users");
	return f;
}

/* ---- tests ---- */

static void test_trigger_names(void **st)
{
	assert_string_equal(sched_trigger_name(SCHED_TRIGGER_SCHEDULE), "schedule");
	assert_string_equal(sched_trigger_name(SCHED_TRIGGER_API), "api");
	assert_string_equal(sched_trigger_name(SCHED_TRIGGER_RETRY), "retry");
	assert_string_equal(sched_trigger_name((enum sched_trigger)42), "unknown");
}

static void test_empty(void **st)
{
	struct sched *s = sched_new();
	struct sched_request_result res = { 7, 7 };

	assert_int_equal(sched_tick(s, T0), -1);
	take_none(s, T0);
	assert_int_equal(sched_queue_depth(s), 0);
	assert_false(sched_request(s, "users", NULL, SCHED_TRIGGER_API, false, false, T0, &res));
	assert_int_equal(res.n_started, 0);
	assert_int_equal(res.n_queued, 0);
	/* "everything" of nothing is fine */
	assert_true(sched_request(s, NULL, NULL, SCHED_TRIGGER_API, false, false, T0, &res));
	assert_int_equal(res.n_started + res.n_queued, 0);
	sched_set_config(s, NULL, T0);
	assert_int_equal(sched_next_due(s, "nope"), -1);
	assert_int_equal(sched_last_fired(s, "nope"), -1);
	assert_false(sched_dest_running(s, "nope"));
	assert_false(sched_dest_queued(s, "nope"));
	sched_free(s);
	sched_free(NULL);
}

static void test_frequency_fires_at_start_then_every_frequency(void **st)
{
	struct fx *f = fx_users();
	struct sched *s = sched_new();
	struct sched_job job;

	fx_schedule(f, "every5", "users", true, 5 * MIN, NULL);
	sched_set_config(s, &f->cfg, T0);
	/* never ran: due at once */
	assert_int_equal(sched_next_due(s, "every5"), T0);
	assert_int_equal(sched_last_fired(s, "every5"), -1);
	assert_int_equal(sched_queue_depth(s), 0);

	assert_int_equal(sched_tick(s, T0), 5 * MIN);
	assert_int_equal(sched_last_fired(s, "every5"), T0);
	assert_int_equal(sched_next_due(s, "every5"), T0 + 5 * MIN);
	assert_int_equal(sched_queue_depth(s), 1);
	assert_true(sched_dest_queued(s, "braze"));
	assert_false(sched_dest_running(s, "braze"));

	TAKE(s, T0, &job, "users", "braze");
	assert_int_equal(job.trigger, SCHED_TRIGGER_SCHEDULE);
	assert_string_equal(job.schedule_id, "every5");
	assert_false(job.full);
	assert_false(job.force);
	assert_int_equal(job.requested_at, T0);
	assert_true(sched_dest_running(s, "braze"));
	assert_false(sched_dest_queued(s, "braze"));
	assert_int_equal(sched_queue_depth(s), 0);
	sched_done(s, &job, T0 + 20000);
	sched_job_release(&job);
	assert_false(sched_dest_running(s, "braze"));

	/* nothing due in between; the wait shrinks with the clock */
	assert_int_equal(sched_tick(s, T0 + MIN), 4 * MIN);
	take_none(s, T0 + MIN);
	assert_int_equal(sched_tick(s, T0 + 5 * MIN - 1), 1);
	take_none(s, T0 + 5 * MIN - 1);

	/* exactly at the frequency */
	assert_int_equal(sched_tick(s, T0 + 5 * MIN), 5 * MIN);
	assert_int_equal(sched_last_fired(s, "every5"), T0 + 5 * MIN);
	assert_int_equal(run_all(s, T0 + 5 * MIN), 1);
	assert_int_equal(sched_next_due(s, "every5"), T0 + 10 * MIN);

	/* a late tick (the process was busy) fires once, and the next due counts from then */
	assert_int_equal(sched_tick(s, T0 + 23 * MIN), 5 * MIN);
	assert_int_equal(sched_queue_depth(s), 1);
	assert_int_equal(sched_tick(s, T0 + 23 * MIN), 5 * MIN); /* no double fire */
	assert_int_equal(run_all(s, T0 + 23 * MIN), 1);
	assert_int_equal(sched_next_due(s, "every5"), T0 + 28 * MIN);
	take_none(s, T0 + 24 * MIN);

	sched_free(s);
	free(f);
}

/* model users with destinations braze and braze2 and an hourly schedule, configured at T0; *f the caller's */
static struct sched *hourly_two_dests(struct fx **f)
{
	struct sched *s = sched_new();
	*f = fx_users();
	fx_dest(*f, "braze2", "users");
	fx_schedule(*f, "hourly", "users", true, 60 * MIN, NULL);
	sched_set_config(s, &(*f)->cfg, T0);
	return s;
}

static void test_last_run_moves_first_due(void **st)
{
	struct fx *f;
	struct sched *s = hourly_two_dests(&f);
	struct sched_job job;

	assert_int_equal(sched_next_due(s, "hourly"), T0);

	/* the history: braze ran 10 minutes ago, braze2 never: due at once */
	sched_set_last_run(s, "braze", T0 - 10 * MIN);
	assert_int_equal(sched_next_due(s, "hourly"), T0);
	/* braze2 ran 5 minutes ago: both have run since T0 - 10 minutes, due in 50 */
	sched_set_last_run(s, "braze2", T0 - 5 * MIN);
	assert_int_equal(sched_next_due(s, "hourly"), T0 + 50 * MIN);
	/* an older run of the same destination does not move it back */
	sched_set_last_run(s, "braze", T0 - 30 * MIN);
	assert_int_equal(sched_next_due(s, "hourly"), T0 + 50 * MIN);
	/* the oldest of the destinations' last starts counts */
	sched_set_last_run(s, "braze", T0 - 2 * MIN);
	assert_int_equal(sched_next_due(s, "hourly"), T0 + 55 * MIN);
	/* unknown destinations are ignored */
	sched_set_last_run(s, "gone", T0);
	assert_int_equal(sched_next_due(s, "hourly"), T0 + 55 * MIN);

	assert_false(sched_any_due(s, T0));
	assert_int_equal(sched_tick(s, T0), 55 * MIN);
	take_none(s, T0);
	/* due, but another process's run of both (the server reads it first) moves it */
	assert_true(sched_any_due(s, T0 + 55 * MIN));
	sched_set_last_run(s, "braze", T0 + 54 * MIN);
	sched_set_last_run(s, "braze2", T0 + 54 * MIN);
	assert_false(sched_any_due(s, T0 + 55 * MIN));
	assert_int_equal(sched_next_due(s, "hourly"), T0 + 114 * MIN);
	assert_int_equal(sched_tick(s, T0 + 55 * MIN), 59 * MIN);
	take_none(s, T0 + 55 * MIN);
	assert_true(sched_any_due(s, T0 + 114 * MIN));
	assert_int_equal(sched_tick(s, T0 + 114 * MIN), 60 * MIN);
	assert_false(sched_any_due(s, T0 + 114 * MIN)); /* fired: not due again */
	TAKE(s, T0 + 114 * MIN, &job, "users", "braze", "braze2");
	sched_done(s, &job, T0 + 115 * MIN);
	sched_job_release(&job);
	sched_free(s);
	free(f);
}

/* the rest of test_last_run_moves_first_due's history, without another process */
static void test_last_run_then_demand(void **st)
{
	struct fx *f;
	struct sched *s = hourly_two_dests(&f);
	struct sched_job job;

	sched_set_last_run(s, "braze", T0 - 2 * MIN);
	sched_set_last_run(s, "braze2", T0 - 5 * MIN);
	assert_int_equal(sched_tick(s, T0), 55 * MIN);
	take_none(s, T0);
	assert_int_equal(sched_tick(s, T0 + 55 * MIN), 60 * MIN);
	TAKE(s, T0 + 55 * MIN, &job, "users", "braze", "braze2");
	sched_done(s, &job, T0 + 56 * MIN);
	sched_job_release(&job);

	/* a run on demand of the whole model is a run too: the schedule counts from its start */
	assert_true(sched_request(s, "users", NULL, SCHED_TRIGGER_API, false, false, T0 + 90 * MIN, NULL));
	assert_int_equal(sched_next_due(s, "hourly"), T0 + 115 * MIN); /* not taken yet */
	TAKE(s, T0 + 91 * MIN, &job, "users", "braze", "braze2");
	assert_int_equal(sched_next_due(s, "hourly"), T0 + 151 * MIN);
	assert_int_equal(sched_tick(s, T0 + 115 * MIN), 36 * MIN);
	sched_done(s, &job, T0 + 92 * MIN);
	sched_job_release(&job);

	sched_free(s);
	free(f);
}

/*
 * The review's repro: a model with two destinations and a 1-minute schedule; an API run
 * of one of them every 35 s. Each run started counted for the whole model, so the
 * schedule never fired again and the other destination never ran.
 */
static void test_one_destination_does_not_postpone_others(void **st)
{
	struct fx *f = fx_users();
	struct sched *s = sched_new();
	struct sched_job job;
	const int64_t sec = 1000;

	fx_dest(f, "braze2", "users");
	fx_schedule(f, "every1", "users", true, MIN, NULL);
	sched_set_config(s, &f->cfg, T0);
	assert_int_equal(sched_tick(s, T0), MIN);
	TAKE(s, T0, &job, "users", "braze", "braze2");
	sched_done(s, &job, T0 + sec);
	sched_job_release(&job);

	/* braze alone, on demand every 35 s: the schedule still fires a minute after its run */
	for (int64_t t = T0 + 35 * sec; t < T0 + MIN; t += 35 * sec) {
		assert_true(sched_request(s, NULL, "braze", SCHED_TRIGGER_API, false, false, t, NULL));
		TAKE(s, t, &job, "users", "braze");
		sched_done(s, &job, t + sec);
		sched_job_release(&job);
		assert_int_equal(sched_next_due(s, "every1"), T0 + MIN);
	}
	assert_int_equal(sched_tick(s, T0 + MIN), MIN);
	TAKE(s, T0 + MIN, &job, "users", "braze", "braze2");
	assert_int_equal(job.trigger, SCHED_TRIGGER_SCHEDULE);
	sched_done(s, &job, T0 + MIN + sec);
	sched_job_release(&job);

	/* braze runs on demand when the schedule fires: braze2 goes at once, braze after */
	assert_true(sched_request(s, NULL, "braze", SCHED_TRIGGER_API, false, false, T0 + 2 * MIN - sec, NULL));
	TAKE(s, T0 + 2 * MIN - sec, &job, "users", "braze");
	assert_int_equal(sched_next_due(s, "every1"), T0 + 2 * MIN);
	assert_int_equal(sched_tick(s, T0 + 2 * MIN), MIN);
	struct sched_job job2;
	TAKE(s, T0 + 2 * MIN, &job2, "users", "braze2");
	assert_string_equal(job2.schedule_id, "every1");
	sched_done(s, &job2, T0 + 2 * MIN + sec);
	sched_job_release(&job2);
	sched_done(s, &job, T0 + 2 * MIN + sec);
	sched_job_release(&job);
	TAKE(s, T0 + 2 * MIN + sec, &job, "users", "braze");
	assert_string_equal(job.schedule_id, "every1");
	sched_done(s, &job, T0 + 2 * MIN + 2 * sec);
	sched_job_release(&job);
	/* both ran since the fire: not due again before a minute after it */
	assert_int_equal(sched_next_due(s, "every1"), T0 + 3 * MIN);
	assert_int_equal(sched_tick(s, T0 + 2 * MIN + 2 * sec), MIN - 2 * sec);

	/* a retry of braze2 alone: due a minute after braze's last start, not the retry's */
	assert_true(sched_request(s, NULL, "braze2", SCHED_TRIGGER_RETRY, false, false, T0 + 2 * MIN + 30 * sec, NULL));
	TAKE(s, T0 + 2 * MIN + 30 * sec, &job, "users", "braze2");
	sched_done(s, &job, T0 + 2 * MIN + 31 * sec);
	sched_job_release(&job);
	assert_int_equal(sched_next_due(s, "every1"), T0 + 3 * MIN + sec);

	sched_free(s);
	free(f);
}

static void test_cron_fires_at_matching_minutes_only(void **st)
{
	struct fx *f = fx_users();
	struct sched *s = sched_new();
	struct sched_job job;

	/* cron without `recurring` still fires */
	fx_schedule(f, "quarter", "users", false, 0, "*/15 * * * *");
	sched_set_config(s, &f->cfg, at("2026-11-24T10:07:00Z"));
	assert_int_equal(sched_next_due(s, "quarter"), at("2026-11-24T10:15:00Z"));

	assert_int_equal(sched_tick(s, at("2026-11-24T10:07:00Z")), 8 * MIN);
	assert_int_equal(sched_queue_depth(s), 0);
	assert_int_equal(sched_tick(s, at("2026-11-24T10:14:59Z")), 1000);
	take_none(s, at("2026-11-24T10:14:59Z"));

	assert_int_equal(sched_tick(s, at("2026-11-24T10:15:00Z")), 15 * MIN);
	assert_int_equal(sched_last_fired(s, "quarter"), at("2026-11-24T10:15:00Z"));
	assert_int_equal(sched_next_due(s, "quarter"), at("2026-11-24T10:30:00Z"));
	TAKE(s, at("2026-11-24T10:15:01Z"), &job, "users", "braze");
	assert_int_equal(job.trigger, SCHED_TRIGGER_SCHEDULE);
	assert_string_equal(job.schedule_id, "quarter");
	sched_done(s, &job, at("2026-11-24T10:16:00Z"));
	sched_job_release(&job);

	/* a run does not move a cron schedule */
	assert_int_equal(sched_next_due(s, "quarter"), at("2026-11-24T10:30:00Z"));
	assert_int_equal(sched_tick(s, at("2026-11-24T10:16:00Z")), 14 * MIN);
	take_none(s, at("2026-11-24T10:16:00Z"));

	/* missed minutes (10:30, 10:45, 11:00) are not caught up: one fire, then 11:15 */
	assert_int_equal(sched_tick(s, at("2026-11-24T11:02:00Z")), 13 * MIN);
	assert_int_equal(sched_last_fired(s, "quarter"), at("2026-11-24T11:02:00Z"));
	assert_int_equal(sched_next_due(s, "quarter"), at("2026-11-24T11:15:00Z"));
	assert_int_equal(run_all(s, at("2026-11-24T11:02:00Z")), 1);
	assert_int_equal(run_all(s, at("2026-11-24T11:02:00Z")), 0);

	sched_free(s);
	free(f);
}

/*
 * The wall clock goes back a day (an NTP step, a clock that was set wrong): times the
 * scheduler noted past the new now count as now, so a frequency schedule waits one
 * frequency, and a cron schedule its next matching minute, not the day until the clock
 * is back where it was.
 */
static void test_clock_going_back_waits_no_longer_than_a_frequency(void **st)
{
	struct fx *f = fx_users();
	struct sched *s = sched_new();
	const int64_t day = 24 * 60 * MIN, b = at("2026-11-24T10:00:00Z");

	fx_schedule(f, "every5", "users", true, 5 * MIN, NULL);
	fx_model(f, "orders");
	fx_dest(f, "braze_orders", "orders");
	fx_schedule(f, "quarter", "orders", false, 0, "*/15 * * * *");
	sched_set_config(s, &f->cfg, b);
	assert_int_equal(sched_tick(s, b), 5 * MIN);
	assert_int_equal(run_all(s, b), 1);
	assert_int_equal(sched_tick(s, b + 15 * MIN), 5 * MIN); /* both fire */
	assert_int_equal(run_all(s, b + 15 * MIN), 2);

	/* back a day: nothing is due at once, and each waits as long as it should */
	const int64_t back = b + 16 * MIN - day;
	int64_t wait = sched_tick(s, back);
	assert_true(wait > 0 && wait <= 5 * MIN);
	take_none(s, back);
	assert_true(sched_next_due(s, "every5") <= back + 5 * MIN);
	assert_true(sched_next_due(s, "quarter") <= back + 15 * MIN);
	assert_int_equal(sched_tick(s, back + 5 * MIN), 5 * MIN);
	assert_int_equal(sched_last_fired(s, "every5"), back + 5 * MIN);
	assert_int_equal(run_all(s, back + 5 * MIN), 1);
	assert_int_equal(sched_tick(s, back + 15 * MIN) >= 0, 1);
	assert_int_equal(sched_last_fired(s, "quarter"), back + 15 * MIN);

	sched_free(s);
	free(f);
}

static void test_cron_wins_over_frequency(void **st)
{
	struct fx *f = fx_users();
	struct sched *s = sched_new();

	fx_schedule(f, "both", "users", true, 5 * MIN, "0 * * * *");
	sched_set_config(s, &f->cfg, at("2026-11-24T10:07:00Z"));
	/* not "due at once" as a never-run frequency schedule would be */
	assert_int_equal(sched_next_due(s, "both"), at("2026-11-24T11:00:00Z"));
	assert_int_equal(sched_tick(s, at("2026-11-24T10:07:00Z")), 53 * MIN);
	assert_int_equal(sched_queue_depth(s), 0);
	sched_free(s);
	free(f);
}

/* A worker that becomes the leader restarts the schedules; a run asked for through the
 * API meanwhile (before the election was won) stays asked for. */
static void test_restart_schedules_keeps_requests(void **st)
{
	struct fx *f = fx_users();
	struct sched *s = sched_new();
	struct sched_request_result res;
	struct sched_job job;

	fx_schedule(f, "cron3", "users", true, 0, "0 3 * * *");
	sched_set_config(s, &f->cfg, T0);
	assert_true(sched_request(s, NULL, "braze", SCHED_TRIGGER_API, false, true, T0 + 1, &res));
	assert_int_equal(res.n_started, 1);
	sched_restart_schedules(s, &f->cfg, T0 + 2);
	assert_true(sched_dest_queued(s, "braze"));
	TAKE(s, T0 + 3, &job, "users", "braze");
	assert_int_equal(job.trigger, SCHED_TRIGGER_API);
	assert_true(job.force);
	assert_int_equal(job.requested_at, T0 + 1);
	sched_done(s, &job, T0 + 4);
	sched_job_release(&job);
	take_none(s, T0 + 5);
	sched_free(s);
	free(f);
}

static void test_not_recurring_is_on_demand(void **st)
{
	struct fx *f = fx_users();
	struct sched *s = sched_new();
	struct sched_request_result res;
	struct sched_job job;

	fx_model(f, "accounts");
	fx_dest(f, "acc", "accounts");
	fx_model(f, "events");
	fx_dest(f, "ev", "events");
	fx_schedule(f, "manual", "users", false, 0, NULL);
	fx_schedule(f, "zero", "accounts", true, 0, NULL);         /* recurring, no frequency */
	fx_schedule(f, "off", "events", false, 10 * MIN, NULL);     /* frequency but not recurring */
	sched_set_config(s, &f->cfg, T0);
	assert_int_equal(sched_next_due(s, "manual"), -1);
	assert_int_equal(sched_next_due(s, "zero"), -1);
	assert_int_equal(sched_next_due(s, "off"), -1);
	for (int64_t t = T0; t < T0 + 24 * 60 * MIN; t += 7 * MIN) {
		assert_int_equal(sched_tick(s, t), -1);
		take_none(s, t);
	}
	assert_int_equal(sched_last_fired(s, "manual"), -1);

	/* on demand works */
	assert_true(sched_request(s, "users", NULL, SCHED_TRIGGER_API, false, false, T0 + 3, &res));
	assert_int_equal(res.n_started, 1);
	assert_int_equal(res.n_queued, 0);
	TAKE(s, T0 + 4, &job, "users", "braze");
	assert_int_equal(job.trigger, SCHED_TRIGGER_API);
	assert_null(job.schedule_id);
	assert_int_equal(job.requested_at, T0 + 3);
	sched_done(s, &job, T0 + 5);
	sched_job_release(&job);
	/* the run does not create a schedule */
	assert_int_equal(sched_next_due(s, "manual"), -1);
	assert_int_equal(sched_tick(s, T0 + 6), -1);

	sched_free(s);
	free(f);
}

static void test_overlap_queues_once(void **st)
{
	struct fx *f = fx_users();
	struct sched *s = sched_new();
	struct sched_request_result res;
	struct sched_job job;

	fx_schedule(f, "every5", "users", true, 5 * MIN, NULL);
	sched_set_config(s, &f->cfg, T0);
	sched_set_last_run(s, "braze", T0);

	assert_true(sched_request(s, NULL, "braze", SCHED_TRIGGER_API, false, false, T0, &res));
	assert_int_equal(res.n_started, 1);
	assert_int_equal(res.n_queued, 0);
	TAKE(s, T0, &job, "users", "braze");
	assert_false(job.full);
	assert_int_equal(job.seq, 1);

	/* many requests while it runs: each answers "queued" */
	for (int i = 0; i < 10; i++) {
		assert_true(sched_request(s, i % 2 ? "users" : NULL, i % 3 ? NULL : "braze",
					  i == 4 ? SCHED_TRIGGER_RETRY : SCHED_TRIGGER_API, i == 3, i == 7,
					  T0 + 1000 + i, &res));
		assert_int_equal(res.n_started, 0);
		assert_int_equal(res.n_queued, 1);
	}
	/* the schedule fires during the run (a run longer than its frequency): merged too */
	assert_int_equal(sched_tick(s, T0 + 5 * MIN), 5 * MIN);
	assert_true(sched_dest_running(s, "braze"));
	assert_true(sched_dest_queued(s, "braze"));
	assert_int_equal(sched_queue_depth(s), 0); /* wanted but running: not startable */
	take_none(s, T0 + 5 * MIN);

	/* the run ends: exactly one more run, with the flags OR-ed */
	sched_done(s, &job, T0 + 6 * MIN);
	sched_job_release(&job);
	assert_false(sched_dest_running(s, "braze"));
	assert_true(sched_dest_queued(s, "braze"));
	assert_int_equal(sched_queue_depth(s), 1);
	TAKE(s, T0 + 6 * MIN, &job, "users", "braze");
	assert_true(job.full);
	assert_true(job.force);
	assert_int_equal(job.seq, 2);
	assert_int_equal(job.trigger, SCHED_TRIGGER_API);   /* of the oldest request */
	assert_int_equal(job.requested_at, T0 + 1000);
	assert_string_equal(job.schedule_id, "every5");     /* the schedule was merged in */
	assert_int_equal(sched_queue_depth(s), 0);
	sched_done(s, &job, T0 + 7 * MIN);
	sched_job_release(&job);
	take_none(s, T0 + 7 * MIN);
	assert_int_equal(sched_queue_depth(s), 0);
	assert_false(sched_dest_queued(s, "braze"));

	/* flags do not leak into the following run */
	assert_true(sched_request(s, NULL, "braze", SCHED_TRIGGER_API, false, false, T0 + 8 * MIN, NULL));
	TAKE(s, T0 + 8 * MIN, &job, "users", "braze");
	assert_false(job.full);
	assert_false(job.force);
	assert_null(job.schedule_id);
	sched_done(s, &job, T0 + 8 * MIN);
	sched_job_release(&job);

	sched_free(s);
	free(f);
}

static void test_merged_requests_keep_the_oldest(void **st)
{
	struct fx *f = fx_users();
	struct sched *s = sched_new();
	struct sched_request_result res;
	struct sched_job job;

	fx_schedule(f, "every5", "users", true, 5 * MIN, NULL);
	sched_set_config(s, &f->cfg, T0);
	sched_set_last_run(s, "braze", T0 - 5 * MIN + 100);

	/* not running: a second request is still "started" (it will be the same run) */
	assert_true(sched_request(s, NULL, "braze", SCHED_TRIGGER_RETRY, true, false, T0, &res));
	assert_int_equal(res.n_started, 1);
	assert_true(sched_request(s, NULL, NULL, SCHED_TRIGGER_API, false, true, T0 + 50, &res));
	assert_int_equal(res.n_started, 1);
	assert_int_equal(res.n_queued, 0);
	assert_int_equal(sched_queue_depth(s), 1);
	assert_int_equal(sched_tick(s, T0 + 100), 5 * MIN);
	assert_int_equal(sched_queue_depth(s), 1);
	TAKE(s, T0 + 200, &job, "users", "braze");
	assert_int_equal(job.trigger, SCHED_TRIGGER_RETRY);
	assert_int_equal(job.requested_at, T0);
	assert_true(job.full);
	assert_true(job.force);
	assert_string_equal(job.schedule_id, "every5");
	sched_done(s, &job, T0 + 300);
	sched_job_release(&job);

	/* schedule first, then the API: the trigger is the schedule's */
	assert_int_equal(sched_tick(s, T0 + 200 + 5 * MIN), 5 * MIN);
	assert_true(sched_request(s, "users", NULL, SCHED_TRIGGER_API, true, false, T0 + 201 + 5 * MIN, NULL));
	TAKE(s, T0 + 202 + 5 * MIN, &job, "users", "braze");
	assert_int_equal(job.trigger, SCHED_TRIGGER_SCHEDULE);
	assert_string_equal(job.schedule_id, "every5");
	assert_int_equal(job.requested_at, T0 + 200 + 5 * MIN);
	assert_true(job.full);
	sched_done(s, &job, T0 + 203 + 5 * MIN);
	sched_job_release(&job);

	sched_free(s);
	free(f);
}

static void test_jobs_group_by_model(void **st)
{
	struct fx *f = fx_new();
	struct sched *s = sched_new();
	struct sched_request_result res;
	struct sched_job job;

	fx_model(f, "users");
	fx_model(f, "accounts");
	fx_dest(f, "u_b", "users");
	fx_dest(f, "acc", "accounts");
	fx_dest(f, "u_a", "users");
	sched_set_config(s, &f->cfg, T0);

	/* everything at once: one job per model, destinations in config order */
	assert_true(sched_request(s, NULL, NULL, SCHED_TRIGGER_API, false, false, T0, &res));
	assert_int_equal(res.n_started, 3);
	assert_int_equal(res.n_queued, 0);
	assert_int_equal(sched_queue_depth(s), 3);
	struct sched_job a, b;
	TAKE(s, T0, &a, "users", "u_b", "u_a");
	assert_int_equal(sched_queue_depth(s), 1);
	TAKE(s, T0, &b, "accounts", "acc");
	assert_int_equal(sched_queue_depth(s), 0);
	take_none(s, T0);
	assert_true(sched_dest_running(s, "u_a"));
	assert_true(sched_dest_running(s, "u_b"));
	assert_true(sched_dest_running(s, "acc"));
	sched_done(s, &b, T0 + 1);
	sched_done(s, &a, T0 + 1);
	sched_job_release(&a);
	sched_job_release(&b);
	assert_false(sched_dest_running(s, "u_a"));

	/* two destinations of a model asked separately still come out as one job */
	assert_true(sched_request(s, NULL, "u_a", SCHED_TRIGGER_API, false, false, T0 + 10, NULL));
	assert_true(sched_request(s, "users", "u_b", SCHED_TRIGGER_API, false, false, T0 + 11, NULL));
	TAKE(s, T0 + 12, &job, "users", "u_b", "u_a");
	assert_int_equal(job.requested_at, T0 + 10);
	sched_done(s, &job, T0 + 13);
	sched_job_release(&job);

	/* the model with the oldest request goes first */
	assert_true(sched_request(s, "accounts", NULL, SCHED_TRIGGER_API, false, false, T0 + 20, NULL));
	assert_true(sched_request(s, "users", NULL, SCHED_TRIGGER_API, false, false, T0 + 21, NULL));
	TAKE(s, T0 + 22, &a, "accounts", "acc");
	TAKE(s, T0 + 22, &b, "users", "u_b", "u_a");
	sched_done(s, &a, T0 + 23);
	sched_done(s, &b, T0 + 23);
	sched_job_release(&a);
	sched_job_release(&b);
	take_none(s, T0 + 24);

	sched_free(s);
	free(f);
}

static void test_running_destination_never_handed_out_twice(void **st)
{
	struct fx *f = fx_new();
	struct sched *s = sched_new();
	struct sched_request_result res;
	struct sched_job j1, j2, j3;

	fx_model(f, "users");
	fx_dest(f, "one", "users");
	fx_dest(f, "two", "users");
	sched_set_config(s, &f->cfg, T0);

	assert_true(sched_request(s, NULL, "one", SCHED_TRIGGER_API, false, false, T0, &res));
	TAKE(s, T0, &j1, "users", "one");

	/* the model is asked for while "one" runs: "two" starts, "one" is queued */
	assert_true(sched_request(s, "users", NULL, SCHED_TRIGGER_API, false, false, T0 + 1, &res));
	assert_int_equal(res.n_started, 1);
	assert_int_equal(res.n_queued, 1);
	TAKE(s, T0 + 1, &j2, "users", "two");
	take_none(s, T0 + 1);

	/* everything is running: every request queues */
	assert_true(sched_request(s, NULL, NULL, SCHED_TRIGGER_API, false, false, T0 + 2, &res));
	assert_int_equal(res.n_started, 0);
	assert_int_equal(res.n_queued, 2);
	take_none(s, T0 + 2);
	assert_int_equal(sched_queue_depth(s), 0);

	/* each queued destination comes back only after its own run ended */
	sched_done(s, &j2, T0 + 3);
	assert_int_equal(sched_queue_depth(s), 1);
	TAKE(s, T0 + 3, &j3, "users", "two");
	take_none(s, T0 + 3);
	sched_done(s, &j1, T0 + 4);
	sched_job_release(&j1);
	TAKE(s, T0 + 4, &j1, "users", "one");
	take_none(s, T0 + 4);

	/* a second sched_done of an ended job changes nothing */
	sched_done(s, &j2, T0 + 5);
	assert_true(sched_dest_running(s, "two"));
	sched_done(s, &j3, T0 + 5);
	sched_done(s, &j1, T0 + 5);
	assert_false(sched_dest_running(s, "one"));
	assert_false(sched_dest_running(s, "two"));
	take_none(s, T0 + 6);
	sched_job_release(&j1);
	sched_job_release(&j2);
	sched_job_release(&j3);
	sched_job_release(&j3); /* released twice is harmless */

	sched_free(s);
	free(f);
}

static void test_unknown_requests_change_nothing(void **st)
{
	struct fx *f = fx_users();
	struct sched *s = sched_new();
	struct sched_request_result res;

	fx_model(f, "accounts");
	fx_dest(f, "acc", "accounts");
	fx_model(f, "empty");
	sched_set_config(s, &f->cfg, T0);

	res.n_started = res.n_queued = 9;
	assert_false(sched_request(s, "nope", NULL, SCHED_TRIGGER_API, true, true, T0, &res));
	assert_int_equal(res.n_started, 0);
	assert_int_equal(res.n_queued, 0);
	assert_false(sched_request(s, NULL, "nope", SCHED_TRIGGER_API, true, true, T0, &res));
	assert_false(sched_request(s, "nope", "braze", SCHED_TRIGGER_API, true, true, T0, &res));
	/* a destination of another model */
	assert_false(sched_request(s, "accounts", "braze", SCHED_TRIGGER_API, true, true, T0, &res));
	assert_false(sched_request(s, NULL, "nope", SCHED_TRIGGER_API, true, true, T0, NULL));
	assert_int_equal(sched_queue_depth(s), 0);
	assert_false(sched_dest_queued(s, "braze"));
	take_none(s, T0);

	/* a model without destinations is known: nothing to do */
	assert_true(sched_request(s, "empty", NULL, SCHED_TRIGGER_API, false, false, T0, &res));
	assert_int_equal(res.n_started, 0);
	assert_int_equal(res.n_queued, 0);
	take_none(s, T0);

	/* model and destination together */
	assert_true(sched_request(s, "users", "braze", SCHED_TRIGGER_API, false, false, T0, &res));
	assert_int_equal(res.n_started, 1);
	assert_true(sched_dest_queued(s, "braze"));
	assert_false(sched_dest_queued(s, "acc"));
	assert_int_equal(sched_queue_depth(s), 1);

	sched_free(s);
	free(f);
}

static void test_reload_keeps_and_recomputes(void **st)
{
	struct fx *f1 = fx_new(), *f2 = fx_new();
	struct sched *s = sched_new();
	struct sched_job job;
	const int64_t t0 = at("2026-11-24T10:07:00Z");

	/* before: users {u1, u2}, accounts {acc}, events {ev}; four schedules */
	fx_model(f1, "users");
	fx_dest(f1, "u1", "users");
	fx_dest(f1, "u2", "users");
	fx_model(f1, "accounts");
	fx_dest(f1, "acc", "accounts");
	fx_model(f1, "events");
	fx_dest(f1, "ev", "events");
	fx_schedule(f1, "users_freq", "users", true, 10 * MIN, NULL);
	fx_schedule(f1, "acc_cron", "accounts", false, 0, "*/15 * * * *");
	fx_schedule(f1, "ev_cron", "events", false, 0, "*/15 * * * *");
	fx_schedule(f1, "doomed", "events", true, 30 * MIN, NULL);
	sched_set_config(s, &f1->cfg, t0);
	sched_set_last_run(s, "ev", t0);

	assert_int_equal(sched_tick(s, t0), 8 * MIN); /* users_freq fires */
	assert_int_equal(sched_last_fired(s, "users_freq"), t0);
	assert_int_equal(sched_next_due(s, "doomed"), t0 + 30 * MIN);
	TAKE(s, t0, &job, "users", "u1", "u2");
	/* u2 is asked for again during its run; ev is wanted but not running */
	assert_true(sched_request(s, NULL, "u2", SCHED_TRIGGER_API, false, false, t0 + 1, NULL));
	assert_true(sched_request(s, NULL, "ev", SCHED_TRIGGER_API, false, false, t0 + 1, NULL));
	assert_true(sched_request(s, NULL, "acc", SCHED_TRIGGER_API, true, false, t0 + 1, NULL));
	assert_int_equal(sched_queue_depth(s), 2);

	/*
	 * after: u2 and the events model are gone, users_freq and acc_cron unchanged,
	 * ev_cron moved to users with another expression, doomed removed, new added
	 */
	fx_model(f2, "users");
	fx_dest(f2, "u1", "users");
	fx_model(f2, "accounts");
	fx_dest(f2, "acc", "accounts");
	fx_schedule(f2, "users_freq", "users", true, 10 * MIN, NULL);
	fx_schedule(f2, "acc_cron", "accounts", false, 0, "*/15 * * * *");
	fx_schedule(f2, "ev_cron", "users", false, 0, "0 * * * *");
	fx_schedule(f2, "new", "accounts", true, 60 * MIN, NULL);
	const int64_t t1 = at("2026-11-24T10:20:00Z");
	sched_set_config(s, &f2->cfg, t1);

	/* unchanged timing: next due kept (acc_cron stays at 10:15, overdue; not 10:30) */
	assert_int_equal(sched_next_due(s, "users_freq"), t0 + 10 * MIN);
	assert_int_equal(sched_last_fired(s, "users_freq"), t0);
	assert_int_equal(sched_next_due(s, "acc_cron"), at("2026-11-24T10:15:00Z"));
	/* changed timing: recomputed from the reload */
	assert_int_equal(sched_next_due(s, "ev_cron"), at("2026-11-24T11:00:00Z"));
	/* removed and new */
	assert_int_equal(sched_next_due(s, "doomed"), -1);
	assert_int_equal(sched_last_fired(s, "doomed"), -1);
	assert_int_equal(sched_next_due(s, "new"), t1);

	/* the removed destination that runs stays running, unqueued, unrequestable */
	assert_true(sched_dest_running(s, "u2"));
	assert_false(sched_dest_queued(s, "u2"));
	assert_false(sched_request(s, NULL, "u2", SCHED_TRIGGER_API, false, false, t1, NULL));
	/* the removed one that was only wanted is dropped at once */
	assert_false(sched_dest_queued(s, "ev"));
	assert_false(sched_request(s, "events", NULL, SCHED_TRIGGER_API, false, false, t1, NULL));
	/* a kept one keeps its wanted mark and flags */
	assert_true(sched_dest_queued(s, "acc"));
	assert_int_equal(sched_queue_depth(s), 1);

	struct sched_job j2;
	TAKE(s, t1, &j2, "accounts", "acc");
	assert_true(j2.full);
	assert_int_equal(j2.requested_at, t0 + 1);
	sched_done(s, &j2, t1);
	sched_job_release(&j2);

	/* a run of the model moves the new frequency schedule */
	assert_int_equal(sched_next_due(s, "new"), t1 + 60 * MIN);

	/* the old job ends: u2 is gone for good, u1 is free */
	sched_done(s, &job, t1 + 1);
	sched_job_release(&job);
	assert_false(sched_dest_running(s, "u2"));
	assert_false(sched_dest_running(s, "u1"));
	assert_false(sched_dest_queued(s, "u2"));
	take_none(s, t1 + 1);

	/* the overdue kept schedules fire at the next tick */
	assert_int_equal(sched_tick(s, t1 + 2), 10 * MIN - 2); /* acc_cron next at 10:30 */
	assert_int_equal(sched_last_fired(s, "acc_cron"), t1 + 2);
	assert_int_equal(sched_last_fired(s, "users_freq"), t1 + 2);
	assert_int_equal(sched_last_fired(s, "new"), -1);
	assert_int_equal(sched_last_fired(s, "ev_cron"), -1);
	assert_int_equal(run_all(s, t1 + 2), 2);

	/* at 11:00 ev_cron fires the users model (with the overdue users_freq and acc_cron) */
	assert_int_equal(sched_tick(s, at("2026-11-24T11:00:00Z")), 10 * MIN); /* users_freq */
	assert_int_equal(sched_last_fired(s, "ev_cron"), at("2026-11-24T11:00:00Z"));
	assert_int_equal(sched_next_due(s, "ev_cron"), at("2026-11-24T12:00:00Z"));
	assert_int_equal(sched_next_due(s, "new"), t1 + 2 + 60 * MIN);
	TAKE(s, at("2026-11-24T11:00:00Z"), &job, "users", "u1");
	assert_string_equal(job.schedule_id, "users_freq"); /* same time: config order */
	sched_done(s, &job, at("2026-11-24T11:00:00Z"));
	sched_job_release(&job);
	assert_int_equal(run_all(s, at("2026-11-24T11:00:00Z")), 1);

	sched_free(s);
	free(f1);
	free(f2);
}

static void test_reload_changed_frequency(void **st)
{
	struct fx *f1 = fx_users(), *f2 = fx_users();
	struct sched *s = sched_new();

	fx_schedule(f1, "sync", "users", true, 10 * MIN, NULL);
	fx_schedule(f2, "sync", "users", true, 30 * MIN, NULL);
	sched_set_config(s, &f1->cfg, T0);
	assert_int_equal(sched_tick(s, T0), 10 * MIN);
	assert_int_equal(run_all(s, T0 + 1000), 1); /* run started a second after the fire */
	assert_int_equal(sched_next_due(s, "sync"), T0 + 1000 + 10 * MIN);

	/* a new frequency counts from the last run, not from the reload */
	sched_set_config(s, &f2->cfg, T0 + 5 * MIN);
	assert_int_equal(sched_next_due(s, "sync"), T0 + 1000 + 30 * MIN);
	assert_int_equal(sched_last_fired(s, "sync"), T0);
	assert_int_equal(sched_tick(s, T0 + 5 * MIN), 25 * MIN + 1000);

	/* reload to the same config: nothing moves */
	sched_set_config(s, &f2->cfg, T0 + 6 * MIN);
	assert_int_equal(sched_next_due(s, "sync"), T0 + 1000 + 30 * MIN);

	/* frequency to cron and back to on demand */
	f2->scheds[0].cron = "0 0 * * *";
	sched_set_config(s, &f2->cfg, at("2026-11-24T10:07:00Z"));
	assert_int_equal(sched_next_due(s, "sync"), at("2026-11-25T00:00:00Z"));
	f2->scheds[0].cron = NULL;
	f2->scheds[0].recurring = false;
	sched_set_config(s, &f2->cfg, at("2026-11-24T10:08:00Z"));
	assert_int_equal(sched_next_due(s, "sync"), -1);
	assert_int_equal(sched_last_fired(s, "sync"), T0);

	sched_free(s);
	free(f1);
	free(f2);
}

static void test_reload_readds_running_destination(void **st)
{
	struct fx *with = fx_users(), *without = fx_new();
	struct sched *s = sched_new();
	struct sched_job job;

	fx_model(without, "users");
	sched_set_config(s, &with->cfg, T0);
	assert_true(sched_request(s, NULL, "braze", SCHED_TRIGGER_API, false, false, T0, NULL));
	TAKE(s, T0, &job, "users", "braze");

	sched_set_config(s, &without->cfg, T0 + 1);
	assert_true(sched_dest_running(s, "braze"));
	assert_false(sched_request(s, NULL, "braze", SCHED_TRIGGER_API, false, false, T0 + 1, NULL));
	/* back before its run ended: still running, requestable again (queued) */
	sched_set_config(s, &with->cfg, T0 + 2);
	assert_true(sched_dest_running(s, "braze"));
	struct sched_request_result res;
	assert_true(sched_request(s, NULL, "braze", SCHED_TRIGGER_API, false, false, T0 + 3, &res));
	assert_int_equal(res.n_queued, 1);
	take_none(s, T0 + 3);
	sched_done(s, &job, T0 + 4);
	sched_job_release(&job);
	assert_false(sched_dest_running(s, "braze"));
	TAKE(s, T0 + 5, &job, "users", "braze");
	sched_done(s, &job, T0 + 6);
	sched_job_release(&job);

	/* removed destinations' history goes with them; a reload with none empties the queue */
	assert_true(sched_request(s, NULL, NULL, SCHED_TRIGGER_API, false, false, T0 + 7, NULL));
	assert_int_equal(sched_queue_depth(s), 1);
	sched_set_config(s, NULL, T0 + 8);
	assert_int_equal(sched_queue_depth(s), 0);
	take_none(s, T0 + 8);
	assert_false(sched_request(s, "users", NULL, SCHED_TRIGGER_API, false, false, T0 + 9, NULL));

	sched_free(s);
	free(with);
	free(without);
}

static void test_free_with_jobs_out(void **st)
{
	struct fx *f = fx_users();
	struct sched *s = sched_new();
	struct sched_job job;

	fx_schedule(f, "sync", "users", true, 10 * MIN, NULL);
	sched_set_config(s, &f->cfg, T0);
	sched_tick(s, T0);
	TAKE(s, T0, &job, "users", "braze");
	assert_true(sched_request(s, NULL, NULL, SCHED_TRIGGER_API, false, false, T0, NULL));
	sched_free(s); /* jobs own copies: still valid */
	assert_string_equal(job.model_id, "users");
	assert_string_equal(job.schedule_id, "sync");
	sched_job_release(&job);
	free(f);
}

static void test_tick_wait(void **st)
{
	struct fx *f = fx_new();
	struct sched *s = sched_new();
	const int64_t t0 = at("2026-11-24T10:07:00Z");

	fx_model(f, "users");
	fx_dest(f, "u", "users");
	fx_model(f, "accounts");
	fx_dest(f, "a", "accounts");
	fx_model(f, "events");
	fx_schedule(f, "manual", "users", false, 0, NULL);
	sched_set_config(s, &f->cfg, t0);
	assert_int_equal(sched_tick(s, t0), -1);

	/* the earliest of several */
	fx_schedule(f, "hourly", "users", true, 60 * MIN, NULL);
	fx_schedule(f, "quarter", "accounts", false, 0, "*/15 * * * *");
	sched_set_config(s, &f->cfg, t0);
	sched_set_last_run(s, "u", t0 - 30 * MIN);
	assert_int_equal(sched_tick(s, t0), 8 * MIN);
	assert_int_equal(sched_tick(s, t0 + 8 * MIN), 15 * MIN); /* quarter fired; hourly at +30 */
	assert_int_equal(sched_tick(s, t0 + 23 * MIN), 7 * MIN); /* quarter again; hourly next */
	assert_int_equal(sched_tick(s, t0 + 30 * MIN), 8 * MIN);  /* hourly fired; quarter at 10:45 */
	assert_int_equal(sched_queue_depth(s), 2);

	/* a schedule of a model without destinations fires without effect */
	fx_schedule(f, "nothing", "events", true, 2 * MIN, NULL);
	sched_set_config(s, &f->cfg, t0 + 31 * MIN);
	assert_int_equal(sched_tick(s, t0 + 31 * MIN), 2 * MIN);
	assert_int_equal(sched_last_fired(s, "nothing"), t0 + 31 * MIN);
	assert_int_equal(sched_queue_depth(s), 2);

	sched_free(s);
	free(f);
}

static void test_huge_frequency_saturates(void **st)
{
	struct fx *f = fx_users();
	struct sched *s = sched_new();

	fx_schedule(f, "never", "users", true, INT64_MAX, NULL);
	sched_set_config(s, &f->cfg, T0);
	assert_int_equal(sched_tick(s, T0), INT64_MAX - T0);
	assert_int_equal(sched_next_due(s, "never"), INT64_MAX);
	assert_int_equal(run_all(s, T0), 1);
	assert_int_equal(sched_tick(s, T0 + 1), INT64_MAX - T0 - 1);
	sched_free(s);
	free(f);
}

static void test_bad_schedules_are_on_demand(void **st)
{
	struct fx *f = fx_users();
	struct sched *s = sched_new();

	/* hand-built configs may hold what validation would refuse */
	fx_schedule(f, "bad_cron", "users", false, 0, "61 * * * *");
	struct cfg_schedule *no_model = fx_schedule(f, "no_model", "users", true, MIN, NULL);
	no_model->source = NULL;
	fx_schedule(f, "bad_cron", "users", true, MIN, NULL); /* duplicate id: first wins */
	sched_set_config(s, &f->cfg, T0);
	assert_int_equal(sched_next_due(s, "bad_cron"), -1);
	assert_int_equal(sched_next_due(s, "no_model"), -1);
	assert_int_equal(sched_tick(s, T0), -1);
	take_none(s, T0);
	sched_free(s);
	free(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_trigger_names),
		cmocka_unit_test(test_empty),
		cmocka_unit_test(test_frequency_fires_at_start_then_every_frequency),
		cmocka_unit_test(test_last_run_moves_first_due),
		cmocka_unit_test(test_last_run_then_demand),
		cmocka_unit_test(test_one_destination_does_not_postpone_others),
		cmocka_unit_test(test_cron_fires_at_matching_minutes_only),
		cmocka_unit_test(test_clock_going_back_waits_no_longer_than_a_frequency),
		cmocka_unit_test(test_cron_wins_over_frequency),
		cmocka_unit_test(test_not_recurring_is_on_demand),
		cmocka_unit_test(test_overlap_queues_once),
		cmocka_unit_test(test_merged_requests_keep_the_oldest),
		cmocka_unit_test(test_jobs_group_by_model),
		cmocka_unit_test(test_running_destination_never_handed_out_twice),
		cmocka_unit_test(test_unknown_requests_change_nothing),
		cmocka_unit_test(test_reload_keeps_and_recomputes),
		cmocka_unit_test(test_reload_changed_frequency),
		cmocka_unit_test(test_reload_readds_running_destination),
		cmocka_unit_test(test_free_with_jobs_out),
		cmocka_unit_test(test_tick_wait),
		cmocka_unit_test(test_huge_frequency_saturates),
		cmocka_unit_test(test_bad_schedules_are_on_demand),
		cmocka_unit_test(test_restart_schedules_keeps_requests),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
