/*
 * braze_request.c: what the Braze connector sends: a row (struct row, one allocation)
 * made from the engine's dest_change, its /users/track attribute object (the
 * mapped fields, the `groups` attribute, subscription groups), the endpoint it is
 * queued on, and the JSON body of each request from its batch's rows. Called by
 * braze.c (braze_internal.h).
 */
#include "dest/braze_internal.h"

#include <stdlib.h>
#include <string.h>

#include "base/xalloc.h"

/*
 * The distinct (group, state) pairs of the subscription changes of bt's rows and then
 * extra (may be NULL), in order of first appearance: *seen (owned; its group_id
 * strings borrowed from the rows). Returns how many.
 */
static size_t sub_distinct(const struct batch *bt, const struct row *extra, struct sub_change **seen_out)
{
	size_t n = 0;
	struct sub_change *seen = NULL;
	size_t alloc = 0;
	for (size_t i = 0; i <= bt->n; i++) {
		const struct row *r = i < bt->n ? bt->rows[i] : extra;
		if (!r)
			continue;
		for (size_t j = 0; j < r->n_subs; j++) {
			bool dup = false;
			for (size_t k = 0; k < n && !dup; k++)
				dup = seen[k].subscribed == r->subs[j].subscribed &&
				      !strcmp(seen[k].group_id, r->subs[j].group_id);
			if (!dup) {
				ALLOC_GROW(seen, n + 1, alloc);
				seen[n++] = r->subs[j];
			}
		}
	}
	*seen_out = seen;
	return n;
}

size_t braze_sub_entries(const struct batch *bt, const struct row *extra)
{
	/* distinct (group, state) pairs in the batch plus the extra row */
	struct sub_change *seen;
	size_t n = sub_distinct(bt, extra, &seen);
	free(seen);
	return n;
}

/* ---- request bodies ---- */

void braze_build_body(struct braze *b, struct batch *bt)
{
	struct strbuf *sb = &bt->body;
	strbuf_reset(sb);
	switch (bt->ep) {
	case EP_TRACK: {
		/* one allocation for the whole body: its size is known */
		size_t need = sizeof("{\"attributes\":[]}") + bt->n;
		for (size_t i = 0; i < bt->n; i++)
			need += bt->rows[i]->object_len + sizeof(",\"_update_existing_only\":true}");
		strbuf_grow(sb, need);
		strbuf_addstr(sb, "{\"attributes\":[");
		for (size_t i = 0; i < bt->n; i++) {
			const char *obj = bt->rows[i]->object;
			size_t len = bt->rows[i]->object_len;
			if (i)
				strbuf_addch(sb, ',');
			if (b->enrich || bt->rows[i]->update_only) {
				/* every enrich object carries the guard, and a change of a user Braze may not have */
				strbuf_add(sb, obj, len - 1);
				strbuf_addstr(sb, ",\"_update_existing_only\":true}");
			} else {
				strbuf_add(sb, obj, len);
			}
		}
		strbuf_addstr(sb, "]}");
		break;
	}
	case EP_DELETE:
	case EP_EXPORT_IDS:
		strbuf_addstr(sb, "{\"external_ids\":[");
		for (size_t i = 0; i < bt->n; i++) {
			if (i)
				strbuf_addch(sb, ',');
			strbuf_add_json_string(sb, bt->rows[i]->key.text.ptr, bt->rows[i]->key.text.len);
		}
		strbuf_addstr(sb, "]");
		if (bt->ep == EP_EXPORT_IDS)
			strbuf_addstr(sb, ",\"fields_to_export\":[\"external_id\"]");
		strbuf_addstr(sb, "}");
		break;
	case EP_SUBSCRIPTION: {
		/* one entry per (group, state) with the ids that change to it */
		struct sub_change *seen;
		size_t n = sub_distinct(bt, NULL, &seen);
		strbuf_addstr(sb, "{\"subscription_groups\":[");
		for (size_t k = 0; k < n; k++) {
			if (k)
				strbuf_addch(sb, ',');
			strbuf_addstr(sb, "{\"subscription_group_id\":");
			strbuf_add_json_string(sb, seen[k].group_id, strlen(seen[k].group_id));
			strbuf_addf(sb, ",\"subscription_state\":\"%s\",\"external_ids\":[",
				    seen[k].subscribed ? "subscribed" : "unsubscribed");
			bool first = true;
			for (size_t i = 0; i < bt->n; i++)
				for (size_t j = 0; j < bt->rows[i]->n_subs; j++) {
					const struct sub_change *s = &bt->rows[i]->subs[j];
					if (s->subscribed != seen[k].subscribed || strcmp(s->group_id, seen[k].group_id))
						continue;
					if (!first)
						strbuf_addch(sb, ',');
					first = false;
					strbuf_add_json_string(sb, bt->rows[i]->key.text.ptr, bt->rows[i]->key.text.len);
				}
			strbuf_addstr(sb, "]}");
		}
		strbuf_addstr(sb, "]}");
		free(seen);
		break;
	}
	default:
		break;
	}
}

/* ---- a row from the engine's change ---- */

/*
 * Append `"op":["a","b"]` with the names of list that are `groups` attribute values
 * (not subscription groups), preceded by a comma if *first is false; one data point
 * each. Nothing is written when there are none.
 */
static void add_group_op(struct strbuf *sb, const char *op, const char *const *list, size_t n, bool *first,
			 size_t *dp)
{
	size_t written = 0;
	for (size_t i = 0; i < n; i++) {
		if (dest_is_subscription_group(list[i]))
			continue;
		if (!written++) {
			if (!*first)
				strbuf_addch(sb, ',');
			strbuf_addch(sb, '"');
			strbuf_addstr(sb, op);
			strbuf_addstr(sb, "\":[");
		} else
			strbuf_addch(sb, ',');
		strbuf_add_json_string(sb, list[i], strlen(list[i]));
		(*dp)++;
	}
	if (written) {
		strbuf_addch(sb, ']');
		*first = false;
	}
}

/* The `groups` custom attribute changes, as Braze's array add/remove operations. */
static void add_groups_attr(struct strbuf *sb, const struct dest_change *c, size_t *dp)
{
	size_t mark = sb->len;
	bool first = true;
	strbuf_addstr(sb, ",\"groups\":{");
	add_group_op(sb, "add", c->groups_added, c->n_added, &first, dp);
	add_group_op(sb, "remove", c->groups_removed, c->n_removed, &first, dp);
	if (first)
		strbuf_setlen(sb, mark); /* no attribute values among the changes */
	else
		strbuf_addch(sb, '}');
}

static size_t add_subscriptions(struct strbuf *sb, const struct dest_change *c)
{
	size_t n = 0;
	for (int pass = 0; pass < 2; pass++) {
		const char *const *list = pass ? c->groups_removed : c->groups_added;
		size_t cnt = pass ? c->n_removed : c->n_added;
		for (size_t i = 0; i < cnt; i++) {
			if (!dest_is_subscription_group(list[i]))
				continue;
			strbuf_addstr(sb, n ? ",{\"subscription_group_id\":" : ",\"subscription_groups\":[{\"subscription_group_id\":");
			strbuf_add_json_string(sb, list[i], strlen(list[i]));
			strbuf_addf(sb, ",\"subscription_state\":\"%s\"}", pass ? "unsubscribed" : "subscribed");
			n++;
		}
	}
	if (n)
		strbuf_addch(sb, ']');
	return n;
}

/* Copy n bytes of p (may be NULL when n is 0) to *at, NUL-terminated; where it went. */
static char *row_put(char **at, const char *p, size_t n)
{
	char *dst = *at;
	if (n)
		memcpy(dst, p, n);
	dst[n] = '\0';
	*at = dst + n + 1;
	return dst;
}

/*
 * A row (owned by the caller, freed with one free() but for subs) copied from c, with
 * obj (may be NULL: no track object) as its object: one allocation for every part,
 * taken from b's pool of delivered rows when one is large enough.
 */
static struct row *row_new(struct braze *b, const struct dest_change *c, const struct strbuf *obj)
{
	size_t klen = c->key->text.len, plen = c->new_payload.len, flen = c->fail_payload.len;
	/* a create's fail payload is its payload (run_items.c): one copy serves both */
	bool same = flen && c->fail_payload.ptr == c->new_payload.ptr && flen == plen;
	size_t chlen = c->changed.len, olen = obj ? obj->len : 0;
	struct row *r = braze_row_alloc(b, klen + plen + (same ? 0 : flen) + chlen + olen + 5);
	char *at = r->data;
	size_t cap = r->cap;

	/* every member set (a memset of the struct cost a `rep stos` per row) */
	r->cap = cap;
	r->op = c->op;
	r->key = *c->key;
	r->key.text = (struct slice){ row_put(&at, c->key->text.ptr, klen), klen };
	r->create = c->create;
	r->subs = NULL;
	r->n_subs = 0;
	r->payload = plen ? row_put(&at, c->new_payload.ptr, plen) : NULL;
	r->payload_len = plen;
	r->fail_payload = same ? r->payload : flen ? row_put(&at, c->fail_payload.ptr, flen) : NULL;
	r->fail_len = flen;
	if (c->new_hash)
		memcpy(r->hash, c->new_hash, STATE_HASH_LEN);
	else
		memset(r->hash, 0, STATE_HASH_LEN);
	r->in_scope = c->in_scope;
	r->update_only = c->update_only;
	r->attempts = c->attempts;
	r->data_points = 0;
	r->changed = chlen ? row_put(&at, c->changed.ptr, chlen) : NULL;
	r->changed_len = chlen;
	r->object = obj ? row_put(&at, obj->buf, olen) : NULL;
	r->object_len = obj ? olen : 0;
	return r;
}

/*
 * email_subscribe or push_subscribe set to null: not sent. Braze takes only
 * "opted_in", "subscribed" and "unsubscribed"; a null either unsets the state (back
 * to the default "subscribed", re-subscribing a user who opted out) or is rejected
 * with the whole object. A warehouse without a value leaves Braze's state alone.
 */
static bool null_subscribe_state(const struct dest_field *f, size_t name_len)
{
	const char *json = f->json;
	size_t json_len = f->json_len ? f->json_len : strlen(json);
	if (json_len != 4 || memcmp(json, "null", 4))
		return false;
	return (name_len == 15 && !memcmp(f->name, "email_subscribe", 15)) ||
	       (name_len == 14 && !memcmp(f->name, "push_subscribe", 14));
}

void braze_route_change(struct braze *b, const struct dest_change *c)
{
	if (c->op == DEST_DELETE) {
		braze_enqueue(b, EP_DELETE, row_new(b, c, NULL));
		return;
	}
	struct strbuf *sb = &b->scratch;
	size_t dp = 0, n_fields = 0;
	strbuf_reset(sb);
	strbuf_addstr(sb, "{\"external_id\":");
	strbuf_add_json_string(sb, c->key->text.ptr, c->key->text.len);
	for (size_t i = 0; i < c->n_fields; i++) {
		const struct dest_field *f = &c->fields[i];
		size_t name_len = f->name_len ? f->name_len : strlen(f->name);
		if (null_subscribe_state(f, name_len))
			continue;
		n_fields++;
		if (f->key) { /* the engine's `,"name":` */
			strbuf_add(sb, f->key, f->key_len);
		} else {
			strbuf_addch(sb, ',');
			strbuf_add_json_string(sb, f->name, name_len);
			strbuf_addch(sb, ':');
		}
		strbuf_add(sb, f->json, f->json_len ? f->json_len : strlen(f->json));
		dp += braze_field_billable_len(f->name, name_len);
	}
	size_t attr_len = sb->len;
	add_groups_attr(sb, c, &dp);
	bool groups_attr = sb->len != attr_len;
	size_t n_subs = add_subscriptions(sb, c);
	strbuf_addch(sb, '}');

	struct row *r;
	if (c->op == DEST_ENRICH_NEW) {
		r = row_new(b, c, sb);
		r->data_points = dp;
		braze_enqueue(b, EP_EXPORT_IDS, r);
	} else if (!c->create && !n_fields && !groups_attr && n_subs && !b->enrich && !c->update_only &&
		   !c->resend) {
		/* only subscription changes: the subscription endpoint, no data points (a user
		 * Braze may not have: the track object's guard, as whether this endpoint makes
		 * unknown users is not documented) */
		r = row_new(b, c, NULL);
		r->data_points = dp;
		r->subs = xcalloc(n_subs, sizeof(*r->subs));
		for (int pass = 0; pass < 2; pass++) {
			const char *const *list = pass ? c->groups_removed : c->groups_added;
			size_t cnt = pass ? c->n_removed : c->n_added;
			for (size_t i = 0; i < cnt; i++)
				if (dest_is_subscription_group(list[i]))
					r->subs[r->n_subs++] = (struct sub_change){ xstrdup(list[i]), !pass };
		}
		braze_enqueue(b, EP_SUBSCRIPTION, r);
	} else if (!c->create && !n_fields && !groups_attr && !n_subs && !c->resend) {
		/*
		 * nothing for Braze (e.g. released with no mapped groups): confirm at once. Not
		 * a pending record in scope (resend): its last request may have been a delete
		 * Braze applied, and {"external_id"} alone makes the user again.
		 */
		struct batch *bt = braze_batch_new(EP_TRACK);
		enum dest_result ok = DEST_OK;
		r = row_new(b, c, NULL);
		r->data_points = dp;
		braze_batch_add(bt, r);
		braze_deliver(b, bt, &ok, NULL);
	} else {
		r = row_new(b, c, sb);
		r->data_points = dp;
		braze_enqueue(b, EP_TRACK, r);
	}
}
