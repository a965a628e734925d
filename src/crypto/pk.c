/*
 * pk.c - Ed25519 / X25519 on raw keys through OpenSSL 3 EVP_PKEY (pk.h).
 */
#include <string.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include "crypto/pk.h"
#include "lib/util.h"

static int raw_public(int type, const uint8_t priv[32], uint8_t pub[32])
{
	EVP_PKEY *k = EVP_PKEY_new_raw_private_key(type, NULL, priv, 32);
	size_t n = 32;
	int r = CE_CRYPTO;

	if (k && EVP_PKEY_get_raw_public_key(k, pub, &n) == 1 && n == 32)
		r = 0;
	EVP_PKEY_free(k);
	return r;
}

int pk_ed25519_public(const uint8_t priv[32], uint8_t pub[32]) { return raw_public(EVP_PKEY_ED25519, priv, pub); }
int pk_x25519_public(const uint8_t priv[32], uint8_t pub[32]) { return raw_public(EVP_PKEY_X25519, priv, pub); }

static int generate(int type, uint8_t priv[32], uint8_t pub[32])
{
	int r;

	if (RAND_bytes(priv, 32) != 1)
		return CE_CRYPTO;
	if ((r = raw_public(type, priv, pub)) != 0)
		OPENSSL_cleanse(priv, 32);
	return r;
}

int pk_ed25519_generate(uint8_t priv[32], uint8_t pub[32]) { return generate(EVP_PKEY_ED25519, priv, pub); }
int pk_x25519_generate(uint8_t priv[32], uint8_t pub[32]) { return generate(EVP_PKEY_X25519, priv, pub); }

int pk_sign(const uint8_t priv[32], const uint8_t *msg, size_t len, uint8_t sig[64])
{
	EVP_PKEY *k = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, priv, 32);
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	size_t n = 64;
	int r = CE_CRYPTO;

	if (k && c && EVP_DigestSignInit(c, NULL, NULL, NULL, k) == 1 &&
	    EVP_DigestSign(c, sig, &n, msg, len) == 1 && n == 64)
		r = 0;
	EVP_MD_CTX_free(c);
	EVP_PKEY_free(k);
	return r;
}

int pk_verify(const uint8_t pub[32], const uint8_t *msg, size_t len, const uint8_t sig[64])
{
	EVP_PKEY *k = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, pub, 32);
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	int r = CE_MAC;

	if (!k || !c)
		r = CE_CRYPTO;
	else if (EVP_DigestVerifyInit(c, NULL, NULL, NULL, k) == 1 && EVP_DigestVerify(c, sig, 64, msg, len) == 1)
		r = 0;
	EVP_MD_CTX_free(c);
	EVP_PKEY_free(k);
	return r;
}

int pk_x25519(const uint8_t priv[32], const uint8_t peer_pub[32], uint8_t shared[32])
{
	static const uint8_t zero[32];
	EVP_PKEY *k = EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, NULL, priv, 32);
	EVP_PKEY *peer = EVP_PKEY_new_raw_public_key(EVP_PKEY_X25519, NULL, peer_pub, 32);
	EVP_PKEY_CTX *c = k ? EVP_PKEY_CTX_new(k, NULL) : NULL;
	size_t n = 32;
	int r = CE_CRYPTO;

	if (c && peer && EVP_PKEY_derive_init(c) == 1 && EVP_PKEY_derive_set_peer(c, peer) == 1 &&
	    EVP_PKEY_derive(c, shared, &n) == 1 && n == 32 && CRYPTO_memcmp(shared, zero, 32) != 0)
		r = 0;
	if (r != 0)
		OPENSSL_cleanse(shared, 32);
	EVP_PKEY_CTX_free(c);
	EVP_PKEY_free(peer);
	EVP_PKEY_free(k);
	return r;
}

void pk_hash(const uint8_t pub[32], uint8_t out[32]) { SHA256(pub, 32, out); }

int pk_read_file(const char *path, uint8_t key[32])
{
	uint8_t *buf = NULL;
	size_t len = 0;
	char hex[65];
	int r;

	memset(key, 0, 32);
	if ((r = file_read_all(path, 256, &buf, &len)) != 0)
		return r == CE_LIMIT ? CE_FORMAT : r;
	while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
		len--;
	if (len != 64) {
		secret_free(buf, len);
		return CE_FORMAT;
	}
	memcpy(hex, buf, 64);
	hex[64] = '\0';
	r = hex_decode(hex, key, 32) == 0 ? 0 : CE_FORMAT;
	secret_wipe(hex, sizeof(hex));
	secret_free(buf, len);
	return r;
}

int pk_write_file(const char *path, const uint8_t key[32], int secret)
{
	char hex[66];
	int r;

	hex_encode(key, 32, hex);
	hex[64] = '\n';
	hex[65] = '\0';
	r = file_write_atomic(path, hex, 65, secret ? 0600 : 0644);
	secret_wipe(hex, sizeof(hex));
	return r;
}
