/*
 * ota_ts.h - a signed module's OTA carousel as a whole TS (`castellan module
 * carousel`): one cycle on its PID, with or without a PAT + PMT announcing
 * it, or multiplexed into an input stream (ts/ota.h ota_mux_into).
 */
#ifndef CASTELLAN_HEADEND_OTA_TS_H
#define CASTELLAN_HEADEND_OTA_TS_H

#include <stddef.h>
#include <stdint.h>
#include "ts/ota.h"

struct ota_ts_params {
	struct ota_params car;     /* pid, carousel_id, version, vendor_id */
	uint16_t program, pmt_pid; /* both non-zero: a PAT + PMT announcing the carousel */
	const uint8_t *in;         /* NULL, or nin packets to multiplex it into (needs program, pmt_pid) */
	size_t nin;
	uint64_t start, cycles, every; /* with in: as ota_mux_into */
};

/* The module mod (len bytes) as TS packets into *out (malloc'ed, *nout
 * packets; *ncycle: one carousel cycle's). 0, or CE_ARG / CE_RANGE /
 * CE_NOMEM. */
int ota_ts_build(const struct ota_ts_params *p, const uint8_t *mod, size_t len, uint8_t **out, size_t *nout,
	size_t *ncycle) WARN_UNUSED;

#endif
