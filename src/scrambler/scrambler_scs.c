/*
 * scrambler_scs.c - the default ECM source of the scrambler: the SCS client
 * library (scs.h) talking ECMG<=>SCS (ETSI TS 103 197) to each CAS's main
 * or backup ECMG.
 *
 * One scs channel (one TCP connection, ECM_channel_id of the CAS) per CAS,
 * created when the first stream of that CAS opens; every service is an ECM
 * stream on it. The channel reconnects by itself (scs.h); this file only
 * maps struct scr_ecm_ops onto it and reports each channel's counters when
 * it is closed.
 */
#include <stdio.h>
#include <stdlib.h>
#include "lib/log.h"
#include "scrambler/scrambler.h"
#include "scrambler/scs.h"

#define MOD "scrambler"

struct scr_scs {
	uint8_t version;
	struct scs_channel *ch[SCR_MAX_CAS];
};

int scr_scs_new(const struct scrambler_config *cfg, void **ctx)
{
	struct scr_scs *x;

	*ctx = NULL;
	if (!cfg)
		return CE_ARG;
	x = calloc(1, sizeof(*x));
	if (!x)
		return CE_NOMEM;
	x->version = cfg->version ? cfg->version : 2;
	*ctx = x;
	return 0;
}

void scr_scs_free(void *ctx)
{
	struct scr_scs *x = ctx;

	if (!x)
		return;
	for (size_t i = 0; i < SCR_MAX_CAS; i++) {
		struct scs_stats st;

		if (!x->ch[i])
			continue;
		scs_channel_stats(x->ch[i], &st);
		LOG_INFO(MOD, "CAS %zu SCS: %llu setups (%llu reconnects, %llu on backup), %llu disconnects, "
			"%llu CW_provision, %llu ECM_response, %llu channel_error, %llu stream_error, "
			"%llu invalid", i, (unsigned long long)st.connects, (unsigned long long)st.reconnects,
			(unsigned long long)st.failovers, (unsigned long long)st.disconnects,
			(unsigned long long)st.cw_provisions, (unsigned long long)st.ecm_responses,
			(unsigned long long)st.channel_errors, (unsigned long long)st.stream_errors,
			(unsigned long long)st.bad_msgs);
		scs_channel_free(x->ch[i]);
	}
	free(x);
}

static int scs_open(void *ctx, size_t cas_idx, const struct scr_cas_cfg *cas, uint16_t stream_id,
	uint16_t ecm_id, uint32_t cp_duration_ms, struct scr_ecmg_info *info, void **stream)
{
	struct scr_scs *x = ctx;
	const struct scs_channel_status *cs;
	struct scs_stream *st = NULL;
	int r;

	*stream = NULL;
	if (!x || cas_idx >= SCR_MAX_CAS || !cas)
		return CE_ARG;
	if (!x->ch[cas_idx]) {
		struct scs_config c = { 0 };

		snprintf(c.main_addr, sizeof(c.main_addr), "%s", cas->main_addr);
		snprintf(c.backup_addr, sizeof(c.backup_addr), "%s", cas->backup_addr);
		c.super_cas_id = cas->super_cas_id;
		c.channel_id = cas->channel_id;
		c.version = x->version;
		if ((r = scs_channel_new(&c, &x->ch[cas_idx])) != 0)
			return r;
	}
	/* a channel that never came up (ECMG down at start) is set up again
	 * here: the scrambler retries open with a back-off */
	if (!scs_channel_connected(x->ch[cas_idx]) && (r = scs_channel_open(x->ch[cas_idx])) != 0)
		return r;
	if ((r = scs_stream_open(x->ch[cas_idx], stream_id, ecm_id, cp_duration_ms, &st)) != 0)
		return r;
	cs = scs_channel_info(x->ch[cas_idx]);
	info->section_mode = cs->section_mode;
	info->delay_start_ms = cs->delay_start_ms;
	info->ecm_rep_period_ms = cs->ecm_rep_period_ms;
	info->max_comp_time_ms = cs->max_comp_time_ms;
	info->lead_cw = cs->lead_cw;
	info->cw_per_msg = cs->cw_per_msg;
	*stream = st;
	return 0;
}

static int scs_provision(void *ctx, void *stream, uint16_t cp, uint16_t first_cp, const uint8_t *cws,
	size_t cw_len, size_t ncw, const uint8_t *ac, size_t ac_len, uint32_t cp_duration_ms)
{
	(void)ctx;
	return scs_cw_provision(stream, cp, first_cp, cws, cw_len, ncw, ac, ac_len, cp_duration_ms);
}

static int scs_poll(void *ctx, void *stream, uint16_t cp, int timeout_ms, uint8_t *buf, size_t cap,
	size_t *len)
{
	(void)ctx;
	return scs_ecm_get(stream, cp, timeout_ms, buf, cap, len);
}

static void scs_close(void *ctx, void *stream)
{
	(void)ctx;
	scs_stream_close(stream);
}

void scr_scs_cas_stats(void *ctx, size_t cas_idx, struct scr_cas_stats *out)
{
	struct scr_scs *x = ctx;
	struct scs_stats st;

	if (!x || cas_idx >= SCR_MAX_CAS || !x->ch[cas_idx])
		return;
	scs_channel_stats(x->ch[cas_idx], &st);
	out->connected = scs_channel_connected(x->ch[cas_idx]);
	out->on_backup = st.on_backup;
	out->connects = st.connects;
	out->connect_failures = st.connect_failures;
	out->reconnects = st.reconnects;
	out->failovers = st.failovers;
	out->disconnects = st.disconnects;
	out->channel_errors = st.channel_errors;
	out->stream_errors = st.stream_errors;
	out->bad_msgs = st.bad_msgs;
	out->last_error_status = st.last_error_status;
	out->nstatus = 0;
	for (size_t i = 0; i < SCS_ERR_STATUS_SLOTS && i < 8; i++) {
		if (st.errors_by_status[i].count == 0)
			break;
		out->err_status[out->nstatus] = st.errors_by_status[i].status;
		out->err_count[out->nstatus++] = st.errors_by_status[i].count;
	}
	out->err_other = st.errors_other_status;
}

const struct scr_ecm_ops scr_scs_ecm_ops = {
	.open = scs_open,
	.provision = scs_provision,
	.poll = scs_poll,
	.close = scs_close,
};
