/*
 * guard.h: what a change made through joey serve's API may not do, that a config file
 * on disk may (issue #14).
 *
 * A config file on disk is the operator's: any https Braze endpoint (plain http on
 * loopback), any file. A change sent to the API comes from whoever holds an account,
 * to a server that holds every key and reads every file joey can read. So before an
 * app is created or replaced through the API (config_write), the server calls
 *
 *   rc = config_guard_app(dir, opts, state_path, before, after, &err);
 *
 * which refuses (JERR_USAGE: the API answers 400; err has what, detail and hint) a
 * change that would
 *  1. send a stored secret somewhere new: on create, and when the app's type or a
 *     target option (catalog_option.target: Braze's restEndpoint, a database's host,
 *     port and TLS settings) changes, every secret option must be sent as the secret
 *     itself; "****" (keep the stored one) and the reference the file holds are
 *     refused. In every change a secret is a new literal (moved to the secrets file by
 *     config_write), "****" or what the file holds: a new reference ("${NAME}", or
 *     "NAME" with GROUPAROO_OPTION__APP__NAME set) is refused, because it would let an
 *     account holder route any environment variable or stored secret to a host of
 *     their choosing. References are the operator's, written in the files.
 *  2. point a Braze app elsewhere: a restEndpoint set or changed must be one of
 *     Braze's REST hosts (catalog_braze_endpoint) or match opts->allow_endpoints, the
 *     operator's list (joey serve --allow-endpoint, JOEY_ALLOW_ENDPOINTS).
 *  3. read a file elsewhere: a file option (sqlite, csv apps) set or changed must lie
 *     inside opts->data_dir (config_path_inside: symlinks resolved, no dot-names) and
 *     not in the config directory, the secrets file or the state store.
 * Values the change leaves as they were pass: the operator wrote them.
 */
#ifndef JOEY_CONFIG_GUARD_H
#define JOEY_CONFIG_GUARD_H

#include <jansson.h>
#include <stdbool.h>

#include "base/compat.h"
#include "base/error.h"
#include "config/config.h"

/*
 * Check an app change through the API. dir: the config directory; opts: the server's
 * config options (data_dir, allow_endpoints, secrets_path, root, getenv); state_path:
 * the state store (a file path or a URL; may be NULL). before: the app as its file
 * holds it (config_read_object: literal secrets "****", references kept), NULL on
 * create; after: the object sent. All borrowed. JERR_OK, or JERR_USAGE with err set;
 * nothing is changed either way.
 */
enum jerr config_guard_app(const char *dir, const struct config_opts *opts, const char *state_path,
			   const json_t *before, const json_t *after, struct jerror *err) JOEY_WUR;

/*
 * Check an Alert change through the API (config/config.h struct cfg_alert; alerts
 * hold secrets too: a webhook's URL and HMAC key, an SMTP password). opts, before
 * (the alert as its file holds it, NULL on create) and after (as sent) borrowed.
 *  1. secrets as for apps: on create, and when the type or a target option (url,
 *     host, port, starttls, caFile) changes, every secret must be sent as itself;
 *     never a new reference.
 *  2. where the messages go, when it is set or changed: a webhook's url, and an email
 *     alert's SMTP server as smtp://HOST:PORT, must match the operator's allow-list
 *     (opts->allow_endpoints: joey serve --allow-endpoint, JOEY_ALLOW_ENDPOINTS); a
 *     Slack url also passes under https://hooks.slack.com.
 *  3. a file it reads (caFile), set or changed: inside the data directory, as for apps
 *     (dir and state_path as config_guard_app's).
 * JERR_OK, or JERR_USAGE with err set (the API answers 400).
 */
enum jerr config_guard_alert(const char *dir, const struct config_opts *opts, const char *state_path,
			     const json_t *before, const json_t *after, struct jerror *err) JOEY_WUR;

/*
 * Does url match the operator's allow-list spec ("URL[,URL...]", also separated by
 * spaces): same scheme and host (case-insensitive), the same port (the scheme's
 * default when left out; "*" in the list: any), and the list entry's path a prefix of
 * url's at a '/'? A url with a user part ("@") never matches. NULL-safe.
 */
bool config_endpoint_allowed(const char *url, const char *spec);

#endif
