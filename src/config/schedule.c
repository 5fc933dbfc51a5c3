/*
 * schedule.c: the Schedule class: reading a schedule object (recurrence, cron, filters) and
 * linking it to its source in pass 3.
 */
#include <math.h>
#include <string.h>

#include "base/cron.h"
#include "config/config_internal.h"

static const struct field_spec schedule_fields[] = {
	{ "sourceId", T_STR, 0, NULL, NULL },
	{ "recurring", T_BOOL, 0, NULL, NULL },
	{ "recurringFrequency", T_NUM, 0, NULL, NULL },
	{ "incremental", T_BOOL, 0, NULL, NULL },
	{ "confirmRecords", T_BOOL, 0, NULL, NULL },
	{ "confirmProfiles", T_BOOL, F_WARN, "\"confirmProfiles\" is a deprecated alias of \"confirmRecords\"",
	  "rename it to \"confirmRecords\"" },
	{ "refreshEnabled", T_BOOL, 0, NULL, NULL },
	{ "options", T_OBJ, 0, NULL, NULL },
	{ "filters", T_ARR, 0, NULL, NULL },
};

void ld_load_schedule(struct loader *ld, const struct where *w, const struct j5_node *o, size_t order)
{
	struct schedule_x *x = arena_zalloc(ld->a, sizeof(*x));
	const struct j5_member *fm;
	x->w = *w;
	x->order = order;
	x->node = o;
	ld_read_head(ld, w, o, schedule_fields, ARRAY_SIZE(schedule_fields), "a Schedule", &x->s.id, &x->s.name, &x->s.pos);
	x->source_id = ld_req_str(ld, w, o, "sourceId", &x->source_m);
	x->s.recurring = ld_get_bool(o, "recurring", false);
	x->s.confirm_records = ld_get_bool(o, "confirmRecords", ld_get_bool(o, "confirmProfiles", false));
	x->s.refresh_enabled = ld_get_bool(o, "refreshEnabled", true);
	fm = ld_get_m(o, "recurringFrequency", T_NUM);
	if (fm) {
		double f = fm->value->num;
		if (f < 0 || f != floor(f) || f > 9.2e18)
			ld_err(ld, w, NPOS(fm->value), "recurringFrequency", NULL,
			       "recurringFrequency must be a whole number of milliseconds, found %s",
			       fm->value->str);
		else
			x->s.recurring_frequency_ms = (int64_t)f;
	}
	ld_read_options(ld, w, ld_get_obj(o, "options"), "SCHEDULE", catalog_schedule_options(true),
			&x->s.options);
	ld_check_sql_name_option(ld, w, &x->s.options, "column"); /* the since column */
	const struct cfg_option *cron_opt = cfg_options_get(&x->s.options, "cron");
	if (cron_opt && cron_opt->kind == OPT_STRING) {
		struct cron c;
		struct jerror cerr = JERROR_INIT;
		if (!cron_parse(cron_opt->str, &c, &cerr))
			x->s.cron = cron_opt->str;
		else if (cron_opt->secret) /* from the environment: never its value */
			ld_err(ld, w, cron_opt->pos.line, cron_opt->pos.col, "options.cron",
			       cerr.hint.len ? cerr.hint.buf : NULL, "the cron expression in %s is not valid",
			       config_option_display(cron_opt));
		else
			ld_err(ld, w, cron_opt->pos.line, cron_opt->pos.col, "options.cron",
			       cerr.hint.len ? cerr.hint.buf : NULL, "%s", cerr.msg.buf);
		jerror_release(&cerr);
	}
	if (x->s.recurring && x->s.recurring_frequency_ms < 60000 && !cron_opt) {
		if (fm)
			ld_err(ld, w, NPOS(fm->value), "recurringFrequency",
			       "recurringFrequency is in milliseconds: 60000 is one minute",
			       "recurring frequency must be at least one minute (60000 ms), found %s",
			       fm->value->str);
		else if (!j5_member(o, "recurringFrequency"))
			ld_err(ld, w, NPOS(o), NULL, "add \"recurringFrequency\" in milliseconds (at least 60000)",
			       "missing required field \"recurringFrequency\" for a recurring schedule");
	}
	ld_read_filters(ld, w, o, &x->s.filters, &x->s.n_filters);
	/*
	 * Grouparoo never imported the rows a schedule's filters exclude; joey has no such
	 * filter and would export them: refused, never ignored (an excluded user is data
	 * someone chose not to send).
	 */
	const struct j5_member *filt = j5_member(o, "filters");
	if (x->s.n_filters && filt)
		ld_err(ld, w, NPOS(filt->value), "filters",
		       "export a Group with the condition instead (destination collection \"group\"), or "
		       "filter in a query source; an empty list is accepted",
		       "schedule filters are not supported: the rows they exclude would be exported");
	ld_add_obj(ld, CLASS_SCHEDULE, x);
}

/* Pass 3: schedules -> source (one schedule a source). */
void ld_link_schedules(struct loader *ld, const struct link_set *ls)
{
	for (size_t i = 0; i < ls->nsc; i++) {
		struct schedule_x *x = ls->scheds[i];
		struct source_x *sx = ld_resolve(ld, &x->w, x->source_m, x->source_id, "sourceId", CLASS_SOURCE, (void **)ls->srcs, ls->ns);
		if (!sx)
			continue;
		x->s.source = &sx->s;
		/*
		 * Grouparoo's CSV plugin had no schedule options (its schedules read every row),
		 * so a Grouparoo CSV schedule has no column: such a schedule is not incremental
		 * and needs none. A CSV schedule reads incrementally with a column (as a table's).
		 */
		bool csv_full = sx->s.type && !strncmp(sx->s.type, "csv-", 4) &&
				!cfg_options_get(&x->s.options, "column");
		x->s.incremental = ld_get_bool(x->node, "incremental", !sx->s.is_query && !csv_full);
		/*
		 * Grouparoo's confirmRecords re-imported the records a run had not seen and
		 * destroyed those whose row was gone. An incremental run reads changed rows only
		 * and never notices a deleted one: said, not silently dropped. (A schedule that
		 * is not incremental reads the whole source every run, which notices them.)
		 */
		if (x->s.confirm_records && x->s.incremental) {
			const struct j5_member *cm = j5_member(x->node, "confirmRecords");
			if (!cm)
				cm = j5_member(x->node, "confirmProfiles");
			ld_warn(ld, &x->w, cm ? cm->value->line : x->node->line, cm ? cm->value->col : x->node->col,
				"confirmRecords",
				"run \"joey run --full\" regularly (e.g. nightly) to notice them, or set "
				"\"incremental\": false to read every row on every run",
				"\"confirmRecords\" is not implemented for an incremental schedule: its runs do "
				"not notice rows deleted from source \"%s\"",
				sx->s.id);
		}
		if (!sx->s.schedule)
			sx->s.schedule = &x->s;
		for (size_t j = 0; j < i; j++)
			if (ls->scheds[j]->s.source == &sx->s) {
				ld_err(ld, &x->w, NPOS(x->source_m->value), "sourceId", "remove one of the schedules",
				       "source \"%s\" already has schedule \"%s\"; a source has at most one", sx->s.id,
				       ls->scheds[j]->s.id);
				break;
			}
		if (sx->cat)
			ld_check_options(ld, &x->w, &x->s.options,
					 catalog_schedule_options(sx->s.is_query || (csv_full && !x->s.incremental)),
					 arena_printf(ld->a, "a schedule of a %s source", sx->s.type), x->node->line,
					 x->node->col);
		/* Grouparoo's redshift query source had no getRows: properties only */
		if (sx->s.is_query && sx->s.type && !strncmp(sx->s.type, "redshift-", 9))
			ld_err(ld, &x->w, NPOS(x->source_m->value), "sourceId",
			       "read the rows with a redshift-import-table source, or put the schedule on one",
			       "source \"%s\" (%s) cannot have a schedule", sx->s.id, sx->s.type);
	}

}

