/*
 * kdf.h - KBKDF, the one place it is set up (crypto_kbkdf_cmac: the package
 * keys and card keys of cas/keys.c, the vendor EMM keys of cas/emm_vendor.c,
 * the pairing key of stb/chip.c), and the ONE vendor-key derivation of
 * Castellan (KMS side and chip side):
 *
 *   K_v(chip) = KBKDF(K_otp(chip), label "castellan vendor key",
 *                     context = vendor_id u32 BE, L = 128 bits)
 *
 * KBKDF is NIST SP 800-108r1 counter mode with AES-128-CMAC as PRF (NIST
 * SP 800-38B), r = 32-bit counter before the fixed input, which is
 *   [i]_32 || label || 0x00 || context || [L]_32          (i = 1, L = 128)
 * i.e. one CMAC over 4 + 20 + 1 + 4 + 4 = 33 bytes. This is what OpenSSL 3's
 * EVP_KDF "KBKDF" computes with mac CMAC, cipher AES-128-CBC, salt = label,
 * info = context (docs/key-hierarchy.md). The emulated chip (src/stb/chip*.c)
 * and the KMS both call kms_vendor_key, so they can never disagree.
 * Known-answer vector: tests/kms/test_kms.c (kdf_kat).
 */
#ifndef CASTELLAN_KMS_KDF_H
#define CASTELLAN_KMS_KDF_H

#include <stddef.h>
#include <stdint.h>
#include "lib/err.h"

#define KMS_ROOT_KEY_BYTES 16
#define KMS_VENDOR_KEY_BYTES 16
#define KMS_VENDOR_KEY_LABEL "castellan vendor key"

/* NIST SP 800-108r1 counter-mode KBKDF, PRF CMAC-AES-128 (key_len 16) or
 * CMAC-AES-256 (key_len 32), through OpenSSL 3's EVP_KDF "KBKDF": salt =
 * label, info = context (omitted when ctx_len is 0). 0, CE_ARG, or
 * CE_CRYPTO (out wiped). */
int crypto_kbkdf_cmac(const uint8_t *key, size_t key_len, const void *label, size_t label_len, const uint8_t *ctx,
	size_t ctx_len, uint8_t *out, size_t out_len) WARN_UNUSED;

/* K_v(chip) into out. 0, or CE_CRYPTO (out wiped). The caller wipes root
 * and out when done. Thread-safe; about one EVP_KDF setup per call. */
int kms_vendor_key(const uint8_t root[16], uint32_t vendor_id, uint8_t out[16]) WARN_UNUSED;

/* The same derivation for many chips: one context reused (the KMS exports
 * millions). Free with kms_vkdf_free. */
struct kms_vkdf;
int kms_vkdf_new(struct kms_vkdf **out) WARN_UNUSED;
int kms_vkdf_derive(struct kms_vkdf *k, const uint8_t root[16], uint32_t vendor_id, uint8_t out[16]) WARN_UNUSED;
void kms_vkdf_free(struct kms_vkdf *k);

/* The pairing key of (box chip, smartcard): what a paired card encrypts its
 * CWs under, and what only that chip derives again from its OTP:
 *   K_pair = KBKDF-CMAC-AES128(K_v(chip), "castellan pairing key",
 *                              context = card serial u64 BE, L = 128)
 * (chip_pairing_key in src/stb/chip.h is this; the head-end computes it for
 * the PAIR EMM of a card whose SMS row says pair = 1). 0, CE_ARG, CE_CRYPTO. */
#define KMS_PAIRING_KEY_LABEL "castellan pairing key"
int kms_pairing_key(const uint8_t kv[16], uint64_t serial, uint8_t out[16]) WARN_UNUSED;

#endif
