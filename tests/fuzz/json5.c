/* json5.c: libFuzzer target for the JSON5 config parser (src/config/json5.c). */
#include <stddef.h>
#include <stdint.h>

#include "base/arena.h"
#include "config/json5.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct arena a;
	struct j5_node *root;
	struct j5_error e;
	arena_init(&a);
	(void)json5_parse((const char *)data, size, &a, &root, &e);
	arena_release(&a);
	return 0;
}
