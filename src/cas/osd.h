/*
 * osd.h - on-screen display instructions carried by ECMs and EMMs:
 * fingerprints (overt or covert: the card serial and/or box id shown on
 * screen) and messages (OSD / mail: scrolling or pop-up text, forced,
 * with an expiry). docs/ecm-format.md "Extension block" and
 * docs/emm-format.md "OSD record" have the byte tables.
 *
 * This module owns the two encodings and their bounded parsers only; no
 * crypto except osd_covert_code. Authentication is the carrier's: an ECM's
 * extension block is inside the bytes every package MAC and the GCM tag
 * cover (ecm.h), an EMM's OSD record inside its AES-GCM plaintext (emm.h).
 *
 * Fingerprint (OSD_KIND_FINGERPRINT), 28 bytes:
 *   kind u8 = 1 | flags u8 | fp_id u32 | x_pct u8 | y_pct u8 | fg RGB[3]
 *   | bg RGBA[4] | font_px u8 | duration_ms u32 | repeat u16
 *   | interval_s u32 | service u16
 * Message (OSD_KIND_MESSAGE), 31 + n bytes:
 *   kind u8 = 2 | flags u8 | scope u8 | group_id u32 | msg_id u32
 *   | expiry_s u64 | duration_s u16 | fg RGB[3] | bg RGBA[4] | font_px u8
 *   | text_len u16 | text[n] (strict UTF-8, no C0/C1 controls, no NUL)
 *
 * Every field is range-checked (osd_fp_check / osd_msg_check, shared by
 * the writer and the parser); a bad value is CE_RANGE or CE_FORMAT, never
 * an assert. All integers big-endian.
 */
#ifndef CASTELLAN_OSD_H
#define CASTELLAN_OSD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "lib/err.h"

#define OSD_KIND_FINGERPRINT 0x01
#define OSD_KIND_MESSAGE 0x02

#define OSD_FP_BYTES 28
#define OSD_MSG_HEADER_BYTES 31
#define OSD_MAX_TEXT_BYTES 720    /* >= 120 characters of 4-byte UTF-8, with room */
#define OSD_MIN_TEXT_CHARS 1
#define OSD_MAX_BYTES (OSD_MSG_HEADER_BYTES + OSD_MAX_TEXT_BYTES)
#define OSD_MIN_FONT_PX 8
#define OSD_MAX_FONT_PX 160
#define OSD_MAX_FP_DURATION_MS (10u * 60u * 1000u)
#define OSD_MAX_REPEAT 1000
#define OSD_MAX_INTERVAL_S (7u * 24u * 3600u)
#define OSD_MAX_MSG_DURATION_S 3600
#define OSD_COVERT_MAX_MS 200     /* "a few frames": at most 5 frames at 25 Hz */

/* Fingerprint flags. */
#define OSD_FP_COVERT 0x01        /* covert (else overt) */
#define OSD_FP_SERIAL 0x02        /* show the card serial */
#define OSD_FP_BOX 0x04           /* show the box (STB) id */
#define OSD_FP_RANDOM_POS 0x08    /* the box picks x/y at random (x_pct/y_pct ignored) */
#define OSD_FP_ENCODED 0x10       /* covert: an encoded code (osd_covert_code), not the numbers */
#define OSD_FP_FLAGS_ALL 0x1F

/* Message flags and scope. */
#define OSD_MSG_FORCED 0x01       /* cannot be dismissed for duration_s */
#define OSD_MSG_POPUP 0x02        /* pop-up (else a scroll at the bottom of the screen) */
#define OSD_MSG_FLAGS_ALL 0x03
enum osd_scope { OSD_SCOPE_GLOBAL = 0, OSD_SCOPE_GROUP = 1, OSD_SCOPE_INDIVIDUAL = 2 };

/* A fingerprint instruction (head-end input, box output). */
struct osd_fingerprint {
	uint8_t flags;            /* OSD_FP_*: at least one of SERIAL / BOX */
	uint32_t fp_id;           /* schedule id (non-zero): repeats and the covert code */
	uint8_t x_pct, y_pct;     /* 0..100, top-left of the text */
	uint8_t fg[3];            /* text colour RGB */
	uint8_t bg[4];            /* background RGBA (A 0 = transparent) */
	uint8_t font_px;          /* OSD_MIN_FONT_PX..OSD_MAX_FONT_PX */
	uint32_t duration_ms;     /* 1..OSD_MAX_FP_DURATION_MS; covert frames: <= OSD_COVERT_MAX_MS */
	uint16_t repeat;          /* showings, 1..OSD_MAX_REPEAT */
	uint32_t interval_s;      /* between showings: 0 iff repeat == 1 */
	uint16_t service;         /* 0: every service (EMM); else the service (informative) */
};

/* A message. text is NUL-terminated (text_len bytes before the NUL). */
struct osd_message {
	uint8_t flags;            /* OSD_MSG_* */
	uint8_t scope;            /* enum osd_scope */
	uint32_t group_id;        /* scope GROUP: package or region id; else 0 */
	uint32_t msg_id;          /* non-zero */
	uint64_t expiry_s;        /* unix seconds: not shown after it; non-zero */
	uint16_t duration_s;      /* 1..OSD_MAX_MSG_DURATION_S */
	uint8_t fg[3];
	uint8_t bg[4];
	uint8_t font_px;
	uint16_t text_len;        /* 1..OSD_MAX_TEXT_BYTES */
	char text[OSD_MAX_TEXT_BYTES + 1];
};

/* What one encoded OSD item is. */
struct osd_item {
	uint8_t kind;             /* OSD_KIND_* */
	union {
		struct osd_fingerprint fp;
		struct osd_message msg;
	} u;
};

/* Field rules (the parser's and the writer's): 0, CE_RANGE or CE_FORMAT. */
int osd_fp_check(const struct osd_fingerprint *fp) WARN_UNUSED;
int osd_msg_check(const struct osd_message *m) WARN_UNUSED;
/* Strict UTF-8 (utf8.h) of exactly len bytes, no NUL, no C0/C1 control
 * characters; *chars = code points. 0 or CE_FORMAT. */
int osd_text_check(const char *text, size_t len, size_t *chars) WARN_UNUSED;
/* Set text_len and text from a NUL-terminated string (checked). */
int osd_msg_set_text(struct osd_message *m, const char *text) WARN_UNUSED;

/* Encoders: 0, CE_ARG, the check's code, CE_OVERFLOW (cap). */
int osd_fp_encode(const struct osd_fingerprint *fp, uint8_t *out, size_t cap, size_t *out_len) WARN_UNUSED;
int osd_msg_encode(const struct osd_message *m, uint8_t *out, size_t cap, size_t *out_len) WARN_UNUSED;

/* Bounded parse of exactly one item (no trailing bytes): 0, CE_TRUNCATED,
 * CE_TRAILING, CE_FORMAT (unknown kind, bad UTF-8, unknown flag), CE_RANGE.
 * *out is zeroed on error. */
int osd_parse(const uint8_t *buf, size_t len, struct osd_item *out) WARN_UNUSED;

/*
 * The covert encoded form: 16 hex digits = AES-128(K, "castellan fp" ||
 * fp_id u32)[0..8], K the card's K_card. Only a holder of K_card (the
 * head-end, which derives every card's) can tell which card a code on a
 * pirate stream came from: it recomputes the code of each card for that
 * fp_id (one AES block per card). out holds 17 bytes. 0 or CE_CRYPTO.
 */
#define OSD_COVERT_CODE_CHARS 16
int osd_covert_code(const uint8_t k_card[16], uint32_t fp_id, char out[OSD_COVERT_CODE_CHARS + 1]) WARN_UNUSED;

/*
 * The text a box shows for fp: "<serial>" / "<stb_id>" / "<serial> <stb_id>"
 * (decimal), or the covert code when OSD_FP_ENCODED and k_card is given
 * (k_card NULL: the numbers). 0, CE_OVERFLOW, CE_CRYPTO.
 */
int osd_fp_text(const struct osd_fingerprint *fp, uint64_t serial, uint64_t stb_id, const uint8_t *k_card,
	char *out, size_t cap) WARN_UNUSED;

#endif
