/*
 * scrambler.c - the SCS pipeline: PSI following and rewriting, crypto-period
 * schedule, CW_provision / ECM_response cycle, ECM/EMM/CAT insertion under a
 * budget, batch scrambling, failure policies, counters.
 *
 * Normative references: ETSI TS 103 197 (SimulCrypt: CP_number, CW_per_msg,
 * lead_CW, delay_start, ECM_rep_period, section_TSpkt_flag); ISO/IEC
 * 13818-1 (TS packets, PAT/PMT/CAT, CA_descriptor, PCR); ETSI TS 100 289
 * (CSA2) and ETSI TS 103 127 (CISSA) through cipher.h.
 *
 * Timing model (docs/scrambler.md has the diagram):
 *  - stream time st (27 MHz ticks) starts at 0 on the first input packet
 *    and advances per packet by the packet duration measured between the
 *    last two PCRs of the clock PID (the first PID seen carrying a PCR);
 *    before two PCRs, or without any, by 188*8 bits at cfg->bitrate_bps.
 *  - CP k (k = 0, 1, ...) starts at T(k) = clear_start + k * cp_duration.
 *    CP_number = k mod 65536; parity = k & 1 (even CP -> even key).
 *  - CW_provision(k+1) is sent when CP k starts (one CP ahead); the ECM for
 *    CP 0 is requested at start-up. At T(k) the service switches its key
 *    to CW(k) once the ECMs of CP k are in (synchronous mode waits for them,
 *    bounded by the ECM timeout; live mode polls until the deadline).
 *  - ECM(k) carries CW(k) and CW(k+1) (CW_per_msg 2, lead_CW 1), so at a
 *    regular transition receivers already hold the new key from ECM(k-1).
 *    After a start or a recovery (a "jump") the service stays clear (gate
 *    closed) until ECM(k) has been written to the output.
 *
 * The scrambler is split by concern (scrambler_int.h lists the files); this
 * one holds its lifecycle and the I/O loop.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <openssl/crypto.h>
#include "lib/log.h"
#include "lib/util.h"
#include "scrambler/scs.h"
#include "scrambler/scrambler_int.h"
#include "ts/tsio.h"

#define MOD "scrambler"

extern const struct scr_ecm_ops scr_scs_ecm_ops;

int scrambler_new(const struct scrambler_config *cfg, struct scrambler **out)
{
	struct scrambler *s = NULL;
	int r;

	*out = NULL;
	if (!cfg)
		return CE_ARG;
	if ((r = scr_validate(cfg)) != 0)
		return r;
	s = calloc(1, sizeof(*s));
	if (!s)
		return CE_NOMEM;
	s->cfg = *cfg;
	if (!s->cfg.cp_duration_ms)
		s->cfg.cp_duration_ms = SCR_DEFAULT_CP_MS;
	if (!s->cfg.version)
		s->cfg.version = 2;
	if (!s->cfg.bitrate_bps)
		s->cfg.bitrate_bps = SCR_DEFAULT_BITRATE_BPS;
	if (!s->cfg.chunk_pkts)
		s->cfg.chunk_pkts = SCR_DEFAULT_CHUNK_PKTS;
	if (s->cfg.chunk_pkts > 65536)
		s->cfg.chunk_pkts = 65536;
	if (!s->cfg.max_extra_kbps && !s->cfg.nulls_only)
		s->cfg.max_extra_kbps = SCR_DEFAULT_MAX_EXTRA_KBPS;
	if (!s->cfg.emm_pid)
		s->cfg.emm_pid = DEFAULT_EMM_PID;
	if (!s->cfg.emm_max_kbps)
		s->cfg.emm_max_kbps = SCR_DEFAULT_EMM_KBPS;
	if (!s->cfg.max_delay_ms)
		s->cfg.max_delay_ms = SCR_DEFAULT_MAX_DELAY_MS;
	if (!s->cfg.retry_ms)
		s->cfg.retry_ms = SCR_DEFAULT_RETRY_MS;
	if (s->cfg.retry_ms > SCR_MAX_RETRY_MS)
		s->cfg.retry_ms = SCR_MAX_RETRY_MS;
	s->max_delay_ticks = ms_to_ticks(s->cfg.max_delay_ms);
	s->ops = cfg->ecm_ops ? cfg->ecm_ops : &scr_scs_ecm_ops;
	s->ops_ctx = cfg->ecm_ops_ctx;
	/* the default ECM source shares one SCS channel per CAS (scs.h) */
	if (!cfg->ecm_ops && (r = scr_scs_new(cfg, &s->ops_ctx)) != 0)
		goto fail;
	if (s->cfg.sync == SCR_SYNC_AUTO)
		s->sync = !(cfg->input_uri && strncmp(cfg->input_uri, "udp://", 6) == 0);
	else
		s->sync = s->cfg.sync == SCR_SYNC_ON;
	s->cp_ms = s->cfg.cp_duration_ms;
	s->cp_ticks = ms_to_ticks(s->cp_ms);
	s->cw_len = cw_alg_key_bytes(s->cfg.alg);
	s->tpp = (double)TS_PACKET_BYTES * 8.0 * 27000000.0 / (double)s->cfg.bitrate_bps;
	s->tokens_per_tick = (double)s->cfg.max_extra_kbps * 1000.0 / 8.0 / TS_PACKET_BYTES / 27000000.0;
	s->tokens = TOKEN_BURST;
	s->null_wait_ticks = ms_to_ticks(SCR_NULL_WAIT_MS);
	s->emm_tokens_per_tick = (double)s->cfg.emm_max_kbps * 1000.0 / 8.0 / TS_PACKET_BYTES / 27000000.0;
	s->clock_pid = -1;
	s->global_k = -1;
	s->next_boundary = ms_to_ticks(s->cfg.clear_start_ms);
	s->ocap = s->cfg.chunk_pkts;
	/* the CSA2 bitslice engine costs about the same for a partial batch
	 * (64..512 packets by CPU) as for a full one: the window must hold enough
	 * packets of each service for its groups to fill whole batches
	 * (flush_win carries partial ones over; bench/scramble.c). Costs
	 * latency: up to CSA2_WINDOW_PER_SVC packets per service are held. */
	if (s->cfg.alg == CW_ALG_CSA2 && s->ocap < CSA2_WINDOW_PER_SVC * s->cfg.nservices)
		s->ocap = CSA2_WINDOW_PER_SVC * s->cfg.nservices;
	if (s->ocap > CSA2_WINDOW_MAX && s->ocap > s->cfg.chunk_pkts)
		s->ocap = s->cfg.chunk_pkts > CSA2_WINDOW_MAX ? s->cfg.chunk_pkts : CSA2_WINDOW_MAX;
	s->batch = s->cfg.alg == CW_ALG_CSA2 ? ts_cipher_csa2_batch_default() : 1;
	/* the CSA2 engine's batch (64..512 by CPU): at least 4 per window */
	if (s->cfg.alg == CW_ALG_CSA2 && s->ocap < 4 * s->batch && 4 * s->batch <= CSA2_WINDOW_MAX)
		s->ocap = 4 * s->batch;
	if (s->batch == 0 || s->batch > s->ocap / 4)
		s->batch = 1;
	s->ob = malloc(s->ocap * TS_PACKET_BYTES);
	s->otag = malloc(s->ocap * sizeof(*s->otag));
	s->ptrs = malloc(s->ocap * sizeof(*s->ptrs));
	s->oat = malloc(s->ocap * sizeof(*s->oat));
	s->queue = malloc(QUEUE_PKTS * sizeof(*s->queue));
	s->pat_asm = malloc(sizeof(*s->pat_asm));
	s->pat = malloc(sizeof(*s->pat));
	s->cat_asm = malloc(sizeof(*s->cat_asm));
	s->cat_in = calloc(1, sizeof(*s->cat_in));
	if (!s->ob || !s->otag || !s->ptrs || !s->oat || !s->queue || !s->pat_asm || !s->pat || !s->cat_asm || !s->cat_in) {
		r = CE_NOMEM;
		goto fail;
	}
	psi_asm_init(s->pat_asm, TS_PID_PAT);
	psi_asm_init(s->cat_asm, TS_PID_CAT);
	s->pid_kind[TS_PID_PAT] = PK_PAT;
	for (unsigned p = 0; p < 0x20; p++)
		s->pid_used[p] = 1;
	for (size_t vi = 0; vi < s->cfg.nservices; vi++) {
		struct svc *v = &s->svc[vi];

		v->cfg = s->cfg.services[vi];
		v->cur_k = NO_CP;
		v->pmt_asm = malloc(sizeof(*v->pmt_asm));
		v->pmt = malloc(sizeof(*v->pmt));
		v->ciph = ts_cipher_new(s->cfg.alg, !s->cfg.no_entropy_reduction);
		if (!v->pmt_asm || !v->pmt || !v->ciph) {
			r = CE_NOMEM;
			goto fail;
		}
		for (size_t c = 0; c < s->cfg.ncas; c++) {
			struct ecm_stream *e = &s->es[s->nstreams];

			v->estream[c] = s->nstreams++;
			e->cas = c;
			e->svc = vi;
			e->st.service_id = v->cfg.service_id;
			e->st.super_cas_id = s->cfg.cas[c].super_cas_id;
			e->st.stream_id = (uint16_t)(vi + 1);
			e->st.ecm_id = s->cfg.services[vi].ecm_id ? s->cfg.services[vi].ecm_id : (uint16_t)(vi + 1);
		}
	}
	if (s->cfg.mux_listen) {
		/* the MUX fills the CAT entries when EMMGs connect (mux.h) */
		s->cat_on = true;
		s->pid_kind[TS_PID_CAT] = PK_CAT;
		s->pid_kind[s->cfg.emm_pid] = PK_EMM;
		s->pid_used[s->cfg.emm_pid] = 1;
	}
	*out = s;
	return 0;
fail:
	scrambler_free(s);
	return r;
}

int scrambler_start(struct scrambler *s)
{
	if (!s)
		return CE_ARG;
	if (s->started)
		return 0;
	s->started = true;
	/* a stream that cannot be opened now is retried (scr_stream_open) */
	for (size_t ei = 0; ei < s->nstreams; ei++)
		(void)scr_stream_open(s, ei);
	for (size_t vi = 0; vi < s->cfg.nservices && !s->cfg.has_fixed_cw; vi++)
		scr_provision(s, &s->svc[vi], 0);
	if (s->cfg.mux_listen) {
		struct mux_config mc = { .listen = s->cfg.mux_listen, .emm_pid = s->cfg.emm_pid,
			.max_kbps = s->cfg.emm_max_kbps, .allow = s->cfg.mux_allow };
		int r = mux_new(&mc, &s->mux);

		if (r != 0) {
			LOG_ERR(MOD, "MUX on %s: %s", s->cfg.mux_listen, err_str(r));
			return r;
		}
	}
	return 0;
}

static int out_write(void *ctx, const uint8_t *pkts, size_t n)
{
	return ts_out_write(ctx, pkts, n);
}

static void sleep_us(uint64_t us)
{
	struct timespec ts = { .tv_sec = (time_t)(us / 1000000u), .tv_nsec = (long)(us % 1000000u) * 1000 };

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

int scrambler_run(struct scrambler *s)
{
	struct ts_in *in = NULL;
	struct ts_out *out = NULL;
	uint8_t *buf = NULL;
	size_t max = 0;
	uint64_t wall0 = 0;
	int r;

	if (!s || !s->cfg.input_uri || !s->cfg.output_uri)
		return CE_ARG;
	max = s->cfg.chunk_pkts;
	buf = malloc(max * TS_PACKET_BYTES);
	if (!buf)
		return CE_NOMEM;
	if ((r = ts_in_open(s->cfg.input_uri, &in)) != 0) {
		LOG_ERR(MOD, "input %s: %s", s->cfg.input_uri, err_str(r));
		goto out;
	}
	if ((r = ts_out_open(s->cfg.output_uri, &out)) != 0) {
		LOG_ERR(MOD, "output %s: %s", s->cfg.output_uri, err_str(r));
		goto out;
	}
	if (!s->sync || s->cfg.stop)
		ts_in_set_timeout_ms(in, 100);
	if ((r = scrambler_start(s)) != 0)
		goto out;
	wall0 = now_mono_us();
	for (;;) {
		size_t n = 0;

		if (s->cfg.stop && *s->cfg.stop)
			break;
		if (s->cfg.stats_request && *s->cfg.stats_request) {
			*s->cfg.stats_request = 0;
			scrambler_stats_print(s, stderr);
		}
		r = ts_in_read(in, buf, max, &n);
		if (r == CE_TIMEOUT) {
			/* the input paused: write what the window holds, retry
			 * failed ECM streams */
			if ((r = scrambler_flush(s, out_write, out)) != 0)
				goto out;
			scr_retry_streams(s);
			scr_emm_service(s);
			if (!s->sync && (r = scr_poll_pending(s)) != 0)
				goto out;
			continue;
		}
		if (r != 0) {
			LOG_ERR(MOD, "reading %s: %s", s->cfg.input_uri, err_str(r));
			goto out;
		}
		if (n == 0)
			break;
		if ((r = scrambler_push(s, buf, n, out_write, out)) != 0)
			goto out;
		if (s->cfg.realtime) {
			uint64_t due = wall0 + s->st / 27u, now = now_mono_us();

			if (due > now)
				sleep_us(due - now);
		}
	}
	r = scrambler_flush(s, out_write, out);
	/* waiting mode (file input): an output with a CP the ECMGs did not
	 * serve is not what was asked for; say so in the exit status */
	if (r == 0 && s->sync && (s->stats.cp_failures > 0 || s->stats.pkts_withheld > 0 ||
		s->stats.clear_pkts_failure > 0)) {
		LOG_ERR(MOD, "incomplete output: %llu crypto-periods without ECM, %llu packets withheld, "
			"%llu left clear for want of a key (see the ECMG errors above)",
			(unsigned long long)s->stats.cp_failures, (unsigned long long)s->stats.pkts_withheld,
			(unsigned long long)s->stats.clear_pkts_failure);
		r = CE_NO_KEY;
	}
out:
	if (in) {
		struct ts_io_stats st;

		ts_in_stats(in, &st);
		s->stats.input_resyncs = st.resyncs;
		s->stats.input_dropped_bytes = st.dropped_bytes;
		ts_in_close(in);
	}
	if (out) {
		int r2 = ts_out_close(out);

		if (r == 0)
			r = r2;
	}
	free(buf);
	if (s->cfg.stats_json) {
		int r2 = scrambler_stats_json(s, s->cfg.stats_json);

		if (r == 0)
			r = r2;
	}
	return r;
}

void scrambler_free(struct scrambler *s)
{
	if (!s)
		return;
	for (size_t ei = 0; ei < s->nstreams; ei++)
		if (s->es[ei].opened && s->ops && s->ops->close)
			s->ops->close(s->ops_ctx, s->es[ei].h);
	if (!s->cfg.ecm_ops)
		scr_scs_free(s->ops_ctx);
	for (size_t vi = 0; vi < s->cfg.nservices; vi++) {
		ts_cipher_free(s->svc[vi].ciph);
		free(s->svc[vi].pmt_asm);
		free(s->svc[vi].pmt);
		secret_wipe(s->svc[vi].cws, sizeof(s->svc[vi].cws));
	}
	secret_wipe(s->cfg.fixed_cw, sizeof(s->cfg.fixed_cw));
	free(s->ob);
	free(s->otag);
	free(s->ptrs);
	free(s->oat);
	if (s->queue)
		secret_wipe(s->queue, 0);
	free(s->queue);
	free(s->pat_asm);
	free(s->pat);
	free(s->cat_asm);
	free(s->cat_in);
	mux_free(s->mux);
	OPENSSL_cleanse(s, sizeof(*s));
	free(s);
}
