/*
 * conn.c: opening and closing a PostgreSQL state store: connecting (with retries for a
 * server that is not up yet), the session settings, and pg_open's choice between
 * reading what is there and migrating it (migrate.c); pg_close, and the ops that
 * PostgreSQL does not have (open_empty: an SQLite one; limit_size). Owns the struct
 * pg_state it allocates in pg_open, freed by pg_close. Called through state_pg (ops.c).
 */
#include <errno.h>
#include <time.h>

#include "base/log.h"
#include "base/xalloc.h"
#include "state/pg/pg_internal.h"

#define PG_CONNECT_TRIES 3
#define PG_RETRY_BASE_MS 250

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

static const char *or_default(const char *s, const char *dflt)
{
	return s && *s ? s : dflt;
}

/* Connect (retrying a server that is not up yet) and name the store for messages. */
static enum jerr connect_server(struct pg_state *ps, const char *conninfo, struct jerror *err)
{
	/* defaults before the URL (it may override them), client_encoding after (it may not) */
	const char *keys[] = { "connect_timeout", "application_name", "keepalives_idle",
			       "keepalives_interval", "keepalives_count", "dbname", "client_encoding",
			       NULL };
	const char *vals[] = { "10", "joey", "60", "10", "6", conninfo, "UTF8", NULL };
	long delay = PG_RETRY_BASE_MS;
	struct strbuf name = STRBUF_INIT;

	for (int tries = 1;; tries++) {
		const char *msg;
		ps->pg = PQconnectdbParams(keys, vals, 1);
		if (!ps->pg) {
			jerror_set(err, JERR_STATE, "could not connect to the PostgreSQL state store: "
						    "out of memory");
			return JERR_STATE;
		}
		free(ps->host);
		free(ps->port);
		free(ps->database);
		ps->host = xstrdup(or_default(PQhost(ps->pg), "localhost"));
		ps->port = xstrdup(or_default(PQport(ps->pg), "5432"));
		ps->database = xstrdup(or_default(PQdb(ps->pg), "?"));
		strbuf_reset(&name);
		pg_display_name(&name, PQuser(ps->pg), PQhost(ps->pg), PQport(ps->pg), PQdb(ps->pg),
				ps->schema);
		free(ps->base.path);
		ps->base.path = strbuf_detach(&name, NULL);
		if (PQstatus(ps->pg) == CONNECTION_OK)
			break;
		msg = PQerrorMessage(ps->pg);
		if (tries >= PG_CONNECT_TRIES || pgmsg_permanent(msg)) {
			struct strbuf d = STRBUF_INIT;
			jerror_set(err, JERR_STATE,
				   "could not connect to the PostgreSQL state store at %s:%s, "
				   "database \"%s\"",
				   ps->host, ps->port, ps->database);
			strbuf_addstr(&d, "PostgreSQL: ");
			pgmsg_add(&d, msg);
			jerror_detail(err, "%s", d.buf);
			strbuf_release(&d);
			if (pgmsg_permanent(msg))
				jerror_hint(err, "check the user, database and password of the state "
						 "store URL (the password comes from the URL or "
						 "PGPASSWORD)");
			else
				jerror_hint(err, "gave up after %d tries; check that the server is "
						 "running and reachable at that host and port",
					    tries);
			return JERR_STATE;
		}
		log_warn("state store: cannot connect to PostgreSQL at %s:%s (try %d of %d), "
			 "retrying in %ld ms",
			 ps->host, ps->port, tries, PG_CONNECT_TRIES, delay);
		PQfinish(ps->pg);
		ps->pg = NULL;
		sleep_ms(delay);
		delay *= 2;
	}
	strbuf_release(&name);
	return JERR_OK;
}

/* Session settings: our schema, waits bounded like SQLite's busy timeout, hex BYTEA. */
static enum jerr configure(struct pg_state *ps, bool readonly, struct jerror *err)
{
	char timeout[32];
	struct params p = { 0 };
	const char *enc = PQparameterStatus(ps->pg, "server_encoding");

	if (enc && strcmp(enc, "UTF8") != 0 && strcmp(enc, "SQL_ASCII") != 0) {
		jerror_set(err, JERR_STATE, "PostgreSQL database \"%s\" at %s:%s cannot hold a "
					    "joey state store: its encoding is %s",
			   ps->database, ps->host, ps->port, enc);
		jerror_hint(err, "use a database created with ENCODING 'UTF8'");
		return JERR_STATE;
	}
	snprintf(timeout, sizeof(timeout), "%dms", STATE_BUSY_TIMEOUT_MS);
	p_text(&p, ps->schema);
	p_text(&p, timeout);
	p_text(&p, readonly ? "on" : "off");
	return pg_sql_run(ps,
			  "SELECT pg_catalog.set_config('search_path', pg_catalog.quote_ident($1), false),"
			  " pg_catalog.set_config('lock_timeout', $2, false),"
			  " pg_catalog.set_config('default_transaction_read_only', $3, false),"
			  " pg_catalog.set_config('bytea_output', 'hex', false),"
			  " pg_catalog.set_config('client_min_messages', 'warning', false)",
			  &p, NULL, err, "could not configure the connection to state store \"%s\"",
			  ps->base.path);
}

void pg_close(struct state *st)
{
	struct pg_state *ps = ps_of(st);
	if (ps->pg) {
		if (PQtransactionStatus(ps->pg) == PQTRANS_INTRANS ||
		    PQtransactionStatus(ps->pg) == PQTRANS_INERROR) {
			PGresult *r = PQexec(ps->pg, "ROLLBACK");
			PQclear(r);
		}
		PQfinish(ps->pg);
	}
	free(ps->schema);
	free(ps->host);
	free(ps->port);
	free(ps->database);
	strbuf_release(&ps->tmp);
	free(ps->pend);
	for (int c = 0; c < PG_PUT_COLUMNS; c++)
		strbuf_release(&ps->put_col[c]);
	state_base_release(&ps->base);
	free(ps);
}

enum jerr pg_open(const char *path, enum state_open_mode mode, struct state **out,
		  struct jerror *err)
{
	struct pg_state *ps = xcalloc(1, sizeof(*ps));
	struct strbuf conninfo = STRBUF_INIT, schema = STRBUF_INIT, name = STRBUF_INIT;
	bool create = mode == STATE_OPEN_CREATE, fresh = false, missing = false;
	int64_t version = 0;
	enum jerr ret;

	*out = NULL;
	pg_display(path, &name);
	state_base_init(&ps->base, &state_pg, name.buf);
	strbuf_release(&name);
	strbuf_init(&ps->tmp, 0);
	for (int c = 0; c < PG_PUT_COLUMNS; c++)
		strbuf_init(&ps->put_col[c], 0);
	if (!state_pg_split_url(path, &conninfo, &schema)) {
		ret = jerror_set(err, JERR_STATE, "state store \"%s\": schema \"%s\" is not a valid "
						  "name",
				 ps->base.path, schema.buf);
		jerror_hint(err, "use ?schema=NAME with letters, digits and underscores (at most "
				 "63 characters)");
		goto done;
	}
	ps->schema = strbuf_detach(&schema, NULL);
	if ((ret = pg_check_url(ps, path, conninfo.buf, err)))
		goto done;
	if ((ret = connect_server(ps, conninfo.buf, err)) || (ret = configure(ps, !create, err)) ||
	    (ret = pg_identify(ps, &version, &fresh, &missing, err)))
		goto done;
	if (!create) {
		ps->base.readonly = true;
		if (fresh) {
			if (mode == STATE_OPEN_READONLY_OR_EMPTY) {
				struct state *empty = NULL;
				ret = state_sqlite.open_empty(ps->base.path, &empty, err);
				if (!ret) {
					pg_close(&ps->base);
					ps = NULL;
					*out = empty;
				}
				goto done;
			}
			ret = jerror_set(err, JERR_STATE, missing ? "state store \"%s\" does not exist"
								  : "state store \"%s\" is empty",
					 ps->base.path);
			jerror_hint(err, "run 'joey run' (or 'joey state migrate') once, or pass --state");
			goto done;
		}
		/* an older schema is read as it is (state_mark_get copes with no marks) */
		ps->base.version = (int)version;
		goto done;
	}
	if ((ret = pg_migrate(ps, version, err)))
		goto done;
	ps->base.version = STATE_SCHEMA_VERSION;
done:
	strbuf_release(&conninfo);
	strbuf_release(&schema);
	if (ret) {
		if (ps)
			pg_close(&ps->base);
		*out = NULL;
		return ret;
	}
	if (ps)
		*out = &ps->base;
	return JERR_OK;
}

enum jerr pg_open_empty(const char *name, struct state **out, struct jerror *err)
{
	return state_sqlite.open_empty(name, out, err);
}

enum jerr pg_limit_size(struct state *st, uint64_t max_bytes, struct jerror *err)
{
	(void)max_bytes;
	jerror_set(err, JERR_STATE, "limiting the size of state store \"%s\" is not supported on "
				    "PostgreSQL",
		   st->path);
	jerror_hint(err, "limit the space of the database on the server, or use an SQLite state "
			 "store");
	return JERR_STATE;
}
