/* aead.c - AES-GCM, RFC 3394 key wrap and AES blocks over OpenSSL EVP (aead.h). */
#include <string.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include "crypto/aead.h"

/* EVP_CipherUpdate takes an int length: feed at most 1 GiB at a time. */
#define GCM_CHUNK ((size_t)1 << 30)

static const EVP_CIPHER *gcm_cipher(size_t key_len)
{
	return key_len == 16 ? EVP_aes_128_gcm() : key_len == 32 ? EVP_aes_256_gcm() : NULL;
}

int crypto_gcm_run(EVP_CIPHER_CTX *c, int enc, const uint8_t *key, const uint8_t nonce[12], const uint8_t *aad,
	size_t aad_len, const uint8_t *in, size_t len, uint8_t *out, uint8_t tag[16])
{
	uint8_t fin[16];
	int l = 0, r = CE_CRYPTO;
	size_t done, n;

	if (!c || !key || !nonce || !tag || (aad_len && !aad) || (len && (!in || !out)))
		return CE_ARG;
	if (EVP_CipherInit_ex(c, NULL, NULL, key, nonce, enc) != 1)
		goto out;
	for (done = 0; done < aad_len; done += n) {
		n = aad_len - done > GCM_CHUNK ? GCM_CHUNK : aad_len - done;
		if (EVP_CipherUpdate(c, NULL, &l, aad + done, (int)n) != 1)
			goto out;
	}
	for (done = 0; done < len; done += n) {
		n = len - done > GCM_CHUNK ? GCM_CHUNK : len - done;
		if (EVP_CipherUpdate(c, out + done, &l, in + done, (int)n) != 1)
			goto out;
	}
	if (enc) {
		if (EVP_CipherFinal_ex(c, fin, &l) != 1 ||
		    EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, CRYPTO_GCM_TAG_BYTES, tag) != 1)
			goto out;
	} else {
		if (EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, CRYPTO_GCM_TAG_BYTES, tag) != 1)
			goto out;
		if (EVP_CipherFinal_ex(c, fin, &l) != 1) {
			r = CE_MAC;
			goto out;
		}
	}
	r = 0;
out:
	if (r != 0 && len && out)
		OPENSSL_cleanse(out, len);
	return r;
}

int crypto_gcm_ctx_new(int enc, size_t key_len, EVP_CIPHER_CTX **out)
{
	EVP_CIPHER_CTX *c;
	EVP_CIPHER *ciph;

	if (!out)
		return CE_ARG;
	*out = NULL;
	if (key_len != 16 && key_len != 32)
		return CE_ARG;
	/* An explicitly fetched cipher: EVP skips the implicit fetch per call. */
	ciph = EVP_CIPHER_fetch(NULL, key_len == 16 ? "AES-128-GCM" : "AES-256-GCM", NULL);
	c = EVP_CIPHER_CTX_new();
	if (!c || !ciph || EVP_CipherInit_ex(c, ciph, NULL, NULL, NULL, enc) != 1 ||
	    EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_IVLEN, CRYPTO_GCM_NONCE_BYTES, NULL) != 1) {
		EVP_CIPHER_CTX_free(c);
		EVP_CIPHER_free(ciph);
		return c && ciph ? CE_CRYPTO : CE_NOMEM;
	}
	EVP_CIPHER_free(ciph); /* the context keeps its own reference */
	*out = c;
	return 0;
}

int crypto_gcm(int enc, const uint8_t *key, size_t key_len, const uint8_t nonce[12], const uint8_t *aad,
	size_t aad_len, const uint8_t *in, size_t len, uint8_t *out, uint8_t tag[16])
{
	const EVP_CIPHER *ciph = gcm_cipher(key_len);
	EVP_CIPHER_CTX *c;
	int r;

	if (!ciph)
		return CE_ARG;
	if (!(c = EVP_CIPHER_CTX_new()))
		return CE_NOMEM;
	if (EVP_CipherInit_ex(c, ciph, NULL, NULL, NULL, enc) != 1 ||
	    EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_IVLEN, CRYPTO_GCM_NONCE_BYTES, NULL) != 1) {
		if (len && out)
			OPENSSL_cleanse(out, len);
		r = CE_CRYPTO;
	} else {
		r = crypto_gcm_run(c, enc, key, nonce, aad, aad_len, in, len, out, tag);
	}
	EVP_CIPHER_CTX_free(c);
	return r;
}

static int wrap(int enc, const uint8_t kek[16], const uint8_t *iv, const uint8_t *in, size_t in_len, uint8_t *out,
	size_t out_len)
{
	EVP_CIPHER_CTX *c;
	uint8_t tmp[32];
	int l1 = 0, l2 = 0, r = enc ? CE_CRYPTO : CE_MAC;

	if (!kek || !in || !out)
		return CE_ARG;
	if (!(c = EVP_CIPHER_CTX_new()))
		return CE_NOMEM;
	EVP_CIPHER_CTX_set_flags(c, EVP_CIPHER_CTX_FLAG_WRAP_ALLOW);
	if (EVP_CipherInit_ex(c, EVP_aes_128_wrap(), NULL, kek, iv, enc) != 1) {
		r = CE_CRYPTO;
		goto out;
	}
	if (EVP_CipherUpdate(c, tmp, &l1, in, (int)in_len) != 1 || EVP_CipherFinal_ex(c, tmp + l1, &l2) != 1 ||
	    (size_t)(l1 + l2) != out_len)
		goto out;
	memcpy(out, tmp, out_len);
	r = 0;
out:
	if (r != 0)
		OPENSSL_cleanse(out, out_len);
	OPENSSL_cleanse(tmp, sizeof(tmp));
	EVP_CIPHER_CTX_free(c);
	return r;
}

int crypto_wrap128(const uint8_t kek[16], const uint8_t in[16], uint8_t out[24])
{
	return wrap(1, kek, NULL, in, 16, out, CRYPTO_WRAP_BYTES);
}

int crypto_unwrap128(const uint8_t kek[16], const uint8_t in[24], uint8_t out[16])
{
	return wrap(0, kek, NULL, in, CRYPTO_WRAP_BYTES, out, 16);
}

int crypto_wrap128_iv(const uint8_t kek[16], const uint8_t iv[8], const uint8_t in[16], uint8_t out[24])
{
	return iv ? wrap(1, kek, iv, in, 16, out, CRYPTO_WRAP_BYTES) : CE_ARG;
}

int crypto_unwrap128_iv(const uint8_t kek[16], const uint8_t iv[8], const uint8_t in[24], uint8_t out[16])
{
	return iv ? wrap(0, kek, iv, in, CRYPTO_WRAP_BYTES, out, 16) : CE_ARG;
}

int crypto_kek_new(const uint8_t kek[16], EVP_CIPHER_CTX **out)
{
	EVP_CIPHER_CTX *c;

	if (!kek || !out)
		return CE_ARG;
	*out = NULL;
	if (!(c = EVP_CIPHER_CTX_new()))
		return CE_NOMEM;
	if (EVP_EncryptInit_ex(c, EVP_aes_128_ecb(), NULL, kek, NULL) != 1 || EVP_CIPHER_CTX_set_padding(c, 0) != 1) {
		EVP_CIPHER_CTX_free(c);
		return CE_CRYPTO;
	}
	*out = c;
	return 0;
}

int crypto_wrap128_kek(EVP_CIPHER_CTX *kek, const uint8_t in[16], uint8_t out[24])
{
	static const uint8_t iv[8] = { 0xA6, 0xA6, 0xA6, 0xA6, 0xA6, 0xA6, 0xA6, 0xA6 };

	return crypto_wrap128_kek_iv(kek, iv, in, out);
}

int crypto_wrap128_kek_iv(EVP_CIPHER_CTX *kek, const uint8_t iv[8], const uint8_t in[16], uint8_t out[24])
{
	uint8_t a[8], r[2][8], b[16];
	int l = 0, rc = CE_CRYPTO;

	if (!kek || !iv || !in || !out)
		return CE_ARG;
	memcpy(a, iv, sizeof(a));
	memcpy(r[0], in, 8);
	memcpy(r[1], in + 8, 8);
	for (unsigned j = 0; j < 6; j++) {
		for (unsigned i = 0; i < 2; i++) {
			memcpy(b, a, 8);
			memcpy(b + 8, r[i], 8);
			if (EVP_EncryptUpdate(kek, b, &l, b, 16) != 1 || l != 16)
				goto out;
			memcpy(a, b, 8);
			a[7] ^= (uint8_t)(2 * j + i + 1); /* t = n*j + i, at most 12 */
			memcpy(r[i], b + 8, 8);
		}
	}
	memcpy(out, a, 8);
	memcpy(out + 8, r[0], 8);
	memcpy(out + 16, r[1], 8);
	rc = 0;
out:
	OPENSSL_cleanse(r, sizeof(r));
	OPENSSL_cleanse(b, sizeof(b));
	return rc;
}

int crypto_aes_block(int enc, const uint8_t *key, size_t key_len, const uint8_t in[16], uint8_t out[16])
{
	const EVP_CIPHER *ciph = key_len == 16 ? EVP_aes_128_ecb() : key_len == 32 ? EVP_aes_256_ecb() : NULL;
	EVP_CIPHER_CTX *c;
	int l1 = 0, l2 = 0, r = CE_CRYPTO;

	if (!ciph || !key || !in || !out)
		return CE_ARG;
	if (!(c = EVP_CIPHER_CTX_new()))
		return CE_NOMEM;
	if (EVP_CipherInit_ex(c, ciph, NULL, key, NULL, enc) == 1 && EVP_CIPHER_CTX_set_padding(c, 0) == 1 &&
	    EVP_CipherUpdate(c, out, &l1, in, 16) == 1 && EVP_CipherFinal_ex(c, out + l1, &l2) == 1 && l1 + l2 == 16)
		r = 0;
	EVP_CIPHER_CTX_free(c);
	return r;
}
