/*
 * fuzz_ts.c - libFuzzer target: input cut into 188-byte packets, each run
 * through ts_parse and section reassembly on PIDs 0, 1 and 0x1000, every
 * complete section through the PAT/CAT/PMT parsers (ISO/IEC 13818-1 2.4).
 */
#include <stdlib.h>
#include "ts/psi.h"

static int on_section(void *ctx, uint16_t pid, const uint8_t *sec, size_t len)
{
	static struct pmt pmt;
	struct pat pat;
	struct cat cat;

	(void)ctx;
	if (pid == TS_PID_PAT && pat_parse(sec, len, &pat) != 0)
		return 0;
	if (pid == TS_PID_CAT && cat_parse(sec, len, &cat) != 0)
		return 0;
	if (pid != TS_PID_PAT && pid != TS_PID_CAT && pmt_parse(sec, len, &pmt) != 0)
		return 0;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct psi_asm a[3];
	static const uint16_t pids[3] = { TS_PID_PAT, TS_PID_CAT, 0x1000 };

	for (int k = 0; k < 3; k++)
		psi_asm_init(&a[k], pids[k]);
	for (size_t off = 0; size - off >= TS_PACKET_BYTES; off += TS_PACKET_BYTES) {
		struct ts_hdr h;

		if (ts_parse(data + off, &h) != 0)
			continue;
		for (int k = 0; k < 3; k++)
			if (h.pid == pids[k] && psi_asm_push(&a[k], data + off, &h, on_section, NULL) != 0)
				abort();
	}
	return 0;
}
