/*
 * braze.c: tests for the Braze connector's request side (src/dest/braze_request.c,
 * braze.c): rows made from the engine's changes (one allocation each), their track
 * objects, the exact request bodies built from them, and which fields cost a data
 * point. No HTTP: rows are queued on a struct braze that never sends.
 */
#include "support/testutil.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "base/strbuf.h"
#include "dest/braze_internal.h"

static struct braze *braze_new(bool enrich)
{
	struct braze *b = calloc(1, sizeof(*b));
	strbuf_init(&b->scratch, 8); /* small: the objects below must grow it */
	b->enrich = enrich;
	return b;
}

static void braze_free(struct braze *b)
{
	for (int i = 0; i < EP__COUNT; i++)
		braze_batch_free(b->open[i], true);
	while (b->ready_head) {
		struct batch *bt = b->ready_head;
		b->ready_head = bt->next;
		braze_batch_free(bt, true);
	}
	strbuf_release(&b->scratch);
	free(b->announce);
	braze_spares_free(b);
	free(b);
}

static void test_field_billable(void **s)
{
	static const char *const free_fields[] = { "country", "email_subscribe", "external_id", "language",
						   "push_subscribe", "subscription_groups" };
	for (size_t i = 0; i < ARRAY_SIZE(free_fields); i++)
		assert_false(dest_field_billable(free_fields[i]));
	/* same first letter, same length, prefixes and longer names all cost a data point */
	static const char *const billable[] = { "", "c", "countrx", "country2", "countr", "email", "emails",
						"external_ib", "languagE", "push_subscribx", "subscription_group",
						"first_name", "city", "score", "vip", "Country" };
	for (size_t i = 0; i < ARRAY_SIZE(billable); i++)
		assert_true(dest_field_billable(billable[i]));
}

/* A first export of key with two fields and a group, as the engine pushes it. */
static void push(struct braze *b, const char *key, const char *payload, const char *changed)
{
	static const struct dest_field fields[] = { { .name = "age", .json = "19", .json_len = 2 },
								    { .name = "na\"me", .json = "\"A\\\"n\"" } };
	static const char *const added[] = { "VIP" };
	static const unsigned char hash[STATE_HASH_LEN] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16 };
	struct rkey k = { .is_int = false, .text = slice_of(key) };
	struct dest_change c = { .op = b->enrich ? DEST_ENRICH_NEW : DEST_UPSERT, .key = &k, .create = true,
				 .fields = fields, .n_fields = 2, .groups_added = added, .n_added = 1,
				 .new_payload = slice_of(payload), .new_hash = hash, .in_scope = true,
				 .attempts = 2, .changed = slice_of(changed) };
	braze_route_change(b, &c);
}

static void test_rows_and_track_body(void **s)
{
	struct braze *b = braze_new(false);
	push(b, "u\"1", "{\"p\":1}", "[\"age\"]");
	push(b, "u2", "", "");
	struct batch *bt = b->open[EP_TRACK];
	assert_non_null(bt);
	assert_int_equal(bt->n, 2);

	/* every part of the change is copied into the row's one allocation */
	struct row *r = bt->rows[0];
	assert_string_equal(r->key.text.ptr, "u\"1");
	assert_int_equal(r->key.text.len, 3);
	assert_string_equal(r->payload, "{\"p\":1}");
	assert_int_equal(r->payload_len, 7);
	assert_string_equal(r->changed, "[\"age\"]");
	assert_int_equal(r->changed_len, 7);
	assert_int_equal(r->hash[15], 16);
	assert_true(r->in_scope && r->create);
	assert_int_equal(r->attempts, 2);
	assert_int_equal(r->data_points, 3); /* age, na"me and the group */
	const char *obj = "{\"external_id\":\"u\\\"1\",\"age\":19,\"na\\\"me\":\"A\\\"n\",\"groups\":{\"add\":[\"VIP\"]}}";
	assert_string_equal(r->object, obj);
	assert_int_equal(r->object_len, strlen(obj));
	/* no payload and no changed fields: none kept */
	assert_null(bt->rows[1]->payload);
	assert_int_equal(bt->rows[1]->payload_len, 0);
	assert_null(bt->rows[1]->changed);

	braze_build_body(b, bt);
	assert_string_equal(bt->body.buf,
			    "{\"attributes\":[{\"external_id\":\"u\\\"1\",\"age\":19,\"na\\\"me\":\"A\\\"n\",\"groups\":{\"add\":[\"VIP\"]}},"
			    "{\"external_id\":\"u2\",\"age\":19,\"na\\\"me\":\"A\\\"n\",\"groups\":{\"add\":[\"VIP\"]}}]}");
	assert_int_equal(bt->body.len, strlen(bt->body.buf));
	/* built again (a retry): the same bytes */
	struct strbuf first = STRBUF_INIT;
	strbuf_addstr(&first, bt->body.buf);
	braze_build_body(b, bt);
	assert_string_equal(bt->body.buf, first.buf);
	strbuf_release(&first);
	braze_free(b);
}

static void test_full_batch_and_enrich_body(void **s)
{
	/* a full track batch (75 rows) moves to the ready queue; the next row opens another */
	struct braze *b = braze_new(false);
	char key[16];
	for (int i = 0; i < 76; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		push(b, key, "{}", "");
	}
	assert_non_null(b->ready_head);
	assert_int_equal(b->ready_head->n, 75);
	assert_int_equal(b->open[EP_TRACK]->n, 1);
	assert_string_equal(b->open[EP_TRACK]->rows[0]->key.text.ptr, "k75");
	braze_build_body(b, b->ready_head);
	assert_int_equal(b->ready_head->body.len, strlen(b->ready_head->body.buf));
	assert_non_null(strstr(b->ready_head->body.buf, "{\"external_id\":\"k74\",\"age\":19,"));
	assert_int_equal(b->ready_head->body.buf[b->ready_head->body.len - 1], '}');
	braze_free(b);

	/* enrich: the object goes to /users/export/ids first, and to track with the guard */
	b = braze_new(true);
	push(b, "e1", "{}", "");
	struct batch *ids = b->open[EP_EXPORT_IDS];
	assert_non_null(ids);
	braze_build_body(b, ids);
	assert_string_equal(ids->body.buf, "{\"external_ids\":[\"e1\"],\"fields_to_export\":[\"external_id\"]}");
	struct batch *track = braze_batch_new(EP_TRACK);
	braze_batch_add(track, ids->rows[0]);
	ids->n = 0;
	braze_build_body(b, track);
	assert_string_equal(track->body.buf,
			    "{\"attributes\":[{\"external_id\":\"e1\",\"age\":19,\"na\\\"me\":\"A\\\"n\","
			    "\"groups\":{\"add\":[\"VIP\"]},\"_update_existing_only\":true}]}");
	braze_batch_free(track, true);
	braze_free(b);
}

/* Group changes: `groups` add and remove (a comma between), subscription groups apart. */
static void test_group_ops_object(void **s)
{
	struct braze *b = braze_new(false);
	static const char *const added[] = { "A", "11111111-2222-3333-4444-555555555555" };
	static const char *const removed[] = { "B", "C\"" };
	struct rkey k = { .is_int = true, .i = 7, .text = SLICE_LIT("7") };
	struct dest_change c = { .op = DEST_UPSERT, .key = &k, .groups_added = added, .n_added = 2,
				 .groups_removed = removed, .n_removed = 2, .in_scope = true };
	braze_route_change(b, &c);
	struct row *r = b->open[EP_TRACK]->rows[0];
	assert_string_equal(r->object, "{\"external_id\":\"7\",\"groups\":{\"add\":[\"A\"],\"remove\":[\"B\",\"C\\\"\"]},"
				       "\"subscription_groups\":[{\"subscription_group_id\":"
				       "\"11111111-2222-3333-4444-555555555555\",\"subscription_state\":\"subscribed\"}]}");
	assert_int_equal(r->data_points, 3);
	/* only removals */
	c.n_added = 0;
	braze_route_change(b, &c);
	assert_string_equal(b->open[EP_TRACK]->rows[1]->object,
			    "{\"external_id\":\"7\",\"groups\":{\"remove\":[\"B\",\"C\\\"\"]}}");
	braze_free(b);
}

/*
 * A change whose fields carry the engine's name lengths and JSON keys (`,"name":`)
 * gives the same track object and data points as one that carries the names only.
 */
static void test_field_keys_given(void **s)
{
	struct braze *b = braze_new(false);
	static const struct dest_field plain[] = { { .name = "age", .json = "19", .json_len = 2 },
						   { .name = "na\"me", .json = "\"A\\\"n\"" },
						   { .name = "country", .json = "\"DE\"", .json_len = 4 } };
	static const struct dest_field keyed[] = {
		{ "age", "19", 2, 3, ",\"age\":", 7 },
		{ "na\"me", "\"A\\\"n\"", 0, 5, ",\"na\\\"me\":", 10 },
		{ "country", "\"DE\"", 4, 7, ",\"country\":", 11 },
	};
	static const char *const added[] = { "VIP" };
	struct rkey k = { .is_int = true, .i = 9, .text = SLICE_LIT("9") };
	struct dest_change c = { .op = DEST_UPSERT, .key = &k, .create = true, .fields = plain, .n_fields = 3,
				 .groups_added = added, .n_added = 1, .in_scope = true };
	braze_route_change(b, &c);
	c.fields = keyed;
	braze_route_change(b, &c);
	struct row *r0 = b->open[EP_TRACK]->rows[0], *r1 = b->open[EP_TRACK]->rows[1];
	assert_string_equal(r0->object, "{\"external_id\":\"9\",\"age\":19,\"na\\\"me\":\"A\\\"n\",\"country\":\"DE\","
					"\"groups\":{\"add\":[\"VIP\"]}}");
	assert_string_equal(r1->object, r0->object);
	assert_int_equal(r0->object_len, r1->object_len);
	assert_int_equal(r0->data_points, 3); /* country is free */
	assert_int_equal(r1->data_points, r0->data_points);
	braze_free(b);
}

/*
 * Ready batches on an endpoint whose budget says wait: the pump looks again when the
 * budget has room (or at its cap), however many batches wait; one waiting batch behind
 * another once made that 1 ms, so a spent window woke the run every millisecond until
 * its end. A batch whose retry time comes first still wakes it then.
 */
static void test_send_ready_waits_for_budget(void **s)
{
	struct braze *b = braze_new(false);
	struct ratelimit rl[EP__COUNT];
	for (int i = 0; i < EP__COUNT; i++)
		ratelimit_init(&rl[i], 3000, 3000, 0.95);
	b->rl = rl;
	window_init(&b->win, NULL);
	int64_t now = 1000000;
	ratelimit_pause(&rl[EP_TRACK], now + 500); /* as a spent window: 500 ms to its end */
	for (int k = 0; k < 3; k++) {
		struct batch *bt = braze_batch_new(EP_TRACK);
		braze_ready_push(b, bt, false);
	}
	assert_int_equal(braze_send_ready(b, now, 100), now + 100);
	assert_int_equal(braze_send_ready(b, now, 1000), now + 500);
	assert_int_equal(b->n_ready, 3);
	assert_int_equal(b->inflight, 0);
	/* a retry due sooner, behind them, is when to look again */
	struct batch *retry = braze_batch_new(EP_TRACK);
	retry->not_before = now + 40;
	braze_ready_push(b, retry, false);
	assert_int_equal(braze_send_ready(b, now, 1000), now + 40);
	/* a full window sends nothing and waits for an answer: the cap */
	b->inflight = (size_t)window_size(&b->win);
	assert_int_equal(braze_send_ready(b, now, 1000), now + 1000);
	assert_int_equal(b->n_ready, 4);
	b->inflight = 0;
	braze_free(b);
}

/*
 * A worker's lease, less a margin (dest_opts.send_until), has passed: nothing is sent,
 * however much budget and window there is, and the pump looks again soon; a paused
 * worker waking past its lease must not send before its keeper hears the item is lost.
 */
static void test_send_ready_keeps_to_the_lease(void **s)
{
	struct braze *b = braze_new(false);
	struct ratelimit rl[EP__COUNT];
	_Atomic int64_t until = 0;
	for (int i = 0; i < EP__COUNT; i++)
		ratelimit_init(&rl[i], 3000, 3000, 0.95);
	b->rl = rl;
	window_init(&b->win, NULL);
	b->opts.send_until = &until;
	int64_t now = 1000000;
	atomic_store(&until, now - 1);
	for (int k = 0; k < 2; k++)
		braze_ready_push(b, braze_batch_new(EP_TRACK), false);
	assert_int_equal(braze_send_ready(b, now, 1000), now + 50);
	assert_int_equal(b->n_ready, 2);
	assert_int_equal(b->inflight, 0);
	/* a shorter wait asked for is kept */
	assert_int_equal(braze_send_ready(b, now, 10), now + 10);
	assert_int_equal(b->n_ready, 2);
	braze_free(b);
}

/* The sink of test_rows_reused: the outcomes' payloads and keys as they were delivered. */
static enum jerr keep_outcomes(void *ctx, const struct dest_outcome *o, size_t n, struct jerror *err)
{
	struct strbuf *seen = ctx;
	for (size_t i = 0; i < n; i++)
		strbuf_addf(seen, "%.*s=%.*s;", (int)o[i].key.text.len, o[i].key.text.ptr, (int)o[i].new_payload.len,
			    o[i].new_payload.ptr);
	return JERR_OK;
}

/*
 * Rows of a delivered batch are kept and reused by the next rows (braze_row_alloc): a
 * reused row carries the new change's parts only (no subscription list, no payload or
 * changed fields left from the row before), and one too small for the next change is
 * replaced by a larger one. The outcomes delivered before the reuse saw their own rows.
 */
static void test_rows_reused(void **s)
{
	struct braze *b = braze_new(false);
	struct strbuf seen = STRBUF_INIT;
	b->sink = (struct dest_sink){ .outcomes = keep_outcomes, .ctx = &seen };
	push(b, "a", "{\"p\":1}", "[\"age\"]");
	push(b, "b", "{\"p\":2}", "");
	struct batch *bt = b->open[EP_TRACK];
	b->open[EP_TRACK] = NULL;
	struct row *rb = bt->rows[1];
	enum dest_result ok[] = { DEST_OK, DEST_OK };
	/* what a sent batch carries: its body, attempts, a wait, a place in the queue */
	braze_build_body(b, bt);
	bt->attempts = 3;
	bt->throttles = 2;
	bt->not_before = 99;
	bt->first_failure = 5;
	bt->next = bt;
	braze_deliver(b, bt, ok, NULL);
	assert_string_equal(seen.buf, "a={\"p\":1};b={\"p\":2};");
	assert_int_equal(b->n_pool, 2);
	assert_ptr_equal(b->spare, bt);

	/* the last row kept is the first reused: small enough, so the same memory */
	push(b, "c", "", "");
	struct row *rc = b->open[EP_TRACK]->rows[0];
	assert_ptr_equal(rc, rb);
	assert_string_equal(rc->key.text.ptr, "c");
	assert_null(rc->payload);
	assert_int_equal(rc->payload_len, 0);
	assert_null(rc->changed);
	assert_int_equal(rc->changed_len, 0);
	assert_null(rc->subs);
	assert_int_equal(rc->n_subs, 0);
	assert_string_equal(rc->object,
			    "{\"external_id\":\"c\",\"age\":19,\"na\\\"me\":\"A\\\"n\",\"groups\":{\"add\":[\"VIP\"]}}");
	/* the delivered batch is the next one, as new: one row, nothing left of its last send */
	struct batch *again = b->open[EP_TRACK];
	assert_ptr_equal(again, bt);
	assert_null(b->spare);
	assert_int_equal(again->n, 1);
	assert_int_equal(again->ep, EP_TRACK);
	assert_int_equal(again->attempts, 0);
	assert_int_equal(again->throttles, 0);
	assert_int_equal(again->not_before, 0);
	assert_int_equal(again->first_failure, 0);
	assert_null(again->next);
	assert_int_equal(again->body.len, 0);
	braze_build_body(b, again);
	assert_string_equal(again->body.buf, "{\"attributes\":[{\"external_id\":\"c\",\"age\":19,\"na\\\"me\":"
					     "\"A\\\"n\",\"groups\":{\"add\":[\"VIP\"]}}]}");
	/* a change larger than the kept row: a new, larger row, whole */
	char big[600];
	memset(big, 'x', sizeof(big) - 1);
	big[0] = '"';
	big[sizeof(big) - 2] = '"';
	big[sizeof(big) - 1] = '\0';
	push(b, "d", big, "");
	struct row *rd = b->open[EP_TRACK]->rows[1];
	assert_true(rd->cap >= strlen(big) + 4);
	assert_string_equal(rd->payload, big);
	assert_int_equal(rd->payload_len, strlen(big));
	assert_int_equal(b->n_pool, 0);
	strbuf_release(&seen);
	braze_free(b);
}

/* The sink of test_journal_failure_keeps_answers: answers kept, a journal that fails. */
struct failing_journal {
	struct strbuf seen; /* the outcomes, as keep_outcomes writes them */
	int sendings;       /* calls of sending */
};

static enum jerr failing_outcomes(void *ctx, const struct dest_outcome *o, size_t n, struct jerror *err)
{
	return keep_outcomes(&((struct failing_journal *)ctx)->seen, o, n, err);
}

static enum jerr failing_sending(void *ctx, const struct rkey *const *keys, size_t n, struct jerror *err)
{
	(void)keys;
	(void)n;
	((struct failing_journal *)ctx)->sendings++;
	jerror_set(err, JERR_IO, "could not write the sent-keys journal \"x\": Operation not permitted");
	return JERR_IO;
}

/*
 * A request whose keys cannot go to the run's journal (state_journal_add: it can be
 * neither written nor removed) is not sent and the connector stops, but the answer
 * to a request already in flight is still delivered: Braze may have applied it, and
 * the store, which did not fail, must record it. It used to be dropped like the
 * answers after a failed commit; the run then ended "failed", not running, so no
 * abandon made the record pending: Braze kept a change the store did not know.
 */
static void test_journal_failure_keeps_answers(void **s)
{
	struct braze *b = braze_new(false);
	struct failing_journal fj = { STRBUF_INIT, 0 };
	struct ratelimit rl[EP__COUNT];
	enum dest_result ok = DEST_OK;
	for (int i = 0; i < EP__COUNT; i++)
		ratelimit_init(&rl[i], 3000, 3000, 0.95);
	b->rl = rl;
	window_init(&b->win, NULL);
	b->sink = (struct dest_sink){ .outcomes = failing_outcomes, .sending = failing_sending, .ctx = &fj };
	/* a: announced and sent before the journal failed, its answer still to come */
	push(b, "a", "{\"p\":1}", "[\"age\"]");
	struct batch *sent = b->open[EP_TRACK];
	b->open[EP_TRACK] = NULL;
	sent->announced = true;
	b->inflight = 1;
	/* b: its keys cannot be written, so it is not sent */
	push(b, "b", "{\"p\":2}", "[\"age\"]");
	braze_ready_push(b, b->open[EP_TRACK], false);
	b->open[EP_TRACK] = NULL;
	braze_send_ready(b, 1000000, 100);
	assert_int_equal(fj.sendings, 1);
	assert_int_equal(b->n_ready, 1);
	assert_int_equal(b->inflight, 1);
	assert_int_equal(b->fatal, JERR_IO);
	/* a's answer comes: to the store */
	b->inflight = 0;
	braze_deliver(b, sent, &ok, NULL);
	assert_string_equal(fj.seen.buf, "a={\"p\":1};");
	jerror_release(&b->fatal_err);
	strbuf_release(&fj.seen);
	braze_free(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_field_billable),
		cmocka_unit_test(test_rows_and_track_body),
		cmocka_unit_test(test_full_batch_and_enrich_body),
		cmocka_unit_test(test_group_ops_object),
		cmocka_unit_test(test_rows_reused),
		cmocka_unit_test(test_field_keys_given),
		cmocka_unit_test(test_send_ready_waits_for_budget),
		cmocka_unit_test(test_send_ready_keeps_to_the_lease),
		cmocka_unit_test(test_journal_failure_keeps_answers),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
