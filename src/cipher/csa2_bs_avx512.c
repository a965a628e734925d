/*
 * csa2_bs_avx512.c - CSA2 batch engine on 512-bit AVX-512 words (512
 * payloads per batch). Needs AVX-512 F/BW/VBMI and GFNI: the block S-box
 * is two VPERMI2B lookups of 128 entries blended on the index's top bit,
 * and the bit permutation after it is one GF2P8AFFINEQB (a bit
 * permutation is a linear map on GF(2)^8).
 */
#include <string.h>
#include "cipher/csa2_bs.h"

#ifdef CSA2_HAVE_X86
#include <immintrin.h>

#define BS_N 8
#ifndef BS_G
#define BS_G 4
#endif
#define BS_FN(x) bs_avx512_##x
#define TGT __attribute__((target("avx512f,avx512bw,avx512vbmi,gfni")))
#define BS_WORD_ONLY
#include "cipher/csa2_bs_core.h"
#undef BS_WORD_ONLY

/* GF2P8AFFINEQB matrix: byte 7-o holds the input bit that lands on output
 * bit o (in 0->1, 1->7, 2->5, 3->4, 4->2, 5->6, 6->0, 7->3). */
#define PERM_MATRIX 0x4001108008042002ll

static inline TGT void bs_sbox_perm(W x, W *s, W *p)
{
	const __m512i t0 = _mm512_loadu_si512((const void *)(csa2_block_sbox + 0));
	const __m512i t1 = _mm512_loadu_si512((const void *)(csa2_block_sbox + 64));
	const __m512i t2 = _mm512_loadu_si512((const void *)(csa2_block_sbox + 128));
	const __m512i t3 = _mm512_loadu_si512((const void *)(csa2_block_sbox + 192));
	__m512i xi = (__m512i)x;
	__m512i lo = _mm512_permutex2var_epi8(t0, xi, t1);
	__m512i hi = _mm512_permutex2var_epi8(t2, xi, t3);
	__m512i sv = _mm512_mask_blend_epi8(_mm512_movepi8_mask(xi), lo, hi);

	*s = (W)sv;
	*p = (W)_mm512_gf2p8affine_epi64_epi8(sv, _mm512_set1_epi64(PERM_MATRIX), 0);
}

#include "cipher/csa2_bs_core.h"

static bool usable(void)
{
	return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
	       __builtin_cpu_supports("avx512vbmi") && __builtin_cpu_supports("gfni");
}

const struct csa2_impl csa2_impl_avx512 = { "avx512", LANES, sizeof(struct bs_work), usable, BS_FN(run) };
#endif
