/*
 * sim.h: braze-sim, a Braze REST API simulator for joey's tests (loopback only).
 *
 * Modules, in call order:
 *   main.c    command line, signals, max lifetime, state file load/dump
 *   server.c  libmicrohttpd glue: routing, auth, body limits, rate limits, faults,
 *             latency, request log, stats and the /_sim/ control API
 *   braze.c   the Braze endpoints (validation, response shapes)
 *   store.c   the user store (hash maps, attribute values, JSON views of a user)
 *   json_fast.c  request bodies read as jansson values, faster than json_loadb
 *
 * Concurrency: libmicrohttpd runs one thread per connection. JSON bodies are parsed
 * outside any lock; sim.lock guards the store, config, faults and counters and is held
 * while an endpoint runs. The request log has its own lock (sim.log_lock).
 * See README.md for the contract (braze-api.md §9) and what is simplified.
 */
#ifndef BRAZE_SIM_H
#define BRAZE_SIM_H

#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "base/strbuf.h"

#define SIM_MAX_BODY ((size_t)4 * 1024 * 1024) /* 4 MiB; larger -> 413 */
#define SIM_MAX_STRING 255                     /* characters kept in a string value */
#define SIM_MAX_EXTERNAL_ID 987                /* bytes */
#define SIM_MAX_IDS 50                         /* delete, export/ids, identify, ... */

/* ---- open-addressing string map (store.c) ---- */
struct smap_ent {
	const char *key; /* borrowed: must outlive the entry */
	uint64_t hash;
	void *val;
};
struct smap {
	struct smap_ent *e;
	size_t cap, n;
};
uint64_t smap_hash(const char *s);
void *smap_get(const struct smap *m, const char *key);
void smap_put(struct smap *m, const char *key, void *val); /* replaces */
void smap_del(struct smap *m, const char *key);
void smap_release(struct smap *m);

/* ---- users (store.c) ---- */
enum val_type { V_STR, V_INT, V_REAL, V_BOOL, V_JSON };

struct attr {
	const char *key; /* interned (store_intern), never freed individually */
	uint8_t type;    /* enum val_type */
	bool custom;
	union {
		char *s;   /* owned */
		long long i;
		double d;
		bool b;
		json_t *j; /* owned reference: arrays, objects */
	} u;
};

struct alias {
	char *name, *label;
	char *mapkey; /* "label\x1fname", key of store.by_alias */
};

struct subgrp {
	char id[37];
	bool subscribed;
};

enum sub_state { SUB_SUBSCRIBED, SUB_OPTED_IN, SUB_UNSUBSCRIBED };

struct user {
	char *external_id; /* NULL for anonymous (alias-only, email-only) profiles */
	char **old_ids;    /* deprecated external ids (after rename), still resolve */
	struct alias *aliases;
	struct attr *attrs;
	struct subgrp *groups;
	uint32_t n_old, n_aliases, n_attrs, a_attrs, n_groups;
	uint8_t email_sub, push_sub; /* enum sub_state */
	uint16_t random_bucket;
	int64_t created_ms;
	uint64_t updated_seq; /* for "most recently updated" */
	char braze_id[25];
};

struct store {
	struct smap by_ext;   /* external ids and deprecated ids -> user */
	struct smap by_braze; /* braze_id -> user (holds every user) */
	struct smap by_alias; /* alias mapkey -> user */
	struct smap interned; /* attribute key strings */
	uint64_t seq;
	uint64_t rng;
	uint64_t n_created;
	uint64_t seed;
	bool seeded;
};

void store_init(struct store *st, bool seeded, uint64_t seed);
void store_release(struct store *st);
size_t store_count(const struct store *st);
const char *store_intern(struct store *st, const char *key);

struct user *store_find_ext(struct store *st, const char *id); /* incl. deprecated ids */
/* Start loading the map slot of id, so that a store_find_ext soon after does not wait
 * for memory (a request's 75 lookups then overlap instead of queueing). */
void store_prefetch_ext(const struct store *st, const char *id);
struct user *store_find_braze(struct store *st, const char *id);
struct user *store_find_alias(struct store *st, const char *name, const char *label);
/* Braze's email/phone resolution: most recently updated with an external id, else
 * most recently updated. field is "email" or "phone". Linear scan. */
struct user *store_find_by(struct store *st, const char *field, const char *value);
/* Every user whose field equals value (caller frees the array). */
struct user **store_find_all_by(struct store *st, const char *field, const char *value, size_t *n);

/* New profile (external_id copied, may be NULL) with fresh braze_id and defaults. */
struct user *store_create(struct store *st, const char *external_id);
void store_delete(struct store *st, struct user *u);
void store_touch(struct store *st, struct user *u);
/* Make new_id the primary id of u and keep the old one as deprecated. */
void store_rename(struct store *st, struct user *u, const char *new_id);
bool store_remove_deprecated(struct store *st, const char *id);
void store_add_alias(struct store *st, struct user *u, const char *name, const char *label);
/* Fold src into dst (fields only on src, aliases, groups), then delete src. */
void store_merge(struct store *st, struct user *dst, struct user *src);
/* All users sorted by external_id (anonymous last, by braze_id); caller frees. */
struct user **store_sorted(struct store *st, size_t *n);

struct attr *user_attr(struct user *u, const char *key);
/* user_attr of a key already interned (store_intern): no hashing. */
struct attr *user_attr_k(struct user *u, const char *ikey);
/* Room for n more attributes. */
void user_reserve(struct user *u, uint32_t n);
/* Set key to a copy of the scalar/JSON value v (borrowed); v must not be null. */
void user_set(struct store *st, struct user *u, const char *key, bool custom, json_t *v);
/* user_set of a key already interned (store_intern). */
void user_set_k(struct user *u, const char *ikey, bool custom, json_t *v);
void user_unset(struct user *u, const char *key);
json_t *attr_json(const struct attr *a); /* new reference */
void user_set_group(struct user *u, const char *id, bool subscribed);
int user_group_state(const struct user *u, const char *id); /* -1 unknown, 0 unsub, 1 sub */

const char *sub_state_name(int s);
int sub_state_parse(const char *s); /* -1 when invalid */

/* JSON view of a user. fields: NULL = every field (export), else the fields_to_export
 * array (borrowed). dump = the /_sim/users and state-file form (adds subscription
 * groups and deprecated ids). Returns a new reference. */
json_t *user_to_json(const struct user *u, const json_t *fields, bool dump, bool dob_iso);

/* ---- configuration, counters, faults (server.c) ---- */
enum sim_bucket { B_TRACK, B_EXPORT, B_DELETE, B_SUBSCRIPTION, B_RENAME, B_DEFAULT, B__COUNT };
enum track_cap { CAP_PER_ARRAY_75, CAP_TOTAL_75, CAP_TOTAL_50 };

struct rate {
	long limit;
	long window_s;
	int64_t window_start;
	long used;
	long peak; /* the most counted in one window (since start or reset) */
};

struct apikey {
	char *key;
	char **perms; /* NULL = every permission */
	size_t n_perms;
};

struct fault {
	char endpoint[32]; /* route name or "*" */
	char action[32];   /* "status", "reset_connection", "apply_then_timeout", ... */
	int status;
	long count;
	long delay_ms;
	long retry_after;
	bool apply;
	bool bare; /* a 429 with no rate-limit header at all ("headers": false) */
};

struct row_error {
	char *external_id;
	char *type;
};

struct sim_stats {
	json_t *by_endpoint; /* {name: {"total": n, "status": {"201": n}}} */
	unsigned long long requests;
	unsigned long long track_requests, track_objects_sum, track_objects_max;
	unsigned long long attributes, events, purchases;
	unsigned long long data_points, rate_limited, faults_injected, strings_truncated;
	unsigned long long nested_dropped;
};

struct sim {
	pthread_mutex_t lock;
	/* config (changeable through /_sim/config) */
	struct apikey *keys;
	size_t n_keys;
	struct rate rates[B__COUNT];
	enum track_cap track_cap;
	long latency_ms;
	bool mau_headers;       /* 429: only X-Ratelimit-Retry-After; Reset as delta */
	bool reset_delta;       /* X-RateLimit-Reset as seconds remaining */
	bool lowercase_headers; /* header names as over HTTP/2 */
	long array_cap;         /* string array length cap, oldest dropped */
	bool string_error;      /* strings > 255: per-object error instead of truncation */
	bool dollar_ignore;     /* "$key" custom attributes: ignore instead of error */
	bool require_fields;    /* export/ids: fields_to_export required */
	bool dob_date_only;     /* export dob as YYYY-MM-DD */
	long v2_max_entries;
	long stall_ms;          /* never_ending: give up after this */
	bool echo_key;          /* error texts quote the key sent (joey must mask it) */
	char **blocklist;
	size_t n_blocklist;
	json_t *groups; /* registry {uuid: {"channel": .., "name": ..}} or NULL = any UUID */

	struct store store;
	struct sim_stats stats;
	struct fault *faults;
	size_t n_faults;
	struct row_error *row_errors;
	size_t n_row_errors;

	/* request log */
	pthread_mutex_t log_lock;
	struct logent {
		uint64_t seq;
		const char *endpoint; /* route name (static) */
		char *line;           /* one JSON object, no newline (owned) */
		size_t len;
	} *log;                       /* ring of the newest log_keep entries */
	size_t log_keep, log_head, log_n;
	size_t log_bytes, log_max_bytes;
	uint64_t log_next_seq;
	FILE *log_file;
	bool quiet;
};

extern struct sim sim;
extern volatile int sim_stopping;

/* Sleep ms, waking early when the simulator is stopping. */
void sim_sleep_ms(long ms);
/* Epoch milliseconds now. */
int64_t sim_now_ms(void);

/* ---- endpoints (braze.c) ---- */
struct call {
	json_t *body;   /* parsed POST body (borrowed), NULL for GET */
	json_t *query;  /* GET args: {name: [values...]}, "x[]" stored under "x" */
	json_t *resp;   /* out: response object (owned by the call) */
	int status;     /* out */
};
typedef void (*endpoint_fn)(struct call *c);

void ep_track(struct call *c);
void ep_delete(struct call *c);
void ep_export_ids(struct call *c);
void ep_sub_set(struct call *c);
void ep_sub_set_v2(struct call *c);
void ep_sub_get(struct call *c);
void ep_sub_user_status(struct call *c);
void ep_rename(struct call *c);
void ep_remove(struct call *c);
void ep_identify(struct call *c);
void ep_alias_new(struct call *c);
void ep_merge(struct call *c);
void ep_campaigns(struct call *c);

/* Seed users (the /_sim/users and state-file form); caller holds the lock.
 * Returns the number loaded, or -1 with *err set (static string). */
long sim_load_users(const json_t *users, const char **err);
/* {"users": [...]} of every user, sorted; caller holds the lock. New reference. */
json_t *sim_dump_users(void);

/* ---- server.c ---- */
struct MHD_Daemon;
struct MHD_Daemon *server_start(const char *host, unsigned port, unsigned *bound_port);
void server_stop(struct MHD_Daemon *d);
bool sim_parse_rate(const char *spec, enum sim_bucket *b, long *limit, long *window);
bool sim_parse_cap(const char *s, enum track_cap *cap);
void sim_stats_reset(void);
/* Install jansson's allocator (a per-thread arena for request bodies); call first. */
void sim_memory_init(void);

#endif
