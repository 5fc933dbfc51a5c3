/*
 * json_fast_test.c: braze-sim-jsontest, json_fast_loadb against jansson's json_loadb.
 * For a corpus of valid and invalid JSON, and for many random mutations of it: when
 * the fast reader gives a value, jansson must give the same value (same dump: types,
 * key order, strings), and the fast reader must not give up on the plain inputs the
 * simulator sees most. Exit 0 and one summary line, or 1 naming the first difference.
 * Run by tests/e2e/braze_sim.sh.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json_fast.h"

static const char *const must_read[] = {
	"{}", "[]", " { \"a\" : 1 } ", "\t\r\n[1,2,3]\n",
	("{\"attributes\":[{\"external_id\":\"1\",\"email\":\"a@b.co\",\"age\":30,\"score\":1.5,\"vip\":false,"
	 "\"signup\":\"2021-03-05T10:20:30Z\",\"groups\":{\"add\":[\"VIP\"],\"remove\":[]},\"x\":null}]}"),
	"{\"a\":1,\"b\":2,\"a\":3}",                       /* a repeated key: first place, last value */
	"{\"s\":\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"}",          /* every short escape */
	"{\"u\":\"\\u00e9\\u20ac\\ud83d\\ude00\\u0041\"}", /* \u escapes, a surrogate pair */
	"{\"u\":\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"}", /* UTF-8 as is */
	"[-0,0,1,-1,9223372036854775807,-9223372036854775808]",
	"[0.5,-0.0,1e5,1E+2,2.5e-3,1e-400,123456789.125]",
	"[true,false,null,[],{},[[]],{\"\":{}}]",
	"{\"nested\":{\"a\":{\"b\":{\"c\":[1,{\"d\":\"e\"}]}}}}",
	"{\n  \"lines\": [1,\r\n 2],\n  \"s\": \"a\\nb\"\n}\n",
};

static const char *const corpus_bad[] = {
	"", " ", "1", "\"s\"", "true", "{", "[", "{]", "[}", "{\"a\"}", "{\"a\":}", "{\"a\":1,}", "[1,]",
	"[01]", "[1.]", "[.5]", "[1e]", "[1e+]", "[-]", "[+1]", "[0x10]", "[1e400]", "[-1e400]",
	"[9223372036854775808]", "[-9223372036854775809]", "[\"\\u0000\"]", "{\"a\\u0000b\":1}",
	"[\"\\ud800\"]", "[\"\\udc00\"]", "[\"\\ud800\\u0041\"]", "[\"\\x\"]", "[\"\\u12\"]", "[\"\x01\"]",
	"[\"\xc0\xaf\"]", "[\"\xed\xa0\x80\"]", "[\"\xf4\x90\x80\x80\"]", "[\"\xe0\x80\xaf\"]", "[\"\x80\"]",
	"[\"abc", "[1] [2]", "[1]x", "[tru]", "[nul]", "[falsey]", "{\"a\" 1}", "{1:2}", "[\"a\"\"b\"]",
	"[1 2]", "\xef\xbb\xbf[]",
};

static unsigned long long rng = 88172645463325252ULL;
static unsigned long rnd(unsigned long n)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (unsigned long)(rng % n);
}

static unsigned long fast_read, fast_gave_up, jansson_only_errors;

/* 0 when the readers agree on buf; else 1 with a message. */
static int compare(const char *buf, size_t len, bool must)
{
	json_error_t e;
	bool one_line = false;
	json_t *a = json_fast_loadb(buf, len, &one_line), *b = json_loadb(buf, len, 0, &e);
	int bad = 0;
	if (a && one_line != (!memchr(buf, '\n', len) && !memchr(buf, '\r', len))) {
		fprintf(stderr, "one_line is %d for %.*s\n", one_line, (int)len, buf);
		bad = 1;
	}
	if (a) {
		fast_read++;
		char *da = json_dumps(a, JSON_COMPACT | JSON_ENCODE_ANY);
		char *db = b ? json_dumps(b, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
		if (!b) {
			fprintf(stderr, "fast reader accepted what jansson refuses (%s): %.*s\n", e.text, (int)len, buf);
			bad = 1;
		} else if (strcmp(da, db)) {
			fprintf(stderr, "values differ for %.*s:\n  fast    %s\n  jansson %s\n", (int)len, buf, da, db);
			bad = 1;
		}
		free(da);
		free(db);
	} else {
		fast_gave_up++;
		if (!b)
			jansson_only_errors++;
		if (must) {
			fprintf(stderr, "fast reader gave up on %.*s\n", (int)len, buf);
			bad = 1;
		}
	}
	json_decref(a);
	json_decref(b);
	return bad;
}

int main(void)
{
	static const char alphabet[] = "{}[]:,\"\\ -+.0123456789eEuabdfnrtl\x01\x7f\xc3\xa9\xed\xf0\x80";
	char buf[1024];
	size_t n_must = sizeof(must_read) / sizeof(must_read[0]), n_bad = sizeof(corpus_bad) / sizeof(corpus_bad[0]);

	for (size_t i = 0; i < n_must; i++)
		if (compare(must_read[i], strlen(must_read[i]), true))
			return 1;
	for (size_t i = 0; i < n_bad; i++)
		if (compare(corpus_bad[i], strlen(corpus_bad[i]), false))
			return 1;
	/* deep nesting: jansson's business */
	char deep[1200];
	memset(deep, '[', 600);
	memset(deep + 600, ']', 600);
	if (compare(deep, sizeof(deep), false))
		return 1;
	for (unsigned long k = 0; k < 200000; k++) {
		const char *src = must_read[rnd(n_must)];
		size_t len = strlen(src);
		memcpy(buf, src, len);
		for (unsigned long m = 1 + rnd(3); m > 0; m--) {
			size_t at = len ? rnd(len) : 0;
			char c = alphabet[rnd(sizeof(alphabet) - 1)];
			switch (rnd(3)) {
			case 0: /* replace */
				if (len)
					buf[at] = c;
				break;
			case 1: /* insert */
				if (len + 1 < sizeof(buf)) {
					memmove(buf + at + 1, buf + at, len - at);
					buf[at] = c;
					len++;
				}
				break;
			default: /* delete */
				if (len) {
					memmove(buf + at, buf + at + 1, len - at - 1);
					len--;
				}
			}
		}
		if (compare(buf, len, false))
			return 1;
	}
	printf("json_fast agrees with jansson: %lu values read alike, %lu left to jansson (%lu of them invalid)\n",
	       fast_read, fast_gave_up, jansson_only_errors);
	return 0;
}
