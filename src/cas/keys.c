/*
 * keys.c - the head-end keystore file and package key derivation (keys.h).
 *
 * File format (docs/key-files.md has the byte table), 107 bytes:
 *   "CSTLKS01" | log2(N) u8 | r u32 | p u32 | salt[16] | nonce[12]
 *   | AES-256-GCM(body[46]) | tag[16]
 * key = scrypt(passphrase, salt, N, r, p) (RFC 7914), AAD = the 45 header
 * bytes, body = ca_system_id u16 | epoch_seconds u32 | created u64 | root[32].
 *
 * K_pkg(epoch, pkg) = KBKDF (NIST SP 800-108 counter mode, CMAC-AES-256,
 * OpenSSL 3 EVP_KDF "KBKDF") with key = root, label = "castellan package
 * key", context = epoch u32 BE || pkg u8, L = 128 bits.
 *
 * Normative references: RFC 7914 (scrypt), NIST SP 800-38D (GCM),
 * NIST SP 800-108r1 (KBKDF), NIST SP 800-38B (CMAC).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <openssl/rand.h>
#include "cas/keys.h"
#include "lib/cursor.h"
#include "lib/util.h"

#define KS_MAGIC "CSTLKS01"
#define KS_MAGIC_BYTES 8
#define KS_SALT_BYTES 16
#define KS_NONCE_BYTES 12
#define KS_TAG_BYTES 16
#define KS_HEADER_BYTES (KS_MAGIC_BYTES + 1 + 4 + 4 + KS_SALT_BYTES + KS_NONCE_BYTES) /* 45 */
#define KS_BODY_BYTES (2 + 4 + 8 + KEYSTORE_ROOT_BYTES)                              /* 46 */
#define KS_AEAD_KEY_BYTES 32
#define PKG_LABEL "castellan package key"

_Static_assert(KS_HEADER_BYTES + KS_BODY_BYTES + KS_TAG_BYTES == KEYSTORE_FILE_BYTES, "keystore size");

struct keystore {
	uint16_t ca_system_id;
	uint32_t epoch_seconds;
	uint64_t created_s;
	uint8_t root[KEYSTORE_ROOT_BYTES]; /* the package root: secret */
};

void pkg_key_wipe(struct pkg_key *k)
{
	if (k)
		OPENSSL_cleanse(k, sizeof(*k));
}

void keystore_free(struct keystore *ks)
{
	if (!ks)
		return;
	OPENSSL_cleanse(ks, sizeof(*ks));
	free(ks);
}

static bool epoch_seconds_ok(uint32_t s)
{
	return s >= KEYSTORE_MIN_EPOCH_SECONDS && s <= KEYSTORE_MAX_EPOCH_SECONDS;
}

int keystore_generate(uint16_t ca_system_id, uint32_t epoch_seconds, struct keystore **out)
{
	struct keystore *ks;

	*out = NULL;
	if (epoch_seconds == 0)
		epoch_seconds = KEYSTORE_DEFAULT_EPOCH_SECONDS;
	if (!epoch_seconds_ok(epoch_seconds))
		return CE_RANGE;
	ks = calloc(1, sizeof(*ks));
	if (!ks)
		return CE_NOMEM;
	ks->ca_system_id = ca_system_id;
	ks->epoch_seconds = epoch_seconds;
	ks->created_s = now_wall_ms() / 1000u;
	if (RAND_bytes(ks->root, sizeof(ks->root)) != 1) {
		keystore_free(ks);
		return CE_CRYPTO;
	}
	*out = ks;
	return 0;
}

int keystore_from_root(uint16_t ca_system_id, uint32_t epoch_seconds, const uint8_t root[KEYSTORE_ROOT_BYTES],
	struct keystore **out)
{
	int r;

	*out = NULL;
	if (!root)
		return CE_ARG;
	if ((r = keystore_generate(ca_system_id, epoch_seconds, out)) != 0)
		return r;
	memcpy((*out)->root, root, KEYSTORE_ROOT_BYTES);
	return 0;
}

uint16_t keystore_ca_system_id(const struct keystore *ks) { return ks->ca_system_id; }
uint32_t keystore_epoch_seconds(const struct keystore *ks) { return ks->epoch_seconds; }
uint64_t keystore_created(const struct keystore *ks) { return ks->created_s; }

uint32_t keystore_epoch_at(const struct keystore *ks, uint64_t unix_s)
{
	uint64_t e = unix_s / ks->epoch_seconds;

	return e > UINT32_MAX ? UINT32_MAX : (uint32_t)e;
}

void keystore_fingerprint(const struct keystore *ks, char out[17])
{
	/* Domain-separated so the fingerprint is not a plain hash of the root. */
	static const char dom[] = "castellan keystore fingerprint";
	uint8_t md[32];
	unsigned mdlen = 0;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();

	memset(md, 0, sizeof(md));
	if (!ctx || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1 ||
	    EVP_DigestUpdate(ctx, dom, sizeof(dom) - 1) != 1 ||
	    EVP_DigestUpdate(ctx, ks->root, sizeof(ks->root)) != 1 ||
	    EVP_DigestFinal_ex(ctx, md, &mdlen) != 1)
		memset(md, 0, sizeof(md));
	EVP_MD_CTX_free(ctx);
	hex_encode(md, 8, out);
}

int keystore_package_key(const struct keystore *ks, uint32_t epoch, unsigned pkg, struct pkg_key *out)
{
	EVP_KDF *kdf = NULL;
	EVP_KDF_CTX *kctx = NULL;
	OSSL_PARAM params[7], *p = params;
	uint8_t ctxt[5];
	int r = CE_CRYPTO;

	memset(out, 0, sizeof(*out));
	if (pkg >= CAS_MAX_PACKAGES)
		return CE_RANGE;
	put_be32(ctxt, epoch);
	ctxt[4] = (uint8_t)pkg;
	kdf = EVP_KDF_fetch(NULL, "KBKDF", NULL);
	if (!kdf)
		goto out;
	kctx = EVP_KDF_CTX_new(kdf);
	if (!kctx)
		goto out;
	*p++ = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_MODE, (char *)"counter", 0);
	*p++ = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_MAC, (char *)"CMAC", 0);
	*p++ = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_CIPHER, (char *)"AES-256-CBC", 0);
	*p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)(uintptr_t)ks->root, sizeof(ks->root));
	*p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *)(uintptr_t)PKG_LABEL,
		sizeof(PKG_LABEL) - 1);
	*p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, ctxt, sizeof(ctxt));
	*p = OSSL_PARAM_construct_end();
	if (EVP_KDF_derive(kctx, out->key, sizeof(out->key), params) != 1) {
		OPENSSL_cleanse(out, sizeof(*out));
		goto out;
	}
	out->epoch = epoch;
	out->pkg = (uint8_t)pkg;
	r = 0;
out:
	EVP_KDF_CTX_free(kctx);
	EVP_KDF_free(kdf);
	return r;
}

static bool scrypt_params_ok(unsigned log2n, uint32_t r, uint32_t p)
{
	if (log2n < KEYSTORE_SCRYPT_MIN_LOG2N || log2n > KEYSTORE_SCRYPT_MAX_LOG2N)
		return false;
	if (r < 1 || r > KEYSTORE_SCRYPT_MAX_R || p < 1 || p > KEYSTORE_SCRYPT_MAX_P)
		return false;
	return 128ull * r * (1ull << log2n) <= KEYSTORE_SCRYPT_MAX_MEM;
}

static int derive_file_key(const char *pass, const uint8_t *salt, unsigned log2n, uint32_t r, uint32_t p,
	uint8_t key[KS_AEAD_KEY_BYTES])
{
	uint64_t n = 1ull << log2n;
	/* OpenSSL's own accounting: V = 128 r (N + 2), B = 128 r p, plus slack. */
	uint64_t maxmem = 128ull * r * (n + 2) + 128ull * r * p + (1u << 20);

	if (EVP_PBE_scrypt(pass, strlen(pass), salt, KS_SALT_BYTES, n, r, p, maxmem, key, KS_AEAD_KEY_BYTES) != 1) {
		OPENSSL_cleanse(key, KS_AEAD_KEY_BYTES);
		return CE_CRYPTO;
	}
	return 0;
}

/* AES-256-GCM one-shot; enc: 1 encrypt (writes tag), 0 decrypt (checks tag:
 * CE_MAC on mismatch). */
static int gcm256(int enc, const uint8_t key[32], const uint8_t *nonce, const uint8_t *aad, size_t aad_len,
	const uint8_t *in, size_t len, uint8_t *out, uint8_t *tag)
{
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
	int outl = 0, r = CE_CRYPTO;

	if (!c)
		return CE_NOMEM;
	if (EVP_CipherInit_ex(c, EVP_aes_256_gcm(), NULL, NULL, NULL, enc) != 1 ||
	    EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_IVLEN, KS_NONCE_BYTES, NULL) != 1 ||
	    EVP_CipherInit_ex(c, NULL, NULL, key, nonce, enc) != 1 ||
	    EVP_CipherUpdate(c, NULL, &outl, aad, (int)aad_len) != 1 ||
	    EVP_CipherUpdate(c, out, &outl, in, (int)len) != 1)
		goto out;
	if (enc) {
		if (EVP_CipherFinal_ex(c, out + outl, &outl) != 1 ||
		    EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, KS_TAG_BYTES, tag) != 1)
			goto out;
	} else {
		if (EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, KS_TAG_BYTES, tag) != 1)
			goto out;
		if (EVP_CipherFinal_ex(c, out + outl, &outl) != 1) {
			OPENSSL_cleanse(out, len);
			r = CE_MAC;
			goto out;
		}
	}
	r = 0;
out:
	EVP_CIPHER_CTX_free(c);
	return r;
}

int keystore_encode_params(const struct keystore *ks, const char *passphrase, unsigned log2n, uint32_t r,
	uint32_t p, uint8_t **out, size_t *out_len)
{
	uint8_t body[KS_BODY_BYTES], key[KS_AEAD_KEY_BYTES], salt[KS_SALT_BYTES], nonce[KS_NONCE_BYTES];
	uint8_t *file = NULL;
	struct wbuf w;
	int rc;

	*out = NULL;
	*out_len = 0;
	if (!ks || !passphrase || !*passphrase)
		return CE_ARG;
	if (!scrypt_params_ok(log2n, r, p))
		return CE_RANGE;
	file = calloc(1, KEYSTORE_FILE_BYTES);
	if (!file)
		return CE_NOMEM;
	if (RAND_bytes(salt, sizeof(salt)) != 1 || RAND_bytes(nonce, sizeof(nonce)) != 1) {
		rc = CE_CRYPTO;
		goto out;
	}
	wbuf_init(&w, file, KEYSTORE_FILE_BYTES);
	wbuf_bytes(&w, KS_MAGIC, KS_MAGIC_BYTES);
	wbuf_u8(&w, (uint8_t)log2n);
	wbuf_u32(&w, r);
	wbuf_u32(&w, p);
	wbuf_bytes(&w, salt, sizeof(salt));
	wbuf_bytes(&w, nonce, sizeof(nonce));
	if ((rc = wbuf_status(&w)) != 0 || w.len != KS_HEADER_BYTES) {
		rc = rc ? rc : CE_INTERNAL;
		goto out;
	}
	wbuf_init(&w, body, sizeof(body));
	wbuf_u16(&w, ks->ca_system_id);
	wbuf_u32(&w, ks->epoch_seconds);
	wbuf_u64(&w, ks->created_s);
	wbuf_bytes(&w, ks->root, sizeof(ks->root));
	if ((rc = wbuf_status(&w)) != 0)
		goto out;
	if ((rc = derive_file_key(passphrase, salt, log2n, r, p, key)) != 0)
		goto out;
	rc = gcm256(1, key, nonce, file, KS_HEADER_BYTES, body, sizeof(body), file + KS_HEADER_BYTES,
		file + KS_HEADER_BYTES + KS_BODY_BYTES);
	if (rc != 0)
		goto out;
	*out = file;
	*out_len = KEYSTORE_FILE_BYTES;
	file = NULL;
out:
	OPENSSL_cleanse(body, sizeof(body));
	OPENSSL_cleanse(key, sizeof(key));
	free(file);
	return rc;
}

int keystore_encode(const struct keystore *ks, const char *passphrase, uint8_t **out, size_t *out_len)
{
	return keystore_encode_params(ks, passphrase, KEYSTORE_SCRYPT_LOG2N, KEYSTORE_SCRYPT_R, KEYSTORE_SCRYPT_P,
		out, out_len);
}

int keystore_decode(const uint8_t *file, size_t len, const char *passphrase, struct keystore **out)
{
	struct cur c, b;
	uint8_t magic[KS_MAGIC_BYTES], log2n = 0, key[KS_AEAD_KEY_BYTES], body[KS_BODY_BYTES];
	uint32_t r = 0, p = 0;
	const uint8_t *salt, *nonce, *ct, *tag;
	struct keystore *ks = NULL;
	int rc;

	*out = NULL;
	memset(body, 0, sizeof(body));
	memset(key, 0, sizeof(key));
	if (!file || !passphrase || !*passphrase)
		return CE_ARG;
	if (len != KEYSTORE_FILE_BYTES)
		return CE_FORMAT;
	cur_init(&c, file, len);
	cur_bytes(&c, magic, sizeof(magic));
	cur_u8(&c, &log2n);
	cur_u32(&c, &r);
	cur_u32(&c, &p);
	salt = cur_ptr(&c, KS_SALT_BYTES);
	nonce = cur_ptr(&c, KS_NONCE_BYTES);
	ct = cur_ptr(&c, KS_BODY_BYTES);
	tag = cur_ptr(&c, KS_TAG_BYTES);
	if ((rc = cur_end(&c)) != 0)
		return CE_FORMAT;
	if (memcmp(magic, KS_MAGIC, KS_MAGIC_BYTES) != 0)
		return CE_FORMAT;
	/* Bound the work a file can demand before running scrypt. */
	if (!scrypt_params_ok(log2n, r, p))
		return CE_FORMAT;
	if ((rc = derive_file_key(passphrase, salt, log2n, r, p, key)) != 0)
		goto out;
	rc = gcm256(0, key, nonce, file, KS_HEADER_BYTES, ct, KS_BODY_BYTES, body, (uint8_t *)(uintptr_t)tag);
	if (rc == CE_MAC) {
		rc = CE_PASSPHRASE;
		goto out;
	}
	if (rc != 0)
		goto out;
	ks = calloc(1, sizeof(*ks));
	if (!ks) {
		rc = CE_NOMEM;
		goto out;
	}
	cur_init(&b, body, sizeof(body));
	cur_u16(&b, &ks->ca_system_id);
	cur_u32(&b, &ks->epoch_seconds);
	cur_u64(&b, &ks->created_s);
	cur_bytes(&b, ks->root, sizeof(ks->root));
	if ((rc = cur_end(&b)) != 0)
		goto out;
	/* Authentic but unusable (written by a broken tool): refuse. */
	if (!epoch_seconds_ok(ks->epoch_seconds)) {
		rc = CE_FORMAT;
		goto out;
	}
	*out = ks;
	ks = NULL;
	rc = 0;
out:
	OPENSSL_cleanse(key, sizeof(key));
	OPENSSL_cleanse(body, sizeof(body));
	keystore_free(ks);
	return rc;
}

int keystore_load(const char *path, const char *passphrase, struct keystore **out)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	int r;

	*out = NULL;
	r = file_read_all(path, KEYSTORE_MAX_FILE_BYTES, &buf, &len);
	if (r != 0)
		return r == CE_LIMIT ? CE_FORMAT : r;
	r = keystore_decode(buf, len, passphrase, out);
	free(buf);
	return r;
}

int keystore_save(const struct keystore *ks, const char *path, const char *passphrase)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	int r;

	if ((r = keystore_encode(ks, passphrase, &buf, &len)) != 0)
		return r;
	r = file_write_atomic(path, buf, len, 0600);
	free(buf);
	return r;
}

int passphrase_get(const char *path, char **out)
{
	uint8_t *buf = NULL;
	size_t len = 0, n;
	char *p = NULL;
	int r;

	*out = NULL;
	if (path) {
		if ((r = file_read_all(path, 4096, &buf, &len)) != 0)
			return r;
		for (n = 0; n < len && buf[n] != '\n' && buf[n] != '\r'; n++)
			;
		if (n == 0 || memchr(buf, '\0', n)) {
			secret_free(buf, len);
			return CE_ARG;
		}
		p = malloc(n + 1);
		if (p) {
			memcpy(p, buf, n);
			p[n] = '\0';
		}
		secret_free(buf, len);
	} else {
		const char *env = getenv(KEYSTORE_PASSPHRASE_ENV);

		if (!env)
			return CE_NOT_FOUND;
		if (!*env)
			return CE_ARG;
		p = strdup(env);
	}
	if (!p)
		return CE_NOMEM;
	*out = p;
	return 0;
}
