/*
 * config.c: the config loader's public entry points (config.h): config_load runs the three
 * passes (secrets, files and objects in load.c, links in link.c; see config_internal.h),
 * config_free, and the lookups by id. It owns the struct config it returns and the
 * loader state it frees before returning.
 */
#include "config/config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <sodium.h>

#include "base/xalloc.h"
#include "config/config_internal.h"

/* The snapshot of the files read (snap, borrowed) and its digest: the generation. */
static void config_set_generation(struct config *cfg, const struct strbuf *snap)
{
	unsigned char h[crypto_hash_sha256_BYTES];
	char *copy = arena_alloc(&cfg->arena, snap->len + 1);
	memcpy(copy, snap->buf, snap->len);
	copy[snap->len] = 0;
	cfg->snapshot = copy;
	cfg->snapshot_len = snap->len;
	crypto_hash_sha256(h, (const unsigned char *)snap->buf, snap->len);
	for (size_t i = 0; i < sizeof(h); i++)
		snprintf(cfg->generation + 2 * i, 3, "%02x", h[i]);
}

/* ---- public API ---- */

enum jerr config_load(const char *dir, const struct config_opts *opts, struct config **out,
		      struct jerror *err)
{
	struct config *cfg;
	struct loader ld;
	struct stat st;
	char *root = NULL;

	*out = NULL;
	if (stat(dir, &st) != 0)
		return jerror_set(err, errno == ENOENT ? JERR_CONFIG : JERR_IO,
				  "could not open config directory \"%s\": %s", dir, strerror(errno));
	if (!S_ISDIR(st.st_mode))
		return jerror_set(err, JERR_CONFIG, "config path \"%s\" is not a directory", dir);

	if (opts && opts->root) {
		root = xstrdup(opts->root);
	} else if (config_project_root(dir, &root, err)) {
		return err->code;
	}

	cfg = xcalloc(1, sizeof(*cfg));
	arena_init(&cfg->arena);
	cfg->dir = arena_strdup(&cfg->arena, dir);
	cfg->root = arena_strdup(&cfg->arena, root);
	free(root);
	memset(&ld, 0, sizeof(ld));
	ld.cfg = cfg;
	ld.a = &cfg->arena;
	ld.opts = opts;

	strbuf_init(&ld.snap, 0);
	ld_load_secrets(&ld);
	if (opts && opts->snapshot)
		ld_load_snapshot(&ld, opts->snapshot, opts->snapshot_len);
	else
		ld_load_files(&ld, dir, &st);
	config_set_generation(cfg, &ld.snap);
	strbuf_release(&ld.snap);

	ld_check_plain_env(&ld);
	ld_link_all(&ld);
	if (opts && opts->check_files)
		ld_check_files(&ld);
	for (int c = 0; c < CLASS__COUNT; c++)
		free(ld.objs[c]);
	free(ld.broken_ids);
	free(ld.plain_env);
	free(ld.data_real);
	ld_sort_diags(cfg);

	*out = cfg;
	if (cfg->n_errors) {
		jerror_set(err, JERR_CONFIG, "config \"%s\" is invalid: %zu error%s", dir, cfg->n_errors,
			   cfg->n_errors == 1 ? "" : "s");
		return JERR_CONFIG;
	}
	return JERR_OK;
}

static const struct cfg_option *literal_in(const struct cfg_options *o)
{
	for (size_t i = 0; i < o->n; i++) {
		const struct cfg_option *x = &o->items[i];
		if (x->sensitive && x->kind == OPT_STRING && !x->ref && x->str && *x->str)
			return x;
	}
	return NULL;
}

const struct cfg_option *config_literal_secret(const struct config *cfg, const char **owner)
{
	const struct cfg_option *x = NULL;
	for (size_t i = 0; i < cfg->n_apps && !x; i++)
		if ((x = literal_in(&cfg->apps[i]->options)) && owner)
			*owner = cfg->apps[i]->id;
	for (size_t i = 0; i < cfg->n_alerts && !x; i++)
		if ((x = literal_in(&cfg->alerts[i]->options)) && owner)
			*owner = cfg->alerts[i]->id;
	return x;
}

void config_free(struct config *cfg)
{
	if (!cfg)
		return;
	free(cfg->diags);
	arena_release(&cfg->arena);
	free(cfg);
}

static void *find_public(void *const *arr, size_t n, const char *id)
{
	return ld_find_id(arr, n, id);
}

struct cfg_model *config_model(const struct config *cfg, const char *id)
{
	return find_public((void *const *)cfg->models, cfg->n_models, id);
}

struct cfg_destination *config_destination(const struct config *cfg, const char *id)
{
	return find_public((void *const *)cfg->destinations, cfg->n_destinations, id);
}

struct cfg_app *config_app(const struct config *cfg, const char *id)
{
	return find_public((void *const *)cfg->apps, cfg->n_apps, id);
}

struct cfg_alert *config_alert(const struct config *cfg, const char *id)
{
	return find_public((void *const *)cfg->alerts, cfg->n_alerts, id);
}
