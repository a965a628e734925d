/*
 * otp.h - the OTP image of one emulated secure chip: what the black box
 * burns (castellan blackbox burn) and what the chip (src/stb/chip*.c) reads
 * at power-up. Binary, fixed size, big-endian (docs/kms.md has the table):
 *
 *   off len  field
 *     0   8  magic "CSTLOTP1"
 *     8   1  format version (OTP_VERSION = 1)
 *     9   8  chip id (u64 BE)
 *    17  16  root key K_otp(chip)                      (secret)
 *    33  32  trust-root hash: SHA-256 of the trust authority's raw
 *            32-byte Ed25519 public key
 *    65   4  check: first 4 bytes of SHA-256(bytes 0..64) (burn errors,
 *            not an attacker: OTP is write-once hardware)
 *   = 69 bytes
 *
 * otp_decode rejects any other size, magic, version or a bad check.
 */
#ifndef CASTELLAN_KMS_OTP_H
#define CASTELLAN_KMS_OTP_H

#include <stddef.h>
#include <stdint.h>
#include "lib/err.h"

#define OTP_MAGIC "CSTLOTP1"
#define OTP_VERSION 1
#define OTP_IMAGE_BYTES 69
#define OTP_ROOT_BYTES 16
#define OTP_TRUST_HASH_BYTES 32

struct otp_image {
	uint8_t version;                                /* OTP_VERSION */
	uint64_t chip_id;                               /* from the chip maker's order */
	uint8_t root_key[OTP_ROOT_BYTES];               /* K_otp(chip): secret */
	uint8_t trust_root_hash[OTP_TRUST_HASH_BYTES];  /* SHA-256(TA Ed25519 pub) */
};

/* Wipe the whole image (root key included). */
void otp_image_wipe(struct otp_image *img);
/* Serialize into out (exactly OTP_IMAGE_BYTES). 0 or CE_ARG. */
int otp_encode(const struct otp_image *img, uint8_t out[OTP_IMAGE_BYTES]) WARN_UNUSED;
/* Parse; *out zeroed first and on error. 0, CE_FORMAT, CE_UNSUPPORTED
 * (other version), CE_CRC (bad check). */
int otp_decode(const uint8_t *buf, size_t len, struct otp_image *out) WARN_UNUSED;
/* File helpers: written atomically with mode 0600. */
int otp_write_file(const char *path, const struct otp_image *img) WARN_UNUSED;
int otp_read_file(const char *path, struct otp_image *out) WARN_UNUSED;

#endif
