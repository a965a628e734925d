/*
 * pk.h - the public-key primitives of the KMS on raw 32-byte keys:
 * Ed25519 (RFC 8032) signatures, X25519 (RFC 7748) agreement, and the
 * key files the commands read and write (one line of lower-case hex).
 * Private keys are secrets: callers wipe them (secret_wipe).
 */
#ifndef CASTELLAN_KMS_PK_H
#define CASTELLAN_KMS_PK_H

#include <stddef.h>
#include <stdint.h>
#include "lib/err.h"

#define PK_KEY_BYTES 32
#define PK_SIG_BYTES 64

/* Fresh key pair (RAND_bytes). 0 or CE_CRYPTO. */
int pk_ed25519_generate(uint8_t priv[32], uint8_t pub[32]) WARN_UNUSED;
int pk_x25519_generate(uint8_t priv[32], uint8_t pub[32]) WARN_UNUSED;
/* Public key of a private one. */
int pk_ed25519_public(const uint8_t priv[32], uint8_t pub[32]) WARN_UNUSED;
int pk_x25519_public(const uint8_t priv[32], uint8_t pub[32]) WARN_UNUSED;
int pk_sign(const uint8_t priv[32], const uint8_t *msg, size_t len, uint8_t sig[64]) WARN_UNUSED;
/* 0 if sig is pub's signature of msg, else CE_MAC. */
int pk_verify(const uint8_t pub[32], const uint8_t *msg, size_t len, const uint8_t sig[64]) WARN_UNUSED;
/* X25519 shared secret (refuses the all-zero result: CE_CRYPTO). */
int pk_x25519(const uint8_t priv[32], const uint8_t peer_pub[32], uint8_t shared[32]) WARN_UNUSED;
/* SHA-256 of a public key: the "trust-root hash" and key ids. */
void pk_hash(const uint8_t pub[32], uint8_t out[32]);

/* Key files: 64 hex chars, optional trailing newline. Private ones are
 * written 0600. CE_FORMAT on anything else. */
int pk_read_file(const char *path, uint8_t key[32]) WARN_UNUSED;
int pk_write_file(const char *path, const uint8_t key[32], int secret) WARN_UNUSED;

#endif
