/*
 * state_internal.h: what the pieces of the state store's interface (state.c,
 * cursor.c, work.c) share and no back end needs. Not part of state.h: callers of the
 * store and the back ends (backend.h) do not use it.
 */
#ifndef JOEY_STATE_INTERNAL_H
#define JOEY_STATE_INTERNAL_H

#include "base/error.h"
#include "state/backend.h"

/*
 * JERR_OK when st is writable; else err says the store is open read-only and
 * JERR_STATE is returned. Every public function that writes calls it first, so a
 * read-only store refuses writes before the back end sees them.
 */
enum jerr state_refuse_readonly(struct state *st, struct jerror *err);

#endif
