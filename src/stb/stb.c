/*
 * stb.c - the reference set-top box: PAT/PMT/CAT demultiplexing, ECM/EMM
 * section delivery to the CAS client, batch descrambling, counters and the
 * report. See stb.h. References: ISO/IEC 13818-1 (2.4.3, 2.4.4, 2.6.16),
 * ETSI TS 100 289, ETSI TS 103 127, ETSI EN 300 468.
 *
 * Packet flow in stb_feed, per packet in stream order:
 *   ts_parse (bad -> counted, passed through)
 *   -> section PIDs (PAT, CAT, PMTs, ECM PIDs, EMM PIDs): psi_asm; section
 *      callbacks update the service table and mark the PID maps dirty (maps
 *      are rebuilt after the push returns, never under the assembler)
 *   -> component PIDs: counted; scrambled packets queued in the batch of
 *      their slot (service, ECM PID); a full batch is descrambled.
 * Before an ECM is handed to the client every queued batch is flushed, so
 * a CW change never applies to packets that came before the ECM.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include "cas/ecm.h"
#include "lib/log.h"
#include "lib/util.h"
#include "stb/osd_log.h"
#include "stb/ui.h"
#include "stb/stb.h"
#include "ts/psi.h"

#define STB_NPIDS (TS_PID_MAX + 1)
#define STB_MAX_SEC_PIDS (2 + STB_MAX_SERVICES * (1 + STB_MAX_ECM_PIDS_PER_SERVICE) + STB_MAX_EMM_PIDS)
#define PCR_WRAP (((uint64_t)1 << 33) * 300)

/* Roles of a section PID (a bit mask: one PID may carry several). */
enum { ROLE_PAT = 1, ROLE_CAT = 2, ROLE_PMT = 4, ROLE_ECM = 8, ROLE_EMM = 16, ROLE_CAPID = 32 };

struct stb_es {
	uint16_t pid;
	uint16_t tag;        /* ECM PID of its slot, or DESCR_TAG_SERVICE */
	bool pes;            /* carries PES (start-code check applies) */
};

struct stb_svc {
	struct stb_service_report rep; /* counters, reported as they are */
	bool in_pat;
	int pmt_version;     /* -1 before the first PMT */
	uint16_t pcr_pid;
	size_t nes;
	struct stb_es es[PMT_MAX_ES];
	bool keys_requested; /* fixed-CW mode: ecm(NULL) done */
	bool have_pcr;
	uint64_t last_pcr;
	bool have_ecm_pcr;
	uint64_t first_ecm_pcr;
	bool pcr_break;      /* the clock jumped since the first ECM */
	uint64_t pes_starts, pes_starts_bad;
	bool last_ecm_refused;
	bool nokey_open;     /* packets are being left scrambled for want of
	                      * the CP's key right now */
	uint8_t *pmt_sec;    /* last PMT section (stb_set_client re-reads it) */
	size_t pmt_len;
	size_t nca_pids;     /* CA_descriptor PIDs of any CA_system_id */
	uint16_t ca_pids[STB_MAX_ECM_PIDS_PER_SERVICE];
};

struct stb_secpid {
	uint16_t pid;
	uint8_t roles;
	struct psi_asm *a;
	uint8_t *last_ecm;   /* keep_all_ecms: last ECM section on this PID */
	size_t last_ecm_len;
};

struct stb_batch {
	size_t svc;          /* index in s->svc */
	uint16_t tag;
	size_t n;
	uint8_t *pkts[STB_BATCH_PKTS];
	uint64_t idx[STB_BATCH_PKTS];
	bool pes_check[STB_BATCH_PKTS];
	bool have_pcr[STB_BATCH_PKTS];
	uint64_t pcr[STB_BATCH_PKTS];
};

/* Which crypto-period each loaded CW belongs to, per descrambler slot
 * (service, ECM PID). The CP of the packets is followed from the ECMs'
 * CP_number (Castellan ECM format) and the parity flips of the packets; a
 * packet is descrambled only when the CW of its parity belongs to the CP in
 * force, so a CW of an earlier CP is never applied to a later one (after
 * ECMs are refused or stop arriving, the packets stay scrambled). An ECM
 * of CP n carries the CWs of CPs n and n+1 (lead_CW 1). */
#define CP_NONE INT64_MIN
struct stb_cpstate {
	uint16_t service_id;
	uint16_t tag;
	int par;             /* parity of the last scrambled packet, -1 none */
	bool cp_known;
	int64_t cp;          /* CP of the packets now (unwrapped CP_number) */
	int64_t cw_cp[2];    /* CP the CW of each parity belongs to, CP_NONE */
	bool untracked;      /* CWs came from ECMs without a readable CP_number:
	                      * not gated (the box cannot tell) */
};

struct stb {
	struct stb_config cfg;
	uint16_t ca_system_id;
	bool no_ecm;         /* fixed-CW style client */
	struct descrambler *d;
	struct cas_host host;   /* given to the client: records loads, then inner */
	struct cas_host inner;  /* the descrambler's or the chip link's */
	unsigned loaded_mask;   /* parities loaded by the current client call */
	size_t ncps;
	struct stb_cpstate cps[DESCR_MAX_SLOTS];
	uint8_t *chipbuf;    /* cfg.chip: one batch, contiguous */
	uint64_t pkt_index;
	/* global counters */
	uint64_t bad_packets, tei_packets, section_errors;
	uint64_t emm_seen, emm_accepted, emm_refused, emm_not_addressed, emm_repeats;
	int pat_version, cat_version;
	size_t nemm;
	uint16_t emm_pids[STB_MAX_EMM_PIDS];
	size_t nsvc;
	struct stb_svc svc[STB_MAX_SERVICES];
	size_t nsec;
	struct stb_secpid sec[STB_MAX_SEC_PIDS];
	size_t nbatch;
	struct stb_batch *batch[DESCR_MAX_SLOTS];
	bool dirty;          /* PID maps need a rebuild */
	int16_t sec_of_pid[STB_NPIDS];
	int16_t svc_of_pid[STB_NPIDS];
	int16_t batch_of_pid[STB_NPIDS];
	int16_t es_of_pid[STB_NPIDS];   /* index in the service's es[] */
	struct pmt *pmt;     /* scratch (large) */
	struct pat pat;      /* scratch */
	struct cat cat;      /* scratch */
	/* OSD (issue 13): what the box showed, on the stream clock */
	struct osd_log *osd;
	bool have_clock;     /* the stream clock: PCRs of the first PCR PID seen */
	uint16_t clock_pid;
	uint64_t clock_last_pcr;
	uint64_t stream_ticks; /* 27 MHz ticks since the first PCR (discontinuities add 0) */
};

static bool svc_selected(const struct stb *s, uint16_t sid)
{
	return !s->cfg.one_service || s->cfg.service_id == sid;
}

static bool valid_ca_pid(uint16_t pid)
{
	return pid > TS_PID_CAT && pid < TS_PID_NULL;
}

/* Stream types whose payload is PES (so a descrambled PUSI packet must
 * start with 00 00 01). Section-carrying types are excluded. */
static bool stream_type_is_pes(uint8_t st)
{
	switch (st) {
	case 0x05: case 0x0A: case 0x0B: case 0x0C: case 0x0D: case 0x86:
		return false;
	default:
		return true;
	}
}

static int wrap_load_cw(void *ctx, uint16_t service_id, enum cw_alg alg, enum cw_parity parity,
	const uint8_t *cw, size_t len)
{
	struct stb *s = ctx;
	int r;

	if (!s->inner.load_cw)
		return CE_UNSUPPORTED;
	r = s->inner.load_cw(s->inner.ctx, service_id, alg, parity, cw, len);
	if (r == 0)
		s->loaded_mask |= parity == CW_ODD ? 2u : 1u;
	return r;
}

static int wrap_load_ecw(void *ctx, uint16_t service_id, enum cw_alg alg, enum cw_parity parity,
	const uint8_t *ek, size_t ek_len)
{
	struct stb *s = ctx;
	int r;

	if (!s->inner.load_ecw)
		return CE_UNSUPPORTED;
	r = s->inner.load_ecw(s->inner.ctx, service_id, alg, parity, ek, ek_len);
	if (r == 0)
		s->loaded_mask |= parity == CW_ODD ? 2u : 1u;
	return r;
}

static uint64_t wrap_now_ms(void *ctx)
{
	struct stb *s = ctx;

	return s->inner.now_ms ? s->inner.now_ms(s->inner.ctx) : now_wall_ms();
}

/* ---- OSD: the client's on_fingerprint / on_message land here ---- */
static int64_t osd_stream_ms(const struct stb *s)
{
	return s->have_clock ? (int64_t)(s->stream_ticks / 27000u) : -1;
}

static void host_on_fingerprint(void *ctx, uint16_t service_id, const struct osd_fingerprint *fp, const char *text)
{
	struct stb *s = ctx;

	(void)osd_log_fingerprint(s->osd, osd_stream_ms(s), wrap_now_ms(s), service_id, fp, text);
}

static void host_on_message(void *ctx, const struct osd_message *m)
{
	struct stb *s = ctx;

	(void)osd_log_message(s->osd, osd_stream_ms(s), wrap_now_ms(s), m);
}

/* The stream clock: the first PID that carries a PCR; a jump backwards or
 * of more than 10 s (a looped file, a splice) adds nothing. */
static void stream_clock(struct stb *s, const struct ts_hdr *h)
{
	if (!s->have_clock) {
		s->have_clock = true;
		s->clock_pid = h->pid;
		s->clock_last_pcr = h->pcr;
		s->stream_ticks = 0;
		return;
	}
	if (h->pid != s->clock_pid)
		return;
	if (!h->discontinuity && h->pcr >= s->clock_last_pcr && h->pcr - s->clock_last_pcr <= 10u * 27000000u)
		s->stream_ticks += h->pcr - s->clock_last_pcr;
	s->clock_last_pcr = h->pcr;
}

const struct osd_log *stb_osd_log(const struct stb *s)
{
	return s ? s->osd : NULL;
}

static int wrap_open_emm(void *ctx, const uint8_t *sec, size_t len, uint64_t serial, struct emm_view *v,
	struct emm_content *out)
{
	struct stb *s = ctx;

	return s->inner.open_emm(s->inner.ctx, sec, len, serial, v, out);
}

/* The host the client sees: the inner one, with loads recorded. A NULL
 * inner function stays NULL (clients test for it). */
static void wrap_host(struct stb *s)
{
	s->host.on_fingerprint = host_on_fingerprint;
	s->host.on_message = host_on_message;
	s->host.ctx = s;
	s->host.load_cw = s->inner.load_cw ? wrap_load_cw : NULL;
	s->host.load_ecw = s->inner.load_ecw ? wrap_load_ecw : NULL;
	s->host.now_ms = wrap_now_ms;
	s->host.open_emm = s->inner.open_emm ? wrap_open_emm : NULL;
}

static struct stb_cpstate *cps_find(struct stb *s, uint16_t sid, uint16_t tag, bool create)
{
	struct stb_cpstate *c;

	for (size_t i = 0; i < s->ncps; i++)
		if (s->cps[i].service_id == sid && s->cps[i].tag == tag)
			return &s->cps[i];
	if (!create || s->ncps >= DESCR_MAX_SLOTS)
		return NULL;
	c = &s->cps[s->ncps++];
	memset(c, 0, sizeof(*c));
	c->service_id = sid;
	c->tag = tag;
	c->par = -1;
	c->cp = CP_NONE;
	c->cw_cp[0] = c->cw_cp[1] = CP_NONE;
	return c;
}

int stb_new(const struct stb_config *cfg, struct stb **out)
{
	struct stb *s = NULL;
	struct descrambler_config dc = { 0 };
	int r = CE_NOMEM;

	if (!out)
		return CE_ARG;
	*out = NULL;
	if (!cfg || !cfg->client || !cfg->client->ops || !cfg->client->ops->ecm ||
	    !cfg->client->ops->ca_system_id)
		return CE_ARG;
	s = calloc(1, sizeof(*s));
	if (!s)
		goto fail;
	s->cfg = *cfg;
	s->pmt = calloc(1, sizeof(*s->pmt));
	if (!s->pmt)
		goto fail;
	dc.csa2_reduce = cfg->csa2_reduce;
	dc.now_ms = cfg->now_ms;
	dc.clock_ctx = cfg->clock_ctx;
	if ((r = descrambler_new(&dc, &s->d)) != 0)
		goto fail;
	descrambler_host(s->d, &s->inner);
	if (cfg->chip) {
		chip_link_host(cfg->chip, cfg->now_ms, cfg->clock_ctx, &s->inner);
		s->chipbuf = malloc((size_t)CHIP_MAX_PKTS * TS_PACKET_BYTES);
		if (!s->chipbuf) {
			r = CE_NOMEM;
			goto fail;
		}
	}
	wrap_host(s);
	if ((r = osd_log_new(&s->osd)) != 0)
		goto fail;
	cas_client_set_host(cfg->client, &s->host); /* EMM-borne OSD items */
	s->ca_system_id = cfg->client->ops->ca_system_id(cfg->client->self);
	s->no_ecm = s->ca_system_id == STB_CA_SYSTEM_NONE;
	s->pat_version = -1;
	s->cat_version = -1;
	s->dirty = true;
	for (size_t i = 0; i < STB_NPIDS; i++) {
		s->sec_of_pid[i] = -1;
		s->svc_of_pid[i] = -1;
		s->batch_of_pid[i] = -1;
		s->es_of_pid[i] = -1;
	}
	*out = s;
	return 0;
fail:
	stb_free(s);
	return r;
}

void stb_free(struct stb *s)
{
	if (!s)
		return;
	if (s->osd) /* attached in stb_new once the log existed */
		cas_client_set_host(s->cfg.client, NULL);
	osd_log_free(s->osd);
	for (size_t i = 0; i < s->nsec; i++) {
		free(s->sec[i].a);
		free(s->sec[i].last_ecm);
	}
	for (size_t i = 0; i < s->nbatch; i++)
		free(s->batch[i]);
	for (size_t i = 0; i < s->nsvc; i++)
		free(s->svc[i].pmt_sec);
	descrambler_free(s->d);
	free(s->chipbuf);
	free(s->pmt);
	free(s);
}

struct descrambler *stb_descrambler(struct stb *s)
{
	return s ? s->d : NULL;
}

/* ---- descrambling ---- */

static void set_tag(struct stb *s, uint16_t tag)
{
	if (s->cfg.chip)
		chip_link_set_tag(s->cfg.chip, tag);
	else
		descrambler_set_tag(s->d, tag);
}

/* In the chip: the batch's packets are copied into one buffer and back, at
 * most CHIP_MAX_PKTS a request (the box's batch may be wider). */
static void chip_run(struct stb *s, uint16_t sid, struct stb_batch *b)
{
	for (size_t off = 0; off < b->n; off += CHIP_MAX_PKTS) {
		size_t n = b->n - off < CHIP_MAX_PKTS ? b->n - off : CHIP_MAX_PKTS;

		for (size_t i = 0; i < n; i++)
			memcpy(s->chipbuf + i * TS_PACKET_BYTES, b->pkts[off + i], TS_PACKET_BYTES);
		if (chip_link_descramble(s->cfg.chip, sid, b->tag, s->chipbuf, n, NULL, NULL) != 0)
			continue; /* left as they came: counted as left scrambled */
		for (size_t i = 0; i < n; i++)
			memcpy(b->pkts[off + i], s->chipbuf + i * TS_PACKET_BYTES, TS_PACKET_BYTES);
	}
}

static int64_t pcr_diff_ms(uint64_t from, uint64_t to)
{
	uint64_t d = (to + PCR_WRAP - (from % PCR_WRAP)) % PCR_WRAP;

	return (int64_t)(d / 27000);
}

static void flush_batch(struct stb *s, struct stb_batch *b)
{
	struct stb_svc *sv;
	size_t done = 0, missing = 0;

	if (b->n == 0)
		return;
	sv = &s->svc[b->svc];
	/* counts come from the packets themselves (bits reset to 00 = done) */
	if (s->cfg.chip)
		chip_run(s, sv->rep.service_id, b);
	else
		(void)descrambler_run(s->d, sv->rep.service_id, b->tag, b->pkts, b->n, &done, &missing);
	for (size_t i = 0; i < b->n; i++) {
		const uint8_t *p = b->pkts[i];

		if ((p[3] >> 6) != TS_SC_CLEAR) {
			sv->rep.left_scrambled++;
			continue;
		}
		sv->rep.descrambled++;
		if (sv->rep.first_descrambled_pkt < 0) {
			sv->rep.first_descrambled_pkt = (int64_t)b->idx[i];
			if (sv->rep.first_ecm_pkt >= 0) {
				sv->rep.zapping_pkts = (int64_t)b->idx[i] - sv->rep.first_ecm_pkt;
				if (sv->have_ecm_pcr && b->have_pcr[i])
					sv->rep.zapping_ms = pcr_diff_ms(sv->first_ecm_pcr, b->pcr[i]);
			}
		}
		if (b->pes_check[i]) {
			struct ts_hdr h;

			if (ts_parse(p, &h) == 0 && h.pusi && h.payload_len >= 3) {
				const uint8_t *pl = p + h.payload_off;

				sv->pes_starts++;
				if (pl[0] != 0 || pl[1] != 0 || pl[2] != 1)
					sv->pes_starts_bad++;
			}
		}
	}
	b->n = 0;
}

static void flush_all(struct stb *s)
{
	for (size_t i = 0; i < s->nbatch; i++)
		flush_batch(s, s->batch[i]);
}

/* ---- PID maps ---- */

static int sec_want(struct stb *s, uint16_t pid, uint8_t role, uint8_t *roles)
{
	(void)s;
	if (pid > TS_PID_MAX)
		return 0;
	roles[pid] |= role;
	return 0;
}

/* Rebuild the PID -> section/role and PID -> component/batch maps from the
 * service table. Batches must be empty (flush_all first). */
static int rebuild(struct stb *s)
{
	uint8_t *roles = calloc(STB_NPIDS, 1);
	int r = CE_NOMEM;

	if (!roles)
		return CE_NOMEM;
	sec_want(s, TS_PID_PAT, ROLE_PAT, roles);
	if (!s->no_ecm)
		sec_want(s, TS_PID_CAT, ROLE_CAT, roles);
	for (size_t i = 0; i < s->nemm; i++)
		sec_want(s, s->emm_pids[i], ROLE_EMM, roles);
	for (size_t i = 0; i < s->nsvc; i++) {
		const struct stb_svc *sv = &s->svc[i];

		if (!sv->in_pat)
			continue;
		sec_want(s, sv->rep.pmt_pid, ROLE_PMT, roles);
		for (size_t k = 0; k < sv->rep.necm_pids; k++)
			sec_want(s, sv->rep.ecm_pids[k], ROLE_ECM, roles);
		for (size_t k = 0; s->cfg.keep_all_ecms && k < sv->nca_pids; k++)
			sec_want(s, sv->ca_pids[k], ROLE_CAPID, roles);
	}
	/* drop assemblers no longer wanted, keep the others (partial sections) */
	{
		size_t w = 0;

		for (size_t i = 0; i < s->nsec; i++) {
			uint16_t pid = s->sec[i].pid;

			s->sec_of_pid[pid] = -1;
			if (!roles[pid]) {
				free(s->sec[i].a);
				free(s->sec[i].last_ecm);
				continue;
			}
			s->sec[w] = s->sec[i];
			s->sec[w].roles = roles[pid];
			roles[pid] = 0; /* done */
			s->sec_of_pid[pid] = (int16_t)w;
			w++;
		}
		s->nsec = w;
	}
	for (size_t pid = 0; pid < STB_NPIDS; pid++) {
		struct psi_asm *a;

		if (!roles[pid])
			continue;
		if (s->nsec >= STB_MAX_SEC_PIDS)
			break;
		a = malloc(sizeof(*a));
		if (!a)
			goto out;
		psi_asm_init(a, (uint16_t)pid);
		s->sec[s->nsec].pid = (uint16_t)pid;
		s->sec[s->nsec].roles = roles[pid];
		s->sec[s->nsec].a = a;
		s->sec[s->nsec].last_ecm = NULL;
		s->sec[s->nsec].last_ecm_len = 0;
		s->sec_of_pid[pid] = (int16_t)s->nsec;
		s->nsec++;
	}
	/* components and their batches */
	for (size_t i = 0; i < s->nbatch; i++)
		free(s->batch[i]);
	s->nbatch = 0;
	for (size_t pid = 0; pid < STB_NPIDS; pid++) {
		s->svc_of_pid[pid] = -1;
		s->batch_of_pid[pid] = -1;
		s->es_of_pid[pid] = -1;
	}
	for (size_t i = 0; i < s->nsvc; i++) {
		const struct stb_svc *sv = &s->svc[i];

		if (!sv->in_pat || !sv->rep.have_pmt)
			continue;
		for (size_t e = 0; e < sv->nes; e++) {
			uint16_t pid = sv->es[e].pid;
			size_t b;

			if (pid > TS_PID_MAX || s->svc_of_pid[pid] >= 0)
				continue; /* a PID shared by two services: the first wins */
			for (b = 0; b < s->nbatch; b++)
				if (s->batch[b]->svc == i && s->batch[b]->tag == sv->es[e].tag)
					break;
			if (b == s->nbatch) {
				if (s->nbatch >= DESCR_MAX_SLOTS)
					continue;
				s->batch[b] = calloc(1, sizeof(*s->batch[b]));
				if (!s->batch[b])
					goto out;
				s->batch[b]->svc = i;
				s->batch[b]->tag = sv->es[e].tag;
				s->nbatch++;
			}
			s->svc_of_pid[pid] = (int16_t)i;
			s->es_of_pid[pid] = (int16_t)e;
			s->batch_of_pid[pid] = (int16_t)b;
		}
	}
	s->dirty = false;
	r = 0;
out:
	free(roles);
	return r;
}

/* ---- sections ---- */

static struct stb_svc *svc_find(struct stb *s, uint16_t sid)
{
	for (size_t i = 0; i < s->nsvc; i++)
		if (s->svc[i].rep.service_id == sid)
			return &s->svc[i];
	return NULL;
}

static void on_pat(struct stb *s, const uint8_t *sec, size_t len)
{
	if (pat_parse(sec, len, &s->pat) != 0) {
		s->section_errors++;
		return;
	}
	if (s->pat_version == s->pat.version)
		return;
	s->pat_version = s->pat.version;
	for (size_t i = 0; i < s->nsvc; i++)
		s->svc[i].in_pat = false;
	for (size_t k = 0; k < s->pat.nprog && k < PAT_MAX_PROGRAMS; k++) {
		uint16_t sid = s->pat.prog[k].program, pid = s->pat.prog[k].pid;
		struct stb_svc *sv;

		if (sid == 0 || !svc_selected(s, sid))
			continue;
		sv = svc_find(s, sid);
		if (!sv) {
			if (s->nsvc >= STB_MAX_SERVICES)
				continue;
			sv = &s->svc[s->nsvc++];
			memset(sv, 0, sizeof(*sv));
			sv->rep.service_id = sid;
			sv->rep.pmt_pid = STB_NO_PID;
			sv->rep.first_descrambled_pkt = -1;
			sv->rep.first_ecm_pkt = -1;
			sv->rep.nokey_since_cp = -1;
			sv->rep.zapping_pkts = -1;
			sv->rep.zapping_ms = -1;
			sv->pmt_version = -1;
		}
		if (sv->rep.pmt_pid != pid) {
			sv->rep.pmt_pid = pid;
			sv->rep.have_pmt = false;
			sv->pmt_version = -1;
		}
		sv->in_pat = true;
	}
	s->dirty = true;
}

/* First CA_descriptor of our CA_system_id in a descriptor loop: its PID, or
 * DESCR_TAG_SERVICE. */
static uint16_t find_ecm_pid(struct stb *s, const uint8_t *desc, size_t len)
{
	struct ca_desc cas[PSI_MAX_CA];
	size_t n = 0;

	if (s->no_ecm || len == 0)
		return DESCR_TAG_SERVICE;
	if (ca_desc_find(desc, len, cas, PSI_MAX_CA, &n) != 0) {
		s->section_errors++;
		return DESCR_TAG_SERVICE;
	}
	for (size_t i = 0; i < n && i < PSI_MAX_CA; i++)
		if (cas[i].ca_system_id == s->ca_system_id && valid_ca_pid(cas[i].ca_pid))
			return cas[i].ca_pid;
	return DESCR_TAG_SERVICE;
}

static void svc_add_ecm_pid(struct stb_svc *sv, uint16_t pid)
{
	for (size_t k = 0; k < sv->rep.necm_pids; k++)
		if (sv->rep.ecm_pids[k] == pid)
			return;
	if (sv->rep.necm_pids < STB_MAX_ECM_PIDS_PER_SERVICE)
		sv->rep.ecm_pids[sv->rep.necm_pids++] = pid;
}

static bool svc_has_ecm_pid(const struct stb_svc *sv, uint16_t pid)
{
	for (size_t k = 0; k < sv->rep.necm_pids; k++)
		if (sv->rep.ecm_pids[k] == pid)
			return true;
	return false;
}

static void add_ca_pids(struct stb_svc *sv, const uint8_t *desc, size_t len)
{
	struct ca_desc cas[PSI_MAX_CA];
	size_t n = 0;

	if (len == 0 || ca_desc_find(desc, len, cas, PSI_MAX_CA, &n) != 0)
		return;
	for (size_t i = 0; i < n && i < PSI_MAX_CA; i++) {
		bool dup = false;

		for (size_t k = 0; k < sv->nca_pids; k++)
			dup = dup || sv->ca_pids[k] == cas[i].ca_pid;
		if (!dup && valid_ca_pid(cas[i].ca_pid) && sv->nca_pids < STB_MAX_ECM_PIDS_PER_SERVICE)
			sv->ca_pids[sv->nca_pids++] = cas[i].ca_pid;
	}
}

/* Keep the PMT section and its CA PIDs of every CA_system_id (a later
 * client may use another one: stb_set_client). */
static void keep_pmt(struct stb *s, struct stb_svc *sv, const uint8_t *sec, size_t len)
{
	if (sv->pmt_sec != sec) {
		uint8_t *copy = realloc(sv->pmt_sec, len);

		if (!copy)
			return;
		memcpy(copy, sec, len);
		sv->pmt_sec = copy;
		sv->pmt_len = len;
	}
	sv->nca_pids = 0;
	add_ca_pids(sv, s->pmt->info, s->pmt->info_len);
	for (size_t e = 0; e < s->pmt->nes && e < PMT_MAX_ES; e++)
		add_ca_pids(sv, s->pmt->es[e].info, s->pmt->es[e].info_len);
}

static void on_pmt(struct stb *s, uint16_t pid, const uint8_t *sec, size_t len)
{
	struct pmt *pmt = s->pmt;
	struct stb_svc *sv = NULL;
	uint16_t prog_tag;

	if (pmt_parse(sec, len, pmt) != 0) {
		s->section_errors++;
		return;
	}
	for (size_t i = 0; i < s->nsvc; i++)
		if (s->svc[i].in_pat && s->svc[i].rep.pmt_pid == pid && s->svc[i].rep.service_id == pmt->program)
			sv = &s->svc[i];
	if (!sv)
		return;
	if (sv->rep.have_pmt && sv->pmt_version == pmt->version)
		return;
	sv->pmt_version = pmt->version;
	sv->rep.have_pmt = true;
	keep_pmt(s, sv, sec, len);
	sv->pcr_pid = pmt->pcr_pid;
	sv->rep.necm_pids = 0;
	prog_tag = find_ecm_pid(s, pmt->info, pmt->info_len);
	if (prog_tag != DESCR_TAG_SERVICE)
		svc_add_ecm_pid(sv, prog_tag);
	sv->nes = 0;
	for (size_t e = 0; e < pmt->nes && e < PMT_MAX_ES; e++) {
		uint16_t tag = find_ecm_pid(s, pmt->es[e].info, pmt->es[e].info_len);

		if (tag == DESCR_TAG_SERVICE) {
			tag = prog_tag;
		} else {
			svc_add_ecm_pid(sv, tag);
			if (!svc_has_ecm_pid(sv, tag))
				tag = prog_tag; /* too many ECM PIDs: fall back */
		}
		sv->es[sv->nes].pid = pmt->es[e].pid;
		sv->es[sv->nes].tag = tag;
		sv->es[sv->nes].pes = stream_type_is_pes(pmt->es[e].stream_type);
		sv->nes++;
	}
	s->dirty = true;
}

static void on_cat(struct stb *s, const uint8_t *sec, size_t len)
{
	struct ca_desc cas[PSI_MAX_CA];
	size_t n = 0;

	if (cat_parse(sec, len, &s->cat) != 0) {
		s->section_errors++;
		return;
	}
	if (s->cat_version == s->cat.version)
		return;
	s->cat_version = s->cat.version;
	s->nemm = 0;
	if (ca_desc_find(s->cat.info, s->cat.info_len, cas, PSI_MAX_CA, &n) != 0) {
		s->section_errors++;
		n = 0;
	}
	for (size_t i = 0; i < n && i < PSI_MAX_CA && s->nemm < STB_MAX_EMM_PIDS; i++)
		if (cas[i].ca_system_id == s->ca_system_id && valid_ca_pid(cas[i].ca_pid))
			s->emm_pids[s->nemm++] = cas[i].ca_pid;
	s->dirty = true;
}

/* After the client's answer to an ECM of slot (sv, pid): which CP the CWs
 * just loaded belong to, and the CP of the packets (anchored on accepted
 * ECMs: a refused or replayed one moves nothing). */
static void ecm_cp_update(struct stb *s, struct stb_svc *sv, uint16_t pid, bool have_cp, uint16_t cp_number,
	int r)
{
	struct stb_cpstate *c = cps_find(s, sv->rep.service_id, pid, true);
	int64_t n;

	if (!c)
		return;
	if (!have_cp) {
		if (s->loaded_mask)
			c->untracked = true;
		return;
	}
	LOG_DEBUG("stb", "service %u tag 0x%x: ECM CP %u r=%d loaded %u (CP now %lld par %d)", sv->rep.service_id,
		pid, cp_number, r, s->loaded_mask, (long long)c->cp, c->par);
	if (r != 0)
		return;
	n = c->cp_known ? c->cp + (int16_t)(uint16_t)(cp_number - (uint16_t)c->cp) : (int64_t)cp_number;
	sv->rep.last_ecm_cp = cp_number;
	if (!c->cp_known || n > c->cp + 1 || n < c->cp - 1) {
		/* first ECM, or a jump: the packets now are of CP n (or of the
		 * CP before, if their parity says so) */
		c->cp = c->par < 0 || (n & 1) == c->par ? n : n - 1;
		c->cp_known = true;
	}
	for (int q = 0; q < 2; q++)
		if (s->loaded_mask & (1u << q))
			c->cw_cp[q] = (n & 1) == q ? n : n + 1;
}

/* May a scrambled packet of parity q in slot (sv, tag) be descrambled?
 * Follows the parity flips (a flip = the next CP). */
static bool cp_allows(struct stb *s, struct stb_svc *sv, uint16_t tag, int q)
{
	struct stb_cpstate *c;
	bool ok;

	if (s->no_ecm)
		return true;
	c = cps_find(s, sv->rep.service_id, tag, true);
	if (!c)
		return true;
	if (c->cp_known && q != c->par && (c->par >= 0 || (c->cp & 1) != q))
		c->cp++; /* a flip; or the first packet after an ECM of the CP before
		          * (a kept ECM handed over at a client switch) */
	c->par = q;
	if (!c->cp_known || c->untracked)
		return true; /* nothing loaded yet (the descrambler has no key), or no CP to check */
	ok = c->cw_cp[q] == c->cp;
	if (!ok && !sv->nokey_open)
		LOG_DEBUG("stb", "service %u tag 0x%x: packet parity %d at CP %lld, CWs of CPs %lld/%lld",
			sv->rep.service_id, tag, q, (long long)c->cp, (long long)c->cw_cp[0], (long long)c->cw_cp[1]);
	if (!ok) {
		sv->rep.nokey_pkts++;
		if (!sv->nokey_open) {
			sv->nokey_open = true;
			sv->rep.nokey_since_cp = (int64_t)(uint16_t)c->cp;
			sv->rep.nokey_reason = sv->last_ecm_refused ? sv->rep.last_refusal : CE_TIMEOUT;
		}
	} else {
		sv->nokey_open = false;
	}
	return ok;
}

/* C.6: the usage rules of an ECM the client accepted (its MACs cover the
 * extension block, so they are the head-end's). Another vendor's ECM, or a
 * block that does not read, leaves the service copy_never: the safe side. */
static void ecm_usage_update(struct stb_svc *sv, const struct ecm_view *ev)
{
	bool found = false;

	sv->rep.have_usage = true;
	if (!ev || ecm_ext_usage(ev, &sv->rep.usage, &found) != 0) {
		sv->rep.usage.copy_control = CAS_COPY_NEVER;
		sv->rep.usage.retention_s = 0;
	}
}

int stb_pid_usage(const struct stb *s, uint16_t pid, uint16_t *service_id, struct cas_usage *u, bool *have)
{
	const struct stb_svc *sv;

	*service_id = 0;
	*have = false;
	memset(u, 0, sizeof(*u));
	if (!s || pid > TS_PID_MAX || s->svc_of_pid[pid] < 0)
		return CE_NOT_FOUND;
	sv = &s->svc[s->svc_of_pid[pid]];
	*service_id = sv->rep.service_id;
	*have = sv->rep.have_usage;
	*u = sv->rep.usage;
	return 0;
}

void stb_note_recorded(struct stb *s, uint16_t service_id, uint64_t kept, uint64_t refused)
{
	for (size_t i = 0; s && i < s->nsvc; i++)
		if (s->svc[i].rep.service_id == service_id) {
			s->svc[i].rep.rec_pkts += kept;
			s->svc[i].rep.rec_refused_pkts += refused;
			return;
		}
}

static void on_ecm(struct stb *s, uint16_t pid, const uint8_t *sec, size_t len)
{
	struct cas_client *c = s->cfg.client;
	struct ecm_view ev;
	bool have_cp = ecm_parse(sec, len, &ev) == 0;

	flush_all(s); /* packets before this ECM use the CWs loaded so far */
	for (size_t i = 0; i < s->nsvc; i++) {
		struct stb_svc *sv = &s->svc[i];
		uint64_t loads, t0;
		int r;

		if (!sv->in_pat || !sv->rep.have_pmt || !svc_has_ecm_pid(sv, pid))
			continue;
		sv->rep.ecm_seen++;
		if (sv->rep.first_ecm_pkt < 0) {
			sv->rep.first_ecm_pkt = (int64_t)s->pkt_index;
			sv->have_ecm_pcr = sv->have_pcr;
			sv->first_ecm_pcr = sv->last_pcr;
		}
		loads = descrambler_loads(s->d);
		set_tag(s, pid);
		t0 = now_mono_us();
		s->loaded_mask = 0;
		r = c->ops->ecm(c->self, &s->host, sv->rep.service_id, sec, len);
		ecm_cp_update(s, sv, pid, have_cp, have_cp ? ev.cp_number : 0, r);
		sv->last_ecm_refused = r != 0;
		/* in the chip, an accepted ECM is one that loaded its CWs */
		if (sv->rep.first_cw_us == 0 && (s->cfg.chip ? r == 0 : descrambler_loads(s->d) != loads)) {
			uint64_t dt = now_mono_us() - t0;

			sv->rep.first_cw_us = dt ? dt : 1;
		}
		set_tag(s, DESCR_TAG_SERVICE);
		if (r == 0) {
			sv->rep.ecm_accepted++;
			ecm_usage_update(sv, have_cp ? &ev : NULL);
			continue;
		}
		sv->rep.ecm_refused++;
		sv->rep.last_refusal = r;
		if (sv->nokey_open && sv->rep.nokey_reason == CE_TIMEOUT)
			sv->rep.nokey_reason = r; /* the outage has a reason now */
		{
			struct ecm_view v;

			sv->rep.refusal_has_pkgs = false;
			if (ecm_parse(sec, len, &v) == 0 && v.ca_system_id == s->ca_system_id && v.ac_len >= 4) {
				sv->rep.refusal_has_pkgs = true;
				sv->rep.refusal_ecm_pkgs = v.package_mask;
				sv->rep.refusal_ecm_next = v.nxpkg;
				for (unsigned i = 0; i < v.nxpkg && i < 4; i++)
					sv->rep.refusal_ecm_ext[i] = v.xpkg[i];
			}
		}
		if (r == CE_FORMAT || r == CE_TRUNCATED || r == CE_TRAILING)
			s->section_errors++;
	}
}

static void on_emm(struct stb *s, const uint8_t *sec, size_t len)
{
	struct cas_client *c = s->cfg.client;
	int r;

	s->emm_seen++;
	if (!c->ops->emm) {
		s->emm_refused++;
		return;
	}
	r = c->ops->emm(c->self, sec, len);
	if (r == 0)
		s->emm_accepted++;
	else if (r == CE_NOT_FOUND)
		s->emm_not_addressed++;
	else if (r == CE_EXISTS)
		s->emm_repeats++; /* the carousel repeating one already applied: normal */
	else
		s->emm_refused++;
}

static int section_cb(void *ctx, uint16_t pid, const uint8_t *sec, size_t len)
{
	struct stb *s = ctx;
	int16_t k;
	uint8_t roles, tid;

	if (pid > TS_PID_MAX || len < 3 || !sec)
		return 0;
	k = s->sec_of_pid[pid];
	if (k < 0)
		return 0;
	roles = s->sec[k].roles;
	tid = sec[0];
	if ((tid == ECM_TABLE_EVEN || tid == ECM_TABLE_ODD) && (roles & ROLE_CAPID)) {
		uint8_t *copy = realloc(s->sec[k].last_ecm, len);

		if (copy) {
			memcpy(copy, sec, len);
			s->sec[k].last_ecm = copy;
			s->sec[k].last_ecm_len = len;
		}
	}
	if (tid == TID_PAT && (roles & ROLE_PAT))
		on_pat(s, sec, len);
	else if (tid == TID_CAT && (roles & ROLE_CAT))
		on_cat(s, sec, len);
	else if (tid == TID_PMT && (roles & ROLE_PMT))
		on_pmt(s, pid, sec, len);
	else if ((tid == ECM_TABLE_EVEN || tid == ECM_TABLE_ODD) && (roles & ROLE_ECM))
		on_ecm(s, pid, sec, len);
	else if (tid >= 0x82 && tid <= 0x8F && (roles & ROLE_EMM))
		on_emm(s, sec, len);
	return 0;
}

/* Fixed-CW clients get one ecm(NULL) per service once its PMT is known. */
static void request_fixed_keys(struct stb *s)
{
	struct cas_client *c = s->cfg.client;

	for (size_t i = 0; i < s->nsvc; i++) {
		struct stb_svc *sv = &s->svc[i];
		int r;

		if (!sv->in_pat || !sv->rep.have_pmt || sv->keys_requested)
			continue;
		sv->keys_requested = true;
		sv->rep.first_ecm_pkt = (int64_t)s->pkt_index;
		sv->have_ecm_pcr = sv->have_pcr;
		sv->first_ecm_pcr = sv->last_pcr;
		set_tag(s, DESCR_TAG_SERVICE);
		r = c->ops->ecm(c->self, &s->host, sv->rep.service_id, NULL, 0);
		if (r != 0) {
			sv->rep.last_refusal = r;
			LOG_WARN("stb", "service %u: the client loaded no key: %s", sv->rep.service_id, err_str(r));
		}
	}
}

/* ---- switching client ---- */

int stb_set_client(struct stb *s, struct cas_client *client)
{
	int r;

	if (!s || !client || !client->ops || !client->ops->ecm || !client->ops->ca_system_id)
		return CE_ARG;
	flush_all(s); /* packets so far belong to the old client's CWs */
	cas_client_set_host(s->cfg.client, NULL);
	s->cfg.client = client;
	cas_client_set_host(client, &s->host);
	s->ca_system_id = client->ops->ca_system_id(client->self);
	s->no_ecm = s->ca_system_id == STB_CA_SYSTEM_NONE;
	s->cat_version = -1; /* EMM PIDs of the new CA_system_id */
	for (size_t i = 0; i < s->nsvc; i++) {
		struct stb_svc *sv = &s->svc[i];

		sv->keys_requested = false;
		if (!sv->in_pat || !sv->pmt_sec)
			continue;
		sv->rep.have_pmt = false;
		on_pmt(s, sv->rep.pmt_pid, sv->pmt_sec, sv->pmt_len);
	}
	if ((r = rebuild(s)) != 0)
		return r;
	if (s->no_ecm) {
		request_fixed_keys(s);
		return 0;
	}
	/* the last ECM of each new ECM PID, if the box kept one */
	for (size_t i = 0; i < s->nsec; i++) {
		uint8_t *ecm = s->sec[i].last_ecm;

		if (!(s->sec[i].roles & ROLE_ECM) || !ecm)
			continue;
		s->sec[i].last_ecm = NULL; /* on_ecm must not see it change */
		on_ecm(s, s->sec[i].pid, ecm, s->sec[i].last_ecm_len);
		free(s->sec[i].last_ecm);
		s->sec[i].last_ecm = ecm;
	}
	return 0;
}

/* ---- the packet loop ---- */

/* A service's clock: a PCR discontinuity (flagged, backwards, or a jump
 * of more than 10 s: a looped file, a splice) after the first ECM makes the
 * zapping time in ms unknown (the packet count still holds). */
static void pcr_update(struct stb_svc *sv, const struct ts_hdr *h)
{
	if (sv->have_pcr && sv->rep.first_ecm_pkt >= 0 &&
	    (h->discontinuity || h->pcr < sv->last_pcr || h->pcr - sv->last_pcr > 10u * 27000000u))
		sv->pcr_break = true;
	sv->have_pcr = true;
	sv->last_pcr = h->pcr;
}

int stb_feed(struct stb *s, const uint8_t *in, size_t npkts, uint8_t *out)
{
	int r = 0;

	if (!s || (npkts && (!in || !out)))
		return CE_ARG;
	if (npkts > SIZE_MAX / TS_PACKET_BYTES)
		return CE_ARG;
	if (in != out && npkts)
		memmove(out, in, npkts * TS_PACKET_BYTES);
	if (s->dirty && (r = rebuild(s)) != 0)
		return r;
	for (size_t i = 0; i < npkts; i++, s->pkt_index++) {
		uint8_t *p = out + i * TS_PACKET_BYTES;
		struct ts_hdr h;
		int16_t k, b;

		if (ts_parse(p, &h) != 0) {
			s->bad_packets++;
			continue;
		}
		if (h.tei)
			s->tei_packets++;
		k = s->svc_of_pid[h.pid];
		if (h.has_pcr) {
			stream_clock(s, &h);
			if (k >= 0 && s->svc[k].pcr_pid == h.pid) {
				pcr_update(&s->svc[k], &h);
			} else {
				for (size_t j = 0; j < s->nsvc; j++)
					if (s->svc[j].pcr_pid == h.pid && s->svc[j].rep.have_pmt)
						pcr_update(&s->svc[j], &h);
			}
		}
		if (s->sec_of_pid[h.pid] >= 0) {
			struct psi_asm *a = s->sec[s->sec_of_pid[h.pid]].a;
			uint32_t before = a->errors;

			(void)psi_asm_push(a, p, &h, section_cb, s);
			s->section_errors += a->errors - before;
			if (s->dirty) {
				flush_all(s);
				if ((r = rebuild(s)) != 0)
					break;
				if (s->no_ecm)
					request_fixed_keys(s);
			}
			k = s->svc_of_pid[h.pid];
		}
		if (k < 0)
			continue;
		{
			struct stb_svc *sv = &s->svc[k];
			struct stb_batch *bt;
			size_t n;

			sv->rep.packets++;
			if (h.scrambling == TS_SC_CLEAR)
				continue;
			sv->rep.scrambled++;
			b = s->batch_of_pid[h.pid];
			if (b < 0) {
				sv->rep.left_scrambled++;
				continue;
			}
			bt = s->batch[b];
			if (!cp_allows(s, sv, bt->tag, h.scrambling == TS_SC_ODD ? 1 : 0)) {
				sv->rep.left_scrambled++; /* no key of this CP: left as it came */
				continue;
			}
			n = bt->n;
			bt->pkts[n] = p;
			bt->idx[n] = s->pkt_index;
			bt->pes_check[n] = s->es_of_pid[h.pid] >= 0 && sv->es[s->es_of_pid[h.pid]].pes;
			bt->have_pcr[n] = sv->have_pcr && !sv->pcr_break;
			bt->pcr[n] = sv->last_pcr;
			bt->n = n + 1;
			if (bt->n == STB_BATCH_PKTS)
				flush_batch(s, bt);
		}
	}
	flush_all(s); /* out must be complete when we return */
	return r;
}

/* ---- report ---- */

static enum stb_svc_state svc_state(const struct stb_svc *sv)
{
	if (sv->rep.scrambled == 0)
		return STB_SVC_CLEAR;
	if (sv->rep.descrambled == 0)
		return STB_SVC_NOT_DESCRAMBLED;
	if (sv->pes_starts > 0 && sv->pes_starts_bad == sv->pes_starts)
		return STB_SVC_WRONG_KEY;
	if (sv->rep.left_scrambled)
		return STB_SVC_PARTIAL;
	return STB_SVC_DESCRAMBLED;
}

int stb_report(const struct stb *s, struct stb_report *out)
{
	if (!out)
		return CE_ARG;
	memset(out, 0, sizeof(*out));
	if (!s)
		return CE_ARG;
	out->packets = s->pkt_index;
	out->bad_packets = s->bad_packets;
	out->tei_packets = s->tei_packets;
	out->section_errors = s->section_errors;
	out->emm_seen = s->emm_seen;
	out->emm_accepted = s->emm_accepted;
	out->emm_refused = s->emm_refused;
	out->emm_not_addressed = s->emm_not_addressed;
	out->emm_repeats = s->emm_repeats;
	out->ca_system_id = s->ca_system_id;
	out->no_ecm = s->no_ecm;
	out->nemm_pids = s->nemm;
	memcpy(out->emm_pids, s->emm_pids, sizeof(out->emm_pids));
	out->have_card_packages = s->cfg.have_card_packages;
	out->card_packages = s->cfg.card_packages;
	out->nservices = s->nsvc;
	for (size_t i = 0; i < s->nsvc; i++) {
		out->svc[i] = s->svc[i].rep;
		out->svc[i].pes_starts = s->svc[i].pes_starts;
		out->svc[i].pes_starts_bad = s->svc[i].pes_starts_bad;
		out->svc[i].state = svc_state(&s->svc[i]);
	}
	return 0;
}

/* The refused ECM's packages: "00000002", or "00000000 + 40,41" with
 * extended packages ("..." past the first 4). */
static const char *ecm_pkgs_text(const struct stb_service_report *v, char *t, size_t cap)
{
	size_t o = (size_t)snprintf(t, cap, "%08X", (unsigned)v->refusal_ecm_pkgs);

	for (unsigned i = 0; i < v->refusal_ecm_next && i < 4 && o < cap; i++)
		o += (size_t)snprintf(t + o, cap - o, "%s%u", i ? "," : " + ", (unsigned)v->refusal_ecm_ext[i]);
	if (v->refusal_ecm_next > 4 && o < cap)
		snprintf(t + o, cap - o, ",...");
	return t;
}

/* Why a service got no (or not every) key, in words. */
static void refusal_reason(const struct stb_report *r, const struct stb_service_report *v, char *buf,
	size_t cap)
{
	char pk[64];

	if (v->nokey_pkts > 0) {
		char why[128];

		if (v->nokey_reason == CE_TIMEOUT || v->nokey_reason == 0)
			snprintf(why, sizeof(why), "no ECM accepted after CP %u", (unsigned)v->last_ecm_cp);
		else if (v->refusal_has_pkgs && r->have_card_packages)
			snprintf(why, sizeof(why), "%s (ECM for packages %s, card has %08X)", err_str(v->nokey_reason),
				ecm_pkgs_text(v, pk, sizeof(pk)), (unsigned)r->card_packages);
		else
			snprintf(why, sizeof(why), "%s", err_str(v->nokey_reason));
		snprintf(buf, cap, "no key since CP %lld: %s", (long long)v->nokey_since_cp, why);
	} else if (v->last_refusal != 0) {
		if (v->refusal_has_pkgs && r->have_card_packages)
			snprintf(buf, cap, "%s (ECM for packages %s, card has %08X)", err_str(v->last_refusal),
				ecm_pkgs_text(v, pk, sizeof(pk)), (unsigned)r->card_packages);
		else if (v->refusal_has_pkgs)
			snprintf(buf, cap, "%s (ECM for packages %s)", err_str(v->last_refusal),
				ecm_pkgs_text(v, pk, sizeof(pk)));
		else
			snprintf(buf, cap, "%s", err_str(v->last_refusal));
	} else if (!v->have_pmt) {
		snprintf(buf, cap, "no PMT received");
	} else if (!r->no_ecm && v->necm_pids == 0) {
		snprintf(buf, cap, "no CA_descriptor for CA_system_id 0x%04X", r->ca_system_id);
	} else if (!r->no_ecm && v->ecm_seen == 0) {
		snprintf(buf, cap, "no ECM received");
	} else {
		snprintf(buf, cap, "no key for these packets");
	}
}

int stb_report_line(const struct stb_report *r, const struct stb_service_report *v, char *buf, size_t cap)
{
	char why[160], zap[64] = "";
	int n = 0;

	if (!buf || cap == 0)
		return CE_ARG;
	buf[0] = '\0';
	if (!r || !v)
		return CE_ARG;
	refusal_reason(r, v, why, sizeof(why));
	if (v->zapping_ms >= 0)
		snprintf(zap, sizeof(zap), " (zapping %lld ms)", (long long)v->zapping_ms);
	else if (v->zapping_pkts >= 0)
		snprintf(zap, sizeof(zap), " (zapping %lld packets)", (long long)v->zapping_pkts);
	switch (v->state) {
	case STB_SVC_CLEAR:
		n = snprintf(buf, cap, "service %u: clear (%llu packets, none scrambled)", v->service_id,
			(unsigned long long)v->packets);
		break;
	case STB_SVC_DESCRAMBLED:
		n = snprintf(buf, cap, "service %u: descrambled %llu/%llu scrambled packets, first at packet %lld%s",
			v->service_id, (unsigned long long)v->descrambled, (unsigned long long)v->scrambled,
			(long long)v->first_descrambled_pkt, zap);
		break;
	case STB_SVC_PARTIAL:
		n = snprintf(buf, cap, "service %u: descrambled %llu/%llu scrambled packets, first at packet %lld%s; "
			"%llu left scrambled: %s", v->service_id, (unsigned long long)v->descrambled,
			(unsigned long long)v->scrambled, (long long)v->first_descrambled_pkt, zap,
			(unsigned long long)v->left_scrambled, why);
		break;
	case STB_SVC_WRONG_KEY:
		n = snprintf(buf, cap, "service %u: NOT descrambled: wrong key (%llu packets processed, "
			"none of %llu PES starts valid)", v->service_id, (unsigned long long)v->descrambled,
			(unsigned long long)v->pes_starts);
		break;
	case STB_SVC_NOT_DESCRAMBLED:
	default:
		n = snprintf(buf, cap, "service %u: NOT descrambled: %s", v->service_id, why);
		break;
	}
	return n < 0 || (size_t)n >= cap ? CE_OVERFLOW : 0;
}

static const char *state_name(enum stb_svc_state st)
{
	switch (st) {
	case STB_SVC_CLEAR: return "clear";
	case STB_SVC_DESCRAMBLED: return "descrambled";
	case STB_SVC_PARTIAL: return "partial";
	case STB_SVC_WRONG_KEY: return "wrong_key";
	case STB_SVC_NOT_DESCRAMBLED: return "not_descrambled";
	}
	return "unknown";
}

static int report_json(const struct stb_report *r, const struct osd_log *osd, const struct ui_script *ui, char **json);

int stb_report_json(const struct stb_report *r, char **json)
{
	return report_json(r, NULL, NULL, json);
}

int stb_report_json_osd(const struct stb_report *r, const struct stb *s, char **json)
{
	if (!s) {
		if (json)
			*json = NULL;
		return CE_ARG;
	}
	return report_json(r, s->osd, s->cfg.ui, json);
}

/* The "osd" array (docs/stb.md): one object per showing. */
static json_t *osd_json(const struct osd_log *l, const struct ui_script *ui, const struct stb_report *r)
{
	json_t *arr = json_array();

	for (size_t i = 0; arr && i < osd_log_count(l); i++) {
		const struct osd_event *e = osd_log_get(l, i);
		json_t *o = json_object();
		char fg[8], bg[10];

		if (!o) {
			json_decref(arr);
			return NULL;
		}
		snprintf(fg, sizeof(fg), "#%02X%02X%02X", e->fg[0], e->fg[1], e->fg[2]);
		snprintf(bg, sizeof(bg), "#%02X%02X%02X%02X", e->bg[0], e->bg[1], e->bg[2], e->bg[3]);
		json_object_set_new(o, "kind", json_string(osd_kind_name(e->kind)));
		json_object_set_new(o, "overt", json_boolean(e->overt));
		json_object_set_new(o, "text", json_string(e->text));
		json_object_set_new(o, "service", json_integer(e->service));
		json_object_set_new(o, "x_pct", json_integer(e->x_pct));
		json_object_set_new(o, "y_pct", json_integer(e->y_pct));
		json_object_set_new(o, "fg", json_string(fg));
		json_object_set_new(o, "bg", json_string(bg));
		json_object_set_new(o, "font_px", json_integer(e->font_px));
		json_object_set_new(o, "start_ms", json_integer(e->start_ms));
		json_object_set_new(o, "duration_ms", json_integer(e->duration_ms));
		json_object_set_new(o, "style", json_string(osd_style_name(e->style)));
		json_object_set_new(o, "forced", json_boolean(e->forced));
		/* additions (docs/stb.md): the shape above is fixed */
		json_object_set_new(o, "wall_ms", json_integer((json_int_t)e->wall_ms));
		json_object_set_new(o, "id", json_integer(e->id));
		json_object_set_new(o, "showing", json_integer(e->showing));
		json_object_set_new(o, "ui_state", json_string(ui_state_name(ui_showing_state(ui, r, e->service,
			e->start_ms))));
		if (e->kind == OSD_KIND_FINGERPRINT) {
			json_object_set_new(o, "covert_encoded", json_boolean(e->covert_encoded));
		} else {
			json_object_set_new(o, "scope", json_string(e->scope == OSD_SCOPE_GLOBAL ? "global" :
				e->scope == OSD_SCOPE_GROUP ? "group" : "individual"));
			json_object_set_new(o, "expiry_s", json_integer((json_int_t)e->expiry_s));
		}
		json_array_append_new(arr, o);
	}
	return arr;
}

static int report_json(const struct stb_report *r, const struct osd_log *osd, const struct ui_script *ui, char **json)
{
	json_t *root = NULL, *svcs, *emm_pids;
	int rc = CE_NOMEM;

	if (!json)
		return CE_ARG;
	*json = NULL;
	if (!r)
		return CE_ARG;
	root = json_object();
	svcs = json_array();
	emm_pids = json_array();
	if (!root || !svcs || !emm_pids) {
		json_decref(svcs);
		json_decref(emm_pids);
		goto out;
	}
	json_object_set_new(root, "services", svcs);
	json_object_set_new(root, "emm_pids", emm_pids);
	json_object_set_new(root, "packets", json_integer((json_int_t)r->packets));
	json_object_set_new(root, "bad_packets", json_integer((json_int_t)r->bad_packets));
	json_object_set_new(root, "tei_packets", json_integer((json_int_t)r->tei_packets));
	json_object_set_new(root, "section_errors", json_integer((json_int_t)r->section_errors));
	json_object_set_new(root, "ca_system_id", json_integer(r->ca_system_id));
	json_object_set_new(root, "emm_seen", json_integer((json_int_t)r->emm_seen));
	json_object_set_new(root, "emm_accepted", json_integer((json_int_t)r->emm_accepted));
	json_object_set_new(root, "emm_refused", json_integer((json_int_t)r->emm_refused));
	json_object_set_new(root, "emm_not_addressed", json_integer((json_int_t)r->emm_not_addressed));
	json_object_set_new(root, "emm_repeats", json_integer((json_int_t)r->emm_repeats));
	for (size_t i = 0; i < r->nemm_pids && i < STB_MAX_EMM_PIDS; i++)
		json_array_append_new(emm_pids, json_integer(r->emm_pids[i]));
	for (size_t i = 0; i < r->nservices && i < STB_MAX_SERVICES; i++) {
		const struct stb_service_report *v = &r->svc[i];
		json_t *o = json_object(), *ecms = json_array();
		char line[512], why[160];

		if (!o || !ecms) {
			json_decref(o);
			json_decref(ecms);
			goto out;
		}
		for (size_t k = 0; k < v->necm_pids && k < STB_MAX_ECM_PIDS_PER_SERVICE; k++)
			json_array_append_new(ecms, json_integer(v->ecm_pids[k]));
		json_object_set_new(o, "service_id", json_integer(v->service_id));
		json_object_set_new(o, "pmt_pid", v->pmt_pid == STB_NO_PID ? json_null() : json_integer(v->pmt_pid));
		json_object_set_new(o, "ecm_pids", ecms);
		json_object_set_new(o, "state", json_string(state_name(v->state)));
		json_object_set_new(o, "packets", json_integer((json_int_t)v->packets));
		json_object_set_new(o, "scrambled", json_integer((json_int_t)v->scrambled));
		json_object_set_new(o, "descrambled", json_integer((json_int_t)v->descrambled));
		json_object_set_new(o, "left_scrambled", json_integer((json_int_t)v->left_scrambled));
		json_object_set_new(o, "no_key_packets", json_integer((json_int_t)v->nokey_pkts));
		json_object_set_new(o, "no_key_since_cp", json_integer(v->nokey_since_cp));
		json_object_set_new(o, "first_descrambled_packet", json_integer(v->first_descrambled_pkt));
		json_object_set_new(o, "ecm_seen", json_integer((json_int_t)v->ecm_seen));
		json_object_set_new(o, "ecm_accepted", json_integer((json_int_t)v->ecm_accepted));
		json_object_set_new(o, "ecm_refused", json_integer((json_int_t)v->ecm_refused));
		json_object_set_new(o, "first_ecm_packet", json_integer(v->first_ecm_pkt));
		json_object_set_new(o, "zapping_packets", json_integer(v->zapping_pkts));
		json_object_set_new(o, "zapping_ms", json_integer(v->zapping_ms));
		json_object_set_new(o, "first_ecm_to_cw_us", json_integer((json_int_t)v->first_cw_us));
		json_object_set_new(o, "pes_starts", json_integer((json_int_t)v->pes_starts));
		json_object_set_new(o, "pes_starts_bad", json_integer((json_int_t)v->pes_starts_bad));
		if (v->last_refusal) {
			refusal_reason(r, v, why, sizeof(why));
			json_object_set_new(o, "last_refusal", json_string(err_str(v->last_refusal)));
			json_object_set_new(o, "last_refusal_detail", json_string(why));
		} else {
			json_object_set_new(o, "last_refusal", json_null());
		}
		if (stb_report_line(r, v, line, sizeof(line)) == 0)
		/* C.6: the usage rules the ECMs carried, and what the recorder did */
		json_object_set_new(o, "copy_control", v->have_usage ? json_string(cas_copy_name(v->usage.copy_control))
			: json_null());
		json_object_set_new(o, "retention_s", json_integer(v->usage.retention_s));
		json_object_set_new(o, "recorded_packets", json_integer((json_int_t)v->rec_pkts));
		json_object_set_new(o, "record_refused_packets", json_integer((json_int_t)v->rec_refused_pkts));
			json_object_set_new(o, "summary", json_string(line));
		json_array_append_new(svcs, o);
	}
	if (osd) {
		json_t *arr = osd_json(osd, ui, r), *states;

		if (!arr)
			goto out;
		json_object_set_new(root, "osd", arr);
		if (!(states = ui_states_json(ui, osd, r)))
			goto out;
		json_object_set_new(root, "ui_states", states); /* B.6: the box's screen states (stb/ui.h) */
		json_object_set_new(root, "osd_dropped", json_integer((json_int_t)osd_log_dropped(osd)));
	}
	*json = json_dumps(root, JSON_INDENT(2) | JSON_SORT_KEYS);
	rc = *json ? 0 : CE_NOMEM;
out:
	json_decref(root);
	return rc;
}
