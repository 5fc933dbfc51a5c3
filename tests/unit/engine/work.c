/* work.c: tests of src/engine/work.c: the key sample, the partition bounds, a job's config. */
#include "support/testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/work.h"
#include "state/confgen.h"

static void add_int(struct work_sample *s, int64_t i)
{
	char t[24];
	int n = snprintf(t, sizeof(t), "%lld", (long long)i);
	struct rkey k = { true, i, { t, (size_t)n } };
	work_sample_add(s, &k);
}

/* n ranges of about equal size over 0..count-1, strictly increasing bounds. */
static void check_even(uint64_t count, size_t n)
{
	struct work_sample *s = work_sample_new();
	const struct rkey *b = NULL;
	for (uint64_t i = 0; i < count; i++) {
		add_int(s, (int64_t)i);
		if (i % 7 == 0)
			add_int(s, (int64_t)i); /* a repeated key counts once */
	}
	assert_int_equal(work_sample_count(s), count);
	size_t nb = work_sample_bounds(s, n, &b);
	assert_int_equal(nb, n - 1);
	int64_t prev = -1;
	for (size_t i = 0; i < nb; i++) {
		assert_true(b[i].is_int);
		assert_true(b[i].i > prev);
		/* within 1% of the even split */
		double want = (double)count * (double)(i + 1) / (double)n;
		assert_true(b[i].i >= want - (double)count / 100 - 1 && b[i].i <= want + (double)count / 100 + 1);
		prev = b[i].i;
	}
	work_sample_free(s);
}

static void test_even_split(void **state)
{
	check_even(1000, 6);
	check_even(1000000, 4);  /* past the sample's size: it thins itself out */
	check_even(123457, 1024);
}

static void test_few_keys(void **state)
{
	struct work_sample *s = work_sample_new();
	const struct rkey *b = NULL;
	assert_int_equal(work_sample_bounds(s, 6, &b), 0); /* no keys: one range */
	add_int(s, 5);
	assert_int_equal(work_sample_bounds(s, 6, &b), 0); /* one key: one range */
	add_int(s, 9);
	add_int(s, 12);
	assert_int_equal(work_sample_bounds(s, 6, &b), 2); /* three keys: three ranges */
	assert_int_equal(b[0].i, 9);
	assert_int_equal(b[1].i, 12);
	assert_int_equal(work_sample_bounds(s, 1, &b), 0);
	work_sample_free(s);
	work_sample_free(NULL);
}

static void test_text_keys(void **state)
{
	struct work_sample *s = work_sample_new();
	const struct rkey *b = NULL;
	char t[16];
	/* text keys in key order: bytewise */
	for (int i = 0; i < 26 * 26; i++) {
		snprintf(t, sizeof(t), "%c%c", 'a' + i / 26, 'a' + i % 26);
		struct rkey k = { false, 0, { t, 2 } };
		work_sample_add(s, &k);
	}
	assert_int_equal(work_sample_bounds(s, 2, &b), 1);
	assert_false(b[0].is_int);
	assert_int_equal(b[0].text.len, 2);
	assert_memory_equal(b[0].text.ptr, "na", 2);
	work_sample_free(s);
}

/* ---- the config an item runs with (work_item_config) ---- */

/* The environment of a test: K is ctx (NULL: unset), nothing else is set. */
static const char *cfg_env(const char *name, void *ctx)
{
	return !strcmp(name, "K") ? (const char *)ctx : NULL;
}

static struct config *load_dir(const char *dir, const struct config_opts *co)
{
	struct config *c = NULL;
	struct jerror err = JERROR_INIT;
	if (config_load(dir, co, &c, &err) != JERR_OK && (config_print_diags(c, stderr), 1))
		fail_msg("config %s: %s", dir, err.msg.buf);
	jerror_release(&err);
	return c;
}

/* an App whose id tells the configs apart */
#define APP_ID(id) "{class:'App',id:'" id "',type:'sqlite',options:{file:'x.db'}}"
#define BRAZE(key) "{class:'App',id:'b',type:'braze',options:{apiKey:'" key "',restEndpoint:'http://127.0.0.1:1'}}"

static void test_item_config(void **state)
{
	char *root = tu_mkdtemp(), dir[512], other[512], spath[600];
	struct config_opts co = { .getenv_fn = cfg_env, .getenv_ctx = (void *)"key-1" };
	struct state_work_item it;
	struct config *cache = NULL, *v2, *v3, *lit;
	const struct config *use = NULL;
	struct jerror why = JERROR_INIT, err = JERROR_INIT;
	struct state *st = NULL;

	snprintf(dir, sizeof(dir), "%s/a/cfg", root);
	snprintf(other, sizeof(other), "%s/b/cfg", root);
	snprintf(spath, sizeof(spath), "%s/state.db", root);
	assert_int_equal(state_open(spath, STATE_OPEN_CREATE, &st, &err), JERR_OK);
	tu_write(dir, "m.json", "[" APP_ID("users") "," BRAZE("${K}") "]");
	struct config *own = load_dir(dir, &co);
	state_work_item_init(&it);
	it.job_id = 7;
	it.part = 1;
	it.n_parts = 4;

	/* a job of an older joey (no generation), and one of this config: this config */
	assert_int_equal(work_item_config(own, &co, st, &it, &cache, &use, &why, &err), JERR_OK);
	assert_ptr_equal(use, own);
	strbuf_addstr(&it.config_gen, own->generation);
	assert_int_equal(work_item_config(own, &co, st, &it, &cache, &use, &why, &err), JERR_OK);
	assert_ptr_equal(use, own);
	assert_null(cache);

	/* the directory changed since: its files are the job's generation */
	tu_write(dir, "m.json", "[" APP_ID("people") "," BRAZE("${K}") "]");
	v2 = load_dir(dir, &co);
	strbuf_reset(&it.config_gen);
	strbuf_addstr(&it.config_gen, v2->generation);
	assert_int_equal(work_item_config(own, &co, st, &it, &cache, &use, &why, &err), JERR_OK);
	assert_non_null(use);
	assert_ptr_equal(use, cache);
	assert_string_equal(use->generation, v2->generation);
	assert_non_null(config_app(use, "people"));
	/* the next item of that job: the kept one */
	const struct config *kept = cache;
	assert_int_equal(work_item_config(own, &co, st, &it, &cache, &use, &why, &err), JERR_OK);
	assert_ptr_equal(use, kept);

	/* another host's config: only in the store; loaded from there, resolved here */
	tu_write(other, "m.json", "[" APP_ID("accounts") "," BRAZE("${K}") "]");
	v3 = load_dir(other, &co);
	strbuf_reset(&it.config_gen);
	strbuf_addstr(&it.config_gen, v3->generation);
	assert_int_equal(work_item_config(own, &co, st, &it, &cache, &use, &why, &err), JERR_OK);
	assert_null(use); /* not published yet */
	assert_non_null(strstr(why.msg.buf, "work item 2/4 of job 7 not run"));
	assert_non_null(strstr(why.detail.buf, "has no copy of generation"));
	jerror_release(&why);
	why = (struct jerror)JERROR_INIT;
	assert_int_equal(work_publish_config(v3, st, "test", &err), JERR_OK);
	assert_int_equal(work_item_config(own, &co, st, &it, &cache, &use, &why, &err), JERR_OK);
	assert_non_null(use);
	assert_string_equal(use->generation, v3->generation);
	assert_non_null(config_app(use, "accounts"));
	assert_string_equal(use->root, own->root); /* files options resolve from this host's root */
	assert_string_equal(cfg_options_str(&config_app(use, "b")->options, "apiKey"), "key-1");

	/* ... but not where its secret is missing: refused, saying what is missing */
	struct config_opts bare = { .getenv_fn = cfg_env, .getenv_ctx = NULL };
	config_free(cache);
	cache = NULL;
	assert_int_equal(work_item_config(own, &bare, st, &it, &cache, &use, &why, &err), JERR_OK);
	assert_null(use);
	assert_non_null(strstr(why.detail.buf, "does not load here"));
	assert_non_null(strstr(why.detail.buf, "environment variable \"K\" is not set"));
	assert_non_null(why.hint.buf);
	jerror_release(&why);
	why = (struct jerror)JERROR_INIT;

	/* a secret written in a file: the store has no copy of the files, and says why */
	tu_write(other, "m.json", "[" APP_ID("accounts") "," BRAZE("literal-key") "]");
	lit = load_dir(other, &co);
	assert_int_equal(work_publish_config(lit, st, "test", &err), JERR_OK);
	strbuf_reset(&it.config_gen);
	strbuf_addstr(&it.config_gen, lit->generation);
	assert_int_equal(work_item_config(own, &co, st, &it, &cache, &use, &why, &err), JERR_OK);
	assert_null(use);
	assert_non_null(strstr(why.detail.buf, "holds no snapshot of it"));
	assert_non_null(strstr(why.detail.buf, "option \"apiKey\" of \"b\""));
	assert_null(strstr(why.detail.buf, "literal-key"));
	jerror_release(&why);

	state_work_item_release(&it);
	config_free(cache);
	config_free(lit);
	config_free(v3);
	config_free(v2);
	config_free(own);
	state_close(st);
	jerror_release(&err);
	tu_rmtree(root);
	free(root);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_even_split),
		cmocka_unit_test(test_few_keys),
		cmocka_unit_test(test_text_keys),
		cmocka_unit_test(test_item_config),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
