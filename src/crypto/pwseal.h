/*
 * pwseal.h - passphrase-sealed files, and the two primitives under them:
 * one-shot AES-256-GCM and scrypt key derivation. Shared by the head-end
 * keystore (cas/keys.c), the KMS wrapped secrets (kms/kms.c), the KMS sealed
 * exports (kms/seal.c) and the card personalization file (card/perso.c).
 *
 * Sealed layout (all integers big-endian):
 *   off  size  field
 *     0     8  magic (the caller's file type, e.g. "CSTLKS01", "CSTLWRP1")
 *     8     1  log2(N)   scrypt cost
 *     9     4  r         scrypt block size
 *    13     4  p         scrypt parallelism
 *    17    16  salt      random
 *    33    12  nonce     random
 *    45     e  ext       caller bytes (e.g. a length), authenticated only
 *  45+e     n  AES-256-GCM(plain)
 * 45+e+n   16  tag
 * key = scrypt(passphrase, salt, N, r, p) (RFC 7914, 32 bytes); AAD = every
 * byte before the ciphertext. NIST SP 800-38D (GCM).
 */
#ifndef CASTELLAN_PWSEAL_H
#define CASTELLAN_PWSEAL_H

#include <stddef.h>
#include <stdint.h>
#include "lib/err.h"

#define PWSEAL_MAGIC_BYTES 8
#define PWSEAL_SALT_BYTES 16
#define PWSEAL_NONCE_BYTES 12
#define PWSEAL_TAG_BYTES 16
#define PWSEAL_KEY_BYTES 32
#define PWSEAL_HDR_BYTES 45 /* magic .. nonce */
/* Whole sealed size for ext_len caller bytes and len plaintext bytes. */
#define PWSEAL_BYTES(ext_len, len) (PWSEAL_HDR_BYTES + (ext_len) + (len) + PWSEAL_TAG_BYTES)

/* AES-256-GCM, 12-byte nonce, 16-byte tag, any lengths (in and out may be
 * NULL when len is 0). enc 1: encrypt in -> out, write tag. enc 0: decrypt
 * and check tag: CE_MAC on mismatch, with out wiped. 0, CE_MAC, CE_NOMEM or
 * CE_CRYPTO. */
int aes256_gcm(int enc, const uint8_t key[32], const uint8_t nonce[12], const uint8_t *aad, size_t aad_len,
	const uint8_t *in, size_t len, uint8_t *out, uint8_t tag[16]) WARN_UNUSED;

/* key = scrypt(pass, salt[16], 2^log2n, r, p), 32 bytes, with a memory cap
 * that just fits those parameters (the caller bounds them first). 0 or
 * CE_CRYPTO (key wiped). */
int pwseal_scrypt(const char *pass, const uint8_t salt[16], unsigned log2n, uint32_t r, uint32_t p,
	uint8_t key[32]) WARN_UNUSED;

/* Seal len bytes of plain into out (exactly PWSEAL_BYTES(ext_len, len)
 * bytes; out_cap must hold them) with fresh salt and nonce. 0, CE_ARG,
 * CE_OVERFLOW, CE_CRYPTO or CE_NOMEM. Nothing secret is left in out on
 * failure beyond what the caller wrote. */
int pwseal_seal(const char magic[8], unsigned log2n, uint32_t r, uint32_t p, const char *pass, const uint8_t *ext,
	size_t ext_len, const uint8_t *plain, size_t len, uint8_t *out, size_t out_cap) WARN_UNUSED;

/* The fields of a sealed buffer; pointers point into it. */
struct pwseal_view {
	uint8_t log2n;
	uint32_t r, p;
	const uint8_t *salt, *nonce; /* 16 and 12 bytes */
	const uint8_t *ext;          /* ext_len bytes */
	const uint8_t *ct;           /* ct_len bytes */
	size_t ct_len;
	const uint8_t *tag; /* 16 bytes */
	size_t aad_len;     /* bytes before ct */
};

/* Split buf (len bytes) with ext_len caller bytes; every byte after them but
 * the last 16 is ciphertext (possibly none). 0, or CE_FORMAT if buf is too
 * short or the magic differs. The caller checks v->log2n, r, p against its
 * own limits before pwseal_open (they set scrypt's work). */
int pwseal_parse(const uint8_t *buf, size_t len, const char magic[8], size_t ext_len, struct pwseal_view *v)
	WARN_UNUSED;

/* Decrypt v->ct_len bytes into plain. 0, CE_PASSPHRASE (wrong passphrase or
 * altered bytes; plain wiped), CE_CRYPTO or CE_NOMEM. buf is the buffer
 * given to pwseal_parse. */
int pwseal_open(const uint8_t *buf, const struct pwseal_view *v, const char *pass, uint8_t *plain) WARN_UNUSED;

#endif
