/*
 * ota_mux.c - the OTA carousel multiplexed into a stream (ota_mux_into,
 * ota.h): the PAT gains the data service, the carousel's PMT and cycles
 * are inserted between the input's packets.
 */
#include <stdlib.h>
#include <string.h>
#include "ts/ota.h"
#include "lib/cursor.h"
#include "ts/psi.h"
#include "ts/ts.h"

/* q = p; a PAT packet holding one whole PAT section (pointer_field 0 or
 * not) gains program -> pmt_pid. Other packets, or a PAT that does not
 * parse or fit, are copied unchanged. */
static void pat_add(const uint8_t *p, uint16_t program, uint16_t pmt_pid, uint8_t *q)
{
	struct ts_hdr h;
	struct pat pat;
	struct cur c;
	uint8_t ptr = 0, b1 = 0, b2 = 0;
	const uint8_t *sec;
	size_t slen, len = 0;

	memcpy(q, p, TS_PACKET_BYTES);
	if (ts_parse(p, &h) != 0 || h.pid != TS_PID_PAT || !h.pusi || h.has_af || !h.payload_len)
		return;
	cur_init(&c, p + h.payload_off, h.payload_len);
	if (cur_u8(&c, &ptr) != 0 || cur_skip(&c, ptr) != 0)
		return;
	{
		struct cur hdr = c; /* table_id, section_length: peeked, not consumed */

		if (cur_skip(&hdr, 1) != 0 || cur_u8(&hdr, &b1) != 0 || cur_u8(&hdr, &b2) != 0)
			return;
	}
	slen = 3 + (((size_t)(b1 & 0x0F) << 8) | b2);
	if (!(sec = cur_ptr(&c, slen)) || pat_parse(sec, slen, &pat) != 0 || pat.nprog >= PAT_MAX_PROGRAMS)
		return;
	pat.prog[pat.nprog].program = program;
	pat.prog[pat.nprog++].pid = pmt_pid;
	/* the new section right after a pointer_field 0, stuffing after it */
	if (pat_build(&pat, q + h.payload_off + 1, h.payload_len - 1, &len) != 0) {
		memcpy(q, p, TS_PACKET_BYTES);
		return;
	}
	q[h.payload_off] = 0;
	memset(q + h.payload_off + 1 + len, 0xFF, (size_t)h.payload_len - 1 - len);
}

static void set_cc(uint8_t *pkt, unsigned cc)
{
	pkt[3] = (uint8_t)((pkt[3] & 0xF0) | (cc & 0x0F));
}

int ota_mux_into(const uint8_t *in, size_t nin, const uint8_t *car, size_t ncar, const uint8_t psi[376],
	uint16_t program, uint16_t pmt_pid, uint64_t start, uint64_t cycles, uint64_t every, uint8_t **out,
	size_t *nout)
{
	uint8_t *o;
	size_t no = 0, k_cc = 0, cap;
	unsigned cc_pmt = 0;

	*out = NULL;
	*nout = 0;
	if (every == 0)
		return CE_ARG;
	if (cycles > nin + 1 || ncar + 1 > SIZE_MAX / TS_PACKET_BYTES / (nin + cycles + 1))
		return CE_RANGE;
	cap = nin + (ncar + 1) * (size_t)cycles;
	if (!(o = malloc(cap * TS_PACKET_BYTES + 1)))
		return CE_NOMEM;
	for (size_t i = 0; i < nin; i++) {
		pat_add(in + i * TS_PACKET_BYTES, program, pmt_pid, o + no++ * TS_PACKET_BYTES);
		if (i < start || (i - start) % every != 0 || (i - start) / every >= cycles)
			continue;
		memcpy(o + no * TS_PACKET_BYTES, psi + TS_PACKET_BYTES, TS_PACKET_BYTES); /* the carousel's PMT */
		set_cc(o + no++ * TS_PACKET_BYTES, cc_pmt++);
		for (size_t k = 0; k < ncar; k++, k_cc++) {
			memcpy(o + no * TS_PACKET_BYTES, car + k * TS_PACKET_BYTES, TS_PACKET_BYTES);
			set_cc(o + no++ * TS_PACKET_BYTES, (unsigned)k_cc);
		}
	}
	*out = o;
	*nout = no;
	return 0;
}
