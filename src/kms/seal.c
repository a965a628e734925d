/*
 * seal.c - sealed key files (seal.h has the byte table). References: RFC 7748
 * (X25519), RFC 5869 (HKDF), NIST SP 800-38D (GCM), RFC 8032 (Ed25519).
 */
#include <stdlib.h>
#include <string.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/rand.h>
#include "crypto/pk.h"
#include "kms/seal.h"
#include "lib/cursor.h"
#include "crypto/pwseal.h"

#define SEAL_INFO "castellan seal v1"

static int seal_key(const uint8_t shared[32], const uint8_t eph_pub[32], const uint8_t rcpt_pub[32], uint8_t kind,
	uint8_t key[32])
{
	EVP_KDF *kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
	EVP_KDF_CTX *c = kdf ? EVP_KDF_CTX_new(kdf) : NULL;
	uint8_t salt[64], info[sizeof(SEAL_INFO)];
	OSSL_PARAM p[5];
	int r = CE_CRYPTO;

	memcpy(salt, eph_pub, 32);
	memcpy(salt + 32, rcpt_pub, 32);
	memcpy(info, SEAL_INFO, sizeof(SEAL_INFO) - 1);
	info[sizeof(SEAL_INFO) - 1] = kind;
	p[0] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)"SHA256", 0);
	p[1] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)(uintptr_t)shared, 32);
	p[2] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, salt, sizeof(salt));
	p[3] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, info, sizeof(info));
	p[4] = OSSL_PARAM_construct_end();
	if (c && EVP_KDF_derive(c, key, 32, p) == 1)
		r = 0;
	EVP_KDF_CTX_free(c);
	EVP_KDF_free(kdf);
	return r;
}

void seal_records_free(struct seal_record *recs, size_t n)
{
	if (!recs)
		return;
	OPENSSL_cleanse(recs, n * sizeof(*recs));
	free(recs);
}

int seal_build(const struct seal_header *h, const struct seal_record *recs, const uint8_t signer_priv[32],
	uint8_t **out, size_t *out_len)
{
	uint8_t eph[32], eph_pub[32], shared[32], key[32], nonce[12], pub[32];
	uint8_t *file = NULL, *plain = NULL;
	size_t len, aad_len, n;
	struct wbuf w;
	int r;

	*out = NULL;
	*out_len = 0;
	if (!h || !recs || !signer_priv || (h->kind != SEAL_KIND_BLACKBOX && h->kind != SEAL_KIND_VENDOR))
		return CE_ARG;
	n = h->count;
	if (n < 1 || n > SEAL_MAX_RECORDS)
		return CE_RANGE;
	for (size_t i = 1; i < n; i++)
		if (recs[i].chip_id <= recs[i - 1].chip_id)
			return CE_ARG;
	len = SEAL_FILE_BYTES(n);
	aad_len = SEAL_HEADER_BYTES + 8 * n;
	file = malloc(len);
	plain = malloc(16 * n);
	if (!file || !plain) {
		r = CE_NOMEM;
		goto out;
	}
	if ((r = pk_ed25519_public(signer_priv, pub)) != 0 || (r = pk_x25519_generate(eph, eph_pub)) != 0 ||
	    (r = pk_x25519(eph, h->recipient_pub, shared)) != 0 ||
	    (r = seal_key(shared, eph_pub, h->recipient_pub, h->kind, key)) != 0)
		goto out;
	if (RAND_bytes(nonce, sizeof(nonce)) != 1) {
		r = CE_CRYPTO;
		goto out;
	}
	wbuf_init(&w, file, len);
	wbuf_bytes(&w, SEAL_MAGIC, 8);
	wbuf_u8(&w, SEAL_VERSION);
	wbuf_u8(&w, h->kind);
	wbuf_u32(&w, h->order);
	wbuf_u32(&w, h->kind == SEAL_KIND_VENDOR ? h->vendor_id : 0);
	wbuf_bytes(&w, h->file_id, 16);
	wbuf_u64(&w, h->created_s);
	wbuf_bytes(&w, pub, 32);
	wbuf_bytes(&w, h->recipient_pub, 32);
	wbuf_bytes(&w, h->trust_root_hash, 32);
	wbuf_bytes(&w, eph_pub, 32);
	wbuf_bytes(&w, nonce, 12);
	wbuf_u32(&w, (uint32_t)n);
	for (size_t i = 0; i < n; i++) {
		wbuf_u64(&w, recs[i].chip_id);
		memcpy(plain + 16 * i, recs[i].key, 16);
	}
	if ((r = wbuf_status(&w)) != 0 || w.len != aad_len) {
		r = r ? r : CE_INTERNAL;
		goto out;
	}
	if ((r = aes256_gcm(1, key, nonce, file, aad_len, plain, 16 * n, file + aad_len, file + aad_len + 16 * n)) != 0)
		goto out;
	if ((r = pk_sign(signer_priv, file, len - 64, file + len - 64)) != 0)
		goto out;
	*out = file;
	*out_len = len;
	file = NULL;
out:
	OPENSSL_cleanse(eph, sizeof(eph));
	OPENSSL_cleanse(shared, sizeof(shared));
	OPENSSL_cleanse(key, sizeof(key));
	if (plain) {
		OPENSSL_cleanse(plain, 16 * n);
		free(plain);
	}
	free(file);
	return r;
}

/* Header fields, plus the offsets of the variable part. */
static int parse(const uint8_t *buf, size_t len, struct seal_header *h, uint8_t eph_pub[32], uint8_t nonce[12])
{
	uint8_t magic[8], version = 0;
	struct cur c;
	uint32_t n = 0;

	memset(h, 0, sizeof(*h));
	if (!buf || len < SEAL_FILE_BYTES(1))
		return CE_FORMAT;
	cur_init(&c, buf, len);
	cur_bytes(&c, magic, 8);
	cur_u8(&c, &version);
	cur_u8(&c, &h->kind);
	cur_u32(&c, &h->order);
	cur_u32(&c, &h->vendor_id);
	cur_bytes(&c, h->file_id, 16);
	cur_u64(&c, &h->created_s);
	cur_bytes(&c, h->signer_pub, 32);
	cur_bytes(&c, h->recipient_pub, 32);
	cur_bytes(&c, h->trust_root_hash, 32);
	cur_bytes(&c, eph_pub, 32);
	cur_bytes(&c, nonce, 12);
	cur_u32(&c, &n);
	if (c.err)
		return CE_FORMAT;
	if (memcmp(magic, SEAL_MAGIC, 8) != 0)
		return CE_FORMAT;
	if (version != SEAL_VERSION)
		return CE_UNSUPPORTED;
	if (h->kind != SEAL_KIND_BLACKBOX && h->kind != SEAL_KIND_VENDOR)
		return CE_FORMAT;
	if (h->kind == SEAL_KIND_BLACKBOX && h->vendor_id != 0)
		return CE_FORMAT;
	if (n < 1 || n > SEAL_MAX_RECORDS)
		return CE_RANGE;
	/* The declared count must match the file size exactly. */
	if (len != SEAL_FILE_BYTES(n))
		return CE_FORMAT;
	h->count = n;
	/* Strictly increasing chip ids. */
	for (uint32_t i = 1; i < n; i++) {
		size_t at = SEAL_HEADER_BYTES + 8 * (size_t)(i - 1);
		uint64_t x = 0, y = 0;

		if (cur_u64_at(buf, len, at, &x) != 0 || cur_u64_at(buf, len, at + 8, &y) != 0 || y <= x)
			return CE_FORMAT;
	}
	return 0;
}

int seal_parse(const uint8_t *buf, size_t len, struct seal_header *h)
{
	uint8_t eph[32], nonce[12];
	int r = parse(buf, len, h, eph, nonce);

	if (r != 0)
		memset(h, 0, sizeof(*h));
	return r;
}

int seal_open(const uint8_t *buf, size_t len, const uint8_t expected_signer[32], const uint8_t recipient_priv[32],
	struct seal_header *h, struct seal_record **recs)
{
	uint8_t eph_pub[32], nonce[12], my_pub[32], shared[32], key[32], tag[16];
	uint8_t *plain = NULL;
	struct seal_record *out = NULL;
	size_t n = 0, aad_len;
	int r;

	*recs = NULL;
	if ((r = parse(buf, len, h, eph_pub, nonce)) != 0)
		goto out;
	n = h->count;
	if (CRYPTO_memcmp(h->signer_pub, expected_signer, 32) != 0) {
		r = CE_MAC;
		goto out;
	}
	if ((r = pk_verify(h->signer_pub, buf, len - 64, buf + len - 64)) != 0)
		goto out;
	if ((r = pk_x25519_public(recipient_priv, my_pub)) != 0)
		goto out;
	if (CRYPTO_memcmp(my_pub, h->recipient_pub, 32) != 0) {
		r = CE_PASSPHRASE;
		goto out;
	}
	if ((r = pk_x25519(recipient_priv, eph_pub, shared)) != 0 ||
	    (r = seal_key(shared, eph_pub, my_pub, h->kind, key)) != 0)
		goto out;
	aad_len = SEAL_HEADER_BYTES + 8 * n;
	plain = malloc(16 * n);
	out = calloc(n, sizeof(*out));
	if (!plain || !out) {
		r = CE_NOMEM;
		goto out;
	}
	memcpy(tag, buf + aad_len + 16 * n, 16);
	r = aes256_gcm(0, key, nonce, buf, aad_len, buf + aad_len, 16 * n, plain, tag);
	if (r == CE_MAC)
		r = CE_PASSPHRASE;
	if (r != 0)
		goto out;
	for (size_t i = 0; i < n; i++) {
		if (cur_u64_at(buf, len, SEAL_HEADER_BYTES + 8 * i, &out[i].chip_id) != 0) {
			r = CE_FORMAT;
			goto out;
		}
		memcpy(out[i].key, plain + 16 * i, 16);
	}
	*recs = out;
	out = NULL;
	r = 0;
out:
	OPENSSL_cleanse(shared, sizeof(shared));
	OPENSSL_cleanse(key, sizeof(key));
	if (plain) {
		OPENSSL_cleanse(plain, 16 * n);
		free(plain);
	}
	seal_records_free(out, n);
	if (r != 0)
		memset(h, 0, sizeof(*h));
	return r;
}
