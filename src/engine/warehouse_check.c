/*
 * warehouse_check.c: whether the warehouse diff can serve a run (warehouse_check: the
 * reasons it falls back to the streaming diff, no I/O) and the configuration
 * fingerprint a digest is valid under (warehouse_fingerprint). Owns nothing. Called by
 * the diff (diff.c, before it opens the warehouse diff) and warehouse_open.
 */
#include <inttypes.h>
#include <string.h>

#include "engine/warehouse_internal.h"

/* ---- eligibility ---- */

static bool group_is_relative(const struct cfg_group *g)
{
	for (size_t i = 0; g && i < g->n_rules; i++)
		if (g->rules[i].op == ROP_RELATIVE_GT || g->rules[i].op == ROP_RELATIVE_LT)
			return true;
	return false;
}

bool warehouse_check(const struct config *cfg, const struct cfg_model *model,
		     struct cfg_destination *const *dests, size_t n_dests, struct state *st,
		     const struct source_read *read, struct strbuf *why)
{
	(void)cfg;
	strbuf_reset(why);
	if (!n_dests) {
		strbuf_addstr(why, "no destination to compare");
		return false;
	}
	if (strcmp(state_backend_name(st), "PostgreSQL") || !state_location(st)) {
		if (state_location(st) && state_path_is_url(state_location(st)))
			strbuf_addf(why, "state store \"%s\" does not exist yet", state_path(st));
		else
			strbuf_addf(why, "the state store is %s: the warehouse diff needs it in PostgreSQL, in the "
					 "sources' database",
				    state_backend_name(st));
		return false;
	}
	if (read && read->since_column) {
		strbuf_addf(why, "model \"%s\" is read incrementally (schedule column \"%s\"): "
				 "incremental reads stay streaming",
			    model->id, read->since_column);
		return false;
	}
	if (read && (read->range || read->keys || read->digest)) {
		strbuf_addstr(why, "the read is limited to a key range (a worker's part)");
		return false;
	}
	const struct cfg_app *app = NULL;
	for (size_t i = 0; i < model->n_sources; i++) {
		const struct cfg_source *src = model->sources[i];
		if (!src->app || strcmp(src->app->type, "postgres")) {
			strbuf_addf(why, "source \"%s\" is not in PostgreSQL (app type \"%s\")", src->id,
				    src->app ? src->app->type : "?");
			return false;
		}
		if (!app) {
			app = src->app;
			continue;
		}
		if (src->app != app &&
		    (strcmp(wh_opt_or(app, "host", "localhost"), wh_opt_or(src->app, "host", "localhost")) ||
		     strcmp(wh_opt_or(app, "port", "5432"), wh_opt_or(src->app, "port", "5432")) ||
		     strcmp(wh_opt_or(app, "database", ""), wh_opt_or(src->app, "database", "")) ||
		     strcmp(wh_opt_or(app, "schema", "public"), wh_opt_or(src->app, "schema", "public")))) {
			strbuf_addf(why, "the sources of model \"%s\" are in different databases or schemas "
					 "(apps \"%s\" and \"%s\")",
				    model->id, app->id, src->app->id);
			return false;
		}
	}
	if (!app || !model->primary_source) {
		strbuf_addf(why, "model \"%s\" has no primary source", model->id);
		return false;
	}
	for (size_t j = 0; j < n_dests; j++) {
		const struct cfg_destination *d = dests[j];
		const struct cfg_group *rel = NULL;
		if (d->collection == COLL_GROUP && group_is_relative(d->group))
			rel = d->group;
		for (size_t k = 0; !rel && k < d->n_group_maps; k++)
			if (group_is_relative(d->group_maps[k].group))
				rel = d->group_maps[k].group;
		if (rel) {
			strbuf_addf(why, "destination \"%s\" uses group \"%s\", whose rules depend on the "
					 "current time",
				    d->id, rel->id);
			return false;
		}
	}
	return true;
}

/* ---- the fingerprint ---- */

static void fp_rule(struct strbuf *sb, const struct cfg_rule *r)
{
	strbuf_addf(sb, "rule %s %s %d %s %d %.17g %" PRId64 " %d %.17g %d %d\n",
		    r->property ? r->property->id : r->pseudo_created_at ? "(createdAt)" : "?",
		    rule_op_name(r->op), r->match != NULL, r->match ? r->match : "", r->match_is_null,
		    r->match_num, r->match_ms, r->match_bool, r->rel_number, (int)r->rel_unit, r->rel_add);
}

static void fp_group(struct strbuf *sb, const char *role, const struct cfg_group *g)
{
	if (!g) {
		strbuf_addf(sb, "%s (none)\n", role);
		return;
	}
	strbuf_addf(sb, "%s group %s any=%d rules=%zu\n", role, g->id, g->match_any, g->n_rules);
	for (size_t i = 0; i < g->n_rules; i++)
		fp_rule(sb, &g->rules[i]);
}

void warehouse_fingerprint(const struct cfg_destination *dest, struct slice extra,
			   unsigned char out[STATE_HASH_LEN])
{
	const struct cfg_model *m = dest->model;
	struct strbuf sb = STRBUF_INIT;

	strbuf_addf(&sb, "%s\nmodel %s key %s %s\n", WH_FORMAT, m->id,
		    m->primary_key ? m->primary_key->id : "?",
		    m->primary_key ? prop_type_name(m->primary_key->type) : "?");
	for (size_t s = 0; s < m->n_sources; s++) {
		const struct cfg_source *src = m->sources[s];
		strbuf_addf(&sb, "source %s\n", src->id);
		for (size_t i = 0; i < src->n_properties; i++) {
			const struct cfg_property *p = src->properties[i];
			strbuf_addf(&sb, "property %s %s array=%d\n", p->id, prop_type_name(p->type),
				    p->is_array);
		}
	}
	strbuf_addf(&sb, "destination type %s sync %s collection %s\n", dest->type ? dest->type : "",
		    sync_mode_name(dest->sync_mode), collection_name(dest->collection));
	fp_group(&sb, "scope", dest->collection == COLL_GROUP ? dest->group : NULL);
	for (size_t i = 0; i < dest->n_mapping; i++)
		strbuf_addf(&sb, "map %s <- %s\n", dest->mapping[i].remote,
			    dest->mapping[i].property ? dest->mapping[i].property->id : "?");
	for (size_t i = 0; i < dest->n_group_maps; i++) {
		strbuf_addf(&sb, "membership %s\n", dest->group_maps[i].remote);
		fp_group(&sb, "member", dest->group_maps[i].group);
	}
	strbuf_addstr(&sb, "statements\n");
	strbuf_addslice(&sb, extra);
	state_hash(sb.buf, sb.len, out);
	strbuf_release(&sb);
}
