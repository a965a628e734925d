/*
 * fuzz_simulcrypt.c - libFuzzer target for the SimulCrypt codec
 * (src/simulcrypt, ETSI TS 103 197): decode as both interfaces with the
 * version in the header; whatever decodes must re-encode byte for byte, and
 * whatever fails must yield a well-formed error reply that decodes back.
 */
#include <stdlib.h>
#include <string.h>
#include "simulcrypt/simulcrypt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct sc_msg m;
	static uint8_t out[SC_MAX_MSG_BYTES];
	struct sc_fault f;
	size_t n = 0;

	for (int i = 0; i < 2; i++) {
		enum sc_iface iface = (enum sc_iface)i;
		uint8_t v = size ? data[0] : 2;

		if (sc_decode(iface, v, data, size, &m, &f) == 0) {
			if (sc_encode_msg(&m, out, sizeof(out), &n) != 0 || n != size ||
			    memcmp(out, data, size) != 0)
				abort();
		} else {
			if (sc_build_error(iface, v, &f, 1, out, sizeof(out), &n) != 0 ||
			    sc_decode(iface, v, out, n, &m, NULL) != 0)
				abort();
		}
	}
	return 0;
}
