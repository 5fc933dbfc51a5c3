/* work.c: tests of src/engine/work.c: the key sample and the partition bounds. */
#include "support/testutil.h"

#include <stdio.h>
#include <string.h>

#include "engine/work.h"

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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_even_split),
		cmocka_unit_test(test_few_keys),
		cmocka_unit_test(test_text_keys),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
