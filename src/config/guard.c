/* guard.c: the limits on app changes made through the API (keys stay with their host, Braze endpoints, data directory). */
#include "config/guard.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/strbuf.h"
#include "base/xalloc.h"
#include "config/catalog.h"
#include "config/paths.h"

/* ---- URLs ---- */

/* scheme://host[:port][/path], as slices of the text; false when it is not one. */
struct url_parts {
	const char *scheme, *host, *port, *path;
	size_t scheme_len, host_len, port_len, path_len;
};

static bool url_split(const char *url, struct url_parts *u)
{
	const char *sep = strstr(url, "://"), *auth, *end, *colon;
	memset(u, 0, sizeof(*u));
	if (!sep || sep == url)
		return false;
	u->scheme = url;
	u->scheme_len = (size_t)(sep - url);
	auth = sep + 3;
	end = auth + strcspn(auth, "/?#");
	if (memchr(auth, '@', (size_t)(end - auth)) || end == auth)
		return false; /* a user part: never ours to match */
	colon = memchr(auth, ':', (size_t)(end - auth));
	u->host = auth;
	u->host_len = (size_t)((colon ? colon : end) - auth);
	if (colon) {
		u->port = colon + 1;
		u->port_len = (size_t)(end - colon - 1);
	}
	u->path = end;
	u->path_len = strlen(end);
	while (u->path_len && u->path[u->path_len - 1] == '/')
		u->path_len--;
	return u->host_len > 0;
}

static bool text_eq(const char *a, size_t al, const char *b, size_t bl)
{
	return al == bl && !strncasecmp(a, b, al);
}

/* The port of u as text: its own, else the scheme's default. */
static void url_port(const struct url_parts *u, const char **p, size_t *n)
{
	if (u->port_len) {
		*p = u->port;
		*n = u->port_len;
	} else if (text_eq(u->scheme, u->scheme_len, "http", 4)) {
		*p = "80";
		*n = 2;
	} else {
		*p = "443";
		*n = 3;
	}
}

static bool entry_matches(const char *url, const char *entry, size_t len)
{
	char *e = xstrndup(entry, len);
	struct url_parts a, b;
	const char *ap, *bp;
	size_t an, bn;
	bool ok = false;

	if (url_split(url, &a) && url_split(e, &b) && text_eq(a.scheme, a.scheme_len, b.scheme, b.scheme_len) &&
	    text_eq(a.host, a.host_len, b.host, b.host_len)) {
		url_port(&a, &ap, &an);
		url_port(&b, &bp, &bn);
		ok = (bn == 1 && bp[0] == '*') || (an == bn && !memcmp(ap, bp, an));
		/* the entry's path, a prefix of the url's at a '/' */
		ok = ok && a.path_len >= b.path_len && !memcmp(a.path, b.path, b.path_len) &&
		     (a.path_len == b.path_len || a.path[b.path_len] == '/' || !b.path_len);
		ok = ok && !strpbrk(a.path, "?#");
	}
	free(e);
	return ok;
}

bool config_endpoint_allowed(const char *url, const char *spec)
{
	const char *p = spec;
	if (!url || !spec)
		return false;
	while (*p) {
		size_t n;
		p += strspn(p, ", \t\n");
		n = strcspn(p, ", \t\n");
		if (n && entry_matches(url, p, n))
			return true;
		p += n;
	}
	return false;
}

/* ---- the change ---- */

struct guard {
	const char *dir;
	const struct config_opts *opts;
	const char *state_path;
	const char *id, *type;
	const json_t *old_opts, *new_opts; /* objects (old: maybe NULL) */
	const struct catalog_app *cat;     /* of the new type, or NULL */
	struct jerror *err;
	const char *cls;                   /* "App" or "Alert", for messages */
};

static const char *str_of(const json_t *obj, const char *key)
{
	const json_t *v = obj ? json_object_get(obj, key) : NULL;
	return json_is_string(v) ? json_string_value(v) : NULL;
}

/* The value of GROUPAROO_OPTION__APP__<s> when s is Grouparoo's reference form, else NULL. */
static const char *grouparoo_value(const struct guard *g, const char *s)
{
	struct strbuf sb = STRBUF_INIT;
	const char *v = NULL;
	if (*s && strlen(s) <= 255 && !strchr(s, '=')) {
		strbuf_addf(&sb, "GROUPAROO_OPTION__APP__%s", s);
		v = config_getenv(g->opts, sb.buf);
	}
	strbuf_release(&sb);
	return v;
}

static bool is_reference(const struct guard *g, const char *s)
{
	return config_is_reference(s, strlen(s)) || grouparoo_value(g, s);
}

static bool sensitive(const struct guard *g, const char *key);

/*
 * Is option key unchanged (both absent, or equal JSON values)? A secret sent as
 * "****" keeps the stored one: unchanged too (an alert's url is a secret and a target).
 */
static bool unchanged(const struct guard *g, const char *key)
{
	const json_t *a = g->old_opts ? json_object_get(g->old_opts, key) : NULL;
	const json_t *b = json_object_get(g->new_opts, key);
	if (json_is_null(a))
		a = NULL;
	if (json_is_null(b) || (json_is_string(b) && !json_string_length(b)))
		b = NULL;
	if (a && json_is_string(a) && !json_string_length(a))
		a = NULL;
	if (a && b && json_is_string(b) && !strcmp(json_string_value(b), "****") && sensitive(g, key))
		return true;
	return (!a && !b) || (a && b && json_equal((json_t *)a, (json_t *)b));
}

static bool sensitive(const struct guard *g, const char *key)
{
	if (catalog_option_sensitive(key))
		return true;
	for (const struct catalog_option *c = g->cat ? g->cat->options : NULL; c && c->name; c++)
		if (!strcmp(c->name, key))
			return c->sensitive;
	return false;
}

/*
 * What moves the app's secrets somewhere else: NULL when nothing; "" on create;
 * "type", or the target option that changed (static or from the catalog).
 */
static const char *retarget(const struct guard *g, const json_t *before, const json_t *after)
{
	const char *ot = str_of(before, "type"), *nt = str_of(after, "type");
	if (!before)
		return "";
	if (!ot || !nt || strcmp(ot, nt))
		return "type";
	for (const struct catalog_option *c = g->cat ? g->cat->options : NULL; c && c->name; c++)
		if (c->target && !unchanged(g, c->name))
			return c->name;
	return NULL;
}

/* 1. secrets: literal, or kept only while the target stays */
static enum jerr check_secrets(const struct guard *g, const char *moved)
{
	const char *key;
	json_t *v;
	json_object_foreach((json_t *)g->new_opts, key, v) {
		const char *s = json_is_string(v) ? json_string_value(v) : NULL;
		const char *old = str_of(g->old_opts, key);
		if (!s || !*s || !sensitive(g, key))
			continue;
		bool keep = !strcmp(s, "****") || (old && !strcmp(s, old));
		if (keep && moved) {
			if (!*moved)
				continue; /* create: "****" has nothing to keep (config_write says so) */
			jerror_set(g->err, JERR_USAGE, "%s \"%s\": options.%s must be sent again when %s changes",
				   g->cls ? g->cls : "App", g->id, key, !strcmp(moved, "type") ? "the app's type" : moved);
			jerror_detail(g->err, "\"%s\" keeps the stored secret, and a stored secret is only sent where it "
					      "was given for",
				      !strcmp(s, "****") ? "****" : s);
			jerror_hint(g->err, "send the %s itself in options.%s together with the new %s", key, key,
				    !strcmp(moved, "type") ? "type" : moved);
			return JERR_USAGE;
		}
		if (keep)
			continue;
		if (is_reference(g, s)) {
			jerror_set(g->err, JERR_USAGE, "%s \"%s\": options.%s cannot be set to the reference \"%s\" through the API",
				   g->cls ? g->cls : "App", g->id, key, s);
			jerror_detail(g->err, "references to environment variables and stored secrets are written by "
					      "the operator in the config files");
			jerror_hint(g->err, "send the secret itself (joey keeps it in the secrets file, never in the config "
					    "directory), or \"****\" to keep the stored one");
			return JERR_USAGE;
		}
	}
	return JERR_OK;
}

/* 2. a Braze endpoint set or changed: Braze's, or allowed by the operator */
static enum jerr check_endpoint(const struct guard *g)
{
	const char *raw = str_of(g->new_opts, "restEndpoint"), *val;
	struct strbuf url = STRBUF_INIT;
	enum jerr rc = JERR_OK;

	if (!raw || !*raw)
		return JERR_OK; /* required: the loader says so */
	val = grouparoo_value(g, raw);
	if (!val)
		val = raw;
	if (!strstr(val, "://"))
		strbuf_addstr(&url, "https://"); /* as the loader */
	strbuf_addstr(&url, val);
	if (!catalog_braze_endpoint(url.buf) &&
	    !config_endpoint_allowed(url.buf, g->opts ? g->opts->allow_endpoints : NULL)) {
		rc = jerror_set(g->err, JERR_USAGE, "App \"%s\": restEndpoint \"%s\" is not a Braze REST endpoint", g->id,
				raw);
		jerror_detail(g->err, "through the API an endpoint must be https://rest.<instance>.braze.com or "
				      "https://rest.<instance>.braze.eu, or one the operator allowed");
		jerror_hint(g->err, "copy it from Braze's dashboard (\"API and SDK endpoints\"), e.g. "
				    "\"https://rest.iad-01.braze.com\"; the operator can allow another with "
				    "joey serve --allow-endpoint URL (or JOEY_ALLOW_ENDPOINTS)");
	}
	strbuf_release(&url);
	return rc;
}

/* Is path (absolute) one of the server's own files: the config directory, secrets, state? */
static const char *own_file(const struct guard *g, const char *path)
{
	struct {
		const char *p, *what;
	} own[] = {
		{ g->dir, "the config directory" },
		{ g->opts ? g->opts->secrets_path : NULL, "the secrets file" },
		{ g->state_path && !strstr(g->state_path, "://") ? g->state_path : NULL, "the state store" },
	};
	const char *why;
	for (size_t i = 0; i < ARRAY_SIZE(own); i++) {
		char *r;
		bool in;
		if (!own[i].p)
			continue;
		if (!(r = realpath(own[i].p, NULL)))
			continue;
		in = config_path_inside(path, r, &why);
		if (!in && i == 2) { /* state.db-wal, state.db-shm beside it */
			size_t n = strlen(r);
			char *pr = realpath(path, NULL);
			in = pr && !strncmp(pr, r, n);
			free(pr);
		}
		free(r);
		if (in)
			return own[i].what;
	}
	return NULL;
}

/* 3. a file set or changed (option opt): inside the data directory, not one of joey's own */
static enum jerr check_file(const struct guard *g, const char *opt)
{
	const char *raw = str_of(g->new_opts, opt), *val, *why = NULL, *own;
	char *root = NULL, *data = NULL, *path = NULL;
	struct jerror lerr = JERROR_INIT;
	enum jerr rc = JERR_OK;

	if (!raw || !*raw)
		return JERR_OK;
	val = grouparoo_value(g, raw);
	if (!val)
		val = raw;
	if (!strncmp(val, "-----BEGIN", 10))
		return JERR_OK; /* PEM text, not a path */
	if (g->opts && g->opts->root)
		root = xstrdup(g->opts->root);
	else if (config_project_root(g->dir, &root, &lerr))
		root = NULL;
	jerror_release(&lerr);
	data = g->opts && root ? config_data_dir(root, g->opts->data_dir) : NULL;
	path = config_resolve_path(root, val);
	if (!g->opts || !g->opts->data_dir) {
		rc = jerror_set(g->err, JERR_USAGE, "%s \"%s\": options.%s cannot be set through the API here", g->cls, g->id, opt);
		jerror_detail(g->err, "this server has no data directory");
		jerror_hint(g->err, "edit the app's config file, or start joey serve with --data-dir DIR");
	} else if (!data) {
		rc = jerror_set(g->err, JERR_USAGE, "%s \"%s\": options.%s cannot be set through the API: there is no data directory",
				g->cls, g->id, opt);
		jerror_detail(g->err, "the data directory \"%s\" (relative to the project root %s) does not exist",
			      g->opts->data_dir, root ? root : "?");
		jerror_hint(g->err, "create it and put the data files there, or start joey serve with --data-dir DIR "
				    "(or JOEY_DATA_DIR)");
	} else if (!config_path_inside(path, data, &why)) {
		rc = jerror_set(g->err, JERR_USAGE, "%s \"%s\": %s \"%s\" cannot be used through the API: %s", g->cls,
				g->id, opt, raw, why);
		jerror_detail(g->err, "files set through the API must be inside the data directory %s", data);
		jerror_hint(g->err, "put the file in %s and name it relative to the project root %s, or ask the operator "
				    "to start joey serve with another --data-dir (JOEY_DATA_DIR)",
			    data, root);
	} else if ((own = own_file(g, path))) {
		rc = jerror_set(g->err, JERR_USAGE, "%s \"%s\": %s \"%s\" is in %s", g->cls, g->id, opt, raw, own);
		jerror_detail(g->err, "joey's own files are never read as data");
		jerror_hint(g->err, "put the data file elsewhere in the data directory %s", data);
	}
	free(path);
	free(data);
	free(root);
	return rc;
}

/*
 * 2b. a warehouse app's endpoint (Snowflake, BigQuery: tests and proxies) set or changed:
 * only one the operator allowed, since the app's key or token goes there.
 */
static enum jerr check_warehouse_endpoint(const struct guard *g)
{
	const char *raw = str_of(g->new_opts, "endpoint"), *val;
	if (!raw || !*raw)
		return JERR_OK;
	val = grouparoo_value(g, raw);
	if (!val)
		val = raw;
	if (config_endpoint_allowed(val, g->opts ? g->opts->allow_endpoints : NULL))
		return JERR_OK;
	jerror_set(g->err, JERR_USAGE, "App \"%s\": endpoint \"%s\" is not allowed", g->id, raw);
	jerror_detail(g->err, "options.endpoint sends the app's key or token to another host; through the API it must be "
			      "one the operator allowed");
	jerror_hint(g->err, "leave options.endpoint out to use the warehouse's own host; the operator can allow one with "
			    "joey serve --allow-endpoint URL (or JOEY_ALLOW_ENDPOINTS)");
	return JERR_USAGE;
}

static bool has_option(const struct catalog_app *cat, const char *name)
{
	for (const struct catalog_option *c = cat ? cat->options : NULL; c && c->name; c++)
		if (!strcmp(c->name, name))
			return true;
	return false;
}

/* every path option sent (also one the catalog does not list: validation names it) */
static enum jerr check_path_options(const struct guard *g, const char *moved)
{
	json_t *sent = (json_t *)g->new_opts; /* jansson's iterators take no const; read only */
	enum jerr rc = JERR_OK;
	for (void *it = json_object_iter(sent); !rc && it; it = json_object_iter_next(sent, it)) {
		const char *key = json_object_iter_key(it);
		if (catalog_option_path(key) && (moved || !unchanged(g, key)))
			rc = check_file(g, key);
	}
	return rc;
}

/*
 * Fill g's id, type, catalog (lookup of the type) and options from the object after
 * the change (an object) and before it (NULL for a new one). Returns the empty object
 * standing in for missing new options (owned by the caller, json_decref), or NULL.
 */
static json_t *guard_read(struct guard *g, const json_t *before, const json_t *after,
			  const struct catalog_app *(*lookup)(const char *type))
{
	json_t *empty = NULL;
	g->id = str_of(after, "id") ? str_of(after, "id") : "?";
	g->type = str_of(after, "type");
	g->cat = lookup(g->type);
	g->new_opts = json_object_get(after, "options");
	if (!json_is_object(g->new_opts))
		g->new_opts = empty = json_object();
	g->old_opts = before ? json_object_get(before, "options") : NULL;
	if (!json_is_object(g->old_opts))
		g->old_opts = NULL;
	return empty;
}

enum jerr config_guard_app(const char *dir, const struct config_opts *opts, const char *state_path,
			   const json_t *before, const json_t *after, struct jerror *err)
{
	struct guard g = { dir, opts, state_path, NULL, NULL, NULL, NULL, NULL, err, "App" };
	json_t *empty = NULL;
	const char *moved;
	enum jerr rc = JERR_OK;

	if (!json_is_object(after))
		return JERR_OK; /* config_write refuses it */
	empty = guard_read(&g, before, after, catalog_app);
	moved = retarget(&g, before, after);
	rc = check_secrets(&g, moved);
	if (!rc && g.type && !strcmp(g.type, "braze") && (moved || !unchanged(&g, "restEndpoint")))
		rc = check_endpoint(&g);
	if (!rc && has_option(g.cat, "endpoint") && (moved || !unchanged(&g, "endpoint")))
		rc = check_warehouse_endpoint(&g);
	if (!rc)
		rc = check_path_options(&g, moved);
	json_decref(empty);
	return rc;
}

/* ---- alerts ---- */

/* Where an alert's messages go, as a URL the allow-list can match ("" when unknown). */
static void alert_target(const json_t *after, const char *type, struct strbuf *out)
{
	const json_t *o = json_object_get(after, "options");
	strbuf_reset(out);
	if (!strcmp(type, "email")) {
		const char *host = str_of(o, "host");
		const json_t *port = json_object_get(o, "port");
		long p = json_is_integer(port) ? (long)json_integer_value(port)
			 : json_is_real(port) ? (long)json_real_value(port)
			 : json_is_string(port) ? strtol(json_string_value(port), NULL, 10) : 587;
		if (host && *host)
			strbuf_addf(out, "smtp://%s%s%s:%ld", strchr(host, ':') ? "[" : "", host, strchr(host, ':') ? "]" : "", p);
	} else {
		const char *url = str_of(o, "url");
		if (url)
			strbuf_addstr(out, url);
	}
}

enum jerr config_guard_alert(const char *dir, const struct config_opts *opts, const char *state_path,
			     const json_t *before, const json_t *after, struct jerror *err)
{
	struct guard g = { dir, opts, state_path, NULL, NULL, NULL, NULL, NULL, err, "Alert" };
	json_t *empty = NULL;
	struct strbuf target = STRBUF_INIT;
	const char *moved;
	enum jerr rc;

	if (!json_is_object(after))
		return JERR_OK; /* config_write refuses it */
	empty = guard_read(&g, before, after, catalog_alert);
	moved = retarget(&g, before, after);
	rc = check_secrets(&g, moved);
	if (!rc && g.cat && moved) {
		const char *url = str_of(g.new_opts, "url");
		bool kept = url && (!strcmp(url, "****") || (str_of(g.old_opts, "url") && !strcmp(url, str_of(g.old_opts, "url"))));
		alert_target(after, g.type, &target);
		if (!kept && target.len && strcmp(target.buf, "****")) {
			bool slack = !strcmp(g.type, "slack");
			bool ok = config_endpoint_allowed(target.buf, opts ? opts->allow_endpoints : NULL) ||
				  (slack && config_endpoint_allowed(target.buf, "https://hooks.slack.com"));
			if (!ok) {
				bool email = !strcmp(g.type, "email");
				rc = jerror_set(err, JERR_USAGE, "Alert \"%s\": %s is not an endpoint this server may send alerts to",
						g.id, email ? "the SMTP server" : "options.url");
				if (email)
					jerror_detail(err, "through the API an alert's SMTP server must be allowed by the operator (%s)",
						      target.buf);
				else
					jerror_detail(err, "through the API an alert's URL must be one the operator allowed%s",
						      slack ? " (Slack's https://hooks.slack.com/... always is)" : "");
				jerror_hint(err, "ask the operator to start joey serve with --allow-endpoint %s (or "
						 "JOEY_ALLOW_ENDPOINTS), or write the alert in its config file",
					    email ? "smtp://HOST:PORT" : "URL");
			}
		}
	}
	if (!rc)
		rc = check_path_options(&g, moved);
	strbuf_release(&target);
	json_decref(empty);
	return rc;
}
