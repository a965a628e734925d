/*
 * ecmg.h - Castellan's ECM generator: the ECMG side of the DVB SimulCrypt
 * ECMG<=>SCS interface (ETSI TS 103 197), a libevent TCP server.
 *
 * Owns: the listening socket, one session per SCS connection (one ECM
 * channel per TCP connection, many ECM streams per channel), the channel and
 * stream state machines, the CP_CW_combination / lead_CW / CW_per_msg rules,
 * turning a CW_provision into an ECM (src/cas/ecm.h, keys from the head-end
 * keystore) sent back as ECM_response (one section, or whole TS packets),
 * idle timeouts, counters and a clean shutdown. Message encoding, decoding
 * and the parse-fault -> error_status mapping are the codec's
 * (src/simulcrypt/simulcrypt.h). Operator documentation: docs/ecmg.md.
 *
 * Threads: everything runs in the thread that calls ecmg_run(). From any
 * other thread (or a signal handler) only ecmg_stop() and ecmg_stats() may be
 * called. There is no global state: several ECMGs may run in one process.
 */
#ifndef CASTELLAN_ECMG_H
#define CASTELLAN_ECMG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "lib/err.h"
#include "cas/usage.h"

struct keystore;
struct osd_fingerprint;

#define ECMG_DEFAULT_PORT 2222
#define ECMG_DEFAULT_LISTEN "127.0.0.1:2222" /* a private SimulCrypt network: say --listen to open it */
#define ECMG_DEFAULT_CA_SYSTEM_ID 0x4ADC
/* Hard caps (named maxima): a peer can never make us hold more than this. */
#define ECMG_MAX_RX_MSG_BYTES 4096      /* larger messages: message_too_long, skipped */
#define ECMG_MAX_STREAMS_PER_CHANNEL 1024
#define ECMG_MAX_TX_BUFFER_BYTES (1u << 20) /* a peer that does not read is dropped */
#define ECMG_BAD_MSGS_BEFORE_CLOSE 3    /* consecutive invalid messages (as TSDuck) */
#define ECMG_DEFAULT_MAX_STREAMS_TOTAL 32768 /* streams on the whole ECMG */
#define ECMG_MSGS_PER_CALLBACK 16       /* messages one connection handles before others run */

/* Configuration. Zero values mean "the default" where a default is given;
 * ecmg_config_init() fills the defaults explicitly. */
struct ecmg_config {
	const char *listen;         /* "addr:port" (port 0 = any free port); default ECMG_DEFAULT_LISTEN */
	const struct keystore *ks;  /* borrowed, must outlive the ECMG; required */
	uint8_t version;            /* ECMG<=>SCS protocol version, 2 or 3 (default 2) */
	uint16_t ca_system_id;      /* Super_CAS_id >> 16 accepted; default the keystore's */
	bool sections;              /* section_TSpkt_flag 0 (sections); default false = TS packets */
	/* Announced in channel_status (TS 103 197 units). */
	uint8_t cw_per_msg;         /* 1 or 2 (default 2) */
	uint8_t lead_cw;            /* 0 .. 2 (default 1); CWs carried: CP+lead-(per_msg-1) .. CP+lead */
	int16_t delay_start_ms;     /* default 200 */
	int16_t delay_stop_ms;      /* default 200 */
	int16_t transition_delay_start_ms; /* default -500 */
	int16_t transition_delay_stop_ms;  /* default 0 */
	uint16_t ecm_rep_period_ms; /* default 100 */
	uint16_t max_streams;       /* per channel, enforced; 0 = up to ECMG_MAX_STREAMS_PER_CHANNEL */
	uint16_t min_cp_duration;   /* 100 ms units, enforced on nominal_CP_duration/CP_duration; default 10 */
	uint16_t max_comp_time_ms;  /* default 100; slower ECMs are counted as late */
	/* Server limits. */
	uint32_t max_channels;      /* = connections with a channel; default 256 */
	uint32_t max_connections;   /* open TCP connections; default 512 */
	uint32_t idle_timeout_ms;   /* close a connection silent this long; default 300000, 0 = never */
	uint32_t setup_timeout_ms;  /* close a connection with no channel after this; default 10000 */
	/* Who may connect, and how much one peer address may hold. */
	const char *allow;          /* "CIDR[,CIDR...]" (lib/netacl.h): other peers are closed on
	                             * accept, before any message; NULL = anyone */
	uint32_t max_channels_per_peer; /* 0 = max_channels / 4 (at least 1) */
	uint32_t max_streams_per_peer;  /* 0 = 4 x ECMG_MAX_STREAMS_PER_CHANNEL */
	uint32_t max_streams_total;     /* 0 = ECMG_DEFAULT_MAX_STREAMS_TOTAL */
	bool handle_signals;        /* SIGINT/SIGTERM stop ecmg_run (the CLI sets it) */
	/* Optional: the operator's channels table (the head-end's). For an
	 * ECM_id, 0 and the 32-bit package mask of the channel whose service_id
	 * is that ECM_id, else non-zero. Called on the ECMG thread: must be
	 * thread-safe and not block. A mask from the table wins over the SCS's
	 * access_criteria (it replaces the first 4 bytes); without an entry the
	 * SCS's is used, and with neither CW_provision gets missing_param. */
	int (*ac_lookup)(void *ctx, uint16_t ecm_id, uint32_t *mask);
	void *ac_ctx;
	/* Optional (issue 13): the fingerprint in force for this ECM stream
	 * (ECM_id = service_id, mask = the ECM's package mask) at now_ms: 0
	 * and *fp, or non-zero for none. The ECMG puts it in the ECM's
	 * extension block (cas/ecm.h), under the ECM's MACs. Called on the
	 * ECMG thread: thread-safe, no blocking. */
	int (*fp_lookup)(void *ctx, uint16_t ecm_id, uint32_t mask, uint64_t now_ms, struct osd_fingerprint *fp);
	void *fp_ctx;
	/* Optional (C.6): the channel's usage rules (copy control, retention;
	 * cas/usage.h) for this ECM stream (ECM_id = service_id): 0 and *u, or
	 * non-zero for none (copy_free). The ECMG puts them in the ECM's
	 * extension block, under its MACs. Same thread rules as fp_lookup. */
	int (*usage_lookup)(void *ctx, uint16_t ecm_id, struct cas_usage *u);
	void *usage_ctx;
};

/* Fill *cfg with every default (listen, version 2, TS packets, ...). */
void ecmg_config_init(struct ecmg_config *cfg);

/* Counters since ecmg_new (monotonic; safe to read from any thread). */
struct ecmg_stats {
	uint64_t connections;        /* accepted in total */
	uint64_t connections_open;   /* open now */
	uint64_t connections_refused;/* over max_connections */
	uint64_t connections_denied; /* peer not in the allow list (closed on accept) */
	uint64_t quota_refusals;     /* channel/stream setups refused by a per-peer or ECMG-wide cap */
	uint64_t channels;           /* channel_setup accepted in total */
	uint64_t channels_open;
	uint64_t streams;            /* stream_setup accepted in total */
	uint64_t streams_open;
	uint64_t cw_provisions;      /* received */
	uint64_t ecms;               /* ECM_response sent */
	uint64_t ecms_late;          /* took longer than max_comp_time */
	uint64_t errors_sent;        /* channel_error + stream_error sent */
	uint64_t errors_received;    /* channel_error + stream_error from SCSs */
	uint64_t bad_messages;       /* undecodable / refused by the codec */
	uint64_t timeouts;           /* connections closed for idleness */
	uint64_t msgs_in;
	uint64_t msgs_out;
	uint64_t ecm_us_total;       /* ECM build time, summed (for the mean) */
};

struct ecmg;

/* Validate cfg and create the ECMG (nothing is bound yet). cfg is copied;
 * cfg->listen is copied too. 0, CE_ARG (bad option, no keystore, keystore
 * CA_system_id differs from cfg->ca_system_id, a bad allow list), CE_NOMEM. */
int ecmg_new(const struct ecmg_config *cfg, struct ecmg **out) WARN_UNUSED;
/* Bind and listen. 0, CE_ARG (bad address), CE_IO (bind/listen failed). */
int ecmg_start(struct ecmg *g) WARN_UNUSED;
/* The bound TCP port (useful when the config asked for port 0). */
uint16_t ecmg_port(const struct ecmg *g);
/* Run the event loop until ecmg_stop() (or a signal with handle_signals).
 * Closes every connection before returning. 0 or CE_IO. */
int ecmg_run(struct ecmg *g) WARN_UNUSED;
/* Serve an already-connected stream socket (socket activation, tests,
 * fuzzing): the ECMG owns fd from now on, closed on every path. The allow
 * list is not applied (the caller accepted the socket); the per-peer quotas
 * are, by the peer's address (all non-IP sockets count as one peer).
 * 0, CE_LIMIT (max_connections), CE_NOMEM. Loop thread only. */
int ecmg_adopt(struct ecmg *g, int fd) WARN_UNUSED;
/* Run the callbacks that are ready now, without blocking (single-threaded
 * embedding, fuzzing). 0 or CE_IO. */
int ecmg_poll(struct ecmg *g) WARN_UNUSED;
/* Ask ecmg_run to return; async-signal-safe and thread-safe. */
void ecmg_stop(struct ecmg *g);
/* Copy the counters. Thread-safe. */
void ecmg_stats(const struct ecmg *g, struct ecmg_stats *out);
/* Free everything (call after ecmg_run returned, or if it never ran). */
void ecmg_free(struct ecmg *g);

#endif
