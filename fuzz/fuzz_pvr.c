/* fuzz_pvr.c - a recording file (stb/pvr.h: outside data, it sits on a
 * disk anyone may edit) played on a box with a fixed device key: header
 * parse, box check, header tag, every chunk's framing and tag. Whatever the
 * bytes, nothing reaches the sink unless every tag verified, and then only
 * whole TS packets. Seeds: fuzz/corpus/pvr (valid recordings of 0, 3 and
 * 70 packets made by pvr_rec with this key and box id). */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include "stb/pvr.h"

#define FUZZ_BOX_ID 1001

static int sink(void *ctx, const uint8_t *pkts, size_t n)
{
	(void)ctx;
	for (size_t i = 0; i < n; i++)
		if (pkts[i * 188] != 0x47)
			__builtin_trap(); /* the recorder only writes whole packets */
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint8_t key[16] = { 0xA1, 0xA1, 0xA1, 0xA1, 0xA1, 0xA1, 0xA1, 0xA1,
		0xA1, 0xA1, 0xA1, 0xA1, 0xA1, 0xA1, 0xA1, 0xA1 };
	struct pvr_keyer k;
	struct pvr_info info;
	FILE *f;

	(void)pvr_header_parse(data, size, &info);
	if (size == 0 || pvr_keyer_device(key, sizeof(key), FUZZ_BOX_ID, &k) != 0)
		return 0;
	f = fmemopen((void *)data, size, "rb");
	if (f) {
		(void)pvr_play(&k, f, 1700000000000ull, sink, NULL, &info);
		fclose(f);
	}
	pvr_keyer_free(&k);
	return 0;
}
