/*
 * kdf.c - vendor key derivation K_v(chip) (kdf.h): NIST SP 800-108r1
 * counter-mode KBKDF with AES-128-CMAC through OpenSSL 3's EVP_KDF "KBKDF".
 */
#include <stdlib.h>
#include <string.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include "kms/kdf.h"
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

int kms_vkdf_derive(struct kms_vkdf *k, const uint8_t root[16], uint32_t vendor_id, uint8_t out[16])
{
	OSSL_PARAM params[7], *p = params;
	uint8_t ctxt[4];
	static const char label[] = KMS_VENDOR_KEY_LABEL;

	if (!k || !root || !out)
		return CE_ARG;
	put_be32(ctxt, vendor_id);
	*p++ = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_MODE, (char *)"counter", 0);
	*p++ = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_MAC, (char *)"CMAC", 0);
	*p++ = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_CIPHER, (char *)"AES-128-CBC", 0);
	*p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)(uintptr_t)root, KMS_ROOT_KEY_BYTES);
	*p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *)(uintptr_t)label, sizeof(label) - 1);
	*p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, ctxt, sizeof(ctxt));
	*p = OSSL_PARAM_construct_end();
	if (EVP_KDF_derive(k->ctx, out, KMS_VENDOR_KEY_BYTES, params) != 1) {
		OPENSSL_cleanse(out, KMS_VENDOR_KEY_BYTES);
		return CE_CRYPTO;
	}
	return 0;
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
