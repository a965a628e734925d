/* fuzz_vkeys.c - a vendor's opened key file (vkeys_parse: cas/vkeys.h) on
 * arbitrary bytes: on success the entries are sorted, distinct, each found
 * by vkeys_find, and no more than the file's lines; on failure nothing is
 * returned. */
#include <stdint.h>
#include <string.h>
#include "cas/vkeys.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct vkey *v = NULL;
	size_t n = 0, bad = 0, lines = 1;
	int r = vkeys_parse(data, size, 64, &v, &n, &bad);

	for (size_t i = 0; i < size; i++)
		lines += data[i] == '\n';
	if (r != 0) {
		if (v || n)
			__builtin_trap();
		return 0;
	}
	if (n > lines || n > 64 || (n && !v))
		__builtin_trap();
	for (size_t i = 0; i < n; i++) {
		if (i && v[i].chip <= v[i - 1].chip)
			__builtin_trap();
		if (vkeys_find(v, n, v[i].chip) != &v[i])
			__builtin_trap();
	}
	vkeys_free(v, n);
	return 0;
}
