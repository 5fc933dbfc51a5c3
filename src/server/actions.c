/*
 * actions.c: the routes of /api/v1 that do something (docs/api.md): start runs, plan
 * previews, retries, app connection tests, config writes and reloads.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/strbuf.h"
#include "base/xalloc.h"
#include "config/guard.h"
#include "config/write.h"
#include "dest/dest.h"
#include "engine/plan.h"
#include "server/serverp.h"
#include "source/source.h"

/*
 * One config write at a time: each validates against the directory the last one left,
 * and an If-Match is judged against what the last one wrote (serverp.h).
 */
pthread_mutex_t server_write_lock = PTHREAD_MUTEX_INITIALIZER;

/* Field name of the body is not what it must be (must: "a string"): false, with a 400. */
static bool bad_field(struct reply *out, const char *name, const char *must)
{
	struct strbuf m = STRBUF_INIT;
	strbuf_addf(&m, "field \"%s\" must be %s", name, must);
	reply_error(out, 400, m.buf, NULL, NULL);
	strbuf_release(&m);
	return false;
}

/* body[name], or NULL when it is absent or null. */
static json_t *given(json_t *body, const char *name)
{
	json_t *j = json_object_get(body, name);
	return json_is_null(j) ? NULL : j;
}

/* body[name] as a string (NULL if not given); false with a 400 when of another type. */
static bool get_str(json_t *body, const char *name, const char **v, struct reply *out)
{
	json_t *j = given(body, name);
	*v = json_string_value(j); /* NULL unless a string */
	return !j || *v || bad_field(out, name, "a string");
}

/* body[name] as a boolean (false if not given); false with a 400 when of another type. */
static bool get_bool(json_t *body, const char *name, bool *v, struct reply *out)
{
	json_t *j = given(body, name);
	*v = json_is_true(j);
	return !j || json_is_boolean(j) || bad_field(out, name, "true or false");
}

/* Optional body: an empty one is {}. */
static json_t *body_or_empty(struct req *r, struct reply *out)
{
	if (!r->body || !r->body_len)
		return json_object();
	return req_json_body(r, out);
}

static void request_runs(struct req *r, struct reply *out, enum sched_trigger trigger, bool need_dest)
{
	static const char *const run_fields[] = { "destination", "model", "full", "force", NULL };
	static const char *const retry_fields[] = { "destination", NULL };
	json_t *body = body_or_empty(r, out);
	const char *dest = NULL, *model = NULL;
	bool full = false, force = false;
	if (!body)
		return;
	if (!req_check_fields(body, need_dest ? retry_fields : run_fields, out) || !get_str(body, "destination", &dest, out) ||
	    !get_str(body, "model", &model, out) || !get_bool(body, "full", &full, out) ||
	    !get_bool(body, "force", &force, out))
		goto out;
	if (need_dest && !dest) {
		reply_error(out, 400, "field \"destination\" is required", NULL, "retries are per destination");
		goto out;
	}
	if (dest && model) {
		reply_error(out, 400, "give \"destination\" or \"model\", not both", NULL, NULL);
		goto out;
	}
	struct cfg_ref *ref = server_cfg_get(r->s);
	bool known = (!dest || config_destination(ref->cfg, dest)) && (!model || config_model(ref->cfg, model));
	server_cfg_put(r->s, ref);
	if (!known) {
		reply_error(out, 404, dest ? "no such destination" : "no such model", dest ? dest : model, NULL);
		goto out;
	}
	struct sched_request_result res;
	json_t *started = json_array(), *queued = json_array();
	if (!server_request_runs(r->s, model, dest, trigger, full, force, &res, started, queued)) {
		json_decref(started);
		json_decref(queued);
		reply_error(out, 503, "not taking new runs", "the server is stopping", NULL);
		goto out;
	}
	json_t *what = json_pack("{s:O,s:O,s:b,s:b}", "started", started, "queued", queued, "full", full, "force", force);
	auth_audit(r, need_dest ? "run.retry" : "run.request", dest ? "destinations" : model ? "models" : NULL,
		   dest ? dest : model, NULL, what);
	json_decref(what);
	reply_json(out, 202, json_pack("{s:o,s:o}", "started", started, "queued", queued));
out:
	json_decref(body);
}

void act_runs(struct req *r, struct reply *out)
{
	request_runs(r, out, SCHED_TRIGGER_API, false);
}

void act_retry(struct req *r, struct reply *out)
{
	request_runs(r, out, SCHED_TRIGGER_RETRY, true);
}

void act_plan(struct req *r, struct reply *out)
{
	static const char *const fields[] = { "destination", "full", "details", NULL };
	json_t *body = body_or_empty(r, out);
	const char *dest = NULL;
	bool full = false, details = false;
	struct cfg_ref *ref = NULL;
	struct state *st = NULL;
	struct jerror err = JERROR_INIT;
	struct plan p;
	bool ready = false;
	if (!body)
		return;
	if (!req_check_fields(body, fields, out) || !get_str(body, "destination", &dest, out) ||
	    !get_bool(body, "full", &full, out) || !get_bool(body, "details", &details, out))
		goto out;
	ref = server_cfg_get(r->s);
	if (dest && !config_destination(ref->cfg, dest)) {
		reply_error(out, 404, "no such destination", dest, NULL);
		goto out;
	}
	struct plan_opts po = { .json = true, .details = details, .only_dest = dest, .max_delete_percent = -1,
				.full = full };
	enum jerr rc = plan_init(&p, ref->cfg, &po, &err);
	ready = !rc;
	if (!rc)
		rc = server_state_read(r->s, &st, &err);
	if (!rc)
		rc = plan_compute(&p, st, &err);
	if (rc) {
		reply_jerror(out, rc == JERR_SOURCE || rc == JERR_SOURCE_DATA ? 502 : 500, &err);
		goto out;
	}
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	if (!f) {
		reply_error(out, 500, "out of memory", NULL, NULL);
		goto out;
	}
	plan_print_json(&p, f);
	fclose(f);
	out->status = 200;
	out->body = buf;
	out->len = len;
	out->content_type = "application/json";
out:
	if (ready)
		plan_release(&p);
	state_close(st);
	server_cfg_put(r->s, ref);
	jerror_release(&err);
	json_decref(body);
}

void act_app_test(struct req *r, struct reply *out)
{
	if (!req_no_body(r, out))
		return;
	struct cfg_ref *ref = server_cfg_get(r->s);
	const struct cfg_app *app = config_app(ref->cfg, r->params[0]);
	const struct dest_ops *ops = app ? dest_ops_for_app(app->type) : NULL;
	struct jerror err = JERROR_INIT;
	if (!app) {
		reply_error(out, 404, "no such app", r->params[0], "GET /api/v1/apps lists them");
	} else if (!ops && source_ops_for_app(app->type)) {
		/* a database or warehouse: connect as a run would (read-only session) and let go */
		const struct source_ops *sops = source_ops_for_app(app->type);
		void *conn = NULL;
		if (sops->connect(app, ref->cfg->root, &conn, &err))
			reply_json(out, 200,
				   json_pack("{s:b,s:s,s:s,s:s}", "ok", 0, "error", err.msg.buf, "detail", err.detail.buf,
					     "hint", err.hint.buf));
		else {
			sops->disconnect(conn);
			reply_json(out, 200, json_pack("{s:b}", "ok", 1));
		}
	} else if (!ops) {
		reply_error(out, 400, "this app cannot be tested here", app->type,
			    "connection tests exist for Braze apps and the databases joey reads");
	} else {
		struct dest_opts o = r->s->opts.dest;
		o.timeout_ms = o.timeout_ms > 15000 ? 15000 : o.timeout_ms;
		if (ops->check(app, &o, &err)) {
			/* plain words first (no option names); what joey saw as the technical detail */
			const char *action;
			const char *words = impact_key_words(&err, &action);
			struct strbuf d = STRBUF_INIT;
			strbuf_addf(&d, "%s%s%s", err.msg.buf, err.detail.len ? ": " : "", err.detail.buf);
			reply_json(out, 200,
				   json_pack("{s:b,s:s,s:s,s:s,s:s}", "ok", 0, "error", words, "detail", d.buf, "hint", action,
					     "technical", err.msg.buf));
			strbuf_release(&d);
		} else
			reply_json(out, 200, json_pack("{s:b}", "ok", 1));
	}
	jerror_release(&err);
	server_cfg_put(r->s, ref);
}

void act_reload(struct req *r, struct reply *out)
{
	if (!req_no_body(r, out))
		return;
	struct jerror err = JERROR_INIT;
	pthread_mutex_lock(&server_write_lock); /* installs in the order of the writes */
	enum jerr rc = server_reload(r->s, &err);
	pthread_mutex_unlock(&server_write_lock);
	json_t *what = json_pack("{s:b}", "ok", rc == JERR_OK);
	auth_audit(r, "config.reload", NULL, NULL, NULL, what);
	json_decref(what);
	if (!rc) {
		api_status(r, out);
	} else {
		pthread_mutex_lock(&r->s->lock);
		json_t *e = r->s->config_error ? json_deep_copy(r->s->config_error) : NULL;
		pthread_mutex_unlock(&r->s->lock);
		if (e)
			reply_json(out, 422, e);
		else
			reply_jerror(out, 500, &err);
	}
	jerror_release(&err);
}

/* ---- config writes ---- */

/*
 * The object as its file holds it, literal secrets masked (for the audit log), or NULL;
 * etag (may be NULL) its version (server_etag), "" when there is none.
 */
static json_t *read_masked(struct req *r, enum cfg_class cls, const char *id, char *etag)
{
	char *text = NULL, *file = NULL;
	struct jerror err = JERROR_INIT;
	json_t *j = NULL;
	if (etag)
		etag[0] = '\0';
	if (id && !config_read_object(r->s->opts.config_dir, cls, id, &text, &file, &err)) {
		j = json_loads(text, 0, NULL);
		if (etag)
			server_object_etag(r->s, cls, text, etag);
	}
	free(text);
	free(file);
	jerror_release(&err);
	return j;
}

/* POST /config/{class}, PUT and DELETE /config/{class}/{id}: the method says which write */
void act_config_write(struct req *r, struct reply *out)
{
	enum cfg_write_op op = !strcmp(r->method, "POST")  ? CFG_WRITE_CREATE
			       : !strcmp(r->method, "PUT") ? CFG_WRITE_UPDATE
							   : CFG_WRITE_DELETE;
	enum cfg_class cls;
	struct cfg_write w = { .op = op };
	struct cfg_write_result res = { 0 };
	struct jerror err = JERROR_INIT;
	char *text = NULL;
	json_t *sent = NULL; /* an app as sent, for config_guard_app */
	char *id_copy = NULL; /* a new object's id, for impact_approve */

	static const char *const write_params[] = { "confirm", "unverified", NULL };
	const char *unverified = req_query(r, "unverified");
	if (!req_check_query(r, out, write_params))
		return;
	if (unverified && strcmp(unverified, "true") && strcmp(unverified, "false")) {
		reply_error(out, 400, "invalid value for query parameter \"unverified\"", unverified, "give true or false");
		return;
	}
	if (!cfg_class_from_dir(r->params[0], &cls)) {
		reply_error(out, 404, "no such config class", r->params[0],
			    "use apps, models, sources, properties, groups, destinations, schedules or alerts");
		return;
	}
	w.cls = cls;
	struct impact_ask ask = { .s = r->s, .cls = cls, .op = op, .confirm = req_query(r, "confirm"),
				  .unverified = unverified && !strcmp(unverified, "true") };
	w.approve = impact_approve;
	w.approve_ctx = &ask;
	if ((cls == CLASS_APP || cls == CLASS_ALERT) && !auth_allows(r, out, ROLE_ADMIN)) /* apps and alerts hold keys */
		return;
	if (op != CFG_WRITE_CREATE)
		w.id = ask.id = r->params[1];
	if (op == CFG_WRITE_DELETE) {
		if (r->body_len) {
			reply_error(out, 400, "DELETE takes no body", NULL, NULL);
			return;
		}
	} else {
		json_t *body = req_json_body(r, out);
		if (!body)
			return;
		json_t *file = json_object_get(body, "file");
		if (file) /* what GET answered: not part of the object */
			json_object_del(body, "file");
		if (!ask.id && json_is_string(json_object_get(body, "id")))
			ask.id = id_copy = xstrdup(json_string_value(json_object_get(body, "id")));
		text = json_dumps(body, JSON_PRESERVE_ORDER);
		if (cls == CLASS_APP || cls == CLASS_ALERT)
			sent = json_incref(body);
		json_decref(body);
		w.object_json = text;
	}

	pthread_mutex_lock(&server_write_lock);
	char version[SERVER_ETAG_SIZE];
	json_t *before = op == CFG_WRITE_CREATE ? NULL : read_masked(r, cls, w.id, version);
	/* changed by someone else since it was loaded (If-Match): nothing is written */
	if (op != CFG_WRITE_CREATE && r->if_match) {
		struct strbuf what = STRBUF_INIT;
		strbuf_addf(&what, "config object \"%s/%s\"", cfg_class_dir(cls), w.id);
		bool stale = server_if_match_fails(r, version[0] ? version : NULL, what.buf, out);
		strbuf_release(&what);
		if (stale) {
			json_decref(before);
			pthread_mutex_unlock(&server_write_lock);
			goto out;
		}
	}
	/* an app's keys stay with their host, its endpoint is Braze's, its files are in
	 * the data directory (config/guard.h): what an account may not change. With no
	 * stored object to compare with, the change is judged as a new app */
	if (sent &&
	    (cls == CLASS_ALERT ? config_guard_alert(r->s->opts.config_dir, &r->s->opts.cfg, r->s->opts.state_path,
							  before, sent, &err)
				: config_guard_app(r->s->opts.config_dir, &r->s->opts.cfg, r->s->opts.state_path, before,
						   sent, &err))) {
		json_decref(before);
		pthread_mutex_unlock(&server_write_lock);
		reply_jerror(out, 400, &err);
		goto out;
	}
	json_t *stored = NULL; /* the object as written: for the audit log and the answer */
	enum jerr rc = config_write(r->s->opts.config_dir, &w, &r->s->opts.cfg, &res, &err);
	if (!rc) {
		struct config *cfg = res.cfg;
		res.cfg = NULL;
		server_install_config(r->s, cfg);
		stored = res.stored_json ? json_loads(res.stored_json, 0, NULL) : NULL;
		const char *oid = w.id ? w.id : json_string_value(json_object_get(stored, "id"));
		json_t *after = op == CFG_WRITE_DELETE ? NULL : read_masked(r, cls, oid, out->etag);
		static const char *const actions[] = { [CFG_WRITE_CREATE] = "config.create",
						       [CFG_WRITE_UPDATE] = "config.update",
						       [CFG_WRITE_DELETE] = "config.delete" };
		auth_audit(r, actions[op], cfg_class_dir(cls), oid, before, after);
		if (ask.confirmed) /* who accepted which deletes */
			auth_audit(r, "config.confirm_destructive", cfg_class_dir(cls), oid, NULL, ask.confirmed);
		if (cls == CLASS_APP && ask.unverified)
			auth_audit(r, "config.save_unverified", cfg_class_dir(cls), oid, NULL, NULL);
		json_decref(after);
	}
	json_decref(before);
	pthread_mutex_unlock(&server_write_lock);

	if (!rc) {
		if (op == CFG_WRITE_DELETE) {
			out->status = 204;
			json_decref(stored);
		} else {
			json_t *j = stored ? stored : json_object();
			json_object_set_new(j, "file", json_string(res.file ? res.file : ""));
			reply_json(out, op == CFG_WRITE_CREATE ? 201 : 200, j);
		}
	} else if (ask.refusal) {
		reply_json(out, ask.status, ask.refusal);
		ask.refusal = NULL;
	} else if (rc == JERR_CONFIG && res.cfg) {
		json_t *j = json_object();
		json_object_set_new(j, "error", json_string("the change would make the config invalid"));
		struct strbuf d = STRBUF_INIT;
		strbuf_addf(&d, "%zu error%s; nothing was written", res.cfg->n_errors, res.cfg->n_errors == 1 ? "" : "s");
		json_object_set_new(j, "detail", json_string(d.buf));
		strbuf_release(&d);
		json_object_set_new(j, "hint", json_string("see diagnostics: each names the file, field and problem"));
		json_object_set_new(j, "diagnostics", server_diags_json(res.cfg));
		reply_json(out, 422, j);
	} else {
		unsigned status = 500;
		if (rc == JERR_USAGE) {
			status = 400;
			if (strstr(err.msg.buf, "does not exist"))
				status = 404;
			else if (strstr(err.msg.buf, "already"))
				status = 409;
		}
		reply_jerror(out, status, &err);
	}
out:
	cfg_write_result_release(&res);
	json_decref(ask.refusal);
	json_decref(ask.confirmed);
	free(id_copy);
	json_decref(sent);
	free(text);
	jerror_release(&err);
}

/* ---- several objects in one write: POST /api/v1/config ---- */

/* 400 naming the object (index; -1: none) and the field at fault. */
static void batch_bad(struct reply *out, unsigned status, long index, const char *field, const char *error,
		      const char *detail, const char *hint)
{
	json_t *j = json_pack("{s:s}", "error", error);
	if (detail)
		json_object_set_new(j, "detail", json_string(detail));
	if (hint)
		json_object_set_new(j, "hint", json_string(hint));
	if (index >= 0)
		json_object_set_new(j, "object", json_integer(index));
	if (field) {
		struct strbuf f = STRBUF_INIT;
		if (index >= 0)
			strbuf_addf(&f, "objects[%ld]%s%s", index, *field ? "." : "", field);
		else
			strbuf_addstr(&f, field);
		json_object_set_new(j, "field", json_string(f.buf));
		strbuf_release(&f);
	}
	reply_json(out, status, j);
}

/* What the batch's approve callback needs: the request, and the impact of each item. */
struct batch_ask {
	struct req *r;
	const struct cfg_batch_item *items;
	char *tokens;      /* ?confirm=, a comma-separated list (owned) */
	json_t *refusal;   /* out: as impact_ask's, with "object" (owned) */
	unsigned status;
	json_t *confirmed; /* out: {index: impact} of the items confirmed (owned) */
	json_t *judged;    /* the impact scopes already approved (impact_scope): not planned again */
};

/* impact_approve for one item, with each confirm token in turn until one is accepted. */
static enum jerr batch_approve(void *ctx, size_t index, enum cfg_write_op op, const char *id,
			       const struct config *staged, struct jerror *err)
{
	struct batch_ask *ba = ctx;
	const char *toks = ba->tokens ? ba->tokens : "";
	char *scope = impact_scope(staged, ba->items[index].cls, id);
	enum jerr rc;
	if (scope && json_object_get(ba->judged, scope)) { /* same model, same plan: approved already */
		free(scope);
		return JERR_OK;
	}
	if (scope)
		json_object_set_new(ba->judged, scope, json_true()); /* only read again once approved */
	free(scope);
	for (;;) {
		const char *comma = strchr(toks, ',');
		char *tok = xstrndup(toks, comma ? (size_t)(comma - toks) : strlen(toks));
		struct impact_ask ask = { .s = ba->r->s, .cls = ba->items[index].cls, .op = op, .id = id,
					  .confirm = *tok ? tok : NULL };
		rc = impact_approve(&ask, staged, err);
		free(tok);
		if (ask.confirmed) {
			char key[24];
			snprintf(key, sizeof(key), "%zu", index);
			json_object_set_new(ba->confirmed, key, ask.confirmed);
		}
		if (!rc || !comma || !ask.refusal) {
			if (rc && ask.refusal) {
				json_object_set_new(ask.refusal, "object", json_integer((json_int_t)index));
				ba->refusal = ask.refusal;
				ba->status = ask.status;
			} else {
				json_decref(ask.refusal);
			}
			return rc;
		}
		json_decref(ask.refusal);
		jerror_release(err);
		toks = comma + 1;
	}
}

/* The class of objects[i] from its "class" ("Model", ...): false with a 400 naming it. */
static bool batch_class(json_t *obj, size_t i, enum cfg_class *cls, struct reply *out)
{
	json_t *c = json_object_get(obj, "class");
	const char *v = json_string_value(c);
	for (int k = 0; v && k < CLASS__COUNT; k++)
		if (!strcasecmp(v, cfg_class_name((enum cfg_class)k))) {
			*cls = (enum cfg_class)k;
			if (k == CLASS_APP || k == CLASS_ALERT) {
				batch_bad(out, 400, (long)i, "class", "apps and alerts are written one at a time",
					  v, "use POST or PUT /api/v1/config/apps/... (admin): they hold keys");
				return false;
			}
			return true;
		}
	batch_bad(out, 400, (long)i, "class", c ? "unknown class" : "the object has no \"class\"",
		  v, "set \"class\" to Model, Source, Property, Group, Destination or Schedule");
	return false;
}

/*
 * Check the body {"objects":[...], "mode"} into items[] (their object_json owned by
 * texts[]); false: a 400 naming the object and field is set.
 */
static bool batch_parse(json_t *body, struct cfg_batch *b, struct cfg_batch_item **items, char ***texts,
			struct reply *out)
{
	static const char *const fields[] = { "objects", "mode", NULL };
	json_t *objs = json_object_get(body, "objects"), *mode = json_object_get(body, "mode");
	size_t n;

	if (!req_check_fields(body, fields, out))
		return false;
	if (mode && !json_is_null(mode)) {
		const char *m = json_string_value(mode);
		if (m && !strcmp(m, "create"))
			b->mode = CFG_BATCH_CREATE;
		else if (m && !strcmp(m, "update"))
			b->mode = CFG_BATCH_UPDATE;
		else if (!m || strcmp(m, "upsert")) {
			batch_bad(out, 400, -1, "mode", "invalid \"mode\"", m, "give create, update or upsert (the default)");
			return false;
		}
	}
	if (!json_is_array(objs)) {
		batch_bad(out, 400, -1, "objects", "field \"objects\" must be an array of config objects", NULL,
			  "send {\"objects\": [{\"id\": ..., \"class\": \"Model\", ...}, ...]}");
		return false;
	}
	n = json_array_size(objs);
	if (!n || n > CFG_BATCH_MAX) {
		struct strbuf d = STRBUF_INIT;
		strbuf_addf(&d, "%zu objects; a write takes 1 to %d", n, CFG_BATCH_MAX);
		batch_bad(out, 400, -1, "objects", n ? "too many objects" : "no objects given", d.buf, NULL);
		strbuf_release(&d);
		return false;
	}
	*items = xcalloc(n, sizeof(**items));
	*texts = xcalloc(n, sizeof(**texts));
	b->items = *items;
	for (size_t i = 0; i < n; i++) {
		json_t *o = json_array_get(objs, i);
		if (!json_is_object(o)) {
			batch_bad(out, 400, (long)i, "", "each object must be a JSON object", NULL, NULL);
			return false;
		}
		if (!batch_class(o, i, &(*items)[i].cls, out))
			return false;
		json_t *id = json_object_get(o, "id");
		if (!json_is_string(id)) {
			batch_bad(out, 400, (long)i, "id", id ? "\"id\" must be a string" : "the object has no \"id\"", NULL,
				  "add \"id\": a name of letters, digits, \"_\" and \"-\"");
			return false;
		}
		for (size_t k = 0; k < i; k++)
			if ((*items)[k].cls == (*items)[i].cls &&
			    !strcmp(json_string_value(json_object_get(json_array_get(objs, k), "id")), json_string_value(id))) {
				struct strbuf d = STRBUF_INIT;
				strbuf_addf(&d, "objects %zu and %zu are both %s \"%s\"", k, i,
					    cfg_class_name((*items)[i].cls), json_string_value(id));
				batch_bad(out, 400, (long)i, "id", "duplicate id", d.buf, "send each object once");
				strbuf_release(&d);
				return false;
			}
		(*texts)[i] = json_dumps(o, JSON_PRESERVE_ORDER);
		(*items)[i].object_json = (*texts)[i];
		b->n = i + 1;
	}
	return true;
}

/* Each diagnostic with "object": the index of the item it is about (by class and id), or null. */
static json_t *batch_diags(const struct config *cfg, const struct cfg_batch *b, json_t *objs)
{
	json_t *a = server_diags_json(cfg);
	size_t i;
	json_t *d;
	json_array_foreach(a, i, d) {
		const char *c = json_string_value(json_object_get(d, "class"));
		const char *id = json_string_value(json_object_get(d, "id"));
		json_t *at = json_null();
		for (size_t k = 0; c && id && k < b->n; k++)
			if (!strcasecmp(c, cfg_class_name(b->items[k].cls)) &&
			    !strcmp(id, json_string_value(json_object_get(json_array_get(objs, k), "id"))))
				at = json_integer((json_int_t)k);
		json_object_set_new(d, "object", at);
	}
	return a;
}

/* The answer to a failed batch (422 diagnostics, 409 impact, 400/404/409 usage, 500). */
static void batch_failed(struct reply *out, enum jerr rc, const struct jerror *err, struct cfg_batch_result *res,
			 const struct cfg_batch *b, json_t *objs, struct batch_ask *ba)
{
	if (ba->refusal) {
		reply_json(out, ba->status, ba->refusal);
		ba->refusal = NULL;
	} else if (rc == JERR_CONFIG && res->cfg) {
		json_t *j = json_object();
		struct strbuf d = STRBUF_INIT;
		json_object_set_new(j, "error", json_string("the change would make the config invalid"));
		strbuf_addf(&d, "%zu error%s; nothing was written", res->cfg->n_errors, res->cfg->n_errors == 1 ? "" : "s");
		json_object_set_new(j, "detail", json_string(d.buf));
		strbuf_release(&d);
		json_object_set_new(j, "hint", json_string("see diagnostics: each names the object, field and problem"));
		json_object_set_new(j, "diagnostics", batch_diags(res->cfg, b, objs));
		reply_json(out, 422, j);
	} else {
		unsigned status = 500;
		if (rc == JERR_USAGE) {
			status = 400;
			if (strstr(err->msg.buf, "does not exist"))
				status = 404;
			else if (strstr(err->msg.buf, "already"))
				status = 409;
		}
		batch_bad(out, status, res->failed, res->failed >= 0 && rc == JERR_USAGE ? "id" : NULL, err->msg.buf,
			  err->detail.len ? err->detail.buf : NULL, err->hint.len ? err->hint.buf : NULL);
	}
}

/* After a committed batch: the new config, an audit entry per object, the answer. */
static void batch_done(struct req *r, struct reply *out, const struct cfg_batch *b, struct cfg_batch_result *res,
		       json_t **befores, struct batch_ask *ba)
{
	json_t *done = json_array();
	bool created = false;
	server_install_config(r->s, res->cfg);
	res->cfg = NULL;
	for (size_t i = 0; i < res->n; i++) {
		const struct cfg_batch_done *d = &res->items[i];
		const char *dir = cfg_class_dir(b->items[i].cls);
		json_t *after = read_masked(r, b->items[i].cls, d->id, NULL);
		char key[24];
		auth_audit(r, d->op == CFG_WRITE_CREATE ? "config.create" : "config.update", dir, d->id, befores[i], after);
		snprintf(key, sizeof(key), "%zu", i);
		if (json_object_get(ba->confirmed, key))
			auth_audit(r, "config.confirm_destructive", dir, d->id, NULL, json_object_get(ba->confirmed, key));
		json_decref(after);
		created |= d->op == CFG_WRITE_CREATE;
		json_t *stored = d->stored_json ? json_loads(d->stored_json, 0, NULL) : NULL;
		json_array_append_new(done, json_pack("{s:s,s:s,s:s,s:s,s:o}", "class", cfg_class_name(b->items[i].cls), "id",
						      d->id, "op", d->op == CFG_WRITE_CREATE ? "created" : "updated", "file",
						      d->file ? d->file : "", "object", stored ? stored : json_object()));
	}
	reply_json(out, created ? 201 : 200, json_pack("{s:o}", "objects", done));
}

void act_config_batch(struct req *r, struct reply *out)
{
	static const char *const params[] = { "confirm", NULL };
	struct cfg_batch b = { .mode = CFG_BATCH_UPSERT, .approve = batch_approve };
	struct cfg_batch_result res = { .failed = -1 };
	struct cfg_batch_item *items = NULL;
	struct batch_ask ba = { .r = r };
	struct jerror err = JERROR_INIT;
	char **texts = NULL;
	json_t **befores = NULL;
	json_t *body, *objs;
	enum jerr rc;

	if (!req_check_query(r, out, params) || !(body = req_json_body(r, out)))
		return;
	objs = json_object_get(body, "objects");
	if (!batch_parse(body, &b, &items, &texts, out))
		goto out;
	ba.items = items;
	ba.tokens = req_query(r, "confirm") ? xstrdup(req_query(r, "confirm")) : NULL;
	ba.confirmed = json_object();
	ba.judged = json_object();
	b.approve_ctx = &ba;
	befores = xcalloc(b.n, sizeof(*befores));

	pthread_mutex_lock(&server_write_lock);
	for (size_t i = 0; i < b.n; i++)
		befores[i] = read_masked(r, items[i].cls, json_string_value(json_object_get(json_array_get(objs, i), "id")),
					 NULL);
	rc = config_write_batch(r->s->opts.config_dir, &b, &r->s->opts.cfg, &res, &err);
	if (!rc)
		batch_done(r, out, &b, &res, befores, &ba);
	pthread_mutex_unlock(&server_write_lock);
	if (rc)
		batch_failed(out, rc, &err, &res, &b, objs, &ba);
out:
	for (size_t i = 0; i < b.n; i++) {
		json_decref(befores ? befores[i] : NULL);
		free(texts[i]);
	}
	free(befores);
	free(texts);
	free(items);
	free(ba.tokens);
	json_decref(ba.refusal);
	json_decref(ba.confirmed);
	json_decref(ba.judged);
	cfg_batch_result_release(&res);
	jerror_release(&err);
	json_decref(body);
}

/* ---- approving a run the mass-delete guard held ---- */

struct held_ctx {
	int64_t id;
	bool found, latest, held;
	char dest[256];
	char error[512];
	int seen; /* runs of the destination seen before this one (newer) */
};

static enum jerr held_find(void *ctx, const struct state_run_info *run, struct jerror *err)
{
	(void)err;
	struct held_ctx *c = ctx;
	if (run->id != c->id)
		return JERR_OK;
	c->found = true;
	c->held = run->status == RUN_FAILED && run->error && !strncmp(run->error, "refusing to ", 12);
	snprintf(c->dest, sizeof(c->dest), "%s", run->dest_id);
	snprintf(c->error, sizeof(c->error), "%s", run->error ? run->error : "");
	return JERR_INTERRUPTED;
}

static enum jerr held_latest(void *ctx, const struct state_run_info *run, struct jerror *err)
{
	(void)err;
	struct held_ctx *c = ctx;
	if (!strcmp(run->kind, "run"))
		c->latest = run->id == c->id;
	return JERR_INTERRUPTED; /* newest first: the first run is the latest */
}

/*
 * POST /api/v1/runs/{id}/approve: the run was held by the mass-delete guard and is the
 * latest of its destination: run the destination again with the guard lifted (as
 * `joey run --force`), audited as run.approve with what the guard held.
 */
void act_run_approve(struct req *r, struct reply *out)
{
	long long id;
	if (!req_no_body(r, out) || !req_param_id(r, out, "invalid run id", "run ids are positive integers", &id))
		return;
	struct held_ctx c = { .id = id };
	struct state *st = NULL;
	struct jerror err = JERROR_INIT;
	enum jerr rc = server_state_read(r->s, &st, &err);
	if (!rc)
		rc = state_runs_list(st, NULL, 0, held_find, &c, &err);
	if (rc == JERR_INTERRUPTED)
		rc = JERR_OK;
	if (!rc && c.found)
		rc = state_runs_list(st, c.dest, 0, held_latest, &c, &err);
	if (rc == JERR_INTERRUPTED)
		rc = JERR_OK;
	state_close(st);
	if (rc) {
		reply_jerror(out, 500, &err);
		goto out;
	}
	if (!c.found) {
		reply_error(out, 404, "no such run", r->params[0], NULL);
		goto out;
	}
	if (!c.held) {
		reply_error(out, 409, "this run was not held by the mass-delete guard", r->params[0],
			    "only a run the guard stopped can be approved");
		goto out;
	}
	if (!c.latest) {
		reply_error(out, 409, "a newer run of this destination exists", c.dest,
			    "approve the destination's latest held run, so the deletes approved are the ones shown");
		goto out;
	}
	struct cfg_ref *ref = server_cfg_get(r->s);
	bool known = config_destination(ref->cfg, c.dest) != NULL;
	server_cfg_put(r->s, ref);
	if (!known) {
		reply_error(out, 404, "no such destination", c.dest, "the destination was removed from the config");
		goto out;
	}
	struct sched_request_result res;
	json_t *started = json_array(), *queued = json_array();
	if (!server_request_runs(r->s, NULL, c.dest, SCHED_TRIGGER_API, false, true, &res, started, queued)) {
		json_decref(started);
		json_decref(queued);
		reply_error(out, 503, "not taking new runs", "the server is stopping", NULL);
		goto out;
	}
	json_t *what = json_pack("{s:I,s:s,s:O,s:O}", "approved_run", (json_int_t)id, "held", c.error, "started", started,
				 "queued", queued);
	auth_audit(r, "run.approve", "destinations", c.dest, NULL, what);
	json_decref(what);
	reply_json(out, 202, json_pack("{s:o,s:o}", "started", started, "queued", queued));
out:
	jerror_release(&err);
}
