/*
 * readahead.c: tests of src/engine/readahead.c: the records read on the thread are the
 * reader's, a source that fails mid-stream gives its error after the records before it
 * (no hang, nothing lost), stopping early joins the thread, and a shared prep leaves
 * each record either its prep or nothing. Run under the ASan
 * build (the test build) for use-after-free of the batches.
 */
#include "support/testutil.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/strbuf.h"
#include "base/value.h"
#include "config/config.h"
#include "engine/readahead.h"
#include "engine/record.h"
#include "source/source.h"

static const char config_json[] =
	"[{\"class\":\"App\",\"id\":\"db\",\"type\":\"sqlite\",\"options\":{\"file\":\"data.db\"}},"
	"{\"class\":\"Model\",\"id\":\"users\",\"name\":\"Users\",\"type\":\"profile\"},"
	"{\"class\":\"Source\",\"id\":\"users_src\",\"type\":\"sqlite-import-table\",\"appId\":\"db\","
	"\"modelId\":\"users\",\"options\":{\"table\":\"users\"},\"mapping\":{\"id\":\"user_id\"}},"
	"{\"class\":\"Property\",\"id\":\"user_id\",\"type\":\"integer\",\"unique\":true,"
	"\"sourceId\":\"users_src\",\"options\":{\"column\":\"id\"}},"
	"{\"class\":\"Property\",\"id\":\"email\",\"type\":\"email\",\"sourceId\":\"users_src\","
	"\"options\":{\"column\":\"email\"}},"
	"{\"class\":\"Property\",\"id\":\"name\",\"type\":\"string\",\"sourceId\":\"users_src\","
	"\"options\":{\"column\":\"name\"}},"
	"{\"class\":\"Property\",\"id\":\"vip\",\"type\":\"boolean\",\"sourceId\":\"users_src\","
	"\"options\":{\"column\":\"vip\"}},"
	"{\"class\":\"Group\",\"id\":\"vips\",\"name\":\"VIPs\",\"modelId\":\"users\","
	"\"rules\":[{\"propertyId\":\"vip\",\"op\":\"eq\",\"match\":true}]}]";

/* A config dir whose users table has n rows; dup > 0 repeats that id (a bad source). */
static char *make_project(int n, int dup)
{
	char *dir = tu_mkdtemp();
	struct strbuf db = STRBUF_INIT;
	sqlite3 *h = NULL;
	char *msg = NULL;
	tu_write(dir, "config/config.json", config_json);
	strbuf_addf(&db, "%s/data.db", dir);
	assert_int_equal(sqlite3_open(db.buf, &h), SQLITE_OK);
	struct strbuf sql = STRBUF_INIT;
	strbuf_addf(&sql,
		    "CREATE TABLE users (id INTEGER, email TEXT, name TEXT, vip INTEGER);"
		    "WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < %d)"
		    " INSERT INTO users SELECT i, 'u' || i || '@example.com',"
		    " CASE WHEN i %% 5 = 0 THEN NULL ELSE printf('name %%d %%s', i, hex(randomblob(i %% 40))) END,"
		    " i %% 3 = 0 FROM s;",
		    n);
	if (dup)
		strbuf_addf(&sql, "INSERT INTO users VALUES (%d, 'again@example.com', 'x', 0);", dup);
	if (sqlite3_exec(h, sql.buf, NULL, NULL, &msg) != SQLITE_OK)
		fail_msg("%s", msg);
	sqlite3_close(h);
	strbuf_release(&sql);
	strbuf_release(&db);
	return dir;
}

static struct config *load(const char *dir)
{
	struct config *cfg = NULL;
	struct jerror err = JERROR_INIT;
	struct strbuf cdir = STRBUF_INIT;
	strbuf_addf(&cdir, "%s/config", dir);
	if (config_load(cdir.buf, NULL, &cfg, &err) != JERR_OK) {
		if (cfg)
			config_print_diags(cfg, stderr);
		fail_msg("config: %s", err.msg.buf);
	}
	strbuf_release(&cdir);
	jerror_release(&err);
	return cfg;
}

/* One line per record: key, values as JSON, groups. */
static void describe(const struct record *rec, struct strbuf *out)
{
	strbuf_addf(out, "%.*s|%d|", (int)rec->key.text.len, rec->key.text.ptr, rec->key.is_int);
	for (size_t i = 0; i < rec->model->n_properties; i++) {
		value_to_json(out, &rec->values[i]);
		strbuf_addch(out, ',');
	}
	for (size_t i = 0; i < rec->model->n_groups; i++)
		strbuf_addch(out, rec->groups[i] ? 'G' : '-');
	strbuf_addch(out, '\n');
}

/* prep: the record's key text, copied into the batch arena (what the diff's prep does) */
static void prep_key(void *ctx, const struct record *rec, struct arena *a, void **out)
{
	int *calls = ctx;
	(*calls)++;
	*out = arena_strndup(a, rec->key.text.ptr, rec->key.text.len);
}

struct outcome {
	struct strbuf text;
	enum jerr rc;
	struct strbuf msg;
	size_t n;
	size_t prepped; /* records that came with what prep left */
};

/*
 * Read every record of dir's model, on the thread (ahead) or not; slow: pause now and
 * then. share: NULL, prep on the thread for every record; else a shared prep with
 * JOEY_READAHEAD=share ("": unset).
 */
static void read_all_shared(const char *dir, bool ahead, bool slow, const char *share, struct outcome *o)
{
	struct config *cfg = load(dir);
	struct record_reader *rr = NULL;
	struct readahead *ra = NULL;
	struct jerror err = JERROR_INIT;
	const struct record *rec = NULL;
	int calls = 0;
	struct readahead_prep prep = { prep_key, &calls, .shared = share != NULL };

	strbuf_init(&o->text, 0);
	strbuf_init(&o->msg, 0);
	o->n = o->prepped = 0;
	if (record_reader_open(cfg, cfg->models[0], NULL, &rr, &err))
		fail_msg("open: %s / %s", err.msg.buf, err.detail.buf);
	if (share && *share)
		setenv("JOEY_READAHEAD", share, 1);
	else
		unsetenv("JOEY_READAHEAD");
	if (ahead)
		assert_int_equal(readahead_start(rr, &prep, &ra, &err), JERR_OK);
	unsetenv("JOEY_READAHEAD");
	for (;;) {
		void *extra = NULL;
		o->rc = ahead ? readahead_next(ra, &rec, &extra, &err) : record_reader_next(rr, &rec, &err);
		if (o->rc || !rec)
			break;
		describe(rec, &o->text);
		if (ahead && extra) {
			/* what prep left is the record's own */
			assert_int_equal(strlen(extra), rec->key.text.len);
			assert_memory_equal(extra, rec->key.text.ptr, rec->key.text.len);
			o->prepped++;
		} else if (ahead && !share) {
			fail_msg("record %zu: prep left nothing", o->n);
		}
		if (slow && o->n % 300 == 0) {
			struct timespec ts = { 0, 2 * 1000 * 1000 };
			nanosleep(&ts, NULL);
		}
		o->n++;
	}
	if (ahead) {
		/* after the end or the error: the end, at once, again and again */
		for (int i = 0; i < 3; i++) {
			assert_int_equal(readahead_next(ra, &rec, NULL, &err), JERR_OK);
			assert_null(rec);
		}
		readahead_stop(ra);
		assert_int_equal((size_t)calls, o->prepped);
		/* the reader is the caller's again: its counts are there */
		assert_int_equal(record_reader_stats(rr)->records, o->n);
	}
	strbuf_addstr(&o->msg, err.msg.buf);
	record_reader_close(rr);
	config_free(cfg);
	jerror_release(&err);
}

static void read_all(const char *dir, bool ahead, bool slow, struct outcome *o)
{
	read_all_shared(dir, ahead, slow, NULL, o);
}

static void outcome_release(struct outcome *o)
{
	strbuf_release(&o->text);
	strbuf_release(&o->msg);
}

/*
 * Many batches (more than the ring holds), a slow consumer (the thread waits on a full
 * ring and reads again once READAHEAD_REFILL slots are free): the same records, in order.
 */
static void test_same_records(void **s)
{
	char *dir = make_project(5000, 0);
	struct outcome plain, ahead, slow;
	read_all(dir, false, false, &plain);
	read_all(dir, true, false, &ahead);
	read_all(dir, true, true, &slow);
	assert_int_equal(plain.rc, JERR_OK);
	assert_int_equal(ahead.rc, JERR_OK);
	assert_int_equal(slow.rc, JERR_OK);
	assert_int_equal(plain.n, 5000);
	assert_int_equal(ahead.n, 5000);
	assert_string_equal(plain.text.buf, ahead.text.buf);
	assert_string_equal(plain.text.buf, slow.text.buf);
	outcome_release(&plain);
	outcome_release(&ahead);
	outcome_release(&slow);
	tu_rmtree(dir);
	free(dir);
}

/*
 * A shared prep (readahead_prep.shared): the same records, each with what prep left or
 * with nothing; all of them prepped on the thread with JOEY_READAHEAD=reader, none
 * with diff; with the default split, a consumer that pauses lets the thread get ahead,
 * and then it preps (a batch waits beside the one being read).
 */
static void test_shared_prep(void **s)
{
	char *dir = make_project(5000, 0);
	struct outcome plain, reader, consumer, fast, slow;
	read_all(dir, false, false, &plain);
	read_all_shared(dir, true, false, "reader", &reader);
	read_all_shared(dir, true, false, "diff", &consumer);
	read_all_shared(dir, true, false, "", &fast);
	read_all_shared(dir, true, true, "", &slow);
	struct outcome *all[] = { &reader, &consumer, &fast, &slow };
	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
		assert_int_equal(all[i]->rc, JERR_OK);
		assert_int_equal(all[i]->n, 5000);
		assert_string_equal(plain.text.buf, all[i]->text.buf);
	}
	assert_int_equal(reader.prepped, 5000);
	assert_int_equal(consumer.prepped, 0);
	assert_true(slow.prepped > 0);
	outcome_release(&plain);
	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
		outcome_release(all[i]);
	tu_rmtree(dir);
	free(dir);
}

/*
 * A duplicate key after 3000 records (the source fails in the middle of its stream,
 * several batches in): every record before it comes out, then the source's error,
 * exactly as without the thread.
 */
static void test_error_mid_stream(void **s)
{
	char *dir = make_project(4000, 3000);
	struct outcome plain, ahead, slow;
	read_all(dir, false, false, &plain);
	read_all(dir, true, false, &ahead);
	read_all(dir, true, true, &slow);
	assert_int_equal(plain.rc, JERR_SOURCE_DATA);
	assert_int_equal(ahead.rc, JERR_SOURCE_DATA);
	assert_int_equal(slow.rc, JERR_SOURCE_DATA);
	assert_non_null(strstr(ahead.msg.buf, "duplicate primary key \"3000\""));
	assert_string_equal(plain.msg.buf, ahead.msg.buf);
	assert_string_equal(plain.msg.buf, slow.msg.buf);
	assert_int_equal(plain.n, ahead.n);
	assert_int_equal(plain.n, slow.n);
	assert_true(ahead.n >= 2999 && ahead.n <= 3000);
	assert_string_equal(plain.text.buf, ahead.text.buf);
	outcome_release(&plain);
	outcome_release(&ahead);
	outcome_release(&slow);
	tu_rmtree(dir);
	free(dir);
}

/* The diff fails early: stop with the ring full and the thread waiting, or mid-batch. */
static void test_stop_early(void **s)
{
	char *dir = make_project(5000, 0);
	struct config *cfg = load(dir);
	struct jerror err = JERROR_INIT;
	for (int taken = 0; taken < 3; taken++) {
		struct record_reader *rr = NULL;
		struct readahead *ra = NULL;
		const struct record *rec = NULL;
		assert_int_equal(record_reader_open(cfg, cfg->models[0], NULL, &rr, &err), JERR_OK);
		assert_int_equal(readahead_start(rr, NULL, &ra, &err), JERR_OK);
		for (int i = 0; i < taken * 300; i++) {
			void *extra = (void *)1;
			assert_int_equal(readahead_next(ra, &rec, &extra, &err), JERR_OK);
			assert_non_null(rec);
			assert_null(extra); /* no prep */
		}
		if (taken == 2) { /* let the thread fill the ring and wait */
			struct timespec ts = { 0, 50 * 1000 * 1000 };
			nanosleep(&ts, NULL);
		}
		readahead_stop(ra);
		/* the reader still works on this thread after the stop */
		assert_int_equal(record_reader_next(rr, &rec, &err), JERR_OK);
		record_reader_close(rr);
	}
	readahead_stop(NULL);
	config_free(cfg);
	jerror_release(&err);
	tu_rmtree(dir);
	free(dir);
}

/*
 * The starting thread's stop flag (source_set_stop; SIGINT/SIGTERM set it) stops the
 * reads on the thread too: the source's JERR_INTERRUPTED comes out, no hang.
 */
static void test_stop_flag(void **s)
{
	char *dir = make_project(20000, 0);
	struct config *cfg = load(dir);
	struct jerror err = JERROR_INIT;
	struct record_reader *rr = NULL;
	struct readahead *ra = NULL;
	const struct record *rec = NULL;
	static volatile int stop;
	volatile int *prev = source_set_stop(&stop);
	enum jerr rc;
	size_t n = 0;

	stop = 0;
	assert_int_equal(record_reader_open(cfg, cfg->models[0], NULL, &rr, &err), JERR_OK);
	assert_int_equal(readahead_start(rr, NULL, &ra, &err), JERR_OK);
	while ((rc = readahead_next(ra, &rec, NULL, &err)) == JERR_OK && rec)
		if (++n == 10)
			stop = 1;
	assert_int_equal(rc, JERR_INTERRUPTED);
	assert_true(n < 20000);
	readahead_stop(ra);
	record_reader_close(rr);
	source_set_stop(prev);
	config_free(cfg);
	jerror_release(&err);
	tu_rmtree(dir);
	free(dir);
}

static void test_enabled(void **s)
{
	unsetenv("JOEY_READAHEAD");
	assert_true(readahead_enabled());
	setenv("JOEY_READAHEAD", "0", 1);
	assert_false(readahead_enabled());
	setenv("JOEY_READAHEAD", "1", 1);
	assert_true(readahead_enabled());
	unsetenv("JOEY_READAHEAD");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_same_records),
		cmocka_unit_test(test_shared_prep),
		cmocka_unit_test(test_error_mid_stream),
		cmocka_unit_test(test_stop_early),
		cmocka_unit_test(test_stop_flag),
		cmocka_unit_test(test_enabled),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
