/*
 * schema.h: the state store's versioned migrations (internal to src/state).
 *
 * state_migrations[i] takes a store from schema version i to i + 1. state.c applies
 * each step in its own BEGIN IMMEDIATE transaction, together with
 * meta.schema_version = i + 1 and PRAGMA application_id. Steps are append-only:
 * a released step is never edited (see docs/internals/state.md, "Migrations").
 */
#ifndef JOEY_STATE_SCHEMA_H
#define JOEY_STATE_SCHEMA_H

#include <stddef.h>

extern const char *const state_migrations[];
extern const size_t state_n_migrations;

#endif
