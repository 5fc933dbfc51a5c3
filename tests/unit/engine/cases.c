/*
 * cases.c: runs the declarative plan cases in tests/cases/plan/<name>/.
 *
 * A case is data only, adding one needs no C:
 *   config/        a config directory (its SQLite app uses "file": "../data.db")
 *   data.sql       SQL that builds data.db
 *   state.json     optional prior state: [{"destination","key","payload",
 *                  "in_scope"?, "pending"?, "attempts"?, "error"?}]
 *   env            optional NAME=VALUE lines (e.g. JOEY_NOW=2026-11-24T00:00:00Z)
 *   options.json   optional {"destination": ID, "max_delete_percent": N}
 *   expected.json  the output of `joey plan --details --json` (compared as JSON)
 * JOEY_CASE=name runs one case; JOEY_UPDATE_EXPECTED=1 rewrites expected.json
 * (review the diff before committing it).
 */
#include "support/testutil.h"

#include <dirent.h>
#include <jansson.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/strbuf.h"
#include "config/config.h"
#include "engine/plan.h"
#include "state/state.h"

static const char *cases_dir(void)
{
	static char buf[4096];
	const char *d = getenv("JOEY_TEST_DATA");
	snprintf(buf, sizeof(buf), "%s/cases/plan", d ? d : "tests");
	return buf;
}

static void run_sql(const char *db, const char *sqlfile)
{
	char *sql = tu_read(sqlfile);
	sqlite3 *h;
	char *msg = NULL;
	if (!sql)
		return;
	assert_int_equal(sqlite3_open(db, &h), SQLITE_OK);
	if (sqlite3_exec(h, sql, NULL, NULL, &msg) != SQLITE_OK)
		fail_msg("%s: %s", sqlfile, msg);
	sqlite3_close(h);
	free(sql);
}

static void load_env(const char *path)
{
	char *text = tu_read(path);
	if (!text)
		return;
	for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
		char *eq = strchr(line, '=');
		if (!eq || line[0] == '#')
			continue;
		*eq = '\0';
		setenv(line, eq + 1, 1);
	}
	free(text);
}

static void load_state(struct state *st, const char *path)
{
	json_error_t je;
	json_t *arr = json_load_file(path, 0, &je);
	struct jerror err = JERROR_INIT;
	size_t i;
	json_t *row;

	if (!arr)
		return;
	assert_true(json_is_array(arr));
	assert_int_equal(state_begin(st, &err), JERR_OK);
	json_array_foreach(arr, i, row) {
		const char *dest = json_string_value(json_object_get(row, "destination"));
		json_t *k = json_object_get(row, "key");
		struct rkey key = { 0 };
		char num[32];
		if (json_is_integer(k)) {
			key.is_int = true;
			key.i = json_integer_value(k);
			snprintf(num, sizeof(num), "%lld", (long long)key.i);
			key.text = slice_of(num);
		} else {
			key.text = slice_of(json_string_value(k));
		}
		json_t *payload = json_object_get(row, "payload");
		json_t *in_scope = json_object_get(row, "in_scope");
		if (payload) {
			char *s = json_dumps(payload, JSON_COMPACT | JSON_SORT_KEYS);
			unsigned char hash[STATE_HASH_LEN];
			state_hash(s, strlen(s), hash);
			assert_int_equal(state_put(st, dest, &key, slice_of(s), hash,
						   in_scope ? json_is_true(in_scope) : true, &err),
					 JERR_OK);
			free(s);
		}
		json_t *att = json_object_get(row, "attempts");
		for (json_int_t a = 0; att && a < json_integer_value(att); a++) {
			const char *e = json_string_value(json_object_get(row, "error"));
			assert_int_equal(state_mark_failed(st, dest, &key, e ? e : "failed", &err), JERR_OK);
		}
	}
	assert_int_equal(state_commit(st, &err), JERR_OK);
	json_decref(arr);
}

static int run_case(const char *name)
{
	struct strbuf src = STRBUF_INIT, cmd = STRBUF_INIT, p = STRBUF_INIT;
	char *tmp = tu_mkdtemp();
	struct config *cfg = NULL;
	struct state *st = NULL;
	struct jerror err = JERROR_INIT;
	struct plan plan;
	struct plan_opts opts = { .details = true, .json = true, .max_delete_percent = -1 };
	char *out = NULL;
	size_t outlen = 0;
	int failed = 0;

	strbuf_addf(&src, "%s/%s", cases_dir(), name);
	strbuf_addf(&cmd, "cp -r '%s/config' '%s/config'", src.buf, tmp);
	assert_int_equal(system(cmd.buf), 0);

	strbuf_addf(&p, "%s/env", src.buf);
	unsetenv("JOEY_NOW");
	load_env(p.buf);

	strbuf_reset(&p);
	strbuf_addf(&p, "%s/data.sql", src.buf);
	strbuf_reset(&cmd);
	strbuf_addf(&cmd, "%s/data.db", tmp);
	run_sql(cmd.buf, p.buf);

	json_error_t je;
	strbuf_reset(&p);
	strbuf_addf(&p, "%s/options.json", src.buf);
	json_t *o = json_load_file(p.buf, 0, &je);
	if (o) {
		const char *d = json_string_value(json_object_get(o, "destination"));
		if (d)
			opts.only_dest = strdup(d);
		if (json_object_get(o, "max_delete_percent"))
			opts.max_delete_percent = json_number_value(json_object_get(o, "max_delete_percent"));
		json_decref(o);
	}

	strbuf_reset(&cmd);
	strbuf_addf(&cmd, "%s/config", tmp);
	if (config_load(cmd.buf, NULL, &cfg, &err) != JERR_OK) {
		if (cfg)
			config_print_diags(cfg, stderr);
		fail_msg("case %s: config does not load: %s", name, err.msg.buf);
	}
	strbuf_reset(&cmd);
	strbuf_addf(&cmd, "%s/state.db", tmp);
	assert_int_equal(state_open(cmd.buf, STATE_OPEN_CREATE, &st, &err), JERR_OK);
	strbuf_reset(&p);
	strbuf_addf(&p, "%s/state.json", src.buf);
	load_state(st, p.buf);

	assert_int_equal(plan_init(&plan, cfg, &opts, &err), JERR_OK);
	if (plan_compute(&plan, st, &err) != JERR_OK)
		fail_msg("case %s: plan failed: %s (%s)", name, err.msg.buf, err.detail.buf);
	FILE *mem = open_memstream(&out, &outlen);
	plan_print_json(&plan, mem);
	fclose(mem);
	plan_release(&plan);

	strbuf_reset(&p);
	strbuf_addf(&p, "%s/expected.json", src.buf);
	json_t *got = json_loads(out, 0, &je);
	if (!got)
		fail_msg("case %s: plan output is not JSON: %s\n%s", name, je.text, out);
	if (getenv("JOEY_UPDATE_EXPECTED")) {
		json_dump_file(got, p.buf, JSON_INDENT(2) | JSON_SORT_KEYS);
		FILE *f = fopen(p.buf, "a");
		fputc('\n', f);
		fclose(f);
	}
	json_t *want = json_load_file(p.buf, 0, &je);
	if (!want) {
		fprintf(stderr, "case %s: missing or invalid expected.json (%s); got:\n%s\n", name, je.text, out);
		failed = 1;
	} else if (!json_equal(got, want)) {
		char *g = json_dumps(got, JSON_INDENT(2) | JSON_SORT_KEYS);
		fprintf(stderr, "case %s: plan differs from expected.json; got:\n%s\n", name, g);
		free(g);
		failed = 1;
	}
	json_decref(got);
	json_decref(want);
	free(out);
	free((char *)opts.only_dest);
	state_close(st);
	config_free(cfg);
	jerror_release(&err);
	tu_rmtree(tmp);
	free(tmp);
	strbuf_release(&src);
	strbuf_release(&cmd);
	strbuf_release(&p);
	return failed;
}

static void test_all_cases(void **unused)
{
	DIR *d = opendir(cases_dir());
	const char *only = getenv("JOEY_CASE");
	struct dirent *e;
	int n = 0, failed = 0;
	char **names = NULL;
	size_t nn = 0;

	assert_non_null(d);
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		if (only && strcmp(only, e->d_name))
			continue;
		names = realloc(names, (nn + 1) * sizeof(*names));
		names[nn++] = strdup(e->d_name);
	}
	closedir(d);
	for (size_t i = 0; i < nn; i++) {
		int f = run_case(names[i]);
		printf("%s case %s\n", f ? "FAIL" : "ok  ", names[i]);
		failed += f;
		n++;
		free(names[i]);
	}
	free(names);
	printf("%d plan cases, %d failed\n", n, failed);
	assert_true(n > 0);
	assert_int_equal(failed, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_all_cases),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
