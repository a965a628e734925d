/*
 * ota.h - over-the-air delivery of signed CAS client modules: a data
 * carousel of private sections on a PID announced in the PSI (head-end
 * side), and the box's collector. docs/ota.md has the byte tables.
 * In the ts layer (it needs only lib and ts) so that both the head-end,
 * which sends it, and the box (client/box.c), which collects it, see it.
 *
 * Announcement: a data service in the PAT whose PMT has one elementary
 * stream of stream_type 0x05 (ISO/IEC 13818-1 private sections) carrying a
 * registration_descriptor (tag 0x05) with format_identifier "CSOT".
 *
 * Carousel section (long form, ISO/IEC 13818-1 2.4.4.10, CRC_32):
 *   off len field
 *     0  1  table_id 0xC0 (OTA_TABLE_ID, user private)
 *     1  2  section_syntax_indicator 1, private_indicator 1, '11',
 *           section_length (12 bits)
 *     3  2  table_id_extension: carousel id
 *     5  1  '11', version_number (5 bits), current_next_indicator 1
 *     6  1  section_number = block number
 *     7  1  last_section_number = number of blocks - 1
 *     8  4  vendor_id of the module
 *    12  4  module length M (1..OTA_MAX_MODULE)
 *    16  n  block: module bytes [k*OTA_BLOCK_BYTES, ...), n = OTA_BLOCK_BYTES
 *           except for the last block
 *   16+n 4  CRC_32
 * The CRC catches transmission errors only; the module's own signature
 * (src/cas/module.h) is what the box trusts, so the same bytes may equally
 * come over HTTP (`castellan module verify` / loader_install on a file).
 *
 * The collector is bounded: it follows PAT -> PMT -> the CSOT PID, checks
 * every section (CRC, lengths, block geometry, agreement with the other
 * blocks of the same version) and never allocates from a declared length
 * beyond OTA_MAX_MODULE. A new version restarts collection.
 */
#ifndef CASTELLAN_TS_OTA_H
#define CASTELLAN_TS_OTA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "lib/err.h"

#define OTA_TABLE_ID 0xC0
#define OTA_BLOCK_BYTES 4000
#define OTA_MAX_MODULE (68u * 1024u)
#define OTA_STREAM_TYPE 0x05
#define OTA_FORMAT_ID "CSOT"
#define OTA_MAX_PMTS 16

struct ota_params {
	uint16_t pid;          /* carousel PID */
	uint16_t carousel_id;  /* table_id_extension */
	uint8_t version;       /* 0..31: bump for each new module */
	uint32_t vendor_id;
};

/* One carousel cycle as TS packets (each section packetized, PUSI, CC from
 * *cc). *pkts malloc'ed (npkts x 188), caller frees. */
int ota_carousel_build(const struct ota_params *p, const uint8_t *mod, size_t len, uint8_t *cc, uint8_t **pkts,
	size_t *npkts) WARN_UNUSED;
/* One section (block k) into out (cap >= 4096). For tests and fuzzing. */
int ota_section_build(const struct ota_params *p, const uint8_t *mod, size_t len, unsigned k, uint8_t *out,
	size_t cap, size_t *out_len) WARN_UNUSED;
/* PAT (tsid, one program) + its PMT announcing the carousel: 2 packets into
 * out (376 bytes). */
int ota_psi_build(uint16_t tsid, uint16_t program, uint16_t pmt_pid, uint16_t ota_pid, uint8_t out[376]) WARN_UNUSED;
/* The carousel multiplexed into a stream (ota_mux.c; `castellan module
 * carousel --into`): in[0..nin) packets in order, each PAT packet that holds
 * one whole PAT section gaining program -> pmt_pid; from input packet start
 * on, after every `every`-th input packet (cycles times) the carousel's PMT
 * (psi's second packet, from ota_psi_build) and one carousel cycle
 * car[0..ncar), with continuity counters of their own. *out malloc'ed,
 * *nout packets. CE_ARG (every 0), CE_RANGE (sizes), CE_NOMEM. */
int ota_mux_into(const uint8_t *in, size_t nin, const uint8_t *car, size_t ncar, const uint8_t psi[376],
	uint16_t program, uint16_t pmt_pid, uint64_t start, uint64_t cycles, uint64_t every, uint8_t **out,
	size_t *nout) WARN_UNUSED;

/* Parsed carousel section header (ota_section_parse). */
struct ota_section {
	uint16_t carousel_id;
	uint8_t version;
	uint8_t block, last_block;
	uint32_t vendor_id;
	uint32_t module_len;
	const uint8_t *data;   /* points into the section */
	size_t data_len;
};
/* Bounded parse + CRC + geometry. 0, CE_TRUNCATED, CE_FORMAT, CE_CRC,
 * CE_RANGE, CE_TRAILING. */
int ota_section_parse(const uint8_t *sec, size_t len, struct ota_section *out) WARN_UNUSED;

struct ota_rx;
struct ota_rx_stats {
	uint64_t sections_ok, sections_bad, modules_complete;
	uint16_t pid;          /* carousel PID found, 0x1FFF none yet */
};
int ota_rx_new(struct ota_rx **out) WARN_UNUSED;
void ota_rx_free(struct ota_rx *rx);
/* Feed whole TS packets. 0, or CE_ARG (never for stream content). */
int ota_rx_feed(struct ota_rx *rx, const uint8_t *pkts, size_t npkts) WARN_UNUSED;
/* The newest complete module, once per completion: *mod malloc'ed (caller
 * frees). CE_NOT_FOUND while none is complete. */
int ota_rx_take(struct ota_rx *rx, uint8_t **mod, size_t *len, uint32_t *vendor_id) WARN_UNUSED;
void ota_rx_stats(const struct ota_rx *rx, struct ota_rx_stats *out);

#endif
