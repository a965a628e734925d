/*
 * tsio.h - transport stream input and output endpoints, shared by the
 * scrambler, the MUX and the set-top box descrambler.
 *
 * Owns: opening a TS source or sink from a URI, reading whole 188-byte
 * packets with resynchronisation on a lost sync byte, writing packets
 * (7 per UDP datagram by default), and per-endpoint counters.
 * References: ISO/IEC 13818-1 2.4.3 (packet, sync byte); ETSI TS 102 034
 * 7.1 (TS over UDP/IP: an integral number of packets, at most 7, per
 * datagram; optional RTP header, RFC 3550, stripped on input).
 *
 * URIs (docs/ts-io.md has the full table):
 *   PATH | file:PATH            a file (input: read; output: create/truncate)
 *   -                           stdin (input) / stdout (output)
 *   udp://[group@][addr]:port   input: bind addr:port (any address when
 *                               addr is empty); when addr is multicast, join
 *                               it; when group@ is given, join group on the
 *                               interface whose address is addr.
 *   udp://[local@]host:port     output: send to host:port (unicast or
 *                               multicast), from local address local.
 *   output query options: ?ttl=N (1..255) &pkts=N (1..7 packets/datagram)
 * IPv4 and IPv6 unicast; IPv4 multicast.
 *
 * Neither endpoint is thread-safe; one thread per endpoint.
 */
#ifndef CASTELLAN_TSIO_H
#define CASTELLAN_TSIO_H

#include <stddef.h>
#include <stdint.h>
#include "lib/err.h"
#include "ts/ts.h"

#define TS_UDP_MAX_PKTS 7 /* 7 * 188 = 1316 bytes: fits a 1500-byte MTU */

struct ts_io_stats {
	uint64_t packets;       /* whole packets delivered / accepted */
	uint64_t bytes;         /* bytes read from / written to the OS */
	uint64_t resyncs;       /* times the input lost sync and searched */
	uint64_t dropped_bytes; /* input bytes skipped while resyncing or cut */
	uint64_t datagrams;     /* UDP datagrams received / sent */
	uint64_t send_errors;   /* output datagrams the OS refused (UDP only) */
};

struct ts_in;
struct ts_out;

/* Open an input. 0, or CE_ARG (bad URI), CE_IO (open/bind/join failed),
 * CE_NOT_FOUND (host does not resolve), CE_NOMEM, CE_UNSUPPORTED (IPv6
 * multicast). *out is NULL on failure; free with ts_in_close. */
int ts_in_open(const char *uri, struct ts_in **out) WARN_UNUSED;
/* Wait at most timeout_ms for data on each ts_in_read (-1: block, the
 * default). Applies to every kind of input (regular files are always
 * ready). */
void ts_in_set_timeout_ms(struct ts_in *in, int timeout_ms);
/*
 * Read up to max_pkts whole packets into pkts (max_pkts * 188 bytes).
 * Blocks until at least one packet is available (or the timeout passes),
 * then returns what is ready without waiting for more. Returns 0 with *n = 0
 * at end of input (files, stdin; never for UDP), CE_TIMEOUT with *n = 0 when
 * the timeout passed, CE_IO on a read error.
 */
int ts_in_read(struct ts_in *in, uint8_t *pkts, size_t max_pkts, size_t *n) WARN_UNUSED;
void ts_in_stats(const struct ts_in *in, struct ts_io_stats *st);
/* The local UDP port the input is bound to (0 if not UDP); for port 0 URIs. */
uint16_t ts_in_port(const struct ts_in *in);
/* The file descriptor to wait on (e.g. with libevent); reads still go
 * through ts_in_read. */
int ts_in_fd(const struct ts_in *in);
void ts_in_close(struct ts_in *in);

/* Open an output. Same errors as ts_in_open. */
int ts_out_open(const char *uri, struct ts_out **out) WARN_UNUSED;
/* Write n packets (n * 188 bytes; each must start with 0x47: CE_FORMAT
 * otherwise, nothing written). Files are buffered; UDP sends one datagram per
 * pkts-per-datagram packets. A refused UDP send is counted, not an error.
 * 0, CE_FORMAT, CE_IO. */
int ts_out_write(struct ts_out *out, const uint8_t *pkts, size_t n) WARN_UNUSED;
/* Write out what is buffered (a short final datagram for UDP). */
int ts_out_flush(struct ts_out *out) WARN_UNUSED;
void ts_out_stats(const struct ts_out *out, struct ts_io_stats *st);
/* Flush, close, free (NULL is fine). Returns the flush/close status. */
int ts_out_close(struct ts_out *out);

#endif
