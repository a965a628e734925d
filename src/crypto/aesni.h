/*
 * aesni.h - AES-128 key expansion on AES-NI (FIPS 197 section 5.2), shared
 * by the GCM sealer (gcm_rekey.c) and the CISSA engine (cipher/cissa_aesni.c).
 * Only x86-64 with GCC or clang has it; crypto_aesni_available() says
 * whether this CPU does (false elsewhere, and crypto_aesni_expand128 is
 * then not defined).
 */
#ifndef CASTELLAN_CRYPTO_AESNI_H
#define CASTELLAN_CRYPTO_AESNI_H

#include <stdbool.h>
#include <stdint.h>

#define CRYPTO_AES128_ROUND_KEYS 11

/* AES-NI and SSE4.1 present (the GCM sealer needs both). */
bool crypto_aesni_available(void);
/* The 11 round keys of key: needs the AES-NI instructions only (the CISSA
 * engine checks that itself; the GCM sealer checks crypto_aesni_available()). */
void crypto_aesni_expand128(const uint8_t key[16], uint8_t rk[CRYPTO_AES128_ROUND_KEYS][16]);

#endif
