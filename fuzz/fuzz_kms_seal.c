/* fuzz_kms_seal.c - sealed key file parser (black-box and vendor files),
 * then seal_open with a fixed key pair (fails at the signature). */
#include <stdint.h>
#include <stdlib.h>
#include "kms/seal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint8_t key[32] = {1, 2, 3};
	struct seal_header h;
	struct seal_record *r = NULL;

	if (seal_parse(data, size, &h) == 0 && seal_open(data, size, h.signer_pub, key, &h, &r) == 0)
		seal_records_free(r, h.count);
	return 0;
}
