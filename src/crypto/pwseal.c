/* pwseal.c - passphrase-sealed files, AES-256-GCM, scrypt (see pwseal.h). */
#include <string.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include "crypto/aead.h"
#include "lib/cursor.h"
#include "crypto/pwseal.h"

int aes256_gcm(int enc, const uint8_t key[32], const uint8_t nonce[12], const uint8_t *aad, size_t aad_len,
	const uint8_t *in, size_t len, uint8_t *out, uint8_t tag[16])
{
	return crypto_gcm(enc, key, 32, nonce, aad, aad_len, in, len, out, tag);
}

int pwseal_scrypt(const char *pass, const uint8_t salt[16], unsigned log2n, uint32_t r, uint32_t p,
	uint8_t key[32])
{
	uint64_t n = 1ull << log2n;
	/* OpenSSL's own accounting: V = 128 r (N + 2), B = 128 r p, plus slack. */
	uint64_t maxmem = 128ull * r * (n + 2) + 128ull * r * p + (1u << 20);

	if (!pass || log2n > 62 ||
	    EVP_PBE_scrypt(pass, strlen(pass), salt, PWSEAL_SALT_BYTES, n, r, p, maxmem, key, PWSEAL_KEY_BYTES) != 1) {
		OPENSSL_cleanse(key, PWSEAL_KEY_BYTES);
		return CE_CRYPTO;
	}
	return 0;
}

int pwseal_seal(const char magic[8], unsigned log2n, uint32_t r, uint32_t p, const char *pass, const uint8_t *ext,
	size_t ext_len, const uint8_t *plain, size_t len, uint8_t *out, size_t out_cap)
{
	uint8_t salt[PWSEAL_SALT_BYTES], nonce[PWSEAL_NONCE_BYTES], key[PWSEAL_KEY_BYTES];
	size_t aad_len = PWSEAL_HDR_BYTES + ext_len;
	struct wbuf w;
	int rc;

	if (!magic || !pass || !*pass || log2n > 255 || (ext_len && !ext) || (len && !plain) || !out)
		return CE_ARG;
	if (ext_len > out_cap || len > out_cap || out_cap - ext_len - len < PWSEAL_BYTES(0, 0))
		return CE_OVERFLOW;
	if (RAND_bytes(salt, sizeof(salt)) != 1 || RAND_bytes(nonce, sizeof(nonce)) != 1)
		return CE_CRYPTO;
	wbuf_init(&w, out, out_cap);
	wbuf_bytes(&w, magic, PWSEAL_MAGIC_BYTES);
	wbuf_u8(&w, (uint8_t)log2n);
	wbuf_u32(&w, r);
	wbuf_u32(&w, p);
	wbuf_bytes(&w, salt, sizeof(salt));
	wbuf_bytes(&w, nonce, sizeof(nonce));
	wbuf_bytes(&w, ext, ext_len);
	if ((rc = wbuf_status(&w)) != 0 || w.len != aad_len)
		return rc ? rc : CE_INTERNAL;
	if ((rc = pwseal_scrypt(pass, salt, log2n, r, p, key)) != 0)
		return rc;
	rc = aes256_gcm(1, key, nonce, out, aad_len, plain, len, out + aad_len, out + aad_len + len);
	OPENSSL_cleanse(key, sizeof(key));
	if (rc != 0)
		OPENSSL_cleanse(out + aad_len, len);
	return rc;
}

int pwseal_parse(const uint8_t *buf, size_t len, const char magic[8], size_t ext_len, struct pwseal_view *v)
{
	struct cur c;

	memset(v, 0, sizeof(*v));
	if (!buf || !magic || ext_len > len || len - ext_len < PWSEAL_BYTES(0, 0))
		return CE_FORMAT;
	if (memcmp(buf, magic, PWSEAL_MAGIC_BYTES) != 0)
		return CE_FORMAT;
	v->ct_len = len - PWSEAL_BYTES(ext_len, 0);
	cur_init(&c, buf, len);
	cur_skip(&c, PWSEAL_MAGIC_BYTES);
	cur_u8(&c, &v->log2n);
	cur_u32(&c, &v->r);
	cur_u32(&c, &v->p);
	v->salt = cur_ptr(&c, PWSEAL_SALT_BYTES);
	v->nonce = cur_ptr(&c, PWSEAL_NONCE_BYTES);
	v->ext = cur_ptr(&c, ext_len);
	v->aad_len = c.off;
	v->ct = cur_ptr(&c, v->ct_len);
	v->tag = cur_ptr(&c, PWSEAL_TAG_BYTES);
	if (cur_end(&c) != 0) {
		memset(v, 0, sizeof(*v));
		return CE_FORMAT;
	}
	return 0;
}

int pwseal_open(const uint8_t *buf, const struct pwseal_view *v, const char *pass, uint8_t *plain)
{
	uint8_t key[PWSEAL_KEY_BYTES], tag[PWSEAL_TAG_BYTES];
	int r;

	if (!buf || !v->salt || !v->tag)
		return CE_ARG;
	if ((r = pwseal_scrypt(pass, v->salt, v->log2n, v->r, v->p, key)) != 0)
		return r;
	memcpy(tag, v->tag, sizeof(tag));
	r = aes256_gcm(0, key, v->nonce, buf, v->aad_len, v->ct, v->ct_len, plain, tag);
	OPENSSL_cleanse(key, sizeof(key));
	return r == CE_MAC ? CE_PASSPHRASE : r;
}
