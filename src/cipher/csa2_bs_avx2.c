/*
 * csa2_bs_avx2.c - CSA2 batch engine on 256-bit AVX2 words (256 payloads
 * per batch). The block S-box: 16 VPSHUFB lookups of 16-entry rows, each
 * row selected by the high nibble (an index whose high nibble differs gets
 * bit 7 set by a saturating add, and VPSHUFB returns 0 for it).
 */
#include <string.h>
#include "cipher/csa2_bs.h"

#ifdef CSA2_HAVE_X86
#include <immintrin.h>

#define BS_N 4
#define BS_FN(x) bs_avx2_##x
#define TGT __attribute__((target("avx2")))
#define BS_WORD_ONLY
#include "cipher/csa2_bs_core.h"
#undef BS_WORD_ONLY

static inline TGT void bs_sbox_perm(W x, W *s, W *p)
{
	__m256i xi = (__m256i)x, acc = _mm256_setzero_si256();
	const __m256i c70 = _mm256_set1_epi8(0x70);

	for (int h = 0; h < 16; h++) {
		__m256i row = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)(csa2_block_sbox + 16 * h)));
		__m256i idx = _mm256_adds_epu8(_mm256_xor_si256(xi, _mm256_set1_epi8((char)(h << 4))), c70);

		acc = _mm256_or_si256(acc, _mm256_shuffle_epi8(row, idx));
	}
	*s = (W)acc;
	*p = ((*s & 0x2929292929292929ull) << 1) | ((*s & 0x0202020202020202ull) << 6) |
	     ((*s & 0x0404040404040404ull) << 3) | ((*s & 0x1010101010101010ull) >> 2) |
	     ((*s & 0x4040404040404040ull) >> 6) | ((*s & 0x8080808080808080ull) >> 4);
}

#include "cipher/csa2_bs_core.h"

static bool usable(void)
{
	return __builtin_cpu_supports("avx2");
}

const struct csa2_impl csa2_impl_avx2 = { "avx2", LANES, sizeof(struct bs_work), usable, BS_FN(run) };
#endif
