/* Tests for src/state/alerts.c: incidents, deliveries and observations on both back ends. */
#include "state/backends.h"

#include "state/alerts.h"

static struct state *open_fresh(char **path)
{
	struct state *st = NULL;
	struct jerror err = JERROR_INIT;
	*path = tb_fresh();
	if (state_open(*path, STATE_OPEN_CREATE, &st, &err))
		fail_msg("open: %s %s", err.msg.buf, err.detail.buf);
	jerror_release(&err);
	return st;
}

static void test_incident_opens_once_and_resolves(void **unused)
{
	(void)unused;
	char *path;
	struct state *st = open_fresh(&path);
	struct jerror err = JERROR_INIT;
	int64_t id1 = 0, id2 = 0, id3 = 0;
	bool opened, resolved;

	assert_int_equal(state_alert_open(st, "ops", "d", "runFailed", 7, "run 7 failed", 1000, &id1, &opened, &err), JERR_OK);
	assert_true(opened);
	assert_true(id1 > 0);
	/* the same condition again: the same incident, no second opening */
	assert_int_equal(state_alert_open(st, "ops", "d", "runFailed", 8, "run 8 failed", 2000, &id2, &opened, &err), JERR_OK);
	assert_false(opened);
	assert_int_equal(id2, id1);
	assert_int_equal(tb_int(path, "SELECT hits FROM alert_incidents"), 2);
	assert_int_equal(tb_int(path, "SELECT last_run_id FROM alert_incidents"), 8);
	/* another trigger or destination is another incident */
	assert_int_equal(state_alert_open(st, "ops", "e", "runFailed", 9, "x", 2000, &id3, &opened, &err), JERR_OK);
	assert_true(opened);
	assert_true(id3 != id1);
	/* resolve once */
	assert_int_equal(state_alert_resolve(st, "ops", "d", "runFailed", 3000, &id2, &resolved, &err), JERR_OK);
	assert_true(resolved);
	assert_int_equal(id2, id1);
	assert_int_equal(state_alert_resolve(st, "ops", "d", "runFailed", 4000, &id2, &resolved, &err), JERR_OK);
	assert_false(resolved);
	/* and a new incident after it */
	assert_int_equal(state_alert_open(st, "ops", "d", "runFailed", 10, "again", 5000, &id2, &opened, &err), JERR_OK);
	assert_true(opened);
	assert_true(id2 != id1);
	assert_int_equal(tb_int(path, "SELECT count(*) FROM alert_incidents WHERE resolved_at IS NULL"), 2);
	/* the database refuses a second open incident of a triple */
	if (B->kind == TB_SQLITE) {
		sqlite3 *db = NULL;
		assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
		assert_int_not_equal(sqlite3_exec(db, "INSERT INTO alert_incidents (alert_id, dest_id, trigger_name, opened_at,"
						      " last_seen_at, summary) VALUES ('ops', 'd', 'runFailed', 1, 1, 'x')",
						  NULL, NULL, NULL),
				     SQLITE_OK);
		sqlite3_close(db);
	}
	state_close(st);
	jerror_release(&err);
	free(path);
}

struct seen {
	int n;
	int64_t ids[16];
	char status[16][16];
};

static enum jerr seen_delivery(void *ctx, const struct state_alert_delivery *d, struct jerror *err)
{
	struct seen *s = ctx;
	(void)err;
	if (s->n < 16) {
		s->ids[s->n] = d->id;
		snprintf(s->status[s->n], sizeof(s->status[0]), "%s", d->status);
	}
	s->n++;
	return JERR_OK;
}

static void test_delivery_claim_retry_and_lease(void **unused)
{
	(void)unused;
	char *path;
	struct state *st = open_fresh(&path);
	struct jerror err = JERROR_INIT;
	struct state_alert_claimed c;
	int64_t a = 0, b = 0, next;
	bool found;

	state_alert_claimed_init(&c);
	assert_int_equal(state_alert_enqueue(st, 1, "ops", "d", "opened", "{\"x\":1}", 1000, &a, &err), JERR_OK);
	assert_int_equal(state_alert_enqueue(st, 0, "ops", NULL, "test", "{}", 1001, &b, &err), JERR_OK);
	assert_true(a > 0 && b > a);
	assert_int_equal(state_alert_next_due(st, &next, &found, &err), JERR_OK);
	assert_true(found);
	assert_int_equal(next, 1000);

	/* nothing is due before its time */
	assert_int_equal(state_alert_claim(st, 999, 60000, 0, &c, &found, &err), JERR_OK);
	assert_false(found);
	assert_int_equal(state_alert_claim(st, 1000, 60000, 0, &c, &found, &err), JERR_OK);
	assert_true(found);
	assert_int_equal(c.id, a);
	assert_int_equal(c.attempts, 1);
	assert_string_equal(c.alert_id.buf, "ops");
	assert_string_equal(c.dest_id.buf, "d");
	assert_string_equal(c.event.buf, "opened");
	assert_string_equal(c.body.buf, "{\"x\":1}");
	/* a failed attempt: pending again later */
	assert_int_equal(state_alert_done(st, a, "HTTP 500", 5000, 1100, &err), JERR_OK);
	assert_int_equal(state_alert_claim(st, 1200, 60000, 0, &c, &found, &err), JERR_OK);
	assert_true(found);
	assert_int_equal(c.id, b); /* the other one is due now; a waits */
	/* b's process dies: its lease runs out and another takes it */
	assert_int_equal(state_alert_claim(st, 1300, 60000, 0, &c, &found, &err), JERR_OK);
	assert_false(found);
	assert_int_equal(state_alert_claim(st, 1200 + 60001, 60000, 0, &c, &found, &err), JERR_OK);
	assert_true(found);
	assert_int_equal(c.id, b); /* due since 1001; a only since 5000 */
	assert_int_equal(c.attempts, 2);
	assert_int_equal(state_alert_done(st, b, "no route", 0, 61300, &err), JERR_OK); /* failed for good */
	assert_int_equal(state_alert_claim(st, 70000, 60000, 0, &c, &found, &err), JERR_OK);
	assert_true(found);
	assert_int_equal(c.id, a);
	assert_int_equal(c.attempts, 2);
	assert_int_equal(state_alert_done(st, a, NULL, 0, 70000, &err), JERR_OK);
	assert_int_equal(state_alert_claim(st, 999999999, 60000, 0, &c, &found, &err), JERR_OK);
	assert_false(found);
	assert_int_equal(state_alert_next_due(st, &next, &found, &err), JERR_OK);
	assert_false(found);

	struct seen s = { 0 };
	assert_int_equal(state_alert_deliveries(st, NULL, 0, 0, seen_delivery, &s, &err), JERR_OK);
	assert_int_equal(s.n, 2);
	assert_int_equal(s.ids[0], b); /* newest first */
	assert_string_equal(s.status[0], "failed");
	assert_string_equal(s.status[1], "sent");
	memset(&s, 0, sizeof(s));
	assert_int_equal(state_alert_deliveries(st, "ops", 1, b, seen_delivery, &s, &err), JERR_OK);
	assert_int_equal(s.n, 1);
	assert_int_equal(s.ids[0], a);
	assert_int_equal(tb_int(path, "SELECT sent_at FROM alert_deliveries WHERE event = 'opened'"), 70000);

	/* only_id: a test message at once, whatever its next_at */
	int64_t t = 0;
	assert_int_equal(state_alert_enqueue(st, 0, "ops", NULL, "test", "{}", 90000, &t, &err), JERR_OK);
	assert_int_equal(state_alert_claim(st, 80000, 60000, t, &c, &found, &err), JERR_OK);
	assert_true(found);
	assert_int_equal(c.id, t);
	state_alert_claimed_release(&c);
	state_close(st);
	jerror_release(&err);
	free(path);
}

static void test_observations_and_dest_times(void **unused)
{
	(void)unused;
	char *path;
	struct state *st = open_fresh(&path);
	struct jerror err = JERROR_INIT;
	uint64_t records;
	int64_t run_id, ok_at, first_at, r1, r2;
	bool found;
	struct run_counts c = { 0 };

	assert_int_equal(state_alert_observation(st, "d", &records, &run_id, &found, &err), JERR_OK);
	assert_false(found);
	assert_int_equal(state_alert_observe(st, "d", 4, 1000, 1, &err), JERR_OK);
	assert_int_equal(state_alert_observe(st, "d", 5, 800, 2, &err), JERR_OK);
	assert_int_equal(state_alert_observation(st, "d", &records, &run_id, &found, &err), JERR_OK);
	assert_true(found);
	assert_int_equal(records, 800);
	assert_int_equal(run_id, 5);

	assert_int_equal(state_alert_dest_times(st, "d", &ok_at, &first_at, &err), JERR_OK);
	assert_int_equal(ok_at, 0);
	assert_int_equal(first_at, 0);
	assert_int_equal(state_run_start(st, "d", "run", &r1, &err), JERR_OK);
	assert_int_equal(state_run_finish(st, r1, RUN_FAILED, &c, "boom", &err), JERR_OK);
	assert_int_equal(state_alert_dest_times(st, "d", &ok_at, &first_at, &err), JERR_OK);
	assert_int_equal(ok_at, 0);
	assert_true(first_at > 0);
	assert_int_equal(state_run_start(st, "d", "run", &r2, &err), JERR_OK);
	assert_int_equal(state_run_finish(st, r2, RUN_SUCCESS, &c, NULL, &err), JERR_OK);
	assert_int_equal(state_alert_dest_times(st, "d", &ok_at, &first_at, &err), JERR_OK);
	assert_true(ok_at >= first_at);
	state_close(st);
	jerror_release(&err);
	free(path);
}

static void test_readonly_and_old_stores(void **unused)
{
	(void)unused;
	char *path = tb_fresh();
	struct state *st = NULL;
	struct jerror err = JERROR_INIT;
	int64_t id;
	bool opened, found;
	struct state_alert_claimed c;

	/* a version-4 store opened read-only: no alert tables, reads are empty, writes refused */
	tb_make_version(path, 4);
	assert_int_equal(state_open(path, STATE_OPEN_READONLY, &st, &err), JERR_OK);
	struct seen s = { 0 };
	assert_int_equal(state_alert_deliveries(st, NULL, 0, 0, seen_delivery, &s, &err), JERR_OK);
	assert_int_equal(s.n, 0);
	state_alert_claimed_init(&c);
	assert_int_equal(state_alert_claim(st, 1, 1, 0, &c, &found, &err), JERR_OK);
	assert_false(found);
	assert_int_equal(state_alert_open(st, "a", "d", "runFailed", 1, "x", 1, &id, &opened, &err), JERR_STATE);
	assert_non_null(strstr(err.msg.buf, "read-only"));
	state_close(st);
	state_alert_claimed_release(&c);
	jerror_release(&err);
	free(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_incident_opens_once_and_resolves),
		cmocka_unit_test(test_delivery_claim_retry_and_lease),
		cmocka_unit_test(test_observations_and_dest_times),
		cmocka_unit_test(test_readonly_and_old_stores),
	};
	return tb_run_both("state alerts", tests, ARRAY_SIZE(tests));
}
