/*
 * server.c: `joey serve`: lifecycle, config snapshots, signals, the scheduler loop and
 * the jobs it starts (see server.h for the threads and their rules).
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/log.h"
#include "base/strbuf.h"
#include "base/xalloc.h"
#include "engine/record.h"
#include "engine/work.h"
#include "server/httpconn.h"
#include "server/serverp.h"
#include "server/worker.h"

int64_t server_epoch_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void server_opts_defaults(struct server_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->listen_host = "127.0.0.1";
	o->listen_port = 8020;
	o->stop_timeout_s = 60;
	o->max_body = 1 << 20;
	dest_opts_defaults(&o->dest);
}

/* ---- config snapshots ---- */

struct cfg_ref *server_cfg_get(struct server *s)
{
	pthread_mutex_lock(&s->lock);
	struct cfg_ref *ref = s->cfg;
	ref->refs++;
	pthread_mutex_unlock(&s->lock);
	return ref;
}

void server_cfg_drop_locked(struct cfg_ref *ref)
{
	if (--ref->refs == 0) {
		config_free(ref->cfg);
		free(ref);
	}
}

void server_cfg_put(struct server *s, struct cfg_ref *ref)
{
	if (!ref)
		return;
	pthread_mutex_lock(&s->lock);
	server_cfg_drop_locked(ref);
	pthread_mutex_unlock(&s->lock);
}

json_t *server_diags_json(const struct config *cfg)
{
	json_t *a = json_array();
	bool syntax = false; /* a file did not parse: what it defines is missing */
	for (size_t i = 0; cfg && i < cfg->n_diags; i++)
		syntax |= cfg->diags[i].severity == DIAG_ERROR && !strncmp(cfg->diags[i].message, "syntax error", 12);
	for (size_t i = 0; cfg && i < cfg->n_diags; i++) {
		const struct cfg_diag *d = &cfg->diags[i];
		json_t *o = json_object();
		json_object_set_new(o, "severity", json_string(d->severity == DIAG_ERROR ? "error" : "warning"));
		json_object_set_new(o, "file", d->pos.file ? json_string(d->pos.file) : json_null());
		json_object_set_new(o, "line", json_integer(d->pos.line));
		json_object_set_new(o, "col", json_integer(d->pos.col));
		json_object_set_new(o, "class", d->class_name ? json_string(d->class_name) : json_null());
		json_object_set_new(o, "id", d->id ? json_string(d->id) : json_null());
		json_object_set_new(o, "field", d->field ? json_string(d->field) : json_null());
		json_object_set_new(o, "message", json_string(d->message));
		json_object_set_new(o, "hint", d->hint ? json_string(d->hint) : json_null());
		/* "unknown Property ..." after a syntax error: most likely defined in the file
		 * that did not parse; fixing that one fixes these */
		json_object_set_new(o, "follow_on", json_boolean(syntax && !strncmp(d->message, "unknown ", 8)));
		json_array_append_new(a, o);
	}
	return a;
}

/* Swap in a valid config (owned from now on). Caller holds no lock. */
static void install_config(struct server *s, struct config *cfg)
{
	struct cfg_ref *ref = xcalloc(1, sizeof(*ref));
	ref->cfg = cfg;
	ref->refs = 1;
	ref->loaded_at = server_epoch_ms();
	pthread_mutex_lock(&s->lock);
	struct cfg_ref *old = s->cfg;
	s->cfg = ref;
	s->repair = false;
	if (s->config_error) {
		json_decref(s->config_error);
		s->config_error = NULL;
	}
	sched_set_config(s->sched, cfg, server_epoch_ms());
	s->counts_stale = true;
	if (old)
		server_cfg_drop_locked(old);
	pthread_cond_broadcast(&s->wake);
	pthread_mutex_unlock(&s->lock);
}

/*
 * Worker mode: record the config's generation in the shared store (work_publish_config),
 * so the other workers can run this process's jobs with it. st: an open store, or NULL
 * (one is opened). A failure is a warning: the jobs this process queues publish it too.
 */
static void publish_config(struct server *s, const struct config *cfg, const char *what, struct state *st)
{
	struct jerror err = JERROR_INIT;
	struct state *own = NULL;
	if (!s->opts.worker || s->repair)
		return;
	if (!st && !state_open(s->opts.state_path, STATE_OPEN_CREATE, &own, &err))
		st = own;
	if (!st || work_publish_config(cfg, st, what, &err))
		log_warn("could not record config generation %.12s in the state store: %s", cfg->generation,
			 err.msg.buf);
	else
		log_info("config generation %.12s (%s) recorded in the state store", cfg->generation, what);
	state_close(own);
	jerror_release(&err);
}

void server_install_config(struct server *s, struct config *cfg)
{
	install_config(s, cfg);
	publish_config(s, cfg, "reload", NULL);
	pthread_mutex_lock(&s->metrics.lock);
	s->metrics.config_reloads++;
	pthread_mutex_unlock(&s->metrics.lock);
}

enum jerr server_reload(struct server *s, struct jerror *err)
{
	struct config *cfg = NULL;
	enum jerr rc = config_load(s->opts.config_dir, &s->opts.cfg, &cfg, err);
	if (!rc) {
		for (size_t i = 0; i < cfg->n_diags; i++)
			if (cfg->diags[i].severity == DIAG_WARNING)
				log_warn("config: %s: %s", cfg->diags[i].pos.file ? cfg->diags[i].pos.file : "?",
					 cfg->diags[i].message);
		server_install_config(s, cfg);
		log_info("config reloaded from %s", s->opts.config_dir);
		return JERR_OK;
	}
	json_t *e = json_object();
	pthread_mutex_lock(&s->lock);
	bool repair = s->repair;
	pthread_mutex_unlock(&s->lock);
	if (cfg && rc == JERR_CONFIG) {
		jerror_set(err, JERR_CONFIG, "config reload failed: %zu error%s in %s", cfg->n_errors,
			   cfg->n_errors == 1 ? "" : "s", s->opts.config_dir);
		jerror_hint(err, repair ? "nothing runs until the config is valid; fix the files and reload again (SIGHUP)"
					: "the previous config stays in use; fix the files and reload again (SIGHUP)");
		for (size_t i = 0; i < cfg->n_diags; i++) {
			const struct cfg_diag *d = &cfg->diags[i];
			if (d->severity == DIAG_ERROR)
				log_error("config: %s:%d:%d: %s%s%s", d->pos.file ? d->pos.file : "?", d->pos.line,
					  d->pos.col, d->field ? d->field : "", d->field ? ": " : "", d->message);
		}
		json_object_set_new(e, "diagnostics", server_diags_json(cfg));
	}
	json_object_set_new(e, "error", json_string(err->msg.len ? err->msg.buf : "config reload failed"));
	json_object_set_new(e, "detail", err->detail.len ? json_string(err->detail.buf) : json_null());
	json_object_set_new(e, "hint", err->hint.len ? json_string(err->hint.buf) : json_null());
	json_object_set_new(e, "at", json_integer(server_epoch_ms()));
	log_error("%s; %s", err->msg.buf, repair ? "still in repair mode" : "the previous config stays in use");
	config_free(cfg);
	pthread_mutex_lock(&s->lock);
	if (s->config_error)
		json_decref(s->config_error);
	s->config_error = e;
	pthread_mutex_unlock(&s->lock);
	pthread_mutex_lock(&s->metrics.lock);
	s->metrics.config_reload_failures++;
	pthread_mutex_unlock(&s->metrics.lock);
	return rc ? rc : JERR_CONFIG;
}

enum jerr server_state_read(struct server *s, struct state **st, struct jerror *err)
{
	return state_open(s->opts.state_path, STATE_OPEN_READONLY_OR_EMPTY, st, err);
}

/* ---- run requests ---- */

bool server_request_runs(struct server *s, const char *model_id, const char *dest_id, enum sched_trigger trigger,
			 bool full, bool force, struct sched_request_result *res, json_t *started, json_t *queued)
{
	pthread_mutex_lock(&s->lock);
	const struct config *cfg = s->cfg->cfg;
	/* which of the named destinations run now (queued), before the request changes that */
	json_t *now_running = json_array(), *idle = json_array();
	for (size_t i = 0; i < cfg->n_destinations; i++) {
		const struct cfg_destination *d = cfg->destinations[i];
		if ((dest_id && strcmp(d->id, dest_id)) || (model_id && strcmp(d->model->id, model_id)))
			continue;
		json_array_append_new(sched_dest_running(s->sched, d->id) ? now_running : idle, json_string(d->id));
	}
	bool ok = !s->stopping && sched_request(s->sched, model_id, dest_id, trigger, full, force, server_epoch_ms(), res);
	if (ok) {
		if (started)
			json_array_extend(started, idle);
		if (queued)
			json_array_extend(queued, now_running);
		pthread_cond_broadcast(&s->wake);
	}
	pthread_mutex_unlock(&s->lock);
	json_decref(now_running);
	json_decref(idle);
	return ok;
}

/* ---- jobs ---- */

const struct finished_run *server_finished_run(const struct server *s, int64_t run_id)
{
	for (size_t i = 0; i < SERVER_FINISHED_RUNS; i++)
		if (s->finished[i].run_id == run_id && run_id)
			return &s->finished[i];
	return NULL;
}

/* Remember the trigger and records read of the job's runs. Under lock. */
static void remember_finished(struct server *s, const struct active_job *aj)
{
	for (size_t k = 0; k < aj->job.n_dests; k++) {
		if (!aj->dests[k].run_id)
			continue;
		s->finished[s->finished_next] =
			(struct finished_run){ aj->dests[k].run_id, aj->job.trigger, aj->records_read };
		s->finished_next = (s->finished_next + 1) % SERVER_FINISHED_RUNS;
	}
}

/* A job is over: a destination still marked running ends interrupted (when interrupted;
 * with by_stop, when the server is stopping) or failed; the job is remembered and marked
 * finished, the scheduler told, the group counts marked stale, the main loop woken.
 * Takes s->lock. */
static void job_finished(struct server *s, struct active_job *aj, bool by_stop, bool interrupted)
{
	pthread_mutex_lock(&s->lock);
	if (by_stop)
		interrupted = s->stopping;
	for (size_t k = 0; k < aj->job.n_dests; k++)
		if (aj->dests[k].status == RUN_RUNNING)
			aj->dests[k].status = interrupted ? RUN_INTERRUPTED : RUN_FAILED;
	remember_finished(s, aj);
	aj->finished = true;
	s->runs_gen++;
	sched_done(s->sched, &aj->job, server_epoch_ms());
	s->counts_stale = true;
	pthread_cond_broadcast(&s->wake);
	pthread_mutex_unlock(&s->lock);
}

static void job_progress(void *ctx, const struct run *r)
{
	struct active_job *aj = ctx;
	pthread_mutex_lock(&aj->s->lock);
	aj->records_read = r->records;
	for (size_t i = 0; i < r->n_dests; i++) {
		for (size_t k = 0; k < aj->job.n_dests; k++) {
			if (strcmp(aj->dests[k].dest_id, r->dests[i].dest->id))
				continue;
			if (aj->dests[k].run_id != r->dests[i].run_id)
				aj->s->runs_gen++;
			aj->dests[k].run_id = r->dests[i].run_id;
			aj->dests[k].counts = r->dests[i].counts;
			aj->dests[k].status = r->dests[i].status;
		}
	}
	pthread_mutex_unlock(&aj->s->lock);
}

/*
 * Worker mode: the job goes to the queue in the state store, split into work items
 * that any worker runs (this process's claim thread among them); this thread only
 * follows it until it is closed, for the live view, the logs and /metrics.
 */
static void job_queue_and_follow(struct active_job *aj)
{
	struct server *s = aj->s;
	const struct config *cfg = aj->cfg->cfg;
	struct jerror err = JERROR_INIT;
	struct state *st = NULL;
	const struct cfg_model *model = NULL;
	enum run_status status = RUN_FAILED;
	struct run r = { 0 };
	char dedup[320];
	int64_t job_id = 0;
	bool dup = false;
	enum jerr rc;

	for (size_t m = 0; m < cfg->n_models; m++)
		if (!strcmp(cfg->models[m]->id, aj->job.model_id))
			model = cfg->models[m];
	struct work_request req = {
		.model = model,
		.dest_ids = (const char *const *)aj->job.dest_ids,
		.n_dests = aj->job.n_dests,
		.full = aj->job.full,
		.force = aj->job.force,
		.max_delete_percent = -1,
	};
	if (aj->job.trigger == SCHED_TRIGGER_SCHEDULE && aj->job.schedule_id) {
		/* one job per schedule and minute, however many leaders there were meanwhile */
		snprintf(dedup, sizeof(dedup), "schedule %s at minute %lld", aj->job.schedule_id,
			 (long long)(aj->job.requested_at / 60000));
		req.dedup = dedup;
	}
	rc = model ? state_open(s->opts.state_path, STATE_OPEN_CREATE, &st, &err)
		   : jerror_set(&err, JERR_CONFIG, "model \"%s\" is not in the config", aj->job.model_id);
	if (!rc)
		rc = work_enqueue(cfg, st, &req, &job_id, &dup, &err);
	if (rc || dup) {
		if (rc)
			log_error("run of model \"%s\" not queued: %s%s%s", aj->job.model_id, err.msg.buf,
				  err.detail.len ? ": " : "", err.detail.buf);
		if (rc && st && work_enqueue_failure_is_run(&err)) {
			/* the source failed before the job existed: a failed run, as without workers */
			work_enqueue_failed(cfg, st, &req, &err, &r);
			server_alerts_after_run(s, cfg, st, &r, true);
			run_release(&r);
		}
		pthread_mutex_lock(&s->lock);
		for (size_t k = 0; k < aj->job.n_dests; k++)
			aj->dests[k].status = rc ? RUN_FAILED : RUN_SUCCESS;
		pthread_mutex_unlock(&s->lock);
		goto out;
	}
	for (;;) {
		bool final = false;
		if (work_job_result(cfg, st, job_id, &r, &status, &err)) {
			log_error("job %lld: %s", (long long)job_id, err.msg.buf);
			jerror_release(&err);
			err = (struct jerror)JERROR_INIT;
		} else {
			final = status != RUN_RUNNING;
			job_progress(aj, &r);
			if (final)
				break;
		}
		run_release(&r);
		pthread_mutex_lock(&s->lock);
		bool stopping = s->stopping;
		pthread_mutex_unlock(&s->lock);
		if (stopping) {
			log_info("job %lld of model \"%s\" goes on in the other workers", (long long)job_id,
				 aj->job.model_id);
			goto out;
		}
		sleep(1);
	}
	for (size_t i = 0; i < r.n_dests; i++) {
		const struct run_dest *rd = &r.dests[i];
		metrics_run_finished(&s->metrics, rd->dest->id, rd->status, &rd->counts, NULL);
	}
	server_alerts_after_run(s, cfg, st, &r, true);
	run_release(&r);
out:
	state_close(st);
	jerror_release(&err);
	job_finished(s, aj, true, false);
}

/* Worker mode: claim and run work items of any job until the server stops. */
static void *claim_main(void *arg)
{
	struct server *s = arg;
	for (;;) {
		struct jerror err = JERROR_INIT;
		size_t n = 0;
		pthread_mutex_lock(&s->lock);
		bool stopping = s->stopping;
		pthread_mutex_unlock(&s->lock);
		if (stopping)
			break;
		struct cfg_ref *ref = server_cfg_get(s);
		enum jerr rc = worker_run_items(s->worker, ref->cfg, 0, &n, &err);
		server_cfg_put(s, ref);
		if (rc)
			log_error("worker: %s%s%s", err.msg.buf, err.detail.len ? ": " : "", err.detail.buf);
		jerror_release(&err);
		if (n && !rc)
			continue;
		/* nothing to claim (or the store failed): look again in a while */
		pthread_mutex_lock(&s->lock);
		if (!s->stopping) {
			struct timespec ts;
			clock_gettime(CLOCK_MONOTONIC, &ts);
			ts.tv_nsec += (rc ? 2000 : 500) * 1000000L;
			while (ts.tv_nsec >= 1000000000) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000;
			}
			pthread_cond_timedwait(&s->wake, &s->lock, &ts);
		}
		pthread_mutex_unlock(&s->lock);
	}
	return NULL;
}

static void *job_main(void *arg)
{
	struct active_job *aj = arg;
	if (aj->s->opts.worker) {
		job_queue_and_follow(aj);
		return NULL;
	}
	struct server *s = aj->s;
	struct jerror err = JERROR_INIT;
	struct state *st = NULL;
	struct run r = { 0 };
	struct run_opts ro = {
		.max_delete_percent = -1,
		.dest = s->opts.dest,
		.stop = &s->stop_runs,
		.full = aj->job.full,
		.force = aj->job.force,
		.only_dests = (const char *const *)aj->job.dest_ids,
		.n_only_dests = aj->job.n_dests,
		.on_progress = job_progress,
		.progress_ctx = aj,
		.trigger = sched_trigger_name(aj->job.trigger),
	};
	bool ran = false;

	ro.dest.stop = &s->stop_runs;
	log_info("run of model \"%s\" started (%s%s): %zu destination%s", aj->job.model_id,
		 sched_trigger_name(aj->job.trigger), aj->job.schedule_id ? ", schedule" : "", aj->job.n_dests,
		 aj->job.n_dests == 1 ? "" : "s");
	enum jerr rc = state_open(s->opts.state_path, STATE_OPEN_CREATE, &st, &err);
	if (!rc) {
		rc = run_execute(&r, aj->cfg->cfg, st, &ro, &err);
		ran = true;
		job_progress(aj, &r);
		if (!rc)
			server_alerts_after_run(s, aj->cfg->cfg, st, &r, false);
	}
	for (size_t i = 0; ran && i < r.n_dests; i++) {
		const struct run_dest *rd = &r.dests[i];
		metrics_run_finished(&s->metrics, rd->dest->id, rd->status, &rd->counts, &rd->stats);
		if (rd->status == RUN_SUCCESS)
			log_info("destination \"%s\": run %lld succeeded: %llu created, %llu updated, %llu deleted, %llu unchanged",
				 rd->dest->id, (long long)rd->run_id, (unsigned long long)rd->counts.created,
				 (unsigned long long)rd->counts.updated, (unsigned long long)rd->counts.deleted,
				 (unsigned long long)rd->counts.unchanged);
		else if (rd->status == RUN_FAILED && rd->counts.failed && !rd->err.msg.len && !rd->unreadable)
			log_warn("destination \"%s\": run %lld completed with %llu failed rows: %llu created, %llu updated, "
				 "%llu deleted, %llu unchanged",
				 rd->dest->id, (long long)rd->run_id, (unsigned long long)rd->counts.failed,
				 (unsigned long long)rd->counts.created, (unsigned long long)rd->counts.updated,
				 (unsigned long long)rd->counts.deleted, (unsigned long long)rd->counts.unchanged);
		else
			log_error("destination \"%s\": run %lld %s%s%s", rd->dest->id, (long long)rd->run_id,
				  run_status_name(rd->status), rd->err.msg.len ? ": " : "",
				  rd->err.msg.len ? rd->err.msg.buf : "");
	}
	if (rc && rc != JERR_INTERRUPTED) {
		log_error("run of model \"%s\" failed: %s", aj->job.model_id, err.msg.buf);
		for (size_t k = 0; k < aj->job.n_dests; k++)
			metrics_run_finished(&s->metrics, aj->job.dest_ids[k], RUN_FAILED, &(struct run_counts){ 0 }, NULL);
	}
	if (ran)
		run_release(&r);
	state_close(st);
	jerror_release(&err);

	job_finished(s, aj, false, rc == JERR_INTERRUPTED);
	return NULL;
}

/* Start a job handed out by the scheduler. Called with s->lock held. */
static void start_job(struct server *s, struct sched_job *job)
{
	struct active_job *aj = xcalloc(1, sizeof(*aj));
	aj->s = s;
	aj->job = *job;
	aj->cfg = s->cfg;
	aj->cfg->refs++;
	aj->started_at = server_epoch_ms();
	aj->dests = xcalloc(job->n_dests ? job->n_dests : 1, sizeof(*aj->dests));
	for (size_t i = 0; i < job->n_dests; i++) {
		aj->dests[i].dest_id = xstrdup(job->dest_ids[i]);
		aj->dests[i].status = RUN_RUNNING;
	}
	if (pthread_create(&aj->thread, NULL, job_main, aj)) {
		log_error("could not start a thread for the run of model \"%s\"", job->model_id);
		sched_done(s->sched, &aj->job, server_epoch_ms());
		server_cfg_drop_locked(aj->cfg);
		for (size_t i = 0; i < job->n_dests; i++)
			free(aj->dests[i].dest_id);
		free(aj->dests);
		sched_job_release(&aj->job);
		free(aj);
		return;
	}
	aj->next = s->jobs;
	s->jobs = aj;
}

/* Join and free finished jobs. Called with s->lock held (released while joining). */
static void reap_jobs(struct server *s)
{
	struct active_job **pp = &s->jobs;
	while (*pp) {
		struct active_job *aj = *pp;
		if (!aj->finished) {
			pp = &aj->next;
			continue;
		}
		*pp = aj->next;
		pthread_mutex_unlock(&s->lock);
		pthread_join(aj->thread, NULL);
		pthread_mutex_lock(&s->lock);
		server_cfg_drop_locked(aj->cfg);
		for (size_t i = 0; i < aj->job.n_dests; i++)
			free(aj->dests[i].dest_id);
		free(aj->dests);
		sched_job_release(&aj->job);
		free(aj);
		pp = &s->jobs;
	}
}

/* ---- signals ---- */

static void *signal_main(void *arg)
{
	struct server *s = arg;
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	for (;;) {
		int sig;
		int old;
		if (sigwait(&set, &sig))
			continue;
		pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &old);
		pthread_mutex_lock(&s->lock);
		if (sig == SIGHUP) {
			s->reload_requested = true;
		} else {
			if (!s->stopping)
				log_info("%s received: finishing the batches in flight, then stopping",
					 sig == SIGTERM ? "SIGTERM" : "SIGINT");
			s->stopping = true;
			s->stop_runs = 1;
		}
		pthread_cond_broadcast(&s->wake);
		pthread_mutex_unlock(&s->lock);
		pthread_setcancelstate(old, NULL);
	}
	return NULL;
}

/* ---- the loop ---- */


static enum jerr last_run_fn(void *ctx, const struct state_run_info *run, struct jerror *err)
{
	(void)err;
	struct server *s = ctx;
	/*
	 * A start past now (a `joey run` on a host whose clock is ahead, or this host's clock
	 * set back since) says nothing of when that run was: taken as the last run, it held
	 * the schedule back until then (a day ahead: no run for a day). Not counting it may
	 * run the model once more than needed, which sends only what changed.
	 */
	if (!strcmp(run->kind, "run") && run->started_at <= server_epoch_ms())
		sched_set_last_run(s->sched, run->dest_id, run->started_at);
	return JERR_OK;
}

static void seed_last_runs(struct server *s, struct state *st)
{
	const struct config *cfg = s->cfg->cfg;
	for (size_t i = 0; i < cfg->n_destinations; i++) {
		struct jerror err = JERROR_INIT;
		if (state_runs_list(st, cfg->destinations[i]->id, 1, last_run_fn, s, &err))
			log_warn("run history of \"%s\" not read: %s", cfg->destinations[i]->id, err.msg.buf);
		jerror_release(&err);
	}
}

/* A valid config with nothing in it (repair mode): loaded from an empty directory. */
static enum jerr empty_config(const struct server_opts *o, struct config **out, struct jerror *err)
{
	char dir[] = "/tmp/joey-repair.XXXXXX";
	*out = NULL;
	if (!mkdtemp(dir))
		return jerror_set(err, JERR_IO, "could not create a temporary directory: %s", strerror(errno));
	struct config_opts co = o->cfg;
	enum jerr rc = config_load(dir, &co, out, err);
	rmdir(dir);
	if (rc) {
		config_free(*out);
		*out = NULL;
	}
	return rc;
}

enum jerr server_open(const struct server_opts *o, struct server **out, struct jerror *err)
{
	struct server *s = xcalloc(1, sizeof(*s));
	struct config *cfg = NULL;
	struct state *st = NULL;
	enum jerr rc;

	*out = NULL;
	s->opts = *o;
	pthread_mutex_init(&s->lock, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&s->wake, &ca);
	pthread_condattr_destroy(&ca);
	metrics_init(&s->metrics);
	s->sched = sched_new();
	/* from what the name resolves to; httpd_start then decides from the address bound */
	s->loopback = httpconn_host_is_loopback(o->listen_host);
	snprintf(s->listen_desc, sizeof(s->listen_desc), "%s:%u", o->listen_host, o->listen_port);

	rc = config_load(o->config_dir, &o->cfg, &cfg, err);
	if (rc == JERR_CONFIG && cfg && !o->no_http && !o->worker) {
		/* repair mode: the API and the UI serve, with an empty config, so an editor
		 * can see the errors and fix the files; nothing runs until a reload succeeds */
		config_print_diags(cfg, stderr);
		struct config *empty = NULL;
		if (empty_config(o, &empty, err) == JERR_OK) {
			char n[64];
			snprintf(n, sizeof(n), "the config directory is not valid (%zu error%s)", cfg->n_errors,
				 cfg->n_errors == 1 ? "" : "s");
			json_t *e = json_pack("{s:s,s:s,s:s,s:o,s:I}", "error", n, "detail", o->config_dir, "hint",
					      "nothing runs until the config is valid; fix the files and reload",
					      "diagnostics", server_diags_json(cfg), "at", (json_int_t)server_epoch_ms());
			log_error("config directory \"%s\" is not valid: %zu error%s; serving the web UI in repair mode "
				  "(nothing runs until the config is fixed and reloaded)",
				  o->config_dir, cfg->n_errors, cfg->n_errors == 1 ? "" : "s");
			config_free(cfg);
			cfg = empty;
			install_config(s, cfg);
			s->repair = true;
			s->config_error = e;
			rc = JERR_OK;
			goto state;
		}
	}
	if (rc) {
		if (cfg && rc == JERR_CONFIG) {
			config_print_diags(cfg, stderr);
			jerror_set(err, JERR_CONFIG, "config directory \"%s\" is not valid: %zu error%s", o->config_dir,
				   cfg->n_errors, cfg->n_errors == 1 ? "" : "s");
			jerror_hint(err, "run 'joey validate --config %s' for the details", o->config_dir);
		}
		config_free(cfg);
		server_close(s);
		return rc;
	}
	config_print_diags(cfg, stderr); /* warnings */
	install_config(s, cfg);

state:
	if ((rc = state_open(o->state_path, STATE_OPEN_CREATE, &st, err))) {
		server_close(s);
		return rc;
	}
	state_runs_recover(st, o->no_http ? "joey worker (starting)" : "joey serve (starting)");
	seed_last_runs(s, st);
	publish_config(s, s->cfg->cfg, "start", st);
	state_close(st);
	if (o->token && *o->token)
		s->token = xstrdup(o->token);
	if (!o->no_http && (rc = auth_open(s, err))) {
		server_close(s);
		return rc;
	}
	*out = s;
	return JERR_OK;
}

void server_close(struct server *s)
{
	if (!s)
		return;
	if (s->cfg)
		server_cfg_drop_locked(s->cfg);
	if (s->config_error)
		json_decref(s->config_error);
	while (s->group_counts) {
		struct group_count *n = s->group_counts->next;
		free(s->group_counts->group_id);
		free(s->group_counts);
		s->group_counts = n;
	}
	sched_free(s->sched);
	metrics_release(&s->metrics);
	auth_close(s);
	free(s->token);
	pthread_cond_destroy(&s->wake);
	pthread_mutex_destroy(&s->lock);
	free(s);
}

/* Block SIGTERM, SIGINT and SIGHUP in every thread created from here on (they go to the
 * signal thread), ignore SIGPIPE, and start the signal thread. */
static enum jerr start_signal_thread(struct server *s, pthread_t *sigthread, struct jerror *err)
{
	sigset_t set;

	/* every thread created from here on inherits the blocked signals */
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	if (pthread_create(sigthread, NULL, signal_main, s))
		return jerror_set(err, JERR_INTERNAL, "could not start the signal thread");
	return JERR_OK;
}

/* --worker: join the worker pool (s->worker) and start the thread that claims queued items. */
static enum jerr start_worker_mode(struct server *s, const struct server_opts *o, struct jerror *err)
{
	enum jerr rc;
	struct worker_opts wo = {
		.state_path = o->state_path,
		.lease_ms = o->lease_ms,
		.elect = true,
		.dest = o->dest,
		.stop = &s->stop_runs,
		.cfg_opts = &s->opts.cfg,
	};
	if ((rc = worker_start(&wo, &s->worker, err)))
		return rc;
	if (pthread_create(&s->claim_thread, NULL, claim_main, s))
		return jerror_set(err, JERR_INTERNAL, "could not start the worker thread");
	s->claim_thread_live = true;
	return JERR_OK;
}

/* The one line on stderr that says joey is up, where, and with which config and state. */
static void announce_start(const struct server *s, const struct server_opts *o)
{
	struct strbuf shown = STRBUF_INIT;
	state_path_display(o->state_path, &shown);
	if (o->no_http)
		fprintf(stderr, "joey worker: %s started (config %s, state %s)\n", worker_id(s->worker),
			o->config_dir, shown.buf);
	else
		fprintf(stderr, "joey serve: listening on %s://%s/ (config %s, state %s%s%s)\n",
			s->tls ? "https" : "http", s->listen_desc, o->config_dir, shown.buf, o->worker ? ", worker " : "",
			o->worker ? worker_id(s->worker) : "");
	strbuf_release(&shown);
}

/* The last run of each destination from the run history, whichever process started it.
 * Called and returns with s->lock held; drops it while it reads the state store. */
static void reseed_last_runs(struct server *s, const struct server_opts *o)
{
	struct state *st = NULL;
	struct jerror serr = JERROR_INIT;
	pthread_mutex_unlock(&s->lock);
	if (state_open(o->state_path, STATE_OPEN_READONLY, &st, &serr) == JERR_OK) {
		pthread_mutex_lock(&s->lock);
		seed_last_runs(s, st);
		pthread_mutex_unlock(&s->lock);
	} else {
		log_warn("run history not read: %s", serr.msg.buf);
	}
	state_close(st);
	jerror_release(&serr);
	pthread_mutex_lock(&s->lock);
}

/* This worker just became the leader: fresh due times, from the run history (the last
 * leader's runs), cron from now. Called and returns with s->lock held; drops it while it
 * reads the state store. */
static void take_over_schedules(struct server *s, const struct server_opts *o, int64_t now)
{
	/* the schedules start afresh; runs asked for through the API meanwhile stay asked for */
	sched_restart_schedules(s->sched, s->cfg->cfg, now);
	reseed_last_runs(s, o);
}

/* Sleep on s->wake for wait ms at most (s->lock held). */
static void wait_for_wake(struct server *s, int64_t wait)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += wait / 1000;
	ts.tv_nsec += (wait % 1000) * 1000000;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	pthread_cond_timedwait(&s->wake, &s->lock, &ts);
}

/* The scheduler loop: reloads, leader changes, due jobs, finished runs, group counts;
 * until s->stopping. Called and returns with s->lock held. */
static void schedule_loop(struct server *s, const struct server_opts *o)
{
	while (!s->stopping) {
		if (s->reload_requested) {
			struct jerror rerr = JERROR_INIT;
			s->reload_requested = false;
			pthread_mutex_unlock(&s->lock);
			/* as the API's writes and reload: installs in the order of the writes */
			pthread_mutex_lock(&server_write_lock);
			(void)server_reload(s, &rerr);
			pthread_mutex_unlock(&server_write_lock);
			jerror_release(&rerr);
			pthread_mutex_lock(&s->lock);
			continue;
		}
		int64_t now = server_epoch_ms();
		/* worker mode: only the elected leader fires the schedules */
		bool leader = !s->worker || worker_is_leader(s->worker);
		if (s->worker && leader && !s->was_leader)
			take_over_schedules(s, o, now);
		if (s->worker)
			s->was_leader = leader;
		if (leader && sched_any_due(s->sched, now)) {
			/*
			 * Runs other processes started since (a `joey run` from cron, another
			 * serve on this store) count first: the schedule may be due later.
			 */
			reseed_last_runs(s, o);
			now = server_epoch_ms();
		}
		int64_t wait = leader ? sched_tick(s->sched, now) : 1000;
		struct sched_job job;
		while (sched_take(s->sched, now, &job))
			start_job(s, &job);
		reap_jobs(s);
		server_maybe_count(s);
		if (s->stopping || s->reload_requested)
			continue;
		if (wait < 0 || wait > 1000)
			wait = 1000;
		wait_for_wake(s, wait);
	}
}

/* Stopping: the runs in flight commit what Braze answered, then return. Past
 * o->stop_timeout_s the process exits without them. Called and returns with s->lock held. */
static void drain_runs(struct server *s, const struct server_opts *o)
{
	s->stop_runs = 1;
	struct timespec deadline;
	clock_gettime(CLOCK_MONOTONIC, &deadline);
	deadline.tv_sec += (time_t)o->stop_timeout_s;
	while (s->jobs) {
		reap_jobs(s);
		if (!s->jobs)
			break;
		if (pthread_cond_timedwait(&s->wake, &s->lock, &deadline) == ETIMEDOUT) {
			log_error("runs still going after %.0f s: stopping without them (what Braze confirmed is "
				  "committed; the rest is sent again by the next run)",
				  o->stop_timeout_s);
			pthread_mutex_unlock(&s->lock);
			httpd_stop(s);
			fflush(NULL);
			_exit(1);
		}
	}
}

/* The orderly stop: drain the runs, then join the count, alert and claim threads and stop
 * the HTTP server. Called with s->lock held; returns with it released. */
static void stop_orderly(struct server *s, const struct server_opts *o)
{
	drain_runs(s, o);
	bool counting = s->count_thread_live;
	pthread_mutex_unlock(&s->lock);
	server_alerts_stop(s);
	if (counting)
		pthread_join(s->count_thread, NULL);
	if (s->claim_thread_live) {
		/* the item in flight stops after its batches are committed, and goes back to the queue */
		pthread_join(s->claim_thread, NULL);
		s->claim_thread_live = false;
	}
	if (!o->no_http)
		httpd_stop(s);
	log_info("stopped");
}

/* Whatever is still running after a failed start or an orderly stop: the claim thread, the
 * alert thread, the worker and the signal thread (sigthread, NULL when it never started);
 * then s itself is freed. */
static void shut_down(struct server *s, const pthread_t *sigthread)
{
	if (s->claim_thread_live) {
		pthread_mutex_lock(&s->lock);
		s->stopping = true;
		s->stop_runs = 1;
		pthread_cond_broadcast(&s->wake);
		pthread_mutex_unlock(&s->lock);
		pthread_join(s->claim_thread, NULL);
	}
	if (s->alert_thread_live) {
		pthread_mutex_lock(&s->lock);
		s->stopping = true;
		pthread_cond_broadcast(&s->wake);
		pthread_mutex_unlock(&s->lock);
		server_alerts_stop(s);
	}
	worker_stop(s->worker);
	s->worker = NULL;
	if (sigthread) {
		pthread_cancel(*sigthread);
		pthread_join(*sigthread, NULL);
	}
	server_close(s);
}

enum jerr server_main(const struct server_opts *o, struct jerror *err)
{
	struct server *s;
	enum jerr rc;
	pthread_t sigthread;
	bool sigthread_live = false;

	if ((rc = server_open(o, &s, err)))
		return rc;
	if ((rc = start_signal_thread(s, &sigthread, err)))
		goto out;
	sigthread_live = true;
	if (o->worker && (rc = start_worker_mode(s, o, err)))
		goto out;
	if (!o->no_http && (rc = httpd_start(s, err)))
		goto out;
	announce_start(s, o);
	if (!o->no_http && (rc = auth_ready(s, err)))
		goto out;
	/* joey worker too: its leader's jobs queue alert messages, and nothing else may send them */
	server_alerts_start(s);

	pthread_mutex_lock(&s->lock);
	schedule_loop(s, o);
	stop_orderly(s, o);
	rc = JERR_OK;
out:
	shut_down(s, sigthread_live ? &sigthread : NULL);
	return rc;
}
