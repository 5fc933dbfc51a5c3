/*
 * payload.c: libFuzzer target for stored-payload comparison (src/engine/payload.c):
 * the canonical fast-path scanner and the jansson fallback, on arbitrary old/new
 * payload pairs (a state row can hold anything a corrupt or older file holds).
 * Input: old payload, a 0xff byte, new payload.
 */
#include <stdint.h>
#include <string.h>

#include "base/arena.h"
#include "engine/payload.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *sep = memchr(data, 0xff, size);
	struct slice old = { (const char *)data, sep ? (size_t)(sep - data) : size };
	struct slice new = { sep ? (const char *)sep + 1 : "", sep ? size - (size_t)(sep - data) - 1 : 0 };
	struct arena a;
	struct payload_diff d;
	struct jerror err = JERROR_INIT;

	arena_init(&a);
	if (payload_diff(old, new, &a, &d, &err) == JERR_OK) {
		for (size_t i = 0; i < d.n_changes; i++)
			if (!d.changes[i].field || !d.changes[i].old_json || !d.changes[i].new_json ||
			    d.changes[i].new_len != strlen(d.changes[i].new_json))
				__builtin_trap();
	}
	(void)payload_diff_full(new, old, &a, &d, &err);
	jerror_release(&err);
	arena_release(&a);
	return 0;
}
