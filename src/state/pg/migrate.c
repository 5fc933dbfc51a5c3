/*
 * migrate.c: which schema version a PostgreSQL state store has (pg_identify: is the
 * schema joey's, fresh, missing, too new?) and bringing it to STATE_SCHEMA_VERSION
 * with the steps of schema.c (pg_migrate), one transaction and advisory lock per
 * step. Owns nothing; called by pg_open (conn.c).
 */
#include "state/pg/pg_internal.h"
#include "state/schema.h"

/*
 * Is the schema a joey state store, and of which version? *fresh: the schema is
 * missing (*missing) or holds nothing.
 */
enum jerr pg_identify(struct pg_state *ps, int64_t *version, bool *fresh, bool *missing,
		      struct jerror *err)
{
	const char *vals[1] = { ps->schema };
	int64_t n_schema, n_rel, app_id = 0;
	bool has_meta, has_version = false;
	PGresult *r;

	*version = 0;
	*fresh = *missing = false;
	r = PQexecParams(ps->pg,
			 "SELECT (SELECT count(*) FROM pg_catalog.pg_namespace WHERE nspname = $1),"
			 " (SELECT count(*) FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n"
			 "   ON n.oid = c.relnamespace WHERE n.nspname = $1"
			 "   AND c.relkind IN ('r', 'p', 'v', 'm', 'f')),"
			 " pg_catalog.to_regclass(pg_catalog.quote_ident($1) || '.meta') IS NOT NULL",
			 1, NULL, vals, NULL, NULL, 0);
	if (!res_ok(r) || PQntuples(r) != 1) {
		enum jerr ret = pg_error(ps, r, err, "could not open state store \"%s\"", ps->base.path);
		PQclear(r);
		return ret;
	}
	n_schema = get_int(r, 0, 0);
	n_rel = get_int(r, 0, 1);
	has_meta = get_bool(r, 0, 2);
	PQclear(r);
	if (!n_schema || !n_rel) {
		*fresh = true;
		*missing = !n_schema;
		return JERR_OK;
	}
	if (has_meta) {
		enum jerr ret = pg_sql_run(ps, "SELECT key, value FROM meta"
					   " WHERE key IN ('application_id', 'schema_version')",
					   NULL, &r, err,
					   "could not read the schema version of state store \"%s\"",
					   ps->base.path);
		if (ret)
			return ret;
		for (int i = 0; i < PQntuples(r); i++) {
			const char *k = PQgetvalue(r, i, 0), *v = PQgetvalue(r, i, 1);
			char *end;
			int64_t x = strtoll(v, &end, 10);
			if (*end || end == v)
				x = -1;
			if (!strcmp(k, "application_id")) {
				app_id = x;
			} else {
				has_version = true;
				*version = x;
			}
		}
		PQclear(r);
	}
	if (app_id != STATE_APPLICATION_ID) {
		jerror_set(err, JERR_STATE, "\"%s\" is not a joey state store", ps->base.path);
		if (has_meta)
			jerror_detail(err, "schema \"%s\" of database \"%s\" has a table meta without "
					   "joey's application_id %d",
				      ps->schema, ps->database, STATE_APPLICATION_ID);
		else
			jerror_detail(err, "schema \"%s\" of database \"%s\" holds %" PRId64
					   " tables but no joey meta table",
				      ps->schema, ps->database, n_rel);
		jerror_hint(err, "pick another schema with ?schema=NAME in the state store URL, or "
				 "drop this one to start afresh");
		return JERR_STATE;
	}
	if (!has_version || *version < 1) {
		jerror_set(err, JERR_STATE, "state store \"%s\" has no valid schema version",
			   ps->base.path);
		jerror_detail(err, "table meta has no positive integer \"schema_version\"");
		jerror_hint(err, "restore it from a backup (joey state import), or drop the schema "
				 "to start afresh (the next run then re-sends every record)");
		return JERR_STATE;
	}
	return state_check_newer(ps->base.path, *version, "schema", err);
}

static const struct state_pg_step *step_from(int64_t v)
{
	for (size_t i = 0; i < state_pg_n_steps; i++)
		if (state_pg_steps[i].from == v)
			return &state_pg_steps[i];
	return NULL;
}

/*
 * Bring the schema to STATE_SCHEMA_VERSION, one step per transaction. Each holds an
 * advisory lock on the schema's name and reads the version again, so a step another
 * process applied meanwhile is not applied twice.
 */
enum jerr pg_migrate(struct pg_state *ps, int64_t from, struct jerror *err)
{
	enum jerr ret = JERR_OK;
	int64_t v = from;
	struct strbuf sql = STRBUF_INIT;

	while (v < STATE_SCHEMA_VERSION) {
		const struct state_pg_step *step;
		struct params p = { 0 };
		char app[16], ver[16];
		bool fresh, missing;
		int64_t cur;
		char *quoted;

		if ((ret = pg_exec_sql(ps, "BEGIN", err, "upgrade")))
			break;
		p_text(&p, ps->schema);
		if ((ret = pg_sql_run(ps, "SELECT pg_catalog.pg_advisory_xact_lock(" PG_LOCK_KEY
				      ", pg_catalog.hashtext($1))", &p, NULL, err,
				      "could not lock state store \"%s\" to upgrade it", ps->base.path)))
			goto fail;
		if ((ret = pg_identify(ps, &cur, &fresh, &missing, err)))
			goto fail;
		if (cur > v) { /* another process did it */
			if ((ret = pg_exec_sql(ps, "COMMIT", err, "upgrade")))
				break;
			v = cur;
			continue;
		}
		step = step_from(cur);
		if (!step) {
			ret = jerror_set(err, JERR_INTERNAL, "state store \"%s\": no PostgreSQL migration "
							     "from schema version %" PRId64,
					 ps->base.path, cur);
			goto fail;
		}
		if (missing) { /* only then: CREATE SCHEMA needs CREATE on the database */
			quoted = PQescapeIdentifier(ps->pg, ps->schema, strlen(ps->schema));
			strbuf_reset(&sql);
			strbuf_addf(&sql, "CREATE SCHEMA %s", quoted ? quoted : "joey");
			PQfreemem(quoted);
			if ((ret = pg_exec_sql(ps, sql.buf, err, "create the schema of")))
				goto fail;
		}
		if ((ret = pg_sql_run(ps, step->sql, NULL, NULL, err,
				      "could not upgrade state store \"%s\" to schema version %d",
				      ps->base.path, step->to)))
			goto fail;
		snprintf(app, sizeof(app), "%d", STATE_APPLICATION_ID);
		snprintf(ver, sizeof(ver), "%d", step->to);
		p = (struct params){ 0 };
		p_text(&p, app);
		p_text(&p, ver);
		if ((ret = pg_sql_run(ps,
				      "INSERT INTO meta (key, value) VALUES ('application_id', $1),"
				      " ('schema_version', $2)"
				      " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
				      &p, NULL, err,
				      "could not upgrade state store \"%s\" to schema version %d",
				      ps->base.path, step->to)))
			goto fail;
		if ((ret = pg_exec_sql(ps, "COMMIT", err, "upgrade")))
			break;
		v = step->to;
		continue;
fail:
		{
			PGresult *rb = PQexec(ps->pg, "ROLLBACK");
			PQclear(rb);
		}
		break;
	}
	strbuf_release(&sql);
	return ret;
}
