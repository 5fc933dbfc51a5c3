/*
 * braze.c: libFuzzer target for reading Braze's answers (src/dest/braze.c through
 * dest/braze_internal.h): any body, as /users/track per-row errors for a request of
 * up to 75 rows and as a /users/export/ids answer for the keys "0".."74".
 * Input: one byte for the number of rows in the request, then the response body.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "dest/braze_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_ROWS 75 /* /users/track's max_rows */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *errs[MAX_ROWS] = { 0 }, *again[MAX_ROWS] = { 0 };
	if (size < 1)
		return 0;
	size_t n = data[0] % (MAX_ROWS + 1);
	json_t *body = braze_response_parse((struct slice){ (const char *)data + 1, size - 1 });
	FUZZ_CHECK(size > 1 || !body); /* an empty body is no answer */

	const char *msg = braze_response_message(body);
	FUZZ_CHECK(!msg || body);
	if (msg)
		(void)strlen(msg);

	size_t found = braze_response_row_errors(body, n, errs), named = 0;
	for (size_t i = 0; i < n; i++)
		if (errs[i]) {
			(void)strlen(errs[i]);
			named++;
		}
	FUZZ_CHECK(found == named);
	/* the same answer names the same rows with the same errors */
	FUZZ_CHECK(braze_response_row_errors(body, n, again) == found);
	FUZZ_CHECK(!memcmp(errs, again, sizeof(errs)));

	for (int k = 0; k < MAX_ROWS; k++) {
		char key[8];
		int len = snprintf(key, sizeof(key), "%d", k);
		bool has = braze_response_has_user(body, (struct slice){ key, (size_t)len });
		FUZZ_CHECK(!has || body);
	}
	json_decref(body);
	return 0;
}
