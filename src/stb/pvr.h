/*
 * pvr.h - the reference box's recorder (PVR) with copy protection
 * (Schedule III C.6; docs/stb.md "Recording"). What the box descrambles
 * is written re-encrypted for this box only, under the usage rules the
 * head-end put in the channel's ECMs (cas/usage.h), and played back on the
 * same box only.
 *
 * Keys (stb/pvr_key.h): a recording key from the box's root (chip OTP
 * inside the chip; the device key of a cardless box), one per recording.
 * The recorder and the player reach them through struct pvr_keyer, so the
 * chip's keys stay in the chip process.
 *
 * What is recorded: every packet of the box's output except
 *   - packets still scrambled (no key: useless, and with the ECMs they
 *     would let another box play the programme),
 *   - the components of a service whose rules are copy_never (counted per
 *     service: stb_note_recorded, the report's record_refused_packets).
 * A copy_once service is recorded and the recording is marked
 * copy_no_more (no further copy). Rules change with the ECMs: the rules in
 * force when a chunk of packets comes back from stb_feed apply to it.
 *
 * File format (all integers big-endian; docs/stb.md has the table):
 *   header, PVR_HEADER_BYTES:
 *     magic "CASTLPVR" | version u8 = 1 | key_source u8 (1 chip, 2 device key)
 *     | service_id u16 (0: every service) | box_id u64 | copy_control u8
 *     | reserved u8 = 0 | chunk_pkts u16 = PVR_CHUNK_PKTS | retention_s u32
 *     | created_ms u64 | packets u64 | chunks u32 | rec_nonce[16]
 *     | tag[16] = GCM(K_rec, index PVR_HEADER_INDEX, AAD = the 64 bytes
 *       before it, no plaintext)
 *   then `chunks` chunks:
 *     index u32 (0, 1, ...) | npkts u16 (1..chunk_pkts; 0 only in an empty
 *     recording's one chunk) | flags u8 (bit 0: last) | reserved u8 = 0
 *     | ct[npkts * 188] | tag[16] = GCM(K_rec, index, AAD = the 8 bytes
 *       before ct, the packets)
 *   nothing after the chunk flagged last.
 * Why AES-128-GCM per chunk (not CBC per packet payload, not CISSA):
 * one pass gives secrecy and integrity (a flipped byte anywhere is
 * refused, not played as garbage), the index in the nonce and AAD refuses
 * reordered or spliced chunks, the header's counts and the last flag refuse
 * a truncated file; CBC or CISSA (CBC with a fixed IV) would need a second
 * MAC pass and CISSA's fixed IV leaks equal payload starts. The file is
 * Castellan's own container, so TS headers need not stay clear.
 */
#ifndef CASTELLAN_STB_PVR_H
#define CASTELLAN_STB_PVR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include "lib/err.h"
#include "cas/usage.h"
#include "stb/pvr_key.h"

#define PVR_MAGIC "CASTLPVR"
#define PVR_VERSION 1
#define PVR_HEADER_AUTH_BYTES 64   /* the header bytes its tag covers */
#define PVR_HEADER_BYTES (PVR_HEADER_AUTH_BYTES + PVR_TAG_BYTES)
#define PVR_CHUNK_HEAD_BYTES 8
#define PVR_CHUNK_PKTS 64          /* one chip request (stb/chip.h) carries a whole chunk */
#define PVR_MAX_CHUNKS 0x7FFFFFFFu
#define PVR_LAST 0x01

enum pvr_source { PVR_SRC_CHIP = 1, PVR_SRC_DEVICE = 2 };

/* Where the recording keys are: crypt as pvr_keys_crypt. */
struct pvr_keyer {
	void *ctx;
	uint8_t source;            /* enum pvr_source */
	uint64_t box_id;           /* chip id, or card serial */
	int (*crypt)(void *ctx, int enc, const uint8_t nonce[PVR_NONCE_BYTES], uint32_t index, const uint8_t *aad,
		size_t aad_len, uint8_t *buf, size_t len, uint8_t tag[PVR_TAG_BYTES]);
	void (*destroy)(void *ctx);
};
/* A keyer in this process from a device key (16 or 32 bytes, copied). */
int pvr_keyer_device(const uint8_t *key, size_t len, uint64_t box_id, struct pvr_keyer *out) WARN_UNUSED;
/* A keyer whose keys stay in the chip (chip_link_pvr_crypt); the box id is
 * the chip's (INFO). l must outlive the keyer. */
struct chip_link;
int pvr_keyer_chip(struct chip_link *l, struct pvr_keyer *out) WARN_UNUSED;
void pvr_keyer_free(struct pvr_keyer *k);

/* The header, parsed. */
struct pvr_info {
	uint8_t source;
	uint16_t service_id;
	uint64_t box_id;
	uint8_t copy_control;      /* copy_free or copy_no_more */
	uint32_t retention_s;
	uint64_t created_ms;
	uint64_t packets;
	uint32_t chunks;
	uint8_t nonce[PVR_NONCE_BYTES];
};
/* Bounded parse of the 80 header bytes, no crypto: 0, CE_TRUNCATED,
 * CE_FORMAT (magic, version, source, reserved, chunk size), CE_RANGE. */
int pvr_header_parse(const uint8_t *buf, size_t len, struct pvr_info *out) WARN_UNUSED;

/* ---- recording ---- */
struct stb;
struct pvr_rec;
/* Create path (0600, truncated) for a recording by keyer's box. 0, CE_IO,
 * CE_NOMEM, CE_ARG. */
int pvr_rec_open(const char *path, const struct pvr_keyer *k, uint16_t service_id, uint64_t now_ms,
	struct pvr_rec **out) WARN_UNUSED;
/* Packets stb_feed gave back (box: for the rules; NULL: every packet is
 * copy_free). 0, CE_IO, CE_CRYPTO... (the recording is then unusable). */
int pvr_rec_feed(struct pvr_rec *r, struct stb *box, const uint8_t *pkts, size_t n) WARN_UNUSED;
/* Write the last chunk and the header, close. 0 or CE_IO...; frees r. */
struct pvr_rec_stats {
	uint64_t packets, chunks;
	uint64_t dropped_scrambled, refused_copy_never;
	uint8_t copy_control;
	uint32_t retention_s;
};
int pvr_rec_close(struct pvr_rec *r, struct pvr_rec_stats *st) WARN_UNUSED;
/* Abandon (an error): close and unlink. */
void pvr_rec_abort(struct pvr_rec *r);

/* ---- playback ---- */
/*
 * Check and play the recording f on keyer's box: the header (format, the
 * box id, its tag, the retention limit at now_ms), then every chunk's tag,
 * before the first packet goes to sink; then the packets, in chunks.
 * 0; CE_NOT_ENTITLED (made by another box), CE_MAC (a tag: tampered, or
 * another box with the same id), CE_EXPIRED (retention), CE_FORMAT /
 * CE_TRUNCATED / CE_TRAILING (the file), or sink's error. *info (may be
 * NULL) gets the header once parsed.
 */
int pvr_play(const struct pvr_keyer *k, FILE *f, uint64_t now_ms, int (*sink)(void *ctx, const uint8_t *pkts,
	size_t n), void *ctx, struct pvr_info *info) WARN_UNUSED;

#endif
