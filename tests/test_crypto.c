/*
 * test_crypto.c - src/crypto/aead.h, the one place AES-GCM, RFC 3394 key
 * wrap and AES blocks are set up: published known answers (GCM test cases
 * 1-2 of McGrew & Viega / NIST, RFC 3394 4.1, FIPS 197 C.1), the prepared
 * GCM context and the keyed KEK giving the same bytes as the one-shot
 * calls, and a table of refusals (bad tag, bad wrap, bad sizes).
 */
#include "testutil.h"
#include "crypto/aead.h"
#include "crypto/kdf.h"

static void hex(const char *h, uint8_t *out, size_t n)
{
	assert_int_equal(hex_decode(h, out, n), 0);
}

static void test_gcm_kat(void **state)
{
	uint8_t key[16] = { 0 }, iv[12] = { 0 }, pt[16] = { 0 }, ct[16], tag[16], want[16], back[16];
	EVP_CIPHER_CTX *c = NULL;
	(void)state;

	/* test case 1: empty plaintext */
	assert_int_equal(crypto_gcm(1, key, 16, iv, NULL, 0, NULL, 0, NULL, tag), 0);
	hex("58e2fccefa7e3061367f1d57a4e7455a", want, 16);
	assert_memory_equal(tag, want, 16);
	/* test case 2: one zero block */
	assert_int_equal(crypto_gcm(1, key, 16, iv, NULL, 0, pt, 16, ct, tag), 0);
	hex("0388dace60b6a392f328c2b971b2fe78", want, 16);
	assert_memory_equal(ct, want, 16);
	hex("ab6e47d42cec13bdf53a67b21257bddf", want, 16);
	assert_memory_equal(tag, want, 16);
	assert_int_equal(crypto_gcm(0, key, 16, iv, NULL, 0, ct, 16, back, tag), 0);
	assert_memory_equal(back, pt, 16);
	/* the prepared context gives the same bytes, call after call */
	assert_int_equal(crypto_gcm_ctx_new(1, 16, &c), 0);
	for (int i = 0; i < 3; i++) {
		uint8_t ct2[16], tag2[16];

		assert_int_equal(crypto_gcm_run(c, 1, key, iv, NULL, 0, pt, 16, ct2, tag2), 0);
		assert_memory_equal(ct2, ct, 16);
		assert_memory_equal(tag2, tag, 16);
	}
	EVP_CIPHER_CTX_free(c);
}

static void test_gcm_refusals(void **state)
{
	uint8_t key[32] = { 1 }, iv[12] = { 2 }, aad[5] = { 3 }, pt[40], ct[40], tag[16], out[40];
	(void)state;

	memset(pt, 0x5A, sizeof(pt));
	assert_int_equal(crypto_gcm(1, key, 32, iv, aad, 5, pt, 40, ct, tag), 0);
	assert_int_equal(crypto_gcm(0, key, 32, iv, aad, 5, ct, 40, out, tag), 0);
	assert_memory_equal(out, pt, 40);
	tag[0] ^= 1; /* bad tag: CE_MAC and the output wiped */
	memset(out, 0x77, sizeof(out));
	assert_int_equal(crypto_gcm(0, key, 32, iv, aad, 5, ct, 40, out, tag), CE_MAC);
	for (size_t i = 0; i < sizeof(out); i++)
		assert_int_equal(out[i], 0);
	tag[0] ^= 1;
	aad[0] ^= 1; /* other AAD */
	assert_int_equal(crypto_gcm(0, key, 32, iv, aad, 5, ct, 40, out, tag), CE_MAC);
	aad[0] ^= 1;
	ct[39] ^= 1; /* other ciphertext */
	assert_int_equal(crypto_gcm(0, key, 32, iv, aad, 5, ct, 40, out, tag), CE_MAC);
	/* key sizes other than 16 and 32, missing buffers */
	assert_int_equal(crypto_gcm(1, key, 24, iv, aad, 5, pt, 40, ct, tag), CE_ARG);
	assert_int_equal(crypto_gcm(1, key, 16, iv, NULL, 5, pt, 40, ct, tag), CE_ARG);
	assert_int_equal(crypto_gcm(1, key, 16, iv, aad, 5, NULL, 40, ct, tag), CE_ARG);
	assert_int_equal(crypto_gcm_run(NULL, 1, key, iv, aad, 5, pt, 40, ct, tag), CE_ARG);
}

static void test_wrap_kat(void **state)
{
	uint8_t kek[16], key[16], w[24], want[24], back[16];
	EVP_CIPHER_CTX *k = NULL;
	(void)state;

	/* RFC 3394 4.1: 128-bit key data with a 128-bit KEK */
	hex("000102030405060708090A0B0C0D0E0F", kek, 16);
	hex("00112233445566778899AABBCCDDEEFF", key, 16);
	hex("1FA68B0A8112B447AEF34BD8FB5A7B829D3E862371D2CFE5", want, 24);
	assert_int_equal(crypto_wrap128(kek, key, w), 0);
	assert_memory_equal(w, want, 24);
	assert_int_equal(crypto_kek_new(kek, &k), 0);
	memset(w, 0, sizeof(w));
	assert_int_equal(crypto_wrap128_kek(k, key, w), 0);
	assert_memory_equal(w, want, 24);
	EVP_CIPHER_CTX_free(k);
	assert_int_equal(crypto_unwrap128(kek, w, back), 0);
	assert_memory_equal(back, key, 16);
	/* a wrap that does not check: CE_MAC, nothing returned */
	for (size_t i = 0; i < 24; i += 7) {
		w[i] ^= 0x01;
		memset(back, 0x55, sizeof(back));
		assert_int_equal(crypto_unwrap128(kek, w, back), CE_MAC);
		for (size_t j = 0; j < 16; j++)
			assert_int_equal(back[j], 0);
		w[i] ^= 0x01;
	}
	kek[0] ^= 1; /* another KEK */
	assert_int_equal(crypto_unwrap128(kek, w, back), CE_MAC);
}

/* The wraps with an integrity value (the ECM v2 wraps): the default value
 * gives RFC 3394's bytes, the keyed KEK gives the one-shot's bytes, and an
 * unwrap with another value is refused. */
static void test_wrap_iv(void **state)
{
	static const uint8_t a6[8] = { 0xA6, 0xA6, 0xA6, 0xA6, 0xA6, 0xA6, 0xA6, 0xA6 };
	uint8_t kek[16], key[16], iv[8], w[24], w2[24], want[24], back[16];
	EVP_CIPHER_CTX *k = NULL;
	(void)state;

	hex("000102030405060708090A0B0C0D0E0F", kek, 16);
	hex("00112233445566778899AABBCCDDEEFF", key, 16);
	hex("1FA68B0A8112B447AEF34BD8FB5A7B829D3E862371D2CFE5", want, 24);
	assert_int_equal(crypto_wrap128_iv(kek, a6, key, w), 0);
	assert_memory_equal(w, want, 24);
	hex("0123456789ABCDEF", iv, 8);
	assert_int_equal(crypto_wrap128_iv(kek, iv, key, w), 0);
	assert_memory_not_equal(w, want, 24);
	assert_int_equal(crypto_kek_new(kek, &k), 0);
	assert_int_equal(crypto_wrap128_kek_iv(k, iv, key, w2), 0);
	assert_memory_equal(w, w2, 24);
	EVP_CIPHER_CTX_free(k);
	assert_int_equal(crypto_unwrap128_iv(kek, iv, w, back), 0);
	assert_memory_equal(back, key, 16);
	/* the default-value unwrap, or another value, refuses it */
	assert_int_equal(crypto_unwrap128(kek, w, back), CE_MAC);
	iv[7] ^= 1;
	assert_int_equal(crypto_unwrap128_iv(kek, iv, w, back), CE_MAC);
	assert_int_equal(crypto_wrap128_iv(kek, NULL, key, w), CE_ARG);
	assert_int_equal(crypto_unwrap128_iv(kek, NULL, w, back), CE_ARG);
}

static void test_aes_block_kat(void **state)
{
	uint8_t key[32], pt[16], ct[16], want[16], back[16];
	(void)state;

	/* FIPS 197 C.1 (AES-128) and C.3 (AES-256) */
	hex("000102030405060708090a0b0c0d0e0f", key, 16);
	hex("00112233445566778899aabbccddeeff", pt, 16);
	hex("69c4e0d86a7b0430d8cdb78070b4c55a", want, 16);
	assert_int_equal(crypto_aes_block(1, key, 16, pt, ct), 0);
	assert_memory_equal(ct, want, 16);
	assert_int_equal(crypto_aes_block(0, key, 16, ct, back), 0);
	assert_memory_equal(back, pt, 16);
	hex("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f", key, 32);
	hex("8ea2b7ca516745bfeafc49904b496089", want, 16);
	assert_int_equal(crypto_aes_block(1, key, 32, pt, ct), 0);
	assert_memory_equal(ct, want, 16);
	assert_int_equal(crypto_aes_block(1, key, 24, pt, ct), CE_ARG);
}

/* The generic KBKDF is the vendor key derivation's: same bytes. */
static void test_kbkdf_same_as_vendor_key(void **state)
{
	uint8_t root[16], a[16], b[16], ctx[4] = { 0x00, 0x00, 0x4A, 0xDC };
	(void)state;

	for (int i = 0; i < 16; i++)
		root[i] = (uint8_t)(i * 7);
	assert_int_equal(kms_vendor_key(root, 0x4ADC, a), 0);
	assert_int_equal(crypto_kbkdf_cmac(root, 16, KMS_VENDOR_KEY_LABEL, sizeof(KMS_VENDOR_KEY_LABEL) - 1, ctx, 4, b,
				 16),
		0);
	assert_memory_equal(a, b, 16);
	assert_int_equal(crypto_kbkdf_cmac(root, 20, "x", 1, ctx, 4, b, 16), CE_ARG);
	assert_int_equal(crypto_kbkdf_cmac(root, 16, "x", 1, NULL, 4, b, 16), CE_ARG);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_gcm_kat),
		cmocka_unit_test(test_gcm_refusals),
		cmocka_unit_test(test_wrap_kat),
		cmocka_unit_test(test_wrap_iv),
		cmocka_unit_test(test_aes_block_kat),
		cmocka_unit_test(test_kbkdf_same_as_vendor_key),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
