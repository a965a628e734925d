/*
 * gcm_rekey.c - AES-128-GCM sealing with a new key for every message
 * (gcm_rekey.h), and the AES-NI AES-128 key expansion (aesni.h).
 */
#include <stdlib.h>
#include <string.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/modes.h>
#include "crypto/aead.h"
#include "crypto/aesni.h"
#include "crypto/gcm_rekey.h"
#include "lib/cursor.h"

/*
 * The fast path (one new key per message). OpenSSL 3's
 * EVP re-key costs ~0.9 us of CPU a call, mostly OSSL_PARAM lookups (strcmp), not
 * cryptography. Here AES-128 runs on AES-NI (key expansion and CTR blocks,
 * below) and GHASH, the counter and the tag are OpenSSL's own GCM mode
 * (openssl/modes.h CRYPTO_gcm128_*, PCLMUL/AVX inside) re-initialised in one
 * context per issuer: no allocation per EMM. The output is byte for byte
 * the EVP output (tests/cas/test_emm.c checks it for many cards and every
 * plaintext length class). Without AES-NI (or off x86-64) the sealer stays
 * on the EVP path.
 */
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define GCM_AESNI 1
#define AESNI_TARGET __attribute__((target("aes,sse4.1")))
#define AES_TARGET __attribute__((target("aes"))) /* the key expansion: AES-NI alone */

bool crypto_aesni_available(void)
{
	__builtin_cpu_init();
	return __builtin_cpu_supports("aes") && __builtin_cpu_supports("sse4.1");
}

AES_TARGET static __m128i expand_step(__m128i k, __m128i t)
{
	t = _mm_shuffle_epi32(t, 0xFF);
	k = _mm_xor_si128(k, _mm_slli_si128(k, 4));
	k = _mm_xor_si128(k, _mm_slli_si128(k, 4));
	k = _mm_xor_si128(k, _mm_slli_si128(k, 4));
	return _mm_xor_si128(k, t);
}

#define EXPAND(i, rcon)                                                                                      \
	k = expand_step(k, _mm_aeskeygenassist_si128(k, rcon));                                              \
	_mm_storeu_si128((__m128i *)rk[i], k)

/* FIPS-197 AES-128 key expansion. */
AES_TARGET void crypto_aesni_expand128(const uint8_t key[16], uint8_t rk[CRYPTO_AES128_ROUND_KEYS][16])
{
	__m128i k = _mm_loadu_si128((const __m128i *)key);

	_mm_storeu_si128((__m128i *)rk[0], k);
	EXPAND(1, 0x01);
	EXPAND(2, 0x02);
	EXPAND(3, 0x04);
	EXPAND(4, 0x08);
	EXPAND(5, 0x10);
	EXPAND(6, 0x20);
	EXPAND(7, 0x40);
	EXPAND(8, 0x80);
	EXPAND(9, 0x1B);
	EXPAND(10, 0x36);
}

/* block128_f: one block; key = uint8_t rk[11][16]. */
AESNI_TARGET static void aesni_block(const unsigned char in[16], unsigned char out[16], const void *key)
{
	const __m128i *rk = key;
	__m128i b = _mm_xor_si128(_mm_loadu_si128((const __m128i *)in), _mm_loadu_si128(&rk[0]));

	for (int i = 1; i < 10; i++)
		b = _mm_aesenc_si128(b, _mm_loadu_si128(&rk[i]));
	_mm_storeu_si128((__m128i *)out, _mm_aesenclast_si128(b, _mm_loadu_si128(&rk[10])));
}

/* ctr128_f: `blocks` CTR blocks, the counter being the big-endian u32 at
 * ivec[12..15] (mod 2^32, ivec itself unchanged), 4 blocks in flight (the
 * states stay in registers: AESENC latency, not throughput, is the limit). */
#define ROUND4(k)                                                                                            \
	do {                                                                                                 \
		__m128i k_ = (k);                                                                            \
		s0 = _mm_aesenc_si128(s0, k_);                                                               \
		s1 = _mm_aesenc_si128(s1, k_);                                                               \
		s2 = _mm_aesenc_si128(s2, k_);                                                               \
		s3 = _mm_aesenc_si128(s3, k_);                                                               \
	} while (0)

AESNI_TARGET static __m128i ctr_block(__m128i iv, uint32_t ctr, __m128i k0)
{
	return _mm_xor_si128(_mm_insert_epi32(iv, (int)__builtin_bswap32(ctr), 3), k0);
}

AESNI_TARGET static void aesni_ctr32(const unsigned char *in, unsigned char *out, size_t blocks, const void *key,
	const unsigned char ivec[16])
{
	const __m128i *rk = key;
	const __m128i iv = _mm_loadu_si128((const __m128i *)ivec), k0 = _mm_loadu_si128(&rk[0]);
	const __m128i k10 = _mm_loadu_si128(&rk[10]);
	uint32_t ctr = 0;

	(void)cur_u32_at(ivec, 16, 12, &ctr);

	while (blocks > 0) {
		size_t n = blocks < 4 ? blocks : 4;
		__m128i s0 = ctr_block(iv, ctr, k0), s1 = ctr_block(iv, ctr + 1, k0);
		__m128i s2 = ctr_block(iv, ctr + 2, k0), s3 = ctr_block(iv, ctr + 3, k0);
		__m128i ks[4];

		for (int i = 1; i < 10; i++)
			ROUND4(_mm_loadu_si128(&rk[i]));
		ks[0] = _mm_aesenclast_si128(s0, k10);
		ks[1] = _mm_aesenclast_si128(s1, k10);
		ks[2] = _mm_aesenclast_si128(s2, k10);
		ks[3] = _mm_aesenclast_si128(s3, k10);
		for (size_t j = 0; j < n; j++)
			_mm_storeu_si128((__m128i *)(out + 16 * j),
				_mm_xor_si128(ks[j], _mm_loadu_si128((const __m128i *)(in + 16 * j))));
		ctr += (uint32_t)n;
		in += 16 * n;
		out += 16 * n;
		blocks -= n;
	}
}
#endif

struct crypto_gcm_rekey {
	EVP_CIPHER_CTX *gcm;  /* set up for encryption once; key + nonce per message */
	bool reference;       /* seal through EVP (no AES-NI, or asked for) */
#ifdef GCM_AESNI
	GCM128_CONTEXT *fast; /* OpenSSL GCM mode over aesni_block, re-keyed per message */
	uint8_t rk[CRYPTO_AES128_ROUND_KEYS][16]; /* secret: the key's round keys, wiped after each seal */
#endif
};

#ifndef GCM_AESNI
bool crypto_aesni_available(void)
{
	return false;
}
#endif

void crypto_gcm_rekey_free(struct crypto_gcm_rekey *g)
{
	if (!g)
		return;
#ifdef GCM_AESNI
	if (g->fast)
		CRYPTO_gcm128_release(g->fast); /* wipes */
#endif
	EVP_CIPHER_CTX_free(g->gcm);
	OPENSSL_cleanse(g, sizeof(*g));
	free(g);
}

int crypto_gcm_rekey_new(struct crypto_gcm_rekey **out)
{
	struct crypto_gcm_rekey *g;
	int r;

	*out = NULL;
	g = calloc(1, sizeof(*g));
	if (!g)
		return CE_NOMEM;
	if ((r = crypto_gcm_ctx_new(1, 16, &g->gcm)) != 0) {
		crypto_gcm_rekey_free(g);
		return r;
	}
	g->reference = true;
#ifdef GCM_AESNI
	if (crypto_aesni_available()) {
		/* rk is all zero here (calloc): a context for a dummy key, re-keyed per message */
		if (!(g->fast = CRYPTO_gcm128_new(g->rk, aesni_block))) {
			crypto_gcm_rekey_free(g);
			return CE_NOMEM;
		}
		g->reference = false;
	}
#endif
	*out = g;
	return 0;
}

bool crypto_gcm_rekey_set_reference(struct crypto_gcm_rekey *g, bool reference)
{
#ifdef GCM_AESNI
	if (g->fast) {
		g->reference = reference;
		return true;
	}
#endif
	(void)g;
	return reference;
}

bool crypto_gcm_rekey_is_reference(const struct crypto_gcm_rekey *g)
{
	return g->reference;
}

int crypto_gcm_rekey_seal(struct crypto_gcm_rekey *g, const uint8_t key[16], const uint8_t nonce[12],
			  const uint8_t *aad, size_t aad_len, const uint8_t *pt, size_t len, uint8_t *ct,
			  uint8_t tag[16])
{
#ifdef GCM_AESNI
	if (!g->reference) {
		int r = 0;

		crypto_aesni_expand128(key, g->rk);
		CRYPTO_gcm128_init(g->fast, g->rk, aesni_block);
		CRYPTO_gcm128_setiv(g->fast, nonce, CRYPTO_GCM_NONCE_BYTES);
		if (CRYPTO_gcm128_aad(g->fast, aad, aad_len) != 0 ||
		    CRYPTO_gcm128_encrypt_ctr32(g->fast, pt, ct, len, aesni_ctr32) != 0)
			r = CE_CRYPTO;
		else
			CRYPTO_gcm128_tag(g->fast, tag, CRYPTO_GCM_TAG_BYTES);
		OPENSSL_cleanse(g->rk, sizeof(g->rk));
		if (r != 0)
			OPENSSL_cleanse(ct, len);
		return r;
	}
#endif
	return crypto_gcm_run(g->gcm, 1, key, nonce, aad, aad_len, pt, len, ct, tag);
}
