/*
 * impact.c: what a config write would do to Braze users, judged before it is written
 * (config_write's approve callback, docs/api.md "Destructive changes").
 *
 * A change to a destination, or to a group, property, source or model that feeds one,
 * is planned twice (plan.h, a full read, nothing sent): with the config as it is and as
 * it would be. When the second plan deletes or unsubscribes more users, takes more
 * users out of subscription groups, or the mass-delete guard is loosened, the change
 * is destructive: it is written only when the request carries ?confirm=<token>, the
 * token of exactly this impact (a hash of it). Otherwise 409 answers with the impact in
 * words and numbers and the token. A client that skips the UI cannot delete silently,
 * and a confirmation given for one impact does not cover another (the data changed
 * meanwhile).
 *
 * An app write whose Braze key or endpoint is new is checked against Braze first
 * (dest_ops.check, the cheapest calls that need the permissions a run needs); a key
 * Braze refuses is not written unless the request says ?unverified=true (422 with a
 * plain explanation otherwise).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/strbuf.h"
#include "base/xalloc.h"
#include "config/write.h"
#include "dest/dest.h"
#include "engine/plan.h"
#include "server/serverp.h"

struct dest_impact {
	uint64_t deletes, unsubscribes, group_exits, state_records;
	double guard;
	bool tripped;
};

/* "1,234,567" */
static void add_count(struct strbuf *sb, uint64_t n)
{
	char digits[32];
	int len = snprintf(digits, sizeof(digits), "%" PRIu64, n);
	for (int i = 0; i < len; i++) {
		if (i && (len - i) % 3 == 0)
			strbuf_addch(sb, ',');
		strbuf_addch(sb, digits[i]);
	}
}

static void add_users(struct strbuf *sb, uint64_t n)
{
	add_count(sb, n);
	strbuf_addstr(sb, n == 1 ? " Braze user" : " Braze users");
}

/* The model a write of (cls, id) concerns in cfg, or NULL (not there, or no effect). */
static const struct cfg_model *model_of(const struct config *cfg, enum cfg_class cls, const char *id)
{
	switch (cls) {
	case CLASS_MODEL:
		return config_model(cfg, id);
	case CLASS_SOURCE:
		for (size_t i = 0; i < cfg->n_sources; i++)
			if (!strcmp(cfg->sources[i]->id, id))
				return cfg->sources[i]->model;
		return NULL;
	case CLASS_PROPERTY:
		for (size_t i = 0; i < cfg->n_properties; i++)
			if (!strcmp(cfg->properties[i]->id, id))
				return cfg->properties[i]->source->model;
		return NULL;
	case CLASS_GROUP:
		for (size_t i = 0; i < cfg->n_groups; i++)
			if (!strcmp(cfg->groups[i]->id, id))
				return cfg->groups[i]->model;
		return NULL;
	default:
		return NULL;
	}
}

/*
 * Plan the destinations of cfg that the write touches; fill out[] (n_out = how many
 * destinations cfg has, by index). only: one destination id, or NULL for model m's.
 */
static enum jerr plan_some(struct server *s, const struct config *cfg, const char *only, const struct cfg_model *m,
			   struct dest_impact *out, bool *have, struct jerror *err)
{
	struct plan p;
	struct state *st = NULL;
	struct plan_opts po = { .only_dest = only, .max_delete_percent = -1, .full = true };
	size_t n = 0;
	for (size_t i = 0; i < cfg->n_destinations; i++)
		if (only ? !strcmp(cfg->destinations[i]->id, only) : cfg->destinations[i]->model == m)
			n++;
	if (!n)
		return JERR_OK;
	/* one destination: plan only it; more: every destination (one pass per model) */
	if (!only && n == 1)
		for (size_t i = 0; i < cfg->n_destinations; i++)
			if (cfg->destinations[i]->model == m)
				po.only_dest = cfg->destinations[i]->id;
	enum jerr rc = plan_init(&p, cfg, &po, err);
	if (rc)
		return rc;
	rc = server_state_read(s, &st, err);
	if (!rc)
		rc = plan_compute(&p, st, err);
	for (size_t k = 0; !rc && k < p.n_dests; k++) {
		const struct plan_dest *pd = &p.dests[k];
		for (size_t i = 0; i < cfg->n_destinations; i++) {
			if (cfg->destinations[i] != pd->dest)
				continue;
			if (only ? strcmp(pd->dest->id, only) : pd->dest->model != m)
				continue;
			out[i] = (struct dest_impact){ pd->counts[DIFF_DELETE], pd->counts[DIFF_UNSUBSCRIBE], pd->unsubscribes,
						       pd->state_records, pd->max_delete_percent, pd->guard_tripped };
			have[i] = true;
		}
	}
	state_close(st);
	plan_release(&p);
	return rc;
}

/* 64-bit FNV-1a of text, as 16 hex digits. */
static void token_of(const char *text, char out[17])
{
	uint64_t h = 1469598103934665603ULL;
	for (const unsigned char *p = (const unsigned char *)text; *p; p++) {
		h ^= *p;
		h *= 1099511628211ULL;
	}
	snprintf(out, 17, "%016" PRIx64, h);
}

static json_t *side_json(const struct dest_impact *d)
{
	return json_pack("{s:I,s:I,s:I,s:I,s:f,s:b}", "deletes", (json_int_t)d->deletes, "unsubscribes",
			 (json_int_t)d->unsubscribes, "group_exits", (json_int_t)d->group_exits, "users_managed",
			 (json_int_t)d->state_records, "max_delete_percent", d->guard, "guard_holds", d->tripped);
}

/* The end of a reason: the count before the change, "1,234 without this change)". */
static void add_before(struct strbuf *r, uint64_t n)
{
	add_count(r, n);
	strbuf_addstr(r, " without this change)");
}

/* The reason written in r added to reasons; r emptied for the next one. */
static void add_reason(json_t *reasons, struct strbuf *r)
{
	json_array_append_new(reasons, json_string(r->buf));
	strbuf_reset(r);
}

/*
 * The impact of one destination as JSON ({id,name,before,after,destructive,reasons}),
 * *destructive set when it takes more users out than before.
 */
static json_t *dest_json(const struct cfg_destination *d, const struct dest_impact *b, const struct dest_impact *a,
			 bool *destructive)
{
	json_t *reasons = json_array();
	struct strbuf r = STRBUF_INIT;
	if (a->deletes > b->deletes) {
		strbuf_addstr(&r, "the next run would delete ");
		add_users(&r, a->deletes);
		if (b->deletes) {
			strbuf_addstr(&r, " (");
			add_before(&r, b->deletes);
		} else {
			strbuf_addstr(&r, " (none without this change)");
		}
		add_reason(reasons, &r);
	}
	if (a->unsubscribes > b->unsubscribes) {
		strbuf_addstr(&r, "the next run would unsubscribe ");
		add_users(&r, a->unsubscribes);
		strbuf_addstr(&r, " (they stop being sent and are marked unsubscribed in Braze; ");
		add_before(&r, b->unsubscribes);
		add_reason(reasons, &r);
	}
	if (a->group_exits > b->group_exits) {
		add_users(&r, a->group_exits);
		strbuf_addstr(&r, " would be taken out of a subscription group or the groups attribute (");
		add_before(&r, b->group_exits);
		add_reason(reasons, &r);
	}
	if (a->guard > b->guard) {
		strbuf_addf(&r, "the mass-delete guard is loosened from %g%% to %g%%: a run may then take out up to %g%% of the users "
				"it manages before it stops to ask",
			    b->guard, a->guard, a->guard);
		add_reason(reasons, &r);
	}
	*destructive = json_array_size(reasons) > 0;
	if (*destructive && a->tripped)
		json_array_append_new(reasons, json_string("the mass-delete guard would hold that run until an admin or an "
							   "editor approves it on the Runs page"));
	strbuf_release(&r);
	return json_pack("{s:s,s:s,s:o,s:o,s:b,s:o}", "id", d->id, "name", d->name ? d->name : d->id, "before", side_json(b),
			 "after", side_json(a), "destructive", *destructive, "reasons", reasons);
}

/* The refusal of a destructive change: 409 with the impact and its token. */
static void refuse(struct impact_ask *ask, json_t *impact, const char *summary)
{
	json_t *j = json_pack("{s:s,s:s,s:s,s:O}", "error", "this change would take users out of Braze", "detail", summary,
			      "hint",
			      "read the impact; to go ahead, send the same request again with ?confirm= and the token "
			      "(the UI asks you to confirm)",
			      "impact", impact);
	ask->status = 409;
	ask->refusal = j;
}

static enum jerr judge_change(struct impact_ask *ask, const struct config *staged, struct jerror *err)
{
	struct cfg_ref *ref = server_cfg_get(ask->s);
	const struct config *now = ref->cfg;
	const char *only = NULL;
	const struct cfg_model *m_after = NULL, *m_before = NULL;
	struct jerror perr = JERROR_INIT;
	enum jerr rc = JERR_OK;
	struct dest_impact *before = NULL, *after = NULL;
	bool *have_before = NULL, *have_after = NULL;
	json_t *dests = json_array(), *impact = NULL;
	struct strbuf summary = STRBUF_INIT;
	bool any = false, unknown = false;

	if (ask->cls == CLASS_DESTINATION) {
		if (ask->op == CFG_WRITE_DELETE)
			goto out; /* removing a destination sends nothing */
		only = ask->id;
	} else {
		m_after = ask->op == CFG_WRITE_DELETE ? NULL : model_of(staged, ask->cls, ask->id);
		m_before = model_of(now, ask->cls, ask->id);
		if (!m_after && m_before)
			m_after = config_model(staged, m_before->id);
		if (m_after)
			m_before = config_model(now, m_after->id);
		if (!m_after)
			goto out;
	}
	before = xcalloc(now->n_destinations + 1, sizeof(*before));
	have_before = xcalloc(now->n_destinations + 1, sizeof(*have_before));
	after = xcalloc(staged->n_destinations + 1, sizeof(*after));
	have_after = xcalloc(staged->n_destinations + 1, sizeof(*have_after));
	if (plan_some(ask->s, staged, only, m_after, after, have_after, &perr) ||
	    ((only || m_before) && plan_some(ask->s, now, only, m_before, before, have_before, &perr)))
		unknown = true;
	for (size_t i = 0; !unknown && i < staged->n_destinations; i++) {
		if (!have_after[i])
			continue;
		const struct cfg_destination *d = staged->destinations[i];
		struct dest_impact b = { .guard = d->max_delete_percent };
		for (size_t k = 0; k < now->n_destinations; k++)
			if (have_before[k] && !strcmp(now->destinations[k]->id, d->id))
				b = before[k];
		bool destructive;
		json_array_append_new(dests, dest_json(d, &b, &after[i], &destructive));
		if (destructive) {
			json_t *reasons = json_object_get(json_array_get(dests, json_array_size(dests) - 1), "reasons");
			strbuf_addf(&summary, "%s“%s”: ", summary.len ? "; " : "", d->name ? d->name : d->id);
			for (size_t k = 0; k < json_array_size(reasons); k++)
				strbuf_addf(&summary, "%s%s", k ? "; " : "", json_string_value(json_array_get(reasons, k)));
			any = true;
		}
	}
	if (unknown) {
		json_decref(dests);
		dests = json_array();
		strbuf_reset(&summary);
		strbuf_addf(&summary, "joey could not work out what the next run would do (%s), so it cannot tell whether this "
				      "change deletes or unsubscribes users",
			    perr.msg.buf);
		any = true;
	}
	if (!any)
		goto out;
	impact = json_pack("{s:s,s:s?,s:s,s:O,s:b,s:s}", "class", cfg_class_dir(ask->cls), "id", ask->id, "summary",
			   summary.buf, "destinations", dests, "unknown", unknown, "error", unknown ? perr.msg.buf : "");
	char *canon = json_dumps(impact, JSON_COMPACT | JSON_SORT_KEYS);
	char token[17];
	token_of(canon ? canon : "", token);
	free(canon);
	json_object_set_new(impact, "token", json_string(token));
	if (ask->confirm && !strcmp(ask->confirm, token)) {
		ask->confirmed = json_incref(impact); /* for the audit log */
		goto out;
	}
	refuse(ask, impact, summary.buf);
	rc = jerror_set(err, JERR_USAGE, "this change would take users out of Braze");
	jerror_detail(err, "%s", summary.buf);
out:
	json_decref(impact);
	json_decref(dests);
	free(before);
	free(after);
	free(have_before);
	free(have_after);
	strbuf_release(&summary);
	jerror_release(&perr);
	server_cfg_put(ask->s, ref);
	return rc;
}

/* Plain words for a failed key check (err as dest_ops.check filled it). */
const char *impact_key_words(const struct jerror *e, const char **action)
{
	if (e->code == JERR_AUTH && strstr(e->msg.buf, "lacks")) {
		*action = "In Braze, open Settings → API Keys and give the key the permissions users.track, users.delete, "
			"users.export.ids and subscription.status.set, or make a new key with them.";
		return "Braze accepted this key, but it lacks a permission joey needs to keep users in sync.";
	}
	if (e->code == JERR_AUTH) {
		*action = "Copy the key again from Braze (Settings → API Keys). Check also the REST endpoint: it must be the "
			"instance of the key's workspace (a dashboard at dashboard-01 uses rest.iad-01.braze.com).";
		return "Braze did not accept this API key.";
	}
	if (e->code == JERR_HTTP) {
		*action = "Check the REST endpoint address and that this server can reach the internet.";
		return "joey could not reach Braze at this address.";
	}
	if (strstr(e->msg.buf, "does not serve")) {
		*action = "Use the REST endpoint of your Braze instance, e.g. https://rest.iad-01.braze.com.";
		return "This address does not answer like Braze's REST API.";
	}
	*action = "Braze may be having trouble: try again in a few minutes, or save anyway and test the connection later.";
	return "Braze answered with an error, so the key could not be checked.";
}

static bool same_opt(const struct cfg_app *a, const struct cfg_app *b, const char *key)
{
	const char *x = cfg_options_str(&a->options, key), *y = cfg_options_str(&b->options, key);
	return x && y && !strcmp(x, y);
}

static enum jerr judge_app(struct impact_ask *ask, const struct config *staged, struct jerror *err)
{
	if (ask->op == CFG_WRITE_DELETE || ask->unverified)
		return JERR_OK;
	const struct cfg_app *app = config_app(staged, ask->id);
	const struct dest_ops *ops = app ? dest_ops_for_app(app->type) : NULL;
	if (!ops)
		return JERR_OK;
	struct cfg_ref *ref = server_cfg_get(ask->s);
	const struct cfg_app *old = config_app(ref->cfg, ask->id);
	bool same = old && !strcmp(old->type, app->type) && same_opt(old, app, "apiKey") &&
		    same_opt(old, app, "restEndpoint");
	server_cfg_put(ask->s, ref);
	if (same)
		return JERR_OK; /* the key was checked (or saved anyway) when it was set */
	struct jerror ce = JERROR_INIT;
	struct dest_opts o = ask->s->opts.dest;
	o.timeout_ms = o.timeout_ms > 15000 ? 15000 : o.timeout_ms;
	enum jerr rc = JERR_OK;
	if (ops->check(app, &o, &ce)) {
		const char *action;
		const char *words = impact_key_words(&ce, &action);
		ask->status = 422;
		ask->refusal = json_pack("{s:s,s:s,s:s,s:s,s:{s:s,s:s?}}", "error", "the Braze key was not saved", "detail",
					 words, "hint", action, "needs", "unverified", "check", "error", ce.msg.buf, "detail",
					 ce.detail.len ? ce.detail.buf : NULL);
		rc = jerror_set(err, JERR_USAGE, "the Braze key was not saved");
	}
	jerror_release(&ce);
	return rc;
}

char *impact_scope(const struct config *staged, enum cfg_class cls, const char *id)
{
	struct strbuf sb = STRBUF_INIT;
	const struct cfg_model *m;
	if (cls == CLASS_DESTINATION) {
		strbuf_addf(&sb, "destination:%s", id);
	} else if (cls != CLASS_APP && cls != CLASS_SCHEDULE && cls != CLASS_ALERT && (m = model_of(staged, cls, id))) {
		strbuf_addf(&sb, "model:%s", m->id);
	} else {
		return NULL;
	}
	return strbuf_detach(&sb, NULL);
}

enum jerr impact_approve(void *ctx, const struct config *staged, struct jerror *err)
{
	struct impact_ask *ask = ctx;
	if (!ask->id) /* config_write refuses an object without an id before this */
		return JERR_OK;
	if (ask->cls == CLASS_APP)
		return judge_app(ask, staged, err);
	if (ask->cls == CLASS_SCHEDULE)
		return JERR_OK;
	return judge_change(ask, staged, err);
}
