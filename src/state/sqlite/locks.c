/*
 * locks.c: the destination locks of an SQLite state store: read, take, refresh and
 * release one destination's lock row. The protocol (who may take a lock, when it is
 * stale) is state.c's; these run inside its BEGIN IMMEDIATE transaction. Owns
 * nothing beyond the call. Called through the ops table (ops.c) by state.c.
 */
#include <unistd.h>

#include <sqlite3.h>

#include "state/sqlite/sqlite_internal.h"

/* ---- locks (inside a BEGIN IMMEDIATE transaction: nobody else writes meanwhile) ---- */

enum jerr sq_lock_get(struct state *st, const char *dest_id, struct state_lock_row *li,
		      struct jerror *err)
{
	const struct state_value v[] = { state_val_text(dest_id) };
	sqlite3_stmt *s;
	enum jerr ret = sq_read_row(sq_of(st), S_LOCK_GET, v, ARRAY_SIZE(v), false, &s, err,
				    "could not read the lock of destination \"%s\" in state store \"%s\"", dest_id,
				    st->path);
	if (ret)
		return ret;
	li->found = s != NULL;
	if (!s)
		return JERR_OK;
	strbuf_reset(&li->holder);
	strbuf_reset(&li->host);
	strbuf_addstr(&li->holder, (const char *)sqlite3_column_text(s, 0));
	strbuf_addstr(&li->host, (const char *)sqlite3_column_text(s, 1));
	li->pid = sqlite3_column_int64(s, 2);
	li->token = sqlite3_column_int64(s, 3);
	li->acquired_at = sqlite3_column_int64(s, 4);
	li->heartbeat_at = sqlite3_column_int64(s, 5);
	sq_stmt_done(s);
	return JERR_OK;
}

enum jerr sq_lock_put(struct state *st, const char *dest_id, const char *holder,
		      int64_t now, const struct state_lock_row *prev, bool *taken,
		      struct jerror *err)
{
	const struct state_value v[] = { state_val_text(dest_id), state_val_text(holder), state_val_text(st->host),
					 state_val_int((int64_t)getpid()), state_val_int(st->token), state_val_int(now) };
	enum jerr ret;

	(void)prev; /* the write lock of the transaction kept the row as it was read */
	*taken = false;
	ret = sq_write(sq_of(st), S_LOCK_SET, v, ARRAY_SIZE(v), NULL, err, "lock destination \"%s\"", dest_id);
	*taken = !ret;
	return ret;
}

enum jerr sq_lock_beat(struct state *st, const char *dest_id, int64_t now, bool *held,
		       struct jerror *err)
{
	const struct state_value v[] = { state_val_text(dest_id), state_val_int(st->token), state_val_int(now) };
	return sq_write(sq_of(st), S_LOCK_BEAT, v, ARRAY_SIZE(v), held, err, "refresh the lock of destination \"%s\"",
			dest_id);
}

enum jerr sq_lock_del(struct state *st, const char *dest_id, struct jerror *err)
{
	const struct state_value v[] = { state_val_text(dest_id), state_val_int(st->token) };
	return sq_write(sq_of(st), S_LOCK_DEL, v, ARRAY_SIZE(v), NULL, err, "release the lock of destination \"%s\"",
			dest_id);
}

