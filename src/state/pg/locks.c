/*
 * locks.c: the destination locks of a PostgreSQL state store (read FOR UPDATE, take
 * if still as read, heartbeat, release; the protocol is state.c's) and leadership
 * among processes sharing the store (a session advisory lock, pg_leader_try). Owns
 * nothing past a call; called through state_pg (ops.c).
 */
#include <unistd.h>

#include "state/pg/pg_internal.h"

enum jerr pg_lock_get(struct state *st, const char *dest_id, struct state_lock_row *li,
		      struct jerror *err)
{
	PGresult *res;
	enum jerr ret = pg_run_key(ps_of(st), S_LOCK_GET, dest_id, &res, err,
				   "could not read the lock of destination \"%s\" in state store \"%s\"", dest_id,
				   st->path);
	if (ret)
		return ret;
	li->found = res != NULL;
	if (li->found) {
		strbuf_reset(&li->holder);
		strbuf_reset(&li->host);
		strbuf_addstr(&li->holder, PQgetvalue(res, 0, 0));
		strbuf_addstr(&li->host, PQgetvalue(res, 0, 1));
		li->pid = get_int(res, 0, 2);
		li->token = get_int(res, 0, 3);
		li->acquired_at = get_int(res, 0, 4);
		li->heartbeat_at = get_int(res, 0, 5);
	}
	PQclear(res);
	return JERR_OK;
}

enum jerr pg_lock_put(struct state *st, const char *dest_id, const char *holder,
		      int64_t now, const struct state_lock_row *prev, bool *taken,
		      struct jerror *err)
{
	struct params p = { 0 };

	*taken = false;
	p_text(&p, dest_id);
	p_text(&p, holder);
	p_text(&p, st->host);
	p_int(&p, (int64_t)getpid());
	p_int(&p, st->token);
	p_int(&p, now);
	if (prev->found)
		p_int(&p, prev->token);
	return pg_run_changed(ps_of(st), prev->found ? S_LOCK_TAKE : S_LOCK_INSERT, &p, taken, err,
			      "could not lock destination \"%s\" in state store \"%s\"", dest_id, st->path);
}

enum jerr pg_lock_beat(struct state *st, const char *dest_id, int64_t now, bool *held,
		       struct jerror *err)
{
	struct params p = { 0 };
	p_text(&p, dest_id);
	p_int(&p, st->token);
	p_int(&p, now);
	return pg_run_changed(ps_of(st), S_LOCK_BEAT, &p, held, err,
			      "could not refresh the lock of destination \"%s\" in state store \"%s\"", dest_id,
			      st->path);
}

enum jerr pg_lock_del(struct state *st, const char *dest_id, struct jerror *err)
{
	struct params p = { 0 };
	p_text(&p, dest_id);
	p_int(&p, st->token);
	return pg_run_write(ps_of(st), S_LOCK_DEL, &p, NULL, err,
			    "could not release the lock of destination \"%s\" in state store \"%s\"",
			    dest_id, st->path);
}

enum jerr pg_leader_try(struct state *st, const char *name, bool *leader, struct jerror *err)
{
	struct pg_state *ps = ps_of(st);
	struct params p = { 0 };
	struct strbuf key = STRBUF_INIT;
	PGresult *res;
	enum jerr ret;

	if (ps->leader) {
		/* a session lock lasts as long as the session: is it still there? */
		ret = pg_run_write(ps, S_PING, &p, NULL, err, "lost the connection to state store \"%s\"",
				   st->path);
		if (ret)
			ps->leader = false;
		*leader = ps->leader;
		return ret;
	}
	strbuf_addf(&key, "%s/%s", ps->schema, name);
	ret = pg_run_key(ps, S_LEADER_TRY, key.buf, &res, err, "could not try to become the %s of state store \"%s\"",
			 name, st->path);
	strbuf_release(&key);
	if (ret)
		return ret;
	ps->leader = res && get_bool(res, 0, 0);
	*leader = ps->leader;
	PQclear(res);
	return JERR_OK;
}
