/*
 * files.c: the config files as text, for the UI's repair editor (docs/api.md "Config
 * files"). A config broken at start leaves `joey serve` in repair mode (server.c): the
 * UI shows the errors and an editor fixes the files here. Every save loads the whole
 * directory as it would be (config_file_write: the same staging load as config writes),
 * is audited, and a valid result is installed at once (repair mode ends). Outside repair
 * mode a save must leave the config valid (422 otherwise, nothing written).
 *
 * Roles: editors read and write files; a file that holds keys (config_file_holds_keys:
 * an App, an Alert or an object with a secret option, as the loader parses the file,
 * before or after the change) needs an admin to read and to write, as app and alert
 * writes do. Every App and Alert a save adds or changes goes through the same guards as
 * config writes (config/guard.h, run by config_file_write under the directory lock):
 * an admin cannot point a key at a host or file the API could not. The secrets file is
 * never one of the files, also when the state store lies inside the config directory.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/log.h"
#include "base/strbuf.h"
#include "config/write.h"
#include "server/serverp.h"

/*
 * Is config file rel the secrets file? With the state store inside the config
 * directory (--state config/state/state.db) its secrets.json is a *.json file the
 * loader reads like any other; it is never shown or written here, to anyone.
 */
static bool secrets_file(const struct server *s, const char *rel)
{
	struct strbuf path = STRBUF_INIT;
	struct stat a, b;
	bool same;
	if (!s->opts.secrets_path)
		return false;
	strbuf_addf(&path, "%s/%s", s->opts.config_dir, rel);
	same = stat(path.buf, &a) == 0 && stat(s->opts.secrets_path, &b) == 0 && a.st_dev == b.st_dev &&
	       a.st_ino == b.st_ino;
	strbuf_release(&path);
	return same;
}

/* 404 for the secrets file, as for any path that is not a config file. */
static bool not_secrets_file(struct req *r, struct reply *out)
{
	if (!secrets_file(r->s, r->params[0]))
		return true;
	reply_error(out, 404, "config file does not exist", r->params[0],
		    "the secrets file is not a config file; move the state store out of the config directory");
	return false;
}

/* Errors per file of the current config error, as {file: n}. Under no lock. */
static json_t *errors_by_file(struct server *s)
{
	json_t *by = json_object();
	pthread_mutex_lock(&s->lock);
	json_t *diags = s->config_error ? json_object_get(s->config_error, "diagnostics") : NULL;
	for (size_t i = 0; i < json_array_size(diags); i++) {
		json_t *d = json_array_get(diags, i);
		const char *f = json_string_value(json_object_get(d, "file"));
		if (!f || strcmp(json_string_value(json_object_get(d, "severity")), "error"))
			continue;
		json_object_set_new(by, f, json_integer(json_integer_value(json_object_get(by, f)) + 1));
	}
	pthread_mutex_unlock(&s->lock);
	return by;
}

void api_files(struct req *r, struct reply *out)
{
	static const char *const none[] = { NULL };
	if (!req_check_query(r, out, none))
		return;
	char **files;
	size_t n;
	struct jerror err = JERROR_INIT;
	if (config_files_list(r->s->opts.config_dir, &files, &n, &err)) {
		reply_jerror(out, 500, &err);
		jerror_release(&err);
		return;
	}
	json_t *by = errors_by_file(r->s), *a = json_array();
	for (size_t i = 0; i < n; i++) {
		char *text = NULL;
		struct jerror e = JERROR_INIT;
		if (secrets_file(r->s, files[i]))
			continue;
		bool app = config_file_holds_keys(files[i], NULL);
		if (!app && !config_file_read(r->s->opts.config_dir, files[i], &text, &e))
			app = config_file_holds_keys(files[i], text);
		free(text);
		jerror_release(&e);
		json_array_append_new(a, json_pack("{s:s,s:b,s:I}", "path", files[i], "admin_only", app, "errors",
						   json_integer_value(json_object_get(by, files[i]))));
	}
	json_decref(by);
	config_files_free(files, n);
	pthread_mutex_lock(&r->s->lock);
	bool repair = r->s->repair;
	json_t *ce = r->s->config_error ? json_deep_copy(r->s->config_error) : json_null();
	pthread_mutex_unlock(&r->s->lock);
	reply_json(out, 200, json_pack("{s:o,s:b,s:o}", "files", a, "repair", repair, "config_error", ce));
}

void api_file(struct req *r, struct reply *out)
{
	static const char *const none[] = { NULL };
	if (!req_check_query(r, out, none))
		return;
	char *text = NULL;
	struct jerror err = JERROR_INIT;
	if (!not_secrets_file(r, out))
		return;
	if (config_file_read(r->s->opts.config_dir, r->params[0], &text, &err)) {
		reply_jerror(out, err.code == JERR_USAGE ? 404 : 500, &err);
	} else if (!config_file_holds_keys(r->params[0], text) || auth_allows(r, out, ROLE_ADMIN)) {
		server_etag(text, out->etag); /* its version, for If-Match */
		reply_json(out, 200, json_pack("{s:s,s:s}", "path", r->params[0], "text", text));
	}
	free(text);
	jerror_release(&err);
}

void act_file_write(struct req *r, struct reply *out)
{
	static const char *const none[] = { NULL };
	static const char *const fields[] = { "text", NULL };
	if (!req_check_query(r, out, none) || !not_secrets_file(r, out))
		return;
	json_t *body = req_json_body(r, out);
	char *old = NULL;
	struct jerror err = JERROR_INIT;
	struct cfg_write_result res = { 0 };
	bool locked = false;
	if (!body)
		return;
	if (!req_check_fields(body, fields, out))
		goto done;
	const char *text = json_string_value(json_object_get(body, "text"));
	if (!text) {
		reply_error(out, 400, "field \"text\" is required", NULL, "the whole new text of the file");
		goto done;
	}
	/* as config writes: one at a time, and an If-Match judged against the last one */
	pthread_mutex_lock(&server_write_lock);
	locked = true;
	if (config_file_read(r->s->opts.config_dir, r->params[0], &old, &err)) {
		reply_jerror(out, err.code == JERR_USAGE ? 404 : 500, &err);
		goto done;
	}
	{
		char version[SERVER_ETAG_SIZE];
		struct strbuf what = STRBUF_INIT;
		server_etag(old, version);
		strbuf_addf(&what, "config file \"%s\"", r->params[0]);
		bool stale = server_if_match_fails(r, version, what.buf, out);
		strbuf_release(&what);
		if (stale)
			goto done;
	}
	pthread_mutex_lock(&r->s->lock);
	bool repair = r->s->repair;
	pthread_mutex_unlock(&r->s->lock);
	/* who may touch keys, and the guards of config writes: decided on the parsed file */
	struct cfg_file_guard guard = { .keys = r->who.role >= ROLE_ADMIN, .state_path = r->s->opts.state_path };
	enum jerr rc = config_file_write(r->s->opts.config_dir, r->params[0], text, &r->s->opts.cfg, &guard, repair,
					 &res, &err);
	if (rc == JERR_AUTH) {
		reply_jerror(out, 403, &err);
		goto done;
	}
	if (rc == JERR_CONFIG && res.cfg) {
		json_t *j = json_pack("{s:s,s:s,s:s,s:o}", "error", "the change would make the config invalid", "detail",
				      err.msg.buf, "hint", "nothing was written; see diagnostics", "diagnostics",
				      server_diags_json(res.cfg));
		reply_json(out, 422, j);
		goto done;
	}
	if (rc) {
		/* JERR_USAGE: no such file (404), or a guard's refusal (400, as config writes) */
		reply_jerror(out, rc != JERR_USAGE ? 500 : strstr(err.msg.buf, "does not exist") ? 404 : 400, &err);
		goto done;
	}
	bool valid = res.cfg && !res.cfg->n_errors;
	json_t *diags = server_diags_json(res.cfg);
	json_t *what = json_pack("{s:s,s:I,s:I,s:b}", "file", r->params[0], "bytes_before", (json_int_t)strlen(old),
				 "bytes_after", (json_int_t)strlen(text), "valid", valid);
	auth_audit(r, "config.file_edit", NULL, r->params[0], NULL, what);
	json_decref(what);
	if (valid) {
		struct config *cfg = res.cfg;
		res.cfg = NULL;
		server_install_config(r->s, cfg);
		log_info("config file \"%s\" saved from the web UI; config reloaded%s", r->params[0],
			 repair ? ": repair mode ended" : "");
	} else {
		/* still broken (repair mode): the new errors are the ones to show */
		char n[96];
		snprintf(n, sizeof(n), "the config directory is not valid (%zu error%s)", res.cfg->n_errors,
			 res.cfg->n_errors == 1 ? "" : "s");
		json_t *e = json_pack("{s:s,s:s,s:s,s:O}", "error", n, "detail", r->s->opts.config_dir, "hint",
				      "nothing runs until the config is valid; fix the files and reload", "diagnostics", diags);
		pthread_mutex_lock(&r->s->lock);
		json_decref(r->s->config_error);
		r->s->config_error = e;
		pthread_mutex_unlock(&r->s->lock);
	}
	server_etag(text, out->etag); /* the file's version now */
	reply_json(out, 200, json_pack("{s:s,s:b,s:o,s:b}", "path", r->params[0], "valid", valid, "diagnostics", diags,
				       "repair", repair && !valid));
done:
	if (locked)
		pthread_mutex_unlock(&server_write_lock);
	cfg_write_result_release(&res);
	free(old);
	jerror_release(&err);
	json_decref(body);
}
