/* catalog.c: the connector catalog: app, source and destination types with their options. */
#include "config/catalog.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- apps ---- */

static const struct catalog_option sqlite_app_opts[] = {
	{ "file", OPT_STRING, true, false, false },
	{ NULL, OPT_STRING, false, false, false },
};
static const struct catalog_option braze_app_opts[] = {
	{ "apiKey", OPT_STRING, true, true, false },
	{ "restEndpoint", OPT_STRING, true, false, true },
	{ "rateLimits", OPT_STRING, false, false, false },
	{ NULL, OPT_STRING, false, false, false },
};
static const struct catalog_option postgres_app_opts[] = {
	{ "host", OPT_STRING, false, false, true },
	{ "port", OPT_NUMBER, false, false, true },
	{ "database", OPT_STRING, true, false, false },
	{ "schema", OPT_STRING, false, false, false },
	{ "user", OPT_STRING, false, false, false },
	{ "password", OPT_STRING, false, true, false },
	{ "ssl", OPT_BOOL, false, false, true },
	/* Grouparoo's names (PEM text, or a file path in joey); sslmode is joey's (libpq) */
	{ "ssl_cert", OPT_STRING, false, false, false },
	{ "ssl_key", OPT_STRING, false, true, false },
	{ "ssl_ca", OPT_STRING, false, false, true },
	{ "sslmode", OPT_STRING, false, false, true },
	{ "statementTimeout", OPT_NUMBER, false, false, false }, /* seconds (source.h), 0: none */
	{ NULL, OPT_STRING, false, false, false },
};
static const struct catalog_option mysql_app_opts[] = {
	{ "host", OPT_STRING, false, false, true },
	{ "port", OPT_NUMBER, false, false, true },
	{ "database", OPT_STRING, true, false, false },
	{ "user", OPT_STRING, false, false, false },
	{ "password", OPT_STRING, false, true, false },
	{ "statementTimeout", OPT_NUMBER, false, false, false },
	{ NULL, OPT_STRING, false, false, false },
};
/* Grouparoo's clickhouse plugin (HTTP interface); statementTimeout is joey's */
static const struct catalog_option clickhouse_app_opts[] = {
	{ "host", OPT_STRING, false, false, true },
	{ "port", OPT_NUMBER, false, false, true },
	{ "database", OPT_STRING, true, false, false },
	{ "user", OPT_STRING, false, false, false },
	{ "password", OPT_STRING, false, true, false },
	{ "statementTimeout", OPT_NUMBER, false, false, false },
	{ NULL, OPT_STRING, false, false, false },
};
static const struct catalog_option csv_app_opts[] = {
	{ "file", OPT_STRING, true, false, false },      /* a CSV file or a directory of *.csv */
	{ "delimiter", OPT_STRING, false, false, false }, /* one character, default "," */
	{ "badRows", OPT_STRING, false, false, false },   /* "skip" (default) or "fail" */
	{ NULL, OPT_STRING, false, false, false },
};

/* Snowflake (Grouparoo's options; role, authenticator, statementTimeout, endpoint are joey's) */
static const struct catalog_option snowflake_app_opts[] = {
	{ "account", OPT_STRING, true, false, true },
	{ "username", OPT_STRING, true, false, false },
	{ "password", OPT_STRING, true, true, false },
	{ "warehouse", OPT_STRING, true, false, false },
	{ "database", OPT_STRING, true, false, false },
	{ "schema", OPT_STRING, false, false, false },
	{ "role", OPT_STRING, false, false, false },
	{ "authenticator", OPT_STRING, false, false, false },   /* programmatic_access_token (default), oauth */
	{ "statementTimeout", OPT_NUMBER, false, false, false },
	{ "endpoint", OPT_STRING, false, false, true },          /* tests and proxies: base URL */
	{ NULL, OPT_STRING, false, false, false },
};
static const struct catalog_option snowflake_keypair_app_opts[] = {
	{ "account", OPT_STRING, true, false, true },
	{ "username", OPT_STRING, true, false, false },
	{ "private_key", OPT_STRING, true, true, false },
	{ "private_key_passphrase", OPT_STRING, false, true, false },
	{ "warehouse", OPT_STRING, true, false, false },
	{ "database", OPT_STRING, true, false, false },
	{ "schema", OPT_STRING, false, false, false },
	{ "role", OPT_STRING, false, false, false },
	{ "statementTimeout", OPT_NUMBER, false, false, false },
	{ "endpoint", OPT_STRING, false, false, true },
	{ NULL, OPT_STRING, false, false, false },
};

/* BigQuery (Grouparoo's options; statementTimeout, endpoint are joey's) */
static const struct catalog_option bigquery_app_opts[] = {
	{ "project_id", OPT_STRING, true, false, false },
	{ "dataset", OPT_STRING, true, false, false },
	{ "client_email", OPT_STRING, true, false, false },
	{ "private_key", OPT_STRING, true, true, false },
	{ "location", OPT_STRING, false, false, false },
	{ "statementTimeout", OPT_NUMBER, false, false, false },
	{ "endpoint", OPT_STRING, false, false, true }, /* tests and proxies: base URL */
	{ NULL, OPT_STRING, false, false, false },
};

static const struct catalog_option no_opts[] = {
	{ NULL, OPT_STRING, false, false, false },
};

/* Grouparoo app types joey knows of but cannot read yet: a clear error, not "unknown". */
static const struct catalog_app apps[] = {
	{ "sqlite", true, sqlite_app_opts },
	{ "braze", true, braze_app_opts },
	{ "postgres", true, postgres_app_opts },
	{ "mysql", true, mysql_app_opts },
	{ "csv", true, csv_app_opts },
	{ "bigquery", true, bigquery_app_opts },
	{ "snowflake", true, snowflake_app_opts },
	{ "snowflake-keypair", true, snowflake_keypair_app_opts },
	/* Grouparoo's redshift plugin: the postgres options (port 5439 unless PGPORT is set) */
	{ "redshift", true, postgres_app_opts },
	{ "clickhouse", true, clickhouse_app_opts },
	{ "mongo", false, no_opts },
};
static const char *const app_names[] = { "sqlite", "braze", "postgres", "mysql", "csv", "bigquery", "snowflake",
					 "redshift", "mongo", "clickhouse", "snowflake-keypair" };

/* ---- sources ---- */

static const struct catalog_option table_source_opts[] = {
	{ "table", OPT_STRING, true, false, false },
	{ NULL, OPT_STRING, false, false, false },
};
static const struct catalog_option query_source_opts[] = {
	{ "query", OPT_STRING, true, false, false },
	{ NULL, OPT_STRING, false, false, false },
};

/* a CSV app is one table named after its file: "table" may be left out, or must match */
static const struct catalog_option csv_source_opts[] = {
	{ "table", OPT_STRING, false, false, false },
	{ NULL, OPT_STRING, false, false, false },
};

static const struct catalog_source sources[] = {
	{ "sqlite-import-table", "sqlite", false, NULL, table_source_opts },
	{ "sqlite-import-query", "sqlite", true, NULL, query_source_opts },
	{ "sqlite-table-import", "sqlite", false, "sqlite-import-table", table_source_opts },
	{ "sqlite-query-import", "sqlite", true, "sqlite-import-query", query_source_opts },
	{ "postgres-import-table", "postgres", false, NULL, table_source_opts },
	{ "postgres-import-query", "postgres", true, NULL, query_source_opts },
	{ "postgres-table-import", "postgres", false, "postgres-import-table", table_source_opts },
	{ "postgres-query-import", "postgres", true, "postgres-import-query", query_source_opts },
	{ "mysql-import-table", "mysql", false, NULL, table_source_opts },
	{ "mysql-import-query", "mysql", true, NULL, query_source_opts },
	{ "mysql-table-import", "mysql", false, "mysql-import-table", table_source_opts },
	{ "mysql-query-import", "mysql", true, "mysql-import-query", query_source_opts },
	{ "csv-import-table", "csv", false, NULL, csv_source_opts },
	{ "redshift-import-table", "redshift", false, NULL, table_source_opts },
	{ "redshift-import-query", "redshift", true, NULL, query_source_opts },
	{ "redshift-table-import", "redshift", false, "redshift-import-table", table_source_opts },
	{ "redshift-query-import", "redshift", true, "redshift-import-query", query_source_opts },
	{ "clickhouse-import-table", "clickhouse", false, NULL, table_source_opts },
	{ "clickhouse-import-query", "clickhouse", true, NULL, query_source_opts },
	{ "clickhouse-table-import", "clickhouse", false, "clickhouse-import-table", table_source_opts },
	{ "clickhouse-query-import", "clickhouse", true, "clickhouse-import-query", query_source_opts },
	{ "snowflake-import-table", "snowflake", false, NULL, table_source_opts },
	{ "snowflake-import-query", "snowflake", true, NULL, query_source_opts },
	{ "snowflake-table-import", "snowflake", false, "snowflake-import-table", table_source_opts },
	{ "snowflake-query-import", "snowflake", true, "snowflake-import-query", query_source_opts },
	{ "bigquery-import-table", "bigquery", false, NULL, table_source_opts },
	{ "bigquery-import-query", "bigquery", true, NULL, query_source_opts },
	{ "bigquery-table-import", "bigquery", false, "bigquery-import-table", table_source_opts },
	{ "bigquery-query-import", "bigquery", true, "bigquery-import-query", query_source_opts },
};
static const char *const source_names[] = {
	"sqlite-import-table", "sqlite-import-query", "sqlite-table-import", "sqlite-query-import",
	"postgres-import-table", "postgres-import-query", "postgres-table-import", "postgres-query-import",
	"mysql-import-table", "mysql-import-query", "mysql-table-import", "mysql-query-import",
	"csv-import-table",
	"redshift-import-table", "redshift-import-query", "redshift-table-import", "redshift-query-import",
	"clickhouse-import-table", "clickhouse-import-query", "clickhouse-table-import", "clickhouse-query-import",
	"snowflake-import-table", "snowflake-import-query", "snowflake-table-import", "snowflake-query-import",
	"bigquery-import-table", "bigquery-import-query", "bigquery-table-import", "bigquery-query-import",
};

/* ---- properties and schedules ---- */

static const struct catalog_option table_property_opts[] = {
	{ "column", OPT_STRING, true, false, false },
	{ "aggregationMethod", OPT_STRING, false, false, false },
	{ "sortColumn", OPT_STRING, false, false, false },
	{ NULL, OPT_STRING, false, false, false },
};
/* query sources: query, or column (+ aggregation) over the source query */
static const struct catalog_option query_property_opts[] = {
	{ "query", OPT_STRING, false, false, false },
	{ "column", OPT_STRING, false, false, false },
	{ "aggregationMethod", OPT_STRING, false, false, false },
	{ "sortColumn", OPT_STRING, false, false, false },
	{ NULL, OPT_STRING, false, false, false },
};
static const struct catalog_option table_schedule_opts[] = {
	{ "column", OPT_STRING, true, false, false },
	{ "cron", OPT_STRING, false, false, false },
	{ NULL, OPT_STRING, false, false, false },
};
static const struct catalog_option query_schedule_opts[] = {
	{ "column", OPT_STRING, false, false, false },
	{ "cron", OPT_STRING, false, false, false },
	{ NULL, OPT_STRING, false, false, false },
};

/* ---- destinations ---- */

static const struct catalog_option braze_dest_opts[] = {
	{ "maxDeletePercent", OPT_NUMBER, false, false, false },
	{ "diff", OPT_STRING, false, false, false },
	{ "partitions", OPT_NUMBER, false, false, false },
	{ "enrichRecheckHours", OPT_NUMBER, false, false, false },
	/* the sync log (engine/synclog.h, docs/config.md "Sync logs in the warehouse") */
	{ "syncLogAppId", OPT_STRING, false, false, false },
	{ "syncLogTablePrefix", OPT_STRING, false, false, false },
	{ "syncLogRetentionDays", OPT_NUMBER, false, false, false },
	{ "syncLogAllowSourceApp", OPT_BOOL, false, false, false },
	{ NULL, OPT_STRING, false, false, false },
};
static const struct catalog_destination dests[] = {
	{ "braze-export-users", "braze", NULL, braze_dest_opts },
	{ "braze-export", "braze", "braze-export-users", braze_dest_opts },
};
static const char *const dest_names[] = { "braze-export-users", "braze-export" };

static const struct catalog_field braze_fields[] = {
	{ "external_id", PROP_STRING },
	{ "email", PROP_EMAIL },
	{ "first_name", PROP_STRING },
	{ "last_name", PROP_STRING },
	{ "phone", PROP_PHONE },
	{ "gender", PROP_STRING },
	{ "country", PROP_STRING },
	{ "date_of_first_session", PROP_STRING },
	{ "date_of_last_session", PROP_STRING },
	{ "dob", PROP_STRING },
	{ "email_subscribe", PROP_STRING },
	{ "email_open_tracking_disabled", PROP_BOOLEAN },
	{ "email_click_tracking_disabled", PROP_BOOLEAN },
	{ "facebook", PROP_STRING },
	{ "home_city", PROP_STRING },
	{ "image_url", PROP_STRING },
	{ "language", PROP_STRING },
	{ "marked_email_as_spam_at", PROP_STRING },
	{ "push_subscribe", PROP_STRING },
	{ "time_zone", PROP_STRING },
	{ "twitter", PROP_STRING },
};

/* Grouparoo's plugins that only export (github grouparoo/grouparoo, plugins/@grouparoo). */
static const char *const export_only[] = {
	"mailchimp", "hubspot", "salesforce", "pardot", "marketo", "intercom", "customerio",
	"sendgrid", "sailthru", "iterable", "klaviyo", "zendesk", "pipedrive", "facebook",
	"google-sheets", "mixpanel", "onesignal", "eloqua", "dbt", "cloudwatch", "newrelic",
	"datadog", "mailjet", "airtable", "closeio", "freshdesk", "logger", "vero",
	"google-sheet", /* the Google Sheets plugin's connections: google-sheet-export (-import is a source) */
};

bool catalog_export_only(const char *type)
{
	if (!type)
		return false;
	for (size_t i = 0; i < sizeof(export_only) / sizeof(export_only[0]); i++) {
		size_t n = strlen(export_only[i]);
		if (!strncmp(type, export_only[i], n) && (type[n] == 0 || type[n] == '-'))
			return true;
	}
	return false;
}

const struct catalog_app *catalog_app(const char *type)
{
	for (size_t i = 0; type && i < ARRAY_SIZE(apps); i++)
		if (!strcmp(apps[i].type, type))
			return &apps[i];
	return NULL;
}

const struct catalog_source *catalog_source(const char *type)
{
	for (size_t i = 0; type && i < ARRAY_SIZE(sources); i++)
		if (!strcmp(sources[i].type, type))
			return &sources[i];
	return NULL;
}

const struct catalog_destination *catalog_destination(const char *type)
{
	for (size_t i = 0; type && i < ARRAY_SIZE(dests); i++)
		if (!strcmp(dests[i].type, type))
			return &dests[i];
	return NULL;
}

const struct catalog_field *catalog_braze_fields(size_t *n)
{
	*n = ARRAY_SIZE(braze_fields);
	return braze_fields;
}

const struct catalog_field *catalog_braze_field(const char *name)
{
	for (size_t i = 0; name && i < ARRAY_SIZE(braze_fields); i++)
		if (!strcmp(braze_fields[i].name, name))
			return &braze_fields[i];
	return NULL;
}

const struct catalog_option *catalog_property_options(bool is_query)
{
	return is_query ? query_property_opts : table_property_opts;
}

const struct catalog_option *catalog_schedule_options(bool is_query)
{
	return is_query ? query_schedule_opts : table_schedule_opts;
}

const char *const *catalog_app_types(size_t *n)
{
	*n = ARRAY_SIZE(app_names);
	return app_names;
}

const char *const *catalog_source_types(size_t *n)
{
	*n = ARRAY_SIZE(source_names);
	return source_names;
}

const char *const *catalog_destination_types(size_t *n)
{
	*n = ARRAY_SIZE(dest_names);
	return dest_names;
}

bool catalog_braze_endpoint(const char *url)
{
	static const char *const domains[] = { ".braze.com", ".braze.eu" };
	const char *h, *end, *p;
	size_t hl;

	if (!url || strncasecmp(url, "https://rest.", 13))
		return false;
	h = url + 8;
	end = h + strcspn(h, "/?#");
	/* the path: nothing or "/" */
	if (*end && strcmp(end, "/"))
		return false;
	hl = (size_t)(end - h);
	if (memchr(h, '@', hl))
		return false;
	if (hl > 4 && !strncmp(end - 4, ":443", 4))
		hl -= 4;
	for (size_t i = 0; i < ARRAY_SIZE(domains); i++) {
		size_t dl = strlen(domains[i]);
		if (hl <= 5 + dl || strncasecmp(h + hl - dl, domains[i], dl))
			continue;
		/* rest.<instance>: one label of letters, digits and '-' */
		if (h + 5 == h + hl - dl)
			return false;
		for (p = h + 5; p < h + hl - dl; p++)
			if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
			      *p == '-'))
				return false;
		return true;
	}
	return false;
}

/* Does word (lower case) start at s, in any case, with '_' and '-' inside it skipped? */
static bool word_at(const char *s, const char *word)
{
	for (; *word; s++) {
		if (*s == '_' || *s == '-')
			continue;
		if (((*s >= 'A' && *s <= 'Z') ? *s - 'A' + 'a' : *s) != *word)
			return false;
		word++;
	}
	return true;
}

/*
 * Any case, and '_' or '-' anywhere: "private_key", "api_key", "client-secret" are
 * secrets as "privateKey" is (Grouparoo's BigQuery and Google Sheets options are spelled
 * private_key). Any length: also whole texts (config/write.c, a file that does not parse).
 */
bool catalog_option_sensitive(const char *name)
{
	static const char *const words[] = { "password", "apikey", "secret", "token", "privatekey" };
	for (const char *s = name; s && *s; s++)
		for (size_t i = 0; i < ARRAY_SIZE(words); i++)
			if (word_at(s, words[i]))
				return true;
	return false;
}

/* ---- Braze rate limits (app option rateLimits) ---- */

static const char *const rate_endpoints[] = { "track", "delete", "export_ids", "subscription" };

const char *const *catalog_rate_endpoints(size_t *n)
{
	*n = sizeof(rate_endpoints) / sizeof(rate_endpoints[0]);
	return rate_endpoints;
}

bool catalog_rate_limit(const char *spec, const char *endpoint, int64_t *limit, int64_t *window_ms,
			const char **bad)
{
	const char *s = spec ? spec : "";
	bool found = false;
	*bad = NULL;
	while (*s) {
		const char *item = s, *eq = strchr(s, '='), *end = strchr(s, ',');
		if (!end)
			end = s + strlen(s);
		size_t nl = eq && eq < end ? (size_t)(eq - s) : 0;
		bool known = false;
		for (size_t i = 0; nl && i < sizeof(rate_endpoints) / sizeof(rate_endpoints[0]); i++)
			known |= strlen(rate_endpoints[i]) == nl && !strncmp(rate_endpoints[i], s, nl);
		char *p;
		long long n = known ? strtoll(eq + 1, &p, 10) : 0;
		double w = known && n > 0 && *p == '/' ? strtod(p + 1, &p) : 0;
		if (!known || n < 1 || !(w > 0) || w > 86400 || p != end) {
			*bad = item;
			return false;
		}
		if (strlen(endpoint) == nl && !strncmp(endpoint, s, nl)) {
			*limit = n;
			*window_ms = (int64_t)(w * 1000 + 0.5);
			found = true;
		}
		s = *end ? end + 1 : end;
	}
	return found;
}

bool catalog_option_path(const char *name)
{
	static const char *const exact[] = { "ssl_cert", "ssl_key", "ssl_ca", "sslcert", "sslkey", "sslrootcert" };
	static const char *const suffix[] = { "file", "path" };
	size_t n = name ? strlen(name) : 0;

	if (!n)
		return false;
	for (size_t i = 0; i < ARRAY_SIZE(exact); i++)
		if (!strcasecmp(name, exact[i]))
			return true;
	for (size_t i = 0; i < ARRAY_SIZE(suffix); i++) {
		size_t k = strlen(suffix[i]);
		if (n >= k && !strcasecmp(name + n - k, suffix[i]))
			return true;
	}
	return false;
}

/* ---- alert channels (joey's Alert class; src/alert) ---- */

/* the URL of a webhook holds its credential (Slack's does): a secret, and where the
 * other secrets go */
static const struct catalog_option webhook_alert_opts[] = {
	{ "url", OPT_STRING, true, true, true },
	{ "secret", OPT_STRING, true, true, false }, /* HMAC-SHA256 key of X-Joey-Signature */
	{ NULL, OPT_STRING, false, false, false },
};
static const struct catalog_option slack_alert_opts[] = {
	{ "url", OPT_STRING, true, true, true },
	{ NULL, OPT_STRING, false, false, false },
};
static const struct catalog_option email_alert_opts[] = {
	{ "host", OPT_STRING, true, false, true },
	{ "port", OPT_NUMBER, false, false, true },     /* default 587 */
	{ "user", OPT_STRING, false, false, false },
	{ "password", OPT_STRING, false, true, false },
	{ "from", OPT_STRING, true, false, false },
	{ "to", OPT_STRING, true, false, false },       /* comma-separated addresses */
	{ "starttls", OPT_BOOL, false, false, true },   /* default true; false: loopback only */
	{ "caFile", OPT_STRING, false, false, true },   /* PEM CA bundle for the server's certificate */
	{ NULL, OPT_STRING, false, false, false },
};

static const struct catalog_app alert_channels[] = {
	{ "webhook", true, webhook_alert_opts },
	{ "slack", true, slack_alert_opts },
	{ "email", true, email_alert_opts },
};
static const char *const alert_names[] = { "webhook", "slack", "email" };

const struct catalog_app *catalog_alert(const char *type)
{
	for (size_t i = 0; type && i < ARRAY_SIZE(alert_channels); i++)
		if (!strcmp(alert_channels[i].type, type))
			return &alert_channels[i];
	return NULL;
}

const char *const *catalog_alert_types(size_t *n)
{
	*n = ARRAY_SIZE(alert_names);
	return alert_names;
}
