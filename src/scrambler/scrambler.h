/*
 * scrambler.h - the SimulCrypt scrambler (SCS) pipeline: clear TS in,
 * scrambled TS with ECMs, EMMs, rewritten PMTs and a CAT out.
 *
 * Owns: following PAT -> PMT of the configured services, choosing the PIDs
 * to scramble (all ES of a service, or a list of components), the
 * crypto-period (CP) schedule on stream time (PCR, interpolated per packet;
 * packet count x bitrate when there is no PCR), control words (RAND_bytes),
 * the CW_provision / ECM_response cycle with one or more ECMGs (through the
 * SCS client library, scs.h, or a caller-given ECM source), ECM insertion on
 * the ECM PIDs at the repetition period, EMM insertion from the MUX
 * (mux.h), CAT insertion, PMT rewriting (one CA_descriptor per CAS,
 * version_number + 1, CRC), the insertion budget (null replacement first,
 * then extra packets within a limit), batch scrambling (ts_cipher), the
 * any/all and keep/clear failure policies, and the counters.
 *
 * docs/scrambler.md explains the timing of CPs and ECMs with a diagram.
 *
 * Normative references: ETSI TS 103 197 (ECMG<=>SCS, EMMG<=>MUX: CP_number,
 * CW_per_msg, lead_CW, delay_start, ECM_rep_period); ISO/IEC 13818-1 (TS,
 * PSI, CA_descriptor 2.6.16, PCR); ETSI TS 100 289 (DVB-CSA2), ETSI TS 103
 * 127 (DVB-CISSA); ETSI TS 101 154 / EN 300 468 (CAT and PMT usage).
 *
 * Threading: one scrambler is used by one thread. All its state lives in
 * struct scrambler (no globals); secrets (CWs, fixed CW) are wiped by
 * scrambler_free.
 */
#ifndef CASTELLAN_SCRAMBLER_H
#define CASTELLAN_SCRAMBLER_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include "lib/err.h"
#include "cipher/cipher.h"
#include "scrambler/mux.h"

#define SCR_MAX_CAS 4
#define SCR_MAX_SERVICES 32
#define SCR_MAX_COMPONENTS 32
#define SCR_MAX_STREAMS (SCR_MAX_CAS * SCR_MAX_SERVICES)
#define SCR_ADDR_BYTES 256
#define SCR_AC_BYTES 4

#define SCR_DEFAULT_CP_MS 10000u
#define SCR_DEFAULT_ECM_REP_MS 100u
#define SCR_DEFAULT_MAX_EXTRA_KBPS 1000u
#define SCR_DEFAULT_EMM_KBPS 100u
#define SCR_DEFAULT_BITRATE_BPS 10000000u /* stream time before/without PCR */
#define SCR_DEFAULT_CHUNK_PKTS 512u
#define SCR_MIN_CP_MS 100u
#define SCR_MAX_CP_MS (6553500u) /* CP_duration is u16 in 100 ms units */
#define SCR_CAT_PERIOD_MS 500u
#define SCR_DEFAULT_MAX_DELAY_MS 200u /* CSA2 output window bound, stream time */
#define SCR_DEFAULT_RETRY_MS 250u    /* first re-open of an ECM stream that failed */
#define SCR_MAX_RETRY_MS 4000u       /* the back-off doubles up to this */

/* One service to scramble. */
struct scr_service_cfg {
	uint16_t service_id;           /* program_number in the PAT */
	uint8_t ac[SCR_AC_BYTES];      /* access criteria: package mask, BE */
	bool has_ac;                   /* else 00000001 (package 0) */
	size_t npids;                  /* 0 = every ES PID of the PMT */
	uint16_t pids[SCR_MAX_COMPONENTS]; /* component PIDs to scramble */
	uint16_t ecm_id;               /* ECM_id of its ECM streams (one per CAS);
	                                * 0 = its index + 1. Unique across every SCS
	                                * of an ECMG (docs/scrambler.md) */
};

/* One CAS: an ECMG (main and optional backup) and its identifiers. */
struct scr_cas_cfg {
	char main_addr[SCR_ADDR_BYTES];   /* "host:port" */
	char backup_addr[SCR_ADDR_BYTES]; /* "" = no backup */
	uint32_t super_cas_id;            /* CA_system_id << 16 | subsystem */
	uint16_t channel_id;              /* ECM_channel_id */
	uint16_t ecm_pid;                 /* 0 = first unused PID after the PMT PID */
};

enum scr_policy { SCR_POLICY_ANY = 0, SCR_POLICY_ALL = 1 };
enum scr_on_failure { SCR_FAIL_KEEP = 0, SCR_FAIL_CLEAR = 1 };
enum scr_sync { SCR_SYNC_AUTO = 0, SCR_SYNC_ON = 1, SCR_SYNC_OFF = 2 };

/* What the ECMG announced in channel_status (TS 103 197). */
struct scr_ecmg_info {
	bool section_mode;       /* section_TSpkt_flag = 0: ECMs as sections */
	int16_t delay_start_ms;
	uint16_t ecm_rep_period_ms;
	uint16_t max_comp_time_ms;
	uint8_t lead_cw;
	uint8_t cw_per_msg;
};

/* Counters of the connection to one CAS's ECMG (the default ECM source,
 * the SCS client scs.h; zero with a caller-given ECM source). */
struct scr_cas_stats {
	uint32_t super_cas_id;
	bool connected;             /* channel set up now */
	bool on_backup;             /* ... with the backup ECMG */
	uint64_t connects;          /* successful channel setups */
	uint64_t connect_failures;  /* TCP connect / channel_setup failed (per address) */
	uint64_t reconnects;        /* setups after a lost connection */
	uint64_t failovers;         /* setups on the backup address */
	uint64_t disconnects;
	uint64_t channel_errors;    /* channel_error received */
	uint64_t stream_errors;     /* stream_error received */
	uint64_t bad_msgs;          /* invalid messages received */
	uint16_t last_error_status;
	size_t nstatus;             /* errors by error_status, first 8 distinct */
	uint16_t err_status[8];
	uint64_t err_count[8];
	uint64_t err_other;         /* errors with further statuses */
};

/*
 * Where ECMs come from. NULL in the config = the SCS client library (scs.h)
 * talking to the configured ECMG addresses. Tests, benchmarks and other
 * integrations may give their own. Every function returns 0 or a negative
 * CE_* code.
 *   open:      set up the ECM stream of (cas, service): fill *info, give a
 *              handle in *stream.
 *   provision: send CW_provision for cp with ncw CWs (cw_len bytes each,
 *              consecutive, for CP numbers first_cp, first_cp+1, ...).
 *   poll:      the ECM_response for cp: wait at most timeout_ms (0 = do not
 *              wait); 0 with the ECM_datagram copied to buf, CE_TIMEOUT when
 *              not there yet, another code when the stream failed.
 *   close:     tear the stream down (always called for an opened stream).
 */
struct scr_ecm_ops {
	int (*open)(void *ctx, size_t cas_idx, const struct scr_cas_cfg *cas, uint16_t stream_id,
		uint16_t ecm_id, uint32_t cp_duration_ms, struct scr_ecmg_info *info, void **stream);
	int (*provision)(void *ctx, void *stream, uint16_t cp, uint16_t first_cp, const uint8_t *cws,
		size_t cw_len, size_t ncw, const uint8_t *ac, size_t ac_len, uint32_t cp_duration_ms);
	int (*poll)(void *ctx, void *stream, uint16_t cp, int timeout_ms, uint8_t *buf, size_t cap,
		size_t *len);
	void (*close)(void *ctx, void *stream);
};

struct scrambler_config {
	const char *input_uri;          /* for scrambler_run (tsio.h URIs) */
	const char *output_uri;
	size_t nservices;
	struct scr_service_cfg services[SCR_MAX_SERVICES];
	size_t ncas;                    /* 0 only with fixed_cw */
	struct scr_cas_cfg cas[SCR_MAX_CAS];
	enum cw_alg alg;                /* CW_ALG_CSA2 (default) or CW_ALG_CISSA */
	bool no_entropy_reduction;      /* CSA2: keep the CW as generated */
	uint32_t cp_duration_ms;        /* 0 = 10 s */
	uint32_t clear_start_ms;        /* clear period at the start */
	uint32_t ecm_rep_ms;            /* 0 = ECM_rep_period of the ECMG, else 100 */
	enum scr_policy policy;
	enum scr_on_failure on_failure;
	uint32_t ecm_timeout_ms;        /* 0 = max_comp_time + 500 ms (min 1 s) */
	const char *mux_listen;         /* "addr:port": accept EMMGs (NULL = no MUX) */
	const char *mux_allow;          /* "CIDR[,CIDR...]": EMMGs allowed (NULL = anyone; mux.h) */
	uint16_t emm_pid;               /* 0 = 0x1FF0 */
	uint32_t emm_max_kbps;          /* 0 = 100 */
	uint32_t max_extra_kbps;        /* extra packets beyond nulls; 0 = 1000 */
	bool nulls_only;                /* only replace null packets, never add */
	bool realtime;                  /* pace the output to the PCR */
	enum scr_sync sync;             /* wait for ECMs (auto: yes unless udp:// input) */
	const char *stats_json;         /* write the counters there at the end */
	uint8_t version;                /* ECMG<=>SCS protocol version, 0 = 2 */
	bool has_fixed_cw;              /* no ECMG: one fixed CW, even parity */
	uint8_t fixed_cw[CW_MAX_BYTES];
	size_t fixed_cw_len;
	uint32_t bitrate_bps;           /* stream time without PCR; 0 = 10 Mb/s */
	uint32_t chunk_pkts;            /* packets per cipher batch; 0 = 512 */
	uint32_t max_delay_ms;          /* a packet waits at most this (stream time)
	                                 * in the output window; 0 = 200 */
	uint32_t retry_ms;              /* first re-open of a failed ECM stream (wall
	                                 * time, doubling up to 4 s); 0 = 250 */
	const struct scr_ecm_ops *ecm_ops; /* NULL = scs.h */
	void *ecm_ops_ctx;
	volatile sig_atomic_t *stop;          /* scrambler_run returns when set */
	volatile sig_atomic_t *stats_request; /* print stats (to stderr) when set; reset */
};

/* Fill a config with the defaults (everything else zero). */
void scrambler_config_init(struct scrambler_config *cfg);

/* Parse "ID[:ac=HEX8][:pids=0x100,0x101]" into *out (zeroed first).
 * 0 or CE_ARG / CE_RANGE / CE_LIMIT. */
int scr_service_parse(const char *spec, struct scr_service_cfg *out) WARN_UNUSED;
/* Parse "HOST:PORT[,BACKUP:PORT]" into the CAS addresses. 0 or CE_ARG. */
int scr_ecmg_parse(const char *spec, struct scr_cas_cfg *out) WARN_UNUSED;
/* Parse "N[,N...]": ECM_ids 1..65535, at most SCR_MAX_SERVICES, into ids
 * (*n of them). 0 or CE_ARG. */
int scr_ecm_ids_parse(const char *s, uint16_t ids[SCR_MAX_SERVICES], size_t *n) WARN_UNUSED;
/* Parse seconds "S" or "S.fff" (at most 3 decimals, S <= 4000000) into ms.
 * 0 or CE_ARG. */
int scr_seconds_parse(const char *s, uint32_t *ms) WARN_UNUSED;

/* A configuration built option by option (`castellan scramble`, its --config
 * file): what --ecmg starts, --super-cas-id / --ecm-pid / --channel-id
 * complete, --ecm-id pairs with the --service list; scr_opts_finish checks
 * the whole. Each call: 0, or CE_* with *why (when set) the reason in words. */
struct scr_opts {
	struct scrambler_config cfg;
	bool live;                          /* do not wait for ECMs */
	bool super_set[SCR_MAX_CAS];        /* --super-cas-id given for that CAS */
	uint16_t ecm_ids[SCR_MAX_SERVICES];
	size_t necm_ids;
};
enum scr_cas_field { SCR_CAS_SUPER_ID, SCR_CAS_ECM_PID, SCR_CAS_CHANNEL_ID };

/* Defaults (scrambler_config_init), nothing given yet. */
void scr_opts_init(struct scr_opts *o);
/* One more service "ID[:ac=HEX8][:pids=...]". */
int scr_opts_service(struct scr_opts *o, const char *v, const char **why) WARN_UNUSED;
/* One more CAS at "HOST:PORT[,BACKUP:PORT]" (ECM_channel_id 1). */
int scr_opts_ecmg(struct scr_opts *o, const char *v, const char **why) WARN_UNUSED;
/* A number of the CAS the last scr_opts_ecmg started. */
int scr_opts_cas_num(struct scr_opts *o, enum scr_cas_field f, const char *v, const char **why) WARN_UNUSED;
/* The ECM_ids "N[,N...]" of the services, in order. */
int scr_opts_ecm_ids(struct scr_opts *o, const char *v) WARN_UNUSED;
/* A fixed CW: 16 or 32 hex digits. */
int scr_opts_fixed_cw(struct scr_opts *o, const char *v) WARN_UNUSED;
/* The crypto-period in seconds (SCR_MIN_CP_MS .. SCR_MAX_CP_MS). */
int scr_opts_cp_duration(struct scr_opts *o, const char *v) WARN_UNUSED;
/* The clear period at the start, in seconds. */
int scr_opts_clear_start(struct scr_opts *o, const char *v) WARN_UNUSED;
/* The checks across options, then the ECM_ids and --live into cfg.
 * 0 or CE_ARG with *why. */
int scr_opts_finish(struct scr_opts *o, const char **why) WARN_UNUSED;

/* Per ECM stream counters (one stream per service per CAS). */
struct scr_stream_stats {
	uint16_t service_id;
	uint32_t super_cas_id;
	uint16_t ecm_pid;          /* 0 until the PMT was seen */
	uint16_t stream_id;
	uint16_t ecm_id;
	uint64_t cw_provision_sent;
	uint64_t ecm_response_received;
	uint64_t timeouts;         /* no ECM_response in time */
	uint64_t errors;           /* open/provision/poll failures, bad datagrams */
	uint64_t ecm_pkts_out;     /* ECM packets written */
	uint64_t ecm_reps_skipped; /* repetitions skipped: previous still queued */
	uint64_t open_failures;    /* ECM stream open attempts that failed */
	bool open;                 /* the stream is set up (an ECM source handle) */
};

struct scrambler_stats {
	uint64_t pkts_in;
	uint64_t pkts_out;
	uint64_t pkts_scrambled;
	uint64_t input_errors;      /* packets failing ts_parse (passed as they are) */
	uint64_t input_resyncs;     /* from the TS input (tsio) */
	uint64_t input_dropped_bytes;
	uint64_t already_scrambled; /* input packets already scrambled: left alone */
	uint64_t psi_errors;        /* PAT/PMT/CAT sections rejected */
	uint64_t pid_conflicts;     /* input packets on a PID we insert on: dropped */
	uint64_t nulls_in;
	uint64_t nulls_replaced;    /* null packets replaced by ECM/EMM/CAT */
	uint64_t extra_pkts;        /* packets added beyond the input (bitrate up) */
	uint64_t insert_dropped;    /* queued EMM/CAT packets dropped (no room) */
	uint64_t ecm_pkts;
	uint64_t emm_pkts;
	uint64_t cat_pkts;
	uint64_t pmt_rewrites;      /* PMT sections written */
	uint64_t cp_changes;        /* CP transitions done (all services) */
	uint64_t cp_failures;       /* transitions the policy refused */
	uint64_t clear_pkts_failure;/* payload packets of scrambled components left
	                             * clear for want of a key (--on-failure clear;
	                             * before the PMTs: any unknown PID) */
	uint64_t clear_pkts_start;  /* ... left clear during --clear-start */
	uint64_t pkts_withheld;     /* payload packets withheld for want of a key
	                             * (sent as adaptation-field-only packets) */
	uint64_t stream_time_ms;
	uint64_t ecm_wait_us;       /* wall time spent waiting for ECMs */
	uint64_t window_timeouts;   /* output windows written early: max_delay_ms */
	size_t nstreams;
	struct scr_stream_stats streams[SCR_MAX_STREAMS];
	size_t ncas;
	struct scr_cas_stats cas[SCR_MAX_CAS];
	bool has_mux;               /* mux valid: --mux-listen is on and started */
	struct mux_stats mux;
};

struct scrambler;

/* Validate cfg and create a scrambler (no I/O yet: ECM streams are opened
 * by scrambler_start, or the first scrambler_push). The config is copied.
 * 0, CE_ARG (inconsistent config), CE_NOMEM. Free with scrambler_free. */
int scrambler_new(const struct scrambler_config *cfg, struct scrambler **out) WARN_UNUSED;

/* Open every ECM stream and send the first CW_provision. Called by
 * scrambler_run; callers of scrambler_push may call it or let push do. */
int scrambler_start(struct scrambler *s) WARN_UNUSED;

/* Output callback of scrambler_push: n whole packets. 0 or a CE_* code
 * (which push returns). */
typedef int (*scr_write_fn)(void *ctx, const uint8_t *pkts, size_t n);

/* Push n input packets (n * 188 bytes); output goes to write (possibly
 * after later pushes: packets are batched). 0 or the first error. */
int scrambler_push(struct scrambler *s, const uint8_t *pkts, size_t n, scr_write_fn write,
	void *ctx) WARN_UNUSED;
/* Write out everything still batched. */
int scrambler_flush(struct scrambler *s, scr_write_fn write, void *ctx) WARN_UNUSED;

/* Read cfg->input_uri, write cfg->output_uri until the end of the input or
 * *cfg->stop; then flush, close streams, write stats_json. 0 or an error. */
int scrambler_run(struct scrambler *s) WARN_UNUSED;

/* The MUX's bound TCP/UDP port (mux_listen with port 0 picks a free one),
 * valid after scrambler_start; 0 without a MUX. */
uint16_t scrambler_mux_port(const struct scrambler *s);

/* Snapshot of the counters. */
void scrambler_stats(const struct scrambler *s, struct scrambler_stats *out);
/* Human-readable counters. */
void scrambler_stats_print(const struct scrambler *s, FILE *f);
/* The counters as JSON to a file (atomic write). 0 or CE_IO / CE_NOMEM. */
int scrambler_stats_json(const struct scrambler *s, const char *path) WARN_UNUSED;

/* Close ECM streams, wipe CWs, free. NULL is fine. */
void scrambler_free(struct scrambler *s);

#endif
