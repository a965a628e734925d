/*
 * scrambler_psi.c - the scrambler's PSI (ISO/IEC 13818-1): following the
 * PAT and each service's PMT, ECM PID allocation, the PMT rewritten with
 * our CA_descriptors (an unchanged repetition is not rebuilt), and the CAT
 * built for the EMM PID.
 */
#include <stdlib.h>
#include <string.h>
#include "lib/log.h"
#include "scrambler/scrambler_int.h"

#define MOD "scrambler"

/* ------------------------------------------------------------------ */
/* PSI                                                                  */

static bool pid_free(const struct scrambler *s, unsigned p)
{
	return p >= 0x20 && p < TS_PID_NULL && !s->pid_used[p] && s->pid_kind[p] == PK_NONE;
}

static uint16_t pid_after(const struct scrambler *s, unsigned from)
{
	for (unsigned n = 0, p = from; n < TS_PID_MAX; n++, p++) {
		if (p >= TS_PID_NULL)
			p = 0x20;
		if (pid_free(s, p))
			return (uint16_t)p;
	}
	return 0;
}

static int alloc_ecm_pids(struct scrambler *s, struct svc *v)
{
	for (size_t c = 0; c < s->cfg.ncas; c++) {
		uint16_t pid = 0, want = s->cfg.cas[c].ecm_pid;
		bool taken = false;

		if (want) {
			for (size_t o = 0; o < s->cfg.nservices; o++)
				for (size_t c2 = 0; c2 < s->cfg.ncas; c2++)
					if (s->svc[o].pids_allocated && s->svc[o].ecm_pid[c2] == want)
						taken = true;
			pid = taken ? pid_after(s, want + 1u) : want;
		} else {
			pid = pid_after(s, v->pmt_pid + 1u);
		}
		if (pid == 0)
			return CE_LIMIT;
		v->ecm_pid[c] = pid;
		s->pid_kind[pid] = PK_ECM;
		s->pid_used[pid] = 1;
		s->es[v->estream[c]].st.ecm_pid = pid;
	}
	v->pids_allocated = true;
	return 0;
}

static bool svc_wants_pid(const struct svc *v, uint16_t pid)
{
	if (v->cfg.npids == 0)
		return true;
	for (size_t i = 0; i < v->cfg.npids; i++)
		if (v->cfg.pids[i] == pid)
			return true;
	return false;
}

static int pmt_rewrite(struct scrambler *s, struct svc *v, const uint8_t *sec, size_t len)
{
	struct pmt *p = v->pmt;
	uint8_t out[PSI_MAX_PSI_SECTION];
	size_t olen = 0, n = 0;
	uint8_t cc = 0;
	int r;

	if (s->cfg.has_fixed_cw) {
		/* BISS-like: no CA_descriptor, the PMT goes out as it came */
		if (len > sizeof(out))
			return CE_RANGE;
		memcpy(out, sec, len);
		olen = len;
	} else {
		for (size_t c = 0; c < s->cfg.ncas; c++) {
			uint16_t sys = (uint16_t)(s->cfg.cas[c].super_cas_id >> 16);

			ca_desc_remove(p->info, &p->info_len, sys);
			for (size_t i = 0; i < p->nes; i++)
				ca_desc_remove(p->es[i].info, &p->es[i].info_len, sys);
		}
		for (size_t c = 0; c < s->cfg.ncas; c++) {
			struct ca_desc ca;

			memset(&ca, 0, sizeof(ca));
			ca.ca_system_id = (uint16_t)(s->cfg.cas[c].super_cas_id >> 16);
			ca.ca_pid = v->ecm_pid[c];
			if (v->cfg.npids == 0) {
				if ((r = ca_desc_append(p->info, sizeof(p->info), &p->info_len, &ca)) != 0)
					return r;
			} else {
				for (size_t i = 0; i < p->nes; i++) {
					if (!svc_wants_pid(v, p->es[i].pid))
						continue;
					r = ca_desc_append(p->es[i].info, sizeof(p->es[i].info), &p->es[i].info_len, &ca);
					if (r != 0)
						return r;
				}
			}
		}
		p->version = (uint8_t)((p->version + 1) & 31);
		if ((r = pmt_build(p, out, sizeof(out), &olen)) != 0)
			return r;
	}
	cc = 0;
	if ((r = ts_packetize(out, olen, v->pmt_pid, &cc, v->pmt_pkts, PMT_MAX_PKTS, &n)) != 0)
		return r;
	v->pmt_npkts = n;
	v->pmt_ok = true;
	return 0;
}

/* PAT seen and a PMT for every configured service the PAT lists: from
 * then on a PID we do not know is not one of our components. */
static void psi_check_ready(struct scrambler *s)
{
	bool ready = s->pat_seen;

	for (size_t vi = 0; vi < s->cfg.nservices && ready; vi++)
		if (s->svc[vi].in_pat && !s->svc[vi].pmt_ok)
			ready = false;
	s->psi_ready = ready;
}

/* The first PMT with our ECM PIDs is out: send the ECMs already on air
 * now, and open the gate once they are all out. */
int scr_ecm_after_pmt(struct scrambler *s, struct svc *v)
{
	bool all_out = true;
	int r;

	v->ecm_after_pmt = false;
	for (size_t c = 0; c < s->cfg.ncas; c++) {
		struct ecm_stream *e = &s->es[v->estream[c]];

		if (e->on_air) {
			e->next_due = s->st + e->rep_ticks;
			if ((r = scr_ecm_send(s, v->estream[c], ECM_URGENT)) != 0)
				return r;
		}
		if (e->queued > 0)
			all_out = false;
	}
	if (v->scrambling && !v->gate_open)
		v->gate_open = all_out;
	return 0;
}

int scr_on_pmt(void *ctx, uint16_t pid, const uint8_t *sec, size_t len)
{
	struct scrambler *s = ctx;
	struct svc *v = &s->svc[s->pid_svc[pid]];
	struct pmt *p = v->pmt;
	int r;

	/* PMTs repeat (every 100 ms or so) and rarely change: for the section
	 * we rewrote last time, pmt_pkts is still right (its output depends on
	 * the section, the PMT PID and the ECM PIDs, fixed once allocated).
	 * Only claim ES PIDs that another service may have released since. */
	if (v->pmt_ok && v->last_pmt_len == len && v->last_pmt_pid == pid && memcmp(v->last_pmt, sec, len) == 0) {
		for (size_t i = 0; i < p->nes; i++) {
			uint16_t ep = p->es[i].pid;

			if (ep >= 0x10 && ep != TS_PID_NULL && s->pid_kind[ep] == PK_NONE && svc_wants_pid(v, ep)) {
				s->pid_kind[ep] = PK_ES;
				s->pid_svc[ep] = s->pid_svc[pid];
			}
		}
		v->pmt_emit = true;
		s->stats.pmt_rewrites++;
		return 0;
	}
	v->last_pmt_len = 0;
	if (pmt_parse(sec, len, p) != 0) {
		s->stats.psi_errors++;
		v->pmt_emit = v->pmt_ok; /* keep our last good one on air */
		return 0;
	}
	if (p->program != v->cfg.service_id) {
		v->pmt_emit = v->pmt_ok;
		return 0;
	}
	s->pid_used[p->pcr_pid & TS_PID_MAX] = 1;
	for (size_t i = 0; i < p->nes; i++)
		s->pid_used[p->es[i].pid & TS_PID_MAX] = 1;
	if (!s->cfg.has_fixed_cw && !v->pids_allocated) {
		if ((r = alloc_ecm_pids(s, v)) != 0) {
			LOG_ERR(MOD, "service %u: no free PID for the ECMs", v->cfg.service_id);
			return 0;
		}
		/* ECMs may already be waiting for their PID: they go out right
		 * after this PMT (a box never sees an ECM sent before the PMT
		 * that announces its PID); see the PK_PMT case of one_packet */
		v->ecm_after_pmt = true;
	}
	/* which PIDs to scramble: reset then mark */
	for (unsigned q = 0; q <= TS_PID_MAX; q++)
		if (s->pid_kind[q] == PK_ES && s->pid_svc[q] == s->pid_svc[pid])
			s->pid_kind[q] = PK_NONE;
	for (size_t i = 0; i < p->nes; i++) {
		uint16_t ep = p->es[i].pid;

		if (ep < 0x10 || ep == TS_PID_NULL || s->pid_kind[ep] != PK_NONE)
			continue;
		if (!svc_wants_pid(v, ep))
			continue;
		s->pid_kind[ep] = PK_ES;
		s->pid_svc[ep] = s->pid_svc[pid];
	}
	if ((r = pmt_rewrite(s, v, sec, len)) != 0) {
		s->stats.psi_errors++;
		LOG_WARN(MOD, "service %u: cannot rewrite the PMT: %s", v->cfg.service_id, err_str(r));
		return 0;
	}
	v->pmt_emit = true;
	s->stats.pmt_rewrites++;
	if (!s->psi_ready)
		psi_check_ready(s);
	if (len <= sizeof(v->last_pmt)) {
		memcpy(v->last_pmt, sec, len);
		v->last_pmt_len = len;
		v->last_pmt_pid = pid;
	}
	return 0;
}

int scr_on_pat(void *ctx, uint16_t pid, const uint8_t *sec, size_t len)
{
	struct scrambler *s = ctx;
	struct pat *pat = s->pat;

	(void)pid;
	if (pat_parse(sec, len, pat) != 0) {
		s->stats.psi_errors++;
		return 0;
	}
	for (size_t i = 0; i < pat->nprog; i++)
		s->pid_used[pat->prog[i].pid & TS_PID_MAX] = 1;
	for (size_t vi = 0; vi < s->cfg.nservices; vi++) {
		struct svc *v = &s->svc[vi];

		for (size_t i = 0; i < pat->nprog; i++) {
			uint16_t pp = pat->prog[i].pid;

			if (pat->prog[i].program != v->cfg.service_id)
				continue;
			if (v->in_pat && v->pmt_pid == pp)
				break;
			if (pp < 0x10 || pp == TS_PID_NULL || (s->pid_kind[pp] != PK_NONE &&
				!(s->pid_kind[pp] == PK_PMT && s->pid_svc[pp] == vi))) {
				s->stats.psi_errors++;
				break;
			}
			if (v->in_pat && s->pid_kind[v->pmt_pid] == PK_PMT)
				s->pid_kind[v->pmt_pid] = PK_NONE;
			v->in_pat = true;
			v->pmt_pid = pp;
			s->pid_kind[pp] = PK_PMT;
			s->pid_svc[pp] = (uint8_t)vi;
			psi_asm_init(v->pmt_asm, pp);
			s->out_cc[pp] = 15;
			break;
		}
	}
	s->pat_seen = true;
	psi_check_ready(s);
	return 0;
}

int scr_cat_build_pkts(struct scrambler *s)
{
	struct cat *c = calloc(1, sizeof(*c));
	uint8_t sec[PSI_MAX_PSI_SECTION];
	size_t len = 0, n = 0;
	uint8_t cc = 0;
	int r;

	if (!c)
		return CE_NOMEM;
	if (s->cat_in_seen) {
		memcpy(c, s->cat_in, sizeof(*c));
		c->version = (uint8_t)((c->version + 1) & 31);
	}
	for (size_t i = 0; i < s->ncat_ca; i++)
		ca_desc_remove(c->info, &c->info_len, s->cat_ca[i].ca_system_id);
	for (size_t i = 0; i < s->ncat_ca; i++)
		if ((r = ca_desc_append(c->info, sizeof(c->info), &c->info_len, &s->cat_ca[i])) != 0)
			goto out;
	if ((r = cat_build(c, sec, sizeof(sec), &len)) != 0)
		goto out;
	if ((r = ts_packetize(sec, len, TS_PID_CAT, &cc, s->cat_pkts, CAT_MAX_PKTS, &n)) != 0)
		goto out;
	s->cat_npkts = n;
	r = 0;
out:
	free(c);
	return r;
}

int scr_on_cat(void *ctx, uint16_t pid, const uint8_t *sec, size_t len)
{
	struct scrambler *s = ctx;

	(void)pid;
	if (cat_parse(sec, len, s->cat_in) != 0) {
		s->stats.psi_errors++;
		return 0;
	}
	s->cat_in_seen = true;
	if (scr_cat_build_pkts(s) != 0)
		s->stats.psi_errors++;
	return 0;
}
