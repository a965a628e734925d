/* fuzz_secfile.c - a file of sections in hex (secfile_parse: ts/secfile.h)
 * on arbitrary bytes: on success every section is whole (its length field
 * matches) and there are no more than the file's lines; on failure
 * nothing is returned. */
#include <stdint.h>
#include <string.h>
#include "ts/psi.h"
#include "ts/secfile.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct secfile sf;
	size_t bad = 0, lines = 1;
	int r = secfile_parse(data, size, 64, &sf, &bad);

	for (size_t i = 0; i < size; i++)
		lines += data[i] == '\n';
	if (r != 0) {
		if (sf.n || sf.sec || sf.len || bad > lines)
			__builtin_trap();
		return 0;
	}
	if (sf.n == 0 || sf.n > lines || sf.n > 64)
		__builtin_trap();
	for (size_t i = 0; i < sf.n; i++)
		if (sf.len[i] < 3 || sf.len[i] > PSI_MAX_SECTION ||
		    (size_t)(((sf.sec[i][1] & 0x0F) << 8) | sf.sec[i][2]) + 3 != sf.len[i])
			__builtin_trap();
	secfile_free(&sf);
	return 0;
}
