/*
 * emm_vendor.c - vendor EMMs (emm_vendor.h): K_emm from the chip's vendor
 * key, re-sealing an issuer's unique EMM under it, opening one with K_v,
 * and K_v lookup in a vendor's opened key file. The EMM format itself
 * (parse, plaintext, issuer) stays in emm.c.
 *
 * Normative references: NIST SP 800-108r1 (KBKDF), SP 800-38B (CMAC),
 * SP 800-38D (GCM).
 */
#include <stdio.h>
#include <string.h>
#include <openssl/crypto.h>
#include "lib/bytes.h"
#include "cas/emm_vendor.h"
#include "cas/vkeys.h"
#include "crypto/aead.h"
#include "crypto/kdf.h"
#include "lib/cursor.h"
#include "lib/util.h"

#define HDR_BYTES 3 /* table_id | flags + section_length */

int emm_vendor_key(const uint8_t kv[16], uint64_t serial, uint8_t out[EMM_VENDOR_KEY_BYTES])
{
	static const char label[] = EMM_VENDOR_LABEL;
	uint8_t ctxt[8];

	if (!kv || !out)
		return CE_ARG;
	put_be32(ctxt, (uint32_t)(serial >> 32));
	put_be32(ctxt + 4, (uint32_t)serial);
	return crypto_kbkdf_cmac(kv, 16, label, sizeof(label) - 1, ctxt, sizeof(ctxt), out, EMM_VENDOR_KEY_BYTES);
}

/* AES-128-GCM, 12-byte nonce, 16-byte tag (crypto/aead.h). enc 0: CE_MAC on a bad tag. */
static int gcm(int enc, const uint8_t key[16], const uint8_t *nonce, const uint8_t *aad, size_t aad_len,
	const uint8_t *in, size_t len, uint8_t *out, uint8_t *tag)
{
	return crypto_gcm(enc, key, 16, nonce, aad, aad_len, in, len, out, tag);
}

int emm_vendor_seal(const struct keystore *ks, const uint8_t kv[16], const uint8_t *sec, size_t len, uint8_t *out,
	size_t cap, size_t *out_len)
{
	uint8_t kcard[CARD_KEY_BYTES], kemm[EMM_VENDOR_KEY_BYTES], pt[EMM_MAX_PLAINTEXT];
	uint8_t tag[EMM_TAG_BYTES];
	const uint8_t *aad;
	struct emm_view v;
	uint64_t serial;
	int r;

	if (out_len)
		*out_len = 0;
	if (!ks || !kv || !sec || !out || !out_len)
		return CE_ARG;
	if (len < EMM_UNIQUE_OVERHEAD || sec[0] != EMM_TABLE_UNIQUE)
		return CE_FORMAT;
	if (cur_u64_at(sec, len, 6, &serial) != 0)
		return CE_FORMAT;
	if ((r = emm_parse(sec, len, serial, &v)) != 0)
		return r;
	if (v.ct_len > sizeof(pt))
		return CE_FORMAT;
	if (cap < len)
		return CE_OVERFLOW;
	aad = sec + HDR_BYTES;
	memcpy(tag, v.tag, sizeof(tag));
	if ((r = keystore_card_key(ks, serial, kcard)) != 0)
		goto out;
	if ((r = gcm(0, kcard, v.nonce, aad, EMM_AAD_BYTES, v.ct, v.ct_len, pt, tag)) != 0)
		goto out;
	if ((r = emm_vendor_key(kv, serial, kemm)) != 0)
		goto out;
	memcpy(out, sec, HDR_BYTES + EMM_AAD_BYTES);
	r = gcm(1, kemm, v.nonce, aad, EMM_AAD_BYTES, pt, v.ct_len, out + HDR_BYTES + EMM_AAD_BYTES,
		out + HDR_BYTES + EMM_AAD_BYTES + v.ct_len);
	if (r == 0)
		*out_len = len;
	else
		OPENSSL_cleanse(out, len);
out:
	OPENSSL_cleanse(pt, sizeof(pt));
	OPENSSL_cleanse(kcard, sizeof(kcard));
	OPENSSL_cleanse(kemm, sizeof(kemm));
	return r;
}

int emm_vendor_open(const struct emm_view *v, const uint8_t kv[16], struct emm_content *out)
{
	uint8_t kemm[EMM_VENDOR_KEY_BYTES];
	int r;

	if (!v || !kv || !out)
		return CE_ARG;
	if ((r = emm_vendor_key(kv, v->serial, kemm)) == 0)
		r = emm_open(v, kemm, out);
	else
		emm_content_wipe(out);
	OPENSSL_cleanse(kemm, sizeof(kemm));
	return r;
}

int emm_vendor_key_file(const char *path, uint64_t chip_id, uint8_t kv[16])
{
	struct vkey *v = NULL;
	const struct vkey *k;
	size_t n = 0, bad;
	int r;

	if (!path || !kv)
		return CE_ARG;
	if ((r = vkeys_load(path, VKEYS_MAX, &v, &n, &bad)) == 0) {
		if ((k = vkeys_find(v, n, chip_id)) != NULL)
			memcpy(kv, k->kv, 16);
		else
			r = CE_NOT_FOUND;
	}
	vkeys_free(v, n);
	if (r != 0)
		OPENSSL_cleanse(kv, 16);
	return r;
}
