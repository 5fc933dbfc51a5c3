/*
 * warehouse_query.c: the SQL text of the warehouse diff's one query (joey$s<i>,
 * joey$d, joey$f, joey$sum, then the summary row and the candidates; the design note
 * in warehouse.c says what each part computes). Pure text: no connection, nothing
 * owned beyond the struct qbuild the caller hands in. Called by warehouse_open.
 */
#include <stdio.h>
#include <string.h>

#include "base/xalloc.h"
#include "engine/warehouse_internal.h"

static void hex_encode(struct strbuf *sb, const unsigned char *b, size_t n)
{
	static const char digits[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		strbuf_addch(sb, digits[b[i] >> 4]);
		strbuf_addch(sb, digits[b[i] & 15]);
	}
}

size_t wh_q_param(struct qbuild *q, const char *v)
{
	ALLOC_GROW(q->vals, q->n_vals + 1, q->alloc);
	q->vals[q->n_vals++] = v;
	return q->n_vals;
}

void wh_add_state_table(struct strbuf *sb, const char *schema, const char *table)
{
	strbuf_add_sql_ident(sb, schema);
	strbuf_addch(sb, '.');
	strbuf_add_sql_ident(sb, table);
}

/* The state store's key columns of the primary key "s0"."c0". */
static void add_state_key(struct strbuf *sb, bool int_key, int part)
{
	static const char *const int_parts[] = { "0::smallint", "CAST(\"s0\".\"c0\" AS BIGINT)", "''::bytea" };
	static const char *const text_parts[] = { "1::smallint", "0::bigint",
						  "convert_to(CAST(\"s0\".\"c0\" AS TEXT), 'UTF8')" };
	strbuf_addstr(sb, int_key ? int_parts[part] : text_parts[part]);
}

static void add_key_match(struct strbuf *sb, const char *t, const char *k)
{
	strbuf_addf(sb, "\"%s\".\"key_kind\" = \"%s\".\"kk\" AND \"%s\".\"key_int\" = \"%s\".\"ki\" AND "
			"\"%s\".\"key_text\" = \"%s\".\"kt\"",
		    t, k, t, k, t, k);
}

/* The key of a joey$f row: the primary key's, else the first state row's that has it. */
static void add_merged_key(struct strbuf *sb, const char *col, const char *rcol, size_t upto)
{
	strbuf_addf(sb, "coalesce(\"d\".\"%s\"", col);
	for (size_t j = 0; j < upto; j++)
		strbuf_addf(sb, ", \"r%zu\".\"%s\"", j, rcol);
	strbuf_addch(sb, ')');
}

static void add_merged_key_match(struct strbuf *sb, const char *t, size_t upto)
{
	static const char *const cols[][2] = { { "kk", "key_kind" }, { "ki", "key_int" }, { "kt", "key_text" } };
	for (int k = 0; k < 3; k++) {
		strbuf_addf(sb, "%s\"%s\".\"%s\" = ", k ? " AND " : "", t, cols[k][1]);
		add_merged_key(sb, cols[k][0], cols[k][1], upto);
	}
}

/* The query (see the design note in warehouse.c and warehouse_internal.h). */
void wh_build_query(struct warehouse *w, struct qbuild *q, char **stmts, bool int_key, bool dupes)
{
	const struct cfg_model *m = w->model;
	struct strbuf *sb = &q->sql;
	size_t D = w->n_dests;
	size_t *p_dest = arena_alloc(&q->a, (D ? D : 1) * sizeof(size_t));
	size_t *p_fp = arena_alloc(&q->a, (D ? D : 1) * sizeof(size_t));

	for (size_t j = 0; j < D; j++) {
		struct strbuf hex = STRBUF_INIT;
		hex_encode(&hex, w->fp[j], STATE_HASH_LEN);
		p_dest[j] = wh_q_param(q, w->dests[j]->id);
		p_fp[j] = wh_q_param(q, arena_strdup(&q->a, hex.buf));
		strbuf_release(&hex);
	}

	strbuf_addstr(sb, "WITH ");
	for (size_t i = 0; i < m->n_sources; i++)
		strbuf_addf(sb, "\"joey$s%zu\" AS (%s),\n", i, stmts[i]);

	/* joey$d: the sources side by side, one row per primary key (plus orphans) */
	strbuf_addstr(sb, "\"joey$d\" AS (SELECT \"s0\".\"c0\" IS NOT NULL AND \"s0\".\"md5\" IS NOT NULL AS \"p\", (0");
	for (size_t i = 1; i < m->n_sources; i++)
		strbuf_addf(sb, " + CASE WHEN \"s0\".\"md5\" IS NULL AND \"s%zu\".\"c0\" IS NOT NULL THEN 1 ELSE 0 END", i);
	strbuf_addstr(sb, ") AS \"o\"");
	const char *names[] = { "kk", "ki", "kt" };
	for (int k = 0; k < 3; k++) {
		strbuf_addstr(sb, ", ");
		add_state_key(sb, int_key, k);
		strbuf_addf(sb, " AS \"%s\"", names[k]);
	}
	strbuf_addstr(sb, ", decode(\"s0\".\"md5\"");
	for (size_t i = 1; i < m->n_sources; i++)
		strbuf_addf(sb, " || coalesce(\"s%zu\".\"md5\", repeat('0', 32))", i);
	strbuf_addstr(sb, ", 'hex') AS \"dg\" FROM \"joey$s0\" AS \"s0\"");
	for (size_t i = 1; i < m->n_sources; i++)
		strbuf_addf(sb, " FULL JOIN \"joey$s%zu\" AS \"s%zu\" ON \"s%zu\".\"c0\" = \"s0\".\"c0\"", i, i, i);
	strbuf_addstr(sb, "),\n");

	/*
	 * joey$f: every key of the sources or of the destinations' state rows, with, per
	 * destination, whether it can be skipped (k), whether that makes an unchanged item
	 * (u), and whether a state row the sources lost is in scope or pending (g)
	 */
	strbuf_addstr(sb, "\"joey$f\" AS MATERIALIZED (SELECT \"d\".\"p\" IS TRUE AS \"p\", coalesce(\"d\".\"o\", 0) AS \"o\"");
	for (int k = 0; k < 3; k++) {
		static const char *const rcols[] = { "key_kind", "key_int", "key_text" };
		strbuf_addstr(sb, ", ");
		add_merged_key(sb, names[k], rcols[k], D);
		strbuf_addf(sb, " AS \"%s\"", names[k]);
	}
	for (size_t j = 0; j < D; j++) {
		strbuf_addf(sb,
			    ", coalesce(\"g%zu\".\"digest\" = decode($%zu, 'hex') || \"d\".\"dg\" AND ("
			    "(\"g%zu\".\"hash\" IS NOT NULL AND \"r%zu\".\"hash\" = \"g%zu\".\"hash\" AND "
			    "\"r%zu\".\"confirmed\" AND \"r%zu\".\"in_scope\" AND NOT \"r%zu\".\"pending\") OR "
			    "(\"g%zu\".\"hash\" IS NULL AND (\"r%zu\".\"key_kind\" IS NULL OR "
			    "(NOT \"r%zu\".\"in_scope\" AND NOT \"r%zu\".\"pending\")))), false) AS \"k%zu\", "
			    "\"g%zu\".\"hash\" IS NOT NULL AS \"u%zu\", "
			    "coalesce(\"r%zu\".\"in_scope\" OR \"r%zu\".\"pending\", false) AS \"g%zu\"",
			    j, p_fp[j], j, j, j, j, j, j, j, j, j, j, j, j, j, j, j, j);
	}
	strbuf_addstr(sb, " FROM \"joey$d\" AS \"d\"");
	for (size_t j = 0; j < D; j++) {
		strbuf_addf(sb, " FULL JOIN (SELECT \"key_kind\", \"key_int\", \"key_text\", \"hash\","
				" \"hash\" <> decode(repeat('00', 16), 'hex') AS \"confirmed\", \"in_scope\", \"pending\" FROM ");
		wh_add_state_table(sb, w->schema, "records");
		/* OFFSET 0: projected before the join, so payloads stay out of its hash table */
		strbuf_addf(sb, " WHERE \"dest_id\" = $%zu OFFSET 0) AS \"r%zu\" ON ", p_dest[j], j);
		char t[32];
		snprintf(t, sizeof(t), "r%zu", j);
		add_merged_key_match(sb, t, j);
	}
	for (size_t j = 0; j < D; j++) {
		char t[32];
		strbuf_addstr(sb, " LEFT JOIN ");
		wh_add_state_table(sb, w->schema, "digests");
		snprintf(t, sizeof(t), "g%zu", j);
		strbuf_addf(sb, " AS \"%s\" ON \"%s\".\"dest_id\" = $%zu AND \"d\".\"p\" AND ", t, t, p_dest[j]);
		add_key_match(sb, t, "d");
	}
	strbuf_addstr(sb, "),\n");

	/* the candidates: keys some destination cannot skip, state rows the sources lost */
	struct strbuf cand = STRBUF_INIT;
	strbuf_addstr(&cand, "((\"p\" AND NOT (true");
	for (size_t j = 0; j < D; j++)
		strbuf_addf(&cand, " AND \"k%zu\"", j);
	strbuf_addstr(&cand, ")) OR (NOT \"p\" AND (false");
	for (size_t j = 0; j < D; j++)
		strbuf_addf(&cand, " OR \"g%zu\"", j);
	strbuf_addstr(&cand, ")))");
	struct strbuf all_k = STRBUF_INIT;
	for (size_t j = 0; j < D; j++)
		strbuf_addf(&all_k, " AND \"k%zu\"", j);

	/* the summary row, in one pass */
	strbuf_addstr(sb, "\"joey$sum\" AS (SELECT count(*) FILTER (WHERE \"p\") AS \"n\", ");
	if (dupes)
		strbuf_addstr(sb, "count(*) FILTER (WHERE \"p\") - count(DISTINCT (\"kk\", \"ki\", \"kt\")) FILTER (WHERE \"p\")");
	else
		strbuf_addstr(sb, "0::bigint");
	strbuf_addf(sb, " AS \"dupes\", coalesce(sum(\"o\"), 0)::bigint AS \"orphans\", count(*) FILTER (WHERE %s) AS \"cands\"",
		    cand.buf);
	for (size_t j = 0; j < D; j++)
		strbuf_addf(sb, ", count(*) FILTER (WHERE \"p\"%s AND \"u%zu\") AS \"u%zu\"", all_k.buf, j, j);
	strbuf_addstr(sb, " FROM \"joey$f\")\n");

	strbuf_addstr(sb, "SELECT 0, NULL::smallint, NULL::bigint, NULL::bytea, NULL::boolean");
	for (size_t j = 0; j < D; j++)
		strbuf_addstr(sb, ", NULL::boolean, NULL::text, NULL::bytea, NULL::boolean, NULL::boolean, NULL::integer, "
				  "NULL::boolean, NULL::bytea, NULL::bytea");
	strbuf_addstr(sb, ", \"n\", \"dupes\", \"orphans\", \"cands\"");
	for (size_t j = 0; j < D; j++)
		strbuf_addf(sb, ", \"u%zu\"", j);
	strbuf_addstr(sb, " FROM \"joey$sum\"");

	/* the candidates, with every destination's state and digest rows */
	strbuf_addstr(sb, "\nUNION ALL SELECT 1, \"c\".\"kk\", \"c\".\"ki\", \"c\".\"kt\", \"c\".\"p\"");
	for (size_t j = 0; j < D; j++)
		strbuf_addf(sb, ", \"r%zu\".\"key_kind\" IS NOT NULL, \"r%zu\".\"payload\", \"r%zu\".\"hash\", \"r%zu\".\"in_scope\", "
				"\"r%zu\".\"pending\", \"r%zu\".\"attempts\", \"g%zu\".\"key_kind\" IS NOT NULL, \"g%zu\".\"digest\", "
				"\"g%zu\".\"hash\"",
			    j, j, j, j, j, j, j, j, j);
	for (size_t k = 0; k < SUM_UNCHANGED + D; k++)
		strbuf_addstr(sb, ", NULL::bigint");
	strbuf_addf(sb, " FROM (SELECT \"kk\", \"ki\", \"kt\", \"p\" FROM \"joey$f\" WHERE %s) AS \"c\"", cand.buf);
	/* looked up by primary key, one candidate at a time: they are few (but the planner
	 * cannot know how few, and would hash both tables whole) */
	for (size_t j = 0; j < D; j++) {
		static const char *const tables[] = { "records", "digests" };
		for (int k = 0; k < 2; k++) {
			char t[32];
			snprintf(t, sizeof(t), "%c%zu", k ? 'g' : 'r', j);
			strbuf_addstr(sb, " LEFT JOIN LATERAL (SELECT * FROM ");
			wh_add_state_table(sb, w->schema, tables[k]);
			strbuf_addf(sb, " AS \"%s\" WHERE \"%s\".\"dest_id\" = $%zu AND ", t, t, p_dest[j]);
			add_key_match(sb, t, "c");
			strbuf_addf(sb, " LIMIT 1) AS \"%s\" ON true", t);
		}
	}
	strbuf_addstr(sb, "\nORDER BY 1, 2, 3, 4");
	strbuf_release(&cand);
	strbuf_release(&all_k);
	w->n_cols = COL_DESTS + (int)(WH_DEST_COLS * D) + SUM_UNCHANGED + (int)D;
}

