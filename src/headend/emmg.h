/*
 * emmg.h - the EMMG side of the EMMG/PDG<=>MUX interface (ETSI TS 103 197):
 * a client that connects to a MUX and delivers EMM sections.
 *
 * Owns: the TCP connection to the MUX (and the UDP socket when data goes
 * over UDP), the session (channel_setup -> channel_status, stream_setup ->
 * stream_status with data_type EMM, stream_BW_request ->
 * stream_BW_allocation, data_provision, stream_close_request ->
 * stream_close_response, channel_close), answering the MUX's channel_test /
 * stream_test, pacing data at the allocated bandwidth, and reconnecting
 * (with a doubling back-off) when the MUX goes away. Sections are sent as
 * they are (section_TSpkt_flag 0) or packetized into TS packets (flag 1).
 * Used by `castellan emmg` (src/cli/cmd_emmg.c) and by the head-end's EMM
 * carousel. docs/emmg.md is the operator's page.
 *
 * Threading: one client is used by one thread. Calls block for at most the
 * timeouts they are given (the pacing of emmg_send waits inside, answering
 * tests meanwhile). No globals.
 *
 * Reference: ETSI TS 103 197; tests/data/simulcrypt/FACTS.md section 3.
 */
#ifndef CASTELLAN_EMMG_H
#define CASTELLAN_EMMG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "lib/err.h"

#define EMMG_DEFAULT_TIMEOUT_MS 5000u
#define EMMG_DEFAULT_RECONNECT_MS 1000u
#define EMMG_MAX_RECONNECT_MS 30000u
#define EMMG_DEFAULT_KBPS 100u
#define EMMG_UDP_MSG_BYTES 1400u   /* data_provision payload per datagram */
#define EMMG_TCP_MSG_BYTES 16384u  /* data_provision payload per TCP message */
#define EMMG_ADDR_BYTES 256

struct emmg_config {
	char mux[EMMG_ADDR_BYTES]; /* "host:port" of the MUX (TCP, and UDP with udp) */
	uint32_t client_id;        /* high 16 bits: CA_system_id */
	uint16_t channel_id;       /* data_channel_id, default 1 */
	uint16_t stream_id;        /* data_stream_id, default 1 */
	uint16_t data_id;          /* default 1 */
	uint8_t version;           /* EMMG<=>MUX protocol version 1..5, default 2 */
	bool packet_mode;          /* section_TSpkt_flag 1: send TS packets */
	uint16_t packet_pid;       /* PID of those packets (the MUX re-PIDs), 0x1FFF */
	bool udp;                  /* data_provision as UDP datagrams */
	uint16_t bandwidth_kbps;   /* asked in stream_BW_request; 0 = not stated */
	uint32_t timeout_ms;       /* connect and replies; default 5000 */
	uint32_t reconnect_ms;     /* first retry delay, doubling up to 30 s */
};

struct emmg_stats {
	uint64_t connects;          /* sessions set up */
	uint64_t connect_failures;
	uint64_t disconnects;
	uint64_t data_provisions;   /* messages sent */
	uint64_t sections_sent;
	uint64_t bytes_sent;        /* datagram bytes */
	uint64_t tests_answered;    /* channel_test / stream_test */
	uint64_t errors_received;   /* channel_error / stream_error from the MUX */
	uint16_t last_error_status; /* error_status of the last one */
	uint64_t bad_msgs;          /* undecodable messages from the MUX */
	uint32_t retry_wait_ms;     /* down: the wait before the next connect
	                               attempt (reconnect_ms doubling to 30 s); 0 up */
};

struct emmg;

/* Defaults: ids 1, version 2, sections over TCP, 100 kbit/s asked. */
void emmg_config_init(struct emmg_config *cfg);

/* Create a client (no I/O yet). 0, CE_ARG, CE_NOMEM. */
int emmg_new(const struct emmg_config *cfg, struct emmg **out) WARN_UNUSED;

/* Connect and set the session up: channel, stream, bandwidth. 0, CE_IO
 * (cannot connect), CE_TIMEOUT (no reply in time), CE_PROTO (the MUX
 * answered with an error: emmg_stats().last_error_status says which),
 * CE_CLOSED. On failure the connection is closed. */
int emmg_connect(struct emmg *e) WARN_UNUSED;

bool emmg_connected(const struct emmg *e);

/* The bandwidth the MUX granted, kbit/s (0 = unlimited: no bandwidth in
 * the allocation). */
uint16_t emmg_bandwidth(const struct emmg *e);

/*
 * Send n EMM sections (secs[i], lens[i] bytes; each a whole section of at
 * most 4096 bytes) as data_provision messages, paced at the granted
 * bandwidth (counted in TS bytes on the EMM PID). Waits inside for the
 * pacing, at most timeout_ms in all; answers the MUX's tests meanwhile.
 * When not connected it first reconnects, unless the back-off delay has not
 * passed (then CE_CLOSED at once). 0 when all were sent; CE_TIMEOUT with
 * *sent < n when the pacing needs more time; CE_ARG (bad section), CE_CLOSED
 * / CE_IO (connection lost; retried on the next call).
 */
int emmg_send(struct emmg *e, const uint8_t *const *secs, const size_t *lens, size_t n,
	int timeout_ms, size_t *sent) WARN_UNUSED;

/* Ask for kbps from now on: a stream_BW_request at once if connected (the
 * allocation's bandwidth then is emmg_bandwidth), else at the next connect.
 * 0, CE_ARG, or the request's error (the connection is then dropped and
 * set up again by the next send, asking kbps). */
int emmg_set_bandwidth(struct emmg *e, uint16_t kbps) WARN_UNUSED;

/* Serve the connection for up to timeout_ms: answer tests, note errors. 0 or
 * CE_CLOSED when the MUX closed it. */
int emmg_poll(struct emmg *e, int timeout_ms) WARN_UNUSED;

/* Send n sections in a loop, `loops` times (0: until *stop), at the granted
 * bandwidth, reconnecting with back-off when the MUX goes away (the
 * `castellan emmg` client). 0 when done or stopped, CE_ARG / CE_LIMIT when
 * a section cannot be sent at all. */
int emmg_send_loop(struct emmg *e, const uint8_t *const *secs, const size_t *lens, size_t n, uint64_t loops,
	const volatile int *stop) WARN_UNUSED;

/* Close the stream and the channel politely, then the socket. 0 or the
 * first error (the socket is closed anyway). */
int emmg_close(struct emmg *e);

void emmg_stats(const struct emmg *e, struct emmg_stats *out);
/* Make the next reconnect attempt due now (the back-off is kept: if that
 * attempt fails the wait after it is the next doubling). Tests, SIGHUP. */
void emmg_retry_now(struct emmg *e);

/* Close and free. NULL is fine. */
void emmg_free(struct emmg *e);

#endif
