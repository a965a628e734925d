/*
 * aead.h - the one place AES-GCM, AES key wrap and single AES blocks are set
 * up (OpenSSL 3 EVP). Every module that seals, opens, wraps or ladders a key
 * calls these: the ECM and EMM formats (cas/), the secure chip (stb/chip.c),
 * the smartcard applet (card/), passphrase-sealed files (crypto/pwseal.c) and
 * the KMS (kms/).
 *
 * GCM: 12-byte nonce (SP 800-38D's 96 bits), 16-byte tag, AES-128 or AES-256
 * by key length. enc 1 seals in -> out and writes the tag; enc 0 opens and
 * checks the tag: CE_MAC on a mismatch. On any failure out is wiped. Lengths
 * may exceed INT_MAX (fed to EVP in 1 GiB parts).
 *
 * Normative references: NIST SP 800-38D (GCM), RFC 3394 (AES key wrap),
 * FIPS 197 (AES).
 */
#ifndef CASTELLAN_CRYPTO_AEAD_H
#define CASTELLAN_CRYPTO_AEAD_H

#include <stddef.h>
#include <stdint.h>
#include <openssl/evp.h>
#include "lib/err.h"

#define CRYPTO_GCM_NONCE_BYTES 12
#define CRYPTO_GCM_TAG_BYTES 16
#define CRYPTO_WRAP_BYTES 24 /* RFC 3394 wrap of a 16-byte key */

/* One-shot AES-GCM, key_len 16 or 32. 0, CE_MAC (open), CE_ARG, CE_NOMEM,
 * CE_CRYPTO. */
int crypto_gcm(int enc, const uint8_t *key, size_t key_len, const uint8_t nonce[12], const uint8_t *aad,
	size_t aad_len, const uint8_t *in, size_t len, uint8_t *out, uint8_t tag[16]) WARN_UNUSED;

/* A GCM context prepared once (cipher fetched, IV length set) for the hot
 * paths where only the key and the nonce change per call (the ECMG, the EMM
 * issuer): most of EVP's per-call cost is the set-up. Free with
 * EVP_CIPHER_CTX_free. */
int crypto_gcm_ctx_new(int enc, size_t key_len, EVP_CIPHER_CTX **out) WARN_UNUSED;
/* crypto_gcm on a prepared context (same enc as at crypto_gcm_ctx_new). */
int crypto_gcm_run(EVP_CIPHER_CTX *c, int enc, const uint8_t *key, const uint8_t nonce[12], const uint8_t *aad,
	size_t aad_len, const uint8_t *in, size_t len, uint8_t *out, uint8_t tag[16]) WARN_UNUSED;

/* RFC 3394 AES-128 key wrap of a 16-byte key. Unwrap: CE_MAC on an integrity
 * failure (out wiped). */
int crypto_wrap128(const uint8_t kek[16], const uint8_t in[16], uint8_t out[24]) WARN_UNUSED;
int crypto_unwrap128(const uint8_t kek[16], const uint8_t in[24], uint8_t out[16]) WARN_UNUSED;
/* The same with the RFC 3394 integrity value iv (8 bytes, section 2.2.3's
 * "alternative initial value") instead of A6A6A6A6A6A6A6A6: the ECM format
 * puts a MAC of the ECM there (docs/ecm-format.md). Unwrap: CE_MAC unless
 * the unwrapped integrity value equals iv. */
int crypto_wrap128_iv(const uint8_t kek[16], const uint8_t iv[8], const uint8_t in[16], uint8_t out[24]) WARN_UNUSED;
int crypto_unwrap128_iv(const uint8_t kek[16], const uint8_t iv[8], const uint8_t in[24], uint8_t out[16]) WARN_UNUSED;

/* A 16-byte KEK kept keyed for many wraps (the ECMG's per-epoch package
 * keys): no AES key set-up per wrap. Free with EVP_CIPHER_CTX_free (wipes
 * the schedule). crypto_wrap128_kek gives the bytes of crypto_wrap128
 * (RFC 3394 2.2.1, n = 2). */
int crypto_kek_new(const uint8_t kek[16], EVP_CIPHER_CTX **out) WARN_UNUSED;
int crypto_wrap128_kek(EVP_CIPHER_CTX *kek, const uint8_t in[16], uint8_t out[24]) WARN_UNUSED;
/* The same with the integrity value iv (crypto_wrap128_iv's bytes). */
int crypto_wrap128_kek_iv(EVP_CIPHER_CTX *kek, const uint8_t iv[8], const uint8_t in[16], uint8_t out[24]) WARN_UNUSED;

/* One AES block, ECB, no padding (a key-ladder stage); key_len 16 or 32.
 * 0, CE_ARG, CE_NOMEM, CE_CRYPTO. */
int crypto_aes_block(int enc, const uint8_t *key, size_t key_len, const uint8_t in[16], uint8_t out[16]) WARN_UNUSED;

#endif
