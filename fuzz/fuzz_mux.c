/*
 * fuzz_mux.c - libFuzzer target: the MUX's parser of data a peer sends
 * (mux_datagram_pkts, src/scrambler/mux.h). The first byte picks section or
 * packet mode; the rest is one datagram parameter. Every packet produced
 * must parse and sit on the EMM PID; a whole section count must fit.
 */
#include <stdlib.h>
#include "scrambler/mux.h"
#include "ts/ts.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t out[400 * TS_PACKET_BYTES];
	size_t n = 0, ns = 0, off = 0;

	if (size < 1)
		return 0;
	if (mux_datagram_pkts(data + 1, size - 1, data[0] & 1, 0x1FF0, out, 400, &n, &ns, &off) != 0) {
		if (off > size - 1)
			abort();
		return 0;
	}
	for (size_t i = 0; i < n; i++) {
		struct ts_hdr h;

		if (ts_parse(out + i * TS_PACKET_BYTES, &h) != 0 || h.pid != 0x1FF0)
			abort();
	}
	if (!(data[0] & 1) && ns > n)
		abort();
	return 0;
}
