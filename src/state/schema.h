/*
 * schema.h: the state store's versioned migrations, for every back end (internal to
 * src/state). The table list that export and import use is state_tables (state.h).
 *
 * SQLite: state_migrations[i] takes a store from schema version i to i + 1. sqlite/open.c
 * applies each step in its own BEGIN IMMEDIATE transaction, together with
 * meta.schema_version = i + 1 and PRAGMA application_id.
 * PostgreSQL: state_pg_steps[] takes a store from version `from` to `to`; a fresh
 * store starts at the current version in one step. pg/migrate.c applies each in its own
 * transaction (with an advisory lock), together with meta.schema_version and
 * meta.application_id.
 * Steps are append-only: a released step is never edited (see
 * docs/internals/state.md, "Migrations").
 */
#ifndef JOEY_STATE_SCHEMA_H
#define JOEY_STATE_SCHEMA_H

#include <stddef.h>

extern const char *const state_migrations[];
extern const size_t state_n_migrations;

struct state_pg_step {
	int from, to;
	const char *sql; /* statements, run in the store's schema (search_path) */
};
extern const struct state_pg_step state_pg_steps[];
extern const size_t state_pg_n_steps;

#endif
