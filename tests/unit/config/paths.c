/* paths.c: the project root of a config directory, and resolving files from it. */
#include "support/testutil.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/strbuf.h"
#include "config/paths.h"

struct fx {
	char *top;  /* realpath of a temporary directory */
	char *cwd0; /* to go back to */
};

static char *join(const char *a, const char *b)
{
	struct strbuf sb = STRBUF_INIT;
	strbuf_addf(&sb, "%s/%s", a, b);
	return strbuf_detach(&sb, NULL);
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	char *tmp = tu_mkdtemp();
	f->top = realpath(tmp, NULL);
	free(tmp);
	f->cwd0 = getcwd(NULL, 0);
	/* top/proj/config, top/proj/nested/settings/config, top/shared/cfg, top/proj/linked -> ../shared/cfg */
	char *p;
	const char *dirs[] = { "proj", "proj/config", "proj/nested", "proj/nested/settings",
			       "proj/nested/settings/config", "shared", "shared/cfg" };
	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
		p = join(f->top, dirs[i]);
		assert_int_equal(mkdir(p, 0755), 0);
		free(p);
	}
	p = join(f->top, "proj/linked");
	assert_int_equal(symlink("../shared/cfg", p), 0);
	free(p);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	assert_int_equal(chdir(f->cwd0), 0);
	tu_rmtree(f->top);
	free(f->top);
	free(f->cwd0);
	free(f);
	return 0;
}

/* config_project_root(dir) run from cwd (relative to top) is top/want ("" for top). */
static void expect_root(struct fx *f, const char *cwd, const char *dir, const char *want)
{
	char *c = join(f->top, cwd), *root = NULL;
	struct jerror err = JERROR_INIT;
	struct strbuf w = STRBUF_INIT;
	assert_int_equal(chdir(c), 0);
	if (config_project_root(dir, &root, &err))
		fail_msg("config_project_root(\"%s\") in %s: %s", dir, cwd, err.msg.buf);
	strbuf_addstr(&w, f->top);
	if (*want)
		strbuf_addf(&w, "/%s", want);
	if (strcmp(root, w.buf))
		fail_msg("config_project_root(\"%s\") in %s: got %s, want %s", dir, cwd, root, w.buf);
	free(root);
	free(c);
	strbuf_release(&w);
	jerror_release(&err);
}

static void test_root_is_the_directory_holding_the_config_directory(void **state)
{
	struct fx *f = *state;
	char *abs = join(f->top, "proj/config"), *abs_slash = join(f->top, "proj/config//");
	expect_root(f, "proj", "config", "proj");
	expect_root(f, "proj", "./config", "proj");
	expect_root(f, "proj", "config/", "proj");
	expect_root(f, "proj", "config///", "proj");
	expect_root(f, "proj", abs, "proj");
	expect_root(f, "shared", abs_slash, "proj");
	/* run inside the config directory */
	expect_root(f, "proj/config", ".", "proj");
	expect_root(f, "proj/config", "./", "proj");
	expect_root(f, "proj/config", "../config", "proj");
	expect_root(f, "proj", "config/..", ""); /* ".." last: resolved (proj), then its parent */
	/* nested: the root is the config directory's own parent, whatever its depth */
	expect_root(f, "", "proj/nested/settings/config", "proj/nested/settings");
	expect_root(f, "proj/nested", "settings/config", "proj/nested/settings");
	free(abs);
	free(abs_slash);
}

static void test_symlinked_config_directory_is_not_followed(void **state)
{
	struct fx *f = *state;
	/* proj/linked -> shared/cfg: the root is proj, where the link is */
	expect_root(f, "proj", "linked", "proj");
	expect_root(f, "proj", "linked/", "proj");
	expect_root(f, "", "proj/linked", "proj");
	/* but "." inside it is the directory itself: its parent is shared */
	expect_root(f, "proj/linked", ".", "shared");
}

static void test_missing_parent_is_an_error(void **state)
{
	struct fx *f = *state;
	char *root = (char *)"x", *c = join(f->top, "proj");
	struct jerror err = JERROR_INIT;
	assert_int_equal(chdir(c), 0);
	assert_int_equal(config_project_root("nope/config", &root, &err), JERR_CONFIG);
	assert_null(root);
	assert_non_null(strstr(err.msg.buf, "\"nope\""));
	jerror_release(&err);
	free(c);
}

static void test_resolve_path(void **state)
{
	(void)state;
	char *p;
	p = config_resolve_path("/p", "data/source.sqlite");
	assert_string_equal(p, "/p/data/source.sqlite");
	free(p);
	p = config_resolve_path("/", "x.db");
	assert_string_equal(p, "/x.db");
	free(p);
	p = config_resolve_path("/p", "/abs/x.db");
	assert_string_equal(p, "/abs/x.db");
	free(p);
	p = config_resolve_path(NULL, "x.db");
	assert_string_equal(p, "x.db");
	free(p);
}

/* The loader records the root; config_opts.root overrides it (config writes' staging). */
static void test_config_load_root(void **state)
{
	struct fx *f = *state;
	char *dir = join(f->top, "proj/nested/settings/config"), *want = join(f->top, "proj/nested/settings");
	struct config *cfg = NULL;
	struct jerror err = JERROR_INIT;
	struct config_opts opts = { 0 };
	assert_int_equal(config_load(dir, &opts, &cfg, &err), JERR_OK);
	assert_string_equal(cfg->root, want);
	config_free(cfg);
	opts.root = "/somewhere/else";
	assert_int_equal(config_load(dir, &opts, &cfg, &err), JERR_OK);
	assert_string_equal(cfg->root, "/somewhere/else");
	config_free(cfg);
	jerror_release(&err);
	free(dir);
	free(want);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_root_is_the_directory_holding_the_config_directory, setup, teardown),
		cmocka_unit_test_setup_teardown(test_symlinked_config_directory_is_not_followed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_missing_parent_is_an_error, setup, teardown),
		cmocka_unit_test(test_resolve_path),
		cmocka_unit_test_setup_teardown(test_config_load_root, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
