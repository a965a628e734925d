/* fuzz_keystore.c - keystore_decode with a fixed passphrase. Inputs asking
 * for more scrypt work than the cheapest allowed (log2 N 10, r 8, p 1) are
 * skipped to keep the fuzzer fast; the decoder's own bounds are tested in
 * tests/cas. */
#include <stdint.h>
#include "cas/keys.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct keystore *ks = NULL;

	if (size == KEYSTORE_FILE_BYTES && (data[8] > 11 || data[9] | data[10] | data[11] || data[12] > 8 ||
	    data[13] | data[14] | data[15] || data[16] > 1))
		return 0;
	if (keystore_decode(data, size, "fuzz passphrase", &ks) == 0)
		keystore_free(ks);
	return 0;
}
