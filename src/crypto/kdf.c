/*
 * kdf.c - KBKDF (kdf.h): NIST SP 800-108r1 counter mode with AES-CMAC through
 * OpenSSL 3's EVP_KDF "KBKDF", and the vendor key derivation K_v(chip) on it.
 */
#include <stdlib.h>
#include <string.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include "lib/bytes.h"
#include "crypto/kdf.h"
#include "lib/cursor.h"

struct kms_vkdf {
	EVP_KDF *kdf;
	EVP_KDF_CTX *ctx;
};

void kms_vkdf_free(struct kms_vkdf *k)
{
	if (!k)
		return;
	EVP_KDF_CTX_free(k->ctx); /* clears its key copy */
	EVP_KDF_free(k->kdf);
	free(k);
}

int kms_vkdf_new(struct kms_vkdf **out)
{
	struct kms_vkdf *k = calloc(1, sizeof(*k));

	*out = NULL;
	if (!k)
		return CE_NOMEM;
	k->kdf = EVP_KDF_fetch(NULL, "KBKDF", NULL);
	k->ctx = k->kdf ? EVP_KDF_CTX_new(k->kdf) : NULL;
	if (!k->ctx) {
		kms_vkdf_free(k);
		return CE_CRYPTO;
	}
	*out = k;
	return 0;
}

/* The parameters of every KBKDF of Castellan, for one derivation in x. */
static int kbkdf_derive(EVP_KDF_CTX *x, const uint8_t *key, size_t key_len, const void *label, size_t label_len,
	const uint8_t *ctx, size_t ctx_len, uint8_t *out, size_t out_len)
{
	OSSL_PARAM params[7], *p = params;

	*p++ = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_MODE, (char *)"counter", 0);
	*p++ = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_MAC, (char *)"CMAC", 0);
	*p++ = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_CIPHER,
		(char *)(key_len == 16 ? "AES-128-CBC" : "AES-256-CBC"), 0);
	*p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)(uintptr_t)key, key_len);
	*p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *)(uintptr_t)label, label_len);
	if (ctx_len)
		*p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, (void *)(uintptr_t)ctx, ctx_len);
	*p = OSSL_PARAM_construct_end();
	if (!x || EVP_KDF_derive(x, out, out_len, params) != 1) {
		OPENSSL_cleanse(out, out_len);
		return CE_CRYPTO;
	}
	return 0;
}

int crypto_kbkdf_cmac(const uint8_t *key, size_t key_len, const void *label, size_t label_len, const uint8_t *ctx,
	size_t ctx_len, uint8_t *out, size_t out_len)
{
	EVP_KDF *kdf;
	EVP_KDF_CTX *x;
	int r;

	if (!key || (key_len != 16 && key_len != 32) || !label || (ctx_len && !ctx) || !out || !out_len)
		return CE_ARG;
	kdf = EVP_KDF_fetch(NULL, "KBKDF", NULL);
	x = kdf ? EVP_KDF_CTX_new(kdf) : NULL;
	r = kbkdf_derive(x, key, key_len, label, label_len, ctx, ctx_len, out, out_len);
	EVP_KDF_CTX_free(x); /* clears its key copy */
	EVP_KDF_free(kdf);
	return r;
}

int kms_vkdf_derive(struct kms_vkdf *k, const uint8_t root[16], uint32_t vendor_id, uint8_t out[16])
{
	uint8_t ctxt[4];
	static const char label[] = KMS_VENDOR_KEY_LABEL;

	if (!k || !root || !out)
		return CE_ARG;
	put_be32(ctxt, vendor_id);
	return kbkdf_derive(k->ctx, root, KMS_ROOT_KEY_BYTES, label, sizeof(label) - 1, ctxt, sizeof(ctxt), out,
		KMS_VENDOR_KEY_BYTES);
}

int kms_vendor_key(const uint8_t root[16], uint32_t vendor_id, uint8_t out[16])
{
	struct kms_vkdf *k = NULL;
	int r;

	if ((r = kms_vkdf_new(&k)) != 0) {
		OPENSSL_cleanse(out, KMS_VENDOR_KEY_BYTES);
		return r;
	}
	r = kms_vkdf_derive(k, root, vendor_id, out);
	kms_vkdf_free(k);
	return r;
}
