/*
 * fuzz_ts_loop.c - libFuzzer target: the input (cut to whole 188-byte
 * packets) looped 3 times by ts_loop (src/ts/ts_loop.h); the output, when
 * there is one, must be 3 times the input and start with it unchanged.
 */
#include <stdlib.h>
#include <string.h>
#include "ts/ts.h"
#include "ts/ts_loop.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t len = size - size % TS_PACKET_BYTES, olen = 0;
	uint8_t *out = NULL;

	if (ts_loop(data, len, 3, 1u << 24, &out, &olen, NULL) == 0 &&
	    (olen != 3 * len || memcmp(out, data, len) != 0))
		abort();
	free(out);
	return 0;
}
