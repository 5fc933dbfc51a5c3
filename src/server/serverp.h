/*
 * serverp.h: what the files of src/server share (not for use outside it).
 *
 *   server.c   lifecycle, config snapshots, signals, the scheduler loop, jobs
 *   httpd.c    libmicrohttpd glue: bodies and limits, auth, routing, JSON replies
 *   api.c      read routes (/api/v1/models ...)
 *   actions.c  runs, plan preview, retry, app test, config writes
 *   metrics.c  counters and the Prometheus text
 *   assets.c   the embedded web UI
 *   impact.c   destructive config changes and Braze key checks, judged before writing
 *   explain.c  plain words for the errors of failed rows
 *   files.c    the config files as text (the repair editor)
 *   group_counts.c  the member counts of every group (a thread)
 */
#ifndef JOEY_SERVERP_H
#define JOEY_SERVERP_H

#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "config/config.h"
#include "config/write.h"
#include "engine/run.h"
#include "sched/sched.h"
#include "server/server.h"
#include "state/accounts.h"
#include "state/state.h"

/* A loaded, valid config shared by reference (server_cfg_get / server_cfg_put). */
struct cfg_ref {
	struct config *cfg;
	int refs;          /* under server.lock */
	int64_t loaded_at; /* epoch ms */
};

/* Live view of one destination of a running job. */
struct live_dest {
	char *dest_id;
	int64_t run_id; /* 0 until the run row exists */
	struct run_counts counts;
	enum run_status status;
};

/* A job on its thread. */
struct active_job {
	struct server *s;
	struct sched_job job;
	struct cfg_ref *cfg;
	pthread_t thread;
	int64_t started_at;
	uint64_t records_read;
	struct live_dest *dests; /* job.n_dests, under server.lock */
	bool finished;           /* the thread is done; joined by the loop */
	struct active_job *next;
};

/* What the run history does not keep of a run this process ran (server.lock). */
struct finished_run {
	int64_t run_id;
	enum sched_trigger trigger;
	uint64_t records_read;
};
#define SERVER_FINISHED_RUNS 1024

/* Per destination counters for /metrics (under metrics.lock). */
struct metric_dest {
	char *dest_id;
	uint64_t runs[4]; /* by enum run_status */
	struct run_counts rows; /* summed over finished runs */
	struct metric_dest *next;
};

struct metrics {
	pthread_mutex_t lock;
	struct metric_dest *dests;
	uint64_t http_requests[6]; /* by status class: 1xx..5xx, [0] other */
	uint64_t config_reloads, config_reload_failures;
	uint64_t latency_buckets[DEST_LATENCY_BUCKETS]; /* not cumulative */
	double latency_sum;
	uint64_t latency_count;
};

/* Group member counts, recomputed in the background after loads and runs. */
struct group_count {
	char *group_id;
	uint64_t members;
	struct group_count *next;
};

struct server {
	struct server_opts opts;
	pthread_mutex_t lock;
	pthread_cond_t wake;
	struct cfg_ref *cfg;        /* current config; never NULL after start */
	json_t *config_error;       /* last reload failure ({error,detail,hint,diagnostics}) or NULL */
	bool repair;                /* repair mode: the config was broken at start; cfg is empty */
	struct sched *sched;
	struct active_job *jobs;
	volatile int stop_runs;     /* set on SIGTERM: runs stop after batches in flight */
	bool stopping;
	bool reload_requested;
	char *token;                /* JOEY_API_TOKEN (admin), or NULL; owned */
	struct auth *auth;          /* accounts, sessions, login limits (auth.c); NULL without HTTP */
	bool tls;                   /* serving HTTPS (--tls-cert/--tls-key) */
	bool loopback;              /* listening on a loopback address only */
	char listen_desc[128];      /* "127.0.0.1:8020" */
	struct metrics metrics;
	/* group counts */
	struct group_count *group_counts;
	int64_t group_counted_at;
	bool counts_stale, counting;
	pthread_t count_thread;
	bool count_thread_live;
	/* worker mode (opts.worker) */
	struct worker *worker;
	pthread_t claim_thread;
	bool claim_thread_live;
	bool was_leader;
	/* alerts (alerts.c): the thread that checks and sends */
	pthread_t alert_thread;
	bool alert_thread_live;
	bool alert_kick; /* a run ended: send its messages now */
	/* the last runs this process finished: their trigger and records read */
	struct finished_run finished[SERVER_FINISHED_RUNS];
	size_t finished_next;
	/* bumped when a run of a job gets its run row or a job ends (under lock): the run
	 * list re-reads the store when it changed during its read (api_runs) */
	uint64_t runs_gen;
};

/* ---- server.c ---- */
/*
 * Load the config (invalid: diagnostics on stderr and JERR_CONFIG), create the state
 * store, read the run history into the scheduler, load or make the token. No thread,
 * no socket: server_main adds those; tests and the fuzzer use the struct as it is.
 */
enum jerr server_open(const struct server_opts *o, struct server **out, struct jerror *err) JOEY_WUR;
/* Free what server_open made (no job may be running). s may be NULL. */
void server_close(struct server *s);
/* The current config with a reference taken (never NULL once started). */
struct cfg_ref *server_cfg_get(struct server *s);
void server_cfg_put(struct server *s, struct cfg_ref *ref);
/* Reload from disk (SIGHUP, API); JERR_CONFIG keeps the old one and sets config_error. */
enum jerr server_reload(struct server *s, struct jerror *err);
/* Install a config already loaded and valid (after an API write); takes ownership. */
void server_install_config(struct server *s, struct config *cfg);
/* Ask for runs (sched_request under the lock, and wake the loop). */
bool server_request_runs(struct server *s, const char *model_id, const char *dest_id,
			 enum sched_trigger trigger, bool full, bool force,
			 struct sched_request_result *res, json_t *started, json_t *queued);
/* A state store handle for a request: read-only view (may be empty). Close with state_close. */
enum jerr server_state_read(struct server *s, struct state **st, struct jerror *err);
/* Diagnostics of cfg as a JSON array (severity, file, line, col, class, id, field, message, hint). */
json_t *server_diags_json(const struct config *cfg);
/* The trigger and records read of a run this process finished, or NULL. Under lock. */
const struct finished_run *server_finished_run(const struct server *s, int64_t run_id);
/* Member count of a group, or -1 if not counted yet; *at when counted. Under lock. */
int64_t server_group_count(struct server *s, const char *group_id, int64_t *at);
/* group_counts.c: start the thread that counts the members of every group when the
 * counts are stale and no run is going. Called with s->lock held (drops it to join the
 * last count thread). */
void server_maybe_count(struct server *s);
/* server.c: the wall clock in ms since the epoch. */
int64_t server_epoch_ms(void);
/* server.c: drop a reference to a config snapshot with s->lock held (frees the last). */
void server_cfg_drop_locked(struct cfg_ref *ref);

/* ---- alerts.c: alerts (src/alert) in serve ---- */
struct run;
/* Start the alert thread (checks noSuccessFor, sends queued messages); stop joins it (after stopping is set). */
void server_alerts_start(struct server *s);
void server_alerts_stop(struct server *s);
/*
 * After a job's run: evaluate its alerts in st (the run's writable store) and wake the
 * alert thread. worker_job: r is the summary of a job the workers ran (alert.h).
 */
void server_alerts_after_run(struct server *s, const struct config *cfg, struct state *st, const struct run *r,
			     bool worker_job);

/* ---- impact.c: destructive config changes and Braze keys, judged before writing ---- */
struct impact_ask {
	struct server *s;
	enum cfg_class cls;
	enum cfg_write_op op;
	const char *id;       /* the object's id (borrowed) */
	const char *confirm;  /* ?confirm=: the token of the impact the caller accepts, or NULL */
	bool unverified;      /* ?unverified=true: save an app although Braze refuses its key */
	/* out: when the write is refused, the reply (owned) and its status (409, 422) */
	json_t *refusal;
	unsigned status;
	json_t *confirmed;    /* out: the impact that was confirmed (owned), or NULL */
};
/* config_write's approve callback (ctx: struct impact_ask); see impact.c. */
enum jerr impact_approve(void *ctx, const struct config *staged, struct jerror *err);
/*
 * What a write of (cls, id) is judged on in staged: "model:<id>" (its model's
 * destinations) or "destination:<id>" (owned); NULL when no plan judges it. Writes of
 * one scope in one batch have one impact: the batch judges each scope once.
 */
char *impact_scope(const struct config *staged, enum cfg_class cls, const char *id);
/* A failed Braze key check (dest_ops.check's err) in plain words; *action: what to do. */
const char *impact_key_words(const struct jerror *e, const char **action);

/* A source value as JSON (owned; null for NULL or what does not parse), audiences.c. */
struct value;
json_t *value_json(const struct value *v);

/* ---- explain.c: plain words for the errors of failed rows ---- */
struct explanation {
	const char *code;  /* what it matches: a Braze code, "HTTP 4xx", ... */
	const char *title; /* what happened, in plain words */
	const char *action; /* what to do */
	bool retry;        /* can retrying help (without changing anything)? */
};
/* The explanation of a failed row's error text (never NULL: a generic one at worst). */
const struct explanation *explain_error(const char *error);
json_t *explain_json(const struct explanation *e);

/* ---- metrics.c ---- */
void metrics_init(struct metrics *m);
void metrics_release(struct metrics *m);
void metrics_http(struct metrics *m, unsigned status);
/* A destination's run ended; ds (may be NULL) adds the request latencies. */
void metrics_run_finished(struct metrics *m, const char *dest_id, enum run_status st,
			  const struct run_counts *c, const struct dest_stats *ds);
/* The Prometheus text (owned by the caller). */
char *metrics_render(struct server *s);

/* ---- httpd.c: requests and replies ---- */
#define REQ_MAX_QUERY 32
struct req_kv {
	const char *key, *value; /* value NULL for "?flag" */
};

/* A request as the handlers see it: everything borrowed for the call. */
struct req {
	struct server *s;
	const char *method;
	const char *path;
	const char *params[4]; /* path parameters ({id}) in order, decoded */
	size_t n_params;
	const char *body;      /* NUL-terminated; NULL if none */
	size_t body_len;
	struct req_kv query[REQ_MAX_QUERY];
	size_t n_query;
	bool query_overflow;   /* more than REQ_MAX_QUERY parameters: refused with 400 */
	const char *host;      /* headers, NULL when absent */
	const char *authorization;
	const char *x_token;
	const char *cookie;
	const char *csrf;      /* X-CSRF-Token */
	const char *origin;
	const char *if_match;  /* If-Match: the version (ETag) of a config object or file the change was made to */
	const char *remote_addr; /* the peer's address as text, or NULL */
	bool too_big;          /* the body went past opts.max_body */
	/* set by auth_identify: who this is (role ROLE_NONE: nobody signed in) */
	struct acct_principal who;
	bool session_expired;  /* a session cookie was sent but has ended */
};

/*
 * Versions of config objects and files (docs/api.md "Concurrent edits"): the ETag of a
 * text is its XXH3-64 in hex, quoted. GET /config/{class}/{id} and GET /files/{path}
 * send it; a PUT or DELETE with If-Match is refused with 412 when the text changed
 * since, decided under server_write_lock, which every config write of the API holds
 * (and reload: installs stay in order).
 */
#define SERVER_ETAG_SIZE 24
void server_etag(const char *text, char out[SERVER_ETAG_SIZE]);
/*
 * A config object's version: server_etag of its text (as GET answers it, secrets
 * masked); for an App or an Alert also of the secrets file, whose keys a form writes
 * while the object keeps its reference, with a BLAKE2b keyed by a random key made at
 * start (viewers see versions: never a plain hash of a secret; versions of apps and
 * alerts change when the server restarts).
 */
void server_object_etag(const struct server *s, enum cfg_class cls, const char *text, char out[SERVER_ETAG_SIZE]);
/*
 * Under server_write_lock: does the request's If-Match (if any) fail against current
 * (the version now, server_etag; NULL: there is none)? Then a 412 naming what
 * ("config object \"destinations/x\"") is in out and true is returned.
 */
struct reply;
bool server_if_match_fails(const struct req *r, const char *current, const char *what, struct reply *out);
extern pthread_mutex_t server_write_lock;

struct reply {
	unsigned status;
	char *body;               /* owned */
	size_t len;
	const char *content_type; /* static */
	const char *allow;        /* static, for 405 */
	char *set_cookie;         /* owned: a Set-Cookie header, or NULL */
	unsigned retry_after;     /* seconds, for 429; 0: none */
	char etag[SERVER_ETAG_SIZE]; /* an ETag header (server_etag), or "" */
};

/* The value of query parameter name, or NULL. */
const char *req_query(const struct req *r, const char *name);
/* 400 naming the first query parameter not in allowed (NULL-terminated); true if all ok. */
bool req_check_query(const struct req *r, struct reply *out, const char *const *allowed);
/* 400 naming the first member of body not in allowed (NULL-terminated) and what the route takes; true if all ok. */
bool req_check_fields(json_t *body, const char *const *allowed, struct reply *out);
/* 400 "this route takes no body" when r has one; true if it has none. */
bool req_no_body(const struct req *r, struct reply *out);
/*
 * The first path parameter as an id (*id, a positive integer); false: a 400 with error,
 * the parameter as detail, and hint (may be NULL).
 */
bool req_param_id(const struct req *r, struct reply *out, const char *error, const char *hint, long long *id);
/* The model of cfg the first path parameter names; NULL: a 404 naming the parameter. */
const struct cfg_model *req_param_model(const struct req *r, struct reply *out, const struct config *cfg);
/* Parse the body as a JSON object (400 on failure). NULL and *out filled on failure. */
json_t *req_json_body(const struct req *r, struct reply *out);
/* Reply helpers: reply_json steals j. */
void reply_json(struct reply *out, unsigned status, json_t *j);
void reply_error(struct reply *out, unsigned status, const char *error, const char *detail,
		 const char *hint);
void reply_jerror(struct reply *out, unsigned status, const struct jerror *err);
/* Parse a non-negative integer query parameter (default def, at most max); false: 400 set. */
bool req_query_uint(const struct req *r, struct reply *out, const char *name, uint64_t def,
		    uint64_t max, uint64_t *v);
/* The query of a paged list: only the allowed parameters, "limit" (absent or 0: 50; at
 * most 1000) and "before" (an id; 0: from the newest). false: 400 set. */
bool req_query_page(const struct req *r, struct reply *out, const char *const *allowed, uint64_t *limit,
		    uint64_t *before);
/* A paged list read with rc failed (rc neither JERR_OK nor JERR_INTERRUPTED, which ends a
 * page): 500 with err set, items freed, and true. false: nothing done. */
bool reply_read_failed(struct reply *out, enum jerr rc, json_t *items, const struct jerror *err);
/* The answer of a paged list: {"items", "next"} (next 0: null). Steals items. */
void reply_items(struct reply *out, json_t *items, int64_t next);

/*
 * Answer one request: limits, Host check, auth, routing to the API, /metrics,
 * /healthz and the embedded UI. No I/O of its own: httpd.c feeds it from
 * libmicrohttpd, tests and the fuzzer call it directly. *no_store: the reply must not
 * be cached.
 */
void server_handle(struct server *s, struct req *r, struct reply *out, bool *no_store);

/* Start/stop the HTTP daemon. */
enum jerr httpd_start(struct server *s, struct jerror *err);
void httpd_stop(struct server *s);

/* ---- auth.c: accounts, sessions, roles, the audit log ---- */
/* Open the accounts store, check JOEY_API_TOKEN, make the setup link if nobody exists. */
enum jerr auth_open(struct server *s, struct jerror *err) JOEY_WUR;
void auth_close(struct server *s);
/*
 * Once listening (s->loopback and listen_desc known): refuse a JOEY_API_TOKEN shorter
 * than 32 characters beyond loopback, and print the one-time setup link if there is no
 * account yet.
 */
enum jerr auth_ready(struct server *s, struct jerror *err) JOEY_WUR;
/* The JOEY_API_TOKEN length rule alone, as soon as the bound address is known. */
enum jerr auth_check_token(struct server *s, struct jerror *err) JOEY_WUR;
/* The accounts store (NULL without HTTP). */
struct accounts *auth_accounts(struct server *s);
/*
 * Set r->who from the request's token or session cookie; check CSRF and Origin on
 * state-changing requests. false: *out holds the 401/403.
 */
bool auth_identify(struct server *s, struct req *r, struct reply *out);
/* Is r->who at least min? false: *out holds 401 (nobody) or 403 (too low a role). */
bool auth_allows(struct req *r, struct reply *out, enum acct_role min);
/* Write a change to the audit log as r->who (before/after borrowed, secrets masked). */
void auth_audit(struct req *r, const char *action, const char *cls, const char *id, const json_t *before,
		const json_t *after);

/* ---- api.c / actions.c / auth.c: route handlers ---- */
typedef void (*route_fn)(struct req *r, struct reply *out);
struct route {
	const char *method;
	const char *pattern; /* "/api/v1/models/{}" */
	route_fn fn;
	enum acct_role role; /* the least role that may call it; ROLE_NONE: anybody */
};
extern const struct route api_routes[];

void api_status(struct req *r, struct reply *out);
void api_models(struct req *r, struct reply *out);
void api_model(struct req *r, struct reply *out);
void api_apps(struct req *r, struct reply *out);
/* GET /sources, /properties, /groups, /destinations, /schedules: the path says which */
void api_list_objects(struct req *r, struct reply *out);
void api_runs(struct req *r, struct reply *out);
void api_run(struct req *r, struct reply *out);
void api_errors(struct req *r, struct reply *out);
void api_record(struct req *r, struct reply *out);
/*
 * history.c: the history of record key (borrowed) of model m for api_record: *items a
 * new array, newest first; views (borrowed) holds m's destination views in
 * m->destinations order, each given "sync_log" (null, or how its log was read). Fails
 * only on the state store's errors (*items NULL); a sync log that cannot be read is a
 * note in its view.
 */
enum jerr record_history(const struct config *cfg, const struct cfg_model *m, struct state *st,
			 const struct rkey *key, json_t *views, json_t **items, struct jerror *err) JOEY_WUR;
/* audiences.c: record lists and searches, group previews (api_record is there too) */
void api_records(struct req *r, struct reply *out);
void act_group_preview(struct req *r, struct reply *out);
void api_app_tables(struct req *r, struct reply *out);
void act_app_preview(struct req *r, struct reply *out);
void api_catalog(struct req *r, struct reply *out);
void api_cron(struct req *r, struct reply *out);
void api_samples(struct req *r, struct reply *out);
void api_config_get(struct req *r, struct reply *out);

void act_runs(struct req *r, struct reply *out);
void act_plan(struct req *r, struct reply *out);
void act_retry(struct req *r, struct reply *out);
void act_app_test(struct req *r, struct reply *out);
void act_config_batch(struct req *r, struct reply *out); /* POST /api/v1/config: several objects */
/* POST /config/{class} creates, PUT /config/{class}/{id} updates, DELETE deletes */
void act_config_write(struct req *r, struct reply *out);
void act_reload(struct req *r, struct reply *out);
void api_alerts(struct req *r, struct reply *out);
void api_alert_incidents(struct req *r, struct reply *out);
void api_alert_deliveries(struct req *r, struct reply *out);
void act_alert_test(struct req *r, struct reply *out);
void act_run_approve(struct req *r, struct reply *out);
void api_files(struct req *r, struct reply *out);
void api_file(struct req *r, struct reply *out);
void act_file_write(struct req *r, struct reply *out);

void api_session(struct req *r, struct reply *out);
void act_login(struct req *r, struct reply *out);
void act_logout(struct req *r, struct reply *out);
void act_setup(struct req *r, struct reply *out);
void act_password(struct req *r, struct reply *out);
void api_users(struct req *r, struct reply *out);
void act_user_add(struct req *r, struct reply *out);
void act_user_update(struct req *r, struct reply *out);
void act_user_remove(struct req *r, struct reply *out);
void api_tokens(struct req *r, struct reply *out);
void act_token_create(struct req *r, struct reply *out);
void act_token_revoke(struct req *r, struct reply *out);
void api_audit(struct req *r, struct reply *out);

#endif
