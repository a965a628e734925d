/* fuzz_dburi.c - the --db-file first-line parser (dburi_parse: sms/dburi.h)
 * on arbitrary files: on success the URI is NUL-free, not empty, a prefix
 * of the input, and reads back the same; on failure the output is "". */
#include <stdint.h>
#include <string.h>
#include "sms/dburi.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char out[DBURI_FILE_MAX_BYTES + 1], back[DBURI_FILE_MAX_BYTES + 1];
	size_t n;

	if (dburi_parse(data, size, out, sizeof(out)) != 0) {
		if (out[0] != '\0')
			__builtin_trap();
		return 0;
	}
	n = strlen(out);
	if (n == 0 || n > size || memcmp(out, data, n) != 0 || memchr(out, '\n', n))
		__builtin_trap();
	if (dburi_parse((const uint8_t *)out, n, back, sizeof(back)) != 0 || strcmp(out, back) != 0)
		__builtin_trap();
	return 0;
}
