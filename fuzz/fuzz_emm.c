/* fuzz_emm.c - emm_parse on arbitrary bytes (for the serial of the first
 * record, so group records are reached), then emm_open with a fixed card key
 * (must fail cleanly: the fuzzer cannot forge the GCM tag), and the state
 * file decoder on the same bytes. */
#include <stdint.h>
#include <string.h>
#include "cas/emm.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct emm_content c;
	static struct emm_card_state st;
	struct emm_view v;
	uint8_t k[CARD_KEY_BYTES];
	uint64_t serial = 0;

	memset(k, 0x42, sizeof(k));
	if (emm_state_decode(data, size, 0, k, &st) == 0)
		__builtin_trap(); /* a forged state file opened */
	/* unique: serial at 6; group: first record's serial at 15 */
	if (size >= 23)
		for (int i = 0; i < 8; i++)
			serial = serial << 8 | data[(data[0] == EMM_TABLE_GROUP ? 15 : 6) + i];
	if (emm_parse(data, size, serial, &v) != 0)
		return 0;
	if (emm_open(&v, k, &c) == 0)
		__builtin_trap(); /* a forged EMM opened */
	return 0;
}
