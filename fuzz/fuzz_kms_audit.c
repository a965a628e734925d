/* fuzz_kms_audit.c - the KMS audit.log chain reader (kms_audit_walk_buf,
 * kms.h) on arbitrary bytes: it never reads past the buffer, and what it
 * accepts is consistent (one '\n'-ended line per entry, no bad line). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "kms/kms.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t at[32], head[32];
	size_t n = 0, bad = 0, nl = 0;
	int r = kms_audit_walk_buf(data, size, 2, at, &n, head, &bad);

	for (size_t i = 0; i < size; i++)
		nl += data[i] == '\n';
	if (r == 0 && (bad != 0 || n != nl || (size && data[size - 1] != '\n')))
		__builtin_trap();
	if (r != 0 && (bad == 0 || bad > nl + 1))
		__builtin_trap();
	return 0;
}
