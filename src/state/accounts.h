/*
 * accounts.h: the people and programs allowed into `joey serve`, and what they did.
 *
 * One SQLite file of its own, <state dir>/accounts.db (beside secrets.json: see
 * accounts_path_for), created 0600 in a 0700 directory, holds:
 *   - users: a name, a role and an Argon2id password hash (libsodium crypto_pwhash_str);
 *   - sessions: a browser login, stored as the BLAKE2b hash of its cookie value, with
 *     its CSRF token, creation and last-use times (idle and absolute expiry);
 *   - API tokens: personal tokens for automation, each with a role no higher than its
 *     owner's, stored as a hash (the token itself is shown once), revocable;
 *   - the audit log: who changed what, when, from where, before and after (the caller
 *     masks secrets before handing them here).
 * The file is separate from the state store so that a PostgreSQL state store shared by
 * workers does not need it, and so that `joey user` works without the config.
 *
 * Every function takes the handle's mutex: one handle serves all of serve's threads.
 * Strings passed in are borrowed; JSON handed out is owned by the caller.
 */
#ifndef JOEY_STATE_ACCOUNTS_H
#define JOEY_STATE_ACCOUNTS_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "base/compat.h"
#include "base/error.h"

/* Roles, in order: each can do what the ones below it can. */
enum acct_role {
	ROLE_NONE = 0, /* not signed in */
	ROLE_VIEWER,   /* reads everything but secrets and the audit log */
	ROLE_EDITOR,   /* models, sources, properties, groups, destinations, schedules, runs */
	ROLE_ADMIN,    /* apps and their keys, accounts, tokens, the audit log */
};

/* "viewer", "editor", "admin" ("none" for ROLE_NONE). */
const char *acct_role_name(enum acct_role r);
/* The role named s, or ROLE_NONE. */
enum acct_role acct_role_parse(const char *s);

#define ACCT_NAME_MAX 64
#define ACCT_PASSWORD_MIN 10
#define ACCT_PASSWORD_MAX 1024
#define ACCT_SECRET_HEX 64   /* cookie values and CSRF tokens: 32 random bytes in hex */
#define ACCT_TOKEN_PREFIX "joey_"
#define ACCT_TOKEN_LEN (5 + 48) /* "joey_" and 24 random bytes in hex */

/* Who a request or command acts as. */
struct acct_principal {
	char user[ACCT_NAME_MAX + 1];
	enum acct_role role;
	const char *via;              /* static: "session", "token", "env-token", "cli", "setup" */
	int64_t token_id;             /* via "token" */
	char csrf[ACCT_SECRET_HEX + 1]; /* via "session": what state-changing requests must echo */
};

struct accounts;

/* nbytes (at most 32) random bytes as 2 * nbytes hex digits and a NUL into out. */
void acct_random_hex(char *out, size_t nbytes);
/* The BLAKE2b-256 of s as 64 hex digits and a NUL into out: how secrets are kept. */
void acct_hash_hex(const char *s, char *out);

/*
 * The accounts file for a secrets file path: the same directory, "accounts.db"
 * (JOEY_ACCOUNTS overrides). Owned by the caller.
 */
char *accounts_path_for(const char *secrets_path);

/*
 * Open (create: also create the file, its directory 0700 and the schema). A file that
 * group or others can read is refused (JERR_CONFIG with a chmod hint).
 */
enum jerr accounts_open(const char *path, bool create, struct accounts **out, struct jerror *err) JOEY_WUR;
void accounts_close(struct accounts *a);

/* ---- users ---- */

/* Is name a valid user name ([A-Za-z0-9_.@-], 1..64, not starting with '-')? */
bool acct_name_valid(const char *name);
/* NULL if password is acceptable, else why not (static text). */
const char *acct_password_problem(const char *password);

/* Add a user (JERR_USAGE: invalid name or password, or the name is taken). */
enum jerr accounts_user_add(struct accounts *a, const char *name, enum acct_role role, const char *password,
			    struct jerror *err) JOEY_WUR;
/* Set a password; the user's sessions end (JERR_USAGE: no such user, weak password). */
enum jerr accounts_user_passwd(struct accounts *a, const char *name, const char *password,
			       struct jerror *err) JOEY_WUR;
/*
 * Change a role; the user's sessions end and tokens above the new role are revoked.
 * The last admin cannot be demoted (JERR_USAGE).
 */
enum jerr accounts_user_role(struct accounts *a, const char *name, enum acct_role role,
			     struct jerror *err) JOEY_WUR;
/* Remove a user with their sessions and tokens; never the last admin (JERR_USAGE). */
enum jerr accounts_user_remove(struct accounts *a, const char *name, struct jerror *err) JOEY_WUR;
/* [{name, role, created_at, updated_at, last_login_at}] by name. */
enum jerr accounts_user_list(struct accounts *a, json_t **out, struct jerror *err) JOEY_WUR;
/* The role of a user, ROLE_NONE if there is none. */
enum jerr accounts_user_get(struct accounts *a, const char *name, enum acct_role *role, struct jerror *err) JOEY_WUR;
/* How many users there are. */
enum jerr accounts_user_count(struct accounts *a, int64_t *n, struct jerror *err) JOEY_WUR;
/*
 * Check a password. *ok false for an unknown user or a wrong password, after the same
 * work either way (a dummy hash is verified for an unknown name). On success *role is
 * set and last_login_at updated.
 */
enum jerr accounts_login(struct accounts *a, const char *name, const char *password, bool *ok,
			 enum acct_role *role, struct jerror *err) JOEY_WUR;

/* ---- sessions ---- */

/* A new session for user: cookie and csrf (ACCT_SECRET_HEX + 1 bytes each) filled. */
enum jerr accounts_session_create(struct accounts *a, const char *user, const char *addr, char *cookie,
				  char *csrf, struct jerror *err) JOEY_WUR;
/*
 * The session of a cookie value, if it exists, its user still exists and it is not
 * idle longer than idle_ms nor older than max_ms (an expired one is deleted); its
 * last use becomes now. *found false otherwise.
 */
enum jerr accounts_session_get(struct accounts *a, const char *cookie, int64_t now, int64_t idle_ms, int64_t max_ms,
			       struct acct_principal *p, bool *found, struct jerror *err) JOEY_WUR;
/* End a session (logout); no error if it does not exist. */
enum jerr accounts_session_delete(struct accounts *a, const char *cookie, struct jerror *err) JOEY_WUR;

/* ---- API tokens ---- */

/*
 * A new token for user with role (at most the user's own: JERR_USAGE otherwise) and a
 * label; plaintext (ACCT_TOKEN_LEN + 1 bytes) is the token, to be shown once.
 */
enum jerr accounts_token_create(struct accounts *a, const char *user, const char *label, enum acct_role role,
				char *plaintext, int64_t *id, struct jerror *err) JOEY_WUR;
/* The principal of a token (not revoked, owner still there; role capped by the owner's). */
enum jerr accounts_token_get(struct accounts *a, const char *plaintext, struct acct_principal *p, bool *found,
			     struct jerror *err) JOEY_WUR;
/* [{id, user, label, role, prefix, created_at, last_used_at, revoked_at}], user NULL: all. */
enum jerr accounts_token_list(struct accounts *a, const char *user, json_t **out, struct jerror *err) JOEY_WUR;
/* Revoke token id (only user's own when user is not NULL); *found false if no such token. */
enum jerr accounts_token_revoke(struct accounts *a, int64_t id, const char *user, bool *found,
				struct jerror *err) JOEY_WUR;

/* ---- the audit log ---- */

/*
 * Record a change: who (p; NULL: "system"), from where (addr, may be NULL), the action
 * ("config.update", "run.start", "user.add", ...), the object (class and id, may be
 * NULL) and its state before and after (borrowed, may be NULL; secrets already masked).
 */
enum jerr accounts_audit_add(struct accounts *a, const struct acct_principal *p, const char *addr,
			     const char *action, const char *object_class, const char *object_id,
			     const json_t *before, const json_t *after, struct jerror *err) JOEY_WUR;
/* Newest first: at most limit entries with id < before_id (0: from the newest). */
enum jerr accounts_audit_list(struct accounts *a, int64_t limit, int64_t before_id, json_t **out,
			      struct jerror *err) JOEY_WUR;

#endif
