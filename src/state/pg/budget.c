/*
 * budget.c: the rate budgets that workers sharing a PostgreSQL state store take from
 * (rate_buckets: a token bucket per key, refilled and taken from in one statement on
 * the database's clock). Owns nothing; called through state_pg (ops.c).
 */
#include "state/pg/pg_internal.h"

enum jerr pg_rate_take(struct state *st, const char *key, double capacity, double rate_per_ms, int want,
		       int *got, int64_t *wait_ms, struct jerror *err)
{
	struct params p = { 0 };
	char cap[32], rate[32];
	PGresult *res;
	enum jerr ret;

	snprintf(cap, sizeof(cap), "%.17g", capacity);
	snprintf(rate, sizeof(rate), "%.17g", rate_per_ms);
	p_text(&p, key);
	p_text(&p, cap);
	p_text(&p, rate);
	p_int(&p, want);
	ret = pg_run_row(ps_of(st), S_RATE_TAKE, &p, &res, err,
			 "could not take from the rate budget \"%s\" in state store \"%s\"", key, st->path);
	if (ret)
		return ret;
	if (res) {
		double g = strtod(PQgetvalue(res, 0, 0), NULL), tokens = strtod(PQgetvalue(res, 0, 1), NULL);
		*got = g > 0 ? (int)g : 0;
		if (!*got) {
			double ms = (1.0 - tokens) / rate_per_ms;
			*wait_ms = ms < 1 ? 1 : (int64_t)ms + 1;
		}
	}
	PQclear(res);
	return JERR_OK;
}
