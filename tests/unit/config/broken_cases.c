/*
 * broken_cases.c: declarative config cases. Each tests/cases/config/<name>/ holds a
 * config/ directory, optionally an `env` file (NAME=VALUE lines: the only environment
 * the loader sees), optionally an empty `check-files` file (check the files options
 * name, as `joey validate` does) and expected.txt, the exact config_print_diags()
 * output, with the case's directory (the config's project root) written $CASE.
 * JOEY_UPDATE_EXPECTED=1 rewrites expected.txt from the actual output (review the diff!).
 */
#include "support/testutil.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/config.h"

struct env {
	char *names[32];
	char *values[32];
	size_t n;
};

static const char *env_lookup(const char *name, void *ctx)
{
	struct env *e = ctx;
	for (size_t i = 0; i < e->n; i++)
		if (!strcmp(e->names[i], name))
			return e->values[i];
	return NULL;
}

static void env_read(struct env *e, const char *path)
{
	char *text = tu_read(path);
	char *line, *save = NULL;
	e->n = 0;
	if (!text)
		return;
	for (line = strtok_r(text, "\n", &save); line && e->n < 32; line = strtok_r(NULL, "\n", &save)) {
		char *eq = strchr(line, '=');
		if (!eq || line[0] == '#')
			continue;
		*eq = '\0';
		e->names[e->n] = strdup(line);
		e->values[e->n] = strdup(eq + 1);
		e->n++;
	}
	free(text);
}

static void env_free(struct env *e)
{
	for (size_t i = 0; i < e->n; i++) {
		free(e->names[i]);
		free(e->values[i]);
	}
}

static char *case_root(void)
{
	const char *data = getenv("JOEY_TEST_DATA");
	char *p = malloc(4096);
	snprintf(p, 4096, "%s/cases/config", data && *data ? data : "tests");
	return p;
}

static void run_case(void **state)
{
	const char *name = *state;
	char *root = case_root();
	char dir[4096], path[4096];
	struct env env;
	struct config_opts opts = { .getenv_fn = env_lookup, .getenv_ctx = &env };
	struct config *cfg = NULL;
	struct jerror err = JERROR_INIT;
	char *actual = NULL, *expected;
	size_t alen = 0;
	FILE *mem;

	snprintf(path, sizeof(path), "%s/%s/env", root, name);
	env_read(&env, path);
	snprintf(path, sizeof(path), "%s/%s/check-files", root, name);
	opts.check_files = access(path, F_OK) == 0;
	snprintf(dir, sizeof(dir), "%s/%s/config", root, name);
	enum jerr rc = config_load(dir, &opts, &cfg, &err);
	assert_non_null(cfg);
	mem = open_memstream(&actual, &alen);
	config_print_diags(cfg, mem);
	fclose(mem);
	/* the case's own directory (the project root of its config) is written $CASE */
	snprintf(path, sizeof(path), "%s/%s", root, name);
	char *real = realpath(path, NULL), *at;
	while (real && (at = strstr(actual, real))) {
		size_t rl = strlen(real);
		memcpy(at, "$CASE", 5);
		memmove(at + 5, at + rl, strlen(at + rl) + 1);
	}
	free(real);
	snprintf(path, sizeof(path), "%s/%s/expected.txt", root, name);
	if (getenv("JOEY_UPDATE_EXPECTED")) {
		FILE *f = fopen(path, "w");
		fputs(actual, f);
		fclose(f);
	}
	expected = tu_read(path);
	if (!expected || strcmp(expected, actual)) {
		fprintf(stderr, "case %s: config_print_diags output differs\n--- expected (%s)\n%s--- actual\n%s---\n",
			name, path, expected ? expected : "(missing)\n", actual);
		fail_msg("case %s: output mismatch", name);
	}
	if (cfg->n_errors == 0 || rc != JERR_CONFIG)
		fail_msg("case %s: a broken case must report at least one error", name);
	free(expected);
	free(actual);
	config_free(cfg);
	jerror_release(&err);
	env_free(&env);
	free(root);
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int main(void)
{
	char *root = case_root();
	DIR *d = opendir(root);
	char *names[512];
	size_t n = 0;
	struct dirent *de;
	struct CMUnitTest tests[512];
	int rc;

	if (!d) {
		fprintf(stderr, "cannot open %s (set JOEY_TEST_DATA to the tests directory)\n", root);
		return 1;
	}
	while ((de = readdir(d)) && n < 512)
		if (de->d_name[0] != '.')
			names[n++] = strdup(de->d_name);
	closedir(d);
	qsort(names, n, sizeof(char *), cmp_names);
	for (size_t i = 0; i < n; i++) {
		tests[i] = (struct CMUnitTest){ names[i], run_case, NULL, NULL, names[i] };
	}
	rc = _cmocka_run_group_tests("config_cases", tests, n, NULL, NULL);
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(root);
	return rc;
}
