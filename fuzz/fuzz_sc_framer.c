/* fuzz_sc_framer.c - the SimulCrypt stream framer (simulcrypt/framer.h) of
 * the ECMG, EMMG, SCS and MUX on arbitrary byte streams: the first byte
 * picks exact or bulk reads, the second the read size, the third the
 * largest message kept. Every message returned is whole (5 + its length
 * field, <= max), oversized ones are reported with their header, and the
 * bytes returned plus the bytes skipped never exceed the bytes fed. */
#include <stdint.h>
#include <string.h>
#include "simulcrypt/framer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t buf[4096];
	struct sc_framer f;
	size_t step, max, at = 3, out = 0;
	bool exact;

	if (size < 3)
		return 0;
	exact = data[0] & 1;
	step = 1 + data[1] * 17u;
	max = SC_HEADER_BYTES + data[2] * 16u;
	sc_framer_init(&f, buf, sizeof(buf), max);
	for (;;) {
		uint8_t *msg, *dst;
		size_t len, room;
		int k;

		while ((k = sc_framer_next(&f, &msg, &len)) != SC_FRAME_NONE) {
			if (len != SC_HEADER_BYTES + (size_t)(msg[3] << 8 | msg[4]))
				__builtin_trap();
			if (k == SC_FRAME_MSG && len > f.max_msg)
				__builtin_trap();
			if (k == SC_FRAME_TOO_LONG && len <= f.max_msg)
				__builtin_trap();
			out += k == SC_FRAME_MSG ? len : 0;
		}
		if (at == size)
			break;
		dst = sc_framer_room(&f, exact, &room);
		if (room == 0 || dst < buf || dst + room > buf + sizeof(buf))
			__builtin_trap();
		if (room > step)
			room = step;
		if (room > size - at)
			room = size - at;
		memcpy(dst, data + at, room);
		sc_framer_fill(&f, room);
		at += room;
	}
	if (out > size - 3)
		__builtin_trap();
	return 0;
}
