/*
 * applet.h - the Castellan smartcard application: what runs on the card.
 *
 * Owns: the card's APDU interface (ISO/IEC 7816-4 command/response pairs,
 * CLA 0x80, command chaining and extended Lc), its persistent state (keys,
 * entitlement, EMM sequence, block flag, pairing, request counter) and the
 * rules that change it. docs/smartcard.md has the APDUs as byte tables.
 *
 * Portable on purpose: no heap, no OS call, fixed buffers sized below; the
 * caller owns the struct (static or its own allocation). The two things a
 * card OS would provide are behind small interfaces: persistent memory
 * (struct card_eeprom, card/eeprom.h: a file on a PC) and the crypto
 * primitives (here the cas/ecm.h and cas/emm.h openers, i.e. OpenSSL).
 *
 * The card has no clock: its time is the newest timestamp of an
 * authenticated ECM or EMM it accepted (card time). Every state change is
 * built in a scratch copy, written to the EEPROM, and only then made the
 * live state: a refused or unauthenticated message, or a failed EEPROM
 * write, changes nothing.
 *
 * Normative references: ISO/IEC 7816-4 (APDU structure, status words,
 * command chaining), ISO/IEC 7816-3 (ATR), docs/ecm-format.md,
 * docs/emm-format.md.
 */
#ifndef CASTELLAN_CARD_APPLET_H
#define CASTELLAN_CARD_APPLET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "lib/err.h"
#include "cas/keys.h"
#include "cas/emm.h"
#include "card/eeprom.h"

/* ---- APDU interface (docs/smartcard.md) ---- */
#define CARD_CLA 0x80
#define CARD_CLA_CHAIN 0x10        /* OR-ed into CLA: more parts follow */
#define CARD_INS_INFO 0x10         /* read card info */
#define CARD_INS_ECM 0x20          /* ECM section -> CWs */
#define CARD_INS_EMM 0x30          /* EMM section (unique or group) */
#define CARD_INS_PERSONALIZE 0x40  /* blank card <- personalization record */
#define CARD_INS_ERASE 0x50        /* erase token -> blank card */
#define CARD_INS_OSD 0x60          /* issue 13: read an OSD item of the last EMM
                                    * (data: index u8 | chunk u8; answer: item
                                    * length u16 | up to CARD_OSD_CHUNK bytes
                                    * from chunk * CARD_OSD_CHUNK) */
#define CARD_OSD_CHUNK 250

/* Status words. ISO 7816-4 where one fits, 94xx (proprietary) otherwise. */
#define SW_OK 0x9000
#define SW_WRONG_LENGTH 0x6700
#define SW_BAD_MAC 0x6982          /* security status not satisfied */
#define SW_BLOCKED 0x6983          /* card blocked (head-end or counter) */
#define SW_REPLAY 0x6984           /* stale ECM / replayed EMM */
#define SW_STATE 0x6985            /* conditions of use: blank, programmed */
#define SW_CHAIN 0x6883            /* last command of the chain expected */
#define SW_BAD_DATA 0x6A80         /* malformed section or record */
#define SW_NOT_FOUND 0x6A88        /* EMM of another card / CA system */
#define SW_WRONG_P1P2 0x6B00
#define SW_UNKNOWN_INS 0x6D00
#define SW_UNKNOWN_CLA 0x6E00
#define SW_MEMORY 0x6581           /* EEPROM write failed: nothing changed */
#define SW_INTERNAL 0x6F00
#define SW_NOT_ENTITLED 0x9401
#define SW_EXPIRED 0x9402
#define SW_NO_KEY 0x9403
#define SW_COUNTER 0x9404          /* request counter exceeded: now blocked */

/* Status word <-> CE_* code (card_sw_to_err(SW_OK) == 0). */
int card_sw_to_err(uint16_t sw);
uint16_t card_err_to_sw(int err);

/* ---- sizes ---- */
#define CARD_MAX_DATA EMM_MAX_SECTION  /* largest command data (after chaining) */
#define CARD_MAX_RESP 256              /* largest response data */
#define CARD_MAX_KEYS EMM_MAX_KEYS
#define CARD_MAX_CHANNELS 16           /* largest request-counter limit */
#define CARD_EEPROM_BYTES 4096 /* the largest image (128 keys, 32 extended ids): about 3.2 KB */
#define CARD_INFO_BYTES 72
#define CARD_CW_RESP_BYTES 36
#define CARD_PERSO_BYTES 36
#define CARD_TOKEN_BYTES 16
#define CARD_PAIR_KEY_BYTES 16

/* Defaults written by the personalization tool. */
#define CARD_DEFAULT_MAX_CHANNELS 2
#define CARD_DEFAULT_WINDOW_S 60u
#define CARD_DEFAULT_BLOCK_S (24u * 3600u)
#define CARD_REPLAY_TOLERANCE_MS (60u * 1000u)
#define CARD_PERSIST_INTERVAL_MS (30u * 1000u) /* card-time refreshes written at most this often */

enum card_life { CARD_LIFE_BLANK = 0, CARD_LIFE_PERSONALIZED = 1 };
enum card_block { CARD_BLOCK_NONE = 0, CARD_BLOCK_HEADEND = 1, CARD_BLOCK_COUNTER = 2 };

/* How the card is paired (PAIR EMM record, docs/smartcard.md "Pairing"):
 * CHIP: K_pair came from the head-end, = chip_pairing_key(K_v(chip), serial),
 * the box's chip derives it itself (ladder chain CHIP_CHAIN_PAIRED);
 * SOFT: 8-byte PAIR record, K_pair = card_pairing_key(K_card, stb_id), for a
 * box without a chip (smartcard_client_set_pair_key). */
enum card_pair_mode { CARD_PAIR_NONE = 0, CARD_PAIR_SOFT = 1, CARD_PAIR_CHIP = 2 };

/* CW response form (first byte of the ECM response). */
#define CARD_CW_CLEAR 0x00
#define CARD_CW_PAIRED 0x01

struct card_channel {
	uint16_t ecm_id;               /* a channel = an ECM stream */
	uint64_t last_ms;              /* newest ECM time served for it */
};

/* The persistent state: what the EEPROM image holds. */
struct card_state {
	uint8_t life;                  /* enum card_life */
	bool protect;                  /* programmed: PERSONALIZE refused */
	uint16_t ca_system_id;
	uint64_t serial;
	uint8_t k_card[CARD_KEY_BYTES];   /* secret */
	uint8_t max_channels;          /* request counter N, 1..CARD_MAX_CHANNELS */
	uint32_t window_s;             /* sliding window */
	uint32_t block_s;              /* self-block duration */
	uint32_t last_seq;             /* newest EMM sequence accepted */
	uint64_t time_ms;              /* card time */
	uint8_t block;                 /* enum card_block */
	uint64_t blocked_until_ms;     /* CARD_BLOCK_COUNTER: card time it ends */
	uint64_t paired_stb_id;        /* 0 = not paired */
	uint8_t pair_mode;             /* enum card_pair_mode */
	uint8_t k_pair[CARD_PAIR_KEY_BYTES]; /* secret: CWs leave the card under it */
	uint32_t packages;
	uint8_t next;                  /* extended packages (ids >= 32) */
	uint16_t ext[CAS_MAX_EXT_PACKAGES];
	uint64_t start_s, finish_s;
	uint8_t nkeys;
	struct pkg_key keys[CARD_MAX_KEYS]; /* secret */
	uint8_t nchan;
	struct card_channel chan[CARD_MAX_CHANNELS];
};

struct card_applet {
	struct card_eeprom ee;         /* persistence (not owned) */
	struct card_state st;          /* live state */
	struct card_state next;        /* scratch: the state being committed */
	uint64_t persisted_time_ms;    /* st.time_ms as last written */
	bool chaining;                 /* a chained command is being received */
	uint8_t chain_ins;
	size_t chain_len;
	uint8_t data[CARD_MAX_DATA];   /* command data (chained parts) */
	uint8_t img[CARD_EEPROM_BYTES];
	struct emm_content emc;        /* scratch: an opened EMM (wiped after use) */
	/* issue 13: the OSD items (messages, fingerprints) of the last EMM
	 * applied, encoded (osd.h), until the next EMM or reset; an EMM that
	 * carries some answers their count (one data byte) */
	uint8_t nosd;
	uint16_t osd_len[EMM_MAX_OSD];
	uint8_t osd[EMM_MAX_OSD][OSD_MAX_BYTES];
};

/*
 * Power on: load the EEPROM image (none = blank card). 0, CE_FORMAT /
 * CE_CRC for a damaged image, CE_IO. The applet is unusable on error.
 */
int card_applet_init(struct card_applet *a, const struct card_eeprom *ee) WARN_UNUSED;
/* Reset / power cycle: volatile state dropped, state reloaded. */
int card_applet_reset(struct card_applet *a) WARN_UNUSED;
/* Wipe every secret (power off). */
void card_applet_wipe(struct card_applet *a);

/*
 * One command APDU -> response APDU (data then SW1 SW2) in resp; returns
 * the response length (>= 2), or 0 only if cap < CARD_MAX_RESP + 2.
 */
size_t card_applet_apdu(struct card_applet *a, const uint8_t *cmd, size_t len, uint8_t *resp, size_t cap);

/* Serialize / parse the EEPROM image (fixed layout + CRC-32). */
int card_state_encode(const struct card_state *st, uint8_t *out, size_t cap, size_t *len) WARN_UNUSED;
int card_state_decode(const uint8_t *img, size_t len, struct card_state *st) WARN_UNUSED;

/* ---- head-end side helpers (also used by the card) ---- */
/* Software pairing (8-byte PAIR record, a box without a chip):
 * K_pair(card, stb) = HMAC-SHA256(K_card, "castellan pairing key" || stb_id u64)[0..16],
 * given to that box's client (smartcard_client_set_pair_key). Chip pairing
 * uses chip_pairing_key (stb/chip.h) instead. 0 or CE_CRYPTO. */
int card_pairing_key(const uint8_t k_card[CARD_KEY_BYTES], uint64_t stb_id, uint8_t out[CARD_PAIR_KEY_BYTES])
	WARN_UNUSED;
/* The head-end's erase authorization ("protection lifted"):
 * HMAC-SHA256(K_card, "castellan card erase" || serial u64)[0..16]. */
int card_erase_token(const uint8_t k_card[CARD_KEY_BYTES], uint64_t serial, uint8_t out[CARD_TOKEN_BYTES])
	WARN_UNUSED;
/* Box side of pairing: open one 16-byte paired CW block with K_pair. */
int card_paired_cw_open(const uint8_t k_pair[CARD_PAIR_KEY_BYTES], const uint8_t blk[16], uint8_t out[16])
	WARN_UNUSED;

/* Parsed GET INFO response. */
struct card_info {
	uint8_t version, life;
	bool protect, blocked, paired;
	bool pair_chip;                /* paired to a box's chip (flag 0x08) */
	uint16_t ca_system_id;
	uint64_t serial;
	uint32_t packages;
	uint64_t start_s, finish_s;
	uint32_t last_seq;
	uint64_t time_ms, blocked_until_ms, paired_stb_id;
	uint8_t max_channels;
	uint32_t window_s, block_s;
	uint8_t nchan, nkeys;
};
int card_info_parse(const uint8_t *data, size_t len, struct card_info *out) WARN_UNUSED;

/* The personalization record (PERSONALIZE command data). */
struct card_perso {
	uint16_t ca_system_id;
	uint64_t serial;
	uint8_t k_card[CARD_KEY_BYTES];
	uint8_t max_channels;
	uint32_t window_s, block_s;
};
void card_perso_encode(const struct card_perso *p, uint8_t out[CARD_PERSO_BYTES]);
int card_perso_decode(const uint8_t *in, size_t len, struct card_perso *p) WARN_UNUSED;

#endif
