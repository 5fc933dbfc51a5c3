/*
 * catalog.h: the connector catalog the config validator checks against.
 *
 * One const row per app type, source type and destination type, with the options each
 * accepts. Enabling a connector (e.g. postgres once src/source/postgres.c exists) is a
 * one-line change: set `supported` in its row. All tables are static and borrowed.
 */
#ifndef JOEY_CONFIG_CATALOG_H
#define JOEY_CONFIG_CATALOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"

/* One option of an app, source, property, schedule or destination. */
struct catalog_option {
	const char *name;
	enum opt_kind kind;
	bool required;
	bool sensitive; /* a password/API key: never shown, even when written literally */
	/* where the app's secrets go (Braze restEndpoint, a database's host and port, its
	 * TLS settings): a change through the API must send the secrets again
	 * (config/guard.h), so a kept key cannot be redirected to another host */
	bool target;
};

struct catalog_app {
	const char *type;      /* "sqlite" */
	bool supported;        /* false: known Grouparoo type joey cannot use yet */
	const struct catalog_option *options; /* terminated by a NULL name */
};

struct catalog_source {
	const char *type;      /* "sqlite-import-table" */
	const char *app_type;  /* "sqlite" */
	bool is_query;
	const char *renamed_to; /* legacy name: the current one (warning), else NULL */
	const struct catalog_option *options;
};

struct catalog_destination {
	const char *type;      /* "braze-export-users" */
	const char *app_type;  /* "braze" */
	const char *renamed_to;
	const struct catalog_option *options;
};

/* A known Braze user profile field and the property type it holds. */
struct catalog_field {
	const char *name;
	enum prop_type type;
};

const struct catalog_app *catalog_app(const char *type);
/*
 * Is type (an app type, or a destination type "<plugin>-...") one of Grouparoo's
 * destination-only plugins (mailchimp, hubspot, salesforce, ...)? A Grouparoo project
 * switching to joey keeps those files: joey skips them with a warning instead of
 * refusing the whole config. NULL-safe.
 */
bool catalog_export_only(const char *type);
const struct catalog_source *catalog_source(const char *type);
const struct catalog_destination *catalog_destination(const char *type);
/* The known Braze profile field, or NULL (a custom attribute). */
const struct catalog_field *catalog_braze_field(const char *name);
/* Every known Braze profile field (borrowed static array, *n set). */
const struct catalog_field *catalog_braze_fields(size_t *n);
/* Options a property of a table or query source takes; a schedule's options. */
const struct catalog_option *catalog_property_options(bool is_query);
const struct catalog_option *catalog_schedule_options(bool is_query);

/* All names of a table, for did-you-mean (borrowed static array, *n set). */
const char *const *catalog_app_types(size_t *n);
const char *const *catalog_source_types(size_t *n);
const char *const *catalog_destination_types(size_t *n);

/*
 * Is url one of Braze's REST endpoints, https://rest.<instance>.braze.com or
 * .braze.eu (../shared/docs/braze-api.md "REST endpoint instances"; the instance is
 * letters, digits and '-'), with no user, no port but 443 and no path but "/"?
 * Case-insensitive; NULL-safe.
 */
bool catalog_braze_endpoint(const char *url);

/*
 * Alert channels (the Alert class's "type": webhook, slack, email) and their options,
 * in a struct catalog_app (supported always true); NULL if unknown.
 */
const struct catalog_app *catalog_alert(const char *type);
const char *const *catalog_alert_types(size_t *n);

/*
 * Is this option name a secret by convention (apiKey, password, token, secret,
 * privateKey...)? Any case, '_' and '-' ignored (private_key, api_key); any length.
 */
bool catalog_option_sensitive(const char *name);

/*
 * Is this app option a file path joey reads (a SQLite or CSV file, a TLS certificate,
 * key or CA, a key file)? By convention: "file", names ending in "File" or "Path", and
 * ssl_cert / ssl_key / ssl_ca (which may also hold PEM text: a value starting
 * "-----BEGIN" is not a path). Set through the API, such a path must be inside the
 * data directory (config/guard.h). Case-insensitive; NULL-safe.
 */
bool catalog_option_path(const char *name);

/*
 * A Braze app's rateLimits option, "track=3000/3,delete=20000/60" (requests per window
 * in seconds, for the workspace): the rate limit of endpoint ("track", "delete",
 * "export_ids", "subscription"). True and *limit, *window_ms set when spec names it;
 * false otherwise. A malformed spec is false with *bad pointing at the bad item.
 */
bool catalog_rate_limit(const char *spec, const char *endpoint, int64_t *limit, int64_t *window_ms,
			const char **bad);
/* The endpoint names rateLimits takes (borrowed static array, *n set). */
const char *const *catalog_rate_endpoints(size_t *n);

#endif
