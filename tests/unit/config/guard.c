/* Tests for src/config/guard.c (and the catalog's Braze hosts, paths.c's data directory). */
#include "support/testutil.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/catalog.h"
#include "config/guard.h"
#include "config/paths.h"

static void test_braze_endpoints(void **state)
{
	(void)state;
	static const char *const yes[] = { "https://rest.iad-01.braze.com", "https://rest.iad-08.braze.com/",
					   "https://rest.fra-02.braze.eu", "https://REST.au-01.Braze.com",
					   "https://rest.us-10.braze.com:443" };
	static const char *const no[] = { "http://rest.iad-01.braze.com", "https://rest.iad-01.braze.com.evil.example",
					  "https://rest.iad-01.braze.com@evil.example", "https://evil.example/rest.iad-01.braze.com",
					  "https://rest..braze.com", "https://rest.braze.com", "https://rest.iad-01.braze.com:8443",
					  "https://rest.iad-01.braze.com/users/track", "https://xrest.iad-01.braze.com",
					  "https://rest.a.b.braze.com", "https://rest.iad-01.braze.com?x", NULL };
	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++)
		if (!catalog_braze_endpoint(yes[i]))
			fail_msg("%s should be a Braze endpoint", yes[i]);
	for (size_t i = 0; no[i]; i++)
		if (catalog_braze_endpoint(no[i]))
			fail_msg("%s should not be a Braze endpoint", no[i]);
	assert_false(catalog_braze_endpoint(NULL));
}

static void test_allow_list(void **state)
{
	(void)state;
	const char *spec = "http://127.0.0.1:4710, https://proxy.example/braze  http://localhost:*";
	assert_true(config_endpoint_allowed("http://127.0.0.1:4710", spec));
	assert_true(config_endpoint_allowed("http://127.0.0.1:4710/", spec));
	assert_false(config_endpoint_allowed("http://127.0.0.1:4711", spec));
	assert_false(config_endpoint_allowed("https://127.0.0.1:4710", spec));
	assert_true(config_endpoint_allowed("https://proxy.example/braze", spec));
	assert_true(config_endpoint_allowed("https://PROXY.example:443/braze/eu", spec));
	assert_false(config_endpoint_allowed("https://proxy.example/brazen", spec));
	assert_false(config_endpoint_allowed("https://proxy.example/", spec));
	assert_true(config_endpoint_allowed("http://localhost:9", spec));
	assert_true(config_endpoint_allowed("http://localhost", spec));
	assert_false(config_endpoint_allowed("http://user@127.0.0.1:4710", spec));
	assert_false(config_endpoint_allowed("http://127.0.0.1:4710", ""));
	assert_false(config_endpoint_allowed("http://127.0.0.1:4710", NULL));
}

static void test_path_inside(void **state)
{
	(void)state;
	char *root = tu_mkdtemp(), path[4096], *data;
	const char *why;
	tu_write(root, "data/a.csv", "x\n");
	tu_write(root, "data/.git/config", "x\n");
	tu_write(root, "outside/b.csv", "x\n");
	snprintf(path, sizeof(path), "%s/data/link.csv", root);
	char target[4096];
	snprintf(target, sizeof(target), "%s/outside/b.csv", root);
	assert_int_equal(symlink(target, path), 0);
	data = config_data_dir(root, "data");
	assert_non_null(data);
#define INSIDE(rel, want)                                                                  \
	do {                                                                               \
		char *p = config_resolve_path(root, rel);                                   \
		if (config_path_inside(p, data, &why) != (want))                            \
			fail_msg("%s: inside should be %d (%s)", rel, want, why ? why : ""); \
		free(p);                                                                    \
	} while (0)
	INSIDE("data/a.csv", true);
	INSIDE("data", true);
	INSIDE("data/new/not-yet.csv", true);
	INSIDE("outside/b.csv", false);
	INSIDE("data/link.csv", false);
	INSIDE("data/../outside/b.csv", false);
	INSIDE("data/nope/../../outside/x.csv", false);
	INSIDE("data/.git/config", false);
	INSIDE("data/.new.csv", false);
	INSIDE("/etc/passwd", false);
	INSIDE("/", false);
	INSIDE("datafile.csv", false);
	assert_null(config_data_dir(root, "missing"));
	free(data);
	tu_rmtree(root);
	free(root);
}

/* The app as sent and as stored, for config_guard_app. */
static enum jerr guard(const char *before, const char *after, const struct config_opts *opts, struct jerror *err)
{
	json_t *b = before ? json_loads(before, 0, NULL) : NULL, *a = json_loads(after, 0, NULL);
	assert_non_null(a);
	enum jerr rc = config_guard_app("/nonexistent/cfg", opts, NULL, b, a, err);
	json_decref(a);
	json_decref(b);
	return rc;
}

static const char *no_env(const char *name, void *ctx)
{
	(void)ctx;
	return strcmp(name, "GROUPAROO_OPTION__APP__BRAZE_API_KEY") ? NULL : "k";
}

static void test_keys_stay_with_their_host(void **state)
{
	(void)state;
	struct config_opts opts = { .getenv_fn = no_env, .allow_endpoints = "http://127.0.0.1:4710" };
	struct jerror err = JERROR_INIT;
	const char *stored = "{\"id\":\"braze\",\"type\":\"braze\",\"options\":{\"apiKey\":\"${JOEY_SECRET_BRAZE_APIKEY}\","
			     "\"restEndpoint\":\"https://rest.iad-01.braze.com\"}}";
	/* keep the key, same host: fine */
	assert_int_equal(guard(stored, "{\"id\":\"braze\",\"type\":\"braze\",\"name\":\"x\",\"options\":{\"apiKey\":\"****\","
				       "\"restEndpoint\":\"https://rest.iad-01.braze.com\"}}", &opts, &err), JERR_OK);
	assert_int_equal(guard(stored, stored, &opts, &err), JERR_OK);
	/* another host with the kept key: refused, whichever way it is kept */
	assert_int_equal(guard(stored, "{\"id\":\"braze\",\"type\":\"braze\",\"options\":{\"apiKey\":\"****\","
				       "\"restEndpoint\":\"https://rest.fra-01.braze.eu\"}}", &opts, &err), JERR_USAGE);
	assert_string_equal(err.msg.buf, "App \"braze\": options.apiKey must be sent again when restEndpoint changes");
	assert_non_null(strstr(err.hint.buf, "send the apiKey itself"));
	assert_int_equal(guard(stored, "{\"id\":\"braze\",\"type\":\"braze\",\"options\":{\"apiKey\":\"${JOEY_SECRET_BRAZE_APIKEY}\","
				       "\"restEndpoint\":\"http://127.0.0.1:4710\"}}", &opts, &err), JERR_USAGE);
	/* with the key itself: to Braze or an allowed endpoint only */
	assert_int_equal(guard(stored, "{\"id\":\"braze\",\"type\":\"braze\",\"options\":{\"apiKey\":\"new\","
				       "\"restEndpoint\":\"rest.fra-01.braze.eu\"}}", &opts, &err), JERR_OK);
	assert_int_equal(guard(stored, "{\"id\":\"braze\",\"type\":\"braze\",\"options\":{\"apiKey\":\"new\","
				       "\"restEndpoint\":\"http://127.0.0.1:4710\"}}", &opts, &err), JERR_OK);
	assert_int_equal(guard(stored, "{\"id\":\"braze\",\"type\":\"braze\",\"options\":{\"apiKey\":\"new\","
				       "\"restEndpoint\":\"https://evil.example\"}}", &opts, &err), JERR_USAGE);
	assert_string_equal(err.msg.buf, "App \"braze\": restEndpoint \"https://evil.example\" is not a Braze REST endpoint");
	/* new references: never through the API (Grouparoo's form included) */
	assert_int_equal(guard(stored, "{\"id\":\"braze\",\"type\":\"braze\",\"options\":{\"apiKey\":\"${PG_PASSWORD}\","
				       "\"restEndpoint\":\"https://rest.iad-01.braze.com\"}}", &opts, &err), JERR_USAGE);
	assert_non_null(strstr(err.msg.buf, "cannot be set to the reference \"${PG_PASSWORD}\""));
	assert_int_equal(guard(stored, "{\"id\":\"braze\",\"type\":\"braze\",\"options\":{\"apiKey\":\"BRAZE_API_KEY\","
				       "\"restEndpoint\":\"https://rest.iad-01.braze.com\"}}", &opts, &err), JERR_USAGE);
	/* a new app: the key itself, and a Braze host */
	assert_int_equal(guard(NULL, "{\"id\":\"b2\",\"type\":\"braze\",\"options\":{\"apiKey\":\"${JOEY_SECRET_BRAZE_APIKEY}\","
				     "\"restEndpoint\":\"https://rest.iad-01.braze.com\"}}", &opts, &err), JERR_USAGE);
	assert_int_equal(guard(NULL, "{\"id\":\"b2\",\"type\":\"braze\",\"options\":{\"apiKey\":\"k2\","
				     "\"restEndpoint\":\"https://rest.iad-01.braze.com\"}}", &opts, &err), JERR_OK);
	/* a database app: host and port are where the password goes */
	const char *pg = "{\"id\":\"pg\",\"type\":\"postgres\",\"options\":{\"database\":\"d\",\"host\":\"db\",\"password\":\"****\"}}";
	assert_int_equal(guard(pg, "{\"id\":\"pg\",\"type\":\"postgres\",\"options\":{\"database\":\"e\",\"host\":\"db\","
				   "\"password\":\"****\"}}", &opts, &err), JERR_OK);
	assert_int_equal(guard(pg, "{\"id\":\"pg\",\"type\":\"postgres\",\"options\":{\"database\":\"d\",\"host\":\"evil\","
				   "\"password\":\"****\"}}", &opts, &err), JERR_USAGE);
	assert_string_equal(err.msg.buf, "App \"pg\": options.password must be sent again when host changes");
	assert_int_equal(guard(pg, "{\"id\":\"pg\",\"type\":\"mysql\",\"options\":{\"database\":\"d\",\"host\":\"db\","
				   "\"password\":\"****\"}}", &opts, &err), JERR_USAGE);
	assert_non_null(strstr(err.msg.buf, "when the app's type changes"));
	jerror_release(&err);
}

/* TLS certificate and key paths are files joey reads: the data directory only, as options.file. */
static void test_tls_paths_confined(void **state)
{
	(void)state;
	char *root = tu_mkdtemp(), *rel_ok, *rel_out;
	struct jerror err = JERROR_INIT;
	tu_write(root, "data/ca.pem", "x\n");
	tu_write(root, "outside/key.pem", "x\n");
	struct config_opts opts = { .getenv_fn = no_env, .root = root, .data_dir = "data" };
	struct config_opts no_data = { .getenv_fn = no_env, .root = root };
	const char *pg = "{\"id\":\"pg\",\"type\":\"postgres\",\"options\":{\"database\":\"d\",\"password\":\"pw\"}}";
	char after[8192];
	rel_ok = "data/ca.pem";
	rel_out = "outside/key.pem";
	static const char *const opts_names[] = { "ssl_ca", "ssl_cert", "ssl_key" };
	for (size_t i = 0; i < 3; i++) {
		snprintf(after, sizeof(after),
			 "{\"id\":\"pg\",\"type\":\"postgres\",\"options\":{\"database\":\"d\",\"password\":\"new-pw\",\"%s\":\"%s\"}}",
			 opts_names[i], rel_ok);
		if (guard(pg, after, &opts, &err) != JERR_OK)
			fail_msg("%s inside the data directory: %s (%s)", opts_names[i], err.msg.buf, err.detail.buf);
		snprintf(after, sizeof(after),
			 "{\"id\":\"pg\",\"type\":\"postgres\",\"options\":{\"database\":\"d\",\"password\":\"new-pw\",\"%s\":\"%s\"}}",
			 opts_names[i], rel_out);
		assert_int_equal(guard(pg, after, &opts, &err), JERR_USAGE);
		assert_non_null(strstr(err.msg.buf, opts_names[i]));
		assert_non_null(strstr(err.msg.buf, "outside the data directory"));
		snprintf(after, sizeof(after),
			 "{\"id\":\"pg\",\"type\":\"postgres\",\"options\":{\"database\":\"d\",\"password\":\"new-pw\",\"%s\":\"/etc/passwd\"}}",
			 opts_names[i]);
		assert_int_equal(guard(pg, after, &opts, &err), JERR_USAGE);
		assert_int_equal(guard(pg, after, &no_data, &err), JERR_USAGE);
		assert_non_null(strstr(err.msg.buf, "cannot be set through the API here"));
		/* PEM text is not a path */
		snprintf(after, sizeof(after),
			 "{\"id\":\"pg\",\"type\":\"postgres\",\"options\":{\"database\":\"d\",\"password\":\"new-pw\",\"%s\":"
			 "\"-----BEGIN CERTIFICATE-----\\nMIIB\\n-----END CERTIFICATE-----\\n\"}}",
			 opts_names[i]);
		assert_int_equal(guard(pg, after, &no_data, &err), JERR_OK);
	}
	/* an email alert's CA bundle, likewise */
	{
#define ALERT_WITH_CA "{\"id\":\"ops\",\"type\":\"email\",\"options\":{\"host\":\"127.0.0.1\",\"from\":\"a@x\"," \
		      "\"to\":\"b@x\",\"password\":\"pw\",\"caFile\":\"%s\"}}"
		struct config_opts aopts = opts;
		aopts.allow_endpoints = "smtp://127.0.0.1:587";
		json_t *a;
		snprintf(after, sizeof(after), ALERT_WITH_CA, "data/ca.pem");
		a = json_loads(after, 0, NULL);
		if (config_guard_alert("/nonexistent/cfg", &aopts, NULL, NULL, a, &err) != JERR_OK)
			fail_msg("caFile inside the data directory: %s", err.msg.buf);
		json_decref(a);
		snprintf(after, sizeof(after), ALERT_WITH_CA, "/etc/ssl/private/x.pem");
		a = json_loads(after, 0, NULL);
		assert_int_equal(config_guard_alert("/nonexistent/cfg", &aopts, NULL, NULL, a, &err), JERR_USAGE);
		assert_string_equal(err.msg.buf, "Alert \"ops\": caFile \"/etc/ssl/private/x.pem\" cannot be used through the API: "
						 "it is outside the data directory");
		json_decref(a);
	}
	jerror_release(&err);
	tu_rmtree(root);
	free(root);
}

/* A warehouse app's endpoint (tests, proxies) takes its key elsewhere: only allowed ones. */
static void test_warehouse_endpoint(void **state)
{
	(void)state;
	struct config_opts opts = { .getenv_fn = no_env, .allow_endpoints = "http://127.0.0.1:4711" };
	struct jerror err = JERROR_INIT;
	const char *stored = "{\"id\":\"sf\",\"type\":\"snowflake\",\"options\":{\"account\":\"xy1\",\"username\":\"u\","
			     "\"password\":\"${JOEY_SECRET_SF_PASSWORD}\",\"warehouse\":\"W\",\"database\":\"D\"}}";
	/* no endpoint: the account's own host */
	assert_int_equal(guard(stored, "{\"id\":\"sf\",\"type\":\"snowflake\",\"name\":\"n\",\"options\":{\"account\":\"xy1\","
				       "\"username\":\"u\",\"password\":\"****\",\"warehouse\":\"W\",\"database\":\"D\"}}",
			       &opts, &err),
			 JERR_OK);
	/* an endpoint the operator did not allow, with the token sent again: refused */
	assert_int_equal(guard(stored, "{\"id\":\"sf\",\"type\":\"snowflake\",\"options\":{\"account\":\"xy1\",\"username\":\"u\","
				       "\"password\":\"pat\",\"warehouse\":\"W\",\"database\":\"D\",\"endpoint\":\"http://127.0.0.1:9\"}}",
			       &opts, &err),
			 JERR_USAGE);
	assert_non_null(strstr(err.msg.buf, "endpoint \"http://127.0.0.1:9\" is not allowed"));
	assert_null(strstr(err.msg.buf, "pat"));
	jerror_release(&err);
	/* keeping the stored token while the endpoint changes: refused (the secret must be sent again) */
	assert_int_equal(guard(stored, "{\"id\":\"sf\",\"type\":\"snowflake\",\"options\":{\"account\":\"xy1\",\"username\":\"u\","
				       "\"password\":\"****\",\"warehouse\":\"W\",\"database\":\"D\",\"endpoint\":\"http://127.0.0.1:4711\"}}",
			       &opts, &err),
			 JERR_USAGE);
	jerror_release(&err);
	/* an allowed endpoint with the token sent again: fine */
	assert_int_equal(guard(stored, "{\"id\":\"sf\",\"type\":\"snowflake\",\"options\":{\"account\":\"xy1\",\"username\":\"u\","
				       "\"password\":\"pat\",\"warehouse\":\"W\",\"database\":\"D\",\"endpoint\":\"http://127.0.0.1:4711\"}}",
			       &opts, &err),
			 JERR_OK);
	jerror_release(&err);
}

/* Secret option names by convention: any case, with '_' or '-' in them (Grouparoo's private_key). */
static void test_sensitive_names(void **state)
{
	(void)state;
	static const char *const yes[] = { "apiKey", "api_key", "API-KEY", "password", "private_key", "privateKey",
					   "client_secret", "refresh_token", "securityToken", "private_key_passphrase",
					   "options: {\"api_key\": 1}" };
	static const char *const no[] = { "restEndpoint", "ssl_cert", "client_email", "statementTimeout", "table",
					  "api", "private", "", NULL };
	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++)
		if (!catalog_option_sensitive(yes[i]))
			fail_msg("%s should be a secret option", yes[i]);
	for (size_t i = 0; no[i]; i++)
		if (catalog_option_sensitive(no[i]))
			fail_msg("%s should not be a secret option", no[i]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_braze_endpoints),
		cmocka_unit_test(test_allow_list),
		cmocka_unit_test(test_path_inside),
		cmocka_unit_test(test_keys_stay_with_their_host),
		cmocka_unit_test(test_tls_paths_confined),
		cmocka_unit_test(test_warehouse_endpoint),
		cmocka_unit_test(test_sensitive_names),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
