/*
 * ts.h - MPEG-2 transport stream packets (ISO/IEC 13818-1, 2.4.3).
 *
 * Owns: parsing and validating a 188-byte packet header and adaptation field
 * (the payload offset is computed once, here, after checking the adaptation
 * length: callers never recompute it), PCR extraction, scrambling-control
 * bits, continuity counters, and turning sections into packets.
 */
#ifndef CASTELLAN_TS_H
#define CASTELLAN_TS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "lib/err.h"

#define TS_PACKET_BYTES 188
#define TS_SYNC 0x47
#define TS_PID_PAT 0x0000
#define TS_PID_CAT 0x0001
#define TS_PID_NULL 0x1FFF
#define TS_PID_MAX 0x1FFF

/* transport_scrambling_control values */
enum { TS_SC_CLEAR = 0, TS_SC_EVEN = 2, TS_SC_ODD = 3 };

struct ts_hdr {
	uint16_t pid;
	bool tei;            /* transport_error_indicator */
	bool pusi;           /* payload_unit_start_indicator */
	uint8_t scrambling;  /* transport_scrambling_control (0..3) */
	bool has_af;         /* adaptation field present */
	bool has_payload;
	uint8_t cc;          /* continuity_counter */
	uint8_t payload_off; /* offset of the payload in the packet (4..188) */
	uint8_t payload_len; /* 188 - payload_off, 0 if no payload */
	bool has_pcr;
	uint64_t pcr;        /* 27 MHz units (base*300+ext) when has_pcr */
	bool discontinuity;
};

/* Parse and validate one packet. Returns 0, or CE_FORMAT (bad sync byte,
 * adaptation_field_length beyond the packet, reserved adaptation control
 * 00). Never reads beyond 188 bytes. */
int ts_parse(const uint8_t pkt[TS_PACKET_BYTES], struct ts_hdr *h) WARN_UNUSED;

void ts_set_pid(uint8_t pkt[TS_PACKET_BYTES], uint16_t pid);
void ts_set_cc(uint8_t pkt[TS_PACKET_BYTES], uint8_t cc);
void ts_set_scrambling(uint8_t pkt[TS_PACKET_BYTES], uint8_t sc);
/* A null packet (PID 0x1FFF, payload 0xFF). */
void ts_make_null(uint8_t pkt[TS_PACKET_BYTES]);

/*
 * Packetize one section (or any PSI payload starting with a table_id) onto
 * pid: first packet has PUSI=1 and pointer_field 0, the rest are
 * continuation packets, the last is stuffed with 0xFF. *cc is the PID's
 * continuity counter: each packet gets (*cc + 1) & 15 and *cc is updated.
 * Writes at most cap_pkts packets into out; returns the number written in
 * *npkts. 0, or CE_OVERFLOW / CE_ARG.
 */
int ts_packetize(const uint8_t *sec, size_t len, uint16_t pid, uint8_t *cc,
	uint8_t *out, size_t cap_pkts, size_t *npkts) WARN_UNUSED;

/* Number of packets ts_packetize needs for a section of len bytes. */
size_t ts_packets_for(size_t len);

#endif
