/*
 * fuzz_stb.c - arbitrary bytes as a transport stream into the set-top box
 * (src/stb) with a fixed-CW client: PAT/PMT/CAT parsing, section assembly,
 * PID maps and descrambling must survive anything, and pass every packet.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "stb/stb.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint8_t cw[16] = { 1, 2, 3, 6, 5, 6, 7, 18, 9, 10, 11, 12, 13, 14, 15, 16 };
	struct cas_client c = { 0 };
	struct stb_config cfg = { .client = &c, .csa2_reduce = true };
	struct stb *box = NULL;
	size_t n = size / TS_PACKET_BYTES;
	uint8_t *buf = malloc(n * TS_PACKET_BYTES + 1);

	if (!buf || stb_fixed_cw_client_new(size % 2 ? CW_ALG_CISSA : CW_ALG_CSA2, cw, size % 2 ? 16 : 8, &c) != 0)
		goto out;
	if (stb_new(&cfg, &box) == 0) {
		struct stb_report *rep = malloc(sizeof(*rep));

		/* in two halves, the second in place */
		(void)stb_feed(box, data, n / 2, buf);
		memcpy(buf + (n / 2) * TS_PACKET_BYTES, data + (n / 2) * TS_PACKET_BYTES, (n - n / 2) * TS_PACKET_BYTES);
		(void)stb_feed(box, buf + (n / 2) * TS_PACKET_BYTES, n - n / 2, buf + (n / 2) * TS_PACKET_BYTES);
		if (rep && stb_report(box, rep) == 0 && rep->packets != n)
			abort();
		free(rep);
	}
out:
	stb_free(box);
	cas_client_free(&c);
	free(buf);
	return 0;
}
