/*
 * scrambler_cp.c - the crypto-period cycle of the scrambler (ETSI TS 103 197):
 * control words (random or fixed), CW_provision one CP ahead, ECM
 * reception and storage, the switch of a service's key at a CP boundary
 * (synchronous or live), ECM-stream retries with back-off.
 */
#include <stdlib.h>
#include <string.h>
#include <openssl/rand.h>
#include "lib/log.h"
#include "lib/metrics.h"
#include "lib/util.h"
#include "scrambler/scrambler_int.h"

#define MOD "scrambler"

/* ------------------------------------------------------------------ */
/* control words                                                        */

static int cw_get(struct scrambler *s, struct svc *v, int64_t k, uint8_t *out)
{
	struct cw_slot *c = &v->cws[(uint64_t)k % CW_RING];

	if (!c->set || c->k != k) {
		secret_wipe(c->cw, sizeof(c->cw));
		if (RAND_bytes(c->cw, (int)s->cw_len) != 1)
			return CE_CRYPTO;
		if (s->cfg.alg == CW_ALG_CSA2 && !s->cfg.no_entropy_reduction)
			csa2_reduce(c->cw);
		c->k = k;
		c->set = true;
	}
	memcpy(out, c->cw, s->cw_len);
	return 0;
}

/* Send CW_provision(k) on the stream of service v with CAS c (if open). */
static void provision_one(struct scrambler *s, struct svc *v, size_t c, int64_t k)
{
	struct ecm_stream *e = &s->es[v->estream[c]];
	uint8_t cws[MAX_CW_PER_MSG * CW_MAX_BYTES];
	size_t ncw = e->info.cw_per_msg, lead = e->info.lead_cw;
	const uint8_t *ac = v->cfg.ac;
	uint8_t dflt_ac[SCR_AC_BYTES] = { 0, 0, 0, 1 };
	int64_t first;
	int r = 0;

	if (!e->opened)
		return;
	if (ncw < 1)
		ncw = 1;
	if (ncw > MAX_CW_PER_MSG)
		ncw = MAX_CW_PER_MSG;
	if (lead > MAX_CW_PER_MSG - 1)
		lead = MAX_CW_PER_MSG - 1;
	first = k + (int64_t)lead - (int64_t)(ncw - 1);
	for (size_t i = 0; i < ncw && r == 0; i++)
		r = cw_get(s, v, first + (int64_t)i, cws + i * s->cw_len);
	if (!v->cfg.has_ac)
		ac = dflt_ac;
	if (r == 0)
		r = s->ops->provision(s->ops_ctx, e->h, (uint16_t)k, (uint16_t)first, cws, s->cw_len,
			ncw, ac, SCR_AC_BYTES, s->cp_ms);
	secret_wipe(cws, sizeof(cws));
	if (r != 0) {
		e->st.errors++;
		LOG_WARN(MOD, "CW_provision CP %u service %u CAS %08x: %s", (unsigned)(uint16_t)k,
			v->cfg.service_id, s->cfg.cas[c].super_cas_id, err_str(r));
	} else {
		e->st.cw_provision_sent++;
	}
}

/* Send CW_provision(k) on every open stream of service v. */
void scr_provision(struct scrambler *s, struct svc *v, int64_t k)
{
	for (size_t c = 0; c < s->cfg.ncas; c++)
		provision_one(s, v, c, k);
}

/* Open ECM stream ei (through the ECM source). A failure schedules the
 * next attempt with a doubling back-off (retry_ms .. SCR_MAX_RETRY_MS);
 * meanwhile the stream counts as failed at every CP and the policy
 * decides (docs/scrambler.md "ECMG down at start"). 0 or the open error. */
int scr_stream_open(struct scrambler *s, size_t ei)
{
	struct ecm_stream *e = &s->es[ei];
	uint32_t rep;
	int r;

	memset(&e->info, 0, sizeof(e->info));
	e->h = NULL;
	r = s->ops->open(s->ops_ctx, e->cas, &s->cfg.cas[e->cas], e->st.stream_id, e->st.ecm_id,
		s->cp_ms, &e->info, &e->h);
	if (r != 0) {
		if (e->st.open_failures == 0)
			LOG_ERR(MOD, "ECM stream of service %u with CAS %08x: %s (retrying)", e->st.service_id,
				e->st.super_cas_id, err_str(r));
		else
			LOG_DEBUG(MOD, "ECM stream of service %u with CAS %08x: %s", e->st.service_id,
				e->st.super_cas_id, err_str(r));
		e->st.open_failures++;
		e->st.errors++;
		e->h = NULL;
		if (e->retry_ms == 0)
			e->retry_ms = s->cfg.retry_ms;
		else if (e->retry_ms < SCR_MAX_RETRY_MS / 2)
			e->retry_ms *= 2;
		else
			e->retry_ms = SCR_MAX_RETRY_MS;
		e->retry_at_us = now_mono_us() + (uint64_t)e->retry_ms * 1000u;
		return r;
	}
	if (e->st.open_failures > 0)
		LOG_INFO(MOD, "ECM stream of service %u with CAS %08x: open after %llu failed attempts",
			e->st.service_id, e->st.super_cas_id, (unsigned long long)e->st.open_failures);
	e->opened = true;
	e->st.open = true;
	e->retry_ms = 0;
	if (e->info.cw_per_msg == 0)
		e->info.cw_per_msg = 2;
	rep = s->cfg.ecm_rep_ms ? s->cfg.ecm_rep_ms
		: e->info.ecm_rep_period_ms ? e->info.ecm_rep_period_ms : SCR_DEFAULT_ECM_REP_MS;
	e->rep_ticks = (uint32_t)ms_to_ticks(rep);
	return 0;
}

/* Is stream e waiting for a re-open attempt that is due now? */
static bool retry_due(const struct scrambler *s, const struct ecm_stream *e)
{
	return s->started && !s->cfg.has_fixed_cw && !e->opened && now_mono_us() >= e->retry_at_us;
}

/* Between CP boundaries: re-open the failed streams that are due; one that
 * opens gets CW_provision for the next CP, so it joins at that boundary. */
void scr_retry_streams(struct scrambler *s)
{
	for (size_t ei = 0; ei < s->nstreams; ei++) {
		struct ecm_stream *e = &s->es[ei];

		if (retry_due(s, e) && scr_stream_open(s, ei) == 0)
			provision_one(s, &s->svc[e->svc], e->cas, s->global_k + 1);
	}
}

/* ------------------------------------------------------------------ */
/* ECM reception and CP transitions                                     */

/* Turn an ECM_datagram into packets in e->got_pkts. */
static int ecm_store(struct ecm_stream *e, const uint8_t *d, size_t len)
{
	size_t n = 0;
	uint8_t cc = 0;

	if (e->info.section_mode) {
		if (len < 3 || len > PSI_MAX_SECTION || 3u + (((d[1] & 0x0F) << 8) | d[2]) != len)
			return CE_FORMAT;
		if (ts_packetize(d, len, 0, &cc, e->got_pkts, ECM_MAX_PKTS, &n) != 0)
			return CE_FORMAT;
	} else {
		if (len == 0 || len % TS_PACKET_BYTES != 0 || len / TS_PACKET_BYTES > ECM_MAX_PKTS)
			return CE_FORMAT;
		n = len / TS_PACKET_BYTES;
		for (size_t i = 0; i < n; i++) {
			struct ts_hdr h;

			if (ts_parse(d + i * TS_PACKET_BYTES, &h) != 0 || h.scrambling != 0)
				return CE_FORMAT;
		}
		memcpy(e->got_pkts, d, len);
	}
	e->got_npkts = n;
	return 0;
}

/* Try to get the ECMs of v's target CP; wait_ms per stream (0 = poll). */
static void collect(struct scrambler *s, struct svc *v, int wait_ms)
{
	uint8_t buf[ECM_MAX_PKTS * TS_PACKET_BYTES];

	for (size_t c = 0; c < s->cfg.ncas; c++) {
		struct ecm_stream *e = &s->es[v->estream[c]];
		size_t len = 0;
		uint64_t t0;
		int r;

		if (e->got || e->failed)
			continue;
		if (!e->opened) {
			e->failed = true;
			e->st.errors++;
			continue;
		}
		t0 = now_mono_us();
		r = s->ops->poll(s->ops_ctx, e->h, (uint16_t)v->target_k, wait_ms, buf, sizeof(buf), &len);
		s->stats.ecm_wait_us += now_mono_us() - t0;
		if (r == 0) {
			e->st.ecm_response_received++;
			if (ecm_store(e, buf, len) != 0) {
				e->st.errors++;
				e->failed = true;
			} else {
				e->got = true;
				e->got_k = v->target_k;
			}
		} else if (r == CE_TIMEOUT) {
			if (wait_ms > 0 || now_mono_us() >= v->deadline_us) {
				e->st.timeouts++;
				e->failed = true;
			}
		} else {
			e->st.errors++;
			e->failed = true;
		}
	}
}

static int apply_switch(struct scrambler *s, size_t vi)
{
	struct svc *v = &s->svc[vi];
	int64_t k = v->target_k;
	bool jump = !v->scrambling || v->cur_k != k - 1;
	uint8_t cw[CW_MAX_BYTES];
	int r;

	if ((r = scr_flush_out(s)) != 0)
		return r;
	if ((r = cw_get(s, v, k, cw)) != 0)
		return r;
	r = ts_cipher_set_key(v->ciph, (k & 1) ? CW_ODD : CW_EVEN, cw, s->cw_len);
	secret_wipe(cw, sizeof(cw));
	if (r != 0)
		return r;
	for (size_t c = 0; c < s->cfg.ncas; c++) {
		struct ecm_stream *e = &s->es[v->estream[c]];
		bool j = jump || e->info.lead_cw == 0 || !e->on_air;
		uint64_t delay;

		if (!e->got)
			continue;
		memcpy(e->pkts, e->got_pkts, e->got_npkts * TS_PACKET_BYTES);
		e->npkts = e->got_npkts;
		e->on_air_k = k;
		e->got = false;
		delay = e->info.delay_start_ms > 0 ? ms_to_ticks((uint64_t)e->info.delay_start_ms) : 0;
		if (delay > s->cp_ticks / 2)
			delay = s->cp_ticks / 2;
		if (!j && delay > 0) {
			/* the previous ECM carries CW(k): the new one may come later */
			e->staged = true;
			e->staged_at = s->st + delay;
			continue;
		}
		e->staged = false;
		e->on_air = true;
		if (j)
			jump = true;
		e->next_due = s->st + e->rep_ticks;
		/* a jump needs its ECM out now; a regular change can wait for a
		 * null packet (the previous ECM carries this CW) */
		if ((r = scr_ecm_send(s, v->estream[c], j ? ECM_URGENT : ECM_NEW)) != 0)
			return r;
	}
	if (jump) {
		bool all_out = true;

		for (size_t c = 0; c < s->cfg.ncas; c++)
			if (s->es[v->estream[c]].queued > 0 && s->es[v->estream[c]].on_air_k == k)
				all_out = false;
		v->gate_open = all_out && v->pids_allocated;
	}
	v->cur_k = k;
	v->scrambling = true;
	s->stats.cp_changes++;
	metric_inc(MET_CP_CHANGES);
	return 0;
}

/* Decide v's pending transition if every stream answered or the deadline
 * passed (force). */
static int resolve(struct scrambler *s, size_t vi, bool force)
{
	struct svc *v = &s->svc[vi];
	size_t got = 0, failed = 0;
	bool ok;

	if (!v->target_pending)
		return 0;
	for (size_t c = 0; c < s->cfg.ncas; c++) {
		struct ecm_stream *e = &s->es[v->estream[c]];

		if (e->got)
			got++;
		else if (e->failed)
			failed++;
	}
	if (!force && got + failed < s->cfg.ncas)
		return 0;
	if (force) {
		for (size_t c = 0; c < s->cfg.ncas; c++) {
			struct ecm_stream *e = &s->es[v->estream[c]];

			if (!e->got && !e->failed)
				e->st.timeouts++;
		}
	}
	v->target_pending = false;
	ok = s->cfg.policy == SCR_POLICY_ANY ? got > 0 : got == s->cfg.ncas;
	if (ok)
		return apply_switch(s, vi);
	s->stats.cp_failures++;
	metric_inc(MET_CP_FAILURES);
	for (size_t c = 0; c < s->cfg.ncas; c++)
		s->es[v->estream[c]].got = false;
	LOG_WARN(MOD, "service %u: no ECM for CP %u (%zu of %zu CAS answered): %s",
		v->cfg.service_id, (unsigned)(uint16_t)v->target_k, got, s->cfg.ncas,
		s->cfg.on_failure == SCR_FAIL_CLEAR ? "going clear (--on-failure clear)"
		: v->scrambling ? "keeping the last CW"
		: "no CW yet: its packets are withheld");
	if (s->cfg.on_failure == SCR_FAIL_CLEAR && v->scrambling) {
		int r = scr_flush_out(s);

		if (r != 0)
			return r;
		v->scrambling = false;
		v->cur_k = NO_CP;
	}
	return 0;
}

static uint32_t ecm_timeout_ms(const struct scrambler *s, const struct ecm_stream *e)
{
	uint32_t t = s->cfg.ecm_timeout_ms;

	if (t == 0) {
		t = (uint32_t)e->info.max_comp_time_ms + 500u;
		if (t < 1000)
			t = 1000;
	}
	return t;
}

/* CP k starts for every service. */
int scr_boundary(struct scrambler *s, int64_t k)
{
	int r;

	for (size_t vi = 0; vi < s->cfg.nservices; vi++) {
		struct svc *v = &s->svc[vi];
		uint32_t tmo = 0;

		if (s->cfg.has_fixed_cw) {
			if (!v->scrambling) {
				if ((r = scr_flush_out(s)) != 0)
					return r;
				r = ts_cipher_set_key(v->ciph, CW_EVEN, s->cfg.fixed_cw, s->cw_len);
				if (r != 0)
					return r;
				v->scrambling = true;
				v->gate_open = true;
				v->cur_k = 0;
			}
			continue;
		}
		if (v->target_pending && (r = resolve(s, vi, true)) != 0)
			return r;
		v->target_k = k;
		v->target_pending = true;
		for (size_t c = 0; c < s->cfg.ncas; c++) {
			struct ecm_stream *e = &s->es[v->estream[c]];
			uint32_t t;

			/* a stream that could not be opened: try again, and if it
			 * opens now ask for this CP's ECM at once */
			if (retry_due(s, e) && scr_stream_open(s, v->estream[c]) == 0)
				provision_one(s, v, c, k);
			t = ecm_timeout_ms(s, e);

			e->failed = false;
			if (e->got && e->got_k != k)
				e->got = false;
			if (t > tmo)
				tmo = t;
		}
		v->deadline_us = now_mono_us() + (uint64_t)tmo * 1000u;
		if (s->sync) {
			/* wait for each stream in turn, within the one deadline */
			for (size_t c = 0; c < s->cfg.ncas; c++) {
				uint64_t now = now_mono_us();
				int wait = now >= v->deadline_us ? 1 : (int)((v->deadline_us - now) / 1000u) + 1;

				(void)c;
				collect(s, v, wait);
			}
			if ((r = resolve(s, vi, true)) != 0)
				return r;
		} else {
			collect(s, v, 0);
			if ((r = resolve(s, vi, false)) != 0)
				return r;
		}
		scr_provision(s, v, k + 1);
	}
	return 0;
}

/* Live mode: poll the services still waiting for their ECMs. */
int scr_poll_pending(struct scrambler *s)
{
	int r;

	for (size_t vi = 0; vi < s->cfg.nservices; vi++) {
		struct svc *v = &s->svc[vi];

		if (!v->target_pending)
			continue;
		collect(s, v, 0);
		if ((r = resolve(s, vi, now_mono_us() >= v->deadline_us)) != 0)
			return r;
	}
	return 0;
}
