/*
 * scrambler_int.h - what the files of the scrambler share, and nothing
 * outside src/scrambler/ includes: the limits, the state (struct
 * scrambler, its services and ECM streams, the insertion queue) and the
 * functions one file calls in another. scrambler.c has the timing model.
 *
 *   scrambler.c         lifecycle: new, start, the I/O loop (run), free
 *   scrambler_config.c  --service/--ecmg parsing and config validation
 *   scrambler_psi.c     PAT/PMT/CAT following, PMT rewriting, ECM PIDs
 *   scrambler_cp.c      control words, CW_provision/ECM cycle, CP switches
 *   scrambler_out.c     per-packet path, output window and scrambling,
 *                       ECM/EMM/CAT insertion (the hot path: kept in one
 *                       file so the compiler sees it whole)
 *   scrambler_stats.c   counters, their text and JSON forms
 */
#ifndef CASTELLAN_SCRAMBLER_INT_H
#define CASTELLAN_SCRAMBLER_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "scrambler/mux.h"
#include "scrambler/scrambler.h"
#include "ts/psi.h"
#include "ts/ts.h"

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

enum ecm_mode {
	ECM_REP,    /* a repetition: skipped while the previous copy is queued */
	ECM_NEW,    /* new content: replaces queued copies, waits for room */
	ECM_URGENT, /* new content needed before the next packet: now, beyond
	             * the budget (queued like ECM_NEW with --nulls-only) */
};

static inline uint64_t ms_to_ticks(uint64_t ms)
{
	return ms * TICKS_PER_MS;
}


/* scrambler_config.c: 0, or CE_ARG/CE_RANGE for a config scrambler_new refuses. */
int scr_validate(const struct scrambler_config *c);

/* scrambler_out.c: flush the whole window (0 or the writer's error); put
 * the on-air ECM of stream ei in the queue; serve the MUX without
 * blocking (queue EMMs, rebuild the CAT). */
int scr_flush_out(struct scrambler *s);
int scr_ecm_send(struct scrambler *s, size_t ei, enum ecm_mode mode);
void scr_emm_service(struct scrambler *s);

/* scrambler_cp.c: CW_provision of CP k for a service; open ECM stream ei
 * (a failure is retried later); re-open failed streams that are due; the
 * CP k boundary (switch keys, request the next CP); collect ECMs that
 * came in (live mode). */
void scr_provision(struct scrambler *s, struct svc *v, int64_t k);
int scr_stream_open(struct scrambler *s, size_t ei);
void scr_retry_streams(struct scrambler *s);
int scr_boundary(struct scrambler *s, int64_t k);
int scr_poll_pending(struct scrambler *s);

/* scrambler_psi.c: the section callbacks of the PAT, PMT and CAT
 * assemblers (ctx is the scrambler), the first ECMs after a PMT with new
 * ECM PIDs, and the CAT packets (our CA_descriptors). */
int scr_ecm_after_pmt(struct scrambler *s, struct svc *v);
int scr_on_pmt(void *ctx, uint16_t pid, const uint8_t *sec, size_t len);
int scr_on_pat(void *ctx, uint16_t pid, const uint8_t *sec, size_t len);
int scr_cat_build_pkts(struct scrambler *s);
int scr_on_cat(void *ctx, uint16_t pid, const uint8_t *sec, size_t len);

#endif
