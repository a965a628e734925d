/* fuzz_ota.c - the OTA carousel: ota_section_parse on the bytes as one
 * section, and the box's collector on them as TS packets (PAT -> PMT ->
 * carousel PID -> blocks). Bounded, never trusts a declared length. */
#include <stdint.h>
#include <stdlib.h>
#include "ts/ota.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ota_section s;
	struct ota_rx *rx;
	uint8_t *mod;
	size_t len;

	if (ota_section_parse(data, size, &s) == 0 && (s.module_len == 0 || s.module_len > OTA_MAX_MODULE))
		__builtin_trap();
	if (ota_rx_new(&rx) != 0)
		return 0;
	if (ota_rx_feed(rx, data, size / 188) != 0)
		__builtin_trap();
	if (ota_rx_take(rx, &mod, &len, NULL) == 0)
		free(mod);
	ota_rx_free(rx);
	return 0;
}
