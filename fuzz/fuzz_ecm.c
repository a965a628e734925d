/* fuzz_ecm.c - ecm_parse on arbitrary bytes, then ecm_open with a fixed
 * package key (must fail cleanly: the fuzzer cannot forge the package MAC or the GCM
 * tag). Seeds: fuzz/corpus/ecm (ecm-N: format v1, refused; v2-*: v2; v3-*: v3, extended packages). */
#include <stdint.h>
#include <string.h>
#include "cas/ecm.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ecm_view v;
	struct ecm_cws cws;
	struct pkg_key k;

	if (ecm_parse(data, size, &v) != 0)
		return 0;
	memset(&k, 0x42, sizeof(k));
	k.epoch = v.epoch;
	k.pkg = (uint16_t)(v.nwraps ? ecm_wrap_pkg(&v, 0) : 0);
	if (ecm_open(&v, &k, &cws) == 0)
		__builtin_trap(); /* a forged ECM opened */
	return 0;
}
