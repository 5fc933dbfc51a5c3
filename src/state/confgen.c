/*
 * confgen.c: config generations (state/confgen.h) on every back end, through the back
 * ends' exec: the snapshot is stored as base64 text (both databases take it as TEXT)
 * and checked against its generation when fetched. Owns nothing past a call.
 */
#include "state/confgen.h"

#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "base/xalloc.h"
#include "state/backend.h"

static bool gen_valid(const char *gen)
{
	if (!gen || strlen(gen) != 64)
		return false;
	for (const char *p = gen; *p; p++)
		if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
			return false;
	return true;
}

enum jerr state_config_publish(struct state *st, const char *gen, const char *snap, size_t len,
			       const char *withheld, const char *origin, struct jerror *err)
{
	char *b64 = NULL;
	enum jerr rc;

	if (!gen_valid(gen))
		return jerror_set(err, JERR_INTERNAL, "state_config_publish: \"%s\" is not a generation", gen ? gen : "");
	if (st->readonly || st->version < STATE_CONFIG_GEN_SINCE) {
		jerror_set(err, JERR_STATE, "could not record config generation %.12s: state store \"%s\" is %s", gen,
			   st->path, st->readonly ? "open read-only" : "older than version 8");
		return JERR_STATE;
	}
	if (snap) {
		size_t n = sodium_base64_encoded_len(len, sodium_base64_VARIANT_ORIGINAL);
		b64 = xmalloc(n);
		sodium_bin2base64(b64, n, (const unsigned char *)snap, len, sodium_base64_VARIANT_ORIGINAL);
	}
	struct state_value p[5] = {
		state_val_text(gen), state_val_text(b64), state_val_text(snap ? NULL : withheld ? withheld : "not stored"),
		state_val_text(origin ? origin : "?"), state_val_int(state_now_ms()),
	};
	rc = st->ops->exec(st, "record a config generation",
			   "INSERT INTO config_generations (generation, snapshot, withheld, origin, published_at)"
			   " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (generation) DO UPDATE SET"
			   " origin = excluded.origin, published_at = excluded.published_at",
			   p, 5, NULL, NULL, NULL, err);
	free(b64);
	if (rc)
		return rc;
	struct state_value keep = { .kind = STATE_VAL_INT, .i = STATE_CONFIG_KEEP };
	return st->ops->exec(st, "drop old config generations",
			     "DELETE FROM config_generations WHERE generation NOT IN (SELECT generation FROM"
			     " config_generations ORDER BY published_at DESC, generation LIMIT $1)",
			     &keep, 1, NULL, NULL, NULL, err);
}

struct fetch_ctx {
	const char *gen;
	struct strbuf *snap, *withheld;
	bool *found;
	const char *path;
};

static enum jerr fetch_row(void *vctx, const struct state_value *row, size_t n, struct jerror *err)
{
	struct fetch_ctx *c = vctx;
	unsigned char h[crypto_hash_sha256_BYTES];
	char hex[2 * sizeof(h) + 1];
	size_t got = 0;

	if (n < 2)
		return JERR_OK;
	*c->found = true;
	if (row[0].kind != STATE_VAL_TEXT) {
		if (row[1].kind == STATE_VAL_TEXT)
			strbuf_add(c->withheld, row[1].s.ptr, row[1].s.len);
		else
			strbuf_addstr(c->withheld, "not stored");
		return JERR_OK;
	}
	strbuf_grow(c->snap, row[0].s.len);
	if (sodium_base642bin((unsigned char *)c->snap->buf, row[0].s.len + 1, row[0].s.ptr, row[0].s.len, NULL, &got,
			      NULL, sodium_base64_VARIANT_ORIGINAL) != 0)
		goto bad;
	strbuf_setlen(c->snap, got);
	crypto_hash_sha256(h, (const unsigned char *)c->snap->buf, got);
	for (size_t i = 0; i < sizeof(h); i++)
		snprintf(hex + 2 * i, 3, "%02x", h[i]);
	if (strcmp(hex, c->gen))
		goto bad;
	return JERR_OK;
bad:
	strbuf_reset(c->snap);
	jerror_set(err, JERR_STATE, "config generation %.12s in state store \"%s\" is damaged", c->gen, c->path);
	jerror_detail(err, "its stored snapshot does not decode to the files whose SHA-256 is its name");
	jerror_hint(err, "reload the config on a worker that has the files (SIGHUP) to store it again");
	return JERR_STATE;
}

enum jerr state_config_fetch(struct state *st, const char *gen, struct strbuf *snap, struct strbuf *withheld,
			     bool *found, struct jerror *err)
{
	struct fetch_ctx c = { gen, snap, withheld, found, st->path };
	strbuf_reset(snap);
	strbuf_reset(withheld);
	*found = false;
	if (st->version < STATE_CONFIG_GEN_SINCE || !gen_valid(gen))
		return JERR_OK;
	struct state_value p = state_val_text(gen);
	return st->ops->exec(st, "read a config generation",
			     "SELECT snapshot, withheld FROM config_generations WHERE generation = $1", &p, 1, fetch_row,
			     &c, NULL, err);
}

struct latest_ctx {
	struct strbuf *gen, *origin;
	int64_t *at;
	bool *found;
};

static enum jerr latest_row(void *vctx, const struct state_value *row, size_t n, struct jerror *err)
{
	struct latest_ctx *c = vctx;
	(void)err;
	if (n < 3 || row[0].kind != STATE_VAL_TEXT)
		return JERR_OK;
	*c->found = true;
	strbuf_add(c->gen, row[0].s.ptr, row[0].s.len);
	if (c->origin && row[1].kind == STATE_VAL_TEXT)
		strbuf_add(c->origin, row[1].s.ptr, row[1].s.len);
	*c->at = row[2].kind == STATE_VAL_INT ? row[2].i : 0;
	return JERR_OK;
}

enum jerr state_config_latest(struct state *st, struct strbuf *gen, struct strbuf *origin, int64_t *at,
			      bool *found, struct jerror *err)
{
	struct latest_ctx c = { gen, origin, at, found };
	strbuf_reset(gen);
	if (origin)
		strbuf_reset(origin);
	*at = 0;
	*found = false;
	if (st->version < STATE_CONFIG_GEN_SINCE)
		return JERR_OK;
	return st->ops->exec(st, "read the latest config generation",
			     "SELECT generation, origin, published_at FROM config_generations"
			     " ORDER BY published_at DESC, generation LIMIT 1",
			     NULL, 0, latest_row, &c, NULL, err);
}
