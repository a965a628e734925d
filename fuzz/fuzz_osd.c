/* fuzz_osd.c - osd_parse (fingerprint / message items of ECM extension
 * blocks and EMM OSD records) on arbitrary bytes; a parsed item must
 * re-encode to the same bytes (the parser accepts only what the writer
 * writes). Seeds: fuzz/corpus/osd (fp-*, msg-*). */
#include <stdint.h>
#include <string.h>
#include "cas/osd.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct osd_item it;
	uint8_t out[OSD_MAX_BYTES];
	size_t n = 0;
	int r;

	if (osd_parse(data, size, &it) != 0)
		return 0;
	r = it.kind == OSD_KIND_FINGERPRINT ? osd_fp_encode(&it.u.fp, out, sizeof(out), &n)
		: osd_msg_encode(&it.u.msg, out, sizeof(out), &n);
	if (r != 0 || n != size || memcmp(out, data, size) != 0)
		__builtin_trap(); /* accepted something the writer would not write */
	return 0;
}
