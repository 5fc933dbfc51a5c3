/* Tests for src/config/config.c: loading, linking, secrets, diagnostics. */
#include "support/testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/strbuf.h"
#include "config/config.h"
#include "config/write.h"

static const char *VALID =
	"// the example from the docs, as JSON5\n"
	"[\n"
	"{class:'App',id:'demo_db',name:'Demo DB',type:'sqlite',options:{file:'demo.db'}},\n"
	"{class:'model',id:'users',name:'Users',type:'profile'},\n"
	"{class:' SOURCE ',id:'users_table',type:'sqlite-import-table',appId:'demo_db',modelId:'users',options:{table:'users'},mapping:{id:'user_id'}},\n"
	"{class:'Property',id:'user_id',key:'user_id',type:'integer',unique:true,sourceId:'users_table',options:{column:'id',aggregationMethod:'exact'}},\n"
	"{class:'Property',id:'email',type:'email',sourceId:'users_table',options:{column:'email'},filters:[{key:'state',op:'in',match:'a, b'},{key:'x',op:'exists'}]},\n"
	"{class:'Property',id:'signup',type:'date',sourceId:'users_table',options:{column:'created_at'}},\n"
	"{class:'Source',id:'purchases_table',type:'sqlite-import-table',appId:'demo_db',modelId:'users',options:{table:'purchases'},mapping:{user_id:'user_id'}},\n"
	"{class:'Property',id:'ltv',type:'float',sourceId:'purchases_table',options:{column:'amount',aggregationMethod:'sum'}},\n"
	"{class:'Property',id:'last_item',type:'string',sourceId:'purchases_table',options:{column:'item',aggregationMethod:'most recent value',sortColumn:'at'}},\n"
	"{class:'Group',id:'high_value',name:'High Value',modelId:'users',rules:[{propertyId:'ltv',op:'gte',match:100}]},\n"
	"{class:'Group',id:'recent',modelId:'users',matchType:'any',rules:[\n"
	"  {propertyId:'signup',op:'relative_gt',relativeMatchNumber:30,relativeMatchUnit:'days'},\n"
	"  {propertyId:'signup',op:'gt',match:'2021-01-01T00:00:00Z'},\n"
	"  {propertyId:'grouparooId',op:'lt',match:'1000'},\n"
	"  {propertyId:'email',op:'eq',match:'null'}]},\n"
	"{class:'App',id:'braze',type:'braze',options:{apiKey:'${BRAZE_API_KEY}',restEndpoint:'rest.iad-01.braze.com'}},\n"
	"{class:'Destination',id:'braze_users',type:'braze-export-users',appId:'braze',modelId:'users',syncMode:'additive',collection:'group',groupId:'high_value',\n"
	"  mapping:{external_id:'user_id',email:'email',dob:'signup',ltv:'ltv'},destinationGroupMemberships:{'High Value':'high_value','A recent':'recent'},\n"
	"  options:{maxDeletePercent:25}},\n"
	"{class:'Schedule',id:'users_schedule',sourceId:'users_table',recurring:true,recurringFrequency:900000,options:{column:'updated_at',cron:'*/15 * * * *'}},\n"
	"{},\n"
	"]\n";

struct env {
	const char *names[4];
	const char *values[4];
};

static const char *env_lookup(const char *name, void *ctx)
{
	struct env *e = ctx;
	for (int i = 0; i < 4 && e->names[i]; i++)
		if (!strcmp(e->names[i], name))
			return e->values[i];
	return NULL;
}

struct fixture {
	char *dir;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	f->dir = tu_mkdtemp();
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	tu_rmtree(f->dir);
	free(f->dir);
	free(f);
	return 0;
}

static struct config *load(const char *dir, struct env *env, enum jerr want)
{
	struct config_opts opts = { .getenv_fn = env_lookup, .getenv_ctx = env };
	struct config *cfg = NULL;
	struct jerror err = JERROR_INIT;
	enum jerr rc = config_load(dir, env ? &opts : NULL, &cfg, &err);
	if (rc != want) {
		if (cfg)
			config_print_diags(cfg, stderr);
		fail_msg("config_load returned %d, want %d", rc, want);
	}
	jerror_release(&err);
	return cfg;
}

static char *diags_text(const struct config *cfg)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	config_print_diags(cfg, f);
	fclose(f);
	return buf;
}

/* How many times what is in cfg's diagnostics. */
static size_t diag_count(const struct config *cfg, const char *what)
{
	char *t = diags_text(cfg);
	size_t n = 0;
	for (const char *p = t; (p = strstr(p, what)); p += strlen(what))
		n++;
	free(t);
	return n;
}

static void assert_diag_contains(const struct config *cfg, const char *what)
{
	char *t = diags_text(cfg);
	if (!strstr(t, what))
		fail_msg("diagnostics do not contain [%s]:\n%s", what, t);
	free(t);
}

/* Whether buf (len bytes) holds s. */
static bool has_bytes(const char *buf, size_t len, const char *s)
{
	size_t n = strlen(s);
	for (size_t i = 0; i + n <= len; i++)
		if (!memcmp(buf + i, s, n))
			return true;
	return false;
}

/* The generation is the digest of the files read; a snapshot loads back to the same config. */
static void test_generation_and_snapshot(void **state)
{
	struct fixture *f = *state;
	struct env env = { { "BRAZE_API_KEY" }, { "k-123" } };
	struct config *a, *b, *c;
	tu_write(f->dir, "sub/all.json", VALID);
	tu_write(f->dir, "empty.json", "   ");
	tu_write(f->dir, ".hidden.json", "{class:'Model',id:'ignored',type:'profile'}");
	a = load(f->dir, &env, JERR_OK);
	assert_int_equal(strlen(a->generation), 64);
	assert_true(has_bytes(a->snapshot, a->snapshot_len, "${BRAZE_API_KEY}"));
	assert_false(has_bytes(a->snapshot, a->snapshot_len, "k-123"));
	assert_false(has_bytes(a->snapshot, a->snapshot_len, "ignored")); /* dot-files are not read */
	assert_null(config_literal_secret(a, NULL));

	/* from the snapshot, in another (empty) directory: the same objects and generation */
	char *other = tu_mkdtemp();
	struct config_opts o = { .getenv_fn = env_lookup, .getenv_ctx = &env, .snapshot = a->snapshot,
				 .snapshot_len = a->snapshot_len };
	struct jerror err = JERROR_INIT;
	assert_int_equal(config_load(other, &o, &b, &err), JERR_OK);
	assert_string_equal(b->generation, a->generation);
	assert_int_equal(b->n_files, a->n_files);
	assert_int_equal(b->n_destinations, a->n_destinations);
	assert_string_equal(cfg_options_str(&config_app(b, "braze")->options, "apiKey"), "k-123");
	config_free(b);
	/* without the secret here: the reference is an error, as for the files */
	struct env none = { { NULL }, { NULL } };
	o.getenv_ctx = &none;
	assert_int_equal(config_load(other, &o, &b, &err), JERR_CONFIG);
	assert_diag_contains(b, "environment variable \"BRAZE_API_KEY\" is not set");
	config_free(b);
	jerror_release(&err);
	/* a damaged snapshot is one error naming it */
	o.getenv_ctx = &env;
	o.snapshot_len = 12;
	assert_int_equal(config_load(other, &o, &b, &err), JERR_CONFIG);
	assert_diag_contains(b, "config snapshot is malformed");
	config_free(b);
	jerror_release(&err);
	tu_rmtree(other);
	free(other);

	/* any change of a file is another generation; the same bytes again the same one */
	tu_write(f->dir, "empty.json", "  \n");
	c = load(f->dir, &env, JERR_OK);
	assert_string_not_equal(c->generation, a->generation);
	config_free(c);
	tu_write(f->dir, "empty.json", "   ");
	c = load(f->dir, &env, JERR_OK);
	assert_string_equal(c->generation, a->generation);
	config_free(c);

	/* a secret written in a file is found (its snapshot would hold it) */
	tu_write(f->dir, "lit.json", "{class:'App',id:'b9',type:'braze',options:{apiKey:'literal-key',restEndpoint:'http://localhost:4710'}}");
	const char *owner = NULL;
	c = load(f->dir, &env, JERR_OK);
	const struct cfg_option *lit = config_literal_secret(c, &owner);
	assert_non_null(lit);
	assert_string_equal(lit->key, "apiKey");
	assert_string_equal(owner, "b9");
	config_free(c);
	config_free(a);
}

/* VALID with its text from replaced by to, loaded (no error expected); the caller frees it. */
static struct config *load_valid_with(struct fixture *f, const char *from, const char *to)
{
	struct env env = { { "BRAZE_API_KEY" }, { "s3cr3t" } };
	const char *at = strstr(VALID, from);
	assert_non_null(at);
	struct strbuf b = STRBUF_INIT;
	strbuf_add(&b, VALID, (size_t)(at - VALID));
	strbuf_addstr(&b, to);
	strbuf_addstr(&b, at + strlen(from));
	tu_write(f->dir, "main.json", b.buf);
	strbuf_release(&b);
	return load(f->dir, &env, JERR_OK);
}

/* Grouparoo ignored relativeMatchDirection (fromConvenientRules): joey does too, and says so. */
static void test_relative_direction_ignored_with_warning(void **state)
{
	struct fixture *f = *state;
	struct config *cfg = load_valid_with(f, "relativeMatchUnit:'days'}",
					     "relativeMatchUnit:'days',relativeMatchDirection:'add'}");
	assert_diag_contains(cfg, "\"relativeMatchDirection\": \"add\" is ignored for \"relative_gt\"");
	const struct cfg_group *g = NULL;
	for (size_t i = 0; i < cfg->n_groups; i++)
		if (!strcmp(cfg->groups[i]->id, "recent"))
			g = cfg->groups[i];
	assert_non_null(g);
	assert_false(g->rules[0].rel_add); /* still counts back from now */
	config_free(cfg);
}

/*
 * Grouparoo stored a relativeMatchNumber written as a string ("8") as the number 8: its
 * own loader tests' fixtures (core/__tests__/fixtures/codeConfig/group-rule-with-date,
 * top-level-group-rule) write it so. joey reads it the same; text that is not a number
 * is still an error.
 */
static void test_relative_match_number_as_string(void **state)
{
	struct fixture *f = *state;
	struct config *cfg = load_valid_with(f, "relativeMatchNumber:30,", "relativeMatchNumber:'8',");
	const struct cfg_group *g = NULL;
	for (size_t i = 0; i < cfg->n_groups; i++)
		if (!strcmp(cfg->groups[i]->id, "recent"))
			g = cfg->groups[i];
	assert_non_null(g);
	assert_int_equal(g->n_rules, 4);
	assert_true(g->rules[0].rel_number == 8);
	config_free(cfg);

	struct env env = { { "BRAZE_API_KEY" }, { "s3cr3t" } };
	const char *at = strstr(VALID, "relativeMatchNumber:30,");
	struct strbuf b = STRBUF_INIT;
	strbuf_add(&b, VALID, (size_t)(at - VALID));
	strbuf_addstr(&b, "relativeMatchNumber:'x',");
	strbuf_addstr(&b, at + strlen("relativeMatchNumber:30,"));
	tu_write(f->dir, "main.json", b.buf);
	strbuf_release(&b);
	cfg = load(f->dir, &env, JERR_CONFIG);
	assert_diag_contains(cfg, "Group \"recent\": rules[0].relativeMatchNumber: relativeMatchNumber \"x\" is not a number");
	config_free(cfg);
}

/*
 * Every Grouparoo plugin that only exports is skipped with a warning, as Mailchimp is:
 * Grouparoo's demo config has a logger app and destination, which were "unknown app
 * type" errors, as were airtable, closeio, freshdesk and vero apps, and the Google
 * Sheets plugin's destination (google-sheet-export, not google-sheets-...).
 */
static void test_export_only_plugins_skipped(void **state)
{
	struct fixture *f = *state;
	struct config *cfg = load_valid_with(
		f, "{},\n",
		"{class:'App',id:'logger',type:'logger',options:{filename:'x.log'}},\n"
		"{class:'Destination',id:'logger_destination',type:'logger-export-records',appId:'logger',modelId:'users',"
		"collection:'model',mapping:{id:'user_id'}},\n"
		"{class:'App',id:'sheets',type:'google-sheets',options:{client_email:'a',private_key:'b'}},\n"
		"{class:'Destination',id:'sheet',type:'google-sheet-export',appId:'sheets',modelId:'users',mapping:{id:'user_id'}},\n"
		"{class:'App',id:'a1',type:'airtable'},{class:'App',id:'a2',type:'closeio'},\n"
		"{class:'App',id:'a3',type:'freshdesk'},{class:'App',id:'a4',type:'vero'},\n");
	assert_diag_contains(cfg, "App \"logger\": type: type \"logger\" belongs to a Grouparoo destination plugin");
	assert_diag_contains(cfg, "Destination \"logger_destination\": type: type \"logger-export-records\" belongs");
	assert_diag_contains(cfg, "Destination \"sheet\": type: type \"google-sheet-export\" belongs");
	assert_int_equal(diag_count(cfg, "belongs to a Grouparoo destination plugin"), 8);
	config_free(cfg);
}

/*
 * Grouparoo's loader keyed destinationGroupMemberships by group id, so of two `groups`
 * values for one group only the last was sent; joey sends both and says so (once, at
 * the earlier name; a subscription group ID for the same group is not such a name).
 */
static void test_group_named_twice_warning(void **state)
{
	struct fixture *f = *state;
	struct config *cfg = load_valid_with(f, "destinationGroupMemberships:{'High Value':'high_value',",
					     "destinationGroupMemberships:{VIP:'high_value','High Value':'high_value',"
					     "'0f6f4c2e-8a7b-4c1d-9e2f-3a4b5c6d7e8f':'high_value',");
	assert_diag_contains(cfg, "destinationGroupMemberships.VIP: group \"high_value\" is also named \"High Value\": "
				  "joey adds both values to \"groups\", Grouparoo sent only the last name");
	assert_int_equal(diag_count(cfg, "is also named"), 1);
	config_free(cfg);
}

/*
 * Grouparoo's confirmRecords re-imported the records a run did not see and destroyed
 * those whose row was gone; joey's incremental runs never notice a deleted row, so the
 * option is not silently dropped: a warning says what to do (a non-incremental
 * schedule reads everything every run, which does notice them: no warning).
 */
static void test_confirm_records_incremental_warning(void **state)
{
	struct fixture *f = *state;
	struct config *cfg = load_valid_with(f, "recurringFrequency:900000,",
					     "recurringFrequency:900000,confirmRecords:true,");
	assert_diag_contains(cfg, "Schedule \"users_schedule\": confirmRecords: \"confirmRecords\" is not "
				  "implemented for an incremental schedule: its runs do not notice rows deleted "
				  "from source \"users_table\"");
	config_free(cfg);
	cfg = load_valid_with(f, "recurringFrequency:900000,",
			      "recurringFrequency:900000,confirmRecords:true,incremental:false,");
	assert_int_equal(diag_count(cfg, "confirmRecords"), 0);
	config_free(cfg);
}

static void test_valid_config_links(void **state)
{
	struct fixture *f = *state;
	struct env env = { { "BRAZE_API_KEY" }, { "s3cr3t" } };
	struct config *cfg;

	tu_write(f->dir, "main.json", VALID);
	tu_write(f->dir, "empty.json", "  \n// nothing\n");
	tu_write(f->dir, ".joey/ignored.json", "this is not json");
	tu_write(f->dir, "notes.txt", "not config");
	cfg = load(f->dir, &env, JERR_OK);
	assert_int_equal(cfg->n_errors, 0);
	assert_int_equal(cfg->n_files, 2);
	assert_int_equal(cfg->n_objects, 14);
	assert_int_equal(cfg->n_apps, 2);
	assert_int_equal(cfg->n_properties, 5);

	struct cfg_model *m = config_model(cfg, "users");
	assert_non_null(m);
	assert_null(config_model(cfg, "nope"));
	assert_string_equal(m->primary_key->id, "user_id");
	assert_true(m->primary_key->is_primary_key);
	assert_string_equal(m->primary_source->id, "users_table");
	assert_int_equal(m->n_sources, 2);
	assert_ptr_equal(m->sources[0], m->primary_source);
	assert_string_equal(m->sources[1]->id, "purchases_table");
	assert_false(m->sources[1]->is_primary);
	assert_ptr_equal(m->sources[1]->mapping_property, m->primary_key);
	assert_string_equal(m->sources[1]->mapping_column, "user_id");
	assert_int_equal(m->n_properties, 5);
	for (size_t i = 0; i < m->n_properties; i++) {
		assert_int_equal(m->properties[i]->slot, i);
		if (i)
			assert_true(strcmp(m->properties[i - 1]->id, m->properties[i]->id) < 0);
	}
	assert_int_equal(m->primary_source->n_properties, 3);
	assert_string_equal(m->primary_source->properties[0]->id, "email");
	assert_string_equal(m->primary_source->table, "users");
	assert_int_equal(m->n_groups, 2);
	assert_int_equal(m->groups[1]->index, 1);
	assert_int_equal(m->n_destinations, 1);

	/* properties */
	const struct cfg_property *email = NULL, *last = NULL;
	for (size_t i = 0; i < cfg->n_properties; i++) {
		if (!strcmp(cfg->properties[i]->id, "email"))
			email = cfg->properties[i];
		if (!strcmp(cfg->properties[i]->id, "last_item"))
			last = cfg->properties[i];
	}
	assert_int_equal(email->type, PROP_EMAIL);
	assert_string_equal(email->column, "email");
	assert_int_equal(email->n_filters, 2);
	assert_int_equal(email->filters[0].op, FOP_IN);
	assert_int_equal(email->filters[0].n_match_list, 2);
	assert_string_equal(email->filters[0].match_list[1], "b");
	assert_int_equal(email->filters[1].op, FOP_NOT_EXISTS - 1);
	assert_int_equal(last->agg, AGG_MOST_RECENT);
	assert_string_equal(last->sort_column, "at");

	/* groups */
	const struct cfg_group *recent = m->groups[1];
	assert_string_equal(recent->id, "recent");
	assert_true(recent->match_any);
	assert_int_equal(recent->n_rules, 4);
	assert_int_equal(recent->rules[0].op, ROP_RELATIVE_GT);
	assert_int_equal(recent->rules[0].rel_unit, REL_DAYS);
	assert_false(recent->rules[0].rel_add);
	assert_true(recent->rules[0].rel_number == 30);
	assert_true(recent->rules[1].match_ms == 1609459200000LL);
	assert_null(recent->rules[2].property); /* grouparooId */
	assert_true(recent->rules[2].match_num == 1000);
	assert_true(recent->rules[3].match_is_null);
	assert_true(m->groups[0]->rules[0].match_num == 100);

	/* destination */
	struct cfg_destination *d = config_destination(cfg, "braze_users");
	assert_non_null(d);
	assert_int_equal(d->sync_mode, SYNC_ADDITIVE);
	assert_int_equal(d->collection, COLL_GROUP);
	assert_string_equal(d->group->id, "high_value");
	assert_true(d->max_delete_percent == 25);
	assert_int_equal(d->n_mapping, 4);
	assert_string_equal(d->mapping[0].remote, "dob");
	assert_string_equal(d->mapping[3].remote, "ltv");
	assert_int_equal(d->n_group_maps, 2);
	assert_string_equal(d->group_maps[0].remote, "A recent");
	assert_string_equal(d->group_maps[1].group->id, "high_value");

	/* apps and secrets */
	struct cfg_app *braze = config_app(cfg, "braze");
	const struct cfg_option *key = cfg_options_get(&braze->options, "apiKey");
	assert_true(key->secret);
	assert_string_equal(key->str, "s3cr3t");
	assert_string_equal(config_option_display(key), "${BRAZE_API_KEY}");
	assert_string_equal(cfg_options_str(&braze->options, "restEndpoint"), "https://rest.iad-01.braze.com");

	/* schedule */
	assert_int_equal(cfg->n_schedules, 1);
	assert_true(cfg->schedules[0]->recurring);
	assert_int_equal(cfg->schedules[0]->recurring_frequency_ms, 900000);
	assert_true(cfg->schedules[0]->incremental);
	assert_true(cfg->schedules[0]->refresh_enabled);
	assert_string_equal(cfg_options_str(&cfg->schedules[0]->options, "cron"), "*/15 * * * *");

	/* the secret never shows up in the diagnostics (matchType warning is there) */
	char *t = diags_text(cfg);
	assert_null(strstr(t, "s3cr3t"));
	assert_non_null(strstr(t, "matchType"));
	free(t);
	config_free(cfg);
}

static void test_grouparoo_option_env(void **state)
{
	struct fixture *f = *state;
	struct env env = { { "GROUPAROO_OPTION__APP__BRAZE_KEY", "GROUPAROO_OPTION__SOURCE__users" },
			   { "k3y", "users_v2" } };
	struct config *cfg;
	char *valid = strdup(VALID);
	char *p = strstr(valid, "${BRAZE_API_KEY}");
	memcpy(p, "BRAZE_KEY\"     ", 0); /* keep length: rewrite below */
	/* replace the ${...} reference by the bare name */
	struct strbuf sb = STRBUF_INIT;
	strbuf_add(&sb, valid, (size_t)(p - valid));
	strbuf_addstr(&sb, "BRAZE_KEY");
	strbuf_addstr(&sb, p + strlen("${BRAZE_API_KEY}"));
	tu_write(f->dir, "a/b.json", sb.buf);
	strbuf_release(&sb);
	free(valid);
	cfg = load(f->dir, &env, JERR_OK);
	const struct cfg_option *key = cfg_options_get(&config_app(cfg, "braze")->options, "apiKey");
	assert_true(key->secret);
	assert_string_equal(key->str, "k3y");
	assert_string_equal(key->ref, "BRAZE_KEY");
	assert_string_equal(config_option_display(key), "GROUPAROO_OPTION__APP__BRAZE_KEY");
	/* a value that is not an env name topic match stays literal */
	const struct cfg_option *file = cfg_options_get(&config_app(cfg, "demo_db")->options, "file");
	assert_false(file->secret);
	assert_string_equal(config_option_display(file), "demo.db");
	/* SOURCE topic: options.table "users" is replaced by GROUPAROO_OPTION__SOURCE__users */
	assert_string_equal(cfg->sources[1]->id, "users_table");
	assert_true(cfg_options_get(&cfg->sources[1]->options, "table")->secret);
	assert_string_equal(cfg->sources[1]->table, "users_v2");
	assert_string_equal(cfg->sources[0]->table, "purchases");
	config_free(cfg);
}

static void test_literal_api_key_masked_and_missing_env(void **state)
{
	struct fixture *f = *state;
	struct env env = { { NULL }, { NULL } };
	struct config *cfg;
	tu_write(f->dir, "apps.json",
		 "[{class:'App',id:'b1',type:'braze',options:{apiKey:'literal-key',restEndpoint:'http://localhost:4710'}},\n"
		 " {class:'App',id:'b2',type:'braze',options:{apiKey:'${NOPE}',restEndpoint:'${ALSO_NOPE}'}},\n"
		 " {class:'App',id:'b3',type:'braze',options:{apiKey:'${bad name}',restEndpoint:'ftp://x'}}]");
	cfg = load(f->dir, &env, JERR_CONFIG);
	const struct cfg_option *k = cfg_options_get(&config_app(cfg, "b1")->options, "apiKey");
	assert_false(k->secret);
	assert_string_equal(config_option_display(k), "****");
	assert_string_equal(cfg_options_str(&config_app(cfg, "b1")->options, "restEndpoint"), "http://localhost:4710");
	assert_diag_contains(cfg, "apps.json:2:52: error: App \"b2\": options.apiKey: environment variable \"NOPE\" is not set\nhint: export NOPE=... before running joey\n");
	/* restEndpoint is not a secret: its reference is refused, not looked up */
	assert_diag_contains(cfg, "App \"b2\": options.restEndpoint: option \"restEndpoint\" is not a secret and cannot refer to \"${ALSO_NOPE}\"\n"
				  "hint: write the value itself: \"${NAME}\" is resolved only in secret options (apiKey); to take it "
				  "from the environment write \"NAME\" and set GROUPAROO_OPTION__APP__NAME\n");
	assert_diag_contains(cfg, "invalid environment variable reference \"${bad name}\"");
	assert_diag_contains(cfg, "unsupported URL scheme in endpoint \"ftp://x\"");
	char *t = diags_text(cfg);
	assert_null(strstr(t, "literal-key"));
	free(t);
	config_free(cfg);
}

static void test_ignored_classes_and_files(void **state)
{
	struct fixture *f = *state;
	struct config *cfg;
	tu_write(f->dir, "a.json", "[{class:'Setting',id:'s',pluginName:'core',key:'k',value:1},{class:'team',id:'t'},"
				  "{class:'Profile',id:'p'}]");
	tu_write(f->dir, "b.json", "[]");
	tu_write(f->dir, "c.json", "null");
	cfg = load(f->dir, NULL, JERR_OK);
	assert_int_equal(cfg->n_warnings, 3);
	assert_int_equal(cfg->n_files, 3);
	assert_int_equal(cfg->n_objects, 3);
	assert_diag_contains(cfg, "a.json:1:2: warning: Setting \"s\": Setting objects are ignored by joey\n");
	config_free(cfg);
	tu_write(f->dir, "d.js", "module.exports = {}");
	tu_write(f->dir, "e.json", "{class:'Frobnicator',id:'x'}");
	tu_write(f->dir, "f.json", "{id:'x'}");
	cfg = load(f->dir, NULL, JERR_CONFIG);
	assert_diag_contains(cfg, "d.js: error: joey cannot execute JavaScript config files\nhint: convert it to JSON");
	assert_diag_contains(cfg, "e.json:1:8: error: class: unknown class \"Frobnicator\"\n");
	assert_diag_contains(cfg, "f.json:1:1: error: missing required field \"class\"");
	config_free(cfg);
}

static void test_print_format(void **state)
{
	struct fixture *f = *state;
	struct config *cfg;
	tu_write(f->dir, "x.json", "{class:'Model',id:'m',type:'profile',nmae:'M'}");
	cfg = load(f->dir, NULL, JERR_CONFIG);
	char *t = diags_text(cfg);
	assert_string_equal(t,
			    "x.json:1:1: error: Model \"m\": no primary key: no source of model \"m\" maps a column to a property read from that same source\n"
			    "hint: give one source a \"mapping\" {\"<column>\": \"<property id>\"} pointing at a unique property read from that same source\n"
			    "x.json:1:38: error: Model \"m\": nmae: unknown field \"nmae\" for a Model\n"
			    "hint: did you mean \"name\"?\n");
	free(t);
	/* absent parts are omitted */
	struct cfg_diag d = { DIAG_WARNING, { NULL, 0, 0 }, NULL, NULL, NULL, "just a message", NULL };
	struct config fake = { 0 };
	fake.diags = &d;
	fake.n_diags = 1;
	t = diags_text(&fake);
	assert_string_equal(t, "warning: just a message\n");
	free(t);
	config_free(cfg);
}

static void test_missing_dir(void **state)
{
	struct config *cfg = (struct config *)1;
	struct jerror err = JERROR_INIT;
	assert_int_equal(config_load("/nonexistent/joey/config", NULL, &cfg, &err), JERR_CONFIG);
	assert_null(cfg);
	assert_non_null(strstr(err.msg.buf, "/nonexistent/joey/config"));
	jerror_release(&err);
}

static void test_enum_names(void **state)
{
	assert_string_equal(prop_type_name(PROP_PHONE), "phoneNumber");
	assert_string_equal(agg_method_name(AGG_LEAST_RECENT), "least recent value");
	assert_string_equal(filter_op_name(FOP_NOT_SUBSTRING), "notSubstring");
	assert_string_equal(rule_op_name(ROP_STARTS_WITH), "startsWith");
	assert_string_equal(sync_mode_name(SYNC_ENRICH), "enrich");
	assert_string_equal(collection_name(COLL_GROUP), "group");
	assert_string_equal(cfg_class_name(CLASS_DESTINATION), "Destination");
	assert_true(rule_op_allowed(ROP_RELATIVE_LT, PROP_DATE));
	assert_false(rule_op_allowed(ROP_RELATIVE_LT, PROP_INTEGER));
	assert_true(rule_op_allowed(ROP_GT, PROP_FLOAT));
	assert_false(rule_op_allowed(ROP_GT, PROP_BOOLEAN));
	assert_false(rule_op_allowed(ROP_GT, PROP_STRING));
	assert_true(rule_op_allowed(ROP_ILIKE, PROP_URL));
	assert_false(rule_op_allowed(ROP_LIKE, PROP_DATE));
	assert_true(rule_op_allowed(ROP_EXISTS, PROP_BOOLEAN));
}

static void test_query_source(void **state)
{
	struct fixture *f = *state;
	struct config *cfg;
	tu_write(f->dir, "q.json",
		 "[{class:'App',id:'db',type:'sqlite',options:{file:'x.db'}},{class:'Model',id:'m',type:'profile'},\n"
		 "{class:'Source',id:'s',type:'sqlite-query-import',appId:'db',modelId:'m',options:{query:'select id, n from t'},mapping:{id:'pk'}},\n"
		 "{class:'Property',id:'pk',type:'string',unique:true,sourceId:'s',options:{column:'id'}},\n"
		 "{class:'Property',id:'n',type:'integer',sourceId:'s',options:{query:'select count(*) from u where id = {{{ pk }}}'}},\n"
		 "{class:'Property',id:'bad',type:'integer',sourceId:'s',options:{query:'select {{{ pkk }}}'}},\n"
		 "{class:'Property',id:'none',type:'integer',sourceId:'s'}]");
	cfg = load(f->dir, NULL, JERR_CONFIG);
	assert_diag_contains(cfg, "warning: Source \"s\": type: source type \"sqlite-query-import\" was renamed to \"sqlite-import-query\"");
	assert_diag_contains(cfg, "Property \"bad\": options.query: query refers to unknown property \"pkk\"\nhint: did you mean \"pk\"?");
	assert_diag_contains(cfg, "Property \"none\": options: a property of a query source needs option \"query\" or \"column\"");
	assert_int_equal(cfg->n_errors, 2);
	assert_true(cfg->sources[0]->is_query);
	assert_string_equal(cfg->sources[0]->query, "select id, n from t");
	config_free(cfg);
}

static void test_duplicate_keys_and_mapping_entries(void **state)
{
	struct fixture *f = *state;
	struct config *cfg;
	tu_write(f->dir, "d.json", "{class:'Model',id:'m',type:'profile',type:'account'}\n"
				  "{\"class\":\"App\"}");
	cfg = load(f->dir, NULL, JERR_CONFIG);
	assert_diag_contains(cfg, "d.json:2:1: error: syntax error: expected end of input after the top-level value, found '{'");
	config_free(cfg);
	tu_write(f->dir, "d.json", "{class:'Model',id:'m',type:'profile',type:'account'}");
	cfg = load(f->dir, NULL, JERR_CONFIG);
	assert_diag_contains(cfg, "d.json:1:38: error: Model \"m\": type: duplicate key \"type\" (first at line 1)");
	config_free(cfg);
}

/*
 * Issue #14: "${NAME}" in a non-secret option (table, column, sortColumn, file, ...)
 * is refused and never resolved, so no message can print the secret it names.
 */
static void test_references_only_in_secret_options(void **state)
{
	struct fixture *f = *state;
	struct env env = { { "GROUPAROO_OPTION__APP__X_API_KEY", "PATH", "DB_FILE", "PG_PASSWORD" },
			   { "the-braze-key-123", "/usr/local/bin:/usr/bin", "/srv/x.db", "pg-secret-456" } };
	struct config *cfg;
	tu_write(f->dir, "c.json",
		 "[{class:'App',id:'db',type:'sqlite',options:{file:'${DB_FILE}'}},\n"
		 " {class:'App',id:'pg',type:'postgres',options:{database:'d',password:'${PG_PASSWORD}',user:'${PG_PASSWORD}'}},\n"
		 " {class:'Model',id:'m',type:'profile'},\n"
		 " {class:'Source',id:'s',type:'sqlite-import-table',appId:'db',modelId:'m',options:{table:'${GROUPAROO_OPTION__APP__X_API_KEY}'},mapping:{id:'pk'}},\n"
		 " {class:'Property',id:'pk',type:'string',unique:true,sourceId:'s',options:{column:'${PATH}'}},\n"
		 " {class:'Property',id:'last',type:'string',sourceId:'s',options:{column:'v',aggregationMethod:'most recent value',sortColumn:'${PATH}'}},\n"
		 " {class:'Schedule',id:'sch',sourceId:'s',recurring:false,options:{column:'${PATH}'}}]");
	cfg = load(f->dir, &env, JERR_CONFIG);
	assert_diag_contains(cfg, "c.json:4:90: error: Source \"s\": options.table: option \"table\" is not a secret and cannot "
				  "refer to \"${GROUPAROO_OPTION__APP__X_API_KEY}\"\nhint: write the value itself: \"${NAME}\" is "
				  "resolved only in secret options (this object has none); to take it from the environment write \"NAME\" "
				  "and set GROUPAROO_OPTION__SOURCE__NAME\n");
	assert_diag_contains(cfg, "Property \"pk\": options.column: option \"column\" is not a secret and cannot refer to \"${PATH}\"");
	assert_diag_contains(cfg, "Property \"last\": options.sortColumn: option \"sortColumn\" is not a secret");
	assert_diag_contains(cfg, "Schedule \"sch\": options.column: option \"column\" is not a secret");
	assert_diag_contains(cfg, "App \"db\": options.file: option \"file\" is not a secret and cannot refer to \"${DB_FILE}\"");
	assert_diag_contains(cfg, "App \"pg\": options.user: option \"user\" is not a secret");
	assert_int_equal(cfg->n_errors, 6); /* the password is a secret: resolved, no error */
	/* nothing resolved: no value of the environment is anywhere in the diagnostics */
	char *t = diags_text(cfg);
	assert_null(strstr(t, "the-braze-key-123"));
	assert_null(strstr(t, "/usr/local/bin"));
	assert_null(strstr(t, "/srv/x.db"));
	assert_null(strstr(t, "pg-secret-456"));
	free(t);
	const struct cfg_option *pw = cfg_options_get(&config_app(cfg, "pg")->options, "password");
	assert_true(pw->secret && pw->sensitive);
	assert_string_equal(pw->str, "pg-secret-456");
	assert_string_equal(cfg_options_str(&config_app(cfg, "pg")->options, "user"), "");
	assert_string_equal(cfg_options_str(&config_app(cfg, "db")->options, "file"), "");
	config_free(cfg);
}

/*
 * Grouparoo's GROUPAROO_OPTION__<TOPIC>__NAME still sets any option (the example
 * project's restEndpoint), but a plain app option cannot read the variable a secret
 * option reads, nor one whose name says it is a secret.
 */
static void test_grouparoo_option_secret_stays_in_secret_options(void **state)
{
	struct fixture *f = *state;
	struct env env = { { "GROUPAROO_OPTION__APP__BRAZE_CREDENTIAL", "GROUPAROO_OPTION__APP__BRAZE_REST_ENDPOINT",
			     "GROUPAROO_OPTION__APP__PG_PASSWORD", "GROUPAROO_OPTION__APP__HOSTNAME" },
			   { "k3y-value", "rest.fra-01.braze.eu", "pw-value", "db.internal" } };
	struct config *cfg;
	tu_write(f->dir, "c.json",
		 "[{class:'App',id:'braze',type:'braze',options:{apiKey:'BRAZE_CREDENTIAL',restEndpoint:'BRAZE_REST_ENDPOINT'}},\n"
		 " {class:'App',id:'files',type:'csv',options:{file:'BRAZE_CREDENTIAL'}},\n"
		 " {class:'App',id:'pg',type:'postgres',options:{database:'d',host:'PG_PASSWORD'}},\n"
		 " {class:'App',id:'pg2',type:'postgres',options:{database:'d',host:'HOSTNAME',password:'PG_PASSWORD'}}]");
	cfg = load(f->dir, &env, JERR_CONFIG);
	assert_diag_contains(cfg, "c.json:2:51: error: App \"files\": options.file: option \"file\" is not a secret and cannot be "
				  "set from GROUPAROO_OPTION__APP__BRAZE_CREDENTIAL, which holds a secret\nhint: App \"braze\" reads its "
				  "apiKey from it; write the value of \"file\" itself\n");
	assert_diag_contains(cfg, "App \"pg\": options.host: option \"host\" is not a secret and cannot be set from "
				  "GROUPAROO_OPTION__APP__PG_PASSWORD, whose name says it holds one");
	assert_int_equal(cfg->n_errors, 2);
	char *t = diags_text(cfg);
	assert_null(strstr(t, "k3y-value"));
	assert_null(strstr(t, "pw-value"));
	free(t);
	/* the plain ones that are fine keep working */
	assert_string_equal(cfg_options_str(&config_app(cfg, "braze")->options, "restEndpoint"),
			    "https://rest.fra-01.braze.eu");
	assert_string_equal(cfg_options_str(&config_app(cfg, "pg2")->options, "host"), "db.internal");
	assert_string_equal(cfg_options_str(&config_app(cfg, "pg2")->options, "password"), "pw-value");
	assert_string_equal(cfg_options_str(&config_app(cfg, "files")->options, "file"), "");
	config_free(cfg);
}

/*
 * Issue #14: two symbolic links back to the directory (ln -s . loop1; ln -s . loop2)
 * made every command walk 2^32 paths; each directory is now entered once. A link to
 * nothing, or to a file with no '{', is a warning naming it, not silence.
 */
static void test_symlink_loops_and_links_to_nothing(void **state)
{
	struct fixture *f = *state;
	struct config *cfg;
	char path[4096], target[4096];

	tu_write(f->dir, "models/m.json", "{class:'Team',id:'t'}"); /* read: one warning */
	tu_write(f->dir, "notes.txt", "no braces here\n");
	snprintf(path, sizeof(path), "%s/loop1", f->dir);
	assert_int_equal(symlink(".", path), 0);
	snprintf(path, sizeof(path), "%s/loop2", f->dir);
	assert_int_equal(symlink(".", path), 0);
	snprintf(path, sizeof(path), "%s/models/up", f->dir);
	assert_int_equal(symlink("..", path), 0);
	snprintf(path, sizeof(path), "%s/gone.json", f->dir);
	assert_int_equal(symlink("nowhere/x.json", path), 0);
	snprintf(path, sizeof(path), "%s/plain.json", f->dir);
	snprintf(target, sizeof(target), "%s/notes.txt", f->dir);
	assert_int_equal(symlink(target, path), 0);
	cfg = load(f->dir, NULL, JERR_OK);
	assert_int_equal(cfg->n_objects, 1); /* m.json read once */
	assert_int_equal(cfg->n_files, 2); /* m.json, and plain.json (read, empty) */
	assert_diag_contains(cfg, "loop1: warning: directory already read through another path (symbolic link to \".\"): skipped\n"
				  "hint: remove the link, or point it outside the config directory\n");
	assert_diag_contains(cfg, "loop2: warning: directory already read through another path");
	assert_diag_contains(cfg, "models/up: warning: directory already read through another path (symbolic link to \"..\")");
	assert_diag_contains(cfg, "gone.json: warning: symbolic link to \"nowhere/x.json\" cannot be followed (No such file or directory): skipped\n"
				  "hint: fix or remove the link\n");
	assert_diag_contains(cfg, "plain.json: warning: symbolic link to \"");
	assert_diag_contains(cfg, "notes.txt\" holds no config object (no '{'): skipped");
	assert_int_equal(cfg->n_warnings, 6);
	config_free(cfg);
	/* the API's writer walks the same directory (config/write.c) */
	char *json = NULL, *file = NULL;
	struct jerror err = JERROR_INIT;
	tu_write(f->dir, "models/x.json", "{class:'Model',id:'mm',type:'profile'}");
	assert_int_equal(config_read_object(f->dir, CLASS_MODEL, "mm", &json, &file, &err), JERR_OK);
	assert_string_equal(file, "models/x.json");
	free(json);
	free(file);
	jerror_release(&err);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_valid_config_links, setup, teardown),
		cmocka_unit_test_setup_teardown(test_relative_direction_ignored_with_warning, setup, teardown),
		cmocka_unit_test_setup_teardown(test_relative_match_number_as_string, setup, teardown),
		cmocka_unit_test_setup_teardown(test_export_only_plugins_skipped, setup, teardown),
		cmocka_unit_test_setup_teardown(test_group_named_twice_warning, setup, teardown),
		cmocka_unit_test_setup_teardown(test_confirm_records_incremental_warning, setup, teardown),
		cmocka_unit_test_setup_teardown(test_grouparoo_option_env, setup, teardown),
		cmocka_unit_test_setup_teardown(test_literal_api_key_masked_and_missing_env, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ignored_classes_and_files, setup, teardown),
		cmocka_unit_test_setup_teardown(test_print_format, setup, teardown),
		cmocka_unit_test(test_missing_dir),
		cmocka_unit_test_setup_teardown(test_generation_and_snapshot, setup, teardown),
		cmocka_unit_test(test_enum_names),
		cmocka_unit_test_setup_teardown(test_query_source, setup, teardown),
		cmocka_unit_test_setup_teardown(test_duplicate_keys_and_mapping_entries, setup, teardown),
		cmocka_unit_test_setup_teardown(test_references_only_in_secret_options, setup, teardown),
		cmocka_unit_test_setup_teardown(test_grouparoo_option_secret_stays_in_secret_options, setup, teardown),
		cmocka_unit_test_setup_teardown(test_symlink_loops_and_links_to_nothing, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
