/*
 * perso.h - the personalization file: what the head-end gives the
 * programming tool for one card (serial, K_card, request-counter limits),
 * encrypted and authenticated under a transport passphrase.
 *
 *   offset size  field
 *   0      8     magic "CSTLPF01"
 *   8      1     scrypt log2(N) (10..20; r = 8, p = 1)
 *   9      16    salt
 *   25     12    GCM nonce
 *   37     2     ciphertext length (= 36)
 *   39     36    AES-256-GCM ciphertext of the PERSONALIZE record (applet.h)
 *   75     16    GCM tag; AAD = bytes 0..38
 *
 * Key = scrypt(passphrase, salt, N, 8, 1), 32 bytes. A wrong passphrase or
 * any altered byte gives CE_MAC; a bad header CE_FORMAT / CE_RANGE.
 */
#ifndef CASTELLAN_CARD_PERSO_H
#define CASTELLAN_CARD_PERSO_H

#include <stddef.h>
#include <stdint.h>
#include "lib/err.h"
#include "card/applet.h"

#define CARD_PERSO_FILE_BYTES 91
#define CARD_PERSO_LOG2N 14
#define CARD_PERSO_MIN_LOG2N 10
#define CARD_PERSO_MAX_LOG2N 20

/* Head-end: the record of card `serial` (K_card from the keystore, limits
 * given: 0 = default). */
int card_perso_issue(const struct keystore *ks, uint64_t serial, uint8_t max_channels, uint32_t window_s,
	uint32_t block_s, struct card_perso *p) WARN_UNUSED;
/* Encrypt into out[CARD_PERSO_FILE_BYTES]. 0, CE_RANGE (log2n), CE_CRYPTO. */
int card_perso_seal(const struct card_perso *p, const char *passphrase, unsigned log2n,
	uint8_t out[CARD_PERSO_FILE_BYTES]) WARN_UNUSED;
/* Decrypt and check. p wiped on error. */
int card_perso_open(const uint8_t *buf, size_t len, const char *passphrase, struct card_perso *p) WARN_UNUSED;

#endif
