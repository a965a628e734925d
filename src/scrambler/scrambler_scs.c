/*
 * scrambler_scs.c - the default ECM source of the scrambler: the SCS client
 * library (scs.h) talking ECMG<=>SCS (ETSI TS 103 197) to each CAS's main
 * or backup ECMG.
 *
 * TEMPORARY: scs.h has not landed yet; every call fails with
 * CE_UNSUPPORTED until the adapter is written against it.
 */
#include "scrambler/scrambler.h"

static int scs_open(void *ctx, size_t cas_idx, const struct scr_cas_cfg *cas, uint16_t stream_id,
	uint16_t ecm_id, uint32_t cp_duration_ms, struct scr_ecmg_info *info, void **stream)
{
	*stream = NULL;
	return CE_UNSUPPORTED;
}

static int scs_provision(void *ctx, void *stream, uint16_t cp, uint16_t first_cp, const uint8_t *cws,
	size_t cw_len, size_t ncw, const uint8_t *ac, size_t ac_len, uint32_t cp_duration_ms)
{
	return CE_UNSUPPORTED;
}

static int scs_poll(void *ctx, void *stream, uint16_t cp, int timeout_ms, uint8_t *buf, size_t cap,
	size_t *len)
{
	*len = 0;
	return CE_UNSUPPORTED;
}

static void scs_close(void *ctx, void *stream)
{
}

const struct scr_ecm_ops scr_scs_ecm_ops = {
	.open = scs_open,
	.provision = scs_provision,
	.poll = scs_poll,
	.close = scs_close,
};
