/*
 * warehouse.c: the warehouse diff's choices: when it falls back to the streaming diff
 * (and says why), the configuration fingerprint, that its PostgreSQL dialect is the
 * connector's, and that a pending row is read again. The results themselves are
 * pinned by the declarative cases (cases.c, backend postgres-warehouse) and
 * tests/e2e/diff_warehouse.sh. Tests that need a server use $JOEY_PG_URL and skip
 * without it.
 */
#include "support/testutil.h"

#include <libpq-fe.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/strbuf.h"
#include "config/config.h"
#include "engine/diff.h"
#include "engine/warehouse.h"
#include "source/source.h"
#include "state/state.h"

static char *tmp;
static int n_schema;

/* ---- config ---- */

struct cfg_parts {
	const char *app;       /* the "db" app's type and options: "\"type\": ..., \"options\": {...}" */
	const char *src_type;  /* "sqlite-import-table" */
	const char *rule;      /* the vip group's rule */
	const char *dest_opts; /* the destination's options object */
	const char *mapping;   /* the destination's mapping */
};

static const struct cfg_parts base_parts = {
	"\"type\": \"sqlite\", \"options\": {\"file\": \"data.db\"}",
	"sqlite-import-table",
	"{\"propertyId\": \"name\", \"op\": \"eq\", \"match\": \"Ann\"}",
	"{}",
	"{\"external_id\": \"user_id\", \"email\": \"email\", \"name\": \"name\"}",
};

static struct config *load(const struct cfg_parts *c, const char *dir_name)
{
	struct strbuf json = STRBUF_INIT, dir = STRBUF_INIT;
	struct config *cfg = NULL;
	struct jerror err = JERROR_INIT;

	strbuf_addf(&json,
		    "[{\"class\": \"App\", \"id\": \"db\", %s},\n"
		    " {\"class\": \"App\", \"id\": \"braze\", \"type\": \"braze\", \"options\": {\"apiKey\": \"K\", "
		    "\"restEndpoint\": \"http://127.0.0.1:9\"}},\n"
		    " {\"class\": \"Model\", \"id\": \"users\", \"name\": \"Users\", \"type\": \"profile\"},\n"
		    " {\"class\": \"Source\", \"id\": \"users_src\", \"type\": \"%s\", \"appId\": \"db\", \"modelId\": "
		    "\"users\", \"options\": {\"table\": \"users\"}, \"mapping\": {\"id\": \"user_id\"}},\n"
		    " {\"class\": \"Property\", \"id\": \"user_id\", \"type\": \"integer\", \"unique\": true, \"sourceId\": "
		    "\"users_src\", \"options\": {\"column\": \"id\"}},\n"
		    " {\"class\": \"Property\", \"id\": \"email\", \"type\": \"email\", \"sourceId\": \"users_src\", "
		    "\"options\": {\"column\": \"email\"}},\n"
		    " {\"class\": \"Property\", \"id\": \"name\", \"type\": \"string\", \"sourceId\": \"users_src\", "
		    "\"options\": {\"column\": \"name\"}},\n"
		    " {\"class\": \"Property\", \"id\": \"signup\", \"type\": \"date\", \"sourceId\": \"users_src\", "
		    "\"options\": {\"column\": \"signup\"}},\n"
		    " {\"class\": \"Group\", \"id\": \"vip\", \"name\": \"VIP\", \"modelId\": \"users\", \"rules\": [%s]},\n"
		    " {\"class\": \"Destination\", \"id\": \"d\", \"type\": \"braze-export-users\", \"appId\": \"braze\", "
		    "\"modelId\": \"users\", \"syncMode\": \"sync\", \"collection\": \"model\", \"options\": %s, "
		    "\"mapping\": %s, \"destinationGroupMemberships\": {\"VIP\": \"vip\"}}]\n",
		    c->app, c->src_type, c->rule, c->dest_opts, c->mapping);
	strbuf_addf(&dir, "%s/%s", tmp, dir_name);
	tu_write(dir.buf, "config.json", json.buf);
	if (config_load(dir.buf, NULL, &cfg, &err) != JERR_OK) {
		config_print_diags(cfg, stderr);
		fail_msg("config does not load: %s", err.msg.buf);
	}
	strbuf_release(&json);
	strbuf_release(&dir);
	jerror_release(&err);
	return cfg;
}

static void sqlite_data(void)
{
	struct strbuf path = STRBUF_INIT;
	sqlite3 *db;
	strbuf_addf(&path, "%s/data.db", tmp);
	assert_int_equal(sqlite3_open(path.buf, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db,
				      "DROP TABLE IF EXISTS users; CREATE TABLE users (id INTEGER PRIMARY KEY, "
				      "email TEXT, name TEXT, signup TEXT); INSERT INTO users VALUES "
				      "(1, 'ann@example.com', 'Ann', '2026-01-01'), (2, 'bob@example.com', 'Bob', NULL);",
				      NULL, NULL, NULL),
			 SQLITE_OK);
	sqlite3_close(db);
	strbuf_release(&path);
}

/* ---- a visitor that counts ---- */

struct counts {
	uint64_t n[DIFF__COUNT];
	uint64_t bulk_unchanged, pending;
	struct state *apply; /* non-NULL: write what Braze would confirm */
};

static enum jerr count_item(void *ctx, const struct diff_item *it, struct jerror *err)
{
	struct counts *c = ctx;
	c->n[it->action]++;
	c->pending += it->pending;
	if (!c->apply || (it->action == DIFF_UNCHANGED && !it->state_only))
		return JERR_OK;
	if (it->action == DIFF_DELETE)
		return state_delete(c->apply, it->dest->id, it->key, err);
	return state_put(c->apply, it->dest->id, it->key, it->new_payload, it->new_hash, it->in_scope, err);
}

static enum jerr count_unchanged(void *ctx, const struct cfg_destination *d, uint64_t n, struct jerror *err)
{
	struct counts *c = ctx;
	(void)d, (void)err;
	c->bulk_unchanged += n;
	return JERR_OK;
}

/* One pass over the only model; returns its report. */
static struct diff_report pass(const struct config *cfg, struct state *st, enum diff_mode mode, bool with_cb,
			       const struct source_read *read, struct counts *c, enum jerr want_rc)
{
	const struct cfg_model *m = cfg->models[0];
	struct diff_visitor v = { count_item, c };
	struct diff_opts o = { .read = read, .mode = mode, .unchanged = with_cb ? count_unchanged : NULL,
			       .write_digests = c->apply != NULL };
	struct diff_report rep;
	struct record_stats stats;
	struct jerror err = JERROR_INIT;
	enum jerr rc = diff_model_opts(cfg, m, m->destinations, m->n_destinations, st, &o, &v, &stats, NULL, &rep,
				       &err);
	if (rc != want_rc)
		fail_msg("diff_model_opts: %d (%s: %s), wanted %d", rc, err.msg.buf, err.detail.buf, want_rc);
	jerror_release(&err);
	return rep;
}

/* ---- without a server ---- */

static void test_modes(void **state)
{
	enum diff_mode m;
	(void)state;
	assert_true(diff_mode_parse("warehouse", &m));
	assert_int_equal(m, DIFF_MODE_WAREHOUSE);
	assert_true(diff_mode_parse("stream", &m));
	assert_int_equal(m, DIFF_MODE_STREAM);
	assert_true(diff_mode_parse("auto", &m));
	assert_int_equal(m, DIFF_MODE_AUTO);
	assert_false(diff_mode_parse("database", &m));
	assert_false(diff_mode_parse(NULL, &m));
	assert_string_equal(diff_mode_name(DIFF_MODE_WAREHOUSE), "warehouse");

	struct cfg_parts p = base_parts;
	struct config *none = load(&p, "m0");
	p.dest_opts = "{\"diff\": \"auto\"}";
	struct config *autoc = load(&p, "m1");
	p.dest_opts = "{\"diff\": \"warehouse\"}";
	struct config *wh = load(&p, "m2");
	struct cfg_model *mm = none->models[0];
	enum diff_mode forced = DIFF_MODE_STREAM;
	assert_int_equal(diff_mode_choose(mm->destinations, mm->n_destinations, NULL), DIFF_MODE_STREAM);
	mm = autoc->models[0];
	assert_int_equal(diff_mode_choose(mm->destinations, mm->n_destinations, NULL), DIFF_MODE_AUTO);
	mm = wh->models[0];
	assert_int_equal(diff_mode_choose(mm->destinations, mm->n_destinations, NULL), DIFF_MODE_WAREHOUSE);
	/* --diff wins over the options */
	assert_int_equal(diff_mode_choose(mm->destinations, mm->n_destinations, &forced), DIFF_MODE_STREAM);
	config_free(none);
	config_free(autoc);
	config_free(wh);
}

static void fp_of(const struct cfg_parts *p, const char *dir, unsigned char out[STATE_HASH_LEN])
{
	struct config *cfg = load(p, dir);
	warehouse_fingerprint(cfg->destinations[0], SLICE_LIT("SELECT 1\n"), out);
	config_free(cfg);
}

static void test_fingerprint(void **state)
{
	unsigned char a[STATE_HASH_LEN], b[STATE_HASH_LEN];
	struct cfg_parts p = base_parts;
	(void)state;
	fp_of(&p, "f0", a);
	fp_of(&p, "f1", b);
	assert_memory_equal(a, b, STATE_HASH_LEN); /* the same configuration */
	p.dest_opts = "{\"maxDeletePercent\": 50}";
	fp_of(&p, "f2", b);
	assert_memory_equal(a, b, STATE_HASH_LEN); /* the guard does not change payloads */
	p = base_parts;
	p.mapping = "{\"external_id\": \"user_id\", \"email\": \"email\"}";
	fp_of(&p, "f3", b);
	assert_memory_not_equal(a, b, STATE_HASH_LEN); /* mapping */
	p = base_parts;
	p.rule = "{\"propertyId\": \"name\", \"op\": \"eq\", \"match\": \"Bob\"}";
	fp_of(&p, "f4", b);
	assert_memory_not_equal(a, b, STATE_HASH_LEN); /* a group rule */
	struct config *cfg = load(&base_parts, "f5");
	warehouse_fingerprint(cfg->destinations[0], SLICE_LIT("SELECT 2\n"), b);
	assert_memory_not_equal(a, b, STATE_HASH_LEN); /* the statements (and column types) */
	config_free(cfg);
}

static void test_sqlite_state_streams(void **state)
{
	struct strbuf path = STRBUF_INIT, why = STRBUF_INIT;
	struct state *st = NULL;
	struct jerror err = JERROR_INIT;
	struct counts c = { 0 };
	(void)state;
	sqlite_data();
	struct config *cfg = load(&base_parts, "s0");
	strbuf_addf(&path, "%s/state.db", tmp);
	assert_int_equal(state_open(path.buf, STATE_OPEN_CREATE, &st, &err), JERR_OK);
	const struct cfg_model *m = cfg->models[0];
	assert_false(warehouse_check(cfg, m, m->destinations, m->n_destinations, st, NULL, &why));
	assert_non_null(strstr(why.buf, "SQLite"));
	/* the pass streams, says why, and gives the streaming result */
	struct diff_report rep = pass(cfg, st, DIFF_MODE_WAREHOUSE, true, NULL, &c, JERR_OK);
	assert_false(rep.warehouse);
	assert_non_null(strstr(rep.why, "SQLite"));
	assert_int_equal(c.n[DIFF_CREATE], 2);
	assert_int_equal(rep.read, 2);
	/* stream: nothing to explain */
	rep = pass(cfg, st, DIFF_MODE_STREAM, true, NULL, &c, JERR_OK);
	assert_string_equal(rep.why, "");
	/* a caller that cannot take bulk counts of unchanged records */
	rep = pass(cfg, st, DIFF_MODE_AUTO, false, NULL, &c, JERR_OK);
	assert_non_null(strstr(rep.why, "cannot take counts"));
	state_close(st);
	config_free(cfg);
	strbuf_release(&path);
	strbuf_release(&why);
	jerror_release(&err);
}

/* ---- with a server ---- */

struct pg {
	const char *url; /* $JOEY_PG_URL */
	char host[128], port[16], user[128], password[128], database[128];
	PGconn *admin;
	char data[64], st[64]; /* schemas: source tables, state store */
	struct strbuf state_url;
	struct strbuf app;
};

static bool pg_setup(struct pg *g)
{
	memset(g, 0, sizeof(*g));
	g->url = getenv("JOEY_PG_URL");
	if (!g->url || !*g->url)
		return false;
	const char *p = strstr(g->url, "://");
	assert_non_null(p);
	assert_int_equal(sscanf(p + 3, "%127[^:]:%127[^@]@%127[^:]:%15[^/]/%127s", g->user, g->password, g->host,
				g->port, g->database),
			 5);
	g->admin = PQconnectdb(g->url);
	assert_int_equal(PQstatus(g->admin), CONNECTION_OK);
	PQclear(PQexec(g->admin, "SET client_min_messages = warning"));
	n_schema++;
	snprintf(g->data, sizeof(g->data), "wh_ut_%d_%d", (int)getpid(), n_schema);
	snprintf(g->st, sizeof(g->st), "wh_ut_%d_%d_st", (int)getpid(), n_schema);
	strbuf_init(&g->state_url, 0);
	strbuf_init(&g->app, 0);
	strbuf_addf(&g->state_url, "%s?schema=%s", g->url, g->st);
	strbuf_addf(&g->app,
		    "\"type\": \"postgres\", \"options\": {\"host\": \"%s\", \"port\": \"%s\", \"user\": \"%s\", "
		    "\"password\": \"%s\", \"database\": \"%s\", \"schema\": \"%s\"}",
		    g->host, g->port, g->user, g->password, g->database, g->data);
	return true;
}

static void pg_sql(struct pg *g, const char *fmt, ...) JOEY_PRINTF(2, 3);
static void pg_sql(struct pg *g, const char *fmt, ...)
{
	struct strbuf sb = STRBUF_INIT;
	va_list ap;
	va_start(ap, fmt);
	strbuf_vaddf(&sb, fmt, ap);
	va_end(ap);
	PGresult *r = PQexec(g->admin, sb.buf);
	if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
		fail_msg("%s: %s", sb.buf, PQresultErrorMessage(r));
	PQclear(r);
	strbuf_release(&sb);
}

/* The users table (with a primary key unless dupes) in the data schema. */
static void pg_users(struct pg *g, bool dupes)
{
	pg_sql(g, "DROP SCHEMA IF EXISTS %s CASCADE; DROP SCHEMA IF EXISTS %s CASCADE; CREATE SCHEMA %s; "
		  "CREATE TABLE %s.users (id INTEGER %s, email TEXT, name TEXT, signup TEXT); "
		  "INSERT INTO %s.users VALUES (1, 'ann@example.com', 'Ann', '2026-01-01'), "
		  "(2, 'bob@example.com', 'Bob', NULL), (3, 'cy@example.com', 'Cy', NULL)%s",
	       g->data, g->st, g->data, g->data, dupes ? "" : "PRIMARY KEY", g->data,
	       dupes ? ", (3, 'cy2@example.com', 'Cy', NULL)" : "");
}

static void pg_teardown(struct pg *g)
{
	pg_sql(g, "DROP SCHEMA IF EXISTS %s CASCADE; DROP SCHEMA IF EXISTS %s CASCADE", g->data, g->st);
	PQfinish(g->admin);
	strbuf_release(&g->state_url);
	strbuf_release(&g->app);
}

static struct state *pg_state(struct pg *g, enum state_open_mode mode)
{
	struct state *st = NULL;
	struct jerror err = JERROR_INIT;
	if (state_open(g->state_url.buf, mode, &st, &err))
		fail_msg("state_open: %s", err.msg.buf);
	jerror_release(&err);
	return st;
}

static void test_fallbacks(void **state)
{
	struct pg g;
	struct strbuf why = STRBUF_INIT;
	struct counts c = { 0 };
	(void)state;
	if (!pg_setup(&g))
		skip();
	pg_users(&g, false);
	struct state *st = pg_state(&g, STATE_OPEN_CREATE);

	/* an SQLite source */
	sqlite_data();
	struct config *cfg = load(&base_parts, "p0");
	const struct cfg_model *m = cfg->models[0];
	assert_false(warehouse_check(cfg, m, m->destinations, m->n_destinations, st, NULL, &why));
	assert_non_null(strstr(why.buf, "source \"users_src\" is not in PostgreSQL"));
	config_free(cfg);

	/* a group that depends on the time */
	struct cfg_parts p = base_parts;
	p.app = g.app.buf;
	p.src_type = "postgres-import-table";
	p.rule = "{\"propertyId\": \"signup\", \"op\": \"relative_gt\", \"relativeMatchNumber\": 3, "
		 "\"relativeMatchUnit\": \"days\", \"relativeMatchDirection\": \"subtract\"}";
	cfg = load(&p, "p1");
	m = cfg->models[0];
	assert_false(warehouse_check(cfg, m, m->destinations, m->n_destinations, st, NULL, &why));
	assert_non_null(strstr(why.buf, "uses group \"vip\", whose rules depend on the current time"));
	struct diff_report rep = pass(cfg, st, DIFF_MODE_WAREHOUSE, true, NULL, &c, JERR_OK);
	assert_false(rep.warehouse);
	assert_int_equal(rep.read, 3);
	config_free(cfg);

	/* an incremental read */
	p.rule = base_parts.rule;
	cfg = load(&p, "p2");
	m = cfg->models[0];
	struct source_read inc = { .since_column = "signup", .since_value = "2026-01-01" };
	assert_false(warehouse_check(cfg, m, m->destinations, m->n_destinations, st, &inc, &why));
	assert_non_null(strstr(why.buf, "read incrementally"));
	assert_true(warehouse_check(cfg, m, m->destinations, m->n_destinations, st, NULL, &why));
	rep = pass(cfg, st, DIFF_MODE_WAREHOUSE, true, NULL, &c, JERR_OK);
	assert_true(rep.warehouse);
	config_free(cfg);

	/* the sources in another database than the state store */
	struct strbuf other = STRBUF_INIT;
	strbuf_addf(&other,
		    "\"type\": \"postgres\", \"options\": {\"host\": \"%s\", \"port\": \"%s\", \"user\": \"%s\", "
		    "\"password\": \"%s\", \"database\": \"postgres\", \"schema\": \"%s\"}",
		    g.host, g.port, g.user, g.password, g.data);
	p.app = other.buf;
	cfg = load(&p, "p3");
	m = cfg->models[0];
	assert_true(warehouse_check(cfg, m, m->destinations, m->n_destinations, st, NULL, &why));
	struct warehouse *w = (struct warehouse *)1;
	struct jerror err = JERROR_INIT;
	assert_int_equal(warehouse_open(cfg, m, m->destinations, m->n_destinations, st, false, &w, &why, &err),
			 JERR_OK);
	assert_null(w);
	assert_non_null(strstr(why.buf, "is not the state store's database"));
	config_free(cfg);
	strbuf_release(&other);

	state_close(st);
	pg_teardown(&g);
	strbuf_release(&why);
	jerror_release(&err);
}

static void test_duplicate_keys(void **state)
{
	struct pg g;
	struct counts c = { 0 };
	(void)state;
	if (!pg_setup(&g))
		skip();
	pg_users(&g, true);
	struct state *st = pg_state(&g, STATE_OPEN_CREATE);
	struct cfg_parts p = base_parts;
	p.app = g.app.buf;
	p.src_type = "postgres-import-table";
	struct config *cfg = load(&p, "d0");
	/* the warehouse diff steps aside; the streaming diff reports the duplicate */
	struct diff_report rep = pass(cfg, st, DIFF_MODE_WAREHOUSE, true, NULL, &c, JERR_SOURCE_DATA);
	(void)rep;
	config_free(cfg);
	state_close(st);
	pg_teardown(&g);
}

static void test_old_store(void **state)
{
	struct pg g;
	struct counts c = { 0 };
	(void)state;
	if (!pg_setup(&g))
		skip();
	pg_users(&g, false);
	struct state *st = pg_state(&g, STATE_OPEN_CREATE);
	state_close(st);
	/* what joey with schema version 3 wrote */
	pg_sql(&g, "DROP TABLE %s.digests; UPDATE %s.meta SET value = '3' WHERE key = 'schema_version'", g.st, g.st);
	struct cfg_parts p = base_parts;
	p.app = g.app.buf;
	p.src_type = "postgres-import-table";
	struct config *cfg = load(&p, "o0");
	st = pg_state(&g, STATE_OPEN_READONLY_OR_EMPTY);
	struct diff_report rep = pass(cfg, st, DIFF_MODE_WAREHOUSE, true, NULL, &c, JERR_OK);
	assert_false(rep.warehouse);
	assert_non_null(strstr(rep.why, "no digests table"));
	state_close(st);
	/* joey run migrates it */
	st = pg_state(&g, STATE_OPEN_CREATE);
	assert_int_equal(state_schema_version(st), STATE_SCHEMA_VERSION);
	rep = pass(cfg, st, DIFF_MODE_WAREHOUSE, true, NULL, &c, JERR_OK);
	assert_true(rep.warehouse);
	state_close(st);
	config_free(cfg);
	pg_teardown(&g);
}

static void test_pending_and_changes_are_read(void **state)
{
	struct pg g;
	struct jerror err = JERROR_INIT;
	(void)state;
	if (!pg_setup(&g))
		skip();
	pg_users(&g, false);
	struct state *st = pg_state(&g, STATE_OPEN_CREATE);
	struct cfg_parts p = base_parts;
	p.app = g.app.buf;
	p.src_type = "postgres-import-table";
	struct config *cfg = load(&p, "r0");

	/* a run Braze confirms in full: every record read, digests stored */
	struct counts c = { .apply = st };
	struct diff_report rep = pass(cfg, st, DIFF_MODE_WAREHOUSE, true, NULL, &c, JERR_OK);
	assert_true(rep.warehouse);
	assert_int_equal(c.n[DIFF_CREATE], 3);
	assert_int_equal(rep.read, 3);
	assert_int_equal(rep.digests, 3);

	/* nothing changed: nothing read, three unchanged */
	memset(&c, 0, sizeof(c));
	rep = pass(cfg, st, DIFF_MODE_WAREHOUSE, true, NULL, &c, JERR_OK);
	assert_true(rep.warehouse);
	assert_int_equal(rep.read, 0);
	assert_int_equal(c.bulk_unchanged, 3);

	/* a failed attempt: that record is read and sent again in full */
	struct rkey k2 = { .is_int = true, .i = 2, .text = SLICE_LIT("2") };
	assert_int_equal(state_mark_failed(st, "d", &k2, "HTTP 500", (struct slice){ NULL, 0 }, &err), JERR_OK);
	memset(&c, 0, sizeof(c));
	rep = pass(cfg, st, DIFF_MODE_WAREHOUSE, true, NULL, &c, JERR_OK);
	assert_int_equal(rep.read, 1);
	assert_int_equal(c.n[DIFF_UPDATE], 1);
	assert_int_equal(c.pending, 1);
	assert_int_equal(c.bulk_unchanged, 2);

	/* a change, a new record and a deleted one */
	pg_sql(&g, "UPDATE %s.users SET name = 'Cyrus' WHERE id = 3; INSERT INTO %s.users VALUES "
		   "(4, 'dee@example.com', 'Dee', NULL); DELETE FROM %s.users WHERE id = 1",
	       g.data, g.data, g.data);
	struct counts s = { 0 };
	memset(&c, 0, sizeof(c));
	rep = pass(cfg, st, DIFF_MODE_WAREHOUSE, true, NULL, &c, JERR_OK);
	struct diff_report srep = pass(cfg, st, DIFF_MODE_STREAM, true, NULL, &s, JERR_OK);
	assert_true(rep.warehouse);
	assert_int_equal(rep.read, 3); /* 2 (pending), 3 (changed), 4 (new) */
	assert_int_equal(srep.read, 3); /* 2, 3, 4: every record */
	for (int a = 0; a < DIFF__COUNT; a++)
		assert_int_equal(c.n[a] + (a == DIFF_UNCHANGED ? c.bulk_unchanged : 0), s.n[a]);
	assert_int_equal(c.n[DIFF_DELETE], 1);
	assert_int_equal(c.n[DIFF_CREATE], 1);
	assert_int_equal(c.n[DIFF_UPDATE], 2);

	/* the configuration changes: every record is compared again */
	config_free(cfg);
	p.mapping = "{\"external_id\": \"user_id\", \"email\": \"email\"}";
	cfg = load(&p, "r1");
	memset(&c, 0, sizeof(c));
	rep = pass(cfg, st, DIFF_MODE_WAREHOUSE, true, NULL, &c, JERR_OK);
	assert_true(rep.warehouse);
	assert_int_equal(rep.read, 3);

	state_close(st);
	config_free(cfg);
	pg_teardown(&g);
	jerror_release(&err);
}

/* The statements the warehouse diff builds are the connector's, byte for byte. */
static void test_dialect_agrees(void **state)
{
	struct pg g;
	struct jerror err = JERROR_INIT;
	(void)state;
	if (!pg_setup(&g))
		skip();
	pg_users(&g, false);
	pg_sql(&g, "CREATE TABLE %s.buys (id SERIAL PRIMARY KEY, user_id INTEGER, amount FLOAT, at TEXT, item TEXT);"
		   "CREATE VIEW %s.users_v AS SELECT CAST(id AS TEXT) AS id, email FROM %s.users",
	       g.data, g.data, g.data);
	struct state *st = pg_state(&g, STATE_OPEN_CREATE);
	struct strbuf json = STRBUF_INIT, dir = STRBUF_INIT;
	strbuf_addf(&json,
		    "[{\"class\": \"App\", \"id\": \"db\", %s},\n"
		    " {\"class\": \"Model\", \"id\": \"users\", \"name\": \"Users\", \"type\": \"profile\"},\n"
		    " {\"class\": \"Source\", \"id\": \"u\", \"type\": \"postgres-import-table\", \"appId\": \"db\", "
		    "\"modelId\": \"users\", \"options\": {\"table\": \"users\"}, \"mapping\": {\"id\": \"user_id\"}},\n"
		    " {\"class\": \"Property\", \"id\": \"user_id\", \"type\": \"integer\", \"unique\": true, "
		    "\"sourceId\": \"u\", \"options\": {\"column\": \"id\"}},\n"
		    " {\"class\": \"Property\", \"id\": \"email\", \"type\": \"email\", \"sourceId\": \"u\", "
		    "\"options\": {\"column\": \"email\"}, \"filters\": [{\"key\": \"name\", \"op\": \"ne\", "
		    "\"match\": \"x\"}]},\n"
		    " {\"class\": \"Source\", \"id\": \"b\", \"type\": \"postgres-import-table\", \"appId\": \"db\", "
		    "\"modelId\": \"users\", \"options\": {\"table\": \"buys\"}, \"mapping\": {\"user_id\": \"user_id\"}},\n"
		    " {\"class\": \"Property\", \"id\": \"spent\", \"type\": \"float\", \"sourceId\": \"b\", "
		    "\"options\": {\"column\": \"amount\", \"aggregationMethod\": \"sum\"}, \"filters\": [{\"key\": "
		    "\"item\", \"op\": \"substring\", \"match\": \"a%%_\"}]},\n"
		    " {\"class\": \"Property\", \"id\": \"last\", \"type\": \"string\", \"sourceId\": \"b\", "
		    "\"options\": {\"column\": \"item\", \"aggregationMethod\": \"most recent value\", \"sortColumn\": "
		    "\"at\"}},\n"
		    " {\"class\": \"Property\", \"id\": \"items\", \"type\": \"string\", \"isArray\": true, "
		    "\"sourceId\": \"b\", \"options\": {\"column\": \"item\", \"aggregationMethod\": \"exact\"}}]\n",
		    g.app.buf);
	strbuf_addf(&dir, "%s/dialect", tmp);
	tu_write(dir.buf, "config.json", json.buf);
	struct config *cfg = NULL;
	if (config_load(dir.buf, NULL, &cfg, &err) != JERR_OK) {
		config_print_diags(cfg, stderr);
		fail_msg("config: %s", err.msg.buf);
	}
	void *conn = NULL;
	assert_int_equal(source_postgres.connect(cfg->apps[0], dir.buf, &conn, &err), JERR_OK);
	for (size_t i = 0; i < cfg->n_sources; i++) {
		struct strbuf a = STRBUF_INIT, b = STRBUF_INIT;
		assert_int_equal(source_postgres.describe(conn, cfg->sources[i], &a, &err), JERR_OK);
		assert_int_equal(warehouse_describe(cfg->sources[i], st, &b, &err), JERR_OK);
		assert_string_equal(a.buf, b.buf);
		strbuf_release(&a);
		strbuf_release(&b);
	}
	source_postgres.disconnect(conn);
	config_free(cfg);
	state_close(st);
	strbuf_release(&json);
	strbuf_release(&dir);
	pg_teardown(&g);
	jerror_release(&err);
}

static int setup(void **state)
{
	(void)state;
	tmp = tu_mkdtemp();
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	tu_rmtree(tmp);
	free(tmp);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_modes),
		cmocka_unit_test(test_fingerprint),
		cmocka_unit_test(test_sqlite_state_streams),
		cmocka_unit_test(test_fallbacks),
		cmocka_unit_test(test_duplicate_keys),
		cmocka_unit_test(test_old_store),
		cmocka_unit_test(test_pending_and_changes_are_read),
		cmocka_unit_test(test_dialect_agrees),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
