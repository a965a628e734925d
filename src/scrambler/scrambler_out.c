/*
 * scrambler_out.c - the per-packet path of the scrambler: stream time from
 * the PCRs, timers (CP boundaries, ECM repetition, CAT), the fail-closed
 * decision per packet (scramble, clear or withhold), the output window
 * scrambled in whole cipher batches, and the insertion of ECM, EMM and
 * CAT packets into nulls or within the extra-bitrate budget.
 *
 * The hot path: everything a packet passes through is in this file, so
 * the compiler can inline it (bench/scramble.c measures it).
 */
#include <stdlib.h>
#include <string.h>
#include "lib/log.h"
#include "lib/metrics.h"
#include "lib/util.h"
#include "cipher/cipher.h"
#include "scrambler/scrambler_int.h"

#define MOD "scrambler"

/* ------------------------------------------------------------------ */
/* output batch and insertion                                           */

/* Scramble the window and write it out. force false (the window is full):
 * each (service, parity) group is scrambled in whole cipher batches only
 * (s->batch packets, the CSA2 engine's width); the packets of a
 * group's last partial batch, and everything after the first of them,
 * stay for the next round, so they can join a full batch later. If that
 * would keep more than 3/4 of the window, or force is true (end of input,
 * or a key is about to change), everything goes. */
static int flush_win(struct scrambler *s, bool force)
{
	size_t cut = s->on;
	int r;

	if (s->werr)
		return s->werr;
	for (int pass = 0; pass < 2; pass++) {
		bool merged[SCR_MAX_SERVICES][2] = { { false } };

		for (size_t v = 0; v < s->cfg.nservices; v++) {
			for (int par = 0; par < 2; par++) {
				size_t n = 0, keep;
				int16_t tag = (int16_t)(v * 2 + (size_t)par);
				enum cw_parity cp = par ? CW_ODD : CW_EVEN;
				/* services scrambled with this very key and parity (a
				 * fixed CW, or one CW given to several) share batches */
				bool with[SCR_MAX_SERVICES] = { false };

				if (merged[v][par])
					continue;
				for (size_t u = v; u < s->cfg.nservices; u++)
					if (u == v || (!merged[u][par] && ts_cipher_same_key(s->svc[v].ciph, cp, s->svc[u].ciph, cp)))
						with[u] = merged[u][par] = true;
				for (size_t i = 0; i < s->on; i++)
					if (s->otag[i] == tag || (s->otag[i] >= 0 && (s->otag[i] & 1) == par && with[s->otag[i] / 2]))
						s->ptrs[n++] = s->ob + i * TS_PACKET_BYTES;
				keep = force ? 0 : n % s->batch;
				if (keep) {
					size_t first = (size_t)(s->ptrs[n - keep] - s->ob) / TS_PACKET_BYTES;

					if (first < cut)
						cut = first;
				}
				n -= keep;
				if (n == 0)
					continue;
				r = ts_cipher_scramble(s->svc[v].ciph, s->ptrs, n, cp);
				if (r != 0) {
					LOG_ERR(MOD, "scrambling a batch of service %u failed: %s",
						s->svc[v].cfg.service_id, err_str(r));
					s->werr = r;
					return r;
				}
				for (size_t i = 0; i < n; i++)
					s->otag[(size_t)(s->ptrs[i] - s->ob) / TS_PACKET_BYTES] = -1; /* done */
				s->stats.pkts_scrambled += n;
				metric_add(MET_SCRAMBLED_PKTS, NULL, NULL, n);
			}
		}
		if (force || cut >= s->on / 4)
			break;
		force = true; /* too little would go out: finish the partial batches */
		cut = s->on;
	}
	if (force)
		cut = s->on;
	if (cut > 0) {
		if (!s->wfn)
			return CE_STATE;
		r = s->wfn(s->wctx, s->ob, cut);
		if (r != 0) {
			s->werr = r;
			return r;
		}
		s->stats.pkts_out += cut;
	}
	if (cut < s->on) {
		memmove(s->ob, s->ob + cut * TS_PACKET_BYTES, (s->on - cut) * TS_PACKET_BYTES);
		memmove(s->otag, s->otag + cut, (s->on - cut) * sizeof(*s->otag));
		memmove(s->oat, s->oat + cut, (s->on - cut) * sizeof(*s->oat));
	}
	s->on -= cut;
	return 0;
}

/* Everything out, scrambled with the keys in force now. */
int scr_flush_out(struct scrambler *s)
{
	return flush_win(s, true);
}

static int emit(struct scrambler *s, const uint8_t *pkt, int16_t tag)
{
	int r;

	if (s->on == s->ocap) {
		if ((r = flush_win(s, false)) != 0)
			return r;
	}
	/* the time bound of the window (max_delay_ms): the oldest packet has
	 * waited long enough, partial cipher batches go out now */
	if (s->on > 0 && s->st - s->oat[0] >= s->max_delay_ticks) {
		s->stats.window_timeouts++;
		if ((r = flush_win(s, true)) != 0)
			return r;
	}
	memcpy(s->ob + s->on * TS_PACKET_BYTES, pkt, TS_PACKET_BYTES);
	s->otag[s->on] = tag;
	s->oat[s->on] = s->st;
	s->on++;
	return 0;
}

/* Emit an inserted packet: set PID's CC. */
static int emit_inserted(struct scrambler *s, uint8_t *pkt, int16_t owner)
{
	struct ts_hdr h;
	uint16_t pid;

	if (ts_parse(pkt, &h) != 0)
		return 0;
	pid = h.pid;
	if (h.has_payload)
		s->out_cc[pid] = (uint8_t)((s->out_cc[pid] + 1) & 15);
	ts_set_cc(pkt, s->out_cc[pid]);
	if (owner >= 0) {
		struct ecm_stream *e = &s->es[owner];

		e->st.ecm_pkts_out++;
		s->stats.ecm_pkts++;
		if (e->queued > 0)
			e->queued--;
		if (!s->svc[e->svc].gate_open && e->queued == 0)
			s->svc[e->svc].gate_open = true;
	} else if (owner == QOWNER_EMM) {
		s->stats.emm_pkts++;
	} else {
		s->stats.cat_pkts++;
	}
	return emit(s, pkt, -1);
}

static bool q_push(struct scrambler *s, const uint8_t *pkt, int16_t owner)
{
	struct qent *q;

	if (s->qlen == QUEUE_PKTS)
		return false;
	q = &s->queue[(s->qhead + s->qlen) % QUEUE_PKTS];
	memcpy(q->pkt, pkt, TS_PACKET_BYTES);
	q->owner = owner;
	q->at = s->st;
	s->qlen++;
	return true;
}

static int q_pop_emit(struct scrambler *s)
{
	struct qent *q = &s->queue[s->qhead];

	s->qhead = (s->qhead + 1) % QUEUE_PKTS;
	s->qlen--;
	return emit_inserted(s, q->pkt, q->owner);
}


/* Put the on-air ECM of stream ei out. */
int scr_ecm_send(struct scrambler *s, size_t ei, enum ecm_mode mode)
{
	struct ecm_stream *e = &s->es[ei];
	struct svc *v = &s->svc[e->svc];
	uint16_t pid = v->ecm_pid[e->cas];
	int r;

	if (!e->on_air || !v->pids_allocated)
		return 0;
	if (mode == ECM_REP && e->queued > 0) {
		e->st.ecm_reps_skipped++;
		return 0;
	}
	if (mode != ECM_REP && e->queued > 0) {
		/* drop the queued copies of the previous ECM: this one replaces it */
		for (size_t i = 0; i < s->qlen; i++) {
			struct qent *q = &s->queue[(s->qhead + i) % QUEUE_PKTS];

			if (q->owner == (int16_t)ei)
				q->owner = QOWNER_DEAD;
		}
		e->queued = 0;
	}
	if (mode == ECM_URGENT && !s->cfg.nulls_only) {
		e->queued = e->npkts;
		for (size_t i = 0; i < e->npkts; i++) {
			uint8_t pkt[TS_PACKET_BYTES];

			memcpy(pkt, e->pkts + i * TS_PACKET_BYTES, TS_PACKET_BYTES);
			ts_set_pid(pkt, pid);
			s->stats.extra_pkts++;
			if ((r = emit_inserted(s, pkt, (int16_t)ei)) != 0)
				return r;
		}
		return 0;
	}
	for (size_t i = 0; i < e->npkts; i++) {
		uint8_t pkt[TS_PACKET_BYTES];

		memcpy(pkt, e->pkts + i * TS_PACKET_BYTES, TS_PACKET_BYTES);
		ts_set_pid(pkt, pid);
		if (!q_push(s, pkt, (int16_t)ei)) {
			e->st.ecm_reps_skipped++;
			break;
		}
		e->queued++;
	}
	return 0;
}


/* ------------------------------------------------------------------ */
/* per packet                                                           */

static void advance_time(struct scrambler *s, const struct ts_hdr *h, bool parsed)
{
	uint64_t i = s->stats.pkts_in;

	if (i > 0)
		s->st += (uint64_t)s->tpp;
	if (!parsed || !h->has_pcr)
		return;
	if (s->clock_pid < 0)
		s->clock_pid = h->pid;
	if (h->pid != s->clock_pid)
		return;
	if (s->have_pcr) {
		uint64_t d = (h->pcr + PCR_WRAP - s->last_pcr) % PCR_WRAP;
		uint64_t n = i - s->last_pcr_i;

		if (!h->discontinuity && d > 0 && d < 10u * 27000000u && n > 0) {
			uint64_t anchor = s->last_pcr_st + d;

			s->tpp = (double)d / (double)n;
			if (anchor > s->st)
				s->st = anchor;
		}
	}
	s->have_pcr = true;
	s->last_pcr = h->pcr;
	s->last_pcr_i = i;
	s->last_pcr_st = s->st;
}

/* Timers: CP boundaries, staged ECMs, ECM repetition, CAT. */
static int timers(struct scrambler *s)
{
	int r;

	while (s->st >= s->next_boundary) {
		s->global_k++;
		s->next_boundary += s->cp_ticks;
		if ((r = scr_boundary(s, s->global_k)) != 0)
			return r;
	}
	for (size_t ei = 0; ei < s->nstreams; ei++) {
		struct ecm_stream *e = &s->es[ei];

		if (e->staged && s->st >= e->staged_at) {
			e->staged = false;
			e->on_air = true;
			e->next_due = s->st + e->rep_ticks;
			if ((r = scr_ecm_send(s, ei, ECM_NEW)) != 0)
				return r;
		}
		if (e->on_air && s->st >= e->next_due) {
			e->next_due += e->rep_ticks;
			if (e->next_due <= s->st)
				e->next_due = s->st + e->rep_ticks;
			if ((r = scr_ecm_send(s, ei, ECM_REP)) != 0)
				return r;
		}
	}
	if (s->cat_on && s->cat_npkts > 0 && s->st >= s->cat_due) {
		s->cat_due = s->st + ms_to_ticks(SCR_CAT_PERIOD_MS);
		for (size_t i = 0; i < s->cat_npkts; i++)
			if (!q_push(s, s->cat_pkts + i * TS_PACKET_BYTES, QOWNER_CAT))
				s->stats.insert_dropped++;
	}
	return 0;
}

#define TAG_CLEAR (-1)
#define TAG_WITHHOLD (-2)

/* What to do with a packet of a scrambled component: its cipher tag
 * (service * 2 + parity), TAG_CLEAR or TAG_WITHHOLD. Fail closed: without a
 * key in force (before the first ECM is out, or after a failure with
 * --on-failure keep and no CW yet) the payload is withheld, never sent
 * clear; clear only during --clear-start or with --on-failure clear, and
 * every such packet is counted. */
static int16_t scramble_tag(struct scrambler *s, const struct ts_hdr *h)
{
	uint8_t vi = s->pid_svc[h->pid];
	struct svc *v = &s->svc[vi];

	if (h->scrambling != TS_SC_CLEAR) {
		s->stats.already_scrambled++;
		return TAG_CLEAR;
	}
	if (!h->has_payload || h->payload_len == 0)
		return TAG_CLEAR; /* nothing to protect: PCR-only packets */
	if (v->scrambling && v->gate_open)
		return (int16_t)(vi * 2 + (v->cur_k & 1));
	if (s->global_k < 0) {
		s->stats.clear_pkts_start++; /* --clear-start: the operator's choice */
		metric_inc(MET_CLEAR_START_PKTS);
		return TAG_CLEAR;
	}
	if (s->cfg.on_failure == SCR_FAIL_CLEAR) {
		s->stats.clear_pkts_failure++;
		metric_inc(MET_CLEAR_PKTS);
		return TAG_CLEAR;
	}
	return TAG_WITHHOLD;
}

/* Withhold a packet's payload: it goes out as an adaptation-field-only
 * packet on its PID (header, PCR and flags kept, payload replaced by
 * stuffing), so the multiplex keeps its bitrate, its packet count per PID
 * and its clock, and nothing of the programme leaves in clear. */
static int withhold(struct scrambler *s, const uint8_t *pkt, const struct ts_hdr *h)
{
	uint8_t out[TS_PACKET_BYTES];
	size_t af = h->has_af ? pkt[4] : 0;

	s->stats.pkts_withheld++;
	memset(out, 0xFF, sizeof(out));
	memcpy(out, pkt, 4);
	out[3] = (uint8_t)((pkt[3] & 0xCF) | 0x20); /* adaptation field only */
	out[4] = TS_PACKET_BYTES - 5;
	if (af > 0) {
		memcpy(out + 5, pkt + 5, af);
		out[5] &= (uint8_t)~0x40; /* no random access point without payload */
	} else {
		out[5] = 0x00; /* flags: none */
	}
	return emit(s, out, TAG_CLEAR);
}

static int one_packet(struct scrambler *s, const uint8_t *pkt)
{
	struct ts_hdr h;
	bool parsed = ts_parse(pkt, &h) == 0;
	int r;

	advance_time(s, &h, parsed);
	s->stats.pkts_in++;
	if (s->tokens < TOKEN_BURST)
		s->tokens += s->tpp * s->tokens_per_tick;
	if ((r = timers(s)) != 0)
		return r;
	if (!parsed) {
		s->stats.input_errors++;
		r = emit(s, pkt, -1);
		goto insert;
	}
	if (h.pid == TS_PID_NULL) {
		s->stats.nulls_in++;
		/* skip tombstones of replaced ECMs */
		while (s->qlen > 0 && s->queue[s->qhead].owner == QOWNER_DEAD) {
			s->qhead = (s->qhead + 1) % QUEUE_PKTS;
			s->qlen--;
		}
		if (s->qlen > 0) {
			s->stats.nulls_replaced++;
			r = q_pop_emit(s);
		} else {
			r = emit(s, pkt, -1);
		}
		if (r != 0)
			return r;
		goto insert;
	}
	s->pid_used[h.pid] = 1;
	switch (s->pid_kind[h.pid]) {
	case PK_PAT:
		r = psi_asm_push(s->pat_asm, pkt, &h, scr_on_pat, s);
		if (r == 0)
			r = emit(s, pkt, -1);
		break;
	case PK_PMT: {
		struct svc *v = &s->svc[s->pid_svc[h.pid]];

		v->pmt_emit = false;
		r = psi_asm_push(v->pmt_asm, pkt, &h, scr_on_pmt, s);
		if (r == 0 && v->pmt_emit && v->pmt_ok) {
			for (size_t i = 0; i < v->pmt_npkts && r == 0; i++) {
				uint8_t out[TS_PACKET_BYTES];

				memcpy(out, v->pmt_pkts + i * TS_PACKET_BYTES, TS_PACKET_BYTES);
				s->out_cc[h.pid] = (uint8_t)((s->out_cc[h.pid] + 1) & 15);
				ts_set_cc(out, s->out_cc[h.pid]);
				r = emit(s, out, -1);
			}
			if (r == 0 && v->ecm_after_pmt)
				r = scr_ecm_after_pmt(s, v);
		}
		/* other packets of the PMT PID are dropped: ours goes out whole */
		break;
	}
	case PK_CAT:
		r = psi_asm_push(s->cat_asm, pkt, &h, scr_on_cat, s);
		break; /* replaced by our CAT */
	case PK_ECM:
	case PK_EMM:
		s->stats.pid_conflicts++;
		r = 0;
		break;
	case PK_ES: {
		int16_t tag = scramble_tag(s, &h);

		r = tag == TAG_WITHHOLD ? withhold(s, pkt, &h) : emit(s, pkt, tag);
		break;
	}
	default:
		/* before the PMTs are known a PID may be one of our components:
		 * fail closed (withheld, or counted clear with --on-failure clear) */
		if (!s->psi_ready && h.pid >= 0x20 && h.has_payload && h.payload_len > 0 &&
		    h.scrambling == TS_SC_CLEAR) {
			if (s->cfg.on_failure == SCR_FAIL_CLEAR) {
				s->stats.clear_pkts_failure++;
				r = emit(s, pkt, TAG_CLEAR);
			} else {
				r = withhold(s, pkt, &h);
			}
			break;
		}
		r = emit(s, pkt, TAG_CLEAR);
		break;
	}
	if (r != 0)
		return r;
insert:
	if (r != 0)
		return r;
	if (s->cfg.nulls_only)
		return 0;
	while (s->qlen > 0) {
		if (s->queue[s->qhead].owner == QOWNER_DEAD) {
			s->qhead = (s->qhead + 1) % QUEUE_PKTS;
			s->qlen--;
			continue;
		}
		/* nulls first: add a packet only when none came in time */
		if (s->tokens < 1.0 || s->st - s->queue[s->qhead].at < s->null_wait_ticks)
			break;
		s->tokens -= 1.0;
		s->stats.extra_pkts++;
		if ((r = q_pop_emit(s)) != 0)
			return r;
	}
	return 0;
}


/* The MUX, without blocking: serve the EMMG sockets, rebuild the CAT when
 * the connected client_ids change (one CA_descriptor per CA_system_id, on
 * the EMM PID), and queue EMM packets within emm_max_kbps (stream time)
 * and half the insertion queue, so ECMs and the CAT keep room. */
void scr_emm_service(struct scrambler *s)
{
	uint32_t ids[MUX_MAX_CONNS];
	uint8_t pkts[EMM_TAKE_MAX * TS_PACKET_BYTES];
	size_t nids = 0, n = 0, want;
	uint64_t gen;

	if (!s->mux)
		return;
	if (mux_poll(s->mux, 0) != 0)
		LOG_DEBUG(MOD, "MUX poll failed");
	gen = mux_clients(s->mux, ids, MUX_MAX_CONNS, &nids);
	if (gen != s->mux_gen) {
		s->mux_gen = gen;
		s->ncat_ca = 0;
		for (size_t i = 0; i < nids; i++) {
			uint16_t sys = (uint16_t)(ids[i] >> 16);
			bool dup = false;

			for (size_t j = 0; j < s->ncat_ca; j++)
				dup = dup || s->cat_ca[j].ca_system_id == sys;
			if (dup)
				continue;
			if (s->ncat_ca == SCR_MAX_CAS) {
				LOG_WARN(MOD, "CAT: more than %d CA systems from EMMGs, 0x%04x left out",
					SCR_MAX_CAS, sys);
				continue;
			}
			memset(&s->cat_ca[s->ncat_ca], 0, sizeof(s->cat_ca[0]));
			s->cat_ca[s->ncat_ca].ca_system_id = sys;
			s->cat_ca[s->ncat_ca].ca_pid = s->cfg.emm_pid;
			s->ncat_ca++;
		}
		if (scr_cat_build_pkts(s) != 0)
			s->stats.psi_errors++;
		s->cat_due = s->st; /* announce the change now */
	}
	if (s->st > s->emm_last_st) {
		s->emm_tokens += (double)(s->st - s->emm_last_st) * s->emm_tokens_per_tick;
		if (s->emm_tokens > EMM_BURST_PKTS)
			s->emm_tokens = EMM_BURST_PKTS;
	}
	s->emm_last_st = s->st;
	want = s->emm_tokens < 1.0 ? 0 : (size_t)s->emm_tokens;
	if (want > EMM_TAKE_MAX)
		want = EMM_TAKE_MAX;
	if (s->qlen >= QUEUE_PKTS / 2)
		want = 0;
	else if (want > QUEUE_PKTS / 2 - s->qlen)
		want = QUEUE_PKTS / 2 - s->qlen;
	if (want == 0 || mux_take(s->mux, pkts, want, &n) != 0)
		return;
	s->emm_tokens -= (double)n;
	for (size_t i = 0; i < n; i++)
		if (!q_push(s, pkts + i * TS_PACKET_BYTES, QOWNER_EMM))
			s->stats.insert_dropped++;
}

int scrambler_push(struct scrambler *s, const uint8_t *pkts, size_t n, scr_write_fn write, void *ctx)
{
	int r;

	if (!s || (!pkts && n) || !write)
		return CE_ARG;
	if (!s->started && (r = scrambler_start(s)) != 0)
		return r;
	s->wfn = write;
	s->wctx = ctx;
	scr_emm_service(s);
	for (size_t i = 0; i < n; i++) {
		if ((r = one_packet(s, pkts + i * TS_PACKET_BYTES)) != 0)
			return r;
		if (s->mux && (s->stats.pkts_in % EMM_POLL_EVERY_PKTS) == 0)
			scr_emm_service(s);
		if ((s->stats.pkts_in % RETRY_CHECK_EVERY_PKTS) == 0)
			scr_retry_streams(s);
		if (!s->sync && (s->stats.pkts_in & 63) == 0 && (r = scr_poll_pending(s)) != 0)
			return r;
	}
	return 0;
}

int scrambler_flush(struct scrambler *s, scr_write_fn write, void *ctx)
{
	if (!s || !write)
		return CE_ARG;
	s->wfn = write;
	s->wctx = ctx;
	return scr_flush_out(s);
}
