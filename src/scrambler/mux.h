/*
 * mux.h - the MUX side of the EMMG/PDG<=>MUX interface (ETSI TS 103 197):
 * accepts EMMG connections and turns their data_provision into TS packets
 * for the EMM PID.
 *
 * Owns: the TCP listener and the UDP socket on the same port, one session
 * per TCP connection (channel_setup/test/status/close/error,
 * stream_setup/test/status/close/error, stream_BW_request ->
 * stream_BW_allocation, data_provision over TCP or UDP), the
 * client_id / data_channel_id / data_stream_id / data_id checks with the
 * interface's error_status values, the bandwidth grants (their sum never
 * exceeds max_kbps), packetizing EMM sections (section_TSpkt_flag 0) or
 * re-PIDing EMM TS packets (flag 1) onto the EMM PID with continuity
 * counters, a bounded packet queue (drop oldest, counted), and the counters.
 * The message codec is simulcrypt.h; docs/mux.md is the operator's page.
 *
 * Threading and I/O: no thread of its own. The owner calls mux_poll() (with
 * 0 from a packet loop: never blocks) and mux_take() for the packets. Every
 * function takes an internal lock, so one thread may poll while another
 * takes. Sockets are non-blocking; a peer that does not read its replies is
 * disconnected once its reply buffer is full. No globals.
 *
 * Reference: ETSI TS 103 197 (EMMG/PDG<=>MUX); tests/data/simulcrypt/FACTS.md
 * section 3 for the interoperable behaviour (TSDuck).
 */
#ifndef CASTELLAN_MUX_H
#define CASTELLAN_MUX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "lib/err.h"

#define MUX_MAX_CONNS 16          /* TCP connections (= channels) at once */
#define MUX_MAX_STREAMS_PER_CHAN 4
#define MUX_MAX_STREAMS 32         /* over all channels */
#define MUX_DEFAULT_QUEUE_PKTS 4096
#define MUX_MAX_QUEUE_PKTS 65536
#define MUX_DEFAULT_EMM_PID 0x1FF0
#define MUX_DEFAULT_MAX_KBPS 100u
#define MUX_MAX_BAD_MSGS 3         /* consecutive invalid messages: disconnect */

struct mux_config {
	const char *listen;   /* "[addr]:port" TCP + UDP; port 0 = any free port */
	uint8_t version;      /* 1..5: only this version; 0 = any 1..5, set per
	                       * connection by its first message */
	uint16_t emm_pid;     /* 0 = 0x1FF0 */
	uint32_t max_kbps;    /* sum of all grants; 0 = 100 */
	size_t queue_pkts;    /* 0 = 4096, at most 65536 */
	size_t max_conns_per_peer; /* connections one peer address may hold; 0 = MUX_MAX_CONNS / 4 */
	const char *allow;    /* "CIDR[,CIDR...]" (lib/netacl.h): EMMGs from elsewhere are closed on
	                       * accept and their UDP datagrams dropped (counted); NULL = anyone */
};

struct mux_stats {
	uint64_t conns_accepted;
	uint64_t conns_refused;      /* over MUX_MAX_CONNS, or over the per-peer cap */
	uint64_t peers_denied;       /* TCP connections and UDP datagrams from outside the allow list */
	uint64_t conns_closed;
	uint64_t msgs_in;            /* valid messages, TCP and UDP */
	uint64_t msgs_bad;           /* rejected by the codec */
	uint64_t errors_sent;        /* channel_error / stream_error sent */
	uint64_t errors_received;    /* channel_error / stream_error received */
	uint64_t data_provisions;    /* accepted (TCP + UDP) */
	uint64_t udp_datagrams;      /* received on the UDP socket */
	uint64_t udp_rejected;       /* UDP data_provision refused */
	uint64_t sections_in;
	uint64_t pkts_in;            /* TS packets queued */
	uint64_t pkts_out;           /* taken by mux_take */
	uint64_t pkts_dropped;       /* oldest dropped: queue full */
	uint64_t bw_exceeded;        /* data_provision beyond the grant */
	uint32_t allocated_kbps;     /* current sum of grants */
	size_t channels;             /* channels set up now */
	size_t streams;              /* streams set up now */
	size_t queued_pkts;
};

struct mux;

/* Create the MUX and bind TCP and UDP on cfg->listen (copied). 0, CE_ARG
 * (bad config or address), CE_IO (bind/listen), CE_NOMEM. Free with
 * mux_free. */
int mux_new(const struct mux_config *cfg, struct mux **out) WARN_UNUSED;

/* The bound port (useful with port 0). */
uint16_t mux_port(const struct mux *m);

/* Serve the sockets: accept, read, answer, queue data. Waits at most
 * timeout_ms for activity (0 = do not wait, < 0 = 1 s). 0 or CE_IO on a
 * listener failure; peers' faults are answered and counted, not returned. */
int mux_poll(struct mux *m, int timeout_ms) WARN_UNUSED;

/* Take up to max_pkts queued packets (188 bytes each, PID = EMM PID,
 * continuity counters consecutive) into buf; *n = number taken. 0 or
 * CE_ARG. */
int mux_take(struct mux *m, uint8_t *buf, size_t max_pkts, size_t *n) WARN_UNUSED;

/* Packets waiting in the queue. */
size_t mux_queued(const struct mux *m);

/* The distinct client_ids of the channels set up now (for the CAT: the high
 * 16 bits are the CA_system_id), sorted ascending; up to max into ids, *n =
 * number written. Returns a generation number that changes whenever the set
 * changes. */
uint64_t mux_clients(const struct mux *m, uint32_t *ids, size_t max, size_t *n);

void mux_stats(const struct mux *m, struct mux_stats *out);

/* Close every connection and socket, free. NULL is fine. */
void mux_free(struct mux *m);

/*
 * Turn one datagram parameter into TS packets on pid (the parser of the
 * data a peer sends, fuzzed by fuzz/fuzz_mux.c). Section mode: one or more
 * whole sections back to back (each 3 + section_length bytes, at most 4096),
 * each packetized from a new packet (PUSI, pointer_field 0, stuffing 0xFF).
 * Packet mode: a whole number of 188-byte packets, sync byte 0x47 each,
 * re-PIDed (CC left for the caller). Writes at most cap_pkts packets into
 * out, *npkts set. 0, CE_FORMAT / CE_TRUNCATED / CE_TRAILING (bad data),
 * CE_OVERFLOW (cap). *bad_off = offset of the fault inside d.
 */
int mux_datagram_pkts(const uint8_t *d, size_t len, bool packet_mode, uint16_t pid, uint8_t *out,
	size_t cap_pkts, size_t *npkts, size_t *nsections, size_t *bad_off) WARN_UNUSED;

#endif
