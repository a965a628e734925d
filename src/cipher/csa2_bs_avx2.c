/*
 * csa2_bs_avx2.c - CSA2 batch engine on 256-bit AVX2 words (256 payloads
 * per batch). The block S-box: 16 VPSHUFB lookups of its 16-entry rows by
 * the low nibble, then a tree of 15 VPBLENDVB on the high nibble's bits;
 * the bit permutation after it: two VPSHUFB (one per nibble).
 */
#include <string.h>
#include "cipher/csa2_bs.h"

#ifdef CSA2_HAVE_X86
#include <immintrin.h>

#define BS_N 4
#ifndef BS_G
#define BS_G 4
#endif
#define BS_FN(x) bs_avx2_##x
#define TGT __attribute__((target("avx2")))
#define BS_WORD_ONLY
#include "cipher/csa2_bs_core.h"
#undef BS_WORD_ONLY

/* perm(s) = perm(low nibble) ^ perm(high nibble), perm being linear */
static const uint8_t perm_lo[16] = { 0x00, 0x02, 0x80, 0x82, 0x20, 0x22, 0xa0, 0xa2,
				     0x10, 0x12, 0x90, 0x92, 0x30, 0x32, 0xb0, 0xb2 };
static const uint8_t perm_hi[16] = { 0x00, 0x04, 0x40, 0x44, 0x01, 0x05, 0x41, 0x45,
				     0x08, 0x0c, 0x48, 0x4c, 0x09, 0x0d, 0x49, 0x4d };

static inline TGT __m256i row(int h)
{
	return _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)(csa2_block_sbox + 16 * h)));
}

static inline TGT void bs_sbox_perm(W x, W *s, W *p)
{
	const __m256i m0f = _mm256_set1_epi8(0x0f);
	__m256i xi = (__m256i)x, idx = _mm256_and_si256(xi, m0f), l[16], sel, sv, lo, hi;

	/* the 16 rows looked up with the low nibble, then a tree of byte
	 * blends on bits 4, 5, 6, 7 of x (VPBLENDVB reads bit 7 of each byte) */
#pragma GCC unroll 16
	for (int h = 0; h < 16; h++)
		l[h] = _mm256_shuffle_epi8(row(h), idx);
	sel = _mm256_slli_epi16(xi, 3);
#pragma GCC unroll 8
	for (int h = 0; h < 8; h++)
		l[h] = _mm256_blendv_epi8(l[2 * h], l[2 * h + 1], sel);
	sel = _mm256_slli_epi16(xi, 2);
#pragma GCC unroll 4
	for (int h = 0; h < 4; h++)
		l[h] = _mm256_blendv_epi8(l[2 * h], l[2 * h + 1], sel);
	sel = _mm256_slli_epi16(xi, 1);
#pragma GCC unroll 2
	for (int h = 0; h < 2; h++)
		l[h] = _mm256_blendv_epi8(l[2 * h], l[2 * h + 1], sel);
	sv = _mm256_blendv_epi8(l[0], l[1], xi);
	lo = _mm256_shuffle_epi8(_mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)perm_lo)),
				 _mm256_and_si256(sv, m0f));
	hi = _mm256_shuffle_epi8(_mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)perm_hi)),
				 _mm256_and_si256(_mm256_srli_epi16(sv, 4), m0f));
	*s = (W)sv;
	*p = (W)_mm256_or_si256(lo, hi);
}

#include "cipher/csa2_bs_core.h"

static bool usable(void)
{
	return __builtin_cpu_supports("avx2");
}

const struct csa2_impl csa2_impl_avx2 = { "avx2", LANES, sizeof(struct bs_work), usable, BS_FN(run) };
#endif
