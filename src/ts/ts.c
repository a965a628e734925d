/*
 * ts.c - MPEG-2 transport stream packets: header and adaptation field
 * parsing, header setters, null packets, section packetization.
 *
 * Normative reference: ISO/IEC 13818-1, 2.4.3.2 (transport packet), 2.4.3.4
 * (adaptation field), 2.4.3.5 (semantics: adaptation_field_length is 0..182
 * when a payload follows, exactly 183 when the packet carries no payload).
 *
 * Packet layout (big-endian):
 *   byte 0      sync_byte 0x47
 *   byte 1      TEI(1) PUSI(1) priority(1) PID[12:8](5)
 *   byte 2      PID[7:0]
 *   byte 3      scrambling(2) adaptation_field_control(2) CC(4)
 *   byte 4..    adaptation field (if AFC bit 1): length(8), flags(8), ...
 *               PCR: base(33) reserved(6) ext(9) when the PCR flag is set
 *
 * ts_parse reads fixed offsets of a fixed 188-byte array rather than
 * through the cursor (lib/cursor.h), on purpose: every offset is a constant
 * below 12, read only when af_len (checked to <= 183 first) covers it, and
 * it runs once per packet in the scrambler and the box, where the cursor's
 * out-of-line reads would cost (bench/scramble.c). Everything it bounds
 * (payload_off, payload_len) is re-checked by the cursor views downstream.
 */
#include <string.h>
#include "lib/cursor.h"
#include "ts/ts.h"

int ts_parse(const uint8_t pkt[TS_PACKET_BYTES], struct ts_hdr *h)
{
	uint8_t afc;

	memset(h, 0, sizeof(*h));
	if (!pkt || pkt[0] != TS_SYNC)
		return CE_FORMAT;
	h->tei = (pkt[1] & 0x80) != 0;
	h->pusi = (pkt[1] & 0x40) != 0;
	h->pid = (uint16_t)(((pkt[1] & 0x1F) << 8) | pkt[2]);
	h->scrambling = (uint8_t)(pkt[3] >> 6);
	afc = (uint8_t)((pkt[3] >> 4) & 3);
	h->cc = (uint8_t)(pkt[3] & 0x0F);
	if (afc == 0)
		goto bad;
	h->has_af = (afc & 2) != 0;
	h->has_payload = (afc & 1) != 0;
	h->payload_off = 4;
	if (h->has_af) {
		uint8_t af_len = pkt[4];

		/* 183 bytes remain after the length byte: with a payload at
		 * least one payload byte must remain (<= 182); without one the
		 * field fills the packet (== 183). */
		if (h->has_payload ? af_len > 182 : af_len != 183)
			goto bad;
		if (af_len > 0) {
			uint8_t flags = pkt[5];

			h->discontinuity = (flags & 0x80) != 0;
			if ((flags & 0x10) && af_len >= 7) {
				const uint8_t *p = pkt + 6;
				uint64_t base = ((uint64_t)p[0] << 25) | ((uint64_t)p[1] << 17) |
					((uint64_t)p[2] << 9) | ((uint64_t)p[3] << 1) | (p[4] >> 7);
				uint64_t ext = ((uint64_t)(p[4] & 1) << 8) | p[5];

				h->has_pcr = true;
				h->pcr = base * 300 + ext;
			}
		}
		h->payload_off = (uint8_t)(5 + af_len);
	}
	h->payload_len = h->has_payload ? (uint8_t)(TS_PACKET_BYTES - h->payload_off) : 0;
	if (!h->has_payload)
		h->payload_off = TS_PACKET_BYTES;
	return 0;
bad:
	memset(h, 0, sizeof(*h));
	return CE_FORMAT;
}

void ts_set_pid(uint8_t pkt[TS_PACKET_BYTES], uint16_t pid)
{
	pkt[1] = (uint8_t)((pkt[1] & 0xE0) | ((pid >> 8) & 0x1F));
	pkt[2] = (uint8_t)pid;
}

void ts_set_cc(uint8_t pkt[TS_PACKET_BYTES], uint8_t cc)
{
	pkt[3] = (uint8_t)((pkt[3] & 0xF0) | (cc & 0x0F));
}

void ts_set_scrambling(uint8_t pkt[TS_PACKET_BYTES], uint8_t sc)
{
	pkt[3] = (uint8_t)((pkt[3] & 0x3F) | ((sc & 3) << 6));
}

void ts_make_null(uint8_t pkt[TS_PACKET_BYTES])
{
	pkt[0] = TS_SYNC;
	pkt[1] = (uint8_t)(TS_PID_NULL >> 8);
	pkt[2] = (uint8_t)(TS_PID_NULL & 0xFF);
	pkt[3] = 0x10; /* payload only, CC 0 */
	memset(pkt + 4, 0xFF, TS_PACKET_BYTES - 4);
}

size_t ts_packets_for(size_t len)
{
	/* The first packet carries the pointer_field (1 byte) + 183 bytes. */
	if (len <= 183)
		return 1;
	return 1 + (len - 183 + 183) / 184;
}

int ts_packetize(const uint8_t *sec, size_t len, uint16_t pid, uint8_t *cc,
	uint8_t *out, size_t cap_pkts, size_t *npkts)
{
	size_t need, off = 0;

	if (npkts)
		*npkts = 0;
	if (!sec || len == 0 || !cc || !out || !npkts || pid > TS_PID_MAX)
		return CE_ARG;
	need = ts_packets_for(len);
	if (need > cap_pkts)
		return CE_OVERFLOW;
	for (size_t i = 0; i < need; i++) {
		uint8_t *p = out + i * TS_PACKET_BYTES;
		size_t room = i == 0 ? 183 : 184;
		size_t n = len - off < room ? len - off : room;
		size_t at = 4;

		*cc = (uint8_t)((*cc + 1) & 0x0F);
		p[0] = TS_SYNC;
		p[1] = (uint8_t)((i == 0 ? 0x40 : 0x00) | ((pid >> 8) & 0x1F));
		p[2] = (uint8_t)pid;
		p[3] = (uint8_t)(0x10 | *cc);
		if (i == 0)
			p[at++] = 0; /* pointer_field */
		memcpy(p + at, sec + off, n);
		off += n;
		at += n;
		memset(p + at, 0xFF, TS_PACKET_BYTES - at);
	}
	*npkts = need;
	return 0;
}
