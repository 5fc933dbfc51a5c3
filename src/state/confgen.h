/*
 * confgen.h: config generations in the state store (schema version 8, table
 * config_generations), so that workers sharing a store run every work item with the
 * config its job was queued with (docs/scaling.md, "One config").
 *
 * A generation is the SHA-256 (hex) of a config's snapshot (struct config.generation,
 * .snapshot): the text of every config file. A process publishes its config when it
 * loads, reloads or writes it and when it queues a job; a worker that claims an item
 * of another generation fetches the snapshot and loads it. The snapshot holds the
 * files as written, with "${NAME}" references: secret values are never stored (in
 * clear or hashed); each worker resolves them from its own environment and secrets
 * file. A config that holds a secret literally in a file is published without its
 * snapshot (withheld says why): workers must then have the files themselves.
 *
 *   state_config_publish(st, gen, snap, len, NULL, "host:pid reload", &err);
 *   state_config_fetch(st, gen, &snap, &withheld, &found, &err);
 *   state_config_latest(st, &gen, &origin, &at, &found, &err);
 *
 * Strings given are borrowed. The store keeps the STATE_CONFIG_KEEP most recently
 * published generations (older ones are dropped on publish). In a store older than
 * version 8 (opened read-only) publish is refused and fetch finds nothing.
 */
#ifndef JOEY_STATE_CONFGEN_H
#define JOEY_STATE_CONFGEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/compat.h"
#include "base/error.h"
#include "base/strbuf.h"
#include "state/state.h"

#define STATE_CONFIG_GEN_SINCE 8
#define STATE_CONFIG_KEEP 50

/*
 * Record generation gen (64 hex digits) with its snapshot (snap, len bytes; NULL: not
 * stored, withheld then says why) as published now by origin (e.g. "host:pid reload").
 * A generation published before keeps its snapshot; its time and origin are updated.
 */
enum jerr state_config_publish(struct state *st, const char *gen, const char *snap, size_t len,
			       const char *withheld, const char *origin, struct jerror *err) JOEY_WUR;
/*
 * Generation gen: *found; snap (reset first) its snapshot, decoded, or empty with
 * withheld (reset first) saying why it was not stored. A stored snapshot that does
 * not decode, or whose SHA-256 is not gen, is JERR_STATE (nothing in snap).
 */
enum jerr state_config_fetch(struct state *st, const char *gen, struct strbuf *snap, struct strbuf *withheld,
			     bool *found, struct jerror *err) JOEY_WUR;
/* The generation published last: *found, gen, origin (both reset first; origin may be NULL) and *at (epoch ms). */
enum jerr state_config_latest(struct state *st, struct strbuf *gen, struct strbuf *origin, int64_t *at,
			      bool *found, struct jerror *err) JOEY_WUR;

#endif
