/*
 * emm.h - Castellan's EMM format, version 1 (docs/emm-format.md has the byte
 * tables and the on-air costs), the head-end EMM issuer, and the box-side
 * card state that EMMs change.
 *
 * An EMM is one MPEG private section (section_syntax_indicator 0):
 *
 *   0x82 unique EMM: one card. Header in clear (format version,
 *        CA_system_id, card serial, sequence number, timestamp, nonce,
 *        ciphertext length), then AES-128-GCM under K_card(serial) (keys.h)
 *        with those 37 header bytes as AAD.
 *   0x83 group EMM: the records of several cards in one section (same
 *        format version, CA_system_id and timestamp, said once); each record
 *        is byte for byte the tail of that card's unique EMM and is opened
 *        the same way, so the head-end packs unique EMMs without
 *        re-encrypting them (emm_group_pack).
 *
 * The plaintext is a list of TLV records (tag u8, length u8, value):
 * entitlement (package mask, start, finish, optional extended package
 * ids), package keys (epoch, pkg, K_pkg) and commands (block, unblock,
 * pair with an STB id, unpair, reset the anti-sharing counter, set the
 * smartcard's request-counter limits).
 *
 * Parsing is bounded (lib/cursor.h); every bad case returns a CE_* code:
 * CE_TRUNCATED / CE_TRAILING / CE_FORMAT / CE_RANGE / CE_LIMIT for bad
 * bytes, CE_NOT_FOUND for an EMM of another card or CA system, CE_MAC when
 * the tag does not verify. The sequence number is checked by the card state
 * (emm_state_apply: CE_REPLAY), after the tag.
 *
 * Normative references: ISO/IEC 13818-1 2.4.4.10 (private_section), ETSI
 * EN 300 468 / TR 101 211 (table_id 0x82-0x8F: CA message, EMM), NIST SP
 * 800-38D (GCM), SP 800-108 (KBKDF, via keys.h).
 */
#ifndef CASTELLAN_EMM_H
#define CASTELLAN_EMM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "lib/err.h"
#include "cas/entitlement.h"
#include "cas/keys.h"
#include "cas/osd.h"

#define EMM_TABLE_UNIQUE 0x82
#define EMM_TABLE_GROUP 0x83
#define EMM_FORMAT_V1 0x01
#define EMM_MAX_SECTION 4096       /* private section: 3 + 12-bit length, capped */
#define EMM_NONCE_BYTES 12
#define EMM_TAG_BYTES 16
#define EMM_AAD_BYTES 37           /* version..ct_len of a unique EMM */
#define EMM_UNIQUE_OVERHEAD 56     /* unique EMM bytes besides the ciphertext */
#define EMM_RECORD_OVERHEAD 42     /* group record bytes besides the ciphertext */
#define EMM_GROUP_HEADER 15        /* group section bytes before the records */
#define EMM_MAX_PLAINTEXT 3584     /* the largest unique EMM's is 3139 bytes (emm.c) */
#define EMM_MAX_EXT_PACKAGES CAS_MAX_EXT_PACKAGES /* extended package ids (> 31) in one grant */
/* current + next epoch of the 32 mask packages and the extended ones */
#define EMM_MAX_KEYS (2 * (CAS_MAX_PACKAGES + EMM_MAX_EXT_PACKAGES))
#define EMM_MAX_GROUP_CARDS 255

/* Plaintext record tags. */
#define EMM_T_ENTITLEMENT 0x01     /* packages u32 | start u64 | finish u64 | ext u16 * n */
#define EMM_T_PKG_KEY 0x02         /* epoch u32 | pkg u8 | key[16] (packages 0..31) */
#define EMM_T_PKG_KEY_EXT 0x03     /* epoch u32 | pkg u16 | key[16] (extended packages >= 32) */
#define EMM_T_BLOCK 0x10           /* empty */
#define EMM_T_UNBLOCK 0x11         /* empty */
#define EMM_T_PAIR 0x12            /* stb_id u64 (non-zero) [| K_pair[16]: chip pairing] */
#define EMM_T_UNPAIR 0x13          /* empty */
#define EMM_T_RESET_COUNTER 0x14   /* empty */
#define EMM_T_COUNTER_LIMITS 0x15  /* max_channels u8 | window_s u32 | block_s u32 (smartcard) */
/* OSD (issue 13): one osd.h item (fingerprint or message) as a 0x20 record
 * holding its first <= 255 bytes, then 0x21 records right after it holding
 * the rest, in order (a message is up to OSD_MAX_BYTES). */
#define EMM_T_OSD 0x20
#define EMM_T_OSD_MORE 0x21
#define EMM_MAX_OSD 4              /* OSD items in one EMM */

/* Request-counter limits a smartcard applies (EMM_T_COUNTER_LIMITS). */
#define EMM_LIMITS_BYTES 9
#define EMM_MAX_LIMIT_CHANNELS 16  /* = CARD_MAX_CHANNELS */
struct emm_limits {
	uint8_t max_channels;        /* N distinct channels, 1..EMM_MAX_LIMIT_CHANNELS */
	uint32_t window_s;           /* sliding window, >= 1 */
	uint32_t block_s;            /* self-block duration when pushed past N */
};

/* K_pair in a PAIR record (chip pairing, docs/smartcard.md "Pairing"). */
#define EMM_PAIR_KEY_BYTES 16

/* Command bits of struct emm_content. */
#define EMM_CMD_BLOCK 0x01u
#define EMM_CMD_UNBLOCK 0x02u
#define EMM_CMD_PAIR 0x04u
#define EMM_CMD_UNPAIR 0x08u
#define EMM_CMD_RESET_COUNTER 0x10u

/* What a subscription grants (head-end input, box output). */
struct emm_grant {
	uint32_t packages;           /* 32-bit access-criteria mask */
	uint64_t start_s, finish_s;  /* unix seconds, start <= finish */
	size_t next;                 /* extended package ids (>= 32), keyed like the mask's */
	uint16_t ext[EMM_MAX_EXT_PACKAGES];
};

/* The decrypted content of one EMM (or what emm_build encodes). Wipe with
 * emm_content_wipe (it holds package keys). */
struct emm_content {
	bool has_grant;
	struct emm_grant grant;
	size_t nkeys;
	struct pkg_key keys[EMM_MAX_KEYS];
	uint32_t cmds;               /* EMM_CMD_* */
	uint64_t pair_stb_id;        /* with EMM_CMD_PAIR */
	bool has_pair_key;           /* PAIR record carries K_pair (24-byte form) */
	uint8_t pair_key[EMM_PAIR_KEY_BYTES]; /* secret: K_pair for the box's chip */
	bool has_limits;             /* EMM_T_COUNTER_LIMITS present */
	struct emm_limits limits;
	size_t nosd;                 /* OSD items (EMM_T_OSD), validated by osd_parse */
	struct osd_item osd[EMM_MAX_OSD];
};
void emm_content_wipe(struct emm_content *c);

/* One card's record, parsed, still encrypted: points into the section. */
struct emm_view {
	uint8_t table_id;
	uint16_t ca_system_id;
	uint64_t serial;
	uint32_t seq;
	uint64_t timestamp_ms;
	const uint8_t *nonce;
	const uint8_t *ct;
	size_t ct_len;
	const uint8_t *tag;
};

/*
 * Bounded parse of a unique or group EMM section, no crypto. The whole
 * section is checked (every group record too), then the record of card
 * `serial` is returned: CE_NOT_FOUND if the (valid) section has none.
 */
int emm_parse(const uint8_t *sec, size_t len, uint64_t serial, struct emm_view *v) WARN_UNUSED;
/* Decrypt and authenticate with K_card (CE_MAC), then parse the plaintext
 * records strictly into out (CE_FORMAT, CE_LIMIT for > EMM_MAX_KEYS keys,
 * CE_RANGE). out is wiped on error. */
int emm_open(const struct emm_view *v, const uint8_t k_card[CARD_KEY_BYTES], struct emm_content *out) WARN_UNUSED;

/* ---- head-end ---- */

struct emm_issuer; /* opaque: card key derivation, cached package keys, cipher contexts */
/* ks must outlive the issuer. 0, CE_NOMEM, CE_CRYPTO. */
int emm_issuer_new(const struct keystore *ks, struct emm_issuer **out) WARN_UNUSED;
void emm_issuer_free(struct emm_issuer *is);
/*
 * The issuer seals with AES-NI + OpenSSL's GCM mode when the CPU has AES-NI
 * and SSE4.1 (same bytes; whole EMM about 2x faster than with an EVP re-key
 * per card), else through OpenSSL EVP (the reference path).
 * set_reference(true) forces EVP (tests, bench); set_reference(false)
 * returns false if there is no fast path. An issuer is not thread-safe:
 * use one per thread (each has its own random nonce prefix).
 */
bool emm_issuer_set_reference(struct emm_issuer *is, bool reference);
bool emm_issuer_is_reference(const struct emm_issuer *is);

/*
 * Unique EMM of card `serial` that replaces its entitlement by g and gives
 * it K_pkg for the current and the next epoch (at now_ms) of each package
 * of g->packages, for those epochs that overlap [start, finish] only (an
 * expired subscription gets no key; packages 0 revokes everything).
 * seq must be > every seq this card has accepted (the card refuses the
 * rest). 0, CE_ARG, CE_RANGE, CE_OVERFLOW (cap), CE_CRYPTO.
 */
int emm_build_unique(struct emm_issuer *is, uint64_t serial, uint32_t seq, const struct emm_grant *g,
	uint64_t now_ms, uint8_t *out, size_t cap, size_t *out_len) WARN_UNUSED;
/* What emm_build_unique_ex adds to a grant: commands (EMM_CMD_* bits; with
 * PAIR, pair_stb_id and optionally K_pair: the 24-byte form), and whether
 * to leave the package keys out (a card that must pair with a box first
 * gets its grant but no key: no CW anywhere). */
struct emm_extra {
	uint32_t cmds;
	uint64_t pair_stb_id;
	bool has_pair_key;
	uint8_t pair_key[EMM_PAIR_KEY_BYTES]; /* secret */
	bool no_keys;
};
/* emm_build_unique plus x (NULL: the same as emm_build_unique). CE_ARG for
 * BLOCK with UNBLOCK, PAIR with UNPAIR, PAIR with stb_id 0. */
int emm_build_unique_ex(struct emm_issuer *is, uint64_t serial, uint32_t seq, const struct emm_grant *g,
	const struct emm_extra *x, uint64_t now_ms, uint8_t *out, size_t cap, size_t *out_len) WARN_UNUSED;
/* Unique EMM with commands only (EMM_CMD_* bits; stb_id with PAIR). */
int emm_build_command(struct emm_issuer *is, uint64_t serial, uint32_t seq, uint32_t cmds, uint64_t stb_id,
	uint64_t now_ms, uint8_t *out, size_t cap, size_t *out_len) WARN_UNUSED;
/* Unique EMM that pairs card `serial` with one box's chip: PAIR record
 * stb_id | k_pair (K_pair = chip_pairing_key(K_v(chip), serial), computed
 * by the head-end from the vendor key file). stb_id != 0. 0, CE_ARG,
 * CE_OVERFLOW, CE_CRYPTO. */
int emm_build_pair(struct emm_issuer *is, uint64_t serial, uint32_t seq, uint64_t stb_id,
	const uint8_t k_pair[EMM_PAIR_KEY_BYTES], uint64_t now_ms, uint8_t *out, size_t cap, size_t *out_len) WARN_UNUSED;
/* Unique EMM that sets the card's request-counter limits (a smartcard
 * applies them; the cardless client accepts and ignores them). 0, CE_ARG
 * (max_channels outside 1..16, window_s 0), CE_OVERFLOW, CE_CRYPTO. */
int emm_build_limits(struct emm_issuer *is, uint64_t serial, uint32_t seq, const struct emm_limits *l,
	uint64_t now_ms, uint8_t *out, size_t cap, size_t *out_len) WARN_UNUSED;
/* Unique EMM carrying one OSD item (a per-card fingerprint or a message;
 * a group or global message is one such record per card, packed with
 * emm_group_pack). 0, CE_ARG, the osd check's code, CE_OVERFLOW, CE_CRYPTO. */
int emm_build_osd(struct emm_issuer *is, uint64_t serial, uint32_t seq, const struct osd_item *item,
	uint64_t now_ms, uint8_t *out, size_t cap, size_t *out_len) WARN_UNUSED;
/* emm_build_unique_ex's EMM (same grant, keys, commands and pairing from x,
 * which may be NULL) that also carries OSD
 * items (a card's messages and fingerprints, from the carousel): items[0..n)
 * in order, as many as fit EMM_MAX_PLAINTEXT (*n_sent says how many; the
 * rest wait for a smaller EMM). n <= EMM_MAX_OSD. Same errors. */
int emm_build_unique_osd(struct emm_issuer *is, uint64_t serial, uint32_t seq, const struct emm_grant *g,
	const struct emm_extra *x, const struct osd_item *const *items, size_t n, size_t *n_sent, uint64_t now_ms,
	uint8_t *out, size_t cap, size_t *out_len) WARN_UNUSED;
/* Unique EMM of any content, encoded as given (the card validates it:
 * tests build bad but authentic EMMs with it). */
int emm_build(struct emm_issuer *is, uint64_t serial, uint32_t seq, uint64_t now_ms, const struct emm_content *c,
	uint8_t *out, size_t cap, size_t *out_len) WARN_UNUSED;
/* Pack n unique EMMs (same CA_system_id and timestamp: CE_ARG otherwise)
 * into one group EMM. CE_RANGE if it would exceed EMM_MAX_SECTION. */
int emm_group_pack(const uint8_t *const *uniques, const size_t *lens, size_t n, uint8_t *out, size_t cap,
	size_t *out_len) WARN_UNUSED;

/* ---- box side: the state EMMs change ---- */

struct emm_card_state {
	uint32_t last_seq;        /* 0 = no EMM accepted yet */
	bool blocked;
	uint64_t paired_stb_id;   /* 0 = not paired */
	uint32_t zap_count;       /* anti-sharing counter (reset by EMM) */
	bool has_ent;             /* an entitlement EMM was accepted */
	struct entitlement ent;   /* packages, period, keys (<= EMM_MAX_KEYS) */
};
void emm_state_wipe(struct emm_card_state *st);
/*
 * Apply an opened EMM: CE_REPLAY if v->seq <= st->last_seq (st unchanged);
 * else last_seq = seq, an entitlement replaces ent and its keys, commands
 * apply. card_serial/ca_system_id are recorded in ent.
 */
int emm_state_apply(struct emm_card_state *st, const struct emm_view *v, const struct emm_content *c) WARN_UNUSED;
/* State file: "CSTLST01" | serial u64 | nonce | ct_len u16 | AES-128-GCM
 * under K_card | tag (docs/emm-format.md). decode: CE_MAC if altered or of
 * another card, CE_FORMAT. encode: malloc'ed, free with secret_free. */
int emm_state_encode(const struct emm_card_state *st, uint64_t serial, const uint8_t k_card[CARD_KEY_BYTES],
	uint8_t **out, size_t *out_len) WARN_UNUSED;
int emm_state_decode(const uint8_t *buf, size_t len, uint64_t serial, const uint8_t k_card[CARD_KEY_BYTES],
	struct emm_card_state *st) WARN_UNUSED;

#endif
