/* Tests for src/config/write.c: config writes, staging validation, secrets file; and the loader's secrets file. */
#include "support/testutil.h"

#include <dirent.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/strbuf.h"
#include "config/config.h"
#include "config/write.h"

/* ---- fixture: <root>/config (a copy of examples/demo/config), <root>/.joey/secrets.json ---- */

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
	char *root, *dir, *secrets;
	struct env env;
	struct config_opts opts;
};

static char *path_join(const char *a, const char *b)
{
	struct strbuf sb = STRBUF_INIT;
	strbuf_addf(&sb, "%s/%s", a, b);
	return strbuf_detach(&sb, NULL);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	const char *data = getenv("JOEY_TEST_DATA");
	struct strbuf cmd = STRBUF_INIT;
	char *out = NULL;

	f->root = tu_mkdtemp();
	f->dir = path_join(f->root, "config");
	f->secrets = path_join(f->root, ".joey/secrets.json");
	strbuf_addf(&cmd, "cp -R '%s/../examples/demo/config' '%s'", data && *data ? data : "tests", f->dir);
	if (tu_run(cmd.buf, &out) != 0)
		fail_msg("%s: %s", cmd.buf, out);
	free(out);
	strbuf_release(&cmd);
	f->env.names[0] = "MY_ENV_KEY";
	f->env.values[0] = "from-env";
	f->opts.getenv_fn = env_lookup;
	f->opts.getenv_ctx = &f->env;
	f->opts.secrets_path = f->secrets;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	tu_rmtree(f->root);
	free(f->root);
	free(f->dir);
	free(f->secrets);
	free(f);
	return 0;
}

/* ---- helpers ---- */

/* Every entry under dir (sorted, recursive): path, mode and content, as one string. */
static void snap_walk(struct strbuf *sb, const char *dir, const char *rel)
{
	char *full = *rel ? path_join(dir, rel) : strdup(dir);
	struct dirent **names;
	int n = scandir(full, &names, NULL, alphasort);
	for (int i = 0; i < n; i++) {
		const char *nm = names[i]->d_name;
		if (strcmp(nm, ".") && strcmp(nm, "..")) {
			char *crel = *rel ? path_join(rel, nm) : strdup(nm);
			char *cfull = path_join(dir, crel);
			struct stat st;
			assert_int_equal(lstat(cfull, &st), 0);
			strbuf_addf(sb, "%s %o\n", crel, (unsigned)st.st_mode);
			if (S_ISDIR(st.st_mode)) {
				snap_walk(sb, dir, crel);
			} else {
				char *text = tu_read(cfull);
				strbuf_addf(sb, "%s\n", text ? text : "");
				free(text);
			}
			free(crel);
			free(cfull);
		}
		free(names[i]);
	}
	free(names);
	free(full);
}

static char *snapshot(const char *dir)
{
	struct strbuf sb = STRBUF_INIT;
	snap_walk(&sb, dir, "");
	return strbuf_detach(&sb, NULL);
}

static char *diags_text(const struct config *cfg)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *fp = open_memstream(&buf, &len);
	config_print_diags(cfg, fp);
	fclose(fp);
	return buf;
}

static void assert_contains(const char *text, const char *what)
{
	if (!text || !strstr(text, what))
		fail_msg("[%s] does not contain [%s]", text ? text : "(null)", what);
}

static void assert_not_contains(const char *text, const char *what)
{
	if (text && strstr(text, what))
		fail_msg("[%s] contains [%s]", text, what);
}

static char *file_text(const struct fixture *f, const char *rel)
{
	char *p = path_join(f->dir, rel);
	char *t = tu_read(p);
	free(p);
	return t;
}

static bool file_exists(const char *dir, const char *rel)
{
	char *p = path_join(dir, rel);
	struct stat st;
	bool ok = stat(p, &st) == 0;
	free(p);
	return ok;
}

/* Run one write; fails the test unless it returns want. Result left in *res (release it). */
static void do_write(struct fixture *f, enum cfg_write_op op, enum cfg_class cls, const char *id,
		     const char *json, enum jerr want, struct cfg_write_result *res, struct jerror *err)
{
	struct cfg_write w = { .op = op, .cls = cls, .id = id, .object_json = json };
	enum jerr rc = config_write(f->dir, &w, &f->opts, res, err);
	if (rc != want) {
		char *d = res->cfg ? diags_text(res->cfg) : NULL;
		fail_msg("config_write returned %d (%s; %s; %s), want %d\n%s", rc, err->msg.buf, err->detail.buf,
			 err->hint.buf, want, d ? d : "");
	}
}

/* A write that must succeed; the result is released. */
static void ok_write(struct fixture *f, enum cfg_write_op op, enum cfg_class cls, const char *id,
		     const char *json, const char *want_file)
{
	struct cfg_write_result res;
	struct jerror err = JERROR_INIT;
	do_write(f, op, cls, id, json, JERR_OK, &res, &err);
	assert_non_null(res.cfg);
	assert_int_equal(res.cfg->n_errors, 0);
	assert_string_equal(res.cfg->dir, f->dir);
	/* paths resolve from the real directory's project root, never the staging copy's */
	char *real = realpath(f->root, NULL);
	assert_string_equal(res.cfg->root, real);
	free(real);
	if (want_file)
		assert_string_equal(res.file, want_file);
	if (op == CFG_WRITE_DELETE)
		assert_null(res.stored_json);
	else
		assert_non_null(res.stored_json);
	cfg_write_result_release(&res);
	jerror_release(&err);
}

/* A write that must fail with want and change nothing under the fixture root; returns the message. */
static char *bad_write(struct fixture *f, enum cfg_write_op op, enum cfg_class cls, const char *id,
		       const char *json, enum jerr want, char **diags)
{
	struct cfg_write_result res;
	struct jerror err = JERROR_INIT;
	char *before = snapshot(f->root), *after, *msg;

	do_write(f, op, cls, id, json, want, &res, &err);
	after = snapshot(f->root);
	assert_string_equal(before, after);
	if (want == JERR_CONFIG) {
		assert_non_null(res.cfg);
		assert_true(res.cfg->n_errors > 0);
		if (diags)
			*diags = diags_text(res.cfg);
	} else {
		assert_null(res.cfg);
	}
	assert_null(res.file);
	assert_null(res.stored_json);
	assert_true(err.msg.len > 0);
	{
		struct strbuf sb = STRBUF_INIT;
		strbuf_addf(&sb, "%s\ndetail: %s\nhint: %s", err.msg.buf, err.detail.buf, err.hint.buf);
		msg = strbuf_detach(&sb, NULL);
	}
	free(before);
	free(after);
	cfg_write_result_release(&res);
	jerror_release(&err);
	return msg;
}

static struct config *load(struct fixture *f, enum jerr want)
{
	struct config *cfg = NULL;
	struct jerror err = JERROR_INIT;
	enum jerr rc = config_load(f->dir, &f->opts, &cfg, &err);
	if (rc != want) {
		char *d = cfg ? diags_text(cfg) : NULL;
		fail_msg("config_load returned %d, want %d\n%s", rc, want, d ? d : "");
	}
	jerror_release(&err);
	return cfg;
}

static const struct cfg_option *app_option(const struct config *cfg, const char *app, const char *key)
{
	const struct cfg_app *a = config_app(cfg, app);
	assert_non_null(a);
	return cfg_options_get(&a->options, key);
}

/* ---- tests ---- */

static void test_class_dirs(void **state)
{
	enum cfg_class c;
	(void)state;
	assert_string_equal(cfg_class_dir(CLASS_APP), "apps");
	assert_string_equal(cfg_class_dir(CLASS_PROPERTY), "properties");
	assert_string_equal(cfg_class_dir(CLASS_SCHEDULE), "schedules");
	assert_null(cfg_class_dir(CLASS__COUNT));
	assert_true(cfg_class_from_dir("destinations", &c));
	assert_int_equal(c, CLASS_DESTINATION);
	assert_true(cfg_class_from_dir("models", &c));
	assert_int_equal(c, CLASS_MODEL);
	assert_false(cfg_class_from_dir("teams", &c));
	assert_false(cfg_class_from_dir("App", &c));
}

static const char *NEW_APP = "{\"id\": \"warehouse2\", \"class\": \"App\", \"name\": \"Second\", \"type\": \"sqlite\", \"options\": {\"file\": \"../other.db\"}}";
static const char *NEW_SOURCE =
	"{\"id\": \"orders_table\", \"class\": \"Source\", \"type\": \"sqlite-import-table\", \"appId\": \"warehouse2\", "
	"\"modelId\": \"users\", \"options\": {\"table\": \"orders\"}, \"mapping\": {\"user_id\": \"user_id\"}}";
static const char *NEW_PROPERTY =
	"{\"id\": \"order_count\", \"class\": \"Property\", \"key\": \"order_count\", \"type\": \"integer\", "
	"\"sourceId\": \"orders_table\", \"options\": {\"column\": \"id\", \"aggregationMethod\": \"count\"}}";
static const char *NEW_GROUP =
	"{\"id\": \"big_orders\", \"class\": \"Group\", \"name\": \"Big orders\", \"modelId\": \"users\", "
	"\"rules\": [{\"propertyId\": \"order_count\", \"op\": \"gte\", \"match\": 5}]}";
static const char *NEW_DEST =
	"{\"id\": \"braze_orders\", \"class\": \"Destination\", \"type\": \"braze-export-users\", \"appId\": \"braze\", "
	"\"modelId\": \"users\", \"syncMode\": \"sync\", \"collection\": \"group\", \"groupId\": \"big_orders\", "
	"\"mapping\": {\"external_id\": \"user_id\", \"order_count\": \"order_count\"}}";
static const char *NEW_SCHEDULE =
	"{\"id\": \"orders_schedule\", \"class\": \"Schedule\", \"sourceId\": \"orders_table\", \"recurring\": true, "
	"\"recurringFrequency\": 3600000, \"options\": {\"column\": \"id\"}}";

static void test_create_update_delete_each_class(void **state)
{
	struct fixture *f = *state;
	struct config *cfg = load(f, JERR_OK);
	char *before, *after, *t, *diags = NULL, *msg;
	struct cfg_write_result res;
	struct jerror err = JERROR_INIT;

	config_free(cfg);
	before = snapshot(f->root);

	/* create, in dependency order */
	do_write(f, CFG_WRITE_CREATE, CLASS_APP, NULL, NEW_APP, JERR_OK, &res, &err);
	assert_string_equal(res.file, "apps/warehouse2.json");
	assert_string_equal(res.stored_json, "{\n  \"id\": \"warehouse2\",\n  \"class\": \"App\",\n  \"name\": \"Second\",\n"
					     "  \"type\": \"sqlite\",\n  \"options\": {\n    \"file\": \"../other.db\"\n  }\n}");
	assert_non_null(config_app(res.cfg, "warehouse2"));
	t = file_text(f, "apps/warehouse2.json");
	assert_non_null(t);
	assert_int_equal(strlen(t), strlen(res.stored_json) + 1); /* + final newline */
	assert_memory_equal(t, res.stored_json, strlen(res.stored_json));
	free(t);
	cfg_write_result_release(&res);
	ok_write(f, CFG_WRITE_CREATE, CLASS_SOURCE, NULL, NEW_SOURCE, "sources/orders_table.json");
	ok_write(f, CFG_WRITE_CREATE, CLASS_PROPERTY, NULL, NEW_PROPERTY, "properties/order_count.json");
	ok_write(f, CFG_WRITE_CREATE, CLASS_GROUP, NULL, NEW_GROUP, "groups/big_orders.json");
	ok_write(f, CFG_WRITE_CREATE, CLASS_DESTINATION, "braze_orders", NEW_DEST, "destinations/braze_orders.json");
	ok_write(f, CFG_WRITE_CREATE, CLASS_SCHEDULE, NULL, NEW_SCHEDULE, "schedules/orders_schedule.json");
	cfg = load(f, JERR_OK);
	assert_int_equal(cfg->n_apps, 3);
	assert_int_equal(cfg->n_sources, 3);
	assert_int_equal(cfg->n_groups, 3);
	assert_int_equal(cfg->n_destinations, 4);
	assert_int_equal(cfg->n_schedules, 2);
	assert_string_equal(config_destination(cfg, "braze_orders")->group->id, "big_orders");
	config_free(cfg);

	/* update each */
	ok_write(f, CFG_WRITE_UPDATE, CLASS_APP, "warehouse2",
		 "{\"id\": \"warehouse2\", \"class\": \"app\", \"name\": \"Renamed\", \"type\": \"sqlite\", \"options\": {\"file\": \"../third.db\"}}",
		 "apps/warehouse2.json");
	t = file_text(f, "apps/warehouse2.json");
	assert_contains(t, "\"class\": \"app\"");
	assert_contains(t, "../third.db");
	free(t);
	ok_write(f, CFG_WRITE_UPDATE, CLASS_SOURCE, "orders_table",
		 "{\"id\": \"orders_table\", \"class\": \"Source\", \"name\": \"Orders\", \"type\": \"sqlite-import-table\", \"appId\": \"warehouse2\", "
		 "\"modelId\": \"users\", \"options\": {\"table\": \"orders_v2\"}, \"mapping\": {\"user_id\": \"user_id\"}}",
		 "sources/orders_table.json");
	/* no "id": taken from the request; no "class": added after the id */
	do_write(f, CFG_WRITE_UPDATE, CLASS_PROPERTY, "order_count",
		 "{\"key\": \"order_count\", \"type\": \"integer\", \"sourceId\": \"orders_table\", "
		 "\"options\": {\"column\": \"id\", \"aggregationMethod\": \"count\"}, \"filters\": [{\"key\": \"amount\", \"op\": \"gt\", \"match\": 0.1}]}",
		 JERR_OK, &res, &err);
	assert_string_equal(res.stored_json,
			    "{\n  \"id\": \"order_count\",\n  \"class\": \"Property\",\n  \"key\": \"order_count\",\n  \"type\": \"integer\",\n"
			    "  \"sourceId\": \"orders_table\",\n  \"options\": {\n    \"column\": \"id\",\n    \"aggregationMethod\": \"count\"\n  },\n"
			    "  \"filters\": [\n    {\n      \"key\": \"amount\",\n      \"op\": \"gt\",\n      \"match\": 0.1\n    }\n  ]\n}");
	cfg_write_result_release(&res);
	ok_write(f, CFG_WRITE_UPDATE, CLASS_GROUP, "big_orders",
		 "{\"id\": \"big_orders\", \"class\": \"Group\", \"name\": \"Bigger\", \"modelId\": \"users\", "
		 "\"rules\": [{\"propertyId\": \"order_count\", \"op\": \"gte\", \"match\": 10}]}",
		 "groups/big_orders.json");
	ok_write(f, CFG_WRITE_UPDATE, CLASS_DESTINATION, "braze_orders",
		 "{\"id\": \"braze_orders\", \"class\": \"Destination\", \"type\": \"braze-export-users\", \"appId\": \"braze\", "
		 "\"modelId\": \"users\", \"syncMode\": \"additive\", \"collection\": \"model\", "
		 "\"mapping\": {\"external_id\": \"user_id\", \"order_count\": \"order_count\"}}",
		 "destinations/braze_orders.json");
	ok_write(f, CFG_WRITE_UPDATE, CLASS_SCHEDULE, "orders_schedule",
		 "{\"id\": \"orders_schedule\", \"class\": \"Schedule\", \"sourceId\": \"orders_table\", \"recurring\": false, "
		 "\"options\": {\"column\": \"id\", \"cron\": \"0 * * * *\"}}",
		 "schedules/orders_schedule.json");
	cfg = load(f, JERR_OK);
	assert_string_equal(config_app(cfg, "warehouse2")->name, "Renamed");
	assert_int_equal(config_destination(cfg, "braze_orders")->sync_mode, SYNC_ADDITIVE);
	config_free(cfg);

	/* deleting an object others refer to is a validation error; nothing changes */
	msg = bad_write(f, CFG_WRITE_DELETE, CLASS_SOURCE, "orders_table", NULL, JERR_CONFIG, &diags);
	assert_contains(msg, "Source \"orders_table\" was not deleted: the config would be invalid");
	assert_contains(diags, "unknown Source \"orders_table\"");
	free(msg);
	free(diags);

	/* delete, in reverse dependency order: files go away */
	ok_write(f, CFG_WRITE_DELETE, CLASS_SCHEDULE, "orders_schedule", NULL, "schedules/orders_schedule.json");
	ok_write(f, CFG_WRITE_DELETE, CLASS_DESTINATION, "braze_orders", NULL, "destinations/braze_orders.json");
	ok_write(f, CFG_WRITE_DELETE, CLASS_GROUP, "big_orders", NULL, "groups/big_orders.json");
	ok_write(f, CFG_WRITE_DELETE, CLASS_PROPERTY, "order_count", NULL, "properties/order_count.json");
	ok_write(f, CFG_WRITE_DELETE, CLASS_SOURCE, "orders_table", NULL, "sources/orders_table.json");
	ok_write(f, CFG_WRITE_DELETE, CLASS_APP, "warehouse2", NULL, "apps/warehouse2.json");
	assert_false(file_exists(f->dir, "apps/warehouse2.json"));
	after = snapshot(f->root);
	assert_string_equal(before, after); /* back to the start, byte for byte */
	free(after);

	/* models: update works; a model alone has no primary key, and users is referenced */
	ok_write(f, CFG_WRITE_UPDATE, CLASS_MODEL, "users",
		 "{\"id\": \"users\", \"name\": \"People\", \"class\": \"Model\", \"type\": \"profile\"}", "models/users.json");
	cfg = load(f, JERR_OK);
	assert_string_equal(config_model(cfg, "users")->name, "People");
	config_free(cfg);
	msg = bad_write(f, CFG_WRITE_CREATE, CLASS_MODEL, NULL,
			"{\"id\": \"accounts\", \"class\": \"Model\", \"name\": \"Accounts\", \"type\": \"account\"}",
			JERR_CONFIG, &diags);
	assert_contains(diags, "no primary key");
	free(msg);
	free(diags);
	msg = bad_write(f, CFG_WRITE_DELETE, CLASS_MODEL, "users", NULL, JERR_CONFIG, NULL);
	free(msg);
	free(before);
	jerror_release(&err);
}

static void test_invalid_change_changes_nothing(void **state)
{
	struct fixture *f = *state;
	char *msg, *diags = NULL;
	DIR *d;
	struct dirent *de;

	msg = bad_write(f, CFG_WRITE_UPDATE, CLASS_PROPERTY, "ltv",
			"{\"id\": \"ltv\", \"class\": \"Property\", \"key\": \"ltv\", \"type\": \"bogus\", \"sourceId\": \"purchases_table\", "
			"\"options\": {\"column\": \"amount\", \"aggregationMethod\": \"sum\"}}",
			JERR_CONFIG, &diags);
	assert_contains(msg, "Property \"ltv\" was not updated: the config would be invalid (");
	assert_contains(msg, "hint: nothing was changed");
	/* diagnostics name the real file (the array file the object lives in) */
	assert_contains(diags, "properties/purchases.json:");
	assert_contains(diags, "invalid value \"bogus\"");
	free(msg);
	free(diags);

	msg = bad_write(f, CFG_WRITE_CREATE, CLASS_SOURCE, NULL,
			"{\"id\": \"s2\", \"class\": \"Source\", \"type\": \"sqlite-import-table\", \"appId\": \"demo_dbb\", "
			"\"modelId\": \"users\", \"options\": {\"table\": \"t\"}, \"mapping\": {\"user_id\": \"user_id\"}}",
			JERR_CONFIG, &diags);
	assert_contains(diags, "sources/s2.json:");
	assert_contains(diags, "did you mean \"demo_db\"?");
	free(msg);
	free(diags);

	msg = bad_write(f, CFG_WRITE_DELETE, CLASS_PROPERTY, "user_id", NULL, JERR_CONFIG, NULL);
	free(msg);

	/* no staging directory is left beside the config directory */
	d = opendir(f->root);
	assert_non_null(d);
	while ((de = readdir(d)))
		assert_null(strstr(de->d_name, "joey-write"));
	closedir(d);
}

/* A dry run (the UI's previews of unsaved objects): validated, the config as it would be, nothing on disk. */
static void test_dry_run_changes_nothing(void **state)
{
	struct fixture *f = *state;
	struct cfg_write_result res = { 0 };
	struct jerror err = JERROR_INIT;
	char *before = snapshot(f->root), *after;
	struct cfg_write w = { .op = CFG_WRITE_CREATE, .cls = CLASS_GROUP,
			       .object_json = "{\"id\": \"big\", \"class\": \"Group\", \"name\": \"Big\", \"modelId\": \"users\", "
					      "\"rules\": [{\"propertyId\": \"ltv\", \"op\": \"gte\", \"match\": 100}]}",
			       .dry_run = true };
	assert_int_equal(config_write(f->dir, &w, &f->opts, &res, &err), JERR_OK);
	assert_non_null(res.cfg);
	const struct cfg_model *m = config_model(res.cfg, "users");
	assert_non_null(m);
	bool found = false;
	for (size_t i = 0; i < m->n_groups; i++)
		found |= !strcmp(m->groups[i]->id, "big") && m->groups[i]->n_rules == 1;
	assert_true(found);
	assert_string_equal(res.file, "groups/big.json");
	assert_contains(res.stored_json, "\"propertyId\": \"ltv\"");
	cfg_write_result_release(&res);
	/* an invalid one: the diagnostics, as a real write */
	w.object_json = "{\"id\": \"big\", \"class\": \"Group\", \"modelId\": \"users\", "
			"\"rules\": [{\"propertyId\": \"nope\", \"op\": \"gte\", \"match\": 1}]}";
	assert_int_equal(config_write(f->dir, &w, &f->opts, &res, &err), JERR_CONFIG);
	assert_non_null(res.cfg);
	assert_true(res.cfg->n_errors > 0);
	cfg_write_result_release(&res);
	jerror_release(&err);
	after = snapshot(f->root);
	assert_string_equal(before, after);
	free(before);
	free(after);
}

static void test_usage_errors(void **state)
{
	struct fixture *f = *state;
	char *msg;

	msg = bad_write(f, CFG_WRITE_CREATE, CLASS_APP, NULL, "{\"id\": \"x\", \"class\": \"Source\"}", JERR_USAGE, NULL);
	assert_contains(msg, "class mismatch: the object is \"Source\", not App");
	assert_contains(msg, "hint: send it to the route of its class");
	free(msg);
	msg = bad_write(f, CFG_WRITE_CREATE, CLASS_APP, NULL, "{\"id\": \"x\", \"class\": 7}", JERR_USAGE, NULL);
	assert_contains(msg, "\"class\" of the App object must be a string");
	free(msg);
	msg = bad_write(f, CFG_WRITE_CREATE, CLASS_APP, NULL, "{\"id\": \"x\", ", JERR_USAGE, NULL);
	assert_contains(msg, "invalid JSON in the App object\ndetail: line 1");
	free(msg);
	msg = bad_write(f, CFG_WRITE_CREATE, CLASS_APP, NULL, "{\"id\": \"x\", \"id\": \"y\"}", JERR_USAGE, NULL);
	assert_contains(msg, "invalid JSON");
	free(msg);
	msg = bad_write(f, CFG_WRITE_CREATE, CLASS_APP, NULL, "[{\"id\": \"x\"}]", JERR_USAGE, NULL);
	assert_contains(msg, "expected a JSON object for the App, found an array");
	free(msg);
	msg = bad_write(f, CFG_WRITE_CREATE, CLASS_APP, NULL, "{\"class\": \"App\"}", JERR_USAGE, NULL);
	assert_contains(msg, "the App object has no \"id\"");
	free(msg);

	/* id taken: per class, like the loader */
	msg = bad_write(f, CFG_WRITE_CREATE, CLASS_APP, NULL,
			"{\"id\": \"braze\", \"class\": \"App\", \"type\": \"sqlite\", \"options\": {\"file\": \"x.db\"}}", JERR_USAGE, NULL);
	assert_contains(msg, "App \"braze\" already exists\ndetail: it is defined in apps/braze.json");
	free(msg);
	msg = bad_write(f, CFG_WRITE_CREATE, CLASS_PROPERTY, NULL,
			"{\"id\": \"email\", \"class\": \"Property\", \"type\": \"email\", \"sourceId\": \"users_table\", \"options\": {\"column\": \"email\"}}",
			JERR_USAGE, NULL);
	assert_contains(msg, "Property \"email\" already exists\ndetail: it is defined in properties/users.json");
	free(msg);
	/* ...but a Group may share a Source's id */
	ok_write(f, CFG_WRITE_CREATE, CLASS_GROUP, NULL,
		 "{\"id\": \"users_table\", \"class\": \"Group\", \"modelId\": \"users\", \"rules\": [{\"propertyId\": \"email\", \"op\": \"exists\"}]}",
		 "groups/users_table.json");

	/* unknown ids */
	msg = bad_write(f, CFG_WRITE_UPDATE, CLASS_APP, "nope", "{\"id\": \"nope\", \"class\": \"App\"}", JERR_USAGE, NULL);
	assert_contains(msg, "App \"nope\" does not exist");
	free(msg);
	msg = bad_write(f, CFG_WRITE_DELETE, CLASS_SCHEDULE, "nope", NULL, JERR_USAGE, NULL);
	assert_contains(msg, "Schedule \"nope\" does not exist");
	free(msg);
	/* a source id is not an App */
	msg = bad_write(f, CFG_WRITE_DELETE, CLASS_APP, "users_table", NULL, JERR_USAGE, NULL);
	assert_contains(msg, "App \"users_table\" does not exist");
	free(msg);
	/* rename through update */
	msg = bad_write(f, CFG_WRITE_UPDATE, CLASS_APP, "braze", "{\"id\": \"braze2\", \"class\": \"App\"}", JERR_USAGE, NULL);
	assert_contains(msg, "id \"braze2\" in the object does not match \"braze\"\ndetail: \nhint: a rename is a delete and a create");
	free(msg);
}

static void test_path_traversal_ids_refused(void **state)
{
	struct fixture *f = *state;
	static const char *const bad[] = { "../x", "..", ".", ".hidden", "a/b", "/etc", "", "a b", "a\\b", "x\n" };
	char long_id[140];
	char *json, *file, *msg;
	struct jerror err = JERROR_INIT;

	memset(long_id, 'a', 129);
	long_id[129] = '\0';
	for (size_t i = 0; i <= sizeof(bad) / sizeof(bad[0]); i++) {
		const char *id = i < sizeof(bad) / sizeof(bad[0]) ? bad[i] : long_id;
		json_t *o = json_pack("{s:s, s:s, s:s, s:{s:s}}", "id", id, "class", "App", "type", "sqlite", "options", "file", "x.db");
		char *text = json_dumps(o, 0);
		msg = bad_write(f, CFG_WRITE_CREATE, CLASS_APP, NULL, text, JERR_USAGE, NULL);
		assert_contains(msg, "invalid id");
		free(msg);
		msg = bad_write(f, CFG_WRITE_UPDATE, CLASS_APP, id, text, JERR_USAGE, NULL);
		assert_contains(msg, "invalid id");
		free(msg);
		msg = bad_write(f, CFG_WRITE_DELETE, CLASS_APP, id, NULL, JERR_USAGE, NULL);
		assert_contains(msg, "invalid id");
		free(msg);
		assert_int_equal(config_read_object(f->dir, CLASS_APP, id, &json, &file, &err), JERR_USAGE);
		assert_null(json);
		assert_null(file);
		free(text);
		json_decref(o);
	}
	msg = bad_write(f, CFG_WRITE_DELETE, CLASS_APP, NULL, NULL, JERR_USAGE, NULL);
	free(msg);
	assert_false(file_exists(f->root, "x.json"));
	assert_false(file_exists(f->dir, "x.json"));
	/* 128 characters and inner dots pass the write's check (the loader then refuses the dot) */
	long_id[128] = '\0';
	msg = bad_write(f, CFG_WRITE_DELETE, CLASS_APP, long_id, NULL, JERR_USAGE, NULL);
	assert_contains(msg, "does not exist");
	free(msg);
	jerror_release(&err);
}

/*
 * The config directory is a symlink to a directory elsewhere: the staging copy is made
 * beside the link's target, yet files still resolve from the directory holding the link
 * (the project root), and a write validated with file checks finds the database there.
 */
static void test_symlinked_dir_keeps_project_root(void **state)
{
	struct fixture *f = *state;
	char *elsewhere = path_join(f->root, "elsewhere"), *target = path_join(elsewhere, "shared-config");
	char *db = path_join(f->root, "demo.db"), *msg, *diags = NULL;
	static const char *const app =
		"{\"id\": \"demo_db\", \"class\": \"App\", \"type\": \"sqlite\", \"options\": {\"file\": \"demo.db\"}}";
	FILE *fp;

	assert_int_equal(mkdir(elsewhere, 0755), 0);
	assert_int_equal(rename(f->dir, target), 0);
	assert_int_equal(symlink(target, f->dir), 0);
	f->opts.check_files = true;

	/* demo.db is missing from the project root: the write is refused, naming the path */
	msg = bad_write(f, CFG_WRITE_UPDATE, CLASS_APP, "demo_db", app, JERR_CONFIG, &diags);
	assert_non_null(strstr(diags, "options.file: SQLite database \""));
	assert_non_null(strstr(diags, "/demo.db\" does not exist"));
	assert_null(strstr(diags, "elsewhere/demo.db"));
	free(msg);
	free(diags);

	/* there it is: the write goes through, and the config's root is the fixture root */
	fp = fopen(db, "w");
	assert_non_null(fp);
	fclose(fp);
	ok_write(f, CFG_WRITE_UPDATE, CLASS_APP, "demo_db", app, "apps/demo_db.json");
	free(elsewhere);
	free(target);
	free(db);
}

static void test_array_files_and_json5(void **state)
{
	struct fixture *f = *state;
	char *t, *before, *after, *json, *file;
	struct jerror err = JERROR_INIT;

	tu_write(f->dir, "properties/extra.json",
		 "// two extra properties, JSON5\n"
		 "[\n"
		 "  { id: 'first_x', class: 'property', key: 'first_x', type: 'string', sourceId: 'users_table',\n"
		 "    options: { column: 'x', aggregationMethod: 'exact' }, },  // trailing comma\n"
		 "  {},\n"
		 "  { id: 'second_x', class: 'Property', key: 'second_x', type: 'float', sourceId: 'users_table',\n"
		 "    options: { column: 'y' }, filters: [{ key: 'y', op: 'gt', match: 0.1 }, { key: 'z', op: 'eq', match: 0x10 }] },\n"
		 "]\n");
	t = tu_read(f->secrets);
	assert_null(t);

	/* read: pretty JSON of the object as written */
	assert_int_equal(config_read_object(f->dir, CLASS_PROPERTY, "second_x", &json, &file, &err), JERR_OK);
	assert_string_equal(file, "properties/extra.json");
	assert_contains(json, "\"match\": 0.1\n");
	assert_contains(json, "\"match\": 16\n");
	free(json);
	free(file);

	/* update one element: the file stays an array; the other elements and the comments
	 * are kept as written, the element's new text takes its place */
	ok_write(f, CFG_WRITE_UPDATE, CLASS_PROPERTY, "first_x",
		 "{\"id\": \"first_x\", \"class\": \"Property\", \"key\": \"first_x\", \"type\": \"string\", \"sourceId\": \"users_table\", "
		 "\"options\": {\"column\": \"xx\"}}",
		 "properties/extra.json");
	t = file_text(f, "properties/extra.json");
	assert_string_equal(t, "// two extra properties, JSON5\n"
			       "[\n"
			       "  {\n"
			       "    \"id\": \"first_x\",\n"
			       "    \"class\": \"Property\",\n"
			       "    \"key\": \"first_x\",\n"
			       "    \"type\": \"string\",\n"
			       "    \"sourceId\": \"users_table\",\n"
			       "    \"options\": {\n"
			       "      \"column\": \"xx\"\n"
			       "    }\n"
			       "  },  // trailing comma\n"
			       "  {},\n"
			       "  { id: 'second_x', class: 'Property', key: 'second_x', type: 'float', sourceId: 'users_table',\n"
			       "    options: { column: 'y' }, filters: [{ key: 'y', op: 'gt', match: 0.1 }, { key: 'z', op: 'eq', match: 0x10 }] },\n"
			       "]\n");
	free(t);

	/* delete one element (its lines and its comma go), then the last: the file goes away */
	ok_write(f, CFG_WRITE_DELETE, CLASS_PROPERTY, "second_x", NULL, "properties/extra.json");
	t = file_text(f, "properties/extra.json");
	assert_contains(t, "  },  // trailing comma\n  {},\n]\n");
	assert_not_contains(t, "second_x");
	free(t);
	ok_write(f, CFG_WRITE_DELETE, CLASS_PROPERTY, "first_x", NULL, "properties/extra.json");
	assert_false(file_exists(f->dir, "properties/extra.json"));

	/* the demo's JSON5 app file (comments, trailing commas): the object is replaced, the
	 * comments above it stay */
	ok_write(f, CFG_WRITE_UPDATE, CLASS_APP, "demo_db",
		 "{\"id\": \"demo_db\", \"name\": \"Warehouse\", \"class\": \"App\", \"type\": \"sqlite\", \"options\": {\"file\": \"demo.db\"}}",
		 "apps/demo_db.json");
	t = file_text(f, "apps/demo_db.json");
	assert_string_equal(t, "// The demo warehouse: demo.db in the project root, the directory holding this config\n"
			       "// directory (relative paths are resolved from there, as in Grouparoo).\n"
			       "{\n  \"id\": \"demo_db\",\n  \"name\": \"Warehouse\",\n  \"class\": \"App\",\n  \"type\": \"sqlite\",\n"
			       "  \"options\": {\n    \"file\": \"demo.db\"\n  }\n}\n");
	free(t);

	/* an update of an array file that fails validation leaves it as it was */
	before = snapshot(f->root);
	t = bad_write(f, CFG_WRITE_UPDATE, CLASS_PROPERTY, "email",
		      "{\"id\": \"email\", \"class\": \"Property\", \"key\": \"email\", \"type\": \"email\", \"sourceId\": \"nope\"}",
		      JERR_CONFIG, NULL);
	free(t);
	after = snapshot(f->root);
	assert_string_equal(before, after);
	free(before);
	free(after);

	/* folder names carry no meaning: an object is found wherever it is, and a missing
	 * class directory is created */
	{
		char *from = path_join(f->dir, "schedules/users_schedule.json");
		char *to_dir = path_join(f->dir, "misc"), *to = path_join(f->dir, "misc/users_schedule.json");
		char *sched_dir = path_join(f->dir, "schedules");
		assert_int_equal(mkdir(to_dir, 0755), 0);
		assert_int_equal(rename(from, to), 0);
		assert_int_equal(rmdir(sched_dir), 0);
		ok_write(f, CFG_WRITE_UPDATE, CLASS_SCHEDULE, "users_schedule",
			 "{\"id\": \"users_schedule\", \"class\": \"Schedule\", \"sourceId\": \"users_table\", \"options\": {\"column\": \"id\"}}",
			 "misc/users_schedule.json");
		ok_write(f, CFG_WRITE_CREATE, CLASS_SCHEDULE, NULL,
			 "{\"id\": \"purchases_schedule\", \"class\": \"Schedule\", \"sourceId\": \"purchases_table\", \"options\": {\"column\": \"id\"}}",
			 "schedules/purchases_schedule.json");
		free(from);
		free(to);
		free(to_dir);
		free(sched_dir);
	}

	/* a new object whose natural file name is taken by another file */
	tu_write(f->dir, "groups/g2.json", "// reserved\n");
	ok_write(f, CFG_WRITE_CREATE, CLASS_GROUP, NULL,
		 "{\"id\": \"g2\", \"class\": \"Group\", \"modelId\": \"users\", \"rules\": [{\"propertyId\": \"email\", \"op\": \"exists\"}]}",
		 "groups/g2-2.json");
	jerror_release(&err);
}

/* Concatenation of the NULL-terminated parts (owned). */
static char *cat(const char *first, ...)
{
	struct strbuf sb = STRBUF_INIT;
	va_list ap;
	va_start(ap, first);
	for (const char *p = first; p; p = va_arg(ap, const char *))
		strbuf_addstr(&sb, p);
	va_end(ap);
	return strbuf_detach(&sb, NULL);
}

/*
 * Writes through the API keep users' files as they wrote them (they keep them in git):
 * every byte outside the changed object stays, comments and JSON5 included.
 */
static void test_write_keeps_comments_and_layout(void **state)
{
	struct fixture *f = *state;
	static const char head[] = "// Two groups, written by hand (JSON5)\n"
				   "[\n"
				   "  /* the first: big spenders */\n"
				   "  ";
	static const char first[] = "{\n"
				    "    id: 'big_spenders', // unquoted keys, single quotes\n"
				    "    class: 'Group',\n"
				    "    name: 'Big spenders',\n"
				    "    modelId: 'users',\n"
				    "    rules: [{ propertyId: 'ltv', op: 'gt', match: 100, },],\n"
				    "  }";
	static const char between[] = ",\n"
				      "  // the second\n"
				      "  ";
	static const char second[] = "{\n"
				     "    \"id\": \"with_email\",\n"
				     "    'class': 'Group',\n"
				     "    modelId: 'users',\n"
				     "    rules: [\n"
				     "      { propertyId: 'email', op: 'exists' }, // trailing comma below\n"
				     "    ],\n"
				     "  }";
	static const char tail[] = ",\n"
				   "]\n"
				   "// end of file\n";
	static const char first_new[] = "{\n"
					"    \"id\": \"big_spenders\",\n"
					"    \"class\": \"Group\",\n"
					"    \"name\": \"Bigger spenders\",\n"
					"    \"modelId\": \"users\",\n"
					"    \"rules\": [\n"
					"      {\n"
					"        \"propertyId\": \"ltv\",\n"
					"        \"op\": \"gt\",\n"
					"        \"match\": 500\n"
					"      }\n"
					"    ]\n"
					"  }";
	char *orig = cat(head, first, between, second, tail, NULL), *want, *t;

	tu_write(f->dir, "groups/pair.json", orig);
	struct config *cfg = load(f, JERR_OK);
	config_free(cfg);

	/* update the first: only its text changes, indented as it was */
	ok_write(f, CFG_WRITE_UPDATE, CLASS_GROUP, "big_spenders",
		 "{\"id\": \"big_spenders\", \"class\": \"Group\", \"name\": \"Bigger spenders\", \"modelId\": \"users\", "
		 "\"rules\": [{\"propertyId\": \"ltv\", \"op\": \"gt\", \"match\": 500}]}",
		 "groups/pair.json");
	t = file_text(f, "groups/pair.json");
	want = cat(head, first_new, between, second, tail, NULL);
	assert_string_equal(t, want);
	free(t);
	free(want);

	/* read back through the API's reader: the new values */
	{
		char *json, *file;
		struct jerror err = JERROR_INIT;
		assert_int_equal(config_read_object(f->dir, CLASS_GROUP, "big_spenders", &json, &file, &err), JERR_OK);
		assert_contains(json, "\"match\": 500");
		free(json);
		free(file);
		jerror_release(&err);
	}

	/* delete the second (a trailing comma after it): its lines go, the comment above stays */
	ok_write(f, CFG_WRITE_DELETE, CLASS_GROUP, "with_email", NULL, "groups/pair.json");
	t = file_text(f, "groups/pair.json");
	want = cat(head, first_new, ",\n  // the second\n]\n// end of file\n", NULL);
	assert_string_equal(t, want);
	free(t);
	free(want);

	/* the last element with no comma after it takes the comma before it; one line */
	tu_write(f->dir, "groups/line.json",
		 "[{ id: 'g_a', class: 'Group', modelId: 'users', rules: [] }, { id: 'g_b', class: 'Group', modelId: 'users', rules: [] }] // two\n");
	ok_write(f, CFG_WRITE_DELETE, CLASS_GROUP, "g_b", NULL, "groups/line.json");
	t = file_text(f, "groups/line.json");
	assert_string_equal(t, "[{ id: 'g_a', class: 'Group', modelId: 'users', rules: [] }] // two\n");
	free(t);
	tu_write(f->dir, "groups/line.json",
		 "[{ id: 'g_a', class: 'Group', modelId: 'users', rules: [] }, { id: 'g_b', class: 'Group', modelId: 'users', rules: [] }]\n");
	ok_write(f, CFG_WRITE_DELETE, CLASS_GROUP, "g_a", NULL, "groups/line.json");
	t = file_text(f, "groups/line.json");
	assert_string_equal(t, "[{ id: 'g_b', class: 'Group', modelId: 'users', rules: [] }]\n");
	free(t);

	/* CRLF line ends stay CRLF */
	tu_write(f->dir, "groups/crlf.json", "// crlf\r\n{ id: 'g_c', class: 'Group', modelId: 'users', rules: [] }\r\n");
	ok_write(f, CFG_WRITE_UPDATE, CLASS_GROUP, "g_c", "{\"id\": \"g_c\", \"class\": \"Group\", \"modelId\": \"users\", \"rules\": []}",
		 "groups/crlf.json");
	t = file_text(f, "groups/crlf.json");
	assert_string_equal(t, "// crlf\r\n{\r\n  \"id\": \"g_c\",\r\n  \"class\": \"Group\",\r\n  \"modelId\": \"users\",\r\n  \"rules\": []\r\n}\r\n");
	free(t);
	free(orig);
}

static mode_t file_mode(const char *path)
{
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	return st.st_mode & 07777;
}

static const char *BRAZE_LITERAL =
	"{\"id\": \"braze\", \"name\": \"Braze\", \"class\": \"App\", \"type\": \"braze\", "
	"\"options\": {\"apiKey\": \"sekrit-123\", \"restEndpoint\": \"http://127.0.0.1:4710\"}}";

static void test_secrets_moved_kept_and_masked(void **state)
{
	struct fixture *f = *state;
	struct cfg_write_result res;
	struct jerror err = JERROR_INIT;
	const struct cfg_option *key;
	char *t, *json, *file, *msg;
	json_t *s;

	/* the demo's literal (Grouparoo-form) key is masked on read; "****" keeps it */
	assert_int_equal(config_read_object(f->dir, CLASS_APP, "braze", &json, &file, &err), JERR_OK);
	assert_string_equal(file, "apps/braze.json");
	assert_contains(json, "\"apiKey\": \"****\"");
	assert_not_contains(json, "DEMO_BRAZE_API_KEY");
	assert_contains(json, "\"restEndpoint\": \"http://127.0.0.1:4710\"");
	free(file);
	do_write(f, CFG_WRITE_UPDATE, CLASS_APP, "braze", json, JERR_OK, &res, &err);
	free(json);
	assert_contains(res.stored_json, "\"apiKey\": \"DEMO_BRAZE_API_KEY\"");
	assert_null(tu_read(f->secrets)); /* nothing to store */
	cfg_write_result_release(&res);

	/* a literal goes to the secrets file (0600), the config gets a reference */
	do_write(f, CFG_WRITE_UPDATE, CLASS_APP, "braze", BRAZE_LITERAL, JERR_OK, &res, &err);
	assert_contains(res.stored_json, "\"apiKey\": \"${JOEY_SECRET_BRAZE_APIKEY}\"");
	key = app_option(res.cfg, "braze", "apiKey");
	assert_true(key->secret);
	assert_string_equal(key->str, "sekrit-123");
	assert_string_equal(config_option_display(key), "${JOEY_SECRET_BRAZE_APIKEY}");
	cfg_write_result_release(&res);
	t = file_text(f, "apps/braze.json");
	assert_not_contains(t, "sekrit");
	assert_contains(t, "${JOEY_SECRET_BRAZE_APIKEY}");
	free(t);
	assert_int_equal(file_mode(f->secrets), 0600);
	t = tu_read(f->secrets);
	s = json_loads(t, 0, NULL);
	assert_string_equal(json_string_value(json_object_get(s, "JOEY_SECRET_BRAZE_APIKEY")), "sekrit-123");
	json_decref(s);
	free(t);

	/* the loader resolves it from the secrets file, flagged like an env secret */
	{
		struct config *cfg = load(f, JERR_OK);
		key = app_option(cfg, "braze", "apiKey");
		assert_true(key->secret);
		assert_string_equal(key->str, "sekrit-123");
		assert_string_equal(key->env_name, "JOEY_SECRET_BRAZE_APIKEY");
		assert_string_equal(config_option_display(key), "${JOEY_SECRET_BRAZE_APIKEY}");
		config_free(cfg);
	}

	/* read shows the reference; writing it back keeps everything */
	assert_int_equal(config_read_object(f->dir, CLASS_APP, "braze", &json, &file, &err), JERR_OK);
	assert_contains(json, "\"apiKey\": \"${JOEY_SECRET_BRAZE_APIKEY}\"");
	free(file);
	ok_write(f, CFG_WRITE_UPDATE, CLASS_APP, "braze", json, "apps/braze.json");
	free(json);
	ok_write(f, CFG_WRITE_UPDATE, CLASS_APP, "braze",
		 "{\"id\": \"braze\", \"class\": \"App\", \"type\": \"braze\", \"options\": {\"apiKey\": \"****\", \"restEndpoint\": \"http://localhost:4710\"}}",
		 "apps/braze.json");
	t = file_text(f, "apps/braze.json");
	assert_contains(t, "\"apiKey\": \"${JOEY_SECRET_BRAZE_APIKEY}\"");
	assert_contains(t, "localhost");
	free(t);

	/* an invalid change with a new literal leaves the secrets file alone too */
	msg = bad_write(f, CFG_WRITE_UPDATE, CLASS_APP, "braze",
			"{\"id\": \"braze\", \"class\": \"App\", \"type\": \"braze\", \"options\": {\"apiKey\": \"other\", \"restEndpoint\": \"ftp://x\"}}",
			JERR_CONFIG, NULL);
	free(msg);
	t = tu_read(f->secrets);
	assert_contains(t, "sekrit-123");
	assert_not_contains(t, "other");
	free(t);

	/* "${ENV}" is kept as written; the generated secret nobody uses any more is dropped */
	do_write(f, CFG_WRITE_UPDATE, CLASS_APP, "braze",
		 "{\"id\": \"braze\", \"class\": \"App\", \"type\": \"braze\", \"options\": {\"apiKey\": \"${MY_ENV_KEY}\", \"restEndpoint\": \"http://localhost:4710\"}}",
		 JERR_OK, &res, &err);
	assert_contains(res.stored_json, "\"apiKey\": \"${MY_ENV_KEY}\"");
	assert_string_equal(app_option(res.cfg, "braze", "apiKey")->str, "from-env");
	cfg_write_result_release(&res);
	t = tu_read(f->secrets);
	assert_not_contains(t, "JOEY_SECRET_BRAZE_APIKEY");
	free(t);
	assert_int_equal(file_mode(f->secrets), 0600);

	/* "****" with nothing stored, and a literal with no secrets file */
	msg = bad_write(f, CFG_WRITE_CREATE, CLASS_APP, NULL,
			"{\"id\": \"braze2\", \"class\": \"App\", \"type\": \"braze\", \"options\": {\"apiKey\": \"****\", \"restEndpoint\": \"http://localhost:1\"}}",
			JERR_USAGE, NULL);
	assert_contains(msg, "option \"apiKey\" of App \"braze2\" is \"****\" but no value is stored");
	free(msg);
	f->opts.secrets_path = NULL;
	msg = bad_write(f, CFG_WRITE_UPDATE, CLASS_APP, "braze", BRAZE_LITERAL, JERR_USAGE, NULL);
	assert_contains(msg, "no secrets file is configured");
	free(msg);
	f->opts.secrets_path = f->secrets;

	/* a new app with a password: the secret is named after its id and option */
	ok_write(f, CFG_WRITE_CREATE, CLASS_APP, NULL,
		 "{\"id\": \"pg-main\", \"class\": \"App\", \"type\": \"postgres\", \"options\": {\"database\": \"d\", \"password\": \"pw\"}}",
		 "apps/pg-main.json");
	t = file_text(f, "apps/pg-main.json");
	assert_contains(t, "\"password\": \"${JOEY_SECRET_PG_MAIN_PASSWORD}\"");
	free(t);
	t = tu_read(f->secrets);
	assert_contains(t, "\"JOEY_SECRET_PG_MAIN_PASSWORD\": \"pw\"");
	free(t);
	/* ids that map to the same secret name ("pg-main", "pg_main") each keep their own */
	ok_write(f, CFG_WRITE_CREATE, CLASS_APP, NULL,
		 "{\"id\": \"pg_main\", \"class\": \"App\", \"type\": \"postgres\", \"options\": {\"database\": \"d\", \"password\": \"pw2\"}}",
		 "apps/pg_main.json");
	t = file_text(f, "apps/pg_main.json");
	assert_contains(t, "\"password\": \"${JOEY_SECRET_PG_MAIN_PASSWORD_2}\"");
	free(t);
	/* a new literal for either keeps its own name and leaves the other's value alone */
	ok_write(f, CFG_WRITE_UPDATE, CLASS_APP, "pg_main",
		 "{\"id\": \"pg_main\", \"class\": \"App\", \"type\": \"postgres\", \"options\": {\"database\": \"d\", \"password\": \"pw3\"}}",
		 "apps/pg_main.json");
	ok_write(f, CFG_WRITE_UPDATE, CLASS_APP, "pg-main",
		 "{\"id\": \"pg-main\", \"class\": \"App\", \"type\": \"postgres\", \"options\": {\"database\": \"d\", \"password\": \"pw4\"}}",
		 "apps/pg-main.json");
	t = file_text(f, "apps/pg-main.json");
	assert_contains(t, "\"password\": \"${JOEY_SECRET_PG_MAIN_PASSWORD}\"");
	free(t);
	{
		struct config *cfg = load(f, JERR_OK);
		assert_string_equal(app_option(cfg, "pg-main", "password")->str, "pw4");
		assert_string_equal(app_option(cfg, "pg_main", "password")->str, "pw3");
		config_free(cfg);
	}
	ok_write(f, CFG_WRITE_DELETE, CLASS_APP, "pg_main", NULL, "apps/pg_main.json");
	ok_write(f, CFG_WRITE_DELETE, CLASS_APP, "pg-main", NULL, "apps/pg-main.json");
	t = tu_read(f->secrets);
	assert_not_contains(t, "PG_MAIN");
	free(t);
	jerror_release(&err);
}

static void test_loader_secrets_file(void **state)
{
	struct fixture *f = *state;
	struct jerror err = JERROR_INIT;
	struct config *cfg;
	char *d;

	/* no file: fine */
	cfg = load(f, JERR_OK);
	config_free(cfg);

	tu_write(f->dir, "apps/braze.json",
		 "{id: 'braze', class: 'App', type: 'braze', options: {apiKey: '${BRAZE_KEY}', restEndpoint: 'http://localhost:1'}}");
	assert_int_equal(secrets_set(f->secrets, "BRAZE_KEY", "from-file", &err), JERR_OK);
	assert_int_equal(file_mode(f->secrets), 0600);
	cfg = load(f, JERR_OK);
	assert_string_equal(app_option(cfg, "braze", "apiKey")->str, "from-file");
	assert_true(app_option(cfg, "braze", "apiKey")->secret);
	assert_string_equal(config_option_display(app_option(cfg, "braze", "apiKey")), "${BRAZE_KEY}");
	config_free(cfg);

	/* the environment wins */
	f->env.names[1] = "BRAZE_KEY";
	f->env.values[1] = "from-env";
	cfg = load(f, JERR_OK);
	assert_string_equal(app_option(cfg, "braze", "apiKey")->str, "from-env");
	config_free(cfg);
	f->env.names[1] = NULL;

	/* secrets_set keeps the others and replaces its own */
	assert_int_equal(secrets_set(f->secrets, "OTHER", "x", &err), JERR_OK);
	assert_int_equal(secrets_set(f->secrets, "BRAZE_KEY", "new\"quoted\"", &err), JERR_OK);
	cfg = load(f, JERR_OK);
	assert_string_equal(app_option(cfg, "braze", "apiKey")->str, "new\"quoted\"");
	config_free(cfg);
	assert_int_equal(secrets_set(f->secrets, "1BAD", "x", &err), JERR_USAGE);
	assert_int_equal(secrets_set(f->secrets, "A-B", "x", &err), JERR_USAGE);
	assert_string_equal(err.msg.buf, "invalid secret name \"A-B\"");
	jerror_release(&err);
	assert_int_equal(secrets_set(f->secrets, "", "x", &err), JERR_USAGE);
	jerror_release(&err);
	assert_int_equal(secrets_set(f->secrets, NULL, "x", &err), JERR_USAGE);
	assert_string_equal(err.msg.buf, "invalid secret name \"\"");
	jerror_release(&err);
	{ /* 255 characters at most, as a "${NAME}" reference */
		char longest[257];
		memset(longest, 'A', 256);
		longest[256] = '\0';
		assert_int_equal(secrets_set(f->secrets, longest, "x", &err), JERR_USAGE);
		jerror_release(&err);
		longest[255] = '\0';
		assert_int_equal(secrets_set(f->secrets, longest, "x", &err), JERR_OK);
	}
	assert_int_equal(secrets_set(NULL, "A", "x", &err), JERR_USAGE);

	/* readable by others: refused, naming the file, once */
	assert_int_equal(chmod(f->secrets, 0644), 0);
	cfg = load(f, JERR_CONFIG);
	d = diags_text(cfg);
	assert_contains(d, f->secrets);
	assert_contains(d, "is accessible by group or others (mode 0644)");
	assert_contains(d, "hint: chmod 600 ");
	assert_not_contains(d, "is not set");
	assert_int_equal(cfg->n_errors, 1);
	free(d);
	config_free(cfg);
	assert_int_equal(chmod(f->secrets, 0640), 0);
	cfg = load(f, JERR_CONFIG);
	config_free(cfg);
	/* a config write is refused the same way, and fixes nothing behind the user's back */
	{
		char *msg = bad_write(f, CFG_WRITE_UPDATE, CLASS_APP, "braze",
				      "{\"id\": \"braze\", \"class\": \"App\", \"type\": \"braze\", \"options\": {\"apiKey\": \"lit\", \"restEndpoint\": \"http://localhost:1\"}}",
				      JERR_CONFIG, &d);
		assert_contains(d, "chmod 600");
		free(d);
		free(msg);
	}
	assert_int_equal(chmod(f->secrets, 0600), 0);

	/* not an object of strings */
	tu_write(f->root, ".joey/secrets.json", "{\"BRAZE_KEY\": 12}");
	assert_int_equal(chmod(f->secrets, 0600), 0);
	cfg = load(f, JERR_CONFIG);
	d = diags_text(cfg);
	assert_contains(d, "secret \"BRAZE_KEY\" must be a string, found a number");
	free(d);
	config_free(cfg);
	assert_int_equal(secrets_set(f->secrets, "X", "y", &err), JERR_IO); /* not clobbered */
	tu_write(f->root, ".joey/secrets.json", "[\"x\"]");
	cfg = load(f, JERR_CONFIG);
	d = diags_text(cfg);
	assert_contains(d, "must hold a JSON object of strings, found an array");
	free(d);
	config_free(cfg);

	/* missing from both: the hint names the secrets file */
	tu_write(f->root, ".joey/secrets.json", "{}");
	cfg = load(f, JERR_CONFIG);
	d = diags_text(cfg);
	assert_contains(d, "environment variable \"BRAZE_KEY\" is not set\nhint: export BRAZE_KEY=... before running joey, or add it to the secrets file");
	free(d);
	config_free(cfg);
	jerror_release(&err);
}

/* Two processes rewriting the same array file and the secrets file: no update is lost. */
static void test_concurrent_writers(void **state)
{
	struct fixture *f = *state;
	static const char *const props[2] = { "first_name", "last_name" };
	pid_t pids[2];
	struct config *cfg;
	char *t;

	for (int p = 0; p < 2; p++) {
		pids[p] = fork();
		assert_true(pids[p] >= 0);
		if (pids[p] == 0) {
			int bad = 0;
			for (int i = 1; i <= 6; i++) {
				struct strbuf js = STRBUF_INIT;
				struct cfg_write_result res;
				struct jerror err = JERROR_INIT;
				struct cfg_write w = { .op = CFG_WRITE_UPDATE, .cls = CLASS_PROPERTY, .id = props[p] };
				strbuf_addf(&js, "{\"id\": \"%s\", \"class\": \"Property\", \"key\": \"%s\", \"type\": \"string\", "
					    "\"sourceId\": \"users_table\", \"options\": {\"column\": \"c%d_%d\"}}", props[p], props[p], p, i);
				w.object_json = js.buf;
				bad |= config_write(f->dir, &w, &f->opts, &res, &err) != JERR_OK;
				cfg_write_result_release(&res);
				jerror_release(&err);
				strbuf_reset(&js);
				strbuf_addf(&js, "{\"id\": \"pg%d\", \"class\": \"App\", \"type\": \"postgres\", "
					    "\"options\": {\"database\": \"d\", \"password\": \"pw%d_%d\"}}", p, p, i);
				w = (struct cfg_write){ .op = i == 1 ? CFG_WRITE_CREATE : CFG_WRITE_UPDATE, .cls = CLASS_APP, .object_json = js.buf };
				if (i > 1)
					w.id = p ? "pg1" : "pg0";
				bad |= config_write(f->dir, &w, &f->opts, &res, &err) != JERR_OK;
				cfg_write_result_release(&res);
				jerror_release(&err);
				strbuf_release(&js);
			}
			_exit(bad);
		}
	}
	for (int p = 0; p < 2; p++) {
		int st;
		assert_int_equal(waitpid(pids[p], &st, 0), pids[p]);
		assert_true(WIFEXITED(st));
		assert_int_equal(WEXITSTATUS(st), 0);
	}
	t = file_text(f, "properties/users.json");
	assert_contains(t, "\"c0_6\"");
	assert_contains(t, "\"c1_6\"");
	free(t);
	t = tu_read(f->secrets);
	assert_contains(t, "\"JOEY_SECRET_PG0_PASSWORD\": \"pw0_6\"");
	assert_contains(t, "\"JOEY_SECRET_PG1_PASSWORD\": \"pw1_6\"");
	free(t);
	cfg = load(f, JERR_OK);
	assert_string_equal(cfg_options_str(&config_app(cfg, "pg1")->options, "password"), "pw1_6");
	config_free(cfg);
}


/* ---- several objects in one write (config_write_batch) ---- */

#define NEW_MODEL "{\"id\": \"buyers\", \"class\": \"Model\", \"name\": \"Buyers\", \"type\": \"profile\"}"
#define NEW_SOURCE                                                                                              \
	"{\"id\": \"buyers_table\", \"class\": \"Source\", \"type\": \"sqlite-import-table\", \"appId\": \"demo_db\", " \
	"\"modelId\": \"buyers\", \"options\": {\"table\": \"users\"}, \"mapping\": {\"id\": \"buyer_id\"}}"
#define NEW_KEY                                                                                                \
	"{\"id\": \"buyer_id\", \"class\": \"Property\", \"key\": \"buyer_id\", \"type\": \"integer\", \"unique\": true, " \
	"\"sourceId\": \"buyers_table\", \"options\": {\"column\": \"id\"}}"
#define NEW_EMAIL                                                                                              \
	"{\"id\": \"buyer_email\", \"class\": \"Property\", \"key\": \"email\", \"type\": \"email\", \"unique\": true, " \
	"\"sourceId\": \"buyers_table\", \"options\": {\"column\": \"email\"}}"

static enum jerr run_batch(struct fixture *f, const struct cfg_batch_item *items, size_t n, enum cfg_batch_mode mode,
			   struct cfg_batch_result *res, struct jerror *err)
{
	struct cfg_batch b = { .items = items, .n = n, .mode = mode };
	return config_write_batch(f->dir, &b, &f->opts, res, err);
}

/* A batch that must fail with want, changing nothing under the fixture root; returns "msg\ndetail". */
static char *bad_batch(struct fixture *f, const struct cfg_batch_item *items, size_t n, enum cfg_batch_mode mode,
		       enum jerr want, long want_failed, char **diags)
{
	struct cfg_batch_result res;
	struct jerror err = JERROR_INIT;
	char *before = snapshot(f->root), *after;
	struct strbuf sb = STRBUF_INIT;
	enum jerr rc = run_batch(f, items, n, mode, &res, &err);
	if (rc != want)
		fail_msg("config_write_batch returned %d (%s; %s), want %d", rc, err.msg.buf, err.detail.buf, want);
	after = snapshot(f->root);
	assert_string_equal(before, after);
	assert_int_equal(res.failed, want_failed);
	assert_int_equal(res.n, 0);
	if (want == JERR_CONFIG) {
		assert_non_null(res.cfg);
		if (diags)
			*diags = diags_text(res.cfg);
	}
	strbuf_addf(&sb, "%s\n%s", err.msg.buf, err.detail.buf);
	free(before);
	free(after);
	cfg_batch_result_release(&res);
	jerror_release(&err);
	return strbuf_detach(&sb, NULL);
}

/* A new model needs Model + Source + key Property at once: one write of them all. */
static void test_batch_new_model(void **state)
{
	struct fixture *f = *state;
	const struct cfg_batch_item items[] = { { CLASS_MODEL, NEW_MODEL }, { CLASS_SOURCE, NEW_SOURCE },
						{ CLASS_PROPERTY, NEW_KEY }, { CLASS_PROPERTY, NEW_EMAIL } };
	struct cfg_batch_result res;
	struct jerror err = JERROR_INIT;
	char *msg;

	/* one object alone cannot: a Model with no source does not validate */
	msg = bad_write(f, CFG_WRITE_CREATE, CLASS_MODEL, NULL, NEW_MODEL, JERR_CONFIG, NULL);
	free(msg);

	assert_int_equal(run_batch(f, items, 4, CFG_BATCH_CREATE, &res, &err), JERR_OK);
	assert_int_equal(res.n, 4);
	assert_int_equal(res.failed, -1);
	assert_string_equal(res.items[0].file, "models/buyers.json");
	assert_string_equal(res.items[1].file, "sources/buyers_table.json");
	assert_string_equal(res.items[2].file, "properties/buyer_id.json");
	assert_string_equal(res.items[3].file, "properties/buyer_email.json");
	for (size_t i = 0; i < 4; i++) {
		assert_int_equal(res.items[i].op, CFG_WRITE_CREATE);
		assert_non_null(res.items[i].stored_json);
	}
	const struct cfg_model *m = config_model(res.cfg, "buyers");
	assert_non_null(m);
	cfg_batch_result_release(&res);

	struct config *cfg = load(f, JERR_OK);
	assert_non_null(config_model(cfg, "buyers"));
	config_free(cfg);

	/* again in create mode: object 0 already exists, nothing changes */
	msg = bad_batch(f, items, 4, CFG_BATCH_CREATE, JERR_USAGE, 0, NULL);
	assert_contains(msg, "Model \"buyers\" already exists");
	free(msg);
	/* upsert: all four are updates now */
	assert_int_equal(run_batch(f, items, 4, CFG_BATCH_UPSERT, &res, &err), JERR_OK);
	for (size_t i = 0; i < 4; i++)
		assert_int_equal(res.items[i].op, CFG_WRITE_UPDATE);
	cfg_batch_result_release(&res);
	jerror_release(&err);
}

/* The objects are validated together; any error anywhere: nothing is written. */
static void test_batch_validated_together(void **state)
{
	struct fixture *f = *state;
	char *msg, *diags = NULL;
	/* model + source, no key property: the source's mapping names a property that does not exist */
	const struct cfg_batch_item two[] = { { CLASS_MODEL, NEW_MODEL }, { CLASS_SOURCE, NEW_SOURCE } };
	msg = bad_batch(f, two, 2, CFG_BATCH_UPSERT, JERR_CONFIG, -1, &diags);
	assert_contains(msg, "the 2 objects were not written: the config would be invalid");
	assert_contains(diags, "buyer_id");
	free(msg);
	free(diags);

	/* the last object is wrong: the first three are not written either */
	const struct cfg_batch_item bad_last[] = {
		{ CLASS_MODEL, NEW_MODEL }, { CLASS_SOURCE, NEW_SOURCE }, { CLASS_PROPERTY, NEW_KEY },
		{ CLASS_PROPERTY, "{\"id\": \"buyer_email\", \"class\": \"Property\", \"type\": \"bogus\", "
				  "\"sourceId\": \"buyers_table\", \"options\": {\"column\": \"email\"}}" },
	};
	msg = bad_batch(f, bad_last, 4, CFG_BATCH_UPSERT, JERR_CONFIG, -1, &diags);
	assert_contains(diags, "properties/buyer_email.json:");
	assert_contains(diags, "invalid value \"bogus\"");
	free(msg);
	free(diags);

	/* an update that breaks what another object of the directory needs */
	const struct cfg_batch_item breaks[] = {
		{ CLASS_MODEL, NEW_MODEL }, { CLASS_SOURCE, NEW_SOURCE }, { CLASS_PROPERTY, NEW_KEY },
		{ CLASS_SOURCE, "{\"id\": \"users_table\", \"class\": \"Source\", \"type\": \"sqlite-import-table\", "
				"\"appId\": \"demo_db\", \"modelId\": \"users\", \"options\": {\"table\": \"users\"}, "
				"\"mapping\": {\"id\": \"no_such_property\"}}" },
	};
	msg = bad_batch(f, breaks, 4, CFG_BATCH_UPSERT, JERR_CONFIG, -1, &diags);
	assert_contains(diags, "no_such_property");
	free(msg);
	free(diags);

	/* a dry run validates and answers, and writes nothing */
	const struct cfg_batch_item good[] = { { CLASS_MODEL, NEW_MODEL }, { CLASS_SOURCE, NEW_SOURCE },
					       { CLASS_PROPERTY, NEW_KEY } };
	struct cfg_batch b = { .items = good, .n = 3, .dry_run = true };
	struct cfg_batch_result res;
	struct jerror err = JERROR_INIT;
	char *before = snapshot(f->root), *after;
	assert_int_equal(config_write_batch(f->dir, &b, &f->opts, &res, &err), JERR_OK);
	assert_non_null(config_model(res.cfg, "buyers"));
	assert_int_equal(res.n, 3);
	after = snapshot(f->root);
	assert_string_equal(before, after);
	free(before);
	free(after);
	cfg_batch_result_release(&res);
	jerror_release(&err);
}

static void test_batch_usage_errors(void **state)
{
	struct fixture *f = *state;
	char *msg;
	const struct cfg_batch_item dup[] = { { CLASS_MODEL, NEW_MODEL }, { CLASS_PROPERTY, NEW_KEY },
					      { CLASS_PROPERTY, NEW_KEY } };
	msg = bad_batch(f, dup, 3, CFG_BATCH_UPSERT, JERR_USAGE, 2, NULL);
	assert_contains(msg, "Property \"buyer_id\" appears twice (objects 1 and 2)");
	free(msg);

	const struct cfg_batch_item badjson[] = { { CLASS_MODEL, NEW_MODEL }, { CLASS_SOURCE, "{\"id\": " } };
	msg = bad_batch(f, badjson, 2, CFG_BATCH_UPSERT, JERR_USAGE, 1, NULL);
	assert_contains(msg, "invalid JSON in the Source object");
	free(msg);

	const struct cfg_batch_item wrong_class[] = { { CLASS_SOURCE, NEW_MODEL } };
	msg = bad_batch(f, wrong_class, 1, CFG_BATCH_UPSERT, JERR_USAGE, 0, NULL);
	assert_contains(msg, "class mismatch");
	free(msg);

	const struct cfg_batch_item traversal[] = {
		{ CLASS_MODEL, NEW_MODEL }, { CLASS_MODEL, "{\"id\": \"../x\", \"class\": \"Model\", \"type\": \"profile\"}" }
	};
	msg = bad_batch(f, traversal, 2, CFG_BATCH_UPSERT, JERR_USAGE, 1, NULL);
	assert_contains(msg, "invalid id \"../x\"");
	free(msg);

	const struct cfg_batch_item missing[] = { { CLASS_MODEL, NEW_MODEL } };
	msg = bad_batch(f, missing, 1, CFG_BATCH_UPDATE, JERR_USAGE, 0, NULL);
	assert_contains(msg, "Model \"buyers\" does not exist");
	free(msg);

	msg = bad_batch(f, missing, 0, CFG_BATCH_UPSERT, JERR_USAGE, -1, NULL);
	assert_contains(msg, "no objects given");
	free(msg);
	struct cfg_batch_item many[CFG_BATCH_MAX + 1];
	for (size_t i = 0; i <= CFG_BATCH_MAX; i++)
		many[i] = (struct cfg_batch_item){ CLASS_MODEL, NEW_MODEL };
	msg = bad_batch(f, many, CFG_BATCH_MAX + 1, CFG_BATCH_UPSERT, JERR_USAGE, -1, NULL);
	assert_contains(msg, "too many objects: 101");
	free(msg);
}

/* A config directory that is not there: config_write, config_write_batch and config_file_write name it, nothing is made. */
static void test_missing_dir(void **state)
{
	struct fixture *f = *state;
	char *dir = path_join(f->root, "nope");
	struct cfg_write w = { .op = CFG_WRITE_CREATE, .cls = CLASS_MODEL, .object_json = NEW_MODEL };
	const struct cfg_batch_item items[] = { { CLASS_MODEL, NEW_MODEL } };
	struct cfg_batch b = { .items = items, .n = 1, .mode = CFG_BATCH_UPSERT };
	struct cfg_write_result res;
	struct cfg_batch_result bres;
	struct jerror err = JERROR_INIT;
	struct strbuf want = STRBUF_INIT;

	strbuf_addf(&want, "could not open config directory \"%s\": No such file or directory", dir);
	assert_int_equal(config_write(dir, &w, &f->opts, &res, &err), JERR_CONFIG);
	assert_string_equal(err.msg.buf, want.buf);
	cfg_write_result_release(&res);
	jerror_release(&err);
	assert_int_equal(config_write_batch(dir, &b, &f->opts, &bres, &err), JERR_CONFIG);
	assert_string_equal(err.msg.buf, want.buf);
	cfg_batch_result_release(&bres);
	jerror_release(&err);
	assert_int_equal(config_file_write(dir, "models.json", "[]", &f->opts, NULL, false, &res, &err), JERR_CONFIG);
	assert_string_equal(err.msg.buf, want.buf);
	cfg_write_result_release(&res);
	jerror_release(&err);
	assert_false(file_exists(f->root, "nope"));
	/* a path through a file is an I/O error (not a config one), for the three writers alike */
	char *file = path_join(f->root, "plain"), *under = path_join(file, "cfg");
	FILE *fp = fopen(file, "w");
	assert_non_null(fp);
	fclose(fp);
	strbuf_reset(&want);
	strbuf_addf(&want, "could not open config directory \"%s\": Not a directory", under);
	assert_int_equal(config_write(under, &w, &f->opts, &res, &err), JERR_IO);
	assert_string_equal(err.msg.buf, want.buf);
	cfg_write_result_release(&res);
	jerror_release(&err);
	assert_int_equal(config_write_batch(under, &b, &f->opts, &bres, &err), JERR_IO);
	assert_string_equal(err.msg.buf, want.buf);
	cfg_batch_result_release(&bres);
	jerror_release(&err);
	assert_int_equal(config_file_write(under, "models.json", "[]", &f->opts, NULL, false, &res, &err), JERR_IO);
	assert_string_equal(err.msg.buf, want.buf);
	cfg_write_result_release(&res);
	jerror_release(&err);
	unlink(file);
	free(under);
	free(file);
	strbuf_release(&want);
	free(dir);
}

/* Two objects of one array file updated in one write: both changes, every other byte kept. */
static void test_batch_same_file(void **state)
{
	struct fixture *f = *state;
	const struct cfg_batch_item items[] = {
		{ CLASS_PROPERTY, "{\"id\": \"first_name\", \"class\": \"Property\", \"key\": \"given_name\", \"type\": \"string\", "
				  "\"sourceId\": \"users_table\", \"options\": {\"column\": \"first_name\", \"aggregationMethod\": \"exact\"}}" },
		{ CLASS_PROPERTY, "{\"id\": \"country\", \"class\": \"Property\", \"key\": \"land\", \"type\": \"string\", "
				  "\"sourceId\": \"users_table\", \"options\": {\"column\": \"country\", \"aggregationMethod\": \"exact\"}}" },
	};
	struct cfg_batch_result res;
	struct jerror err = JERROR_INIT;
	char *old = file_text(f, "properties/users.json"), *now;

	assert_int_equal(run_batch(f, items, 2, CFG_BATCH_UPDATE, &res, &err), JERR_OK);
	assert_string_equal(res.items[0].file, "properties/users.json");
	assert_string_equal(res.items[1].file, "properties/users.json");
	cfg_batch_result_release(&res);
	now = file_text(f, "properties/users.json");
	assert_contains(now, "\"given_name\"");
	assert_contains(now, "\"land\"");
	/* an object the batch did not touch keeps its text */
	const char *ln = "\"id\": \"last_name\", \"class\": \"Property\", \"key\": \"last_name\", \"type\": \"string\",";
	assert_contains(old, ln);
	assert_contains(now, ln);
	free(old);
	free(now);
	jerror_release(&err);
}

/* A file that cannot be written in the commit: the files already replaced get their old text back. */
static void test_batch_rollback(void **state)
{
	struct fixture *f = *state;
	const struct cfg_batch_item items[] = {
		{ CLASS_MODEL, "{\"id\": \"users\", \"name\": \"Users (renamed)\", \"class\": \"Model\", \"type\": \"profile\"}" },
		{ CLASS_PROPERTY, "{\"id\": \"city\", \"class\": \"Property\", \"key\": \"city\", \"type\": \"string\", "
				  "\"sourceId\": \"users_table\", \"options\": {\"column\": \"country\"}}" },
		{ CLASS_SCHEDULE, "{\"id\": \"buyers_sched\", \"class\": \"Schedule\", \"sourceId\": \"users_table\", "
				  "\"recurring\": true, \"recurringFrequency\": 3600000, \"incremental\": false, "
				  "\"options\": {\"column\": \"id\"}}" },
		{ CLASS_PROPERTY, "{\"id\": \"country\", \"class\": \"Property\", \"key\": \"land\", \"type\": \"string\", "
				  "\"sourceId\": \"users_table\", \"options\": {\"column\": \"country\", \"aggregationMethod\": \"exact\"}}" },
	};
	struct cfg_batch_result res;
	struct jerror err = JERROR_INIT;
	char *before, *after;

	/* the schedule goes to a class directory that does not exist yet */
	char *sched_dir = path_join(f->dir, "schedules");
	struct strbuf cmd = STRBUF_INIT;
	strbuf_addf(&cmd, "rm -rf '%s'", sched_dir);
	assert_int_equal(system(cmd.buf), 0);
	strbuf_release(&cmd);
	free(sched_dir);

	for (int at = 1; at <= 4; at++) {
		before = snapshot(f->root);
		config_write_batch_fail_at(at);
		enum jerr rc = run_batch(f, items, 4, CFG_BATCH_UPSERT, &res, &err);
		if (rc != JERR_IO)
			fail_msg("fail at %d: config_write_batch returned %d (%s; %s)", at, rc, err.msg.buf, err.detail.buf);
		assert_contains(err.msg.buf, "could not write");
		if (at == 1)
			assert_contains(err.detail.buf, "nothing was changed: the 0 files already written were restored");
		else if (at == 2)
			assert_contains(err.detail.buf, "the 1 file already written was restored");
		else
			assert_contains(err.detail.buf, "already written were restored");
		after = snapshot(f->root);
		assert_string_equal(before, after); /* byte for byte, modes, no new file or directory */
		assert_false(file_exists(f->dir, "schedules"));
		assert_int_equal(res.n, 0);
		free(before);
		free(after);
		cfg_batch_result_release(&res);
		jerror_release(&err);
	}
	/* the hook fires once: the same batch now goes through */
	assert_int_equal(run_batch(f, items, 4, CFG_BATCH_UPSERT, &res, &err), JERR_OK);
	assert_true(file_exists(f->dir, "schedules/buyers_sched.json"));
	assert_true(file_exists(f->dir, "properties/city.json"));
	cfg_batch_result_release(&res);
	jerror_release(&err);
}

static enum jerr refuse_second(void *ctx, size_t index, enum cfg_write_op op, const char *id,
			       const struct config *staged, struct jerror *err)
{
	int *calls = ctx;
	(void)op;
	assert_non_null(config_model(staged, "buyers"));
	(*calls)++;
	if (index == 1)
		return jerror_set(err, JERR_USAGE, "refused %s", id);
	return JERR_OK;
}

/* The approve callback sees the config as it would be, per object; a refusal writes nothing. */
static void test_batch_approve(void **state)
{
	struct fixture *f = *state;
	const struct cfg_batch_item items[] = { { CLASS_MODEL, NEW_MODEL }, { CLASS_SOURCE, NEW_SOURCE },
						{ CLASS_PROPERTY, NEW_KEY } };
	int calls = 0;
	struct cfg_batch b = { .items = items, .n = 3, .approve = refuse_second, .approve_ctx = &calls };
	struct cfg_batch_result res;
	struct jerror err = JERROR_INIT;
	char *before = snapshot(f->root), *after;
	assert_int_equal(config_write_batch(f->dir, &b, &f->opts, &res, &err), JERR_USAGE);
	assert_int_equal(calls, 2);
	assert_int_equal(res.failed, 1);
	assert_contains(err.msg.buf, "refused buyers_table");
	after = snapshot(f->root);
	assert_string_equal(before, after);
	free(before);
	free(after);
	cfg_batch_result_release(&res);
	jerror_release(&err);
}


/* Secrets in a batch: moved to the secrets file only when the whole batch is written; put back on a rollback. */
/*
 * The file editor's guard (config_file_write with a cfg_file_guard): decided on the
 * file as the loader parses it, before and after. Each refusal leaves the file as it was.
 */
static enum jerr file_write(struct fixture *f, const char *rel, const char *text, bool admin, struct jerror *err)
{
	struct cfg_file_guard g = { .keys = admin };
	struct cfg_write_result res;
	char *before = file_text(f, rel);
	enum jerr rc = config_file_write(f->dir, rel, text, &f->opts, &g, false, &res, err);
	char *after = file_text(f, rel);
	if (rc)
		assert_string_equal(after, before);
	cfg_write_result_release(&res);
	free(before);
	free(after);
	return rc;
}

/* text with its first from replaced by to, into *t (from must be there) */
static void set_replaced(struct strbuf *t, const char *text, const char *from, const char *to)
{
	const char *at = strstr(text, from);
	assert_non_null(at);
	strbuf_reset(t);
	strbuf_add(t, text, (size_t)(at - text));
	strbuf_addstr(t, to);
	strbuf_addstr(t, at + strlen(from));
}

static void test_file_guard(void **state)
{
	struct fixture *f = *state;
	struct jerror err = JERROR_INIT;
	char *group = file_text(f, "groups/high_value.json"), *braze = file_text(f, "apps/braze.json");
	struct strbuf t = STRBUF_INIT;
	/* an App or an Alert in a file an editor may otherwise change, however the loader reads its class */
	static const char *const sneaked[] = {
		"{\"id\":\"evil\",\"class\":\" App\",\"type\":\"braze\",\"options\":{\"apiKey\":\"DEMO_BRAZE_API_KEY\","
		"\"restEndpoint\":\"http://127.0.0.1:14711\"}}",
		"{id:'evil',class /*c*/ : \"\\u0041pp\",type:'braze',options:{apiKey:'k',restEndpoint:'http://127.0.0.1:14711'}}",
		"{\"id\":\"evil\",\"class\":\"Ap\\\np\",\"type\":\"braze\",\"options\":{\"apiKey\":\"k\","
		"\"restEndpoint\":\"http://127.0.0.1:14711\"}}",
		"{\"id\":\"leak\",\"class\":\"alert\",\"type\":\"email\",\"triggers\":{\"runFailed\":true},"
		"\"options\":{\"host\":\"127.0.0.1\",\"to\":\"x@example.com\",\"password\":\"${MY_ENV_KEY}\"}}",
	};

	for (size_t i = 0; i < ARRAY_SIZE(sneaked); i++) {
		strbuf_reset(&t);
		strbuf_addf(&t, "[%s, %s]", group, sneaked[i]);
		assert_true(config_file_holds_keys("groups/high_value.json", t.buf));
		assert_int_equal(file_write(f, "groups/high_value.json", t.buf, false, &err), JERR_AUTH);
		assert_contains(err.msg.buf, "only an admin may change it");
		jerror_release(&err);
	}
	/* reading: apps and alerts, and any object with a secret option, are an admin's */
	assert_false(config_file_holds_keys("groups/high_value.json", group));
	assert_true(config_file_holds_keys("apps/braze.json", NULL));
	assert_true(config_file_holds_keys("alerts/ops.json", "{}"));
	assert_true(config_file_holds_keys("x.json", "{\"id\":\"s\",\"class\":\"Source\",\"options\":{\"password\":\"p\"}}"));
	assert_false(config_file_holds_keys("x.json", "{\"id\":\"s\",\"class\":\"App\" broken"));
	/* an editor's change that holds no key is saved */
	set_replaced(&t, group, "High Value", "Higher Value");
	assert_int_equal(file_write(f, "groups/high_value.json", t.buf, false, &err), JERR_OK);
	/* an editor cannot change (or empty) an app's file either */
	assert_int_equal(file_write(f, "apps/braze.json", "[]", false, &err), JERR_AUTH);
	jerror_release(&err);

	/* an admin: the guards of config writes, on what the change adds or changes */
	set_replaced(&t, braze, "http://127.0.0.1:4710", "http://127.0.0.1:14711");
	free(braze);
	braze = strbuf_detach(&t, NULL);
	set_replaced(&t, braze, "\"DEMO_BRAZE_API_KEY\"", "\"a-new-key\"");
	assert_int_equal(file_write(f, "apps/braze.json", t.buf, true, &err), JERR_USAGE);
	assert_contains(err.msg.buf, "is not a Braze REST endpoint");
	jerror_release(&err);
	f->opts.allow_endpoints = "http://127.0.0.1:14711";
	assert_int_equal(file_write(f, "apps/braze.json", t.buf, true, &err), JERR_OK);
	f->opts.allow_endpoints = NULL;
	free(braze);
	braze = file_text(f, "apps/braze.json");
	set_replaced(&t, braze, "\"Braze\"", "\"Braze (renamed)\"");
	assert_int_equal(file_write(f, "apps/braze.json", t.buf, true, &err), JERR_OK); /* the endpoint stays */
	char *data = path_join(f->root, "data");
	assert_int_equal(mkdir(data, 0755), 0);
	free(data);
	f->opts.data_dir = "data";
	assert_int_equal(file_write(f, "apps/demo_db.json",
				    "{\"id\":\"demo_db\",\"class\":\"App\",\"type\":\"sqlite\",\"options\":{\"file\":\"/etc/passwd\"}}",
				    true, &err),
			 JERR_USAGE);
	assert_contains(err.msg.buf, "cannot be used through the API");
	jerror_release(&err);
	f->opts.data_dir = NULL;
	strbuf_reset(&t);
	strbuf_addf(&t, "[%s, %s]", group, sneaked[3]);
	assert_int_equal(file_write(f, "groups/high_value.json", t.buf, true, &err), JERR_USAGE);
	assert_contains(err.msg.buf, "reference");
	jerror_release(&err);
	strbuf_release(&t);
	free(group);
	free(braze);
}

static void test_batch_secrets(void **state)
{
	struct fixture *f = *state;
	const struct cfg_batch_item alone[] = { { CLASS_APP, BRAZE_LITERAL }, { CLASS_MODEL, NEW_MODEL } };
	const struct cfg_batch_item items[] = { { CLASS_APP, BRAZE_LITERAL }, { CLASS_MODEL, NEW_MODEL },
						{ CLASS_SOURCE, NEW_SOURCE }, { CLASS_PROPERTY, NEW_KEY } };
	struct cfg_batch_result res;
	struct jerror err = JERROR_INIT;
	char *msg, *before, *after, *t;

	/* invalid (a model without its source): no secrets file is made */
	msg = bad_batch(f, alone, 2, CFG_BATCH_UPSERT, JERR_CONFIG, -1, NULL);
	free(msg);
	assert_null(tu_read(f->secrets));

	/* the secrets file is written first; a later file fails: it goes again (and its directory) */
	before = snapshot(f->root);
	config_write_batch_fail_at(3);
	assert_int_equal(run_batch(f, items, 4, CFG_BATCH_UPSERT, &res, &err), JERR_IO);
	assert_contains(err.detail.buf, "the 2 files already written were restored");
	after = snapshot(f->root);
	assert_string_equal(before, after);
	assert_null(tu_read(f->secrets));
	free(before);
	free(after);
	cfg_batch_result_release(&res);
	jerror_release(&err);

	/* with a secrets file already there, a rollback puts back its bytes */
	assert_int_equal(secrets_set(f->secrets, "OTHER", "x", &err), JERR_OK);
	before = snapshot(f->root);
	config_write_batch_fail_at(1);
	assert_int_equal(run_batch(f, items, 4, CFG_BATCH_UPSERT, &res, &err), JERR_IO);
	after = snapshot(f->root);
	assert_string_equal(before, after);
	free(before);
	free(after);
	cfg_batch_result_release(&res);
	jerror_release(&err);

	/* written: the key in the secrets file, a reference in the config */
	assert_int_equal(run_batch(f, items, 4, CFG_BATCH_UPSERT, &res, &err), JERR_OK);
	assert_contains(res.items[0].stored_json, "\"apiKey\": \"${JOEY_SECRET_BRAZE_APIKEY}\"");
	cfg_batch_result_release(&res);
	t = file_text(f, "apps/braze.json");
	assert_not_contains(t, "sekrit");
	free(t);
	t = tu_read(f->secrets);
	assert_contains(t, "sekrit-123");
	assert_contains(t, "OTHER");
	free(t);
	jerror_release(&err);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_class_dirs),
		cmocka_unit_test_setup_teardown(test_create_update_delete_each_class, setup, teardown),
		cmocka_unit_test_setup_teardown(test_invalid_change_changes_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dry_run_changes_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_usage_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_path_traversal_ids_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_array_files_and_json5, setup, teardown),
		cmocka_unit_test_setup_teardown(test_write_keeps_comments_and_layout, setup, teardown),
		cmocka_unit_test_setup_teardown(test_symlinked_dir_keeps_project_root, setup, teardown),
		cmocka_unit_test_setup_teardown(test_secrets_moved_kept_and_masked, setup, teardown),
		cmocka_unit_test_setup_teardown(test_loader_secrets_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_concurrent_writers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_batch_new_model, setup, teardown),
		cmocka_unit_test_setup_teardown(test_batch_validated_together, setup, teardown),
		cmocka_unit_test_setup_teardown(test_batch_usage_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_missing_dir, setup, teardown),
		cmocka_unit_test_setup_teardown(test_batch_same_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_batch_rollback, setup, teardown),
		cmocka_unit_test_setup_teardown(test_batch_approve, setup, teardown),
		cmocka_unit_test_setup_teardown(test_batch_secrets, setup, teardown),
		cmocka_unit_test_setup_teardown(test_file_guard, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
