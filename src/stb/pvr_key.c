/*
 * pvr_key.c - the PVR's key ladder branch and its AES-128-GCM (pvr_key.h).
 * Normative references: NIST SP 800-108r1 (KBKDF), SP 800-38D (GCM).
 */
#include <string.h>
#include <openssl/crypto.h>
#include "crypto/aead.h"
#include "crypto/kdf.h"
#include "lib/bytes.h"
#include "stb/pvr_key.h"

int pvr_keys_init(struct pvr_keys *k, const uint8_t *root, size_t root_len, uint64_t box_id)
{
	uint8_t ctx[8];
	int r;

	if (!k)
		return CE_ARG;
	memset(k, 0, sizeof(*k));
	if (!root || (root_len != 16 && root_len != 32))
		return CE_ARG;
	put_be32(ctx, (uint32_t)(box_id >> 32));
	put_be32(ctx + 4, (uint32_t)box_id);
	if ((r = crypto_kbkdf_cmac(root, root_len, PVR_ROOT_LABEL, strlen(PVR_ROOT_LABEL), ctx, sizeof(ctx), k->k_pvr,
		     sizeof(k->k_pvr))) != 0)
		goto fail;
	if ((r = crypto_gcm_ctx_new(0, 16, &k->gcm[0])) != 0 || (r = crypto_gcm_ctx_new(1, 16, &k->gcm[1])) != 0)
		goto fail;
	return 0;
fail:
	pvr_keys_cleanup(k);
	return r;
}

void pvr_keys_cleanup(struct pvr_keys *k)
{
	if (!k)
		return;
	EVP_CIPHER_CTX_free(k->gcm[0]);
	EVP_CIPHER_CTX_free(k->gcm[1]);
	OPENSSL_cleanse(k, sizeof(*k));
}

int pvr_keys_crypt(struct pvr_keys *k, int enc, const uint8_t nonce[PVR_NONCE_BYTES], uint32_t index,
	const uint8_t *aad, size_t aad_len, uint8_t *buf, size_t len, uint8_t tag[PVR_TAG_BYTES])
{
	uint8_t iv[CRYPTO_GCM_NONCE_BYTES] = { 0 };
	int r;

	if (!k || !k->gcm[0] || !k->gcm[1] || !nonce || !tag || (enc != 0 && enc != 1))
		return CE_ARG;
	if (!k->have_rec || CRYPTO_memcmp(k->nonce, nonce, PVR_NONCE_BYTES) != 0) {
		k->have_rec = false;
		if ((r = crypto_kbkdf_cmac(k->k_pvr, sizeof(k->k_pvr), PVR_REC_LABEL, strlen(PVR_REC_LABEL), nonce,
			     PVR_NONCE_BYTES, k->k_rec, sizeof(k->k_rec))) != 0)
			return r;
		memcpy(k->nonce, nonce, PVR_NONCE_BYTES);
		k->have_rec = true;
	}
	put_be32(iv + 8, index);
	r = crypto_gcm_run(k->gcm[enc], enc, k->k_rec, iv, aad, aad_len, buf, len, buf, tag);
	if (r != 0 && len)
		OPENSSL_cleanse(buf, len);
	return r;
}
