/*
 * fuzz_descramble.c - libFuzzer target: arbitrary bytes cut into 188-byte
 * packets (at most 64) and descrambled with a CSA2 context (both keys) and
 * a CISSA context (even key only, so odd packets count as missing). Any
 * header, adaptation length or scrambling_control value must be handled
 * without reading or writing outside the packets (ETSI TS 100 289,
 * ETSI TS 103 127, ISO/IEC 13818-1 2.4.3).
 */
#include <stdlib.h>
#include <string.h>
#include "cipher/cipher.h"
#include "ts/ts.h"

#define MAX_PKTS 64

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint8_t key[16] = {0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77,
					0x88, 0x99, 0xAA, 0xBB, 0xCC, 0xDD, 0xEE, 0xFF};
	uint8_t *buf, *p[MAX_PKTS];
	size_t n = 0, len = size < MAX_PKTS * TS_PACKET_BYTES ? size : MAX_PKTS * TS_PACKET_BYTES;
	struct ts_cipher *csa = ts_cipher_new(CW_ALG_CSA2, true);
	struct ts_cipher *cissa = ts_cipher_new(CW_ALG_CISSA, false);

	buf = malloc(len ? len : 1);
	if (!buf || !csa || !cissa)
		abort();
	if (ts_cipher_set_key(csa, CW_EVEN, key, 8) != 0 || ts_cipher_set_key(csa, CW_ODD, key + 8, 8) != 0 ||
	    ts_cipher_set_key(cissa, CW_EVEN, key, 16) != 0)
		abort();
	for (int a = 0; a < 2; a++) {
		size_t done = 0, missing = 0;

		memcpy(buf, data, len);
		for (n = 0; (n + 1) * TS_PACKET_BYTES <= len; n++)
			p[n] = buf + n * TS_PACKET_BYTES;
		(void)ts_cipher_descramble(a ? cissa : csa, p, n, &done, &missing);
		if (done + missing > n)
			abort();
	}
	ts_cipher_free(csa);
	ts_cipher_free(cissa);
	free(buf);
	return 0;
}
