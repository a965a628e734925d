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
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include "lib/log.h"
#include "lib/metrics.h"
#include "lib/util.h"
#include "scrambler/mux.h"
#include "scrambler/scrambler.h"
#include "scrambler/scs.h"
#include "ts/psi.h"
#include "ts/ts.h"
#include "ts/tsio.h"

#define MOD "scrambler"
#define TICKS_PER_MS 27000ull
#define PCR_WRAP (((uint64_t)1 << 33) * 300u)
#define ECM_MAX_PKTS 24          /* a 4096-byte section needs 23 packets */
#define PMT_MAX_PKTS 8
#define CAT_MAX_PKTS 8
#define CW_RING 8
#define QUEUE_PKTS 2048
#define TOKEN_BURST 64.0
#define NO_CP INT64_MIN
#define MAX_CW_PER_MSG 4
#define DEFAULT_EMM_PID 0x1FF0
#define SCR_NULL_WAIT_MS 10            /* queued packets wait this for a null */
#define EMM_TAKE_MAX 32                /* EMM packets taken from the MUX at once */
#define EMM_BURST_PKTS 32.0            /* EMM budget a quiet MUX may save up */
#define EMM_POLL_EVERY_PKTS 128        /* serve the MUX sockets this often */
#define RETRY_CHECK_EVERY_PKTS 256     /* look for failed ECM streams to re-open */
#define CSA2_WINDOW_PER_SVC 1024u      /* output window per service with CSA2 */
#define CSA2_WINDOW_MAX 16384u         /* at most 3 MB of packets held */

enum pid_kind { PK_NONE = 0, PK_PAT, PK_PMT, PK_ES, PK_ECM, PK_EMM, PK_CAT };

struct cw_slot {
	int64_t k;
	bool set;
	uint8_t cw[CW_MAX_BYTES];
};

/* One ECM stream: one service x one CAS. */
struct ecm_stream {
	size_t cas;
	size_t svc;
	void *h;
	bool opened;
	uint64_t retry_at_us;      /* not opened: next attempt (wall clock) */
	uint32_t retry_ms;         /* current back-off */
	struct scr_ecmg_info info;
	struct scr_stream_stats st;
	uint32_t rep_ticks;
	/* ECM on air (packets with PID/CC to be set at emission) */
	bool on_air;
	int64_t on_air_k;
	size_t npkts;
	uint8_t pkts[ECM_MAX_PKTS * TS_PACKET_BYTES];
	uint64_t next_due;
	size_t queued;             /* its packets still in the insertion queue */
	/* ECM received for the service's target CP */
	bool got;
	bool failed;
	int64_t got_k;
	size_t got_npkts;
	uint8_t got_pkts[ECM_MAX_PKTS * TS_PACKET_BYTES];
	/* delay_start: a received ECM waiting for its air time */
	bool staged;
	uint64_t staged_at;
};

struct svc {
	struct scr_service_cfg cfg;
	bool in_pat;
	uint16_t pmt_pid;
	struct psi_asm *pmt_asm;
	struct pmt *pmt;               /* scratch for parse/build */
	bool pmt_emit;                 /* a section completed on this packet */
	bool ecm_after_pmt;            /* ECM PIDs just allocated: send after the PMT */
	bool pmt_ok;
	size_t last_pmt_len;           /* input section behind pmt_pkts; 0 = none */
	uint16_t last_pmt_pid;
	uint8_t last_pmt[PSI_MAX_PSI_SECTION];
	size_t pmt_npkts;
	uint8_t pmt_pkts[PMT_MAX_PKTS * TS_PACKET_BYTES];
	bool pids_allocated;
	uint16_t ecm_pid[SCR_MAX_CAS];
	size_t estream[SCR_MAX_CAS];
	struct ts_cipher *ciph;
	int64_t cur_k;                 /* CP whose key is in force; NO_CP = none */
	bool scrambling;
	bool gate_open;                /* ECM of a jump written out */
	int64_t target_k;
	bool target_pending;
	uint64_t deadline_us;
	struct cw_slot cws[CW_RING];
};

#define QOWNER_EMM (-1)
#define QOWNER_CAT (-2)
#define QOWNER_DEAD (-3)               /* a replaced ECM copy: skipped */

struct qent {
	int16_t owner;                 /* stream index, or QOWNER_* */
	uint64_t at;                   /* stream time it was queued */
	uint8_t pkt[TS_PACKET_BYTES];
};

struct scrambler {
	struct scrambler_config cfg;
	const struct scr_ecm_ops *ops;
	void *ops_ctx;
	bool started;
	bool sync;
	uint32_t cp_ms;
	uint64_t cp_ticks;
	size_t cw_len;
	struct svc svc[SCR_MAX_SERVICES];
	size_t nstreams;
	struct ecm_stream es[SCR_MAX_STREAMS];
	/* PIDs */
	uint8_t pid_kind[TS_PID_MAX + 1];
	uint8_t pid_svc[TS_PID_MAX + 1];
	uint8_t pid_used[TS_PID_MAX + 1];
	uint8_t out_cc[TS_PID_MAX + 1];
	struct psi_asm *pat_asm;
	struct pat *pat;
	bool pat_seen;
	bool psi_ready;                /* PAT and every listed service's PMT seen:
	                                * until then unknown PIDs are withheld */
	/* CAT */
	bool cat_on;
	struct psi_asm *cat_asm;
	struct cat *cat_in;            /* the input's CAT, if any */
	bool cat_in_seen;
	size_t cat_npkts;
	uint8_t cat_pkts[CAT_MAX_PKTS * TS_PACKET_BYTES];
	uint64_t cat_due;
	size_t ncat_ca;
	struct ca_desc cat_ca[SCR_MAX_CAS];
	/* time */
	uint64_t st;                   /* stream time, ticks */
	double tpp;                    /* ticks per packet */
	int clock_pid;
	bool have_pcr;
	uint64_t last_pcr;
	uint64_t last_pcr_i;
	uint64_t last_pcr_st;
	int64_t global_k;              /* -1 during the clear start */
	uint64_t next_boundary;
	/* insertion */
	double tokens;
	double tokens_per_tick;
	uint64_t null_wait_ticks;      /* wait for a null this long, then add */
	size_t qhead, qlen;
	struct qent *queue;
	/* output batch */
	size_t ocap, on;
	size_t batch;                  /* cipher batch: packets scrambled at once */
	uint8_t *ob;
	int16_t *otag;                 /* -1 clear, else svc * 2 + parity */
	uint8_t **ptrs;
	uint64_t *oat;                 /* stream time each window packet came */
	uint64_t max_delay_ticks;      /* a packet waits at most this in the window */
	scr_write_fn wfn;
	void *wctx;
	int werr;
	struct scrambler_stats stats;
	/* MUX (EMMG<=>MUX server, mux.h): EMMs within emm_max_kbps */
	struct mux *mux;
	uint64_t mux_gen;              /* client set the CAT was built for */
	double emm_tokens;             /* EMM packets we may still insert */
	double emm_tokens_per_tick;
	uint64_t emm_last_st;
};

/* ------------------------------------------------------------------ */
/* config parsing                                                       */

void scrambler_config_init(struct scrambler_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->alg = CW_ALG_CSA2;
	cfg->cp_duration_ms = SCR_DEFAULT_CP_MS;
	cfg->policy = SCR_POLICY_ANY;
	cfg->on_failure = SCR_FAIL_KEEP;
	cfg->version = 2;
}

static int parse_pid_list(const char *s, struct scr_service_cfg *out)
{
	char buf[512];
	char *save = NULL, *tok;
	size_t l = strlen(s);

	if (l == 0 || l >= sizeof(buf))
		return CE_ARG;
	memcpy(buf, s, l + 1);
	if (buf[0] == ',' || buf[l - 1] == ',' || strstr(buf, ",,"))
		return CE_ARG;
	for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		uint64_t v;

		if (parse_u64(tok, TS_PID_MAX, &v) != 0)
			return CE_RANGE;
		if (v < 0x10 || v == TS_PID_NULL)
			return CE_RANGE;
		for (size_t i = 0; i < out->npids; i++)
			if (out->pids[i] == v)
				return CE_ARG;
		if (out->npids == SCR_MAX_COMPONENTS)
			return CE_LIMIT;
		out->pids[out->npids++] = (uint16_t)v;
	}
	return out->npids ? 0 : CE_ARG;
}

int scr_service_parse(const char *spec, struct scr_service_cfg *out)
{
	char buf[1024];
	char *p, *next;
	uint64_t v;
	bool seen_ac = false, seen_pids = false;
	size_t l;
	int r;

	memset(out, 0, sizeof(*out));
	if (!spec)
		return CE_ARG;
	l = strlen(spec);
	if (l == 0 || l >= sizeof(buf))
		return CE_ARG;
	memcpy(buf, spec, l + 1);
	next = strchr(buf, ':');
	if (next)
		*next++ = '\0';
	if (parse_u64(buf, 0xFFFF, &v) != 0 || v == 0) {
		r = CE_RANGE;
		goto fail;
	}
	out->service_id = (uint16_t)v;
	while (next) {
		p = next;
		next = strchr(p, ':');
		if (next)
			*next++ = '\0';
		if (strncmp(p, "ac=", 3) == 0 && !seen_ac) {
			if (strlen(p + 3) != 8 || hex_decode(p + 3, out->ac, SCR_AC_BYTES) != 0) {
				r = CE_ARG;
				goto fail;
			}
			out->has_ac = true;
			seen_ac = true;
		} else if (strncmp(p, "pids=", 5) == 0 && !seen_pids) {
			if ((r = parse_pid_list(p + 5, out)) != 0)
				goto fail;
			seen_pids = true;
		} else {
			r = CE_ARG;
			goto fail;
		}
	}
	return 0;
fail:
	memset(out, 0, sizeof(*out));
	return r;
}

static int check_addr(const char *s)
{
	char host[SCR_ADDR_BYTES];
	uint16_t port;

	if (addr_split(s, host, sizeof(host), &port) != 0 || host[0] == '\0' || port == 0)
		return CE_ARG;
	return 0;
}

int scr_ecmg_parse(const char *spec, struct scr_cas_cfg *out)
{
	const char *comma;
	size_t l;

	memset(out->main_addr, 0, sizeof(out->main_addr));
	memset(out->backup_addr, 0, sizeof(out->backup_addr));
	if (!spec)
		return CE_ARG;
	comma = strchr(spec, ',');
	l = comma ? (size_t)(comma - spec) : strlen(spec);
	if (l == 0 || l >= SCR_ADDR_BYTES)
		return CE_ARG;
	memcpy(out->main_addr, spec, l);
	if (check_addr(out->main_addr) != 0)
		goto fail;
	if (comma) {
		l = strlen(comma + 1);
		if (l == 0 || l >= SCR_ADDR_BYTES || strchr(comma + 1, ','))
			goto fail;
		memcpy(out->backup_addr, comma + 1, l);
		if (check_addr(out->backup_addr) != 0)
			goto fail;
	}
	return 0;
fail:
	memset(out->main_addr, 0, sizeof(out->main_addr));
	memset(out->backup_addr, 0, sizeof(out->backup_addr));
	return CE_ARG;
}

/* ------------------------------------------------------------------ */
/* output batch and insertion                                           */

static uint64_t ms_to_ticks(uint64_t ms)
{
	return ms * TICKS_PER_MS;
}

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
static int flush_out(struct scrambler *s)
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

enum ecm_mode {
	ECM_REP,    /* a repetition: skipped while the previous copy is queued */
	ECM_NEW,    /* new content: replaces queued copies, waits for room */
	ECM_URGENT, /* new content needed before the next packet: now, beyond
	             * the budget (queued like ECM_NEW with --nulls-only) */
};

/* Put the on-air ECM of stream ei out. */
static int ecm_send(struct scrambler *s, size_t ei, enum ecm_mode mode)
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
static void provision(struct scrambler *s, struct svc *v, int64_t k)
{
	for (size_t c = 0; c < s->cfg.ncas; c++)
		provision_one(s, v, c, k);
}

/* Open ECM stream ei (through the ECM source). A failure schedules the
 * next attempt with a doubling back-off (retry_ms .. SCR_MAX_RETRY_MS);
 * meanwhile the stream counts as failed at every CP and the policy
 * decides (docs/scrambler.md "ECMG down at start"). 0 or the open error. */
static int stream_open(struct scrambler *s, size_t ei)
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
static void retry_streams(struct scrambler *s)
{
	for (size_t ei = 0; ei < s->nstreams; ei++) {
		struct ecm_stream *e = &s->es[ei];

		if (retry_due(s, e) && stream_open(s, ei) == 0)
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

	if ((r = flush_out(s)) != 0)
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
		if ((r = ecm_send(s, v->estream[c], j ? ECM_URGENT : ECM_NEW)) != 0)
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
		int r = flush_out(s);

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
static int boundary(struct scrambler *s, int64_t k)
{
	int r;

	for (size_t vi = 0; vi < s->cfg.nservices; vi++) {
		struct svc *v = &s->svc[vi];
		uint32_t tmo = 0;

		if (s->cfg.has_fixed_cw) {
			if (!v->scrambling) {
				if ((r = flush_out(s)) != 0)
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
			if (retry_due(s, e) && stream_open(s, v->estream[c]) == 0)
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
		provision(s, v, k + 1);
	}
	return 0;
}

/* Live mode: poll the services still waiting for their ECMs. */
static int poll_pending(struct scrambler *s)
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
static int ecm_after_pmt(struct scrambler *s, struct svc *v)
{
	bool all_out = true;
	int r;

	v->ecm_after_pmt = false;
	for (size_t c = 0; c < s->cfg.ncas; c++) {
		struct ecm_stream *e = &s->es[v->estream[c]];

		if (e->on_air) {
			e->next_due = s->st + e->rep_ticks;
			if ((r = ecm_send(s, v->estream[c], ECM_URGENT)) != 0)
				return r;
		}
		if (e->queued > 0)
			all_out = false;
	}
	if (v->scrambling && !v->gate_open)
		v->gate_open = all_out;
	return 0;
}

static int on_pmt(void *ctx, uint16_t pid, const uint8_t *sec, size_t len)
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

static int on_pat(void *ctx, uint16_t pid, const uint8_t *sec, size_t len)
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

static int cat_build_pkts(struct scrambler *s)
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

static int on_cat(void *ctx, uint16_t pid, const uint8_t *sec, size_t len)
{
	struct scrambler *s = ctx;

	(void)pid;
	if (cat_parse(sec, len, s->cat_in) != 0) {
		s->stats.psi_errors++;
		return 0;
	}
	s->cat_in_seen = true;
	if (cat_build_pkts(s) != 0)
		s->stats.psi_errors++;
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
		if ((r = boundary(s, s->global_k)) != 0)
			return r;
	}
	for (size_t ei = 0; ei < s->nstreams; ei++) {
		struct ecm_stream *e = &s->es[ei];

		if (e->staged && s->st >= e->staged_at) {
			e->staged = false;
			e->on_air = true;
			e->next_due = s->st + e->rep_ticks;
			if ((r = ecm_send(s, ei, ECM_NEW)) != 0)
				return r;
		}
		if (e->on_air && s->st >= e->next_due) {
			e->next_due += e->rep_ticks;
			if (e->next_due <= s->st)
				e->next_due = s->st + e->rep_ticks;
			if ((r = ecm_send(s, ei, ECM_REP)) != 0)
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
		r = psi_asm_push(s->pat_asm, pkt, &h, on_pat, s);
		if (r == 0)
			r = emit(s, pkt, -1);
		break;
	case PK_PMT: {
		struct svc *v = &s->svc[s->pid_svc[h.pid]];

		v->pmt_emit = false;
		r = psi_asm_push(v->pmt_asm, pkt, &h, on_pmt, s);
		if (r == 0 && v->pmt_emit && v->pmt_ok) {
			for (size_t i = 0; i < v->pmt_npkts && r == 0; i++) {
				uint8_t out[TS_PACKET_BYTES];

				memcpy(out, v->pmt_pkts + i * TS_PACKET_BYTES, TS_PACKET_BYTES);
				s->out_cc[h.pid] = (uint8_t)((s->out_cc[h.pid] + 1) & 15);
				ts_set_cc(out, s->out_cc[h.pid]);
				r = emit(s, out, -1);
			}
			if (r == 0 && v->ecm_after_pmt)
				r = ecm_after_pmt(s, v);
		}
		/* other packets of the PMT PID are dropped: ours goes out whole */
		break;
	}
	case PK_CAT:
		r = psi_asm_push(s->cat_asm, pkt, &h, on_cat, s);
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

/* ------------------------------------------------------------------ */
/* lifecycle                                                            */

static int validate(const struct scrambler_config *c)
{
	if (c->nservices == 0 || c->nservices > SCR_MAX_SERVICES)
		return CE_ARG;
	if (c->ncas > SCR_MAX_CAS)
		return CE_ARG;
	if (cw_alg_key_bytes(c->alg) == 0)
		return CE_ARG;
	if (c->has_fixed_cw) {
		if (c->fixed_cw_len != cw_alg_key_bytes(c->alg) || c->ncas != 0)
			return CE_ARG;
	} else if (c->ncas == 0) {
		return CE_ARG;
	}
	if (c->cp_duration_ms != 0 && (c->cp_duration_ms < SCR_MIN_CP_MS || c->cp_duration_ms > SCR_MAX_CP_MS))
		return CE_RANGE;
	if (c->version != 0 && c->version != 2 && c->version != 3)
		return CE_ARG;
	if (c->nulls_only && c->max_extra_kbps)
		return CE_ARG;
	for (size_t i = 0; i < c->nservices; i++) {
		if (c->services[i].service_id == 0 || c->services[i].npids > SCR_MAX_COMPONENTS)
			return CE_ARG;
		for (size_t j = 0; j < i; j++) {
			uint16_t a = c->services[i].ecm_id ? c->services[i].ecm_id : (uint16_t)(i + 1);
			uint16_t b = c->services[j].ecm_id ? c->services[j].ecm_id : (uint16_t)(j + 1);

			if (c->services[j].service_id == c->services[i].service_id || a == b)
				return CE_ARG; /* a service twice, or an ECM_id twice */
		}
	}
	for (size_t i = 0; i < c->ncas; i++) {
		if (c->cas[i].ecm_pid && (c->cas[i].ecm_pid < 0x20 || c->cas[i].ecm_pid >= TS_PID_NULL))
			return CE_RANGE;
		for (size_t j = 0; j < i; j++)
			if (c->cas[j].super_cas_id >> 16 == c->cas[i].super_cas_id >> 16)
				return CE_ARG; /* one CA_descriptor per CA_system_id */
	}
	if (c->emm_pid && (c->emm_pid < 0x20 || c->emm_pid >= TS_PID_NULL))
		return CE_RANGE;
	return 0;
}

extern const struct scr_ecm_ops scr_scs_ecm_ops;

int scrambler_new(const struct scrambler_config *cfg, struct scrambler **out)
{
	struct scrambler *s = NULL;
	int r;

	*out = NULL;
	if (!cfg)
		return CE_ARG;
	if ((r = validate(cfg)) != 0)
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
	/* a stream that cannot be opened now is retried (stream_open) */
	for (size_t ei = 0; ei < s->nstreams; ei++)
		(void)stream_open(s, ei);
	for (size_t vi = 0; vi < s->cfg.nservices && !s->cfg.has_fixed_cw; vi++)
		provision(s, &s->svc[vi], 0);
	if (s->cfg.mux_listen) {
		struct mux_config mc = { .listen = s->cfg.mux_listen, .emm_pid = s->cfg.emm_pid,
			.max_kbps = s->cfg.emm_max_kbps };
		int r = mux_new(&mc, &s->mux);

		if (r != 0) {
			LOG_ERR(MOD, "MUX on %s: %s", s->cfg.mux_listen, err_str(r));
			return r;
		}
	}
	return 0;
}

/* The MUX, without blocking: serve the EMMG sockets, rebuild the CAT when
 * the connected client_ids change (one CA_descriptor per CA_system_id, on
 * the EMM PID), and queue EMM packets within emm_max_kbps (stream time)
 * and half the insertion queue, so ECMs and the CAT keep room. */
static void emm_service(struct scrambler *s)
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
		if (cat_build_pkts(s) != 0)
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
	emm_service(s);
	for (size_t i = 0; i < n; i++) {
		if ((r = one_packet(s, pkts + i * TS_PACKET_BYTES)) != 0)
			return r;
		if (s->mux && (s->stats.pkts_in % EMM_POLL_EVERY_PKTS) == 0)
			emm_service(s);
		if ((s->stats.pkts_in % RETRY_CHECK_EVERY_PKTS) == 0)
			retry_streams(s);
		if (!s->sync && (s->stats.pkts_in & 63) == 0 && (r = poll_pending(s)) != 0)
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
	return flush_out(s);
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
			retry_streams(s);
			emm_service(s);
			if (!s->sync && (r = poll_pending(s)) != 0)
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

void scrambler_stats(const struct scrambler *s, struct scrambler_stats *out)
{
	memset(out, 0, sizeof(*out));
	if (!s)
		return;
	*out = s->stats;
	out->stream_time_ms = s->st / TICKS_PER_MS;
	out->nstreams = s->nstreams;
	for (size_t i = 0; i < s->nstreams; i++)
		out->streams[i] = s->es[i].st;
	out->ncas = s->cfg.ncas;
	for (size_t c = 0; c < s->cfg.ncas; c++) {
		out->cas[c].super_cas_id = s->cfg.cas[c].super_cas_id;
		if (!s->cfg.ecm_ops)
			scr_scs_cas_stats(s->ops_ctx, c, &out->cas[c]);
		out->cas[c].super_cas_id = s->cfg.cas[c].super_cas_id;
	}
	if (s->mux) {
		out->has_mux = true;
		mux_stats(s->mux, &out->mux);
	}
}

uint16_t scrambler_mux_port(const struct scrambler *s)
{
	return s && s->mux ? mux_port(s->mux) : 0;
}

void scrambler_stats_print(const struct scrambler *s, FILE *f)
{
	struct scrambler_stats *st = malloc(sizeof(*st));

	if (!st)
		return;
	scrambler_stats(s, st);
	fprintf(f, "scrambler: %llu packets in, %llu out, %llu scrambled, stream time %llu ms\n",
		(unsigned long long)st->pkts_in, (unsigned long long)st->pkts_out,
		(unsigned long long)st->pkts_scrambled, (unsigned long long)st->stream_time_ms);
	fprintf(f, "  inserted: %llu ECM, %llu EMM, %llu CAT packets; %llu nulls replaced of %llu, "
		"%llu extra packets, %llu dropped\n",
		(unsigned long long)st->ecm_pkts, (unsigned long long)st->emm_pkts,
		(unsigned long long)st->cat_pkts, (unsigned long long)st->nulls_replaced,
		(unsigned long long)st->nulls_in, (unsigned long long)st->extra_pkts,
		(unsigned long long)st->insert_dropped);
	fprintf(f, "  CP changes %llu, CP failures %llu; for want of a key: %llu packets withheld, "
		"%llu left clear; %llu clear by --clear-start\n",
		(unsigned long long)st->cp_changes, (unsigned long long)st->cp_failures,
		(unsigned long long)st->pkts_withheld, (unsigned long long)st->clear_pkts_failure,
		(unsigned long long)st->clear_pkts_start);
	fprintf(f, "  input errors %llu, resyncs %llu, dropped bytes %llu, already scrambled %llu, "
		"PSI errors %llu, PID conflicts %llu\n",
		(unsigned long long)st->input_errors, (unsigned long long)st->input_resyncs,
		(unsigned long long)st->input_dropped_bytes, (unsigned long long)st->already_scrambled,
		(unsigned long long)st->psi_errors, (unsigned long long)st->pid_conflicts);
	for (size_t i = 0; i < st->nstreams; i++) {
		const struct scr_stream_stats *e = &st->streams[i];

		fprintf(f, "  service %u CAS %08x ECM PID 0x%04x stream %u: CW_provision %llu, "
			"ECM_response %llu, timeouts %llu, errors %llu, ECM packets %llu\n",
			e->service_id, e->super_cas_id, e->ecm_pid, e->stream_id,
			(unsigned long long)e->cw_provision_sent, (unsigned long long)e->ecm_response_received,
			(unsigned long long)e->timeouts, (unsigned long long)e->errors,
			(unsigned long long)e->ecm_pkts_out);
		if (!e->open || e->open_failures)
			fprintf(f, "    stream %s, %llu failed open attempts\n", e->open ? "open" : "NOT OPEN",
				(unsigned long long)e->open_failures);
	}
	for (size_t c = 0; c < st->ncas; c++) {
		const struct scr_cas_stats *k = &st->cas[c];

		fprintf(f, "  CAS %08x ECMG: %s%s, %llu setups (%llu reconnects, %llu on backup), "
			"%llu connect failures, %llu disconnects, %llu channel_error, %llu stream_error, "
			"%llu invalid\n", k->super_cas_id, k->connected ? "connected" : "not connected",
			k->connected && k->on_backup ? " (backup)" : "", (unsigned long long)k->connects,
			(unsigned long long)k->reconnects, (unsigned long long)k->failovers,
			(unsigned long long)k->connect_failures, (unsigned long long)k->disconnects,
			(unsigned long long)k->channel_errors, (unsigned long long)k->stream_errors,
			(unsigned long long)k->bad_msgs);
		for (size_t i = 0; i < k->nstatus; i++)
			fprintf(f, "    error_status 0x%04x: %llu\n", k->err_status[i],
				(unsigned long long)k->err_count[i]);
		if (k->err_other)
			fprintf(f, "    other error_status: %llu\n", (unsigned long long)k->err_other);
	}
	if (st->has_mux)
		fprintf(f, "  MUX: %zu channels, %zu streams, %u kb/s granted; %llu connections "
			"(%llu refused), %llu data_provision (%llu over UDP, %llu refused), %llu invalid "
			"messages, %llu errors sent, %llu received, %llu EMM packets in, %llu dropped, "
			"%llu over the grant\n", st->mux.channels, st->mux.streams, st->mux.allocated_kbps,
			(unsigned long long)st->mux.conns_accepted, (unsigned long long)st->mux.conns_refused,
			(unsigned long long)st->mux.data_provisions, (unsigned long long)st->mux.udp_datagrams,
			(unsigned long long)st->mux.udp_rejected, (unsigned long long)st->mux.msgs_bad,
			(unsigned long long)st->mux.errors_sent, (unsigned long long)st->mux.errors_received,
			(unsigned long long)st->mux.pkts_in, (unsigned long long)st->mux.pkts_dropped,
			(unsigned long long)st->mux.bw_exceeded);
	fprintf(f, "  output windows written early (max delay %u ms): %llu\n", s ? s->cfg.max_delay_ms : 0,
		(unsigned long long)st->window_timeouts);
	free(st);
}

#define JSET(obj, name, val) json_object_set_new(obj, name, json_integer((json_int_t)(val)))

/* "cas": [ per-CAS SCS counters ], "mux": { MUX counters } (if a MUX). */
static int stats_json_cas_mux(json_t *root, const struct scrambler_stats *st)
{
	json_t *arr = json_array(), *m;

	if (!arr)
		return CE_NOMEM;
	json_object_set_new(root, "cas", arr);
	for (size_t c = 0; c < st->ncas; c++) {
		const struct scr_cas_stats *k = &st->cas[c];
		json_t *o = json_object(), *es = json_object();
		char key[8];

		if (!o || !es) {
			json_decref(o);
			json_decref(es);
			return CE_NOMEM;
		}
		json_array_append_new(arr, o);
		JSET(o, "super_cas_id", k->super_cas_id);
		json_object_set_new(o, "connected", json_boolean(k->connected));
		json_object_set_new(o, "on_backup", json_boolean(k->on_backup));
		JSET(o, "connects", k->connects);
		JSET(o, "connect_failures", k->connect_failures);
		JSET(o, "reconnects", k->reconnects);
		JSET(o, "failovers", k->failovers);
		JSET(o, "disconnects", k->disconnects);
		JSET(o, "channel_errors", k->channel_errors);
		JSET(o, "stream_errors", k->stream_errors);
		JSET(o, "bad_msgs", k->bad_msgs);
		JSET(o, "last_error_status", k->last_error_status);
		for (size_t i = 0; i < k->nstatus; i++) {
			snprintf(key, sizeof(key), "0x%04x", k->err_status[i]);
			JSET(es, key, k->err_count[i]);
		}
		if (k->err_other)
			JSET(es, "other", k->err_other);
		json_object_set_new(o, "errors_by_status", es);
	}
	if (!st->has_mux)
		return 0;
	if (!(m = json_object()))
		return CE_NOMEM;
	json_object_set_new(root, "mux", m);
	JSET(m, "conns_accepted", st->mux.conns_accepted);
	JSET(m, "conns_refused", st->mux.conns_refused);
	JSET(m, "conns_closed", st->mux.conns_closed);
	JSET(m, "msgs_in", st->mux.msgs_in);
	JSET(m, "msgs_bad", st->mux.msgs_bad);
	JSET(m, "errors_sent", st->mux.errors_sent);
	JSET(m, "errors_received", st->mux.errors_received);
	JSET(m, "data_provisions", st->mux.data_provisions);
	JSET(m, "udp_datagrams", st->mux.udp_datagrams);
	JSET(m, "udp_rejected", st->mux.udp_rejected);
	JSET(m, "sections_in", st->mux.sections_in);
	JSET(m, "pkts_in", st->mux.pkts_in);
	JSET(m, "pkts_out", st->mux.pkts_out);
	JSET(m, "pkts_dropped", st->mux.pkts_dropped);
	JSET(m, "bw_exceeded", st->mux.bw_exceeded);
	JSET(m, "allocated_kbps", st->mux.allocated_kbps);
	JSET(m, "channels", st->mux.channels);
	JSET(m, "streams", st->mux.streams);
	JSET(m, "queued_pkts", st->mux.queued_pkts);
	return 0;
}

int scrambler_stats_json(const struct scrambler *s, const char *path)
{
	struct scrambler_stats *st = malloc(sizeof(*st));
	json_t *root = NULL, *arr = NULL;
	char *text = NULL;
	int r = CE_NOMEM;

	if (!st)
		return CE_NOMEM;
	scrambler_stats(s, st);
	root = json_object();
	arr = json_array();
	if (!root || !arr)
		goto out;
	JSET(root, "pkts_in", st->pkts_in);
	JSET(root, "pkts_out", st->pkts_out);
	JSET(root, "pkts_scrambled", st->pkts_scrambled);
	JSET(root, "input_errors", st->input_errors);
	JSET(root, "input_resyncs", st->input_resyncs);
	JSET(root, "input_dropped_bytes", st->input_dropped_bytes);
	JSET(root, "already_scrambled", st->already_scrambled);
	JSET(root, "psi_errors", st->psi_errors);
	JSET(root, "pid_conflicts", st->pid_conflicts);
	JSET(root, "nulls_in", st->nulls_in);
	JSET(root, "nulls_replaced", st->nulls_replaced);
	JSET(root, "extra_pkts", st->extra_pkts);
	JSET(root, "insert_dropped", st->insert_dropped);
	JSET(root, "ecm_pkts", st->ecm_pkts);
	JSET(root, "emm_pkts", st->emm_pkts);
	JSET(root, "cat_pkts", st->cat_pkts);
	JSET(root, "pmt_rewrites", st->pmt_rewrites);
	JSET(root, "cp_changes", st->cp_changes);
	JSET(root, "cp_failures", st->cp_failures);
	JSET(root, "clear_pkts_failure", st->clear_pkts_failure);
	JSET(root, "clear_pkts_start", st->clear_pkts_start);
	JSET(root, "pkts_withheld", st->pkts_withheld);
	JSET(root, "stream_time_ms", st->stream_time_ms);
	JSET(root, "ecm_wait_us", st->ecm_wait_us);
	JSET(root, "window_timeouts", st->window_timeouts);
	for (size_t i = 0; i < st->nstreams; i++) {
		const struct scr_stream_stats *e = &st->streams[i];
		json_t *o = json_object();

		if (!o)
			goto out;
		JSET(o, "service_id", e->service_id);
		JSET(o, "super_cas_id", e->super_cas_id);
		JSET(o, "ecm_pid", e->ecm_pid);
		JSET(o, "ecm_stream_id", e->stream_id);
		JSET(o, "ecm_id", e->ecm_id);
		JSET(o, "cw_provision_sent", e->cw_provision_sent);
		JSET(o, "ecm_response_received", e->ecm_response_received);
		JSET(o, "timeouts", e->timeouts);
		JSET(o, "errors", e->errors);
		JSET(o, "ecm_pkts_out", e->ecm_pkts_out);
		JSET(o, "ecm_reps_skipped", e->ecm_reps_skipped);
		JSET(o, "open_failures", e->open_failures);
		json_object_set_new(o, "open", json_boolean(e->open));
		json_array_append_new(arr, o);
	}
	json_object_set(root, "streams", arr);
	if (stats_json_cas_mux(root, st) != 0)
		goto out;
	text = json_dumps(root, JSON_INDENT(2) | JSON_SORT_KEYS);
	if (!text)
		goto out;
	r = file_write_atomic(path, text, strlen(text), 0644) == 0 ? 0 : CE_IO;
out:
	free(text);
	json_decref(arr);
	json_decref(root);
	free(st);
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
