/*
 * pvr_key.h - the recording keys of the box's PVR (C.6: copy protection),
 * one implementation for the two places they live:
 *   - inside the secure chip (stb/chip.c, op CHIP_OP_PVR_CRYPT): the root
 *     is the chip's OTP key K_otp and the box id its chip id, so the keys
 *     never enter the box process;
 *   - in the box process of a cardless box (--card FILE): the root is the
 *     box's own device key K_card from its card file and the box id the
 *     card serial (that box holds K_card already; it is unique per box).
 *
 * Key ladder (a branch of its own, independent of the CAS vendor, so a
 * module switch keeps the recordings):
 *   K_pvr = KBKDF-CMAC-AES128(root, "castellan recording key", box_id u64 BE)
 *   K_rec = KBKDF-CMAC-AES128(K_pvr, "castellan recording", rec_nonce[16])
 * (NIST SP 800-108 counter mode, crypto/kdf.h), one K_rec per recording
 * from its random 16-byte nonce. Content and header are sealed with
 * AES-128-GCM under K_rec, GCM nonce = 8 zero bytes || index u32 BE (the
 * chunk index; PVR_HEADER_INDEX for the header): every (key, nonce) pair is
 * used once. stb/pvr.h has the file format.
 */
#ifndef CASTELLAN_STB_PVR_KEY_H
#define CASTELLAN_STB_PVR_KEY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <openssl/evp.h>
#include "lib/err.h"

#define PVR_NONCE_BYTES 16
#define PVR_TAG_BYTES 16
#define PVR_HEADER_INDEX 0xFFFFFFFFu
#define PVR_ROOT_LABEL "castellan recording key"
#define PVR_REC_LABEL "castellan recording"

struct pvr_keys {
	uint8_t k_pvr[16];         /* secret */
	bool have_rec;
	uint8_t nonce[PVR_NONCE_BYTES]; /* the recording K_rec belongs to */
	uint8_t k_rec[16];         /* secret: the last recording's key */
	EVP_CIPHER_CTX *gcm[2];    /* open, seal */
};

/* Derive K_pvr from root (16 or 32 bytes) and box_id. 0, CE_ARG, CE_NOMEM,
 * CE_CRYPTO. The caller wipes root. */
int pvr_keys_init(struct pvr_keys *k, const uint8_t *root, size_t root_len, uint64_t box_id) WARN_UNUSED;
void pvr_keys_cleanup(struct pvr_keys *k); /* wipes */
/*
 * AES-128-GCM in place under K_rec(nonce) with the nonce of index: enc 1
 * seals buf and writes tag, enc 0 opens and checks tag (CE_MAC; buf wiped).
 * aad may be NULL when aad_len is 0; len may be 0.
 */
int pvr_keys_crypt(struct pvr_keys *k, int enc, const uint8_t nonce[PVR_NONCE_BYTES], uint32_t index,
	const uint8_t *aad, size_t aad_len, uint8_t *buf, size_t len, uint8_t tag[PVR_TAG_BYTES]) WARN_UNUSED;

#endif
