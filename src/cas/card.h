/*
 * card.h - the identity of one card (for the cardless client: of one box):
 * CA_system_id, card serial, its card key K_card (keys.h) and, optionally,
 * the box's STB id used by the EMM pairing command.
 *
 * Written by the head-end (`castellan provision --card N --identity-out F`)
 * and read by the box (`castellan stb --card F`). The file is JSON, mode
 * 0600 (it holds K_card), parsed with jansson and bounded:
 *
 *   {"format": "castellan-card-1", "ca_system_id": 19164,
 *    "card": "2100000001", "card_key": "<32 hex digits>",
 *    "stb_id": "1234"}                      <- optional, decimal, 0 = none
 *
 * docs/emm-format.md describes it with the EMMs it opens.
 */
#ifndef CASTELLAN_CARD_H
#define CASTELLAN_CARD_H

#include <stddef.h>
#include <stdint.h>
#include "lib/err.h"
#include "cas/keys.h"

#define CARD_MAX_FILE_BYTES 4096

struct card_identity {
	uint16_t ca_system_id;
	uint64_t serial;
	uint64_t stb_id;                /* 0 = none given */
	uint8_t key[CARD_KEY_BYTES];    /* K_card: secret */
};
void card_identity_wipe(struct card_identity *c);

/* Head-end: fill c for serial (K_card derived from the keystore). */
int card_issue(const struct keystore *ks, uint64_t serial, struct card_identity *c) WARN_UNUSED;
/* JSON <-> struct. encode: malloc'ed NUL-terminated text, free with
 * secret_free(text, strlen(text)). decode: CE_FORMAT / CE_RANGE / CE_LIMIT,
 * c wiped on error. */
int card_encode(const struct card_identity *c, char **json) WARN_UNUSED;
int card_decode(const char *json, size_t len, struct card_identity *c) WARN_UNUSED;
/* Atomic write, mode 0600. / Read (at most CARD_MAX_FILE_BYTES). */
int card_save(const struct card_identity *c, const char *path) WARN_UNUSED;
int card_load(const char *path, struct card_identity *c) WARN_UNUSED;

#endif
