/*
 * gcm_rekey.h - AES-128-GCM sealing where every message has a new key (the
 * EMM issuer: one K_card per card). OpenSSL 3's EVP re-key costs ~0.9 us of
 * CPU a call, mostly parameter lookups; with AES-NI this sealer expands the
 * key itself and runs OpenSSL's own GCM mode (openssl/modes.h) over it,
 * byte for byte the EVP output. Without AES-NI, or when asked for the
 * reference path, it seals through EVP (crypto_gcm_run). 12-byte nonce,
 * 16-byte tag.
 */
#ifndef CASTELLAN_CRYPTO_GCM_REKEY_H
#define CASTELLAN_CRYPTO_GCM_REKEY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "lib/err.h"

struct crypto_gcm_rekey;

/* 0, CE_NOMEM or CE_CRYPTO. */
int crypto_gcm_rekey_new(struct crypto_gcm_rekey **out) WARN_UNUSED;
/* Wipes. NULL is fine. */
void crypto_gcm_rekey_free(struct crypto_gcm_rekey *g);
/* Seal pt[0..len) under key into ct and tag: 0 or CE_CRYPTO (ct wiped). */
int crypto_gcm_rekey_seal(struct crypto_gcm_rekey *g, const uint8_t key[16], const uint8_t nonce[12],
			  const uint8_t *aad, size_t aad_len, const uint8_t *pt, size_t len, uint8_t *ct,
			  uint8_t tag[16]) WARN_UNUSED;
/* Use the EVP path (true) or the fast one; returns whether the request
 * holds (asking for the fast path without AES-NI returns false). */
bool crypto_gcm_rekey_set_reference(struct crypto_gcm_rekey *g, bool reference);
bool crypto_gcm_rekey_is_reference(const struct crypto_gcm_rekey *g);

#endif
