/*
 * ts_loop.c - a transport stream repeated as one continuous stream
 * (ts_loop.h). Normative reference: ISO/IEC 13818-1, 2.4.3.4/2.4.3.5 (PCR
 * in the adaptation field), 2.4.3.6/2.4.3.7 (PES header, PTS/DTS).
 *
 * PES header as read here (payload of a payload_unit_start packet):
 *   0..2  packet_start_code_prefix 00 00 01
 *   3     stream_id (no optional header for BC, BE, BF, F0, F1, F2, F8, FF)
 *   4..5  PES_packet_length
 *   6     '10' scrambling(2) priority alignment copyright original
 *   7     PTS_DTS_flags(2) ...
 *   8     PES_header_data_length
 *   9..13 PTS when PTS_DTS_flags is '10' or '11'; 14..18 DTS when '11'
 *         (each: 4-bit prefix, 33 bits in three parts with marker bits)
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include "lib/cursor.h"
#include "ts/ts.h"
#include "ts/ts_loop.h"

#define PCR_WRAP (((uint64_t)1 << 33) * 300u)
#define PTS_WRAP ((uint64_t)1 << 33)

struct pid_cc {
	bool seen;
	uint8_t first, last;
};

static void pcr_write(uint8_t *p, uint64_t pcr)
{
	uint64_t base = pcr / 300u, ext = pcr % 300u;

	p[0] = (uint8_t)(base >> 25);
	p[1] = (uint8_t)(base >> 17);
	p[2] = (uint8_t)(base >> 9);
	p[3] = (uint8_t)(base >> 1);
	p[4] = (uint8_t)((base & 1) << 7 | 0x7E | (ext >> 8));
	p[5] = (uint8_t)ext;
}

static uint64_t ts33_read(const uint8_t *p)
{
	return (uint64_t)(p[0] >> 1 & 7) << 30 | (uint64_t)(p[1] << 7 | p[2] >> 1) << 15 | (uint64_t)(p[3] << 7 | p[4] >> 1);
}

static void ts33_write(uint8_t *p, uint64_t v)
{
	p[0] = (uint8_t)((p[0] & 0xF0) | (v >> 29 & 0x0E) | 1);
	p[1] = (uint8_t)(v >> 22);
	p[2] = (uint8_t)((v >> 14 & 0xFE) | 1);
	p[3] = (uint8_t)(v >> 7);
	p[4] = (uint8_t)((v << 1 & 0xFE) | 1);
}

static bool pes_has_header(uint8_t stream_id)
{
	switch (stream_id) {
	case 0xBC: case 0xBE: case 0xBF: case 0xF0: case 0xF1: case 0xF2: case 0xF8: case 0xFF:
		return false;
	default:
		return true;
	}
}

/* Move the PTS/DTS of the PES header starting in this packet's payload
 * on by add (90 kHz). A payload that is not a PES header start, or one
 * too short to hold the stamps its flags announce, is left alone. */
static void pes_shift(uint8_t *pkt, const struct ts_hdr *h, uint64_t add)
{
	struct cur c;
	uint8_t pfx[3], sid, f1, f2, hlen;
	uint16_t plen;
	size_t at;

	cur_init(&c, pkt + h->payload_off, h->payload_len);
	if (cur_bytes(&c, pfx, 3) != 0 || pfx[0] != 0 || pfx[1] != 0 || pfx[2] != 1 || cur_u8(&c, &sid) != 0 ||
	    cur_u16(&c, &plen) != 0 || !pes_has_header(sid) || cur_u8(&c, &f1) != 0 || (f1 & 0xC0) != 0x80 ||
	    cur_u8(&c, &f2) != 0 || cur_u8(&c, &hlen) != 0)
		return;
	f2 >>= 6;
	if (f2 < 2 || hlen < (f2 == 3 ? 10 : 5) || cur_left(&c) < (f2 == 3 ? 10u : 5u))
		return;
	at = (size_t)h->payload_off + 9;
	ts33_write(pkt + at, (ts33_read(pkt + at) + add) % PTS_WRAP);
	if (f2 == 3)
		ts33_write(pkt + at + 5, (ts33_read(pkt + at + 5) + add) % PTS_WRAP);
}

int ts_loop(const uint8_t *ts, size_t len, unsigned times, size_t max_bytes, uint8_t **out, size_t *out_len,
	uint64_t *period_ms)
{
	struct pid_cc *cc = NULL;
	uint64_t first_pcr = 0, last_pcr = 0, period;
	size_t npkt, first_i = 0, last_i = 0, npcr = 0;
	int pcr_pid = -1, r = CE_FORMAT;
	uint8_t *o = NULL;

	if (out)
		*out = NULL;
	if (out_len)
		*out_len = 0;
	if (period_ms)
		*period_ms = 0;
	if (!ts || !out || !out_len || times == 0 || times > TS_LOOP_TIMES_MAX)
		return CE_ARG;
	if (len == 0 || len % TS_PACKET_BYTES)
		return CE_FORMAT;
	npkt = len / TS_PACKET_BYTES;
	if (len > max_bytes / times)
		return CE_LIMIT;
	if (!(cc = calloc(TS_PID_MAX + 1, sizeof(*cc))))
		return CE_NOMEM;
	for (size_t i = 0; i < npkt; i++) {
		struct ts_hdr h;

		if (ts_parse(ts + i * TS_PACKET_BYTES, &h) != 0)
			goto out;
		if (h.has_payload) {
			if (!cc[h.pid].seen)
				cc[h.pid].first = h.cc;
			cc[h.pid].seen = true;
			cc[h.pid].last = h.cc;
		}
		if (!h.has_pcr || (pcr_pid >= 0 && h.pid != pcr_pid))
			continue;
		if (pcr_pid < 0) {
			pcr_pid = h.pid;
			first_pcr = h.pcr;
			first_i = i;
		} else if (h.pcr < last_pcr) {
			goto out; /* backwards (or a wrap inside the file): no period to trust */
		}
		last_pcr = h.pcr;
		last_i = i;
		npcr++;
	}
	if (npcr < 2 || last_pcr == first_pcr)
		goto out;
	/* the PCR rate (ticks per packet) over the whole file */
	period = (last_pcr - first_pcr) / (last_i - first_i) * npkt +
		 (last_pcr - first_pcr) % (last_i - first_i) * npkt / (last_i - first_i);
	r = CE_NOMEM;
	if (!(o = malloc(len * times)))
		goto out;
	for (unsigned k = 0; k < times; k++) {
		uint8_t *dst = o + (size_t)k * len;

		memcpy(dst, ts, len);
		if (k == 0)
			continue;
		for (size_t i = 0; i < npkt; i++) {
			uint8_t *p = dst + i * TS_PACKET_BYTES;
			struct ts_hdr h;

			if (ts_parse(p, &h) != 0) {
				r = CE_INTERNAL;
				goto out;
			}
			if (h.has_payload) {
				unsigned step = (unsigned)(cc[h.pid].last - cc[h.pid].first + 1) & 15u;

				ts_set_cc(p, (uint8_t)((h.cc + k * step) & 15u));
			}
			if (h.has_pcr)
				pcr_write(p + 6, (h.pcr + (uint64_t)k * period) % PCR_WRAP);
			if (h.pusi && h.has_payload && h.scrambling == TS_SC_CLEAR)
				pes_shift(p, &h, (uint64_t)k * period / 300u % PTS_WRAP);
		}
	}
	*out = o;
	*out_len = len * times;
	o = NULL;
	if (period_ms)
		*period_ms = period / 27000u;
	r = 0;
out:
	free(o);
	free(cc);
	return r;
}
