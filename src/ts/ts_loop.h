/*
 * ts_loop.h - one transport stream played N times end to end as a single
 * continuous stream: what a looped demo file must look like to a receiver
 * (its clock, decoder and continuity checks see no seam).
 *
 * Copy k (0-based) of the input gets:
 *   - every PCR (ISO/IEC 13818-1 2.4.3.5) moved on by k * period, modulo
 *     2^33 * 300 (the PCR wraps as the encoder's would);
 *   - the PTS and DTS of every PES header that starts in a packet
 *     (2.4.3.7, PTS_DTS_flags '10' / '11') moved on by k * period / 300,
 *     modulo 2^33;
 *   - every PID's continuity_counter moved on by k * (last CC - first CC
 *     + 1) of that PID, so the seam continues each PID's count (packets
 *     without payload keep the count as in the input).
 * The period is the input's duration at its own PCR rate: the PCR span of
 * its first PCR PID (first to last PCR) scaled to the whole file by packet
 * count, so the bitrate stays the same across the seam.
 * Everything else (PSI, versions, the payloads) is copied as is.
 */
#ifndef CASTELLAN_TS_LOOP_H
#define CASTELLAN_TS_LOOP_H

#include <stddef.h>
#include <stdint.h>
#include "lib/err.h"

#define TS_LOOP_TIMES_MAX 64

/* Loop ts (len bytes, whole 188-byte packets) times times (1..
 * TS_LOOP_TIMES_MAX) into *out (malloc'd, the caller frees; *out_len its
 * bytes), refusing to make more than max_bytes. *period_ms gets the
 * period (NULL: not wanted). 0, CE_ARG, CE_FORMAT (not whole packets, a
 * bad packet, fewer than two PCRs on the first PCR PID, or PCRs going
 * backwards), CE_LIMIT (more than max_bytes) or CE_NOMEM. */
int ts_loop(const uint8_t *ts, size_t len, unsigned times, size_t max_bytes, uint8_t **out, size_t *out_len,
	uint64_t *period_ms) WARN_UNUSED;

#endif
