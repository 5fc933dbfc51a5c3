/*
 * diff.c: tests of src/engine/diff.c's streaming diff: the items it hands the visitor
 * do not depend on who builds the payloads. The read-ahead thread builds a record's
 * payload and hash when it is ahead of the diff and leaves them to the diff thread when
 * it is not (readahead_prep.shared), so the split moves with timing; every split must
 * give the same items, byte for byte, as reading on one thread (JOEY_READAHEAD=0):
 * all on the thread (reader), none on it (diff), shared with a fast and with a slow
 * visitor, for a full pass and an incremental (partial) one, over two destinations
 * (Sync, and Additive, which unsubscribes), with creates, updates, deletes, records
 * leaving and entering a group, invalid values, an array property from a second source
 * and a retried (pending) record.
 */
#include "support/testutil.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/strbuf.h"
#include "config/config.h"
#include "engine/diff.h"
#include "source/source.h"
#include "state/state.h"

#define N_ROWS 3000

static char *tmp;

static const char config_json[] =
	"[{\"class\":\"App\",\"id\":\"db\",\"type\":\"sqlite\",\"options\":{\"file\":\"data.db\"}},"
	"{\"class\":\"App\",\"id\":\"braze\",\"type\":\"braze\",\"options\":{\"apiKey\":\"K\","
	"\"restEndpoint\":\"http://127.0.0.1:9\"}},"
	"{\"class\":\"Model\",\"id\":\"users\",\"name\":\"Users\",\"type\":\"profile\"},"
	"{\"class\":\"Source\",\"id\":\"users_src\",\"type\":\"sqlite-import-table\",\"appId\":\"db\","
	"\"modelId\":\"users\",\"options\":{\"table\":\"users\"},\"mapping\":{\"id\":\"user_id\"}},"
	"{\"class\":\"Property\",\"id\":\"user_id\",\"type\":\"integer\",\"unique\":true,"
	"\"sourceId\":\"users_src\",\"options\":{\"column\":\"id\"}},"
	"{\"class\":\"Property\",\"id\":\"email\",\"type\":\"email\",\"sourceId\":\"users_src\","
	"\"options\":{\"column\":\"email\"}},"
	"{\"class\":\"Property\",\"id\":\"name\",\"type\":\"string\",\"sourceId\":\"users_src\","
	"\"options\":{\"column\":\"name\"}},"
	"{\"class\":\"Property\",\"id\":\"age\",\"type\":\"integer\",\"sourceId\":\"users_src\","
	"\"options\":{\"column\":\"age\"}},"
	"{\"class\":\"Property\",\"id\":\"score\",\"type\":\"float\",\"sourceId\":\"users_src\","
	"\"options\":{\"column\":\"score\"}},"
	"{\"class\":\"Property\",\"id\":\"vip\",\"type\":\"boolean\",\"sourceId\":\"users_src\","
	"\"options\":{\"column\":\"vip\"}},"
	"{\"class\":\"Property\",\"id\":\"signup\",\"type\":\"date\",\"sourceId\":\"users_src\","
	"\"options\":{\"column\":\"signup\"}},"
	"{\"class\":\"Source\",\"id\":\"buys_src\",\"type\":\"sqlite-import-table\",\"appId\":\"db\","
	"\"modelId\":\"users\",\"options\":{\"table\":\"buys\"},\"mapping\":{\"user_id\":\"user_id\"}},"
	"{\"class\":\"Property\",\"id\":\"items\",\"type\":\"string\",\"sourceId\":\"buys_src\",\"isArray\":true,"
	"\"options\":{\"column\":\"item\",\"aggregationMethod\":\"exact\",\"sortColumn\":\"id\"}},"
	"{\"class\":\"Group\",\"id\":\"vips\",\"name\":\"VIPs\",\"modelId\":\"users\","
	"\"rules\":[{\"propertyId\":\"vip\",\"op\":\"eq\",\"match\":true}]},"
	"{\"class\":\"Group\",\"id\":\"adults\",\"name\":\"Adults\",\"modelId\":\"users\","
	"\"rules\":[{\"propertyId\":\"age\",\"op\":\"gte\",\"match\":30}]},"
	"{\"class\":\"Destination\",\"id\":\"sync\",\"type\":\"braze-export-users\",\"appId\":\"braze\","
	"\"modelId\":\"users\",\"syncMode\":\"sync\",\"collection\":\"model\","
	"\"mapping\":{\"external_id\":\"user_id\",\"email\":\"email\",\"first_name\":\"name\",\"age\":\"age\","
	"\"score\":\"score\",\"signup\":\"signup\",\"items\":\"items\"},\"destinationGroupMemberships\":{\"VIP\":\"vips\"}},"
	"{\"class\":\"Destination\",\"id\":\"adds\",\"type\":\"braze-export-users\",\"appId\":\"braze\","
	"\"modelId\":\"users\",\"syncMode\":\"additive\",\"collection\":\"group\",\"groupId\":\"adults\","
	"\"mapping\":{\"external_id\":\"user_id\",\"email\":\"email\",\"vip\":\"vip\"},"
	"\"destinationGroupMemberships\":{\"VIP\":\"vips\",\"Adults\":\"adults\"}}]";

static void sql(const char *stmts)
{
	struct strbuf path = STRBUF_INIT;
	sqlite3 *db = NULL;
	char *msg = NULL;
	strbuf_addf(&path, "%s/data.db", tmp);
	assert_int_equal(sqlite3_open(path.buf, &db), SQLITE_OK);
	if (sqlite3_exec(db, stmts, NULL, NULL, &msg) != SQLITE_OK)
		fail_msg("%s", msg);
	sqlite3_close(db);
	strbuf_release(&path);
}

static struct config *load(void)
{
	struct config *cfg = NULL;
	struct jerror err = JERROR_INIT;
	struct strbuf dir = STRBUF_INIT;
	strbuf_addf(&dir, "%s/config", tmp);
	if (config_load(dir.buf, NULL, &cfg, &err) != JERR_OK) {
		if (cfg)
			config_print_diags(cfg, stderr);
		fail_msg("config: %s", err.msg.buf);
	}
	strbuf_release(&dir);
	jerror_release(&err);
	return cfg;
}

/* ---- a visitor that writes every item down (and can apply it to the state) ---- */

struct log {
	struct strbuf text;
	struct state *apply; /* non-NULL: store what Braze would confirm */
	bool slow;           /* pause now and then: the read-ahead thread gets ahead */
	size_t n;
};

static enum jerr log_item(void *ctx, const struct diff_item *it, struct jerror *err)
{
	struct log *l = ctx;
	struct strbuf *t = &l->text;
	strbuf_addf(t, "%s %s %.*s in_scope=%d state_only=%d full=%d pending=%d attempts=%d absent=%d\n", it->dest->id,
		    diff_action_name(it->action), (int)it->key->text.len, it->key->text.ptr, it->in_scope,
		    it->state_only, it->full, it->pending, it->attempts, it->absent);
	strbuf_addf(t, "  old %.*s\n  new %.*s\n  hash ", (int)it->old_payload.len, it->old_payload.ptr,
		    (int)it->new_payload.len, it->new_payload.ptr);
	for (size_t i = 0; it->new_hash && i < STATE_HASH_LEN; i++)
		strbuf_addf(t, "%02x", it->new_hash[i]);
	strbuf_addch(t, '\n');
	if (it->rec)
		assert_memory_equal(it->rec->key.text.ptr, it->key->text.ptr, it->key->text.len);
	if (l->slow && ++l->n % 200 == 0) {
		struct timespec ts = { 0, 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
	if (!l->apply || (it->action == DIFF_UNCHANGED && !it->state_only))
		return JERR_OK;
	if (it->action == DIFF_DELETE)
		return state_delete(l->apply, it->dest->id, it->key, err);
	return state_put(l->apply, it->dest->id, it->key, it->new_payload, it->new_hash, it->in_scope, err);
}

/* One streaming pass over the model with JOEY_READAHEAD=mode (NULL: unset); the items in *out. */
static void pass(struct state *st, const char *mode, bool slow, const struct source_read *read, struct strbuf *out)
{
	struct config *cfg = load();
	const struct cfg_model *m = cfg->models[0];
	struct log l = { .text = STRBUF_INIT, .slow = slow };
	struct diff_visitor v = { log_item, &l };
	struct diff_opts o = { .read = read };
	struct record_stats stats;
	struct jerror err = JERROR_INIT;
	struct strbuf since = STRBUF_INIT;

	if (mode)
		setenv("JOEY_READAHEAD", mode, 1);
	else
		unsetenv("JOEY_READAHEAD");
	enum jerr rc = diff_stream(cfg, m, m->destinations, m->n_destinations, st, &o, &v, &stats, &since, &err);
	if (rc)
		fail_msg("diff_stream (JOEY_READAHEAD=%s): %s: %s", mode ? mode : "", err.msg.buf, err.detail.buf);
	unsetenv("JOEY_READAHEAD");
	strbuf_addf(&l.text, "records=%llu invalid=%llu since=%s\n", (unsigned long long)stats.records,
		    (unsigned long long)stats.invalid_values, since.buf);
	strbuf_reset(out);
	strbuf_addslice(out, (struct slice){ l.text.buf, l.text.len });
	strbuf_release(&l.text);
	strbuf_release(&since);
	jerror_release(&err);
	config_free(cfg);
}

/* Apply a pass to the state (what a successful run stores). */
static void apply(struct state *st)
{
	struct config *cfg = load();
	const struct cfg_model *m = cfg->models[0];
	struct log l = { .text = STRBUF_INIT, .apply = st };
	struct diff_visitor v = { log_item, &l };
	struct record_stats stats;
	struct jerror err = JERROR_INIT;
	assert_int_equal(state_begin(st, &err), JERR_OK);
	if (diff_model(cfg, m, m->destinations, m->n_destinations, st, &v, &stats, &err))
		fail_msg("diff_model: %s: %s", err.msg.buf, err.detail.buf);
	assert_int_equal(state_commit(st, &err), JERR_OK);
	strbuf_release(&l.text);
	jerror_release(&err);
	config_free(cfg);
}

/* Every split of the payload work gives the items of the one-thread pass. */
static void same_items(struct state *st, const struct source_read *read, size_t min_items)
{
	static const char *const modes[] = { "reader", "diff", NULL };
	struct strbuf want = STRBUF_INIT, got = STRBUF_INIT;
	pass(st, "0", false, read, &want);
	size_t lines = 0;
	for (size_t i = 0; i < want.len; i++)
		lines += want.buf[i] == '\n';
	if (lines / 4 < min_items)
		fail_msg("only %zu items: the test data does not exercise the diff", lines / 4);
	for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
		for (int slow = 0; slow < 2; slow++) {
			pass(st, modes[i], slow, read, &got);
			if (strcmp(want.buf, got.buf))
				fail_msg("JOEY_READAHEAD=%s%s: the items differ from reading on one thread",
					 modes[i] ? modes[i] : "(unset)", slow ? ", slow visitor" : "");
		}
	}
	strbuf_release(&want);
	strbuf_release(&got);
}

static void test_splits_agree(void **s)
{
	struct strbuf path = STRBUF_INIT;
	struct state *st = NULL;
	struct jerror err = JERROR_INIT;
	char rows[1024];

	snprintf(rows, sizeof(rows),
		 "CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT, name TEXT, age INTEGER, score REAL,"
		 " vip INTEGER, signup TEXT, updated_at INTEGER NOT NULL DEFAULT 1);"
		 "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < %d)"
		 " INSERT INTO users (id, email, name, age, score, vip, signup) SELECT i,"
		 " CASE WHEN i %% 97 = 0 THEN 'not an email' ELSE 'u' || i || '@example.com' END,"
		 " CASE WHEN i %% 11 = 0 THEN NULL ELSE 'N\"' || i || char(233) END, 18 + i %% 40,"
		 " (i %% 100) / 8.0, i %% 5 = 0, strftime('%%Y-%%m-%%dT%%H:%%M:%%SZ', 1600000000 + i * 3600,"
		 " 'unixepoch') FROM n;"
		 "CREATE TABLE buys (id INTEGER PRIMARY KEY, user_id INTEGER, item TEXT);"
		 "INSERT INTO buys (user_id, item) SELECT id, 'pen' FROM users WHERE id %% 3 = 0;"
		 "INSERT INTO buys (user_id, item) SELECT id, 'book ' || id FROM users WHERE id %% 6 = 0;",
		 N_ROWS);
	sql(rows);
	strbuf_addf(&path, "%s/state.db", tmp);
	assert_int_equal(state_open(path.buf, STATE_OPEN_CREATE, &st, &err), JERR_OK);

	/* first pass: everything is a create */
	same_items(st, NULL, N_ROWS);
	apply(st);
	/* nothing changed: every record unchanged */
	same_items(st, NULL, N_ROWS);

	/* changes: updates, deletes, new rows, group moves (both ways), invalid values */
	sql("UPDATE users SET email = 'new' || id || '@example.com', updated_at = 2 WHERE id % 7 = 0;"
	    "UPDATE users SET vip = 1 - vip, updated_at = 2 WHERE id % 13 = 0;"
	    "UPDATE users SET age = 18, updated_at = 2 WHERE id % 17 = 0;"
	    "UPDATE users SET age = 'old', score = 'x', updated_at = 2 WHERE id % 301 = 0;"
	    "DELETE FROM users WHERE id % 19 = 0;"
	    "INSERT INTO buys (user_id, item) SELECT id, 'lamp' FROM users WHERE id % 23 = 0;"
	    "INSERT INTO users (id, email, name, age, vip, updated_at) SELECT id + 5000, email, name, 50, 1, 2"
	    " FROM users WHERE id <= 300;");
	/* a failed attempt: the next pass sends that record in full */
	struct rkey k = { .is_int = true, .i = 42, .text = { "42", 2 } };
	assert_int_equal(state_mark_failed(st, "sync", &k, "HTTP 500", (struct slice){ NULL, 0 }, &err), JERR_OK);
	same_items(st, NULL, N_ROWS);
	/* an incremental pass: only the changed rows, the state sought by key */
	struct source_read read = { .since_column = "updated_at", .since_value = "2" };
	same_items(st, &read, 500);

	state_close(st);
	strbuf_release(&path);
	jerror_release(&err);
}

static int setup(void **s)
{
	tmp = tu_mkdtemp();
	tu_write(tmp, "config/config.json", config_json);
	return 0;
}

static int teardown(void **s)
{
	tu_rmtree(tmp);
	free(tmp);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_splits_agree),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
