/*
 * emm_vendor.h - unique EMMs keyed by the KMS vendor key of the box's chip
 * ("vendor EMMs", docs/emm-format.md "Vendor EMMs").
 *
 * A vendor EMM is a Castellan EMM v1 (emm.h: same table ids, header, AAD,
 * TLV plaintext) sealed under
 *
 *   K_emm(chip, serial) = KBKDF(K_v(chip), label "castellan emm key",
 *                               context = card serial u64 BE, L = 128)
 *
 * instead of K_card(serial). K_v(chip) = kms_vendor_key(K_otp, vendor_id)
 * (crypto/kdf.h): the head-end takes it from the vendor's opened key file, the
 * chip derives it from its OTP for the running module's vendor. So an EMM
 * built with vendor B's key file for chip X opens only inside chip X while
 * a module of vendor B runs (CHIP_OP_OPEN_EMM, stb/chip.h); vendor A's key
 * file holds no key that opens it.
 *
 * KBKDF: NIST SP 800-108r1 counter mode, AES-128-CMAC PRF (as
 * kms_vendor_key and chip_pairing_key).
 */
#ifndef CASTELLAN_EMM_VENDOR_H
#define CASTELLAN_EMM_VENDOR_H

#include <stddef.h>
#include <stdint.h>
#include "lib/err.h"
#include "cas/emm.h"
#include "cas/keys.h"

#define EMM_VENDOR_LABEL "castellan emm key"
#define EMM_VENDOR_KEY_BYTES 16

/* K_emm(chip, serial) from K_v(chip). 0, CE_ARG, CE_CRYPTO (out wiped).
 * The caller wipes kv and out. */
int emm_vendor_key(const uint8_t kv[16], uint64_t serial, uint8_t out[EMM_VENDOR_KEY_BYTES]) WARN_UNUSED;

/*
 * Re-seal a unique EMM (0x82) built by an emm_issuer of ks (any
 * emm_build_*: grant, command, limits, pair) under K_emm(kv, serial): same
 * header, nonce and plaintext, new ciphertext and tag. The K_card EMM is
 * opened first (CE_MAC if it is not ks's). out may not overlap sec.
 * 0, CE_ARG, CE_FORMAT (not a unique EMM), CE_MAC, CE_OVERFLOW, CE_CRYPTO.
 * Nonces stay unique per key: K_emm is per (chip, vendor, serial) and the
 * issuer's nonces never repeat.
 */
int emm_vendor_seal(const struct keystore *ks, const uint8_t kv[16], const uint8_t *sec, size_t len, uint8_t *out,
	size_t cap, size_t *out_len) WARN_UNUSED;

/* Open a parsed record (emm_parse) of a vendor EMM with K_v: what the chip
 * does inside. out as emm_open (package keys in clear: chip side only). */
int emm_vendor_open(const struct emm_view *v, const uint8_t kv[16], struct emm_content *out) WARN_UNUSED;

/* K_v(chip) from a vendor's opened key file (`castellan kms vendor open
 * --out KEYS.csv`: "chip_id,32 hex digits" a line; parsed by cas/vkeys.h,
 * at most EMM_VENDOR_FILE_KEYS_MAX chips). 0, CE_IO, CE_NOT_FOUND,
 * CE_FORMAT, CE_LIMIT. kv wiped on error. */
#define EMM_VENDOR_FILE_KEYS_MAX (1u << 24)
int emm_vendor_key_file(const char *path, uint64_t chip_id, uint8_t kv[16]) WARN_UNUSED;

#endif
