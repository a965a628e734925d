/*
 * scs.h - the SCS side of ECMG<=>SCS (ETSI TS 103 197): a SimulCrypt
 * client that gets ECMs from an ECMG over TCP.
 *
 * Owns: one channel = one TCP connection to the main ECMG (or, when it
 * cannot be reached, the backup), channel_setup / channel_status, the ECM
 * streams of the channel (stream_setup / stream_status, ECM_stream_id,
 * ECM_id, nominal_CP_duration), CW_provision (CP_number, CP_duration,
 * access_criteria, CP_CW_combination x CW_per_msg), the ECM_responses
 * matched by stream and CP_number, channel_test / stream_test (answered with
 * the last status received, and sent periodically as a keep-alive),
 * channel_error / stream_error (recorded with their error_status), and
 * reconnection: when the connection drops, the next call reconnects (main
 * first, then backup), sets the channel and every stream up again and
 * re-sends the CW_provision still waiting for its ECM.
 *
 * Message order on the wire is TSDuck's (FACTS.md 2.3), so our requests are
 * byte-for-byte those of TSDuck's scrambler for the same inputs.
 *
 * I/O: a non-blocking socket driven by poll(2) with bounded waits; no
 * threads. Every read is framed by the 5-byte header and bounded by
 * SC_MAX_MSG_BYTES; every received message goes through sc_decode. Invalid
 * messages are answered with channel_error / stream_error (never an error
 * with an error) and after SCS_MAX_BAD_IN_ROW in a row the connection is
 * dropped. CWs are secrets: the copy kept for re-sending is wiped when it
 * is replaced and on free; CWs are never logged.
 *
 * Threading: a channel is used by one thread. No globals.
 */
#ifndef CASTELLAN_SCS_H
#define CASTELLAN_SCS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "lib/err.h"

#define SCS_ADDR_BYTES 256
#define SCS_MAX_STREAMS 64            /* ECM streams per channel */
#define SCS_MAX_CW_PER_MSG 8
#define SCS_MAX_CW_BYTES 16
#define SCS_MAX_AC_BYTES 256          /* access_criteria we send */
#define SCS_MAX_ECM_BYTES 65535       /* an ECM_datagram (the TLV limit) */
#define SCS_ECM_SLOTS 4               /* ECMs kept per stream, by CP */
#define SCS_MAX_BAD_IN_ROW 3          /* invalid messages before dropping */

#define SCS_DEFAULT_CONNECT_MS 2000u
#define SCS_DEFAULT_RESPONSE_MS 5000u /* setup / close answers */
#define SCS_DEFAULT_TEST_MS 10000u    /* keep-alive channel_test period */
#define SCS_DEFAULT_RETRY_MS 1000u    /* between reconnection attempts */
#define SCS_ERR_STATUS_SLOTS 8        /* distinct error_status values counted */

struct scs_config {
	char main_addr[SCS_ADDR_BYTES];   /* "host:port" */
	char backup_addr[SCS_ADDR_BYTES]; /* "" = none */
	uint32_t super_cas_id;
	uint16_t channel_id;              /* ECM_channel_id */
	uint8_t version;                  /* 2 or 3; 0 = 2 */
	uint32_t connect_ms;              /* 0 = SCS_DEFAULT_CONNECT_MS */
	uint32_t response_ms;             /* 0 = SCS_DEFAULT_RESPONSE_MS */
	uint32_t test_ms;                 /* 0 = default; UINT32_MAX = never send tests */
	uint32_t retry_ms;                /* 0 = SCS_DEFAULT_RETRY_MS */
};

/* channel_status as received (TS 103 197; times in ms, CP in ms). */
struct scs_channel_status {
	bool section_mode;          /* section_TSpkt_flag = 0 */
	int16_t delay_start_ms;
	int16_t delay_stop_ms;
	bool has_ac_delays;
	int16_t ac_delay_start_ms;
	int16_t ac_delay_stop_ms;
	bool has_transition_delays;
	int16_t transition_delay_start_ms;
	int16_t transition_delay_stop_ms;
	uint16_t ecm_rep_period_ms;
	uint16_t max_streams;       /* 0 = no stated limit */
	uint32_t min_cp_duration_ms;
	uint8_t lead_cw;
	uint8_t cw_per_msg;
	uint16_t max_comp_time_ms;
};

struct scs_stats {
	uint64_t connects;          /* successful channel setups (first + re-) */
	uint64_t connect_failures;  /* TCP connect or channel_setup failed */
	uint64_t reconnects;        /* setups after a lost connection */
	uint64_t failovers;         /* setups done on the backup address */
	uint64_t disconnects;       /* connections lost or dropped */
	uint64_t msgs_sent;
	uint64_t msgs_received;
	uint64_t cw_provisions;
	uint64_t ecm_responses;
	uint64_t ecm_unmatched;     /* ECM_response for no stream / no CP asked */
	uint64_t channel_errors;    /* channel_error received */
	uint64_t stream_errors;     /* stream_error received */
	uint64_t bad_msgs;          /* received messages failing validation */
	uint64_t tests_sent;
	uint64_t tests_answered;    /* channel_test/stream_test from the ECMG */
	uint16_t last_error_status; /* error_status of the last *_error received */
	/* channel_error + stream_error received, by error_status: the first
	 * SCS_ERR_STATUS_SLOTS distinct values (count 0 = unused slot), the
	 * rest summed in errors_other_status */
	struct {
		uint16_t status;
		uint64_t count;
	} errors_by_status[SCS_ERR_STATUS_SLOTS];
	uint64_t errors_other_status;
	bool on_backup;             /* the current connection is to the backup */
};

struct scs_channel;
struct scs_stream;

/* Create a channel (no I/O). 0, CE_ARG (bad address/version), CE_NOMEM.
 * Free with scs_channel_free. */
int scs_channel_new(const struct scs_config *cfg, struct scs_channel **out) WARN_UNUSED;

/* Connect (main, then backup) and do channel_setup; wait for
 * channel_status. 0, CE_IO (no address reachable), CE_TIMEOUT, CE_PROTO
 * (channel_error: its status is in the stats), CE_CLOSED. */
int scs_channel_open(struct scs_channel *ch) WARN_UNUSED;

/* The channel_status received (valid after scs_channel_open). */
const struct scs_channel_status *scs_channel_info(const struct scs_channel *ch);
bool scs_channel_connected(const struct scs_channel *ch);
void scs_channel_stats(const struct scs_channel *ch, struct scs_stats *out);

/* Set up an ECM stream on an open channel: stream_setup, wait for
 * stream_status. The stream belongs to the channel (freed with it).
 * 0, CE_EXISTS (stream id in use), CE_LIMIT, CE_PROTO (stream_error /
 * channel_error), CE_TIMEOUT, CE_CLOSED. */
int scs_stream_open(struct scs_channel *ch, uint16_t stream_id, uint16_t ecm_id,
	uint32_t nominal_cp_ms, struct scs_stream **out) WARN_UNUSED;

/* CW_provision: CP_number cp, CP_duration cp_duration_ms (0 = omitted),
 * access_criteria ac (ac_len 0 = omitted), then ncw CP_CW_combinations
 * first_cp, first_cp + 1, ... with cw_len-byte CWs taken consecutively from
 * cws. A copy is kept (wiped later) to re-send after a reconnection.
 * 0, CE_ARG, CE_CLOSED (not connected: retried on the next scs_ecm_get),
 * CE_IO. */
int scs_cw_provision(struct scs_stream *st, uint16_t cp, uint16_t first_cp, const uint8_t *cws,
	size_t cw_len, size_t ncw, const uint8_t *ac, size_t ac_len, uint32_t cp_duration_ms) WARN_UNUSED;

/* The ECM_datagram of CP cp, waiting at most timeout_ms (0 = just look).
 * Drives the channel meanwhile (answers tests, sends keep-alives,
 * reconnects). 0 with the datagram in buf (*len bytes); CE_TIMEOUT (not
 * yet); CE_PROTO (stream_error/channel_error for it); CE_OVERFLOW (cap too
 * small); CE_CLOSED (no connection and reconnecting failed). */
int scs_ecm_get(struct scs_stream *st, uint16_t cp, int timeout_ms, uint8_t *buf, size_t cap,
	size_t *len) WARN_UNUSED;

/* Process what the ECMG sent for at most timeout_ms (0 = what is there).
 * 0, or CE_CLOSED when the connection is down. */
int scs_channel_poll(struct scs_channel *ch, int timeout_ms);

/* error_status of the last stream_error for this stream (0 = none). */
uint16_t scs_stream_last_error(const struct scs_stream *st);

/* stream_close_request, wait (bounded) for stream_close_response. The
 * handle is invalid afterwards. NULL is fine. */
void scs_stream_close(struct scs_stream *st);

/* Close every stream, channel_close, disconnect, wipe, free. NULL is fine. */
void scs_channel_free(struct scs_channel *ch);

/*
 * The scrambler's default ECM source (scrambler_scs.c): struct scr_ecm_ops
 * scr_scs_ecm_ops over one scs channel per CAS, shared by the streams of
 * that CAS. scrambler_new creates the context when cfg->ecm_ops is NULL
 * (0, CE_NOMEM, CE_ARG) and scrambler_free frees it after closing the
 * streams; other callers may do the same and pass it as ecm_ops_ctx.
 */
struct scrambler_config;
int scr_scs_new(const struct scrambler_config *cfg, void **ctx) WARN_UNUSED;
void scr_scs_free(void *ctx);
/* The counters of CAS cas_idx's channel into *out (left as it is when that
 * channel was never created). */
struct scr_cas_stats;
void scr_scs_cas_stats(void *ctx, size_t cas_idx, struct scr_cas_stats *out);

#endif
