/* explain.c: tests for src/server/explain.c (plain words for failed rows). */
#include "support/testutil.h"

#include <string.h>

#include "server/serverp.h"

/* the error texts braze.c and run.c store, as they appear in the ledger */
static void test_codes_and_retry(void **s)
{
	static const struct {
		const char *error, *code;
		bool retry;
	} cases[] = {
		{ "BLACKLISTED_EXTERNAL_USER_ID", "BLACKLISTED_EXTERNAL_USER_ID", false },
		{ "provided external_id is blacklisted and disallowed", "BLACKLISTED_EXTERNAL_USER_ID", false },
		{ "EXTERNAL_USER_ID_TOO_LARGE", "EXTERNAL_USER_ID_TOO_LARGE", false },
		{ "HTTP 400: EMAIL_BAD_FORMAT", "EMAIL_BAD_FORMAT", false },
		{ "The value provided for the 'email' field is not a valid email.", "EMAIL_BAD_FORMAT", false },
		{ "BAD_SUBSCRIPTION_GROUP_ID", "BAD_SUBSCRIPTION_GROUP_ID", false },
		{ "'external_id' or 'braze_id' or 'user_alias' is required", "missing identifier", false },
		{ "HTTP 400: Valid data must be provided in the 'attributes' field", "HTTP 400", false },
		{ "POST /users/track: HTTP 503: Service Unavailable (gave up after 5 attempts)", "Braze unavailable", true },
		{ "POST /users/track: HTTP 502", "HTTP 5xx", true },
		{ "POST /users/track: unexpected HTTP 418", "HTTP 4xx", false },
		{ "POST /users/track: HTTP 429 (gave up after 5 attempts)", "Braze unavailable", true },
		{ "HTTP 429", "HTTP 429", true },
		{ "row 12 of users.csv is unreadable: bad quote", "unreadable row", false },
		{ "rejected by Braze", "rejected", false },
		{ "Braze rejected the API key", "key refused", false },
		{ "Braze refused the request (access denied)", "permission missing", false },
		{ "Braze does not know this endpoint", "wrong address", false },
		{ "Braze unreachable: no connection to http://127.0.0.1:9", "Braze unreachable", true },
		{ "run interrupted; batches in flight were committed", "interrupted", true },
		{ "something new", "unknown", true },
		{ "", "unknown", true },
	};
	(void)s;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct explanation *e = explain_error(cases[i].error);
		if (strcmp(e->code, cases[i].code) || e->retry != cases[i].retry)
			fail_msg("\"%s\": got %s (retry %d), want %s (retry %d)", cases[i].error, e->code, e->retry,
				 cases[i].code, cases[i].retry);
		assert_true(e->title[0] && e->action[0]);
	}
	assert_string_equal(explain_error(NULL)->code, "unknown");
}

/* every explanation is plain words: no option names or config paths */
static void test_plain_words(void **s)
{
	static const char *const errors[] = { "BLACKLISTED_EXTERNAL_USER_ID", "HTTP 401", "HTTP 403", "HTTP 404", "HTTP 413",
					      "EMAIL_BAD_FORMAT", "BAD_PUSH_TOKEN", "x" };
	(void)s;
	for (size_t i = 0; i < sizeof(errors) / sizeof(errors[0]); i++) {
		const struct explanation *e = explain_error(errors[i]);
		for (const char *const *w = (const char *const[]){ "apiKey", "restEndpoint", "options.", "ledger", NULL }; *w; w++)
			if (strstr(e->title, *w) || strstr(e->action, *w))
				fail_msg("%s: \"%s\" in \"%s\" / \"%s\"", errors[i], *w, e->title, e->action);
	}
	json_t *j = explain_json(explain_error("HTTP 502"));
	assert_true(json_is_true(json_object_get(j, "retry")));
	assert_string_equal(json_string_value(json_object_get(j, "code")), "HTTP 5xx");
	json_decref(j);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_codes_and_retry),
		cmocka_unit_test(test_plain_words),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
