/* plan.c: counts, mass-delete guard and the printed plan (text and JSON). */
#include "engine/plan.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "base/arena.h"
#include "base/xalloc.h"
#include "dest/dest.h"
#include "engine/marks.h"

enum jerr plan_init(struct plan *p, const struct config *cfg, const struct plan_opts *opts,
		    struct jerror *err)
{
	memset(p, 0, sizeof(*p));
	p->cfg = cfg;
	p->opts = *opts;
	p->dests = xcalloc(cfg->n_destinations ? cfg->n_destinations : 1, sizeof(*p->dests));
	p->models = xcalloc(cfg->n_models ? cfg->n_models : 1, sizeof(*p->models));
	for (size_t i = 0; i < cfg->n_destinations; i++) {
		const struct cfg_destination *d = cfg->destinations[i];
		if (opts->only_dest && strcmp(opts->only_dest, d->id))
			continue;
		struct plan_dest *pd = &p->dests[p->n_dests++];
		pd->dest = d;
		pd->max_delete_percent = opts->max_delete_percent >= 0 ? opts->max_delete_percent
								       : d->max_delete_percent;
	}
	if (opts->only_dest && !p->n_dests) {
		enum jerr rc = jerror_set(err, JERR_USAGE, "destination \"%s\" does not exist", opts->only_dest);
		plan_release(p);
		if (cfg->n_destinations) {
			struct strbuf sb = STRBUF_INIT;
			for (size_t i = 0; i < cfg->n_destinations; i++)
				strbuf_addf(&sb, "%s\"%s\"", i ? ", " : "", cfg->destinations[i]->id);
			jerror_hint(err, "destinations in this config: %s", sb.buf);
			strbuf_release(&sb);
		}
		return rc;
	}
	return JERR_OK;
}

size_t plan_data_points(const struct payload_diff *d)
{
	size_t n = 0;
	for (size_t i = 0; i < d->n_changes; i++)
		n += dest_field_billable(d->changes[i].field);
	/* `groups` array add/remove: one data point per value; subscription changes are free */
	for (size_t i = 0; i < d->n_added; i++)
		n += !dest_is_subscription_group(d->groups_added[i]);
	for (size_t i = 0; i < d->n_removed; i++)
		n += !dest_is_subscription_group(d->groups_removed[i]);
	return n;
}

struct visit_ctx {
	struct plan *p;
	struct plan_dest **map;
	size_t n_map;
	struct arena arena;
};

static struct plan_dest *find_dest(struct visit_ctx *vc, const struct cfg_destination *d)
{
	for (size_t i = 0; i < vc->n_map; i++)
		if (vc->map[i]->dest == d)
			return vc->map[i];
	return NULL;
}

static void key_json(FILE *f, const struct rkey *k)
{
	struct strbuf sb = STRBUF_INIT;
	strbuf_add_json_string(&sb, k->text.ptr, k->text.len);
	fputs(sb.buf, f);
	strbuf_release(&sb);
}

static void json_string_array(FILE *f, const char *const *items, size_t n)
{
	struct strbuf sb = STRBUF_INIT;
	strbuf_addch(&sb, '[');
	for (size_t i = 0; i < n; i++) {
		if (i)
			strbuf_addch(&sb, ',');
		strbuf_add_json_string(&sb, items[i], strlen(items[i]));
	}
	strbuf_addch(&sb, ']');
	fputs(sb.buf, f);
	strbuf_release(&sb);
}

static void spool_json(FILE *f, bool first, const struct diff_item *it, const struct payload_diff *d)
{
	fputs(first ? "\n" : ",\n", f);
	fputs("    {\"key\":", f);
	key_json(f, it->key);
	fprintf(f, ",\"action\":\"%s\"", diff_action_name(it->action));
	if (it->pending)
		fprintf(f, ",\"retry\":true,\"attempts\":%d", it->attempts);
	fputs(",\"changes\":{", f);
	for (size_t i = 0; i < d->n_changes; i++) {
		struct strbuf sb = STRBUF_INIT;
		strbuf_add_json_string(&sb, d->changes[i].field, strlen(d->changes[i].field));
		fprintf(f, "%s%s:{\"old\":%s,\"new\":%s}", i ? "," : "", sb.buf, d->changes[i].old_json,
			d->changes[i].new_json);
		strbuf_release(&sb);
	}
	fputs("},\"groups\":{\"add\":", f);
	json_string_array(f, d->groups_added, d->n_added);
	fputs(",\"remove\":", f);
	json_string_array(f, d->groups_removed, d->n_removed);
	fputs("}}", f);
}

static void spool_text(FILE *f, const struct diff_item *it, const struct payload_diff *d)
{
	static const char mark[] = { '+', '~', '-', '!', '=' };
	fprintf(f, "  %c %-11s %.*s", mark[it->action], diff_action_name(it->action), (int)it->key->text.len,
		it->key->text.ptr);
	if (it->pending)
		fprintf(f, "  (retry, %d failed attempt%s)", it->attempts, it->attempts == 1 ? "" : "s");
	fputc('\n', f);
	for (size_t i = 0; i < d->n_changes; i++) {
		if (it->action == DIFF_CREATE)
			fprintf(f, "      %s: %s\n", d->changes[i].field, d->changes[i].new_json);
		else
			fprintf(f, "      %s: %s -> %s\n", d->changes[i].field, d->changes[i].old_json,
				d->changes[i].new_json);
	}
	for (size_t i = 0; i < d->n_added; i++)
		fprintf(f, dest_is_subscription_group(d->groups_added[i]) ? "      subscribe: \"%s\"\n"
									   : "      groups: add \"%s\"\n",
			d->groups_added[i]);
	for (size_t i = 0; i < d->n_removed; i++)
		fprintf(f, dest_is_subscription_group(d->groups_removed[i]) ? "      unsubscribe: \"%s\"\n"
									     : "      groups: remove \"%s\"\n",
			d->groups_removed[i]);
}

/*
 * What the mass-delete guard weighs: deletes (sync) and unsubscribes (additive,
 * enrich) both take users out; the release of a placeholder does not count
 * (run_send_held).
 */
static uint64_t guard_weighed(const struct plan_dest *pd)
{
	return pd->counts[DIFF_DELETE] + pd->counts[DIFF_UNSUBSCRIBE] - pd->unguarded;
}

static enum jerr visit(void *ctx, const struct diff_item *it, struct jerror *err)
{
	struct visit_ctx *vc = ctx;
	struct plan_dest *pd = find_dest(vc, it->dest);
	struct payload_diff d;
	enum jerr rc;

	pd->counts[it->action]++;
	pd->unguarded += it->update_only;
	if (it->action == DIFF_UNCHANGED)
		return JERR_OK;
	if (it->pending)
		pd->retries++;
	arena_reset(&vc->arena);
	rc = (it->full ? payload_diff_full : payload_diff)(it->old_payload, it->new_payload, &vc->arena, &d, err);
	if (rc) {
		jerror_detail(err, "destination \"%s\", record \"%.*s\"", it->dest->id, (int)it->key->text.len,
			      it->key->text.ptr);
		return rc;
	}
	if (it->action != DIFF_DELETE)
		pd->data_points += plan_data_points(&d);
	pd->subscribes += d.n_added;
	pd->unsubscribes += d.n_removed;
	if (pd->details) {
		if (vc->p->opts.json)
			spool_json(pd->details, pd->n_details == 0, it, &d);
		else
			spool_text(pd->details, it, &d);
		pd->n_details++;
		if (ferror(pd->details))
			return jerror_set(err, JERR_IO, "could not write the plan details to a temporary file");
	}
	return JERR_OK;
}

/* The warehouse diff found n records of dest unchanged without reading them. */
static enum jerr visit_unchanged(void *ctx, const struct cfg_destination *dest, uint64_t n, struct jerror *err)
{
	struct plan_dest *pd = find_dest(ctx, dest);
	(void)err;
	pd->counts[DIFF_UNCHANGED] += n;
	return JERR_OK;
}

/*
 * The mass-delete guard weighs deletes against the destination's state rows in scope
 * (state_count). A full streaming pass counts them as it reads them (diff_opts.in_scope),
 * so no scan of their own is needed. A partial pass (an incremental schedule) reads only
 * the rows of the records it read, and counting every row would make it cost the whole
 * state instead of the changes: it counts (after the pass, on this connection: a plan
 * writes nothing, so that is the count before it) only when it would take someone out,
 * where the guard needs it; otherwise the destination's state_records is not counted.
 */
enum jerr plan_compute(struct plan *p, struct state *st, struct jerror *err)
{
	const struct config *cfg = p->cfg;
	struct visit_ctx vc = { .p = p };
	struct cfg_destination **dests = xcalloc(p->n_dests ? p->n_dests : 1, sizeof(*dests));
	uint64_t *in_scope = xcalloc(p->n_dests ? p->n_dests : 1, sizeof(*in_scope));
	enum jerr rc = JERR_OK;

	arena_init(&vc.arena);
	vc.map = xcalloc(p->n_dests ? p->n_dests : 1, sizeof(*vc.map));
	for (size_t i = 0; i < p->n_dests; i++) {
		struct plan_dest *pd = &p->dests[i];
		if (p->opts.details && !pd->details) {
			pd->details = tmpfile();
			if (!pd->details) {
				rc = jerror_set(err, JERR_IO, "could not create a temporary file for the plan details");
				jerror_hint(err, "check that TMPDIR (or /tmp) exists and is writable");
				goto out;
			}
		}
	}

	for (size_t m = 0; m < cfg->n_models; m++) {
		const struct cfg_model *model = cfg->models[m];
		size_t n = 0;
		vc.n_map = 0;
		for (size_t i = 0; i < p->n_dests; i++) {
			if (p->dests[i].dest->model != model)
				continue;
			dests[n++] = (struct cfg_destination *)p->dests[i].dest;
			vc.map[vc.n_map++] = &p->dests[i];
		}
		if (!n)
			continue;
		struct plan_model *pm = &p->models[p->n_models++];
		struct model_marks mk;
		pm->model = model;
		strbuf_init(&pm->since, 0);
		strbuf_init(&pm->also, 0);
		pm->schedules = json_array();
		rc = model_marks_load(cfg, model, st, p->opts.full, &mk, err);
		for (size_t i = 0; !rc && i < mk.n; i++) {
			const struct cfg_schedule *sc = mk.sched[i];
			if (!sc)
				continue;
			json_t *o = json_object();
			json_object_set_new(o, "id", json_string(sc->id));
			json_object_set_new(o, "source", json_string(sc->source->id));
			json_object_set_new(o, "since", mk.incremental ? json_string(mk.mark[i].buf) : json_null());
			json_array_append_new(pm->schedules, o);
			if (!pm->schedule) {
				pm->schedule = sc;
				if (mk.incremental)
					strbuf_addstr(&pm->since, mk.mark[i].buf);
			} else if (mk.incremental) {
				strbuf_addf(&pm->also, "; schedule \"%s\" since %s", sc->id, mk.mark[i].buf);
			} else {
				strbuf_addf(&pm->also, "; schedule \"%s\"", sc->id);
			}
		}
		pm->incremental = !rc && mk.incremental;
		snprintf(pm->why, sizeof(pm->why), "%s", mk.why);
		struct diff_visitor v = { visit, &vc };
		struct diff_opts dopts = { .read = mk.use_read ? &mk.read : NULL, .unchanged = visit_unchanged,
					   .scope = mk.scope.since_column ? &mk.scope : NULL, .in_scope = in_scope };
		dopts.mode = pm->diff = diff_mode_choose(dests, n, p->opts.diff_set ? &p->opts.diff : NULL);
		if (!rc)
			rc = diff_model_opts(cfg, model, dests, n, st, &dopts, &v, &pm->stats, NULL, &pm->report, err);
		model_marks_release(&mk);
		for (size_t i = 0; !rc && i < n; i++) {
			struct plan_dest *pd = vc.map[i];
			bool takes_out = pd->counts[DIFF_DELETE] + pd->counts[DIFF_UNSUBSCRIBE] > 0;
			pd->state_counted = true;
			if (in_scope[i] != DIFF_NOT_COUNTED)
				pd->state_records = in_scope[i];
			else if (pm->incremental && !takes_out)
				pd->state_counted = false;
			else
				rc = state_count(st, pd->dest->id, &pd->state_records, err);
		}
		if (rc)
			goto out;
	}

	for (size_t i = 0; i < p->n_dests; i++) {
		struct plan_dest *pd = &p->dests[i];
		uint64_t del = guard_weighed(pd);
		pd->guard_tripped = del > 0 && pd->state_records > 0 &&
				    (double)del * 100.0 > pd->max_delete_percent * (double)pd->state_records;
	}
out:
	arena_release(&vc.arena);
	free(vc.map);
	free(dests);
	free(in_scope);
	return rc;
}

bool plan_guard_tripped(const struct plan *p)
{
	for (size_t i = 0; i < p->n_dests; i++)
		if (p->dests[i].guard_tripped)
			return true;
	return false;
}

static void copy_spool(FILE *from, FILE *to)
{
	char buf[65536];
	size_t n;
	if (!from)
		return;
	fflush(from);
	rewind(from);
	while ((n = fread(buf, 1, sizeof(buf), from)) > 0)
		fwrite(buf, 1, n, to);
}

static const char *scope_text(const struct cfg_destination *d, char *buf, size_t len)
{
	switch (d->collection) {
	case COLL_MODEL:
		return "all records";
	case COLL_GROUP:
		snprintf(buf, len, "members of group \"%s\"", d->group ? d->group->id : "?");
		return buf;
	default:
		return "no records (collection none)";
	}
}

void plan_print_text(const struct plan *p, FILE *out)
{
	char sbuf[512];
	for (size_t i = 0; i < p->n_dests; i++) {
		const struct plan_dest *pd = &p->dests[i];
		const struct cfg_destination *d = pd->dest;
		fprintf(out, "destination \"%s\" (%s mode; model \"%s\", %s)\n", d->id, sync_mode_name(d->sync_mode),
			d->model->id, scope_text(d, sbuf, sizeof(sbuf)));
		fprintf(out, "  create       %10llu%s\n", (unsigned long long)pd->counts[DIFF_CREATE],
			d->sync_mode == SYNC_ENRICH ? "  (enrich: only users Braze already has are updated)" : "");
		fprintf(out, "  update       %10llu\n", (unsigned long long)pd->counts[DIFF_UPDATE]);
		fprintf(out, "  delete       %10llu\n", (unsigned long long)pd->counts[DIFF_DELETE]);
		fprintf(out, "  unsubscribe  %10llu%s\n", (unsigned long long)pd->counts[DIFF_UNSUBSCRIBE],
			d->sync_mode != SYNC_SYNC ? "  (left scope: Braze user kept, groups removed)" : "");
		fprintf(out, "  unchanged    %10llu\n", (unsigned long long)pd->counts[DIFF_UNCHANGED]);
		fprintf(out, "  data points  %10llu  (attribute values sent)\n",
			(unsigned long long)pd->data_points);
		if (pd->subscribes || pd->unsubscribes)
			fprintf(out, "  group changes: %llu subscribe, %llu unsubscribe\n",
				(unsigned long long)pd->subscribes, (unsigned long long)pd->unsubscribes);
		if (pd->retries)
			fprintf(out, "  retries: %llu record%s failed last time and will be sent again\n",
				(unsigned long long)pd->retries, pd->retries == 1 ? "" : "s");
		if (pd->guard_tripped)
			fprintf(out,
				"  ! mass-delete guard: %llu of %llu records (%.1f%%) would be %s, over the %g%% limit\n"
				"    'joey run' will hold these back without --force\n",
				(unsigned long long)guard_weighed(pd), (unsigned long long)pd->state_records,
				100.0 * (double)guard_weighed(pd) / (double)pd->state_records,
				d->sync_mode == SYNC_SYNC ? "deleted" : "unsubscribed", pd->max_delete_percent);
		if (pd->details && pd->n_details) {
			fputs("  changes:\n", out);
			copy_spool(pd->details, out);
		}
		fputc('\n', out);
	}
	for (size_t m = 0; m < p->n_models; m++) {
		const struct plan_model *pm = &p->models[m];
		fprintf(out, "model \"%s\": ", pm->model->id);
		if (pm->incremental)
			fprintf(out, "incremental since %s (schedule \"%s\"%s; deletions need 'joey run --full'), ",
				pm->since.buf, pm->schedule->id, pm->also.buf);
		else if (pm->schedule)
			fprintf(out, "full read (schedule \"%s\"%s%s%s), ", pm->schedule->id, pm->also.buf,
				pm->why[0] && strcmp(pm->why, "--full") ? ": " : "",
				strcmp(pm->why, "--full") ? pm->why : "");
		if (pm->report.warehouse)
			fprintf(out, "%llu records, compared in the database (warehouse diff: %llu may have changed, "
				     "%llu read)",
				(unsigned long long)pm->stats.records, (unsigned long long)pm->report.candidates,
				(unsigned long long)pm->report.read);
		else
			fprintf(out, "%llu records read", (unsigned long long)pm->stats.records);
		if (pm->stats.unreadable)
			fprintf(out, "; %llu source rows unreadable: their records are unknown, so %llu deletes, "
				     "unsubscribes or group exits are held back and the run would end partial",
				(unsigned long long)pm->stats.unreadable, (unsigned long long)pm->stats.held);
		if (pm->stats.orphans)
			fprintf(out, ", %llu secondary rows without a primary record ignored",
				(unsigned long long)pm->stats.orphans);
		if (pm->stats.invalid_values)
			fprintf(out, ", %llu invalid values treated as empty", (unsigned long long)pm->stats.invalid_values);
		if (!pm->report.warehouse && pm->diff != DIFF_MODE_STREAM)
			fprintf(out, "; streaming diff (no warehouse diff: %s)", pm->report.why);
		fputc('\n', out);
	}
	if (!p->n_dests)
		fputs("no destinations: nothing would be sent\n", out);
}

void plan_print_json(const struct plan *p, FILE *out)
{
	fputs("{\n  \"destinations\": [", out);
	for (size_t i = 0; i < p->n_dests; i++) {
		const struct plan_dest *pd = &p->dests[i];
		const struct cfg_destination *d = pd->dest;
		json_t *o = json_object();
		json_t *counts = json_object();
		for (int a = 0; a < DIFF__COUNT; a++)
			json_object_set_new(counts, diff_action_name((enum diff_action)a), json_integer((json_int_t)pd->counts[a]));
		json_object_set_new(o, "id", json_string(d->id));
		json_object_set_new(o, "model", json_string(d->model->id));
		json_object_set_new(o, "sync_mode", json_string(sync_mode_name(d->sync_mode)));
		json_object_set_new(o, "collection", json_string(collection_name(d->collection)));
		json_object_set_new(o, "group", d->group ? json_string(d->group->id) : json_null());
		json_object_set_new(o, "counts", counts);
		json_object_set_new(o, "data_points", json_integer((json_int_t)pd->data_points));
		json_object_set_new(o, "subscribes", json_integer((json_int_t)pd->subscribes));
		json_object_set_new(o, "unsubscribes", json_integer((json_int_t)pd->unsubscribes));
		json_object_set_new(o, "retries", json_integer((json_int_t)pd->retries));
		json_object_set_new(o, "state_records",
				    pd->state_counted ? json_integer((json_int_t)pd->state_records) : json_null());
		json_t *guard = json_object();
		json_object_set_new(guard, "deletes",
				    json_integer((json_int_t)guard_weighed(pd)));
		json_object_set_new(guard, "max_delete_percent", json_real(pd->max_delete_percent));
		json_object_set_new(guard, "tripped", json_boolean(pd->guard_tripped));
		json_object_set_new(o, "guard", guard);
		char *s = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
		size_t len = strlen(s);
		fputs(i ? ",\n    " : "\n    ", out);
		if (pd->details) {
			fwrite(s, 1, len - 1, out); /* reopen the object for "records" */
			fputs(",\"records\":[", out);
			copy_spool(pd->details, out);
			fputs(pd->n_details ? "\n    ]}" : "]}", out);
		} else {
			fputs(s, out);
		}
		free(s);
		json_decref(o);
	}
	fputs(p->n_dests ? "\n  ],\n  \"models\": [" : "],\n  \"models\": [", out);
	for (size_t m = 0; m < p->n_models; m++) {
		const struct plan_model *pm = &p->models[m];
		json_t *o = json_object();
		json_object_set_new(o, "id", json_string(pm->model->id));
		json_object_set_new(o, "records", json_integer((json_int_t)pm->stats.records));
		json_object_set_new(o, "orphans", json_integer((json_int_t)pm->stats.orphans));
		json_object_set_new(o, "invalid_values", json_integer((json_int_t)pm->stats.invalid_values));
		if (pm->schedule) {
			json_object_set_new(o, "schedule", json_string(pm->schedule->id));
			json_object_set_new(o, "incremental", json_boolean(pm->incremental));
			json_object_set_new(o, "since", pm->incremental ? json_string(pm->since.buf) : json_null());
			if (json_array_size(pm->schedules) > 1)
				json_object_set_new(o, "schedules", json_incref(pm->schedules));
		}
		if (pm->stats.unreadable) {
			json_object_set_new(o, "unreadable", json_integer((json_int_t)pm->stats.unreadable));
			json_object_set_new(o, "held", json_integer((json_int_t)pm->stats.held));
		}
		if (pm->diff != DIFF_MODE_STREAM) {
			/* only when asked for: plans without it look as they always did */
			const struct diff_report *dr = &pm->report;
			json_t *d = json_object();
			json_object_set_new(d, "mode", json_string(diff_mode_name(pm->diff)));
			json_object_set_new(d, "used", json_string(dr->warehouse ? "warehouse" : "stream"));
			json_object_set_new(d, "why", dr->warehouse ? json_null() : json_string(dr->why));
			json_object_set_new(d, "read", json_integer((json_int_t)dr->read));
			json_object_set_new(d, "candidates", json_integer((json_int_t)dr->candidates));
			json_object_set_new(o, "diff", d);
		}
		char *s = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
		fprintf(out, "%s%s", m ? ",\n    " : "\n    ", s);
		free(s);
		json_decref(o);
	}
	fprintf(out, "%s],\n  \"guard_tripped\": %s\n}\n", p->n_models ? "\n  " : "",
		plan_guard_tripped(p) ? "true" : "false");
}

void plan_release(struct plan *p)
{
	for (size_t i = 0; i < p->n_dests; i++)
		if (p->dests[i].details)
			fclose(p->dests[i].details);
	for (size_t m = 0; m < p->n_models; m++) {
		strbuf_release(&p->models[m].since);
		strbuf_release(&p->models[m].also);
		json_decref(p->models[m].schedules);
	}
	free(p->dests);
	free(p->models);
	memset(p, 0, sizeof(*p));
}
