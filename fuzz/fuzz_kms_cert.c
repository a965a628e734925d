/* fuzz_kms_cert.c - operator certificate and CRL parsers. */
#include <stdint.h>
#include <stdlib.h>
#include "cas/cert.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cert c;
	uint64_t num = 0, *s = NULL;
	size_t n = 0;

	(void)cert_parse(data, size, &c);
	if (crl_parse(data, size, &num, &s, &n) == 0)
		free(s);
	return 0;
}
