/*
 * ecmforge.h - the cross-package ECM forgery of issue 12 item 9, for tests
 * of every ECM opener (ecm_open, the card applet, the secure chip): a holder
 * of one package's key opens that package's wrap to learn K_ecm and re-seals
 * the ECM with its own ECM_id, timestamp and CWs, keeping every other wrap.
 * Format v2 must refuse the result for every other package (CE_MAC).
 * Header-only (static inline), OpenSSL EVP.
 */
#ifndef CASTELLAN_TESTS_ECMFORGE_H
#define CASTELLAN_TESTS_ECMFORGE_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include "lib/bytes.h"
#include "cas/ecm.h"
#include "lib/cursor.h"

/* RFC 3394 unwrap by hand (AES-128-ECB), returning the integrity value A
 * instead of checking it: what a forger with the KEK can do with any wrap,
 * whatever IV the format puts in A. */
static inline bool tu_raw_unwrap(const uint8_t kek[16], const uint8_t wrap[24], uint8_t a_out[8],
	uint8_t key_out[16])
{
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
	uint8_t a[8], r[2][8], b[16];
	int l = 0;
	bool ok = c && EVP_DecryptInit_ex(c, EVP_aes_128_ecb(), NULL, kek, NULL) == 1 &&
		  EVP_CIPHER_CTX_set_padding(c, 0) == 1;

	memcpy(a, wrap, 8);
	memcpy(r[0], wrap + 8, 8);
	memcpy(r[1], wrap + 16, 8);
	for (int j = 5; ok && j >= 0; j--) {
		for (int i = 1; ok && i >= 0; i--) {
			memcpy(b, a, 8);
			b[7] ^= (uint8_t)(2 * j + i + 1);
			memcpy(b + 8, r[i], 8);
			ok = EVP_DecryptUpdate(c, b, &l, b, 16) == 1 && l == 16;
			memcpy(a, b, 8);
			memcpy(r[i], b + 8, 8);
		}
	}
	memcpy(a_out, a, 8);
	memcpy(key_out, r[0], 8);
	memcpy(key_out + 8, r[1], 8);
	EVP_CIPHER_CTX_free(c);
	return ok;
}

/* Re-make the wrap of K_ecm for the key's own package over the forged
 * bytes, as docs/ecm-format.md v2 defines it, written here independently of
 * src/cas/ecm.c: K_mac = AES-128-ECB(K_pkg, "castellan ecm v2"), IV = first
 * 8 bytes of CMAC-AES-128(K_mac, D), wrap = RFC 3394(K_pkg, IV, K_ecm). */
static inline bool tu_ecm_rewrap(const uint8_t key[16], const uint8_t kecm[16], const uint8_t *d, size_t d_len,
	uint8_t wrap[24])
{
	static const uint8_t label[16] = "castellan ecm v2";
	char cipher[] = "AES-128-CBC";
	OSSL_PARAM params[] = { OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_CIPHER, cipher, 0), OSSL_PARAM_END };
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
	EVP_MAC *mac = EVP_MAC_fetch(NULL, "CMAC", NULL);
	EVP_MAC_CTX *m = mac ? EVP_MAC_CTX_new(mac) : NULL;
	uint8_t kmac[16], t[16];
	size_t tl = 0;
	int l = 0, l2 = 0;
	bool ok = c && m && EVP_EncryptInit_ex(c, EVP_aes_128_ecb(), NULL, key, NULL) == 1 &&
		  EVP_CIPHER_CTX_set_padding(c, 0) == 1 && EVP_EncryptUpdate(c, kmac, &l, label, 16) == 1 &&
		  EVP_MAC_init(m, kmac, 16, params) == 1 && EVP_MAC_update(m, d, d_len) == 1 &&
		  EVP_MAC_final(m, t, &tl, sizeof(t)) == 1;

	EVP_CIPHER_CTX_free(c);
	c = EVP_CIPHER_CTX_new();
	if (ok && c) {
		EVP_CIPHER_CTX_set_flags(c, EVP_CIPHER_CTX_FLAG_WRAP_ALLOW);
		ok = EVP_EncryptInit_ex(c, EVP_aes_128_wrap(), NULL, key, t) == 1 &&
		     EVP_EncryptUpdate(c, wrap, &l, kecm, 16) == 1 && EVP_EncryptFinal_ex(c, wrap + l, &l2) == 1 &&
		     l + l2 == 24;
	}
	EVP_CIPHER_CTX_free(c);
	EVP_MAC_CTX_free(m);
	EVP_MAC_free(mac);
	OPENSSL_cleanse(kmac, sizeof(kmac));
	return ok;
}

/* Forge from the genuine sec (len bytes) with package kpkg's key (a package
 * of the ECM): out gets a well-formed ECM with ECM_id ecm_id, timestamp
 * ts_ms and the CWs cws (even then odd, as many bytes as the original's
 * ciphertext), every wrap kept -- but with rewrap_own the forger's own
 * package's wrap is made again over the new bytes (what a package key holder
 * can always do for that package). true if the forgery could be built. */
static inline bool tu_ecm_forge(const uint8_t *sec, size_t len, uint8_t kpkg, const uint8_t key[16],
	uint16_t ecm_id, uint64_t ts_ms, const uint8_t *cws, bool rewrap_own, uint8_t *out)
{
	struct ecm_view v;
	const uint8_t *wrap = NULL;
	uint8_t a[8], kecm[16];
	EVP_CIPHER_CTX *c;
	int l = 0;
	bool ok;

	if (ecm_parse(sec, len, &v) != 0)
		return false;
	for (unsigned i = 0; i < v.nwraps; i++)
		if (v.wraps[i * (1 + ECM_WRAP_BYTES)] == kpkg)
			wrap = v.wraps + i * (1 + ECM_WRAP_BYTES) + 1;
	if (!wrap || !tu_raw_unwrap(key, wrap, a, kecm))
		return false;
	memcpy(out, sec, len);
	put_be16(out + 5, ecm_id);
	put_be32(out + 11, (uint32_t)(ts_ms >> 32));
	put_be32(out + 15, (uint32_t)ts_ms);
	c = EVP_CIPHER_CTX_new();
	ok = c && EVP_EncryptInit_ex(c, EVP_aes_128_gcm(), NULL, NULL, NULL) == 1 &&
	     EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_IVLEN, ECM_NONCE_BYTES, NULL) == 1 &&
	     EVP_EncryptInit_ex(c, NULL, NULL, kecm, out + (v.nonce - sec)) == 1 &&
	     EVP_EncryptUpdate(c, NULL, &l, out, (int)v.aad_len) == 1 &&
	     EVP_EncryptUpdate(c, out + (v.ct - sec), &l, cws, (int)v.ct_len) == 1 &&
	     EVP_EncryptFinal_ex(c, out + (v.ct - sec) + l, &l) == 1 &&
	     EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, ECM_TAG_BYTES, out + (v.tag - sec)) == 1;
	EVP_CIPHER_CTX_free(c);
	if (ok && rewrap_own)
		ok = tu_ecm_rewrap(key, kecm, out, v.auth_len, out + (wrap - sec));
	OPENSSL_cleanse(kecm, sizeof(kecm));
	return ok;
}

#endif
