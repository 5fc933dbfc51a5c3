/* timeparse.c: libFuzzer target for date parsing and formatting (src/base/timeutil.c). */
#include <stdint.h>

#include "base/strbuf.h"
#include "base/timeutil.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int64_t ms;
	if (time_parse((const char *)data, size, &ms)) {
		struct strbuf sb = STRBUF_INIT;
		int64_t back;
		time_format_iso(&sb, ms);
		/* what joey writes it must read back to the same instant */
		if (sb.len == 24 && (!time_parse(sb.buf, sb.len, &back) || back != ms))
			__builtin_trap();
		strbuf_release(&sb);
	}
	return 0;
}
