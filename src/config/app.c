/*
 * app.c: the App class: reading an app object (type, options, the Braze key, rate limits and
 * endpoint), destination-only plugins, and the files app options name (ld_check_files).
 * Called by load.c (pass 2) and config_load (files).
 */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "config/config_internal.h"

static const struct field_spec app_fields[] = {
	{ "type", T_STR, 0, NULL, NULL },
	{ "options", T_OBJ, 0, NULL, NULL },
	{ "refresh", T_OBJ, F_WARN, "app refresh queries are ignored by joey",
	  "use a schedule's \"recurringFrequency\" or \"cron\" option instead" },
};

/*
 * An app or destination of one of Grouparoo's destination-only plugins (catalog.h):
 * skipped with a warning instead of refused. what: "app and its destinations are".
 */
bool ld_skip_export_only(struct loader *ld, const struct where *w, const struct j5_member *tm,
			 const char *type, const char *what)
{
	if (!catalog_export_only(type))
		return false;
	ld_warn(ld, w, NPOS(tm->value), "type", "joey exports to Braze only; delete the file to silence this warning",
		"type \"%s\" belongs to a Grouparoo destination plugin joey does not export to: the %s skipped",
		type, what);
	return true;
}

void ld_check_app_type(struct loader *ld, const struct where *w, const struct j5_member *app_m,
		       const struct app_x *ax, const char *what, const char *type, const char *app_type)
{
	if (!ax || !ax->cat || !ax->cat->supported || !strcmp(ax->a.type, app_type) ||
	    (!strcmp(app_type, "snowflake") && !strcmp(ax->a.type, "snowflake-keypair")))
		return;
	ld_err(ld, w, NPOS(app_m->value), "appId", NULL, "%s type \"%s\" needs %s %s app, but app \"%s\" is of type \"%s\"",
	       what, type, ld_article(app_type), app_type, ax->a.id, ax->a.type);
}

/*
 * Does the file option opt (of an app that reads files) lie outside the data directory
 * (config_opts.data_dir, `joey serve`)? Then messages never quote the file's content.
 * Without a data directory (the CLI) every file may be quoted.
 */
static bool file_unlisted(struct loader *ld, const struct cfg_option *opt)
{
	const char *why;
	char *path;
	bool out;
	if (!ld->opts || !ld->opts->data_dir || !opt || opt->kind != OPT_STRING || !*opt->str)
		return false;
	if (!ld->data_checked) {
		ld->data_real = config_data_dir(ld->cfg->root, ld->opts->data_dir);
		ld->data_checked = true;
	}
	if (!ld->data_real)
		return true;
	path = config_resolve_path(ld->cfg->root, opt->str);
	out = !config_path_inside(path, ld->data_real, &why);
	free(path);
	return out;
}

/* A Braze app's options: the API key (it goes into a header), rateLimits, restEndpoint
 * (https, plain http only on loopback; a bare host name gets https://). */
static void check_braze_options(struct loader *ld, const struct where *w, struct app_x *x)
{
	const struct cfg_option *key = cfg_options_get(&x->a.options, "apiKey");
	bool key_ok = true;
	for (const char *c = key && key->kind == OPT_STRING ? key->str : ""; *c; c++)
		key_ok &= *c > ' ' && *c < 0x7f;
	if (!key_ok) /* it goes into an HTTP header: no spaces, controls or line breaks */
		ld_err(ld, w, key->pos.line, key->pos.col, "options.apiKey",
		       "copy the key again from Braze's dashboard (Settings > APIs and Identifiers)",
		       "the API key %s contains spaces, line breaks or other characters an API key cannot have",
		       config_option_display(key));
	const struct cfg_option *rl = cfg_options_get(&x->a.options, "rateLimits");
	int64_t rl_n, rl_w;
	const char *rl_bad = NULL;
	if (rl && rl->kind == OPT_STRING && !catalog_rate_limit(rl->str, "", &rl_n, &rl_w, &rl_bad) &&
	    rl_bad)
		ld_err(ld, w, rl->pos.line, rl->pos.col, "options.rateLimits",
		       "write ENDPOINT=REQUESTS/SECONDS, comma-separated, e.g. \"track=3000/3,delete=20000/60\" "
		       "(endpoints: track, delete, export_ids, subscription)",
		       "rateLimits \"%s\" is not valid%s%s%s", config_option_display(rl),
		       rl->secret ? "" : " at \"", rl->secret ? "" : rl_bad, rl->secret ? "" : "\"");
	struct cfg_option *ep = (struct cfg_option *)cfg_options_get(&x->a.options, "restEndpoint");
	if (ep && ep->kind == OPT_STRING && *ep->str) {
		const char *s = ep->str;
		if (!strncmp(s, "https://", 8)) {
			/* fine */
		} else if (!strncmp(s, "http://", 7)) {
			const char *h = s + 7;
			size_t hl = strcspn(h, ":/");
			if (!((hl == 9 && !strncmp(h, "127.0.0.1", 9)) ||
			      (hl == 9 && !strncmp(h, "localhost", 9))))
				ld_err(ld, w, ep->pos.line, ep->pos.col, "options.restEndpoint",
				       "use an https:// endpoint such as \"https://rest.iad-01.braze.com\"",
				       "plain http endpoint \"%s\" is only allowed for 127.0.0.1 and localhost",
				       config_option_display(ep));
		} else if (strstr(s, "://")) {
			ld_err(ld, w, ep->pos.line, ep->pos.col, "options.restEndpoint",
			       "use an https:// endpoint such as \"https://rest.iad-01.braze.com\"",
			       "unsupported URL scheme in endpoint \"%s\"", config_option_display(ep));
		} else {
			ep->str = arena_printf(ld->a, "https://%s", s);
		}
	}
}

void ld_load_app(struct loader *ld, const struct where *w, const struct j5_node *o, size_t order)
{
	struct app_x *x = arena_zalloc(ld->a, sizeof(*x));
	const struct j5_member *tm;
	const char *type;
	x->w = *w;
	x->order = order;
	ld_read_head(ld, w, o, app_fields, ARRAY_SIZE(app_fields), "an App", &x->a.id, &x->a.name, &x->a.pos);
	type = ld_req_str(ld, w, o, "type", &tm);
	x->a.type = type;
	if (ld_skip_export_only(ld, w, tm, type, "app and its destinations are"))
		return;
	x->cat = catalog_app(type);
	ld_read_options(ld, w, ld_get_obj(o, "options"), "APP", x->cat && x->cat->supported ? x->cat->options : NULL,
			&x->a.options);
	if (type) {
		x->cat = catalog_app(type);
		if (ld_known_type(ld, w, tm, type, "app", x->cat, catalog_app_types) && !x->cat->supported) {
			size_t n;
			const char *const *names = catalog_app_types(&n);
			struct strbuf hint = STRBUF_INIT;
			strbuf_addstr(&hint, "joey supports these app types:");
			for (size_t t = 0; t < n; t++) {
				const struct catalog_app *ca = catalog_app(names[t]);
				if (ca && ca->supported)
					strbuf_addf(&hint, " \"%s\"", names[t]);
			}
			ld_err(ld, w, NPOS(tm->value), "type", arena_strdup(ld->a, hint.buf),
			       "app type \"%s\" is not supported yet by joey", type);
			strbuf_release(&hint);
		}
	}
	if (x->cat && x->cat->supported) {
		ld_check_options(ld, w, &x->a.options, x->cat->options,
				 arena_printf(ld->a, "%s %s app", ld_article(type), type), o->line, o->col);
		if (!strcmp(type, "braze"))
			check_braze_options(ld, w, x);
		x->a.file_unlisted = file_unlisted(ld, cfg_options_get(&x->a.options, "file"));
	}
	ld_add_obj(ld, CLASS_APP, x);
}

/* ---- files named by options (config_opts.check_files) ---- */

/*
 * An SQLite app that only holds sync logs (no source reads it) may name a file that
 * does not exist yet, in a directory that does: the log writer creates it.
 */
static bool sync_log_file_ok(const struct config *cfg, const struct cfg_app *app)
{
	const struct cfg_option *opt = cfg_options_get(&app->options, "file");
	bool log = false, ok = false;
	struct stat sb;
	for (size_t i = 0; i < cfg->n_destinations; i++)
		log |= cfg->destinations[i]->sync_log_app == app;
	for (size_t i = 0; i < cfg->n_sources; i++)
		if (cfg->sources[i]->app == app)
			return false;
	if (!log || !app->type || strcmp(app->type, "sqlite") || !opt || opt->kind != OPT_STRING || !opt->str ||
	    !*opt->str || !cfg->root)
		return false;
	char *path = config_resolve_path(cfg->root, opt->str);
	if (stat(path, &sb) != 0) {
		char *slash = strrchr(path, '/');
		if (slash && slash != path) {
			*slash = 0;
			ok = stat(path, &sb) == 0 && S_ISDIR(sb.st_mode);
		}
	}
	free(path);
	return ok;
}

void ld_check_files(struct loader *ld)
{
	struct config *cfg = ld->cfg;
	struct strbuf msg = STRBUF_INIT, hint = STRBUF_INIT;

	for (size_t i = 0; i < cfg->n_apps; i++) {
		struct app_x *x = (struct app_x *)cfg->apps[i];
		const struct cfg_option *opt = cfg_options_get(&x->a.options, "file");
		if (!x->cat || !x->cat->supported || !opt)
			continue;
		strbuf_reset(&msg);
		strbuf_reset(&hint);
		if (sync_log_file_ok(cfg, &x->a))
			continue;
		if (config_file_problem(cfg, &x->a, &msg, &hint))
			ld_err(ld, &x->w, opt->pos.line, opt->pos.col, "options.file", hint.len ? hint.buf : NULL,
			       "%s", msg.buf);
	}
	strbuf_release(&msg);
	strbuf_release(&hint);
}
