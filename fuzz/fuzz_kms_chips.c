/* fuzz_kms_chips.c - the chip-list (CSV) parser of kms order import, and
 * the wrapped-secret parser (skipping inputs that ask for scrypt work). */
#include <stdint.h>
#include <stdlib.h>
#include "kms/kms.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint64_t *ids = NULL;
	uint8_t sec[64];
	size_t n = 0, bad = 0;

	if (kms_chips_parse(data, size, &ids, &n, &bad) == 0)
		free(ids);
	if (size > 8 && data[8] == 10 && size < 200)
		(void)kms_wrap_decode(data, size, "fuzz", sec, sizeof(sec), &n);
	return 0;
}
