/*
 * auth.c: who is asking, and may they (docs/api.md "Accounts", docs/security.md).
 *
 * A request is somebody through exactly one of:
 *   - "Authorization: Bearer <t>" (or X-Joey-Token): a personal API token
 *     (accounts.h) or JOEY_API_TOKEN (admin; at least 32 characters beyond loopback);
 *   - the joey_session cookie of a login (HttpOnly, SameSite=Strict, Secure under
 *     TLS; idle and absolute expiry). A state-changing request on a session must send
 *     the session's CSRF token in X-CSRF-Token and, when it sends Origin, our own.
 * Nobody else reads anything but /healthz, the UI's static files (which carry no
 * credential) and the session routes; on loopback too.
 * Logins are rate-limited per address and per user name. With no account yet, serve
 * prints a one-time setup link (valid once, for SETUP_VALID_MS) that creates the
 * first admin. Every change is written to the audit log (auth_audit).
 */
#include <arpa/inet.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "base/log.h"
#include "base/strbuf.h"
#include "base/timeutil.h"
#include "base/xalloc.h"
#include "server/serverp.h"
#include "state/accounts.h"

#define SETUP_VALID_MS (30 * 60 * 1000)
#define LOGIN_WINDOW_MS (15 * 60 * 1000)
#define LOGIN_MAX_PER_ADDR 30 /* above the per-user limit: an office behind one NAT address */
#define LOGIN_MAX_PER_USER 10
#define LOGIN_SLOTS 1024
#define LOGIN_MAX_INFLIGHT 4 /* password checks at once: Argon2id takes 64 MiB each */
#define SESSION_COOKIE "joey_session"

struct login_slot {
	char key[ACCT_NAME_MAX + 8]; /* "a:<addr>" or "u:<user>"; "" unused */
	int64_t window_start;
	unsigned failures;
};

struct auth {
	struct accounts *acct;
	pthread_mutex_t lock; /* slots and the setup token */
	struct login_slot slots[LOGIN_SLOTS];
	unsigned inflight;   /* password checks running */
	char setup_hash[65]; /* BLAKE2b of the setup token; "" when none is live */
	char setup_token[49];
	int64_t setup_expires;
	int64_t idle_ms, max_ms;
};

static int64_t env_seconds(const char *name, int64_t def)
{
	const char *v = getenv(name);
	char *end;
	if (!v || !*v)
		return def;
	long long n = strtoll(v, &end, 10);
	return (*end || n <= 0) ? def : (int64_t)n;
}

static bool secret_equal(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	if (la != lb)
		return false;
	return sodium_memcmp(a, b, la) == 0;
}

enum jerr auth_open(struct server *s, struct jerror *err)
{
	struct auth *a = xcalloc(1, sizeof(*a));
	pthread_mutex_init(&a->lock, NULL);
	a->idle_ms = env_seconds("JOEY_SESSION_IDLE", 60 * 60) * 1000;
	a->max_ms = env_seconds("JOEY_SESSION_MAX", 12 * 60 * 60) * 1000;
	char *path = accounts_path_for(s->opts.secrets_path ? s->opts.secrets_path : s->opts.state_path);
	enum jerr rc = accounts_open(path, true, &a->acct, err);
	free(path);
	if (rc) {
		pthread_mutex_destroy(&a->lock);
		free(a);
		return rc;
	}
	int64_t users = 0;
	if ((rc = accounts_user_count(a->acct, &users, err))) {
		accounts_close(a->acct);
		pthread_mutex_destroy(&a->lock);
		free(a);
		return rc;
	}
	if (users == 0) {
		acct_random_hex(a->setup_token, 24);
		acct_hash_hex(a->setup_token, a->setup_hash);
		a->setup_expires = time_now_ms() + SETUP_VALID_MS;
	}
	s->auth = a;
	return JERR_OK;
}

void auth_close(struct server *s)
{
	if (!s->auth)
		return;
	accounts_close(s->auth->acct);
	pthread_mutex_destroy(&s->auth->lock);
	sodium_memzero(s->auth, sizeof(*s->auth));
	free(s->auth);
	s->auth = NULL;
}

enum jerr auth_check_token(struct server *s, struct jerror *err)
{
	if (s->token && strlen(s->token) < 32 && !s->loopback) {
		jerror_set(err, JERR_CONFIG, "JOEY_API_TOKEN is too short for a server beyond loopback");
		jerror_detail(err, "it has %zu characters; at least 32 are needed when listening on %s:%u",
			      strlen(s->token), s->opts.listen_host, s->opts.listen_port);
		jerror_hint(err, "make one with: head -c 32 /dev/urandom | base64");
		return JERR_CONFIG;
	}
	return JERR_OK;
}

enum jerr auth_ready(struct server *s, struct jerror *err)
{
	struct auth *a = s->auth;
	enum jerr rc = auth_check_token(s, err);
	if (rc)
		return rc;
	if (!a)
		return JERR_OK;
	pthread_mutex_lock(&a->lock);
	if (*a->setup_hash && *a->setup_token) {
		fprintf(stderr,
			"joey serve: no accounts yet. Create the first admin within 30 minutes at\n"
			"  %s://%s/#setup=%s\n"
			"(the link works once), or with: joey user add NAME --role admin\n",
			s->tls ? "https" : "http", s->listen_desc, a->setup_token);
		sodium_memzero(a->setup_token, sizeof(a->setup_token)); /* printed once, kept hashed */
	}
	pthread_mutex_unlock(&a->lock);
	return JERR_OK;
}

struct accounts *auth_accounts(struct server *s)
{
	return s->auth ? s->auth->acct : NULL;
}

/* ---- login rate limits ---- */

/* The failures that block key ("a:..." or "u:..."). */
static unsigned slot_max(const char *key)
{
	return key[0] == 'a' ? LOGIN_MAX_PER_ADDR : LOGIN_MAX_PER_USER;
}

/*
 * The slot of key; with create, a new one if there is none: an empty slot, else the
 * oldest that blocks nobody. A slot that blocks is never given away (else a flood of
 * other names would lift a lockout): NULL when every slot blocks.
 */
static struct login_slot *slot_for(struct auth *a, const char *key, int64_t now, bool create)
{
	struct login_slot *victim = NULL;
	for (size_t i = 0; i < LOGIN_SLOTS; i++) {
		struct login_slot *sl = &a->slots[i];
		if (*sl->key && now - sl->window_start > LOGIN_WINDOW_MS)
			sl->key[0] = 0; /* its window passed */
		if (*sl->key && !strcmp(sl->key, key))
			return sl;
		if (*sl->key && sl->failures >= slot_max(sl->key))
			continue;
		if (!victim || (*victim->key && (!*sl->key || sl->window_start < victim->window_start)))
			victim = sl;
	}
	if (!create || !victim)
		return NULL;
	snprintf(victim->key, sizeof(victim->key), "%s", key);
	victim->window_start = now;
	victim->failures = 0;
	return victim;
}

/* Seconds until key may try again, 0 if it may now. */
static int64_t login_blocked(struct auth *a, const char *key, unsigned max, int64_t now)
{
	struct login_slot *sl = slot_for(a, key, now, false);
	if (!sl || sl->failures < max)
		return 0;
	return (sl->window_start + LOGIN_WINDOW_MS - now) / 1000 + 1;
}

/* Count an attempt for key before its password is checked; false: no slot is free. */
static bool login_reserve(struct auth *a, const char *key, int64_t now)
{
	struct login_slot *sl = slot_for(a, key, now, true);
	if (!sl)
		return false;
	sl->failures++;
	return true;
}

/* The attempt succeeded: it does not count. */
static void login_release(struct auth *a, const char *key, int64_t now)
{
	struct login_slot *sl = slot_for(a, key, now, false);
	if (sl && sl->failures)
		sl->failures--;
}

/* A 500 for someone who may be nobody: the detail goes to the log only. */
static void reply_internal(struct reply *out, struct jerror *err)
{
	log_error("accounts: %s%s%s", err->msg.buf, err->detail.len ? ": " : "", err->detail.len ? err->detail.buf : "");
	jerror_release(err);
	reply_error(out, 500, "the accounts store failed", NULL, "see the server's log");
}

/* ---- requests ---- */

/* The value of cookie name in a Cookie header, copied into out; false if absent. */
static bool cookie_value(const char *hdr, const char *name, char *out, size_t cap)
{
	size_t nl = strlen(name);
	for (const char *p = hdr; p && *p;) {
		while (*p == ' ' || *p == ';')
			p++;
		const char *end = strchr(p, ';');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		if (len > nl && !strncmp(p, name, nl) && p[nl] == '=') {
			size_t vl = len - nl - 1;
			if (vl >= cap)
				return false;
			memcpy(out, p + nl + 1, vl);
			out[vl] = 0;
			return true;
		}
		p = end;
	}
	return false;
}

/* The bearer token the request carries, or NULL. */
static const char *request_token(const struct req *r)
{
	const char *h = r->authorization;
	if (h && !strncasecmp(h, "Bearer ", 7)) {
		h += 7;
		while (*h == ' ')
			h++;
		return h;
	}
	return r->x_token;
}

static bool is_mutating(const char *method)
{
	return strcmp(method, "GET") && strcmp(method, "HEAD") && strcmp(method, "OPTIONS");
}

/* Does the Origin header (if any) name this server as the request's Host does? */
static bool origin_ok(const struct server *s, const struct req *r)
{
	if (!r->origin)
		return true; /* not a browser's cross-site request (they always send Origin on POST) */
	/* behind a TLS proxy the browser's origin is the public one (--public-url) */
	const char *pub = s->opts.public_url;
	if (pub && *pub) {
		size_t n = strlen(pub);
		while (n && pub[n - 1] == '/')
			n--;
		if (strlen(r->origin) == n && !strncasecmp(r->origin, pub, n))
			return true;
	}
	const char *want = s->tls ? "https://" : "http://";
	size_t wl = strlen(want);
	if (strncasecmp(r->origin, want, wl) || !r->host)
		return false;
	return !strcasecmp(r->origin + wl, r->host);
}

static void reply_401(struct reply *out, const char *error, const char *detail)
{
	reply_error(out, 401, error, detail,
		    "sign in at the UI, or send \"Authorization: Bearer <token>\" with a personal API token "
		    "(UI: Account > API tokens; CLI: joey user token) or JOEY_API_TOKEN");
}

bool auth_identify(struct server *s, struct req *r, struct reply *out)
{
	struct auth *a = s->auth;
	struct jerror err = JERROR_INIT;
	memset(&r->who, 0, sizeof(r->who));
	r->who.role = ROLE_NONE;
	const char *t = request_token(r);
	if (t) {
		if (s->token && secret_equal(t, s->token)) {
			snprintf(r->who.user, sizeof(r->who.user), "JOEY_API_TOKEN");
			r->who.role = ROLE_ADMIN;
			r->who.via = "env-token";
			return true;
		}
		bool found = false;
		if (a && accounts_token_get(a->acct, t, &r->who, &found, &err)) {
			log_error("%s", err.msg.buf);
			jerror_release(&err);
			reply_error(out, 500, "the accounts store failed", NULL, "see the server's log");
			return false;
		}
		if (!found) {
			memset(&r->who, 0, sizeof(r->who));
			reply_401(out, "invalid API token", "the token is unknown, revoked, or its owner was removed");
			return false;
		}
		return true;
	}
	char cookie[ACCT_SECRET_HEX + 8];
	if (r->cookie && cookie_value(r->cookie, SESSION_COOKIE, cookie, sizeof(cookie)) && a) {
		bool found = false;
		if (accounts_session_get(a->acct, cookie, time_now_ms(), a->idle_ms, a->max_ms, &r->who, &found,
					 &err)) {
			log_error("%s", err.msg.buf);
			jerror_release(&err);
			reply_error(out, 500, "the accounts store failed", NULL, "see the server's log");
			return false;
		}
		sodium_memzero(cookie, sizeof(cookie));
		if (!found) {
			memset(&r->who, 0, sizeof(r->who));
			/* an expired session is anonymous: the UI shows the login page */
			r->session_expired = true;
		}
	}
	if (is_mutating(r->method)) {
		if (!origin_ok(s, r)) {
			reply_error(out, 403, "cross-site request refused", "the Origin header names another site",
				    "use the UI at this server's own address");
			return false;
		}
		if (r->who.role != ROLE_NONE && !strcmp(r->who.via, "session") &&
		    (!r->csrf || !secret_equal(r->csrf, r->who.csrf))) {
			reply_error(out, 403, "missing or wrong CSRF token",
				    "a change made with a login session must send the session's X-CSRF-Token header",
				    "GET /api/v1/session returns it");
			return false;
		}
	}
	return true;
}

bool auth_allows(struct req *r, struct reply *out, enum acct_role min)
{
	if (min == ROLE_NONE || r->who.role >= min)
		return true;
	if (r->who.role == ROLE_NONE) {
		reply_401(out, r->session_expired ? "your session has ended" : "sign in required",
			  r->session_expired ? "sessions end after a time without use, and at the latest after a "
					       "fixed time"
					     : "nothing here is readable without an account, also from this machine");
		return false;
	}
	char d[160];
	snprintf(d, sizeof(d), "you are signed in as \"%s\" (%s); this needs %s", r->who.user,
		 acct_role_name(r->who.role), acct_role_name(min));
	reply_error(out, 403, "not allowed for your role", d, "ask an admin for a higher role");
	return false;
}

void auth_audit(struct req *r, const char *action, const char *cls, const char *id, const json_t *before,
		const json_t *after)
{
	struct accounts *acct = auth_accounts(r->s);
	if (!acct)
		return;
	struct jerror err = JERROR_INIT;
	if (accounts_audit_add(acct, r->who.role != ROLE_NONE ? &r->who : NULL, r->remote_addr, action, cls, id,
			       before, after, &err)) {
		log_error("audit log: %s was not recorded: %s", action, err.msg.buf);
		jerror_release(&err);
	}
}

/* ---- session routes ---- */

static void set_session_cookie(struct server *s, struct reply *out, const char *value, int64_t max_age_s)
{
	struct strbuf c = STRBUF_INIT;
	strbuf_addf(&c, SESSION_COOKIE "=%s; Path=/; HttpOnly; SameSite=Strict; Max-Age=%lld%s", value,
		    (long long)max_age_s,
		    s->tls || (s->opts.public_url && !strncasecmp(s->opts.public_url, "https://", 8)) ? "; Secure" : "");
	free(out->set_cookie);
	out->set_cookie = strbuf_detach(&c, NULL);
}

static json_t *who_json(const struct req *r)
{
	if (r->who.role == ROLE_NONE)
		return json_null();
	return json_pack("{s:s,s:s,s:s}", "name", r->who.user, "role", acct_role_name(r->who.role), "via",
			 r->who.via ? r->who.via : "");
}

void api_session(struct req *r, struct reply *out)
{
	struct auth *a = r->s->auth;
	pthread_mutex_lock(&a->lock);
	bool setup = *a->setup_hash && time_now_ms() < a->setup_expires;
	pthread_mutex_unlock(&a->lock);
	json_t *j = json_pack("{s:o,s:b,s:b}", "user", who_json(r), "setup_pending", setup, "session_expired",
			      r->session_expired);
	if (r->who.role != ROLE_NONE && r->who.via && !strcmp(r->who.via, "session"))
		json_object_set_new(j, "csrf", json_string(r->who.csrf));
	reply_json(out, 200, j);
}

/* Start a session for user (role) and answer 200/201 with it. */
static void start_session(struct req *r, struct reply *out, const char *user, enum acct_role role, unsigned status)
{
	struct auth *a = r->s->auth;
	char cookie[ACCT_SECRET_HEX + 1], csrf[ACCT_SECRET_HEX + 1];
	struct jerror err = JERROR_INIT;
	if (accounts_session_create(a->acct, user, r->remote_addr, cookie, csrf, &err)) {
		reply_internal(out, &err);
		return;
	}
	set_session_cookie(r->s, out, cookie, a->max_ms / 1000);
	sodium_memzero(cookie, sizeof(cookie));
	reply_json(out, status,
		   json_pack("{s:{s:s,s:s,s:s},s:s}", "user", "name", user, "role", acct_role_name(role), "via",
			     "session", "csrf", csrf));
}

/* A string member of a JSON body, or NULL (400 set when required and absent or not a string). */
static const char *body_str(json_t *j, const char *name, bool required, struct reply *out)
{
	json_t *v = json_object_get(j, name);
	if (!v && !required)
		return NULL;
	if (!json_is_string(v)) {
		char m[96];
		snprintf(m, sizeof(m), "\"%s\" must be a string", name);
		reply_error(out, 400, m, NULL, NULL);
		return NULL;
	}
	return json_string_value(v);
}

/*
 * The request's JSON object if it has only the given fields, and their string members,
 * in order, into v (one per field; a field after the first `required` may be absent:
 * NULL). NULL with the 400 set at the first that is wrong; else the object, for the
 * caller to json_decref (v borrows it).
 */
static json_t *body_strings(struct req *r, struct reply *out, const char *const *fields, size_t required,
			    const char **v)
{
	json_t *j = req_json_body(r, out);
	bool ok = j && req_check_fields(j, fields, out);
	for (size_t i = 0; ok && fields[i]; i++) {
		v[i] = body_str(j, fields[i], i < required, out);
		ok = !out->status;
	}
	if (!ok) {
		json_decref(j);
		return NULL;
	}
	return j;
}

/*
 * Check user's password as a sign-in does, for sign-in and password changes: the
 * per-address and per-user limits (the attempt is counted before the slow check, so
 * requests in flight together cannot pass the limit), at most LOGIN_MAX_INFLIGHT checks
 * at once, failures in the audit log. false: *out holds the 401/429/503/500.
 */
static bool password_check(struct req *r, struct reply *out, const char *user, const char *pw, enum acct_role *role)
{
	struct auth *a = r->s->auth;
	char akey[80], ukey[ACCT_NAME_MAX + 8];
	bool valid_name = acct_name_valid(user);
	snprintf(akey, sizeof(akey), "a:%s", r->remote_addr ? r->remote_addr : "?");
	snprintf(ukey, sizeof(ukey), "u:%s", valid_name ? user : "(invalid)");
	int64_t now = time_now_ms();
	pthread_mutex_lock(&a->lock);
	int64_t wait = login_blocked(a, akey, LOGIN_MAX_PER_ADDR, now);
	int64_t wu = login_blocked(a, ukey, LOGIN_MAX_PER_USER, now);
	bool busy = a->inflight >= LOGIN_MAX_INFLIGHT;
	if (wu > wait)
		wait = wu;
	bool reserved = !wait && !busy && login_reserve(a, akey, now);
	if (reserved && !login_reserve(a, ukey, now)) {
		login_release(a, akey, now);
		reserved = false;
	}
	if (reserved)
		a->inflight++;
	pthread_mutex_unlock(&a->lock);
	if (wait || !reserved) {
		char d[128];
		if (!wait)
			wait = busy ? 1 : LOGIN_WINDOW_MS / 1000;
		snprintf(d, sizeof(d), "%s; try again in %lld s",
			 busy ? "too many sign-ins are being checked right now"
			      : "too many failed sign-ins from this address or for this user",
			 (long long)wait);
		out->retry_after = (unsigned)wait;
		reply_error(out, busy ? 503 : 429, busy ? "the server is busy" : "too many sign-in attempts", d,
			    busy ? NULL : "an admin can set a new password: joey user passwd");
		return false;
	}
	bool ok = false;
	struct jerror err = JERROR_INIT;
	enum jerr rc = valid_name ? accounts_login(a->acct, user, pw, &ok, role, &err) : JERR_OK;
	pthread_mutex_lock(&a->lock);
	a->inflight--;
	if (ok) {
		login_release(a, akey, now);
		login_release(a, ukey, now);
	}
	pthread_mutex_unlock(&a->lock);
	if (rc) {
		reply_internal(out, &err);
		return false;
	}
	if (!ok) {
		struct acct_principal who = { .role = ROLE_NONE, .via = "login" };
		snprintf(who.user, sizeof(who.user), "%s", valid_name ? user : "(invalid user name)");
		struct jerror aerr = JERROR_INIT;
		if (accounts_audit_add(a->acct, &who, r->remote_addr, "session.login_failed", "user", who.user, NULL,
				       NULL, &aerr))
			jerror_release(&aerr);
		reply_error(out, 401, "wrong user name or password", NULL,
			    "an admin can set a new password: joey user passwd NAME");
		return false;
	}
	return true;
}

void act_login(struct req *r, struct reply *out)
{
	static const char *const fields[] = { "user", "password", NULL };
	const char *v[2];
	json_t *j = body_strings(r, out, fields, 2, v);
	if (!j)
		return;
	const char *user = v[0], *pw = v[1];
	enum acct_role role = ROLE_NONE;
	if (password_check(r, out, user, pw, &role)) {
		snprintf(r->who.user, sizeof(r->who.user), "%s", user);
		r->who.role = role;
		r->who.via = "session";
		auth_audit(r, "session.login", "user", user, NULL, NULL);
		start_session(r, out, user, role, 200);
	}
	json_decref(j);
}

void act_logout(struct req *r, struct reply *out)
{
	char cookie[ACCT_SECRET_HEX + 8];
	struct jerror err = JERROR_INIT;
	if (r->cookie && cookie_value(r->cookie, SESSION_COOKIE, cookie, sizeof(cookie))) {
		if (accounts_session_delete(r->s->auth->acct, cookie, &err)) {
			reply_jerror(out, 500, &err);
			jerror_release(&err);
			return;
		}
		if (r->who.role != ROLE_NONE)
			auth_audit(r, "session.logout", "user", r->who.user, NULL, NULL);
	}
	set_session_cookie(r->s, out, "", 0);
	reply_json(out, 200, json_pack("{s:b}", "signed_out", 1));
}

void act_setup(struct req *r, struct reply *out)
{
	static const char *const fields[] = { "token", "user", "password", NULL };
	struct auth *a = r->s->auth;
	const char *v[3];
	json_t *j = body_strings(r, out, fields, 3, v);
	if (!j)
		return;
	const char *tok = v[0], *user = v[1], *pw = v[2];
	char h[65];
	acct_hash_hex(tok, h);
	pthread_mutex_lock(&a->lock);
	bool live = *a->setup_hash && time_now_ms() < a->setup_expires;
	bool match = live && secret_equal(h, a->setup_hash);
	pthread_mutex_unlock(&a->lock);
	if (!match) {
		reply_error(out, 403, live ? "wrong setup link" : "no setup link is valid",
			    live ? NULL : "the link works once, for 30 minutes after the first start",
			    "create an admin with: joey user add NAME --role admin");
		json_decref(j);
		return;
	}
	const char *why = acct_password_problem(pw);
	if (why || !acct_name_valid(user)) { /* the link stays valid for another try */
		reply_error(out, 400, why ? why : "invalid user name",
			    why ? NULL : "use 1 to 64 letters, digits, '_', '.', '@' or '-'", NULL);
		json_decref(j);
		return;
	}
	/* used once: whoever gets here first; a second request finds no live link */
	pthread_mutex_lock(&a->lock);
	match = *a->setup_hash && secret_equal(h, a->setup_hash);
	a->setup_hash[0] = 0;
	pthread_mutex_unlock(&a->lock);
	int64_t users = 0;
	struct jerror err = JERROR_INIT;
	if (!match || accounts_user_count(a->acct, &users, &err) || users > 0 ||
	    accounts_user_add(a->acct, user, ROLE_ADMIN, pw, &err)) {
		if (err.code == JERR_USAGE)
			reply_jerror(out, 400, &err);
		else if (err.code)
			reply_internal(out, &err);
		else
			reply_error(out, 409, "accounts exist already", NULL, "sign in instead");
		jerror_release(&err);
		json_decref(j);
		return;
	}
	snprintf(r->who.user, sizeof(r->who.user), "%s", user);
	r->who.role = ROLE_ADMIN;
	r->who.via = "setup";
	json_t *after = json_pack("{s:s}", "role", "admin");
	auth_audit(r, "user.add", "user", user, NULL, after);
	json_decref(after);
	r->who.via = "session";
	start_session(r, out, user, ROLE_ADMIN, 201);
	json_decref(j);
}

void act_password(struct req *r, struct reply *out)
{
	static const char *const fields[] = { "current_password", "new_password", NULL };
	struct auth *a = r->s->auth;
	if (!r->who.via || strcmp(r->who.via, "session")) {
		reply_error(out, 403, "sign in to change your password", "a token cannot change a password", NULL);
		return;
	}
	const char *v[2];
	json_t *j = body_strings(r, out, fields, 2, v);
	if (!j)
		return;
	const char *cur = v[0], *nw = v[1];
	enum acct_role role = ROLE_NONE;
	struct jerror err = JERROR_INIT;
	char user[ACCT_NAME_MAX + 1];
	snprintf(user, sizeof(user), "%s", r->who.user);
	if (!password_check(r, out, user, cur, &role)) {
		if (out->status == 401) /* signed in already: the current password is what was wrong */
			reply_error(out, 400, "the current password is wrong", NULL, NULL);
		json_decref(j);
		return;
	}
	if (accounts_user_passwd(a->acct, user, nw, &err)) {
		reply_jerror(out, err.code == JERR_USAGE ? 400 : 500, &err);
		jerror_release(&err);
		json_decref(j);
		return;
	}
	auth_audit(r, "user.passwd", "user", user, NULL, NULL);
	start_session(r, out, user, role, 200); /* every other session of the user has ended */
	json_decref(j);
}

/* ---- users (admin) ---- */

void api_users(struct req *r, struct reply *out)
{
	json_t *users = NULL;
	struct jerror err = JERROR_INIT;
	if (accounts_user_list(r->s->auth->acct, &users, &err)) {
		reply_jerror(out, 500, &err);
		jerror_release(&err);
		return;
	}
	reply_json(out, 200, json_pack("{s:o}", "users", users));
}

static unsigned usage_status(const struct jerror *err)
{
	return err->code == JERR_USAGE ? 400 : 500;
}

void act_user_add(struct req *r, struct reply *out)
{
	static const char *const fields[] = { "name", "role", "password", NULL };
	const char *v[3];
	json_t *j = body_strings(r, out, fields, 3, v);
	if (!j)
		return;
	const char *name = v[0], *role = v[1], *pw = v[2];
	struct jerror err = JERROR_INIT;
	enum acct_role ro = acct_role_parse(role);
	if (accounts_user_add(r->s->auth->acct, name, ro, pw, &err)) {
		reply_jerror(out, usage_status(&err), &err);
		jerror_release(&err);
	} else {
		json_t *after = json_pack("{s:s,s:s}", "name", name, "role", acct_role_name(ro));
		auth_audit(r, "user.add", "user", name, NULL, after);
		reply_json(out, 201, after);
	}
	json_decref(j);
}

void act_user_update(struct req *r, struct reply *out)
{
	static const char *const fields[] = { "role", "password", NULL };
	const char *name = r->params[0];
	const char *v[2];
	json_t *j = body_strings(r, out, fields, 0, v);
	if (!j)
		return;
	const char *role = v[0], *pw = v[1];
	if (!role && !pw) {
		reply_error(out, 400, "nothing to change", NULL, "send \"role\" and/or \"password\"");
		json_decref(j);
		return;
	}
	struct accounts *acct = r->s->auth->acct;
	struct jerror err = JERROR_INIT;
	enum acct_role before = ROLE_NONE;
	if (!accounts_user_get(acct, name, &before, &err) && before == ROLE_NONE)
		jerror_set(&err, JERR_USAGE, "no user \"%s\"", name);
	if (err.code) {
		reply_jerror(out, err.code == JERR_USAGE ? 404 : 500, &err);
		jerror_release(&err);
		json_decref(j);
		return;
	}
	enum acct_role ro = role ? acct_role_parse(role) : before;
	if ((role && accounts_user_role(acct, name, ro, &err)) || (pw && accounts_user_passwd(acct, name, pw, &err))) {
		reply_jerror(out, usage_status(&err), &err);
		jerror_release(&err);
		json_decref(j);
		return;
	}
	json_t *b = json_pack("{s:s}", "role", acct_role_name(before));
	json_t *f = json_pack("{s:s}", "role", acct_role_name(ro));
	if (pw)
		json_object_set_new(f, "password", json_string("(changed)"));
	auth_audit(r, "user.update", "user", name, b, f);
	json_decref(b);
	json_decref(f);
	reply_json(out, 200, json_pack("{s:s,s:s}", "name", name, "role", acct_role_name(ro)));
	json_decref(j);
}

void act_user_remove(struct req *r, struct reply *out)
{
	const char *name = r->params[0];
	struct accounts *acct = r->s->auth->acct;
	struct jerror err = JERROR_INIT;
	enum acct_role before = ROLE_NONE;
	if (!accounts_user_get(acct, name, &before, &err) && before == ROLE_NONE)
		jerror_set(&err, JERR_USAGE, "no user \"%s\"", name);
	if (err.code || accounts_user_remove(acct, name, &err)) {
		reply_jerror(out, before == ROLE_NONE && err.code == JERR_USAGE ? 404 : usage_status(&err), &err);
		jerror_release(&err);
		return;
	}
	json_t *b = json_pack("{s:s,s:s}", "name", name, "role", acct_role_name(before));
	auth_audit(r, "user.remove", "user", name, b, NULL);
	json_decref(b);
	reply_json(out, 200, json_pack("{s:s}", "removed", name));
}

/* ---- API tokens ---- */

/* Requests that act as a user of the accounts store (not JOEY_API_TOKEN). */
static bool needs_account(struct req *r, struct reply *out)
{
	if (r->who.via && (!strcmp(r->who.via, "session") || !strcmp(r->who.via, "token")))
		return true;
	reply_error(out, 403, "API tokens belong to a user", "JOEY_API_TOKEN is not a user",
		    "sign in as a user, or run: joey user token NAME --label LABEL");
	return false;
}

void api_tokens(struct req *r, struct reply *out)
{
	static const char *const params[] = { "all", NULL };
	if (!req_check_query(r, out, params))
		return;
	bool all = req_query(r, "all") != NULL;
	if (all && !auth_allows(r, out, ROLE_ADMIN))
		return;
	if (!all && !needs_account(r, out))
		return;
	json_t *list = NULL;
	struct jerror err = JERROR_INIT;
	if (accounts_token_list(r->s->auth->acct, all ? NULL : r->who.user, &list, &err)) {
		reply_jerror(out, 500, &err);
		jerror_release(&err);
		return;
	}
	reply_json(out, 200, json_pack("{s:o}", "tokens", list));
}

void act_token_create(struct req *r, struct reply *out)
{
	static const char *const fields[] = { "label", "role", NULL };
	if (!needs_account(r, out))
		return;
	const char *v[2];
	json_t *j = body_strings(r, out, fields, 1, v);
	if (!j)
		return;
	const char *label = v[0], *role = v[1];
	enum acct_role ro = role ? acct_role_parse(role) : r->who.role;
	if (ro > r->who.role) /* a token made with a token is capped by that token's role */
		ro = ROLE_NONE;
	char tok[ACCT_TOKEN_LEN + 1];
	int64_t id = 0;
	struct jerror err = JERROR_INIT;
	if (ro == ROLE_NONE && role && acct_role_parse(role) != ROLE_NONE) {
		reply_error(out, 403, "a token cannot have a higher role than the one creating it", NULL, NULL);
	} else if (accounts_token_create(r->s->auth->acct, r->who.user, label, ro, tok, &id, &err)) {
		reply_jerror(out, usage_status(&err), &err);
		jerror_release(&err);
	} else {
		json_t *after = json_pack("{s:I,s:s,s:s,s:s%}", "id", (json_int_t)id, "label", label, "role",
					  acct_role_name(ro), "prefix", tok, (size_t)13);
		char ids[32];
		snprintf(ids, sizeof(ids), "%lld", (long long)id);
		auth_audit(r, "token.create", "token", ids, NULL, after);
		json_object_set_new(after, "token", json_string(tok));
		sodium_memzero(tok, sizeof(tok));
		reply_json(out, 201, after);
	}
	json_decref(j);
}

void act_token_revoke(struct req *r, struct reply *out)
{
	long long id;
	if (!req_param_id(r, out, "a token id is a positive integer", NULL, &id))
		return;
	bool admin = r->who.role == ROLE_ADMIN;
	if (!admin && !needs_account(r, out))
		return;
	bool found = false;
	struct jerror err = JERROR_INIT;
	if (accounts_token_revoke(r->s->auth->acct, id, admin ? NULL : r->who.user, &found, &err)) {
		reply_jerror(out, 500, &err);
		jerror_release(&err);
		return;
	}
	if (!found) {
		reply_error(out, 404, "no such token", "it does not exist, is revoked already, or is not yours", NULL);
		return;
	}
	auth_audit(r, "token.revoke", "token", r->params[0], NULL, NULL);
	reply_json(out, 200, json_pack("{s:I}", "revoked", (json_int_t)id));
}

/* ---- the audit log (admin) ---- */

void api_audit(struct req *r, struct reply *out)
{
	static const char *const params[] = { "limit", "before", NULL };
	uint64_t limit, before;
	if (!req_check_query(r, out, params) || !req_query_uint(r, out, "limit", 100, 1000, &limit) ||
	    !req_query_uint(r, out, "before", 0, INT64_MAX, &before))
		return;
	json_t *list = NULL;
	struct jerror err = JERROR_INIT;
	if (accounts_audit_list(r->s->auth->acct, (int64_t)limit, (int64_t)before, &list, &err)) {
		reply_jerror(out, 500, &err);
		jerror_release(&err);
		return;
	}
	size_t n = json_array_size(list); /* collect_rows keeps a row it cannot show: n counts every row */
	json_t *last = n ? json_array_get(list, n - 1) : NULL;
	json_t *next = n == limit && last ? json_integer(json_integer_value(json_object_get(last, "id"))) : json_null();
	reply_json(out, 200, json_pack("{s:o,s:o}", "entries", list, "next_before", next));
}
